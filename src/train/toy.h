/* The engine's self-check: a two-layer conv net learns to tell horizontal from vertical bars in
 * noisy 8x8 images. Used by `faceup selfcheck` and the end-to-end test; small enough to run in
 * a second, real enough that a broken conv, backward or optimiser makes it fail. */
#ifndef FU_TRAIN_TOY_H
#define FU_TRAIN_TOY_H
#include <stdint.h>
#include "core/optim.h"

typedef struct fu_toy_config {
    int steps;        /* default 150 */
    int batch;        /* default 16 */
    float lr;         /* Adam learning rate, default 0.02 */
    uint64_t seed;    /* weights and data */
} fu_toy_config;

typedef struct fu_toy_result {
    float first_loss, final_loss;   /* cross-entropy of the first and the last batch */
    float accuracy;                 /* on 256 fresh images after training */
} fu_toy_result;

fu_toy_config fu_toy_defaults(void);
/* progress (may be NULL) is called after every step. Returns FU_OK or an error code. */
int fu_toy_train(const fu_toy_config *cfg, fu_toy_result *res,
                 fu_train_step_fn progress, void *ctx);

#endif
