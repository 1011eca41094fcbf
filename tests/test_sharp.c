/* faceup's sharpening stage and sharp generator (src/gen/sr.c, src/gen/sharp.c), its training
 * with exact resume (src/train/train_sharp.c) and the class-balanced face loader. Tiny configs
 * (8x8 VAE faces sharpened to 16x16) keep each test around a second. */
#include "test.h"
#include <cjson/cJSON.h>
#include "util.h"
#include "core/gradcheck.h"
#include "core/ops.h"
#include "gen/generator.h"
#include "gen/sharp.h"
#include "io/image.h"
#include "io/safetensors.h"
#include "data/faces.h"
#include "train/train_generator.h"
#include "train/train_sharp.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const fu_vae_config tiny_vae = {8, 2, 4};
static const fu_sr_config tiny_sr = {4, 1};

/* At initialisation the stage is close to the bicubic upscale of its input (the global residual
 * with a small RGB conv), with the right shapes; bad inputs and configs are refused. */
TEST(sr_starts_near_bicubic_upscale) {
    fu_sr_config c = fu_sr_default_config();
    fu_sr *m = fu_sr_new(&c, 1);
    REQUIRE(m);
    CHECK_MSG(fu_sr_param_count(m) < 200000, "the default stage has %lld parameters", (long long)fu_sr_param_count(m));
    fu_graph *g = fu_graph_new();
    fu_rng r;
    fu_rng_seed(&r, 2);
    fu_tensor *x = randn_leaf(&r, 4, (int64_t[]){2, 3, 16, 16}, 0);
    fu_rng_fill_uniform(&r, x->data, x->numel, -1, 1);
    fu_tensor *y = fu_sr_forward(g, m, x), *up = fu_resize_bicubic(g, x, 32, 32);
    REQUIRE(y && up);
    CHECK(y->ndim == 4 && y->shape[0] == 2 && y->shape[1] == 3 && y->shape[2] == 32 && y->shape[3] == 32);
    double diff = 0, scale = 0;
    for (int64_t i = 0; i < y->numel; i++) diff += fabs(y->data[i] - up->data[i]), scale += fabs(up->data[i]);
    CHECK_MSG(diff < 0.2 * scale && diff > 0, "stage vs bicubic: mean |diff| %.4f, mean |bicubic| %.4f", diff / (double)y->numel, scale / (double)y->numel);
    fu_tensor *bad = randn_leaf(&r, 4, (int64_t[]){1, 1, 8, 8}, 0);
    CHECK(fu_sr_forward(g, m, bad) == NULL && strstr(fu_last_error(), "[N,3,S,S]"));
    fu_tensor_free(bad);
    fu_tensor_free(x);
    fu_graph_free(g);
    fu_sr_free(m);
    fu_sr_config odd = {5, 1};
    CHECK(fu_sr_new(&odd, 1) == NULL && strstr(fu_last_error(), "channels 5"));
}

static fu_tensor *build_sr(fu_graph *g, fu_tensor **in, void *ctx) { return fu_sr_forward(g, ctx, in[0]); }

/* Gradients to the input (what the search needs) and to every weight, against finite differences. */
TEST(sr_gradients_to_input_and_weights) {
    fu_sr *m = fu_sr_new(&tiny_sr, 3);
    REQUIRE(m && fu_sr_requires_grad(m, 1) == FU_OK);
    fu_rng r;
    fu_rng_seed(&r, 4);
    fu_tensor *in[1 + FU_SR_MAX_PARAMS];
    in[0] = randn_leaf(&r, 4, (int64_t[]){2, 3, 6, 6}, 1);
    for (int i = 0; i < m->n_params; i++) {
        in[1 + i] = m->params[i];
        /* biases away from zero keep pre-activations off the leaky relus' kink */
        for (int64_t k = 0; m->params[i]->ndim == 1 && k < m->params[i]->numel; k++)
            m->params[i]->data[k] = (fu_rng_uniform(&r) < 0.5f ? -1 : 1) * (0.5f + 0.5f * fu_rng_uniform(&r));
    }
    fu_gradcheck_opts o = {.eps = 1e-3f, .atol = 5e-3f, .rtol = 5e-2f, .max_checks = 16, .seed = 5};
    fu_gradcheck_result res;
    CHECK_MSG(fu_gradcheck(build_sr, in, 1 + m->n_params, m, &o, &res) == FU_OK, "%s", fu_last_error());
    fu_tensor_free(in[0]);
    fu_sr_free(m);
}

/* A tiny VAE with a fitted prior, saved as PATH. */
static void tiny_vae_file(const char *path, const fu_faces *small) {
    fu_vae *v = fu_vae_new(&tiny_vae, 7);
    int64_t n = 0;
    REQUIRE(v && fu_vae_fit_prior(v, small, FU_SPLIT_TRAIN, &n) == FU_OK && fu_vae_save(v, path) == FU_OK);
    fu_vae_free(v);
}

/* The file round-trips, opens as a generator of twice the VAE's resolution whose image is the
 * stage applied to the decoder's; broken files are refused with their problem named. */
TEST(sharp_file_roundtrip_generator_and_bad_files) {
    fu_faces *small = synthetic_face_set(8, 20);
    char vae_path[512], path[512], bad[512];
    snprintf(vae_path, sizeof vae_path, "%s/sharp_vae.safetensors", fu_test_tmpdir());
    snprintf(path, sizeof path, "%s/sharp_tiny.safetensors", fu_test_tmpdir());
    snprintf(bad, sizeof bad, "%s/sharp_bad.safetensors", fu_test_tmpdir());
    tiny_vae_file(vae_path, small);
    fu_vae *v = NULL;
    REQUIRE(fu_vae_load(vae_path, &v) == FU_OK);
    fu_sr *s = fu_sr_new(&tiny_sr, 8);
    REQUIRE(s && fu_sharp_save(v, s, path) == FU_OK);
    fu_sharp m;
    REQUIRE(fu_sharp_load(path, &m) == FU_OK);
    CHECK(m.sr->cfg.channels == 4 && m.sr->cfg.blocks == 1 && m.vae->prior_mean);
    for (int i = 0; i < s->n_params; i++) CHECK(tensor_equals(m.sr->params[i], s->params[i]->data, s->params[i]->numel));
    fu_generator *gen = NULL;
    REQUIRE(fu_generator_open(path, NULL, &gen) == FU_OK);
    CHECK(!strcmp(gen->kind, "vae+sr") && gen->resolution == 16 && gen->n_latent == 1 && gen->latent_dim == 4);
    fu_graph *g = fu_graph_new();
    fu_tensor *z = fu_graph_tensor(g, 3, (int64_t[]){1, 1, 4});
    fu_rng r;
    fu_rng_seed(&r, 9);
    fu_rng_fill_normal(&r, z->data, 4, 0, 1);
    fu_tensor *img = gen->build(gen, g, z, NULL, NULL);
    fu_tensor *zz = fu_reshape(g, z, 2, (int64_t[]){1, 4});
    fu_tensor *direct = fu_scale_shift(g, fu_sharp_decode(g, &m, fu_vae_prior_latent(g, m.vae, zz)), 0.5f, 0.5f);
    REQUIRE(img && direct);
    CHECK(img->shape[2] == 16 && tensor_equals(img, direct->data, direct->numel));
    fu_tensor *thumb = fu_graph_tensor(g, 4, (int64_t[]){1, 3, 4, 4});
    fu_tensor_fill(thumb, 0.5f);
    CHECK(gen->init_latent(gen, thumb, z) == FU_OK && isfinite(z->data[0]));
    fu_graph_free(g);
    fu_generator_free(gen);
    /* The VAE alone is still a 8 px VAE generator; the stage alone (a discriminator or stage file
     * given as a generator) is refused; so is a non-finite weight. */
    REQUIRE(fu_generator_open(vae_path, NULL, &gen) == FU_OK);
    CHECK(!strcmp(gen->kind, "vae") && gen->resolution == 8);
    fu_generator_free(gen);
    fu_st_item items[FU_SR_MAX_PARAMS];
    for (int i = 0; i < s->n_params; i++) items[i] = (fu_st_item){s->params[i]->name, s->params[i], FU_F32};
    REQUIRE(fu_st_save(bad, items, s->n_params, NULL, 0) == FU_OK);
    CHECK(fu_generator_open(bad, NULL, &gen) == FU_E_INPUT && gen == NULL && strstr(fu_last_error(), "without its VAE"));
    fu_tensor *w0 = m.sr->params[2];
    w0->data[3] = NAN;
    char w0_name[sizeof w0->name];
    snprintf(w0_name, sizeof w0_name, "%s", w0->name);
    REQUIRE(fu_sharp_save(m.vae, m.sr, bad) == FU_OK);
    fu_sharp_release(&m);
    CHECK(fu_sharp_load(bad, &m) == FU_E_INPUT && strstr(fu_last_error(), "non-finite") && strstr(fu_last_error(), w0_name));
    fu_sharp_release(&m);
    fu_vae_free(v);
    fu_sr_free(s);
    fu_faces_free(small);
}

/* Every race group is drawn equally often, whatever its size, and the draw is a function of the
 * position alone. */
TEST(faces_balanced_loader_evens_out_groups) {
    fu_faces *set = synthetic_face_set(8, 60);
    for (int64_t i = 0; i < set->count; i++) {
        set->labels[i].split = FU_SPLIT_TRAIN;
        set->labels[i].race = (int8_t)(i < 40 ? 0 : (i < 55 ? 2 : 1));   /* 40 / 5 / 15 */
    }
    fu_faces_loader a, b;
    REQUIRE(fu_faces_loader_init_balanced(&a, set, FU_SPLIT_TRAIN, 3, 1) == FU_OK);
    REQUIRE(fu_faces_loader_init_balanced(&b, set, FU_SPLIT_TRAIN, 3, 1) == FU_OK);
    enum { N = 300 };
    int64_t idx[N], again[10];
    float *x = malloc(sizeof(float) * 3 * 8 * 8 * N);
    fu_faces_loader_batch(&a, 0, N, x, idx);
    fu_faces_loader_batch(&b, 120, 10, x, again);
    int count[3] = {0};
    for (int k = 0; k < N; k++) count[set->labels[idx[k]].race]++;
    CHECK_MSG(count[0] == 100 && count[1] == 100 && count[2] == 100, "drawn %d / %d / %d", count[0], count[1], count[2]);
    CHECK(memcmp(again, idx + 120, sizeof again) == 0);
    free(x);
    fu_faces_loader_free(&a);
    fu_faces_loader_free(&b);
    fu_faces_free(set);
}

static fu_sharp_train_config tiny_run(const char *vae, const char *out, int64_t steps) {
    fu_sharp_train_config c = fu_sharp_train_defaults();
    c.vae = vae, c.out = out, c.model = tiny_sr, c.disc_channels = 2, c.steps = steps, c.batch = 4;
    c.lr_g = 3e-3f, c.seed = 9, c.adv_start = 3, c.adv_ramp = 4, c.sample_every = 0, c.checkpoint_every = 0;
    return c;
}

static int same_stage(const char *a, const char *b) {
    fu_sharp x, y;
    int same = fu_sharp_load(a, &x) == FU_OK && fu_sharp_load(b, &y) == FU_OK;
    for (int i = 0; same && i < x.sr->n_params; i++)
        same = !memcmp(x.sr->params[i]->data, y.sr->params[i]->data, sizeof(float) * (size_t)x.sr->params[i]->numel);
    fu_sharp_release(&x);
    fu_sharp_release(&y);
    return same;
}

/* 2K steps (with the GAN active in the second half) equal K + resume + K bit for bit; the files
 * beside the model are written; bad runs are refused. */
TEST(train_sharp_resume_is_exact) {
    enum { K = 6 };
    fu_faces *small = synthetic_face_set(8, 20), *set = synthetic_face_set(16, 40);
    char vae[512], full[512], split[512], sheet[512], plot[512], log[512];
    snprintf(vae, sizeof vae, "%s/ts_vae.safetensors", fu_test_tmpdir());
    snprintf(full, sizeof full, "%s/ts_full.safetensors", fu_test_tmpdir());
    snprintf(split, sizeof split, "%s/ts_split.safetensors", fu_test_tmpdir());
    snprintf(sheet, sizeof sheet, "%s/ts_split.samples.png", fu_test_tmpdir());
    snprintf(plot, sizeof plot, "%s/ts_split.loss.png", fu_test_tmpdir());
    snprintf(log, sizeof log, "%s/ts_split.runlog.jsonl", fu_test_tmpdir());
    tiny_vae_file(vae, small);
    fu_sharp_train_config a = tiny_run(vae, full, 2 * K);
    CHECK_MSG(fu_train_sharp(&a, set, NULL, NULL) == FU_OK, "%s", fu_last_error());
    fu_sharp_train_config b = tiny_run(vae, split, K);
    REQUIRE(fu_train_sharp(&b, set, NULL, NULL) == FU_OK);
    CHECK(!same_stage(full, split));
    b.steps = 2 * K, b.resume = 1, b.seed = 4242, b.vae = NULL;   /* the checkpoint's seed and VAE win */
    CHECK_MSG(fu_train_sharp(&b, set, NULL, NULL) == FU_OK, "%s", fu_last_error());
    CHECK(same_stage(full, split));
    CHECK(file_exists(sheet) && file_exists(plot) && file_exists(log));
    FILE *f = fopen(log, "r");   /* one JSON object per checkpoint, no NaN (the adversarial term starts late) */
    char line[512];
    int lines = 0;
    while (f && fgets(line, sizeof line, f)) {
        cJSON *o = cJSON_Parse(line);
        CHECK_MSG(o && cJSON_IsNumber(cJSON_GetObjectItem(o, "cpu_hours")), "run log line: %s", line);
        cJSON_Delete(o);
        lines++;
    }
    if (f) fclose(f);
    CHECK(lines == 2);   /* the split run's two ends */
    fu_tensor *img = fu_image_load(sheet);
    CHECK(img && img->shape[2] == 5 * 16 && img->shape[3] == 8 * 16);
    fu_tensor_free(img);
    b.steps = K;
    CHECK(fu_train_sharp(&b, set, NULL, NULL) == FU_E_INPUT && strstr(fu_last_error(), "beyond"));
    fu_sharp_train_config c = tiny_run(vae, full, 1);
    CHECK(fu_train_sharp(&c, small, NULL, NULL) == FU_E_INPUT && strstr(fu_last_error(), "16 px face set"));
    c.batch = 1;
    CHECK(fu_train_sharp(&c, set, NULL, NULL) == FU_E_INPUT && strstr(fu_last_error(), "batch"));
    fu_faces_free(small);
    fu_faces_free(set);
}

static void record_l1(const fu_sharp_train_status *s, void *ctx) {
    float *l = ctx;
    if (s->step <= 10) l[0] += s->l1 / 10;
    if (s->step > s->steps - 10) l[1] += s->l1 / 10;
}

/* Without the GAN the stage learns: L1 to the real faces falls by a quarter (the tiny VAE is
 * untrained, so its faces carry little of the originals and the stage cannot do much better). */
TEST(train_sharp_learns) {
    fu_faces *small = synthetic_face_set(8, 20), *set = synthetic_face_set(16, 40);
    char vae[512], out[512];
    snprintf(vae, sizeof vae, "%s/tl_vae.safetensors", fu_test_tmpdir());
    snprintf(out, sizeof out, "%s/tl_out.safetensors", fu_test_tmpdir());
    tiny_vae_file(vae, small);
    fu_sharp_train_config c = tiny_run(vae, out, 150);
    c.adv_weight = 0;
    c.model.channels = 8;
    float l1[2] = {0, 0};
    REQUIRE(fu_train_sharp(&c, set, record_l1, l1) == FU_OK);
    CHECK_MSG(l1[1] < 0.75f * l1[0], "L1 %.4f in the first 10 steps, %.4f in the last 10", l1[0], l1[1]);
    fu_faces_free(small);
    fu_faces_free(set);
}

/* The generator the search sees (prior -> decoder -> stage -> [0, 1]) against the same model
 * rebuilt in PyTorch from its own code (tests/parity/sharp_torch.py, float64): the image and the
 * gradient to the searched latent within 1e-4 of their largest magnitudes. */
TEST(sharp_generator_matches_pytorch) {
    if (access("/usr/bin/python3", X_OK) != 0 || system("/usr/bin/python3 -c 'import torch' 2>/dev/null") != 0)
        SKIP("no /usr/bin/python3 with torch (python3-torch)");
    fu_faces *small = synthetic_face_set(8, 20);
    char vae_path[512], model[512], io_path[512], cmd[1400];
    snprintf(vae_path, sizeof vae_path, "%s/parity_vae.safetensors", fu_test_tmpdir());
    snprintf(model, sizeof model, "%s/parity_sharp.safetensors", fu_test_tmpdir());
    snprintf(io_path, sizeof io_path, "%s/parity_sharp_io.safetensors", fu_test_tmpdir());
    tiny_vae_file(vae_path, small);
    fu_vae *v = NULL;
    REQUIRE(fu_vae_load(vae_path, &v) == FU_OK);
    fu_sr_config sc = {6, 2};
    fu_sr *s = fu_sr_new(&sc, 11);
    fu_rng r;
    fu_rng_seed(&r, 12);
    for (int i = 0; i < s->n_params; i++) fu_rng_fill_normal(&r, s->params[i]->data, s->params[i]->numel, 0, 0.3f);
    REQUIRE(fu_sharp_save(v, s, model) == FU_OK);
    fu_generator *gen = NULL;
    REQUIRE(fu_generator_open(model, NULL, &gen) == FU_OK);
    fu_graph *g = fu_graph_new();
    fu_tensor *w = randn_leaf(&r, 3, (int64_t[]){3, 1, 4}, 1), *rt = randn_leaf(&r, 4, (int64_t[]){3, 3, 16, 16}, 0);
    fu_tensor *img = gen->build(gen, g, w, NULL, NULL);
    fu_tensor *loss = fu_sum_all(g, fu_mul(g, img, rt));
    REQUIRE(loss && fu_graph_backward(g, loss, NULL) == FU_OK);
    fu_tensor *gw = fu_tensor_newv(2, (int64_t)3, (int64_t)4), *w2 = fu_tensor_newv(2, (int64_t)3, (int64_t)4);
    memcpy(gw->data, w->grad, sizeof(float) * (size_t)w->numel);
    memcpy(w2->data, w->data, sizeof(float) * (size_t)w->numel);
    fu_st_item items[] = {{"w", w2, FU_F32}, {"r", rt, FU_F32}, {"image", img, FU_F32}, {"grad_w", gw, FU_F32}};
    REQUIRE(fu_st_save(io_path, items, 4, NULL, 0) == FU_OK);
    snprintf(cmd, sizeof cmd, "OMP_NUM_THREADS=1 /usr/bin/python3 tests/parity/sharp_torch.py %s %s", model, io_path);
    CHECK_MSG(system(cmd) == 0, "PyTorch disagrees (see the lines above)");
    fu_tensor *all[] = {w, rt, gw, w2};
    for (int i = 0; i < 4; i++) fu_tensor_free(all[i]);
    fu_graph_free(g);
    fu_generator_free(gen);
    fu_sr_free(s);
    fu_vae_free(v);
    fu_faces_free(small);
}

static void record_d_loss(const fu_sharp_train_status *s, void *ctx) {
    float *l = ctx;
    if (s->step > s->steps - 20) l[0] += s->d_loss / 20;
}

/* The discriminator learns to tell the tiny untrained VAE's faces from real ones: its hinge loss
 * (2 at chance) falls well below chance. */
TEST(train_sharp_discriminator_learns) {
    fu_faces *small = synthetic_face_set(8, 20), *set = synthetic_face_set(16, 40);
    char vae[512], out[512];
    snprintf(vae, sizeof vae, "%s/td_vae.safetensors", fu_test_tmpdir());
    snprintf(out, sizeof out, "%s/td_out.safetensors", fu_test_tmpdir());
    tiny_vae_file(vae, small);
    fu_sharp_train_config c = tiny_run(vae, out, 200);
    c.adv_start = 0, c.adv_ramp = 0, c.lr_g = 1e-7f, c.disc_channels = 8;
    float d = 0;
    REQUIRE(fu_train_sharp(&c, set, record_d_loss, &d) == FU_OK);
    CHECK_MSG(d < 1.5f, "discriminator hinge loss %.3f over the last 20 steps (2 = chance)", d);
    fu_faces_free(small);
    fu_faces_free(set);
}
