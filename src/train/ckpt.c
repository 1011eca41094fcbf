#include "ckpt.h"
#include "core/error.h"
#include "faceup.h"
#include "io/dtype.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

char *fu_ckpt_path(const char *out, const char *suffix) {
    size_t n = strlen(out);
    const char *ext = ".safetensors";
    if (n >= strlen(ext) && !strcmp(out + n - strlen(ext), ext)) n -= strlen(ext);
    char *p = malloc(n + strlen(suffix) + 1);
    if (!p) return NULL;
    memcpy(p, out, n);
    strcpy(p + n, suffix);
    return p;
}

int fu_history_push(fu_history *h, const float *row) {
    if (h->n == h->cap) {
        int64_t cap = h->cap ? 2 * h->cap : 1024;
        float *grown = realloc(h->rows, (size_t)(cap * h->cols) * sizeof *grown);
        if (!grown) return fu_fail(FU_E_INTERNAL, "train: out of memory");
        h->rows = grown;
        h->cap = cap;
    }
    memcpy(h->rows + h->n * h->cols, row, (size_t)h->cols * sizeof *row);
    h->n++;
    return FU_OK;
}

void fu_history_free(fu_history *h) {
    free(h->rows);
    h->rows = NULL;
    h->n = h->cap = 0;
}

fu_tensor *fu_history_tensor(const fu_history *h) {
    fu_tensor *t = fu_tensor_newv(2, h->n > 0 ? h->n : 1, (int64_t)h->cols);
    if (!t) return NULL;
    if (h->n > 0) memcpy(t->data, h->rows, (size_t)(h->n * h->cols) * sizeof(float));
    else fu_tensor_fill(t, NAN);
    return t;
}

int fu_history_restore(fu_history *h, const fu_safetensors *st, const char *name) {
    const fu_st_entry *e = fu_st_find(st, name);
    if (!e || e->ndim != 2 || e->shape[1] != h->cols) return fu_fail(FU_E_INPUT, "%s: checkpoint %s missing", st->label, name);
    float *rows = malloc((size_t)e->numel * sizeof *rows);
    if (!rows) return fu_fail(FU_E_INTERNAL, "train: out of memory");
    fu_convert_to_f32(e->dtype, st->data + e->begin, rows, (size_t)e->numel);
    int rc = FU_OK;
    for (int64_t i = 0; rc == FU_OK && i < e->shape[0]; i++)
        if (isfinite(rows[i * h->cols])) rc = fu_history_push(h, rows + i * h->cols);
    free(rows);
    return rc;
}

int64_t fu_history_binned(const fu_history *h, int col, int64_t points, float *x, float *y) {
    int64_t bin = h->n / points + 1, n = (h->n + bin - 1) / bin;
    for (int64_t b = 0; b < n; b++) {
        int64_t first = b * bin, last = first + bin < h->n ? first + bin : h->n;
        double sum = 0;
        for (int64_t i = first; i < last; i++) sum += h->rows[i * h->cols + col];
        x[b] = h->rows[(last - 1) * h->cols];
        y[b] = (float)(sum / (double)(last - first));
    }
    return n;
}

int fu_ckpt_meta_i64(const fu_safetensors *st, const char *key, int64_t lo, int64_t hi, int64_t *out) {
    const char *s = fu_st_meta_get(st, key);
    char *end;
    long long v = s ? strtoll(s, &end, 10) : 0;
    if (!s || *end || v < lo || v > hi) return fu_fail(FU_E_INPUT, "%s: checkpoint metadata %s missing or invalid", st->label, key);
    *out = v;
    return FU_OK;
}

int fu_ckpt_meta_float(const fu_safetensors *st, const char *key, float *out) {
    const char *s = fu_st_meta_get(st, key);
    char *end;
    double v = s ? strtod(s, &end) : 0;
    if (!s || *end || !isfinite(v)) return fu_fail(FU_E_INPUT, "%s: checkpoint metadata %s missing or invalid", st->label, key);
    *out = (float)v;
    return FU_OK;
}

int fu_ckpt_read(const fu_safetensors *st, const char *name, float *dst, int64_t numel) {
    const fu_st_entry *e = fu_st_find(st, name);
    if (!e || e->numel != numel) return fu_fail(FU_E_INPUT, "%s: checkpoint tensor %s missing or of the wrong size", st->label, name);
    fu_convert_to_f32(e->dtype, st->data + e->begin, dst, (size_t)numel);
    return FU_OK;
}

void fu_grid_place(fu_tensor *grid, const fu_tensor *imgs, int64_t k, int64_t row, int64_t col) {
    int64_t S = imgs->shape[2], H = grid->shape[2], W = grid->shape[3];
    const float *src = imgs->data + k * 3 * S * S;
    for (int64_t c = 0; c < 3; c++)
        for (int64_t y = 0; y < S; y++)
            for (int64_t x = 0; x < S; x++) {
                float v = (src[(c * S + y) * S + x] + 1) * 0.5f;
                grid->data[(c * H + row * S + y) * W + col * S + x] = v < 0 ? 0 : (v > 1 ? 1 : v);
            }
}

int fu_sheet_faces(const fu_faces *set, int64_t n, fu_tensor *x) {
    fu_faces_loader l;
    int rc = fu_faces_loader_init(&l, set, FU_SPLIT_VAL, 0, 0);
    if (rc != FU_OK) rc = fu_faces_loader_init(&l, set, FU_SPLIT_TRAIN, 0, 0);
    if (rc != FU_OK) return rc;
    int64_t img = 3 * (int64_t)set->size * set->size;
    for (int64_t k = 0; k < n; k++) fu_faces_get(set, l.members[k * l.n / n], 0, x->data + k * img);
    fu_faces_loader_free(&l);
    return FU_OK;
}
