/* faceup train race-offsets: fits the race head's per-class logit offsets (train/race_offsets.h)
 * of a heads or extractor file on the val split of a fine-tune data file (or, with --folds, on
 * out-of-fold logits of its train split, retraining the race head), reports val and test recall
 * per class against gear's anchors as JSON, and writes the file with the new offsets. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "args.h"
#include "commands.h"
#include "core/error.h"
#include "face/face_extractor.h"
#include "face/models.h"
#include "faceup.h"
#include "io/safetensors.h"
#include "progress.h"
#include "train/finetune.h"
#include "train/race_offsets.h"

#define MAX_META 8

static int exit_code(int rc) { return rc == FU_OK ? FU_OK : (rc == FU_E_INTERNAL ? FU_E_INTERNAL : FU_E_INPUT); }

/* The file being calibrated: an extractor (backbone + heads) or a heads file. */
typedef struct target {
    fu_face_extractor *x;
    fu_heads *h;             /* x->heads for an extractor */
    const char *meta[2 * MAX_META];
    int n_meta;
    fu_safetensors *st;      /* owns the metadata strings */
} target;

static int target_open(const char *path, target *t) {
    if (!(t->st = fu_st_open(path))) return fu_last_code();
    if (fu_st_find(t->st, "comparer")) {
        if (!(t->x = fu_face_extractor_load(path))) return fu_last_code();
        t->h = t->x->heads;
    } else if (!(t->h = fu_heads_load(path))) return fu_last_code();
    for (int k = 0; k < t->st->n_meta && t->n_meta < MAX_META; k++, t->n_meta++) {
        t->meta[2 * k] = t->st->meta[k].key;
        t->meta[2 * k + 1] = t->st->meta[k].value;
    }
    return FU_OK;
}

static int target_save(const target *t, const char *out) {
    if (t->x) return fu_face_extractor_save(t->x, out, FU_F16, NULL, 0, t->meta, t->n_meta);
    return fu_heads_save(t->h, out, t->meta, t->n_meta);
}

static void target_close(target *t) {
    if (t->x) fu_face_extractor_free(t->x);
    else fu_heads_free(t->h);
    fu_st_free(t->st);
}

static cJSON *recall_json(const fu_race_recall *r) {
    cJSON *o = cJSON_CreateObject();
    for (int c = 0; c < FU_RACE_CLASSES; c++) {
        cJSON *k = cJSON_CreateObject();
        cJSON_AddNumberToObject(k, "faces", r->count[c]);
        if (r->count[c]) {
            cJSON_AddNumberToObject(k, "recall", r->recall[c]);
            cJSON_AddNumberToObject(k, "minus_anchor", r->recall[c] - fu_race_gear_anchor[c]);
        } else cJSON_AddNullToObject(k, "recall");   /* no face of this class in the split */
        cJSON_AddItemToObject(o, fu_race_name(c), k);
    }
    cJSON_AddNumberToObject(o, "balanced", r->balanced);
    cJSON_AddNumberToObject(o, "worst_margin", r->worst_margin);
    cJSON_AddBoolToObject(o, "beats_every_anchor", r->worst_margin > 0);
    return o;
}

static cJSON *anchor_json(void) {
    cJSON *a = cJSON_CreateArray();
    for (int k = 0; k < FU_RACE_CLASSES; k++) cJSON_AddItemToArray(a, cJSON_CreateNumber(fu_race_gear_anchor[k]));
    return a;
}

/* One split's UTKFace descriptors (the target's backbone) and labels. */
typedef struct split_rows {
    float *e;
    int *y;
    int64_t n;
} split_rows;

static void split_rows_free(split_rows *s) {
    free(s->e);
    free(s->y);
}

/* The target's race logits (without offsets) of s's faces into *logits ([max(n, 1), 5], free it). */
static int race_logits(const target *t, const split_rows *s, float **logits) {
    *logits = malloc((size_t)(s->n ? s->n : 1) * FU_RACE_CLASSES * sizeof **logits);
    if (!*logits) return fu_fail(FU_E_INTERNAL, "out of memory");
    return s->n ? fu_mlp_rows(&t->h->race, s->e, s->n, *logits) : FU_OK;
}

/* Recall of the target's current race head and offsets on s; NULL for a split without faces. */
static cJSON *split_json(const target *t, const split_rows *s, int *rc) {
    if (*rc != FU_OK || !s->n) return cJSON_CreateNull();
    float *logits;
    fu_race_recall r;
    *rc = race_logits(t, s, &logits);
    if (*rc == FU_OK) fu_race_recall_of(logits, s->y, s->n, t->h->race_logit_bias, fu_race_gear_anchor, &r);
    free(logits);
    return *rc == FU_OK ? recall_json(&r) : cJSON_CreateNull();
}

/* The offsets of the target's head fitted on s's faces (the val split, without --folds). */
static int fit_on_split(target *t, const split_rows *s) {
    float *logits;
    int rc = race_logits(t, s, &logits);
    if (rc == FU_OK) rc = fu_race_offsets_fit(logits, s->y, s->n, fu_race_gear_anchor, t->h->race_logit_bias);
    free(logits);
    return rc;
}

static fu_mlp_shape race_shape(const fu_mlp *m) {
    return (fu_mlp_shape){"race", (int)m->w[0]->shape[1], (int)m->w[0]->shape[0], FU_RACE_CLASSES};
}

/* --folds: a fresh race head trained on all train faces (the heads' recipe: balanced sampling,
 * epoch chosen on val) replaces the target's, and the offsets are fitted on out-of-fold logits
 * of the train faces (race_offsets.h), thousands of faces instead of val's few hundred. */
static int refit_head_and_offsets(target *t, const split_rows *train, const split_rows *val, int folds, uint64_t seed, cJSON *o) {
    fu_mlp_shape shape = race_shape(&t->h->race);
    fu_heads_train_config cfg = fu_heads_train_defaults();
    cfg.seed = seed;
    fu_race_rows rows = {train->n, train->e, train->y}, select = {val->n, val->e, val->y};
    float *oof = malloc((size_t)(train->n ? train->n : 1) * FU_RACE_CLASSES * sizeof *oof);
    int rc = oof ? fu_race_oof_logits(&rows, &select, folds, &shape, &cfg, oof) : fu_fail(FU_E_INTERNAL, "out of memory");
    if (rc == FU_OK) rc = fu_race_offsets_fit(oof, train->y, train->n, fu_race_gear_anchor, t->h->race_logit_bias);
    fu_race_recall argmax, fitted;
    float zero[FU_RACE_CLASSES] = {0};
    if (rc == FU_OK) {
        fu_race_recall_of(oof, train->y, train->n, zero, fu_race_gear_anchor, &argmax);
        fu_race_recall_of(oof, train->y, train->n, t->h->race_logit_bias, fu_race_gear_anchor, &fitted);
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "on", "train, out of fold");
        cJSON_AddNumberToObject(f, "folds", folds);
        cJSON_AddItemToObject(f, "argmax", recall_json(&argmax));
        cJSON_AddItemToObject(f, "offsets", recall_json(&fitted));
        cJSON_AddItemToObject(o, "fit", f);
    }
    free(oof);
    fu_mlp fresh;
    fu_race_fit fit;
    if (rc == FU_OK) rc = fu_race_mlp_fresh(&shape, &rows, &select, &cfg, &fresh, &fit);
    if (rc == FU_OK) {
        fu_mlp_release(&t->h->race);
        t->h->race = fresh;
        cJSON_AddNumberToObject(o, "head_best_epoch", fit.select.best_epoch);
    }
    return rc;
}

/* The UTKFace rows of the splits the fit and the report need; an extractor's backbone describes
 * them (the longest part: a bar per split), a heads file reads the cached descriptors. */
static int describe_splits(const fu_xdata *d, target *t, int folds, int quiet, split_rows s[3]) {
    static const char *labels[3] = {"describe train", "describe val", "describe test"};
    int rc = FU_OK;
    for (int k = folds ? FU_XSPLIT_TRAIN : FU_XSPLIT_VAL; rc == FU_OK && k <= FU_XSPLIT_TEST; k++) {
        progress bar;
        progress_start(&bar, labels[k], quiet || !t->x);
        rc = fu_race_split_descriptors(d, t->x, k, &s[k].e, &s[k].y, &s[k].n, progress_on, &bar);
        progress_finish(&bar);
    }
    return rc;
}

static int fit(const fu_xdata *d, target *t, int folds, uint64_t seed, int quiet, const char *out) {
    split_rows s[3] = {0};   /* FU_XSPLIT_TRAIN, _VAL, _TEST */
    int rc = describe_splits(d, t, folds, quiet, s);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "out", out);
    cJSON_AddStringToObject(o, "kind", t->x ? "extractor" : "heads");
    cJSON_AddItemToObject(o, "anchor", anchor_json());
    cJSON_AddItemToObject(o, "offsets_before", cJSON_CreateFloatArray(t->h->race_logit_bias, FU_RACE_CLASSES));
    cJSON *before_val = split_json(t, &s[FU_XSPLIT_VAL], &rc), *before_test = split_json(t, &s[FU_XSPLIT_TEST], &rc);
    if (rc == FU_OK && folds) rc = refit_head_and_offsets(t, &s[FU_XSPLIT_TRAIN], &s[FU_XSPLIT_VAL], folds, seed, o);
    else if (rc == FU_OK) rc = fit_on_split(t, &s[FU_XSPLIT_VAL]);
    cJSON_AddItemToObject(o, "offsets", cJSON_CreateFloatArray(t->h->race_logit_bias, FU_RACE_CLASSES));
    cJSON_AddBoolToObject(o, "head_retrained", folds > 0);
    const char *names[2] = {"val", "test"};
    cJSON *before[2] = {before_val, before_test};
    for (int k = 0; k < 2; k++) {
        cJSON *p = cJSON_CreateObject();
        cJSON_AddItemToObject(p, "before", before[k]);
        cJSON_AddItemToObject(p, "after", split_json(t, &s[FU_XSPLIT_VAL + k], &rc));
        cJSON_AddItemToObject(o, names[k], p);
    }
    if (rc == FU_OK) rc = target_save(t, out);
    char *text = rc == FU_OK ? cJSON_Print(o) : NULL;
    if (text) printf("%s\n", text);
    free(text);
    cJSON_Delete(o);
    for (int k = 0; k < 3; k++) split_rows_free(&s[k]);
    return rc;
}

int cmd_train_race_offsets(int argc, char **argv) {
    const char *data = NULL, *in = NULL, *out = NULL;
    int threads = 0, folds = 0, seed = 1, quiet = 0;
    arg_spec specs[] = {
        {"--data", ARG_STRING, &data, 0, 0, "fine-tune data file (faceup train finetune-data): fitted on its val split (train with --folds)"},
        {"--heads", ARG_STRING, &in, 0, 0, "heads or extractor file (default " FU_HEADS_DEFAULT ")"},
        {"--out", ARG_STRING, &out, 0, 0, "file to write: the input with the fitted race.logit_bias"},
        {"--folds", ARG_INT, &folds, 2, 100, "retrain the race head on the train split and fit the offsets on its K-fold out-of-fold logits"},
        {"--seed", ARG_INT, &seed, 0, 1 << 30, "seed of the retrained heads (--folds; default 1)"},
        {"--threads", ARG_INT, &threads, 0, 1024, "threads (default: FACEUP_THREADS or all cores)"},
        {"--quiet", ARG_FLAG, &quiet, 0, 0, "no progress on stderr"},
        {0},
    };
    const char *usage = "faceup train race-offsets --data FILE --out FILE [--heads FILE] [--folds K [--seed S]]\n"
                        "Fits per-class offsets of the race head's logits so that every class beats gear's recall\n"
                        "(White 94, Black 66, Asian 62, Indian 58, Others 44 %): on the val split, or with --folds\n"
                        "on the train split's K-fold out-of-fold logits, the race head then retrained on all train\n"
                        "faces; reports val and test recall before and after as JSON (test is never used to fit).";
    int n = args_parse("train race-offsets", usage, specs, argc, argv, NULL, 0);
    if (n == -2) return FU_OK;
    if (n != 0 || !data || !out) {
        if (n == 0) fprintf(stderr, "faceup train race-offsets: --data and --out are required\n");
        return FU_E_INPUT;
    }
    fu_set_threads(threads);
    char shipped[4096];
    if (!in) in = fu_shipped_path(FU_HEADS_DEFAULT, shipped, sizeof shipped);
    target t = {0};
    fu_xdata d = {0};
    int rc = target_open(in, &t);
    if (rc == FU_OK) rc = fu_xdata_load(data, &d);
    if (rc == FU_OK) rc = fit(&d, &t, folds, (uint64_t)seed, quiet, out);
    if (rc != FU_OK) fprintf(stderr, "faceup train race-offsets: %s\n", fu_last_error());
    fu_xdata_free(&d);
    target_close(&t);
    return exit_code(rc);
}
