/* Training-step benchmark of the sharpening stage, faceup side; bench/sharp/run.sh runs it and the
 * PyTorch peer (bench/sharp/torch_sharp_step.py) on the same model.
 *
 *   bench_sharp MODEL.safetensors BATCH STEPS
 *
 * MODEL is a sharp generator (gen/sharp.h). Runs STEPS steps of `faceup train sharp`
 * (train/train_sharp.h) from its VAE and stage, the discriminator fresh and active from the first
 * step, on random faces at the model's resolution (a step's cost does not depend on the pixels),
 * and prints the median milliseconds per step; the first step (graph and primitive set-up) is
 * left out. Threads from FACEUP_THREADS. */
#include "core/rng.h"
#include "faceup.h"
#include "gen/sharp.h"
#include "train/train_sharp.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct { double *stamps; int n; } step_clock;

static void on_step(const fu_sharp_train_status *s, void *ctx) {
    (void)s;
    step_clock *c = ctx;
    c->stamps[c->n++] = now_s();
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* count random faces of side S, all in the train split. */
static fu_faces *random_faces(int S, int64_t count) {
    fu_faces *set = calloc(1, sizeof *set);
    set->size = S, set->count = count;
    set->labels = calloc((size_t)count, sizeof *set->labels);
    set->pixels = malloc((size_t)(count * 3 * S * S));
    fu_rng r;
    fu_rng_seed(&r, 1);
    for (int64_t i = 0; i < count * 3 * S * S; i++) set->pixels[i] = (uint8_t)fu_rng_below(&r, 256);
    for (int64_t i = 0; i < count; i++) set->labels[i].race = (int8_t)(i % 5);
    return set;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: bench_sharp MODEL.safetensors BATCH STEPS\n");
        return 2;
    }
    fu_sharp m;
    if (fu_sharp_load(argv[1], &m) != FU_OK) {
        fprintf(stderr, "bench_sharp: %s\n", fu_last_error());
        return 2;
    }
    int S = 2 * m.vae->cfg.size, steps = atoi(argv[3]);
    fu_sharp_release(&m);
    fu_faces *set = random_faces(S, 64);
    char dir[] = "/tmp/bench_sharp_XXXXXX", out[64];
    if (!mkdtemp(dir)) { perror("bench_sharp: mkdtemp"); return 2; }
    snprintf(out, sizeof out, "%s/model.safetensors", dir);
    fu_sharp_train_config cfg = fu_sharp_train_defaults();
    cfg.vae = cfg.init = argv[1], cfg.out = out, cfg.batch = atoi(argv[2]), cfg.steps = steps;
    cfg.adv_start = 0, cfg.adv_ramp = 0, cfg.sample_every = 0, cfg.checkpoint_every = 0;
    step_clock c = {calloc((size_t)steps, sizeof(double)), 0};
    int rc = fu_train_sharp(&cfg, set, on_step, &c);
    if (rc == FU_OK && c.n >= 2) {
        for (int i = 0; i + 1 < c.n; i++) c.stamps[i] = c.stamps[i + 1] - c.stamps[i];
        qsort(c.stamps, (size_t)(c.n - 1), sizeof(double), cmp_double);
        printf("%.1f\n", 1000 * c.stamps[(c.n - 1) / 2]);
    } else if (rc != FU_OK) {
        fprintf(stderr, "bench_sharp: %s\n", fu_last_error());
    }
    static const char *const run_files[] = {"model.safetensors", "model.ckpt.safetensors", "model.samples.png",
                                            "model.loss.png", "model.runlog.jsonl"};
    for (size_t i = 0; i < sizeof run_files / sizeof *run_files; i++) {
        char path[96];
        snprintf(path, sizeof path, "%s/%s", dir, run_files[i]);
        remove(path);
    }
    remove(dir);
    free(c.stamps);
    fu_faces_free(set);
    return rc == FU_OK ? 0 : 1;
}
