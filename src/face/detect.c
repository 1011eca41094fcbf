/* BlazeFace detection: letterbox, network, anchor decoding, NMS (see detect.h). */
#include "detect.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/ops.h"
#include "face/tfjs_graph.h"
#include "faceup.h"

#define INPUT 256
#define N_ANCHORS 896
#define N_REGRESS 16
/* human's input scaling: pixel / 127.5 - 0.5 with pixels 0..255, i.e. 2x - 0.5 for x in [0,1]. */
#define NORM_SCALE 2.0f
#define NORM_SHIFT (-0.5f)

struct fu_face_detector {
    fu_tfjs_net *net;
    fu_graph *g;
    float anchors[N_ANCHORS][2];
};

static void make_anchors(float anchors[N_ANCHORS][2]) {
    const int strides[2] = {16, 32}, per_cell[2] = {2, 6};
    int k = 0;
    for (int level = 0; level < 2; level++) {
        int cells = INPUT / strides[level];
        for (int gy = 0; gy < cells; gy++)
            for (int gx = 0; gx < cells; gx++)
                for (int a = 0; a < per_cell[level]; a++, k++) {
                    anchors[k][0] = strides[level] * (gx + 0.5f);
                    anchors[k][1] = strides[level] * (gy + 0.5f);
                }
    }
}

fu_face_detector *fu_face_detector_load(const char *model_json) {
    fu_face_detector *d = fu_calloc(1, sizeof *d);
    if (!d) return NULL;
    int64_t shape[8];
    if (!(d->net = fu_tfjs_net_load(model_json)) || !(d->g = fu_graph_new())) goto fail;
    if (fu_tfjs_net_input_shape(d->net, shape) != 4 || shape[1] != INPUT || shape[2] != INPUT || shape[3] != 3) {
        fu_fail(FU_E_INPUT, "%s: not the blazeface model (expected a [1,256,256,3] input)", model_json);
        goto fail;
    }
    make_anchors(d->anchors);
    return d;
fail:
    fu_face_detector_free(d);
    return NULL;
}

void fu_face_detector_free(fu_face_detector *d) {
    if (!d) return;
    fu_tfjs_net_free(d->net);
    fu_graph_free(d->g);
    free(d);
}

/* Letterbox geometry: the image sits centred in a square of side S, scaled by S/INPUT. */
typedef struct { double scale, pad_x, pad_y; } letterbox;

static letterbox letterbox_for(int64_t H, int64_t W) {
    double S = (double)(H > W ? H : W);
    return (letterbox){S / INPUT, (S - (double)W) / 2, (S - (double)H) / 2};
}

/* Network input [1,3,256,256]: bilinear samples of the letterboxed image (black outside,
 * via the affine warp's zero padding), normalised as the model expects. */
static fu_tensor *model_input(fu_graph *g, const fu_tensor *img, letterbox lb) {
    fu_tensor *src = fu_graph_tensor(g, 4, img->shape), *th = fu_graph_tensor(g, 3, (int64_t[]){1, 2, 3});
    if (!src || !th) return NULL;
    memcpy(src->data, img->data, (size_t)img->numel * sizeof(float));
    /* output pixel centre u maps to S-square coordinate (u + 0.5) * scale - 0.5, minus the pad */
    float t[6] = {(float)lb.scale, 0, (float)(0.5 * lb.scale - 0.5 - lb.pad_x),
                  0, (float)lb.scale, (float)(0.5 * lb.scale - 0.5 - lb.pad_y)};
    memcpy(th->data, t, sizeof t);
    fu_tensor *x = fu_affine_warp(g, src, th, INPUT, INPUT);
    if (!x) return NULL;
    for (int64_t i = 0; i < x->numel; i++) x->data[i] = x->data[i] * NORM_SCALE + NORM_SHIFT;
    return x;
}

/* Decodes anchor k (rows 0..511 from the first output pair, 512..895 from the second). */
static fu_face_det decode(const fu_face_detector *d, int k, float logit, const float *r, letterbox lb) {
    float ax = d->anchors[k][0], ay = d->anchors[k][1];
    float cx = ax + r[0], cy = ay + r[1], w = r[2], h = r[3];
    fu_face_det f;
    f.x0 = (float)((cx - w / 2) * lb.scale - lb.pad_x);
    f.x1 = (float)((cx + w / 2) * lb.scale - lb.pad_x);
    f.y0 = (float)((cy - h / 2) * lb.scale - lb.pad_y);
    f.y1 = (float)((cy + h / 2) * lb.scale - lb.pad_y);
    f.score = 1.0f / (1.0f + expf(-logit));
    for (int p = 0; p < 6; p++) {
        f.kp[2 * p] = (float)((ax + r[4 + 2 * p]) * lb.scale - lb.pad_x);
        f.kp[2 * p + 1] = (float)((ay + r[5 + 2 * p]) * lb.scale - lb.pad_y);
    }
    return f;
}

float fu_face_iou(const fu_face_det *a, const fu_face_det *b) {
    float ix = fminf(a->x1, b->x1) - fmaxf(a->x0, b->x0), iy = fminf(a->y1, b->y1) - fmaxf(a->y0, b->y0);
    if (ix <= 0 || iy <= 0) return 0;
    float inter = ix * iy;
    float area_a = (a->x1 - a->x0) * (a->y1 - a->y0), area_b = (b->x1 - b->x0) * (b->y1 - b->y0);
    return inter / (area_a + area_b - inter);
}

static int by_score_desc(const void *a, const void *b) {
    float sa = ((const fu_face_det *)a)->score, sb = ((const fu_face_det *)b)->score;
    return (sa < sb) - (sa > sb);
}

/* Greedy NMS over cand (sorted best first): keeps a box unless it overlaps a kept one by more
 * than iou. Returns the number kept in out. */
static int nms(const fu_face_det *cand, int n, float iou, fu_face_det *out, int max_out) {
    int kept = 0;
    for (int i = 0; i < n && kept < max_out; i++) {
        int keep = 1;
        for (int j = 0; j < kept && keep; j++) keep = fu_face_iou(&cand[i], &out[j]) <= iou;
        if (keep) out[kept++] = cand[i];
    }
    return kept;
}

int fu_face_detect(fu_face_detector *d, const fu_tensor *img, float min_score, float iou, fu_face_det *out,
                   int max_out) {
    if (!img || img->ndim != 4 || img->shape[0] != 1 || img->shape[1] != 3 || img->shape[2] < 1 || img->shape[3] < 1) {
        fu_fail(FU_E_INPUT, "detect: expected an RGB image [1,3,H,W]");
        return -1;
    }
    fu_graph_reset(d->g);
    letterbox lb = letterbox_for(img->shape[2], img->shape[3]);
    const char *names[4] = {"Identity", "Identity_1", "Identity_2", "Identity_3"};
    fu_tensor *res[4];
    fu_tensor *x = model_input(d->g, img, lb);
    if (!x || fu_tfjs_net_forward(d->net, d->g, x, 4, names, res) != FU_OK) return -1;
    if (res[0]->numel != 512 || res[1]->numel != 384 || res[2]->numel != 512 * N_REGRESS || res[3]->numel != 384 * N_REGRESS) {
        fu_fail(FU_E_INPUT, "detect: unexpected blazeface output sizes");
        return -1;
    }
    fu_face_det *cand = fu_malloc(N_ANCHORS * sizeof *cand);
    if (!cand) return -1;
    int n = 0;
    for (int k = 0; k < N_ANCHORS; k++) {
        int hi = k >= 512, row = hi ? k - 512 : k;
        float logit = res[hi]->data[row];
        const float *r = res[2 + hi]->data + (int64_t)row * N_REGRESS;
        fu_face_det f = decode(d, k, logit, r, lb);
        if (f.score >= min_score && f.x1 > f.x0 && f.y1 > f.y0) cand[n++] = f;
    }
    qsort(cand, (size_t)n, sizeof *cand, by_score_desc);
    int kept = nms(cand, n, iou, out, max_out);
    free(cand);
    return kept;
}

int fu_face_pick(const fu_face_det *dets, int n, int width, int height) {
    int best = -1;
    double best_value = -1, half_diag = hypot(width, height) / 2;
    for (int i = 0; i < n; i++) {
        double area = (double)(dets[i].x1 - dets[i].x0) * (dets[i].y1 - dets[i].y0);
        double dist = hypot((dets[i].x0 + dets[i].x1) / 2 - width / 2.0, (dets[i].y0 + dets[i].y1) / 2 - height / 2.0);
        double value = area * fmax(0, 1 - dist / half_diag);
        if (value > best_value) { best_value = value; best = i; }
    }
    return best;
}

fu_face_det fu_face_whole_image(int width, int height) {
    fu_face_det f = {0, 0, (float)width, (float)height, -1, {0}};
    for (int i = 0; i < 12; i++) f.kp[i] = NAN;
    return f;
}

/* Blazeface box -> dlib HOG box, without keypoints (face-crop mode), fitted on the 60 LFW
 * faces of tests/reference/dlib_reference.sh (the test face_box_calibration refits and checks
 * these): with blazeface's centre (cx, cy) and size s = (w + h)/2, dlib's box has centre
 * (cx + CAL_DX s, cy + CAL_DY s) and side CAL_SIDE s (dlib's right - left). dlib's boxes come
 * from a coarse pyramid (sides 87, 104, 124 px on LFW, centres on a grid of a few pixels), so
 * single boxes scatter around the fit: mean IoU 0.76. */
#define CAL_DX 0.032f
#define CAL_DY (-0.016f)
#define CAL_SIDE 0.987f

/* With keypoints: where the eyes, nose tip and mouth sit in the box tells where dlib's box
 * lies (a turned head moves them, and dlib's box, to one side). Linear least squares on
 * f = ((kp_k - c) / s for the keypoints 0-3, x y each, then 1), c and s as above: dlib's box
 * has centre c + s (KP_BOX[0] . f, KP_BOX[1] . f) and side s (KP_BOX[2] . f). Fitted on the
 * 2,352 LFW images first named by folds 4-6 that both detectors find (dlib's HOG box on the RGB image,
 * the detection nearest the centre: tests/reference/dlib_chips.cpp). Measured on the 2,300
 * images of folds 1-3: mean IoU with dlib's box 0.83 (0.75 without keypoints), and the
 * landmarks from this box are more than 20% of the inter-ocular distance away from those
 * from dlib's box on 7 faces (125 without keypoints), mean 1.9% (4.5%). */
static const double KP_BOX[3][9] = {
    {-0.0018, 0.3460, 0.6003, -0.8217, 0.6856, 0.0001, -0.5532, 0.4464, -0.3184},
    {-0.7409, 1.5954, 0.6183, -2.5736, 2.9633, 0.8242, -3.6148, 0.2832, -0.5968},
    {-0.1380, -3.0231, 0.1204, 2.2175, -3.4247, 1.6770, 4.1425, -2.9606, 1.4072},
};

static int has_keypoints(const fu_face_det *d) {
    for (int i = 0; i < 8; i++)
        if (!isfinite(d->kp[i])) return 0;
    return 1;
}

fu_box fu_face_box_for_landmarks(const fu_face_det *d) {
    double s = ((d->x1 - d->x0) + (d->y1 - d->y0)) / 2, cx = (d->x0 + d->x1) / 2, cy = (d->y0 + d->y1) / 2;
    double dx = CAL_DX, dy = CAL_DY, side = CAL_SIDE;
    if (has_keypoints(d) && s > 0) {
        double f[9] = {0, 0, 0, 0, 0, 0, 0, 0, 1}, kx = 0, ky = 0, ks = 0;
        for (int k = 0; k < 4; k++) f[2 * k] = (d->kp[2 * k] - cx) / s, f[2 * k + 1] = (d->kp[2 * k + 1] - cy) / s;
        for (int i = 0; i < 9; i++) kx += KP_BOX[0][i] * f[i], ky += KP_BOX[1][i] * f[i], ks += KP_BOX[2][i] * f[i];
        /* keypoints far outside what the fit saw can extrapolate to nonsense: keep the box-only
         * calibration unless the keypoint box is of a plausible size */
        if (ks > 0.5 && ks < 2) dx = kx, dy = ky, side = ks;
    }
    double x = cx + dx * s, y = cy + dy * s, half = side * s / 2;
    return (fu_box){(float)(x - half), (float)(y - half), (float)(x + half), (float)(y + half)};
}
