/* faceup train race-offsets: fits the race head's per-class logit offsets (train/race_offsets.h)
 * of a heads or extractor file on the val split of a fine-tune data file, reports val and test
 * recall per class against gear's anchors as JSON, and writes the file with the new offsets. */
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

/* Recall of one split with the old and the new offsets into o[name]. */
static int report_split(const fu_xdata *d, target *t, int split, const float old_bias[], cJSON *o, const char *name) {
    float *logits;
    int *labels;
    int64_t n;
    int rc = fu_race_split_logits(d, t->x, t->h, split, &logits, &labels, &n);
    if (rc != FU_OK) return rc;
    if (n == 0) {   /* no UTKFace face in this split: nothing to report */
        cJSON_AddNullToObject(o, name);
        free(logits);
        free(labels);
        return FU_OK;
    }
    fu_race_recall before, after;
    fu_race_recall_of(logits, labels, n, old_bias, fu_race_gear_anchor, &before);
    fu_race_recall_of(logits, labels, n, t->h->race_logit_bias, fu_race_gear_anchor, &after);
    cJSON *s = cJSON_CreateObject();
    cJSON_AddItemToObject(s, "before", recall_json(&before));
    cJSON_AddItemToObject(s, "after", recall_json(&after));
    cJSON_AddItemToObject(o, name, s);
    free(logits);
    free(labels);
    return FU_OK;
}

static int fit(const fu_xdata *d, target *t, const char *out) {
    float *logits, old_bias[FU_RACE_CLASSES];
    int *labels;
    int64_t n;
    memcpy(old_bias, t->h->race_logit_bias, sizeof old_bias);
    int rc = fu_race_split_logits(d, t->x, t->h, FU_XSPLIT_VAL, &logits, &labels, &n);
    if (rc == FU_OK) rc = fu_race_offsets_fit(logits, labels, n, fu_race_gear_anchor, t->h->race_logit_bias);
    free(logits);
    free(labels);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "out", out);
    cJSON_AddStringToObject(o, "kind", t->x ? "extractor" : "heads");
    cJSON_AddItemToObject(o, "anchor", anchor_json());
    cJSON_AddItemToObject(o, "offsets_before", cJSON_CreateFloatArray(old_bias, FU_RACE_CLASSES));
    cJSON_AddItemToObject(o, "offsets", cJSON_CreateFloatArray(t->h->race_logit_bias, FU_RACE_CLASSES));
    if (rc == FU_OK) rc = report_split(d, t, FU_XSPLIT_VAL, old_bias, o, "val");
    if (rc == FU_OK) rc = report_split(d, t, FU_XSPLIT_TEST, old_bias, o, "test");
    if (rc == FU_OK) rc = target_save(t, out);
    char *text = rc == FU_OK ? cJSON_Print(o) : NULL;
    if (text) printf("%s\n", text);
    free(text);
    cJSON_Delete(o);
    return rc;
}

int cmd_train_race_offsets(int argc, char **argv) {
    const char *data = NULL, *in = NULL, *out = NULL;
    int threads = 0;
    arg_spec specs[] = {
        {"--data", ARG_STRING, &data, 0, 0, "fine-tune data file (faceup train finetune-data): fitted on its val split"},
        {"--heads", ARG_STRING, &in, 0, 0, "heads or extractor file (default " FU_HEADS_DEFAULT ")"},
        {"--out", ARG_STRING, &out, 0, 0, "file to write: the input with the fitted race.logit_bias"},
        {"--threads", ARG_INT, &threads, 0, 1024, "threads (default: FACEUP_THREADS or all cores)"},
        {0},
    };
    const char *usage = "faceup train race-offsets --data FILE --out FILE [--heads FILE]\n"
                        "Fits per-class offsets of the race head's logits on the val split so that every class\n"
                        "beats gear's recall (White 94, Black 66, Asian 62, Indian 58, Others 44 %); reports val\n"
                        "and test recall before and after as JSON (the test split is never used for the fit).";
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
    if (rc == FU_OK) rc = fit(&d, &t, out);
    if (rc != FU_OK) fprintf(stderr, "faceup train race-offsets: %s\n", fu_last_error());
    fu_xdata_free(&d);
    target_close(&t);
    return exit_code(rc);
}
