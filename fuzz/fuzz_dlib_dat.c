/* libFuzzer target: dlib shape_predictor parsing; a model that parses is run on a small
 * synthetic image with a box partly outside it (the evaluation trusts the parser's checks). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include "face/landmarks.h"
#include "io/dlib_dat.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fu_shape_predictor *sp = fu_dlib_parse_shape_predictor(data, size, "fuzz");
    if (sp && sp->n_parts <= 1000) {
        uint8_t pix[16 * 12];
        for (int i = 0; i < 16 * 12; i++) pix[i] = (uint8_t)(i * 7);
        fu_gray_image img = {16, 12, pix};
        float *parts = malloc((size_t)sp->n_parts * 2 * sizeof(float));
        if (parts) fu_shape_predict(sp, &img, (fu_box){-3, 2, 14, 15}, parts);
        free(parts);
    }
    fu_shape_predictor_free(sp);
    return 0;
}
