/* The race head's per-class logit offsets (see race_offsets.h). */
#include "race_offsets.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/ops.h"
#include "faceup.h"
#include "train/finetune.h"

/* bench/RESULTS.md: gear (human-models) on UTKFace, recall per class. */
const double fu_race_gear_anchor[FU_RACE_CLASSES] = {0.94, 0.66, 0.62, 0.58, 0.44};

#define GRID_N ((int)(2 * FU_RACE_OFFSET_RANGE / FU_RACE_OFFSET_STEP + 0.5) + 1)

void fu_race_recall_of(const float *logits, const int *labels, int64_t n, const float bias[FU_RACE_CLASSES],
                       const double anchor[FU_RACE_CLASSES], fu_race_recall *out) {
    memset(out, 0, sizeof *out);
    for (int64_t i = 0; i < n; i++) {
        int y = labels[i];
        if (y < 0 || y >= FU_RACE_CLASSES) continue;
        const float *l = logits + i * FU_RACE_CLASSES;
        int best = 0;
        for (int c = 1; c < FU_RACE_CLASSES; c++)
            if (l[c] + bias[c] > l[best] + bias[best]) best = c;
        out->count[y]++;
        out->correct[y] += best == y;
    }
    int present = 0;
    out->worst_margin = INFINITY;
    for (int c = 0; c < FU_RACE_CLASSES; c++) {
        if (!out->count[c]) continue;
        out->recall[c] = (double)out->correct[c] / out->count[c];
        out->balanced += out->recall[c];
        present++;
        if (out->recall[c] - anchor[c] < out->worst_margin) out->worst_margin = out->recall[c] - anchor[c];
    }
    out->balanced = present ? out->balanced / present : 0;
    if (!present) out->worst_margin = 0;
}

/* The margins recall_c - anchor_c of the present classes, ascending (absent classes: +inf). */
static void sorted_margins(const fu_race_recall *r, const double *anchor, double m[FU_RACE_CLASSES]) {
    for (int c = 0; c < FU_RACE_CLASSES; c++) m[c] = r->count[c] ? r->recall[c] - anchor[c] : INFINITY;
    for (int i = 1; i < FU_RACE_CLASSES; i++)
        for (int j = i; j > 0 && m[j] < m[j - 1]; j--) {
            double t = m[j];
            m[j] = m[j - 1], m[j - 1] = t;
        }
}

/* Compares a with b: the worst margin first, then the next worst and so on (leximin, which lets
 * the search raise a class that is not the worst without lowering the worst), then the balanced
 * recall. >0: a is better, 0: equal, <0: worse. */
static int compare(const fu_race_recall *a, const fu_race_recall *b, const double *anchor) {
    double ma[FU_RACE_CLASSES], mb[FU_RACE_CLASSES];
    sorted_margins(a, anchor, ma);
    sorted_margins(b, anchor, mb);
    for (int c = 0; c < FU_RACE_CLASSES; c++)
        if (ma[c] != mb[c]) return ma[c] > mb[c] ? 1 : -1;
    return a->balanced > b->balanced ? 1 : a->balanced < b->balanced ? -1 : 0;
}

/* The best value of bias[c] on the grid (the centre of the widest run of best values). Returns
 * 1 when it beats the current value, and sets bias[c] to it. */
static int improve_one(const float *logits, const int *labels, int64_t n, const double *anchor, float *bias, int c) {
    fu_race_recall now, best, r;
    fu_race_recall_of(logits, labels, n, bias, anchor, &now);
    float keep = bias[c];
    int best_start = -1, best_len = 0, run_start = -1;
    for (int k = 0; k < GRID_N; k++) {
        bias[c] = -FU_RACE_OFFSET_RANGE + (float)k * FU_RACE_OFFSET_STEP;
        fu_race_recall_of(logits, labels, n, bias, anchor, &r);
        int cmp = best_start < 0 ? 1 : compare(&r, &best, anchor);
        if (cmp > 0) {
            best = r, best_start = k, best_len = 1, run_start = k;
        } else if (cmp == 0) {
            if (run_start < 0) run_start = k;
            if (k - run_start + 1 > best_len) best_start = run_start, best_len = k - run_start + 1;
        } else run_start = -1;
    }
    if (compare(&best, &now, anchor) <= 0) {
        bias[c] = keep;
        return 0;
    }
    bias[c] = -FU_RACE_OFFSET_RANGE + (float)(best_start + best_len / 2) * FU_RACE_OFFSET_STEP;
    return 1;
}

int fu_race_offsets_fit(const float *logits, const int *labels, int64_t n, const double anchor[FU_RACE_CLASSES],
                        float bias[FU_RACE_CLASSES]) {
    memset(bias, 0, FU_RACE_CLASSES * sizeof *bias);
    int64_t labelled = 0;
    for (int64_t i = 0; i < n; i++) labelled += labels[i] >= 0 && labels[i] < FU_RACE_CLASSES;
    if (!labelled) return fu_fail(FU_E_INPUT, "race offsets: no face with a race label to fit on");
    for (int round = 0; round < FU_RACE_OFFSET_ROUNDS; round++) {
        int changed = 0;
        for (int c = 0; c < FU_RACE_CLASSES; c++) changed |= improve_one(logits, labels, n, anchor, bias, c);
        if (!changed) break;
    }
    for (int c = FU_RACE_CLASSES - 1; c >= 0; c--) bias[c] -= bias[0];
    return FU_OK;
}

int fu_race_split_descriptors(const fu_xdata *d, fu_face_extractor *x, int split, float **desc, int **labels, int64_t *n,
                              fu_progress_fn progress, void *ctx) {
    int64_t m = 0, cap = d->n ? d->n : 1;
    int64_t *idx = malloc((size_t)cap * sizeof *idx);
    *desc = malloc((size_t)cap * 128 * sizeof **desc);
    *labels = malloc((size_t)cap * sizeof **labels);
    int rc = idx && *desc && *labels ? FU_OK : fu_fail(FU_E_INTERNAL, "out of memory");
    for (int64_t i = 0; rc == FU_OK && i < d->n; i++)
        if (d->f[i].split == split && d->f[i].source == FU_FACES_UTKFACE && d->f[i].race >= 0) {
            (*labels)[m] = d->f[i].race;
            idx[m++] = i;
        }
    if (rc == FU_OK && x && m) rc = fu_extractor_describe(x, d, idx, m, *desc, progress, ctx);
    for (int64_t i = 0; rc == FU_OK && !x && i < m; i++) memcpy(*desc + i * 128, d->f[idx[i]].teacher, 128 * sizeof **desc);
    free(idx);
    *n = rc == FU_OK ? m : 0;
    if (rc != FU_OK) {
        free(*desc), free(*labels);
        *desc = NULL, *labels = NULL;
    }
    return rc;
}

/* Stratified folds: the j-th row of each class goes to fold j % folds, so every fold holds its
 * share of a rare class. */
static void assign_folds(const int *y, int64_t n, int folds, int *fold) {
    int64_t seen[FU_RACE_CLASSES] = {0};
    for (int64_t i = 0; i < n; i++) fold[i] = (int)(seen[y[i]]++ % folds);
}

/* The rows of fold `f` (in == 1) or of every other fold (in == 0) into x, y and their indices
 * into at; returns their count. */
static int64_t gather(const fu_race_rows *rows, int64_t dim, const int *fold, int f, int in, float *x, int *y, int64_t *at) {
    int64_t m = 0;
    for (int64_t i = 0; i < rows->n; i++) {
        if ((fold[i] == f) != in) continue;
        memcpy(x + m * dim, rows->x + i * dim, (size_t)dim * sizeof *x);
        y[m] = rows->y[i];
        at[m++] = i;
    }
    return m;
}

int fu_race_mlp_fresh(const fu_mlp_shape *shape, const fu_race_rows *train, const fu_race_rows *select,
                      const fu_heads_train_config *cfg, fu_mlp *m, fu_race_fit *fit) {
    fu_rng r;
    fu_rng_seed(&r, cfg->seed);
    *m = (fu_mlp){0};
    int rc = fu_mlp_init(m, shape, &r);
    if (rc == FU_OK) rc = fu_race_mlp_train(m, 0, train, select, cfg, fit, NULL, NULL);
    if (rc != FU_OK) fu_mlp_release(m);
    return rc;
}

/* One fold: a fresh MLP trained on the other folds, its logits of the fold's rows into oof.
 * x, y, at, fold_logits: scratch for rows->n rows. */
static int oof_fold(const fu_race_rows *rows, const fu_race_rows *select, const int *fold, int f, const fu_mlp_shape *shape,
                    const fu_heads_train_config *cfg, float *x, int *y, int64_t *at, float *fold_logits, float *oof) {
    int64_t dim = shape->in;
    fu_race_rows train = {gather(rows, dim, fold, f, 0, x, y, at), x, y};
    fu_heads_train_config c = *cfg;
    c.seed = cfg->seed + (uint64_t)f;
    fu_mlp m;
    fu_race_fit fit;
    int rc = fu_race_mlp_fresh(shape, &train, select, &c, &m, &fit);
    if (rc != FU_OK) return rc;
    int64_t k = gather(rows, dim, fold, f, 1, x, y, at);
    if (k) rc = fu_mlp_rows(&m, x, k, fold_logits);
    for (int64_t j = 0; rc == FU_OK && j < k; j++)
        memcpy(oof + at[j] * FU_RACE_CLASSES, fold_logits + j * FU_RACE_CLASSES, FU_RACE_CLASSES * sizeof *oof);
    fu_mlp_release(&m);
    return rc;
}

int fu_race_oof_logits(const fu_race_rows *rows, const fu_race_rows *select, int folds, const fu_mlp_shape *shape,
                       const fu_heads_train_config *cfg, float *oof) {
    if (folds < 2 || rows->n < folds)
        return fu_fail(FU_E_INPUT, "race offsets: %d folds need at least 2 folds and as many faces (have %lld)", folds, (long long)rows->n);
    if (shape->out != FU_RACE_CLASSES) return fu_fail(FU_E_INPUT, "race offsets: the MLP must have %d outputs", FU_RACE_CLASSES);
    for (int64_t i = 0; i < rows->n; i++)
        if (rows->y[i] < 0 || rows->y[i] >= FU_RACE_CLASSES) return fu_fail(FU_E_INPUT, "race offsets: class %d out of range", rows->y[i]);
    int64_t per_class[FU_RACE_CLASSES] = {0};
    for (int64_t i = 0; i < rows->n; i++) per_class[rows->y[i]]++;
    for (int c = 0; c < FU_RACE_CLASSES; c++)
        if (per_class[c] < folds)
            return fu_fail(FU_E_INPUT, "race offsets: class %s has %lld faces, fewer than the %d folds", fu_race_name(c), (long long)per_class[c], folds);
    size_t n = (size_t)rows->n;
    float *x = malloc(n * (size_t)shape->in * sizeof *x), *fold_logits = malloc(n * FU_RACE_CLASSES * sizeof *fold_logits);
    int *y = malloc(n * sizeof *y), *fold = malloc(n * sizeof *fold);
    int64_t *at = malloc(n * sizeof *at);
    int rc = x && y && fold && at && fold_logits ? FU_OK : fu_fail(FU_E_INTERNAL, "out of memory");
    if (rc == FU_OK) assign_folds(rows->y, rows->n, folds, fold);
    for (int f = 0; rc == FU_OK && f < folds; f++) rc = oof_fold(rows, select, fold, f, shape, cfg, x, y, at, fold_logits, oof);
    free(x), free(y), free(fold), free(at), free(fold_logits);
    return rc;
}
