/* The public fu_image (include/faceup.h) inside the library: a [1,3,H,W] tensor in [0,1]. */
#ifndef FU_IO_IMAGE_API_H
#define FU_IO_IMAGE_API_H
#include "faceup.h"
#include "core/tensor.h"

/* The image's pixels, [1,3,H,W] in [0,1]; the image keeps them. */
const fu_tensor *fu_image_tensor(const fu_image *img);
/* Wraps a [1,3,H,W] leaf tensor, which the image then owns (freed with it, or here on failure).
 * FU_OK or FU_E_INTERNAL. */
int fu_image_adopt(fu_tensor *t, fu_image **out);

#endif
