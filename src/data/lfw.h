/* LFW verification: the standard 10-fold protocol of pairs.txt.
 *
 * pairs.txt: a first line "FOLDS N", then FOLDS blocks of N same-person pairs ("name i j") and
 * N different-person pairs ("name1 i name2 j"); image i of a person is
 * <dir>/images/<name>/<name>_<i as %04d>.jpg.
 *
 * Scoring: a pair's score is a similarity (higher = more alike). For each fold k, the threshold
 * that maximises accuracy on the other folds (candidates: midpoints between consecutive sorted
 * scores of those folds) decides fold k's pairs; the reported accuracy is the mean (and sample
 * standard deviation) of the ten fold accuracies. */
#ifndef FU_DATA_LFW_H
#define FU_DATA_LFW_H
#include <stddef.h>

#define FU_LFW_MAX_NAME 96

typedef struct fu_lfw_pair {
    char name[2][FU_LFW_MAX_NAME];
    int index[2];       /* 1-based image numbers as in the file */
    int same;           /* 1 for a same-person pair */
    int fold;           /* 0-based */
} fu_lfw_pair;

typedef struct fu_lfw_pairs {
    int n_folds, per_fold;  /* per_fold: same pairs per fold (= different pairs per fold) */
    int n;                  /* n_folds * 2 * per_fold */
    fu_lfw_pair *pairs;
} fu_lfw_pairs;

/* Parses pairs.txt text (strict: counts, fields, indices >= 1, names of sane characters).
 * Returns FU_OK or FU_E_INPUT with a message naming label and the line. */
int fu_lfw_parse_pairs(const char *text, size_t len, const char *label, fu_lfw_pairs *out);
/* Reads <dir>/pairs.txt. */
int fu_lfw_load_pairs(const char *dir, fu_lfw_pairs *out);
void fu_lfw_pairs_free(fu_lfw_pairs *p);
/* Writes the path of image `index` of `name` under dir into buf (FU_E_INPUT when it does not fit). */
int fu_lfw_image_path(const char *dir, const char *name, int index, char *buf, size_t cap);

typedef struct fu_lfw_result {
    int n_folds;
    double fold_accuracy[16];
    double fold_threshold[16];
    double mean, std;       /* of the fold accuracies */
    double auc;             /* area under the ROC of all pairs together */
} fu_lfw_result;

/* Runs the protocol on scores[i] of pairs->pairs[i]. FU_OK or FU_E_INPUT (NaN score, bad folds). */
int fu_lfw_evaluate(const fu_lfw_pairs *pairs, const float *scores, fu_lfw_result *res);

/* ROC of all pairs: for thresholds from high to low, false- and true-positive rates
 * (n+1 points from (0,0) to (1,1), caller-allocated arrays of pairs->n + 1). Returns the count. */
int fu_lfw_roc(const fu_lfw_pairs *pairs, const float *scores, float *fpr, float *tpr);

#endif
