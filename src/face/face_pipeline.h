/* Photo -> face: the chain detect (blazeface) -> 68 landmarks (dlib's shape predictor) ->
 * aligned crop -> dlib ResNet descriptor, as one small library API for the guides (reference
 * photo of --identity) and the heads' training data. The face used is fu_face_pick's choice
 * among detections with score >= FU_PIPELINE_MIN_SCORE (faceup align's default). */
#ifndef FU_FACE_PIPELINE_H
#define FU_FACE_PIPELINE_H
#include "core/tensor.h"
#include "face/detect.h"
#include "face/dlib_resnet.h"
#include "io/dlib_dat.h"

#define FU_PIPELINE_MIN_SCORE 0.7f
#define FU_PIPELINE_IOU 0.3f

typedef struct fu_face_pipeline {
    fu_face_detector *det;
    fu_shape_predictor *sp;
    fu_dlib_resnet *net;
} fu_face_pipeline;

/* Loads the three models from the model cache (face/models.h). FU_OK, or an error naming the
 * missing file (tools/fetch-models.sh fetches them). */
int fu_face_pipeline_open(fu_face_pipeline *p);
void fu_face_pipeline_close(fu_face_pipeline *p);

/* 68 landmarks (x, y per point, image pixels) of the picked face of img [1,3,H,W] in [0,1].
 * FU_E_INPUT "LABEL: no face found ..." when nothing is detected. */
int fu_face_pipeline_landmarks(const fu_face_pipeline *p, const fu_tensor *img, const char *label, float lm[136]);
/* The dlib descriptor [128] of the face with landmarks lm in img. */
int fu_face_pipeline_descriptor(const fu_face_pipeline *p, fu_tensor *img, const float lm[136], float desc[128]);
/* Both: the descriptor of the picked face of the image file at path. */
int fu_face_pipeline_embed_file(const fu_face_pipeline *p, const char *path, float desc[128]);

#endif
