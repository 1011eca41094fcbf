/* libFuzzer target for the calibration reader (src/eval/calibration.c): arbitrary bytes as
 * calibration.json, read for two models. An entry that reads must be usable (finite numbers)
 * and survive fu_calibration_write (which keeps the file's other entries) and a second read
 * unchanged (to cJSON's printing precision). */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "eval/calibration.h"
#include "faceup.h"
#include "input_file.h"

static const char *const models[2] = {"dlib-resnet", "faceres"};

/* cJSON prints a number with 15 significant digits when they read back within DBL_EPSILON
 * (relative) of it, so a written number may come back one unit in the last place off. */
static int close_to(double a, double b) { return a == b || fabs(a - b) <= 2 * DBL_EPSILON * fmax(fabs(a), fabs(b)); }

static int same_entry(const fu_calibration *a, const fu_calibration *b) {
    return !strcmp(a->metric, b->metric) && close_to(a->threshold, b->threshold) && a->pairs == b->pairs &&
           close_to(a->lfw_accuracy, b->lfw_accuracy) && close_to(a->lfw_std, b->lfw_std);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write_file(data, size);
    for (int m = 0; m < 2; m++) {
        fu_calibration cal, back;
        if (fu_calibration_read(path, models[m], &cal) != FU_OK) continue;
        if (!isfinite(cal.threshold) || !isfinite(cal.lfw_accuracy) || !isfinite(cal.lfw_std) || !memchr(cal.metric, 0, sizeof cal.metric))
            abort();
        if (fu_calibration_write(path, "fuzz-model", &cal) != FU_OK) abort();
        if (fu_calibration_read(path, "fuzz-model", &back) != FU_OK || !same_entry(&cal, &back)) abort();
        if (fu_calibration_read(path, models[m], &back) != FU_OK || !same_entry(&cal, &back)) abort();
        path = fuzz_write_file(data, size);
    }
    return 0;
}
