/* ArcFace training of an IR-SE extractor (see extractor.h). */
#include "train/extractor.h"
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/ops.h"
#include "core/optim.h"
#include "faceup.h"
#include "io/safetensors.h"
#include "train/face_data.h"

#define HEAD_INIT_STD 0.01f   /* InsightFace's classifier init, normal(0, 0.01) */

fu_extractor_config fu_extractor_defaults(const fu_irse_config *arch) {
    return (fu_extractor_config){.arch = *arch, .steps = 1000, .batch = 128, .lr = 0.1f, .momentum = 0.9f,
                                 .weight_decay = 5e-4f, .scale = 64, .margin = 0.5f};
}

typedef struct trainer {
    const fu_extractor_config *cfg;
    const fu_dist *dist;
    int shards;                   /* global batch splits */
    fu_face_data *data;
    fu_irse *model;
    fu_tensor *head;              /* [n_ids, E] */
    fu_tensor **params;           /* model parameters, then head */
    int n_params;
    fu_optim *opt;
    fu_graph *g;
    fu_rng rng;                   /* flips: the same stream on every rank */
    int64_t step, samples_seen;
    int64_t *perm, perm_epoch;
    int64_t *batch_index;         /* image of each global batch slot */
    int *batch_flip, *labels;
} trainer;

static uint64_t mix(uint64_t a, uint64_t b) { return a * 0x9E3779B97F4A7C15ull ^ (b + 0x632BE59BD9B4E019ull + (a << 6) + (a >> 2)); }

/* ---- setup ------------------------------------------------------------------------------- */

static int check_config(const fu_extractor_config *c, const fu_dist *d, int shards) {
    if (fu_irse_check_config(&c->arch) != FU_OK) return FU_E_INPUT;
    if (!c->data) return fu_fail(FU_E_INPUT, "train extractor: no data given");
    if (c->steps < 1 || c->batch < 2) return fu_fail(FU_E_INPUT, "train extractor: steps >= 1 and batch >= 2 needed");
    if (shards < 1 || shards % d->size || c->batch % shards || c->batch / shards < 2)
        return fu_fail(FU_E_INPUT, "train extractor: %d shards must be a multiple of the %d ranks and split the batch "
                       "of %d into equal shards of at least 2 (batch norm)", shards, d->size, c->batch);
    if (!(c->lr > 0) || !(c->momentum >= 0 && c->momentum < 1) || !(c->weight_decay >= 0) || !(c->scale > 0) ||
        !(c->margin >= 0 && c->margin < 1.6f))
        return fu_fail(FU_E_INPUT, "train extractor: need lr > 0, momentum in [0,1), weight decay >= 0, scale > 0, margin in [0, 1.6)");
    return FU_OK;
}

static int setup(trainer *t) {
    const fu_extractor_config *c = t->cfg;
    fu_rng init;
    fu_rng_seed(&init, c->seed);
    fu_rng_seed(&t->rng, mix(c->seed, 1));
    if (!(t->data = fu_face_data_open(c->data)) || !(t->model = fu_irse_new(&c->arch, &init))) return fu_last_code();
    if (!(t->head = fu_tensor_newv(2, (int64_t)t->data->n_ids, (int64_t)c->arch.embedding)) ||
        fu_tensor_requires_grad(t->head, 1) != FU_OK)
        return fu_fail(FU_E_INTERNAL, "train extractor: out of memory for the %d x %d classifier", t->data->n_ids, c->arch.embedding);
    fu_tensor_set_name(t->head, "head.weight");
    fu_rng_fill_normal(&init, t->head->data, t->head->numel, 0, HEAD_INIT_STD);
    t->params = malloc(((size_t)t->model->n_tensors + 1) * sizeof *t->params);
    t->batch_index = malloc((size_t)c->batch * sizeof *t->batch_index);
    t->batch_flip = malloc((size_t)c->batch * sizeof *t->batch_flip);
    t->labels = malloc((size_t)c->batch * sizeof *t->labels);
    t->perm = malloc((size_t)t->data->n * sizeof *t->perm);
    t->g = fu_graph_new();
    if (!t->params || !t->batch_index || !t->batch_flip || !t->labels || !t->perm || !t->g)
        return fu_fail(FU_E_INTERNAL, "train extractor: out of memory");
    t->n_params = fu_irse_params(t->model, t->params);
    t->params[t->n_params++] = t->head;
    fu_optim_config oc = fu_optim_sgd_defaults(c->momentum);
    oc.weight_decay = c->weight_decay;
    t->perm_epoch = -1;
    return (t->opt = fu_optim_new(&oc, t->params, t->n_params)) ? FU_OK : fu_last_code();
}

static void teardown(trainer *t) {
    fu_optim_free(t->opt);
    fu_graph_free(t->g);
    fu_tensor_free(t->head);
    fu_irse_free(t->model);
    fu_face_data_free(t->data);
    free(t->params);
    free(t->batch_index);
    free(t->batch_flip);
    free(t->labels);
    free(t->perm);
}

/* ---- checkpoints ------------------------------------------------------------------------- */

static void train_config_string(const trainer *t, char *buf, size_t n) {
    const fu_extractor_config *c = t->cfg;
    snprintf(buf, n, "batch=%d shards=%d seed=%" PRIu64 " ids=%d images=%" PRId64 " lr=%.9g momentum=%.9g wd=%.9g s=%.9g m=%.9g",
             c->batch, t->shards, c->seed, t->data->n_ids, t->data->n, (double)c->lr, (double)c->momentum,
             (double)c->weight_decay, (double)c->scale, (double)c->margin);
}

static int save_checkpoint(const trainer *t) {
    int64_t n_state = fu_optim_state_numel(t->opt);
    fu_tensor *state = fu_tensor_newv(1, n_state > 0 ? n_state : (int64_t)1);
    fu_st_item *items = calloc((size_t)t->model->n_tensors + 2, sizeof *items);
    if (!state || !items) {
        fu_tensor_free(state);
        free(items);
        return fu_fail(FU_E_INTERNAL, "train extractor: out of memory for the checkpoint");
    }
    fu_optim_state_get(t->opt, state->data);
    int n = 0;
    for (int i = 0; i < t->model->n_tensors; i++) items[n++] = (fu_st_item){t->model->tensors[i]->name, t->model->tensors[i], FU_F32};
    items[n++] = (fu_st_item){"head.weight", t->head, FU_F32};
    items[n++] = (fu_st_item){"optim.state", state, FU_F32};
    char arch[256], train[512], rng[160], step[32], seen[32];
    fu_irse_config_format(&t->cfg->arch, arch, sizeof arch);
    train_config_string(t, train, sizeof train);
    fu_rng_to_text(&t->rng, rng, sizeof rng);
    snprintf(step, sizeof step, "%" PRId64, t->step);
    snprintf(seen, sizeof seen, "%" PRId64, t->samples_seen);
    fu_st_meta meta[] = {{"irse_config", arch}, {"train_config", train}, {"rng", rng}, {"step", step}, {"samples_seen", seen}};
    int rc = fu_st_save(t->cfg->checkpoint, items, n, meta, 5);
    fu_tensor_free(state);
    free(items);
    return rc;
}

static int meta_i64(const fu_safetensors *st, const char *key, int64_t *v) {
    const char *s = fu_st_meta_get(st, key);
    char *end;
    if (!s) return 0;
    long long x = strtoll(s, &end, 10);
    if (end == s || *end || x < 0) return 0;
    *v = x;
    return 1;
}

/* Restores everything save_checkpoint wrote; the run's config must be the checkpoint's. */
static int load_checkpoint(trainer *t, const fu_safetensors *st) {
    const char *path = t->cfg->resume;
    char arch[256], train[512];
    fu_irse_config_format(&t->cfg->arch, arch, sizeof arch);
    train_config_string(t, train, sizeof train);
    const char *c_arch = fu_st_meta_get(st, "irse_config"), *c_train = fu_st_meta_get(st, "train_config");
    const char *c_rng = fu_st_meta_get(st, "rng");
    if (!c_arch || !c_train || !c_rng || !meta_i64(st, "step", &t->step) || !meta_i64(st, "samples_seen", &t->samples_seen))
        return fu_fail(FU_E_INPUT, "%s: not a training checkpoint (metadata missing)", path);
    if (strcmp(c_arch, arch)) return fu_fail(FU_E_INPUT, "%s: architecture differs (checkpoint: %s)", path, c_arch);
    if (strcmp(c_train, train)) return fu_fail(FU_E_INPUT, "%s: training setup differs (checkpoint: %s; this run: %s)", path, c_train, train);
    if (!fu_rng_from_text(c_rng, &t->rng)) return fu_fail(FU_E_INPUT, "%s: malformed rng state", path);
    if (t->samples_seen != t->step * t->cfg->batch) return fu_fail(FU_E_INPUT, "%s: samples_seen does not match step", path);
    int rc = fu_irse_load_tensors(t->model, st);
    fu_tensor *head = rc == FU_OK ? fu_st_tensor(st, "head.weight") : NULL;
    fu_tensor *state = head ? fu_st_tensor(st, "optim.state") : NULL;
    if (rc == FU_OK && (!state || head->numel != t->head->numel))
        rc = fu_fail(FU_E_INPUT, "%s: head.weight / optim.state missing or of the wrong size", path);
    int64_t n_state = fu_optim_state_numel(t->opt);
    if (rc == FU_OK && state->numel != (n_state > 0 ? n_state : 1))
        rc = fu_fail(FU_E_INPUT, "%s: optim.state has %lld values, expected %lld", path, (long long)state->numel, (long long)n_state);
    if (rc == FU_OK && (rc = fu_optim_state_set(t->opt, state->data, n_state)) == FU_OK) {
        fu_tensor_copy_data(t->head, head);
        t->opt->step = t->step;
    }
    fu_tensor_free(head);
    fu_tensor_free(state);
    return rc;
}

static int resume(trainer *t) {
    fu_safetensors *st = fu_st_open(t->cfg->resume);
    if (!st) return fu_last_code();
    int rc = load_checkpoint(t, st);
    fu_st_free(st);
    return rc;
}

/* ---- one step ---------------------------------------------------------------------------- */

/* Global batch slots: image index from the epoch's permutation, mirror flag from the stream. */
static void draw_batch(trainer *t) {
    int64_t n = t->data->n;
    for (int k = 0; k < t->cfg->batch; k++) {
        int64_t pos = t->samples_seen + k, epoch = pos / n;
        if (epoch != t->perm_epoch) {
            fu_rng r;
            fu_rng_seed(&r, mix(t->cfg->seed, (uint64_t)epoch + 2));
            for (int64_t i = 0; i < n; i++) t->perm[i] = i;
            fu_rng_shuffle(&r, t->perm, n);
            t->perm_epoch = epoch;
        }
        t->batch_index[k] = t->perm[pos % n];
        t->batch_flip[k] = (int)fu_rng_below(&t->rng, 2);
    }
}

/* Forward and backward of shard `sh`; adds its scaled loss to *loss. */
static int run_shard(trainer *t, int sh, double *loss) {
    const fu_extractor_config *c = t->cfg;
    int per = c->batch / t->shards, S = c->arch.input_size;
    fu_graph *g = t->g;
    fu_graph_reset(g);
    g->training = 1;
    g->seed = mix(mix(c->seed, (uint64_t)t->step), (uint64_t)sh);
    fu_tensor *x = fu_graph_tensor(g, 4, (int64_t[]){per, 3, S, S});
    if (!x) return fu_last_code();
    int *labels = t->labels + sh * per;
    for (int j = 0; j < per; j++) {
        int k = sh * per + j;
        int rc = fu_face_data_load(t->data, t->batch_index[k], S, t->batch_flip[k], x->data + (int64_t)j * 3 * S * S, &labels[j]);
        if (rc != FU_OK) return rc;
    }
    fu_tensor *emb = fu_irse_forward(g, t->model, x);
    fu_tensor *ce = fu_cross_entropy(g, fu_arcface_logits(g, emb, t->head, labels, c->scale, c->margin), labels);
    fu_tensor *scaled = fu_scale_shift(g, ce, 1.0f / (float)t->shards, 0);
    if (!scaled) return fu_last_code();
    *loss += scaled->data[0];
    return fu_graph_backward(g, scaled, NULL);
}

static int train_step(trainer *t, double *loss) {
    draw_batch(t);
    fu_optim_zero_grad(t->opt);
    int per_rank = t->shards / t->dist->size, rc = FU_OK;
    *loss = 0;
    for (int i = 0; i < per_rank && rc == FU_OK; i++) rc = run_shard(t, t->dist->rank * per_rank + i, loss);
    if ((rc = fu_dist_agree(t->dist, rc)) != FU_OK) return rc;
    for (int i = 0; i < t->n_params && rc == FU_OK; i++) rc = fu_dist_allreduce_sum(t->dist, t->params[i]->grad, t->params[i]->numel);
    if (rc == FU_OK) rc = fu_dist_allreduce_sum_f64(t->dist, loss, 1);
    if (rc == FU_OK) rc = fu_optim_step(t->opt, t->cfg->lr);
    t->step++;
    t->samples_seen += t->cfg->batch;
    return rc;
}

int fu_extractor_train(const fu_extractor_config *cfg, const fu_dist *dist, fu_train_step_fn progress,
                       void *ctx, fu_extractor_result *res) {
    trainer t = {.cfg = cfg, .dist = dist, .shards = cfg->shards ? cfg->shards : dist->size};
    memset(res, 0, sizeof *res);
    int rc = check_config(cfg, dist, t.shards);
    if (rc == FU_OK) rc = setup(&t);
    if (rc == FU_OK && cfg->resume) rc = resume(&t);
    rc = fu_dist_agree(dist, rc);  /* a rank that cannot start must not leave the others waiting */
    while (rc == FU_OK && t.step < cfg->steps) {
        double loss;
        if ((rc = train_step(&t, &loss)) != FU_OK) break;
        if (res->steps_done++ == 0) res->first_loss = loss;
        res->last_loss = loss;
        if (progress && dist->rank == 0) progress(ctx, t.step, cfg->steps, loss);
        int due = t.step == cfg->steps || (cfg->checkpoint_every > 0 && t.step % cfg->checkpoint_every == 0);
        if (due && cfg->checkpoint && dist->rank == 0) rc = save_checkpoint(&t);
        rc = fu_dist_agree(dist, rc);
    }
    teardown(&t);
    return rc;
}
