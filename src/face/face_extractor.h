/* faceup's augmented face extractor (the paper's feature extractor at this machine's scale):
 * the dlib ResNet fine-tuned together with its race and attribute heads and a face comparer
 * (train/finetune.h). One safetensors file, models/faceup-extractor.safetensors:
 *
 *   backbone.<name>          every weight of face/dlib_resnet.h, named as face-api's manifest
 *                            names them (F16 in the shipped file, F32 in checkpoints)
 *   race.*, attr.*, thumb16.*, thumb8.*, frame.ffhq_landmarks (race.logit_bias included)
 *                            a complete heads file (face/heads.h): race and attr fine-tuned on
 *                            the fine-tuned descriptor; the thumbnail classifiers and the frame
 *                            copied from the heads the fine-tune started from
 *   comparer                 [2]: threshold t (radians) and slope k of the comparer
 *                            p_same(a, b) = sigmoid(k (t - angle(a, b)))
 * fu_heads_load reads the same file as a heads file. */
#ifndef FU_FACE_FACE_EXTRACTOR_H
#define FU_FACE_FACE_EXTRACTOR_H
#include "face/dlib_resnet.h"
#include "face/heads.h"
#include "io/safetensors.h"

#define FU_EXTRACTOR_DEFAULT "models/faceup-extractor.safetensors"

typedef struct fu_face_extractor {
    fu_dlib_resnet *net;
    fu_heads *heads;
    fu_tensor *comparer;     /* [2]: t, k */
} fu_face_extractor;

/* Takes ownership of net and heads; the comparer starts at (threshold, slope). NULL with a
 * message when out of memory (net and heads are then freed). */
fu_face_extractor *fu_face_extractor_new(fu_dlib_resnet *net, fu_heads *heads, float threshold, float slope);
/* Reads and checks the file (every tensor present, shapes, finite values). NULL with a
 * one-line message naming the file and the problem. */
fu_face_extractor *fu_face_extractor_load(const char *path);
/* Writes atomically; the backbone in backbone_dtype (FU_F32 or FU_F16), the rest F32, plus
 * n_extra more tensors (a trainer's checkpoint state; may be 0). meta_kv holds n_meta key/value
 * string pairs (at most 8). */
int fu_face_extractor_save(const fu_face_extractor *x, const char *path, fu_dtype backbone_dtype, const fu_st_item *extra,
                           int n_extra, const char *const *meta_kv, int n_meta);
void fu_face_extractor_free(fu_face_extractor *x);

#endif
