/* Fused StyleGAN layer ops, see sg_ops.h. The epilogues work per (n,c) plane of HW values. */
#include "gen/sg_ops.h"
#include "core/error.h"
#include "core/ops.h"
#include <math.h>
#include <stdlib.h>

/* ---- noise + bias + leaky ReLU (+ scale, gain) --------------------------------------------
 * in: x, noise, noise_weight, then bias and scale when given; ip[0], ip[1] = input index of
 * bias, scale (-1 = absent); ip[2..4] = N, C, HW; ip[5], ip[7] = 1 when noise, x have their own
 * map per sample (else one broadcast over the batch); ip[6] = 1 when noise_weight is per channel.
 * fp[0] = slope, fp[1] = gain. */

enum { NA_BIAS, NA_SCALE, NA_N, NA_C, NA_HW, NA_NOISE_PER_SAMPLE, NA_WEIGHT_PER_CHANNEL, NA_X_PER_SAMPLE };

typedef struct {
    int64_t N, C, HW;
    const float *x, *noise, *nw, *bias, *scale, *y;
    int noise_per_sample, nw_per_channel, x_per_sample;
    float slope, gain;
} noise_act;

static noise_act noise_act_view(const fu_node *n) {
    noise_act a = {n->ip[NA_N], n->ip[NA_C], n->ip[NA_HW], n->in[0]->data, n->in[1]->data, n->in[2]->data,
                   n->ip[NA_BIAS] >= 0 ? n->in[n->ip[NA_BIAS]]->data : NULL,
                   n->ip[NA_SCALE] >= 0 ? n->in[n->ip[NA_SCALE]]->data : NULL, n->out->data,
                   (int)n->ip[NA_NOISE_PER_SAMPLE], (int)n->ip[NA_WEIGHT_PER_CHANNEL], (int)n->ip[NA_X_PER_SAMPLE],
                   n->fp[0], n->fp[1]};
    return a;
}

static float na_scale(const noise_act *a, int64_t n, int64_t c) { return a->scale ? a->scale[n * a->C + c] : 1.0f; }
static float na_weight(const noise_act *a, int64_t c) { return a->nw[a->nw_per_channel ? c : 0]; }
static const float *na_noise(const noise_act *a, int64_t n) { return a->noise + (a->noise_per_sample ? n * a->HW : 0); }
/* Offset of plane (n,c) in x. */
static int64_t na_x_at(const noise_act *a, int64_t n, int64_t c) { return ((a->x_per_sample ? n : 0) * a->C + c) * a->HW; }

static int noise_act_forward(fu_node *node) {
    noise_act a = noise_act_view(node);
    float *y = node->out->data;
    #pragma omp parallel for collapse(2) schedule(static) if (a.N * a.C * a.HW > 65536)
    for (int64_t n = 0; n < a.N; n++)
        for (int64_t c = 0; c < a.C; c++) {
            const float *xp = a.x + na_x_at(&a, n, c), *np = na_noise(&a, n);
            float *yp = y + (n * a.C + c) * a.HW;
            float s = na_scale(&a, n, c), w = na_weight(&a, c), b = a.bias ? a.bias[c] : 0.0f;
            for (int64_t i = 0; i < a.HW; i++) {
                float p = xp[i] * s + w * np[i] + b;
                yp[i] = (p > 0 ? p : a.slope * p) * a.gain;
            }
        }
    return FU_OK;
}

/* d(y)/d(pre-activation) times the upstream gradient; the branch is the sign of y. */
static inline float pre_grad(const noise_act *a, float y, float gy) { return gy * a->gain * (y > 0 ? 1.0f : a->slope); }

/* Gradients that are per channel (x, scale, bias, noise_weight): one channel per thread. */
static void noise_act_channel_grads(fu_node *node, const noise_act *a, const float *gy, double *gw_chan) {
    float *gx = fu_in_grad(node, 0);
    float *gbias = node->ip[NA_BIAS] >= 0 ? fu_in_grad(node, (int)node->ip[NA_BIAS]) : NULL;
    float *gscale = node->ip[NA_SCALE] >= 0 ? fu_in_grad(node, (int)node->ip[NA_SCALE]) : NULL;
    #pragma omp parallel for schedule(static) if (a->N * a->C * a->HW > 65536)
    for (int64_t c = 0; c < a->C; c++) {
        double sb = 0, sw = 0;
        for (int64_t n = 0; n < a->N; n++) {
            int64_t off = (n * a->C + c) * a->HW, xoff = na_x_at(a, n, c);
            const float *xp = a->x + xoff, *yp = a->y + off, *gp = gy + off, *np = na_noise(a, n);
            float s = na_scale(a, n, c);
            double ss = 0;
            for (int64_t i = 0; i < a->HW; i++) {
                float gpre = pre_grad(a, yp[i], gp[i]);
                sb += gpre;
                sw += (double)gpre * np[i];
                ss += (double)gpre * xp[i];
                if (gx) gx[xoff + i] += gpre * s;
            }
            if (gscale) gscale[n * a->C + c] += (float)ss;
        }
        if (gbias) gbias[c] += (float)sb;
        gw_chan[c] = sw;
    }
}

/* The noise map's gradient sums over channels (and samples when the map is shared): parallel
 * over blocks of pixels. */
static void noise_act_noise_grad(const noise_act *a, const float *gy, float *gnoise) {
    enum { BLOCK = 4096 };
    int64_t blocks = (a->HW + BLOCK - 1) / BLOCK;
    #pragma omp parallel for schedule(static) if (a->N * a->C * a->HW > 65536)
    for (int64_t b = 0; b < blocks; b++) {
        int64_t i0 = b * BLOCK, i1 = i0 + BLOCK < a->HW ? i0 + BLOCK : a->HW;
        for (int64_t n = 0; n < a->N; n++) {
            float *gn = gnoise + (a->noise_per_sample ? n * a->HW : 0);
            for (int64_t c = 0; c < a->C; c++) {
                int64_t off = (n * a->C + c) * a->HW;
                float w = na_weight(a, c);
                for (int64_t i = i0; i < i1; i++) gn[i] += w * pre_grad(a, a->y[off + i], gy[off + i]);
            }
        }
    }
}

static void noise_act_backward(fu_node *node) {
    noise_act a = noise_act_view(node);
    const float *gy = node->out->grad;
    float *gnoise = fu_in_grad(node, 1), *gnw = fu_in_grad(node, 2);
    double *gw_chan = malloc((size_t)a.C * sizeof *gw_chan);
    if (!gw_chan) {
        fu_fail(FU_E_INTERNAL, "sg_noise_act: out of memory");
        return;
    }
    noise_act_channel_grads(node, &a, gy, gw_chan);
    if (gnw)
        for (int64_t c = 0; c < a.C; c++) gnw[a.nw_per_channel ? c : 0] += (float)gw_chan[c];
    free(gw_chan);
    if (gnoise) noise_act_noise_grad(&a, gy, gnoise);
}

static const fu_op op_noise_act = {"sg_noise_act", noise_act_forward, noise_act_backward, NULL};

fu_tensor *fu_sg_noise_act(fu_graph *g, fu_tensor *x, fu_tensor *scale, fu_tensor *noise,
                           fu_tensor *noise_weight, fu_tensor *bias, float slope, float gain) {
    if (!x || !noise || !noise_weight)
        return fu_node_run(fu_node_new(g, &op_noise_act, (fu_tensor *[]){x, noise, noise_weight}, 3, 0, NULL));
    char sx[96], sn[96];
    if (x->ndim != 4 || noise->ndim != 4 || noise->shape[1] != 1 || noise->shape[2] != x->shape[2] ||
        noise->shape[3] != x->shape[3] || (noise->shape[0] != 1 && x->shape[0] != 1 && noise->shape[0] != x->shape[0]))
        return fu_fail_null(FU_E_INPUT, "sg_noise_act: x %s and noise %s (want [N or 1,C,H,W] and [N or 1,1,H,W])",
                            fu_shape_str(x, sx, sizeof sx), fu_shape_str(noise, sn, sizeof sn));
    int64_t N = x->shape[0] > noise->shape[0] ? x->shape[0] : noise->shape[0], C = x->shape[1];
    if ((noise_weight->numel != C && noise_weight->numel != 1) || (bias && bias->numel != C) ||
        (scale && (scale->numel != N * C)))
        return fu_fail_null(FU_E_INPUT, "sg_noise_act: noise weight needs %lld or 1 values, bias %lld, scale %lld (N*C)",
                            (long long)C, (long long)C, (long long)(N * C));
    if (!(slope > 0) || !(gain > 0) || !isfinite(slope) || !isfinite(gain))
        return fu_fail_null(FU_E_INPUT, "sg_noise_act: slope and gain must be finite and > 0");
    fu_tensor *in[5] = {x, noise, noise_weight};
    int n_in = 3;
    int64_t bias_at = bias ? n_in : -1;
    if (bias) in[n_in++] = bias;
    int64_t scale_at = scale ? n_in : -1;
    if (scale) in[n_in++] = scale;
    fu_node *n = fu_node_new(g, &op_noise_act, in, n_in, 4, (int64_t[]){N, C, x->shape[2], x->shape[3]});
    if (!n) return NULL;
    int64_t ip[8] = {bias_at, scale_at, N, C, x->shape[2] * x->shape[3], noise->shape[0] == N && N > 1,
                     noise_weight->numel == C && C > 1, x->shape[0] == N && N > 1};
    for (int i = 0; i < 8; i++) n->ip[i] = ip[i];
    n->fp[0] = slope;
    n->fp[1] = gain;
    return fu_node_run(n);
}

/* ---- instance norm + per-sample style ----------------------------------------------------
 * in: x, scale, shift; ip[0] = HW, ip[1] = C, ip[2] = 1 when x has a plane per sample (else one
 * sample broadcast over the batch of styles); fp[0] = eps; saved: mean[P], invstd[P] for the
 * P = N*C output planes. Parallel over channels, so a broadcast x's gradient has one writer. */

static int64_t style_in_x_at(const fu_node *n, int64_t b, int64_t c) {
    return ((n->ip[2] ? b : 0) * n->ip[1] + c) * n->ip[0];
}

static int style_in_forward(fu_node *n) {
    int64_t S = n->ip[0], C = n->ip[1], planes = n->out->numel / S, N = planes / C;
    float *stats = fu_node_saved(n, (size_t)planes * 2 * sizeof(float));
    if (!stats) return FU_E_INTERNAL;
    const float *x = n->in[0]->data, *a = n->in[1]->data, *b = n->in[2]->data;
    float *y = n->out->data, eps = n->fp[0];
    #pragma omp parallel for schedule(static) if (n->out->numel > 32768)
    for (int64_t c = 0; c < C; c++)
        for (int64_t s = 0; s < N; s++) {
            int64_t p = s * C + c;
            const float *xp = x + style_in_x_at(n, s, c);
            double sum = 0, sq = 0;
            for (int64_t i = 0; i < S; i++) sum += xp[i];
            double mean = sum / (double)S;
            for (int64_t i = 0; i < S; i++) { double d = xp[i] - mean; sq += d * d; }
            float invstd = (float)(1.0 / sqrt(sq / (double)S + eps)), m = (float)mean;
            stats[p] = m;
            stats[planes + p] = invstd;
            float k = invstd * a[p], *yp = y + p * S;
            for (int64_t i = 0; i < S; i++) yp[i] = (xp[i] - m) * k + b[p];
        }
    return FU_OK;
}

/* With xhat = (x - mean) * invstd: d scale = sum(gy * xhat), d shift = sum(gy),
 * dx = invstd * scale * (gy - mean(gy) - xhat * mean(gy * xhat)). */
static void style_in_backward(fu_node *n) {
    float *gx = fu_in_grad(n, 0), *ga = fu_in_grad(n, 1), *gb = fu_in_grad(n, 2);
    int64_t S = n->ip[0], C = n->ip[1], planes = n->out->numel / S, N = planes / C;
    const float *stats = n->saved, *x = n->in[0]->data, *a = n->in[1]->data, *gy = n->out->grad;
    #pragma omp parallel for schedule(static) if (n->out->numel > 32768)
    for (int64_t c = 0; c < C; c++)
        for (int64_t s = 0; s < N; s++) {
            int64_t p = s * C + c, xo = style_in_x_at(n, s, c);
            const float *xp = x + xo, *gp = gy + p * S;
            float m = stats[p], invstd = stats[planes + p];
            double sg = 0, sgx = 0;
            for (int64_t i = 0; i < S; i++) {
                sg += gp[i];
                sgx += (double)gp[i] * ((xp[i] - m) * invstd);
            }
            if (ga) ga[p] += (float)sgx;
            if (gb) gb[p] += (float)sg;
            if (!gx) continue;
            float mg = (float)(sg / (double)S), mgx = (float)(sgx / (double)S), k = invstd * a[p];
            float *gxp = gx + xo;
            for (int64_t i = 0; i < S; i++) gxp[i] += k * (gp[i] - mg - (xp[i] - m) * invstd * mgx);
        }
}

static const fu_op op_style_in = {"sg_style_instance_norm", style_in_forward, style_in_backward, NULL};

fu_tensor *fu_sg_style_instance_norm(fu_graph *g, fu_tensor *x, fu_tensor *scale, fu_tensor *shift, float eps) {
    fu_tensor *in[3] = {x, scale, shift};
    if (!x || !scale || !shift) return fu_node_run(fu_node_new(g, &op_style_in, in, 3, 0, NULL));
    char sx[96];
    if (x->ndim != 4 || x->numel == 0)
        return fu_fail_null(FU_E_INPUT, "sg_style_instance_norm: x %s must be a non-empty [N,C,H,W]", fu_shape_str(x, sx, sizeof sx));
    /* The batch is the styles' (x may be one sample shared by all of them). */
    int64_t C = x->shape[1], N = scale->numel / C;
    if (scale->numel != N * C || shift->numel != N * C || (x->shape[0] != 1 && x->shape[0] != N))
        return fu_fail_null(FU_E_INPUT, "sg_style_instance_norm: x %s needs scale and shift of N*C = %lld values",
                            fu_shape_str(x, sx, sizeof sx), (long long)(x->shape[0] * C));
    if (!(eps >= 0) || isinf(eps)) return fu_fail_null(FU_E_INPUT, "sg_style_instance_norm: eps must be finite and >= 0");
    fu_node *n = fu_node_new(g, &op_style_in, in, 3, 4, (int64_t[]){N, C, x->shape[2], x->shape[3]});
    if (!n) return NULL;
    n->ip[0] = x->shape[2] * x->shape[3];
    n->ip[1] = C;
    n->ip[2] = x->shape[0] == N && N > 1;
    n->fp[0] = eps;
    return fu_node_run(n);
}

/* ---- modulated 1x1 convolution ----------------------------------------------------------
 * in: x [N,C,HW], w [O,C], s [N,C]; ip[0..3] = N, C, O, HW. Per sample n, with the modulated
 * weight M = w * s[n] ([O,C], built in the scratch buffer):
 *   y_n = M x_n;  dx_n += M^T dy_n;  G = dy_n x_n^T [O,C]: ds[n,c] += sum_o w[o,c] G[o,c],
 *   dw[o,c] += s[n,c] G[o,c]. */

static void modulate(const float *w, const float *s, int64_t O, int64_t C, float *m) {
    for (int64_t o = 0; o < O; o++)
        for (int64_t c = 0; c < C; c++) m[o * C + c] = w[o * C + c] * s[c];
}

static int mod1x1_forward(fu_node *n) {
    int64_t N = n->ip[0], C = n->ip[1], O = n->ip[2], HW = n->ip[3];
    float *m = fu_graph_scratch(n->graph, (size_t)(O * C) * sizeof(float));
    if (!m) return FU_E_INTERNAL;
    for (int64_t b = 0; b < N; b++) {
        modulate(n->in[1]->data, n->in[2]->data + b * C, O, C, m);
        int rc = fu_sgemm('n', 'n', O, HW, C, 1, m, C, n->in[0]->data + b * C * HW, HW, 0, n->out->data + b * O * HW, HW);
        if (rc != FU_OK) return rc;
    }
    return FU_OK;
}

static void mod1x1_backward(fu_node *n) {
    int64_t N = n->ip[0], C = n->ip[1], O = n->ip[2], HW = n->ip[3];
    float *gx = fu_in_grad(n, 0), *gw = fu_in_grad(n, 1), *gs = fu_in_grad(n, 2);
    const float *x = n->in[0]->data, *w = n->in[1]->data, *s = n->in[2]->data, *gy = n->out->grad;
    /* scratch: M [O,C] then G [O,C] */
    float *m = fu_graph_scratch(n->graph, (size_t)(2 * O * C) * sizeof(float)), *G = m ? m + O * C : NULL;
    if (!m) return;
    for (int64_t b = 0; b < N; b++) {
        if (gx) {
            modulate(w, s + b * C, O, C, m);
            fu_sgemm('t', 'n', C, HW, O, 1, m, C, gy + b * O * HW, HW, 1, gx + b * C * HW, HW);
        }
        if (!gw && !gs) continue;
        fu_sgemm('n', 't', O, C, HW, 1, gy + b * O * HW, HW, x + b * C * HW, HW, 0, G, C);
        for (int64_t o = 0; o < O; o++)
            for (int64_t c = 0; c < C; c++) {
                if (gs) gs[b * C + c] += w[o * C + c] * G[o * C + c];
                if (gw) gw[o * C + c] += s[b * C + c] * G[o * C + c];
            }
    }
}

static const fu_op op_mod1x1 = {"sg_modulated_1x1", mod1x1_forward, mod1x1_backward, NULL};

fu_tensor *fu_sg_modulated_1x1(fu_graph *g, fu_tensor *x, fu_tensor *w, fu_tensor *s) {
    fu_tensor *in[3] = {x, w, s};
    if (!x || !w || !s) return fu_node_run(fu_node_new(g, &op_mod1x1, in, 3, 0, NULL));
    char sx[96], sw[96], ss[96];
    int64_t O = w->shape[0], C = x->ndim == 4 ? x->shape[1] : -1, N = x->shape[0];
    if (x->ndim != 4 || w->numel != O * C || (w->ndim != 2 && w->ndim != 4) || s->numel != N * C)
        return fu_fail_null(FU_E_INPUT, "sg_modulated_1x1: x %s, w %s, s %s (want [N,C,H,W], [O,C(,1,1)], [N,C])",
                            fu_shape_str(x, sx, sizeof sx), fu_shape_str(w, sw, sizeof sw), fu_shape_str(s, ss, sizeof ss));
    fu_node *n = fu_node_new(g, &op_mod1x1, in, 3, 4, (int64_t[]){N, O, x->shape[2], x->shape[3]});
    if (!n) return NULL;
    n->ip[0] = N;
    n->ip[1] = C;
    n->ip[2] = O;
    n->ip[3] = x->shape[2] * x->shape[3];
    return fu_node_run(n);
}
