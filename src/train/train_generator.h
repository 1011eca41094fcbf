/* Training faceup's VAE generator (gen/vae.h) on a packed face set (data/faces.h).
 *
 * Adam on the VAE objective (fu_vae_loss) with beta ramped linearly from 0 over kl_warmup steps
 * (KL annealing: the decoder first learns to reconstruct, then the posterior is pulled towards
 * the prior). Each step takes the next `batch` samples of the loader's deterministic order and
 * draws the reparameterisation noise from the run's RNG.
 *
 * Files, all written atomically, named from the model path OUT (stem = OUT without .safetensors):
 *   OUT                        the model (weights + config), every checkpoint and at the end
 *   STEM.ckpt.safetensors      checkpoint: weights, Adam moments ("adam.state"), loss history
 *                              ("history" [steps,4]: step, loss, L1, KL per step), and in the metadata the
 *                              step, the data position, the RNG state, Adam's step count and the
 *                              run's settings
 *   STEM.samples.png           sample sheet: rows of held-out faces, their reconstructions (mu),
 *                              then random samples z ~ N(0,I) from a fixed seed
 *   STEM.loss.png              loss plot (log y, binned means): total loss (black), L1 (blue),
 *                              KL per image / 1000 (red)
 * Resuming loads the checkpoint and continues exactly: the same steps produce bit-identical
 * weights to an uninterrupted run (same thread count; oneDNN's kernels are deterministic for a
 * fixed thread count). The checkpoint's own settings (model, seed, batch, beta, edge weight,
 * warm-up) win over the caller's on resume; steps, lr and the intervals are the caller's.
 * init starts a new run (fresh Adam, step 0) from an existing model's weights, e.g. to carry a
 * model over to a re-framed face set; its config replaces cfg.model, and its latent prior, if
 * any, is dropped (it describes the old encoder; fit a new one with fu_vae_fit_prior). */
#ifndef FU_TRAIN_GENERATOR_H
#define FU_TRAIN_GENERATOR_H
#include <stdint.h>
#include "gen/vae.h"
#include "data/faces.h"

typedef struct fu_gen_train_config {
    const char *out;           /* model path, see above */
    fu_vae_config model;
    int64_t steps;             /* total steps of the run (a resumed run continues up to this) */
    int batch;
    float lr;
    uint64_t seed;
    float beta, edge_weight;
    int64_t kl_warmup;
    int64_t sample_every, checkpoint_every;   /* 0 = only at the end */
    int resume;
    const char *init;          /* a new run (not resume) starts from this model's weights, or NULL */
} fu_gen_train_config;

typedef struct fu_gen_train_status {
    int64_t step, steps;
    float loss, rec, edge, kl;     /* of the last batch */
} fu_gen_train_status;

fu_gen_train_config fu_gen_train_defaults(void);
/* Trains on the set's train split; progress (may be NULL) is called after every step.
 * FU_OK, or an error code with a message. */
int fu_train_generator(const fu_gen_train_config *cfg, const fu_faces *set,
                       void (*progress)(const fu_gen_train_status *s, void *ctx), void *ctx);

/* Held-out reconstruction quality in eval mode (decode(mu)): PSNR in dB on [0,1] pixels, the
 * mean over images of 10*log10(1/MSE), for the images of `split` (and of `source`, or all
 * sources when source < 0); at most limit images (0 = all). n_out gets the count. */
int fu_vae_recon_psnr(const fu_vae *m, const fu_faces *set, int split, int source, int64_t limit,
                      double *psnr, int64_t *n_out);

/* Fits the model's latent prior (gen/vae.h) to the encoder's aggregate posterior over the
 * images of `split` and their mirror images (training flips them too): with mu_i, var_i the
 * posterior of image i, mean = E[mu], cov = Cov(mu) + diag(E[var]) (the moments of the mixture
 * of the per-image Gaussians). Sets it with fu_vae_set_prior. n_out gets the image count. */
int fu_vae_fit_prior(fu_vae *m, const fu_faces *set, int split, int64_t *n_out);

#endif
