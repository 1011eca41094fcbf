/* Unary elementwise ops and activations (ops_unary.c). */
#ifndef FU_OPS_UNARY_H
#define FU_OPS_UNARY_H
#include "graph.h"

fu_tensor *fu_neg(fu_graph *g, fu_tensor *x);
fu_tensor *fu_abs(fu_graph *g, fu_tensor *x);          /* gradient sign(x), 0 at 0 */
fu_tensor *fu_square(fu_graph *g, fu_tensor *x);
fu_tensor *fu_sqrt(fu_graph *g, fu_tensor *x);
fu_tensor *fu_rsqrt(fu_graph *g, fu_tensor *x);
fu_tensor *fu_exp(fu_graph *g, fu_tensor *x);
fu_tensor *fu_log(fu_graph *g, fu_tensor *x);
fu_tensor *fu_scale_shift(fu_graph *g, fu_tensor *x, float scale, float shift); /* x*scale+shift */
fu_tensor *fu_clamp(fu_graph *g, fu_tensor *x, float lo, float hi);          /* gradient 0 outside */
fu_tensor *fu_relu(fu_graph *g, fu_tensor *x);
fu_tensor *fu_relu6(fu_graph *g, fu_tensor *x);
fu_tensor *fu_leaky_relu(fu_graph *g, fu_tensor *x, float slope);
/* Per-channel slope along dim 1 (NCHW or [N,C]); alpha has C elements. */
fu_tensor *fu_prelu(fu_graph *g, fu_tensor *x, fu_tensor *alpha);
fu_tensor *fu_sigmoid(fu_graph *g, fu_tensor *x);
fu_tensor *fu_tanh(fu_graph *g, fu_tensor *x);
fu_tensor *fu_silu(fu_graph *g, fu_tensor *x);
fu_tensor *fu_elu(fu_graph *g, fu_tensor *x, float alpha);

#endif
