/* Photo -> face -> dlib descriptor, for the guides (reference photo of --identity) and the heads'
 * training data: face/pipeline.h's finder (blazeface, score >= 0.7, NMS IoU 0.3, fu_face_pick's
 * choice, then dlib's 68 landmarks), then the dlib chip and the engine's dlib ResNet (the guides
 * need that network object itself, differentiable, so this keeps one). */
#ifndef FU_FACE_FACE_PIPELINE_H
#define FU_FACE_FACE_PIPELINE_H
#include "core/tensor.h"
#include "face/dlib_resnet.h"
#include "face/pipeline.h"

typedef struct fu_face_pipeline {
    fu_face_finder *finder;
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
