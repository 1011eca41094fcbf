/* Training faceup's sharpening stage (gen/sr.h) on top of a trained VAE (gen/vae.h), the sharp
 * generator SR(Dec(z)) of gen/sharp.h, on a packed face set of twice the VAE's size
 * (data/faces.h; UTKFace only at 128, where every face is natively larger than the output).
 *
 * One step (VAE frozen, its encoder and prior included):
 *   x   = `batch` real faces [B,3,2S,2S] (class-balanced by race unless told otherwise, mirrored
 *         at random);
 *   in  = Dec(mu + sigma * eps) of x's downscale (PULSE's bicubic), eps = 0 for every other face
 *         (the search starts at such posterior points), plus Dec(prior sample) for B/2 more: the
 *         decoder's blurry faces the stage must sharpen, including the prior's, which the search
 *         explores and which have no sharp original;
 *   y   = SR(in);
 *   G loss = L1(y_rec, x) + edge_weight * L1 of neighbour differences (y_rec, x)
 *            + prior_weight * L1 at S/2 between y_prior and its input (the stage may add detail,
 *              not move the face)
 *            + adv_weight * ramp * -mean D(aug(y))     (hinge GAN, from step adv_start on,
 *              ramped in linearly over adv_ramp steps);
 *   D loss = mean relu(1 - D(aug(x))) + mean relu(1 + D(aug(y)));  D a PatchGAN (4x4 stride-2
 *            convs, 16x16 logits at 128) on six channels: the image and its amplified high
 *            frequencies (see disc_input in the .c). aug is DiffAugment's colour (brightness,
 *            saturation, contrast) before the high-pass, and translation (1/8) and cutout (1/2)
 *            after it, drawn independently per image, since the real faces are few
 *            (data-efficient GAN training, Zhao et al. 2020).
 * Adam (0.5, 0.99) for both; the model file holds an exponential moving average of the stage's
 * weights (decay `ema`, ramped as min(ema, (1+t)/(10+t))), which is what the search uses.
 * No R1 penalty: it needs a gradient of a gradient, which the engine does not compute; the
 * reconstruction loss anchors the generator, and DiffAugment regularises the discriminator.
 *
 * Files, written atomically, named from OUT (stem = OUT without .safetensors):
 *   OUT                     the sharp generator (VAE + EMA stage), every checkpoint and at the end
 *   STEM.ckpt.safetensors   everything to resume exactly: VAE, stage, EMA, discriminator, both
 *                           Adam states, loss history, RNG, counters, CPU seconds, settings
 *   STEM.samples.png        rows: held-out faces | the VAE's reconstruction (bicubic to 2S) |
 *                           the stage's | VAE prior samples (bicubic) | the stage's
 *   STEM.loss.png           log plot of L1 (blue), edge (green), prior consistency (orange),
 *                           D loss (black)
 *   STEM.runlog.jsonl       one line per checkpoint: step, CPU hours so far, losses
 * Resume continues bit-exactly (same thread count). The checkpoint's settings win on resume;
 * steps, learning rates and intervals are the caller's. */
#ifndef FU_TRAIN_SHARP_H
#define FU_TRAIN_SHARP_H
#include <stdint.h>
#include "gen/sr.h"
#include "data/faces.h"

typedef struct fu_sharp_train_config {
    const char *out;
    const char *vae;            /* the VAE to sharpen (a new run): a VAE file or a sharp generator's */
    const char *init;           /* a new run starts from this sharp generator's stage, or NULL */
    fu_sr_config model;
    int disc_channels;
    int64_t steps;
    int batch;
    float lr_g, lr_d;
    uint64_t seed;
    float edge_weight, prior_weight, adv_weight;
    int64_t adv_start, adv_ramp;
    float ema;
    int balanced;
    int64_t sample_every, checkpoint_every;
    int resume;
} fu_sharp_train_config;

typedef struct fu_sharp_train_status {
    int64_t step, steps;
    float l1, edge, prior, adv, d_loss;
    double cpu_hours;
} fu_sharp_train_status;

fu_sharp_train_config fu_sharp_train_defaults(void);
/* Trains on the set's train split; progress (may be NULL) after every step. FU_OK or an error. */
int fu_train_sharp(const fu_sharp_train_config *cfg, const fu_faces *set,
                   void (*progress)(const fu_sharp_train_status *s, void *ctx), void *ctx);

#endif
