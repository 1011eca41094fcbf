#include "plot.h"
#include "core/error.h"
#include "io/image.h"
#include <math.h>
#include <stdlib.h>

#define MARGIN 12   /* pixels between the image border and the frame */
#define TICKS 10
#define TICK_LEN 4

static float plot_y(float y, int log_y) { return log_y ? (y > 0 ? log10f(y) : NAN) : y; }

int fu_plot_auto_range(const fu_plot_series *s, int n_series, int log_y, fu_plot_range *range) {
    float x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (int k = 0; k < n_series; k++)
        for (int64_t i = 0; i < s[k].n; i++) {
            float x = s[k].x[i], y = plot_y(s[k].y[i], log_y);
            if (!isfinite(x) || !isfinite(y)) continue;
            x0 = fminf(x0, x); x1 = fmaxf(x1, x);
            y0 = fminf(y0, y); y1 = fmaxf(y1, y);
        }
    if (!(x0 <= x1)) return 0;
    if (x1 - x0 <= 0) { x0 -= 1; x1 += 1; }
    if (y1 - y0 <= 0) { y0 -= 1; y1 += 1; }
    *range = (fu_plot_range){x0, x1, y0, y1};
    return 1;
}

static void put_pixel(fu_tensor *img, int64_t x, int64_t y, const float rgb[3]) {
    int64_t H = img->shape[2], W = img->shape[3];
    if (x < 0 || y < 0 || x >= W || y >= H) return;
    for (int c = 0; c < 3; c++) img->data[(c * H + y) * W + x] = rgb[c];
}

/* Bresenham's line between two pixel positions. */
static void draw_line(fu_tensor *img, int64_t xa, int64_t ya, int64_t xb, int64_t yb, const float rgb[3]) {
    int64_t dx = llabs(xb - xa), dy = -llabs(yb - ya), sx = xa < xb ? 1 : -1, sy = ya < yb ? 1 : -1, err = dx + dy;
    for (;;) {
        put_pixel(img, xa, ya, rgb);
        if (xa == xb && ya == yb) return;
        int64_t e2 = 2 * err;
        if (e2 >= dy) { err += dy; xa += sx; }
        if (e2 <= dx) { err += dx; ya += sy; }
    }
}

static void draw_axes(fu_tensor *img, int64_t left, int64_t top, int64_t right, int64_t bottom) {
    const float black[3] = {0, 0, 0};
    draw_line(img, left, top, right, top, black);
    draw_line(img, left, bottom, right, bottom, black);
    draw_line(img, left, top, left, bottom, black);
    draw_line(img, right, top, right, bottom, black);
    for (int t = 1; t < TICKS; t++) {
        int64_t x = left + (right - left) * t / TICKS, y = top + (bottom - top) * t / TICKS;
        draw_line(img, x, bottom, x, bottom - TICK_LEN, black);
        draw_line(img, left, y, left + TICK_LEN, y, black);
    }
}

int fu_plot_lines(fu_tensor *img, const fu_plot_series *s, int n_series, const fu_plot_range *range, int log_y) {
    if (img->ndim != 4 || img->shape[0] != 1 || img->shape[1] != 3 || img->shape[2] < 32 || img->shape[3] < 32 ||
        n_series < 0 || n_series > FU_PLOT_MAX_SERIES || !(range->x1 > range->x0) || !(range->y1 > range->y0))
        return fu_fail(FU_E_INPUT, "plot: image must be [1,3,H>=32,W>=32], at most %d series, a non-empty range", FU_PLOT_MAX_SERIES);
    int64_t H = img->shape[2], W = img->shape[3];
    int64_t left = MARGIN, top = MARGIN, right = W - 1 - MARGIN, bottom = H - 1 - MARGIN;
    fu_tensor_fill(img, 1.0f);
    draw_axes(img, left, top, right, bottom);
    for (int k = 0; k < n_series; k++) {
        int have_prev = 0;
        int64_t px = 0, py = 0;
        for (int64_t i = 0; i < s[k].n; i++) {
            float y = plot_y(s[k].y[i], log_y), x = s[k].x[i];
            if (!isfinite(x) || !isfinite(y)) { have_prev = 0; continue; }
            float fx = (x - range->x0) / (range->x1 - range->x0), fy = (y - range->y0) / (range->y1 - range->y0);
            fx = fminf(fmaxf(fx, 0), 1);
            fy = fminf(fmaxf(fy, 0), 1);
            int64_t cx = left + (int64_t)lrintf(fx * (float)(right - left));
            int64_t cy = bottom - (int64_t)lrintf(fy * (float)(bottom - top));
            if (have_prev) draw_line(img, px, py, cx, cy, s[k].rgb);
            else put_pixel(img, cx, cy, s[k].rgb);
            px = cx; py = cy; have_prev = 1;
        }
    }
    return FU_OK;
}

int fu_plot_png(const char *path, int w, int h, const fu_plot_series *s, int n_series, int log_y) {
    fu_plot_range range;
    if (!fu_plot_auto_range(s, n_series, log_y, &range)) range = (fu_plot_range){0, 1, 0, 1};
    fu_tensor *img = fu_tensor_newv(4, (int64_t)1, (int64_t)3, (int64_t)h, (int64_t)w);
    if (!img) return fu_last_code();
    int rc = fu_plot_lines(img, s, n_series, &range, log_y);
    if (rc == FU_OK) rc = fu_image_save_png(path, img);
    fu_tensor_free(img);
    return rc;
}
