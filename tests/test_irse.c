/* IR-SE ResNet (src/face/irse.c) on a tiny config: shapes, names, gradients of the whole net,
 * batch-norm train/eval behaviour, safetensors round trip. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "test.h"
#include "util.h"
#include "core/gradcheck.h"
#include "core/ops.h"
#include "face/irse.h"
#include "io/safetensors.h"

static fu_irse_config tiny_config(void) {
    return (fu_irse_config){.units = {1, 2, 1, 1}, .channels = {4, 8, 8, 16}, .input_size = 16,
                            .embedding = 6, .se_reduction = 4, .dropout = 0};
}

static fu_irse *tiny_model(uint64_t seed) {
    fu_irse_config cfg = tiny_config();
    fu_rng r;
    fu_rng_seed(&r, seed);
    return fu_irse_new(&cfg, &r);
}

static fu_tensor *find(const fu_irse *m, const char *name) {
    for (int i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->tensors[i]->name, name)) return m->tensors[i];
    return NULL;
}

TEST(irse_shapes_and_names) {
    fu_irse *m = tiny_model(1);
    REQUIRE(m);
    fu_rng r;
    fu_rng_seed(&r, 2);
    fu_tensor *x = randn_leaf(&r, 4, (int64_t[]){3, 3, 16, 16}, 0);
    fu_graph *g = fu_graph_new();
    g->training = 1;
    fu_tensor *e = fu_irse_forward(g, m, x);
    REQUIRE(e);
    CHECK(e->ndim == 2 && e->shape[0] == 3 && e->shape[1] == 6);
    /* 5 units; a conv shortcut only where the channels change (units 1: 4 -> 8, 4: 8 -> 16),
     * else a stride-2 subsampling (units 0, 3) or the identity (unit 2). */
    CHECK(m->n_units == 5);
    CHECK(!m->units[0].shortcut_conv && m->units[0].stride == 2);
    CHECK(m->units[1].shortcut_conv && m->units[1].stride == 2);
    CHECK(!m->units[2].shortcut_conv && m->units[2].stride == 1);
    CHECK(!m->units[3].shortcut_conv && m->units[3].stride == 2);
    fu_tensor *t = find(m, "body.4.res_layer.6.fc1.weight");
    CHECK(t && t->shape[0] == 4 && t->shape[1] == 16);
    t = find(m, "output_layer.3.weight");
    CHECK(t && t->shape[0] == 6 && t->shape[1] == 16 * 1 * 1);
    CHECK(find(m, "input_layer.1.running_var") && !find(m, "body.3.shortcut_layer.0.weight"));
    fu_tensor *p[256], *b[256];
    int np = fu_irse_params(m, p), nb = fu_irse_buffers(m, b);
    CHECK(np + nb == m->n_tensors && nb > 0);
    for (int i = 0; i < nb; i++) CHECK(strstr(b[i]->name, "running_"));
    /* wrong input size */
    fu_tensor *bad = randn_leaf(&r, 4, (int64_t[]){1, 3, 32, 32}, 0);
    CHECK(fu_irse_forward(g, m, bad) == NULL && strstr(fu_last_error(), "[N,3,16,16]"));
    fu_tensor_free(bad);
    fu_tensor_free(x);
    fu_graph_free(g);
    fu_irse_free(m);
}

TEST(irse_rejects_bad_config) {
    fu_irse_config c = tiny_config();
    c.input_size = 24;
    CHECK(fu_irse_check_config(&c) == FU_E_INPUT);
    c = tiny_config();
    c.se_reduction = 32;
    CHECK(fu_irse_check_config(&c) == FU_E_INPUT);
    c = tiny_config();
    c.units[2] = 0;
    CHECK(fu_irse_check_config(&c) == FU_E_INPUT);
    CHECK(fu_irse_arch("irse51", &c) == FU_E_INPUT);
    REQUIRE(fu_irse_arch("irse100", &c) == FU_OK);
    CHECK(c.units[0] + c.units[1] + c.units[2] + c.units[3] == 49);  /* 3 convs + 2*49 + fc = 100 layers */
    char s[256];
    fu_irse_config back;
    fu_irse_config_format(&c, s, sizeof s);
    REQUIRE(fu_irse_config_parse(s, &back) == FU_OK);
    CHECK(!memcmp(&c, &back, sizeof c));
    strcat(s, "x");
    CHECK(fu_irse_config_parse(s, &back) == FU_E_INPUT);
}

typedef struct { fu_irse *m; int training; } net_ctx;

static fu_tensor *build_net(fu_graph *g, fu_tensor **in, void *ctx) {
    net_ctx *c = ctx;
    g->training = c->training;
    return fu_irse_forward(g, c->m, in[0]);
}

/* The whole net's gradient w.r.t. the input and weights deep in the net, in both modes. */
static void gradcheck_net(int training) {
    /* 32x32 input: 2x2 maps at the end, so the training-mode batch norms there see 16 values
     * per channel rather than 4 and amplify float32 rounding less */
    fu_irse_config cfg = tiny_config();
    cfg.input_size = 32;
    fu_rng r;
    fu_rng_seed(&r, 3);
    fu_irse *m = fu_irse_new(&cfg, &r);
    REQUIRE(m);
    fu_tensor *x = randn_leaf(&r, 4, (int64_t[]){4, 3, 32, 32}, 1);
    if (!training)  /* non-trivial running statistics for eval */
        for (int i = 0; i < m->n_tensors; i++) {
            fu_tensor *t = m->tensors[i];
            if (strstr(t->name, "running_mean")) fu_rng_fill_uniform(&r, t->data, t->numel, -0.2f, 0.2f);
            if (strstr(t->name, "running_var")) fu_rng_fill_uniform(&r, t->data, t->numel, 0.5f, 2.0f);
        }
    fu_tensor *in[] = {x, m->stem_conv, m->stem_prelu, m->units[1].conv2, m->units[2].se_fc1,
                       m->units[3].bn3.weight, m->units[4].shortcut_conv, m->fc_weight, m->out_bn1d.bias};
    net_ctx c = {m, training};
    fu_gradcheck_opts o = {1e-3f, 3e-3f, 3e-2f, 16, 7};
    fu_gradcheck_result res = {0};
    int rc = fu_gradcheck(build_net, in, 9, &c, &o, &res);
    REQUIRE(rc == FU_OK || rc == FU_E_INTERNAL);
    CHECK(res.n_checked >= 100);
    /* Thousands of PReLU / ReLU kinks: a central difference occasionally straddles one (about
     * 1 entry in 100 here), while a wrong backward term breaks most entries of an input. */
    CHECK_MSG(res.n_failed <= res.n_checked / 30, "%s: %d of %d entries wrong (%s)",
              training ? "training" : "eval", res.n_failed, res.n_checked, fu_last_error());
    fu_tensor_free(x);
    fu_irse_free(m);
}

TEST(irse_gradcheck_training) { gradcheck_net(1); }
TEST(irse_gradcheck_eval) { gradcheck_net(0); }

/* Training uses batch statistics and moves the running ones; eval uses the running ones, so a
 * sample's embedding does not depend on the rest of the batch there. */
TEST(irse_batch_norm_modes) {
    fu_irse *m = tiny_model(5);
    REQUIRE(m);
    fu_rng r;
    fu_rng_seed(&r, 6);
    fu_tensor *x = randn_leaf(&r, 4, (int64_t[]){4, 3, 16, 16}, 0);
    fu_tensor *x2 = fu_tensor_clone(x);
    for (int64_t i = x->numel / 2; i < x->numel; i++) x2->data[i] += 1.5f;  /* other samples 2, 3 */
    fu_graph *g = fu_graph_new();
    fu_tensor *rv = m->stem_bn.running_var, *rm = m->out_bn1d.running_mean;
    /* eval: running stats unchanged, sample 0 independent of samples 2-3 */
    float e_a[6], e_b[6];
    fu_tensor *e = fu_irse_forward(g, m, x);
    REQUIRE(e);
    memcpy(e_a, e->data, sizeof e_a);
    CHECK(rv->data[0] == 1 && rm->data[0] == 0);
    fu_graph_reset(g);
    REQUIRE((e = fu_irse_forward(g, m, x2)));
    memcpy(e_b, e->data, sizeof e_b);
    CHECK(!memcmp(e_a, e_b, sizeof e_a));
    /* training: running stats move, sample 0 depends on the batch */
    fu_graph_reset(g);
    g->training = 1;
    REQUIRE((e = fu_irse_forward(g, m, x)));
    memcpy(e_a, e->data, sizeof e_a);
    CHECK(rv->data[0] != 1 && rm->data[0] != 0);
    float rv_after = rv->data[0];
    fu_graph_reset(g);
    REQUIRE((e = fu_irse_forward(g, m, x2)));
    CHECK(memcmp(e_a, e->data, sizeof e_a) != 0);
    CHECK(rv->data[0] != rv_after);
    /* eval after training uses the moved statistics: differs from the first eval */
    fu_graph_reset(g);
    g->training = 0;
    REQUIRE((e = fu_irse_forward(g, m, x)));
    CHECK(memcmp(e->data, e_b, sizeof e_b) != 0);
    fu_tensor_free(x);
    fu_tensor_free(x2);
    fu_graph_free(g);
    fu_irse_free(m);
}

TEST(irse_save_load_round_trip) {
    fu_irse *m = tiny_model(8);
    REQUIRE(m);
    m->stem_bn.running_mean->data[1] = 0.25f;  /* buffers are saved too */
    char path[512];
    snprintf(path, sizeof path, "%s/irse_tiny.safetensors", fu_test_tmpdir());
    REQUIRE(fu_irse_save(m, path) == FU_OK);
    fu_irse *back = fu_irse_load(path);
    REQUIRE(back);
    CHECK(!memcmp(&back->cfg, &m->cfg, sizeof m->cfg) && back->n_tensors == m->n_tensors);
    for (int i = 0; i < m->n_tensors; i++) {
        CHECK(!strcmp(back->tensors[i]->name, m->tensors[i]->name));
        CHECK(!memcmp(back->tensors[i]->data, m->tensors[i]->data, (size_t)m->tensors[i]->numel * sizeof(float)));
        CHECK(back->tensors[i]->requires_grad == m->tensors[i]->requires_grad);
    }
    fu_irse_free(back);
    /* a file without a tensor is refused by name */
    fu_st_item item = {"input_layer.0.weight", m->stem_conv, FU_F32};
    char conf[256];
    fu_irse_config_format(&m->cfg, conf, sizeof conf);
    fu_st_meta meta = {"irse_config", conf};
    REQUIRE(fu_st_save(path, &item, 1, &meta, 1) == FU_OK);
    CHECK(fu_irse_load(path) == NULL && strstr(fu_last_error(), "input_layer.1.weight"));
    fu_irse_free(m);
}

/* The same net in PyTorch (tests/parity/irse_torch.py, float64, weights loaded by name from the
 * file fu_irse_save writes): eval and training embeddings, gradients w.r.t. the input and the
 * stem convolution, and a running variance after the training pass, within 1e-4 of each
 * result's largest magnitude. */
TEST(irse_matches_pytorch) {
    if (access("/usr/bin/python3", X_OK) != 0 || system("/usr/bin/python3 -c 'import torch' 2>/dev/null") != 0)
        SKIP("no /usr/bin/python3 with torch (python3-torch)");
    fu_irse_config cfg = {.units = {1, 2, 1, 1}, .channels = {8, 16, 16, 32}, .input_size = 32, .embedding = 12,
                          .se_reduction = 4, .dropout = 0};
    fu_rng r;
    fu_rng_seed(&r, 21);
    fu_irse *m = fu_irse_new(&cfg, &r);
    REQUIRE(m);
    /* non-trivial batch-norm affine parameters, running statistics and PReLU slopes */
    for (int i = 0; i < m->n_tensors; i++) {
        fu_tensor *t = m->tensors[i];
        if (t->ndim != 1) continue;
        float lo = strstr(t->name, "running_var") || strstr(t->name, ".weight") ? 0.5f : -0.3f;
        fu_rng_fill_uniform(&r, t->data, t->numel, lo, lo + 1);
    }
    char model[512], io_path[512], cmd[1400];
    snprintf(model, sizeof model, "%s/irse_parity_model.safetensors", fu_test_tmpdir());
    snprintf(io_path, sizeof io_path, "%s/irse_parity_io.safetensors", fu_test_tmpdir());
    REQUIRE(fu_irse_save(m, model) == FU_OK);
    fu_tensor *x = randn_leaf(&r, 4, (int64_t[]){4, 3, 32, 32}, 1);
    fu_tensor *rt = randn_leaf(&r, 2, (int64_t[]){4, 12}, 0);
    fu_graph *g = fu_graph_new();
    fu_tensor *e = fu_irse_forward(g, m, x);
    REQUIRE(e);
    fu_tensor *e_eval = fu_tensor_clone(e);
    fu_graph_reset(g);
    g->training = 1;
    fu_tensor *emb = fu_irse_forward(g, m, x);
    fu_tensor *loss = fu_sum_all(g, fu_mul(g, emb, rt));
    REQUIRE(loss && fu_graph_backward(g, loss, NULL) == FU_OK);
    fu_tensor *e_train = fu_tensor_clone(emb);
    fu_tensor *gx = fu_tensor_clone(x), *gs = fu_tensor_clone(m->stem_conv);
    memcpy(gx->data, x->grad, (size_t)x->numel * sizeof(float));
    memcpy(gs->data, m->stem_conv->grad, (size_t)gs->numel * sizeof(float));
    fu_st_item items[] = {{"x", x, FU_F32}, {"r", rt, FU_F32}, {"eval", e_eval, FU_F32}, {"train", e_train, FU_F32},
                          {"grad_x", gx, FU_F32}, {"grad_stem", gs, FU_F32}, {"running_var", m->units[1].bn2.running_var, FU_F32}};
    REQUIRE(fu_st_save(io_path, items, 7, NULL, 0) == FU_OK);
    snprintf(cmd, sizeof cmd, "OMP_NUM_THREADS=1 /usr/bin/python3 tests/parity/irse_torch.py %s %s", model, io_path);
    CHECK_MSG(system(cmd) == 0, "PyTorch disagrees (see the lines above)");
    fu_tensor *all[] = {x, rt, e_eval, e_train, gx, gs};
    for (int i = 0; i < 6; i++) fu_tensor_free(all[i]);
    fu_graph_free(g);
    fu_irse_free(m);
}
