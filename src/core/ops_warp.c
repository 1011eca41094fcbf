/* Affine warp with bilinear sampling (differentiable face alignment).
 *
 * x [N, C, H, W], theta [N, 2, 3] row-major (t0 t1 t2 / t3 t4 t5), output [N, C, oh, ow].
 * Output pixel (row v, column u), u = 0..ow-1, v = 0..oh-1, samples x at
 *     X = t0*u + t1*v + t2 (column),  Y = t3*u + t4*v + t5 (row),
 * both in input pixel-index units (X = 2 means the centre of column 2). With
 * x0 = floor(X), fx = X - x0 (likewise y0, fy) the output is
 *     (1-fx)(1-fy) p(y0,x0) + fx(1-fy) p(y0,x0+1) + (1-fx)fy p(y0+1,x0) + fx fy p(y0+1,x0+1),
 * where p is 0 outside the image (so the image fades linearly to 0 over the last pixel).
 * Gradients: to x, the same weights (scattered); to theta through dOut/dX and dOut/dY, which
 * are piecewise constant in X and Y (the sampler is piecewise bilinear, with kinks where X or
 * Y crosses an integer). */
#include "ops.h"
#include "error.h"
#include "rng.h"
#include <math.h>
#include <string.h>

typedef struct { int64_t x0, y0; float fx, fy; } sample_pos;

static sample_pos sample_position(const float *t, int64_t u, int64_t v, int64_t H, int64_t W) {
    double X = (double)t[0] * (double)u + (double)t[1] * (double)v + t[2];
    double Y = (double)t[3] * (double)u + (double)t[4] * (double)v + t[5];
    /* Beyond one pixel outside every corner reads 0: clamping there changes neither the value
     * nor the gradient, and keeps floor() in range (also for NaN). */
    if (!(X > -2)) X = -2;
    if (!(X < (double)W + 1)) X = (double)W + 1;
    if (!(Y > -2)) Y = -2;
    if (!(Y < (double)H + 1)) Y = (double)H + 1;
    double fx = floor(X), fy = floor(Y);
    return (sample_pos){(int64_t)fx, (int64_t)fy, (float)(X - fx), (float)(Y - fy)};
}

static float pixel(const float *plane, int64_t H, int64_t W, int64_t y, int64_t x) {
    return (y >= 0 && y < H && x >= 0 && x < W) ? plane[y * W + x] : 0.0f;
}

static int affine_warp_forward(fu_node *n) {
    const fu_tensor *x = n->in[0];
    const float *theta = n->in[1]->data;
    int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    int64_t oh = n->out->shape[2], ow = n->out->shape[3];
    #pragma omp parallel for collapse(2) schedule(static) if (n->out->numel > 16384)
    for (int64_t b = 0; b < N; b++)
        for (int64_t v = 0; v < oh; v++)
            for (int64_t u = 0; u < ow; u++) {
                sample_pos s = sample_position(theta + 6 * b, u, v, H, W);
                for (int64_t c = 0; c < C; c++) {
                    const float *p = x->data + (b * C + c) * H * W;
                    float top = (1 - s.fx) * pixel(p, H, W, s.y0, s.x0) + s.fx * pixel(p, H, W, s.y0, s.x0 + 1);
                    float bottom = (1 - s.fx) * pixel(p, H, W, s.y0 + 1, s.x0) + s.fx * pixel(p, H, W, s.y0 + 1, s.x0 + 1);
                    n->out->data[((b * C + c) * oh + v) * ow + u] = (1 - s.fy) * top + s.fy * bottom;
                }
            }
    return FU_OK;
}

static void add_pixel(float *plane, int64_t H, int64_t W, int64_t y, int64_t x, float g) {
    if (y >= 0 && y < H && x >= 0 && x < W) plane[y * W + x] += g;
}

/* Each (b, c) plane scatters into its own gradient plane: parallel over planes. */
static void warp_backward_x(fu_node *n, float *gx) {
    const fu_tensor *x = n->in[0];
    const float *theta = n->in[1]->data, *gy = n->out->grad;
    int64_t C = x->shape[1], H = x->shape[2], W = x->shape[3];
    int64_t oh = n->out->shape[2], ow = n->out->shape[3], planes = x->shape[0] * C;
    #pragma omp parallel for schedule(static) if (n->out->numel > 16384 && planes > 1)
    for (int64_t bc = 0; bc < planes; bc++) {
        float *gp = gx + bc * H * W;
        const float *gyp = gy + bc * oh * ow;
        for (int64_t v = 0; v < oh; v++)
            for (int64_t u = 0; u < ow; u++) {
                sample_pos s = sample_position(theta + 6 * (bc / C), u, v, H, W);
                float g = gyp[v * ow + u];
                add_pixel(gp, H, W, s.y0, s.x0, g * (1 - s.fx) * (1 - s.fy));
                add_pixel(gp, H, W, s.y0, s.x0 + 1, g * s.fx * (1 - s.fy));
                add_pixel(gp, H, W, s.y0 + 1, s.x0, g * (1 - s.fx) * s.fy);
                add_pixel(gp, H, W, s.y0 + 1, s.x0 + 1, g * s.fx * s.fy);
            }
    }
}

/* dOut/dX = (1-fy)(p01 - p00) + fy(p11 - p10), dOut/dY = (1-fx)(p10 - p00) + fx(p11 - p01)
 * (pYX); X and Y are linear in theta with coefficients (u, v, 1). */
static void warp_backward_theta(fu_node *n, float *gtheta) {
    const fu_tensor *x = n->in[0];
    const float *theta = n->in[1]->data, *gy = n->out->grad;
    int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    int64_t oh = n->out->shape[2], ow = n->out->shape[3];
    for (int64_t b = 0; b < N; b++) {
        double g0 = 0, g1 = 0, g2 = 0, g3 = 0, g4 = 0, g5 = 0;
        #pragma omp parallel for schedule(static) reduction(+ : g0, g1, g2, g3, g4, g5) if (oh * ow * C > 16384)
        for (int64_t v = 0; v < oh; v++)
            for (int64_t u = 0; u < ow; u++) {
                sample_pos s = sample_position(theta + 6 * b, u, v, H, W);
                double dX = 0, dY = 0;
                for (int64_t c = 0; c < C; c++) {
                    const float *p = x->data + (b * C + c) * H * W;
                    float p00 = pixel(p, H, W, s.y0, s.x0), p01 = pixel(p, H, W, s.y0, s.x0 + 1);
                    float p10 = pixel(p, H, W, s.y0 + 1, s.x0), p11 = pixel(p, H, W, s.y0 + 1, s.x0 + 1);
                    float g = gy[((b * C + c) * oh + v) * ow + u];
                    dX += g * ((1 - s.fy) * (p01 - p00) + s.fy * (p11 - p10));
                    dY += g * ((1 - s.fx) * (p10 - p00) + s.fx * (p11 - p01));
                }
                g0 += dX * (double)u; g1 += dX * (double)v; g2 += dX;
                g3 += dY * (double)u; g4 += dY * (double)v; g5 += dY;
            }
        float *gt = gtheta + 6 * b;
        gt[0] += (float)g0; gt[1] += (float)g1; gt[2] += (float)g2;
        gt[3] += (float)g3; gt[4] += (float)g4; gt[5] += (float)g5;
    }
}

static void affine_warp_backward(fu_node *n) {
    float *gx = fu_in_grad(n, 0), *gtheta = fu_in_grad(n, 1);
    if (gx) warp_backward_x(n, gx);
    if (gtheta) warp_backward_theta(n, gtheta);
}

static const fu_op op_affine_warp = {"affine_warp", affine_warp_forward, affine_warp_backward, NULL};

fu_tensor *fu_affine_warp(fu_graph *g, fu_tensor *x, fu_tensor *theta, int64_t oh, int64_t ow) {
    if (!x || !theta) return fu_node_run(fu_node_new(g, &op_affine_warp, (fu_tensor *[]){x, theta}, 2, 0, NULL));
    if (!fu_check_ndim("affine_warp", x, 4) || !fu_check_ndim("affine_warp", theta, 3)) return NULL;
    char bx[96], bt[96];
    if (theta->shape[0] != x->shape[0] || theta->shape[1] != 2 || theta->shape[2] != 3)
        return fu_fail_null(FU_E_INPUT, "affine_warp: theta must be [N,2,3] for x %s, got %s",
                            fu_shape_str(x, bx, sizeof bx), fu_shape_str(theta, bt, sizeof bt));
    if (x->numel == 0) return fu_fail_null(FU_E_INPUT, "affine_warp: empty input %s", fu_shape_str(x, bx, sizeof bx));
    int64_t shape[4] = {x->shape[0], x->shape[1], oh, ow};
    if (oh < 1 || ow < 1 || fu_shape_numel(4, shape) < 0)
        return fu_fail_null(FU_E_INPUT, "affine_warp: bad output size %lldx%lld", (long long)oh, (long long)ow);
    fu_node *n = fu_node_new(g, &op_affine_warp, (fu_tensor *[]){x, theta}, 2, 4, shape);
    return fu_node_run(n);
}

/* ---- random similarity jitter of a warp -------------------------------------------------
 * theta [N, 2, 3] maps output pixels (u, v) to input pixels. The jittered warp first moves the
 * output pixel by a random similarity J about the output's centre c = ((ow-1)/2, (oh-1)/2):
 *     p' = c + s R F (p - c) + t,
 * s = exp(a U), R a rotation by a U radians, t = a ow (U, U) pixels (U uniform in [-1, 1], drawn
 * per row), F a left-right mirror with probability 1/2 when flips are on; then applies theta:
 * out = theta J (2x3 times 3x3). Drawn on every forward from g->seed and the node's position, so
 * a re-run with the same seed reproduces it (the search changes the seed every step).
 * Linear in theta for a fixed J: d theta[r][k] = sum_c d out[r][c] J[k][c].
 * saved: J's two top rows per batch row. */

/* A warp_jitter node's parameters (in fu_node.params). */
typedef struct {
    int64_t position;    /* the node's index in the graph: with g->seed, the draws' seed */
    int64_t ow, oh;      /* output size of the warp theta is for */
    float amount;        /* a */
    int flips;
} jitter_params;
_Static_assert(sizeof(jitter_params) <= FU_NODE_PARAM_BYTES, "jitter_params does not fit in a node");

static void draw_jitter(fu_rng *r, float a, int flips, double cx, double cy, double side, double J[6]) {
    double s = exp(a * (2 * fu_rng_uniform(r) - 1)), angle = a * (2 * fu_rng_uniform(r) - 1);
    double tx = a * side * (2 * fu_rng_uniform(r) - 1), ty = a * side * (2 * fu_rng_uniform(r) - 1);
    double m = flips && fu_rng_uniform(r) < 0.5f ? -1 : 1;
    double c = s * cos(angle), sn = s * sin(angle);
    /* [c -sn; sn c] diag(m, 1): columns scaled by the mirror */
    J[0] = c * m; J[1] = -sn; J[3] = sn * m; J[4] = c;
    J[2] = cx + tx - J[0] * cx - J[1] * cy;
    J[5] = cy + ty - J[3] * cx - J[4] * cy;
}

static int warp_jitter_forward(fu_node *n) {
    int64_t N = n->out->shape[0];
    double *J = fu_node_saved(n, (size_t)N * 6 * sizeof(double));
    if (!J) return FU_E_INTERNAL;
    const jitter_params *p = FU_NODE_PARAMS(n, jitter_params);
    fu_rng r;
    fu_rng_seed(&r, n->graph->seed ^ (0x9e3779b97f4a7c15ull * (uint64_t)(p->position + 1)));
    double cx = ((double)p->ow - 1) / 2, cy = ((double)p->oh - 1) / 2;
    for (int64_t b = 0; b < N; b++) {
        const float *t = n->in[0]->data + 6 * b;
        float *o = n->out->data + 6 * b;
        double *j = J + 6 * b;
        draw_jitter(&r, p->amount, p->flips, cx, cy, (double)p->ow, j);
        for (int row = 0; row < 2; row++) {
            const float *tr = t + 3 * row;
            o[3 * row + 0] = (float)(tr[0] * j[0] + tr[1] * j[3]);
            o[3 * row + 1] = (float)(tr[0] * j[1] + tr[1] * j[4]);
            o[3 * row + 2] = (float)(tr[0] * j[2] + tr[1] * j[5] + tr[2]);
        }
    }
    return FU_OK;
}

static void warp_jitter_backward(fu_node *n) {
    float *gt = fu_in_grad(n, 0);
    if (!gt) return;
    const double *J = n->saved;
    const float *go = n->out->grad;
    for (int64_t b = 0; b < n->out->shape[0]; b++) {
        const double *j = J + 6 * b;
        for (int row = 0; row < 2; row++) {
            const float *g = go + 6 * b + 3 * row;
            float *d = gt + 6 * b + 3 * row;
            d[0] += (float)(g[0] * j[0] + g[1] * j[1] + g[2] * j[2]);
            d[1] += (float)(g[0] * j[3] + g[1] * j[4] + g[2] * j[5]);
            d[2] += g[2];
        }
    }
}

static const fu_op op_warp_jitter = {"warp_jitter", warp_jitter_forward, warp_jitter_backward, NULL};

fu_tensor *fu_warp_jitter(fu_graph *g, fu_tensor *theta, float amount, int flips, int64_t oh, int64_t ow) {
    if (!theta) return fu_node_run(fu_node_new(g, &op_warp_jitter, &theta, 1, 0, NULL));
    if (!fu_check_ndim("warp_jitter", theta, 3)) return NULL;
    if (theta->shape[1] != 2 || theta->shape[2] != 3)
        return fu_fail_null(FU_E_INPUT, "warp_jitter: theta must be [N,2,3]");
    if (!(amount >= 0 && amount <= 0.5f))
        return fu_fail_null(FU_E_INPUT, "warp_jitter: amount must be in [0, 0.5], got %g", (double)amount);
    if (oh < 1 || ow < 1) return fu_fail_null(FU_E_INPUT, "warp_jitter: bad output size %lldx%lld", (long long)oh, (long long)ow);
    fu_node *n = fu_node_new(g, &op_warp_jitter, &theta, 1, 3, theta->shape);
    if (!n) return NULL;
    jitter_params p = {g->n_nodes - 1, ow, oh, amount, flips != 0};
    memcpy(n->params, &p, sizeof p);
    return fu_node_run(n);
}
