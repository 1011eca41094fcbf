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
/* The library's progress callback (fu_progress_fn) drawing the progress bar ctx, the stage as its note. */
void progress_on(void *ctx, int64_t done, int64_t total, const char *stage);
/* The training loops' step report (fu_train_step_fn) drawing the progress bar ctx, the loss as its note. */
void progress_on_step(void *ctx, int64_t step, int64_t steps, double loss);

#endif
