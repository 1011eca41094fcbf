/* Face-network terms of the search (see face_guides.h).
 *
 * The identity constants (FU_IDENTITY_NORM, FU_IDENTITY_SLOPE) come from the descriptors of
 * the heads' training faces (CelebA 000001-009000 and UTKFace train, detected, dlib-chipped):
 * their mean norm r, which puts dlib's 0.6 distance at the angle t = 2 asin(0.3 / r), and the
 * median angle between two different training faces, theta_50: k makes p_same(theta_50) =
 * 0.01, k = ln(99) / (theta_50 - t). No identity labels exist for these sets (LFW, which has
 * them, is kept for evaluation), so random pairs stand in for different people. */
#include "face_guides.h"
#include <math.h>
#include <string.h>
#include "core/error.h"
#include "core/ops.h"
#include "face/align.h"
#include "faceup.h"

#define FRAME_MAX 256
#define COS_LIMIT 1e-6f

int fu_face_guides_init(fu_face_guides *fg, fu_dlib_resnet *net, const fu_heads *heads, int resolution) {
    memset(fg, 0, sizeof *fg);
    if (resolution < 16 || (resolution & (resolution - 1)))
        return fu_fail(FU_E_INPUT, "face guides: generator side %d is not a power of two >= 16", resolution);
    fg->net = net;
    fg->heads = heads;
    fg->resolution = resolution;
    fg->pre_factor = resolution > FRAME_MAX ? resolution / FRAME_MAX : 1;
    int side = resolution / fg->pre_factor;
    float lm[136];
    for (int k = 0; k < 136; k++) lm[k] = heads->ffhq_landmarks[k] * (float)side - 0.5f;
    fg->threshold = (float)(2 * asin(FU_IDENTITY_DLIB_THRESHOLD / (2 * FU_IDENTITY_NORM)));
    fg->slope = (float)FU_IDENTITY_SLOPE;
    return fu_align_theta(FU_ALIGN_DLIB, lm, FU_DLIB_RESNET_SIZE, fg->theta);
}

void fu_face_guides_set_reference(fu_face_guides *fg, const float reference[FU_DLIB_RESNET_DIM]) {
    memcpy(fg->reference, reference, sizeof fg->reference);
    fg->has_reference = 1;
}

void fu_face_guides_set_comparer(fu_face_guides *fg, float threshold, float slope) {
    fg->threshold = threshold;
    fg->slope = slope;
}

int fu_face_guides_set_jitter(fu_face_guides *fg, float amount) {
    if (!(amount >= 0 && amount <= 0.5f))
        return fu_fail(FU_E_INPUT, "face jitter must be in [0, 0.5], got %g", (double)amount);
    fg->jitter = amount;
    return FU_OK;
}

/* ------------------------------------------------------------------ graph pieces */

fu_tensor *fu_face_guides_chip(const fu_face_guides *fg, fu_graph *g, fu_tensor *image) {
    if (!image || image->ndim != 4 || image->shape[1] != 3 || image->shape[2] != fg->resolution || image->shape[3] != fg->resolution)
        return fu_fail_null(FU_E_INPUT, "face guides: expected images [N,3,%d,%d]", fg->resolution, fg->resolution);
    fu_tensor *x = fg->pre_factor > 1 ? fu_bicubic_downsample(g, image, fg->pre_factor) : image;
    int64_t n = image->shape[0];
    fu_tensor *th = x ? fu_graph_tensor(g, 3, (int64_t[]){n, 2, 3}) : NULL;
    if (!th) return NULL;
    for (int64_t i = 0; i < n; i++)
        for (int k = 0; k < 6; k++) th->data[i * 6 + k] = (float)fg->theta[k];
    if (fg->jitter > 0) th = fu_warp_jitter(g, th, fg->jitter, 1, FU_DLIB_RESNET_SIZE, FU_DLIB_RESNET_SIZE);
    return fu_affine_warp(g, x, th, FU_DLIB_RESNET_SIZE, FU_DLIB_RESNET_SIZE);
}

fu_tensor *fu_face_guides_descriptor(const fu_face_guides *fg, fu_graph *g, fu_tensor *image) {
    fu_tensor *chip = fu_face_guides_chip(fg, g, image);
    return chip ? fu_dlib_resnet_forward(fg->net, g, chip) : NULL;
}

/* The reference repeated for n rows, [n, 128]. */
static fu_tensor *reference_rows(const fu_face_guides *fg, fu_graph *g, int64_t n) {
    fu_tensor *r = fu_graph_tensor(g, 2, (int64_t[]){n, FU_DLIB_RESNET_DIM});
    for (int64_t i = 0; r && i < n; i++) memcpy(r->data + i * FU_DLIB_RESNET_DIM, fg->reference, sizeof fg->reference);
    return r;
}

/* p_same = sigmoid(k (t - angle)) per row, [n]. */
static fu_tensor *p_same(const fu_face_guides *fg, fu_graph *g, fu_tensor *desc, fu_tensor *ref) {
    fu_tensor *cosine = fu_clamp(g, fu_cosine_similarity(g, desc, ref, 1e-8f), -1 + COS_LIMIT, 1 - COS_LIMIT);
    fu_tensor *angle = fu_acos(g, cosine);
    return fu_sigmoid(g, fu_scale_shift(g, angle, -fg->slope, fg->slope * fg->threshold));
}

/* ------------------------------------------------------------------ the terms */

static fu_tensor *identity_loss(void *ctx, fu_graph *g, fu_tensor *image, const fu_loss_term *term) {
    const fu_face_guides *fg = ctx;
    fu_tensor *desc = fu_face_guides_descriptor(fg, g, image);
    fu_tensor *ref = desc ? reference_rows(fg, g, desc->shape[0]) : NULL;
    if (!ref) return NULL;
    if (term->kind == FU_TERM_IDENTITY_SCORE) return fu_sum_all(g, fu_neg(g, fu_log(g, p_same(fg, g, desc, ref))));
    fu_tensor *a = fu_l2_normalize(g, desc, 1, 1e-12f), *b = fu_l2_normalize(g, ref, 1, 1e-12f);
    return fu_sum_all(g, fu_square(g, fu_sub(g, a, b)));
}

static fu_tensor *race_loss(void *ctx, fu_graph *g, fu_tensor *image, const fu_loss_term *term) {
    const fu_face_guides *fg = ctx;
    if (term->index >= FU_RACE_CLASSES)
        return fu_fail_null(FU_E_INPUT, "RACE_IS_%d: the race head has classes 0..%d", term->index, FU_RACE_CLASSES - 1);
    fu_tensor *logits = fu_heads_race_logits(g, fg->heads, fu_face_guides_descriptor(fg, g, image));
    if (!logits) return NULL;
    int64_t n = logits->shape[0];
    int *labels = fu_graph_alloc(g, (size_t)n * sizeof *labels);
    if (!labels) return NULL;
    for (int64_t i = 0; i < n; i++) labels[i] = term->index;
    return fu_scale_shift(g, fu_cross_entropy(g, logits, labels), (float)n, 0);   /* mean -> sum */
}

static fu_tensor *attr_loss(void *ctx, fu_graph *g, fu_tensor *image, const fu_loss_term *term) {
    const fu_face_guides *fg = ctx;
    fu_tensor *logits = fu_mlp_forward(g, &fg->heads->attr, fu_face_guides_descriptor(fg, g, image));
    fu_tensor *one = logits ? fu_slice(g, logits, 1, term->index, term->index + 1, 1) : NULL;
    fu_tensor *target = one ? fu_graph_tensor(g, 2, one->shape) : NULL;
    if (!target) return NULL;
    fu_tensor_fill(target, (float)term->value);
    return fu_scale_shift(g, fu_bce_with_logits(g, one, target, NULL), (float)one->shape[0], 0);
}

fu_search_guides fu_face_guides_bind(fu_face_guides *fg) {
    fu_search_guides s = {.race = {race_loss, fg}, .attr = {attr_loss, fg}};
    if (fg->has_reference) s.identity = (fu_search_guide){identity_loss, fg};
    return s;
}

/* ------------------------------------------------------------------ report */

static float sigmoidf_plain(float x) { return 1.0f / (1.0f + expf(-x)); }

int fu_face_guides_describe(const fu_face_guides *fg_in, const fu_tensor *image, fu_face_report *r) {
    memset(r, 0, sizeof *r);
    fu_face_guides plain = *fg_in, *fg = &plain;
    plain.jitter = 0;
    fu_graph *g = fu_graph_new();
    if (!g) return FU_E_INTERNAL;
    fu_tensor *desc = fu_face_guides_descriptor(fg, g, (fu_tensor *)image);
    fu_tensor *race = desc ? fu_softmax(g, fu_heads_race_logits(g, fg->heads, desc), 1) : NULL;
    fu_tensor *attr = race ? fu_mlp_forward(g, &fg->heads->attr, desc) : NULL;
    int rc = attr ? FU_OK : (fu_last_code() ? fu_last_code() : FU_E_INTERNAL);
    if (rc == FU_OK) {
        for (int k = 0; k < FU_RACE_CLASSES; k++)
            if (race->data[k] > race->data[r->race]) r->race = k;
        memcpy(r->race_probs, race->data, sizeof r->race_probs);
        for (int a = 0; a < FU_ATTRS; a++) r->attr_probs[a] = sigmoidf_plain(attr->data[a]);
    }
    if (rc == FU_OK && fg->has_reference) {
        double dot = 0, na = 0, nb = 0;
        for (int k = 0; k < FU_DLIB_RESNET_DIM; k++) {
            dot += (double)desc->data[k] * fg->reference[k];
            na += (double)desc->data[k] * desc->data[k];
            nb += (double)fg->reference[k] * fg->reference[k];
        }
        r->has_identity = 1;
        r->cosine = (float)(dot / sqrt(na * nb + 1e-30));
        r->angle = acosf(fminf(1, fmaxf(-1, r->cosine)));
        r->p_same = sigmoidf_plain(fg->slope * (fg->threshold - r->angle));
    }
    fu_graph_free(g);
    return rc;
}
