/* faceup's VAE generator (src/gen/vae.c), the packed face set (src/data/faces.c), generator
 * training with exact resume (src/train/train_generator.c) and the line plot (src/io/plot.c).
 * Tiny configs (8x8 images, a few channels) keep every test well under a second or two. */
#include "test.h"
#include "util.h"
#include "core/gradcheck.h"
#include "core/ops.h"
#include "io/plot.h"
#include "gen/vae.h"
#include "io/fileutil.h"
#include "io/image.h"
#include "io/safetensors.h"
#include "data/faces.h"
#include "train/train_generator.h"
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const fu_vae_config tiny = {8, 2, 4};

/* ---- model ---- */

TEST(vae_shapes_and_range) {
    fu_vae_config c = fu_vae_default_config();
    fu_vae *m = fu_vae_new(&c, 1);
    REQUIRE(m);
    int64_t n = fu_vae_param_count(m);
    CHECK_MSG(n > 3000000 && n * 4 <= 20 * 1000 * 1000, "default VAE has %lld parameters", (long long)n);
    fu_graph *g = fu_graph_new();
    fu_rng r;
    fu_rng_seed(&r, 2);
    fu_tensor *x = randn_leaf(&r, 4, (int64_t[]){2, 3, 64, 64}, 0);
    fu_tensor *logvar = NULL, *mu = fu_vae_encode(g, m, x, &logvar);
    REQUIRE(mu && logvar);
    CHECK(mu->ndim == 2 && mu->shape[0] == 2 && mu->shape[1] == 256 && fu_same_shape(mu, logvar));
    fu_tensor *y = fu_vae_decode(g, m, mu);
    REQUIRE(y);
    CHECK(y->ndim == 4 && y->shape[0] == 2 && y->shape[1] == 3 && y->shape[2] == 64 && y->shape[3] == 64);
    float lo = 1, hi = -1;
    for (int64_t i = 0; i < y->numel; i++) { lo = fminf(lo, y->data[i]); hi = fmaxf(hi, y->data[i]); }
    CHECK(lo >= -1 && hi <= 1 && hi > lo);
    CHECK(fu_vae_decode(g, m, x) == NULL && strstr(fu_last_error(), "latent"));   /* wrong shape */
    CHECK(fu_vae_encode(g, m, mu, NULL) == NULL && strstr(fu_last_error(), "[N,3,64,64]"));
    fu_tensor_free(x);
    fu_graph_free(g);
    fu_vae_free(m);
    fu_vae_config bad = {48, 32, 256};
    CHECK(fu_vae_new(&bad, 1) == NULL && strstr(fu_last_error(), "size 48"));
}

static fu_tensor *build_decode(fu_graph *g, fu_tensor **in, void *ctx) { return fu_vae_decode(g, ctx, in[0]); }

typedef struct { fu_vae *m; fu_tensor *x; } loss_ctx;
static fu_tensor *build_loss(fu_graph *g, fu_tensor **in, void *ctx) {
    loss_ctx *c = ctx;
    return fu_vae_loss(g, c->m, c->x, in[0], 0.5f, 1.0f, NULL);
}

/* Gradients of the generator to z and to every weight, and of the whole objective to the noise
 * and the weights, against finite differences. */
TEST(vae_gradients_to_latent_and_weights) {
    fu_vae *m = fu_vae_new(&tiny, 3);
    REQUIRE(m && fu_vae_requires_grad(m, 1) == FU_OK);
    fu_rng r;
    fu_rng_seed(&r, 4);
    fu_tensor *in[1 + FU_VAE_MAX_PARAMS];
    in[0] = randn_leaf(&r, 2, (int64_t[]){2, tiny.latent}, 1);
    for (int i = 0; i < m->n_params; i++) {
        in[1 + i] = m->params[i];
        /* Biases of magnitude 0.5..1 keep most pre-activations away from the leaky relus' kink,
         * where a finite difference straddling it would disagree with the one-sided slope. */
        for (int64_t k = 0; m->params[i]->ndim == 1 && k < m->params[i]->numel; k++)
            m->params[i]->data[k] = (fu_rng_uniform(&r) < 0.5f ? -1 : 1) * (0.5f + 0.5f * fu_rng_uniform(&r));
    }
    fu_gradcheck_opts o = {.eps = 1e-3f, .atol = 5e-3f, .rtol = 5e-2f, .max_checks = 16, .seed = 5};
    fu_gradcheck_result res;
    /* The decoder's inputs: z plus its own weights (the encoder's get no gradient from it). */
    fu_tensor *dec_in[1 + FU_VAE_MAX_PARAMS];
    int n_dec = 0;
    dec_in[n_dec++] = in[0];
    for (int i = 0; i < m->n_params; i++)
        if (!strncmp(m->params[i]->name, "dec.", 4)) dec_in[n_dec++] = m->params[i];
    CHECK_MSG(fu_gradcheck(build_decode, dec_in, n_dec, m, &o, &res) == FU_OK, "decode: %s", fu_last_error());
    loss_ctx c = {m, randn_leaf(&r, 4, (int64_t[]){2, 3, 8, 8}, 0)};
    fu_rng_fill_uniform(&r, c.x->data, c.x->numel, -0.9f, 0.9f);
    CHECK_MSG(fu_gradcheck(build_loss, in, 1 + m->n_params, &c, &o, &res) == FU_OK, "loss: %s", fu_last_error());
    fu_tensor_free(c.x);
    fu_tensor_free(in[0]);
    fu_vae_free(m);
}

TEST(vae_save_load_roundtrip_and_bad_files) {
    fu_vae *m = fu_vae_new(&tiny, 6);
    REQUIRE(m);
    char path[512], bad[512];
    snprintf(path, sizeof path, "%s/vae_tiny.safetensors", fu_test_tmpdir());
    REQUIRE(fu_vae_save(m, path) == FU_OK);
    fu_vae *l = NULL;
    REQUIRE(fu_vae_load(path, &l) == FU_OK);
    CHECK(l->cfg.size == 8 && l->cfg.channels == 2 && l->cfg.latent == 4 && l->n_params == m->n_params);
    for (int i = 0; i < m->n_params; i++)
        CHECK(!strcmp(l->params[i]->name, m->params[i]->name) && tensor_equals(l->params[i], m->params[i]->data, m->params[i]->numel));
    fu_vae_free(l);
    /* A file missing one tensor is refused with its name. */
    fu_st_item items[FU_VAE_MAX_PARAMS];
    for (int i = 0; i < m->n_params - 1; i++) items[i] = (fu_st_item){m->params[i]->name, m->params[i], FU_F32};
    snprintf(bad, sizeof bad, "%s/vae_missing.safetensors", fu_test_tmpdir());
    REQUIRE(fu_st_save(bad, items, m->n_params - 1, NULL, 0) == FU_OK);
    CHECK(fu_vae_load(bad, &l) == FU_E_INPUT && l == NULL && strstr(fu_last_error(), m->params[m->n_params - 1]->name));
    /* Not a VAE at all. */
    REQUIRE(fu_st_save(bad, items, 1, NULL, 0) == FU_OK);
    CHECK(fu_vae_load(bad, &l) == FU_E_INPUT && strstr(fu_last_error(), "not a faceup VAE"));
    fu_vae_free(m);
}

/* The prior maps w to z = mean + L w and back exactly; it survives save/load; a file with a
 * hostile prior (upper triangle set, zero diagonal, one half missing) is refused. */
TEST(vae_prior_roundtrip_whiten_and_bad_priors) {
    fu_vae *m = fu_vae_new(&tiny, 8);
    REQUIRE(m);
    double mean[4] = {1, -2, 0.5, 3}, cov[16] = {4, 1, 0, 0, 1, 2, 0.5, 0, 0, 0.5, 1, 0.2, 0, 0, 0.2, 3};
    REQUIRE(fu_vae_set_prior(m, mean, cov) == FU_OK);
    const float *l = m->prior_tril->data;
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
            double s = 0;
            for (int k = 0; k < 4; k++) s += (double)l[i * 4 + k] * l[j * 4 + k];
            CHECK_NEAR(s, cov[i * 4 + j], 1e-5);
        }
    fu_graph *g = fu_graph_new();
    fu_tensor *w = fu_graph_tensor(g, 2, (int64_t[]){1, 4});
    float w0[4] = {0.3f, -1.2f, 0.7f, 2.0f}, back[4];
    memcpy(w->data, w0, sizeof w0);
    fu_tensor *z = fu_vae_prior_latent(g, m, w);
    REQUIRE(z);
    CHECK_NEAR(z->data[0], 1 + 2 * 0.3, 1e-5);   /* L[0][0] = sqrt(4) */
    fu_vae_prior_whiten(m, z->data, back);
    for (int i = 0; i < 4; i++) CHECK_NEAR(back[i], w0[i], 1e-5);
    fu_graph_free(g);
    char path[512];
    snprintf(path, sizeof path, "%s/vae_prior.safetensors", fu_test_tmpdir());
    REQUIRE(fu_vae_save(m, path) == FU_OK);
    fu_vae *l2 = NULL;
    REQUIRE(fu_vae_load(path, &l2) == FU_OK);
    CHECK(l2->prior_mean && tensor_equals(l2->prior_tril, m->prior_tril->data, 16) && tensor_equals(l2->prior_mean, m->prior_mean->data, 4));
    fu_vae_free(l2);
    /* Hostile priors. */
    fu_st_item items[FU_VAE_MAX_PARAMS + 2];
    for (int i = 0; i < m->n_params; i++) items[i] = (fu_st_item){m->params[i]->name, m->params[i], FU_F32};
    items[m->n_params] = (fu_st_item){"prior.mean", m->prior_mean, FU_F32};
    items[m->n_params + 1] = (fu_st_item){"prior.scale_tril", m->prior_tril, FU_F32};
    m->prior_tril->data[1] = 0.5f;   /* above the diagonal */
    REQUIRE(fu_st_save(path, items, m->n_params + 2, NULL, 0) == FU_OK);
    CHECK(fu_vae_load(path, &l2) == FU_E_INPUT && l2 == NULL && strstr(fu_last_error(), "lower-triangular"));
    m->prior_tril->data[1] = 0;
    m->prior_tril->data[5] = 0;      /* zero on the diagonal */
    REQUIRE(fu_st_save(path, items, m->n_params + 2, NULL, 0) == FU_OK);
    CHECK(fu_vae_load(path, &l2) == FU_E_INPUT && strstr(fu_last_error(), "diagonal"));
    REQUIRE(fu_st_save(path, items, m->n_params + 1, NULL, 0) == FU_OK);   /* mean without scale */
    CHECK(fu_vae_load(path, &l2) == FU_E_INPUT && strstr(fu_last_error(), "prior.scale_tril"));
    fu_vae_free(m);
}

/* ---- face set ---- */

TEST(faces_file_roundtrip_and_corruption) {
    fu_faces *set = synthetic_face_set(8, 10);
    set->labels[3].attrs = 0x123456789ULL;
    set->labels[3].attrs_known = (1ULL << 40) - 1;
    set->labels[3].age = 71;
    set->labels[3].race = 2;
    char path[512];
    snprintf(path, sizeof path, "%s/faces.bin", fu_test_tmpdir());
    REQUIRE(fu_faces_save(set, path) == FU_OK);
    fu_faces *l = NULL;
    REQUIRE(fu_faces_load(path, &l) == FU_OK);
    CHECK(l->count == 10 && l->size == 8 && !memcmp(l->pixels, set->pixels, 10 * 3 * 64));
    for (int i = 0; i < 10; i++) CHECK(!memcmp(&l->labels[i], &set->labels[i], sizeof l->labels[i]));
    fu_faces_free(l);
    /* Truncated by one byte, and a corrupt record: refused with the file's name. */
    unsigned char *data;
    size_t n;
    REQUIRE(fu_read_file(path, 1 << 20, &data, &n) == FU_OK);
    char bad[512];
    snprintf(bad, sizeof bad, "%s/faces_bad.bin", fu_test_tmpdir());
    FILE *f = fopen(bad, "wb");
    fwrite(data, 1, n - 1, f);
    fclose(f);
    CHECK(fu_faces_load(bad, &l) == FU_E_INPUT && l == NULL && strstr(fu_last_error(), bad));
    data[24 + 96] = 9;   /* record 0's source */
    f = fopen(bad, "wb");
    fwrite(data, 1, n, f);
    fclose(f);
    CHECK(fu_faces_load(bad, &l) == FU_E_INPUT && strstr(fu_last_error(), "record 0"));
    free(data);
    fu_faces_free(set);
}

TEST(faces_loader_is_deterministic_and_covers_epochs) {
    fu_faces *set = synthetic_face_set(8, 25);   /* 20 train images */
    fu_faces_loader a, b;
    REQUIRE(fu_faces_loader_init(&a, set, FU_SPLIT_TRAIN, 7, 1) == FU_OK);
    REQUIRE(fu_faces_loader_init(&b, set, FU_SPLIT_TRAIN, 7, 1) == FU_OK);
    CHECK(a.n == 20);
    float xa[6 * 192], xb[6 * 192];
    int64_t ia[20], ib[6];
    /* Positions 17..22 straddle the first epoch boundary; b gets there cold (as after a resume). */
    fu_faces_loader_batch(&a, 0, 6, xa, NULL);
    fu_faces_loader_batch(&a, 17, 6, xa, NULL);
    fu_faces_loader_batch(&b, 17, 6, xb, ib);
    CHECK(!memcmp(xa, xb, sizeof xa));
    /* Every epoch is a permutation of the train split; epochs differ in order. */
    int seen[25] = {0}, same_order = 1;
    static float epoch_x[20 * 192];
    int64_t first[20];
    fu_faces_loader_batch(&a, 20, 20, epoch_x, ia);
    fu_faces_loader_batch(&a, 0, 20, epoch_x, first);
    for (int k = 0; k < 20; k++) {
        seen[ia[k]]++;
        CHECK(set->labels[ia[k]].split == FU_SPLIT_TRAIN);
        same_order &= ia[k] == first[k];
    }
    for (int i = 0; i < 25; i++) CHECK(seen[i] == (i % 5 == 4 ? 0 : 1));
    CHECK(!same_order);
    /* Flips: over 200 samples both orientations occur, and a flipped sample mirrors its image. */
    int flipped = 0;
    float one[192], ref[192];
    for (int64_t p = 0; p < 200; p++) {
        int64_t idx;
        fu_faces_loader_batch(&a, p, 1, one, &idx);
        fu_faces_get(set, idx, 0, ref);
        if (memcmp(one, ref, sizeof one)) {
            flipped++;
            CHECK(one[7] == ref[0] && one[8 * 3 + 2] == ref[8 * 3 + 5]);
        }
    }
    CHECK_MSG(flipped > 60 && flipped < 140, "%d of 200 flipped", flipped);
    fu_faces_loader_free(&b);
    CHECK(fu_faces_loader_init(&b, set, FU_SPLIT_TEST, 1, 0) == FU_E_INPUT);   /* empty split */
    fu_faces_loader_free(&a);
    fu_faces_free(set);
}

/* The crop is the per-source box resized: a CelebA-sized image whose left half is dark and
 * right half bright comes out dark on the left and bright on the right, in range. */
TEST(faces_crop_frames_and_resizes) {
    fu_tensor *img = fu_tensor_newv(4, (int64_t)1, (int64_t)3, (int64_t)109, (int64_t)89);
    fu_tensor *out = fu_tensor_newv(4, (int64_t)1, (int64_t)3, (int64_t)64, (int64_t)64);
    REQUIRE(img && out);
    for (int64_t c = 0; c < 3; c++)
        for (int64_t y = 0; y < 109; y++)
            for (int64_t x = 0; x < 89; x++) img->data[(c * 109 + y) * 89 + x] = x < 44 ? 0.1f : 0.9f;
    REQUIRE(fu_faces_crop(img, FU_FACES_CELEBA, out) == FU_OK);
    CHECK_NEAR(out->data[32 * 64 + 2], 0.1, 1e-3);
    CHECK_NEAR(out->data[32 * 64 + 61], 0.9, 1e-3);
    CHECK(fu_faces_crop(img, 7, out) == FU_E_INPUT);
    fu_tensor_free(img);
    fu_tensor_free(out);
}

/* A miniature data folder in the shared layout: the builder lists, labels and splits it. */
static void write_jpeg(const char *path, int w, int h, float v) {
    fu_tensor *t = fu_tensor_newv(4, (int64_t)1, (int64_t)3, (int64_t)h, (int64_t)w);
    fu_tensor_fill(t, v);
    fu_image_save_jpeg(path, t, 90);
    fu_tensor_free(t);
}

TEST(faces_build_from_folder_labels_and_split) {
    char root[512], p[1024];
    snprintf(root, sizeof root, "%s/facedata", fu_test_tmpdir());
    const char *dirs[] = {"", "/celeba", "/celeba/images", "/utkface", "/utkface/images", "/lfw", "/lfw/images",
                          "/lfw/images/Ann_B", "/lfw/images/Zed_Q"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        snprintf(p, sizeof p, "%s%s", root, dirs[i]);
        mkdir(p, 0755);
    }
    snprintf(p, sizeof p, "%s/celeba/images/000002.jpg", root); write_jpeg(p, 89, 109, 0.2f);
    snprintf(p, sizeof p, "%s/celeba/images/009001.jpg", root); write_jpeg(p, 89, 109, 0.4f);
    snprintf(p, sizeof p, "%s/celeba/list_attr_celeba.txt", root);
    FILE *f = fopen(p, "w");
    fprintf(f, "3\nA B\n000001.jpg");
    for (int a = 0; a < 40; a++) fprintf(f, " -1");
    fprintf(f, "\n000002.jpg  1");
    for (int a = 1; a < 40; a++) fprintf(f, a == 20 ? "  1" : " -1");
    fprintf(f, "\n");
    fclose(f);
    snprintf(p, sizeof p, "%s/utkface/images/34_1_3_2017.jpg.chip.jpg", root); write_jpeg(p, 200, 200, 0.6f);
    snprintf(p, sizeof p, "%s/lfw/images/Ann_B/Ann_B_0001.jpg", root); write_jpeg(p, 250, 250, 0.8f);
    snprintf(p, sizeof p, "%s/lfw/images/Zed_Q/Zed_Q_0001.jpg", root); write_jpeg(p, 250, 250, 0.8f);
    fu_faces *set = NULL;
    int64_t dropped = -1;
    REQUIRE(fu_faces_build(root, 16, FU_FACES_FRAME_BOX, 0, &set, &dropped, NULL, NULL) == FU_OK);
    CHECK(dropped == 0);
    REQUIRE(set->count == 5);
    const fu_face_label *L = set->labels;
    CHECK(L[0].source == FU_FACES_CELEBA && L[0].split == FU_SPLIT_TRAIN && L[0].attrs == ((1ULL << 0) | (1ULL << 20)));
    CHECK(L[0].attrs_known == (1ULL << 40) - 1 && !strcmp(L[0].path, "celeba/images/000002.jpg"));
    CHECK(L[1].split == FU_SPLIT_VAL && L[1].attrs_known == 0);   /* 009001: held out, no attribute row */
    CHECK(L[2].source == FU_FACES_UTKFACE && L[2].age == 34 && L[2].gender == 1 && L[2].race == 3 && L[2].split == FU_SPLIT_TRAIN);
    CHECK(L[3].source == FU_FACES_LFW && L[3].split == FU_SPLIT_TEST && L[3].identity == 0 && L[4].identity == 1);
    CHECK(abs(set->pixels[0] - 51) <= 3 && abs(set->pixels[3 * 16 * 16 * 2] - 153) <= 3);   /* 0.2, 0.6 of 255 */
    fu_faces_free(set);
    REQUIRE(fu_faces_build(root, 16, FU_FACES_FRAME_BOX, 1u << FU_FACES_UTKFACE, &set, &dropped, NULL, NULL) == FU_OK);
    CHECK(set->count == 1 && set->labels[0].source == FU_FACES_UTKFACE && set->labels[0].race == 3);
    fu_faces_free(set);
    snprintf(p, sizeof p, "%s/utkface", root);
    CHECK(fu_faces_build(p, 16, FU_FACES_FRAME_BOX, 0, &set, &dropped, NULL, NULL) == FU_E_INPUT && set == NULL && strstr(fu_last_error(), "celeba"));
}

/* ---- training ---- */

static fu_gen_train_config tiny_run(const char *out, int64_t steps) {
    fu_gen_train_config c = fu_gen_train_defaults();
    c.out = out;
    c.model = tiny;
    c.steps = steps;
    c.batch = 4;
    c.lr = 3e-3f;
    c.seed = 9;
    c.kl_warmup = 10;
    c.sample_every = 0;
    c.checkpoint_every = 0;
    return c;
}

static fu_vae *load_or_null(const char *path) {
    fu_vae *m = NULL;
    return fu_vae_load(path, &m) == FU_OK ? m : NULL;
}

static int same_weights(const fu_vae *a, const fu_vae *b) {
    if (!a || !b || a->n_params != b->n_params) return 0;
    for (int i = 0; i < a->n_params; i++)
        if (a->params[i]->numel != b->params[i]->numel ||
            memcmp(a->params[i]->data, b->params[i]->data, (size_t)a->params[i]->numel * sizeof(float)))
            return 0;
    return 1;
}

/* 2K steps in one run equal K steps + resume + K steps, bit for bit; the run also learns. */
TEST(train_generator_resume_is_exact) {
    enum { K = 30 };
    fu_faces *set = synthetic_face_set(8, 40);
    char full[512], split[512], sheet[512], plot[512];
    snprintf(full, sizeof full, "%s/gen_full.safetensors", fu_test_tmpdir());
    snprintf(split, sizeof split, "%s/gen_split.safetensors", fu_test_tmpdir());
    snprintf(sheet, sizeof sheet, "%s/gen_split.samples.png", fu_test_tmpdir());
    snprintf(plot, sizeof plot, "%s/gen_split.loss.png", fu_test_tmpdir());
    fu_gen_train_config a = tiny_run(full, 2 * K);
    REQUIRE(fu_train_generator(&a, set, NULL, NULL) == FU_OK);
    fu_gen_train_config b = tiny_run(split, K);
    REQUIRE(fu_train_generator(&b, set, NULL, NULL) == FU_OK);
    fu_vae *half = load_or_null(split);
    b.steps = 2 * K;
    b.resume = 1;
    b.seed = 12345;   /* ignored on resume: the checkpoint's seed wins */
    REQUIRE(fu_train_generator(&b, set, NULL, NULL) == FU_OK);
    fu_vae *ma = load_or_null(full), *mb = load_or_null(split);
    CHECK(ma && mb && same_weights(ma, mb));
    CHECK(half && !same_weights(half, mb));   /* the resumed run did train */
    CHECK(file_exists(sheet) && file_exists(plot));
    fu_tensor *img = fu_image_load(sheet);
    CHECK(img && img->shape[2] == 4 * 8 && img->shape[3] == 8 * 8);
    fu_tensor_free(img);
    /* Resuming past the end is refused; so is a model whose size differs from the data's. */
    b.steps = K;
    CHECK(fu_train_generator(&b, set, NULL, NULL) == FU_E_INPUT && strstr(fu_last_error(), "beyond"));
    fu_gen_train_config c = tiny_run(full, 1);
    c.model.size = 16;
    CHECK(fu_train_generator(&c, set, NULL, NULL) == FU_E_INPUT && strstr(fu_last_error(), "size"));
    fu_vae_free(half);
    fu_vae_free(ma);
    fu_vae_free(mb);
    fu_faces_free(set);
}

static double max_weight_diff(const fu_vae *a, const fu_vae *b) {
    double d = 0;
    for (int i = 0; i < a->n_params; i++)
        for (int64_t k = 0; k < a->params[i]->numel; k++) d = fmax(d, fabs(a->params[i]->data[k] - b->params[i]->data[k]));
    return d;
}

/* --init starts a new run from a model's weights: with a vanishing lr the run's model is that
 * model (a fresh one from the run's seed would differ by ~0.1). */
TEST(train_generator_init_starts_from_a_model) {
    fu_faces *set = synthetic_face_set(8, 40);
    char base[512], next[512];
    snprintf(base, sizeof base, "%s/gen_base.safetensors", fu_test_tmpdir());
    snprintf(next, sizeof next, "%s/gen_next.safetensors", fu_test_tmpdir());
    fu_gen_train_config a = tiny_run(base, 5);
    REQUIRE(fu_train_generator(&a, set, NULL, NULL) == FU_OK);
    fu_vae *with_prior = load_or_null(base);   /* give the base a prior: --init must drop it */
    int64_t fitted = 0;
    REQUIRE(with_prior && fu_vae_fit_prior(with_prior, set, FU_SPLIT_TRAIN, &fitted) == FU_OK && fu_vae_save(with_prior, base) == FU_OK);
    fu_vae_free(with_prior);
    fu_gen_train_config b = tiny_run(next, 2);
    b.init = base;
    b.seed = 777;    /* a different fresh model would come from this seed */
    b.lr = 1e-20f;
    REQUIRE(fu_train_generator(&b, set, NULL, NULL) == FU_OK);
    fu_vae *ma = load_or_null(base), *mb = load_or_null(next);
    REQUIRE(ma && mb && ma->n_params == mb->n_params);
    CHECK(max_weight_diff(ma, mb) < 1e-12);
    CHECK(ma->prior_mean && !mb->prior_mean);
    b.init = "/nonexistent/model.safetensors";
    CHECK(fu_train_generator(&b, set, NULL, NULL) == FU_E_INPUT && strstr(fu_last_error(), "/nonexistent/model.safetensors"));
    fu_vae_free(ma);
    fu_vae_free(mb);
    fu_faces_free(set);
}

static void record_loss(const fu_gen_train_status *s, void *ctx) {
    float *l = ctx;
    if (s->step <= 20) l[0] += s->rec / 20;
    if (s->step > s->steps - 20) l[1] += s->rec / 20;
}

TEST(train_generator_learns_and_reconstructs) {
    fu_faces *set = synthetic_face_set(8, 40);
    char out[512];
    snprintf(out, sizeof out, "%s/gen_learn.safetensors", fu_test_tmpdir());
    fu_gen_train_config c = tiny_run(out, 300);
    c.model.channels = 4;
    c.model.latent = 8;
    float l1[2] = {0, 0};
    fu_vae *m0 = fu_vae_new(&c.model, c.seed);
    double psnr0, psnr1;
    int64_t n;
    REQUIRE(m0 && fu_vae_recon_psnr(m0, set, FU_SPLIT_VAL, -1, 0, &psnr0, &n) == FU_OK && n == 8);
    REQUIRE(fu_train_generator(&c, set, record_loss, l1) == FU_OK);
    CHECK_MSG(l1[1] < 0.5f * l1[0], "L1 %.4f in the first 20 steps, %.4f in the last 20", l1[0], l1[1]);
    fu_vae *m = load_or_null(out);
    REQUIRE(m && fu_vae_recon_psnr(m, set, FU_SPLIT_VAL, -1, 0, &psnr1, &n) == FU_OK);
    CHECK_MSG(psnr1 > psnr0 + 6, "held-out PSNR %.2f dB before training, %.2f after", psnr0, psnr1);
    fu_vae_free(m0);
    fu_vae_free(m);
    fu_faces_free(set);
}

/* ---- plot ---- */

/* The fitted prior's mean is the mean of the encoder's mu over the train split and its mirror
 * images, and its covariance is PSD with at least the mean posterior variance on the diagonal. */
TEST(vae_fit_prior_matches_encoder_moments) {
    fu_faces *set = synthetic_face_set(8, 20);
    fu_vae *m = fu_vae_new(&tiny, 4);
    REQUIRE(set && m);
    int64_t n = 0;
    REQUIRE(fu_vae_fit_prior(m, set, FU_SPLIT_TRAIN, &n) == FU_OK);
    CHECK(n == 16);
    double mean[4] = {0}, var[4] = {0};
    fu_graph *g = fu_graph_new();
    for (int64_t i = 0, used = 0; i < set->count; i++) {
        if (set->labels[i].split != FU_SPLIT_TRAIN) continue;
        for (int flip = 0; flip < 2; flip++) {
            fu_graph_reset(g);
            fu_tensor *x = fu_graph_tensor(g, 4, (int64_t[]){1, 3, 8, 8}), *lv = NULL;
            fu_faces_get(set, i, flip, x->data);
            fu_tensor *mu = fu_vae_encode(g, m, x, &lv);
            for (int k = 0; k < 4; k++) {
                mean[k] += mu->data[k] / 32.0;
                var[k] += exp(lv->data[k]) / 32.0;
            }
        }
        used++;
    }
    fu_graph_free(g);
    for (int k = 0; k < 4; k++) {
        CHECK_NEAR(m->prior_mean->data[k], mean[k], 1e-4);
        float lkk = m->prior_tril->data[k * 4 + k];
        double diag = 0;
        for (int j = 0; j <= k; j++) diag += (double)m->prior_tril->data[k * 4 + j] * m->prior_tril->data[k * 4 + j];
        CHECK(lkk > 0 && diag >= var[k] * (1 - 1e-4));
    }
    CHECK(fu_vae_fit_prior(m, set, FU_SPLIT_TEST, &n) == FU_E_INPUT);   /* no test images */
    fu_vae_free(m);
    fu_faces_free(set);
}

TEST(plot_draws_frame_and_polyline) {
    fu_tensor *img = fu_tensor_newv(4, (int64_t)1, (int64_t)3, (int64_t)64, (int64_t)96);
    REQUIRE(img);
    float x[3] = {0, 1, 2}, y[3] = {0, 1, NAN};
    fu_plot_series s = {x, y, 3, {1, 0, 0}};
    fu_plot_range r;
    REQUIRE(fu_plot_auto_range(&s, 1, 0, &r));
    CHECK(r.x0 == 0 && r.x1 == 1 && r.y0 == 0 && r.y1 == 1);   /* the NaN point is skipped */
    REQUIRE(fu_plot_lines(img, &s, 1, &r, 0) == FU_OK);
    int64_t H = 64, W = 96, plane = H * W;
    /* Frame corner black; the line runs from the bottom-left to the top-right frame corner. */
    CHECK(img->data[12 * W + 12] == 0 && img->data[plane + 12 * W + 12] == 0);
    int64_t bl = (H - 13) * W + 12, tr = 12 * W + (W - 13), off = 20 * W + 80;
    CHECK(img->data[bl] == 1 && img->data[plane + bl] == 0 && img->data[tr] == 1 && img->data[plane + tr] == 0);
    CHECK(img->data[off] == 1 && img->data[plane + off] == 1);   /* background white off the line */
    int red_in_middle_column = 0;
    for (int64_t yy = 13; yy < H - 13; yy++) red_in_middle_column += img->data[yy * W + W / 2] == 1 && img->data[plane + yy * W + W / 2] == 0;
    CHECK(red_in_middle_column >= 1);
    float ly[3] = {10, 100, -1};
    fu_plot_series sl = {x, ly, 3, {0, 0, 1}};
    REQUIRE(fu_plot_auto_range(&sl, 1, 1, &r));
    CHECK_NEAR(r.y0, 1, 1e-6);
    CHECK_NEAR(r.y1, 2, 1e-6);
    CHECK(fu_plot_lines(img, &s, 1, &(fu_plot_range){0, 0, 0, 1}, 0) == FU_E_INPUT);
    fu_tensor_free(img);
}
