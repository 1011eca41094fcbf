/* Convolutions as im2col + GEMM (oneDNN sgemm), per image and per group.
 *
 * conv2d, x [N, C, H, W], w [O, C/G, kh, kw]:
 *   col[(c*kh + i)*kw + j, oy*OW + ox] = x[c, oy*sh - pt + i*dh, ox*sw - pl + j*dw]  (0 outside)
 *   y_g = W_g [O/G, C/G*kh*kw] @ col_g [C/G*kh*kw, OH*OW]
 *   backward: dcol_g = W_g^T @ dy_g, col2im adds dcol into dx;  dW_g += dy_g @ col_g^T.
 * conv_transpose2d is the adjoint of conv2d w.r.t. its input, so it swaps the two directions:
 *   forward = col2im(W_g^T @ x_g), backward to x = W_g @ im2col(dy), to W += x_g @ im2col(dy)^T.
 * Columns live in the graph's scratch buffer; one image-group at a time keeps it small. */
#include "ops.h"
#include "error.h"
#include <string.h>

typedef struct {
    int64_t C, H, W;              /* the "image" side (conv input / transposed-conv output) */
    int64_t OH, OW;               /* the "column" side (conv output / transposed-conv input) */
    int kh, kw, sh, sw, dh, dw, pt, pl;
} conv_geom;

static int64_t col_rows(const conv_geom *q) { return q->C * q->kh * q->kw; }

static void im2col(const conv_geom *q, const float *img, float *col) {
    int64_t rows = col_rows(q), npix = q->OH * q->OW;
    #pragma omp parallel for schedule(static) if (rows * npix > 32768)
    for (int64_t r = 0; r < rows; r++) {
        int64_t c = r / (q->kh * q->kw), i = (r / q->kw) % q->kh, j = r % q->kw;
        const float *src = img + c * q->H * q->W;
        float *dst = col + r * npix;
        for (int64_t oy = 0; oy < q->OH; oy++) {
            int64_t y = oy * q->sh - q->pt + i * q->dh;
            float *d = dst + oy * q->OW;
            if (y < 0 || y >= q->H) { memset(d, 0, (size_t)q->OW * sizeof(float)); continue; }
            for (int64_t ox = 0; ox < q->OW; ox++) {
                int64_t x = ox * q->sw - q->pl + j * q->dw;
                d[ox] = (x >= 0 && x < q->W) ? src[y * q->W + x] : 0;
            }
        }
    }
}

/* img += col2im(col). Parallel over channels: each channel's rows write only that channel. */
static void col2im_add(const conv_geom *q, const float *col, float *img) {
    int64_t npix = q->OH * q->OW, kk = (int64_t)q->kh * q->kw;
    #pragma omp parallel for schedule(static) if (q->C * kk * npix > 32768)
    for (int64_t c = 0; c < q->C; c++) {
        float *dst = img + c * q->H * q->W;
        for (int64_t r = c * kk; r < (c + 1) * kk; r++) {
            int64_t i = (r / q->kw) % q->kh, j = r % q->kw;
            const float *s = col + r * npix;
            for (int64_t oy = 0; oy < q->OH; oy++) {
                int64_t y = oy * q->sh - q->pt + i * q->dh;
                if (y < 0 || y >= q->H) continue;
                for (int64_t ox = 0; ox < q->OW; ox++) {
                    int64_t x = ox * q->sw - q->pl + j * q->dw;
                    if (x >= 0 && x < q->W) dst[y * q->W + x] += s[oy * q->OW + ox];
                }
            }
        }
    }
}

void fu_same_padding(int64_t in, int k, int stride, int dilation, int *pad_before, int *pad_after) {
    if (stride < 1) stride = 1;
    if (dilation < 1) dilation = 1;
    int64_t out = (in + stride - 1) / stride;
    int64_t total = (out - 1) * stride + (int64_t)(k - 1) * dilation + 1 - in;
    if (total < 0) total = 0;
    *pad_before = (int)(total / 2);
    *pad_after = (int)(total - total / 2);
}

/* Node parameters: ip[0..7] = kh, kw, sh, sw, dh, dw, pt, pl; ip[8] = groups;
 * ip[9..12] = N, C (image side channels), H, W; ip[13] unused; ip[14..16] = column side channels, OH, OW. */
static conv_geom node_geom(const fu_node *n) {
    const int64_t *p = n->ip;
    conv_geom q = {p[9 + 1] / p[8], p[11], p[12], p[15], p[16],
                   (int)p[0], (int)p[1], (int)p[2], (int)p[3], (int)p[4], (int)p[5], (int)p[6], (int)p[7]};
    return q;
}

static void add_bias(float *y, const float *b, int64_t N, int64_t C, int64_t hw) {
    #pragma omp parallel for collapse(2) schedule(static) if (N * C * hw > 65536)
    for (int64_t i = 0; i < N; i++)
        for (int64_t c = 0; c < C; c++) {
            float *p = y + (i * C + c) * hw;
            for (int64_t k = 0; k < hw; k++) p[k] += b[c];
        }
}

static void bias_grad(float *gb, const float *gy, int64_t N, int64_t C, int64_t hw) {
    for (int64_t c = 0; c < C; c++) {
        double s = 0;
        for (int64_t i = 0; i < N; i++) {
            const float *p = gy + (i * C + c) * hw;
            for (int64_t k = 0; k < hw; k++) s += p[k];
        }
        gb[c] += (float)s;
    }
}

/* ---- conv2d: in = x (image side), out = columns side ---- */

static int conv_forward(fu_node *n) {
    conv_geom q = node_geom(n);
    int64_t G = n->ip[8], N = n->ip[9], Og = n->ip[14] / G, K = col_rows(&q), npix = q.OH * q.OW;
    float *col = fu_graph_scratch(n->graph, (size_t)(K * npix) * sizeof(float));
    if (!col) return FU_E_INTERNAL;
    const float *x = n->in[0]->data, *w = n->in[1]->data;
    float *y = n->out->data;
    for (int64_t i = 0; i < N; i++)
        for (int64_t g = 0; g < G; g++) {
            im2col(&q, x + (i * G + g) * q.C * q.H * q.W, col);
            int rc = fu_sgemm('n', 'n', Og, npix, K, 1, w + g * Og * K, K, col, npix, 0, y + (i * G + g) * Og * npix, npix);
            if (rc != FU_OK) return rc;
        }
    if (n->n_in == 3) add_bias(y, n->in[2]->data, N, n->ip[14], npix);
    return FU_OK;
}

static void conv_backward(fu_node *n) {
    conv_geom q = node_geom(n);
    int64_t G = n->ip[8], N = n->ip[9], Og = n->ip[14] / G, K = col_rows(&q), npix = q.OH * q.OW;
    float *gx = fu_in_grad(n, 0), *gw = fu_in_grad(n, 1), *gb = n->n_in == 3 ? fu_in_grad(n, 2) : NULL;
    const float *x = n->in[0]->data, *w = n->in[1]->data, *gy = n->out->grad;
    if (gb) bias_grad(gb, gy, N, n->ip[14], npix);
    if (!gx && !gw) return;
    float *col = fu_graph_scratch(n->graph, (size_t)(K * npix) * sizeof(float));
    if (!col) return;
    for (int64_t i = 0; i < N; i++)
        for (int64_t g = 0; g < G; g++) {
            const float *gyg = gy + (i * G + g) * Og * npix;
            if (gw) {
                im2col(&q, x + (i * G + g) * q.C * q.H * q.W, col);
                fu_sgemm('n', 't', Og, K, npix, 1, gyg, npix, col, npix, 1, gw + g * Og * K, K);
            }
            if (gx) {
                fu_sgemm('t', 'n', K, npix, Og, 1, w + g * Og * K, K, gyg, npix, 0, col, npix);
                col2im_add(&q, col, gx + (i * G + g) * q.C * q.H * q.W);
            }
        }
}

static const fu_op op_conv2d = {"conv2d", conv_forward, conv_backward, NULL};

/* ---- conv_transpose2d: in = x (column side), out = image side ---- */

static int convt_forward(fu_node *n) {
    conv_geom q = node_geom(n);
    int64_t G = n->ip[8], N = n->ip[9], Ig = n->ip[14] / G, K = col_rows(&q), npix = q.OH * q.OW;
    float *col = fu_graph_scratch(n->graph, (size_t)(K * npix) * sizeof(float));
    if (!col) return FU_E_INTERNAL;
    const float *x = n->in[0]->data, *w = n->in[1]->data;
    float *y = n->out->data;
    memset(y, 0, (size_t)n->out->numel * sizeof(float));
    for (int64_t i = 0; i < N; i++)
        for (int64_t g = 0; g < G; g++) {
            int rc = fu_sgemm('t', 'n', K, npix, Ig, 1, w + g * Ig * K, K, x + (i * G + g) * Ig * npix, npix, 0, col, npix);
            if (rc != FU_OK) return rc;
            col2im_add(&q, col, y + (i * G + g) * q.C * q.H * q.W);
        }
    if (n->n_in == 3) add_bias(y, n->in[2]->data, N, q.C * G, q.H * q.W);
    return FU_OK;
}

static void convt_backward(fu_node *n) {
    conv_geom q = node_geom(n);
    int64_t G = n->ip[8], N = n->ip[9], Ig = n->ip[14] / G, K = col_rows(&q), npix = q.OH * q.OW;
    float *gx = fu_in_grad(n, 0), *gw = fu_in_grad(n, 1), *gb = n->n_in == 3 ? fu_in_grad(n, 2) : NULL;
    const float *x = n->in[0]->data, *w = n->in[1]->data, *gy = n->out->grad;
    if (gb) bias_grad(gb, gy, N, q.C * G, q.H * q.W);
    if (!gx && !gw) return;
    float *col = fu_graph_scratch(n->graph, (size_t)(K * npix) * sizeof(float));
    if (!col) return;
    for (int64_t i = 0; i < N; i++)
        for (int64_t g = 0; g < G; g++) {
            im2col(&q, gy + (i * G + g) * q.C * q.H * q.W, col);
            if (gx) fu_sgemm('n', 'n', Ig, npix, K, 1, w + g * Ig * K, K, col, npix, 1, gx + (i * G + g) * Ig * npix, npix);
            if (gw) fu_sgemm('n', 't', Ig, K, npix, 1, x + (i * G + g) * Ig * npix, npix, col, npix, 1, gw + g * Ig * K, K);
        }
}

static const fu_op op_conv_transpose2d = {"conv_transpose2d", convt_forward, convt_backward, NULL};

/* ---- constructors ---- */

typedef struct { int sh, sw, dh, dw, pt, pb, pl, pr, groups, oph, opw; } conv_args;

static int read_params(const char *op, const fu_conv_params *p, conv_args *a) {
    fu_conv_params d = {0};
    if (!p) p = &d;
    *a = (conv_args){p->stride_h ? p->stride_h : 1, p->stride_w ? p->stride_w : 1,
                     p->dilation_h ? p->dilation_h : 1, p->dilation_w ? p->dilation_w : 1,
                     p->pad_top, p->pad_bottom, p->pad_left, p->pad_right, p->groups ? p->groups : 1,
                     p->output_pad_h, p->output_pad_w};
    if (a->sh < 1 || a->sw < 1 || a->dh < 1 || a->dw < 1 || a->groups < 1 || a->sh > 4096 || a->sw > 4096 || a->dh > 4096 || a->dw > 4096)
        return fu_fail(FU_E_INPUT, "%s: strides, dilations and groups must be positive (and <= 4096)", op);
    if (a->pt < 0 || a->pb < 0 || a->pl < 0 || a->pr < 0 || a->pt > 65536 || a->pb > 65536 || a->pl > 65536 || a->pr > 65536)
        return fu_fail(FU_E_INPUT, "%s: paddings must be in [0, 65536]", op);
    return FU_OK;
}

static void set_node_params(fu_node *n, const fu_tensor *w, const conv_args *a, int64_t N, int64_t C, int64_t H, int64_t W,
                            int64_t O, int64_t OH, int64_t OW) {
    int64_t vals[17] = {w->shape[2], w->shape[3], a->sh, a->sw, a->dh, a->dw, a->pt, a->pl, a->groups, N, C, H, W, 0, O, OH, OW};
    memcpy(n->ip, vals, sizeof vals);
}

static int check_inputs(const char *op, fu_tensor *x, fu_tensor *w, fu_tensor *b, int64_t w_out) {
    char sx[96], sw[96];
    if (x->ndim != 4 || w->ndim != 4)
        return fu_fail(FU_E_INPUT, "%s: input %s and weight %s must be 4-d", op, fu_shape_str(x, sx, sizeof sx), fu_shape_str(w, sw, sizeof sw));
    if (b && b->numel != w_out) return fu_fail(FU_E_INPUT, "%s: bias has %lld elements, expected %lld", op, (long long)b->numel, (long long)w_out);
    return FU_OK;
}

fu_tensor *fu_conv2d(fu_graph *g, fu_tensor *x, fu_tensor *w, fu_tensor *b, const fu_conv_params *p) {
    fu_tensor *in[3] = {x, w, b};
    if (!x || !w) return fu_node_run(fu_node_new(g, &op_conv2d, in, 2, 0, NULL));
    conv_args a;
    if (read_params("conv2d", p, &a) != FU_OK || check_inputs("conv2d", x, w, b, w->shape[0]) != FU_OK) return NULL;
    int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3], O = w->shape[0];
    char sx[96], sw[96];
    if (C % a.groups || O % a.groups || w->shape[1] != C / a.groups)
        return fu_fail_null(FU_E_INPUT, "conv2d: input %s, weight %s and groups %d do not match", fu_shape_str(x, sx, sizeof sx), fu_shape_str(w, sw, sizeof sw), a.groups);
    int64_t eh = (w->shape[2] - 1) * a.dh + 1, ew = (w->shape[3] - 1) * a.dw + 1;
    int64_t OH = (H + a.pt + a.pb - eh) / a.sh + 1, OW = (W + a.pl + a.pr - ew) / a.sw + 1;
    if (H + a.pt + a.pb < eh || W + a.pl + a.pr < ew || w->shape[2] < 1 || w->shape[3] < 1)
        return fu_fail_null(FU_E_INPUT, "conv2d: kernel %s (dilated) is larger than the padded input %s", fu_shape_str(w, sw, sizeof sw), fu_shape_str(x, sx, sizeof sx));
    fu_node *n = fu_node_new(g, &op_conv2d, in, b ? 3 : 2, 4, (int64_t[]){N, O, OH, OW});
    if (!n) return NULL;
    set_node_params(n, w, &a, N, C, H, W, O, OH, OW);
    return fu_node_run(n);
}

fu_tensor *fu_conv_transpose2d(fu_graph *g, fu_tensor *x, fu_tensor *w, fu_tensor *b, const fu_conv_params *p) {
    fu_tensor *in[3] = {x, w, b};
    if (!x || !w) return fu_node_run(fu_node_new(g, &op_conv_transpose2d, in, 2, 0, NULL));
    conv_args a;
    if (read_params("conv_transpose2d", p, &a) != FU_OK || check_inputs("conv_transpose2d", x, w, NULL, 0) != FU_OK) return NULL;
    int64_t N = x->shape[0], I = x->shape[1], H = x->shape[2], W = x->shape[3], O = w->shape[1] * a.groups;
    char sx[96], sw[96];
    if (w->shape[0] != I || I % a.groups)
        return fu_fail_null(FU_E_INPUT, "conv_transpose2d: input %s, weight %s (expected [Cin, Cout/groups, kh, kw]) and groups %d do not match", fu_shape_str(x, sx, sizeof sx), fu_shape_str(w, sw, sizeof sw), a.groups);
    if (b && b->numel != O) return fu_fail_null(FU_E_INPUT, "conv_transpose2d: bias has %lld elements, expected %lld", (long long)b->numel, (long long)O);
    if (a.oph < 0 || a.opw < 0 || (a.oph >= a.sh && a.oph >= a.dh) || (a.opw >= a.sw && a.opw >= a.dw))
        return fu_fail_null(FU_E_INPUT, "conv_transpose2d: output padding must be smaller than the stride or the dilation");
    int64_t OH = (H - 1) * a.sh - a.pt - a.pb + (w->shape[2] - 1) * a.dh + a.oph + 1;
    int64_t OW = (W - 1) * a.sw - a.pl - a.pr + (w->shape[3] - 1) * a.dw + a.opw + 1;
    if (OH < 1 || OW < 1 || w->shape[2] < 1 || w->shape[3] < 1)
        return fu_fail_null(FU_E_INPUT, "conv_transpose2d: paddings leave an empty output for input %s", fu_shape_str(x, sx, sizeof sx));
    fu_node *n = fu_node_new(g, &op_conv_transpose2d, in, b ? 3 : 2, 4, (int64_t[]){N, O, OH, OW});
    if (!n) return NULL;
    /* Image side = the output (OH, OW); column side = the input (H, W). */
    set_node_params(n, w, &a, N, O, OH, OW, I, H, W);
    return fu_node_run(n);
}
