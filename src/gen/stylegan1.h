/* StyleGAN v1 as PULSE runs it: the synthesis network G_synthesis (from per-layer latents W+
 * and noise maps to an image) and the optional mapping network G_mapping, on the engine, so
 * an image is differentiable with respect to its latents and noise maps.
 *
 * Weights are PULSE's state_dict names ("blocks.8x8.conv0_up.weight", "torgb.bias", ...);
 * resolution, channel counts and the latent size are read from the tensors' shapes, so one
 * loader serves the 1024x1024 FFHQ network and reduced test networks alike.
 *
 * Equalised learning rate: StyleGAN stores weights divided by their He constant and multiplies
 * at run time. The loader applies every multiplier once (conv sqrt(2)/sqrt(Cin*k*k), style
 * linear 1/sqrt(D), torgb 1/sqrt(Cin), mapping sqrt(2)/sqrt(D)*0.01 and bias 0.01) and folds
 * other constants: const + bias, the "+1" of the style scale. The model's tensors are thus the
 * effective weights, frozen leaves (no gradients).
 *
 * Layer i (0 <= i < n_layers = 2*n_blocks) lives in block i/2 at resolution r = 2^(i/2+2),
 * reads dlatents[:, i] and noise i of shape [N or 1, 1, r, r]. See ../shared/golden/README.md
 * for the exact computation; forward() follows it step by step. */
#ifndef FU_GEN_STYLEGAN1_H
#define FU_GEN_STYLEGAN1_H
#include "core/graph.h"
#include "gen/weights.h"

#define FU_SG1_MAX_BLOCKS 10   /* 4x4 .. 2048x2048 */

typedef struct fu_sg1_layer {       /* one layer epilogue: noise, lrelu, instance norm, style */
    int64_t channels;
    fu_tensor *noise_weight;         /* [1,C,1,1] */
    fu_tensor *scale_w, *scale_b;    /* style scale: [C,D], [C] (the +1 folded into the bias) */
    fu_tensor *shift_w, *shift_b;    /* style shift: [C,D], [C] */
} fu_sg1_layer;

typedef struct fu_sg1_block {
    int res;                         /* output resolution */
    int fused;                       /* upscale as one transposed conv (res >= 128) */
    int64_t in_ch, out_ch;
    fu_tensor *conv0_w;              /* [Cout,Cin,3,3], or fused [Cin,Cout,4,4]; NULL in 4x4 */
    fu_tensor *conv0_b;              /* [1,Cout,1,1], added after the blur */
    fu_tensor *conv1_w, *conv1_b;    /* [Cout,Cout,3,3], [Cout] (the 4x4 block's "conv") */
} fu_sg1_block;

typedef struct fu_stylegan1 {
    int resolution, n_blocks, n_layers;
    int64_t dlatent_size;
    fu_tensor *input;                /* const + bias, [1,C,4,4] */
    fu_sg1_block blocks[FU_SG1_MAX_BLOCKS];
    fu_sg1_layer layers[2 * FU_SG1_MAX_BLOCKS];
    fu_tensor *torgb_w, *torgb_b;    /* [3,C,1,1], [3] */
} fu_stylegan1;

/* Builds the synthesis network from PULSE's G_synthesis state_dict. FU_OK with *out set, or
 * an error with a message naming the tensor at fault. */
int fu_sg1_load(const fu_weights *w, fu_stylegan1 **out);
void fu_sg1_free(fu_stylegan1 *m);    /* NULL-safe */
/* Shape [1,1,r,r] of noise map i; -1 with a message when i is out of range. */
int fu_sg1_noise_shape(const fu_stylegan1 *m, int i, int64_t shape[4]);

/* Image [N,3,R,R] (raw, about [-1,1]; PULSE then uses (x+1)/2) from dlatents [N,n_layers,D]
 * and noise[0..n_layers-1], each [N or 1,1,r,r]. Inputs may require gradients. Intermediates
 * go to taps (may be NULL): "conv0_up_RxR" (upscaling conv with blur and bias, before the
 * epilogue) and "block_RxR" (each block's output). NULL with a message on bad inputs. */
fu_tensor *fu_sg1_forward(fu_graph *g, const fu_stylegan1 *m, fu_tensor *dlatents,
                          fu_tensor *const *noise, const fu_tensor_sink *taps);

/* ---- random-weight networks (timing, tests) ---- */
typedef struct fu_sg1_config {
    int resolution;                  /* power of two >= 4 */
    int dlatent_size;
    int fmap_base, fmap_max;         /* channels of the block at 2^r: min(fmap_base/2^(r-1), fmap_max) */
} fu_sg1_config;
/* PULSE's FFHQ network: 1024, 512, 8192, 512 (512 channels up to 32x32, then 256 ... 16). */
fu_sg1_config fu_sg1_config_ffhq(void);
/* A state_dict-compatible table (weights and const N(0,1), biases 0.2*N(0,1), noise weights
 * 0.2*N(0,1)) for fu_sg1_load; NULL with a message on a bad config. */
fu_weights *fu_sg1_random_weights(const fu_sg1_config *cfg, uint64_t seed);

/* ---- mapping network and PULSE's latent mapping ---- */
#define FU_SG1_MAX_MAPPING 16
typedef struct fu_sg1_mapping {
    int n_layers;
    int64_t dim;
    fu_tensor *w[FU_SG1_MAX_MAPPING], *b[FU_SG1_MAX_MAPPING];   /* scaled: [D,D], [D] */
} fu_sg1_mapping;
/* From PULSE's G_mapping state_dict ("dense0.weight" ... "denseK.bias"). */
int fu_sg1_mapping_load(const fu_weights *w, fu_sg1_mapping **out);
void fu_sg1_mapping_free(fu_sg1_mapping *m);
/* z [..., D] -> w [..., D]: pixel norm, then per layer leaky_relu(x W^T + b, 0.2). */
fu_tensor *fu_sg1_mapping_forward(fu_graph *g, const fu_sg1_mapping *m, fu_tensor *z);

/* StyleGAN's pixel norm over the last axis: x * rsqrt(mean(x^2) + 1e-8). */
fu_tensor *fu_pixel_norm(fu_graph *g, fu_tensor *x);
/* PULSE's Gaussian-fit latent mapping: leaky_relu(z*std + mean, 0.2), mean/std [D]
 * broadcast over z [..., D]. */
fu_tensor *fu_pulse_gaussfit(fu_graph *g, fu_tensor *z, fu_tensor *mean, fu_tensor *std);

#endif
