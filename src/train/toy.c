#include "toy.h"
#include "core/error.h"
#include "core/ops.h"
#include "core/optim.h"
#include "core/rng.h"
#include <math.h>
#include <stdlib.h>

#define TOY_SIZE 8
#define TOY_HIDDEN 8

fu_toy_config fu_toy_defaults(void) { return (fu_toy_config){150, 16, 0.02f, 1}; }

typedef struct { fu_tensor *w1, *b1, *w2, *b2; } toy_net;

/* He-style init: N(0, 2/fan_in). */
static int toy_net_init(toy_net *net, fu_rng *r) {
    net->w1 = fu_tensor_newv(4, (int64_t)TOY_HIDDEN, (int64_t)1, (int64_t)3, (int64_t)3);
    net->b1 = fu_tensor_newv(1, (int64_t)TOY_HIDDEN);
    net->w2 = fu_tensor_newv(4, (int64_t)2, (int64_t)TOY_HIDDEN, (int64_t)3, (int64_t)3);
    net->b2 = fu_tensor_newv(1, (int64_t)2);
    fu_tensor *all[4] = {net->w1, net->b1, net->w2, net->b2};
    for (int i = 0; i < 4; i++) {
        if (!all[i] || fu_tensor_requires_grad(all[i], 1) != FU_OK) return FU_E_INTERNAL;
    }
    fu_rng_fill_normal(r, net->w1->data, net->w1->numel, 0, sqrtf(2.0f / 9));
    fu_rng_fill_normal(r, net->w2->data, net->w2->numel, 0, sqrtf(2.0f / (9 * TOY_HIDDEN)));
    return FU_OK;
}

static void toy_net_free(toy_net *net) {
    fu_tensor_free(net->w1);
    fu_tensor_free(net->b1);
    fu_tensor_free(net->w2);
    fu_tensor_free(net->b2);
}

/* A bar of ones along a random row (label 0) or column (label 1), plus N(0, 0.3) noise. */
static void make_batch(fu_rng *r, float *x, int *labels, int n) {
    for (int i = 0; i < n; i++) {
        float *img = x + (int64_t)i * TOY_SIZE * TOY_SIZE;
        int vertical = (int)fu_rng_below(r, 2), pos = (int)fu_rng_below(r, TOY_SIZE);
        fu_rng_fill_normal(r, img, TOY_SIZE * TOY_SIZE, 0, 0.3f);
        for (int k = 0; k < TOY_SIZE; k++) img[vertical ? k * TOY_SIZE + pos : pos * TOY_SIZE + k] += 1;
        labels[i] = vertical;
    }
}

/* conv3x3 -> relu -> conv3x3 -> global mean -> logits [n, 2]. */
static fu_tensor *toy_forward(fu_graph *g, const toy_net *net, fu_tensor *x) {
    fu_conv_params p = {.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1};
    fu_tensor *h = fu_relu(g, fu_conv2d(g, x, net->w1, net->b1, &p));
    fu_tensor *y = fu_conv2d(g, h, net->w2, net->b2, &p);
    return fu_mean(g, y, (1u << 2) | (1u << 3), 0);
}

static float accuracy(fu_graph *g, const toy_net *net, fu_rng *r) {
    enum { N = 256 };
    int labels[N], correct = 0;
    fu_graph_reset(g);
    fu_tensor *x = fu_graph_tensor(g, 4, (int64_t[]){N, 1, TOY_SIZE, TOY_SIZE});
    if (!x) return -1;
    make_batch(r, x->data, labels, N);
    fu_tensor *logits = toy_forward(g, net, x);
    if (!logits) return -1;
    for (int i = 0; i < N; i++) correct += (logits->data[2 * i + 1] > logits->data[2 * i]) == labels[i];
    return (float)correct / N;
}

int fu_toy_train(const fu_toy_config *cfg, fu_toy_result *res,
                 fu_train_step_fn progress, void *ctx) {
    if (cfg->steps < 1 || cfg->batch < 1 || cfg->batch > 4096 || !(cfg->lr > 0))
        return fu_fail(FU_E_INPUT, "toy: steps and batch must be positive (batch <= 4096) and lr > 0");
    fu_rng r;
    fu_rng_seed(&r, cfg->seed);
    toy_net net = {0};
    fu_graph *g = fu_graph_new();
    int *labels = malloc((size_t)cfg->batch * sizeof *labels);
    fu_optim *opt = NULL;
    int rc = (g && labels) ? toy_net_init(&net, &r) : fu_fail(FU_E_INTERNAL, "toy: out of memory");
    if (rc != FU_OK) goto done;
    fu_optim_config oc = fu_optim_adam_defaults();
    opt = fu_optim_new(&oc, (fu_tensor *[]){net.w1, net.b1, net.w2, net.b2}, 4);
    if (!opt) { rc = fu_last_code(); goto done; }
    for (int step = 0; step < cfg->steps; step++) {
        fu_graph_reset(g);  /* define-by-run: rebuilt every step, allocation-free once warm */
        fu_tensor *x = fu_graph_tensor(g, 4, (int64_t[]){cfg->batch, 1, TOY_SIZE, TOY_SIZE});
        if (!x) { rc = fu_last_code(); goto done; }
        make_batch(&r, x->data, labels, cfg->batch);
        fu_tensor *loss = fu_cross_entropy(g, toy_forward(g, &net, x), labels);
        if (!loss) { rc = fu_last_code(); goto done; }
        fu_optim_zero_grad(opt);
        if ((rc = fu_graph_backward(g, loss, NULL)) != FU_OK) goto done;
        if ((rc = fu_optim_step(opt, cfg->lr)) != FU_OK) goto done;
        if (step == 0) res->first_loss = loss->data[0];
        res->final_loss = loss->data[0];
        if (progress) progress(ctx, step + 1, cfg->steps, loss->data[0]);
    }
    res->accuracy = accuracy(g, &net, &r);
    rc = res->accuracy < 0 ? fu_last_code() : FU_OK;
done:
    fu_optim_free(opt);
    toy_net_free(&net);
    fu_graph_free(g);
    free(labels);
    return rc;
}
