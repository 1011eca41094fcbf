#include "train_sharp.h"
#include "core/error.h"
#include "core/ops.h"
#include "core/optim.h"
#include "core/rng.h"
#include "io/plot.h"
#include "faceup.h"
#include "gen/sharp.h"
#include "io/image.h"
#include "io/safetensors.h"
#include "train/ckpt.h"
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LEAK 0.2f
#define DISC_LAYERS 5
#define HIGHPASS_GAIN 4.0f   /* the high frequencies' amplitude is a few hundredths of the image's */
#define SHEET_COLS 8
#define SHEET_SEED 12345
#define PLOT_POINTS 400

enum { H_STEP, H_L1, H_EDGE, H_PRIOR, H_ADV, H_DLOSS, HISTORY_COLS };

fu_sharp_train_config fu_sharp_train_defaults(void) {
    return (fu_sharp_train_config){
        .model = fu_sr_default_config(), .disc_channels = 32, .steps = 20000, .batch = 8, .lr_g = 2e-4f,
        .lr_d = 2e-4f, .seed = 1, .edge_weight = 1.0f, .prior_weight = 1.0f, .adv_weight = 0.05f,
        .adv_start = 500, .adv_ramp = 2000, .ema = 0.999f, .balanced = 1, .sample_every = 250,
        .checkpoint_every = 250,
    };
}

/* ---- the discriminator: a PatchGAN, training only ---- */

typedef struct disc {
    fu_tensor *w[DISC_LAYERS], *b[DISC_LAYERS];
    fu_tensor *params[2 * DISC_LAYERS];
} disc;

/* Layer i: kernel, stride, and output channels as multiples of c (the last gives one logit). */
static const struct { int kernel, stride, mult; } disc_layers[DISC_LAYERS] = {{4, 2, 1}, {4, 2, 2}, {4, 2, 4}, {3, 1, 4}, {3, 1, 0}};

static int disc_alloc(disc *d, int channels, fu_rng *init) {
    *d = (disc){0};
    int64_t in = 6;   /* the image and its high frequencies, see disc_input */
    float he = sqrtf(2.0f / (1 + LEAK * LEAK));
    for (int i = 0; i < DISC_LAYERS; i++) {
        int64_t out = disc_layers[i].mult ? (int64_t)channels * disc_layers[i].mult : 1, k = disc_layers[i].kernel;
        d->w[i] = d->params[2 * i] = fu_tensor_newv(4, out, in, k, k);
        d->b[i] = d->params[2 * i + 1] = fu_tensor_newv(1, out);
        if (!d->w[i] || !d->b[i]) return fu_fail(FU_E_INTERNAL, "train sharp: out of memory");
        char name[48];
        snprintf(name, sizeof name, "disc.conv%d.weight", i);
        fu_tensor_set_name(d->w[i], name);
        snprintf(name, sizeof name, "disc.conv%d.bias", i);
        fu_tensor_set_name(d->b[i], name);
        if (init) fu_rng_fill_normal(init, d->w[i]->data, d->w[i]->numel, 0, he / sqrtf((float)(in * k * k)));
        in = out;
    }
    return FU_OK;
}

static void disc_free(disc *d) {
    for (int i = 0; i < 2 * DISC_LAYERS; i++) fu_tensor_free(d->params[i]);
}

/* The prepared input [N,6,H,W] (disc_input) -> patch logits [N,1,H/8,W/8]. */
static fu_tensor *disc_forward(fu_graph *g, const disc *d, fu_tensor *x) {
    fu_tensor *h = x;
    for (int i = 0; i < DISC_LAYERS; i++) {
        /* pad 1: 4x4 stride 2 halves the side, 3x3 stride 1 keeps it */
        fu_conv_params p = {.stride_h = disc_layers[i].stride, .stride_w = disc_layers[i].stride,
                            .pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1};
        h = fu_conv2d(g, h, d->w[i], d->b[i], &p);
        if (i < DISC_LAYERS - 1) h = fu_leaky_relu(g, h, LEAK);
    }
    return h;
}

/* ---- DiffAugment ---- */

/* A constant [N,1,1,1] tensor of uniform draws in [lo, hi). */
static fu_tensor *per_image(fu_graph *g, fu_rng *r, int64_t n, float lo, float hi) {
    fu_tensor *t = fu_graph_tensor(g, 4, (int64_t[]){n, 1, 1, 1});
    if (t) fu_rng_fill_uniform(r, t->data, n, lo, hi);
    return t;
}

/* (x - mean over `axes`) * s + mean, s [N,1,1,1]. */
static fu_tensor *scale_about_mean(fu_graph *g, fu_tensor *x, unsigned axes, fu_tensor *s) {
    fu_tensor *m = fu_mean(g, x, axes, 1);
    return fu_add(g, fu_mul(g, fu_sub(g, x, m), s), m);
}

/* Translation by up to 1/8 of the side (zero outside) and a cutout of half the side. */
static fu_tensor *shift_and_cut(fu_graph *g, fu_rng *r, fu_tensor *x) {
    int64_t N = x->shape[0], H = x->shape[2], W = x->shape[3], max_shift = W / 8, half = W / 2;
    fu_tensor *theta = fu_graph_tensor(g, 3, (int64_t[]){N, 2, 3});
    fu_tensor *mask = fu_graph_tensor(g, 4, (int64_t[]){N, 1, H, W});
    if (!theta || !mask) return NULL;
    for (int64_t n = 0; n < N; n++) {
        float *t = theta->data + 6 * n;
        t[0] = 1, t[1] = 0, t[2] = (float)((int64_t)fu_rng_below(r, (uint64_t)(2 * max_shift + 1)) - max_shift);
        t[3] = 0, t[4] = 1, t[5] = (float)((int64_t)fu_rng_below(r, (uint64_t)(2 * max_shift + 1)) - max_shift);
        int64_t cy = (int64_t)fu_rng_below(r, (uint64_t)H), cx = (int64_t)fu_rng_below(r, (uint64_t)W);
        float *m = mask->data + n * H * W;
        for (int64_t y = 0; y < H; y++)
            for (int64_t xx = 0; xx < W; xx++)
                m[y * W + xx] = (llabs(y - cy) * 2 < half && llabs(xx - cx) * 2 < half) ? 0.0f : 1.0f;
    }
    return fu_mul(g, fu_affine_warp(g, x, theta, H, W), mask);
}

/* What the discriminator sees of images x [N,3,H,W]: DiffAugment's colour changes, then the image
 * and, as three more channels, its high frequencies (x minus the bicubic upscale of its 2x
 * downscale, amplified), then translation and cutout on all six channels together.
 * Why the high frequencies: real faces and the stage's outputs share their low frequencies (half
 * the fakes are reconstructions of the real batch), so from the image alone the discriminator's
 * features follow what both share. Why translation and cutout come after: their zero borders are
 * sharp edges in real and fake alike, and computed before, they swamp the high frequencies the
 * discriminator must compare. Measured on real faces with the stage frozen (bench/RESULTS.md
 * "A sharp generator"): the hinge loss stayed at chance (2.0) for 1,800 steps without both. */
static fu_tensor *disc_input(fu_graph *g, fu_rng *r, fu_tensor *x) {
    if (!x) return NULL;
    int64_t N = x->shape[0];
    x = fu_add(g, x, per_image(g, r, N, -0.5f, 0.5f));                     /* brightness */
    x = scale_about_mean(g, x, 1u << 1, per_image(g, r, N, 0.0f, 2.0f));    /* saturation */
    x = scale_about_mean(g, x, 0xEu, per_image(g, r, N, 0.5f, 1.5f));       /* contrast */
    fu_tensor *blur = x ? fu_resize_bicubic(g, fu_bicubic_downsample(g, x, 2), x->shape[2], x->shape[3]) : NULL;
    fu_tensor *parts[2] = {x, fu_scale_shift(g, fu_sub(g, x, blur), HIGHPASS_GAIN, 0)};
    fu_tensor *both = parts[1] ? fu_concat(g, parts, 2, 1) : NULL;
    return both ? shift_and_cut(g, r, both) : NULL;
}

/* ---- run state ---- */

typedef struct run {
    fu_sharp_train_config cfg;
    fu_vae *vae;
    fu_sr *sr, *ema;
    disc d;
    fu_optim *opt_g, *opt_d;
    fu_rng rng;                 /* posterior noise, prior draws, augmentations */
    int64_t step, pos;
    double cpu_s;               /* CPU seconds of all sessions of the run */
    fu_history hist;
    char *ckpt_path, *sheet_path, *plot_path, *log_path;
} run;

enum { M_STEP, M_POS, M_ADAM_G, M_ADAM_D, M_RNG, M_SEED, M_BATCH, M_BALANCED, M_DISC, M_EDGE, M_PRIOR, M_ADV,
       M_ADV_START, M_ADV_RAMP, M_EMA, M_CPU, M_COUNT };
static const char *meta_keys[M_COUNT] = {
    "train.step", "train.pos", "train.adam_g_step", "train.adam_d_step", "train.rng", "train.seed", "train.batch",
    "train.balanced", "train.disc_channels", "train.edge_weight", "train.prior_weight", "train.adv_weight",
    "train.adv_start", "train.adv_ramp", "train.ema", "train.cpu_seconds",
};

static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ---- checkpoint ---- */

static void meta_values(const run *r, char v[M_COUNT][160]) {
    snprintf(v[M_STEP], 160, "%" PRId64, r->step);
    snprintf(v[M_POS], 160, "%" PRId64, r->pos);
    snprintf(v[M_ADAM_G], 160, "%" PRId64, r->opt_g->step);
    snprintf(v[M_ADAM_D], 160, "%" PRId64, r->opt_d->step);
    fu_rng_to_text(&r->rng, v[M_RNG], 160);
    snprintf(v[M_SEED], 160, "%" PRIu64, r->cfg.seed);
    snprintf(v[M_BATCH], 160, "%d", r->cfg.batch);
    snprintf(v[M_BALANCED], 160, "%d", r->cfg.balanced);
    snprintf(v[M_DISC], 160, "%d", r->cfg.disc_channels);
    snprintf(v[M_EDGE], 160, "%a", (double)r->cfg.edge_weight);   /* hex floats: exact round trip */
    snprintf(v[M_PRIOR], 160, "%a", (double)r->cfg.prior_weight);
    snprintf(v[M_ADV], 160, "%a", (double)r->cfg.adv_weight);
    snprintf(v[M_ADV_START], 160, "%" PRId64, r->cfg.adv_start);
    snprintf(v[M_ADV_RAMP], 160, "%" PRId64, r->cfg.adv_ramp);
    snprintf(v[M_EMA], 160, "%a", (double)r->cfg.ema);
    snprintf(v[M_CPU], 160, "%a", r->cpu_s);
}

static fu_tensor *optim_state(const fu_optim *o) {
    fu_tensor *t = fu_tensor_newv(1, fu_optim_state_numel(o));
    if (t) fu_optim_state_get(o, t->data);
    return t;
}

static int save_checkpoint(run *r) {
    enum { CAP = FU_VAE_MAX_PARAMS + 2 + 2 * FU_SR_MAX_PARAMS + 2 * DISC_LAYERS + 3 };
    fu_st_item items[CAP];
    char ema_names[FU_SR_MAX_PARAMS][56];
    int n = 0;
    for (int i = 0; i < r->vae->n_params; i++) items[n++] = (fu_st_item){r->vae->params[i]->name, r->vae->params[i], FU_F32};
    if (r->vae->prior_mean) {
        items[n++] = (fu_st_item){"prior.mean", r->vae->prior_mean, FU_F32};
        items[n++] = (fu_st_item){"prior.scale_tril", r->vae->prior_tril, FU_F32};
    }
    for (int i = 0; i < r->sr->n_params; i++) {
        items[n++] = (fu_st_item){r->sr->params[i]->name, r->sr->params[i], FU_F32};
        snprintf(ema_names[i], sizeof ema_names[i], "ema.%s", r->ema->params[i]->name);
        items[n++] = (fu_st_item){ema_names[i], r->ema->params[i], FU_F32};
    }
    for (int i = 0; i < 2 * DISC_LAYERS; i++) items[n++] = (fu_st_item){r->d.params[i]->name, r->d.params[i], FU_F32};
    fu_tensor *sg = optim_state(r->opt_g), *sd = optim_state(r->opt_d), *hist = fu_history_tensor(&r->hist);
    int rc = sg && sd && hist ? FU_OK : fu_fail(FU_E_INTERNAL, "train sharp: out of memory");
    if (rc == FU_OK) {
        items[n++] = (fu_st_item){"adam_g.state", sg, FU_F32};
        items[n++] = (fu_st_item){"adam_d.state", sd, FU_F32};
        items[n++] = (fu_st_item){"history", hist, FU_F32};
        char v[M_COUNT][160];
        meta_values(r, v);
        fu_st_meta meta[M_COUNT];
        for (int k = 0; k < M_COUNT; k++) meta[k] = (fu_st_meta){meta_keys[k], v[k]};
        rc = fu_st_save(r->ckpt_path, items, n, meta, M_COUNT);
    }
    fu_tensor_free(sg);
    fu_tensor_free(sd);
    fu_tensor_free(hist);
    return rc == FU_OK ? fu_sharp_save(r->vae, r->ema, r->cfg.out) : rc;
}

/* The settings a checkpoint fixes for the rest of the run. */
static int read_run_settings(const fu_safetensors *st, run *r) {
    int64_t seed, batch, balanced, dc, start, ramp;
    fu_sharp_train_config *c = &r->cfg;
    int rc = fu_ckpt_meta_i64(st, meta_keys[M_SEED], 0, INT64_MAX, &seed);
    if (rc == FU_OK) rc = fu_ckpt_meta_i64(st, meta_keys[M_BATCH], 1, 4096, &batch);
    if (rc == FU_OK) rc = fu_ckpt_meta_i64(st, meta_keys[M_BALANCED], 0, 1, &balanced);
    if (rc == FU_OK) rc = fu_ckpt_meta_i64(st, meta_keys[M_DISC], 1, 256, &dc);
    if (rc == FU_OK) rc = fu_ckpt_meta_i64(st, meta_keys[M_ADV_START], 0, INT64_MAX, &start);
    if (rc == FU_OK) rc = fu_ckpt_meta_i64(st, meta_keys[M_ADV_RAMP], 0, INT64_MAX, &ramp);
    if (rc == FU_OK) rc = fu_ckpt_meta_float(st, meta_keys[M_EDGE], &c->edge_weight);
    if (rc == FU_OK) rc = fu_ckpt_meta_float(st, meta_keys[M_PRIOR], &c->prior_weight);
    if (rc == FU_OK) rc = fu_ckpt_meta_float(st, meta_keys[M_ADV], &c->adv_weight);
    if (rc == FU_OK) rc = fu_ckpt_meta_float(st, meta_keys[M_EMA], &c->ema);
    if (rc != FU_OK) return rc;
    c->seed = (uint64_t)seed, c->batch = (int)batch, c->balanced = (int)balanced, c->disc_channels = (int)dc;
    c->adv_start = start, c->adv_ramp = ramp;
    return FU_OK;
}

static int read_params(const fu_safetensors *st, fu_tensor *const *params, int n, const char *prefix) {
    char name[64];
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "%s%s", prefix, params[i]->name);
        int rc = fu_ckpt_read(st, name, params[i]->data, params[i]->numel);
        if (rc != FU_OK) return rc;
    }
    return FU_OK;
}

static int read_optim(const fu_safetensors *st, const char *name, fu_optim *o) {
    int64_t n = fu_optim_state_numel(o);
    float *state = malloc((size_t)n * sizeof *state);
    if (!state) return fu_fail(FU_E_INTERNAL, "train sharp: out of memory");
    int rc = fu_ckpt_read(st, name, state, n);
    if (rc == FU_OK) rc = fu_optim_state_set(o, state, n);
    free(state);
    return rc;
}

/* Optimisers, EMA, discriminator, counters, RNG and history from the checkpoint (model and
 * settings already read from it). */
static int restore_state(const fu_safetensors *st, run *r) {
    int64_t g_step, d_step;
    int rc = read_params(st, r->ema->params, r->ema->n_params, "ema.");
    if (rc == FU_OK) rc = read_params(st, r->d.params, 2 * DISC_LAYERS, "");
    if (rc == FU_OK) rc = read_optim(st, "adam_g.state", r->opt_g);
    if (rc == FU_OK) rc = read_optim(st, "adam_d.state", r->opt_d);
    if (rc == FU_OK) rc = fu_ckpt_meta_i64(st, meta_keys[M_STEP], 0, INT64_MAX, &r->step);
    if (rc == FU_OK) rc = fu_ckpt_meta_i64(st, meta_keys[M_POS], 0, INT64_MAX, &r->pos);
    if (rc == FU_OK) rc = fu_ckpt_meta_i64(st, meta_keys[M_ADAM_G], 0, INT64_MAX, &g_step);
    if (rc == FU_OK) rc = fu_ckpt_meta_i64(st, meta_keys[M_ADAM_D], 0, INT64_MAX, &d_step);
    float cpu = 0;
    if (rc == FU_OK) rc = fu_ckpt_meta_float(st, meta_keys[M_CPU], &cpu);
    if (rc == FU_OK && !fu_rng_from_text(fu_st_meta_get(st, meta_keys[M_RNG]), &r->rng))
        rc = fu_fail(FU_E_INPUT, "%s: checkpoint metadata train.rng missing or invalid", st->label);
    if (rc == FU_OK) rc = fu_history_restore(&r->hist, st, "history");
    if (rc != FU_OK) return rc;
    r->opt_g->step = g_step;
    r->opt_d->step = d_step;
    r->cpu_s = cpu;
    return FU_OK;
}

/* ---- setup ---- */

static int make_optimizers(run *r) {
    fu_optim_config oc = fu_optim_adam_defaults();
    oc.beta1 = 0.5f, oc.beta2 = 0.99f;
    int rc = fu_sr_requires_grad(r->sr, 1);
    for (int i = 0; rc == FU_OK && i < 2 * DISC_LAYERS; i++) rc = fu_tensor_requires_grad(r->d.params[i], 1);
    if (rc == FU_OK && !(r->opt_g = fu_optim_new(&oc, r->sr->params, r->sr->n_params))) rc = fu_last_code();
    if (rc == FU_OK && !(r->opt_d = fu_optim_new(&oc, r->d.params, 2 * DISC_LAYERS))) rc = fu_last_code();
    return rc;
}

/* A new run: the VAE from cfg->vae, the stage fresh or from cfg->init's. */
static int open_new(run *r) {
    const fu_sharp_train_config *cfg = &r->cfg;
    if (!cfg->vae) return fu_fail(FU_E_INPUT, "train sharp: a new run needs the VAE to sharpen");
    fu_rng_seed(&r->rng, cfg->seed ^ 0x54a7ULL);
    fu_safetensors *st = fu_st_open(cfg->vae);   /* a VAE, or a sharp generator whose VAE is taken */
    int rc = st ? fu_vae_from_safetensors(st, fu_sr_present(st), &r->vae) : fu_last_code();
    fu_st_free(st);
    if (rc == FU_OK && !r->vae->prior_mean)
        rc = fu_fail(FU_E_INPUT, "%s: the VAE has no fitted prior (faceup train prior); the stage trains on its samples", cfg->vae);
    if (rc == FU_OK && cfg->init) {
        fu_sharp from;
        if ((rc = fu_sharp_load(cfg->init, &from)) == FU_OK) {
            r->sr = from.sr;
            from.sr = NULL;
            fu_sharp_release(&from);
            r->cfg.model = r->sr->cfg;
        }
    } else if (rc == FU_OK && !(r->sr = fu_sr_new(&cfg->model, cfg->seed))) {
        rc = fu_last_code();
    }
    fu_rng init;
    fu_rng_seed(&init, cfg->seed + 17);
    if (rc == FU_OK && !(r->ema = fu_sr_clone(r->sr))) rc = fu_last_code();
    if (rc == FU_OK) rc = disc_alloc(&r->d, cfg->disc_channels, &init);
    return rc;
}

static int open_resumed(run *r) {
    fu_safetensors *st = fu_st_open(r->ckpt_path);
    if (!st) return fu_last_code();
    fu_sharp m;
    int rc = read_run_settings(st, r);
    if (rc == FU_OK) rc = fu_sharp_from_safetensors(st, 1, &m);
    if (rc == FU_OK) {
        r->vae = m.vae, r->sr = m.sr, r->cfg.model = m.sr->cfg;
        if (!(r->ema = fu_sr_clone(r->sr))) rc = fu_last_code();
    }
    if (rc == FU_OK) rc = disc_alloc(&r->d, r->cfg.disc_channels, NULL);
    if (rc == FU_OK) rc = make_optimizers(r);
    if (rc == FU_OK) rc = restore_state(st, r);
    fu_st_free(st);
    return rc;
}

static int run_open(run *r, const fu_sharp_train_config *cfg) {
    *r = (run){.cfg = *cfg, .hist = {.cols = HISTORY_COLS}};
    r->ckpt_path = fu_ckpt_path(cfg->out, ".ckpt.safetensors");
    r->sheet_path = fu_ckpt_path(cfg->out, ".samples.png");
    r->plot_path = fu_ckpt_path(cfg->out, ".loss.png");
    r->log_path = fu_ckpt_path(cfg->out, ".runlog.jsonl");
    if (!r->ckpt_path || !r->sheet_path || !r->plot_path || !r->log_path) return fu_fail(FU_E_INTERNAL, "train sharp: out of memory");
    if (cfg->resume) return open_resumed(r);
    int rc = open_new(r);
    return rc == FU_OK ? make_optimizers(r) : rc;
}

static void run_close(run *r) {
    fu_optim_free(r->opt_g);
    fu_optim_free(r->opt_d);
    fu_vae_free(r->vae);
    fu_sr_free(r->sr);
    fu_sr_free(r->ema);
    disc_free(&r->d);
    fu_history_free(&r->hist);
    free(r->ckpt_path);
    free(r->sheet_path);
    free(r->plot_path);
    free(r->log_path);
}

/* ---- reports ---- */

static int write_sample_sheet(run *r, const fu_faces *set) {
    int64_t S2 = set->size, D = r->vae->cfg.latent;
    fu_graph *g = fu_graph_new();
    fu_tensor *grid = fu_tensor_newv(4, (int64_t)1, (int64_t)3, 5 * S2, (int64_t)SHEET_COLS * S2);
    fu_tensor *x = g ? fu_graph_tensor(g, 4, (int64_t[]){SHEET_COLS, 3, S2, S2}) : NULL;
    fu_tensor *w = g ? fu_graph_tensor(g, 2, (int64_t[]){SHEET_COLS, D}) : NULL;
    int rc = grid && x && w ? fu_sheet_faces(set, SHEET_COLS, x) : fu_fail(FU_E_INTERNAL, "train sharp: out of memory");
    if (rc == FU_OK) {
        fu_rng zr;
        fu_rng_seed(&zr, SHEET_SEED);
        fu_rng_fill_normal(&zr, w->data, w->numel, 0, 1);
        fu_tensor *rec = fu_vae_decode(g, r->vae, fu_vae_encode(g, r->vae, fu_bicubic_downsample(g, x, 2), NULL));
        fu_tensor *pri = fu_vae_decode(g, r->vae, fu_vae_prior_latent(g, r->vae, w));
        fu_tensor *rows[5] = {x, fu_resize_bicubic(g, rec, S2, S2), fu_sr_forward(g, r->ema, rec),
                              fu_resize_bicubic(g, pri, S2, S2), fu_sr_forward(g, r->ema, pri)};
        for (int i = 0; rc == FU_OK && i < 5; i++)
            if (!rows[i]) rc = fu_last_code();
        for (int i = 0; rc == FU_OK && i < 5; i++)
            for (int64_t k = 0; k < SHEET_COLS; k++) fu_grid_place(grid, rows[i], k, i, k);
        if (rc == FU_OK) rc = fu_image_save_png(r->sheet_path, grid);
    }
    fu_tensor_free(grid);
    fu_graph_free(g);
    return rc;
}

static int write_loss_plot(run *r) {
    static const int cols[4] = {H_L1, H_EDGE, H_PRIOR, H_DLOSS};
    static const float rgb[4][3] = {{0, 0, 1}, {0, 0.6f, 0}, {1, 0.5f, 0}, {0, 0, 0}};
    float *buf = calloc(8 * PLOT_POINTS, sizeof *buf);
    if (!buf) return fu_fail(FU_E_INTERNAL, "train sharp: out of memory");
    fu_plot_series s[4];
    for (int i = 0; i < 4; i++) {
        float *x = buf + 2 * i * PLOT_POINTS, *y = x + PLOT_POINTS;
        int64_t n = fu_history_binned(&r->hist, cols[i], PLOT_POINTS, x, y);
        s[i] = (fu_plot_series){x, y, n, {rgb[i][0], rgb[i][1], rgb[i][2]}};
    }
    int rc = fu_plot_png(r->plot_path, 480, 320, s, 4, 1);
    free(buf);
    return rc;
}

/* A JSON number, or null for the NaN of a loss not computed yet (no adversarial term before
 * adv_start). */
static void json_number(FILE *f, const char *key, double v) {
    if (isfinite(v)) fprintf(f, ", \"%s\": %.5g", key, v);
    else fprintf(f, ", \"%s\": null", key);
}

static int append_run_log(const run *r) {
    FILE *f = fopen(r->log_path, "a");
    if (!f) return fu_fail(FU_E_INPUT, "%s: cannot append", r->log_path);
    const float *h = r->hist.rows + (r->hist.n - 1) * HISTORY_COLS;
    fprintf(f, "{\"step\": %" PRId64 ", \"cpu_hours\": %.4f, \"time\": %lld", r->step, r->cpu_s / 3600.0, (long long)time(NULL));
    static const char *const names[HISTORY_COLS] = {NULL, "l1", "edge", "prior", "adv", "d_loss"};
    for (int c = H_L1; c < HISTORY_COLS; c++) json_number(f, names[c], h[c]);
    fputs("}\n", f);
    return fclose(f) == 0 ? FU_OK : fu_fail(FU_E_INPUT, "%s: write failed", r->log_path);
}

/* ---- the step ---- */

/* The generator's half: fills gg with the batch, the stage's outputs y [B+P,...] and its loss,
 * and steps its optimiser. *real and *fake are gg's tensors the discriminator step reads. */
static int generator_step(run *r, fu_graph *gg, fu_faces_loader *l, float adv_scale, fu_sharp_train_status *st,
                          fu_tensor **real, fu_tensor **fake) {
    int64_t B = r->cfg.batch, P = B / 2 > 0 ? B / 2 : 1, S2 = l->set->size, D = r->vae->cfg.latent;
    fu_graph_reset(gg);
    fu_tensor *x = fu_graph_tensor(gg, 4, (int64_t[]){B, 3, S2, S2});
    fu_tensor *eps = fu_graph_tensor(gg, 2, (int64_t[]){B, D}), *w = fu_graph_tensor(gg, 2, (int64_t[]){P, D});
    if (!x || !eps || !w) return fu_last_code();
    fu_faces_loader_batch(l, r->pos, (int)B, x->data, NULL);
    fu_rng_fill_normal(&r->rng, eps->data, eps->numel, 0, 1);
    for (int64_t k = 0; k < B; k += 2) memset(eps->data + k * D, 0, sizeof(float) * (size_t)D);   /* posterior means */
    fu_rng_fill_normal(&r->rng, w->data, w->numel, 0, 1);
    fu_tensor *logvar = NULL;
    fu_tensor *mu = fu_vae_encode(gg, r->vae, fu_bicubic_downsample(gg, x, 2), &logvar);
    fu_tensor *z = fu_add(gg, mu, fu_mul(gg, fu_exp(gg, fu_scale_shift(gg, logvar, 0.5f, 0)), eps));
    fu_tensor *prior_in = fu_vae_decode(gg, r->vae, fu_vae_prior_latent(gg, r->vae, w));
    fu_tensor *ins[2] = {fu_vae_decode(gg, r->vae, z), prior_in};
    fu_tensor *y = ins[0] && prior_in ? fu_sr_forward(gg, r->sr, fu_concat(gg, ins, 2, 0)) : NULL;
    fu_tensor *y_rec = fu_slice(gg, y, 0, 0, B, 1), *y_prior = fu_slice(gg, y, 0, B, B + P, 1);
    fu_tensor *l1 = fu_l1_loss(gg, y_rec, x), *edge = fu_edge_l1_loss(gg, y_rec, x);
    fu_tensor *prior = fu_l1_loss(gg, fu_bicubic_downsample(gg, y_prior, 4), fu_bicubic_downsample(gg, prior_in, 2));
    fu_tensor *loss = fu_add(gg, fu_add(gg, l1, fu_scale_shift(gg, edge, r->cfg.edge_weight, 0)),
                             fu_scale_shift(gg, prior, r->cfg.prior_weight, 0));
    fu_tensor *adv = NULL;
    if (adv_scale > 0) {
        adv = fu_neg(gg, fu_mean_all(gg, disc_forward(gg, &r->d, disc_input(gg, &r->rng, y))));
        loss = fu_add(gg, loss, fu_scale_shift(gg, adv, adv_scale, 0));
    }
    if (!loss) return fu_last_code();
    if (!isfinite(loss->data[0])) return fu_fail(FU_E_INTERNAL, "train sharp: loss is not finite at step %" PRId64 " (lower --lr)", r->step + 1);
    fu_optim_zero_grad(r->opt_g);
    int rc = fu_graph_backward(gg, loss, NULL);
    if (rc == FU_OK) rc = fu_optim_step(r->opt_g, r->cfg.lr_g);
    *st = (fu_sharp_train_status){.l1 = l1->data[0], .edge = edge->data[0], .prior = prior->data[0], .adv = adv ? adv->data[0] : NAN};
    *real = x;
    *fake = y;
    return rc;
}

/* The discriminator's half on the generator step's real faces and outputs (as constants). */
static int discriminator_step(run *r, fu_graph *gd, const fu_tensor *real, const fu_tensor *fake, float *d_loss) {
    fu_graph_reset(gd);
    fu_tensor *xr = fu_graph_tensor(gd, 4, real->shape), *xf = fu_graph_tensor(gd, 4, fake->shape);
    if (!xr || !xf) return fu_last_code();
    fu_tensor_copy_data(xr, real);
    fu_tensor_copy_data(xf, fake);
    fu_tensor *dr = disc_forward(gd, &r->d, disc_input(gd, &r->rng, xr));
    fu_tensor *df = disc_forward(gd, &r->d, disc_input(gd, &r->rng, xf));
    fu_tensor *loss = fu_add(gd, fu_mean_all(gd, fu_relu(gd, fu_scale_shift(gd, dr, -1, 1))),
                             fu_mean_all(gd, fu_relu(gd, fu_scale_shift(gd, df, 1, 1))));
    if (!loss) return fu_last_code();
    fu_optim_zero_grad(r->opt_d);
    int rc = fu_graph_backward(gd, loss, NULL);
    if (rc == FU_OK) rc = fu_optim_step(r->opt_d, r->cfg.lr_d);
    *d_loss = loss->data[0];
    return rc;
}

static void update_ema(run *r) {
    float decay = fminf(r->cfg.ema, (float)(1 + r->step) / (float)(10 + r->step));
    for (int i = 0; i < r->sr->n_params; i++) {
        float *e = r->ema->params[i]->data;
        const float *p = r->sr->params[i]->data;
        for (int64_t j = 0; j < r->sr->params[i]->numel; j++) e[j] = decay * e[j] + (1 - decay) * p[j];
    }
}

static float adv_scale(const fu_sharp_train_config *c, int64_t step) {
    if (c->adv_weight <= 0 || step < c->adv_start) return 0;
    float ramp = c->adv_ramp > 0 ? fminf(1.0f, (float)(step - c->adv_start + 1) / (float)c->adv_ramp) : 1.0f;
    return c->adv_weight * ramp;
}

static int train_step(run *r, fu_graph *gg, fu_graph *gd, fu_faces_loader *l, fu_sharp_train_status *st) {
    double t0 = cpu_now();
    fu_tensor *real = NULL, *fake = NULL;
    float scale = adv_scale(&r->cfg, r->step);
    int rc = generator_step(r, gg, l, scale, st, &real, &fake);
    st->d_loss = NAN;
    if (rc == FU_OK && r->step + 1 >= r->cfg.adv_start) rc = discriminator_step(r, gd, real, fake, &st->d_loss);
    if (rc != FU_OK) return rc;
    r->step++;
    r->pos += r->cfg.batch;
    update_ema(r);
    r->cpu_s += cpu_now() - t0;
    st->step = r->step, st->steps = r->cfg.steps, st->cpu_hours = r->cpu_s / 3600.0;
    float row[HISTORY_COLS] = {(float)r->step, st->l1, st->edge, st->prior, st->adv, st->d_loss};
    return fu_history_push(&r->hist, row);
}

static int due(int64_t step, int64_t every, int64_t last) { return step == last || (every > 0 && step % every == 0); }

static int check_config(const fu_sharp_train_config *c) {
    if (c->steps < 1 || c->batch < 2 || c->batch > 1024 || !(c->lr_g > 0) || !(c->lr_d > 0) || !(c->edge_weight >= 0) ||
        !(c->prior_weight >= 0) || !(c->adv_weight >= 0) || c->adv_start < 0 || c->adv_ramp < 0 || !(c->ema >= 0 && c->ema < 1) ||
        c->disc_channels < 1 || c->disc_channels > 256)
        return fu_fail(FU_E_INPUT, "train sharp: steps >= 1, batch 2..1024, learning rates > 0, weights >= 0, ema in [0,1), "
                                   "discriminator channels 1..256");
    return FU_OK;
}

int fu_train_sharp(const fu_sharp_train_config *cfg, const fu_faces *set,
                   void (*progress)(const fu_sharp_train_status *s, void *ctx), void *ctx) {
    int rc = check_config(cfg);
    if (rc != FU_OK) return rc;
    run r;
    rc = run_open(&r, cfg);
    if (rc == FU_OK && 2 * r.vae->cfg.size != set->size)
        rc = fu_fail(FU_E_INPUT, "train sharp: the VAE makes %d px faces, so the stage needs a %d px face set, not %d px",
                     r.vae->cfg.size, 2 * r.vae->cfg.size, set->size);
    if (rc == FU_OK && r.step > cfg->steps)
        rc = fu_fail(FU_E_INPUT, "train sharp: checkpoint is at step %" PRId64 ", beyond --steps %" PRId64, r.step, cfg->steps);
    r.cfg.steps = cfg->steps, r.cfg.lr_g = cfg->lr_g, r.cfg.lr_d = cfg->lr_d;
    fu_faces_loader l = {0};
    if (rc == FU_OK)
        rc = r.cfg.balanced ? fu_faces_loader_init_balanced(&l, set, FU_SPLIT_TRAIN, r.cfg.seed, 1)
                            : fu_faces_loader_init(&l, set, FU_SPLIT_TRAIN, r.cfg.seed, 1);
    fu_graph *gg = fu_graph_new(), *gd = fu_graph_new();
    if (rc == FU_OK && (!gg || !gd)) rc = fu_fail(FU_E_INTERNAL, "train sharp: out of memory");
    while (rc == FU_OK && r.step < cfg->steps) {
        fu_sharp_train_status st;
        if ((rc = train_step(&r, gg, gd, &l, &st)) != FU_OK) break;
        if (progress) progress(&st, ctx);
        if (due(r.step, cfg->sample_every, cfg->steps) && (rc = write_sample_sheet(&r, set)) == FU_OK) rc = write_loss_plot(&r);
        if (rc == FU_OK && due(r.step, cfg->checkpoint_every, cfg->steps) && (rc = save_checkpoint(&r)) == FU_OK) rc = append_run_log(&r);
    }
    fu_graph_free(gg);
    fu_graph_free(gd);
    fu_faces_loader_free(&l);
    run_close(&r);
    return rc;
}
