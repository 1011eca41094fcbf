/* faceup selfcheck: trains the toy conv net and checks that it learned. */
#include <stdio.h>
#include "args.h"
#include "commands.h"
#include "progress.h"
#include "faceup.h"
#include "train/toy.h"

/* The loss a working engine reaches with the defaults (measured: see README); a broken conv,
 * backward or optimiser stays near ln 2 = 0.69. */
#define SELFCHECK_MAX_LOSS 0.1f

int cmd_selfcheck(int argc, char **argv) {
    fu_toy_config cfg = fu_toy_defaults();
    int seed = 1, threads = 0, json = 0, quiet = 0;
    arg_spec specs[] = {
        {"--steps", ARG_INT, &cfg.steps, 1, 100000, "training steps (default 150)"},
        {"--seed", ARG_INT, &seed, 0, 2147483647, "seed for weights and data (default 1)"},
        {"--threads", ARG_INT, &threads, 0, 1024, "threads (default: FACEUP_THREADS or all cores)"},
        {"--json", ARG_FLAG, &json, 0, 0, "print the result as JSON on stdout"},
        {"--quiet", ARG_FLAG, &quiet, 0, 0, "no progress on stderr"},
        {0},
    };
    int n = args_parse("selfcheck", "[flags]", specs, argc, argv, NULL, 0);
    if (n < 0) return n == -2 ? FU_OK : FU_E_INPUT;
    cfg.seed = (uint64_t)seed;
    fu_set_threads(threads);
    progress bar;
    progress_start(&bar, "selfcheck", quiet);
    fu_toy_result res;
    int rc = fu_toy_train(&cfg, &res, progress_on_step, &bar);
    progress_finish(&bar);
    if (rc != FU_OK) {
        fprintf(stderr, "faceup selfcheck: %s\n", fu_last_error());
        return rc;
    }
    int ok = res.final_loss < SELFCHECK_MAX_LOSS;
    if (json)
        printf("{\"first_loss\": %.6f, \"final_loss\": %.6f, \"accuracy\": %.4f, \"threshold\": %.2f, \"passed\": %s}\n",
               res.first_loss, res.final_loss, res.accuracy, SELFCHECK_MAX_LOSS, ok ? "true" : "false");
    else
        printf("selfcheck: loss %.4f -> %.4f in %d steps, accuracy %.1f%% on fresh images: %s\n", res.first_loss,
               res.final_loss, cfg.steps, 100 * res.accuracy, ok ? "engine learns" : "FAILED");
    return ok ? FU_OK : FU_E_INTERNAL;
}
