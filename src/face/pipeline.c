#include "pipeline.h"
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/ops.h"
#include "face/align.h"
#include "face/dlib_resnet.h"
#include "face/models.h"
#include "face/tfjs_graph.h"
#include "faceup.h"
#include "io/image.h"

#define DETECT_MIN_SCORE 0.7f
#define DETECT_IOU 0.3f
#define MAX_DETECTIONS 32
/* human: blazeface box enlarged by config.face.detector.scale (default 1.4), cut out at the
 * face mesh model's input size (facemesh.json: 192) */
#define HUMAN_BOX_SCALE 1.4f
#define HUMAN_FACE_TENSOR 192
#define HUMAN_MODELS "human-models-3.0.4/models/"

/* ---------- finding the face ---------- */

/* Detection dominates the per-image cost and its small layers scale badly over threads, so
 * files are located in parallel, one detector per thread (a detector keeps its graph). */
#define MAX_FINDER_THREADS 16

struct fu_face_finder {
    fu_face_detector *det[MAX_FINDER_THREADS];  /* NULL: the whole image is the face */
    int n_det;
    fu_shape_predictor *sp;
};

fu_face_finder *fu_face_finder_load(int detect) {
    char path[1024];
    fu_face_finder *f = calloc(1, sizeof *f);
    if (!f) {
        fu_fail(FU_E_INTERNAL, "out of memory");
        return NULL;
    }
    f->n_det = detect ? fu_get_threads() : 0;
    if (f->n_det > MAX_FINDER_THREADS) f->n_det = MAX_FINDER_THREADS;
    for (int i = 0; i < f->n_det; i++)
        if (!fu_model_file(FU_BLAZEFACE_MODEL, path, sizeof path) || !(f->det[i] = fu_face_detector_load(path))) goto fail;
    if (!fu_model_file(FU_DLIB_LANDMARKS_MODEL, path, sizeof path) || !(f->sp = fu_dlib_load_shape_predictor(path))) goto fail;
    if (f->sp->n_parts != 68) {
        fu_fail(FU_E_INPUT, "%s: a %d-point shape predictor; the pipeline needs the 68-point model", path, f->sp->n_parts);
        goto fail;
    }
    return f;
fail:
    fu_face_finder_free(f);
    return NULL;
}

void fu_face_finder_free(fu_face_finder *f) {
    if (!f) return;
    for (int i = 0; i < f->n_det; i++) fu_face_detector_free(f->det[i]);
    fu_shape_predictor_free(f->sp);
    free(f);
}

static int pick_face(fu_face_detector *det, const fu_tensor *img, const char *label, fu_face_det *face) {
    int W = (int)img->shape[3], H = (int)img->shape[2];
    fu_face_det found[MAX_DETECTIONS];
    int n = fu_face_detect(det, img, DETECT_MIN_SCORE, DETECT_IOU, found, MAX_DETECTIONS);
    if (n < 0) return fu_last_code() ? fu_last_code() : FU_E_INTERNAL;
    if (n == 0) return fu_fail(FU_E_INPUT, "%s: no face found (detection score below %.2f)", label, DETECT_MIN_SCORE);
    *face = found[fu_face_pick(found, n, W, H)];
    return FU_OK;
}

/* fu_face_find with detector `worker` (0 <= worker < n_det). */
static int find_with(fu_face_finder *f, int worker, const fu_tensor *img, const char *label, fu_face_found *out) {
    if (img->ndim != 4 || img->shape[0] != 1 || img->shape[1] != 3)
        return fu_fail(FU_E_INPUT, "%s: expected an RGB image [1,3,H,W]", label);
    int W = (int)img->shape[3], H = (int)img->shape[2];
    out->detected = f->n_det > 0;
    int rc = out->detected ? pick_face(f->det[worker], img, label, &out->det) : FU_OK;
    if (rc != FU_OK) return rc;
    if (!out->detected) out->det = fu_face_whole_image(W, H);
    out->lm_box = fu_face_box_for_landmarks(&out->det);
    fu_gray_image *gray = fu_gray_from_rgb(img);
    if (!gray) return fu_last_code();
    rc = fu_shape_predict(f->sp, gray, out->lm_box, out->lm);
    fu_gray_free(gray);
    if (rc != FU_OK) return fu_fail(rc, "%s: landmarks: %s", label, fu_last_error());
    return FU_OK;
}

int fu_face_find(fu_face_finder *f, const fu_tensor *img, const char *label, fu_face_found *out) {
    return find_with(f, 0, img, label, out);
}

/* ---------- crops ---------- */

void fu_face_human_region(const fu_face_det *det, int detected, int width, int height, float region[4]) {
    if (!detected) {
        region[0] = 0, region[1] = 0, region[2] = (float)width, region[3] = (float)height;
        return;
    }
    /* enlargeBox then squarifyBox: centre kept, side = 1.4 * the longer side, rounded corners */
    float cx = 0.5f * (det->x0 + det->x1), cy = 0.5f * (det->y0 + det->y1);
    float half = 0.5f * HUMAN_BOX_SCALE * fmaxf(det->x1 - det->x0, det->y1 - det->y0);
    region[0] = roundf(cx - half), region[1] = roundf(cy - half);
    region[2] = roundf(cx + half), region[3] = roundf(cy + half);
}

/* Sample positions along one axis, in source pixel indices, as x = a + b * j for output pixel j.
 * tf.image.cropAndResize of the region [r0, r1) (normalised by the image side `side`) to F
 * samples puts face-tensor sample q at r0 (side-1)/side + q (r1-r0)(side-1)/(side (F-1)); the
 * network's own resampling of the face tensor gives q = qa + qb j. */
static void axis_map(float r0, float r1, int side, double qa, double qb, double *a, double *b) {
    double origin = (double)r0 * (side - 1) / side;
    double step = (double)(r1 - r0) * (side - 1) / ((double)side * (HUMAN_FACE_TENSOR - 1));
    *a = origin + step * qa;
    *b = step * qb;
}

/* theta for human's face tensor followed by a resampling to n pixels: cropAndResize of the
 * face tensor's sub-box sub = {top, left, bottom, right} (gear), or resizeBilinear without
 * aligned corners (sub NULL: q = j F / n). */
static void human_theta(const fu_face_found *face, int width, int height, const float *sub, int n, double theta[6]) {
    float r[4];
    fu_face_human_region(&face->det, face->detected, width, height, r);
    const double F1 = HUMAN_FACE_TENSOR - 1;
    double qa_x = 0, qb_x = (double)HUMAN_FACE_TENSOR / n, qa_y = 0, qb_y = qb_x;
    if (sub) {
        qa_y = sub[0] * F1, qb_y = (sub[2] - sub[0]) * F1 / (n - 1);
        qa_x = sub[1] * F1, qb_x = (sub[3] - sub[1]) * F1 / (n - 1);
    }
    double ax, bx, ay, by;
    axis_map(r[0], r[2], width, qa_x, qb_x, &ax, &bx);
    axis_map(r[1], r[3], height, qa_y, qb_y, &ay, &by);
    theta[0] = bx, theta[1] = 0, theta[2] = ax;
    theta[3] = 0, theta[4] = by, theta[5] = ay;
}

/* ---------- networks ---------- */

static const char *const net_names[] = {"dlib-resnet", "faceres", "gear", "emotion"};

int fu_face_net_parse(const char *name) {
    for (int i = 0; i < 4; i++)
        if (!strcmp(name, net_names[i])) return i;
    return -1;
}

const char *fu_face_net_name(fu_face_net_kind kind) { return net_names[kind]; }

#define MAX_NET_OUTPUTS 3

struct fu_face_net {
    fu_face_net_kind kind;
    fu_dlib_resnet *dlib;
    int borrowed;              /* dlib is the caller's (fu_face_net_wrap_dlib) */
    uint64_t weights_hash;     /* of a wrapped network's weights; 0 for the stock files */
    fu_tfjs_net *tfjs;
    int size, out_dim;
    int mirror;                /* outputs average the crop and its mirror image */
    int n_out;
    const char *outputs[MAX_NET_OUTPUTS];
    int out_width[MAX_NET_OUTPUTS];
};

/* Output nodes per TF.js model: faceres's descriptor; gear's age, gender, race heads
 * (signature: age_output = Identity, gender_output = Identity_1, race_output = Identity_2);
 * emotion's single softmax. */
static void describe_outputs(fu_face_net *net) {
    static const char *const gear_out[] = {"Identity", "Identity_1", "Identity_2"};
    static const int gear_width[] = {7, 2, 5};
    switch (net->kind) {
    case FU_NET_DLIB_RESNET: net->size = FU_DLIB_RESNET_SIZE, net->out_dim = FU_DLIB_RESNET_DIM; break;
    case FU_NET_FACERES:
        net->size = 224, net->n_out = 1, net->outputs[0] = "global_pooling/Mean", net->out_width[0] = 1024;
        break;
    case FU_NET_GEAR:
        net->size = 198, net->n_out = 3;
        for (int i = 0; i < 3; i++) net->outputs[i] = gear_out[i], net->out_width[i] = gear_width[i];
        break;
    case FU_NET_EMOTION: net->size = 64, net->n_out = 1, net->outputs[0] = "Identity", net->out_width[0] = 7; break;
    }
    for (int i = 0; i < net->n_out; i++) net->out_dim += net->out_width[i];
}

/* The TF.js model's declared input must be the size the crop assumes. */
static int check_tfjs_input(fu_face_net *net, const char *path) {
    int64_t shape[8];
    int rank = fu_tfjs_net_input_shape(net->tfjs, shape);
    int channels = net->kind == FU_NET_EMOTION ? 1 : 3;
    if (rank != 4 || shape[1] != net->size || shape[2] != net->size || shape[3] != channels)
        return fu_fail(FU_E_INPUT, "%s: expected an input of [-1,%d,%d,%d]", path, net->size, net->size, channels);
    return FU_OK;
}

fu_face_net *fu_face_net_load(fu_face_net_kind kind) {
    char rel[256], path[1024];
    fu_face_net *net = calloc(1, sizeof *net);
    if (!net) {
        fu_fail(FU_E_INTERNAL, "out of memory");
        return NULL;
    }
    net->kind = kind;
    describe_outputs(net);
    int ok;
    if (kind == FU_NET_DLIB_RESNET) {
        ok = fu_model_file(FU_DLIB_RESNET_MANIFEST, path, sizeof path) && (net->dlib = fu_dlib_resnet_load(path)) != NULL;
    } else {
        snprintf(rel, sizeof rel, HUMAN_MODELS "%s.json", net_names[kind]);
        net->tfjs = fu_model_file(rel, path, sizeof path) ? fu_tfjs_net_load(path) : NULL;
        ok = net->tfjs && check_tfjs_input(net, path) == FU_OK;
    }
    if (ok) return net;
    fu_face_net_free(net);
    return NULL;
}

/* FNV-1a 64 over the bytes of every weight, in parameter order. */
static uint64_t hash_weights(fu_dlib_resnet *dlib) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (int i = 0; i < fu_dlib_resnet_n_params(dlib); i++) {
        const fu_tensor *t = fu_dlib_resnet_param(dlib, i);
        const unsigned char *b = (const unsigned char *)t->data;
        for (size_t k = 0; k < (size_t)t->numel * sizeof(float); k++) h = (h ^ b[k]) * 0x100000001b3ULL;
    }
    return h ? h : 1;
}

fu_face_net *fu_face_net_wrap_dlib(fu_dlib_resnet *dlib) {
    fu_face_net *net = calloc(1, sizeof *net);
    if (!net) return fu_fail_null(FU_E_INTERNAL, "out of memory");
    net->kind = FU_NET_DLIB_RESNET;
    describe_outputs(net);
    net->dlib = dlib;
    net->borrowed = 1;
    net->weights_hash = hash_weights(dlib);
    return net;
}

const char *fu_face_net_cache_tag(const fu_face_net *net, char *buf, size_t n) {
    const char *crop = net->kind == FU_NET_DLIB_RESNET ? "dlib150-chip68-kpbox" : "human-box";
    const char *mirror = net->mirror ? "+mirror" : "";
    if (net->weights_hash)
        snprintf(buf, n, "%s/%s%s/weights-%016llx", net_names[net->kind], crop, mirror, (unsigned long long)net->weights_hash);
    else snprintf(buf, n, "%s/%s%s", net_names[net->kind], crop, mirror);
    return buf;
}

void fu_face_net_set_mirror(fu_face_net *net, int on) { net->mirror = on != 0; }

void fu_face_net_free(fu_face_net *net) {
    if (!net) return;
    if (!net->borrowed) fu_dlib_resnet_free(net->dlib);
    fu_tfjs_net_free(net->tfjs);
    free(net);
}

fu_face_net_kind fu_face_net_kind_of(const fu_face_net *net) { return net->kind; }
int fu_face_net_out_dim(const fu_face_net *net) { return net->out_dim; }
int fu_face_net_input_size(const fu_face_net *net) { return net->size; }

int fu_face_net_theta(const fu_face_net *net, const fu_face_found *face, int width, int height, double theta[6]) {
    static const float gear_box[4] = {0.0f, 0.10f, 0.90f, 0.90f};
    switch (net->kind) {
    case FU_NET_DLIB_RESNET: return fu_align_theta(FU_ALIGN_DLIB, face->lm, net->size, theta);
    case FU_NET_GEAR: human_theta(face, width, height, gear_box, net->size, theta); return FU_OK;
    default: human_theta(face, width, height, NULL, net->size, theta); return FU_OK;
    }
}

/* The crops as the network's input: warped, batched, scaled as the network expects; with
 * net->mirror the n crops are followed by the same n crops mirrored left-right ([2n, 3, S, S]).
 * This is inference only: the batch is a copy of the crops, so no gradient flows back to the
 * images (use fu_align_warp directly for that). */
static fu_tensor *network_input(fu_face_net *net, fu_graph *g, fu_tensor *const *images, const double (*theta)[6], int n) {
    int64_t S = net->size, per = 3 * S * S;
    fu_tensor *x = fu_graph_tensor(g, 4, (int64_t[]){net->mirror ? 2 * n : n, 3, S, S});
    for (int i = 0; x && i < n; i++) {
        fu_tensor *crop = fu_align_warp(g, images[i], theta[i], net->size);
        if (!crop) return NULL;
        memcpy(x->data + i * per, crop->data, (size_t)per * sizeof(float));
        float *m = net->mirror ? x->data + (n + i) * per : NULL;
        for (int64_t row = 0; m && row < 3 * S; row++)
            for (int64_t u = 0; u < S; u++) m[row * S + u] = crop->data[row * S + S - 1 - u];
    }
    if (!x) return NULL;
    if (net->kind == FU_NET_FACERES) return fu_scale_shift(g, x, 255.0f, 0.0f);
    if (net->kind != FU_NET_EMOTION) return x;
    fu_tensor *rgb = fu_graph_tensor(g, 4, (int64_t[]){1, 3, 1, 1});
    if (!rgb) return NULL;
    rgb->data[0] = 0.2989f, rgb->data[1] = 0.5870f, rgb->data[2] = 0.1140f;
    fu_tensor *gray = fu_sum(g, fu_mul(g, x, rgb), 1u << 1, 1);
    return gray ? fu_scale_shift(g, gray, 2.0f, -1.0f) : NULL;
}

/* Copies the outputs ([n, width_k] each) side by side into out rows of out_dim. */
static void gather_outputs(const fu_face_net *net, fu_tensor *const *res, int n, float *out) {
    int col = 0;
    for (int k = 0; k < net->n_out; k++) {
        for (int i = 0; i < n; i++)
            memcpy(out + (size_t)i * net->out_dim + col, res[k]->data + (size_t)i * net->out_width[k],
                   (size_t)net->out_width[k] * sizeof(float));
        col += net->out_width[k];
    }
}

static int check_outputs(const fu_face_net *net, fu_tensor *const *res, int n) {
    for (int k = 0; k < net->n_out; k++)
        if (res[k]->numel != (int64_t)n * net->out_width[k])
            return fu_fail(FU_E_INPUT, "%s: output %s has %lld values for %d faces, expected %d each", net_names[net->kind],
                           net->outputs[k], (long long)res[k]->numel, n, net->out_width[k]);
    return FU_OK;
}

int fu_face_net_run(fu_face_net *net, fu_tensor *const *images, const double (*theta)[6], int n, float *out) {
    if (n <= 0) return FU_OK;
    int rows = net->mirror ? 2 * n : n;
    size_t per = (size_t)net->out_dim;
    float *all = net->mirror ? malloc((size_t)rows * per * sizeof *all) : out;
    fu_graph *g = all ? fu_graph_new() : NULL;
    if (!g) {
        if (all != out) free(all);
        return fu_fail(FU_E_INTERNAL, "out of memory");
    }
    fu_tensor *x = network_input(net, g, images, theta, n);
    int rc = x ? FU_OK : fu_last_code() ? fu_last_code() : FU_E_INTERNAL;
    if (rc == FU_OK && net->dlib) {
        fu_tensor *d = fu_dlib_resnet_forward(net->dlib, g, x);
        if (d) memcpy(all, d->data, (size_t)rows * per * sizeof(float));
        else rc = fu_last_code();
    } else if (rc == FU_OK) {
        fu_tensor *res[MAX_NET_OUTPUTS];
        rc = fu_tfjs_net_forward(net->tfjs, g, x, net->n_out, net->outputs, res);
        if (rc == FU_OK) rc = check_outputs(net, res, rows);
        if (rc == FU_OK) gather_outputs(net, res, rows, all);
    }
    fu_graph_free(g);
    /* with mirroring: row i is the mean of the crop's (row i) and its mirror's (row n + i) */
    for (size_t k = 0; rc == FU_OK && all != out && k < (size_t)n * per; k++) out[k] = 0.5f * (all[k] + all[(size_t)n * per + k]);
    if (all != out) free(all);
    return rc;
}

/* ---------- files ---------- */

static void record_error(fu_face_file_result *r, int code, const char *path) {
    r->status = code ? code : FU_E_INTERNAL;
    if (strstr(fu_last_error(), path)) snprintf(r->error, sizeof r->error, "%s", fu_last_error());
    else snprintf(r->error, sizeof r->error, "%s: %s", path, fu_last_error());
}

/* Loads and locates one file; the image, or NULL with r->status set. */
static fu_tensor *load_and_find(fu_face_finder *finder, int worker, const char *path, fu_face_file_result *r) {
    memset(r, 0, sizeof *r);
    fu_tensor *img = fu_image_load(path);
    int rc = img ? find_with(finder, worker, img, path, &r->face) : fu_last_code();
    if (rc == FU_OK) return img;
    record_error(r, rc, path);
    fu_tensor_free(img);
    return NULL;
}

/* Runs every network on the loaded images of one batch. */
static int run_batch(fu_face_net *const *nets, int n_nets, fu_tensor **imgs, const int *index, int count,
                     fu_face_file_result *results, double (*theta)[6], float *const *outs) {
    for (int k = 0; k < n_nets; k++) {
        int kept = 0, dim = nets[k]->out_dim;
        fu_tensor *use[FU_FACE_MAX_BATCH];
        int at[FU_FACE_MAX_BATCH];
        for (int b = 0; b < count; b++) {
            fu_face_file_result *r = &results[index[b]];
            int W = (int)imgs[b]->shape[3], H = (int)imgs[b]->shape[2];
            if (r->status != FU_OK) continue;
            int rc = fu_face_net_theta(nets[k], &r->face, W, H, theta[kept]);
            if (rc != FU_OK) {
                snprintf(r->error, sizeof r->error, "%s", fu_last_error());
                r->status = rc;
                continue;
            }
            use[kept] = imgs[b], at[kept++] = index[b];
        }
        float *tmp = malloc((size_t)(kept ? kept : 1) * dim * sizeof(float));
        if (!tmp) return fu_fail(FU_E_INTERNAL, "out of memory");
        int rc = fu_face_net_run(nets[k], use, (const double (*)[6])theta, kept, tmp);
        for (int b = 0; b < kept && rc == FU_OK; b++)
            memcpy(outs[k] + (size_t)at[b] * dim, tmp + (size_t)b * dim, (size_t)dim * sizeof(float));
        free(tmp);
        if (rc != FU_OK) return rc;
    }
    return FU_OK;
}

int fu_face_run_files(fu_face_finder *finder, fu_face_net *const *nets, int n_nets, const char *const *paths, int n,
                      int batch, float *const *outs, fu_face_file_result *results, fu_progress_fn progress,
                      void *progress_ctx) {
    if (batch < 1 || batch > FU_FACE_MAX_BATCH) batch = batch < 1 ? 1 : FU_FACE_MAX_BATCH;
    fu_tensor **imgs = calloc((size_t)batch, sizeof *imgs);
    int *index = calloc((size_t)batch, sizeof *index);
    double (*theta)[6] = calloc((size_t)batch, sizeof *theta);
    int rc = imgs && index && theta ? FU_OK : fu_fail(FU_E_INTERNAL, "out of memory");
    for (int start = 0; start < n && rc == FU_OK; start += batch) {
        int count = 0, end = start + batch < n ? start + batch : n;
        fu_tensor *loaded[FU_FACE_MAX_BATCH];
        int workers = finder->n_det > 1 ? finder->n_det : 1;
#pragma omp parallel for schedule(dynamic) num_threads(workers)
        for (int i = start; i < end; i++) loaded[i - start] = load_and_find(finder, omp_get_thread_num(), paths[i], &results[i]);
        for (int i = start; i < end; i++)
            if (loaded[i - start]) imgs[count] = loaded[i - start], index[count++] = i;
        rc = run_batch(nets, n_nets, imgs, index, count, results, theta, outs);
        for (int b = 0; b < count; b++) fu_tensor_free(imgs[b]);
        if (progress) progress(progress_ctx, start + batch < n ? start + batch : n, n, "files");
    }
    free(imgs);
    free(index);
    free(theta);
    return rc;
}
