/* The public face functions of include/faceup.h on top of the face pipeline (face/pipeline.h). */
#include "faceup.h"
#include "core/error.h"
#include "core/ops.h"
#include "face/align.h"
#include "face/analyze.h"
#include "face/pipeline.h"
#include "io/image_api.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The FFHQ crop a thumbnail is downscaled from (as `faceup align --size 256 --downscale F`). */
#define THUMBNAIL_CROP 256

_Static_assert(FU_FACE_RACES == FU_N_RACES && FU_FACE_EMOTIONS == FU_N_EMOTIONS, "faceup.h and face/analyze.h disagree");

struct fu_face_kit {
    fu_face_finder *finder;
    fu_face_net *dlib;
    fu_face_net *gear, *emotion;   /* loaded by the first fu_face_analyze */
};

void fu_face_kit_close(fu_face_kit *kit) {
    if (!kit) return;
    fu_face_finder_free(kit->finder);
    fu_face_net_free(kit->dlib);
    fu_face_net_free(kit->gear);
    fu_face_net_free(kit->emotion);
    free(kit);
}

int fu_face_kit_open(fu_face_kit **out) {
    *out = NULL;
    fu_face_kit *kit = fu_calloc(1, sizeof *kit);
    if (!kit) return FU_E_INTERNAL;
    kit->finder = fu_face_finder_load(1);
    kit->dlib = kit->finder ? fu_face_net_load(FU_NET_DLIB_RESNET) : NULL;
    if (!kit->dlib) {
        int rc = fu_failure_code();
        fu_face_kit_close(kit);
        return rc;
    }
    *out = kit;
    return FU_OK;
}

/* The graph ops take non-const inputs; the photo's pixels are only read. */
static fu_tensor *pixels_of(const fu_image *photo) { return (fu_tensor *)fu_image_tensor(photo); }

int fu_face_thumbnail(fu_face_kit *kit, const fu_image *photo, int size, fu_image **out) {
    *out = NULL;
    if (!kit || !photo) return fu_fail(FU_E_INPUT, "fu_face_thumbnail: kit and photo are needed");
    if (size < 4 || size > THUMBNAIL_CROP || (size & (size - 1)))
        return fu_fail(FU_E_INPUT, "fu_face_thumbnail: size must be a power of two from 4 to %d, got %d", THUMBNAIL_CROP, size);
    fu_face_found face;
    int rc = fu_face_find(kit->finder, fu_image_tensor(photo), "photo", &face);
    if (rc != FU_OK) return rc;
    fu_graph *g = fu_graph_new();
    if (!g) return FU_E_INTERNAL;
    fu_tensor *crop = fu_align_face(g, pixels_of(photo), face.lm, FU_ALIGN_FFHQ, THUMBNAIL_CROP, NULL);
    if (crop && size < THUMBNAIL_CROP) crop = fu_bicubic_downsample(g, crop, THUMBNAIL_CROP / size);
    fu_tensor *thumb = crop ? fu_tensor_clone(crop) : NULL;
    fu_graph_free(g);
    return thumb ? fu_image_adopt(thumb, out) : fu_failure_code();
}

/* Runs net on the crop it needs of the found face of photo; out receives its outputs. */
static int run_on_face(fu_face_net *net, const fu_image *photo, const fu_face_found *face, float *out) {
    const fu_tensor *t = fu_image_tensor(photo);
    double theta[6];
    int rc = fu_face_net_theta(net, face, (int)t->shape[3], (int)t->shape[2], theta);
    fu_tensor *images[1] = {pixels_of(photo)};
    return rc == FU_OK ? fu_face_net_run(net, images, (const double (*)[6])theta, 1, out) : rc;
}

int fu_face_describe(fu_face_kit *kit, const fu_image *photo, float descriptor[FU_DESCRIPTOR_DIM]) {
    if (!kit || !photo || !descriptor) return fu_fail(FU_E_INPUT, "fu_face_describe: kit, photo and descriptor are needed");
    fu_face_found face;
    int rc = fu_face_find(kit->finder, fu_image_tensor(photo), "photo", &face);
    return rc == FU_OK ? run_on_face(kit->dlib, photo, &face, descriptor) : rc;
}

int fu_face_analyze(fu_face_kit *kit, const fu_image *photo, fu_face_analysis *out) {
    if (!kit || !photo || !out) return fu_fail(FU_E_INPUT, "fu_face_analyze: kit, photo and out are needed");
    if (!kit->gear && !(kit->gear = fu_face_net_load(FU_NET_GEAR))) return fu_failure_code();
    if (!kit->emotion && !(kit->emotion = fu_face_net_load(FU_NET_EMOTION))) return fu_failure_code();
    fu_face_found face;
    float gear[FU_GEAR_DIM], emotion[FU_EMOTION_DIM];
    int rc = fu_face_find(kit->finder, fu_image_tensor(photo), "photo", &face);
    if (rc == FU_OK) rc = run_on_face(kit->gear, photo, &face, gear);
    if (rc == FU_OK) rc = run_on_face(kit->emotion, photo, &face, emotion);
    if (rc != FU_OK) return rc;
    fu_face_attributes a;
    fu_face_attributes_read(gear, emotion, &a);
    memcpy(out->race, a.race, sizeof out->race);
    out->p_male = a.p_male, out->p_female = a.p_female, out->age = a.age;
    memcpy(out->emotion, a.emotion, sizeof out->emotion);
    return FU_OK;
}

float fu_descriptor_distance(const float a[FU_DESCRIPTOR_DIM], const float b[FU_DESCRIPTOR_DIM]) {
    double sum = 0;
    for (int i = 0; i < FU_DESCRIPTOR_DIM; i++) sum += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    return (float)sqrt(sum);
}
