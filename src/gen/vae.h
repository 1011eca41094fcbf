/* faceup's own face generator: a small convolutional VAE (variational auto-encoder) on S x S RGB
 * faces (S = 64 for the shipped model), trained by `faceup train generator` on the packed face
 * set (data/faces.h).
 *
 * Why a VAE: the upscaler searches a generator's latent space for a face whose downscale matches
 * a thumbnail (PULSE). No pretrained StyleGAN can be had here, and a GAN is hard to train on two
 * CPU cores; a VAE trains stably with a plain reconstruction loss, and its encoder gives the
 * search a good starting latent straight from the (upsampled) thumbnail.
 *
 * Architecture (n = log2(S/4) stages, c = channels, D = latent):
 *   encoder: x [N,3,S,S] -> n x (conv 4x4 stride 2 pad 1 + leaky relu 0.2), channels
 *            c, 2c, 4c, ... (c*2^(n-1) at 4x4) -> flatten -> two linears: mu [N,D], logvar [N,D]
 *   decoder: z [N,D] -> linear -> [N, c*2^(n-1), 4, 4] + leaky relu -> n x (nearest upsample 2x
 *            + conv 3x3 pad 1 + leaky relu 0.2), channels halving each stage down to c/2 (min 1)
 *            -> conv 3x3 to RGB -> tanh.
 * No normalisation layers: the decoder is a plain function of z (no batch statistics), so the
 * search's gradients to z are exact and independent of the batch. Nearest upsampling + conv
 * (instead of transposed convs) avoids checkerboard artefacts.
 * At S = 64, c = 32, D = 256: 4,232,835 parameters (16.9 MB float32); one training step of a
 * batch of 32 took 0.65 s on one Zen4 core (measured with other jobs running), so an epoch of the
 * 17,720 training faces is about 6 minutes per core.
 *
 * Images are in [-1, 1] (pixel/127.5 - 1) in and out; the decoder's tanh keeps them there.
 *
 * Files: safetensors with the tensors below; the config is read back from the shapes (D from
 * dec.fc.weight, c from enc.conv0.weight, n from the number of enc.conv* tensors), and the
 * metadata records it too ("faceup.model": "vae", "faceup.vae.size" ...) for humans.
 * Tensor names: enc.conv{i}.weight/bias, enc.mu.weight/bias, enc.logvar.weight/bias,
 * dec.fc.weight/bias, dec.conv{i}.weight/bias, dec.rgb.weight/bias (PyTorch layouts), and
 * optionally prior.mean, prior.scale_tril (see fu_vae below). */
#ifndef FU_GEN_VAE_H
#define FU_GEN_VAE_H
#include <stdint.h>
#include "core/graph.h"

#define FU_VAE_MAX_STAGES 6
/* 2 stages x (conv) for encoder and decoder, plus mu, logvar, fc, rgb; weight + bias each. */
#define FU_VAE_MAX_PARAMS (2 * (2 * FU_VAE_MAX_STAGES + 4))

typedef struct fu_vae_config {
    int size;      /* image side: 4 * 2^stages, 8..256 */
    int channels;  /* c: encoder's first conv width */
    int latent;    /* D */
} fu_vae_config;

typedef struct fu_vae {
    fu_vae_config cfg;
    int n_stages;
    int n_params;
    fu_tensor *params[FU_VAE_MAX_PARAMS];   /* owned leaves, named (fu_tensor.name) */
    /* Views into params by role. */
    fu_tensor *enc_w[FU_VAE_MAX_STAGES], *enc_b[FU_VAE_MAX_STAGES];
    fu_tensor *mu_w, *mu_b, *logvar_w, *logvar_b, *fc_w, *fc_b;
    fu_tensor *dec_w[FU_VAE_MAX_STAGES], *dec_b[FU_VAE_MAX_STAGES];
    fu_tensor *rgb_w, *rgb_b;
    /* Optional latent prior (NULL: z ~ N(0, I)), "prior.mean" [D] and "prior.scale_tril" [D,D]
     * in the file: a Gaussian N(mean, L L^T) fitted to the encoder's aggregate posterior over
     * the training faces ("ex-post density estimation", Ghosh et al. 2020). A VAE whose KL term
     * is weak leaves the posteriors far from N(0, I), so decoding N(0, I) draws gives no faces;
     * decoding draws of the fitted Gaussian does. Samplers and the search use the whitened
     * latent w ~ N(0, I) and z = mean + L w (fu_vae_prior_latent), as PULSE searches StyleGAN v1
     * through its Gaussian fit of the mapping network. Not trained: not in params. */
    fu_tensor *prior_mean, *prior_tril;
} fu_vae;

/* The shipped configuration: 64, 32, 256. */
fu_vae_config fu_vae_default_config(void);
/* New model with random weights (He-style init from seed). NULL with a message on a bad config. */
fu_vae *fu_vae_new(const fu_vae_config *cfg, uint64_t seed);
void fu_vae_free(fu_vae *m);   /* NULL-safe */
int64_t fu_vae_param_count(const fu_vae *m);
/* Marks every parameter trainable (gradient buffers), or not. */
int fu_vae_requires_grad(fu_vae *m, int on);

/* Loads from a safetensors file; FU_E_INPUT with a message naming the file and the problem. */
int fu_vae_load(const char *path, fu_vae **out);
/* Same from an open file; allow_extra accepts other tensors beside the VAE's (a training
 * checkpoint holds optimiser state too). */
struct fu_safetensors;
int fu_vae_from_safetensors(const struct fu_safetensors *st, int allow_extra, fu_vae **out);
/* Saves weights (float32) and config metadata atomically. */
int fu_vae_save(const fu_vae *m, const char *path);

/* Sets the prior from a mean [D] and a covariance [D,D] (row-major, symmetric PSD); a tiny
 * ridge (1e-6 of the mean variance) is added when the covariance is singular. FU_OK or an error. */
int fu_vae_set_prior(fu_vae *m, const double *mean, const double *cov);
/* Removes the prior (training changes the encoder, so a fitted prior goes stale). */
void fu_vae_clear_prior(fu_vae *m);
/* Graph op: w [N,D] (whitened) -> z = mean + L w [N,D]; w itself when the model has no prior. */
fu_tensor *fu_vae_prior_latent(fu_graph *g, const fu_vae *m, fu_tensor *w);
/* The inverse for one latent: w = L^-1 (z - mean) (a copy when there is no prior). */
void fu_vae_prior_whiten(const fu_vae *m, const float *z, float *w);

/* Encoder: x [N,3,S,S] in [-1,1] -> mu [N,D]; *logvar (if not NULL) gets logvar [N,D]. */
fu_tensor *fu_vae_encode(fu_graph *g, const fu_vae *m, fu_tensor *x, fu_tensor **logvar);
/* Decoder, the generator: z [N,D] -> image [N,3,S,S] in [-1,1]. Differentiable to z and to the
 * weights; the prior is z ~ N(0, I). */
fu_tensor *fu_vae_decode(fu_graph *g, const fu_vae *m, fu_tensor *z);
/* Reconstructions decode(mu(x)) of n images x [n,3,S,S] in [-1,1] into out (may be x itself),
 * in batches, without keeping gradients: the evaluations' PSNR and identity measures. */
int fu_vae_reconstruct(const fu_vae *m, const float *x, int64_t n, float *out);

/* One training objective (Laplace reconstruction + beta * KL), per image and pixel:
 *   loss = L1(x', x) + edge_w * L1(grad x', grad x) + beta * KL(q(z|x) || N(0,I)) / (3*S*S)
 * with x' = decode(mu + exp(logvar/2) * eps), grad = horizontal and vertical pixel differences
 * (the edge term pushes against the blur an L1 VAE settles into). eps [N,D] is the caller's
 * noise (so a training step is reproducible from its RNG). parts (may be NULL) gets the three
 * terms unweighted ({L1, edge L1, KL per image}, [1] each) and the reconstruction x' [N,3,S,S].
 * Returns the [1] loss. */
typedef struct fu_vae_loss_parts { fu_tensor *rec, *edge, *kl, *recon; } fu_vae_loss_parts;
fu_tensor *fu_vae_loss(fu_graph *g, const fu_vae *m, fu_tensor *x, fu_tensor *eps, float beta,
                       float edge_w, fu_vae_loss_parts *parts);

#endif
