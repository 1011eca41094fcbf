/* Named-tensor sources: an in-memory table, or a weight file read through io/safetensors or
 * io/pt. The file readers keep their own index; this layer only dispatches on the kind. */
#include "gen/weights.h"
#include "core/error.h"
#include "io/pt.h"
#include <stdio.h>
#include <stdlib.h>
#include <cjson/cJSON.h>
#include <string.h>

typedef enum { SRC_TABLE, SRC_PT, SRC_SAFETENSORS } source_kind;

struct fu_weights {
    source_kind kind;
    /* SRC_TABLE */
    char **names;
    fu_tensor **tensors;
    size_t n, cap;
    /* SRC_PT */
    fu_pt_file *pt;
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
    free(w);
}

size_t fu_weights_count(const fu_weights *w) {
    if (!w) return 0;
    return w->kind == SRC_PT ? fu_pt_count(w->pt) : w->n;
}

const char *fu_weights_name(const fu_weights *w, size_t i) {
    if (!w) return NULL;
    if (w->kind == SRC_PT) return fu_pt_name(w->pt, i);
    return i < w->n ? w->names[i] : NULL;
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
    long i = table_find(w, name);
    if (i < 0) return -1;
    const fu_tensor *t = w->tensors[i];
    memcpy(shape, t->shape, sizeof t->shape);
    return t->ndim;
}

fu_tensor *fu_weights_get(const fu_weights *w, const char *name) {
    if (!w || !name) return fu_fail_null(FU_E_INPUT, "weights: get needs a source and a name");
    if (w->kind == SRC_PT) return fu_pt_get(w->pt, name);
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

/* TEMPORARY until io/safetensors.h lands: F32 safetensors into a table. */
static int open_safetensors_tmp(const char *path, fu_weights **out) {
    FILE *f = fopen(path, "rb");
    if (!f) return fu_fail(FU_E_INPUT, "weights: cannot open '%s'", path);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)size);
    if (!buf || fread(buf, 1, (size_t)size, f) != (size_t)size) { fclose(f); free(buf); return fu_fail(FU_E_INPUT, "read"); }
    fclose(f);
    uint64_t hl;
    memcpy(&hl, buf, 8);
    cJSON *h = cJSON_ParseWithLength((const char *)buf + 8, hl);
    fu_weights *w = fu_weights_new_table();
    cJSON *it;
    cJSON_ArrayForEach(it, h) {
        if (!strcmp(it->string, "__metadata__")) continue;
        cJSON *shape = cJSON_GetObjectItem(it, "shape"), *off = cJSON_GetObjectItem(it, "data_offsets");
        int64_t sh[FU_MAX_DIMS]; int nd = 0;
        cJSON *d;
        cJSON_ArrayForEach(d, shape) sh[nd++] = (int64_t)d->valuedouble;
        fu_tensor *t = fu_tensor_new(nd, sh);
        memcpy(t->data, buf + 8 + hl + (size_t)cJSON_GetArrayItem(off, 0)->valuedouble, (size_t)t->numel * 4);
        fu_weights_put(w, it->string, t);
    }
    cJSON_Delete(h);
    free(buf);
    *out = w;
    return FU_OK;
}

int fu_weights_open(const char *path, fu_weights **out) {
    *out = NULL;
    size_t n = strlen(path);
    if (n > 12 && !strcmp(path + n - 12, ".safetensors")) return open_safetensors_tmp(path, out);
    if (n > 3 && !strcmp(path + n - 3, ".pt")) {
        fu_pt_file *pt = NULL;
        int rc = fu_pt_load(path, &pt);
        if (rc != FU_OK) return rc;
        fu_weights *w = fu_calloc(1, sizeof *w);
        if (!w) {
            fu_pt_free(pt);
            return FU_E_INTERNAL;
        }
        w->kind = SRC_PT;
        w->pt = pt;
        *out = w;
        return FU_OK;
    }
    return fu_fail(FU_E_INPUT, "weights: '%s': unknown weight file type (want .safetensors or .pt)", path);
}

void fu_tensor_sink_put(const fu_tensor_sink *sink, const char *name, fu_tensor *t) {
    if (sink && sink->fn && t) sink->fn(sink->ctx, name, t);
}
