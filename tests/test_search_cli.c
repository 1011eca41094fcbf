/* faceup upscale end to end on the golden StyleGAN2 (64x64): outputs, skipping, no-solution
 * naming and exit status, JSON, sheet; and bad input giving exit 2 with no output file. The
 * random-weight generator's thumbnails are not faces, so most runs pass --no-face-check. */
#include "test.h"
#include "util.h"
#include "core/ops.h"
#include "gen/generator.h"
#include "eval/text.h"
#include "search/search.h"
#include "data/faces.h"
#include <math.h>
#include "face/models.h"
#include "io/image.h"
#include <cjson/cJSON.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char out[1 << 16], err[1 << 14], args[8192];

/* A 16x16 thumbnail: the generator's image for a latent drawn from seed, downscaled 4x. */
static int write_thumbnail(const fu_generator *gen, uint64_t seed, const char *path) {
    fu_rng r;
    fu_rng_seed(&r, seed);
    fu_graph *g = fu_graph_new();
    fu_tensor *z = randn_leaf(&r, 3, (int64_t[]){1, gen->n_latent, gen->latent_dim}, 0), *noise[FU_GEN_MAX_NOISE] = {0};
    for (int i = 0; i < gen->n_noise; i++) {
        int64_t shape[4];
        if (gen->noise_shape(gen, i, shape) == FU_OK) noise[i] = fu_tensor_new(4, shape);
    }
    fu_tensor *low = fu_bicubic_downsample(g, gen->build(gen, g, z, noise, NULL), 4);
    int rc = low ? fu_image_save_png(path, low) : FU_E_INTERNAL;
    for (int i = 0; i < gen->n_noise; i++) fu_tensor_free(noise[i]);
    fu_tensor_free(z);
    fu_graph_free(g);
    return rc;
}

static const char *bin_or_skip(void) {
    const char *bin = getenv("FACEUP_BIN") ? getenv("FACEUP_BIN") : "build/faceup";
    return access(bin, X_OK) == 0 ? bin : NULL;
}

static int image_side(const char *path, int64_t *h, int64_t *w) {
    fu_tensor *t = fu_image_load(path);
    if (!t) return 0;
    *h = t->shape[2];
    *w = t->shape[3];
    fu_tensor_free(t);
    return 1;
}

TEST(cli_upscale_directory_outputs_skip_and_no_solution) {
    const char *shared = fu_test_shared_dir();
    if (!bin_or_skip()) SKIP("faceup binary not built");
    if (!shared) SKIP("../shared absent");
    char gen_path[512], dir[512], odir[512], path[1024], sheet[512];
    snprintf(gen_path, sizeof gen_path, "%s/golden/stylegan2/weights.pt", shared);
    snprintf(dir, sizeof dir, "%s/up_in", fu_test_tmpdir());
    snprintf(odir, sizeof odir, "%s/up_out", fu_test_tmpdir());
    snprintf(sheet, sizeof sheet, "%s/up_sheet.png", fu_test_tmpdir());
    mkdir(dir, 0777);
    fu_generator *gen = NULL;
    REQUIRE(fu_generator_open(gen_path, NULL, &gen) == FU_OK);
    snprintf(path, sizeof path, "%s/a.png", dir);
    REQUIRE(write_thumbnail(gen, 1, path) == FU_OK);
    snprintf(path, sizeof path, "%s/b.png", dir);
    REQUIRE(write_thumbnail(gen, 2, path) == FU_OK);
    fu_generator_free(gen);

    /* eps 1: every seed is accepted, so outputs carry plain names. */
    snprintf(args, sizeof args, "upscale %s -o %s --generator %s --steps 4 --seeds 2 --eps 1 --sheet %s --json --threads 1 --no-face-check",
             dir, odir, gen_path, sheet);
    REQUIRE(run_faceup(args, out, sizeof out, err, sizeof err) == FU_OK);
    const char *names[] = {"a.png", "a_seed0.png", "a_seed1.png", "b.png", "b_seed0.png", "b_seed1.png"};
    for (int i = 0; i < 6; i++) {
        snprintf(path, sizeof path, "%s/%s", odir, names[i]);
        int64_t h = 0, w = 0;
        CHECK_MSG(image_side(path, &h, &w) && h == 64 && w == 64, "%s missing or not 64x64", path);
    }
    int64_t sh = 0, sw = 0;
    CHECK(image_side(sheet, &sh, &sw) && sh == 2 * 64 && sw == 4 * 64);   /* 2 rows: nearest, bicubic, 2 seeds */
    cJSON *j = cJSON_Parse(out);
    REQUIRE(j);
    cJSON *results = cJSON_GetObjectItem(j, "results");
    CHECK(cJSON_GetArraySize(results) == 2);
    CHECK(!strcmp(cJSON_GetObjectItem(j, "status")->valuestring, "ok"));
    cJSON *seeds = cJSON_GetObjectItem(cJSON_GetArrayItem(results, 0), "seeds");
    CHECK(cJSON_GetArraySize(seeds) == 2);
    cJSON *wave = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(seeds, 1), "waves"), 0);
    REQUIRE(wave);
    CHECK(cJSON_GetObjectItem(wave, "steps")->valueint == 4 && cJSON_IsTrue(cJSON_GetObjectItem(wave, "met_eps")));
    CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(wave, "terms"), "GEOCROSS") != NULL);
    cJSON_Delete(j);

    /* Again: both thumbnails are done, so both are skipped. */
    REQUIRE(run_faceup(args, out, sizeof out, err, sizeof err) == FU_OK);
    CHECK(strstr(out, "\"skipped\"") && strstr(err, "skipped"));

    /* eps 1e-9 cannot be met in 4 steps: exit 1, the best attempt named so, JSON no_solution. */
    snprintf(path, sizeof path, "%s/a.png", dir);
    snprintf(args, sizeof args, "upscale %s -o %s/one.png --generator %s --steps 4 --eps 1e-9 --json --quiet --threads 1 --save-intermediate --no-face-check",
             path, fu_test_tmpdir(), gen_path);
    CHECK(run_faceup(args, out, sizeof out, err, sizeof err) == FU_E_NO_SOLUTION);
    CHECK(strstr(out, "\"no_solution\"") != NULL);
    snprintf(path, sizeof path, "%s/one_no_solution.png", fu_test_tmpdir());
    CHECK(file_exists(path));
    snprintf(path, sizeof path, "%s/one.png", fu_test_tmpdir());
    CHECK(!file_exists(path));
    CHECK(count_prefixed(fu_test_tmpdir(), "one_seed0_w1_step") == 4);   /* --save-intermediate: one per step */
}

TEST(cli_upscale_bad_input_exit_2_without_output) {
    const char *shared = fu_test_shared_dir();
    const char *bin = bin_or_skip();
    if (!bin) SKIP("faceup binary not built");
    if (!shared) SKIP("../shared absent");
    char gen_path[512], thumb[512], wrong[512], junk[512], o[512];
    snprintf(gen_path, sizeof gen_path, "%s/golden/stylegan2/weights.pt", shared);
    snprintf(thumb, sizeof thumb, "%s/bad_thumb.png", fu_test_tmpdir());
    snprintf(wrong, sizeof wrong, "%s/bad_20.png", fu_test_tmpdir());
    snprintf(junk, sizeof junk, "%s/bad_junk.png", fu_test_tmpdir());
    snprintf(o, sizeof o, "%s/bad_out.png", fu_test_tmpdir());
    fu_tensor *t16 = fu_tensor_newv(4, (int64_t)1, (int64_t)3, (int64_t)16, (int64_t)16);
    fu_tensor *t20 = fu_tensor_newv(4, (int64_t)1, (int64_t)3, (int64_t)20, (int64_t)20);
    REQUIRE(t16 && t20 && fu_image_save_png(thumb, t16) == FU_OK && fu_image_save_png(wrong, t20) == FU_OK);
    fu_tensor_free(t16);
    fu_tensor_free(t20);
    FILE *f = fopen(junk, "w");
    REQUIRE(f);
    fputs("not an image", f);
    fclose(f);
    struct { const char *flags, *want; } cases[] = {
        {"%s --generator %s", "bad_20.png: thumbnail is 20x20, but the 64x64 generator needs"},
        {"%s --generator %s", "bad_junk.png"},
        {"/nonexistent/t.png --generator %s", "/nonexistent/t.png"},
        {"%s --generator /nonexistent/g.pt", "/nonexistent/g.pt"},
        {"%s --generator %s --loss 100*L2+0.05*GEOCROS", "at character 13: unknown term 'GEOCROS'"},
        {"%s --generator %s --loss2 1*L2+1*IDENTITY_SCORE", "pass --identity PHOTO"},
        {"%s --generator %s --heads /nonexistent/h.safetensors --attr Smiling=1", "/nonexistent/h.safetensors"},
        {"%s --generator %s --attr Smiling=2", "--attr expects NAME=0 or NAME=1"},
        {"%s --generator %s --race 2", "--race expects keep, white, black, asian, indian or other, got '2'"},
        {"%s --generator %s --attr Smilin=1", "unknown CelebA attribute 'Smilin'"},
        {"%s --generator %s --noise loud", "unknown noise mode 'loud'"},
        {"%s --generator %s --schedule cosine", "unknown learning-rate schedule 'cosine'"},
        {"%s --generator %s --steps 0", "--steps"},
        {"%s --generator %s --gaussfit /nonexistent/fit.pt", "/nonexistent/fit.pt"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char flags[2048];
        const char *first = i == 0 ? wrong : i == 1 ? junk : thumb;
        if (i == 2 || i == 3) snprintf(flags, sizeof flags, cases[i].flags, i == 2 ? gen_path : first);
        else snprintf(flags, sizeof flags, cases[i].flags, first, gen_path, thumb);
        snprintf(args, sizeof args, "upscale %s -o %s --quiet --no-face-check", flags, o);
        int rc = run_faceup(args, out, sizeof out, err, sizeof err);
        CHECK_MSG(rc == FU_E_INPUT, "case %zu: exit %d (%s)", i, rc, err);
        CHECK_MSG(strstr(err, cases[i].want) && count_newlines(err) == 1, "case %zu: stderr '%s' lacks '%s'", i, err, cases[i].want);
        CHECK_MSG(!file_exists(o) && count_prefixed(fu_test_tmpdir(), "bad_out") == 0, "case %zu left output", i);
    }
    /* Without --generator the shipped file is looked up beside the binary's project folder,
     * then in the working folder: a copy of the binary outside the project finds neither. */
    char abs_bin[PATH_MAX];
    REQUIRE(realpath(bin, abs_bin));
    snprintf(args, sizeof args, "mkdir -p %s/lone/bin && cp %s %s/lone/bin/faceup && cd %s && %s/lone/bin/faceup upscale %s -o %s",
             fu_test_tmpdir(), abs_bin, fu_test_tmpdir(), fu_test_tmpdir(), fu_test_tmpdir(), thumb, o);
    char cmd[sizeof args + 1024];
    snprintf(cmd, sizeof cmd, "%s >/dev/null 2>%s/default.err", args, fu_test_tmpdir());
    int st = system(cmd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == FU_E_INPUT);
    snprintf(cmd, sizeof cmd, "%s/default.err", fu_test_tmpdir());
    f = fopen(cmd, "r");
    REQUIRE(f);
    size_t k = fread(err, 1, sizeof err - 1, f);
    err[k] = 0;
    fclose(f);
    CHECK(strstr(err, "models/faceup-vae64.safetensors not found") && strstr(err, "--generator FILE"));
    CHECK(!file_exists(o));
}

TEST(sheet_text_draws_glyphs_on_a_box) {
    fu_tensor *img = fu_tensor_newv(4, (int64_t)1, (int64_t)3, (int64_t)9, (int64_t)9);
    REQUIRE(img);
    fu_draw_text(img, 2, 2, 1, "0");
    int lit = 0, boxed = 0;
    for (int64_t i = 0; i < 81; i++) {
        lit += img->data[i] == 1.0f;
        boxed += img->data[i] == 0.1f;
    }
    CHECK(lit == 12);                   /* '0' is 3 + 2 + 2 + 2 + 3 pixels */
    CHECK(boxed == 5 * 7 - 12);         /* the box is one pixel wider on each side */
    CHECK(img->data[3 * 9 + 3] == 0.1f && img->data[2 * 9 + 2] == 1.0f && img->data[0] == 0);
    CHECK(fu_text_width("seed 3", 2) == 46);
    fu_draw_text(img, 7, 7, 3, "W");    /* clipped at the border: no write outside */
    CHECK(img->data[8 * 9 + 8] == 1.0f && img->data[6 * 9 + 6] == 0.1f);   /* W's top-left pixel, scaled; its box */
    fu_tensor_free(img);
}

/* --json names the generator file that was opened: without --generator, the shipped one found
 * beside the binary (not the bare default name, which is wrong outside the project folder). */
TEST(cli_upscale_json_names_the_resolved_default_generator) {
    const char *bin = bin_or_skip();
    if (!bin) SKIP("faceup binary not built");
    char abs_bin[PATH_MAX], thumb[512], o[512], cmd[PATH_MAX + 2048];
    REQUIRE(realpath(bin, abs_bin));
    snprintf(thumb, sizeof thumb, "%s/json_gen_thumb.png", fu_test_tmpdir());
    snprintf(o, sizeof o, "%s/json_gen_out.png", fu_test_tmpdir());
    fu_tensor *t = fu_tensor_newv(4, (int64_t)1, (int64_t)3, (int64_t)16, (int64_t)16);
    REQUIRE(t);
    for (int64_t i = 0; i < t->numel; i++) t->data[i] = 0.3f + 0.4f * (float)(i % 16) / 15.0f;
    REQUIRE(fu_image_save_png(thumb, t) == FU_OK);
    fu_tensor_free(t);
    snprintf(cmd, sizeof cmd, "cd %s && %s upscale %s -o %s --steps 1 --eps 1 --json --quiet --threads 1 --overwrite --no-face-check > json_gen.out",
             fu_test_tmpdir(), abs_bin, thumb, o);
    int st = system(cmd);
    REQUIRE(WIFEXITED(st) && WEXITSTATUS(st) == FU_OK);
    snprintf(cmd, sizeof cmd, "%s/json_gen.out", fu_test_tmpdir());
    FILE *f = fopen(cmd, "r");
    REQUIRE(f);
    size_t k = fread(out, 1, sizeof out - 1, f);
    out[k] = 0;
    fclose(f);
    cJSON *j = cJSON_Parse(out);
    REQUIRE(j);
    const char *gen = cJSON_GetStringValue(cJSON_GetObjectItem(j, "generator"));
    CHECK_MSG(gen && strstr(gen, "models/faceup-vae64.safetensors") && file_exists(gen), "generator '%s' is not the file opened", gen ? gen : "");
    cJSON_Delete(j);
}

/* Under mpirun the ranks of directory-mode upscale share the thumbnails (rank r takes r, r + 2,
 * ...) and rank 0 prints one JSON with all of them, in order. Needs the MPI build. */
TEST(cli_upscale_mpi_ranks_share_the_thumbnails) {
    const char *bin = getenv("FACEUP_MPI_BIN") ? getenv("FACEUP_MPI_BIN") : "build-mpi/faceup";
    if (system("command -v mpirun >/dev/null 2>&1") != 0) SKIP("mpirun not installed");
    if (access(bin, X_OK) != 0) SKIP("no MPI build of faceup (make MPI=1, or set FACEUP_MPI_BIN)");
    char dir[512], odir[512], path[1024], cmd[4096];
    snprintf(dir, sizeof dir, "%s/mpi_in", fu_test_tmpdir());
    snprintf(odir, sizeof odir, "%s/mpi_out", fu_test_tmpdir());
    mkdir(dir, 0777);
    for (int k = 0; k < 4; k++) {
        fu_tensor *t = fu_tensor_newv(4, (int64_t)1, (int64_t)3, (int64_t)16, (int64_t)16);
        REQUIRE(t);
        for (int64_t i = 0; i < t->numel; i++) t->data[i] = (float)((i * 7 + k * 50) % 256) / 255.0f;
        snprintf(path, sizeof path, "%s/t%d.png", dir, k);
        REQUIRE(fu_image_save_png(path, t) == FU_OK);
        fu_tensor_free(t);
    }
    snprintf(cmd, sizeof cmd, "mpirun -np 2 --oversubscribe --allow-run-as-root -x FACEUP_THREADS=1 %s upscale %s -o %s --steps 2 --eps 1 "
             "--json --quiet --overwrite --no-face-check > %s/mpi.json 2>/dev/null", bin, dir, odir, fu_test_tmpdir());
    int st = system(cmd);
    REQUIRE(WIFEXITED(st) && WEXITSTATUS(st) == FU_OK);
    snprintf(path, sizeof path, "%s/mpi.json", fu_test_tmpdir());
    FILE *f = fopen(path, "r");
    REQUIRE(f);
    size_t n = fread(out, 1, sizeof out - 1, f);
    out[n] = 0;
    fclose(f);
    cJSON *j = cJSON_Parse(out);   /* one document: only rank 0 prints */
    REQUIRE(j);
    cJSON *results = cJSON_GetObjectItem(j, "results");
    CHECK(cJSON_GetArraySize(results) == 4);
    for (int k = 0; k < cJSON_GetArraySize(results); k++) {
        cJSON *r = cJSON_GetArrayItem(results, k);
        snprintf(path, sizeof path, "%s/t%d.png", dir, k);
        CHECK_MSG(!strcmp(cJSON_GetObjectItem(r, "input")->valuestring, path), "result %d is %s", k, cJSON_GetObjectItem(r, "input")->valuestring);
        CHECK(cJSON_GetObjectItem(r, "rank") && cJSON_GetObjectItem(r, "rank")->valueint == k % 2);
        CHECK(!strcmp(cJSON_GetObjectItem(r, "status")->valuestring, "ok"));
        snprintf(path, sizeof path, "%s/t%d.png", odir, k);
        CHECK(file_exists(path));
    }
    cJSON_Delete(j);
}

/* A flat thumbnail is refused with exit 2 and nothing written; --no-face-check upscales it
 * anyway; the bundled face thumbnail passes the check. */
TEST(cli_upscale_refuses_thumbnails_that_are_not_faces) {
    const char *shared = fu_test_shared_dir();
    char gen_path[512], flat[512], o[512];
    if (!bin_or_skip()) SKIP("faceup binary not built");
    if (!shared) SKIP("../shared absent");
    snprintf(gen_path, sizeof gen_path, "%s/golden/stylegan2/weights.pt", shared);
    snprintf(flat, sizeof flat, "%s/flat16.png", fu_test_tmpdir());
    snprintf(o, sizeof o, "%s/flat_out.png", fu_test_tmpdir());
    fu_tensor *t = fu_tensor_newv(4, (int64_t)1, (int64_t)3, (int64_t)16, (int64_t)16);
    REQUIRE(t);
    fu_tensor_fill(t, 0.5f);
    REQUIRE(fu_image_save_png(flat, t) == FU_OK);
    fu_tensor_free(t);

    snprintf(args, sizeof args, "upscale %s -o %s --generator %s --steps 1 --eps 1 --quiet --threads 1", flat, o, gen_path);
    CHECK(run_faceup(args, out, sizeof out, err, sizeof err) == FU_E_INPUT);
    CHECK_MSG(strstr(err, "flat16.png: the thumbnail is flat (one colour), not a face") && count_newlines(err) == 1, "stderr: %s", err);
    CHECK(!file_exists(o) && count_prefixed(fu_test_tmpdir(), "flat_out") == 0);

    snprintf(args, sizeof args, "upscale %s -o %s --generator %s --steps 1 --eps 1 --quiet --threads 1 --no-face-check", flat, o, gen_path);
    CHECK(run_faceup(args, out, sizeof out, err, sizeof err) == FU_OK && file_exists(o));

    char face[1024];
    fu_shipped_path("examples/thumb16.png", face, sizeof face);
    snprintf(args, sizeof args, "upscale %s -o %s/face_out.png --generator %s --steps 1 --eps 1 --quiet --threads 1",
             face, fu_test_tmpdir(), gen_path);
    CHECK_MSG(run_faceup(args, out, sizeof out, err, sizeof err) == FU_OK, "the bundled face was refused: %s", err);
}

/* PULSE's bicubic thumbnails (16x16 and 8x8) of held-out faces framed like the generator's
 * training faces: every step-th image of the packed set's val split, n at most of each size. */
static int heldout_thumbnails(const char *shared, int n, int step, fu_tensor **t16, fu_tensor **t8) {
    char data[1024];
    snprintf(data, sizeof data, "%s/data", shared);
    fu_face_label *labels = NULL;
    int64_t count = 0;
    fu_faces_framer *framer = fu_faces_framer_open(FU_FACES_FRAME_FFHQ);
    if (!framer || fu_faces_list(data, &labels, &count) != FU_OK) { fu_faces_framer_free(framer); return 0; }
    int k = 0, seen = 0;
    fu_tensor *face = fu_tensor_newv(4, (int64_t)1, (int64_t)3, (int64_t)64, (int64_t)64);
    for (int64_t i = 0; i < count && k < n && face; i++) {
        if (labels[i].split != FU_SPLIT_VAL || seen++ % step) continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", data, labels[i].path);
        fu_tensor *img = fu_image_load(path);
        if (img && fu_faces_frame(framer, img, labels[i].source, face, NULL) == FU_OK) {
            fu_graph *g = fu_graph_new();
            t16[k] = fu_tensor_clone(fu_bicubic_downsample(g, face, 4));
            t8[k] = fu_tensor_clone(fu_bicubic_downsample(g, face, 8));
            k += t16[k] && t8[k];
            fu_graph_free(g);
        }
        fu_tensor_free(img);
    }
    fu_tensor_free(face);
    free(labels);
    fu_faces_framer_free(framer);
    return k;
}

/* The content check passes held-out face thumbnails at 16x16 and 8x8 and refuses flat and noise
 * images; a smooth gradient, which no detector here can tell from a face at this size, passes.
 * FACEUP_FACE_EVAL=1 measures 200 faces and prints the largest roughness. */
TEST(search_check_content_passes_faces_refuses_flat_and_noise) {
    fu_rng r;
    fu_rng_seed(&r, 3);
    fu_tensor *t = fu_tensor_newv(4, (int64_t)1, (int64_t)3, (int64_t)16, (int64_t)16);
    REQUIRE(t);
    fu_tensor_fill(t, 0.7f);
    CHECK(fu_search_check_content(t, "flat") == FU_E_INPUT && strstr(fu_last_error(), "flat: the thumbnail is flat"));
    for (int k = 0; k < 20; k++) {
        for (int64_t i = 0; i < t->numel; i++) t->data[i] = k % 2 ? fu_rng_uniform(&r) : 0.4f + 0.2f * fu_rng_uniform(&r);
        CHECK_MSG(fu_search_check_content(t, "noise") == FU_E_INPUT && strstr(fu_last_error(), "looks like noise"), "noise %d passed", k);
    }
    for (int64_t i = 0; i < t->numel; i++) t->data[i] = (float)(i % 16) / 15.0f;
    CHECK(fu_search_check_content(t, "gradient") == FU_OK);
    fu_tensor_free(t);

    const char *shared = fu_test_shared_dir();
    if (!shared) SKIP("../shared absent (the real-face half)");
    enum { MAX = 200 };
    int want = getenv("FACEUP_FACE_EVAL") ? MAX : 12;
    fu_tensor *t16[MAX] = {0}, *t8[MAX] = {0};
    int n = heldout_thumbnails(shared, want, want > 12 ? 4 : 7, t16, t8);
    if (n == 0) SKIP("the face models are absent (tools/fetch-models.sh)");
    CHECK(n == want);
    float worst16 = 0, worst8 = 0;
    for (int i = 0; i < n; i++) {
        CHECK(fu_search_check_content(t16[i], "face16") == FU_OK && fu_search_check_content(t8[i], "face8") == FU_OK);
        worst16 = fmaxf(worst16, fu_thumbnail_roughness(t16[i]));
        worst8 = fmaxf(worst8, fu_thumbnail_roughness(t8[i]));
        fu_tensor_free(t16[i]);
        fu_tensor_free(t8[i]);
    }
    printf("  %d held-out faces: largest roughness %.3f at 16x16, %.3f at 8x8 (limit %.2f)\n", n, (double)worst16, (double)worst8,
           (double)FU_THUMB_MAX_ROUGHNESS);
}
