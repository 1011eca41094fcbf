/* SGD, Adam, PULSE's spherical projection and learning-rate schedules (see optim.h). */
#include "optim.h"
#include "error.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SPHERE_EPS 1e-9  /* PULSE adds 1e-9 to the squared norm before the square root */

fu_optim_config fu_optim_adam_defaults(void) {
    fu_optim_config c = {0};
    c.kind = FU_OPTIM_ADAM;
    c.beta1 = 0.9f;
    c.beta2 = 0.999f;
    c.eps = 1e-8f;
    return c;
}

fu_optim_config fu_optim_sgd_defaults(float momentum) {
    fu_optim_config c = {0};
    c.kind = FU_OPTIM_SGD;
    c.momentum = momentum;
    return c;
}

static int check_config(const fu_optim_config *c) {
    if (c->weight_decay < 0 || !isfinite(c->weight_decay)) return fu_fail(FU_E_INPUT, "optim: weight_decay must be >= 0");
    if (c->kind == FU_OPTIM_SGD) {
        if (!(c->momentum >= 0 && c->momentum < 1) || !(c->dampening >= 0 && c->dampening <= 1))
            return fu_fail(FU_E_INPUT, "optim: SGD needs 0 <= momentum < 1 and 0 <= dampening <= 1");
        if (c->nesterov && (c->momentum <= 0 || c->dampening != 0))
            return fu_fail(FU_E_INPUT, "optim: Nesterov momentum requires momentum > 0 and zero dampening");
        return FU_OK;
    }
    if (c->kind != FU_OPTIM_ADAM) return fu_fail(FU_E_INPUT, "optim: unknown optimiser kind %d", (int)c->kind);
    if (!(c->beta1 >= 0 && c->beta1 < 1) || !(c->beta2 >= 0 && c->beta2 < 1) || !(c->eps > 0))
        return fu_fail(FU_E_INPUT, "optim: Adam needs betas in [0, 1) and eps > 0");
    return FU_OK;
}

static int check_param(fu_tensor *const *params, int i) {
    const fu_tensor *t = params[i];
    if (!t) return fu_fail(FU_E_INPUT, "optim: parameter %d is NULL", i);
    if (!t->requires_grad || !t->grad || t->node)
        return fu_fail(FU_E_INPUT, "optim: parameter %d ('%s') is not a leaf with a gradient", i, t->name);
    for (int k = 0; k < i; k++)
        if (params[k] == t) return fu_fail(FU_E_INPUT, "optim: parameter %d repeats parameter %d", i, k);
    return FU_OK;
}

/* Zeroed buffers: Adam's moments, or SGD's momentum buffer when momentum is used. */
static int alloc_state(fu_optim *o, fu_optim_param *p) {
    size_t bytes = (size_t)p->t->numel * sizeof(float);
    int need_m = o->cfg.kind == FU_OPTIM_ADAM || o->cfg.momentum > 0;
    if (need_m && !(p->m = fu_calloc(1, bytes ? bytes : 1))) return FU_E_INTERNAL;
    if (o->cfg.kind == FU_OPTIM_ADAM && !(p->v = fu_calloc(1, bytes ? bytes : 1))) return FU_E_INTERNAL;
    return FU_OK;
}

fu_optim *fu_optim_new(const fu_optim_config *cfg, fu_tensor *const *params, int n_params) {
    if (!cfg || (!params && n_params > 0) || n_params < 0) return fu_fail_null(FU_E_INPUT, "optim: NULL config or parameter list");
    if (check_config(cfg) != FU_OK) return NULL;
    for (int i = 0; i < n_params; i++)
        if (check_param(params, i) != FU_OK) return NULL;
    fu_optim *o = fu_calloc(1, sizeof *o);
    if (!o) return NULL;
    o->cfg = *cfg;
    o->params = fu_calloc((size_t)(n_params ? n_params : 1), sizeof *o->params);
    if (!o->params) { free(o); return NULL; }
    o->n_params = n_params;
    for (int i = 0; i < n_params; i++) {
        o->params[i].t = params[i];
        if (alloc_state(o, &o->params[i]) != FU_OK) { fu_optim_free(o); return NULL; }
    }
    return o;
}

void fu_optim_free(fu_optim *o) {
    if (!o) return;
    for (int i = 0; i < o->n_params; i++) {
        free(o->params[i].m);
        free(o->params[i].v);
        free(o->params[i].radius);
    }
    free(o->params);
    free(o);
}

static double row_radius(const float *x, int64_t len) {
    double s = 0;
    for (int64_t j = 0; j < len; j++) s += (double)x[j] * x[j];
    return sqrt(s + SPHERE_EPS);
}

/* PULSE groups dims 2.. into a row; below 3 dims the last dimension (see optim.h). */
static int64_t sphere_row_len(const fu_tensor *t) {
    if (t->ndim < 3) return t->ndim ? t->shape[t->ndim - 1] : 1;
    int64_t len = 1;
    for (int d = 2; d < t->ndim; d++) len *= t->shape[d];
    return len;
}

int fu_optim_set_spherical(fu_optim *o, int i) {
    if (!o || i < 0 || i >= o->n_params) return fu_fail(FU_E_INPUT, "optim: no parameter %d", i);
    fu_optim_param *p = &o->params[i];
    int64_t len = sphere_row_len(p->t);
    if (len <= 0) return fu_fail(FU_E_INPUT, "optim: parameter %d is empty", i);
    int64_t rows = p->t->numel / len;
    float *radius = fu_calloc((size_t)(rows ? rows : 1), sizeof(float));
    if (!radius) return FU_E_INTERNAL;
    for (int64_t r = 0; r < rows; r++) radius[r] = (float)row_radius(p->t->data + r * len, len);
    free(p->radius);
    p->radius = radius;
    p->row_len = len;
    return FU_OK;
}

/* x <- x / sqrt(|x|^2 + 1e-9) * r0 per row (PULSE SphericalOptimizer.step). */
static void project_to_sphere(fu_optim_param *p) {
    int64_t len = p->row_len, rows = p->t->numel / len;
    for (int64_t r = 0; r < rows; r++) {
        float *x = p->t->data + r * len;
        double scale = p->radius[r] / row_radius(x, len);
        for (int64_t j = 0; j < len; j++) x[j] = (float)(x[j] * scale);
    }
}

/* torch.optim.SGD: g += wd x; buf = g (first step) or momentum buf + (1 - dampening) g;
 * d = nesterov ? g + momentum buf : buf; x -= lr d. */
static void sgd_update(const fu_optim_config *c, fu_optim_param *p, float lr, int first) {
    float *x = p->t->data, *buf = p->m;
    const float *grad = p->t->grad;
    #pragma omp parallel for schedule(static) if (p->t->numel > 65536)
    for (int64_t i = 0; i < p->t->numel; i++) {
        float g = grad[i] + c->weight_decay * x[i];
        if (buf) {
            buf[i] = first ? g : c->momentum * buf[i] + (1 - c->dampening) * g;
            g = c->nesterov ? g + c->momentum * buf[i] : buf[i];
        }
        x[i] -= lr * g;
    }
}

/* torch.optim.Adam (single-tensor path): g += wd x; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 * x -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps), t = steps taken including this one. */
static void adam_update(const fu_optim_config *c, fu_optim_param *p, float lr, int64_t t) {
    float *x = p->t->data, *m = p->m, *v = p->v;
    const float *grad = p->t->grad;
    float b1 = c->beta1, b2 = c->beta2;
    float step_size = (float)(lr / (1 - pow(b1, (double)t)));
    float bc2_sqrt = (float)sqrt(1 - pow(b2, (double)t));
    #pragma omp parallel for schedule(static) if (p->t->numel > 65536)
    for (int64_t i = 0; i < p->t->numel; i++) {
        float g = grad[i] + c->weight_decay * x[i];
        m[i] = b1 * m[i] + (1 - b1) * g;
        v[i] = b2 * v[i] + (1 - b2) * g * g;
        x[i] -= step_size * m[i] / (sqrtf(v[i]) / bc2_sqrt + c->eps);
    }
}

int fu_optim_step(fu_optim *o, float lr) {
    if (!o) return fu_fail(FU_E_INPUT, "optim_step: NULL optimiser");
    if (!(lr >= 0) || !isfinite(lr)) return fu_fail(FU_E_INPUT, "optim_step: learning rate %g", (double)lr);
    o->step++;
    for (int i = 0; i < o->n_params; i++) {
        fu_optim_param *p = &o->params[i];
        if (o->cfg.kind == FU_OPTIM_ADAM) adam_update(&o->cfg, p, lr, o->step);
        else sgd_update(&o->cfg, p, lr, o->step == 1);
        if (p->row_len) project_to_sphere(p);
    }
    return FU_OK;
}

void fu_optim_zero_grad(fu_optim *o) {
    if (!o) return;
    for (int i = 0; i < o->n_params; i++) fu_tensor_zero_grad(o->params[i].t);
}

/* Visits the state buffers in checkpoint order. */
typedef void (*state_visit)(float *buf, int64_t n, void *ctx);

static void for_each_state(const fu_optim *o, state_visit visit, void *ctx) {
    for (int i = 0; i < o->n_params; i++) {
        const fu_optim_param *p = &o->params[i];
        if (p->m) visit(p->m, p->t->numel, ctx);
        if (p->v) visit(p->v, p->t->numel, ctx);
        if (p->row_len) visit(p->radius, p->t->numel / p->row_len, ctx);
    }
}

static void count_state(float *buf, int64_t n, void *ctx) { (void)buf; *(int64_t *)ctx += n; }

int64_t fu_optim_state_numel(const fu_optim *o) {
    int64_t n = 0;
    if (o) for_each_state(o, count_state, &n);
    return n;
}

typedef struct { float *flat; } state_cursor;

static void copy_out(float *buf, int64_t n, void *ctx) {
    state_cursor *c = ctx;
    memcpy(c->flat, buf, (size_t)n * sizeof(float));
    c->flat += n;
}

static void copy_in(float *buf, int64_t n, void *ctx) {
    state_cursor *c = ctx;
    memcpy(buf, c->flat, (size_t)n * sizeof(float));
    c->flat += n;
}

void fu_optim_state_get(const fu_optim *o, float *dst) {
    state_cursor c = {dst};
    if (o && dst) for_each_state(o, copy_out, &c);
}

int fu_optim_state_set(fu_optim *o, const float *src, int64_t n) {
    if (!o || (!src && n > 0)) return fu_fail(FU_E_INPUT, "optim_state_set: NULL argument");
    int64_t want = fu_optim_state_numel(o);
    if (n != want) return fu_fail(FU_E_INPUT, "optim_state_set: %lld floats given, the optimiser has %lld", (long long)n, (long long)want);
    state_cursor c = {(float *)src};  /* copy_in only reads through it */
    for_each_state(o, copy_in, &c);
    return FU_OK;
}

int fu_lr_schedule_parse(const char *name, fu_lr_schedule *out) {
    static const char *names[] = {"fixed", "linear1cycle", "linear1cycledrop"};
    for (int i = 0; i < 3; i++)
        if (name && strcmp(name, names[i]) == 0) { *out = (fu_lr_schedule)i; return FU_OK; }
    return fu_fail(FU_E_INPUT, "unknown learning-rate schedule '%s' (fixed, linear1cycle, linear1cycledrop)", name ? name : "(null)");
}

/* Triangle from 0.1 up to 1 at the middle of [0, span] and back to 0.1 at its end:
 * (9 (1 - 2 |x/span - 1/2|) + 1) / 10. */
static double one_cycle(double x, double span) { return (9 * (1 - 2 * fabs(x / span - 0.5)) + 1) / 10; }

/* PULSE, with T = total steps:
 *   fixed:            1
 *   linear1cycle:     one_cycle(x, T)
 *   linear1cycledrop: one_cycle(x, 0.9 T) for x < 0.9 T, then a linear fall from 1/10 at
 *                     x = 0.9 T towards 1/1000 at x = T: 1/10 + (x - 0.9T)/(0.1T) (1/1000 - 1/10).
 * A non-positive total gives 1. */
float fu_lr_factor(fu_lr_schedule s, int64_t step, int64_t total) {
    if (s == FU_LR_FIXED || total <= 0) return 1;
    double x = (double)step, T = (double)total;
    if (s == FU_LR_LINEAR1CYCLE) return (float)one_cycle(x, T);
    if (x < 0.9 * T) return (float)one_cycle(x, 0.9 * T);
    return (float)(0.1 + (x - 0.9 * T) / (0.1 * T) * (0.001 - 0.1));
}
