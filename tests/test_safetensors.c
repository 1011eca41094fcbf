/* safetensors: real files from ../shared/golden, round trips of every dtype, atomic writes, and
 * rejection (with a clear message, never a crash) of malicious or broken files. */
#include "test.h"
#include "util.h"
#include "golden.h"
#include "io/fileutil.h"
#include "io/safetensors.h"
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


/* Number of entries of dir whose name starts with prefix (to spot leftover temporary files). */
TEST(safetensors_real_weights_file) {
    const char *shared = fu_test_shared_dir();
    if (!shared) SKIP("../shared absent");
    char path[1024];
    snprintf(path, sizeof path, "%s/golden/stylegan1/weights.safetensors", shared);
    if (!file_exists(path)) SKIP("stylegan1 weights absent");
    fu_safetensors *st = fu_st_open(path);
    REQUIRE(st);
    CHECK(st->n_entries > 20);
    CHECK(fu_st_meta_get(st, "format") && !strcmp(fu_st_meta_get(st, "format"), "pt"));
    const fu_st_entry *e = fu_st_find(st, "blocks.128x128.conv0_up.weight");
    REQUIRE(e);
    CHECK(e->dtype == FU_F32 && e->ndim == 4 && e->shape[0] == 8 && e->shape[1] == 16 && e->shape[2] == 3 && e->numel == 1152);
    CHECK(e->begin == 68 && e->end == 4676);
    /* The blur kernel buffers always hold [1,2,1]x[1,2,1]/16 (golden README). */
    fu_tensor *k = fu_st_tensor(st, "blocks.128x128.conv0_up.intermediate.kernel");
    REQUIRE(k);
    CHECK(k->numel == 9 && k->data[0] == 1.0f / 16 && k->data[4] == 4.0f / 16 && k->data[5] == 2.0f / 16);
    CHECK(!strcmp(k->name, "blocks.128x128.conv0_up.intermediate.kernel") || strlen(k->name) == sizeof k->name - 1);
    CHECK(fu_st_tensor(st, "no.such.tensor") == NULL && strstr(fu_last_error(), "no.such.tensor"));
    for (int i = 1; i < st->n_entries; i++) CHECK(strcmp(st->entries[i - 1].name, st->entries[i].name) < 0);
    fu_tensor_free(k);
    fu_st_free(st);
}

TEST(safetensors_goldens_match_npy) {
    const char *shared = fu_test_shared_dir();
    if (!shared) SKIP("../shared absent");
    char path[1024];
    snprintf(path, sizeof path, "%s/golden/stylegan1/goldens.safetensors", shared);
    if (!file_exists(path)) SKIP("stylegan1 goldens absent");
    fu_safetensors *st = fu_st_open(path);
    REQUIRE(st);
    int compared = 0;
    for (int i = 0; i < st->n_entries; i++) {
        fu_tensor *npy = golden_load("stylegan1", st->entries[i].name);
        if (!npy) continue;
        fu_tensor *t = fu_st_tensor(st, st->entries[i].name);
        REQUIRE(t);
        CHECK_MSG(t->ndim == npy->ndim && fu_same_shape(t, npy) && golden_max_diff(t, npy) == 0,
                  "%s differs from its .npy", st->entries[i].name);
        compared++;
        fu_tensor_free(t);
        fu_tensor_free(npy);
    }
    CHECK(compared > 10);
    fu_tensor *img = fu_st_tensor(st, "image");
    REQUIRE(img);
    CHECK(img->ndim == 4 && img->shape[1] == 3 && img->shape[3] == 128);
    fu_tensor_free(img);
    fu_st_free(st);
}

/* Every dtype written, read back and compared exactly with the value the dtype can hold. */
TEST(safetensors_roundtrip_every_dtype) {
    const float values[] = {0, 1, -2, 3, 100, -7, 42, 0.5f, -0.25f, 65504, 1e-3f, 3.14159f};
    const int n_values = 12;
    fu_tensor *t[FU_DTYPE_COUNT];
    fu_st_item items[FU_DTYPE_COUNT];
    char names[FU_DTYPE_COUNT][32];
    for (int d = 0; d < FU_DTYPE_COUNT; d++) {
        t[d] = fu_tensor_newv(3, (int64_t)2, (int64_t)3, (int64_t)2);
        REQUIRE(t[d]);
        for (int i = 0; i < n_values; i++) {
            float v = values[i];
            if (d == FU_U8 || d == FU_BOOL) v = fabsf(v);
            if (d == FU_I8 || d == FU_U8 || d == FU_BOOL) v = fminf(v, 100);
            if (d == FU_I16) v = fminf(v, 30000);
            t[d]->data[i] = v;
        }
        snprintf(names[d], sizeof names[d], "t_%s", fu_dtype_name((fu_dtype)d));
        items[d] = (fu_st_item){names[d], t[d], (fu_dtype)d};
    }
    fu_tensor *scalar = fu_tensor_new(0, NULL), *empty = fu_tensor_newv(2, (int64_t)0, (int64_t)5);
    REQUIRE(scalar && empty);
    scalar->data[0] = -9;
    fu_st_item all[FU_DTYPE_COUNT + 2];
    memcpy(all, items, sizeof items);
    all[FU_DTYPE_COUNT] = (fu_st_item){"scalar", scalar, FU_F32};
    all[FU_DTYPE_COUNT + 1] = (fu_st_item){"empty \"quoted\"\n", empty, FU_F16};
    fu_st_meta meta[] = {{"format", "pt"}, {"note", "tab\t quote\" backslash\\ \xc3\xa9"}};
    char path[512];
    snprintf(path, sizeof path, "%s/roundtrip.safetensors", fu_test_tmpdir());
    REQUIRE(fu_st_save(path, all, FU_DTYPE_COUNT + 2, meta, 2) == FU_OK);
    fu_safetensors *st = fu_st_open(path);
    REQUIRE(st);
    CHECK(st->n_entries == FU_DTYPE_COUNT + 2 && st->n_meta == 2);
    CHECK(!strcmp(fu_st_meta_get(st, "note"), meta[1].value));
    CHECK((st->data - st->file) % 8 == 0);
    for (int d = 0; d < FU_DTYPE_COUNT; d++) {
        const fu_st_entry *e = fu_st_find(st, names[d]);
        REQUIRE(e);
        CHECK(e->dtype == (fu_dtype)d && e->ndim == 3 && e->shape[1] == 3);
        fu_tensor *back = fu_st_tensor(st, names[d]);
        REQUIRE(back);
        for (int i = 0; i < n_values; i++) {
            float v = t[d]->data[i], expect = v;
            if (d == FU_F16) expect = fu_half_to_float(fu_float_to_half(v));
            else if (d == FU_BF16) expect = fu_bf16_to_float(fu_float_to_bf16(v));
            else if (d == FU_BOOL) expect = v != 0;
            else if (d != FU_F32 && d != FU_F64) expect = nearbyintf(v);
            CHECK_MSG(back->data[i] == expect, "%s[%d] = %g, expected %g", names[d], i, back->data[i], expect);
        }
        fu_tensor_free(back);
    }
    fu_tensor *s = fu_st_tensor(st, "scalar"), *em = fu_st_tensor(st, "empty \"quoted\"\n");
    CHECK(s && s->ndim == 0 && s->numel == 1 && s->data[0] == -9);
    CHECK(em && em->ndim == 2 && em->numel == 0 && em->shape[1] == 5);
    fu_tensor_free(s);
    fu_tensor_free(em);
    fu_st_free(st);
    for (int d = 0; d < FU_DTYPE_COUNT; d++) fu_tensor_free(t[d]);
    fu_tensor_free(scalar);
    fu_tensor_free(empty);
}

TEST(safetensors_save_errors_leave_no_file) {
    fu_tensor *t = fu_tensor_newv(1, (int64_t)3);
    REQUIRE(t);
    t->data[0] = 1; t->data[1] = 300; t->data[2] = 2;
    char dir[512], path[600], missing[600];
    snprintf(dir, sizeof dir, "%s/st_errors", fu_test_tmpdir());
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/out.safetensors", dir);
    snprintf(missing, sizeof missing, "%s/no/such/folder/out.safetensors", dir);
    fu_st_item ok = {"a", t, FU_F32}, u8 = {"a", t, FU_U8};
    CHECK(fu_st_save(missing, &ok, 1, NULL, 0) == FU_E_INPUT && strstr(fu_last_error(), "no/such/folder"));
    CHECK(fu_st_save(path, &u8, 1, NULL, 0) == FU_E_INPUT && strstr(fu_last_error(), "does not fit U8"));
    t->data[1] = NAN;
    fu_st_item i32 = {"a", t, FU_I32};
    CHECK(fu_st_save(path, &i32, 1, NULL, 0) == FU_E_INPUT);
    fu_st_item dup[2] = {{"x", t, FU_F32}, {"x", t, FU_F16}};
    CHECK(fu_st_save(path, dup, 2, NULL, 0) == FU_E_INPUT && strstr(fu_last_error(), "twice"));
    fu_st_item reserved = {"__metadata__", t, FU_F32}, null_tensor = {"n", NULL, FU_F32};
    CHECK(fu_st_save(path, &reserved, 1, NULL, 0) == FU_E_INPUT);
    CHECK(fu_st_save(path, &null_tensor, 1, NULL, 0) == FU_E_INPUT);
    fu_st_meta dup_meta[2] = {{"k", "1"}, {"k", "2"}};
    CHECK(fu_st_save(path, &ok, 1, dup_meta, 2) == FU_E_INPUT);
    CHECK(!file_exists(path));
    CHECK(count_prefixed(dir, "out.safetensors") == 0);     /* no temporary file left behind */
    /* An existing file is replaced only by a complete new one. */
    t->data[1] = 5;
    REQUIRE(fu_st_save(path, &ok, 1, NULL, 0) == FU_OK);
    t->data[1] = 1e9f;
    CHECK(fu_st_save(path, &u8, 1, NULL, 0) == FU_E_INPUT);
    fu_safetensors *st = fu_st_open(path);
    REQUIRE(st);
    fu_tensor *back = fu_st_tensor(st, "a");
    CHECK(back && back->data[1] == 5);
    CHECK(count_prefixed(dir, "out.safetensors") == 1);
    fu_tensor_free(back);
    fu_st_free(st);
    fu_tensor_free(t);
}

TEST(atomic_file_commit_and_abort) {
    char path[512];
    snprintf(path, sizeof path, "%s/atomic.txt", fu_test_tmpdir());
    fu_atomic_file af;
    REQUIRE(fu_atomic_open(&af, path) == FU_OK);
    fputs("partial", af.f);
    CHECK(!file_exists(path));                              /* invisible until committed */
    fu_atomic_abort(&af);
    CHECK(!file_exists(path) && count_prefixed(fu_test_tmpdir(), "atomic.txt") == 0);
    CHECK(fu_write_file_atomic(path, "hello", 5) == FU_OK);
    unsigned char *data;
    size_t size;
    REQUIRE(fu_read_file(path, 100, &data, &size) == FU_OK);
    CHECK(size == 5 && !memcmp(data, "hello", 5));
    free(data);
    CHECK(fu_read_file(path, 4, &data, &size) == FU_E_INPUT && strstr(fu_last_error(), "too large"));
    CHECK(fu_read_file(fu_test_tmpdir(), 100, &data, &size) == FU_E_INPUT);   /* a folder */
    CHECK(count_prefixed(fu_test_tmpdir(), "atomic.txt") == 1);
}

/* ---- malicious and broken files ---- */

/* Parses "<u64 header length><json><data_size bytes>" and expects failure with msg in the message. */
static int rejects(const char *json, size_t data_size, const char *msg) {
    size_t hlen = strlen(json), size = 8 + hlen + data_size;
    unsigned char *buf = calloc(1, size);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    memcpy(buf + 8, json, hlen);
    fu_clear_error();
    fu_safetensors *st = fu_st_parse(buf, size, "evil.safetensors");
    int ok = st == NULL && strstr(fu_last_error(), "evil.safetensors") && strstr(fu_last_error(), msg) &&
             !strchr(fu_last_error(), '\n') && fu_last_code() == FU_E_INPUT;
    if (!ok) printf("    json %s -> %s\n", json, st ? "accepted" : fu_last_error());
    fu_st_free(st);
    free(buf);
    return ok;
}

TEST(safetensors_rejects_malicious_headers) {
    CHECK(rejects("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]", 8, "not valid JSON"));
    CHECK(rejects("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}} x", 8, "trailing"));
    CHECK(rejects("[1,2]", 0, "not a JSON object"));
    CHECK(rejects("{\"a\":[1]}", 0, "not an object"));
    CHECK(rejects("{\"a\":{\"dtype\":\"F8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2, "unknown dtype"));
    CHECK(rejects("{\"a\":{\"dtype\":7,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "unknown dtype"));
    CHECK(rejects("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "non-negative"));
    CHECK(rejects("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8, "non-negative"));
    CHECK(rejects("{\"a\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8, "non-negative"));
    CHECK(rejects("{\"a\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}", 8, "not an array"));
    CHECK(rejects("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,2],\"data_offsets\":[0,8]}}", 8, "dimensions"));
    CHECK(rejects("{\"a\":{\"dtype\":\"F32\",\"shape\":[1099511627776,1099511627776,1099511627776],\"data_offsets\":[0,8]}}", 8, "larger than the data area"));
    CHECK(rejects("{\"a\":{\"dtype\":\"F32\",\"shape\":[1e300],\"data_offsets\":[0,8]}}", 8, "non-negative"));
    CHECK(rejects("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 16, "need 12"));
    CHECK(rejects("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,16]}}", 8, "outside the data area"));
    CHECK(rejects("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "outside the data area"));
    CHECK(rejects("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, "two non-negative"));
    CHECK(rejects("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,9]}}", 8, "two non-negative"));
    CHECK(rejects("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", 8, "two non-negative"));
    CHECK(rejects("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "needs dtype"));
    CHECK(rejects("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                  "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "overlap"));
    CHECK(rejects("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                  "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16, "appears twice"));
    CHECK(rejects("{\"__metadata__\":{\"k\":1}}", 0, "not a string"));
    CHECK(rejects("{\"__metadata__\":[]}", 0, "not an object"));
    CHECK(rejects("{\"__metadata__\":{},\"__metadata__\":{}}", 0, "twice"));
    CHECK(rejects("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0, "twice"));
    /* Accepted: zero-size tensors at the same offset, gaps, padding spaces, metadata only. */
    const char *good = "{\"e\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[4,4]},"
                       "\"f\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,4]},"
                       "\"g\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[4,8]}}    ";
    size_t hlen = strlen(good);
    unsigned char buf[512] = {(unsigned char)hlen};
    memcpy(buf + 8, good, hlen);
    fu_safetensors *st = fu_st_parse(buf, 8 + hlen + 8, "good");
    CHECK(st && st->n_entries == 3 && fu_st_find(st, "g") && fu_st_find(st, "g")->begin == 4);
    fu_st_free(st);
}

TEST(safetensors_rejects_bad_lengths_and_truncation) {
    unsigned char buf[64] = {0};
    CHECK(fu_st_parse(buf, 5, "short") == NULL && strstr(fu_last_error(), "too short"));
    buf[7] = 0x40;                                              /* header length 2^62 */
    CHECK(fu_st_parse(buf, sizeof buf, "huge") == NULL && strstr(fu_last_error(), "header length"));
    memset(buf, 0, 8);
    buf[0] = 0x00; buf[1] = 0xe2; buf[2] = 0xf5; buf[3] = 0x05;  /* 100,000,256 > 100 MB */
    CHECK(fu_st_parse(buf, sizeof buf, "huge") == NULL && strstr(fu_last_error(), "limit"));
    memset(buf, 0, 8);
    buf[0] = 57;                                                /* longer than the file */
    CHECK(fu_st_parse(buf, sizeof buf, "long") == NULL && strstr(fu_last_error(), "header length 57"));
    memset(buf, 0, sizeof buf);
    buf[0] = 4;
    memcpy(buf + 8, "{}\0 ", 4);
    CHECK(fu_st_parse(buf, 12, "nul") == NULL && strstr(fu_last_error(), "NUL"));
    /* Every proper prefix of a valid file is refused cleanly. */
    fu_tensor *t = fu_tensor_newv(2, (int64_t)3, (int64_t)5);
    REQUIRE(t);
    fu_st_item items[2] = {{"w", t, FU_F16}, {"v", t, FU_F32}};
    char path[512];
    snprintf(path, sizeof path, "%s/trunc.safetensors", fu_test_tmpdir());
    REQUIRE(fu_st_save(path, items, 2, NULL, 0) == FU_OK);
    unsigned char *file;
    size_t size;
    REQUIRE(fu_read_file(path, 1 << 20, &file, &size) == FU_OK);
    fu_safetensors *whole = fu_st_parse(file, size, "whole");
    CHECK(whole != NULL);
    fu_st_free(whole);
    int accepted = 0;
    for (size_t n = 0; n < size; n++) {
        fu_safetensors *st = fu_st_parse(file, n, "prefix");
        accepted += st != NULL;
        fu_st_free(st);
    }
    CHECK(accepted == 0);
    CHECK(fu_st_open("/nonexistent/file.safetensors") == NULL && strstr(fu_last_error(), "/nonexistent/file.safetensors"));
    free(file);
    fu_tensor_free(t);
}
