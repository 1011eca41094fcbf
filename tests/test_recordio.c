/* RecordIO packs and folder data sets (src/io/recordio.c, src/train/face_data.c), on files the
 * tests write: real LFW JPEGs packed the way InsightFace packs MS1M (header record 0, image
 * records, identity records), plus corrupted variants. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "test.h"
#include "util.h"
#include "core/ops.h"
#include "io/fileutil.h"
#include "io/image.h"
#include "io/recordio.h"
#include "train/face_data.h"

typedef struct { unsigned char *p; size_t n, cap; } bytes;

static void put(bytes *b, const void *src, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = 2 * (b->n + n) + 64;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void put_u32(bytes *b, uint32_t v) {
    unsigned char s[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16), (unsigned char)(v >> 24)};
    put(b, s, 4);
}

static void put_u64(bytes *b, uint64_t v) { put_u32(b, (uint32_t)v); put_u32(b, (uint32_t)(v >> 32)); }
static void put_f32(bytes *b, float f) { uint32_t v; memcpy(&v, &f, 4); put_u32(b, v); }

static void put_part(bytes *b, uint32_t cflag, const unsigned char *data, uint32_t len) {
    static const unsigned char zero[4] = {0};
    put_u32(b, FU_RECORDIO_MAGIC);
    put_u32(b, cflag << 29 | len);
    put(b, data, len);
    put(b, zero, (4 - len % 4) % 4);
}

/* A record the way dmlc's writer stores it: split at every 4-aligned magic number in the
 * payload (cflag 1, 2..., 3), the magic itself dropped. */
static void put_record(bytes *b, const unsigned char *p, uint32_t len) {
    uint32_t start = 0, parts = 0;
    for (uint32_t i = 0; i + 4 <= len; i += 4) {
        uint32_t v = p[i] | p[i + 1] << 8 | p[i + 2] << 16 | (uint32_t)p[i + 3] << 24;
        if (v != FU_RECORDIO_MAGIC) continue;
        put_part(b, parts++ == 0 ? 1 : 2, p + start, i - start);
        start = i + 4;
    }
    put_part(b, parts ? 3 : 0, p + start, len - start);
}

/* IRHeader + labels + data. */
static bytes payload(uint32_t flag, float label, const float *labels, uint64_t id, const void *data, size_t n) {
    bytes b = {0};
    put_u32(&b, flag);
    put_f32(&b, label);
    put_u64(&b, id);
    put_u64(&b, 0);
    for (uint32_t k = 0; k < flag; k++) put_f32(&b, labels[k]);
    if (n) put(&b, data, n);
    return b;
}

typedef struct { bytes rec, idx; } pack;

static void add(pack *k, uint64_t key, bytes pl) {
    char line[64];
    int n = snprintf(line, sizeof line, "%llu\t%zu\n", (unsigned long long)key, k->rec.n);
    put(&k->idx, line, (size_t)n);
    put_record(&k->rec, pl.p, (uint32_t)pl.n);
    free(pl.p);
}

static const char *lfw_jpeg(int i) {
    static const char *files[] = {"Aaron_Peirsol/Aaron_Peirsol_0001.jpg", "Aaron_Peirsol/Aaron_Peirsol_0003.jpg",
                                  "Abdullah_Gul/Abdullah_Gul_0001.jpg", "Abdullah_Gul/Abdullah_Gul_0006.jpg",
                                  "Abdullah_Gul/Abdullah_Gul_0007.jpg"};
    static char path[1024];
    snprintf(path, sizeof path, "%s/data/lfw/images/%s", fu_test_shared_dir(), files[i]);
    return path;
}

enum { N_IMAGES = 5 };
static const int image_label[N_IMAGES] = {0, 0, 1, 1, 1};

/* MS1M layout: record 0 (a = 6, b = 8), images 1..5, identity records 6, 7. Image 2's id field
 * holds the magic number, so that record is stored in two parts. */
static int make_pack(pack *k) {
    memset(k, 0, sizeof *k);
    float head[2] = {N_IMAGES + 1, N_IMAGES + 3};
    add(k, 0, payload(2, 0, head, 0, NULL, 0));
    for (int i = 0; i < N_IMAGES; i++) {
        unsigned char *jpg;
        size_t n;
        if (fu_read_file(lfw_jpeg(i), 1 << 24, &jpg, &n) != FU_OK) return 0;
        float l = (float)image_label[i];
        add(k, (uint64_t)i + 1, i == 2 ? payload(0, l, NULL, FU_RECORDIO_MAGIC, jpg, n) : payload(1, 0, &l, (uint64_t)i, jpg, n));
        free(jpg);
    }
    float id0[2] = {1, 3}, id1[2] = {3, 6};
    add(k, N_IMAGES + 1, payload(2, 0, id0, 0, NULL, 0));
    add(k, N_IMAGES + 2, payload(2, 0, id1, 0, NULL, 0));
    return 1;
}

static void write_pack(const pack *k, const char *name, char *rec_path, size_t n) {
    char idx_path[1024];
    snprintf(rec_path, n, "%s/%s.rec", fu_test_tmpdir(), name);
    snprintf(idx_path, sizeof idx_path, "%s/%s.idx", fu_test_tmpdir(), name);
    fu_write_file_atomic(rec_path, k->rec.p, k->rec.n);
    fu_write_file_atomic(idx_path, k->idx.p, k->idx.n);
}

static void free_pack(pack *k) { free(k->rec.p); free(k->idx.p); }

/* Expected tensor: the JPEG decoded directly, normalised like the loader (250 -> 32 resize). */
static int same_as_direct(const float *got, const char *jpeg, int size, int flip) {
    fu_tensor *img = fu_image_load(jpeg);
    if (!img) return 0;
    fu_graph *g = fu_graph_new();
    fu_tensor *r = fu_resize_bilinear(g, img, size, size, 0);
    int same = r != NULL;
    for (int c = 0; same && c < 3; c++)
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++) {
                float v = (r->data[(c * size + y) * size + (flip ? size - 1 - x : x)] - 0.5f) / 0.5f;
                if (got[(c * size + y) * size + x] != v) same = 0;
            }
    fu_graph_free(g);
    fu_tensor_free(img);
    return same;
}

TEST(recordio_reads_insightface_pack) {
    if (!fu_test_shared_dir()) SKIP("../shared/data absent (LFW JPEGs)");
    pack k;
    REQUIRE(make_pack(&k));
    char rec[1024];
    write_pack(&k, "ms1m_like", rec, sizeof rec);
    /* the multi-part record: joined with the magic restored */
    fu_recordio *r = fu_recordio_open(rec, NULL);
    REQUIRE(r);
    CHECK(r->n == N_IMAGES + 3);
    unsigned char *p;
    size_t n;
    fu_irheader h;
    REQUIRE(fu_recordio_read(r, fu_recordio_find(r, 3), &p, &n) == FU_OK);
    REQUIRE(fu_irheader_unpack(p, n, &h, "record 3") == FU_OK);
    CHECK(h.flag == 0 && h.label == 1 && h.id == FU_RECORDIO_MAGIC);
    unsigned char *jpg;
    size_t jn;
    REQUIRE(fu_read_file(lfw_jpeg(2), 1 << 24, &jpg, &jn) == FU_OK);
    CHECK(h.data_size == jn && !memcmp(h.data, jpg, jn));
    free(jpg);
    free(p);
    CHECK(fu_recordio_find(r, 99) == -1);
    fu_recordio_close(r);

    fu_face_data *d = fu_face_data_open(rec);
    REQUIRE(d);
    CHECK(d->n == N_IMAGES && d->n_ids == 2);
    float *img = malloc(3 * 32 * 32 * sizeof *img);
    for (int i = 0; i < N_IMAGES; i++) {
        int label = -1;
        REQUIRE(fu_face_data_load(d, i, 32, i % 2, img, &label) == FU_OK);
        CHECK(label == image_label[i]);
        CHECK_MSG(same_as_direct(img, lfw_jpeg(i), 32, i % 2), "image %d differs from the JPEG decoded directly", i);
    }
    free(img);
    fu_face_data_free(d);
    free_pack(&k);
}

/* Without a header record every record is an image; the identity count is the largest label + 1. */
TEST(recordio_pack_without_header) {
    if (!fu_test_shared_dir()) SKIP("../shared/data absent (LFW JPEGs)");
    pack k = {0};
    const float labels[3] = {0, 2, 1};
    for (int i = 0; i < 3; i++) {
        unsigned char *jpg;
        size_t n;
        REQUIRE(fu_read_file(lfw_jpeg(i), 1 << 24, &jpg, &n) == FU_OK);
        add(&k, (uint64_t)(10 + i), payload(0, labels[i], NULL, 0, jpg, n));
        free(jpg);
    }
    char rec[1024];
    write_pack(&k, "plain", rec, sizeof rec);
    fu_face_data *d = fu_face_data_open(rec);
    REQUIRE(d);
    CHECK(d->n == 3 && d->n_ids == 3);
    float *img = malloc(3 * 16 * 16 * sizeof *img);
    int label = -1;
    CHECK(fu_face_data_load(d, 1, 16, 0, img, &label) == FU_OK && label == 2);
    free(img);
    fu_face_data_free(d);
    free_pack(&k);
}

/* Each corruption of the pack gives a clear error, never a crash. */
static void expect_refusal(pack *k, const char *name, const char *needle) {
    char rec[1024];
    write_pack(k, name, rec, sizeof rec);
    fu_face_data *d = fu_face_data_open(rec);
    int rc = FU_OK;
    if (d) {  /* corruption inside an image record shows when it is read */
        float *img = malloc(3 * 16 * 16 * sizeof *img);
        int label;
        for (int64_t i = 0; i < d->n && rc == FU_OK; i++) rc = fu_face_data_load(d, i, 16, 0, img, &label);
        free(img);
        fu_face_data_free(d);
    }
    CHECK_MSG(!d || rc == FU_E_INPUT, "%s: accepted", name);
    CHECK_MSG(strstr(fu_last_error(), needle) != NULL, "%s: message '%s' lacks '%s'", name, fu_last_error(), needle);
}

static size_t record_offset(const pack *k, int line) {
    const char *s = (const char *)k->idx.p;
    for (int i = 0; i < line; i++) s = strchr(s, '\n') + 1;
    return (size_t)strtoull(strchr(s, '\t') + 1, NULL, 10);
}

TEST(recordio_refuses_corrupt_packs) {
    if (!fu_test_shared_dir()) SKIP("../shared/data absent (LFW JPEGs)");
    pack k;
    REQUIRE(make_pack(&k));
    size_t off1 = record_offset(&k, 1), off3 = record_offset(&k, 3);

    k.rec.p[off1] ^= 1;
    expect_refusal(&k, "bad_magic", "no RecordIO magic");
    k.rec.p[off1] ^= 1;

    k.rec.p[off1 + 7] |= 0x1f;  /* length bits 24..28: far past the end */
    expect_refusal(&k, "long_length", "runs past the end");
    free_pack(&k);
    REQUIRE(make_pack(&k));

    k.rec.p[off3 + 7] = (unsigned char)((k.rec.p[off3 + 7] & 0x1f) | 2u << 5);  /* first part flagged "middle" */
    expect_refusal(&k, "bad_cflag", "out of sequence");
    free_pack(&k);
    REQUIRE(make_pack(&k));

    /* the multi-part record (key 3) with its last part cut away */
    size_t first_len = (size_t)(k.rec.p[off3 + 4] | k.rec.p[off3 + 5] << 8 | k.rec.p[off3 + 6] << 16);
    size_t full = k.rec.n;
    k.rec.n = off3 + 8 + ((first_len + 3) & ~(size_t)3) + 4;
    fu_recordio *r = fu_recordio_open_mem(k.rec.p, k.rec.n, "3\t0\n", 4, "cut.rec");
    REQUIRE(r);
    r->offsets[0] = off3;
    unsigned char *p;
    size_t n;
    CHECK(fu_recordio_read(r, 0, &p, &n) == FU_E_INPUT && strstr(fu_last_error(), "cut off"));
    fu_recordio_close(r);
    k.rec.n = full;

    size_t big = k.rec.n + 1000;
    char bad_idx[64];
    snprintf(bad_idx, sizeof bad_idx, "0\t%zu\n", big);
    bytes save = k.idx;
    k.idx = (bytes){(unsigned char *)bad_idx, strlen(bad_idx), 0};
    expect_refusal(&k, "idx_offset", "outside");
    k.idx = (bytes){(unsigned char *)"0\t0\nx\t8\n", 8, 0};
    expect_refusal(&k, "idx_syntax", "line 2");
    k.idx = (bytes){(unsigned char *)"0\t0\n0\t0\n", 8, 0};
    expect_refusal(&k, "idx_dup", "appears twice");
    k.idx = save;
    free_pack(&k);

    /* a label beyond the header's identity count; a header announcing more labels than bytes */
    pack j = {0};
    float head[2] = {2, 4}, bad = 7;
    add(&j, 0, payload(2, 0, head, 0, NULL, 0));
    add(&j, 1, payload(1, 0, &bad, 0, "x", 1));
    expect_refusal(&j, "bad_label", "not an identity in [0, 2)");
    free_pack(&j);
    memset(&j, 0, sizeof j);
    add(&j, 0, payload(2, 0, head, 0, NULL, 0));
    bytes b = payload(0, 0, NULL, 0, NULL, 0);
    b.p[0] = 200;  /* flag 200, nothing after the header */
    add(&j, 1, b);
    expect_refusal(&j, "bad_flag", "announces 200 labels");
    free_pack(&j);
}

static void link_into(const char *dir, const char *id, int i) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, id);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s/img%d.jpg", dir, id, i);
    unlink(path);
    char *target = realpath(lfw_jpeg(i), NULL);   /* the shared folder may be given relatively */
    CHECK(target && symlink(target, path) == 0);
    free(target);
}

TEST(face_data_reads_identity_folders) {
    if (!fu_test_shared_dir()) SKIP("../shared/data absent (LFW JPEGs)");
    char root[1024], path[1100];
    snprintf(root, sizeof root, "%s/ids", fu_test_tmpdir());
    mkdir(root, 0755);
    /* folder "b" sorts after "a": labels 0 then 1, independent of creation order */
    link_into(root, "b", 2);
    link_into(root, "b", 3);
    link_into(root, "a", 0);
    snprintf(path, sizeof path, "%s/a/notes.txt", root);
    fu_write_file_atomic(path, "x", 1);         /* not an image: skipped */
    snprintf(path, sizeof path, "%s/.hidden", root);
    mkdir(path, 0755);                           /* hidden: skipped */
    fu_face_data *d = fu_face_data_open(root);
    REQUIRE(d);
    CHECK(d->n == 3 && d->n_ids == 2);
    CHECK(d->labels[0] == 0 && d->labels[1] == 1 && d->labels[2] == 1);
    float *img = malloc(3 * 16 * 16 * sizeof *img);
    int label;
    REQUIRE(fu_face_data_load(d, 2, 16, 0, img, &label) == FU_OK);
    CHECK(label == 1 && same_as_direct(img, lfw_jpeg(3), 16, 0));
    free(img);
    fu_face_data_free(d);
    /* one identity only: refused */
    snprintf(root, sizeof root, "%s/one_id", fu_test_tmpdir());
    mkdir(root, 0755);
    link_into(root, "a", 0);
    CHECK(fu_face_data_open(root) == NULL && strstr(fu_last_error(), "at least 2"));
    snprintf(path, sizeof path, "%s/missing.rec", fu_test_tmpdir());
    CHECK(fu_face_data_open(path) == NULL && strstr(fu_last_error(), "missing.rec"));
}
