/* Photo -> landmarks -> dlib descriptor (see face_pipeline.h). */
#include "face_pipeline.h"
#include <string.h>
#include "core/error.h"
#include "face/align.h"
#include "face/models.h"
#include "faceup.h"
#include "io/image.h"

int fu_face_pipeline_open(fu_face_pipeline *p) {
    char buf[1024];
    memset(p, 0, sizeof *p);
    if (!(p->finder = fu_face_finder_load(1))) return fu_last_code();
    if (!fu_model_file(FU_DLIB_RESNET_MANIFEST, buf, sizeof buf) || !(p->net = fu_dlib_resnet_load(buf))) return fu_last_code();
    return FU_OK;
}

void fu_face_pipeline_close(fu_face_pipeline *p) {
    fu_face_finder_free(p->finder);
    fu_dlib_resnet_free(p->net);
    memset(p, 0, sizeof *p);
}

int fu_face_pipeline_landmarks(const fu_face_pipeline *p, const fu_tensor *img, const char *label, float lm[136]) {
    fu_face_found found;
    int rc = fu_face_find(p->finder, img, label, &found);
    if (rc == FU_OK) memcpy(lm, found.lm, sizeof found.lm);
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
