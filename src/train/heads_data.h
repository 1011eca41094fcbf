/* Training data of the extractor's heads (face/heads.h): for every CelebA and UTKFace image of
 * the shared data folder, in fu_faces_list's order and with its split (data/faces.h: CelebA
 * 000001-009000 + 19/20 of UTKFace train, the rest val; LFW is not used):
 *   - the dlib descriptor: detect -> 68 landmarks -> dlib chip 150 -> dlib ResNet
 *     (face/face_pipeline.h);
 *   - FFHQ-aligned thumbnails: the FFHQ crop (face/align.h) warped to 128 x 128, then
 *     bicubic-downscaled (PULSE's downsampler, as the search makes thumbnails) to 16 and 8;
 *   - the 68 landmarks in the FFHQ frame, normalised so that (0,0) and (1,1) are the crop's
 *     outer corners (pixel centre (u, v) of an S-crop is ((u + 0.5)/S, (v + 0.5)/S)).
 * Images without a detected face are kept with ok = 0 (and counted).
 *
 * Every record is cached (data/embed_cache.h, keyed by the file's bytes) so a rerun skips the
 * networks; a "no face" result is cached too. */
#ifndef FU_TRAIN_HEADS_DATA_H
#define FU_TRAIN_HEADS_DATA_H
#include <stdint.h>
#include "faceup.h"
#include "data/faces.h"

#define FU_HD_DESC 128
#define FU_HD_THUMB16 (3 * 16 * 16)
#define FU_HD_THUMB8 (3 * 8 * 8)
#define FU_HD_LANDMARKS 136
#define FU_HD_DIM (FU_HD_DESC + FU_HD_THUMB16 + FU_HD_THUMB8 + FU_HD_LANDMARKS)
#define FU_HD_CACHE_TAG "heads-v2/blazeface.0.7-kpbox+dlib68/dlib150chip68-resnet+ffhq128-bicubic16,8+ffhq-landmarks"

typedef struct fu_heads_sample {
    fu_face_label label;
    int ok;                                  /* a face was found */
    float desc[FU_HD_DESC];
    float thumb16[FU_HD_THUMB16], thumb8[FU_HD_THUMB8];   /* CHW, values in [0,1] (unclamped) */
    float landmarks[FU_HD_LANDMARKS];
} fu_heads_sample;

typedef struct fu_heads_data {
    int64_t n;
    fu_heads_sample *s;
    int64_t n_cached, n_no_face;
    double seconds;                          /* wall time of the extraction */
} fu_heads_data;

/* Extracts (or reads from the cache file cache_path, which it then updates) every CelebA and
 * UTKFace image of data_dir. progress (may be NULL) counts the "images". FU_OK or an error. */
int fu_heads_data_build(const char *data_dir, const char *cache_path, fu_heads_data *out,
                        fu_progress_fn progress, void *ctx);
void fu_heads_data_free(fu_heads_data *d);

#endif
