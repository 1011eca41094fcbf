/* The extractor's heads (see heads.h). */
#include "heads.h"
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/ops.h"
#include "core/rng.h"
#include "faceup.h"
#include "io/safetensors.h"

static const char *const race_names[FU_RACE_CLASSES] = {"White", "Black", "Asian", "Indian", "Others"};

const char *fu_race_name(int k) { return k >= 0 && k < FU_RACE_CLASSES ? race_names[k] : NULL; }

int fu_race_parse(const char *name) {
    char low[16] = {0};
    for (int i = 0; name && name[i] && i < 15; i++) low[i] = (char)tolower((unsigned char)name[i]);
    if (!name || strlen(name) > 15) return -1;
    if (!strcmp(low, "other")) return 4;
    for (int k = 0; k < FU_RACE_CLASSES; k++) {
        char ref[16] = {0};
        for (int i = 0; race_names[k][i]; i++) ref[i] = (char)tolower((unsigned char)race_names[k][i]);
        if (!strcmp(low, ref)) return k;
    }
    return -1;
}

/* ------------------------------------------------------------------ one MLP */

static fu_tensor **param_slot(fu_mlp *m, int j) { return j % 2 ? &m->b[j / 2] : &m->w[j / 2]; }

/* Shape of tensor j (0 w0, 1 b0, 2 w1, 3 b1) of an MLP; returns its rank. */
static int param_shape(const fu_mlp_shape *s, int j, int64_t shape[2]) {
    shape[0] = j < 2 ? s->hidden : s->out;
    shape[1] = j < 2 ? s->in : s->hidden;
    return j % 2 == 0 ? 2 : 1;
}

static void param_name(const fu_mlp_shape *s, int j, char *buf, size_t n) {
    snprintf(buf, n, "%s.%d.%s", s->name, j / 2, j % 2 ? "bias" : "weight");
}

void fu_mlp_params(fu_mlp *m, fu_tensor *out[4]) {
    for (int j = 0; j < 4; j++) out[j] = *param_slot(m, j);
}

int fu_mlp_init(fu_mlp *m, const fu_mlp_shape *s, fu_rng *r) {
    for (int j = 0; j < 4; j++) {
        int64_t shape[2];
        int nd = param_shape(s, j, shape);
        fu_tensor *t = fu_tensor_new(nd, shape);
        if (!(*param_slot(m, j) = t)) return fu_last_code() ? fu_last_code() : FU_E_INTERNAL;
        float bound = 1.0f / sqrtf((float)(j < 2 ? s->in : s->hidden));
        fu_rng_fill_uniform(r, t->data, t->numel, -bound, bound);
    }
    return FU_OK;
}

void fu_mlp_release(fu_mlp *m) {
    for (int j = 0; j < 4; j++) {
        fu_tensor_free(*param_slot(m, j));
        *param_slot(m, j) = NULL;
    }
}

int fu_mlp_read(fu_mlp *m, const fu_mlp_shape *s, const fu_safetensors *st, const char *kind) {
    int rc = FU_OK;
    for (int j = 0; rc == FU_OK && j < 4; j++) {
        int64_t shape[2];
        char name[64];
        int nd = param_shape(s, j, shape);
        param_name(s, j, name, sizeof name);
        rc = fu_st_tensor_exact(st, name, nd, shape, kind, param_slot(m, j));
    }
    return rc;
}

void fu_mlp_items(const fu_mlp *m, const fu_mlp_shape *s, char names[4][64], fu_st_item *items) {
    for (int j = 0; j < 4; j++) {
        param_name(s, j, names[j], sizeof names[j]);
        items[j] = (fu_st_item){names[j], *param_slot((fu_mlp *)m, j), FU_F32};
    }
}

/* ------------------------------------------------------------------ the heads */

static const fu_mlp_shape shapes[4] = {
    {"race", 128, 256, FU_RACE_CLASSES},
    {"attr", 128, 1024, FU_ATTRS},
    {"thumb16", 3 * 16 * 16, 256, FU_RACE_CLASSES},
    {"thumb8", 3 * 8 * 8, 128, FU_RACE_CLASSES},
};

static fu_mlp *mlp_at(fu_heads *h, int i) {
    fu_mlp *all[4] = {&h->race, &h->attr, &h->thumb16, &h->thumb8};
    return all[i];
}

/* The logit offsets, in file order: optional tensors, zero when absent. */
#define N_BIASES 3
static const char *const bias_names[N_BIASES] = {"race.logit_bias", "thumb16.logit_bias", "thumb8.logit_bias"};
static float *bias_at(fu_heads *h, int i) { return i == 0 ? h->race_logit_bias : h->thumb_logit_bias[i - 1]; }

void fu_heads_free(fu_heads *h) {
    if (!h) return;
    for (int i = 0; i < 4; i++) fu_mlp_release(mlp_at(h, i));
    free(h);
}

fu_heads *fu_heads_new(uint64_t seed) {
    fu_heads *h = fu_calloc(1, sizeof *h);
    if (!h) return NULL;
    fu_rng r;
    fu_rng_seed(&r, seed);
    for (int i = 0; i < 4; i++)
        if (fu_mlp_init(mlp_at(h, i), &shapes[i], &r) != FU_OK) { fu_heads_free(h); return NULL; }
    return h;
}

static int load_tensor(const fu_safetensors *st, const char *name, int nd, const int64_t *shape, fu_tensor **out) {
    return fu_st_tensor_exact(st, name, nd, shape, "heads", out);
}

/* Reads the optional offsets `name` into bias (zeros when absent); a wrong shape or a non-finite
 * or too large value is refused with a message. */
static int read_logit_bias(const fu_safetensors *st, const char *name, float bias[FU_RACE_CLASSES]) {
    memset(bias, 0, FU_RACE_CLASSES * sizeof *bias);
    if (!fu_st_find(st, name)) return FU_OK;
    fu_tensor *t = NULL;
    int rc = load_tensor(st, name, 1, (int64_t[]){FU_RACE_CLASSES}, &t);
    for (int k = 0; rc == FU_OK && k < FU_RACE_CLASSES; k++)
        if (fabsf(t->data[k]) > FU_RACE_BIAS_LIMIT)
            rc = fu_fail(FU_E_INPUT, "%s: tensor '%s' holds %g (|offset| <= %g expected)", st->label, name, t->data[k], FU_RACE_BIAS_LIMIT);
    if (rc == FU_OK) memcpy(bias, t->data, FU_RACE_CLASSES * sizeof *bias);
    fu_tensor_free(t);
    return rc;
}

fu_heads *fu_heads_load(const char *path) {
    fu_safetensors *st = fu_st_open(path);
    if (!st) return NULL;
    fu_heads *h = fu_calloc(1, sizeof *h);
    int rc = h ? FU_OK : FU_E_INTERNAL;
    for (int i = 0; rc == FU_OK && i < 4; i++) rc = fu_mlp_read(mlp_at(h, i), &shapes[i], st, "heads");
    fu_tensor *frame = NULL;
    if (rc == FU_OK) rc = load_tensor(st, "frame.ffhq_landmarks", 2, (int64_t[]){68, 2}, &frame);
    if (rc == FU_OK) memcpy(h->ffhq_landmarks, frame->data, sizeof h->ffhq_landmarks);
    for (int i = 0; rc == FU_OK && i < N_BIASES; i++) rc = read_logit_bias(st, bias_names[i], bias_at(h, i));
    fu_tensor_free(frame);
    fu_st_free(st);
    if (rc != FU_OK) { fu_heads_free(h); return NULL; }
    return h;
}

static fu_tensor *bias_tensor(const float bias[FU_RACE_CLASSES]) {
    fu_tensor *t = fu_tensor_newv(1, (int64_t)FU_RACE_CLASSES);
    if (t) memcpy(t->data, bias, FU_RACE_CLASSES * sizeof *bias);
    return t;
}

void fu_heads_items_release(fu_tensor *owned[FU_HEADS_OWNED]) {
    for (int k = 0; k < FU_HEADS_OWNED; k++) {
        fu_tensor_free(owned[k]);
        owned[k] = NULL;
    }
}

int fu_heads_items(const fu_heads *h, char names[16][64], fu_st_item items[FU_HEADS_ITEMS], fu_tensor *owned[FU_HEADS_OWNED]) {
    owned[0] = fu_tensor_newv(2, (int64_t)68, (int64_t)2);
    for (int i = 0; i < N_BIASES; i++) owned[1 + i] = bias_tensor(bias_at((fu_heads *)h, i));
    for (int k = 0; k < FU_HEADS_OWNED; k++)
        if (!owned[k]) {
            fu_heads_items_release(owned);
            return fu_last_code() ? fu_last_code() : FU_E_INTERNAL;
        }
    memcpy(owned[0]->data, h->ffhq_landmarks, sizeof h->ffhq_landmarks);
    for (int i = 0; i < 4; i++) fu_mlp_items(mlp_at((fu_heads *)h, i), &shapes[i], names + 4 * i, items + 4 * i);
    items[16] = (fu_st_item){"frame.ffhq_landmarks", owned[0], FU_F32};
    for (int i = 0; i < N_BIASES; i++) items[17 + i] = (fu_st_item){bias_names[i], owned[1 + i], FU_F32};
    return FU_OK;
}

int fu_heads_save(const fu_heads *h, const char *path, const char *const *meta_kv, int n_meta) {
    fu_st_item items[FU_HEADS_ITEMS];
    char names[16][64];
    fu_tensor *owned[FU_HEADS_OWNED];
    int rc = fu_heads_items(h, names, items, owned);
    if (rc != FU_OK) return rc;
    fu_st_meta meta[8];
    for (int k = 0; k < n_meta && k < 8; k++) meta[k] = (fu_st_meta){meta_kv[2 * k], meta_kv[2 * k + 1]};
    rc = fu_st_save(path, items, FU_HEADS_ITEMS, meta, n_meta < 8 ? n_meta : 8);
    fu_heads_items_release(owned);
    return rc;
}

/* ------------------------------------------------------------------ forward */

fu_tensor *fu_mlp_forward(fu_graph *g, const fu_mlp *m, fu_tensor *x) {
    if (x->ndim != 2 || x->shape[1] != m->w[0]->shape[1])
        return fu_fail_null(FU_E_INPUT, "mlp: input [N, %lld] expected", (long long)m->w[0]->shape[1]);
    fu_tensor *hidden = fu_relu(g, fu_linear(g, x, m->w[0], m->b[0]));
    return hidden ? fu_linear(g, hidden, m->w[1], m->b[1]) : NULL;
}

int fu_mlp_rows(const fu_mlp *m, const float *x, int64_t n, float *out) {
    int64_t in = m->w[0]->shape[1], n_out = m->w[1]->shape[0];
    fu_graph *g = fu_graph_new();
    fu_tensor *t = g ? fu_graph_tensor(g, 2, (int64_t[]){n, in}) : NULL;
    if (t) memcpy(t->data, x, (size_t)(n * in) * sizeof *x);
    fu_tensor *y = t ? fu_mlp_forward(g, m, t) : NULL;
    if (y) memcpy(out, y->data, (size_t)(n * n_out) * sizeof *out);
    int rc = y ? FU_OK : (fu_last_code() ? fu_last_code() : FU_E_INTERNAL);
    fu_graph_free(g);
    return rc;
}

fu_tensor *fu_heads_race_logits(fu_graph *g, const fu_heads *h, fu_tensor *desc) {
    fu_tensor *logits = desc ? fu_mlp_forward(g, &h->race, desc) : NULL;
    fu_tensor *bias = logits ? fu_graph_tensor(g, 2, (int64_t[]){1, FU_RACE_CLASSES}) : NULL;
    if (!bias) return NULL;
    memcpy(bias->data, h->race_logit_bias, sizeof h->race_logit_bias);
    return fu_add(g, logits, bias);   /* broadcast over the rows */
}

int fu_heads_race_rows(const fu_heads *h, const float *desc, int64_t n, float *out) {
    int rc = fu_mlp_rows(&h->race, desc, n, out);
    for (int64_t i = 0; rc == FU_OK && i < n * FU_RACE_CLASSES; i++) out[i] += h->race_logit_bias[i % FU_RACE_CLASSES];
    return rc;
}

/* [1,3,s,s] in [0,1] -> [1, 3 s s] in [-1,1] (s = 8 or 16, larger powers of two downscaled). */
static fu_tensor *thumb_input(fu_graph *g, const fu_tensor *thumb) {
    int64_t s = thumb->ndim == 4 ? thumb->shape[3] : 0;
    int pow2 = s >= 8 && (s & (s - 1)) == 0;
    if (thumb->ndim != 4 || thumb->shape[0] != 1 || thumb->shape[1] != 3 || thumb->shape[2] != s || !pow2 || s > 1024)
        return fu_fail_null(FU_E_INPUT, "thumbnail race: a square RGB thumbnail of 8, 16, 32 ... 1024 pixels expected");
    fu_tensor *x = (fu_tensor *)thumb;
    if (s > 16) x = fu_bicubic_downsample(g, x, (int)(s / 16));
    int64_t side = s > 16 ? 16 : s;
    return x ? fu_scale_shift(g, fu_reshape(g, x, 2, (int64_t[]){1, 3 * side * side}), 2, -1) : NULL;
}

int fu_heads_thumb_race(const fu_heads *h, const fu_tensor *thumb, float probs[FU_RACE_CLASSES]) {
    fu_graph *g = fu_graph_new();
    if (!g) return -1;
    fu_tensor *x = thumb_input(g, thumb);
    int small = x && x->shape[1] == 3 * 8 * 8;
    fu_tensor *logits = x ? fu_mlp_forward(g, small ? &h->thumb8 : &h->thumb16, x) : NULL;
    for (int k = 0; logits && k < FU_RACE_CLASSES; k++) logits->data[k] += h->thumb_logit_bias[small][k];
    fu_tensor *p = logits ? fu_softmax(g, logits, 1) : NULL;
    int best = p ? 0 : -1;
    for (int k = 0; p && k < FU_RACE_CLASSES; k++) {
        probs[k] = p->data[k];
        if (p->data[k] > p->data[best]) best = k;
    }
    fu_graph_free(g);
    return best;
}
