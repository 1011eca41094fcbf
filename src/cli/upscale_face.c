/* Face networks of faceup upscale (see upscale_face.h). */
#include "upscale_face.h"
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "core/error.h"
#include "face/align.h"
#include "face/face_pipeline.h"
#include "face/models.h"
#include "faceup.h"
#include "io/image.h"

static int has_kind(const fu_loss_spec *s, int identity) {
    for (int i = 0; s && i < s->n_terms; i++) {
        fu_loss_term_kind k = s->terms[i].kind;
        if (identity ? (k == FU_TERM_IDENTITY_SCORE || k == FU_TERM_L2_IDENTITY) : k >= FU_TERM_IDENTITY_SCORE) return 1;
    }
    return 0;
}

/* The reference photo's face: its descriptor by the guides' backbone, and the face cut out
 * like the generator's faces (FFHQ framing at the generator's resolution) for the sheet. */
static int reference_face(const char *photo, fu_dlib_resnet *net, int resolution, float desc[FU_DLIB_RESNET_DIM], fu_tensor **framed) {
    fu_face_pipeline p;
    int rc = fu_face_pipeline_open(&p);
    fu_face_pipeline with_net = p;
    with_net.net = net;
    fu_tensor *img = rc == FU_OK ? fu_image_load(photo) : NULL;
    if (rc == FU_OK && !img) rc = fu_last_code() ? fu_last_code() : FU_E_INPUT;
    float lm[136];
    if (rc == FU_OK) rc = fu_face_pipeline_landmarks(&with_net, img, photo, lm);
    if (rc == FU_OK) rc = fu_face_pipeline_descriptor(&with_net, img, lm, desc);
    if (rc == FU_OK) {
        fu_graph *g = fu_graph_new();
        fu_tensor *cut = g ? fu_align_face(g, img, lm, FU_ALIGN_FFHQ, resolution, NULL) : NULL;
        *framed = cut ? fu_tensor_clone(cut) : NULL;
        if (!*framed) rc = fu_last_code() ? fu_last_code() : FU_E_INTERNAL;
        fu_graph_free(g);
    }
    fu_tensor_free(img);
    fu_face_pipeline_close(&p);
    if (rc == FU_E_INPUT && !strstr(fu_last_error(), photo)) {
        char why[512];
        snprintf(why, sizeof why, "%s", fu_last_error());
        rc = fu_fail(FU_E_INPUT, "--identity %s: %s", photo, why);
    }
    return rc;
}

int upscale_face_wanted(const fu_loss_spec *spec, const fu_loss_spec *spec2) { return has_kind(spec, 0) || has_kind(spec2, 0); }

int guide_flags_check_used(const guide_flags *f, const fu_loss_spec *spec, const fu_loss_spec *spec2) {
    const char *given = f->extractor ? "--extractor" : f->heads ? "--heads" : f->no_extractor ? "--no-extractor" : f->comparer ? "--comparer" : NULL;
    if (!given || upscale_face_wanted(spec, spec2)) return FU_OK;
    return fu_fail(FU_E_INPUT, "%s picks the face networks, but no face term uses one (add --identity, --race or --attr)", given);
}

int guide_flags_resolve(guide_flags *f) {
    const char *comparer = f->comparer ? f->comparer : "calibrated";
    if (f->extractor && f->no_extractor) return fu_fail(FU_E_INPUT, "--extractor and --no-extractor exclude each other");
    if (f->extractor && f->heads) return fu_fail(FU_E_INPUT, "--heads goes with face-api's backbone; the --extractor file has its own heads");
    if (strcmp(comparer, "calibrated") && strcmp(comparer, "learnt"))
        return fu_fail(FU_E_INPUT, "--comparer: expected calibrated or learnt, got '%s'", comparer);
    if (!f->extractor && !f->heads && !f->no_extractor &&
        access(fu_shipped_path(FU_EXTRACTOR_DEFAULT, f->extractor_buf, sizeof f->extractor_buf), F_OK) == 0)
        f->extractor = f->extractor_buf;   /* the shipped one, when there is one */
    if (!f->extractor && !f->heads) f->heads = fu_shipped_path(FU_HEADS_DEFAULT, f->heads_buf, sizeof f->heads_buf);
    f->learnt_comparer = !strcmp(comparer, "learnt");
    if (f->learnt_comparer && !f->extractor) return fu_fail(FU_E_INPUT, "--comparer learnt needs an extractor file");
    return FU_OK;
}

cJSON *guide_flags_json(const guide_flags *f) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, f->extractor ? "extractor" : "heads", f->extractor ? f->extractor : f->heads);
    cJSON_AddStringToObject(o, "comparer", f->learnt_comparer ? "learnt" : "calibrated");
    return o;
}

int upscale_guides_open(upscale_guides *g, const guide_flags *f, int resolution, fu_dlib_resnet *face_api) {
    char buf[1024];
    memset(g, 0, sizeof *g);
    if (f->extractor) {
        if (!(g->extractor = fu_face_extractor_load(f->extractor))) return fu_last_code();
        int rc = fu_face_guides_init(&g->fg, g->extractor->net, g->extractor->heads, resolution);
        if (rc == FU_OK && f->learnt_comparer) fu_face_guides_set_comparer(&g->fg, g->extractor->comparer->data[0], g->extractor->comparer->data[1]);
        return rc;
    }
    if (!(g->heads = fu_heads_load(f->heads))) return fu_last_code();
    if (!face_api && (!fu_model_file(FU_DLIB_RESNET_MANIFEST, buf, sizeof buf) || !(face_api = g->net = fu_dlib_resnet_load(buf))))
        return fu_last_code();
    return fu_face_guides_init(&g->fg, face_api, g->heads, resolution);
}

void upscale_guides_close(upscale_guides *g) {
    fu_face_extractor_free(g->extractor);
    fu_heads_free(g->heads);
    fu_dlib_resnet_free(g->net);
    memset(g, 0, sizeof *g);
}

int upscale_face_open(upscale_face *uf, const guide_flags *f, const char *identity, const fu_loss_spec *spec,
                      const fu_loss_spec *spec2, int resolution) {
    memset(uf, 0, sizeof *uf);
    int wants_identity = has_kind(spec, 1) || has_kind(spec2, 1);
    uf->active = upscale_face_wanted(spec, spec2);
    if (!uf->active) return FU_OK;
    if (wants_identity && !identity)
        return fu_fail(FU_E_INPUT, "IDENTITY_SCORE and L2_IDENTITY compare with a reference face: pass --identity PHOTO");
    int rc = upscale_guides_open(&uf->g, f, resolution, NULL);
    if (rc == FU_OK && identity) {
        float ref[FU_DLIB_RESNET_DIM];
        rc = reference_face(identity, uf->g.fg.net, resolution, ref, &uf->reference);
        if (rc == FU_OK) fu_face_guides_set_reference(&uf->g.fg, ref);
    }
    uf->guides = fu_face_guides_bind(&uf->g.fg);
    return rc;
}

void upscale_face_close(upscale_face *uf) {
    upscale_guides_close(&uf->g);
    fu_tensor_free(uf->reference);
    memset(uf, 0, sizeof *uf);
}

static cJSON *race_json(int k, const float *probs) {
    cJSON *o = cJSON_CreateObject(), *p = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "class", fu_race_name(k));
    for (int c = 0; c < FU_RACE_CLASSES; c++) cJSON_AddNumberToObject(p, fu_race_name(c), probs[c]);
    cJSON_AddItemToObject(o, "probabilities", p);
    return o;
}

int upscale_face_keep_race(const upscale_face *uf, const fu_tensor *thumb, fu_loss_spec *spec, cJSON *job) {
    float probs[FU_RACE_CLASSES];
    int k = fu_heads_thumb_race(uf->g.fg.heads, thumb, probs), i = fu_loss_find(spec, FU_TERM_RACE);
    if (k < 0) return fu_last_code() ? fu_last_code() : FU_E_INPUT;
    if (i >= 0) spec->terms[i].index = k;
    cJSON_AddItemToObject(job, "thumbnail_race", race_json(k, probs));
    return FU_OK;
}

cJSON *upscale_face_json(const upscale_face *uf, const fu_tensor *image) {
    fu_face_report r;
    if (fu_face_guides_describe(&uf->g.fg, image, &r) != FU_OK) return NULL;
    cJSON *o = cJSON_CreateObject(), *attrs = cJSON_CreateObject();
    if (r.has_identity) {
        cJSON *id = cJSON_CreateObject();
        cJSON_AddNumberToObject(id, "cosine", r.cosine);
        cJSON_AddNumberToObject(id, "p_same", r.p_same);
        cJSON_AddItemToObject(o, "identity", id);
    }
    cJSON_AddItemToObject(o, "race", race_json(r.race, r.race_probs));
    for (int a = 0; a < FU_ATTRS; a++) cJSON_AddNumberToObject(attrs, fu_celeba_attr_name(a), r.attr_probs[a]);
    cJSON_AddItemToObject(o, "attributes", attrs);
    return o;
}
