/* libFuzzer target for the torch checkpoint reader (src/io/pt.c, pickle.c, zip.c).
 *
 * Build (from the repository root):
 *   clang -fsanitize=fuzzer,address,undefined -Iinclude -Isrc fuzz/fuzz_pt.c src/core/[a-z]*.c src/io/[a-z]*.c \
 *         -ldnnl -lpng -ljpeg -lcjson -lm -fopenmp -o fuzz_pt
 *   ./fuzz_pt fuzz/corpus/fuzz_pt -max_total_time=180
 *
 * The first byte picks a mode. Even: the rest is a whole checkpoint file (exercises the zip
 * reader). Odd: the rest is a data.pkl pickle, wrapped here into a valid torch-style archive with
 * correct CRCs and four small storages, so mutations reach the pickle machine and the tensor
 * checks instead of dying at the CRC check. Every tensor of a file that loads is materialised. */
#include "io/pt.h"
#include "io/zip.h"
#include <stdlib.h>
#include <string.h>

#define N_STORAGES 4
#define STORAGE_BYTES 64

static void put16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, v & 0xffff); put16(p + 2, v >> 16); }

typedef struct { const char *name; const uint8_t *data; size_t size; uint32_t offset; } record;

/* A classic (non-ZIP64) stored archive of the records; returns its size. */
static size_t write_zip(uint8_t *out, record *r, int n) {
    size_t pos = 0;
    for (int i = 0; i < n; i++) {
        size_t len = strlen(r[i].name);
        uint8_t *h = out + pos;
        memset(h, 0, 30);
        put32(h, 0x04034b50u);
        put32(h + 14, fu_crc32(r[i].data, r[i].size));
        put32(h + 18, (uint32_t)r[i].size);
        put32(h + 22, (uint32_t)r[i].size);
        put16(h + 26, (uint32_t)len);
        memcpy(h + 30, r[i].name, len);
        if (r[i].size) memcpy(h + 30 + len, r[i].data, r[i].size);
        r[i].offset = (uint32_t)pos;
        pos += 30 + len + r[i].size;
    }
    size_t cd = pos;
    for (int i = 0; i < n; i++) {
        size_t len = strlen(r[i].name);
        uint8_t *c = out + pos;
        memset(c, 0, 46);
        put32(c, 0x02014b50u);
        put32(c + 16, fu_crc32(r[i].data, r[i].size));
        put32(c + 20, (uint32_t)r[i].size);
        put32(c + 24, (uint32_t)r[i].size);
        put16(c + 28, (uint32_t)len);
        put32(c + 42, r[i].offset);
        memcpy(c + 46, r[i].name, len);
        pos += 46 + len;
    }
    uint8_t *e = out + pos;
    memset(e, 0, 22);
    put32(e, 0x06054b50u);
    put16(e + 8, (uint32_t)n);
    put16(e + 10, (uint32_t)n);
    put32(e + 12, (uint32_t)(pos - cd));
    put32(e + 16, (uint32_t)cd);
    return pos + 22;
}

static void load_and_read(const uint8_t *data, size_t size) {
    fu_pt_file *f = NULL;
    if (fu_pt_load_memory(data, size, "fuzz.pt", &f) != 0) return;
    for (size_t i = 0; i < fu_pt_count(f); i++) {
        int64_t shape[FU_MAX_DIMS];
        (void)fu_pt_shape(f, i, shape);
        fu_tensor_free(fu_pt_get(f, fu_pt_name(f, i)));
    }
    fu_pt_free(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > (1u << 20)) return 0;
    if (!(data[0] & 1)) { load_and_read(data + 1, size - 1); return 0; }
    static uint8_t storages[N_STORAGES][STORAGE_BYTES];
    for (int s = 0; s < N_STORAGES; s++)
        for (int i = 0; i < STORAGE_BYTES; i++) storages[s][i] = (uint8_t)(i * 37 + s * 11);
    record r[N_STORAGES + 2] = {
        {"archive/data.pkl", data + 1, size - 1, 0},
        {"archive/data/0", storages[0], STORAGE_BYTES, 0},
        {"archive/data/1", storages[1], STORAGE_BYTES, 0},
        {"archive/data/2", storages[2], 8, 0},
        {"archive/data/3", storages[3], 0, 0},
        {"archive/version", (const uint8_t *)"3\n", 2, 0},
    };
    uint8_t *zip = malloc(size + 4096);
    if (!zip) return 0;
    size_t n = write_zip(zip, r, N_STORAGES + 2);
    load_and_read(zip, n);
    free(zip);
    return 0;
}
