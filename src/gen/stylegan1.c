/* StyleGAN v1 synthesis and mapping networks (PULSE's G_synthesis / G_mapping), see stylegan1.h.
 *
 * Data layout: activations NCHW; weights in PyTorch layout with the equalised-lr multiplier
 * already applied (conv [Cout,Cin,k,k], linear [out,in]); the fused upscaling kernel is stored
 * in conv-transpose layout [Cin,Cout,4,4]. */
#include "gen/stylegan1.h"
#include "gen/sg_ops.h"
#include "core/error.h"
#include "core/ops.h"
#include "core/rng.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const float LRELU_SLOPE = 0.2f;
static const float IN_EPS = 1e-5f;
/* [1,2,1] x [1,2,1] / 16: the blur the module applies whatever its kernel argument says. */
static const float BLUR3[9] = {1 / 16.f, 2 / 16.f, 1 / 16.f, 2 / 16.f, 4 / 16.f, 2 / 16.f, 1 / 16.f, 2 / 16.f, 1 / 16.f};

/* ---------------------------------------------------------------- loading */

static void scale_data(fu_tensor *t, double mul) {
    if (!t) return;
    for (int64_t i = 0; i < t->numel; i++) t->data[i] = (float)(t->data[i] * mul);
}

/* name as a leaf of the given shape (element count must match), times mul. */
static fu_tensor *load(const fu_weights *w, const char *name, int ndim, const int64_t *shape, double mul) {
    fu_tensor *t = fu_weights_get_numel(w, name, fu_shape_numel(ndim, shape));
    if (t && fu_weights_reshape(t, ndim, shape) != FU_OK) {
        fu_tensor_free(t);
        return NULL;
    }
    if (mul != 1.0) scale_data(t, mul);
    return t;
}

/* Leading dimension of name (e.g. a conv's Cout), -1 when absent. */
static int64_t dim0(const fu_weights *w, const char *name) {
    int64_t s[FU_MAX_DIMS];
    return fu_weights_shape(w, name, s) >= 1 ? s[0] : -1;
}

static double conv_mul(int64_t cin, int k) { return sqrt(2.0) / sqrt((double)(cin * k * k)); }

/* The style linear [2C,D] splits into a scale half (bias + 1) and a shift half. */
static int load_layer(const fu_weights *w, int i, int64_t C, int64_t D, fu_sg1_layer *L) {
    char name[160];
    int res = 4 << (i / 2), e = i % 2 + 1;
    L->channels = C;
    snprintf(name, sizeof name, "blocks.%dx%d.epi%d.noise.weight", res, res, e);
    L->noise_weight = load(w, name, 4, (int64_t[]){1, C, 1, 1}, 1.0);
    snprintf(name, sizeof name, "blocks.%dx%d.epi%d.style_mod.lin.weight", res, res, e);
    fu_tensor *lw = load(w, name, 2, (int64_t[]){2 * C, D}, 1.0 / sqrt((double)D));
    snprintf(name, sizeof name, "blocks.%dx%d.epi%d.style_mod.lin.bias", res, res, e);
    fu_tensor *lb = load(w, name, 1, (int64_t[]){2 * C}, 1.0);
    L->scale_w = fu_tensor_new(2, (int64_t[]){C, D});
    L->shift_w = fu_tensor_new(2, (int64_t[]){C, D});
    L->scale_b = fu_tensor_new(1, (int64_t[]){C});
    L->shift_b = fu_tensor_new(1, (int64_t[]){C});
    int ok = L->noise_weight && lw && lb && L->scale_w && L->shift_w && L->scale_b && L->shift_b;
    if (ok) {
        memcpy(L->scale_w->data, lw->data, (size_t)(C * D) * sizeof(float));
        memcpy(L->shift_w->data, lw->data + C * D, (size_t)(C * D) * sizeof(float));
        for (int64_t c = 0; c < C; c++) {
            L->scale_b->data[c] = lb->data[c] + 1.0f;
            L->shift_b->data[c] = lb->data[C + c];
        }
    }
    fu_tensor_free(lw);
    fu_tensor_free(lb);
    return ok ? FU_OK : FU_E_INPUT;
}

/* Fused upscale kernel: the 3x3 kernel transposed to [Cin,Cout] and summed at the four offsets
 * (0,0),(0,1),(1,0),(1,1) of a 4x4 window, for a stride-2 transposed conv with padding 1. */
static fu_tensor *fused_kernel(const fu_tensor *w3, int64_t cout, int64_t cin) {
    fu_tensor *k = fu_tensor_new(4, (int64_t[]){cin, cout, 4, 4});
    if (!k) return NULL;
    for (int64_t o = 0; o < cout; o++)
        for (int64_t i = 0; i < cin; i++) {
            const float *src = w3->data + (o * cin + i) * 9;
            float *dst = k->data + (i * cout + o) * 16;
            for (int a = 0; a < 4; a++)
                for (int b = 0; b < 4; b++) {
                    float s = 0;
                    for (int da = 0; da < 2; da++)
                        for (int db = 0; db < 2; db++) {
                            int y = a + da - 1, x = b + db - 1;
                            if (y >= 0 && y < 3 && x >= 0 && x < 3) s += src[y * 3 + x];
                        }
                    dst[a * 4 + b] = s;
                }
        }
    return k;
}

static int load_block(const fu_weights *w, int res, int64_t cin, fu_sg1_block *B) {
    char name[160];
    B->res = res;
    B->in_ch = cin;
    snprintf(name, sizeof name, "blocks.%dx%d.conv1.weight", res, res);
    int64_t C = B->out_ch = dim0(w, name);
    if (C <= 0) return fu_fail(FU_E_INPUT, "stylegan1: missing '%s'", name);
    B->conv1_w = load(w, name, 4, (int64_t[]){C, C, 3, 3}, conv_mul(C, 3));
    snprintf(name, sizeof name, "blocks.%dx%d.conv1.bias", res, res);
    B->conv1_b = load(w, name, 1, (int64_t[]){C}, 1.0);
    snprintf(name, sizeof name, "blocks.%dx%d.conv0_up.weight", res, res);
    fu_tensor *w3 = load(w, name, 4, (int64_t[]){C, cin, 3, 3}, conv_mul(cin, 3));
    snprintf(name, sizeof name, "blocks.%dx%d.conv0_up.bias", res, res);
    B->conv0_b = load(w, name, 4, (int64_t[]){1, C, 1, 1}, 1.0);
    /* PULSE fuses when the conv's input side doubled reaches 128. */
    B->fused = res >= 128;
    if (B->fused && w3) {
        B->conv0_w = fused_kernel(w3, C, cin);
        fu_tensor_free(w3);
    } else {
        B->conv0_w = w3;
    }
    return B->conv1_w && B->conv1_b && B->conv0_w && B->conv0_b ? FU_OK : FU_E_INPUT;
}

static int load_input_block(const fu_weights *w, fu_stylegan1 *m) {
    int64_t s[FU_MAX_DIMS];
    if (fu_weights_shape(w, "blocks.4x4.const", s) != 4 || s[0] != 1 || s[2] != 4 || s[3] != 4)
        return fu_fail(FU_E_INPUT, "stylegan1: missing or malformed 'blocks.4x4.const' (want [1,C,4,4])");
    int64_t C = s[1];
    m->input = load(w, "blocks.4x4.const", 4, (int64_t[]){1, C, 4, 4}, 1.0);
    fu_tensor *bias = load(w, "blocks.4x4.bias", 1, (int64_t[]){C}, 1.0);
    if (m->input && bias)
        for (int64_t i = 0; i < m->input->numel; i++) m->input->data[i] += bias->data[i / 16];
    fu_tensor_free(bias);
    fu_sg1_block *B = &m->blocks[0];
    B->res = 4;
    B->in_ch = B->out_ch = C;
    B->conv1_w = load(w, "blocks.4x4.conv.weight", 4, (int64_t[]){C, C, 3, 3}, conv_mul(C, 3));
    B->conv1_b = load(w, "blocks.4x4.conv.bias", 1, (int64_t[]){C}, 1.0);
    return m->input && bias && B->conv1_w && B->conv1_b ? FU_OK : FU_E_INPUT;
}

int fu_sg1_load(const fu_weights *w, fu_stylegan1 **out) {
    *out = NULL;
    fu_stylegan1 *m = fu_calloc(1, sizeof *m);
    if (!m) return FU_E_INTERNAL;
    int64_t s[FU_MAX_DIMS];
    if (fu_weights_shape(w, "blocks.4x4.epi1.style_mod.lin.weight", s) != 2) {
        free(m);
        return fu_fail(FU_E_INPUT, "stylegan1: missing 'blocks.4x4.epi1.style_mod.lin.weight' (not a PULSE G_synthesis state_dict?)");
    }
    m->dlatent_size = s[1];
    int rc = load_input_block(w, m);
    m->n_blocks = 1;
    char name[160];
    for (int res = 8; rc == FU_OK; res *= 2) {
        snprintf(name, sizeof name, "blocks.%dx%d.conv1.weight", res, res);
        if (!fu_weights_has(w, name)) break;
        if (m->n_blocks == FU_SG1_MAX_BLOCKS) {
            rc = fu_fail(FU_E_INPUT, "stylegan1: more than %d blocks", FU_SG1_MAX_BLOCKS);
            break;
        }
        rc = load_block(w, res, m->blocks[m->n_blocks - 1].out_ch, &m->blocks[m->n_blocks]);
        m->n_blocks++;
    }
    m->n_layers = 2 * m->n_blocks;
    m->resolution = 4 << (m->n_blocks - 1);
    for (int i = 0; i < m->n_layers && rc == FU_OK; i++)
        rc = load_layer(w, i, m->blocks[i / 2].out_ch, m->dlatent_size, &m->layers[i]);
    if (rc == FU_OK) {
        int64_t C = m->blocks[m->n_blocks - 1].out_ch;
        m->torgb_w = load(w, "torgb.weight", 4, (int64_t[]){3, C, 1, 1}, 1.0 / sqrt((double)C));
        m->torgb_b = load(w, "torgb.bias", 1, (int64_t[]){3}, 1.0);
        if (!m->torgb_w || !m->torgb_b) rc = FU_E_INPUT;
    }
    if (rc != FU_OK) {
        fu_sg1_free(m);
        return rc;
    }
    *out = m;
    return FU_OK;
}

void fu_sg1_free(fu_stylegan1 *m) {
    if (!m) return;
    fu_tensor_free(m->input);
    for (int b = 0; b < FU_SG1_MAX_BLOCKS; b++) {
        fu_sg1_block *B = &m->blocks[b];
        fu_tensor_free(B->conv0_w);
        fu_tensor_free(B->conv0_b);
        fu_tensor_free(B->conv1_w);
        fu_tensor_free(B->conv1_b);
    }
    for (int i = 0; i < 2 * FU_SG1_MAX_BLOCKS; i++) {
        fu_sg1_layer *L = &m->layers[i];
        fu_tensor_free(L->noise_weight);
        fu_tensor_free(L->scale_w);
        fu_tensor_free(L->scale_b);
        fu_tensor_free(L->shift_w);
        fu_tensor_free(L->shift_b);
    }
    fu_tensor_free(m->torgb_w);
    fu_tensor_free(m->torgb_b);
    free(m);
}

int fu_sg1_noise_shape(const fu_stylegan1 *m, int i, int64_t shape[4]) {
    if (!m || i < 0 || i >= m->n_layers)
        return fu_fail(FU_E_INPUT, "stylegan1: no noise map %d", i), -1;
    int64_t r = 4 << (i / 2);
    shape[0] = 1, shape[1] = 1, shape[2] = r, shape[3] = r;
    return 0;
}

/* ---------------------------------------------------------------- forward */

/* noise, bias (the upscaling conv's, else NULL), leaky ReLU, then instance norm and the style
 * modulation x*(s0+1) + s1 (the +1 is in scale_b): two fused nodes, see sg_ops.h. */
static fu_tensor *epilogue(fu_graph *g, const fu_sg1_layer *L, fu_tensor *x, fu_tensor *bias, fu_tensor *dlatents,
                           int i, fu_tensor *noise) {
    x = fu_sg_noise_act(g, x, NULL, noise, L->noise_weight, bias, LRELU_SLOPE, 1.0f);
    fu_tensor *row = fu_slice(g, dlatents, 1, i, i + 1, 1);
    if (row) row = fu_reshape(g, row, 2, (int64_t[]){row->shape[0], row->shape[2]});
    return fu_sg_style_instance_norm(g, x, fu_linear(g, row, L->scale_w, L->scale_b),
                                     fu_linear(g, row, L->shift_w, L->shift_b), IN_EPS);
}

static const fu_conv_params PAD1 = {.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1};

/* x2 upscale + 3x3 conv, then blur (the bias follows in the epilogue). PULSE's fused form (a stride-2 transposed conv
 * with the 4x4 summed kernel) equals nearest x2 + conv with the 3x3 kernel flipped in both axes,
 * so it is a different map, not an optimisation: each block does what the reference does. It
 * also happens to cost 16 instead of 36 MACs per input pixel and channel pair. */
static fu_tensor *conv0_up(fu_graph *g, const fu_sg1_block *B, fu_tensor *x) {
    if (B->fused) {
        fu_conv_params p = PAD1;
        p.stride_h = p.stride_w = 2;
        x = fu_conv_transpose2d(g, x, B->conv0_w, NULL, &p);
    } else {
        x = fu_conv2d(g, fu_upsample_nearest(g, x, 2), B->conv0_w, NULL, &PAD1);
    }
    static const int pad[4] = {1, 1, 1, 1};
    return fu_upfirdn2d(g, x, BLUR3, 3, 3, 1, 1, pad);
}

static int check_inputs(const fu_stylegan1 *m, const fu_tensor *dlatents, fu_tensor *const *noise) {
    if (!m || !dlatents || !noise) return fu_fail(FU_E_INPUT, "stylegan1: NULL model, dlatents or noise");
    if (dlatents->ndim != 3 || dlatents->shape[1] != m->n_layers || dlatents->shape[2] != m->dlatent_size) {
        char s[96];
        return fu_fail(FU_E_INPUT, "stylegan1: dlatents %s, expected [N,%d,%lld]",
                       fu_shape_str(dlatents, s, sizeof s), m->n_layers, (long long)m->dlatent_size);
    }
    for (int i = 0; i < m->n_layers; i++) {
        const fu_tensor *n = noise[i];
        int64_t r = 4 << (i / 2);
        if (!n || n->ndim != 4 || (n->shape[0] != 1 && n->shape[0] != dlatents->shape[0]) ||
            n->shape[1] != 1 || n->shape[2] != r || n->shape[3] != r)
            return fu_fail(FU_E_INPUT, "stylegan1: noise %d missing or not [N or 1,1,%lld,%lld]", i, (long long)r, (long long)r);
    }
    return FU_OK;
}

fu_tensor *fu_sg1_forward(fu_graph *g, const fu_stylegan1 *m, fu_tensor *dlatents,
                          fu_tensor *const *noise, const fu_tensor_sink *taps) {
    if (check_inputs(m, dlatents, noise) != FU_OK) return NULL;
    char name[48];
    const fu_sg1_block *B = &m->blocks[0];
    fu_tensor *x = epilogue(g, &m->layers[0], m->input, NULL, dlatents, 0, noise[0]);
    x = fu_conv2d(g, x, B->conv1_w, B->conv1_b, &PAD1);
    x = epilogue(g, &m->layers[1], x, NULL, dlatents, 1, noise[1]);
    snprintf(name, sizeof name, "block_%dx%d", B->res, B->res);
    fu_tensor_sink_put(taps, name, x);
    for (int b = 1; b < m->n_blocks; b++) {
        B = &m->blocks[b];
        x = conv0_up(g, B, x);
        snprintf(name, sizeof name, "conv0_up_%dx%d", B->res, B->res);
        if (taps) fu_tensor_sink_put(taps, name, fu_add(g, x, B->conv0_b));  /* aside: the epilogue adds it */
        x = epilogue(g, &m->layers[2 * b], x, B->conv0_b, dlatents, 2 * b, noise[2 * b]);
        x = fu_conv2d(g, x, B->conv1_w, B->conv1_b, &PAD1);
        x = epilogue(g, &m->layers[2 * b + 1], x, NULL, dlatents, 2 * b + 1, noise[2 * b + 1]);
        snprintf(name, sizeof name, "block_%dx%d", B->res, B->res);
        fu_tensor_sink_put(taps, name, x);
    }
    return fu_conv2d(g, x, m->torgb_w, m->torgb_b, &(fu_conv_params){0});
}

/* ---------------------------------------------------------------- random weights */

fu_sg1_config fu_sg1_config_ffhq(void) {
    return (fu_sg1_config){.resolution = 1024, .dlatent_size = 512, .fmap_base = 8192, .fmap_max = 512};
}

typedef struct { fu_weights *w; fu_rng rng; int ok; } random_table;

static void put_normal(random_table *t, float std, int ndim, const int64_t *shape, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void put_normal(random_table *t, float std, int ndim, const int64_t *shape, const char *fmt, ...) {
    if (!t->ok) return;
    char name[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    fu_tensor *x = fu_tensor_new(ndim, shape);
    if (x) fu_rng_fill_normal(&t->rng, x->data, x->numel, 0, std);
    t->ok = x && fu_weights_put(t->w, name, x) == FU_OK;
}

static int64_t sg1_channels(const fu_sg1_config *c, int res) {
    int stage = 0;
    while ((4 << stage) < res) stage++;
    int64_t nf = (int64_t)c->fmap_base >> (stage + 1);
    return nf < c->fmap_max ? nf : c->fmap_max;
}

static void put_epilogue(random_table *t, int res, int e, int64_t C, int64_t D) {
    put_normal(t, 0.2f, 1, (int64_t[]){C}, "blocks.%dx%d.epi%d.noise.weight", res, res, e);
    put_normal(t, 1.0f, 2, (int64_t[]){2 * C, D}, "blocks.%dx%d.epi%d.style_mod.lin.weight", res, res, e);
    put_normal(t, 0.2f, 1, (int64_t[]){2 * C}, "blocks.%dx%d.epi%d.style_mod.lin.bias", res, res, e);
}

fu_weights *fu_sg1_random_weights(const fu_sg1_config *cfg, uint64_t seed) {
    int r = cfg ? cfg->resolution : 0;
    if (!cfg || r < 4 || (r & (r - 1)) || r > (4 << (FU_SG1_MAX_BLOCKS - 1)) || cfg->dlatent_size < 1 ||
        cfg->fmap_base < 1 || cfg->fmap_max < 1 || sg1_channels(cfg, r) < 1)
        return fu_fail_null(FU_E_INPUT, "stylegan1: bad random config");
    random_table t = {0};
    t.w = fu_weights_new_table();
    t.ok = t.w != NULL;
    fu_rng_seed(&t.rng, seed);
    int64_t D = cfg->dlatent_size, C = sg1_channels(cfg, 4);
    put_normal(&t, 1.0f, 4, (int64_t[]){1, C, 4, 4}, "blocks.4x4.const");
    put_normal(&t, 0.2f, 1, (int64_t[]){C}, "blocks.4x4.bias");
    put_normal(&t, 1.0f, 4, (int64_t[]){C, C, 3, 3}, "blocks.4x4.conv.weight");
    put_normal(&t, 0.2f, 1, (int64_t[]){C}, "blocks.4x4.conv.bias");
    put_epilogue(&t, 4, 1, C, D);
    put_epilogue(&t, 4, 2, C, D);
    for (int res = 8; res <= r; res *= 2) {
        int64_t cin = C;
        C = sg1_channels(cfg, res);
        put_normal(&t, 1.0f, 4, (int64_t[]){C, cin, 3, 3}, "blocks.%dx%d.conv0_up.weight", res, res);
        put_normal(&t, 0.2f, 1, (int64_t[]){C}, "blocks.%dx%d.conv0_up.bias", res, res);
        put_normal(&t, 1.0f, 4, (int64_t[]){C, C, 3, 3}, "blocks.%dx%d.conv1.weight", res, res);
        put_normal(&t, 0.2f, 1, (int64_t[]){C}, "blocks.%dx%d.conv1.bias", res, res);
        put_epilogue(&t, res, 1, C, D);
        put_epilogue(&t, res, 2, C, D);
    }
    put_normal(&t, 1.0f, 4, (int64_t[]){3, C, 1, 1}, "torgb.weight");
    put_normal(&t, 0.2f, 1, (int64_t[]){3}, "torgb.bias");
    if (!t.ok) {
        fu_weights_free(t.w);
        return NULL;
    }
    return t.w;
}

/* ---------------------------------------------------------------- mapping, latent maps */

int fu_sg1_mapping_load(const fu_weights *w, fu_sg1_mapping **out) {
    *out = NULL;
    fu_sg1_mapping *m = fu_calloc(1, sizeof *m);
    if (!m) return FU_E_INTERNAL;
    char name[64];
    int64_t s[FU_MAX_DIMS];
    int rc = FU_OK;
    for (int i = 0;; i++) {
        snprintf(name, sizeof name, "dense%d.weight", i);
        if (fu_weights_shape(w, name, s) < 0) break;
        if (i == FU_SG1_MAX_MAPPING) {
            rc = fu_fail(FU_E_INPUT, "stylegan1 mapping: more than %d layers", FU_SG1_MAX_MAPPING);
            break;
        }
        if (i == 0) m->dim = s[0];
        int64_t D = m->dim;
        /* lrmul 0.01 on weights (gain sqrt(2), He scale) and biases. */
        m->w[i] = load(w, name, 2, (int64_t[]){D, D}, sqrt(2.0) / sqrt((double)D) * 0.01);
        snprintf(name, sizeof name, "dense%d.bias", i);
        m->b[i] = load(w, name, 1, (int64_t[]){D}, 0.01);
        m->n_layers = i + 1;
        if (!m->w[i] || !m->b[i]) {
            rc = FU_E_INPUT;
            break;
        }
    }
    if (rc == FU_OK && m->n_layers == 0)
        rc = fu_fail(FU_E_INPUT, "stylegan1 mapping: no 'dense0.weight' (not a PULSE G_mapping state_dict?)");
    if (rc != FU_OK) {
        fu_sg1_mapping_free(m);
        return rc;
    }
    *out = m;
    return FU_OK;
}

void fu_sg1_mapping_free(fu_sg1_mapping *m) {
    if (!m) return;
    for (int i = 0; i < FU_SG1_MAX_MAPPING; i++) {
        fu_tensor_free(m->w[i]);
        fu_tensor_free(m->b[i]);
    }
    free(m);
}

fu_tensor *fu_pixel_norm(fu_graph *g, fu_tensor *x) {
    if (!x) return NULL;
    fu_tensor *ms = fu_mean(g, fu_square(g, x), 1u << (x->ndim - 1), 1);
    return fu_mul(g, x, fu_rsqrt(g, fu_scale_shift(g, ms, 1.0f, 1e-8f)));
}

fu_tensor *fu_sg1_mapping_forward(fu_graph *g, const fu_sg1_mapping *m, fu_tensor *z) {
    if (!m) return fu_fail_null(FU_E_INPUT, "stylegan1 mapping: NULL model");
    fu_tensor *x = fu_pixel_norm(g, z);
    for (int i = 0; i < m->n_layers; i++) x = fu_leaky_relu(g, fu_linear(g, x, m->w[i], m->b[i]), LRELU_SLOPE);
    return x;
}

fu_tensor *fu_pulse_gaussfit(fu_graph *g, fu_tensor *z, fu_tensor *mean, fu_tensor *std) {
    return fu_leaky_relu(g, fu_add(g, fu_mul(g, z, std), mean), LRELU_SLOPE);
}
