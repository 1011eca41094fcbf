/* The face pipeline behind `faceup embed`, `compare`, `analyze` and `eval lfw`:
 *
 *   image -> blazeface box (face/detect.h) -> 68 landmarks (face/landmarks.h)
 *         -> the crop a network needs (one bilinear warp from the source image)
 *         -> the network, on batches of crops.
 *
 * Crops:
 *   dlib-resnet  dlib's 150x150 face chip from the landmarks (face/align.h, FU_ALIGN_DLIB);
 *                RGB in [0, 1].
 *   faceres,     human's face crop (@vladmandic/human 3.x, facts from its blazeface.ts,
 *   gear,          facemeshutil.ts, faceres.ts, gear.ts, emotion.ts): the blazeface box
 *   emotion        enlarged 1.4x about its centre, made square (side = the longer one, corners
 *                rounded to whole pixels), axis-aligned (human's rotation correction is off by
 *                default) and cut out with tf.image.cropAndResize to a 192x192 "face tensor"
 *                in [0, 1]; each network then takes, from that face tensor,
 *                  faceres  resizeBilinear to 224x224 (align_corners false), times 255
 *                  gear     cropAndResize of the box [top 0, left 0.1, bottom 0.9, right 0.9]
 *                           to 198x198, [0, 1]
 *                  emotion  resizeBilinear to 64x64, gray = 0.2989 R + 0.5870 G + 0.1140 B,
 *                           then (gray - 0.5) * 2
 *                Here the two resamplings are composed into one warp from the source image
 *                (same sample positions, one bilinear interpolation instead of two). Without
 *                detection (--no-detect) the whole image is the face tensor, as when human is
 *                given a face crop.
 *
 * Outputs per face (network order):
 *   dlib-resnet  128 floats, dlib's raw descriptor
 *   faceres      1024 floats, node global_pooling/Mean (human's descriptor)
 *   gear         14 floats: age_output (7 bins), gender_output (2), race_output (5)
 *   emotion      7 floats: angry, disgust, fear, happy, sad, surprise, neutral */
#ifndef FU_FACE_PIPELINE_H
#define FU_FACE_PIPELINE_H
#include "faceup.h"
#include "core/tensor.h"
#include "face/detect.h"
#include "face/dlib_resnet.h"
#include "face/landmarks.h"

/* ---------- finding the face ---------- */

typedef struct fu_face_finder fu_face_finder;

typedef struct {
    fu_face_det det;     /* the chosen detection (or the whole image without detection) */
    int detected;        /* 0 when the whole image was taken as the face */
    fu_box lm_box;       /* the box given to the shape predictor */
    float lm[136];       /* 68 landmarks, x y, source pixels */
} fu_face_found;

/* Loads blazeface (unless detect is 0) and dlib's 68-point shape predictor from the model
 * cache. NULL with a one-line message on error. */
fu_face_finder *fu_face_finder_load(int detect);
void fu_face_finder_free(fu_face_finder *f);
/* Detection (score >= 0.7, NMS IoU 0.3, fu_face_pick's choice) and landmarks. img [1,3,H,W]
 * in [0,1]; label names the image in messages. FU_OK, FU_E_INPUT ("LABEL: no face found ...")
 * or FU_E_INTERNAL. */
int fu_face_find(fu_face_finder *f, const fu_tensor *img, const char *label, fu_face_found *out);

/* ---------- networks ---------- */

typedef enum { FU_NET_DLIB_RESNET, FU_NET_FACERES, FU_NET_GEAR, FU_NET_EMOTION } fu_face_net_kind;

/* "dlib-resnet", "faceres", "gear", "emotion" -> kind; -1 if unknown. */
int fu_face_net_parse(const char *name);
const char *fu_face_net_name(fu_face_net_kind kind);

typedef struct fu_face_net fu_face_net;

/* Loads the network from the model cache (face/models.h). NULL with a message on error. */
fu_face_net *fu_face_net_load(fu_face_net_kind kind);
void fu_face_net_free(fu_face_net *net);
/* A dlib-resnet network object around weights the caller keeps (e.g. a fine-tuned backbone,
 * face/face_extractor.h); freeing it leaves dlib alone. NULL when out of memory. */
fu_face_net *fu_face_net_wrap_dlib(fu_dlib_resnet *dlib);
/* The tag of this network's cached vectors (data/embed_cache.h): "<name>/<crop>" for the
 * stock model files (their version is fixed by face/models.h), plus "/weights-<FNV-1a 64 of
 * the weights>" for a wrapped network, so vectors of other weights never mix. */
const char *fu_face_net_cache_tag(const fu_face_net *net, char *buf, size_t n);
fu_face_net_kind fu_face_net_kind_of(const fu_face_net *net);
/* Test-time mirroring: with on, every output is the mean of the network's outputs for the crop
 * and for its left-right mirror image (one batch of 2n crops); the cache tag gains "+mirror". */
void fu_face_net_set_mirror(fu_face_net *net, int on);
/* Floats per face in fu_face_net_run's output (see the header comment). */
int fu_face_net_out_dim(const fu_face_net *net);
/* Side of the network's square input crop. */
int fu_face_net_input_size(const fu_face_net *net);

/* The crop this network needs (output pixel -> source pixel, as fu_affine_warp's theta) for a
 * found face in a W x H image. FU_OK or FU_E_INPUT (degenerate landmarks). */
int fu_face_net_theta(const fu_face_net *net, const fu_face_found *face, int width, int height, double theta[6]);

/* Runs the network on n crops: image i (a [1,3,H,W] tensor in [0,1]) warped with theta[i].
 * out receives n * out_dim floats. FU_OK or an error with a message. */
int fu_face_net_run(fu_face_net *net, fu_tensor *const *images, const double (*theta)[6], int n, float *out);

/* ---------- files ---------- */

/* What happened to one input file. */
typedef struct {
    int status;          /* FU_OK, or the error's code */
    char error[320];     /* the one-line message when status != FU_OK */
    fu_face_found face;
} fu_face_file_result;

#define FU_FACE_MAX_BATCH 64

/* For each of n files: load, find the face, then run every network of nets[0..n_nets) on it,
 * `batch` faces per network call (at most FU_FACE_MAX_BATCH); outs[k] receives n * out_dim(nets[k]) floats (rows of files
 * that failed are left untouched). A file that cannot be read or holds no face is a per-file
 * error in results[i]; the others go on. progress (may be NULL) counts the "files" as they finish.
 * Returns FU_OK, or FU_E_INTERNAL with a message when a network run fails. */
int fu_face_run_files(fu_face_finder *finder, fu_face_net *const *nets, int n_nets, const char *const *paths, int n,
                      int batch, float *const *outs, fu_face_file_result *results, fu_progress_fn progress,
                      void *progress_ctx);

/* Human's face tensor: the square region of the source image (continuous pixel coordinates
 * x0 y0 x1 y1) that the crop covers, for a detection (see above) or, when detected is 0, the
 * whole image. Exposed for tests and reports. */
void fu_face_human_region(const fu_face_det *det, int detected, int width, int height, float region[4]);

#endif
