#include "gen_measures.h"
#include "core/error.h"
#include "core/linalg.h"
#include "core/rng.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- sharpness */

/* Mean-free, Hann-windowed luminance of one image into y [S*S]. */
static void windowed_luminance(const float *rgb, int S, double *y) {
    int64_t plane = (int64_t)S * S;
    double mean = 0;
    for (int64_t p = 0; p < plane; p++) {
        y[p] = 0.299 * rgb[p] + 0.587 * rgb[plane + p] + 0.114 * rgb[2 * plane + p];
        mean += y[p] / (double)plane;
    }
    for (int i = 0; i < S; i++) {
        double wi = S > 1 ? 0.5 - 0.5 * cos(2 * M_PI * i / (S - 1)) : 1;
        for (int j = 0; j < S; j++) {
            double wj = S > 1 ? 0.5 - 0.5 * cos(2 * M_PI * j / (S - 1)) : 1;
            y[i * S + j] = (y[i * S + j] - mean) * wi * wj;
        }
    }
}

/* Signed frequency index of DFT bin u (numpy's fftfreq times S). */
static int signed_bin(int u, int S) { return u < (S + 1) / 2 ? u : u - S; }

double fu_highfreq_share(const float *rgb, int S, double cutoff) {
    int64_t plane = (int64_t)S * S;
    double *y = malloc(sizeof(double) * (size_t)plane * 5), *cs = y + plane, *sn = cs + plane;
    double *re = sn + plane, *im = re + plane;
    if (!y) return NAN;
    for (int64_t t = 0; t < plane; t++) {   /* the DFT's twiddles, exp(-2 pi i t / S) for t < S*S */
        cs[t] = cos(2 * M_PI * (double)(t % S) / S);
        sn[t] = -sin(2 * M_PI * (double)(t % S) / S);
    }
    windowed_luminance(rgb, S, y);
    /* Rows: R[i][v] = sum_j y[i][j] e^{-2 pi i v j / S}. */
    for (int i = 0; i < S; i++)
        for (int v = 0; v < S; v++) {
            double sr = 0, si = 0;
            for (int j = 0; j < S; j++) {
                int64_t t = (int64_t)v * j % S;
                sr += y[i * S + j] * cs[t];
                si += y[i * S + j] * sn[t];
            }
            re[i * S + v] = sr;
            im[i * S + v] = si;
        }
    /* Columns, accumulating the energy of each bin as it is formed. */
    double high = 0, total = 0, c2 = cutoff * cutoff * S * S;
    for (int v = 0; v < S; v++)
        for (int u = 0; u < S; u++) {
            double sr = 0, si = 0;
            for (int i = 0; i < S; i++) {
                int64_t t = (int64_t)u * i % S;
                sr += re[i * S + v] * cs[t] - im[i * S + v] * sn[t];
                si += re[i * S + v] * sn[t] + im[i * S + v] * cs[t];
            }
            if (u == 0 && v == 0) continue;
            double e = sr * sr + si * si, fu = signed_bin(u, S), fv = signed_bin(v, S);
            total += e;
            if (fu * fu + fv * fv > c2) high += e;
        }
    free(y);
    return total > 0 ? high / total : 0;
}

double fu_mean_highfreq_share(const float *images, int64_t n, int S, double cutoff) {
    double sum = 0;
    for (int64_t k = 0; k < n; k++) sum += fu_highfreq_share(images + k * 3 * (int64_t)S * S, S, cutoff);
    return n ? sum / (double)n : NAN;
}

/* ---------------------------------------------------------------- shared pieces */

static double dot(const float *x, const float *y, int d) {
    double s = 0;
    for (int i = 0; i < d; i++) s += (double)x[i] * y[i];
    return s;
}

static double squared_distance(const float *x, const float *y, int d) {
    double s = 0;
    for (int i = 0; i < d; i++) {
        double t = (double)x[i] - y[i];
        s += t * t;
    }
    return s;
}

/* out[i * nb + j] = f(a_i, b_j) for every pair, rows in parallel. */
static void pair_matrix(const float *a, int64_t na, const float *b, int64_t nb, int d,
                        double (*f)(const float *, const float *, int), double *out) {
#pragma omp parallel for schedule(dynamic, 8)
    for (int64_t i = 0; i < na; i++)
        for (int64_t j = 0; j < nb; j++) out[i * nb + j] = f(a + i * d, b + j * d, d);
}

/* ---------------------------------------------------------------- Frechet distance */

/* Rows minus their mean, into out [n, d] (double); mean [d]. */
static void centre_rows(const float *x, int64_t n, int d, double *mean, double *out) {
    memset(mean, 0, sizeof(double) * (size_t)d);
    for (int64_t k = 0; k < n; k++)
        for (int i = 0; i < d; i++) mean[i] += x[k * d + i] / (double)n;
    for (int64_t k = 0; k < n; k++)
        for (int i = 0; i < d; i++) out[k * d + i] = x[k * d + i] - mean[i];
}

/* Covariance [d, d] (denominator n - 1) of centred rows. */
static void covariance(const double *c, int64_t n, int d, double *cov) {
    memset(cov, 0, sizeof(double) * (size_t)d * d);
    for (int64_t k = 0; k < n; k++)
        for (int i = 0; i < d; i++)
            for (int j = 0; j <= i; j++) cov[i * d + j] += c[k * d + i] * c[k * d + j];
    for (int i = 0; i < d; i++)
        for (int j = 0; j <= i; j++) cov[i * d + j] = cov[j * d + i] = cov[i * d + j] / (double)(n - 1);
}

static double rows_dot(const double *x, const double *y, int d) {
    double s = 0;
    for (int i = 0; i < d; i++) s += x[i] * y[i];
    return s;
}

/* tr((C_a^1/2 C_b C_a^1/2)^1/2) from the centred rows: the sum of singular values of
 * M = A B^T / sqrt((na-1)(nb-1)), as sqrt of the eigenvalues of the smaller Gram M^T M or M M^T. */
static int cross_trace_from_rows(const double *A, int64_t na, const double *B, int64_t nb, int d, double *out) {
    int64_t small = na < nb ? na : nb, big = na < nb ? nb : na;
    const double *S = na < nb ? A : B, *L = na < nb ? B : A;
    double *m = malloc(sizeof(double) * (size_t)(small * big + 3 * small * small));
    if (!m) return fu_fail(FU_E_INTERNAL, "frechet: out of memory");
    double *gram = m + small * big, *w = gram + small * small, *vecs = w + small;
    double scale = 1.0 / sqrt((double)(na - 1) * (double)(nb - 1));
#pragma omp parallel for schedule(dynamic, 8)
    for (int64_t i = 0; i < small; i++)
        for (int64_t j = 0; j < big; j++) m[i * big + j] = rows_dot(S + i * d, L + j * d, d) * scale;
#pragma omp parallel for schedule(dynamic, 8)
    for (int64_t i = 0; i < small; i++)
        for (int64_t j = 0; j <= i; j++) gram[i * small + j] = gram[j * small + i] = rows_dot(m + i * big, m + j * big, (int)big);
    int rc = fu_sym_eigen(gram, (int)small, w, vecs);
    double t = 0;
    for (int64_t i = 0; rc == FU_OK && i < small; i++) t += w[i] > 0 ? sqrt(w[i]) : 0;
    *out = t;
    free(m);
    return rc;
}

static int frechet_from_covariances(const double *A, int64_t na, const double *B, int64_t nb, const double *ma,
                                    const double *mb, int d, double *out) {
    double *cov = malloc(sizeof(double) * (size_t)d * d * 2);
    if (!cov) return fu_fail(FU_E_INTERNAL, "frechet: out of memory");
    covariance(A, na, d, cov);
    covariance(B, nb, d, cov + (size_t)d * d);
    int rc = fu_frechet_distance(ma, cov, mb, cov + (size_t)d * d, d, out);
    free(cov);
    return rc;
}

int fu_features_frechet(const float *a, int64_t na, const float *b, int64_t nb, int d, double *out) {
    if (na < 2 || nb < 2 || d < 1) return fu_fail(FU_E_INPUT, "frechet: need 2 rows per set (have %lld and %lld)", (long long)na, (long long)nb);
    double *buf = malloc(sizeof(double) * (size_t)((na + nb + 2) * d));
    if (!buf) return fu_fail(FU_E_INTERNAL, "frechet: out of memory");
    double *ma = buf, *mb = ma + d, *A = mb + d, *B = A + na * d;
    centre_rows(a, na, d, ma, A);
    centre_rows(b, nb, d, mb, B);
    int rc;
    if (d <= (na < nb ? na : nb)) {
        rc = frechet_from_covariances(A, na, B, nb, ma, mb, d, out);
    } else {
        double mean_gap = 0, tr_a = 0, tr_b = 0, cross = 0;
        for (int i = 0; i < d; i++) mean_gap += (ma[i] - mb[i]) * (ma[i] - mb[i]);
        for (int64_t k = 0; k < na; k++) tr_a += rows_dot(A + k * d, A + k * d, d) / (double)(na - 1);
        for (int64_t k = 0; k < nb; k++) tr_b += rows_dot(B + k * d, B + k * d, d) / (double)(nb - 1);
        rc = cross_trace_from_rows(A, na, B, nb, d, &cross);
        *out = mean_gap + tr_a + tr_b - 2 * cross;
    }
    free(buf);
    return rc;
}

/* ---------------------------------------------------------------- KID */

static double cubic_kernel(const float *x, const float *y, int d) {
    double t = dot(x, y, d) / d + 1;
    return t * t * t;
}

/* The unbiased MMD^2 of one pair of index subsets of m rows, from full kernel matrices. */
static double mmd2_unbiased(const double *kaa, int64_t na, const double *kbb, int64_t nb, const double *kab,
                            const int64_t *ia, const int64_t *ib, int64_t m) {
    double saa = 0, sbb = 0, sab = 0;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < m; j++) {
            if (i != j) saa += kaa[ia[i] * na + ia[j]], sbb += kbb[ib[i] * nb + ib[j]];
            sab += kab[ia[i] * nb + ib[j]];
        }
    return (saa + sbb) / ((double)m * (m - 1)) - 2 * sab / ((double)m * m);
}

/* A fresh random permutation of 0..n-1 in idx [n]; its first m entries are a subset of m. */
static void draw_subset(fu_rng *r, int64_t *idx, int64_t n) {
    for (int64_t i = 0; i < n; i++) idx[i] = i;
    fu_rng_shuffle(r, idx, n);
}

int fu_kid(const float *a, int64_t na, const float *b, int64_t nb, int d, int subsets, int64_t subset_size,
           uint64_t seed, double *mean, double *std) {
    int64_t m = subset_size < na ? subset_size : na;
    m = m < nb ? m : nb;
    if (m < 2 || subsets < 1) return fu_fail(FU_E_INPUT, "kid: need subsets of 2 rows at least (sets of %lld and %lld)", (long long)na, (long long)nb);
    double *k = malloc(sizeof(double) * (size_t)(na * na + nb * nb + na * nb));
    int64_t *idx = malloc(sizeof(int64_t) * (size_t)(na + nb));
    double *mmd = malloc(sizeof(double) * (size_t)subsets);
    if (!k || !idx || !mmd) {
        free(k), free(idx), free(mmd);
        return fu_fail(FU_E_INTERNAL, "kid: out of memory");
    }
    double *kaa = k, *kbb = kaa + na * na, *kab = kbb + nb * nb;
    pair_matrix(a, na, a, na, d, cubic_kernel, kaa);
    pair_matrix(b, nb, b, nb, d, cubic_kernel, kbb);
    pair_matrix(a, na, b, nb, d, cubic_kernel, kab);
    fu_rng r;
    fu_rng_seed(&r, seed);
    double sum = 0, sum2 = 0;
    for (int s = 0; s < subsets; s++) {
        draw_subset(&r, idx, na);
        draw_subset(&r, idx + na, nb);
        mmd[s] = mmd2_unbiased(kaa, na, kbb, nb, kab, idx, idx + na, m);
        sum += mmd[s];
    }
    *mean = sum / subsets;
    for (int s = 0; s < subsets; s++) sum2 += (mmd[s] - *mean) * (mmd[s] - *mean);
    *std = sqrt(sum2 / subsets);
    free(k), free(idx), free(mmd);
    return FU_OK;
}

/* ---------------------------------------------------------------- precision and recall */

static int compare_doubles(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* Squared radius of each row's ball: its k-th smallest squared distance to the other rows of d2
 * [n, n] (row i's own zero distance at the diagonal skipped). */
static int knn_radii(const double *d2, int64_t n, int k, double *radius2) {
    double *row = malloc(sizeof(double) * (size_t)n);
    if (!row) return fu_fail(FU_E_INTERNAL, "precision/recall: out of memory");
    for (int64_t i = 0; i < n; i++) {
        int64_t c = 0;
        for (int64_t j = 0; j < n; j++)
            if (j != i) row[c++] = d2[i * n + j];
        qsort(row, (size_t)c, sizeof(double), compare_doubles);
        radius2[i] = row[k - 1];
    }
    free(row);
    return FU_OK;
}

/* Share of rows q of cross [nq, nb] that lie in at least one ball b (cross[q][b] <= radius2[b]). */
static double share_in_balls(const double *cross, int64_t nq, int64_t nb, const double *radius2) {
    int64_t inside = 0;
    for (int64_t q = 0; q < nq; q++) {
        int hit = 0;
        for (int64_t b = 0; b < nb && !hit; b++) hit = cross[q * nb + b] <= radius2[b];
        inside += hit;
    }
    return nq ? (double)inside / (double)nq : NAN;
}

int fu_knn_precision_recall(const float *real, int64_t n_real, const float *fake, int64_t n_fake, int d, int k,
                            double *precision, double *recall) {
    if (k < 1 || n_real <= k || n_fake <= k)
        return fu_fail(FU_E_INPUT, "precision/recall: k = %d needs more than k rows per set (have %lld real, %lld generated)", k,
                       (long long)n_real, (long long)n_fake);
    size_t cells = (size_t)(n_real * n_real + n_fake * n_fake + 2 * n_real * n_fake + n_real + n_fake);
    double *buf = malloc(sizeof(double) * cells);
    if (!buf) return fu_fail(FU_E_INTERNAL, "precision/recall: out of memory");
    double *rr = buf, *ff = rr + n_real * n_real, *fr = ff + n_fake * n_fake, *rf = fr + n_fake * n_real;
    double *r_real = rf + n_real * n_fake, *r_fake = r_real + n_real;
    pair_matrix(real, n_real, real, n_real, d, squared_distance, rr);
    pair_matrix(fake, n_fake, fake, n_fake, d, squared_distance, ff);
    pair_matrix(fake, n_fake, real, n_real, d, squared_distance, fr);
    for (int64_t i = 0; i < n_real; i++)
        for (int64_t j = 0; j < n_fake; j++) rf[i * n_fake + j] = fr[j * n_real + i];
    int rc = knn_radii(rr, n_real, k, r_real);
    if (rc == FU_OK) rc = knn_radii(ff, n_fake, k, r_fake);
    if (rc == FU_OK) {
        *precision = share_in_balls(fr, n_fake, n_real, r_real);
        *recall = share_in_balls(rf, n_real, n_fake, r_fake);
    }
    free(buf);
    return rc;
}

/* ---------------------------------------------------------------- memorisation */

int fu_share_within(const float *query, int64_t n_query, const float *ref, int64_t n_ref, int d, double radius,
                    double *share, double *nearest) {
    if (n_ref < 1) return fu_fail(FU_E_INPUT, "nearest face: the reference set is empty");
    int64_t within = 0;
#pragma omp parallel for schedule(dynamic, 8) reduction(+ : within)
    for (int64_t q = 0; q < n_query; q++) {
        double best = INFINITY;
        for (int64_t r = 0; r < n_ref; r++) best = fmin(best, squared_distance(query + q * d, ref + r * d, d));
        within += best <= radius * radius;
        if (nearest) nearest[q] = sqrt(best);
    }
    *share = n_query ? (double)within / (double)n_query : NAN;
    return FU_OK;
}
