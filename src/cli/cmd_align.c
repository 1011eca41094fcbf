/* faceup align: detect the face, find 68 landmarks, write the aligned crop. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "args.h"
#include "commands.h"
#include "core/error.h"
#include "face/align.h"
#include "face/detect.h"
#include "face/landmarks.h"
#include "face/models.h"
#include "core/ops.h"
#include "faceup.h"
#include "io/image.h"
#include "json_out.h"
#include "outpath.h"
#include "progress.h"

typedef struct {
    fu_face_detector *det;   /* NULL with --no-detect */
    fu_shape_predictor *sp;
    fu_align_mode mode;
    int size, no_detect;
    float min_score, iou;
    int downscale;           /* > 1: write PULSE's bicubic downscale of the crop by this factor */
} aligner;

/* What happened to one input, for the JSON report. */
typedef struct {
    fu_face_det face;
    fu_box lm_box;
    float lm[136];
    double theta[6];
} face_result;

static int find_face(const aligner *a, const fu_tensor *img, const char *path, fu_face_det *face) {
    int W = (int)img->shape[3], H = (int)img->shape[2];
    if (a->no_detect) {
        *face = fu_face_whole_image(W, H);
        return FU_OK;
    }
    fu_face_det found[32];
    int n = fu_face_detect(a->det, img, a->min_score, a->iou, found, 32);
    if (n < 0) return fu_last_code() ? fu_last_code() : FU_E_INTERNAL;
    if (n == 0) return fu_fail(FU_E_INPUT, "%s: no face found (detection score below %.2f)", path, a->min_score);
    *face = found[fu_face_pick(found, n, W, H)];
    return FU_OK;
}

static int align_one(const aligner *a, const char *path, const char *out, face_result *r) {
    fu_tensor *img = fu_image_load(path);
    if (!img) return fu_last_code();
    fu_gray_image *gray = NULL;
    fu_graph *g = fu_graph_new();
    int rc = g ? find_face(a, img, path, &r->face) : FU_E_INTERNAL;
    if (rc == FU_OK) {
        r->lm_box = fu_face_box_for_landmarks(&r->face);
        gray = fu_gray_from_rgb(img);
        rc = gray ? fu_shape_predict(a->sp, gray, r->lm_box, r->lm) : FU_E_INTERNAL;
    }
    if (rc == FU_OK) {
        fu_tensor *crop = fu_align_face(g, img, r->lm, a->mode, a->size, r->theta);
        if (crop && a->downscale > 1) crop = fu_bicubic_downsample(g, crop, a->downscale);
        rc = crop ? outpath_save(out, crop) : fu_last_code();
    }
    if (rc != FU_OK && !strstr(fu_last_error(), path)) {
        char why[512];
        snprintf(why, sizeof why, "%s", fu_last_error());
        fu_fail(rc, "%s: %s", path, why);
    }
    fu_gray_free(gray);
    fu_graph_free(g);
    fu_tensor_free(img);
    return rc;
}

static cJSON *result_json(const char *path, const char *out, int rc, const face_result *r, int detected) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "file", path);
    cJSON_AddStringToObject(o, "status", rc == FU_OK ? "ok" : "error");
    if (rc != FU_OK) {
        cJSON_AddStringToObject(o, "error", fu_last_error());
        return o;
    }
    cJSON_AddStringToObject(o, "output", out);
    float box[4] = {r->face.x0, r->face.y0, r->face.x1, r->face.y1};
    float lm_box[4] = {r->lm_box.left, r->lm_box.top, r->lm_box.right, r->lm_box.bottom};
    cJSON_AddItemToObject(o, "box", cJSON_CreateFloatArray(box, 4));
    if (detected) cJSON_AddNumberToObject(o, "score", r->face.score);
    else cJSON_AddNullToObject(o, "score");
    cJSON_AddItemToObject(o, "landmark_box", cJSON_CreateFloatArray(lm_box, 4));
    cJSON *lm = cJSON_AddArrayToObject(o, "landmarks");
    for (int p = 0; p < 68; p++) cJSON_AddItemToArray(lm, cJSON_CreateFloatArray(r->lm + 2 * p, 2));
    float th[6];
    for (int i = 0; i < 6; i++) th[i] = (float)r->theta[i];
    cJSON_AddItemToObject(o, "transform", cJSON_CreateFloatArray(th, 6));
    return o;
}

static int load_models(aligner *a, const char *det_path, const char *sp_path) {
    char buf[1024];
    if (!a->no_detect) {
        const char *p = det_path ? det_path : fu_model_file(FU_BLAZEFACE_MODEL, buf, sizeof buf);
        if (!p || !(a->det = fu_face_detector_load(p))) return fu_last_code();
    }
    const char *p = sp_path ? sp_path : fu_model_file(FU_DLIB_LANDMARKS_MODEL, buf, sizeof buf);
    if (!p || !(a->sp = fu_dlib_load_shape_predictor(p))) return fu_last_code();
    if (a->sp->n_parts != 68)
        return fu_fail(FU_E_INPUT, "%s: a %d-point shape predictor; alignment needs the 68-point model", p, a->sp->n_parts);
    return FU_OK;
}

/* Every input's output path by outpath.h's rule for -o (outs[i], OUTPATH_CAP each), checked
 * for collisions, and the folder made, before any work. */
static int plan_outputs(const char *out, char **inputs, int n, char (*outs)[OUTPATH_CAP]) {
    out_target t;
    int rc = outpath_target("-o", out, n > 1, &t);
    for (int i = 0; rc == FU_OK && i < n; i++) {
        if (t.folder) rc = outpath_in_folder(t.path, inputs[i], outs[i], OUTPATH_CAP);
        else snprintf(outs[i], OUTPATH_CAP, "%s", t.path);
    }
    const char **names = rc == FU_OK ? malloc((size_t)n * sizeof *names) : NULL;
    if (rc == FU_OK && !names) rc = fu_fail(FU_E_INTERNAL, "out of memory");
    for (int i = 0; names && i < n; i++) names[i] = outs[i];
    if (rc == FU_OK) rc = outpath_check_distinct(names, n, (const char *const *)inputs, n);
    free(names);
    return rc == FU_OK ? outpath_make_folder("-o", &t) : rc;
}

int cmd_align(int argc, char **argv) {
    const char *out = NULL, *mode_name = "ffhq", *det_path = NULL, *sp_path = NULL;
    int size = 0, no_detect = 0, json = 0, quiet = 0, threads = 0, downscale = 1;
    float min_score = 0.7f, iou = 0.3f;
    arg_spec specs[] = {
        {"-o", ARG_STRING, &out, 0, 0, "output .png/.jpg (one input) or folder (existing, or ending in '/'; one IMG.png per input)"},
        {"--size", ARG_INT, &size, 8, 4096, "output side in pixels (default: ffhq 256, dlib 150, arcface 112)"},
        {"--downscale", ARG_INT, &downscale, 1, 64, "write PULSE's bicubic downscale of the crop by this power of two (e.g. --size 256 --downscale 16: a 16x16 thumbnail)"},
        {"--mode", ARG_STRING, &mode_name, 0, 0, "ffhq (default), dlib (dlib's face chip) or arcface (112 template)"},
        {"--no-detect", ARG_FLAG, &no_detect, 0, 0, "inputs are tight face crops: the whole image is the face box"},
        {"--min-score", ARG_FLOAT, &min_score, 0, 1, "detection score threshold (default 0.7)"},
        {"--iou", ARG_FLOAT, &iou, 0, 1, "non-maximum suppression IoU threshold (default 0.3)"},
        {"--detector", ARG_STRING, &det_path, 0, 0, "blazeface model.json (default: the model cache)"},
        {"--landmarks", ARG_STRING, &sp_path, 0, 0, "dlib 68-point .dat (default: the model cache)"},
        {"--json", ARG_FLAG, &json, 0, 0, "JSON report on stdout: per input box, score, landmarks, transform (2x3, output pixel to source pixel)"},
        {"--quiet", ARG_FLAG, &quiet, 0, 0, "no progress on stderr"},
        {"--threads", ARG_INT, &threads, 0, 1024, "threads (default: FACEUP_THREADS or all cores)"},
        {0},
    };
    char *inputs[4096];
    int n = args_parse("align", "IMG... -o OUT [flags]", specs, argc, argv, inputs, 4096);
    if (n < 0) return n == -2 ? FU_OK : FU_E_INPUT;
    int mode = fu_align_mode_parse(mode_name);
    if (n == 0 || !out || mode < 0) {
        fprintf(stderr, "faceup align: %s\n", mode < 0 ? "--mode must be ffhq, dlib or arcface" : "needs IMG... and -o OUT");
        return FU_E_INPUT;
    }
    fu_set_threads(threads);
    const int default_size[3] = {256, 150, 112};
    aligner a = {NULL, NULL, (fu_align_mode)mode, size ? size : default_size[mode], no_detect, min_score, iou, downscale};
    if ((downscale & (downscale - 1)) || a.size % downscale) {
        fprintf(stderr, "faceup align: --downscale must be a power of two dividing --size (%d), got %d\n", a.size, downscale);
        return FU_E_INPUT;
    }
    char (*outs)[OUTPATH_CAP] = malloc((size_t)n * sizeof *outs);
    int rc = outs ? plan_outputs(out, inputs, n, outs) : fu_fail(FU_E_INTERNAL, "out of memory");
    if (rc == FU_OK) rc = load_models(&a, det_path, sp_path);
    if (rc != FU_OK) {
        report_failure("align", json);
        free(outs);
        fu_face_detector_free(a.det);
        fu_shape_predictor_free(a.sp);
        return rc == FU_E_INTERNAL ? FU_E_INTERNAL : FU_E_INPUT;
    }
    cJSON *report = cJSON_CreateArray();
    progress pr;
    progress_start(&pr, "align", quiet || n < 2);
    int worst = FU_OK;
    for (int i = 0; i < n; i++) {
        face_result r;
        int st = align_one(&a, inputs[i], outs[i], &r);
        if (st != FU_OK) fprintf(stderr, "faceup align: %s\n", fu_last_error());
        else outpath_announce("align", outs[i]);
        worst = exit_worst(worst, st == FU_OK || st == FU_E_INTERNAL ? st : FU_E_INPUT);
        cJSON_AddItemToArray(report, result_json(inputs[i], outs[i], st, &r, !no_detect));
        progress_update(&pr, i + 1, n, NULL);
    }
    progress_finish(&pr);
    if (json) print_json(report);
    cJSON_Delete(report);
    free(outs);
    fu_face_detector_free(a.det);
    fu_shape_predictor_free(a.sp);
    return worst;
}
