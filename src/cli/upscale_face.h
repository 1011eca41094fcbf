/* The face networks of `faceup upscale` (--identity, --race, --attr and face terms in --loss):
 * loads what the loss strings need, computes the reference descriptor, predicts the thumbnail's
 * race for --race keep, and describes results for the JSON report. */
#ifndef FU_CLI_UPSCALE_FACE_H
#define FU_CLI_UPSCALE_FACE_H
#include <cjson/cJSON.h>
#include "face/face_extractor.h"
#include "face/heads.h"
#include "search/face_guides.h"

typedef struct upscale_face {
    int active;                  /* some face term is in a loss */
    fu_face_extractor *extractor; /* the augmented extractor, when one is used */
    fu_heads *heads;             /* NULL when the extractor's heads are used */
    fu_dlib_resnet *net;         /* NULL when the extractor's backbone is used */
    fu_face_guides fg;
    fu_search_guides guides;
    fu_tensor *reference;        /* --identity's face framed like the generator's, [1,3,R,R], or NULL */
} upscale_face;

/* Which networks guide the face terms, from --extractor, --heads and --no-extractor: an
 * extractor file; else face-api's backbone with --heads (given, or with --no-extractor the
 * shipped heads); else the shipped extractor when present, else the shipped heads. Sets
 * *extractor (NULL: face-api's backbone) and *heads (the heads file; NULL with an extractor);
 * ext_buf and heads_buf (n bytes each) hold the shipped paths. FU_E_INPUT when flags contradict. */
int upscale_face_choose(const char **extractor, const char **heads, int no_extractor, char *ext_buf, char *heads_buf, size_t n);

/* Loads the networks when spec or spec2 (may be NULL) holds a face term: the augmented
 * extractor file (backbone, race and attribute heads, comparer) when extractor_path is not
 * NULL, else face-api's dlib ResNet with the heads file; then the reference descriptor of the
 * photo `identity` (may be NULL; needed by IDENTITY_SCORE / L2_IDENTITY) with the same
 * backbone. FU_OK, or FU_E_INPUT with a one-line message (missing file, no face in the
 * photo, ...). */
int upscale_face_open(upscale_face *uf, const char *heads_path, const char *extractor_path, const char *identity,
                      const fu_loss_spec *spec, const fu_loss_spec *spec2, int resolution);
void upscale_face_close(upscale_face *uf);

/* --race keep: sets the index of spec's RACE term to the thumbnail classifier's prediction for
 * thumb and adds {"class", "probabilities"} as "thumbnail_race" to job. */
int upscale_face_keep_race(const upscale_face *uf, const fu_tensor *thumb, fu_loss_spec *spec, cJSON *job);

/* {"identity": {"cosine", "p_same"} (with a reference), "race": {"class", "probabilities"},
 * "attributes": {name: probability}} for one result image, or NULL on error. */
cJSON *upscale_face_json(const upscale_face *uf, const fu_tensor *image);

#endif
