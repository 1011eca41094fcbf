/* The race judge of `faceup eval upscale`: an MLP on human-models' faceres descriptor, a network
 * the search never uses (the search guides use dlib's ResNet and faceup-heads), so the judged
 * race of a result is independent of what the search optimised. Trained by
 * `faceup train race-judge` on UTKFace train faces of the generator's pack (train/race_data.h),
 * on the crop eval upscale gives faceres: the whole 64x64 image in the generator's FFHQ frame
 * resized to 224.
 *
 * File (models/faceup-race-judge.safetensors):
 *   judge.input_mean, judge.input_scale  [1024]   x = (descriptor - mean) * scale
 *   judge.{0,1}.{weight,bias}                     MLP 1024 -> 256 -> 5 (linear, ReLU, linear),
 *                                                 UTKFace's classes White .. Others
 * The loader checks every tensor's presence, shape and finiteness and that every scale is > 0. */
#ifndef FU_FACE_RACE_JUDGE_H
#define FU_FACE_RACE_JUDGE_H
#include <stdint.h>
#include "face/heads.h"

#define FU_RACE_JUDGE_IN 1024
#define FU_RACE_JUDGE_HIDDEN 256
#define FU_RACE_JUDGE_DEFAULT "models/faceup-race-judge.safetensors"

typedef struct fu_race_judge {
    fu_mlp mlp;
    float mean[FU_RACE_JUDGE_IN], scale[FU_RACE_JUDGE_IN];
} fu_race_judge;

/* Fresh MLP (PyTorch's Linear initialisation from seed), mean 0 and scale 1. NULL when out of
 * memory. */
fu_race_judge *fu_race_judge_new(uint64_t seed);
/* NULL with a one-line message naming the file and the problem. */
fu_race_judge *fu_race_judge_load(const char *path);
/* Atomic; string metadata pairs (may be NULL / 0, at most 8). */
int fu_race_judge_save(const fu_race_judge *j, const char *path, const char *const *meta_kv, int n_meta);
void fu_race_judge_free(fu_race_judge *j);

/* gear, the other race judge (human-models), was trained on UTKFace's 200x200 chips and is only
 * decent on a whole chip resized to its input (bench/RESULTS.md); the chip sits at this box
 * {left, top, right, bottom} of the generator's FFHQ frame, as fractions of the image (mean over
 * 98 UTKFace val faces, std 0.08-0.10 per side). */
extern const float fu_gear_utkface_box[4];
/* theta (network input pixel -> image pixel, fu_affine_warp's) that resizes the box of an
 * image [N,3,H,W] to size x size (half-pixel centres). */
void fu_judge_box_theta(const int64_t *img_shape, const float box[4], int size, double theta[6]);

/* desc -> the MLP's input row. */
void fu_race_judge_input(const fu_race_judge *j, const float *desc, float *x);
/* Class probabilities of one faceres descriptor; returns the most likely class, -1 with a
 * message on failure. */
int fu_race_judge_classify(const fu_race_judge *j, const float *desc, float probs[FU_RACE_CLASSES]);

#endif
