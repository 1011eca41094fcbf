/* faceup embed, compare and analyze on real faces, and their bad-input behaviour (runs
 * $FACEUP_BIN, default build/faceup; needs ../shared/data and the model cache). */
#include "test.h"
#include "util.h"
#include "core/tensor.h"
#include "face/models.h"
#include "io/image.h"
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char out[1 << 20], err[8192];

/* Runs faceup with args; stdout and stderr into out / err; returns the exit status. */
static int faceup(const char *args) {
    const char *bin = getenv("FACEUP_BIN") ? getenv("FACEUP_BIN") : "build/faceup";
    char cmd[4096], fo[512], fe[512];
    snprintf(fo, sizeof fo, "%s/face_cli.out", fu_test_tmpdir());
    snprintf(fe, sizeof fe, "%s/face_cli.err", fu_test_tmpdir());
    snprintf(cmd, sizeof cmd, "%s %s >%s 2>%s </dev/null", bin, args, fo, fe);
    int st = system(cmd);
    const char *paths[2] = {fo, fe};
    char *bufs[2] = {out, err};
    size_t sizes[2] = {sizeof out, sizeof err};
    for (int i = 0; i < 2; i++) {
        FILE *f = fopen(paths[i], "r");
        size_t k = f ? fread(bufs[i], 1, sizes[i] - 1, f) : 0;
        bufs[i][k] = 0;
        if (f) fclose(f);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* The shared data folder, or NULL (the caller skips) when it, the binary or the models are absent. */
static const char *setup(void) {
    const char *bin = getenv("FACEUP_BIN") ? getenv("FACEUP_BIN") : "build/faceup";
    char m[1024];
    if (access(bin, X_OK) != 0 || !file_exists(fu_model_path(FU_BLAZEFACE_MODEL, m, sizeof m))) return NULL;
    return fu_test_shared_dir();
}

static const char *lfw_image(const char *shared, const char *name, int i, char *buf, size_t n) {
    snprintf(buf, n, "%s/data/lfw/images/%s/%s_%04d.jpg", shared, name, name, i);
    return buf;
}

TEST(cli_embed_json_and_errors) {
    const char *shared = setup();
    if (!shared) SKIP("needs build/faceup, ../shared/data and the face models");
    char a[600], args[2048], grey[600];
    lfw_image(shared, "Abel_Pacheco", 1, a, sizeof a);
    snprintf(args, sizeof args, "embed --json %s", a);
    REQUIRE(faceup(args) == 0);
    cJSON *j = cJSON_Parse(out);
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetArrayItem(j, 0), "embedding");
    CHECK(cJSON_GetArraySize(v) == 128);
    cJSON_Delete(j);
    /* a missing file and a picture without a face: one line each, the good file still embedded */
    snprintf(grey, sizeof grey, "%s/grey.png", fu_test_tmpdir());
    fu_tensor *img = fu_tensor_newv(4, 1, 3, 64, 64);
    fu_tensor_fill(img, 0.5f);
    REQUIRE(fu_image_save_png(grey, img) == 0);
    fu_tensor_free(img);
    snprintf(args, sizeof args, "embed --quiet --json --model faceres %s /nonexistent/face.jpg %s", a, grey);
    CHECK(faceup(args) == 2);
    CHECK(lines(err) == 2 && strstr(err, "/nonexistent/face.jpg") && strstr(err, "grey.png: no face found"));
    j = cJSON_Parse(out);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetArrayItem(j, 0), "embedding")) == 1024);
    CHECK(cJSON_GetObjectItem(cJSON_GetArrayItem(j, 1), "error") && cJSON_GetObjectItem(cJSON_GetArrayItem(j, 2), "error"));
    cJSON_Delete(j);
    CHECK(faceup("embed --model arcface x.jpg") == 2 && lines(err) == 1);
    CHECK(faceup("embed") == 2 && lines(err) == 1);
}

/* A same-person pair of LFW's fold 1 (dlib distance 0.23) and a different-person pair, decided
 * with the committed calibration. */
TEST(cli_compare_decides) {
    const char *shared = setup();
    if (!shared) SKIP("needs build/faceup, ../shared/data and the face models");
    if (!file_exists("models/calibration.json")) SKIP("models/calibration.json absent (run from the project root)");
    char a[600], b[600], c[600], args[2048];
    lfw_image(shared, "Akhmed_Zakayev", 1, a, sizeof a);
    lfw_image(shared, "Akhmed_Zakayev", 3, b, sizeof b);
    lfw_image(shared, "Dean_Barker", 1, c, sizeof c);
    snprintf(args, sizeof args, "compare --json --calibration models/calibration.json %s %s", a, b);
    REQUIRE(faceup(args) == 0);
    cJSON *j = cJSON_Parse(out);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(j, "same")) && cJSON_IsTrue(cJSON_GetObjectItem(j, "dlib_same")));
    double cosine = cJSON_GetObjectItem(j, "cosine")->valuedouble, dist = cJSON_GetObjectItem(j, "distance_normalized")->valuedouble;
    CHECK_NEAR(dist * dist, 2 - 2 * cosine, 1e-4);
    cJSON_Delete(j);
    snprintf(args, sizeof args, "compare --json --calibration models/calibration.json %s %s", a, c);
    REQUIRE(faceup(args) == 0);
    j = cJSON_Parse(out);
    CHECK(cJSON_IsFalse(cJSON_GetObjectItem(j, "same")));
    cJSON_Delete(j);
    /* --mirror decides with the mirrored descriptors' own entry (eval lfw --mirror --write-calibration) */
    snprintf(args, sizeof args, "compare --json --mirror --calibration models/calibration.json %s %s", a, b);
    REQUIRE(faceup(args) == 0);
    j = cJSON_Parse(out);
    REQUIRE(j);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(j, "mirror")) && cJSON_IsTrue(cJSON_GetObjectItem(j, "same")));
    CHECK(!strcmp(cJSON_GetObjectItem(j, "metric")->valuestring, "neg-euclidean"));
    CHECK_NEAR(cJSON_GetObjectItem(j, "threshold")->valuedouble, -0.6049, 1e-3);
    CHECK(fabs(cJSON_GetObjectItem(j, "cosine")->valuedouble - cosine) > 1e-6);   /* other descriptors than without --mirror */
    cJSON_Delete(j);
    snprintf(args, sizeof args, "compare %s /nonexistent/b.jpg", a);
    CHECK(faceup(args) == 2 && lines(err) == 1 && strstr(err, "/nonexistent/b.jpg"));
    snprintf(args, sizeof args, "compare %s", a);
    CHECK(faceup(args) == 2 && lines(err) == 1);
}

TEST(cli_analyze_attributes) {
    const char *shared = setup();
    if (!shared) SKIP("needs build/faceup, ../shared/data and the face models");
    char a[600], args[2048];
    snprintf(a, sizeof a, "%s/data/utkface/images/10_0_1_20170104010841239.jpg.chip.jpg", shared);
    snprintf(args, sizeof args, "analyze --quiet --json %s /nonexistent/c.jpg", a);
    CHECK(faceup(args) == 2 && lines(err) == 1 && strstr(err, "/nonexistent/c.jpg"));
    cJSON *j = cJSON_Parse(out), *face = cJSON_GetArrayItem(j, 0);
    const cJSON *race = cJSON_GetObjectItem(face, "race_probabilities"), *emo = cJSON_GetObjectItem(face, "emotion_probabilities");
    REQUIRE(race && emo);
    double sum = 0;
    for (const cJSON *p = race->child; p; p = p->next) sum += p->valuedouble;
    CHECK_NEAR(sum, 1, 1e-3);
    sum = 0;
    for (const cJSON *p = emo->child; p; p = p->next) sum += p->valuedouble;
    CHECK_NEAR(sum, 1, 1e-3);
    CHECK_NEAR(cJSON_GetObjectItem(face, "smiling")->valuedouble, cJSON_GetObjectItem(emo, "happy")->valuedouble, 1e-6);
    double age = cJSON_GetObjectItem(face, "age")->valuedouble;
    CHECK(age >= 15 && age <= 65);
    CHECK(cJSON_GetObjectItem(cJSON_GetArrayItem(j, 1), "error") != NULL);
    cJSON_Delete(j);
}

/* A missing model cache names the file and says how to get the models; eval lfw finds LFW under
 * $FACEUP_SHARED as eval upscale does. */
TEST(cli_missing_models_say_fetch_models_and_eval_lfw_honours_faceup_shared) {
    const char *bin = getenv("FACEUP_BIN") ? getenv("FACEUP_BIN") : "build/faceup";
    if (access(bin, X_OK) != 0) SKIP("faceup binary not built");
    const char *saved = getenv("FACEUP_MODELS");
    char keep[1024] = "";
    if (saved) snprintf(keep, sizeof keep, "%s", saved);
    setenv("FACEUP_MODELS", "/nonexistent/models", 1);
    const char *cmds[] = {"analyze examples/thumb16.png", "embed examples/thumb16.png", "compare examples/thumb16.png examples/thumb16.png",
                          "align examples/thumb16.png -o /nonexistent-out.png", "embed examples/thumb16.png --model faceres"};
    for (int i = 0; i < 5; i++) {
        int rc = faceup(cmds[i]);
        CHECK_MSG(rc == FU_E_INPUT && strstr(err, "/nonexistent/models/") && strstr(err, "tools/fetch-models.sh") && lines(err) == 1,
                  "%s: exit %d (%s)", cmds[i], rc, err);
    }
    if (*keep) setenv("FACEUP_MODELS", keep, 1);
    else unsetenv("FACEUP_MODELS");
    const char *shared = getenv("FACEUP_SHARED");
    snprintf(keep, sizeof keep, "%s", shared ? shared : "");
    setenv("FACEUP_SHARED", "/nonexistent/shared", 1);
    CHECK(faceup("eval lfw --pairs 20 --no-cache --quiet --json") == FU_E_INPUT && strstr(err, "/nonexistent/shared/data/lfw"));
    CHECK(strstr(out, "\"status\":\t\"error\"") != NULL);   /* --json: an error object */
    if (*keep) setenv("FACEUP_SHARED", keep, 1);
    else unsetenv("FACEUP_SHARED");
}

/* a and b are equal strings; a may be NULL (a missing JSON field). */
static int same(const char *a, const char *b) { return a && !strcmp(a, b); }

/* embed and analyze on a good face, an empty file and a text file named .png: the face is
 * processed, each bad file is one stderr line and a record with "status": "error", exit 2. The
 * plain embed output ends the path with a tab (paths may hold spaces); analyze labels its age
 * bins; a failure before any file is read still prints JSON (an error object) with --json. */
TEST(cli_embed_analyze_report_bad_files_and_go_on) {
    const char *shared = setup();
    if (!shared) SKIP("needs build/faceup, ../shared/data and the face models");
    char face[600], spaced[600], empty[600], text[600], args[4096];
    lfw_image(shared, "Abel_Pacheco", 1, face, sizeof face);
    snprintf(spaced, sizeof spaced, "%s/a face.jpg", fu_test_tmpdir());
    snprintf(empty, sizeof empty, "%s/empty.png", fu_test_tmpdir());
    snprintf(text, sizeof text, "%s/text.png", fu_test_tmpdir());
    snprintf(args, sizeof args, "cp %s '%s' && : > %s && echo hello > %s", face, spaced, empty, text);
    REQUIRE(system(args) == 0);
    const char *cmds[] = {"embed", "analyze"};
    for (int c = 0; c < 2; c++) {
        snprintf(args, sizeof args, "%s --json --quiet '%s' %s %s", cmds[c], spaced, empty, text);
        CHECK_MSG(faceup(args) == FU_E_INPUT && lines(err) == 2 && strstr(err, "empty.png") && strstr(err, "text.png"), "%s: %s", cmds[c], err);
        cJSON *j = cJSON_Parse(out);
        CHECK(cJSON_GetArraySize(j) == 3);
        const char *want[3] = {"ok", "error", "error"};
        for (int i = 0; i < 3; i++)
            CHECK_MSG(same(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(j, i), "status")), want[i]), "%s record %d", cmds[c], i);
        if (c == 1) CHECK(cJSON_IsNumber(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(j, 0), "age_bins"), "61+")));
        cJSON_Delete(j);
    }
    snprintf(args, sizeof args, "embed --quiet '%s'", spaced);
    CHECK(faceup(args) == FU_OK && !strncmp(out, spaced, strlen(spaced)) && out[strlen(spaced)] == '\t');
    char models[1024];
    snprintf(models, sizeof models, "%s", getenv("FACEUP_MODELS") ? getenv("FACEUP_MODELS") : "");
    setenv("FACEUP_MODELS", "/nonexistent/models", 1);
    snprintf(args, sizeof args, "embed --json '%s'", spaced);
    int rc = faceup(args);
    if (*models) setenv("FACEUP_MODELS", models, 1);
    else unsetenv("FACEUP_MODELS");
    cJSON *j = cJSON_Parse(out);
    CHECK(rc == FU_E_INPUT && same(cJSON_GetStringValue(cJSON_GetObjectItem(j, "status")), "error"));
    cJSON_Delete(j);
}

/* eval lfw --roc: a labelled plot (axis ends and names, a legend: text boxes of 0.1 grey that the
 * bare plot has none of); a --roc path that cannot be written is refused before any embedding. */
TEST(cli_eval_lfw_roc_is_labelled_and_its_path_checked_first) {
    const char *shared = setup();
    if (!shared) SKIP("needs build/faceup, ../shared/data and the face models");
    char roc[600], args[2048];
    snprintf(roc, sizeof roc, "%s/roc.png", fu_test_tmpdir());
    snprintf(args, sizeof args, "eval lfw --data %s/data/lfw --pairs 20 --no-cache --quiet --roc %s", shared, roc);
    REQUIRE(faceup(args) == FU_OK);
    fu_tensor *img = fu_image_load(roc);
    REQUIRE(img);
    int64_t boxed = 0;
    for (int64_t i = 0; i < img->numel; i++) boxed += fabsf(img->data[i] - 26.0f / 255) < 1e-3f;
    CHECK_MSG(boxed > 3000, "%lld label-box pixels", (long long)boxed);
    fu_tensor_free(img);
    snprintf(args, sizeof args, "eval lfw --data %s/data/lfw --pairs 20 --no-cache --quiet --roc /nonexistent/roc.png", shared);
    CHECK(faceup(args) == FU_E_INPUT && strstr(err, "--roc /nonexistent/roc.png") && strstr(err, "does not exist") && !strstr(out, "LFW"));
}
