/* Writes the small seed corpora under corpus/<target>/ (run by `make seeds`). */
#include <stdio.h>
#include <string.h>
#include <jpeglib.h>
#include <png.h>
#include <stdlib.h>
#include "eval/calibration.h"
#include "data/embed_cache.h"
#include "io/dlib_dat.h"
#include "io/fileutil.h"
#include "io/image.h"
#include "io/safetensors.h"
#include "data/faces.h"
#include "core/rng.h"
#include "faceup.h"
#include "face/irse.h"
#include "gen/sharp.h"
#include "gen/vae.h"

static void seed_safetensors(void) {
    fu_tensor *a = fu_tensor_newv(2, (int64_t)2, (int64_t)3), *s = fu_tensor_new(0, NULL), *e = fu_tensor_newv(1, (int64_t)0);
    for (int i = 0; i < 6; i++) a->data[i] = (float)i - 2.5f;
    fu_st_item all[] = {{"a", a, FU_F32}, {"b", a, FU_F16}, {"c", a, FU_BF16}, {"d", a, FU_I64},
                        {"s", s, FU_F64}, {"e", e, FU_U8}};
    fu_st_meta meta[] = {{"format", "pt"}};
    fu_st_save("corpus/fuzz_safetensors/dtypes.safetensors", all, 6, meta, 1);
    fu_st_save("corpus/fuzz_safetensors/one.safetensors", all, 1, NULL, 0);
    fu_st_save("corpus/fuzz_safetensors/empty.safetensors", NULL, 0, meta, 1);
    fu_tensor_free(a);
    fu_tensor_free(s);
    fu_tensor_free(e);
}

static void raw_png(const char *path, int color, int depth, int interlace) {
    unsigned char buf[6][6 * 8];
    unsigned char *rows[6];
    for (int y = 0; y < 6; y++) { rows[y] = buf[y]; for (int i = 0; i < 48; i++) buf[y][i] = (unsigned char)(y * 40 + i); }
    const png_color pal[4] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {9, 9, 9}};
    FILE *f = fopen(path, "wb");
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    png_init_io(png, f);
    png_set_IHDR(png, info, 6, 6, depth, color, interlace, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_PLTE(png, info, pal, 4);
    png_write_info(png, info);
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    fclose(f);
}

static void raw_jpeg(const char *path, int gray, int progressive, int orientation) {
    unsigned char pix[16 * 16 * 3];
    for (int i = 0; i < (int)sizeof pix; i++) pix[i] = (unsigned char)(i * 7);
    /* Exif APP1, big-endian TIFF, IFD0 with one Orientation entry. */
    unsigned char exif[] = {'E', 'x', 'i', 'f', 0, 0, 'M', 'M', 0, 42, 0, 0, 0, 8, 0, 1,
                            0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, (unsigned char)orientation, 0, 0, 0, 0, 0, 0};
    FILE *f = fopen(path, "wb");
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr err;
    c.err = jpeg_std_error(&err);
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, f);
    c.image_width = 16;
    c.image_height = 8;
    c.input_components = gray ? 1 : 3;
    c.in_color_space = gray ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 50, TRUE);
    if (progressive) jpeg_simple_progression(&c);
    jpeg_start_compress(&c, TRUE);
    if (orientation) jpeg_write_marker(&c, JPEG_APP0 + 1, exif, sizeof exif);
    for (int y = 0; y < 8; y++) { JSAMPROW row = pix + y * 16 * c.input_components; jpeg_write_scanlines(&c, &row, 1); }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    fclose(f);
}

static void write_bytes(const char *path, const unsigned char *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (f) { fwrite(p, 1, n, f); fclose(f); }
}

/* A small complete shape predictor (3 parts, 2 cascades of 2 depth-2 trees over 4 feature
 * pixels each) and a truncated copy: the real 68-point model is 100 MB. */
static void seed_dlib(void) {
    float shape[6] = {0.2f, 0.3f, 0.8f, 0.3f, 0.5f, 0.8f}, leaves[4 * 4 * 6], deltas[2 * 4 * 2];
    for (int i = 0; i < 96; i++) leaves[i] = (float)((i % 7) - 3) * 0.01f;
    for (int i = 0; i < 16; i++) deltas[i] = (float)((i % 5) - 2) * 0.05f;
    uint32_t anchors[8] = {0, 1, 2, 0, 2, 1, 0, 1};
    fu_dlib_split splits[12];
    for (int i = 0; i < 12; i++) splits[i] = (fu_dlib_split){(uint32_t)(i % 4), (uint32_t)((i + 1) % 4), (float)(i * 3 - 10)};
    fu_dlib_tree trees[4] = {{0, 3, 0}, {3, 3, 4}, {6, 3, 8}, {9, 3, 12}};
    fu_dlib_cascade cascades[2] = {{0, 2, 0, 4}, {2, 2, 4, 4}};
    fu_shape_predictor sp = {3, shape, 2, cascades, trees, splits, leaves, anchors, deltas, 4, 12, 16, 8};
    unsigned char *buf;
    size_t n;
    if (fu_dlib_serialize_shape_predictor(&sp, &buf, &n) != 0) return;
    write_bytes("corpus/fuzz_dlib_dat/small.dat", buf, n);
    write_bytes("corpus/fuzz_dlib_dat/truncated.dat", buf, n * 3 / 5);
    free(buf);
}

/* Two 8x8 faces (one per split and source kind) and an empty set. */
static void seed_faces(void) {
    fu_face_label labels[2] = {{.path = "celeba/img/000001.jpg", .source = FU_FACES_CELEBA, .split = FU_SPLIT_TRAIN,
                                .gender = 1, .race = -1, .age = -1, .identity = -1, .attrs = 5, .attrs_known = (1ull << 40) - 1},
                               {.path = "lfw/images/A_B/A_B_0001.jpg", .source = FU_FACES_LFW, .split = FU_SPLIT_TEST,
                                .gender = -1, .race = -1, .age = 30, .identity = 7}};
    uint8_t pixels[2 * 3 * 8 * 8];
    for (size_t i = 0; i < sizeof pixels; i++) pixels[i] = (uint8_t)(i * 7);
    fu_faces set = {.size = 8, .count = 2, .labels = labels, .pixels = pixels};
    fu_faces_save(&set, "corpus/fuzz_faces/two.faces");
    set.count = 0;
    fu_faces_save(&set, "corpus/fuzz_faces/empty.faces");
}

/* fuzz_embed_cache's input: a byte choosing the vector size (3 -> 128, 1 -> 3), then the file. */
static void embed_cache_seed(const char *out, int selector, int dim, int records) {
    const char *tmp = "corpus/fuzz_embed_cache/tmp.bin";
    fu_ecache *c = fu_ecache_open(tmp, "dlib-resnet/dlib150", dim);
    float vec[128];
    for (int r = 0; r < records; r++) {
        for (int i = 0; i < dim; i++) vec[i] = (float)(r * dim + i) / 8;
        fu_ecache_put(c, fu_ecache_key_bytes(&r, sizeof r), vec);
    }
    fu_ecache_save(c);
    fu_ecache_free(c);
    unsigned char *data;
    size_t n;
    if (fu_read_file(tmp, 1 << 20, &data, &n) != 0) return;
    FILE *f = fopen(out, "wb");
    fputc(selector, f);
    fwrite(data, 1, n, f);
    fclose(f);
    free(data);
    remove(tmp);
}

static void seed_calibration(void) {
    fu_calibration dlib = {"neg-euclidean", -0.6, 0.99, 0.004, 6000}, faceres = {"cosine", 0.5, 0.96, 0.02, 600};
    fu_calibration_write("corpus/fuzz_calibration/both.json", "dlib-resnet", &dlib);
    fu_calibration_write("corpus/fuzz_calibration/both.json", "faceres", &faceres);
    fu_calibration_write("corpus/fuzz_calibration/one.json", "faceres", &faceres);
}

/* Small model files for fuzz_models: a VAE of the smallest config with a latent prior, the same
 * with a sharpening stage (a 16 px sharp generator), a tiny
 * IR-SE, and the text forms the checkpoints carry (IR-SE config, RNG state). The shipped heads
 * file is 1.7 MB, too large for a seed; the fuzzer reaches its checks from these. */
static void seed_models(void) {
    fu_vae_config vc = {.size = 8, .channels = 2, .latent = 3};
    fu_vae *v = fu_vae_new(&vc, 1);
    double mean[3] = {0.1, -0.2, 0.3}, cov[9] = {1, 0.2, 0, 0.2, 1, 0, 0, 0, 0.5};
    if (v && fu_vae_save(v, "corpus/fuzz_models/vae8.safetensors") == FU_OK && fu_vae_set_prior(v, mean, cov) == FU_OK)
        fu_vae_save(v, "corpus/fuzz_models/vae8_prior.safetensors");
    fu_sr_config sc = {.channels = 4, .blocks = 1};
    fu_sr *sr = v ? fu_sr_new(&sc, 1) : NULL;
    if (sr) fu_sharp_save(v, sr, "corpus/fuzz_models/sharp16.safetensors");
    fu_sr_free(sr);
    fu_vae_free(v);
    fu_irse_config ic = {.units = {1, 1, 1, 1}, .channels = {4, 4, 8, 8}, .input_size = 16, .embedding = 4, .se_reduction = 2, .dropout = 0};
    fu_rng r;
    fu_rng_seed(&r, 2);
    fu_irse *m = fu_irse_new(&ic, &r);
    if (m) fu_irse_save(m, "corpus/fuzz_models/irse_tiny.safetensors");
    fu_irse_free(m);
    char line[512];
    fu_irse_config_format(&ic, line, sizeof line);
    write_bytes("corpus/fuzz_models/irse_config.txt", (const unsigned char *)line, strlen(line));
    fu_rng_to_text(&r, line, sizeof line);
    write_bytes("corpus/fuzz_models/rng_state.txt", (const unsigned char *)line, strlen(line));
}

int main(void) {
    seed_models();
    seed_faces();
    embed_cache_seed("corpus/fuzz_embed_cache/d128_two", 3, 128, 2);
    embed_cache_seed("corpus/fuzz_embed_cache/d3_five", 1, 3, 5);
    embed_cache_seed("corpus/fuzz_embed_cache/d3_empty", 1, 3, 0);
    seed_calibration();
    seed_safetensors();
    seed_dlib();
    raw_png("corpus/fuzz_image/gray8.png", PNG_COLOR_TYPE_GRAY, 8, PNG_INTERLACE_NONE);
    raw_png("corpus/fuzz_image/gray1.png", PNG_COLOR_TYPE_GRAY, 1, PNG_INTERLACE_NONE);
    raw_png("corpus/fuzz_image/ga16.png", PNG_COLOR_TYPE_GRAY_ALPHA, 16, PNG_INTERLACE_NONE);
    raw_png("corpus/fuzz_image/rgba8_adam7.png", PNG_COLOR_TYPE_RGBA, 8, PNG_INTERLACE_ADAM7);
    raw_png("corpus/fuzz_image/rgb16.png", PNG_COLOR_TYPE_RGB, 16, PNG_INTERLACE_NONE);
    raw_png("corpus/fuzz_image/pal2.png", PNG_COLOR_TYPE_PALETTE, 2, PNG_INTERLACE_NONE);
    raw_jpeg("corpus/fuzz_image/base.jpg", 0, 0, 0);
    raw_jpeg("corpus/fuzz_image/gray_prog.jpg", 1, 1, 0);
    raw_jpeg("corpus/fuzz_image/exif6.jpg", 0, 0, 6);
    raw_jpeg("corpus/fuzz_image/exif7_prog.jpg", 0, 1, 7);
    return 0;
}
