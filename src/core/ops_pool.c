/* 2-D max and average pooling on NCHW, plain loops (memory-bound; parallel over planes).
 * Max pooling treats padding as -infinity and sends the gradient to the first maximum of each
 * window (its flat index is saved in forward). Average pooling divides by the full window
 * (count_include_pad) or by the number of cells inside the input. */
#include "ops.h"
#include "error.h"
#include <float.h>
#include <stdint.h>
#include <string.h>

/* A pooling node's parameters (in fu_node.params): kernel, stride, padding before, input and
 * output sizes. */
typedef struct { int64_t kh, kw, sh, sw, pt, pl, include_pad, H, W, OH, OW; } pool_geom;
_Static_assert(sizeof(pool_geom) <= FU_NODE_PARAM_BYTES, "pool_geom does not fit in a node");

static pool_geom geom(const fu_node *n) { return *FU_NODE_PARAMS(n, pool_geom); }

static int64_t planes(const fu_node *n) { return n->in[0]->shape[0] * n->in[0]->shape[1]; }

static int maxpool_forward(fu_node *n) {
    pool_geom q = geom(n);
    int32_t *arg = fu_node_saved(n, (size_t)n->out->numel * sizeof(int32_t));
    if (!arg) return FU_E_INTERNAL;
    int64_t P = planes(n);
    #pragma omp parallel for schedule(static) if (n->out->numel > 16384)
    for (int64_t p = 0; p < P; p++) {
        const float *x = n->in[0]->data + p * q.H * q.W;
        float *y = n->out->data + p * q.OH * q.OW;
        int32_t *a = arg + p * q.OH * q.OW;
        for (int64_t oy = 0; oy < q.OH; oy++)
            for (int64_t ox = 0; ox < q.OW; ox++) {
                float best = -FLT_MAX;
                int32_t bi = -1;
                for (int64_t i = 0; i < q.kh; i++) {
                    int64_t yy = oy * q.sh - q.pt + i;
                    if (yy < 0 || yy >= q.H) continue;
                    for (int64_t j = 0; j < q.kw; j++) {
                        int64_t xx = ox * q.sw - q.pl + j;
                        if (xx >= 0 && xx < q.W && (bi < 0 || x[yy * q.W + xx] > best)) {
                            best = x[yy * q.W + xx];
                            bi = (int32_t)(yy * q.W + xx);
                        }
                    }
                }
                y[oy * q.OW + ox] = bi < 0 ? 0 : best;
                a[oy * q.OW + ox] = bi;
            }
    }
    return FU_OK;
}

static void maxpool_backward(fu_node *n) {
    pool_geom q = geom(n);
    const int32_t *arg = n->saved;
    float *gx = fu_in_grad(n, 0);
    int64_t P = planes(n), opix = q.OH * q.OW;
    #pragma omp parallel for schedule(static) if (n->out->numel > 16384)
    for (int64_t p = 0; p < P; p++)
        for (int64_t k = 0; k < opix; k++)
            if (arg[p * opix + k] >= 0) gx[p * q.H * q.W + arg[p * opix + k]] += n->out->grad[p * opix + k];
}

/* Window [y0, y1) x [x0, x1) clipped to the input, and its divisor. */
static float avg_window(const pool_geom *q, int64_t oy, int64_t ox, int64_t *y0, int64_t *y1, int64_t *x0, int64_t *x1) {
    int64_t ys = oy * q->sh - q->pt, xs = ox * q->sw - q->pl;
    *y0 = ys < 0 ? 0 : ys;
    *x0 = xs < 0 ? 0 : xs;
    *y1 = ys + q->kh > q->H ? q->H : ys + q->kh;
    *x1 = xs + q->kw > q->W ? q->W : xs + q->kw;
    int64_t count = q->include_pad ? q->kh * q->kw : (*y1 - *y0) * (*x1 - *x0);
    return count > 0 ? 1.0f / (float)count : 0;
}

static int avgpool_forward(fu_node *n) {
    pool_geom q = geom(n);
    int64_t P = planes(n);
    #pragma omp parallel for schedule(static) if (n->out->numel > 16384)
    for (int64_t p = 0; p < P; p++) {
        const float *x = n->in[0]->data + p * q.H * q.W;
        float *y = n->out->data + p * q.OH * q.OW;
        for (int64_t oy = 0; oy < q.OH; oy++)
            for (int64_t ox = 0; ox < q.OW; ox++) {
                int64_t y0, y1, x0, x1;
                float inv = avg_window(&q, oy, ox, &y0, &y1, &x0, &x1), s = 0;
                for (int64_t yy = y0; yy < y1; yy++)
                    for (int64_t xx = x0; xx < x1; xx++) s += x[yy * q.W + xx];
                y[oy * q.OW + ox] = s * inv;
            }
    }
    return FU_OK;
}

static void avgpool_backward(fu_node *n) {
    pool_geom q = geom(n);
    float *gx = fu_in_grad(n, 0);
    int64_t P = planes(n);
    #pragma omp parallel for schedule(static) if (n->out->numel > 16384)
    for (int64_t p = 0; p < P; p++) {
        float *g = gx + p * q.H * q.W;
        const float *gy = n->out->grad + p * q.OH * q.OW;
        for (int64_t oy = 0; oy < q.OH; oy++)
            for (int64_t ox = 0; ox < q.OW; ox++) {
                int64_t y0, y1, x0, x1;
                float d = gy[oy * q.OW + ox] * avg_window(&q, oy, ox, &y0, &y1, &x0, &x1);
                for (int64_t yy = y0; yy < y1; yy++)
                    for (int64_t xx = x0; xx < x1; xx++) g[yy * q.W + xx] += d;
            }
    }
}

static const fu_op op_maxpool = {"max_pool2d", maxpool_forward, maxpool_backward, NULL};
static const fu_op op_avgpool = {"avg_pool2d", avgpool_forward, avgpool_backward, NULL};

static fu_tensor *pool(fu_graph *g, fu_tensor *x, const fu_pool_params *p, const fu_op *op) {
    if (!x) return fu_node_run(fu_node_new(g, op, &x, 1, 0, NULL));
    if (!p) return fu_fail_null(FU_E_INPUT, "%s: NULL parameters", op->name);
    if (!fu_check_ndim(op->name, x, 4)) return NULL;
    int64_t kh = p->kernel_h, kw = p->kernel_w, sh = p->stride_h ? p->stride_h : kh, sw = p->stride_w ? p->stride_w : kw;
    if (kh < 1 || kw < 1 || sh < 1 || sw < 1 || kh > 65536 || kw > 65536 || p->pad_top < 0 || p->pad_bottom < 0 || p->pad_left < 0 || p->pad_right < 0 ||
        p->pad_top >= kh || p->pad_bottom >= kh || p->pad_left >= kw || p->pad_right >= kw)
        return fu_fail_null(FU_E_INPUT, "%s: kernel and stride must be positive and padding smaller than the kernel", op->name);
    int64_t H = x->shape[2], W = x->shape[3];
    if (H + p->pad_top + p->pad_bottom < kh || W + p->pad_left + p->pad_right < kw)
        return fu_fail_null(FU_E_INPUT, "%s: kernel %lldx%lld is larger than the padded input", op->name, (long long)kh, (long long)kw);
    int64_t OH = (H + p->pad_top + p->pad_bottom - kh) / sh + 1, OW = (W + p->pad_left + p->pad_right - kw) / sw + 1;
    if (H * W > INT32_MAX) return fu_fail_null(FU_E_INPUT, "%s: plane too large", op->name);
    fu_node *n = fu_node_new(g, op, &x, 1, 4, (int64_t[]){x->shape[0], x->shape[1], OH, OW});
    if (!n) return NULL;
    pool_geom q = {kh, kw, sh, sw, p->pad_top, p->pad_left, p->count_include_pad != 0, H, W, OH, OW};
    memcpy(n->params, &q, sizeof q);
    return fu_node_run(n);
}

fu_tensor *fu_max_pool2d(fu_graph *g, fu_tensor *x, const fu_pool_params *p) { return pool(g, x, p, &op_maxpool); }
fu_tensor *fu_avg_pool2d(fu_graph *g, fu_tensor *x, const fu_pool_params *p) { return pool(g, x, p, &op_avgpool); }
