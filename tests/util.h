/* Helpers shared by the tests. */
#ifndef FU_TEST_UTIL_H
#define FU_TEST_UTIL_H
#include "core/rng.h"
#include "core/tensor.h"

/* Leaf tensor of N(0, 1) values; with grad, marked trainable (gradient buffer allocated). */
fu_tensor *randn_leaf(fu_rng *r, int ndim, const int64_t *shape, int grad);
/* Leaf tensor holding 0, 1, 2, ... in memory order (no gradient). */
fu_tensor *arange_leaf(int ndim, const int64_t *shape);
/* 1 when t has exactly n elements equal to expect[0..n). */
int tensor_equals(const fu_tensor *t, const float *expect, int64_t n);
/* 1 when path exists. */
int file_exists(const char *path);
/* Entries of dir whose names start with prefix (finds leftover temporary files); -1 if dir is unreadable. */
int count_prefixed(const char *dir, const char *prefix);

/* Runs "$FACEUP_BIN args" (default build/faceup) through the shell with stdin from /dev/null;
 * stdout and stderr are captured into out/err (truncated, NUL-terminated). Returns the exit
 * status, or -1 when the command did not exit normally. */
int run_faceup(const char *args, char *out, size_t n_out, char *err, size_t n_err);
/* Newlines in s. */
int count_newlines(const char *s);

/* dlib's own boxes and landmarks on real faces (tests/reference/dlib_reference.sh writes them
 * into the model cache), parsed; NULL when absent. */
struct cJSON;
struct cJSON *load_dlib_reference(void);

/* A synthetic face set: n images of S x S, image i a smooth colour blob whose position and
 * colour depend on i (learnable, unlike noise); every 5th image val, the rest train; no labels. */
struct fu_faces;
struct fu_faces *synthetic_face_set(int S, int64_t n);

#endif
