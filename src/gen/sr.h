/* faceup's sharpening stage: a 2x face super-resolution network that turns the VAE decoder's
 * blurry S x S faces (gen/vae.h) into sharp 2S x 2S ones. The sharp generator the search uses is
 * SR(Dec(z)) with the VAE's latent and prior (gen/sharp.h).
 *
 * Why this shape (bench/RESULTS.md "A sharp generator"): a GAN trained from scratch needs far
 * more than the 10-40 CPU-hours here; a conditional stage on top of the existing decoder learns
 * from pairs (VAE reconstruction of a face, the face itself) and converges in hours, and the
 * search keeps the VAE's smooth latent, its prior and its encoder's starting point.
 *
 * Architecture (C channels at S x S, K residual blocks, U = C/2 channels at 2S x 2S):
 *   x [N,3,S,S] in [-1,1] -> conv3x3 3->C + lrelu 0.2
 *     -> K x (h + conv3x3 C->C (conv3x3 C->C + lrelu h))          residual blocks at S x S
 *     -> nearest 2x -> conv3x3 C->U + lrelu -> conv3x3 U->U + lrelu -> conv3x3 U->3 = r
 *   out = bicubic_resize(x, 2S) + r                                 [N,3,2S,2S], not clamped
 * The global residual means the network only adds the detail the upsampled face lacks; at
 * initialisation (last convs of each block and the RGB conv drawn small) it is the bicubic
 * upscale. No normalisation: a plain function of its input, so the search's gradients are exact.
 *
 * Tensor names: sr.head.weight/bias, sr.block{i}.conv{0,1}.weight/bias, sr.up{0,1}.weight/bias,
 * sr.rgb.weight/bias (PyTorch layouts). The config is read back from the shapes. */
#ifndef FU_GEN_SR_H
#define FU_GEN_SR_H
#include <stdint.h>
#include "core/graph.h"

#define FU_SR_MAX_BLOCKS 16
#define FU_SR_MAX_PARAMS (2 * (2 * FU_SR_MAX_BLOCKS + 4))

typedef struct fu_sr_config {
    int channels;   /* C, 4..256 (even) */
    int blocks;     /* K, 0..FU_SR_MAX_BLOCKS */
} fu_sr_config;

typedef struct fu_sr {
    fu_sr_config cfg;
    int n_params;
    fu_tensor *params[FU_SR_MAX_PARAMS];   /* owned leaves, named; the save/optimiser order */
    fu_tensor *head_w, *head_b;
    fu_tensor *block_w[FU_SR_MAX_BLOCKS][2], *block_b[FU_SR_MAX_BLOCKS][2];
    fu_tensor *up_w[2], *up_b[2], *rgb_w, *rgb_b;
} fu_sr;

/* The shipped configuration. */
fu_sr_config fu_sr_default_config(void);
/* Random weights from seed (He init; block outputs and RGB small). NULL with a message on a bad
 * config. */
fu_sr *fu_sr_new(const fu_sr_config *cfg, uint64_t seed);
void fu_sr_free(fu_sr *m);   /* NULL-safe */
int64_t fu_sr_param_count(const fu_sr *m);
int fu_sr_requires_grad(fu_sr *m, int on);
/* A deep copy (the EMA of a training run). NULL with a message. */
fu_sr *fu_sr_clone(const fu_sr *m);

/* Reads the sr.* tensors of st (other tensors are left to their own readers); FU_E_INPUT with a
 * message naming the file and the tensor when one is missing, misshapen or not finite. */
struct fu_safetensors;
int fu_sr_from_safetensors(const struct fu_safetensors *st, fu_sr **out);
/* True when st holds an SR stage (sr.head.weight). */
int fu_sr_present(const struct fu_safetensors *st);

/* x [N,3,S,S] -> [N,3,2S,2S], see above. */
fu_tensor *fu_sr_forward(fu_graph *g, const fu_sr *m, fu_tensor *x);

#endif
