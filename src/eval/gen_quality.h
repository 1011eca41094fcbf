/* Sample quality of any faceup generator (gen/generator.h: the VAE, the sharp "vae+sr"
 * generator, StyleGANs) against real faces at the generator's own resolution R, with issue 19's
 * measures (eval/gen_measures.h) and the face networks as judges. `faceup eval generator`.
 *
 * Images:
 *   samples    sample k from seed + k: z [1, n_latent, D] ~ N(0, t^2 I), then the generator's
 *              noise maps ~ N(0, 1), from one RNG (for the VAE exactly `faceup generate`'s draw),
 *              through build(); clamped to [0, 1].
 *   held-out   the pack's val split (faces no generator or judge trained on), at most n, evenly
 *              spread; train: n faces of the train split, evenly spread. A pack of side P = R 2^j
 *              is brought to R with PULSE's bicubic downscale (fu_bicubic_downsample by 2^j),
 *              clamped to [0, 1]; a smaller pack is an error.
 *   recons     for generators with an encoder (init_latent): each held-out face encoded (its
 *              posterior mean, the eps draw set to 0) and generated again.
 * Measures:
 *   sharpness  mean high-frequency share (fu_highfreq_share, cut-off 0.25 cycles/pixel) of the
 *              samples (and recons) divided by that of the held-out faces.
 *   faceres    human-models' faceres descriptor (1024-d) of the whole image resized to 224, the
 *              crop of eval upscale's race judge; faceres is in no training loss. Frechet
 *              distance and KID (100 random subsets of min(1000, n/2) rows of each set, n the
 *              smaller set, so that subsets differ and their spread means something) samples
 *              vs held-out, k-NN
 *              precision and recall (k = 3) on equal numbers of rows of both sets (the k-NN
 *              radii depend on the density), the larger set's rows evenly spread; the same three for
 *              train vs held-out faces as the floor a perfect generator would reach.
 *   identity   dlib ResNet descriptors (128-d, raw, the fixed FFHQ -> dlib-chip warp of
 *              search/face_guides.h): Frechet distance samples vs held-out (and its train floor);
 *              memorisation = share of samples whose nearest train face (of memo_train evenly
 *              spread train faces; 0: the whole train split) is within dlib's 0.4 distance,
 *              beside the same share for the held-out real faces (UTKFace holds several photos
 *              of some people, so real faces have such neighbours too);
 *              recon identity = mean cosine between each held-out face and its recon.
 *   face rate  blazeface finds a face (score >= 0.7) in the image: samples and held-out faces.
 *   race       faceup's race judge (face/race_judge.h) on the faceres descriptors: shares of
 *              samples and of the train faces per class. */
#ifndef FU_EVAL_GEN_QUALITY_H
#define FU_EVAL_GEN_QUALITY_H
#include <stdint.h>
#include "faceup.h"
#include "face/heads.h"
#include "gen/generator.h"
#include "data/faces.h"

#define FU_GQ_KNN_K 3
#define FU_GQ_KID_SUBSETS 100
#define FU_GQ_KID_SUBSET_SIZE 1000
#define FU_GQ_MEMO_DISTANCE 0.4   /* dlib's "same person" threshold is 0.6; 0.4 is a near copy */

typedef struct fu_gen_quality_config {
    int64_t n;              /* samples, and at most n held-out and n train faces */
    uint64_t seed;
    float temperature;
    const char *heads;      /* heads file (its FFHQ frame places the dlib chip) */
    const char *race_judge; /* race judge file */
    int64_t memo_train;     /* train faces the memorisation search covers (0: all) */
} fu_gen_quality_config;

/* Figures on a held-out set and its pair (FD, KID, precision, recall); KID's subsets hold
 * kid_subset rows of each set. */
typedef struct fu_gq_distances {
    double fd, kid, kid_std, precision, recall;
    int64_t kid_subset;
} fu_gq_distances;

typedef struct fu_gen_quality {
    int resolution, pack_size, has_recon;
    int64_t n_samples, n_heldout, n_train, n_memo_train;
    double hf_samples, hf_heldout, hf_recons;           /* mean high-frequency shares */
    double sharpness_samples, sharpness_recons;         /* ratios to the held-out faces' */
    fu_gq_distances faceres, faceres_floor;             /* samples vs held-out; train vs held-out */
    double fd_identity, fd_identity_floor;
    double memorised, memo_nearest_median;              /* share within 0.4; median nearest distance */
    double memorised_heldout;                           /* the same share for held-out real faces */
    double recon_identity_cosine, recon_psnr_db;
    double face_rate_samples, face_rate_heldout;
    double race_samples[FU_RACE_CLASSES], race_train[FU_RACE_CLASSES];
} fu_gen_quality;


/* Runs every measure above (the face models from the cache, face/models.h). FU_OK or an error
 * with a message. */
int fu_gen_quality_run(const fu_generator *gen, const fu_faces *set, const fu_gen_quality_config *cfg, fu_gen_quality *out,
                       fu_progress_fn progress, void *ctx);

/* Samples first .. first + n - 1 of seed (as above) into out (n * 3 * R * R floats, [0,1]). */
int fu_gen_samples(const fu_generator *gen, uint64_t seed, float temperature, int64_t first, int64_t n, float *out);

#endif
