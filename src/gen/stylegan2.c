/* rosinality StyleGAN2 generator, see stylegan2.h.
 *
 * Data layout: activations NCHW; plain conv weights [Cout,Cin,k,k]; the upsampling conv's
 * weight in transposed-conv layout [Cin,Cout,3,3]; linears [out,in]; FIR kernels row-major
 * float[k*k] as stored in the checkpoint (already multiplied by the upsampling factor^2). */
#include "gen/stylegan2.h"
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

static const double LR_MLP = 0.01;   /* rosinality's lr_mlp default; not stored in checkpoints */
static const float LRELU_SLOPE = 0.2f;
static const float SQRT2 = 1.41421356237309505f;
static const float DEMOD_EPS = 1e-8f;

/* ---------------------------------------------------------------- loading */

typedef struct { const fu_weights *w; const char *prefix; } source;

static int src_shape(const source *s, int64_t shape[FU_MAX_DIMS], const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static fu_tensor *src_get(const source *s, int ndim, const int64_t *shape, double mul, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void src_name(const source *s, char *name, size_t n, const char *fmt, va_list ap) {
    int k = snprintf(name, n, "%s", s->prefix);
    vsnprintf(name + k, n - (size_t)k, fmt, ap);
}

static int src_shape(const source *s, int64_t shape[FU_MAX_DIMS], const char *fmt, ...) {
    char name[192];
    va_list ap;
    va_start(ap, fmt);
    src_name(s, name, sizeof name, fmt, ap);
    va_end(ap);
    return fu_weights_shape(s->w, name, shape);
}

/* Tensor of the given shape (element count must match: checkpoints carry unit dims), times mul. */
static fu_tensor *src_get(const source *s, int ndim, const int64_t *shape, double mul, const char *fmt, ...) {
    char name[192];
    va_list ap;
    va_start(ap, fmt);
    src_name(s, name, sizeof name, fmt, ap);
    va_end(ap);
    fu_tensor *t = fu_weights_get_numel(s->w, name, fu_shape_numel(ndim, shape));
    if (t && fu_weights_reshape(t, ndim, shape) != FU_OK) {
        fu_tensor_free(t);
        return NULL;
    }
    if (t && mul != 1.0)
        for (int64_t i = 0; i < t->numel; i++) t->data[i] = (float)(t->data[i] * mul);
    return t;
}

/* [Cout,Cin,k,k] -> [Cout,Cin] sums of squares (double accumulation). */
static fu_tensor *squared_sums(const fu_tensor *w) {
    int64_t co = w->shape[0], ci = w->shape[1], kk = w->shape[2] * w->shape[3];
    fu_tensor *t = fu_tensor_new(2, (int64_t[]){co, ci});
    if (!t) return NULL;
    for (int64_t i = 0; i < co * ci; i++) {
        double s = 0;
        for (int64_t j = 0; j < kk; j++) s += (double)w->data[i * kk + j] * w->data[i * kk + j];
        t->data[i] = (float)s;
    }
    return t;
}

/* [Cout,Cin,k,k] -> [Cin,Cout,k,k] (transposed-conv layout), same values. */
static fu_tensor *swap01(const fu_tensor *w) {
    int64_t co = w->shape[0], ci = w->shape[1], kk = w->shape[2] * w->shape[3];
    fu_tensor *t = fu_tensor_new(4, (int64_t[]){ci, co, w->shape[2], w->shape[3]});
    if (!t) return NULL;
    for (int64_t o = 0; o < co; o++)
        for (int64_t i = 0; i < ci; i++)
            memcpy(t->data + (i * co + o) * kk, w->data + (o * ci + i) * kk, (size_t)kk * sizeof(float));
    return t;
}

/* One ModulatedConv2d (+ noise and activation bias for a StyledConv, + bias for a ToRGB).
 * module is e.g. "convs.3" or "to_rgb1". */
static int load_conv(const source *s, const char *module, int is_rgb, int upsample, int64_t D, fu_sg2_conv *c) {
    int64_t sh[FU_MAX_DIMS];
    int nd = src_shape(s, sh, "%s.conv.weight", module);
    if (nd != 5 || sh[0] != 1 || sh[3] != sh[4])
        return fu_fail(FU_E_INPUT, "stylegan2: missing or malformed '%s%s.conv.weight' (want [1,Cout,Cin,k,k])", s->prefix, module);
    int64_t co = c->out_ch = sh[1], ci = c->in_ch = sh[2];
    int k = c->k = (int)sh[3];
    c->upsample = upsample;
    c->demodulate = !is_rgb;
    fu_tensor *w = src_get(s, 4, (int64_t[]){co, ci, k, k}, 1.0 / sqrt((double)(ci * k * k)), "%s.conv.weight", module);
    c->wsq = w ? squared_sums(w) : NULL;
    if (upsample && w) {
        c->w = swap01(w);
        fu_tensor_free(w);
    } else {
        c->w = w;
    }
    c->mod_w = src_get(s, 2, (int64_t[]){ci, D}, 1.0 / sqrt((double)D), "%s.conv.modulation.weight", module);
    c->mod_b = src_get(s, 1, (int64_t[]){ci}, 1.0, "%s.conv.modulation.bias", module);
    if (is_rgb) {
        c->bias = src_get(s, 4, (int64_t[]){1, co, 1, 1}, 1.0, "%s.bias", module);
    } else {
        c->bias = src_get(s, 4, (int64_t[]){1, co, 1, 1}, 1.0, "%s.activate.bias", module);
        c->noise_weight = src_get(s, 1, (int64_t[]){1}, 1.0, "%s.noise.weight", module);
    }
    int ok = c->w && c->wsq && c->mod_w && c->mod_b && c->bias && (is_rgb || c->noise_weight);
    return ok ? FU_OK : FU_E_INPUT;
}

static int load_kernel(const source *s, float *dst, int *k, const char *name) {
    int64_t sh[FU_MAX_DIMS];
    if (src_shape(s, sh, "%s", name) != 2 || sh[0] != sh[1] || sh[0] < 4 || sh[0] > FU_SG2_MAX_KERNEL ||
        (*k && sh[0] != *k))
        return fu_fail(FU_E_INPUT, "stylegan2: missing or malformed FIR kernel '%s%s'", s->prefix, name);
    *k = (int)sh[0];
    fu_tensor *t = src_get(s, 2, sh, 1.0, "%s", name);
    if (!t) return FU_E_INPUT;
    memcpy(dst, t->data, (size_t)t->numel * sizeof(float));
    fu_tensor_free(t);
    return FU_OK;
}

static int load_mapping(const source *s, fu_stylegan2 *m) {
    int64_t sh[FU_MAX_DIMS], D = m->style_dim;
    while (src_shape(s, sh, "style.%d.weight", m->n_mlp + 1) >= 0) {
        int i = m->n_mlp;
        if (i == FU_SG2_MAX_MLP) return fu_fail(FU_E_INPUT, "stylegan2: more than %d mapping layers", FU_SG2_MAX_MLP);
        m->map_w[i] = src_get(s, 2, (int64_t[]){D, D}, LR_MLP / sqrt((double)D), "style.%d.weight", i + 1);
        m->map_b[i] = src_get(s, 1, (int64_t[]){D}, LR_MLP, "style.%d.bias", i + 1);
        m->n_mlp++;
        if (!m->map_w[i] || !m->map_b[i]) return FU_E_INPUT;
    }
    return FU_OK;
}

/* Stored noise buffers: all of them or none. */
static int load_noise(const source *s, fu_stylegan2 *m) {
    int64_t sh[FU_MAX_DIMS];
    if (src_shape(s, sh, "noises.noise_0") < 0) return FU_OK;
    for (int i = 0; i < m->n_noise; i++) {
        int64_t r = 4 << ((i + 1) / 2);
        m->noise[i] = src_get(s, 4, (int64_t[]){1, 1, r, r}, 1.0, "noises.noise_%d", i);
        if (!m->noise[i]) return FU_E_INPUT;
    }
    return FU_OK;
}

static int load_all(const source *s, fu_stylegan2 *m) {
    int64_t sh[FU_MAX_DIMS];
    if (src_shape(s, sh, "conv1.conv.modulation.weight") != 2)
        return fu_fail(FU_E_INPUT, "stylegan2: missing '%sconv1.conv.modulation.weight'", s->prefix);
    int64_t D = m->style_dim = sh[1];
    while (m->n_convs < FU_SG2_MAX_CONVS && src_shape(s, sh, "convs.%d.conv.weight", m->n_convs) >= 0) m->n_convs++;
    if (m->n_convs < 2 || m->n_convs % 2)
        return fu_fail(FU_E_INPUT, "stylegan2: %d 'convs.*' layers, expected a positive even number", m->n_convs);
    m->log_size = 2 + m->n_convs / 2;
    m->size = 1 << m->log_size;
    m->n_latent = 2 * m->log_size - 2;
    m->n_noise = m->n_convs + 1;
    if (src_shape(s, sh, "input.input") != 4 || sh[0] != 1 || sh[2] != 4 || sh[3] != 4)
        return fu_fail(FU_E_INPUT, "stylegan2: missing or malformed '%sinput.input' (want [1,C,4,4])", s->prefix);
    m->input = src_get(s, 4, sh, 1.0, "input.input");
    int rc = m->input ? FU_OK : FU_E_INPUT;
    if (rc == FU_OK) rc = load_conv(s, "conv1", 0, 0, D, &m->conv1);
    if (rc == FU_OK) rc = load_conv(s, "to_rgb1", 1, 0, D, &m->to_rgb1);
    char name[64];
    for (int i = 0; i < m->n_convs && rc == FU_OK; i++) {
        snprintf(name, sizeof name, "convs.%d", i);
        rc = load_conv(s, name, 0, i % 2 == 0, D, &m->convs[i]);
    }
    for (int b = 0; b < m->n_convs / 2 && rc == FU_OK; b++) {
        snprintf(name, sizeof name, "to_rgbs.%d", b);
        rc = load_conv(s, name, 1, 0, D, &m->to_rgbs[b]);
    }
    if (rc == FU_OK) rc = load_kernel(s, m->blur, &m->fir_k, "convs.0.conv.blur.kernel");
    if (rc == FU_OK) rc = load_kernel(s, m->up, &m->fir_k, "to_rgbs.0.upsample.kernel");
    if (rc == FU_OK) rc = load_mapping(s, m);
    if (rc == FU_OK) rc = load_noise(s, m);
    return rc;
}

int fu_sg2_load(const fu_weights *w, fu_stylegan2 **out) {
    *out = NULL;
    fu_stylegan2 *m = fu_calloc(1, sizeof *m);
    if (!m) return FU_E_INTERNAL;
    source s = {w, fu_weights_has(w, "g_ema.input.input") ? "g_ema." : ""};
    int rc = load_all(&s, m);
    if (rc != FU_OK) {
        fu_sg2_free(m);
        return rc;
    }
    *out = m;
    return FU_OK;
}

static void free_conv(fu_sg2_conv *c) {
    fu_tensor_free(c->mod_w);
    fu_tensor_free(c->mod_b);
    fu_tensor_free(c->w);
    fu_tensor_free(c->wsq);
    fu_tensor_free(c->noise_weight);
    fu_tensor_free(c->bias);
}

void fu_sg2_free(fu_stylegan2 *m) {
    if (!m) return;
    fu_tensor_free(m->input);
    free_conv(&m->conv1);
    free_conv(&m->to_rgb1);
    for (int i = 0; i < FU_SG2_MAX_CONVS; i++) free_conv(&m->convs[i]);
    for (int i = 0; i < FU_SG2_MAX_CONVS / 2; i++) free_conv(&m->to_rgbs[i]);
    for (int i = 0; i < FU_SG2_MAX_MLP; i++) {
        fu_tensor_free(m->map_w[i]);
        fu_tensor_free(m->map_b[i]);
    }
    for (int i = 0; i <= FU_SG2_MAX_CONVS; i++) fu_tensor_free(m->noise[i]);
    free(m);
}

int fu_sg2_noise_shape(const fu_stylegan2 *m, int i, int64_t shape[4]) {
    if (!m || i < 0 || i >= m->n_noise) return fu_fail(FU_E_INPUT, "stylegan2: no noise map %d", i), -1;
    int64_t r = 4 << ((i + 1) / 2);
    shape[0] = 1, shape[1] = 1, shape[2] = r, shape[3] = r;
    return 0;
}

/* ---------------------------------------------------------------- mapping, latents */

fu_tensor *fu_sg2_mapping(fu_graph *g, const fu_stylegan2 *m, fu_tensor *z) {
    if (!m) return fu_fail_null(FU_E_INPUT, "stylegan2 mapping: NULL model");
    fu_tensor *x = fu_pixel_norm(g, z);
    for (int i = 0; i < m->n_mlp; i++)
        x = fu_scale_shift(g, fu_leaky_relu(g, fu_linear(g, x, m->map_w[i], m->map_b[i]), LRELU_SLOPE), SQRT2, 0);
    return x;
}

fu_tensor *fu_sg2_repeat_latent(fu_graph *g, const fu_stylegan2 *m, fu_tensor *w) {
    if (!m || !w) return fu_fail_null(FU_E_INPUT, "stylegan2: repeat_latent needs a model and w");
    if (w->ndim != 2 || w->shape[1] != m->style_dim)
        return fu_fail_null(FU_E_INPUT, "stylegan2: w must be [N,%lld]", (long long)m->style_dim);
    /* Broadcasting against zeros [1,L,D] repeats the row; its backward sums the rows' grads. */
    fu_tensor *zeros = fu_graph_tensor(g, 3, (int64_t[]){1, m->n_latent, m->style_dim});
    return fu_add(g, fu_reshape(g, w, 3, (int64_t[]){w->shape[0], 1, w->shape[1]}), zeros);
}

fu_tensor *fu_sg2_truncate(fu_graph *g, fu_tensor *w, fu_tensor *mean, float psi) {
    return fu_add(g, mean, fu_scale_shift(g, fu_sub(g, w, mean), psi, 0));
}

int fu_sg2_mean_latent(const fu_stylegan2 *m, int n, uint64_t seed, fu_tensor *mean) {
    if (!m || n < 1 || !mean || mean->numel != m->style_dim)
        return fu_fail(FU_E_INPUT, "stylegan2: mean_latent needs a model, n >= 1 and a [style_dim] output");
    enum { CHUNK = 256 };
    fu_rng rng;
    fu_rng_seed(&rng, seed);
    double *acc = fu_calloc((size_t)m->style_dim, sizeof *acc);
    fu_graph *g = fu_graph_new();
    int rc = acc && g ? FU_OK : FU_E_INTERNAL;
    for (int done = 0; done < n && rc == FU_OK; done += CHUNK) {
        int64_t b = n - done < CHUNK ? n - done : CHUNK;
        fu_graph_reset(g);
        fu_tensor *z = fu_graph_tensor(g, 2, (int64_t[]){b, m->style_dim});
        if (z) fu_rng_fill_normal(&rng, z->data, z->numel, 0, 1);
        fu_tensor *w = fu_sg2_mapping(g, m, z);
        if (!w) {
            rc = FU_E_INPUT;
            break;
        }
        for (int64_t i = 0; i < w->numel; i++) acc[i % m->style_dim] += w->data[i];
    }
    if (rc == FU_OK)
        for (int64_t d = 0; d < m->style_dim; d++) mean->data[d] = (float)(acc[d] / n);
    fu_graph_free(g);
    free(acc);
    return rc;
}

/* ---------------------------------------------------------------- synthesis */

/* Row i of latent [N,L,D] as [N,D]. */
static fu_tensor *latent_row(fu_graph *g, fu_tensor *latent, int i) {
    fu_tensor *r = fu_slice(g, latent, 1, i, i + 1, 1);
    return r ? fu_reshape(g, r, 2, (int64_t[]){r->shape[0], r->shape[2]}) : NULL;
}

/* [N,C] -> [N,C,1,1] for per-channel scaling of NCHW maps. */
static fu_tensor *as_nc11(fu_graph *g, fu_tensor *t) {
    return t ? fu_reshape(g, t, 4, (int64_t[]){t->shape[0], t->shape[1], 1, 1}) : NULL;
}

/* Modulated conv in input-modulation form: conv(x*s, W); *demod = d[N,Cout] when demodulating
 * (applied by the caller's fused epilogue), else NULL. The upsampling form is a stride-2
 * transposed conv (2H+1) followed by the FIR blur (2H). */
static fu_tensor *modconv(fu_graph *g, const fu_stylegan2 *m, const fu_sg2_conv *c, fu_tensor *x, fu_tensor *row,
                          fu_tensor **demod) {
    fu_tensor *s = fu_linear(g, row, c->mod_w, c->mod_b);
    fu_tensor *y = fu_mul(g, x, as_nc11(g, s));
    if (c->upsample) {
        y = fu_conv_transpose2d(g, y, c->w, NULL, &(fu_conv_params){.stride_h = 2, .stride_w = 2});
        int p = m->fir_k - 2 - (c->k - 1);   /* >= 0: kernels are at least 4 wide */
        int p0 = (p + 1) / 2 + 1, p1 = p / 2 + 1;
        y = fu_upfirdn2d(g, y, m->blur, m->fir_k, m->fir_k, 1, 1, (int[]){p0, p1, p0, p1});
    } else {
        int p = c->k / 2;
        y = fu_conv2d(g, y, c->w, NULL, &(fu_conv_params){.pad_top = p, .pad_bottom = p, .pad_left = p, .pad_right = p});
    }
    *demod = c->demodulate ? fu_rsqrt(g, fu_scale_shift(g, fu_linear(g, fu_square(g, s), c->wsq, NULL), 1.0f, DEMOD_EPS)) : NULL;
    return y;
}

/* StyledConv: modulated conv, demodulation, + strength * noise, leaky_relu(x + bias, 0.2) *
 * sqrt(2), the last four fused into one node (sg_ops.h). */
static fu_tensor *styled_conv(fu_graph *g, const fu_stylegan2 *m, const fu_sg2_conv *c, fu_tensor *x,
                              fu_tensor *row, fu_tensor *noise) {
    fu_tensor *d = NULL;
    x = modconv(g, m, c, x, row, &d);
    if (!d) return NULL;
    return fu_sg_noise_act(g, x, d, noise, c->noise_weight, c->bias, LRELU_SLOPE, SQRT2);
}

/* ToRGB: modulated 1x1 conv without demodulation (one op with the style folded into the small
 * weight, so no modulated copy of x), + bias, + the previous RGB upsampled x2. */
static fu_tensor *to_rgb(fu_graph *g, const fu_stylegan2 *m, const fu_sg2_conv *c, fu_tensor *x,
                         fu_tensor *row, fu_tensor *skip) {
    fu_tensor *no_demod, *y;
    if (c->k == 1) y = fu_sg_modulated_1x1(g, x, c->w, fu_linear(g, row, c->mod_w, c->mod_b));
    else y = modconv(g, m, c, x, row, &no_demod);
    y = fu_add(g, y, c->bias);
    if (!skip) return y;
    int p = m->fir_k - 2, p0 = (p + 1) / 2 + 1, p1 = p / 2;
    return fu_add(g, y, fu_upfirdn2d(g, skip, m->up, m->fir_k, m->fir_k, 2, 1, (int[]){p0, p1, p0, p1}));
}

static int check_inputs(const fu_stylegan2 *m, const fu_tensor *latent, fu_tensor *const *noise) {
    if (!m || !latent || !noise) return fu_fail(FU_E_INPUT, "stylegan2: NULL model, latent or noise");
    if (latent->ndim != 3 || latent->shape[1] != m->n_latent || latent->shape[2] != m->style_dim) {
        char s[96];
        return fu_fail(FU_E_INPUT, "stylegan2: latent %s, expected [N,%d,%lld]", fu_shape_str(latent, s, sizeof s),
                       m->n_latent, (long long)m->style_dim);
    }
    for (int i = 0; i < m->n_noise; i++) {
        const fu_tensor *n = noise[i];
        int64_t r = 4 << ((i + 1) / 2);
        if (!n || n->ndim != 4 || (n->shape[0] != 1 && n->shape[0] != latent->shape[0]) || n->shape[1] != 1 ||
            n->shape[2] != r || n->shape[3] != r)
            return fu_fail(FU_E_INPUT, "stylegan2: noise %d missing or not [N or 1,1,%lld,%lld]", i, (long long)r, (long long)r);
    }
    return FU_OK;
}

fu_tensor *fu_sg2_forward(fu_graph *g, const fu_stylegan2 *m, fu_tensor *latent,
                          fu_tensor *const *noise, const fu_tensor_sink *taps) {
    if (check_inputs(m, latent, noise) != FU_OK) return NULL;
    /* The constant broadcasts to the batch at the first modulation (x * s). */
    fu_tensor *x = styled_conv(g, m, &m->conv1, m->input, latent_row(g, latent, 0), noise[0]);
    fu_tensor_sink_put(taps, "conv1", x);
    fu_tensor *skip = to_rgb(g, m, &m->to_rgb1, x, latent_row(g, latent, 1), NULL);
    fu_tensor_sink_put(taps, "to_rgb1", skip);
    char name[32];
    for (int b = 0; b < m->n_convs / 2; b++) {
        for (int j = 0; j < 2; j++) {
            int i = 2 * b + j;
            x = styled_conv(g, m, &m->convs[i], x, latent_row(g, latent, i + 1), noise[i + 1]);
            snprintf(name, sizeof name, "convs_%d", i);
            fu_tensor_sink_put(taps, name, x);
        }
        skip = to_rgb(g, m, &m->to_rgbs[b], x, latent_row(g, latent, 2 * b + 3), skip);
        snprintf(name, sizeof name, "to_rgbs_%d", b);
        fu_tensor_sink_put(taps, name, skip);
    }
    return skip;
}

/* ---------------------------------------------------------------- random weights */

fu_sg2_config fu_sg2_config_ffhq(void) {
    return (fu_sg2_config){.size = 1024, .style_dim = 512, .n_mlp = 8, .channel_multiplier = 2, .narrow = 1};
}

/* rosinality's table: 512 up to 32x32, then 256*cm at 64 halving per doubling. */
static int64_t sg2_channels(const fu_sg2_config *c, int res) {
    int64_t ch = res <= 32 ? 512 : (int64_t)256 * c->channel_multiplier * 64 / res;
    ch /= c->narrow;
    return ch < 1 ? 1 : ch;
}

typedef struct { fu_weights *w; fu_rng rng; int ok; } random_table;

static fu_tensor *put(random_table *t, int ndim, const int64_t *shape, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* New zero tensor under "g_ema." + name (NULL once anything failed). */
static fu_tensor *put(random_table *t, int ndim, const int64_t *shape, const char *fmt, ...) {
    if (!t->ok) return NULL;
    char name[192];
    int k = snprintf(name, sizeof name, "g_ema.");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name + k, sizeof name - (size_t)k, fmt, ap);
    va_end(ap);
    fu_tensor *x = fu_tensor_new(ndim, shape);
    t->ok = x && fu_weights_put(t->w, name, x) == FU_OK;
    return t->ok ? x : NULL;
}

static void fill(random_table *t, fu_tensor *x, float mean, float std) {
    if (x) fu_rng_fill_normal(&t->rng, x->data, x->numel, mean, std);
}

static void put_conv(random_table *t, const char *module, int is_rgb, int upsample, int64_t ci, int64_t co,
                     int64_t D, const float *fir) {
    int k = is_rgb ? 1 : 3;
    fill(t, put(t, 5, (int64_t[]){1, co, ci, k, k}, "%s.conv.weight", module), 0, 1);
    fill(t, put(t, 2, (int64_t[]){ci, D}, "%s.conv.modulation.weight", module), 0, 1);
    fill(t, put(t, 1, (int64_t[]){ci}, "%s.conv.modulation.bias", module), 1, 0.2f);
    if (is_rgb) {
        fill(t, put(t, 4, (int64_t[]){1, co, 1, 1}, "%s.bias", module), 0, 0.2f);
    } else {
        fill(t, put(t, 1, (int64_t[]){co}, "%s.activate.bias", module), 0, 0.2f);
        fill(t, put(t, 1, (int64_t[]){1}, "%s.noise.weight", module), 0, 0.2f);
    }
    fu_tensor *kernel = upsample ? put(t, 2, (int64_t[]){4, 4}, is_rgb ? "%s.upsample.kernel" : "%s.conv.blur.kernel", module) : NULL;
    if (kernel) memcpy(kernel->data, fir, 16 * sizeof(float));
}

fu_weights *fu_sg2_random_weights(const fu_sg2_config *c, uint64_t seed) {
    int s = c ? c->size : 0;
    if (!c || s < 8 || (s & (s - 1)) || s > (1 << FU_SG2_MAX_LOG_SIZE) || c->style_dim < 1 || c->n_mlp < 0 ||
        c->n_mlp > FU_SG2_MAX_MLP || c->channel_multiplier < 1 || c->narrow < 1)
        return fu_fail_null(FU_E_INPUT, "stylegan2: bad random config");
    random_table t = {0};
    t.w = fu_weights_new_table();
    t.ok = t.w != NULL;
    fu_rng_seed(&t.rng, seed);
    /* [1,3,3,1] outer itself / 64, times 4 (the x2 upsampling gain), as the module stores it. */
    float fir[16];
    static const float k1[4] = {1, 3, 3, 1};
    for (int i = 0; i < 16; i++) fir[i] = k1[i / 4] * k1[i % 4] / 64.0f * 4.0f;
    int64_t D = c->style_dim, C = sg2_channels(c, 4);
    for (int i = 0; i < c->n_mlp; i++) {
        fill(&t, put(&t, 2, (int64_t[]){D, D}, "style.%d.weight", i + 1), 0, (float)(1 / LR_MLP));
        fill(&t, put(&t, 1, (int64_t[]){D}, "style.%d.bias", i + 1), 0, 1);
    }
    fill(&t, put(&t, 4, (int64_t[]){1, C, 4, 4}, "input.input"), 0, 1);
    put_conv(&t, "conv1", 0, 0, C, C, D, fir);
    put_conv(&t, "to_rgb1", 1, 0, C, 3, D, fir);
    char name[32];
    int n_noise = 1;
    for (int res = 8, b = 0; res <= s; res *= 2, b++) {
        int64_t cin = C;
        C = sg2_channels(c, res);
        snprintf(name, sizeof name, "convs.%d", 2 * b);
        put_conv(&t, name, 0, 1, cin, C, D, fir);
        snprintf(name, sizeof name, "convs.%d", 2 * b + 1);
        put_conv(&t, name, 0, 0, C, C, D, fir);
        snprintf(name, sizeof name, "to_rgbs.%d", b);
        put_conv(&t, name, 1, 1, C, 3, D, fir);
        n_noise += 2;
    }
    for (int i = 0; i < n_noise; i++) {
        int64_t r = 4 << ((i + 1) / 2);
        fill(&t, put(&t, 4, (int64_t[]){1, 1, r, r}, "noises.noise_%d", i), 0, 1);
    }
    if (!t.ok) {
        fu_weights_free(t.w);
        return NULL;
    }
    return t.w;
}
