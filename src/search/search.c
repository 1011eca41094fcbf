/* The PULSE-style latent search; the algorithm is described in search.h. Reading order:
 * fu_search_run -> search_seed -> run_wave (the optimisation loop) -> build_loss (the terms). */
#include "search/search.h"
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/error.h"
#include "core/ops.h"
#include "core/rng.h"

int fu_noise_mode_parse(const char *name, fu_noise_mode *out) {
    static const char *names[] = {"zero", "fixed", "trainable"};
    for (int i = 0; i < 3; i++)
        if (name && !strcmp(name, names[i])) { *out = (fu_noise_mode)i; return FU_OK; }
    return fu_fail(FU_E_INPUT, "unknown noise mode '%s' (zero, fixed, trainable)", name ? name : "(null)");
}

fu_search_config fu_search_defaults(void) {
    fu_search_config c = {0};
    fu_loss_parse("100*L2+0.05*GEOCROSS", &c.loss);
    c.n_seeds = 1;
    c.steps = 100;
    c.lr = 0.4f;
    c.eps = 2e-3f;
    c.face_tolerance = 0.1f;
    c.schedule = FU_LR_LINEAR1CYCLEDROP;
    c.noise = FU_NOISE_TRAINABLE;
    c.trainable_noise_layers = 5;
    return c;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ---------------------------------------------------------------- checks */

int fu_search_check_thumbnail(const fu_generator *gen, const fu_tensor *thumb, const char *label, int *factor) {
    int64_t R = gen->resolution;
    if (thumb->ndim != 4 || thumb->shape[0] != 1 || thumb->shape[1] != 3)
        return fu_fail(FU_E_INPUT, "%s: expected one RGB image", label);
    int64_t h = thumb->shape[2], w = thumb->shape[3];
    int64_t f = h > 0 ? R / h : 0;
    /* The downsampler reflect-pads 3f - 3f/2 pixels, which needs R above that (f <= 64 anyway). */
    int ok = h == w && f >= 2 && f <= 64 && f * h == R && (f & (f - 1)) == 0 && R > 3 * f - 3 * f / 2;
    if (ok) {
        *factor = (int)f;
        return FU_OK;
    }
    char sizes[128] = "";
    size_t used = 0;
    for (int64_t k = 2; k <= 64 && R / k >= 1 && used < sizeof sizes; k *= 2)
        if (R % k == 0 && R > 3 * k - 3 * k / 2)
            used += (size_t)snprintf(sizes + used, sizeof sizes - used, "%s%lldx%lld", used ? ", " : "", (long long)(R / k), (long long)(R / k));
    return fu_fail(FU_E_INPUT, "%s: thumbnail is %lldx%lld, but the %lldx%lld generator needs a square thumbnail smaller by a power of two (%s)",
                   label, (long long)w, (long long)h, (long long)R, (long long)R, used ? sizes : "none");
}

/* The guide a face term needs, or NULL for image/latent terms. */
static const fu_search_guide *guide_for(const fu_search_guides *guides, fu_loss_term_kind kind) {
    if (!guides) return NULL;
    if (kind == FU_TERM_IDENTITY_SCORE || kind == FU_TERM_L2_IDENTITY) return &guides->identity;
    if (kind == FU_TERM_RACE) return &guides->race;
    if (kind == FU_TERM_ATTR) return &guides->attr;
    return NULL;
}

static int is_face_term(fu_loss_term_kind kind) { return kind >= FU_TERM_IDENTITY_SCORE; }

/* Pixel variance and the mean squared difference of horizontal and vertical neighbours. */
static void pixel_moments(const fu_tensor *t, double *var, double *neighbour_sq) {
    int64_t C = t->shape[1], H = t->shape[2], W = t->shape[3], pairs = 0;
    double sum = 0, sq = 0, diff = 0;
    for (int64_t c = 0; c < C; c++)
        for (int64_t y = 0; y < H; y++)
            for (int64_t x = 0; x < W; x++) {
                const float *p = t->data + (c * H + y) * W + x;
                sum += p[0];
                sq += (double)p[0] * p[0];
                if (x + 1 < W) { diff += (double)(p[0] - p[1]) * (p[0] - p[1]); pairs++; }
                if (y + 1 < H) { diff += (double)(p[0] - p[W]) * (p[0] - p[W]); pairs++; }
            }
    double n = (double)(C * H * W);
    *var = sq / n - (sum / n) * (sum / n);
    *neighbour_sq = pairs ? diff / (double)pairs : 0;
}

float fu_thumbnail_roughness(const fu_tensor *thumb) {
    double var, nsq;
    pixel_moments(thumb, &var, &nsq);
    return var > 1e-12 ? (float)(nsq / (2 * var)) : 0.0f;
}

int fu_search_check_content(const fu_tensor *thumb, const char *label) {
    double var, nsq;
    pixel_moments(thumb, &var, &nsq);
    if (var < (double)FU_THUMB_MIN_STD * FU_THUMB_MIN_STD)
        return fu_fail(FU_E_INPUT, "%s: the thumbnail is flat (one colour), not a face", label);
    float rough = (float)(nsq / (2 * var));
    if (rough > FU_THUMB_MAX_ROUGHNESS)
        return fu_fail(FU_E_INPUT, "%s: the thumbnail looks like noise, not a face (neighbouring pixels differ as much as random ones: roughness %.2f > %.2f)",
                       label, (double)rough, (double)FU_THUMB_MAX_ROUGHNESS);
    return FU_OK;
}

int fu_search_check_guides(const fu_loss_spec *spec, const fu_search_guides *guides) {
    for (int i = 0; i < spec->n_terms; i++) {
        const fu_loss_term *t = &spec->terms[i];
        if (!is_face_term(t->kind)) continue;
        const fu_search_guide *gd = guide_for(guides, t->kind);
        if (gd && gd->loss) continue;
        char name[48];
        const char *net = t->kind == FU_TERM_RACE ? "race classifier" : t->kind == FU_TERM_ATTR ? "attribute classifier" : "identity network";
        return fu_fail(FU_E_INPUT, "%s needs the %s: no guide for it was given", fu_loss_term_name(t, name, sizeof name), net);
    }
    return FU_OK;
}

/* ---------------------------------------------------------------- the loss */

typedef struct loss_graph {
    fu_tensor *total;            /* [1] weighted sum */
    fu_tensor *mse;              /* [1] unclamped downscale L2, for the eps test */
    fu_tensor *terms[FU_LOSS_MAX_TERMS];  /* unweighted values */
    fu_tensor *image;
} loss_graph;

/* A [1] constant of the graph. */
static fu_tensor *scalar(fu_graph *g, float v) {
    fu_tensor *t = fu_graph_tensor(g, 1, (int64_t[]){1});
    if (t) t->data[0] = v;
    return t;
}

/* One term, unweighted. L2 and L1 are clamped below at eps as in PULSE, so once the thumbnail
 * is matched within eps they stop pulling and the other terms take over. */
static fu_tensor *term_value(fu_graph *g, const fu_loss_term *t, const fu_search_config *cfg, fu_tensor *image,
                             fu_tensor *low, const fu_tensor *thumb, fu_tensor *mse, fu_tensor *latent_in) {
    switch (t->kind) {
    case FU_TERM_L2: return fu_clamp(g, mse, cfg->eps, FLT_MAX);
    case FU_TERM_L1: return fu_scale_shift(g, fu_clamp(g, fu_l1_loss(g, low, (fu_tensor *)thumb), cfg->eps, FLT_MAX), 10, 0);
    case FU_TERM_GEOCROSS: return latent_in && latent_in->shape[1] > 1 ? fu_geocross(g, latent_in) : scalar(g, 0);
    default: {
        const fu_search_guide *gd = guide_for(cfg->guides, t->kind);
        return gd->loss(gd->ctx, g, image, t);
    }
    }
}

/* Generator, downsampler and every term of spec into g. FU_OK or an error. */
static int build_loss(fu_graph *g, const fu_generator *gen, const fu_search_config *cfg, const fu_loss_spec *spec,
                      fu_tensor *z, fu_tensor *const *noise, const fu_tensor *thumb, int factor, loss_graph *out) {
    fu_tensor *latent_in = NULL;
    out->image = gen->build(gen, g, z, noise, &latent_in);
    fu_tensor *low = fu_bicubic_downsample(g, out->image, factor);
    out->mse = fu_mse_loss(g, low, (fu_tensor *)thumb);
    out->total = NULL;
    for (int i = 0; i < spec->n_terms; i++) {
        out->terms[i] = term_value(g, &spec->terms[i], cfg, out->image, low, thumb, out->mse, latent_in);
        fu_tensor *weighted = fu_scale_shift(g, out->terms[i], spec->terms[i].weight, 0);
        out->total = out->total ? fu_add(g, out->total, weighted) : weighted;
        if (!out->total) break;
    }
    if (out->total && out->total->numel == 1) return FU_OK;
    if (out->total) return fu_fail(FU_E_INTERNAL, "search: a loss term is not a scalar");
    return fu_last_code() ? fu_last_code() : FU_E_INTERNAL;
}

/* ---------------------------------------------------------------- search state */

typedef struct search_state {
    fu_tensor *z;                          /* [1, L, D], trainable, spherical */
    fu_tensor *noise[FU_GEN_MAX_NOISE];    /* [1, 1, r, r] */
    int n_noise;
} search_state;

static void state_free(search_state *s) {
    fu_tensor_free(s->z);
    for (int i = 0; i < s->n_noise; i++) fu_tensor_free(s->noise[i]);
    memset(s, 0, sizeof *s);
}

/* PULSE's draw for one seed: z first, then the noise maps in layer order; a generator with its
 * own start (init_latent) turns the z draw into it unless cfg asks for PULSE's. */
static int state_init(search_state *s, const fu_generator *gen, const fu_tensor *thumb, const fu_search_config *cfg,
                      uint64_t seed) {
    fu_rng r;
    fu_rng_seed(&r, seed);
    memset(s, 0, sizeof *s);
    if (!(s->z = fu_tensor_newv(3, (int64_t)1, (int64_t)gen->n_latent, gen->latent_dim))) return FU_E_INTERNAL;
    fu_rng_fill_normal(&r, s->z->data, s->z->numel, 0, 1);
    if (gen->init_latent && !cfg->random_init) {
        int rc = gen->init_latent(gen, thumb, s->z);
        if (rc != FU_OK) return rc;
    }
    for (int i = 0; i < gen->n_noise; i++) {
        int64_t shape[4];
        int rc = gen->noise_shape(gen, i, shape);
        if (rc != FU_OK) return rc;
        if (!(s->noise[i] = fu_tensor_new(4, shape))) return FU_E_INTERNAL;
        s->n_noise = i + 1;
        int zero = cfg->noise == FU_NOISE_ZERO || i == gen->n_noise - 1;
        if (!zero) fu_rng_fill_normal(&r, s->noise[i]->data, s->noise[i]->numel, 0, 1);
    }
    return FU_OK;
}

static int state_copy(search_state *dst, const search_state *src) {
    int rc = fu_tensor_copy_data(dst->z, src->z);
    for (int i = 0; rc == FU_OK && i < src->n_noise; i++) rc = fu_tensor_copy_data(dst->noise[i], src->noise[i]);
    return rc;
}

static int state_clone(search_state *dst, const search_state *src) {
    memset(dst, 0, sizeof *dst);
    if (!(dst->z = fu_tensor_clone(src->z))) return FU_E_INTERNAL;
    for (int i = 0; i < src->n_noise; i++) {
        if (!(dst->noise[i] = fu_tensor_clone(src->noise[i]))) return FU_E_INTERNAL;
        dst->n_noise = i + 1;
    }
    return FU_OK;
}

/* The optimiser over z and the trainable noise maps, all spherical (PULSE's SphericalOptimizer
 * over var_list = [latent] + noise_vars). */
static fu_optim *make_optimizer(search_state *s, const fu_search_config *cfg) {
    fu_tensor *params[1 + FU_GEN_MAX_NOISE];
    int n = 0;
    params[n++] = s->z;
    for (int i = 0; i < s->n_noise; i++) {
        int trainable = cfg->noise == FU_NOISE_TRAINABLE && i < cfg->trainable_noise_layers && i < s->n_noise - 1;
        if (fu_tensor_requires_grad(s->noise[i], trainable) != FU_OK) return NULL;
        if (trainable) params[n++] = s->noise[i];
    }
    if (fu_tensor_requires_grad(s->z, 1) != FU_OK) return NULL;
    fu_optim_config oc = fu_optim_adam_defaults();
    fu_optim *o = fu_optim_new(&oc, params, n);
    for (int i = 0; o && i < n; i++)
        if (fu_optim_set_spherical(o, i) != FU_OK) { fu_optim_free(o); return NULL; }
    return o;
}

/* A remembered state: the latent and noise, the image and the losses. */
typedef struct snapshot {
    int valid, step;
    float loss, l2, terms[FU_LOSS_MAX_TERMS];
    search_state state;
    fu_tensor *image;
} snapshot;

static int snapshot_take(snapshot *sn, const search_state *s, const loss_graph *lg, int n_terms, int step) {
    int rc = FU_OK;
    if (!sn->state.z) rc = state_clone(&sn->state, s);
    else rc = state_copy(&sn->state, s);
    if (rc == FU_OK && !sn->image && !(sn->image = fu_tensor_clone(lg->image))) rc = FU_E_INTERNAL;
    if (rc == FU_OK) rc = fu_tensor_copy_data(sn->image, lg->image);
    if (rc != FU_OK) return rc;
    sn->valid = 1;
    sn->step = step;
    sn->loss = lg->total->data[0];
    sn->l2 = lg->mse->data[0];
    for (int i = 0; i < n_terms; i++) sn->terms[i] = lg->terms[i]->data[0];
    return FU_OK;
}

static void snapshot_free(snapshot *sn) {
    state_free(&sn->state);
    fu_tensor_free(sn->image);
    memset(sn, 0, sizeof *sn);
}

/* ---------------------------------------------------------------- the loop */

/* PULSE's extra acceptance rule for attribute terms: every RACE_IS_k / ATTR_k_IS_v term's
 * unweighted value within tol. */
static int face_terms_met(const fu_loss_spec *spec, const loss_graph *lg, float tol) {
    for (int i = 0; i < spec->n_terms; i++)
        if ((spec->terms[i].kind == FU_TERM_RACE || spec->terms[i].kind == FU_TERM_ATTR) && !(lg->terms[i]->data[0] <= tol)) return 0;
    return 1;
}

/* The graph seed of one step: stochastic ops (the face guides' jitter) draw anew every step,
 * reproducibly for a given search seed. */
static uint64_t step_seed(uint64_t seed, int wave, int step) {
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + ((uint64_t)wave << 32) + (uint64_t)step;
    x ^= x >> 31;
    return x * 0xbf58476d1ce4e5b9ull;
}

/* Optimises s with spec for cfg->steps steps; on return *accepted / *best hold the lowest-loss
 * states with L2 <= eps / overall (accepted->valid = 0 when none met eps). */
static int run_wave(const fu_generator *gen, const fu_tensor *thumb, int factor, const fu_search_config *cfg,
                    const fu_loss_spec *spec, search_state *s, int seed_index, int wave, snapshot *accepted, snapshot *best) {
    fu_graph *g = fu_graph_new();
    fu_optim *opt = make_optimizer(s, cfg);
    loss_graph lg;
    uint64_t seed = cfg->first_seed + (uint64_t)seed_index;
    if (g) g->seed = step_seed(seed, wave, 0);
    int rc = g && opt ? build_loss(g, gen, cfg, spec, s->z, s->noise, thumb, factor, &lg) : FU_E_INTERNAL;
    for (int step = 0; rc == FU_OK && step < cfg->steps; step++) {
        if (step > 0) {   /* step 0 was evaluated by the build */
            g->seed = step_seed(seed, wave, step);
            if ((rc = fu_graph_forward(g)) != FU_OK) break;
        }
        float loss = lg.total->data[0], l2 = lg.mse->data[0];
        if (loss != loss) { rc = fu_fail(FU_E_INTERNAL, "search: the loss became NaN at step %d", step); break; }
        if (!best->valid || loss < best->loss) rc = snapshot_take(best, s, &lg, spec->n_terms, step);
        if (rc == FU_OK && l2 <= cfg->eps && face_terms_met(spec, &lg, cfg->face_tolerance) && (!accepted->valid || loss < accepted->loss))
            rc = snapshot_take(accepted, s, &lg, spec->n_terms, step);
        if (rc != FU_OK) break;
        if (cfg->on_step)
            cfg->on_step(cfg->ctx, &(fu_search_step){seed_index, wave, step, cfg->steps, loss, l2, best->image});
        if (step == cfg->steps - 1) break;   /* the last update would never be evaluated */
        fu_optim_zero_grad(opt);
        if ((rc = fu_graph_backward(g, lg.total, NULL)) != FU_OK) break;
        rc = fu_optim_step(opt, cfg->lr * fu_lr_factor(cfg->schedule, step, cfg->steps));
    }
    fu_optim_free(opt);
    fu_graph_free(g);
    return rc;
}

/* Records a wave's outcome in *w and returns the snapshot the seed should report. */
static const snapshot *finish_wave(fu_search_wave *w, const snapshot *accepted, const snapshot *best, int n_terms,
                                   int steps, double seconds) {
    const snapshot *pick = accepted->valid ? accepted : best;
    w->ran = 1;
    w->status = accepted->valid ? FU_OK : FU_E_NO_SOLUTION;
    w->loss = pick->loss;
    w->l2 = pick->l2;
    memcpy(w->terms, pick->terms, (size_t)n_terms * sizeof(float));
    w->best_step = pick->step;
    w->steps = steps;
    w->seconds = seconds;
    return pick;
}

static int keep_result(fu_search_result *res, const snapshot *pick, int status) {
    fu_tensor_free(res->image);
    fu_tensor_free(res->latent);
    res->image = fu_tensor_clone(pick->image);
    res->latent = fu_tensor_clone(pick->state.z);
    res->status = status;
    return res->image && res->latent ? FU_OK : FU_E_INTERNAL;
}

/* One seed: the first wave, then (when it met eps and cfg has loss2) the second wave from its
 * accepted state. */
static int search_seed(const fu_generator *gen, const fu_tensor *thumb, int factor, const fu_search_config *cfg,
                       int seed_index, fu_search_result *res) {
    search_state s;
    snapshot acc[2] = {{0}}, best[2] = {{0}};
    res->seed = cfg->first_seed + (uint64_t)seed_index;
    double t0 = now_s();
    int rc = state_init(&s, gen, thumb, cfg, res->seed);
    if (rc == FU_OK) rc = run_wave(gen, thumb, factor, cfg, &cfg->loss, &s, seed_index, 0, &acc[0], &best[0]);
    if (rc == FU_OK) {
        const snapshot *p = finish_wave(&res->wave[0], &acc[0], &best[0], cfg->loss.n_terms, cfg->steps, now_s() - t0);
        rc = keep_result(res, p, res->wave[0].status);
    }
    if (rc == FU_OK && cfg->has_loss2 && res->wave[0].status == FU_OK) {
        double t1 = now_s();
        rc = state_copy(&s, &acc[0].state);
        if (rc == FU_OK) rc = run_wave(gen, thumb, factor, cfg, &cfg->loss2, &s, seed_index, 1, &acc[1], &best[1]);
        if (rc == FU_OK) {
            const snapshot *p = finish_wave(&res->wave[1], &acc[1], &best[1], cfg->loss2.n_terms, cfg->steps, now_s() - t1);
            /* A second wave that lost the thumbnail keeps the first wave's image. */
            if (res->wave[1].status == FU_OK) rc = keep_result(res, p, FU_OK);
        }
    }
    for (int w = 0; w < 2; w++) { snapshot_free(&acc[w]); snapshot_free(&best[w]); }
    state_free(&s);
    return rc;
}

int fu_search_run(const fu_generator *gen, const fu_tensor *thumb, const fu_search_config *cfg, fu_search_result *results) {
    int factor;
    memset(results, 0, (size_t)cfg->n_seeds * sizeof *results);
    if (cfg->n_seeds < 1 || cfg->steps < 1 || !(cfg->lr > 0) || !(cfg->eps >= 0) || cfg->loss.n_terms < 1)
        return fu_fail(FU_E_INPUT, "search: needs at least one seed, one step, a loss term, lr > 0 and eps >= 0");
    if (gen->n_noise > FU_GEN_MAX_NOISE) return fu_fail(FU_E_INPUT, "search: more than %d noise maps", FU_GEN_MAX_NOISE);
    int rc = fu_search_check_thumbnail(gen, thumb, "thumbnail", &factor);
    if (rc == FU_OK) rc = fu_search_check_guides(&cfg->loss, cfg->guides);
    if (rc == FU_OK && cfg->has_loss2) rc = fu_search_check_guides(&cfg->loss2, cfg->guides);
    for (int k = 0; rc == FU_OK && k < cfg->n_seeds; k++) rc = search_seed(gen, thumb, factor, cfg, k, &results[k]);
    if (rc != FU_OK) fu_search_results_free(results, cfg->n_seeds);
    return rc;
}

void fu_search_results_free(fu_search_result *results, int n) {
    for (int k = 0; k < n; k++) {
        fu_tensor_free(results[k].image);
        fu_tensor_free(results[k].latent);
        results[k].image = results[k].latent = NULL;
    }
}
