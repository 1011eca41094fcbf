/* The face networks of `faceup upscale` (--identity, --race, --attr and face terms in --loss):
 * loads what the loss strings need, computes the reference descriptor, predicts the thumbnail's
 * race for --race keep, and describes results for the JSON report. */
#ifndef FU_CLI_UPSCALE_FACE_H
#define FU_CLI_UPSCALE_FACE_H
#include <cjson/cJSON.h>
#include "args.h"
#include "face/face_extractor.h"
#include "face/heads.h"
#include "search/face_guides.h"

/* The flags that pick the face terms' networks, shared by `upscale` and `eval upscale`. */
typedef struct guide_flags {
    const char *extractor, *heads, *comparer;   /* --extractor, --heads, --comparer as given (or NULL) */
    int no_extractor;                           /* --no-extractor */
    int learnt_comparer;                        /* set by guide_flags_resolve */
    char extractor_buf[4096], heads_buf[4096];  /* the shipped files' paths */
} guide_flags;

#define GUIDE_FLAG_SPECS(f)                                                                                              \
    {"--extractor", ARG_STRING, &(f).extractor, 0, 0, "augmented extractor: fine-tuned backbone and heads (default " FU_EXTRACTOR_DEFAULT " when present)"}, \
    {"--no-extractor", ARG_FLAG, &(f).no_extractor, 0, 0, "face-api's backbone and --heads even when the extractor file is present"}, \
    {"--heads", ARG_STRING, &(f).heads, 0, 0, "race/attribute heads with face-api's backbone instead of the extractor (default " FU_HEADS_DEFAULT ")"}, \
    {"--comparer", ARG_STRING, &(f).comparer, 0, 0, "IDENTITY_SCORE's t and k: calibrated (dlib's same-person distance; default) or learnt (the extractor's)"}

/* Resolves the flags: an extractor file; else face-api's backbone with --heads (given, or with
 * --no-extractor the shipped heads); else the shipped extractor when present, else the shipped
 * heads. Afterwards exactly one of f->extractor and f->heads is set. FU_E_INPUT with a one-line
 * message when flags contradict or --comparer is unknown (learnt needs an extractor). */
int guide_flags_resolve(guide_flags *f);

/* 1 when spec or spec2 (may be NULL) has a term that needs a face network. */
int upscale_face_wanted(const fu_loss_spec *spec, const fu_loss_spec *spec2);

/* FU_E_INPUT when one of the flags is given but neither loss (spec2 may be NULL) has a face term:
 * the flag would be ignored. */
int guide_flags_check_used(const guide_flags *f, const fu_loss_spec *spec, const fu_loss_spec *spec2);

/* {"extractor" or "heads": path, "comparer": "calibrated" or "learnt"} of resolved flags. */
cJSON *guide_flags_json(const guide_flags *f);

/* The networks behind the face terms and the guides over them. */
typedef struct upscale_guides {
    fu_face_extractor *extractor; /* the augmented extractor, when one is used */
    fu_heads *heads;              /* NULL when the extractor's heads are used */
    fu_dlib_resnet *net;          /* face-api's backbone when loaded here (owned), else NULL */
    fu_face_guides fg;
} upscale_guides;

/* Loads what resolved flags name; IDENTITY_SCORE keeps the calibration constants unless
 * f->learnt_comparer. face_api (may be NULL) is face-api's dlib ResNet when the caller has it
 * loaded already; it is used, not owned, instead of loading a second copy. */
int upscale_guides_open(upscale_guides *g, const guide_flags *f, int resolution, fu_dlib_resnet *face_api);
void upscale_guides_close(upscale_guides *g);

typedef struct upscale_face {
    int active;                  /* some face term is in a loss */
    upscale_guides g;
    fu_search_guides guides;
    fu_tensor *reference;        /* --identity's face framed like the generator's, [1,3,R,R], or NULL */
} upscale_face;

/* Loads the networks (upscale_guides_open) when spec or spec2 (may be NULL) holds a face term;
 * then the reference descriptor of the photo `identity` (may be NULL; needed by IDENTITY_SCORE /
 * L2_IDENTITY) with the same backbone. FU_OK, or FU_E_INPUT with a one-line message (missing
 * file, no face in the photo, ...). */
int upscale_face_open(upscale_face *uf, const guide_flags *f, const char *identity, const fu_loss_spec *spec,
                      const fu_loss_spec *spec2, int resolution);
void upscale_face_close(upscale_face *uf);

/* --race keep: sets the index of spec's RACE term to the thumbnail classifier's prediction for
 * thumb and adds {"class", "probabilities"} as "thumbnail_race" to job. */
int upscale_face_keep_race(const upscale_face *uf, const fu_tensor *thumb, fu_loss_spec *spec, cJSON *job);

/* {"identity": {"cosine", "p_same"} (with a reference), "race": {"class", "probabilities"},
 * "attributes": {name: probability}} for one result image, or NULL on error. */
cJSON *upscale_face_json(const upscale_face *uf, const fu_tensor *image);

#endif
