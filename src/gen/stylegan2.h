/* StyleGAN2 generator as in rosinality/stylegan2-pytorch (Generator), on the engine: mapping
 * network z -> w, and synthesis from per-layer latents [N, n_latent, D] (W+) and noise maps,
 * differentiable with respect to z, the latents and the noise.
 *
 * Weights: the checkpoint's state_dict names, with or without the "g_ema." prefix of a
 * rosinality checkpoint ("g_ema.convs.3.conv.weight" or "convs.3.conv.weight"). Size, style
 * dimension, channels, n_mlp are read from shapes; lr_mlp is rosinality's default 0.01 (it is
 * not stored in checkpoints).
 *
 * Equalised learning rate: every multiplier is applied once at load (conv 1/sqrt(Cin*k*k),
 * modulation 1/sqrt(D), mapping 0.01/sqrt(D) and bias 0.01), so the model holds effective,
 * frozen weights.
 *
 * Modulated convolution is computed in its input-modulation form (StyleGAN2's
 * fused_modconv=False): conv(x * s[cin], W) * d[cout] with d = rsqrt(sum_cin s^2 * sum_k W^2
 * + 1e-8), which equals rosinality's conv(x, W * s * d) up to float rounding but keeps the
 * weights constant (no per-sample weight tensors, no grouped convs) for any batch size.
 *
 * Latents and noise: conv1 <- latent 0, noise 0; to_rgb1 <- latent 1; block b (resolution
 * 2^(b+3)): convs[2b] (upsampling) <- latent 2b+1, noise 2b+1; convs[2b+1] <- latent 2b+2,
 * noise 2b+2; to_rgbs[b] <- latent 2b+3. n_latent = 2*log2(size) - 2, n_noise = n_latent - 1;
 * noise i is [N or 1, 1, r, r] with r = 2^((i+5)/2). */
#ifndef FU_GEN_STYLEGAN2_H
#define FU_GEN_STYLEGAN2_H
#include "core/graph.h"
#include "gen/weights.h"

#define FU_SG2_MAX_LOG_SIZE 11       /* up to 2048x2048 */
#define FU_SG2_MAX_CONVS (2 * (FU_SG2_MAX_LOG_SIZE - 2))
#define FU_SG2_MAX_MLP 16
#define FU_SG2_MAX_KERNEL 8          /* FIR kernel side */

typedef struct fu_sg2_conv {         /* a StyledConv or a ToRGB */
    int64_t in_ch, out_ch;
    int k, upsample, demodulate;
    fu_tensor *mod_w, *mod_b;        /* style -> per-input-channel scale: [Cin,D], [Cin] */
    fu_tensor *w;                    /* [Cout,Cin,k,k]; [Cin,Cout,k,k] when upsampling */
    fu_tensor *wsq;                  /* [Cout,Cin] = sum over (ky,kx) of w^2, for demodulation */
    fu_tensor *noise_weight;         /* [1] (StyledConv only) */
    fu_tensor *bias;                 /* [1,Cout,1,1] */
} fu_sg2_conv;

typedef struct fu_stylegan2 {
    int size, log_size, n_latent, n_noise, n_convs, n_mlp;
    int64_t style_dim;
    fu_tensor *input;                /* [1,C,4,4] */
    fu_sg2_conv conv1, to_rgb1;
    fu_sg2_conv convs[FU_SG2_MAX_CONVS], to_rgbs[FU_SG2_MAX_CONVS / 2];
    fu_tensor *map_w[FU_SG2_MAX_MLP], *map_b[FU_SG2_MAX_MLP];  /* [D,D], [D] */
    fu_tensor *noise[FU_SG2_MAX_CONVS + 1];  /* the stored noises.noise_i buffers, or NULL */
    int fir_k;                       /* side of the FIR kernels below */
    float blur[FU_SG2_MAX_KERNEL * FU_SG2_MAX_KERNEL];  /* after the upsampling conv (x4) */
    float up[FU_SG2_MAX_KERNEL * FU_SG2_MAX_KERNEL];    /* ToRGB skip upsampling (x4) */
} fu_stylegan2;

int fu_sg2_load(const fu_weights *w, fu_stylegan2 **out);
void fu_sg2_free(fu_stylegan2 *m);   /* NULL-safe */
/* Shape [1,1,r,r] of noise map i; -1 with a message when out of range. */
int fu_sg2_noise_shape(const fu_stylegan2 *m, int i, int64_t shape[4]);

/* Mapping network: z [N,D] -> w [N,D] (pixel norm, n_mlp x leaky_relu(linear, 0.2)*sqrt(2)). */
fu_tensor *fu_sg2_mapping(fu_graph *g, const fu_stylegan2 *m, fu_tensor *z);
/* w [N,D] -> [N,n_latent,D], every row w (differentiable: gradients of all rows sum). */
fu_tensor *fu_sg2_repeat_latent(fu_graph *g, const fu_stylegan2 *m, fu_tensor *w);
/* Truncation trick: mean + psi * (w - mean), mean [D] broadcast over w [..., D]. */
fu_tensor *fu_sg2_truncate(fu_graph *g, fu_tensor *w, fu_tensor *mean, float psi);
/* Mean of the mapping output over n z ~ N(0,1) drawn from seed (rosinality's mean_latent),
 * written into mean [D]. FU_OK or an error. */
int fu_sg2_mean_latent(const fu_stylegan2 *m, int n, uint64_t seed, fu_tensor *mean);

/* Image [N,3,size,size] from latent [N,n_latent,D] and noise[0..n_noise-1]. Intermediates go
 * to taps (may be NULL): "conv1", "convs_<i>" (each StyledConv's output) and "to_rgb1",
 * "to_rgbs_<b>" (the running RGB skip). NULL with a message on bad inputs. */
fu_tensor *fu_sg2_forward(fu_graph *g, const fu_stylegan2 *m, fu_tensor *latent,
                          fu_tensor *const *noise, const fu_tensor_sink *taps);

/* ---- random-weight networks (timing, tests) ---- */
typedef struct fu_sg2_config {
    int size;                        /* power of two >= 8 */
    int style_dim, n_mlp;
    int channel_multiplier;          /* 2 for config-f */
    int narrow;                      /* divide every channel count by this (>= 1; 1 = standard) */
} fu_sg2_config;
/* Config-f FFHQ 1024: style 512, 8 mapping layers, channels 512 up to 32x32 then 512, 256, 128, 64, 32. */
fu_sg2_config fu_sg2_config_ffhq(void);
/* A state_dict-compatible table with rosinality's layout ("g_ema." prefix, kernels and noise
 * buffers included), weights N(0,1), biases and noise strengths perturbed from their
 * constructed values. NULL with a message on a bad config. */
fu_weights *fu_sg2_random_weights(const fu_sg2_config *cfg, uint64_t seed);

#endif
