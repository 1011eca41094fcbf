/* faceup analyze IMG...: race, gender, age (gear) and emotion, smiling (emotion) of each face. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include "args.h"
#include "commands.h"
#include "core/error.h"
#include "face/analyze.h"
#include "face/pipeline.h"
#include "faceup.h"
#include "json_out.h"
#include "progress.h"

#define MAX_INPUTS 4096

static cJSON *named_probabilities(const float *p, const char *const *names, int n) {
    cJSON *o = cJSON_CreateObject();
    for (int i = 0; i < n; i++) cJSON_AddNumberToObject(o, names[i], p[i]);
    return o;
}

static cJSON *attributes_json(const char *path, const fu_face_file_result *r, const fu_face_attributes *a) {
    cJSON *o = face_file_json(path, r);
    if (r->status != FU_OK) return o;
    cJSON_AddStringToObject(o, "race", fu_race_names[a->race_best]);
    cJSON_AddItemToObject(o, "race_probabilities", named_probabilities(a->race, fu_race_names, FU_N_RACES));
    cJSON_AddStringToObject(o, "gender", a->p_male > a->p_female ? "male" : "female");
    cJSON *g = cJSON_AddObjectToObject(o, "gender_probabilities");
    cJSON_AddNumberToObject(g, "male", a->p_male);
    cJSON_AddNumberToObject(g, "female", a->p_female);
    cJSON_AddNumberToObject(o, "age", a->age);
    static const char *const age_ranges[7] = {"0-20", "21-25", "26-30", "31-40", "41-50", "51-60", "61+"};   /* gear's bins (face/analyze.h) */
    cJSON *bins = cJSON_AddObjectToObject(o, "age_bins");
    for (int b = 0; b < 7; b++) cJSON_AddNumberToObject(bins, age_ranges[b], a->age_bins[b]);
    cJSON_AddStringToObject(o, "emotion", fu_emotion_names[a->emotion_best]);
    cJSON_AddItemToObject(o, "emotion_probabilities", named_probabilities(a->emotion, fu_emotion_names, FU_N_EMOTIONS));
    cJSON_AddNumberToObject(o, "smiling", a->smiling);
    return o;
}

static void print_text(const char *path, const fu_face_attributes *a) {
    printf("%s: %s %.2f, %s %.2f, age %.1f, %s %.2f, smiling %.2f\n", path, fu_race_names[a->race_best], a->race[a->race_best],
           a->p_male > a->p_female ? "male" : "female", a->p_male > a->p_female ? a->p_male : a->p_female, a->age,
           fu_emotion_names[a->emotion_best], a->emotion[a->emotion_best], a->smiling);
}

/* Runs detection, landmarks, gear and emotion on every file. */
static int analyze_files(char **paths, int n, int detect, int batch, int quiet, float **outs, fu_face_file_result *res) {
    fu_face_finder *finder = fu_face_finder_load(detect);
    fu_face_net *nets[2] = {NULL, NULL};
    if (finder) nets[0] = fu_face_net_load(FU_NET_GEAR);
    if (nets[0]) nets[1] = fu_face_net_load(FU_NET_EMOTION);
    int rc = nets[1] ? FU_OK : fu_last_code();
    if (rc == FU_OK) {
        progress pr;
        progress_start(&pr, "analyze", quiet || n < 2);
        rc = fu_face_run_files(finder, nets, 2, (const char *const *)paths, n, batch, outs, res, progress_on, &pr);
        progress_finish(&pr);
    }
    fu_face_net_free(nets[0]);
    fu_face_net_free(nets[1]);
    fu_face_finder_free(finder);
    return rc;
}

static int report(char **inputs, int n, int json, float *const *outs, const fu_face_file_result *res) {
    cJSON *all = json ? cJSON_CreateArray() : NULL;
    int worst = FU_OK;
    for (int i = 0; i < n; i++) {
        fu_face_attributes a;
        if (res[i].status != FU_OK) {
            fprintf(stderr, "faceup analyze: %s\n", res[i].error);
            worst = exit_worst(worst, res[i].status);
        } else {
            fu_face_attributes_read(outs[0] + (size_t)i * FU_GEAR_DIM, outs[1] + (size_t)i * FU_EMOTION_DIM, &a);
            if (!json) print_text(inputs[i], &a);
        }
        if (json) cJSON_AddItemToArray(all, attributes_json(inputs[i], &res[i], &a));
    }
    if (json) {
        char *text = cJSON_Print(all);
        if (text) puts(text);
        cJSON_free(text);
        cJSON_Delete(all);
    }
    return worst;
}

int cmd_analyze(int argc, char **argv) {
    int json = 0, no_detect = 0, batch = 8, quiet = 0, threads = 0;
    arg_spec specs[] = {
        {"--json", ARG_FLAG, &json, 0, 0, "JSON on stdout: per image the attributes with their probabilities"},
        {"--no-detect", ARG_FLAG, &no_detect, 0, 0, "inputs are face crops: the whole image is the face"},
        {"--batch", ARG_INT, &batch, 1, FU_FACE_MAX_BATCH, "faces per network call (default 8)"},
        {"--quiet", ARG_FLAG, &quiet, 0, 0, "no progress on stderr"},
        {"--threads", ARG_INT, &threads, 0, 1024, "threads (default: FACEUP_THREADS or all cores)"},
        {0},
    };
    const char *usage = "IMG... [--json] [--no-detect]\n"
                        "Race (white, black, asian, indian, other), gender and age from human-models' gear network,\n"
                        "emotion (angry, disgust, fear, happy, sad, surprise, neutral) and smiling = P(happy) from its\n"
                        "emotion network, on human's face crop (the blazeface box enlarged 1.4x, square). A file\n"
                        "without a face is reported and the others go on (exit 2 at the end).";
    char *inputs[MAX_INPUTS];
    int n = args_parse("analyze", usage, specs, argc, argv, inputs, MAX_INPUTS);
    if (n < 0) return n == -2 ? FU_OK : FU_E_INPUT;
    if (n == 0) {
        fprintf(stderr, "faceup analyze: needs at least one IMG\n");
        return FU_E_INPUT;
    }
    fu_set_threads(threads);
    float *outs[2] = {calloc((size_t)n * FU_GEAR_DIM, sizeof(float)), calloc((size_t)n * FU_EMOTION_DIM, sizeof(float))};
    fu_face_file_result *res = calloc((size_t)n, sizeof *res);
    int rc = outs[0] && outs[1] && res ? FU_OK : fu_fail(FU_E_INTERNAL, "out of memory");
    if (rc == FU_OK) rc = analyze_files(inputs, n, !no_detect, batch, quiet, outs, res);
    if (rc != FU_OK) report_failure("analyze", json);
    else rc = report(inputs, n, json, outs, res);
    free(outs[0]);
    free(outs[1]);
    free(res);
    return rc == FU_OK ? FU_OK : rc == FU_E_INTERNAL ? FU_E_INTERNAL : FU_E_INPUT;
}
