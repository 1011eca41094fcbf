/* The face-network terms of the search (search.h's guides), on generator output that is
 * FFHQ-aligned (StyleGAN's training frame; faceup's own VAE is trained on the same frame).
 *
 * Frame: a generated image [N,3,R,R] (values in [0,1]) is cut to dlib's 150x150 chip by ONE
 * fixed similarity warp for every image, not by detecting landmarks on it: the heads file's
 * frame.ffhq_landmarks (the mean 68-point shape of the training faces in the FFHQ frame,
 * normalised to [0,1], face/heads.h) is placed in the R-pixel frame (point p -> p R - 0.5 in
 * pixel-index coordinates) and align.h's dlib recipe gives theta (chip pixel -> image pixel).
 * Generators above 256 pixels are first bicubic-downscaled by a power of two to 256 (the warp
 * samples bilinearly and would alias otherwise; dlib pre-blurs with its pyramid for the same
 * reason). The warp is differentiable, so gradients flow loss -> dlib ResNet -> chip -> image.
 *
 * Terms (each summed over the batch; the search uses N = 1):
 *   IDENTITY_SCORE  dlib's face comparer as a probability. theta = angle between the image's
 *                   descriptor and the reference's; p_same = sigmoid(k (t - theta)); the term
 *                   is -log p_same (= softplus(k (theta - t))): it keeps pulling with slope
 *                   about k while the faces differ, where 1 - p_same would vanish (p_same is
 *                   ~0.01 for two random faces), and fades as p_same -> 1.
 *                   t translates dlib's same-person threshold (Euclidean distance 0.6) to an
 *                   angle for descriptors of the typical norm r: t = 2 asin(0.6 / (2 r)).
 *                   r and k were measured on the heads' training descriptors (README, models/):
 *                   see FU_IDENTITY_NORM, FU_IDENTITY_SLOPE.
 *   L2_IDENTITY     |e/|e| - ref/|ref||^2 (squared distance of the normalised descriptors).
 *   RACE_IS_k       cross-entropy of the race head's logits towards class k.
 *   ATTR_k_IS_v     binary cross-entropy of attribute k's logit towards v.
 * The cosine is clamped to [-1 + 1e-6, 1 - 1e-6] before acos (its gradient is infinite at
 * +-1). Each term runs the chip warp and the ResNet itself: a loss with identity, race and
 * attribute terms runs the network three times per step (the guide interface has no way to
 * know that two calls belong to the same graph build). */
#ifndef FU_SEARCH_FACE_GUIDES_H
#define FU_SEARCH_FACE_GUIDES_H
#include "face/dlib_resnet.h"
#include "face/heads.h"
#include "search/search.h"

/* Measured by `faceup train heads` on the 16,744 train faces (face_guides.c says how): mean
 * descriptor norm r = 1.451, so t = 2 asin(0.3 / r) = 0.4165 rad (23.9 degrees); median angle
 * of two random faces 0.5665 rad, so k = ln(99) / (0.5665 - 0.4165) = 30.6 per radian. */
#define FU_IDENTITY_NORM 1.451
#define FU_IDENTITY_DLIB_THRESHOLD 0.6
#define FU_IDENTITY_SLOPE 30.6

typedef struct fu_face_guides {
    fu_dlib_resnet *net;         /* borrowed */
    const fu_heads *heads;       /* borrowed */
    int resolution, pre_factor;  /* generator side; bicubic downscale before the warp (1 = none) */
    double theta[6];             /* chip pixel -> pixel of the (downscaled) image */
    int has_reference;
    float reference[FU_DLIB_RESNET_DIM];
    float threshold, slope;      /* t (radians) and k of IDENTITY_SCORE */
    float jitter;                /* > 0: every term sees the chip through a random similarity
                                  * (and a random mirror), redrawn each search step */
} fu_face_guides;

/* Sets the frame for a generator of side `resolution` (a power of two >= 16). FU_OK or
 * FU_E_INPUT. */
int fu_face_guides_init(fu_face_guides *fg, fu_dlib_resnet *net, const fu_heads *heads, int resolution);
void fu_face_guides_set_reference(fu_face_guides *fg, const float reference[FU_DLIB_RESNET_DIM]);
/* IDENTITY_SCORE's threshold t (radians) and slope k, e.g. the augmented extractor's learnt
 * comparer (face/face_extractor.h), instead of the calibration constants below. */
void fu_face_guides_set_comparer(fu_face_guides *fg, float threshold, float slope);
/* Expectation over transformations: with amount a > 0 each face term cuts its chip through
 * fu_warp_jitter (scale exp(+-a), rotation +-a rad, shift +-a of the chip, mirror with
 * probability 1/2), redrawn whenever the search changes the graph's seed (every step), so the
 * search cannot please the networks through one exact pixel grid. 0 (default): the fixed warp.
 * a in [0, 0.5]; FU_E_INPUT otherwise. fu_face_guides_describe never jitters. */
int fu_face_guides_set_jitter(fu_face_guides *fg, float amount);
/* The search guides: identity (when a reference is set), race and attr. */
fu_search_guides fu_face_guides_bind(fu_face_guides *fg);

/* Graph pieces: image [N,3,R,R] -> chips [N,3,150,150] -> descriptors [N,128]. */
fu_tensor *fu_face_guides_chip(const fu_face_guides *fg, fu_graph *g, fu_tensor *image);
fu_tensor *fu_face_guides_descriptor(const fu_face_guides *fg, fu_graph *g, fu_tensor *image);

/* What the networks say about one image [1,3,R,R]. */
typedef struct fu_face_report {
    int has_identity;
    float cosine, angle, p_same;             /* against the reference */
    int race;
    float race_probs[FU_RACE_CLASSES];
    float attr_probs[FU_ATTRS];
} fu_face_report;
int fu_face_guides_describe(const fu_face_guides *fg, const fu_tensor *image, fu_face_report *r);

#endif
