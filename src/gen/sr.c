#include "sr.h"
#include "core/error.h"
#include "core/ops.h"
#include "core/rng.h"
#include "faceup.h"
#include "io/safetensors.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LEAK 0.2f

fu_sr_config fu_sr_default_config(void) { return (fu_sr_config){32, 4}; }

static fu_tensor *add_param(fu_sr *m, const char *name, int ndim, const int64_t *shape) {
    fu_tensor *t = fu_tensor_new(ndim, shape);
    if (!t) return NULL;
    fu_tensor_set_name(t, name);
    m->params[m->n_params++] = t;
    return t;
}

/* A conv3x3's weight [out,in,3,3] and bias [out], named PREFIX.weight / PREFIX.bias. */
static int add_conv(fu_sr *m, const char *prefix, int64_t out, int64_t in, fu_tensor **w, fu_tensor **b) {
    char name[64];
    snprintf(name, sizeof name, "%s.weight", prefix);
    *w = add_param(m, name, 4, (int64_t[]){out, in, 3, 3});
    snprintf(name, sizeof name, "%s.bias", prefix);
    *b = add_param(m, name, 1, (int64_t[]){out});
    return *w && *b ? FU_OK : FU_E_INTERNAL;
}

static int sr_alloc(fu_sr *m) {
    int64_t C = m->cfg.channels, U = C / 2;
    int rc = add_conv(m, "sr.head", C, 3, &m->head_w, &m->head_b);
    char prefix[48];
    for (int i = 0; rc == FU_OK && i < m->cfg.blocks; i++)
        for (int j = 0; rc == FU_OK && j < 2; j++) {
            snprintf(prefix, sizeof prefix, "sr.block%d.conv%d", i, j);
            rc = add_conv(m, prefix, C, C, &m->block_w[i][j], &m->block_b[i][j]);
        }
    if (rc == FU_OK) rc = add_conv(m, "sr.up0", U, C, &m->up_w[0], &m->up_b[0]);
    if (rc == FU_OK) rc = add_conv(m, "sr.up1", U, U, &m->up_w[1], &m->up_b[1]);
    if (rc == FU_OK) rc = add_conv(m, "sr.rgb", 3, U, &m->rgb_w, &m->rgb_b);
    return rc;
}

static fu_sr *sr_shell(const fu_sr_config *cfg) {
    if (cfg->channels < 4 || cfg->channels > 256 || cfg->channels % 2 || cfg->blocks < 0 || cfg->blocks > FU_SR_MAX_BLOCKS)
        return fu_fail_null(FU_E_INPUT, "sr: bad config channels %d blocks %d (channels even 4..256, blocks 0..%d)",
                            cfg->channels, cfg->blocks, FU_SR_MAX_BLOCKS);
    fu_sr *m = calloc(1, sizeof *m);
    if (!m) return fu_fail_null(FU_E_INTERNAL, "sr: out of memory");
    m->cfg = *cfg;
    if (sr_alloc(m) != FU_OK) {
        fu_sr_free(m);
        return fu_fail_null(FU_E_INTERNAL, "sr: out of memory");
    }
    return m;
}

static void init_normal(fu_rng *r, fu_tensor *w, float gain) {
    int64_t fan_in = w->numel / w->shape[0];
    fu_rng_fill_normal(r, w->data, w->numel, 0, gain / sqrtf((float)fan_in));
}

fu_sr *fu_sr_new(const fu_sr_config *cfg, uint64_t seed) {
    fu_sr *m = sr_shell(cfg);
    if (!m) return NULL;
    fu_rng r;
    fu_rng_seed(&r, seed);
    float he = sqrtf(2.0f / (1 + LEAK * LEAK));
    init_normal(&r, m->head_w, he);
    for (int i = 0; i < cfg->blocks; i++) {
        init_normal(&r, m->block_w[i][0], he);
        init_normal(&r, m->block_w[i][1], 0.1f);   /* each block starts near the identity */
    }
    init_normal(&r, m->up_w[0], he);
    init_normal(&r, m->up_w[1], he);
    init_normal(&r, m->rgb_w, 0.1f);               /* the stage starts near the bicubic upscale */
    return m;
}

void fu_sr_free(fu_sr *m) {
    if (!m) return;
    for (int i = 0; i < m->n_params; i++) fu_tensor_free(m->params[i]);
    free(m);
}

int64_t fu_sr_param_count(const fu_sr *m) {
    int64_t n = 0;
    for (int i = 0; i < m->n_params; i++) n += m->params[i]->numel;
    return n;
}

int fu_sr_requires_grad(fu_sr *m, int on) {
    for (int i = 0; i < m->n_params; i++) {
        int rc = fu_tensor_requires_grad(m->params[i], on);
        if (rc != FU_OK) return rc;
    }
    return FU_OK;
}

fu_sr *fu_sr_clone(const fu_sr *m) {
    fu_sr *c = sr_shell(&m->cfg);
    for (int i = 0; c && i < m->n_params; i++) memcpy(c->params[i]->data, m->params[i]->data, sizeof(float) * (size_t)m->params[i]->numel);
    return c;
}

int fu_sr_present(const fu_safetensors *st) { return fu_st_find(st, "sr.head.weight") != NULL; }

/* C from sr.head.weight, K from the number of sr.block{i}.conv0.weight tensors. */
static int config_from_file(const fu_safetensors *st, fu_sr_config *cfg) {
    const fu_st_entry *head = fu_st_find(st, "sr.head.weight");
    if (!head || head->ndim != 4 || head->shape[0] > 256)
        return fu_fail(FU_E_INPUT, "%s: not a faceup SR stage (sr.head.weight missing or misshapen)", st->label);
    int k = 0;
    char name[48];
    do snprintf(name, sizeof name, "sr.block%d.conv0.weight", k);
    while (fu_st_find(st, name) && ++k <= FU_SR_MAX_BLOCKS);
    *cfg = (fu_sr_config){(int)head->shape[0], k};
    return FU_OK;
}

int fu_sr_from_safetensors(const fu_safetensors *st, fu_sr **out) {
    *out = NULL;
    fu_sr_config cfg;
    int rc = config_from_file(st, &cfg);
    fu_sr *m = rc == FU_OK ? sr_shell(&cfg) : NULL;
    if (rc == FU_OK && !m) rc = fu_fail(FU_E_INPUT, "%s: %s", st->label, fu_last_error());
    for (int i = 0; rc == FU_OK && i < m->n_params; i++) {
        fu_tensor *p = m->params[i];
        const fu_st_entry *e = fu_st_find(st, p->name);
        char buf[96];
        if (!e || e->numel != p->numel || e->ndim != p->ndim || memcmp(e->shape, p->shape, sizeof(int64_t) * (size_t)p->ndim)) {
            rc = fu_fail(FU_E_INPUT, "%s: tensor %s missing or not of shape %s", st->label, p->name, fu_shape_str(p, buf, sizeof buf));
            break;
        }
        fu_convert_to_f32(e->dtype, st->data + e->begin, p->data, (size_t)p->numel);
        for (int64_t j = 0; rc == FU_OK && j < p->numel; j++)
            if (!isfinite(p->data[j])) rc = fu_fail(FU_E_INPUT, "%s: tensor %s has a non-finite value", st->label, p->name);
    }
    if (rc != FU_OK) { fu_sr_free(m); return rc; }
    *out = m;
    return FU_OK;
}

fu_tensor *fu_sr_forward(fu_graph *g, const fu_sr *m, fu_tensor *x) {
    if (x && (x->ndim != 4 || x->shape[1] != 3 || x->shape[2] != x->shape[3])) {
        char buf[96];
        return fu_fail_null(FU_E_INPUT, "sr: input %s, expected [N,3,S,S]", fu_shape_str(x, buf, sizeof buf));
    }
    fu_conv_params p = {.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1};
    fu_tensor *h = fu_leaky_relu(g, fu_conv2d(g, x, m->head_w, m->head_b, &p), LEAK);
    for (int i = 0; i < m->cfg.blocks; i++) {
        fu_tensor *t = fu_leaky_relu(g, fu_conv2d(g, h, m->block_w[i][0], m->block_b[i][0], &p), LEAK);
        h = fu_add(g, h, fu_conv2d(g, t, m->block_w[i][1], m->block_b[i][1], &p));
    }
    h = fu_leaky_relu(g, fu_conv2d(g, fu_upsample_nearest(g, h, 2), m->up_w[0], m->up_b[0], &p), LEAK);
    h = fu_leaky_relu(g, fu_conv2d(g, h, m->up_w[1], m->up_b[1], &p), LEAK);
    fu_tensor *r = fu_conv2d(g, h, m->rgb_w, m->rgb_b, &p);
    if (!r) return NULL;
    return fu_add(g, fu_resize_bicubic(g, x, 2 * x->shape[2], 2 * x->shape[3]), r);
}
