/* Error reporting: functions return a status (or NULL) and leave a one-line message here. */
#ifndef FU_ERROR_H
#define FU_ERROR_H
#include "faceup.h"
#include <stddef.h>

/* Sets the thread's error message (printf-style) and returns code, so callers can write
 * `return fu_fail(FU_E_INPUT, "conv2d: ...")`. */
int fu_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same, for functions returning a pointer. */
void *fu_fail_null(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Code of the last fu_fail on this thread (FU_OK if none since fu_clear_error). */
int fu_last_code(void);
/* The same where a call just failed (returned NULL): FU_E_INTERNAL if it recorded no code. */
int fu_failure_code(void);
void fu_clear_error(void);

/* malloc/calloc that report failure through fu_fail (FU_E_INTERNAL). */
void *fu_malloc(size_t bytes);
void *fu_calloc(size_t count, size_t size);
/* 64-byte aligned allocation (free with free()). */
void *fu_aligned_alloc(size_t bytes);

#endif
