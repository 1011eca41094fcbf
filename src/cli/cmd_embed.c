/* faceup embed IMG...: face descriptors; faceup compare A B: similarity and a same/different
 * decision with the threshold calibrated on LFW (eval/calibration.h). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "args.h"
#include "commands.h"
#include "core/error.h"
#include "eval/calibration.h"
#include "eval/lfw_run.h"
#include "face/pipeline.h"
#include "faceup.h"
#include "json_out.h"
#include "progress.h"

#define MAX_INPUTS 4096
/* dlib's documented same-person criterion for its descriptor: Euclidean distance below 0.6 */
#define DLIB_SAME_DISTANCE 0.6

typedef struct {
    const char *model;
    int no_detect, json, batch, quiet, threads, mirror;
} embed_opts;

/* Runs the pipeline on the files: vectors (n x dim) and per-file results. FU_OK unless the
 * models cannot be loaded or a network fails (then a message is set). */
static int embed_files(const embed_opts *o, char **paths, int n, float **vectors, int *dim, fu_face_file_result **results) {
    fu_face_finder *finder = fu_face_finder_load(!o->no_detect);
    fu_face_net *net = finder ? fu_face_net_load((fu_face_net_kind)fu_face_net_parse(o->model)) : NULL;
    int rc = net ? FU_OK : fu_last_code();
    if (rc == FU_OK) {
        fu_face_net_set_mirror(net, o->mirror);
        *dim = fu_face_net_out_dim(net);
        *vectors = calloc((size_t)n * *dim, sizeof **vectors);
        *results = calloc((size_t)n, sizeof **results);
        rc = *vectors && *results ? FU_OK : fu_fail(FU_E_INTERNAL, "out of memory");
    }
    if (rc == FU_OK) {
        progress pr;
        progress_start(&pr, "embed", o->quiet || n < 2);
        rc = fu_face_run_files(finder, &net, 1, (const char *const *)paths, n, o->batch, vectors, *results, progress_on, &pr);
        progress_finish(&pr);
    }
    fu_face_net_free(net);
    fu_face_finder_free(finder);
    return rc;
}

/* The flags embed and compare share, plus one of the command's own (extra). */
static int parse_embed_args(const char *cmd, const char *usage, int argc, char **argv, embed_opts *o, arg_spec extra,
                            char **inputs) {
    arg_spec specs[] = {
        {"--model", ARG_STRING, &o->model, 0, 0, "dlib-resnet (default; 128-d) or faceres (1024-d)"},
        {"--no-detect", ARG_FLAG, &o->no_detect, 0, 0, "inputs are tight face crops: the whole image is the face box"},
        {"--mirror", ARG_FLAG, &o->mirror, 0, 0, "test-time mirroring: each descriptor is the mean of the crop's and its mirror image's"},
        {"--json", ARG_FLAG, &o->json, 0, 0, "JSON on stdout"},
        {"--quiet", ARG_FLAG, &o->quiet, 0, 0, "no progress on stderr"},
        {"--threads", ARG_INT, &o->threads, 0, 1024, "threads (default: FACEUP_THREADS or all cores)"},
        extra,
        {0},
    };
    int n = args_parse(cmd, usage, specs, argc, argv, inputs, MAX_INPUTS);
    if (n >= 0 && fu_face_net_parse(o->model) != FU_NET_DLIB_RESNET && fu_face_net_parse(o->model) != FU_NET_FACERES) {
        fprintf(stderr, "faceup %s: --model must be dlib-resnet or faceres\n", cmd);
        return -1;
    }
    fu_set_threads(o->threads);
    return n;
}

/* ---------- embed ---------- */

static cJSON *embed_json(const char *path, const fu_face_file_result *r, const float *v, int dim, const embed_opts *eo) {
    cJSON *o = face_file_json(path, r);
    if (r->status != FU_OK) return o;
    cJSON_AddStringToObject(o, "model", eo->model);
    cJSON_AddBoolToObject(o, "mirror", eo->mirror);
    cJSON_AddItemToObject(o, "embedding", cJSON_CreateFloatArray(v, dim));
    return o;
}

static void print_embeddings(const embed_opts *o, char **inputs, int n, const float *vec, int dim, const fu_face_file_result *res) {
    cJSON *all = o->json ? cJSON_CreateArray() : NULL;
    for (int i = 0; i < n; i++) {
        const float *v = vec + (size_t)i * dim;
        if (all) cJSON_AddItemToArray(all, embed_json(inputs[i], &res[i], v, dim, o));
        if (all || res[i].status != FU_OK) continue;
        printf("%s\t", inputs[i]);   /* a tab ends the path, which may hold spaces */
        for (int k = 0; k < dim; k++) printf("%s%.7g", k ? " " : "", v[k]);
        printf("\n");
    }
    if (!all) return;
    char *text = cJSON_Print(all);
    if (text) puts(text);
    cJSON_free(text);
    cJSON_Delete(all);
}

int cmd_embed(int argc, char **argv) {
    embed_opts o = {.model = "dlib-resnet", .batch = 8};
    char *inputs[MAX_INPUTS];
    const char *usage = "IMG... [--model dlib-resnet|faceres] [--no-detect] [--json]\n"
                        "Face descriptor of each image: detection, 68 landmarks, the network's crop (dlib-resnet:\n"
                        "dlib's 150x150 chip; faceres: human's box crop), the network. Plain output: one line per\n"
                        "image, the path then the values. A file without a face is reported and the others go on\n"
                        "(exit 2 at the end).";
    arg_spec batch = {"--batch", ARG_INT, &o.batch, 1, FU_FACE_MAX_BATCH, "faces per network call (default 8)"};
    int n = parse_embed_args("embed", usage, argc, argv, &o, batch, inputs);
    if (n < 0) return n == -2 ? FU_OK : FU_E_INPUT;
    if (n == 0) {
        fprintf(stderr, "faceup embed: needs at least one IMG\n");
        return FU_E_INPUT;
    }
    float *vec = NULL;
    fu_face_file_result *res = NULL;
    int dim = 0, rc = embed_files(&o, inputs, n, &vec, &dim, &res), worst = FU_OK;
    if (rc != FU_OK) report_failure("embed", o.json);
    for (int i = 0; rc == FU_OK && i < n; i++)
        if (res[i].status != FU_OK) {
            fprintf(stderr, "faceup embed: %s\n", res[i].error);
            worst = exit_worst(worst, res[i].status);
        }
    if (rc == FU_OK) print_embeddings(&o, inputs, n, vec, dim, res);
    free(vec);
    free(res);
    return rc == FU_OK ? worst : rc == FU_E_INTERNAL ? FU_E_INTERNAL : FU_E_INPUT;
}

/* ---------- compare ---------- */

typedef struct {
    double cosine, angle_deg, distance_normalized, distance;
} similarity;

static similarity measure(const float *a, const float *b, int dim) {
    double dot = 0, na = 0, nb = 0, d2 = 0;
    for (int k = 0; k < dim; k++) dot += (double)a[k] * b[k], na += (double)a[k] * a[k], nb += (double)b[k] * b[k];
    for (int k = 0; k < dim; k++) d2 += ((double)a[k] - b[k]) * ((double)a[k] - b[k]);
    similarity s;
    s.cosine = na > 0 && nb > 0 ? dot / sqrt(na * nb) : 0;
    s.cosine = fmax(-1.0, fmin(1.0, s.cosine));
    s.angle_deg = acos(s.cosine) * 180.0 / M_PI;
    s.distance_normalized = sqrt(fmax(0.0, 2.0 - 2.0 * s.cosine));
    s.distance = sqrt(d2);
    return s;
}

/* The calibrated decision: 1 same, 0 different, -1 unavailable (message on stderr). */
static int decide(const char *cal_path, const embed_opts *o, const similarity *s, fu_calibration *cal) {
    char buf[4096], key[64];
    const char *path = cal_path ? cal_path : fu_calibration_default_path(buf, sizeof buf);
    if (fu_calibration_read(path, fu_calibration_key(o->model, o->mirror, key, sizeof key), cal) != FU_OK) {
        fprintf(stderr, "faceup compare: warning: no same/different decision: %s\n", fu_last_error());
        return -1;
    }
    int metric = fu_lfw_metric_parse(cal->metric);
    if (metric == FU_LFW_NEG_EUCLIDEAN) return -s->distance > cal->threshold;
    if (metric == FU_LFW_COSINE) return s->cosine > cal->threshold;
    fprintf(stderr, "faceup compare: warning: no same/different decision: %s: metric %s is not one compare computes\n", path,
            cal->metric);
    return -1;
}

static void print_comparison(const embed_opts *o, char **inputs, const similarity *s, int same, const fu_calibration *cal) {
    int is_dlib = fu_face_net_parse(o->model) == FU_NET_DLIB_RESNET;
    if (!o->json) {
        printf("%s vs %s (%s%s)\n  cosine %.4f  angle %.2f deg  distance (normalised) %.4f  distance %.4f\n", inputs[0], inputs[1],
               o->model, o->mirror ? ", mirrored" : "", s->cosine, s->angle_deg, s->distance_normalized, s->distance);
        if (is_dlib) printf("  dlib's criterion (distance < 0.6): %s\n", s->distance < DLIB_SAME_DISTANCE ? "same" : "different");
        if (same >= 0)
            printf("  decision: %s (%s threshold %.4f, LFW accuracy %.2f%%)\n", same ? "same person" : "different people",
                   cal->metric, cal->threshold, 100 * cal->lfw_accuracy);
        return;
    }
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "a", inputs[0]);
    cJSON_AddStringToObject(r, "b", inputs[1]);
    cJSON_AddStringToObject(r, "model", o->model);
    cJSON_AddBoolToObject(r, "mirror", o->mirror);
    cJSON_AddNumberToObject(r, "cosine", s->cosine);
    cJSON_AddNumberToObject(r, "angle_deg", s->angle_deg);
    cJSON_AddNumberToObject(r, "distance_normalized", s->distance_normalized);
    cJSON_AddNumberToObject(r, "distance", s->distance);
    if (is_dlib) cJSON_AddBoolToObject(r, "dlib_same", s->distance < DLIB_SAME_DISTANCE);
    if (same >= 0) {
        cJSON_AddBoolToObject(r, "same", same);
        cJSON_AddStringToObject(r, "metric", cal->metric);
        cJSON_AddNumberToObject(r, "threshold", cal->threshold);
        cJSON_AddNumberToObject(r, "lfw_accuracy", cal->lfw_accuracy);
    } else {
        cJSON_AddNullToObject(r, "same");
    }
    char *text = cJSON_Print(r);
    if (text) puts(text);
    cJSON_free(text);
    cJSON_Delete(r);
}

int cmd_compare(int argc, char **argv) {
    embed_opts o = {.model = "dlib-resnet", .batch = 2};
    const char *cal_path = NULL;
    char *inputs[MAX_INPUTS];
    const char *usage = "A B [--model dlib-resnet|faceres] [--no-detect] [--json]\n"
                        "Cosine similarity, angle, Euclidean distance of the normalised and of the raw descriptors of\n"
                        "the two faces, and a same/different decision with the threshold calibrated on LFW\n"
                        "(models/calibration.json, written by faceup eval lfw --write-calibration).";
    arg_spec cal_flag = {"--calibration", ARG_STRING, &cal_path, 0, 0, "calibration file (default models/calibration.json)"};
    int n = parse_embed_args("compare", usage, argc, argv, &o, cal_flag, inputs);
    if (n < 0) return n == -2 ? FU_OK : FU_E_INPUT;
    if (n != 2) {
        fprintf(stderr, "faceup compare: needs exactly two images, A and B\n");
        return FU_E_INPUT;
    }
    o.quiet = 1;
    float *vec = NULL;
    fu_face_file_result *res = NULL;
    int dim = 0, rc = embed_files(&o, inputs, 2, &vec, &dim, &res);
    if (rc != FU_OK) report_failure("compare", o.json);
    for (int i = 0; rc == FU_OK && i < 2; i++)
        if (res[i].status != FU_OK) {
            fprintf(stderr, "faceup compare: %s\n", res[i].error);
            rc = exit_worst(rc, res[i].status);
        }
    if (rc == FU_OK) {
        similarity s = measure(vec, vec + dim, dim);
        fu_calibration cal;
        int same = decide(cal_path, &o, &s, &cal);
        print_comparison(&o, inputs, &s, same, &cal);
    }
    free(vec);
    free(res);
    return rc == FU_OK ? FU_OK : rc == FU_E_INTERNAL ? FU_E_INTERNAL : FU_E_INPUT;
}
