/* faceup eval lfw: LFW verification accuracy of a face descriptor through the whole pipeline
 * (eval/lfw_run.h). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "args.h"
#include "commands.h"
#include "core/error.h"
#include "core/tensor.h"
#include "eval/calibration.h"
#include "data/embed_cache.h"
#include "eval/lfw_run.h"
#include "eval/text.h"
#include "io/plot.h"
#include "faceup.h"
#include "io/fileutil.h"
#include "json_out.h"
#include "outpath.h"
#include "progress.h"
#include "train/never_lfw.h"

typedef struct {
    const char *data, *model, *roc, *csv, *cache, *calibration;
    int max_pairs, json, write_calibration, no_cache, batch, quiet, threads, mirror;
} lfw_opts;

typedef struct {
    fu_lfw_pairs pairs;
    fu_lfw_embeddings emb;
    float *scores[FU_LFW_N_METRICS];
    fu_lfw_result result[FU_LFW_N_METRICS];
    fu_lfw_metric primary;
    double seconds;
} lfw_run;

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* dlib's descriptor is made for the Euclidean distance; faceres's is not normalised and
 * carries a large common component, so it is compared after centring. */
static fu_lfw_metric primary_metric(fu_face_net_kind kind) {
    return kind == FU_NET_DLIB_RESNET ? FU_LFW_NEG_EUCLIDEAN : FU_LFW_COSINE_CENTERED;
}

static int embed_all(const lfw_opts *o, fu_face_net_kind kind, lfw_run *run) {
    char cache_path[4096], name[64];
    snprintf(name, sizeof name, "lfw-%s%s", fu_face_net_name(kind), o->mirror ? "-mirror" : "");
    int rc = o->cache ? (snprintf(cache_path, sizeof cache_path, "%s", o->cache), FU_OK)
                      : fu_ecache_default_path(name, cache_path, sizeof cache_path);
    fu_face_finder *finder = rc == FU_OK ? fu_face_finder_load(1) : NULL;
    fu_face_net *net = finder ? fu_face_net_load(kind) : NULL;
    if (!net) {
        fu_face_finder_free(finder);
        return rc == FU_OK ? fu_last_code() : rc;
    }
    fu_face_net_set_mirror(net, o->mirror);
    progress pr;
    progress_start(&pr, "lfw embed", o->quiet);
    fu_lfw_embed_opts eo = {o->no_cache ? NULL : cache_path, o->batch, progress_on, &pr, o->quiet};
    double t0 = now_s();
    rc = fu_lfw_embed(o->data, &run->pairs, finder, net, &eo, &run->emb);
    run->seconds = now_s() - t0;
    progress_finish(&pr);
    fu_face_net_free(net);
    fu_face_finder_free(finder);
    return rc;
}

static int score_all(lfw_run *run) {
    for (int m = 0; m < FU_LFW_N_METRICS; m++) {
        run->scores[m] = fu_malloc((size_t)run->pairs.n * sizeof(float));
        if (!run->scores[m]) return FU_E_INTERNAL;
        int rc = fu_lfw_scores(&run->emb, &run->pairs, (fu_lfw_metric)m, run->scores[m]);
        if (rc == FU_OK) rc = fu_lfw_evaluate(&run->pairs, run->scores[m], &run->result[m]);
        if (rc != FU_OK) return rc;
    }
    return FU_OK;
}

static double mean_threshold(const fu_lfw_result *r) {
    double t = 0;
    for (int k = 0; k < r->n_folds; k++) t += r->fold_threshold[k] / r->n_folds;
    return t;
}

/* Per pair: fold, same, the two images, one score column per metric. */
static int write_csv(const char *path, const lfw_run *run) {
    fu_atomic_file af;
    int rc = fu_atomic_open(&af, path);
    if (rc != FU_OK) return rc;
    fprintf(af.f, "pair,fold,same,name1,index1,name2,index2");
    for (int m = 0; m < FU_LFW_N_METRICS; m++) fprintf(af.f, ",%s", fu_lfw_metric_name((fu_lfw_metric)m));
    fprintf(af.f, "\n");
    for (int i = 0; i < run->pairs.n; i++) {
        const fu_lfw_pair *p = &run->pairs.pairs[i];
        fprintf(af.f, "%d,%d,%d,%s,%d,%s,%d", i, p->fold + 1, p->same, p->name[0], p->index[0], p->name[1], p->index[1]);
        for (int m = 0; m < FU_LFW_N_METRICS; m++) fprintf(af.f, ",%.7g", run->scores[m][i]);
        fprintf(af.f, "\n");
    }
    return fu_atomic_commit(&af);
}

enum { ROC_SIDE = 400, ROC_TEXT = 2 };
static const float roc_colours[FU_LFW_N_METRICS][3] = {{0.1f, 0.3f, 0.8f}, {0.9f, 0.5f, 0.1f}, {0.1f, 0.6f, 0.2f}};

/* Inside the plot's frame: the axes' ends (0 and 1) and names, and a legend (a swatch of each
 * metric's colour and its name) in the bottom-right corner, which ROC curves leave empty. */
static void label_roc(fu_tensor *img) {
    int S = ROC_SIDE, line = 9 * ROC_TEXT, x0 = 20, bottom = S - 20 - 5 * ROC_TEXT;
    fu_draw_text(img, x0, bottom, ROC_TEXT, "0");
    fu_draw_text(img, S - 20 - fu_text_width("1", ROC_TEXT), bottom, ROC_TEXT, "1");
    fu_draw_text(img, x0 + 3 * line, bottom, ROC_TEXT, "false positive rate");
    fu_draw_text(img, x0, 20, ROC_TEXT, "1 true positive rate");
    for (int m = 0; m < FU_LFW_N_METRICS; m++) {
        int y = bottom - (FU_LFW_N_METRICS + 1 - m) * line, x = S / 2;
        for (int c = 0; c < 3; c++)
            for (int dy = 0; dy < 5 * ROC_TEXT; dy++)
                for (int dx = 0; dx < 4 * ROC_TEXT; dx++) img->data[((int64_t)c * S + y + dy) * S + x + dx] = roc_colours[m][c];
        fu_draw_text(img, x + 6 * ROC_TEXT, y, ROC_TEXT, fu_lfw_metric_name((fu_lfw_metric)m));
    }
}

/* ROC curves (true- against false-positive rate), one line per metric: neg-euclidean blue,
 * cosine orange, cosine-centered green; labelled. */
static int write_roc(const char *path, const lfw_run *run) {
    int n = run->pairs.n + 1, rc = FU_OK;
    float *buf = fu_malloc((size_t)FU_LFW_N_METRICS * 2 * n * sizeof(float));
    if (!buf) return FU_E_INTERNAL;
    fu_plot_series s[FU_LFW_N_METRICS];
    for (int m = 0; m < FU_LFW_N_METRICS; m++) {
        float *fpr = buf + (size_t)2 * m * n, *tpr = fpr + n;
        if (fu_lfw_roc(&run->pairs, run->scores[m], fpr, tpr) < 0) rc = FU_E_INTERNAL;
        s[m] = (fu_plot_series){fpr, tpr, n, {roc_colours[m][0], roc_colours[m][1], roc_colours[m][2]}};
    }
    fu_tensor *img = rc == FU_OK ? fu_tensor_newv(4, (int64_t)1, (int64_t)3, (int64_t)ROC_SIDE, (int64_t)ROC_SIDE) : NULL;
    if (rc == FU_OK && !img) rc = fu_last_code() ? fu_last_code() : FU_E_INTERNAL;
    if (rc == FU_OK) rc = fu_plot_lines(img, s, FU_LFW_N_METRICS, &(fu_plot_range){0, 1, 0, 1}, 0);
    if (rc == FU_OK) label_roc(img);
    if (rc == FU_OK) rc = outpath_save(path, img);
    fu_tensor_free(img);
    free(buf);
    return rc;
}

static cJSON *result_json(const fu_lfw_result *r) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "accuracy", r->mean);
    cJSON_AddNumberToObject(o, "std", r->std);
    cJSON_AddNumberToObject(o, "auc", r->auc);
    cJSON_AddNumberToObject(o, "threshold", mean_threshold(r));
    double acc[16];
    for (int k = 0; k < r->n_folds; k++) acc[k] = r->fold_accuracy[k];
    cJSON_AddItemToObject(o, "fold_accuracy", cJSON_CreateDoubleArray(acc, r->n_folds));
    return o;
}

static void report(const lfw_opts *o, const lfw_run *run) {
    const fu_lfw_embeddings *e = &run->emb;
    if (o->json) {
        cJSON *root = cJSON_CreateObject(), *metrics = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "model", o->model);
        cJSON_AddBoolToObject(root, "mirror", o->mirror);
        cJSON_AddNumberToObject(root, "pairs", run->pairs.n);
        cJSON_AddNumberToObject(root, "images", e->n_images);
        cJSON_AddNumberToObject(root, "no_face", e->n_missing);
        cJSON_AddNumberToObject(root, "cached", e->n_cached);
        cJSON_AddNumberToObject(root, "embed_seconds", run->seconds);
        cJSON_AddStringToObject(root, "primary_metric", fu_lfw_metric_name(run->primary));
        for (int m = 0; m < FU_LFW_N_METRICS; m++)
            cJSON_AddItemToObject(metrics, fu_lfw_metric_name((fu_lfw_metric)m), result_json(&run->result[m]));
        cJSON_AddItemToObject(root, "metrics", metrics);
        char *text = cJSON_Print(root);
        if (text) puts(text);
        cJSON_free(text);
        cJSON_Delete(root);
        return;
    }
    printf("LFW %s%s: %d pairs, %d images (%d from the cache, %d without a face), embedding %.1f s\n", o->model,
           o->mirror ? " (mirrored)" : "", run->pairs.n, e->n_images, e->n_cached, e->n_missing, run->seconds);
    for (int m = 0; m < FU_LFW_N_METRICS; m++) {
        const fu_lfw_result *r = &run->result[m];
        printf("  %-16s accuracy %.2f%% +- %.2f%%  AUC %.4f  threshold %.4f%s\n", fu_lfw_metric_name((fu_lfw_metric)m),
               100 * r->mean, 100 * r->std, r->auc, mean_threshold(r), (int)run->primary == m ? "  (primary)" : "");
    }
}

/* The metric stored for faceup compare: of those two descriptors alone determine (not the
 * centred cosine, which needs the data set's mean), the more accurate on LFW. */
static fu_lfw_metric pairwise_metric(const lfw_run *run) {
    return run->result[FU_LFW_COSINE].mean > run->result[FU_LFW_NEG_EUCLIDEAN].mean ? FU_LFW_COSINE : FU_LFW_NEG_EUCLIDEAN;
}

static int write_outputs(const lfw_opts *o, const lfw_run *run) {
    int rc = o->csv ? write_csv(o->csv, run) : FU_OK;
    if (rc == FU_OK && o->roc) rc = write_roc(o->roc, run);
    if (rc == FU_OK && o->write_calibration) {
        fu_lfw_metric m = pairwise_metric(run);
        const fu_lfw_result *r = &run->result[m];
        fu_calibration cal = {{0}, mean_threshold(r), r->mean, r->std, run->pairs.n};
        snprintf(cal.metric, sizeof cal.metric, "%s", fu_lfw_metric_name(m));
        char buf[4096], key[64];
        const char *path = o->calibration ? o->calibration : fu_calibration_default_path(buf, sizeof buf);
        fu_calibration_key(o->model, o->mirror, key, sizeof key);
        rc = fu_calibration_write(path, key, &cal);
        if (rc == FU_OK && !o->quiet) fprintf(stderr, "faceup eval lfw: calibration for %s written to %s\n", key, path);
    }
    return rc;
}

static void run_free(lfw_run *run) {
    fu_lfw_pairs_free(&run->pairs);
    fu_lfw_embeddings_free(&run->emb);
    for (int m = 0; m < FU_LFW_N_METRICS; m++) free(run->scores[m]);
}

static int parse_lfw_args(int argc, char **argv, lfw_opts *o) {
    arg_spec specs[] = {
        {"--data", ARG_STRING, &o->data, 0, 0, "LFW folder with pairs.txt and images/ (default $FACEUP_SHARED/data/lfw or ../shared/data/lfw)"},
        {"--model", ARG_STRING, &o->model, 0, 0, "dlib-resnet (default) or faceres"},
        {"--pairs", ARG_INT, &o->max_pairs, 20, 1000000, "quick run on a subset: about N pairs, the first of each fold"},
        {"--roc", ARG_STRING, &o->roc, 0, 0, "write ROC curves (TPR against FPR, one line per metric) to this PNG"},
        {"--csv", ARG_STRING, &o->csv, 0, 0, "write per-pair scores to this CSV"},
        {"--json", ARG_FLAG, &o->json, 0, 0, "results as JSON on stdout"},
        {"--write-calibration", ARG_FLAG, &o->write_calibration, 0, 0,
         "store the 10-fold mean threshold of neg-euclidean or cosine, the more accurate, in the calibration file (for faceup compare; as MODEL+mirror with --mirror)"},
        {"--calibration", ARG_STRING, &o->calibration, 0, 0, "calibration file (default models/calibration.json)"},
        {"--cache", ARG_STRING, &o->cache, 0, 0, "embedding cache file (default ~/.cache/faceup/embeddings/lfw-MODEL.bin)"},
        {"--no-cache", ARG_FLAG, &o->no_cache, 0, 0, "neither read nor write the embedding cache"},
        {"--batch", ARG_INT, &o->batch, 1, FU_FACE_MAX_BATCH, "faces per network call (default 16)"},
        {"--mirror", ARG_FLAG, &o->mirror, 0, 0, "test-time mirroring: each descriptor is the mean of the crop's and its mirror image's"},
        {"--quiet", ARG_FLAG, &o->quiet, 0, 0, "no progress or warnings on stderr"},
        {"--threads", ARG_INT, &o->threads, 0, 1024, "threads (default: FACEUP_THREADS or all cores)"},
        {0},
    };
    int n = args_parse("eval lfw", "[flags]", specs, argc, argv, NULL, 0);
    if (n < 0) return n;
    if (fu_face_net_parse(o->model) != FU_NET_DLIB_RESNET && fu_face_net_parse(o->model) != FU_NET_FACERES) {
        fprintf(stderr, "faceup eval lfw: --model must be dlib-resnet or faceres\n");
        return -1;
    }
    return 0;
}

int cmd_eval_lfw(int argc, char **argv) {
    char lfw_dir[4096];
    lfw_opts o = {.data = fu_lfw_default_dir(lfw_dir, sizeof lfw_dir), .model = "dlib-resnet", .batch = 16};
    int n = parse_lfw_args(argc, argv, &o);
    if (n < 0) return n == -2 ? FU_OK : FU_E_INPUT;
    fu_set_threads(o.threads);
    fu_face_net_kind kind = (fu_face_net_kind)fu_face_net_parse(o.model);
    lfw_run run = {.primary = primary_metric(kind)};
    out_target roc;
    int rc = o.roc ? outpath_file("--roc", o.roc, &roc) : FU_OK;   /* before the embedding, not after */
    if (rc == FU_OK) rc = fu_lfw_load_pairs(o.data, &run.pairs);
    if (rc == FU_OK) fu_lfw_subset(&run.pairs, o.max_pairs);
    if (rc == FU_OK) rc = embed_all(&o, kind, &run);
    if (rc == FU_OK) rc = score_all(&run);
    if (rc == FU_OK) rc = write_outputs(&o, &run);
    if (rc == FU_OK) report(&o, &run);
    else report_failure("eval lfw", o.json);
    run_free(&run);
    return rc == FU_OK ? FU_OK : rc == FU_E_INTERNAL ? FU_E_INTERNAL : FU_E_INPUT;
}
