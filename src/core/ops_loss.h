/* Losses (ops_loss.c). Unless stated, they return a [1] tensor averaged over all elements. */
#ifndef FU_OPS_LOSS_H
#define FU_OPS_LOSS_H
#include "graph.h"

fu_tensor *fu_mse_loss(fu_graph *g, fu_tensor *a, fu_tensor *b);
fu_tensor *fu_l1_loss(fu_graph *g, fu_tensor *a, fu_tensor *b);
/* a, b [N,C,H,W]: the mean of the L1 losses of their vertical and of their horizontal neighbour
 * differences (an edge loss: it pushes against the blur a pixel loss settles into). Composed of
 * slice, sub and L1, so its gradient is theirs. */
fu_tensor *fu_edge_l1_loss(fu_graph *g, fu_tensor *a, fu_tensor *b);
/* logits [N, C], labels[N] in [0, C): mean of -log_softmax[label]. */
fu_tensor *fu_cross_entropy(fu_graph *g, fu_tensor *logits, const int *labels);
/* logits, targets in [0,1] same shape; mask (same shape, may be NULL) weights elements and the
 * mean is taken over the mask's sum. */
fu_tensor *fu_bce_with_logits(fu_graph *g, fu_tensor *logits, fu_tensor *targets, fu_tensor *mask);
/* Cosine similarity along the last axis: [..., D] x [..., D] -> [...]. */
fu_tensor *fu_cosine_similarity(fu_graph *g, fu_tensor *a, fu_tensor *b, float eps);
/* ArcFace logits: emb [N, D], weight [C, D] (both normalised inside); for row n the logit of
 * labels[n] is s*cos(theta + m), others s*cos(theta); feed into fu_cross_entropy. */
fu_tensor *fu_arcface_logits(fu_graph *g, fu_tensor *emb, fu_tensor *weight, const int *labels, float s, float m);
/* PULSE's GEOCROSS on latent [N, L, D] -> [1] (see ../shared/golden/README.md). */
fu_tensor *fu_geocross(fu_graph *g, fu_tensor *latent);

#endif
