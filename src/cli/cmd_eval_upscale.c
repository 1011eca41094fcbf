/* faceup eval upscale: the paper's experiments on held-out faces (src/eval/upscale_eval.h says
 * which faces, methods and judges). Everything is loaded and checked before OUT is touched, so
 * bad input exits 2 with nothing written.
 *
 * OUT holds, per face (folder faces/ID): hr.png (the 64x64 original in the generator's frame),
 * ref.png (LFW: the reference photo in that frame), thumbF.png, face.json (usable or why not, the
 * reference descriptor, the judges on the original); per result xF/METHOD/ID.png and ID.json;
 * then summary.json and report.html. face.json and ID.json are written last (atomically), so a
 * killed run redoes at most the work in flight and a rerun reads the rest (--overwrite redoes
 * everything). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include "args.h"
#include "json_out.h"
#include "commands.h"
#include "core/error.h"
#include "core/ops.h"
#include "data/embed_cache.h"
#include "eval/upscale_eval.h"
#include "face/analyze.h"
#include "face/face_extractor.h"
#include "face/face_pipeline.h"
#include "face/heads.h"
#include "face/models.h"
#include "face/pipeline.h"
#include "face/race_judge.h"
#include "faceup.h"
#include "gen/generator.h"
#include "io/fileutil.h"
#include "io/image.h"
#include "progress.h"
#include "upscale_face.h"
#include "search/face_guides.h"
#include "search/search.h"
#include "data/faces.h"

#define DEFAULT_GENERATOR "models/faceup-vae64.safetensors"
#define FACERES_DIM 1024
#define JSON_MAX (64 << 20)
#define DIR_CAP (FU_EU_PATH + 64)     /* OUT/faces/ID; --out is at most 512 characters */
#define FILE_CAP (DIR_CAP + 64)

typedef struct options {
    const char *data, *out, *methods, *factors, *generator, *race_judge, *race_judge_model;
    int lfw_pairs, utk_per_class, celeba, steps, seeds, threads, json, quiet, overwrite, sheet_faces;
    int method_mask, n_factors, judge;
    float face_jitter;
    fu_eu_factor factor[FU_EU_MAX_FACTORS];
    char generator_path[FU_EU_PATH], data_buf[FU_EU_PATH], judge_path[FU_EU_PATH];
    guide_flags guide;
} options;

/* Every network of the run: the generator and the search's guides, the framing of the
 * generator's training faces, and the three judges. */
typedef struct nets {
    fu_generator *gen;
    fu_face_pipeline pipe;           /* landmarks and face-api's descriptors (face.json) */
    upscale_guides g;                /* the search's face terms, as upscale's */
    fu_faces_framer *framer;
    fu_face_net *faceres, *gear, *emotion;
    fu_race_judge *race_judge;       /* faceres race judge; NULL with --race-judge gear and no file */
    char race_judge_key[33];         /* its file's content key, kept in each record it judged */
    int judge;                       /* FU_EU_JUDGE_*: the one the tables use */
} nets;

/* A selected face: the record, its reference descriptor and the original's judges. */
typedef struct face {
    fu_eu_face f;
    float reference[FU_DLIB_RESNET_DIM];        /* by face-api's net, as face.json keeps it */
    float guide_reference[FU_DLIB_RESNET_DIM];  /* by the guides' backbone, for the identity goal */
    float faceres[FACERES_DIM];      /* of the original, for the judged cosine */
    fu_eu_judged judged;
    double theta[6];                 /* frame pixel -> photo pixel */
    fu_tensor *hr;
} face;

typedef struct step_ctx {
    progress *bar;
    long done_before, total;
    const char *label;
} step_ctx;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int make_dir(const char *path) {
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return FU_OK;
    if (mkdir(path, 0777) != 0) return fu_fail(FU_E_INPUT, "%s: cannot create the folder", path);
    return FU_OK;
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* Content key of a file as 32 hex digits. */
static int content_key(const char *path, char hex[33]) {
    fu_ecache_key k;
    int rc = fu_ecache_key_file(path, &k);
    if (rc == FU_OK) snprintf(hex, 33, "%016llx%016llx", (unsigned long long)k.h[0], (unsigned long long)k.h[1]);
    return rc;
}

/* ---------------------------------------------------------------- setup */

static int check_factors(const options *o, const fu_generator *gen) {
    for (int k = 0; k < o->n_factors; k++) {
        int f = o->factor[k].factor, side = gen->resolution / f, got;
        if (gen->resolution % f || side < 2)
            return fu_fail(FU_E_INPUT, "--factors: %d does not divide the generator's %dx%d output into a thumbnail", f, gen->resolution, gen->resolution);
        fu_tensor *dummy = fu_tensor_newv(4, (int64_t)1, (int64_t)3, (int64_t)side, (int64_t)side);
        int rc = dummy ? fu_search_check_thumbnail(gen, dummy, "--factors", &got) : FU_E_INTERNAL;
        fu_tensor_free(dummy);
        if (rc != FU_OK) return rc;
    }
    return FU_OK;
}

/* The faceres race judge: needed for --race-judge faceres; with gear, loaded when present so the
 * records carry both judges. */
static int open_race_judge(options *o, nets *n) {
    const char *path = o->race_judge_model ? o->race_judge_model : fu_shipped_path(FU_RACE_JUDGE_DEFAULT, o->judge_path, sizeof o->judge_path);
    if (o->race_judge_model) snprintf(o->judge_path, sizeof o->judge_path, "%s", o->race_judge_model);
    n->judge = o->judge;
    if (o->judge == FU_EU_JUDGE_GEAR && !o->race_judge_model && !file_exists(path)) return FU_OK;
    if (!(n->race_judge = fu_race_judge_load(path))) return fu_last_code();
    return content_key(path, n->race_judge_key);
}

static int open_nets(options *o, nets *n) {
    memset(n, 0, sizeof *n);
    const char *gen_path = o->generator ? o->generator : fu_shipped_path(DEFAULT_GENERATOR, o->generator_path, sizeof o->generator_path);
    if (o->generator) snprintf(o->generator_path, sizeof o->generator_path, "%s", o->generator);
    if (!file_exists(gen_path)) return fu_fail(FU_E_INPUT, "%s: generator not found (pass --generator FILE)", gen_path);
    int rc = fu_generator_open(gen_path, NULL, &n->gen);
    if (rc == FU_OK) rc = check_factors(o, n->gen);
    if (rc == FU_OK) rc = fu_face_pipeline_open(&n->pipe);
    if (rc == FU_OK) rc = upscale_guides_open(&n->g, &o->guide, n->gen->resolution, n->pipe.net);
    if (rc == FU_OK) rc = fu_face_guides_set_jitter(&n->g.fg, o->face_jitter);
    if (rc == FU_OK && !(n->framer = fu_faces_framer_open(FU_FACES_FRAME_FFHQ))) rc = fu_last_code();
    if (rc == FU_OK && !(n->faceres = fu_face_net_load(FU_NET_FACERES))) rc = fu_last_code();
    if (rc == FU_OK && !(n->gear = fu_face_net_load(FU_NET_GEAR))) rc = fu_last_code();
    if (rc == FU_OK && !(n->emotion = fu_face_net_load(FU_NET_EMOTION))) rc = fu_last_code();
    rc = rc == FU_OK ? open_race_judge(o, n) : rc;
    if (rc == FU_OK && (fu_face_net_out_dim(n->faceres) != FACERES_DIM || fu_face_net_out_dim(n->gear) != FU_GEAR_DIM ||
                        fu_face_net_out_dim(n->emotion) != FU_EMOTION_DIM))
        rc = fu_fail(FU_E_INPUT, "the judges' outputs are not faceres %d, gear %d, emotion %d floats (other human-models files?)",
                     FACERES_DIM, FU_GEAR_DIM, FU_EMOTION_DIM);
    return rc;
}

static void close_nets(nets *n) {
    fu_generator_free(n->gen);
    upscale_guides_close(&n->g);
    fu_face_pipeline_close(&n->pipe);
    fu_faces_framer_free(n->framer);
    fu_face_net_free(n->faceres);
    fu_face_net_free(n->gear);
    fu_face_net_free(n->emotion);
    fu_race_judge_free(n->race_judge);
}

/* ---------------------------------------------------------------- judges */

/* The region of the frame a judge sees, as fractions {left, top, right, bottom} of the image. */
static const float WHOLE_FRAME[4] = {0, 0, 1, 1};
static int run_judge(fu_face_net *net, fu_tensor *img, float *out) {
    double theta[1][6];
    fu_judge_box_theta(img->shape, fu_face_net_kind_of(net) == FU_NET_GEAR ? fu_gear_utkface_box : WHOLE_FRAME, fu_face_net_input_size(net), theta[0]);
    return fu_face_net_run(net, &img, (const double (*)[6])theta, 1, out);
}

static float cosine(const float *a, const float *b, int n) {
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < n; i++) ab += (double)a[i] * b[i], aa += (double)a[i] * a[i], bb += (double)b[i] * b[i];
    return aa > 0 && bb > 0 ? (float)(ab / sqrt(aa * bb)) : 0.0f;
}

/* The faceres race judge on a faceres descriptor (race_of = -1 without the judge). */
static int judge_race_faceres(const nets *n, const float *faceres, fu_eu_judged *j) {
    j->race_of[FU_EU_JUDGE_FACERES] = -1;
    j->faceres_judge[0] = 0;
    if (!n->race_judge) return FU_OK;
    memcpy(j->faceres_judge, n->race_judge_key, sizeof j->faceres_judge);
    j->race_of[FU_EU_JUDGE_FACERES] = fu_race_judge_classify(n->race_judge, faceres, j->race_probs[FU_EU_JUDGE_FACERES]);
    return j->race_of[FU_EU_JUDGE_FACERES] < 0 ? fu_last_code() : FU_OK;
}

/* The judges on img; cosine against original (NULL: img is the original, whose descriptor goes
 * to desc). */
static int judge(const nets *n, fu_tensor *img, const float *original, float *desc, fu_eu_judged *j) {
    float gear[FU_GEAR_DIM], emotion[FU_EMOTION_DIM], own[FACERES_DIM];
    float *d = desc ? desc : own;
    int rc = run_judge(n->faceres, img, d);
    if (rc == FU_OK) rc = run_judge(n->gear, img, gear);
    if (rc == FU_OK) rc = run_judge(n->emotion, img, emotion);
    if (rc == FU_OK) rc = judge_race_faceres(n, d, j);
    if (rc != FU_OK) return rc;
    fu_face_attributes a;
    fu_face_attributes_read(gear, emotion, &a);
    memcpy(j->race_probs[FU_EU_JUDGE_GEAR], a.race, sizeof j->race_probs[FU_EU_JUDGE_GEAR]);
    j->race_of[FU_EU_JUDGE_GEAR] = a.race_best;
    fu_eu_use_judge(j, n->judge);
    j->p_happy = a.smiling;
    j->cosine = original ? cosine(d, original, FACERES_DIM) : 1.0f;
    return FU_OK;
}

/* ---------------------------------------------------------------- faces */

static int floats_from(const cJSON *a, float *v, int n) {
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != n) return 0;
    for (int i = 0; i < n; i++) {
        const cJSON *x = cJSON_GetArrayItem(a, i);
        if (!cJSON_IsNumber(x)) return 0;
        v[i] = (float)x->valuedouble;
    }
    return 1;
}

static int write_json(const char *path, const cJSON *o) {
    char *text = cJSON_Print(o);
    if (!text) return fu_fail(FU_E_INTERNAL, "out of memory");
    int rc = fu_write_file_atomic(path, text, strlen(text));
    free(text);
    return rc;
}

static cJSON *read_json(const char *path) {
    unsigned char *data;
    size_t size;
    if (fu_read_file(path, JSON_MAX, &data, &size) != FU_OK) return NULL;
    cJSON *o = cJSON_ParseWithLength((const char *)data, size);
    free(data);
    if (!o) fu_fail(FU_E_INPUT, "%s: not valid JSON (delete it or pass --overwrite)", path);
    return o;
}

/* Frames a photo into the generator's 64x64 frame, saves it as a PNG and returns the PNG as
 * read back (what every later step sees). FU_E_NO_SOLUTION when no usable face is found. */
static int frame_photo(const nets *n, const char *photo, int source, const char *png, fu_tensor **out, double theta[6]) {
    *out = NULL;
    fu_tensor *img = fu_image_load(photo), *framed = NULL;
    int R = n->gen->resolution;
    int rc = img ? FU_OK : fu_last_code();
    if (rc == FU_OK && !(framed = fu_tensor_newv(4, (int64_t)1, (int64_t)3, (int64_t)R, (int64_t)R))) rc = FU_E_INTERNAL;
    if (rc == FU_OK) rc = fu_faces_frame(n->framer, img, source, framed, theta);
    if (rc == FU_OK) rc = fu_image_save_png(png, framed);
    if (rc == FU_OK && !(*out = fu_image_load(png))) rc = fu_last_code();
    fu_tensor_free(img);
    fu_tensor_free(framed);
    return rc;
}

static const int set_source[FU_EU_N_SETS] = {FU_FACES_LFW, FU_FACES_UTKFACE, FU_FACES_CELEBA};

/* Prepares a candidate from scratch: *why is set (and FU_OK returned) when it has no usable face. */
static int prepare_face(const nets *n, const char *dir, face *fc, char *why, size_t why_n) {
    char png[FILE_CAP];
    why[0] = 0;
    snprintf(png, sizeof png, "%s/hr.png", dir);
    int rc = frame_photo(n, fc->f.photo, set_source[fc->f.set], png, &fc->hr, fc->theta);
    if (rc == FU_E_NO_SOLUTION || rc == FU_E_INPUT) {
        snprintf(why, why_n, "%s", rc == FU_E_NO_SOLUTION ? "no usable face in the photo" : fu_last_error());
        return FU_OK;
    }
    if (rc == FU_OK && fc->f.reference[0]) {
        fu_tensor *ref = NULL;
        snprintf(png, sizeof png, "%s/ref.png", dir);
        double ref_theta[6];
        rc = frame_photo(n, fc->f.reference, FU_FACES_LFW, png, &ref, ref_theta);
        fu_tensor_free(ref);
        if (rc == FU_OK) rc = fu_face_pipeline_embed_file(&n->pipe, fc->f.reference, fc->reference);
        if (rc == FU_E_NO_SOLUTION || rc == FU_E_INPUT) {
            snprintf(why, why_n, "reference %.300s: %.180s", fc->f.reference, rc == FU_E_NO_SOLUTION ? "no usable face" : fu_last_error());
            return FU_OK;
        }
    }
    return rc == FU_OK ? judge(n, fc->hr, NULL, fc->faceres, &fc->judged) : rc;
}

static cJSON *face_json(const face *fc, const char *why) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", fc->f.id);
    cJSON_AddStringToObject(o, "photo", fc->f.photo);
    if (fc->f.reference[0]) cJSON_AddStringToObject(o, "reference", fc->f.reference);
    if (why[0]) {
        cJSON_AddStringToObject(o, "skipped", why);
        return o;
    }
    if (fc->f.reference[0]) cJSON_AddItemToObject(o, "reference_descriptor", cJSON_CreateFloatArray(fc->reference, FU_DLIB_RESNET_DIM));
    cJSON_AddItemToObject(o, "frame_theta", cJSON_CreateDoubleArray(fc->theta, 6));
    cJSON_AddItemToObject(o, "faceres", cJSON_CreateFloatArray(fc->faceres, FACERES_DIM));
    cJSON_AddItemToObject(o, "gear_race_probabilities", cJSON_CreateFloatArray(fc->judged.race_probs[FU_EU_JUDGE_GEAR], FU_EU_N_RACES));
    cJSON_AddNumberToObject(o, "emotion_p_happy", fc->judged.p_happy);
    return o;
}

/* Reads a finished face.json back (and hr.png for a usable face). */
static int load_face(const nets *n, const char *dir, const char *path, face *fc, char *why, size_t why_n) {
    cJSON *o = read_json(path);
    if (!o) return fu_last_code();
    const cJSON *skipped = cJSON_GetObjectItem(o, "skipped"), *happy = cJSON_GetObjectItem(o, "emotion_p_happy");
    int rc = FU_OK;
    why[0] = 0;
    if (cJSON_IsString(skipped)) snprintf(why, why_n, "%s", skipped->valuestring);
    else if (!floats_from(cJSON_GetObjectItem(o, "faceres"), fc->faceres, FACERES_DIM) || !cJSON_IsNumber(happy) ||
             !floats_from(cJSON_GetObjectItem(o, "gear_race_probabilities"), fc->judged.race_probs[FU_EU_JUDGE_GEAR], FU_EU_N_RACES) ||
             (fc->f.reference[0] && !floats_from(cJSON_GetObjectItem(o, "reference_descriptor"), fc->reference, FU_DLIB_RESNET_DIM)))
        rc = fu_fail(FU_E_INPUT, "%s: not a face record of faceup eval upscale (delete it or pass --overwrite)", path);
    else {
        char png[FILE_CAP];
        snprintf(png, sizeof png, "%s/hr.png", dir);
        fc->judged.p_happy = (float)happy->valuedouble;
        fc->judged.cosine = 1.0f;
        const float *gear = fc->judged.race_probs[FU_EU_JUDGE_GEAR];
        int *best = &fc->judged.race_of[FU_EU_JUDGE_GEAR];
        *best = 0;
        for (int k = 1; k < FU_EU_N_RACES; k++)
            if (gear[k] > gear[*best]) *best = k;
        /* the faceres judge is rerun on the stored descriptor: originals always match the judge file */
        rc = judge_race_faceres(n, fc->faceres, &fc->judged);
        fu_eu_use_judge(&fc->judged, n->judge);
        if (rc == FU_OK && !(fc->hr = fu_image_load(png))) rc = fu_last_code();
    }
    cJSON_Delete(o);
    return rc;
}

/* The identity goal's reference descriptor by the guides' backbone (needed only with that
 * method). face.json keeps face-api's; the extractor's is computed afresh each run, as it
 * depends on the extractor file. */
static int guide_reference(const nets *n, face *fc) {
    if (!fc->f.reference[0]) return FU_OK;
    if (!n->g.extractor) {
        memcpy(fc->guide_reference, fc->reference, sizeof fc->reference);
        return FU_OK;
    }
    fu_face_pipeline with_net = n->pipe;
    with_net.net = n->g.extractor->net;
    return fu_face_pipeline_embed_file(&with_net, fc->f.reference, fc->guide_reference);
}

/* One candidate: from its face.json when finished, else prepared and recorded. *usable = 0
 * when it has no usable face. */
static int face_for(const options *o, const nets *n, face *fc, int *usable, cJSON *skipped) {
    char dir[DIR_CAP], path[FILE_CAP], why[512];
    snprintf(dir, sizeof dir, "%s/faces/%s", o->out, fc->f.id);
    snprintf(path, sizeof path, "%s/face.json", dir);
    int rc = make_dir(dir);
    if (rc == FU_OK && !o->overwrite && file_exists(path)) rc = load_face(n, dir, path, fc, why, sizeof why);
    else if (rc == FU_OK) {
        rc = prepare_face(n, dir, fc, why, sizeof why);
        cJSON *rec = rc == FU_OK ? face_json(fc, why) : NULL;
        if (rec) rc = write_json(path, rec);
        cJSON_Delete(rec);
    }
    if (rc == FU_OK && !why[0] && (o->method_mask >> FU_EU_IDENTITY & 1)) rc = guide_reference(n, fc);
    *usable = rc == FU_OK && !why[0];
    if (rc == FU_OK && why[0]) {
        cJSON *s = cJSON_CreateObject();
        cJSON_AddStringToObject(s, "id", fc->f.id);
        cJSON_AddStringToObject(s, "photo", fc->f.photo);
        cJSON_AddStringToObject(s, "reason", why);
        cJSON_AddItemToArray(skipped, s);
    }
    return rc;
}

/* Takes candidates in order until every set (UTKFace: every class) has its count. */
static int select_faces(const options *o, const nets *n, const fu_eu_face *cand, int n_cand, face **out, int *n_out, cJSON *skipped) {
    int want[FU_EU_N_SETS] = {o->lfw_pairs, o->utk_per_class, o->celeba}, taken[FU_EU_N_SETS][FU_EU_N_RACES] = {{0}};
    int total = o->lfw_pairs + FU_EU_N_RACES * o->utk_per_class + o->celeba, rc = FU_OK;
    face *faces = calloc((size_t)(total ? total : 1), sizeof *faces);
    if (!faces) return fu_fail(FU_E_INTERNAL, "out of memory");
    progress bar;
    progress_start(&bar, "eval upscale: faces", o->quiet);
    *n_out = 0;
    for (int c = 0; rc == FU_OK && c < n_cand && *n_out < total; c++) {
        int set = cand[c].set, *t = &taken[set][set == FU_EU_UTK ? cand[c].race : 0];
        if (*t >= want[set]) continue;
        face *fc = &faces[*n_out];
        fc->f = cand[c];
        int usable = 0;
        rc = face_for(o, n, fc, &usable, skipped);
        if (rc != FU_OK || !usable) { fu_tensor_free(fc->hr); memset(fc, 0, sizeof *fc); continue; }
        fc->f.rank = (*t)++;
        (*n_out)++;
        progress_update(&bar, *n_out, total, fc->f.id);
    }
    progress_finish(&bar);
    *out = faces;
    return rc;
}

/* ---------------------------------------------------------------- methods */

static int thumbnail(const options *o, const face *fc, int factor, fu_tensor **thumb) {
    char path[FU_EU_PATH + 96];
    snprintf(path, sizeof path, "%s/faces/%s/thumb%d.png", o->out, fc->f.id, factor);
    if (o->overwrite || !file_exists(path)) {
        fu_graph *g = fu_graph_new();
        fu_tensor *t = g ? fu_bicubic_downsample(g, fc->hr, factor) : NULL;
        int rc = t ? fu_image_save_png(path, t) : fu_last_code() ? fu_last_code() : FU_E_INTERNAL;
        fu_graph_free(g);
        if (rc != FU_OK) return rc;
    }
    return (*thumb = fu_image_load(path)) ? FU_OK : fu_last_code();
}

static void on_step(void *ctx, const fu_search_step *s) {
    step_ctx *c = ctx;
    char note[128];
    snprintf(note, sizeof note, "%s L2 %.5f", c->label, (double)s->l2);
    progress_update(c->bar, c->done_before + (long)s->seed_index * s->steps + s->step + 1, c->total, note);
}

/* The loss of a search method; RACE_IS_k aims at the thumbnail race head's class. */
static int method_config(const options *o, const nets *n, int m, const fu_tensor *thumb, fu_search_config *cfg, int *target_race) {
    *cfg = fu_search_defaults();
    cfg->steps = o->steps;
    cfg->n_seeds = o->seeds;
    *target_race = -1;
    int rc = fu_loss_parse("100*L2+0.05*GEOCROSS", &cfg->loss), smiling = fu_celeba_attr_index("Smiling", 7);
    if (rc == FU_OK && m == FU_EU_IDENTITY)
        rc = fu_loss_add(&cfg->loss, (fu_loss_term){.kind = FU_TERM_IDENTITY_SCORE, .weight = 5});
    if (rc == FU_OK && m == FU_EU_RACE) {
        float probs[FU_RACE_CLASSES];
        *target_race = fu_heads_thumb_race(n->g.fg.heads, thumb, probs);
        rc = *target_race < 0 ? fu_last_code() : fu_loss_add(&cfg->loss, (fu_loss_term){.kind = FU_TERM_RACE, .index = *target_race, .weight = 1});
    }
    if (rc == FU_OK && (m == FU_EU_SMILING0 || m == FU_EU_SMILING1))
        rc = fu_loss_add(&cfg->loss, (fu_loss_term){.kind = FU_TERM_ATTR, .index = smiling, .value = m == FU_EU_SMILING1, .weight = 1});
    return rc;
}

/* Best seed: accepted ones first, then the lowest loss of the last wave. */
static int best_seed(const fu_search_result *r, int n) {
    int best = 0;
    for (int k = 1; k < n; k++) {
        int ok_k = r[k].status == FU_OK, ok_b = r[best].status == FU_OK;
        if (ok_k > ok_b || (ok_k == ok_b && r[k].wave[0].loss < r[best].wave[0].loss)) best = k;
    }
    return best;
}

/* Runs the search for one method and saves the chosen image; *met = the search accepted it. */
static int search(const options *o, nets *n, int m, const face *fc, const fu_tensor *thumb, const char *png, step_ctx *sc,
                  int *met, int *target_race, double *seconds) {
    fu_search_config cfg;
    int rc = method_config(o, n, m, thumb, &cfg, target_race);
    if (m == FU_EU_IDENTITY) fu_face_guides_set_reference(&n->g.fg, fc->guide_reference);
    fu_search_guides guides = fu_face_guides_bind(&n->g.fg);
    cfg.guides = &guides;
    cfg.on_step = on_step;
    cfg.ctx = sc;
    if (rc == FU_OK) rc = fu_search_check_guides(&cfg.loss, cfg.guides);
    fu_search_result *r = calloc((size_t)o->seeds, sizeof *r);
    if (rc == FU_OK && !r) rc = fu_fail(FU_E_INTERNAL, "out of memory");
    double t0 = now();
    if (rc == FU_OK) rc = fu_search_run(n->gen, thumb, &cfg, r);
    *seconds = now() - t0;
    if (rc == FU_OK) {
        int best = best_seed(r, o->seeds);
        *met = r[best].status == FU_OK;
        rc = fu_image_save_png(png, r[best].image);
    }
    if (r) fu_search_results_free(r, o->seeds);
    free(r);
    return rc;
}

static int save_bicubic(const nets *n, const fu_tensor *thumb, const char *png) {
    fu_graph *g = fu_graph_new();
    fu_tensor *x = g ? fu_graph_tensor(g, 4, thumb->shape) : NULL;
    if (x) memcpy(x->data, thumb->data, (size_t)thumb->numel * sizeof(float));
    fu_tensor *up = x ? fu_resize_bicubic(g, x, n->gen->resolution, n->gen->resolution) : NULL;
    int rc = up ? fu_image_save_png(png, up) : fu_last_code() ? fu_last_code() : FU_E_INTERNAL;
    fu_graph_free(g);
    return rc;
}

/* MSE between the bicubic downscale of img and the thumbnail. */
static int downscale_l2(fu_tensor *img, const fu_tensor *thumb, int factor, float *l2) {
    fu_graph *g = fu_graph_new();
    fu_tensor *d = g ? fu_bicubic_downsample(g, img, factor) : NULL;
    double s = 0;
    for (int64_t i = 0; d && i < d->numel; i++) s += (double)(d->data[i] - thumb->data[i]) * (d->data[i] - thumb->data[i]);
    if (d) *l2 = (float)(s / (double)d->numel);
    fu_graph_free(g);
    return d ? FU_OK : fu_last_code() ? fu_last_code() : FU_E_INTERNAL;
}

/* Judges a saved result again (the search's fields kept) and rewrites its record. */
static int rejudge(const nets *n, const face *fc, const char *png, const char *js, fu_eu_result *res) {
    fu_tensor *img = fu_image_load(png);
    int rc = img ? judge(n, img, fc->faceres, NULL, &res->judged) : fu_last_code();
    cJSON *rec = rc == FU_OK ? fu_eu_result_json(res) : NULL;
    if (rec) rc = write_json(js, rec);
    cJSON_Delete(rec);
    fu_tensor_free(img);
    return rc;
}

/* One (face, factor, method): run, save, judge, record; or read the record of an earlier run. */
static int result_for(const options *o, nets *n, int k, int m, const face *fc, step_ctx *sc, fu_eu_result *res) {
    char base[FU_EU_PATH + 128], png[FU_EU_PATH + 160], js[FU_EU_PATH + 160];
    int factor = o->factor[k].factor;
    snprintf(base, sizeof base, "%s/x%d/%s/%s", o->out, factor, fu_eu_method_name(m), fc->f.id);
    snprintf(png, sizeof png, "%s.png", base);
    snprintf(js, sizeof js, "%s.json", base);
    if (!o->overwrite && file_exists(js)) {
        cJSON *rec = read_json(js);
        int rc = rec ? fu_eu_result_from_json(rec, res, js) : fu_last_code();
        cJSON_Delete(rec);
        int judged_here = res->judged.race_of[FU_EU_JUDGE_FACERES] >= 0 && !strcmp(res->judged.faceres_judge, n->race_judge_key);
        if (rc != FU_OK || judged_here || !n->race_judge) {
            fu_eu_use_judge(&res->judged, n->judge);
            return rc;
        }
        return rejudge(n, fc, png, js, res);   /* judged by another race judge file, or before there was one */
    }
    memset(res, 0, sizeof *res);
    res->target_race = -1;
    fu_tensor *thumb = NULL, *img = NULL;
    int rc = thumbnail(o, fc, factor, &thumb);
    if (rc == FU_OK && m == FU_EU_BICUBIC) rc = save_bicubic(n, thumb, png);
    else if (rc == FU_OK) rc = search(o, n, m, fc, thumb, png, sc, &res->met_eps, &res->target_race, &res->seconds);
    if (rc == FU_OK && !(img = fu_image_load(png))) rc = fu_last_code();
    if (rc == FU_OK) rc = downscale_l2(img, thumb, factor, &res->l2);
    if (rc == FU_OK && m == FU_EU_BICUBIC) res->met_eps = res->l2 <= fu_search_defaults().eps;
    if (rc == FU_OK) rc = judge(n, img, fc->faceres, NULL, &res->judged);
    cJSON *rec = rc == FU_OK ? fu_eu_result_json(res) : NULL;
    if (rec) rc = write_json(js, rec);
    cJSON_Delete(rec);
    res->done = rc == FU_OK;
    fu_tensor_free(thumb);
    fu_tensor_free(img);
    return rc;
}

static int applies(int m, const face *fc) { return m != FU_EU_IDENTITY || fc->f.reference[0]; }

static int in_factor(const face *fc, const fu_eu_factor *f) { return !f->limit || fc->f.rank < f->limit; }

/* Run order: the faces by rank, all sets and classes side by side (rank 0 of each, then rank 1,
 * ...), so a run stopped early has results for every set and class. */
static const face *order_faces;
static int by_rank(const void *a, const void *b) {
    const fu_eu_face *x = &order_faces[*(const int *)a].f, *y = &order_faces[*(const int *)b].f;
    if (x->rank != y->rank) return x->rank - y->rank;
    return *(const int *)a - *(const int *)b;
}

static int run_all(const options *o, nets *n, const face *faces, int n_faces, fu_eu_result *results) {
    char path[FU_EU_PATH + 160];
    long total = 0, done = 0;
    for (int k = 0; k < o->n_factors; k++)                /* work left, in search steps */
        for (int m = 0; m < FU_EU_N_METHODS; m++)
            for (int i = 0; (o->method_mask >> m & 1) && i < n_faces; i++) {
                snprintf(path, sizeof path, "%s/x%d/%s/%s.json", o->out, o->factor[k].factor, fu_eu_method_name(m), faces[i].f.id);
                if (applies(m, &faces[i]) && in_factor(&faces[i], &o->factor[k]) && (o->overwrite || !file_exists(path)))
                    total += m == FU_EU_BICUBIC ? 1 : (long)o->steps * o->seeds;
            }
    int *order = malloc((size_t)(n_faces ? n_faces : 1) * sizeof *order);
    if (!order) return fu_fail(FU_E_INTERNAL, "out of memory");
    for (int i = 0; i < n_faces; i++) order[i] = i;
    order_faces = faces;
    qsort(order, (size_t)n_faces, sizeof *order, by_rank);
    progress bar;
    progress_start(&bar, "eval upscale", o->quiet);
    int rc = FU_OK;
    for (int at = 0; rc == FU_OK && at < n_faces; at++) {
        const face *fc = &faces[order[at]];
        for (int k = 0; rc == FU_OK && k < o->n_factors; k++)
            for (int m = 0; rc == FU_OK && m < FU_EU_N_METHODS; m++) {
                if (!(o->method_mask >> m & 1) || !applies(m, fc) || !in_factor(fc, &o->factor[k])) continue;
                char label[96];
                snprintf(label, sizeof label, "%s x%d %s", fc->f.id, o->factor[k].factor, fu_eu_method_name(m));
                step_ctx sc = {&bar, done, total, label};
                snprintf(path, sizeof path, "%s/x%d/%s/%s.json", o->out, o->factor[k].factor, fu_eu_method_name(m), fc->f.id);
                int fresh = o->overwrite || !file_exists(path);
                rc = result_for(o, n, k, m, fc, &sc, &results[((size_t)k * FU_EU_N_METHODS + m) * n_faces + order[at]]);
                if (fresh) done += m == FU_EU_BICUBIC ? 1 : (long)o->steps * o->seeds;
                if (fresh) progress_update(&bar, done, total, label);
            }
    }
    progress_finish(&bar);
    free(order);
    return rc;
}

/* ---------------------------------------------------------------- report */

static cJSON *summary_json(const options *o, const face *faces, int n_faces, cJSON *tables, cJSON *skipped) {
    cJSON *root = cJSON_CreateObject(), *fac = cJSON_CreateArray(), *methods = cJSON_CreateArray(), *counts = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "command", "eval upscale");
    cJSON_AddStringToObject(root, "generator", o->generator_path);
    cJSON_AddItemToObject(root, "face_networks", guide_flags_json(&o->guide));
    cJSON_AddStringToObject(root, "data", o->data);
    cJSON_AddStringToObject(root, "out", o->out);
    cJSON_AddNumberToObject(root, "steps", o->steps);
    cJSON_AddNumberToObject(root, "face_jitter", o->face_jitter);
    cJSON_AddNumberToObject(root, "seeds", o->seeds);
    cJSON_AddNumberToObject(root, "eps", json_float(fu_search_defaults().eps));
    for (int k = 0; k < o->n_factors; k++) {
        cJSON *f = cJSON_CreateObject();
        cJSON_AddNumberToObject(f, "factor", o->factor[k].factor);
        if (o->factor[k].limit) cJSON_AddNumberToObject(f, "first_faces_per_set", o->factor[k].limit);
        cJSON_AddItemToArray(fac, f);
    }
    cJSON_AddItemToObject(root, "factors", fac);
    for (int m = 0; m < FU_EU_N_METHODS; m++)
        if (o->method_mask >> m & 1) cJSON_AddItemToArray(methods, cJSON_CreateString(fu_eu_method_name(m)));
    cJSON_AddItemToObject(root, "methods", methods);
    int per[FU_EU_N_SETS] = {0}, per_class[FU_EU_N_RACES] = {0};
    for (int i = 0; i < n_faces; i++) {
        per[faces[i].f.set]++;
        if (faces[i].f.race >= 0) per_class[faces[i].f.race]++;
    }
    cJSON_AddNumberToObject(counts, "lfw", per[FU_EU_LFW]);
    cJSON *utk = cJSON_AddObjectToObject(counts, "utkface");
    for (int c = 0; c < FU_EU_N_RACES; c++) cJSON_AddNumberToObject(utk, fu_eu_race_name(c), per_class[c]);
    cJSON_AddNumberToObject(counts, "celeba", per[FU_EU_CELEBA]);
    cJSON_AddItemToObject(counts, "skipped", skipped);
    cJSON_AddItemToObject(root, "faces", counts);
    cJSON *judges = cJSON_AddObjectToObject(root, "judges");
    cJSON_AddStringToObject(judges, "identity", "faceres (human-models) descriptor cosine, result vs original; whole 64x64 image resized to 224");
    if (o->judge == FU_EU_JUDGE_GEAR)
        cJSON_AddStringToObject(judges, "race", "gear (human-models) race class; the box where UTKFace's chips sit in the frame, resized to 198");
    else {
        char text[FU_EU_PATH + 160];
        snprintf(text, sizeof text, "faceres (human-models) descriptor of the whole 64x64 image resized to 224 + faceup's race judge MLP %s", o->judge_path);
        cJSON_AddStringToObject(judges, "race", text);
    }
    cJSON_AddStringToObject(judges, "race_judge", fu_eu_judge_name(o->judge));
    cJSON_AddStringToObject(judges, "smiling", "emotion (human-models) P(happy) > 0.5; whole image, 64x64 gray");
    cJSON *child;
    while ((child = tables->child)) cJSON_AddItemToObject(root, child->string, cJSON_DetachItemViaPointer(tables, child));
    cJSON_Delete(tables);
    return root;
}

/* ---------------------------------------------------------------- the command */

static int check_options(options *o) {
    if (!o->data) {
        const char *shared = getenv("FACEUP_SHARED");
        snprintf(o->data_buf, sizeof o->data_buf, "%s/data", shared ? shared : "../shared");
        o->data = o->data_buf;
    }
    int rc = fu_eu_methods_parse(o->methods, &o->method_mask);
    o->judge = fu_eu_judge_parse(o->race_judge);
    if (rc == FU_OK && o->judge < 0) rc = fu_fail(FU_E_INPUT, "--race-judge: expected faceres or gear, got '%s'", o->race_judge);
    if (rc == FU_OK) rc = fu_eu_factors_parse(o->factors, o->factor, &o->n_factors);
    if (rc == FU_OK && strlen(o->out) > 512) rc = fu_fail(FU_E_INPUT, "--out: path longer than 512 characters");
    if (rc == FU_OK && !o->lfw_pairs && !o->utk_per_class && !o->celeba)
        rc = fu_fail(FU_E_INPUT, "no faces: --lfw-pairs, --utk-per-class and --celeba are all 0");
    if (rc == FU_OK) rc = guide_flags_resolve(&o->guide);
    if (rc == FU_OK && o->method_mask == 1 << FU_EU_IDENTITY && !o->lfw_pairs)
        rc = fu_fail(FU_E_INPUT, "--methods identity needs LFW pairs (the reference photos): --lfw-pairs is 0");
    return rc;
}

/* What a method's records depend on beyond the face: the search settings, the generator and,
 * for the face-network methods, the extractor or heads file and --face-jitter. NULL for
 * bicubic (nothing). */
static cJSON *method_settings(const options *o, int m, const char *gen_key, const char *guides_key) {
    if (m == FU_EU_BICUBIC) return NULL;
    cJSON *s = cJSON_CreateObject();
    cJSON_AddNumberToObject(s, "steps", o->steps);
    cJSON_AddNumberToObject(s, "seeds", o->seeds);
    cJSON_AddStringToObject(s, "generator", gen_key);
    if (m != FU_EU_PULSE) {
        cJSON_AddStringToObject(s, o->guide.extractor ? "extractor" : "heads", guides_key);
        if (o->guide.learnt_comparer) cJSON_AddStringToObject(s, "comparer", "learnt");
        cJSON_AddNumberToObject(s, "face_jitter", o->face_jitter);
    }
    return s;
}

/* A method folder remembers the settings its records were made with (settings.json) and a
 * rerun with other ones is refused, since records are reused by file name alone. */
static int check_method_settings(const options *o, const char *dir, const cJSON *want) {
    char path[FU_EU_PATH + 96];
    snprintf(path, sizeof path, "%s/settings.json", dir);
    if (!want) return FU_OK;
    if (o->overwrite || !file_exists(path)) return write_json(path, want);
    cJSON *have = read_json(path);
    if (!have) return fu_last_code();
    const cJSON *item;
    const char *differs = NULL;
    cJSON_ArrayForEach(item, want)
        if (!differs && !cJSON_Compare(item, cJSON_GetObjectItem(have, item->string), 1)) differs = item->string;
    cJSON_ArrayForEach(item, have)   /* a setting the records had and this run has not */
        if (!differs && !cJSON_GetObjectItem(want, item->string)) differs = item->string;
    int rc = differs ? fu_fail(FU_E_INPUT, "%s: its records were made with another %s; use another --out, or --overwrite to redo them", dir, differs)
                     : FU_OK;
    cJSON_Delete(have);
    return rc;
}

static int make_out_dirs(const options *o) {
    char path[FU_EU_PATH + 64], gen_key[33], guides_key[33];
    int rc = content_key(o->generator_path, gen_key);
    if (rc == FU_OK) rc = content_key(o->guide.extractor ? o->guide.extractor : o->guide.heads, guides_key);
    if (rc == FU_OK) rc = make_dir(o->out);
    snprintf(path, sizeof path, "%s/faces", o->out);
    if (rc == FU_OK) rc = make_dir(path);
    for (int k = 0; rc == FU_OK && k < o->n_factors; k++) {
        snprintf(path, sizeof path, "%s/x%d", o->out, o->factor[k].factor);
        rc = make_dir(path);
        for (int m = 0; rc == FU_OK && m < FU_EU_N_METHODS; m++) {
            if (!(o->method_mask >> m & 1)) continue;
            snprintf(path, sizeof path, "%s/x%d/%s", o->out, o->factor[k].factor, fu_eu_method_name(m));
            rc = make_dir(path);
            cJSON *want = rc == FU_OK ? method_settings(o, m, gen_key, guides_key) : NULL;
            if (rc == FU_OK) rc = check_method_settings(o, path, want);
            cJSON_Delete(want);
        }
    }
    return rc;
}

/* Tables, summary.json, report.html, stdout. */
static int report(const options *o, const face *faces, int n_faces, const fu_eu_result *results, int resolution, cJSON *skipped) {
    fu_eu_judged *orig = calloc((size_t)(n_faces ? n_faces : 1), sizeof *orig);
    fu_eu_face *records = calloc((size_t)(n_faces ? n_faces : 1), sizeof *records);
    if (!orig || !records) { free(orig); free(records); cJSON_Delete(skipped); return fu_fail(FU_E_INTERNAL, "out of memory"); }
    for (int i = 0; i < n_faces; i++) orig[i] = faces[i].judged, records[i] = faces[i].f;
    fu_eu_run run = {records, n_faces, o->factor, o->n_factors, o->method_mask, o->judge, fu_search_defaults().eps, orig, results};
    cJSON *tables = fu_eu_tables(&run), *root = NULL;
    char path[FU_EU_PATH + 32];
    int rc = tables ? FU_OK : fu_last_code();
    snprintf(path, sizeof path, "%s/report.html", o->out);
    if (rc == FU_OK) rc = fu_eu_write_html(&run, tables, path);
    snprintf(path, sizeof path, "%s/sheet.png", o->out);
    if (rc == FU_OK && o->sheet_faces) rc = fu_eu_write_sheet(&run, o->out, o->sheet_faces, 2 * resolution, path);
    if (rc == FU_OK) {
        root = summary_json(o, faces, n_faces, tables, skipped);
        skipped = NULL, tables = NULL;
        snprintf(path, sizeof path, "%s/summary.json", o->out);
        rc = write_json(path, root);
    }
    if (rc == FU_OK && o->json) {
        char *text = cJSON_Print(root);
        if (text) printf("%s\n", text);
        free(text);
    } else if (rc == FU_OK) {
        fu_eu_print_tables(root, stdout);
        printf("\nreport: %s/report.html\n", o->out);
    }
    cJSON_Delete(tables);
    cJSON_Delete(skipped);
    cJSON_Delete(root);
    free(orig);
    free(records);
    return rc;
}

static const char usage_text[] = "[--data DIR] [--out DIR] [--lfw-pairs N] [--utk-per-class N] [--celeba N] [--factors 4,8] [flags]\n"
    "The paper's experiments on held-out faces (LFW pairs, UTKFace val, CelebA val): thumbnails of the\n"
    "64x64 originals upscaled by bicubic, plain PULSE and the identity / race / smiling goals, judged by\n"
    "networks the search does not use (faceres identity cosine, faceres race judge or gear race, emotion P(happy)).\n"
    "Writes OUT/faces, OUT/xF/METHOD, OUT/summary.json, OUT/report.html and OUT/sheet.png; a rerun continues.";

int cmd_eval_upscale(int argc, char **argv) {
    options o = {.out = "eval-upscale", .methods = "bicubic,pulse,identity,race,smiling0,smiling1", .factors = "4",
                 .lfw_pairs = 10, .utk_per_class = 4, .celeba = 10, .steps = 100, .seeds = 1, .race_judge = "faceres", .sheet_faces = 1};
    arg_spec specs[] = {
        {"--data", ARG_STRING, &o.data, 0, 0, "shared data root with lfw/, utkface/, celeba/ (default $FACEUP_SHARED/data or ../shared/data)"},
        {"--out", ARG_STRING, &o.out, 0, 0, "output folder (default eval-upscale)"},
        {"--lfw-pairs", ARG_INT, &o.lfw_pairs, 0, 3000, "LFW same-person pairs (default 10)"},
        {"--utk-per-class", ARG_INT, &o.utk_per_class, 0, 1000, "UTKFace val faces per race class (default 4)"},
        {"--celeba", ARG_INT, &o.celeba, 0, 500, "CelebA val faces with Smiling labels (default 10)"},
        {"--factors", ARG_STRING, &o.factors, 0, 0, "downscale factors, F or F:N (only the first N faces of each set or class), e.g. 4,8:5 (default 4)"},
        {"--methods", ARG_STRING, &o.methods, 0, 0, "bicubic,pulse,identity,race,smiling0,smiling1 (default all)"},
        {"--steps", ARG_INT, &o.steps, 1, 100000, "search steps (default 100)"},
        {"--seeds", ARG_INT, &o.seeds, 1, 64, "random starts per search (default 1)"},
        {"--generator", ARG_STRING, &o.generator, 0, 0, "generator (default " DEFAULT_GENERATOR ")"},
        {"--face-jitter", ARG_FLOAT, &o.face_jitter, 0, 0.5, "as upscale's: random similarity + mirror of the face terms' chip per step (default 0)"},
        GUIDE_FLAG_SPECS(o.guide),
        {"--race-judge", ARG_STRING, &o.race_judge, 0, 0, "race judge of the tables: faceres (faceup's MLP on faceres) or gear (default faceres)"},
        {"--race-judge-model", ARG_STRING, &o.race_judge_model, 0, 0, "faceres race judge file (default " FU_RACE_JUDGE_DEFAULT ")"},
        {"--threads", ARG_INT, &o.threads, 0, 1024, "threads (default: FACEUP_THREADS or all cores)"},
        {"--sheet-faces", ARG_INT, &o.sheet_faces, 0, 100, "faces per set (UTKFace: per class) and factor in OUT/sheet.png; 0: no sheet (default 1)"},
        {"--overwrite", ARG_FLAG, &o.overwrite, 0, 0, "redo faces and results found in OUT"},
        {"--json", ARG_FLAG, &o.json, 0, 0, "print the summary as JSON on stdout"},
        {"--quiet", ARG_FLAG, &o.quiet, 0, 0, "no progress on stderr"},
        {0},
    };
    char *pos[1];
    int n_pos = args_parse("eval upscale", usage_text, specs, argc, argv, pos, 1);
    if (n_pos < 0) return n_pos == -2 ? FU_OK : FU_E_INPUT;
    if (n_pos > 0) { fprintf(stderr, "faceup eval upscale: unexpected argument '%s'\n", pos[0]); return FU_E_INPUT; }
    fu_set_threads(o.threads);
    nets n = {0};
    fu_eu_face *cand = NULL;
    face *faces = NULL;
    fu_eu_result *results = NULL;
    int n_cand = 0, n_faces = 0;
    cJSON *skipped = cJSON_CreateArray();
    int counts[FU_EU_N_SETS] = {o.lfw_pairs, o.utk_per_class, o.celeba};
    int rc = check_options(&o);
    if (rc == FU_OK) rc = fu_eu_candidates(o.data, counts, &cand, &n_cand);
    if (rc == FU_OK) rc = open_nets(&o, &n);
    if (rc == FU_OK) rc = make_out_dirs(&o);
    if (rc == FU_OK) rc = select_faces(&o, &n, cand, n_cand, &faces, &n_faces, skipped);
    if (rc == FU_OK && !(results = calloc((size_t)o.n_factors * FU_EU_N_METHODS * (n_faces ? n_faces : 1), sizeof *results)))
        rc = fu_fail(FU_E_INTERNAL, "out of memory");
    if (rc == FU_OK) rc = run_all(&o, &n, faces, n_faces, results);
    if (rc == FU_OK) { rc = report(&o, faces, n_faces, results, n.gen->resolution, skipped); skipped = NULL; }
    if (rc != FU_OK) report_failure("eval upscale", o.json);
    cJSON_Delete(skipped);
    for (int i = 0; faces && i < n_faces; i++) fu_tensor_free(faces[i].hr);
    free(faces);
    free(results);
    free(cand);
    close_nets(&n);
    return rc == FU_OK ? FU_OK : rc == FU_E_INTERNAL ? FU_E_INTERNAL : FU_E_INPUT;
}
