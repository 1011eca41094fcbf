/* faceup train generator / eval generator end to end: a run killed with SIGKILL and resumed
 * ends with the same weights as an uninterrupted run; eval prints JSON; bad input exits 2. */
#include "test.h"
#include "util.h"
#include "face/dlib_resnet.h"
#include "face/models.h"
#include "gen/sharp.h"
#include "gen/vae.h"
#include "io/image.h"
#include "io/fileutil.h"
#include "io/safetensors.h"
#include "data/faces.h"
#include <cjson/cJSON.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *faceup_bin(void) { return getenv("FACEUP_BIN") ? getenv("FACEUP_BIN") : "build/faceup"; }

/* 60 images of S x S (every 5th val), smooth coloured blobs; sources alternate CelebA/UTKFace. */
static int write_faces_sized(const char *path, int S) {
    enum { N = 60 };
    float scale = (float)S / 16;
    fu_faces set = {.size = S, .count = N};
    set.labels = calloc(N, sizeof *set.labels);
    set.pixels = malloc((size_t)N * 3 * S * S);
    for (int i = 0; i < N; i++) {
        set.labels[i] = (fu_face_label){.source = (uint8_t)(i % 2), .split = i % 5 == 4 ? FU_SPLIT_VAL : FU_SPLIT_TRAIN,
                                        .gender = -1, .race = -1, .age = -1, .identity = -1};
        snprintf(set.labels[i].path, sizeof set.labels[i].path, "synthetic/%02d.png", i);
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < S; y++)
                for (int x = 0; x < S; x++) {
                    float dx = (float)x / scale - (float)((i % 4) * 4 + 2), dy = (float)y / scale - (float)((i % 3) * 5 + 3);
                    set.pixels[((i * 3 + c) * S + y) * S + x] = (uint8_t)(30 + (c == i % 3 ? 200 : 80) * expf(-(dx * dx + dy * dy) / 20));
                }
    }
    int rc = fu_faces_save(&set, path);
    free(set.labels);
    free(set.pixels);
    return rc;
}

static int write_faces(const char *path) { return write_faces_sized(path, 16); }

static int64_t checkpoint_step(const char *path) {
    fu_safetensors *st = fu_st_open(path);
    const char *s = st ? fu_st_meta_get(st, "train.step") : NULL;
    int64_t step = s ? atoll(s) : -1;
    fu_st_free(st);
    return step;
}

static int same_model_files(const char *a, const char *b) {
    unsigned char *da = NULL, *db = NULL;
    size_t na = 0, nb = 0;
    int same = fu_read_file(a, 1 << 26, &da, &na) == FU_OK && fu_read_file(b, 1 << 26, &db, &nb) == FU_OK &&
               na == nb && !memcmp(da, db, na);
    free(da);
    free(db);
    return same;
}

#define TRAIN_FLAGS "--size 16 --channels 4 --latent 8 --batch 4 --lr 0.003 --kl-warmup 20 --sample-every 0 --threads 1 --quiet"
#define TOTAL_STEPS 1500

TEST(cli_train_generator_sigkill_then_resume_matches_uninterrupted) {
    if (access(faceup_bin(), X_OK) != 0) SKIP("faceup binary not built");
    char data[512], full[512], killed[512], ckpt[512], args[2048];
    const char *tmp = fu_test_tmpdir();
    snprintf(data, sizeof data, "%s/cli_faces.bin", tmp);
    snprintf(full, sizeof full, "%s/cli_full.safetensors", tmp);
    snprintf(killed, sizeof killed, "%s/cli_killed.safetensors", tmp);
    snprintf(ckpt, sizeof ckpt, "%s/cli_killed.ckpt.safetensors", tmp);
    REQUIRE(write_faces(data) == FU_OK);
    snprintf(args, sizeof args, "train generator --data %s --out %s --steps %d --checkpoint-every 100 " TRAIN_FLAGS, data, full, TOTAL_STEPS);
    REQUIRE(run_faceup(args, NULL, 0, NULL, 0) == 0);

    /* The same run, killed once its first checkpoint is on disk. */
    snprintf(args, sizeof args, "--data %s --out %s --steps %d --checkpoint-every 100 " TRAIN_FLAGS, data, killed, TOTAL_STEPS);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        char *argv[64];
        int n = 0;
        argv[n++] = (char *)faceup_bin();
        argv[n++] = "train";
        argv[n++] = "generator";
        for (char *tok = strtok(args, " "); tok && n < 63; tok = strtok(NULL, " ")) argv[n++] = tok;
        argv[n] = NULL;
        freopen("/dev/null", "w", stderr);
        execv(argv[0], argv);
        _exit(127);
    }
    struct timespec pause = {0, 1000000};
    for (int i = 0; i < 20000 && !file_exists(ckpt); i++) nanosleep(&pause, NULL);
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    int64_t at = checkpoint_step(ckpt);
    REQUIRE(at >= 100 && at < TOTAL_STEPS);   /* killed mid-way, with a complete checkpoint */
    CHECK(!same_model_files(full, killed));

    snprintf(args, sizeof args, "train generator --data %s --out %s --steps %d --checkpoint-every 100 --resume " TRAIN_FLAGS, data, killed, TOTAL_STEPS);
    static char err[4096];
    CHECK(run_faceup(args, NULL, 0, err, sizeof err) == 0);
    CHECK_MSG(same_model_files(full, killed), "resumed from step %lld: final weights differ from the uninterrupted run", (long long)at);
    CHECK(checkpoint_step(ckpt) == TOTAL_STEPS);
}

TEST(cli_eval_generator_json_and_bad_input) {
    if (access(faceup_bin(), X_OK) != 0) SKIP("faceup binary not built");
    char data[512], model[512], args[2048];
    const char *tmp = fu_test_tmpdir();
    snprintf(data, sizeof data, "%s/cli_eval_faces.bin", tmp);
    snprintf(model, sizeof model, "%s/cli_eval.safetensors", tmp);
    REQUIRE(write_faces(data) == FU_OK);
    static char out[16384], err[4096];
    snprintf(args, sizeof args, "train generator --data %s --out %s --steps 5 " TRAIN_FLAGS, data, model);
    REQUIRE(run_faceup(args, out, sizeof out, err, sizeof err) == 0);
    snprintf(args, sizeof args, "eval generator --generator %s --data %s --split val --samples 0", model, data);
    REQUIRE(run_faceup(args, out, sizeof out, err, sizeof err) == 0);
    cJSON *j = cJSON_Parse(out);
    REQUIRE(j);
    cJSON *recon = cJSON_GetObjectItem(j, "recon");
    cJSON *celeba = cJSON_GetObjectItem(recon, "celeba"), *lfw = cJSON_GetObjectItem(recon, "lfw");
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(celeba, "images")) == 6);   /* val: i = 4, 14, ..., 54 */
    double psnr = cJSON_GetNumberValue(cJSON_GetObjectItem(celeba, "psnr_db"));
    CHECK_MSG(psnr > 3 && psnr < 60, "PSNR %g", psnr);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(lfw, "images")) == 0 && cJSON_IsNull(cJSON_GetObjectItem(lfw, "psnr_db")));
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(recon, "all"), "images")) == 12);
    cJSON_Delete(j);

    CHECK(run_faceup("train generator --data /nonexistent/faces.bin --out x.safetensors", NULL, 0, err, sizeof err) == FU_E_INPUT);
    CHECK(strstr(err, "/nonexistent/faces.bin") != NULL);
    snprintf(args, sizeof args, "train generator --data %s --out %s/none.safetensors --resume --quiet", data, tmp);
    CHECK(run_faceup(args, NULL, 0, err, sizeof err) == FU_E_INPUT && strstr(err, "none.ckpt.safetensors"));
    snprintf(args, sizeof args, "eval generator --generator %s --data %s", data, data);   /* not a model */
    CHECK(run_faceup(args, NULL, 0, err, sizeof err) == FU_E_INPUT && strstr(err, data));
    snprintf(args, sizeof args, "eval generator --generator %s --data %s --split nope", model, data);
    CHECK(run_faceup(args, NULL, 0, err, sizeof err) == FU_E_INPUT);
    CHECK(run_faceup("train bogus", NULL, 0, err, sizeof err) == FU_E_INPUT && strstr(err, "generator"));
}

/* A number at a path of nested keys ("samples", "faceres", "fd", NULL); NAN when absent. */
static double json_number(const cJSON *j, ...) {
    va_list ap;
    va_start(ap, j);
    for (const char *key = va_arg(ap, const char *); key && j; key = va_arg(ap, const char *)) j = cJSON_GetObjectItem(j, key);
    va_end(ap);
    return cJSON_IsNumber(j) ? cJSON_GetNumberValue(j) : NAN;
}

static double shares_total(const cJSON *race) {
    double total = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, race) total += cJSON_GetNumberValue(it);
    return total;
}

static int have_eval_models(void) {
    char model[2048];
    return access(fu_model_path(FU_DLIB_RESNET_MANIFEST, model, sizeof model), R_OK) == 0 &&
           access(fu_model_path(FU_BLAZEFACE_MODEL, model, sizeof model), R_OK) == 0 &&
           access(fu_model_path("human-models-3.0.4/models/faceres.json", model, sizeof model), R_OK) == 0 &&
           access("models/faceup-vae64.safetensors", R_OK) == 0 && access("models/faceup-heads.safetensors", R_OK) == 0 &&
           access("models/faceup-race-judge.safetensors", R_OK) == 0;
}

/* Sample quality of the shipped generator against a set of coloured blobs: its samples are
 * faces to blazeface (measured 97.5% on 200 samples) while the blobs are not, and every distance
 * between train and held-out blobs is far below that between face samples and blobs. */
TEST(cli_eval_generator_sample_quality) {
    if (access(faceup_bin(), X_OK) != 0) SKIP("faceup binary not built");
    if (!have_eval_models()) SKIP("face models not fetched (tools/fetch-models.sh) or shipped models missing");
    char data[512], grid[512], args[2048];
    snprintf(data, sizeof data, "%s/cli_quality_faces.bin", fu_test_tmpdir());
    snprintf(grid, sizeof grid, "%s/cli_quality_grid.png", fu_test_tmpdir());
    REQUIRE(write_faces_sized(data, 64) == FU_OK);
    static char out[16384], err[4096];
    snprintf(args, sizeof args, "eval generator --generator models/faceup-vae64.safetensors --data %s --samples 16 --quiet --json --grid %s", data, grid);
    int rc = run_faceup(args, out, sizeof out, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    REQUIRE(rc == 0);
    cJSON *j = cJSON_Parse(out), *q = cJSON_GetObjectItem(j, "samples");
    REQUIRE(q);
    double rate = json_number(q, "blazeface_rate", NULL), rate_blobs = json_number(q, "blazeface_rate_heldout", NULL);
    CHECK_MSG(rate >= 0.75, "blazeface finds faces in %.2f of the samples", rate);
    CHECK_MSG(rate_blobs <= 0.25, "blazeface finds faces in %.2f of the blobs", rate_blobs);
    double fd = json_number(q, "identity", "fd", NULL), fd_floor = json_number(q, "identity", "fd_train_vs_heldout", NULL);
    CHECK_MSG(fd > 0 && fd_floor >= 0 && fd_floor < 0.5 * fd, "identity FD samples-vs-blobs %g, train-vs-held-out blobs %g", fd, fd_floor);
    double ffd = json_number(q, "faceres", "fd", NULL), ffd_floor = json_number(q, "faceres", "floor_train_vs_heldout", "fd", NULL);
    CHECK_MSG(ffd > 0 && ffd_floor >= 0 && ffd_floor < 0.5 * ffd, "faceres FD samples-vs-blobs %g, train-vs-held-out blobs %g", ffd, ffd_floor);
    double kid = json_number(q, "faceres", "kid", NULL), kid_floor = json_number(q, "faceres", "floor_train_vs_heldout", "kid", NULL);
    CHECK_MSG(kid > 0 && kid_floor < 0.5 * kid, "KID samples-vs-blobs %g, train-vs-held-out blobs %g", kid, kid_floor);
    /* The 12 held-out blobs are the 12 patterns, so every train blob has a copy among them: full
     * precision there (recall counts the patterns the 12 of 16 train blobs it keeps cover); no
     * face sample is near a blob (no precision). */
    CHECK(json_number(q, "faceres", "floor_train_vs_heldout", "precision", NULL) == 1);
    CHECK(json_number(q, "faceres", "floor_train_vs_heldout", "recall", NULL) >= 0.5);
    CHECK(json_number(q, "faceres", "precision", NULL) == 0);
    /* Memorisation: no face sample copies a blob; every held-out blob has a pixel-identical
     * train blob (12 patterns over 60 images). */
    CHECK(json_number(q, "identity", "memorised_share", NULL) == 0);
    CHECK(json_number(q, "identity", "memorised_share_heldout", NULL) == 1);
    CHECK(json_number(q, "heldout_faces", NULL) == 12 && json_number(q, "memorisation_train_faces", NULL) == 48);
    double recon = json_number(q, "identity", "recon_cosine", NULL);
    CHECK_MSG(recon > -1 && recon <= 1, "reconstruction identity cosine %g", recon);
    double sharp = json_number(q, "sharpness", "ratio_samples", NULL), hf = json_number(q, "sharpness", "highfreq_share_samples", NULL);
    CHECK_MSG(sharp > 0 && hf > 0 && hf < 1 && json_number(q, "sharpness", "ratio_recons", NULL) > 0, "sharpness ratio %g, share %g", sharp, hf);
    CHECK_NEAR(shares_total(cJSON_GetObjectItem(q, "race_samples")), 1.0, 1e-3);
    CHECK_NEAR(shares_total(cJSON_GetObjectItem(q, "race_train")), 1.0, 1e-3);
    cJSON_Delete(j);
    fu_tensor *g = fu_image_load(grid);
    CHECK(g && g->shape[2] == 512 && g->shape[3] == 512);
    fu_tensor_free(g);
}

/* Other generators and pack sizes: the sharp generator (the shipped VAE with a fresh stage, which
 * starts as a bicubic 2x upscale) is measured at 128 px, the VAE on a 128 px pack through PULSE's
 * bicubic downscale; a pack smaller than the generator is refused. */
TEST(cli_eval_generator_any_generator_and_pack_size) {
    if (access(faceup_bin(), X_OK) != 0) SKIP("faceup binary not built");
    if (!have_eval_models()) SKIP("face models not fetched (tools/fetch-models.sh) or shipped models missing");
    char data[512], small[512], sharp[512], grid[512], args[2048];
    snprintf(data, sizeof data, "%s/cli_quality_faces128.bin", fu_test_tmpdir());
    snprintf(small, sizeof small, "%s/cli_quality_faces16.bin", fu_test_tmpdir());
    snprintf(sharp, sizeof sharp, "%s/cli_quality_sharp.safetensors", fu_test_tmpdir());
    snprintf(grid, sizeof grid, "%s/cli_quality_grid128.png", fu_test_tmpdir());
    REQUIRE(write_faces_sized(data, 128) == FU_OK && write_faces_sized(small, 16) == FU_OK);
    fu_vae *v = NULL;
    REQUIRE(fu_vae_load("models/faceup-vae64.safetensors", &v) == FU_OK);
    fu_sr_config c = fu_sr_default_config();
    fu_sr *s = fu_sr_new(&c, 1);
    REQUIRE(s && fu_sharp_save(v, s, sharp) == FU_OK);
    fu_sr_free(s);
    fu_vae_free(v);
    static char out[32768], err[4096];
    snprintf(args, sizeof args, "eval generator --generator %s --data %s --samples 8 --memo-faces 10 --quiet --grid %s", sharp, data, grid);
    int rc = run_faceup(args, out, sizeof out, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    cJSON *j = cJSON_Parse(out), *q = cJSON_GetObjectItem(j, "samples");
    REQUIRE(q);
    CHECK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(j, "kind")), "vae+sr") && json_number(j, "size", NULL) == 128);
    CHECK(json_number(q, "real_faces_downscale", NULL) == 1 && json_number(q, "memorisation_train_faces", NULL) == 10);
    CHECK_MSG(json_number(q, "blazeface_rate", NULL) >= 0.75, "blazeface finds faces in %.2f of the samples", json_number(q, "blazeface_rate", NULL));
    CHECK(json_number(q, "sharpness", "ratio_recons", NULL) > 0 && json_number(q, "identity", "recon_psnr_db", NULL) > 0);
    CHECK(json_number(q, "faceres", "fd", NULL) > json_number(q, "faceres", "floor_train_vs_heldout", "fd", NULL));
    cJSON_Delete(j);
    fu_tensor *g = fu_image_load(grid);
    CHECK(g && g->shape[2] == 1024 && g->shape[3] == 1024);
    fu_tensor_free(g);

    snprintf(args, sizeof args, "eval generator --generator models/faceup-vae64.safetensors --data %s --samples 8 --memo-faces 10 --quiet", data);
    rc = run_faceup(args, out, sizeof out, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    j = cJSON_Parse(out);
    q = cJSON_GetObjectItem(j, "samples");
    CHECK(json_number(q, "real_faces_downscale", NULL) == 2 && json_number(q, "real_faces_pack_size", NULL) == 128);
    CHECK(!cJSON_GetObjectItem(j, "recon"));   /* the per-source VAE table needs a pack at its size */
    CHECK_MSG(json_number(q, "blazeface_rate_heldout", NULL) <= 0.25, "blazeface finds faces in %.2f of the blobs", json_number(q, "blazeface_rate_heldout", NULL));
    cJSON_Delete(j);

    snprintf(args, sizeof args, "eval generator --generator models/faceup-vae64.safetensors --data %s --samples 8 --quiet", small);
    CHECK(run_faceup(args, NULL, 0, err, sizeof err) == FU_E_INPUT && strstr(err, "16 px"));
}

/* A StyleGAN2 (the golden 64 px one with random weights: 10 latent rows and 9 noise maps, no
 * encoder) goes through the same measures; without an encoder there are no reconstruction figures. */
TEST(cli_eval_generator_stylegan2) {
    if (access(faceup_bin(), X_OK) != 0) SKIP("faceup binary not built");
    if (!have_eval_models()) SKIP("face models not fetched (tools/fetch-models.sh) or shipped models missing");
    const char *shared = fu_test_shared_dir();
    char sg2[1024], data[512], args[4096];
    snprintf(sg2, sizeof sg2, "%s/golden/stylegan2/weights.safetensors", shared ? shared : "");
    if (!shared || access(sg2, R_OK) != 0) SKIP("../shared/golden/stylegan2 absent");
    snprintf(data, sizeof data, "%s/cli_quality_faces_sg2.bin", fu_test_tmpdir());
    REQUIRE(write_faces_sized(data, 64) == FU_OK);
    static char out[32768], err[4096];
    snprintf(args, sizeof args, "eval generator --generator %s --data %s --samples 8 --memo-faces 10 --quiet", sg2, data);
    int rc = run_faceup(args, out, sizeof out, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    cJSON *j = cJSON_Parse(out), *q = cJSON_GetObjectItem(j, "samples");
    REQUIRE(q);
    CHECK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(j, "kind")), "stylegan2") && json_number(j, "latent_rows", NULL) == 10);
    CHECK(isnan(json_number(q, "sharpness", "ratio_recons", NULL)) && isnan(json_number(q, "identity", "recon_cosine", NULL)));
    double hf = json_number(q, "sharpness", "highfreq_share_samples", NULL);
    CHECK_MSG(hf > 0 && hf < 1, "high-frequency share of the samples %g", hf);
    CHECK(json_number(q, "faceres", "fd", NULL) > 0 && json_number(q, "faceres", "kid_subset_size", NULL) == 4);
    CHECK_NEAR(shares_total(cJSON_GetObjectItem(q, "race_samples")), 1.0, 1e-3);
    cJSON_Delete(j);
}
