/* TF.js graph models: the loader (attributes, weight decoding, validation), the graph converter
 * on a small synthetic network against direct NHWC loops and finite differences, and parity of
 * the real models with TF.js (outputs and input gradients from tools/parity.sh; skipped when
 * those files are absent). */
#include "test.h"
#include "core/gradcheck.h"
#include "core/ops.h"
#include "core/rng.h"
#include "face/tfjs_graph.h"
#include "io/dtype.h"
#include "io/fileutil.h"
#include "io/safetensors.h"
#include "io/tfjs.h"
#include <cjson/cJSON.h>
#include <float.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---------- writing small models ---------- */

typedef enum { ST_F32, ST_F16, ST_U8, ST_U16, ST_I32 } storage;

typedef struct {
    const char *name;
    int ndim;
    int64_t shape[4];
    storage how;
    const float *values;      /* float weights (quantized as `how` says) */
    const int32_t *ints;      /* ST_I32 */
} wspec;

static int64_t numel_of(const wspec *w) {
    int64_t n = 1;
    for (int i = 0; i < w->ndim; i++) n *= w->shape[i];
    return n;
}

/* Quantization range of a float array: min and scale for `levels` steps. */
static void qrange(const float *v, int64_t n, int levels, double *mn, double *scale) {
    float lo = FLT_MAX, hi = -FLT_MAX;
    for (int64_t i = 0; i < n; i++) { lo = v[i] < lo ? v[i] : lo; hi = v[i] > hi ? v[i] : hi; }
    *mn = lo;
    *scale = hi > lo ? (hi - lo) / (double)(levels - 1) : 1;
}

/* Writes <dir>/<stem>.bin and <dir>/<stem>.json with the given nodes (a JSON array text). */
static int write_model(const char *dir, const char *stem, const char *nodes_json, const wspec *ws, int nw) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s.bin", dir, stem);
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    cJSON *weights = cJSON_CreateArray();
    for (int i = 0; i < nw; i++) {
        const wspec *w = &ws[i];
        int64_t n = numel_of(w);
        cJSON *spec = cJSON_CreateObject(), *shape = cJSON_CreateArray();
        cJSON_AddStringToObject(spec, "name", w->name);
        for (int d = 0; d < w->ndim; d++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)w->shape[d]));
        cJSON_AddItemToObject(spec, "shape", shape);
        cJSON_AddStringToObject(spec, "dtype", w->how == ST_I32 ? "int32" : "float32");
        if (w->how == ST_F32) fwrite(w->values, 4, (size_t)n, f);
        if (w->how == ST_I32) fwrite(w->ints, 4, (size_t)n, f);
        if (w->how == ST_F16 || w->how == ST_U8 || w->how == ST_U16) {
            cJSON *q = cJSON_CreateObject();
            cJSON_AddStringToObject(q, "dtype", w->how == ST_F16 ? "float16" : w->how == ST_U8 ? "uint8" : "uint16");
            cJSON_AddStringToObject(q, "original_dtype", "float32");
            double mn, scale;
            qrange(w->values, n, w->how == ST_U8 ? 256 : 65536, &mn, &scale);
            if (w->how != ST_F16) { cJSON_AddNumberToObject(q, "min", mn); cJSON_AddNumberToObject(q, "scale", scale); }
            cJSON_AddItemToObject(spec, "quantization", q);
            for (int64_t k = 0; k < n; k++) {
                uint16_t h = fu_float_to_half(w->values[k]);
                uint16_t u = (uint16_t)lround((w->values[k] - mn) / scale);
                uint8_t b = (uint8_t)u;
                if (w->how == ST_F16) fwrite(&h, 2, 1, f);
                else if (w->how == ST_U16) fwrite(&u, 2, 1, f);
                else fwrite(&b, 1, 1, f);
            }
        }
        cJSON_AddItemToArray(weights, spec);
    }
    fclose(f);
    cJSON *root = cJSON_CreateObject(), *topo = cJSON_CreateObject(), *group = cJSON_CreateObject(), *paths = cJSON_CreateArray();
    cJSON_AddStringToObject(root, "format", "graph-model");
    cJSON_AddItemToObject(topo, "node", cJSON_Parse(nodes_json));
    cJSON_AddItemToObject(root, "modelTopology", topo);
    snprintf(path, sizeof path, "%s.bin", stem);
    cJSON_AddItemToArray(paths, cJSON_CreateString(path));
    cJSON_AddItemToObject(group, "paths", paths);
    cJSON_AddItemToObject(group, "weights", weights);
    cJSON *manifest = cJSON_CreateArray();
    cJSON_AddItemToArray(manifest, group);
    cJSON_AddItemToObject(root, "weightsManifest", manifest);
    char *text = cJSON_PrintUnformatted(root);
    snprintf(path, sizeof path, "%s/%s.json", dir, stem);
    int ok = cJSON_GetObjectItem(topo, "node") && cJSON_IsArray(cJSON_GetObjectItem(topo, "node")) &&
             fu_write_file_atomic(path, text, strlen(text)) == FU_OK;
    free(text);
    cJSON_Delete(root);
    return ok;
}

static const char *model_path(const char *stem) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s.json", fu_test_tmpdir(), stem);
    return path;
}

/* ---------- loader ---------- */

TEST(tfjs_base64_decodes_standard_and_url_alphabets) {
    unsigned char out[64];
    CHECK(fu_base64_decode("TkhXQw==", 8, out) == 4 && !memcmp(out, "NHWC", 4));
    CHECK(fu_base64_decode("U0FNRQ", 6, out) == 4 && !memcmp(out, "SAME", 4));
    CHECK(fu_base64_decode("-_8=", 4, out) == 2 && out[0] == 0xfb && out[1] == 0xff);
    CHECK(fu_base64_decode("+/8=", 4, out) == 2 && out[0] == 0xfb && out[1] == 0xff);
    CHECK(fu_base64_decode("", 0, out) == 0);
    CHECK(fu_base64_decode("ab$c", 4, out) == -1);
}

static const char *attr_nodes =
    "[{\"name\":\"x\",\"op\":\"Placeholder\",\"attr\":{\"dtype\":{\"type\":\"DT_FLOAT\"},"
    "\"shape\":{\"shape\":{\"dim\":[{\"size\":\"-1\"},{\"size\":\"4\"},{}]}}}},"
    "{\"name\":\"k\",\"op\":\"Const\"},"
    "{\"name\":\"y\",\"op\":\"Foo\",\"input\":[\"x\",\"k:1\",\"^x\",\"a:b\"],\"attr\":{"
    "\"i\":{\"i\":\"-7\"},\"n\":{\"i\":12},\"f\":{\"f\":0.25},\"nan\":{\"f\":\"NaN\"},\"b\":{\"b\":true},"
    "\"s\":{\"s\":\"VkFMSUQ=\"},\"t\":{\"type\":\"DT_INT32\"},\"li\":{\"list\":{\"i\":[\"1\",\"2\",\"3\",\"1\"]}},"
    "\"ls\":{\"list\":{\"s\":[\"Qmlhc0FkZA==\",\"UmVsdQ==\"]}},\"lf\":{\"list\":{\"f\":[0.5,-1]}},"
    "\"empty\":{\"list\":{}},\"fn\":{\"func\":{\"name\":\"g\"}}}}]";

TEST(tfjs_parses_nodes_and_attributes) {
    float k[3] = {1, 2, 3};
    wspec ws[] = {{"k", 1, {3}, ST_F32, k, NULL}};
    REQUIRE(write_model(fu_test_tmpdir(), "attrs", attr_nodes, ws, 1));
    fu_tfjs_model *m = fu_tfjs_load(model_path("attrs"));
    REQUIRE(m);
    CHECK(m->n_nodes == 3 && m->n_weights == 1);
    const fu_tfjs_node *y = fu_tfjs_node_find(m, "y");
    REQUIRE(y);
    CHECK(!strcmp(y->op, "Foo"));
    /* "^x" (control) dropped; "k:1" is output 1 of k; "a:b" is a name with a colon. */
    CHECK(y->n_inputs == 3);
    CHECK(!strcmp(y->inputs[0].node, "x") && y->inputs[0].index == 0);
    CHECK(!strcmp(y->inputs[1].node, "k") && y->inputs[1].index == 1);
    CHECK(!strcmp(y->inputs[2].node, "a:b") && y->inputs[2].index == 0);
    CHECK(fu_tfjs_attr_int(y, "i", 0) == -7 && fu_tfjs_attr_int(y, "n", 0) == 12);
    CHECK(fu_tfjs_attr_float(y, "f", 0) == 0.25 && isnan(fu_tfjs_attr_float(y, "nan", 0)));
    CHECK(fu_tfjs_attr_int(y, "b", 0) == 1);
    CHECK(!strcmp(fu_tfjs_attr_str(y, "s", ""), "VALID") && !strcmp(fu_tfjs_attr_str(y, "t", ""), "DT_INT32"));
    CHECK(fu_tfjs_attr_int(y, "missing", 42) == 42 && !strcmp(fu_tfjs_attr_str(y, "i", "def"), "def"));
    const fu_tfjs_attr *li = fu_tfjs_attr_find(y, "li"), *ls = fu_tfjs_attr_find(y, "ls"), *lf = fu_tfjs_attr_find(y, "lf");
    REQUIRE(li && ls && lf);
    CHECK(li->kind == FU_TFJS_ATTR_LIST && li->n == 4 && li->ints[1] == 2 && li->ints[2] == 3);
    CHECK(ls->n == 2 && !strcmp(ls->strs[0], "BiasAdd") && !strcmp(ls->strs[1], "Relu"));
    CHECK(lf->n == 2 && lf->floats[0] == 0.5 && lf->floats[1] == -1);
    CHECK(fu_tfjs_attr_find(y, "empty")->n == 0 && fu_tfjs_attr_find(y, "fn")->kind == FU_TFJS_ATTR_OTHER);
    const fu_tfjs_attr *shape = fu_tfjs_attr_find(fu_tfjs_node_find(m, "x"), "shape");
    REQUIRE(shape);
    CHECK(shape->kind == FU_TFJS_ATTR_SHAPE && shape->ndim == 3 && shape->shape[0] == -1 && shape->shape[1] == 4 && shape->shape[2] == 0);
    CHECK(fu_tfjs_node_find(m, "nope") == NULL && fu_tfjs_weight_find(m, "nope") == NULL);
    fu_tfjs_free(m);
}

TEST(tfjs_decodes_quantized_and_integer_weights) {
    float v[5] = {-1.5f, 0.1f, 0.2f, 3.0f, 0.7f};
    int32_t iv[3] = {-4, 0, 70000};
    wspec ws[] = {{"f32", 1, {5}, ST_F32, v, NULL}, {"f16", 1, {5}, ST_F16, v, NULL}, {"u8", 1, {5}, ST_U8, v, NULL},
                  {"u16", 2, {1, 5}, ST_U16, v, NULL}, {"i32", 1, {3}, ST_I32, NULL, iv}};
    REQUIRE(write_model(fu_test_tmpdir(), "quant", "[]", ws, 5));
    fu_tfjs_model *m = fu_tfjs_load(model_path("quant"));
    REQUIRE(m);
    const fu_tfjs_weight *f32 = fu_tfjs_weight_find(m, "f32"), *f16 = fu_tfjs_weight_find(m, "f16");
    const fu_tfjs_weight *u8 = fu_tfjs_weight_find(m, "u8"), *u16 = fu_tfjs_weight_find(m, "u16"), *i32 = fu_tfjs_weight_find(m, "i32");
    REQUIRE(f32 && f16 && u8 && u16 && i32);
    for (int i = 0; i < 5; i++) {
        CHECK(f32->data[i] == v[i]);
        CHECK(f16->data[i] == fu_half_to_float(fu_float_to_half(v[i])));
        CHECK_NEAR(u8->data[i], v[i], 4.5 / 255 / 2 + 1e-6);      /* half a step of (max-min)/255 */
        CHECK_NEAR(u16->data[i], v[i], 4.5 / 65535 / 2 + 1e-6);
    }
    CHECK(u8->data[0] == -1.5f && fabsf(u8->data[3] - 3.0f) < 1e-6f);   /* the range ends are exact */
    CHECK(u16->ndim == 2 && u16->shape[1] == 5 && u16->numel == 5);
    CHECK(!strcmp(i32->dtype, "int32") && i32->ints[0] == -4 && i32->ints[2] == 70000 && i32->data[2] == 70000.0f);
    CHECK(f32->ints == NULL);
    fu_tfjs_free(m);
}

static void write_text(const char *stem, const char *ext, const char *text) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s.%s", fu_test_tmpdir(), stem, ext);
    fu_write_file_atomic(path, text, strlen(text));
}

/* Loads a hand-written model.json whose weights group reads "bad.bin". */
static void expect_load_error(const char *json, const char *bin, size_t bin_len, const char *needle) {
    write_text("bad", "json", json);
    char path[512];
    snprintf(path, sizeof path, "%s/bad.bin", fu_test_tmpdir());
    fu_write_file_atomic(path, bin, bin_len);
    fu_clear_error();
    fu_tfjs_model *m = fu_tfjs_load(model_path("bad"));
    CHECK_MSG(m == NULL, "loaded a bad model (expected an error with '%s')", needle);
    CHECK_MSG(strstr(fu_last_error(), needle) != NULL, "error '%s' lacks '%s'", fu_last_error(), needle);
    fu_tfjs_free(m);
}

#define MANIFEST(paths, weights) "\"weightsManifest\":[{\"paths\":" paths ",\"weights\":" weights "}]"

TEST(tfjs_rejects_malformed_models) {
    const char *nodes = "{\"format\":\"graph-model\",\"modelTopology\":{\"node\":[]},";
    char json[1024];
    snprintf(json, sizeof json, "%s" MANIFEST("[\"bad.bin\"]", "[{\"name\":\"w\",\"shape\":[3],\"dtype\":\"float32\"}]") "}", nodes);
    expect_load_error(json, "12345678", 8, "truncated");
    expect_load_error(json, "1234567812345678", 16, "describes");
    snprintf(json, sizeof json, "%s" MANIFEST("[\"../bad.bin\"]", "[]") "}", nodes);
    expect_load_error(json, "", 0, "without '..'");
    snprintf(json, sizeof json, "%s" MANIFEST("[\"/etc/passwd\"]", "[]") "}", nodes);
    expect_load_error(json, "", 0, "must be relative");
    snprintf(json, sizeof json, "%s" MANIFEST("[\"bad.bin\"]", "[{\"name\":\"w\",\"shape\":[1],\"dtype\":\"string\"}]") "}", nodes);
    expect_load_error(json, "1234", 4, "not supported");
    snprintf(json, sizeof json, "%s" MANIFEST("[\"bad.bin\"]", "[{\"name\":\"w\",\"shape\":[1],\"dtype\":\"float32\",\"quantization\":{\"dtype\":\"uint8\"}}]") "}", nodes);
    expect_load_error(json, "1", 1, "min and scale");
    snprintf(json, sizeof json, "%s" MANIFEST("[\"bad.bin\"]", "[{\"name\":\"w\",\"shape\":[-2],\"dtype\":\"float32\"}]") "}", nodes);
    expect_load_error(json, "", 0, "bad shape");
    snprintf(json, sizeof json, "%s" MANIFEST("[\"missing.bin\"]", "[]") "}", nodes);
    expect_load_error(json, "", 0, "missing.bin");
    expect_load_error("{\"format\":\"layers-model\",\"modelTopology\":{}}", "", 0, "graph-model");
    expect_load_error("{\"modelTopology\":{\"node\":[{\"op\":\"Const\"}]}}", "", 0, "lacks a name");
    expect_load_error("{\"modelTopology\":{\"node\":[{\"name\":\"a\",\"op\":\"X\"},{\"name\":\"a\",\"op\":\"Y\"}]}}", "", 0, "two nodes");
    expect_load_error("{\"modelTopology\":{\"node\":[{\"name\":\"a\",\"op\":\"X\",\"attr\":{\"s\":{\"s\":\"*\"}}}]}}", "", 0, "malformed attribute");
    expect_load_error("{\"modelTopology\":{\"node\":[{\"name\":\"a\",\"op\":\"X\",\"attr\":{\"i\":{\"i\":\"1x\"}}}]}}", "", 0, "malformed attribute");
    expect_load_error("{\"modelTopology\":", "", 0, "not valid JSON");
}

/* ---------- converter on a small network ---------- */

/* Input [-1, 7, 6, 3] NHWC; conv 3x3/2 SAME (+bias, ACT) -> depthwise 3x3 x2 SAME -> PRELU ->
 * Pad -> POOL 2x2/2 SAME -> 1x1 conv with EXPLICIT padding -> concat with itself scaled ->
 * Mean over H,W -> dense (+bias) -> Softmax -> StridedSlice; and a Reshape of the pooled map. */
static const char *small_net =
    "[{\"name\":\"x\",\"op\":\"Placeholder\",\"attr\":{\"dtype\":{\"type\":\"DT_FLOAT\"},\"shape\":{\"shape\":{\"dim\":[{\"size\":\"-1\"},{\"size\":\"7\"},{\"size\":\"6\"},{\"size\":\"3\"}]}}}},"
    "{\"name\":\"w1\",\"op\":\"Const\"},{\"name\":\"b1\",\"op\":\"Const\"},{\"name\":\"dw\",\"op\":\"Const\"},{\"name\":\"alpha\",\"op\":\"Const\"},"
    "{\"name\":\"pads\",\"op\":\"Const\"},{\"name\":\"w2\",\"op\":\"Const\"},{\"name\":\"scale\",\"op\":\"Const\"},{\"name\":\"axis\",\"op\":\"Const\"},"
    "{\"name\":\"hw\",\"op\":\"Const\"},{\"name\":\"wm\",\"op\":\"Const\"},{\"name\":\"bm\",\"op\":\"Const\"},{\"name\":\"shape\",\"op\":\"Const\"},"
    "{\"name\":\"begin\",\"op\":\"Const\"},{\"name\":\"end\",\"op\":\"Const\"},{\"name\":\"strides\",\"op\":\"Const\"},"
    "{\"name\":\"c1\",\"op\":\"_FusedConv2D\",\"input\":[\"x\",\"w1\",\"b1\"],\"attr\":{\"strides\":{\"list\":{\"i\":[\"1\",\"2\",\"2\",\"1\"]}},"
    "\"padding\":{\"s\":\"U0FNRQ==\"},\"data_format\":{\"s\":\"TkhXQw==\"},\"num_args\":{\"i\":\"1\"},\"fused_ops\":{\"list\":{\"s\":[\"Qmlhc0FkZA==\",\"%s\"]}}}},"
    "{\"name\":\"c2\",\"op\":\"DepthwiseConv2dNative\",\"input\":[\"c1\",\"dw\"],\"attr\":{\"strides\":{\"list\":{\"i\":[\"1\",\"1\",\"1\",\"1\"]}},\"padding\":{\"s\":\"U0FNRQ==\"}}},"
    "{\"name\":\"p\",\"op\":\"%s\",\"input\":[\"c2\",\"alpha\"]},"
    "{\"name\":\"padded\",\"op\":\"Pad\",\"input\":[\"p\",\"pads\"]},"
    "{\"name\":\"pool\",\"op\":\"%s\",\"input\":[\"padded\"],\"attr\":{\"ksize\":{\"list\":{\"i\":[\"1\",\"2\",\"2\",\"1\"]}},"
    "\"strides\":{\"list\":{\"i\":[\"1\",\"2\",\"2\",\"1\"]}},\"padding\":{\"s\":\"U0FNRQ==\"}}},"
    "{\"name\":\"c3\",\"op\":\"Conv2D\",\"input\":[\"pool\",\"w2\"],\"attr\":{\"padding\":{\"s\":\"RVhQTElDSVQ=\"},"
    "\"explicit_paddings\":{\"list\":{\"i\":[\"0\",\"0\",\"1\",\"1\",\"0\",\"1\",\"0\",\"0\"]}}}},"
    "{\"name\":\"scaled\",\"op\":\"Mul\",\"input\":[\"c3\",\"scale\"]},"
    "{\"name\":\"cat\",\"op\":\"ConcatV2\",\"input\":[\"c3\",\"scaled\",\"axis\"]},"
    "{\"name\":\"mean\",\"op\":\"Mean\",\"input\":[\"cat\",\"hw\"],\"attr\":{\"keep_dims\":{\"b\":false}}},"
    "{\"name\":\"dense\",\"op\":\"_FusedMatMul\",\"input\":[\"mean\",\"wm\",\"bm\"],\"attr\":{\"fused_ops\":{\"list\":{\"s\":[\"Qmlhc0FkZA==\"]}}}},"
    "{\"name\":\"prob\",\"op\":\"Softmax\",\"input\":[\"dense\"]},"
    "{\"name\":\"sl\",\"op\":\"StridedSlice\",\"input\":[\"prob\",\"begin\",\"end\",\"strides\"],\"attr\":{\"begin_mask\":{\"i\":\"1\"},\"end_mask\":{\"i\":\"1\"}}},"
    "{\"name\":\"flat\",\"op\":\"Reshape\",\"input\":[\"pool\",\"shape\"]},"
    "{\"name\":\"unused\",\"op\":\"NoSuchOp\",\"input\":[\"x\"]}]";

/* Weights of the small net: random, some stored quantized. */
typedef struct { float w1[3 * 3 * 3 * 4], b1[4], dw[3 * 3 * 4 * 2], alpha[8], w2[8 * 5], scale[5], wm[10 * 6], bm[6]; } small_weights;

static int write_small_net(const char *stem, const char *act, const char *prelu, const char *pool, small_weights *sw) {
    fu_rng r;
    fu_rng_seed(&r, 5);
    fu_rng_fill_normal(&r, sw->w1, 108, 0, 0.5f);
    fu_rng_fill_normal(&r, sw->b1, 4, 0, 0.3f);
    fu_rng_fill_normal(&r, sw->dw, 72, 0, 0.5f);
    fu_rng_fill_uniform(&r, sw->alpha, 8, 0.05f, 0.5f);
    fu_rng_fill_normal(&r, sw->w2, 40, 0, 0.5f);
    fu_rng_fill_uniform(&r, sw->scale, 5, -2, 2);
    fu_rng_fill_normal(&r, sw->wm, 60, 0, 0.5f);
    fu_rng_fill_normal(&r, sw->bm, 6, 0, 0.3f);
    static const int32_t pads[8] = {0, 0, 1, 0, 0, 1, 0, 0}, axis[1] = {-1}, hw[2] = {1, 2}, shape[2] = {-1, 48};
    static const int32_t begin[2] = {0, 1}, end[2] = {0, 4}, strides[2] = {1, 1};
    wspec ws[] = {
        {"w1", 4, {3, 3, 3, 4}, ST_F16, sw->w1, NULL}, {"b1", 1, {4}, ST_U8, sw->b1, NULL},
        {"dw", 4, {3, 3, 4, 2}, ST_F32, sw->dw, NULL}, {"alpha", 3, {1, 1, 8}, ST_F32, sw->alpha, NULL},
        {"pads", 2, {4, 2}, ST_I32, NULL, pads}, {"w2", 4, {1, 1, 8, 5}, ST_U16, sw->w2, NULL},
        {"scale", 1, {5}, ST_F32, sw->scale, NULL}, {"axis", 0, {0}, ST_I32, NULL, axis},
        {"hw", 1, {2}, ST_I32, NULL, hw}, {"wm", 2, {10, 6}, ST_F32, sw->wm, NULL}, {"bm", 1, {6}, ST_F32, sw->bm, NULL},
        {"shape", 1, {2}, ST_I32, NULL, shape}, {"begin", 1, {2}, ST_I32, NULL, begin}, {"end", 1, {2}, ST_I32, NULL, end},
        {"strides", 1, {2}, ST_I32, NULL, strides},
    };
    char nodes[8192];
    snprintf(nodes, sizeof nodes, small_net, act, prelu, pool);
    return write_model(fu_test_tmpdir(), stem, nodes, ws, (int)(sizeof ws / sizeof *ws));
}

/* ---- direct NHWC reference (weights as the loader decoded them) ---- */

typedef struct { int64_t n, h, w, c; float *d; } img;

static img img_new(int64_t n, int64_t h, int64_t w, int64_t c) { return (img){n, h, w, c, calloc((size_t)(n * h * w * c), sizeof(float))}; }
static float *at(img a, int64_t n, int64_t y, int64_t x) { return a.d + ((n * a.h + y) * a.w + x) * a.c; }

/* TF conv on NHWC with filter [kh,kw,I,O] (depthwise: [kh,kw,C,M], out channel c*M+m). */
static img conv_nhwc(img x, const float *f, int kh, int kw, int O, int depthwise, int s, int pt, int pb, int pl, int pr) {
    int64_t OH = (x.h + pt + pb - kh) / s + 1, OW = (x.w + pl + pr - kw) / s + 1;
    img y = img_new(x.n, OH, OW, depthwise ? x.c * O : O);
    for (int64_t n = 0; n < x.n; n++)
        for (int64_t oy = 0; oy < OH; oy++)
            for (int64_t ox = 0; ox < OW; ox++)
                for (int64_t oc = 0; oc < y.c; oc++) {
                    double acc = 0;
                    for (int i = 0; i < kh; i++)
                        for (int j = 0; j < kw; j++) {
                            int64_t yy = oy * s - pt + i, xx = ox * s - pl + j;
                            if (yy < 0 || yy >= x.h || xx < 0 || xx >= x.w) continue;
                            if (depthwise) acc += at(x, n, yy, xx)[oc / O] * f[((i * kw + j) * x.c + oc / O) * O + oc % O];
                            else for (int64_t c = 0; c < x.c; c++) acc += at(x, n, yy, xx)[c] * f[((i * kw + j) * x.c + c) * O + oc];
                        }
                    at(y, n, oy, ox)[oc] = (float)acc;
                }
    return y;
}

static const float *wdata(const fu_tfjs_model *m, const char *name) { return fu_tfjs_weight_find(m, name)->data; }

/* The small net's "prob", "sl" and "flat" outputs for NHWC input x (ReLU, PReLU, MaxPool variant). */
static void small_net_reference(const fu_tfjs_model *m, img x, float *prob, float *sl, float *flat) {
    img c1 = conv_nhwc(x, wdata(m, "w1"), 3, 3, 4, 0, 2, 1, 1, 0, 1);   /* SAME 7x6/2: pads (1,1), (0,1) */
    for (int64_t i = 0; i < c1.n * c1.h * c1.w * c1.c; i++) c1.d[i] = fmaxf(c1.d[i] + wdata(m, "b1")[i % 4], 0);
    img c2 = conv_nhwc(c1, wdata(m, "dw"), 3, 3, 2, 1, 1, 1, 1, 1, 1);
    for (int64_t i = 0; i < c2.n * c2.h * c2.w * c2.c; i++) c2.d[i] = c2.d[i] > 0 ? c2.d[i] : wdata(m, "alpha")[i % 8] * c2.d[i];
    img pd = img_new(c2.n, c2.h + 1, c2.w + 1, c2.c);   /* pads: H (1, 0), W (0, 1) */
    for (int64_t n = 0; n < c2.n; n++)
        for (int64_t y = 0; y < c2.h; y++)
            for (int64_t xx = 0; xx < c2.w; xx++) memcpy(at(pd, n, y + 1, xx), at(c2, n, y, xx), (size_t)c2.c * sizeof(float));
    img pool = img_new(pd.n, (pd.h + 1) / 2, (pd.w + 1) / 2, pd.c);   /* 5x4 -> 3x2; SAME adds a bottom row only */
    for (int64_t n = 0; n < pd.n; n++)
        for (int64_t oy = 0; oy < pool.h; oy++)
            for (int64_t ox = 0; ox < pool.w; ox++)
                for (int64_t c = 0; c < pd.c; c++) {
                    float best = -FLT_MAX;
                    for (int i = 0; i < 2; i++)
                        for (int j = 0; j < 2; j++)
                            if (2 * oy + i < pd.h && 2 * ox + j < pd.w) best = fmaxf(best, at(pd, n, 2 * oy + i, 2 * ox + j)[c]);
                    at(pool, n, oy, ox)[c] = best;
                }
    memcpy(flat, pool.d, (size_t)(pool.n * 48) * sizeof(float));
    img c3 = conv_nhwc(pool, wdata(m, "w2"), 1, 1, 5, 0, 1, 1, 1, 0, 1);
    for (int64_t n = 0; n < x.n; n++) {
        double mean[10] = {0};
        for (int64_t y = 0; y < c3.h; y++)
            for (int64_t xx = 0; xx < c3.w; xx++)
                for (int c = 0; c < 5; c++) {
                    mean[c] += at(c3, n, y, xx)[c];
                    mean[5 + c] += at(c3, n, y, xx)[c] * wdata(m, "scale")[c];
                }
        double logits[6], mx = -1e300, sum = 0;
        for (int o = 0; o < 6; o++) {
            logits[o] = wdata(m, "bm")[o];
            for (int c = 0; c < 10; c++) logits[o] += mean[c] / (double)(c3.h * c3.w) * wdata(m, "wm")[c * 6 + o];
            mx = fmax(mx, logits[o]);
        }
        for (int o = 0; o < 6; o++) sum += exp(logits[o] - mx);
        for (int o = 0; o < 6; o++) prob[n * 6 + o] = (float)(exp(logits[o] - mx) / sum);
        for (int o = 0; o < 3; o++) sl[n * 3 + o] = prob[n * 6 + 1 + o];
    }
    free(c1.d); free(c2.d); free(pd.d); free(pool.d); free(c3.d);
}

/* NHWC data as an NCHW leaf tensor. */
static fu_tensor *nchw_from_nhwc(const float *d, int64_t N, int64_t H, int64_t W, int64_t C) {
    fu_tensor *t = fu_tensor_newv(4, N, C, H, W);
    if (!t) return NULL;
    for (int64_t n = 0; n < N; n++)
        for (int64_t y = 0; y < H; y++)
            for (int64_t x = 0; x < W; x++)
                for (int64_t c = 0; c < C; c++) t->data[((n * C + c) * H + y) * W + x] = d[((n * H + y) * W + x) * C + c];
    return t;
}

static float max_abs_diff(const float *a, const float *b, int64_t n) {
    float m = 0;
    for (int64_t i = 0; i < n; i++) m = fmaxf(m, fabsf(a[i] - b[i]));
    return m;
}

TEST(tfjs_small_net_matches_nhwc_reference) {
    small_weights sw;
    REQUIRE(write_small_net("small", "UmVsdQ==", "Prelu", "MaxPool", &sw));   /* Relu */
    fu_tfjs_net *net = fu_tfjs_net_load(model_path("small"));
    REQUIRE(net);
    int64_t s[4];
    CHECK(fu_tfjs_net_input_shape(net, s) == 4 && s[0] == -1 && s[1] == 7 && s[3] == 3);
    const int64_t N = 3;
    img x = img_new(N, 7, 6, 3);
    fu_rng r;
    fu_rng_seed(&r, 9);
    fu_rng_fill_normal(&r, x.d, N * 7 * 6 * 3, 0, 1);
    float prob[N * 6], sl[N * 3], flat[N * 48];
    small_net_reference(fu_tfjs_net_model(net), x, prob, sl, flat);
    fu_tensor *in = nchw_from_nhwc(x.d, N, 7, 6, 3);
    fu_graph *g = fu_graph_new();
    const char *names[3] = {"prob", "sl:0", "flat"};
    fu_tensor *out[3];
    REQUIRE(fu_tfjs_net_forward(net, g, in, 3, names, out) == FU_OK);
    CHECK(out[0]->ndim == 2 && out[0]->shape[0] == N && out[0]->shape[1] == 6);
    CHECK(out[1]->ndim == 2 && out[1]->shape[1] == 3);
    CHECK(out[2]->ndim == 2 && out[2]->shape[1] == 48);
    CHECK(max_abs_diff(out[0]->data, prob, N * 6) < 1e-5f);
    CHECK(max_abs_diff(out[1]->data, sl, N * 3) < 1e-5f);
    CHECK(max_abs_diff(out[2]->data, flat, N * 48) < 1e-4f);
    /* A built graph re-runs on new input data. */
    fu_rng_fill_normal(&r, x.d, N * 7 * 6 * 3, 0, 1);
    fu_tensor *in2 = nchw_from_nhwc(x.d, N, 7, 6, 3);
    fu_tensor_copy_data(in, in2);
    REQUIRE(fu_graph_forward(g) == FU_OK);
    small_net_reference(fu_tfjs_net_model(net), x, prob, sl, flat);
    CHECK(max_abs_diff(out[0]->data, prob, N * 6) < 1e-5f);
    fu_tensor_free(in2);
    /* Wrong input sizes are refused with the NCHW hint. */
    fu_tensor *bad = fu_tensor_newv(4, (int64_t)1, (int64_t)7, (int64_t)6, (int64_t)3);
    fu_graph_reset(g);
    CHECK(fu_tfjs_net_forward(net, g, bad, 1, names, out) != FU_OK && strstr(fu_last_error(), "NCHW"));
    /* The unsupported op is named when it is needed, and unknown outputs are refused. */
    const char *unused = "unused", *nope = "nope";
    CHECK(fu_tfjs_net_forward(net, g, in, 1, &unused, out) != FU_OK && strstr(fu_last_error(), "'NoSuchOp'"));
    CHECK(fu_tfjs_net_forward(net, g, in, 1, &nope, out) != FU_OK && strstr(fu_last_error(), "no node named"));
    fu_tensor_free(bad);
    fu_tensor_free(in);
    free(x.d);
    fu_graph_free(g);
    fu_tfjs_net_free(net);
}

static fu_tensor *build_small_net(fu_graph *g, fu_tensor **in, void *ctx) {
    const char *name = "prob";
    fu_tensor *out;
    return fu_tfjs_net_forward(ctx, g, in[0], 1, &name, &out) == FU_OK ? out : NULL;
}

TEST(tfjs_small_net_input_gradient_matches_finite_differences) {
    small_weights sw;
    /* Smooth variant (Elu, Tanh, AvgPool) so finite differences see no kinks. */
    REQUIRE(write_small_net("smooth", "RWx1", "Tanh", "AvgPool", &sw));
    fu_tfjs_net *net = fu_tfjs_net_load(model_path("smooth"));
    REQUIRE(net);
    fu_rng r;
    fu_rng_seed(&r, 21);
    fu_tensor *x = fu_tensor_newv(4, (int64_t)2, (int64_t)3, (int64_t)7, (int64_t)6);
    fu_rng_fill_normal(&r, x->data, x->numel, 0, 1);
    fu_tensor_requires_grad(x, 1);
    fu_gradcheck_opts o = {.eps = 1e-2f, .atol = 2e-3f, .rtol = 2e-2f, .max_checks = 64, .seed = 3};
    fu_gradcheck_result res;
    CHECK(fu_gradcheck(build_small_net, &x, 1, net, &o, &res) == FU_OK);
    CHECK(res.n_checked > 0);
    fu_tensor_free(x);
    fu_tfjs_net_free(net);
}

TEST(tfjs_converter_errors_name_the_node) {
    /* A Const without a weight, and a conv whose filter is computed, are refused up front. */
    write_text("noweight", "bin", "");
    write_text("noweight", "json", "{\"modelTopology\":{\"node\":[{\"name\":\"x\",\"op\":\"Placeholder\"},{\"name\":\"k\",\"op\":\"Const\"}]},"
               "\"weightsManifest\":[{\"paths\":[\"noweight.bin\"],\"weights\":[]}]}");
    CHECK(fu_tfjs_net_load(model_path("noweight")) == NULL && strstr(fu_last_error(), "'k'") && strstr(fu_last_error(), "no weight"));
    write_text("convx", "json", "{\"modelTopology\":{\"node\":[{\"name\":\"x\",\"op\":\"Placeholder\"},"
               "{\"name\":\"c\",\"op\":\"Conv2D\",\"input\":[\"x\",\"x\"]}]}}");
    CHECK(fu_tfjs_net_load(model_path("convx")) == NULL && strstr(fu_last_error(), "'c'") && strstr(fu_last_error(), "filter"));
    write_text("twoin", "json", "{\"modelTopology\":{\"node\":[{\"name\":\"x\",\"op\":\"Placeholder\"},{\"name\":\"y\",\"op\":\"Placeholder\"}]}}");
    CHECK(fu_tfjs_net_load(model_path("twoin")) == NULL && strstr(fu_last_error(), "more than one Placeholder"));
    write_text("cycle", "json", "{\"modelTopology\":{\"node\":[{\"name\":\"x\",\"op\":\"Placeholder\"},"
               "{\"name\":\"a\",\"op\":\"Add\",\"input\":[\"x\",\"b\"]},{\"name\":\"b\",\"op\":\"Relu\",\"input\":[\"a\"]}]}}");
    fu_tfjs_net *net = fu_tfjs_net_load(model_path("cycle"));
    REQUIRE(net);
    fu_graph *g = fu_graph_new();
    fu_tensor *x = fu_tensor_newv(1, (int64_t)3), *out;
    const char *name = "b";
    CHECK(fu_tfjs_net_forward(net, g, x, 1, &name, &out) != FU_OK && strstr(fu_last_error(), "cycle"));
    fu_tensor_free(x);
    fu_graph_free(g);
    fu_tfjs_net_free(net);
}

/* Layout-changing ops on an NCHW-held image: each output against direct NHWC indexing. */
static const char *shape_net =
    "[{\"name\":\"x\",\"op\":\"Placeholder\",\"attr\":{\"shape\":{\"shape\":{\"dim\":[{\"size\":\"-1\"},{\"size\":\"4\"},{\"size\":\"3\"},{\"size\":\"2\"}]}}}},"
    "{\"name\":\"a1\",\"op\":\"Const\"},{\"name\":\"a2\",\"op\":\"Const\"},{\"name\":\"a3\",\"op\":\"Const\"},{\"name\":\"am1\",\"op\":\"Const\"},"
    "{\"name\":\"perm\",\"op\":\"Const\"},{\"name\":\"sb\",\"op\":\"Const\"},{\"name\":\"ssz\",\"op\":\"Const\"},{\"name\":\"pads\",\"op\":\"Const\"},"
    "{\"name\":\"pv\",\"op\":\"Const\"},{\"name\":\"b4\",\"op\":\"Const\"},{\"name\":\"e4\",\"op\":\"Const\"},{\"name\":\"s4\",\"op\":\"Const\"},"
    "{\"name\":\"meanh\",\"op\":\"Mean\",\"input\":[\"x\",\"a1\"]},"
    "{\"name\":\"maxw\",\"op\":\"Max\",\"input\":[\"x\",\"a2\"],\"attr\":{\"keep_dims\":{\"b\":true}}},"
    "{\"name\":\"minc\",\"op\":\"Min\",\"input\":[\"x\",\"a3\"]},"
    "{\"name\":\"tr\",\"op\":\"Transpose\",\"input\":[\"x\",\"perm\"]},"
    "{\"name\":\"ed\",\"op\":\"ExpandDims\",\"input\":[\"meanh\",\"am1\"]},"
    "{\"name\":\"sq\",\"op\":\"Squeeze\",\"input\":[\"ed\"],\"attr\":{\"squeeze_dims\":{\"list\":{\"i\":[\"-1\"]}}}},"
    "{\"name\":\"pk\",\"op\":\"Pack\",\"input\":[\"sq\",\"meanh\"],\"attr\":{\"axis\":{\"i\":\"1\"}}},"
    "{\"name\":\"sl\",\"op\":\"Slice\",\"input\":[\"x\",\"sb\",\"ssz\"]},"
    "{\"name\":\"cat\",\"op\":\"ConcatV2\",\"input\":[\"x\",\"x\",\"a1\"]},"
    "{\"name\":\"pad\",\"op\":\"PadV2\",\"input\":[\"x\",\"pads\",\"pv\"]},"
    "{\"name\":\"sm\",\"op\":\"Softmax\",\"input\":[\"x\"]},"
    "{\"name\":\"ss\",\"op\":\"StridedSlice\",\"input\":[\"x\",\"b4\",\"e4\",\"s4\"],"
    "\"attr\":{\"begin_mask\":{\"i\":\"13\"},\"end_mask\":{\"i\":\"13\"},\"shrink_axis_mask\":{\"i\":\"2\"}}}]";

TEST(tfjs_layout_ops_match_nhwc_indexing) {
    static const int32_t a1[1] = {1}, a2[1] = {2}, a3[1] = {-1}, am1[1] = {-1}, perm[4] = {0, 3, 1, 2};
    static const int32_t sb[4] = {0, 1, 0, 1}, ssz[4] = {-1, 2, -1, 1}, pads[8] = {0, 0, 0, 0, 1, 1, 0, 0};
    static const int32_t b4[4] = {0, -1, 0, 0}, e4[4] = {0, 0, 0, 0}, s4[4] = {1, 1, 2, 1};
    static const float pv[1] = {2.5f};
    wspec ws[] = {{"a1", 1, {1}, ST_I32, NULL, a1}, {"a2", 1, {1}, ST_I32, NULL, a2}, {"a3", 0, {0}, ST_I32, NULL, a3},
                  {"am1", 0, {0}, ST_I32, NULL, am1}, {"perm", 1, {4}, ST_I32, NULL, perm}, {"sb", 1, {4}, ST_I32, NULL, sb},
                  {"ssz", 1, {4}, ST_I32, NULL, ssz}, {"pads", 2, {4, 2}, ST_I32, NULL, pads}, {"pv", 0, {0}, ST_F32, pv, NULL},
                  {"b4", 1, {4}, ST_I32, NULL, b4}, {"e4", 1, {4}, ST_I32, NULL, e4}, {"s4", 1, {4}, ST_I32, NULL, s4}};
    REQUIRE(write_model(fu_test_tmpdir(), "shapes", shape_net, ws, (int)(sizeof ws / sizeof *ws)));
    fu_tfjs_net *net = fu_tfjs_net_load(model_path("shapes"));
    REQUIRE(net);
    enum { N = 2, H = 4, W = 3, C = 2 };
    float x[N * H * W * C];
    for (int i = 0; i < N * H * W * C; i++) x[i] = (float)((i * 37) % 23) - 11.0f;
#define X(n, h, w, c) x[(((n) * H + (h)) * W + (w)) * C + (c)]
    fu_tensor *in = nchw_from_nhwc(x, N, H, W, C);
    fu_graph *g = fu_graph_new();
    const char *names[] = {"meanh", "maxw", "minc", "tr", "sq", "pk", "sl", "cat", "pad", "sm", "ss"};
    fu_tensor *o[11];
    REQUIRE(fu_tfjs_net_forward(net, g, in, 11, names, o) == FU_OK);
    static const int64_t shapes[11][4] = {{N, W, C}, {N, H, 1, C}, {N, H, W}, {N, C, H, W}, {N, W, C}, {N, 2, W, C},
                                          {N, 2, W, 1}, {N, 2 * H, W, C}, {N, H, W + 2, C}, {N, H, W, C}, {N, 2, C}};
    for (int k = 0; k < 11; k++) {
        int nd = k == 0 || k == 2 || k == 4 || k == 10 ? 3 : 4;
        int same = o[k]->ndim == nd;
        for (int d = 0; same && d < nd; d++) same = o[k]->shape[d] == shapes[k][d];
        CHECK_MSG(same, "output %s has the wrong shape", names[k]);
    }
    for (int n = 0; n < N; n++)
        for (int h = 0; h < H; h++)
            for (int w = 0; w < W; w++)
                for (int c = 0; c < C; c++) {
                    float mean = 0, mx = -FLT_MAX, se = 0;
                    for (int i = 0; i < H; i++) mean += X(n, i, w, c) / H;
                    for (int j = 0; j < W; j++) mx = fmaxf(mx, X(n, h, j, c));
                    for (int k = 0; k < C; k++) se += expf(X(n, h, w, k));
                    float mn = fminf(X(n, h, w, 0), X(n, h, w, 1));
                    CHECK_NEAR(o[0]->data[(n * W + w) * C + c], mean, 1e-5);
                    CHECK(o[1]->data[(n * H + h) * C + c] == mx);
                    CHECK(o[2]->data[(n * H + h) * W + w] == mn);
                    CHECK(o[3]->data[((n * C + c) * H + h) * W + w] == X(n, h, w, c));
                    CHECK_NEAR(o[4]->data[(n * W + w) * C + c], mean, 1e-5);
                    CHECK_NEAR(o[5]->data[((n * 2 + 0) * W + w) * C + c], mean, 1e-5);
                    CHECK_NEAR(o[5]->data[((n * 2 + 1) * W + w) * C + c], mean, 1e-5);
                    if (h >= 1 && h < 3 && c == 1) CHECK(o[6]->data[(n * 2 + h - 1) * W + w] == X(n, h, w, 1));
                    CHECK(o[7]->data[((n * 2 * H + h) * W + w) * C + c] == X(n, h, w, c));
                    CHECK(o[7]->data[((n * 2 * H + H + h) * W + w) * C + c] == X(n, h, w, c));
                    CHECK(o[8]->data[((n * H + h) * (W + 2) + w + 1) * C + c] == X(n, h, w, c));
                    CHECK(o[8]->data[((n * H + h) * (W + 2)) * C + c] == 2.5f);
                    CHECK_NEAR(o[9]->data[((n * H + h) * W + w) * C + c], expf(X(n, h, w, c)) / se, 1e-6);
                    if (h == H - 1 && w % 2 == 0) CHECK(o[10]->data[(n * 2 + w / 2) * C + c] == X(n, h, w, c));
                }
#undef X
    fu_tensor_free(in);
    fu_graph_free(g);
    fu_tfjs_net_free(net);
}

/* ---------- parity with TF.js (tools/parity.sh) ---------- */

static const char *models_root(void) {
    static char path[1024];
    const char *env = getenv("FACEUP_MODELS"), *home = getenv("HOME");
    if (env) snprintf(path, sizeof path, "%s", env);
    else snprintf(path, sizeof path, "%s/.cache/faceup/models", home ? home : ".");
    return path;
}

static int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* out (TF layout) vs reference: max |diff| / max |ref|. */
static double rel_diff(const float *a, const float *b, int64_t n) {
    double md = 0, mr = 0;
    for (int64_t i = 0; i < n; i++) {
        md = fmax(md, fabs((double)a[i] - b[i]));
        mr = fmax(mr, fabs((double)b[i]));
    }
    return mr > 0 ? md / mr : md;
}

/* Rows of [N, D] normalised to unit length, then max |diff|. */
static double embedding_diff(const float *a, const float *b, int64_t N, int64_t D) {
    double worst = 0;
    for (int64_t n = 0; n < N; n++) {
        double na = 0, nb = 0;
        for (int64_t d = 0; d < D; d++) { na += (double)a[n * D + d] * a[n * D + d]; nb += (double)b[n * D + d] * b[n * D + d]; }
        na = sqrt(na) + 1e-30;
        nb = sqrt(nb) + 1e-30;
        for (int64_t d = 0; d < D; d++) worst = fmax(worst, fabs(a[n * D + d] / na - b[n * D + d] / nb));
    }
    return worst;
}

static int is_embedding(const char *output) {
    return !strcmp(output, "global_pooling/Mean") || !strcmp(output, "embeddings") || !strcmp(output, "batchnorm0/add_1");
}

/* Input gradients are compared robustly: where a ReLU input or two max-pool candidates are
 * within float rounding of each other, the two engines (whose convolutions round differently,
 * about 1e-6 relative) may take different sides of the kink, and the gradient of that one unit
 * then flows elsewhere: a few hundred input entries of an image differ by O(1) of their size,
 * while images without such a near-tie agree to ~1e-6. So the test bounds the L2 error of the
 * whole batch and the fraction of entries that differ, and reports how many images agree
 * entry by entry. (tests/parity/make_inputs.c dithers the inputs so that flat image areas do
 * not create exact ties, which the engines break differently.) */
typedef struct { double l2_rel, max_rel, outlier_frac; int exact_images; } grad_stats;

static grad_stats compare_gradients(const float *a, const float *ref, int64_t N, int64_t per) {
    grad_stats st = {0, 0, 0, 0};
    double dd = 0, rr = 0, mr = 0;
    int64_t outliers = 0;
    for (int64_t i = 0; i < N * per; i++) mr = fmax(mr, fabs((double)ref[i]));
    for (int64_t n = 0; n < N; n++) {
        double worst = 0;
        for (int64_t i = n * per; i < (n + 1) * per; i++) {
            double d = fabs((double)a[i] - ref[i]);
            dd += d * d;
            rr += (double)ref[i] * ref[i];
            worst = fmax(worst, d);
            outliers += d > 1e-3 * mr;
        }
        st.max_rel = fmax(st.max_rel, worst / (mr + 1e-30));
        st.exact_images += worst <= 1e-4 * mr;
    }
    st.l2_rel = sqrt(dd / (rr + 1e-30));
    st.outlier_frac = (double)outliers / (double)(N * per);
    return st;
}

/* Forward and input-gradient parity of one model against the TF.js results.
 * out_tol: max |diff| / max |ref| per output; grad_tol: ||diff|| / ||ref|| of the input gradient. */
static void parity(const char *model, double out_tol, double grad_tol) {
    char json[1200], inputs[1200], ref[1200], why[300];
    snprintf(json, sizeof json, "%s/human-models-3.0.4/models/%s.json", models_root(), model);
    snprintf(inputs, sizeof inputs, "%s/parity/%s.inputs.safetensors", models_root(), model);
    snprintf(ref, sizeof ref, "%s/parity/%s.tfjs.safetensors", models_root(), model);
    if (!file_exists(json) || !file_exists(inputs) || !file_exists(ref)) {
        snprintf(why, sizeof why, "no %s model or TF.js results under %s; run tools/parity.sh", model, models_root());
        SKIP(why);
    }
    fu_safetensors *in = fu_st_open(inputs), *rf = fu_st_open(ref);
    fu_tfjs_net *net = fu_tfjs_net_load(json);
    REQUIRE(in && rf && net);
    fu_tensor *x_nhwc = fu_st_tensor(in, "input");
    REQUIRE(x_nhwc && x_nhwc->ndim == 4);
    int64_t N = x_nhwc->shape[0], H = x_nhwc->shape[1], W = x_nhwc->shape[2], C = x_nhwc->shape[3];
    fu_tensor *x = nchw_from_nhwc(x_nhwc->data, N, H, W, C);
    REQUIRE(x);
    fu_tensor_requires_grad(x, 1);
    char names_buf[1024];
    const char *names[8];
    int n_out = 0;
    snprintf(names_buf, sizeof names_buf, "%s", fu_st_meta_get(in, "outputs"));
    for (char *tok = strtok(names_buf, ","); tok && n_out < 8; tok = strtok(NULL, ",")) names[n_out++] = tok;
    fu_graph *g = fu_graph_new();
    fu_tensor *out[8], *s = NULL;
    REQUIRE(fu_tfjs_net_forward(net, g, x, n_out, names, out) == FU_OK);
    printf("    %s: batch %lld", model, (long long)N);
    for (int k = 0; k < n_out; k++) {
        char key[16];
        snprintf(key, sizeof key, "out%d", k);
        fu_tensor *want = fu_st_tensor(rf, key);
        snprintf(key, sizeof key, "R%d", k);
        fu_tensor *R = fu_st_tensor(rf, key);
        REQUIRE(want && R);
        CHECK_MSG(want->numel == out[k]->numel, "%s %s: %lld elements, TF.js %lld", model, names[k], (long long)out[k]->numel, (long long)want->numel);
        if (want->numel == out[k]->numel) {
            double d = rel_diff(out[k]->data, want->data, want->numel);
            printf("; %s rel %.2e", names[k], d);
            CHECK_MSG(d <= out_tol, "%s %s: max|diff|/max|ref| = %.3g > %.1g", model, names[k], d, out_tol);
            if (is_embedding(names[k]) && want->ndim == 2) {   /* compared as used: unit-length rows */
                double e = embedding_diff(out[k]->data, want->data, want->shape[0], want->shape[1]);
                printf(" (normalised %.2e)", e);
                CHECK_MSG(e <= out_tol, "%s %s: normalised embedding diff %.3g > %.1g", model, names[k], e, out_tol);
            }
        }
        fu_tensor *Rg = fu_graph_tensor(g, out[k]->ndim, out[k]->shape);
        if (Rg && R->numel == Rg->numel) memcpy(Rg->data, R->data, (size_t)R->numel * sizeof(float));
        fu_tensor *term = fu_sum_all(g, fu_mul(g, out[k], Rg));
        s = s ? fu_add(g, s, term) : term;
        fu_tensor_free(want);
        fu_tensor_free(R);
    }
    fu_tensor *gref = fu_st_tensor(rf, "grad");
    const char *gerr = fu_st_meta_get(rf, "grad_error");
    if (gref && grad_tol > 0) {
        REQUIRE(s && fu_graph_backward(g, s, NULL) == FU_OK);
        fu_tensor *gnhwc = fu_tensor_new(4, x_nhwc->shape);
        for (int64_t n = 0; n < N; n++)
            for (int64_t c = 0; c < C; c++)
                for (int64_t y = 0; y < H; y++)
                    for (int64_t xx = 0; xx < W; xx++)
                        gnhwc->data[((n * H + y) * W + xx) * C + c] = x->grad[((n * C + c) * H + y) * W + xx];
        grad_stats st = compare_gradients(gnhwc->data, gref->data, N, gref->numel / N);
        printf("; input gradient: L2 rel %.2e, max rel %.2e, %.3f%% entries off by > 1e-3 of max, %d/%lld images within 1e-4",
               st.l2_rel, st.max_rel, 100 * st.outlier_frac, st.exact_images, (long long)N);
        CHECK_MSG(st.l2_rel <= grad_tol, "%s input gradient: L2 relative error %.3g > %.1g", model, st.l2_rel, grad_tol);
        CHECK_MSG(st.outlier_frac <= 0.02, "%s input gradient: %.2f%% of entries differ (> 2%%)", model, 100 * st.outlier_frac);
        fu_tensor_free(gnhwc);
    } else {
        printf("; no TF.js gradient (%s)", gerr ? gerr : "not compared");
    }
    printf("\n");
    fu_tensor_free(gref);
    fu_tensor_free(x);
    fu_tensor_free(x_nhwc);
    fu_graph_free(g);
    fu_tfjs_net_free(net);
    fu_st_free(in);
    fu_st_free(rf);
}

TEST(tfjs_parity_faceres) { parity("faceres", 1e-4, 1e-2); }
TEST(tfjs_parity_gear) { parity("gear", 1e-4, 1e-2); }
TEST(tfjs_parity_emotion) { parity("emotion", 1e-4, 1e-2); }
TEST(tfjs_parity_blazeface) { parity("blazeface", 1e-4, 1e-2); }
TEST(tfjs_parity_faceres_deep) { parity("faceres-deep", 1e-4, 1e-2); }
TEST(tfjs_parity_facemesh) { parity("facemesh", 1e-4, 1e-2); }
TEST(tfjs_parity_age) { parity("age", 1e-4, 1e-2); }
TEST(tfjs_parity_gender) { parity("gender", 1e-4, 1e-2); }
TEST(tfjs_parity_mobileface) { parity("mobileface", 1e-4, 1e-2); }
TEST(tfjs_parity_mobilefacenet) { parity("mobilefacenet", 1e-4, 1e-2); }
