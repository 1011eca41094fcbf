#include "progress.h"
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void progress_start(progress *p, const char *label, int quiet) {
    p->label = label;
    p->start = now_s();
    p->last_decile = -1;
    p->tty = isatty(2);
    p->quiet = quiet;
}

void progress_update(progress *p, long done, long total, const char *note) {
    if (p->quiet || total <= 0) return;
    double elapsed = now_s() - p->start, eta = done > 0 ? elapsed * (double)(total - done) / (double)done : 0;
    if (p->tty) {
        enum { WIDTH = 30 };
        int fill = (int)(WIDTH * done / total);
        fprintf(stderr, "\r%s [%.*s%*s] %ld/%ld %s eta %.0fs ", p->label, fill,
                "##############################", WIDTH - fill, "", done, total, note ? note : "", eta);
        fflush(stderr);
        return;
    }
    int decile = (int)(10 * done / total);
    if (decile == p->last_decile) return;
    p->last_decile = decile;
    fprintf(stderr, "%s: %ld/%ld %s (%.1fs, eta %.0fs)\n", p->label, done, total, note ? note : "", elapsed, eta);
}

void progress_finish(progress *p) {
    if (!p->quiet && p->tty) fputc('\n', stderr);
}


void progress_on(void *ctx, int64_t done, int64_t total, const char *stage) {
    progress_update(ctx, (long)done, (long)total, stage);
}

void progress_on_step(void *ctx, int64_t step, int64_t steps, double loss) {
    char note[32];
    snprintf(note, sizeof note, "loss %.4f", loss);
    progress_update(ctx, (long)step, (long)steps, note);
}
