/* Layout ops: forward values against hand-computed layouts, finite-difference gradients on
 * random odd shapes (batch > 1, several and negative axes), and argument validation. */
#include "test.h"
#include "util.h"
#include "core/ops.h"
#include "core/gradcheck.h"
#include "core/rng.h"
#include <string.h>

/* Runs the gradient check and reports which configuration failed. */
static void gradcheck_ok(fu_build_fn build, fu_tensor **in, int n, void *ctx, const char *what) {
    fu_gradcheck_result res;
    int rc = fu_gradcheck(build, in, n, ctx, NULL, &res);
    CHECK_MSG(rc == FU_OK && res.n_checked > 0, "%s: %s", what, fu_last_error());
}

/* ---- reshape */

static fu_tensor *build_reshape(fu_graph *g, fu_tensor **in, void *ctx) {
    (void)ctx;
    /* [3,5,7] -> [5,-1] -> exp (so the gradient depends on position) -> [7,15] */
    fu_tensor *t = fu_exp(g, fu_reshape(g, in[0], 2, (int64_t[]){5, -1}));
    return fu_reshape(g, t, 2, (int64_t[]){7, 15});
}

TEST(reshape_values_inference_and_gradcheck) {
    fu_graph *g = fu_graph_new();
    fu_tensor *x = arange_leaf(3, (int64_t[]){2, 3, 4});
    fu_tensor *y = fu_reshape(g, x, 3, (int64_t[]){-1, 2, 3});
    REQUIRE(y);
    CHECK(y->ndim == 3 && y->shape[0] == 4 && y->shape[1] == 2 && y->shape[2] == 3);
    CHECK(y->data[23] == 23 && y->data[7] == 7);
    CHECK(fu_reshape(g, x, 1, (int64_t[]){-1})->shape[0] == 24);
    fu_tensor *e = fu_tensor_newv(2, (int64_t)0, (int64_t)3);
    fu_tensor *ye = fu_reshape(g, e, 3, (int64_t[]){3, 0, 5});
    CHECK(ye && ye->numel == 0);
    fu_tensor_free(e);
    fu_tensor_free(x);
    fu_graph_free(g);

    fu_rng r;
    fu_rng_seed(&r, 11);
    fu_tensor *xr = randn_leaf(&r, 3, (int64_t[]){3, 5, 7}, 1);
    gradcheck_ok(build_reshape, &xr, 1, NULL, "reshape");
    fu_tensor_free(xr);
}

TEST(reshape_bad_arguments) {
    fu_graph *g = fu_graph_new();
    fu_tensor *x = arange_leaf(2, (int64_t[]){2, 3});
    CHECK(fu_reshape(g, x, 2, (int64_t[]){4, 2}) == NULL);
    CHECK(strstr(fu_last_error(), "reshape") && strstr(fu_last_error(), "6 elements"));
    CHECK(fu_reshape(g, x, 2, (int64_t[]){-1, -1}) == NULL);
    CHECK(fu_reshape(g, x, 2, (int64_t[]){4, -1}) == NULL);   /* 6 not divisible by 4 */
    CHECK(fu_reshape(g, x, 2, (int64_t[]){-2, -3}) == NULL);
    CHECK(fu_reshape(g, x, 7, (int64_t[]){1, 1, 1, 1, 1, 1, 6}) == NULL);
    CHECK(fu_reshape(g, x, 2, NULL) == NULL);
    fu_tensor_free(x);
    fu_graph_free(g);
}

/* ---- transpose */

TEST(transpose_values) {
    fu_graph *g = fu_graph_new();
    fu_tensor *x = arange_leaf(3, (int64_t[]){2, 3, 4});
    fu_tensor *y = fu_transpose(g, x, (int[]){2, 0, 1});
    REQUIRE(y);
    CHECK(y->shape[0] == 4 && y->shape[1] == 2 && y->shape[2] == 3);
    int bad = 0;
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 2; j++)
            for (int k = 0; k < 3; k++) bad += y->data[(i * 2 + j) * 3 + k] != x->data[(j * 3 + k) * 4 + i];
    CHECK(bad == 0);
    fu_tensor *m = arange_leaf(2, (int64_t[]){2, 3});
    const float mt[6] = {0, 3, 1, 4, 2, 5};
    CHECK(tensor_equals(fu_transpose(g, m, (int[]){1, 0}), mt, 6));
    fu_tensor_free(m);
    fu_tensor_free(x);
    fu_graph_free(g);
}

static fu_tensor *build_transpose(fu_graph *g, fu_tensor **in, void *ctx) {
    return fu_transpose(g, in[0], ctx);
}

TEST(transpose_gradcheck_random_perms) {
    fu_rng r;
    fu_rng_seed(&r, 12);
    int perms[4][5] = {{3, 1, 0, 2}, {0, 2, 3, 1}, {1, 0}, {4, 3, 2, 1, 0}};
    int nds[4] = {4, 4, 2, 5};
    for (int p = 0; p < 4; p++) {
        int64_t shape[5];
        for (int d = 0; d < nds[p]; d++) shape[d] = 1 + 2 * (int64_t)fu_rng_below(&r, 3);  /* odd sizes */
        shape[0] = 3;
        fu_tensor *x = randn_leaf(&r, nds[p], shape, 1);
        gradcheck_ok(build_transpose, &x, 1, perms[p], "transpose");
        fu_tensor_free(x);
    }
}

TEST(transpose_rejects_non_permutations) {
    fu_graph *g = fu_graph_new();
    fu_tensor *x = arange_leaf(3, (int64_t[]){2, 3, 4});
    CHECK(fu_transpose(g, x, (int[]){0, 0, 1}) == NULL);
    CHECK(strstr(fu_last_error(), "permutation") != NULL);
    CHECK(fu_transpose(g, x, (int[]){0, 1, 3}) == NULL);
    CHECK(fu_transpose(g, x, (int[]){-1, 0, 1}) == NULL);
    CHECK(fu_transpose(g, x, NULL) == NULL);
    fu_tensor_free(x);
    fu_graph_free(g);
}

/* ---- concat */

TEST(concat_values_positive_and_negative_axis) {
    fu_graph *g = fu_graph_new();
    fu_tensor *a = arange_leaf(2, (int64_t[]){2, 2}), *b = arange_leaf(2, (int64_t[]){2, 1}), *c = arange_leaf(2, (int64_t[]){2, 3});
    for (int i = 0; i < 2; i++) b->data[i] += 10;
    for (int i = 0; i < 6; i++) c->data[i] += 20;
    const float along1[12] = {0, 1, 10, 20, 21, 22, 2, 3, 11, 23, 24, 25};
    CHECK(tensor_equals(fu_concat(g, (fu_tensor *[]){a, b, c}, 3, 1), along1, 12));
    CHECK(tensor_equals(fu_concat(g, (fu_tensor *[]){a, b, c}, 3, -1), along1, 12));
    fu_tensor *d = arange_leaf(2, (int64_t[]){1, 2});
    const float along0[6] = {0, 1, 2, 3, 0, 1};
    fu_tensor *y = fu_concat(g, (fu_tensor *[]){a, d}, 2, -2);
    CHECK(tensor_equals(y, along0, 6) && y->shape[0] == 3);
    fu_tensor *tensors[3] = {a, b, c};
    for (int i = 0; i < 3; i++) fu_tensor_free(tensors[i]);
    fu_tensor_free(d);
    fu_graph_free(g);
}

typedef struct { int n, axis; } concat_ctx;

static fu_tensor *build_concat(fu_graph *g, fu_tensor **in, void *ctx) {
    const concat_ctx *c = ctx;
    return fu_concat(g, in, c->n, c->axis);
}

TEST(concat_gradcheck_axes) {
    fu_rng r;
    fu_rng_seed(&r, 13);
    const int axes[4] = {0, 1, -1, 2};
    for (int t = 0; t < 4; t++) {
        int n = 2 + t % 2 * 3;  /* 2 or 5 inputs */
        const int ax = axes[t] < 0 ? axes[t] + 4 : axes[t];
        fu_tensor *in[FU_MAX_INPUTS];
        for (int k = 0; k < n; k++) {
            int64_t shape[4] = {2, 3, 5, 3};
            shape[ax] = 1 + (int64_t)fu_rng_below(&r, 4);
            in[k] = randn_leaf(&r, 4, shape, 1);
        }
        fu_tensor_requires_grad(in[1], 0);  /* a frozen input in the middle */
        concat_ctx c = {n, axes[t]};
        gradcheck_ok(build_concat, in, n, &c, "concat");
        for (int k = 0; k < n; k++) fu_tensor_free(in[k]);
    }
}

TEST(concat_bad_arguments) {
    fu_graph *g = fu_graph_new();
    fu_tensor *a = arange_leaf(2, (int64_t[]){2, 3}), *b = arange_leaf(2, (int64_t[]){3, 3}), *v = arange_leaf(1, (int64_t[]){3});
    CHECK(fu_concat(g, (fu_tensor *[]){a, b}, 2, 1) == NULL);  /* dim 0 differs */
    CHECK(strstr(fu_last_error(), "concat") && strstr(fu_last_error(), "does not match"));
    CHECK(fu_concat(g, (fu_tensor *[]){a, b}, 2, 0) != NULL);
    CHECK(fu_concat(g, (fu_tensor *[]){a, v}, 2, 0) == NULL);  /* rank differs */
    CHECK(fu_concat(g, (fu_tensor *[]){a, a}, 2, 2) == NULL);
    CHECK(fu_concat(g, (fu_tensor *[]){a, a}, 2, -3) == NULL);
    CHECK(fu_concat(g, (fu_tensor *[]){a}, 0, 0) == NULL);
    fu_tensor *many[9] = {a, a, a, a, a, a, a, a, a};
    CHECK(fu_concat(g, many, 9, 0) == NULL);
    CHECK(fu_concat(g, many, 8, 0) != NULL);
    fu_tensor_free(a);
    fu_tensor_free(b);
    fu_tensor_free(v);
    fu_graph_free(g);
}

/* ---- slice */

TEST(slice_values_bounds_and_empty) {
    fu_graph *g = fu_graph_new();
    fu_tensor *x = arange_leaf(1, (int64_t[]){10});
    CHECK(tensor_equals(fu_slice(g, x, 0, 2, 9, 3), (float[]){2, 5, 8}, 3));
    CHECK(tensor_equals(fu_slice(g, x, 0, 2, 8, 3), (float[]){2, 5}, 2));
    CHECK(tensor_equals(fu_slice(g, x, -1, -3, 100, 1), (float[]){7, 8, 9}, 3));  /* end clamped */
    CHECK(tensor_equals(fu_slice(g, x, 0, -100, 2, 1), (float[]){0, 1}, 2));
    fu_tensor *e = fu_slice(g, x, 0, 6, 4, 1);   /* empty result: allowed, shape [0] */
    CHECK(e && e->ndim == 1 && e->shape[0] == 0);
    e = fu_slice(g, x, 0, 10, 20, 1);
    CHECK(e && e->shape[0] == 0);
    fu_tensor *m = arange_leaf(3, (int64_t[]){2, 3, 4});
    fu_tensor *y = fu_slice(g, m, 1, 1, 3, 1);
    CHECK(y && y->shape[1] == 2);
    const float expect[16] = {4, 5, 6, 7, 8, 9, 10, 11, 16, 17, 18, 19, 20, 21, 22, 23};
    CHECK(tensor_equals(y, expect, 16));
    CHECK(fu_slice(g, x, 0, 0, 5, 0) == NULL);
    CHECK(strstr(fu_last_error(), "step") != NULL);
    CHECK(fu_slice(g, x, 1, 0, 5, 1) == NULL);
    fu_tensor_free(m);
    fu_tensor_free(x);
    fu_graph_free(g);
}

typedef struct { int axis; int64_t start, end, step; } slice_ctx;

static fu_tensor *build_slice(fu_graph *g, fu_tensor **in, void *ctx) {
    const slice_ctx *s = ctx;
    return fu_slice(g, in[0], s->axis, s->start, s->end, s->step);
}

TEST(slice_gradcheck) {
    fu_rng r;
    fu_rng_seed(&r, 14);
    const slice_ctx cases[4] = {{-2, 1, 6, 2}, {0, 1, 3, 1}, {3, 0, 7, 3}, {1, -2, 100, 1}};
    for (int c = 0; c < 4; c++) {
        fu_tensor *x = randn_leaf(&r, 4, (int64_t[]){3, 5, 7, 7}, 1);
        gradcheck_ok(build_slice, &x, 1, (void *)&cases[c], "slice");
        fu_tensor_free(x);
    }
}

/* ---- pad */

static fu_tensor *pad1d(fu_graph *g, fu_tensor *x, int64_t before, int64_t after, fu_pad_mode mode) {
    return fu_pad(g, x, (int64_t[]){before, after}, mode, 7);
}

TEST(pad_values_1d) {
    fu_graph *g = fu_graph_new();
    fu_tensor *x = arange_leaf(1, (int64_t[]){5});
    for (int i = 0; i < 5; i++) x->data[i] += 1;  /* 1..5 */
    CHECK(tensor_equals(pad1d(g, x, 2, 2, FU_PAD_REFLECT), (float[]){3, 2, 1, 2, 3, 4, 5, 4, 3}, 9));
    CHECK(tensor_equals(pad1d(g, x, 4, 1, FU_PAD_REFLECT), (float[]){5, 4, 3, 2, 1, 2, 3, 4, 5, 4}, 10));
    CHECK(tensor_equals(pad1d(g, x, 2, 3, FU_PAD_REPLICATE), (float[]){1, 1, 1, 2, 3, 4, 5, 5, 5, 5}, 10));
    CHECK(tensor_equals(pad1d(g, x, 1, 2, FU_PAD_CONSTANT), (float[]){7, 1, 2, 3, 4, 5, 7, 7}, 8));
    CHECK(tensor_equals(pad1d(g, x, 0, 0, FU_PAD_REFLECT), (float[]){1, 2, 3, 4, 5}, 5));
    fu_tensor_free(x);
    fu_graph_free(g);
}

TEST(pad_values_2d_reflect_and_gradient_counts) {
    fu_graph *g = fu_graph_new();
    /* [[0,1,2],[3,4,5]] padded (H: 1,0; W: 2,1) with reflect. */
    fu_tensor *x = arange_leaf(2, (int64_t[]){2, 3});
    fu_tensor_requires_grad(x, 1);
    fu_tensor *y = fu_pad(g, x, (int64_t[]){1, 0, 2, 1}, FU_PAD_REFLECT, 0);
    REQUIRE(y);
    CHECK(y->shape[0] == 3 && y->shape[1] == 6);
    const float expect[18] = {5, 4, 3, 4, 5, 4,
                              2, 1, 0, 1, 2, 1,
                              5, 4, 3, 4, 5, 4};
    CHECK(tensor_equals(y, expect, 18));
    /* Backward of ones: each input counts how often it was read. */
    REQUIRE(fu_graph_backward(g, y, NULL) == FU_OK);
    const float counts[6] = {1, 3, 2, 2, 6, 4};
    CHECK(memcmp(x->grad, counts, sizeof counts) == 0);
    fu_tensor_free(x);
    fu_graph_free(g);
}

typedef struct { int64_t pads[8]; fu_pad_mode mode; } pad_ctx;

static fu_tensor *build_pad(fu_graph *g, fu_tensor **in, void *ctx) {
    const pad_ctx *p = ctx;
    return fu_pad(g, in[0], p->pads, p->mode, -0.5f);
}

TEST(pad_gradcheck_modes) {
    fu_rng r;
    fu_rng_seed(&r, 15);
    const pad_ctx cases[] = {
        {{0, 0, 0, 0, 2, 1, 1, 3}, FU_PAD_REFLECT}, {{0, 0, 0, 0, 3, 3, 2, 2}, FU_PAD_REPLICATE},
        {{0, 0, 0, 0, 1, 2, 0, 3}, FU_PAD_CONSTANT}, {{1, 1, 0, 2, 0, 0, 1, 1}, FU_PAD_REFLECT},
        {{2, 0, 1, 0, 0, 0, 0, 0}, FU_PAD_REPLICATE}, {{0, 0, 0, 0, 0, 0, 0, 0}, FU_PAD_REFLECT},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        fu_tensor *x = randn_leaf(&r, 4, (int64_t[]){2, 3, 5, 4}, 1);
        gradcheck_ok(build_pad, &x, 1, (void *)&cases[c], "pad");
        fu_tensor_free(x);
    }
}

TEST(pad_bad_arguments) {
    fu_graph *g = fu_graph_new();
    fu_tensor *x = arange_leaf(2, (int64_t[]){3, 5});
    CHECK(fu_pad(g, x, (int64_t[]){0, 0, 5, 0}, FU_PAD_REFLECT, 0) == NULL);  /* pad == dim */
    CHECK(strstr(fu_last_error(), "reflect") != NULL);
    CHECK(fu_pad(g, x, (int64_t[]){0, 3, 0, 0}, FU_PAD_REFLECT, 0) == NULL);
    CHECK(fu_pad(g, x, (int64_t[]){2, 2, 4, 4}, FU_PAD_REFLECT, 0) != NULL);
    CHECK(fu_pad(g, x, (int64_t[]){0, 0, 5, 5}, FU_PAD_REPLICATE, 0) != NULL);
    CHECK(fu_pad(g, x, (int64_t[]){0, -1, 0, 0}, FU_PAD_CONSTANT, 0) == NULL);
    CHECK(fu_pad(g, x, (int64_t[]){0, 0, 0, 0}, (fu_pad_mode)9, 0) == NULL);
    CHECK(fu_pad(g, x, NULL, FU_PAD_CONSTANT, 0) == NULL);
    fu_tensor_free(x);
    fu_graph_free(g);
}

/* ---- upsample_nearest */

TEST(upsample_nearest_values) {
    fu_graph *g = fu_graph_new();
    fu_tensor *x = arange_leaf(4, (int64_t[]){1, 2, 1, 2});
    fu_tensor *y = fu_upsample_nearest(g, x, 2);
    REQUIRE(y);
    CHECK(y->shape[0] == 1 && y->shape[1] == 2 && y->shape[2] == 2 && y->shape[3] == 4);
    const float expect[16] = {0, 0, 1, 1, 0, 0, 1, 1, 2, 2, 3, 3, 2, 2, 3, 3};
    CHECK(tensor_equals(y, expect, 16));
    CHECK(tensor_equals(fu_upsample_nearest(g, x, 1), x->data, 4));
    CHECK(fu_upsample_nearest(g, x, 0) == NULL);
    CHECK(strstr(fu_last_error(), "factor") != NULL);
    fu_tensor *v = arange_leaf(1, (int64_t[]){3});
    CHECK(fu_upsample_nearest(g, v, 2) == NULL);
    fu_tensor_free(v);
    fu_tensor_free(x);
    fu_graph_free(g);
}

static fu_tensor *build_upsample(fu_graph *g, fu_tensor **in, void *ctx) {
    return fu_upsample_nearest(g, in[0], *(const int *)ctx);
}

TEST(upsample_nearest_gradcheck) {
    fu_rng r;
    fu_rng_seed(&r, 16);
    int f3 = 3, f2 = 2;
    fu_tensor *x = randn_leaf(&r, 4, (int64_t[]){2, 3, 3, 5}, 1);
    gradcheck_ok(build_upsample, &x, 1, &f3, "upsample x3");
    fu_tensor_free(x);
    x = randn_leaf(&r, 3, (int64_t[]){3, 5, 1}, 1);
    gradcheck_ok(build_upsample, &x, 1, &f2, "upsample x2");
    fu_tensor_free(x);
}

TEST(shape_ops_propagate_null) {
    fu_graph *g = fu_graph_new();
    fu_clear_error();
    CHECK(fu_reshape(g, NULL, 1, (int64_t[]){3}) == NULL);
    CHECK(fu_last_code() == FU_E_INPUT);
    CHECK(fu_transpose(g, NULL, (int[]){0}) == NULL);
    CHECK(fu_concat(g, (fu_tensor *[]){NULL, NULL}, 2, 0) == NULL);
    CHECK(fu_slice(g, NULL, 0, 0, 1, 1) == NULL);
    CHECK(fu_pad(g, NULL, (int64_t[]){1, 1}, FU_PAD_CONSTANT, 0) == NULL);
    CHECK(fu_upsample_nearest(g, NULL, 2) == NULL);
    fu_graph_free(g);
}

/* Reflect index of a padded coordinate, written independently of ops_shape.c. */
static int64_t reflect_ref(int64_t i, int64_t n) {
    while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;
    return i;
}

TEST(pad_and_transpose_large_parallel_paths) {
    /* Big enough for the OpenMP paths; compared element by element with direct formulas. */
    fu_graph *g = fu_graph_new();
    const int64_t N = 2, C = 3, H = 80, W = 100, ph = 3, pw = 5;
    fu_tensor *x = arange_leaf(4, (int64_t[]){N, C, H, W});
    fu_tensor_requires_grad(x, 1);
    fu_tensor *y = fu_pad(g, x, (int64_t[]){0, 0, 0, 0, ph, ph, pw, pw}, FU_PAD_REFLECT, 0);
    REQUIRE(y);
    const int64_t OH = H + 2 * ph, OW = W + 2 * pw;
    int bad = 0;
    for (int64_t p = 0; p < N * C; p++)
        for (int64_t oy = 0; oy < OH; oy++)
            for (int64_t ox = 0; ox < OW; ox++)
                bad += y->data[(p * OH + oy) * OW + ox] != x->data[(p * H + reflect_ref(oy - ph, H)) * W + reflect_ref(ox - pw, W)];
    CHECK(bad == 0);
    REQUIRE(fu_graph_backward(g, y, NULL) == FU_OK);
    double total = 0;
    for (int64_t i = 0; i < x->numel; i++) total += x->grad[i];
    CHECK(total == (double)(N * C * OH * OW));
    CHECK(x->grad[0] == 1 && x->grad[1] == 2 && x->grad[W + 1] == 4);  /* corner, edge-adjacent */
    fu_tensor *t = fu_transpose(g, x, (int[]){3, 1, 0, 2});
    REQUIRE(t);
    bad = 0;
    for (int64_t w = 0; w < W; w++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t n = 0; n < N; n++)
                for (int64_t h = 0; h < H; h++)
                    bad += t->data[((w * C + c) * N + n) * H + h] != x->data[((n * C + c) * H + h) * W + w];
    CHECK(bad == 0);
    fu_tensor_free(x);
    fu_graph_free(g);
}
