/* The measures of a generator's images (issue 19, "How it is measured"), as plain functions of
 * pixels or of feature rows, so each can be tested on inputs whose answer is known.
 * eval/gen_quality.h runs them on a generator's samples and on real faces.
 *
 * Feature sets are row-major [n, d] floats (one row per image); arithmetic is in double. */
#ifndef FU_EVAL_GEN_MEASURES_H
#define FU_EVAL_GEN_MEASURES_H
#include <stdint.h>

/* Sharpness cut-off of issue 19, in cycles per pixel. */
#define FU_SHARPNESS_CUTOFF 0.25

/* Share of the spectral energy of one image's luminance at radial frequencies above cutoff
 * (cycles/pixel): Y = 0.299 R + 0.587 G + 0.114 B of rgb [3,S,S] (CHW, [0,1]), its mean
 * removed, times a separable Hann window (numpy's np.hanning: 0.5 - 0.5 cos(2 pi i / (S-1))),
 * through a 2-D DFT; energy |F|^2, the DC term left out of both sums; frequency (u, v) / S with
 * u, v in -S/2 .. S/2-1. White noise gives about 1 - pi cutoff^2 (0.80 at 0.25); a flat image 0.
 * A generator's "sharpness ratio" is the mean of this over its images divided by the mean over
 * real faces of the same size. */
double fu_highfreq_share(const float *rgb, int size, double cutoff);
/* Mean of fu_highfreq_share over n images [n,3,S,S]. */
double fu_mean_highfreq_share(const float *images, int64_t n, int size, double cutoff);

/* Frechet distance between Gaussians fitted to two feature sets (mean, covariance with
 * denominator n - 1), as FID does:
 *   |m_a - m_b|^2 + tr(C_a) + tr(C_b) - 2 tr((C_a^1/2 C_b C_a^1/2)^1/2).
 * When d exceeds the smaller set (faceres: 1024-d against a few hundred held-out faces) the
 * covariances are low-rank and the cross term is computed exactly in the data's own space: with
 * A, B the centred rows, tr(...) = sum of singular values of A B^T / sqrt((n_a-1)(n_b-1)), an
 * eigen-decomposition of min(n_a, n_b) rows instead of d. n_a, n_b >= 2. FU_OK or an error. */
int fu_features_frechet(const float *a, int64_t na, const float *b, int64_t nb, int d, double *out);

/* KID (Binkowski et al. 2018): the unbiased estimate of MMD^2 with the cubic polynomial kernel
 * k(x, y) = (x.y / d + 1)^3, averaged over `subsets` random pairs of subsets of m rows of each
 * set (drawn without replacement within a subset, from seed; m = min(subset_size, n_a, n_b)):
 *   MMD^2_u = sum_{i!=j} k(x_i,x_j) / (m(m-1)) + sum_{i!=j} k(y_i,y_j) / (m(m-1))
 *           - 2 sum_{i,j} k(x_i,y_j) / m^2.
 * *mean and *std over the subsets (std with denominator subsets, 0 for one subset). FU_OK or an
 * error (a set of fewer than 2 rows). */
int fu_kid(const float *a, int64_t na, const float *b, int64_t nb, int d, int subsets, int64_t subset_size,
           uint64_t seed, double *mean, double *std);

/* Improved precision and recall (Kynkaanniemi et al. 2019): each real row's ball has the radius
 * of its k-th nearest other real row (Euclidean), likewise for generated rows; precision = share
 * of generated rows inside at least one real ball, recall = share of real rows inside at least
 * one generated ball. Both sets need more than k rows. FU_OK or an error. */
int fu_knn_precision_recall(const float *real, int64_t n_real, const float *fake, int64_t n_fake, int d, int k,
                            double *precision, double *recall);

/* Share of the query rows whose nearest reference row lies within radius (Euclidean, <=);
 * memorisation with dlib descriptors and dlib's 0.4 "same person" distance. nearest (may be
 * NULL) receives each query row's nearest distance. FU_OK or an error (empty reference). */
int fu_share_within(const float *query, int64_t n_query, const float *ref, int64_t n_ref, int d, double radius,
                    double *share, double *nearest);

#endif
