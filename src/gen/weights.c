/* Named-tensor sources: an in-memory table, or a weight file read through io/safetensors or
 * io/pt. The file readers keep their own index; this layer only dispatches on the kind. */
#include "gen/weights.h"
#include "core/error.h"
#include "io/pt.h"
#include "io/safetensors.h"
#include <stdlib.h>
#include <string.h>

typedef enum { SRC_TABLE, SRC_PT, SRC_SAFETENSORS } source_kind;

struct fu_weights {
    source_kind kind;
    /* SRC_TABLE */
    char **names;
    fu_tensor **tensors;
    size_t n, cap;
    fu_pt_file *pt;            /* SRC_PT */
    fu_safetensors *st;        /* SRC_SAFETENSORS */
};

static long table_find(const fu_weights *w, const char *name) {
    for (size_t i = 0; i < w->n; i++)
        if (!strcmp(w->names[i], name)) return (long)i;
    return -1;
}

fu_weights *fu_weights_new_table(void) {
    fu_weights *w = fu_calloc(1, sizeof *w);
    if (w) w->kind = SRC_TABLE;
    return w;
}

int fu_weights_put(fu_weights *w, const char *name, fu_tensor *t) {
    if (!w || !name || !t) {
        fu_tensor_free(t);
        return fu_fail(FU_E_INPUT, "weights: put needs a table, a name and a tensor");
    }
    if (w->kind != SRC_TABLE) {
        fu_tensor_free(t);
        return fu_fail(FU_E_INPUT, "weights: '%s': a weight file is read-only", name);
    }
    long i = table_find(w, name);
    if (i >= 0) {
        fu_tensor_free(w->tensors[i]);
        w->tensors[i] = t;
        return FU_OK;
    }
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 64;
        char **names = realloc(w->names, cap * sizeof *names);
        if (names) w->names = names;
        fu_tensor **ts = names ? realloc(w->tensors, cap * sizeof *ts) : NULL;
        if (!ts) {
            fu_tensor_free(t);
            return fu_fail(FU_E_INTERNAL, "weights: out of memory");
        }
        w->tensors = ts;
        w->cap = cap;
    }
    char *copy = strdup(name);
    if (!copy) {
        fu_tensor_free(t);
        return fu_fail(FU_E_INTERNAL, "weights: out of memory");
    }
    fu_tensor_set_name(t, name);
    w->names[w->n] = copy;
    w->tensors[w->n++] = t;
    return FU_OK;
}

void fu_weights_free(fu_weights *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n; i++) {
        free(w->names[i]);
        fu_tensor_free(w->tensors[i]);
    }
    free(w->names);
    free(w->tensors);
    fu_pt_free(w->pt);
    fu_st_free(w->st);
    free(w);
}

size_t fu_weights_count(const fu_weights *w) {
    if (!w) return 0;
    switch (w->kind) {
    case SRC_PT: return fu_pt_count(w->pt);
    case SRC_SAFETENSORS: return (size_t)w->st->n_entries;
    default: return w->n;
    }
}

const char *fu_weights_name(const fu_weights *w, size_t i) {
    if (!w || i >= fu_weights_count(w)) return NULL;
    switch (w->kind) {
    case SRC_PT: return fu_pt_name(w->pt, i);
    case SRC_SAFETENSORS: return w->st->entries[i].name;
    default: return w->names[i];
    }
}

int fu_weights_has(const fu_weights *w, const char *name) {
    int64_t shape[FU_MAX_DIMS];
    return fu_weights_shape(w, name, shape) >= 0;
}

int fu_weights_shape(const fu_weights *w, const char *name, int64_t shape[FU_MAX_DIMS]) {
    if (!w || !name) return -1;
    if (w->kind == SRC_PT) {
        long i = fu_pt_find(w->pt, name);
        return i < 0 ? -1 : fu_pt_shape(w->pt, (size_t)i, shape);
    }
    if (w->kind == SRC_SAFETENSORS) {
        const fu_st_entry *e = fu_st_find(w->st, name);
        if (!e) return -1;
        memcpy(shape, e->shape, sizeof e->shape);
        return e->ndim;
    }
    long i = table_find(w, name);
    if (i < 0) return -1;
    const fu_tensor *t = w->tensors[i];
    memcpy(shape, t->shape, sizeof t->shape);
    return t->ndim;
}

fu_tensor *fu_weights_get(const fu_weights *w, const char *name) {
    if (!w || !name) return fu_fail_null(FU_E_INPUT, "weights: get needs a source and a name");
    if (w->kind == SRC_PT) return fu_pt_get(w->pt, name);
    if (w->kind == SRC_SAFETENSORS) return fu_st_tensor(w->st, name);
    long i = table_find(w, name);
    if (i < 0) return fu_fail_null(FU_E_INPUT, "weights: no tensor '%s'", name);
    fu_tensor *t = fu_tensor_clone(w->tensors[i]);
    fu_tensor_set_name(t, name);
    return t;
}

fu_tensor *fu_weights_get_numel(const fu_weights *w, const char *name, int64_t numel) {
    fu_tensor *t = fu_weights_get(w, name);
    if (t && t->numel != numel) {
        char s[96];
        fu_fail(FU_E_INPUT, "weights: '%s' has shape %s, expected %lld elements", name,
                fu_shape_str(t, s, sizeof s), (long long)numel);
        fu_tensor_free(t);
        return NULL;
    }
    return t;
}

int fu_weights_reshape(fu_tensor *t, int ndim, const int64_t *shape) {
    if (!t || t->node) return fu_fail(FU_E_INPUT, "weights: reshape needs a leaf tensor");
    int64_t n = fu_shape_numel(ndim, shape);
    if (n != t->numel) return fu_fail(FU_E_INPUT, "weights: reshape of '%s' changes its size", t->name);
    t->ndim = ndim;
    memset(t->shape, 0, sizeof t->shape);
    memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    return FU_OK;
}

static int has_suffix(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n > k && !strcmp(s + n - k, suffix);
}

int fu_weights_open(const char *path, fu_weights **out) {
    *out = NULL;
    if (!path) return fu_fail(FU_E_INPUT, "weights: NULL path");
    fu_pt_file *pt = NULL;
    fu_safetensors *st = NULL;
    if (has_suffix(path, ".safetensors")) {
        if (!(st = fu_st_open(path))) return FU_E_INPUT;
    } else if (has_suffix(path, ".pt") || has_suffix(path, ".pth")) {
        int rc = fu_pt_load(path, &pt);
        if (rc != FU_OK) return rc;
    } else {
        return fu_fail(FU_E_INPUT, "weights: '%s': unknown weight file type (want .safetensors, .pt or .pth)", path);
    }
    fu_weights *w = fu_calloc(1, sizeof *w);
    if (!w) {
        fu_pt_free(pt);
        fu_st_free(st);
        return FU_E_INTERNAL;
    }
    w->kind = pt ? SRC_PT : SRC_SAFETENSORS;
    w->pt = pt;
    w->st = st;
    *out = w;
    return FU_OK;
}

void fu_tensor_sink_put(const fu_tensor_sink *sink, const char *name, fu_tensor *t) {
    if (sink && sink->fn && t) sink->fn(sink->ctx, name, t);
}
