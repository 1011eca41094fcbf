/* Reductions (sum, mean, max over an axis mask; sum_all, mean_all) and softmax.
 *
 * Axis reductions: adjacent dims that are both kept or both reduced are merged, leaving a few
 * groups. Each output element (one index per kept group) owns the input elements of the
 * reduced groups; it walks them as rows (all reduced groups but the last) of a strided inner
 * loop (the last reduced group). Outputs own disjoint inputs, so forward and backward both run
 * in parallel over outputs. Sums accumulate in double: reductions here can span millions of
 * elements (means over images and batches), where float accumulation loses digits.
 *
 * Softmax over one axis: x is viewed as [outer, L, inner]; each (outer, inner) line of L
 * elements is normalised after subtracting its maximum. */
#include "ops.h"
#include "error.h"
#include <math.h>
#include <string.h>

enum { PAR_MIN = 32768 };
enum { R_SUM, R_MEAN, R_MAX };

typedef struct {
    int n_kept, n_red;
    int64_t kept[FU_MAX_DIMS], kept_stride[FU_MAX_DIMS];  /* sizes and input strides */
    int64_t red[FU_MAX_DIMS], red_stride[FU_MAX_DIMS];
    int64_t n_out, n_rows, len;   /* outputs; rows and row length of each output's reduced set */
} reduce_plan;

static void plan_init(reduce_plan *p, const fu_tensor *x, unsigned axes) {
    memset(p, 0, sizeof *p);
    int64_t stride = 1;
    int prev = -1;  /* kind of the group right of d: 1 reduced, 0 kept */
    /* Right to left, so each group's stride is that of its innermost dim. */
    int64_t ks[FU_MAX_DIMS], kst[FU_MAX_DIMS], rs[FU_MAX_DIMS], rst[FU_MAX_DIMS];
    for (int d = x->ndim - 1; d >= 0; d--) {
        int red = (axes >> d) & 1;
        int64_t *size = red ? rs : ks, *st = red ? rst : kst;
        int *count = red ? &p->n_red : &p->n_kept;
        if (prev == red) size[*count - 1] *= x->shape[d];
        else { size[*count] = x->shape[d]; st[*count] = stride; (*count)++; }
        prev = red;
        stride *= x->shape[d];
    }
    /* Store outermost first. */
    for (int i = 0; i < p->n_kept; i++) { p->kept[i] = ks[p->n_kept - 1 - i]; p->kept_stride[i] = kst[p->n_kept - 1 - i]; }
    for (int i = 0; i < p->n_red; i++) { p->red[i] = rs[p->n_red - 1 - i]; p->red_stride[i] = rst[p->n_red - 1 - i]; }
    p->n_out = 1;
    for (int i = 0; i < p->n_kept; i++) p->n_out *= p->kept[i];
    p->n_rows = 1;
    for (int i = 0; i < p->n_red - 1; i++) p->n_rows *= p->red[i];
    p->len = p->n_red ? p->red[p->n_red - 1] : 1;
}

/* Input offset of output element o (its first reduced element). */
static int64_t out_base(const reduce_plan *p, int64_t o) {
    int64_t off = 0;
    for (int i = p->n_kept - 1; i >= 0; i--) { off += (o % p->kept[i]) * p->kept_stride[i]; o /= p->kept[i]; }
    return off;
}

/* Offset of reduced row r relative to an output's base. */
static int64_t row_offset(const reduce_plan *p, int64_t r) {
    int64_t off = 0;
    for (int i = p->n_red - 2; i >= 0; i--) { off += (r % p->red[i]) * p->red_stride[i]; r /= p->red[i]; }
    return off;
}

static int64_t inner_stride(const reduce_plan *p) { return p->n_red ? p->red_stride[p->n_red - 1] : 1; }

/* ip[0] = kind, ip[1] = axes mask. saved (max only) = input offset of each output's maximum. */

static int reduce_forward(fu_node *n) {
    reduce_plan p;
    plan_init(&p, n->in[0], (unsigned)n->ip[1]);
    const int kind = (int)n->ip[0];
    const float *x = n->in[0]->data;
    float *y = n->out->data;
    int64_t *argmax = n->saved;
    const int64_t s = inner_stride(&p), count = p.n_rows * p.len;
    #pragma omp parallel for schedule(static) if (n->in[0]->numel > PAR_MIN)
    for (int64_t o = 0; o < p.n_out; o++) {
        const int64_t base = out_base(&p, o);
        if (kind == R_MAX) {
            /* Strict > in row-major order keeps the first maximum. */
            int64_t best = base + row_offset(&p, 0);
            for (int64_t r = 0; r < p.n_rows; r++) {
                const int64_t off = base + row_offset(&p, r);
                for (int64_t j = 0; j < p.len; j++)
                    if (x[off + j * s] > x[best]) best = off + j * s;
            }
            argmax[o] = best;
            y[o] = x[best];
        } else {
            double acc = 0;
            for (int64_t r = 0; r < p.n_rows; r++) {
                const float *row = x + base + row_offset(&p, r);
                for (int64_t j = 0; j < p.len; j++) acc += row[j * s];
            }
            y[o] = (float)(kind == R_MEAN ? acc / (double)count : acc);
        }
    }
    return FU_OK;
}

static void reduce_backward(fu_node *n) {
    float *gx = fu_in_grad(n, 0);
    if (!gx) return;
    const float *gy = n->out->grad;
    const int kind = (int)n->ip[0];
    reduce_plan p;
    plan_init(&p, n->in[0], (unsigned)n->ip[1]);
    if (kind == R_MAX) {
        const int64_t *argmax = n->saved;
        for (int64_t o = 0; o < p.n_out; o++) gx[argmax[o]] += gy[o];
        return;
    }
    const int64_t s = inner_stride(&p);
    const float scale = kind == R_MEAN ? 1.0f / (float)(p.n_rows * p.len) : 1.0f;
    #pragma omp parallel for schedule(static) if (n->in[0]->numel > PAR_MIN)
    for (int64_t o = 0; o < p.n_out; o++) {
        const int64_t base = out_base(&p, o);
        const float v = gy[o] * scale;
        for (int64_t r = 0; r < p.n_rows; r++) {
            float *row = gx + base + row_offset(&p, r);
            for (int64_t j = 0; j < p.len; j++) row[j * s] += v;
        }
    }
}

static const fu_op op_reduce = {"reduce", reduce_forward, reduce_backward, NULL};

static fu_tensor *reduce(fu_graph *g, fu_tensor *x, unsigned axes, int keepdim, int kind, const char *name) {
    if (!x) return fu_node_run(fu_node_new(g, &op_reduce, &x, 1, 0, NULL));
    if (axes == 0 || x->ndim == 0 || (axes >> x->ndim) != 0)
        return fu_fail_null(FU_E_INPUT, "%s: axes mask 0x%x must be non-zero and within the %d dims", name, axes, x->ndim);
    int64_t shape[FU_MAX_DIMS], reduced = 1;
    int nd = 0;
    for (int d = 0; d < x->ndim; d++) {
        if ((axes >> d) & 1) {
            reduced *= x->shape[d];
            if (keepdim) shape[nd++] = 1;
        } else {
            shape[nd++] = x->shape[d];
        }
    }
    if (nd == 0) shape[nd++] = 1;  /* everything reduced: shape [1], like sum_all */
    if (reduced == 0 && kind != R_SUM && fu_shape_numel(nd, shape) > 0)
        return fu_fail_null(FU_E_INPUT, "%s: reducing over an empty dimension", name);
    fu_node *n = fu_node_new(g, &op_reduce, &x, 1, nd, shape);
    if (!n) return NULL;
    n->ip[0] = kind;
    n->ip[1] = axes;
    if (kind == R_MAX && !fu_node_saved(n, (size_t)(n->out->numel ? n->out->numel : 1) * sizeof(int64_t)))
        return NULL;
    return fu_node_run(n);
}

fu_tensor *fu_sum(fu_graph *g, fu_tensor *x, unsigned axes, int keepdim) { return reduce(g, x, axes, keepdim, R_SUM, "sum"); }
fu_tensor *fu_mean(fu_graph *g, fu_tensor *x, unsigned axes, int keepdim) { return reduce(g, x, axes, keepdim, R_MEAN, "mean"); }
fu_tensor *fu_max(fu_graph *g, fu_tensor *x, unsigned axes, int keepdim) { return reduce(g, x, axes, keepdim, R_MAX, "max"); }

/* ---- sum_all / mean_all: ip[0] = 1 for mean. One double accumulator per thread. */

static int reduce_all_forward(fu_node *n) {
    const float *x = n->in[0]->data;
    const int64_t N = n->in[0]->numel;
    double acc = 0;
    #pragma omp parallel for schedule(static) reduction(+ : acc) if (N > PAR_MIN)
    for (int64_t i = 0; i < N; i++) acc += x[i];
    n->out->data[0] = (float)(n->ip[0] ? acc / (double)N : acc);
    return FU_OK;
}

static void reduce_all_backward(fu_node *n) {
    float *gx = fu_in_grad(n, 0);
    if (!gx) return;
    const int64_t N = n->in[0]->numel;
    const float v = n->ip[0] ? n->out->grad[0] / (float)N : n->out->grad[0];
    #pragma omp parallel for schedule(static) if (N > PAR_MIN)
    for (int64_t i = 0; i < N; i++) gx[i] += v;
}

static const fu_op op_reduce_all = {"reduce_all", reduce_all_forward, reduce_all_backward, NULL};

static fu_tensor *reduce_all(fu_graph *g, fu_tensor *x, int mean) {
    if (x && mean && x->numel == 0) return fu_fail_null(FU_E_INPUT, "mean_all: empty tensor");
    fu_node *n = fu_node_new(g, &op_reduce_all, &x, 1, 1, (int64_t[]){1});
    if (!n) return NULL;
    n->ip[0] = mean;
    return fu_node_run(n);
}

fu_tensor *fu_sum_all(fu_graph *g, fu_tensor *x) { return reduce_all(g, x, 0); }
fu_tensor *fu_mean_all(fu_graph *g, fu_tensor *x) { return reduce_all(g, x, 1); }

/* ---- softmax / log_softmax: ip[0] = L, ip[1] = inner, ip[2] = 1 for log_softmax. */

static int softmax_forward(fu_node *n) {
    const float *x = n->in[0]->data;
    float *y = n->out->data;
    const int64_t L = n->ip[0], inner = n->ip[1], lines = L ? n->out->numel / L : 0;
    const int log_out = (int)n->ip[2];
    #pragma omp parallel for schedule(static) if (n->out->numel > PAR_MIN)
    for (int64_t line = 0; line < lines; line++) {
        const int64_t base = (line / inner) * L * inner + line % inner;
        const float *xl = x + base;
        float *yl = y + base;
        float m = -INFINITY;
        for (int64_t l = 0; l < L; l++) m = fmaxf(m, xl[l * inner]);
        double sum = 0;
        for (int64_t l = 0; l < L; l++) sum += expf(xl[l * inner] - m);
        if (log_out) {
            /* (x - m) - log(sum), not x - (m + log(sum)): for large |x| the latter rounds
             * the small log term away to x's ulp. */
            const float log_sum = (float)log(sum);
            for (int64_t l = 0; l < L; l++) yl[l * inner] = (xl[l * inner] - m) - log_sum;
        } else {
            const float inv = (float)(1.0 / sum);
            for (int64_t l = 0; l < L; l++) yl[l * inner] = expf(xl[l * inner] - m) * inv;
        }
    }
    return FU_OK;
}

/* softmax: gx = y * (gy - sum(gy * y)); log_softmax: gx = gy - softmax * sum(gy). */
static void softmax_backward(fu_node *n) {
    float *gx = fu_in_grad(n, 0);
    if (!gx) return;
    const float *y = n->out->data, *gy = n->out->grad;
    const int64_t L = n->ip[0], inner = n->ip[1], lines = L ? n->out->numel / L : 0;
    const int log_out = (int)n->ip[2];
    #pragma omp parallel for schedule(static) if (n->out->numel > PAR_MIN)
    for (int64_t line = 0; line < lines; line++) {
        const int64_t base = (line / inner) * L * inner + line % inner;
        const float *yl = y + base, *gl = gy + base;
        float *gxl = gx + base;
        double dot = 0;
        for (int64_t l = 0; l < L; l++) dot += log_out ? gl[l * inner] : gl[l * inner] * yl[l * inner];
        const float d = (float)dot;
        if (log_out)
            for (int64_t l = 0; l < L; l++) gxl[l * inner] += gl[l * inner] - expf(yl[l * inner]) * d;
        else
            for (int64_t l = 0; l < L; l++) gxl[l * inner] += yl[l * inner] * (gl[l * inner] - d);
    }
}

static const fu_op op_softmax = {"softmax", softmax_forward, softmax_backward, NULL};

static fu_tensor *softmax(fu_graph *g, fu_tensor *x, int axis, int log_out) {
    const char *name = log_out ? "log_softmax" : "softmax";
    if (!x) return fu_node_run(fu_node_new(g, &op_softmax, &x, 1, 0, NULL));
    if (axis < -x->ndim || axis >= x->ndim)
        return fu_fail_null(FU_E_INPUT, "%s: axis %d out of range for %d dims", name, axis, x->ndim);
    if (axis < 0) axis += x->ndim;
    int64_t inner = 1;
    for (int d = axis + 1; d < x->ndim; d++) inner *= x->shape[d];
    fu_node *n = fu_node_new(g, &op_softmax, &x, 1, x->ndim, x->shape);
    if (!n) return NULL;
    n->ip[0] = x->shape[axis];
    n->ip[1] = inner;
    n->ip[2] = log_out;
    return fu_node_run(n);
}

fu_tensor *fu_softmax(fu_graph *g, fu_tensor *x, int axis) { return softmax(g, x, axis, 0); }
fu_tensor *fu_log_softmax(fu_graph *g, fu_tensor *x, int axis) { return softmax(g, x, axis, 1); }
