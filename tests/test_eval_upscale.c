/* faceup eval upscale: flag parsing, and end to end on a few held-out faces with a few steps
 * (JSON fields, report, resuming, bad input). The end-to-end tests need ../shared and the model
 * cache. */
#include "test.h"
#include "util.h"
#include "core/error.h"
#include "eval/upscale_eval.h"
#include "face/models.h"
#include "faceup.h"
#include "face/face_extractor.h"
#include "face/heads.h"
#include "face/race_judge.h"
#include "io/image.h"
#include "io/fileutil.h"
#include "train/finetune.h"
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char out[1 << 20], err[1 << 14], args[8192];

TEST(eval_upscale_parses_methods_and_factors) {
    int mask;
    CHECK(fu_eu_methods_parse("pulse,identity", &mask) == FU_OK && mask == (1 << FU_EU_PULSE | 1 << FU_EU_IDENTITY));
    CHECK(fu_eu_methods_parse("bicubic,pulse,identity,race,smiling0,smiling1", &mask) == FU_OK && mask == (1 << FU_EU_N_METHODS) - 1);
    CHECK(fu_eu_methods_parse("pulse,frobnicate", &mask) == FU_E_INPUT && strstr(fu_last_error(), "'frobnicate'"));
    CHECK(fu_eu_methods_parse("", &mask) == FU_E_INPUT);
    fu_eu_factor f[FU_EU_MAX_FACTORS];
    int n;
    CHECK(fu_eu_factors_parse("4,8:10", f, &n) == FU_OK && n == 2 && f[0].factor == 4 && f[0].limit == 0 && f[1].factor == 8 && f[1].limit == 10);
    const char *bad[] = {"3", "0", "128", "4,4", "4:", "4:0", "x", "4,,8", "8:1e3", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) CHECK_MSG(fu_eu_factors_parse(bad[i], f, &n) == FU_E_INPUT, "'%s' accepted", bad[i]);
}

static const char *bin_or_null(void) {
    const char *bin = getenv("FACEUP_BIN") ? getenv("FACEUP_BIN") : "build/faceup";
    return access(bin, X_OK) == 0 ? bin : NULL;
}

/* The networks the command loads (generator and heads ship with the project). */
static int models_present(void) {
    const char *need[] = {FU_BLAZEFACE_MODEL, FU_DLIB_LANDMARKS_MODEL, "human-models-3.0.4/models/faceres.json",
                          "human-models-3.0.4/models/gear.json", "human-models-3.0.4/models/emotion.json"};
    char buf[2048];
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
        if (!file_exists(fu_model_path(need[i], buf, sizeof buf))) return 0;
    return 1;
}

static const cJSON *row(const cJSON *root, int factor, const char *method, const char *set) {
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(root, "table")) {
        if (cJSON_GetObjectItem(r, "factor")->valueint == factor && !strcmp(cJSON_GetObjectItem(r, "method")->valuestring, method) &&
            !strcmp(cJSON_GetObjectItem(r, "set")->valuestring, set))
            return r;
    }
    return NULL;
}

static double num(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItem(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : -99;
}

TEST(eval_upscale_result_records_both_race_judges) {
    fu_eu_result r = {.done = 1, .met_eps = 1, .l2 = 0.001f, .seconds = 2, .target_race = 1};
    r.judged.cosine = 0.5f, r.judged.p_happy = 0.25f;
    r.judged.race_of[FU_EU_JUDGE_GEAR] = 0, r.judged.race_of[FU_EU_JUDGE_FACERES] = 3;
    for (int k = 0; k < FU_EU_N_RACES; k++) r.judged.race_probs[FU_EU_JUDGE_GEAR][k] = r.judged.race_probs[FU_EU_JUDGE_FACERES][k] = 0.2f;
    cJSON *o = fu_eu_result_json(&r);
    fu_eu_result back;
    REQUIRE(fu_eu_result_from_json(o, &back, "rec") == FU_OK);
    CHECK(back.judged.race_of[FU_EU_JUDGE_GEAR] == 0 && back.judged.race_of[FU_EU_JUDGE_FACERES] == 3 && back.target_race == 1);
    fu_eu_use_judge(&back.judged, FU_EU_JUDGE_FACERES);
    CHECK(back.judged.race == 3);
    CHECK(back.judged.faceres_judge[0] == 0);   /* no judge key given: unknown */
    strcpy(r.judged.faceres_judge, "0123456789abcdef0123456789abcdef");
    cJSON *keyed = fu_eu_result_json(&r);
    REQUIRE(fu_eu_result_from_json(keyed, &back, "rec") == FU_OK);
    CHECK(!strcmp(back.judged.faceres_judge, r.judged.faceres_judge));
    cJSON_Delete(keyed);
    /* a record of before the faceres judge reads back with that judge missing */
    cJSON *jd = cJSON_GetObjectItem(o, "judged");
    cJSON_DeleteItemFromObject(jd, "faceres_race");
    cJSON_DeleteItemFromObject(jd, "faceres_race_probabilities");
    REQUIRE(fu_eu_result_from_json(o, &back, "rec") == FU_OK);
    CHECK(back.judged.race_of[FU_EU_JUDGE_FACERES] == -1 && back.judged.race == 0);
    /* half a judge, or no gear, is not a record */
    cJSON_AddStringToObject(jd, "faceres_race", "asian");
    CHECK(fu_eu_result_from_json(o, &back, "rec") == FU_E_INPUT && strstr(fu_last_error(), "rec"));
    cJSON_DeleteItemFromObject(jd, "faceres_race");
    cJSON_DeleteItemFromObject(jd, "gear_race");
    CHECK(fu_eu_result_from_json(o, &back, "rec") == FU_E_INPUT);
    cJSON_Delete(o);
    CHECK(fu_eu_judge_parse("gear") == FU_EU_JUDGE_GEAR && fu_eu_judge_parse("faceres") == FU_EU_JUDGE_FACERES && fu_eu_judge_parse("x") < 0);
}

static long mtime_ns(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_mtim.tv_sec * 1000000000L + st.st_mtim.tv_nsec : -1;
}

/* Reads the file into buf (n bytes, NUL-terminated, truncated); 0 when it cannot be opened. */
static int read_text(const char *path, char *buf, size_t n) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t k = fread(buf, 1, n - 1, f);
    buf[k] = 0;
    fclose(f);
    return 1;
}

TEST(cli_eval_upscale_end_to_end_and_resume) {
    const char *shared = fu_test_shared_dir();
    if (!bin_or_null()) SKIP("faceup binary not built");
    if (!shared) SKIP("../shared absent");
    if (!models_present()) SKIP("face models absent (tools/fetch-models.sh)");
    char o[512], path[1024];
    snprintf(o, sizeof o, "%s/eval_up", fu_test_tmpdir());
    snprintf(args, sizeof args, "eval upscale --data %s/data --out %s --lfw-pairs 1 --utk-per-class 1 --celeba 1 --factors 4,8:1 "
             "--methods bicubic,pulse,identity,race,smiling1 --steps 2 --threads 1 --json --quiet", shared, o);
    int rc = run_faceup(args, out, sizeof out, err, sizeof err);
    CHECK_MSG(rc == FU_OK, "exit %d: %s", rc, err);
    REQUIRE(rc == FU_OK);
    cJSON *j = cJSON_Parse(out);
    REQUIRE(j);
    const cJSON *faces = cJSON_GetObjectItem(j, "faces"), *utk = cJSON_GetObjectItem(faces, "utkface");
    CHECK(num(faces, "lfw") == 1 && num(faces, "celeba") == 1);
    CHECK(num(utk, "white") == 1 && num(utk, "black") == 1 && num(utk, "other") == 1);
    CHECK(num(j, "steps") == 2 && cJSON_GetArraySize(cJSON_GetObjectItem(j, "factors")) == 2);
    CHECK(strstr(out, "\"eps\":\t0.002,") != NULL);   /* not 0.0020000000949949026 */
    for (int f = 4; f <= 8; f += 4) {
        const cJSON *pulse = row(j, f, "pulse", "lfw"), *id = row(j, f, "identity", "lfw"), *bic = row(j, f, "bicubic", "utkface");
        REQUIRE(pulse && id && bic);
        CHECK(num(pulse, "faces") == 1 && num(pulse, "l2_mean") >= 0 && num(pulse, "l2_mean") < 1);
        CHECK(num(id, "identity_cosine") >= -1 && num(id, "identity_cosine") <= 1);
        CHECK(num(bic, "faces") == 5 && num(bic, "race_matches_label") >= 0 && cJSON_GetObjectItem(bic, "search_met_eps") == NULL);
        CHECK(num(row(j, f, "smiling1", "celeba"), "attribute_success") >= 0);
        CHECK(row(j, f, "identity", "utkface") == NULL);   /* no reference photo there */
    }
    const cJSON *per_class = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "race_per_class"), 0);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(per_class, "classes")) == 5);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(j, "targets")) == 2);
    CHECK(cJSON_IsBool(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "targets"), 0), "identity_beats_pulse_on_identity")));
    /* the race figures name their judge; the originals carry both judges' recall */
    CHECK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(j, "race_judge")), "faceres"));
    const cJSON *judges = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "originals"), "utkface"), "race_judges");
    CHECK(num(cJSON_GetObjectItem(judges, "faceres"), "accuracy") >= 0 && num(cJSON_GetObjectItem(judges, "gear"), "accuracy") >= 0);
    cJSON_Delete(j);

    /* The report's images are relative paths that exist; its tables have readable column names
     * and a legend, not raw JSON. */
    snprintf(path, sizeof path, "%s/report.html", o);
    REQUIRE(read_text(path, out, sizeof out));
    CHECK(strstr(out, "race_label") && strstr(out, "smile_label: that matches") && !strstr(out, "race=o") && !strstr(out, "{\""));
    const char *rel[] = {"x4/pulse/lfw-0001.png", "x8/race/utk-black-0001.png", "faces/lfw-0001/ref.png", "faces/celeba-009001/thumb8.png"};
    for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", o, rel[i]);
        CHECK_MSG(strstr(out, rel[i]) && file_exists(path), "%s not in the report or missing", rel[i]);
    }

    /* The sheet: per factor the first face of each set and class (7 rows; x8 keeps 1 per group),
     * columns thumbnail, 5 methods, original, reference, cells of 2 x 64 pixels. */
    snprintf(path, sizeof path, "%s/sheet.png", o);
    fu_tensor *sheet = fu_image_load(path);
    CHECK_MSG(sheet && sheet->shape[3] == 8 * 128 && sheet->shape[2] == 16 + 14 * 128, "sheet %lldx%lld",
              sheet ? (long long)sheet->shape[3] : -1LL, sheet ? (long long)sheet->shape[2] : -1LL);
    fu_tensor_free(sheet);

    /* Resume: a result whose record is gone (a run killed before writing it) is redone, the
     * finished ones are read back untouched. */
    char kept[1024], redone[1024];
    snprintf(kept, sizeof kept, "%s/x4/pulse/lfw-0001.png", o);
    snprintf(redone, sizeof redone, "%s/x4/race/utk-white-0001.png", o);
    long kept_t = mtime_ns(kept), redone_t = mtime_ns(redone);
    snprintf(path, sizeof path, "%s/x4/race/utk-white-0001.json", o);
    REQUIRE(unlink(path) == 0);
    rc = run_faceup(args, out, sizeof out, err, sizeof err);
    CHECK_MSG(rc == FU_OK, "rerun exit %d: %s", rc, err);
    CHECK(file_exists(path) && mtime_ns(kept) == kept_t && mtime_ns(redone) != redone_t);
    CHECK(strstr(out, "\"table\"") != NULL);

    /* A record of before the faceres race judge (no faceres_race) is judged again from its
     * saved image, which stays untouched. */
    snprintf(path, sizeof path, "%s/x4/pulse/lfw-0001.json", o);
    REQUIRE(read_text(path, out, sizeof out));
    cJSON *rec = cJSON_Parse(out), *judged = cJSON_GetObjectItem(rec, "judged");
    REQUIRE(rec && cJSON_GetObjectItem(judged, "faceres_race"));
    cJSON_DeleteItemFromObject(judged, "faceres_race");
    cJSON_DeleteItemFromObject(judged, "faceres_race_probabilities");
    char *text = cJSON_Print(rec);
    REQUIRE(text && fu_write_file_atomic(path, text, strlen(text)) == FU_OK);
    free(text);
    cJSON_Delete(rec);
    rc = run_faceup(args, out, sizeof out, err, sizeof err);
    CHECK_MSG(rc == FU_OK, "third run exit %d: %s", rc, err);
    REQUIRE(read_text(path, out, sizeof out));
    CHECK(strstr(out, "\"faceres_race\"") && strstr(out, "\"gear_race\"") && mtime_ns(kept) == kept_t);

    /* Records are reused by file name, so a rerun with settings that change them is refused
     * (each method folder keeps its settings.json), and nothing is redone. */
    size_t len = strlen(args);
    snprintf(args + len, sizeof args - len, " --face-jitter 0.05");
    rc = run_faceup(args, out, sizeof out, err, sizeof err);
    CHECK_MSG(rc == FU_E_INPUT && strstr(err, "x4/identity") && strstr(err, "face_jitter") && count_newlines(err) == 1, "exit %d: %s", rc, err);
    CHECK(mtime_ns(kept) == kept_t);

    /* Another race judge file: every record is judged again from its saved image and names
     * the judge file's key; the images stay untouched. */
    char judge_file[1024], before[8192];
    snprintf(path, sizeof path, "%s/x4/pulse/lfw-0001.json", o);
    REQUIRE(read_text(path, before, sizeof before));
    CHECK(strstr(before, "\"faceres_race_judge\"") != NULL);
    fu_race_judge *fresh = fu_race_judge_new(7);
    REQUIRE(fresh);
    snprintf(judge_file, sizeof judge_file, "%s/eval_up_judge.safetensors", fu_test_tmpdir());
    REQUIRE(fu_race_judge_save(fresh, judge_file, NULL, 0) == FU_OK);
    fu_race_judge_free(fresh);
    args[len] = 0;
    len = strlen(args);
    snprintf(args + len, sizeof args - len, " --race-judge-model %s", judge_file);
    rc = run_faceup(args, out, sizeof out, err, sizeof err);
    CHECK_MSG(rc == FU_OK, "exit %d: %s", rc, err);
    REQUIRE(read_text(path, out, sizeof out));
    const char *key_now = strstr(out, "\"faceres_race_judge\""), *key_before = strstr(before, "\"faceres_race_judge\"");
    CHECK(key_now && key_before && strncmp(key_now, key_before, 60) != 0);
    CHECK(mtime_ns(kept) == kept_t);
}

/* 1 when the two files can be read and hold the same bytes. */
static int same_bytes(const char *a, const char *b) {
    unsigned char *da = NULL, *db = NULL;
    size_t na = 0, nb = 0;
    int same = fu_read_file(a, 1 << 24, &da, &na) == FU_OK && fu_read_file(b, 1 << 24, &db, &nb) == FU_OK && na == nb &&
               !memcmp(da, db, na);
    free(da);
    free(db);
    return same;
}

/* The face terms follow --extractor and --comparer as upscale's do: the identity goal's image
 * changes with the extractor's learnt comparer while plain PULSE's stays byte for byte; the
 * summary and the method folders name the extractor and comparer, and a rerun with face-api's
 * net or the calibrated comparer instead is refused. */
TEST(cli_eval_upscale_guides_by_extractor) {
    const char *shared = fu_test_shared_dir();
    char heads[1024], ext[512], o1[512], o2[512], a[1024], b[1024];
    if (!bin_or_null()) SKIP("faceup binary not built");
    if (!shared) SKIP("../shared absent");
    if (!models_present()) SKIP("face models absent (tools/fetch-models.sh)");
    fu_shipped_path(FU_HEADS_DEFAULT, heads, sizeof heads);
    if (!file_exists(heads)) SKIP("models/faceup-heads.safetensors absent");
    fu_face_extractor *x = fu_finetune_initial(heads);
    REQUIRE(x);
    x->comparer->data[0] = 1.2f, x->comparer->data[1] = 8.0f;   /* a comparer far from face-api's calibration */
    snprintf(ext, sizeof ext, "%s/eval_up_ext.safetensors", fu_test_tmpdir());
    REQUIRE(fu_face_extractor_save(x, ext, FU_F16, NULL, 0, NULL, 0) == FU_OK);
    fu_face_extractor_free(x);
    snprintf(o1, sizeof o1, "%s/eval_up_heads", fu_test_tmpdir());
    snprintf(o2, sizeof o2, "%s/eval_up_ext", fu_test_tmpdir());
    const char *flags = "--lfw-pairs 1 --utk-per-class 0 --celeba 0 --methods pulse,identity --steps 3 --threads 1 --json --quiet";
    snprintf(args, sizeof args, "eval upscale --data %s/data --out %s %s --no-extractor", shared, o1, flags);
    int rc = run_faceup(args, out, sizeof out, err, sizeof err);
    CHECK_MSG(rc == FU_OK, "exit %d: %s", rc, err);
    cJSON *j = cJSON_Parse(out);
    const cJSON *nets = cJSON_GetObjectItem(j, "face_networks");
    CHECK(nets && cJSON_GetObjectItem(nets, "heads") && !cJSON_GetObjectItem(nets, "extractor"));
    cJSON_Delete(j);
    snprintf(args, sizeof args, "eval upscale --data %s/data --out %s %s --extractor %s --comparer learnt", shared, o2, flags, ext);
    rc = run_faceup(args, out, sizeof out, err, sizeof err);
    CHECK_MSG(rc == FU_OK, "exit %d: %s", rc, err);
    j = cJSON_Parse(out);
    nets = cJSON_GetObjectItem(j, "face_networks");
    const char *named = cJSON_GetStringValue(cJSON_GetObjectItem(nets, "extractor"));
    CHECK(named && !strcmp(named, ext) && !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(nets, "comparer")), "learnt"));
    cJSON_Delete(j);
    snprintf(a, sizeof a, "%s/x4/pulse/lfw-0001.png", o1);
    snprintf(b, sizeof b, "%s/x4/pulse/lfw-0001.png", o2);
    CHECK(file_exists(a) && same_bytes(a, b));
    snprintf(a, sizeof a, "%s/x4/identity/lfw-0001.png", o1);
    snprintf(b, sizeof b, "%s/x4/identity/lfw-0001.png", o2);
    CHECK(file_exists(a) && file_exists(b) && !same_bytes(a, b));
    snprintf(b, sizeof b, "%s/x4/identity/settings.json", o2);
    CHECK(read_text(b, out, sizeof out) && strstr(out, "\"extractor\"") && !strstr(out, "\"heads\""));
    snprintf(args, sizeof args, "eval upscale --data %s/data --out %s %s --no-extractor", shared, o2, flags);
    rc = run_faceup(args, out, sizeof out, err, sizeof err);
    CHECK_MSG(rc == FU_E_INPUT && strstr(err, "x4/identity") && strstr(err, "heads") && count_newlines(err) == 1, "exit %d: %s", rc, err);
    snprintf(args, sizeof args, "eval upscale --data %s/data --out %s %s --extractor %s", shared, o2, flags, ext);
    rc = run_faceup(args, out, sizeof out, err, sizeof err);
    CHECK_MSG(rc == FU_E_INPUT && strstr(err, "x4/identity") && strstr(err, "comparer") && count_newlines(err) == 1, "exit %d: %s", rc, err);
    /* contradicting flags */
    snprintf(args, sizeof args, "eval upscale --data %s/data --out %s %s --extractor %s --heads %s", shared, o2, flags, ext, heads);
    CHECK(run_faceup(args, out, sizeof out, err, sizeof err) == FU_E_INPUT && strstr(err, "--heads") && count_newlines(err) == 1);
}

TEST(cli_eval_upscale_bad_input_exit_2_without_output) {
    const char *shared = fu_test_shared_dir();
    if (!bin_or_null()) SKIP("faceup binary not built");
    char o[512], data[512];
    snprintf(o, sizeof o, "%s/eval_up_bad", fu_test_tmpdir());
    snprintf(data, sizeof data, "%s/data", shared ? shared : "/nonexistent");
    struct { const char *flags, *want; int needs_data; } cases[] = {
        {"--methods pulse,frobnicate", "unknown method 'frobnicate'", 0},
        {"--factors 3", "--factors", 0},
        {"--lfw-pairs 0 --utk-per-class 0 --celeba 0", "no faces", 0},
        {"--lfw-pairs -1", "--lfw-pairs", 0},
        {"stray", "unexpected argument 'stray'", 0},
        {"--data /nonexistent/data", "/nonexistent/data", 0},
        {"--factors 64", "does not divide", 1},
        {"--generator /nonexistent/gen.safetensors", "/nonexistent/gen.safetensors", 1},
        {"--race-judge dice", "--race-judge", 0},
        {"--race-judge-model /nonexistent/judge.safetensors", "/nonexistent/judge.safetensors", 1},
        {"--extractor /nonexistent/ext.safetensors", "/nonexistent/ext.safetensors", 1},
        {"--extractor x.safetensors --no-extractor", "exclude each other", 0},
        {"--comparer fancy", "--comparer", 0},
        {"--no-extractor --comparer learnt", "needs an extractor", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (cases[i].needs_data && (!shared || !models_present())) continue;
        snprintf(args, sizeof args, "eval upscale --data %s --out %s --quiet %s", data, o, cases[i].flags);
        int rc = run_faceup(args, out, sizeof out, err, sizeof err);
        CHECK_MSG(rc == FU_E_INPUT, "case %zu: exit %d (%s)", i, rc, err);
        CHECK_MSG(strstr(err, cases[i].want) && count_newlines(err) == 1, "case %zu: stderr '%s' lacks '%s'", i, err, cases[i].want);
        CHECK_MSG(!file_exists(o), "case %zu left %s", i, o);
    }
}

/* A data folder with the images directly in utkface/ and celeba/ (no images/ inside) is refused
 * with exit 2 naming the expected layout; it used to crash (labels freed before being set). */
TEST(cli_eval_upscale_refuses_a_data_folder_without_images_subfolders) {
    if (!bin_or_null()) SKIP("faceup binary not built");
    char d[512], o[512];
    snprintf(d, sizeof d, "%s/flat_data", fu_test_tmpdir());
    snprintf(o, sizeof o, "%s/flat_out", fu_test_tmpdir());
    const char *dirs[] = {"", "/utkface", "/celeba", "/lfw"};
    for (int i = 0; i < 4; i++) {
        snprintf(args, sizeof args, "%s%s", d, dirs[i]);
        mkdir(args, 0777);
    }
    fu_tensor *face = fu_tensor_newv(4, (int64_t)1, (int64_t)3, (int64_t)64, (int64_t)64);
    REQUIRE(face);
    snprintf(args, sizeof args, "%s/utkface/30_0_1_2017.jpg.chip.jpg", d);
    REQUIRE(fu_image_save_jpeg(args, face, 90) == FU_OK);
    snprintf(args, sizeof args, "%s/celeba/000001.jpg", d);
    REQUIRE(fu_image_save_jpeg(args, face, 90) == FU_OK);
    fu_tensor_free(face);
    snprintf(args, sizeof args, "eval upscale --data %s --out %s --quiet --lfw-pairs 0 --utk-per-class 1 --celeba 1", d, o);
    int rc = run_faceup(args, out, sizeof out, err, sizeof err);
    CHECK_MSG(rc == FU_E_INPUT, "exit %d (%s)", rc, err);
    CHECK(strstr(err, "expected layout: utkface/images/") && count_newlines(err) == 1);
    CHECK(!file_exists(o));
}
