/* Finite-difference gradient checker.
 *
 * build(g, inputs, ctx) builds a graph from leaf inputs and returns its output. The checker
 * projects the output on a fixed random cotangent R (f = sum(out * R), accumulated in double),
 * back-propagates R once for the analytic gradients, then for up to max_checks sampled entries
 * of each input that requires a gradient perturbs the entry by +-eps, re-runs the graph with
 * fu_graph_forward() (so it also tests re-running a built graph) and compares the central
 * difference with the analytic value:
 *     |analytic - numeric| <= atol * scale + rtol * |numeric|,
 * scale = max(1, largest |analytic| entry of that input). */
#ifndef FU_GRADCHECK_H
#define FU_GRADCHECK_H
#include "graph.h"

typedef fu_tensor *(*fu_build_fn)(fu_graph *g, fu_tensor **inputs, void *ctx);

typedef struct fu_gradcheck_opts {
    float eps;        /* default 1e-2 */
    float atol;       /* default 2e-3 */
    float rtol;       /* default 2e-2 */
    int max_checks;   /* per input, default 48 */
    uint64_t seed;    /* for R and the sampled entries */
} fu_gradcheck_opts;

typedef struct fu_gradcheck_result {
    int n_checked, n_failed;
    float worst_err;          /* largest |a - n| / (atol*scale + rtol*|n|); <= 1 passes */
    int worst_input; int64_t worst_index;
    float worst_analytic, worst_numeric;
} fu_gradcheck_result;

/* Returns FU_OK when every checked entry passes, FU_E_INTERNAL (with a message naming the
 * worst entry) when one fails, FU_E_INPUT when the graph could not be built. */
int fu_gradcheck(fu_build_fn build, fu_tensor **inputs, int n_inputs, void *ctx,
                 const fu_gradcheck_opts *opts, fu_gradcheck_result *result);

#endif
