/* The augmented extractor's fine-tune (train/finetune.h): the comparer's gradient, a tiny run
 * on real faces (losses fall, retention keeps descriptors close), exact resume, the extractor
 * file, the data file's checks, and `faceup eval extractor` / `train finetune` on the command
 * line. The runs need ../shared/data and the face models; they skip without them. */
#include "test.h"
#include "util.h"
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/gradcheck.h"
#include "core/ops.h"
#include "face/models.h"
#include "io/fileutil.h"
#include "train/finetune.h"

static fu_tensor *build_comparer(fu_graph *g, fu_tensor **in, void *ctx) {
    (void)ctx;
    return fu_comparer_logits(g, in[0], in[1], in[2]);
}

TEST(finetune_comparer_logits_gradcheck) {
    fu_rng r;
    fu_rng_seed(&r, 11);
    fu_tensor *in[3] = {randn_leaf(&r, 2, (int64_t[]){4, 6}, 1), randn_leaf(&r, 2, (int64_t[]){4, 6}, 1),
                        fu_tensor_newv(1, (int64_t)2)};
    REQUIRE(in[0] && in[1] && in[2]);
    in[2]->data[0] = 1.2f, in[2]->data[1] = 3.0f;   /* t near the angles of random 6-d vectors */
    fu_tensor_requires_grad(in[2], 1);
    fu_gradcheck_opts o = {.eps = 1e-3f, .atol = 2e-3f, .rtol = 2e-2f, .max_checks = 24, .seed = 3};
    fu_gradcheck_result res;
    CHECK(fu_gradcheck(build_comparer, in, 3, NULL, &o, &res) == FU_OK);
    CHECK(res.n_checked > 40);
    /* the logit is k (t - angle): identical rows give angle ~0, so logit ~ k t */
    fu_graph *g = fu_graph_new();
    fu_tensor *same = fu_comparer_logits(g, in[0], in[0], in[2]);
    REQUIRE(same);
    for (int i = 0; i < 4; i++) CHECK_NEAR(same->data[i], 3.0f * 1.2f, 0.02f);
    fu_graph_free(g);
    for (int i = 0; i < 3; i++) fu_tensor_free(in[i]);
}

/* ------------------------------------------------------------------ a tiny data file */

static int models_present(void) {
    char buf[1024];
    return file_exists(fu_model_path(FU_DLIB_RESNET_MANIFEST, buf, sizeof buf)) &&
           file_exists(fu_model_path(FU_BLAZEFACE_MODEL, buf, sizeof buf)) &&
           file_exists(fu_model_path(FU_DLIB_LANDMARKS_MODEL, buf, sizeof buf));
}

/* Built once per test run: 4 UTKFace faces per race, 2 CelebA faces, every 60th val/test face,
 * look-alikes for 3 train and 2 test faces. NULL (with *why) when data or models are absent. */
static const char *tiny_data(const char **why, int *failed) {
    static char path[512];
    static int state;   /* 0 not tried, 1 ok, -1 failed */
    static char error[600];
    const char *shared = fu_test_shared_dir();
    char data[1024], gen[1024];
    if (!shared) return *why = "../shared/data absent", NULL;
    if (!models_present()) return *why = "face models absent (tools/fetch-models.sh)", NULL;
    fu_shipped_path("models/faceup-vae64.safetensors", gen, sizeof gen);
    if (!file_exists(gen)) return *why = "models/faceup-vae64.safetensors absent", NULL;
    if (state == 0) {
        snprintf(data, sizeof data, "%s/data", shared);
        snprintf(path, sizeof path, "%s/finetune_tiny.bin", fu_test_tmpdir());
        fu_xdata_config c = {.per_race = 4, .celeba_every = 4500, .lookalikes_train = 3, .lookalikes_test = 2, .holdout_every = 60};
        fu_xdata d;
        state = fu_xdata_build(data, gen, &c, &d, NULL, NULL) == FU_OK && fu_xdata_save(&d, path) == FU_OK ? 1 : -1;
        if (state < 0) snprintf(error, sizeof error, "building the tiny data file failed: %s", fu_last_error());
        fu_xdata_free(&d);
    }
    if (state < 0) return *why = error, *failed = 1, NULL;
    return path;
}

/* Declares `path`, the tiny data file (tiny_data): the test fails when making it failed and is
 * skipped when its inputs are absent. A macro, as SKIP returns from the test. */
#define TINY_DATA_OR_SKIP(path)                                 \
    const char *path##_why = NULL;                              \
    int path##_failed = 0;                                      \
    const char *path = tiny_data(&path##_why, &path##_failed); \
    CHECK_MSG(!path##_failed, "%s", path##_why);                \
    if (!path) SKIP(path##_why)

static fu_finetune_config tiny_config(const char *out, int64_t steps) {
    static char heads[1024];
    fu_finetune_config c = fu_finetune_defaults();
    fu_shipped_path(FU_HEADS_DEFAULT, heads, sizeof heads);
    c.steps = steps, c.batch = 2, c.pairs = 1, c.lr = 2e-6f, c.head_lr = 1e-3f, c.checkpoint_every = 4;
    c.out = out, c.heads = heads;
    return c;
}

TEST(finetune_data_file_round_trip_and_damage) {
    TINY_DATA_OR_SKIP(path);
    fu_xdata d;
    REQUIRE(fu_xdata_load(path, &d) == FU_OK);
    int split_seen[3] = {0}, looks = 0;
    for (int64_t i = 0; i < d.n; i++) split_seen[d.f[i].split]++, looks += d.f[i].has_lookalike;
    CHECK(split_seen[FU_XSPLIT_TRAIN] >= 8 && split_seen[FU_XSPLIT_VAL] > 0 && split_seen[FU_XSPLIT_TEST] > 0);
    CHECK(looks == 5);
    /* no LFW face, and the teacher is the network's output (not zeros) */
    double norm = 0;
    for (int k = 0; k < 128; k++) norm += (double)d.f[0].teacher[k] * d.f[0].teacher[k];
    CHECK(sqrt(norm) > 0.5 && sqrt(norm) < 3);
    for (int64_t i = 0; i < d.n; i++) CHECK(strncmp(d.f[i].path, "lfw/", 4) != 0);
    /* a truncated copy is refused with a message naming the file */
    unsigned char *bytes;
    size_t n;
    REQUIRE(fu_read_file(path, (size_t)1 << 30, &bytes, &n) == FU_OK);
    char cut[512];
    snprintf(cut, sizeof cut, "%s/finetune_cut.bin", fu_test_tmpdir());
    REQUIRE(fu_write_file_atomic(cut, bytes, n - 100) == FU_OK);
    fu_xdata bad;
    CHECK(fu_xdata_load(cut, &bad) == FU_E_INPUT);
    CHECK(strstr(fu_last_error(), "finetune_cut.bin") != NULL);
    free(bytes);
    fu_xdata_free(&d);
}

TEST(finetune_tiny_run_losses_fall_and_retention_keeps_descriptors) {
    TINY_DATA_OR_SKIP(path);
    fu_xdata d;
    REQUIRE(fu_xdata_load(path, &d) == FU_OK);
    char out[512], loose[512];
    snprintf(out, sizeof out, "%s/ft_tiny.safetensors", fu_test_tmpdir());
    snprintf(loose, sizeof loose, "%s/ft_loose.safetensors", fu_test_tmpdir());
    fu_finetune_config c = tiny_config(out, 40);
    fu_finetune_report rep;
    REQUIRE(fu_finetune_run(&d, &c, &rep, NULL, NULL) == FU_OK);
    CHECK(rep.steps_run == 40);
    /* the supervised terms fall on this tiny set */
    CHECK_MSG(rep.last.race + rep.last.attr + rep.last.pair < rep.first.race + rep.first.attr + rep.first.pair,
              "race+attr+pair %.3f -> %.3f", rep.first.race + rep.first.attr + rep.first.pair, rep.last.race + rep.last.attr + rep.last.pair);
    /* the same run without retention drifts further from the original descriptors */
    fu_finetune_config nc = tiny_config(loose, 40);
    nc.w_retain = 0;
    fu_finetune_report nrep;
    REQUIRE(fu_finetune_run(&d, &nc, &nrep, NULL, NULL) == FU_OK);
    fu_face_extractor *kept = fu_face_extractor_load(out), *free_run = fu_face_extractor_load(loose);
    REQUIRE(kept && free_run);
    fu_extractor_scores sk, sf;
    REQUIRE(fu_extractor_score(kept, &d, FU_XSPLIT_VAL, &sk, NULL, NULL) == FU_OK);
    REQUIRE(fu_extractor_score(free_run, &d, FU_XSPLIT_VAL, &sf, NULL, NULL) == FU_OK);
    CHECK_MSG(sk.drift_mean < sf.drift_mean, "drift with retention %.4f, without %.4f", sk.drift_mean, sf.drift_mean);
    CHECK_MSG(sk.drift_mean < 0.15, "drift with retention %.4f (dlib's same-person distance is 0.6)", sk.drift_mean);
    /* the file is also a heads file */
    fu_heads *h = fu_heads_load(out);
    CHECK(h != NULL);
    fu_heads_free(h);
    fu_face_extractor_free(kept);
    fu_face_extractor_free(free_run);
    fu_xdata_free(&d);
}

static int same_backbone(const char *a, const char *b) {
    fu_face_extractor *x = fu_face_extractor_load(a), *y = fu_face_extractor_load(b);
    int same = x && y && x->comparer->data[0] == y->comparer->data[0];
    for (int i = 0; same && i < fu_dlib_resnet_n_params(x->net); i++) {
        const fu_tensor *p = fu_dlib_resnet_param(x->net, i), *q = fu_dlib_resnet_param(y->net, i);
        same = !memcmp(p->data, q->data, (size_t)p->numel * sizeof(float));
    }
    fu_face_extractor_free(x);
    fu_face_extractor_free(y);
    return same;
}

TEST(finetune_resume_matches_uninterrupted) {
    TINY_DATA_OR_SKIP(path);
    fu_xdata d;
    REQUIRE(fu_xdata_load(path, &d) == FU_OK);
    char full[512], split[512], ckpt_full[600], ckpt_split[600];
    snprintf(full, sizeof full, "%s/ft_full.safetensors", fu_test_tmpdir());
    snprintf(split, sizeof split, "%s/ft_split.safetensors", fu_test_tmpdir());
    snprintf(ckpt_full, sizeof ckpt_full, "%s.ckpt.safetensors", full);
    snprintf(ckpt_split, sizeof ckpt_split, "%s.ckpt.safetensors", split);
    fu_finetune_report rep;
    fu_finetune_config c = tiny_config(full, 8);
    REQUIRE(fu_finetune_run(&d, &c, &rep, NULL, NULL) == FU_OK);
    c = tiny_config(split, 4);
    REQUIRE(fu_finetune_run(&d, &c, &rep, NULL, NULL) == FU_OK);
    c = tiny_config(split, 8);
    c.resume = 1;
    REQUIRE(fu_finetune_run(&d, &c, &rep, NULL, NULL) == FU_OK);
    CHECK(rep.first_step == 4 && rep.steps_run == 4);
    CHECK(same_backbone(ckpt_full, ckpt_split));
    /* other settings are refused on resume */
    c.batch = 3;
    CHECK(fu_finetune_run(&d, &c, &rep, NULL, NULL) == FU_E_INPUT);
    CHECK(strstr(fu_last_error(), "other settings") != NULL);
    fu_xdata_free(&d);
}

TEST(finetune_extractor_file_f16_round_trip) {
    char buf[1024], heads[1024], path[512];
    if (!models_present()) SKIP("face models absent (tools/fetch-models.sh)");
    fu_shipped_path(FU_HEADS_DEFAULT, heads, sizeof heads);
    if (!file_exists(heads)) SKIP("models/faceup-heads.safetensors absent");
    (void)buf;
    fu_face_extractor *x = fu_finetune_initial(heads);
    REQUIRE(x);
    /* the fine-tune starts from the heads file's race and attribute heads (trained on many more
     * faces than the fine-tune sees), offsets included */
    fu_heads *file = fu_heads_load(heads);
    REQUIRE(file);
    CHECK(!memcmp(x->heads->race.w[1]->data, file->race.w[1]->data, (size_t)file->race.w[1]->numel * sizeof(float)));
    CHECK(!memcmp(x->heads->attr.w[0]->data, file->attr.w[0]->data, (size_t)file->attr.w[0]->numel * sizeof(float)));
    CHECK(!memcmp(x->heads->race_logit_bias, file->race_logit_bias, sizeof file->race_logit_bias));
    fu_heads_free(file);
    snprintf(path, sizeof path, "%s/ext16.safetensors", fu_test_tmpdir());
    REQUIRE(fu_face_extractor_save(x, path, FU_F16, NULL, 0, NULL, 0) == FU_OK);
    fu_face_extractor *y = fu_face_extractor_load(path);
    REQUIRE(y);
    double worst = 0;
    for (int i = 0; i < fu_dlib_resnet_n_params(x->net); i++) {
        const fu_tensor *p = fu_dlib_resnet_param(x->net, i), *q = fu_dlib_resnet_param(y->net, i);
        for (int64_t k = 0; k < p->numel; k++) {
            double e = fabs(p->data[k] - q->data[k]) / (fabs(p->data[k]) + 1e-4);
            if (e > worst) worst = e;
        }
    }
    CHECK_MSG(worst < 1e-3, "worst relative F16 error %g", worst);
    CHECK(y->comparer->data[0] == x->comparer->data[0] && y->comparer->data[1] == x->comparer->data[1]);
    /* a heads file is not an extractor */
    CHECK(fu_face_extractor_load(heads) == NULL);
    CHECK(strstr(fu_last_error(), "backbone.") != NULL);
    fu_face_extractor_free(x);
    fu_face_extractor_free(y);
}

/* ------------------------------------------------------------------ command line */

TEST(cli_eval_extractor_json_and_bad_inputs) {
    if (access(getenv("FACEUP_BIN") ? getenv("FACEUP_BIN") : "build/faceup", X_OK) != 0) SKIP("faceup binary not built");
    TINY_DATA_OR_SKIP(path);
    char ext[512], args[4096], lfw[1024], bogus[512];
    static char out[1 << 18], err[8192];
    snprintf(ext, sizeof ext, "%s/ft_cli.safetensors", fu_test_tmpdir());
    snprintf(lfw, sizeof lfw, "%s/data/lfw", fu_test_shared_dir());
    snprintf(args, sizeof args, "train finetune --data %s --out %s --steps 3 --batch 2 --pairs 1 --threads 1 --quiet", path, ext);
    REQUIRE(run_faceup(args, out, sizeof out, err, sizeof err) == 0);
    /* the embedding cache goes to the test folder, not the user's */
    char cache_dir[600], *saved = getenv("FACEUP_CACHE") ? strdup(getenv("FACEUP_CACHE")) : NULL;
    snprintf(cache_dir, sizeof cache_dir, "%s/cache", fu_test_tmpdir());
    setenv("FACEUP_CACHE", cache_dir, 1);
    snprintf(args, sizeof args, "eval extractor --data %s --extractor %s --lfw %s --max-pairs 20 --threads 1", path, ext, lfw);
    int status = run_faceup(args, out, sizeof out, err, sizeof err);
    if (saved) setenv("FACEUP_CACHE", saved, 1);
    else unsetenv("FACEUP_CACHE");
    free(saved);
    REQUIRE(status == 0);
    cJSON *j = cJSON_Parse(out);
    REQUIRE(j);
    cJSON *before = cJSON_GetObjectItem(j, "before"), *after = cJSON_GetObjectItem(j, "after");
    REQUIRE(before && after && cJSON_GetObjectItem(j, "verdict"));
    double acc = cJSON_GetObjectItem(cJSON_GetObjectItem(after, "lfw"), "accuracy")->valuedouble;
    CHECK(acc > 0.6 && acc <= 1);
    CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(after, "lfw"), "pairs")->valueint == 20);
    CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(after, "attributes"), "per_attribute"), "Smiling") != NULL);
    CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(before, "lookalike"), "faces")->valueint == 2);
    CHECK(strstr(err, "lfw (after)") != NULL);   /* progress went to stderr (a fresh cache: embedded) */
    cJSON_Delete(j);
    /* bad inputs: exit 2 with a one-line message naming the problem */
    snprintf(bogus, sizeof bogus, "%s/not_data.bin", fu_test_tmpdir());
    REQUIRE(fu_write_file_atomic(bogus, "garbage", 7) == FU_OK);
    snprintf(args, sizeof args, "eval extractor --data %s --extractor %s --no-lfw", bogus, ext);
    CHECK(run_faceup(args, out, sizeof out, err, sizeof err) == 2);
    CHECK(strstr(err, "not_data.bin") != NULL && count_newlines(err) == 1);
    snprintf(args, sizeof args, "eval extractor --data %s --extractor %s --no-lfw", path, bogus);
    CHECK(run_faceup(args, out, sizeof out, err, sizeof err) == 2);
    CHECK(strstr(err, "not_data.bin") != NULL);
    CHECK(run_faceup("eval extractor --extractor x", out, sizeof out, err, sizeof err) == 2);
    snprintf(args, sizeof args, "train finetune --data %s --out %s --batch 0", path, ext);
    CHECK(run_faceup(args, out, sizeof out, err, sizeof err) == 2);
    snprintf(args, sizeof args, "train finetune --data %s --out %s/none/x.safetensors --resume", path, fu_test_tmpdir());
    CHECK(run_faceup(args, out, sizeof out, err, sizeof err) == 2);
    CHECK(strstr(err, "ckpt") != NULL);
}

TEST(cli_upscale_uses_extractor_file) {
    char heads[1024], ext[512], args[4096], thumb[1024], outp[512], bogus[512];
    static char out[1 << 18], err[8192];
    if (access(getenv("FACEUP_BIN") ? getenv("FACEUP_BIN") : "build/faceup", X_OK) != 0) SKIP("faceup binary not built");
    if (!models_present()) SKIP("face models absent (tools/fetch-models.sh)");
    fu_shipped_path(FU_HEADS_DEFAULT, heads, sizeof heads);
    fu_shipped_path("examples/thumb16.png", thumb, sizeof thumb);
    if (!file_exists(heads) || !file_exists(thumb)) SKIP("models/faceup-heads.safetensors or examples/thumb16.png absent");
    /* the starting point saved as an extractor file (comparer slope changed, as a trained one would be) */
    fu_face_extractor *x = fu_finetune_initial(heads);
    REQUIRE(x);
    x->comparer->data[1] = 5.0f;
    snprintf(ext, sizeof ext, "%s/ext_upscale.safetensors", fu_test_tmpdir());
    REQUIRE(fu_face_extractor_save(x, ext, FU_F16, NULL, 0, NULL, 0) == FU_OK);
    fu_face_extractor_free(x);
    snprintf(outp, sizeof outp, "%s/up_ext.png", fu_test_tmpdir());
    snprintf(args, sizeof args, "upscale %s -o %s --race white --steps 2 --extractor %s --json --quiet --threads 1", thumb, outp, ext);
    REQUIRE(run_faceup(args, out, sizeof out, err, sizeof err) <= 1);
    cJSON *j = cJSON_Parse(out), *nets = cJSON_GetObjectItem(j, "face_networks");
    CHECK(j != NULL && strstr(out, "\"race\"") != NULL);
    CHECK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(nets, "extractor")) ? cJSON_GetStringValue(cJSON_GetObjectItem(nets, "extractor")) : "", ext));
    CHECK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(nets, "comparer")) ? cJSON_GetStringValue(cJSON_GetObjectItem(nets, "comparer")) : "", "calibrated"));
    cJSON_Delete(j);
    /* a file that is not an extractor, and contradicting flags, are refused */
    snprintf(bogus, sizeof bogus, "%s/ext_bogus.safetensors", fu_test_tmpdir());
    REQUIRE(fu_write_file_atomic(bogus, "nothing", 7) == FU_OK);
    snprintf(args, sizeof args, "upscale %s -o %s --race white --steps 2 --extractor %s --quiet", thumb, outp, bogus);
    CHECK(run_faceup(args, out, sizeof out, err, sizeof err) == 2);
    CHECK(strstr(err, "ext_bogus.safetensors") != NULL);
    snprintf(args, sizeof args, "upscale %s -o %s --race white --steps 2 --extractor %s --no-extractor --quiet", thumb, outp, ext);
    CHECK(run_faceup(args, out, sizeof out, err, sizeof err) == 2);
    snprintf(args, sizeof args, "upscale %s -o %s --race white --steps 2 --no-extractor --comparer learnt --quiet", thumb, outp);
    CHECK(run_faceup(args, out, sizeof out, err, sizeof err) == 2 && strstr(err, "--comparer") && count_newlines(err) == 1);
    snprintf(args, sizeof args, "upscale %s -o %s --race white --steps 2 --extractor %s --heads %s --quiet", thumb, outp, ext, heads);
    CHECK(run_faceup(args, out, sizeof out, err, sizeof err) == 2 && strstr(err, "--heads") && count_newlines(err) == 1);
}

/* Links UTKFace image `name` as ids/<person>/<k>.jpg. */
static int link_face(const char *shared, const char *ids, const char *person, int k, const char *name) {
    char dir[1024], rel[1024], src[PATH_MAX], dst[1200];
    snprintf(dir, sizeof dir, "%s/%s", ids, person);
    mkdir(ids, 0700);
    mkdir(dir, 0700);
    snprintf(rel, sizeof rel, "%s/data/utkface/images/%s", shared, name);
    if (!realpath(rel, src)) return -1;   /* a relative ../shared would dangle from inside ids/ */
    snprintf(dst, sizeof dst, "%s/%d.jpg", dir, k);
    unlink(dst);
    return symlink(src, dst);
}

TEST(finetune_arcface_term_with_identity_folders) {
    TINY_DATA_OR_SKIP(path);
    /* two made-up "identities" of two UTKFace photos each (the mechanics only: UTKFace has no
     * identity labels) */
    static const char *const files[4] = {"100_1_2_20170105174847679.jpg.chip.jpg", "10_0_0_20170110220255346.jpg.chip.jpg",
                                         "1_0_0_20161219140623097.jpg.chip.jpg", "20_1_0_20170103163040136.jpg.chip.jpg"};
    char ids[512], src[1200];
    snprintf(ids, sizeof ids, "%s/finetune_ids", fu_test_tmpdir());
    for (int k = 0; k < 4; k++) {
        snprintf(src, sizeof src, "%s/data/utkface/images/%s", fu_test_shared_dir(), files[k]);
        if (!file_exists(src)) SKIP("UTKFace sample images absent");
        REQUIRE(link_face(fu_test_shared_dir(), ids, k < 2 ? "person_a" : "person_b", k, files[k]) == 0);
    }
    fu_xdata d;
    REQUIRE(fu_xdata_load(path, &d) == FU_OK);
    char out[512];
    snprintf(out, sizeof out, "%s/ft_ids.safetensors", fu_test_tmpdir());
    fu_finetune_config c = tiny_config(out, 4);
    c.ids = ids, c.id_batch = 2;
    fu_finetune_report rep;
    REQUIRE(fu_finetune_run(&d, &c, &rep, NULL, NULL) == FU_OK);
    CHECK(rep.n_ids == 2 && rep.n_id_faces >= 3);
    CHECK(rep.first.arcface > 0 && isfinite(rep.first.arcface));
    /* resuming without the identity folder is another run */
    c.ids = NULL, c.steps = 6, c.resume = 1;
    CHECK(fu_finetune_run(&d, &c, &rep, NULL, NULL) == FU_E_INPUT);
    fu_xdata_free(&d);
    /* the command line refuses a folder named after an LFW person (the shared LFW, found by
     * default) with exit 2 and one line */
    char lfw_people[512], lfw_person[1400], args[4096];
    static char outs[1 << 16], errs[8192];
    snprintf(lfw_people, sizeof lfw_people, "%s/finetune_ids_lfw", fu_test_tmpdir());
    snprintf(lfw_person, sizeof lfw_person, "%s/data/lfw/images/Aaron_Eckhart", fu_test_shared_dir());
    if (!file_exists(lfw_person) || access(getenv("FACEUP_BIN") ? getenv("FACEUP_BIN") : "build/faceup", X_OK) != 0) return;
    REQUIRE(link_face(fu_test_shared_dir(), lfw_people, "Aaron_Eckhart", 0, files[0]) == 0);
    REQUIRE(link_face(fu_test_shared_dir(), lfw_people, "person_b", 1, files[1]) == 0);
    snprintf(args, sizeof args, "train finetune --data %s --out %s --ids %s --steps 1 --quiet", path, out, lfw_people);
    CHECK(run_faceup(args, outs, sizeof outs, errs, sizeof errs) == 2);
    CHECK(strstr(errs, "Aaron_Eckhart") && strstr(errs, "LFW") && count_newlines(errs) == 1);
}

static double json_num(cJSON *o, const char *a, const char *b, const char *c) {
    cJSON *x = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(o, a), b), c);
    return x ? x->valuedouble : NAN;
}

TEST(cli_train_race_offsets_heads_and_extractor) {
    if (access(getenv("FACEUP_BIN") ? getenv("FACEUP_BIN") : "build/faceup", X_OK) != 0) SKIP("faceup binary not built");
    TINY_DATA_OR_SKIP(path);
    char heads[1024], out[512], ext[512], args[4096], bogus[512];
    static char outs[1 << 16], errs[8192];
    fu_shipped_path(FU_HEADS_DEFAULT, heads, sizeof heads);
    snprintf(out, sizeof out, "%s/heads_offsets.safetensors", fu_test_tmpdir());
    snprintf(args, sizeof args, "train race-offsets --data %s --heads %s --out %s --threads 1", path, heads, out);
    REQUIRE(run_faceup(args, outs, sizeof outs, errs, sizeof errs) == 0);
    cJSON *j = cJSON_Parse(outs);
    REQUIRE(j);
    CHECK(!strcmp(cJSON_GetObjectItem(j, "kind")->valuestring, "heads"));
    cJSON *offsets = cJSON_GetObjectItem(j, "offsets");
    REQUIRE(cJSON_GetArraySize(offsets) == FU_RACE_CLASSES);
    /* the fit never makes the val split's worst class worse; the file holds the offsets */
    CHECK(json_num(j, "val", "after", "worst_margin") >= json_num(j, "val", "before", "worst_margin"));
    CHECK(cJSON_GetObjectItem(j, "test") != NULL);   /* null when the tiny file has no UTKFace test face */
    fu_heads *h = fu_heads_load(out);
    REQUIRE(h);
    for (int c = 0; c < FU_RACE_CLASSES; c++) CHECK_NEAR(h->race_logit_bias[c], cJSON_GetArrayItem(offsets, c)->valuedouble, 1e-6);
    fu_heads_free(h);
    cJSON_Delete(j);
    /* --folds: the race head is retrained (the file's weights change) and the offsets are fitted
     * on the train faces' out-of-fold logits (the tiny file: 4 per class, some without a detection, so 2 folds) */
    snprintf(args, sizeof args, "train race-offsets --data %s --heads %s --out %s --folds 2 --threads 1", path, heads, out);
    int folds_rc = run_faceup(args, outs, sizeof outs, errs, sizeof errs);
    CHECK_MSG(folds_rc == 0, "%s", errs);
    REQUIRE(folds_rc == 0);
    j = cJSON_Parse(outs);
    REQUIRE(j);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(j, "head_retrained")));
    cJSON *folds = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "fit"), "folds");
    CHECK(folds && folds->valuedouble == 2);
    CHECK(json_num(j, "fit", "offsets", "balanced") >= 0);
    fu_heads *old = fu_heads_load(heads), *refit = fu_heads_load(out);
    REQUIRE(old && refit);
    CHECK(memcmp(old->race.w[0]->data, refit->race.w[0]->data, (size_t)old->race.w[0]->numel * sizeof(float)) != 0);
    CHECK(memcmp(old->attr.w[0]->data, refit->attr.w[0]->data, (size_t)old->attr.w[0]->numel * sizeof(float)) == 0);
    fu_heads_free(old);
    fu_heads_free(refit);
    cJSON_Delete(j);
    snprintf(args, sizeof args, "train race-offsets --data %s --heads %s --out %s --folds 1", path, heads, out);
    CHECK(run_faceup(args, outs, sizeof outs, errs, sizeof errs) == 2);
    /* an extractor file keeps its backbone (F16 round trip) and gains the offsets */
    fu_face_extractor *x = fu_finetune_initial(heads);
    REQUIRE(x);
    snprintf(ext, sizeof ext, "%s/ext_offsets_in.safetensors", fu_test_tmpdir());
    REQUIRE(fu_face_extractor_save(x, ext, FU_F16, NULL, 0, NULL, 0) == FU_OK);
    fu_face_extractor_free(x);
    snprintf(out, sizeof out, "%s/ext_offsets.safetensors", fu_test_tmpdir());
    snprintf(args, sizeof args, "train race-offsets --data %s --heads %s --out %s --threads 1", path, ext, out);
    REQUIRE(run_faceup(args, outs, sizeof outs, errs, sizeof errs) == 0);
    j = cJSON_Parse(outs);
    REQUIRE(j);
    CHECK(!strcmp(cJSON_GetObjectItem(j, "kind")->valuestring, "extractor"));
    fu_face_extractor *back = fu_face_extractor_load(out);
    REQUIRE(back);
    CHECK_NEAR(back->heads->race_logit_bias[4], cJSON_GetArrayItem(cJSON_GetObjectItem(j, "offsets"), 4)->valuedouble, 1e-6);
    fu_face_extractor_free(back);
    cJSON_Delete(j);
    /* bad inputs: exit 2, one line naming the file */
    snprintf(bogus, sizeof bogus, "%s/offsets_bogus.bin", fu_test_tmpdir());
    REQUIRE(fu_write_file_atomic(bogus, "garbage", 7) == FU_OK);
    snprintf(args, sizeof args, "train race-offsets --data %s --heads %s --out %s", bogus, heads, out);
    CHECK(run_faceup(args, outs, sizeof outs, errs, sizeof errs) == 2);
    CHECK(strstr(errs, "offsets_bogus.bin") != NULL && count_newlines(errs) == 1);
    snprintf(args, sizeof args, "train race-offsets --data %s --heads %s --out %s", path, bogus, out);
    CHECK(run_faceup(args, outs, sizeof outs, errs, sizeof errs) == 2);
    CHECK(run_faceup("train race-offsets --out x", outs, sizeof outs, errs, sizeof errs) == 2);
}
