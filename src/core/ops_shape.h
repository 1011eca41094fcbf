/* Layout ops (ops_shape.c). All outputs are new contiguous tensors. */
#ifndef FU_OPS_SHAPE_H
#define FU_OPS_SHAPE_H
#include "graph.h"

/* One entry of shape may be -1 (inferred); the element count must match. */
fu_tensor *fu_reshape(fu_graph *g, fu_tensor *x, int ndim, const int64_t *shape);
/* out.shape[i] = x.shape[perm[i]]; perm (x->ndim entries) must be a permutation. */
fu_tensor *fu_transpose(fu_graph *g, fu_tensor *x, const int *perm);
/* Concatenation of n (1..FU_MAX_INPUTS) tensors along axis (negative counts from the end);
 * ranks and all other dims must agree. */
fu_tensor *fu_concat(fu_graph *g, fu_tensor *const *xs, int n, int axis);
/* Elements start, start+step, ... (< end) along axis (negative counts from the end); step >= 1.
 * Python-style bounds: a negative start/end counts from the end, then both are clamped to
 * [0, dim]. An empty range is allowed and gives size 0 along axis. */
fu_tensor *fu_slice(fu_graph *g, fu_tensor *x, int axis, int64_t start, int64_t end, int64_t step);

typedef enum { FU_PAD_CONSTANT, FU_PAD_REFLECT, FU_PAD_REPLICATE } fu_pad_mode;
/* pads[2*i], pads[2*i+1] = before/after for dim i (x->ndim pairs, each >= 0). CONSTANT fills
 * with value; REFLECT mirrors without repeating the edge (1 2 3 -> 3 2 | 1 2 3 | 2 1, numpy
 * 'reflect' / PyTorch), needs pad < dim; REPLICATE repeats the edge, needs dim >= 1. */
fu_tensor *fu_pad(fu_graph *g, fu_tensor *x, const int64_t *pads, fu_pad_mode mode, float value);
/* Nearest-neighbour upsampling of the last two dims (x at least 2-d) by a factor 1..65536. */
fu_tensor *fu_upsample_nearest(fu_graph *g, fu_tensor *x, int factor);

#endif
