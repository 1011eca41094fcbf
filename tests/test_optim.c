/* Optimisers: SGD and Adam against hand-computed steps (PyTorch update rules), Adam on a
 * quadratic, the spherical projection, PULSE's learning-rate schedules, state round trips. */
#include "test.h"
#include "core/optim.h"
#include "core/ops.h"
#include "core/rng.h"
#include <string.h>

static fu_tensor *param2(float a, float b) {
    fu_tensor *t = fu_tensor_newv(1, (int64_t)2);
    if (!t) return NULL;
    t->data[0] = a;
    t->data[1] = b;
    fu_tensor_requires_grad(t, 1);
    return t;
}

static void set_grad2(fu_tensor *t, float a, float b) {
    t->grad[0] = a;
    t->grad[1] = b;
}

TEST(optim_sgd_momentum_weight_decay_steps) {
    fu_tensor *x = param2(1, -2);
    REQUIRE(x);
    fu_optim_config cfg = fu_optim_sgd_defaults(0.9f);
    cfg.weight_decay = 0.1f;
    fu_optim *o = fu_optim_new(&cfg, &x, 1);
    REQUIRE(o);
    /* g = (0.5, 1) every step; g' = g + 0.1 x; buf = g' then 0.9 buf + g'; x -= lr buf. */
    const float lrs[3] = {0.1f, 0.1f, 0.05f};
    const double want[3][2] = {{0.94, -2.08}, {0.8266, -2.2312}, {0.746437, -2.338084}};
    for (int s = 0; s < 3; s++) {
        set_grad2(x, 0.5f, 1);
        REQUIRE(fu_optim_step(o, lrs[s]) == FU_OK);
        CHECK_NEAR(x->data[0], want[s][0], 1e-6);
        CHECK_NEAR(x->data[1], want[s][1], 1e-6);
    }
    fu_optim_zero_grad(o);
    CHECK(x->grad[0] == 0 && x->grad[1] == 0);
    fu_optim_free(o);
    fu_tensor_free(x);
}

TEST(optim_sgd_plain_and_nesterov) {
    fu_tensor *x = param2(1, 1), *y = param2(1, 1);
    fu_optim_config plain = fu_optim_sgd_defaults(0), nest = fu_optim_sgd_defaults(0.9f);
    nest.nesterov = 1;
    fu_optim *op = fu_optim_new(&plain, &x, 1), *on = fu_optim_new(&nest, &y, 1);
    REQUIRE(op && on);
    CHECK(op->params[0].m == NULL);  /* plain SGD keeps no state */
    for (int s = 0; s < 2; s++) {
        set_grad2(x, 1, -1);
        set_grad2(y, 1, -1);
        REQUIRE(fu_optim_step(op, 0.1f) == FU_OK && fu_optim_step(on, 0.1f) == FU_OK);
    }
    CHECK_NEAR(x->data[0], 0.8, 1e-6);
    CHECK_NEAR(x->data[1], 1.2, 1e-6);
    /* Nesterov: buf 1 -> d 1.9 -> x 0.81; buf 1.9 -> d 2.71 -> x 0.539. */
    CHECK_NEAR(y->data[0], 0.539, 1e-6);
    CHECK_NEAR(y->data[1], 1.461, 1e-6);
    fu_optim_free(op);
    fu_optim_free(on);
    fu_tensor_free(x);
    fu_tensor_free(y);
}

static void check_adam_steps(float weight_decay, const double want[3][2]) {
    fu_tensor *x = param2(1, -2);
    REQUIRE(x);
    fu_optim_config cfg = fu_optim_adam_defaults();
    cfg.weight_decay = weight_decay;
    fu_optim *o = fu_optim_new(&cfg, &x, 1);
    REQUIRE(o);
    const float grads[3][2] = {{0.5f, 1}, {-0.25f, 2}, {1, -1}}, lrs[3] = {0.1f, 0.1f, 0.05f};
    for (int s = 0; s < 3; s++) {
        set_grad2(x, grads[s][0], grads[s][1]);
        REQUIRE(fu_optim_step(o, lrs[s]) == FU_OK);
        CHECK_NEAR(x->data[0], want[s][0], 2e-6);
        CHECK_NEAR(x->data[1], want[s][1], 2e-6);
    }
    CHECK(o->step == 3);
    fu_optim_free(o);
    fu_tensor_free(x);
}

TEST(optim_adam_steps) {
    /* m = 0.9 m + 0.1 g, v = 0.999 v + 0.001 g^2, x -= lr/(1-0.9^t) m / (sqrt(v)/sqrt(1-0.999^t) + 1e-8),
     * evaluated in double by hand; the first step moves each entry by lr * sign(g). */
    const double plain[3][2] = {{0.9, -2.1}, {0.8733662987, -2.1965182010}, {0.8404607192, -2.2175226660}};
    const double decayed[3][2] = {{0.9, -2.1}, {0.8544413675, -2.1952720096}, {0.8179728837, -2.2096573954}};
    check_adam_steps(0, plain);
    check_adam_steps(0.1f, decayed);
}

TEST(optim_adam_minimises_quadratic) {
    fu_rng r;
    fu_rng_seed(&r, 21);
    int64_t s[2] = {3, 5};
    fu_tensor *x = fu_tensor_new(2, s), *c = fu_tensor_new(2, s);
    REQUIRE(x && c);
    fu_rng_fill_normal(&r, x->data, x->numel, 0, 2);
    fu_rng_fill_normal(&r, c->data, c->numel, 0, 2);
    fu_tensor_requires_grad(x, 1);
    fu_optim_config cfg = fu_optim_adam_defaults();
    fu_optim *o = fu_optim_new(&cfg, &x, 1);
    fu_graph *g = fu_graph_new();
    fu_tensor *loss = fu_mse_loss(g, x, c);
    REQUIRE(o && g && loss);
    float first = loss->data[0];
    const int steps = 300;
    for (int i = 0; i < steps; i++) {
        REQUIRE(fu_graph_forward(g) == FU_OK);
        fu_optim_zero_grad(o);
        REQUIRE(fu_graph_backward(g, loss, NULL) == FU_OK);
        REQUIRE(fu_optim_step(o, 0.2f * fu_lr_factor(FU_LR_LINEAR1CYCLEDROP, i, steps)) == FU_OK);
    }
    REQUIRE(fu_graph_forward(g) == FU_OK);
    CHECK(first > 1);
    CHECK_MSG(loss->data[0] < 1e-5f, "loss %g -> %g after %d steps", (double)first, (double)loss->data[0], steps);
    for (int64_t i = 0; i < x->numel; i++) CHECK_NEAR(x->data[i], c->data[i], 1e-2);
    fu_graph_free(g);
    fu_optim_free(o);
    fu_tensor_free(x);
    fu_tensor_free(c);
}

static double radius_of(const float *x, int64_t len) {
    double s = 0;
    for (int64_t j = 0; j < len; j++) s += (double)x[j] * x[j];
    return sqrt(s + 1e-9);
}

TEST(optim_spherical_keeps_row_radii) {
    fu_rng r;
    fu_rng_seed(&r, 22);
    /* A latent [N, L, D] (rows of D), a noise map [1, 2, 3, 4] (rows of H*W = 12, PULSE's dims
     * 2..), a matrix (rows of the last dim) and a free parameter. */
    fu_tensor *p[4] = {fu_tensor_newv(3, (int64_t)2, (int64_t)3, (int64_t)8), fu_tensor_newv(4, (int64_t)1, (int64_t)2, (int64_t)3, (int64_t)4),
                       fu_tensor_newv(2, (int64_t)3, (int64_t)5), fu_tensor_newv(1, (int64_t)6)};
    const int64_t row_len[3] = {8, 12, 5};
    for (int i = 0; i < 4; i++) {
        REQUIRE(p[i]);
        fu_rng_fill_normal(&r, p[i]->data, p[i]->numel, 0, 1 + i);
        fu_tensor_requires_grad(p[i], 1);
    }
    fu_tensor *start[4];
    for (int i = 0; i < 4; i++) start[i] = fu_tensor_clone(p[i]);
    fu_optim_config cfg = fu_optim_adam_defaults();
    fu_optim *o = fu_optim_new(&cfg, p, 4);
    REQUIRE(o);
    for (int i = 0; i < 3; i++) REQUIRE(fu_optim_set_spherical(o, i) == FU_OK);
    for (int i = 0; i < 3; i++) CHECK(o->params[i].row_len == row_len[i]);
    CHECK(o->params[3].row_len == 0);
    for (int step = 0; step < 20; step++) {
        for (int i = 0; i < 4; i++) fu_rng_fill_normal(&r, p[i]->grad, p[i]->numel, 0.5f, 1);
        REQUIRE(fu_optim_step(o, 0.3f) == FU_OK);
    }
    double worst = 0;
    for (int i = 0; i < 3; i++) {
        int64_t len = row_len[i];
        for (int64_t k = 0; k < p[i]->numel / len; k++) {
            double r0 = radius_of(start[i]->data + k * len, len), r1 = radius_of(p[i]->data + k * len, len);
            worst = fmax(worst, fabs(r1 - r0) / r0);
        }
        CHECK(fabsf(p[i]->data[0] - start[i]->data[0]) > 1e-3f);  /* it did move */
    }
    CHECK_MSG(worst < 1e-6, "worst relative radius change %.3g", worst);
    /* The free parameter drifts off its sphere. */
    CHECK(fabs(radius_of(p[3]->data, 6) - radius_of(start[3]->data, 6)) > 1e-2);
    fu_optim_free(o);
    for (int i = 0; i < 4; i++) { fu_tensor_free(p[i]); fu_tensor_free(start[i]); }
}

TEST(optim_lr_schedules_match_pulse) {
    fu_lr_schedule s;
    REQUIRE(fu_lr_schedule_parse("fixed", &s) == FU_OK && s == FU_LR_FIXED);
    CHECK(fu_lr_factor(s, 0, 100) == 1 && fu_lr_factor(s, 99, 100) == 1);
    REQUIRE(fu_lr_schedule_parse("linear1cycle", &s) == FU_OK && s == FU_LR_LINEAR1CYCLE);
    CHECK_NEAR(fu_lr_factor(s, 0, 100), 0.1, 1e-7);
    CHECK_NEAR(fu_lr_factor(s, 25, 100), 0.55, 1e-7);
    CHECK_NEAR(fu_lr_factor(s, 50, 100), 1.0, 1e-7);
    CHECK_NEAR(fu_lr_factor(s, 99, 100), 0.118, 1e-7);
    CHECK_NEAR(fu_lr_factor(s, 100, 100), 0.1, 1e-7);
    REQUIRE(fu_lr_schedule_parse("linear1cycledrop", &s) == FU_OK && s == FU_LR_LINEAR1CYCLEDROP);
    CHECK_NEAR(fu_lr_factor(s, 0, 100), 0.1, 1e-7);
    CHECK_NEAR(fu_lr_factor(s, 45, 100), 1.0, 1e-7);     /* peak at 0.45 T */
    CHECK_NEAR(fu_lr_factor(s, 89, 100), 0.12, 1e-6);    /* (9 (1 - 2|89/90 - 1/2|) + 1)/10 */
    CHECK_NEAR(fu_lr_factor(s, 90, 100), 0.1, 1e-7);     /* start of the drop */
    CHECK_NEAR(fu_lr_factor(s, 95, 100), 0.0505, 1e-7);
    CHECK_NEAR(fu_lr_factor(s, 99, 100), 0.0109, 1e-7);  /* last step PULSE takes */
    CHECK_NEAR(fu_lr_factor(s, 100, 100), 0.001, 1e-7);
    CHECK(fu_lr_schedule_parse("cosine", &s) == FU_E_INPUT);
    CHECK(strstr(fu_last_error(), "linear1cycledrop") != NULL);
}

TEST(optim_state_round_trip) {
    fu_tensor *a = fu_tensor_newv(3, (int64_t)1, (int64_t)2, (int64_t)3), *b = NULL;
    REQUIRE(a);
    for (int i = 0; i < 6; i++) a->data[i] = (float)(i + 1);
    fu_tensor_requires_grad(a, 1);
    b = fu_tensor_clone(a);
    fu_tensor_requires_grad(b, 1);
    fu_optim_config cfg = fu_optim_adam_defaults();
    fu_optim *oa = fu_optim_new(&cfg, &a, 1), *ob = fu_optim_new(&cfg, &b, 1);
    REQUIRE(oa && ob);
    REQUIRE(fu_optim_set_spherical(oa, 0) == FU_OK && fu_optim_set_spherical(ob, 0) == FU_OK);
    CHECK(fu_optim_state_numel(oa) == 6 + 6 + 2);
    for (int s = 0; s < 3; s++) {
        for (int i = 0; i < 6; i++) a->grad[i] = (float)((i * 7 + s * 3) % 5) - 2;
        REQUIRE(fu_optim_step(oa, 0.1f) == FU_OK);
    }
    /* Restore a checkpoint into ob: parameters, buffers and the step count. */
    float state[14];
    fu_optim_state_get(oa, state);
    REQUIRE(fu_optim_state_set(ob, state, 14) == FU_OK);
    ob->step = oa->step;
    fu_tensor_copy_data(b, a);
    for (int i = 0; i < 6; i++) a->grad[i] = b->grad[i] = 0.5f * (float)i - 1;
    REQUIRE(fu_optim_step(oa, 0.1f) == FU_OK && fu_optim_step(ob, 0.1f) == FU_OK);
    CHECK(memcmp(a->data, b->data, 6 * sizeof(float)) == 0);
    CHECK(fu_optim_state_set(ob, state, 13) == FU_E_INPUT);
    fu_optim_free(oa);
    fu_optim_free(ob);
    fu_tensor_free(a);
    fu_tensor_free(b);
}

TEST(optim_rejects_bad_arguments) {
    fu_tensor *x = param2(1, 2), *frozen = fu_tensor_newv(1, (int64_t)2);
    fu_optim_config cfg = fu_optim_adam_defaults();
    CHECK(fu_optim_new(&cfg, &frozen, 1) == NULL);
    CHECK(strstr(fu_last_error(), "not a leaf with a gradient") != NULL);
    CHECK(fu_optim_new(&cfg, (fu_tensor *[]){x, x}, 2) == NULL);
    CHECK(strstr(fu_last_error(), "repeats") != NULL);
    CHECK(fu_optim_new(&cfg, (fu_tensor *[]){NULL}, 1) == NULL);
    CHECK(fu_optim_new(NULL, &x, 1) == NULL);
    cfg.beta2 = 1;
    CHECK(fu_optim_new(&cfg, &x, 1) == NULL);
    fu_optim_config sgd = fu_optim_sgd_defaults(0);
    sgd.nesterov = 1;
    CHECK(fu_optim_new(&sgd, &x, 1) == NULL);
    sgd = fu_optim_sgd_defaults(0.9f);
    fu_optim *o = fu_optim_new(&sgd, &x, 1);
    REQUIRE(o);
    CHECK(fu_optim_step(o, -1) == FU_E_INPUT);
    CHECK(fu_optim_step(o, NAN) == FU_E_INPUT);
    CHECK(fu_optim_set_spherical(o, 1) == FU_E_INPUT);
    CHECK(o->step == 0);
    fu_optim_free(o);
    fu_tensor_free(x);
    fu_tensor_free(frozen);
}
