/* faceup train extractor: ArcFace training of an IR-SE feature extractor, optionally data
 * parallel under mpirun (a build with `make MPI=1`). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "args.h"
#include "commands.h"
#include "progress.h"
#include "faceup.h"
#include "core/error.h"
#include "train/extractor.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void print_summary(const fu_extractor_result *res, const fu_dist *d, int64_t steps, double seconds) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "steps", (double)steps);
    cJSON_AddNumberToObject(o, "steps_run", (double)res->steps_done);
    cJSON_AddNumberToObject(o, "first_loss", res->first_loss);
    cJSON_AddNumberToObject(o, "last_loss", res->last_loss);
    cJSON_AddNumberToObject(o, "ranks", d->size);
    cJSON_AddNumberToObject(o, "seconds", seconds);
    char *s = cJSON_PrintUnformatted(o);
    if (s) printf("%s\n", s);
    free(s);
    cJSON_Delete(o);
}

int cmd_train_extractor(int argc, char **argv) {
    const char *arch = "irse50";
    int steps = 1000, threads = 0, seed = 0, quiet = 0;
    fu_irse_config ac;
    fu_irse_arch("irse50", &ac);
    fu_extractor_config cfg = fu_extractor_defaults(&ac);
    arg_spec specs[] = {
        {"--arch", ARG_STRING, &arch, 0, 0, "irse50 (default), irse100 or irse-tiny"},
        {"--data", ARG_STRING, &cfg.data, 0, 0, "ROOT/<identity>/<images> folder or MXNet .rec (with its .idx)"},
        {"--checkpoint", ARG_STRING, &cfg.checkpoint, 0, 0, "checkpoint file (.safetensors), written atomically"},
        {"--checkpoint-every", ARG_INT, &cfg.checkpoint_every, 0, 1e9, "steps between checkpoints (default 0: at the end)"},
        {"--resume", ARG_STRING, &cfg.resume, 0, 0, "checkpoint to continue from (same setup)"},
        {"--steps", ARG_INT, &steps, 1, 1e9, "total steps (default 1000)"},
        {"--batch", ARG_INT, &cfg.batch, 2, 65536, "global batch (default 128)"},
        {"--shards", ARG_INT, &cfg.shards, 0, 65536, "batch-norm shards of the global batch (default: one per rank)"},
        {"--lr", ARG_FLOAT, &cfg.lr, 0, 100, "SGD learning rate (default 0.1)"},
        {"--momentum", ARG_FLOAT, &cfg.momentum, 0, 0.999, "SGD momentum (default 0.9)"},
        {"--weight-decay", ARG_FLOAT, &cfg.weight_decay, 0, 1, "L2 weight decay (default 5e-4)"},
        {"--scale", ARG_FLOAT, &cfg.scale, 1e-3, 1e3, "ArcFace scale s (default 64)"},
        {"--margin", ARG_FLOAT, &cfg.margin, 0, 1.5, "ArcFace angular margin m (default 0.5)"},
        {"--dropout", ARG_FLOAT, &cfg.arch.dropout, 0, 0.99, "dropout before the embedding layer (default 0)"},
        {"--seed", ARG_INT, &seed, 0, 2147483647, "seed for weights, data order and flips (default 0)"},
        {"--threads", ARG_INT, &threads, 0, 1024, "threads per process (default: FACEUP_THREADS or all cores)"},
        {"--quiet", ARG_FLAG, &quiet, 0, 0, "no progress on stderr"},
        {0},
    };
    int n = args_parse("train extractor", "--data DIR|FILE.rec [flags]", specs, argc, argv, NULL, 0);
    if (n < 0) return n == -2 ? FU_OK : FU_E_INPUT;
    float dropout = cfg.arch.dropout;
    if (fu_irse_arch(arch, &cfg.arch) != FU_OK || !cfg.data) {
        fprintf(stderr, "faceup train extractor: %s\n", cfg.data ? fu_last_error() : "--data is required");
        return FU_E_INPUT;
    }
    cfg.arch.dropout = dropout;
    cfg.steps = steps;
    cfg.seed = (uint64_t)seed;
    fu_set_threads(threads);
    fu_dist dist;
    if (fu_dist_init(&argc, &argv, &dist) != FU_OK) {
        fprintf(stderr, "faceup train extractor: %s\n", fu_last_error());
        return FU_E_INTERNAL;
    }
    progress bar;
    progress_start(&bar, "train extractor", quiet || dist.rank != 0);
    fu_extractor_result res;
    double t0 = now_s();
    int rc = fu_extractor_train(&cfg, &dist, progress_on_step, &bar, &res);
    progress_finish(&bar);
    if (rc != FU_OK) fprintf(stderr, "faceup train extractor (rank %d): %s\n", dist.rank, fu_last_error());
    else if (dist.rank == 0) print_summary(&res, &dist, cfg.steps, now_s() - t0);
    fu_dist_finalize();
    return rc == FU_OK ? FU_OK : (rc == FU_E_INTERNAL ? FU_E_INTERNAL : FU_E_INPUT);
}
