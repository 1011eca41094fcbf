#include "gradcheck.h"
#include "error.h"
#include "rng.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static double project(const fu_tensor *out, const float *r) {
    double s = 0;
    for (int64_t i = 0; i < out->numel; i++) s += (double)out->data[i] * r[i];
    return s;
}

static double eval_at(fu_graph *g, fu_tensor *out, const float *r) {
    if (fu_graph_forward(g) != FU_OK) return NAN;
    return project(out, r);
}

static void fill_defaults(fu_gradcheck_opts *o, const fu_gradcheck_opts *in) {
    fu_gradcheck_opts d = {1e-2f, 2e-3f, 2e-2f, 48, 12345};
    *o = in ? *in : d;
    if (o->eps <= 0) o->eps = d.eps;
    if (o->atol <= 0) o->atol = d.atol;
    if (o->rtol <= 0) o->rtol = d.rtol;
    if (o->max_checks <= 0) o->max_checks = d.max_checks;
}

static int check_input(fu_graph *g, fu_tensor *out, const float *r, fu_tensor *x, int xi,
                       const fu_gradcheck_opts *o, fu_rng *rng, fu_gradcheck_result *res) {
    float scale = 1;
    for (int64_t i = 0; i < x->numel; i++) scale = fmaxf(scale, fabsf(x->grad[i]));
    int64_t n = x->numel < o->max_checks ? x->numel : o->max_checks;
    for (int64_t c = 0; c < n; c++) {
        int64_t k = x->numel <= o->max_checks ? c : (int64_t)fu_rng_below(rng, (uint64_t)x->numel);
        float saved = x->data[k];
        x->data[k] = saved + o->eps;
        double fp = eval_at(g, out, r);
        x->data[k] = saved - o->eps;
        double fm = eval_at(g, out, r);
        x->data[k] = saved;
        if (isnan(fp) || isnan(fm)) return FU_E_INPUT;
        float numeric = (float)((fp - fm) / (2.0 * o->eps)), analytic = x->grad[k];
        float err = fabsf(analytic - numeric) / (o->atol * scale + o->rtol * fabsf(numeric));
        res->n_checked++;
        if (!(err <= 1)) res->n_failed++;
        if (!(err <= res->worst_err)) {
            res->worst_err = err;
            res->worst_input = xi;
            res->worst_index = k;
            res->worst_analytic = analytic;
            res->worst_numeric = numeric;
        }
    }
    return FU_OK;
}

int fu_gradcheck(fu_build_fn build, fu_tensor **inputs, int n_inputs, void *ctx,
                 const fu_gradcheck_opts *opts, fu_gradcheck_result *result) {
    fu_gradcheck_opts o;
    fill_defaults(&o, opts);
    fu_gradcheck_result res;
    memset(&res, 0, sizeof res);
    fu_graph *g = fu_graph_new();
    if (!g) return FU_E_INTERNAL;
    int rc = FU_E_INPUT;
    float *r = NULL;
    fu_tensor *out = build(g, inputs, ctx);
    if (!out) goto done;
    r = malloc((size_t)out->numel * sizeof *r);
    if (!r) { rc = fu_fail(FU_E_INTERNAL, "gradcheck: out of memory"); goto done; }
    fu_rng rng;
    fu_rng_seed(&rng, o.seed);
    fu_rng_fill_normal(&rng, r, out->numel, 0, 1);
    for (int i = 0; i < n_inputs; i++) fu_tensor_zero_grad(inputs[i]);
    if ((rc = fu_graph_backward(g, out, r)) != FU_OK) goto done;
    for (int i = 0; i < n_inputs; i++) {
        if (!inputs[i]->requires_grad) continue;
        if ((rc = check_input(g, out, r, inputs[i], i, &o, &rng, &res)) != FU_OK) goto done;
    }
    rc = FU_OK;
    if (res.n_failed)
        rc = fu_fail(FU_E_INTERNAL, "gradcheck: %d of %d entries wrong; worst input %d index %lld: analytic %.6g numeric %.6g",
                     res.n_failed, res.n_checked, res.worst_input, (long long)res.worst_index,
                     res.worst_analytic, res.worst_numeric);
done:
    free(r);
    fu_graph_free(g);
    if (result) *result = res;
    return rc;
}
