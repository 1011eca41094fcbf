/* Reductions and softmax: hand-computed values, accuracy of long sums, first-maximum gradient,
 * finite-difference gradients over many axis masks (adjacent and not, keepdim or not) and
 * softmax axes (including negative), and argument validation. */
#include "test.h"
#include "util.h"
#include "core/ops.h"
#include "core/gradcheck.h"
#include "core/rng.h"
#include <string.h>

static void gradcheck_ok(fu_build_fn build, fu_tensor **in, int n, void *ctx, const char *what, unsigned detail) {
    fu_gradcheck_result res;
    int rc = fu_gradcheck(build, in, n, ctx, NULL, &res);
    CHECK_MSG(rc == FU_OK && res.n_checked > 0, "%s (%u): %s", what, detail, fu_last_error());
}

TEST(reduce_values_sum_mean_max) {
    fu_graph *g = fu_graph_new();
    fu_tensor *x = arange_leaf(3, (int64_t[]){2, 3, 4});
    fu_tensor *s = fu_sum(g, x, 1u << 1, 0);
    REQUIRE(s);
    CHECK(s->ndim == 2 && s->shape[0] == 2 && s->shape[1] == 4);
    CHECK(tensor_equals(s, (float[]){12, 15, 18, 21, 48, 51, 54, 57}, 8));
    fu_tensor *sk = fu_sum(g, x, 1u << 1, 1);
    CHECK(sk && sk->ndim == 3 && sk->shape[1] == 1 && tensor_equals(sk, s->data, 8));
    /* Non-adjacent axes 0 and 2: out[j] = sum over i, k of 12i + 4j + k. */
    CHECK(tensor_equals(fu_sum(g, x, 0x5, 0), (float[]){60, 92, 124}, 3));
    CHECK(tensor_equals(fu_mean(g, x, 0x5, 0), (float[]){7.5f, 11.5f, 15.5f}, 3));
    CHECK(tensor_equals(fu_max(g, x, 0x5, 0), (float[]){15, 19, 23}, 3));
    CHECK(tensor_equals(fu_max(g, x, 0x6, 1), (float[]){11, 23}, 2));
    fu_tensor *all = fu_mean(g, x, 0x7, 0);
    CHECK(all && all->ndim == 1 && all->shape[0] == 1 && all->data[0] == 11.5f);
    fu_tensor *allk = fu_sum(g, x, 0x7, 1);
    CHECK(allk && allk->ndim == 3 && allk->data[0] == 276);
    CHECK(fu_sum_all(g, x)->data[0] == 276);
    CHECK(fu_mean_all(g, x)->data[0] == 11.5f);
    fu_tensor_free(x);
    fu_graph_free(g);
}

TEST(reduce_max_gradient_goes_to_first_maximum) {
    fu_graph *g = fu_graph_new();
    fu_tensor *x = fu_tensor_newv(2, (int64_t)2, (int64_t)4);
    const float v[8] = {1, 3, 3, 2,   5, 5, 5, 5};
    memcpy(x->data, v, sizeof v);
    fu_tensor_requires_grad(x, 1);
    fu_tensor *m = fu_max(g, x, 1u << 1, 0);
    REQUIRE(m);
    CHECK(m->data[0] == 3 && m->data[1] == 5);
    REQUIRE(fu_graph_backward(g, m, (float[]){2, 7}) == FU_OK);
    CHECK(tensor_equals(&(fu_tensor){.numel = 8, .data = x->grad}, (float[]){0, 2, 0, 0, 7, 0, 0, 0}, 8));
    /* Over axis 0 (strided): columns {1,5} {3,5} {3,5} {2,2}; the tie goes to row 0. */
    fu_tensor_zero_grad(x);
    x->data[7] = 2;
    fu_tensor *m0 = fu_max(g, x, 1u << 0, 1);
    REQUIRE(m0);
    REQUIRE(fu_graph_backward(g, m0, NULL) == FU_OK);
    CHECK(tensor_equals(&(fu_tensor){.numel = 8, .data = x->grad}, (float[]){0, 0, 0, 1, 1, 1, 1, 0}, 8));
    fu_tensor_free(x);
    fu_graph_free(g);
}

TEST(reduce_long_sums_are_accurate) {
    /* 2^20 + 3 copies of 0.1f: float accumulation would drift by ~1% (the running sum's ulp
     * grows past 0.1f's precision); double accumulation keeps the rounding error far below
     * the result's own ulp. */
    fu_graph *g = fu_graph_new();
    const int64_t n = (1 << 20) + 3;
    fu_tensor *x = fu_tensor_new(1, &n);
    fu_tensor_fill(x, 0.1f);
    const double exact = (double)n * (double)0.1f;
    fu_tensor *s = fu_sum_all(g, x), *m = fu_mean_all(g, x);
    REQUIRE(s && m);
    CHECK_NEAR(s->data[0], exact, exact * 1e-7);
    CHECK(m->data[0] == 0.1f);
    /* The same through the axis reduction, which also splits outputs across threads. */
    fu_tensor *x2 = fu_tensor_newv(2, (int64_t)3, n);
    fu_tensor_fill(x2, 0.1f);
    fu_tensor *sa = fu_sum(g, x2, 1u << 1, 0), *ma = fu_mean(g, x2, 1u << 1, 0);
    REQUIRE(sa && ma);
    for (int i = 0; i < 3; i++) {
        CHECK_NEAR(sa->data[i], exact, exact * 1e-7);
        CHECK(ma->data[i] == 0.1f);
    }
    fu_tensor_free(x);
    fu_tensor_free(x2);
    fu_graph_free(g);
}

typedef struct { int kind; unsigned axes; int keepdim; } reduce_ctx;

static fu_tensor *build_reduce(fu_graph *g, fu_tensor **in, void *ctx) {
    const reduce_ctx *c = ctx;
    switch (c->kind) {
    case 0: return fu_sum(g, in[0], c->axes, c->keepdim);
    case 1: return fu_mean(g, in[0], c->axes, c->keepdim);
    case 2: return fu_max(g, in[0], c->axes, c->keepdim);
    case 3: return fu_sum_all(g, in[0]);
    default: return fu_mean_all(g, in[0]);
    }
}

TEST(reduce_gradcheck_masks) {
    fu_rng r;
    fu_rng_seed(&r, 31);
    const int64_t shape[4] = {3, 4, 5, 3};
    const unsigned masks[] = {0x1, 0x2, 0x8, 0x6, 0xA, 0x5, 0x9, 0xF};
    fu_tensor *x = fu_tensor_new(4, shape);
    fu_tensor_requires_grad(x, 1);
    /* Distinct values 0.05 apart (a permutation), so eps = 0.01 never changes which is max. */
    int64_t idx[180];
    for (int64_t i = 0; i < x->numel; i++) idx[i] = i;
    fu_rng_shuffle(&r, idx, x->numel);
    for (int64_t i = 0; i < x->numel; i++) x->data[i] = 0.05f * (float)idx[i] - 4;
    for (int kind = 0; kind < 3; kind++)
        for (size_t m = 0; m < sizeof masks / sizeof masks[0]; m++)
            for (int keep = 0; keep < 2; keep++) {
                reduce_ctx c = {kind, masks[m], keep};
                gradcheck_ok(build_reduce, &x, 1, &c, kind == 0 ? "sum" : kind == 1 ? "mean" : "max", masks[m]);
            }
    for (int kind = 3; kind < 5; kind++) {
        reduce_ctx c = {kind, 0, 0};
        gradcheck_ok(build_reduce, &x, 1, &c, "sum_all/mean_all", (unsigned)kind);
    }
    fu_tensor_free(x);
}

TEST(reduce_bad_arguments) {
    fu_graph *g = fu_graph_new();
    fu_tensor *x = arange_leaf(2, (int64_t[]){2, 3});
    CHECK(fu_sum(g, x, 0, 0) == NULL);
    CHECK(strstr(fu_last_error(), "sum") && strstr(fu_last_error(), "axes"));
    CHECK(fu_mean(g, x, 0x4, 0) == NULL);   /* bit 2 beyond 2 dims */
    CHECK(fu_max(g, x, 0x80000000u, 1) == NULL);
    fu_tensor *e = fu_tensor_newv(2, (int64_t)2, (int64_t)0);
    CHECK(fu_max(g, e, 0x2, 0) == NULL);    /* max over an empty dim has no value */
    CHECK(fu_mean(g, e, 0x2, 0) == NULL);
    fu_tensor *se = fu_sum(g, e, 0x2, 0);    /* an empty sum is 0 */
    CHECK(se && se->numel == 2 && se->data[0] == 0 && se->data[1] == 0);
    CHECK(fu_sum(g, e, 0x1, 0) && fu_max(g, e, 0x1, 0));  /* no outputs: nothing to compute */
    CHECK(fu_mean_all(g, e) == NULL);
    CHECK(fu_sum_all(g, e) && fu_sum_all(g, e)->data[0] == 0);
    CHECK(fu_softmax(g, x, 2) == NULL);
    CHECK(strstr(fu_last_error(), "softmax") && strstr(fu_last_error(), "axis"));
    CHECK(fu_log_softmax(g, x, -3) == NULL);
    fu_clear_error();
    CHECK(fu_sum(g, NULL, 1, 0) == NULL && fu_last_code() == FU_E_INPUT);
    CHECK(fu_sum_all(g, NULL) == NULL && fu_mean_all(g, NULL) == NULL && fu_softmax(g, NULL, 0) == NULL);
    fu_tensor_free(e);
    fu_tensor_free(x);
    fu_graph_free(g);
}

/* ---- softmax */

TEST(softmax_values_and_stability) {
    fu_graph *g = fu_graph_new();
    fu_tensor *x = fu_tensor_newv(2, (int64_t)3, (int64_t)3);
    const float v[9] = {1, 2, 3,   1000, 1001, 1002,   -1000, -999, -998};
    memcpy(x->data, v, sizeof v);
    fu_tensor *s = fu_softmax(g, x, -1), *ls = fu_log_softmax(g, x, 1);
    REQUIRE(s && ls);
    const double ps[3] = {0.09003057317, 0.24472847105, 0.66524095577};
    const double lps[3] = {-2.40760596445, -1.40760596445, -0.40760596445};
    for (int row = 0; row < 3; row++)
        for (int k = 0; k < 3; k++) {
            CHECK_NEAR(s->data[row * 3 + k], ps[k], 1e-6);
            CHECK_NEAR(ls->data[row * 3 + k], lps[k], 1e-5);
        }
    /* Along axis 0 of [2,3,2]: every line is a pair (v, v + 1). */
    fu_tensor *y = arange_leaf(3, (int64_t[]){2, 3, 2});
    for (int i = 6; i < 12; i++) y->data[i] = y->data[i - 6] + 1;
    fu_tensor *s0 = fu_softmax(g, y, 0);
    REQUIRE(s0);
    for (int i = 0; i < 6; i++) {
        CHECK_NEAR(s0->data[i], 0.26894142, 1e-6);       /* 1 / (1 + e) */
        CHECK_NEAR(s0->data[i + 6], 0.73105858, 1e-6);
    }
    fu_tensor *s1 = fu_softmax(g, y, 1);
    REQUIRE(s1);
    for (int n = 0; n < 2; n++)
        for (int k = 0; k < 2; k++) {
            double sum = 0;
            for (int c = 0; c < 3; c++) sum += s1->data[(n * 3 + c) * 2 + k];
            CHECK_NEAR(sum, 1.0, 1e-6);
        }
    fu_tensor_free(y);
    fu_tensor_free(x);
    fu_graph_free(g);
}

typedef struct { int axis, log_out; } softmax_ctx;

static fu_tensor *build_softmax(fu_graph *g, fu_tensor **in, void *ctx) {
    const softmax_ctx *c = ctx;
    return c->log_out ? fu_log_softmax(g, in[0], c->axis) : fu_softmax(g, in[0], c->axis);
}

TEST(softmax_gradcheck_axes) {
    fu_rng r;
    fu_rng_seed(&r, 32);
    const int axes[] = {0, 1, 2, -1, -3};
    for (int log_out = 0; log_out < 2; log_out++)
        for (size_t a = 0; a < sizeof axes / sizeof axes[0]; a++) {
            fu_tensor *x = fu_tensor_newv(4, (int64_t)2, (int64_t)5, (int64_t)3, (int64_t)7);
            fu_rng_fill_normal(&r, x->data, x->numel, 0, 2);
            fu_tensor_requires_grad(x, 1);
            softmax_ctx c = {axes[a], log_out};
            gradcheck_ok(build_softmax, &x, 1, &c, log_out ? "log_softmax" : "softmax", (unsigned)a);
            fu_tensor_free(x);
        }
}

TEST(reduce_and_softmax_large_parallel_paths) {
    /* Above the OpenMP thresholds, against direct double-precision loops. */
    fu_graph *g = fu_graph_new();
    fu_rng r;
    fu_rng_seed(&r, 33);
    const int64_t N = 4, C = 8, HW = 2000;
    fu_tensor *x = fu_tensor_newv(3, N, C, HW);
    fu_rng_fill_normal(&r, x->data, x->numel, 0, 1);
    fu_tensor *s = fu_sum(g, x, 0x5, 0), *sm = fu_softmax(g, x, 1);
    REQUIRE(s && sm);
    int bad = 0;
    for (int64_t c = 0; c < C; c++) {
        double ref = 0;
        for (int64_t n = 0; n < N; n++)
            for (int64_t k = 0; k < HW; k++) ref += x->data[(n * C + c) * HW + k];
        bad += fabs(s->data[c] - ref) > 1e-3;
    }
    for (int64_t n = 0; n < N; n++)
        for (int64_t k = 0; k < HW; k += 97) {
            double z = 0;
            for (int64_t c = 0; c < C; c++) z += exp(x->data[(n * C + c) * HW + k]);
            for (int64_t c = 0; c < C; c++)
                bad += fabs(sm->data[(n * C + c) * HW + k] - exp(x->data[(n * C + c) * HW + k]) / z) > 1e-6;
        }
    CHECK(bad == 0);
    fu_tensor_free(x);
    fu_graph_free(g);
}
