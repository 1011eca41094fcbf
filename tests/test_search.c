/* The latent search on small random generators: it must bring the downscale L2 of a thumbnail
 * made from a known latent within eps (or far below where it started), keep its latents on
 * their spheres, report consistent losses, and refuse what it cannot do. */
#include "test.h"
#include "util.h"
#include "core/ops.h"
#include "gen/generator.h"
#include "gen/vae.h"
#include "gen/stylegan1.h"
#include "gen/stylegan2.h"
#include "search/search.h"
#include <stdlib.h>
#include <string.h>

/* Thumbnail: the generator's image for z ~ N(0, I) from seed, zero noise, bicubic-downscaled. */
static fu_tensor *thumbnail_from_latent(const fu_generator *gen, uint64_t seed, int factor) {
    fu_rng r;
    fu_rng_seed(&r, seed);
    fu_graph *g = fu_graph_new();
    fu_tensor *z = randn_leaf(&r, 3, (int64_t[]){1, gen->n_latent, gen->latent_dim}, 0), *noise[FU_GEN_MAX_NOISE] = {0}, *thumb = NULL;
    for (int i = 0; i < gen->n_noise; i++) {
        int64_t shape[4];
        if (gen->noise_shape(gen, i, shape) == FU_OK) noise[i] = fu_tensor_new(4, shape);
    }
    fu_tensor *low = fu_bicubic_downsample(g, gen->build(gen, g, z, noise, NULL), factor);
    if (low) thumb = fu_tensor_clone(low);
    for (int i = 0; i < gen->n_noise; i++) fu_tensor_free(noise[i]);
    fu_tensor_free(z);
    fu_graph_free(g);
    return thumb;
}

static fu_generator *random_stylegan2(int size) {
    fu_sg2_config c = {.size = size, .style_dim = 32, .n_mlp = 2, .channel_multiplier = 1, .narrow = 16};
    fu_weights *w = fu_sg2_random_weights(&c, 11);
    fu_generator *gen = NULL;
    if (w) fu_generator_from_weights(w, NULL, "random stylegan2", &gen);
    fu_weights_free(w);
    return gen;
}

/* PULSE's fit for a network whose mapping output is N(0,1) before the leaky ReLU: mean 0, std 1. */
static fu_generator *random_stylegan1(int res) {
    fu_sg1_config c = {.resolution = res, .dlatent_size = 32, .fmap_base = 256, .fmap_max = 32};
    fu_weights *w = fu_sg1_random_weights(&c, 12), *fit = fu_weights_new_table();
    fu_tensor *mean = fu_tensor_newv(1, (int64_t)32), *std = fu_tensor_newv(1, (int64_t)32);
    fu_generator *gen = NULL;
    if (std) fu_tensor_fill(std, 1);
    if (w && fit && mean && std && fu_weights_put(fit, "mean", mean) == FU_OK && fu_weights_put(fit, "std", std) == FU_OK)
        fu_generator_from_weights(w, fit, "random stylegan1", &gen);
    else { fu_tensor_free(mean); fu_tensor_free(std); }
    fu_weights_free(w);
    fu_weights_free(fit);
    return gen;
}

/* Euclidean norm of row `row` of z [1,L,D]. */
static double row_norm(const fu_tensor *z, int64_t row) {
    int64_t D = z->shape[2];
    double s = 0;
    for (int64_t k = 0; k < D; k++) s += (double)z->data[row * D + k] * z->data[row * D + k];
    return sqrt(s);
}

typedef struct { float first_l2; int calls; } step_log;
static void log_step(void *ctx, const fu_search_step *s) {
    step_log *l = ctx;
    if (s->step == 0 && s->wave == 0) l->first_l2 = s->l2;
    l->calls++;
}

/* Runs the default PULSE search (zero noise: the target was made without noise) and checks the
 * outcome; returns the result's final L2 (or -1). */
static double search_reaches_thumbnail(fu_generator *gen, int factor, float eps) {
    fu_tensor *thumb = thumbnail_from_latent(gen, 777, factor);
    if (!thumb) return -1;
    fu_search_config cfg = fu_search_defaults();
    cfg.noise = FU_NOISE_ZERO;
    cfg.eps = eps;
    step_log log = {0};
    cfg.on_step = log_step;
    cfg.ctx = &log;
    fu_search_result res;
    double l2 = -1;
    if (fu_search_run(gen, thumb, &cfg, &res) == FU_OK) {
        l2 = res.wave[0].l2;
        CHECK(log.calls == cfg.steps);
        /* Random-weight networks are harder to invert than trained ones: within 100 steps the L2
         * falls by 30x or more (measured 70-90x), not always below PULSE's eps. */
        CHECK_MSG(l2 < log.first_l2 / 30, "%s: L2 fell only from %.5f to %.5f", gen->kind, log.first_l2, l2);
        CHECK(res.status == (l2 <= eps ? FU_OK : FU_E_NO_SOLUTION) && res.wave[0].status == res.status);
        CHECK(res.wave[0].ran && !res.wave[1].ran && res.wave[0].steps == 100 && res.wave[0].best_step > 0);
        /* Reported loss = 100 * max(L2, eps) + 0.05 * GEOCROSS of the reported state. */
        CHECK_NEAR(res.wave[0].terms[0], fmax(l2, eps), 1e-7);
        CHECK_NEAR(res.wave[0].loss, 100 * res.wave[0].terms[0] + 0.05 * res.wave[0].terms[1], 1e-4 * res.wave[0].loss);
        CHECK(res.wave[0].terms[1] > 0);   /* several latent rows: GEOCROSS is a real term */
        for (int64_t row = 0; row < gen->n_latent; row++) {
            double n = row_norm(res.latent, row);
            CHECK_MSG(n > 0.6 * sqrt(32.0) && n < 1.4 * sqrt(32.0), "row %lld norm %.3f", (long long)row, n);
        }
        CHECK(res.image->shape[2] == gen->resolution);
        fu_search_results_free(&res, 1);
    }
    fu_tensor_free(thumb);
    return l2;
}

TEST(search_stylegan2_meets_eps_on_a_generated_thumbnail) {
    fu_generator *gen = random_stylegan2(16);
    REQUIRE(gen);
    CHECK(!strcmp(gen->kind, "stylegan2") && gen->n_latent == 6 && gen->n_noise == 5 && gen->resolution == 16);
    CHECK(search_reaches_thumbnail(gen, 4, 2e-3f) >= 0);
    fu_generator_free(gen);
}

TEST(search_stylegan1_meets_eps_on_a_generated_thumbnail) {
    fu_generator *gen = random_stylegan1(16);
    REQUIRE(gen);
    CHECK(!strcmp(gen->kind, "stylegan1") && gen->n_latent == 6 && gen->n_noise == 6);
    CHECK(search_reaches_thumbnail(gen, 4, 2e-3f) >= 0);
    fu_generator_free(gen);
}

/* ---- a single-latent generator (the shape of a VAE decoder): image = sigmoid(W z) ---- */

typedef struct { fu_tensor *w; } toy_impl;

static fu_tensor *toy_build(const fu_generator *gen, fu_graph *g, fu_tensor *z, fu_tensor *const *noise, fu_tensor **latent_in) {
    (void)noise;
    const toy_impl *t = gen->impl;
    int64_t N = z->shape[0], R = gen->resolution;
    if (latent_in) *latent_in = z;
    fu_tensor *flat = fu_linear(g, fu_reshape(g, z, 2, (int64_t[]){N, gen->latent_dim}), t->w, NULL);
    return fu_sigmoid(g, fu_reshape(g, flat, 4, (int64_t[]){N, 3, R, R}));
}

static void toy_destroy(fu_generator *gen) {
    toy_impl *t = gen->impl;
    fu_tensor_free(t->w);
    free(t);
}

static fu_generator *toy_generator(void) {
    fu_generator *gen = calloc(1, sizeof *gen);
    toy_impl *t = calloc(1, sizeof *t);
    fu_rng r;
    fu_rng_seed(&r, 5);
    if (!gen || !t || !(t->w = randn_leaf(&r, 2, (int64_t[]){3 * 8 * 8, 16}, 0))) { free(gen); free(t); return NULL; }
    for (int64_t i = 0; i < t->w->numel; i++) t->w->data[i] *= 0.25f;   /* 1/sqrt(D): unit-variance logits */
    *gen = (fu_generator){.kind = "toy", .resolution = 8, .n_latent = 1, .latent_dim = 16, .build = toy_build,
                          .destroy = toy_destroy, .impl = t};
    return gen;
}

/* Test guide: the mean brightness of the image, so its value can be checked from the result. */
static fu_tensor *brightness_guide(void *ctx, fu_graph *g, fu_tensor *image, const fu_loss_term *term) {
    int *calls = ctx;
    (*calls)++;
    return term->kind == FU_TERM_ATTR ? fu_mean_all(g, image) : NULL;
}

static double mean_of(const fu_tensor *t) {
    double s = 0;
    for (int64_t i = 0; i < t->numel; i++) s += t->data[i];
    return s / (double)t->numel;
}

TEST(search_single_latent_generator_meets_eps_geocross_zero) {
    fu_generator *gen = toy_generator();
    REQUIRE(gen);
    fu_tensor *thumb = thumbnail_from_latent(gen, 99, 2);
    REQUIRE(thumb && thumb->shape[2] == 4);
    fu_search_config cfg = fu_search_defaults();
    cfg.n_seeds = 2;
    cfg.first_seed = 10;
    fu_search_result res[2];
    REQUIRE(fu_search_run(gen, thumb, &cfg, res) == FU_OK);
    for (int k = 0; k < 2; k++) {
        CHECK(res[k].seed == 10u + (unsigned)k);
        CHECK_MSG(res[k].status == FU_OK && res[k].wave[0].l2 <= cfg.eps, "seed %d: L2 %.5f", k, res[k].wave[0].l2);
        CHECK(res[k].wave[0].terms[1] == 0);                       /* GEOCROSS of one latent row */
        /* The latent stayed on the sphere of its initial draw (PULSE: z first from the seed). */
        fu_rng r;
        fu_rng_seed(&r, res[k].seed);
        fu_tensor *z0 = randn_leaf(&r, 3, (int64_t[]){1, 1, 16}, 0);
        REQUIRE(z0);
        CHECK_NEAR(row_norm(res[k].latent, 0), row_norm(z0, 0), 1e-4 * row_norm(z0, 0));
        fu_tensor_free(z0);
    }
    /* Different seeds start apart: different answers with equally good downscales. */
    CHECK(fabs(res[0].latent->data[0] - res[1].latent->data[0]) > 1e-3);
    fu_search_results_free(res, 2);
    fu_tensor_free(thumb);
    fu_generator_free(gen);
}

TEST(search_second_wave_and_guides) {
    fu_generator *gen = toy_generator();
    REQUIRE(gen);
    fu_tensor *thumb = thumbnail_from_latent(gen, 99, 2);
    REQUIRE(thumb);
    fu_search_config cfg = fu_search_defaults();
    cfg.steps = 60;
    REQUIRE(fu_loss_parse("100*L2+1*ATTR_Smiling_IS_1", &cfg.loss2) == FU_OK);
    cfg.has_loss2 = 1;
    fu_search_result res;
    /* Without the attribute guide: refused before any work, naming the term and the network. */
    CHECK(fu_search_run(gen, thumb, &cfg, &res) == FU_E_INPUT);
    CHECK(strstr(fu_last_error(), "ATTR_31_IS_1 needs the attribute classifier: no guide for it was given") != NULL);
    int calls = 0;
    fu_search_guides guides = {.attr = {brightness_guide, &calls}};
    cfg.guides = &guides;
    REQUIRE(fu_search_run(gen, thumb, &cfg, &res) == FU_OK);
    CHECK(calls == 1);                     /* the graph is built once per wave and re-run */
    CHECK(res.wave[0].ran && res.wave[1].ran && res.wave[1].steps == 60);
    CHECK(res.wave[0].status == FU_OK);
    if (res.wave[1].status == FU_OK) CHECK_NEAR(res.wave[1].terms[1], mean_of(res.image), 1e-5);
    CHECK(res.status == FU_OK && res.wave[1].l2 <= cfg.eps);
    fu_search_results_free(&res, 1);
    /* Identity and race terms need their own networks. */
    REQUIRE(fu_loss_parse("100*L2+5*IDENTITY_SCORE", &cfg.loss) == FU_OK);
    CHECK(fu_search_run(gen, thumb, &cfg, &res) == FU_E_INPUT && strstr(fu_last_error(), "IDENTITY_SCORE needs the identity network: no guide for it was given"));
    REQUIRE(fu_loss_parse("100*L2+5*RACE_IS_1", &cfg.loss) == FU_OK);
    CHECK(fu_search_run(gen, thumb, &cfg, &res) == FU_E_INPUT && strstr(fu_last_error(), "RACE_IS_1 needs the race classifier"));
    fu_tensor_free(thumb);
    fu_generator_free(gen);
}

TEST(search_thumbnail_size_checks) {
    fu_generator *gen = random_stylegan2(16);
    REQUIRE(gen);
    int factor = 0;
    int64_t ok_sizes[] = {8, 4, 2}, bad_sizes[] = {16, 5, 3, 1};  /* 1x1: 16x needs 24 pixels of padding */
    for (int i = 0; i < 3; i++) {
        fu_tensor *t = fu_tensor_newv(4, (int64_t)1, (int64_t)3, ok_sizes[i], ok_sizes[i]);
        CHECK(fu_search_check_thumbnail(gen, t, "t.png", &factor) == FU_OK && factor == 16 / ok_sizes[i]);
        fu_tensor_free(t);
    }
    for (int i = 0; i < 4; i++) {
        fu_tensor *t = fu_tensor_newv(4, (int64_t)1, (int64_t)3, bad_sizes[i], bad_sizes[i]);
        CHECK_MSG(fu_search_check_thumbnail(gen, t, "t.png", &factor) == FU_E_INPUT, "%lld accepted", (long long)bad_sizes[i]);
        CHECK(strstr(fu_last_error(), "t.png") && strstr(fu_last_error(), "(8x8, 4x4, 2x2)"));
        fu_tensor_free(t);
    }
    fu_tensor *t = fu_tensor_newv(4, (int64_t)1, (int64_t)3, (int64_t)4, (int64_t)8);
    CHECK(fu_search_check_thumbnail(gen, t, "t.png", &factor) == FU_E_INPUT && strstr(fu_last_error(), "8x4"));
    fu_tensor_free(t);
    fu_generator_free(gen);
}

TEST(search_trainable_noise_changes_the_result) {
    fu_generator *gen = random_stylegan2(16);
    REQUIRE(gen);
    fu_tensor *thumb = thumbnail_from_latent(gen, 5, 2);
    REQUIRE(thumb);
    fu_search_config cfg = fu_search_defaults();
    cfg.steps = 20;
    fu_search_result a, b;
    REQUIRE(fu_search_run(gen, thumb, &cfg, &a) == FU_OK);
    cfg.noise = FU_NOISE_FIXED;
    REQUIRE(fu_search_run(gen, thumb, &cfg, &b) == FU_OK);
    /* Same seed, same draws: only the trainable noise differs, so the results differ. */
    CHECK(a.wave[0].loss != b.wave[0].loss);
    CHECK(isfinite(a.wave[0].loss) && isfinite(b.wave[0].loss));
    fu_search_results_free(&a, 1);
    fu_search_results_free(&b, 1);
    fu_tensor_free(thumb);
    fu_generator_free(gen);
}

TEST(generator_detection_by_content) {
    fu_weights *w = fu_weights_new_table();
    fu_generator *gen = NULL;
    REQUIRE(w && fu_weights_put(w, "conv.weight", fu_tensor_newv(1, (int64_t)3)) == FU_OK);
    CHECK(fu_generator_from_weights(w, NULL, "x.safetensors", &gen) == FU_E_INPUT && gen == NULL);
    CHECK(strstr(fu_last_error(), "x.safetensors: not a generator faceup knows") != NULL);
    fu_weights_free(w);
    fu_sg1_config c = {.resolution = 8, .dlatent_size = 4, .fmap_base = 8, .fmap_max = 2};
    REQUIRE((w = fu_sg1_random_weights(&c, 1)));
    CHECK(fu_generator_from_weights(w, NULL, "v1.pt", &gen) == FU_E_INPUT && strstr(fu_last_error(), "--gaussfit"));
    fu_weights_free(w);
    CHECK(fu_generator_open("/nonexistent/g.pt", NULL, &gen) == FU_E_INPUT && strstr(fu_last_error(), "/nonexistent/g.pt"));
}

/* StyleGAN v1 with a mapping network instead of a stored fit: the fit is computed as PULSE does.
 * With one identity layer, leaky_relu(mapping(z), 5) is the pixel-normed z, whose every
 * coordinate has mean 0 and variance 1, so the computed fit must act like mean 0, std 1. */
TEST(generator_stylegan1_gaussfit_from_mapping) {
    enum { D = 8 };
    fu_sg1_config c = {.resolution = 8, .dlatent_size = D, .fmap_base = 16, .fmap_max = 8};
    fu_weights *w = fu_sg1_random_weights(&c, 3), *map = fu_weights_new_table(), *fit = fu_weights_new_table();
    REQUIRE(w && map && fit);
    fu_tensor *W = fu_tensor_newv(2, (int64_t)D, (int64_t)D), *b = fu_tensor_newv(1, (int64_t)D);
    fu_tensor *mean = fu_tensor_newv(1, (int64_t)D), *std = fu_tensor_newv(1, (int64_t)D);
    REQUIRE(W && b && mean && std);
    for (int i = 0; i < D; i++) W->data[i * D + i] = (float)(sqrt((double)D) / (sqrt(2.0) * 0.01));  /* undoes the load scale */
    fu_tensor_fill(std, 1);
    REQUIRE(fu_weights_put(map, "dense0.weight", W) == FU_OK && fu_weights_put(map, "dense0.bias", b) == FU_OK);
    REQUIRE(fu_weights_put(fit, "mean", mean) == FU_OK && fu_weights_put(fit, "std", std) == FU_OK);
    fu_generator *from_map = NULL, *from_fit = NULL;
    REQUIRE(fu_generator_from_weights(w, map, "v1", &from_map) == FU_OK);
    REQUIRE(fu_generator_from_weights(w, fit, "v1", &from_fit) == FU_OK);
    fu_rng r;
    fu_rng_seed(&r, 4);
    fu_tensor *z = randn_leaf(&r, 3, (int64_t[]){1, from_map->n_latent, D}, 0), *noise[FU_GEN_MAX_NOISE] = {0};
    for (int i = 0; i < from_map->n_noise; i++) {
        int64_t shape[4];
        REQUIRE(from_map->noise_shape(from_map, i, shape) == FU_OK && (noise[i] = fu_tensor_new(4, shape)));
    }
    fu_graph *g = fu_graph_new();
    fu_tensor *a = from_map->build(from_map, g, z, noise, NULL), *e = from_fit->build(from_fit, g, z, noise, NULL);
    REQUIRE(a && e);
    double diff = 0, mag = 0;
    for (int64_t i = 0; i < a->numel; i++) {
        diff = fmax(diff, fabs(a->data[i] - e->data[i]));
        mag = fmax(mag, fabs(e->data[i]));
    }
    /* 10^5 draws: the fit is within about 1% of (0, 1). */
    CHECK_MSG(diff > 0 && diff < 0.05 * mag, "max diff %g, magnitude %g", diff, mag);
    fu_graph_free(g);
    for (int i = 0; i < from_map->n_noise; i++) fu_tensor_free(noise[i]);
    fu_tensor_free(z);
    fu_generator_free(from_map);
    fu_generator_free(from_fit);
    fu_weights_free(w);
    fu_weights_free(map);
    fu_weights_free(fit);
}

/* faceup's VAE starts the search from its encoder: z = mu + exp(logvar / 2) * eps for the
 * bicubic-upscaled thumbnail, eps being the seed's N(0, I) draw. */
TEST(generator_vae_init_latent_is_the_posterior_sample) {
    fu_vae_config cfg = {.size = 16, .channels = 4, .latent = 8};
    fu_vae *m = fu_vae_new(&cfg, 6);
    char path[512];
    snprintf(path, sizeof path, "%s/init_vae.safetensors", fu_test_tmpdir());
    REQUIRE(m && fu_vae_save(m, path) == FU_OK);
    fu_generator *gen = NULL;
    REQUIRE(fu_generator_open(path, NULL, &gen) == FU_OK);
    REQUIRE(gen->init_latent && gen->n_latent == 1 && gen->latent_dim == 8 && gen->resolution == 16);
    fu_rng r;
    fu_rng_seed(&r, 2);
    fu_tensor *thumb = randn_leaf(&r, 4, (int64_t[]){1, 3, 4, 4}, 0);
    fu_tensor *z = randn_leaf(&r, 3, (int64_t[]){1, 1, 8}, 0);
    REQUIRE(thumb && z);
    for (int64_t i = 0; i < thumb->numel; i++) thumb->data[i] = 0.5f + 0.2f * thumb->data[i];
    fu_tensor *eps = fu_tensor_clone(z);
    REQUIRE(gen->init_latent(gen, thumb, z) == FU_OK);
    fu_graph *g = fu_graph_new();
    fu_tensor *logvar = NULL;
    fu_tensor *up = fu_resize_bicubic(g, thumb, 16, 16);
    fu_tensor *mu = fu_vae_encode(g, m, fu_scale_shift(g, up, 2.0f, -1.0f), &logvar);
    REQUIRE(mu && logvar);
    double worst = 0;
    for (int i = 0; i < 8; i++) worst = fmax(worst, fabs(z->data[i] - (mu->data[i] + expf(0.5f * logvar->data[i]) * eps->data[i])));
    CHECK_MSG(worst < 1e-5, "start differs from the posterior sample by %g", worst);
    CHECK(fabs(z->data[0] - eps->data[0]) > 1e-6);   /* it is not the raw draw */
    /* With a prior the search moves the whitened latent: init gives L^-1 (sample - mean), and
     * build() decodes mean + L w, i.e. the same image as decoding the posterior sample. */
    double mean[8], cov[64];
    for (int i = 0; i < 8; i++) {
        mean[i] = 0.1 * i;
        for (int j = 0; j < 8; j++) cov[i * 8 + j] = (i == j ? 2.0 : 0.0) + 0.3 / (1 + abs(i - j));
    }
    REQUIRE(fu_vae_set_prior(m, mean, cov) == FU_OK && fu_vae_save(m, path) == FU_OK);
    fu_generator *pg = NULL;
    REQUIRE(fu_generator_open(path, NULL, &pg) == FU_OK);
    fu_tensor *w = fu_tensor_clone(eps);
    REQUIRE(w && pg->init_latent(pg, thumb, w) == FU_OK);
    fu_graph_reset(g);
    fu_tensor *via_prior = pg->build(pg, g, w, NULL, NULL);
    fu_tensor *direct = fu_vae_decode(g, m, fu_reshape(g, z, 2, (int64_t[]){1, 8}));
    REQUIRE(via_prior && direct);
    worst = 0;
    for (int64_t i = 0; i < direct->numel; i++) worst = fmax(worst, fabs(via_prior->data[i] - 0.5 * (direct->data[i] + 1)));
    CHECK_MSG(worst < 1e-4, "prior path image differs by %g", worst);
    CHECK(fabs(w->data[3] - z->data[3]) > 1e-4);   /* the searched latent is the whitened one */
    fu_tensor_free(w);
    fu_generator_free(pg);
    fu_graph_free(g);
    fu_tensor_free(thumb); fu_tensor_free(z); fu_tensor_free(eps);
    fu_generator_free(gen);
    fu_vae_free(m);
}
