/* The augmented extractor's file (see face_extractor.h). */
#include "face_extractor.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "faceup.h"
#include "io/safetensors.h"

#define PREFIX "backbone."
#define MAX_ITEMS 256

fu_face_extractor *fu_face_extractor_new(fu_dlib_resnet *net, fu_heads *heads, float threshold, float slope) {
    fu_face_extractor *x = fu_calloc(1, sizeof *x);
    fu_tensor *c = x ? fu_tensor_newv(1, (int64_t)2) : NULL;
    if (!c) {
        free(x);
        fu_dlib_resnet_free(net);
        fu_heads_free(heads);
        return fu_fail_null(FU_E_INTERNAL, "extractor: out of memory");
    }
    c->data[0] = threshold, c->data[1] = slope;
    fu_tensor_set_name(c, "comparer");
    *x = (fu_face_extractor){net, heads, c};
    return x;
}

void fu_face_extractor_free(fu_face_extractor *x) {
    if (!x) return;
    fu_dlib_resnet_free(x->net);
    fu_heads_free(x->heads);
    fu_tensor_free(x->comparer);
    free(x);
}

/* ------------------------------------------------------------------ load */

static int copy_backbone(const fu_safetensors *st, fu_dlib_resnet *net) {
    for (int i = 0; i < fu_dlib_resnet_n_params(net); i++) {
        fu_tensor *p = fu_dlib_resnet_param(net, i);
        char name[128];
        snprintf(name, sizeof name, PREFIX "%s", p->name);
        fu_tensor *t = NULL;
        int rc = fu_st_tensor_exact(st, name, p->ndim, p->shape, "extractor", &t);
        if (rc == FU_OK) memcpy(p->data, t->data, (size_t)t->numel * sizeof(float));
        fu_tensor_free(t);
        if (rc != FU_OK) return rc;
    }
    return FU_OK;
}

static int read_comparer(const fu_safetensors *st, fu_tensor **out) {
    const fu_st_entry *e = fu_st_find(st, "comparer");
    if (!e || e->ndim != 1 || e->shape[0] != 2) return fu_fail(FU_E_INPUT, "%s: tensor 'comparer' [2] missing", st->label);
    if (!(*out = fu_st_tensor(st, "comparer"))) return fu_last_code();
    if (!isfinite((*out)->data[0]) || !isfinite((*out)->data[1]) || !((*out)->data[1] > 0))
        return fu_fail(FU_E_INPUT, "%s: comparer threshold/slope must be finite with a positive slope", st->label);
    fu_tensor_set_name(*out, "comparer");
    return FU_OK;
}

fu_face_extractor *fu_face_extractor_load(const char *path) {
    fu_heads *heads = fu_heads_load(path);
    if (!heads) return NULL;
    fu_safetensors *st = fu_st_open(path);
    fu_dlib_resnet *net = st ? fu_dlib_resnet_alloc() : NULL;
    fu_tensor *comparer = NULL;
    int rc = net ? copy_backbone(st, net) : fu_last_code();
    if (rc == FU_OK) rc = read_comparer(st, &comparer);
    fu_st_free(st);
    fu_face_extractor *x = NULL;
    if (rc == FU_OK && (x = fu_face_extractor_new(net, heads, comparer->data[0], comparer->data[1]))) net = NULL, heads = NULL;
    fu_tensor_free(comparer);
    fu_dlib_resnet_free(net);
    fu_heads_free(heads);
    return x;
}

/* ------------------------------------------------------------------ save */

int fu_face_extractor_save(const fu_face_extractor *x, const char *path, fu_dtype backbone_dtype, const fu_st_item *extra,
                           int n_extra, const char *const *meta_kv, int n_meta) {
    char names[MAX_ITEMS][64];
    fu_st_item items[MAX_ITEMS];
    int n = 0;
    for (int i = 0; i < fu_dlib_resnet_n_params(x->net); i++, n++) {
        fu_tensor *p = fu_dlib_resnet_param(x->net, i);
        snprintf(names[n], sizeof names[n], PREFIX "%s", p->name);
        items[n] = (fu_st_item){names[n], p, backbone_dtype};
    }
    fu_tensor *owned[FU_HEADS_OWNED];
    int rc = fu_heads_items(x->heads, names + n, items + n, owned);
    if (rc != FU_OK) return rc;
    n += FU_HEADS_ITEMS;
    items[n++] = (fu_st_item){"comparer", x->comparer, FU_F32};
    if (n_extra < 0 || n + n_extra > MAX_ITEMS) {
        fu_heads_items_release(owned);
        return fu_fail(FU_E_INTERNAL, "extractor: too many tensors to save");
    }
    for (int k = 0; k < n_extra; k++) items[n++] = extra[k];
    fu_st_meta meta[8];
    if (n_meta > 8) n_meta = 8;
    for (int k = 0; k < n_meta; k++) meta[k] = (fu_st_meta){meta_kv[2 * k], meta_kv[2 * k + 1]};
    rc = fu_st_save(path, items, n, meta, n_meta);
    fu_heads_items_release(owned);
    return rc;
}
