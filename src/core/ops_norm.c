/* Normalisation and dropout: instance norm, batch norm, dropout, L2 normalisation.
 *
 * Statistics are accumulated in double (a 1024x1024 plane has a million terms). Every op reads
 * g->training at forward time and records the mode it ran in (in its parameters), so the
 * backward of a run always matches its forward even if the caller flips the mode in between. */
#include "ops.h"
#include "error.h"
#include "rng.h"
#include <math.h>
#include <string.h>

/* The ops' parameters (in fu_node.params); forward writes the ran_* fields. */
typedef struct { int64_t plane; float eps; } instance_norm_params;
enum { BN_GAMMA, BN_BETA, BN_RMEAN, BN_RVAR, BN_OPTIONAL };
typedef struct {
    int64_t plane;
    int64_t input[BN_OPTIONAL];   /* the input index of gamma, beta, running mean and var; -1 = absent */
    float momentum, eps;
    int ran_batch_stats;          /* the last forward normalised with batch statistics */
} batch_norm_params;
typedef struct { int64_t position; float p; int ran_training; } dropout_params;   /* position: the node's index */
typedef struct { int64_t len, inner; float eps; } l2_normalize_params;
_Static_assert(sizeof(batch_norm_params) <= FU_NODE_PARAM_BYTES, "batch_norm_params does not fit in a node");

/* Product of shape[from..ndim-1]. */
static int64_t inner_size(const fu_tensor *t, int from) {
    int64_t s = 1;
    for (int i = from; i < t->ndim; i++) s *= t->shape[i];
    return s;
}

/* ---- instance norm ----------------------------------------------------------------------
 * x [N, C, ...]: each (n, c) plane of S = prod(shape[2:]) values is normalised with its own
 * mean and biased variance: y = (x - mean) / sqrt(var + eps).
 * saved: mean[N*C], invstd[N*C]. */

static int instance_norm_forward(fu_node *n) {
    const instance_norm_params *q = FU_NODE_PARAMS(n, instance_norm_params);
    int64_t S = q->plane, planes = n->out->numel / S;
    float eps = q->eps;
    float *stats = fu_node_saved(n, (size_t)planes * 2 * sizeof(float));
    if (!stats) return FU_E_INTERNAL;
    const float *x = n->in[0]->data;
    float *y = n->out->data;
    #pragma omp parallel for schedule(static) if (n->out->numel > 32768)
    for (int64_t p = 0; p < planes; p++) {
        const float *xp = x + p * S;
        double sum = 0, sq = 0;
        for (int64_t i = 0; i < S; i++) sum += xp[i];
        double mean = sum / (double)S;
        for (int64_t i = 0; i < S; i++) { double d = xp[i] - mean; sq += d * d; }
        float invstd = (float)(1.0 / sqrt(sq / (double)S + eps));
        stats[p] = (float)mean;
        stats[planes + p] = invstd;
        float m = (float)mean, *yp = y + p * S;
        for (int64_t i = 0; i < S; i++) yp[i] = (xp[i] - m) * invstd;
    }
    return FU_OK;
}

/* dx = invstd * (dy - mean(dy) - xhat * mean(dy * xhat)), per plane. */
static void instance_norm_backward(fu_node *n) {
    float *gx = fu_in_grad(n, 0);
    if (!gx) return;
    int64_t S = FU_NODE_PARAMS(n, instance_norm_params)->plane, planes = n->out->numel / S;
    const float *stats = n->saved, *x = n->in[0]->data, *gy = n->out->grad;
    #pragma omp parallel for schedule(static) if (n->out->numel > 32768)
    for (int64_t p = 0; p < planes; p++) {
        const float *xp = x + p * S, *gp = gy + p * S;
        float m = stats[p], invstd = stats[planes + p];
        double sg = 0, sgx = 0;
        for (int64_t i = 0; i < S; i++) {
            sg += gp[i];
            sgx += (double)gp[i] * ((xp[i] - m) * invstd);
        }
        float mg = (float)(sg / (double)S), mgx = (float)(sgx / (double)S);
        float *gxp = gx + p * S;
        for (int64_t i = 0; i < S; i++) gxp[i] += invstd * (gp[i] - mg - (xp[i] - m) * invstd * mgx);
    }
}

static const fu_op op_instance_norm = {"instance_norm", instance_norm_forward, instance_norm_backward, NULL};

fu_tensor *fu_instance_norm(fu_graph *g, fu_tensor *x, float eps) {
    if (!x) return fu_node_run(fu_node_new(g, &op_instance_norm, &x, 1, 0, NULL));
    char buf[96];
    if (x->ndim < 3) return fu_fail_null(FU_E_INPUT, "instance_norm: expected [N,C,...] with at least 3 dims, got %s", fu_shape_str(x, buf, sizeof buf));
    if (!(eps >= 0) || isinf(eps)) return fu_fail_null(FU_E_INPUT, "instance_norm: eps must be finite and >= 0, got %g", (double)eps);
    if (x->numel == 0) return fu_fail_null(FU_E_INPUT, "instance_norm: empty input %s", fu_shape_str(x, buf, sizeof buf));
    fu_node *n = fu_node_new(g, &op_instance_norm, &x, 1, x->ndim, x->shape);
    if (!n) return NULL;
    instance_norm_params q = {inner_size(x, 2), eps};
    memcpy(n->params, &q, sizeof q);
    return fu_node_run(n);
}

/* ---- batch norm -------------------------------------------------------------------------
 * x [N, C, ...]; channel c covers M = N * S values (S = prod(shape[2:])) at x[(b*C + c)*S + s].
 * Inputs: in[0] = x, then whichever of gamma, beta, running_mean, running_var were given.
 * saved: mean[C], invstd[C] of the statistics the last forward normalised with.
 * Running statistics are updated once per forward *run* in training mode, so every
 * fu_graph_forward() re-run of a training graph (e.g. each step of a latent search, or each
 * evaluation of a gradient check) updates them again. They receive no gradient. */

static batch_norm_params *bn_params(fu_node *n) { return (batch_norm_params *)(void *)n->params; }

static float *bn_input(fu_node *n, int which) {
    int64_t i = bn_params(n)->input[which];
    return i >= 0 ? n->in[i]->data : NULL;
}

/* Mean and biased variance of channel c, in double. */
static void bn_channel_stats(const float *x, int64_t N, int64_t C, int64_t S, int64_t c, double *mean, double *var) {
    double sum = 0, sq = 0;
    for (int64_t b = 0; b < N; b++) {
        const float *xp = x + (b * C + c) * S;
        #pragma omp simd reduction(+ : sum)
        for (int64_t s = 0; s < S; s++) sum += xp[s];
    }
    double m = sum / (double)(N * S);
    for (int64_t b = 0; b < N; b++) {
        const float *xp = x + (b * C + c) * S;
        #pragma omp simd reduction(+ : sq)
        for (int64_t s = 0; s < S; s++) { double d = xp[s] - m; sq += d * d; }
    }
    *mean = m;
    *var = sq / (double)(N * S);
}

static int batch_norm_forward(fu_node *n) {
    const fu_tensor *xt = n->in[0];
    batch_norm_params *q = bn_params(n);
    int64_t N = xt->shape[0], C = xt->shape[1], S = q->plane, M = N * S;
    float momentum = q->momentum, eps = q->eps;
    float *rmean = bn_input(n, BN_RMEAN), *rvar = bn_input(n, BN_RVAR);
    const float *gamma = bn_input(n, BN_GAMMA), *beta = bn_input(n, BN_BETA);
    /* Without running statistics (PyTorch's track_running_stats=False) batch stats are always used. */
    int use_batch = n->graph->training || !rmean;
    if (use_batch && M < 2) return fu_fail(FU_E_INPUT, "batch_norm: batch statistics need more than 1 value per channel, got %lld", (long long)M);
    float *stats = fu_node_saved(n, (size_t)C * 2 * sizeof(float));
    if (!stats) return FU_E_INTERNAL;
    q->ran_batch_stats = use_batch;
    const float *x = xt->data;
    float *y = n->out->data;
    #pragma omp parallel for schedule(static) if (xt->numel > 32768 && C > 1)
    for (int64_t c = 0; c < C; c++) {
        double mean, var;
        if (use_batch) {
            bn_channel_stats(x, N, C, S, c, &mean, &var);
            if (n->graph->training && rmean) {
                /* PyTorch convention: new = (1 - m) * old + m * batch, unbiased variance. */
                rmean[c] = (1 - momentum) * rmean[c] + momentum * (float)mean;
                rvar[c] = (1 - momentum) * rvar[c] + momentum * (float)(var * (double)M / (double)(M - 1));
            }
        } else {
            mean = rmean[c];
            var = rvar[c];
        }
        float invstd = (float)(1.0 / sqrt(var + eps)), m = (float)mean;
        stats[c] = m;
        stats[C + c] = invstd;
        float scale = gamma ? gamma[c] * invstd : invstd, shift = beta ? beta[c] : 0;
        for (int64_t b = 0; b < N; b++) {
            const float *xp = x + (b * C + c) * S;
            float *yp = y + (b * C + c) * S;
            #pragma omp simd
            for (int64_t s = 0; s < S; s++) yp[s] = (xp[s] - m) * scale + shift;
        }
    }
    return FU_OK;
}

/* Training: dx = gamma*invstd * (dy - mean(dy) - xhat * mean(dy * xhat)) over the channel's
 * M values (the batch statistics depend on x). Eval: dx = gamma*invstd * dy.
 * dgamma = sum(dy * xhat), dbeta = sum(dy) in both modes. */
static void batch_norm_backward(fu_node *n) {
    const fu_tensor *xt = n->in[0];
    const batch_norm_params *q = bn_params(n);
    int64_t N = xt->shape[0], C = xt->shape[1], S = q->plane, M = N * S;
    const float *stats = n->saved, *x = xt->data, *gy = n->out->grad;
    const float *gamma = bn_input(n, BN_GAMMA);
    float *gx = fu_in_grad(n, 0);
    float *ggamma = q->input[BN_GAMMA] >= 0 ? fu_in_grad(n, (int)q->input[BN_GAMMA]) : NULL;
    float *gbeta = q->input[BN_BETA] >= 0 ? fu_in_grad(n, (int)q->input[BN_BETA]) : NULL;
    int used_batch = q->ran_batch_stats;
    #pragma omp parallel for schedule(static) if (xt->numel > 32768 && C > 1)
    for (int64_t c = 0; c < C; c++) {
        float m = stats[c], invstd = stats[C + c];
        double sg = 0, sgx = 0;
        for (int64_t b = 0; b < N; b++) {
            const float *xp = x + (b * C + c) * S, *gp = gy + (b * C + c) * S;
            #pragma omp simd reduction(+ : sg, sgx)
            for (int64_t s = 0; s < S; s++) {
                sg += gp[s];
                sgx += (double)gp[s] * ((xp[s] - m) * invstd);
            }
        }
        if (ggamma) ggamma[c] += (float)sgx;
        if (gbeta) gbeta[c] += (float)sg;
        if (!gx) continue;
        float scale = gamma ? gamma[c] * invstd : invstd;
        float mg = used_batch ? (float)(sg / (double)M) : 0, mgx = used_batch ? (float)(sgx / (double)M) : 0;
        for (int64_t b = 0; b < N; b++) {
            const float *xp = x + (b * C + c) * S, *gp = gy + (b * C + c) * S;
            float *gxp = gx + (b * C + c) * S;
            #pragma omp simd
            for (int64_t s = 0; s < S; s++) gxp[s] += scale * (gp[s] - mg - (xp[s] - m) * invstd * mgx);
        }
    }
}

static const fu_op op_batch_norm = {"batch_norm", batch_norm_forward, batch_norm_backward, NULL};

static int check_channel_vector(const fu_tensor *t, int64_t C, const char *what) {
    if (!t || (t->ndim == 1 && t->shape[0] == C)) return 1;
    char buf[96];
    fu_fail(FU_E_INPUT, "batch_norm: %s must be [%lld], got %s", what, (long long)C, fu_shape_str(t, buf, sizeof buf));
    return 0;
}

fu_tensor *fu_batch_norm(fu_graph *g, fu_tensor *x, fu_tensor *gamma, fu_tensor *beta,
                         fu_tensor *running_mean, fu_tensor *running_var, float momentum, float eps) {
    if (!x) return fu_node_run(fu_node_new(g, &op_batch_norm, &x, 1, 0, NULL));
    char buf[96];
    if (x->ndim < 2 || x->numel == 0) return fu_fail_null(FU_E_INPUT, "batch_norm: expected a non-empty [N,C,...] tensor, got %s", fu_shape_str(x, buf, sizeof buf));
    int64_t C = x->shape[1];
    if (!check_channel_vector(gamma, C, "gamma") || !check_channel_vector(beta, C, "beta") ||
        !check_channel_vector(running_mean, C, "running_mean") || !check_channel_vector(running_var, C, "running_var"))
        return NULL;
    if (!running_mean != !running_var) return fu_fail_null(FU_E_INPUT, "batch_norm: give both running_mean and running_var or neither");
    if (!(momentum >= 0 && momentum <= 1)) return fu_fail_null(FU_E_INPUT, "batch_norm: momentum must be in [0, 1], got %g", (double)momentum);
    if (!(eps >= 0) || isinf(eps)) return fu_fail_null(FU_E_INPUT, "batch_norm: eps must be finite and >= 0, got %g", (double)eps);
    fu_tensor *in[1 + BN_OPTIONAL] = {x};
    batch_norm_params q = {inner_size(x, 2), {0}, momentum, eps, 0};
    fu_tensor *opt[BN_OPTIONAL] = {gamma, beta, running_mean, running_var};
    int n_in = 1;
    for (int i = 0; i < BN_OPTIONAL; i++) {
        q.input[i] = opt[i] ? n_in : -1;
        if (opt[i]) in[n_in++] = opt[i];
    }
    fu_node *n = fu_node_new(g, &op_batch_norm, in, n_in, x->ndim, x->shape);
    if (!n) return NULL;
    memcpy(n->params, &q, sizeof q);
    return fu_node_run(n);
}

/* ---- dropout ----------------------------------------------------------------------------
 * Training: y = x * mask, mask = 1/(1-p) with probability 1-p, else 0 (0 everywhere if p = 1).
 * The mask is drawn on every forward from an RNG seeded by g->seed and the node's position in
 * the graph, so re-running an unchanged graph draws the same mask; change g->seed to draw new
 * ones. saved: the mask (numel floats), which backward multiplies by. */

static int dropout_forward(fu_node *n) {
    int64_t N = n->out->numel;
    const float *x = n->in[0]->data;
    float *y = n->out->data;
    dropout_params *q = (dropout_params *)(void *)n->params;
    q->ran_training = n->graph->training;
    if (!n->graph->training) {
        memcpy(y, x, (size_t)N * sizeof(float));
        return FU_OK;
    }
    float *mask = fu_node_saved(n, (size_t)N * sizeof(float));
    if (!mask) return FU_E_INTERNAL;
    float p = q->p, keep = p < 1 ? 1 / (1 - p) : 0;
    fu_rng r;
    fu_rng_seed(&r, n->graph->seed ^ (0x9e3779b97f4a7c15ull * (uint64_t)(q->position + 1)));
    for (int64_t i = 0; i < N; i++) {
        mask[i] = fu_rng_uniform(&r) >= p ? keep : 0;
        y[i] = x[i] * mask[i];
    }
    return FU_OK;
}

static void dropout_backward(fu_node *n) {
    float *gx = fu_in_grad(n, 0);
    if (!gx) return;
    const float *gy = n->out->grad, *mask = n->saved;
    int64_t N = n->out->numel;
    if (!FU_NODE_PARAMS(n, dropout_params)->ran_training) {
        for (int64_t i = 0; i < N; i++) gx[i] += gy[i];
        return;
    }
    for (int64_t i = 0; i < N; i++) gx[i] += gy[i] * mask[i];
}

static const fu_op op_dropout = {"dropout", dropout_forward, dropout_backward, NULL};

fu_tensor *fu_dropout(fu_graph *g, fu_tensor *x, float p) {
    if (!x) return fu_node_run(fu_node_new(g, &op_dropout, &x, 1, 0, NULL));
    if (!(p >= 0 && p <= 1)) return fu_fail_null(FU_E_INPUT, "dropout: p must be in [0, 1], got %g", (double)p);
    fu_node *n = fu_node_new(g, &op_dropout, &x, 1, x->ndim, x->shape);
    if (!n) return NULL;
    dropout_params q = {g->n_nodes - 1, p, 0};
    memcpy(n->params, &q, sizeof q);
    return fu_node_run(n);
}

/* ---- L2 normalisation -------------------------------------------------------------------
 * x viewed as [outer, len, inner] around `axis`: y = x / max(||x||, eps) over len.
 * saved: the norm of each (outer, inner) fibre. */

static int l2_normalize_forward(fu_node *n) {
    const l2_normalize_params *q = FU_NODE_PARAMS(n, l2_normalize_params);
    int64_t len = q->len, inner = q->inner, outer = n->out->numel / (len * inner);
    float eps = q->eps;
    float *norms = fu_node_saved(n, (size_t)(outer * inner) * sizeof(float));
    if (!norms) return FU_E_INTERNAL;
    const float *x = n->in[0]->data;
    float *y = n->out->data;
    #pragma omp parallel for schedule(static) if (n->out->numel > 65536)
    for (int64_t f = 0; f < outer * inner; f++) {
        const float *xf = x + (f / inner) * len * inner + f % inner;
        float *yf = y + (f / inner) * len * inner + f % inner;
        double sq = 0;
        for (int64_t k = 0; k < len; k++) sq += (double)xf[k * inner] * xf[k * inner];
        float norm = (float)sqrt(sq), inv = 1 / fmaxf(norm, eps);
        norms[f] = norm;
        for (int64_t k = 0; k < len; k++) yf[k * inner] = xf[k * inner] * inv;
    }
    return FU_OK;
}

/* norm > eps: dx = (dy - y * <dy, y>) / norm; otherwise y = x / eps is linear: dx = dy / eps. */
static void l2_normalize_backward(fu_node *n) {
    float *gx = fu_in_grad(n, 0);
    if (!gx) return;
    const l2_normalize_params *q = FU_NODE_PARAMS(n, l2_normalize_params);
    int64_t len = q->len, inner = q->inner, outer = n->out->numel / (len * inner);
    float eps = q->eps;
    const float *norms = n->saved, *y = n->out->data, *gy = n->out->grad;
    #pragma omp parallel for schedule(static) if (n->out->numel > 65536)
    for (int64_t f = 0; f < outer * inner; f++) {
        int64_t base = (f / inner) * len * inner + f % inner;
        float norm = norms[f];
        if (!(norm > eps)) {
            for (int64_t k = 0; k < len; k++) gx[base + k * inner] += gy[base + k * inner] / eps;
            continue;
        }
        double dot = 0;
        for (int64_t k = 0; k < len; k++) dot += (double)gy[base + k * inner] * y[base + k * inner];
        float d = (float)dot;
        for (int64_t k = 0; k < len; k++)
            gx[base + k * inner] += (gy[base + k * inner] - y[base + k * inner] * d) / norm;
    }
}

static const fu_op op_l2_normalize = {"l2_normalize", l2_normalize_forward, l2_normalize_backward, NULL};

fu_tensor *fu_l2_normalize(fu_graph *g, fu_tensor *x, int axis, float eps) {
    if (!x) return fu_node_run(fu_node_new(g, &op_l2_normalize, &x, 1, 0, NULL));
    char buf[96];
    if (axis < -x->ndim || axis >= x->ndim) return fu_fail_null(FU_E_INPUT, "l2_normalize: axis %d out of range for %s", axis, fu_shape_str(x, buf, sizeof buf));
    if (!(eps > 0) || isinf(eps)) return fu_fail_null(FU_E_INPUT, "l2_normalize: eps must be finite and > 0, got %g", (double)eps);
    if (x->numel == 0) return fu_fail_null(FU_E_INPUT, "l2_normalize: empty input %s", fu_shape_str(x, buf, sizeof buf));
    if (axis < 0) axis += x->ndim;
    fu_node *n = fu_node_new(g, &op_l2_normalize, &x, 1, x->ndim, x->shape);
    if (!n) return NULL;
    l2_normalize_params q = {x->shape[axis], inner_size(x, axis + 1), eps};
    memcpy(n->params, &q, sizeof q);
    return fu_node_run(n);
}
