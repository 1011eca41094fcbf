#include "calibration.h"
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "core/error.h"
#include "faceup.h"
#include "face/models.h"
#include "io/fileutil.h"

#define CALIBRATION_MAX_BYTES (1 << 20)

const char *fu_calibration_default_path(char *buf, size_t cap) {
    const char *env = getenv("FACEUP_CALIBRATION");
    if (env && *env) {
        snprintf(buf, cap, "%s", env);
        return buf;
    }
    return fu_shipped_path("models/calibration.json", buf, cap);
}

static cJSON *read_json(const char *path, int missing_ok) {
    if (missing_ok && access(path, F_OK) != 0) return cJSON_CreateObject();
    unsigned char *data;
    size_t size;
    if (fu_read_file(path, CALIBRATION_MAX_BYTES, &data, &size) != FU_OK) return NULL;
    cJSON *root = cJSON_ParseWithLength((const char *)data, size);
    free(data);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return fu_fail_null(FU_E_INPUT, "%s: not a JSON object", path);
    }
    return root;
}

/* cJSON reads a number too large for a double (1e999) as infinity. */
static int finite_number(const cJSON *item) { return cJSON_IsNumber(item) && isfinite(item->valuedouble); }

const char *fu_calibration_key(const char *model, int mirror, char *buf, size_t cap) {
    snprintf(buf, cap, "%s%s", model, mirror ? "+mirror" : "");
    return buf;
}

int fu_calibration_read(const char *path, const char *model, fu_calibration *out) {
    cJSON *root = read_json(path, 0);
    if (!root) return FU_E_INPUT;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, model);
    const cJSON *metric = cJSON_GetObjectItemCaseSensitive(e, "metric"), *t = cJSON_GetObjectItemCaseSensitive(e, "threshold");
    const cJSON *acc = cJSON_GetObjectItemCaseSensitive(e, "lfw_accuracy"), *sd = cJSON_GetObjectItemCaseSensitive(e, "lfw_std");
    const cJSON *pairs = cJSON_GetObjectItemCaseSensitive(e, "pairs");
    int rc = FU_OK;
    if (!e) rc = fu_fail(FU_E_INPUT, "%s: no calibration for %s (run faceup eval lfw --model %s --write-calibration)", path, model, model);
    else if (!cJSON_IsString(metric) || strlen(metric->valuestring) >= sizeof out->metric || !finite_number(t))
        rc = fu_fail(FU_E_INPUT, "%s: %s needs a string \"metric\" and a finite number \"threshold\"", path, model);
    else if ((acc && !finite_number(acc)) || (sd && !finite_number(sd)) || (pairs && !finite_number(pairs)))
        rc = fu_fail(FU_E_INPUT, "%s: %s: \"lfw_accuracy\", \"lfw_std\" and \"pairs\" must be finite numbers", path, model);
    if (rc == FU_OK) {
        memset(out, 0, sizeof *out);
        snprintf(out->metric, sizeof out->metric, "%s", metric->valuestring);
        out->threshold = t->valuedouble;
        out->lfw_accuracy = acc ? acc->valuedouble : 0;
        out->lfw_std = sd ? sd->valuedouble : 0;
        out->pairs = pairs ? pairs->valueint : 0;
    }
    cJSON_Delete(root);
    return rc;
}

int fu_calibration_write(const char *path, const char *model, const fu_calibration *cal) {
    cJSON *root = read_json(path, 1);
    if (!root) return FU_E_INPUT;
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "metric", cal->metric);
    cJSON_AddNumberToObject(e, "threshold", cal->threshold);
    cJSON_AddNumberToObject(e, "lfw_accuracy", cal->lfw_accuracy);
    cJSON_AddNumberToObject(e, "lfw_std", cal->lfw_std);
    cJSON_AddNumberToObject(e, "pairs", cal->pairs);
    if (cJSON_HasObjectItem(root, model)) cJSON_ReplaceItemInObjectCaseSensitive(root, model, e);
    else cJSON_AddItemToObject(root, model, e);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) return fu_fail(FU_E_INTERNAL, "out of memory");
    size_t len = strlen(text);
    text[len] = '\n';   /* cJSON_Print leaves no final newline; its buffer has the NUL's byte */
    int rc = fu_write_file_atomic(path, text, len + 1);
    cJSON_free(text);
    return rc;
}
