/* Resampling ops on NCHW images (ops_image.c, ops_warp.c). */
#ifndef FU_OPS_IMAGE_H
#define FU_OPS_IMAGE_H
#include "graph.h"

/* StyleGAN's upfirdn2d per channel: zero-insert upsample by `up`, pad (negative crops), correlate
 * with the kh x kw kernel (given as StyleGAN does, i.e. the kernel is flipped before correlation,
 * which makes it a true convolution), keep every `down`-th sample.
 * pad = {x0, x1, y0, y1} as in StyleGAN2's upfirdn2d(pad=(x0, x1, y0, y1)). */
fu_tensor *fu_upfirdn2d(fu_graph *g, fu_tensor *x, const float *kernel, int kh, int kw,
                        int up, int down, const int pad[4]);
/* PULSE's BicubicDownSample(factor): Keys a=-0.5, 4*factor taps, reflect padding, separable. */
fu_tensor *fu_bicubic_downsample(fu_graph *g, fu_tensor *x, int factor);
/* General bicubic resize to (oh, ow) (a=-0.75 as PyTorch/OpenCV, align_corners false,
 * antialiased when shrinking so it is a proper low-pass filter). */
fu_tensor *fu_resize_bicubic(fu_graph *g, fu_tensor *x, int64_t oh, int64_t ow);
/* Bilinear resize (align_corners false or true). */
fu_tensor *fu_resize_bilinear(fu_graph *g, fu_tensor *x, int64_t oh, int64_t ow, int align_corners);
/* Adaptive average pooling to (oh, ow) (PyTorch's 'area' interpolation). */
fu_tensor *fu_resize_area(fu_graph *g, fu_tensor *x, int64_t oh, int64_t ow);
/* Affine warp with bilinear sampling, zero outside: output pixel (u, v) (pixel centres, in
 * output pixel units) samples x at (X, Y) = theta[n] * (u, v, 1) in input pixel units.
 * theta [N, 2, 3]; differentiable w.r.t. x and theta. */
fu_tensor *fu_affine_warp(fu_graph *g, fu_tensor *x, fu_tensor *theta, int64_t oh, int64_t ow);

#endif
