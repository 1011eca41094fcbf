/* Unary ops and activations: forward values against hand-computed numbers, finite-difference
 * gradients on random odd shapes (inputs kept away from kinks and out of invalid domains),
 * PReLU's per-channel slope gradient, and argument validation. */
#include "test.h"
#include "core/ops.h"
#include "core/gradcheck.h"
#include "core/rng.h"
#include <string.h>

typedef fu_tensor *(*unary_fn)(fu_graph *, fu_tensor *);

/* Random shape of `nd` dims with sizes in [1, 5], batch (dim 0) >= 2. */
static void random_shape(fu_rng *r, int nd, int64_t *shape) {
    for (int d = 0; d < nd; d++) shape[d] = 1 + (int64_t)fu_rng_below(r, 5);
    shape[0] = 2 + (int64_t)fu_rng_below(r, 2);
}

/* Uniform values in [lo, hi] at least `gap` away from every kink. */
static fu_tensor *leaf_avoiding(fu_rng *r, int nd, const int64_t *shape, float lo, float hi,
                                const float *kinks, int n_kinks, float gap) {
    fu_tensor *t = fu_tensor_new(nd, shape);
    if (!t) return NULL;
    for (int64_t i = 0; i < t->numel; i++) {
        float v;
        int near;
        do {
            v = lo + (hi - lo) * fu_rng_uniform(r);
            near = 0;
            for (int k = 0; k < n_kinks; k++) near |= fabsf(v - kinks[k]) < gap;
        } while (near);
        t->data[i] = v;
    }
    fu_tensor_requires_grad(t, 1);
    return t;
}

typedef struct { const char *name; int kind; float lo, hi; float kinks[3]; int n_kinks; } unary_case;

enum { K_NEG, K_ABS, K_SQUARE, K_SQRT, K_RSQRT, K_EXP, K_LOG, K_SCALE_SHIFT, K_CLAMP, K_RELU,
       K_RELU6, K_LEAKY, K_SIGMOID, K_TANH, K_SILU, K_ELU, K_ELU_HALF, K_ACOS };

static fu_tensor *apply_case(fu_graph *g, fu_tensor *x, int kind) {
    switch (kind) {
    case K_NEG: return fu_neg(g, x);
    case K_ABS: return fu_abs(g, x);
    case K_SQUARE: return fu_square(g, x);
    case K_SQRT: return fu_sqrt(g, x);
    case K_RSQRT: return fu_rsqrt(g, x);
    case K_EXP: return fu_exp(g, x);
    case K_LOG: return fu_log(g, x);
    case K_SCALE_SHIFT: return fu_scale_shift(g, x, -1.5f, 0.25f);
    case K_CLAMP: return fu_clamp(g, x, -0.5f, 0.7f);
    case K_RELU: return fu_relu(g, x);
    case K_RELU6: return fu_relu6(g, x);
    case K_LEAKY: return fu_leaky_relu(g, x, 0.2f);
    case K_SIGMOID: return fu_sigmoid(g, x);
    case K_TANH: return fu_tanh(g, x);
    case K_SILU: return fu_silu(g, x);
    case K_ELU: return fu_elu(g, x, 1.0f);
    case K_ACOS: return fu_acos(g, x);
    default: return fu_elu(g, x, 0.5f);
    }
}

static fu_tensor *build_unary(fu_graph *g, fu_tensor **in, void *ctx) {
    return apply_case(g, in[0], ((const unary_case *)ctx)->kind);
}

TEST(unary_gradcheck_all_ops) {
    static const unary_case cases[] = {
        {"neg", K_NEG, -3, 3, {0}, 0},           {"abs", K_ABS, -3, 3, {0}, 1},
        {"square", K_SQUARE, -3, 3, {0}, 0},     {"sqrt", K_SQRT, 0.3f, 4, {0}, 0},
        {"rsqrt", K_RSQRT, 0.3f, 4, {0}, 0},     {"exp", K_EXP, -3, 2, {0}, 0},
        {"log", K_LOG, 0.2f, 5, {0}, 0},         {"scale_shift", K_SCALE_SHIFT, -3, 3, {0}, 0},
        {"clamp", K_CLAMP, -2, 2, {-0.5f, 0.7f}, 2}, {"relu", K_RELU, -3, 3, {0}, 1},
        {"relu6", K_RELU6, -2, 8, {0, 6}, 2},    {"leaky_relu", K_LEAKY, -3, 3, {0}, 1},
        {"sigmoid", K_SIGMOID, -6, 6, {0}, 0},   {"tanh", K_TANH, -3, 3, {0}, 0},
        {"silu", K_SILU, -6, 6, {0}, 0},         {"elu", K_ELU, -3, 3, {0}, 1},
        {"elu_alpha_half", K_ELU_HALF, -3, 3, {0}, 1}, {"acos", K_ACOS, -0.9f, 0.9f, {0}, 0},
    };
    fu_rng r;
    fu_rng_seed(&r, 101);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int nd = 1 + (int)(c % 4);
        int64_t shape[4];
        random_shape(&r, nd, shape);
        fu_tensor *x = leaf_avoiding(&r, nd, shape, cases[c].lo, cases[c].hi, cases[c].kinks, cases[c].n_kinks, 0.05f);
        REQUIRE(x);
        fu_gradcheck_result res;
        int rc = fu_gradcheck(build_unary, &x, 1, (void *)&cases[c], NULL, &res);
        CHECK_MSG(rc == FU_OK, "%s: %s", cases[c].name, fu_last_error());
        CHECK_MSG(res.n_checked == (x->numel < 48 ? x->numel : 48), "%s: %d checked", cases[c].name, res.n_checked);
        fu_tensor_free(x);
    }
}

/* y = op(x) for one scalar x. */
static float eval1(int kind, float x) {
    fu_graph *g = fu_graph_new();
    fu_tensor *t = fu_tensor_newv(1, (int64_t)1);
    t->data[0] = x;
    fu_tensor *y = apply_case(g, t, kind);
    float v = y ? y->data[0] : NAN;
    fu_tensor_free(t);
    fu_graph_free(g);
    return v;
}

TEST(unary_values) {
    CHECK(eval1(K_NEG, 2.5f) == -2.5f);
    CHECK(eval1(K_ABS, -1.25f) == 1.25f);
    CHECK(eval1(K_SQUARE, -3) == 9);
    CHECK_NEAR(eval1(K_SQRT, 2), 1.41421356, 1e-6);
    CHECK_NEAR(eval1(K_RSQRT, 4), 0.5, 1e-7);
    CHECK_NEAR(eval1(K_EXP, 1), 2.71828183, 1e-6);
    CHECK_NEAR(eval1(K_LOG, 2.71828183f), 1.0, 1e-6);
    CHECK(eval1(K_SCALE_SHIFT, 2) == -2.75f);
    CHECK(eval1(K_CLAMP, -3) == -0.5f && eval1(K_CLAMP, 3) == 0.7f && eval1(K_CLAMP, 0.1f) == 0.1f);
    CHECK(eval1(K_RELU, -1) == 0 && eval1(K_RELU, 1.5f) == 1.5f);
    CHECK(eval1(K_RELU6, 7) == 6 && eval1(K_RELU6, -1) == 0 && eval1(K_RELU6, 2) == 2);
    CHECK_NEAR(eval1(K_LEAKY, -2), -0.4, 1e-7);
    CHECK_NEAR(eval1(K_SIGMOID, 2), 0.88079708, 1e-6);
    CHECK_NEAR(eval1(K_SIGMOID, -2), 0.11920292, 1e-6);
    CHECK_NEAR(eval1(K_TANH, 0.5f), 0.46211716, 1e-6);
    CHECK_NEAR(eval1(K_SILU, 1), 0.73105858, 1e-6);
    CHECK_NEAR(eval1(K_SILU, -2), -0.23840584, 1e-6);
    CHECK_NEAR(eval1(K_ELU, -1), -0.63212056, 1e-6);
    CHECK_NEAR(eval1(K_ELU_HALF, -2), 0.5 * -0.86466472, 1e-6);
    CHECK(eval1(K_ELU, 3) == 3);
    CHECK_NEAR(eval1(K_ACOS, 0.5f), 1.04719755, 1e-6);
    CHECK_NEAR(eval1(K_ACOS, -1), 3.14159265, 1e-6);
}

TEST(unary_sigmoid_is_stable_at_extremes) {
    /* The naive 1/(1+exp(-x)) gives exactly 0 for very negative x in float (exp overflows to
     * inf); the stable form keeps the tiny positive value. silu must not produce NaN. */
    float lo = eval1(K_SIGMOID, -100), hi = eval1(K_SIGMOID, 100);
    CHECK(lo > 0 && lo < 1e-40f);
    CHECK(hi == 1.0f);
    CHECK(eval1(K_SIGMOID, -1000) == 0.0f);
    float s = eval1(K_SILU, -1000);
    CHECK(s == 0.0f && !isnan(s));
    CHECK(eval1(K_SILU, 1000) == 1000.0f);
    CHECK(eval1(K_TANH, 50) == 1.0f);
}

TEST(unary_abs_and_relu_gradient_at_zero) {
    fu_graph *g = fu_graph_new();
    fu_tensor *x = fu_tensor_newv(1, (int64_t)3);
    x->data[0] = -1; x->data[1] = 0; x->data[2] = 2;
    fu_tensor_requires_grad(x, 1);
    fu_tensor *y = fu_add(g, fu_abs(g, x), fu_relu(g, x));
    REQUIRE(y);
    REQUIRE(fu_graph_backward(g, y, NULL) == FU_OK);
    CHECK(x->grad[0] == -1 && x->grad[1] == 0 && x->grad[2] == 2);
    fu_tensor_free(x);
    fu_graph_free(g);
}

/* ---- PReLU */

static fu_tensor *build_prelu(fu_graph *g, fu_tensor **in, void *ctx) {
    (void)ctx;
    return fu_prelu(g, in[0], in[1]);
}

TEST(prelu_gradcheck_nchw_2d_and_shared) {
    fu_rng r;
    fu_rng_seed(&r, 202);
    const float kink = 0;
    int64_t shapes[3][4] = {{3, 5, 3, 7}, {7, 3, 0, 0}, {2, 4, 5, 0}};
    int ndims[3] = {4, 2, 3};
    for (int s = 0; s < 3; s++) {
        for (int shared = 0; shared < 2; shared++) {
            fu_tensor *x = leaf_avoiding(&r, ndims[s], shapes[s], -2, 2, &kink, 1, 0.05f);
            int64_t c = shared ? 1 : shapes[s][1];
            fu_tensor *alpha = fu_tensor_new(1, &c);
            REQUIRE(x && alpha);
            fu_rng_fill_uniform(&r, alpha->data, c, 0.05f, 0.5f);
            fu_tensor_requires_grad(alpha, 1);
            fu_tensor *in[2] = {x, alpha};
            fu_gradcheck_result res;
            CHECK_MSG(fu_gradcheck(build_prelu, in, 2, NULL, NULL, &res) == FU_OK, "shape %d shared %d: %s", s, shared, fu_last_error());
            CHECK(res.n_checked == (x->numel < 48 ? (int)x->numel : 48) + (int)c);
            fu_tensor_free(x);
            fu_tensor_free(alpha);
        }
    }
}

TEST(prelu_values_and_alpha_gradient) {
    fu_graph *g = fu_graph_new();
    /* x [1, 2, 2]: channel 0 = {-1, 2}, channel 1 = {-3, -4}; alpha = {0.1, 0.5}. */
    fu_tensor *x = fu_tensor_newv(3, (int64_t)1, (int64_t)2, (int64_t)2);
    fu_tensor *alpha = fu_tensor_newv(1, (int64_t)2);
    const float xv[4] = {-1, 2, -3, -4};
    memcpy(x->data, xv, sizeof xv);
    alpha->data[0] = 0.1f; alpha->data[1] = 0.5f;
    fu_tensor_requires_grad(alpha, 1);
    fu_tensor *y = fu_prelu(g, x, alpha);
    REQUIRE(y);
    CHECK_NEAR(y->data[0], -0.1, 1e-7);
    CHECK(y->data[1] == 2 && y->data[2] == -1.5f && y->data[3] == -2);
    REQUIRE(fu_graph_backward(g, y, NULL) == FU_OK);
    CHECK(alpha->grad[0] == -1 && alpha->grad[1] == -7);  /* sum of the negative inputs */
    fu_tensor_free(x);
    fu_tensor_free(alpha);
    fu_graph_free(g);
}

TEST(unary_bad_arguments) {
    fu_graph *g = fu_graph_new();
    fu_tensor *x = fu_tensor_newv(2, (int64_t)2, (int64_t)3);
    fu_tensor *a2 = fu_tensor_newv(1, (int64_t)2), *v1 = fu_tensor_newv(1, (int64_t)3);
    CHECK(fu_clamp(g, x, 1, -1) == NULL);
    CHECK(strstr(fu_last_error(), "clamp") && strstr(fu_last_error(), "lo <= hi"));
    CHECK(fu_clamp(g, x, NAN, 1) == NULL);
    CHECK(fu_clamp(g, x, 0.5f, 0.5f) != NULL);  /* lo == hi is a constant, allowed */
    CHECK(fu_leaky_relu(g, x, NAN) == NULL);
    CHECK(fu_elu(g, x, INFINITY) == NULL);
    CHECK(fu_scale_shift(g, x, 1, NAN) == NULL);
    CHECK(fu_prelu(g, x, a2) == NULL);
    CHECK(strstr(fu_last_error(), "prelu") != NULL);
    CHECK(fu_prelu(g, v1, v1) == NULL);  /* 1-d input has no channel dim */
    fu_clear_error();
    CHECK(fu_relu(g, NULL) == NULL && fu_last_code() == FU_E_INPUT);
    CHECK(fu_prelu(g, x, NULL) == NULL);
    CHECK(fu_sigmoid(NULL, x) == NULL);
    fu_tensor_free(x);
    fu_tensor_free(a2);
    fu_tensor_free(v1);
    fu_graph_free(g);
}

TEST(unary_large_tensor_parallel_matches_serial_formula) {
    /* Above the OpenMP threshold: every element still computed (and rerun) correctly. */
    fu_graph *g = fu_graph_new();
    int64_t n = 100003;
    fu_tensor *x = fu_tensor_new(1, &n);
    for (int64_t i = 0; i < n; i++) x->data[i] = (float)(i % 200) * 0.05f - 5;
    fu_tensor *y = fu_leaky_relu(g, x, 0.1f);
    REQUIRE(y);
    x->data[n - 1] = -10;
    CHECK(fu_graph_forward(g) == FU_OK);
    int bad = 0;
    for (int64_t i = 0; i < n; i++) bad += y->data[i] != (x->data[i] > 0 ? x->data[i] : 0.1f * x->data[i]);
    CHECK(bad == 0);
    CHECK_NEAR(y->data[n - 1], -1.0, 1e-6);
    fu_tensor_free(x);
    fu_graph_free(g);
}

TEST(prelu_large_alpha_gradient_matches_direct_sum) {
    /* Above the OpenMP threshold, per-channel and shared slopes against direct double sums. */
    fu_rng r;
    fu_rng_seed(&r, 203);
    const int64_t N = 3, C = 5, HW = 4001;
    fu_tensor *x = fu_tensor_newv(3, N, C, HW);
    fu_rng_fill_normal(&r, x->data, x->numel, 0, 1);
    for (int shared = 0; shared < 2; shared++) {
        fu_graph *g = fu_graph_new();
        fu_tensor *alpha = fu_tensor_newv(1, shared ? (int64_t)1 : C);
        fu_tensor_fill(alpha, 0.25f);
        fu_tensor_requires_grad(alpha, 1);
        fu_tensor *y = fu_prelu(g, x, alpha);
        REQUIRE(y);
        REQUIRE(fu_graph_backward(g, y, NULL) == FU_OK);
        double ref[5] = {0};
        for (int64_t n = 0; n < N; n++)
            for (int64_t c = 0; c < C; c++)
                for (int64_t k = 0; k < HW; k++) {
                    float v = x->data[(n * C + c) * HW + k];
                    if (v <= 0) ref[shared ? 0 : c] += v;
                }
        for (int64_t c = 0; c < alpha->numel; c++) CHECK_NEAR(alpha->grad[c], ref[c], 1e-3);
        fu_tensor_free(alpha);
        fu_graph_free(g);
    }
    fu_tensor_free(x);
}
