/* libFuzzer target: PNG/JPEG decoding (with EXIF orientation) and the EXIF parser on raw bytes. */
#include <stddef.h>
#include <stdint.h>
#include "io/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* A lower pixel limit keeps each run within libFuzzer's memory and time limits; the limit
     * logic itself is the same at any value. */
    fu_image_set_max_pixels((int64_t)1 << 20);
    fu_tensor_free(fu_image_decode(data, size, "fuzz"));
    (void)fu_exif_orientation(data, size);
    return 0;
}
