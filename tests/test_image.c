/* Images: PNG/JPEG round trips, every PNG colour type and bit depth, JPEG variants (grayscale,
 * progressive, CMYK refused), the eight EXIF orientations, decompression bombs refused from the
 * header, corrupt/truncated data refused cleanly, atomic writes, and a real LFW photo. */
#include "test.h"
#include "util.h"
#include "io/fileutil.h"
#include "io/image.h"
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <jpeglib.h>
#include <png.h>


static const char *tmp_path(const char *name) {
    static char path[8][512];
    static int next;
    char *p = path[next++ % 8];
    snprintf(p, 512, "%s/%s", fu_test_tmpdir(), name);
    return p;
}

static float px(const fu_tensor *t, int c, int64_t y, int64_t x) {
    return t->data[(c * t->shape[2] + y) * t->shape[3] + x];
}

/* Smooth colour gradient (JPEG-friendly). */
static fu_tensor *gradient(int64_t h, int64_t w) {
    fu_tensor *t = fu_tensor_newv(4, (int64_t)1, (int64_t)3, h, w);
    for (int c = 0; c < 3; c++)
        for (int64_t y = 0; y < h; y++)
            for (int64_t x = 0; x < w; x++)
                t->data[(c * h + y) * w + x] = c == 0 ? (float)x / (float)w : c == 1 ? (float)y / (float)h : 0.5f;
    return t;
}

/* ---- writing test files with libpng / libjpeg directly ---- */

/* rows: h rows of packed samples in the PNG layout of (color, depth). */
static int write_raw_png(const char *path, int w, int h, int color, int depth, int interlace,
                         unsigned char **rows, const png_color *palette, int n_palette) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) { png_destroy_write_struct(&png, &info); fclose(f); return 0; }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, color, interlace, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (palette) {
        png_set_PLTE(png, info, palette, n_palette);
        png_byte alpha[1] = {0};
        png_set_tRNS(png, info, alpha, 1, NULL);   /* transparency must be ignored */
    }
    png_write_info(png, info);
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return fclose(f) == 0;
}

typedef struct test_jpeg {
    int w, h, components;              /* 1 (gray), 3 (RGB) or 4 (CMYK) */
    const unsigned char *pixels;       /* interleaved, h * w * components */
    int progressive, quality;
    const unsigned char *app1;         /* optional APP1 payload */
    unsigned app1_len;
} test_jpeg;

static int write_raw_jpeg(const char *path, const test_jpeg *spec) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr err;
    c.err = jpeg_std_error(&err);
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, f);
    c.image_width = (JDIMENSION)spec->w;
    c.image_height = (JDIMENSION)spec->h;
    c.input_components = spec->components;
    c.in_color_space = spec->components == 1 ? JCS_GRAYSCALE : spec->components == 4 ? JCS_CMYK : JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, spec->quality ? spec->quality : 95, TRUE);
    if (spec->progressive) jpeg_simple_progression(&c);
    jpeg_start_compress(&c, TRUE);
    if (spec->app1) jpeg_write_marker(&c, JPEG_APP0 + 1, spec->app1, spec->app1_len);
    for (int y = 0; y < spec->h; y++) {
        JSAMPROW row = (JSAMPROW)(spec->pixels + (size_t)y * spec->w * spec->components);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    return fclose(f) == 0;
}

static unsigned char *read_bytes(const char *path, size_t *size) {
    unsigned char *data = NULL;
    if (fu_read_file(path, 1 << 26, &data, size)) return NULL;
    return data;
}

/* ---- round trips ---- */

TEST(image_png_roundtrip_exact) {
    const int64_t h = 23, w = 37;
    fu_tensor *t = fu_tensor_newv(3, (int64_t)3, h, w);   /* [3,H,W] is accepted too */
    REQUIRE(t);
    unsigned s = 12345;
    for (int64_t i = 0; i < t->numel; i++) { s = s * 1103515245u + 12345u; t->data[i] = (float)(s >> 8) / (float)(1 << 24) * 1.4f - 0.2f; }
    t->data[0] = NAN;
    t->data[1] = 0.5f;                                   /* 127.5 rounds to even: 128 */
    const char *path = tmp_path("rt.png");
    REQUIRE(fu_image_save_png(path, t) == FU_OK);
    fu_tensor *back = fu_image_load(path);
    REQUIRE(back);
    CHECK(back->ndim == 4 && back->shape[0] == 1 && back->shape[1] == 3 && back->shape[2] == h && back->shape[3] == w);
    int bad = 0;
    for (int64_t i = 0; i < t->numel; i++) {
        float v = t->data[i];
        float expect = isnan(v) ? 0 : nearbyintf(fminf(fmaxf(v, 0), 1) * 255) / 255;
        bad += back->data[i] != expect;
    }
    CHECK_MSG(bad == 0, "%d pixels differ after PNG round trip", bad);
    CHECK(back->data[0] == 0 && back->data[1] == 128.0f / 255);
    fu_tensor_free(back);
    fu_tensor_free(t);
}

TEST(image_jpeg_roundtrip_and_quality) {
    fu_tensor *t = gradient(40, 56);
    REQUIRE(t);
    const char *hi = tmp_path("q95.jpg"), *lo = tmp_path("q5.jpg");
    REQUIRE(fu_image_save_jpeg(hi, t, 95) == FU_OK);
    REQUIRE(fu_image_save_jpeg(lo, t, 5) == FU_OK);
    fu_tensor *a = fu_image_load(hi), *b = fu_image_load(lo);
    REQUIRE(a && b);
    CHECK(a->shape[2] == 40 && a->shape[3] == 56);
    double err_hi = 0, err_lo = 0;
    for (int64_t i = 0; i < t->numel; i++) { err_hi += fabsf(a->data[i] - t->data[i]); err_lo += fabsf(b->data[i] - t->data[i]); }
    err_hi /= (double)t->numel;
    err_lo /= (double)t->numel;
    CHECK_MSG(err_hi < 0.01, "mean error at quality 95: %g", err_hi);
    CHECK_MSG(err_lo > err_hi, "quality has no effect (%g vs %g)", err_lo, err_hi);
    struct stat sa, sb;
    CHECK(stat(hi, &sa) == 0 && stat(lo, &sb) == 0 && sb.st_size < sa.st_size);
    CHECK(fu_image_save_jpeg(tmp_path("bad.jpg"), t, 0) == FU_E_INPUT && strstr(fu_last_error(), "quality"));
    CHECK(fu_image_save_jpeg(tmp_path("bad.jpg"), t, 101) == FU_E_INPUT);
    fu_tensor *wrong = fu_tensor_newv(4, (int64_t)2, (int64_t)3, (int64_t)4, (int64_t)4);
    CHECK(fu_image_save_png(tmp_path("bad.png"), wrong) == FU_E_INPUT && strstr(fu_last_error(), "[1,3,H,W]"));
    CHECK(!file_exists(tmp_path("bad.png")) && !file_exists(tmp_path("bad.jpg")));
    fu_tensor_free(wrong);
    fu_tensor_free(a);
    fu_tensor_free(b);
    fu_tensor_free(t);
}

/* ---- PNG colour types and depths ---- */

TEST(image_png_color_types_and_depths) {
    enum { W = 5, H = 3 };
    unsigned char buf[H][W * 8];
    unsigned char *rows[H] = {buf[0], buf[1], buf[2]};
    const char *path = tmp_path("variant.png");
    fu_tensor *t;
    /* gray 8 */
    for (int y = 0; y < H; y++) for (int x = 0; x < W; x++) buf[y][x] = (unsigned char)(y * 50 + x * 7);
    REQUIRE(write_raw_png(path, W, H, PNG_COLOR_TYPE_GRAY, 8, PNG_INTERLACE_NONE, rows, NULL, 0));
    REQUIRE((t = fu_image_load(path)));
    CHECK(t->shape[2] == H && t->shape[3] == W);
    CHECK(px(t, 0, 2, 4) == (100 + 28) / 255.0f && px(t, 1, 2, 4) == px(t, 0, 2, 4) && px(t, 2, 1, 3) == (50 + 21) / 255.0f);
    fu_tensor_free(t);
    /* gray 2-bit: 4 samples per byte, MSB first; values 0..3 scale to 0, 85, 170, 255 */
    for (int y = 0; y < H; y++) { buf[y][0] = 0x1b; buf[y][1] = 0xc0; }   /* 0,1,2,3 | 3 */
    REQUIRE(write_raw_png(path, W, H, PNG_COLOR_TYPE_GRAY, 2, PNG_INTERLACE_NONE, rows, NULL, 0));
    REQUIRE((t = fu_image_load(path)));
    CHECK(px(t, 0, 0, 0) == 0 && px(t, 1, 1, 1) == 85 / 255.0f && px(t, 2, 2, 2) == 170 / 255.0f && px(t, 0, 0, 4) == 1);
    fu_tensor_free(t);
    /* gray + alpha 8: alpha dropped */
    for (int y = 0; y < H; y++) for (int x = 0; x < W; x++) { buf[y][2 * x] = (unsigned char)(x * 60); buf[y][2 * x + 1] = 0; }
    REQUIRE(write_raw_png(path, W, H, PNG_COLOR_TYPE_GRAY_ALPHA, 8, PNG_INTERLACE_NONE, rows, NULL, 0));
    REQUIRE((t = fu_image_load(path)));
    CHECK(px(t, 0, 1, 3) == 180 / 255.0f && px(t, 2, 1, 3) == 180 / 255.0f);
    fu_tensor_free(t);
    /* RGB 16: big-endian samples divided by 65535 */
    for (int y = 0; y < H; y++)
        for (int i = 0; i < W * 3; i++) { unsigned v = (unsigned)(y * 20000 + i * 1000 + 1); buf[y][2 * i] = (unsigned char)(v >> 8); buf[y][2 * i + 1] = (unsigned char)v; }
    REQUIRE(write_raw_png(path, W, H, PNG_COLOR_TYPE_RGB, 16, PNG_INTERLACE_NONE, rows, NULL, 0));
    REQUIRE((t = fu_image_load(path)));
    CHECK(px(t, 0, 0, 0) == 1 / 65535.0f && px(t, 2, 2, 4) == (40000 + 14000 + 1) / 65535.0f && px(t, 1, 1, 2) == (20000 + 7000 + 1) / 65535.0f);
    fu_tensor_free(t);
    /* gray 16 */
    for (int y = 0; y < H; y++) for (int x = 0; x < W; x++) { buf[y][2 * x] = 0xff; buf[y][2 * x + 1] = (unsigned char)x; }
    REQUIRE(write_raw_png(path, W, H, PNG_COLOR_TYPE_GRAY, 16, PNG_INTERLACE_NONE, rows, NULL, 0));
    REQUIRE((t = fu_image_load(path)));
    CHECK(px(t, 1, 0, 3) == 0xff03 / 65535.0f && px(t, 0, 0, 3) == px(t, 2, 0, 3));
    fu_tensor_free(t);
    /* RGBA 8: alpha dropped */
    for (int y = 0; y < H; y++) for (int x = 0; x < W; x++) { unsigned char p[4] = {10, 20, (unsigned char)(30 + x), 99}; memcpy(&buf[y][4 * x], p, 4); }
    REQUIRE(write_raw_png(path, W, H, PNG_COLOR_TYPE_RGBA, 8, PNG_INTERLACE_NONE, rows, NULL, 0));
    REQUIRE((t = fu_image_load(path)));
    CHECK(px(t, 0, 2, 2) == 10 / 255.0f && px(t, 1, 2, 2) == 20 / 255.0f && px(t, 2, 2, 2) == 32 / 255.0f);
    fu_tensor_free(t);
    /* palette 8-bit and 2-bit (with a tRNS entry that must not matter) */
    const png_color pal[4] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {7, 8, 9}};
    for (int y = 0; y < H; y++) for (int x = 0; x < W; x++) buf[y][x] = (unsigned char)((x + y) % 4);
    REQUIRE(write_raw_png(path, W, H, PNG_COLOR_TYPE_PALETTE, 8, PNG_INTERLACE_NONE, rows, pal, 4));
    REQUIRE((t = fu_image_load(path)));
    CHECK(px(t, 0, 0, 0) == 1 && px(t, 1, 0, 0) == 0 && px(t, 2, 1, 1) == 1 && px(t, 0, 1, 2) == 7 / 255.0f && px(t, 2, 1, 2) == 9 / 255.0f);
    fu_tensor_free(t);
    for (int y = 0; y < H; y++) { buf[y][0] = 0xe4; buf[y][1] = 0x40; }  /* 3,2,1,0 | 1 */
    REQUIRE(write_raw_png(path, W, H, PNG_COLOR_TYPE_PALETTE, 2, PNG_INTERLACE_NONE, rows, pal, 4));
    REQUIRE((t = fu_image_load(path)));
    CHECK(px(t, 1, 0, 0) == 8 / 255.0f && px(t, 2, 0, 1) == 1 && px(t, 1, 0, 2) == 1 && px(t, 0, 0, 3) == 1 && px(t, 1, 0, 4) == 1);
    fu_tensor_free(t);
    /* RGB 8 interlaced (Adam7) */
    for (int y = 0; y < H; y++) for (int i = 0; i < W * 3; i++) buf[y][i] = (unsigned char)(y * 70 + i * 3);
    REQUIRE(write_raw_png(path, W, H, PNG_COLOR_TYPE_RGB, 8, PNG_INTERLACE_ADAM7, rows, NULL, 0));
    REQUIRE((t = fu_image_load(path)));
    int bad = 0;
    for (int y = 0; y < H; y++) for (int x = 0; x < W; x++) for (int c = 0; c < 3; c++) bad += px(t, c, y, x) != (y * 70 + (x * 3 + c) * 3) / 255.0f;
    CHECK(bad == 0);
    fu_tensor_free(t);
}

/* ---- JPEG variants ---- */

TEST(image_jpeg_gray_progressive_cmyk) {
    enum { W = 48, H = 32 };
    static unsigned char rgb[H * W * 3], gray[H * W], cmyk[H * W * 4];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            gray[y * W + x] = (unsigned char)(x * 5);
            for (int c = 0; c < 3; c++) rgb[(y * W + x) * 3 + c] = (unsigned char)(c == 0 ? x * 5 : c == 1 ? y * 7 : 128);
        }
    const char *path = tmp_path("gray.jpg");
    REQUIRE(write_raw_jpeg(path, &(test_jpeg){.w = W, .h = H, .components = 1, .pixels = gray}));
    fu_tensor *g = fu_image_load(path);
    REQUIRE(g);
    double err = 0;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            CHECK(px(g, 0, y, x) == px(g, 1, y, x) && px(g, 1, y, x) == px(g, 2, y, x));
            err += fabsf(px(g, 0, y, x) - gray[y * W + x] / 255.0f);
        }
    CHECK_MSG(err / (W * H) < 0.01, "gray mean error %g", err / (W * H));
    fu_tensor_free(g);
    const char *base = tmp_path("base.jpg"), *prog = tmp_path("prog.jpg");
    REQUIRE(write_raw_jpeg(base, &(test_jpeg){.w = W, .h = H, .components = 3, .pixels = rgb}));
    REQUIRE(write_raw_jpeg(prog, &(test_jpeg){.w = W, .h = H, .components = 3, .pixels = rgb, .progressive = 1}));
    size_t size;
    unsigned char *bytes = read_bytes(prog, &size);
    REQUIRE(bytes);
    int sof2 = 0;                                        /* progressive frames use SOF2 */
    for (size_t i = 0; i + 1 < size; i++) sof2 |= bytes[i] == 0xff && bytes[i + 1] == 0xc2;
    CHECK(sof2);
    free(bytes);
    fu_tensor *a = fu_image_load(base), *b = fu_image_load(prog);
    REQUIRE(a && b);
    double diff = 0, err_rgb = 0;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int c = 0; c < 3; c++) {
                diff += fabsf(px(a, c, y, x) - px(b, c, y, x));
                err_rgb += fabsf(px(b, c, y, x) - rgb[(y * W + x) * 3 + c] / 255.0f);
            }
    CHECK_MSG(diff / (W * H * 3) < 0.005, "baseline vs progressive differ by %g", diff / (W * H * 3));
    CHECK_MSG(err_rgb / (W * H * 3) < 0.01, "progressive mean error %g", err_rgb / (W * H * 3));
    fu_tensor_free(a);
    fu_tensor_free(b);
    memset(cmyk, 100, sizeof cmyk);
    REQUIRE(write_raw_jpeg(path, &(test_jpeg){.w = W, .h = H, .components = 4, .pixels = cmyk}));
    CHECK(fu_image_load(path) == NULL && strstr(fu_last_error(), "CMYK") && strstr(fu_last_error(), path));
}

/* ---- EXIF orientation ---- */

typedef struct tiff_writer { unsigned char *p; unsigned n; int little; } tiff_writer;
static void put16(tiff_writer *w, unsigned v) {
    w->p[w->n++] = (unsigned char)(w->little ? v : v >> 8);
    w->p[w->n++] = (unsigned char)(w->little ? v >> 8 : v);
}
static void put32(tiff_writer *w, uint32_t v) {
    put16(w, w->little ? v & 0xffff : v >> 16);
    put16(w, w->little ? v >> 16 : v & 0xffff);
}

/* APP1 payload with IFD0 = {Make (decoy), Orientation}; big- or little-endian TIFF. */
static unsigned build_exif(unsigned char *p, int orientation, int little) {
    memcpy(p, "Exif\0\0", 6);
    tiff_writer w = {p + 6, 0, little};
    w.p[w.n++] = little ? 'I' : 'M';
    w.p[w.n++] = little ? 'I' : 'M';
    put16(&w, 42);
    put32(&w, 8);
    put16(&w, 2);                                        /* two entries */
    put16(&w, 0x010f); put16(&w, 2); put32(&w, 4); memcpy(w.p + w.n, "ACM", 4); w.n += 4;
    put16(&w, 0x0112); put16(&w, 3); put32(&w, 1); put16(&w, (unsigned)orientation); put16(&w, 0);
    put32(&w, 0);                                        /* no next IFD */
    return 6 + w.n;
}

TEST(image_exif_parser_strict) {
    unsigned char p[128];
    for (int o = 1; o <= 8; o++) {
        unsigned n = build_exif(p, o, o % 2);
        CHECK(fu_exif_orientation(p, n) == o);
        if (o == 6)
            for (unsigned k = 0; k < n - 6; k++) CHECK(fu_exif_orientation(p, k) == 1);   /* every truncation */
    }
    unsigned n = build_exif(p, 9, 1);
    CHECK(fu_exif_orientation(p, n) == 1);                       /* out of range value */
    n = build_exif(p, 6, 0);
    p[6 + 4] = p[6 + 5] = p[6 + 6] = p[6 + 7] = 0xff;           /* IFD offset 0xffffffff */
    CHECK(fu_exif_orientation(p, n) == 1);
    n = build_exif(p, 6, 0);
    p[6 + 8] = 0xff; p[6 + 9] = 0xff;                           /* 65535 entries claimed ... */
    p[6 + 10 + 12] = 0x09;                                      /* ... and no orientation among them */
    CHECK(fu_exif_orientation(p, n) == 1);
    n = build_exif(p, 6, 1);
    p[6 + 10 + 12 + 2] = 4;                                     /* orientation stored as LONG */
    CHECK(fu_exif_orientation(p, n) == 1);
    n = build_exif(p, 6, 1);
    p[0] = 'X';
    CHECK(fu_exif_orientation(p, n) == 1);
    CHECK(fu_exif_orientation(NULL, 0) == 1);
}

/* Stored 48x32 image with four coloured quadrants; each orientation must put each stored corner
 * where the EXIF definition says: orientation o puts stored row 0 on side row0[o] and stored
 * column 0 on side col0[o] of the displayed image (T, B, L, R). */
TEST(image_jpeg_exif_orientations) {
    enum { W = 48, H = 32 };
    static unsigned char rgb[H * W * 3];
    const float colors[4][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}, {1, 1, 1}};   /* TL, TR, BL, BR stored */
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int c = 0; c < 3; c++) rgb[(y * W + x) * 3 + c] = (unsigned char)(255 * colors[(y >= H / 2) * 2 + (x >= W / 2)][c]);
    const char row0[9] = " TTBBLRRL", col0[9] = " LRRLTTBB";
    for (int o = 1; o <= 8; o++) {
        unsigned char app1[128];
        unsigned n = build_exif(app1, o, o > 4);
        const char *path = tmp_path("exif.jpg");
        REQUIRE(write_raw_jpeg(path, &(test_jpeg){.w = W, .h = H, .components = 3, .pixels = rgb, .app1 = app1, .app1_len = n}));
        fu_tensor *t = fu_image_load(path);
        REQUIRE(t);
        int swapped = row0[o] == 'L' || row0[o] == 'R';
        int64_t dh = t->shape[2], dw = t->shape[3];
        CHECK_MSG(dh == (swapped ? W : H) && dw == (swapped ? H : W), "orientation %d: %lldx%lld", o, (long long)dw, (long long)dh);
        for (int q = 0; q < 4; q++) {
            /* Sides of the displayed image that stored corner q touches. */
            char rs = row0[o], cs = col0[o];
            const char *opp = " BTRL", *sides = " TBLR";
            if (q >= 2) rs = opp[strchr(sides, rs) - sides];
            if (q % 2) cs = opp[strchr(sides, cs) - sides];
            int bottom = rs == 'B' || cs == 'B', right = rs == 'R' || cs == 'R';
            int64_t y = bottom ? dh * 3 / 4 : dh / 4, x = right ? dw * 3 / 4 : dw / 4;
            for (int c = 0; c < 3; c++)
                CHECK_MSG(fabsf(px(t, c, y, x) - colors[q][c]) < 0.05f, "orientation %d: stored corner %d not at %s%s", o, q,
                          bottom ? "bottom" : "top", right ? "right" : "left");
        }
        fu_tensor_free(t);
    }
}

/* ---- hostile input ---- */

static uint32_t crc32_png(const unsigned char *p, size_t n) {
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
    }
    return ~c;
}

static void put_be32(unsigned char *p, uint32_t v) { p[0] = (unsigned char)(v >> 24); p[1] = (unsigned char)(v >> 16); p[2] = (unsigned char)(v >> 8); p[3] = (unsigned char)v; }

TEST(image_refuses_decompression_bombs_from_header) {
    /* Signature + IHDR(100000 x 100000, RGB 8) + empty IDAT + IEND: tiny file, 10^10 pixels. */
    unsigned char f[8 + 25 + 12 + 12];
    memcpy(f, "\x89PNG\r\n\x1a\n", 8);
    put_be32(f + 8, 13);
    memcpy(f + 12, "IHDR", 4);
    put_be32(f + 16, 100000);
    put_be32(f + 20, 100000);
    f[24] = 8; f[25] = 2; f[26] = f[27] = f[28] = 0;
    put_be32(f + 29, crc32_png(f + 12, 17));
    put_be32(f + 33, 0); memcpy(f + 37, "IDAT", 4); put_be32(f + 41, crc32_png(f + 37, 4));
    put_be32(f + 45, 0); memcpy(f + 49, "IEND", 4); put_be32(f + 53, crc32_png(f + 49, 4));
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK(fu_image_decode(f, sizeof f, "bomb.png") == NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CHECK(strstr(fu_last_error(), "bomb.png") && strstr(fu_last_error(), "100000x100000") && strstr(fu_last_error(), "limit"));
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    CHECK_MSG(ms < 50, "refusal took %.1f ms", ms);
    /* JPEG: a small real file with its SOF0 dimensions patched to 60000 x 60000. */
    static unsigned char rgb[16 * 16 * 3];
    const char *path = tmp_path("bomb.jpg");
    REQUIRE(write_raw_jpeg(path, &(test_jpeg){.w = 16, .h = 16, .components = 3, .pixels = rgb}));
    size_t size;
    unsigned char *j = read_bytes(path, &size);
    REQUIRE(j);
    fu_tensor *ok = fu_image_decode(j, size, "small.jpg");
    CHECK(ok && ok->shape[2] == 16);
    fu_tensor_free(ok);
    int patched = 0;
    for (size_t i = 0; i + 9 < size && !patched; i++)
        if (j[i] == 0xff && j[i + 1] == 0xc0) { j[i + 5] = j[i + 7] = 0xea; j[i + 6] = j[i + 8] = 0x60; patched = 1; }
    REQUIRE(patched);
    CHECK(fu_image_decode(j, size, "bomb.jpg") == NULL && strstr(fu_last_error(), "60000x60000"));
    /* The limit is settable: 16x16 = 256 pixels is refused under a 255-pixel limit. */
    fu_image_set_max_pixels(255);
    CHECK(fu_image_load(path) == NULL && strstr(fu_last_error(), "limit of 255"));
    fu_image_set_max_pixels(0);
    CHECK(fu_image_max_pixels() == FU_IMAGE_DEFAULT_MAX_PIXELS);
    free(j);
}

/* Every truncation and many single-byte corruptions of a PNG and a JPEG: never a crash (this test
 * matters most under ASan), truncations always refused with a message naming the source. */
TEST(image_corrupt_and_truncated_files) {
    fu_tensor *t = gradient(24, 40);
    REQUIRE(t);
    const char *png_path = tmp_path("c.png"), *jpg_path = tmp_path("c.jpg");
    REQUIRE(fu_image_save_png(png_path, t) == FU_OK);
    REQUIRE(fu_image_save_jpeg(jpg_path, t, 90) == FU_OK);
    const char *paths[2] = {png_path, jpg_path};
    for (int k = 0; k < 2; k++) {
        size_t size;
        unsigned char *data = read_bytes(paths[k], &size);
        REQUIRE(data);
        int accepted = 0;
        /* JPEG: cutting only the final EOI marker still leaves every scanline decodable. */
        size_t must_fail_below = k == 0 ? size - 12 : size - 2;   /* PNG: the IEND chunk is optional to us */
        for (size_t n = 0; n < must_fail_below; n += (n < 64 ? 1 : 7)) {
            fu_clear_error();
            fu_tensor *r = fu_image_decode(data, n, "cut");
            accepted += r != NULL;
            CHECK(r != NULL || (strstr(fu_last_error(), "cut") && fu_last_code() == FU_E_INPUT));
            fu_tensor_free(r);
        }
        CHECK_MSG(accepted == 0, "%s: %d truncated versions accepted", paths[k], accepted);
        unsigned s = 99;
        for (int trial = 0; trial < 300; trial++) {
            unsigned char *copy = malloc(size);
            memcpy(copy, data, size);
            s = s * 1103515245u + 12345u;
            copy[(s >> 8) % size] ^= (unsigned char)(1 + (s >> 20) % 255);
            fu_tensor *r = fu_image_decode(copy, size, "flip");
            CHECK(r == NULL || (r->shape[2] == 24 && r->shape[3] == 40) || k == 1);
            fu_tensor_free(r);
            free(copy);
        }
        free(data);
    }
    CHECK(fu_image_decode("GIF89a....", 10, "x.gif") == NULL && strstr(fu_last_error(), "not a PNG or JPEG"));
    CHECK(fu_image_load(tmp_path("does-not-exist.png")) == NULL && strstr(fu_last_error(), "does-not-exist.png"));
    fu_tensor_free(t);
}

TEST(image_atomic_write_leaves_no_file_on_error) {
    fu_tensor *t = gradient(8, 8);
    REQUIRE(t);
    char dir[512], missing[600];
    snprintf(dir, sizeof dir, "%s/img_atomic", fu_test_tmpdir());
    mkdir(dir, 0700);
    snprintf(missing, sizeof missing, "%s/missing/out.png", dir);
    CHECK(fu_image_save_png(missing, t) == FU_E_INPUT && strstr(fu_last_error(), "missing/out.png"));
    /* libjpeg refuses widths over 65500 inside jpeg_start_compress, i.e. after the temporary file
     * was created: the error happens mid-way and must still leave nothing behind. */
    fu_tensor *wide = fu_tensor_newv(4, (int64_t)1, (int64_t)3, (int64_t)1, (int64_t)65501);
    REQUIRE(wide);
    char path[600];
    snprintf(path, sizeof path, "%s/wide.jpg", dir);
    CHECK(fu_image_save_jpeg(path, wide, 90) == FU_E_INPUT && strstr(fu_last_error(), "JPEG write failed"));
    CHECK(!file_exists(path) && count_prefixed(dir, "wide.jpg") == 0);
    /* A failed write over an existing file keeps the old file intact. */
    REQUIRE(fu_image_save_jpeg(path, t, 90) == FU_OK);
    CHECK(fu_image_save_jpeg(path, wide, 90) == FU_E_INPUT);
    fu_tensor *back = fu_image_load(path);
    CHECK(back && back->shape[3] == 8);
    CHECK(count_prefixed(dir, "wide.jpg") == 1);
    fu_tensor_free(back);
    fu_tensor_free(wide);
    fu_tensor_free(t);
}

TEST(image_reads_real_lfw_jpeg) {
    const char *shared = fu_test_shared_dir();
    if (!shared) SKIP("../shared absent");
    char dir[1024], path[2048] = "";
    snprintf(dir, sizeof dir, "%s/data/lfw/images/Aaron_Eckhart", shared);
    DIR *d = opendir(dir);
    if (!d) SKIP("LFW absent");
    for (struct dirent *e; (e = readdir(d));)
        if (strstr(e->d_name, ".jpg")) { snprintf(path, sizeof path, "%s/%s", dir, e->d_name); break; }
    closedir(d);
    if (!path[0]) SKIP("no LFW jpeg");
    fu_tensor *t = fu_image_load(path);
    REQUIRE(t);
    CHECK(t->ndim == 4 && t->shape[1] == 3 && t->shape[2] == 250 && t->shape[3] == 250);
    float lo = 1, hi = 0;
    for (int64_t i = 0; i < t->numel; i++) { lo = fminf(lo, t->data[i]); hi = fmaxf(hi, t->data[i]); }
    CHECK(lo >= 0 && hi <= 1 && hi - lo > 0.5f);
    fu_tensor_free(t);
}
