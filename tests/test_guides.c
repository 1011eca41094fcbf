/* The extractor's heads (face/heads.h), the face guides of the search (search/face_guides.h)
 * and faceup upscale's face flags. Tests needing the model cache or the trained heads file
 * skip when they are absent. */
#include <math.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cjson/cJSON.h>
#include "core/gradcheck.h"
#include "core/ops.h"
#include "face/face_pipeline.h"
#include "face/transform2d.h"
#include "face/heads.h"
#include "face/models.h"
#include "faceup.h"
#include "gen/generator.h"
#include "io/image.h"
#include "io/safetensors.h"
#include "search/face_guides.h"
#include "test.h"
#include "util.h"

static fu_dlib_resnet *load_net_or_null(void) {
    char buf[1024];
    struct stat st;
    if (stat(fu_model_path(FU_DLIB_RESNET_MANIFEST, buf, sizeof buf), &st) != 0) return NULL;
    return fu_dlib_resnet_load(buf);
}

static int exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

/* ------------------------------------------------------------------ heads */

TEST(heads_race_names_parse) {
    CHECK(fu_race_parse("white") == 0 && fu_race_parse("Black") == 1 && fu_race_parse("ASIAN") == 2);
    CHECK(fu_race_parse("indian") == 3 && fu_race_parse("other") == 4 && fu_race_parse("Others") == 4);
    CHECK(fu_race_parse("2") == -1 && fu_race_parse("") == -1 && fu_race_parse("whitewhitewhitewhite") == -1);
    CHECK(!strcmp(fu_race_name(3), "Indian") && fu_race_name(5) == NULL && fu_race_name(-1) == NULL);
}

TEST(heads_save_load_roundtrip_and_shapes) {
    fu_heads *h = fu_heads_new(3);
    REQUIRE(h);
    CHECK(h->race.w[0]->shape[0] == 256 && h->race.w[0]->shape[1] == 128 && h->race.w[1]->shape[0] == 5);
    CHECK(h->attr.w[0]->shape[0] == 1024 && h->attr.w[1]->shape[0] == 40);
    CHECK(h->thumb16.w[0]->shape[1] == 768 && h->thumb8.w[0]->shape[1] == 192);
    for (int k = 0; k < 136; k++) h->ffhq_landmarks[k] = 0.25f + 0.003f * (float)k;
    char path[512];
    snprintf(path, sizeof path, "%s/heads_rt.safetensors", fu_test_tmpdir());
    const char *meta[] = {"format", "faceup-heads-1"};
    REQUIRE(fu_heads_save(h, path, meta, 1) == FU_OK);
    fu_heads *back = fu_heads_load(path);
    REQUIRE(back);
    CHECK(memcmp(back->attr.w[1]->data, h->attr.w[1]->data, (size_t)h->attr.w[1]->numel * sizeof(float)) == 0);
    CHECK(memcmp(back->thumb8.b[0]->data, h->thumb8.b[0]->data, (size_t)h->thumb8.b[0]->numel * sizeof(float)) == 0);
    CHECK(memcmp(back->ffhq_landmarks, h->ffhq_landmarks, sizeof h->ffhq_landmarks) == 0);
    /* forward shapes, and a wrong input width is refused */
    fu_graph *g = fu_graph_new();
    fu_tensor *x = fu_graph_tensor(g, 2, (int64_t[]){3, 128});
    fu_tensor *y = fu_mlp_forward(g, &back->attr, x);
    CHECK(y && y->shape[0] == 3 && y->shape[1] == 40);
    CHECK(fu_mlp_forward(g, &back->thumb16, x) == NULL && strstr(fu_last_error(), "768"));
    fu_graph_free(g);
    fu_heads_free(back);
    fu_heads_free(h);
}

/* Writes a heads file from h without tensor `skip` (NULL: none), with `bad` tensor's first value NaN. */
static int write_variant(const fu_heads *h, const char *path, const char *skip, const char *nan_in) {
    fu_st_item items[17];
    char names[16][64];
    const fu_mlp *m[4] = {&h->race, &h->attr, &h->thumb16, &h->thumb8};
    const char *mn[4] = {"race", "attr", "thumb16", "thumb8"};
    fu_tensor *frame = fu_tensor_newv(2, (int64_t)68, (int64_t)2), *copies[17] = {0};
    int n = 0;
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
            snprintf(names[i * 4 + j], 64, "%s.%d.%s", mn[i], j / 2, j % 2 ? "bias" : "weight");
            if (skip && !strcmp(skip, names[i * 4 + j])) continue;
            const fu_tensor *t = j % 2 ? m[i]->b[j / 2] : m[i]->w[j / 2];
            copies[n] = fu_tensor_clone(t);
            if (nan_in && !strcmp(nan_in, names[i * 4 + j])) copies[n]->data[0] = NAN;
            items[n] = (fu_st_item){names[i * 4 + j], copies[n], FU_F32};
            n++;
        }
    items[n++] = (fu_st_item){"frame.ffhq_landmarks", frame, FU_F32};
    int rc = fu_st_save(path, items, n, NULL, 0);
    for (int k = 0; k < 17; k++) fu_tensor_free(copies[k]);
    fu_tensor_free(frame);
    return rc;
}

TEST(heads_load_refuses_bad_files) {
    char path[512];
    snprintf(path, sizeof path, "%s/heads_bad.safetensors", fu_test_tmpdir());
    CHECK(fu_heads_load("/nonexistent/heads.safetensors") == NULL && strstr(fu_last_error(), "/nonexistent/heads.safetensors"));
    FILE *f = fopen(path, "w");
    REQUIRE(f);
    fputs("not a safetensors file at all", f);
    fclose(f);
    CHECK(fu_heads_load(path) == NULL && strstr(fu_last_error(), "heads_bad.safetensors"));
    fu_heads *h = fu_heads_new(5);
    REQUIRE(h);
    REQUIRE(write_variant(h, path, "attr.1.weight", NULL) == FU_OK);
    CHECK(fu_heads_load(path) == NULL && strstr(fu_last_error(), "'attr.1.weight' missing"));
    REQUIRE(write_variant(h, path, NULL, "race.0.bias") == FU_OK);
    CHECK(fu_heads_load(path) == NULL && strstr(fu_last_error(), "'race.0.bias' holds non-finite"));
    /* a tensor of the wrong shape: the race head saved where the attribute head belongs */
    fu_tensor *keep = h->attr.w[1];
    h->attr.w[1] = h->race.w[1];
    REQUIRE(write_variant(h, path, NULL, NULL) == FU_OK);
    h->attr.w[1] = keep;
    CHECK(fu_heads_load(path) == NULL && strstr(fu_last_error(), "'attr.1.weight' has the wrong shape"));
    fu_heads_free(h);
}

typedef struct { fu_mlp *m; int binary; } mlp_case;

static fu_tensor *build_mlp_loss(fu_graph *g, fu_tensor **in, void *ctx) {
    const mlp_case *c = ctx;
    fu_mlp m = {{in[1], in[2]}, {in[3], in[4]}};
    fu_tensor *logits = fu_mlp_forward(g, &m, in[0]);
    if (!logits) return NULL;
    if (!c->binary) {
        static const int labels[2] = {3, 1};
        return fu_cross_entropy(g, logits, labels);
    }
    fu_tensor *t = fu_graph_tensor(g, 2, logits->shape);
    for (int64_t k = 0; k < t->numel; k++) t->data[k] = (float)(k % 3 == 0);
    return fu_bce_with_logits(g, logits, t, NULL);
}

TEST(heads_mlp_gradcheck) {
    fu_heads *h = fu_heads_new(9);
    REQUIRE(h);
    fu_rng r;
    fu_rng_seed(&r, 4);
    for (int binary = 0; binary < 2; binary++) {
        fu_mlp *m = binary ? &h->attr : &h->race;
        fu_tensor *in[5] = {randn_leaf(&r, 2, (int64_t[]){2, 128}, 1), fu_tensor_clone(m->w[0]), fu_tensor_clone(m->w[1]),
                            fu_tensor_clone(m->b[0]), fu_tensor_clone(m->b[1])};   /* x, w0, w1, b0, b1 */
        for (int i = 1; i < 5; i++) REQUIRE(in[i] && fu_tensor_requires_grad(in[i], 1) == FU_OK);
        fu_gradcheck_result res;
        mlp_case c = {m, binary};
        CHECK_MSG(fu_gradcheck(build_mlp_loss, in, 5, &c, &(fu_gradcheck_opts){.eps = 1e-2f, .atol = 2e-3f, .rtol = 2e-2f, .max_checks = 24, .seed = 1},
                               &res) == FU_OK, "%s", fu_last_error());
        CHECK(res.n_checked > 0);
        for (int i = 0; i < 5; i++) fu_tensor_free(in[i]);
    }
    fu_heads_free(h);
}

TEST(heads_thumbnail_race_sizes) {
    fu_heads *h = fu_heads_new(2);
    REQUIRE(h);
    float p[FU_RACE_CLASSES];
    int64_t sides[] = {8, 16, 64};
    for (int i = 0; i < 3; i++) {
        fu_tensor *t = fu_tensor_newv(4, (int64_t)1, (int64_t)3, sides[i], sides[i]);
        fu_tensor_fill(t, 0.5f);
        int k = fu_heads_thumb_race(h, t, p);
        double sum = 0;
        for (int c = 0; c < FU_RACE_CLASSES; c++) sum += p[c];
        CHECK_MSG(k >= 0 && k < FU_RACE_CLASSES && fabs(sum - 1) < 1e-5, "side %lld", (long long)sides[i]);
        fu_tensor_free(t);
    }
    fu_tensor *odd = fu_tensor_newv(4, (int64_t)1, (int64_t)3, (int64_t)12, (int64_t)12);
    CHECK(fu_heads_thumb_race(h, odd, p) == -1 && strstr(fu_last_error(), "8, 16, 32"));
    fu_tensor_free(odd);
    fu_heads_free(h);
}

/* ------------------------------------------------------------------ guides */

/* The trained heads (for their frame) and the identity network, or NULL (the caller skips). */
typedef struct { fu_heads *heads; fu_dlib_resnet *net; } nets;

static int open_nets(nets *n) {
    n->heads = exists(FU_HEADS_DEFAULT) ? fu_heads_load(FU_HEADS_DEFAULT) : NULL;
    n->net = n->heads ? load_net_or_null() : NULL;
    return n->heads && n->net;
}

static void close_nets(nets *n) {
    fu_heads_free(n->heads);
    fu_dlib_resnet_free(n->net);
}

/* A smooth random image [1,3,side,side] around grey: 8x8 noise, bicubic-upsampled. */
static fu_tensor *smooth_image(uint64_t seed, int side) {
    fu_rng r;
    fu_rng_seed(&r, seed);
    fu_tensor *small = randn_leaf(&r, 4, (int64_t[]){1, 3, 8, 8}, 0);
    fu_graph *g = fu_graph_new();
    fu_tensor *big = fu_scale_shift(g, fu_resize_bicubic(g, small, side, side), 0.15f, 0.5f);
    fu_tensor *out = big ? fu_tensor_clone(big) : NULL;
    fu_graph_free(g);
    fu_tensor_free(small);
    return out;
}

/* Loss of one term at x + h v (h may be 0); with grad (numel floats), also d loss/d x. */
static double term_at(fu_search_guides *sg, const fu_loss_term *t, const fu_tensor *x, const float *v, double h, float *grad) {
    fu_tensor *xp = fu_tensor_clone(x);
    for (int64_t k = 0; v && k < xp->numel; k++) xp->data[k] += (float)(h * v[k]);
    if (grad) fu_tensor_requires_grad(xp, 1);
    const fu_search_guide *gd = t->kind == FU_TERM_RACE ? &sg->race : t->kind == FU_TERM_ATTR ? &sg->attr : &sg->identity;
    fu_graph *g = fu_graph_new();
    fu_tensor *loss = gd->loss(gd->ctx, g, xp, t);
    double value = loss ? loss->data[0] : NAN;
    if (loss && grad && fu_graph_backward(g, loss, NULL) == FU_OK) memcpy(grad, xp->grad, (size_t)xp->numel * sizeof *grad);
    fu_graph_free(g);
    fu_tensor_free(xp);
    return value;
}

/* d loss / d image through warp, dlib ResNet and each term, checked as dlib_resnet_gradients
 * does: along the unit gradient direction u the central difference must equal |grad| (along a
 * random direction the slope is ~|grad|/sqrt(n), below float32 noise for steps small enough to
 * stay clear of the ReLU / max-pool kinks). */
TEST(face_guides_gradient_along_a_direction) {
    nets n = {0};
    if (!open_nets(&n)) { close_nets(&n); SKIP("needs " FU_HEADS_DEFAULT " and the dlib ResNet in the model cache"); }
    fu_face_guides fg;
    REQUIRE(fu_face_guides_init(&fg, n.net, n.heads, 64) == FU_OK);
    fu_tensor *x = smooth_image(1, 64), *other = smooth_image(2, 64);
    fu_graph *g = fu_graph_new();
    fu_tensor *ref = fu_face_guides_descriptor(&fg, g, other);
    REQUIRE(ref && ref->shape[1] == 128);
    fu_face_guides_set_reference(&fg, ref->data);
    fu_graph_free(g);
    fu_search_guides sg = fu_face_guides_bind(&fg);
    float *grad = malloc((size_t)x->numel * sizeof *grad), *u = malloc((size_t)x->numel * sizeof *u);
    REQUIRE(grad && u);
    fu_loss_term terms[] = {{.kind = FU_TERM_IDENTITY_SCORE}, {.kind = FU_TERM_L2_IDENTITY},
                            {.kind = FU_TERM_RACE, .index = 1}, {.kind = FU_TERM_ATTR, .index = 31, .value = 1}};
    for (int i = 0; i < 4; i++) {
        double base = term_at(&sg, &terms[i], x, NULL, 0, grad), norm = 0, h = 1e-4;
        for (int64_t k = 0; k < x->numel; k++) norm += (double)grad[k] * grad[k];
        norm = sqrt(norm);
        CHECK_MSG(isfinite(base) && base > 0 && norm > 0, "term %d: loss %g |grad| %g", i, base, norm);
        for (int64_t k = 0; k < x->numel; k++) u[k] = (float)(grad[k] / norm);
        double slope = (term_at(&sg, &terms[i], x, u, h, NULL) - term_at(&sg, &terms[i], x, u, -h, NULL)) / (2 * h);
        CHECK_MSG(fabs(slope - norm) <= 2e-2 * norm, "term %d: |grad| %g, slope along it %g", i, norm, slope);
    }
    /* RACE_IS_k beyond the head's classes is refused, not read out of bounds */
    fu_graph *g2 = fu_graph_new();
    CHECK(sg.race.loss(sg.race.ctx, g2, x, &(fu_loss_term){.kind = FU_TERM_RACE, .index = 6}) == NULL);
    fu_graph_free(g2);
    free(grad);
    free(u);
    fu_tensor_free(x);
    fu_tensor_free(other);
    close_nets(&n);
}

TEST(face_guides_frame_and_describe) {
    nets n = {0};
    if (!open_nets(&n)) { close_nets(&n); SKIP("needs " FU_HEADS_DEFAULT " and the dlib ResNet in the model cache"); }
    fu_face_guides fg64, fg1024;
    CHECK(fu_face_guides_init(&fg64, n.net, n.heads, 48) == FU_E_INPUT);
    REQUIRE(fu_face_guides_init(&fg64, n.net, n.heads, 64) == FU_OK);
    REQUIRE(fu_face_guides_init(&fg1024, n.net, n.heads, 1024) == FU_OK);
    /* one frame at every resolution: the 1024 chip reads the 256 downscale at 4x the 64 scale */
    CHECK(fg1024.pre_factor == 4 && fg64.pre_factor == 1);
    double c = (FU_DLIB_RESNET_SIZE - 1) / 2.0, x64, y64, x1k, y1k;
    fu_affine_apply(fg64.theta, c, c, &x64, &y64);
    fu_affine_apply(fg1024.theta, c, c, &x1k, &y1k);
    CHECK_NEAR(x1k, 4 * (x64 + 0.5) - 0.5, 1e-3);       /* the chip centre: one point of the face */
    CHECK_NEAR(y1k, 4 * (y64 + 0.5) - 0.5, 1e-3);
    /* dlib's chip scale k = (N s - 1)/(N - 1): 4x the image scale gives 4 k + 3/(N - 1) */
    double k64 = hypot(fg64.theta[0], fg64.theta[3]), k1k = hypot(fg1024.theta[0], fg1024.theta[3]);
    CHECK_NEAR(k1k, 4 * k64 + 3.0 / (FU_DLIB_RESNET_SIZE - 1), 1e-5);
    /* the chip looks inside the image: the dlib chip of an FFHQ crop spans about half its side */
    CHECK_MSG(k64 > 0.2 && k64 < 0.4, "chip scale %g", k64);
    fu_tensor *x = smooth_image(3, 64);
    fu_face_report rep;
    REQUIRE(fu_face_guides_describe(&fg64, x, &rep) == FU_OK);
    CHECK(!rep.has_identity && rep.race >= 0 && rep.race < FU_RACE_CLASSES);
    double s = 0;
    for (int c = 0; c < FU_RACE_CLASSES; c++) s += rep.race_probs[c];
    CHECK_NEAR(s, 1, 1e-5);
    /* against itself: cosine 1, p_same near 1 */
    fu_graph *g = fu_graph_new();
    fu_tensor *d = fu_face_guides_descriptor(&fg64, g, x);
    REQUIRE(d);
    fu_face_guides_set_reference(&fg64, d->data);
    fu_graph_free(g);
    REQUIRE(fu_face_guides_describe(&fg64, x, &rep) == FU_OK);
    CHECK(rep.has_identity && rep.cosine > 0.9999f && rep.p_same > 0.99f);
    fu_tensor_free(x);
    close_nets(&n);
}

/* --face-jitter: the terms see a new random chip warp whenever the graph's seed changes, the
 * same one for the same seed; describe() never jitters; amounts outside [0, 0.5] are refused. */
TEST(face_guides_jitter_redraws_with_the_graph_seed) {
    nets n = {0};
    if (!open_nets(&n)) { close_nets(&n); SKIP("needs " FU_HEADS_DEFAULT " and the dlib ResNet in the model cache"); }
    fu_face_guides fg;
    REQUIRE(fu_face_guides_init(&fg, n.net, n.heads, 64) == FU_OK);
    CHECK(fu_face_guides_set_jitter(&fg, 0.6f) == FU_E_INPUT && fg.jitter == 0);
    fu_tensor *x = smooth_image(4, 64);
    fu_loss_term race = {.kind = FU_TERM_RACE, .index = 2};
    fu_search_guides sg = fu_face_guides_bind(&fg);
    fu_graph *g = fu_graph_new();
    fu_tensor *fixed = sg.race.loss(sg.race.ctx, g, x, &race);
    REQUIRE(fixed);
    float v_fixed = fixed->data[0];
    fu_face_report plain, jittered;
    REQUIRE(fu_face_guides_describe(&fg, x, &plain) == FU_OK);
    REQUIRE(fu_face_guides_set_jitter(&fg, 0.05f) == FU_OK);
    fu_graph *gj = fu_graph_new();
    gj->seed = 11;
    fu_tensor *j = sg.race.loss(sg.race.ctx, gj, x, &race);
    REQUIRE(j);
    float v11 = j->data[0];
    int differ = 0;
    for (uint64_t seed = 12; seed < 16; seed++) {
        gj->seed = seed;
        REQUIRE(fu_graph_forward(gj) == FU_OK);
        differ += fabsf(j->data[0] - v11) > 1e-6f * fabsf(v11);
    }
    CHECK_MSG(differ == 4 && v11 != v_fixed, "fixed %g, seed 11 %g, %d of 4 other seeds differ", v_fixed, v11, differ);
    gj->seed = 11;
    REQUIRE(fu_graph_forward(gj) == FU_OK);
    CHECK(j->data[0] == v11);
    REQUIRE(fu_face_guides_describe(&fg, x, &jittered) == FU_OK);
    CHECK(memcmp(plain.race_probs, jittered.race_probs, sizeof plain.race_probs) == 0);
    fu_graph_free(gj);
    fu_graph_free(g);
    fu_tensor_free(x);
    close_nets(&n);
}

/* ------------------------------------------------------------------ search */

/* G(z) for z ~ N(0, I) from seed, zero noise: [1,3,R,R] leaf. */
static fu_tensor *generate(const fu_generator *gen, uint64_t seed) {
    fu_rng r;
    fu_rng_seed(&r, seed);
    fu_graph *g = fu_graph_new();
    fu_tensor *z = randn_leaf(&r, 3, (int64_t[]){1, gen->n_latent, gen->latent_dim}, 0), *noise[FU_GEN_MAX_NOISE] = {0};
    for (int i = 0; i < gen->n_noise; i++) {
        int64_t shape[4];
        if (gen->noise_shape(gen, i, shape) == FU_OK) noise[i] = fu_tensor_new(4, shape);
    }
    fu_tensor *img = gen->build(gen, g, z, noise, NULL), *out = img ? fu_tensor_clone(img) : NULL;
    for (int i = 0; i < gen->n_noise; i++) fu_tensor_free(noise[i]);
    fu_tensor_free(z);
    fu_graph_free(g);
    return out;
}

static fu_tensor *downscale(fu_tensor *img, int factor) {
    fu_graph *g = fu_graph_new();
    fu_tensor *low = fu_bicubic_downsample(g, img, factor), *out = low ? fu_tensor_clone(low) : NULL;
    fu_graph_free(g);
    return out;
}

/* Mean p_same and cosine to the reference of the searched images for seeds 0..n-1. */
static int search_identity(const fu_generator *gen, const fu_tensor *thumb, fu_face_guides *fg, const char *loss, int n,
                           double *p_same, double *cosine, double *l2) {
    fu_search_config cfg = fu_search_defaults();
    cfg.steps = 40;
    cfg.n_seeds = n;
    cfg.noise = FU_NOISE_ZERO;
    cfg.eps = 1;
    fu_search_guides sg = fu_face_guides_bind(fg);
    cfg.guides = &sg;
    if (fu_loss_parse(loss, &cfg.loss) != FU_OK) return fu_last_code();
    fu_search_result *res = calloc((size_t)n, sizeof *res);
    int rc = fu_search_run(gen, thumb, &cfg, res);
    *p_same = *cosine = *l2 = 0;
    for (int k = 0; rc == FU_OK && k < n; k++) {
        fu_face_report rep;
        rc = fu_face_guides_describe(fg, res[k].image, &rep);
        *p_same += rep.p_same / n;
        *cosine += rep.cosine / n;
        *l2 += res[k].wave[0].l2 / n;
    }
    if (rc == FU_OK) fu_search_results_free(res, n);
    free(res);
    return rc;
}

#define REFERENCE_FACE "26_0_2_20170104023102422.jpg.chip.jpg"

/* The identity term pulls the search towards the reference: with 5*IDENTITY_SCORE the results
 * are more alike the reference (p_same, cosine) than with the image terms alone, from the same
 * seeds, without fitting the thumbnail worse. */
TEST(face_guides_identity_search_moves_towards_reference) {
    const char *shared = fu_test_shared_dir();
    if (!shared) SKIP("../shared absent");
    nets n = {0};
    if (!open_nets(&n)) { close_nets(&n); SKIP("needs " FU_HEADS_DEFAULT " and the dlib ResNet in the model cache"); }
    char path[512];
    snprintf(path, sizeof path, "%s/golden/stylegan2/weights.pt", shared);
    fu_generator *gen = NULL;
    REQUIRE(fu_generator_open(path, NULL, &gen) == FU_OK);
    fu_face_guides fg;
    REQUIRE(fu_face_guides_init(&fg, n.net, n.heads, gen->resolution) == FU_OK);
    fu_tensor *target = generate(gen, 202), *thumb = downscale(target, 8);
    REQUIRE(thumb);
    /* the reference: a real face (the random generator's images are no faces) */
    fu_face_pipeline pipe;
    float ref[FU_DLIB_RESNET_DIM];
    REQUIRE(fu_face_pipeline_open(&pipe) == FU_OK);
    snprintf(path, sizeof path, "%s/data/utkface/images/%s", shared, REFERENCE_FACE);
    int rc = fu_face_pipeline_embed_file(&pipe, path, ref);
    fu_face_pipeline_close(&pipe);
    if (rc != FU_OK) { fu_tensor_free(target); fu_tensor_free(thumb); fu_generator_free(gen); close_nets(&n); SKIP("reference face image absent"); }
    fu_face_guides_set_reference(&fg, ref);
    double p0, c0, l0, p1, c1, l1;
    REQUIRE(search_identity(gen, thumb, &fg, "100*L2+0.05*GEOCROSS", 2, &p0, &c0, &l0) == FU_OK);
    REQUIRE(search_identity(gen, thumb, &fg, "100*L2+0.05*GEOCROSS+5*IDENTITY_SCORE", 2, &p1, &c1, &l1) == FU_OK);
    printf("    L2 only: p_same %.4f cosine %.5f L2 %.5f; with IDENTITY_SCORE: p_same %.4f cosine %.5f L2 %.5f\n", p0, c0, l0, p1, c1, l1);
    /* measured: p_same 0.013 -> 0.52, cosine 0.841 -> 0.916, L2 0.84 -> 0.54 (this random
     * generator's output is far outside [0,1]; 40 steps do not fit its thumbnail either way) */
    CHECK(p1 > p0 + 0.3);
    CHECK(c1 > c0 + 0.03);
    CHECK(l1 <= 1.5 * l0);
    fu_tensor_free(target);
    fu_tensor_free(thumb);
    fu_generator_free(gen);
    close_nets(&n);
}

/* ------------------------------------------------------------------ faceup upscale */

TEST(cli_upscale_face_flags_bad_input) {
    const char *shared = fu_test_shared_dir();
    if (!shared) SKIP("../shared absent");
    nets n = {0};
    int have = open_nets(&n);
    close_nets(&n);
    if (!have) SKIP("needs " FU_HEADS_DEFAULT " and the dlib ResNet in the model cache");
    char gen_path[512], thumb[512], blank[512], o[512], args[4096], out[8192], err[4096];
    snprintf(gen_path, sizeof gen_path, "%s/golden/stylegan2/weights.pt", shared);
    snprintf(thumb, sizeof thumb, "%s/face_thumb.png", fu_test_tmpdir());
    snprintf(blank, sizeof blank, "%s/face_blank.png", fu_test_tmpdir());
    snprintf(o, sizeof o, "%s/face_out.png", fu_test_tmpdir());
    fu_tensor *t16 = fu_tensor_newv(4, (int64_t)1, (int64_t)3, (int64_t)16, (int64_t)16);
    fu_tensor *t200 = fu_tensor_newv(4, (int64_t)1, (int64_t)3, (int64_t)200, (int64_t)200);
    fu_tensor_fill(t200, 0.6f);
    REQUIRE(t16 && t200 && fu_image_save_png(thumb, t16) == FU_OK && fu_image_save_png(blank, t200) == FU_OK);
    fu_tensor_free(t16);
    fu_tensor_free(t200);
    struct { const char *flag, *want; } cases[] = {
        {"--identity /nonexistent/ref.jpg", "/nonexistent/ref.jpg"},
        {"--identity BLANK", "face_blank.png: no face found"},
        {"--attr Smiling=1,Bald=0,Smilin=1", "unknown CelebA attribute 'Smilin'"},
        {"--race green", "--race expects keep, white, black, asian, indian or other"},
        {"--loss 100*L2+1*RACE_IS_6", "RACE_IS_6: the race head has classes 0..4"},
        {"--race keep --face-jitter 0.7", "--face-jitter"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char flag[1024];
        snprintf(flag, sizeof flag, "%s", cases[i].flag);
        if (strstr(flag, "BLANK")) snprintf(flag, sizeof flag, "--identity %s", blank);
        snprintf(args, sizeof args, "upscale %s -o %s --generator %s --steps 2 --quiet --threads 1 --no-face-check %s", thumb, o, gen_path, flag);
        int rc = run_faceup(args, out, sizeof out, err, sizeof err);
        CHECK_MSG(rc == FU_E_INPUT, "case %zu: exit %d (%s)", i, rc, err);
        CHECK_MSG(strstr(err, cases[i].want) && count_newlines(err) == 1, "case %zu: stderr '%s' lacks '%s'", i, err, cases[i].want);
        CHECK_MSG(!file_exists(o) && count_prefixed(fu_test_tmpdir(), "face_out") == 0, "case %zu left output", i);
    }
}

/* The sheet of one thumbnail and one seed is nearest | bicubic | result | reference: the last
 * cell holds the reference photo's face, so it is not the flat grey of the thumbnail's cells. */
static void check_sheet_reference_cell(const char *path, int R, int cell) {
    fu_tensor *img = fu_image_load(path);
    REQUIRE(img);
    CHECK_MSG(img->shape[2] == R && img->shape[3] == (cell + 1) * R, "sheet %lldx%lld", (long long)img->shape[2], (long long)img->shape[3]);
    double sum = 0, sq = 0;
    int n = 0;
    for (int c = 0; c < 3 && img->shape[3] == (cell + 1) * R; c++)
        for (int y = R / 4; y < R; y++)   /* below the label */
            for (int x = cell * R; x < (cell + 1) * R; x++, n++) {
                double v = img->data[((int64_t)c * R + y) * img->shape[3] + x];
                sum += v;
                sq += v * v;
            }
    double var = n ? sq / n - (sum / n) * (sum / n) : 0;
    CHECK_MSG(var > 1e-3, "reference cell variance %g", var);
    fu_tensor_free(img);
}

/* --identity with a real face, --race keep and --attr: the JSON (and stderr) report the thumbnail's race,
 * and for each result its identity similarity, race and attributes. */
TEST(cli_upscale_face_flags_json) {
    const char *shared = fu_test_shared_dir();
    if (!shared) SKIP("../shared absent");
    nets n = {0};
    int have = open_nets(&n);
    close_nets(&n);
    if (!have) SKIP("needs " FU_HEADS_DEFAULT " and the dlib ResNet in the model cache");
    char gen_path[512], ref[512], thumb[512], o[512], sheet[512], args[4096], out[65536], err[4096];
    snprintf(gen_path, sizeof gen_path, "%s/golden/stylegan2/weights.pt", shared);
    snprintf(ref, sizeof ref, "%s/data/utkface/images/%s", shared, REFERENCE_FACE);
    snprintf(sheet, sizeof sheet, "%s/face_json_sheet.png", fu_test_tmpdir());
    if (!file_exists(ref)) SKIP("reference face image absent");
    snprintf(thumb, sizeof thumb, "%s/face_json_thumb.png", fu_test_tmpdir());
    snprintf(o, sizeof o, "%s/face_json_out.png", fu_test_tmpdir());
    fu_tensor *t16 = fu_tensor_newv(4, (int64_t)1, (int64_t)3, (int64_t)16, (int64_t)16);
    fu_tensor_fill(t16, 0.5f);
    REQUIRE(t16 && fu_image_save_png(thumb, t16) == FU_OK);
    fu_tensor_free(t16);
    snprintf(args, sizeof args, "upscale %s -o %s --generator %s --steps 2 --eps 1 --json --threads 1 --overwrite --no-face-check "
             "--identity %s --race keep --attr Smiling=1 --sheet %s", thumb, o, gen_path, ref, sheet);
    int rc = run_faceup(args, out, sizeof out, err, sizeof err);
    /* eps 1 meets L2, but the attribute rule (terms <= 0.1) may reject: exit 0 or 1 */
    CHECK_MSG(rc == FU_OK || rc == FU_E_NO_SOLUTION, "exit %d: %s", rc, err);
    cJSON *j = cJSON_Parse(out);
    REQUIRE(j);
    cJSON *res = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "results"), 0);
    cJSON *keep = cJSON_GetObjectItem(res, "thumbnail_race");
    REQUIRE(keep);
    int k = fu_race_parse(cJSON_GetObjectItem(keep, "class")->valuestring);
    CHECK(k >= 0);
    char said[128];   /* stderr names the same target */
    snprintf(said, sizeof said, "keeping the thumbnail's race: %s (p ", cJSON_GetObjectItem(keep, "class")->valuestring);
    CHECK_MSG(strstr(err, said), "stderr: %s", err);
    cJSON *seed = cJSON_GetArrayItem(cJSON_GetObjectItem(res, "seeds"), 0);
    cJSON *terms = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(seed, "waves"), 0), "terms");
    char race_term[32];
    snprintf(race_term, sizeof race_term, "RACE_IS_%d", k);
    CHECK(cJSON_GetObjectItem(terms, race_term) && cJSON_GetObjectItem(terms, "IDENTITY_SCORE") && cJSON_GetObjectItem(terms, "ATTR_31_IS_1"));
    cJSON *face = cJSON_GetObjectItem(seed, "face");
    REQUIRE(face);
    cJSON *id = cJSON_GetObjectItem(face, "identity");
    REQUIRE(id);
    double cosine = cJSON_GetObjectItem(id, "cosine")->valuedouble, p = cJSON_GetObjectItem(id, "p_same")->valuedouble;
    CHECK(cosine > -1 && cosine < 1 && p >= 0 && p <= 1);
    CHECK(fu_race_parse(cJSON_GetObjectItem(cJSON_GetObjectItem(face, "race"), "class")->valuestring) >= 0);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(face, "attributes")) == 40);
    double smiling = cJSON_GetObjectItem(cJSON_GetObjectItem(face, "attributes"), "Smiling")->valuedouble;
    CHECK(smiling >= 0 && smiling <= 1);
    cJSON_Delete(j);
    check_sheet_reference_cell(sheet, 64, 3);
}

/* ------------------------------------------------------------------ faceup train heads */

/* A small data folder of links into the shared one: 6 CelebA train + 4 val images, 8 UTKFace
 * images of each race (every 20th in name order is val). */
static int mini_data(const char *shared_dir, const char *dir) {
    char cmd[16384], shared[PATH_MAX];
    if (!realpath(shared_dir, shared)) return 0;   /* links must not depend on the working folder */
    int n = snprintf(cmd, sizeof cmd,
             "rm -rf %s && mkdir -p %s/celeba/images %s/utkface/images %s/lfw/images && cp %s/data/celeba/list_attr_celeba.txt %s/celeba/ && "
             "for i in 000001 000002 000003 000004 000005 000006 009001 009002 009003 009004; do ln -s %s/data/celeba/images/$i.jpg %s/celeba/images/ || exit 1; done && "
             "for r in 0 1 2 3 4; do ls %s/data/utkface/images | awk -F_ -v r=$r '$3==r' | head -8 | "
             "while read f; do ln -s %s/data/utkface/images/$f %s/utkface/images/; done; done",
             dir, dir, dir, dir, shared, dir, shared, dir, shared, shared, dir);
    if (n < 0 || (size_t)n >= sizeof cmd) return 0;
    return system(cmd) == 0;
}

TEST(cli_train_heads_small_set) {
    const char *shared = fu_test_shared_dir();
    if (!shared) SKIP("../shared absent");
    char buf[1024];
    if (!exists(fu_model_path(FU_DLIB_RESNET_MANIFEST, buf, sizeof buf)) || !exists(fu_model_path(FU_BLAZEFACE_MODEL, buf, sizeof buf)))
        SKIP("face models absent; run tools/fetch-models.sh");
    char dir[512], out[512], cache[512], args[4096], so[65536], se[4096];
    snprintf(dir, sizeof dir, "%s/heads_data", fu_test_tmpdir());
    snprintf(out, sizeof out, "%s/heads_small.safetensors", fu_test_tmpdir());
    snprintf(cache, sizeof cache, "%s/heads_cache.bin", fu_test_tmpdir());
    REQUIRE(mini_data(shared, dir));
    /* usage errors: exit 2, nothing written */
    snprintf(args, sizeof args, "train heads --out %s", out);
    CHECK(run_faceup(args, so, sizeof so, se, sizeof se) == FU_E_INPUT && strstr(se, "--data and --out are required"));
    snprintf(args, sizeof args, "train heads --data /nonexistent/data --out %s --cache %s --quiet", out, cache);
    CHECK(run_faceup(args, so, sizeof so, se, sizeof se) == FU_E_INPUT && strstr(se, "/nonexistent/data") && count_newlines(se) == 1);
    CHECK(!file_exists(out));
    for (int run = 0; run < 2; run++) {
        snprintf(args, sizeof args, "train heads --data %s --out %s --cache %s --quiet --threads 1", dir, out, cache);
        REQUIRE(run_faceup(args, so, sizeof so, se, sizeof se) == FU_OK);
        cJSON *j = cJSON_Parse(so);
        REQUIRE(j);
        int images = cJSON_GetObjectItem(j, "images")->valueint, cached = cJSON_GetObjectItem(j, "images_from_cache")->valueint;
        CHECK(images == 50);
        CHECK_MSG(cached == (run ? images : 0), "run %d: %d of %d from the cache", run, cached, images);
        cJSON *race = cJSON_GetObjectItem(j, "race");
        /* UTKFace: 40 images, every 20th of the sorted names is val (2), the rest train */
        CHECK(cJSON_GetObjectItem(race, "val_images")->valueint + cJSON_GetObjectItem(race, "train_images")->valueint
              + cJSON_GetObjectItem(j, "images_without_face")->valueint >= 40);
        CHECK(cJSON_GetObjectItem(race, "val_images")->valueint <= 2);
        CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "attributes"), "val_images")->valueint <= 4);
        cJSON_Delete(j);
    }
    fu_heads *h = fu_heads_load(out);
    REQUIRE(h);
    /* the frame: mean landmarks of FFHQ-aligned faces, eyes above the mouth, inside the crop */
    CHECK(h->ffhq_landmarks[2 * 36 + 1] > 0.3f && h->ffhq_landmarks[2 * 36 + 1] < 0.6f);
    CHECK(h->ffhq_landmarks[2 * 48 + 1] > h->ffhq_landmarks[2 * 36 + 1] + 0.15f);
    CHECK(h->ffhq_landmarks[2 * 36] < 0.5f && h->ffhq_landmarks[2 * 45] > 0.5f);
    fu_heads_free(h);
}
