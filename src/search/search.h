/* The PULSE-style latent search ("Identity and Attribute Preserving Thumbnail Upscaling",
 * Gat, Benaim, Wolf, ICIP 2021; PULSE, Menon et al., CVPR 2020). search.c holds the whole
 * algorithm; per seed:
 *
 *   z ~ N(0, I) [1, n_latent, D], kept on its sphere (every row at its initial radius, about
 *   sqrt(D)); noise maps per --noise (zero | fixed N(0,1) | trainable: the first
 *   trainable_noise_layers maps are optimised, also on their spheres); the last noise map is
 *   always zero (PULSE's bad_noise_layers default, layer 17 = the last of the 1024 network).
 *   for step = 0 .. steps-1:
 *       image = G(z, noise)                              [1,3,R,R], nominally [0,1]
 *       loss  = sum_k w_k term_k(image, bicubic_down(image), thumbnail, latent_in)
 *       keep the state with the lowest loss (and, separately, the lowest among states whose
 *       downscale L2 <= eps)
 *       Adam step (lr * schedule(step)), spherical projection
 *   accepted when some state had L2 <= eps (and every RACE_IS_k / ATTR_k_IS_v term within
 *   face_tolerance); the returned image is the lowest-loss accepted
 *   state, or the lowest-loss state overall when none was accepted (status NO_SOLUTION).
 * A second wave (loss2) starts from an accepted first-wave state and runs the same loop with
 * the second loss string against the same thumbnail.
 *
 * Differences from PULSE, on purpose: PULSE returns the image of its *last* step when
 * min L2 <= eps; here the returned image is the best accepted state. PULSE's second wave
 * ("Reversing") uses the first wave's high-resolution result as its reference; here the
 * reference stays the thumbnail, so both waves answer the same question.
 *
 * Single-latent generators (n_latent = 1): GEOCROSS has no pairs of layers. PULSE's own
 * definition returns 0 for one latent row, and so does this search: the prior is carried by
 * the spherical constraint alone (N(0, I) in D dimensions concentrates on the shell
 * |z| = sqrt(D); on that shell the Gaussian log-prior -|z|^2/2 is constant, so any shell or
 * log-prior penalty would be a constant too).
 *
 * Face-network terms (IDENTITY_SCORE, L2_IDENTITY, RACE_IS_k, ATTR_k_IS_v) go through guides:
 * a guide adds its loss for the generated image to the graph. A term whose guide is absent is
 * an error before any work ("IDENTITY_SCORE needs the identity network: no guide for it was given"). */
#ifndef FU_SEARCH_SEARCH_H
#define FU_SEARCH_SEARCH_H
#include <stdint.h>
#include "core/graph.h"
#include "core/optim.h"
#include "gen/generator.h"
#include "search/loss_string.h"

typedef enum { FU_NOISE_ZERO, FU_NOISE_FIXED, FU_NOISE_TRAINABLE } fu_noise_mode;
/* "zero", "fixed", "trainable"; FU_E_INPUT on anything else. */
int fu_noise_mode_parse(const char *name, fu_noise_mode *out);

/* A face-network loss. loss() adds to g the term's value for image [N,3,R,R] (values in [0,1],
 * as the generator returns them) and returns a [1] tensor summed over the batch, or NULL with a
 * message. The guide keeps its own targets (reference embedding, ...) in ctx. */
typedef struct fu_search_guide {
    fu_tensor *(*loss)(void *ctx, fu_graph *g, fu_tensor *image, const fu_loss_term *term);
    void *ctx;
} fu_search_guide;

typedef struct fu_search_guides {
    fu_search_guide identity;    /* IDENTITY_SCORE, L2_IDENTITY */
    fu_search_guide race;        /* RACE_IS_k */
    fu_search_guide attr;        /* ATTR_k_IS_v */
} fu_search_guides;

/* Reported to on_step after every evaluated step. */
typedef struct fu_search_step {
    int seed_index, wave, step, steps;
    float loss, l2;
    const fu_tensor *best_image; /* lowest-loss image so far in this wave, [1,3,R,R] */
} fu_search_step;

typedef struct fu_search_config {
    fu_loss_spec loss, loss2;
    int has_loss2;
    int n_seeds;
    uint64_t first_seed;         /* seeds first_seed .. first_seed + n_seeds - 1 */
    int steps;
    float lr, eps;
    float face_tolerance;        /* a state is accepted only when every RACE_IS_k and ATTR_k_IS_v
                                  * term (unweighted) is <= this too (PULSE's rule for attribute
                                  * terms; default 0.1: class probability >= 0.905) */
    fu_lr_schedule schedule;
    fu_noise_mode noise;
    int trainable_noise_layers;
    int random_init;             /* 1: PULSE's N(0, I) start even when the generator offers its own
                                  * (gen->init_latent: faceup's VAE encodes the thumbnail) */
    const fu_search_guides *guides;   /* may be NULL: no face-network terms possible */
    void (*on_step)(void *ctx, const fu_search_step *s);  /* may be NULL */
    void *ctx;
} fu_search_config;

/* PULSE's defaults: loss 100*L2+0.05*GEOCROSS, 1 seed (seed 0), 100 steps, Adam lr 0.4,
 * linear1cycledrop, eps 2e-3, face_tolerance 0.1, trainable noise with 5 trainable layers. */
fu_search_config fu_search_defaults(void);

typedef struct fu_search_wave {
    int ran;
    int status;                  /* FU_OK: met eps; FU_E_NO_SOLUTION */
    float loss, l2;              /* of the returned state; l2 is the unclamped downscale MSE */
    float terms[FU_LOSS_MAX_TERMS];  /* unweighted term values of that state, in spec order */
    int best_step, steps;
    double seconds;
} fu_search_wave;

typedef struct fu_search_result {
    uint64_t seed;
    int status;                  /* FU_OK or FU_E_NO_SOLUTION (of the last wave that ran) */
    fu_search_wave wave[2];
    fu_tensor *image;            /* [1,3,R,R], unclamped */
    fu_tensor *latent;           /* [1,n_latent,D]: the z of image */
} fu_search_result;

/* Checks that thumb [1,3,h,h] downsizes the generator's output by a power of two in 2..64
 * that the bicubic downsampler supports; sets *factor. FU_E_INPUT with a message listing the
 * sizes that would work. label names the thumbnail. */
int fu_search_check_thumbnail(const fu_generator *gen, const fu_tensor *thumb, const char *label, int *factor);
/* Refuses a thumbnail [1,3,h,w] that cannot be a face photo: flat (pixel standard deviation
 * under FU_THUMB_MIN_STD) or noise (roughness, the mean squared difference of neighbouring
 * pixels over twice the pixel variance, above FU_THUMB_MAX_ROUGHNESS: random pixels give about
 * 1, held-out face thumbnails at most 0.38 at 16x16 and 0.60 at 8x8, bench/RESULTS.md). Smooth
 * images that are not faces pass: at 16x16 no detector here tells them apart (blazeface scores
 * faces 0.07-0.89 and flat or striped images up to 0.2). FU_E_INPUT naming label. */
#define FU_THUMB_MIN_STD (2.0f / 255.0f)
#define FU_THUMB_MAX_ROUGHNESS 0.75f
float fu_thumbnail_roughness(const fu_tensor *thumb);
int fu_search_check_content(const fu_tensor *thumb, const char *label);
/* FU_OK when every face term of spec has its guide; otherwise FU_E_INPUT naming the term and
 * the network it needs. */
int fu_search_check_guides(const fu_loss_spec *spec, const fu_search_guides *guides);

/* Runs cfg->n_seeds searches for thumb; fills results[0 .. n_seeds-1] (free with
 * fu_search_results_free). Returns FU_OK when every seed ran (whatever its status), or an error
 * code with a message (bad sizes, missing guide, out of memory). */
int fu_search_run(const fu_generator *gen, const fu_tensor *thumb, const fu_search_config *cfg, fu_search_result *results);
void fu_search_results_free(fu_search_result *results, int n);

#endif
