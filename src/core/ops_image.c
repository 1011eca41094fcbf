/* Image resampling: StyleGAN2's upfirdn2d and the separable resizers (PULSE's bicubic
 * downsampler, bicubic, bilinear, area).
 *
 * Every separable resizer is one linear map per axis: output index o of an axis of size O is
 * sum_k w[o][k] * input[idx[o][k]], k < taps (unused taps have weight 0). A plan holds the
 * row (H) and column (W) tables, built once when the node is created; forward applies rows
 * first ([H,W] -> [oh,W], into a scratch buffer) then columns ([oh,W] -> [oh,ow]); backward
 * applies the transposed maps in reverse order, reusing the scratch buffer. */
#include "ops.h"
#include "error.h"
#include <math.h>
#include <string.h>

typedef struct {
    int64_t out, taps;
    int64_t *idx;   /* [out * taps] input indices, all in range */
    float *w;       /* [out * taps] */
} axis_map;

typedef struct {
    axis_map rows, cols;
    float *scratch; /* [planes, oh, W]: row-pass output in forward, its gradient in backward */
} resample_plan;

static int axis_map_alloc(fu_graph *g, axis_map *m, int64_t out, int64_t taps) {
    m->out = out;
    m->taps = taps;
    m->idx = fu_graph_alloc(g, (size_t)(out * taps) * sizeof *m->idx);
    m->w = fu_graph_alloc(g, (size_t)(out * taps) * sizeof *m->w);
    if (!m->idx || !m->w) return FU_E_INTERNAL;
    memset(m->idx, 0, (size_t)(out * taps) * sizeof *m->idx);
    memset(m->w, 0, (size_t)(out * taps) * sizeof *m->w);
    return FU_OK;
}

static int64_t clamp_index(int64_t i, int64_t n) { return i < 0 ? 0 : i >= n ? n - 1 : i; }

/* Mirror without repeating the edge sample (PyTorch's 'reflect'); needs -n < i < 2n - 1. */
static int64_t reflect_index(int64_t i, int64_t n) { return i < 0 ? -i : i >= n ? 2 * (n - 1) - i : i; }

/* Keys' cubic convolution kernel with parameter a. */
static double cubic(double x, double a) {
    x = fabs(x);
    if (x <= 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
    if (x < 2) return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
    return 0;
}

/* PULSE's BicubicDownSample along one axis of size n: 4f taps k[i] = cubic((i - 2f + 0.5)/f),
 * a = -0.5, normalised; reflect padding (3f//2 before); output o reads padded samples
 * o*f .. o*f + 4f - 1. */
static int pulse_bicubic_map(fu_graph *g, axis_map *m, int64_t n, int f) {
    int64_t taps = 4 * (int64_t)f, pad_before = 3 * (int64_t)f / 2;
    if (axis_map_alloc(g, m, n / f, taps) != FU_OK) return FU_E_INTERNAL;
    double k[4 * 64], sum = 0;
    for (int64_t i = 0; i < taps; i++) sum += k[i] = cubic(((double)i - 2.0 * f + 0.5) / f, -0.5);
    for (int64_t o = 0; o < m->out; o++)
        for (int64_t i = 0; i < taps; i++) {
            m->idx[o * taps + i] = reflect_index(o * f + i - pad_before, n);
            m->w[o * taps + i] = (float)(k[i] / sum);
        }
    return FU_OK;
}

/* PyTorch's bilinear source index of output o (align_corners false: half-pixel centres,
 * negative positions clamped to 0; true: corners aligned). */
static int bilinear_map(fu_graph *g, axis_map *m, int64_t n, int64_t out, int align_corners) {
    if (axis_map_alloc(g, m, out, 2) != FU_OK) return FU_E_INTERNAL;
    for (int64_t o = 0; o < out; o++) {
        double src;
        if (align_corners) src = out > 1 ? (double)o * (double)(n - 1) / (double)(out - 1) : 0;
        else src = fmax(((double)o + 0.5) * (double)n / (double)out - 0.5, 0);
        int64_t i0 = (int64_t)floor(src);
        if (i0 > n - 1) i0 = n - 1;
        double t = src - (double)i0;
        m->idx[2 * o] = i0;
        m->idx[2 * o + 1] = clamp_index(i0 + 1, n);
        m->w[2 * o] = (float)(1 - t);
        m->w[2 * o + 1] = (float)t;
    }
    return FU_OK;
}

/* Output o averages inputs floor(o*n/out) .. ceil((o+1)*n/out) - 1 (adaptive average pool). */
static int area_map(fu_graph *g, axis_map *m, int64_t n, int64_t out) {
    int64_t taps = 1;
    for (int64_t o = 0; o < out; o++) {
        int64_t lo = o * n / out, hi = ((o + 1) * n + out - 1) / out;
        if (hi - lo > taps) taps = hi - lo;
    }
    if (axis_map_alloc(g, m, out, taps) != FU_OK) return FU_E_INTERNAL;
    for (int64_t o = 0; o < out; o++) {
        int64_t lo = o * n / out, hi = ((o + 1) * n + out - 1) / out;
        for (int64_t i = lo; i < hi; i++) {
            m->idx[o * taps + i - lo] = i;
            m->w[o * taps + i - lo] = (float)(1.0 / (double)(hi - lo));
        }
    }
    return FU_OK;
}

#define RESIZE_CUBIC_A (-0.75)

/* Bicubic along one axis, half-pixel centres (align_corners false), scale = n / out.
 * Growing or equal size (scale <= 1): PyTorch's bicubic, i.e. 4 taps around the source
 * position with border indices clamped (replicate). Shrinking (scale > 1): the same cubic
 * stretched by the scale (support 2*scale input pixels) so it low-passes before decimating,
 * taps outside the image dropped and the rest renormalised to sum 1 -- PIL's / PyTorch's
 * antialias=True scheme, except that they use a = -0.5 there while this keeps a = -0.75. */
static int bicubic_map(fu_graph *g, axis_map *m, int64_t n, int64_t out) {
    double scale = (double)n / (double)out;
    if (scale <= 1) {
        if (axis_map_alloc(g, m, out, 4) != FU_OK) return FU_E_INTERNAL;
        for (int64_t o = 0; o < out; o++) {
            double src = ((double)o + 0.5) * scale - 0.5, f = floor(src), t = src - f;
            for (int k = 0; k < 4; k++) {
                m->idx[4 * o + k] = clamp_index((int64_t)f - 1 + k, n);
                m->w[4 * o + k] = (float)cubic(t + 1 - k, RESIZE_CUBIC_A);
            }
        }
        return FU_OK;
    }
    double support = 2 * scale;
    int64_t taps = (int64_t)ceil(support) * 2 + 1;
    if (axis_map_alloc(g, m, out, taps) != FU_OK) return FU_E_INTERNAL;
    for (int64_t o = 0; o < out; o++) {
        double centre = ((double)o + 0.5) * scale, sum = 0;
        int64_t lo = (int64_t)floor(centre - support + 0.5), hi = (int64_t)floor(centre + support + 0.5);
        if (lo < 0) lo = 0;
        if (hi > n) hi = n;
        if (hi - lo > taps) hi = lo + taps;
        for (int64_t i = lo; i < hi; i++) sum += cubic(((double)i + 0.5 - centre) / scale, RESIZE_CUBIC_A);
        for (int64_t i = lo; i < hi; i++) {
            m->idx[o * taps + i - lo] = i;
            m->w[o * taps + i - lo] = (float)(cubic(((double)i + 0.5 - centre) / scale, RESIZE_CUBIC_A) / sum);
        }
    }
    return FU_OK;
}

/* ---- applying a plan -------------------------------------------------------------------- */

static void rows_forward(const axis_map *m, const float *x, float *t, int64_t W) {
    for (int64_t o = 0; o < m->out; o++) {
        float *to = t + o * W;
        memset(to, 0, (size_t)W * sizeof(float));
        for (int64_t k = 0; k < m->taps; k++) {
            float w = m->w[o * m->taps + k];
            const float *xr = x + m->idx[o * m->taps + k] * W;
            for (int64_t j = 0; j < W; j++) to[j] += w * xr[j];
        }
    }
}

static void cols_forward(const axis_map *m, const float *t, float *y, int64_t rows, int64_t W) {
    for (int64_t r = 0; r < rows; r++) {
        const float *tr = t + r * W;
        float *yr = y + r * m->out;
        for (int64_t o = 0; o < m->out; o++) {
            float s = 0;
            for (int64_t k = 0; k < m->taps; k++) s += m->w[o * m->taps + k] * tr[m->idx[o * m->taps + k]];
            yr[o] = s;
        }
    }
}

static void cols_backward(const axis_map *m, const float *gy, float *gt, int64_t rows, int64_t W) {
    memset(gt, 0, (size_t)(rows * W) * sizeof(float));
    for (int64_t r = 0; r < rows; r++) {
        float *gtr = gt + r * W;
        const float *gyr = gy + r * m->out;
        for (int64_t o = 0; o < m->out; o++)
            for (int64_t k = 0; k < m->taps; k++) gtr[m->idx[o * m->taps + k]] += m->w[o * m->taps + k] * gyr[o];
    }
}

static void rows_backward(const axis_map *m, const float *gt, float *gx, int64_t W) {
    for (int64_t o = 0; o < m->out; o++) {
        const float *gto = gt + o * W;
        for (int64_t k = 0; k < m->taps; k++) {
            float w = m->w[o * m->taps + k];
            float *gxr = gx + m->idx[o * m->taps + k] * W;
            for (int64_t j = 0; j < W; j++) gxr[j] += w * gto[j];
        }
    }
}

static int resample_forward(fu_node *n) {
    const resample_plan *p = n->saved;
    const fu_tensor *x = n->in[0];
    int64_t planes = x->shape[0] * x->shape[1], H = x->shape[2], W = x->shape[3];
    int64_t oh = p->rows.out, ow = p->cols.out;
    #pragma omp parallel for schedule(static) if (x->numel > 32768 && planes > 1)
    for (int64_t c = 0; c < planes; c++) {
        float *t = p->scratch + c * oh * W;
        rows_forward(&p->rows, x->data + c * H * W, t, W);
        cols_forward(&p->cols, t, n->out->data + c * oh * ow, oh, W);
    }
    return FU_OK;
}

static void resample_backward(fu_node *n) {
    float *gx = fu_in_grad(n, 0);
    if (!gx) return;
    const resample_plan *p = n->saved;
    const fu_tensor *x = n->in[0];
    int64_t planes = x->shape[0] * x->shape[1], H = x->shape[2], W = x->shape[3];
    int64_t oh = p->rows.out, ow = p->cols.out;
    #pragma omp parallel for schedule(static) if (x->numel > 32768 && planes > 1)
    for (int64_t c = 0; c < planes; c++) {
        float *gt = p->scratch + c * oh * W;
        cols_backward(&p->cols, n->out->grad + c * oh * ow, gt, oh, W);
        rows_backward(&p->rows, gt, gx + c * H * W, W);
    }
}

static const fu_op op_resample = {"resample", resample_forward, resample_backward, NULL};

enum { MAP_PULSE_BICUBIC, MAP_BILINEAR, MAP_BILINEAR_ALIGNED, MAP_AREA, MAP_BICUBIC };

static int build_map(fu_graph *g, axis_map *m, int kind, int64_t n, int64_t out, int factor) {
    switch (kind) {
    case MAP_PULSE_BICUBIC: return pulse_bicubic_map(g, m, n, factor);
    case MAP_BILINEAR: return bilinear_map(g, m, n, out, 0);
    case MAP_BILINEAR_ALIGNED: return bilinear_map(g, m, n, out, 1);
    case MAP_AREA: return area_map(g, m, n, out);
    default: return bicubic_map(g, m, n, out);
    }
}

/* Builds the node and its plan; x is 4-d and (oh, ow) >= 1 (checked by the callers). */
static fu_tensor *resample(fu_graph *g, fu_tensor *x, int kind, int64_t oh, int64_t ow, int factor) {
    int64_t shape[4] = {x->shape[0], x->shape[1], oh, ow};
    fu_node *n = fu_node_new(g, &op_resample, &x, 1, 4, shape);
    if (!n) return NULL;
    resample_plan *p = fu_node_saved(n, sizeof *p);
    if (!p) return NULL;
    if (build_map(g, &p->rows, kind, x->shape[2], oh, factor) != FU_OK ||
        build_map(g, &p->cols, kind, x->shape[3], ow, factor) != FU_OK)
        return NULL;
    p->scratch = fu_graph_alloc(g, (size_t)(x->shape[0] * x->shape[1] * oh * x->shape[3]) * sizeof(float));
    if (!p->scratch) return NULL;
    return fu_node_run(n);
}

/* Common checks of the resizers: 4-d non-empty input, positive output size. */
static int check_resize(const char *op, const fu_tensor *x, int64_t oh, int64_t ow) {
    if (!fu_check_ndim(op, x, 4)) return 0;
    char buf[96];
    if (x->numel == 0) { fu_fail(FU_E_INPUT, "%s: empty input %s", op, fu_shape_str(x, buf, sizeof buf)); return 0; }
    if (oh < 1 || ow < 1 || fu_shape_numel(4, (int64_t[]){x->shape[0], x->shape[1], oh, ow}) < 0) {
        fu_fail(FU_E_INPUT, "%s: bad output size %lldx%lld", op, (long long)oh, (long long)ow);
        return 0;
    }
    return 1;
}

fu_tensor *fu_bicubic_downsample(fu_graph *g, fu_tensor *x, int factor) {
    if (!x) return fu_node_run(fu_node_new(g, &op_resample, &x, 1, 0, NULL));
    if (!fu_check_ndim("bicubic_downsample", x, 4)) return NULL;
    if (factor < 1 || factor > 64) return fu_fail_null(FU_E_INPUT, "bicubic_downsample: factor must be in 1..64, got %d", factor);
    /* Reflect padding needs the larger pad (after) to be smaller than the size. */
    int64_t pad_after = 3 * (int64_t)factor - 3 * (int64_t)factor / 2;
    char buf[96];
    if (x->shape[2] <= pad_after || x->shape[3] <= pad_after)
        return fu_fail_null(FU_E_INPUT, "bicubic_downsample: %s too small for factor %d (H and W must exceed %lld)",
                            fu_shape_str(x, buf, sizeof buf), factor, (long long)pad_after);
    if (!check_resize("bicubic_downsample", x, x->shape[2] / factor, x->shape[3] / factor)) return NULL;
    return resample(g, x, MAP_PULSE_BICUBIC, x->shape[2] / factor, x->shape[3] / factor, factor);
}

fu_tensor *fu_resize_bicubic(fu_graph *g, fu_tensor *x, int64_t oh, int64_t ow) {
    if (!x) return fu_node_run(fu_node_new(g, &op_resample, &x, 1, 0, NULL));
    if (!check_resize("resize_bicubic", x, oh, ow)) return NULL;
    return resample(g, x, MAP_BICUBIC, oh, ow, 0);
}

fu_tensor *fu_resize_bilinear(fu_graph *g, fu_tensor *x, int64_t oh, int64_t ow, int align_corners) {
    if (!x) return fu_node_run(fu_node_new(g, &op_resample, &x, 1, 0, NULL));
    if (!check_resize("resize_bilinear", x, oh, ow)) return NULL;
    return resample(g, x, align_corners ? MAP_BILINEAR_ALIGNED : MAP_BILINEAR, oh, ow, 0);
}

fu_tensor *fu_resize_area(fu_graph *g, fu_tensor *x, int64_t oh, int64_t ow) {
    if (!x) return fu_node_run(fu_node_new(g, &op_resample, &x, 1, 0, NULL));
    if (!check_resize("resize_area", x, oh, ow)) return NULL;
    return resample(g, x, MAP_AREA, oh, ow, 0);
}

/* ---- upfirdn2d ---------------------------------------------------------------------------
 * Per plane, following rosinality's upfirdn2d_native: U = x with up-1 zeros after every sample
 * along each axis (size in*up), P = U padded by (y0, y1) rows and (x0, x1) columns (negative
 * amounts crop), O = P correlated with the flipped kernel (valid positions), out = every
 * down-th sample of O starting at 0. So out[oy][ox] = sum_{ky,kx} K[kh-1-ky][kw-1-kx] *
 * U[oy*down + ky - y0][ox*down + kx - x0], where U[j] is x[j/up] if j % up == 0 and 0 <= j <
 * in*up, else 0.
 * ip: up, down, x0, x1, y0, y1, kh, kw. saved: the kernel, flipped (kh*kw floats). */

enum { UF_UP, UF_DOWN, UF_X0, UF_X1, UF_Y0, UF_Y1, UF_KH, UF_KW };

/* Input index read by upsampled-and-padded position j (u = j - pad), or -1 for a zero. */
static int64_t upfirdn_source(int64_t u, int64_t up, int64_t n) {
    if (u < 0 || u >= n * up || u % up) return -1;
    return u / up;
}

/* One plane: forward adds k * x[i] into y[o] for every (output o, input i, tap k) triple;
 * backward (transpose) adds k * gy[o] into gx[i]. */
static void upfirdn_plane(const fu_node *n, const float *src, float *dst, int transpose) {
    const int64_t *ip = n->ip;
    const float *kf = n->saved;
    int64_t H = n->in[0]->shape[2], W = n->in[0]->shape[3], OH = n->out->shape[2], OW = n->out->shape[3];
    for (int64_t oy = 0; oy < OH; oy++)
        for (int64_t ky = 0; ky < ip[UF_KH]; ky++) {
            int64_t iy = upfirdn_source(oy * ip[UF_DOWN] + ky - ip[UF_Y0], ip[UF_UP], H);
            if (iy < 0) continue;
            for (int64_t ox = 0; ox < OW; ox++)
                for (int64_t kx = 0; kx < ip[UF_KW]; kx++) {
                    int64_t ix = upfirdn_source(ox * ip[UF_DOWN] + kx - ip[UF_X0], ip[UF_UP], W);
                    if (ix < 0) continue;
                    int64_t o = oy * OW + ox, i = iy * W + ix;
                    float k = kf[ky * ip[UF_KW] + kx];
                    if (transpose) dst[i] += k * src[o];
                    else dst[o] += k * src[i];
                }
        }
}

static int upfirdn2d_forward(fu_node *n) {
    const fu_tensor *x = n->in[0];
    int64_t planes = x->shape[0] * x->shape[1], in_plane = x->shape[2] * x->shape[3];
    int64_t out_plane = n->out->shape[2] * n->out->shape[3];
    memset(n->out->data, 0, (size_t)n->out->numel * sizeof(float));
    #pragma omp parallel for schedule(static) if (n->out->numel > 16384 && planes > 1)
    for (int64_t c = 0; c < planes; c++) upfirdn_plane(n, x->data + c * in_plane, n->out->data + c * out_plane, 0);
    return FU_OK;
}

static void upfirdn2d_backward(fu_node *n) {
    float *gx = fu_in_grad(n, 0);
    if (!gx) return;
    const fu_tensor *x = n->in[0];
    int64_t planes = x->shape[0] * x->shape[1], in_plane = x->shape[2] * x->shape[3];
    int64_t out_plane = n->out->shape[2] * n->out->shape[3];
    #pragma omp parallel for schedule(static) if (n->out->numel > 16384 && planes > 1)
    for (int64_t c = 0; c < planes; c++) upfirdn_plane(n, n->out->grad + c * out_plane, gx + c * in_plane, 1);
}

static const fu_op op_upfirdn2d = {"upfirdn2d", upfirdn2d_forward, upfirdn2d_backward, NULL};

fu_tensor *fu_upfirdn2d(fu_graph *g, fu_tensor *x, const float *kernel, int kh, int kw,
                        int up, int down, const int pad[4]) {
    if (!x) return fu_node_run(fu_node_new(g, &op_upfirdn2d, &x, 1, 0, NULL));
    if (!fu_check_ndim("upfirdn2d", x, 4)) return NULL;
    if (!kernel || !pad) return fu_fail_null(FU_E_INPUT, "upfirdn2d: NULL %s", kernel ? "pad" : "kernel");
    if (kh < 1 || kw < 1 || kh > 256 || kw > 256) return fu_fail_null(FU_E_INPUT, "upfirdn2d: kernel size %dx%d out of range 1..256", kh, kw);
    if (up < 1 || down < 1 || up > 64 || down > 64) return fu_fail_null(FU_E_INPUT, "upfirdn2d: up %d / down %d must be in 1..64", up, down);
    for (int i = 0; i < 4; i++)
        if (pad[i] < -(1 << 20) || pad[i] > (1 << 20)) return fu_fail_null(FU_E_INPUT, "upfirdn2d: pad %d out of range", pad[i]);
    int64_t ph = x->shape[2] * up + pad[2] + pad[3], pw = x->shape[3] * up + pad[0] + pad[1];
    if (ph < kh || pw < kw) {
        char buf[96];
        return fu_fail_null(FU_E_INPUT, "upfirdn2d: padded size %lldx%lld of %s is smaller than the %dx%d kernel",
                            (long long)ph, (long long)pw, fu_shape_str(x, buf, sizeof buf), kh, kw);
    }
    int64_t shape[4] = {x->shape[0], x->shape[1], (ph - kh) / down + 1, (pw - kw) / down + 1};
    fu_node *n = fu_node_new(g, &op_upfirdn2d, &x, 1, 4, shape);
    if (!n) return NULL;
    float *flipped = fu_node_saved(n, (size_t)kh * (size_t)kw * sizeof(float));
    if (!flipped) return NULL;
    for (int i = 0; i < kh * kw; i++) flipped[i] = kernel[kh * kw - 1 - i];
    int64_t params[8] = {up, down, pad[0], pad[1], pad[2], pad[3], kh, kw};
    memcpy(n->ip, params, sizeof params);
    return fu_node_run(n);
}
