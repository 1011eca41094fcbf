/* dlib shape predictor: format reader (synthetic models) and 68-point landmarks against dlib
 * itself (reference written by tests/reference/dlib_reference.sh). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "face/landmarks.h"
#include "face/models.h"
#include "io/dlib_dat.h"
#include "io/fileutil.h"
#include "io/image.h"
#include "test.h"
#include "util.h"

/* Two parts, one cascade, one depth-1 tree comparing the pixels at the two parts:
 * brighter at part 0 (by more than 10) moves part 0 right by 0.1, else part 1 down by 0.1. */
static float tiny_shape[4] = {0.25f, 0.5f, 0.75f, 0.5f};
static float tiny_leaves[8] = {0.1f, 0, 0, 0, 0, 0, 0, 0.1f};
static uint32_t tiny_anchor[2] = {0, 1};
static float tiny_deltas[4] = {0, 0, 0, 0};
static fu_dlib_split tiny_split = {0, 1, 10.0f};
static fu_dlib_tree tiny_tree = {0, 1, 0};
static fu_dlib_cascade tiny_cascade = {0, 1, 0, 2};

static fu_shape_predictor tiny_predictor(void) {
    return (fu_shape_predictor){2, tiny_shape, 1, &tiny_cascade, &tiny_tree, &tiny_split, tiny_leaves,
                                tiny_anchor, tiny_deltas, 1, 1, 2, 2};
}

TEST(dlib_dat_roundtrip_and_predict) {
    fu_shape_predictor src = tiny_predictor();
    unsigned char *buf;
    size_t size;
    REQUIRE(fu_dlib_serialize_shape_predictor(&src, &buf, &size) == FU_OK);
    fu_shape_predictor *sp = fu_dlib_parse_shape_predictor(buf, size, "tiny");
    free(buf);
    REQUIRE(sp);
    CHECK(sp->n_parts == 2 && sp->n_cascades == 1 && sp->total_trees == 1 && sp->total_pixels == 2);
    CHECK(!memcmp(sp->initial_shape, tiny_shape, sizeof tiny_shape) && !memcmp(sp->leaves, tiny_leaves, sizeof tiny_leaves));
    CHECK(sp->splits[0].idx1 == 0 && sp->splits[0].idx2 == 1 && sp->splits[0].thresh == 10.0f);

    uint8_t pix[100 * 100] = {0};
    fu_gray_image img = {100, 100, pix};
    fu_box box = {0, 0, 99, 99};
    float parts[4];
    pix[50 * 100 + 25] = 200;   /* part 0 at (24.75, 49.5) reads pixel (25, 50) */
    REQUIRE(fu_shape_predict(sp, &img, box, parts) == FU_OK);
    CHECK_NEAR(parts[0], 0.35 * 99, 1e-4);
    CHECK_NEAR(parts[3], 0.5 * 99, 1e-4);
    pix[50 * 100 + 25] = 0;
    pix[50 * 100 + 74] = 200;   /* part 1 at (74.25, 49.5) */
    REQUIRE(fu_shape_predict(sp, &img, box, parts) == FU_OK);
    CHECK_NEAR(parts[0], 0.25 * 99, 1e-4);
    CHECK_NEAR(parts[3], 0.6 * 99, 1e-4);
    CHECK(fu_shape_predict(sp, &img, (fu_box){10, 10, 10, 20}, parts) == FU_E_INPUT);
    fu_shape_predictor_free(sp);
}

static int parse_fails(const unsigned char *buf, size_t size, const char *expect) {
    fu_shape_predictor *sp = fu_dlib_parse_shape_predictor(buf, size, "bad.dat");
    fu_shape_predictor_free(sp);
    return !sp && fu_last_code() == FU_E_INPUT && strstr(fu_last_error(), "bad.dat") && strstr(fu_last_error(), expect);
}

TEST(dlib_dat_rejects_truncated_and_corrupt) {
    fu_shape_predictor src = tiny_predictor();
    unsigned char *buf;
    size_t size;
    REQUIRE(fu_dlib_serialize_shape_predictor(&src, &buf, &size) == FU_OK);
    int bad = 0, early = 0;
    for (size_t n = 0; n < size; n++) {
        bad += !parse_fails(buf, n, "");
        early += strstr(fu_last_error(), "file ends early") != NULL;
    }
    CHECK_MSG(bad == 0, "%d of %zu truncations were accepted", bad, size);
    CHECK(early > 0);
    buf[1] = 2;                        /* version 2 */
    CHECK(parse_fails(buf, size, "unsupported version"));
    buf[1] = 1;
    free(buf);

    tiny_split.idx2 = 2;               /* beyond the cascade's 2 pixels */
    REQUIRE(fu_dlib_serialize_shape_predictor(&src, &buf, &size) == FU_OK);
    CHECK(parse_fails(buf, size, "split feature index"));
    free(buf);
    tiny_split.idx2 = 1;
    tiny_anchor[1] = 5;                /* only 2 parts */
    REQUIRE(fu_dlib_serialize_shape_predictor(&src, &buf, &size) == FU_OK);
    CHECK(parse_fails(buf, size, "anchor part index"));
    free(buf);
    tiny_anchor[1] = 1;
    /* initial_shape[0] = 0.25 is written as 2^61 * 2^-63 from byte 6 (version 01 01, rows
     * 81 04, cols 81 01): its exponent -63 (81 3f) becomes +200, beyond float range. */
    REQUIRE(fu_dlib_serialize_shape_predictor(&src, &buf, &size) == FU_OK);
    REQUIRE(buf[6] == 0x08 && buf[15] == 0x81 && buf[16] == 0x3f);
    buf[15] = 0x01;
    buf[16] = 200;
    CHECK(parse_fails(buf, size, "float range"));
    free(buf);
    /* A huge vector count must fail on the size check, not by allocating. */
    unsigned char huge[] = {0x01, 0x01, 0x88, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x7f, 0x01, 0x01};
    CHECK(parse_fails(huge, sizeof huge, ""));
}

/* ---------- against dlib (tests/reference/dlib_reference.sh) ---------- */


static fu_box json_box(const cJSON *b) {
    return (fu_box){(float)cJSON_GetArrayItem(b, 0)->valuedouble, (float)cJSON_GetArrayItem(b, 1)->valuedouble,
                    (float)cJSON_GetArrayItem(b, 2)->valuedouble, (float)cJSON_GetArrayItem(b, 3)->valuedouble};
}

TEST(landmarks_match_dlib) {
    char path[1024];
    fu_model_path(FU_DLIB_LANDMARKS_MODEL, path, sizeof path);
    if (!file_exists(path)) SKIP("dlib 68-point model absent (tools/fetch-models.sh)");
    cJSON *ref = load_dlib_reference();
    if (!ref) SKIP("no dlib reference landmarks (needs libdlib-dev: tests/reference/dlib_reference.sh)");
    fu_shape_predictor *sp = fu_dlib_load_shape_predictor(path);
    REQUIRE(sp && sp->n_parts == 68);
    double worst = 0, sum = 0;
    int n_points = 0, n_exact = 0, n_faces = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(ref, "images")) {
        const cJSON *box = cJSON_GetObjectItem(e, "box"), *parts = cJSON_GetObjectItem(e, "parts");
        if (!cJSON_IsArray(box) || !cJSON_IsArray(parts)) continue;
        fu_tensor *rgb = fu_image_load(cJSON_GetObjectItem(e, "path")->valuestring);
        if (!rgb) continue;   /* ../shared moved: the image count check below catches it */
        fu_gray_image *gray = fu_gray_from_rgb(rgb);
        float lm[136];
        REQUIRE(gray && fu_shape_predict(sp, gray, json_box(box), lm) == FU_OK);
        for (int i = 0; i < 136; i++) {
            double want = cJSON_GetArrayItem(parts, i)->valuedouble, err = fabs(lm[i] - want);
            worst = fmax(worst, err);
            sum += err;
            n_exact += floor(lm[i] + 0.5) == want;
            n_points++;
        }
        n_faces++;
        fu_gray_free(gray);
        fu_tensor_free(rgb);
    }
    if (n_faces == 0) {
        cJSON_Delete(ref);
        fu_shape_predictor_free(sp);
        SKIP("the reference's images are not where it says (rerun tests/reference/dlib_reference.sh)");
    }
    /* dlib rounds its output to whole pixels, so 0.5 is the best an exact match can show. */
    printf("  landmarks vs dlib: %d faces, max |err| %.3f px, mean %.3f px, %.2f%% equal after rounding\n", n_faces,
           worst, sum / (n_points ? n_points : 1), 100.0 * n_exact / (n_points ? n_points : 1));
    CHECK(n_faces >= 20);
    CHECK(worst <= 0.5 + 1e-3);
    CHECK(n_exact >= n_points * 0.995);
    cJSON_Delete(ref);
    fu_shape_predictor_free(sp);
}
