/* Tensors: float32, contiguous, row-major (NCHW for images). Strides are implied by the shape:
 * stride[i] = product of shape[i+1..]. Ops that change layout (transpose, slice, ...) write
 * a new contiguous tensor, which keeps every kernel simple and every backward exact.
 *
 * A tensor is either a *leaf* (weights, inputs, latents: made by fu_tensor_new, owned by the
 * caller, outliving graphs) or an *intermediate* (made by an op inside a graph's arena, valid
 * until that graph is reset or freed). */
#ifndef FU_TENSOR_H
#define FU_TENSOR_H
#include <stdint.h>
#include <stddef.h>

#define FU_MAX_DIMS 6
/* Refuse tensors larger than this many elements before allocating (2^34 floats = 64 GiB). */
#define FU_MAX_NUMEL ((int64_t)1 << 34)

struct fu_node;

typedef struct fu_tensor {
    int ndim;
    int64_t shape[FU_MAX_DIMS];
    int64_t numel;
    float *data;
    float *grad;           /* same size as data; NULL until a gradient is needed */
    int requires_grad;     /* leaf: accumulate a gradient; intermediate: depends on such a leaf */
    int owns_memory;       /* leaf made by fu_tensor_new: data and grad are freed with it */
    struct fu_node *node;  /* producing node, NULL for leaves */
    char name[48];
} fu_tensor;

/* Element count of a shape; -1 (with fu_fail) on a negative dimension, too many dims or overflow. */
int64_t fu_shape_numel(int ndim, const int64_t *shape);

/* Leaf tensor, zero-filled. NULL with a message on bad shape or out of memory. */
fu_tensor *fu_tensor_new(int ndim, const int64_t *shape);
/* Convenience: fu_tensor_newv(4, n, c, h, w). */
fu_tensor *fu_tensor_newv(int ndim, ...);
fu_tensor *fu_tensor_clone(const fu_tensor *t);   /* leaf copy of data (no grad) */
void fu_tensor_free(fu_tensor *t);                /* NULL-safe; only for leaves */

/* Marks a leaf as trainable and allocates its (zeroed) gradient. Returns FU_OK or an error. */
int fu_tensor_requires_grad(fu_tensor *t, int on);
void fu_tensor_zero_grad(fu_tensor *t);
void fu_tensor_fill(fu_tensor *t, float v);
int fu_tensor_copy_data(fu_tensor *dst, const fu_tensor *src); /* same numel required */
void fu_tensor_set_name(fu_tensor *t, const char *name);

int fu_same_shape(const fu_tensor *a, const fu_tensor *b);
/* "[1,3,64,64]" into buf; returns buf. */
const char *fu_shape_str(const fu_tensor *t, char *buf, size_t n);
/* Dimension i counted from the end when negative (-1 = last); 1 when out of range. */
int64_t fu_dim(const fu_tensor *t, int i);

#endif
