/* faceup public API: small and stable. The command-line tool is its first client.
 *
 * Status codes double as the process exit codes of the `faceup` command. */
#ifndef FACEUP_H
#define FACEUP_H

#define FACEUP_VERSION "0.1.0"

enum fu_status {
    FU_OK = 0,          /* success */
    FU_E_NO_SOLUTION = 1, /* a search found no result within eps (best attempt still saved) */
    FU_E_INPUT = 2,     /* bad input: usage, flags, file contents, shapes, sizes */
    FU_E_INTERNAL = 3,  /* internal error, including running out of memory */
};

/* The message of the last error on this thread ("" if none). */
const char *fu_last_error(void);

/* Threads used by the engine (OpenMP and oneDNN); 0 = FACEUP_THREADS env var, else all cores. */
void fu_set_threads(int n);
int fu_get_threads(void);

#endif
