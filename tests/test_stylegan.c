/* StyleGAN v1 (PULSE G_synthesis) and StyleGAN2 (rosinality Generator) against the goldens in
 * ../shared/golden/stylegan{1,2} (README there), from both weights.pt and weights.safetensors:
 * image, every stored intermediate, and the gradients of sum(image * R) with respect to the
 * latents, every noise map and (v2) z. Tolerance max|c - golden| <= 1e-4 * max|golden|.
 * Plus random-weight networks (batch consistency, finite differences), mapping networks,
 * PULSE's Gaussian-fit latent map, and input validation. FACEUP_GEN_BENCH=1 times 256 and
 * 1024 networks (not part of the default run). */
#include "test.h"
#include "golden.h"
#include "core/ops.h"
#include "core/gradcheck.h"
#include "core/rng.h"
#include "gen/stylegan1.h"
#include "gen/stylegan2.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
