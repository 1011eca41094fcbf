/* faceup train race-judge | thumb-race: the two race classifiers of `faceup eval upscale` and
 * `--race keep`, trained on the UTKFace faces of the generator's pack (train/race_data.h):
 *   race-judge  an MLP on faceres descriptors (face/race_judge.h), the independent judge; its
 *               per-class recall on the val faces is reported beside gear's on the same faces
 *   thumb-race  the thumbnail race classifiers thumb16 / thumb8 of a heads file (face/heads.h),
 *               retrained on the pack's thumbnails (the eval's framing and bicubic); the other
 *               heads are copied unchanged; val figures of the old and the new ones side by side. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "args.h"
#include "commands.h"
#include "core/error.h"
#include "data/embed_cache.h"
#include "core/ops.h"
#include "face/analyze.h"
#include "face/heads.h"
#include "face/models.h"
#include "face/race_judge.h"
#include "faceup.h"
#include "progress.h"
#include "train/race_data.h"
#include "train/race_offsets.h"
#include "train/train_heads.h"

#define DATA_TERMS "trained on UTKFace: non-commercial research use only, as that data set"

static void on_epoch(void *ctx, int64_t epoch, int64_t max_epochs, const char *head) {
    char note[48];
    snprintf(note, sizeof note, "%s epoch %lld", head, (long long)epoch);
    progress_update(ctx, (long)epoch, (long)max_epochs, note);
}

/* Rows of one part: x (dim floats each, from src rows mapped by a*v+b) and y. Caller frees. */
static int part_rows(const fu_race_data *d, int part, const float *src, int dim, float a, float b, float **x, int **y, int64_t *n) {
    *n = 0;
    for (int64_t i = 0; i < d->n; i++) *n += d->part[i] == part;
    *x = malloc((size_t)(*n ? *n : 1) * (size_t)dim * sizeof(float));
    *y = malloc((size_t)(*n ? *n : 1) * sizeof(int));
    if (!*x || !*y) return fu_fail(FU_E_INTERNAL, "out of memory");
    int64_t k = 0;
    for (int64_t i = 0; i < d->n; i++) {
        if (d->part[i] != part) continue;
        for (int j = 0; j < dim; j++) (*x)[k * dim + j] = a * src[i * dim + j] + b;
        (*y)[k++] = d->race[i];
    }
    return FU_OK;
}

/* Per-class recall of predictions pred[] against y[] as JSON {class: {faces, recall}}, plus
 * accuracy and balanced accuracy. */
static cJSON *recall_json(const int *pred, const int *y, int64_t n) {
    int count[FU_RACE_CLASSES] = {0}, right[FU_RACE_CLASSES] = {0};
    int64_t ok = 0;
    for (int64_t i = 0; i < n; i++) { count[y[i]]++; if (pred[i] == y[i]) right[y[i]]++, ok++; }
    cJSON *o = cJSON_CreateObject(), *per = cJSON_CreateObject();
    double bal = 0;
    for (int c = 0; c < FU_RACE_CLASSES; c++) {
        cJSON *k = cJSON_CreateObject();
        double r = count[c] ? (double)right[c] / count[c] : 0;
        bal += r / FU_RACE_CLASSES;
        cJSON_AddNumberToObject(k, "faces", count[c]);
        cJSON_AddNumberToObject(k, "recall", r);
        cJSON_AddItemToObject(per, fu_race_name(c), k);
    }
    cJSON_AddNumberToObject(o, "faces", (double)n);
    cJSON_AddNumberToObject(o, "accuracy", n ? (double)ok / (double)n : 0);
    cJSON_AddNumberToObject(o, "balanced_accuracy", bal);
    cJSON_AddItemToObject(o, "per_class", per);
    return o;
}

/* Softmax probabilities of an MLP on n rows, its logits plus bias (5 offsets, or NULL), into
 * probs (n x 5). */
static int mlp_probs(const fu_mlp *m, const float *bias, const float *x, int64_t n, float *probs) {
    int rc = fu_mlp_rows(m, x, n, probs);
    for (int64_t i = 0; rc == FU_OK && i < n; i++) {
        float *p = probs + i * FU_RACE_CLASSES, top = -INFINITY, sum = 0;
        for (int c = 0; c < FU_RACE_CLASSES; c++) p[c] += bias ? bias[c] : 0, top = fmaxf(top, p[c]);
        for (int c = 0; c < FU_RACE_CLASSES; c++) sum += p[c] = expf(p[c] - top);
        for (int c = 0; c < FU_RACE_CLASSES; c++) p[c] /= sum;
    }
    return rc;
}

static int argmax5(const float *p) {
    int b = 0;
    for (int c = 1; c < FU_RACE_CLASSES; c++) if (p[c] > p[b]) b = c;
    return b;
}

/* Accuracy of the confident predictions (max probability >= t) and their share, for a few t:
 * whether `--race keep` should aim only when the thumbnail classifier is sure. */
static cJSON *confidence_json(const float *probs, const int *y, int64_t n) {
    static const float levels[] = {0.4f, 0.5f, 0.6f, 0.7f, 0.8f, 0.9f};
    cJSON *a = cJSON_CreateArray();
    for (size_t l = 0; l < sizeof levels / sizeof *levels; l++) {
        int64_t kept = 0, right = 0;
        for (int64_t i = 0; i < n; i++) {
            int b = argmax5(probs + i * FU_RACE_CLASSES);
            if (probs[i * FU_RACE_CLASSES + b] < levels[l]) continue;
            kept++, right += b == y[i];
        }
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "min_probability", levels[l]);
        cJSON_AddNumberToObject(o, "share_kept", n ? (double)kept / (double)n : 0);
        cJSON_AddNumberToObject(o, "accuracy_of_kept", kept ? (double)right / (double)kept : 0);
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

static cJSON *score_json(const fu_mlp *m, const float *bias, const float *x, const int *y, int64_t n, int *rc) {
    float *probs = malloc((size_t)(n ? n : 1) * FU_RACE_CLASSES * sizeof(float));
    int *pred = malloc((size_t)(n ? n : 1) * sizeof(int));
    *rc = probs && pred ? mlp_probs(m, bias, x, n, probs) : fu_fail(FU_E_INTERNAL, "out of memory");
    cJSON *o = NULL;
    if (*rc == FU_OK) {
        for (int64_t i = 0; i < n; i++) pred[i] = argmax5(probs + i * FU_RACE_CLASSES);
        o = recall_json(pred, y, n);
        cJSON_AddItemToObject(o, "confidence", confidence_json(probs, y, n));
    }
    free(probs);
    free(pred);
    return o;
}

static cJSON *fit_json(const fu_race_fit *f) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "train_faces", f->select.n_train);
    cJSON_AddNumberToObject(o, "dev_faces", f->select.n_val);
    cJSON_AddNumberToObject(o, "epochs", f->select.epochs);
    cJSON_AddNumberToObject(o, "best_epoch", f->select.best_epoch);
    cJSON_AddNumberToObject(o, "dev_balanced_accuracy", f->select.balanced);
    cJSON_AddNumberToObject(o, "first_epoch_loss", f->first_loss);
    cJSON_AddNumberToObject(o, "last_epoch_loss", f->last_loss);
    return o;
}

typedef struct split_rows {
    float *x[FU_RD_N_PARTS];
    int *y[FU_RD_N_PARTS];
    int64_t n[FU_RD_N_PARTS];
} split_rows;

static int split_rows_make(const fu_race_data *d, const float *src, int dim, float a, float b, split_rows *s) {
    memset(s, 0, sizeof *s);
    int rc = FU_OK;
    for (int p = 0; rc == FU_OK && p < FU_RD_N_PARTS; p++) rc = part_rows(d, p, src, dim, a, b, &s->x[p], &s->y[p], &s->n[p]);
    return rc;
}

static void split_rows_free(split_rows *s) {
    for (int p = 0; p < FU_RD_N_PARTS; p++) { free(s->x[p]); free(s->y[p]); }
}

/* Trains m on TRAIN, chosen on DEV; JSON of the fit and the VAL scores. */
static int train_scored(fu_mlp *m, int flip, const split_rows *s, const fu_heads_train_config *cfg, const char *name, progress *bar,
                        cJSON *out) {
    fu_race_rows train = {s->n[FU_RD_TRAIN], s->x[FU_RD_TRAIN], s->y[FU_RD_TRAIN]}, dev = {s->n[FU_RD_DEV], s->x[FU_RD_DEV], s->y[FU_RD_DEV]};
    fu_race_fit fit;
    int rc = fu_race_mlp_train(m, flip, &train, &dev, cfg, &fit, on_epoch, bar);
    cJSON *val = rc == FU_OK ? score_json(m, NULL, s->x[FU_RD_VAL], s->y[FU_RD_VAL], s->n[FU_RD_VAL], &rc) : NULL;
    if (rc == FU_OK) {
        cJSON *o = fit_json(&fit);
        cJSON_AddItemToObject(o, "val", val);
        cJSON_AddItemToObject(out, name, o);
    }
    return rc;
}

static fu_faces *load_pack(const char *path) {
    fu_faces *pack = NULL;
    return fu_faces_load(path, &pack) == FU_OK ? pack : NULL;
}

static void print_json(cJSON *o) {
    char *text = cJSON_Print(o);
    if (text) printf("%s\n", text);
    free(text);
}

static int finish(const char *cmd, int rc) {
    if (rc != FU_OK) fprintf(stderr, "faceup train %s: %s\n", cmd, fu_last_error());
    return rc == FU_OK ? FU_OK : rc == FU_E_INTERNAL ? FU_E_INTERNAL : FU_E_INPUT;
}

/* ---------------------------------------------------------------- race-judge */

/* gear's class on every VAL face (the box eval upscale gives it). */
static int gear_val(fu_face_net *gear, const fu_faces *pack, const fu_race_data *d, int *pred, progress *bar) {
    fu_tensor *img = fu_tensor_newv(4, (int64_t)1, (int64_t)3, (int64_t)pack->size, (int64_t)pack->size);
    int rc = img ? FU_OK : fu_last_code(), size = fu_face_net_input_size(gear);
    int64_t k = 0, n = 3 * (int64_t)pack->size * pack->size;
    for (int64_t i = 0; rc == FU_OK && i < d->n; i++) {
        if (d->part[i] != FU_RD_VAL) continue;
        for (int64_t j = 0; j < n; j++) img->data[j] = pack->pixels[d->pack_index[i] * n + j] / 255.0f;
        double theta[1][6];
        float out[FU_GEAR_DIM];
        fu_judge_box_theta(img->shape, fu_gear_utkface_box, size, theta[0]);
        rc = fu_face_net_run(gear, &img, (const double (*)[6])theta, 1, out);
        fu_face_attributes a;
        fu_face_attributes_read(out, NULL, &a);
        pred[k++] = a.race_best;
        progress_update(bar, (long)k, 0, "gear on val");
    }
    fu_tensor_free(img);
    return rc;
}

/* Standardisation of the judge's input from the TRAIN descriptors. */
static void fit_scaler(const fu_race_data *d, fu_race_judge *j) {
    double sum[FU_RACE_JUDGE_IN] = {0}, sq[FU_RACE_JUDGE_IN] = {0};
    int64_t n = 0;
    for (int64_t i = 0; i < d->n; i++) {
        if (d->part[i] != FU_RD_TRAIN) continue;
        const float *v = d->faceres + i * FU_RACE_JUDGE_IN;
        for (int k = 0; k < FU_RACE_JUDGE_IN; k++) sum[k] += v[k], sq[k] += (double)v[k] * v[k];
        n++;
    }
    for (int k = 0; k < FU_RACE_JUDGE_IN; k++) {
        double mean = sum[k] / (double)n, var = sq[k] / (double)n - mean * mean;
        j->mean[k] = (float)mean;
        j->scale[k] = (float)(1.0 / sqrt(var > 1e-6 ? var : 1e-6));
    }
}

static int judge_run(const fu_race_data *d, fu_race_judge *j, fu_face_net *gear, const fu_faces *pack, const fu_heads_train_config *cfg,
                     const char *out, int quiet, cJSON *report) {
    fit_scaler(d, j);
    float *x = malloc((size_t)d->n * FU_RACE_JUDGE_IN * sizeof(float));
    if (!x) return fu_fail(FU_E_INTERNAL, "out of memory");
    for (int64_t i = 0; i < d->n; i++) fu_race_judge_input(j, d->faceres + i * FU_RACE_JUDGE_IN, x + i * FU_RACE_JUDGE_IN);
    split_rows s;
    int rc = split_rows_make(d, x, FU_RACE_JUDGE_IN, 1, 0, &s);
    free(x);
    progress bar;
    progress_start(&bar, "race judge", quiet);
    if (rc == FU_OK) rc = train_scored(&j->mlp, 0, &s, cfg, "faceres_judge", &bar, report);
    int *pred = rc == FU_OK ? malloc((size_t)s.n[FU_RD_VAL] * sizeof(int)) : NULL;
    if (rc == FU_OK && !pred) rc = fu_fail(FU_E_INTERNAL, "out of memory");
    if (rc == FU_OK) rc = gear_val(gear, pack, d, pred, &bar);
    progress_finish(&bar);
    if (rc == FU_OK) cJSON_AddItemToObject(report, "gear_val", recall_json(pred, s.y[FU_RD_VAL], s.n[FU_RD_VAL]));
    if (rc == FU_OK) {
        const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(report, "faceres_judge"), "val"), "balanced_accuracy");
        char bal[32];
        snprintf(bal, sizeof bal, "%.4f", v ? v->valuedouble : 0);
        const char *meta[] = {"format", "faceup-race-judge-1", "race_classes", "White,Black,Asian,Indian,Others", "input",
                              "human-models faceres global_pooling/Mean of the 64x64 FFHQ-framed face resized to 224",
                              "data", DATA_TERMS, "val_balanced_accuracy", bal};
        rc = fu_race_judge_save(j, out, meta, 5);
    }
    free(pred);
    split_rows_free(&s);
    return rc;
}

int cmd_train_race_judge(int argc, char **argv) {
    const char *pack_path = NULL, *out = NULL, *cache = NULL;
    int quiet = 0, threads = 0, max_train = 1000;
    fu_heads_train_config cfg = fu_heads_train_defaults();
    arg_spec specs[] = {
        {"--pack", ARG_STRING, &pack_path, 0, 0, "the generator's face pack (faceup train faces, FFHQ framing)"},
        {"--out", ARG_STRING, &out, 0, 0, "judge file to write (.safetensors)"},
        {"--lr", ARG_FLOAT, &cfg.lr, 1e-7, 1, "Adam learning rate (default 1e-3)"},
        {"--weight-decay", ARG_FLOAT, &cfg.weight_decay, 0, 1, "weight decay (default 1e-4)"},
        {"--cache", ARG_STRING, &cache, 0, 0, "faceres descriptor cache (default $FACEUP_CACHE/embeddings/race-judge.bin)"},
        {"--max-train-per-class", ARG_INT, &max_train, 0, 1000000, "train faces per class, 0 = all (default 1000)"},
        {"--threads", ARG_INT, &threads, 0, 1024, "threads (default: FACEUP_THREADS or all cores)"},
        {"--quiet", ARG_FLAG, &quiet, 0, 0, "no progress on stderr"},
        {0},
    };
    int n = args_parse("train race-judge", "--pack FILE --out FILE", specs, argc, argv, NULL, 0);
    if (n < 0) return n == -2 ? FU_OK : FU_E_INPUT;
    if (!pack_path || !out) { fprintf(stderr, "faceup train race-judge: --pack and --out are required\n"); return FU_E_INPUT; }
    fu_set_threads(threads);
    char cache_buf[4096];
    int rc = cache ? FU_OK : fu_ecache_default_path("race-judge", cache_buf, sizeof cache_buf);
    fu_faces *pack = rc == FU_OK ? load_pack(pack_path) : NULL;
    fu_face_net *faceres = NULL, *gear = NULL;
    fu_race_judge *j = fu_race_judge_new(1);
    if (rc == FU_OK && !pack) rc = fu_last_code();
    if (rc == FU_OK && !(faceres = fu_face_net_load(FU_NET_FACERES))) rc = fu_last_code();
    if (rc == FU_OK && !(gear = fu_face_net_load(FU_NET_GEAR))) rc = fu_last_code();
    if (rc == FU_OK && !j) rc = fu_last_code();
    fu_race_data d = {0};
    progress bar;
    progress_start(&bar, "faceres descriptors", quiet);
    if (rc == FU_OK) rc = fu_race_data_build(pack, max_train, faceres, cache ? cache : cache_buf, &d, progress_on, &bar);
    progress_finish(&bar);
    cJSON *report = cJSON_CreateObject();
    if (rc == FU_OK) {
        cJSON_AddNumberToObject(report, "faces", (double)d.n);
        cJSON_AddNumberToObject(report, "descriptors_from_cache", (double)d.n_cached);
        rc = judge_run(&d, j, gear, pack, &cfg, out, quiet, report);
    }
    if (rc == FU_OK) print_json(report);
    cJSON_Delete(report);
    fu_race_data_free(&d);
    fu_race_judge_free(j);
    fu_face_net_free(faceres);
    fu_face_net_free(gear);
    fu_faces_free(pack);
    return finish("race-judge", rc);
}

/* ---------------------------------------------------------------- thumb-race */

/* The operating point of a thumbnail classifier: offsets fitted on the DEV part so that the
 * worst class's recall is as high as possible (train/race_offsets.h with zero anchors, leximin),
 * instead of argmax of a model trained on class-balanced batches. `--race keep` wins for every
 * class when it aims at the right one (bench/RESULTS.md), so the class it misses most is the
 * one to fix. */
static int fit_thumb_offsets(const fu_mlp *m, const split_rows *s, float bias[FU_RACE_CLASSES]) {
    int64_t n = s->n[FU_RD_DEV];
    float *logits = malloc((size_t)(n ? n : 1) * FU_RACE_CLASSES * sizeof(float));
    int rc = logits ? fu_mlp_rows(m, s->x[FU_RD_DEV], n, logits) : fu_fail(FU_E_INTERNAL, "out of memory");
    static const double no_anchor[FU_RACE_CLASSES] = {0};
    if (rc == FU_OK) rc = fu_race_offsets_fit(logits, s->y[FU_RD_DEV], n, no_anchor, bias);
    free(logits);
    return rc;
}

/* The old and the new classifier of one thumbnail size; with offsets, also the new one's
 * worst-class offsets (bias) and its val scores with them. */
static int thumb_one(const fu_race_data *d, const float *thumbs, int side, const fu_mlp *old, const float *old_bias, fu_mlp *fresh,
                     float *bias, const fu_heads_train_config *cfg, progress *bar, cJSON *report) {
    int dim = 3 * side * side, rc;
    char name[32];
    split_rows s;
    rc = split_rows_make(d, thumbs, dim, 2, -1, &s);   /* [0,1] -> [-1,1], as fu_heads_thumb_race feeds them */
    cJSON *before = rc == FU_OK ? score_json(old, old_bias, s.x[FU_RD_VAL], s.y[FU_RD_VAL], s.n[FU_RD_VAL], &rc) : NULL;
    snprintf(name, sizeof name, "thumb%d_before", side);
    if (rc == FU_OK) cJSON_AddItemToObject(report, name, before);
    snprintf(name, sizeof name, "thumb%d", side);
    if (rc == FU_OK) rc = train_scored(fresh, side, &s, cfg, name, bar, report);
    if (rc == FU_OK && bias) rc = fit_thumb_offsets(fresh, &s, bias);
    cJSON *with = rc == FU_OK && bias ? score_json(fresh, bias, s.x[FU_RD_VAL], s.y[FU_RD_VAL], s.n[FU_RD_VAL], &rc) : NULL;
    if (with) {
        cJSON_AddItemToObject(with, "offsets", cJSON_CreateFloatArray(bias, FU_RACE_CLASSES));
        cJSON_AddItemToObject(cJSON_GetObjectItem(report, name), "val_with_offsets", with);
    }
    split_rows_free(&s);
    return rc;
}

int cmd_train_thumb_race(int argc, char **argv) {
    const char *pack_path = NULL, *out = NULL, *heads_in = NULL;
    int quiet = 0, threads = 0, no_offsets = 0;
    fu_heads_train_config cfg = fu_heads_train_defaults();
    arg_spec specs[] = {
        {"--pack", ARG_STRING, &pack_path, 0, 0, "the generator's face pack (faceup train faces, FFHQ framing)"},
        {"--no-offsets", ARG_FLAG, &no_offsets, 0, 0, "argmax of the classifiers (default: offsets fitted on dev for the best worst-class recall)"},
        {"--heads", ARG_STRING, &heads_in, 0, 0, "heads file whose other heads are kept (default " FU_HEADS_DEFAULT ")"},
        {"--out", ARG_STRING, &out, 0, 0, "heads file to write (.safetensors)"},
        {"--lr", ARG_FLOAT, &cfg.lr, 1e-7, 1, "Adam learning rate (default 1e-3)"},
        {"--weight-decay", ARG_FLOAT, &cfg.weight_decay, 0, 1, "weight decay (default 1e-4)"},
        {"--threads", ARG_INT, &threads, 0, 1024, "threads (default: FACEUP_THREADS or all cores)"},
        {"--quiet", ARG_FLAG, &quiet, 0, 0, "no progress on stderr"},
        {0},
    };
    int n = args_parse("train thumb-race", "--pack FILE --out FILE [--heads FILE]", specs, argc, argv, NULL, 0);
    if (n < 0) return n == -2 ? FU_OK : FU_E_INPUT;
    if (!pack_path || !out) { fprintf(stderr, "faceup train thumb-race: --pack and --out are required\n"); return FU_E_INPUT; }
    fu_set_threads(threads);
    char heads_buf[4096];
    fu_heads *h = fu_heads_load(heads_in ? heads_in : fu_shipped_path(FU_HEADS_DEFAULT, heads_buf, sizeof heads_buf));
    fu_heads *fresh = h ? fu_heads_new(1) : NULL;
    fu_faces *pack = fresh ? load_pack(pack_path) : NULL;
    int rc = pack ? FU_OK : fu_last_code();
    fu_race_data d = {0};
    if (rc == FU_OK) rc = fu_race_data_build(pack, 0, NULL, NULL, &d, NULL, NULL);
    cJSON *report = cJSON_CreateObject();
    progress bar;
    progress_start(&bar, "thumbnail race", quiet);
    float *b16 = NULL, *b8 = NULL;   /* where the fitted offsets go; none with --no-offsets */
    if (fresh && !no_offsets) b16 = fresh->thumb_logit_bias[0], b8 = fresh->thumb_logit_bias[1];
    if (rc == FU_OK) rc = thumb_one(&d, d.thumb16, 16, &h->thumb16, h->thumb_logit_bias[0], &fresh->thumb16, b16, &cfg, &bar, report);
    if (rc == FU_OK) rc = thumb_one(&d, d.thumb8, 8, &h->thumb8, h->thumb_logit_bias[1], &fresh->thumb8, b8, &cfg, &bar, report);
    progress_finish(&bar);
    if (rc == FU_OK) {
        fu_mlp keep16 = h->thumb16, keep8 = h->thumb8;   /* swap in the new ones for the save */
        h->thumb16 = fresh->thumb16, h->thumb8 = fresh->thumb8;
        fresh->thumb16 = keep16, fresh->thumb8 = keep8;
        memcpy(h->thumb_logit_bias, fresh->thumb_logit_bias, sizeof h->thumb_logit_bias);   /* zeros with --no-offsets */
        const char *meta[] = {"format", "faceup-heads-1", "race_classes", "White,Black,Asian,Indian,Others",
                              "data", "trained on UTKFace and CelebA: non-commercial research use only, as those data sets",
                              "thumb_race", no_offsets ? "thumb16/thumb8 retrained by faceup train thumb-race on the generator's pack"
                                                       : "thumb16/thumb8 retrained by faceup train thumb-race on the generator's pack, "
                                                         "with logit offsets for the best worst-class recall on its dev split"};
        rc = fu_heads_save(h, out, meta, 4);
    }
    if (rc == FU_OK) print_json(report);
    cJSON_Delete(report);
    fu_race_data_free(&d);
    fu_faces_free(pack);
    fu_heads_free(h);
    fu_heads_free(fresh);
    return finish("thumb-race", rc);
}
