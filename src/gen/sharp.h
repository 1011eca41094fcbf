/* faceup's sharp generator: the VAE decoder (gen/vae.h) followed by the 2x sharpening stage
 * (gen/sr.h), G(z) = SR(Dec(z)), searched through the VAE's latent prior exactly like the VAE
 * alone (one latent row, the encoder's starting point for a thumbnail), at twice its resolution.
 *
 * File: one safetensors file holding the VAE's tensors (with its prior) and the stage's sr.*
 * tensors, metadata "faceup.model": "vae+sr". A training checkpoint (train/train_sharp.h) holds
 * more (the discriminator, optimiser state); the model file holds exactly these. */
#ifndef FU_GEN_SHARP_H
#define FU_GEN_SHARP_H
#include "gen/sr.h"
#include "gen/vae.h"

typedef struct fu_sharp {
    fu_vae *vae;
    fu_sr *sr;
} fu_sharp;

/* Loads a sharp generator file. allow_extra accepts other tensors (a checkpoint); otherwise the
 * file must hold exactly the VAE's and the stage's. FU_E_INPUT with a message naming the file
 * and the problem (a VAE without a stage, a stage without a VAE, a non-finite weight, ...). */
struct fu_safetensors;
int fu_sharp_from_safetensors(const struct fu_safetensors *st, int allow_extra, fu_sharp *out);
int fu_sharp_load(const char *path, fu_sharp *out);
/* Saves vae + sr atomically (weights float32). */
int fu_sharp_save(const fu_vae *vae, const fu_sr *sr, const char *path);
void fu_sharp_release(fu_sharp *m);   /* frees both parts; NULL-safe */

/* z [N,D] (the VAE's own latent) -> image [N,3,2S,2S] in about [-1,1]. */
fu_tensor *fu_sharp_decode(fu_graph *g, const fu_sharp *m, fu_tensor *z);

#endif
