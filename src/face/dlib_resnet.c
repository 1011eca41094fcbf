/* dlib's ResNet face descriptor on the engine's ops. See dlib_resnet.h for the architecture. */
#include "dlib_resnet.h"
#include "core/error.h"
#include "core/ops.h"
#include "io/fileutil.h"
#include "io/tfjs.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MANIFEST_BYTES ((size_t)1 << 20)

/* conv + bias, then the scale layer x * weights + biases. */
typedef struct {
    fu_tensor *filters;     /* OIHW */
    fu_tensor *bias;        /* [C] */
    fu_tensor *scale_w;     /* [C,1,1] */
    fu_tensor *scale_b;     /* [C,1,1] */
} conv_layer;

/* The residual blocks after the stem, in order; down = the block halves the map and its
 * first convolution may double the channels. */
static const struct { const char *name; int channels, down; } blocks[] = {
    {"conv32_1", 32, 0},      {"conv32_2", 32, 0},   {"conv32_3", 32, 0},
    {"conv64_down", 64, 1},   {"conv64_1", 64, 0},   {"conv64_2", 64, 0},   {"conv64_3", 64, 0},
    {"conv128_down", 128, 1}, {"conv128_1", 128, 0}, {"conv128_2", 128, 0},
    {"conv256_down", 256, 1}, {"conv256_1", 256, 0}, {"conv256_2", 256, 0},
    {"conv256_down_out", 256, 1},
};
#define N_BLOCKS ((int)(sizeof blocks / sizeof blocks[0]))
#define N_CONVS (1 + 2 * N_BLOCKS)
#define N_PARAMS (4 * N_CONVS + 1)
#define STEM_CHANNELS 32
#define STEM_KERNEL 7

struct fu_dlib_resnet {
    conv_layer convs[N_CONVS];  /* stem, then conv1, conv2 of each block */
    fu_tensor *fc;              /* [256, 128] */
    fu_tensor *mean_rgb;        /* [3,1,1], on the [0,1] scale */
    fu_tensor *params[N_PARAMS];
};

/* ---------- loading ---------- */

/* The weight called name, checked against the expected shape (TF layout). NULL with a message
 * naming the tensor when it is absent or differs. Marks it in used (one flag per weight). */
static const fu_tfjs_weight *expect_weight(const fu_tfjs_model *m, const char *name, int ndim,
                                           const int64_t *shape, unsigned char *used) {
    const fu_tfjs_weight *w = fu_tfjs_weight_find(m, name);
    if (!w) return fu_fail_null(FU_E_INPUT, "%s: tensor '%s' missing (not dlib's face recognition model?)", m->path, name);
    int same = w->ndim == ndim && !strcmp(w->dtype, "float32");
    for (int i = 0; same && i < ndim; i++) same = w->shape[i] == shape[i];
    if (!same) {
        char want[96] = "", got[96] = "";
        for (int i = 0; i < ndim; i++) snprintf(want + strlen(want), sizeof want - strlen(want), i ? ",%lld" : "%lld", (long long)shape[i]);
        for (int i = 0; i < w->ndim; i++) snprintf(got + strlen(got), sizeof got - strlen(got), i ? ",%lld" : "%lld", (long long)w->shape[i]);
        return fu_fail_null(FU_E_INPUT, "%s: tensor '%s' is %s [%s], float32 [%s] expected", m->path, name, w->dtype, got, want);
    }
    used[w - m->weights] = 1;
    return w;
}

/* A named leaf copy of a per-channel vector, shaped [C,1,1] (broadcasts over [N,C,H,W]) or [C]. */
static fu_tensor *channel_vector(const fu_tfjs_weight *w, int broadcast) {
    fu_tensor *t = broadcast ? fu_tensor_newv(3, w->shape[0], (int64_t)1, (int64_t)1) : fu_tensor_newv(1, w->shape[0]);
    if (!t) return NULL;
    memcpy(t->data, w->data, (size_t)w->numel * sizeof(float));
    fu_tensor_set_name(t, w->name);
    return t;
}

/* HWIO filter -> OIHW leaf. */
static fu_tensor *oihw_filter(const fu_tfjs_weight *w) {
    int64_t K = w->shape[0], I = w->shape[2], O = w->shape[3];
    fu_tensor *t = fu_tensor_newv(4, O, I, K, K);
    if (!t) return NULL;
    for (int64_t y = 0; y < K; y++)
        for (int64_t x = 0; x < K; x++)
            for (int64_t i = 0; i < I; i++)
                for (int64_t o = 0; o < O; o++)
                    t->data[((o * I + i) * K + y) * K + x] = w->data[((y * K + x) * I + i) * O + o];
    fu_tensor_set_name(t, w->name);
    return t;
}

/* Reads "<prefix>/conv/filters", "/conv/bias", "/scale/weights", "/scale/biases". */
static int load_conv(const fu_tfjs_model *m, const char *prefix, int k, int cin, int cout,
                     conv_layer *l, unsigned char *used) {
    char name[4][96];
    snprintf(name[0], sizeof name[0], "%s/conv/filters", prefix);
    snprintf(name[1], sizeof name[1], "%s/conv/bias", prefix);
    snprintf(name[2], sizeof name[2], "%s/scale/weights", prefix);
    snprintf(name[3], sizeof name[3], "%s/scale/biases", prefix);
    int64_t fshape[4] = {k, k, cin, cout}, vshape[1] = {cout};
    const fu_tfjs_weight *f = expect_weight(m, name[0], 4, fshape, used);
    const fu_tfjs_weight *b = f ? expect_weight(m, name[1], 1, vshape, used) : NULL;
    const fu_tfjs_weight *sw = b ? expect_weight(m, name[2], 1, vshape, used) : NULL;
    const fu_tfjs_weight *sb = sw ? expect_weight(m, name[3], 1, vshape, used) : NULL;
    if (!sb) return fu_last_code();
    l->filters = oihw_filter(f);
    l->bias = channel_vector(b, 0);
    l->scale_w = channel_vector(sw, 1);
    l->scale_b = channel_vector(sb, 1);
    return l->filters && l->bias && l->scale_w && l->scale_b ? FU_OK : FU_E_INTERNAL;
}

static int load_all(fu_dlib_resnet *net, const fu_tfjs_model *m, unsigned char *used) {
    int rc = load_conv(m, "conv32_down", STEM_KERNEL, 3, STEM_CHANNELS, &net->convs[0], used);
    int cin = STEM_CHANNELS;
    for (int b = 0; b < N_BLOCKS && !rc; b++) {
        char prefix[2][64];
        snprintf(prefix[0], sizeof prefix[0], "%s/conv1", blocks[b].name);
        snprintf(prefix[1], sizeof prefix[1], "%s/conv2", blocks[b].name);
        rc = load_conv(m, prefix[0], 3, cin, blocks[b].channels, &net->convs[1 + 2 * b], used);
        if (!rc) rc = load_conv(m, prefix[1], 3, blocks[b].channels, blocks[b].channels, &net->convs[2 + 2 * b], used);
        cin = blocks[b].channels;
    }
    if (rc) return rc;
    int64_t fc_shape[2] = {cin, FU_DLIB_RESNET_DIM};
    const fu_tfjs_weight *fc = expect_weight(m, "fc", 2, fc_shape, used);
    if (!fc) return fu_last_code();
    for (int i = 0; i < m->n_weights; i++)   /* a file with more in it is another model */
        if (!used[i]) return fu_fail(FU_E_INPUT, "%s: unexpected tensor '%.80s' (not dlib's face recognition model?)", m->path, m->weights[i].name);
    net->fc = fu_tensor_new(2, fc_shape);
    if (!net->fc) return FU_E_INTERNAL;
    memcpy(net->fc->data, fc->data, (size_t)fc->numel * sizeof(float));
    fu_tensor_set_name(net->fc, "fc");
    return FU_OK;
}

/* The manifest is a bare JSON array of weight groups; wrapped as a graph model without nodes it
 * goes through the TF.js reader (shards, dtypes, quantisation, validation). */
static fu_tfjs_model *read_manifest(const char *path) {
    unsigned char *text;
    size_t size;
    if (fu_read_file(path, MAX_MANIFEST_BYTES, &text, &size)) return NULL;
    size_t start = 0;
    while (start < size && strchr(" \t\r\n", text[start])) start++;
    if (start == size || text[start] != '[') {
        free(text);
        return fu_fail_null(FU_E_INPUT, "%s: not a TF.js weights manifest (a JSON array of weight groups expected)", path);
    }
    static const char head[] = "{\"format\":\"graph-model\",\"modelTopology\":{\"node\":[]},\"weightsManifest\":";
    size_t len = sizeof head - 1 + size + 1;
    char *json = fu_malloc(len + 1);
    fu_tfjs_model *m = NULL;
    if (json) {
        memcpy(json, head, sizeof head - 1);
        memcpy(json + sizeof head - 1, text, size);
        json[len - 1] = '}';
        json[len] = 0;
        const char *slash = strrchr(path, '/');
        char dir[4096];
        if (!slash) snprintf(dir, sizeof dir, ".");
        else snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
        m = fu_tfjs_parse(json, len, dir, path);
    }
    free(json);
    free(text);
    return m;
}

static void collect_params(fu_dlib_resnet *net) {
    int k = 0;
    for (int i = 0; i < N_CONVS; i++) {
        net->params[k++] = net->convs[i].filters;
        net->params[k++] = net->convs[i].bias;
        net->params[k++] = net->convs[i].scale_w;
        net->params[k++] = net->convs[i].scale_b;
    }
    net->params[k] = net->fc;
}

/* dlib's mean colour, on the [0,1] scale. */
static int set_mean(fu_dlib_resnet *net) {
    static const float mean[3] = {122.782f, 117.001f, 104.298f};  /* dlib's, 0..255 */
    net->mean_rgb = fu_tensor_newv(3, (int64_t)3, (int64_t)1, (int64_t)1);
    if (!net->mean_rgb) return FU_E_INTERNAL;
    for (int c = 0; c < 3; c++) net->mean_rgb->data[c] = mean[c] / 255.0f;
    return FU_OK;
}

/* A zeroed conv layer named as load_conv names it. */
static int alloc_conv(conv_layer *l, const char *prefix, int k, int cin, int cout) {
    char name[96];
    l->filters = fu_tensor_newv(4, (int64_t)cout, (int64_t)cin, (int64_t)k, (int64_t)k);
    l->bias = fu_tensor_newv(1, (int64_t)cout);
    l->scale_w = fu_tensor_newv(3, (int64_t)cout, (int64_t)1, (int64_t)1);
    l->scale_b = fu_tensor_newv(3, (int64_t)cout, (int64_t)1, (int64_t)1);
    if (!l->filters || !l->bias || !l->scale_w || !l->scale_b) return FU_E_INTERNAL;
    static const char *const suffix[4] = {"conv/filters", "conv/bias", "scale/weights", "scale/biases"};
    fu_tensor *t[4] = {l->filters, l->bias, l->scale_w, l->scale_b};
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "%s/%s", prefix, suffix[i]);
        fu_tensor_set_name(t[i], name);
    }
    return FU_OK;
}

fu_dlib_resnet *fu_dlib_resnet_alloc(void) {
    fu_dlib_resnet *net = fu_calloc(1, sizeof *net);
    int rc = net ? alloc_conv(&net->convs[0], "conv32_down", STEM_KERNEL, 3, STEM_CHANNELS) : FU_E_INTERNAL;
    int cin = STEM_CHANNELS;
    for (int b = 0; b < N_BLOCKS && rc == FU_OK; b++) {
        char prefix[64];
        snprintf(prefix, sizeof prefix, "%s/conv1", blocks[b].name);
        rc = alloc_conv(&net->convs[1 + 2 * b], prefix, 3, cin, blocks[b].channels);
        snprintf(prefix, sizeof prefix, "%s/conv2", blocks[b].name);
        if (rc == FU_OK) rc = alloc_conv(&net->convs[2 + 2 * b], prefix, 3, blocks[b].channels, blocks[b].channels);
        cin = blocks[b].channels;
    }
    if (rc == FU_OK && !(net->fc = fu_tensor_newv(2, (int64_t)cin, (int64_t)FU_DLIB_RESNET_DIM))) rc = FU_E_INTERNAL;
    if (rc == FU_OK) fu_tensor_set_name(net->fc, "fc");
    if (rc == FU_OK) rc = set_mean(net);
    if (rc != FU_OK) {
        fu_dlib_resnet_free(net);
        return fu_fail_null(FU_E_INTERNAL, "dlib_resnet: out of memory");
    }
    collect_params(net);
    return net;
}

fu_dlib_resnet *fu_dlib_resnet_load(const char *manifest_path) {
    fu_tfjs_model *m = read_manifest(manifest_path);
    if (!m) return NULL;
    fu_dlib_resnet *net = fu_calloc(1, sizeof *net);
    unsigned char *used = fu_calloc((size_t)m->n_weights + 1, 1);
    int rc = net && used ? load_all(net, m, used) : FU_E_INTERNAL;
    free(used);
    fu_tfjs_free(m);
    if (!rc) rc = set_mean(net);
    if (rc) {
        fu_dlib_resnet_free(net);
        return NULL;
    }
    collect_params(net);
    return net;
}

void fu_dlib_resnet_free(fu_dlib_resnet *net) {
    if (!net) return;
    for (int i = 0; i < N_CONVS; i++) {
        fu_tensor_free(net->convs[i].filters);
        fu_tensor_free(net->convs[i].bias);
        fu_tensor_free(net->convs[i].scale_w);
        fu_tensor_free(net->convs[i].scale_b);
    }
    fu_tensor_free(net->fc);
    fu_tensor_free(net->mean_rgb);
    free(net);
}

int fu_dlib_resnet_n_params(const fu_dlib_resnet *net) { (void)net; return N_PARAMS; }

fu_tensor *fu_dlib_resnet_param(fu_dlib_resnet *net, int i) { return i >= 0 && i < N_PARAMS ? net->params[i] : NULL; }

int fu_dlib_resnet_requires_grad(fu_dlib_resnet *net, int on) {
    for (int i = 0; i < N_PARAMS; i++) {
        int rc = fu_tensor_requires_grad(net->params[i], on);
        if (rc) return rc;
    }
    return FU_OK;
}

/* ---------- forward ---------- */

/* conv (stride, 'valid' or TF 'same' padding) + bias, scale layer, optional relu. */
static fu_tensor *conv_forward(fu_graph *g, fu_tensor *x, const conv_layer *l, int stride, int same, int relu) {
    fu_conv_params p = {.stride_h = stride, .stride_w = stride};
    if (same && x) {
        int k = (int)l->filters->shape[2];
        fu_same_padding(x->shape[2], k, stride, 1, &p.pad_top, &p.pad_bottom);
        fu_same_padding(x->shape[3], k, stride, 1, &p.pad_left, &p.pad_right);
    }
    fu_tensor *y = fu_conv2d(g, x, l->filters, l->bias, &p);
    y = fu_add(g, fu_mul(g, y, l->scale_w), l->scale_b);
    return relu ? fu_relu(g, y) : y;
}

static fu_tensor *residual(fu_graph *g, fu_tensor *x, const conv_layer *c1, const conv_layer *c2) {
    fu_tensor *y = conv_forward(g, conv_forward(g, x, c1, 1, 1, 1), c2, 1, 1, 0);
    return fu_relu(g, fu_add(g, y, x));
}

/* The shortcut is a 2x2 average pool; the two branches are matched by zero padding: the
 * convolution branch at the bottom/right, the pooled branch in the new channels. */
static fu_tensor *residual_down(fu_graph *g, fu_tensor *x, const conv_layer *c1, const conv_layer *c2) {
    fu_tensor *y = conv_forward(g, conv_forward(g, x, c1, 2, 0, 1), c2, 1, 1, 0);
    fu_pool_params pp = {.kernel_h = 2, .kernel_w = 2, .stride_h = 2, .stride_w = 2};
    fu_tensor *pooled = fu_avg_pool2d(g, x, &pp);
    if (!y || !pooled) return NULL;
    int64_t dh = pooled->shape[2] - y->shape[2], dw = pooled->shape[3] - y->shape[3];
    int64_t dc = y->shape[1] - pooled->shape[1];
    if (dh || dw) {
        int64_t pads[8] = {0, 0, 0, 0, 0, dh, 0, dw};
        y = fu_pad(g, y, pads, FU_PAD_CONSTANT, 0);
    }
    if (dc) {
        int64_t pads[8] = {0, 0, 0, dc, 0, 0, 0, 0};
        pooled = fu_pad(g, pooled, pads, FU_PAD_CONSTANT, 0);
    }
    return fu_relu(g, fu_add(g, y, pooled));
}

fu_tensor *fu_dlib_resnet_forward(fu_dlib_resnet *net, fu_graph *g, fu_tensor *x) {
    if (!x) return NULL;
    if (x->ndim != 4 || x->shape[1] != 3 || x->shape[2] != FU_DLIB_RESNET_SIZE || x->shape[3] != FU_DLIB_RESNET_SIZE) {
        char buf[64];
        return fu_fail_null(FU_E_INPUT, "dlib_resnet: input %s, [N,3,%d,%d] expected", fu_shape_str(x, buf, sizeof buf),
                            FU_DLIB_RESNET_SIZE, FU_DLIB_RESNET_SIZE);
    }
    fu_tensor *y = conv_forward(g, fu_sub(g, x, net->mean_rgb), &net->convs[0], 2, 0, 1);
    fu_pool_params mp = {.kernel_h = 3, .kernel_w = 3, .stride_h = 2, .stride_w = 2};
    y = fu_max_pool2d(g, y, &mp);
    for (int b = 0; b < N_BLOCKS; b++) {
        const conv_layer *c1 = &net->convs[1 + 2 * b], *c2 = &net->convs[2 + 2 * b];
        y = blocks[b].down ? residual_down(g, y, c1, c2) : residual(g, y, c1, c2);
    }
    y = fu_mean(g, y, (1u << 2) | (1u << 3), 0);
    return fu_matmul(g, y, net->fc);
}
