/* Reductions and softmax (ops_reduce.c). `axes` is a bit mask over dimensions (bit i = dim i);
 * keepdim keeps reduced dims as size 1. */
#ifndef FU_OPS_REDUCE_H
#define FU_OPS_REDUCE_H
#include "graph.h"

fu_tensor *fu_sum(fu_graph *g, fu_tensor *x, unsigned axes, int keepdim);
fu_tensor *fu_mean(fu_graph *g, fu_tensor *x, unsigned axes, int keepdim);
fu_tensor *fu_max(fu_graph *g, fu_tensor *x, unsigned axes, int keepdim); /* gradient to first max */
fu_tensor *fu_sum_all(fu_graph *g, fu_tensor *x);   /* shape [1] */
fu_tensor *fu_mean_all(fu_graph *g, fu_tensor *x);  /* shape [1] */
fu_tensor *fu_softmax(fu_graph *g, fu_tensor *x, int axis);
fu_tensor *fu_log_softmax(fu_graph *g, fu_tensor *x, int axis);

#endif
