#include "gen_quality.h"
#include "core/error.h"
#include "core/linalg.h"
#include "core/ops.h"
#include "core/rng.h"
#include "face/detect.h"
#include "face/dlib_resnet.h"
#include "face/models.h"
#include "face/pipeline.h"
#include "search/face_guides.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { BATCH = 32, DESC = FU_DLIB_RESNET_DIM, GEAR_RACE_OFFSET = 9 };

int fu_vae_samples(const fu_vae *m, uint64_t seed, float temperature, int64_t n, float *out) {
    int64_t D = m->cfg.latent, img = 3 * (int64_t)m->cfg.size * m->cfg.size;
    fu_graph *g = fu_graph_new();
    int rc = g ? FU_OK : fu_fail(FU_E_INTERNAL, "samples: out of memory");
    for (int64_t b0 = 0; rc == FU_OK && b0 < n; b0 += BATCH) {
        int64_t B = n - b0 < BATCH ? n - b0 : BATCH;
        fu_graph_reset(g);
        fu_tensor *w = fu_graph_tensor(g, 2, (int64_t[]){B, D});
        if (!w) { rc = fu_last_code(); break; }
        for (int64_t k = 0; k < B; k++) {
            fu_rng r;
            fu_rng_seed(&r, seed + (uint64_t)(b0 + k));
            fu_rng_fill_normal(&r, w->data + k * D, D, 0, temperature);
        }
        fu_tensor *y = fu_vae_decode(g, m, fu_vae_prior_latent(g, m, w));
        if (!y) { rc = fu_last_code(); break; }
        for (int64_t j = 0; j < B * img; j++) out[b0 * img + j] = 0.5f * (y->data[j] + 1.0f);
    }
    fu_graph_free(g);
    return rc;
}

/* Reconstructions decode(mu(x)) of n [0,1] images, in place. */
static int reconstruct(const fu_vae *m, float *images, int64_t n) {
    int64_t count = n * 3 * m->cfg.size * m->cfg.size;
    for (int64_t j = 0; j < count; j++) images[j] = 2.0f * images[j] - 1.0f;
    int rc = fu_vae_reconstruct(m, images, n, images);
    for (int64_t j = 0; j < count; j++) images[j] = 0.5f * (images[j] + 1.0f);
    return rc;
}

static double mean_cosine(const float *a, const float *b, int64_t n) {
    double sum = 0;
    for (int64_t k = 0; k < n; k++) {
        double ab = 0, aa = 0, bb = 0;
        for (int i = 0; i < DESC; i++) {
            ab += (double)a[k * DESC + i] * b[k * DESC + i];
            aa += (double)a[k * DESC + i] * a[k * DESC + i];
            bb += (double)b[k * DESC + i] * b[k * DESC + i];
        }
        sum += ab / sqrt(aa * bb + 1e-30);
    }
    return n ? sum / (double)n : NAN;
}

/* n faces of the split(s) (split_mask bit s = split s), evenly spread, as [0,1] pixels. */
static int64_t real_faces(const fu_faces *set, unsigned split_mask, int64_t n, float *out) {
    int64_t have = 0, img = 3 * (int64_t)set->size * set->size;
    for (int64_t i = 0; i < set->count; i++) have += (split_mask >> set->labels[i].split) & 1;
    int64_t take = have < n ? have : n, seen = 0, k = 0;
    for (int64_t i = 0; i < set->count && k < take; i++) {
        if (!((split_mask >> set->labels[i].split) & 1)) continue;
        if (seen++ * take / have == k) {   /* the k-th of take evenly spaced among have */
            float *dst = out + k * img;
            fu_faces_get(set, i, 0, dst);
            for (int64_t j = 0; j < img; j++) dst[j] = 0.5f * (dst[j] + 1.0f);
            k++;
        }
    }
    return k;
}

static int descriptors(const fu_face_guides *fg, int S, const float *images, int64_t n, float *out) {
    int64_t img = 3 * (int64_t)S * S;
    fu_graph *g = fu_graph_new();
    int rc = g ? FU_OK : fu_fail(FU_E_INTERNAL, "out of memory");
    for (int64_t b0 = 0; rc == FU_OK && b0 < n; b0 += BATCH) {
        int64_t B = n - b0 < BATCH ? n - b0 : BATCH;
        fu_graph_reset(g);
        fu_tensor *x = fu_graph_tensor(g, 4, (int64_t[]){B, 3, S, S});
        if (!x) { rc = fu_last_code(); break; }
        memcpy(x->data, images + b0 * img, sizeof(float) * (size_t)(B * img));
        fu_tensor *d = fu_face_guides_descriptor(fg, g, x);
        if (!d) { rc = fu_last_code(); break; }
        memcpy(out + b0 * DESC, d->data, sizeof(float) * (size_t)(B * DESC));
    }
    fu_graph_free(g);
    return rc;
}

/* Mean [DESC] and covariance [DESC, DESC] (denominator n - 1) of n descriptors. */
static void gaussian_fit(const float *x, int64_t n, double *mean, double *cov) {
    memset(mean, 0, sizeof(double) * DESC);
    memset(cov, 0, sizeof(double) * DESC * DESC);
    for (int64_t k = 0; k < n; k++)
        for (int i = 0; i < DESC; i++) mean[i] += x[k * DESC + i] / (double)n;
    for (int64_t k = 0; k < n; k++)
        for (int i = 0; i < DESC; i++) {
            double di = x[k * DESC + i] - mean[i];
            for (int j = 0; j <= i; j++) cov[i * DESC + j] += di * (x[k * DESC + j] - mean[j]);
        }
    for (int i = 0; i < DESC; i++)
        for (int j = 0; j <= i; j++) cov[i * DESC + j] = cov[j * DESC + i] = cov[i * DESC + j] / (double)(n - 1);
}

static int frechet(const float *a, int64_t na, const float *b, int64_t nb, double *out) {
    double *buf = malloc(sizeof(double) * 2 * (DESC + DESC * DESC));
    if (!buf) return fu_fail(FU_E_INTERNAL, "out of memory");
    double *ma = buf, *ca = ma + DESC, *mb = ca + DESC * DESC, *cb = mb + DESC;
    gaussian_fit(a, na, ma, ca);
    gaussian_fit(b, nb, mb, cb);
    int rc = fu_frechet_distance(ma, ca, mb, cb, DESC, out);
    free(buf);
    return rc;
}

/* Image k into t [1,3,S,S] for the detectors (copied: they take tensors). */
static void load_image(fu_tensor *t, const float *images, int64_t k) {
    memcpy(t->data, images + k * t->numel, sizeof(float) * (size_t)t->numel);
}

static int face_rate(fu_face_detector *det, int S, const float *images, int64_t n, double *rate) {
    fu_tensor *t = fu_tensor_newv(4, (int64_t)1, (int64_t)3, (int64_t)S, (int64_t)S);
    if (!t) return fu_fail(FU_E_INTERNAL, "out of memory");
    int64_t found = 0;
    int rc = FU_OK;
    for (int64_t k = 0; k < n && rc == FU_OK; k++) {
        fu_face_det d[4];
        load_image(t, images, k);
        int c = fu_face_detect(det, t, 0.7f, 0.3f, d, 4);
        if (c < 0) rc = fu_last_code();
        found += c > 0;
    }
    fu_tensor_free(t);
    *rate = n ? (double)found / (double)n : NAN;
    return rc;
}

/* gear on the whole image resized (half-pixel centres) to its input; shares of argmax race. */
static int race_shares(fu_face_net *gear, int S, const float *images, int64_t n, double shares[FU_RACE_CLASSES]) {
    int side = fu_face_net_input_size(gear), dim = fu_face_net_out_dim(gear);
    double s = (double)S / side, theta[BATCH][6];
    for (int k = 0; k < BATCH; k++) {
        double t[6] = {s, 0, 0.5 * s - 0.5, 0, s, 0.5 * s - 0.5};
        memcpy(theta[k], t, sizeof t);
    }
    fu_tensor *imgs[BATCH] = {0};
    float *out = malloc(sizeof(float) * (size_t)(BATCH * dim));
    int rc = out ? FU_OK : fu_fail(FU_E_INTERNAL, "out of memory");
    for (int k = 0; k < BATCH && rc == FU_OK; k++)
        if (!(imgs[k] = fu_tensor_newv(4, (int64_t)1, (int64_t)3, (int64_t)S, (int64_t)S))) rc = fu_fail(FU_E_INTERNAL, "out of memory");
    int64_t counts[FU_RACE_CLASSES] = {0};
    for (int64_t b0 = 0; rc == FU_OK && b0 < n; b0 += BATCH) {
        int B = (int)(n - b0 < BATCH ? n - b0 : BATCH);
        for (int k = 0; k < B; k++) load_image(imgs[k], images, b0 + k);
        if ((rc = fu_face_net_run(gear, imgs, (const double(*)[6])theta, B, out)) != FU_OK) break;
        for (int k = 0; k < B; k++) {
            const float *race = out + k * dim + GEAR_RACE_OFFSET;
            int best = 0;
            for (int c = 1; c < FU_RACE_CLASSES; c++) best = race[c] > race[best] ? c : best;
            counts[best]++;
        }
    }
    for (int c = 0; c < FU_RACE_CLASSES; c++) shares[c] = n ? (double)counts[c] / (double)n : NAN;
    for (int k = 0; k < BATCH; k++) fu_tensor_free(imgs[k]);
    free(out);
    return rc;
}

typedef struct judges {
    fu_heads *heads;
    fu_dlib_resnet *net;
    fu_face_guides fg;
    fu_face_detector *det;
    fu_face_net *gear;
} judges;

static int judges_open(judges *j, const char *heads, int S) {
    char path[2048];
    memset(j, 0, sizeof *j);
    if (!(j->heads = fu_heads_load(heads))) return fu_last_code();
    if (!(j->net = fu_dlib_resnet_load(fu_model_path(FU_DLIB_RESNET_MANIFEST, path, sizeof path)))) return fu_last_code();
    int rc = fu_face_guides_init(&j->fg, j->net, j->heads, S);
    if (rc != FU_OK) return rc;
    if (!(j->det = fu_face_detector_load(fu_model_path(FU_BLAZEFACE_MODEL, path, sizeof path)))) return fu_last_code();
    if (!(j->gear = fu_face_net_load(FU_NET_GEAR))) return fu_last_code();
    if (fu_face_net_out_dim(j->gear) != GEAR_RACE_OFFSET + FU_RACE_CLASSES)
        return fu_fail(FU_E_INPUT, "gear: %d outputs, expected %d", fu_face_net_out_dim(j->gear), GEAR_RACE_OFFSET + FU_RACE_CLASSES);
    return FU_OK;
}

static void judges_close(judges *j) {
    fu_face_net_free(j->gear);
    fu_face_detector_free(j->det);
    fu_dlib_resnet_free(j->net);
    fu_heads_free(j->heads);
}

/* One image set's measurements: descriptors always; blazeface and gear when asked. */
static int measure(judges *j, int S, const float *images, int64_t n, float *desc, double *rate, double *shares,
                   fu_progress_fn progress, void *ctx, const char *stage) {
    if (progress) progress(ctx, 0, 3, stage);
    int rc = descriptors(&j->fg, S, images, n, desc);
    if (progress) progress(ctx, 1, 3, stage);
    if (rc == FU_OK && rate) rc = face_rate(j->det, S, images, n, rate);
    if (progress) progress(ctx, 2, 3, stage);
    if (rc == FU_OK && shares) rc = race_shares(j->gear, S, images, n, shares);
    if (progress) progress(ctx, 3, 3, stage);
    return rc;
}

int fu_gen_quality_run(const fu_vae *m, const fu_faces *set, const fu_gen_quality_config *cfg, fu_gen_quality *out,
                       fu_progress_fn progress, void *ctx) {
    memset(out, 0, sizeof *out);
    int S = m->cfg.size;
    if (set->size != S) return fu_fail(FU_E_INPUT, "eval: model size %d but the face set's images are %d", S, set->size);
    if (cfg->n < 2 || cfg->n > 100000) return fu_fail(FU_E_INPUT, "eval: --samples %lld out of range 2..100000", (long long)cfg->n);
    int64_t img = 3 * (int64_t)S * S, n = cfg->n;
    float *buf = malloc(sizeof(float) * (size_t)(3 * n * (img + DESC)));
    if (!buf) return fu_fail(FU_E_INTERNAL, "eval: out of memory for %lld images", (long long)(3 * n));
    float *samples = buf, *heldout = samples + n * img, *train = heldout + n * img;
    float *d_samples = train + n * img, *d_heldout = d_samples + n * DESC, *d_train = d_heldout + n * DESC;
    judges j;
    int rc = judges_open(&j, cfg->heads, S);
    if (rc == FU_OK) rc = fu_vae_samples(m, cfg->seed, cfg->temperature, n, samples);
    out->n_samples = n;
    out->n_heldout = real_faces(set, 1u << FU_SPLIT_VAL | 1u << FU_SPLIT_TEST, n, heldout);
    out->n_train = real_faces(set, 1u << FU_SPLIT_TRAIN, n, train);
    if (rc == FU_OK && (out->n_heldout < 2 || out->n_train < 2))
        rc = fu_fail(FU_E_INPUT, "eval: the face set has %lld held-out and %lld train faces, need 2 of each",
                     (long long)out->n_heldout, (long long)out->n_train);
    if (rc == FU_OK)
        rc = measure(&j, S, samples, n, d_samples, &out->face_rate_samples, out->race_samples, progress, ctx, "samples");
    if (rc == FU_OK)
        rc = measure(&j, S, heldout, out->n_heldout, d_heldout, &out->face_rate_heldout, NULL, progress, ctx, "held-out faces");
    if (rc == FU_OK) rc = measure(&j, S, train, out->n_train, d_train, NULL, out->race_train, progress, ctx, "train faces");
    if (rc == FU_OK) rc = frechet(d_samples, n, d_heldout, out->n_heldout, &out->fd_identity);
    if (rc == FU_OK) rc = frechet(d_train, out->n_train, d_heldout, out->n_heldout, &out->fd_train_vs_heldout);
    /* Reconstructions of the held-out faces (in place; their descriptors into the samples'
     * buffer, no longer needed once the FDs are computed). */
    if (progress) progress(ctx, 0, 1, "reconstructions");
    if (rc == FU_OK) rc = reconstruct(m, heldout, out->n_heldout);
    if (rc == FU_OK) rc = descriptors(&j.fg, S, heldout, out->n_heldout, d_samples);
    if (rc == FU_OK) out->recon_identity_cosine = mean_cosine(d_heldout, d_samples, out->n_heldout);
    judges_close(&j);
    free(buf);
    return rc;
}
