/* Loads reference arrays from ../shared/golden/<set>/npy/<name>.npy (little-endian float32,
 * C order) for tests. Returns a leaf tensor, or NULL when the file is absent or malformed. */
#ifndef FU_TEST_GOLDEN_H
#define FU_TEST_GOLDEN_H
#include "core/tensor.h"

fu_tensor *golden_load(const char *set, const char *name);
/* max |a - b| over all elements (numel must match; returns INFINITY otherwise). */
float golden_max_diff(const fu_tensor *a, const fu_tensor *b);
float golden_max_abs(const fu_tensor *t);

#endif
