/* faceup eval upscale: faces, methods and tables (see upscale_eval.h). */
#include "eval/upscale_eval.h"
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "core/error.h"
#include "data/lfw.h"
#include "search/loss_string.h"
#include "data/faces.h"

static const char *const set_names[FU_EU_N_SETS] = {"lfw", "utkface", "celeba"};
static const char *const method_names[FU_EU_N_METHODS] = {"bicubic", "pulse", "identity", "race", "smiling0", "smiling1"};
static const char *const race_names[FU_EU_N_RACES] = {"white", "black", "asian", "indian", "other"};

const char *fu_eu_set_name(int set) { return set >= 0 && set < FU_EU_N_SETS ? set_names[set] : "?"; }
const char *fu_eu_method_name(int method) { return method >= 0 && method < FU_EU_N_METHODS ? method_names[method] : "?"; }
const char *fu_eu_race_name(int race) { return race >= 0 && race < FU_EU_N_RACES ? race_names[race] : "?"; }

static const char *const judge_names[FU_EU_N_JUDGES] = {"faceres", "gear"};

const char *fu_eu_judge_name(int judge) { return judge >= 0 && judge < FU_EU_N_JUDGES ? judge_names[judge] : "?"; }

int fu_eu_judge_parse(const char *name) {
    for (int k = 0; name && k < FU_EU_N_JUDGES; k++)
        if (!strcmp(name, judge_names[k])) return k;
    return -1;
}

void fu_eu_use_judge(fu_eu_judged *j, int judge) { j->race = j->race_of[judge]; }

/* ---------------------------------------------------------------- flags */

int fu_eu_methods_parse(const char *list, int *mask) {
    *mask = 0;
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        int found = -1;
        for (int m = 0; m < FU_EU_N_METHODS; m++)
            if (strlen(method_names[m]) == len && !strncmp(p, method_names[m], len)) found = m;
        if (found < 0)
            return fu_fail(FU_E_INPUT, "--methods: unknown method '%.*s' (bicubic, pulse, identity, race, smiling0, smiling1)", (int)len, p);
        *mask |= 1 << found;
        p += len + (p[len] == ',');
    }
    return *mask ? FU_OK : fu_fail(FU_E_INPUT, "--methods: empty list");
}

/* A decimal integer in [lo, hi] spanning exactly s[0..len). */
static int parse_int(const char *s, size_t len, int lo, int hi, int *out) {
    if (len == 0 || len > 6) return 0;
    int v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return v >= lo && v <= hi;
}

int fu_eu_factors_parse(const char *list, fu_eu_factor *out, int *n) {
    *n = 0;
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ","), flen = strcspn(p, ":");
        fu_eu_factor f = {0, 0};
        if (flen > len) flen = len;
        int ok = parse_int(p, flen, 2, 64, &f.factor) && !(f.factor & (f.factor - 1)) &&
                 (flen == len || parse_int(p + flen + 1, len - flen - 1, 1, 100000, &f.limit));
        if (!ok) return fu_fail(FU_E_INPUT, "--factors: expected F or F:N (F a power of two 2..64, N >= 1), got '%.*s'", (int)len, p);
        for (int k = 0; k < *n; k++)
            if (out[k].factor == f.factor) return fu_fail(FU_E_INPUT, "--factors: factor %d given twice", f.factor);
        if (*n == FU_EU_MAX_FACTORS) return fu_fail(FU_E_INPUT, "--factors: at most %d factors", FU_EU_MAX_FACTORS);
        out[(*n)++] = f;
        p += len + (p[len] == ',');
    }
    return *n ? FU_OK : fu_fail(FU_E_INPUT, "--factors: empty list");
}

/* ---------------------------------------------------------------- faces */

typedef struct face_list {
    fu_eu_face *v;
    int n, cap;
} face_list;

static fu_eu_face *push_face(face_list *l) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 256;
        fu_eu_face *grown = realloc(l->v, (size_t)cap * sizeof *grown);
        if (!grown) { fu_fail(FU_E_INTERNAL, "out of memory"); return NULL; }
        l->v = grown, l->cap = cap;
    }
    fu_eu_face *f = &l->v[l->n++];
    memset(f, 0, sizeof *f);
    f->race = f->smiling = -1;
    return f;
}

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Same-person pairs round robin over the folds: the k-th same pair of every fold, k = 0, 1, ... */
static int lfw_candidates(const char *data_dir, face_list *l) {
    char dir[FU_EU_PATH];
    snprintf(dir, sizeof dir, "%s/lfw", data_dir);
    fu_lfw_pairs pairs;
    int rc = fu_lfw_load_pairs(dir, &pairs);
    if (rc != FU_OK) return rc;
    for (int k = 0; rc == FU_OK && k < pairs.per_fold; k++)
        for (int fold = 0; rc == FU_OK && fold < pairs.n_folds; fold++) {
            const fu_lfw_pair *p = &pairs.pairs[fold * 2 * pairs.per_fold + k];
            fu_eu_face *f = push_face(l);
            if (!f) { rc = fu_last_code(); break; }
            f->set = FU_EU_LFW;
            snprintf(f->id, sizeof f->id, "lfw-%04d", l->n);
            rc = fu_lfw_image_path(dir, p->name[0], p->index[0], f->photo, sizeof f->photo);
            if (rc == FU_OK) rc = fu_lfw_image_path(dir, p->name[1], p->index[1], f->reference, sizeof f->reference);
        }
    fu_lfw_pairs_free(&pairs);
    return rc;
}

/* UTKFace and CelebA val faces with their labels (src/data/faces.h lists and splits them). */
static int labelled_candidates(const char *data_dir, const int count[FU_EU_N_SETS], face_list *l) {
    fu_face_label *labels = NULL;
    int64_t n = 0;
    int rc = fu_faces_list(data_dir, &labels, &n), per_class[FU_EU_N_RACES] = {0};
    if (rc == FU_E_INPUT) {
        char why[512];
        snprintf(why, sizeof why, "%s", fu_last_error());
        return fu_fail(FU_E_INPUT, "--data %s: %s (expected layout: utkface/images/, celeba/images/ with celeba/list_attr_celeba.txt, "
                                   "lfw/images/ with lfw/pairs.txt)", data_dir, why);
    }
    int smiling = fu_celeba_attr_index("Smiling", 7);
    for (int64_t i = 0; rc == FU_OK && i < n; i++) {
        const fu_face_label *lab = &labels[i];
        int utk = lab->source == FU_FACES_UTKFACE && lab->race >= 0 && lab->race < FU_EU_N_RACES;
        int celeba = lab->source == FU_FACES_CELEBA;
        if (lab->split != FU_SPLIT_VAL || !((utk && count[FU_EU_UTK]) || (celeba && count[FU_EU_CELEBA]))) continue;
        fu_eu_face *f = push_face(l);
        if (!f) { rc = fu_last_code(); break; }
        snprintf(f->photo, sizeof f->photo, "%s/%s", data_dir, lab->path);
        if (utk) {
            f->set = FU_EU_UTK;
            f->race = lab->race;
            snprintf(f->id, sizeof f->id, "utk-%s-%04d", race_names[lab->race], ++per_class[lab->race]);
        } else {
            const char *name = strrchr(lab->path, '/') + 1;
            f->set = FU_EU_CELEBA;
            f->smiling = lab->attrs_known >> smiling & 1 ? (int)(lab->attrs >> smiling & 1) : -1;
            snprintf(f->id, sizeof f->id, "celeba-%.*s", (int)strcspn(name, "."), name);
        }
    }
    free(labels);
    return rc;
}

int fu_eu_candidates(const char *data_dir, const int count[FU_EU_N_SETS], fu_eu_face **out, int *n) {
    *out = NULL, *n = 0;
    if (!is_dir(data_dir)) return fu_fail(FU_E_INPUT, "--data %s: no such folder (the shared data root holding lfw/, utkface/, celeba/)", data_dir);
    face_list l = {0};
    int rc = count[FU_EU_LFW] ? lfw_candidates(data_dir, &l) : FU_OK;
    if (rc == FU_OK && (count[FU_EU_UTK] || count[FU_EU_CELEBA])) rc = labelled_candidates(data_dir, count, &l);
    if (rc != FU_OK) { free(l.v); return rc == FU_E_INTERNAL ? rc : FU_E_INPUT; }
    *out = l.v, *n = l.n;
    return FU_OK;
}

/* ---------------------------------------------------------------- records */

static cJSON *float_array(const float *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    return a;
}

cJSON *fu_eu_result_json(const fu_eu_result *r) {
    cJSON *o = cJSON_CreateObject(), *j = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "met_eps", r->met_eps);
    cJSON_AddNumberToObject(o, "l2", r->l2);
    cJSON_AddNumberToObject(o, "seconds", r->seconds);
    if (r->target_race >= 0) cJSON_AddStringToObject(o, "target_race", race_names[r->target_race]);
    cJSON_AddNumberToObject(j, "faceres_cosine", r->judged.cosine);
    for (int k = 0; k < FU_EU_N_JUDGES; k++) {
        char key[48];
        if (r->judged.race_of[k] < 0) continue;
        snprintf(key, sizeof key, "%s_race", judge_names[k]);
        cJSON_AddStringToObject(j, key, race_names[r->judged.race_of[k]]);
        snprintf(key, sizeof key, "%s_race_probabilities", judge_names[k]);
        cJSON_AddItemToObject(j, key, float_array(r->judged.race_probs[k], FU_EU_N_RACES));
    }
    if (r->judged.race_of[FU_EU_JUDGE_FACERES] >= 0 && r->judged.faceres_judge[0])
        cJSON_AddStringToObject(j, "faceres_race_judge", r->judged.faceres_judge);
    cJSON_AddNumberToObject(j, "emotion_p_happy", r->judged.p_happy);
    cJSON_AddItemToObject(o, "judged", j);
    return o;
}

static int race_index(const char *name) {
    for (int k = 0; name && k < FU_EU_N_RACES; k++)
        if (!strcmp(name, race_names[k])) return k;
    return -1;
}

static int get_number(const cJSON *o, const char *key, double *v) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(x)) return 0;
    *v = x->valuedouble;
    return 1;
}

/* One race judge's class and probabilities; 1 when present and well formed, 0 when absent, -1
 * when malformed. */
static int read_race(const cJSON *j, int judge, fu_eu_judged *out) {
    char key[48];
    snprintf(key, sizeof key, "%s_race", judge_names[judge]);
    const cJSON *cls = cJSON_GetObjectItemCaseSensitive(j, key);
    snprintf(key, sizeof key, "%s_race_probabilities", judge_names[judge]);
    const cJSON *probs = cJSON_GetObjectItemCaseSensitive(j, key);
    out->race_of[judge] = -1;
    if (!cls && !probs) return 0;
    int race = race_index(cJSON_GetStringValue(cls));
    if (race < 0 || !cJSON_IsArray(probs) || cJSON_GetArraySize(probs) != FU_EU_N_RACES) return -1;
    for (int k = 0; k < FU_EU_N_RACES; k++) {
        const cJSON *p = cJSON_GetArrayItem(probs, k);
        if (!cJSON_IsNumber(p)) return -1;
        out->race_probs[judge][k] = (float)p->valuedouble;
    }
    out->race_of[judge] = race;
    return 1;
}

int fu_eu_result_from_json(const cJSON *o, fu_eu_result *r, const char *label) {
    memset(r, 0, sizeof *r);
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, "judged"), *met = cJSON_GetObjectItemCaseSensitive(o, "met_eps");
    double l2, sec, cosine, happy;
    int ok = cJSON_IsBool(met) && get_number(o, "l2", &l2) && get_number(o, "seconds", &sec) && get_number(j, "faceres_cosine", &cosine) &&
             get_number(j, "emotion_p_happy", &happy);
    ok = ok && read_race(j, FU_EU_JUDGE_GEAR, &r->judged) == 1 && read_race(j, FU_EU_JUDGE_FACERES, &r->judged) >= 0;
    const cJSON *target = cJSON_GetObjectItemCaseSensitive(o, "target_race");
    r->target_race = target ? race_index(cJSON_GetStringValue(target)) : -1;
    if (!ok || (target && r->target_race < 0)) return fu_fail(FU_E_INPUT, "%s: not a result record of faceup eval upscale", label);
    r->done = 1;
    r->met_eps = cJSON_IsTrue(met);
    r->l2 = (float)l2, r->seconds = sec;
    r->judged.cosine = (float)cosine, r->judged.p_happy = (float)happy;
    r->judged.race = r->judged.race_of[FU_EU_JUDGE_GEAR];
    const char *key = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "faceres_race_judge"));
    if (key && strlen(key) < sizeof r->judged.faceres_judge) strcpy(r->judged.faceres_judge, key);
    return FU_OK;
}
