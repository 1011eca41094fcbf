/* Helpers shared by the tests. */
#ifndef FU_TEST_UTIL_H
#define FU_TEST_UTIL_H
#include "core/rng.h"
#include "core/tensor.h"

/* Leaf tensor of N(0, 1) values; with grad, marked trainable (gradient buffer allocated). */
fu_tensor *randn_leaf(fu_rng *r, int ndim, const int64_t *shape, int grad);

#endif
