/* Unary elementwise ops and activations (ops_unary.c). Outputs have x's shape. Float params
 * must be finite (else NULL with a message). sqrt/rsqrt/log follow libm outside their domain
 * (NaN/inf), as do their gradients at 0. */
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
fu_tensor *fu_clamp(fu_graph *g, fu_tensor *x, float lo, float hi);  /* lo <= hi; gradient 1 on [lo, hi], 0 outside */
fu_tensor *fu_relu(fu_graph *g, fu_tensor *x);
fu_tensor *fu_relu6(fu_graph *g, fu_tensor *x);   /* min(max(x, 0), 6) */
fu_tensor *fu_leaky_relu(fu_graph *g, fu_tensor *x, float slope);
/* x > 0 ? x : alpha[c] * x with c the index along dim 1 (x is [N,C,...], at least 2-d); alpha
 * has C elements (any shape), or 1 element shared by all channels. Gradients to x and alpha. */
fu_tensor *fu_prelu(fu_graph *g, fu_tensor *x, fu_tensor *alpha);
fu_tensor *fu_sigmoid(fu_graph *g, fu_tensor *x);  /* stable for large |x| */
fu_tensor *fu_tanh(fu_graph *g, fu_tensor *x);
fu_tensor *fu_silu(fu_graph *g, fu_tensor *x);
fu_tensor *fu_elu(fu_graph *g, fu_tensor *x, float alpha);  /* x > 0 ? x : alpha*(e^x - 1) */
/* Angle in [0, pi] of x in [-1, 1]; the gradient -1/sqrt(1 - x^2) is infinite at +-1, so clamp
 * inputs that may reach them (a cosine) to [-1 + d, 1 - d] first. */
fu_tensor *fu_acos(fu_graph *g, fu_tensor *x);

#endif
