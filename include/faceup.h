/* faceup public API: the C library behind the `faceup` command, which is its first client.
 *
 * Conventions (as in sqlite3.h and llama.h):
 *   - Objects are opaque handles made by a function that returns a status and writes the handle
 *     to an out-parameter, and freed by the matching *_free / *_close (NULL-safe). Whatever a
 *     function hands out, the caller owns, unless it says otherwise.
 *   - Functions return a status (enum fu_status); on failure fu_last_error() holds a one-line
 *     message naming the file or argument, and out-parameters are left NULL / untouched.
 *   - Threads: each function says what may run concurrently. A handle is used by one thread
 *     at a time. The engine's thread count (fu_set_threads) is process-wide.
 *   - Only the functions marked FU_API are exported from libfaceup.so (include/faceup.symbols
 *     lists them: `make abi-check`).
 *
 * Status codes double as the process exit codes of the `faceup` command. */
#ifndef FACEUP_H
#define FACEUP_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FACEUP_VERSION_MAJOR 0
#define FACEUP_VERSION_MINOR 1
#define FACEUP_VERSION_PATCH 0
#define FACEUP_VERSION "0.1.0"   /* "MAJOR.MINOR.PATCH" of the numbers above */

/* Marks the public API: the library is built with -fvisibility=hidden. */
#if defined(__GNUC__) || defined(__clang__)
#define FU_API __attribute__((visibility("default")))
#else
#define FU_API
#endif

enum fu_status {
    FU_OK = 0,          /* success */
    FU_E_NO_SOLUTION = 1, /* a search found no result within eps (best attempt still saved) */
    FU_E_INPUT = 2,     /* bad input: usage, flags, file contents, shapes, sizes */
    FU_E_INTERNAL = 3,  /* internal error, including running out of memory */
};

/* Progress of a long call: `done` of `total` units of its `stage` (a short name such as "faces",
 * naming what is counted). Called from inside the call that took it, on the caller's thread;
 * ctx is the caller's pointer, passed back unchanged. Every faceup function that reports
 * progress takes this type, with its ctx, and allows NULL for none. */
typedef void (*fu_progress_fn)(void *ctx, int64_t done, int64_t total, const char *stage);

/* The version of the library running ("MAJOR.MINOR.PATCH"), which may differ from the
 * FACEUP_VERSION a program was compiled with. Thread-safe. */
FU_API const char *fu_version(void);

/* The message of the last error on this thread ("" if none). Thread-safe (one per thread). */
FU_API const char *fu_last_error(void);

/* Threads used by the engine (OpenMP and oneDNN); 0 = FACEUP_THREADS env var, else all cores.
 * Process-wide: set it before other calls, not while they run. */
FU_API void fu_set_threads(int n);
FU_API int fu_get_threads(void);

/* ---------- images ----------
 * An fu_image is an RGB picture; files hold 8 bits per sample. */
typedef struct fu_image fu_image;

/* Reads a PNG or JPEG file (recognised by its contents; a JPEG's EXIF orientation applied, gray
 * and alpha made RGB) into *out, which the caller frees with fu_image_free. FU_OK, FU_E_INPUT
 * (unreadable, malformed, over 100 million pixels) or FU_E_INTERNAL. Thread-safe. */
FU_API int fu_image_read(const char *path, fu_image **out);
/* Makes an image from width * height * 3 bytes of interleaved RGB, row by row from the top
 * (copied). FU_OK, FU_E_INPUT (NULL pixels, a side < 1 or too many pixels) or FU_E_INTERNAL.
 * Thread-safe. */
FU_API int fu_image_from_rgb(const unsigned char *rgb, int width, int height, fu_image **out);
/* Writes img as JPEG (quality 95) when path ends in .jpg or .jpeg (any case), else as PNG,
 * atomically: on failure no file is left. FU_OK, FU_E_INPUT or FU_E_INTERNAL. Thread-safe for
 * different paths. */
FU_API int fu_image_write(const fu_image *img, const char *path);
FU_API int fu_image_width(const fu_image *img);
FU_API int fu_image_height(const fu_image *img);
/* Copies the pixels into rgb (width * height * 3 bytes, interleaved, rounded to nearest). */
FU_API void fu_image_to_rgb(const fu_image *img, unsigned char *rgb);
FU_API void fu_image_free(fu_image *img);

/* ---------- faces: detection, alignment, descriptors ----------
 * An fu_face_kit holds the pretrained face networks: BlazeFace detection, dlib's 68 landmarks
 * and dlib's ResNet descriptor, read from the model cache ($FACEUP_MODELS, default
 * ~/.cache/faceup/models, filled by the project's tools/fetch-models.sh). */
typedef struct fu_face_kit fu_face_kit;

#define FU_DESCRIPTOR_DIM 128            /* floats in a face descriptor (dlib's ResNet) */
#define FU_SAME_PERSON_DISTANCE 0.6f     /* dlib's rule: the same person below this distance */

/* Loads the networks into *out (close with fu_face_kit_close). FU_OK, FU_E_INPUT (a model
 * file missing or damaged; the message names it) or FU_E_INTERNAL. Thread-safe. */
FU_API int fu_face_kit_open(fu_face_kit **out);
FU_API void fu_face_kit_close(fu_face_kit *kit);
/* The face of photo (the largest, most central one BlazeFace finds at score >= 0.7) aligned
 * as FFHQ aligns faces (the frame of StyleGAN and of faceup's generator) at 256 x 256 and
 * downscaled with PULSE's bicubic filter to size x size (a power of two, 4 to 256): the
 * thumbnail an upscale starts from. *out is the caller's. FU_OK, FU_E_INPUT (no face, bad
 * size) or FU_E_INTERNAL. One thread at a time per kit. */
FU_API int fu_face_thumbnail(fu_face_kit *kit, const fu_image *photo, int size, fu_image **out);
/* The face's descriptor (dlib's ResNet on dlib's 150 x 150 chip) into descriptor. FU_OK,
 * FU_E_INPUT (no face) or FU_E_INTERNAL. One thread at a time per kit. */
FU_API int fu_face_describe(fu_face_kit *kit, const fu_image *photo, float descriptor[FU_DESCRIPTOR_DIM]);
/* Euclidean distance of two descriptors: below FU_SAME_PERSON_DISTANCE, dlib calls them the
 * same person (99.38% on LFW by dlib's count; faceup measured 98.63% with its own pipeline).
 * Thread-safe. */
FU_API float fu_descriptor_distance(const float a[FU_DESCRIPTOR_DIM], const float b[FU_DESCRIPTOR_DIM]);

#define FU_FACE_RACES 5      /* white, black, asian, indian, other */
#define FU_FACE_EMOTIONS 7   /* angry, disgust, fear, happy, sad, surprise, neutral */

/* What human-models' gear and emotion networks see in a face (as `faceup analyze` reports). */
typedef struct fu_face_analysis {
    float race[FU_FACE_RACES];         /* probabilities, in the order above */
    float p_male, p_female;
    float age;                         /* years, from gear's 7 age bins as @vladmandic/human reads them */
    float emotion[FU_FACE_EMOTIONS];   /* probabilities, in the order above; smiling = emotion[3] */
} fu_face_analysis;

/* Race, gender, age and emotion of the face of photo on human's face crop (the BlazeFace box
 * enlarged 1.4x, square). The first call loads gear and emotion into the kit. FU_OK,
 * FU_E_INPUT (no face, a model file missing) or FU_E_INTERNAL. One thread at a time per kit. */
FU_API int fu_face_analyze(fu_face_kit *kit, const fu_image *photo, fu_face_analysis *out);

#ifdef __cplusplus
}
#endif

#endif
