/* Face alignment transforms and warps (see align.h). */
#include "align.h"
#include <math.h>
#include <string.h>
#include "core/error.h"
#include "core/ops.h"
#include "faceup.h"

static const char *const mode_names[] = {"ffhq", "dlib", "arcface"};

int fu_align_mode_parse(const char *name) {
    for (int i = 0; i < 3; i++)
        if (name && !strcmp(name, mode_names[i])) return i;
    return -1;
}

const char *fu_align_mode_name(fu_align_mode mode) {
    return (unsigned)mode < 3 ? mode_names[mode] : "?";
}

static void mean_point(const float *lm, int first, int last, double *x, double *y) {
    *x = *y = 0;
    for (int i = first; i <= last; i++) { *x += lm[2 * i]; *y += lm[2 * i + 1]; }
    *x /= last - first + 1;
    *y /= last - first + 1;
}

static int ffhq_theta(const float *lm, int size, double th[6]) {
    double lx, ly, rx, ry;
    mean_point(lm, 36, 41, &lx, &ly);
    mean_point(lm, 42, 47, &rx, &ry);
    double ex = (lx + rx) / 2, ey = (ly + ry) / 2, dx = rx - lx, dy = ry - ly;
    double mx = (lm[2 * 48] + lm[2 * 54]) / 2.0, my = (lm[2 * 48 + 1] + lm[2 * 54 + 1]) / 2.0;
    double emx = mx - ex, emy = my - ey;
    double xx = dx + emy, xy = dy - emx, len = hypot(xx, xy);
    if (!(len > 1e-6)) return fu_fail(FU_E_INPUT, "align: degenerate landmarks (eyes and mouth coincide)");
    double side = fmax(2 * hypot(dx, dy), 1.8 * hypot(emx, emy));
    xx *= side / len;
    xy *= side / len;
    double yx = -xy, yy = xx;
    double cx = ex + 0.1 * emx, cy = ey + 0.1 * emy;
    double N = size;
    /* (c - x - y) + 2x (u + 0.5)/N + 2y (v + 0.5)/N */
    th[0] = 2 * xx / N; th[1] = 2 * yx / N; th[2] = cx - xx - yx + (xx + yx) / N;
    th[3] = 2 * xy / N; th[4] = 2 * yy / N; th[5] = cy - xy - yy + (xy + yy) / N;
    return FU_OK;
}

/* dlib's mean face (get_face_chip_details for 68-point shapes), unit square, for the points it
 * aligns on: the nose (27-35), the eyes (36-47), the outer lip (48-54) and the upper inner lip
 * (60-64); the jaw, the eyebrows and the lower lip are left out. */
static const struct { int part; double x, y; } dlib_mean_face[] = {
    {27, 0.490127, 0.203352}, {28, 0.490127, 0.307009}, {29, 0.490127, 0.409805},
    {30, 0.490127, 0.515625}, {31, 0.36688, 0.587326}, {32, 0.426036, 0.609345},
    {33, 0.490127, 0.628106}, {34, 0.554217, 0.609345}, {35, 0.613373, 0.587326},
    {36, 0.121737, 0.216423}, {37, 0.187122, 0.178758}, {38, 0.265825, 0.179852},
    {39, 0.334606, 0.231733}, {40, 0.260918, 0.245099}, {41, 0.182743, 0.244077},
    {42, 0.645647, 0.231733}, {43, 0.714428, 0.179852}, {44, 0.793132, 0.178758},
    {45, 0.858516, 0.216423}, {46, 0.79751, 0.244077}, {47, 0.719335, 0.245099},
    {48, 0.254149, 0.780233}, {49, 0.340985, 0.745405}, {50, 0.428858, 0.727388},
    {51, 0.490127, 0.742578}, {52, 0.551395, 0.727388}, {53, 0.639268, 0.745405},
    {54, 0.726104, 0.780233}, {60, 0.290379, 0.784792}, {61, 0.428096, 0.778746},
    {62, 0.490127, 0.785343}, {63, 0.552157, 0.778746}, {64, 0.689874, 0.784792},
};
#define DLIB_MEAN_FACE_POINTS ((int)(sizeof dlib_mean_face / sizeof dlib_mean_face[0]))
#define DLIB_CHIP_PADDING 0.25

/* dlib's chip: T = least-squares similarity from the chip positions of the mean face points
 * to the image points (scale s, rotation R); chip_details keeps the rectangle of side N s - 1
 * (centred_drect subtracts 1) centred on T(N/2, N/2) and extract_image_chip maps chip pixels
 * 0 and N-1 to its corners, so chip pixel p samples T(N/2, N/2) + k R (p - (N-1)/2) with
 * k = (N s - 1) / (N - 1). */
static void dlib_theta(const float *lm, int size, double th[6]) {
    float chip[2 * DLIB_MEAN_FACE_POINTS], img[2 * DLIB_MEAN_FACE_POINTS];
    for (int i = 0; i < DLIB_MEAN_FACE_POINTS; i++) {
        chip[2 * i] = (float)((DLIB_CHIP_PADDING + dlib_mean_face[i].x) / (2 * DLIB_CHIP_PADDING + 1) * size);
        chip[2 * i + 1] = (float)((DLIB_CHIP_PADDING + dlib_mean_face[i].y) / (2 * DLIB_CHIP_PADDING + 1) * size);
        img[2 * i] = lm[2 * dlib_mean_face[i].part];
        img[2 * i + 1] = lm[2 * dlib_mean_face[i].part + 1];
    }
    double t[6], cx, cy, N = size;
    fu_similarity_fit(chip, img, DLIB_MEAN_FACE_POINTS, t);
    double s = hypot(t[0], t[3]), k = (N * s - 1) / (N - 1) / s, c0 = (N - 1) / 2;
    fu_affine_apply(t, N / 2, N / 2, &cx, &cy);
    th[0] = k * t[0]; th[1] = k * t[1]; th[2] = cx - (th[0] + th[1]) * c0;
    th[3] = k * t[3]; th[4] = k * t[4]; th[5] = cy - (th[3] + th[4]) * c0;
}

static const double arcface_ref[5][2] = {
    {38.2946, 51.6963}, {73.5318, 51.5014}, {56.0252, 71.7366}, {41.5493, 92.3655}, {70.7299, 92.2041}};

static int arcface_theta(const float *lm, int size, double th[6]) {
    float tmpl[10], img[10];
    double x, y;
    for (int i = 0; i < 5; i++) {
        tmpl[2 * i] = (float)(arcface_ref[i][0] * size / 112.0);
        tmpl[2 * i + 1] = (float)(arcface_ref[i][1] * size / 112.0);
    }
    mean_point(lm, 36, 41, &x, &y); img[0] = (float)x; img[1] = (float)y;
    mean_point(lm, 42, 47, &x, &y); img[2] = (float)x; img[3] = (float)y;
    const int single[3] = {30, 48, 54};
    for (int i = 0; i < 3; i++) {
        img[4 + 2 * i] = lm[2 * single[i]];
        img[5 + 2 * i] = lm[2 * single[i] + 1];
    }
    double fwd[6];
    fu_similarity_fit(img, tmpl, 5, fwd);
    return fu_affine_invert(fwd, th);
}

int fu_align_theta(fu_align_mode mode, const float *lm68, int size, double theta[6]) {
    if (size < 8 || size > 8192) return fu_fail(FU_E_INPUT, "align: output size %d out of range 8..8192", size);
    for (int i = 0; i < 136; i++)
        if (!isfinite(lm68[i])) return fu_fail(FU_E_INPUT, "align: non-finite landmark");
    int rc;
    switch (mode) {
    case FU_ALIGN_FFHQ: rc = ffhq_theta(lm68, size, theta); break;
    case FU_ALIGN_DLIB: dlib_theta(lm68, size, theta); rc = FU_OK; break;
    case FU_ALIGN_ARCFACE: rc = arcface_theta(lm68, size, theta); break;
    default: return fu_fail(FU_E_INPUT, "align: unknown mode %d", (int)mode);
    }
    if (rc != FU_OK) return rc;
    if (!(fabs(theta[0] * theta[4] - theta[1] * theta[3]) > 1e-12))
        return fu_fail(FU_E_INPUT, "align: degenerate landmarks (all points coincide)");
    return FU_OK;
}

fu_tensor *fu_align_warp(fu_graph *g, fu_tensor *img, const double theta[6], int size) {
    if (!img) return NULL;
    if (img->ndim != 4 || img->shape[0] != 1) return fu_fail_null(FU_E_INPUT, "align: expected an image [1,C,H,W]");
    fu_tensor *th = fu_graph_tensor(g, 3, (int64_t[]){1, 2, 3});
    if (!th) return NULL;
    for (int i = 0; i < 6; i++) th->data[i] = (float)theta[i];
    return fu_affine_warp(g, img, th, size, size);
}

fu_tensor *fu_align_face(fu_graph *g, fu_tensor *img, const float *lm68, fu_align_mode mode, int size,
                         double theta_out[6]) {
    double th[6];
    if (fu_align_theta(mode, lm68, size, th) != FU_OK) return NULL;
    if (theta_out) memcpy(theta_out, th, sizeof th);
    return fu_align_warp(g, img, th, size);
}
