#include "test.h"
#include "core/linalg.h"
#include "core/rng.h"
#include <stdlib.h>

/* A random symmetric positive definite matrix: B B^T + n I / 10. */
static void random_spd(fu_rng *r, int n, double *a) {
    double *b = malloc(sizeof(double) * (size_t)(n * n));
    for (int i = 0; i < n * n; i++) b[i] = fu_rng_normal(r);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double s = i == j ? n / 10.0 : 0;
            for (int k = 0; k < n; k++) s += b[i * n + k] * b[j * n + k];
            a[i * n + j] = s;
        }
    free(b);
}

TEST(linalg_cholesky_reconstructs_and_refuses_indefinite) {
    fu_rng r;
    fu_rng_seed(&r, 3);
    enum { N = 24 };
    double a[N * N], l[N * N];
    random_spd(&r, N, a);
    for (int i = 0; i < N * N; i++) l[i] = a[i];
    REQUIRE(fu_cholesky(l, N) == FU_OK);
    double worst = 0;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < N; k++) s += l[i * N + k] * l[j * N + k];
            worst = fmax(worst, fabs(s - a[i * N + j]) / fabs(a[i * N + i]));
            if (j > i) CHECK(l[i * N + j] == 0);
        }
    CHECK(worst < 1e-12);
    double bad[4] = {1, 2, 2, 1};   /* eigenvalues 3 and -1 */
    CHECK(fu_cholesky(bad, 2) == FU_E_INPUT);
}

TEST(linalg_jacobi_eigen_reconstructs) {
    fu_rng r;
    fu_rng_seed(&r, 5);
    enum { N = 40 };
    static double a[N * N], work[N * N], v[N * N], w[N];
    random_spd(&r, N, a);
    for (int i = 0; i < N * N; i++) work[i] = a[i];
    REQUIRE(fu_sym_eigen(work, N, w, v) == FU_OK);
    double worst = 0, ortho = 0;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            double s = 0, o = 0;
            for (int k = 0; k < N; k++) {
                s += v[i * N + k] * w[k] * v[j * N + k];
                o += v[k * N + i] * v[k * N + j];
            }
            worst = fmax(worst, fabs(s - a[i * N + j]));
            ortho = fmax(ortho, fabs(o - (i == j)));
        }
    CHECK(worst < 1e-9 * a[0]);
    CHECK(ortho < 1e-12);
}

/* Closed forms: identical Gaussians give 0; for commuting (diagonal) covariances
 * FD = |dmu|^2 + sum (sqrt a_i - sqrt b_i)^2; the distance is symmetric for general ones. */
TEST(linalg_frechet_distance_closed_forms) {
    enum { N = 6 };
    double mu1[N] = {0, 1, 2, 3, 4, 5}, mu2[N] = {1, 1, 2, 3, 4, 3}, c1[N * N] = {0}, c2[N * N] = {0};
    double expect = 1 + 4;
    for (int i = 0; i < N; i++) {
        c1[i * N + i] = 1 + i;
        c2[i * N + i] = 4.0 / (1 + i);
        expect += pow(sqrt(1.0 + i) - sqrt(4.0 / (1 + i)), 2);
    }
    double fd;
    REQUIRE(fu_frechet_distance(mu1, c1, mu2, c2, N, &fd) == FU_OK);
    CHECK_NEAR(fd, expect, 1e-10);
    REQUIRE(fu_frechet_distance(mu1, c1, mu1, c1, N, &fd) == FU_OK);
    CHECK(fabs(fd) < 1e-10);
    fu_rng r;
    fu_rng_seed(&r, 9);
    random_spd(&r, N, c1);
    random_spd(&r, N, c2);
    double ab, ba;
    REQUIRE(fu_frechet_distance(mu1, c1, mu2, c2, N, &ab) == FU_OK);
    REQUIRE(fu_frechet_distance(mu2, c2, mu1, c1, N, &ba) == FU_OK);
    CHECK_NEAR(ab, ba, 1e-9 * ab);
    CHECK(ab > 5);   /* at least the mean term: the covariance term is >= 0 */
}
