/* Generators as the latent search sees them: a small interface (a table of function pointers)
 * over StyleGAN v1 (PULSE), StyleGAN2 (rosinality) and faceup's own decoder.
 *
 * The search owns a latent z of shape [N, n_latent, latent_dim] drawn from N(0, 1) and kept on
 * its sphere, and noise maps [N or 1, 1, r, r] (n_noise of them, possibly none). build() maps
 * z into the generator's own latent space and synthesises an image:
 *   - StyleGAN v1: latent_in = leaky_relu(z * std + mean, 0.2) (PULSE's Gaussian fit of the
 *     mapping network's output), one row per synthesis layer (n_latent = n_layers, W+);
 *   - StyleGAN2: latent_in = mapping(z) row by row (each row an independent w), n_latent rows;
 *   - single-latent generators (a VAE decoder): n_latent = 1, latent_in = z.
 * The returned image is [N, 3, R, R] with values nominally in [0, 1] (StyleGANs: (x + 1) / 2 of
 * the raw output), NOT clamped: the losses see the unclamped values, as in PULSE; image writers
 * clamp. *latent_in receives the mapped latent [N, n_latent, D'] that GEOCROSS is computed on.
 *
 * Files are recognised by content, not name: a .pt or .safetensors whose tensor names are a
 * StyleGAN2 checkpoint ("[g_ema.]conv1.conv.weight", "[g_ema.]input.input") or PULSE's
 * G_synthesis state_dict ("blocks.4x4.const", "torgb.weight"), or faceup's VAE ("dec.fc.weight",
 * gen/vae.h; read by its own loader). StyleGAN v1 also needs the
 * Gaussian fit: an aux file holding "mean" and "std" [D] (PULSE's gaussian_fit.pt) or the
 * mapping network ("dense0.weight" ...), from which the fit is computed as PULSE does (mean and
 * unbiased std of leaky_relu(mapping(z), 5) over FU_GAUSSFIT_SAMPLES draws; PULSE draws 10^6). */
#ifndef FU_GEN_GENERATOR_H
#define FU_GEN_GENERATOR_H
#include "core/graph.h"
#include "gen/weights.h"

#define FU_GEN_MAX_NOISE 32
#define FU_GAUSSFIT_SAMPLES 100000

typedef struct fu_generator fu_generator;
struct fu_generator {
    const char *kind;            /* "stylegan1", "stylegan2", ... */
    int resolution;              /* output side R */
    int n_latent;                /* latent rows searched; 1 = a single latent */
    int64_t latent_dim;
    int n_noise;                 /* noise maps build() takes (0: none) */
    /* Shape [1,1,r,r] of noise map i; FU_OK or an error. */
    int (*noise_shape)(const fu_generator *gen, int i, int64_t shape[4]);
    /* Image from z [N, n_latent, latent_dim] and noise[0..n_noise-1]; see above. NULL with a
     * message on error. latent_in may be NULL. */
    fu_tensor *(*build)(const fu_generator *gen, fu_graph *g, fu_tensor *z, fu_tensor *const *noise,
                        fu_tensor **latent_in);
    /* Optional (NULL for the StyleGANs): the starting latent for a thumbnail, replacing PULSE's
     * N(0, I) draw. On entry z [1, n_latent, latent_dim] holds the seed's N(0, I) draw, which the
     * generator may use as its noise; thumb is [1,3,h,h] in [0,1]. FU_OK or an error. */
    int (*init_latent)(const fu_generator *gen, const fu_tensor *thumb, fu_tensor *z);
    void (*destroy)(fu_generator *gen);   /* frees impl */
    void *impl;
};

/* Opens a generator file (detected by content; aux_path: StyleGAN v1's Gaussian fit or
 * mapping network, NULL otherwise). FU_OK with *out, or FU_E_INPUT with a message naming the
 * file and what is missing. */
int fu_generator_open(const char *path, const char *aux_path, fu_generator **out);
/* Same from weight tables (aux may be NULL); label names the source in messages. */
int fu_generator_from_weights(const fu_weights *w, const fu_weights *aux, const char *label, fu_generator **out);
void fu_generator_free(fu_generator *gen);   /* NULL-safe */

#endif
