/* The public image functions of include/faceup.h on top of io/image.h. */
#include "io/image_api.h"
#include "core/error.h"
#include "io/image.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct fu_image { fu_tensor *pixels; };

const fu_tensor *fu_image_tensor(const fu_image *img) { return img->pixels; }

int fu_image_adopt(fu_tensor *t, fu_image **out) {
    fu_image *img = fu_malloc(sizeof *img);
    if (!img) { fu_tensor_free(t); return FU_E_INTERNAL; }
    img->pixels = t;
    *out = img;
    return FU_OK;
}

int fu_image_read(const char *path, fu_image **out) {
    *out = NULL;
    if (!path) return fu_fail(FU_E_INPUT, "fu_image_read: path is NULL");
    fu_tensor *t = fu_image_load(path);
    return t ? fu_image_adopt(t, out) : fu_failure_code();
}

int fu_image_from_rgb(const unsigned char *rgb, int width, int height, fu_image **out) {
    *out = NULL;
    if (!rgb || width < 1 || height < 1 || (int64_t)width * height > fu_image_max_pixels())
        return fu_fail(FU_E_INPUT, "fu_image_from_rgb: need pixels and 1 to %lld pixels, got %d x %d",
                       (long long)fu_image_max_pixels(), width, height);
    fu_tensor *t = fu_tensor_newv(4, (int64_t)1, (int64_t)3, (int64_t)height, (int64_t)width);
    if (!t) return FU_E_INTERNAL;
    int64_t plane = (int64_t)width * height;
    for (int64_t i = 0; i < plane; i++)
        for (int c = 0; c < 3; c++) t->data[c * plane + i] = rgb[3 * i + c] / 255.0f;
    return fu_image_adopt(t, out);
}

/* True when path ends in ".jpg" or ".jpeg", in any case. */
static int names_jpeg(const char *path) {
    const char *dot = strrchr(path, '.');
    return dot && (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg"));
}

int fu_image_write(const fu_image *img, const char *path) {
    if (!img || !path) return fu_fail(FU_E_INPUT, "fu_image_write: image and path are needed");
    return names_jpeg(path) ? fu_image_save_jpeg(path, img->pixels, 95) : fu_image_save_png(path, img->pixels);
}

int fu_image_width(const fu_image *img) { return (int)img->pixels->shape[3]; }
int fu_image_height(const fu_image *img) { return (int)img->pixels->shape[2]; }

void fu_image_to_rgb(const fu_image *img, unsigned char *rgb) {
    int64_t plane = img->pixels->shape[2] * img->pixels->shape[3];
    const float *d = img->pixels->data;
    for (int64_t i = 0; i < plane; i++)
        for (int c = 0; c < 3; c++)   /* as the file writers round (NaN -> 0) */
            rgb[3 * i + c] = (unsigned char)lrintf(fminf(fmaxf(d[c * plane + i], 0.0f), 1.0f) * 255.0f);
}

void fu_image_free(fu_image *img) {
    if (!img) return;
    fu_tensor_free(img->pixels);
    free(img);
}
