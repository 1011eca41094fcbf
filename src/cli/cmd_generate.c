/* faceup generate: images from a generator (a StyleGAN2 checkpoint, PULSE's StyleGAN v1 synthesis
 * with its Gaussian fit, or faceup's VAE), one per seed, as a grid; --downscale F writes their
 * PULSE bicubic downscales instead (thumbnails). */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "args.h"
#include "commands.h"
#include "outpath.h"
#include "core/error.h"
#include "core/ops.h"
#include "core/rng.h"
#include "faceup.h"
#include "gen/generator.h"
#include "gen/stylegan2.h"
#include "gen/vae.h"
#include "io/image.h"

/* One StyleGAN2 image for seed: z ~ N(0, I) from the seed, stored noise buffers (random from
 * the seed when the checkpoint has none), optional truncation towards the mean latent. */
static fu_tensor *sg2_sample(fu_graph *g, const fu_stylegan2 *m, uint64_t seed, float psi, fu_tensor *mean) {
    fu_rng r;
    fu_rng_seed(&r, seed);
    fu_tensor *z = fu_graph_tensor(g, 2, (int64_t[]){1, m->style_dim});
    if (!z) return NULL;
    fu_rng_fill_normal(&r, z->data, z->numel, 0, 1);
    fu_tensor *w = fu_sg2_mapping(g, m, z);
    if (mean) w = fu_sg2_truncate(g, w, mean, psi);
    fu_tensor *noise[FU_SG2_MAX_CONVS + 1];
    for (int i = 0; i < m->n_noise; i++) {
        noise[i] = m->noise[i];
        if (noise[i]) continue;
        int64_t shape[4];
        if (fu_sg2_noise_shape(m, i, shape) < 0 || !(noise[i] = fu_graph_tensor(g, 4, shape))) return NULL;
        fu_rng_fill_normal(&r, noise[i]->data, noise[i]->numel, 0, 1);
    }
    return fu_sg2_forward(g, m, fu_sg2_repeat_latent(g, m, w), noise, NULL);
}

/* One VAE image for seed: w ~ N(0, t^2 I) from the seed (t: temperature), through the model's
 * prior (z = mean + L w; z = w without one, gen/vae.h), decoded. */
static fu_tensor *vae_sample(fu_graph *g, const fu_vae *m, uint64_t seed, float t) {
    fu_rng r;
    fu_rng_seed(&r, seed);
    fu_tensor *z = fu_graph_tensor(g, 2, (int64_t[]){1, m->cfg.latent});
    if (!z) return NULL;
    fu_rng_fill_normal(&r, z->data, z->numel, 0, t);
    return fu_vae_decode(g, m, fu_vae_prior_latent(g, m, z));
}

/* One StyleGAN v1 image for seed through the search's generator interface: z ~ N(0, I) per
 * layer mapped by PULSE's Gaussian fit, noise maps N(0, 1) from the seed; returned in [-1, 1]. */
static fu_tensor *sg1_sample(fu_graph *g, const fu_generator *gen, uint64_t seed) {
    fu_rng r;
    fu_rng_seed(&r, seed);
    fu_tensor *z = fu_graph_tensor(g, 3, (int64_t[]){1, gen->n_latent, gen->latent_dim});
    if (!z) return NULL;
    fu_rng_fill_normal(&r, z->data, z->numel, 0, 1);
    fu_tensor *noise[FU_GEN_MAX_NOISE];
    for (int i = 0; i < gen->n_noise; i++) {
        int64_t shape[4];
        if (gen->noise_shape(gen, i, shape) != FU_OK || !(noise[i] = fu_graph_tensor(g, 4, shape))) return NULL;
        fu_rng_fill_normal(&r, noise[i]->data, noise[i]->numel, 0, 1);
    }
    return fu_scale_shift(g, gen->build(gen, g, z, noise, NULL), 2.0f, -1.0f);
}

/* Copies img [1,3,S,S] mapped from [-1,1] to [0,1] into cell k of a grid. */
static void place(fu_tensor *grid, const fu_tensor *img, int k, int cols) {
    int64_t S = img->shape[2], H = grid->shape[2], W = grid->shape[3];
    int64_t y0 = (k / cols) * S, x0 = (k % cols) * S;
    for (int64_t c = 0; c < 3; c++)
        for (int64_t y = 0; y < S; y++)
            for (int64_t x = 0; x < S; x++)
                grid->data[(c * H + y0 + y) * W + x0 + x] = (img->data[(c * S + y) * S + x] + 1) * 0.5f;
}

int cmd_generate(int argc, char **argv) {
    const char *gen_path = NULL, *out_path = NULL, *gaussfit = NULL;
    int seed = 0, count = 1, threads = 0, factor = 1;
    float psi = 1, temperature = 1;
    arg_spec specs[] = {
        {"--generator", ARG_STRING, &gen_path, 0, 0, "StyleGAN2 checkpoint (.pt or .safetensors, rosinality names) or faceup's VAE"},
        {"-o", ARG_STRING, &out_path, 0, 0, "output .png or .jpg (a grid when --count > 1)"},
        {"--gaussfit", ARG_STRING, &gaussfit, 0, 0, "StyleGAN v1: PULSE's gaussian_fit.pt (mean, std) or the mapping network"},
        {"--seed", ARG_INT, &seed, 0, 2147483647, "first seed (default 0)"},
        {"--count", ARG_INT, &count, 1, 64, "images, seeds seed..seed+count-1 (default 1)"},
        {"--truncation", ARG_FLOAT, &psi, 0, 1, "truncation psi towards the mean latent (StyleGAN2; default 1: none)"},
        {"--temperature", ARG_FLOAT, &temperature, 0, 10, "VAE: latent std (default 1; lower gives more typical faces)"},
        {"--downscale", ARG_INT, &factor, 1, 64, "write the PULSE bicubic downscale by this power of two (thumbnails; default 1)"},
        {"--threads", ARG_INT, &threads, 0, 1024, "threads (default: FACEUP_THREADS or all cores)"},
        {0},
    };
    int n = args_parse("generate", "--generator FILE -o OUT.png [flags]", specs, argc, argv, NULL, 0);
    if (n < 0) return n == -2 ? FU_OK : FU_E_INPUT;
    if (!gen_path || !out_path) {
        fprintf(stderr, "faceup generate: --generator and -o are required\n");
        return FU_E_INPUT;
    }
    if (factor & (factor - 1)) {
        fprintf(stderr, "faceup generate: --downscale must be a power of two, got %d\n", factor);
        return FU_E_INPUT;
    }
    out_target target;
    if (outpath_file("-o", out_path, &target) != FU_OK) {
        fprintf(stderr, "faceup generate: %s\n", fu_last_error());
        return FU_E_INPUT;
    }
    fu_set_threads(threads);
    fu_weights *w = NULL;
    fu_stylegan2 *m = NULL;
    fu_vae *vae = NULL;
    fu_generator *sg1 = NULL;
    fu_graph *g = fu_graph_new();
    fu_tensor *grid = NULL, *mean = NULL;
    int rc = fu_weights_open(gen_path, &w);
    if (rc == FU_OK && fu_weights_has(w, "dec.fc.weight")) {
        rc = fu_vae_load(gen_path, &vae);
    } else if (rc == FU_OK && fu_weights_has(w, "blocks.4x4.const")) {
        rc = gaussfit ? fu_generator_open(gen_path, gaussfit, &sg1)
                      : fu_fail(FU_E_INPUT, "%s: StyleGAN v1 needs --gaussfit (PULSE's gaussian_fit.pt or the mapping network)", gen_path);
    } else if (rc == FU_OK && (rc = fu_sg2_load(w, &m)) != FU_OK) {
        char why[256];
        snprintf(why, sizeof why, "%s", fu_last_error());
        fu_fail(rc, "%s: not faceup's VAE, StyleGAN v1 or a StyleGAN2 checkpoint (%s)", gen_path, why);
    }
    if (rc == FU_OK && psi < 1 && !m) rc = fu_fail(FU_E_INPUT, "--truncation applies to StyleGAN2 generators only; %s is not one", gen_path);
    if (rc == FU_OK && temperature != 1 && !vae) rc = fu_fail(FU_E_INPUT, "--temperature applies to faceup's VAE only; %s is not one", gen_path);
    if (rc != FU_OK || !g) goto done;
    int64_t full = vae ? vae->cfg.size : (sg1 ? sg1->resolution : m->size), size = full / factor;
    if (size < 1 || size * factor != full) {
        rc = fu_fail(FU_E_INPUT, "--downscale %d does not divide the generator's size", factor);
        goto done;
    }
    if (m && psi < 1) {
        if (!(mean = fu_tensor_newv(1, m->style_dim)) || (rc = fu_sg2_mean_latent(m, 4096, 1, mean)) != FU_OK) goto done;
    }
    int cols = (int)ceil(sqrt((double)count)), rows = (count + cols - 1) / cols;
    grid = fu_tensor_newv(4, (int64_t)1, (int64_t)3, (int64_t)rows * size, (int64_t)cols * size);
    if (!grid) { rc = FU_E_INTERNAL; goto done; }
    for (int k = 0; k < count; k++) {
        fu_graph_reset(g);
        uint64_t s_k = (uint64_t)seed + (uint64_t)k;
        fu_tensor *img = vae ? vae_sample(g, vae, s_k, temperature)
                             : (sg1 ? sg1_sample(g, sg1, s_k) : sg2_sample(g, m, s_k, psi, mean));
        if (img && factor > 1) img = fu_bicubic_downsample(g, img, factor);
        if (!img) { rc = fu_last_code() ? fu_last_code() : FU_E_INTERNAL; goto done; }
        place(grid, img, k, cols);
    }
    rc = outpath_save(target.path, grid);
    if (rc == FU_OK) outpath_announce("generate", target.path);
done:
    if (rc != FU_OK) fprintf(stderr, "faceup generate: %s\n", fu_last_error());
    fu_tensor_free(grid);
    fu_tensor_free(mean);
    fu_graph_free(g);
    fu_sg2_free(m);
    fu_vae_free(vae);
    fu_generator_free(sg1);
    fu_weights_free(w);
    return rc == FU_OK ? FU_OK : (rc == FU_E_INTERNAL ? FU_E_INTERNAL : FU_E_INPUT);
}
