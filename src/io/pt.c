/* PyTorch checkpoint reader (see pt.h).
 *
 * torch.save (zip format) writes <prefix>/data.pkl, a protocol-2 pickle of the saved object in
 * which each tensor is torch._utils._rebuild_tensor_v2(storage, offset, size, stride,
 * requires_grad, backward_hooks[, metadata]) and each storage a persistent id
 * ('storage', torch.<Type>Storage, key, location, numel) whose bytes are <prefix>/data/<key>
 * (little-endian, numel elements). A state_dict is a collections.OrderedDict whose _metadata
 * attribute arrives through BUILD and is ignored. */
#include "io/pt.h"
#include "io/pickle.h"
#include "io/zip.h"
#include "core/error.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { G_ORDERED_DICT = 1, G_REBUILD_TENSOR_V2, G_REBUILD_TENSOR, G_REBUILD_PARAMETER, G_REBUILD_PARAMETER_STATE,
       G_STORAGE = 100 /* + fu_dtype */ };
enum { OPAQUE_STORAGE = 1, OPAQUE_TENSOR };

typedef struct fu_pt_entry {
    char *name;
    fu_dtype dtype;
    int ndim;
    int64_t shape[FU_MAX_DIMS], stride[FU_MAX_DIMS];
    int64_t offset;           /* in elements from base */
    const uint8_t *base;      /* storage bytes inside fu_pt_file.buf */
} fu_pt_entry;

struct fu_pt_file {
    uint8_t *buf;             /* the whole file */
    size_t size;
    fu_pt_entry *entries;
    size_t count;
    size_t *by_name;          /* entry indices sorted by name */
    char label[128];
};

/* Objects created while unpickling (in the pickle's pool). */
typedef struct { fu_dtype dtype; int64_t numel; const uint8_t *bytes; } pt_storage;
typedef struct { const pt_storage *storage; int ndim; int64_t offset, size[FU_MAX_DIMS], stride[FU_MAX_DIMS]; } pt_view;

typedef struct {
    fu_pt_file *f;
    const fu_zip *zip;
    const char *prefix;       /* "<prefix>/" of the records */
    const uint8_t **checked;  /* per zip entry: its bytes once read (CRC checked once) */
} load_ctx;

/* ---- allow-listed globals ---------------------------------------------------------------- */

static const struct { const char *module, *name; int id; } allowed[] = {
    {"collections", "OrderedDict", G_ORDERED_DICT},
    {"torch._utils", "_rebuild_tensor_v2", G_REBUILD_TENSOR_V2},
    {"torch._utils", "_rebuild_tensor", G_REBUILD_TENSOR},
    {"torch._utils", "_rebuild_parameter", G_REBUILD_PARAMETER},
    {"torch._utils", "_rebuild_parameter_with_state", G_REBUILD_PARAMETER_STATE},
    {"torch", "FloatStorage", G_STORAGE + FU_F32},
    {"torch", "HalfStorage", G_STORAGE + FU_F16},
    {"torch", "BFloat16Storage", G_STORAGE + FU_BF16},
    {"torch", "DoubleStorage", G_STORAGE + FU_F64},
    {"torch", "LongStorage", G_STORAGE + FU_I64},
    {"torch", "IntStorage", G_STORAGE + FU_I32},
    {"torch", "ShortStorage", G_STORAGE + FU_I16},
    {"torch", "CharStorage", G_STORAGE + FU_I8},
    {"torch", "ByteStorage", G_STORAGE + FU_U8},
    {"torch", "BoolStorage", G_STORAGE + FU_BOOL},
};

/* Copy of s for an error message, control characters replaced (names come from the file). */
static const char *printable(const char *s, char *buf, size_t n) {
    size_t i = 0;
    for (; s[i] && i + 1 < n; i++) buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    buf[i] = 0;
    return buf;
}

static fu_pk_value *find_global(fu_pickle *pk, void *ctx, const char *module, const char *name) {
    (void)ctx;
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++) {
        if (strcmp(allowed[i].module, module) == 0 && strcmp(allowed[i].name, name) == 0) {
            fu_pk_value *v = fu_pk_new(pk, FU_PK_GLOBAL);
            if (v) v->id = allowed[i].id;
            return v;
        }
    }
    char m[256], g[256];
    return fu_fail_null(FU_E_INPUT, "%s: refusing pickle global '%s.%s' (loading never runs code)", fu_pk_label(pk),
                        printable(module, m, sizeof m), printable(name, g, sizeof g));
}

/* ---- storages ---------------------------------------------------------------------------- */

static const uint8_t *record_bytes(load_ctx *c, const char *record, uint64_t *size) {
    char path[512];
    if ((size_t)snprintf(path, sizeof path, "%s%s", c->prefix, record) >= sizeof path)
        return fu_fail_null(FU_E_INPUT, "%s: record name too long", c->f->label);
    long i = fu_zip_find(c->zip, path);
    if (i < 0) return NULL;
    if (!c->checked[i] && !(c->checked[i] = fu_zip_read(c->zip, (size_t)i, size))) return NULL;
    *size = c->zip->entries[i].size;
    return c->checked[i];
}

static fu_pk_value *persistent_load(fu_pickle *pk, void *vctx, fu_pk_value *pid) {
    load_ctx *c = vctx;
    const char *label = c->f->label;
    fu_pk_value **t = pid->items;
    if (pid->kind != FU_PK_TUPLE || pid->n != 5 || t[0]->kind != FU_PK_STR || strcmp(t[0]->s, "storage") != 0 ||
        t[1]->kind != FU_PK_GLOBAL || t[1]->id < G_STORAGE || t[2]->kind != FU_PK_STR || t[4]->kind != FU_PK_INT) {
        char d[64];
        return fu_fail_null(FU_E_INPUT, "%s: unexpected persistent id (%s); expected ('storage', type, key, location, numel)",
                            label, fu_pk_describe(pid, d, sizeof d));
    }
    const char *key = t[2]->s;
    if (strlen(key) != t[2]->n || strlen(key) > 200) return fu_fail_null(FU_E_INPUT, "%s: bad storage key", label);
    char record[256];
    snprintf(record, sizeof record, "data/%s", key);
    pt_storage *s = fu_pk_alloc(pk, sizeof *s);
    if (!s) return NULL;
    s->dtype = (fu_dtype)(t[1]->id - G_STORAGE);
    s->numel = t[4]->i;
    uint64_t bytes = 0;
    fu_clear_error();
    s->bytes = record_bytes(c, record, &bytes);
    if (!s->bytes) {
        if (fu_last_code()) return NULL;
        char k[256];
        return fu_fail_null(FU_E_INPUT, "%s: storage '%s' is missing from the archive", label, printable(key, k, sizeof k));
    }
    size_t es = fu_dtype_size(s->dtype);
    if (s->numel < 0 || (uint64_t)s->numel > bytes / es)
        return fu_fail_null(FU_E_INPUT, "%s: storage '%s' claims %lld elements of %zu bytes but its record holds %llu bytes", label,
                            key, (long long)s->numel, es, (unsigned long long)bytes);
    fu_pk_value *v = fu_pk_new(pk, FU_PK_OPAQUE);
    if (!v) return NULL;
    v->id = OPAQUE_STORAGE;
    v->ptr = s;
    return v;
}

/* ---- tensors ----------------------------------------------------------------------------- */

static int read_int_tuple(const fu_pk_value *v, int64_t *out, int *n) {
    if (v->kind != FU_PK_TUPLE || v->n > FU_MAX_DIMS) return -1;
    for (size_t i = 0; i < v->n; i++) {
        if (v->items[i]->kind != FU_PK_INT) return -1;
        out[i] = v->items[i]->i;
    }
    *n = (int)v->n;
    return 0;
}

/* Checks that every element of the view lies inside its storage (overflow-checked). */
static int check_view(const char *label, const pt_view *t) {
    int64_t numel = 1, last = t->offset;
    if (t->offset < 0) return fu_fail(FU_E_INPUT, "%s: tensor with negative storage offset", label);
    for (int d = 0; d < t->ndim; d++) {
        if (t->size[d] < 0 || t->stride[d] < 0) return fu_fail(FU_E_INPUT, "%s: tensor with a negative size or stride", label);
        if (__builtin_mul_overflow(numel, t->size[d], &numel) || numel > FU_MAX_NUMEL)
            return fu_fail(FU_E_INPUT, "%s: tensor too large", label);
    }
    for (int d = 0; d < t->ndim && numel > 0; d++) {
        int64_t span;
        if (__builtin_mul_overflow(t->size[d] - 1, t->stride[d], &span) || __builtin_add_overflow(last, span, &last))
            return fu_fail(FU_E_INPUT, "%s: tensor view overflows", label);
    }
    int64_t have = t->storage->numel;
    if (numel > have && numel > FU_PT_MAX_EXPANDED)
        return fu_fail(FU_E_INPUT, "%s: tensor of %lld elements expanded from a storage of %lld elements", label, (long long)numel, (long long)have);
    if (numel > 0 ? last >= have : t->offset > have)
        return fu_fail(FU_E_INPUT, "%s: tensor view (offset %lld, last element %lld) exceeds its storage of %lld elements", label,
                       (long long)t->offset, (long long)last, (long long)have);
    return FU_OK;
}

static fu_pk_value *rebuild_tensor(fu_pickle *pk, fu_pk_value *args, const char *label) {
    fu_pk_value **a = args->items;
    pt_view *t = fu_pk_alloc(pk, sizeof *t);
    if (!t) return NULL;
    int n_stride = -1;
    if (a[0]->kind != FU_PK_OPAQUE || a[0]->id != OPAQUE_STORAGE || a[1]->kind != FU_PK_INT ||
        read_int_tuple(a[2], t->size, &t->ndim) || read_int_tuple(a[3], t->stride, &n_stride) || n_stride != t->ndim)
        return fu_fail_null(FU_E_INPUT, "%s: malformed _rebuild_tensor arguments (or more than %d dimensions)", label, FU_MAX_DIMS);
    t->storage = a[0]->ptr;
    t->offset = a[1]->i;
    if (check_view(label, t)) return NULL;
    fu_pk_value *v = fu_pk_new(pk, FU_PK_OPAQUE);
    if (!v) return NULL;
    v->id = OPAQUE_TENSOR;
    v->ptr = t;
    return v;
}

static fu_pk_value *reduce(fu_pickle *pk, void *vctx, fu_pk_value *callable, fu_pk_value *args) {
    const char *label = ((load_ctx *)vctx)->f->label;
    size_t n = args->n;
    switch (callable->id) {
    case G_ORDERED_DICT:
        if (n != 0) return fu_fail_null(FU_E_INPUT, "%s: OrderedDict with constructor arguments is not supported", label);
        return fu_pk_new(pk, FU_PK_DICT);
    case G_REBUILD_TENSOR_V2:
        if (n != 6 && n != 7) return fu_fail_null(FU_E_INPUT, "%s: _rebuild_tensor_v2 with %zu arguments", label, n);
        return rebuild_tensor(pk, args, label);
    case G_REBUILD_TENSOR:
        if (n != 4) return fu_fail_null(FU_E_INPUT, "%s: _rebuild_tensor with %zu arguments", label, n);
        return rebuild_tensor(pk, args, label);
    case G_REBUILD_PARAMETER:
    case G_REBUILD_PARAMETER_STATE:
        if (n != (callable->id == G_REBUILD_PARAMETER ? 3u : 4u) || args->items[0]->kind != FU_PK_OPAQUE || args->items[0]->id != OPAQUE_TENSOR)
            return fu_fail_null(FU_E_INPUT, "%s: malformed _rebuild_parameter arguments", label);
        return args->items[0]; /* a Parameter is its data tensor */
    default:
        return fu_fail_null(FU_E_INPUT, "%s: a storage type cannot be called", label);
    }
}

static fu_pk_value *build(fu_pickle *pk, void *vctx, fu_pk_value *obj, fu_pk_value *state) {
    (void)pk, (void)state;
    /* OrderedDict(...).__dict__.update({'_metadata': ...}): attributes, not items; dropped. */
    if (obj->kind == FU_PK_DICT) return obj;
    char d[64];
    return fu_fail_null(FU_E_INPUT, "%s: BUILD on %s is not supported", ((load_ctx *)vctx)->f->label, fu_pk_describe(obj, d, sizeof d));
}

/* ---- flattening nested containers to dotted names --------------------------------------- */

typedef struct {
    load_ctx *c;
    char name[FU_PT_MAX_NAME];
    size_t cap;
    /* Visits left. A tree of values costs at least one pickle byte per value, so a budget of
     * twice the pickle size passes any real file but stops DAGs of shared containers, whose
     * expansion would otherwise grow exponentially with their depth. */
    uint64_t visits_left;
} walker;

static int add_entry(walker *w, const pt_view *t) {
    fu_pt_file *f = w->c->f;
    if (f->count == FU_PT_MAX_ENTRIES) return fu_fail(FU_E_INPUT, "%s: more than %d tensors", f->label, FU_PT_MAX_ENTRIES);
    if (f->count == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        fu_pt_entry *e = realloc(f->entries, cap * sizeof *e);
        if (!e) return fu_fail(FU_E_INTERNAL, "%s: out of memory", f->label);
        f->entries = e;
        w->cap = cap;
    }
    fu_pt_entry *e = &f->entries[f->count];
    memset(e, 0, sizeof *e);
    size_t n = strlen(w->name) + 1;
    if (!(e->name = fu_malloc(n))) return FU_E_INTERNAL;
    memcpy(e->name, w->name, n);
    f->count++;
    e->dtype = t->storage->dtype;
    e->ndim = t->ndim;
    e->offset = t->offset;
    e->base = t->storage->bytes;
    memcpy(e->shape, t->size, sizeof e->shape);
    memcpy(e->stride, t->stride, sizeof e->stride);
    return FU_OK;
}

static int walk(walker *w, const fu_pk_value *v, size_t len, int depth);

/* Appends ".key" (or "key" at the top) to the name, recurses, and restores the name. */
static int walk_child(walker *w, size_t len, const fu_pk_value *key, long index, const fu_pk_value *child, int depth) {
    const char *label = w->c->f->label;
    char num[32];
    const char *k = num;
    if (!key) snprintf(num, sizeof num, "%ld", index);
    else if (key->kind == FU_PK_INT) snprintf(num, sizeof num, "%lld", (long long)key->i);
    else if (key->kind == FU_PK_STR && strlen(key->s) == key->n) k = key->s;
    else {
        char d[64];
        return fu_fail(FU_E_INPUT, "%s: unsupported dict key (%s) under '%s'", label, fu_pk_describe(key, d, sizeof d), w->name);
    }
    size_t klen = strlen(k), sep = len ? 1 : 0;
    if (len + sep + klen >= sizeof w->name) return fu_fail(FU_E_INPUT, "%s: tensor name longer than %d bytes", label, FU_PT_MAX_NAME);
    if (sep) w->name[len] = '.';
    memcpy(w->name + len + sep, k, klen + 1);
    int rc = walk(w, child, len + sep + klen, depth + 1);
    w->name[len] = 0;
    return rc;
}

static int walk(walker *w, const fu_pk_value *v, size_t len, int depth) {
    const char *label = w->c->f->label;
    if (depth > FU_PT_MAX_NESTING) return fu_fail(FU_E_INPUT, "%s: containers nested deeper than %d (or cyclic)", label, FU_PT_MAX_NESTING);
    if (w->visits_left-- == 0) return fu_fail(FU_E_INPUT, "%s: too many objects (containers shared too often)", label);
    if (v->kind == FU_PK_OPAQUE && v->id == OPAQUE_TENSOR) return add_entry(w, v->ptr);
    if (v->kind == FU_PK_DICT) {
        for (size_t i = 0; i < v->n; i++) {
            int rc = walk_child(w, len, v->items[2 * i], 0, v->items[2 * i + 1], depth);
            if (rc) return rc;
        }
    } else if (v->kind == FU_PK_LIST || v->kind == FU_PK_TUPLE) {
        for (size_t i = 0; i < v->n; i++) {
            int rc = walk_child(w, len, NULL, (long)i, v->items[i], depth);
            if (rc) return rc;
        }
    }
    return FU_OK; /* numbers, strings, None, bare storages: not tensors */
}

/* ---- archive layout ---------------------------------------------------------------------- */

static _Thread_local const fu_pt_file *sort_file; /* qsort has no context argument */
static int by_entry_name(const void *a, const void *b) {
    return strcmp(sort_file->entries[*(const size_t *)a].name, sort_file->entries[*(const size_t *)b].name);
}

static int index_names(fu_pt_file *f) {
    f->by_name = malloc((f->count ? f->count : 1) * sizeof *f->by_name);
    if (!f->by_name) return fu_fail(FU_E_INTERNAL, "%s: out of memory", f->label);
    for (size_t i = 0; i < f->count; i++) f->by_name[i] = i;
    sort_file = f;
    qsort(f->by_name, f->count, sizeof *f->by_name, by_entry_name);
    for (size_t i = 1; i < f->count; i++) {
        const char *a = f->entries[f->by_name[i - 1]].name, *b = f->entries[f->by_name[i]].name;
        if (strcmp(a, b) == 0) return fu_fail(FU_E_INPUT, "%s: two tensors are both named '%s'", f->label, a);
    }
    return FU_OK;
}

/* The single "<prefix>/data.pkl" record; prefix (with its slash) goes into prefix[]. */
static int find_pickle(const fu_pt_file *f, const fu_zip *z, char *prefix, size_t n, long *index) {
    *index = -1;
    for (size_t i = 0; i < z->count; i++) {
        const char *name = z->entries[i].name, *slash = strchr(name, '/');
        if (!slash || strcmp(slash, "/data.pkl") != 0) continue;
        if (*index >= 0) return fu_fail(FU_E_INPUT, "%s: archive holds more than one data.pkl", f->label);
        if ((size_t)(slash - name) + 2 > n) return fu_fail(FU_E_INPUT, "%s: archive prefix too long", f->label);
        memcpy(prefix, name, (size_t)(slash - name) + 1);
        prefix[slash - name + 1] = 0;
        *index = (long)i;
    }
    if (*index < 0) return fu_fail(FU_E_INPUT, "%s: no <name>/data.pkl record: not a torch.save archive", f->label);
    return FU_OK;
}

static int check_byteorder(load_ctx *c) {
    uint64_t n = 0;
    fu_clear_error();
    const uint8_t *p = record_bytes(c, "byteorder", &n);
    if (!p) return fu_last_code(); /* absent means little-endian (written before torch 2.1) */
    if (n != 6 || memcmp(p, "little", 6) != 0)
        return fu_fail(FU_E_INPUT, "%s: archive was written on a big-endian machine; not supported", c->f->label);
    return FU_OK;
}

static int is_legacy_format(const uint8_t *p, size_t n) {
    /* Pre-1.6 files start with a pickled magic number, LONG1 0x1950a86a20f9469cfc6c. */
    static const uint8_t magic[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
    return n >= sizeof magic && memcmp(p, magic, sizeof magic) == 0;
}

static int parse_archive(fu_pt_file *f) {
    if (is_legacy_format(f->buf, f->size))
        return fu_fail(FU_E_INPUT, "%s: legacy (pre-1.6) torch.save format is not supported; re-save it with a newer torch "
                       "(torch.save(torch.load(p), p) with the default zip format)", f->label);
    fu_zip z;
    int rc = fu_zip_open(&z, f->buf, f->size, f->label);
    if (rc) return rc;
    char prefix[256];
    long pkl;
    load_ctx c = {f, &z, prefix, NULL};
    rc = find_pickle(f, &z, prefix, sizeof prefix, &pkl);
    if (!rc && !(c.checked = fu_calloc(z.count, sizeof *c.checked))) rc = FU_E_INTERNAL;
    if (!rc) rc = check_byteorder(&c);
    uint64_t pkl_size = 0;
    const uint8_t *pkl_bytes = rc ? NULL : fu_zip_read(&z, (size_t)pkl, &pkl_size);
    if (!rc && !pkl_bytes) rc = fu_last_code();
    fu_pickle *pk = NULL;
    fu_pk_value *root = NULL;
    if (!rc) {
        fu_pk_hooks hooks = {&c, find_global, reduce, build, persistent_load};
        rc = fu_pickle_load(pkl_bytes, pkl_size, f->label, &hooks, &pk, &root);
    }
    if (!rc) {
        walker *w = fu_calloc(1, sizeof *w);
        if (!w) rc = FU_E_INTERNAL;
        else {
            w->c = &c;
            w->visits_left = 2 * (uint64_t)pkl_size + 1024;
            rc = walk(w, root, 0, 0);
            free(w);
        }
    }
    if (!rc) rc = index_names(f);
    fu_pickle_free(pk);
    free(c.checked);
    fu_zip_close(&z);
    return rc;
}

/* ---- public API -------------------------------------------------------------------------- */

static int load_owned(uint8_t *buf, size_t size, const char *label, fu_pt_file **out) {
    fu_pt_file *f = fu_calloc(1, sizeof *f);
    if (!f) { free(buf); return FU_E_INTERNAL; }
    f->buf = buf;
    f->size = size;
    snprintf(f->label, sizeof f->label, "%s", label ? label : "checkpoint");
    int rc = parse_archive(f);
    if (rc) { fu_pt_free(f); return rc; }
    *out = f;
    return FU_OK;
}

int fu_pt_load_memory(const void *data, size_t size, const char *label, fu_pt_file **out) {
    *out = NULL;
    if (!data && size) return fu_fail(FU_E_INPUT, "pt: NULL data");
    uint8_t *buf = fu_malloc(size ? size : 1);
    if (!buf) return FU_E_INTERNAL;
    if (size) memcpy(buf, data, size);
    return load_owned(buf, size, label, out);
}

int fu_pt_load(const char *path, fu_pt_file **out) {
    *out = NULL;
    if (!path) return fu_fail(FU_E_INPUT, "pt: NULL path");
    FILE *fp = fopen(path, "rb");
    if (!fp) return fu_fail(FU_E_INPUT, "%s: cannot open", path);
    long end = fseek(fp, 0, SEEK_END) == 0 ? ftell(fp) : -1;
    if (end < 0 || fseek(fp, 0, SEEK_SET) != 0) { fclose(fp); return fu_fail(FU_E_INPUT, "%s: cannot read (not a regular file?)", path); }
    size_t size = (size_t)end;
    uint8_t *buf = fu_malloc(size ? size : 1);
    if (!buf) { fclose(fp); return FU_E_INTERNAL; }
    size_t got = fread(buf, 1, size, fp);
    fclose(fp);
    if (got != size) { free(buf); return fu_fail(FU_E_INPUT, "%s: read error", path); }
    return load_owned(buf, size, path, out);
}

void fu_pt_free(fu_pt_file *f) {
    if (!f) return;
    for (size_t i = 0; i < f->count; i++) free(f->entries[i].name);
    free(f->entries);
    free(f->by_name);
    free(f->buf);
    free(f);
}

size_t fu_pt_count(const fu_pt_file *f) { return f ? f->count : 0; }

const char *fu_pt_name(const fu_pt_file *f, size_t i) { return f && i < f->count ? f->entries[i].name : NULL; }

int fu_pt_shape(const fu_pt_file *f, size_t i, int64_t shape[FU_MAX_DIMS]) {
    if (!f || i >= f->count) return -1;
    const fu_pt_entry *e = &f->entries[i];
    for (int d = 0; d < e->ndim; d++) shape[d] = e->shape[d];
    return e->ndim;
}

fu_dtype fu_pt_dtype(const fu_pt_file *f, size_t i) { return f && i < f->count ? f->entries[i].dtype : FU_F32; }

long fu_pt_find(const fu_pt_file *f, const char *name) {
    if (!f || !name) return -1;
    size_t lo = 0, hi = f->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(f->entries[f->by_name[mid]].name, name);
        if (c == 0) return (long)f->by_name[mid];
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return -1;
}

/* Copies a strided view into dst in row-major order, one innermost row at a time. */
static void gather(const fu_pt_entry *e, float *dst, int64_t numel) {
    size_t es = fu_dtype_size(e->dtype);
    if (e->ndim == 0) { fu_convert_to_f32(e->dtype, e->base + (size_t)e->offset * es, dst, 1); return; }
    int last = e->ndim - 1;
    int64_t inner = e->shape[last], inner_stride = e->stride[last], idx[FU_MAX_DIMS] = {0};
    for (int64_t row = 0; row < numel / inner; row++) {
        int64_t off = e->offset;
        for (int d = 0; d < last; d++) off += idx[d] * e->stride[d];
        const uint8_t *src = e->base + (size_t)off * es;
        if (inner_stride == 1) fu_convert_to_f32(e->dtype, src, dst, (size_t)inner);
        else for (int64_t j = 0; j < inner; j++) fu_convert_to_f32(e->dtype, src + (size_t)(j * inner_stride) * es, dst + j, 1);
        dst += inner;
        for (int d = last - 1; d >= 0 && ++idx[d] == e->shape[d]; d--) idx[d] = 0;
    }
}

fu_tensor *fu_pt_get_index(const fu_pt_file *f, size_t i) {
    if (!f || i >= f->count) return fu_fail_null(FU_E_INPUT, "pt: tensor index %zu out of range", i);
    const fu_pt_entry *e = &f->entries[i];
    fu_tensor *t = fu_tensor_new(e->ndim, e->shape);
    if (!t) return NULL;
    if (t->numel > 0) gather(e, t->data, t->numel);
    fu_tensor_set_name(t, e->name);
    return t;
}

fu_tensor *fu_pt_get(const fu_pt_file *f, const char *name) {
    long i = fu_pt_find(f, name);
    if (i < 0) return fu_fail_null(FU_E_INPUT, "%s: no tensor named '%s'", f ? f->label : "pt", name ? name : "(null)");
    return fu_pt_get_index(f, (size_t)i);
}
