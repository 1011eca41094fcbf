#include "util.h"

fu_tensor *randn_leaf(fu_rng *r, int ndim, const int64_t *shape, int grad) {
    fu_tensor *t = fu_tensor_new(ndim, shape);
    if (!t) return NULL;
    fu_rng_fill_normal(r, t->data, t->numel, 0, 1);
    if (grad) fu_tensor_requires_grad(t, 1);
    return t;
}
