/* JSON on stdout for --json: the report, or on failure an error object, so that a script reading
 * stdout always gets JSON. */
#ifndef FU_CLI_JSON_OUT_H
#define FU_CLI_JSON_OUT_H
#include <cjson/cJSON.h>
#include "face/pipeline.h"

/* A float as the shortest decimal that reads back to it, so JSON shows 0.002, not 0.0020000000949949026. */
double json_float(float v);
/* Prints the report, indented, and a newline. */
void print_json(const cJSON *report);
/* {"status": "error", "error": message}. */
void print_json_error(const char *message);
/* A command's failure: "faceup CMD: <the last error>" on stderr, and with json the error object on stdout. */
void report_failure(const char *cmd, int json);

/* One file's record in embed/analyze: {"file", "status": "ok"|"error", and "error" or "box",
 * "score" (null without detection)}; the caller adds the rest to an "ok" record. */
cJSON *face_file_json(const char *path, const fu_face_file_result *r);

#endif
