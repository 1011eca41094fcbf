/* Small dense linear algebra in double precision for statistics outside the graph (latent
 * priors, Frechet distances): row-major n x n matrices, n up to a few hundred. These are not
 * graph ops (nothing differentiates through them), so they have no backward. */
#ifndef FU_CORE_LINALG_H
#define FU_CORE_LINALG_H

/* In place: a (symmetric positive definite) -> its lower Cholesky factor L (a = L L^T); the
 * strict upper triangle is zeroed. FU_E_INPUT if a pivot is not positive (not PD). */
int fu_cholesky(double *a, int n);

/* Eigen-decomposition of a symmetric matrix by cyclic Jacobi rotations: a = V diag(w) V^T with
 * V's columns the eigenvectors (vecs row-major, vecs[i*n+k] = component i of vector k). a is
 * destroyed. Converges to full double precision in ~10 sweeps for n ~ 100. FU_OK, or
 * FU_E_INTERNAL (out of memory, or no convergence in 100 sweeps). */
int fu_sym_eigen(double *a, int n, double *w, double *vecs);

/* Frechet distance between N(mu1, c1) and N(mu2, c2) in d dimensions (c1, c2 symmetric PSD):
 *   FD = |mu1 - mu2|^2 + tr(c1) + tr(c2) - 2 tr((c1^(1/2) c2 c1^(1/2))^(1/2))
 * with the square roots from eigen-decompositions (negative eigenvalues from rounding clamped to
 * 0). The cross term is the usual tr((c1 c2)^(1/2)) written with symmetric matrices only. */
int fu_frechet_distance(const double *mu1, const double *c1, const double *mu2, const double *c2, int d, double *out);

#endif
