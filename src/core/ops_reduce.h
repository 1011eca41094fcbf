/* Reductions and softmax (ops_reduce.c). `axes` is a bit mask over dimensions (bit i = dim i),
 * non-zero and within x's dims; keepdim keeps reduced dims as size 1. Reducing every dim
 * without keepdim gives shape [1]. Sums accumulate in double (accurate over millions of
 * elements). An empty reduction: sum 0; mean and max refuse it. */
#ifndef FU_OPS_REDUCE_H
#define FU_OPS_REDUCE_H
#include "graph.h"

fu_tensor *fu_sum(fu_graph *g, fu_tensor *x, unsigned axes, int keepdim);
fu_tensor *fu_mean(fu_graph *g, fu_tensor *x, unsigned axes, int keepdim);
fu_tensor *fu_max(fu_graph *g, fu_tensor *x, unsigned axes, int keepdim); /* gradient to first max */
fu_tensor *fu_sum_all(fu_graph *g, fu_tensor *x);   /* shape [1]; 0 for an empty x */
fu_tensor *fu_mean_all(fu_graph *g, fu_tensor *x);  /* shape [1]; x must not be empty */
/* Over one axis (negative counts from the end), max-subtracted for stability. */
fu_tensor *fu_softmax(fu_graph *g, fu_tensor *x, int axis);
fu_tensor *fu_log_softmax(fu_graph *g, fu_tensor *x, int axis);

#endif
