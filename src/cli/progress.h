/* Progress on stderr: a redrawn bar with ETA on a terminal, a plain line every 10% otherwise. */
#ifndef FU_CLI_PROGRESS_H
#define FU_CLI_PROGRESS_H
#include <stdint.h>

typedef struct progress {
    const char *label;
    double start;
    int last_decile, tty, quiet;
} progress;

void progress_start(progress *p, const char *label, int quiet);
/* done of total; note is a short free text (e.g. "loss 0.123"). */
void progress_update(progress *p, long done, long total, const char *note);
void progress_finish(progress *p);
/* Adapters for the library's progress callbacks, ctx being a progress bar: a count of files
 * (face/pipeline.h fu_face_progress_fn) and a count of faces (train/finetune.h fu_faces_progress). */
void progress_on_files(void *ctx, int done, int total);
void progress_on_count(int64_t done, int64_t total, void *ctx);

#endif
