/* Binary elementwise ops with numpy broadcasting.
 *
 * Both operands are viewed in the output's rank with stride 0 along broadcast dimensions; the
 * loops run an odometer over all but the last dimension and a plain inner loop over the last,
 * which the compiler vectorises for the common same-shape and per-channel cases. */
#include "ops.h"
#include "error.h"
#include <string.h>

enum { BIN_ADD, BIN_SUB, BIN_MUL, BIN_DIV, BIN_MAX, BIN_MIN };

int fu_broadcast_shape(const char *op, const fu_tensor *a, const fu_tensor *b, int64_t *out) {
    int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    for (int i = 0; i < nd; i++) {
        int64_t da = fu_dim(a, i - nd), db = fu_dim(b, i - nd);
        if (i - nd < -a->ndim) da = 1;
        if (i - nd < -b->ndim) db = 1;
        if (da != db && da != 1 && db != 1) {
            char sa[96], sb[96];
            fu_fail(FU_E_INPUT, "%s: shapes %s and %s do not broadcast", op, fu_shape_str(a, sa, sizeof sa), fu_shape_str(b, sb, sizeof sb));
            return -1;
        }
        out[i] = da == 1 ? db : da;
    }
    return nd;
}

/* Strides of t viewed in rank nd against out shape: 0 where t is broadcast. */
static void view_strides(const fu_tensor *t, int nd, const int64_t *oshape, int64_t *st) {
    int64_t s = 1;
    for (int i = nd - 1; i >= 0; i--) {
        int ti = i - (nd - t->ndim);
        int64_t d = ti >= 0 ? t->shape[ti] : 1;
        st[i] = (d == 1 && oshape[i] != 1) ? 0 : s;
        s *= d;
    }
}

typedef struct { int nd; int64_t shape[FU_MAX_DIMS], sa[FU_MAX_DIMS], sb[FU_MAX_DIMS]; } bcast;

static void bcast_init(bcast *bc, const fu_node *n) {
    const fu_tensor *o = n->out;
    bc->nd = o->ndim;
    memcpy(bc->shape, o->shape, sizeof bc->shape);
    view_strides(n->in[0], o->ndim, o->shape, bc->sa);
    view_strides(n->in[1], o->ndim, o->shape, bc->sb);
}

/* Row iterator over all but the last dimension: ia, ib are the operands' offsets of the row. */
typedef struct { int64_t idx[FU_MAX_DIMS], ia, ib; } row_iter;

static void row_next(const bcast *bc, row_iter *it) {
    for (int d = bc->nd - 2; d >= 0; d--) {
        it->ia += bc->sa[d];
        it->ib += bc->sb[d];
        if (++it->idx[d] < bc->shape[d]) return;
        it->ia -= bc->sa[d] * bc->shape[d];
        it->ib -= bc->sb[d] * bc->shape[d];
        it->idx[d] = 0;
    }
}

static int64_t row_count(const bcast *bc) {
    int64_t rows = 1;
    for (int d = 0; d < bc->nd - 1; d++) rows *= bc->shape[d];
    return rows;
}

static float apply(int kind, float a, float b) {
    switch (kind) {
    case BIN_ADD: return a + b;
    case BIN_SUB: return a - b;
    case BIN_MUL: return a * b;
    case BIN_DIV: return a / b;
    case BIN_MAX: return a >= b ? a : b;
    default: return a <= b ? a : b;
    }
}

static int binary_forward(fu_node *n) {
    const float *a = n->in[0]->data, *b = n->in[1]->data;
    float *y = n->out->data;
    int kind = (int)n->ip[0];
    if (fu_same_shape(n->in[0], n->in[1])) {
        int64_t N = n->out->numel;
        #pragma omp parallel for schedule(static) if (N > 65536)
        for (int64_t i = 0; i < N; i++) y[i] = apply(kind, a[i], b[i]);
        return FU_OK;
    }
    bcast bc;
    bcast_init(&bc, n);
    int64_t len = bc.shape[bc.nd - 1], sa = bc.sa[bc.nd - 1], sb = bc.sb[bc.nd - 1];
    row_iter it = {{0}, 0, 0};
    for (int64_t r = 0, rows = row_count(&bc); r < rows; r++, row_next(&bc, &it)) {
        float *yr = y + r * len;
        const float *ar = a + it.ia, *br = b + it.ib;
        for (int64_t j = 0; j < len; j++) yr[j] = apply(kind, ar[j * sa], br[j * sb]);
    }
    return FU_OK;
}

/* d(out)/da and d(out)/db for one element. */
static void partials(int kind, float a, float b, float *da, float *db) {
    switch (kind) {
    case BIN_ADD: *da = 1; *db = 1; break;
    case BIN_SUB: *da = 1; *db = -1; break;
    case BIN_MUL: *da = b; *db = a; break;
    case BIN_DIV: *da = 1 / b; *db = -a / (b * b); break;
    case BIN_MAX: *da = a >= b; *db = a < b; break;
    default: *da = a <= b; *db = a > b; break;
    }
}

static void binary_backward(fu_node *n) {
    const float *a = n->in[0]->data, *b = n->in[1]->data, *gy = n->out->grad;
    float *ga = fu_in_grad(n, 0), *gb = fu_in_grad(n, 1);
    int kind = (int)n->ip[0];
    if (fu_same_shape(n->in[0], n->in[1])) {
        int64_t N = n->out->numel;
        #pragma omp parallel for schedule(static) if (N > 65536)
        for (int64_t i = 0; i < N; i++) {
            float da, db;
            partials(kind, a[i], b[i], &da, &db);
            if (ga) ga[i] += gy[i] * da;
            if (gb) gb[i] += gy[i] * db;
        }
        return;
    }
    /* Broadcast operands receive sums over the broadcast axes: accumulate serially. */
    bcast bc;
    bcast_init(&bc, n);
    int64_t len = bc.shape[bc.nd - 1], sa = bc.sa[bc.nd - 1], sb = bc.sb[bc.nd - 1];
    row_iter it = {{0}, 0, 0};
    for (int64_t r = 0, rows = row_count(&bc); r < rows; r++, row_next(&bc, &it)) {
        const float *gr = gy + r * len;
        for (int64_t j = 0; j < len; j++) {
            float da, db;
            partials(kind, a[it.ia + j * sa], b[it.ib + j * sb], &da, &db);
            if (ga) ga[it.ia + j * sa] += gr[j] * da;
            if (gb) gb[it.ib + j * sb] += gr[j] * db;
        }
    }
}

static const fu_op op_binary = {"binary", binary_forward, binary_backward, NULL};

static fu_tensor *binary(fu_graph *g, fu_tensor *a, fu_tensor *b, int kind, const char *name) {
    if (!a || !b) return fu_node_run(fu_node_new(g, &op_binary, (fu_tensor *[]){a, b}, 2, 0, NULL));
    int64_t shape[FU_MAX_DIMS];
    int nd = fu_broadcast_shape(name, a, b, shape);
    if (nd < 0) return NULL;
    fu_node *n = fu_node_new(g, &op_binary, (fu_tensor *[]){a, b}, 2, nd, shape);
    if (!n) return NULL;
    n->ip[0] = kind;
    return fu_node_run(n);
}

fu_tensor *fu_add(fu_graph *g, fu_tensor *a, fu_tensor *b) { return binary(g, a, b, BIN_ADD, "add"); }
fu_tensor *fu_sub(fu_graph *g, fu_tensor *a, fu_tensor *b) { return binary(g, a, b, BIN_SUB, "sub"); }
fu_tensor *fu_mul(fu_graph *g, fu_tensor *a, fu_tensor *b) { return binary(g, a, b, BIN_MUL, "mul"); }
fu_tensor *fu_div(fu_graph *g, fu_tensor *a, fu_tensor *b) { return binary(g, a, b, BIN_DIV, "div"); }
fu_tensor *fu_maximum(fu_graph *g, fu_tensor *a, fu_tensor *b) { return binary(g, a, b, BIN_MAX, "maximum"); }
fu_tensor *fu_minimum(fu_graph *g, fu_tensor *a, fu_tensor *b) { return binary(g, a, b, BIN_MIN, "minimum"); }
