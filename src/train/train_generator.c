#include "train_generator.h"
#include "core/error.h"
#include "core/ops.h"
#include "core/optim.h"
#include "core/rng.h"
#include "io/plot.h"
#include "faceup.h"
#include "io/image.h"
#include "io/safetensors.h"
#include "train/ckpt.h"
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHEET_COLS 8
#define SHEET_SAMPLE_ROWS 2
#define SHEET_SAMPLE_SEED 12345
#define HISTORY_COLS 4   /* step, loss, L1, KL */

fu_gen_train_config fu_gen_train_defaults(void) {
    return (fu_gen_train_config){
        .model = fu_vae_default_config(), .steps = 100000, .batch = 32, .lr = 5e-4f, .seed = 1,
        .beta = 0.1f, .edge_weight = 1.0f, .kl_warmup = 5000, .sample_every = 500, .checkpoint_every = 500,
    };
}

/* ---- run state ---- */

typedef struct run {
    fu_gen_train_config cfg;
    fu_vae *vae;
    fu_optim *opt;
    fu_rng rng;                /* reparameterisation noise */
    int64_t step, pos;         /* steps done; samples consumed */
    fu_history hist;           /* step, loss, L1, KL per step */
    char *ckpt_path, *sheet_path, *plot_path;
} run;

/* ---- checkpoint ---- */

enum { M_STEP, M_POS, M_ADAM_STEP, M_RNG, M_SEED, M_BATCH, M_BETA, M_EDGE, M_WARMUP, M_COUNT };
static const char *meta_keys[M_COUNT] = {
    "train.step", "train.pos", "train.adam_step", "train.rng", "train.seed", "train.batch",
    "train.beta", "train.edge_weight", "train.kl_warmup",
};

static int save_checkpoint(run *r) {
    int64_t n_state = fu_optim_state_numel(r->opt);
    fu_tensor *state = fu_tensor_newv(1, n_state);
    fu_tensor *hist = fu_history_tensor(&r->hist);
    fu_st_item items[FU_VAE_MAX_PARAMS + 2];
    int rc = state && hist ? FU_OK : FU_E_INTERNAL;
    if (rc == FU_OK) {
        fu_optim_state_get(r->opt, state->data);
        for (int i = 0; i < r->vae->n_params; i++) items[i] = (fu_st_item){r->vae->params[i]->name, r->vae->params[i], FU_F32};
        items[r->vae->n_params] = (fu_st_item){"adam.state", state, FU_F32};
        items[r->vae->n_params + 1] = (fu_st_item){"history", hist, FU_F32};
        char v[M_COUNT][160];
        snprintf(v[M_STEP], 160, "%" PRId64, r->step);
        snprintf(v[M_POS], 160, "%" PRId64, r->pos);
        snprintf(v[M_ADAM_STEP], 160, "%" PRId64, r->opt->step);
        fu_rng_to_text(&r->rng, v[M_RNG], 160);
        snprintf(v[M_SEED], 160, "%" PRIu64, r->cfg.seed);
        snprintf(v[M_BATCH], 160, "%d", r->cfg.batch);
        snprintf(v[M_BETA], 160, "%a", (double)r->cfg.beta);   /* hex floats: exact round trip */
        snprintf(v[M_EDGE], 160, "%a", (double)r->cfg.edge_weight);
        snprintf(v[M_WARMUP], 160, "%" PRId64, r->cfg.kl_warmup);
        fu_st_meta meta[M_COUNT];
        for (int k = 0; k < M_COUNT; k++) meta[k] = (fu_st_meta){meta_keys[k], v[k]};
        rc = fu_st_save(r->ckpt_path, items, r->vae->n_params + 2, meta, M_COUNT);
    }
    fu_tensor_free(state);
    fu_tensor_free(hist);
    return rc == FU_OK ? fu_vae_save(r->vae, r->cfg.out) : rc;
}

/* The settings a checkpoint fixes for the rest of the run (see train_generator.h). */
static int read_run_settings(const fu_safetensors *st, run *r) {
    int64_t seed, batch, warm;
    int rc = fu_ckpt_meta_i64(st, meta_keys[M_SEED], 0, INT64_MAX, &seed);
    if (rc == FU_OK) rc = fu_ckpt_meta_i64(st, meta_keys[M_BATCH], 1, 4096, &batch);
    if (rc == FU_OK) rc = fu_ckpt_meta_i64(st, meta_keys[M_WARMUP], 0, INT64_MAX, &warm);
    if (rc == FU_OK) rc = fu_ckpt_meta_float(st, meta_keys[M_BETA], &r->cfg.beta);
    if (rc == FU_OK) rc = fu_ckpt_meta_float(st, meta_keys[M_EDGE], &r->cfg.edge_weight);
    if (rc != FU_OK) return rc;
    r->cfg.seed = (uint64_t)seed;
    r->cfg.batch = (int)batch;
    r->cfg.kl_warmup = warm;
    return FU_OK;
}

/* Restores optimiser, RNG, counters and history from the checkpoint into r (model already
 * loaded from the same file). */
static int restore_state(const fu_safetensors *st, run *r) {
    int64_t n_state = fu_optim_state_numel(r->opt), adam_step;
    float *state = malloc((size_t)n_state * sizeof *state);
    if (!state) return fu_fail(FU_E_INTERNAL, "train: out of memory");
    int rc = fu_ckpt_read(st, "adam.state", state, n_state);
    if (rc == FU_OK) rc = fu_optim_state_set(r->opt, state, n_state);
    free(state);
    if (rc == FU_OK) rc = fu_ckpt_meta_i64(st, meta_keys[M_STEP], 0, INT64_MAX, &r->step);
    if (rc == FU_OK) rc = fu_ckpt_meta_i64(st, meta_keys[M_POS], 0, INT64_MAX, &r->pos);
    if (rc == FU_OK) rc = fu_ckpt_meta_i64(st, meta_keys[M_ADAM_STEP], 0, INT64_MAX, &adam_step);
    if (rc == FU_OK && !fu_rng_from_text(fu_st_meta_get(st, meta_keys[M_RNG]), &r->rng))
        rc = fu_fail(FU_E_INPUT, "%s: checkpoint metadata train.rng missing or invalid", st->label);
    if (rc != FU_OK) return rc;
    r->opt->step = adam_step;
    return fu_history_restore(&r->hist, st, "history");
}

/* ---- setup ---- */

static int make_optimizer(run *r) {
    fu_optim_config oc = fu_optim_adam_defaults();
    int rc = fu_vae_requires_grad(r->vae, 1);
    if (rc == FU_OK && !(r->opt = fu_optim_new(&oc, r->vae->params, r->vae->n_params))) rc = fu_last_code();
    return rc;
}

static int run_open(run *r, const fu_gen_train_config *cfg) {
    *r = (run){.cfg = *cfg, .hist = {.cols = HISTORY_COLS}};
    r->ckpt_path = fu_ckpt_path(cfg->out, ".ckpt.safetensors");
    r->sheet_path = fu_ckpt_path(cfg->out, ".samples.png");
    r->plot_path = fu_ckpt_path(cfg->out, ".loss.png");
    if (!r->ckpt_path || !r->sheet_path || !r->plot_path) return fu_fail(FU_E_INTERNAL, "train: out of memory");
    if (!cfg->resume) {
        fu_rng_seed(&r->rng, cfg->seed ^ 0x5eedULL);
        if (cfg->init) {
            int rc = fu_vae_load(cfg->init, &r->vae);
            if (rc != FU_OK) return rc;
            fu_vae_clear_prior(r->vae);   /* stale once the encoder trains: refit with `faceup train prior` */
            r->cfg.model = r->vae->cfg;
        } else if (!(r->vae = fu_vae_new(&cfg->model, cfg->seed))) {
            return fu_last_code();
        }
        return make_optimizer(r);
    }
    fu_safetensors *st = fu_st_open(r->ckpt_path);
    int rc = st ? fu_vae_from_safetensors(st, 1, &r->vae) : fu_last_code();
    if (rc == FU_OK) rc = read_run_settings(st, r);
    if (rc == FU_OK) rc = make_optimizer(r);
    if (rc == FU_OK) rc = restore_state(st, r);
    fu_st_free(st);
    if (rc == FU_OK) r->cfg.model = r->vae->cfg;
    return rc;
}

static void run_close(run *r) {
    fu_optim_free(r->opt);
    fu_vae_free(r->vae);
    fu_history_free(&r->hist);
    free(r->ckpt_path);
    free(r->sheet_path);
    free(r->plot_path);
}

/* ---- reports ---- */

static int write_sample_sheet(run *r, const fu_faces *set) {
    int64_t S = r->vae->cfg.size, D = r->vae->cfg.latent, rows = 2 + SHEET_SAMPLE_ROWS;
    fu_graph *g = fu_graph_new();
    fu_tensor *grid = fu_tensor_newv(4, (int64_t)1, (int64_t)3, rows * S, (int64_t)SHEET_COLS * S);
    fu_tensor *x = g ? fu_graph_tensor(g, 4, (int64_t[]){SHEET_COLS, 3, S, S}) : NULL;
    fu_tensor *z = g ? fu_graph_tensor(g, 2, (int64_t[]){SHEET_COLS * SHEET_SAMPLE_ROWS, D}) : NULL;
    int rc = grid && x && z ? fu_sheet_faces(set, SHEET_COLS, x) : FU_E_INTERNAL;
    fu_tensor *recon = NULL, *samples = NULL;
    if (rc == FU_OK) {
        fu_rng zr;
        fu_rng_seed(&zr, SHEET_SAMPLE_SEED);
        fu_rng_fill_normal(&zr, z->data, z->numel, 0, 1);
        recon = fu_vae_decode(g, r->vae, fu_vae_encode(g, r->vae, x, NULL));
        samples = fu_vae_decode(g, r->vae, z);
        if (!recon || !samples) rc = fu_last_code();
    }
    if (rc == FU_OK) {
        for (int64_t k = 0; k < SHEET_COLS; k++) {
            fu_grid_place(grid, x, k, 0, k);
            fu_grid_place(grid, recon, k, 1, k);
        }
        for (int64_t k = 0; k < SHEET_COLS * SHEET_SAMPLE_ROWS; k++) fu_grid_place(grid, samples, k, 2 + k / SHEET_COLS, k % SHEET_COLS);
        rc = fu_image_save_png(r->sheet_path, grid);
    }
    fu_tensor_free(grid);
    fu_graph_free(g);
    return rc;
}

#define PLOT_POINTS 400

/* Total loss (black), L1 (blue), KL per image / 1000 (red, to share the axis). */
static int write_loss_plot(run *r) {
    float *buf = malloc(6 * PLOT_POINTS * sizeof *buf);
    if (!buf) return fu_fail(FU_E_INTERNAL, "train: out of memory");
    float *steps = buf, *loss = buf + PLOT_POINTS, *rec = buf + 2 * PLOT_POINTS, *kl = buf + 3 * PLOT_POINTS;
    int64_t n = fu_history_binned(&r->hist, 1, PLOT_POINTS, steps, loss);
    fu_history_binned(&r->hist, 2, PLOT_POINTS, buf + 4 * PLOT_POINTS, rec);
    fu_history_binned(&r->hist, 3, PLOT_POINTS, buf + 5 * PLOT_POINTS, kl);
    for (int64_t i = 0; i < n; i++) kl[i] /= 1000.0f;
    fu_plot_series s[3] = {{steps, loss, n, {0, 0, 0}}, {steps, rec, n, {0, 0, 1}}, {steps, kl, n, {0.8f, 0, 0}}};
    int rc = fu_plot_png(r->plot_path, 480, 320, s, 3, 1);
    free(buf);
    return rc;
}

/* ---- the loop ---- */

static int train_step(run *r, fu_graph *g, fu_faces_loader *l, fu_gen_train_status *st) {
    int64_t S = r->vae->cfg.size, B = r->cfg.batch;
    fu_graph_reset(g);
    fu_tensor *x = fu_graph_tensor(g, 4, (int64_t[]){B, 3, S, S});
    fu_tensor *eps = fu_graph_tensor(g, 2, (int64_t[]){B, r->vae->cfg.latent});
    if (!x || !eps) return fu_last_code();
    fu_faces_loader_batch(l, r->pos, (int)B, x->data, NULL);
    fu_rng_fill_normal(&r->rng, eps->data, eps->numel, 0, 1);
    float warm = r->cfg.kl_warmup > 0 ? fminf(1.0f, (float)(r->step + 1) / (float)r->cfg.kl_warmup) : 1.0f;
    fu_vae_loss_parts parts;
    fu_tensor *loss = fu_vae_loss(g, r->vae, x, eps, r->cfg.beta * warm, r->cfg.edge_weight, &parts);
    if (!loss) return fu_last_code();
    if (!isfinite(loss->data[0])) return fu_fail(FU_E_INTERNAL, "train: loss is not finite at step %" PRId64 " (lower --lr)", r->step + 1);
    fu_optim_zero_grad(r->opt);
    int rc = fu_graph_backward(g, loss, NULL);
    if (rc == FU_OK) rc = fu_optim_step(r->opt, r->cfg.lr);
    if (rc != FU_OK) return rc;
    r->step++;
    r->pos += B;
    *st = (fu_gen_train_status){r->step, r->cfg.steps, loss->data[0], parts.rec->data[0], parts.edge->data[0], parts.kl->data[0]};
    float row[HISTORY_COLS] = {(float)r->step, st->loss, st->rec, st->kl};
    return fu_history_push(&r->hist, row);
}

static int due(int64_t step, int64_t every, int64_t last) { return step == last || (every > 0 && step % every == 0); }

int fu_train_generator(const fu_gen_train_config *cfg, const fu_faces *set,
                       void (*progress)(const fu_gen_train_status *s, void *ctx), void *ctx) {
    if (cfg->steps < 1 || cfg->batch < 1 || cfg->batch > 4096 || !(cfg->lr > 0) || !(cfg->beta >= 0) ||
        !(cfg->edge_weight >= 0) || cfg->kl_warmup < 0)
        return fu_fail(FU_E_INPUT, "train generator: steps and batch (<= 4096) must be positive, lr > 0, beta, edge weight, warm-up >= 0");
    run r;
    int rc = run_open(&r, cfg);
    if (rc == FU_OK && r.vae->cfg.size != set->size)
        rc = fu_fail(FU_E_INPUT, "train generator: model size %d but the face set's images are %d", r.vae->cfg.size, set->size);
    if (rc == FU_OK && r.step > cfg->steps)
        rc = fu_fail(FU_E_INPUT, "train generator: checkpoint is at step %" PRId64 ", beyond --steps %" PRId64, r.step, cfg->steps);
    fu_faces_loader l = {0};
    if (rc == FU_OK) rc = fu_faces_loader_init(&l, set, FU_SPLIT_TRAIN, r.cfg.seed, 1);
    fu_graph *g = fu_graph_new();
    if (rc == FU_OK && !g) rc = fu_fail(FU_E_INTERNAL, "train: out of memory");
    while (rc == FU_OK && r.step < cfg->steps) {
        fu_gen_train_status st;
        if ((rc = train_step(&r, g, &l, &st)) != FU_OK) break;
        if (progress) progress(&st, ctx);
        if (due(r.step, cfg->sample_every, cfg->steps) && (rc = write_sample_sheet(&r, set)) == FU_OK) rc = write_loss_plot(&r);
        if (rc == FU_OK && due(r.step, cfg->checkpoint_every, cfg->steps)) rc = save_checkpoint(&r);
    }
    fu_graph_free(g);
    fu_faces_loader_free(&l);
    run_close(&r);
    return rc;
}

/* ---- evaluation ---- */

#define EVAL_BATCH 64

static int picked(const fu_face_label *l, int split, int source) {
    return (split == FU_SPLIT_ALL || l->split == split) && (source < 0 || l->source == source);
}

/* PSNR in dB of each reconstruction y against x ([-1,1] images of img values), summed. */
static double psnr_sum(const float *x, const float *y, int64_t n, int64_t img) {
    double sum = 0;
    for (int64_t k = 0; k < n; k++) {
        double se = 0;
        for (int64_t j = 0; j < img; j++) {
            double d = 0.5 * ((double)y[k * img + j] - x[k * img + j]);   /* [0,1] units */
            se += d * d;
        }
        sum += 10.0 * log10(1.0 / fmax(se / (double)img, 1e-10));
    }
    return sum;
}

int fu_vae_recon_psnr(const fu_vae *m, const fu_faces *set, int split, int source, int64_t limit,
                      double *psnr, int64_t *n_out) {
    if (m->cfg.size != set->size) return fu_fail(FU_E_INPUT, "eval: model size %d but the face set's images are %d", m->cfg.size, set->size);
    int64_t img = 3 * (int64_t)set->size * set->size, n = 0, i = 0;
    float *x = malloc(sizeof(float) * (size_t)(EVAL_BATCH * img)), *y = malloc(sizeof(float) * (size_t)(EVAL_BATCH * img));
    int rc = x && y ? FU_OK : fu_fail(FU_E_INTERNAL, "eval: out of memory");
    double sum = 0;
    while (rc == FU_OK && i < set->count && (limit <= 0 || n < limit)) {   /* one batch of picked faces per pass */
        int64_t B = 0;
        for (; i < set->count && B < EVAL_BATCH && (limit <= 0 || n + B < limit); i++)
            if (picked(&set->labels[i], split, source)) fu_faces_get(set, i, 0, x + B++ * img);
        rc = fu_vae_reconstruct(m, x, B, y);
        if (rc == FU_OK) sum += psnr_sum(x, y, B, img);
        n += B;
    }
    free(x);
    free(y);
    if (rc != FU_OK) return rc;
    *psnr = n ? sum / (double)n : NAN;
    *n_out = n;
    return FU_OK;
}

/* Adds one batch of posteriors (mu, logvar [B,D]) to the running sums. */
static void accumulate_posterior(const fu_tensor *mu, const fu_tensor *logvar, double *sum, double *outer, double *var_sum) {
    int64_t B = mu->shape[0], D = mu->shape[1];
    for (int64_t k = 0; k < B; k++) {
        const float *u = mu->data + k * D, *lv = logvar->data + k * D;
        for (int64_t i = 0; i < D; i++) {
            sum[i] += u[i];
            var_sum[i] += exp((double)lv[i]);
            for (int64_t j = 0; j <= i; j++) outer[i * D + j] += (double)u[i] * u[j];
        }
    }
}

int fu_vae_fit_prior(fu_vae *m, const fu_faces *set, int split, int64_t *n_out) {
    if (m->cfg.size != set->size) return fu_fail(FU_E_INPUT, "prior: model size %d but the face set's images are %d", m->cfg.size, set->size);
    int64_t S = set->size, img = 3 * S * S, D = m->cfg.latent, n = 0;
    int64_t *pick = malloc((size_t)(set->count ? set->count : 1) * sizeof *pick);
    double *sum = calloc((size_t)D, sizeof *sum), *var_sum = calloc((size_t)D, sizeof *var_sum);
    double *outer = calloc((size_t)(D * D), sizeof *outer);
    fu_graph *g = fu_graph_new();
    int rc = pick && sum && var_sum && outer && g ? FU_OK : fu_fail(FU_E_INTERNAL, "prior: out of memory");
    for (int64_t i = 0; rc == FU_OK && i < set->count; i++)
        if (split == FU_SPLIT_ALL || set->labels[i].split == split) pick[n++] = i;
    if (rc == FU_OK && n < 2) rc = fu_fail(FU_E_INPUT, "prior: %lld images in the split, need at least 2", (long long)n);
    for (int64_t b0 = 0; rc == FU_OK && b0 < 2 * n; b0 += EVAL_BATCH) {   /* each image, then mirrored */
        int64_t B = 2 * n - b0 < EVAL_BATCH ? 2 * n - b0 : EVAL_BATCH;
        fu_graph_reset(g);
        fu_tensor *x = fu_graph_tensor(g, 4, (int64_t[]){B, 3, S, S}), *logvar = NULL;
        if (!x) { rc = fu_last_code(); break; }
        for (int64_t k = 0; k < B; k++) fu_faces_get(set, pick[(b0 + k) % n], (b0 + k) >= n, x->data + k * img);
        fu_tensor *mu = fu_vae_encode(g, m, x, &logvar);
        if (!mu || !logvar) { rc = fu_last_code(); break; }
        accumulate_posterior(mu, logvar, sum, outer, var_sum);
    }
    if (rc == FU_OK) {
        double count = 2.0 * (double)n;
        for (int64_t i = 0; i < D; i++) sum[i] /= count;
        for (int64_t i = 0; i < D; i++)
            for (int64_t j = 0; j <= i; j++) {
                double c = outer[i * D + j] / count - sum[i] * sum[j] + (i == j ? var_sum[i] / count : 0);
                outer[i * D + j] = outer[j * D + i] = c;
            }
        rc = fu_vae_set_prior(m, sum, outer);
    }
    fu_graph_free(g);
    free(pick);
    free(sum);
    free(var_sum);
    free(outer);
    if (rc == FU_OK) *n_out = n;
    return rc;
}
