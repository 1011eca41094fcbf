/* Losses and loss heads.
 *
 * Every scalar loss returns a [1] tensor. Sums are accumulated in double so that a loss over a
 * whole image does not drift with the element count. Values a backward needs are recomputed
 * from the inputs (cheap next to the networks feeding a loss), except for ArcFace, which keeps
 * its normalised rows and cosines (see arcface_buffers). Integer labels are copied into node
 * memory at construction, so the caller's array may go away and re-runs see the same labels. */
#include "ops.h"
#include "error.h"
#include <math.h>
#include <stdint.h>
#include <string.h>

static const int64_t SCALAR_SHAPE[1] = {1};

/* Fails (returns 0) unless a and b have the same shape. */
static int check_same_shape(const char *op, const fu_tensor *a, const fu_tensor *b) {
    if (fu_same_shape(a, b)) return 1;
    char sa[96], sb[96];
    fu_fail(FU_E_INPUT, "%s: shapes %s and %s differ", op, fu_shape_str(a, sa, sizeof sa), fu_shape_str(b, sb, sizeof sb));
    return 0;
}

static int check_not_empty(const char *op, const fu_tensor *t) {
    if (t->numel > 0) return 1;
    fu_fail(FU_E_INPUT, "%s: empty input", op);
    return 0;
}

/* Fails (returns 0) unless every label is in [0, n_classes). Checked before the node exists so
 * that a rejected call leaves nothing in the graph. */
static int check_labels(const char *op, const int *labels, int64_t count, int64_t n_classes) {
    if (!labels) { fu_fail(FU_E_INPUT, "%s: NULL labels", op); return 0; }
    for (int64_t i = 0; i < count; i++)
        if (labels[i] < 0 || labels[i] >= n_classes) {
            fu_fail(FU_E_INPUT, "%s: label %d of row %lld is outside [0, %lld)", op, labels[i], (long long)i, (long long)n_classes);
            return 0;
        }
    return 1;
}

/* ---- MSE and L1: mean over all elements of (a-b)^2 or |a-b| ---- */

enum { PAIR_MSE, PAIR_L1 };

static int pair_loss_forward(fu_node *n) {
    const float *a = n->in[0]->data, *b = n->in[1]->data;
    int64_t count = n->in[0]->numel;
    int l1 = n->ip[0] == PAIR_L1;
    double sum = 0;
    #pragma omp parallel for reduction(+ : sum) schedule(static) if (count > 65536)
    for (int64_t i = 0; i < count; i++) {
        double d = (double)a[i] - b[i];
        sum += l1 ? fabs(d) : d * d;
    }
    n->out->data[0] = (float)(sum / (double)count);
    return FU_OK;
}

static void pair_loss_backward(fu_node *n) {
    const float *a = n->in[0]->data, *b = n->in[1]->data;
    float *ga = fu_in_grad(n, 0), *gb = fu_in_grad(n, 1);
    int64_t count = n->in[0]->numel;
    int l1 = n->ip[0] == PAIR_L1;
    float scale = n->out->grad[0] / (float)count;
    #pragma omp parallel for schedule(static) if (count > 65536)
    for (int64_t i = 0; i < count; i++) {
        float d = a[i] - b[i];
        /* L1: sign(d), 0 at d == 0 as in PyTorch. */
        float g = scale * (l1 ? (float)((d > 0) - (d < 0)) : 2 * d);
        if (ga) ga[i] += g;
        if (gb) gb[i] -= g;
    }
}

static const fu_op op_pair_loss = {"pair_loss", pair_loss_forward, pair_loss_backward, NULL};

static fu_tensor *pair_loss(fu_graph *g, fu_tensor *a, fu_tensor *b, int kind, const char *name) {
    fu_tensor *in[2] = {a, b};
    if (a && b && (!check_same_shape(name, a, b) || !check_not_empty(name, a))) return NULL;
    fu_node *n = fu_node_new(g, &op_pair_loss, in, 2, 1, SCALAR_SHAPE);
    if (!n) return NULL;
    n->ip[0] = kind;
    return fu_node_run(n);
}

fu_tensor *fu_mse_loss(fu_graph *g, fu_tensor *a, fu_tensor *b) { return pair_loss(g, a, b, PAIR_MSE, "mse_loss"); }
fu_tensor *fu_l1_loss(fu_graph *g, fu_tensor *a, fu_tensor *b) { return pair_loss(g, a, b, PAIR_L1, "l1_loss"); }

/* ---- cross-entropy: logits [N, C], mean over rows of logsumexp(row) - row[label] ---- */

static double row_logsumexp(const float *x, int64_t len) {
    float mx = x[0];
    for (int64_t j = 1; j < len; j++) mx = fmaxf(mx, x[j]);
    double s = 0;
    for (int64_t j = 0; j < len; j++) s += exp((double)x[j] - mx);
    return mx + log(s);
}

static int cross_entropy_forward(fu_node *n) {
    const float *x = n->in[0]->data;
    const int *labels = n->saved;
    int64_t rows = n->in[0]->shape[0], classes = n->in[0]->shape[1];
    double sum = 0;
    for (int64_t r = 0; r < rows; r++) {
        const float *row = x + r * classes;
        sum += row_logsumexp(row, classes) - row[labels[r]];
    }
    n->out->data[0] = (float)(sum / (double)rows);
    return FU_OK;
}

/* d/dx[r, c] = (softmax[r, c] - [c == label]) / N. */
static void cross_entropy_backward(fu_node *n) {
    const float *x = n->in[0]->data;
    const int *labels = n->saved;
    float *gx = fu_in_grad(n, 0);
    int64_t rows = n->in[0]->shape[0], classes = n->in[0]->shape[1];
    double scale = n->out->grad[0] / (double)rows;
    #pragma omp parallel for schedule(static) if (rows * classes > 65536)
    for (int64_t r = 0; r < rows; r++) {
        const float *row = x + r * classes;
        double lse = row_logsumexp(row, classes);
        for (int64_t c = 0; c < classes; c++)
            gx[r * classes + c] += (float)(scale * (exp((double)row[c] - lse) - (c == labels[r])));
    }
}

static const fu_op op_cross_entropy = {"cross_entropy", cross_entropy_forward, cross_entropy_backward, NULL};

fu_tensor *fu_cross_entropy(fu_graph *g, fu_tensor *logits, const int *labels) {
    fu_tensor *in[1] = {logits};
    if (logits) {
        if (!fu_check_ndim("cross_entropy", logits, 2) || !check_not_empty("cross_entropy", logits)) return NULL;
        if (!check_labels("cross_entropy", labels, logits->shape[0], logits->shape[1])) return NULL;
    }
    fu_node *n = fu_node_new(g, &op_cross_entropy, in, 1, 1, SCALAR_SHAPE);
    if (!n) return NULL;
    size_t bytes = (size_t)logits->shape[0] * sizeof(int);
    int *copy = fu_node_saved(n, bytes);
    if (!copy) return NULL;
    memcpy(copy, labels, bytes);
    return fu_node_run(n);
}

/* ---- BCE with logits: l = max(x,0) - x*t + log(1 + exp(-|x|)) (never overflows), averaged
 * over the elements or, with a mask w, sum(w*l) / sum(w). A mask summing to <= 0 selects
 * nothing: the loss is 0 and no gradient flows. ---- */

static double bce_term(float x, float t) {
    return fmax(x, 0.0) - (double)x * t + log1p(exp(-fabs((double)x)));
}

static double stable_sigmoid(double x) {
    if (x >= 0) return 1 / (1 + exp(-x));
    double e = exp(x);
    return e / (1 + e);
}

/* Denominator: the mask's sum or the element count. */
static double bce_weight_sum(const fu_node *n) {
    if (n->n_in < 3) return (double)n->in[0]->numel;
    const float *w = n->in[2]->data;
    double s = 0;
    for (int64_t i = 0; i < n->in[2]->numel; i++) s += w[i];
    return s;
}

static int bce_forward(fu_node *n) {
    const float *x = n->in[0]->data, *t = n->in[1]->data, *w = n->n_in > 2 ? n->in[2]->data : NULL;
    double denom = bce_weight_sum(n), sum = 0;
    if (denom <= 0) { n->out->data[0] = 0; return FU_OK; }
    for (int64_t i = 0; i < n->in[0]->numel; i++) sum += (w ? w[i] : 1.0) * bce_term(x[i], t[i]);
    n->out->data[0] = (float)(sum / denom);
    return FU_OK;
}

/* dL/dx = w (sigmoid(x) - t) / W, dL/dt = -w x / W, dL/dw = (l - L) / W with W = sum(w). */
static void bce_backward(fu_node *n) {
    const float *x = n->in[0]->data, *t = n->in[1]->data, *w = n->n_in > 2 ? n->in[2]->data : NULL;
    float *gx = fu_in_grad(n, 0), *gt = fu_in_grad(n, 1), *gw = n->n_in > 2 ? fu_in_grad(n, 2) : NULL;
    double denom = bce_weight_sum(n), loss = n->out->data[0];
    if (denom <= 0) return;
    double scale = n->out->grad[0] / denom;
    for (int64_t i = 0; i < n->in[0]->numel; i++) {
        double wi = w ? w[i] : 1.0;
        if (gx) gx[i] += (float)(scale * wi * (stable_sigmoid(x[i]) - t[i]));
        if (gt) gt[i] += (float)(-scale * wi * x[i]);
        if (gw) gw[i] += (float)(scale * (bce_term(x[i], t[i]) - loss));
    }
}

static const fu_op op_bce = {"bce_with_logits", bce_forward, bce_backward, NULL};

/* A NULL mask means "no mask", so a failed op producing the mask cannot be told apart here. */
fu_tensor *fu_bce_with_logits(fu_graph *g, fu_tensor *logits, fu_tensor *targets, fu_tensor *mask) {
    fu_tensor *in[3] = {logits, targets, mask};
    if (logits && targets) {
        if (!check_same_shape("bce_with_logits", logits, targets) || !check_not_empty("bce_with_logits", logits)) return NULL;
        if (mask && !check_same_shape("bce_with_logits (mask)", logits, mask)) return NULL;
    }
    return fu_node_run(fu_node_new(g, &op_bce, in, mask ? 3 : 2, 1, SCALAR_SHAPE));
}

/* ---- cosine similarity along the last axis, as torch.nn.functional.cosine_similarity:
 * a.b / (max(|a|, eps) * max(|b|, eps)). ---- */

typedef struct { double dot, na, nb; } cos_row;

static cos_row cosine_row(const float *a, const float *b, int64_t len) {
    cos_row r = {0, 0, 0};
    for (int64_t j = 0; j < len; j++) {
        r.dot += (double)a[j] * b[j];
        r.na += (double)a[j] * a[j];
        r.nb += (double)b[j] * b[j];
    }
    r.na = sqrt(r.na);
    r.nb = sqrt(r.nb);
    return r;
}

static int cosine_forward(fu_node *n) {
    int64_t len = fu_dim(n->in[0], -1), rows = n->out->numel;
    double eps = n->fp[0];
    #pragma omp parallel for schedule(static) if (rows * len > 65536)
    for (int64_t r = 0; r < rows; r++) {
        cos_row c = cosine_row(n->in[0]->data + r * len, n->in[1]->data + r * len, len);
        n->out->data[r] = (float)(c.dot / (fmax(c.na, eps) * fmax(c.nb, eps)));
    }
    return FU_OK;
}

/* With a' = max(|a|, eps): d cos/da = b / (a' b') - [|a| > eps] cos a / |a|^2 (the clamp holds
 * the norm constant below eps); symmetric for b. */
static void cosine_backward(fu_node *n) {
    int64_t len = fu_dim(n->in[0], -1), rows = n->out->numel;
    double eps = n->fp[0];
    float *ga = fu_in_grad(n, 0), *gb = fu_in_grad(n, 1);
    #pragma omp parallel for schedule(static) if (rows * len > 65536)
    for (int64_t r = 0; r < rows; r++) {
        const float *a = n->in[0]->data + r * len, *b = n->in[1]->data + r * len;
        cos_row c = cosine_row(a, b, len);
        double ca = fmax(c.na, eps), cb = fmax(c.nb, eps), cosv = c.dot / (ca * cb), gy = n->out->grad[r];
        double cross = gy / (ca * cb);
        double self_a = c.na > eps ? gy * cosv / (c.na * c.na) : 0;
        double self_b = c.nb > eps ? gy * cosv / (c.nb * c.nb) : 0;
        for (int64_t j = 0; j < len; j++) {
            if (ga) ga[r * len + j] += (float)(cross * b[j] - self_a * a[j]);
            if (gb) gb[r * len + j] += (float)(cross * a[j] - self_b * b[j]);
        }
    }
}

static const fu_op op_cosine = {"cosine_similarity", cosine_forward, cosine_backward, NULL};

fu_tensor *fu_cosine_similarity(fu_graph *g, fu_tensor *a, fu_tensor *b, float eps) {
    fu_tensor *in[2] = {a, b};
    if (!a || !b) return fu_node_run(fu_node_new(g, &op_cosine, in, 2, 1, SCALAR_SHAPE));
    if (!check_same_shape("cosine_similarity", a, b) || !check_not_empty("cosine_similarity", a)) return NULL;
    if (!(eps > 0)) return fu_fail_null(FU_E_INPUT, "cosine_similarity: eps must be > 0 (got %g)", (double)eps);
    /* [..., D] -> [...]; a 1-d input gives [1]. */
    int nd = a->ndim > 1 ? a->ndim - 1 : 1;
    const int64_t *shape = a->ndim > 1 ? a->shape : SCALAR_SHAPE;
    fu_node *n = fu_node_new(g, &op_cosine, in, 2, nd, shape);
    if (!n) return NULL;
    n->fp[0] = eps;
    return fu_node_run(n);
}

/* ---- ArcFace logits (Deng et al., additive angular margin).
 *
 * cos[n, c] = e_n/|e_n| . w_c/|w_c| (norms clamped at 1e-12 like F.normalize). Logits are
 * s*cos, except at the label: s*cos(theta + m) = s*(cos*cos(m) - sin(theta)*sin(m)) while
 * theta + m <= pi, i.e. cos > cos(pi - m). Beyond that cos(theta + m) would rise again as theta
 * grows (rewarding a worse angle), so we use the usual non-"easy margin" fallback of the
 * insightface implementation: s*(cos - m*sin(m)), which keeps the target logit decreasing in
 * theta (the fallback is not continuous with the main branch at the threshold). sin(theta) is
 * sqrt(max(1 - cos^2, 1e-12)) so the backward stays finite at cos = +-1. ---- */

#define ARC_NORM_EPS 1e-12
#define ARC_SIN2_FLOOR 1e-12

typedef struct {
    float *e_hat, *w_hat;   /* [N, D], [C, D]: normalised rows */
    float *e_norm, *w_norm; /* [N], [C]: clamped row norms */
    float *cos;             /* [N, C] */
    float *g_cos;           /* [N, C]: backward scratch, dL/dcos */
    float *g_ehat, *g_what; /* [N, D], [C, D]: backward scratch */
    int *labels;            /* [N] */
} arcface_buffers;

static size_t arcface_floats(int64_t N, int64_t C, int64_t D) {
    return (size_t)(2 * N * D + 2 * C * D + N + C + 2 * N * C);
}

/* Carves the node's saved block: floats first, then the labels. */
static arcface_buffers arcface_layout(fu_node *n) {
    int64_t N = n->in[0]->shape[0], C = n->in[1]->shape[0], D = n->in[0]->shape[1];
    arcface_buffers b;
    float *p = n->saved;
    b.e_hat = p; p += N * D;
    b.w_hat = p; p += C * D;
    b.e_norm = p; p += N;
    b.w_norm = p; p += C;
    b.cos = p; p += N * C;
    b.g_cos = p; p += N * C;
    b.g_ehat = p; p += N * D;
    b.g_what = p; p += C * D;
    b.labels = (int *)p;
    return b;
}

static void normalise_rows(const float *x, int64_t rows, int64_t len, float *x_hat, float *norm) {
    for (int64_t r = 0; r < rows; r++) {
        double s = 0;
        for (int64_t j = 0; j < len; j++) s += (double)x[r * len + j] * x[r * len + j];
        double nr = fmax(sqrt(s), ARC_NORM_EPS);
        norm[r] = (float)nr;
        for (int64_t j = 0; j < len; j++) x_hat[r * len + j] = (float)(x[r * len + j] / nr);
    }
}

static double arc_sin(double c) { return sqrt(fmax(1 - c * c, ARC_SIN2_FLOOR)); }

static int arcface_forward(fu_node *n) {
    int64_t N = n->in[0]->shape[0], C = n->in[1]->shape[0], D = n->in[0]->shape[1];
    arcface_buffers b = arcface_layout(n);
    double s = n->fp[0], m = n->fp[1], threshold = cos(M_PI - m);
    normalise_rows(n->in[0]->data, N, D, b.e_hat, b.e_norm);
    normalise_rows(n->in[1]->data, C, D, b.w_hat, b.w_norm);
    #pragma omp parallel for schedule(static) if (N * C * D > 262144)
    for (int64_t i = 0; i < N; i++) {
        for (int64_t c = 0; c < C; c++) {
            double dot = 0;
            for (int64_t j = 0; j < D; j++) dot += (double)b.e_hat[i * D + j] * b.w_hat[c * D + j];
            b.cos[i * C + c] = (float)dot;
            double logit = dot;
            if (c == b.labels[i])
                logit = dot > threshold ? dot * cos(m) - arc_sin(dot) * sin(m) : dot - m * sin(m);
            n->out->data[i * C + c] = (float)(s * logit);
        }
    }
    return FU_OK;
}

/* Gradient through x_hat = x / |x|: (g - x_hat (x_hat . g)) / |x|; a clamped norm is constant. */
static void unnormalise_grad(const float *g_hat, const float *x_hat, const float *norm, int64_t rows, int64_t len, float *gx) {
    #pragma omp parallel for schedule(static) if (rows * len > 65536)
    for (int64_t r = 0; r < rows; r++) {
        const float *gh = g_hat + r * len, *xh = x_hat + r * len;
        double proj = 0;
        if (norm[r] > ARC_NORM_EPS)
            for (int64_t j = 0; j < len; j++) proj += (double)gh[j] * xh[j];
        for (int64_t j = 0; j < len; j++) gx[r * len + j] += (float)((gh[j] - xh[j] * proj) / norm[r]);
    }
}

static void arcface_backward(fu_node *n) {
    int64_t N = n->in[0]->shape[0], C = n->in[1]->shape[0], D = n->in[0]->shape[1];
    arcface_buffers b = arcface_layout(n);
    double s = n->fp[0], m = n->fp[1], threshold = cos(M_PI - m);
    const float *gy = n->out->grad;
    /* dlogit/dcos: s off the label; at the label s*(cos m + sin m * cos / sin theta) on the main
     * branch (the sin floor makes that term constant, hence 0, where it is active), s on the fallback. */
    for (int64_t i = 0; i < N; i++) {
        for (int64_t c = 0; c < C; c++) {
            double cv = b.cos[i * C + c], d = 1;
            if (c == b.labels[i] && cv > threshold)
                d = cos(m) + (1 - cv * cv > ARC_SIN2_FLOOR ? sin(m) * cv / arc_sin(cv) : 0);
            b.g_cos[i * C + c] = (float)(gy[i * C + c] * s * d);
        }
    }
    float *ge = fu_in_grad(n, 0), *gw = fu_in_grad(n, 1);
    if (ge) {
        #pragma omp parallel for schedule(static) if (N * C * D > 262144)
        for (int64_t i = 0; i < N; i++)
            for (int64_t j = 0; j < D; j++) {
                double acc = 0;
                for (int64_t c = 0; c < C; c++) acc += (double)b.g_cos[i * C + c] * b.w_hat[c * D + j];
                b.g_ehat[i * D + j] = (float)acc;
            }
        unnormalise_grad(b.g_ehat, b.e_hat, b.e_norm, N, D, ge);
    }
    if (gw) {
        #pragma omp parallel for schedule(static) if (N * C * D > 262144)
        for (int64_t c = 0; c < C; c++)
            for (int64_t j = 0; j < D; j++) {
                double acc = 0;
                for (int64_t i = 0; i < N; i++) acc += (double)b.g_cos[i * C + c] * b.e_hat[i * D + j];
                b.g_what[c * D + j] = (float)acc;
            }
        unnormalise_grad(b.g_what, b.w_hat, b.w_norm, C, D, gw);
    }
}

static const fu_op op_arcface = {"arcface_logits", arcface_forward, arcface_backward, NULL};

fu_tensor *fu_arcface_logits(fu_graph *g, fu_tensor *emb, fu_tensor *weight, const int *labels, float s, float m) {
    fu_tensor *in[2] = {emb, weight};
    if (!emb || !weight) return fu_node_run(fu_node_new(g, &op_arcface, in, 2, 1, SCALAR_SHAPE));
    if (!fu_check_ndim("arcface_logits", emb, 2) || !fu_check_ndim("arcface_logits", weight, 2)) return NULL;
    if (!check_not_empty("arcface_logits", emb) || !check_not_empty("arcface_logits", weight)) return NULL;
    if (emb->shape[1] != weight->shape[1])
        return fu_fail_null(FU_E_INPUT, "arcface_logits: embedding size %lld but weight rows of %lld",
                            (long long)emb->shape[1], (long long)weight->shape[1]);
    if (!(s > 0) || !(m >= 0 && m < M_PI / 2))
        return fu_fail_null(FU_E_INPUT, "arcface_logits: need s > 0 and 0 <= m < pi/2 (got s=%g, m=%g)", (double)s, (double)m);
    int64_t N = emb->shape[0], C = weight->shape[0], D = emb->shape[1];
    if (!check_labels("arcface_logits", labels, N, C)) return NULL;
    int64_t shape[2] = {N, C};
    fu_node *n = fu_node_new(g, &op_arcface, in, 2, 2, shape);
    if (!n) return NULL;
    if (!fu_node_saved(n, arcface_floats(N, C, D) * sizeof(float) + (size_t)N * sizeof(int))) return NULL;
    memcpy(arcface_layout(n).labels, labels, (size_t)N * sizeof(int));
    n->fp[0] = s;
    n->fp[1] = m;
    return fu_node_run(n);
}

/* ---- GEOCROSS (PULSE): for latent [N, L, D],
 *   value = sum_n mean_{i,j in [0,L)} D * Dist_ij^2 / 8,
 *   Dist_ij = 2 atan2(A, B), A = sqrt(|x_i - x_j|^2 + 1e-9), B = sqrt(|x_i + x_j|^2 + 1e-9),
 * over all L*L ordered pairs including i == j (the geodesic angle between rows; see
 * ../shared/golden/README.md). With theta = atan2(A, B) each pair term is K theta^2,
 * K = 4 D / (8 L^2) = D / (2 L^2). ---- */

#define GEO_EPS 1e-9

typedef struct { double theta, a, b; } geo_pair;

static geo_pair geo_angle(const float *xi, const float *xj, int64_t D) {
    double dd = 0, ss = 0;
    for (int64_t k = 0; k < D; k++) {
        double d = (double)xi[k] - xj[k], s = (double)xi[k] + xj[k];
        dd += d * d;
        ss += s * s;
    }
    geo_pair p;
    p.a = sqrt(dd + GEO_EPS);
    p.b = sqrt(ss + GEO_EPS);
    p.theta = atan2(p.a, p.b);
    return p;
}

static int geocross_forward(fu_node *n) {
    const fu_tensor *x = n->in[0];
    int64_t N = x->shape[0], L = x->shape[1], D = x->shape[2];
    double K = (double)D / (2.0 * (double)(L * L)), sum = 0;
    #pragma omp parallel for collapse(2) reduction(+ : sum) schedule(static) if (N * L * L * D > 262144)
    for (int64_t b = 0; b < N; b++)
        for (int64_t i = 0; i < L; i++) {
            const float *base = x->data + b * L * D;
            for (int64_t j = 0; j < L; j++) {
                double t = geo_angle(base + i * D, base + j * D, D).theta;
                sum += K * t * t;
            }
        }
    n->out->data[0] = (float)sum;
    return FU_OK;
}

/* Pair (i,j) and (j,i) are equal terms; row i collects both, with dtheta/dA = B/(A^2+B^2),
 * dtheta/dB = -A/(A^2+B^2), dA/dx_i = (x_i-x_j)/A, dB/dx_i = (x_i+x_j)/B:
 *   g_i = sum_j 2 * 2K theta [ B/(A(A^2+B^2)) (x_i-x_j) - A/(B(A^2+B^2)) (x_i+x_j) ]. */
static void geocross_backward(fu_node *n) {
    const fu_tensor *x = n->in[0];
    float *gx = fu_in_grad(n, 0);
    int64_t N = x->shape[0], L = x->shape[1], D = x->shape[2];
    double K = (double)D / (2.0 * (double)(L * L)), gy = n->out->grad[0];
    #pragma omp parallel for collapse(2) schedule(static) if (N * L * L * D > 262144)
    for (int64_t b = 0; b < N; b++)
        for (int64_t i = 0; i < L; i++) {
            const float *base = x->data + b * L * D, *xi = base + i * D;
            float *gi = gx + (b * L + i) * D;
            for (int64_t j = 0; j < L; j++) {
                const float *xj = base + j * D;
                geo_pair p = geo_angle(xi, xj, D);
                double r2 = p.a * p.a + p.b * p.b, c = gy * 4 * K * p.theta;
                double cd = c * p.b / (p.a * r2), cs = -c * p.a / (p.b * r2);
                for (int64_t k = 0; k < D; k++)
                    gi[k] += (float)(cd * ((double)xi[k] - xj[k]) + cs * ((double)xi[k] + xj[k]));
            }
        }
}

static const fu_op op_geocross = {"geocross", geocross_forward, geocross_backward, NULL};

fu_tensor *fu_geocross(fu_graph *g, fu_tensor *latent) {
    fu_tensor *in[1] = {latent};
    if (latent && (!fu_check_ndim("geocross", latent, 3) || !check_not_empty("geocross", latent))) return NULL;
    return fu_node_run(fu_node_new(g, &op_geocross, in, 1, 1, SCALAR_SHAPE));
}

fu_tensor *fu_edge_l1_loss(fu_graph *g, fu_tensor *a, fu_tensor *b) {
    if (a && (a->ndim != 4 || !fu_same_shape(a, b))) return fu_fail_null(FU_E_INPUT, "edge_l1_loss: a and b must be [N,C,H,W] of one shape");
    fu_tensor *d[2];
    for (int axis = 2; axis <= 3; axis++) {
        fu_tensor *da = fu_sub(g, fu_slice(g, a, axis, 1, INT64_MAX, 1), fu_slice(g, a, axis, 0, -1, 1));
        fu_tensor *db = fu_sub(g, fu_slice(g, b, axis, 1, INT64_MAX, 1), fu_slice(g, b, axis, 0, -1, 1));
        d[axis - 2] = fu_l1_loss(g, da, db);
    }
    return fu_scale_shift(g, fu_add(g, d[0], d[1]), 0.5f, 0);
}
