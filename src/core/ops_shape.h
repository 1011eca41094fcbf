/* Layout ops (ops_shape.c). All outputs are new contiguous tensors. */
#ifndef FU_OPS_SHAPE_H
#define FU_OPS_SHAPE_H
#include "graph.h"

/* One entry of shape may be -1 (inferred). */
fu_tensor *fu_reshape(fu_graph *g, fu_tensor *x, int ndim, const int64_t *shape);
/* out.shape[i] = x.shape[perm[i]]. */
fu_tensor *fu_transpose(fu_graph *g, fu_tensor *x, const int *perm);
/* Concatenation along axis (negative counts from the end); shapes must agree elsewhere. */
fu_tensor *fu_concat(fu_graph *g, fu_tensor *const *xs, int n, int axis);
/* Elements start, start+step, ... (< end) along axis; step >= 1. */
fu_tensor *fu_slice(fu_graph *g, fu_tensor *x, int axis, int64_t start, int64_t end, int64_t step);

typedef enum { FU_PAD_CONSTANT, FU_PAD_REFLECT, FU_PAD_REPLICATE } fu_pad_mode;
/* pads[2*i], pads[2*i+1] = before/after for dim i (x->ndim pairs; reflect needs pad < dim). */
fu_tensor *fu_pad(fu_graph *g, fu_tensor *x, const int64_t *pads, fu_pad_mode mode, float value);
/* Nearest-neighbour upsampling of the last two dims by an integer factor. */
fu_tensor *fu_upsample_nearest(fu_graph *g, fu_tensor *x, int factor);

#endif
