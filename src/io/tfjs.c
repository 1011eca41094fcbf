#include "tfjs.h"
#include "core/error.h"
#include "io/dtype.h"
#include "io/fileutil.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Largest model.json read. */
#define MAX_JSON_BYTES ((size_t)256 << 20)

/* ---------- small helpers ---------- */

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = fu_malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

int64_t fu_base64_decode(const char *in, size_t len, unsigned char *out) {
    uint32_t acc = 0;
    int bits = 0;
    int64_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        int v;
        if (c >= 'A' && c <= 'Z') v = c - 'A';
        else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
        else if (c >= '0' && c <= '9') v = c - '0' + 52;
        else if (c == '+' || c == '-') v = 62;   /* '-' and '_': the URL-safe alphabet */
        else if (c == '/' || c == '_') v = 63;
        else if (c == '=') break;
        else return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    return n;
}

/* TF's JSON writes int64 as a string ("3"); some writers use numbers. */
static int json_int64(const cJSON *j, int64_t *out) {
    if (cJSON_IsNumber(j)) {
        double v = j->valuedouble;
        if (v != floor(v) || fabs(v) > 9007199254740992.0) return 0;
        *out = (int64_t)v;
        return 1;
    }
    if (!cJSON_IsString(j) || !j->valuestring[0]) return 0;
    char *end;
    errno = 0;
    long long v = strtoll(j->valuestring, &end, 10);
    if (errno || *end) return 0;
    *out = v;
    return 1;
}

/* Floats may be numbers or the strings "NaN", "Infinity", "-Infinity". */
static int json_double(const cJSON *j, double *out) {
    if (cJSON_IsNumber(j)) { *out = j->valuedouble; return 1; }
    if (!cJSON_IsString(j)) return 0;
    if (!strcmp(j->valuestring, "NaN")) *out = NAN;
    else if (!strcmp(j->valuestring, "Infinity")) *out = INFINITY;
    else if (!strcmp(j->valuestring, "-Infinity")) *out = -INFINITY;
    else return 0;
    return 1;
}

static char *decode_b64_str(const char *s, size_t *len) {
    size_t n = strlen(s);
    unsigned char *d = fu_malloc(n / 4 * 3 + 4);
    if (!d) return NULL;
    int64_t k = fu_base64_decode(s, n, d);
    if (k < 0) { free(d); return NULL; }
    d[k] = 0;
    *len = (size_t)k;
    return (char *)d;
}

/* ---------- attributes ---------- */

static void attr_free(fu_tfjs_attr *a) {
    free(a->key);
    free(a->s);
    free(a->ints);
    free(a->floats);
    if (a->strs) for (int i = 0; i < a->n; i++) free(a->strs[i]);
    free(a->strs);
}

static int parse_shape(const cJSON *shape, fu_tfjs_attr *a) {
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(shape, "unknownRank"))) { a->ndim = -1; return 1; }
    const cJSON *dims = cJSON_GetObjectItemCaseSensitive(shape, "dim"), *d;
    a->ndim = 0;
    if (!dims) return 1;                           /* a scalar */
    if (!cJSON_IsArray(dims) || cJSON_GetArraySize(dims) > FU_MAX_DIMS) return 0;
    cJSON_ArrayForEach(d, dims) {
        const cJSON *size = cJSON_GetObjectItemCaseSensitive(d, "size");
        int64_t v = 0;                             /* TF omits zero-valued fields */
        if (size && !json_int64(size, &v)) return 0;
        if (v < -1) return 0;
        a->shape[a->ndim++] = v;
    }
    return 1;
}

static int parse_list(const cJSON *list, fu_tfjs_attr *a) {
    const cJSON *arr, *e;
    if ((arr = cJSON_GetObjectItemCaseSensitive(list, "i")) || (arr = cJSON_GetObjectItemCaseSensitive(list, "b"))) {
        int is_bool = !strcmp(arr->string, "b");
        if (!cJSON_IsArray(arr)) return 0;
        a->ints = fu_calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof(int64_t));
        if (!a->ints) return 0;
        cJSON_ArrayForEach(e, arr) {
            if (is_bool) {
                if (!cJSON_IsBool(e)) return 0;
                a->ints[a->n++] = cJSON_IsTrue(e);
            } else if (!json_int64(e, &a->ints[a->n++])) return 0;
        }
    } else if ((arr = cJSON_GetObjectItemCaseSensitive(list, "f"))) {
        if (!cJSON_IsArray(arr)) return 0;
        a->floats = fu_calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof(double));
        if (!a->floats) return 0;
        cJSON_ArrayForEach(e, arr) if (!json_double(e, &a->floats[a->n++])) return 0;
    } else if ((arr = cJSON_GetObjectItemCaseSensitive(list, "s")) || (arr = cJSON_GetObjectItemCaseSensitive(list, "type"))) {
        int is_b64 = !strcmp(arr->string, "s");
        if (!cJSON_IsArray(arr)) return 0;
        a->strs = fu_calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof(char *));
        if (!a->strs) return 0;
        cJSON_ArrayForEach(e, arr) {
            if (!cJSON_IsString(e)) return 0;
            size_t len;
            char *s = is_b64 ? decode_b64_str(e->valuestring, &len) : dup_str(e->valuestring);
            if (!s) return 0;
            a->strs[a->n++] = s;
        }
    }
    /* An empty list ({}) or a list of shapes/tensors/funcs: kept with n = 0. */
    return 1;
}

static int parse_attr(const cJSON *j, fu_tfjs_attr *a) {
    const cJSON *v;
    if (!cJSON_IsObject(j)) return 0;
    if ((v = cJSON_GetObjectItemCaseSensitive(j, "i"))) { a->kind = FU_TFJS_ATTR_INT; return json_int64(v, &a->i); }
    if ((v = cJSON_GetObjectItemCaseSensitive(j, "f"))) { a->kind = FU_TFJS_ATTR_FLOAT; return json_double(v, &a->f); }
    if ((v = cJSON_GetObjectItemCaseSensitive(j, "b"))) {
        a->kind = FU_TFJS_ATTR_BOOL;
        a->i = cJSON_IsTrue(v);
        return cJSON_IsBool(v);
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(j, "s"))) {
        a->kind = FU_TFJS_ATTR_STRING;
        return cJSON_IsString(v) && (a->s = decode_b64_str(v->valuestring, &a->s_len)) != NULL;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(j, "type"))) {
        a->kind = FU_TFJS_ATTR_TYPE;
        return cJSON_IsString(v) && (a->s = dup_str(v->valuestring)) != NULL;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(j, "shape"))) { a->kind = FU_TFJS_ATTR_SHAPE; return parse_shape(v, a); }
    if ((v = cJSON_GetObjectItemCaseSensitive(j, "list"))) { a->kind = FU_TFJS_ATTR_LIST; return parse_list(v, a); }
    if ((v = cJSON_GetObjectItemCaseSensitive(j, "tensor"))) { a->kind = FU_TFJS_ATTR_TENSOR; return 1; }
    a->kind = FU_TFJS_ATTR_OTHER;
    return 1;
}

/* ---------- nodes ---------- */

static void node_free(fu_tfjs_node *n) {
    free(n->name);
    free(n->op);
    for (int i = 0; i < n->n_inputs; i++) free(n->inputs[i].node);
    free(n->inputs);
    for (int i = 0; i < n->n_attrs; i++) attr_free(&n->attrs[i]);
    free(n->attrs);
}

/* "name", "name:k" (k a non-negative integer); "^name" (control) returns 0 = skip. */
static int parse_input(const char *s, fu_tfjs_input *in) {
    if (s[0] == '^') return 0;
    const char *colon = strrchr(s, ':');
    size_t len = strlen(s);
    in->index = 0;
    if (colon && colon[1]) {
        char *end;
        errno = 0;
        long k = strtol(colon + 1, &end, 10);
        if (!*end && !errno && k >= 0 && k < 65536) { in->index = (int)k; len = (size_t)(colon - s); }
    }
    in->node = fu_malloc(len + 1);
    if (!in->node) return -1;
    memcpy(in->node, s, len);
    in->node[len] = 0;
    return 1;
}

static int parse_node(const char *label, const cJSON *j, fu_tfjs_node *n) {
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(j, "name"), *op = cJSON_GetObjectItemCaseSensitive(j, "op");
    if (!cJSON_IsString(name) || !cJSON_IsString(op) || !name->valuestring[0])
        return fu_fail(FU_E_INPUT, "%s: a graph node lacks a name or an op", label);
    if (!(n->name = dup_str(name->valuestring)) || !(n->op = dup_str(op->valuestring))) return FU_E_INTERNAL;
    const cJSON *inputs = cJSON_GetObjectItemCaseSensitive(j, "input"), *e;
    if (inputs) {
        if (!cJSON_IsArray(inputs)) return fu_fail(FU_E_INPUT, "%s: node '%.80s': input is not an array", label, n->name);
        n->inputs = fu_calloc((size_t)cJSON_GetArraySize(inputs) + 1, sizeof *n->inputs);
        if (!n->inputs) return FU_E_INTERNAL;
        cJSON_ArrayForEach(e, inputs) {
            if (!cJSON_IsString(e)) return fu_fail(FU_E_INPUT, "%s: node '%.80s': an input is not a string", label, n->name);
            int r = parse_input(e->valuestring, &n->inputs[n->n_inputs]);
            if (r < 0) return FU_E_INTERNAL;
            n->n_inputs += r;
        }
    }
    const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(j, "attr");
    if (attrs) {
        if (!cJSON_IsObject(attrs)) return fu_fail(FU_E_INPUT, "%s: node '%.80s': attr is not an object", label, n->name);
        n->attrs = fu_calloc((size_t)cJSON_GetArraySize(attrs) + 1, sizeof *n->attrs);
        if (!n->attrs) return FU_E_INTERNAL;
        cJSON_ArrayForEach(e, attrs) {
            fu_tfjs_attr *a = &n->attrs[n->n_attrs++];
            if (!(a->key = dup_str(e->string))) return FU_E_INTERNAL;
            if (!parse_attr(e, a))
                return fu_fail(FU_E_INPUT, "%s: node '%.80s': malformed attribute '%.40s'", label, n->name, a->key);
        }
    }
    return FU_OK;
}

/* ---------- weights ---------- */

/* Bytes per stored element for a weight spec (quantized dtype wins over dtype). */
static int stored_size(const char *dtype, const char *qdtype, size_t *size) {
    const char *t = qdtype ? qdtype : dtype;
    if (!strcmp(t, "float32") || !strcmp(t, "int32")) *size = 4;
    else if (!strcmp(t, "float16") || !strcmp(t, "uint16")) *size = 2;
    else if (!strcmp(t, "uint8") || !strcmp(t, "bool")) *size = 1;
    else return 0;
    if (qdtype && strcmp(qdtype, "float16") && strcmp(qdtype, "uint8") && strcmp(qdtype, "uint16")) return 0;
    return 1;
}

typedef struct {
    const char *qdtype;   /* NULL: not quantized */
    double min, scale;
} quant;

static void decode_values(fu_tfjs_weight *w, const unsigned char *src, const quant *q) {
    int64_t n = w->numel;
    if (!q->qdtype) {
        if (!strcmp(w->dtype, "float32")) memcpy(w->data, src, (size_t)n * 4);
        else if (!strcmp(w->dtype, "int32"))
            for (int64_t i = 0; i < n; i++) {
                int32_t v;
                memcpy(&v, src + 4 * i, 4);
                w->ints[i] = v;
            }
        else for (int64_t i = 0; i < n; i++) w->ints[i] = src[i] != 0;
    } else if (!strcmp(q->qdtype, "float16")) {
        fu_convert_to_f32(FU_F16, src, w->data, (size_t)n);
    } else {
        int wide = !strcmp(q->qdtype, "uint16");
        for (int64_t i = 0; i < n; i++) {
            uint16_t v = src[i];
            if (wide) memcpy(&v, src + 2 * i, 2);
            w->data[i] = (float)(v * q->scale + q->min);
        }
    }
    if (w->ints && q->qdtype)   /* quantized integers: dequantized values rounded back */
        for (int64_t i = 0; i < n; i++) w->ints[i] = (int64_t)llround(w->data[i]);
    else if (w->ints)
        for (int64_t i = 0; i < n; i++) w->data[i] = (float)w->ints[i];
}

static int parse_weight_spec(const char *label, const cJSON *j, fu_tfjs_weight *w, quant *q, size_t *elem) {
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(j, "name"), *shape = cJSON_GetObjectItemCaseSensitive(j, "shape");
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(j, "dtype"), *qj = cJSON_GetObjectItemCaseSensitive(j, "quantization");
    if (!cJSON_IsString(name) || !cJSON_IsArray(shape) || !cJSON_IsString(dtype))
        return fu_fail(FU_E_INPUT, "%s: a weight lacks name, shape or dtype", label);
    if (!(w->name = dup_str(name->valuestring))) return FU_E_INTERNAL;
    if (strcmp(dtype->valuestring, "float32") && strcmp(dtype->valuestring, "int32") && strcmp(dtype->valuestring, "bool"))
        return fu_fail(FU_E_INPUT, "%s: weight '%.80s': dtype %.20s not supported (float32, int32, bool)", label, w->name, dtype->valuestring);
    snprintf(w->dtype, sizeof w->dtype, "%s", dtype->valuestring);
    if (cJSON_GetArraySize(shape) > FU_MAX_DIMS)
        return fu_fail(FU_E_INPUT, "%s: weight '%.80s': more than %d dimensions", label, w->name, FU_MAX_DIMS);
    const cJSON *d;
    cJSON_ArrayForEach(d, shape) {
        int64_t v;
        if (!json_int64(d, &v) || v < 0) return fu_fail(FU_E_INPUT, "%s: weight '%.80s': bad shape", label, w->name);
        w->shape[w->ndim++] = v;
    }
    w->numel = w->ndim ? fu_shape_numel(w->ndim, w->shape) : 1;
    if (w->numel < 0) return fu_fail(FU_E_INPUT, "%s: weight '%.80s': bad shape", label, w->name);
    *q = (quant){NULL, 0, 1};
    if (qj) {
        const cJSON *qd = cJSON_GetObjectItemCaseSensitive(qj, "dtype");
        const cJSON *mn = cJSON_GetObjectItemCaseSensitive(qj, "min"), *sc = cJSON_GetObjectItemCaseSensitive(qj, "scale");
        if (!cJSON_IsString(qd)) return fu_fail(FU_E_INPUT, "%s: weight '%.80s': quantization without dtype", label, w->name);
        q->qdtype = qd->valuestring;
        if (strcmp(q->qdtype, "float16")) {
            if (!cJSON_IsNumber(mn) || !cJSON_IsNumber(sc))
                return fu_fail(FU_E_INPUT, "%s: weight '%.80s': %.10s quantization needs min and scale", label, w->name, q->qdtype);
            q->min = mn->valuedouble;
            q->scale = sc->valuedouble;
        }
    }
    if (!stored_size(w->dtype, q->qdtype, elem))
        return fu_fail(FU_E_INPUT, "%s: weight '%.80s': quantization dtype %.20s not supported", label, w->name, q->qdtype);
    return FU_OK;
}

/* Refuses absolute paths and ".." so a model file can only name files beside it or below. */
static int safe_rel_path(const char *p) {
    if (!p[0] || p[0] == '/') return 0;
    for (const char *s = p; (s = strstr(s, "..")); s += 2)
        if ((s == p || s[-1] == '/') && (s[2] == 0 || s[2] == '/')) return 0;
    return 1;
}

/* Reads and concatenates a group's shards. */
static int read_group(const char *label, const char *dir, const cJSON *paths, unsigned char **buf, size_t *size) {
    *buf = NULL;
    *size = 0;
    if (!cJSON_IsArray(paths)) return fu_fail(FU_E_INPUT, "%s: weightsManifest paths is not an array", label);
    const cJSON *p;
    cJSON_ArrayForEach(p, paths) {
        if (!cJSON_IsString(p) || !safe_rel_path(p->valuestring))
            return fu_fail(FU_E_INPUT, "%s: weight shard path '%.80s' must be relative, without '..'", label, cJSON_IsString(p) ? p->valuestring : "?");
        size_t plen = strlen(dir) + strlen(p->valuestring) + 2;
        char *full = fu_malloc(plen);
        if (!full) return FU_E_INTERNAL;
        snprintf(full, plen, "%s/%s", dir, p->valuestring);
        unsigned char *part;
        size_t n;
        int rc = fu_read_file(full, FU_TFJS_MAX_GROUP_BYTES - *size, &part, &n);
        free(full);
        if (rc) return rc;
        unsigned char *grown = realloc(*buf, *size + n + 1);
        if (!grown) { free(part); return fu_fail(FU_E_INTERNAL, "%s: out of memory reading weights", label); }
        memcpy(grown + *size, part, n);
        free(part);
        *buf = grown;
        *size += n;
    }
    return FU_OK;
}

static int parse_group(fu_tfjs_model *m, const char *label, const char *dir, const cJSON *group, int *cap) {
    const cJSON *weights = cJSON_GetObjectItemCaseSensitive(group, "weights"), *wj;
    if (!cJSON_IsArray(weights)) return fu_fail(FU_E_INPUT, "%s: weightsManifest group without a weights array", label);
    unsigned char *buf;
    size_t size, off = 0;
    int rc = read_group(label, dir, cJSON_GetObjectItemCaseSensitive(group, "paths"), &buf, &size);
    if (rc) { free(buf); return rc; }
    cJSON_ArrayForEach(wj, weights) {
        if (m->n_weights == *cap) {
            int nc = *cap ? 2 * *cap : 64;
            fu_tfjs_weight *grown = realloc(m->weights, (size_t)nc * sizeof *grown);
            if (!grown) { rc = fu_fail(FU_E_INTERNAL, "%s: out of memory", label); break; }
            memset(grown + *cap, 0, (size_t)(nc - *cap) * sizeof *grown);
            m->weights = grown;
            *cap = nc;
        }
        fu_tfjs_weight *w = &m->weights[m->n_weights++];
        quant q = {NULL, 0, 1};
        size_t elem = 4;
        if ((rc = parse_weight_spec(label, wj, w, &q, &elem))) break;
        size_t bytes = (size_t)w->numel * elem;
        if (bytes > size - off) {
            rc = fu_fail(FU_E_INPUT, "%s: weight '%.80s' needs %zu bytes but its shards hold only %zu more (truncated .bin?)", label, w->name, bytes, size - off);
            break;
        }
        w->data = fu_malloc((size_t)w->numel * sizeof(float) + 1);
        if (!w->data || (strcmp(w->dtype, "float32") && !(w->ints = fu_malloc((size_t)w->numel * sizeof(int64_t) + 1)))) {
            rc = FU_E_INTERNAL;
            break;
        }
        decode_values(w, buf + off, &q);
        off += bytes;
    }
    if (!rc && off != size)
        rc = fu_fail(FU_E_INPUT, "%s: weight shards hold %zu bytes, the manifest describes %zu", label, size, off);
    free(buf);
    return rc;
}

/* ---------- lookup ---------- */

/* qsort has no context argument: the model being indexed, thread-local so loads on
 * different threads do not collide. */
static _Thread_local const fu_tfjs_model *sort_model;

static int cmp_nodes(const void *a, const void *b) {
    return strcmp(sort_model->nodes[*(const int *)a].name, sort_model->nodes[*(const int *)b].name);
}

static int cmp_weights(const void *a, const void *b) {
    return strcmp(sort_model->weights[*(const int *)a].name, sort_model->weights[*(const int *)b].name);
}

static int build_index(fu_tfjs_model *m, const char *label) {
    m->node_index = fu_malloc(((size_t)m->n_nodes + 1) * sizeof(int));
    m->weight_index = fu_malloc(((size_t)m->n_weights + 1) * sizeof(int));
    if (!m->node_index || !m->weight_index) return FU_E_INTERNAL;
    for (int i = 0; i < m->n_nodes; i++) m->node_index[i] = i;
    for (int i = 0; i < m->n_weights; i++) m->weight_index[i] = i;
    sort_model = m;
    qsort(m->node_index, (size_t)m->n_nodes, sizeof(int), cmp_nodes);
    qsort(m->weight_index, (size_t)m->n_weights, sizeof(int), cmp_weights);
    sort_model = NULL;
    for (int i = 1; i < m->n_nodes; i++)
        if (!strcmp(m->nodes[m->node_index[i]].name, m->nodes[m->node_index[i - 1]].name))
            return fu_fail(FU_E_INPUT, "%s: two nodes named '%.80s'", label, m->nodes[m->node_index[i]].name);
    for (int i = 1; i < m->n_weights; i++)
        if (!strcmp(m->weights[m->weight_index[i]].name, m->weights[m->weight_index[i - 1]].name))
            return fu_fail(FU_E_INPUT, "%s: two weights named '%.80s'", label, m->weights[m->weight_index[i]].name);
    return FU_OK;
}

int fu_tfjs_node_id(const fu_tfjs_model *m, const char *name) {
    int lo = 0, hi = m->n_nodes - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2, c = strcmp(m->nodes[m->node_index[mid]].name, name);
        if (!c) return m->node_index[mid];
        if (c < 0) lo = mid + 1; else hi = mid - 1;
    }
    return -1;
}

const fu_tfjs_node *fu_tfjs_node_find(const fu_tfjs_model *m, const char *name) {
    int i = fu_tfjs_node_id(m, name);
    return i < 0 ? NULL : &m->nodes[i];
}

const fu_tfjs_weight *fu_tfjs_weight_find(const fu_tfjs_model *m, const char *name) {
    int lo = 0, hi = m->n_weights - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2, c = strcmp(m->weights[m->weight_index[mid]].name, name);
        if (!c) return &m->weights[m->weight_index[mid]];
        if (c < 0) lo = mid + 1; else hi = mid - 1;
    }
    return NULL;
}

const fu_tfjs_attr *fu_tfjs_attr_find(const fu_tfjs_node *n, const char *key) {
    for (int i = 0; i < n->n_attrs; i++) if (!strcmp(n->attrs[i].key, key)) return &n->attrs[i];
    return NULL;
}

int64_t fu_tfjs_attr_int(const fu_tfjs_node *n, const char *key, int64_t def) {
    const fu_tfjs_attr *a = fu_tfjs_attr_find(n, key);
    return a && (a->kind == FU_TFJS_ATTR_INT || a->kind == FU_TFJS_ATTR_BOOL) ? a->i : def;
}

double fu_tfjs_attr_float(const fu_tfjs_node *n, const char *key, double def) {
    const fu_tfjs_attr *a = fu_tfjs_attr_find(n, key);
    return a && a->kind == FU_TFJS_ATTR_FLOAT ? a->f : def;
}

const char *fu_tfjs_attr_str(const fu_tfjs_node *n, const char *key, const char *def) {
    const fu_tfjs_attr *a = fu_tfjs_attr_find(n, key);
    return a && (a->kind == FU_TFJS_ATTR_STRING || a->kind == FU_TFJS_ATTR_TYPE) ? a->s : def;
}

/* ---------- model ---------- */

void fu_tfjs_free(fu_tfjs_model *m) {
    if (!m) return;
    for (int i = 0; i < m->n_nodes; i++) node_free(&m->nodes[i]);
    for (int i = 0; i < m->n_weights; i++) {
        free(m->weights[i].name);
        free(m->weights[i].data);
        free(m->weights[i].ints);
    }
    free(m->nodes);
    free(m->weights);
    free(m->node_index);
    free(m->weight_index);
    free(m->path);
    free(m);
}

static int parse_model(fu_tfjs_model *m, const cJSON *root, const char *dir, const char *label) {
    const cJSON *format = cJSON_GetObjectItemCaseSensitive(root, "format");
    if (cJSON_IsString(format) && strcmp(format->valuestring, "graph-model"))
        return fu_fail(FU_E_INPUT, "%s: format '%.40s' not supported (a TF.js graph-model is expected)", label, format->valuestring);
    const cJSON *topo = cJSON_GetObjectItemCaseSensitive(root, "modelTopology");
    const cJSON *nodes = cJSON_GetObjectItemCaseSensitive(topo, "node"), *e;
    if (!cJSON_IsArray(nodes)) return fu_fail(FU_E_INPUT, "%s: no modelTopology.node array (not a TF.js graph model)", label);
    const cJSON *lib = cJSON_GetObjectItemCaseSensitive(topo, "library");
    if (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(lib, "function")) > 0)
        return fu_fail(FU_E_INPUT, "%s: graphs with functions (control flow) are not supported", label);
    m->nodes = fu_calloc((size_t)cJSON_GetArraySize(nodes) + 1, sizeof *m->nodes);
    if (!m->nodes) return FU_E_INTERNAL;
    cJSON_ArrayForEach(e, nodes) {
        int rc = parse_node(label, e, &m->nodes[m->n_nodes++]);
        if (rc) return rc;
    }
    const cJSON *manifest = cJSON_GetObjectItemCaseSensitive(root, "weightsManifest");
    if (manifest && !cJSON_IsArray(manifest)) return fu_fail(FU_E_INPUT, "%s: weightsManifest is not an array", label);
    int cap = 0;
    cJSON_ArrayForEach(e, manifest) {
        int rc = parse_group(m, label, dir, e, &cap);
        if (rc) return rc;
    }
    return build_index(m, label);
}

fu_tfjs_model *fu_tfjs_parse(const char *json, size_t len, const char *dir, const char *label) {
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root) return fu_fail_null(FU_E_INPUT, "%s: not valid JSON", label);
    fu_tfjs_model *m = fu_calloc(1, sizeof *m);
    int rc = m && (m->path = dup_str(label)) ? parse_model(m, root, dir, label) : FU_E_INTERNAL;
    cJSON_Delete(root);
    if (rc) { fu_tfjs_free(m); return NULL; }
    return m;
}

fu_tfjs_model *fu_tfjs_load(const char *path) {
    unsigned char *text;
    size_t size;
    if (fu_read_file(path, MAX_JSON_BYTES, &text, &size)) return NULL;
    /* The shards live beside model.json: its folder is the path up to the last '/'. */
    const char *slash = strrchr(path, '/');
    size_t dlen = !slash ? 1 : slash == path ? 1 : (size_t)(slash - path);
    char *dir = fu_malloc(dlen + 1);
    fu_tfjs_model *m = NULL;
    if (dir) {
        memcpy(dir, !slash ? "." : slash == path ? "/" : path, dlen);
        dir[dlen] = 0;
        m = fu_tfjs_parse((const char *)text, size, dir, path);
    }
    free(dir);
    free(text);
    return m;
}
