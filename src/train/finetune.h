/* Fine-tune of the identity backbone into faceup's augmented extractor (face/face_extractor.h),
 * the paper's feature extractor at this machine's scale, on the cached data of
 * train/finetune_data.h.
 *
 * Start: the dlib ResNet with face-api's weights (all of them trainable), the race and
 * attribute MLPs of the heads file (faceup-heads, trained on the frozen descriptor), the
 * comparer at face_guides.h's calibration (t = 0.4165 rad, k = 30.6).
 *
 * Batch norm: dlib's network has no batch norm at inference; its "affine" layers are the
 * trained batch norms folded into a fixed per-channel y = x * scale + shift. They are trained
 * here as plain per-channel scale/shift parameters (no batch statistics are computed or used),
 * so training and inference run the same function.
 *
 * One step (weights w_* from the config; a term with weight 0 is skipped, and so is its
 * network pass):
 *   batch   `batch` UTKFace train chips (class-balanced: a race uniformly, then a face) and
 *           `batch` CelebA train chips -> descriptors e
 *   retain  identity retention: mean over the 2*batch faces of |e - e0|^2, e0 the original
 *           network's descriptor of the same chip (cached)
 *   race    cross-entropy of race(e) on the UTKFace half
 *   attr    binary cross-entropy of attr(e) on the CelebA half (40 attributes)
 *   pair    the comparer on `pairs` train faces that have a look-alike: a = the real face's
 *           64x64 FFHQ crop, v = another view of it (mirrored, each colour channel scaled by a
 *           factor in [0.9, 1.1]; there is no second photo of these people), l = faceup's
 *           look-alike of its 16x16 thumbnail (same 64x64 size). Every image goes through the
 *           guides' fixed FFHQ -> dlib chip warp (search/face_guides.h), so the comparer sees
 *           what the upscaler's identity term sees. logit = k (t - angle), with t, k learnt;
 *           binary cross-entropy with (a, v) = same, (a, l) = different
 *   arcface (only with identity data, --ids) ArcFace margin loss (s, m) on `id_batch`
 *           identity-labelled chips with a learnt class matrix; an identity folder that holds
 *           LFW people or images is refused (train/never_lfw.h)
 * loss = sum of w * term; Adam on three groups: backbone (lr), heads + ArcFace matrix
 * (head_lr), comparer (FU_FINETUNE_COMPARER_LR). The sampling draws from one RNG whose state
 * the checkpoint keeps, so --resume continues the same run exactly.
 *
 * Outputs: cfg->out (the extractor, backbone F16) at the end; cfg->out + ".ckpt.safetensors"
 * (F32, optimiser and RNG state) every checkpoint_every steps and at the end. */
#ifndef FU_TRAIN_FINETUNE_H
#define FU_TRAIN_FINETUNE_H
#include <stdint.h>
#include "faceup.h"
#include "face/face_extractor.h"
#include "train/finetune_data.h"

#define FU_FINETUNE_COMPARER_LR 1e-2f

typedef struct fu_finetune_config {
    int64_t steps;
    int batch, pairs, id_batch;
    float lr, head_lr;
    float w_retain, w_race, w_attr, w_pair, w_arcface;
    float arcface_s, arcface_m;
    uint64_t seed;
    int64_t checkpoint_every;
    const char *out;           /* the extractor file */
    const char *heads;         /* the heads file to start from */
    const char *ids;           /* folder per identity (train/face_data.h), or NULL */
    const char *lfw;           /* LFW folder that ids may not draw on (train/never_lfw.h); NULL: default */
    int resume;
} fu_finetune_config;

/* The measured run's settings (bench/RESULTS.md): 600 steps, batch 8, 4 pairs, id batch 8,
 * lr 1e-6 (chosen on a val-scored pilot), head lr 1e-4, weights retain 10, race 1, attr 1,
 * pair 1, arcface 1, ArcFace s 30 m 0.3, seed 1, checkpoint every 100. */
fu_finetune_config fu_finetune_defaults(void);

/* Mean losses (unweighted) over a window of steps. */
typedef struct fu_finetune_losses {
    double retain, race, attr, pair, arcface;
    int steps;
} fu_finetune_losses;

typedef struct fu_finetune_report {
    int64_t steps_run, first_step;
    fu_finetune_losses first, last;   /* the first and the last FU_FINETUNE_WINDOW steps of this run
                                       * (a quarter of the run when that is fewer) */
    int n_ids, n_id_faces;
    double seconds;
} fu_finetune_report;

#define FU_FINETUNE_WINDOW 50

/* Runs (or resumes) the fine-tune. progress (may be NULL) gets (step, steps, the step's
 * losses). FU_OK or an error. */
int fu_finetune_run(const fu_xdata *d, const fu_finetune_config *cfg, fu_finetune_report *r,
                    void (*progress)(void *ctx, int64_t step, int64_t steps, const fu_finetune_losses *l), void *ctx);

/* The starting point (face-api weights, the heads of heads_path, the guides' comparer). */
fu_face_extractor *fu_finetune_initial(const char *heads_path);

/* The comparer's logits k (t - angle(a_i, b_i)) for rows of a, b [N, D]; comparer [2] = (t, k).
 * The angle's cosine is clamped to [-1 + 1e-6, 1 - 1e-6] (acos has an infinite slope at +-1). */
fu_tensor *fu_comparer_logits(fu_graph *g, fu_tensor *a, fu_tensor *b, fu_tensor *comparer);

/* ------------------------------------------------------------------ scores */

typedef struct fu_extractor_scores {
    int race_count[5], race_correct[5];
    double race_accuracy, race_balanced;
    int attr_n;
    double attr_accuracy[40], attr_mean;
    int n_faces;
    double drift_mean;                 /* mean |e - e0| (e0: the original network's descriptor) */
    int pairs;                         /* faces with a look-alike */
    int same_right, diff_right;        /* comparer decisions: (a, v) same, (a, l) different */
    double separation;                 /* (same_right + diff_right) / (2 pairs) */
    double angle_same, angle_diff;     /* mean angles, radians */
} fu_extractor_scores;

/* Descriptors [n, 128] of x's backbone for the chips of faces idx[0..n) of d, in batches. */
int fu_extractor_describe(fu_face_extractor *x, const fu_xdata *d, const int64_t *idx, int64_t n, float *out,
                          fu_progress_fn progress, void *ctx);

/* Scores x on the faces of split (FU_XSPLIT_VAL or _TEST) of d: race on UTKFace, attributes on
 * CelebA, descriptor drift, look-alike separation (the view v is made with a fixed seed).
 * FU_OK or an error. */
int fu_extractor_score(fu_face_extractor *x, const fu_xdata *d, int split, fu_extractor_scores *s, fu_progress_fn progress,
                       void *ctx);

#endif
