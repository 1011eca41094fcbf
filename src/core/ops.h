/* Every op of the engine. Each takes the graph first and returns its output tensor, or NULL
 * with a message (fu_last_error); a NULL input propagates as NULL, so a chain of calls needs
 * one check at its end. All tensors are float32, contiguous; images are NCHW. */
#ifndef FU_OPS_H
#define FU_OPS_H
#include "graph.h"

/* ---- elementwise binary, numpy-style broadcasting (ops_elementwise.c) ---- */
fu_tensor *fu_add(fu_graph *g, fu_tensor *a, fu_tensor *b);
fu_tensor *fu_sub(fu_graph *g, fu_tensor *a, fu_tensor *b);
fu_tensor *fu_mul(fu_graph *g, fu_tensor *a, fu_tensor *b);
fu_tensor *fu_div(fu_graph *g, fu_tensor *a, fu_tensor *b);
fu_tensor *fu_maximum(fu_graph *g, fu_tensor *a, fu_tensor *b);  /* ties: gradient to a */
fu_tensor *fu_minimum(fu_graph *g, fu_tensor *a, fu_tensor *b);
/* Broadcast shape of a and b into out (returns ndim, or -1 with a message). */
int fu_broadcast_shape(const char *op, const fu_tensor *a, const fu_tensor *b, int64_t *out);

#include "ops_unary.h"
#include "ops_shape.h"
#include "ops_reduce.h"
#include "ops_nn.h"
#include "ops_conv.h"
#include "ops_image.h"
#include "ops_loss.h"

#endif
