/* The public API of include/faceup.h, called as a client would: version, images, faces. */
#include "test.h"
#include "util.h"
#include "faceup.h"
#include "face/dlib_resnet.h"
#include "face/models.h"
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

TEST(api_version_matches_the_header) {
    char numbers[32];
    snprintf(numbers, sizeof numbers, "%d.%d.%d", FACEUP_VERSION_MAJOR, FACEUP_VERSION_MINOR, FACEUP_VERSION_PATCH);
    CHECK(strcmp(FACEUP_VERSION, numbers) == 0);
    CHECK(strcmp(fu_version(), FACEUP_VERSION) == 0);
}

/* 5 x 3 pixels of distinct colours through PNG and JPEG files and back. */
TEST(api_image_round_trip) {
    enum { W = 5, H = 3 };
    unsigned char rgb[W * H * 3], back[W * H * 3];
    for (int i = 0; i < W * H * 3; i++) rgb[i] = (unsigned char)(i * 17 % 256);
    fu_image *img = NULL, *read = NULL;
    REQUIRE(fu_image_from_rgb(rgb, W, H, &img) == FU_OK);
    CHECK(fu_image_width(img) == W && fu_image_height(img) == H);
    fu_image_to_rgb(img, back);
    CHECK(memcmp(rgb, back, sizeof rgb) == 0);
    char png[] = "/tmp/faceup-api-XXXXXX.png", jpg[] = "/tmp/faceup-api-XXXXXX.JPG";
    close(mkstemps(png, 4));
    close(mkstemps(jpg, 4));
    REQUIRE(fu_image_write(img, png) == FU_OK);
    REQUIRE(fu_image_read(png, &read) == FU_OK);
    CHECK(fu_image_width(read) == W && fu_image_height(read) == H);
    fu_image_to_rgb(read, back);
    CHECK(memcmp(rgb, back, sizeof rgb) == 0);   /* PNG is lossless */
    fu_image_free(read);
    REQUIRE(fu_image_write(img, jpg) == FU_OK);
    FILE *f = fopen(jpg, "rb");
    unsigned char magic[2] = {0};
    REQUIRE(f);
    CHECK(fread(magic, 1, 2, f) == 2 && magic[0] == 0xFF && magic[1] == 0xD8);   /* a JPEG, by its name */
    fclose(f);
    unlink(png);
    unlink(jpg);
    fu_image_free(img);
}

TEST(api_image_errors_name_the_problem) {
    fu_image *img = (fu_image *)&img;
    CHECK(fu_image_read("/nonexistent/faceup.png", &img) == FU_E_INPUT);
    CHECK(img == NULL);
    CHECK(strstr(fu_last_error(), "/nonexistent/faceup.png") != NULL);
    unsigned char px[3] = {0};
    CHECK(fu_image_from_rgb(px, 0, 1, &img) == FU_E_INPUT && img == NULL);
    CHECK(fu_image_from_rgb(NULL, 1, 1, &img) == FU_E_INPUT && img == NULL);
    CHECK(strstr(fu_last_error(), "fu_image_from_rgb") != NULL);
    fu_image_free(NULL);
    fu_face_kit_close(NULL);
}

static int face_models_present(void) {
    char a[1024], b[1024], c[1024];
    return file_exists(fu_model_path(FU_BLAZEFACE_MODEL, a, sizeof a)) &&
           file_exists(fu_model_path(FU_DLIB_LANDMARKS_MODEL, b, sizeof b)) &&
           file_exists(fu_model_path(FU_DLIB_RESNET_MANIFEST, c, sizeof c));
}

static fu_image *lfw_image(const char *shared, const char *person, int number) {
    char path[700];
    snprintf(path, sizeof path, "%s/data/lfw/images/%s/%s_%04d.jpg", shared, person, person, number);
    fu_image *img = NULL;
    return fu_image_read(path, &img) == FU_OK ? img : NULL;
}

/* Two photos of Colin Powell and one of George W. Bush: dlib's rule tells them apart; the
 * thumbnail is `faceup align --size 256 --downscale 16`'s, pixel for pixel; a flat image has no
 * face. */
TEST(api_faces_describe_compare_thumbnail) {
    const char *shared = fu_test_shared_dir();
    if (!shared) SKIP("../shared/data absent");
    if (!face_models_present()) SKIP("face models absent (tools/fetch-models.sh)");
    fu_image *a = lfw_image(shared, "Colin_Powell", 40), *b = lfw_image(shared, "Colin_Powell", 49),
             *c = lfw_image(shared, "George_W_Bush", 7);
    if (!a || !b || !c) SKIP("the LFW photos of this test are absent");
    fu_face_kit *kit = NULL;
    REQUIRE(fu_face_kit_open(&kit) == FU_OK);
    float da[FU_DESCRIPTOR_DIM], db[FU_DESCRIPTOR_DIM], dc[FU_DESCRIPTOR_DIM];
    REQUIRE(fu_face_describe(kit, a, da) == FU_OK);
    REQUIRE(fu_face_describe(kit, b, db) == FU_OK);
    REQUIRE(fu_face_describe(kit, c, dc) == FU_OK);
    float same = fu_descriptor_distance(da, db), other = fu_descriptor_distance(da, dc);
    CHECK_MSG(same < FU_SAME_PERSON_DISTANCE, "same person at distance %g", same);
    CHECK_MSG(other > FU_SAME_PERSON_DISTANCE, "different people at distance %g", other);
    CHECK(fu_descriptor_distance(da, da) == 0);
    fu_image *thumb = NULL;
    REQUIRE(fu_face_thumbnail(kit, a, 16, &thumb) == FU_OK);
    CHECK(fu_image_width(thumb) == 16 && fu_image_height(thumb) == 16);
    unsigned char px[16 * 16 * 3];
    fu_image_to_rgb(thumb, px);
    int lo = 255, hi = 0;
    for (int i = 0; i < 16 * 16 * 3; i++) lo = px[i] < lo ? px[i] : lo, hi = px[i] > hi ? px[i] : hi;
    CHECK_MSG(hi - lo > 60, "thumbnail spans only %d..%d", lo, hi);   /* a face, not a flat patch */
    char args[1024], out[256], err[1024], cli_png[] = "/tmp/faceup-api-XXXXXX.png";
    close(mkstemps(cli_png, 4));
    snprintf(args, sizeof args, "align %s/data/lfw/images/Colin_Powell/Colin_Powell_0040.jpg -o %s --size 256 --downscale 16 --quiet",
             shared, cli_png);
    REQUIRE(run_faceup(args, out, sizeof out, err, sizeof err) == 0);
    fu_image *cli = NULL;
    REQUIRE(fu_image_read(cli_png, &cli) == FU_OK);
    unsigned char cli_px[16 * 16 * 3];
    CHECK(fu_image_width(cli) == 16 && fu_image_height(cli) == 16);
    fu_image_to_rgb(cli, cli_px);
    CHECK(memcmp(px, cli_px, sizeof px) == 0);
    fu_image_free(cli);
    unlink(cli_png);
    fu_image_free(thumb);
    thumb = (fu_image *)&thumb;
    CHECK(fu_face_thumbnail(kit, a, 12, &thumb) == FU_E_INPUT && thumb == NULL);
    unsigned char grey[64 * 64 * 3];
    memset(grey, 128, sizeof grey);
    fu_image *flat = NULL;
    REQUIRE(fu_image_from_rgb(grey, 64, 64, &flat) == FU_OK);
    CHECK(fu_face_describe(kit, flat, da) == FU_E_INPUT);
    CHECK(strstr(fu_last_error(), "no face") != NULL);
    fu_image_free(flat);
    fu_face_kit_close(kit);
    fu_image_free(a);
    fu_image_free(b);
    fu_image_free(c);
}

/* The number `name` in the object `key` of a face of the CLI's JSON; NaN when absent. */
static double json_probability(const cJSON *face, const char *key, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(face, key), name);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* fu_face_analyze agrees with `faceup analyze --json` on the same photo. */
TEST(api_face_analyze_matches_the_cli) {
    const char *shared = fu_test_shared_dir();
    if (!shared) SKIP("../shared/data absent");
    char gear[1024], emotion[1024];
    if (!face_models_present() || !file_exists(fu_model_path("human-models-3.0.4/models/gear.json", gear, sizeof gear)) ||
        !file_exists(fu_model_path("human-models-3.0.4/models/emotion.json", emotion, sizeof emotion)))
        SKIP("face models absent (tools/fetch-models.sh)");
    fu_image *photo = lfw_image(shared, "Colin_Powell", 40);
    if (!photo) SKIP("the LFW photo of this test is absent");
    fu_face_kit *kit = NULL;
    fu_face_analysis a;
    REQUIRE(fu_face_kit_open(&kit) == FU_OK);
    REQUIRE(fu_face_analyze(kit, photo, &a) == FU_OK);
    char args[700], out[8192], err[1024];
    snprintf(args, sizeof args, "analyze --json --quiet %s/data/lfw/images/Colin_Powell/Colin_Powell_0040.jpg", shared);
    REQUIRE(run_faceup(args, out, sizeof out, err, sizeof err) == 0);
    cJSON *all = cJSON_Parse(out);
    const cJSON *face = cJSON_GetArrayItem(all, 0);
    REQUIRE(face);
    static const char *const races[FU_FACE_RACES] = {"white", "black", "asian", "indian", "other"};
    static const char *const emotions[FU_FACE_EMOTIONS] = {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"};
    for (int i = 0; i < FU_FACE_RACES; i++) CHECK_NEAR(a.race[i], json_probability(face, "race_probabilities", races[i]), 1e-5);
    for (int i = 0; i < FU_FACE_EMOTIONS; i++)
        CHECK_NEAR(a.emotion[i], json_probability(face, "emotion_probabilities", emotions[i]), 1e-5);
    CHECK_NEAR(a.p_female, json_probability(face, "gender_probabilities", "female"), 1e-5);
    CHECK_NEAR(a.age, cJSON_GetObjectItemCaseSensitive(face, "age")->valuedouble, 1e-3);
    cJSON_Delete(all);
    fu_face_kit_close(kit);
    fu_image_free(photo);
}
