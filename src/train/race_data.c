/* UTKFace faces of a pack for the race classifiers (see race_data.h). */
#include "train/race_data.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/ops.h"
#include "data/embed_cache.h"
#include "face/race_judge.h"
#include "faceup.h"

#define DEV_EVERY 10          /* every 10th train face of a class is DEV */
#define THUMB_CHUNK 256       /* faces per bicubic call */

void fu_race_data_free(fu_race_data *d) {
    free(d->race); free(d->part); free(d->pack_index);
    free(d->thumb16); free(d->thumb8); free(d->faceres);
    memset(d, 0, sizeof *d);
}

void fu_race_data_counts(const fu_race_data *d, int64_t counts[FU_RD_N_PARTS][FU_RD_CLASSES]) {
    memset(counts, 0, sizeof(int64_t) * FU_RD_N_PARTS * FU_RD_CLASSES);
    for (int64_t i = 0; i < d->n; i++) counts[d->part[i]][d->race[i]]++;
}

/* Which pack faces are taken and their parts; fills race/part/pack_index, sets d->n. */
static int select_faces(const fu_faces *pack, int max_train_per_class, fu_race_data *d) {
    int64_t seen[FU_RD_CLASSES] = {0}, kept_train[FU_RD_CLASSES] = {0}, cap = pack->count ? pack->count : 1;
    d->race = malloc((size_t)cap * sizeof(int));
    d->part = malloc((size_t)cap * sizeof(int));
    d->pack_index = malloc((size_t)cap * sizeof(int64_t));
    if (!d->race || !d->part || !d->pack_index) return fu_fail(FU_E_INTERNAL, "out of memory");
    for (int64_t i = 0; i < pack->count; i++) {
        const fu_face_label *l = &pack->labels[i];
        if (l->source != FU_FACES_UTKFACE || l->race < 0 || l->race >= FU_RD_CLASSES || l->split > FU_SPLIT_VAL) continue;
        int part = FU_RD_VAL;
        if (l->split == FU_SPLIT_TRAIN) {
            part = seen[l->race]++ % DEV_EVERY == DEV_EVERY - 1 ? FU_RD_DEV : FU_RD_TRAIN;
            if (part == FU_RD_TRAIN && max_train_per_class && kept_train[l->race] >= max_train_per_class) continue;
            if (part == FU_RD_TRAIN) kept_train[l->race]++;
        }
        d->race[d->n] = l->race, d->part[d->n] = part, d->pack_index[d->n] = i;
        d->n++;
    }
    int64_t counts[FU_RD_N_PARTS][FU_RD_CLASSES];
    fu_race_data_counts(d, counts);
    for (int p = 0; p < FU_RD_N_PARTS; p++)
        for (int c = 0; c < FU_RD_CLASSES; c++)
            if (!counts[p][c]) return fu_fail(FU_E_INPUT, "race data: the pack has no UTKFace %s face of race class %d", p == FU_RD_VAL ? "val" : "train", c);
    return FU_OK;
}

/* Pack face i as a [1,3,S,S] slice in [0,1] at dst. */
static void pack_image(const fu_faces *pack, int64_t i, float *dst) {
    int64_t n = 3 * (int64_t)pack->size * pack->size;
    const uint8_t *src = pack->pixels + i * n;
    for (int64_t k = 0; k < n; k++) dst[k] = src[k] / 255.0f;
}

static float to_8bit(float v) { return lrintf(fminf(fmaxf(v, 0.0f), 1.0f) * 255.0f) / 255.0f; }

/* Thumbnails of faces [at, at + b) by `factor` into rows of `dim` floats. */
static int thumbs_chunk(const fu_faces *pack, const fu_race_data *d, int64_t at, int64_t b, int factor, float *rows, int dim) {
    int64_t S = pack->size;
    fu_graph *g = fu_graph_new();
    fu_tensor *x = g ? fu_graph_tensor(g, 4, (int64_t[]){b, 3, S, S}) : NULL;
    for (int64_t k = 0; x && k < b; k++) pack_image(pack, d->pack_index[at + k], x->data + k * 3 * S * S);
    fu_tensor *t = x ? fu_bicubic_downsample(g, x, factor) : NULL;
    int rc = t && t->numel == b * dim ? FU_OK : fu_last_code() ? fu_last_code() : FU_E_INTERNAL;
    for (int64_t k = 0; rc == FU_OK && k < b * dim; k++) rows[at * dim + k] = to_8bit(t->data[k]);
    fu_graph_free(g);
    return rc;
}

static int build_thumbs(const fu_faces *pack, fu_race_data *d) {
    if (pack->size != 64) return fu_fail(FU_E_INPUT, "race data: the pack holds %dx%d faces, 64x64 expected", pack->size, pack->size);
    d->thumb16 = malloc((size_t)d->n * FU_RD_THUMB16 * sizeof(float));
    d->thumb8 = malloc((size_t)d->n * FU_RD_THUMB8 * sizeof(float));
    if (!d->thumb16 || !d->thumb8) return fu_fail(FU_E_INTERNAL, "out of memory");
    int rc = FU_OK;
    for (int64_t at = 0; rc == FU_OK && at < d->n; at += THUMB_CHUNK) {
        int64_t b = d->n - at < THUMB_CHUNK ? d->n - at : THUMB_CHUNK;
        rc = thumbs_chunk(pack, d, at, b, 4, d->thumb16, FU_RD_THUMB16);
        if (rc == FU_OK) rc = thumbs_chunk(pack, d, at, b, 8, d->thumb8, FU_RD_THUMB8);
    }
    return rc;
}

int fu_race_data_faceres(fu_face_net *faceres, fu_tensor *img, float *out) {
    int size = fu_face_net_input_size(faceres);
    static const float whole[4] = {0, 0, 1, 1};
    double theta[1][6];
    fu_judge_box_theta(img->shape, whole, size, theta[0]);
    return fu_face_net_run(faceres, &img, (const double (*)[6])theta, 1, out);
}

static fu_ecache_key pixel_key(const fu_faces *pack, int64_t i) {
    size_t n = 3 * (size_t)pack->size * (size_t)pack->size;
    return fu_ecache_key_bytes(pack->pixels + (size_t)i * n, n);
}

static int build_faceres(const fu_faces *pack, fu_face_net *net, const char *cache_path, fu_race_data *d,
                         fu_progress_fn progress, void *ctx) {
    if (fu_face_net_out_dim(net) != FU_RD_FACERES) return fu_fail(FU_E_INPUT, "race data: the judge network gives %d floats, faceres' %d expected", fu_face_net_out_dim(net), FU_RD_FACERES);
    d->faceres = malloc((size_t)d->n * FU_RD_FACERES * sizeof(float));
    fu_ecache *cache = cache_path ? fu_ecache_open(cache_path, FU_RD_CACHE_TAG, FU_RD_FACERES) : NULL;
    fu_tensor *img = fu_tensor_newv(4, (int64_t)1, (int64_t)3, (int64_t)pack->size, (int64_t)pack->size);
    int rc = d->faceres && img && (cache || !cache_path) ? FU_OK : fu_fail(FU_E_INTERNAL, "out of memory");
    int64_t fresh = 0;
    for (int64_t i = 0; rc == FU_OK && i < d->n; i++) {
        float *row = d->faceres + i * FU_RD_FACERES;
        fu_ecache_key key = pixel_key(pack, d->pack_index[i]);
        if (cache && fu_ecache_get(cache, key, row)) d->n_cached++;
        else {
            pack_image(pack, d->pack_index[i], img->data);
            rc = fu_race_data_faceres(net, img, row);
            if (rc == FU_OK && cache) rc = fu_ecache_put(cache, key, row);
            /* save now and then, so a killed run keeps most of its work */
            if (rc == FU_OK && cache && ++fresh % 500 == 0) rc = fu_ecache_save(cache);
        }
        if (progress) progress(ctx, i + 1, d->n, "faceres");
    }
    if (rc == FU_OK && cache && fresh) rc = fu_ecache_save(cache);
    fu_ecache_free(cache);
    fu_tensor_free(img);
    return rc;
}

int fu_race_data_build(const fu_faces *pack, int max_train_per_class, fu_face_net *faceres, const char *cache_path,
                       fu_race_data *out, fu_progress_fn progress, void *ctx) {
    memset(out, 0, sizeof *out);
    if (max_train_per_class < 0) return fu_fail(FU_E_INPUT, "race data: max_train_per_class must be >= 0");
    int rc = select_faces(pack, max_train_per_class, out);
    if (rc == FU_OK) rc = build_thumbs(pack, out);
    if (rc == FU_OK && faceres) rc = build_faceres(pack, faceres, cache_path, out, progress, ctx);
    if (rc != FU_OK) fu_race_data_free(out);
    return rc;
}
