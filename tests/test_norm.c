/* Normalisation ops: instance norm, batch norm, dropout, L2 normalisation. */
#include "test.h"
#include "util.h"
#include "core/ops.h"
#include "core/gradcheck.h"
#include "core/rng.h"
#include <stdlib.h>
#include <string.h>

static void free_all(fu_tensor **t, int n) {
    for (int i = 0; i < n; i++) fu_tensor_free(t[i]);
}

/* ---- instance norm ---- */

TEST(instance_norm_values) {
    fu_graph *g = fu_graph_new();
    fu_tensor *x = fu_tensor_newv(4, (int64_t)1, (int64_t)2, (int64_t)2, (int64_t)2);
    float v[8] = {1, 2, 3, 4, -5, 5, -5, 5};
    memcpy(x->data, v, sizeof v);
    fu_tensor *y = fu_instance_norm(g, x, 1e-5f);
    REQUIRE(y);
    /* Plane 0: mean 2.5, biased var 1.25; plane 1: mean 0, var 25. */
    for (int i = 0; i < 4; i++) CHECK_NEAR(y->data[i], (v[i] - 2.5) / sqrt(1.25 + 1e-5), 1e-6);
    for (int i = 4; i < 8; i++) CHECK_NEAR(y->data[i], v[i] / sqrt(25 + 1e-5), 1e-6);
    fu_tensor_free(x);

    /* Random odd-sized planes: each output plane has mean 0 and variance var/(var+eps) ~ 1. */
    fu_rng r;
    fu_rng_seed(&r, 11);
    int64_t s[4] = {2, 3, 5, 7};
    x = randn_leaf(&r, 4, s, 0);
    for (int64_t i = 0; i < x->numel; i++) x->data[i] = 3 * x->data[i] + 7;
    y = fu_instance_norm(g, x, 1e-8f);
    REQUIRE(y);
    for (int p = 0; p < 6; p++) {
        double m = 0, q = 0;
        for (int i = 0; i < 35; i++) m += y->data[p * 35 + i];
        m /= 35;
        for (int i = 0; i < 35; i++) q += (y->data[p * 35 + i] - m) * (y->data[p * 35 + i] - m);
        CHECK_NEAR(m, 0, 1e-6);
        CHECK_NEAR(q / 35, 1, 1e-5);
    }
    fu_tensor_free(x);
    fu_graph_free(g);
}

static fu_tensor *build_instance_norm(fu_graph *g, fu_tensor **in, void *ctx) {
    (void)ctx;
    return fu_instance_norm(g, in[0], 1e-5f);
}

TEST(gradcheck_instance_norm) {
    fu_rng r;
    fu_rng_seed(&r, 12);
    int64_t s[4] = {2, 3, 5, 3};
    fu_tensor *x = randn_leaf(&r, 4, s, 1);
    fu_gradcheck_opts o = {1e-3f, 2e-3f, 2e-2f, 60, 5};
    fu_gradcheck_result res;
    CHECK(fu_gradcheck(build_instance_norm, &x, 1, NULL, &o, &res) == FU_OK);
    CHECK(res.n_checked == 60);
    fu_tensor_free(x);
    /* 3-d input [N, C, L] normalises over L. */
    int64_t s3[3] = {3, 2, 9};
    x = randn_leaf(&r, 3, s3, 1);
    CHECK(fu_gradcheck(build_instance_norm, &x, 1, NULL, &o, &res) == FU_OK);
    fu_tensor_free(x);
}

/* ---- batch norm ---- */

/* Reference: per-channel statistics of x [N, C, S] in double. */
static void channel_stats(const fu_tensor *x, int64_t c, double *mean, double *var) {
    int64_t N = x->shape[0], C = x->shape[1], S = x->numel / (N * C);
    double s = 0, q = 0;
    for (int64_t b = 0; b < N; b++)
        for (int64_t i = 0; i < S; i++) s += x->data[(b * C + c) * S + i];
    *mean = s / (double)(N * S);
    for (int64_t b = 0; b < N; b++)
        for (int64_t i = 0; i < S; i++) {
            double d = x->data[(b * C + c) * S + i] - *mean;
            q += d * d;
        }
    *var = q / (double)(N * S);
}

TEST(batch_norm_training_and_eval_values) {
    fu_rng r;
    fu_rng_seed(&r, 21);
    int64_t s[4] = {3, 2, 2, 3};
    fu_tensor *x = randn_leaf(&r, 4, s, 0);
    fu_tensor *gamma = fu_tensor_newv(1, (int64_t)2), *beta = fu_tensor_newv(1, (int64_t)2);
    fu_tensor *rm = fu_tensor_newv(1, (int64_t)2), *rv = fu_tensor_newv(1, (int64_t)2);
    gamma->data[0] = 2; gamma->data[1] = -0.5f;
    beta->data[0] = 1; beta->data[1] = 3;
    rm->data[0] = 0.5f; rm->data[1] = -1;
    rv->data[0] = 2; rv->data[1] = 0.5f;
    fu_graph *g = fu_graph_new();
    g->training = 1;
    fu_tensor *y = fu_batch_norm(g, x, gamma, beta, rm, rv, 0.1f, 1e-5f);
    REQUIRE(y);
    double mean[2], var[2];
    for (int c = 0; c < 2; c++) {
        channel_stats(x, c, &mean[c], &var[c]);
        for (int b = 0; b < 3; b++)
            for (int i = 0; i < 6; i++) {
                int64_t k = (b * 2 + c) * 6 + i;
                CHECK_NEAR(y->data[k], (x->data[k] - mean[c]) / sqrt(var[c] + 1e-5) * gamma->data[c] + beta->data[c], 1e-5);
            }
    }
    /* Running stats: new = 0.9 old + 0.1 batch, unbiased variance (M = 18 values). */
    double rm1[2] = {0.9 * 0.5 + 0.1 * mean[0], 0.9 * -1 + 0.1 * mean[1]};
    double rv1[2] = {0.9 * 2 + 0.1 * var[0] * 18 / 17, 0.9 * 0.5 + 0.1 * var[1] * 18 / 17};
    for (int c = 0; c < 2; c++) { CHECK_NEAR(rm->data[c], rm1[c], 1e-6); CHECK_NEAR(rv->data[c], rv1[c], 1e-6); }
    /* A re-run in training mode updates them once more. */
    CHECK(fu_graph_forward(g) == FU_OK);
    for (int c = 0; c < 2; c++) CHECK_NEAR(rm->data[c], 0.9 * rm1[c] + 0.1 * mean[c], 1e-6);
    /* Eval mode: normalise with the running statistics, leave them alone. */
    g->training = 0;
    float rm_before = rm->data[1], rv_before = rv->data[1];
    CHECK(fu_graph_forward(g) == FU_OK);
    CHECK(rm->data[1] == rm_before && rv->data[1] == rv_before);
    int64_t k = (2 * 2 + 1) * 6 + 4;
    CHECK_NEAR(y->data[k], (x->data[k] - rm_before) / sqrt(rv_before + 1e-5) * -0.5 + 3, 1e-5);
    /* No affine and no running stats: batch statistics even in eval mode. */
    y = fu_batch_norm(g, x, NULL, NULL, NULL, NULL, 0.1f, 0);
    REQUIRE(y);
    CHECK_NEAR(y->data[7], (x->data[7] - mean[1]) / sqrt(var[1]), 1e-5);
    fu_tensor *t[5] = {x, gamma, beta, rm, rv};
    free_all(t, 5);
    fu_graph_free(g);
}

typedef struct { int training, affine; } bn_ctx;

static fu_tensor *build_batch_norm(fu_graph *g, fu_tensor **in, void *ctx) {
    const bn_ctx *c = ctx;
    g->training = c->training;
    return fu_batch_norm(g, in[0], c->affine ? in[1] : NULL, c->affine ? in[2] : NULL, in[3], in[4], 0.1f, 1e-5f);
}

TEST(gradcheck_batch_norm) {
    fu_rng r;
    fu_rng_seed(&r, 22);
    int64_t s[4] = {3, 4, 3, 5}, sc[1] = {4};
    fu_tensor *in[5] = {randn_leaf(&r, 4, s, 1), randn_leaf(&r, 1, sc, 1), randn_leaf(&r, 1, sc, 1),
                        randn_leaf(&r, 1, sc, 0), randn_leaf(&r, 1, sc, 0)};
    for (int c = 0; c < 4; c++) in[4]->data[c] = 0.5f + in[4]->data[c] * in[4]->data[c];
    fu_gradcheck_opts o = {1e-3f, 2e-3f, 2e-2f, 48, 9};
    fu_gradcheck_result res;
    bn_ctx modes[3] = {{1, 1}, {0, 1}, {1, 0}};
    for (int m = 0; m < 3; m++) {
        CHECK_MSG(fu_gradcheck(build_batch_norm, in, 5, &modes[m], &o, &res) == FU_OK,
                  "mode %d: %s", m, fu_last_error());
        CHECK(res.n_checked == 48 + 8);  /* gamma and beta are checked (zero) even when unused */
    }
    /* 2-d input [N, C] (BatchNorm1d). */
    int64_t s2[2] = {5, 4};
    fu_tensor_free(in[0]);
    in[0] = randn_leaf(&r, 2, s2, 1);
    CHECK(fu_gradcheck(build_batch_norm, in, 5, &modes[0], &o, &res) == FU_OK);
    free_all(in, 5);
}

/* ---- dropout ---- */

TEST(dropout_mask_and_modes) {
    fu_graph *g = fu_graph_new();
    g->training = 1;
    int64_t s[2] = {50, 41};
    fu_tensor *x = fu_tensor_new(2, s);
    fu_tensor_requires_grad(x, 1);
    for (int64_t i = 0; i < x->numel; i++) x->data[i] = 1 + (float)(i % 7);
    fu_tensor *y = fu_dropout(g, x, 0.3f);
    REQUIRE(y);
    int64_t zeros = 0;
    int scaled_ok = 1;
    for (int64_t i = 0; i < y->numel; i++) {
        if (y->data[i] == 0) zeros++;
        else scaled_ok &= fabsf(y->data[i] - x->data[i] / 0.7f) < 1e-5f;
    }
    CHECK(scaled_ok);
    CHECK_NEAR((double)zeros / (double)y->numel, 0.3, 0.03);
    /* Backward multiplies by the same mask; a re-run of the unchanged graph draws the same mask. */
    float *first = malloc((size_t)y->numel * sizeof(float));
    REQUIRE(first);
    memcpy(first, y->data, (size_t)y->numel * sizeof(float));
    CHECK(fu_graph_backward(g, y, NULL) == FU_OK);
    int grad_ok = 1;
    for (int64_t i = 0; i < y->numel; i++) grad_ok &= x->grad[i] == (first[i] != 0 ? 1 / 0.7f : 0);
    CHECK(grad_ok);
    CHECK(fu_graph_forward(g) == FU_OK);
    CHECK(memcmp(first, y->data, (size_t)y->numel * sizeof(float)) == 0);
    /* A new seed draws a new mask. */
    g->seed += 1;
    CHECK(fu_graph_forward(g) == FU_OK);
    CHECK(memcmp(first, y->data, (size_t)y->numel * sizeof(float)) != 0);
    /* Eval: identity, gradient 1. */
    g->training = 0;
    CHECK(fu_graph_forward(g) == FU_OK);
    CHECK(memcmp(x->data, y->data, (size_t)y->numel * sizeof(float)) == 0);
    fu_tensor_zero_grad(x);
    CHECK(fu_graph_backward(g, y, NULL) == FU_OK);
    CHECK(x->grad[5] == 1 && x->grad[2049] == 1);
    /* p = 1 drops everything; p = 0 keeps everything. */
    g->training = 1;
    fu_tensor *all = fu_dropout(g, x, 1), *none = fu_dropout(g, x, 0);
    REQUIRE(all && none);
    int all_zero = 1, same = 1;
    for (int64_t i = 0; i < x->numel; i++) { all_zero &= all->data[i] == 0; same &= none->data[i] == x->data[i]; }
    CHECK(all_zero && same);
    free(first);
    fu_tensor_free(x);
    fu_graph_free(g);
}

static fu_tensor *build_dropout(fu_graph *g, fu_tensor **in, void *ctx) {
    (void)ctx;
    g->training = 1;
    /* Two dropouts of the same input in one graph draw different masks. */
    return fu_add(g, fu_dropout(g, in[0], 0.5f), fu_dropout(g, in[0], 0.25f));
}

TEST(gradcheck_dropout) {
    fu_rng r;
    fu_rng_seed(&r, 31);
    int64_t s[3] = {2, 3, 7};
    fu_tensor *x = randn_leaf(&r, 3, s, 1);
    fu_gradcheck_result res;
    CHECK(fu_gradcheck(build_dropout, &x, 1, NULL, NULL, &res) == FU_OK);
    CHECK(res.n_checked == 42);
    fu_tensor_free(x);
}

/* ---- L2 normalisation ---- */

TEST(l2_normalize_values) {
    fu_graph *g = fu_graph_new();
    fu_tensor *x = fu_tensor_newv(2, (int64_t)2, (int64_t)2);
    float v[4] = {3, 1, 4, 0};
    memcpy(x->data, v, sizeof v);
    fu_tensor *y0 = fu_l2_normalize(g, x, 0, 1e-12f), *y1 = fu_l2_normalize(g, x, -1, 1e-12f);
    REQUIRE(y0 && y1);
    /* Columns (3,4) and (1,0); rows (3,1) and (4,0). */
    CHECK_NEAR(y0->data[0], 0.6, 1e-7); CHECK_NEAR(y0->data[2], 0.8, 1e-7);
    CHECK_NEAR(y0->data[1], 1, 1e-7); CHECK_NEAR(y0->data[3], 0, 1e-7);
    CHECK_NEAR(y1->data[0], 3 / sqrt(10), 1e-7); CHECK_NEAR(y1->data[1], 1 / sqrt(10), 1e-7);
    CHECK_NEAR(y1->data[2], 1, 1e-7); CHECK_NEAR(y1->data[3], 0, 1e-7);
    /* Norm below eps: y = x / eps. */
    fu_tensor *y2 = fu_l2_normalize(g, x, 1, 100);
    REQUIRE(y2);
    CHECK_NEAR(y2->data[0], 0.03, 1e-7);
    fu_tensor_free(x);
    fu_graph_free(g);
}

typedef struct { int axis; float eps; } l2_ctx;

static fu_tensor *build_l2(fu_graph *g, fu_tensor **in, void *ctx) {
    const l2_ctx *c = ctx;
    return fu_l2_normalize(g, in[0], c->axis, c->eps);
}

TEST(gradcheck_l2_normalize) {
    fu_rng r;
    fu_rng_seed(&r, 41);
    int64_t s[3] = {3, 5, 4};
    fu_tensor *x = randn_leaf(&r, 3, s, 1);
    fu_gradcheck_opts o = {1e-3f, 2e-3f, 2e-2f, 60, 3};
    fu_gradcheck_result res;
    l2_ctx cases[4] = {{1, 1e-12f}, {-1, 1e-12f}, {0, 1e-12f}, {1, 50}};
    for (int i = 0; i < 4; i++)
        CHECK_MSG(fu_gradcheck(build_l2, &x, 1, &cases[i], &o, &res) == FU_OK, "case %d: %s", i, fu_last_error());
    fu_tensor_free(x);
}

/* ---- argument checks ---- */

TEST(norm_ops_reject_bad_arguments) {
    fu_graph *g = fu_graph_new();
    fu_tensor *x2 = fu_tensor_newv(2, (int64_t)4, (int64_t)3);
    fu_tensor *x4 = fu_tensor_newv(4, (int64_t)2, (int64_t)3, (int64_t)2, (int64_t)2);
    fu_tensor *c3 = fu_tensor_newv(1, (int64_t)3), *c4 = fu_tensor_newv(1, (int64_t)4);
    fu_tensor *one = fu_tensor_newv(4, (int64_t)1, (int64_t)3, (int64_t)1, (int64_t)1);
    CHECK(fu_instance_norm(g, x2, 1e-5f) == NULL);
    CHECK(strstr(fu_last_error(), "instance_norm") != NULL);
    CHECK(fu_instance_norm(g, x4, -1) == NULL);
    CHECK(fu_batch_norm(g, x4, c4, NULL, NULL, NULL, 0.1f, 1e-5f) == NULL);
    CHECK(strstr(fu_last_error(), "gamma") != NULL);
    CHECK(fu_batch_norm(g, x4, c3, c3, c3, NULL, 0.1f, 1e-5f) == NULL);
    CHECK(fu_batch_norm(g, x4, NULL, NULL, c3, c3, 2, 1e-5f) == NULL);
    CHECK(fu_batch_norm(g, x4, NULL, NULL, c3, c3, 0.1f, NAN) == NULL);
    g->training = 1;
    CHECK(fu_batch_norm(g, one, NULL, NULL, c3, c3, 0.1f, 1e-5f) == NULL);
    CHECK(strstr(fu_last_error(), "more than 1 value") != NULL);
    g->training = 0;
    CHECK(fu_batch_norm(g, one, NULL, NULL, c3, c3, 0.1f, 1e-5f) != NULL);
    CHECK(fu_dropout(g, x4, 1.5f) == NULL);
    CHECK(fu_dropout(g, x4, NAN) == NULL);
    CHECK(fu_l2_normalize(g, x4, 4, 1e-12f) == NULL);
    CHECK(fu_l2_normalize(g, x4, -5, 1e-12f) == NULL);
    CHECK(fu_l2_normalize(g, x4, 1, 0) == NULL);
    /* NULL inputs propagate, keeping the first error. */
    fu_clear_error();
    CHECK(fu_instance_norm(g, NULL, 1e-5f) == NULL);
    CHECK(strstr(fu_last_error(), "NULL") != NULL);
    CHECK(fu_dropout(g, fu_l2_normalize(g, fu_batch_norm(g, NULL, NULL, NULL, NULL, NULL, 0.1f, 1e-5f), 0, 1), 0.5f) == NULL);
    CHECK(fu_instance_norm(NULL, x4, 1e-5f) == NULL);
    fu_tensor *t[5] = {x2, x4, c3, c4, one};
    free_all(t, 5);
    fu_graph_free(g);
}

/* Sizes above the OpenMP thresholds: results with all threads match one thread. */
TEST(norm_ops_threads_agree) {
    fu_rng r;
    fu_rng_seed(&r, 91);
    int64_t s[4] = {2, 4, 65, 130};
    fu_tensor *x = randn_leaf(&r, 4, s, 1);
    fu_tensor *seed = randn_leaf(&r, 4, s, 0);
    float *ref = malloc((size_t)x->numel * 2 * sizeof(float));
    REQUIRE(ref);
    for (int pass = 0; pass < 2; pass++) {
        fu_set_threads(pass == 0 ? 1 : 0);
        fu_tensor_zero_grad(x);
        fu_graph *g = fu_graph_new();
        g->training = 1;
        fu_tensor *y = fu_instance_norm(g, x, 1e-5f);
        y = fu_batch_norm(g, y, NULL, NULL, NULL, NULL, 0.1f, 1e-5f);
        y = fu_l2_normalize(g, y, 1, 1e-12f);
        REQUIRE(y);
        CHECK(fu_graph_backward(g, y, seed->data) == FU_OK);
        if (pass == 0) {
            memcpy(ref, y->data, (size_t)x->numel * sizeof(float));
            memcpy(ref + x->numel, x->grad, (size_t)x->numel * sizeof(float));
        } else {
            CHECK(memcmp(ref, y->data, (size_t)x->numel * sizeof(float)) == 0);
            CHECK(memcmp(ref + x->numel, x->grad, (size_t)x->numel * sizeof(float)) == 0);
        }
        fu_graph_free(g);
    }
    free(ref);
    fu_tensor_free(x);
    fu_tensor_free(seed);
}
