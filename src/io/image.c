#include "image.h"
#include "core/error.h"
#include "io/fileutil.h"
#include <math.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

/* Error handling with libpng/libjpeg: both report fatal errors by longjmp. Each decoder/encoder
 * keeps everything it allocates in a job struct reached through a pointer, and the function that
 * calls setjmp never modifies its own locals after the setjmp, so nothing depends on the value of
 * a non-volatile local after a longjmp; the caller frees whatever the job holds. */

#define MAX_FILE_BYTES ((size_t)1 << 30)

static _Atomic int64_t max_pixels = FU_IMAGE_DEFAULT_MAX_PIXELS;

void fu_image_set_max_pixels(int64_t n) { max_pixels = n > 0 ? n : FU_IMAGE_DEFAULT_MAX_PIXELS; }
int64_t fu_image_max_pixels(void) { return max_pixels; }

static int check_pixels(const char *label, uint64_t w, uint64_t h) {
    int64_t limit = max_pixels;
    if (w == 0 || h == 0) return fu_fail(FU_E_INPUT, "%s: image has zero size (%llux%llu)", label, (unsigned long long)w, (unsigned long long)h);
    if (w > (uint64_t)limit || h > (uint64_t)limit / w)
        return fu_fail(FU_E_INPUT, "%s: image %llux%llu exceeds the limit of %lld pixels", label,
                       (unsigned long long)w, (unsigned long long)h, (long long)limit);
    return FU_OK;
}

/* ---- EXIF ---- */

static unsigned rd16(const unsigned char *p, int le) { return le ? p[0] | p[1] << 8 : p[0] << 8 | p[1]; }
static uint32_t rd32(const unsigned char *p, int le) {
    return le ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24
              : (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* APP1 = "Exif\0\0" + TIFF header ("II"/"MM", 42, offset of IFD0) + IFD0 (u16 count, 12-byte
 * entries: tag, type, count, value). Orientation is tag 0x0112, type SHORT, count 1. All offsets
 * are relative to the TIFF header and checked against the payload size in 64-bit arithmetic. */
int fu_exif_orientation(const unsigned char *app1, size_t size) {
    if (!app1 || size < 6 + 8 || memcmp(app1, "Exif\0\0", 6)) return 1;
    const unsigned char *tiff = app1 + 6;
    uint64_t n = size - 6;
    int le;
    if (tiff[0] == 'I' && tiff[1] == 'I') le = 1;
    else if (tiff[0] == 'M' && tiff[1] == 'M') le = 0;
    else return 1;
    if (rd16(tiff + 2, le) != 42) return 1;
    uint64_t ifd = rd32(tiff + 4, le);
    if (ifd + 2 > n) return 1;
    unsigned count = rd16(tiff + ifd, le);
    for (unsigned i = 0; i < count; i++) {
        uint64_t e = ifd + 2 + 12 * (uint64_t)i;
        if (e + 12 > n) return 1;
        if (rd16(tiff + e, le) != 0x0112) continue;
        if (rd16(tiff + e + 2, le) != 3 || rd32(tiff + e + 4, le) != 1) return 1;
        unsigned v = rd16(tiff + e + 8, le);
        return v >= 1 && v <= 8 ? (int)v : 1;
    }
    return 1;
}

/* Display image from the stored one: display pixel (y, x) reads stored index
 * off + y*step_y + x*step_x (stored is H x W, row-major). Orientations 5-8 swap the axes. */
static fu_tensor *apply_orientation(fu_tensor *stored, int orientation) {
    if (orientation <= 1 || orientation > 8) return stored;
    int64_t H = stored->shape[2], W = stored->shape[3];
    const int64_t last_row = (H - 1) * W;
    const int64_t table[9][3] = {
        {0, 0, 0},                 {0, W, 1},                   {W - 1, W, -1},
        {last_row + W - 1, -W, -1}, {last_row, -W, 1},           {0, 1, W},
        {last_row, 1, -W},          {last_row + W - 1, -1, -W},  {W - 1, -1, W},
    };
    int swap = orientation >= 5;
    int64_t OH = swap ? W : H, OW = swap ? H : W;
    fu_tensor *out = fu_tensor_newv(4, (int64_t)1, (int64_t)3, OH, OW);
    if (!out) { fu_tensor_free(stored); return NULL; }
    const int64_t off = table[orientation][0], sy = table[orientation][1], sx = table[orientation][2];
    for (int c = 0; c < 3; c++) {
        const float *src = stored->data + c * H * W;
        float *dst = out->data + c * OH * OW;
        for (int64_t y = 0; y < OH; y++)
            for (int64_t x = 0; x < OW; x++) dst[y * OW + x] = src[off + y * sy + x * sx];
    }
    fu_tensor_free(stored);
    return out;
}

/* ---- PNG decoding ---- */

typedef struct png_job {
    const char *label;
    const unsigned char *data;
    size_t size, pos;
    char msg[200];
    unsigned char *pixels;
    png_bytep *rows;
    fu_tensor *out;
} png_job;

static void png_on_error(png_structp png, png_const_charp msg) {
    png_job *j = png_get_error_ptr(png);
    snprintf(j->msg, sizeof j->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

static void png_read_memory(png_structp png, png_bytep out, size_t n) {
    png_job *j = png_get_io_ptr(png);
    if (n > j->size - j->pos) png_error(png, "file is truncated");
    memcpy(out, j->data + j->pos, n);
    j->pos += n;
}

/* Sets up RGB (8 or 16 bit) output without alpha and reads the whole image into j->pixels. */
static int png_decode_body(png_structp png, png_infop info, png_job *j) {
    if (setjmp(png_jmpbuf(png))) return fu_fail(FU_E_INPUT, "%s: corrupt PNG: %s", j->label, j->msg);
    png_set_read_fn(png, j, png_read_memory);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    int color = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
    if (check_pixels(j->label, w, h)) return FU_E_INPUT;
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    png_set_strip_alpha(png);   /* alpha channels, and the alpha that expanding a tRNS chunk adds */
    if (!(color & PNG_COLOR_MASK_COLOR)) png_set_gray_to_rgb(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    size_t bytes_per_sample = depth == 16 ? 2 : 1, row_bytes = png_get_rowbytes(png, info);
    if (row_bytes != (size_t)w * 3 * bytes_per_sample)
        return fu_fail(FU_E_INTERNAL, "%s: unexpected PNG row size %zu", j->label, row_bytes);
    j->pixels = fu_malloc(row_bytes * h);
    j->rows = fu_malloc(h * sizeof *j->rows);
    if (!j->pixels || !j->rows) return FU_E_INTERNAL;
    for (png_uint_32 y = 0; y < h; y++) j->rows[y] = j->pixels + y * row_bytes;
    png_read_image(png, j->rows);
    /* The float tensor only once the data decoded: truncated files never cost its memory. */
    if (!(j->out = fu_tensor_newv(4, (int64_t)1, (int64_t)3, (int64_t)h, (int64_t)w))) return FU_E_INTERNAL;
    const size_t plane = (size_t)w * h;
    const float max_value = depth == 16 ? 65535.0f : 255.0f;   /* divided, not multiplied by 1/max: exact k/max */
    for (size_t i = 0; i < plane; i++)
        for (int c = 0; c < 3; c++) {
            const unsigned char *p = j->pixels + (i * 3 + c) * bytes_per_sample;
            unsigned v = depth == 16 ? (unsigned)p[0] << 8 | p[1] : p[0];   /* PNG is big-endian */
            j->out->data[c * plane + i] = (float)v / max_value;
        }
    return FU_OK;
}

static fu_tensor *decode_png(const unsigned char *data, size_t size, const char *label) {
    /* IHDR is the first chunk: 8-byte signature, length, "IHDR", width, height (big-endian). The
     * pixel limit is enforced here, before libpng allocates anything. */
    if (size < 33 || memcmp(data + 12, "IHDR", 4)) return fu_fail_null(FU_E_INPUT, "%s: corrupt PNG: no IHDR chunk", label);
    if (check_pixels(label, rd32(data + 16, 0), rd32(data + 20, 0))) return NULL;
    png_job job = {.label = label, .data = data, .size = size};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &job, png_on_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    int rc = info ? png_decode_body(png, info, &job) : fu_fail(FU_E_INTERNAL, "%s: libpng setup failed", label);
    png_destroy_read_struct(png ? &png : NULL, info ? &info : NULL, NULL);
    free(job.pixels);
    free(job.rows);
    if (rc) { fu_tensor_free(job.out); return NULL; }
    return job.out;
}

/* ---- JPEG decoding ---- */

typedef struct jpeg_job {
    struct jpeg_error_mgr err;   /* first member: libjpeg hands back a pointer to it */
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
    const char *label;
    unsigned char *row;
    fu_tensor *out;
    int orientation;
} jpeg_job;

static void jpeg_on_error(j_common_ptr c) {
    jpeg_job *j = (jpeg_job *)c->err;
    c->err->format_message(c, j->msg);
    longjmp(j->jump, 1);
}

/* Warnings (level -1) that mean missing or corrupt image data are fatal: libjpeg would otherwise
 * return a partly gray image. The few harmless ones (stray bytes between markers, unknown JFIF
 * revision or Adobe transform code, bad ICC marker) are ignored, as are trace messages. */
static void jpeg_on_message(j_common_ptr c, int level) {
    if (level >= 0) return;
    int code = c->err->msg_code;
    if (code == JWRN_EXTRANEOUS_DATA || code == JWRN_JFIF_MAJOR || code == JWRN_ADOBE_XFORM || code == JWRN_BOGUS_ICC) return;
    jpeg_on_error(c);
}

static int jpeg_decode_body(struct jpeg_decompress_struct *c, jpeg_job *j, const unsigned char *data, size_t size) {
    if (setjmp(j->jump)) return fu_fail(FU_E_INPUT, "%s: corrupt JPEG: %s", j->label, j->msg);
    jpeg_create_decompress(c);
    jpeg_mem_src(c, data, (unsigned long)size);
    jpeg_save_markers(c, JPEG_APP0 + 1, 0xffff);
    jpeg_read_header(c, TRUE);
    if (check_pixels(j->label, c->image_width, c->image_height)) return FU_E_INPUT;
    if (c->jpeg_color_space == JCS_CMYK || c->jpeg_color_space == JCS_YCCK)
        return fu_fail(FU_E_INPUT, "%s: CMYK JPEG images are not supported", j->label);
    for (jpeg_saved_marker_ptr m = c->marker_list; m && j->orientation == 1; m = m->next)
        if (m->marker == JPEG_APP0 + 1) j->orientation = fu_exif_orientation(m->data, m->data_length);
    c->out_color_space = JCS_RGB;
    jpeg_start_decompress(c);
    if (c->output_components != 3) return fu_fail(FU_E_INPUT, "%s: unsupported JPEG colour layout", j->label);
    const size_t w = c->output_width, h = c->output_height, plane = w * h;
    j->row = fu_malloc(w * 3);
    j->out = fu_tensor_newv(4, (int64_t)1, (int64_t)3, (int64_t)h, (int64_t)w);
    if (!j->row || !j->out) return FU_E_INTERNAL;
    while (c->output_scanline < h) {
        size_t y = c->output_scanline;
        JSAMPROW rows[1] = {j->row};
        if (jpeg_read_scanlines(c, rows, 1) != 1) return fu_fail(FU_E_INPUT, "%s: corrupt JPEG: no scanline %zu", j->label, y);
        for (size_t x = 0; x < w; x++)
            for (int ch = 0; ch < 3; ch++) j->out->data[ch * plane + y * w + x] = j->row[x * 3 + ch] / 255.0f;
    }
    return FU_OK;   /* the rest of the file (after the last scanline) is not needed */
}

static fu_tensor *decode_jpeg(const unsigned char *data, size_t size, const char *label) {
    struct jpeg_decompress_struct c;
    memset(&c, 0, sizeof c);
    jpeg_job job = {.label = label, .orientation = 1};
    c.err = jpeg_std_error(&job.err);
    job.err.error_exit = jpeg_on_error;
    job.err.emit_message = jpeg_on_message;
    int rc = jpeg_decode_body(&c, &job, data, size);
    jpeg_destroy_decompress(&c);
    free(job.row);
    if (rc) { fu_tensor_free(job.out); return NULL; }
    return apply_orientation(job.out, job.orientation);
}

fu_tensor *fu_image_decode(const void *data, size_t size, const char *label) {
    const unsigned char *p = data;
    if (!label) label = "image";
    if (!data) return fu_fail_null(FU_E_INPUT, "%s: no data", label);
    if (size >= 8 && !memcmp(p, "\x89PNG\r\n\x1a\n", 8)) return decode_png(p, size, label);
    if (size >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff) return decode_jpeg(p, size, label);
    return fu_fail_null(FU_E_INPUT, "%s: not a PNG or JPEG file", label);
}

fu_tensor *fu_image_load(const char *path) {
    if (!path) return fu_fail_null(FU_E_INPUT, "image: NULL path");
    unsigned char *data;
    size_t size;
    if (fu_read_file(path, MAX_FILE_BYTES, &data, &size)) return NULL;
    fu_tensor *t = fu_image_decode(data, size, path);
    free(data);
    if (!t && fu_last_code() == FU_E_INTERNAL && !strstr(fu_last_error(), path)) {   /* e.g. out of memory */
        char why[256];
        snprintf(why, sizeof why, "%s", fu_last_error());
        fu_fail(FU_E_INTERNAL, "%s: %s", path, why);
    }
    return t;
}

/* ---- writing ---- */

/* Accepts [1,3,H,W] or [3,H,W]. */
static int image_size(const fu_tensor *t, const char *path, int64_t *h, int64_t *w) {
    if (!t || !t->data) return fu_fail(FU_E_INPUT, "%s: no image to write", path);
    int ok = (t->ndim == 4 && t->shape[0] == 1 && t->shape[1] == 3) || (t->ndim == 3 && t->shape[0] == 3);
    char buf[96];
    if (!ok) return fu_fail(FU_E_INPUT, "%s: image must be [1,3,H,W] or [3,H,W], got %s", path, fu_shape_str(t, buf, sizeof buf));
    *h = t->shape[t->ndim - 2];
    *w = t->shape[t->ndim - 1];
    if (*h < 1 || *w < 1 || *h > INT32_MAX || *w > INT32_MAX)
        return fu_fail(FU_E_INPUT, "%s: cannot write a %lldx%lld image", path, (long long)*w, (long long)*h);
    return FU_OK;
}

static unsigned char to_u8(float v) { return (unsigned char)lrintf(fminf(fmaxf(v, 0.0f), 1.0f) * 255.0f); }

/* Row y of a planar RGB tensor as interleaved 8-bit RGB. */
static void pack_row(const fu_tensor *t, int64_t h, int64_t w, int64_t y, unsigned char *row) {
    const float *p = t->data + y * w;
    for (int64_t x = 0; x < w; x++)
        for (int c = 0; c < 3; c++) row[x * 3 + c] = to_u8(p[c * h * w + x]);
}

typedef struct png_write_job { const char *path; char msg[200]; unsigned char *row; } png_write_job;

static int png_encode_body(png_structp png, png_infop info, png_write_job *j, FILE *f, const fu_tensor *t, int64_t h, int64_t w) {
    if (setjmp(png_jmpbuf(png))) return fu_fail(FU_E_INPUT, "%s: PNG write failed: %s", j->path, j->msg);
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int64_t y = 0; y < h; y++) {
        pack_row(t, h, w, y, j->row);
        png_write_row(png, j->row);
    }
    png_write_end(png, NULL);
    return FU_OK;
}

int fu_image_save_png(const char *path, const fu_tensor *img) {
    int64_t h, w;
    if (!path) return fu_fail(FU_E_INPUT, "image: NULL path");
    if (image_size(img, path, &h, &w)) return FU_E_INPUT;
    png_write_job job = {.path = path, .row = fu_malloc((size_t)w * 3)};
    if (!job.row) return FU_E_INTERNAL;
    fu_atomic_file af;
    int rc = fu_atomic_open(&af, path);
    if (rc) { free(job.row); return rc; }
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &job, png_on_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    rc = info ? png_encode_body(png, info, &job, af.f, img, h, w) : fu_fail(FU_E_INTERNAL, "%s: libpng setup failed", path);
    png_destroy_write_struct(png ? &png : NULL, info ? &info : NULL);
    free(job.row);
    if (rc) { fu_atomic_abort(&af); return rc; }
    return fu_atomic_commit(&af);
}

typedef struct jpeg_write_job {
    struct jpeg_error_mgr err;   /* first member, see jpeg_job */
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
    unsigned char *row;
} jpeg_write_job;

static void jpeg_write_on_error(j_common_ptr c) {
    jpeg_write_job *j = (jpeg_write_job *)c->err;
    c->err->format_message(c, j->msg);
    longjmp(j->jump, 1);
}

static int jpeg_encode_body(struct jpeg_compress_struct *c, jpeg_write_job *j, const char *path, FILE *f,
                            const fu_tensor *t, int64_t h, int64_t w, int quality) {
    if (setjmp(j->jump)) return fu_fail(FU_E_INPUT, "%s: JPEG write failed: %s", path, j->msg);
    jpeg_create_compress(c);
    jpeg_stdio_dest(c, f);
    c->image_width = (JDIMENSION)w;
    c->image_height = (JDIMENSION)h;
    c->input_components = 3;
    c->in_color_space = JCS_RGB;
    jpeg_set_defaults(c);
    jpeg_set_quality(c, quality, TRUE);
    jpeg_start_compress(c, TRUE);
    for (int64_t y = 0; y < h; y++) {
        pack_row(t, h, w, y, j->row);
        JSAMPROW rows[1] = {j->row};
        jpeg_write_scanlines(c, rows, 1);
    }
    jpeg_finish_compress(c);
    return FU_OK;
}

int fu_image_save_jpeg(const char *path, const fu_tensor *img, int quality) {
    int64_t h, w;
    if (!path) return fu_fail(FU_E_INPUT, "image: NULL path");
    if (image_size(img, path, &h, &w)) return FU_E_INPUT;
    if (quality < 1 || quality > 100) return fu_fail(FU_E_INPUT, "%s: JPEG quality %d outside 1..100", path, quality);
    struct jpeg_compress_struct c;
    memset(&c, 0, sizeof c);
    jpeg_write_job job = {.row = fu_malloc((size_t)w * 3)};
    if (!job.row) return FU_E_INTERNAL;
    c.err = jpeg_std_error(&job.err);
    job.err.error_exit = jpeg_write_on_error;
    fu_atomic_file af;
    int rc = fu_atomic_open(&af, path);
    if (!rc) rc = jpeg_encode_body(&c, &job, path, af.f, img, h, w, quality);
    jpeg_destroy_compress(&c);
    free(job.row);
    if (rc) { fu_atomic_abort(&af); return rc; }
    return fu_atomic_commit(&af);
}
