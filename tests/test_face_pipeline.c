/* The face pipeline's crops, attribute decoding, LFW scoring and calibration, and an LFW subset
 * run end to end (face/pipeline.h, face/analyze.h, eval/lfw_run.h, eval/calibration.h). */
#include "test.h"
#include "util.h"
#include "eval/calibration.h"
#include "eval/lfw_run.h"
#include "face/analyze.h"
#include "face/dlib_resnet.h"
#include "face/models.h"
#include "face/pipeline.h"
#include "io/fileutil.h"
#include "faceup.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int models_present(void) {
    char a[1024], b[1024], c[1024], d[1024];
    return file_exists(fu_model_path(FU_BLAZEFACE_MODEL, a, sizeof a)) &&
           file_exists(fu_model_path(FU_DLIB_LANDMARKS_MODEL, b, sizeof b)) &&
           file_exists(fu_model_path(FU_DLIB_RESNET_MANIFEST, c, sizeof c)) &&
           file_exists(fu_model_path("human-models-3.0.4/models/gear.json", d, sizeof d));
}

TEST(face_human_region) {
    fu_face_det det = {10, 20, 50, 70, 0.9f, {0}};
    float r[4];
    fu_face_human_region(&det, 1, 200, 100, r);
    /* centre (30, 45), longer side 50 -> side 70, corners rounded */
    CHECK(r[0] == -5 && r[1] == 10 && r[2] == 65 && r[3] == 80);
    fu_face_human_region(&det, 0, 200, 100, r);
    CHECK(r[0] == 0 && r[1] == 0 && r[2] == 200 && r[3] == 100);
}

TEST(face_gear_age_and_attributes) {
    float onehot[7] = {0, 0, 0, 1, 0, 0, 0};
    CHECK_NEAR(fu_gear_age(onehot), 35.5, 1e-6);
    /* sorted: 15 (0.5), 23 (0.3), 28 (0.2): 15 + 0.3 (23 - 15) = 17.4; + 0.2 (28 - 17.4) = 19.52 */
    float bins[7] = {0.5f, 0.3f, 0.2f, 0, 0, 0, 0};
    CHECK_NEAR(fu_gear_age(bins), 19.52, 1e-5);
    float gear[FU_GEAR_DIM] = {0, 0, 0, 1, 0, 0, 0, 0.2f, 0.8f, 0.1f, 0.1f, 0.6f, 0.1f, 0.1f};
    float emo[FU_EMOTION_DIM] = {0.05f, 0, 0, 0.7f, 0.05f, 0.1f, 0.1f};
    fu_face_attributes a;
    fu_face_attributes_read(gear, emo, &a);
    CHECK(a.race_best == 2 && !strcmp(fu_race_names[a.race_best], "asian"));
    CHECK(a.p_female > a.p_male);
    CHECK(a.emotion_best == 3 && !strcmp(fu_emotion_names[3], "happy"));
    CHECK_NEAR(a.smiling, 0.7, 1e-6);
}

TEST(lfw_subset_keeps_folds) {
    fu_lfw_pairs p = {10, 300, 6000, calloc(6000, sizeof(fu_lfw_pair))};
    REQUIRE(p.pairs);
    for (int i = 0; i < p.n; i++) p.pairs[i].fold = i / 600, p.pairs[i].same = i % 600 < 300, p.pairs[i].index[0] = i;
    fu_lfw_subset(&p, 40);
    CHECK(p.n == 40 && p.per_fold == 2);
    int same = 0;
    for (int i = 0; i < p.n; i++) {
        CHECK(p.pairs[i].fold == i / 4);
        same += p.pairs[i].same;
    }
    CHECK(same == 20);
    CHECK(p.pairs[2].index[0] == 300 && p.pairs[3].index[0] == 301);  /* first different pairs of fold 1 */
    free(p.pairs);
}

/* Scores on hand-made embeddings: Euclidean, cosine, and cosine after removing the mean of the
 * other folds' images. */
TEST(lfw_scores_metrics) {
    fu_lfw_pair pairs[4] = {{.fold = 0, .same = 1}, {.fold = 0, .same = 0}, {.fold = 1, .same = 1}, {.fold = 1, .same = 0}};
    fu_lfw_pairs p = {2, 1, 4, pairs};
    float vec[5 * 2] = {1, 1, 1, 2, 3, 1, 5, 5, 5, 6};
    int found[5] = {1, 1, 1, 1, 0};
    int pair_image[8] = {0, 1, 0, 2, 3, 3, 3, 4};
    int fold[5] = {0, 0, 0, 1, 1};
    fu_lfw_embeddings e = {.n_images = 5, .dim = 2, .vectors = vec, .found = found, .pair_image = pair_image, .image_fold = fold};
    float s[4];
    REQUIRE(fu_lfw_scores(&e, &p, FU_LFW_NEG_EUCLIDEAN, s) == FU_OK);
    CHECK_NEAR(s[0], -1, 1e-6);
    CHECK_NEAR(s[1], -2, 1e-6);
    CHECK_NEAR(s[2], 0, 1e-6);
    CHECK_NEAR(s[3], -3, 1e-6);   /* image 4 has no face: below every other pair */
    REQUIRE(fu_lfw_scores(&e, &p, FU_LFW_COSINE, s) == FU_OK);
    CHECK_NEAR(s[0], 3 / sqrt(2 * 5), 1e-6);
    REQUIRE(fu_lfw_scores(&e, &p, FU_LFW_COSINE_CENTERED, s) == FU_OK);
    /* fold 0's pairs use the mean of fold 1's found images: (5, 5) */
    double a[2] = {-4, -4}, b[2] = {-4, -3};
    CHECK_NEAR(s[0], (a[0] * b[0] + a[1] * b[1]) / sqrt(32.0 * 25.0), 1e-6);
    CHECK_NEAR(s[3], s[0] < s[1] ? s[0] - 1 : s[1] - 1, 1e-6);
}

TEST(calibration_round_trip) {
    char path[600];
    snprintf(path, sizeof path, "%s/calibration.json", fu_test_tmpdir());
    remove(path);
    fu_calibration a = {"neg-euclidean", -0.55, 0.991, 0.004, 6000}, b = {"cosine", 0.3, 0.97, 0.01, 6000}, r;
    CHECK(fu_calibration_read(path, "dlib-resnet", &r) == FU_E_INPUT);
    REQUIRE(fu_calibration_write(path, "dlib-resnet", &a) == FU_OK);
    REQUIRE(fu_calibration_write(path, "faceres", &b) == FU_OK);
    a.threshold = -0.6;
    REQUIRE(fu_calibration_write(path, "dlib-resnet", &a) == FU_OK);
    REQUIRE(fu_calibration_read(path, "dlib-resnet", &r) == FU_OK);
    CHECK(!strcmp(r.metric, "neg-euclidean") && r.threshold == -0.6 && r.lfw_accuracy == 0.991 && r.pairs == 6000);
    REQUIRE(fu_calibration_read(path, "faceres", &r) == FU_OK);
    CHECK(!strcmp(r.metric, "cosine") && r.threshold == 0.3);
    CHECK(fu_calibration_read(path, "arcface", &r) == FU_E_INPUT && strstr(fu_last_error(), "arcface"));
    /* mirrored descriptors have an entry of their own */
    char key[64];
    CHECK(!strcmp(fu_calibration_key("dlib-resnet", 0, key, sizeof key), "dlib-resnet"));
    CHECK(!strcmp(fu_calibration_key("dlib-resnet", 1, key, sizeof key), "dlib-resnet+mirror"));
    CHECK(fu_calibration_read(path, key, &r) == FU_E_INPUT);
    REQUIRE(fu_calibration_write(path, key, &b) == FU_OK);
    REQUIRE(fu_calibration_read(path, key, &r) == FU_OK && r.threshold == 0.3);
    REQUIRE(fu_calibration_read(path, "dlib-resnet", &r) == FU_OK && r.threshold == -0.6);
    FILE *f = fopen(path, "w");
    REQUIRE(f);
    fputs("[1, 2", f);
    fclose(f);
    CHECK(fu_calibration_read(path, "dlib-resnet", &r) == FU_E_INPUT && strstr(fu_last_error(), path));
}

/* Numbers a double cannot hold read as infinity in cJSON; an entry with one is refused (found by
 * fuzz/fuzz_calibration: such a threshold would decide every pair alike, and writes back as
 * null). */
TEST(calibration_refuses_non_finite_numbers) {
    char path[600];
    snprintf(path, sizeof path, "%s/calibration-inf.json", fu_test_tmpdir());
    static const char *const bad[] = {
        "{\"dlib-resnet\": {\"metric\": \"cosine\", \"threshold\": 1e999}}",
        "{\"dlib-resnet\": {\"metric\": \"cosine\", \"threshold\": -1e400}}",
        "{\"dlib-resnet\": {\"metric\": \"cosine\", \"threshold\": 0.5, \"lfw_accuracy\": 1e999}}",
        "{\"dlib-resnet\": {\"metric\": \"cosine\", \"threshold\": 0.5, \"pairs\": \"600\"}}"};
    fu_calibration r;
    for (int i = 0; i < 4; i++) {
        REQUIRE(fu_write_file_atomic(path, bad[i], strlen(bad[i])) == FU_OK);
        CHECK(fu_calibration_read(path, "dlib-resnet", &r) == FU_E_INPUT && strstr(fu_last_error(), path));
    }
    static const char good[] = "{\"dlib-resnet\": {\"metric\": \"cosine\", \"threshold\": 1e300}}";
    REQUIRE(fu_write_file_atomic(path, good, strlen(good)) == FU_OK);
    CHECK(fu_calibration_read(path, "dlib-resnet", &r) == FU_OK && r.threshold == 1e300 && r.pairs == 0);
}

/* The crop each network sees: dlib's chip is square in the face; human's crops follow the box. */
TEST(face_net_crops) {
    if (!models_present()) SKIP("face models absent (tools/fetch-models.sh)");
    fu_face_net *gear = fu_face_net_load(FU_NET_GEAR);
    REQUIRE(gear);
    CHECK(fu_face_net_out_dim(gear) == FU_GEAR_DIM && fu_face_net_input_size(gear) == 198);
    fu_face_found face = {.detected = 0};
    double t[6];
    REQUIRE(fu_face_net_theta(gear, &face, 193, 193, t) == FU_OK);
    /* whole 193-px image as the 192-px face tensor: cropAndResize positions q (193-1)/(192-1) */
    CHECK_NEAR(t[2], 0.1 * 191 * 192.0 / 191, 1e-4);            /* left 0.1 of the face tensor */
    CHECK_NEAR(t[5], 0, 1e-4);                                  /* top 0 */
    CHECK_NEAR(t[0] * 197 + t[2], 0.9 * 192, 1e-4);             /* right 0.9 */
    CHECK_NEAR(t[4] * 197 + t[5], 0.9 * 192, 1e-4);             /* bottom 0.9 */
    CHECK(t[1] == 0 && t[3] == 0);
    fu_face_net_free(gear);
}

/* Test-time mirroring: the output is the mean of the network's outputs for the crop and for
 * the crop warped with the left-right mirrored theta (output column u -> S-1-u), and the cache
 * tag says so. */
TEST(face_net_mirror_averages_the_mirrored_crop) {
    if (!models_present()) SKIP("face models absent (tools/fetch-models.sh)");
    fu_face_net *net = fu_face_net_load(FU_NET_DLIB_RESNET);
    REQUIRE(net);
    int S = fu_face_net_input_size(net), dim = fu_face_net_out_dim(net);
    fu_tensor *img = fu_tensor_newv(4, (int64_t)1, (int64_t)3, (int64_t)170, (int64_t)160);
    REQUIRE(img);
    for (int64_t i = 0; i < img->numel; i++) img->data[i] = 0.5f + 0.4f * sinf(0.013f * (float)(i % 27191) + 0.7f * (float)(i / 27200));
    double theta[2][6] = {{0.9, 0.15, 4, -0.12, 0.95, 6}};
    memcpy(theta[1], theta[0], sizeof theta[0]);   /* the same warp, read right to left */
    theta[1][0] = -theta[0][0], theta[1][2] = theta[0][2] + theta[0][0] * (S - 1);
    theta[1][3] = -theta[0][3], theta[1][5] = theta[0][5] + theta[0][3] * (S - 1);
    fu_tensor *both[2] = {img, img};
    float plain[2 * 128], mirrored[128];
    REQUIRE(dim == 128 && fu_face_net_run(net, both, (const double (*)[6])theta, 2, plain) == FU_OK);
    char tag[128];
    CHECK(strstr(fu_face_net_cache_tag(net, tag, sizeof tag), "+mirror") == NULL);
    fu_face_net_set_mirror(net, 1);
    CHECK(strstr(fu_face_net_cache_tag(net, tag, sizeof tag), "+mirror") != NULL);
    REQUIRE(fu_face_net_run(net, both, (const double (*)[6])theta, 1, mirrored) == FU_OK);
    double worst = 0, apart = 0;
    for (int k = 0; k < 128; k++) {
        worst = fmax(worst, fabs(mirrored[k] - 0.5 * (plain[k] + plain[128 + k])));
        apart = fmax(apart, fabs(plain[k] - plain[128 + k]));
    }
    CHECK_MSG(worst < 1e-5, "mirrored output off the mean by %g", worst);
    CHECK_MSG(apart > 1e-3, "the two crops gave the same descriptor (%g): the test would prove nothing", apart);
    fu_tensor_free(img);
    fu_face_net_free(net);
}

/* 40 LFW pairs (2 same and 2 different per fold) through detection, landmarks, dlib's chip and
 * dlib's ResNet: dlib's descriptor is 99.38% accurate on LFW, so a subset this small must still
 * be nearly all right (measured: 100%). */
TEST(lfw_subset_dlib_accuracy) {
    const char *shared = fu_test_shared_dir();
    if (!shared) SKIP("../shared/data absent");
    if (!models_present()) SKIP("face models absent (tools/fetch-models.sh)");
    char dir[600];
    snprintf(dir, sizeof dir, "%s/data/lfw", shared);
    fu_lfw_pairs pairs;
    REQUIRE(fu_lfw_load_pairs(dir, &pairs) == FU_OK);
    fu_lfw_subset(&pairs, 40);
    fu_face_finder *finder = fu_face_finder_load(1);
    fu_face_net *net = fu_face_net_load(FU_NET_DLIB_RESNET);
    REQUIRE(finder && net);
    fu_lfw_embed_opts opts = {NULL, 16, NULL, NULL, 1};
    fu_lfw_embeddings e;
    REQUIRE(fu_lfw_embed(dir, &pairs, finder, net, &opts, &e) == FU_OK);
    CHECK(e.n_images >= 60 && e.n_missing <= 1);
    float scores[40];
    fu_lfw_result res;
    REQUIRE(fu_lfw_scores(&e, &pairs, FU_LFW_NEG_EUCLIDEAN, scores) == FU_OK);
    REQUIRE(fu_lfw_evaluate(&pairs, scores, &res) == FU_OK);
    CHECK(res.mean >= 0.9);
    int right = 0;   /* dlib's own criterion: distance < 0.6 */
    for (int i = 0; i < pairs.n; i++) right += (-scores[i] < 0.6f) == pairs.pairs[i].same;
    CHECK(right >= 36);
    fu_lfw_embeddings_free(&e);
    fu_face_net_free(net);
    fu_face_finder_free(finder);
    fu_lfw_pairs_free(&pairs);
}
