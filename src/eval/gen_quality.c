#include "gen_quality.h"
#include "core/error.h"
#include "core/linalg.h"
#include "core/ops.h"
#include "core/rng.h"
#include "eval/gen_measures.h"
#include "face/detect.h"
#include "face/dlib_resnet.h"
#include "face/models.h"
#include "face/pipeline.h"
#include "face/race_judge.h"
#include "search/face_guides.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* CHUNK images go through the generator and the judges at a time (faceres at 224x224 is the
 * largest network: 16 crops keep its activations small). */
enum { CHUNK = 16, DESC = FU_DLIB_RESNET_DIM, FACERES = FU_RACE_JUDGE_IN };

static void clamp_unit(const float *in, int64_t count, float *out) {
    for (int64_t j = 0; j < count; j++) out[j] = in[j] < 0 ? 0 : in[j] > 1 ? 1 : in[j];
}

/* ---------------------------------------------------------------- samples */

/* Sample k's draw: z row(s) then each noise map, from one RNG seeded seed + k. */
static void draw_sample(const fu_generator *gen, uint64_t seed, float temperature, int64_t b, fu_tensor *z,
                        fu_tensor *const *noise) {
    fu_rng r;
    fu_rng_seed(&r, seed);
    int64_t row = gen->n_latent * gen->latent_dim;
    fu_rng_fill_normal(&r, z->data + b * row, row, 0, temperature);
    for (int i = 0; i < gen->n_noise; i++) {
        int64_t per = noise[i]->numel / noise[i]->shape[0];
        fu_rng_fill_normal(&r, noise[i]->data + b * per, per, 0, 1);
    }
}

/* Noise maps [B,1,r,r] of the generator in graph g. */
static int noise_maps(const fu_generator *gen, fu_graph *g, int64_t B, fu_tensor **noise) {
    for (int i = 0; i < gen->n_noise; i++) {
        int64_t shape[4];
        int rc = gen->noise_shape(gen, i, shape);
        if (rc != FU_OK) return rc;
        shape[0] = B;
        if (!(noise[i] = fu_graph_tensor(g, 4, shape))) return fu_last_code();
    }
    return FU_OK;
}

/* build() on z (already filled) and noise; clamped [0,1] images into out. */
static int generate(const fu_generator *gen, fu_graph *g, fu_tensor *z, fu_tensor *const *noise, float *out) {
    fu_tensor *y = gen->build(gen, g, z, noise, NULL);
    if (!y) return fu_last_code() ? fu_last_code() : fu_fail(FU_E_INTERNAL, "generator: no image");
    clamp_unit(y->data, y->numel, out);
    return FU_OK;
}

int fu_gen_samples(const fu_generator *gen, uint64_t seed, float temperature, int64_t first, int64_t n, float *out) {
    int64_t img = 3 * (int64_t)gen->resolution * gen->resolution;
    fu_graph *g = fu_graph_new();
    int rc = g ? FU_OK : fu_fail(FU_E_INTERNAL, "samples: out of memory");
    for (int64_t b0 = 0; rc == FU_OK && b0 < n; b0 += CHUNK) {
        int64_t B = n - b0 < CHUNK ? n - b0 : CHUNK;
        fu_graph_reset(g);
        fu_tensor *noise[FU_GEN_MAX_NOISE] = {0};
        fu_tensor *z = fu_graph_tensor(g, 3, (int64_t[]){B, gen->n_latent, gen->latent_dim});
        rc = z ? noise_maps(gen, g, B, noise) : fu_last_code();
        for (int64_t b = 0; rc == FU_OK && b < B; b++) draw_sample(gen, seed + (uint64_t)(first + b0 + b), temperature, b, z, noise);
        if (rc == FU_OK) rc = generate(gen, g, z, noise, out + b0 * img);
    }
    fu_graph_free(g);
    return rc;
}

/* ---------------------------------------------------------------- image sources */

/* Where a set's images come from, a chunk at a time: fill() writes images first .. first+count-1
 * ([count,3,R,R], [0,1]) into out. */
typedef struct image_source image_source;
struct image_source {
    int (*fill)(image_source *s, int64_t first, int64_t count, float *out);
    const fu_generator *gen;
    int resolution;
    uint64_t seed;             /* samples */
    float temperature;
    const fu_faces *set;       /* real faces: set images index[...] downscaled by factor */
    const int64_t *index;
    int factor;
    image_source *originals;   /* recons: of these images; PSNR summed over them */
    double psnr_sum;
};

static int fill_samples(image_source *s, int64_t first, int64_t count, float *out) {
    return fu_gen_samples(s->gen, s->seed, s->temperature, first, count, out);
}

static int fill_real(image_source *s, int64_t first, int64_t count, float *out) {
    int P = s->set->size;
    int64_t img = 3 * (int64_t)P * P;
    fu_graph *g = fu_graph_new();
    fu_tensor *x = g ? fu_graph_tensor(g, 4, (int64_t[]){count, 3, P, P}) : NULL;
    int rc = x ? FU_OK : fu_fail(FU_E_INTERNAL, "faces: out of memory");
    for (int64_t k = 0; rc == FU_OK && k < count; k++) {
        fu_faces_get(s->set, s->index[first + k], 0, x->data + k * img);
        for (int64_t j = 0; j < img; j++) x->data[k * img + j] = 0.5f * (x->data[k * img + j] + 1.0f);
    }
    fu_tensor *y = rc == FU_OK && s->factor > 1 ? fu_bicubic_downsample(g, x, s->factor) : x;
    if (rc == FU_OK && !y) rc = fu_last_code();
    if (rc == FU_OK) clamp_unit(y->data, y->numel, out);
    fu_graph_free(g);
    return rc;
}

static double psnr_db(const float *a, const float *b, int64_t count) {
    double se = 0;
    for (int64_t j = 0; j < count; j++) se += ((double)a[j] - b[j]) * ((double)a[j] - b[j]);
    return se > 0 ? 10 * log10((double)count / se) : 99;
}

/* Encodes each original (the posterior mean: init_latent with a zero eps draw) and generates it
 * again; adds each reconstruction's PSNR against its original to psnr_sum. */
static int fill_recons(image_source *s, int64_t first, int64_t count, float *out) {
    const fu_generator *gen = s->gen;
    int64_t R = s->resolution, img = 3 * R * R, row = gen->n_latent * gen->latent_dim;
    float *orig = malloc(sizeof(float) * (size_t)(count * img));
    fu_tensor *thumb = fu_tensor_newv(4, (int64_t)1, (int64_t)3, R, R);
    fu_tensor *z1 = fu_tensor_newv(3, (int64_t)1, (int64_t)gen->n_latent, gen->latent_dim);
    fu_graph *g = fu_graph_new();
    fu_tensor *z = g ? fu_graph_tensor(g, 3, (int64_t[]){count, gen->n_latent, gen->latent_dim}) : NULL;
    fu_tensor *noise[FU_GEN_MAX_NOISE] = {0};
    int rc = orig && thumb && z1 && z ? noise_maps(gen, g, count, noise) : fu_fail(FU_E_INTERNAL, "recons: out of memory");
    if (rc == FU_OK) rc = s->originals->fill(s->originals, first, count, orig);
    for (int64_t k = 0; rc == FU_OK && k < count; k++) {
        memcpy(thumb->data, orig + k * img, sizeof(float) * (size_t)img);
        memset(z1->data, 0, sizeof(float) * (size_t)row);
        rc = gen->init_latent(gen, thumb, z1);
        memcpy(z->data + k * row, z1->data, sizeof(float) * (size_t)row);
    }
    for (int i = 0; rc == FU_OK && i < gen->n_noise; i++) memset(noise[i]->data, 0, sizeof(float) * (size_t)noise[i]->numel);
    if (rc == FU_OK) rc = generate(gen, g, z, noise, out);
    for (int64_t k = 0; rc == FU_OK && k < count; k++) s->psnr_sum += psnr_db(out + k * img, orig + k * img, img);
    fu_graph_free(g);
    fu_tensor_free(z1);
    fu_tensor_free(thumb);
    free(orig);
    return rc;
}

/* Indices of at most n faces of one split, evenly spread over it; returns how many. */
static int64_t spread_split(const fu_faces *set, int split, int64_t n, int64_t *index) {
    int64_t have = 0;
    for (int64_t i = 0; i < set->count; i++) have += set->labels[i].split == split;
    int64_t take = n > 0 && have > n ? n : have, seen = 0, k = 0;
    for (int64_t i = 0; i < set->count && k < take; i++) {
        if (set->labels[i].split != split) continue;
        if (seen++ * take / have == k) index[k++] = i;   /* the k-th of take evenly spaced among have */
    }
    return k;
}

/* ---------------------------------------------------------------- judges */

typedef struct judges {
    fu_heads *heads;
    fu_dlib_resnet *net;
    fu_face_guides fg;
    fu_face_detector *det;
    fu_face_net *faceres;
    fu_race_judge *race;
} judges;

static int judges_open(judges *j, const fu_gen_quality_config *cfg, int R) {
    char path[2048];
    memset(j, 0, sizeof *j);
    if (!(j->heads = fu_heads_load(cfg->heads))) return fu_last_code();
    if (!(j->net = fu_dlib_resnet_load(fu_model_path(FU_DLIB_RESNET_MANIFEST, path, sizeof path)))) return fu_last_code();
    int rc = fu_face_guides_init(&j->fg, j->net, j->heads, R);
    if (rc != FU_OK) return rc;
    if (!(j->det = fu_face_detector_load(fu_model_path(FU_BLAZEFACE_MODEL, path, sizeof path)))) return fu_last_code();
    if (!(j->faceres = fu_face_net_load(FU_NET_FACERES))) return fu_last_code();
    if (fu_face_net_out_dim(j->faceres) != FACERES)
        return fu_fail(FU_E_INPUT, "faceres: %d outputs, expected %d", fu_face_net_out_dim(j->faceres), FACERES);
    if (!(j->race = fu_race_judge_load(cfg->race_judge))) return fu_last_code();
    return FU_OK;
}

static void judges_close(judges *j) {
    fu_race_judge_free(j->race);
    fu_face_net_free(j->faceres);
    fu_face_detector_free(j->det);
    fu_dlib_resnet_free(j->net);
    fu_heads_free(j->heads);
}

/* dlib descriptors of count images [count,3,R,R] into out. */
static int dlib_descriptors(const judges *j, int R, const float *images, int64_t count, float *out) {
    fu_graph *g = fu_graph_new();
    fu_tensor *x = g ? fu_graph_tensor(g, 4, (int64_t[]){count, 3, R, R}) : NULL;
    int rc = x ? FU_OK : fu_fail(FU_E_INTERNAL, "out of memory");
    if (rc == FU_OK) memcpy(x->data, images, sizeof(float) * (size_t)x->numel);
    fu_tensor *d = rc == FU_OK ? fu_face_guides_descriptor(&j->fg, g, x) : NULL;
    if (rc == FU_OK && !d) rc = fu_last_code();
    if (rc == FU_OK) memcpy(out, d->data, sizeof(float) * (size_t)(count * DESC));
    fu_graph_free(g);
    return rc;
}

/* faceres on each whole image resized to its input (the race judge's crop). */
static int faceres_descriptors(const judges *j, int R, const float *images, int64_t count, float *out) {
    static const float whole[4] = {0, 0, 1, 1};
    fu_tensor *imgs[CHUNK] = {0};
    double theta[CHUNK][6];
    int rc = count <= CHUNK ? FU_OK : fu_fail(FU_E_INTERNAL, "faceres: %lld images in one chunk", (long long)count);
    for (int64_t k = 0; rc == FU_OK && k < count; k++) {
        if (!(imgs[k] = fu_tensor_newv(4, (int64_t)1, (int64_t)3, (int64_t)R, (int64_t)R))) { rc = fu_fail(FU_E_INTERNAL, "out of memory"); break; }
        memcpy(imgs[k]->data, images + k * imgs[k]->numel, sizeof(float) * (size_t)imgs[k]->numel);
        fu_judge_box_theta(imgs[k]->shape, whole, fu_face_net_input_size(j->faceres), theta[k]);
    }
    if (rc == FU_OK) rc = fu_face_net_run(j->faceres, imgs, (const double(*)[6])theta, (int)count, out);
    for (int64_t k = 0; k < count; k++) fu_tensor_free(imgs[k]);
    return rc;
}

/* Images in which blazeface finds a face with score >= 0.7. */
static int count_faces(const judges *j, int R, const float *images, int64_t count, int64_t *found) {
    fu_tensor *t = fu_tensor_newv(4, (int64_t)1, (int64_t)3, (int64_t)R, (int64_t)R);
    int rc = t ? FU_OK : fu_fail(FU_E_INTERNAL, "out of memory");
    for (int64_t k = 0; rc == FU_OK && k < count; k++) {
        fu_face_det d[4];
        memcpy(t->data, images + k * t->numel, sizeof(float) * (size_t)t->numel);
        int c = fu_face_detect(j->det, t, 0.7f, 0.3f, d, 4);
        if (c < 0) rc = fu_last_code();
        *found += c > 0;
    }
    fu_tensor_free(t);
    return rc;
}

/* ---------------------------------------------------------------- one image set */

enum { WANT_SHARPNESS = 1, WANT_FACES = 2, WANT_DLIB = 4, WANT_FACERES = 8 };

/* What the judges make of one image set: descriptors (NULL unless wanted) and means. */
typedef struct set_features {
    int64_t n;
    float *dlib, *faceres;
    double hf_share, face_rate;
} set_features;

static void set_features_free(set_features *f) {
    free(f->dlib);
    free(f->faceres);
    memset(f, 0, sizeof *f);
}

static int judge_chunk(const judges *j, int R, const float *images, int64_t at, int64_t count, unsigned wants,
                       set_features *f, double *hf_sum, int64_t *faces) {
    int rc = FU_OK;
    if (wants & WANT_SHARPNESS) *hf_sum += fu_mean_highfreq_share(images, count, R, FU_SHARPNESS_CUTOFF) * (double)count;
    if (wants & WANT_FACES) rc = count_faces(j, R, images, count, faces);
    if (rc == FU_OK && (wants & WANT_DLIB)) rc = dlib_descriptors(j, R, images, count, f->dlib + at * DESC);
    if (rc == FU_OK && (wants & WANT_FACERES)) rc = faceres_descriptors(j, R, images, count, f->faceres + at * FACERES);
    return rc;
}

/* Runs n images of src through the wanted judges, CHUNK at a time. */
static int judge_set(const judges *j, image_source *src, int64_t n, unsigned wants, set_features *f,
                     fu_progress_fn progress, void *ctx, const char *stage) {
    int R = src->resolution;
    memset(f, 0, sizeof *f);
    f->n = n;
    f->hf_share = f->face_rate = NAN;
    if ((wants & WANT_DLIB) && !(f->dlib = malloc(sizeof(float) * (size_t)(n * DESC)))) return fu_fail(FU_E_INTERNAL, "out of memory");
    if ((wants & WANT_FACERES) && !(f->faceres = malloc(sizeof(float) * (size_t)(n * FACERES)))) return fu_fail(FU_E_INTERNAL, "out of memory");
    float *images = malloc(sizeof(float) * (size_t)(CHUNK * 3 * R * R));
    int rc = images ? FU_OK : fu_fail(FU_E_INTERNAL, "out of memory");
    double hf_sum = 0;
    int64_t faces = 0;
    for (int64_t at = 0; rc == FU_OK && at < n; at += CHUNK) {
        if (progress) progress(ctx, at, n, stage);
        int64_t count = n - at < CHUNK ? n - at : CHUNK;
        rc = src->fill(src, at, count, images);
        if (rc == FU_OK) rc = judge_chunk(j, R, images, at, count, wants, f, &hf_sum, &faces);
    }
    if (progress && rc == FU_OK) progress(ctx, n, n, stage);
    if (n > 0 && (wants & WANT_SHARPNESS)) f->hf_share = hf_sum / (double)n;
    if (n > 0 && (wants & WANT_FACES)) f->face_rate = (double)faces / (double)n;
    free(images);
    return rc;
}

/* ---------------------------------------------------------------- figures */

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

/* take of the n rows of x [n, FACERES], evenly spread (not the first: a pack is in file-name
 * order, and UTKFace's names start with the age). NULL when out of memory. */
static float *spread_rows(const float *x, int64_t n, int64_t take) {
    float *out = malloc(sizeof(float) * (size_t)(take * FACERES));
    for (int64_t k = 0; out && k < take; k++) memcpy(out + k * FACERES, x + k * n / take * FACERES, sizeof(float) * FACERES);
    return out;
}

/* FD, KID and precision/recall of faceres rows, gen against real (precision/recall on as many
 * rows of each, evenly spread, so both sets have one size). */
static int faceres_distances(const set_features *gen, const set_features *real, uint64_t seed, fu_gq_distances *out) {
    int64_t n_pr = gen->n < real->n ? gen->n : real->n;
    out->kid_subset = n_pr / 2 < FU_GQ_KID_SUBSET_SIZE ? n_pr / 2 : FU_GQ_KID_SUBSET_SIZE;
    out->kid_subset = out->kid_subset < 2 ? 2 : out->kid_subset;
    int rc = fu_features_frechet(gen->faceres, gen->n, real->faceres, real->n, FACERES, &out->fd);
    if (rc == FU_OK)
        rc = fu_kid(gen->faceres, gen->n, real->faceres, real->n, FACERES, FU_GQ_KID_SUBSETS, out->kid_subset, seed, &out->kid,
                    &out->kid_std);
    float *g = spread_rows(gen->faceres, gen->n, n_pr), *r = spread_rows(real->faceres, real->n, n_pr);
    if (rc == FU_OK && (!g || !r)) rc = fu_fail(FU_E_INTERNAL, "out of memory");
    if (rc == FU_OK) rc = fu_knn_precision_recall(r, n_pr, g, n_pr, FACERES, FU_GQ_KNN_K, &out->precision, &out->recall);
    free(g);
    free(r);
    return rc;
}

static void race_shares(const fu_race_judge *judge, const set_features *f, double shares[FU_RACE_CLASSES]) {
    int64_t counts[FU_RACE_CLASSES] = {0}, judged = 0;
    for (int64_t k = 0; k < f->n; k++) {
        float probs[FU_RACE_CLASSES];
        int c = fu_race_judge_classify(judge, f->faceres + k * FACERES, probs);
        if (c >= 0 && c < FU_RACE_CLASSES) counts[c]++, judged++;
    }
    for (int c = 0; c < FU_RACE_CLASSES; c++) shares[c] = judged ? (double)counts[c] / (double)judged : NAN;
}

static int compare_doubles(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* Memorisation: samples within dlib's 0.4 of their nearest train face, and the median distance;
 * the same share for held-out real faces. */
static int memorisation(const set_features *samples, const set_features *heldout, const set_features *train, fu_gen_quality *out) {
    double *nearest = malloc(sizeof(double) * (size_t)samples->n);
    if (!nearest) return fu_fail(FU_E_INTERNAL, "out of memory");
    int rc = fu_share_within(samples->dlib, samples->n, train->dlib, train->n, DESC, FU_GQ_MEMO_DISTANCE, &out->memorised, nearest);
    if (rc == FU_OK)
        rc = fu_share_within(heldout->dlib, heldout->n, train->dlib, train->n, DESC, FU_GQ_MEMO_DISTANCE, &out->memorised_heldout, NULL);
    if (rc == FU_OK) {
        qsort(nearest, (size_t)samples->n, sizeof(double), compare_doubles);
        int64_t h = samples->n / 2;
        out->memo_nearest_median = samples->n % 2 ? nearest[h] : 0.5 * (nearest[h - 1] + nearest[h]);
    }
    free(nearest);
    return rc;
}

/* ---------------------------------------------------------------- the run */

/* The four image sets and their judged features. */
typedef struct gq_sets {
    image_source samples, heldout, train, memo, recons;
    int64_t *index;   /* heldout, train and memo indices, one allocation */
    set_features f_samples, f_heldout, f_train, f_memo, f_recons;
} gq_sets;

static int sets_init(gq_sets *s, const fu_generator *gen, const fu_faces *set, const fu_gen_quality_config *cfg) {
    memset(s, 0, sizeof *s);
    int R = gen->resolution, factor = set->size / R;
    if (set->size < R || set->size % R || (factor & (factor - 1)))
        return fu_fail(FU_E_INPUT, "eval: the face set's %d px faces cannot be brought to the generator's %d px by halving", set->size, R);
    if (!(s->index = malloc(sizeof(int64_t) * (size_t)(3 * set->count + 1)))) return fu_fail(FU_E_INTERNAL, "eval: out of memory");
    image_source real = {fill_real, gen, R, 0, 0, set, NULL, factor, NULL, 0};
    s->heldout = s->train = s->memo = real;
    s->heldout.index = s->index;
    s->train.index = s->index + set->count;
    s->memo.index = s->index + 2 * set->count;
    s->f_heldout.n = spread_split(set, FU_SPLIT_VAL, cfg->n, s->index);
    s->f_train.n = spread_split(set, FU_SPLIT_TRAIN, cfg->n, s->index + set->count);
    s->f_memo.n = spread_split(set, FU_SPLIT_TRAIN, cfg->memo_train, s->index + 2 * set->count);
    s->samples = (image_source){fill_samples, gen, R, cfg->seed, cfg->temperature, NULL, NULL, 1, NULL, 0};
    s->recons = (image_source){fill_recons, gen, R, 0, 0, NULL, NULL, 1, &s->heldout, 0};
    if (s->f_heldout.n <= FU_GQ_KNN_K || s->f_train.n <= FU_GQ_KNN_K)
        return fu_fail(FU_E_INPUT, "eval: the face set has %lld val and %lld train faces, need %d of each", (long long)s->f_heldout.n,
                       (long long)s->f_train.n, FU_GQ_KNN_K + 1);
    return FU_OK;
}

static void sets_free(gq_sets *s) {
    set_features_free(&s->f_samples);
    set_features_free(&s->f_heldout);
    set_features_free(&s->f_train);
    set_features_free(&s->f_memo);
    set_features_free(&s->f_recons);
    free(s->index);
}

static int judge_all(const judges *j, gq_sets *s, int64_t n, int has_recon, fu_progress_fn progress, void *ctx) {
    unsigned all = WANT_SHARPNESS | WANT_FACES | WANT_DLIB | WANT_FACERES;
    int64_t n_heldout = s->f_heldout.n, n_train = s->f_train.n, n_memo = s->f_memo.n;
    int rc = judge_set(j, &s->samples, n, all, &s->f_samples, progress, ctx, "samples");
    if (rc == FU_OK) rc = judge_set(j, &s->heldout, n_heldout, all, &s->f_heldout, progress, ctx, "held-out faces");
    if (rc == FU_OK) rc = judge_set(j, &s->train, n_train, WANT_DLIB | WANT_FACERES, &s->f_train, progress, ctx, "train faces");
    /* The memorisation search's train faces: the same as above when the counts agree. */
    if (rc == FU_OK && n_memo != n_train) rc = judge_set(j, &s->memo, n_memo, WANT_DLIB, &s->f_memo, progress, ctx, "train faces (memorisation)");
    if (rc == FU_OK && has_recon) rc = judge_set(j, &s->recons, n_heldout, WANT_SHARPNESS | WANT_DLIB, &s->f_recons, progress, ctx, "reconstructions");
    return rc;
}

static int figures(const judges *j, gq_sets *s, const fu_gen_quality_config *cfg, fu_gen_quality *out) {
    const set_features *memo = s->f_memo.dlib ? &s->f_memo : &s->f_train;
    out->n_memo_train = memo->n;
    out->hf_samples = s->f_samples.hf_share;
    out->hf_heldout = s->f_heldout.hf_share;
    out->sharpness_samples = out->hf_samples / out->hf_heldout;
    out->face_rate_samples = s->f_samples.face_rate;
    out->face_rate_heldout = s->f_heldout.face_rate;
    race_shares(j->race, &s->f_samples, out->race_samples);
    race_shares(j->race, &s->f_train, out->race_train);
    int rc = faceres_distances(&s->f_samples, &s->f_heldout, cfg->seed, &out->faceres);
    if (rc == FU_OK) rc = faceres_distances(&s->f_train, &s->f_heldout, cfg->seed, &out->faceres_floor);
    if (rc == FU_OK) rc = fu_features_frechet(s->f_samples.dlib, s->f_samples.n, s->f_heldout.dlib, s->f_heldout.n, DESC, &out->fd_identity);
    if (rc == FU_OK) rc = fu_features_frechet(s->f_train.dlib, s->f_train.n, s->f_heldout.dlib, s->f_heldout.n, DESC, &out->fd_identity_floor);
    if (rc == FU_OK) rc = memorisation(&s->f_samples, &s->f_heldout, memo, out);
    if (rc == FU_OK && out->has_recon) {
        out->hf_recons = s->f_recons.hf_share;
        out->sharpness_recons = out->hf_recons / out->hf_heldout;
        out->recon_identity_cosine = mean_cosine(s->f_heldout.dlib, s->f_recons.dlib, s->f_heldout.n);
        out->recon_psnr_db = s->recons.psnr_sum / (double)s->f_heldout.n;
    }
    return rc;
}

int fu_gen_quality_run(const fu_generator *gen, const fu_faces *set, const fu_gen_quality_config *cfg, fu_gen_quality *out,
                       fu_progress_fn progress, void *ctx) {
    memset(out, 0, sizeof *out);
    if (cfg->n < FU_GQ_KNN_K + 1 || cfg->n > 100000)
        return fu_fail(FU_E_INPUT, "eval: --samples %lld out of range %d..100000", (long long)cfg->n, FU_GQ_KNN_K + 1);
    out->resolution = gen->resolution;
    out->pack_size = set->size;
    out->has_recon = gen->init_latent != NULL;
    out->n_samples = cfg->n;
    gq_sets s;
    judges j;
    memset(&j, 0, sizeof j);
    int rc = sets_init(&s, gen, set, cfg);
    out->n_heldout = s.f_heldout.n;
    out->n_train = s.f_train.n;
    if (rc == FU_OK) rc = judges_open(&j, cfg, gen->resolution);
    if (rc == FU_OK) rc = judge_all(&j, &s, cfg->n, out->has_recon, progress, ctx);
    if (rc == FU_OK) rc = figures(&j, &s, cfg, out);
    judges_close(&j);
    sets_free(&s);
    return rc;
}
