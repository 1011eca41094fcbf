/* TF graph -> engine ops. See tfjs_graph.h for the layout scheme.
 *
 * Evaluation walks the graph depth-first from the requested outputs (iteratively, with an
 * explicit stack) and converts each node once its inputs have values. A value is a tensor plus
 * a tag saying whether a logical NHWC rank-4 tensor is stored as NCHW. */
#include "tfjs_graph.h"
#include "core/error.h"
#include "core/ops.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    fu_tensor *t;
    int nchw;               /* t is [N,C,H,W] holding the logical NHWC tensor [N,H,W,C] */
    fu_tensor **nchw_copy;  /* constants: where their NCHW copy is cached (made on first use) */
} tval;

/* Per node, what prepare derived from its constants. */
typedef struct {
    fu_tensor *konst;       /* Const: the value in TF layout (scalars as [1]) */
    const fu_tfjs_weight *w;
    fu_tensor *filter;      /* convolutions: OIHW filter */
    int groups;
    fu_tensor *mat;         /* MatMul with a constant b: b as [K, N] */
    int owns_mat;           /* mat was made here (transposed), not borrowed from the Const */
    fu_tensor *bn_mult, *bn_shift;  /* batch norm folded to x*mult + shift */
    fu_tensor *konst_nchw, *bn_mult_nchw, *bn_shift_nchw;  /* the same met by NCHW values */
} prepared;

struct fu_tfjs_net {
    fu_tfjs_model *m;
    int input;              /* node index of the Placeholder */
    prepared *prep;
    tval *vals;             /* per node, valid during one forward */
    unsigned char *state;   /* 0 not visited, 1 on the stack, 2 evaluated */
    int *stack;
};

static tval val(fu_tensor *t, int nchw) { return (tval){t, nchw, NULL}; }

/* Logical NHWC axis -> physical NCHW axis, and back. */
static const int nchw_of_nhwc[4] = {0, 2, 3, 1};
static const int nhwc_of_nchw[4] = {0, 3, 1, 2};

/* ---------- prepare ---------- */

/* "tfjs <op> node '<name>': <what><detail>" */
static int fail_node(const fu_tfjs_node *n, const char *what, const char *detail) {
    return fu_fail(FU_E_INPUT, "tfjs %s node '%.100s': %s%s", n->op, n->name, what, detail ? detail : "");
}

/* Constant input k of n (its prepared slot), or NULL. */
static const prepared *const_input(const fu_tfjs_net *net, const fu_tfjs_node *n, int k) {
    if (k >= n->n_inputs) return NULL;
    int id = fu_tfjs_node_id(net->m, n->inputs[k].node);
    return id >= 0 && net->prep[id].konst ? &net->prep[id] : NULL;
}

static fu_tensor *leaf_from(const float *data, int ndim, const int64_t *shape) {
    int64_t one = 1;
    fu_tensor *t = ndim ? fu_tensor_new(ndim, shape) : fu_tensor_new(1, &one);
    if (t) memcpy(t->data, data, (size_t)t->numel * sizeof(float));
    return t;
}

/* HWIO -> OIHW, or depthwise HWCM -> [C*M, 1, kh, kw] (groups = C). */
static int prepare_filter(fu_tfjs_net *net, const fu_tfjs_node *n, prepared *p) {
    const prepared *f = const_input(net, n, 1);
    if (!f || f->w->ndim != 4) return fail_node(n, "the filter must be a rank-4 constant", NULL);
    int depthwise = strstr(n->op, "Depthwise") != NULL;
    int64_t kh = f->w->shape[0], kw = f->w->shape[1], I = f->w->shape[2], O = f->w->shape[3];
    int64_t oihw[4] = {depthwise ? I * O : O, depthwise ? 1 : I, kh, kw};
    if (!(p->filter = fu_tensor_new(4, oihw))) return FU_E_INTERNAL;
    const float *src = f->w->data;
    for (int64_t y = 0; y < kh; y++)
        for (int64_t x = 0; x < kw; x++)
            for (int64_t i = 0; i < I; i++)
                for (int64_t o = 0; o < O; o++) {
                    float v = src[((y * kw + x) * I + i) * O + o];
                    int64_t dst = depthwise ? ((i * O + o) * kh + y) * kw + x : ((o * I + i) * kh + y) * kw + x;
                    p->filter->data[dst] = v;
                }
    p->groups = depthwise ? (int)I : 1;
    return FU_OK;
}

static int prepare_matmul(fu_tfjs_net *net, const fu_tfjs_node *n, prepared *p) {
    const prepared *b = const_input(net, n, 1);
    if (!b) return FU_OK;    /* a computed b is handled at run time */
    if (b->w->ndim != 2) return fail_node(n, "b must be a matrix", NULL);
    if (!fu_tfjs_attr_int(n, "transpose_b", 0)) { p->mat = b->konst; return FU_OK; }
    int64_t R = b->w->shape[0], C = b->w->shape[1], kn[2] = {C, R};
    if (!(p->mat = fu_tensor_new(2, kn))) return FU_E_INTERNAL;
    p->owns_mat = 1;
    for (int64_t r = 0; r < R; r++)
        for (int64_t c = 0; c < C; c++) p->mat->data[c * R + r] = b->w->data[r * C + c];
    return FU_OK;
}

/* Batch norm with constant scale, offset, mean, variance at inputs first..first+3, folded to
 * y = x*mult + shift, mult = scale/sqrt(var + eps), shift = offset - mean*mult (eval mode). */
static int prepare_batchnorm(fu_tfjs_net *net, const fu_tfjs_node *n, int first, prepared *p) {
    const prepared *c[4];
    for (int k = 0; k < 4; k++)
        if (!(c[k] = const_input(net, n, first + k)) || c[k]->w->ndim != 1 || c[k]->w->numel != c[0]->w->numel)
            return fail_node(n, "batch norm parameters must be 1-d constants of one length", NULL);
    double eps = fu_tfjs_attr_float(n, "epsilon", 1e-3);
    int64_t C = c[0]->w->numel;
    if (!(p->bn_mult = fu_tensor_new(1, &C)) || !(p->bn_shift = fu_tensor_new(1, &C))) return FU_E_INTERNAL;
    for (int64_t i = 0; i < C; i++) {
        double mult = c[0]->w->data[i] / sqrt((double)c[3]->w->data[i] + eps);
        p->bn_mult->data[i] = (float)mult;
        p->bn_shift->data[i] = (float)(c[1]->w->data[i] - c[2]->w->data[i] * mult);
    }
    return FU_OK;
}

/* Index of `what` in a fused op's fused_ops list, -1 if absent. */
static int fused_index(const fu_tfjs_node *n, const char *what) {
    const fu_tfjs_attr *a = fu_tfjs_attr_find(n, "fused_ops");
    if (!a || a->kind != FU_TFJS_ATTR_LIST || !a->strs) return -1;
    for (int i = 0; i < a->n; i++) if (!strcmp(a->strs[i], what)) return i;
    return -1;
}

static int is_conv(const char *op) {
    return !strcmp(op, "Conv2D") || !strcmp(op, "_FusedConv2D") || !strcmp(op, "DepthwiseConv2dNative") ||
           !strcmp(op, "DepthwiseConv2d") || !strcmp(op, "FusedDepthwiseConv2dNative");
}

static int prepare_consts(fu_tfjs_net *net) {
    for (int i = 0; i < net->m->n_nodes; i++) {
        const fu_tfjs_node *n = &net->m->nodes[i];
        if (strcmp(n->op, "Const")) continue;
        const fu_tfjs_weight *w = fu_tfjs_weight_find(net->m, n->name);
        if (!w) return fail_node(n, "no weight of this name in the manifest", NULL);
        net->prep[i].w = w;
        if (!(net->prep[i].konst = leaf_from(w->data, w->ndim, w->shape))) return FU_E_INTERNAL;
    }
    return FU_OK;
}

static int prepare_node(fu_tfjs_net *net, const fu_tfjs_node *n, prepared *p) {
    if (is_conv(n->op)) {
        int rc = prepare_filter(net, n, p);
        if (rc || fused_index(n, "FusedBatchNorm") < 0) return rc;
        return prepare_batchnorm(net, n, 2, p);
    }
    if (!strcmp(n->op, "MatMul") || !strcmp(n->op, "_FusedMatMul")) return prepare_matmul(net, n, p);
    if (!strcmp(n->op, "FusedBatchNorm") || !strcmp(n->op, "FusedBatchNormV2") || !strcmp(n->op, "FusedBatchNormV3"))
        return prepare_batchnorm(net, n, 1, p);
    return FU_OK;
}

static void free_prepared(fu_tfjs_net *net) {
    if (!net->prep) return;
    for (int i = 0; i < net->m->n_nodes; i++) {
        prepared *p = &net->prep[i];
        if (p->owns_mat) fu_tensor_free(p->mat);
        fu_tensor_free(p->konst);
        fu_tensor_free(p->filter);
        fu_tensor_free(p->bn_mult);
        fu_tensor_free(p->bn_shift);
        fu_tensor_free(p->konst_nchw);
        fu_tensor_free(p->bn_mult_nchw);
        fu_tensor_free(p->bn_shift_nchw);
    }
    free(net->prep);
}

void fu_tfjs_net_free(fu_tfjs_net *net) {
    if (!net) return;
    if (net->m) free_prepared(net);
    free(net->vals);
    free(net->state);
    free(net->stack);
    fu_tfjs_free(net->m);
    free(net);
}

static int find_placeholder(fu_tfjs_net *net) {
    net->input = -1;
    for (int i = 0; i < net->m->n_nodes; i++) {
        const fu_tfjs_node *n = &net->m->nodes[i];
        if (strcmp(n->op, "Placeholder")) continue;
        if (net->input >= 0)
            return fu_fail(FU_E_INPUT, "%s: more than one Placeholder ('%.80s', '%.80s'); one input is supported",
                           net->m->path, net->m->nodes[net->input].name, n->name);
        const char *dt = fu_tfjs_attr_str(n, "dtype", "DT_FLOAT");
        if (strcmp(dt, "DT_FLOAT")) return fail_node(n, "input dtype must be DT_FLOAT, not ", dt);
        net->input = i;
    }
    if (net->input < 0) return fu_fail(FU_E_INPUT, "%s: no Placeholder (input) node", net->m->path);
    return FU_OK;
}

fu_tfjs_net *fu_tfjs_net_new(fu_tfjs_model *m) {
    if (!m) return NULL;
    fu_tfjs_net *net = fu_calloc(1, sizeof *net);
    if (!net) { fu_tfjs_free(m); return NULL; }
    net->m = m;
    size_t n = (size_t)m->n_nodes + 1;
    net->prep = fu_calloc(n, sizeof *net->prep);
    net->vals = fu_calloc(n, sizeof *net->vals);
    net->state = fu_calloc(n, 1);
    net->stack = fu_calloc(n, sizeof *net->stack);
    int rc = net->prep && net->vals && net->state && net->stack ? find_placeholder(net) : FU_E_INTERNAL;
    if (!rc) rc = prepare_consts(net);
    for (int i = 0; !rc && i < m->n_nodes; i++) rc = prepare_node(net, &m->nodes[i], &net->prep[i]);
    if (rc) { fu_tfjs_net_free(net); return NULL; }
    return net;
}

fu_tfjs_net *fu_tfjs_net_load(const char *path) { return fu_tfjs_net_new(fu_tfjs_load(path)); }

const fu_tfjs_model *fu_tfjs_net_model(const fu_tfjs_net *net) { return net->m; }

int fu_tfjs_net_input_shape(const fu_tfjs_net *net, int64_t *shape) {
    const fu_tfjs_attr *a = fu_tfjs_attr_find(&net->m->nodes[net->input], "shape");
    if (!a || a->kind != FU_TFJS_ATTR_SHAPE || a->ndim < 0) return -1;
    memcpy(shape, a->shape, (size_t)a->ndim * sizeof *shape);
    return a->ndim;
}

/* ---------- layout helpers ---------- */

typedef struct {
    fu_tfjs_net *net;
    fu_graph *g;
    const fu_tfjs_node *n;
    const tval *in;         /* values of n's inputs */
} op_ctx;

static fu_tensor *to_nhwc(fu_graph *g, tval v) {
    static const int perm[4] = {0, 2, 3, 1};
    return v.nchw ? fu_transpose(g, v.t, perm) : v.t;
}

/* Rank-4 logical shape of a rank <= 4 tensor (leading dims 1). */
static void shape4(const fu_tensor *t, int64_t *s) {
    for (int i = 0; i < 4; i++) s[i] = i < 4 - t->ndim ? 1 : t->shape[i - (4 - t->ndim)];
}

/* NCHW leaf copy of a constant read as NHWC (rank <= 4). */
static fu_tensor *nchw_leaf(const fu_tensor *t) {
    int64_t s[4];
    shape4(t, s);
    fu_tensor *o = fu_tensor_newv(4, s[0], s[3], s[1], s[2]);
    if (!o) return NULL;
    for (int64_t n = 0; n < s[0]; n++)
        for (int64_t y = 0; y < s[1]; y++)
            for (int64_t x = 0; x < s[2]; x++)
                for (int64_t c = 0; c < s[3]; c++)
                    o->data[((n * s[3] + c) * s[1] + y) * s[2] + x] = t->data[((n * s[1] + y) * s[2] + x) * s[3] + c];
    return o;
}

/* A value in NCHW: as is, or a rank <= 4 plain tensor read as NHWC (leading dims 1).
 * Constants are converted once and cached, so per-channel vectors cost no node. */
static fu_tensor *to_nchw(fu_graph *g, tval v) {
    static const int perm[4] = {0, 3, 1, 2};
    if (v.nchw || !v.t) return v.t;
    if (v.t->ndim > 4) return fu_fail_null(FU_E_INPUT, "tfjs: rank-%d value cannot meet an NHWC image", v.t->ndim);
    if (v.nchw_copy) return *v.nchw_copy ? *v.nchw_copy : (*v.nchw_copy = nchw_leaf(v.t));
    int64_t s[4];
    shape4(v.t, s);
    fu_tensor *t = v.t->ndim < 4 ? fu_reshape(g, v.t, 4, s) : v.t;
    return fu_transpose(g, t, perm);
}

/* Logical (TF) rank and shape of a value. */
static int logical_shape(tval v, int64_t *s) {
    for (int i = 0; i < v.t->ndim; i++) s[i] = v.nchw ? v.t->shape[nchw_of_nhwc[i]] : v.t->shape[i];
    return v.t->ndim;
}

static int64_t const_int(const prepared *p, int64_t i) { return p->w->ints ? p->w->ints[i] : (int64_t)p->w->data[i]; }

/* Integer list from a constant input (scalar or vector). */
static int const_ints(op_ctx *c, int k, int64_t *out, int cap, int *count) {
    const prepared *p = const_input(c->net, c->n, k);
    if (!p || p->w->ndim > 1 || p->w->numel > cap) return fail_node(c->n, "needs a small constant integer input", NULL);
    for (int64_t i = 0; i < p->w->numel; i++) out[i] = const_int(p, i);
    *count = (int)p->w->numel;
    return FU_OK;
}

static int norm_axis(op_ctx *c, int64_t a, int rank, int *out) {
    *out = 0;
    if (a < 0) a += rank;
    if (a < 0 || a >= rank) return fail_node(c->n, "axis out of range", NULL);
    *out = (int)a;
    return FU_OK;
}

/* ---------- elementwise ---------- */

typedef fu_tensor *(*binary_fn)(fu_graph *, fu_tensor *, fu_tensor *);

/* a op b with TF broadcasting; NCHW when either operand is (the other is moved to NCHW). */
static tval binary(fu_graph *g, binary_fn f, tval a, tval b) {
    if (!a.t || !b.t) return val(NULL, 0);
    if ((a.nchw || b.nchw) && a.t->ndim <= 4 && b.t->ndim <= 4)
        return val(f(g, to_nchw(g, a), to_nchw(g, b)), 1);
    return val(f(g, to_nhwc(g, a), to_nhwc(g, b)), 0);
}

static fu_tensor *squared_difference(fu_graph *g, fu_tensor *a, fu_tensor *b) { return fu_square(g, fu_sub(g, a, b)); }

static const struct { const char *op; binary_fn f; } binary_ops[] = {
    {"Add", fu_add}, {"AddV2", fu_add}, {"BiasAdd", fu_add}, {"Sub", fu_sub}, {"Mul", fu_mul},
    {"RealDiv", fu_div}, {"Div", fu_div}, {"Maximum", fu_maximum}, {"Minimum", fu_minimum},
    {"SquaredDifference", squared_difference},
};

static int op_binary(op_ctx *c, binary_fn f, tval *out) {
    if (c->n->n_inputs != 2) return fail_node(c->n, "expects 2 inputs", NULL);
    if (!strcmp(c->n->op, "BiasAdd") && strcmp(fu_tfjs_attr_str(c->n, "data_format", "NHWC"), "NHWC"))
        return fail_node(c->n, "only data_format NHWC is supported", NULL);
    *out = binary(c->g, f, c->in[0], c->in[1]);
    return FU_OK;
}

typedef fu_tensor *(*unary_fn)(fu_graph *, fu_tensor *);

static fu_tensor *identity(fu_graph *g, fu_tensor *x) { (void)g; return x; }
static fu_tensor *elu1(fu_graph *g, fu_tensor *x) { return fu_elu(g, x, 1.0f); }

static const struct { const char *op; unary_fn f; } unary_ops[] = {
    {"Relu", fu_relu}, {"Relu6", fu_relu6}, {"Elu", elu1}, {"Sigmoid", fu_sigmoid}, {"Tanh", fu_tanh},
    {"Rsqrt", fu_rsqrt}, {"Sqrt", fu_sqrt}, {"Square", fu_square}, {"Exp", fu_exp}, {"Log", fu_log},
    {"Neg", fu_neg}, {"Abs", fu_abs}, {"Identity", identity},
};

/* x > 0 ? x : alpha*x with alpha broadcast over the trailing dims (TF/Keras PReLU). */
static tval prelu(fu_graph *g, tval x, tval alpha) {
    if (!x.t || !alpha.t) return val(NULL, 0);
    int64_t s[FU_MAX_DIMS];
    int r = logical_shape(x, s);
    if (x.nchw && (alpha.t->numel == s[r - 1] || alpha.t->numel == 1))   /* per channel: dim 1 of NCHW */
        return val(fu_prelu(g, x.t, alpha.t), 1);
    tval pos = val(fu_relu(g, x.t), x.nchw), neg = val(fu_neg(g, fu_relu(g, fu_neg(g, x.t))), x.nchw);
    return binary(g, fu_add, pos, binary(g, fu_mul, alpha, neg));
}

/* Activation named in a fused op (after BiasAdd); arg = its extra input (Prelu's alpha). */
static int activation(op_ctx *c, const char *name, tval *y, tval arg) {
    for (size_t i = 0; i < sizeof unary_ops / sizeof *unary_ops; i++)
        if (!strcmp(name, unary_ops[i].op) && strcmp(name, "Identity")) { y->t = unary_ops[i].f(c->g, y->t); return FU_OK; }
    if (!strcmp(name, "LeakyRelu")) {
        y->t = fu_leaky_relu(c->g, y->t, (float)fu_tfjs_attr_float(c->n, "leakyrelu_alpha", 0.2));
        return FU_OK;
    }
    if (!strcmp(name, "Prelu")) {
        if (!arg.t) return fail_node(c->n, "Prelu needs its alpha argument", NULL);
        *y = prelu(c->g, *y, arg);
        return FU_OK;
    }
    return fail_node(c->n, "unsupported fused activation ", name);
}

static int op_unary(op_ctx *c, unary_fn f, tval *out) {
    if (c->n->n_inputs < 1) return fail_node(c->n, "expects an input", NULL);
    *out = val(f(c->g, c->in[0].t), c->in[0].nchw);
    return FU_OK;
}

static int op_leaky_relu(op_ctx *c, tval *out) {
    *out = val(fu_leaky_relu(c->g, c->in[0].t, (float)fu_tfjs_attr_float(c->n, "alpha", 0.2)), c->in[0].nchw);
    return FU_OK;
}

static int op_prelu(op_ctx *c, tval *out) {
    if (c->n->n_inputs != 2) return fail_node(c->n, "expects 2 inputs", NULL);
    *out = prelu(c->g, c->in[0], c->in[1]);
    return FU_OK;
}

static int op_cast(op_ctx *c, tval *out) {
    const char *dst = fu_tfjs_attr_str(c->n, "DstT", "DT_FLOAT"), *src = fu_tfjs_attr_str(c->n, "SrcT", "DT_FLOAT");
    if (strcmp(dst, "DT_FLOAT") || strcmp(src, "DT_FLOAT")) return fail_node(c->n, "only float -> float casts are supported", NULL);
    *out = c->in[0];
    return FU_OK;
}

/* ---------- convolution, matmul, batch norm, pooling ---------- */

/* Reads [1, a, b, 1] NHWC list attributes (strides, dilations, ksize) as (a, b). */
static int hw_pair(op_ctx *c, const char *key, int *h, int *w) {
    const fu_tfjs_attr *a = fu_tfjs_attr_find(c->n, key);
    *h = *w = 1;
    if (!a) return FU_OK;
    if (a->kind != FU_TFJS_ATTR_LIST || a->n != 4 || !a->ints || a->ints[0] != 1 || a->ints[3] != 1 ||
        a->ints[1] < 1 || a->ints[2] < 1 || a->ints[1] > 4096 || a->ints[2] > 4096)
        return fail_node(c->n, "expects [1, h, w, 1] for ", key);
    *h = (int)a->ints[1];
    *w = (int)a->ints[2];
    return FU_OK;
}

/* Padding of a window op on an NHWC input of size (H, W). */
static int window_padding(op_ctx *c, int64_t H, int64_t W, int kh, int kw, int sh, int sw, int dh, int dw, int pad[4]) {
    const char *mode = fu_tfjs_attr_str(c->n, "padding", "VALID");
    memset(pad, 0, 4 * sizeof *pad);
    if (!strcmp(mode, "SAME")) {
        fu_same_padding(H, kh, sh, dh, &pad[0], &pad[1]);
        fu_same_padding(W, kw, sw, dw, &pad[2], &pad[3]);
    } else if (!strcmp(mode, "EXPLICIT")) {
        const fu_tfjs_attr *e = fu_tfjs_attr_find(c->n, "explicit_paddings");
        if (!e || e->kind != FU_TFJS_ATTR_LIST || e->n != 8 || !e->ints) return fail_node(c->n, "EXPLICIT padding needs 8 explicit_paddings", NULL);
        for (int i = 0; i < 4; i++) {
            if (e->ints[2 + i] < 0 || e->ints[2 + i] > 4096) return fail_node(c->n, "bad explicit padding", NULL);
            pad[i] = (int)e->ints[2 + i];
        }
    } else if (strcmp(mode, "VALID")) return fail_node(c->n, "unknown padding ", mode);
    return FU_OK;
}

static int check_nhwc(op_ctx *c) {
    if (strcmp(fu_tfjs_attr_str(c->n, "data_format", "NHWC"), "NHWC")) return fail_node(c->n, "only data_format NHWC is supported", NULL);
    if (!c->in[0].t || c->in[0].t->ndim != 4) return fail_node(c->n, "expects a rank-4 input", NULL);
    return FU_OK;
}

static tval batchnorm(fu_graph *g, tval x, prepared *p) {
    tval mult = {p->bn_mult, 0, &p->bn_mult_nchw}, shift = {p->bn_shift, 0, &p->bn_shift_nchw};
    return binary(g, fu_add, binary(g, fu_mul, x, mult), shift);
}

/* Fused ops after the main op: BiasAdd (arg 0), FusedBatchNorm (prepared), an activation
 * (Prelu: next arg). args are the inputs after the main op's own. */
static int apply_fused(op_ctx *c, tval *y, int first_arg, int bias_done) {
    const fu_tfjs_attr *a = fu_tfjs_attr_find(c->n, "fused_ops");
    if (!a || a->kind != FU_TFJS_ATTR_LIST) return FU_OK;
    int arg = first_arg;
    prepared *p = &c->net->prep[c->n - c->net->m->nodes];
    for (int i = 0; i < a->n; i++) {
        const char *f = a->strs ? a->strs[i] : "";
        if (!strcmp(f, "BiasAdd")) {
            if (arg >= c->n->n_inputs) return fail_node(c->n, "BiasAdd without its bias input", NULL);
            if (!bias_done) *y = binary(c->g, fu_add, *y, c->in[arg]);
            arg++;
        } else if (!strcmp(f, "FusedBatchNorm")) {
            *y = batchnorm(c->g, *y, p);
            arg += 4;
        } else {
            tval extra = arg < c->n->n_inputs ? c->in[arg] : val(NULL, 0);
            if (!strcmp(f, "Prelu")) arg++;
            int rc = activation(c, f, y, extra);
            if (rc) return rc;
        }
    }
    return FU_OK;
}

static int op_conv(op_ctx *c, tval *out) {
    int rc = check_nhwc(c);
    if (rc) return rc;
    const prepared *p = &c->net->prep[c->n - c->net->m->nodes];
    int sh, sw, dh, dw, pad[4];
    if ((rc = hw_pair(c, "strides", &sh, &sw)) || (rc = hw_pair(c, "dilations", &dh, &dw))) return rc;
    int64_t s[4];
    logical_shape(c->in[0], s);
    int kh = (int)p->filter->shape[2], kw = (int)p->filter->shape[3];
    if ((rc = window_padding(c, s[1], s[2], kh, kw, sh, sw, dh, dw, pad))) return rc;
    fu_conv_params cp = {.stride_h = sh, .stride_w = sw, .dilation_h = dh, .dilation_w = dw, .pad_top = pad[0],
                         .pad_bottom = pad[1], .pad_left = pad[2], .pad_right = pad[3], .groups = p->groups};
    /* A constant BiasAdd right after the conv goes into the conv op itself. */
    const prepared *bias = fused_index(c->n, "BiasAdd") == 0 ? const_input(c->net, c->n, 2) : NULL;
    if (bias && bias->konst->numel != p->filter->shape[0]) bias = NULL;
    *out = val(fu_conv2d(c->g, to_nchw(c->g, c->in[0]), p->filter, bias ? bias->konst : NULL, &cp), 1);
    return apply_fused(c, out, 2, bias != NULL);
}

static int op_matmul(op_ctx *c, tval *out) {
    if (c->n->n_inputs < 2) return fail_node(c->n, "expects 2 inputs", NULL);
    const prepared *p = &c->net->prep[c->n - c->net->m->nodes];
    static const int t2[2] = {1, 0};
    fu_tensor *a = to_nhwc(c->g, c->in[0]), *b = p->mat;
    if (a && a->ndim != 2) return fail_node(c->n, "a must be a matrix", NULL);
    if (fu_tfjs_attr_int(c->n, "transpose_a", 0)) a = fu_transpose(c->g, a, t2);
    if (!b) {
        b = to_nhwc(c->g, c->in[1]);
        if (b && b->ndim != 2) return fail_node(c->n, "b must be a matrix", NULL);
        if (fu_tfjs_attr_int(c->n, "transpose_b", 0)) b = fu_transpose(c->g, b, t2);
    }
    *out = val(fu_matmul(c->g, a, b), 0);
    return apply_fused(c, out, 2, 0);
}

static int op_batchnorm(op_ctx *c, tval *out) {
    if (fu_tfjs_attr_int(c->n, "is_training", 0)) return fail_node(c->n, "training mode is not supported", NULL);
    if (strcmp(fu_tfjs_attr_str(c->n, "data_format", "NHWC"), "NHWC")) return fail_node(c->n, "only data_format NHWC is supported", NULL);
    *out = batchnorm(c->g, c->in[0], &c->net->prep[c->n - c->net->m->nodes]);
    return FU_OK;
}

static int op_pool(op_ctx *c, tval *out) {
    int rc = check_nhwc(c), kh, kw, sh, sw, pad[4];
    if (rc || (rc = hw_pair(c, "ksize", &kh, &kw)) || (rc = hw_pair(c, "strides", &sh, &sw))) return rc;
    int64_t s[4];
    logical_shape(c->in[0], s);
    if ((rc = window_padding(c, s[1], s[2], kh, kw, sh, sw, 1, 1, pad))) return rc;
    /* TF leaves padded cells out of both the max and the average. */
    fu_pool_params pp = {kh, kw, sh, sw, pad[0], pad[1], pad[2], pad[3], 0};
    fu_tensor *x = to_nchw(c->g, c->in[0]);
    *out = val(!strcmp(c->n->op, "MaxPool") ? fu_max_pool2d(c->g, x, &pp) : fu_avg_pool2d(c->g, x, &pp), 1);
    return FU_OK;
}

/* ---------- reductions, softmax ---------- */

static int op_reduce(op_ctx *c, tval *out) {
    int64_t axes[FU_MAX_DIMS];
    int na, rc;
    tval x = c->in[0];
    if ((rc = const_ints(c, 1, axes, FU_MAX_DIMS, &na))) return rc;
    int keep = (int)fu_tfjs_attr_int(c->n, "keep_dims", 0), r = x.t->ndim;
    unsigned lmask = 0;
    for (int i = 0; i < na; i++) {
        int a;
        if ((rc = norm_axis(c, axes[i], r, &a))) return rc;
        lmask |= 1u << a;
    }
    if (!lmask) { *out = x; return FU_OK; }
    unsigned remain = ~lmask & ((1u << r) - 1), mask = lmask;
    /* Reducing NCHW directly keeps the logical order of what remains unless C remains with H or W. */
    int direct = x.nchw && (keep || !((remain & 8) && (remain & 6)));
    if (x.nchw && direct) {
        mask = 0;
        for (int i = 0; i < 4; i++) if (lmask & (1u << i)) mask |= 1u << nchw_of_nhwc[i];
    }
    fu_tensor *t = direct ? x.t : to_nhwc(c->g, x);
    const char *op = c->n->op;
    fu_tensor *y;
    if (!strcmp(op, "Mean")) y = fu_mean(c->g, t, mask, keep);
    else if (!strcmp(op, "Sum")) y = fu_sum(c->g, t, mask, keep);
    else if (!strcmp(op, "Max")) y = fu_max(c->g, t, mask, keep);
    else y = fu_neg(c->g, fu_max(c->g, fu_neg(c->g, t), mask, keep));   /* Min */
    *out = val(y, direct && keep);
    return FU_OK;
}

static int op_softmax(op_ctx *c, tval *out) {
    tval x = c->in[0];
    int log = !strcmp(c->n->op, "LogSoftmax"), axis = x.nchw ? 1 : -1;
    *out = val(log ? fu_log_softmax(c->g, x.t, axis) : fu_softmax(c->g, x.t, axis), x.nchw);
    return FU_OK;
}

/* ---------- layout-changing ops (work on NHWC) ---------- */

static int op_reshape(op_ctx *c, tval *out) {
    int64_t shape[FU_MAX_DIMS];
    int n, rc;
    if ((rc = const_ints(c, 1, shape, FU_MAX_DIMS, &n))) return rc;
    *out = val(fu_reshape(c->g, to_nhwc(c->g, c->in[0]), n, shape), 0);
    return FU_OK;
}

/* The value (as NHWC) reshaped to the logical shape s of rank r (r = 0: a scalar, stored as [1]). */
static tval reshape_dims(fu_graph *g, tval x, const int64_t *s, int r) {
    return val(fu_reshape(g, to_nhwc(g, x), r ? r : 1, r ? s : (int64_t[]){1}), 0);
}

static int op_squeeze(op_ctx *c, tval *out) {
    int64_t s[FU_MAX_DIMS], ns[FU_MAX_DIMS];
    int r = logical_shape(c->in[0], s), k = 0, rc;
    const fu_tfjs_attr *a = fu_tfjs_attr_find(c->n, "squeeze_dims");
    if (!a) a = fu_tfjs_attr_find(c->n, "axis");
    unsigned drop = 0;
    if (a && a->kind == FU_TFJS_ATTR_LIST && a->n > 0) {
        for (int i = 0; i < a->n; i++) {
            int ax;
            if (!a->ints || (rc = norm_axis(c, a->ints[i], r, &ax))) return a->ints ? rc : fail_node(c->n, "bad squeeze_dims", NULL);
            if (s[ax] != 1) return fail_node(c->n, "cannot squeeze a dimension that is not 1", NULL);
            drop |= 1u << ax;
        }
    } else for (int i = 0; i < r; i++) if (s[i] == 1) drop |= 1u << i;
    for (int i = 0; i < r; i++) if (!(drop & (1u << i))) ns[k++] = s[i];
    *out = reshape_dims(c->g, c->in[0], ns, k);
    return FU_OK;
}

static int op_expand_dims(op_ctx *c, tval *out) {
    int64_t s[FU_MAX_DIMS + 1], ax[1];
    int r = logical_shape(c->in[0], s), n, rc, a;
    if ((rc = const_ints(c, 1, ax, 1, &n)) || (rc = norm_axis(c, ax[0], r + 1, &a))) return rc;
    if (r + 1 > FU_MAX_DIMS) return fail_node(c->n, "too many dimensions", NULL);
    memmove(s + a + 1, s + a, (size_t)(r - a) * sizeof *s);
    s[a] = 1;
    *out = reshape_dims(c->g, c->in[0], s, r + 1);
    return FU_OK;
}

static int op_transpose(op_ctx *c, tval *out) {
    int64_t p[FU_MAX_DIMS];
    int n, rc, perm[FU_MAX_DIMS];
    if ((rc = const_ints(c, 1, p, FU_MAX_DIMS, &n))) return rc;
    if (n != c->in[0].t->ndim) return fail_node(c->n, "perm length differs from the rank", NULL);
    for (int i = 0; i < n; i++) perm[i] = (int)p[i];
    *out = val(fu_transpose(c->g, to_nhwc(c->g, c->in[0]), perm), 0);
    return FU_OK;
}

/* Concatenation of any number of values, FU_MAX_INPUTS at a time. */
static fu_tensor *concat_many(fu_graph *g, fu_tensor **xs, int n, int axis) {
    fu_tensor *acc = NULL;
    for (int i = 0; i < n;) {
        fu_tensor *part[FU_MAX_INPUTS];
        int k = 0;
        if (acc) part[k++] = acc;
        while (k < FU_MAX_INPUTS && i < n) part[k++] = xs[i++];
        acc = k == 1 ? part[0] : fu_concat(g, part, k, axis);
        if (!acc) return NULL;
    }
    return acc;
}

static int op_concat(op_ctx *c, tval *out) {
    int v2 = strcmp(c->n->op, "Concat") != 0, nv = c->n->n_inputs - 1, first = v2 ? 0 : 1, rc, n, axis;
    int64_t ax[1];
    if (nv < 1 || (rc = const_ints(c, v2 ? nv : 0, ax, 1, &n))) return nv < 1 ? fail_node(c->n, "nothing to concatenate", NULL) : rc;
    int r = c->in[first].t->ndim, any_nchw = 0, all4 = 1;
    if ((rc = norm_axis(c, ax[0], r, &axis))) return rc;
    for (int i = 0; i < nv; i++) {
        any_nchw |= c->in[first + i].nchw;
        all4 &= c->in[first + i].t->ndim == 4;
    }
    int nchw = any_nchw && all4;
    fu_tensor **xs = fu_graph_alloc(c->g, (size_t)nv * sizeof *xs);
    if (!xs) return FU_E_INTERNAL;
    for (int i = 0; i < nv; i++) xs[i] = nchw ? to_nchw(c->g, c->in[first + i]) : to_nhwc(c->g, c->in[first + i]);
    *out = val(concat_many(c->g, xs, nv, nchw ? nchw_of_nhwc[axis] : axis), nchw);
    return FU_OK;
}

static int op_pack(op_ctx *c, tval *out) {
    int nv = c->n->n_inputs, axis, rc;
    int64_t s[FU_MAX_DIMS + 1];
    int r = logical_shape(c->in[0], s);
    if ((rc = norm_axis(c, fu_tfjs_attr_int(c->n, "axis", 0), r + 1, &axis))) return rc;
    if (r + 1 > FU_MAX_DIMS) return fail_node(c->n, "too many dimensions", NULL);
    memmove(s + axis + 1, s + axis, (size_t)(r - axis) * sizeof *s);
    s[axis] = 1;
    fu_tensor **xs = fu_graph_alloc(c->g, (size_t)nv * sizeof *xs);
    if (!xs) return FU_E_INTERNAL;
    for (int i = 0; i < nv; i++) xs[i] = reshape_dims(c->g, c->in[i], s, r + 1).t;
    *out = val(concat_many(c->g, xs, nv, axis), 0);
    return FU_OK;
}

static int op_pad(op_ctx *c, tval *out) {
    const prepared *p = const_input(c->net, c->n, 1);
    tval x = c->in[0];
    int r = x.t->ndim;
    if (!p || p->w->ndim != 2 || p->w->shape[0] != r || p->w->shape[1] != 2) return fail_node(c->n, "paddings must be a constant [rank, 2]", NULL);
    fu_pad_mode mode = FU_PAD_CONSTANT;
    float value = 0;
    if (!strcmp(c->n->op, "MirrorPad")) {
        if (strcmp(fu_tfjs_attr_str(c->n, "mode", ""), "REFLECT")) return fail_node(c->n, "only REFLECT mirror padding is supported", NULL);
        mode = FU_PAD_REFLECT;
    } else if (c->n->n_inputs > 2) {
        const prepared *v = const_input(c->net, c->n, 2);
        if (!v || v->w->numel != 1) return fail_node(c->n, "the pad value must be a constant scalar", NULL);
        value = v->w->data[0];
    }
    int64_t pads[2 * FU_MAX_DIMS];
    for (int i = 0; i < r; i++) {
        int li = x.nchw ? nhwc_of_nchw[i] : i;   /* physical dim i is logical dim li */
        pads[2 * i] = const_int(p, 2 * li);
        pads[2 * i + 1] = const_int(p, 2 * li + 1);
    }
    *out = val(fu_pad(c->g, x.t, pads, mode, value), x.nchw);
    return FU_OK;
}

static int op_strided_slice(op_ctx *c, tval *out) {
    int64_t b[FU_MAX_DIMS], e[FU_MAX_DIMS], st[FU_MAX_DIMS], s[FU_MAX_DIMS], ns[FU_MAX_DIMS];
    int nb, ne, nst, rc, r = logical_shape(c->in[0], s);
    if ((rc = const_ints(c, 1, b, FU_MAX_DIMS, &nb)) || (rc = const_ints(c, 2, e, FU_MAX_DIMS, &ne)) ||
        (rc = const_ints(c, 3, st, FU_MAX_DIMS, &nst)))
        return rc;
    if (nb != ne || nb != nst || nb > r) return fail_node(c->n, "begin, end and strides must have one length <= rank", NULL);
    if (fu_tfjs_attr_int(c->n, "ellipsis_mask", 0) || fu_tfjs_attr_int(c->n, "new_axis_mask", 0))
        return fail_node(c->n, "ellipsis_mask and new_axis_mask are not supported", NULL);
    int64_t bm = fu_tfjs_attr_int(c->n, "begin_mask", 0), em = fu_tfjs_attr_int(c->n, "end_mask", 0);
    int64_t sm = fu_tfjs_attr_int(c->n, "shrink_axis_mask", 0);
    fu_tensor *t = to_nhwc(c->g, c->in[0]);
    int k = 0;
    for (int i = 0; i < r; i++) {
        int64_t lo = 0, hi = s[i], step = 1;
        if (i < nb) {
            step = st[i];
            if (step < 1) return fail_node(c->n, "only positive strides are supported", NULL);
            if (sm & (1 << i)) {
                lo = b[i] < 0 ? b[i] + s[i] : b[i];
                if (lo < 0 || lo >= s[i]) return fail_node(c->n, "shrink index out of range", NULL);
                hi = lo + 1;
            } else {
                lo = bm & (1 << i) ? 0 : b[i];
                hi = em & (1 << i) ? s[i] : e[i];
            }
        }
        if (lo != 0 || hi < s[i] || step != 1) t = fu_slice(c->g, t, i, lo, hi, step);
        if (!(sm & (1 << i)) && t) ns[k++] = t->shape[i];
    }
    *out = val(k == r ? t : fu_reshape(c->g, t, k ? k : 1, k ? ns : (int64_t[]){1}), 0);
    return FU_OK;
}

static int op_slice(op_ctx *c, tval *out) {
    int64_t b[FU_MAX_DIMS], sz[FU_MAX_DIMS], s[FU_MAX_DIMS];
    int nb, ns, rc, r = logical_shape(c->in[0], s);
    if ((rc = const_ints(c, 1, b, FU_MAX_DIMS, &nb)) || (rc = const_ints(c, 2, sz, FU_MAX_DIMS, &ns))) return rc;
    if (nb != r || ns != r) return fail_node(c->n, "begin and size must have the input's rank", NULL);
    fu_tensor *t = to_nhwc(c->g, c->in[0]);
    for (int i = 0; i < r; i++) {
        int64_t end = sz[i] < 0 ? s[i] : b[i] + sz[i];
        if (b[i] < 0 || end > s[i] || end < b[i]) return fail_node(c->n, "slice out of range", NULL);
        if (b[i] != 0 || end != s[i]) t = fu_slice(c->g, t, i, b[i], end, 1);
    }
    *out = val(t, 0);
    return FU_OK;
}

/* ---------- dispatch ---------- */

static int convert_node(op_ctx *c, tval *out) {
    const char *op = c->n->op;
    for (size_t i = 0; i < sizeof binary_ops / sizeof *binary_ops; i++)
        if (!strcmp(op, binary_ops[i].op)) return op_binary(c, binary_ops[i].f, out);
    for (size_t i = 0; i < sizeof unary_ops / sizeof *unary_ops; i++)
        if (!strcmp(op, unary_ops[i].op)) return op_unary(c, unary_ops[i].f, out);
    if (is_conv(op)) return op_conv(c, out);
    if (!strcmp(op, "MatMul") || !strcmp(op, "_FusedMatMul")) return op_matmul(c, out);
    if (!strcmp(op, "MaxPool") || !strcmp(op, "AvgPool")) return op_pool(c, out);
    if (!strcmp(op, "Mean") || !strcmp(op, "Sum") || !strcmp(op, "Max") || !strcmp(op, "Min")) return op_reduce(c, out);
    if (!strcmp(op, "Softmax") || !strcmp(op, "LogSoftmax")) return op_softmax(c, out);
    if (!strcmp(op, "LeakyRelu")) return op_leaky_relu(c, out);
    if (!strcmp(op, "Prelu")) return op_prelu(c, out);
    if (!strcmp(op, "Cast")) return op_cast(c, out);
    if (!strncmp(op, "FusedBatchNorm", 14)) return op_batchnorm(c, out);
    if (!strcmp(op, "Reshape")) return op_reshape(c, out);
    if (!strcmp(op, "Squeeze")) return op_squeeze(c, out);
    if (!strcmp(op, "ExpandDims")) return op_expand_dims(c, out);
    if (!strcmp(op, "Transpose")) return op_transpose(c, out);
    if (!strcmp(op, "ConcatV2") || !strcmp(op, "Concat")) return op_concat(c, out);
    if (!strcmp(op, "Pack")) return op_pack(c, out);
    if (!strcmp(op, "Pad") || !strcmp(op, "PadV2") || !strcmp(op, "MirrorPad")) return op_pad(c, out);
    if (!strcmp(op, "StridedSlice")) return op_strided_slice(c, out);
    if (!strcmp(op, "Slice")) return op_slice(c, out);
    return fu_fail(FU_E_INPUT, "tfjs: op '%.60s' (node '%.100s') is not supported", op, c->n->name);
}

/* Value of a node whose inputs are all evaluated. */
static int eval_node(fu_tfjs_net *net, fu_graph *g, int id, fu_tensor *x) {
    const fu_tfjs_node *n = &net->m->nodes[id];
    if (id == net->input) {
        net->vals[id] = val(x, x->ndim == 4);
        return FU_OK;
    }
    if (net->prep[id].konst) {
        net->vals[id] = (tval){net->prep[id].konst, 0, &net->prep[id].konst_nchw};
        return FU_OK;
    }
    if (n->n_inputs < 1) return fail_node(n, "has no inputs", NULL);
    tval *in = fu_graph_alloc(g, (size_t)n->n_inputs * sizeof *in);
    if (!in) return FU_E_INTERNAL;
    for (int k = 0; k < n->n_inputs; k++) {
        if (n->inputs[k].index != 0) return fail_node(n, "only output 0 of an op can be used, here: ", n->inputs[k].node);
        in[k] = net->vals[fu_tfjs_node_id(net->m, n->inputs[k].node)];
    }
    op_ctx c = {net, g, n, in};
    int rc = convert_node(&c, &net->vals[id]);
    if (!rc && !net->vals[id].t) rc = fu_last_code() ? fu_last_code() : FU_E_INTERNAL;
    if (rc && !strstr(fu_last_error(), n->name)) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", fu_last_error());
        fu_fail(rc, "tfjs node '%.100s' (%s): %s", n->name, n->op, msg);
    }
    return rc;
}

/* Depth-first, iterative: a node is evaluated after all of its inputs. */
static int eval_from(fu_tfjs_net *net, fu_graph *g, int root, fu_tensor *x) {
    int sp = 0;
    if (net->state[root] == 2) return FU_OK;
    net->stack[sp++] = root;
    net->state[root] = 1;
    while (sp > 0) {
        int id = net->stack[sp - 1], pending = 0;
        const fu_tfjs_node *n = &net->m->nodes[id];
        for (int k = 0; k < n->n_inputs && id != net->input && !net->prep[id].konst; k++) {
            int in = fu_tfjs_node_id(net->m, n->inputs[k].node);
            if (in < 0) return fail_node(n, "input names an unknown node: ", n->inputs[k].node);
            if (net->state[in] == 1) return fail_node(n, "the graph has a cycle through this node", NULL);
            if (net->state[in] == 0) {
                net->state[in] = 1;
                net->stack[sp++] = in;   /* each node is pushed once, so the stack fits n_nodes */
                pending = 1;
                break;
            }
        }
        if (pending) continue;
        int rc = eval_node(net, g, id, x);
        if (rc) return rc;
        net->state[id] = 2;
        sp--;
    }
    return FU_OK;
}

static int check_input(const fu_tfjs_net *net, const fu_tensor *x) {
    int64_t s[FU_MAX_DIMS];
    int r = fu_tfjs_net_input_shape(net, s);
    if (r < 0) return FU_OK;
    if (x->ndim != r) return fu_fail(FU_E_INPUT, "tfjs: input has rank %d, the model's placeholder %d", x->ndim, r);
    for (int i = 0; i < r; i++) {
        int64_t have = r == 4 ? x->shape[nchw_of_nhwc[i]] : x->shape[i];
        if (s[i] >= 0 && have != s[i]) {
            char buf[96];
            return fu_fail(FU_E_INPUT, "tfjs: input %s does not fit the placeholder (dim %d of the NHWC shape must be %lld%s)",
                           fu_shape_str(x, buf, sizeof buf), i, (long long)s[i], r == 4 ? "; images are given NCHW" : "");
        }
    }
    return FU_OK;
}

int fu_tfjs_net_forward(fu_tfjs_net *net, fu_graph *g, fu_tensor *x, int n_out, const char *const *outputs, fu_tensor **results) {
    if (!net || !g || !x || n_out < 1 || !outputs || !results) return fu_fail(FU_E_INPUT, "tfjs forward: missing argument");
    int rc = check_input(net, x);
    if (rc) return rc;
    memset(net->state, 0, (size_t)net->m->n_nodes);
    for (int i = 0; i < n_out; i++) {
        char name[512];
        snprintf(name, sizeof name, "%s", outputs[i]);
        size_t len = strlen(name);
        if (len > 2 && !strcmp(name + len - 2, ":0")) name[len - 2] = 0;
        int id = fu_tfjs_node_id(net->m, name);
        if (id < 0) return fu_fail(FU_E_INPUT, "tfjs: no node named '%.200s' in %s", outputs[i], net->m->path);
        if ((rc = eval_from(net, g, id, x))) return rc;
        results[i] = to_nhwc(g, net->vals[id]);
        if (!results[i]) return fu_last_code() ? fu_last_code() : FU_E_INTERNAL;
    }
    return FU_OK;
}
