/* GEMM-based ops: fu_sgemm (oneDNN), batched matmul and linear layers.
 *
 * Layouts: a [..., M, K], b [K, N] (shared) or [..., K, N] (batched), out [..., M, N];
 * linear: x [..., in], w [out, in] (PyTorch), out [..., out]. */
#include "ops.h"
#include "error.h"
#include <dnnl.h>
#include <string.h>

int fu_sgemm(char transa, char transb, int64_t M, int64_t N, int64_t K, float alpha,
             const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    if (M < 0 || N < 0 || K < 0) return fu_fail(FU_E_INPUT, "sgemm: negative size");
    if (M == 0 || N == 0) return FU_OK;
    if (!A || !B || !C) return fu_fail(FU_E_INPUT, "sgemm: NULL matrix");
    int ta = transa == 't' || transa == 'T', tb = transb == 't' || transb == 'T';
    if (lda < (ta ? M : K) || ldb < (tb ? K : N) || ldc < N) return fu_fail(FU_E_INPUT, "sgemm: leading dimension too small");
    if (K == 0) {  /* oneDNN rejects K = 0; the product is empty */
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) C[i * ldc + j] = beta == 0 ? 0 : beta * C[i * ldc + j];
        return FU_OK;
    }
    dnnl_status_t st = dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    if (st != dnnl_success) return fu_fail(FU_E_INTERNAL, "sgemm: oneDNN error %d", (int)st);
    return FU_OK;
}

/* ---- matmul ---- ip[0] = batch count, ip[1..3] = M, K, N, ip[4] = b is batched */

static int matmul_forward(fu_node *n) {
    int64_t batch = n->ip[0], M = n->ip[1], K = n->ip[2], N = n->ip[3], bb = n->ip[4];
    for (int64_t i = 0; i < batch; i++) {
        const float *a = n->in[0]->data + i * M * K, *b = n->in[1]->data + (bb ? i * K * N : 0);
        int rc = fu_sgemm('n', 'n', M, N, K, 1, a, K, b, N, 0, n->out->data + i * M * N, N);
        if (rc != FU_OK) return rc;
    }
    return FU_OK;
}

static void matmul_backward(fu_node *n) {
    int64_t batch = n->ip[0], M = n->ip[1], K = n->ip[2], N = n->ip[3], bb = n->ip[4];
    float *ga = fu_in_grad(n, 0), *gb = fu_in_grad(n, 1);
    for (int64_t i = 0; i < batch; i++) {
        const float *a = n->in[0]->data + i * M * K, *b = n->in[1]->data + (bb ? i * K * N : 0);
        const float *gy = n->out->grad + i * M * N;
        if (ga) fu_sgemm('n', 't', M, K, N, 1, gy, N, b, N, 1, ga + i * M * K, K);          /* dA = dY B^T */
        if (gb) fu_sgemm('t', 'n', K, N, M, 1, a, K, gy, N, 1, gb + (bb ? i * K * N : 0), N); /* dB += A^T dY */
    }
}

static const fu_op op_matmul = {"matmul", matmul_forward, matmul_backward, NULL};

fu_tensor *fu_matmul(fu_graph *g, fu_tensor *a, fu_tensor *b) {
    if (!a || !b) return fu_node_run(fu_node_new(g, &op_matmul, (fu_tensor *[]){a, b}, 2, 0, NULL));
    char sa[96], sb[96];
    if (a->ndim < 2 || b->ndim < 2) return fu_fail_null(FU_E_INPUT, "matmul: operands need at least 2 dims, got %s and %s", fu_shape_str(a, sa, sizeof sa), fu_shape_str(b, sb, sizeof sb));
    int64_t M = fu_dim(a, -2), K = fu_dim(a, -1), N = fu_dim(b, -1), batch = (M > 0 && K > 0) ? a->numel / (M * K) : 0;
    int batched = b->ndim > 2;
    int ok = fu_dim(b, -2) == K;
    if (batched) {
        ok &= b->ndim == a->ndim;
        for (int i = 0; ok && i < a->ndim - 2; i++) ok &= a->shape[i] == b->shape[i];
    }
    if (!ok) return fu_fail_null(FU_E_INPUT, "matmul: shapes %s and %s do not match", fu_shape_str(a, sa, sizeof sa), fu_shape_str(b, sb, sizeof sb));
    int64_t shape[FU_MAX_DIMS];
    memcpy(shape, a->shape, sizeof shape);
    shape[a->ndim - 1] = N;
    fu_node *n = fu_node_new(g, &op_matmul, (fu_tensor *[]){a, b}, 2, a->ndim, shape);
    if (!n) return NULL;
    n->ip[0] = batch;
    n->ip[1] = M; n->ip[2] = K; n->ip[3] = N; n->ip[4] = batched;
    return fu_node_run(n);
}

/* ---- linear: y = x W^T + b. ip[0] = rows, ip[1] = in, ip[2] = out ---- */

static int linear_forward(fu_node *n) {
    int64_t R = n->ip[0], I = n->ip[1], O = n->ip[2];
    float *y = n->out->data;
    if (n->n_in == 3) {
        const float *b = n->in[2]->data;
        for (int64_t r = 0; r < R; r++) memcpy(y + r * O, b, (size_t)O * sizeof(float));
    }
    return fu_sgemm('n', 't', R, O, I, 1, n->in[0]->data, I, n->in[1]->data, I, n->n_in == 3 ? 1 : 0, y, O);
}

static void linear_backward(fu_node *n) {
    int64_t R = n->ip[0], I = n->ip[1], O = n->ip[2];
    const float *gy = n->out->grad;
    float *gx = fu_in_grad(n, 0), *gw = fu_in_grad(n, 1), *gb = n->n_in == 3 ? fu_in_grad(n, 2) : NULL;
    if (gx) fu_sgemm('n', 'n', R, I, O, 1, gy, O, n->in[1]->data, I, 1, gx, I);  /* dX = dY W */
    if (gw) fu_sgemm('t', 'n', O, I, R, 1, gy, O, n->in[0]->data, I, 1, gw, I);  /* dW += dY^T X */
    if (gb)
        for (int64_t r = 0; r < R; r++)
            for (int64_t o = 0; o < O; o++) gb[o] += gy[r * O + o];
}

static const fu_op op_linear = {"linear", linear_forward, linear_backward, NULL};

fu_tensor *fu_linear(fu_graph *g, fu_tensor *x, fu_tensor *w, fu_tensor *b) {
    fu_tensor *in[3] = {x, w, b};
    int n_in = b ? 3 : 2;
    if (!x || !w) return fu_node_run(fu_node_new(g, &op_linear, in, 2, 0, NULL));
    char sx[96], sw[96];
    if (x->ndim < 1 || w->ndim != 2 || fu_dim(x, -1) != w->shape[1] || (b && (b->numel != w->shape[0])))
        return fu_fail_null(FU_E_INPUT, "linear: input %s, weight %s%s do not match (weight is [out, in])",
                            fu_shape_str(x, sx, sizeof sx), fu_shape_str(w, sw, sizeof sw), b ? " and bias" : "");
    int64_t shape[FU_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[x->ndim - 1] = w->shape[0];
    fu_node *n = fu_node_new(g, &op_linear, in, n_in, x->ndim, shape);
    if (!n) return NULL;
    n->ip[1] = w->shape[1];
    n->ip[2] = w->shape[0];
    n->ip[0] = n->ip[1] ? x->numel / n->ip[1] : 0;
    return fu_node_run(n);
}
