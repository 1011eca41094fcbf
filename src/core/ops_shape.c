/* Layout ops: reshape, transpose, concat, slice, pad, upsample_nearest.
 *
 * Transpose, concat and slice are all "copy a box of elements between two strided layouts":
 * a box shape, and for source and destination an offset plus one stride per box dimension.
 * strided_copy() does that (rows over all but the last box dimension, a plain inner loop over
 * the last), assigning in forward and adding in backward. Every element of a box maps to a
 * distinct destination element, so rows can run in parallel in both directions. */
#include "ops.h"
#include "error.h"
#include <string.h>

enum { PAR_MIN = 32768 };

typedef struct { int64_t offset, stride[FU_MAX_DIMS]; } layout;

/* Row-major contiguous strides of a shape. */
static void contiguous_strides(int nd, const int64_t *shape, int64_t *stride) {
    int64_t s = 1;
    for (int d = nd - 1; d >= 0; d--) { stride[d] = s; s *= shape[d]; }
}

static layout contiguous_layout(const fu_tensor *t) {
    layout l = {0, {0}};
    contiguous_strides(t->ndim, t->shape, l.stride);
    return l;
}

/* dst[box i] = src[box i] (or += when accumulate) for every index i of the box. */
static void strided_copy(int nd, const int64_t *box, float *dst, const layout *dl,
                         const float *src, const layout *sl, int accumulate) {
    if (nd == 0) {  /* a single element */
        dst[dl->offset] = accumulate ? dst[dl->offset] + src[sl->offset] : src[sl->offset];
        return;
    }
    int64_t rows = 1, total;
    for (int d = 0; d < nd - 1; d++) rows *= box[d];
    const int64_t len = box[nd - 1], ds = dl->stride[nd - 1], ss = sl->stride[nd - 1];
    total = rows * len;
    if (total == 0) return;
    #pragma omp parallel for schedule(static) if (total > PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        int64_t di = dl->offset, si = sl->offset, rem = r;
        for (int d = nd - 2; d >= 0; d--) {
            int64_t idx = rem % box[d];
            rem /= box[d];
            di += idx * dl->stride[d];
            si += idx * sl->stride[d];
        }
        float *dr = dst + di;
        const float *sr = src + si;
        if (accumulate) for (int64_t j = 0; j < len; j++) dr[j * ds] += sr[j * ss];
        else for (int64_t j = 0; j < len; j++) dr[j * ds] = sr[j * ss];
    }
}

static int normalize_axis(const char *op, int axis, int ndim) {
    if (axis < -ndim || axis >= ndim) {
        fu_fail(FU_E_INPUT, "%s: axis %d out of range for %d dims", op, axis, ndim);
        return -1;
    }
    return axis < 0 ? axis + ndim : axis;
}

/* ---- reshape: same data, new shape. */

static int reshape_forward(fu_node *n) {
    memcpy(n->out->data, n->in[0]->data, (size_t)n->out->numel * sizeof(float));
    return FU_OK;
}

static void reshape_backward(fu_node *n) {
    float *gx = fu_in_grad(n, 0);
    if (!gx) return;
    const float *gy = n->out->grad;
    const int64_t N = n->out->numel;
    #pragma omp parallel for schedule(static) if (N > PAR_MIN)
    for (int64_t i = 0; i < N; i++) gx[i] += gy[i];
}

static const fu_op op_reshape = {"reshape", reshape_forward, reshape_backward, NULL};

fu_tensor *fu_reshape(fu_graph *g, fu_tensor *x, int ndim, const int64_t *shape) {
    if (!x) return fu_node_run(fu_node_new(g, &op_reshape, &x, 1, 0, NULL));
    if (ndim < 0 || ndim > FU_MAX_DIMS || (ndim > 0 && !shape))
        return fu_fail_null(FU_E_INPUT, "reshape: bad target (%d dims)", ndim);
    int64_t out[FU_MAX_DIMS], known = 1;
    int infer = -1;
    for (int d = 0; d < ndim; d++) {
        out[d] = shape[d];
        if (shape[d] == -1) {
            if (infer >= 0) return fu_fail_null(FU_E_INPUT, "reshape: more than one -1 in the target shape");
            infer = d;
        } else if (shape[d] < 0) {
            return fu_fail_null(FU_E_INPUT, "reshape: negative dimension %lld", (long long)shape[d]);
        } else {
            if (shape[d] && known > FU_MAX_NUMEL / shape[d])
                return fu_fail_null(FU_E_INPUT, "reshape: target shape too large");
            known *= shape[d];
        }
    }
    char buf[96];
    if (infer >= 0) {
        if (known == 0 || x->numel % known)
            return fu_fail_null(FU_E_INPUT, "reshape: cannot infer the -1 dimension for %s", fu_shape_str(x, buf, sizeof buf));
        out[infer] = x->numel / known;
        known = x->numel;
    }
    if (known != x->numel)
        return fu_fail_null(FU_E_INPUT, "reshape: %s has %lld elements, the target shape %lld",
                            fu_shape_str(x, buf, sizeof buf), (long long)x->numel, (long long)known);
    return fu_node_run(fu_node_new(g, &op_reshape, &x, 1, ndim, out));
}

/* ---- transpose: out.shape[i] = x.shape[perm[i]]; ip[0..ndim) = perm.
 * The input, seen through the output's index order, has strides x.stride[perm[i]]. */

static layout permuted_input_layout(const fu_node *n) {
    const fu_tensor *x = n->in[0];
    int64_t xs[FU_MAX_DIMS];
    contiguous_strides(x->ndim, x->shape, xs);
    layout l = {0, {0}};
    for (int i = 0; i < x->ndim; i++) l.stride[i] = xs[n->ip[i]];
    return l;
}

static int transpose_forward(fu_node *n) {
    layout src = permuted_input_layout(n), dst = contiguous_layout(n->out);
    strided_copy(n->out->ndim, n->out->shape, n->out->data, &dst, n->in[0]->data, &src, 0);
    return FU_OK;
}

static void transpose_backward(fu_node *n) {
    float *gx = fu_in_grad(n, 0);
    if (!gx) return;
    layout xl = permuted_input_layout(n), yl = contiguous_layout(n->out);
    strided_copy(n->out->ndim, n->out->shape, gx, &xl, n->out->grad, &yl, 1);
}

static const fu_op op_transpose = {"transpose", transpose_forward, transpose_backward, NULL};

fu_tensor *fu_transpose(fu_graph *g, fu_tensor *x, const int *perm) {
    if (!x) return fu_node_run(fu_node_new(g, &op_transpose, &x, 1, 0, NULL));
    if (x->ndim > 0 && !perm) return fu_fail_null(FU_E_INPUT, "transpose: NULL perm");
    int64_t shape[FU_MAX_DIMS];
    int seen[FU_MAX_DIMS] = {0};
    for (int i = 0; i < x->ndim; i++) {
        if (perm[i] < 0 || perm[i] >= x->ndim || seen[perm[i]]++)
            return fu_fail_null(FU_E_INPUT, "transpose: perm is not a permutation of 0..%d (entry %d is %d)", x->ndim - 1, i, perm[i]);
        shape[i] = x->shape[perm[i]];
    }
    fu_node *n = fu_node_new(g, &op_transpose, &x, 1, x->ndim, shape);
    if (!n) return NULL;
    for (int i = 0; i < x->ndim; i++) n->ip[i] = perm[i];
    return fu_node_run(n);
}

/* ---- concat along ip[0]: input k fills the box of the output starting at the sum of the
 * earlier inputs' sizes along the axis. */

static layout concat_region(const fu_node *n, int k) {
    layout l = contiguous_layout(n->out);
    const int axis = (int)n->ip[0];
    for (int i = 0; i < k; i++) l.offset += n->in[i]->shape[axis] * l.stride[axis];
    return l;
}

static int concat_forward(fu_node *n) {
    for (int k = 0; k < n->n_in; k++) {
        const fu_tensor *x = n->in[k];
        layout dst = concat_region(n, k), src = contiguous_layout(x);
        strided_copy(x->ndim, x->shape, n->out->data, &dst, x->data, &src, 0);
    }
    return FU_OK;
}

static void concat_backward(fu_node *n) {
    for (int k = 0; k < n->n_in; k++) {
        float *gx = fu_in_grad(n, k);
        if (!gx) continue;
        const fu_tensor *x = n->in[k];
        layout yl = concat_region(n, k), xl = contiguous_layout(x);
        strided_copy(x->ndim, x->shape, gx, &xl, n->out->grad, &yl, 1);
    }
}

static const fu_op op_concat = {"concat", concat_forward, concat_backward, NULL};

fu_tensor *fu_concat(fu_graph *g, fu_tensor *const *xs, int n, int axis) {
    if (n < 1 || n > FU_MAX_INPUTS || !xs)
        return fu_fail_null(FU_E_INPUT, "concat: %d inputs (1..%d allowed)", n, FU_MAX_INPUTS);
    for (int k = 0; k < n; k++)
        if (!xs[k]) return fu_node_run(fu_node_new(g, &op_concat, xs, n, 0, NULL));
    const fu_tensor *x0 = xs[0];
    int ax = normalize_axis("concat", axis, x0->ndim);
    if (ax < 0) return NULL;
    int64_t shape[FU_MAX_DIMS];
    memcpy(shape, x0->shape, sizeof shape);
    for (int k = 1; k < n; k++) {
        int same = xs[k]->ndim == x0->ndim;
        for (int d = 0; same && d < x0->ndim; d++) same = d == ax || xs[k]->shape[d] == x0->shape[d];
        if (!same) {
            char a[96], b[96];
            return fu_fail_null(FU_E_INPUT, "concat: input %d %s does not match input 0 %s outside axis %d", k,
                                fu_shape_str(xs[k], b, sizeof b), fu_shape_str(x0, a, sizeof a), ax);
        }
        shape[ax] += xs[k]->shape[ax];
    }
    fu_node *node = fu_node_new(g, &op_concat, xs, n, x0->ndim, shape);
    if (!node) return NULL;
    node->ip[0] = ax;
    return fu_node_run(node);
}

/* ---- slice: ip = {axis, start, step}; the output box reads x at start + i*step along axis. */

static layout slice_input_layout(const fu_node *n) {
    layout l = contiguous_layout(n->in[0]);
    const int axis = (int)n->ip[0];
    l.offset = n->ip[1] * l.stride[axis];
    l.stride[axis] *= n->ip[2];
    return l;
}

static int slice_forward(fu_node *n) {
    layout src = slice_input_layout(n), dst = contiguous_layout(n->out);
    strided_copy(n->out->ndim, n->out->shape, n->out->data, &dst, n->in[0]->data, &src, 0);
    return FU_OK;
}

static void slice_backward(fu_node *n) {
    float *gx = fu_in_grad(n, 0);
    if (!gx) return;
    layout xl = slice_input_layout(n), yl = contiguous_layout(n->out);
    strided_copy(n->out->ndim, n->out->shape, gx, &xl, n->out->grad, &yl, 1);
}

static const fu_op op_slice = {"slice", slice_forward, slice_backward, NULL};

/* Python-style bound: negative counts from the end, then clamped to [0, dim]. */
static int64_t clamp_bound(int64_t i, int64_t dim) {
    if (i < 0) i += dim;
    return i < 0 ? 0 : (i > dim ? dim : i);
}

fu_tensor *fu_slice(fu_graph *g, fu_tensor *x, int axis, int64_t start, int64_t end, int64_t step) {
    if (!x) return fu_node_run(fu_node_new(g, &op_slice, &x, 1, 0, NULL));
    int ax = normalize_axis("slice", axis, x->ndim);
    if (ax < 0) return NULL;
    if (step < 1) return fu_fail_null(FU_E_INPUT, "slice: step %lld must be >= 1", (long long)step);
    const int64_t dim = x->shape[ax];
    start = clamp_bound(start, dim);
    end = clamp_bound(end, dim);
    int64_t shape[FU_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[ax] = end > start ? (end - start - 1) / step + 1 : 0;
    fu_node *n = fu_node_new(g, &op_slice, &x, 1, x->ndim, shape);
    if (!n) return NULL;
    n->ip[0] = ax;
    n->ip[1] = start;
    n->ip[2] = step;
    return fu_node_run(n);
}

/* ---- pad: ip[0..2*nd) = before/after per dim, ip[2*nd] = mode; fp[0] = constant value.
 *
 * For every output dimension d a source map gives, per output index, the input index it reads
 * (or -1 for "constant"); the maps are built once and kept in the node's saved memory.
 * Reflect and replicate read some inputs several times, so backward is parallel only over
 * the leading unpadded dims (typically N and C): those split x into disjoint blocks.
 * Pads must be >= 0 (no cropping); reflect needs pad < dim, replicate a non-empty dim. */

typedef struct { int64_t *map[FU_MAX_DIMS]; int lead; } pad_plan;

static int64_t source_index(int64_t o, int64_t before, int64_t dim, fu_pad_mode mode) {
    int64_t i = o - before;
    if (i >= 0 && i < dim) return i;
    switch (mode) {
    case FU_PAD_REFLECT: return i < 0 ? -i : 2 * (dim - 1) - i;  /* edge not repeated */
    case FU_PAD_REPLICATE: return i < 0 ? 0 : dim - 1;
    default: return -1;
    }
}

/* Builds the source maps (once, in the constructor) into the node's saved memory. */
static int pad_build_maps(fu_node *n) {
    const fu_tensor *x = n->in[0], *y = n->out;
    int64_t total = 0;
    for (int d = 0; d < x->ndim; d++) total += y->shape[d];
    int64_t *map = fu_node_saved(n, (size_t)(total ? total : 1) * sizeof(int64_t));
    if (!map) return FU_E_INTERNAL;
    for (int d = 0; d < x->ndim; d++)
        for (int64_t o = 0; o < y->shape[d]; o++)
            *map++ = source_index(o, n->ip[2 * d], x->shape[d], (fu_pad_mode)n->ip[2 * x->ndim]);
    return FU_OK;
}

static pad_plan pad_plan_get(const fu_node *n) {
    const int nd = n->in[0]->ndim;
    pad_plan p = {{0}, 0};
    int64_t *map = n->saved;
    for (int d = 0; d < nd; d++) {
        p.map[d] = map;
        map += n->out->shape[d];
    }
    while (p.lead < nd && n->ip[2 * p.lead] == 0 && n->ip[2 * p.lead + 1] == 0) p.lead++;
    if (p.lead == nd) p.lead = nd - 1;  /* no padding at all: one row per block */
    return p;
}

/* Walks one block (the dims from p->lead on) of output rows; for each row calls the forward or
 * backward row kernel with the input row offset, or -1 when the row lies in constant padding. */
static void pad_block(fu_node *n, const pad_plan *p, int64_t block, int backward) {
    const fu_tensor *x = n->in[0], *y = n->out;
    const int nd = x->ndim, last = nd - 1;
    int64_t xs[FU_MAX_DIMS], x_block = 1, y_block = 1, rows = 1;
    contiguous_strides(nd, x->shape, xs);
    for (int d = p->lead; d < nd; d++) { x_block *= x->shape[d]; y_block *= y->shape[d]; }
    for (int d = p->lead; d < last; d++) rows *= y->shape[d];
    const int64_t len = y->shape[last], *map_last = p->map[last];
    const float *xb = x->data + block * x_block;
    float *gxb = backward ? fu_in_grad(n, 0) + block * x_block : NULL;
    float *yb = y->data + block * y_block;
    const float *gyb = backward ? y->grad + block * y_block : NULL;
    const float value = n->fp[0];
    for (int64_t r = 0; r < rows; r++) {
        int64_t xi = 0, rem = r;
        for (int d = last - 1; d >= p->lead; d--) {
            int64_t src = p->map[d][rem % y->shape[d]];
            rem /= y->shape[d];
            if (src < 0) { xi = -1; break; }
            xi += src * xs[d];
        }
        if (backward) {
            if (xi < 0) continue;
            for (int64_t j = 0; j < len; j++)
                if (map_last[j] >= 0) gxb[xi + map_last[j]] += gyb[r * len + j];
        } else {
            float *yr = yb + r * len;
            for (int64_t j = 0; j < len; j++) yr[j] = xi < 0 || map_last[j] < 0 ? value : xb[xi + map_last[j]];
        }
    }
}

static void pad_run(fu_node *n, int backward) {
    pad_plan p = pad_plan_get(n);
    if (n->out->numel == 0) return;
    int64_t blocks = 1;
    for (int d = 0; d < p.lead; d++) blocks *= n->out->shape[d];
    #pragma omp parallel for schedule(static) if (n->out->numel > PAR_MIN)
    for (int64_t b = 0; b < blocks; b++) pad_block(n, &p, b, backward);
}

static int pad_forward(fu_node *n) {
    pad_run(n, 0);
    return FU_OK;
}

static void pad_backward(fu_node *n) {
    if (fu_in_grad(n, 0)) pad_run(n, 1);
}

static const fu_op op_pad = {"pad", pad_forward, pad_backward, NULL};

fu_tensor *fu_pad(fu_graph *g, fu_tensor *x, const int64_t *pads, fu_pad_mode mode, float value) {
    if (!x) return fu_node_run(fu_node_new(g, &op_pad, &x, 1, 0, NULL));
    if (x->ndim < 1 || !pads) return fu_fail_null(FU_E_INPUT, "pad: need a tensor with >= 1 dims and pads");
    if (mode != FU_PAD_CONSTANT && mode != FU_PAD_REFLECT && mode != FU_PAD_REPLICATE)
        return fu_fail_null(FU_E_INPUT, "pad: unknown mode %d", (int)mode);
    int64_t shape[FU_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) {
        const int64_t before = pads[2 * d], after = pads[2 * d + 1], dim = x->shape[d];
        if (before < 0 || after < 0 || before > FU_MAX_NUMEL || after > FU_MAX_NUMEL)
            return fu_fail_null(FU_E_INPUT, "pad: pads of dim %d (%lld, %lld) must be in [0, 2^34]", d, (long long)before, (long long)after);
        if (mode == FU_PAD_REFLECT && (before >= dim || after >= dim) && (before || after))
            return fu_fail_null(FU_E_INPUT, "pad: reflect pads (%lld, %lld) of dim %d must be < its size %lld",
                                (long long)before, (long long)after, d, (long long)dim);
        if (mode == FU_PAD_REPLICATE && dim == 0 && (before || after))
            return fu_fail_null(FU_E_INPUT, "pad: replicate padding of the empty dim %d", d);
        shape[d] = dim + before + after;
    }
    fu_node *n = fu_node_new(g, &op_pad, &x, 1, x->ndim, shape);
    if (!n) return NULL;
    for (int d = 0; d < 2 * x->ndim; d++) n->ip[d] = pads[d];
    n->ip[2 * x->ndim] = mode;
    n->fp[0] = value;
    if (pad_build_maps(n) != FU_OK) return NULL;
    return fu_node_run(n);
}

/* ---- upsample_nearest: x viewed as [planes, H, W] -> [planes, H*f, W*f], ip[0] = f.
 * Backward: each input pixel sums its f x f output block; parallel over input rows. */

static int upsample_forward(fu_node *n) {
    const fu_tensor *x = n->in[0];
    const int64_t f = n->ip[0], H = fu_dim(x, -2), W = fu_dim(x, -1), OW = W * f;
    const int64_t out_rows = n->out->numel / (OW ? OW : 1);
    if (n->out->numel == 0) return FU_OK;
    #pragma omp parallel for schedule(static) if (n->out->numel > PAR_MIN)
    for (int64_t r = 0; r < out_rows; r++) {
        const int64_t plane = r / (H * f), oy = r % (H * f);
        const float *xr = x->data + (plane * H + oy / f) * W;
        float *yr = n->out->data + r * OW;
        for (int64_t ox = 0; ox < OW; ox++) yr[ox] = xr[ox / f];
    }
    return FU_OK;
}

static void upsample_backward(fu_node *n) {
    float *gx = fu_in_grad(n, 0);
    if (!gx) return;
    const fu_tensor *x = n->in[0];
    const int64_t f = n->ip[0], W = fu_dim(x, -1), OW = W * f;
    const int64_t in_rows = x->numel / (W ? W : 1);
    if (x->numel == 0) return;
    #pragma omp parallel for schedule(static) if (n->out->numel > PAR_MIN)
    for (int64_t r = 0; r < in_rows; r++) {
        /* Input row r (plane p, row y) owns output rows r*f .. r*f+f-1 (= p*H*f + y*f + dy). */
        float *gxr = gx + r * W;
        for (int64_t dy = 0; dy < f; dy++) {
            const float *gyr = n->out->grad + (r * f + dy) * OW;
            for (int64_t ix = 0; ix < W; ix++) {
                float s = 0;
                for (int64_t dx = 0; dx < f; dx++) s += gyr[ix * f + dx];
                gxr[ix] += s;
            }
        }
    }
}

static const fu_op op_upsample = {"upsample_nearest", upsample_forward, upsample_backward, NULL};

fu_tensor *fu_upsample_nearest(fu_graph *g, fu_tensor *x, int factor) {
    if (!x) return fu_node_run(fu_node_new(g, &op_upsample, &x, 1, 0, NULL));
    char buf[96];
    if (x->ndim < 2)
        return fu_fail_null(FU_E_INPUT, "upsample_nearest: need >= 2 dims, got %s", fu_shape_str(x, buf, sizeof buf));
    if (factor < 1 || factor > 65536)
        return fu_fail_null(FU_E_INPUT, "upsample_nearest: factor %d must be in 1..65536", factor);
    int64_t shape[FU_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[x->ndim - 2] *= factor;  /* dims < 2^34, factor <= 2^16: no overflow */
    shape[x->ndim - 1] *= factor;
    fu_node *n = fu_node_new(g, &op_upsample, &x, 1, x->ndim, shape);
    if (!n) return NULL;
    n->ip[0] = factor;
    return fu_node_run(n);
}
