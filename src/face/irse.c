/* IR-SE ResNet (see irse.h): construction, forward through the engine's ops, safetensors I/O. */
#include "face/irse.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/ops.h"
#include "faceup.h"
#include "io/safetensors.h"

#define BN_MOMENTUM 0.1f
#define BN_EPS 1e-5f
#define PRELU_INIT 0.25f

int fu_irse_check_config(const fu_irse_config *cfg) {
    for (int i = 0; i < FU_IRSE_STAGES; i++) {
        if (cfg->units[i] < 1 || cfg->units[i] > FU_IRSE_MAX_UNITS)
            return fu_fail(FU_E_INPUT, "irse: stage %d has %d units (1..%d)", i, cfg->units[i], FU_IRSE_MAX_UNITS);
        if (cfg->channels[i] < 1 || cfg->channels[i] > 8192)
            return fu_fail(FU_E_INPUT, "irse: stage %d has %d channels (1..8192)", i, cfg->channels[i]);
        if (cfg->se_reduction < 1 || cfg->channels[i] / cfg->se_reduction < 1)
            return fu_fail(FU_E_INPUT, "irse: SE reduction %d leaves no channel at stage %d (%d channels)",
                           cfg->se_reduction, i, cfg->channels[i]);
    }
    if (cfg->input_size < 16 || cfg->input_size > 1024 || cfg->input_size % 16)
        return fu_fail(FU_E_INPUT, "irse: input size %d must be a multiple of 16 in 16..1024", cfg->input_size);
    if (cfg->embedding < 1 || cfg->embedding > 65536)
        return fu_fail(FU_E_INPUT, "irse: embedding size %d (1..65536)", cfg->embedding);
    if (!(cfg->dropout >= 0 && cfg->dropout < 1))
        return fu_fail(FU_E_INPUT, "irse: dropout %g must be in [0, 1)", (double)cfg->dropout);
    return FU_OK;
}

int fu_irse_arch(const char *name, fu_irse_config *cfg) {
    static const int u50[FU_IRSE_STAGES] = {3, 4, 14, 3}, u100[FU_IRSE_STAGES] = {3, 13, 30, 3};
    if (!strcmp(name, "irse-tiny")) {
        *cfg = (fu_irse_config){.units = {1, 1, 1, 1}, .channels = {8, 16, 16, 32}, .input_size = 32,
                                .embedding = 32, .se_reduction = 4};
        return FU_OK;
    }
    const int *units = !strcmp(name, "irse50") ? u50 : !strcmp(name, "irse100") ? u100 : NULL;
    if (!units) return fu_fail(FU_E_INPUT, "unknown architecture '%s' (irse50, irse100 or irse-tiny)", name);
    *cfg = (fu_irse_config){.channels = {64, 128, 256, 512}, .input_size = 112, .embedding = 512, .se_reduction = 16};
    memcpy(cfg->units, units, sizeof cfg->units);
    return FU_OK;
}

/* ---- construction ---------------------------------------------------------------------- */

enum { PARAM, BUFFER };

/* A named leaf appended to m->tensors (capacity checked by the caller's sizing). */
static fu_tensor *add_tensor(fu_irse *m, const char *name, int kind, int ndim, const int64_t *shape) {
    fu_tensor *t = fu_tensor_new(ndim, shape);
    if (!t) return NULL;
    m->tensors[m->n_tensors++] = t;
    fu_tensor_set_name(t, name);
    if (kind == PARAM && fu_tensor_requires_grad(t, 1) != FU_OK) return NULL;
    return t;
}

/* He-normal convolution weight [out, in, k, k]. */
static fu_tensor *add_conv(fu_irse *m, fu_rng *rng, const char *name, int out, int in, int k) {
    fu_tensor *t = add_tensor(m, name, PARAM, 4, (int64_t[]){out, in, k, k});
    if (t) fu_rng_fill_normal(rng, t->data, t->numel, 0, sqrtf(2.0f / (float)(in * k * k)));
    return t;
}

static fu_tensor *add_prelu(fu_irse *m, const char *name, int c) {
    fu_tensor *t = add_tensor(m, name, PARAM, 1, (int64_t[]){c});
    if (t) fu_tensor_fill(t, PRELU_INIT);
    return t;
}

/* prefix.weight / .bias / .running_mean / .running_var; 1 on success. */
static int add_bn(fu_irse *m, const char *prefix, int c, fu_irse_bn *bn) {
    char name[96];
    const int64_t shape[1] = {c};
    snprintf(name, sizeof name, "%s.weight", prefix);
    if (!(bn->weight = add_tensor(m, name, PARAM, 1, shape))) return 0;
    snprintf(name, sizeof name, "%s.bias", prefix);
    if (!(bn->bias = add_tensor(m, name, PARAM, 1, shape))) return 0;
    snprintf(name, sizeof name, "%s.running_mean", prefix);
    if (!(bn->running_mean = add_tensor(m, name, BUFFER, 1, shape))) return 0;
    snprintf(name, sizeof name, "%s.running_var", prefix);
    if (!(bn->running_var = add_tensor(m, name, BUFFER, 1, shape))) return 0;
    fu_tensor_fill(bn->weight, 1);
    fu_tensor_fill(bn->running_var, 1);
    return 1;
}

static int add_unit(fu_irse *m, fu_rng *rng, int k, fu_irse_unit *u) {
    char p[64], name[96];
    int d = u->depth, r = d / m->cfg.se_reduction;
    snprintf(p, sizeof p, "body.%d", k);
#define NAME(suffix) (snprintf(name, sizeof name, "%s.%s", p, suffix), name)
    if (!add_bn(m, NAME("res_layer.0"), u->in_channels, &u->bn1) ||
        !(u->conv1 = add_conv(m, rng, NAME("res_layer.1.weight"), d, u->in_channels, 3)) ||
        !add_bn(m, NAME("res_layer.2"), d, &u->bn2) ||
        !(u->prelu = add_prelu(m, NAME("res_layer.3.weight"), d)) ||
        !(u->conv2 = add_conv(m, rng, NAME("res_layer.4.weight"), d, d, 3)) ||
        !add_bn(m, NAME("res_layer.5"), d, &u->bn3) ||
        !(u->se_fc1 = add_conv(m, rng, NAME("res_layer.6.fc1.weight"), r, d, 1)) ||
        !(u->se_fc2 = add_conv(m, rng, NAME("res_layer.6.fc2.weight"), d, r, 1)))
        return 0;
    if (u->in_channels != d &&
        (!(u->shortcut_conv = add_conv(m, rng, NAME("shortcut_layer.0.weight"), d, u->in_channels, 1)) ||
         !add_bn(m, NAME("shortcut_layer.1"), d, &u->shortcut_bn)))
        return 0;
#undef NAME
    return 1;
}

/* Units of all stages in order: the first of a stage strides by 2 and changes the channels. */
static int build_units(fu_irse *m, fu_rng *rng) {
    int k = 0, in = m->cfg.channels[0];
    for (int s = 0; s < FU_IRSE_STAGES; s++)
        for (int i = 0; i < m->cfg.units[s]; i++, k++) {
            fu_irse_unit *u = &m->units[k];
            u->in_channels = i == 0 ? in : m->cfg.channels[s];
            u->depth = m->cfg.channels[s];
            u->stride = i == 0 ? 2 : 1;
            if (!add_unit(m, rng, k, u)) return 0;
            in = u->depth;
        }
    return 1;
}

static int build_output(fu_irse *m, fu_rng *rng) {
    int c = m->cfg.channels[FU_IRSE_STAGES - 1], s = m->cfg.input_size / 16, e = m->cfg.embedding;
    int64_t fan_in = (int64_t)c * s * s;
    if (!add_bn(m, "output_layer.0", c, &m->out_bn2d) ||
        !(m->fc_weight = add_tensor(m, "output_layer.3.weight", PARAM, 2, (int64_t[]){e, fan_in})) ||
        !(m->fc_bias = add_tensor(m, "output_layer.3.bias", PARAM, 1, (int64_t[]){e})) ||
        !add_bn(m, "output_layer.4", e, &m->out_bn1d))
        return 0;
    fu_rng_fill_normal(rng, m->fc_weight->data, m->fc_weight->numel, 0, sqrtf(2.0f / (float)fan_in));
    return 1;
}

fu_irse *fu_irse_new(const fu_irse_config *cfg, fu_rng *rng) {
    if (fu_irse_check_config(cfg) != FU_OK) return NULL;
    fu_irse *m = calloc(1, sizeof *m);
    if (!m) return fu_fail_null(FU_E_INTERNAL, "irse: out of memory");
    m->cfg = *cfg;
    for (int s = 0; s < FU_IRSE_STAGES; s++) m->n_units += cfg->units[s];
    /* stem 6 tensors, output 10, at most 22 per unit */
    m->units = calloc((size_t)m->n_units, sizeof *m->units);
    m->tensors = calloc(16 + 22 * (size_t)m->n_units, sizeof *m->tensors);
    int c0 = cfg->channels[0];
    int ok = m->units && m->tensors &&
             (m->stem_conv = add_conv(m, rng, "input_layer.0.weight", c0, 3, 3)) &&
             add_bn(m, "input_layer.1", c0, &m->stem_bn) &&
             (m->stem_prelu = add_prelu(m, "input_layer.2.weight", c0)) &&
             build_units(m, rng) && build_output(m, rng);
    if (!ok) {
        if (!m->units || !m->tensors) fu_fail(FU_E_INTERNAL, "irse: out of memory");
        fu_irse_free(m);
        return NULL;
    }
    return m;
}

void fu_irse_free(fu_irse *m) {
    if (!m) return;
    for (int i = 0; i < m->n_tensors; i++) fu_tensor_free(m->tensors[i]);
    free(m->tensors);
    free(m->units);
    free(m);
}

static int select_tensors(const fu_irse *m, fu_tensor **out, int trainable) {
    int n = 0;
    for (int i = 0; i < m->n_tensors; i++)
        if (!!m->tensors[i]->requires_grad == trainable) out[n++] = m->tensors[i];
    return n;
}

int fu_irse_params(const fu_irse *m, fu_tensor **out) { return select_tensors(m, out, 1); }
int fu_irse_buffers(const fu_irse *m, fu_tensor **out) { return select_tensors(m, out, 0); }

/* ---- forward ----------------------------------------------------------------------------- */

static fu_tensor *bn(fu_graph *g, fu_tensor *x, const fu_irse_bn *b) {
    return fu_batch_norm(g, x, b->weight, b->bias, b->running_mean, b->running_var, BN_MOMENTUM, BN_EPS);
}

static fu_tensor *conv(fu_graph *g, fu_tensor *x, fu_tensor *w, int stride) {
    int pad = (int)w->shape[2] / 2;
    fu_conv_params p = {.stride_h = stride, .stride_w = stride,
                        .pad_top = pad, .pad_bottom = pad, .pad_left = pad, .pad_right = pad};
    return fu_conv2d(g, x, w, NULL, &p);
}

/* Squeeze-and-excitation: channel gates from the spatial mean. */
static fu_tensor *se_module(fu_graph *g, fu_tensor *x, const fu_irse_unit *u) {
    fu_tensor *s = fu_mean(g, x, (1u << 2) | (1u << 3), 1);
    s = fu_sigmoid(g, conv(g, fu_relu(g, conv(g, s, u->se_fc1, 1)), u->se_fc2, 1));
    return fu_mul(g, x, s);
}

static fu_tensor *shortcut(fu_graph *g, fu_tensor *x, const fu_irse_unit *u) {
    if (u->shortcut_conv) return bn(g, conv(g, x, u->shortcut_conv, u->stride), &u->shortcut_bn);
    if (u->stride == 1) return x;
    fu_pool_params p = {.kernel_h = 1, .kernel_w = 1, .stride_h = u->stride, .stride_w = u->stride};
    return fu_max_pool2d(g, x, &p);
}

static fu_tensor *unit_forward(fu_graph *g, fu_tensor *x, const fu_irse_unit *u) {
    fu_tensor *r = conv(g, bn(g, x, &u->bn1), u->conv1, 1);
    r = fu_prelu(g, bn(g, r, &u->bn2), u->prelu);
    r = se_module(g, bn(g, conv(g, r, u->conv2, u->stride), &u->bn3), u);
    return fu_add(g, r, shortcut(g, x, u));
}

fu_tensor *fu_irse_forward(fu_graph *g, const fu_irse *m, fu_tensor *x) {
    if (!x) return NULL;
    int64_t S = m->cfg.input_size;
    if (x->ndim != 4 || x->shape[1] != 3 || x->shape[2] != S || x->shape[3] != S) {
        char buf[96];
        return fu_fail_null(FU_E_INPUT, "irse: input must be [N,3,%lld,%lld], got %s", (long long)S, (long long)S,
                            fu_shape_str(x, buf, sizeof buf));
    }
    fu_tensor *h = fu_prelu(g, bn(g, conv(g, x, m->stem_conv, 1), &m->stem_bn), m->stem_prelu);
    for (int k = 0; k < m->n_units; k++) h = unit_forward(g, h, &m->units[k]);
    h = fu_dropout(g, bn(g, h, &m->out_bn2d), m->cfg.dropout);
    h = fu_reshape(g, h, 2, (int64_t[]){x->shape[0], -1});
    return bn(g, fu_linear(g, h, m->fc_weight, m->fc_bias), &m->out_bn1d);
}

/* ---- safetensors ------------------------------------------------------------------------- */

void fu_irse_config_format(const fu_irse_config *c, char *buf, size_t n) {
    snprintf(buf, n, "units=%d,%d,%d,%d channels=%d,%d,%d,%d input=%d embedding=%d se=%d dropout=%.9g",
             c->units[0], c->units[1], c->units[2], c->units[3], c->channels[0], c->channels[1],
             c->channels[2], c->channels[3], c->input_size, c->embedding, c->se_reduction, (double)c->dropout);
}

int fu_irse_config_parse(const char *s, fu_irse_config *c) {
    int end = -1;
    fu_irse_config t;
    int got = sscanf(s, "units=%d,%d,%d,%d channels=%d,%d,%d,%d input=%d embedding=%d se=%d dropout=%f%n",
                     &t.units[0], &t.units[1], &t.units[2], &t.units[3], &t.channels[0], &t.channels[1],
                     &t.channels[2], &t.channels[3], &t.input_size, &t.embedding, &t.se_reduction, &t.dropout, &end);
    if (got != 12 || end < 0 || s[end] != '\0') return fu_fail(FU_E_INPUT, "irse: malformed config '%.200s'", s);
    if (fu_irse_check_config(&t) != FU_OK) return FU_E_INPUT;
    *c = t;
    return FU_OK;
}

int fu_irse_save(const fu_irse *m, const char *path) {
    fu_st_item *items = calloc((size_t)m->n_tensors, sizeof *items);
    if (!items) return fu_fail(FU_E_INTERNAL, "irse: out of memory");
    for (int i = 0; i < m->n_tensors; i++) items[i] = (fu_st_item){m->tensors[i]->name, m->tensors[i], FU_F32};
    char conf[256];
    fu_irse_config_format(&m->cfg, conf, sizeof conf);
    fu_st_meta meta = {"irse_config", conf};
    int rc = fu_st_save(path, items, m->n_tensors, &meta, 1);
    free(items);
    return rc;
}

int fu_irse_load_tensors(fu_irse *m, const fu_safetensors *st) {
    for (int i = 0; i < m->n_tensors; i++) {
        fu_tensor *dst = m->tensors[i];
        const fu_st_entry *e = fu_st_find(st, dst->name);
        if (!e) return fu_fail(FU_E_INPUT, "%s: tensor '%s' missing", st->label, dst->name);
        int same = e->ndim == dst->ndim;
        for (int d = 0; same && d < e->ndim; d++) same = e->shape[d] == dst->shape[d];
        char buf[96];
        if (!same) return fu_fail(FU_E_INPUT, "%s: tensor '%s' should be %s", st->label, dst->name, fu_shape_str(dst, buf, sizeof buf));
        fu_tensor *src = fu_st_tensor(st, dst->name);
        if (!src) return fu_last_code();
        fu_tensor_copy_data(dst, src);
        fu_tensor_free(src);
    }
    return FU_OK;
}

fu_irse *fu_irse_load(const char *path) {
    fu_safetensors *st = fu_st_open(path);
    if (!st) return NULL;
    const char *conf = fu_st_meta_get(st, "irse_config");
    fu_irse_config cfg;
    fu_irse *m = NULL;
    fu_rng rng;
    fu_rng_seed(&rng, 0);  /* weights are overwritten below */
    if (!conf) fu_fail(FU_E_INPUT, "%s: no irse_config metadata (not an IR-SE model file)", path);
    else if (fu_irse_config_parse(conf, &cfg) != FU_OK) {
        char why[300];
        snprintf(why, sizeof why, "%s", fu_last_error());
        fu_fail(FU_E_INPUT, "%s: %s", path, why);
    } else if ((m = fu_irse_new(&cfg, &rng)) && fu_irse_load_tensors(m, st) != FU_OK) {
        fu_irse_free(m);
        m = NULL;
    }
    fu_st_free(st);
    return m;
}
