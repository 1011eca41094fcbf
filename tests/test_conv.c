/* Convolutions, pooling, matmul and linear: values against direct loops, gradients against
 * finite differences, and bad arguments. */
#include "test.h"
#include "core/gradcheck.h"
#include "core/ops.h"
#include "core/rng.h"
#include <stdlib.h>
#include <string.h>

static fu_tensor *randn(fu_rng *r, int grad, int ndim, int64_t a, int64_t b, int64_t c, int64_t d) {
    int64_t shape[4] = {a, b, c, d};
    fu_tensor *t = fu_tensor_new(ndim, shape);
    fu_rng_fill_normal(r, t->data, t->numel, 0, 1);
    if (grad) fu_tensor_requires_grad(t, 1);
    return t;
}

/* Direct definition of conv2d (no im2col) as the reference. */
static void conv_ref(const fu_tensor *x, const fu_tensor *w, const fu_tensor *b, const fu_conv_params *p, const fu_tensor *y, float *out) {
    int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    int64_t O = w->shape[0], Cg = w->shape[1], kh = w->shape[2], kw = w->shape[3], OH = y->shape[2], OW = y->shape[3];
    int G = p->groups ? p->groups : 1, sh = p->stride_h ? p->stride_h : 1, sw = p->stride_w ? p->stride_w : 1;
    int dh = p->dilation_h ? p->dilation_h : 1, dw = p->dilation_w ? p->dilation_w : 1;
    (void)C;
    for (int64_t n = 0; n < N; n++)
        for (int64_t o = 0; o < O; o++)
            for (int64_t oy = 0; oy < OH; oy++)
                for (int64_t ox = 0; ox < OW; ox++) {
                    double s = b ? b->data[o] : 0;
                    int64_t g = o / (O / G);
                    for (int64_t c = 0; c < Cg; c++)
                        for (int64_t i = 0; i < kh; i++)
                            for (int64_t j = 0; j < kw; j++) {
                                int64_t yy = oy * sh - p->pad_top + i * dh, xx = ox * sw - p->pad_left + j * dw;
                                if (yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
                                s += (double)x->data[((n * x->shape[1] + g * Cg + c) * H + yy) * W + xx] * w->data[((o * Cg + c) * kh + i) * kw + j];
                            }
                    out[((n * O + o) * OH + oy) * OW + ox] = (float)s;
                }
}

typedef struct { fu_conv_params p; int transpose; } conv_case;

static fu_tensor *build_conv(fu_graph *g, fu_tensor **in, void *ctx) {
    conv_case *c = ctx;
    fu_tensor *y = c->transpose ? fu_conv_transpose2d(g, in[0], in[1], in[2], &c->p) : fu_conv2d(g, in[0], in[1], in[2], &c->p);
    return y;
}

TEST(conv2d_matches_direct_loops) {
    fu_rng r;
    fu_rng_seed(&r, 11);
    conv_case cases[] = {
        {{.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1}, 0},
        {{.stride_h = 2, .stride_w = 2, .pad_top = 0, .pad_bottom = 1, .pad_left = 1, .pad_right = 0}, 0},
        {{.dilation_h = 2, .dilation_w = 2, .pad_top = 2, .pad_bottom = 2, .pad_left = 2, .pad_right = 2, .groups = 2}, 0},
        {{.groups = 4, .pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1, .stride_h = 2}, 0},  /* depthwise */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int G = cases[k].p.groups ? cases[k].p.groups : 1;
        fu_tensor *x = randn(&r, 0, 4, 2, 4, 9, 7), *w = randn(&r, 0, 4, G == 4 ? 4 : 6, 4 / G, 3, 3), *b = randn(&r, 0, 1, w->shape[0], 1, 1, 1);
        fu_graph *g = fu_graph_new();
        fu_tensor *y = fu_conv2d(g, x, w, b, &cases[k].p);
        REQUIRE(y);
        float *ref = malloc((size_t)y->numel * sizeof *ref);
        conv_ref(x, w, b, &cases[k].p, y, ref);
        float err = 0;
        for (int64_t i = 0; i < y->numel; i++) err = fmaxf(err, fabsf(ref[i] - y->data[i]));
        CHECK_MSG(err < 1e-4f, "case %zu: max error %g", k, err);
        free(ref);
        fu_graph_free(g);
        fu_tensor_free(x); fu_tensor_free(w); fu_tensor_free(b);
    }
}

TEST(conv2d_same_padding) {
    int a, b;
    fu_same_padding(7, 3, 2, 1, &a, &b);   /* out 4: total (4-1)*2+3-7 = 2 */
    CHECK(a == 1 && b == 1);
    fu_same_padding(8, 3, 2, 1, &a, &b);   /* out 4: total 1, extra after */
    CHECK(a == 0 && b == 1);
    fu_same_padding(5, 1, 1, 1, &a, &b);
    CHECK(a == 0 && b == 0);
    fu_same_padding(10, 3, 1, 2, &a, &b);  /* dilated kernel spans 5 */
    CHECK(a == 2 && b == 2);
}

TEST(conv2d_gradients) {
    fu_rng r;
    fu_rng_seed(&r, 12);
    conv_case cases[] = {
        {{.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1}, 0},
        {{.stride_h = 2, .stride_w = 1, .pad_top = 1, .pad_bottom = 0, .pad_left = 0, .pad_right = 2}, 0},
        {{.dilation_h = 2, .dilation_w = 1, .groups = 2, .pad_top = 1, .pad_bottom = 1}, 0},
        {{.groups = 4, .pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1}, 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int G = cases[k].p.groups ? cases[k].p.groups : 1;
        fu_tensor *in[3] = {randn(&r, 1, 4, 2, 4, 7, 5), randn(&r, 1, 4, G == 4 ? 4 : 6, 4 / G, 3, 3), NULL};
        in[2] = randn(&r, 1, 1, in[1]->shape[0], 1, 1, 1);
        fu_gradcheck_result res;
        CHECK_MSG(fu_gradcheck(build_conv, in, 3, &cases[k], NULL, &res) == FU_OK, "case %zu: %s", k, fu_last_error());
        for (int i = 0; i < 3; i++) fu_tensor_free(in[i]);
    }
}

/* conv_transpose2d is the adjoint of conv2d: <conv(a), b> == <a, convT(b)> with the same weight. */
TEST(conv_transpose2d_is_adjoint_of_conv2d) {
    fu_rng r;
    fu_rng_seed(&r, 13);
    fu_conv_params p = {.stride_h = 2, .stride_w = 2, .pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1, .groups = 2};
    fu_tensor *a = randn(&r, 0, 4, 2, 4, 9, 9), *w = randn(&r, 0, 4, 6, 2, 3, 3);
    fu_graph *g = fu_graph_new();
    fu_tensor *ca = fu_conv2d(g, a, w, NULL, &p);
    REQUIRE(ca);
    CHECK(ca->shape[2] == 5 && ca->shape[3] == 5);
    fu_tensor *bt = randn(&r, 0, 4, 2, 6, 5, 5);
    /* w as a transposed-conv weight: [Cin=6, Cout/groups=2, 3, 3]. */
    fu_tensor *tb = fu_conv_transpose2d(g, bt, w, NULL, &p);
    REQUIRE(tb);
    CHECK(tb->shape[1] == 4 && tb->shape[2] == 9 && tb->shape[3] == 9);
    double l = 0, rr = 0;
    for (int64_t i = 0; i < ca->numel; i++) l += (double)ca->data[i] * bt->data[i];
    for (int64_t i = 0; i < a->numel; i++) rr += (double)a->data[i] * tb->data[i];
    CHECK_NEAR(l, rr, 1e-3 * fabs(l) + 1e-3);
    p.output_pad_h = 1;
    fu_tensor *tb2 = fu_conv_transpose2d(g, bt, w, NULL, &p);
    REQUIRE(tb2);
    CHECK(tb2->shape[2] == 10 && tb2->shape[3] == 9);
    fu_graph_free(g);
    fu_tensor_free(a); fu_tensor_free(w); fu_tensor_free(bt);
}

TEST(conv_transpose2d_gradients) {
    fu_rng r;
    fu_rng_seed(&r, 14);
    conv_case cases[] = {
        {{.stride_h = 2, .stride_w = 2}, 1},
        {{.stride_h = 2, .stride_w = 3, .pad_top = 1, .pad_bottom = 1, .pad_left = 0, .pad_right = 1, .output_pad_h = 1, .groups = 2}, 1},
        {{.dilation_h = 2, .dilation_w = 2, .pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1}, 1},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        fu_tensor *in[3] = {randn(&r, 1, 4, 2, 4, 5, 4), randn(&r, 1, 4, 4, 3, 3, 3), NULL};
        int G = cases[k].p.groups ? cases[k].p.groups : 1;
        in[2] = randn(&r, 1, 1, 3 * G, 1, 1, 1);
        fu_gradcheck_result res;
        CHECK_MSG(fu_gradcheck(build_conv, in, 3, &cases[k], NULL, &res) == FU_OK, "case %zu: %s", k, fu_last_error());
        for (int i = 0; i < 3; i++) fu_tensor_free(in[i]);
    }
}

TEST(conv_rejects_bad_arguments) {
    fu_rng r;
    fu_rng_seed(&r, 15);
    fu_graph *g = fu_graph_new();
    fu_tensor *x = randn(&r, 0, 4, 1, 4, 5, 5), *w = randn(&r, 0, 4, 6, 3, 3, 3), *big = randn(&r, 0, 4, 2, 4, 9, 9);
    fu_conv_params p = {0};
    CHECK(fu_conv2d(g, x, w, NULL, &p) == NULL);   /* 4 input channels, weight expects 3 */
    CHECK(strstr(fu_last_error(), "conv2d") != NULL);
    p.groups = 3;
    CHECK(fu_conv2d(g, x, big, NULL, &p) == NULL);  /* groups do not divide */
    p.groups = 1;
    CHECK(fu_conv2d(g, x, big, NULL, &p) == NULL);  /* 9x9 kernel > 5x5 input */
    CHECK(strstr(fu_last_error(), "larger") != NULL);
    p.stride_h = -1;
    CHECK(fu_conv2d(g, x, w, NULL, &p) == NULL);
    CHECK(fu_conv2d(g, NULL, w, NULL, NULL) == NULL);
    fu_conv_params tp = {.stride_h = 2, .stride_w = 2, .output_pad_h = 2};
    CHECK(fu_conv_transpose2d(g, x, big, NULL, &tp) == NULL);
    fu_graph_free(g);
    fu_tensor_free(x); fu_tensor_free(w); fu_tensor_free(big);
}

static fu_tensor *build_pool(fu_graph *g, fu_tensor **in, void *ctx) {
    const fu_pool_params *p = ctx;
    return fu_add(g, fu_max_pool2d(g, in[0], p), fu_avg_pool2d(g, in[0], p));
}

TEST(pooling_values_and_gradients) {
    fu_graph *g = fu_graph_new();
    fu_tensor *x = fu_tensor_newv(4, (int64_t)1, (int64_t)1, (int64_t)3, (int64_t)3);
    for (int i = 0; i < 9; i++) x->data[i] = (float)i;
    fu_pool_params p = {.kernel_h = 2, .kernel_w = 2, .stride_h = 1, .stride_w = 1};
    fu_tensor *m = fu_max_pool2d(g, x, &p), *a = fu_avg_pool2d(g, x, &p);
    REQUIRE(m && a);
    CHECK(m->data[0] == 4 && m->data[3] == 8);
    CHECK(a->data[0] == 2 && a->data[3] == 6);
    fu_pool_params pp = {.kernel_h = 3, .kernel_w = 3, .stride_h = 2, .stride_w = 2, .pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1};
    fu_tensor *a0 = fu_avg_pool2d(g, x, &pp);
    pp.count_include_pad = 1;
    fu_tensor *a1 = fu_avg_pool2d(g, x, &pp);
    REQUIRE(a0 && a1);
    CHECK_NEAR(a0->data[0], (0 + 1 + 3 + 4) / 4.0, 1e-6);
    CHECK_NEAR(a1->data[0], (0 + 1 + 3 + 4) / 9.0, 1e-6);
    fu_pool_params bad = {.kernel_h = 2, .kernel_w = 2, .pad_top = 2};
    CHECK(fu_max_pool2d(g, x, &bad) == NULL);
    fu_graph_free(g);
    fu_tensor_free(x);
    /* Gradients: distinct, well separated values so max has no ties. */
    fu_rng r;
    fu_rng_seed(&r, 16);
    fu_tensor *in = fu_tensor_newv(4, (int64_t)2, (int64_t)3, (int64_t)7, (int64_t)6);
    int64_t *perm = malloc((size_t)in->numel * sizeof *perm);
    for (int64_t i = 0; i < in->numel; i++) perm[i] = i;
    fu_rng_shuffle(&r, perm, in->numel);
    for (int64_t i = 0; i < in->numel; i++) in->data[i] = 0.1f * (float)perm[i];
    free(perm);
    fu_tensor_requires_grad(in, 1);
    fu_gradcheck_opts o = {.eps = 1e-2f};
    fu_pool_params gp = {.kernel_h = 3, .kernel_w = 2, .stride_h = 2, .stride_w = 1, .pad_top = 1, .pad_bottom = 1};
    CHECK(fu_gradcheck(build_pool, &in, 1, &gp, &o, NULL) == FU_OK);
    fu_tensor_free(in);
}

static fu_tensor *build_matmul(fu_graph *g, fu_tensor **in, void *ctx) {
    (void)ctx;
    return fu_add(g, fu_matmul(g, in[0], in[1]), fu_matmul(g, in[0], in[2]));
}

static fu_tensor *build_linear(fu_graph *g, fu_tensor **in, void *ctx) {
    return fu_linear(g, in[0], in[1], ctx ? in[2] : NULL);
}

TEST(matmul_and_linear) {
    fu_graph *g = fu_graph_new();
    fu_tensor *a = fu_tensor_newv(2, (int64_t)2, (int64_t)3), *b = fu_tensor_newv(2, (int64_t)3, (int64_t)2);
    for (int i = 0; i < 6; i++) { a->data[i] = (float)(i + 1); b->data[i] = (float)(i + 7); }
    fu_tensor *c = fu_matmul(g, a, b);  /* [[1,2,3],[4,5,6]] x [[7,8],[9,10],[11,12]] */
    REQUIRE(c);
    CHECK(c->data[0] == 58 && c->data[1] == 64 && c->data[2] == 139 && c->data[3] == 154);
    fu_tensor *wl = fu_tensor_newv(2, (int64_t)2, (int64_t)3), *bl = fu_tensor_newv(1, (int64_t)2);
    memcpy(wl->data, b->data, 6 * sizeof(float));  /* rows [7,8,9], [10,11,12] */
    bl->data[0] = 1; bl->data[1] = -1;
    fu_tensor *l = fu_linear(g, a, wl, bl);
    REQUIRE(l);
    CHECK(l->data[0] == 1 + 7 + 16 + 27 && l->data[3] == -1 + 40 + 55 + 72);
    CHECK(fu_matmul(g, a, a) == NULL);
    CHECK(fu_linear(g, a, b, NULL) == NULL);
    fu_graph_free(g);
    fu_tensor_free(a); fu_tensor_free(b); fu_tensor_free(wl); fu_tensor_free(bl);

    fu_rng r;
    fu_rng_seed(&r, 17);
    int64_t sa[3] = {3, 5, 7}, sb[2] = {7, 4}, sbb[3] = {3, 7, 4};
    fu_tensor *m[3] = {fu_tensor_new(3, sa), fu_tensor_new(2, sb), fu_tensor_new(3, sbb)};
    for (int i = 0; i < 3; i++) { fu_rng_fill_normal(&r, m[i]->data, m[i]->numel, 0, 1); fu_tensor_requires_grad(m[i], 1); }
    CHECK(fu_gradcheck(build_matmul, m, 3, NULL, NULL, NULL) == FU_OK);
    int64_t sx[3] = {2, 3, 5}, sw[2] = {4, 5}, sbias[1] = {4};
    fu_tensor *li[3] = {fu_tensor_new(3, sx), fu_tensor_new(2, sw), fu_tensor_new(1, sbias)};
    for (int i = 0; i < 3; i++) { fu_rng_fill_normal(&r, li[i]->data, li[i]->numel, 0, 1); fu_tensor_requires_grad(li[i], 1); }
    CHECK(fu_gradcheck(build_linear, li, 3, (void *)1, NULL, NULL) == FU_OK);
    CHECK(fu_gradcheck(build_linear, li, 2, NULL, NULL, NULL) == FU_OK);
    for (int i = 0; i < 3; i++) { fu_tensor_free(m[i]); fu_tensor_free(li[i]); }
}

/* Runs forward and backward (seed = the pattern in `seed`) with the path FACEUP_CONV_IMPL names
 * and returns y, then the gradients of x, w and b, concatenated (malloc'd). Leaf gradients start
 * at 0.5 so that the check covers backward adding into them. */
static float *run_path(const char *impl, const conv_case *c, fu_tensor **in, int64_t *count) {
    if (impl) setenv("FACEUP_CONV_IMPL", impl, 1);
    else unsetenv("FACEUP_CONV_IMPL");
    for (int i = 0; i < 3; i++)
        for (int64_t k = 0; k < in[i]->numel; k++) in[i]->grad[k] = 0.5f;
    fu_graph *g = fu_graph_new();
    fu_tensor *y = build_conv(g, in, (void *)c);
    float *res = NULL;
    if (y) {
        float *seed = malloc((size_t)y->numel * sizeof *seed);
        for (int64_t k = 0; k < y->numel; k++) seed[k] = (float)((k * 7919) % 13) / 13.0f - 0.5f;
        if (fu_graph_backward(g, y, seed) == FU_OK) {
            *count = y->numel + in[0]->numel + in[1]->numel + in[2]->numel;
            res = malloc((size_t)*count * sizeof *res);
            memcpy(res, y->data, (size_t)y->numel * sizeof *res);
            float *p = res + y->numel;
            for (int i = 0; i < 3; i++) {
                memcpy(p, in[i]->grad, (size_t)in[i]->numel * sizeof *p);
                p += in[i]->numel;
            }
        }
        free(seed);
    }
    fu_graph_free(g);
    unsetenv("FACEUP_CONV_IMPL");
    return res;
}

/* The oneDNN paths (blocked and plain layouts) agree with im2col + GEMM on forward values and on
 * all gradients, for groups, depthwise, strides, dilations, asymmetric padding, output padding,
 * and images wide enough that im2col works in bands of one output row; a problem oneDNN rejects
 * (output padding beyond the stride) still runs, through the fallback. */
TEST(conv_paths_agree) {
    fu_rng r;
    fu_rng_seed(&r, 18);
    struct { conv_case c; int64_t x[4], w[4]; } cases[] = {
        {{{.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1}, 0}, {3, 5, 11, 9}, {7, 5, 3, 3}},
        {{{.stride_h = 2, .stride_w = 3, .pad_top = 0, .pad_bottom = 2, .pad_left = 1, .groups = 2}, 0}, {2, 6, 13, 10}, {4, 3, 3, 2}},
        {{{.dilation_h = 2, .dilation_w = 3, .pad_top = 2, .pad_bottom = 1, .pad_left = 3, .pad_right = 3}, 0}, {1, 3, 12, 12}, {5, 3, 3, 3}},
        {{{.groups = 16, .pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1}, 0}, {2, 16, 9, 8}, {16, 1, 3, 3}},  /* depthwise */
        {{{.stride_h = 2, .stride_w = 2, .pad_top = 1, .pad_left = 1, .pad_right = 1, .output_pad_h = 1}, 1}, {2, 6, 5, 7}, {6, 4, 3, 3}},
        {{{.stride_h = 2, .stride_w = 2, .groups = 2}, 1}, {1, 4, 6, 6}, {4, 3, 4, 4}},
        {{{.dilation_h = 2, .output_pad_h = 1}, 1}, {1, 3, 4, 5}, {3, 2, 3, 3}},  /* oneDNN rejects: im2col fallback */
        {{{.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1}, 0}, {1, 4, 5, 120000}, {4, 4, 3, 3}},  /* im2col bands */
        {{{.stride_h = 2, .stride_w = 1, .pad_left = 1, .pad_right = 1}, 1}, {1, 4, 2, 120000}, {4, 4, 3, 3}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int G = cases[k].c.p.groups ? cases[k].c.p.groups : 1;
        int64_t *xs = cases[k].x, *ws = cases[k].w, nb = cases[k].c.transpose ? ws[1] * G : ws[0];
        fu_tensor *in[3] = {randn(&r, 1, 4, xs[0], xs[1], xs[2], xs[3]), randn(&r, 1, 4, ws[0], ws[1], ws[2], ws[3]), randn(&r, 1, 1, nb, 1, 1, 1)};
        int64_t n_ref = 0, n_any = 0, n_plain = 0;
        float *ref = run_path("im2col", &cases[k].c, in, &n_ref), *any = run_path(NULL, &cases[k].c, in, &n_any);
        float *plain = run_path("dnnl_plain", &cases[k].c, in, &n_plain);
        REQUIRE(ref && any && plain && n_ref == n_any && n_ref == n_plain);
        float err = 0, scale = 1;
        for (int64_t i = 0; i < n_ref; i++) {
            scale = fmaxf(scale, fabsf(ref[i]));
            err = fmaxf(err, fmaxf(fabsf(ref[i] - any[i]), fabsf(ref[i] - plain[i])));
        }
        CHECK_MSG(err < 1e-4f * scale, "case %zu: max difference %g (scale %g)", k, err, scale);
        free(ref); free(any); free(plain);
        for (int i = 0; i < 3; i++) fu_tensor_free(in[i]);
    }
}
