/* The computation graph: a tape of nodes in topological (creation) order.
 *
 * Ops run eagerly as they are added (so model code reads like ordinary C), and the graph keeps
 * every node, so that
 *   - fu_graph_forward() re-runs all nodes in order after leaf data changed (a latent-search
 *     step builds its graph once and re-runs it: no allocation after the first step), and
 *   - fu_graph_backward() walks the nodes in reverse, calling each op's backward only where the
 *     output's gradient is reachable from the seed and an input needs a gradient.
 * Intermediates live in the graph's arena; fu_graph_reset() rewinds it for define-by-run loops
 * that rebuild the graph each step (still allocation-free once warm).
 * Gradients of intermediates come from a pool of buffers the graph keeps: backward takes one when
 * a node's input first needs it and gives the node's own back as soon as that node's backward has
 * run (every consumer, later in the tape, has added into it by then). So only the gradients on
 * the current "frontier" of the backward walk are alive, not one per intermediate: for a deep
 * generator at 1024x1024 that is a few activation-sized buffers instead of dozens. Set
 * retain_grads to read intermediates' gradients after fu_graph_backward (tests, debugging).
 *
 * Writing an op: see src/core/ops_elementwise.c for the pattern. Forward reads n->in[*]->data
 * and writes n->out->data; backward reads n->out->grad and *adds* into n->in[i]->grad for the
 * inputs with requires_grad set (use fu_in_grad()). */
#ifndef FU_GRAPH_H
#define FU_GRAPH_H
#include "arena.h"
#include "tensor.h"

#define FU_MAX_INPUTS 8
#define FU_MAX_IPARAMS 24
#define FU_MAX_FPARAMS 8
/* Room for an op's own parameter struct in a node (see fu_node.params). An op writes its struct
 * there when it makes the node (memcpy) and reads it with FU_NODE_PARAMS(n, its type). */
#define FU_NODE_PARAM_BYTES (FU_MAX_IPARAMS * 8 + FU_MAX_FPARAMS * 4)
#define FU_NODE_PARAMS(n, type) ((const type *)(const void *)(n)->params)

typedef struct fu_node fu_node;
typedef struct fu_graph fu_graph;

typedef struct fu_op {
    const char *name;
    int (*forward)(fu_node *n);      /* FU_OK or an error code (message via fu_fail) */
    void (*backward)(fu_node *n);    /* may be NULL for ops that never need gradients */
    void (*free_state)(void *state); /* frees n->state (may be NULL) */
} fu_op;

struct fu_node {
    const fu_op *op;
    fu_graph *graph;
    int n_in;
    fu_tensor *in[FU_MAX_INPUTS];
    fu_tensor *out;
    /* The op's parameters: a struct of the op's own, stored in params (ops_conv.c: its size
     * checked against FU_NODE_PARAM_BYTES at compile time), or, in the ops not converted yet,
     * the positional slots ip and fp. */
    union {
        struct {
            int64_t ip[FU_MAX_IPARAMS];  /* integer parameters (strides, pads, axes...) */
            float fp[FU_MAX_FPARAMS];    /* float parameters (slopes, eps, scales...) */
        };
        _Alignas(int64_t) unsigned char params[FU_NODE_PARAM_BYTES];
    };
    void *saved;                 /* arena memory an op keeps from forward for backward */
    void *state;                 /* heap state (e.g. cached primitives), freed by op->free_state */
    int reached;                 /* set during backward: out->grad is reachable from the seed */
};

struct fu_graph {
    fu_arena arena;
    fu_node **nodes;
    int n_nodes, cap_nodes;
    int training;                /* for dropout / batch norm: 1 = training mode */
    float *scratch;              /* temporary buffer shared by ops inside one forward/backward */
    size_t scratch_bytes;
    uint64_t seed;               /* for stochastic ops (dropout): masks derive from it and the node, so a
                                  * re-run reproduces them; the caller changes it for new masks */
    int retain_grads;            /* 1: intermediates keep their gradients until the next backward/reset */
    struct fu_grad_buf *grad_bufs;   /* the gradient pool (see above) */
    int n_grad_bufs, cap_grad_bufs;
};

fu_graph *fu_graph_new(void);
void fu_graph_free(fu_graph *g);
void fu_graph_reset(fu_graph *g);

/* Intermediate tensor (no producer) in the arena, zero-filled: constants, targets, buffers. */
fu_tensor *fu_graph_tensor(fu_graph *g, int ndim, const int64_t *shape);
/* Arena memory that lives until the next reset. */
void *fu_graph_alloc(fu_graph *g, size_t bytes);
/* A temporary buffer of at least `bytes`, valid until the next call (ops use it for im2col
 * columns and the like inside one forward or backward, never across). Grows, never shrinks. */
float *fu_graph_scratch(fu_graph *g, size_t bytes);

/* Creates a node for `op` with the given inputs and an output of the given shape (arena).
 * Returns the node (whose out is allocated, params zero) or NULL with a message. If any input
 * is NULL the call fails quietly, keeping the earlier error: chains of ops can be written
 * without checking each step, and the first error is the one reported. */
fu_node *fu_node_new(fu_graph *g, const fu_op *op, fu_tensor *const *in, int n_in,
                     int ndim, const int64_t *shape);
/* Runs the node's forward once and returns its output, or NULL on error. */
fu_tensor *fu_node_run(fu_node *n);
/* Arena memory for forward-to-backward saved values: allocated on the first call, the same
 * pointer on re-runs. */
void *fu_node_saved(fu_node *n, size_t bytes);
/* Gradient buffer of input i if it needs one, else NULL. */
float *fu_in_grad(fu_node *n, int i);

/* Re-runs every node in order. */
int fu_graph_forward(fu_graph *g);
/* Back-propagates from `out`: its gradient is set to `seed` (numel floats; NULL = all ones),
 * intermediate gradients start from zero, and leaf gradients are accumulated into. Afterwards
 * intermediates have no gradient (grad NULL) unless g->retain_grads is set. */
int fu_graph_backward(fu_graph *g, fu_tensor *out, const float *seed);

/* Checks helpers for op constructors: each returns 0 (with a message naming the op) if the
 * condition fails. */
int fu_check_ndim(const char *op, const fu_tensor *t, int ndim);

#endif
