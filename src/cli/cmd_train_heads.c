/* faceup train heads: the extractor's race and attribute heads and the thumbnail race
 * classifiers (face/heads.h), trained on dlib descriptors and FFHQ thumbnails of the shared
 * CelebA and UTKFace images (train/heads_data.h). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "args.h"
#include "commands.h"
#include "core/error.h"
#include "data/embed_cache.h"
#include "faceup.h"
#include "progress.h"
#include "search/face_guides.h"
#include "search/loss_string.h"
#include "train/heads_data.h"
#include "train/train_heads.h"

#define DATA_TERMS "trained on UTKFace and CelebA: non-commercial research use only, as those data sets"

static void on_epoch(void *ctx, int64_t epoch, int64_t max_epochs, const char *head) {
    char note[48];
    snprintf(note, sizeof note, "%s epoch %lld", head, (long long)epoch);
    progress_update(ctx, (long)epoch, (long)max_epochs, note);
}

static cJSON *race_json(const fu_race_score *s) {
    cJSON *o = cJSON_CreateObject(), *per = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "train_images", s->n_train);
    cJSON_AddNumberToObject(o, "val_images", s->n_val);
    cJSON_AddNumberToObject(o, "epochs", s->epochs);
    cJSON_AddNumberToObject(o, "best_epoch", s->best_epoch);
    cJSON_AddNumberToObject(o, "val_accuracy", s->accuracy);
    cJSON_AddNumberToObject(o, "val_balanced_accuracy", s->balanced);
    for (int c = 0; c < FU_RACE_CLASSES; c++) {
        cJSON *k = cJSON_CreateObject();
        cJSON_AddNumberToObject(k, "val_images", s->count[c]);
        cJSON_AddNumberToObject(k, "recall", s->count[c] ? (double)s->correct[c] / s->count[c] : 0);
        cJSON_AddItemToObject(per, fu_race_name(c), k);
    }
    cJSON_AddItemToObject(o, "per_class", per);
    return o;
}

/* The chip transforms the guides derive from the new frame (face_guides.h), for the record. */
static cJSON *theta_json(const fu_heads *h) {
    cJSON *o = cJSON_CreateObject();
    int sides[] = {64, 1024};
    for (int i = 0; i < 2; i++) {
        fu_face_guides fg;
        char name[16];
        if (fu_face_guides_init(&fg, NULL, h, sides[i]) != FU_OK) continue;
        cJSON *t = cJSON_CreateArray();
        for (int k = 0; k < 6; k++) cJSON_AddItemToArray(t, cJSON_CreateNumber(fg.theta[k]));
        snprintf(name, sizeof name, "%d", sides[i]);
        cJSON_AddItemToObject(o, name, t);
    }
    return o;
}

static cJSON *report_json(const fu_heads_data *d, const fu_heads_report *r, const fu_heads *h) {
    cJSON *o = cJSON_CreateObject(), *attr = cJSON_CreateObject(), *per = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "images", (double)d->n);
    cJSON_AddNumberToObject(o, "images_without_face", (double)d->n_no_face);
    cJSON_AddNumberToObject(o, "images_from_cache", (double)d->n_cached);
    cJSON_AddNumberToObject(o, "extract_seconds", d->seconds);
    cJSON_AddNumberToObject(o, "train_seconds", r->seconds);
    cJSON_AddNumberToObject(o, "frame_faces", r->n_frame);
    cJSON_AddNumberToObject(o, "descriptor_norm_mean", r->desc_norm_mean);
    cJSON_AddNumberToObject(o, "random_pair_angle_median", r->pair_angle_median);
    cJSON_AddItemToObject(o, "chip_theta", theta_json(h));
    cJSON_AddItemToObject(o, "race", race_json(&r->race));
    cJSON_AddItemToObject(o, "thumb16_race", race_json(&r->thumb16));
    cJSON_AddItemToObject(o, "thumb8_race", race_json(&r->thumb8));
    cJSON_AddNumberToObject(attr, "train_images", r->attr_n_train);
    cJSON_AddNumberToObject(attr, "val_images", r->attr_n_val);
    cJSON_AddNumberToObject(attr, "epochs", r->attr_epochs);
    cJSON_AddNumberToObject(attr, "best_epoch", r->attr_best_epoch);
    cJSON_AddNumberToObject(attr, "val_mean_accuracy", r->attr_mean);
    for (int a = 0; a < FU_ATTRS; a++) cJSON_AddNumberToObject(per, fu_celeba_attr_name(a), r->attr_accuracy[a]);
    cJSON_AddItemToObject(attr, "per_attribute", per);
    cJSON_AddItemToObject(o, "attributes", attr);
    return o;
}

static int train_and_save(const fu_heads_data *d, const char *out, int quiet, cJSON **report) {
    fu_heads_train_config cfg = fu_heads_train_defaults();
    fu_heads *h = fu_heads_new(cfg.seed);
    fu_heads_report r;
    progress bar;
    progress_start(&bar, "heads", quiet);
    int rc = h ? fu_heads_train(d, &cfg, h, &r, on_epoch, &bar) : fu_last_code();
    progress_finish(&bar);
    char race[32], attr[32];
    if (rc == FU_OK) {
        snprintf(race, sizeof race, "%.4f", r.race.accuracy);
        snprintf(attr, sizeof attr, "%.4f", r.attr_mean);
        const char *meta[] = {"format", "faceup-heads-1", "race_classes", "White,Black,Asian,Indian,Others",
                              "data", DATA_TERMS, "val_race_accuracy", race, "val_attr_mean_accuracy", attr};
        rc = fu_heads_save(h, out, meta, 5);
    }
    if (rc == FU_OK) *report = report_json(d, &r, h);
    fu_heads_free(h);
    return rc;
}

int cmd_train_heads(int argc, char **argv) {
    const char *data = NULL, *out = NULL, *cache = NULL;
    int quiet = 0, threads = 0;
    arg_spec specs[] = {
        {"--data", ARG_STRING, &data, 0, 0, "data folder with celeba/ and utkface/ (as ../shared/data)"},
        {"--out", ARG_STRING, &out, 0, 0, "heads file to write (.safetensors)"},
        {"--cache", ARG_STRING, &cache, 0, 0, "descriptor cache (default $FACEUP_CACHE/embeddings/heads.bin)"},
        {"--threads", ARG_INT, &threads, 0, 1024, "threads (default: FACEUP_THREADS or all cores)"},
        {"--quiet", ARG_FLAG, &quiet, 0, 0, "no progress on stderr"},
        {0},
    };
    int n = args_parse("train heads", "--data DIR --out FILE", specs, argc, argv, NULL, 0);
    if (n < 0) return n == -2 ? FU_OK : FU_E_INPUT;
    if (!data || !out) { fprintf(stderr, "faceup train heads: --data and --out are required\n"); return FU_E_INPUT; }
    fu_set_threads(threads);
    char cache_buf[4096];
    int rc = cache ? FU_OK : fu_ecache_default_path("heads", cache_buf, sizeof cache_buf);
    fu_heads_data d = {0};
    progress bar;
    progress_start(&bar, "descriptors", quiet);
    if (rc == FU_OK) rc = fu_heads_data_build(data, cache ? cache : cache_buf, &d, progress_on, &bar);
    progress_finish(&bar);
    if (rc == FU_OK && !quiet)
        fprintf(stderr, "faceup train heads: %lld images (%lld cached, %lld without a face) in %.1f s\n", (long long)d.n,
                (long long)d.n_cached, (long long)d.n_no_face, d.seconds);
    cJSON *report = NULL;
    if (rc == FU_OK) rc = train_and_save(&d, out, quiet, &report);
    if (rc == FU_OK) {
        char *text = cJSON_Print(report);
        if (text) printf("%s\n", text);
        free(text);
    }
    cJSON_Delete(report);
    if (rc != FU_OK) fprintf(stderr, "faceup train heads: %s\n", fu_last_error());
    fu_heads_data_free(&d);
    return rc == FU_OK ? FU_OK : (rc == FU_E_INTERNAL ? FU_E_INTERNAL : FU_E_INPUT);
}
