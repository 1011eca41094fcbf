/* The race classifiers of eval upscale and --race keep: the faceres race judge file
 * (face/race_judge.h), the pack's race data (train/race_data.h) and the race MLP trainer
 * (train/train_heads.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "core/ops.h"
#include "core/rng.h"
#include "face/race_judge.h"
#include "faceup.h"
#include "io/safetensors.h"
#include "test.h"
#include "train/race_data.h"
#include "train/train_heads.h"
#include "util.h"

/* ------------------------------------------------------------------ judge file */

TEST(race_judge_save_load_roundtrip) {
    char path[512];
    snprintf(path, sizeof path, "%s/race_judge.safetensors", fu_test_tmpdir());
    fu_race_judge *j = fu_race_judge_new(3);
    REQUIRE(j);
    for (int i = 0; i < FU_RACE_JUDGE_IN; i++) j->mean[i] = 0.01f * (float)i, j->scale[i] = 1.0f + 0.001f * (float)i;
    REQUIRE(fu_race_judge_save(j, path, (const char *[]){"format", "faceup-race-judge-1"}, 1) == FU_OK);
    fu_race_judge *back = fu_race_judge_load(path);
    REQUIRE(back);
    CHECK(!memcmp(back->mean, j->mean, sizeof j->mean) && !memcmp(back->scale, j->scale, sizeof j->scale));
    for (int k = 0; k < 2; k++)
        CHECK(tensor_equals(back->mlp.w[k], j->mlp.w[k]->data, j->mlp.w[k]->numel) && tensor_equals(back->mlp.b[k], j->mlp.b[k]->data, j->mlp.b[k]->numel));
    /* classify: probabilities sum to 1, the class is their argmax, and the standardisation is applied */
    float desc[FU_RACE_JUDGE_IN], p[FU_RACE_CLASSES], q[FU_RACE_CLASSES];
    fu_rng r;
    fu_rng_seed(&r, 9);
    for (int i = 0; i < FU_RACE_JUDGE_IN; i++) desc[i] = (float)fu_rng_normal(&r);
    int c = fu_race_judge_classify(back, desc, p);
    double sum = 0;
    for (int k = 0; k < FU_RACE_CLASSES; k++) sum += p[k];
    CHECK(c >= 0 && c < FU_RACE_CLASSES && fabs(sum - 1) < 1e-5);
    for (int k = 0; k < FU_RACE_CLASSES; k++) CHECK(p[c] >= p[k]);
    for (int i = 0; i < FU_RACE_JUDGE_IN; i++) back->mean[i] += 1.0f;
    fu_race_judge_classify(back, desc, q);
    int differs = 0;
    for (int k = 0; k < FU_RACE_CLASSES; k++) differs |= fabsf(p[k] - q[k]) > 1e-6f;
    CHECK(differs);
    fu_race_judge_free(j);
    fu_race_judge_free(back);
}

TEST(race_judge_load_refuses_bad_files) {
    char path[512];
    snprintf(path, sizeof path, "%s/race_judge_bad.safetensors", fu_test_tmpdir());
    CHECK(fu_race_judge_load("/nonexistent/judge.safetensors") == NULL && strstr(fu_last_error(), "/nonexistent/judge.safetensors"));
    FILE *f = fopen(path, "w");
    REQUIRE(f);
    fputs("garbage, not safetensors", f);
    fclose(f);
    CHECK(fu_race_judge_load(path) == NULL && strstr(fu_last_error(), "race_judge_bad.safetensors"));
    fu_race_judge *j = fu_race_judge_new(4);
    REQUIRE(j);
    /* a heads-like file without the judge's tensors */
    fu_tensor *w = fu_tensor_newv(2, (int64_t)5, (int64_t)256);
    REQUIRE(w);
    fu_st_item only[1] = {{"race.1.weight", w, FU_F32}};
    REQUIRE(fu_st_save(path, only, 1, NULL, 0) == FU_OK);
    CHECK(fu_race_judge_load(path) == NULL && strstr(fu_last_error(), "'judge.0.weight' missing"));
    /* wrong shape: the output layer where the hidden layer belongs */
    fu_tensor *keep = j->mlp.w[0];
    j->mlp.w[0] = j->mlp.w[1];
    REQUIRE(fu_race_judge_save(j, path, NULL, 0) == FU_OK);
    j->mlp.w[0] = keep;
    CHECK(fu_race_judge_load(path) == NULL && strstr(fu_last_error(), "'judge.0.weight' has the wrong shape"));
    /* non-finite weights, a zero scale */
    j->mlp.b[1]->data[2] = NAN;
    REQUIRE(fu_race_judge_save(j, path, NULL, 0) == FU_OK);
    CHECK(fu_race_judge_load(path) == NULL && strstr(fu_last_error(), "'judge.1.bias' holds non-finite"));
    j->mlp.b[1]->data[2] = 0;
    j->scale[17] = 0;
    REQUIRE(fu_race_judge_save(j, path, NULL, 0) == FU_OK);
    CHECK(fu_race_judge_load(path) == NULL && strstr(fu_last_error(), "input_scale[17]"));
    fu_tensor_free(w);
    fu_race_judge_free(j);
}

/* ------------------------------------------------------------------ trainer */

/* Five Gaussian blobs in 12 dimensions, unbalanced like UTKFace (class 1 rare). */
static void blobs(fu_rng *r, int64_t n, float *x, int *y) {
    for (int64_t i = 0; i < n; i++) {
        int c = i % 20 == 0 ? 1 : (int)(i % 5 == 1 ? 0 : i % 5);
        y[i] = c;
        for (int d = 0; d < 12; d++) x[i * 12 + d] = (float)(0.7 * fu_rng_normal(r) + (d % 5 == c ? 2.0 : 0.0));
    }
}

TEST(race_mlp_train_learns_blobs) {
    enum { NT = 600, NS = 200 };
    float *xt = malloc(NT * 12 * sizeof(float)), *xs = malloc(NS * 12 * sizeof(float));
    int yt[NT], ys[NS];
    REQUIRE(xt && xs);
    fu_rng r;
    fu_rng_seed(&r, 2);
    blobs(&r, NT, xt, yt);
    blobs(&r, NS, xs, ys);
    fu_mlp m = {{fu_tensor_newv(2, (int64_t)16, (int64_t)12), fu_tensor_newv(2, (int64_t)5, (int64_t)16)},
                {fu_tensor_newv(1, (int64_t)16), fu_tensor_newv(1, (int64_t)5)}};
    REQUIRE(m.w[0] && m.w[1] && m.b[0] && m.b[1]);
    for (int k = 0; k < 2; k++) fu_rng_fill_uniform(&r, m.w[k]->data, m.w[k]->numel, -0.25f, 0.25f);
    fu_heads_train_config cfg = fu_heads_train_defaults();
    cfg.batch = 32, cfg.max_epochs = 30, cfg.patience = 30;
    fu_race_rows train = {NT, xt, yt}, sel = {NS, xs, ys};
    fu_race_fit fit;
    REQUIRE(fu_race_mlp_train(&m, 0, &train, &sel, &cfg, &fit, NULL, NULL) == FU_OK);
    CHECK(fit.last_loss < 0.5 * fit.first_loss);
    CHECK(fit.select.balanced > 0.85 && fit.select.n_train == NT && fit.select.n_val == NS && fit.select.count[1] == NS / 20);
    /* bad input: a label out of range, rows that do not fit the flip side, empty selection */
    yt[3] = 7;
    CHECK(fu_race_mlp_train(&m, 0, &train, &sel, &cfg, &fit, NULL, NULL) == FU_E_INPUT && strstr(fu_last_error(), "out of range"));
    yt[3] = 0;
    CHECK(fu_race_mlp_train(&m, 8, &train, &sel, &cfg, &fit, NULL, NULL) == FU_E_INPUT);
    fu_race_rows none = {0, xs, ys};
    CHECK(fu_race_mlp_train(&m, 0, &train, &none, &cfg, &fit, NULL, NULL) == FU_E_INPUT);
    for (int k = 0; k < 2; k++) { fu_tensor_free(m.w[k]); fu_tensor_free(m.b[k]); }
    free(xt);
    free(xs);
}

/* ------------------------------------------------------------------ race data */

/* A pack of n 64x64 UTKFace faces (random pixels), classes round robin, every 4th val. */
static fu_faces *tiny_pack(int n) {
    fu_faces *p = calloc(1, sizeof *p);
    p->size = 64, p->count = n;
    p->labels = calloc((size_t)n, sizeof *p->labels);
    p->pixels = malloc((size_t)n * 3 * 64 * 64);
    fu_rng r;
    fu_rng_seed(&r, 5);
    for (int i = 0; i < n; i++) {
        fu_face_label *l = &p->labels[i];
        snprintf(l->path, sizeof l->path, "utkface/%d_0_%d_x.jpg", i, i % 5);
        l->source = FU_FACES_UTKFACE, l->race = (int8_t)(i % 5), l->split = (uint8_t)(i % 4 == 3 ? FU_SPLIT_VAL : FU_SPLIT_TRAIN);
    }
    for (int64_t k = 0; k < (int64_t)n * 3 * 64 * 64; k++) p->pixels[k] = (uint8_t)fu_rng_below(&r, 256);
    return p;
}

TEST(race_data_parts_and_thumbnails) {
    fu_faces *pack = tiny_pack(200);   /* 150 train (30 per class), 50 val */
    fu_race_data d;
    REQUIRE(fu_race_data_build(pack, 0, NULL, NULL, &d, NULL, NULL) == FU_OK);
    int64_t counts[FU_RD_N_PARTS][FU_RD_CLASSES];
    fu_race_data_counts(&d, counts);
    for (int c = 0; c < FU_RD_CLASSES; c++)
        CHECK(counts[FU_RD_TRAIN][c] == 27 && counts[FU_RD_DEV][c] == 3 && counts[FU_RD_VAL][c] == 10);
    CHECK(d.faceres == NULL && d.n == 200);
    /* face 7's 16x16 thumbnail is PULSE's bicubic by 4 of its pack image, rounded to 8 bits */
    int64_t i = 7;
    fu_graph *g = fu_graph_new();
    fu_tensor *x = fu_graph_tensor(g, 4, (int64_t[]){1, 3, 64, 64});
    for (int64_t k = 0; k < 3 * 64 * 64; k++) x->data[k] = pack->pixels[d.pack_index[i] * 3 * 64 * 64 + k] / 255.0f;
    fu_tensor *t = fu_bicubic_downsample(g, x, 4);
    REQUIRE(t && t->numel == FU_RD_THUMB16);
    float worst = 0;
    for (int k = 0; k < FU_RD_THUMB16; k++) worst = fmaxf(worst, fabsf(d.thumb16[i * FU_RD_THUMB16 + k] - t->data[k]));
    CHECK(worst <= 0.5f / 255 + 1e-6f);
    CHECK(fabsf(d.thumb16[i * FU_RD_THUMB16 + 5] * 255 - roundf(d.thumb16[i * FU_RD_THUMB16 + 5] * 255)) < 1e-3f);
    fu_graph_free(g);
    fu_race_data_free(&d);
    /* a train cap keeps DEV and VAL whole */
    REQUIRE(fu_race_data_build(pack, 5, NULL, NULL, &d, NULL, NULL) == FU_OK);
    fu_race_data_counts(&d, counts);
    CHECK(counts[FU_RD_TRAIN][2] == 5 && counts[FU_RD_DEV][2] == 3 && counts[FU_RD_VAL][2] == 10);
    fu_race_data_free(&d);
    /* a pack without a val face of class 4 is refused */
    for (int k = 0; k < 200; k++)
        if (pack->labels[k].race == 4) pack->labels[k].split = FU_SPLIT_TRAIN;
    CHECK(fu_race_data_build(pack, 0, NULL, NULL, &d, NULL, NULL) == FU_E_INPUT && strstr(fu_last_error(), "val"));
    fu_faces_free(pack);
}

/* ------------------------------------------------------------------ the commands */

static double jnum(const cJSON *o, const char *a, const char *b) {
    const cJSON *x = cJSON_GetObjectItem(cJSON_GetObjectItem(o, a), b);
    return cJSON_IsNumber(x) ? x->valuedouble : -1;
}

TEST(cli_train_thumb_race_learns_and_keeps_other_heads) {
    char pack_path[512], heads_in[512], heads_out[512], args[2048], so[65536], se[4096];
    snprintf(pack_path, sizeof pack_path, "%s/race_pack.bin", fu_test_tmpdir());
    snprintf(heads_in, sizeof heads_in, "%s/race_heads_in.safetensors", fu_test_tmpdir());
    snprintf(heads_out, sizeof heads_out, "%s/race_heads_out.safetensors", fu_test_tmpdir());
    /* faces whose colour tells the class (plus noise), so a classifier can learn them */
    fu_faces *pack = tiny_pack(300);
    for (int i = 0; i < 300; i++)
        for (int c = 0; c < 3; c++)
            for (int k = 0; k < 64 * 64; k++) {
                uint8_t *px = &pack->pixels[((size_t)i * 3 + c) * 64 * 64 + k];
                *px = (uint8_t)(*px / 4 + (c == pack->labels[i].race % 3 ? 120 : 0) + (pack->labels[i].race >= 3 ? 60 : 0));
            }
    REQUIRE(fu_faces_save(pack, pack_path) == FU_OK);
    fu_heads *h = fu_heads_new(11);
    REQUIRE(h && fu_heads_save(h, heads_in, NULL, 0) == FU_OK);
    /* bad input: exit 2, one line, nothing written */
    snprintf(args, sizeof args, "train thumb-race --pack /nonexistent/pack.bin --heads %s --out %s --quiet", heads_in, heads_out);
    CHECK(run_faceup(args, so, sizeof so, se, sizeof se) == FU_E_INPUT && strstr(se, "/nonexistent/pack.bin") && count_newlines(se) == 1);
    snprintf(args, sizeof args, "train thumb-race --pack %s --heads %s --out %s --quiet", pack_path, pack_path, heads_out);
    CHECK(run_faceup(args, so, sizeof so, se, sizeof se) == FU_E_INPUT && strstr(se, "race_pack.bin") && count_newlines(se) == 1);
    snprintf(args, sizeof args, "train race-judge --pack %s --quiet", pack_path);
    CHECK(run_faceup(args, so, sizeof so, se, sizeof se) == FU_E_INPUT && strstr(se, "--pack and --out are required"));
    CHECK(!file_exists(heads_out));
    snprintf(args, sizeof args, "train thumb-race --pack %s --heads %s --out %s --quiet --threads 1", pack_path, heads_in, heads_out);
    int rc = run_faceup(args, so, sizeof so, se, sizeof se);
    CHECK_MSG(rc == FU_OK, "exit %d: %s", rc, se);
    cJSON *j = cJSON_Parse(so);
    REQUIRE(j);
    CHECK(jnum(j, "thumb16", "last_epoch_loss") < 0.5 * jnum(j, "thumb16", "first_epoch_loss"));
    CHECK(jnum(j, "thumb16", "train_faces") == 205 && jnum(j, "thumb16", "dev_faces") == 20);
    CHECK(jnum(cJSON_GetObjectItem(j, "thumb16"), "val", "balanced_accuracy") > 0.9);
    CHECK(jnum(cJSON_GetObjectItem(j, "thumb8"), "val", "balanced_accuracy") > 0.9);
    CHECK(jnum(j, "thumb16_before", "faces") == 75);
    /* the worst-class offsets fitted on dev: in the JSON with their val scores, and in the file */
    const cJSON *with = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "thumb8"), "val_with_offsets");
    const cJSON *offsets = cJSON_GetObjectItem(with, "offsets");
    CHECK(jnum(cJSON_GetObjectItem(j, "thumb8"), "val_with_offsets", "balanced_accuracy") > 0.9);
    REQUIRE(cJSON_GetArraySize(offsets) == FU_RACE_CLASSES);
    fu_heads *back = fu_heads_load(heads_out);
    REQUIRE(back);
    for (int c = 0; c < FU_RACE_CLASSES; c++) CHECK_NEAR(back->thumb_logit_bias[1][c], cJSON_GetArrayItem(offsets, c)->valuedouble, 1e-6);
    cJSON_Delete(j);
    /* --no-offsets: plain argmax, zero offsets in the file */
    fu_heads *plain = NULL;
    snprintf(args, sizeof args, "train thumb-race --pack %s --heads %s --out %s.plain --quiet --threads 1 --no-offsets", pack_path, heads_in, heads_out);
    CHECK(run_faceup(args, so, sizeof so, se, sizeof se) == FU_OK);
    snprintf(args, sizeof args, "%s.plain", heads_out);
    REQUIRE((plain = fu_heads_load(args)));
    for (int c = 0; c < FU_RACE_CLASSES; c++) CHECK(plain->thumb_logit_bias[0][c] == 0 && plain->thumb_logit_bias[1][c] == 0);
    fu_heads_free(plain);
    /* the new file: new thumbnail classifiers, every other head unchanged */
    CHECK(tensor_equals(back->race.w[0], h->race.w[0]->data, h->race.w[0]->numel) && tensor_equals(back->attr.b[1], h->attr.b[1]->data, h->attr.b[1]->numel));
    CHECK(!tensor_equals(back->thumb16.w[0], h->thumb16.w[0]->data, h->thumb16.w[0]->numel));
    float probs[FU_RACE_CLASSES];
    fu_tensor *t = fu_tensor_newv(4, (int64_t)1, (int64_t)3, (int64_t)16, (int64_t)16);
    REQUIRE(t);
    fu_race_data d;
    REQUIRE(fu_race_data_build(pack, 0, NULL, NULL, &d, NULL, NULL) == FU_OK);
    int right = 0, n = 0;
    for (int64_t i = 0; i < d.n; i++) {
        if (d.part[i] != FU_RD_VAL) continue;
        memcpy(t->data, d.thumb16 + i * FU_RD_THUMB16, FU_RD_THUMB16 * sizeof(float));
        right += fu_heads_thumb_race(back, t, probs) == d.race[i], n++;
    }
    CHECK_MSG(right >= n - 3, "upscale's thumbnail classifier: %d of %d right", right, n);
    fu_race_data_free(&d);
    fu_tensor_free(t);
    fu_heads_free(back);
    fu_heads_free(h);
    fu_faces_free(pack);
}
