/* Descriptors, FFHQ thumbnails and landmarks of the heads' training images (see heads_data.h). */
#include "heads_data.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/error.h"
#include "core/ops.h"
#include "data/embed_cache.h"
#include "face/align.h"
#include "face/face_pipeline.h"
#include "faceup.h"
#include "io/image.h"

#define FFHQ_CROP 128

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Record layout in the cache: desc | thumb16 | thumb8 | landmarks; desc[0] = NaN: no face. */
static void to_record(const fu_heads_sample *s, float *rec) {
    memcpy(rec, s->desc, sizeof s->desc);
    memcpy(rec + FU_HD_DESC, s->thumb16, sizeof s->thumb16);
    memcpy(rec + FU_HD_DESC + FU_HD_THUMB16, s->thumb8, sizeof s->thumb8);
    memcpy(rec + FU_HD_DESC + FU_HD_THUMB16 + FU_HD_THUMB8, s->landmarks, sizeof s->landmarks);
    if (!s->ok) rec[0] = NAN;
}

static void from_record(const float *rec, fu_heads_sample *s) {
    memcpy(s->desc, rec, sizeof s->desc);
    memcpy(s->thumb16, rec + FU_HD_DESC, sizeof s->thumb16);
    memcpy(s->thumb8, rec + FU_HD_DESC + FU_HD_THUMB16, sizeof s->thumb8);
    memcpy(s->landmarks, rec + FU_HD_DESC + FU_HD_THUMB16 + FU_HD_THUMB8, sizeof s->landmarks);
    s->ok = !isnan(rec[0]);
}

/* FFHQ crop at 128, its bicubic downscales to 16 and 8, and the landmarks in its frame. */
static int ffhq_views(fu_tensor *img, const float *lm, fu_heads_sample *s) {
    fu_graph *g = fu_graph_new();
    double theta[6], inv[6];
    fu_tensor *crop = g ? fu_align_face(g, img, lm, FU_ALIGN_FFHQ, FFHQ_CROP, theta) : NULL;
    fu_tensor *t16 = crop ? fu_bicubic_downsample(g, crop, FFHQ_CROP / 16) : NULL;
    fu_tensor *t8 = crop ? fu_bicubic_downsample(g, crop, FFHQ_CROP / 8) : NULL;
    int rc = t16 && t8 ? fu_affine_invert(theta, inv) : (fu_last_code() ? fu_last_code() : FU_E_INTERNAL);
    if (rc == FU_OK) {
        memcpy(s->thumb16, t16->data, sizeof s->thumb16);
        memcpy(s->thumb8, t8->data, sizeof s->thumb8);
        for (int p = 0; p < 68; p++) {
            double u, v;
            fu_affine_apply(inv, lm[2 * p], lm[2 * p + 1], &u, &v);
            s->landmarks[2 * p] = (float)((u + 0.5) / FFHQ_CROP);
            s->landmarks[2 * p + 1] = (float)((v + 0.5) / FFHQ_CROP);
        }
    }
    fu_graph_free(g);
    return rc;
}

/* One image through the networks. A missing face (or a degenerate one) is ok = 0, not an error;
 * an unreadable file is. */
static int extract_one(const fu_face_pipeline *p, const char *path, fu_heads_sample *s) {
    fu_tensor *img = fu_image_load(path);
    if (!img) return fu_last_code() ? fu_last_code() : FU_E_INPUT;
    float lm[136];
    s->ok = 0;
    int rc = fu_face_pipeline_landmarks(p, img, path, lm);
    if (rc == FU_OK && fu_face_pipeline_descriptor(p, img, lm, s->desc) == FU_OK && ffhq_views(img, lm, s) == FU_OK) s->ok = 1;
    if (rc == FU_E_INPUT) rc = FU_OK;   /* no face */
    if (rc == FU_OK && !s->ok) memset(s->desc, 0, sizeof s->desc);
    fu_tensor_free(img);
    return rc;
}

static int extract_all(const char *data_dir, fu_ecache *cache, fu_heads_data *d,
                       fu_progress_fn progress, void *ctx) {
    fu_face_pipeline pipe = {0};
    int rc = FU_OK, opened = 0;
    float *rec = malloc(FU_HD_DIM * sizeof *rec);
    if (!rec) return fu_fail(FU_E_INTERNAL, "out of memory");
    for (int64_t i = 0; rc == FU_OK && i < d->n; i++) {
        fu_heads_sample *s = &d->s[i];
        char path[1024];
        fu_ecache_key key;
        snprintf(path, sizeof path, "%s/%s", data_dir, s->label.path);
        rc = fu_ecache_key_file(path, &key);
        if (rc != FU_OK) break;
        if (fu_ecache_get(cache, key, rec)) {
            from_record(rec, s);
            d->n_cached++;
        } else {
            if (!opened && (rc = fu_face_pipeline_open(&pipe)) != FU_OK) break;
            opened = 1;
            if ((rc = extract_one(&pipe, path, s)) != FU_OK) break;
            to_record(s, rec);
            rc = fu_ecache_put(cache, key, rec);
            /* Save now and then, so an interrupted run keeps most of its work. */
            if (rc == FU_OK && i % 1000 == 999) rc = fu_ecache_save(cache);
        }
        d->n_no_face += !s->ok;
        if (progress && (i % 64 == 63 || i == d->n - 1)) progress(ctx, i + 1, d->n, "images");
    }
    if (opened) fu_face_pipeline_close(&pipe);
    free(rec);
    return rc;
}

int fu_heads_data_build(const char *data_dir, const char *cache_path, fu_heads_data *out,
                        fu_progress_fn progress, void *ctx) {
    memset(out, 0, sizeof *out);
    fu_face_label *labels = NULL;
    int64_t n_all = 0;
    int rc = fu_faces_list(data_dir, &labels, &n_all);
    if (rc != FU_OK) return rc;
    out->s = calloc((size_t)(n_all ? n_all : 1), sizeof *out->s);
    if (!out->s) { free(labels); return fu_fail(FU_E_INTERNAL, "out of memory"); }
    for (int64_t i = 0; i < n_all; i++)
        if (labels[i].source != FU_FACES_LFW) out->s[out->n++].label = labels[i];
    free(labels);
    fu_ecache *cache = fu_ecache_open(cache_path, FU_HD_CACHE_TAG, FU_HD_DIM);
    if (!cache) { fu_heads_data_free(out); return fu_fail(FU_E_INTERNAL, "out of memory"); }
    double t0 = now_s();
    rc = extract_all(data_dir, cache, out, progress, ctx);
    out->seconds = now_s() - t0;
    if (out->n_cached < out->n) {
        int save_rc = fu_ecache_save(cache);
        if (rc == FU_OK) rc = save_rc;
    }
    fu_ecache_free(cache);
    if (rc != FU_OK) fu_heads_data_free(out);
    return rc;
}

void fu_heads_data_free(fu_heads_data *d) {
    free(d->s);
    memset(d, 0, sizeof *d);
}
