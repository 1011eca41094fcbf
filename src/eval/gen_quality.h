/* Sample quality of faceup's VAE generator (issue: "faceup eval generator"), with the face
 * networks as judges:
 *
 *   identity FD   Frechet distance between dlib-ResNet descriptors (128-d, raw, from the fixed
 *                 FFHQ -> dlib-chip warp of search/face_guides.h) of N generated samples and of
 *                 N held-out real faces (the pack's val and test splits: faces neither the
 *                 generator nor the heads trained on), each set modelled as a Gaussian:
 *                   FD = |m_s - m_r|^2 + tr(C_s) + tr(C_r) - 2 tr((C_s^1/2 C_r C_s^1/2)^1/2)
 *                 (core/linalg.h; C = covariance with denominator N - 1). Its floor for a
 *                 perfect generator is the FD between N train faces and the same held-out
 *                 faces, reported beside it (finite N and the split's own differences).
 *   recon identity  mean cosine similarity between the descriptors of each held-out face and of
 *                 its reconstruction decode(mu(face)) (the identity the generator keeps).
 *   face rate     share of images in which blazeface finds a face with score >= 0.7, for the
 *                 samples and, as the anchor, for the held-out real faces (64x64 FFHQ crops).
 *   race shares   gear's race class (argmax of its 5 race outputs) on the whole image resized
 *                 to gear's 198x198 input, as shares of the samples and of N train faces: a
 *                 generator that collapses towards White faces shows it here.
 * Samples: w ~ N(0, t^2 I) from seed + k for sample k (as `faceup generate`), through the model's
 * prior (gen/vae.h). Real faces are spread evenly over their split. */
#ifndef FU_EVAL_GEN_QUALITY_H
#define FU_EVAL_GEN_QUALITY_H
#include <stdint.h>
#include "faceup.h"
#include "face/heads.h"
#include "gen/vae.h"
#include "data/faces.h"

typedef struct fu_gen_quality_config {
    int64_t n;              /* samples, and real faces per set */
    uint64_t seed;
    float temperature;
    const char *heads;      /* heads file (its FFHQ frame places the dlib chip) */
} fu_gen_quality_config;

typedef struct fu_gen_quality {
    int64_t n_samples, n_heldout, n_train;
    double fd_identity, fd_train_vs_heldout;
    double recon_identity_cosine;
    double face_rate_samples, face_rate_heldout;
    double race_samples[FU_RACE_CLASSES], race_train[FU_RACE_CLASSES];
} fu_gen_quality;

/* Runs every measure above (the face models from the cache, face/models.h). FU_OK or an error
 * with a message. */
int fu_gen_quality_run(const fu_vae *m, const fu_faces *set, const fu_gen_quality_config *cfg, fu_gen_quality *out,
                       fu_progress_fn progress, void *ctx);

/* Decodes samples seed .. seed + n - 1 into out (n * 3 * S * S floats, [0,1]). */
int fu_vae_samples(const fu_vae *m, uint64_t seed, float temperature, int64_t n, float *out);

#endif
