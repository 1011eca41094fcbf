/* Convolutions (conv2d, conv_transpose2d) on NCHW tensors. Two implementations:
 *
 *  1. oneDNN convolution primitives (the default): forward, backward_data and backward_weights.
 *     Memory formats are left to oneDNN (format_any): it picks blocked layouts (nChw16c...) for its
 *     direct JIT kernels (depthwise included), and we reorder the engine's plain NCHW / OIHW
 *     tensors in and out; measured 1.5-3x faster than plain layouts here (bench/RESULTS.md).
 *     Building a primitive costs milliseconds (JIT), so built primitives are kept in a small global
 *     cache keyed by the problem (graphs rebuilt every step reuse them); a node holds a reference
 *     in n->state.
 *  2. im2col + GEMM (oneDNN sgemm), the fallback for problems oneDNN rejects and the reference
 *     for parity tests. Columns are built a band of output rows at a time so the scratch stays
 *     bounded (CHUNK_FLOATS) however large the image.
 * FACEUP_CONV_IMPL=im2col | dnnl_plain (plain layouts) forces a path, for tests and benchmarks.
 *
 * Geometry: the "image" side is the conv input / transposed-conv output [N, C, H, W]; the
 * "column" side is the conv output / transposed-conv input [N, Ccol, OH, OW]. The weight is
 * [Ccol, C/G, kh, kw] for both ops (PyTorch's layouts), i.e. oneDNN's goihw with o = Ccol/G.
 * conv_transpose2d is the adjoint of conv2d w.r.t. its input, so it swaps the directions:
 *   convT forward = conv backward_data, convT input grad = conv forward,
 *   convT weight grad = conv backward_weights with src = grad of the image side, diff_dst = x.
 * im2col, per image and group:
 *   col[(c*kh + i)*kw + j, oy*OW + ox] = x[c, oy*sh - pt + i*dh, ox*sw - pl + j*dw]  (0 outside)
 *   y_g = W_g [Ccol/G, C/G*kh*kw] @ col_g;  dcol_g = W_g^T @ dy_g, col2im adds dcol into dx;
 *   dW_g += dy_g @ col_g^T. */
#include "ops.h"
#include "error.h"
#include <dnnl.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int64_t C, H, W;              /* the image side, channels of one group */
    int64_t OH, OW;               /* the column side */
    int kh, kw, sh, sw, dh, dw, pt, pl;
} conv_geom;

/* Bound on the im2col scratch: 8 Mi floats = 32 MiB (a band of output rows at a time). */
#define CHUNK_FLOATS ((int64_t)8 << 20)

static int64_t col_rows(const conv_geom *q) { return q->C * q->kh * q->kw; }

/* Output rows per band so that the columns of one band fit in CHUNK_FLOATS (at least one row). */
static int64_t band_rows(const conv_geom *q) {
    int64_t rows = CHUNK_FLOATS / (col_rows(q) * q->OW);
    return rows < 1 ? 1 : rows > q->OH ? q->OH : rows;
}

/* Columns of output rows [oy0, oy1): col is [K, (oy1 - oy0) * OW]. */
static void im2col(const conv_geom *q, const float *img, float *col, int64_t oy0, int64_t oy1) {
    int64_t rows = col_rows(q), npix = (oy1 - oy0) * q->OW;
    #pragma omp parallel for schedule(static) if (rows * npix > 32768)
    for (int64_t r = 0; r < rows; r++) {
        int64_t c = r / (q->kh * q->kw), i = (r / q->kw) % q->kh, j = r % q->kw;
        const float *src = img + c * q->H * q->W;
        float *dst = col + r * npix;
        for (int64_t oy = oy0; oy < oy1; oy++) {
            int64_t y = oy * q->sh - q->pt + i * q->dh;
            float *d = dst + (oy - oy0) * q->OW;
            if (y < 0 || y >= q->H) { memset(d, 0, (size_t)q->OW * sizeof(float)); continue; }
            for (int64_t ox = 0; ox < q->OW; ox++) {
                int64_t x = ox * q->sw - q->pl + j * q->dw;
                d[ox] = (x >= 0 && x < q->W) ? src[y * q->W + x] : 0;
            }
        }
    }
}

/* img += col2im(col) for output rows [oy0, oy1). Parallel over channels: each channel's rows
 * write only that channel. */
static void col2im_add(const conv_geom *q, const float *col, float *img, int64_t oy0, int64_t oy1) {
    int64_t npix = (oy1 - oy0) * q->OW, kk = (int64_t)q->kh * q->kw;
    #pragma omp parallel for schedule(static) if (q->C * kk * npix > 32768)
    for (int64_t c = 0; c < q->C; c++) {
        float *dst = img + c * q->H * q->W;
        for (int64_t r = c * kk; r < (c + 1) * kk; r++) {
            int64_t i = (r / q->kw) % q->kh, j = r % q->kw;
            const float *s = col + r * npix;
            for (int64_t oy = oy0; oy < oy1; oy++) {
                int64_t y = oy * q->sh - q->pt + i * q->dh;
                if (y < 0 || y >= q->H) continue;
                for (int64_t ox = 0; ox < q->OW; ox++) {
                    int64_t x = ox * q->sw - q->pl + j * q->dw;
                    if (x >= 0 && x < q->W) dst[y * q->W + x] += s[(oy - oy0) * q->OW + ox];
                }
            }
        }
    }
}

void fu_same_padding(int64_t in, int k, int stride, int dilation, int *pad_before, int *pad_after) {
    if (stride < 1) stride = 1;
    if (dilation < 1) dilation = 1;
    int64_t out = (in + stride - 1) / stride;
    int64_t total = (out - 1) * stride + (int64_t)(k - 1) * dilation + 1 - in;
    if (total < 0) total = 0;
    *pad_before = (int)(total / 2);
    *pad_after = (int)(total - total / 2);
}

/* A conv node's parameters (in fu_node.params). */
typedef struct {
    conv_geom q;                  /* one group's image side, the column side, the kernel */
    int64_t N, groups;
    int64_t image_channels, column_channels;   /* of all groups */
    int transposed;               /* 1: conv_transpose2d, whose output is the image side */
} conv_node_params;
_Static_assert(sizeof(conv_node_params) <= FU_NODE_PARAM_BYTES, "conv_node_params does not fit in a node");

static const conv_node_params *node_params(const fu_node *n) { return FU_NODE_PARAMS(n, conv_node_params); }

static void add_bias(float *y, const float *b, int64_t N, int64_t C, int64_t hw) {
    #pragma omp parallel for collapse(2) schedule(static) if (N * C * hw > 65536)
    for (int64_t i = 0; i < N; i++)
        for (int64_t c = 0; c < C; c++) {
            float *p = y + (i * C + c) * hw;
            for (int64_t k = 0; k < hw; k++) p[k] += b[c];
        }
}

static void bias_grad(float *gb, const float *gy, int64_t N, int64_t C, int64_t hw) {
    #pragma omp parallel for schedule(static) if (N * C * hw > 65536)
    for (int64_t c = 0; c < C; c++) {
        double s = 0;
        for (int64_t i = 0; i < N; i++) {
            const float *p = gy + (i * C + c) * hw;
            for (int64_t k = 0; k < hw; k++) s += p[k];
        }
        gb[c] += (float)s;
    }
}

/* ---- im2col + GEMM, per image, group and band of output rows ---- */

/* column = conv(image): the conv forward, and the transposed conv's input gradient (beta = 1). */
static int gemm_to_column(const fu_node *n, const float *img, const float *w, float *column, float beta) {
    const conv_node_params *p = node_params(n);
    conv_geom q = p->q;
    int64_t G = p->groups, N = p->N, Og = p->column_channels / G, K = col_rows(&q), npix = q.OH * q.OW, band = band_rows(&q);
    float *col = fu_graph_scratch(n->graph, (size_t)(K * band * q.OW) * sizeof(float));
    if (!col) return FU_E_INTERNAL;
    for (int64_t i = 0; i < N; i++)
        for (int64_t g = 0; g < G; g++)
            for (int64_t oy = 0; oy < q.OH; oy += band) {
                int64_t oy1 = oy + band < q.OH ? oy + band : q.OH, cnt = (oy1 - oy) * q.OW;
                im2col(&q, img + (i * G + g) * q.C * q.H * q.W, col, oy, oy1);
                int rc = fu_sgemm('n', 'n', Og, cnt, K, 1, w + g * Og * K, K, col, cnt, beta,
                                  column + (i * G + g) * Og * npix + oy * q.OW, npix);
                if (rc != FU_OK) return rc;
            }
    return FU_OK;
}

/* image += conv^T(column): the conv input gradient, and the transposed conv forward. */
static int gemm_to_image_add(const fu_node *n, const float *column, const float *w, float *img) {
    const conv_node_params *p = node_params(n);
    conv_geom q = p->q;
    int64_t G = p->groups, N = p->N, Og = p->column_channels / G, K = col_rows(&q), npix = q.OH * q.OW, band = band_rows(&q);
    float *col = fu_graph_scratch(n->graph, (size_t)(K * band * q.OW) * sizeof(float));
    if (!col) return FU_E_INTERNAL;
    for (int64_t i = 0; i < N; i++)
        for (int64_t g = 0; g < G; g++)
            for (int64_t oy = 0; oy < q.OH; oy += band) {
                int64_t oy1 = oy + band < q.OH ? oy + band : q.OH, cnt = (oy1 - oy) * q.OW;
                int rc = fu_sgemm('t', 'n', K, cnt, Og, 1, w + g * Og * K, K, column + (i * G + g) * Og * npix + oy * q.OW, npix,
                                  0, col, cnt);
                if (rc != FU_OK) return rc;
                col2im_add(&q, col, img + (i * G + g) * q.C * q.H * q.W, oy, oy1);
            }
    return FU_OK;
}

/* gw += column-side gradient (conv) or input (convT) @ im2col(image side)^T. */
static int gemm_weight_grad(const fu_node *n, const float *img, const float *column, float *gw) {
    const conv_node_params *p = node_params(n);
    conv_geom q = p->q;
    int64_t G = p->groups, N = p->N, Og = p->column_channels / G, K = col_rows(&q), npix = q.OH * q.OW, band = band_rows(&q);
    float *col = fu_graph_scratch(n->graph, (size_t)(K * band * q.OW) * sizeof(float));
    if (!col) return FU_E_INTERNAL;
    for (int64_t i = 0; i < N; i++)
        for (int64_t g = 0; g < G; g++)
            for (int64_t oy = 0; oy < q.OH; oy += band) {
                int64_t oy1 = oy + band < q.OH ? oy + band : q.OH, cnt = (oy1 - oy) * q.OW;
                im2col(&q, img + (i * G + g) * q.C * q.H * q.W, col, oy, oy1);
                int rc = fu_sgemm('n', 't', Og, K, cnt, 1, column + (i * G + g) * Og * npix + oy * q.OW, npix, col, cnt, 1,
                                  gw + g * Og * K, K);
                if (rc != FU_OK) return rc;
            }
    return FU_OK;
}

/* ---- oneDNN convolution primitives ---- */

typedef enum { IMPL_DNNL, IMPL_DNNL_PLAIN, IMPL_IM2COL } conv_impl;

static conv_impl requested_impl(void) {
    const char *e = getenv("FACEUP_CONV_IMPL");
    if (e && !strcmp(e, "im2col")) return IMPL_IM2COL;
    if (e && !strcmp(e, "dnnl_plain")) return IMPL_DNNL_PLAIN;
    return IMPL_DNNL;
}

/* The three oneDNN directions, named by what they produce. */
enum { STEP_COLUMN, STEP_IMAGE, STEP_WEIGHT_GRAD, N_STEPS };
/* The engine buffers a primitive argument is bound to. */
enum { BUF_IMAGE, BUF_COLUMN, BUF_WEIGHT, N_BUFS };

/* One argument of a primitive: the engine's plain layout, the primitive's layout, and the reorder
 * between them (into the primitive for inputs; out of it for outputs, adding when accumulating). */
typedef struct {
    int arg, buf, output;
    dnnl_memory_desc_t user_md, prim_md;
    dnnl_primitive_t reorder;   /* NULL: the primitive uses the engine's buffer directly */
} dnnl_arg_plan;

typedef struct {
    dnnl_primitive_t prim;      /* NULL until built */
    int failed;                 /* oneDNN has no implementation: use im2col for this step */
    int n_args;
    dnnl_arg_plan args[3];
} dnnl_step;

/* key: transposed, impl, threads, N, C, H, W, Ccol, OH, OW, kh, kw, sh, sw, dh, dw, pt, pl, G */
#define KEY_LEN 19
typedef struct {
    int64_t key[KEY_LEN];
    int refs, cached;
    dnnl_primitive_desc_t hint; /* forward-training descriptor, the hint for the backward ones */
    dnnl_step step[N_STEPS];
} conv_entry;

#define CACHE_SIZE 64
static conv_entry *cache[CACHE_SIZE];
static dnnl_engine_t dnnl_cpu_engine;
/* oneDNN CPU streams execute in the calling thread, so one stream serves every caller. */
static dnnl_stream_t dnnl_cpu_stream;

static void make_key(const fu_node *n, conv_impl impl, int64_t *key) {
    const conv_node_params *p = node_params(n);
    const conv_geom *q = &p->q;
    int64_t k[KEY_LEN] = {p->transposed, impl, omp_get_max_threads(), p->N, p->image_channels, q->H, q->W,
                          p->column_channels, q->OH, q->OW, q->kh, q->kw, q->sh, q->sw, q->dh, q->dw, q->pt, q->pl, p->groups};
    memcpy(key, k, sizeof k);
}

static void plain_md(dnnl_memory_desc_t *md, int ndims, const int64_t *dims, dnnl_format_tag_t tag) {
    dnnl_dims_t d;
    for (int i = 0; i < ndims; i++) d[i] = dims[i];
    dnnl_memory_desc_init_by_tag(md, ndims, d, dnnl_f32, tag);
}

/* The problem's memory descriptors, plain (as the engine stores them) or format_any. */
typedef struct { dnnl_memory_desc_t image, column, weight; } conv_mds;

static void problem_mds(const int64_t *k, int any, conv_mds *m) {
    int64_t G = k[18], img[4] = {k[3], k[4], k[5], k[6]}, col[4] = {k[3], k[7], k[8], k[9]};
    int64_t wgt[5] = {G, k[7] / G, k[4] / G, k[10], k[11]};
    plain_md(&m->image, 4, img, any ? dnnl_format_tag_any : dnnl_nchw);
    plain_md(&m->column, 4, col, any ? dnnl_format_tag_any : dnnl_nchw);
    if (G == 1) plain_md(&m->weight, 4, wgt + 1, any ? dnnl_format_tag_any : dnnl_oihw);
    else plain_md(&m->weight, 5, wgt, any ? dnnl_format_tag_any : dnnl_goihw);
}

/* oneDNN counts dilation from 0; the right/bottom padding is whatever makes the sizes agree
 * (it may be negative by less than the stride when the last rows are not reached). */
static void problem_dims(const int64_t *k, dnnl_dims_t strides, dnnl_dims_t dil, dnnl_dims_t pad_l, dnnl_dims_t pad_r) {
    for (int a = 0; a < 2; a++) {
        int64_t in = k[5 + a], out = k[8 + a], ker = k[10 + a], s = k[12 + a], d = k[14 + a], pl = k[16 + a];
        strides[a] = s;
        dil[a] = d - 1;
        pad_l[a] = pl;
        pad_r[a] = (out - 1) * s + (ker - 1) * d + 1 - in - pl;
    }
}

static int init_desc(const int64_t *k, int step, const conv_mds *m, dnnl_convolution_desc_t *desc) {
    dnnl_dims_t s, d, pl, pr;
    problem_dims(k, s, d, pl, pr);
    dnnl_status_t st;
    if (step == STEP_COLUMN)
        st = dnnl_dilated_convolution_forward_desc_init(desc, dnnl_forward_training, dnnl_convolution_direct, &m->image, &m->weight,
                                                        NULL, &m->column, s, d, pl, pr);
    else if (step == STEP_IMAGE)
        st = dnnl_dilated_convolution_backward_data_desc_init(desc, dnnl_convolution_direct, &m->image, &m->weight, &m->column, s, d, pl, pr);
    else
        st = dnnl_dilated_convolution_backward_weights_desc_init(desc, dnnl_convolution_direct, &m->image, &m->weight, NULL, &m->column, s, d, pl, pr);
    return st == dnnl_success ? FU_OK : FU_E_INTERNAL;
}

static dnnl_primitive_t make_reorder(const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to, int add) {
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    if (add && (dnnl_primitive_attr_create(&attr) != dnnl_success || dnnl_post_ops_create(&po) != dnnl_success ||
                dnnl_post_ops_append_sum(po, 1.0f) != dnnl_success || dnnl_primitive_attr_set_post_ops(attr, po) != dnnl_success)) {
        dnnl_post_ops_destroy(po);
        dnnl_primitive_attr_destroy(attr);
        return NULL;
    }
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t r = NULL;
    if (dnnl_reorder_primitive_desc_create(&pd, from, dnnl_cpu_engine, to, dnnl_cpu_engine, attr) == dnnl_success)
        dnnl_primitive_create(&r, pd);
    dnnl_primitive_desc_destroy(pd);
    dnnl_post_ops_destroy(po);
    dnnl_primitive_attr_destroy(attr);
    return r;
}

/* Binds argument `arg` of the primitive to engine buffer `buf`. Outputs of the backward steps are
 * gradients, which accumulate; the column of the transposed conv's input gradient too. */
static int plan_arg(dnnl_arg_plan *a, dnnl_primitive_desc_t pd, int arg, int buf, int output, int add,
                    const dnnl_memory_desc_t *user) {
    *a = (dnnl_arg_plan){.arg = arg, .buf = buf, .output = output, .user_md = *user};
    a->prim_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, arg);
    if (!add && dnnl_memory_desc_equal(&a->prim_md, user)) return FU_OK;
    a->reorder = output ? make_reorder(&a->prim_md, user, add) : make_reorder(user, &a->prim_md, 0);
    return a->reorder ? FU_OK : FU_E_INTERNAL;
}

static int build_step(conv_entry *e, int step) {
    int any = e->key[1] != IMPL_DNNL_PLAIN, tr = (int)e->key[0];
    conv_mds m, user;
    problem_mds(e->key, any, &m);
    problem_mds(e->key, 0, &user);
    dnnl_convolution_desc_t desc;
    if (!e->hint) {
        if (init_desc(e->key, STEP_COLUMN, &m, &desc) != FU_OK) return FU_E_INTERNAL;
        if (dnnl_primitive_desc_create(&e->hint, &desc, NULL, dnnl_cpu_engine, NULL) != dnnl_success) return FU_E_INTERNAL;
    }
    dnnl_primitive_desc_t pd = NULL;
    if (init_desc(e->key, step, &m, &desc) != FU_OK ||
        dnnl_primitive_desc_create(&pd, &desc, NULL, dnnl_cpu_engine, step == STEP_COLUMN ? NULL : e->hint) != dnnl_success)
        return FU_E_INTERNAL;
    dnnl_step *s = &e->step[step];
    int rc = FU_OK;
    if (step == STEP_COLUMN) {
        rc |= plan_arg(&s->args[0], pd, DNNL_ARG_SRC, BUF_IMAGE, 0, 0, &user.image);
        rc |= plan_arg(&s->args[1], pd, DNNL_ARG_WEIGHTS, BUF_WEIGHT, 0, 0, &user.weight);
        rc |= plan_arg(&s->args[2], pd, DNNL_ARG_DST, BUF_COLUMN, 1, tr, &user.column);
    } else if (step == STEP_IMAGE) {
        rc |= plan_arg(&s->args[0], pd, DNNL_ARG_DIFF_DST, BUF_COLUMN, 0, 0, &user.column);
        rc |= plan_arg(&s->args[1], pd, DNNL_ARG_WEIGHTS, BUF_WEIGHT, 0, 0, &user.weight);
        rc |= plan_arg(&s->args[2], pd, DNNL_ARG_DIFF_SRC, BUF_IMAGE, 1, !tr, &user.image);
    } else {
        rc |= plan_arg(&s->args[0], pd, DNNL_ARG_SRC, BUF_IMAGE, 0, 0, &user.image);
        rc |= plan_arg(&s->args[1], pd, DNNL_ARG_DIFF_DST, BUF_COLUMN, 0, 0, &user.column);
        rc |= plan_arg(&s->args[2], pd, DNNL_ARG_DIFF_WEIGHTS, BUF_WEIGHT, 1, 1, &user.weight);
    }
    s->n_args = 3;
    if (rc == FU_OK && dnnl_primitive_create(&s->prim, pd) != dnnl_success) rc = FU_E_INTERNAL;
    dnnl_primitive_desc_destroy(pd);
    return rc;
}

static void destroy_entry(conv_entry *e) {
    for (int k = 0; k < N_STEPS; k++) {
        dnnl_primitive_destroy(e->step[k].prim);
        for (int a = 0; a < e->step[k].n_args; a++) dnnl_primitive_destroy(e->step[k].args[a].reorder);
    }
    dnnl_primitive_desc_destroy(e->hint);
    free(e);
}

/* Finds or makes the entry for a key (the caller holds the cache lock). A full cache evicts an
 * entry no node refers to; if every entry is in use the new one belongs to its node alone. */
static conv_entry *cache_get(const int64_t *key) {
    int free_slot = -1, idle_slot = -1;
    for (int i = 0; i < CACHE_SIZE; i++) {
        if (cache[i] && !memcmp(cache[i]->key, key, sizeof cache[i]->key)) {
            cache[i]->refs++;
            return cache[i];
        }
        if (!cache[i]) free_slot = i;
        else if (!cache[i]->refs) idle_slot = i;
    }
    if (!dnnl_cpu_engine && (dnnl_engine_create(&dnnl_cpu_engine, dnnl_cpu, 0) != dnnl_success ||
                             dnnl_stream_create(&dnnl_cpu_stream, dnnl_cpu_engine, dnnl_stream_default_flags) != dnnl_success))
        return NULL;
    conv_entry *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    memcpy(e->key, key, sizeof e->key);
    e->refs = 1;
    int slot = free_slot >= 0 ? free_slot : idle_slot;
    if (slot >= 0) {
        if (cache[slot]) destroy_entry(cache[slot]);
        cache[slot] = e;
        e->cached = 1;
    }
    return e;
}

static void conv_free_state(void *state) {
    conv_entry *e = state;
    int destroy;
    #pragma omp critical(fu_conv_cache)
    destroy = --e->refs == 0 && !e->cached;
    if (destroy) destroy_entry(e);
}

/* The node's entry with `step` built, or NULL when oneDNN is not used for it. */
static conv_entry *node_entry(fu_node *n, conv_impl impl, int step) {
    int64_t key[KEY_LEN];
    make_key(n, impl, key);
    conv_entry *e = n->state;
    if (e && memcmp(e->key, key, sizeof key)) {  /* thread count or impl changed since */
        conv_free_state(e);
        e = n->state = NULL;
    }
    #pragma omp critical(fu_conv_cache)
    {
        if (!e) e = n->state = cache_get(key);
        if (e && !e->step[step].prim && !e->step[step].failed && build_step(e, step) != FU_OK) e->step[step].failed = 1;
    }
    return e && !e->step[step].failed ? e : NULL;
}

static int run_step(fu_graph *g, const dnnl_step *s, float *const buf[N_BUFS]) {
    size_t off[3] = {0}, total = 0;
    for (int a = 0; a < s->n_args; a++)
        if (s->args[a].reorder) {
            off[a] = total;
            total += (dnnl_memory_desc_get_size(&s->args[a].prim_md) + 63) & ~(size_t)63;
        }
    char *tmp = total ? (char *)fu_graph_scratch(g, total) : NULL;
    if (total && !tmp) return FU_E_INTERNAL;
    dnnl_memory_t user[3] = {0}, prim[3] = {0};
    dnnl_exec_arg_t args[4];
    int n_args = 0, ok = 1;
    for (int a = 0; a < s->n_args && ok; a++) {
        const dnnl_arg_plan *p = &s->args[a];
        ok = dnnl_memory_create(&user[a], &p->user_md, dnnl_cpu_engine, buf[p->buf]) == dnnl_success;
        if (ok && p->reorder) ok = dnnl_memory_create(&prim[a], &p->prim_md, dnnl_cpu_engine, tmp + off[a]) == dnnl_success;
        if (ok && p->reorder && !p->output)
            ok = dnnl_primitive_execute(p->reorder, dnnl_cpu_stream, 2,
                                        (dnnl_exec_arg_t[]){{DNNL_ARG_FROM, user[a]}, {DNNL_ARG_TO, prim[a]}}) == dnnl_success;
        args[n_args++] = (dnnl_exec_arg_t){p->arg, p->reorder ? prim[a] : user[a]};
    }
    if (ok) ok = dnnl_primitive_execute(s->prim, dnnl_cpu_stream, n_args, args) == dnnl_success;
    for (int a = 0; a < s->n_args && ok; a++)
        if (s->args[a].reorder && s->args[a].output)
            ok = dnnl_primitive_execute(s->args[a].reorder, dnnl_cpu_stream, 2,
                                        (dnnl_exec_arg_t[]){{DNNL_ARG_FROM, prim[a]}, {DNNL_ARG_TO, user[a]}}) == dnnl_success;
    if (ok) ok = dnnl_stream_wait(dnnl_cpu_stream) == dnnl_success;
    for (int a = 0; a < 3; a++) {
        dnnl_memory_destroy(user[a]);
        dnnl_memory_destroy(prim[a]);
    }
    return ok ? FU_OK : fu_fail(FU_E_INTERNAL, "conv: oneDNN execution failed");
}
/* ---- the ops: pick a path per direction ---- */

static conv_entry *dnnl_entry(fu_node *n, conv_impl impl, int step) {
    return impl == IMPL_IM2COL ? NULL : node_entry(n, impl, step);
}

/* conv2d: image = x (input), column = y (output). */
static int conv_forward(fu_node *n) {
    float *x = n->in[0]->data, *w = n->in[1]->data, *b = n->n_in == 3 ? n->in[2]->data : NULL, *y = n->out->data;
    conv_entry *e = dnnl_entry(n, requested_impl(), STEP_COLUMN);
    int rc = e ? run_step(n->graph, &e->step[STEP_COLUMN], (float *[]){x, y, w}) : gemm_to_column(n, x, w, y, 0);
    const conv_node_params *p = node_params(n);
    if (rc == FU_OK && b) add_bias(y, b, p->N, p->column_channels, p->q.OH * p->q.OW);
    return rc;
}

/* Backward functions return nothing: a failure is left as the thread's error, which
 * fu_graph_backward checks after each op. */
static void report_backward(int rc) {
    if (rc != FU_OK && fu_last_code() == FU_OK) fu_fail(rc, "conv backward: out of memory");
}

static void conv_backward(fu_node *n) {
    float *gx = fu_in_grad(n, 0), *gw = fu_in_grad(n, 1), *gb = n->n_in == 3 ? fu_in_grad(n, 2) : NULL;
    float *x = n->in[0]->data, *w = n->in[1]->data, *gy = n->out->grad;
    const conv_node_params *p = node_params(n);
    if (gb) bias_grad(gb, gy, p->N, p->column_channels, p->q.OH * p->q.OW);
    conv_impl impl = requested_impl();
    conv_entry *e;
    int rc = FU_OK;
    if (gx && (e = dnnl_entry(n, impl, STEP_IMAGE))) rc = run_step(n->graph, &e->step[STEP_IMAGE], (float *[]){gx, gy, w});
    else if (gx) rc = gemm_to_image_add(n, gy, w, gx);
    if (rc == FU_OK && gw && (e = dnnl_entry(n, impl, STEP_WEIGHT_GRAD))) rc = run_step(n->graph, &e->step[STEP_WEIGHT_GRAD], (float *[]){x, gy, gw});
    else if (rc == FU_OK && gw) rc = gemm_weight_grad(n, x, gy, gw);
    report_backward(rc);
}

static const fu_op op_conv2d = {"conv2d", conv_forward, conv_backward, conv_free_state};

/* conv_transpose2d: column = x (input), image = y (output). */
static int convt_forward(fu_node *n) {
    float *x = n->in[0]->data, *w = n->in[1]->data, *b = n->n_in == 3 ? n->in[2]->data : NULL, *y = n->out->data;
    conv_entry *e = dnnl_entry(n, requested_impl(), STEP_IMAGE);
    int rc;
    if (e) rc = run_step(n->graph, &e->step[STEP_IMAGE], (float *[]){y, x, w});
    else {
        memset(y, 0, (size_t)n->out->numel * sizeof(float));
        rc = gemm_to_image_add(n, x, w, y);
    }
    const conv_node_params *p = node_params(n);
    if (rc == FU_OK && b) add_bias(y, b, p->N, p->image_channels, p->q.H * p->q.W);
    return rc;
}

static void convt_backward(fu_node *n) {
    float *gx = fu_in_grad(n, 0), *gw = fu_in_grad(n, 1), *gb = n->n_in == 3 ? fu_in_grad(n, 2) : NULL;
    float *x = n->in[0]->data, *w = n->in[1]->data, *gy = n->out->grad;
    const conv_node_params *p = node_params(n);
    if (gb) bias_grad(gb, gy, p->N, p->image_channels, p->q.H * p->q.W);
    conv_impl impl = requested_impl();
    conv_entry *e;
    int rc = FU_OK;
    if (gx && (e = dnnl_entry(n, impl, STEP_COLUMN))) rc = run_step(n->graph, &e->step[STEP_COLUMN], (float *[]){gy, gx, w});
    else if (gx) rc = gemm_to_column(n, gy, w, gx, 1);
    if (rc == FU_OK && gw && (e = dnnl_entry(n, impl, STEP_WEIGHT_GRAD))) rc = run_step(n->graph, &e->step[STEP_WEIGHT_GRAD], (float *[]){gy, x, gw});
    else if (rc == FU_OK && gw) rc = gemm_weight_grad(n, gy, x, gw);
    report_backward(rc);
}

static const fu_op op_conv_transpose2d = {"conv_transpose2d", convt_forward, convt_backward, conv_free_state};

/* ---- constructors ---- */

typedef struct { int sh, sw, dh, dw, pt, pb, pl, pr, groups, oph, opw; } conv_args;

static int read_params(const char *op, const fu_conv_params *p, conv_args *a) {
    fu_conv_params d = {0};
    if (!p) p = &d;
    *a = (conv_args){p->stride_h ? p->stride_h : 1, p->stride_w ? p->stride_w : 1,
                     p->dilation_h ? p->dilation_h : 1, p->dilation_w ? p->dilation_w : 1,
                     p->pad_top, p->pad_bottom, p->pad_left, p->pad_right, p->groups ? p->groups : 1,
                     p->output_pad_h, p->output_pad_w};
    if (a->sh < 1 || a->sw < 1 || a->dh < 1 || a->dw < 1 || a->groups < 1 || a->sh > 4096 || a->sw > 4096 || a->dh > 4096 || a->dw > 4096)
        return fu_fail(FU_E_INPUT, "%s: strides, dilations and groups must be positive (and <= 4096)", op);
    if (a->pt < 0 || a->pb < 0 || a->pl < 0 || a->pr < 0 || a->pt > 65536 || a->pb > 65536 || a->pl > 65536 || a->pr > 65536)
        return fu_fail(FU_E_INPUT, "%s: paddings must be in [0, 65536]", op);
    return FU_OK;
}

static void set_node_params(fu_node *n, const fu_tensor *w, const conv_args *a, int64_t N, int64_t C, int64_t H, int64_t W,
                            int transposed, int64_t O, int64_t OH, int64_t OW) {
    conv_node_params p = {{C / a->groups, H, W, OH, OW, (int)w->shape[2], (int)w->shape[3], a->sh, a->sw, a->dh, a->dw, a->pt, a->pl},
                          N, a->groups, C, O, transposed};
    memcpy(n->params, &p, sizeof p);
}

static int check_inputs(const char *op, fu_tensor *x, fu_tensor *w, fu_tensor *b, int64_t w_out) {
    char sx[96], sw[96];
    if (x->ndim != 4 || w->ndim != 4)
        return fu_fail(FU_E_INPUT, "%s: input %s and weight %s must be 4-d", op, fu_shape_str(x, sx, sizeof sx), fu_shape_str(w, sw, sizeof sw));
    if (b && b->numel != w_out) return fu_fail(FU_E_INPUT, "%s: bias has %lld elements, expected %lld", op, (long long)b->numel, (long long)w_out);
    return FU_OK;
}

fu_tensor *fu_conv2d(fu_graph *g, fu_tensor *x, fu_tensor *w, fu_tensor *b, const fu_conv_params *p) {
    fu_tensor *in[3] = {x, w, b};
    if (!x || !w) return fu_node_run(fu_node_new(g, &op_conv2d, in, 2, 0, NULL));
    conv_args a;
    if (read_params("conv2d", p, &a) != FU_OK || check_inputs("conv2d", x, w, b, w->shape[0]) != FU_OK) return NULL;
    int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3], O = w->shape[0];
    char sx[96], sw[96];
    if (C % a.groups || O % a.groups || w->shape[1] != C / a.groups)
        return fu_fail_null(FU_E_INPUT, "conv2d: input %s, weight %s and groups %d do not match", fu_shape_str(x, sx, sizeof sx), fu_shape_str(w, sw, sizeof sw), a.groups);
    int64_t eh = (w->shape[2] - 1) * a.dh + 1, ew = (w->shape[3] - 1) * a.dw + 1;
    int64_t OH = (H + a.pt + a.pb - eh) / a.sh + 1, OW = (W + a.pl + a.pr - ew) / a.sw + 1;
    if (H + a.pt + a.pb < eh || W + a.pl + a.pr < ew || w->shape[2] < 1 || w->shape[3] < 1)
        return fu_fail_null(FU_E_INPUT, "conv2d: kernel %s (dilated) is larger than the padded input %s", fu_shape_str(w, sw, sizeof sw), fu_shape_str(x, sx, sizeof sx));
    fu_node *n = fu_node_new(g, &op_conv2d, in, b ? 3 : 2, 4, (int64_t[]){N, O, OH, OW});
    if (!n) return NULL;
    set_node_params(n, w, &a, N, C, H, W, 0, O, OH, OW);
    return fu_node_run(n);
}

fu_tensor *fu_conv_transpose2d(fu_graph *g, fu_tensor *x, fu_tensor *w, fu_tensor *b, const fu_conv_params *p) {
    fu_tensor *in[3] = {x, w, b};
    if (!x || !w) return fu_node_run(fu_node_new(g, &op_conv_transpose2d, in, 2, 0, NULL));
    conv_args a;
    if (read_params("conv_transpose2d", p, &a) != FU_OK || check_inputs("conv_transpose2d", x, w, NULL, 0) != FU_OK) return NULL;
    int64_t N = x->shape[0], I = x->shape[1], H = x->shape[2], W = x->shape[3], O = w->shape[1] * a.groups;
    char sx[96], sw[96];
    if (w->shape[0] != I || I % a.groups)
        return fu_fail_null(FU_E_INPUT, "conv_transpose2d: input %s, weight %s (expected [Cin, Cout/groups, kh, kw]) and groups %d do not match", fu_shape_str(x, sx, sizeof sx), fu_shape_str(w, sw, sizeof sw), a.groups);
    if (b && b->numel != O) return fu_fail_null(FU_E_INPUT, "conv_transpose2d: bias has %lld elements, expected %lld", (long long)b->numel, (long long)O);
    if (a.oph < 0 || a.opw < 0 || (a.oph >= a.sh && a.oph >= a.dh) || (a.opw >= a.sw && a.opw >= a.dw))
        return fu_fail_null(FU_E_INPUT, "conv_transpose2d: output padding must be smaller than the stride or the dilation");
    int64_t OH = (H - 1) * a.sh - a.pt - a.pb + (w->shape[2] - 1) * a.dh + a.oph + 1;
    int64_t OW = (W - 1) * a.sw - a.pl - a.pr + (w->shape[3] - 1) * a.dw + a.opw + 1;
    if (OH < 1 || OW < 1 || w->shape[2] < 1 || w->shape[3] < 1)
        return fu_fail_null(FU_E_INPUT, "conv_transpose2d: paddings leave an empty output for input %s", fu_shape_str(x, sx, sizeof sx));
    fu_node *n = fu_node_new(g, &op_conv_transpose2d, in, b ? 3 : 2, 4, (int64_t[]){N, O, OH, OW});
    if (!n) return NULL;
    /* Image side = the output (OH, OW); column side = the input (H, W). */
    set_node_params(n, w, &a, N, O, OH, OW, 1, I, H, W);
    return fu_node_run(n);
}
