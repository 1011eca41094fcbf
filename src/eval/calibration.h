/* Same/different thresholds for the face descriptors, calibrated on LFW and kept with the
 * project in models/calibration.json (written by `faceup eval lfw --write-calibration`):
 *
 *   { "dlib-resnet": { "metric": "neg-euclidean", "threshold": -0.57, "lfw_accuracy": 0.99,
 *                      "lfw_std": 0.004, "pairs": 6000 }, ... }
 *
 * threshold is the mean of the ten LFW folds' thresholds for the metric's score (higher =
 * more alike): a pair is "same" when its score is above it. */
#ifndef FU_EVAL_CALIBRATION_H
#define FU_EVAL_CALIBRATION_H
#include <stddef.h>

typedef struct {
    char metric[32];        /* an eval/lfw_run.h metric name */
    double threshold;
    double lfw_accuracy, lfw_std;
    int pairs;              /* LFW pairs it was measured on */
} fu_calibration;

/* Default file: $FACEUP_CALIBRATION, else models/calibration.json beside the faceup binary's
 * folder (<dir of binary>/../models), else in the current folder. Writes into buf. */
const char *fu_calibration_default_path(char *buf, size_t cap);
/* The entry name of a model's descriptors: "dlib-resnet", or "dlib-resnet+mirror" for descriptors
 * averaged with their mirror image's (face/pipeline.h fu_face_net_set_mirror), whose scores and
 * so thresholds differ. Writes into buf; returns it. */
const char *fu_calibration_key(const char *model, int mirror, char *buf, size_t cap);
/* The entry for model. FU_OK, or FU_E_INPUT with a message (no file, no entry, bad JSON). */
int fu_calibration_read(const char *path, const char *model, fu_calibration *out);
/* Adds or replaces the entry for model, keeping the others; atomic write. */
int fu_calibration_write(const char *path, const char *model, const fu_calibration *cal);

#endif
