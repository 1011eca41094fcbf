/* Tiny raster plots for training reports: line plots drawn into an image tensor, no text.
 * Axes are a frame with tick marks at 10 divisions; the caller prints the ranges elsewhere
 * (the training log says what the plot spans). */
#ifndef FU_IO_PLOT_H
#define FU_IO_PLOT_H
#include <stdint.h>
#include "core/tensor.h"

#define FU_PLOT_MAX_SERIES 6

typedef struct fu_plot_series {
    const float *x, *y;   /* n points; non-finite points are skipped (the line breaks there) */
    int64_t n;
    float rgb[3];         /* line colour in [0,1] */
} fu_plot_series;

typedef struct fu_plot_range { float x0, x1, y0, y1; } fu_plot_range;

/* Smallest box holding every finite point (y plotted as log10 y when log_y; points <= 0 then
 * skipped); a degenerate span is widened by 1 around its value. Returns 0 when no point is
 * finite (range untouched). */
int fu_plot_auto_range(const fu_plot_series *s, int n_series, int log_y, fu_plot_range *range);
/* Draws the series into img ([1,3,H,W], H and W >= 32): white background, black frame and
 * ticks, one 1-px polyline per series. FU_OK or FU_E_INPUT. */
int fu_plot_lines(fu_tensor *img, const fu_plot_series *s, int n_series, const fu_plot_range *range, int log_y);
/* Same straight to a PNG of w x h pixels, auto range. */
int fu_plot_png(const char *path, int w, int h, const fu_plot_series *s, int n_series, int log_y);

#endif
