/* Photo -> landmarks -> dlib descriptor (see face_pipeline.h). */
#include "face_pipeline.h"
#include <string.h>
#include "core/error.h"
#include "face/align.h"
#include "face/landmarks.h"
#include "face/models.h"
#include "faceup.h"
#include "io/image.h"

int fu_face_pipeline_open(fu_face_pipeline *p) {
    char buf[1024];
    memset(p, 0, sizeof *p);
    if (!(p->det = fu_face_detector_load(fu_model_path(FU_BLAZEFACE_MODEL, buf, sizeof buf)))) return fu_last_code();
    if (!(p->sp = fu_dlib_load_shape_predictor(fu_model_path(FU_DLIB_LANDMARKS_MODEL, buf, sizeof buf)))) return fu_last_code();
    if (p->sp->n_parts != 68) return fu_fail(FU_E_INPUT, "%s: a %d-point shape predictor; 68 points needed", buf, p->sp->n_parts);
    if (!(p->net = fu_dlib_resnet_load(fu_model_path(FU_DLIB_RESNET_MANIFEST, buf, sizeof buf)))) return fu_last_code();
    return FU_OK;
}

void fu_face_pipeline_close(fu_face_pipeline *p) {
    fu_face_detector_free(p->det);
    fu_shape_predictor_free(p->sp);
    fu_dlib_resnet_free(p->net);
    memset(p, 0, sizeof *p);
}

int fu_face_pipeline_landmarks(const fu_face_pipeline *p, const fu_tensor *img, const char *label, float lm[136]) {
    fu_face_det found[16];
    int W = (int)img->shape[3], H = (int)img->shape[2];
    int n = fu_face_detect(p->det, img, FU_PIPELINE_MIN_SCORE, FU_PIPELINE_IOU, found, 16);
    if (n < 0) return fu_last_code() ? fu_last_code() : FU_E_INTERNAL;
    if (n == 0) return fu_fail(FU_E_INPUT, "%s: no face found (detection score below %.2f)", label, (double)FU_PIPELINE_MIN_SCORE);
    fu_box box = fu_face_box_for_landmarks(&found[fu_face_pick(found, n, W, H)]);
    fu_gray_image *gray = fu_gray_from_rgb(img);
    int rc = gray ? fu_shape_predict(p->sp, gray, box, lm) : fu_last_code();
    fu_gray_free(gray);
    return rc;
}

int fu_face_pipeline_descriptor(const fu_face_pipeline *p, fu_tensor *img, const float lm[136], float desc[128]) {
    fu_graph *g = fu_graph_new();
    if (!g) return FU_E_INTERNAL;
    fu_tensor *chip = fu_align_face(g, img, lm, FU_ALIGN_DLIB, FU_DLIB_RESNET_SIZE, NULL);
    fu_tensor *d = chip ? fu_dlib_resnet_forward(p->net, g, chip) : NULL;
    if (d) memcpy(desc, d->data, FU_DLIB_RESNET_DIM * sizeof *desc);
    int rc = d ? FU_OK : (fu_last_code() ? fu_last_code() : FU_E_INTERNAL);
    fu_graph_free(g);
    return rc;
}

int fu_face_pipeline_embed_file(const fu_face_pipeline *p, const char *path, float desc[128]) {
    fu_tensor *img = fu_image_load(path);
    if (!img) return fu_last_code() ? fu_last_code() : FU_E_INPUT;
    float lm[136];
    int rc = fu_face_pipeline_landmarks(p, img, path, lm);
    if (rc == FU_OK) rc = fu_face_pipeline_descriptor(p, img, lm, desc);
    fu_tensor_free(img);
    return rc;
}
