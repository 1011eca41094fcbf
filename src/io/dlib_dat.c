/* dlib shape_predictor reader: the format is described in dlib_dat.h. */
#include "dlib_dat.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "faceup.h"
#include "io/fileutil.h"

#define MAX_PARTS 10000
#define MAX_SPLITS_PER_TREE (1 << 20)
#define MAX_FILE_BYTES ((size_t)1 << 30)
/* Smallest encodings: an integer takes 2 bytes, a float 4, a split 8, a point 8. */
#define MIN_INT_BYTES 2
#define MIN_FLOAT_BYTES 4

typedef struct {
    const unsigned char *p;
    size_t left;
    const char *label, *field;   /* field: what is being read, for messages */
    int failed;
} cursor;

static int bad(cursor *c, const char *why) {
    if (!c->failed) fu_fail(FU_E_INPUT, "%s: not a dlib shape_predictor: %s (%s)", c->label, why, c->field);
    c->failed = 1;
    return -1;
}

/* dlib integer: control byte (count in the low nibble, 0x80 = negative), then magnitude bytes. */
static int read_int(cursor *c, int is_signed, int max_bytes, int64_t *out) {
    if (c->failed) return -1;
    if (c->left < 1) return bad(c, "file ends early");
    unsigned ctrl = c->p[0];
    int negative = (ctrl & 0x80) != 0;
    unsigned n = ctrl & 0x0F;
    if (!is_signed && negative) return bad(c, "negative value for an unsigned field");
    if ((ctrl & 0x70) || n == 0 || n > (unsigned)max_bytes) return bad(c, "bad integer encoding");
    if (c->left < 1 + (size_t)n) return bad(c, "file ends early");
    uint64_t mag = 0;
    for (unsigned i = n; i > 0; i--) mag = (mag << 8) | c->p[i];
    c->p += 1 + n;
    c->left -= 1 + n;
    if (mag > (uint64_t)INT64_MAX) return bad(c, "integer out of range");
    *out = negative ? -(int64_t)mag : (int64_t)mag;
    return 0;
}

static int read_float(cursor *c, float *out) {
    if (c->failed) return -1;
    if (c->left >= 1 && (c->p[0] & 0x70)) return bad(c, "dlib's old ASCII float format is not supported");
    int64_t mantissa, exponent;
    if (read_int(c, 1, 8, &mantissa) || read_int(c, 1, 2, &exponent)) return -1;
    if (exponent >= 32000) return bad(c, "infinite or NaN value");
    double v = ldexp((double)mantissa, (int)exponent);
    if (!isfinite(v) || fabs(v) > 3.4e38) return bad(c, "value out of float range");
    *out = (float)v;
    return 0;
}

/* A vector/matrix size, refused when the bytes left cannot hold that many elements. */
static int read_count(cursor *c, size_t min_elem_bytes, int64_t max, int64_t *n) {
    if (read_int(c, 0, 8, n)) return -1;
    if (*n > max || (uint64_t)*n > c->left / min_elem_bytes) return bad(c, "count larger than the file allows");
    return 0;
}

/* Column matrix of exactly `want` floats (want < 0: any length, returned in *got). */
static int read_column(cursor *c, int64_t want, float *dst, int64_t *got) {
    int64_t nr, nc;
    if (read_int(c, 1, 8, &nr) || read_int(c, 1, 8, &nc)) return -1;
    nr = nr < 0 ? -nr : nr;
    nc = nc < 0 ? -nc : nc;
    if (nc != 1) return bad(c, "expected a column vector");
    if (nr > (int64_t)(c->left / MIN_FLOAT_BYTES)) return bad(c, "count larger than the file allows");
    if (want >= 0 && nr != want) return bad(c, "vector length does not match the number of parts");
    if (got) *got = nr;
    for (int64_t i = 0; i < nr && dst; i++)
        if (read_float(c, &dst[i])) return -1;
    return 0;
}

/* Growable array: ensures room for `need` elements of `elem` bytes. */
static int reserve(cursor *c, void **arr, int64_t *cap, int64_t need, size_t elem) {
    if (need <= *cap) return 0;
    int64_t n = *cap ? *cap : 64;
    while (n < need) n *= 2;
    void *p = realloc(*arr, (size_t)n * elem);
    if (!p) {
        c->failed = 1;
        fu_fail(FU_E_INTERNAL, "%s: out of memory reading the shape predictor", c->label);
        return -1;
    }
    *arr = p;
    *cap = n;
    return 0;
}

typedef struct { int64_t splits, leaves, trees; } capacities;

static int read_tree(cursor *c, fu_shape_predictor *sp, capacities *cap) {
    int64_t n_splits, n_leaves, dim = 2 * (int64_t)sp->n_parts;
    c->field = "tree splits";
    if (read_count(c, 3 * MIN_INT_BYTES, MAX_SPLITS_PER_TREE, &n_splits)) return -1;
    if (reserve(c, (void **)&sp->splits, &cap->splits, sp->total_splits + n_splits, sizeof *sp->splits)) return -1;
    for (int64_t i = 0; i < n_splits; i++) {
        int64_t a, b;
        fu_dlib_split *s = &sp->splits[sp->total_splits + i];
        if (read_int(c, 0, 8, &a) || read_int(c, 0, 8, &b) || read_float(c, &s->thresh)) return -1;
        if (a > UINT32_MAX || b > UINT32_MAX) return bad(c, "feature index out of range");
        s->idx1 = (uint32_t)a;
        s->idx2 = (uint32_t)b;
    }
    c->field = "tree leaves";
    if (read_count(c, 2 * MIN_INT_BYTES, MAX_SPLITS_PER_TREE + 1, &n_leaves)) return -1;
    if (n_leaves != n_splits + 1 || (n_leaves & (n_leaves - 1)))
        return bad(c, "a tree needs splits + 1 leaves, a power of two");
    if (reserve(c, (void **)&sp->leaves, &cap->leaves, (sp->total_leaves + n_leaves) * dim, sizeof(float))) return -1;
    for (int64_t i = 0; i < n_leaves; i++)
        if (read_column(c, dim, sp->leaves + (sp->total_leaves + i) * dim, NULL)) return -1;
    if (reserve(c, (void **)&sp->trees, &cap->trees, sp->total_trees + 1, sizeof *sp->trees)) return -1;
    sp->trees[sp->total_trees++] = (fu_dlib_tree){sp->total_splits, n_splits, sp->total_leaves};
    sp->total_splits += n_splits;
    sp->total_leaves += n_leaves;
    return 0;
}

static int read_forests(cursor *c, fu_shape_predictor *sp) {
    int64_t n_cascades;
    capacities cap = {0, 0, 0};
    c->field = "forests";
    if (read_count(c, MIN_INT_BYTES, 100000, &n_cascades)) return -1;
    sp->n_cascades = (int)n_cascades;
    if (!(sp->cascades = fu_calloc((size_t)n_cascades + 1, sizeof *sp->cascades))) return c->failed = 1, -1;
    for (int64_t k = 0; k < n_cascades; k++) {
        int64_t n_trees;
        c->field = "forest";
        if (read_count(c, 2 * MIN_INT_BYTES, INT32_MAX, &n_trees)) return -1;
        sp->cascades[k].tree_begin = sp->total_trees;
        sp->cascades[k].n_trees = n_trees;
        for (int64_t t = 0; t < n_trees; t++)
            if (read_tree(c, sp, &cap)) return -1;
    }
    return 0;
}

/* anchor_idx and deltas: per cascade, the same number of feature pixels. */
static int read_pixels(cursor *c, fu_shape_predictor *sp) {
    int64_t n, cap_a = 0, cap_d = 0;
    c->field = "anchor_idx";
    if (read_count(c, MIN_INT_BYTES, INT32_MAX, &n)) return -1;
    if (n != sp->n_cascades) return bad(c, "one pixel list per cascade expected");
    for (int k = 0; k < sp->n_cascades; k++) {
        int64_t m;
        if (read_count(c, MIN_INT_BYTES, INT32_MAX, &m)) return -1;
        if (reserve(c, (void **)&sp->anchor_idx, &cap_a, sp->total_pixels + m, sizeof *sp->anchor_idx)) return -1;
        sp->cascades[k].pixel_begin = sp->total_pixels;
        sp->cascades[k].n_pixels = m;
        for (int64_t i = 0; i < m; i++) {
            int64_t a;
            if (read_int(c, 0, 8, &a)) return -1;
            if (a >= sp->n_parts) return bad(c, "anchor part index out of range");
            sp->anchor_idx[sp->total_pixels + i] = (uint32_t)a;
        }
        sp->total_pixels += m;
    }
    c->field = "deltas";
    if (read_count(c, MIN_INT_BYTES, INT32_MAX, &n)) return -1;
    if (n != sp->n_cascades) return bad(c, "one delta list per cascade expected");
    for (int k = 0; k < sp->n_cascades; k++) {
        int64_t m;
        if (read_count(c, 2 * MIN_FLOAT_BYTES, INT32_MAX, &m)) return -1;
        if (m != sp->cascades[k].n_pixels) return bad(c, "deltas and anchor_idx differ in length");
        int64_t at = sp->cascades[k].pixel_begin * 2;
        if (reserve(c, (void **)&sp->deltas, &cap_d, at + 2 * m, sizeof(float))) return -1;
        for (int64_t i = 0; i < 2 * m; i++)
            if (read_float(c, &sp->deltas[at + i])) return -1;
    }
    return 0;
}

/* Split features must index the pixels of their own cascade. */
static int check_split_indices(cursor *c, const fu_shape_predictor *sp) {
    for (int k = 0; k < sp->n_cascades; k++) {
        const fu_dlib_cascade *cs = &sp->cascades[k];
        for (int64_t t = cs->tree_begin; t < cs->tree_begin + cs->n_trees; t++)
            for (int64_t s = 0; s < sp->trees[t].n_splits; s++) {
                const fu_dlib_split *sp_ = &sp->splits[sp->trees[t].split_begin + s];
                if (sp_->idx1 >= cs->n_pixels || sp_->idx2 >= cs->n_pixels) {
                    c->field = "tree splits";
                    return bad(c, "split feature index beyond the cascade's pixels");
                }
            }
    }
    return 0;
}

fu_shape_predictor *fu_dlib_parse_shape_predictor(const void *data, size_t size, const char *label) {
    cursor c = {data, size, label ? label : "shape predictor", "version", 0};
    fu_shape_predictor *sp = fu_calloc(1, sizeof *sp);
    if (!sp) return NULL;
    int64_t version, n_floats;
    if (read_int(&c, 1, 8, &version)) goto fail;
    if (version != 1) { bad(&c, "unsupported version (expected 1)"); goto fail; }
    c.field = "initial_shape";
    cursor peek = c;
    if (read_column(&peek, -1, NULL, &n_floats)) { c = peek; goto fail; }
    if (n_floats < 2 || n_floats % 2 || n_floats > 2 * MAX_PARTS) { bad(&c, "bad number of parts"); goto fail; }
    sp->n_parts = (int)(n_floats / 2);
    if (!(sp->initial_shape = fu_malloc((size_t)n_floats * sizeof(float)))) goto fail;
    if (read_column(&c, n_floats, sp->initial_shape, NULL) || read_forests(&c, sp) || read_pixels(&c, sp) ||
        check_split_indices(&c, sp))
        goto fail;
    if (c.left != 0) { c.field = "end"; bad(&c, "trailing bytes after the model"); goto fail; }
    return sp;
fail:
    fu_shape_predictor_free(sp);
    return NULL;
}

fu_shape_predictor *fu_dlib_load_shape_predictor(const char *path) {
    unsigned char *data;
    size_t size;
    if (fu_read_file(path, MAX_FILE_BYTES, &data, &size) != FU_OK) return NULL;
    fu_shape_predictor *sp = fu_dlib_parse_shape_predictor(data, size, path);
    free(data);
    return sp;
}

void fu_shape_predictor_free(fu_shape_predictor *sp) {
    if (!sp) return;
    free(sp->initial_shape);
    free(sp->cascades);
    free(sp->trees);
    free(sp->splits);
    free(sp->leaves);
    free(sp->anchor_idx);
    free(sp->deltas);
    free(sp);
}

/* ---------- writer ---------- */

typedef struct { unsigned char *p; size_t n, cap; int failed; } sink;

static void put_bytes(sink *s, const unsigned char *b, size_t n) {
    if (s->failed) return;
    if (s->n + n > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 4096;
        while (cap < s->n + n) cap *= 2;
        unsigned char *p = realloc(s->p, cap);
        if (!p) { s->failed = 1; return; }
        s->p = p;
        s->cap = cap;
    }
    memcpy(s->p + s->n, b, n);
    s->n += n;
}

static void put_int(sink *s, int64_t v) {
    unsigned char b[9];
    uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    unsigned n = 0;
    do { b[++n] = (unsigned char)(mag & 0xFF); mag >>= 8; } while (mag);
    b[0] = (unsigned char)(n | (v < 0 ? 0x80 : 0));
    put_bytes(s, b, n + 1);
}

/* mantissa * 2^exponent with a 64-bit integer mantissa, as dlib's float_details. */
static void put_float(sink *s, float f) {
    int e;
    double m = frexp((double)f, &e);               /* f = m * 2^e, 0.5 <= |m| < 1 */
    put_int(s, (int64_t)ldexp(m, 62));
    put_int(s, e - 62);
}

static void put_column(sink *s, const float *v, int64_t n) {
    put_int(s, -n);
    put_int(s, -1);
    for (int64_t i = 0; i < n; i++) put_float(s, v[i]);
}

int fu_dlib_serialize_shape_predictor(const fu_shape_predictor *sp, unsigned char **data, size_t *size) {
    sink s = {0};
    int64_t dim = 2 * (int64_t)sp->n_parts;
    put_int(&s, 1);
    put_column(&s, sp->initial_shape, dim);
    put_int(&s, sp->n_cascades);
    for (int k = 0; k < sp->n_cascades; k++) {
        const fu_dlib_cascade *cs = &sp->cascades[k];
        put_int(&s, cs->n_trees);
        for (int64_t t = cs->tree_begin; t < cs->tree_begin + cs->n_trees; t++) {
            const fu_dlib_tree *tr = &sp->trees[t];
            put_int(&s, tr->n_splits);
            for (int64_t i = 0; i < tr->n_splits; i++) {
                const fu_dlib_split *x = &sp->splits[tr->split_begin + i];
                put_int(&s, x->idx1);
                put_int(&s, x->idx2);
                put_float(&s, x->thresh);
            }
            put_int(&s, tr->n_splits + 1);
            for (int64_t i = 0; i <= tr->n_splits; i++) put_column(&s, sp->leaves + (tr->leaf_begin + i) * dim, dim);
        }
    }
    put_int(&s, sp->n_cascades);
    for (int k = 0; k < sp->n_cascades; k++) {
        put_int(&s, sp->cascades[k].n_pixels);
        for (int64_t i = 0; i < sp->cascades[k].n_pixels; i++) put_int(&s, sp->anchor_idx[sp->cascades[k].pixel_begin + i]);
    }
    put_int(&s, sp->n_cascades);
    for (int k = 0; k < sp->n_cascades; k++) {
        put_int(&s, sp->cascades[k].n_pixels);
        for (int64_t i = 0; i < 2 * sp->cascades[k].n_pixels; i++) put_float(&s, sp->deltas[2 * sp->cascades[k].pixel_begin + i]);
    }
    if (s.failed) {
        free(s.p);
        return fu_fail(FU_E_INTERNAL, "dlib: out of memory serialising a shape predictor");
    }
    *data = s.p;
    *size = s.n;
    return FU_OK;
}
