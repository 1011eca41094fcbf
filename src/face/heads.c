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

/* ------------------------------------------------------------------ layout */

typedef struct { const char *name; int in, hidden, out; } mlp_shape;
static const mlp_shape shapes[4] = {
    {"race", 128, 256, FU_RACE_CLASSES},
    {"attr", 128, 1024, FU_ATTRS},
    {"thumb16", 3 * 16 * 16, 256, FU_RACE_CLASSES},
    {"thumb8", 3 * 8 * 8, 128, FU_RACE_CLASSES},
};

static fu_mlp *mlp_at(fu_heads *h, int i) {
    fu_mlp *all[4] = {&h->race, &h->attr, &h->thumb16, &h->thumb8};
    return all[i];
}

/* Shape of tensor j (0 w0, 1 b0, 2 w1, 3 b1) of an MLP. */
static int param_shape(const mlp_shape *s, int j, int64_t shape[2]) {
    int rows = j < 2 ? s->hidden : s->out, cols = j < 2 ? s->in : s->hidden;
    shape[0] = rows;
    shape[1] = cols;
    return j % 2 == 0 ? 2 : 1;
}

static void param_name(const mlp_shape *s, int j, char *buf, size_t n) {
    snprintf(buf, n, "%s.%d.%s", s->name, j / 2, j % 2 ? "bias" : "weight");
}

static fu_tensor **param_slot(fu_mlp *m, int j) { return j % 2 ? &m->b[j / 2] : &m->w[j / 2]; }

void fu_mlp_params(fu_mlp *m, fu_tensor *out[4]) {
    for (int j = 0; j < 4; j++) out[j] = *param_slot(m, j);
}

void fu_heads_free(fu_heads *h) {
    if (!h) return;
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) fu_tensor_free(*param_slot(mlp_at(h, i), j));
    free(h);
}

/* ------------------------------------------------------------------ new, load, save */

fu_heads *fu_heads_new(uint64_t seed) {
    fu_heads *h = fu_calloc(1, sizeof *h);
    if (!h) return NULL;
    fu_rng r;
    fu_rng_seed(&r, seed);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
            int64_t shape[2];
            int nd = param_shape(&shapes[i], j, shape);
            fu_tensor *t = fu_tensor_new(nd, shape);
            if (!t) { fu_heads_free(h); return NULL; }
            *param_slot(mlp_at(h, i), j) = t;
            /* PyTorch's nn.Linear: weight and bias uniform in +-1/sqrt(fan_in). */
            float bound = 1.0f / sqrtf((float)(j < 2 ? shapes[i].in : shapes[i].hidden));
            fu_rng_fill_uniform(&r, t->data, t->numel, -bound, bound);
        }
    return h;
}

static int load_tensor(const fu_safetensors *st, const char *name, int nd, const int64_t *shape, fu_tensor **out) {
    return fu_st_tensor_exact(st, name, nd, shape, "heads", out);
}

int fu_heads_read_race_bias(const fu_safetensors *st, float bias[FU_RACE_CLASSES]) {
    memset(bias, 0, FU_RACE_CLASSES * sizeof *bias);
    if (!fu_st_find(st, "race.logit_bias")) return FU_OK;
    fu_tensor *t = NULL;
    int rc = load_tensor(st, "race.logit_bias", 1, (int64_t[]){FU_RACE_CLASSES}, &t);
    for (int k = 0; rc == FU_OK && k < FU_RACE_CLASSES; k++)
        if (fabsf(t->data[k]) > FU_RACE_BIAS_LIMIT)
            rc = fu_fail(FU_E_INPUT, "%s: tensor 'race.logit_bias' holds %g (|offset| <= %g expected)", st->label, t->data[k], FU_RACE_BIAS_LIMIT);
    if (rc == FU_OK) memcpy(bias, t->data, FU_RACE_CLASSES * sizeof *bias);
    fu_tensor_free(t);
    return rc;
}

fu_heads *fu_heads_load(const char *path) {
    fu_safetensors *st = fu_st_open(path);
    if (!st) return NULL;
    fu_heads *h = fu_calloc(1, sizeof *h);
    int rc = h ? FU_OK : FU_E_INTERNAL;
    char name[64];
    for (int i = 0; rc == FU_OK && i < 4; i++)
        for (int j = 0; rc == FU_OK && j < 4; j++) {
            int64_t shape[2];
            int nd = param_shape(&shapes[i], j, shape);
            param_name(&shapes[i], j, name, sizeof name);
            rc = load_tensor(st, name, nd, shape, param_slot(mlp_at(h, i), j));
        }
    fu_tensor *frame = NULL;
    if (rc == FU_OK) rc = load_tensor(st, "frame.ffhq_landmarks", 2, (int64_t[]){68, 2}, &frame);
    if (rc == FU_OK) memcpy(h->ffhq_landmarks, frame->data, sizeof h->ffhq_landmarks);
    if (rc == FU_OK) rc = fu_heads_read_race_bias(st, h->race_logit_bias);
    fu_tensor_free(frame);
    fu_st_free(st);
    if (rc != FU_OK) { fu_heads_free(h); return NULL; }
    return h;
}

int fu_heads_save(const fu_heads *h, const char *path, const char *const *meta_kv, int n_meta) {
    fu_st_item items[18];
    char names[16][64];
    fu_tensor *frame = fu_tensor_newv(2, (int64_t)68, (int64_t)2);
    fu_tensor *bias = frame ? fu_heads_race_bias_tensor(h) : NULL;
    if (!bias) {
        fu_tensor_free(frame);
        return fu_last_code();
    }
    memcpy(frame->data, h->ffhq_landmarks, sizeof h->ffhq_landmarks);
    int n = 0;
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++, n++) {
            param_name(&shapes[i], j, names[n], sizeof names[n]);
            items[n] = (fu_st_item){names[n], *param_slot(mlp_at((fu_heads *)h, i), j), FU_F32};
        }
    items[n++] = (fu_st_item){"frame.ffhq_landmarks", frame, FU_F32};
    items[n++] = (fu_st_item){"race.logit_bias", bias, FU_F32};
    fu_st_meta meta[8];
    for (int k = 0; k < n_meta && k < 8; k++) meta[k] = (fu_st_meta){meta_kv[2 * k], meta_kv[2 * k + 1]};
    int rc = fu_st_save(path, items, n, meta, n_meta < 8 ? n_meta : 8);
    fu_tensor_free(frame);
    fu_tensor_free(bias);
    return rc;
}

/* ------------------------------------------------------------------ forward */

fu_tensor *fu_mlp_forward(fu_graph *g, const fu_mlp *m, fu_tensor *x) {
    if (x->ndim != 2 || x->shape[1] != m->w[0]->shape[1])
        return fu_fail_null(FU_E_INPUT, "mlp: input [N, %lld] expected", (long long)m->w[0]->shape[1]);
    fu_tensor *hidden = fu_relu(g, fu_linear(g, x, m->w[0], m->b[0]));
    return hidden ? fu_linear(g, hidden, m->w[1], m->b[1]) : NULL;
}

fu_tensor *fu_heads_race_bias_tensor(const fu_heads *h) {
    fu_tensor *t = fu_tensor_newv(1, (int64_t)FU_RACE_CLASSES);
    if (t) memcpy(t->data, h->race_logit_bias, sizeof h->race_logit_bias);
    return t;
}

fu_tensor *fu_heads_race_logits(fu_graph *g, const fu_heads *h, fu_tensor *desc) {
    fu_tensor *logits = desc ? fu_mlp_forward(g, &h->race, desc) : NULL;
    fu_tensor *bias = logits ? fu_graph_tensor(g, 2, (int64_t[]){1, FU_RACE_CLASSES}) : NULL;
    if (!bias) return NULL;
    memcpy(bias->data, h->race_logit_bias, sizeof h->race_logit_bias);
    return fu_add(g, logits, bias);   /* broadcast over the rows */
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
    const fu_mlp *m = x && x->shape[1] == 3 * 8 * 8 ? &h->thumb8 : &h->thumb16;
    fu_tensor *p = x ? fu_softmax(g, fu_mlp_forward(g, m, x), 1) : NULL;
    int best = p ? 0 : -1;
    for (int k = 0; p && k < FU_RACE_CLASSES; k++) {
        probs[k] = p->data[k];
        if (p->data[k] > p->data[best]) best = k;
    }
    fu_graph_free(g);
    return best;
}
