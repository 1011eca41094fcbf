/* The extractor's heads: small networks on top of the frozen dlib ResNet descriptor (the
 * paper's race and attribute MLPs on the embedding), the thumbnail race classifiers behind
 * `faceup upscale --race keep`, and the frame the guides use to cut dlib chips out of
 * FFHQ-aligned generator output. One safetensors file (models/faceup-heads.safetensors, made
 * by `faceup train heads`):
 *
 *   race.{0,1}.{weight,bias}     MLP 128 -> 256 -> 5 on the raw descriptor, UTKFace classes
 *                                (White, Black, Asian, Indian, Others)
 *   attr.{0,1}.{weight,bias}     MLP 128 -> 1024 -> 40 on the raw descriptor, CelebA's 40
 *                                attributes (logits, one sigmoid each)
 *   thumb16.{0,1}.{weight,bias}  MLP 768 -> 256 -> 5: race from a 16x16 FFHQ-aligned thumbnail
 *   thumb8.{0,1}.{weight,bias}   MLP 192 -> 128 -> 5: the same at 8x8
 *   race.logit_bias [5]          per-class offsets added to the race MLP's logits: the race
 *                                head's operating point, fitted on a val split after training
 *                                (train/race_offsets.h); optional, zero when absent (older files)
 *   thumb16.logit_bias [5],      the same for the thumbnail classifiers (`faceup train
 *   thumb8.logit_bias [5]        thumb-race` fits them on its dev split); optional, zero when absent
 *   frame.ffhq_landmarks [68,2]  mean 68-point shape of the training faces in the FFHQ frame,
 *                                normalised to [0,1] (search/face_guides.h turns it into the chip
 *                                transform)
 * Every MLP is linear -> ReLU -> linear (weights in PyTorch's [out, in] layout). Thumbnail
 * inputs are CHW pixels in [0,1] mapped to [-1,1] and flattened. */
#ifndef FU_FACE_HEADS_H
#define FU_FACE_HEADS_H
#include <stdint.h>
#include "core/graph.h"
#include "core/rng.h"
#include "io/safetensors.h"

#define FU_RACE_CLASSES 5
#define FU_ATTRS 40
#define FU_RACE_BIAS_LIMIT 20.0f   /* |race.logit_bias| above this is refused on load */
#define FU_HEADS_DEFAULT "models/faceup-heads.safetensors"

typedef struct fu_mlp {
    fu_tensor *w[2], *b[2];      /* [hidden, in], [hidden], [out, hidden], [out] */
} fu_mlp;

typedef struct fu_heads {
    fu_mlp race, attr, thumb16, thumb8;
    float race_logit_bias[FU_RACE_CLASSES];   /* constant (trainers do not change it) */
    float thumb_logit_bias[2][FU_RACE_CLASSES];   /* thumb16, thumb8: likewise */
    float ffhq_landmarks[136];
} fu_heads;

/* UTKFace's race names ("White" .. "Others"); NULL out of range. */
const char *fu_race_name(int k);
/* Case-insensitive "white", "black", "asian", "indian", "other"/"others" -> 0..4, else -1. */
int fu_race_parse(const char *name);

/* Fresh heads with PyTorch's default Linear initialisation (uniform +-1/sqrt(fan_in)) from
 * seed, and a zero frame. NULL with a message when out of memory. */
fu_heads *fu_heads_new(uint64_t seed);
/* Reads and checks the file: every tensor present with its shape, values finite. NULL with a
 * one-line message naming the file and the problem. */
fu_heads *fu_heads_load(const char *path);
/* Writes atomically, with string metadata (may be NULL / 0). */
int fu_heads_save(const fu_heads *h, const char *path, const char *const *meta_kv, int n_meta);
void fu_heads_free(fu_heads *h);

/* The parameters of one MLP (4 leaves), for an optimiser. */
void fu_mlp_params(fu_mlp *m, fu_tensor *out[4]);

/* An MLP's place in a file: tensors "<name>.{0,1}.{weight,bias}" of an in -> hidden -> out MLP.
 * The heads file holds four (race, attr, thumb16, thumb8); the race judge (race_judge.h) one. */
typedef struct fu_mlp_shape { const char *name; int in, hidden, out; } fu_mlp_shape;
/* New tensors with PyTorch's nn.Linear initialisation (uniform +-1/sqrt(fan_in)) drawn from r.
 * FU_OK, or out of memory (what was made stays in m for fu_mlp_release). */
int fu_mlp_init(fu_mlp *m, const fu_mlp_shape *s, fu_rng *r);
void fu_mlp_release(fu_mlp *m);   /* frees the four tensors */
/* Reads the four tensors, each of exactly its shape and finite (fu_st_tensor_exact; kind names
 * the file type in messages). */
int fu_mlp_read(fu_mlp *m, const fu_mlp_shape *s, const struct fu_safetensors *st, const char *kind);
/* The four tensors as save items, named into names. */
void fu_mlp_items(const fu_mlp *m, const fu_mlp_shape *s, char names[4][64], struct fu_st_item *items);

/* The heads' tensors as save items, for the heads file and the extractor file that embeds them:
 * the four MLPs, frame.ffhq_landmarks and the three logit offsets (race, thumb16, thumb8, last
 * in that order). owned receives the tensors made for it; fu_heads_items_release frees them
 * after saving. FU_OK or out of memory. */
#define FU_HEADS_ITEMS 20
#define FU_HEADS_OWNED 4
int fu_heads_items(const fu_heads *h, char names[16][64], struct fu_st_item items[FU_HEADS_ITEMS], fu_tensor *owned[FU_HEADS_OWNED]);
void fu_heads_items_release(fu_tensor *owned[FU_HEADS_OWNED]);
/* x [N, in] -> logits [N, out]; NULL with a message on a shape mismatch. */
fu_tensor *fu_mlp_forward(fu_graph *g, const fu_mlp *m, fu_tensor *x);
/* The same on plain rows: x [n, in] -> out [n, out] through a graph of its own (no offsets).
 * FU_OK or an error. */
int fu_mlp_rows(const fu_mlp *m, const float *x, int64_t n, float *out);

/* Race logits of descriptors [N, 128]: the race MLP plus race_logit_bias (a constant). Every
 * user of the race head (guides, scores, training) goes through this. NULL with a message. */
fu_tensor *fu_heads_race_logits(fu_graph *g, const fu_heads *h, fu_tensor *desc);
/* The same on plain rows: desc [n, 128] -> out [n, 5]. FU_OK or an error. */
int fu_heads_race_rows(const fu_heads *h, const float *desc, int64_t n, float *out);

/* Race probabilities of a thumbnail [1,3,s,s] in [0,1]: s = 8 or 16 use that classifier (with
 * its logit offsets); a larger power of two is bicubic-downscaled to 16 first. Returns the most
 * likely class and fills probs[5], or -1 with a message for another size. */
int fu_heads_thumb_race(const fu_heads *h, const fu_tensor *thumb, float probs[FU_RACE_CLASSES]);

#endif
