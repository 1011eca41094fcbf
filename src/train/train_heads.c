/* Training of the extractor's heads (see train_heads.h). */
#include "train_heads.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/error.h"
#include "core/ops.h"
#include "core/optim.h"
#include "core/rng.h"
#include "faceup.h"

fu_heads_train_config fu_heads_train_defaults(void) {
    return (fu_heads_train_config){.batch = 128, .max_epochs = 300, .patience = 15, .lr = 1e-3f, .weight_decay = 1e-4f, .seed = 1};
}

/* One supervised problem: rows of `dim` inputs with a class (n_out classes) or n_out binary
 * targets. */
typedef struct task {
    const char *name;
    fu_mlp *m;
    int dim, n_out, binary, flip_side;   /* flip_side: thumbnails of that side get random mirroring */
    int64_t n[2];                        /* train, val */
    float *x[2], *t[2];                  /* inputs; binary targets */
    int *y[2];                           /* classes */
} task;

static void task_free(task *t) {
    for (int s = 0; s < 2; s++) { free(t->x[s]); free(t->t[s]); free(t->y[s]); }
}

enum { TRAIN, VAL };

/* Which samples a task takes, and their input row. */
typedef enum { ROW_DESC, ROW_THUMB16, ROW_THUMB8 } row_kind;

static const float *sample_row(const fu_heads_sample *s, row_kind k) {
    return k == ROW_DESC ? s->desc : k == ROW_THUMB16 ? s->thumb16 : s->thumb8;
}

static int task_wants(const fu_heads_sample *s, int binary) {
    if (!s->ok) return 0;
    return binary ? s->label.source == FU_FACES_CELEBA && s->label.attrs_known : s->label.source == FU_FACES_UTKFACE && s->label.race >= 0;
}

static int task_fill(task *t, const fu_heads_data *d, row_kind kind) {
    for (int64_t i = 0; i < d->n; i++)
        if (task_wants(&d->s[i], t->binary) && d->s[i].label.split <= FU_SPLIT_VAL) t->n[d->s[i].label.split]++;
    for (int s = 0; s < 2; s++) {
        if (t->n[s] == 0) return fu_fail(FU_E_INPUT, "heads: no usable %s images for the %s head", s ? "val" : "train", t->name);
        t->x[s] = malloc((size_t)t->n[s] * (size_t)t->dim * sizeof(float));
        t->t[s] = t->binary ? malloc((size_t)t->n[s] * FU_ATTRS * sizeof(float)) : NULL;
        t->y[s] = t->binary ? NULL : malloc((size_t)t->n[s] * sizeof(int));
        if (!t->x[s] || (t->binary ? !t->t[s] : !t->y[s])) return fu_fail(FU_E_INTERNAL, "out of memory");
    }
    int64_t k[2] = {0, 0};
    for (int64_t i = 0; i < d->n; i++) {
        const fu_heads_sample *s = &d->s[i];
        int sp = s->label.split;
        if (!task_wants(s, t->binary) || sp > FU_SPLIT_VAL) continue;
        const float *row = sample_row(s, kind);
        float *dst = t->x[sp] + k[sp] * t->dim;
        /* thumbnails: [0,1] -> [-1,1], as fu_heads_thumb_race feeds them */
        for (int j = 0; j < t->dim; j++) dst[j] = kind == ROW_DESC ? row[j] : 2 * row[j] - 1;
        if (t->binary)
            for (int a = 0; a < FU_ATTRS; a++) t->t[sp][k[sp] * FU_ATTRS + a] = (float)((s->label.attrs >> a) & 1);
        else t->y[sp][k[sp]] = s->label.race;
        k[sp]++;
    }
    return FU_OK;
}

/* ------------------------------------------------------------------ batches */

/* Mirrors a CHW thumbnail row of side s left-right in place. */
static void flip_row(float *x, int s) {
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < s; y++) {
            float *r = x + (c * s + y) * s;
            for (int a = 0, b = s - 1; a < b; a++, b--) { float v = r[a]; r[a] = r[b]; r[b] = v; }
        }
}

/* Members of each class in the train split, for balanced sampling. */
typedef struct { int64_t *idx[FU_RACE_CLASSES]; int64_t n[FU_RACE_CLASSES]; } class_index;

static int class_index_build(const task *t, class_index *ci) {
    memset(ci, 0, sizeof *ci);
    for (int64_t i = 0; i < t->n[TRAIN]; i++) ci->n[t->y[TRAIN][i]]++;
    for (int c = 0; c < FU_RACE_CLASSES; c++) {
        if (!ci->n[c]) return fu_fail(FU_E_INPUT, "heads: class %s has no train image", fu_race_name(c));
        if (!(ci->idx[c] = malloc((size_t)ci->n[c] * sizeof(int64_t)))) return fu_fail(FU_E_INTERNAL, "out of memory");
        ci->n[c] = 0;
    }
    for (int64_t i = 0; i < t->n[TRAIN]; i++) { int c = t->y[TRAIN][i]; ci->idx[c][ci->n[c]++] = i; }
    return FU_OK;
}

static void class_index_free(class_index *ci) {
    for (int c = 0; c < FU_RACE_CLASSES; c++) free(ci->idx[c]);
}

/* Sample `slot` of a batch: balanced (class first) or from the shuffled order. */
static int64_t pick_sample(const task *t, const class_index *ci, const int64_t *perm, int64_t pos, fu_rng *r) {
    if (t->binary) return perm[pos % t->n[TRAIN]];
    int c = (int)fu_rng_below(r, FU_RACE_CLASSES);
    return ci->idx[c][fu_rng_below(r, (uint64_t)ci->n[c])];
}

/* ------------------------------------------------------------------ steps and scores */

static int train_step(fu_graph *g, const task *t, const float *x, const int *y, const float *tg, int b, fu_optim *opt, float lr,
                      double *loss_sum) {
    fu_graph_reset(g);
    fu_tensor *in = fu_graph_tensor(g, 2, (int64_t[]){b, t->dim});
    if (!in) return fu_last_code();
    memcpy(in->data, x, (size_t)b * (size_t)t->dim * sizeof(float));
    fu_tensor *logits = fu_mlp_forward(g, t->m, in), *loss = NULL;
    if (logits && t->binary) {
        fu_tensor *target = fu_graph_tensor(g, 2, (int64_t[]){b, FU_ATTRS});
        if (target) memcpy(target->data, tg, (size_t)b * FU_ATTRS * sizeof(float));
        loss = target ? fu_bce_with_logits(g, logits, target, NULL) : NULL;
    } else if (logits) loss = fu_cross_entropy(g, logits, y);
    if (!loss) return fu_last_code() ? fu_last_code() : FU_E_INTERNAL;
    *loss_sum += loss->data[0];
    fu_optim_zero_grad(opt);
    int rc = fu_graph_backward(g, loss, NULL);
    return rc == FU_OK ? fu_optim_step(opt, lr) : rc;
}

/* Logits of the whole val split, [n_val, n_out] into out. */
static int val_logits(fu_graph *g, const task *t, float *out) {
    const int64_t chunk = 1024;
    for (int64_t i = 0; i < t->n[VAL]; i += chunk) {
        int64_t b = t->n[VAL] - i < chunk ? t->n[VAL] - i : chunk;
        fu_graph_reset(g);
        fu_tensor *in = fu_graph_tensor(g, 2, (int64_t[]){b, t->dim});
        if (!in) return fu_last_code();
        memcpy(in->data, t->x[VAL] + i * t->dim, (size_t)(b * t->dim) * sizeof(float));
        fu_tensor *logits = fu_mlp_forward(g, t->m, in);
        if (!logits) return fu_last_code();
        memcpy(out + i * t->n_out, logits->data, (size_t)(b * t->n_out) * sizeof(float));
    }
    return FU_OK;
}

/* Class problems: per-class counts into rs; returns the balanced accuracy. */
static double score_classes(const task *t, const float *logits, fu_race_score *rs) {
    memset(rs->count, 0, sizeof rs->count);
    memset(rs->correct, 0, sizeof rs->correct);
    int64_t right = 0;
    for (int64_t i = 0; i < t->n[VAL]; i++) {
        const float *l = logits + i * t->n_out;
        int best = 0;
        for (int c = 1; c < t->n_out; c++) if (l[c] > l[best]) best = c;
        rs->count[t->y[VAL][i]]++;
        if (best == t->y[VAL][i]) { rs->correct[best]++; right++; }
    }
    double bal = 0;
    for (int c = 0; c < FU_RACE_CLASSES; c++) bal += rs->count[c] ? (double)rs->correct[c] / rs->count[c] : 0;
    rs->accuracy = (double)right / (double)t->n[VAL];
    rs->balanced = bal / FU_RACE_CLASSES;
    return rs->balanced;
}

/* Attributes: per-attribute accuracy (logit > 0 means 1); returns the mean. */
static double score_attrs(const task *t, const float *logits, double acc[FU_ATTRS]) {
    double mean = 0;
    for (int a = 0; a < FU_ATTRS; a++) {
        int64_t right = 0;
        for (int64_t i = 0; i < t->n[VAL]; i++)
            right += (logits[i * FU_ATTRS + a] > 0) == (t->t[VAL][i * FU_ATTRS + a] > 0.5f);
        acc[a] = (double)right / (double)t->n[VAL];
        mean += acc[a] / FU_ATTRS;
    }
    return mean;
}

/* ------------------------------------------------------------------ one head */

typedef struct head_result {
    int epochs, best_epoch;
    double first_loss, last_loss;    /* mean train loss of the first and the last epoch */
    fu_race_score race;          /* class problems, at the best epoch */
    double attr_acc[FU_ATTRS], attr_mean;
} head_result;

static void copy_params(fu_mlp *m, float *saved[4], int to_saved) {
    fu_tensor *p[4];
    fu_mlp_params(m, p);
    for (int j = 0; j < 4; j++)
        memcpy(to_saved ? saved[j] : p[j]->data, to_saved ? p[j]->data : saved[j], (size_t)p[j]->numel * sizeof(float));
}

typedef struct trainer {
    const fu_heads_train_config *cfg;
    fu_progress_fn progress;
    void *ctx;
} trainer;

static int run_epoch(const trainer *tr, fu_graph *g, const task *t, const class_index *ci, fu_optim *opt, fu_rng *r,
                     int64_t *perm, float *x, int *y, float *tg, double *mean_loss) {
    /* An epoch is n / batch steps (at least one; a split smaller than the batch is one batch). */
    int b = t->n[TRAIN] < tr->cfg->batch ? (int)t->n[TRAIN] : tr->cfg->batch;
    if (t->binary) fu_rng_shuffle(r, perm, t->n[TRAIN]);
    int rc = FU_OK, steps = 0;
    double loss_sum = 0;
    for (int64_t pos = 0; rc == FU_OK && pos + b <= t->n[TRAIN]; pos += b, steps++) {
        for (int k = 0; k < b; k++) {
            int64_t i = pick_sample(t, ci, perm, pos + k, r);
            memcpy(x + (int64_t)k * t->dim, t->x[TRAIN] + i * t->dim, (size_t)t->dim * sizeof(float));
            if (t->flip_side && fu_rng_below(r, 2)) flip_row(x + (int64_t)k * t->dim, t->flip_side);
            if (t->binary) memcpy(tg + k * FU_ATTRS, t->t[TRAIN] + i * FU_ATTRS, FU_ATTRS * sizeof(float));
            else y[k] = t->y[TRAIN][i];
        }
        rc = train_step(g, t, x, y, tg, b, opt, tr->cfg->lr, &loss_sum);
    }
    *mean_loss = steps ? loss_sum / steps : 0;
    return rc;
}

static int train_task(const trainer *tr, const task *t, head_result *res) {
    const fu_heads_train_config *cfg = tr->cfg;
    fu_tensor *p[4];
    fu_mlp_params(t->m, p);
    for (int j = 0; j < 4; j++) fu_tensor_requires_grad(p[j], 1);
    fu_optim_config oc = fu_optim_adam_defaults();
    oc.weight_decay = cfg->weight_decay;
    fu_optim *opt = fu_optim_new(&oc, p, 4);
    fu_graph *g = fu_graph_new();
    float *saved[4] = {0}, *x = malloc((size_t)cfg->batch * (size_t)t->dim * sizeof(float));
    float *tg = malloc((size_t)cfg->batch * FU_ATTRS * sizeof(float)), *logits = malloc((size_t)(t->n[VAL] * t->n_out) * sizeof(float));
    int *y = malloc((size_t)cfg->batch * sizeof(int));
    int64_t *perm = malloc((size_t)t->n[TRAIN] * sizeof(int64_t));
    class_index ci = {0};
    int rc = opt && g && x && tg && logits && y && perm ? FU_OK : fu_fail(FU_E_INTERNAL, "out of memory");
    for (int j = 0; rc == FU_OK && j < 4; j++)
        if (!(saved[j] = malloc((size_t)p[j]->numel * sizeof(float)))) rc = fu_fail(FU_E_INTERNAL, "out of memory");
    if (rc == FU_OK && !t->binary) rc = class_index_build(t, &ci);
    for (int64_t i = 0; perm && i < t->n[TRAIN]; i++) perm[i] = i;
    fu_rng r;
    fu_rng_seed(&r, cfg->seed);
    double best = -1;
    for (int epoch = 1; rc == FU_OK && epoch <= cfg->max_epochs && epoch - res->best_epoch <= cfg->patience; epoch++) {
        double loss = 0;
        rc = run_epoch(tr, g, t, &ci, opt, &r, perm, x, y, tg, &loss);
        if (rc == FU_OK) rc = val_logits(g, t, logits);
        if (rc != FU_OK) break;
        if (epoch == 1) res->first_loss = loss;
        res->last_loss = loss;
        fu_race_score rs = {0};
        double acc[FU_ATTRS], score = t->binary ? score_attrs(t, logits, acc) : score_classes(t, logits, &rs);
        res->epochs = epoch;
        if (score > best) {
            best = score;
            res->best_epoch = epoch;
            res->race = rs;
            memcpy(res->attr_acc, acc, sizeof acc);
            res->attr_mean = score;
            copy_params(t->m, saved, 1);
        }
        if (tr->progress) tr->progress(tr->ctx, epoch, cfg->max_epochs, t->name);
    }
    if (rc == FU_OK) copy_params(t->m, saved, 0);
    for (int j = 0; j < 4; j++) { free(saved[j]); fu_tensor_requires_grad(p[j], 0); }
    class_index_free(&ci);
    free(x); free(tg); free(logits); free(y); free(perm);
    fu_graph_free(g);
    fu_optim_free(opt);
    return rc;
}

/* ------------------------------------------------------------------ all heads */

static void set_frame(const fu_heads_data *d, fu_heads *h, fu_heads_report *r) {
    double sum[136] = {0};
    r->n_frame = 0;
    for (int64_t i = 0; i < d->n; i++) {
        if (!d->s[i].ok || d->s[i].label.split != FU_SPLIT_TRAIN) continue;
        for (int k = 0; k < 136; k++) sum[k] += d->s[i].landmarks[k];
        r->n_frame++;
    }
    for (int k = 0; k < 136; k++) h->ffhq_landmarks[k] = r->n_frame ? (float)(sum[k] / r->n_frame) : 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double norm128(const float *v) {
    double s = 0;
    for (int k = 0; k < 128; k++) s += (double)v[k] * v[k];
    return sqrt(s);
}

static int identity_figures(const fu_heads_data *d, uint64_t seed, fu_heads_report *r) {
    int64_t n = 0, *idx = malloc((size_t)(d->n ? d->n : 1) * sizeof *idx);
    double *angle = malloc(FU_HEADS_PAIRS * sizeof *angle), sum = 0;
    if (!idx || !angle) { free(idx); free(angle); return fu_fail(FU_E_INTERNAL, "out of memory"); }
    for (int64_t i = 0; i < d->n; i++)
        if (d->s[i].ok && d->s[i].label.split == FU_SPLIT_TRAIN) { idx[n++] = i; sum += norm128(d->s[i].desc); }
    fu_rng rng;
    fu_rng_seed(&rng, seed);
    for (int p = 0; n > 1 && p < FU_HEADS_PAIRS; p++) {
        int64_t a = idx[fu_rng_below(&rng, (uint64_t)n)], b = idx[fu_rng_below(&rng, (uint64_t)n)];
        if (a == b) { p--; continue; }
        double dot = 0;
        for (int k = 0; k < 128; k++) dot += (double)d->s[a].desc[k] * d->s[b].desc[k];
        double c = dot / (norm128(d->s[a].desc) * norm128(d->s[b].desc));
        angle[p] = acos(c > 1 ? 1 : c < -1 ? -1 : c);
    }
    if (n > 1) qsort(angle, FU_HEADS_PAIRS, sizeof *angle, cmp_double);
    r->desc_norm_mean = n ? sum / (double)n : 0;
    r->pair_angle_median = n > 1 ? angle[FU_HEADS_PAIRS / 2] : 0;
    free(idx);
    free(angle);
    return FU_OK;
}

static int train_one(const trainer *tr, const fu_heads_data *d, task t, row_kind kind, head_result *res) {
    int rc = task_fill(&t, d, kind);
    if (rc == FU_OK) rc = train_task(tr, &t, res);
    res->race.n_train = (int)t.n[TRAIN];
    res->race.n_val = (int)t.n[VAL];
    res->race.epochs = res->epochs;
    res->race.best_epoch = res->best_epoch;
    task_free(&t);
    return rc;
}

int fu_heads_train(const fu_heads_data *d, const fu_heads_train_config *cfg, fu_heads *h, fu_heads_report *r,
                   fu_progress_fn progress, void *ctx) {
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    memset(r, 0, sizeof *r);
    if (cfg->batch < 1 || cfg->max_epochs < 1 || cfg->patience < 1 || !(cfg->lr > 0))
        return fu_fail(FU_E_INPUT, "heads: batch, epochs, patience and lr must be positive");
    set_frame(d, h, r);
    if (r->n_frame == 0) return fu_fail(FU_E_INPUT, "heads: no train image with a detected face");
    int rc0 = identity_figures(d, cfg->seed, r);
    if (rc0 != FU_OK) return rc0;
    trainer tr = {cfg, progress, ctx};
    head_result res[4] = {{0}};
    int rc = train_one(&tr, d, (task){.name = "race", .m = &h->race, .dim = 128, .n_out = FU_RACE_CLASSES}, ROW_DESC, &res[0]);
    if (rc == FU_OK) rc = train_one(&tr, d, (task){.name = "attr", .m = &h->attr, .dim = 128, .n_out = FU_ATTRS, .binary = 1}, ROW_DESC, &res[1]);
    if (rc == FU_OK) rc = train_one(&tr, d, (task){.name = "thumb16", .m = &h->thumb16, .dim = 768, .n_out = FU_RACE_CLASSES, .flip_side = 16}, ROW_THUMB16, &res[2]);
    if (rc == FU_OK) rc = train_one(&tr, d, (task){.name = "thumb8", .m = &h->thumb8, .dim = 192, .n_out = FU_RACE_CLASSES, .flip_side = 8}, ROW_THUMB8, &res[3]);
    r->race = res[0].race;
    r->thumb16 = res[2].race;
    r->thumb8 = res[3].race;
    r->attr_n_train = res[1].race.n_train;
    r->attr_n_val = res[1].race.n_val;
    r->attr_epochs = res[1].epochs;
    r->attr_best_epoch = res[1].best_epoch;
    memcpy(r->attr_accuracy, res[1].attr_acc, sizeof r->attr_accuracy);
    r->attr_mean = res[1].attr_mean;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    r->seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    return rc;
}

/* ------------------------------------------------------------------ a race MLP on given rows */

static int copy_part(task *t, int part, const fu_race_rows *rows) {
    t->n[part] = rows->n;
    if (rows->n < 1) return fu_fail(FU_E_INPUT, "race classifier: no %s rows", part == TRAIN ? "train" : "selection");
    t->x[part] = malloc((size_t)rows->n * (size_t)t->dim * sizeof(float));
    t->y[part] = malloc((size_t)rows->n * sizeof(int));
    if (!t->x[part] || !t->y[part]) return fu_fail(FU_E_INTERNAL, "out of memory");
    memcpy(t->x[part], rows->x, (size_t)rows->n * (size_t)t->dim * sizeof(float));
    for (int64_t i = 0; i < rows->n; i++) {
        if (rows->y[i] < 0 || rows->y[i] >= FU_RACE_CLASSES) return fu_fail(FU_E_INPUT, "race classifier: class %d out of range", rows->y[i]);
        t->y[part][i] = rows->y[i];
    }
    return FU_OK;
}

int fu_race_mlp_train(fu_mlp *m, int flip_side, const fu_race_rows *train, const fu_race_rows *select, const fu_heads_train_config *cfg,
                      fu_race_fit *fit, fu_progress_fn progress, void *ctx) {
    memset(fit, 0, sizeof *fit);
    int dim = (int)m->w[0]->shape[1];
    if (m->w[1]->shape[0] != FU_RACE_CLASSES) return fu_fail(FU_E_INPUT, "race classifier: the MLP must have %d outputs", FU_RACE_CLASSES);
    if (flip_side && 3 * flip_side * flip_side != dim) return fu_fail(FU_E_INPUT, "race classifier: flips need 3x%dx%d rows", flip_side, flip_side);
    if (cfg->batch < 1 || cfg->max_epochs < 1 || cfg->patience < 1 || !(cfg->lr > 0))
        return fu_fail(FU_E_INPUT, "race classifier: batch, epochs, patience and lr must be positive");
    task t = {.name = "race", .m = m, .dim = dim, .n_out = FU_RACE_CLASSES, .flip_side = flip_side};
    trainer tr = {cfg, progress, ctx};
    head_result res = {0};
    int rc = copy_part(&t, TRAIN, train);
    if (rc == FU_OK) rc = copy_part(&t, VAL, select);
    if (rc == FU_OK) rc = train_task(&tr, &t, &res);
    fit->select = res.race;
    fit->select.n_train = (int)t.n[TRAIN], fit->select.n_val = (int)t.n[VAL];
    fit->select.epochs = res.epochs, fit->select.best_epoch = res.best_epoch;
    fit->first_loss = res.first_loss, fit->last_loss = res.last_loss;
    task_free(&t);
    return rc;
}
