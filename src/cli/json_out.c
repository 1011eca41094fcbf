#include "json_out.h"
#include <stdio.h>
#include <stdlib.h>
#include "core/error.h"
#include "faceup.h"

/* A float as the shortest decimal that reads back to it, so JSON shows 0.002, not 0.0020000000949949026. */
double json_float(float v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%.9g", (double)v);
    for (int prec = 6; prec < 9; prec++) {
        char shorter[32];
        snprintf(shorter, sizeof shorter, "%.*g", prec, (double)v);
        if (strtof(shorter, NULL) == v) return strtod(shorter, NULL);
    }
    return strtod(buf, NULL);
}

void print_json(const cJSON *report) {
    char *text = cJSON_Print(report);
    if (text) printf("%s\n", text);
    free(text);
}

void report_failure(const char *cmd, int json) {
    fprintf(stderr, "faceup %s: %s\n", cmd, fu_last_error());
    if (json) print_json_error(fu_last_error());
}

cJSON *face_file_json(const char *path, const fu_face_file_result *r) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "file", path);
    cJSON_AddStringToObject(o, "status", r->status == FU_OK ? "ok" : "error");
    if (r->status != FU_OK) {
        cJSON_AddStringToObject(o, "error", r->error);
        return o;
    }
    float box[4] = {r->face.det.x0, r->face.det.y0, r->face.det.x1, r->face.det.y1};
    cJSON_AddItemToObject(o, "box", cJSON_CreateFloatArray(box, 4));
    if (r->face.detected) cJSON_AddNumberToObject(o, "score", r->face.det.score);
    else cJSON_AddNullToObject(o, "score");
    return o;
}

void print_json_error(const char *message) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", "error");
    cJSON_AddStringToObject(o, "error", message);
    print_json(o);
    cJSON_Delete(o);
}
