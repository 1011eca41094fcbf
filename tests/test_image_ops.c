/* Image resampling ops (ops_image.c, ops_warp.c): upfirdn2d, bicubic/bilinear/area resizes, affine warp. */
#include "test.h"
#include "util.h"
#include "golden.h"
#include "core/ops.h"
#include "core/gradcheck.h"
#include "core/rng.h"
#include <stdlib.h>
#include <string.h>

static fu_tensor *image_leaf(int64_t n, int64_t c, int64_t h, int64_t w, const float *v) {
    fu_tensor *t = fu_tensor_newv(4, n, c, h, w);
    if (t && v) memcpy(t->data, v, (size_t)t->numel * sizeof(float));
    return t;
}

/* ---- upfirdn2d ---- */

typedef struct { int kh, kw, up, down, pad[4]; float k[16]; } upfirdn_case;

/* Independent reference, step by step as rosinality's upfirdn2d_native on one plane: build the
 * zero-inserted image, pad/crop it, correlate with the flipped kernel, subsample. */
static void upfirdn_reference(const float *x, int64_t H, int64_t W, const upfirdn_case *c, float *out, int64_t *oh, int64_t *ow) {
    int64_t UH = H * c->up, UW = W * c->up;
    int64_t PH = UH + c->pad[2] + c->pad[3], PW = UW + c->pad[0] + c->pad[1];
    float *P = calloc((size_t)(PH * PW), sizeof(float));
    for (int64_t y = 0; y < PH; y++)
        for (int64_t xx = 0; xx < PW; xx++) {
            int64_t uy = y - c->pad[2], ux = xx - c->pad[0];
            if (uy >= 0 && uy < UH && ux >= 0 && ux < UW && uy % c->up == 0 && ux % c->up == 0)
                P[y * PW + xx] = x[(uy / c->up) * W + ux / c->up];
        }
    int64_t CH = PH - c->kh + 1, CW = PW - c->kw + 1;
    *oh = (CH + c->down - 1) / c->down;
    *ow = (CW + c->down - 1) / c->down;
    for (int64_t y = 0; y < *oh; y++)
        for (int64_t xx = 0; xx < *ow; xx++) {
            double s = 0;
            for (int ky = 0; ky < c->kh; ky++)
                for (int kx = 0; kx < c->kw; kx++)
                    s += (double)P[(y * c->down + ky) * PW + xx * c->down + kx] * c->k[(c->kh - 1 - ky) * c->kw + (c->kw - 1 - kx)];
            out[y * *ow + xx] = (float)s;
        }
    free(P);
}

static const upfirdn_case upfirdn_cases[] = {
    /* StyleGAN2's upsample blur: up 2, pad (2, 1), [1,3,3,1]^2 / 64 * 4 (asymmetric here to
     * catch a missing flip). */
    {4, 4, 2, 1, {2, 1, 2, 1}, {1, 3, 3, 1, 3, 9, 9, 3, 3, 9, 9, 3, 1, 3, 3, 2}},
    /* Downsample: pad (1, 1), down 2, 3x2 kernel. */
    {3, 2, 1, 2, {1, 1, 1, 1}, {1, 2, 3, 4, 5, 6}},
    /* Negative pads crop; up 3, down 2. */
    {2, 3, 3, 2, {-1, 2, 1, -2}, {0.5f, -1, 2, 1, 0.25f, -0.75f}},
    {1, 1, 1, 1, {0, 0, 0, 0}, {2}},
};

TEST(upfirdn2d_matches_reference) {
    fu_rng r;
    fu_rng_seed(&r, 51);
    int64_t s[4] = {2, 3, 5, 4};
    fu_tensor *x = randn_leaf(&r, 4, s, 0);
    fu_graph *g = fu_graph_new();
    float *ref = malloc(4096 * sizeof(float));
    for (size_t i = 0; i < sizeof upfirdn_cases / sizeof upfirdn_cases[0]; i++) {
        const upfirdn_case *c = &upfirdn_cases[i];
        fu_tensor *y = fu_upfirdn2d(g, x, c->k, c->kh, c->kw, c->up, c->down, c->pad);
        REQUIRE(y);
        float worst = 0;
        for (int64_t p = 0; p < 6; p++) {
            int64_t oh, ow;
            upfirdn_reference(x->data + p * 20, 5, 4, c, ref, &oh, &ow);
            CHECK_MSG(y->shape[2] == oh && y->shape[3] == ow, "case %zu: %lldx%lld, expected %lldx%lld", i,
                      (long long)y->shape[2], (long long)y->shape[3], (long long)oh, (long long)ow);
            if (y->shape[2] != oh || y->shape[3] != ow) break;
            for (int64_t k = 0; k < oh * ow; k++) worst = fmaxf(worst, fabsf(y->data[p * oh * ow + k] - ref[k]));
        }
        CHECK_MSG(worst < 1e-5f, "case %zu: max diff %g", i, (double)worst);
    }
    free(ref);
    fu_tensor_free(x);
    fu_graph_free(g);
}

TEST(upfirdn2d_unit_kernel_zero_inserts) {
    float v[6] = {1, 2, 3, 4, 5, 6}, one = 1;
    fu_tensor *x = image_leaf(1, 1, 2, 3, v);
    fu_graph *g = fu_graph_new();
    fu_tensor *y = fu_upfirdn2d(g, x, &one, 1, 1, 2, 1, (int[]){0, 0, 0, 0});
    REQUIRE(y);
    CHECK(y->shape[2] == 4 && y->shape[3] == 6);
    int ok = 1;
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 6; j++)
            ok &= y->data[i * 6 + j] == ((i % 2 == 0 && j % 2 == 0) ? v[(i / 2) * 3 + j / 2] : 0);
    CHECK(ok);
    /* Down 2 of that recovers x. */
    fu_tensor *back = fu_upfirdn2d(g, y, &one, 1, 1, 1, 2, (int[]){0, 0, 0, 0});
    REQUIRE(back);
    CHECK(back->numel == 6 && memcmp(back->data, v, sizeof v) == 0);
    fu_tensor_free(x);
    fu_graph_free(g);
}

static fu_tensor *build_upfirdn(fu_graph *g, fu_tensor **in, void *ctx) {
    const upfirdn_case *c = ctx;
    return fu_upfirdn2d(g, in[0], c->k, c->kh, c->kw, c->up, c->down, c->pad);
}

TEST(gradcheck_upfirdn2d) {
    fu_rng r;
    fu_rng_seed(&r, 52);
    int64_t s[4] = {2, 2, 5, 3};
    fu_tensor *x = randn_leaf(&r, 4, s, 1);
    fu_gradcheck_result res;
    for (size_t i = 0; i < 3; i++)
        CHECK_MSG(fu_gradcheck(build_upfirdn, &x, 1, (void *)&upfirdn_cases[i], NULL, &res) == FU_OK,
                  "case %zu: %s", i, fu_last_error());
    fu_tensor_free(x);
}

/* ---- golden: PULSE's bicubic downsampler and the target-size resizes ---- */

static int close_to_golden(const fu_tensor *c, const fu_tensor *golden, const char *what) {
    float d = golden_max_diff(c, golden), m = golden_max_abs(golden);
    CHECK_MSG(d <= 1e-5f * m, "%s: max diff %g, max |golden| %g", what, (double)d, (double)m);
    return d <= 1e-5f * m;
}

TEST(golden_bicubic_downsample) {
    fu_tensor *x = golden_load("bicubic", "input");
    if (!x) SKIP("golden/bicubic absent");
    fu_graph *g = fu_graph_new();
    const int factors[3] = {4, 8, 16};
    const char *names[3] = {"out_f4", "out_f8", "out_f16"};
    for (int i = 0; i < 3; i++) {
        fu_tensor *want = golden_load("bicubic", names[i]);
        REQUIRE(want);
        fu_tensor *y = fu_bicubic_downsample(g, x, factors[i]);
        REQUIRE(y);
        CHECK(fu_same_shape(y, want));
        close_to_golden(y, want, names[i]);
        fu_tensor_free(want);
    }
    /* Gradient of sum(out_f8 * R_f8) w.r.t. the input. */
    fu_tensor *R = golden_load("bicubic", "R_f8"), *want = golden_load("bicubic", "grad_input_f8");
    REQUIRE(R && want);
    fu_tensor_requires_grad(x, 1);
    fu_tensor *y = fu_bicubic_downsample(g, x, 8);
    REQUIRE(y && y->numel == R->numel);
    CHECK(fu_graph_backward(g, y, R->data) == FU_OK);
    fu_tensor grad = *x;
    grad.data = x->grad;
    close_to_golden(&grad, want, "grad_input_f8");
    fu_tensor_free(R);
    fu_tensor_free(want);
    fu_tensor_free(x);
    fu_graph_free(g);
}

TEST(golden_target_size_resizes) {
    fu_tensor *x = golden_load("bicubic", "input");
    if (!x) SKIP("golden/bicubic absent");
    fu_graph *g = fu_graph_new();
    const char *names[3] = {"targetsize_112_out", "targetsize_32_out", "targetsize_6_out"};
    const int64_t sizes[3] = {112, 32, 6};
    for (int i = 0; i < 3; i++) {
        fu_tensor *want = golden_load("bicubic", names[i]);
        REQUIRE(want);
        /* BicubicDownsampleTargetSize: 'area' for realistic sizes, bilinear align_corners for 6. */
        fu_tensor *y = i < 2 ? fu_resize_area(g, x, sizes[i], sizes[i]) : fu_resize_bilinear(g, x, sizes[i], sizes[i], 1);
        REQUIRE(y);
        CHECK(fu_same_shape(y, want));
        close_to_golden(y, want, names[i]);
        fu_tensor_free(want);
    }
    fu_tensor_free(x);
    fu_graph_free(g);
}

/* ---- resizers: hand-computed values ---- */

TEST(bicubic_downsample_values) {
    /* Factor 1: taps cubic(-1.5), cubic(-0.5), cubic(0.5), cubic(1.5) with a = -0.5, i.e.
     * (-1, 9, 9, -1)/16, reflect pad 1 before and 2 after, so output i reads x[i-1..i+2]. */
    float v[5] = {0, 1, 4, 9, 16};
    fu_tensor *x = image_leaf(1, 1, 5, 1, v);
    fu_tensor *xt = image_leaf(1, 1, 1, 5, v);
    fu_graph *g = fu_graph_new();
    fu_tensor *col = fu_resize_bilinear(g, x, 5, 3, 0);  /* [5, 3]: each row constant */
    fu_tensor *y = fu_bicubic_downsample(g, col, 1), *yt = fu_bicubic_downsample(g, fu_resize_bilinear(g, xt, 3, 5, 0), 1);
    REQUIRE(y && yt);
    /* Padded column: x[1], x[0..4], x[3], x[2] = 1, 0, 1, 4, 9, 16, 9, 4. */
    const float padded[8] = {1, 0, 1, 4, 9, 16, 9, 4};
    for (int i = 0; i < 5; i++) {
        double want = (-padded[i] + 9 * padded[i + 1] + 9 * padded[i + 2] - padded[i + 3]) / 16;
        CHECK_NEAR(y->data[i * 3 + 1], want, 1e-5);
        CHECK_NEAR(yt->data[5 + i], want, 1e-5);
    }
    /* Odd size, factor 2: output floor(9/2) = 4; constant images stay constant. */
    fu_tensor *c = fu_tensor_newv(4, (int64_t)2, (int64_t)1, (int64_t)9, (int64_t)11);
    fu_tensor_fill(c, 0.25f);
    fu_tensor *yc = fu_bicubic_downsample(g, c, 2);
    REQUIRE(yc);
    CHECK(yc->shape[2] == 4 && yc->shape[3] == 5);
    for (int64_t i = 0; i < yc->numel; i++) CHECK_NEAR(yc->data[i], 0.25, 1e-6);
    fu_tensor_free(x);
    fu_tensor_free(xt);
    fu_tensor_free(c);
    fu_graph_free(g);
}

TEST(resize_bilinear_and_area_values) {
    float v[4] = {1, 2, 3, 4};
    fu_tensor *x = image_leaf(1, 1, 2, 2, v);
    fu_graph *g = fu_graph_new();
    /* PyTorch: F.interpolate(x, 4, mode='bilinear', align_corners=False / True). */
    fu_tensor *y = fu_resize_bilinear(g, x, 4, 4, 0), *ya = fu_resize_bilinear(g, x, 3, 4, 1);
    REQUIRE(y && ya);
    const float want[16] = {1, 1.25f, 1.75f, 2, 1.5f, 1.75f, 2.25f, 2.5f, 2.5f, 2.75f, 3.25f, 3.5f, 3, 3.25f, 3.75f, 4};
    for (int i = 0; i < 16; i++) CHECK_NEAR(y->data[i], want[i], 1e-6);
    const float want_a[12] = {1, 4 / 3.0f, 5 / 3.0f, 2, 2, 7 / 3.0f, 8 / 3.0f, 3, 3, 10 / 3.0f, 11 / 3.0f, 4};
    for (int i = 0; i < 12; i++) CHECK_NEAR(ya->data[i], want_a[i], 1e-6);
    /* Area 5 -> 3 columns: windows [0,2), [1,4), [3,5) (adaptive average pooling). */
    float row[10] = {1, 2, 4, 8, 16, 0, 3, 0, 3, 0};
    fu_tensor *xr = image_leaf(1, 1, 2, 5, row);
    fu_tensor *ar = fu_resize_area(g, xr, 1, 3);
    REQUIRE(ar);
    CHECK_NEAR(ar->data[0], (1 + 2 + 0 + 3) / 4.0, 1e-6);
    CHECK_NEAR(ar->data[1], (2 + 4 + 8 + 3 + 0 + 3) / 6.0, 1e-6);
    CHECK_NEAR(ar->data[2], (8 + 16 + 3 + 0) / 4.0, 1e-6);
    fu_tensor_free(x);
    fu_tensor_free(xr);
    fu_graph_free(g);
}

TEST(resize_bicubic_values) {
    float v[4] = {1, 2, 3, 4};
    fu_tensor *x = image_leaf(1, 1, 2, 2, v);
    fu_graph *g = fu_graph_new();
    /* PyTorch F.interpolate(x, 4, mode='bicubic', align_corners=False), first row and column. */
    fu_tensor *y = fu_resize_bicubic(g, x, 4, 4);
    REQUIRE(y);
    const float row0[4] = {0.68359375f, 1.015625f, 1.5625f, 1.89453125f};
    for (int i = 0; i < 4; i++) CHECK_NEAR(y->data[i], row0[i], 1e-6);
    CHECK_NEAR(y->data[4], 0.68359375 + 2 * (0.2265625 + 0.10546875), 1e-6);
    /* Same size is the identity. */
    fu_rng r;
    fu_rng_seed(&r, 61);
    int64_t s[4] = {2, 3, 7, 5};
    fu_tensor *z = randn_leaf(&r, 4, s, 0);
    fu_tensor *zi = fu_resize_bicubic(g, z, 7, 5);
    REQUIRE(zi);
    CHECK(golden_max_diff(zi, z) < 1e-6f);
    /* Shrinking is antialiased: a +-1 checkerboard (Nyquist) nearly vanishes at 1/3 size and a
     * constant stays constant. Without the stretched filter, 4 taps would alias it. */
    int64_t sb[4] = {1, 1, 24, 30};
    fu_tensor *cb = fu_tensor_new(4, sb), *cst = fu_tensor_new(4, sb);
    for (int64_t i = 0; i < 24; i++)
        for (int64_t j = 0; j < 30; j++) cb->data[i * 30 + j] = ((i + j) % 2) ? 1.0f : -1.0f;
    fu_tensor_fill(cst, 0.7f);
    fu_tensor *ycb = fu_resize_bicubic(g, cb, 8, 10), *ycst = fu_resize_bicubic(g, cst, 8, 10);
    REQUIRE(ycb && ycst);
    float worst_cb = 0, worst_cst = 0;
    for (int64_t i = 1; i < 7; i++)
        for (int64_t j = 1; j < 9; j++) worst_cb = fmaxf(worst_cb, fabsf(ycb->data[i * 10 + j]));
    for (int64_t i = 0; i < 80; i++) worst_cst = fmaxf(worst_cst, fabsf(ycst->data[i] - 0.7f));
    CHECK_MSG(worst_cb < 0.05f, "checkerboard residue %g", (double)worst_cb);
    CHECK(worst_cst < 1e-6f);
    fu_tensor_free(x);
    fu_tensor_free(z);
    fu_tensor_free(cb);
    fu_tensor_free(cst);
    fu_graph_free(g);
}

typedef struct { int kind; int64_t oh, ow; } resize_ctx;
enum { RS_BICUBIC_DOWN2, RS_BICUBIC_DOWN3, RS_BICUBIC, RS_BILINEAR, RS_BILINEAR_AC, RS_AREA };

static fu_tensor *build_resize(fu_graph *g, fu_tensor **in, void *ctx) {
    const resize_ctx *c = ctx;
    switch (c->kind) {
    case RS_BICUBIC_DOWN2: return fu_bicubic_downsample(g, in[0], 2);
    case RS_BICUBIC_DOWN3: return fu_bicubic_downsample(g, in[0], 3);
    case RS_BICUBIC: return fu_resize_bicubic(g, in[0], c->oh, c->ow);
    case RS_BILINEAR: return fu_resize_bilinear(g, in[0], c->oh, c->ow, 0);
    case RS_BILINEAR_AC: return fu_resize_bilinear(g, in[0], c->oh, c->ow, 1);
    default: return fu_resize_area(g, in[0], c->oh, c->ow);
    }
}

TEST(gradcheck_resizers) {
    fu_rng r;
    fu_rng_seed(&r, 62);
    int64_t s[4] = {2, 3, 9, 11};
    fu_tensor *x = randn_leaf(&r, 4, s, 1);
    const resize_ctx cases[] = {
        {RS_BICUBIC_DOWN2, 0, 0}, {RS_BICUBIC_DOWN3, 0, 0},
        {RS_BICUBIC, 13, 4}, {RS_BICUBIC, 5, 17},    /* up one axis, down (antialiased) the other */
        {RS_BILINEAR, 4, 15}, {RS_BILINEAR_AC, 14, 5}, {RS_AREA, 4, 7}, {RS_AREA, 12, 13},
    };
    fu_gradcheck_result res;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK_MSG(fu_gradcheck(build_resize, &x, 1, (void *)&cases[i], NULL, &res) == FU_OK, "case %zu: %s", i, fu_last_error());
    fu_tensor_free(x);
}

/* ---- affine warp ---- */

TEST(affine_warp_values) {
    fu_rng r;
    fu_rng_seed(&r, 71);
    int64_t s[4] = {2, 3, 5, 6};
    fu_tensor *x = randn_leaf(&r, 4, s, 0);
    fu_tensor *theta = fu_tensor_newv(3, (int64_t)2, (int64_t)2, (int64_t)3);
    const float ident[6] = {1, 0, 0, 0, 1, 0}, shift[6] = {1, 0, 1, 0, 1, 0.5f};
    memcpy(theta->data, ident, sizeof ident);
    memcpy(theta->data + 6, shift, sizeof shift);
    fu_graph *g = fu_graph_new();
    fu_tensor *y = fu_affine_warp(g, x, theta, 5, 6);
    REQUIRE(y);
    /* Batch 0: identity reproduces the image. */
    float worst = 0;
    for (int64_t i = 0; i < 90; i++) worst = fmaxf(worst, fabsf(y->data[i] - x->data[i]));
    CHECK(worst < 1e-6f);
    /* Batch 1: X = u + 1, Y = v + 0.5: average of rows v and v+1 at column u+1, zero beyond. */
    for (int64_t c = 0; c < 3; c++)
        for (int64_t v = 0; v < 5; v++)
            for (int64_t u = 0; u < 6; u++) {
                const float *p = x->data + (3 + c) * 30;
                double a = u + 1 < 6 ? p[v * 6 + u + 1] : 0, b = (u + 1 < 6 && v + 1 < 5) ? p[(v + 1) * 6 + u + 1] : 0;
                CHECK_NEAR(y->data[(3 + c) * 30 + v * 6 + u], 0.5 * (a + b), 1e-6);
            }
    /* Transpose (X = v, Y = u) into a 6x5 output; a 90-degree swap of axes. */
    const float swap[6] = {0, 1, 0, 1, 0, 0};
    memcpy(theta->data, swap, sizeof swap);
    memcpy(theta->data + 6, swap, sizeof swap);
    fu_tensor *yt = fu_affine_warp(g, x, theta, 6, 5);
    REQUIRE(yt);
    CHECK(yt->shape[2] == 6 && yt->shape[3] == 5);
    CHECK_NEAR(yt->data[(1 * 3 + 2) * 30 + 4 * 5 + 3], x->data[(1 * 3 + 2) * 30 + 3 * 6 + 4], 1e-6);
    /* Far outside: zeros; NaN theta does not crash. */
    const float far[6] = {1, 0, 1e30f, 0, 1, -7}, nan6[6] = {NAN, 0, 0, 0, 1, 0};
    memcpy(theta->data, far, sizeof far);
    memcpy(theta->data + 6, nan6, sizeof nan6);
    fu_tensor *yf = fu_affine_warp(g, x, theta, 5, 6);
    REQUIRE(yf);
    int zero = 1;
    for (int64_t i = 0; i < 90; i++) zero &= yf->data[i] == 0;
    CHECK(zero);
    fu_tensor_free(x);
    fu_tensor_free(theta);
    fu_graph_free(g);
}

static fu_tensor *build_warp(fu_graph *g, fu_tensor **in, void *ctx) {
    (void)ctx;
    return fu_affine_warp(g, in[0], in[1], 4, 5);
}

TEST(gradcheck_affine_warp) {
    fu_rng r;
    fu_rng_seed(&r, 72);
    int64_t s[4] = {2, 3, 6, 7};
    fu_tensor *in[2] = {randn_leaf(&r, 4, s, 1), fu_tensor_newv(3, (int64_t)2, (int64_t)2, (int64_t)3)};
    fu_tensor_requires_grad(in[1], 1);
    /* Batch 0: mild rotation and scale inside the image; batch 1: shifted so that the last
     * columns and first rows sample across the border. Every sample position stays >= 0.05 from
     * an integer, more than eps * (|u| + |v| + 1) = 1e-3 * 8, so finite differences never cross a
     * kink of the bilinear interpolation. */
    const float t[12] = {1.071f, 0.04f, 0.43f, -0.043f, 0.922f, 0.58f, 1.217f, -0.02f, 2.271f, 0.015f, 1.173f, -0.688f};
    memcpy(in[1]->data, t, sizeof t);
    float closest = 1;
    for (int b = 0; b < 2; b++)
        for (int v = 0; v < 4; v++)
            for (int u = 0; u < 5; u++) {
                const float *q = t + 6 * b;
                double X = q[0] * u + q[1] * v + q[2], Y = q[3] * u + q[4] * v + q[5];
                closest = fminf(closest, (float)fmin(fabs(X - floor(X + 0.5)), fabs(Y - floor(Y + 0.5))));
            }
    REQUIRE(closest >= 0.05f);
    fu_gradcheck_opts o = {1e-3f, 2e-3f, 2e-2f, 64, 4};
    fu_gradcheck_result res;
    CHECK(fu_gradcheck(build_warp, in, 2, NULL, &o, &res) == FU_OK);
    CHECK(res.n_checked == 64 + 12);
    /* The theta gradient is not trivially small. */
    float gmax = 0;
    for (int i = 0; i < 12; i++) gmax = fmaxf(gmax, fabsf(in[1]->grad[i]));
    CHECK(gmax > 0.1f);
    fu_tensor_free(in[0]);
    fu_tensor_free(in[1]);
}

/* ---- warp jitter ---- */

TEST(warp_jitter_draws_bounded_similarities) {
    fu_graph *g = fu_graph_new();
    fu_tensor *theta = fu_tensor_newv(3, (int64_t)2, (int64_t)2, (int64_t)3);
    REQUIRE(g && theta);
    const float base[6] = {0.8f, 0.1f, 3, -0.1f, 0.8f, 4};
    memcpy(theta->data, base, sizeof base);
    memcpy(theta->data + 6, base, sizeof base);
    /* Amount 0 without flips: theta itself. */
    fu_tensor *same = fu_warp_jitter(g, theta, 0, 0, 10, 10);
    REQUIRE(same);
    for (int i = 0; i < 12; i++) CHECK_NEAR(same->data[i], theta->data[i], 1e-6);
    /* a = 0.1 with flips over 200 seeds: the scale stays in exp(+-a), the centre moves at most
     * a * ow pixels (mapped through theta), both mirror states occur, and a re-run with the
     * same seed draws the same warp. */
    fu_tensor *jit = fu_warp_jitter(g, theta, 0.1f, 1, 10, 10);
    REQUIRE(jit);
    int mirrored = 0, plain = 0, in_bounds = 1;
    double det0 = (double)base[0] * base[4] - (double)base[1] * base[3];
    for (uint64_t seed = 1; seed <= 200; seed++) {
        g->seed = seed;
        REQUIRE(fu_graph_forward(g) == FU_OK);
        const float *o = jit->data;
        double ratio = ((double)o[0] * o[4] - (double)o[1] * o[3]) / det0;
        if (ratio < 0) mirrored++;
        else plain++;
        in_bounds &= fabs(ratio) >= exp(-0.2) - 1e-4 && fabs(ratio) <= exp(0.2) + 1e-4;
        /* the centre (4.5, 4.5) through the jittered warp vs through theta, in output pixels */
        double X = o[0] * 4.5 + o[1] * 4.5 + o[2] - (base[0] * 4.5 + base[1] * 4.5 + base[2]);
        double Y = o[3] * 4.5 + o[4] * 4.5 + o[5] - (base[3] * 4.5 + base[4] * 4.5 + base[5]);
        double du = (base[4] * X - base[1] * Y) / det0, dv = (-base[3] * X + base[0] * Y) / det0;
        in_bounds &= fabs(du) <= 1.0 + 1e-4 && fabs(dv) <= 1.0 + 1e-4;
    }
    CHECK(in_bounds);
    CHECK(mirrored > 60 && plain > 60);
    float first[12];
    g->seed = 7;
    REQUIRE(fu_graph_forward(g) == FU_OK);
    memcpy(first, jit->data, sizeof first);
    g->seed = 8;
    REQUIRE(fu_graph_forward(g) == FU_OK);
    CHECK(memcmp(first, jit->data, sizeof first) != 0);
    g->seed = 7;
    REQUIRE(fu_graph_forward(g) == FU_OK);
    CHECK(memcmp(first, jit->data, sizeof first) == 0);
    /* The two batch rows draw their own warps. */
    CHECK(memcmp(jit->data, jit->data + 6, 6 * sizeof(float)) != 0);
    CHECK(fu_warp_jitter(g, theta, 0.6f, 0, 10, 10) == NULL);
    CHECK(fu_warp_jitter(g, theta, 0.1f, 0, 0, 10) == NULL);
    fu_tensor_free(theta);
    fu_graph_free(g);
}

static fu_tensor *build_warp_jitter(fu_graph *g, fu_tensor **in, void *ctx) {
    (void)ctx;
    return fu_warp_jitter(g, in[0], 0.2f, 1, 4, 5);
}

TEST(gradcheck_warp_jitter) {
    fu_rng r;
    fu_rng_seed(&r, 73);
    fu_tensor *theta = randn_leaf(&r, 3, (int64_t[]){3, 2, 3}, 1);
    /* The graph's seed is fixed, so every re-run draws the same jitter: the output is linear in
     * theta and finite differences are exact up to rounding. */
    fu_gradcheck_result res;
    CHECK_MSG(fu_gradcheck(build_warp_jitter, &theta, 1, NULL, NULL, &res) == FU_OK, "%s", fu_last_error());
    CHECK(res.n_checked == 18);
    fu_tensor_free(theta);
}

/* ---- argument checks ---- */

TEST(image_ops_reject_bad_arguments) {
    fu_graph *g = fu_graph_new();
    fu_tensor *x = fu_tensor_newv(4, (int64_t)1, (int64_t)3, (int64_t)8, (int64_t)8);
    fu_tensor *x3 = fu_tensor_newv(3, (int64_t)3, (int64_t)8, (int64_t)8);
    fu_tensor *th = fu_tensor_newv(3, (int64_t)1, (int64_t)2, (int64_t)3);
    fu_tensor *th_bad = fu_tensor_newv(3, (int64_t)2, (int64_t)2, (int64_t)3);
    float k[4] = {1, 1, 1, 1};
    int pad0[4] = {0, 0, 0, 0}, crop[4] = {-4, -4, 0, 0};
    CHECK(fu_upfirdn2d(g, x3, k, 2, 2, 1, 1, pad0) == NULL);
    CHECK(fu_upfirdn2d(g, x, NULL, 2, 2, 1, 1, pad0) == NULL);
    CHECK(fu_upfirdn2d(g, x, k, 0, 2, 1, 1, pad0) == NULL);
    CHECK(fu_upfirdn2d(g, x, k, 2, 2, 0, 1, pad0) == NULL);
    CHECK(fu_upfirdn2d(g, x, k, 2, 2, 1, -1, pad0) == NULL);
    CHECK(fu_upfirdn2d(g, x, k, 2, 2, 1, 1, crop) == NULL);
    CHECK(strstr(fu_last_error(), "upfirdn2d") != NULL);
    CHECK(fu_upfirdn2d(g, x, k, 2, 2, 1, 1, NULL) == NULL);
    CHECK(fu_bicubic_downsample(g, x, 0) == NULL);
    CHECK(fu_bicubic_downsample(g, x, 8) == NULL);  /* reflect pad 12 >= 8 */
    CHECK(fu_bicubic_downsample(g, x, 4) != NULL);  /* pad 6 < 8 */
    CHECK(fu_bicubic_downsample(g, x3, 2) == NULL);
    CHECK(fu_resize_bicubic(g, x, 0, 4) == NULL);
    CHECK(fu_resize_bilinear(g, x, 4, -1, 0) == NULL);
    CHECK(fu_resize_area(g, x3, 4, 4) == NULL);
    CHECK(fu_resize_area(g, x, (int64_t)1 << 40, (int64_t)1 << 20) == NULL);
    CHECK(fu_affine_warp(g, x, th_bad, 4, 4) == NULL);
    CHECK(strstr(fu_last_error(), "theta") != NULL);
    CHECK(fu_affine_warp(g, x, x3, 4, 4) == NULL);
    CHECK(fu_affine_warp(g, x, th, 0, 4) == NULL);
    fu_clear_error();
    CHECK(fu_affine_warp(g, NULL, th, 4, 4) == NULL);
    CHECK(strstr(fu_last_error(), "NULL") != NULL);
    CHECK(fu_resize_area(g, fu_resize_bicubic(g, fu_bicubic_downsample(g, NULL, 2), 2, 2), 1, 1) == NULL);
    CHECK(fu_upfirdn2d(g, fu_resize_bilinear(g, NULL, 2, 2, 0), k, 2, 2, 1, 1, pad0) == NULL);
    fu_tensor_free(x);
    fu_tensor_free(x3);
    fu_tensor_free(th);
    fu_tensor_free(th_bad);
    fu_graph_free(g);
}

/* Sizes above the OpenMP thresholds: results with all threads match one thread. */
TEST(image_ops_threads_agree) {
    fu_rng r;
    fu_rng_seed(&r, 81);
    int64_t s[4] = {2, 3, 70, 90};
    fu_tensor *x = randn_leaf(&r, 4, s, 1), *theta = fu_tensor_newv(3, (int64_t)2, (int64_t)2, (int64_t)3);
    fu_tensor_requires_grad(theta, 1);
    const float t[12] = {0.9f, 0.1f, 3.3f, -0.1f, 0.95f, 2.7f, 1.1f, 0, -2.4f, 0, 1.05f, 1.6f};
    memcpy(theta->data, t, sizeof t);
    float k[16] = {1, 3, 3, 1, 3, 9, 9, 3, 3, 9, 9, 3, 1, 3, 3, 1};
    float *ref = NULL;
    int64_t n_ref = 0;
    for (int pass = 0; pass < 2; pass++) {
        fu_set_threads(pass == 0 ? 1 : 0);
        fu_tensor_zero_grad(x);
        fu_tensor_zero_grad(theta);
        fu_graph *g = fu_graph_new();
        fu_tensor *y = fu_affine_warp(g, x, theta, 64, 80);
        y = fu_upfirdn2d(g, y, k, 4, 4, 2, 1, (int[]){2, 1, 2, 1});
        y = fu_resize_bicubic(g, y, 50, 61);
        REQUIRE(y);
        CHECK(fu_graph_backward(g, y, NULL) == FU_OK);
        if (pass == 0) {
            n_ref = y->numel + x->numel + 12;
            ref = malloc((size_t)n_ref * sizeof(float));
            REQUIRE(ref);
            memcpy(ref, y->data, (size_t)y->numel * sizeof(float));
            memcpy(ref + y->numel, x->grad, (size_t)x->numel * sizeof(float));
            memcpy(ref + y->numel + x->numel, theta->grad, 12 * sizeof(float));
        } else {
            CHECK(memcmp(ref, y->data, (size_t)y->numel * sizeof(float)) == 0);
            CHECK(memcmp(ref + y->numel, x->grad, (size_t)x->numel * sizeof(float)) == 0);
            for (int i = 0; i < 12; i++)  /* reduction order differs */
                CHECK_NEAR(theta->grad[i], ref[y->numel + x->numel + i], 1e-5 * fabs(ref[y->numel + x->numel + i]) + 1e-3);
        }
        fu_graph_free(g);
    }
    free(ref);
    fu_tensor_free(x);
    fu_tensor_free(theta);
}
