#include "safetensors.h"
#include "core/error.h"
#include "io/fileutil.h"
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Largest integer a JSON number (a double in cJSON) holds exactly. */
#define JSON_MAX_EXACT ((double)((uint64_t)1 << 53))

void fu_st_free(fu_safetensors *st) {
    if (!st) return;
    for (int i = 0; i < st->n_entries; i++) free(st->entries[i].name);
    for (int i = 0; i < st->n_meta; i++) { free((char *)st->meta[i].key); free((char *)st->meta[i].value); }
    free(st->entries);
    free(st->meta);
    free(st->file);
    free(st->label);
    free(st);
}

/* A non-negative integral JSON number below 2^53. */
static int json_to_u64(const cJSON *item, uint64_t *out) {
    if (!cJSON_IsNumber(item)) return 0;
    double v = item->valuedouble;
    if (!(v >= 0 && v <= JSON_MAX_EXACT) || v != floor(v)) return 0;
    *out = (uint64_t)v;
    return 1;
}

static int by_name(const void *a, const void *b) {
    return strcmp(((const fu_st_entry *)a)->name, ((const fu_st_entry *)b)->name);
}

static int by_begin(const void *a, const void *b) {
    const fu_st_entry *x = *(const fu_st_entry *const *)a, *y = *(const fu_st_entry *const *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

static int parse_shape(const fu_safetensors *st, const char *name, const cJSON *shape, fu_st_entry *e) {
    if (!cJSON_IsArray(shape))
        return fu_fail(FU_E_INPUT, "%s: tensor '%.80s': shape is not an array", st->label, name);
    int nd = cJSON_GetArraySize(shape);
    if (nd > FU_MAX_DIMS)
        return fu_fail(FU_E_INPUT, "%s: tensor '%.80s': %d dimensions (at most %d supported)", st->label, name, nd, FU_MAX_DIMS);
    e->ndim = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, shape) {
        uint64_t v;
        if (!json_to_u64(d, &v))
            return fu_fail(FU_E_INPUT, "%s: tensor '%.80s': shape entries must be non-negative integers", st->label, name);
        e->shape[e->ndim++] = (int64_t)v;
    }
    /* Element count without overflow: any product beyond what the data area could hold fails. */
    uint64_t limit = st->data_size / fu_dtype_size(e->dtype), n = 1;
    int has_zero = 0;
    for (int i = 0; i < e->ndim; i++) has_zero |= e->shape[i] == 0;
    for (int i = 0; i < e->ndim && !has_zero; i++) {
        uint64_t s = (uint64_t)e->shape[i];
        if (n > limit / s)
            return fu_fail(FU_E_INPUT, "%s: tensor '%.80s': shape larger than the data area", st->label, name);
        n *= s;
    }
    e->numel = has_zero ? 0 : (int64_t)n;
    return FU_OK;
}

static int parse_entry(fu_safetensors *st, const cJSON *item, fu_st_entry *e) {
    const char *name = item->string;
    if (!cJSON_IsObject(item)) return fu_fail(FU_E_INPUT, "%s: entry '%.80s' is not an object", st->label, name);
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(item, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    if (!dtype || !shape || !offs)
        return fu_fail(FU_E_INPUT, "%s: tensor '%.80s': needs dtype, shape and data_offsets", st->label, name);
    int dt = cJSON_IsString(dtype) ? fu_dtype_from_name(dtype->valuestring) : -1;
    if (dt < 0) return fu_fail(FU_E_INPUT, "%s: tensor '%.80s': unknown dtype %.20s", st->label, name, cJSON_IsString(dtype) ? dtype->valuestring : "(not a string)");
    e->dtype = (fu_dtype)dt;
    if (parse_shape(st, name, shape, e)) return FU_E_INPUT;
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 || !json_to_u64(offs->child, &e->begin) ||
        !json_to_u64(offs->child->next, &e->end))
        return fu_fail(FU_E_INPUT, "%s: tensor '%.80s': data_offsets must be two non-negative integers", st->label, name);
    if (e->begin > e->end || e->end > st->data_size)
        return fu_fail(FU_E_INPUT, "%s: tensor '%.80s': data_offsets [%llu, %llu] outside the data area (%llu bytes)",
                       st->label, name, (unsigned long long)e->begin, (unsigned long long)e->end,
                       (unsigned long long)st->data_size);
    uint64_t bytes = (uint64_t)e->numel * fu_dtype_size(e->dtype);
    if (e->end - e->begin != bytes)
        return fu_fail(FU_E_INPUT, "%s: tensor '%.80s': %llu bytes in data_offsets but shape and dtype need %llu",
                       st->label, name, (unsigned long long)(e->end - e->begin), (unsigned long long)bytes);
    if (!(e->name = strdup(name))) return fu_fail(FU_E_INTERNAL, "%s: out of memory", st->label);
    return FU_OK;
}

static int parse_metadata(fu_safetensors *st, const cJSON *meta) {
    if (st->meta) return fu_fail(FU_E_INPUT, "%s: __metadata__ appears twice", st->label);
    if (!cJSON_IsObject(meta)) return fu_fail(FU_E_INPUT, "%s: __metadata__ is not an object", st->label);
    int n = cJSON_GetArraySize(meta);
    if (!(st->meta = fu_calloc((size_t)n, sizeof *st->meta))) return FU_E_INTERNAL;
    const cJSON *kv;
    cJSON_ArrayForEach(kv, meta) {
        if (!cJSON_IsString(kv))
            return fu_fail(FU_E_INPUT, "%s: __metadata__ value of '%.80s' is not a string", st->label, kv->string);
        if (fu_st_meta_get(st, kv->string))
            return fu_fail(FU_E_INPUT, "%s: __metadata__ key '%.80s' appears twice", st->label, kv->string);
        fu_st_meta *m = &st->meta[st->n_meta++];
        m->key = strdup(kv->string);
        m->value = strdup(kv->valuestring);
        if (!m->key || !m->value) return fu_fail(FU_E_INTERNAL, "%s: out of memory", st->label);
    }
    return FU_OK;
}

/* Names unique (entries sorted by name) and byte ranges disjoint (empty ranges overlap nothing). */
static int check_names_and_overlaps(fu_safetensors *st) {
    qsort(st->entries, (size_t)st->n_entries, sizeof *st->entries, by_name);
    for (int i = 1; i < st->n_entries; i++)
        if (!strcmp(st->entries[i - 1].name, st->entries[i].name))
            return fu_fail(FU_E_INPUT, "%s: tensor '%.80s' appears twice", st->label, st->entries[i].name);
    fu_st_entry **order = fu_calloc((size_t)st->n_entries, sizeof *order);
    if (!order) return FU_E_INTERNAL;
    int n = 0;
    for (int i = 0; i < st->n_entries; i++) if (st->entries[i].end > st->entries[i].begin) order[n++] = &st->entries[i];
    qsort(order, (size_t)n, sizeof *order, by_begin);
    int rc = FU_OK;
    for (int i = 1; i < n && !rc; i++)
        if (order[i]->begin < order[i - 1]->end)
            rc = fu_fail(FU_E_INPUT, "%s: tensors '%.80s' and '%.80s' overlap", st->label, order[i - 1]->name, order[i]->name);
    free(order);
    return rc;
}

static int parse_header(fu_safetensors *st, const char *json, size_t len) {
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!root) return fu_fail(FU_E_INPUT, "%s: header is not valid JSON (near byte %td)", st->label, cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() - json : (ptrdiff_t)0);
    int rc = FU_OK;
    for (const char *p = end; p < json + len && !rc; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            rc = fu_fail(FU_E_INPUT, "%s: trailing bytes after the JSON header", st->label);
    if (!rc && !cJSON_IsObject(root)) rc = fu_fail(FU_E_INPUT, "%s: header is not a JSON object", st->label);
    if (!rc) st->entries = fu_calloc((size_t)cJSON_GetArraySize(root), sizeof *st->entries);
    if (!rc && !st->entries) rc = FU_E_INTERNAL;
    const cJSON *item;
    for (item = rc ? NULL : root->child; item && !rc; item = item->next) {
        if (!strcmp(item->string, "__metadata__")) rc = parse_metadata(st, item);
        else if ((rc = parse_entry(st, item, &st->entries[st->n_entries])) == FU_OK) st->n_entries++;
    }
    cJSON_Delete(root);
    return rc ? rc : check_names_and_overlaps(st);
}

/* Takes ownership of file (malloc'ed). */
static fu_safetensors *parse_owned(unsigned char *file, size_t size, const char *label) {
    fu_safetensors *st = fu_calloc(1, sizeof *st);
    if (!st) { free(file); return NULL; }
    st->file = file;
    if (!(st->label = strdup(label ? label : "safetensors"))) { fu_st_free(st); return fu_fail_null(FU_E_INTERNAL, "out of memory"); }
    if (size < 8) { fu_fail(FU_E_INPUT, "%s: too short for a safetensors file (%zu bytes)", st->label, size); fu_st_free(st); return NULL; }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | file[i];
    if (hlen < 2 || hlen > FU_ST_MAX_HEADER || hlen > size - 8) {
        fu_fail(FU_E_INPUT, "%s: header length %llu is invalid (file has %zu bytes, limit %llu)", st->label,
                (unsigned long long)hlen, size, (unsigned long long)FU_ST_MAX_HEADER);
        fu_st_free(st);
        return NULL;
    }
    st->data = file + 8 + hlen;
    st->data_size = size - 8 - hlen;
    /* cJSON gets a NUL-terminated copy: the header need not be followed by a NUL in the file. */
    char *json = fu_malloc((size_t)hlen + 1);
    int rc = json ? FU_OK : FU_E_INTERNAL;
    if (json) {
        memcpy(json, file + 8, (size_t)hlen);
        json[hlen] = 0;
        if (strlen(json) != hlen) rc = fu_fail(FU_E_INPUT, "%s: NUL byte inside the JSON header", st->label);
        if (!rc) rc = parse_header(st, json, (size_t)hlen);
        free(json);
    }
    if (rc) { fu_st_free(st); return NULL; }
    return st;
}

fu_safetensors *fu_st_parse(const void *bytes, size_t size, const char *label) {
    unsigned char *copy = fu_malloc(size);
    if (!copy) return NULL;
    if (size) memcpy(copy, bytes, size);
    return parse_owned(copy, size, label);
}

fu_safetensors *fu_st_open(const char *path) {
    unsigned char *file;
    size_t size;
    if (!path) return fu_fail_null(FU_E_INPUT, "safetensors: NULL path");
    if (fu_read_file(path, SIZE_MAX, &file, &size)) return NULL;
    return parse_owned(file, size, path);
}

const fu_st_entry *fu_st_find(const fu_safetensors *st, const char *name) {
    if (!st || !name) return NULL;
    fu_st_entry key = {.name = (char *)name};
    return bsearch(&key, st->entries, (size_t)st->n_entries, sizeof key, by_name);
}

const char *fu_st_meta_get(const fu_safetensors *st, const char *key) {
    if (!st || !key) return NULL;
    for (int i = 0; i < st->n_meta; i++) if (!strcmp(st->meta[i].key, key)) return st->meta[i].value;
    return NULL;
}

fu_tensor *fu_st_tensor(const fu_safetensors *st, const char *name) {
    if (!st || !name) return fu_fail_null(FU_E_INPUT, "safetensors: NULL file or name");
    const fu_st_entry *e = fu_st_find(st, name);
    if (!e) return fu_fail_null(FU_E_INPUT, "%s: no tensor named '%.80s'", st->label, name);
    fu_tensor *t = fu_tensor_new(e->ndim, e->shape);
    if (!t) return NULL;
    fu_convert_to_f32(e->dtype, st->data + e->begin, t->data, (size_t)e->numel);
    fu_tensor_set_name(t, e->name);
    return t;
}

int fu_st_tensor_exact(const fu_safetensors *st, const char *name, int nd, const int64_t *shape, const char *kind,
                       fu_tensor **out) {
    *out = NULL;
    const fu_st_entry *e = fu_st_find(st, name);
    if (!e) return fu_fail(FU_E_INPUT, "%s: tensor '%s' missing (not a faceup %s file?)", st->label, name, kind);
    int same = e->ndim == nd;
    for (int d = 0; same && d < nd; d++) same = e->shape[d] == shape[d];
    if (!same) return fu_fail(FU_E_INPUT, "%s: tensor '%s' has the wrong shape", st->label, name);
    if (!(*out = fu_st_tensor(st, name))) return fu_last_code();
    for (int64_t k = 0; k < (*out)->numel; k++)
        if (!isfinite((*out)->data[k])) return fu_fail(FU_E_INPUT, "%s: tensor '%s' holds non-finite values", st->label, name);
    return FU_OK;
}

/* ---- writing ---- */

typedef struct strbuf { char *p; size_t len, cap; int failed; } strbuf;

static void sb_putn(strbuf *b, const char *s, size_t n) {
    if (b->failed) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->cap ? b->cap * 2 : 1024) + n;
        char *p = realloc(b->p, cap);
        if (!p) { b->failed = 1; return; }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void sb_puts(strbuf *b, const char *s) { sb_putn(b, s, strlen(s)); }

/* JSON string literal: escapes quote, backslash and control bytes; other bytes pass (UTF-8). */
static void sb_json_string(strbuf *b, const char *s) {
    sb_puts(b, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        if (c == '"' || c == '\\') { esc[0] = '\\'; esc[1] = (char)c; sb_putn(b, esc, 2); }
        else if (c < 0x20) { snprintf(esc, sizeof esc, "\\u%04x", c); sb_puts(b, esc); }
        else sb_putn(b, (const char *)&c, 1);
    }
    sb_puts(b, "\"");
}

static int by_item_name(const void *a, const void *b) {
    return strcmp((*(const fu_st_item *const *)a)->name, (*(const fu_st_item *const *)b)->name);
}

static int check_items(const fu_st_item *items, int n, const fu_st_meta *meta, int n_meta, const char *path) {
    if (n < 0 || n_meta < 0 || (n && !items) || (n_meta && !meta)) return fu_fail(FU_E_INPUT, "%s: bad tensor or metadata list", path);
    for (int i = 0; i < n; i++) {
        const char *name = items[i].name;
        if (!name || !*name || !strcmp(name, "__metadata__"))
            return fu_fail(FU_E_INPUT, "%s: tensor %d has an empty or reserved name", path, i);
        if (!items[i].tensor || !items[i].tensor->data) return fu_fail(FU_E_INPUT, "%s: tensor '%.80s' is NULL", path, name);
        if ((unsigned)items[i].dtype >= FU_DTYPE_COUNT) return fu_fail(FU_E_INPUT, "%s: tensor '%.80s': bad dtype", path, name);
    }
    for (int i = 0; i < n_meta; i++)
        if (!meta[i].key || !meta[i].value) return fu_fail(FU_E_INPUT, "%s: metadata %d has a NULL key or value", path, i);
    return FU_OK;
}

static void sb_header(strbuf *b, const fu_st_item *const *sorted, int n, const fu_st_meta *meta, int n_meta) {
    char num[64];
    uint64_t offset = 0;
    sb_puts(b, "{");
    if (n_meta) {
        sb_puts(b, "\"__metadata__\":{");
        for (int i = 0; i < n_meta; i++) {
            if (i) sb_puts(b, ",");
            sb_json_string(b, meta[i].key);
            sb_puts(b, ":");
            sb_json_string(b, meta[i].value);
        }
        sb_puts(b, n ? "}," : "}");
    }
    for (int i = 0; i < n; i++) {
        const fu_tensor *t = sorted[i]->tensor;
        if (i) sb_puts(b, ",");
        sb_json_string(b, sorted[i]->name);
        sb_puts(b, ":{\"dtype\":");
        sb_json_string(b, fu_dtype_name(sorted[i]->dtype));
        sb_puts(b, ",\"shape\":[");
        for (int d = 0; d < t->ndim; d++) {
            snprintf(num, sizeof num, d ? ",%lld" : "%lld", (long long)t->shape[d]);
            sb_puts(b, num);
        }
        uint64_t bytes = (uint64_t)t->numel * fu_dtype_size(sorted[i]->dtype);
        snprintf(num, sizeof num, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)offset,
                 (unsigned long long)(offset + bytes));
        sb_puts(b, num);
        offset += bytes;
    }
    sb_puts(b, "}");
    while (b->len % 8) sb_puts(b, " ");    /* keeps the data area 8-byte aligned, as other writers do */
}

static void put_le(unsigned char *p, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* Encodes one float as dtype at p; integer types need a finite value within range. */
static int encode(fu_dtype dt, float v, unsigned char *p) {
    static const double lo[FU_DTYPE_COUNT] = {[FU_I64] = -9223372036854775808.0, [FU_I32] = -2147483648.0,
                                              [FU_I16] = -32768, [FU_I8] = -128};
    static const double hi[FU_DTYPE_COUNT] = {[FU_I64] = 9223372036854775807.0, [FU_I32] = 2147483647,
                                              [FU_I16] = 32767, [FU_I8] = 127, [FU_U8] = 255, [FU_BOOL] = 1};
    switch (dt) {
    case FU_F32: memcpy(p, &v, 4); return 1;
    case FU_F16: put_le(p, fu_float_to_half(v), 2); return 1;
    case FU_BF16: put_le(p, fu_float_to_bf16(v), 2); return 1;
    case FU_F64: { double d = v; memcpy(p, &d, 8); return 1; }
    default: break;
    }
    double r = dt == FU_BOOL ? (v != 0) : nearbyint((double)v);
    /* float(INT64_MAX) rounds up to 2^63, so compare strictly for I64. */
    if (!isfinite(v) || r < lo[dt] || r > hi[dt] || (dt == FU_I64 && r >= 9223372036854775808.0)) return 0;
    put_le(p, (uint64_t)(int64_t)r, (int)fu_dtype_size(dt));
    return 1;
}

static int write_data(FILE *f, const fu_st_item *item, const char *path) {
    enum { CHUNK = 4096 };
    unsigned char buf[CHUNK * 8];
    size_t size = fu_dtype_size(item->dtype);
    const fu_tensor *t = item->tensor;
    for (int64_t start = 0; start < t->numel; start += CHUNK) {
        int64_t n = t->numel - start < CHUNK ? t->numel - start : CHUNK;
        for (int64_t i = 0; i < n; i++)
            if (!encode(item->dtype, t->data[start + i], buf + i * size))
                return fu_fail(FU_E_INPUT, "%s: tensor '%.80s': value %g does not fit %s", path, item->name,
                               (double)t->data[start + i], fu_dtype_name(item->dtype));
        if (fwrite(buf, size, (size_t)n, f) != (size_t)n) return fu_fail(FU_E_INPUT, "%s: write failed", path);
    }
    return FU_OK;
}

int fu_st_save(const char *path, const fu_st_item *items, int n, const fu_st_meta *meta, int n_meta) {
    if (!path) return fu_fail(FU_E_INPUT, "safetensors: NULL path");
    if (check_items(items, n, meta, n_meta, path)) return FU_E_INPUT;
    const fu_st_item **sorted = fu_calloc((size_t)n, sizeof *sorted);
    if (!sorted) return FU_E_INTERNAL;
    for (int i = 0; i < n; i++) sorted[i] = &items[i];
    qsort(sorted, (size_t)n, sizeof *sorted, by_item_name);
    int rc = FU_OK;
    for (int i = 1; i < n && !rc; i++)
        if (!strcmp(sorted[i - 1]->name, sorted[i]->name)) rc = fu_fail(FU_E_INPUT, "%s: tensor '%.80s' given twice", path, sorted[i]->name);
    for (int i = 1; i < n_meta && !rc; i++)
        for (int j = 0; j < i && !rc; j++)
            if (!strcmp(meta[i].key, meta[j].key)) rc = fu_fail(FU_E_INPUT, "%s: metadata key '%.80s' given twice", path, meta[i].key);
    strbuf hdr = {0};
    if (!rc) {
        sb_header(&hdr, sorted, n, meta, n_meta);
        if (hdr.failed) rc = fu_fail(FU_E_INTERNAL, "%s: out of memory", path);
    }
    fu_atomic_file af = {0};
    if (!rc) rc = fu_atomic_open(&af, path);
    if (!rc) {
        unsigned char len[8];
        put_le(len, hdr.len, 8);
        if (fwrite(len, 1, 8, af.f) != 8 || fwrite(hdr.p, 1, hdr.len, af.f) != hdr.len) rc = fu_fail(FU_E_INPUT, "%s: write failed", path);
        for (int i = 0; i < n && !rc; i++) rc = write_data(af.f, sorted[i], path);
        if (rc) fu_atomic_abort(&af);
        else rc = fu_atomic_commit(&af);
    }
    free(hdr.p);
    free(sorted);
    return rc;
}
