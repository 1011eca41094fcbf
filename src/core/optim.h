/* Optimisers over leaf tensors (parameters whose .grad the graph's backward fills).
 *
 * SGD and Adam follow torch.optim.SGD / torch.optim.Adam (defaults: no amsgrad, no maximize,
 * L2 weight decay added to the gradient). The learning rate is passed to every step, so a
 * schedule is the caller's loop: lr = base_lr * fu_lr_factor(schedule, step, total_steps).
 *
 * Spherical parameters (PULSE's SphericalOptimizer): after each step every row of a spherical
 * parameter is rescaled to the radius it had when it was marked spherical. A row is the group
 * PULSE sums over, dims 2.. of the tensor (radius = sqrt(sum x^2 + 1e-9) over dims 2..ndim-1,
 * x <- x / sqrt(sum x^2 + 1e-9) * radius), i.e. one row per latent vector of an [N, L, D] latent
 * and one per (n, c) map of an [N, C, H, W] noise tensor. For tensors of fewer than 3 dims,
 * where PULSE's grouping would degenerate to single elements, a row is the last dimension.
 *
 * Checkpoints: the state is `step` plus the flat float buffers listed by fu_optim_state_numel /
 * fu_optim_state_get / fu_optim_state_set (per parameter, in order: the momentum or Adam first
 * moment, the Adam second moment, the spherical radii). */
#ifndef FU_OPTIM_H
#define FU_OPTIM_H
#include "tensor.h"

typedef enum { FU_OPTIM_SGD, FU_OPTIM_ADAM } fu_optim_kind;

typedef struct fu_optim_config {
    fu_optim_kind kind;
    float weight_decay;   /* L2 term added to the gradient: g += weight_decay * x */
    float momentum;       /* SGD: 0 = plain SGD */
    float dampening;      /* SGD: buf = momentum*buf + (1 - dampening)*g (not on the first step) */
    int nesterov;         /* SGD: step along g + momentum*buf */
    float beta1, beta2;   /* Adam, PyTorch defaults 0.9, 0.999 */
    float eps;            /* Adam, PyTorch default 1e-8 */
} fu_optim_config;

/* Adam with PyTorch's defaults; SGD with momentum m and no dampening. */
fu_optim_config fu_optim_adam_defaults(void);
fu_optim_config fu_optim_sgd_defaults(float momentum);

typedef struct fu_optim_param {
    fu_tensor *t;         /* leaf with requires_grad; not owned */
    float *m;             /* SGD momentum buffer / Adam exp_avg (numel), NULL when unused */
    float *v;             /* Adam exp_avg_sq (numel), NULL for SGD */
    int64_t row_len;      /* elements per spherical row; 0 = not spherical */
    float *radius;        /* numel / row_len initial radii when spherical */
} fu_optim_param;

typedef struct fu_optim {
    fu_optim_config cfg;
    int n_params;
    fu_optim_param *params;
    int64_t step;         /* steps taken: Adam bias correction, SGD momentum start */
} fu_optim;

/* NULL with a message on a bad config, a NULL or duplicate parameter, or one without a gradient
 * buffer (call fu_tensor_requires_grad first). */
fu_optim *fu_optim_new(const fu_optim_config *cfg, fu_tensor *const *params, int n_params);
void fu_optim_free(fu_optim *o);

/* Marks parameter i spherical and records its current per-row radii. */
int fu_optim_set_spherical(fu_optim *o, int i);

/* One update of every parameter with learning rate lr, then the spherical projection. */
int fu_optim_step(fu_optim *o, float lr);
void fu_optim_zero_grad(fu_optim *o);

int64_t fu_optim_state_numel(const fu_optim *o);
void fu_optim_state_get(const fu_optim *o, float *dst);
/* n must equal fu_optim_state_numel (the same parameters and spherical marks). */
int fu_optim_state_set(fu_optim *o, const float *src, int64_t n);

/* Learning-rate multipliers of PULSE (PULSE.py's schedule_dict, applied by LambdaLR to the
 * step index x = 0 .. total-1). */
typedef enum { FU_LR_FIXED, FU_LR_LINEAR1CYCLE, FU_LR_LINEAR1CYCLEDROP } fu_lr_schedule;

/* "fixed", "linear1cycle", "linear1cycledrop"; FU_E_INPUT on an unknown name. */
int fu_lr_schedule_parse(const char *name, fu_lr_schedule *out);
float fu_lr_factor(fu_lr_schedule s, int64_t step, int64_t total);

/* A training loop's report after each step: step of steps (1-based) and the step's loss; ctx is
 * the caller's pointer, passed back unchanged (as with fu_progress_fn, faceup.h). */
typedef void (*fu_train_step_fn)(void *ctx, int64_t step, int64_t steps, double loss);

#endif
