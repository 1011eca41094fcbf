/* faceup eval extractor: the augmented extractor (face/face_extractor.h) against its starting
 * point (face-api's dlib ResNet + faceup-heads + the guides' comparer), as JSON:
 *   lfw          10-fold verification accuracy (neg-euclidean, dlib's criterion) on LFW through
 *                the whole pipeline (eval/lfw_run.h), before and after; vectors cached per
 *                network weights
 *   race         per-class recall on the UTKFace test split (train/finetune_data.h; --split val
 *                scores the val split instead, for choosing settings without the test split)
 *   attributes   per-attribute and mean accuracy on the CelebA test split
 *   lookalike    comparer decisions on held-out test faces: (real, other view) same,
 *                (real, faceup's look-alike of its thumbnail) different
 *   drift        mean |e - e0| on the test faces (0 before)
 * Progress on stderr. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "args.h"
#include "commands.h"
#include "core/error.h"
#include "data/embed_cache.h"
#include "eval/lfw_run.h"
#include "face/face_extractor.h"
#include "face/models.h"
#include "faceup.h"
#include "progress.h"
#include "search/loss_string.h"
#include "train/finetune.h"

typedef struct {
    const char *data, *extractor, *heads, *lfw, *split;
    int max_pairs, no_lfw, quiet, threads;
} opts;

static int exit_code(int rc) { return rc == FU_OK ? FU_OK : (rc == FU_E_INTERNAL ? FU_E_INTERNAL : FU_E_INPUT); }

/* LFW accuracy of dlib's descriptors (face-api's own network when stock), cached in
 * lfw-dlib-resnet.bin (stock) or lfw-extractor.bin under the default cache folder. */
static int lfw_accuracy(const opts *o, fu_dlib_resnet *dlib, int stock, const char *label, fu_lfw_result *res, int *n_pairs) {
    fu_lfw_pairs pairs;
    int rc = fu_lfw_load_pairs(o->lfw, &pairs);
    if (rc != FU_OK) return rc;
    fu_lfw_subset(&pairs, o->max_pairs);
    *n_pairs = pairs.n;
    char cache[4096];
    rc = fu_ecache_default_path(stock ? "lfw-dlib-resnet" : "lfw-extractor", cache, sizeof cache);
    fu_face_finder *finder = rc == FU_OK ? fu_face_finder_load(1) : NULL;
    fu_face_net *net = finder ? (stock ? fu_face_net_load(FU_NET_DLIB_RESNET) : fu_face_net_wrap_dlib(dlib)) : NULL;
    if (rc == FU_OK && !net) rc = fu_last_code();
    fu_lfw_embeddings emb = {0};
    progress bar;
    progress_start(&bar, label, o->quiet);
    fu_lfw_embed_opts eo = {cache, 16, progress_on, &bar, 1};
    if (rc == FU_OK) rc = fu_lfw_embed(o->lfw, &pairs, finder, net, &eo, &emb);
    progress_finish(&bar);
    float *scores = rc == FU_OK ? malloc((size_t)pairs.n * sizeof *scores) : NULL;
    if (rc == FU_OK && !scores) rc = fu_fail(FU_E_INTERNAL, "out of memory");
    if (rc == FU_OK) rc = fu_lfw_scores(&emb, &pairs, FU_LFW_NEG_EUCLIDEAN, scores);
    if (rc == FU_OK) rc = fu_lfw_evaluate(&pairs, scores, res);
    free(scores);
    fu_lfw_embeddings_free(&emb);
    fu_face_net_free(net);
    fu_face_finder_free(finder);
    fu_lfw_pairs_free(&pairs);
    return rc;
}

static cJSON *scores_json(const fu_extractor_scores *s, const fu_lfw_result *lfw, int has_lfw, int n_pairs) {
    cJSON *o = cJSON_CreateObject(), *race = cJSON_CreateObject(), *per = cJSON_CreateObject();
    cJSON *attr = cJSON_CreateObject(), *pa = cJSON_CreateObject(), *look = cJSON_CreateObject();
    if (has_lfw) {
        cJSON *l = cJSON_CreateObject();
        cJSON_AddNumberToObject(l, "pairs", n_pairs);
        cJSON_AddNumberToObject(l, "accuracy", lfw->mean);
        cJSON_AddNumberToObject(l, "std", lfw->std);
        cJSON_AddItemToObject(o, "lfw", l);
    }
    cJSON_AddNumberToObject(race, "accuracy", s->race_accuracy);
    cJSON_AddNumberToObject(race, "balanced_accuracy", s->race_balanced);
    for (int c = 0; c < FU_RACE_CLASSES; c++) {
        cJSON *k = cJSON_CreateObject();
        cJSON_AddNumberToObject(k, "images", s->race_count[c]);
        cJSON_AddNumberToObject(k, "recall", s->race_count[c] ? (double)s->race_correct[c] / s->race_count[c] : 0);
        cJSON_AddItemToObject(per, fu_race_name(c), k);
    }
    cJSON_AddItemToObject(race, "per_class", per);
    cJSON_AddItemToObject(o, "race", race);
    cJSON_AddNumberToObject(attr, "images", s->attr_n);
    cJSON_AddNumberToObject(attr, "mean_accuracy", s->attr_mean);
    for (int a = 0; a < FU_ATTRS; a++) cJSON_AddNumberToObject(pa, fu_celeba_attr_name(a), s->attr_accuracy[a]);
    cJSON_AddItemToObject(attr, "per_attribute", pa);
    cJSON_AddItemToObject(o, "attributes", attr);
    cJSON_AddNumberToObject(look, "faces", s->pairs);
    cJSON_AddNumberToObject(look, "separation_accuracy", s->separation);
    cJSON_AddNumberToObject(look, "same_right", s->same_right);
    cJSON_AddNumberToObject(look, "different_right", s->diff_right);
    cJSON_AddNumberToObject(look, "mean_angle_same", s->angle_same);
    cJSON_AddNumberToObject(look, "mean_angle_lookalike", s->angle_diff);
    cJSON_AddItemToObject(o, "lookalike", look);
    cJSON_AddNumberToObject(o, "test_faces", s->n_faces);
    cJSON_AddNumberToObject(o, "descriptor_drift_mean", s->drift_mean);
    return o;
}

/* Test-split scores and LFW of one extractor. */
static int evaluate(const opts *o, fu_face_extractor *x, const fu_xdata *d, int stock, cJSON **out) {
    fu_extractor_scores s;
    fu_lfw_result lfw = {0};
    int n_pairs = 0;
    progress bar;
    progress_start(&bar, stock ? "faces (before)" : "faces (after)", o->quiet);
    int rc = fu_extractor_score(x, d, strcmp(o->split, "val") ? FU_XSPLIT_TEST : FU_XSPLIT_VAL, &s, progress_on, &bar);
    progress_finish(&bar);
    if (rc == FU_OK && !o->no_lfw) rc = lfw_accuracy(o, x->net, stock, stock ? "lfw (before)" : "lfw (after)", &lfw, &n_pairs);
    if (rc == FU_OK) *out = scores_json(&s, &lfw, !o->no_lfw, n_pairs);
    return rc;
}

static double lfw_of(cJSON *o) {
    cJSON *l = cJSON_GetObjectItem(o, "lfw");
    return l ? cJSON_GetObjectItem(l, "accuracy")->valuedouble : 0;
}

/* Improvement flags: LFW within 0.3 points, every race class and the attribute mean better. */
static void add_verdict(cJSON *root, cJSON *before, cJSON *after, int has_lfw) {
    cJSON *v = cJSON_CreateObject();
    double drop = has_lfw ? 100 * (lfw_of(before) - lfw_of(after)) : 0;
    if (has_lfw) cJSON_AddNumberToObject(v, "lfw_drop_points", drop);
    int every_class = 1;
    cJSON *pb = cJSON_GetObjectItem(cJSON_GetObjectItem(before, "race"), "per_class");
    cJSON *pa = cJSON_GetObjectItem(cJSON_GetObjectItem(after, "race"), "per_class");
    for (int c = 0; c < FU_RACE_CLASSES; c++)
        every_class &= cJSON_GetObjectItem(cJSON_GetObjectItem(pa, fu_race_name(c)), "recall")->valuedouble >=
                       cJSON_GetObjectItem(cJSON_GetObjectItem(pb, fu_race_name(c)), "recall")->valuedouble;
    double race_gain = cJSON_GetObjectItem(cJSON_GetObjectItem(after, "race"), "balanced_accuracy")->valuedouble -
                       cJSON_GetObjectItem(cJSON_GetObjectItem(before, "race"), "balanced_accuracy")->valuedouble;
    double attr_gain = cJSON_GetObjectItem(cJSON_GetObjectItem(after, "attributes"), "mean_accuracy")->valuedouble -
                       cJSON_GetObjectItem(cJSON_GetObjectItem(before, "attributes"), "mean_accuracy")->valuedouble;
    cJSON_AddNumberToObject(v, "race_balanced_gain", race_gain);
    cJSON_AddBoolToObject(v, "race_every_class_at_least_as_good", every_class);
    cJSON_AddNumberToObject(v, "attribute_mean_gain", attr_gain);
    cJSON_AddBoolToObject(v, "ship", has_lfw && drop <= 0.3 && race_gain > 0 && attr_gain > 0);
    cJSON_AddItemToObject(root, "verdict", v);
}

int cmd_eval_extractor(int argc, char **argv) {
    opts o = {.lfw = "../shared/data/lfw", .split = "test"};
    arg_spec specs[] = {
        {"--data", ARG_STRING, &o.data, 0, 0, "fine-tune data file (faceup train finetune-data): its test split"},
        {"--extractor", ARG_STRING, &o.extractor, 0, 0, "extractor file (default " FU_EXTRACTOR_DEFAULT ")"},
        {"--heads", ARG_STRING, &o.heads, 0, 0, "heads of the starting point (default " FU_HEADS_DEFAULT ")"},
        {"--lfw", ARG_STRING, &o.lfw, 0, 0, "LFW folder with pairs.txt (default ../shared/data/lfw)"},
        {"--max-pairs", ARG_INT, &o.max_pairs, 0, 6000, "LFW pairs, spread over the 10 folds (default all)"},
        {"--split", ARG_STRING, &o.split, 0, 0, "test (default; the reported figures) or val (for choosing settings)"},
        {"--no-lfw", ARG_FLAG, &o.no_lfw, 0, 0, "skip LFW"},
        {"--threads", ARG_INT, &o.threads, 0, 1024, "threads (default: FACEUP_THREADS or all cores)"},
        {"--quiet", ARG_FLAG, &o.quiet, 0, 0, "no progress on stderr"},
        {0},
    };
    const char *usage = "faceup eval extractor --data FILE [--extractor FILE] [flags]\n"
                        "LFW, race, attribute and look-alike scores of the fine-tuned extractor and its starting point, as JSON.";
    int n = args_parse("eval extractor", usage, specs, argc, argv, NULL, 0);
    if (n == -2) return FU_OK;
    if (n != 0 || !o.data || (strcmp(o.split, "test") && strcmp(o.split, "val"))) {
        if (n == 0) fprintf(stderr, "faceup eval extractor: %s\n", o.data ? "--split is test or val" : "--data is required");
        return FU_E_INPUT;
    }
    fu_set_threads(o.threads);
    char ext_buf[4096], heads_buf[4096];
    if (!o.extractor) o.extractor = fu_shipped_path(FU_EXTRACTOR_DEFAULT, ext_buf, sizeof ext_buf);
    if (!o.heads) o.heads = fu_shipped_path(FU_HEADS_DEFAULT, heads_buf, sizeof heads_buf);
    fu_xdata d = {0};
    fu_face_extractor *after = fu_face_extractor_load(o.extractor), *before = NULL;
    int rc = after ? fu_xdata_load(o.data, &d) : fu_last_code();
    if (rc == FU_OK && !(before = fu_finetune_initial(o.heads))) rc = fu_last_code();
    cJSON *root = cJSON_CreateObject(), *jb = NULL, *ja = NULL;
    if (rc == FU_OK) rc = evaluate(&o, before, &d, 1, &jb);
    if (rc == FU_OK) rc = evaluate(&o, after, &d, 0, &ja);
    if (rc == FU_OK) {
        cJSON_AddStringToObject(root, "extractor", o.extractor);
        cJSON_AddItemToObject(root, "before", jb);
        cJSON_AddItemToObject(root, "after", ja);
        add_verdict(root, jb, ja, !o.no_lfw);
        char *text = cJSON_Print(root);
        if (text) printf("%s\n", text);
        free(text);
    } else {
        cJSON_Delete(jb);
        cJSON_Delete(ja);
        fprintf(stderr, "faceup eval extractor: %s\n", fu_last_error());
    }
    cJSON_Delete(root);
    fu_xdata_free(&d);
    fu_face_extractor_free(before);
    fu_face_extractor_free(after);
    return exit_code(rc);
}
