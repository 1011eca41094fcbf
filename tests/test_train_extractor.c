/* ArcFace training of the IR-SE extractor (src/train/extractor.c) on a synthetic folder data
 * set written by the test: learning, checkpoint + resume exactness, data-parallel equality. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "test.h"
#include "util.h"
#include "io/image.h"
#include "io/safetensors.h"
#include "train/extractor.h"

enum { N_IDS = 4, PER_ID = 4, SIZE = 32 };

/* ROOT/id<k>/<j>.png: identity k is a bright square at its own place plus noise. */
static const char *synthetic_faces(void) {
    static char root[1024];
    snprintf(root, sizeof root, "%s/extractor_faces", fu_test_tmpdir());
    mkdir(root, 0755);
    fu_rng r;
    fu_rng_seed(&r, 77);
    fu_tensor *img = fu_tensor_newv(4, (int64_t)1, (int64_t)3, (int64_t)SIZE, (int64_t)SIZE);
    for (int k = 0; k < N_IDS; k++) {
        char dir[1100], path[1200];
        snprintf(dir, sizeof dir, "%s/id%d", root, k);
        mkdir(dir, 0755);
        for (int j = 0; j < PER_ID; j++) {
            fu_rng_fill_uniform(&r, img->data, img->numel, 0, 0.3f);
            for (int c = 0; c < 3; c++)
                for (int y = 0; y < 12; y++)
                    for (int x = 0; x < 12; x++) img->data[(c * SIZE + y + 16 * (k / 2)) * SIZE + x + 16 * (k % 2)] += 0.6f;
            snprintf(path, sizeof path, "%s/%d.png", dir, j);
            fu_image_save_png(path, img);
        }
    }
    fu_tensor_free(img);
    return root;
}

static fu_extractor_config tiny_run(const char *data, int64_t steps) {
    fu_irse_config arch;
    fu_irse_arch("irse-tiny", &arch);
    fu_extractor_config c = fu_extractor_defaults(&arch);
    c.data = data;
    c.steps = steps;
    c.batch = 8;
    c.lr = 0.05f;
    c.scale = 16;
    c.margin = 0.2f;
    c.seed = 5;
    return c;
}

static const fu_dist one_process = {0, 1};

TEST(extractor_learns_synthetic_identities) {
    fu_extractor_config c = tiny_run(synthetic_faces(), 40);
    fu_extractor_result res;
    REQUIRE(fu_extractor_train(&c, &one_process, NULL, NULL, &res) == FU_OK);
    CHECK(res.steps_done == 40);
    CHECK_MSG(res.last_loss < 0.5 * res.first_loss, "loss %.4f -> %.4f in 40 steps", res.first_loss, res.last_loss);
}

/* Every tensor of two checkpoints bitwise equal (skip: names containing it are not compared). */
static int same_checkpoints(const char *a, const char *b, const char *skip, float tol, char *why, size_t n) {
    fu_safetensors *x = fu_st_open(a), *y = fu_st_open(b);
    int same = x && y && x->n_entries == y->n_entries;
    for (int i = 0; same && i < x->n_entries; i++) {
        const char *name = x->entries[i].name;
        if (skip && strstr(name, skip)) continue;
        fu_tensor *p = fu_st_tensor(x, name), *q = fu_st_tensor(y, name);
        same = p && q && p->numel == q->numel;
        for (int64_t k = 0; same && k < p->numel; k++)
            if (!(fabsf(p->data[k] - q->data[k]) <= tol)) {
                snprintf(why, n, "%s[%lld]: %.9g vs %.9g", name, (long long)k, (double)p->data[k], (double)q->data[k]);
                same = 0;
            }
        fu_tensor_free(p);
        fu_tensor_free(q);
    }
    if (same && !skip) same = !strcmp(fu_st_meta_get(x, "rng"), fu_st_meta_get(y, "rng")) &&
                              !strcmp(fu_st_meta_get(x, "step"), fu_st_meta_get(y, "step"));
    fu_st_free(x);
    fu_st_free(y);
    return same;
}

TEST(extractor_resume_is_exact) {
    const char *data = synthetic_faces();
    char whole[1024], half[1024], resumed[1024], why[256] = "";
    snprintf(whole, sizeof whole, "%s/ext_whole.safetensors", fu_test_tmpdir());
    snprintf(half, sizeof half, "%s/ext_half.safetensors", fu_test_tmpdir());
    snprintf(resumed, sizeof resumed, "%s/ext_resumed.safetensors", fu_test_tmpdir());
    fu_extractor_result res;
    /* 2K = 6 steps straight; K = 3, then 3 more from the checkpoint. 16 images, batch 8: the
     * run crosses epochs, so the data position and permutation are exercised too. */
    fu_extractor_config c = tiny_run(data, 6);
    c.shards = 2;
    c.arch.dropout = 0.2f;  /* masks must be reproduced too */
    c.checkpoint = whole;
    REQUIRE(fu_extractor_train(&c, &one_process, NULL, NULL, &res) == FU_OK);
    c.steps = 3;
    c.checkpoint = half;
    REQUIRE(fu_extractor_train(&c, &one_process, NULL, NULL, &res) == FU_OK);
    c.steps = 6;
    c.resume = half;
    c.checkpoint = resumed;
    REQUIRE(fu_extractor_train(&c, &one_process, NULL, NULL, &res) == FU_OK);
    CHECK(res.steps_done == 3);
    CHECK_MSG(same_checkpoints(whole, resumed, NULL, 0, why, sizeof why), "resumed run differs: %s", why);
    CHECK(!same_checkpoints(whole, half, NULL, 0, why, sizeof why));  /* the comparison can fail */
    fu_irse *m = fu_irse_load(resumed);  /* a checkpoint reads as a model */
    CHECK(m != NULL);
    fu_irse_free(m);

    /* a different setup refuses the checkpoint */
    c.batch = 4;
    c.shards = 2;
    CHECK(fu_extractor_train(&c, &one_process, NULL, NULL, &res) == FU_E_INPUT && strstr(fu_last_error(), "setup differs"));
    c = tiny_run(data, 6);
    c.shards = 3;  /* 8 does not split in 3 */
    CHECK(fu_extractor_train(&c, &one_process, NULL, NULL, &res) == FU_E_INPUT && strstr(fu_last_error(), "shards"));
}

/* The MPI build of faceup: FACEUP_MPI_BIN, else build-mpi/faceup. */
static const char *mpi_binary(void) {
    const char *env = getenv("FACEUP_MPI_BIN");
    return env ? env : "build-mpi/faceup";
}

static int run(const char *cmd) {
    int rc = system(cmd);
    return rc == -1 ? -1 : WEXITSTATUS(rc);
}

/* Two ranks, each with one shard of the batch of 8, against one process computing both shards:
 * the same gradients up to summation order, so the same weights within 1e-5. Running batch-norm
 * statistics differ by design (rank 0 saw only its shard) and are not compared. */
TEST(extractor_data_parallel_matches_one_process) {
    if (run("command -v mpirun >/dev/null 2>&1") != 0) SKIP("mpirun not installed (apt-get install openmpi-bin libopenmpi-dev)");
    const char *bin = mpi_binary();
    if (access(bin, X_OK) != 0) SKIP("no MPI build of faceup (make MPI=1 BUILD=build-mpi, or set FACEUP_MPI_BIN)");
    const char *data = synthetic_faces();
    char dp[1024], one[1024], cmd[4096], why[256] = "";
    snprintf(dp, sizeof dp, "%s/ext_dp.safetensors", fu_test_tmpdir());
    snprintf(one, sizeof one, "%s/ext_one.safetensors", fu_test_tmpdir());
    const char *flags = "train extractor --arch irse-tiny --batch 8 --steps 4 --lr 0.05 --scale 16 --margin 0.2 --seed 5 --quiet";
    snprintf(cmd, sizeof cmd, "mpirun -np 2 --oversubscribe --allow-run-as-root -x FACEUP_THREADS=1 %s %s --data %s "
             "--checkpoint %s >/dev/null", bin, flags, data, dp);
    REQUIRE(run(cmd) == 0);
    snprintf(cmd, sizeof cmd, "FACEUP_THREADS=1 %s %s --shards 2 --data %s --checkpoint %s >/dev/null", bin, flags, data, one);
    REQUIRE(run(cmd) == 0);
    CHECK_MSG(same_checkpoints(dp, one, "running_", 1e-5f, why, sizeof why), "2 ranks vs 1 process: %s", why);
}

/* `faceup train extractor` ($FACEUP_BIN): exit codes, one-line errors, the JSON summary. */
static int run_cli(const char *args, char *out, size_t n_out, char *err, size_t n_err) {
    const char *bin = getenv("FACEUP_BIN") ? getenv("FACEUP_BIN") : "build/faceup";
    char cmd[4096], fo[1024], fe[1024];
    snprintf(fo, sizeof fo, "%s/ext_cli.out", fu_test_tmpdir());
    snprintf(fe, sizeof fe, "%s/ext_cli.err", fu_test_tmpdir());
    snprintf(cmd, sizeof cmd, "FACEUP_THREADS=1 %s train extractor %s >%s 2>%s </dev/null", bin, args, fo, fe);
    int st = run(cmd);
    const char *paths[2] = {fo, fe};
    char *bufs[2] = {out, err};
    size_t sizes[2] = {n_out, n_err};
    for (int i = 0; i < 2; i++) {
        FILE *f = fopen(paths[i], "r");
        size_t k = f ? fread(bufs[i], 1, sizes[i] - 1, f) : 0;
        bufs[i][k] = 0;
        if (f) fclose(f);
    }
    return st;
}

static int one_line(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n == 1;
}

TEST(extractor_cli) {
    const char *bin = getenv("FACEUP_BIN") ? getenv("FACEUP_BIN") : "build/faceup";
    if (access(bin, X_OK) != 0) SKIP("faceup binary not built");
    static char out[4096], err[4096], args[4096];
    CHECK(run_cli("--arch irse-tiny", out, sizeof out, err, sizeof err) == FU_E_INPUT && strstr(err, "--data") && one_line(err));
    CHECK(run_cli("--arch irse7 --data x", out, sizeof out, err, sizeof err) == FU_E_INPUT && strstr(err, "irse7") && one_line(err));
    CHECK(run_cli("--arch irse-tiny --data /nonexistent/train.rec", out, sizeof out, err, sizeof err) == FU_E_INPUT &&
          strstr(err, "/nonexistent/train.rec") && one_line(err));
    CHECK(run_cli("--batch 1 --data x", out, sizeof out, err, sizeof err) == FU_E_INPUT && strstr(err, "--batch"));
    const char *data = synthetic_faces();
    char ck[1024];
    snprintf(ck, sizeof ck, "%s/ext_cli.safetensors", fu_test_tmpdir());
    snprintf(args, sizeof args, "--arch irse-tiny --data %s --steps 2 --batch 4 --quiet --checkpoint %s", data, ck);
    CHECK(run_cli(args, out, sizeof out, err, sizeof err) == FU_OK);
    CHECK(strstr(out, "\"steps_run\":2") && file_exists(ck));
    /* a model file is not a training checkpoint */
    snprintf(args, sizeof args, "--arch irse-tiny --data %s --steps 3 --batch 4 --quiet --resume %s/irse_tiny.safetensors",
             data, fu_test_tmpdir());
    fu_irse_config cfg;
    fu_irse_arch("irse-tiny", &cfg);
    fu_rng r;
    fu_rng_seed(&r, 1);
    fu_irse *m = fu_irse_new(&cfg, &r);
    char model[1024];
    snprintf(model, sizeof model, "%s/irse_tiny.safetensors", fu_test_tmpdir());
    REQUIRE(m && fu_irse_save(m, model) == FU_OK);
    fu_irse_free(m);
    CHECK(run_cli(args, out, sizeof out, err, sizeof err) == FU_E_INPUT && strstr(err, "not a training checkpoint") && one_line(err));
}
