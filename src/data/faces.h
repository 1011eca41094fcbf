/* A packed face data set for generator training and evaluation: every face of the shared data
 * sets (../shared/data: CelebA aligned, UTKFace, LFW deep-funneled) cropped and resized once to
 * S x S RGB (S = 64) and stored as uint8 in one file, with per-image labels.
 *
 * Split (fixed, written into every label):
 *   train: CelebA 000001-009000 and UTKFace except every 20th file in sorted name order;
 *   val:   CelebA 009001-009500 and every 20th UTKFace file (index % 20 == 19) -- the held-out
 *          set for reconstruction PSNR;
 *   test:  all of LFW. LFW is the identity-evaluation set (pairs.txt folds), so no LFW identity
 *          is ever trained on; the generator never sees it.
 * The augmented extractor's fine-tune (train/finetune_data.h, fu_xsplit) halves this val split
 * into its own val (CelebA 009001-009250, the UTKFace val files of even val ordinal) and a
 * TEST split (CelebA 009251-009500, the odd ones) that nothing is trained on or chosen with;
 * its train faces are a subsample of the train split above, which is unchanged.
 *
 * File layout (little-endian):
 *   "FUFACES1" | u32 size | u32 record bytes (128) | u64 count |
 *   count records of 128 bytes: char path[96] (relative to the data folder, NUL padded),
 *     u8 source, u8 split, i8 gender (0 male, 1 female, -1 unknown), i8 race (UTKFace's 0-4,
 *     -1 unknown), i16 age (-1 unknown), u16 zero, i32 identity (LFW: index of the person in
 *     sorted folder-name order; -1 unknown), u32 zero, u64 attrs (CelebA: bit i set when
 *     attribute i of list_attr_celeba.txt is 1), u64 attrs_known (all 40 bits for CelebA),
 *     8 zero bytes |
 *   count * 3*S*S bytes of pixels, planar RGB (CHW) per image.
 * The loader checks the magic, the sizes and that the file length is exactly what they imply. */
#ifndef FU_DATA_FACES_H
#define FU_DATA_FACES_H
#include <stdint.h>
#include "faceup.h"
#include "core/tensor.h"

#define FU_FACES_SIZE 64
#define FU_FACES_PATH_LEN 96

enum { FU_FACES_CELEBA, FU_FACES_UTKFACE, FU_FACES_LFW, FU_FACES_N_SOURCES };
enum { FU_SPLIT_TRAIN, FU_SPLIT_VAL, FU_SPLIT_TEST, FU_SPLIT_ALL };

typedef struct fu_face_label {
    char path[FU_FACES_PATH_LEN];
    uint8_t source, split;
    int8_t gender, race;
    int16_t age;
    int32_t identity;
    uint64_t attrs, attrs_known;
} fu_face_label;

typedef struct fu_faces {
    int size;
    int64_t count;
    fu_face_label *labels;
    uint8_t *pixels;        /* count * 3 * size * size, CHW per image */
} fu_faces;

const char *fu_faces_source_name(int source);   /* "celeba", "utkface", "lfw" */
const char *fu_faces_split_name(int split);     /* "train", "val", "test", "all" */
int fu_faces_split_parse(const char *name);      /* -1 when unknown */

/* The crop step, one function for every source: frames the face of img ([1,3,H,W] in [0,1],
 * as decoded from `source`'s files) like FFHQ and resizes it to out ([1,3,S,S]). For now a fixed
 * per-source box chosen by eye on sample sheets (see faces.c); landmark alignment can replace
 * this function without touching the rest. FU_OK or an error. */
int fu_faces_crop(const fu_tensor *img, int source, fu_tensor *out);

/* How faces are framed: FU_FACES_FRAME_FFHQ detects the face (blazeface), finds dlib's 68
 * landmarks and cuts FFHQ's oriented square (face/align.h), as StyleGAN's training data and the
 * upscaler's face guides expect; images without a detected face are dropped. FU_FACES_FRAME_BOX
 * is the fixed per-source box of fu_faces_crop (no models needed). */
enum { FU_FACES_FRAME_BOX, FU_FACES_FRAME_FFHQ };

/* The framing of one image at a time (what fu_faces_build does to every image). */
typedef struct fu_faces_framer fu_faces_framer;
/* Loads the face models FU_FACES_FRAME_FFHQ needs. NULL with a message. */
fu_faces_framer *fu_faces_framer_open(int frame);
void fu_faces_framer_free(fu_faces_framer *f);
/* Frames img (from `source`'s files) into out [1,3,S,S]; theta (may be NULL) receives the map
 * from an output pixel to a source pixel (pixel-index coordinates, fu_affine_warp's), so callers
 * can relate the frame to the source image. FU_OK, FU_E_NO_SOLUTION when no usable face is
 * found (FFHQ framing), or an error. */
int fu_faces_frame(const fu_faces_framer *f, fu_tensor *img, int source, fu_tensor *out, double theta[6]);

/* Builds the set from a data folder holding celeba/, utkface/, lfw/ as in ../shared/data
 * (a missing sub-folder is an error); *dropped counts the images without a usable face.
 * sources: a mask of 1 << FU_FACES_CELEBA ... (0 = every source); e.g. only UTKFace for sets
 * of 128 px and more, where CelebA's half-size copy (faces ~45 px wide) would be upsampled.
 * progress (may be NULL) counts the "faces". */
int fu_faces_build(const char *data_dir, int size, int frame, unsigned sources, fu_faces **out, int64_t *dropped,
                   fu_progress_fn progress, void *ctx);
/* The labels (paths, splits) of every image fu_faces_build would pack, in the same order,
 * without loading pixels; *labels is malloc'ed (free it). */
int fu_faces_list(const char *data_dir, fu_face_label **labels, int64_t *n);
int fu_faces_save(const fu_faces *set, const char *path);     /* atomic */
int fu_faces_load(const char *path, fu_faces **out);
void fu_faces_free(fu_faces *set);
/* Image i as floats in [-1, 1] into dst (3*S*S), mirrored left-right when flip. */
void fu_faces_get(const fu_faces *set, int64_t i, int flip, float *dst);

/* Deterministic training order: epoch e visits the split's images in a permutation drawn from
 * (seed, e); sample number `pos` (counted from 0 over the whole run) is image perm_e[pos % n]
 * of epoch e = pos / n, mirrored when a hash of (seed, pos) says so (if flips are on). So the
 * whole data order is a function of (seed, pos): a resumed run needs only pos. */
/* Race groups of the balanced loader: UTKFace's five classes, and the faces without a label. */
#define FU_FACES_N_GROUPS 6

typedef struct fu_faces_loader {
    const fu_faces *set;
    int64_t n;          /* images in the split */
    int64_t *members;   /* their indices in set */
    int64_t *perm;      /* permutation of 0..n-1 for epoch `epoch` */
    int64_t epoch;
    uint64_t seed;
    int flip;
    /* Balanced order (fu_faces_loader_init_balanced): members sorted by group, group g holding
     * members[group_start[g] .. group_start[g+1]-1]; n_groups 0 for the plain order. */
    int n_groups;
    int64_t group_start[FU_FACES_N_GROUPS + 1];
} fu_faces_loader;

int fu_faces_loader_init(fu_faces_loader *l, const fu_faces *set, int split, uint64_t seed, int flip);
/* Class-balanced order, against the data's race skew: sample `pos` comes from group pos % G of
 * the G non-empty race groups (UTKFace's labels 0-4, then the faces without one), and within it
 * from a hash of (seed, pos), so every group is drawn equally often whatever its size (small
 * groups repeat, with replacement) and the order is still a function of (seed, pos). */
int fu_faces_loader_init_balanced(fu_faces_loader *l, const fu_faces *set, int split, uint64_t seed, int flip);
void fu_faces_loader_free(fu_faces_loader *l);
/* Samples pos .. pos+batch-1 into x (batch*3*S*S floats in [-1,1]); idx (may be NULL) gets
 * their indices in the set. */
void fu_faces_loader_batch(fu_faces_loader *l, int64_t pos, int batch, float *x, int64_t *idx);

#endif
