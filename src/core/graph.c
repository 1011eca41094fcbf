#include "graph.h"
#include "error.h"
#include <stdlib.h>
#include <string.h>

fu_graph *fu_graph_new(void) {
    fu_graph *g = fu_calloc(1, sizeof *g);
    if (!g) return NULL;
    fu_arena_init(&g->arena);
    g->seed = 0x6a09e667f3bcc909ull;
    return g;
}

static void free_node_states(fu_graph *g) {
    for (int i = 0; i < g->n_nodes; i++) {
        fu_node *n = g->nodes[i];
        if (n->state && n->op->free_state) n->op->free_state(n->state);
        n->state = NULL;
    }
}

/* ---- the gradient pool: buffers are lent to intermediates during backward ---- */

struct fu_grad_buf {
    float *p;
    size_t bytes;
    int used;
};

/* A zeroed buffer of at least `bytes`: the smallest free one that is not more than twice the
 * size (so a small gradient does not pin a large buffer), else a new one. */
static float *grad_acquire(fu_graph *g, size_t bytes) {
    int best = -1;
    for (int i = 0; i < g->n_grad_bufs; i++) {
        const struct fu_grad_buf *b = &g->grad_bufs[i];
        if (!b->used && b->bytes >= bytes && b->bytes <= 2 * bytes + 4096 &&
            (best < 0 || b->bytes < g->grad_bufs[best].bytes))
            best = i;
    }
    if (best < 0) {
        if (g->n_grad_bufs == g->cap_grad_bufs) {
            int cap = g->cap_grad_bufs ? 2 * g->cap_grad_bufs : 16;
            struct fu_grad_buf *nb = realloc(g->grad_bufs, (size_t)cap * sizeof *nb);
            if (!nb) return fu_fail_null(FU_E_INTERNAL, "out of memory (gradient pool)");
            g->grad_bufs = nb;
            g->cap_grad_bufs = cap;
        }
        float *p = fu_aligned_alloc(bytes ? bytes : 64);
        if (!p) return NULL;
        best = g->n_grad_bufs++;
        g->grad_bufs[best] = (struct fu_grad_buf){p, bytes, 0};
    }
    g->grad_bufs[best].used = 1;
    memset(g->grad_bufs[best].p, 0, bytes);
    return g->grad_bufs[best].p;
}

/* Returns an intermediate's gradient to the pool. */
static void grad_release(fu_graph *g, fu_tensor *t) {
    if (!t->grad || !t->node) return;
    for (int i = 0; i < g->n_grad_bufs; i++)
        if (g->grad_bufs[i].p == t->grad) g->grad_bufs[i].used = 0;
    t->grad = NULL;
}

static void release_all_grads(fu_graph *g) {
    for (int i = 0; i < g->n_nodes; i++) grad_release(g, g->nodes[i]->out);
}

void fu_graph_reset(fu_graph *g) {
    if (!g) return;
    release_all_grads(g);
    free_node_states(g);
    g->n_nodes = 0;
    fu_arena_reset(&g->arena);
}

void fu_graph_free(fu_graph *g) {
    if (!g) return;
    free_node_states(g);
    for (int i = 0; i < g->n_grad_bufs; i++) free(g->grad_bufs[i].p);
    free(g->grad_bufs);
    fu_arena_free(&g->arena);
    free(g->scratch);
    free(g->nodes);
    free(g);
}

void *fu_graph_alloc(fu_graph *g, size_t bytes) { return fu_arena_alloc(&g->arena, bytes); }

float *fu_graph_scratch(fu_graph *g, size_t bytes) {
    if (bytes <= g->scratch_bytes) return g->scratch;
    float *p = fu_aligned_alloc(bytes);
    if (!p) return NULL;
    free(g->scratch);
    g->scratch = p;
    g->scratch_bytes = bytes;
    return p;
}

static fu_tensor *arena_tensor(fu_graph *g, int ndim, const int64_t *shape) {
    int64_t n = fu_shape_numel(ndim, shape);
    if (n < 0) return NULL;
    fu_tensor *t = fu_arena_calloc(&g->arena, 1, sizeof *t);
    if (!t) return NULL;
    t->data = fu_arena_alloc(&g->arena, (size_t)n * sizeof(float));
    if (!t->data) return NULL;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->numel = n;
    return t;
}

fu_tensor *fu_graph_tensor(fu_graph *g, int ndim, const int64_t *shape) {
    if (!g) return fu_fail_null(FU_E_INPUT, "graph_tensor: NULL graph");
    fu_tensor *t = arena_tensor(g, ndim, shape);
    if (t) memset(t->data, 0, (size_t)t->numel * sizeof(float));
    return t;
}

static int push_node(fu_graph *g, fu_node *n) {
    if (g->n_nodes == g->cap_nodes) {
        int cap = g->cap_nodes ? g->cap_nodes * 2 : 256;
        fu_node **p = realloc(g->nodes, (size_t)cap * sizeof *p);
        if (!p) return fu_fail(FU_E_INTERNAL, "out of memory (graph of %d nodes)", cap);
        g->nodes = p;
        g->cap_nodes = cap;
    }
    g->nodes[g->n_nodes++] = n;
    return FU_OK;
}

fu_node *fu_node_new(fu_graph *g, const fu_op *op, fu_tensor *const *in, int n_in,
                     int ndim, const int64_t *shape) {
    if (!g) return fu_fail_null(FU_E_INPUT, "%s: NULL graph", op ? op->name : "op");
    if (n_in < 0 || n_in > FU_MAX_INPUTS) return fu_fail_null(FU_E_INPUT, "%s: %d inputs", op->name, n_in);
    for (int i = 0; i < n_in; i++) {
        if (!in[i]) {
            /* Keep an earlier error if there is one: this NULL is its consequence. */
            if (fu_last_code() == FU_OK) fu_fail(FU_E_INPUT, "%s: input %d is NULL", op->name, i);
            return NULL;
        }
    }
    fu_node *n = fu_arena_calloc(&g->arena, 1, sizeof *n);
    if (!n) return NULL;
    n->op = op;
    n->graph = g;
    n->n_in = n_in;
    int needs_grad = 0;
    for (int i = 0; i < n_in; i++) {
        n->in[i] = in[i];
        needs_grad |= in[i]->requires_grad;
    }
    n->out = arena_tensor(g, ndim, shape);
    if (!n->out) return NULL;
    n->out->node = n;
    n->out->requires_grad = needs_grad && op->backward != NULL;
    if (push_node(g, n) != FU_OK) return NULL;
    return n;
}

fu_tensor *fu_node_run(fu_node *n) {
    if (!n) return NULL;
    if (n->op->forward(n) != FU_OK) return NULL;
    return n->out;
}

void *fu_node_saved(fu_node *n, size_t bytes) {
    if (!n->saved) n->saved = fu_arena_alloc(&n->graph->arena, bytes);
    return n->saved;
}

float *fu_in_grad(fu_node *n, int i) {
    fu_tensor *t = n->in[i];
    return t->requires_grad ? t->grad : NULL;
}

int fu_graph_forward(fu_graph *g) {
    if (!g) return fu_fail(FU_E_INPUT, "graph_forward: NULL graph");
    for (int i = 0; i < g->n_nodes; i++) {
        int rc = g->nodes[i]->op->forward(g->nodes[i]);
        if (rc != FU_OK) return rc;
    }
    return FU_OK;
}

/* Gives a reached node's inputs that are intermediates needing a gradient their (zeroed)
 * buffer, unless an earlier consumer already did. */
static int lend_input_grads(fu_graph *g, fu_node *n) {
    for (int k = 0; k < n->n_in; k++) {
        fu_tensor *t = n->in[k];
        if (!t->node || !t->requires_grad || t->grad) continue;
        if (!(t->grad = grad_acquire(g, (size_t)t->numel * sizeof(float)))) return FU_E_INTERNAL;
    }
    return FU_OK;
}

int fu_graph_backward(fu_graph *g, fu_tensor *out, const float *seed) {
    if (!g || !out) return fu_fail(FU_E_INPUT, "graph_backward: NULL %s", g ? "output" : "graph");
    if (!out->node || out->node->graph != g) return fu_fail(FU_E_INPUT, "graph_backward: output is not produced by this graph");
    if (!out->requires_grad) return fu_fail(FU_E_INPUT, "graph_backward: output does not depend on any tensor that requires a gradient");
    release_all_grads(g);
    for (int i = 0; i < g->n_nodes; i++) g->nodes[i]->reached = 0;
    if (!(out->grad = grad_acquire(g, (size_t)out->numel * sizeof(float)))) return FU_E_INTERNAL;
    for (int64_t i = 0; i < out->numel; i++) out->grad[i] = seed ? seed[i] : 1.0f;
    out->node->reached = 1;
    fu_clear_error();   /* an op's backward returns nothing and reports a failure (out of memory) here */
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        fu_node *n = g->nodes[i];
        if (!n->reached || !n->out->requires_grad) continue;
        int rc = lend_input_grads(g, n);
        if (rc != FU_OK) {
            release_all_grads(g);
            return rc;
        }
        n->op->backward(n);
        if (fu_last_code() != FU_OK) {
            release_all_grads(g);
            return fu_last_code();
        }
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k]->node) n->in[k]->node->reached = 1;
        if (!g->retain_grads) grad_release(g, n->out);
    }
    return FU_OK;
}

int fu_check_ndim(const char *op, const fu_tensor *t, int ndim) {
    if (t->ndim == ndim) return 1;
    char buf[96];
    fu_fail(FU_E_INPUT, "%s: expected a %d-d tensor, got %s", op, ndim, fu_shape_str(t, buf, sizeof buf));
    return 0;
}
