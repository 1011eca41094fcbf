/* dlib shape predictor evaluation (see landmarks.h). */
#include "landmarks.h"
#include <math.h>
#include <stdlib.h>
#include "core/error.h"
#include "face/transform2d.h"
#include "faceup.h"

fu_gray_image *fu_gray_from_rgb(const fu_tensor *img) {
    int batched = img && img->ndim == 4;
    if (!img || (img->ndim != 3 && !batched) || (batched && img->shape[0] != 1) || fu_dim(img, -3) != 3)
        return fu_fail_null(FU_E_INPUT, "gray: expected an RGB image [1,3,H,W] or [3,H,W]");
    int64_t H = fu_dim(img, -2), W = fu_dim(img, -1);
    if (H > INT32_MAX || W > INT32_MAX) return fu_fail_null(FU_E_INPUT, "gray: image too large");
    fu_gray_image *g = fu_calloc(1, sizeof *g);
    if (!g || !(g->pix = fu_malloc((size_t)(H * W)))) { free(g); return NULL; }
    g->width = (int)W;
    g->height = (int)H;
    for (int64_t i = 0; i < H * W; i++) {
        unsigned sum = 0;
        for (int c = 0; c < 3; c++) {
            float v = img->data[c * H * W + i];
            sum += (unsigned)(v > 0 ? (v < 1 ? lrintf(v * 255.0f) : 255) : 0);
        }
        g->pix[i] = (uint8_t)(sum / 3);
    }
    return g;
}

void fu_gray_free(fu_gray_image *g) {
    if (!g) return;
    free(g->pix);
    free(g);
}

/* Intensity at the pixel nearest to (x, y), 0 outside the image (dlib's feature rule). */
static float feature_pixel(const fu_gray_image *img, double x, double y) {
    double px = floor(x + 0.5), py = floor(y + 0.5);
    if (!(px >= 0 && px < img->width && py >= 0 && py < img->height)) return 0;
    return img->pix[(int64_t)py * img->width + (int64_t)px];
}

static void extract_features(const fu_shape_predictor *sp, const fu_dlib_cascade *cs, const fu_gray_image *img,
                             fu_box box, const float *shape, float *features) {
    double t[6];
    fu_similarity_fit(sp->initial_shape, shape, sp->n_parts, t);
    /* dlib rounds the 2x2 part to float and maps the deltas in float. */
    float m0 = (float)t[0], m1 = (float)t[1], m3 = (float)t[3], m4 = (float)t[4];
    double bw = (double)box.right - box.left, bh = (double)box.bottom - box.top;
    for (int64_t i = 0; i < cs->n_pixels; i++) {
        const float *d = sp->deltas + 2 * (cs->pixel_begin + i);
        uint32_t a = sp->anchor_idx[cs->pixel_begin + i];
        float u = m0 * d[0] + m1 * d[1] + shape[2 * a];
        float v = m3 * d[0] + m4 * d[1] + shape[2 * a + 1];
        features[i] = feature_pixel(img, box.left + u * bw, box.top + v * bh);
    }
}

static const float *tree_leaf(const fu_shape_predictor *sp, const fu_dlib_tree *tr, const float *features) {
    int64_t i = 0;
    while (i < tr->n_splits) {
        const fu_dlib_split *s = &sp->splits[tr->split_begin + i];
        i = features[s->idx1] - features[s->idx2] > s->thresh ? 2 * i + 1 : 2 * i + 2;
    }
    return sp->leaves + (tr->leaf_begin + (i - tr->n_splits)) * 2 * sp->n_parts;
}

int fu_shape_predict(const fu_shape_predictor *sp, const fu_gray_image *img, fu_box box, float *parts) {
    if (!(isfinite(box.left) && isfinite(box.top) && isfinite(box.right) && isfinite(box.bottom)) ||
        box.right <= box.left || box.bottom <= box.top)
        return fu_fail(FU_E_INPUT, "landmarks: empty or invalid face box");
    int64_t max_pixels = 0, dim = 2 * (int64_t)sp->n_parts;
    for (int k = 0; k < sp->n_cascades; k++)
        if (sp->cascades[k].n_pixels > max_pixels) max_pixels = sp->cascades[k].n_pixels;
    float *shape = fu_malloc((size_t)dim * sizeof(float));
    float *features = fu_malloc((size_t)(max_pixels + 1) * sizeof(float));
    if (!shape || !features) { free(shape); free(features); return FU_E_INTERNAL; }
    for (int64_t j = 0; j < dim; j++) shape[j] = sp->initial_shape[j];
    for (int k = 0; k < sp->n_cascades; k++) {
        const fu_dlib_cascade *cs = &sp->cascades[k];
        extract_features(sp, cs, img, box, shape, features);
        for (int64_t t = cs->tree_begin; t < cs->tree_begin + cs->n_trees; t++) {
            const float *leaf = tree_leaf(sp, &sp->trees[t], features);
            for (int64_t j = 0; j < dim; j++) shape[j] += leaf[j];
        }
    }
    double bw = (double)box.right - box.left, bh = (double)box.bottom - box.top;
    for (int p = 0; p < sp->n_parts; p++) {
        parts[2 * p] = (float)(box.left + shape[2 * p] * bw);
        parts[2 * p + 1] = (float)(box.top + shape[2 * p + 1] * bh);
    }
    free(shape);
    free(features);
    return FU_OK;
}
