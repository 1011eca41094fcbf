/* faceup public API: small and stable. The command-line tool is its first client.
 *
 * Status codes double as the process exit codes of the `faceup` command. Only the functions
 * marked FU_API are exported from libfaceup.so (include/faceup.symbols lists them: `make
 * abi-check`). */
#ifndef FACEUP_H
#define FACEUP_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FACEUP_VERSION "0.1.0"

/* Marks the public API: the library is built with -fvisibility=hidden. */
#if defined(__GNUC__) || defined(__clang__)
#define FU_API __attribute__((visibility("default")))
#else
#define FU_API
#endif

enum fu_status {
    FU_OK = 0,          /* success */
    FU_E_NO_SOLUTION = 1, /* a search found no result within eps (best attempt still saved) */
    FU_E_INPUT = 2,     /* bad input: usage, flags, file contents, shapes, sizes */
    FU_E_INTERNAL = 3,  /* internal error, including running out of memory */
};

/* Progress of a long call: `done` of `total` units of its `stage` (a short name such as "faces",
 * naming what is counted). Called from inside the call that took it, on the caller's thread;
 * ctx is the caller's pointer, passed back unchanged. Every faceup function that reports
 * progress takes this type, with its ctx, and allows NULL for none. */
typedef void (*fu_progress_fn)(void *ctx, int64_t done, int64_t total, const char *stage);

/* The message of the last error on this thread ("" if none). */
FU_API const char *fu_last_error(void);

/* Threads used by the engine (OpenMP and oneDNN); 0 = FACEUP_THREADS env var, else all cores. */
FU_API void fu_set_threads(int n);
FU_API int fu_get_threads(void);

#ifdef __cplusplus
}
#endif

#endif
