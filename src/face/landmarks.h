/* Face landmarks with dlib's shape predictor (an ensemble of regression trees, Kazemi and
 * Sullivan 2014), evaluated exactly as dlib 19.24 does:
 *
 *   shape = initial_shape (box-normalised: (0,0) = box top-left, (1,1) = bottom-right)
 *   for each cascade:
 *     M = 2x2 part of the least-squares similarity from initial_shape to shape
 *     feature i = gray(round(box_to_image(M * delta_i + shape[anchor_i])))  (0 outside)
 *     for each tree: walk splits (feature[idx1] - feature[idx2] > thresh: left, else right)
 *                    and add the leaf's shape increment
 *   parts = box_to_image(shape),  box_to_image(u, v) = (left + u*(right-left), top + v*(bottom-top))
 *
 * The features are pixel intensities of an 8-bit grayscale image, gray = (R+G+B)/3 with
 * integer division, as dlib converts RGB; rounding is floor(x + 0.5), as dlib converts a
 * point to integer pixels. dlib returns integer parts; these are the unrounded values.
 *
 * dlib's predictor was trained on its HOG face detector's boxes; fu_box_blazeface_to_dlib
 * maps a blazeface box to that convention. */
#ifndef FU_LANDMARKS_H
#define FU_LANDMARKS_H
#include <stdint.h>
#include "core/tensor.h"
#include "io/dlib_dat.h"

typedef struct { int width, height; uint8_t *pix; } fu_gray_image;

/* Box corners in pixel-index coordinates; right/bottom are the last column/row (dlib's
 * inclusive convention), so a w x h box has right - left = w - 1. */
typedef struct { float left, top, right, bottom; } fu_box;

/* 8-bit gray from an image tensor [1,3,H,W] or [3,H,W] with values in [0,1]: each channel
 * is rounded to 8 bits, then (R+G+B)/3. NULL with a message on a bad shape or no memory. */
fu_gray_image *fu_gray_from_rgb(const fu_tensor *img);
void fu_gray_free(fu_gray_image *g);

/* Runs the predictor in box; parts gets 2 * sp->n_parts floats (x, y per part, image pixel
 * coordinates). FU_OK, or FU_E_INPUT for an empty or non-finite box. */
int fu_shape_predict(const fu_shape_predictor *sp, const fu_gray_image *img, fu_box box, float *parts);

#endif
