/* Unary elementwise ops and activations.
 *
 * All pointwise ops share one node type: ip[0] is the kind, fp[0..1] its parameters. Forward
 * and backward switch on the kind once and run a plain (vectorisable, OpenMP-split) loop per
 * kind. Backward uses the saved output y where the derivative is cheaper in terms of y
 * (exp, sqrt, rsqrt, sigmoid, tanh, elu). PReLU has a learnable per-channel slope and is its
 * own node. */
#include "ops.h"
#include "error.h"
#include <math.h>

enum {
    U_NEG, U_ABS, U_SQUARE, U_SQRT, U_RSQRT, U_EXP, U_LOG, U_SCALE_SHIFT, U_CLAMP,
    U_RELU, U_RELU6, U_LEAKY_RELU, U_SIGMOID, U_TANH, U_SILU, U_ELU, U_ACOS
};

/* Split pointwise loops across threads only when the work outweighs the fork. */
enum { PAR_MIN = 32768 };

/* for (i < N) stmt, with N the element count in scope; parallel and vectorisable. */
#define MAP(stmt)                                                                     \
    do {                                                                              \
        _Pragma("omp parallel for schedule(static) if (N > PAR_MIN)")                 \
        for (int64_t i = 0; i < N; i++) { stmt; }                                     \
    } while (0)

/* 1 / (1 + exp(-x)) without overflow: exp of a non-positive number only. */
static inline float sigmoidf(float x) {
    if (x >= 0) return 1.0f / (1.0f + expf(-x));
    float e = expf(x);
    return e / (1.0f + e);
}

static int unary_forward(fu_node *n) {
    const float *x = n->in[0]->data;
    float *y = n->out->data;
    const int64_t N = n->out->numel;
    const float a = n->fp[0], b = n->fp[1];
    switch (n->ip[0]) {
    case U_NEG: MAP(y[i] = -x[i]); break;
    case U_ABS: MAP(y[i] = fabsf(x[i])); break;
    case U_SQUARE: MAP(y[i] = x[i] * x[i]); break;
    case U_SQRT: MAP(y[i] = sqrtf(x[i])); break;
    case U_RSQRT: MAP(y[i] = 1.0f / sqrtf(x[i])); break;
    case U_EXP: MAP(y[i] = expf(x[i])); break;
    case U_LOG: MAP(y[i] = logf(x[i])); break;
    case U_SCALE_SHIFT: MAP(y[i] = x[i] * a + b); break;
    /* Comparisons (not fminf/fmaxf) so that NaN propagates instead of turning into a bound. */
    case U_CLAMP: MAP(y[i] = x[i] < a ? a : (x[i] > b ? b : x[i])); break;
    case U_RELU: MAP(y[i] = x[i] > 0 ? x[i] : 0); break;
    case U_RELU6: MAP(y[i] = x[i] < 0 ? 0 : (x[i] > 6 ? 6 : x[i])); break;
    case U_LEAKY_RELU: MAP(y[i] = x[i] > 0 ? x[i] : a * x[i]); break;
    case U_SIGMOID: MAP(y[i] = sigmoidf(x[i])); break;
    case U_TANH: MAP(y[i] = tanhf(x[i])); break;
    case U_SILU: MAP(y[i] = x[i] * sigmoidf(x[i])); break;
    case U_ELU: MAP(y[i] = x[i] > 0 ? x[i] : a * expm1f(x[i])); break;
    case U_ACOS: MAP(y[i] = acosf(x[i])); break;
    default: return fu_fail(FU_E_INTERNAL, "unary: unknown kind %lld", (long long)n->ip[0]);
    }
    return FU_OK;
}

static void unary_backward(fu_node *n) {
    float *gx = fu_in_grad(n, 0);
    if (!gx) return;
    const float *x = n->in[0]->data, *y = n->out->data, *gy = n->out->grad;
    const int64_t N = n->out->numel;
    const float a = n->fp[0], b = n->fp[1];
    switch (n->ip[0]) {
    case U_NEG: MAP(gx[i] -= gy[i]); break;
    case U_ABS: MAP(gx[i] += gy[i] * (float)((x[i] > 0) - (x[i] < 0))); break;
    case U_SQUARE: MAP(gx[i] += gy[i] * 2.0f * x[i]); break;
    case U_SQRT: MAP(gx[i] += gy[i] * 0.5f / y[i]); break;
    case U_RSQRT: MAP(gx[i] += gy[i] * -0.5f * y[i] * y[i] * y[i]); break;
    case U_EXP: MAP(gx[i] += gy[i] * y[i]); break;
    case U_LOG: MAP(gx[i] += gy[i] / x[i]); break;
    case U_SCALE_SHIFT: MAP(gx[i] += gy[i] * a); break;
    case U_CLAMP: MAP(gx[i] += (x[i] >= a && x[i] <= b) ? gy[i] : 0); break;
    case U_RELU: MAP(gx[i] += x[i] > 0 ? gy[i] : 0); break;
    case U_RELU6: MAP(gx[i] += (x[i] > 0 && x[i] < 6) ? gy[i] : 0); break;
    case U_LEAKY_RELU: MAP(gx[i] += x[i] > 0 ? gy[i] : a * gy[i]); break;
    case U_SIGMOID: MAP(gx[i] += gy[i] * y[i] * (1.0f - y[i])); break;
    case U_TANH: MAP(gx[i] += gy[i] * (1.0f - y[i] * y[i])); break;
    /* d/dx x*s(x) = s + x*s*(1-s) */
    case U_SILU: MAP({ float s = sigmoidf(x[i]); gx[i] += gy[i] * s * (1.0f + x[i] * (1.0f - s)); }); break;
    /* For x <= 0, d/dx a*(e^x - 1) = a*e^x = y + a. */
    case U_ELU: MAP(gx[i] += x[i] > 0 ? gy[i] : gy[i] * (y[i] + a)); break;
    case U_ACOS: MAP(gx[i] -= gy[i] / sqrtf(1.0f - x[i] * x[i])); break;
    default: break;
    }
}

static const fu_op op_unary = {"unary", unary_forward, unary_backward, NULL};

static fu_tensor *unary(fu_graph *g, fu_tensor *x, int kind, float a, float b) {
    fu_node *n = x ? fu_node_new(g, &op_unary, &x, 1, x->ndim, x->shape)
                   : fu_node_new(g, &op_unary, &x, 1, 0, NULL);
    if (!n) return NULL;
    n->ip[0] = kind;
    n->fp[0] = a;
    n->fp[1] = b;
    return fu_node_run(n);
}

fu_tensor *fu_neg(fu_graph *g, fu_tensor *x) { return unary(g, x, U_NEG, 0, 0); }
fu_tensor *fu_abs(fu_graph *g, fu_tensor *x) { return unary(g, x, U_ABS, 0, 0); }
fu_tensor *fu_square(fu_graph *g, fu_tensor *x) { return unary(g, x, U_SQUARE, 0, 0); }
fu_tensor *fu_sqrt(fu_graph *g, fu_tensor *x) { return unary(g, x, U_SQRT, 0, 0); }
fu_tensor *fu_rsqrt(fu_graph *g, fu_tensor *x) { return unary(g, x, U_RSQRT, 0, 0); }
fu_tensor *fu_exp(fu_graph *g, fu_tensor *x) { return unary(g, x, U_EXP, 0, 0); }
fu_tensor *fu_log(fu_graph *g, fu_tensor *x) { return unary(g, x, U_LOG, 0, 0); }
fu_tensor *fu_relu(fu_graph *g, fu_tensor *x) { return unary(g, x, U_RELU, 0, 0); }
fu_tensor *fu_relu6(fu_graph *g, fu_tensor *x) { return unary(g, x, U_RELU6, 0, 0); }
fu_tensor *fu_sigmoid(fu_graph *g, fu_tensor *x) { return unary(g, x, U_SIGMOID, 0, 0); }
fu_tensor *fu_tanh(fu_graph *g, fu_tensor *x) { return unary(g, x, U_TANH, 0, 0); }
fu_tensor *fu_silu(fu_graph *g, fu_tensor *x) { return unary(g, x, U_SILU, 0, 0); }
fu_tensor *fu_acos(fu_graph *g, fu_tensor *x) { return unary(g, x, U_ACOS, 0, 0); }

fu_tensor *fu_scale_shift(fu_graph *g, fu_tensor *x, float scale, float shift) {
    if (!isfinite(scale) || !isfinite(shift))
        return fu_fail_null(FU_E_INPUT, "scale_shift: scale %g and shift %g must be finite", scale, shift);
    return unary(g, x, U_SCALE_SHIFT, scale, shift);
}

fu_tensor *fu_clamp(fu_graph *g, fu_tensor *x, float lo, float hi) {
    if (!(lo <= hi)) return fu_fail_null(FU_E_INPUT, "clamp: need lo <= hi, got lo %g hi %g", lo, hi);
    return unary(g, x, U_CLAMP, lo, hi);
}

fu_tensor *fu_leaky_relu(fu_graph *g, fu_tensor *x, float slope) {
    if (!isfinite(slope)) return fu_fail_null(FU_E_INPUT, "leaky_relu: slope %g must be finite", slope);
    return unary(g, x, U_LEAKY_RELU, slope, 0);
}

fu_tensor *fu_elu(fu_graph *g, fu_tensor *x, float alpha) {
    if (!isfinite(alpha)) return fu_fail_null(FU_E_INPUT, "elu: alpha %g must be finite", alpha);
    return unary(g, x, U_ELU, alpha, 0);
}

/* ---- PReLU: y = x > 0 ? x : alpha[c] * x, c = index along dim 1.
 * x is viewed as [outer = shape[0], C = shape[1], inner = product of the rest]; ip[0] = C,
 * ip[1] = inner, ip[2] = 1 when a single alpha is shared by all channels. */

static int prelu_forward(fu_node *n) {
    const float *x = n->in[0]->data, *alpha = n->in[1]->data;
    float *y = n->out->data;
    const int64_t C = n->ip[0], inner = n->ip[1], shared = n->ip[2];
    if (inner == 0) return FU_OK;
    const int64_t rows = n->out->numel / inner;
    #pragma omp parallel for schedule(static) if (n->out->numel > PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float a = alpha[shared ? 0 : r % C];
        const float *xr = x + r * inner;
        float *yr = y + r * inner;
        #pragma omp simd
        for (int64_t k = 0; k < inner; k++) yr[k] = xr[k] > 0 ? xr[k] : a * xr[k];
    }
    return FU_OK;
}

/* One row of the backward: gx += dy/dx * gy (when gx), and returns the row's dy/dalpha sum,
 * sum of gy * x where x <= 0, in double (these sums run over millions of elements). */
static double prelu_backward_row(const float *xr, const float *gr, float *gxr, float a, int64_t inner) {
    double s = 0;
    if (gxr) {
        #pragma omp simd reduction(+ : s)
        for (int64_t k = 0; k < inner; k++) {
            const int pos = xr[k] > 0;
            gxr[k] += pos ? gr[k] : a * gr[k];
            s += pos ? 0.0 : (double)gr[k] * xr[k];
        }
    } else {
        #pragma omp simd reduction(+ : s)
        for (int64_t k = 0; k < inner; k++) s += xr[k] > 0 ? 0.0 : (double)gr[k] * xr[k];
    }
    return s;
}

static void prelu_backward(fu_node *n) {
    const float *x = n->in[0]->data, *alpha = n->in[1]->data, *gy = n->out->grad;
    float *gx = fu_in_grad(n, 0), *ga = fu_in_grad(n, 1);
    const int64_t C = n->ip[0], inner = n->ip[1], shared = n->ip[2];
    if (inner == 0 || (!gx && !ga)) return;
    const int64_t rows = n->out->numel / inner;
    /* One pass over x and gy for both gradients. The rows of a slope are every C-th row; slopes
     * are independent, so they run in parallel. A single shared slope: rows run in parallel
     * when only gx is wanted; its sum runs on one thread, in row order (an OpenMP reduction
     * would add the threads' parts in any order, and resumed training must repeat bit for bit). */
    if (!shared) {
        #pragma omp parallel for schedule(static) if (C > 1 && n->out->numel > PAR_MIN)
        for (int64_t c = 0; c < C; c++) {
            double s = 0;
            for (int64_t r = c; r < rows; r += C)
                s += prelu_backward_row(x + r * inner, gy + r * inner, gx ? gx + r * inner : NULL, alpha[c], inner);
            if (ga) ga[c] += (float)s;
        }
        return;
    }
    if (!ga) {
        #pragma omp parallel for schedule(static) if (n->out->numel > PAR_MIN)
        for (int64_t r = 0; r < rows; r++) prelu_backward_row(x + r * inner, gy + r * inner, gx + r * inner, alpha[0], inner);
        return;
    }
    double s = 0;
    for (int64_t r = 0; r < rows; r++) s += prelu_backward_row(x + r * inner, gy + r * inner, gx ? gx + r * inner : NULL, alpha[0], inner);
    ga[0] += (float)s;
}

static const fu_op op_prelu = {"prelu", prelu_forward, prelu_backward, NULL};

fu_tensor *fu_prelu(fu_graph *g, fu_tensor *x, fu_tensor *alpha) {
    fu_tensor *in[2] = {x, alpha};
    if (!x || !alpha) return fu_node_run(fu_node_new(g, &op_prelu, in, 2, 0, NULL));
    char buf[96];
    if (x->ndim < 2)
        return fu_fail_null(FU_E_INPUT, "prelu: x must have at least 2 dims ([N,C,...]), got %s", fu_shape_str(x, buf, sizeof buf));
    const int64_t C = x->shape[1];
    if (alpha->numel != C && alpha->numel != 1)
        return fu_fail_null(FU_E_INPUT, "prelu: alpha has %lld elements, expected %lld (channels) or 1",
                            (long long)alpha->numel, (long long)C);
    fu_node *n = fu_node_new(g, &op_prelu, in, 2, x->ndim, x->shape);
    if (!n) return NULL;
    n->ip[0] = C;
    n->ip[1] = 1;
    for (int d = 2; d < x->ndim; d++) n->ip[1] *= x->shape[d];
    n->ip[2] = alpha->numel != C;  /* one slope for all channels */
    return fu_node_run(n);
}
