/* Runs TF.js graph models (io/tfjs.h) with the engine's ops, so they are differentiable.
 *
 * Layout: TF graphs are NHWC, the engine's convolutions NCHW. Every value carries a layout tag:
 * a rank-4 activation is kept in NCHW from the first convolution/pooling on (the model's image
 * input is taken NCHW directly), and the ops that only make sense per element or per channel
 * (elementwise, activations, bias, batch norm, padding, pooling, reductions, softmax, concat)
 * run on it in NCHW, translating their axes. Ops whose meaning depends on the memory order
 * (Reshape, Squeeze, Transpose, StridedSlice, ...) first transpose the value back to NHWC.
 * Measured (batch 4, 2 cores): faceres (MobileNet 224x224) forward + backward 540 ms with no
 * transpose node, against 580-700 ms when every conv/pool goes back to NHWC (53 transposes);
 * gear 384 ms against 472 ms. Per-channel constants met by NCHW values are permuted once and
 * cached, so they add no nodes either.
 *
 * Constants: conv filters are converted once (HWIO -> OIHW; depthwise HWCM -> [C*M,1,kh,kw]
 * with groups = C), everything else is used as stored. */
#ifndef FU_TFJS_GRAPH_H
#define FU_TFJS_GRAPH_H
#include "core/graph.h"
#include "io/tfjs.h"

typedef struct fu_tfjs_net fu_tfjs_net;

/* Prepares a loaded model (takes ownership of m, also on failure): finds the single float
 * Placeholder and converts constants. NULL with a message on error. */
fu_tfjs_net *fu_tfjs_net_new(fu_tfjs_model *m);
/* fu_tfjs_load + fu_tfjs_net_new. */
fu_tfjs_net *fu_tfjs_net_load(const char *model_json_path);
void fu_tfjs_net_free(fu_tfjs_net *net);

const fu_tfjs_model *fu_tfjs_net_model(const fu_tfjs_net *net);
/* The placeholder's declared shape in TF order (NHWC for images; -1 = any). Returns its rank. */
int fu_tfjs_net_input_shape(const fu_tfjs_net *net, int64_t *shape);

/* Adds the ops computing the named outputs ("node" or "node:0") to g, with x fed to the
 * placeholder. A rank-4 placeholder (NHWC in TF) takes x in NCHW, [N, C, H, W]. Outputs come
 * in TF's layout (rank-4 results NHWC). Only the nodes the outputs depend on are evaluated.
 * An op the converter does not know is an error naming it. FU_OK or an error with a message. */
int fu_tfjs_net_forward(fu_tfjs_net *net, fu_graph *g, fu_tensor *x, int n_out,
                        const char *const *outputs, fu_tensor **results);

#endif
