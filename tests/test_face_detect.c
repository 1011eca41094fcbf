/* BlazeFace detection on real faces (../shared/data) and the blazeface -> dlib box
 * calibration (against tests/reference/dlib_reference.sh). */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "face/detect.h"
#include "face/models.h"
#include "io/fileutil.h"
#include "io/image.h"
#include "io/dlib_dat.h"
#include "test.h"
#include "util.h"

static fu_face_detector *load_detector(void) {
    char path[1024];
    fu_model_path(FU_BLAZEFACE_MODEL, path, sizeof path);
    return file_exists(path) ? fu_face_detector_load(path) : NULL;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The first n .jpg files (sorted by name) under dir, one folder level deep for LFW. */
static int list_images(const char *dir, int depth, char **out, int n) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    char *names[20000];
    int m = 0;
    struct dirent *e;
    while ((e = readdir(d)) && m < 20000)
        if (e->d_name[0] != '.') names[m++] = strdup(e->d_name);
    closedir(d);
    qsort(names, (size_t)m, sizeof *names, by_name);
    int k = 0;
    char path[2048];
    for (int i = 0; i < m && k < n; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (depth > 0) k += list_images(path, depth - 1, out + k, depth == 1 ? 1 : n - k);
        else if (strstr(names[i], ".jpg")) out[k++] = strdup(path);
    }
    for (int i = 0; i < m; i++) free(names[i]);
    return k;
}

typedef struct { int n, found, eyes_ok; double centre_err; } rate;

/* Detection rate at score >= 0.7 over the images; centre_err: worst distance of the chosen
 * box's centre from the image centre, in image widths. */
static rate detection_rate(fu_face_detector *det, char **paths, int n) {
    rate r = {0, 0, 0, 0};
    for (int i = 0; i < n; i++) {
        fu_tensor *img = fu_image_load(paths[i]);
        if (!img) continue;
        fu_face_det f[16];
        int W = (int)img->shape[3], H = (int)img->shape[2];
        int k = fu_face_detect(det, img, 0.7f, 0.3f, f, 16);
        r.n++;
        if (k > 0) {
            int b = fu_face_pick(f, k, W, H);
            r.found++;
            double dx = (f[b].x0 + f[b].x1) / 2 - W / 2.0, dy = (f[b].y0 + f[b].y1) / 2 - H / 2.0;
            r.centre_err = fmax(r.centre_err, hypot(dx, dy) / W);
            /* keypoint 0 is the subject's right eye: image left of the left eye, both in the box's upper half */
            const float *kp = f[b].kp;
            r.eyes_ok += kp[0] < kp[2] && kp[0] > f[b].x0 && kp[2] < f[b].x1 && kp[1] > f[b].y0 && kp[1] < (f[b].y0 + f[b].y1) / 2;
        }
        fu_tensor_free(img);
    }
    return r;
}

TEST(face_detect_real_faces) {
    const char *shared = fu_test_shared_dir();
    if (!shared) SKIP("../shared/data absent");
    fu_face_detector *det = load_detector();
    if (!det) SKIP("blazeface model absent (tools/fetch-models.sh)");
    int per_set = getenv("FACEUP_FACE_EVAL") ? 300 : 12;
    const char *sets[3] = {"lfw/images", "utkface/images", "celeba/images"};
    const int depth[3] = {1, 0, 0};
    for (int s = 0; s < 3; s++) {
        char dir[1024], *paths[300];
        snprintf(dir, sizeof dir, "%s/data/%s", shared, sets[s]);
        int n = list_images(dir, depth[s], paths, per_set);
        rate r = detection_rate(det, paths, n);
        printf("  %-15s detected %d/%d (%.1f%%) at score >= 0.7; chosen box centre within %.3f image widths of the centre\n",
               sets[s], r.found, r.n, 100.0 * r.found / (r.n ? r.n : 1), r.centre_err);
        CHECK(r.n == per_set);
        CHECK(r.eyes_ok >= 0.95 * r.found);
        if (s == 0) {   /* LFW deep-funneled: one centred face per image */
            CHECK(r.found >= 0.95 * r.n);
            CHECK(r.centre_err < 0.2);
        }
        for (int i = 0; i < n; i++) free(paths[i]);
    }
    fu_face_detector_free(det);
}

TEST(face_iou_and_pick) {
    fu_face_det a = {0, 0, 10, 10, 0.9f, {0}}, b = {5, 0, 15, 10, 0.8f, {0}}, c = {20, 20, 30, 30, 0.8f, {0}};
    CHECK_NEAR(fu_face_iou(&a, &b), 50.0 / 150.0, 1e-6);
    CHECK(fu_face_iou(&a, &c) == 0);
    /* 100x100 image: a big face in the corner loses to a slightly smaller central one */
    fu_face_det dets[3] = {{0, 0, 40, 40, 0.9f, {0}}, {35, 35, 65, 65, 0.8f, {0}}, {45, 45, 55, 55, 0.99f, {0}}};
    CHECK(fu_face_pick(dets, 3, 100, 100) == 1);
    CHECK(fu_face_pick(dets, 0, 100, 100) == -1);
    fu_face_det w = fu_face_whole_image(40, 30);
    CHECK(w.x1 == 40 && w.y1 == 30 && w.score < 0 && isnan(w.kp[0]));
}

/* ---------- blazeface box -> dlib box ---------- */


static double item(const cJSON *a, int i) { return cJSON_GetArrayItem(a, i)->valuedouble; }

/* Mean landmark distance between our run in box and dlib's parts, over the inter-ocular
 * distance (outer eye corners 36 and 45). */
static double landmark_error(const fu_shape_predictor *sp, const fu_tensor *img, fu_box box, const cJSON *parts) {
    float lm[136];
    fu_gray_image *gray = fu_gray_from_rgb(img);
    int rc = gray ? fu_shape_predict(sp, gray, box, lm) : FU_E_INTERNAL;
    fu_gray_free(gray);
    if (rc != FU_OK) return 1;
    double iod = hypot(item(parts, 72) - item(parts, 90), item(parts, 73) - item(parts, 91)), sum = 0;
    for (int p = 0; p < 68; p++) sum += hypot(lm[2 * p] - item(parts, 2 * p), lm[2 * p + 1] - item(parts, 2 * p + 1));
    return sum / 68 / iod;
}

/* A det's box given to fu_face_box_for_landmarks with or without its keypoints: the IoU with
 * dlib's box and the landmark error (parts_error) of one predictor run in it. */
typedef struct { double iou_sum, iou_min, lm_sum, lm_max; } box_score;

static void score_box(box_score *sc, const fu_shape_predictor *sp, const fu_tensor *img, const fu_face_det *d,
                      const cJSON *box, const cJSON *parts) {
    fu_box c = fu_face_box_for_landmarks(d);
    fu_face_det cb = {c.left, c.top, c.right, c.bottom, 0, {0}};
    fu_face_det db = {(float)item(box, 0), (float)item(box, 1), (float)item(box, 2), (float)item(box, 3), 0, {0}};
    double iou = fu_face_iou(&cb, &db), err = landmark_error(sp, img, c, parts);
    sc->iou_sum += iou;
    sc->iou_min = fmin(sc->iou_min, iou);
    sc->lm_sum += err;
    sc->lm_max = fmax(sc->lm_max, err);
}

/* Fits dlib's box from blazeface's box alone (centre offset and side, in units of blazeface's
 * size) on the reference LFW faces, prints the fit, and checks that fu_face_box_for_landmarks's
 * fallback for detections without keypoints agrees with it; with keypoints (the fit on other
 * LFW images compiled into detect.c) the boxes must overlap dlib's better and give landmarks
 * nearer dlib's. */
TEST(face_box_calibration) {
    fu_face_detector *det = load_detector();
    if (!det) SKIP("blazeface model absent (tools/fetch-models.sh)");
    cJSON *ref = load_dlib_reference();
    if (!ref) {
        fu_face_detector_free(det);
        SKIP("no dlib reference boxes (needs libdlib-dev: tests/reference/dlib_reference.sh)");
    }
    char spath[1024];
    fu_shape_predictor *sp = fu_dlib_load_shape_predictor(fu_model_path(FU_DLIB_LANDMARKS_MODEL, spath, sizeof spath));
    REQUIRE(sp);
    int n = 0;
    double sdx = 0, sdy = 0, sside = 0, ss = 0;
    box_score alone = {0, 1, 0, 0}, with_kp = {0, 1, 0, 0};
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(ref, "images")) {
        const cJSON *box = cJSON_GetObjectItem(e, "box"), *parts = cJSON_GetObjectItem(e, "parts");
        /* LFW only: whole faces in a wider frame, as detector boxes are met in use (UTKFace's
         * tight crops cut dlib's box at the image border) */
        if (!cJSON_IsArray(box) || !strstr(cJSON_GetObjectItem(e, "path")->valuestring, "/lfw/")) continue;
        fu_tensor *img = fu_image_load(cJSON_GetObjectItem(e, "path")->valuestring);
        fu_face_det f[16];
        int k = img ? fu_face_detect(det, img, 0.5f, 0.3f, f, 16) : 0;
        if (k > 0) {
            fu_face_det b = f[fu_face_pick(f, k, (int)img->shape[3], (int)img->shape[2])];
            double s = ((b.x1 - b.x0) + (b.y1 - b.y0)) / 2;
            double dcx = (item(box, 0) + item(box, 2)) / 2, dcy = (item(box, 1) + item(box, 3)) / 2;
            sdx += (dcx - (b.x0 + b.x1) / 2) / s;
            sdy += (dcy - (b.y0 + b.y1) / 2) / s;
            sside += (item(box, 2) - item(box, 0)) * s;
            ss += s * s;
            score_box(&with_kp, sp, img, &b, box, parts);
            for (int i = 0; i < 12; i++) b.kp[i] = NAN;
            score_box(&alone, sp, img, &b, box, parts);
            n++;
        }
        fu_tensor_free(img);
    }
    if (n == 0) {
        cJSON_Delete(ref);
        fu_shape_predictor_free(sp);
        fu_face_detector_free(det);
        SKIP("the reference's images are not where it says (rerun tests/reference/dlib_reference.sh)");
    }
    REQUIRE(n >= 20);
    double dx = sdx / n, dy = sdy / n, side = sside / ss;
    printf("  fit on %d faces: dlib centre = blazeface centre + (%.4f, %.4f) * size, side = %.4f * size\n", n, dx, dy, side);
    printf("  IoU with dlib's box, mean (min): box alone %.3f (%.3f), with keypoints %.3f (%.3f); landmarks vs "
           "from dlib's box, mean (worst face) %% of the inter-ocular distance: box alone %.2f%% (%.2f%%), with "
           "keypoints %.2f%% (%.2f%%)\n", alone.iou_sum / n, alone.iou_min, with_kp.iou_sum / n, with_kp.iou_min,
           100 * alone.lm_sum / n, 100 * alone.lm_max, 100 * with_kp.lm_sum / n, 100 * with_kp.lm_max);
    fu_face_det unit = {0, 0, 1, 1, 0, {0}};
    for (int i = 0; i < 12; i++) unit.kp[i] = NAN;
    fu_box c = fu_face_box_for_landmarks(&unit);
    CHECK_NEAR((c.left + c.right) / 2 - 0.5, dx, 0.02);
    CHECK_NEAR((c.top + c.bottom) / 2 - 0.5, dy, 0.02);
    CHECK_NEAR(c.right - c.left, side, 0.03);
    CHECK(alone.iou_sum / n > 0.65);
    CHECK(alone.lm_sum / n < 0.06);
    CHECK(with_kp.iou_sum / n > 0.78);
    CHECK(with_kp.lm_sum / n < 0.03 && with_kp.lm_sum < 0.8 * alone.lm_sum);
    fu_shape_predictor_free(sp);
    cJSON_Delete(ref);
    fu_face_detector_free(det);
}

/* Keypoints the keypoint fit never saw (all four 10 box sizes away) would extrapolate to a
 * box of negative or huge side: the box-only calibration is used instead, as for a detection
 * without keypoints. */
TEST(face_box_ignores_implausible_keypoints) {
    fu_face_det d = {100, 50, 200, 150, 0.9f, {0}};
    for (int i = 0; i < 12; i++) d.kp[i] = NAN;
    fu_box alone = fu_face_box_for_landmarks(&d);
    for (int sign = -1; sign <= 1; sign += 2) {
        for (int i = 0; i < 8; i++) d.kp[i] = (i % 2 ? 100.0f : 150.0f) + sign * 1000.0f;
        fu_box b = fu_face_box_for_landmarks(&d);
        CHECK(b.left == alone.left && b.top == alone.top && b.right == alone.right && b.bottom == alone.bottom);
    }
    /* plausible keypoints (eyes, nose, mouth of an upright face) move the box off the fallback */
    const float kp[8] = {130, 85, 170, 85, 150, 105, 150, 125};
    for (int i = 0; i < 8; i++) d.kp[i] = kp[i];
    fu_box b = fu_face_box_for_landmarks(&d);
    CHECK(b.right - b.left > 50 && b.right - b.left < 200 && b.left != alone.left);
}
