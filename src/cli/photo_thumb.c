#include "photo_thumb.h"
#include "core/error.h"
#include "core/ops.h"
#include "face/align.h"
#include "faceup.h"

fu_tensor *photo_to_thumbnail(photo_thumbs *p, fu_tensor *photo, const char *label, int side) {
    if (!p->finder && !(p->finder = fu_face_finder_load(1))) return NULL;
    fu_face_found face;
    if (fu_face_find(p->finder, photo, label, &face) != FU_OK) return NULL;
    fu_graph *g = fu_graph_new();
    fu_tensor *crop = g ? fu_align_face(g, photo, face.lm, FU_ALIGN_FFHQ, side * PHOTO_ALIGN_FACTOR, NULL) : NULL;
    fu_tensor *low = crop ? fu_bicubic_downsample(g, crop, PHOTO_ALIGN_FACTOR) : NULL;
    fu_tensor *thumb = low ? fu_clamp(g, low, 0, 1) : NULL;   /* as align's PNG holds it */
    fu_tensor *out = thumb ? fu_tensor_clone(thumb) : NULL;
    if (!g) fu_fail(FU_E_INTERNAL, "out of memory");
    fu_graph_free(g);
    return out;
}

void photo_thumbs_close(photo_thumbs *p) {
    fu_face_finder_free(p->finder);
    p->finder = NULL;
}
