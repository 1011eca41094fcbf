/* Cached training data of the extractor fine-tune (train/finetune.h): a subsample of the
 * shared CelebA and UTKFace images, each run once through the face pipeline and stored as
 * uint8, so that training runs only the ResNet.
 *
 * Per face:
 *   chip      dlib's 150x150 chip (blazeface >= 0.7 -> dlib 68 landmarks -> FU_ALIGN_DLIB, as
 *             face/face_pipeline.h), RGB u8
 *   ffhq      the FFHQ-framed 64x64 crop the generator is trained on (data/faces.c's recipe:
 *             FFHQ square warped at 256, area-averaged to 64), RGB u8
 *   teacher   the ORIGINAL network's descriptor of the (u8) chip: the identity-retention target
 *   lookalike (some faces) faceup's look-alike of the face's own 16x16 thumbnail: the 64x64
 *             crop bicubic-downscaled by 4 (PULSE's downsampler), upscaled by the VAE search
 *             (models/faceup-vae64.safetensors, loss 100*L2 only, search defaults: 100 steps,
 *             encoder start, seed 0), clamped to [0,1], u8
 *
 * Splits (fixed; FU_XSPLIT_*, from data/faces.h's split, which is unchanged):
 *   train  a subsample of faces.h's train split: UTKFace train, at most `per_race` faces of
 *          each race (every k-th in name order), and every `celeba_every`-th CelebA train image;
 *   val    half of faces.h's val split: CelebA 009001-009250 and the UTKFace val files whose
 *          val ordinal is even (UTKFace sorted index i with i % 20 == 19, (i / 20) even);
 *   test   the other half: CelebA 009251-009500 and the odd UTKFace val ordinals. The test
 *          half is never used for training or for choosing anything; it gives the reported
 *          figures (faceup eval extractor).
 * LFW is not touched. Look-alikes are made for `lookalikes_train` train faces and
 * `lookalikes_test` test faces (spread evenly over the faces with a detection).
 *
 * File (little-endian): "FUXCHIP1" | u64 count | count records of FU_XREC_BYTES:
 *   char path[96] | u8 source | u8 split | i8 race | u8 has_lookalike | u32 zero |
 *   u64 attrs | u64 attrs_known | f32 teacher[128] | u8 chip[3*150*150] | u8 ffhq[3*64*64] |
 *   u8 lookalike[3*64*64]
 * (only faces with a detection are stored). The loader checks magic, count and length. */
#ifndef FU_TRAIN_FINETUNE_DATA_H
#define FU_TRAIN_FINETUNE_DATA_H
#include <stdint.h>
#include "faceup.h"
#include "data/faces.h"

#define FU_XCHIP 150
#define FU_XFFHQ 64
#define FU_XCHIP_BYTES (3 * FU_XCHIP * FU_XCHIP)
#define FU_XFFHQ_BYTES (3 * FU_XFFHQ * FU_XFFHQ)

enum { FU_XSPLIT_TRAIN, FU_XSPLIT_VAL, FU_XSPLIT_TEST, FU_XSPLIT_NONE };

typedef struct fu_xface {
    char path[FU_FACES_PATH_LEN];
    uint8_t source, split, has_lookalike;
    int8_t race;
    uint64_t attrs, attrs_known;
    float teacher[128];
    uint8_t *chip, *ffhq, *lookalike;   /* point into fu_xdata's pixel buffer */
} fu_xface;

typedef struct fu_xdata {
    int64_t n;
    fu_xface *f;
    uint8_t *pixels;
} fu_xdata;

typedef struct fu_xdata_config {
    int per_race, celeba_every, lookalikes_train, lookalikes_test;
    int holdout_every;   /* keep every N-th val and test face (1: all; more for quick tests) */
} fu_xdata_config;

/* per_race 400, celeba_every 6, 400 train and 120 test look-alikes, all val and test faces. */
fu_xdata_config fu_xdata_defaults(void);

/* Extractor split of a faces.h label; utk_ordinal is the label's index among the UTKFace
 * files in name order (ignored for other sources). FU_XSPLIT_NONE for LFW. Train faces are
 * all of faces.h's train split (the subsampling is fu_xdata_build's). */
int fu_xsplit(const fu_face_label *label, int64_t utk_ordinal);

/* Runs the pipeline over the subsample of data_dir, then the look-alike searches
 * (generator_path); progress (may be NULL) counts the "faces", then the look-alikes. FU_OK or an error. */
int fu_xdata_build(const char *data_dir, const char *generator_path, const fu_xdata_config *cfg, fu_xdata *out,
                   fu_progress_fn progress, void *ctx);
int fu_xdata_save(const fu_xdata *d, const char *path);   /* atomic */
int fu_xdata_load(const char *path, fu_xdata *out);
void fu_xdata_free(fu_xdata *d);

/* Float CHW in [0,1] of a u8 image of n bytes. */
void fu_xdata_to_float(const uint8_t *src, int64_t n, float *dst);

#endif
