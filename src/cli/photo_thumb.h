/* upscale's photo inputs: a photo (an input larger than any thumbnail the generator takes, or any
 * input with --from-photo) becomes the thumbnail `faceup align PHOTO --size 16*SIDE --downscale 16`
 * would write: blazeface, dlib's 68 landmarks, the FFHQ crop, PULSE's bicubic downscale. */
#ifndef FU_CLI_PHOTO_THUMB_H
#define FU_CLI_PHOTO_THUMB_H
#include "core/tensor.h"
#include "face/pipeline.h"

enum { PHOTO_ALIGN_FACTOR = 16 };

/* The thumbnail side a photo becomes for a generator of this resolution: a quarter of it, at
 * most 32 (the paper's thumbnails): 16 for the 64 px VAE, 32 for the 128 px sharp generator and
 * for StyleGANs. */
static inline int photo_thumb_side(int resolution) { return resolution / 4 < 32 ? resolution / 4 : 32; }

typedef struct photo_thumbs {
    fu_face_finder *finder;   /* loaded with the first photo */
} photo_thumbs;

/* The side x side thumbnail of the face in photo; label names it in messages. NULL with a
 * one-line error (no face, missing model cache, ...). */
fu_tensor *photo_to_thumbnail(photo_thumbs *p, fu_tensor *photo, const char *label, int side);
void photo_thumbs_close(photo_thumbs *p);

#endif
