/* Training of the extractor's heads (face/heads.h) on fu_heads_data (train/heads_data.h):
 *   race     UTKFace train descriptors -> 5 classes, class-balanced sampling (each sample:
 *            a class uniformly, then one of its images), cross-entropy
 *   attr     CelebA train descriptors -> 40 attributes, binary cross-entropy, shuffled epochs
 *   thumb16, thumb8  UTKFace train FFHQ thumbnails (mirrored at random) -> 5 classes, balanced
 * Adam; after every epoch the val split is scored (race: balanced accuracy = mean per-class
 * recall; attributes: mean accuracy over the 40) and the best epoch's weights are kept; a
 * head stops after `patience` epochs without improvement. The val split both stops training
 * and gives the reported figures (no third split is held out: the data sets are small).
 * frame.ffhq_landmarks = mean of the train images' FFHQ-frame landmarks. */
#ifndef FU_TRAIN_HEADS_H
#define FU_TRAIN_HEADS_H
#include <stdint.h>
#include "faceup.h"
#include "face/heads.h"
#include "train/heads_data.h"

#define FU_HEADS_PAIRS 20000

typedef struct fu_heads_train_config {
    int batch, max_epochs, patience;
    float lr, weight_decay;
    uint64_t seed;
} fu_heads_train_config;

/* batch 128, up to 300 epochs, patience 15, lr 1e-3, weight decay 1e-4, seed 1. */
fu_heads_train_config fu_heads_train_defaults(void);

/* Val figures of a race classifier. */
typedef struct fu_race_score {
    int n_train, n_val, epochs, best_epoch;
    int count[FU_RACE_CLASSES], correct[FU_RACE_CLASSES];   /* val, per true class */
    double accuracy, balanced;   /* overall; mean per-class recall */
} fu_race_score;

typedef struct fu_heads_report {
    fu_race_score race, thumb16, thumb8;
    int attr_n_train, attr_n_val, attr_epochs, attr_best_epoch;
    double attr_accuracy[FU_ATTRS], attr_mean;
    int n_frame;                 /* faces averaged into the frame */
    /* Identity calibration figures over the train descriptors (face_guides.h): their mean
     * norm and the median angle between two random ones (FU_HEADS_PAIRS pairs, fixed seed;
     * CelebA and UTKFace have no identity labels, so random pairs stand in for different
     * people). */
    double desc_norm_mean, pair_angle_median;
    double seconds;
} fu_heads_report;

/* Trains every head of h (fresh, from fu_heads_new) and sets its frame. progress (may be NULL)
 * counts the epochs of each head (stage: the head's name). FU_OK or an error (e.g. no usable images). */
int fu_heads_train(const fu_heads_data *d, const fu_heads_train_config *cfg, fu_heads *h, fu_heads_report *r,
                   fu_progress_fn progress, void *ctx);

/* One race classifier (5 classes) trained on given rows, the recipe above: balanced sampling,
 * cross-entropy, Adam, the epoch with the best balanced accuracy on `select` kept (early stop
 * after cfg->patience epochs without a gain). m: a fresh MLP whose input size is the rows'
 * width; flip_side (0 = none): rows are CHW thumbnails of that side, mirrored at random.
 * fit gets select's per-class figures at the kept epoch (n_val = select's rows) and the mean
 * train loss of the first and the last epoch. FU_OK or FU_E_INPUT (empty parts, a class without
 * train rows, a label out of range, sizes that do not fit). */
typedef struct fu_race_rows {
    int64_t n;
    const float *x;              /* n rows */
    const int *y;                /* n classes, 0..4 */
} fu_race_rows;

typedef struct fu_race_fit {
    fu_race_score select;
    double first_loss, last_loss;
} fu_race_fit;

int fu_race_mlp_train(fu_mlp *m, int flip_side, const fu_race_rows *train, const fu_race_rows *select, const fu_heads_train_config *cfg,
                      fu_race_fit *fit, fu_progress_fn progress, void *ctx);

#endif
