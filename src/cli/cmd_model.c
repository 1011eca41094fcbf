/* faceup model info FILE...: lists the tensors of weight files (.safetensors, .pt). */
#include <stdio.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "args.h"
#include "commands.h"
#include "faceup.h"
#include "gen/weights.h"

/* One file as a JSON object (cJSON escapes names that come from the file). */
static cJSON *info_json(const fu_weights *w, const char *path) {
    cJSON *obj = cJSON_CreateObject(), *list = cJSON_AddArrayToObject(obj, "tensors");
    cJSON_AddStringToObject(obj, "file", path);
    double total = 0;
    for (size_t i = 0; i < fu_weights_count(w); i++) {
        const char *name = fu_weights_name(w, i);
        int64_t shape[FU_MAX_DIMS];
        int nd = fu_weights_shape(w, name, shape);
        cJSON *t = cJSON_CreateObject(), *dims = cJSON_AddArrayToObject(t, "shape");
        cJSON_AddStringToObject(t, "name", name);
        double numel = 1;
        for (int k = 0; k < nd; k++) {
            cJSON_AddItemToArray(dims, cJSON_CreateNumber((double)shape[k]));
            numel *= (double)shape[k];
        }
        total += numel;
        cJSON_AddItemToArray(list, t);
    }
    cJSON_AddNumberToObject(obj, "parameters", total);
    return obj;
}

static void info_text(const fu_weights *w, const char *path) {
    long long total = 0;
    printf("%s: %zu tensors\n", path, fu_weights_count(w));
    for (size_t i = 0; i < fu_weights_count(w); i++) {
        const char *name = fu_weights_name(w, i);
        int64_t shape[FU_MAX_DIMS];
        int nd = fu_weights_shape(w, name, shape);
        long long numel = 1;
        printf("  %-48s [", name);
        for (int k = 0; k < nd; k++) {
            printf(k ? ",%lld" : "%lld", (long long)shape[k]);
            numel *= shape[k];
        }
        printf("]\n");
        total += numel;
    }
    printf("  %lld parameters\n", total);
}

int cmd_model(int argc, char **argv) {
    if (argc < 1 || strcmp(argv[0], "info")) {
        fprintf(stderr, "faceup model: usage: faceup model info [--json] FILE...\n");
        return FU_E_INPUT;
    }
    int json = 0;
    char *files[256];
    arg_spec specs[] = {{"--json", ARG_FLAG, &json, 0, 0, "print JSON on stdout"}, {0}};
    int n = args_parse("model info", "[--json] FILE...", specs, argc - 1, argv + 1, files, 256);
    if (n == -2) return FU_OK;
    if (n <= 0) {
        if (n == 0) fprintf(stderr, "faceup model info: no file given\n");
        return FU_E_INPUT;
    }
    int rc = FU_OK;
    cJSON *all = json ? cJSON_CreateArray() : NULL;
    for (int i = 0; i < n; i++) {
        fu_weights *w;
        if (fu_weights_open(files[i], &w) != FU_OK) {
            fprintf(stderr, "faceup model info: %s\n", fu_last_error());
            rc = FU_E_INPUT;  /* the other files are still listed */
            continue;
        }
        if (json) cJSON_AddItemToArray(all, info_json(w, files[i]));
        else info_text(w, files[i]);
        fu_weights_free(w);
    }
    if (json) {
        char *text = cJSON_Print(all);
        if (text) puts(text);
        cJSON_free(text);
        cJSON_Delete(all);
    }
    return rc;
}
