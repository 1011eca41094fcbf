/* Losses: values against hand computation, finite-difference gradients, PULSE's GEOCROSS
 * against the golden reference, and argument validation. */
#include "test.h"
#include "util.h"
#include "golden.h"
#include "core/ops.h"
#include "core/gradcheck.h"
#include "core/rng.h"
#include <string.h>

static fu_tensor *leaf_from(int ndim, const int64_t *shape, const float *values, int grad) {
    fu_tensor *t = fu_tensor_new(ndim, shape);
    if (!t) return NULL;
    memcpy(t->data, values, (size_t)t->numel * sizeof(float));
    if (grad) fu_tensor_requires_grad(t, 1);
    return t;
}

static void free_all(fu_tensor **t, int n) {
    for (int i = 0; i < n; i++) fu_tensor_free(t[i]);
}

/* ---- MSE / L1 ---- */

static fu_tensor *build_edge_l1(fu_graph *g, fu_tensor **in, void *ctx) {
    (void)ctx;
    return fu_edge_l1_loss(g, in[0], in[1]);
}

TEST(loss_mse_l1_values_and_grads) {
    int64_t s[1] = {4};
    fu_tensor *a = leaf_from(1, s, (float[]){1, 2, 3, 4}, 1), *b = leaf_from(1, s, (float[]){0, 2, 5, 1}, 1);
    fu_graph *g = fu_graph_new();
    fu_tensor *mse = fu_mse_loss(g, a, b), *l1 = fu_l1_loss(g, a, b);
    REQUIRE(mse && l1);
    CHECK(mse->ndim == 1 && mse->shape[0] == 1);
    CHECK_NEAR(mse->data[0], 3.5, 1e-6);  /* (1 + 0 + 4 + 9) / 4 */
    CHECK_NEAR(l1->data[0], 1.5, 1e-6);   /* (1 + 0 + 2 + 3) / 4 */
    REQUIRE(fu_graph_backward(g, mse, NULL) == FU_OK);
    const float want_mse[4] = {0.5f, 0, -1, 1.5f};  /* 2 (a - b) / 4 */
    for (int i = 0; i < 4; i++) { CHECK_NEAR(a->grad[i], want_mse[i], 1e-6); CHECK_NEAR(b->grad[i], -want_mse[i], 1e-6); }
    fu_tensor_zero_grad(a);
    REQUIRE(fu_graph_backward(g, l1, NULL) == FU_OK);
    const float want_l1[4] = {0.25f, 0, -0.25f, 0.25f};  /* sign(a - b) / 4, 0 at a == b */
    for (int i = 0; i < 4; i++) CHECK_NEAR(a->grad[i], want_l1[i], 1e-6);
    fu_tensor_free(a);
    fu_tensor_free(b);
    fu_graph_free(g);
}

/* Edge L1 of 1x1x2x3 images: (mean |vertical diffs| + mean |horizontal diffs|) / 2, and its
 * gradient against finite differences. */
TEST(loss_edge_l1_value_and_gradcheck) {
    int64_t s[4] = {1, 1, 2, 3};
    fu_tensor *a = leaf_from(4, s, (float[]){0, 1, 3, 2, 2, 2}, 1), *b = leaf_from(4, s, (float[]){0, 0, 0, 0, 0, 0}, 1);
    fu_graph *g = fu_graph_new();
    fu_tensor *e = fu_edge_l1_loss(g, a, b);
    REQUIRE(e);
    /* vertical: |2-0|, |2-1|, |2-3| -> mean 4/3; horizontal: |1|, |2|, |0|, |0| -> mean 3/4 */
    CHECK_NEAR(e->data[0], 0.5 * (4.0 / 3.0 + 0.75), 1e-6);
    int64_t bad[3] = {1, 2, 3};
    fu_tensor *c = leaf_from(3, bad, (float[]){0, 0, 0, 0, 0, 0}, 0);
    CHECK(fu_edge_l1_loss(g, c, c) == NULL && strstr(fu_last_error(), "edge_l1_loss"));
    fu_rng r;
    fu_rng_seed(&r, 5);
    int64_t big[4] = {2, 2, 4, 5};
    fu_tensor *in[2] = {randn_leaf(&r, 4, big, 1), randn_leaf(&r, 4, big, 1)};
    for (int64_t i = 0; i < in[0]->numel; i++) in[0]->data[i] *= 3;   /* neighbour differences away from the kink */
    fu_gradcheck_opts o = {.eps = 1e-3f, .max_checks = 40, .seed = 6};
    fu_gradcheck_result res;
    CHECK_MSG(fu_gradcheck(build_edge_l1, in, 2, NULL, &o, &res) == FU_OK, "%s", fu_last_error());
    fu_tensor *all[] = {a, b, c, in[0], in[1]};
    for (int i = 0; i < 5; i++) fu_tensor_free(all[i]);
    fu_graph_free(g);
}

static fu_tensor *build_mse_plus_l1(fu_graph *g, fu_tensor **in, void *ctx) {
    (void)ctx;
    return fu_add(g, fu_mse_loss(g, in[0], in[1]), fu_l1_loss(g, in[0], in[1]));
}

TEST(loss_mse_l1_gradcheck) {
    fu_rng r;
    fu_rng_seed(&r, 11);
    int64_t s[3] = {3, 5, 7};
    fu_tensor *in[2] = {randn_leaf(&r, 3, s, 1), randn_leaf(&r, 3, s, 1)};
    /* L1's kink is at a == b: keep |a - b| >= 0.2, well beyond the checker's step of 0.01. */
    for (int64_t i = 0; i < in[0]->numel; i++) {
        float gap = 0.2f + fu_rng_uniform(&r);
        in[1]->data[i] = in[0]->data[i] + (fu_rng_below(&r, 2) ? gap : -gap);
    }
    fu_gradcheck_result res;
    CHECK(fu_gradcheck(build_mse_plus_l1, in, 2, NULL, NULL, &res) == FU_OK);
    CHECK(res.n_checked == 96);
    free_all(in, 2);
}

/* ---- cross-entropy ---- */

TEST(loss_cross_entropy_values_and_label_copy) {
    int64_t s[2] = {2, 3};
    fu_tensor *x = leaf_from(2, s, (float[]){1, 2, 3, 0, 0, 0}, 1);
    int labels[2] = {2, 1};
    fu_graph *g = fu_graph_new();
    fu_tensor *y = fu_cross_entropy(g, x, labels);
    REQUIRE(y);
    /* (log(e + e^2 + e^3) - 3 + log 3) / 2 */
    double want = (0.40760596444438013 + 1.0986122886681098) / 2;
    CHECK_NEAR(y->data[0], want, 1e-6);
    /* The op keeps its own copy of the labels: changing the caller's array changes nothing. */
    labels[0] = 0;
    REQUIRE(fu_graph_forward(g) == FU_OK);
    CHECK_NEAR(y->data[0], want, 1e-6);
    REQUIRE(fu_graph_backward(g, y, NULL) == FU_OK);
    double z = exp(1.0) + exp(2.0) + exp(3.0);
    CHECK_NEAR(x->grad[0], exp(1.0) / z / 2, 1e-6);
    CHECK_NEAR(x->grad[2], (exp(3.0) / z - 1) / 2, 1e-6);
    CHECK_NEAR(x->grad[4], (1.0 / 3 - 1) / 2, 1e-6);
    CHECK_NEAR(x->grad[5], 1.0 / 6, 1e-6);
    fu_tensor_free(x);
    fu_graph_free(g);
}

static fu_tensor *build_cross_entropy(fu_graph *g, fu_tensor **in, void *ctx) {
    return fu_cross_entropy(g, in[0], ctx);
}

TEST(loss_cross_entropy_gradcheck) {
    fu_rng r;
    fu_rng_seed(&r, 12);
    int64_t s[2] = {5, 7};
    fu_tensor *x = randn_leaf(&r, 2, s, 1);
    for (int64_t i = 0; i < x->numel; i++) x->data[i] *= 3;
    int labels[5] = {0, 6, 3, 3, 1};
    fu_gradcheck_result res;
    CHECK(fu_gradcheck(build_cross_entropy, &x, 1, labels, NULL, &res) == FU_OK);
    /* Large logits must not overflow: log-sum-exp is shifted by the row maximum. */
    fu_graph *g = fu_graph_new();
    for (int64_t i = 0; i < x->numel; i++) x->data[i] = 1000.0f * (float)(i % 7);
    fu_tensor *y = fu_cross_entropy(g, x, labels);
    REQUIRE(y);
    CHECK(isfinite(y->data[0]));
    /* Every row is 0, 1000, ..., 6000: loss = 6000 - 1000 * label. */
    CHECK_NEAR(y->data[0], (6000 + 0 + 3000 + 3000 + 5000) / 5.0, 1e-2);
    fu_tensor_free(x);
    fu_graph_free(g);
}

/* ---- BCE with logits ---- */

TEST(loss_bce_with_logits_values) {
    int64_t s[2] = {2, 2};
    fu_tensor *x = leaf_from(2, s, (float[]){0, 2, -3, 100}, 1), *t = leaf_from(2, s, (float[]){1, 0, 0.5f, 1}, 0);
    fu_tensor *mask = leaf_from(2, s, (float[]){1, 0, 1, 0}, 0), *zero = fu_tensor_new(2, s);
    fu_graph *g = fu_graph_new();
    fu_tensor *plain = fu_bce_with_logits(g, x, t, NULL), *masked = fu_bce_with_logits(g, x, t, mask);
    fu_tensor *none = fu_bce_with_logits(g, x, t, zero);
    REQUIRE(plain && masked && none);
    /* log 2, 2 + log(1 + e^-2), 1.5 + log(1 + e^-3), ~0 */
    CHECK_NEAR(plain->data[0], 1.092165635794165, 1e-6);
    CHECK_NEAR(masked->data[0], 1.1208672660668437, 1e-6);
    CHECK(none->data[0] == 0);
    REQUIRE(fu_graph_backward(g, masked, NULL) == FU_OK);
    CHECK_NEAR(x->grad[0], (0.5 - 1) / 2, 1e-6);                       /* (sigmoid(0) - 1) / 2 */
    CHECK(x->grad[1] == 0 && x->grad[3] == 0);                          /* masked out */
    CHECK_NEAR(x->grad[2], (1 / (1 + exp(3.0)) - 0.5) / 2, 1e-6);
    /* Extreme logits stay finite (no exp overflow). */
    x->data[0] = -200;
    x->data[1] = 200;
    REQUIRE(fu_graph_forward(g) == FU_OK);
    CHECK_NEAR(plain->data[0], (200 + 200 + 1.5 + log1p(exp(-3.0))) / 4, 1e-4);
    fu_tensor *all[4] = {x, t, mask, zero};
    free_all(all, 4);
    fu_graph_free(g);
}

static fu_tensor *build_bce(fu_graph *g, fu_tensor **in, void *ctx) {
    return fu_bce_with_logits(g, in[0], in[1], ctx ? in[2] : NULL);
}

TEST(loss_bce_with_logits_gradcheck) {
    fu_rng r;
    fu_rng_seed(&r, 13);
    int64_t s[3] = {2, 3, 5};
    fu_tensor *in[3] = {randn_leaf(&r, 3, s, 1), randn_leaf(&r, 3, s, 1), randn_leaf(&r, 3, s, 1)};
    fu_rng_fill_uniform(&r, in[1]->data, in[1]->numel, 0, 1);
    fu_rng_fill_uniform(&r, in[2]->data, in[2]->numel, 0.2f, 1);
    for (int64_t i = 0; i < in[0]->numel; i++) in[0]->data[i] *= 2;
    fu_gradcheck_result res;
    CHECK(fu_gradcheck(build_bce, in, 3, (void *)1, NULL, &res) == FU_OK);
    CHECK(res.n_checked == 90);
    CHECK(fu_gradcheck(build_bce, in, 2, NULL, NULL, &res) == FU_OK);
    free_all(in, 3);
}

/* ---- cosine similarity ---- */

TEST(loss_cosine_similarity_values) {
    int64_t s[2] = {3, 3};
    fu_tensor *a = leaf_from(2, s, (float[]){1, 0, 0, 1, 2, 2, 0, 0, 0}, 1);
    fu_tensor *b = leaf_from(2, s, (float[]){0, 1, 0, 2, 4, 4, 1, 1, 1}, 1);
    fu_graph *g = fu_graph_new();
    fu_tensor *y = fu_cosine_similarity(g, a, b, 1e-8f);
    REQUIRE(y);
    CHECK(y->ndim == 1 && y->shape[0] == 3);
    CHECK_NEAR(y->data[0], 0, 1e-7);
    CHECK_NEAR(y->data[1], 1, 1e-6);
    CHECK(y->data[2] == 0);  /* zero vector: norm clamped at eps, no NaN */
    REQUIRE(fu_graph_backward(g, y, NULL) == FU_OK);
    /* d cos/da at a = e_x, b = e_y: b/(|a||b|) - cos a/|a|^2 = e_y. */
    CHECK_NEAR(a->grad[0], 0, 1e-6);
    CHECK_NEAR(a->grad[1], 1, 1e-6);
    for (int j = 3; j < 6; j++) CHECK_NEAR(a->grad[j], 0, 1e-6);  /* parallel rows: cos at its maximum */
    int64_t s1[1] = {2};
    fu_tensor *p = leaf_from(1, s1, (float[]){3, 4}, 0), *q = leaf_from(1, s1, (float[]){4, 3}, 0);
    fu_tensor *c = fu_cosine_similarity(g, p, q, 1e-8f);
    REQUIRE(c);
    CHECK(c->ndim == 1 && c->numel == 1);
    CHECK_NEAR(c->data[0], 24.0 / 25.0, 1e-6);
    fu_tensor *all[4] = {a, b, p, q};
    free_all(all, 4);
    fu_graph_free(g);
}

static fu_tensor *build_cosine(fu_graph *g, fu_tensor **in, void *ctx) {
    (void)ctx;
    return fu_cosine_similarity(g, in[0], in[1], 1e-8f);
}

TEST(loss_cosine_similarity_gradcheck) {
    fu_rng r;
    fu_rng_seed(&r, 14);
    int64_t s[3] = {2, 3, 7};
    fu_tensor *in[2] = {randn_leaf(&r, 3, s, 1), randn_leaf(&r, 3, s, 1)};
    fu_gradcheck_result res;
    CHECK(fu_gradcheck(build_cosine, in, 2, NULL, NULL, &res) == FU_OK);
    free_all(in, 2);
}

/* ---- ArcFace ---- */

TEST(loss_arcface_values) {
    const double s = 4, m = 0.5, a60 = M_PI / 3, a170 = 170 * M_PI / 180;
    int64_t se[2] = {2, 2}, sw[2] = {3, 2};
    /* Embedding rows are e_x scaled (normalised inside); weight rows at 60, 90 and 170 degrees. */
    fu_tensor *emb = leaf_from(2, se, (float[]){2, 0, 0.5f, 0}, 1);
    fu_tensor *w = leaf_from(2, sw, (float[]){(float)(5 * cos(a60)), (float)(5 * sin(a60)), 0, 3, (float)cos(a170), (float)sin(a170)}, 1);
    int labels[2] = {0, 2};
    fu_graph *g = fu_graph_new();
    fu_tensor *y = fu_arcface_logits(g, emb, w, labels, (float)s, (float)m);
    REQUIRE(y);
    CHECK(y->ndim == 2 && y->shape[0] == 2 && y->shape[1] == 3);
    CHECK_NEAR(y->data[0], s * cos(a60 + m), 1e-5);        /* target, theta + m < pi */
    CHECK_NEAR(y->data[1], 0, 1e-5);                       /* non-target: s cos 90 */
    CHECK_NEAR(y->data[2], s * cos(a170), 1e-5);
    CHECK_NEAR(y->data[3], s * cos(a60), 1e-5);
    /* target at 170 degrees: theta + m > pi, fallback s (cos theta - m sin m) */
    CHECK_NEAR(y->data[5], s * (cos(a170) - m * sin(m)), 1e-5);
    CHECK(y->data[5] < y->data[2]);
    fu_tensor_free(emb);
    fu_tensor_free(w);
    fu_graph_free(g);
}

typedef struct { const int *labels; float s, m; int with_ce; } arcface_ctx;

static fu_tensor *build_arcface(fu_graph *g, fu_tensor **in, void *ctx) {
    const arcface_ctx *c = ctx;
    fu_tensor *logits = fu_arcface_logits(g, in[0], in[1], c->labels, c->s, c->m);
    return c->with_ce ? fu_cross_entropy(g, logits, c->labels) : logits;
}

TEST(loss_arcface_gradcheck) {
    fu_rng r;
    fu_rng_seed(&r, 15);
    int64_t se[2] = {3, 6}, sw[2] = {5, 6};
    fu_tensor *in[2] = {randn_leaf(&r, 2, se, 1), randn_leaf(&r, 2, sw, 1)};
    int labels[3] = {4, 0, 2};
    arcface_ctx ctx = {labels, 4.0f, 0.3f, 0};
    /* Keep the target cosines away from the fallback threshold -cos(m) and from +-1. */
    for (int i = 0; i < 3; i++) {
        const float *e = in[0]->data + i * 6, *w = in[1]->data + labels[i] * 6;
        double dot = 0, ne = 0, nw = 0;
        for (int j = 0; j < 6; j++) { dot += e[j] * w[j]; ne += e[j] * e[j]; nw += w[j] * w[j]; }
        CHECK(fabs(dot / sqrt(ne * nw)) < 0.9);
    }
    fu_gradcheck_opts o = {1e-3f, 2e-3f, 2e-2f, 48, 99};
    fu_gradcheck_result res;
    CHECK(fu_gradcheck(build_arcface, in, 2, &ctx, &o, &res) == FU_OK);
    ctx.with_ce = 1;
    CHECK(fu_gradcheck(build_arcface, in, 2, &ctx, &o, &res) == FU_OK);
    free_all(in, 2);
}

/* ---- GEOCROSS ---- */

TEST(loss_geocross_hand_values) {
    int64_t s[3] = {1, 2, 3};
    /* Rows x and -x (|x|^2 = 5.25): off the diagonal theta = atan2(|2x|, 0) = pi/2, on it
     * theta = atan2(0, |2x|) = 0, up to the 1e-9 inside both square roots. value = mean of the
     * four terms D (2 theta)^2 / 8, i.e. about D pi^2 / 16. */
    double off = atan2(sqrt(21 + 1e-9), sqrt(1e-9)), diag = atan2(sqrt(1e-9), sqrt(21 + 1e-9));
    double want = (2 * 3 * pow(2 * off, 2) / 8 + 2 * 3 * pow(2 * diag, 2) / 8) / 4;
    fu_tensor *x = leaf_from(3, s, (float[]){1, -2, 0.5f, -1, 2, -0.5f}, 0);
    fu_graph *g = fu_graph_new();
    fu_tensor *y = fu_geocross(g, x);
    REQUIRE(y);
    CHECK_NEAR(y->data[0], want, 1e-6);
    CHECK_NEAR(y->data[0], 3 * M_PI * M_PI / 16, 1e-4);
    /* A tiled latent (all rows equal) costs nothing. */
    memcpy(x->data + 3, x->data, 3 * sizeof(float));
    REQUIRE(fu_graph_forward(g) == FU_OK);
    CHECK(fabsf(y->data[0]) < 1e-8f);
    fu_tensor_free(x);
    fu_graph_free(g);
}

TEST(loss_geocross_golden) {
    fu_tensor *latent = golden_load("geocross", "latent"), *value = golden_load("geocross", "value");
    fu_tensor *grad = golden_load("geocross", "grad_latent");
    if (!latent || !value || !grad) {
        fu_tensor_free(latent); fu_tensor_free(value); fu_tensor_free(grad);
        SKIP("geocross goldens not found (FACEUP_SHARED)");
    }
    REQUIRE(fu_tensor_requires_grad(latent, 1) == FU_OK);
    fu_graph *g = fu_graph_new();
    fu_tensor *y = fu_geocross(g, latent);
    REQUIRE(y);
    REQUIRE(fu_graph_backward(g, y, NULL) == FU_OK);
    double rel = fabs(y->data[0] - value->data[0]) / fabs(value->data[0]);
    CHECK_MSG(rel <= 1e-5, "geocross value %.8g vs golden %.8g (relative %.3g)", (double)y->data[0], (double)value->data[0], rel);
    printf("    geocross: value %.8g vs %.8g (rel %.2g)\n", (double)y->data[0], (double)value->data[0], rel);
    fu_tensor g_ours = *latent;
    g_ours.data = latent->grad;
    float diff = golden_max_diff(&g_ours, grad), scale = golden_max_abs(grad);
    printf("    geocross: grad max diff %.3g, max |golden| %.3g\n", (double)diff, (double)scale);
    CHECK_MSG(diff <= 1e-5f * scale, "geocross grad max diff %.3g (max |golden| %.3g)", (double)diff, (double)scale);
    fu_tensor_free(latent); fu_tensor_free(value); fu_tensor_free(grad);
    fu_graph_free(g);
}

static fu_tensor *build_geocross(fu_graph *g, fu_tensor **in, void *ctx) {
    (void)ctx;
    return fu_geocross(g, in[0]);
}

TEST(loss_geocross_gradcheck) {
    fu_rng r;
    fu_rng_seed(&r, 16);
    int64_t s[3] = {2, 3, 5};
    fu_tensor *x = randn_leaf(&r, 3, s, 1);
    fu_gradcheck_result res;
    CHECK(fu_gradcheck(build_geocross, &x, 1, NULL, NULL, &res) == FU_OK);
    fu_tensor_free(x);
}

/* ---- argument validation ---- */

TEST(loss_rejects_bad_arguments) {
    fu_graph *g = fu_graph_new();
    int64_t s23[2] = {2, 3}, s32[2] = {3, 2}, s3[1] = {3}, s24[2] = {2, 4};
    fu_tensor *a = fu_tensor_new(2, s23), *b = fu_tensor_new(2, s32), *v = fu_tensor_new(1, s3), *w = fu_tensor_new(2, s24);
    int nodes = g->n_nodes;
    int bad_hi[2] = {0, 3}, bad_lo[2] = {-1, 0};
    CHECK(fu_cross_entropy(g, a, bad_hi) == NULL);
    CHECK(strstr(fu_last_error(), "label 3 of row 1") != NULL);
    CHECK(fu_cross_entropy(g, a, bad_lo) == NULL);
    CHECK(fu_cross_entropy(g, a, NULL) == NULL);
    CHECK(fu_cross_entropy(g, v, bad_hi) == NULL);
    CHECK(fu_arcface_logits(g, a, b, bad_lo, 4, 0.5f) == NULL);  /* D 3 vs 2 */
    CHECK(strstr(fu_last_error(), "arcface_logits") != NULL);
    CHECK(fu_arcface_logits(g, a, v, bad_lo, 4, 0.5f) == NULL);
    fu_tensor *classes = fu_tensor_new(2, s23);  /* 2 classes of size 3 */
    CHECK(fu_arcface_logits(g, a, classes, (int[]){0, 2}, 4, 0.5f) == NULL);
    CHECK(strstr(fu_last_error(), "label 2") != NULL);
    CHECK(fu_arcface_logits(g, a, classes, (int[]){0, 1}, 4, 2.0f) == NULL);  /* margin >= pi/2 */
    CHECK(fu_mse_loss(g, a, b) == NULL);
    CHECK(strstr(fu_last_error(), "mse_loss: shapes [2,3] and [3,2] differ") != NULL);
    CHECK(fu_l1_loss(g, a, w) == NULL);
    CHECK(fu_bce_with_logits(g, a, a, w) == NULL);
    CHECK(strstr(fu_last_error(), "mask") != NULL);
    CHECK(fu_bce_with_logits(g, a, b, NULL) == NULL);
    CHECK(fu_cosine_similarity(g, a, w, 1e-8f) == NULL);
    CHECK(fu_cosine_similarity(g, a, a, 0) == NULL);
    CHECK(fu_geocross(g, a) == NULL);
    CHECK(strstr(fu_last_error(), "geocross") != NULL);
    CHECK(g->n_nodes == nodes);  /* rejected calls leave nothing behind */
    /* A NULL input propagates without replacing the first error. */
    fu_clear_error();
    CHECK(fu_mse_loss(g, NULL, a) == NULL);
    CHECK(strstr(fu_last_error(), "NULL") != NULL);
    CHECK(fu_cross_entropy(g, NULL, bad_hi) == NULL);
    CHECK(fu_arcface_logits(g, NULL, a, bad_hi, 1, 0) == NULL);
    CHECK(fu_geocross(g, NULL) == NULL);
    fu_tensor *all[5] = {a, b, v, w, classes};
    free_all(all, 5);
    fu_graph_free(g);
}
