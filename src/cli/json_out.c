#include "json_out.h"
#include <stdio.h>
#include <stdlib.h>

void print_json(const cJSON *report) {
    char *text = cJSON_Print(report);
    if (text) printf("%s\n", text);
    free(text);
}

void print_json_error(const char *message) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", "error");
    cJSON_AddStringToObject(o, "error", message);
    print_json(o);
    cJSON_Delete(o);
}
