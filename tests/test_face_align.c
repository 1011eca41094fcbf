/* Face alignment: similarity fit, the three templates, warps of real faces (eyes land where
 * the transform says, checked by re-running the landmarks on the crop), gradients. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/gradcheck.h"
#include "core/ops.h"
#include "face/align.h"
#include "face/detect.h"
#include "face/landmarks.h"
#include "face/models.h"
#include "io/fileutil.h"
#include "io/image.h"
#include "test.h"
#include "util.h"

/* A similarity (scale s, angle a, shift) as a 2x3 map. */
static void similarity(double s, double a, double tx, double ty, double t[6]) {
    t[0] = s * cos(a); t[1] = -s * sin(a); t[2] = tx;
    t[3] = s * sin(a); t[4] = s * cos(a);  t[5] = ty;
}

TEST(align_similarity_fit_recovers_transform) {
    double want[6], got[6], inv[6];
    similarity(1.7, 0.3, 12.5, -4, want);
    float from[12] = {0, 0, 10, 0, 0, 10, 7, 3, -2, 5, 4, -6}, to[12];
    for (int i = 0; i < 6; i++) {
        double x, y;
        fu_affine_apply(want, from[2 * i], from[2 * i + 1], &x, &y);
        to[2 * i] = (float)x;
        to[2 * i + 1] = (float)y;
    }
    fu_similarity_fit(from, to, 6, got);
    for (int i = 0; i < 6; i++) CHECK_NEAR(got[i], want[i], 1e-4);
    /* A reflected point set gets the best proper rotation, never a mirror. */
    float mirrored[12];
    for (int i = 0; i < 12; i++) mirrored[i] = (i % 2) ? -to[i] : to[i];
    fu_similarity_fit(from, mirrored, 6, got);
    CHECK_NEAR(got[0], got[4], 1e-9);
    CHECK_NEAR(got[1], -got[3], 1e-9);
    REQUIRE(fu_affine_invert(want, inv) == FU_OK);
    double x, y, bx, by;
    fu_affine_apply(want, 3, 4, &x, &y);
    fu_affine_apply(inv, x, y, &bx, &by);
    CHECK_NEAR(bx, 3, 1e-9);
    CHECK_NEAR(by, 4, 1e-9);
    double singular[6] = {1, 2, 0, 2, 4, 0};
    CHECK(fu_affine_invert(singular, inv) == FU_E_INPUT);
}

/* dlib's mean face positions (unit square) of the points its 68-point chip aligns on, as in
 * dlib's get_face_chip_details: nose, eyes, outer lip, upper inner lip. */
static const struct { int part; double x, y; } dlib_face[] = {
    {27, 0.490127, 0.203352}, {28, 0.490127, 0.307009}, {29, 0.490127, 0.409805}, {30, 0.490127, 0.515625},
    {31, 0.36688, 0.587326},  {32, 0.426036, 0.609345}, {33, 0.490127, 0.628106}, {34, 0.554217, 0.609345},
    {35, 0.613373, 0.587326}, {36, 0.121737, 0.216423}, {37, 0.187122, 0.178758}, {38, 0.265825, 0.179852},
    {39, 0.334606, 0.231733}, {40, 0.260918, 0.245099}, {41, 0.182743, 0.244077}, {42, 0.645647, 0.231733},
    {43, 0.714428, 0.179852}, {44, 0.793132, 0.178758}, {45, 0.858516, 0.216423}, {46, 0.79751, 0.244077},
    {47, 0.719335, 0.245099}, {48, 0.254149, 0.780233}, {49, 0.340985, 0.745405}, {50, 0.428858, 0.727388},
    {51, 0.490127, 0.742578}, {52, 0.551395, 0.727388}, {53, 0.639268, 0.745405}, {54, 0.726104, 0.780233},
    {60, 0.290379, 0.784792}, {61, 0.428096, 0.778746}, {62, 0.490127, 0.785343}, {63, 0.552157, 0.778746},
    {64, 0.689874, 0.784792}};

/* 68 landmarks whose ArcFace / dlib points are the template moved by t into the image; the
 * points neither uses are left far away (at 1000, 1000), so a mode that read them would fail. */
static void face_from_template(const double t[6], int size, fu_align_mode mode, float *lm) {
    static const double arc[5][2] = {{38.2946, 51.6963}, {73.5318, 51.5014}, {56.0252, 71.7366},
                                     {41.5493, 92.3655}, {70.7299, 92.2041}};
    static const int arc_parts[5][6] = {{36, 37, 38, 39, 40, 41}, {42, 43, 44, 45, 46, 47}, {30}, {48}, {54}};
    double x, y;
    for (int i = 0; i < 136; i++) lm[i] = 1000;
    if (mode == FU_ALIGN_DLIB) {
        for (size_t k = 0; k < sizeof dlib_face / sizeof dlib_face[0]; k++) {
            fu_affine_apply(t, (0.25 + dlib_face[k].x) / 1.5 * size, (0.25 + dlib_face[k].y) / 1.5 * size, &x, &y);
            lm[2 * dlib_face[k].part] = (float)x;
            lm[2 * dlib_face[k].part + 1] = (float)y;
        }
        return;
    }
    for (int k = 0; k < 5; k++) {
        fu_affine_apply(t, arc[k][0] * size / 112, arc[k][1] * size / 112, &x, &y);
        for (int j = 0; j < (k < 2 ? 6 : 1); j++) {
            lm[2 * arc_parts[k][j]] = (float)x;
            lm[2 * arc_parts[k][j] + 1] = (float)y;
        }
    }
}

TEST(align_templates_give_the_placing_transform) {
    double t[6], theta[6];
    similarity(2.3, -0.2, 40, 25, t);
    float lm[136];
    face_from_template(t, 112, FU_ALIGN_ARCFACE, lm);
    REQUIRE(fu_align_theta(FU_ALIGN_ARCFACE, lm, 112, theta) == FU_OK);
    for (int i = 0; i < 6; i++) CHECK_NEAR(theta[i], t[i], 1e-3 * fmax(1, fabs(t[i])));
    /* dlib: same rotation and centre as t, scale (150 s - 1)/149 (chip corners to dlib's
     * chip rectangle of side 150 s - 1) */
    face_from_template(t, 150, FU_ALIGN_DLIB, lm);
    REQUIRE(fu_align_theta(FU_ALIGN_DLIB, lm, 150, theta) == FU_OK);
    double k = (150 * 2.3 - 1) / 149 / 2.3, cx, cy, wx, wy;
    for (int i = 0; i < 6; i++)
        if (i != 2 && i != 5) CHECK_NEAR(theta[i], k * t[i], 1e-4);
    fu_affine_apply(theta, 74.5, 74.5, &cx, &cy);
    fu_affine_apply(t, 75, 75, &wx, &wy);
    CHECK_NEAR(cx, wx, 1e-2);
    CHECK_NEAR(cy, wy, 1e-2);
    CHECK(fu_align_mode_parse("ffhq") == FU_ALIGN_FFHQ && fu_align_mode_parse("arcface") == FU_ALIGN_ARCFACE);
    CHECK(fu_align_mode_parse("FFHQ") == -1);
    CHECK(fu_align_theta(FU_ALIGN_ARCFACE, lm, 4, theta) == FU_E_INPUT);
    lm[7] = NAN;
    CHECK(fu_align_theta(FU_ALIGN_FFHQ, lm, 64, theta) == FU_E_INPUT);
}

/* FFHQ on an upright face: eyes level at (100, 100) and (140, 100), mouth centre (120, 150):
 * eye-to-eye d = (40, 0), eye-to-mouth em = (0, 50), x = d + (em.y, -em.x) = (90, 0) scaled
 * to length max(2*40, 1.8*50) = 90, y = (0, 90), c = (120, 100) + 0.1 em = (120, 105); the
 * crop spans 2|x| = 180 px, so at N = 180 one output pixel is one source pixel. */
TEST(align_ffhq_formula) {
    float lm[136] = {0};
    for (int i = 36; i <= 41; i++) { lm[2 * i] = 100; lm[2 * i + 1] = 100; }
    for (int i = 42; i <= 47; i++) { lm[2 * i] = 140; lm[2 * i + 1] = 100; }
    lm[2 * 48] = 110; lm[2 * 48 + 1] = 150;
    lm[2 * 54] = 130; lm[2 * 54 + 1] = 150;
    double th[6];
    REQUIRE(fu_align_theta(FU_ALIGN_FFHQ, lm, 180, th) == FU_OK);
    CHECK_NEAR(th[0], 1, 1e-9);
    CHECK_NEAR(th[1], 0, 1e-9);
    CHECK_NEAR(th[4], 1, 1e-9);
    /* pixel centre u = 0 samples the quad's left edge + half a pixel: 120 - 90 + 0.5 */
    CHECK_NEAR(th[2], 30.5, 1e-9);
    CHECK_NEAR(th[5], 105 - 90 + 0.5, 1e-9);
}

static fu_tensor *build_align(fu_graph *g, fu_tensor **in, void *ctx) {
    return fu_align_warp(g, in[0], (const double *)ctx, 9);
}

TEST(align_gradcheck_wrt_image) {
    fu_rng r;
    fu_rng_seed(&r, 5);
    fu_tensor *x = randn_leaf(&r, 4, (int64_t[]){1, 3, 14, 13}, 1);
    double theta[6];
    similarity(1.3, 0.4, 4.2, 1.7, theta);
    fu_gradcheck_opts o = {.eps = 1e-2f, .atol = 2e-3f, .rtol = 2e-2f, .max_checks = 64, .seed = 2};
    fu_gradcheck_result res;
    CHECK(fu_gradcheck(build_align, &x, 1, theta, &o, &res) == FU_OK);
    CHECK(res.n_checked > 0);
    fu_tensor_free(x);
}

/* Real faces: detect, landmarks, align; landmarks re-run on the crop (box: the source box
 * mapped into the crop) must put the eye centres where the transform sends the source's. */
typedef struct { fu_face_detector *det; fu_shape_predictor *sp; } pipeline;

static int landmarks_of(pipeline *p, const fu_tensor *img, fu_box box, float *lm) {
    fu_gray_image *gray = fu_gray_from_rgb(img);
    int rc = gray ? fu_shape_predict(p->sp, gray, box, lm) : FU_E_INTERNAL;
    fu_gray_free(gray);
    return rc;
}

static void eye_centres(const float *lm, double e[4]) {
    memset(e, 0, 4 * sizeof *e);
    for (int i = 0; i < 6; i++) {
        e[0] += lm[2 * (36 + i)] / 6.0; e[1] += lm[2 * (36 + i) + 1] / 6.0;
        e[2] += lm[2 * (42 + i)] / 6.0; e[3] += lm[2 * (42 + i) + 1] / 6.0;
    }
}

static double check_face(pipeline *p, const char *path, fu_align_mode mode, int size) {
    fu_tensor *img = fu_image_load(path);
    fu_face_det f[8];
    int k = img ? fu_face_detect(p->det, img, 0.7f, 0.3f, f, 8) : -1;
    if (k <= 0) { fu_tensor_free(img); return -1; }
    fu_box box = fu_face_box_for_landmarks(&f[fu_face_pick(f, k, (int)img->shape[3], (int)img->shape[2])]);
    float lm[136], lm2[136];
    double th[6], inv[6], e[4], e2[4], err = 0;
    fu_graph *g = fu_graph_new();
    fu_tensor *crop = NULL;
    if (landmarks_of(p, img, box, lm) == FU_OK && (crop = fu_align_face(g, img, lm, mode, size, th)) &&
        fu_affine_invert(th, inv) == FU_OK) {
        /* the box in the crop: its centre mapped, its side scaled */
        double cx, cy, scale = 1 / sqrt(fabs(th[0] * th[4] - th[1] * th[3]));
        fu_affine_apply(inv, (box.left + box.right) / 2, (box.top + box.bottom) / 2, &cx, &cy);
        double half = (box.right - box.left) / 2 * scale;
        fu_box cbox = {(float)(cx - half), (float)(cy - half), (float)(cx + half), (float)(cy + half)};
        if (landmarks_of(p, crop, cbox, lm2) != FU_OK) err = 1;
        eye_centres(lm, e);
        eye_centres(lm2, e2);
        for (int j = 0; j < 2; j++) {
            double x, y;
            fu_affine_apply(inv, e[2 * j], e[2 * j + 1], &x, &y);
            err = fmax(err, hypot(e2[2 * j] - x, e2[2 * j + 1] - y) / size);
        }
    } else err = 1;
    fu_graph_free(g);
    fu_tensor_free(img);
    return err;
}

TEST(align_real_faces_put_eyes_on_target) {
    const char *shared = fu_test_shared_dir();
    if (!shared) SKIP("../shared/data absent");
    char dpath[1024], spath[1024];
    fu_model_path(FU_BLAZEFACE_MODEL, dpath, sizeof dpath);
    fu_model_path(FU_DLIB_LANDMARKS_MODEL, spath, sizeof spath);
    if (!file_exists(dpath) || !file_exists(spath)) SKIP("face models absent (tools/fetch-models.sh)");
    pipeline p = {fu_face_detector_load(dpath), fu_dlib_load_shape_predictor(spath)};
    REQUIRE(p.det && p.sp);
    const char *faces[3] = {"lfw/images/Aaron_Eckhart/Aaron_Eckhart_0001.jpg", "lfw/images/Abdullah_Gul/Abdullah_Gul_0001.jpg",
                            "lfw/images/Adam_Sandler/Adam_Sandler_0001.jpg"};
    const int sizes[3] = {256, 150, 112};
    for (int mode = 0; mode < 3; mode++) {
        double worst = 0;
        for (int i = 0; i < 3; i++) {
            char path[1024];
            snprintf(path, sizeof path, "%s/data/%s", shared, faces[i]);
            double err = check_face(&p, path, (fu_align_mode)mode, sizes[mode]);
            CHECK_MSG(err >= 0, "%s: no face detected", path);
            worst = fmax(worst, err);
        }
        printf("  %-7s %dx%d: eye centres re-detected within %.2f%% of the crop size of their targets\n",
               fu_align_mode_name((fu_align_mode)mode), sizes[mode], sizes[mode], 100 * worst);
        CHECK(worst < 0.02);
    }
    fu_face_detector_free(p.det);
    fu_shape_predictor_free(p.sp);
}

/* dlib's own chip map (tests/reference/dlib_reference.sh writes get_mapping_to_chip for the
 * 150x150, padding 0.25 chip of each reference face) against the inverse of our theta. */
TEST(align_dlib_chip_matches_dlib) {
    char path[1024];
    unsigned char *data;
    size_t size;
    fu_model_path("reference/dlib_landmarks.json", path, sizeof path);
    if (!file_exists(path)) SKIP("no dlib reference (needs libdlib-dev: tests/reference/dlib_reference.sh)");
    REQUIRE(fu_read_file(path, (size_t)64 << 20, &data, &size) == FU_OK);
    cJSON *ref = cJSON_ParseWithLength((const char *)data, size);
    free(data);
    REQUIRE(ref);
    int n = 0;
    double worst = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(ref, "images")) {
        const cJSON *parts = cJSON_GetObjectItem(e, "parts"), *chip = cJSON_GetObjectItem(e, "face_chip150");
        if (!cJSON_IsArray(parts) || !cJSON_IsArray(chip)) continue;
        float lm[136];
        double theta[6], inv[6], want[6];
        for (int i = 0; i < 136; i++) lm[i] = (float)cJSON_GetArrayItem(parts, i)->valuedouble;
        for (int i = 0; i < 6; i++) want[i] = cJSON_GetArrayItem(chip, i)->valuedouble;
        REQUIRE(fu_align_theta(FU_ALIGN_DLIB, lm, 150, theta) == FU_OK && fu_affine_invert(theta, inv) == FU_OK);
        for (int p = 0; p < 68; p++) {   /* every landmark lands on the same chip pixel */
            double ax, ay, bx, by;
            fu_affine_apply(inv, lm[2 * p], lm[2 * p + 1], &ax, &ay);
            fu_affine_apply(want, lm[2 * p], lm[2 * p + 1], &bx, &by);
            worst = fmax(worst, hypot(ax - bx, ay - by));
        }
        n++;
    }
    printf("  dlib chip 150/0.25 on %d faces: landmarks map to dlib's chip positions within %.2g px\n", n, worst);
    CHECK(n >= 20);
    CHECK(worst < 1e-3);
    cJSON_Delete(ref);
}
