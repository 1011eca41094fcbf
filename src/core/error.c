#include "error.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char last_msg[512];
static _Thread_local int last_code;

static void set_msg(int code, const char *fmt, va_list ap) {
    vsnprintf(last_msg, sizeof last_msg, fmt, ap);
    last_code = code;
}

int fu_fail(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    set_msg(code, fmt, ap);
    va_end(ap);
    return code;
}

void *fu_fail_null(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    set_msg(code, fmt, ap);
    va_end(ap);
    return NULL;
}

const char *fu_last_error(void) { return last_msg; }
int fu_last_code(void) { return last_code; }
int fu_failure_code(void) { return last_code != FU_OK ? last_code : FU_E_INTERNAL; }
void fu_clear_error(void) { last_msg[0] = 0; last_code = FU_OK; }

void *fu_malloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) return fu_fail_null(FU_E_INTERNAL, "out of memory (%zu bytes)", bytes);
    return p;
}

void *fu_calloc(size_t count, size_t size) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) return fu_fail_null(FU_E_INTERNAL, "out of memory (%zu x %zu bytes)", count, size);
    return p;
}

void *fu_aligned_alloc(size_t bytes) {
    size_t rounded = (bytes + 63) / 64 * 64;
    if (rounded < bytes) return fu_fail_null(FU_E_INTERNAL, "allocation size overflow");
    void *p = aligned_alloc(64, rounded ? rounded : 64);
    if (!p) return fu_fail_null(FU_E_INTERNAL, "out of memory (%zu bytes)", bytes);
    return p;
}
