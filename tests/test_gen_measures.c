/* The generator measures (eval/gen_measures.h) on inputs whose answer is known. */
#include "test.h"
#include "core/linalg.h"
#include "core/rng.h"
#include "eval/gen_measures.h"
#include <stdlib.h>
#include <string.h>

/* A grey image [3,S,S] of one cosine wave along x at f cycles/pixel. */
static void grey_wave(float *rgb, int S, double f) {
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) rgb[(c * S + y) * S + x] = (float)(0.5 + 0.4 * cos(2 * M_PI * f * x));
}

/* Grey uniform noise in [0,1]. */
static void grey_noise(fu_rng *r, float *rgb, int S) {
    for (int p = 0; p < S * S; p++) rgb[p] = rgb[S * S + p] = rgb[2 * S * S + p] = fu_rng_uniform(r);
}

/* A 3x3 box blur of each channel (edges clamped). */
static void box_blur(const float *in, float *out, int S) {
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) {
                double s = 0;
                for (int dy = -1; dy <= 1; dy++)
                    for (int dx = -1; dx <= 1; dx++) {
                        int yy = y + dy < 0 ? 0 : y + dy >= S ? S - 1 : y + dy, xx = x + dx < 0 ? 0 : x + dx >= S ? S - 1 : x + dx;
                        s += in[(c * S + yy) * S + xx];
                    }
                out[(c * S + y) * S + x] = (float)(s / 9);
            }
}

TEST(gen_measures_sharpness_of_waves_noise_and_blur) {
    enum { S = 64, N = 8 };
    static float img[3 * S * S], blurred[N * 3 * S * S], sharp[N * 3 * S * S];
    grey_wave(img, S, 0.40);   /* all energy above the cut-off */
    CHECK(fu_highfreq_share(img, S, FU_SHARPNESS_CUTOFF) > 0.97);
    grey_wave(img, S, 0.06);   /* all below */
    CHECK(fu_highfreq_share(img, S, FU_SHARPNESS_CUTOFF) < 0.03);
    for (int p = 0; p < 3 * S * S; p++) img[p] = 0.3f;
    CHECK(fu_highfreq_share(img, S, FU_SHARPNESS_CUTOFF) == 0);
    /* White noise: the share of the [-1/2, 1/2]^2 square outside the radius-1/4 disc. */
    fu_rng r;
    fu_rng_seed(&r, 5);
    for (int k = 0; k < N; k++) {
        grey_noise(&r, sharp + k * 3 * S * S, S);
        box_blur(sharp + k * 3 * S * S, blurred + k * 3 * S * S, S);
    }
    double noise = fu_mean_highfreq_share(sharp, N, S, FU_SHARPNESS_CUTOFF);
    CHECK_NEAR(noise, 1 - M_PI / 16, 0.03);
    double blur = fu_mean_highfreq_share(blurred, N, S, FU_SHARPNESS_CUTOFF);
    CHECK_MSG(blur < 0.25 * noise, "a 3x3 box blur keeps %.3f of noise's %.3f high-frequency share", blur, noise);
    /* At 128 px too (the sharp generator's size). */
    static float big[3 * 128 * 128];
    grey_wave(big, 128, 0.45);
    CHECK(fu_highfreq_share(big, 128, FU_SHARPNESS_CUTOFF) > 0.97);
}

/* n rows of d N(0, 1) features, plus shift on every coordinate. */
static float *gaussian_rows(fu_rng *r, int64_t n, int d, double shift) {
    float *x = malloc(sizeof(float) * (size_t)(n * d));
    for (int64_t i = 0; i < n * d; i++) x[i] = (float)(fu_rng_normal(r) + shift);
    return x;
}

TEST(gen_measures_frechet_of_identical_and_shifted_sets) {
    fu_rng r;
    fu_rng_seed(&r, 11);
    enum { D = 16, N = 400 };
    float *a = gaussian_rows(&r, N, D, 0), *b = malloc(sizeof(float) * N * D);
    double fd;
    REQUIRE(fu_features_frechet(a, N, a, N, D, &fd) == FU_OK);
    CHECK_NEAR(fd, 0, 1e-6);
    /* The same rows shifted by 0.5 in every coordinate: exactly |shift|^2 = D / 4. */
    for (int i = 0; i < N * D; i++) b[i] = a[i] + 0.5f;
    REQUIRE(fu_features_frechet(a, N, b, N, D, &fd) == FU_OK);
    CHECK_NEAR(fd, D * 0.25, 1e-4);
    /* Fewer rows than dimensions (the low-rank route): the same identities hold. */
    REQUIRE(fu_features_frechet(a, 10, b, 12, D, &fd) == FU_OK);
    CHECK(fd > 0);
    double same;
    REQUIRE(fu_features_frechet(a, 10, a, 10, D, &same) == FU_OK);
    CHECK_NEAR(same, 0, 1e-6);
    for (int i = 0; i < 10 * D; i++) b[i] = a[i] + 0.5f;
    REQUIRE(fu_features_frechet(a, 10, b, 10, D, &fd) == FU_OK);
    CHECK_NEAR(fd, D * 0.25, 1e-4);
    free(a);
    free(b);
}

/* The low-rank route equals fu_frechet_distance on the full covariances. */
TEST(gen_measures_frechet_low_rank_matches_covariance_route) {
    fu_rng r;
    fu_rng_seed(&r, 12);
    enum { D = 9, NA = 5, NB = 7 };
    float *a = gaussian_rows(&r, NA, D, 0), *b = gaussian_rows(&r, NB, D, 0.3);
    double ma[D] = {0}, mb[D] = {0}, ca[D * D] = {0}, cb[D * D] = {0};
    for (int k = 0; k < NA; k++)
        for (int i = 0; i < D; i++) ma[i] += a[k * D + i] / (double)NA;
    for (int k = 0; k < NB; k++)
        for (int i = 0; i < D; i++) mb[i] += b[k * D + i] / (double)NB;
    for (int i = 0; i < D; i++)
        for (int j = 0; j < D; j++) {
            for (int k = 0; k < NA; k++) ca[i * D + j] += (a[k * D + i] - ma[i]) * (a[k * D + j] - ma[j]) / (NA - 1);
            for (int k = 0; k < NB; k++) cb[i * D + j] += (b[k * D + i] - mb[i]) * (b[k * D + j] - mb[j]) / (NB - 1);
        }
    double expect, fd;
    REQUIRE(fu_frechet_distance(ma, ca, mb, cb, D, &expect) == FU_OK);
    REQUIRE(fu_features_frechet(a, NA, b, NB, D, &fd) == FU_OK);
    CHECK_NEAR(fd, expect, 1e-6 * (1 + fabs(expect)));
    free(a);
    free(b);
}

TEST(gen_measures_kid_exact_small_case_and_gaussians) {
    /* d = 1, X = {0, 1}, Y = {0, -1}, k = (xy + 1)^3: within-set pairs all k = 1, cross pairs
     * 1, 1, 1, 0, so MMD^2_u = 1 + 1 - 2 * 3/4 = 0.5 whatever the subset order. */
    const float x[2] = {0, 1}, y[2] = {0, -1};
    double mean, std;
    REQUIRE(fu_kid(x, 2, y, 2, 1, 3, 100, 1, &mean, &std) == FU_OK);
    CHECK_NEAR(mean, 0.5, 1e-12);
    CHECK_NEAR(std, 0, 1e-12);
    fu_rng r;
    fu_rng_seed(&r, 13);
    enum { D = 8, N = 300 };
    float *a = gaussian_rows(&r, N, D, 0), *b = gaussian_rows(&r, N, D, 0), *c = gaussian_rows(&r, N, D, 0.5);
    double same, same_std, shifted, shifted_std;
    REQUIRE(fu_kid(a, N, b, N, D, 50, 100, 1, &same, &same_std) == FU_OK);
    REQUIRE(fu_kid(a, N, c, N, D, 50, 100, 1, &shifted, &shifted_std) == FU_OK);
    /* Same distribution: unbiased, so near 0 on either side; shifted by 0.5 per coordinate:
     * clearly positive (the kernel's linear part alone gives |shift|^2 * 3 / d = 0.75). */
    CHECK_MSG(fabs(same) < 3 * same_std + 0.02, "KID of two draws of one Gaussian %g (std %g)", same, same_std);
    CHECK_MSG(shifted > 0.5 && shifted > 10 * fabs(same), "KID shifted %g, same %g", shifted, same);
    CHECK(fu_kid(a, 1, b, N, D, 5, 100, 1, &mean, &std) == FU_E_INPUT);
    free(a), free(b), free(c);
}

TEST(gen_measures_precision_recall_identical_disjoint_and_dropped_mode) {
    fu_rng r;
    fu_rng_seed(&r, 14);
    enum { D = 4, N = 200 };
    float *real = gaussian_rows(&r, N, D, 0), *far = gaussian_rows(&r, N, D, 100);
    double p, rec;
    REQUIRE(fu_knn_precision_recall(real, N, real, N, D, 3, &p, &rec) == FU_OK);
    CHECK(p == 1 && rec == 1);
    REQUIRE(fu_knn_precision_recall(real, N, far, N, D, 3, &p, &rec) == FU_OK);
    CHECK(p == 0 && rec == 0);
    /* A generator that only makes the real rows with a positive first coordinate: every
     * sample is real-like (precision 1) but only about half of the reals are covered. */
    float *half = malloc(sizeof(float) * N * D);
    int64_t nh = 0, positive = 0;
    for (int64_t i = 0; i < N; i++) {
        if (real[i * D] <= 0) continue;
        memcpy(half + nh++ * D, real + i * D, sizeof(float) * D);
    }
    for (int64_t i = 0; i < N; i++) positive += real[i * D] > 0;
    REQUIRE(fu_knn_precision_recall(real, N, half, nh, D, 3, &p, &rec) == FU_OK);
    CHECK(p == 1);
    CHECK_MSG(rec >= (double)positive / N && rec < (double)positive / N + 0.2, "recall %g with %lld of %d reals covered", rec,
              (long long)positive, N);
    CHECK(fu_knn_precision_recall(real, 3, half, nh, D, 3, &p, &rec) == FU_E_INPUT);
    free(real), free(far), free(half);
}

TEST(gen_measures_share_within_radius) {
    /* d = 2: references at (0,0) and (10,0); queries at distance 0.3, 0.375, 0.5 and 4.9. */
    const float ref[4] = {0, 0, 10, 0}, query[8] = {0.3f, 0, 10, 0.375f, 0, -0.5f, 5.1f, 0};
    double share, nearest[4];
    REQUIRE(fu_share_within(query, 4, ref, 2, 2, 0.4, &share, nearest) == FU_OK);
    CHECK_NEAR(share, 0.5, 1e-12);   /* 0.3 and 0.375 in; 0.5 and 4.9 out */
    REQUIRE(fu_share_within(query, 4, ref, 2, 2, 0.5, &share, NULL) == FU_OK);
    CHECK_NEAR(share, 0.75, 1e-12);  /* a distance equal to the radius counts */
    CHECK_NEAR(nearest[2], 0.5, 1e-6);
    CHECK_NEAR(nearest[3], 4.9, 1e-6);
    CHECK(fu_share_within(query, 4, ref, 0, 2, 0.4, &share, NULL) == FU_E_INPUT);
}
