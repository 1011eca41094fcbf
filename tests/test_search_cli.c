/* faceup upscale end to end on the golden StyleGAN2 (64x64): outputs, skipping, no-solution
 * naming and exit status, JSON, sheet; and bad input giving exit 2 with no output file. The
 * random-weight generator's thumbnails are not faces, so most runs pass --no-face-check. */
#include "test.h"
#include "util.h"
#include "core/ops.h"
#include "gen/generator.h"
#include "gen/vae.h"
#include "eval/text.h"
#include "search/search.h"
#include "data/faces.h"
#include <math.h>
#include "face/heads.h"
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
        {"%s --generator %s --attr Smiling=1,Smiling=0", "Smiling is given twice"},                /* conflicting */
        {"%s --generator %s --extractor /nonexistent/e.safetensors", "no face term uses one"},    /* would be ignored */
        {"%s --generator %s --face-jitter 0.1", "no face term uses one"},
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

/* A tiny VAE (16x16 images) and flat 8x8 thumbnails: upscale's file handling without ../shared.
 * Makes the folder TMP/name (into dir) holding the model (path into model). */
static void tiny_setup(const char *name, char *dir, size_t dir_cap, char *model, size_t cap) {
    snprintf(dir, dir_cap, "%s/%s", fu_test_tmpdir(), name);
    mkdir(dir, 0777);
    snprintf(model, cap, "%s/tiny_vae.safetensors", dir);
    fu_vae_config cfg = {.size = 16, .channels = 4, .latent = 8};
    fu_vae *m = fu_vae_new(&cfg, 4);
    if (m) fu_vae_save(m, model);
    fu_vae_free(m);
}

static int write_flat(const char *path, int side, float v) {
    fu_tensor *t = fu_tensor_newv(4, (int64_t)1, (int64_t)3, (int64_t)side, (int64_t)side);
    if (!t) return FU_E_INTERNAL;
    fu_tensor_fill(t, v);
    int rc = fu_image_save_png(path, t);
    fu_tensor_free(t);
    return rc;
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (f) fputs(text, f), fclose(f);
}

static int lines_containing(const char *text, const char *needle) {
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

/* A folder with good thumbnails and bad files: every good one is upscaled, each bad one is one
 * stderr line and a JSON record with "status": "error", and the exit status is the worst (2). */
TEST(cli_upscale_folder_run_reports_bad_files_and_goes_on) {
    if (!bin_or_skip()) SKIP("faceup binary not built");
    char dir[512], in[600], od[600], model[700], path[1024];
    tiny_setup("fold", dir, sizeof dir, model, sizeof model);
    snprintf(in, sizeof in, "%s/in", dir);
    snprintf(od, sizeof od, "%s/out", dir);
    mkdir(in, 0777);
    const char *good[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s.png", in, good[i]);
        REQUIRE(write_flat(path, 8, 0.3f + 0.1f * (float)i) == FU_OK);
    }
    snprintf(path, sizeof path, "%s/empty.png", in);
    write_text(path, "");
    snprintf(path, sizeof path, "%s/text.png", in);
    write_text(path, "not an image\n");
    snprintf(path, sizeof path, "%s/tiny.png", in);
    REQUIRE(write_flat(path, 4, 0.5f) == FU_OK);
    snprintf(args, sizeof args, "upscale %s -o %s --generator %s --steps 2 --eps 1 --json --quiet --threads 1 --no-face-check", in, od, model);
    int rc = run_faceup(args, out, sizeof out, err, sizeof err);
    CHECK_MSG(rc == FU_E_INPUT, "exit %d (%s)", rc, err);
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s.png", od, good[i]);
        CHECK_MSG(file_exists(path), "%s missing", path);
    }
    CHECK(lines_containing(err, "empty.png") == 1 && lines_containing(err, "text.png") == 1);
    CHECK(strstr(err, "tiny.png: thumbnail is 4x4; below 8x8") != NULL);
    cJSON *j = cJSON_Parse(out);
    REQUIRE(j);
    cJSON *results = cJSON_GetObjectItem(j, "results");
    int errors = 0, ok = 0;
    for (int i = 0; i < cJSON_GetArraySize(results); i++) {
        const char *st = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(results, i), "status"));
        errors += st && !strcmp(st, "error") && cJSON_GetObjectItem(cJSON_GetArrayItem(results, i), "error");
        ok += st && !strcmp(st, "ok");
    }
    CHECK(cJSON_GetArraySize(results) == 6 && errors == 3 && ok == 3);
    CHECK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(j, "status")), "error"));
    cJSON_Delete(j);
}

/* After "no solution" (exit 1) a rerun searches again instead of calling it done; a result
 * replaces the no-solution image, and only then is the thumbnail skipped, its JSON naming the output. */
TEST(cli_upscale_rerun_after_no_solution_searches_again) {
    if (!bin_or_skip()) SKIP("faceup binary not built");
    char dir[512], thumb[600], model[700], o[600], path[1024];
    tiny_setup("rerun", dir, sizeof dir, model, sizeof model);
    snprintf(thumb, sizeof thumb, "%s/t.png", dir);
    REQUIRE(write_flat(thumb, 8, 0.4f) == FU_OK);
    snprintf(o, sizeof o, "%s/r.png", dir);
    const char *common = "--steps 2 --json --threads 1 --no-face-check";
    snprintf(args, sizeof args, "upscale %s -o %s --generator %s %s --eps 1e-9", thumb, o, model, common);
    CHECK(run_faceup(args, out, sizeof out, err, sizeof err) == FU_E_NO_SOLUTION);
    CHECK(run_faceup(args, out, sizeof out, err, sizeof err) == FU_E_NO_SOLUTION);
    CHECK(!strstr(err, "done already") && strstr(out, "\"no_solution\""));
    snprintf(args, sizeof args, "upscale %s -o %s --generator %s %s --eps 1", thumb, o, model, common);
    CHECK(run_faceup(args, out, sizeof out, err, sizeof err) == FU_OK);
    snprintf(path, sizeof path, "%s/r_no_solution.png", dir);
    CHECK(file_exists(o) && !file_exists(path));
    CHECK(run_faceup(args, out, sizeof out, err, sizeof err) == FU_OK && strstr(err, "done already"));
    cJSON *j = cJSON_Parse(out);
    REQUIRE(j);
    cJSON *r0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "results"), 0);
    CHECK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(r0, "status")), "skipped"));
    CHECK(cJSON_GetStringValue(cJSON_GetObjectItem(r0, "output")) && !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(r0, "output")), o));
    cJSON_Delete(j);
}

/* -o: an existing folder or a trailing '/' is a folder; the extension picks PNG or JPEG or is
 * refused; outputs that collide (with each other, the sheet, or an input) and unusable paths
 * are refused before any work, with exit 2 and nothing written. */
TEST(cli_upscale_output_path_rule) {
    if (!bin_or_skip()) SKIP("faceup binary not built");
    char dir[512], thumb[600], model[700], path[1024];
    tiny_setup("orule", dir, sizeof dir, model, sizeof model);
    snprintf(thumb, sizeof thumb, "%s/t.png", dir);
    REQUIRE(write_flat(thumb, 8, 0.4f) == FU_OK);
    snprintf(path, sizeof path, "%s/existing", dir);
    mkdir(path, 0777);
    struct { const char *o, *written; } good[] = {
        {"%s/out.jpg", "%s/out.jpg"}, {"%s/existing", "%s/existing/t.png"}, {"%s/made/", "%s/made/t.png"}, {"%s/up.PNG", "%s/up.PNG"},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char o[700], want[700];
        snprintf(o, sizeof o, good[i].o, dir);
        snprintf(want, sizeof want, good[i].written, dir);
        snprintf(args, sizeof args, "upscale %s -o %s --generator %s --steps 2 --eps 1 --threads 1 --no-face-check --quiet", thumb, o, model);
        int rc = run_faceup(args, out, sizeof out, err, sizeof err);
        CHECK_MSG(rc == FU_OK && file_exists(want) && strstr(err, want), "-o %s: exit %d, %s (%s)", o, rc, want, err);
    }
    FILE *f = NULL;
    snprintf(path, sizeof path, "%s/out.jpg", dir);
    unsigned char magic[2] = {0};
    CHECK((f = fopen(path, "rb")) && fread(magic, 1, 2, f) == 2 && magic[0] == 0xFF && magic[1] == 0xD8);   /* JPEG bytes */
    if (f) fclose(f);
    snprintf(path, sizeof path, "%s/out.jpg.png", dir);
    CHECK(!file_exists(path));
    struct { const char *flags, *want; } bad[] = {
        {"-o %s/x.gif", "the extension chooses the format"},
        {"-o %s/missing/x.png", "does not exist"},
        {"-o %s/s.png --sheet %s/s.png", "are the same output file"},
        {"-o %s/t.png --overwrite", "may not replace the input"},
        {"-o %s/ok.png --sheet %s/nowhere/s.png", "--sheet"},
        {"-o %s/ok.png --sheet %s/s.bmp", "--sheet"},
        {"-o %s/ok.png --sheet %s/", "names a folder"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char flags[2048];
        snprintf(flags, sizeof flags, bad[i].flags, dir, dir);
        snprintf(args, sizeof args, "upscale %s %s --generator %s --steps 2 --eps 1 --threads 1 --no-face-check", thumb, flags, model);
        int rc = run_faceup(args, out, sizeof out, err, sizeof err);
        CHECK_MSG(rc == FU_E_INPUT && strstr(err, bad[i].want) && count_newlines(err) == 1, "case %zu: exit %d (%s)", i, rc, err);
    }
    snprintf(path, sizeof path, "%s/ok.png", dir);
    CHECK(!file_exists(path));
    CHECK(count_prefixed(dir, "s.") == 0);
    /* A folder that cannot be written (here /sys, even for root, whom access(W_OK) lets through):
     * refused before the search. */
    char probe[] = "/sys/.faceup-test-XXXXXX";
    int fd = mkstemp(probe);
    if (fd >= 0) close(fd), unlink(probe);
    else {
        snprintf(args, sizeof args, "upscale %s -o /sys/x.png --generator %s --steps 2 --threads 1 --no-face-check", thumb, model);
        CHECK(run_faceup(args, out, sizeof out, err, sizeof err) == FU_E_INPUT && strstr(err, "cannot write in folder /sys") && count_newlines(err) == 1);
    }
    /* --json on exit 2 still prints JSON: the error object */
    snprintf(args, sizeof args, "upscale %s -o %s/x.gif --generator %s --json", thumb, dir, model);
    CHECK(run_faceup(args, out, sizeof out, err, sizeof err) == FU_E_INPUT);
    cJSON *j = cJSON_Parse(out);
    const char *st = cJSON_GetStringValue(cJSON_GetObjectItem(j, "status")), *msg = cJSON_GetStringValue(cJSON_GetObjectItem(j, "error"));
    CHECK(st && !strcmp(st, "error") && msg && strstr(msg, "x.gif"));
    cJSON_Delete(j);
}

/* --race keep: the JSON's loss (top level and per result) names the RACE_IS_k the search used,
 * the class the thumbnail classifier chose (Indian for this LFW face at 16x16), not the
 * placeholder RACE_IS_0; and --quiet still says where the "no solution" attempt went. */
TEST(cli_upscale_race_keep_reports_the_race_term_used) {
    const char *shared = fu_test_shared_dir();
    char m[1024], photo[1024], thumb[600], o[600];
    if (!bin_or_skip()) SKIP("faceup binary not built");
    if (!shared || !file_exists(fu_model_path(FU_BLAZEFACE_MODEL, m, sizeof m))) SKIP("../shared or the model cache absent");
    snprintf(photo, sizeof photo, "%s/data/lfw/images/Abdullah_Gul/Abdullah_Gul_0001.jpg", shared);
    snprintf(thumb, sizeof thumb, "%s/gul16.png", fu_test_tmpdir());
    snprintf(o, sizeof o, "%s/gul_up.png", fu_test_tmpdir());
    snprintf(args, sizeof args, "align %s -o %s --size 256 --downscale 16 --quiet", photo, thumb);
    REQUIRE(run_faceup(args, out, sizeof out, err, sizeof err) == FU_OK);
    snprintf(args, sizeof args, "upscale %s -o %s --race keep --steps 2 --eps 1e-9 --json --quiet --threads 1", thumb, o);
    REQUIRE(run_faceup(args, out, sizeof out, err, sizeof err) == FU_E_NO_SOLUTION);
    CHECK(strstr(err, "best attempt saved as") && strstr(err, "gul_up_no_solution.png"));
    cJSON *j = cJSON_Parse(out);
    REQUIRE(j);
    cJSON *r0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "results"), 0);
    const char *cls = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(r0, "thumbnail_race"), "class"));
    REQUIRE(cls);
    char term[32];
    snprintf(term, sizeof term, "RACE_IS_%d", fu_race_parse(cls));
    const char *top = cJSON_GetStringValue(cJSON_GetObjectItem(j, "loss")), *mine = cJSON_GetStringValue(cJSON_GetObjectItem(r0, "loss"));
    CHECK_MSG(top && strstr(top, term) && mine && strstr(mine, term), "class %s, loss '%s' / '%s'", cls, top ? top : "", mine ? mine : "");
    CHECK(strcmp(cls, "White") != 0);   /* else this face no longer tells RACE_IS_0 from the term used */
    cJSON_Delete(j);
}

/* A photo given to upscale becomes its face's 16x16 thumbnail (as faceup align --size 256
 * --downscale 16 makes it), and upscale says so; a wrong-sized thumbnail's error says how to make
 * one from a photo; --from-photo on a picture without a face is that file's error. */
TEST(cli_upscale_takes_a_photo_and_says_how_to_make_thumbnails) {
    const char *shared = fu_test_shared_dir();
    char m[1024], photo[1024], o[600], grey[600], odd[600];
    if (!bin_or_skip()) SKIP("faceup binary not built");
    if (!shared || !file_exists(fu_model_path(FU_BLAZEFACE_MODEL, m, sizeof m))) SKIP("../shared or the model cache absent");
    snprintf(photo, sizeof photo, "%s/data/lfw/images/Abdullah_Gul/Abdullah_Gul_0001.jpg", shared);
    snprintf(o, sizeof o, "%s/photo_up.png", fu_test_tmpdir());
    snprintf(args, sizeof args, "upscale %s -o %s --steps 2 --eps 1 --quiet --threads 1", photo, o);
    int rc = run_faceup(args, out, sizeof out, err, sizeof err);
    CHECK_MSG(rc == FU_OK && file_exists(o) && strstr(err, "250x250 photo") && strstr(err, "16x16"), "exit %d (%s)", rc, err);
    snprintf(odd, sizeof odd, "%s/odd_24.png", fu_test_tmpdir());
    REQUIRE(write_flat(odd, 24, 0.5f) == FU_OK);
    snprintf(args, sizeof args, "upscale %s -o %s/odd_up.png --quiet", odd, fu_test_tmpdir());
    CHECK(run_faceup(args, out, sizeof out, err, sizeof err) == FU_E_INPUT && strstr(err, "faceup align PHOTO -o thumb.png --size 256 --downscale 16") &&
          count_newlines(err) == 1);
    snprintf(grey, sizeof grey, "%s/grey_photo.png", fu_test_tmpdir());
    REQUIRE(write_flat(grey, 16, 0.5f) == FU_OK);
    snprintf(args, sizeof args, "upscale %s -o %s/grey_up.png --from-photo --quiet", grey, fu_test_tmpdir());
    CHECK(run_faceup(args, out, sizeof out, err, sizeof err) == FU_E_INPUT && strstr(err, "no face found") && count_newlines(err) == 1);
}

/* A sheet label cut to its cell: "HAPPY 1.00 NO EPS" ran into the next cell of eval upscale's sheet. */
TEST(sheet_text_cut_stays_in_its_cell) {
    fu_tensor *img = fu_tensor_newv(4, (int64_t)1, (int64_t)3, (int64_t)12, (int64_t)80);
    REQUIRE(img);
    fu_draw_text_cut(img, 2, 2, 1, 20, "happy 1.00 no eps");   /* a 20-pixel cell holds 5 characters */
    int outside = 0, inside = 0;
    for (int64_t y = 0; y < 12; y++)
        for (int64_t x = 0; x < 80; x++) {
            float v = img->data[y * 80 + x];
            if (v != 0 && x < 2 + 20 + 1) inside++;
            else if (v != 0) outside++;
        }
    CHECK(inside > 0 && outside == 0);
    fu_tensor_free(img);
}
