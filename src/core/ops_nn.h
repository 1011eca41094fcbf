/* Dense layers and normalisation (ops_matmul.c, ops_norm.c). */
#ifndef FU_OPS_NN_H
#define FU_OPS_NN_H
#include "graph.h"

/* Row-major single-precision GEMM: C = alpha*op(A)*op(B) + beta*C, op = transpose if 't'.
 * Goes to oneDNN: 2048^3 on this 2-core Zen4 machine, 2 threads, measured 208 GFLOP/s against
 * 205 for Debian's OpenBLAS, so one library serves GEMM and convolutions. */
int fu_sgemm(char transa, char transb, int64_t M, int64_t N, int64_t K, float alpha,
             const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

/* a [..., M, K] x b [K, N] or [..., K, N] (batch dims equal) -> [..., M, N]. */
fu_tensor *fu_matmul(fu_graph *g, fu_tensor *a, fu_tensor *b);
/* x [..., in] with w [out, in] (PyTorch layout) and optional bias [out] -> [..., out]. */
fu_tensor *fu_linear(fu_graph *g, fu_tensor *x, fu_tensor *w, fu_tensor *b);

/* Per (n, c) over H*W, biased variance, no affine (StyleGAN's instance norm). */
fu_tensor *fu_instance_norm(fu_graph *g, fu_tensor *x, float eps);
/* Batch norm over dim 1 of [N,C,...]. Training (g->training): batch statistics (biased for
 * normalising), running stats updated with momentum using the unbiased variance, as PyTorch.
 * Eval: running statistics. gamma/beta may be NULL (1 and 0). */
fu_tensor *fu_batch_norm(fu_graph *g, fu_tensor *x, fu_tensor *gamma, fu_tensor *beta,
                         fu_tensor *running_mean, fu_tensor *running_var, float momentum, float eps);
/* Inverted dropout with probability p in training, identity in eval; mask from g->seed. */
fu_tensor *fu_dropout(fu_graph *g, fu_tensor *x, float p);
/* x / max(||x||_2, eps) along axis. */
fu_tensor *fu_l2_normalize(fu_graph *g, fu_tensor *x, int axis, float eps);

#endif
