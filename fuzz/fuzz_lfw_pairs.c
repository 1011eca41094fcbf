/* libFuzzer target for the LFW pairs.txt parser (src/data/lfw.c) and the 10-fold evaluation
 * of whatever it accepts (scores derived from the input bytes). */
#include <stdint.h>
#include <stdlib.h>
#include "data/lfw.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fu_lfw_pairs p;
    if (fu_lfw_parse_pairs((const char *)data, size, "fuzz", &p) != 0) return 0;
    float *scores = malloc(sizeof(float) * (size_t)p.n);
    float *fpr = malloc(sizeof(float) * (size_t)(p.n + 1)), *tpr = malloc(sizeof(float) * (size_t)(p.n + 1));
    if (scores && fpr && tpr) {
        for (int i = 0; i < p.n; i++) scores[i] = (float)data[(size_t)i % size] / 255.0f;
        fu_lfw_result r;
        (void)fu_lfw_evaluate(&p, scores, &r);
        (void)fu_lfw_roc(&p, scores, fpr, tpr);
    }
    free(scores); free(fpr); free(tpr);
    fu_lfw_pairs_free(&p);
    return 0;
}
