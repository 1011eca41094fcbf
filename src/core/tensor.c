#include "tensor.h"
#include "error.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int64_t fu_shape_numel(int ndim, const int64_t *shape) {
    if (ndim < 0 || ndim > FU_MAX_DIMS) { fu_fail(FU_E_INPUT, "tensor: %d dimensions (at most %d)", ndim, FU_MAX_DIMS); return -1; }
    if (ndim > 0 && !shape) { fu_fail(FU_E_INPUT, "tensor: NULL shape"); return -1; }
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) { fu_fail(FU_E_INPUT, "tensor: negative dimension %lld", (long long)shape[i]); return -1; }
        if (shape[i] && n > FU_MAX_NUMEL / shape[i]) { fu_fail(FU_E_INPUT, "tensor: shape too large (over %lld elements)", (long long)FU_MAX_NUMEL); return -1; }
        n *= shape[i];
    }
    return n;
}

fu_tensor *fu_tensor_new(int ndim, const int64_t *shape) {
    int64_t n = fu_shape_numel(ndim, shape);
    if (n < 0) return NULL;
    fu_tensor *t = fu_calloc(1, sizeof *t);
    if (!t) return NULL;
    t->data = fu_aligned_alloc((size_t)n * sizeof(float));
    if (!t->data) { free(t); return NULL; }
    memset(t->data, 0, (size_t)n * sizeof(float));
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->numel = n;
    t->owns_memory = 1;
    return t;
}

fu_tensor *fu_tensor_newv(int ndim, ...) {
    int64_t shape[FU_MAX_DIMS];
    if (ndim < 0 || ndim > FU_MAX_DIMS) return fu_fail_null(FU_E_INPUT, "tensor: %d dimensions (at most %d)", ndim, FU_MAX_DIMS);
    va_list ap;
    va_start(ap, ndim);
    for (int i = 0; i < ndim; i++) shape[i] = va_arg(ap, int64_t);
    va_end(ap);
    return fu_tensor_new(ndim, shape);
}

fu_tensor *fu_tensor_clone(const fu_tensor *t) {
    if (!t) return fu_fail_null(FU_E_INPUT, "tensor_clone: NULL tensor");
    fu_tensor *c = fu_tensor_new(t->ndim, t->shape);
    if (c) memcpy(c->data, t->data, (size_t)t->numel * sizeof(float));
    return c;
}

void fu_tensor_free(fu_tensor *t) {
    if (!t || !t->owns_memory) return;
    free(t->data);
    free(t->grad);
    free(t);
}

int fu_tensor_requires_grad(fu_tensor *t, int on) {
    if (!t) return fu_fail(FU_E_INPUT, "requires_grad: NULL tensor");
    if (t->node) return fu_fail(FU_E_INPUT, "requires_grad: '%s' is not a leaf tensor", t->name);
    t->requires_grad = on != 0;
    if (on && !t->grad) {
        t->grad = fu_aligned_alloc((size_t)t->numel * sizeof(float));
        if (!t->grad) return FU_E_INTERNAL;
        memset(t->grad, 0, (size_t)t->numel * sizeof(float));
    }
    return FU_OK;
}

void fu_tensor_zero_grad(fu_tensor *t) {
    if (t && t->grad) memset(t->grad, 0, (size_t)t->numel * sizeof(float));
}

void fu_tensor_fill(fu_tensor *t, float v) {
    for (int64_t i = 0; i < t->numel; i++) t->data[i] = v;
}

int fu_tensor_copy_data(fu_tensor *dst, const fu_tensor *src) {
    if (!dst || !src) return fu_fail(FU_E_INPUT, "copy: NULL tensor");
    if (dst->numel != src->numel) return fu_fail(FU_E_INPUT, "copy: %lld elements into %lld", (long long)src->numel, (long long)dst->numel);
    memcpy(dst->data, src->data, (size_t)src->numel * sizeof(float));
    return FU_OK;
}

void fu_tensor_set_name(fu_tensor *t, const char *name) {
    if (t && name) snprintf(t->name, sizeof t->name, "%s", name);
}

int fu_same_shape(const fu_tensor *a, const fu_tensor *b) {
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++) if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

const char *fu_shape_str(const fu_tensor *t, char *buf, size_t n) {
    size_t off = 0;
    off += (size_t)snprintf(buf + off, n - off, "[");
    for (int i = 0; i < t->ndim && off < n; i++)
        off += (size_t)snprintf(buf + off, n - off, i ? ",%lld" : "%lld", (long long)t->shape[i]);
    if (off < n) snprintf(buf + off, n - off, "]");
    return buf;
}

int64_t fu_dim(const fu_tensor *t, int i) {
    if (i < 0) i += t->ndim;
    if (i < 0 || i >= t->ndim) return 1;
    return t->shape[i];
}
