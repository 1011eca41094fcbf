/* StyleGAN v1 (PULSE G_synthesis) and StyleGAN2 (rosinality Generator) against the goldens in
 * ../shared/golden/stylegan{1,2} (README there), from both weights.pt and weights.safetensors:
 * image, every stored intermediate, and the gradients of sum(image * R) with respect to the
 * latents, every noise map and (v2) z. Tolerance max|c - golden| <= 1e-4 * max|golden|.
 * Plus random-weight networks (batch of 2 = two single runs, forward and backward; z path by
 * finite differences), mapping networks,
 * PULSE's Gaussian-fit latent map, the fused epilogue ops (sg_ops.h) by finite differences, and
 * input validation. Timing of 256 and 1024 networks: bench/bench_stylegan.c (make bench). */
#include "test.h"
#include "util.h"
#include "golden.h"
#include "core/ops.h"
#include "core/gradcheck.h"
#include "core/rng.h"
#include "gen/stylegan1.h"
#include "gen/stylegan2.h"
#include "gen/sg_ops.h"
#include <stdlib.h>
#include <string.h>

static const float GEN_REL_TOL = 1e-4f;

/* ---------------------------------------------------------------- helpers */

#define MAX_TAPS 32
typedef struct { char name[MAX_TAPS][48]; fu_tensor *t[MAX_TAPS]; int n; } tap_list;

static void collect_tap(void *ctx, const char *name, fu_tensor *t) {
    tap_list *l = ctx;
    if (l->n == MAX_TAPS) return;
    snprintf(l->name[l->n], sizeof l->name[0], "%s", name);
    l->t[l->n++] = t;
}

/* Compares n floats at c with golden set/name; returns 1 when it exists and matches. */
static int matches_golden(const char *set, const char *name, const float *c, int64_t n, float rel_tol) {
    fu_tensor *gold = golden_load(set, name);
    CHECK_MSG(gold != NULL, "golden %s/%s missing", set, name);
    if (!gold) return 0;
    int ok = 0;
    if (gold->numel != n || !c) {
        fu_test_fail(__FILE__, __LINE__, "%s/%s: %lld values, golden has %lld", set, name, (long long)n, (long long)gold->numel);
    } else {
        float maxabs = golden_max_abs(gold), diff = 0;
        for (int64_t i = 0; i < n; i++) diff = fmaxf(diff, fabsf(c[i] - gold->data[i]));
        ok = diff <= rel_tol * maxabs;
        CHECK_MSG(ok, "%s/%s: max diff %.3g > %.3g (max |golden| %.3g)", set, name, diff, rel_tol * maxabs, maxabs);
    }
    fu_tensor_free(gold);
    return ok;
}

static int matches_tensor(const char *set, const char *name, const fu_tensor *t) {
    CHECK_MSG(t != NULL, "%s/%s: no tensor", set, name);
    return t ? matches_golden(set, name, t->data, t->numel, GEN_REL_TOL) : 0;
}

/* Golden array as a leaf that requires a gradient. */
static fu_tensor *golden_input(const char *set, const char *name) {
    fu_tensor *t = golden_load(set, name);
    if (t) fu_tensor_requires_grad(t, 1);
    return t;
}

static fu_weights *open_golden_weights(const char *set, const char *file) {
    char path[1024];
    snprintf(path, sizeof path, "%s/golden/%s/%s", fu_test_shared_dir(), set, file);
    fu_weights *w = NULL;
    int rc = fu_weights_open(path, &w);
    CHECK_MSG(rc == FU_OK, "open %s: %s", path, fu_last_error());
    return w;
}

static int golden_present(const char *set) {
    const char *shared = fu_test_shared_dir();
    if (!shared) return 0;
    char path[1024];
    snprintf(path, sizeof path, "%s/golden/%s/config.json", shared, set);
    FILE *f = fopen(path, "r");
    if (f) fclose(f);
    return f != NULL;
}

static void free_all(fu_tensor **t, int n) {
    for (int i = 0; i < n; i++) fu_tensor_free(t[i]);
}

/* ---------------------------------------------------------------- StyleGAN v1 goldens */

static void check_sg1_golden(const char *file) {
    const char *set = "stylegan1";
    fu_weights *w = open_golden_weights(set, file);
    fu_stylegan1 *m = NULL;
    if (w) CHECK(fu_sg1_load(w, &m) == FU_OK);
    fu_weights_free(w);
    if (!m) return;
    CHECK(m->resolution == 128 && m->n_layers == 12 && m->dlatent_size == 512 && m->blocks[5].fused && !m->blocks[4].fused);
    fu_tensor *noise[12] = {0}, *dl = golden_input(set, "dlatents"), *R = golden_load(set, "R");
    char name[64];
    for (int i = 0; i < 12; i++) {
        snprintf(name, sizeof name, "noise_%d", i);
        noise[i] = golden_input(set, name);
    }
    fu_graph *g = fu_graph_new();
    tap_list taps = {0};
    fu_tensor *img = fu_sg1_forward(g, m, dl, noise, &(fu_tensor_sink){collect_tap, &taps});
    CHECK(img != NULL);
    if (img && R) {
        matches_tensor(set, "image", img);
        int n_inter = 0;
        for (int i = 0; i < taps.n; i++) {
            snprintf(name, sizeof name, "inter_%s", taps.name[i]);
            fu_tensor *gold = golden_load(set, name);
            if (!gold) continue;   /* conv0_up taps exist for every block, goldens for two */
            fu_tensor_free(gold);
            n_inter += matches_tensor(set, name, taps.t[i]);
        }
        CHECK_MSG(n_inter == 8, "%d of 8 intermediates matched", n_inter);
        CHECK(fu_graph_backward(g, img, R->data) == FU_OK);
        matches_golden(set, "grad_dlatents", dl->grad, dl->numel, GEN_REL_TOL);
        for (int i = 0; i < 12; i++) {
            snprintf(name, sizeof name, "grad_noise_%d", i);
            if (noise[i]) matches_golden(set, name, noise[i]->grad, noise[i]->numel, GEN_REL_TOL);
        }
    }
    fu_graph_free(g);
    free_all(noise, 12);
    fu_tensor_free(dl);
    fu_tensor_free(R);
    fu_sg1_free(m);
}

TEST(stylegan1_golden_safetensors) {
    if (!golden_present("stylegan1")) SKIP("../shared/golden/stylegan1 absent");
    check_sg1_golden("weights.safetensors");
}

TEST(stylegan1_golden_pt) {
    if (!golden_present("stylegan1")) SKIP("../shared/golden/stylegan1 absent");
    check_sg1_golden("weights.pt");
}

TEST(stylegan1_gaussfit_golden) {
    if (!golden_present("stylegan1")) SKIP("../shared/golden/stylegan1 absent");
    const char *set = "stylegan1";
    fu_tensor *z = golden_load(set, "gaussfit_z"), *mean = golden_load(set, "gaussfit_mean"), *std = golden_load(set, "gaussfit_std");
    REQUIRE(z && mean && std);
    fu_graph *g = fu_graph_new();
    fu_tensor *out = fu_pulse_gaussfit(g, z, mean, std);
    REQUIRE(out);
    matches_golden(set, "gaussfit_latent_in", out->data, out->numel, 1e-5f);
    fu_graph_free(g);
    fu_tensor_free(z);
    fu_tensor_free(mean);
    fu_tensor_free(std);
}

/* ---------------------------------------------------------------- StyleGAN2 goldens */

static void check_sg2_golden(const char *file) {
    const char *set = "stylegan2";
    fu_weights *w = open_golden_weights(set, file);
    fu_stylegan2 *m = NULL;
    if (w) CHECK(fu_sg2_load(w, &m) == FU_OK);
    fu_weights_free(w);
    if (!m) return;
    CHECK(m->size == 64 && m->n_latent == 10 && m->n_noise == 9 && m->style_dim == 64 && m->n_mlp == 2);
    fu_tensor *noise[9] = {0}, *lat = golden_input(set, "latent"), *z = golden_input(set, "z"), *R = golden_load(set, "R");
    char name[64];
    for (int i = 0; i < 9; i++) {
        snprintf(name, sizeof name, "noise_%d", i);
        noise[i] = golden_input(set, name);
        /* the stored buffers are the same maps */
        CHECK(noise[i] && m->noise[i] && golden_max_diff(noise[i], m->noise[i]) == 0);
    }
    fu_graph *g = fu_graph_new();
    tap_list taps = {0};
    fu_tensor *img = fu_sg2_forward(g, m, lat, noise, &(fu_tensor_sink){collect_tap, &taps});
    CHECK(img != NULL);
    if (img && R) {
        matches_tensor(set, "image", img);
        int n_inter = 0;
        for (int i = 0; i < taps.n; i++) {
            snprintf(name, sizeof name, "inter_%s", taps.name[i]);
            n_inter += matches_tensor(set, name, taps.t[i]);
        }
        CHECK_MSG(n_inter == 14, "%d of 14 intermediates matched", n_inter);
        CHECK(fu_graph_backward(g, img, R->data) == FU_OK);
        matches_golden(set, "grad_latent", lat->grad, lat->numel, GEN_REL_TOL);
        for (int i = 0; i < 9; i++) {
            snprintf(name, sizeof name, "grad_noise_%d", i);
            if (noise[i]) matches_golden(set, name, noise[i]->grad, noise[i]->numel, GEN_REL_TOL);
        }
    }
    /* z path: mapping, repeat to n_latent, synthesis; the image is the same. */
    fu_graph_reset(g);
    fu_tensor *wz = fu_sg2_mapping(g, m, z);
    if (wz) matches_tensor(set, "w", wz);
    fu_tensor *img_z = fu_sg2_forward(g, m, fu_sg2_repeat_latent(g, m, wz), m->noise, NULL);
    CHECK(img_z != NULL);
    if (img_z && R) {
        matches_tensor(set, "image", img_z);
        CHECK(fu_graph_backward(g, img_z, R->data) == FU_OK);
        matches_golden(set, "grad_z", z->grad, z->numel, GEN_REL_TOL);
    }
    fu_graph_free(g);
    free_all(noise, 9);
    fu_tensor_free(lat);
    fu_tensor_free(z);
    fu_tensor_free(R);
    fu_sg2_free(m);
}

TEST(stylegan2_golden_safetensors) {
    if (!golden_present("stylegan2")) SKIP("../shared/golden/stylegan2 absent");
    check_sg2_golden("weights.safetensors");
}

TEST(stylegan2_golden_pt) {
    if (!golden_present("stylegan2")) SKIP("../shared/golden/stylegan2 absent");
    check_sg2_golden("weights.pt");
}

/* ---------------------------------------------------------------- random-weight networks */

/* Rows [b, b+1) of a leaf along dim 0, as a new leaf. */
static fu_tensor *batch_item(const fu_tensor *t, int64_t b) {
    int64_t shape[FU_MAX_DIMS];
    memcpy(shape, t->shape, sizeof shape);
    if (shape[0] == 1) b = 0;   /* broadcast input */
    shape[0] = 1;
    fu_tensor *r = fu_tensor_new(t->ndim, shape);
    if (r) memcpy(r->data, t->data + b * r->numel, (size_t)r->numel * sizeof(float));
    return r;
}

typedef enum { NET_SG1, NET_SG2 } net_kind;
typedef struct { net_kind kind; const void *model; int n_noise; } net_ctx;

/* inputs[0] = latents, inputs[1..] = noise maps. */
static fu_tensor *build_net(fu_graph *g, fu_tensor **inputs, void *ctx) {
    const net_ctx *c = ctx;
    return c->kind == NET_SG1 ? fu_sg1_forward(g, c->model, inputs[0], inputs + 1, NULL)
                              : fu_sg2_forward(g, c->model, inputs[0], inputs + 1, NULL);
}

/* A batch of 2 (noise map 1 shared, the others per sample) against the two single runs:
 * images, and the gradients of sum(image * R) w.r.t. latents and noise (the shared map's
 * gradient is the sum of both). Exact up to rounding, unlike finite differences, which the
 * leaky ReLUs of random networks make unreliable. Rounding differs between the batched and
 * single convolutions, so a leaky-ReLU input within ~1e-6 of 0 could take the other branch in
 * one run and change the gradients visibly (seed 11 does that for StyleGAN v1); this seed has
 * no such input. */
static void check_batch_matches_single(net_ctx *c, int64_t n_lat, int64_t dim, int64_t res_of_noise(int)) {
    fu_rng r;
    fu_rng_seed(&r, 1);
    fu_tensor *in[1 + 24] = {0}, *one[1 + 24] = {0};
    in[0] = randn_leaf(&r, 3, (int64_t[]){2, n_lat, dim}, 1);
    for (int i = 0; i < c->n_noise; i++) {
        int64_t s = res_of_noise(i);
        in[1 + i] = randn_leaf(&r, 4, (int64_t[]){i == 0 ? 1 : 2, 1, s, s}, 1);  /* noise 0 shared */
    }
    fu_graph *g = fu_graph_new();
    fu_tensor *img = build_net(g, in, c);
    REQUIRE(img && img->shape[0] == 2 && img->shape[1] == 3);
    fu_tensor *R = randn_leaf(&r, img->ndim, img->shape, 0);
    REQUIRE(R && fu_graph_backward(g, img, R->data) == FU_OK);
    float scale = fmaxf(1, golden_max_abs(img));
    fu_tensor *shared_grad = fu_tensor_clone(in[1]);
    REQUIRE(shared_grad);
    fu_tensor_fill(shared_grad, 0);
    for (int64_t b = 0; b < 2; b++) {
        for (int i = 0; i <= c->n_noise; i++) {
            one[i] = batch_item(in[i], b);
            if (one[i]) fu_tensor_requires_grad(one[i], 1);
        }
        fu_graph *g1 = fu_graph_new();
        fu_tensor *img1 = build_net(g1, one, c);
        fu_tensor *R1 = batch_item(R, b);
        REQUIRE(img1 && R1 && img1->numel * 2 == img->numel);
        float diff = 0;
        for (int64_t k = 0; k < img1->numel; k++) diff = fmaxf(diff, fabsf(img1->data[k] - img->data[b * img1->numel + k]));
        CHECK_MSG(diff <= 1e-4f * scale, "batch item %lld: image differs by %g", (long long)b, diff);
        CHECK(fu_graph_backward(g1, img1, R1->data) == FU_OK);
        for (int i = 0; i <= c->n_noise; i++) {
            if (i == 1) {   /* the shared noise map */
                for (int64_t k = 0; k < one[i]->numel; k++) shared_grad->data[k] += one[i]->grad[k];
                continue;
            }
            float gmax = 0, gdiff = 0;
            const float *gb = in[i]->grad + b * one[i]->numel;
            for (int64_t k = 0; k < one[i]->numel; k++) {
                gmax = fmaxf(gmax, fabsf(gb[k]));
                gdiff = fmaxf(gdiff, fabsf(gb[k] - one[i]->grad[k]));
            }
            CHECK_MSG(gmax > 0 && gdiff <= 1e-4f * gmax, "batch item %lld, input %d: gradient differs by %g (max %g)",
                      (long long)b, i, gdiff, gmax);
        }
        fu_tensor_free(R1);
        fu_graph_free(g1);
        free_all(one, 1 + c->n_noise);
    }
    float gmax = 0, gdiff = 0;
    for (int64_t k = 0; k < shared_grad->numel; k++) {
        gmax = fmaxf(gmax, fabsf(in[1]->grad[k]));
        gdiff = fmaxf(gdiff, fabsf(in[1]->grad[k] - shared_grad->data[k]));
    }
    CHECK_MSG(gmax > 0 && gdiff <= 1e-4f * gmax, "shared noise gradient differs by %g (max %g)", gdiff, gmax);
    fu_tensor_free(shared_grad);
    fu_tensor_free(R);
    fu_graph_free(g);
    free_all(in, 1 + c->n_noise);
}

static int64_t sg1_noise_res(int i) { return 4 << (i / 2); }
static int64_t sg2_noise_res(int i) { return 4 << ((i + 1) / 2); }

static fu_stylegan1 *random_sg1(int res, int dim, int fmap_base, int fmap_max) {
    fu_sg1_config cfg = {.resolution = res, .dlatent_size = dim, .fmap_base = fmap_base, .fmap_max = fmap_max};
    fu_weights *w = fu_sg1_random_weights(&cfg, 7);
    fu_stylegan1 *m = NULL;
    if (w) CHECK(fu_sg1_load(w, &m) == FU_OK);
    fu_weights_free(w);
    return m;
}

static fu_stylegan2 *random_sg2(int size, int dim, int n_mlp, int narrow) {
    fu_sg2_config cfg = {.size = size, .style_dim = dim, .n_mlp = n_mlp, .channel_multiplier = 2, .narrow = narrow};
    fu_weights *w = fu_sg2_random_weights(&cfg, 8);
    fu_stylegan2 *m = NULL;
    if (w) CHECK(fu_sg2_load(w, &m) == FU_OK);
    fu_weights_free(w);
    return m;
}

TEST(stylegan1_random_batch_matches_single) {
    /* 128 covers the fused upscale; channels 8, 8, 8, 4, 2, 1 keep it fast. */
    fu_stylegan1 *m = random_sg1(128, 8, 64, 8);
    REQUIRE(m);
    CHECK(m->n_layers == 12 && m->blocks[5].fused && m->blocks[5].out_ch == 1 && m->blocks[1].out_ch == 8);
    net_ctx c = {NET_SG1, m, m->n_layers};
    check_batch_matches_single(&c, m->n_layers, 8, sg1_noise_res);
    fu_sg1_free(m);
}

TEST(stylegan2_random_batch_matches_single) {
    fu_stylegan2 *m = random_sg2(32, 8, 2, 64);   /* channels 8 */
    REQUIRE(m);
    CHECK(m->n_latent == 8 && m->n_noise == 7 && m->convs[0].in_ch == 8 && m->fir_k == 4);
    net_ctx c = {NET_SG2, m, m->n_noise};
    check_batch_matches_single(&c, m->n_latent, 8, sg2_noise_res);
    fu_sg2_free(m);
}

static fu_tensor *build_sg2_from_z(fu_graph *g, fu_tensor **inputs, void *ctx) {
    const fu_stylegan2 *m = ctx;
    return fu_sg2_forward(g, m, fu_sg2_repeat_latent(g, m, fu_sg2_mapping(g, m, inputs[0])), m->noise, NULL);
}

TEST(stylegan2_z_path_truncation_mean_latent) {
    fu_stylegan2 *m = random_sg2(8, 6, 3, 128);
    REQUIRE(m);
    CHECK(m->n_mlp == 3 && m->n_latent == 4);
    fu_rng r;
    fu_rng_seed(&r, 21);
    fu_tensor *z = randn_leaf(&r, 2, (int64_t[]){2, 6}, 1);
    fu_gradcheck_opts o = {.eps = 3e-3f, .atol = 5e-3f, .rtol = 5e-2f, .max_checks = 12, .seed = 3};
    CHECK_MSG(fu_gradcheck(build_sg2_from_z, &z, 1, m, &o, NULL) == FU_OK, "%s", fu_last_error());
    /* mean_latent over 300 draws (two chunks) = the mean of one mapping of the same draws */
    fu_tensor *mean = fu_tensor_new(1, (int64_t[]){6});
    REQUIRE(mean && fu_sg2_mean_latent(m, 300, 99, mean) == FU_OK);
    fu_rng_seed(&r, 99);
    fu_tensor *zs = randn_leaf(&r, 2, (int64_t[]){300, 6}, 0);
    fu_graph *g = fu_graph_new();
    fu_tensor *ws = fu_sg2_mapping(g, m, zs);
    REQUIRE(ws);
    for (int d = 0; d < 6; d++) {
        double s = 0;
        for (int i = 0; i < 300; i++) s += ws->data[i * 6 + d];
        CHECK_NEAR(mean->data[d], s / 300, 1e-4 * fabs(s / 300) + 1e-6);
    }
    /* truncation: psi 0 gives the mean, psi 1 the input, psi 0.5 halfway */
    fu_tensor *t0 = fu_sg2_truncate(g, ws, mean, 0.0f), *t5 = fu_sg2_truncate(g, ws, mean, 0.5f);
    fu_tensor *t1 = fu_sg2_truncate(g, ws, mean, 1.0f);
    REQUIRE(t0 && t5 && t1);
    CHECK_NEAR(t0->data[7], mean->data[1], 1e-6);
    CHECK_NEAR(t1->data[7], ws->data[7], 1e-5);
    CHECK_NEAR(t5->data[7], 0.5f * (ws->data[7] + mean->data[1]), 1e-5);
    fu_graph_free(g);
    fu_tensor_free(zs);
    fu_tensor_free(mean);
    fu_tensor_free(z);
    fu_sg2_free(m);
}

/* ---------------------------------------------------------------- mapping v1, gaussfit */

TEST(stylegan1_mapping_matches_reference) {
    enum { D = 7, L = 3, N = 2 };
    fu_rng r;
    fu_rng_seed(&r, 31);
    fu_weights *w = fu_weights_new_table();
    float raw_w[L][D * D], raw_b[L][D];
    char name[32];
    for (int l = 0; l < L; l++) {
        fu_tensor *tw = randn_leaf(&r, 2, (int64_t[]){D, D}, 0), *tb = randn_leaf(&r, 1, (int64_t[]){D}, 0);
        REQUIRE(tw && tb);
        for (int i = 0; i < D * D; i++) tw->data[i] *= 100;   /* stored as N(0,1)/lrmul */
        for (int i = 0; i < D; i++) tb->data[i] *= 50;
        memcpy(raw_w[l], tw->data, sizeof raw_w[l]);
        memcpy(raw_b[l], tb->data, sizeof raw_b[l]);
        snprintf(name, sizeof name, "dense%d.weight", l);
        CHECK(fu_weights_put(w, name, tw) == FU_OK);
        snprintf(name, sizeof name, "dense%d.bias", l);
        CHECK(fu_weights_put(w, name, tb) == FU_OK);
    }
    fu_sg1_mapping *m = NULL;
    REQUIRE(fu_sg1_mapping_load(w, &m) == FU_OK);
    CHECK(m->n_layers == L && m->dim == D);
    fu_tensor *z = randn_leaf(&r, 2, (int64_t[]){N, D}, 0);
    fu_graph *g = fu_graph_new();
    fu_tensor *out = fu_sg1_mapping_forward(g, m, z);
    REQUIRE(out && out->numel == N * D);
    for (int n = 0; n < N; n++) {
        double x[D], y[D], ms = 0;
        for (int i = 0; i < D; i++) ms += (double)z->data[n * D + i] * z->data[n * D + i] / D;
        for (int i = 0; i < D; i++) x[i] = z->data[n * D + i] / sqrt(ms + 1e-8);
        for (int l = 0; l < L; l++) {
            for (int o = 0; o < D; o++) {
                double s = raw_b[l][o] * 0.01;
                for (int i = 0; i < D; i++) s += raw_w[l][o * D + i] * sqrt(2.0 / D) * 0.01 * x[i];
                y[o] = s > 0 ? s : 0.2 * s;
            }
            memcpy(x, y, sizeof x);
        }
        for (int i = 0; i < D; i++) CHECK_NEAR(out->data[n * D + i], x[i], 1e-5 * (1 + fabs(x[i])));
    }
    fu_graph_free(g);
    fu_tensor_free(z);
    fu_sg1_mapping_free(m);
    fu_weights_free(w);
}

static fu_tensor *build_gaussfit(fu_graph *g, fu_tensor **in, void *ctx) {
    (void)ctx;
    return fu_pulse_gaussfit(g, in[0], in[1], in[2]);
}

TEST(pulse_gaussfit_values_and_gradients) {
    fu_rng r;
    fu_rng_seed(&r, 41);
    fu_tensor *in[3] = {randn_leaf(&r, 3, (int64_t[]){2, 3, 5}, 1), randn_leaf(&r, 1, (int64_t[]){5}, 1), randn_leaf(&r, 1, (int64_t[]){5}, 1)};
    REQUIRE(in[0] && in[1] && in[2]);
    /* keep pre-activations away from the kink at 0 */
    for (int i = 0; i < 30; i++) {
        float v = in[0]->data[i] * in[2]->data[i % 5] + in[1]->data[i % 5];
        if (fabsf(v) < 0.1f) in[0]->data[i] += 0.3f / in[2]->data[i % 5];
    }
    fu_graph *g = fu_graph_new();
    fu_tensor *y = fu_pulse_gaussfit(g, in[0], in[1], in[2]);
    REQUIRE(y);
    for (int i = 0; i < 30; i++) {
        float v = in[0]->data[i] * in[2]->data[i % 5] + in[1]->data[i % 5];
        CHECK_NEAR(y->data[i], v > 0 ? v : 0.2f * v, 1e-6);
    }
    fu_graph_free(g);
    fu_gradcheck_opts o = {.eps = 1e-3f};
    CHECK_MSG(fu_gradcheck(build_gaussfit, in, 3, NULL, &o, NULL) == FU_OK, "%s", fu_last_error());
    free_all(in, 3);
}

/* ---------------------------------------------------------------- validation, weights table */

TEST(stylegan_load_and_forward_validation) {
    fu_weights *empty = fu_weights_new_table();
    fu_stylegan1 *m1 = NULL;
    fu_stylegan2 *m2 = NULL;
    CHECK(fu_sg1_load(empty, &m1) == FU_E_INPUT && m1 == NULL);
    CHECK(strstr(fu_last_error(), "G_synthesis") != NULL);
    CHECK(fu_sg2_load(empty, &m2) == FU_E_INPUT && m2 == NULL);
    fu_weights_free(empty);
    /* a wrongly sized tensor is named in the message */
    fu_sg1_config cfg = {.resolution = 8, .dlatent_size = 4, .fmap_base = 8, .fmap_max = 2};
    fu_weights *w = fu_sg1_random_weights(&cfg, 1);
    REQUIRE(w);
    CHECK(fu_weights_put(w, "blocks.8x8.epi2.style_mod.lin.bias", fu_tensor_newv(1, (int64_t)3)) == FU_OK);
    CHECK(fu_sg1_load(w, &m1) == FU_E_INPUT);
    CHECK(strstr(fu_last_error(), "blocks.8x8.epi2.style_mod.lin.bias") != NULL);
    fu_weights_free(w);
    fu_sg2_config c2 = {.size = 8, .style_dim = 4, .n_mlp = 1, .channel_multiplier = 1, .narrow = 256};
    w = fu_sg2_random_weights(&c2, 1);
    REQUIRE(w);
    CHECK(fu_weights_put(w, "g_ema.convs.1.conv.weight", fu_tensor_newv(4, (int64_t)2, (int64_t)2, (int64_t)3, (int64_t)3)) == FU_OK);
    CHECK(fu_sg2_load(w, &m2) == FU_E_INPUT);
    CHECK(strstr(fu_last_error(), "convs.1.conv.weight") != NULL);
    fu_weights_free(w);
    CHECK(fu_sg1_random_weights(&(fu_sg1_config){.resolution = 12, .dlatent_size = 4, .fmap_base = 8, .fmap_max = 2}, 1) == NULL);
    CHECK(fu_sg2_random_weights(&(fu_sg2_config){.size = 4, .style_dim = 4, .channel_multiplier = 1, .narrow = 1}, 1) == NULL);

    /* forward refuses bad latents and noise */
    fu_stylegan2 *m = random_sg2(8, 4, 1, 256);
    REQUIRE(m);
    fu_graph *g = fu_graph_new();
    fu_tensor *lat = fu_tensor_newv(3, (int64_t)1, (int64_t)3, (int64_t)4);
    CHECK(fu_sg2_forward(g, m, lat, m->noise, NULL) == NULL);
    CHECK(strstr(fu_last_error(), "expected [N,4,4]") != NULL);
    fu_tensor_free(lat);
    lat = fu_tensor_newv(3, (int64_t)1, (int64_t)4, (int64_t)4);
    fu_tensor *noise[3] = {m->noise[1], m->noise[1], m->noise[2]};   /* 8x8 where 4x4 belongs */
    CHECK(fu_sg2_forward(g, m, lat, noise, NULL) == NULL);
    CHECK(strstr(fu_last_error(), "noise 0") != NULL);
    CHECK(fu_sg2_forward(g, m, lat, m->noise, NULL) != NULL);
    int64_t shape[4];
    CHECK(fu_sg2_noise_shape(m, 2, shape) == 0 && shape[2] == 8);
    CHECK(fu_sg2_noise_shape(m, 3, shape) < 0);
    fu_tensor_free(lat);
    fu_sg2_free(m);

    fu_stylegan1 *m1r = random_sg1(8, 4, 8, 2);
    REQUIRE(m1r);
    fu_tensor *noise1[4];
    for (int i = 0; i < 4; i++) {
        CHECK(fu_sg1_noise_shape(m1r, i, shape) == 0 && shape[2] == (4 << (i / 2)));
        noise1[i] = fu_tensor_new(4, shape);
    }
    CHECK(fu_sg1_noise_shape(m1r, 4, shape) < 0);
    fu_tensor *dl = fu_tensor_newv(3, (int64_t)1, (int64_t)4, (int64_t)5);
    CHECK(fu_sg1_forward(g, m1r, dl, noise1, NULL) == NULL);
    CHECK(strstr(fu_last_error(), "expected [N,4,4]") != NULL);
    fu_tensor_free(dl);
    dl = fu_tensor_newv(3, (int64_t)1, (int64_t)4, (int64_t)4);
    fu_tensor *swapped[4] = {noise1[2], noise1[1], noise1[0], noise1[3]};
    CHECK(fu_sg1_forward(g, m1r, dl, swapped, NULL) == NULL);
    CHECK(strstr(fu_last_error(), "noise 0") != NULL);
    fu_tensor *img = fu_sg1_forward(g, m1r, dl, noise1, NULL);
    CHECK(img && img->shape[0] == 1 && img->shape[1] == 3 && img->shape[2] == 8 && img->shape[3] == 8);
    fu_tensor_free(dl);
    free_all(noise1, 4);
    fu_sg1_free(m1r);
    fu_graph_free(g);
}

TEST(weights_table_basics) {
    fu_weights *w = fu_weights_new_table();
    REQUIRE(w);
    fu_tensor *a = fu_tensor_newv(2, (int64_t)2, (int64_t)3);
    REQUIRE(a);
    a->data[4] = 5;
    CHECK(fu_weights_put(w, "a.weight", a) == FU_OK);
    CHECK(fu_weights_put(w, "b", fu_tensor_newv(1, (int64_t)4)) == FU_OK);
    CHECK(fu_weights_count(w) == 2 && !strcmp(fu_weights_name(w, 1), "b") && fu_weights_name(w, 2) == NULL);
    int64_t s[FU_MAX_DIMS];
    CHECK(fu_weights_shape(w, "a.weight", s) == 2 && s[0] == 2 && s[1] == 3);
    CHECK(fu_weights_shape(w, "nope", s) == -1 && !fu_weights_has(w, "nope"));
    fu_tensor *c = fu_weights_get(w, "a.weight");
    REQUIRE(c);
    CHECK(c != a && c->data[4] == 5 && c->requires_grad == 0);
    CHECK(fu_weights_reshape(c, 3, (int64_t[]){1, 6, 1}) == FU_OK && c->shape[1] == 6);
    CHECK(fu_weights_reshape(c, 1, (int64_t[]){5}) == FU_E_INPUT);
    fu_tensor_free(c);
    CHECK(fu_weights_get_numel(w, "b", 5) == NULL && strstr(fu_last_error(), "expected 5 elements"));
    CHECK(fu_weights_get(w, "nope") == NULL && strstr(fu_last_error(), "'nope'"));
    CHECK(fu_weights_put(w, "b", fu_tensor_newv(1, (int64_t)7)) == FU_OK);   /* replaces */
    CHECK(fu_weights_count(w) == 2 && fu_weights_shape(w, "b", s) == 1 && s[0] == 7);
    fu_weights_free(w);
    fu_weights *f = NULL;
    CHECK(fu_weights_open("/nonexistent/x.safetensors", &f) != FU_OK && f == NULL);
    CHECK(fu_weights_open("weights.bin", &f) == FU_E_INPUT && f == NULL);
}

/* Both weight files of a golden set hold the same names, shapes and values through fu_weights. */
TEST(weights_pt_and_safetensors_agree) {
    for (int k = 0; k < 2; k++) {
        const char *set = k ? "stylegan2" : "stylegan1";
        if (!golden_present(set)) SKIP("../shared/golden absent");
        fu_weights *pt = open_golden_weights(set, "weights.pt"), *st = open_golden_weights(set, "weights.safetensors");
        REQUIRE(pt && st);
        size_t n = fu_weights_count(pt);
        CHECK(n > 50 && n == fu_weights_count(st));
        for (size_t i = 0; i < n; i++) {
            const char *name = fu_weights_name(pt, i);
            int64_t a[FU_MAX_DIMS], b[FU_MAX_DIMS];
            int nd = fu_weights_shape(pt, name, a);
            CHECK_MSG(nd >= 0 && nd == fu_weights_shape(st, name, b) && !memcmp(a, b, (size_t)nd * sizeof *a), "%s: shapes differ", name);
            fu_tensor *x = fu_weights_get(pt, name), *y = fu_weights_get(st, name);
            CHECK_MSG(x && y && golden_max_diff(x, y) == 0, "%s: values differ", name);
            fu_tensor_free(x);
            fu_tensor_free(y);
        }
        CHECK(fu_weights_put(pt, "x", fu_tensor_newv(1, (int64_t)1)) == FU_E_INPUT);
        fu_weights_free(pt);
        fu_weights_free(st);
    }
}

/* ---------------------------------------------------------------- fused epilogue ops */

/* in: x, noise, noise_weight, bias, scale (scale NULL in the v1 form). */
static fu_tensor *build_noise_act(fu_graph *g, fu_tensor **in, void *ctx) {
    (void)ctx;
    return fu_sg_noise_act(g, in[0], in[4], in[1], in[2], in[3], 0.2f, 1.41421356f);
}

static fu_tensor *build_noise_act_v1(fu_graph *g, fu_tensor **in, void *ctx) {
    (void)ctx;
    return fu_sg_noise_act(g, in[0], NULL, in[1], in[2], in[3], 0.2f, 1.0f);
}

static void gradcheck_inputs(fu_build_fn build, fu_tensor **in, int n) {
    fu_gradcheck_opts o = {1e-3f, 2e-3f, 2e-2f, 40, 7};
    fu_gradcheck_result res;
    CHECK_MSG(fu_gradcheck(build, in, n, NULL, &o, &res) == FU_OK, "%s", fu_last_error());
    CHECK(res.n_checked > 40);
    free_all(in, n);
}

TEST(stylegan_fused_noise_act_gradcheck) {
    fu_rng r;
    fu_rng_seed(&r, 21);
    /* StyleGAN2 form: per-sample noise and demodulation scale, one noise strength. */
    fu_tensor *in[5] = {randn_leaf(&r, 4, (int64_t[]){2, 3, 4, 5}, 1), randn_leaf(&r, 4, (int64_t[]){2, 1, 4, 5}, 1),
                        randn_leaf(&r, 1, (int64_t[]){1}, 1), randn_leaf(&r, 1, (int64_t[]){3}, 1),
                        randn_leaf(&r, 2, (int64_t[]){2, 3}, 1)};
    gradcheck_inputs(build_noise_act, in, 5);
    /* v1 form: x broadcast over a batch of noise maps, per-channel noise weights, no scale. */
    fu_tensor *in1[4] = {randn_leaf(&r, 4, (int64_t[]){1, 3, 4, 5}, 1), randn_leaf(&r, 4, (int64_t[]){2, 1, 4, 5}, 1),
                         randn_leaf(&r, 1, (int64_t[]){3}, 1), randn_leaf(&r, 1, (int64_t[]){3}, 1)};
    gradcheck_inputs(build_noise_act_v1, in1, 4);
}

/* Large enough to take the OpenMP paths (more than 65536 values). */
TEST(stylegan_fused_noise_act_matches_op_chain) {
    fu_rng r;
    fu_rng_seed(&r, 22);
    fu_tensor *x = randn_leaf(&r, 4, (int64_t[]){2, 8, 64, 80}, 1), *noise = randn_leaf(&r, 4, (int64_t[]){2, 1, 64, 80}, 1);
    fu_tensor *nw = randn_leaf(&r, 4, (int64_t[]){1, 8, 1, 1}, 0), *bias = randn_leaf(&r, 4, (int64_t[]){1, 8, 1, 1}, 0);
    fu_tensor *scale = randn_leaf(&r, 4, (int64_t[]){2, 8, 1, 1}, 0), *seed = randn_leaf(&r, 4, (int64_t[]){2, 8, 64, 80}, 0);
    fu_graph *g = fu_graph_new();
    fu_tensor *fused = fu_sg_noise_act(g, x, scale, noise, nw, bias, 0.2f, 1.5f);
    REQUIRE(fused);
    fu_tensor *fused_out = fu_tensor_clone(fused);
    REQUIRE(fu_graph_backward(g, fused, seed->data) == FU_OK);
    fu_tensor *gx = fu_tensor_clone(&(fu_tensor){.ndim = 1, .shape = {x->numel}, .numel = x->numel, .data = x->grad});
    fu_tensor *gn = fu_tensor_clone(&(fu_tensor){.ndim = 1, .shape = {noise->numel}, .numel = noise->numel, .data = noise->grad});
    fu_tensor_zero_grad(x);
    fu_tensor_zero_grad(noise);
    fu_graph_reset(g);
    fu_tensor *pre = fu_add(g, fu_add(g, fu_mul(g, x, scale), fu_mul(g, noise, nw)), bias);
    fu_tensor *chain = fu_scale_shift(g, fu_leaky_relu(g, pre, 0.2f), 1.5f, 0);
    REQUIRE(chain && fu_graph_backward(g, chain, seed->data) == FU_OK);
    float dy = 0, dgx = 0, dgn = 0;
    for (int64_t i = 0; i < chain->numel; i++) dy = fmaxf(dy, fabsf(chain->data[i] - fused_out->data[i]));
    for (int64_t i = 0; i < x->numel; i++) dgx = fmaxf(dgx, fabsf(x->grad[i] - gx->data[i]));
    for (int64_t i = 0; i < noise->numel; i++) dgn = fmaxf(dgn, fabsf(noise->grad[i] - gn->data[i]));
    CHECK_MSG(dy < 1e-5f && dgx < 1e-5f && dgn < 1e-4f, "diff y %g, grad x %g, grad noise %g", dy, dgx, dgn);
    fu_tensor *all[9] = {x, noise, nw, bias, scale, seed, fused_out, gx, gn};
    free_all(all, 9);
    fu_graph_free(g);
}

static fu_tensor *build_style_in(fu_graph *g, fu_tensor **in, void *ctx) {
    (void)ctx;
    return fu_sg_style_instance_norm(g, in[0], in[1], in[2], 1e-5f);
}

TEST(stylegan_fused_style_instance_norm_gradcheck) {
    fu_rng r;
    fu_rng_seed(&r, 23);
    fu_tensor *in[3] = {randn_leaf(&r, 4, (int64_t[]){2, 3, 4, 5}, 1), randn_leaf(&r, 2, (int64_t[]){2, 3}, 1),
                        randn_leaf(&r, 2, (int64_t[]){2, 3}, 1)};
    gradcheck_inputs(build_style_in, in, 3);
    /* One x shared by a batch of two styles (v1's constant input with shared noise). */
    fu_tensor *in1[3] = {randn_leaf(&r, 4, (int64_t[]){1, 3, 4, 5}, 1), randn_leaf(&r, 2, (int64_t[]){2, 3}, 1),
                         randn_leaf(&r, 2, (int64_t[]){2, 3}, 1)};
    gradcheck_inputs(build_style_in, in1, 3);
}

static fu_tensor *build_mod1x1(fu_graph *g, fu_tensor **in, void *ctx) {
    (void)ctx;
    return fu_sg_modulated_1x1(g, in[0], in[1], in[2]);
}

TEST(stylegan_fused_modulated_1x1_gradcheck_and_values) {
    fu_rng r;
    fu_rng_seed(&r, 24);
    fu_tensor *in[3] = {randn_leaf(&r, 4, (int64_t[]){2, 5, 3, 4}, 1), randn_leaf(&r, 4, (int64_t[]){3, 5, 1, 1}, 1),
                        randn_leaf(&r, 2, (int64_t[]){2, 5}, 1)};
    /* Against conv2d(x * s, w). */
    fu_graph *g = fu_graph_new();
    fu_tensor *y = fu_sg_modulated_1x1(g, in[0], in[1], in[2]);
    fu_tensor *ref = fu_conv2d(g, fu_mul(g, in[0], fu_reshape(g, in[2], 4, (int64_t[]){2, 5, 1, 1})), in[1], NULL, NULL);
    REQUIRE(y && ref && y->numel == ref->numel);
    float diff = 0;
    for (int64_t i = 0; i < y->numel; i++) diff = fmaxf(diff, fabsf(y->data[i] - ref->data[i]));
    CHECK_MSG(diff < 1e-5f, "modulated 1x1 differs from conv2d(x*s) by %g", diff);
    fu_graph_free(g);
    gradcheck_inputs(build_mod1x1, in, 3);
}

TEST(stylegan_fused_ops_reject_bad_shapes) {
    fu_graph *g = fu_graph_new();
    fu_tensor *x = fu_tensor_newv(4, (int64_t)2, (int64_t)3, (int64_t)4, (int64_t)4);
    fu_tensor *noise = fu_tensor_newv(4, (int64_t)1, (int64_t)1, (int64_t)4, (int64_t)5);
    fu_tensor *nw = fu_tensor_newv(1, (int64_t)2), *ab = fu_tensor_newv(2, (int64_t)2, (int64_t)2);
    CHECK(fu_sg_noise_act(g, x, NULL, noise, nw, NULL, 0.2f, 1) == NULL && strstr(fu_last_error(), "noise [1,1,4,5]"));
    noise->shape[3] = 4;
    CHECK(fu_sg_noise_act(g, x, NULL, noise, nw, NULL, 0.2f, 1) == NULL && strstr(fu_last_error(), "noise weight"));
    CHECK(fu_sg_style_instance_norm(g, x, ab, ab, 1e-5f) == NULL && strstr(fu_last_error(), "N*C = 6"));
    fu_tensor *ab3 = fu_tensor_newv(2, (int64_t)3, (int64_t)3);   /* batch 3 against x's 2 */
    CHECK(fu_sg_style_instance_norm(g, x, ab3, ab3, 1e-5f) == NULL && strstr(fu_last_error(), "N*C = 6"));
    fu_tensor_free(ab3);
    CHECK(fu_sg_modulated_1x1(g, x, ab, ab) == NULL && strstr(fu_last_error(), "sg_modulated_1x1"));
    fu_tensor *all[4] = {x, noise, nw, ab};
    free_all(all, 4);
    fu_graph_free(g);
}
