/* The race head's operating point: per-class offsets b added to its logits (heads.h,
 * race.logit_bias), fitted after training on a validation split so that every class beats a
 * reference recall (the anchors: the npm gear model's per-class recalls on UTKFace).
 *
 * Objective, maximised over b (only differences between classes matter; the fit ends with
 * b[0] = 0):
 *   J(b) = min over classes c of (recall_c(b) - anchor_c)
 * ties broken by the next worst margin and so on (leximin), then by the balanced recall (mean
 * over classes). recall_c(b) is the fraction of class-c faces whose argmax of (logits + b) is c.
 * Coordinate search over all five offsets (moving b[0] moves the other four together, which a
 * search over four alone cannot do in one step): each offset in turn is set to the best value
 * on a grid over [-FU_RACE_OFFSET_RANGE, +FU_RACE_OFFSET_RANGE] (step FU_RACE_OFFSET_STEP), the
 * centre of the widest run of equally good grid values (recall is a step function of b; the
 * centre keeps a margin to both edges), until a full round changes nothing or
 * FU_RACE_OFFSET_ROUNDS rounds have run. A class absent from the data is ignored. */
#ifndef FU_TRAIN_RACE_OFFSETS_H
#define FU_TRAIN_RACE_OFFSETS_H
#include <stdint.h>
#include "faceup.h"
#include "face/heads.h"
#include "train/train_heads.h"

#define FU_RACE_OFFSET_RANGE 6.0f
#define FU_RACE_OFFSET_STEP 0.05f
#define FU_RACE_OFFSET_ROUNDS 20

/* gear's per-class recalls on UTKFace (White, Black, Asian, Indian, Others), fractions. */
extern const double fu_race_gear_anchor[FU_RACE_CLASSES];

typedef struct fu_race_recall {
    int count[FU_RACE_CLASSES], correct[FU_RACE_CLASSES];
    double recall[FU_RACE_CLASSES];   /* 0 for an absent class */
    double balanced;                  /* mean recall over the classes present */
    double worst_margin;              /* min over present classes of recall - anchor */
} fu_race_recall;

/* Recalls of logits [n, 5] + bias against labels (0..4; other labels are skipped). */
void fu_race_recall_of(const float *logits, const int *labels, int64_t n, const float bias[FU_RACE_CLASSES],
                       const double anchor[FU_RACE_CLASSES], fu_race_recall *out);

/* Fits bias (see above) starting from zero. FU_OK, or FU_E_INPUT when no labelled row is given. */
int fu_race_offsets_fit(const float *logits, const int *labels, int64_t n, const double anchor[FU_RACE_CLASSES],
                        float bias[FU_RACE_CLASSES]);

/* The UTKFace faces of `split` of a fine-tune data file (train/finetune_data.h) and their
 * descriptors: from x's backbone, or, with x NULL, the data file's cached descriptors of
 * face-api's network (what a heads file's MLPs were trained on). Allocates *desc [n, 128] and
 * *labels [n] (free both; n may be 0). progress (may be NULL) follows the backbone's pass.
 * FU_OK or an error. */
struct fu_xdata;
struct fu_face_extractor;
int fu_race_split_descriptors(const struct fu_xdata *d, struct fu_face_extractor *x, int split, float **desc, int **labels,
                              int64_t *n, fu_progress_fn progress, void *ctx);

/* A fresh MLP of `shape` (initialised from cfg->seed) trained by fu_race_mlp_train
 * (train/train_heads.h) on train, its epoch chosen on select, into *m (release it with
 * fu_mlp_release). On an error nothing is left allocated in *m. */
int fu_race_mlp_fresh(const fu_mlp_shape *shape, const fu_race_rows *train, const fu_race_rows *select,
                      const fu_heads_train_config *cfg, fu_mlp *m, fu_race_fit *fit);

/* Out-of-fold logits, for fitting offsets on many faces the classifier has not seen: the j-th
 * row of each class belongs to fold j % folds (stratified); for each fold a fresh MLP
 * (fu_race_mlp_fresh, seeded cfg->seed + fold) is trained on the other folds' rows, its epoch
 * chosen on `select`, and its logits of the fold's rows go to oof [rows->n, 5]. An offset fitted
 * on these describes a head trained by the same recipe on all rows. FU_OK or an error (folds < 2,
 * a class with fewer rows than folds, a label out of range). */
int fu_race_oof_logits(const fu_race_rows *rows, const fu_race_rows *select, int folds, const fu_mlp_shape *shape,
                       const fu_heads_train_config *cfg, float *oof);

#endif
