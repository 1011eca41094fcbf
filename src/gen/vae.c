#include "vae.h"
#include "core/error.h"
#include "core/linalg.h"
#include "core/ops.h"
#include "core/rng.h"
#include "faceup.h"
#include "io/safetensors.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LEAK 0.2f

fu_vae_config fu_vae_default_config(void) { return (fu_vae_config){64, 32, 256}; }

static int stages_for_size(int size) {
    for (int n = 1; n <= FU_VAE_MAX_STAGES; n++)
        if ((4 << n) == size) return n;
    return -1;
}

/* Channels after encoder stage i, and after decoder stage i (the decoder mirrors, one step
 * narrower: it ends at c/2). */
static int64_t enc_channels(const fu_vae_config *c, int i) { return (int64_t)c->channels << i; }
static int64_t dec_channels(const fu_vae_config *c, int n, int i) {
    int64_t ch = ((int64_t)c->channels << (n - 1)) >> (i + 1);
    return ch < 1 ? 1 : ch;
}

static fu_tensor *add_param(fu_vae *m, const char *name, int ndim, const int64_t *shape) {
    fu_tensor *t = fu_tensor_new(ndim, shape);
    if (!t) return NULL;
    fu_tensor_set_name(t, name);
    m->params[m->n_params++] = t;
    return t;
}

/* Creates zeroed parameters of the right shapes for cfg (the order is the save/optimiser order). */
static int vae_alloc(fu_vae *m) {
    const fu_vae_config *c = &m->cfg;
    int n = m->n_stages;
    char name[48];
    int64_t in = 3;
    for (int i = 0; i < n; i++) {
        int64_t out = enc_channels(c, i);
        snprintf(name, sizeof name, "enc.conv%d.weight", i);
        m->enc_w[i] = add_param(m, name, 4, (int64_t[]){out, in, 4, 4});
        snprintf(name, sizeof name, "enc.conv%d.bias", i);
        m->enc_b[i] = add_param(m, name, 1, (int64_t[]){out});
        if (!m->enc_w[i] || !m->enc_b[i]) return FU_E_INTERNAL;
        in = out;
    }
    int64_t flat = in * 16, D = c->latent;
    m->mu_w = add_param(m, "enc.mu.weight", 2, (int64_t[]){D, flat});
    m->mu_b = add_param(m, "enc.mu.bias", 1, (int64_t[]){D});
    m->logvar_w = add_param(m, "enc.logvar.weight", 2, (int64_t[]){D, flat});
    m->logvar_b = add_param(m, "enc.logvar.bias", 1, (int64_t[]){D});
    m->fc_w = add_param(m, "dec.fc.weight", 2, (int64_t[]){flat, D});
    m->fc_b = add_param(m, "dec.fc.bias", 1, (int64_t[]){flat});
    if (!m->mu_w || !m->mu_b || !m->logvar_w || !m->logvar_b || !m->fc_w || !m->fc_b) return FU_E_INTERNAL;
    for (int i = 0; i < n; i++) {
        int64_t out = dec_channels(c, n, i);
        snprintf(name, sizeof name, "dec.conv%d.weight", i);
        m->dec_w[i] = add_param(m, name, 4, (int64_t[]){out, in, 3, 3});
        snprintf(name, sizeof name, "dec.conv%d.bias", i);
        m->dec_b[i] = add_param(m, name, 1, (int64_t[]){out});
        if (!m->dec_w[i] || !m->dec_b[i]) return FU_E_INTERNAL;
        in = out;
    }
    m->rgb_w = add_param(m, "dec.rgb.weight", 4, (int64_t[]){3, in, 3, 3});
    m->rgb_b = add_param(m, "dec.rgb.bias", 1, (int64_t[]){3});
    return m->rgb_w && m->rgb_b ? FU_OK : FU_E_INTERNAL;
}

static fu_vae *vae_shell(const fu_vae_config *cfg) {
    int n = stages_for_size(cfg->size);
    if (n < 0 || cfg->channels < 1 || cfg->channels > 1024 || cfg->latent < 1 || cfg->latent > 4096 ||
        ((int64_t)cfg->channels << (n - 1)) > 4096)
        return fu_fail_null(FU_E_INPUT, "vae: bad config size %d channels %d latent %d (size 4*2^k <= %d, "
                            "channels 1..1024, latent 1..4096)", cfg->size, cfg->channels, cfg->latent,
                            4 << FU_VAE_MAX_STAGES);
    fu_vae *m = calloc(1, sizeof *m);
    if (!m) return fu_fail_null(FU_E_INTERNAL, "vae: out of memory");
    m->cfg = *cfg;
    m->n_stages = n;
    if (vae_alloc(m) != FU_OK) {
        fu_vae_free(m);
        return fu_fail_null(FU_E_INTERNAL, "vae: out of memory");
    }
    return m;
}

/* Weights N(0, gain^2 / fan_in), biases 0. gain sqrt(2/(1+0.2^2)) keeps activations' scale
 * through leaky relus (He init); the heads (mu, logvar, rgb) start small so that the first
 * steps see z ~ eps and a grey image rather than saturated tanh outputs. */
static void init_normal(fu_rng *r, fu_tensor *w, float gain) {
    int64_t fan_in = w->numel / w->shape[0];
    fu_rng_fill_normal(r, w->data, w->numel, 0, gain / sqrtf((float)fan_in));
}

fu_vae *fu_vae_new(const fu_vae_config *cfg, uint64_t seed) {
    fu_vae *m = vae_shell(cfg);
    if (!m) return NULL;
    fu_rng r;
    fu_rng_seed(&r, seed);
    float he = sqrtf(2.0f / (1 + LEAK * LEAK));
    for (int i = 0; i < m->n_stages; i++) {
        init_normal(&r, m->enc_w[i], he);
        init_normal(&r, m->dec_w[i], he);
    }
    init_normal(&r, m->mu_w, 0.1f);
    init_normal(&r, m->logvar_w, 0.1f);
    init_normal(&r, m->fc_w, he);
    init_normal(&r, m->rgb_w, 0.1f);
    return m;
}

void fu_vae_free(fu_vae *m) {
    if (!m) return;
    for (int i = 0; i < m->n_params; i++) fu_tensor_free(m->params[i]);
    fu_tensor_free(m->prior_mean);
    fu_tensor_free(m->prior_tril);
    free(m);
}

/* Takes ownership of mean [D] and tril [D,D] after checking them: finite, lower-triangular, a
 * positive diagonal. */
static int install_prior(fu_vae *m, fu_tensor *mean, fu_tensor *tril, const char *label) {
    int64_t d = m->cfg.latent;
    int rc = FU_OK;
    for (int64_t i = 0; rc == FU_OK && i < d; i++) {
        if (!isfinite(mean->data[i]) || !(tril->data[i * d + i] > 0))
            rc = fu_fail(FU_E_INPUT, "%s: prior is not finite or its scale has a non-positive diagonal (row %lld)", label, (long long)i);
        for (int64_t j = 0; rc == FU_OK && j < d; j++)
            if (!isfinite(tril->data[i * d + j]) || (j > i && tril->data[i * d + j] != 0))
                rc = fu_fail(FU_E_INPUT, "%s: prior.scale_tril is not a finite lower-triangular matrix", label);
    }
    if (rc != FU_OK) {
        fu_tensor_free(mean);
        fu_tensor_free(tril);
        return rc;
    }
    fu_tensor_free(m->prior_mean);
    fu_tensor_free(m->prior_tril);
    m->prior_mean = mean;
    m->prior_tril = tril;
    return FU_OK;
}

int fu_vae_set_prior(fu_vae *m, const double *mean, const double *cov) {
    int d = m->cfg.latent;
    double *l = malloc(sizeof *l * (size_t)d * (size_t)d);
    fu_tensor *mt = fu_tensor_newv(1, (int64_t)d), *lt = fu_tensor_newv(2, (int64_t)d, (int64_t)d);
    if (!l || !mt || !lt) {
        free(l);
        fu_tensor_free(mt);
        fu_tensor_free(lt);
        return fu_fail(FU_E_INTERNAL, "vae: out of memory setting the prior");
    }
    double ridge = 0;
    for (int i = 0; i < d; i++) ridge += cov[i * d + i];
    ridge *= 1e-6 / d;
    int rc = FU_E_INPUT;
    for (int attempt = 0; attempt < 2 && rc != FU_OK; attempt++) {
        memcpy(l, cov, sizeof *l * (size_t)d * (size_t)d);
        if (attempt) for (int i = 0; i < d; i++) l[i * d + i] += ridge;
        rc = fu_cholesky(l, d);
    }
    if (rc == FU_OK) {
        for (int i = 0; i < d; i++) mt->data[i] = (float)mean[i];
        for (int i = 0; i < d * d; i++) lt->data[i] = (float)l[i];
        rc = install_prior(m, mt, lt, "vae");
    } else {
        fu_tensor_free(mt);
        fu_tensor_free(lt);
    }
    free(l);
    return rc;
}

void fu_vae_clear_prior(fu_vae *m) {
    fu_tensor_free(m->prior_mean);
    fu_tensor_free(m->prior_tril);
    m->prior_mean = m->prior_tril = NULL;
}

fu_tensor *fu_vae_prior_latent(fu_graph *g, const fu_vae *m, fu_tensor *w) {
    if (!m->prior_mean) return w;
    return fu_linear(g, w, m->prior_tril, m->prior_mean);   /* w L^T + mean, row by row */
}

void fu_vae_prior_whiten(const fu_vae *m, const float *z, float *w) {
    int64_t d = m->cfg.latent;
    if (!m->prior_mean) {
        memcpy(w, z, sizeof *w * (size_t)d);
        return;
    }
    const float *l = m->prior_tril->data;
    for (int64_t i = 0; i < d; i++) {   /* forward substitution: L w = z - mean */
        double s = (double)z[i] - m->prior_mean->data[i];
        for (int64_t k = 0; k < i; k++) s -= (double)l[i * d + k] * w[k];
        w[i] = (float)(s / l[i * d + i]);
    }
}

int64_t fu_vae_param_count(const fu_vae *m) {
    int64_t n = 0;
    for (int i = 0; i < m->n_params; i++) n += m->params[i]->numel;
    return n;
}

int fu_vae_requires_grad(fu_vae *m, int on) {
    for (int i = 0; i < m->n_params; i++) {
        int rc = fu_tensor_requires_grad(m->params[i], on);
        if (rc != FU_OK) return rc;
    }
    return FU_OK;
}

/* Reads the config from the file's shapes (see vae.h). */
static int config_from_file(const fu_safetensors *st, const char *path, fu_vae_config *cfg) {
    const fu_st_entry *c0 = fu_st_find(st, "enc.conv0.weight"), *fc = fu_st_find(st, "dec.fc.weight");
    if (!c0 || !fc || c0->ndim != 4 || fc->ndim != 2)
        return fu_fail(FU_E_INPUT, "%s: not a faceup VAE (enc.conv0.weight / dec.fc.weight missing or misshapen)", path);
    int n = 0;
    char name[48];
    do snprintf(name, sizeof name, "enc.conv%d.weight", n);
    while (fu_st_find(st, name) && ++n <= FU_VAE_MAX_STAGES);
    if (n > FU_VAE_MAX_STAGES || c0->shape[0] > 1024 || fc->shape[1] > 4096)
        return fu_fail(FU_E_INPUT, "%s: VAE too large (%d stages, %lld channels, latent %lld)", path, n,
                       (long long)c0->shape[0], (long long)fc->shape[1]);
    *cfg = (fu_vae_config){4 << n, (int)c0->shape[0], (int)fc->shape[1]};
    return FU_OK;
}

/* Reads prior.mean [D] and prior.scale_tril [D,D] (both required once either is present). */
static int read_prior(const fu_safetensors *st, fu_vae *m) {
    int64_t d = m->cfg.latent;
    const fu_st_entry *me = fu_st_find(st, "prior.mean"), *le = fu_st_find(st, "prior.scale_tril");
    if (!me || !le || me->ndim != 1 || me->shape[0] != d || le->ndim != 2 || le->shape[0] != d || le->shape[1] != d)
        return fu_fail(FU_E_INPUT, "%s: prior.mean [%lld] and prior.scale_tril [%lld,%lld] must both be present with those shapes",
                       st->label, (long long)d, (long long)d, (long long)d);
    fu_tensor *mean = fu_tensor_newv(1, d), *tril = fu_tensor_newv(2, d, d);
    if (!mean || !tril) {
        fu_tensor_free(mean);
        fu_tensor_free(tril);
        return fu_fail(FU_E_INTERNAL, "%s: out of memory reading the prior", st->label);
    }
    fu_convert_to_f32(me->dtype, st->data + me->begin, mean->data, (size_t)d);
    fu_convert_to_f32(le->dtype, st->data + le->begin, tril->data, (size_t)(d * d));
    return install_prior(m, mean, tril, st->label);
}

int fu_vae_from_safetensors(const fu_safetensors *st, int allow_extra, fu_vae **out) {
    *out = NULL;
    const char *path = st->label;
    fu_vae_config cfg;
    int rc = config_from_file(st, path, &cfg);
    fu_vae *m = rc == FU_OK ? vae_shell(&cfg) : NULL;
    if (rc == FU_OK && !m) rc = fu_fail(FU_E_INPUT, "%s: %s", path, fu_last_error());
    for (int i = 0; rc == FU_OK && i < m->n_params; i++) {
        fu_tensor *p = m->params[i];
        const fu_st_entry *e = fu_st_find(st, p->name);
        if (!e || e->numel != p->numel || e->ndim != p->ndim || memcmp(e->shape, p->shape, sizeof(int64_t) * (size_t)p->ndim)) {
            char buf[96];
            rc = fu_fail(FU_E_INPUT, "%s: tensor %s missing or not of shape %s", path, p->name, fu_shape_str(p, buf, sizeof buf));
            break;
        }
        fu_convert_to_f32(e->dtype, st->data + e->begin, p->data, (size_t)p->numel);
    }
    int has_prior = fu_st_find(st, "prior.mean") || fu_st_find(st, "prior.scale_tril");
    if (rc == FU_OK && has_prior) rc = read_prior(st, m);
    int expected = m ? m->n_params + 2 * has_prior : 0;
    if (rc == FU_OK && !allow_extra && st->n_entries != expected)
        rc = fu_fail(FU_E_INPUT, "%s: %d tensors, a VAE of this config has %d", path, st->n_entries, expected);
    if (rc != FU_OK) { fu_vae_free(m); return rc; }
    *out = m;
    return FU_OK;
}

int fu_vae_load(const char *path, fu_vae **out) {
    *out = NULL;
    fu_safetensors *st = fu_st_open(path);
    if (!st) return fu_last_code();
    int rc = fu_vae_from_safetensors(st, 0, out);
    fu_st_free(st);
    return rc;
}

int fu_vae_save(const fu_vae *m, const char *path) {
    fu_st_item items[FU_VAE_MAX_PARAMS + 2];
    int n = 0;
    for (int i = 0; i < m->n_params; i++) items[n++] = (fu_st_item){m->params[i]->name, m->params[i], FU_F32};
    if (m->prior_mean) {
        items[n++] = (fu_st_item){"prior.mean", m->prior_mean, FU_F32};
        items[n++] = (fu_st_item){"prior.scale_tril", m->prior_tril, FU_F32};
    }
    char size[16], ch[16], lat[16];
    snprintf(size, sizeof size, "%d", m->cfg.size);
    snprintf(ch, sizeof ch, "%d", m->cfg.channels);
    snprintf(lat, sizeof lat, "%d", m->cfg.latent);
    fu_st_meta meta[] = {
        {"faceup.model", "vae"}, {"faceup.vae.size", size}, {"faceup.vae.channels", ch}, {"faceup.vae.latent", lat},
        {"faceup.vae.range", m->prior_mean ? "images in [-1,1], z = prior.mean + prior.scale_tril w, w ~ N(0,I)"
                                           : "images in [-1,1], z ~ N(0,I)"},
    };
    return fu_st_save(path, items, n, meta, (int)(sizeof meta / sizeof meta[0]));
}

fu_tensor *fu_vae_encode(fu_graph *g, const fu_vae *m, fu_tensor *x, fu_tensor **logvar) {
    int64_t S = m->cfg.size;
    if (x && (x->ndim != 4 || x->shape[1] != 3 || x->shape[2] != S || x->shape[3] != S)) {
        char buf[96];
        return fu_fail_null(FU_E_INPUT, "vae encode: input %s, expected [N,3,%lld,%lld]", fu_shape_str(x, buf, sizeof buf),
                            (long long)S, (long long)S);
    }
    fu_conv_params p = {.stride_h = 2, .stride_w = 2, .pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1};
    fu_tensor *h = x;
    for (int i = 0; i < m->n_stages; i++) h = fu_leaky_relu(g, fu_conv2d(g, h, m->enc_w[i], m->enc_b[i], &p), LEAK);
    if (!h) return NULL;
    h = fu_reshape(g, h, 2, (int64_t[]){h->shape[0], -1});
    if (logvar) *logvar = fu_linear(g, h, m->logvar_w, m->logvar_b);
    return fu_linear(g, h, m->mu_w, m->mu_b);
}

fu_tensor *fu_vae_decode(fu_graph *g, const fu_vae *m, fu_tensor *z) {
    if (z && (z->ndim != 2 || z->shape[1] != m->cfg.latent)) {
        char buf[96];
        return fu_fail_null(FU_E_INPUT, "vae decode: latent %s, expected [N,%d]", fu_shape_str(z, buf, sizeof buf), m->cfg.latent);
    }
    fu_tensor *h = fu_leaky_relu(g, fu_linear(g, z, m->fc_w, m->fc_b), LEAK);
    if (!h) return NULL;
    h = fu_reshape(g, h, 4, (int64_t[]){z->shape[0], -1, 4, 4});
    fu_conv_params p = {.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1};
    for (int i = 0; i < m->n_stages; i++)
        h = fu_leaky_relu(g, fu_conv2d(g, fu_upsample_nearest(g, h, 2), m->dec_w[i], m->dec_b[i], &p), LEAK);
    return fu_tanh(g, fu_conv2d(g, h, m->rgb_w, m->rgb_b, &p));
}

int fu_vae_reconstruct(const fu_vae *m, const float *x, int64_t n, float *out) {
    enum { BATCH = 64 };
    int64_t S = m->cfg.size, img = 3 * S * S;
    fu_graph *g = fu_graph_new();
    int rc = g ? FU_OK : fu_fail(FU_E_INTERNAL, "out of memory");
    for (int64_t b0 = 0; rc == FU_OK && b0 < n; b0 += BATCH) {
        int64_t B = n - b0 < BATCH ? n - b0 : BATCH;
        fu_graph_reset(g);
        fu_tensor *in = fu_graph_tensor(g, 4, (int64_t[]){B, 3, S, S}), *y = NULL;
        if (in) {
            memcpy(in->data, x + b0 * img, sizeof(float) * (size_t)(B * img));
            y = fu_vae_decode(g, m, fu_vae_encode(g, m, in, NULL));
        }
        if (!y) { rc = fu_last_code() ? fu_last_code() : FU_E_INTERNAL; break; }
        memcpy(out + b0 * img, y->data, sizeof(float) * (size_t)(B * img));
    }
    fu_graph_free(g);
    return rc;
}

/* KL(N(mu, exp(logvar)) || N(0, I)) summed over the latent, averaged over the batch:
 * -0.5 * sum(1 + logvar - mu^2 - exp(logvar)) / N. */
static fu_tensor *kl_per_image(fu_graph *g, fu_tensor *mu, fu_tensor *logvar) {
    fu_tensor *t = fu_sub(g, fu_add(g, fu_square(g, mu), fu_exp(g, logvar)), fu_scale_shift(g, logvar, 1, 1));
    if (!t) return NULL;
    return fu_scale_shift(g, fu_sum_all(g, t), 0.5f / (float)mu->shape[0], 0);
}

fu_tensor *fu_vae_loss(fu_graph *g, const fu_vae *m, fu_tensor *x, fu_tensor *eps, float beta,
                       float edge_w, fu_vae_loss_parts *parts) {
    fu_tensor *logvar = NULL;
    fu_tensor *mu = fu_vae_encode(g, m, x, &logvar);
    if (mu && eps && !fu_same_shape(mu, eps)) return fu_fail_null(FU_E_INPUT, "vae loss: eps shape differs from mu's");
    fu_tensor *z = fu_add(g, mu, fu_mul(g, fu_exp(g, fu_scale_shift(g, logvar, 0.5f, 0)), eps));
    fu_tensor *recon = fu_vae_decode(g, m, z);
    fu_tensor *rec = fu_l1_loss(g, recon, x);
    fu_tensor *edge = fu_edge_l1_loss(g, recon, x);
    fu_tensor *kl = kl_per_image(g, mu, logvar);
    if (!kl || !edge || !rec) return NULL;
    float kl_scale = beta / (3.0f * (float)m->cfg.size * (float)m->cfg.size);
    fu_tensor *loss = fu_add(g, fu_add(g, rec, fu_scale_shift(g, edge, edge_w, 0)), fu_scale_shift(g, kl, kl_scale, 0));
    if (parts) *parts = (fu_vae_loss_parts){rec, edge, kl, recon};
    return loss;
}
