#include "models.h"
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "core/error.h"

const char *fu_model_path(const char *rel, char *buf, size_t n) {
    const char *env = getenv("FACEUP_MODELS"), *home = getenv("HOME");
    if (env && *env) snprintf(buf, n, "%s/%s", env, rel);
    else snprintf(buf, n, "%s/.cache/faceup/models/%s", home ? home : ".", rel);
    return buf;
}

const char *fu_model_file(const char *rel, char *buf, size_t n) {
    fu_model_path(rel, buf, n);
    if (access(buf, R_OK) == 0) return buf;
    return fu_fail_null(FU_E_INPUT, "%s: missing: the face models are not installed there (run tools/fetch-models.sh, "
                                    "or point FACEUP_MODELS at a copy)", buf);
}

/* True, with "<dir>/..<under>/<rel>" in buf, when that file is readable. */
static int shipped_at(const char *dir, const char *under, const char *rel, char *buf, size_t n) {
    int k = snprintf(buf, n, "%s/..%s/%s", dir, under, rel);
    return k > 0 && (size_t)k < n && access(buf, R_OK) == 0;
}

const char *fu_shipped_path(const char *rel, char *buf, size_t n) {
    char exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0) {
        exe[len] = 0;
        const char *dir = dirname(exe);
        if (shipped_at(dir, "", rel, buf, n) || shipped_at(dir, "/share/faceup", rel, buf, n)) return buf;
    }
    snprintf(buf, n, "%s", rel);
    return buf;
}
