/* PyTorch checkpoint reader: the restricted pickle machine, the fixtures of tests/fixtures/pt
 * (made by make_fixtures.py with torch; values are arange formulas recomputed here), hostile and
 * damaged files, and the real golden checkpoints (sums computed independently with torch). */
#include "test.h"
#include "io/pt.h"
#include "io/pickle.h"
#include "io/zip.h"
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FIXTURES "tests/fixtures/pt/"
#define PWN_MARKER "/tmp/faceup_pt_pwned"

static fu_pt_file *load_fixture(const char *name) {
    char path[256];
    snprintf(path, sizeof path, FIXTURES "%s", name);
    fu_pt_file *f = NULL;
    if (fu_pt_load(path, &f) != FU_OK) return NULL;
    return f;
}

/* Loads a fixture that must fail; returns 1 when it failed with a message containing `want`. */
static int refused_with(const char *name, const char *want) {
    char path[256];
    snprintf(path, sizeof path, FIXTURES "%s", name);
    fu_pt_file *f = (fu_pt_file *)1;
    int rc = fu_pt_load(path, &f);
    int ok = rc != FU_OK && f == NULL && strstr(fu_last_error(), want) && strstr(fu_last_error(), name);
    if (!ok) printf("    %s: rc %d, message '%s' (wanted '%s')\n", name, rc, fu_last_error(), want);
    if (rc == FU_OK) fu_pt_free(f);
    return ok;
}

/* Checks tensor `name` has the given shape and values. */
static void check_tensor(const fu_pt_file *f, const char *name, int ndim, const int64_t *shape, const float *want, int64_t n) {
    fu_tensor *t = fu_pt_get(f, name);
    CHECK_MSG(t != NULL, "%s: %s", name, fu_last_error());
    if (!t) return;
    CHECK_MSG(t->ndim == ndim && t->numel == n, "%s: ndim %d numel %lld", name, t->ndim, (long long)t->numel);
    for (int d = 0; d < ndim && d < t->ndim; d++) CHECK_MSG(t->shape[d] == shape[d], "%s: dim %d is %lld", name, d, (long long)t->shape[d]);
    for (int64_t i = 0; i < n && i < t->numel; i++)
        CHECK_MSG(t->data[i] == want[i], "%s[%lld] = %g, expected %g", name, (long long)i, t->data[i], want[i]);
    fu_tensor_free(t);
}

/* ---- pickle machine ------------------------------------------------------------------------ */

#define PK(lit) lit, sizeof(lit) - 1

static int run_pickle(const char *bytes, size_t n, fu_pk_value **out, fu_pickle **pk) {
    fu_pk_hooks none = {0};
    return fu_pickle_load(bytes, n, "t.pkl", &none, pk, out);
}

TEST(pickle_values_and_limits) {
    /* [1, -1 (BININT), -1 (LONG1), 1.5 (BINFLOAT), 'ab', (True, None), {2: 3}], via memo and APPENDS */
    static const char ok[] = "\x80\x02]q\x00(K\x01J\xff\xff\xff\xff\x8a\x01\xffG?\xf8\x00\x00\x00\x00\x00\x00"
                             "X\x02\x00\x00\x00" "ab\x88N\x86}K\x02K\x03se.";
    fu_pickle *pk;
    fu_pk_value *v;
    REQUIRE(run_pickle(PK(ok), &v, &pk) == FU_OK);
    REQUIRE(v->kind == FU_PK_LIST && v->n == 7);
    CHECK(v->items[0]->i == 1 && v->items[1]->i == -1 && v->items[2]->i == -1);
    CHECK(v->items[3]->kind == FU_PK_FLOAT && v->items[3]->f == 1.5);
    CHECK(v->items[4]->kind == FU_PK_STR && strcmp(v->items[4]->s, "ab") == 0);
    CHECK(v->items[5]->kind == FU_PK_TUPLE && v->items[5]->n == 2 && v->items[5]->items[0]->kind == FU_PK_BOOL);
    CHECK(v->items[6]->kind == FU_PK_DICT && v->items[6]->n == 1 && v->items[6]->items[1]->i == 3);
    fu_pickle_free(pk);

    struct { const char *bytes; size_t n; const char *msg; } bad[] = {
        {PK("\x80\x02h\x05."), "memo key not found"},
        {PK("\x80\x02t."), "no MARK"},
        {PK("\x80\x02" "0."), "stack underflow"},
        {PK("K\x01(0."), "stack underflow"}, /* a pop may not cross a MARK */
        {PK("\x80\x02K\x01"), "no STOP"},
        {PK("\x80\x02X\xff\xff\xff\x7f"), "string too long"},
        {PK("\x80\x02X\x05\x00\x00\x00" "ab"), "truncated"},
        {PK("\x80\x02\x8a\x09" "123456789."), "wider than 64 bits"},
        {PK("\x80\x02I1\n."), "unsupported opcode"},
        {PK("\x80\x02K\x01K\x02R."), "not an allowed global"},
        {PK("\x80\x02" "cos\nsystem\n."), "refusing pickle global 'os.system'"},
        {PK("\x80\x02r\xff\xff\xff\x7f."), "stack underflow"},
        {PK("\x80\x02K\x01r\xff\xff\xff\x7f."), "memo key too large"},
        {PK("\x80\x02K\x01r\x00\x20\x00\x00."), "memo key far beyond"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = run_pickle(bad[i].bytes, bad[i].n, &v, &pk);
        CHECK_MSG(rc != FU_OK && v == NULL && strstr(fu_last_error(), bad[i].msg), "case %zu: rc %d '%s'", i, rc, fu_last_error());
        fu_pickle_free(pk);
    }
    /* Nesting limit: 5000 MARKs. */
    char *marks = malloc(5001);
    REQUIRE(marks);
    memset(marks, '(', 5000);
    marks[5000] = '.';
    CHECK(run_pickle(marks, 5001, &v, &pk) != FU_OK && strstr(fu_last_error(), "too many nested MARKs"));
    fu_pickle_free(pk);
    free(marks);
}

/* ---- fixtures ------------------------------------------------------------------------------ */

static void check_dtypes_file(const char *file) {
    fu_pt_file *f = load_fixture(file);
    REQUIRE(f);
    static const char *names[] = {"f32", "f16", "bf16", "f64", "i64", "i32", "u8", "bool"};
    static const fu_dtype types[] = {FU_F32, FU_F16, FU_BF16, FU_F64, FU_I64, FU_I32, FU_U8, FU_BOOL};
    REQUIRE(fu_pt_count(f) == 8);
    for (size_t i = 0; i < 8; i++) {
        CHECK_MSG(strcmp(fu_pt_name(f, i), names[i]) == 0, "entry %zu is '%s'", i, fu_pt_name(f, i));
        CHECK(fu_pt_dtype(f, i) == types[i]);
    }
    const float half_steps[6] = {-1, -0.5f, 0, 0.5f, 1, 1.5f};
    const int64_t s23[2] = {2, 3}, s4[1] = {4}, s2[1] = {2}, s3[1] = {3};
    for (int i = 0; i < 4; i++) check_tensor(f, names[i], 2, s23, half_steps, 6);
    check_tensor(f, "i64", 1, s4, (const float[]){-3, 0, 7, 1099511627776.0f}, 4);
    check_tensor(f, "i32", 1, s2, (const float[]){-5, 6}, 2);
    check_tensor(f, "u8", 1, s3, (const float[]){0, 200, 255}, 3);
    check_tensor(f, "bool", 1, s3, (const float[]){1, 0, 1}, 3);
    fu_pt_free(f);
}

TEST(pt_dtypes_convert_to_float32) { check_dtypes_file("dtypes.pt"); }

/* The same records written by Python's zipfile: classic end record, sizes in local headers. */
TEST(pt_plain_zip_reads_like_torch_zip) { check_dtypes_file("plain_zip.pt"); }

TEST(pt_strided_views_and_scalars_materialise) {
    fu_pt_file *f = load_fixture("views.pt");
    REQUIRE(f);
    REQUIRE(fu_pt_count(f) == 9);
    float base[12], transposed[12];
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 4; c++) base[r * 4 + c] = transposed[c * 3 + r] = (float)(4 * r + c);
    check_tensor(f, "base", 2, (const int64_t[]){3, 4}, base, 12);
    check_tensor(f, "t", 2, (const int64_t[]){4, 3}, transposed, 12);
    check_tensor(f, "view", 2, (const int64_t[]){2, 2}, (const float[]){5, 6, 9, 10}, 4);
    check_tensor(f, "row", 1, (const int64_t[]){4}, (const float[]){8, 9, 10, 11}, 4);
    check_tensor(f, "every_other", 2, (const int64_t[]){3, 2}, (const float[]){0, 2, 4, 6, 8, 10}, 6);
    check_tensor(f, "elem", 0, NULL, (const float[]){6}, 1);
    check_tensor(f, "scalar", 0, NULL, (const float[]){3.5f}, 1);
    check_tensor(f, "empty", 2, (const int64_t[]){0, 3}, NULL, 0);
    check_tensor(f, "expanded", 2, (const int64_t[]){3, 2}, (const float[]){1, 2, 1, 2, 1, 2}, 6);
    fu_pt_free(f);
}

TEST(pt_nested_dicts_flatten_to_dotted_names) {
    fu_pt_file *f = load_fixture("nested.pt");
    REQUIRE(f);
    static const char *names[] = {"g_ema.conv1.weight", "g_ema.to_rgb.bias", "latent_avg", "extra.0"};
    REQUIRE(fu_pt_count(f) == 4); /* the int, str, float and None leaves are skipped */
    for (size_t i = 0; i < 4; i++) CHECK_MSG(strcmp(fu_pt_name(f, i), names[i]) == 0, "entry %zu is '%s'", i, fu_pt_name(f, i));
    check_tensor(f, "g_ema.conv1.weight", 2, (const int64_t[]){2, 2}, (const float[]){0, 1, 2, 3}, 4);
    check_tensor(f, "g_ema.to_rgb.bias", 1, (const int64_t[]){3}, (const float[]){10, 11, 12}, 3);
    check_tensor(f, "latent_avg", 1, (const int64_t[]){4}, (const float[]){0, -1, -2, -3}, 4);
    check_tensor(f, "extra.0", 1, (const int64_t[]){3}, (const float[]){1, 2, 3}, 3);
    CHECK(fu_pt_find(f, "g_ema") == -1 && fu_pt_find(f, "step") == -1);
    fu_pt_free(f);
}

TEST(pt_module_state_dict_and_parameter) {
    fu_pt_file *f = load_fixture("module.pt");
    REQUIRE(f);
    CHECK(fu_pt_count(f) == 7);
    float w[54];
    for (int i = 0; i < 54; i++) w[i] = (float)i / 10;
    check_tensor(f, "0.weight", 4, (const int64_t[]){3, 2, 3, 3}, w, 54);
    check_tensor(f, "0.bias", 1, (const int64_t[]){3}, (const float[]){-1, 0, 1}, 3);
    check_tensor(f, "1.running_mean", 1, (const int64_t[]){3}, (const float[]){0.25f, 0.25f, 0.25f}, 3);
    check_tensor(f, "1.running_var", 1, (const int64_t[]){3}, (const float[]){1, 1, 1}, 3);
    check_tensor(f, "1.num_batches_tracked", 0, NULL, (const float[]){5}, 1);
    CHECK(fu_pt_dtype(f, (size_t)fu_pt_find(f, "1.num_batches_tracked")) == FU_I64);
    fu_pt_free(f);
    f = load_fixture("param.pt");
    REQUIRE(f);
    check_tensor(f, "p", 1, (const int64_t[]){2}, (const float[]){1, 2}, 2);
    fu_pt_free(f);
}

TEST(pt_refuses_pickles_that_would_run_code) {
    unlink(PWN_MARKER);
    CHECK(refused_with("hostile_os_system.pt", "refusing pickle global 'os.system' (loading never runs code)"));
    CHECK(refused_with("hostile_posix_system.pt", "'posix.system'"));
    CHECK(refused_with("hostile_eval.pt", "'builtins.eval'"));
    CHECK(refused_with("whole_module.pt", "'torch.nn.modules.linear.Linear'"));
    CHECK_MSG(access(PWN_MARKER, F_OK) != 0, "%s exists: a hostile pickle ran", PWN_MARKER);
}

TEST(pt_rejects_damaged_archives) {
    CHECK(refused_with("truncated.pt", "truncated"));
    CHECK(refused_with("bad_central_dir.pt", "central directory"));
    CHECK(refused_with("bad_central_sig.pt", "central directory"));
    CHECK(refused_with("deflated.pt", "deflate"));
    CHECK(refused_with("bad_crc.pt", "CRC"));
    CHECK(refused_with("legacy.pt", "legacy (pre-1.6)"));
    CHECK(refused_with("missing_storage.pt", "storage '9' is missing"));
    CHECK(refused_with("oversized_view.pt", "exceeds its storage of 4 elements"));
    CHECK(refused_with("offset_view.pt", "exceeds its storage of 4 elements"));
    CHECK(refused_with("short_storage.pt", "claims 8 elements"));
    CHECK(refused_with("dag_bomb.pt", "too many objects"));
    CHECK(refused_with("huge_expand.pt", "expanded from a storage of 4 elements"));
    CHECK(refused_with("no_such_file.pt", "cannot open"));
    fu_pt_file *f = (fu_pt_file *)1;
    CHECK(fu_pt_load_memory("", 0, "empty.pt", &f) != FU_OK && f == NULL && strstr(fu_last_error(), "empty.pt"));
    CHECK(fu_pt_load_memory(PK("PK\x05\x06 garbage that is not a zip"), "junk.pt", &f) != FU_OK && f == NULL);
}

TEST(pt_api_lookups) {
    fu_pt_file *f = load_fixture("views.pt");
    REQUIRE(f);
    CHECK(fu_pt_get(f, "nope") == NULL && strstr(fu_last_error(), "no tensor named 'nope'"));
    CHECK(fu_pt_get_index(f, 9) == NULL);
    CHECK(fu_pt_name(f, 9) == NULL);
    int64_t shape[FU_MAX_DIMS];
    CHECK(fu_pt_shape(f, 9, shape) == -1);
    CHECK(fu_pt_shape(f, (size_t)fu_pt_find(f, "t"), shape) == 2 && shape[0] == 4 && shape[1] == 3);
    fu_tensor *t = fu_pt_get(f, "row");
    REQUIRE(t);
    CHECK(strcmp(t->name, "row") == 0 && t->owns_memory && t->node == NULL);
    fu_tensor_free(t);
    fu_pt_free(f);
    fu_pt_free(NULL);
}

/* Every truncation and many single-byte corruptions of a valid file load or fail cleanly
 * (the value of this test is in the ASan build). */
TEST(pt_survives_truncation_and_corruption) {
    FILE *fp = fopen(FIXTURES "views.pt", "rb");
    REQUIRE(fp);
    static unsigned char buf[4096], copy[4096];
    size_t n = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    REQUIRE(n > 0 && n < sizeof buf);
    int loaded = 0;
    for (size_t len = 0; len < n; len++) {
        fu_pt_file *f;
        if (fu_pt_load_memory(buf, len, "cut.pt", &f) == FU_OK) { loaded++; fu_pt_free(f); }
    }
    CHECK(loaded == 0);
    unsigned state = 12345;
    for (int iter = 0; iter < 3000; iter++) {
        memcpy(copy, buf, n);
        for (int k = 0; k < 1 + iter % 3; k++) {
            state = state * 1103515245u + 12345u;
            copy[(state >> 8) % n] ^= (unsigned char)(1u << ((state >> 4) & 7));
        }
        fu_pt_file *f;
        if (fu_pt_load_memory(copy, n, "flip.pt", &f) == FU_OK) {
            for (size_t i = 0; i < fu_pt_count(f); i++) fu_tensor_free(fu_pt_get_index(f, i));
            fu_pt_free(f);
        }
    }
}

/* ---- the real golden checkpoints ------------------------------------------------------------ */

static fu_pt_file *load_golden(const char *model, char *dir, size_t n) {
    const char *shared = fu_test_shared_dir();
    if (!shared) return NULL;
    snprintf(dir, n, "%s/golden/%s", shared, model);
    char path[1100];
    snprintf(path, sizeof path, "%s/weights.pt", dir);
    if (access(path, R_OK) != 0) return NULL;
    fu_pt_file *f = NULL;
    CHECK_MSG(fu_pt_load(path, &f) == FU_OK, "%s", fu_last_error());
    return f;
}

/* Sum and absolute sum of every tensor, in double. */
static void file_sums(const fu_pt_file *f, double *sum, double *abs_sum) {
    *sum = *abs_sum = 0;
    for (size_t i = 0; i < fu_pt_count(f); i++) {
        fu_tensor *t = fu_pt_get_index(f, i);
        CHECK(t != NULL);
        for (int64_t j = 0; t && j < t->numel; j++) { *sum += t->data[j]; *abs_sum += fabs(t->data[j]); }
        fu_tensor_free(t);
    }
}

static void check_ends(const fu_pt_file *f, const char *name, int ndim, const int64_t *shape, double sum, float first, float last) {
    fu_tensor *t = fu_pt_get(f, name);
    CHECK_MSG(t != NULL, "%s", fu_last_error());
    if (!t) return;
    int same = t->ndim == ndim;
    for (int d = 0; same && d < ndim; d++) same = t->shape[d] == shape[d];
    CHECK_MSG(same, "%s has the wrong shape", name);
    double s = 0;
    for (int64_t j = 0; j < t->numel; j++) s += t->data[j];
    CHECK_NEAR(s, sum, 1e-9 * fabs(sum) + 1e-9);
    CHECK(t->data[0] == first && t->data[t->numel - 1] == last);
    fu_tensor_free(t);
}

static void check_shape(const fu_pt_file *f, const char *name, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    int64_t want[4] = {d0, d1, d2, d3}, got[FU_MAX_DIMS];
    long i = fu_pt_find(f, name);
    CHECK_MSG(i >= 0, "no %s", name);
    if (i < 0) return;
    int same = fu_pt_shape(f, (size_t)i, got) == ndim;
    for (int d = 0; same && d < ndim; d++) same = got[d] == want[d];
    CHECK_MSG(same, "%s has the wrong shape", name);
}

TEST(pt_golden_stylegan1_state_dict) {
    char dir[1024];
    fu_pt_file *f = load_golden("stylegan1", dir, sizeof dir);
    if (!f) SKIP("golden stylegan1/weights.pt absent");
    CHECK(fu_pt_count(f) == 67);
    CHECK(strcmp(fu_pt_name(f, 0), "torgb.weight") == 0 && strcmp(fu_pt_name(f, 66), "blocks.128x128.epi2.style_mod.lin.bias") == 0);
    /* Reference numbers: torch.load with Debian's python3-torch 1.13, sums in float64. */
    double sum, abs_sum;
    file_sums(f, &sum, &abs_sum);
    CHECK_NEAR(sum, -881.9905701136881, 1e-7);
    CHECK_NEAR(abs_sum, 307877.1806836572, 1e-6);
    check_ends(f, "torgb.weight", 4, (const int64_t[]){3, 8, 1, 1}, -3.6549073550268076, -0.2507445216178894f, -0.9445118308067322f);
    check_ends(f, "blocks.4x4.const", 4, (const int64_t[]){1, 32, 4, 4}, 7.076500130817294, -0.9936801195144653f, -0.2618044316768646f);
    check_ends(f, "blocks.128x128.conv0_up.weight", 4, (const int64_t[]){8, 16, 3, 3}, 5.585709694074467, -0.8419581055641174f, 0.5524700284004211f);
    /* Every weight named in config.json exists; shapes follow its channel table. */
    char path[1100];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *fp = fopen(path, "rb");
    REQUIRE(fp);
    static char text[1 << 16];
    size_t n = fread(text, 1, sizeof text - 1, fp);
    fclose(fp);
    text[n] = 0;
    cJSON *cfg = cJSON_Parse(text);
    REQUIRE(cfg);
    cJSON *mul = cJSON_GetObjectItem(cfg, "runtime_weight_multipliers"), *item;
    int named = 0;
    cJSON_ArrayForEach(item, mul) { CHECK_MSG(fu_pt_find(f, item->string) >= 0, "config names %s", item->string); named++; }
    CHECK(named == 48);
    cJSON *chan = cJSON_GetObjectItem(cfg, "channels_per_resolution");
    for (int r = 8; r <= 128; r *= 2) {
        char key[16], name[96];
        snprintf(key, sizeof key, "%d", r);
        int64_t c = cJSON_GetObjectItem(chan, key)->valueint;
        snprintf(key, sizeof key, "%d", r / 2);
        int64_t cin = cJSON_GetObjectItem(chan, key)->valueint;
        snprintf(name, sizeof name, "blocks.%dx%d.conv1.weight", r, r);
        check_shape(f, name, 4, c, c, 3, 3);
        snprintf(name, sizeof name, "blocks.%dx%d.conv0_up.weight", r, r);
        check_shape(f, name, 4, c, cin, 3, 3);
        snprintf(name, sizeof name, "blocks.%dx%d.epi1.style_mod.lin.weight", r, r);
        check_shape(f, name, 2, 2 * c, 512, 0, 0);
    }
    cJSON_Delete(cfg);
    /* README: the blur buffers hold [1,2,1]x[1,2,1]/16. */
    float blur[9];
    for (int i = 0; i < 9; i++) blur[i] = (float)((i / 3 == 1 ? 2 : 1) * (i % 3 == 1 ? 2 : 1)) / 16;
    check_tensor(f, "blocks.128x128.conv0_up.intermediate.kernel", 4, (const int64_t[]){1, 1, 3, 3}, blur, 9);
    fu_pt_free(f);
}

TEST(pt_golden_stylegan2_nested_g_ema) {
    char dir[1024];
    fu_pt_file *f = load_golden("stylegan2", dir, sizeof dir);
    if (!f) SKIP("golden stylegan2/weights.pt absent");
    CHECK(fu_pt_count(f) == 87);
    for (size_t i = 0; i < fu_pt_count(f); i++) CHECK_MSG(strncmp(fu_pt_name(f, i), "g_ema.", 6) == 0, "%s", fu_pt_name(f, i));
    double sum, abs_sum;
    file_sums(f, &sum, &abs_sum);
    CHECK_NEAR(sum, -8730.730730047733, 1e-6);
    CHECK_NEAR(abs_sum, 739572.4691770319, 1e-5);
    check_ends(f, "g_ema.style.1.weight", 2, (const int64_t[]){64, 64}, -6038.320683231577, 162.7618408203125f, -11.691202163696289f);
    check_ends(f, "g_ema.conv1.conv.weight", 5, (const int64_t[]){1, 32, 32, 3, 3}, -76.49454124420299, -0.046083077788352966f, 1.1967949867248535f);
    check_ends(f, "g_ema.noises.noise_8", 4, (const int64_t[]){1, 1, 64, 64}, -6.043164999020519, 0.4208492338657379f, 0.20334231853485107f);
    check_ends(f, "g_ema.to_rgbs.3.bias", 4, (const int64_t[]){1, 3, 1, 1}, -0.4777199253439903, -0.09782677888870239f, -0.1112809106707573f);
    check_ends(f, "g_ema.input.input", 4, (const int64_t[]){1, 32, 4, 4}, -16.13659096637275, 0.19580666720867157f, -1.0560963153839111f);
    /* README: FIR kernel [1,3,3,1]x[1,3,3,1]/64*4 in every upsampling blur. */
    float k[16];
    for (int i = 0; i < 16; i++) k[i] = (float)((i / 4 % 3 ? 3 : 1) * (i % 4 % 3 ? 3 : 1)) / 16;
    check_tensor(f, "g_ema.convs.0.conv.blur.kernel", 2, (const int64_t[]){4, 4}, k, 16);
    check_tensor(f, "g_ema.to_rgbs.3.upsample.kernel", 2, (const int64_t[]){4, 4}, k, 16);
    fu_pt_free(f);
}
