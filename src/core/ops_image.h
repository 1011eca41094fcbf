/* Resampling ops on NCHW images (ops_image.c, ops_warp.c). */
#ifndef FU_OPS_IMAGE_H
#define FU_OPS_IMAGE_H
#include "graph.h"

/* StyleGAN2's upfirdn2d per channel (rosinality's upfirdn2d_native): zero-insert upsample by `up`
 * (up-1 zeros after every sample, size in*up), pad (negative pads crop), convolve with the
 * kh x kw kernel (row-major; true convolution, i.e. correlation with the flipped kernel, as
 * StyleGAN does), keep every `down`-th sample starting at 0. Output size per axis:
 * (in*up + pad_before + pad_after - k) / down + 1, which must be >= 1.
 * pad = {x0, x1, y0, y1} as in StyleGAN2's upfirdn2d(pad=(x0, x1, y0, y1)). The kernel is
 * copied into the node (a constant, no gradient); the gradient flows to x. */
fu_tensor *fu_upfirdn2d(fu_graph *g, fu_tensor *x, const float *kernel, int kh, int kw,
                        int up, int down, const int pad[4]);
/* PULSE's BicubicDownSample(factor), factor 1..64: 4*factor taps of Keys' cubic (a = -0.5)
 * normalised to sum 1, reflect padding (3f//2 before, 3f - 3f//2 after; H and W must exceed the
 * latter), rows then columns, stride factor. Output [N, C, H/f, W/f] (floor), any C. */
fu_tensor *fu_bicubic_downsample(fu_graph *g, fu_tensor *x, int factor);
/* General bicubic resize to (oh, ow), half-pixel centres (align_corners false), Keys a = -0.75.
 * Per axis: when growing (or equal), exactly PyTorch's bicubic (4 taps, border indices clamped);
 * when shrinking by s = in/out, the cubic is stretched by s (support 2s input pixels) so it
 * low-passes before decimating, taps outside the image dropped and the rest renormalised -- the
 * scheme of PIL and PyTorch's antialias=True, except that those use a = -0.5 there. */
fu_tensor *fu_resize_bicubic(fu_graph *g, fu_tensor *x, int64_t oh, int64_t ow);
/* Bilinear resize, PyTorch semantics: align_corners 0 = half-pixel centres (source positions
 * below 0 clamped to 0), 1 = corner samples aligned. No antialiasing. */
fu_tensor *fu_resize_bilinear(fu_graph *g, fu_tensor *x, int64_t oh, int64_t ow, int align_corners);
/* Adaptive average pooling to (oh, ow) (PyTorch's 'area' interpolation): output row i averages
 * input rows floor(i*H/oh) .. ceil((i+1)*H/oh)-1, likewise columns. */
fu_tensor *fu_resize_area(fu_graph *g, fu_tensor *x, int64_t oh, int64_t ow);
/* Affine warp with bilinear sampling, zero outside. x [N, C, H, W], theta [N, 2, 3] row-major.
 * Coordinates are pixel indices (integer = pixel centre), not normalised [-1, 1]: output pixel
 * at row v, column u (u = 0..ow-1, v = 0..oh-1) samples x at column X = t00*u + t01*v + t02 and
 * row Y = t10*u + t11*v + t12, bilinearly between the 4 neighbouring pixels, with pixels outside
 * the image read as 0 (the image fades to 0 over one pixel beyond its border). So the identity
 * theta {1,0,0, 0,1,0} with (oh, ow) = (H, W) reproduces x. Differentiable w.r.t. x and theta
 * (theta's gradient is exact except at the kinks where X or Y is an integer). */
fu_tensor *fu_affine_warp(fu_graph *g, fu_tensor *x, fu_tensor *theta, int64_t oh, int64_t ow);
/* theta [N, 2, 3] of a warp to (oh, ow), composed with a random similarity of the output frame
 * about its centre, redrawn per row on every forward from g->seed (expectation over
 * transformations: change g->seed between steps): scale exp(a U), rotation a U radians, shift
 * a ow U pixels per axis (U uniform in [-1, 1]), and a left-right mirror with probability 1/2
 * when flips is set. amount a in [0, 0.5]; a = 0 without flips gives theta back.
 * Differentiable w.r.t. theta. */
fu_tensor *fu_warp_jitter(fu_graph *g, fu_tensor *theta, float amount, int flips, int64_t oh, int64_t ow);

#endif
