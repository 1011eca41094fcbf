/* Generator adapters for the search: StyleGAN v1 (with PULSE's Gaussian fit), StyleGAN2
 * (mapping network per latent row) and faceup's own VAE decoder. See generator.h. */
#include "gen/generator.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/ops.h"
#include "core/rng.h"
#include "gen/stylegan1.h"
#include "gen/stylegan2.h"
#include "gen/sharp.h"
#include "gen/vae.h"

void fu_generator_free(fu_generator *gen) {
    if (!gen) return;
    if (gen->destroy) gen->destroy(gen);
    free(gen);
}

/* Raw StyleGAN output (about [-1, 1]) to [0, 1] as PULSE does: (x + 1) / 2, no clamp. */
static fu_tensor *to_unit_range(fu_graph *g, fu_tensor *raw) { return fu_scale_shift(g, raw, 0.5f, 0.5f); }

/* ---------------------------------------------------------------- StyleGAN v1 */

typedef struct sg1_impl {
    fu_stylegan1 *synthesis;
    fu_tensor *mean, *std;       /* Gaussian fit [D] */
} sg1_impl;

static int sg1_noise_shape(const fu_generator *gen, int i, int64_t shape[4]) {
    const sg1_impl *s = gen->impl;
    return fu_sg1_noise_shape(s->synthesis, i, shape) < 0 ? FU_E_INPUT : FU_OK;
}

static fu_tensor *sg1_build(const fu_generator *gen, fu_graph *g, fu_tensor *z, fu_tensor *const *noise, fu_tensor **latent_in) {
    const sg1_impl *s = gen->impl;
    fu_tensor *w = fu_pulse_gaussfit(g, z, s->mean, s->std);
    if (latent_in) *latent_in = w;
    return to_unit_range(g, fu_sg1_forward(g, s->synthesis, w, noise, NULL));
}

static void sg1_destroy(fu_generator *gen) {
    sg1_impl *s = gen->impl;
    if (!s) return;
    fu_sg1_free(s->synthesis);
    fu_tensor_free(s->mean);
    fu_tensor_free(s->std);
    free(s);
}

/* PULSE's fit: mean and unbiased std of leaky_relu(mapping(z), 5) (the inverse of the search's
 * leaky_relu(., 0.2)) over n draws z ~ N(0, I), seed 0, in batches. */
static int gaussfit_from_mapping(const fu_weights *aux, int64_t dim, int n, fu_tensor *mean, fu_tensor *std) {
    fu_sg1_mapping *map = NULL;
    int rc = fu_sg1_mapping_load(aux, &map);
    if (rc != FU_OK) return rc;
    if (map->dim != dim) {
        fu_sg1_mapping_free(map);
        return fu_fail(FU_E_INPUT, "stylegan1: mapping network width %lld does not match the synthesis latent size %lld", (long long)map->dim, (long long)dim);
    }
    enum { BATCH = 4096 };
    double *sum = calloc((size_t)dim, sizeof *sum), *sq = calloc((size_t)dim, sizeof *sq);
    fu_graph *g = fu_graph_new();
    fu_rng r;
    fu_rng_seed(&r, 0);
    if (!sum || !sq || !g) rc = fu_fail(FU_E_INTERNAL, "stylegan1: out of memory for the Gaussian fit");
    for (int done = 0; rc == FU_OK && done < n; done += BATCH) {
        int64_t b = n - done < BATCH ? n - done : BATCH;
        fu_graph_reset(g);
        fu_tensor *z = fu_graph_tensor(g, 2, (int64_t[]){b, dim});
        if (z) fu_rng_fill_normal(&r, z->data, z->numel, 0, 1);
        fu_tensor *w = fu_sg1_mapping_forward(g, map, z);
        if (!w) { rc = fu_last_code() ? fu_last_code() : FU_E_INTERNAL; break; }
        for (int64_t k = 0; k < b; k++)
            for (int64_t d = 0; d < dim; d++) {
                double v = w->data[k * dim + d];
                if (v < 0) v *= 5;
                sum[d] += v;
                sq[d] += v * v;
            }
    }
    for (int64_t d = 0; rc == FU_OK && d < dim; d++) {
        double m = sum[d] / n, var = (sq[d] - n * m * m) / (n - 1);
        mean->data[d] = (float)m;
        std->data[d] = (float)sqrt(var > 0 ? var : 0);
    }
    free(sum);
    free(sq);
    fu_graph_free(g);
    fu_sg1_mapping_free(map);
    return rc;
}

/* mean/std from an aux table: PULSE's gaussian_fit.pt ("mean", "std") or a mapping network. */
static int load_gaussfit(const fu_weights *aux, int64_t dim, const char *label, sg1_impl *s) {
    if (!aux)
        return fu_fail(FU_E_INPUT, "%s: StyleGAN v1 needs the Gaussian fit of its mapping network: pass --gaussfit FILE "
                                   "(PULSE's gaussian_fit.pt with 'mean' and 'std', or the G_mapping state_dict)", label);
    if (!(s->mean = fu_tensor_newv(1, dim)) || !(s->std = fu_tensor_newv(1, dim))) return FU_E_INTERNAL;
    if (fu_weights_has(aux, "dense0.weight")) return gaussfit_from_mapping(aux, dim, FU_GAUSSFIT_SAMPLES, s->mean, s->std);
    fu_tensor *m = fu_weights_get_numel(aux, "mean", dim), *sd = fu_weights_get_numel(aux, "std", dim);
    int rc = m && sd ? FU_OK : fu_fail(FU_E_INPUT, "Gaussian fit: needs 'mean' and 'std' of %lld values, or a mapping network ('dense0.weight' ...)", (long long)dim);
    if (rc == FU_OK) {
        memcpy(s->mean->data, m->data, (size_t)dim * sizeof(float));
        memcpy(s->std->data, sd->data, (size_t)dim * sizeof(float));
    }
    fu_tensor_free(m);
    fu_tensor_free(sd);
    return rc;
}

static int open_stylegan1(const fu_weights *w, const fu_weights *aux, const char *label, fu_generator *gen) {
    sg1_impl *s = fu_calloc(1, sizeof *s);
    if (!s) return FU_E_INTERNAL;
    gen->impl = s;
    gen->destroy = sg1_destroy;
    int rc = fu_sg1_load(w, &s->synthesis);
    if (rc != FU_OK) return rc;
    if ((rc = load_gaussfit(aux, s->synthesis->dlatent_size, label, s)) != FU_OK) return rc;
    gen->kind = "stylegan1";
    gen->resolution = s->synthesis->resolution;
    gen->n_latent = s->synthesis->n_layers;
    gen->latent_dim = s->synthesis->dlatent_size;
    gen->n_noise = s->synthesis->n_layers;
    gen->noise_shape = sg1_noise_shape;
    gen->build = sg1_build;
    return FU_OK;
}

/* ---------------------------------------------------------------- StyleGAN2 */

static int sg2_noise_shape(const fu_generator *gen, int i, int64_t shape[4]) {
    return fu_sg2_noise_shape(gen->impl, i, shape) < 0 ? FU_E_INPUT : FU_OK;
}

/* Every latent row goes through the mapping network on its own: z [N,L,D] -> w [N,L,D]. */
static fu_tensor *sg2_build(const fu_generator *gen, fu_graph *g, fu_tensor *z, fu_tensor *const *noise, fu_tensor **latent_in) {
    const fu_stylegan2 *m = gen->impl;
    if (!z) return NULL;
    int64_t N = z->shape[0], L = gen->n_latent, D = gen->latent_dim;
    fu_tensor *rows = fu_reshape(g, z, 2, (int64_t[]){N * L, D});
    fu_tensor *w = fu_reshape(g, fu_sg2_mapping(g, m, rows), 3, (int64_t[]){N, L, D});
    if (latent_in) *latent_in = w;
    return to_unit_range(g, fu_sg2_forward(g, m, w, noise, NULL));
}

static void sg2_destroy(fu_generator *gen) { fu_sg2_free(gen->impl); }

static int open_stylegan2(const fu_weights *w, fu_generator *gen) {
    fu_stylegan2 *m = NULL;
    int rc = fu_sg2_load(w, &m);
    if (rc != FU_OK) return rc;
    gen->impl = m;
    gen->destroy = sg2_destroy;
    gen->kind = "stylegan2";
    gen->resolution = m->size;
    gen->n_latent = m->n_latent;
    gen->latent_dim = m->style_dim;
    gen->n_noise = m->n_noise;
    gen->noise_shape = sg2_noise_shape;
    gen->build = sg2_build;
    return FU_OK;
}

/* ---------------------------------------------------------------- detection */

/* ---------------------------------------------------------------- faceup's VAE decoder */

static int vae_noise_shape(const fu_generator *gen, int i, int64_t shape[4]) {
    (void)gen; (void)shape;
    return fu_fail(FU_E_INPUT, "vae: no noise map %d (the decoder takes none)", i);
}

/* The searched z [N, 1, D] is the whitened latent w of the model's prior (gen/vae.h; the
 * decoder's own latent itself when the file has no prior) -> mean + L w -> decoder -> [-1, 1]
 * image -> [0, 1]. So PULSE's sphere for N(0, I) draws is the prior's typical set, as with its
 * Gaussian fit for StyleGAN v1. The single latent row is its own latent_in (GEOCROSS has no
 * pairs of rows to compare). */
static fu_tensor *vae_build(const fu_generator *gen, fu_graph *g, fu_tensor *z, fu_tensor *const *noise, fu_tensor **latent_in) {
    (void)noise;
    const fu_vae *m = gen->impl;
    if (latent_in) *latent_in = z;
    fu_tensor *flat = fu_reshape(g, z, 2, (int64_t[]){z ? z->shape[0] : 0, m->cfg.latent});
    return to_unit_range(g, fu_vae_decode(g, m, fu_vae_prior_latent(g, m, flat)));
}

/* The encoder's posterior sample for the bicubic-upscaled thumbnail: z = mu + exp(logvar / 2) *
 * eps, with eps the seed's N(0, I) draw, so seeds differ as posterior samples do; then whitened
 * by the prior (the search moves w). */
static int vae_posterior_latent(const fu_vae *m, const fu_tensor *thumb, fu_tensor *z) {
    fu_graph *g = fu_graph_new();
    fu_tensor *x = g ? fu_graph_tensor(g, 4, thumb->shape) : NULL;
    if (x) memcpy(x->data, thumb->data, (size_t)thumb->numel * sizeof(float));
    fu_tensor *logvar = NULL;
    fu_tensor *up = x ? fu_resize_bicubic(g, x, m->cfg.size, m->cfg.size) : NULL;
    fu_tensor *mu = fu_vae_encode(g, m, fu_scale_shift(g, up, 2.0f, -1.0f), &logvar);
    int rc = mu && logvar ? FU_OK : (fu_last_code() ? fu_last_code() : FU_E_INTERNAL);
    for (int64_t i = 0; rc == FU_OK && i < z->numel; i++)
        z->data[i] = mu->data[i] + expf(0.5f * logvar->data[i]) * z->data[i];
    float *posterior = rc == FU_OK ? malloc(sizeof(float) * (size_t)z->numel) : NULL;
    if (rc == FU_OK && !posterior) rc = fu_fail(FU_E_INTERNAL, "vae: out of memory");
    if (posterior) {
        memcpy(posterior, z->data, sizeof(float) * (size_t)z->numel);
        fu_vae_prior_whiten(m, posterior, z->data);
        free(posterior);
    }
    fu_graph_free(g);
    return rc;
}

static int vae_init_latent(const fu_generator *gen, const fu_tensor *thumb, fu_tensor *z) {
    return vae_posterior_latent(gen->impl, thumb, z);
}

static void vae_destroy(fu_generator *gen) { fu_vae_free(gen->impl); }

static int open_vae(const char *path, fu_generator *gen) {
    fu_vae *m = NULL;
    int rc = fu_vae_load(path, &m);
    if (rc != FU_OK) return rc;
    gen->kind = "vae";
    gen->impl = m;
    gen->destroy = vae_destroy;
    gen->resolution = m->cfg.size;
    gen->n_latent = 1;
    gen->latent_dim = m->cfg.latent;
    gen->n_noise = 0;
    gen->noise_shape = vae_noise_shape;
    gen->build = vae_build;
    gen->init_latent = vae_init_latent;
    return FU_OK;
}

/* ---------------------------------------------------------------- faceup's sharp generator */

/* As vae_build, through the sharpening stage (gen/sharp.h): [N,3,2S,2S]. */
static fu_tensor *sharp_build(const fu_generator *gen, fu_graph *g, fu_tensor *z, fu_tensor *const *noise, fu_tensor **latent_in) {
    (void)noise;
    const fu_sharp *m = gen->impl;
    if (latent_in) *latent_in = z;
    fu_tensor *flat = fu_reshape(g, z, 2, (int64_t[]){z ? z->shape[0] : 0, m->vae->cfg.latent});
    return to_unit_range(g, fu_sharp_decode(g, m, fu_vae_prior_latent(g, m->vae, flat)));
}

static int sharp_init_latent(const fu_generator *gen, const fu_tensor *thumb, fu_tensor *z) {
    const fu_sharp *m = gen->impl;
    return vae_posterior_latent(m->vae, thumb, z);
}

static void sharp_destroy(fu_generator *gen) {
    fu_sharp_release(gen->impl);
    free(gen->impl);
}

static int open_sharp(const char *path, fu_generator *gen) {
    fu_sharp *m = fu_calloc(1, sizeof *m);
    if (!m) return FU_E_INTERNAL;
    int rc = fu_sharp_load(path, m);
    if (rc != FU_OK) { free(m); return rc; }
    gen->kind = "vae+sr";
    gen->impl = m;
    gen->destroy = sharp_destroy;
    gen->resolution = 2 * m->vae->cfg.size;
    gen->n_latent = 1;
    gen->latent_dim = m->vae->cfg.latent;
    gen->n_noise = 0;
    gen->noise_shape = vae_noise_shape;
    gen->build = sharp_build;
    gen->init_latent = sharp_init_latent;
    return FU_OK;
}

int fu_generator_from_weights(const fu_weights *w, const fu_weights *aux, const char *label, fu_generator **out) {
    *out = NULL;
    fu_generator *gen = fu_calloc(1, sizeof *gen);
    if (!gen) return FU_E_INTERNAL;
    int rc;
    if (fu_weights_has(w, "g_ema.input.input") || fu_weights_has(w, "input.input")) rc = open_stylegan2(w, gen);
    else if (fu_weights_has(w, "blocks.4x4.const")) rc = open_stylegan1(w, aux, label, gen);
    else rc = fu_fail(FU_E_INPUT, "%s: not a generator faceup knows (expected a StyleGAN2 checkpoint with '[g_ema.]input.input' "
                                  "or PULSE's StyleGAN v1 G_synthesis with 'blocks.4x4.const')", label);
    if (rc == FU_OK && gen->n_noise > FU_GEN_MAX_NOISE) rc = fu_fail(FU_E_INPUT, "%s: more than %d noise maps", label, FU_GEN_MAX_NOISE);
    if (rc != FU_OK) {
        fu_generator_free(gen);
        return rc;
    }
    *out = gen;
    return FU_OK;
}

int fu_generator_open(const char *path, const char *aux_path, fu_generator **out) {
    fu_weights *w = NULL, *aux = NULL;
    *out = NULL;
    int rc = fu_weights_open(path, &w);
    if (rc == FU_OK && (fu_weights_has(w, "dec.fc.weight") || fu_weights_has(w, "sr.head.weight"))) {
        /* faceup's VAE, alone or with its sharpening stage: loaded by their own readers */
        int sharp = fu_weights_has(w, "sr.head.weight");
        fu_weights_free(w);
        fu_generator *gen = fu_calloc(1, sizeof *gen);
        if (!gen) return FU_E_INTERNAL;
        if ((rc = sharp ? open_sharp(path, gen) : open_vae(path, gen)) != FU_OK) { fu_generator_free(gen); return rc; }
        *out = gen;
        return FU_OK;
    }
    if (rc == FU_OK && aux_path) rc = fu_weights_open(aux_path, &aux);
    if (rc == FU_OK) rc = fu_generator_from_weights(w, aux, path, out);
    fu_weights_free(w);
    fu_weights_free(aux);
    return rc;
}
