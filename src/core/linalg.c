#include "linalg.h"
#include "core/error.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

int fu_cholesky(double *a, int n) {
    for (int j = 0; j < n; j++) {
        double d = a[j * n + j];
        for (int k = 0; k < j; k++) d -= a[j * n + k] * a[j * n + k];
        if (!(d > 0)) return fu_fail(FU_E_INPUT, "cholesky: matrix is not positive definite (pivot %d is %g)", j, d);
        double l = sqrt(d);
        a[j * n + j] = l;
        for (int i = j + 1; i < n; i++) {
            double s = a[i * n + j];
            for (int k = 0; k < j; k++) s -= a[i * n + k] * a[j * n + k];
            a[i * n + j] = s / l;
        }
        for (int k = j + 1; k < n; k++) a[j * n + k] = 0;
    }
    return FU_OK;
}

static double off_diagonal_norm2(const double *a, int n) {
    double s = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            if (i != j) s += a[i * n + j] * a[i * n + j];
    return s;
}

/* One rotation zeroing a[p][q] (Golub & Van Loan's symmetric Schur step), applied to a and V. */
static void jacobi_rotate(double *a, double *v, int n, int p, int q) {
    double apq = a[p * n + q];
    if (apq == 0) return;
    double tau = (a[q * n + q] - a[p * n + p]) / (2 * apq);
    double t = (tau >= 0 ? 1.0 : -1.0) / (fabs(tau) + sqrt(1 + tau * tau));
    double c = 1 / sqrt(1 + t * t), s = t * c;
    for (int k = 0; k < n; k++) {   /* columns p, q of a */
        double akp = a[k * n + p], akq = a[k * n + q];
        a[k * n + p] = c * akp - s * akq;
        a[k * n + q] = s * akp + c * akq;
    }
    for (int k = 0; k < n; k++) {   /* rows p, q of a */
        double apk = a[p * n + k], aqk = a[q * n + k];
        a[p * n + k] = c * apk - s * aqk;
        a[q * n + k] = s * apk + c * aqk;
    }
    for (int k = 0; k < n; k++) {
        double vkp = v[k * n + p], vkq = v[k * n + q];
        v[k * n + p] = c * vkp - s * vkq;
        v[k * n + q] = s * vkp + c * vkq;
    }
}

int fu_sym_eigen(double *a, int n, double *w, double *vecs) {
    for (int i = 0; i < n * n; i++) vecs[i] = (i / n == i % n);
    double total = 0;
    for (int i = 0; i < n * n; i++) total += a[i] * a[i];
    for (int sweep = 0; sweep < 100; sweep++) {
        if (off_diagonal_norm2(a, n) <= 1e-30 * total) {
            for (int i = 0; i < n; i++) w[i] = a[i * n + i];
            return FU_OK;
        }
        for (int p = 0; p < n - 1; p++)
            for (int q = p + 1; q < n; q++) jacobi_rotate(a, vecs, n, p, q);
    }
    return fu_fail(FU_E_INTERNAL, "eigen: Jacobi did not converge for a %dx%d matrix", n, n);
}

/* out = V diag(f(w)) V^T with f = sqrt of the clamped eigenvalues. */
static void sqrt_from_eigen(const double *w, const double *v, int n, double *out) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int k = 0; k < n; k++) s += v[i * n + k] * sqrt(w[k] > 0 ? w[k] : 0) * v[j * n + k];
            out[i * n + j] = s;
        }
}

/* c = a b for n x n. */
static void matmul_sq(const double *a, const double *b, int n, double *c) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int k = 0; k < n; k++) s += a[i * n + k] * b[k * n + j];
            c[i * n + j] = s;
        }
}

int fu_frechet_distance(const double *mu1, const double *c1, const double *mu2, const double *c2, int d, double *out) {
    size_t nn = (size_t)d * (size_t)d;
    double *work = malloc(4 * nn * sizeof *work), *w = malloc((size_t)d * sizeof *w);
    if (!work || !w) {
        free(work);
        free(w);
        return fu_fail(FU_E_INTERNAL, "frechet distance: out of memory (d = %d)", d);
    }
    double *a = work, *v = work + nn, *root = work + 2 * nn, *tmp = work + 3 * nn;
    memcpy(a, c1, nn * sizeof *a);
    int rc = fu_sym_eigen(a, d, w, v);
    if (rc == FU_OK) {
        sqrt_from_eigen(w, v, d, root);        /* c1^(1/2) */
        matmul_sq(root, c2, d, tmp);
        matmul_sq(tmp, root, d, a);            /* c1^(1/2) c2 c1^(1/2) */
        for (int i = 0; i < d; i++)            /* symmetrise away rounding */
            for (int j = 0; j < i; j++) a[i * d + j] = a[j * d + i] = 0.5 * (a[i * d + j] + a[j * d + i]);
        rc = fu_sym_eigen(a, d, w, v);
    }
    if (rc == FU_OK) {
        double fd = 0;
        for (int i = 0; i < d; i++) {
            double dm = mu1[i] - mu2[i];
            fd += dm * dm + c1[i * d + i] + c2[i * d + i] - 2 * sqrt(w[i] > 0 ? w[i] : 0);
        }
        *out = fd;
    }
    free(work);
    free(w);
    return rc;
}
