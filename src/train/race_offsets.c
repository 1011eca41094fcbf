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

/* Raw race logits [n, 5] of descriptors e [n, 128]. */
static int mlp_logits(const fu_heads *h, const float *e, int64_t n, float *out) {
    fu_graph *g = fu_graph_new();
    fu_tensor *in = g ? fu_graph_tensor(g, 2, (int64_t[]){n, 128}) : NULL;
    if (in) memcpy(in->data, e, (size_t)n * 128 * sizeof *e);
    fu_tensor *y = in ? fu_mlp_forward(g, &h->race, in) : NULL;
    if (y) memcpy(out, y->data, (size_t)n * FU_RACE_CLASSES * sizeof *out);
    int rc = y ? FU_OK : (fu_last_code() ? fu_last_code() : FU_E_INTERNAL);
    fu_graph_free(g);
    return rc;
}

int fu_race_split_logits(const fu_xdata *d, fu_face_extractor *x, const fu_heads *h, int split, float **logits, int **labels,
                         int64_t *n) {
    int64_t m = 0, cap = d->n ? d->n : 1;
    int64_t *idx = malloc((size_t)cap * sizeof *idx);
    float *e = malloc((size_t)cap * 128 * sizeof *e);
    *logits = malloc((size_t)cap * FU_RACE_CLASSES * sizeof **logits);
    *labels = malloc((size_t)cap * sizeof **labels);
    int rc = idx && e && *logits && *labels ? FU_OK : fu_fail(FU_E_INTERNAL, "out of memory");
    for (int64_t i = 0; rc == FU_OK && i < d->n; i++)
        if (d->f[i].split == split && d->f[i].source == FU_FACES_UTKFACE && d->f[i].race >= 0) {
            (*labels)[m] = d->f[i].race;
            idx[m++] = i;
        }
    if (rc == FU_OK && x && m) rc = fu_extractor_describe(x, d, idx, m, e);
    for (int64_t i = 0; rc == FU_OK && !x && i < m; i++) memcpy(e + i * 128, d->f[idx[i]].teacher, 128 * sizeof *e);
    if (rc == FU_OK && m) rc = mlp_logits(h, e, m, *logits);
    free(idx);
    free(e);
    *n = rc == FU_OK ? m : 0;
    if (rc != FU_OK) {
        free(*logits), free(*labels);
        *logits = NULL, *labels = NULL;
    }
    return rc;
}
