/* Fused StyleGAN layer ops: one graph node (one activation-sized output, no other
 * activation-sized tensors kept) where the plain op chain would keep four to six. At 1024x1024
 * with 32 channels every such tensor is 128 MB, so these decide whether a generator's forward +
 * backward fits in a few GB (bench/RESULTS.md, "StyleGAN").
 *
 * All have an explicit backward; tests/test_stylegan.c gradchecks them. */
#ifndef FU_GEN_SG_OPS_H
#define FU_GEN_SG_OPS_H
#include "core/graph.h"

/* y = act(x * scale[n,c] + noise_weight[c] * noise[n,h,w] + bias[c]) * gain, act = leaky ReLU
 * with `slope` (> 0; gain > 0).
 * x [N,C,H,W]; scale [N,C] or NULL (StyleGAN2's demodulation factor); noise [N or 1,1,H,W];
 * noise_weight [C] or [1] (one strength for every channel); bias [C] or NULL.
 * Backward reads only the output (the activation's branch is the sign of y), x and the small
 * inputs. StyleGAN v1: slope 0.2, gain 1, no scale; StyleGAN2: slope 0.2, gain sqrt(2). */
fu_tensor *fu_sg_noise_act(fu_graph *g, fu_tensor *x, fu_tensor *scale, fu_tensor *noise,
                           fu_tensor *noise_weight, fu_tensor *bias, float slope, float gain);

/* Instance norm (per (n,c) over H,W; biased variance, eps) followed by the per-sample style
 * y = xhat * scale[n,c] + shift[n,c]. x [N or 1,C,H,W]; scale, shift [N,C]; y [N,C,H,W]. */
fu_tensor *fu_sg_style_instance_norm(fu_graph *g, fu_tensor *x, fu_tensor *scale, fu_tensor *shift, float eps);

/* StyleGAN2's ToRGB convolution without demodulation: y[n,o] = sum_c w[o,c] * s[n,c] * x[n,c]
 * per pixel, i.e. a 1x1 conv with the weight modulated per sample, as one GEMM per sample with
 * the small [O,C] weight scaled (no modulated copy of the activation x). x [N,C,H,W],
 * w [O,C,1,1] or [O,C], s [N,C] -> y [N,O,H,W]. */
fu_tensor *fu_sg_modulated_1x1(fu_graph *g, fu_tensor *x, fu_tensor *w, fu_tensor *s);

#endif
