/* The faceup command: exit codes and one-line errors (runs $FACEUP_BIN, default build/faceup). */
#include "test.h"
#include "util.h"
#include "golden.h"
#include "core/rng.h"
#include "face/dlib_resnet.h"
#include "face/models.h"
#include "gen/vae.h"
#include "io/image.h"
#include "io/safetensors.h"
#include <cjson/cJSON.h>
#include <png.h>
#include <setjmp.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

TEST(cli_exit_codes_and_messages) {
    const char *bin = getenv("FACEUP_BIN") ? getenv("FACEUP_BIN") : "build/faceup";
    if (access(bin, X_OK) != 0) SKIP("faceup binary not built");
    static char out[65536], err[4096];
    CHECK(run_faceup("", out, sizeof out, err, sizeof err) == FU_E_INPUT);
    CHECK(run_faceup("frobnicate", out, sizeof out, err, sizeof err) == FU_E_INPUT);
    CHECK(strstr(err, "unknown command 'frobnicate'") && count_newlines(err) == 1);
    CHECK(run_faceup("selfcheck --steps abc", out, sizeof out, err, sizeof err) == FU_E_INPUT);
    CHECK(strstr(err, "--steps") && count_newlines(err) == 1);
    CHECK(run_faceup("selfcheck --steps 0", out, sizeof out, err, sizeof err) == FU_E_INPUT);
    CHECK(run_faceup("selfcheck --steps", out, sizeof out, err, sizeof err) == FU_E_INPUT);
    CHECK(run_faceup("selfcheck --bogus", out, sizeof out, err, sizeof err) == FU_E_INPUT);
    CHECK(run_faceup("model info /nonexistent/w.safetensors", out, sizeof out, err, sizeof err) == FU_E_INPUT);
    CHECK(strstr(err, "/nonexistent/w.safetensors") && count_newlines(err) == 1);
    CHECK(run_faceup("model info tests/fixtures/pt/dtypes.pt tests/fixtures/pt/hostile_os_system.pt", out, sizeof out, err, sizeof err) == FU_E_INPUT);
    CHECK(strstr(err, "os.system") != NULL);
    CHECK(run_faceup("selfcheck --json --quiet --steps 150", out, sizeof out, err, sizeof err) == FU_OK);
    CHECK(strstr(out, "\"passed\": true") != NULL);
    CHECK(run_faceup("selfcheck --steps 1 --quiet", out, sizeof out, err, sizeof err) == FU_E_INTERNAL);  /* one step cannot learn */
    CHECK(run_faceup("--version", out, sizeof out, err, sizeof err) == FU_OK && strstr(out, FACEUP_VERSION));
}

TEST(cli_generate_grid_from_stylegan2) {
    const char *bin = getenv("FACEUP_BIN") ? getenv("FACEUP_BIN") : "build/faceup";
    const char *shared = fu_test_shared_dir();
    if (access(bin, X_OK) != 0) SKIP("faceup binary not built");
    if (!shared) SKIP("../shared absent");
    static char out[4096], err[4096], args[2048], a[512], b[512], c[512];
    snprintf(a, sizeof a, "%s/gen_a.png", fu_test_tmpdir());
    snprintf(b, sizeof b, "%s/gen_b.png", fu_test_tmpdir());
    snprintf(c, sizeof c, "%s/gen_c.png", fu_test_tmpdir());
    const char *outs[3] = {a, b, c};
    int seeds[3] = {3, 3, 4};
    for (int i = 0; i < 3; i++) {
        snprintf(args, sizeof args, "generate --generator %s/golden/stylegan2/weights.pt --seed %d --count 4 -o %s", shared, seeds[i], outs[i]);
        CHECK(run_faceup(args, out, sizeof out, err, sizeof err) == FU_OK);
    }
    fu_tensor *ia = fu_image_load(a), *ib = fu_image_load(b), *ic = fu_image_load(c);
    REQUIRE(ia && ib && ic);
    CHECK(ia->shape[2] == 128 && ia->shape[3] == 128);  /* 2 x 2 grid of 64x64 */
    CHECK(golden_max_diff(ia, ib) == 0);                 /* same seed, same image */
    CHECK(golden_max_diff(ia, ic) > 0.1f);
    fu_tensor_free(ia); fu_tensor_free(ib); fu_tensor_free(ic);
    snprintf(args, sizeof args, "generate --generator %s/golden/stylegan1/weights.pt -o %s/v1.png", shared, fu_test_tmpdir());
    CHECK(run_faceup(args, out, sizeof out, err, sizeof err) == FU_E_INPUT);
    CHECK(strstr(err, "--gaussfit") && count_newlines(err) == 1);
    snprintf(args, sizeof args, "%s/v1.png", fu_test_tmpdir());
    CHECK(!file_exists(args));  /* nothing half-written */
    /* StyleGAN v1 with a Gaussian fit (mean 0, std 1 here): a grid of its 128x128 images. */
    char fit[512];
    snprintf(fit, sizeof fit, "%s/fit.safetensors", fu_test_tmpdir());
    fu_tensor *mean = fu_tensor_newv(1, (int64_t)512), *std = fu_tensor_newv(1, (int64_t)512);
    REQUIRE(mean && std);
    fu_tensor_fill(mean, 0);
    fu_tensor_fill(std, 1);
    fu_st_item items[2] = {{"mean", mean, FU_F32}, {"std", std, FU_F32}};
    REQUIRE(fu_st_save(fit, items, 2, NULL, 0) == FU_OK);
    fu_tensor_free(mean); fu_tensor_free(std);
    snprintf(args, sizeof args, "generate --generator %s/golden/stylegan1/weights.pt --gaussfit %s --count 2 -o %s/v1.png", shared, fit, fu_test_tmpdir());
    CHECK(run_faceup(args, out, sizeof out, err, sizeof err) == FU_OK);
    snprintf(args, sizeof args, "%s/v1.png", fu_test_tmpdir());
    fu_tensor *v1 = fu_image_load(args);
    CHECK(v1 && v1->shape[2] == 128 && v1->shape[3] == 256);
    fu_tensor_free(v1);
}

/* model run: the descriptor printed for a 150x150 PNG equals the library's on the same pixels
 * (no resize at the network's own size), and gear's three heads come out; bad names fail. */
TEST(cli_model_run) {
    const char *bin = getenv("FACEUP_BIN") ? getenv("FACEUP_BIN") : "build/faceup";
    if (access(bin, X_OK) != 0) SKIP("faceup binary not built");
    char root[1024], manifest[1200], gear[1200];
    const char *env = getenv("FACEUP_MODELS"), *home = getenv("HOME");
    if (env) snprintf(root, sizeof root, "%s", env);
    else snprintf(root, sizeof root, "%s/.cache/faceup/models", home ? home : ".");
    snprintf(manifest, sizeof manifest, "%s/%s", root, FU_DLIB_RESNET_MANIFEST);
    snprintf(gear, sizeof gear, "%s/human-models-3.0.4/models/gear.json", root);
    if (!file_exists(manifest) || !file_exists(gear)) SKIP("no face-api or human models; run tools/fetch-models.sh");
    static char out[262144], err[4096], args[2048], png[600];
    snprintf(png, sizeof png, "%s/chip.png", fu_test_tmpdir());
    fu_rng r;
    fu_rng_seed(&r, 11);
    int64_t shape[4] = {1, 3, FU_DLIB_RESNET_SIZE, FU_DLIB_RESNET_SIZE};
    fu_tensor *img = randn_leaf(&r, 4, shape, 0);
    REQUIRE(img);
    for (int64_t i = 0; i < img->numel; i++) img->data[i] = 0.5f + 0.2f * img->data[i];
    REQUIRE(fu_image_save_png(png, img) == FU_OK);
    fu_tensor_free(img);

    snprintf(args, sizeof args, "model run --json dlib-resnet %s", png);
    REQUIRE(run_faceup(args, out, sizeof out, err, sizeof err) == FU_OK);
    cJSON *doc = cJSON_Parse(out);
    cJSON *o = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(doc, 0), "outputs"), 0);
    cJSON *values = cJSON_GetObjectItem(o, "values");
    REQUIRE(values && cJSON_GetArraySize(values) == FU_DLIB_RESNET_DIM);
    CHECK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(o, "name")), "descriptor"));
    fu_dlib_resnet *net = fu_dlib_resnet_load(manifest);
    fu_tensor *x = fu_image_load(png);
    fu_graph *g = fu_graph_new();
    fu_tensor *d = net && x ? fu_dlib_resnet_forward(net, g, x) : NULL;
    REQUIRE(d);
    double worst = 0;
    for (int i = 0; i < FU_DLIB_RESNET_DIM; i++) worst = fmax(worst, fabs(cJSON_GetArrayItem(values, i)->valuedouble - d->data[i]));
    CHECK_MSG(worst < 1e-6, "CLI descriptor differs from the library's by %g", worst);
    cJSON_Delete(doc);
    fu_graph_free(g);
    fu_tensor_free(x);
    fu_dlib_resnet_free(net);

    snprintf(args, sizeof args, "model run gear %s %s", png, png);
    CHECK(run_faceup(args, out, sizeof out, err, sizeof err) == FU_OK);
    CHECK(strstr(out, "Identity [1,7]") && strstr(out, "Identity_1 [1,2]") && strstr(out, "Identity_2 [1,5]"));
    CHECK(count_newlines(out) == 8);   /* per image: its name and three outputs */
    CHECK(run_faceup("model run no-such-model x.png", out, sizeof out, err, sizeof err) == FU_E_INPUT);
    CHECK(strstr(err, "no-such-model.json") && count_newlines(err) == 1);
    snprintf(args, sizeof args, "model run dlib-resnet %s /nonexistent.png", png);
    CHECK(run_faceup(args, out, sizeof out, err, sizeof err) == FU_E_INPUT);
    CHECK(strstr(err, "/nonexistent.png") && count_newlines(err) == 1);
    CHECK(run_faceup("model run dlib-resnet", out, sizeof out, err, sizeof err) == FU_E_INPUT);
}

TEST(cli_align_faces_and_refuses_non_faces) {
    const char *bin = getenv("FACEUP_BIN") ? getenv("FACEUP_BIN") : "build/faceup";
    const char *shared = fu_test_shared_dir();
    char models[1024], model[1200], detector[1200];
    snprintf(models, sizeof models, "%s", getenv("FACEUP_MODELS") ? getenv("FACEUP_MODELS") : "");
    if (!*models) snprintf(models, sizeof models, "%s/.cache/faceup/models", getenv("HOME") ? getenv("HOME") : ".");
    snprintf(model, sizeof model, "%s/dlib/shape_predictor_68_face_landmarks.dat", models);
    snprintf(detector, sizeof detector, "%s/human-models-3.0.4/models/blazeface.json", models);
    if (access(bin, X_OK) != 0) SKIP("faceup binary not built");
    if (!shared) SKIP("../shared/data absent");
    if (!file_exists(model) || !file_exists(detector)) SKIP("face models absent (tools/fetch-models.sh)");
    static char out[262144], err[4096];
    char args[8192], face[1024], crop[1024], blank[1024], dir[1024], png[1200];
    snprintf(face, sizeof face, "%s/data/lfw/images/Aaron_Eckhart/Aaron_Eckhart_0001.jpg", shared);
    snprintf(crop, sizeof crop, "%s/data/utkface/images/100_1_2_20170105174847679.jpg.chip.jpg", shared);
    snprintf(blank, sizeof blank, "%s/align_blank.png", fu_test_tmpdir());
    snprintf(dir, sizeof dir, "%s/aligned", fu_test_tmpdir());
    fu_tensor *grey = fu_tensor_newv(4, (int64_t)1, (int64_t)3, (int64_t)64, (int64_t)64);
    REQUIRE(grey);
    fu_tensor_fill(grey, 0.5f);
    REQUIRE(fu_image_save_png(blank, grey) == FU_OK);
    fu_tensor_free(grey);

    /* A face, a non-face and an empty file: the face is aligned (one "wrote" line), the others get
     * an error line and a JSON record with status "error" each, exit 2. */
    char empty[1024];
    snprintf(empty, sizeof empty, "%s/align_empty.png", fu_test_tmpdir());
    FILE *f = fopen(empty, "w");
    REQUIRE(f);
    fclose(f);
    snprintf(args, sizeof args, "align %s %s %s -o %s --json --quiet", face, blank, empty, dir);
    CHECK(run_faceup(args, out, sizeof out, err, sizeof err) == FU_E_INPUT);
    CHECK(strstr(err, "align_blank.png: no face found") && strstr(err, "align_empty.png") && strstr(err, "wrote ") && count_newlines(err) == 3);
    CHECK(strstr(out, "\"landmarks\"") && strstr(out, "\"transform\"") && strstr(out, "\"error\""));
    cJSON *report = cJSON_Parse(out);
    CHECK(report && cJSON_GetArraySize(report) == 3 &&
          !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(report, 2), "status")), "error"));
    cJSON_Delete(report);
    snprintf(png, sizeof png, "%s/Aaron_Eckhart_0001.png", dir);
    fu_tensor *img = fu_image_load(png);
    CHECK(img && img->shape[2] == 256 && img->shape[3] == 256);
    fu_tensor_free(img);
    snprintf(png, sizeof png, "%s/align_blank.png", dir);
    CHECK(!file_exists(png));

    /* A tight crop without detection, dlib's chip size. */
    snprintf(png, sizeof png, "%s/chip.png", fu_test_tmpdir());
    snprintf(args, sizeof args, "align %s -o %s --mode dlib --no-detect --json --quiet", crop, png);
    CHECK(run_faceup(args, out, sizeof out, err, sizeof err) == FU_OK);
    CHECK(strstr(out, "\"score\":\tnull") != NULL);
    img = fu_image_load(png);
    CHECK(img && img->shape[2] == 150 && img->shape[3] == 150);
    fu_tensor_free(img);

    /* A thumbnail: the FFHQ crop at 256, PULSE-downscaled by 16. */
    snprintf(args, sizeof args, "align %s -o %s --size 256 --downscale 16 --quiet", face, png);
    CHECK(run_faceup(args, out, sizeof out, err, sizeof err) == FU_OK);
    img = fu_image_load(png);
    CHECK(img && img->shape[2] == 16 && img->shape[3] == 16);
    fu_tensor_free(img);
    snprintf(args, sizeof args, "align %s -o %s --size 100 --downscale 8", face, png);
    CHECK(run_faceup(args, out, sizeof out, err, sizeof err) == FU_E_INPUT && strstr(err, "--downscale"));

    /* Usage errors. */
    snprintf(args, sizeof args, "align %s -o %s --mode square", face, png);
    CHECK(run_faceup(args, out, sizeof out, err, sizeof err) == FU_E_INPUT && strstr(err, "--mode"));
    snprintf(args, sizeof args, "align %s %s -o %s", face, crop, png);
    CHECK(run_faceup(args, out, sizeof out, err, sizeof err) == FU_E_INPUT && strstr(err, "need a folder"));
    snprintf(args, sizeof args, "align %s %s -o %s --quiet", face, face, dir);
    CHECK(run_faceup(args, out, sizeof out, err, sizeof err) == FU_E_INPUT && strstr(err, "same output file") && count_newlines(err) == 1);

    /* -o as upscale reads it: a .jpg is a JPEG file (not a folder), a trailing '/' a new folder. */
    char jpg[1200];
    snprintf(jpg, sizeof jpg, "%s/aligned.jpg", fu_test_tmpdir());
    snprintf(args, sizeof args, "align %s -o %s --quiet", face, jpg);
    CHECK(run_faceup(args, out, sizeof out, err, sizeof err) == FU_OK && strstr(err, jpg));
    unsigned char magic[2] = {0};
    CHECK((f = fopen(jpg, "rb")) && fread(magic, 1, 2, f) == 2 && magic[0] == 0xFF && magic[1] == 0xD8);
    if (f) fclose(f);
    snprintf(args, sizeof args, "align %s -o %s/aligned_new/ --quiet", face, fu_test_tmpdir());
    CHECK(run_faceup(args, out, sizeof out, err, sizeof err) == FU_OK);
    snprintf(png, sizeof png, "%s/aligned_new/Aaron_Eckhart_0001.png", fu_test_tmpdir());
    CHECK(file_exists(png));
    snprintf(args, sizeof args, "align %s -o %s/x.tiff", face, fu_test_tmpdir());
    CHECK(run_faceup(args, out, sizeof out, err, sizeof err) == FU_E_INPUT && strstr(err, "extension") && count_newlines(err) == 1);
    snprintf(args, sizeof args, "align %s -o %s --size 4", face, png);
    CHECK(run_faceup(args, out, sizeof out, err, sizeof err) == FU_E_INPUT && count_newlines(err) == 1);
}

#if defined(__SANITIZE_ADDRESS__)
#define FU_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FU_TEST_ASAN 1
#endif
#endif

#ifndef FU_TEST_ASAN
/* An 8-bit gray PNG of w x h mid-grey pixels, written row by row (the file stays small). */
static int write_gray_png(const char *path, int w, int h) {
    FILE *f = fopen(path, "wb");
    png_structp png = f ? png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL) : NULL;
    png_infop info = png ? png_create_info_struct(png) : NULL;
    unsigned char *row = malloc((size_t)w);
    int ok = info && row && !setjmp(png_jmpbuf(png));
    if (ok) {
        memset(row, 128, (size_t)w);
        png_init_io(png, f);
        png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                     PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
        png_write_info(png, info);
        for (int y = 0; y < h; y++) png_write_row(png, row);
        png_write_end(png, NULL);
    }
    if (png) png_destroy_write_struct(&png, info ? &info : NULL);
    free(row);
    if (f) fclose(f);
    return ok;
}
#endif

/* Out of memory is reported, not ignored: under a 700 MB address-space limit a 64 Mpx image
 * (within the pixel limit, 768 MB as float RGB) fails with exit 3, one line naming the file,
 * and no output file. */
TEST(cli_out_of_memory_is_reported) {
#ifdef FU_TEST_ASAN
    SKIP("address-space limits do not work under AddressSanitizer");
#else
    const char *bin = getenv("FACEUP_BIN") ? getenv("FACEUP_BIN") : "build/faceup";
    if (access(bin, X_OK) != 0) SKIP("faceup binary not built");
    char big[512], out[512], errf[512], cmd[2048];
    snprintf(big, sizeof big, "%s/big_gray.png", fu_test_tmpdir());
    snprintf(out, sizeof out, "%s/big_out.png", fu_test_tmpdir());
    snprintf(errf, sizeof errf, "%s/big.err", fu_test_tmpdir());
    REQUIRE(write_gray_png(big, 8000, 8000));
    snprintf(cmd, sizeof cmd, "ulimit -v 700000; %s align %s -o %s 2>%s", bin, big, out, errf);
    int st = system(cmd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == FU_E_INTERNAL);
    static char err[4096];
    FILE *f = fopen(errf, "r");
    size_t n = f ? fread(err, 1, sizeof err - 1, f) : 0;
    err[n] = 0;
    if (f) fclose(f);
    CHECK_MSG(strstr(err, "big_gray.png: out of memory") && count_newlines(err) == 1, "stderr: %s", err);
    CHECK(!file_exists(out));
#endif
}

/* generate with faceup's VAE: a grid of decoded samples, their PULSE downscales (thumbnails) with
 * --downscale, and a clear error for a factor that is not a power of two. */
TEST(cli_generate_vae_samples_and_thumbnails) {
    const char *bin = getenv("FACEUP_BIN") ? getenv("FACEUP_BIN") : "build/faceup";
    if (access(bin, X_OK) != 0) SKIP("faceup binary not built");
    fu_vae_config cfg = {.size = 16, .channels = 4, .latent = 8};
    fu_vae *m = fu_vae_new(&cfg, 3);
    char model[512], grid[512], thumbs[512], args[2048];
    static char out[4096], err[4096];
    snprintf(model, sizeof model, "%s/gen_vae.safetensors", fu_test_tmpdir());
    snprintf(grid, sizeof grid, "%s/gen_vae.png", fu_test_tmpdir());
    snprintf(thumbs, sizeof thumbs, "%s/gen_vae_thumbs.png", fu_test_tmpdir());
    REQUIRE(m && fu_vae_save(m, model) == FU_OK);
    fu_vae_free(m);
    snprintf(args, sizeof args, "generate --generator %s --seed 5 --count 4 -o %s", model, grid);
    CHECK(run_faceup(args, out, sizeof out, err, sizeof err) == FU_OK);
    snprintf(args, sizeof args, "generate --generator %s --seed 5 --count 4 --downscale 4 -o %s", model, thumbs);
    CHECK(run_faceup(args, out, sizeof out, err, sizeof err) == FU_OK);
    fu_tensor *a = fu_image_load(grid), *b = fu_image_load(thumbs);
    REQUIRE(a && b);
    CHECK(a->shape[2] == 32 && a->shape[3] == 32 && b->shape[2] == 8 && b->shape[3] == 8);
    /* each thumbnail pixel is the mean-ish of its 4x4 block: compare block means loosely */
    double worst = 0;
    for (int64_t c = 0; c < 3; c++)
        for (int64_t y = 0; y < 8; y++)
            for (int64_t x = 0; x < 8; x++) {
                double s = 0;
                for (int dy = 0; dy < 4; dy++)
                    for (int dx = 0; dx < 4; dx++) s += a->data[(c * 32 + 4 * y + dy) * 32 + 4 * x + dx];
                worst = fmax(worst, fabs(s / 16 - b->data[(c * 8 + y) * 8 + x]));
            }
    CHECK_MSG(worst < 0.1, "thumbnail differs from the block means by %g", worst);
    fu_tensor_free(a);
    fu_tensor_free(b);
    snprintf(args, sizeof args, "generate --generator %s --downscale 3 -o %s", model, thumbs);
    CHECK(run_faceup(args, out, sizeof out, err, sizeof err) == FU_E_INPUT && strstr(err, "power of two"));
    snprintf(args, sizeof args, "generate --generator %s --downscale 32 -o %s/none.png", model, fu_test_tmpdir());
    CHECK(run_faceup(args, out, sizeof out, err, sizeof err) == FU_E_INPUT && count_newlines(err) == 1);
    /* -o by outpath.h's rule: an existing .jpg gets JPEG bytes (it used to get PNG bytes); a folder
     * or an unknown extension is refused; --truncation is StyleGAN2's and refused for the VAE. */
    char jpg[600];
    snprintf(jpg, sizeof jpg, "%s/gen_victim.jpg", fu_test_tmpdir());
    FILE *f = fopen(jpg, "w");
    REQUIRE(f);
    fclose(f);
    snprintf(args, sizeof args, "generate --generator %s -o %s", model, jpg);
    CHECK(run_faceup(args, out, sizeof out, err, sizeof err) == FU_OK && strstr(err, jpg));
    unsigned char magic[2] = {0};
    CHECK((f = fopen(jpg, "rb")) && fread(magic, 1, 2, f) == 2 && magic[0] == 0xFF && magic[1] == 0xD8);
    if (f) fclose(f);
    const char *refused[][2] = {{"-o %s/", "one image"}, {"-o %s/g.webp", "extension"}, {"-o %s/g.png --truncation 0.7", "--truncation"},
                                {"-o %s/g.png --temperature 0.5 --truncation 0.7", "--truncation"}};
    for (int i = 0; i < 4; i++) {
        char flags[1024];
        snprintf(flags, sizeof flags, refused[i][0], fu_test_tmpdir());
        snprintf(args, sizeof args, "generate --generator %s %s", model, flags);
        CHECK_MSG(run_faceup(args, out, sizeof out, err, sizeof err) == FU_E_INPUT && strstr(err, refused[i][1]) && count_newlines(err) == 1,
                  "%s: %s", flags, err);
    }
}

/* Count of entries of dir whose names end with suffix (an interrupted write's temporary file,
 * "NAME.png.tmp-PID-N", does not count). */
static int files_ending(const char *dir, const char *suffix) {
    DIR *d = opendir(dir);
    int n = 0;
    size_t k = strlen(suffix);
    for (struct dirent *e; d && (e = readdir(d));) n += strlen(e->d_name) >= k && !strcmp(e->d_name + strlen(e->d_name) - k, suffix);
    if (d) closedir(d);
    return n;
}

/* An interrupted directory run (SIGINT, then SIGKILL) leaves only complete outputs under their
 * final names (writes go to a temporary file renamed when complete), and running the same
 * command again skips the finished thumbnails and completes the rest. (The thumbnails are flat
 * colours, so --no-face-check.) */
TEST(cli_upscale_interrupted_directory_resumes) {
    const char *bin = getenv("FACEUP_BIN") ? getenv("FACEUP_BIN") : "build/faceup";
    if (access(bin, X_OK) != 0) SKIP("faceup binary not built");
    char in[512], outd[512], model[512], path[1024];
    snprintf(in, sizeof in, "%s/int_in", fu_test_tmpdir());
    snprintf(outd, sizeof outd, "%s/int_out", fu_test_tmpdir());
    snprintf(model, sizeof model, "%s/int_vae.safetensors", fu_test_tmpdir());
    mkdir(in, 0755);
    fu_vae_config cfg = {.size = 16, .channels = 4, .latent = 8};
    fu_vae *m = fu_vae_new(&cfg, 4);
    REQUIRE(m && fu_vae_save(m, model) == FU_OK);
    fu_vae_free(m);
    enum { N_THUMBS = 4 };
    for (int i = 0; i < N_THUMBS; i++) {
        fu_tensor *t = fu_tensor_newv(4, (int64_t)1, (int64_t)3, (int64_t)8, (int64_t)8);   /* the smallest accepted */
        REQUIRE(t);
        fu_tensor_fill(t, 0.2f + 0.15f * (float)i);
        snprintf(path, sizeof path, "%s/t%d.png", in, i);
        REQUIRE(fu_image_save_png(path, t) == FU_OK);
        fu_tensor_free(t);
    }
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "( %s upscale %s -o %s --generator %s --steps 3000 --quiet --threads 1 --no-face-check >/dev/null 2>&1 & pid=$!; "
             "for i in $(seq 1 600); do ls %s 2>/dev/null | grep -qE '^t0(_no_solution)?[.]png$' && break; sleep 0.05; done; "
             "kill -INT $pid; sleep 0.2; kill -KILL $pid 2>/dev/null; wait $pid ) 2>/dev/null", bin, in, outd, model, outd);
    (void)system(cmd);
    int done_first = files_ending(outd, ".png");
    CHECK_MSG(done_first >= 1 && done_first < N_THUMBS, "%d outputs after the interrupt", done_first);
    for (int i = 0; i < N_THUMBS; i++) {                /* every final name holds a whole image */
        snprintf(path, sizeof path, "%s/t%d.png", outd, i);
        if (!file_exists(path)) snprintf(path, sizeof path, "%s/t%d_no_solution.png", outd, i);
        if (!file_exists(path)) continue;
        fu_tensor *img = fu_image_load(path);
        CHECK_MSG(img && img->shape[2] == 16, "%s is not a whole 16x16 image", path);
        fu_tensor_free(img);
    }
    static char out[65536], err[65536];
    int solved_first = done_first - files_ending(outd, "_no_solution.png");   /* a "no solution" is tried again */
    snprintf(cmd, sizeof cmd, "upscale %s -o %s --generator %s --steps 20 --threads 1 --no-face-check", in, outd, model);
    int rc = run_faceup(cmd, out, sizeof out, err, sizeof err);
    CHECK(rc == FU_OK || rc == FU_E_NO_SOLUTION);
    CHECK(!solved_first || strstr(err, "done already") != NULL);
    int final = 0;
    for (int i = 0; i < N_THUMBS; i++) {
        snprintf(path, sizeof path, "%s/t%d.png", outd, i);
        char alt[1100];
        snprintf(alt, sizeof alt, "%s/t%d_no_solution.png", outd, i);
        final += file_exists(path) || file_exists(alt);
    }
    CHECK(final == N_THUMBS);
}

/* Lines of text that contain needle. */
static int count_lines_with(const char *text, const char *needle) {
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); n++) p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p);
    return n;
}

/* faceup under `ulimit -v KB`: the exit status, stderr into err. */
static int run_limited(int kb, const char *args, char *err, size_t n_err) {
    const char *bin = getenv("FACEUP_BIN") ? getenv("FACEUP_BIN") : "build/faceup";
    char cmd[8192], fe[512];
    snprintf(fe, sizeof fe, "%s/limited.err", fu_test_tmpdir());
    snprintf(cmd, sizeof cmd, "ulimit -v %d; FACEUP_THREADS=1 exec %s %s >/dev/null 2>%s </dev/null", kb, bin, args, fe);
    int st = system(cmd);
    FILE *f = fopen(fe, "r");
    size_t k = f ? fread(err, 1, n_err - 1, f) : 0;
    err[k] = 0;
    if (f) fclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Out of memory is exit 3 with one line, never a signal and never "bad input" (2), wherever it
 * strikes: oneDNN's code generator used to die with SIGSEGV under upscale (104 MB and 140 MB
 * crashed), and analyze / compare said 2 when a network ran out (220-250 MB). */
TEST(cli_out_of_memory_exits_3_never_a_signal) {
#ifdef FU_TEST_ASAN
    SKIP("address-space limits do not work under AddressSanitizer");
#endif
    const char *bin = getenv("FACEUP_BIN") ? getenv("FACEUP_BIN") : "build/faceup";
    const char *shared = fu_test_shared_dir();
    char m[1024], face[1024], args[4096];
    static char err[8192];
    if (access(bin, X_OK) != 0) SKIP("faceup binary not built");
    if (!shared || !file_exists(fu_model_path(FU_BLAZEFACE_MODEL, m, sizeof m))) SKIP("../shared or the model cache absent");
    snprintf(face, sizeof face, "%s/data/lfw/images/Aaron_Eckhart/Aaron_Eckhart_0001.jpg", shared);
    struct { const char *fmt; int kb[4]; } runs[] = {
        {"upscale examples/thumb16.png -o %s/oom.png --steps 30 --race keep --quiet --overwrite", {104000, 124000, 140000, 150000}},
        {"analyze %s --quiet", {200000, 220000, 230000, 250000}},
        {"compare %s %s", {230000, 240000, 250000, 260000}},
    };
    for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
        int out_of_memory = 0;
        snprintf(args, sizeof args, runs[r].fmt, r == 0 ? fu_test_tmpdir() : face, face);
        for (int i = 0; i < 4; i++) {
            int rc = run_limited(runs[r].kb[i], args, err, sizeof err);
            CHECK_MSG(rc == FU_OK || rc == FU_E_NO_SOLUTION || rc == FU_E_INTERNAL, "%s at %d KB: exit %d (%s)", args, runs[r].kb[i], rc, err);
            int results = count_lines_with(err, "wrote ") + count_lines_with(err, "no seed met eps");   /* lines before it ran out */
            CHECK_MSG(rc != FU_E_INTERNAL || count_newlines(err) - results == 1, "%s at %d KB: stderr '%s'", args, runs[r].kb[i], err);
            out_of_memory += rc == FU_E_INTERNAL;
        }
        CHECK_MSG(out_of_memory > 0, "%s: never ran out of memory; lower the limits", args);
    }
}

/* Help and flag conventions: every command's --help goes to stdout with exit 0; faceup -h,
 * faceup help CMD [SUB], faceup train/eval --help (train's list names extractor); --flag=value;
 * an unknown command, subcommand or flag names the nearest one. */
TEST(cli_help_and_flag_conventions) {
    const char *bin = getenv("FACEUP_BIN") ? getenv("FACEUP_BIN") : "build/faceup";
    if (access(bin, X_OK) != 0) SKIP("faceup binary not built");
    static char out[65536], err[8192];
    const char *cmds[] = {"selfcheck", "model info", "model run", "generate", "upscale", "align", "train faces", "train generator",
                          "train prior", "train sharp", "train heads", "train extractor", "train finetune-data", "train finetune", "train race-judge",
                          "train thumb-race", "train race-offsets", "eval generator", "eval lfw", "eval upscale", "eval extractor",
                          "embed", "compare", "analyze"};
    char args[256];
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        snprintf(args, sizeof args, "%s --help", cmds[i]);
        int rc = run_faceup(args, out, sizeof out, err, sizeof err);
        CHECK_MSG(rc == FU_OK && strstr(out, "usage: faceup") && !*err, "%s: exit %d, stderr '%s'", args, rc, err);
    }
    CHECK(run_faceup("-h", out, sizeof out, err, sizeof err) == FU_OK && strstr(out, "upscale") && !*err);
    CHECK(run_faceup("help upscale", out, sizeof out, err, sizeof err) == FU_OK && strstr(out, "usage: faceup upscale"));
    CHECK(run_faceup("help train extractor", out, sizeof out, err, sizeof err) == FU_OK && strstr(out, "usage: faceup train extractor"));
    CHECK(run_faceup("train --help", out, sizeof out, err, sizeof err) == FU_OK && strstr(out, "extractor") && strstr(out, "race-offsets"));
    CHECK(run_faceup("eval --help", out, sizeof out, err, sizeof err) == FU_OK && strstr(out, "upscale") && strstr(out, "lfw"));
    CHECK(run_faceup("upscal x.png", out, sizeof out, err, sizeof err) == FU_E_INPUT && strstr(err, "did you mean 'upscale'") && count_newlines(err) == 1);
    CHECK(run_faceup("train extractr", out, sizeof out, err, sizeof err) == FU_E_INPUT && strstr(err, "did you mean 'extractor'"));
    CHECK(run_faceup("eval lfv", out, sizeof out, err, sizeof err) == FU_E_INPUT && strstr(err, "did you mean 'lfw'"));
    CHECK(run_faceup("selfcheck --stesp 3", out, sizeof out, err, sizeof err) == FU_E_INPUT && strstr(err, "did you mean --steps") && count_newlines(err) == 1);
    CHECK(run_faceup("selfcheck --frobnicate", out, sizeof out, err, sizeof err) == FU_E_INPUT && !strstr(err, "did you mean"));
    CHECK(run_faceup("selfcheck --steps=0", out, sizeof out, err, sizeof err) == FU_E_INPUT && strstr(err, "--steps must be in"));
    CHECK(run_faceup("selfcheck --json=1", out, sizeof out, err, sizeof err) == FU_E_INPUT && strstr(err, "takes no value"));
    CHECK(run_faceup("selfcheck --steps=150 --quiet --json", out, sizeof out, err, sizeof err) == FU_OK && strstr(out, "\"passed\": true"));
}
