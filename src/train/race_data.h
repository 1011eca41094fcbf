/* The UTKFace faces of a packed face set (data/faces.h) as `faceup eval upscale` sees them,
 * for the two race classifiers it depends on: the thumbnail classifier behind `--race keep`
 * and the race judge (face/race_judge.h).
 *
 * Every UTKFace face of the pack with a race label, in pack order, with:
 *   - its thumbnails at 16x16 and 8x8: PULSE's bicubic downscale (fu_bicubic_downsample, by 4
 *     and 8) of the 64x64 pack image, rounded to 8 bits as eval upscale's thumb PNGs are;
 *   - optionally its faceres descriptor (1024 floats) on the whole 64x64 image resized to 224,
 *     the crop eval upscale's faceres judge uses (cached by pixel content, data/embed_cache.h).
 * Parts: VAL = the pack's val split (every 20th UTKFace file: the faces eval upscale uses, never
 * trained on by the generator or the heads); of the train split, every 10th face of each class
 * (in pack order) is DEV (model selection: early stopping), the rest TRAIN. So the val figures
 * are measured on faces that neither trained nor chose a model.
 * max_train_per_class (0 = all) keeps only the first N TRAIN faces of each class (the faceres
 * pass costs ~0.1 s per face); DEV and VAL are always complete. */
#ifndef FU_TRAIN_RACE_DATA_H
#define FU_TRAIN_RACE_DATA_H
#include <stdint.h>
#include "faceup.h"
#include "face/pipeline.h"
#include "data/faces.h"

#define FU_RD_CLASSES 5
#define FU_RD_THUMB16 (3 * 16 * 16)
#define FU_RD_THUMB8 (3 * 8 * 8)
#define FU_RD_FACERES 1024
#define FU_RD_CACHE_TAG "race-data-v1/faceres/whole64-to-224"

enum { FU_RD_TRAIN, FU_RD_DEV, FU_RD_VAL, FU_RD_N_PARTS };

typedef struct fu_race_data {
    int64_t n;
    int *race, *part;            /* per face: 0..4 (UTKFace's classes), FU_RD_TRAIN/DEV/VAL */
    int64_t *pack_index;         /* the face's index in the pack */
    float *thumb16, *thumb8;     /* n rows, CHW, [0,1] */
    float *faceres;              /* n rows, or NULL when not asked for */
    int64_t n_cached;            /* descriptors read from the cache */
} fu_race_data;

/* Builds the set. faceres (may be NULL: no descriptors) is the judge network; cache_path (may
 * be NULL) its descriptor cache. progress (may be NULL) counts the faces of the "faceres" pass.
 * FU_OK, FU_E_INPUT (a pack without UTKFace faces of every class in every part) or an error. */
int fu_race_data_build(const fu_faces *pack, int max_train_per_class, fu_face_net *faceres, const char *cache_path,
                       fu_race_data *out, fu_progress_fn progress, void *ctx);
void fu_race_data_free(fu_race_data *d);

/* Per part and class counts. */
void fu_race_data_counts(const fu_race_data *d, int64_t counts[FU_RD_N_PARTS][FU_RD_CLASSES]);

/* faceres on a 64x64 image [1,3,S,S] in [0,1]: the whole image resized to the network's input
 * (half-pixel centres), as eval upscale's judges crop. out: FU_RD_FACERES floats. */
int fu_race_data_faceres(fu_face_net *faceres, fu_tensor *img, float *out);

#endif
