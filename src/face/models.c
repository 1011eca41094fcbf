#include "models.h"
#include <stdio.h>
#include <stdlib.h>

const char *fu_model_path(const char *rel, char *buf, size_t n) {
    const char *env = getenv("FACEUP_MODELS"), *home = getenv("HOME");
    if (env && *env) snprintf(buf, n, "%s/%s", env, rel);
    else snprintf(buf, n, "%s/.cache/faceup/models/%s", home ? home : ".", rel);
    return buf;
}
