/* Minimal ZIP reader (see zip.h). Record layouts follow PKWARE's APPNOTE; all integers are
 * little-endian and read bytewise, so the buffer needs no alignment. */
#include "io/zip.h"
#include "core/error.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_EOCD64_LOCATOR 0x07064b50u
#define EOCD_SIZE 22
#define EOCD64_SIZE 56
#define LOCATOR_SIZE 20
#define CENTRAL_SIZE 46
#define LOCAL_SIZE 30
#define MAX_ENTRIES (1u << 20)
#define MAX_COMMENT 65535

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

/* True when [off, off+len) lies inside a buffer of `size` bytes (no overflow). */
static int in_bounds(uint64_t off, uint64_t len, uint64_t size) { return off <= size && len <= size - off; }

uint32_t fu_crc32(const void *data, size_t n) {
    static uint32_t table[256];
    static int ready;
    if (!ready) { /* benign race: every thread writes the same values */
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
        ready = 1;
    }
    const uint8_t *p = data;
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) c = table[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

/* Directory location as read from the (ZIP64) end-of-central-directory record. */
typedef struct { uint64_t count, cd_offset, cd_size, cd_end_limit; } directory;

/* The EOCD is the last record; it is followed only by its comment, so scan back from the end
 * for a signature whose comment length reaches exactly the end of the file. */
static int find_eocd(const fu_zip *z, uint64_t *pos) {
    if (z->size < EOCD_SIZE) return fu_fail(FU_E_INPUT, "%s: not a zip archive (only %zu bytes)", z->label, z->size);
    uint64_t lowest = z->size > EOCD_SIZE + MAX_COMMENT ? z->size - EOCD_SIZE - MAX_COMMENT : 0;
    for (uint64_t p = z->size - EOCD_SIZE + 1; p-- > lowest;) {
        if (rd32(z->data + p) == SIG_EOCD && p + EOCD_SIZE + rd16(z->data + p + 20) == z->size) {
            *pos = p;
            return FU_OK;
        }
    }
    return fu_fail(FU_E_INPUT, "%s: not a zip archive (no end-of-central-directory record; truncated?)", z->label);
}

static int read_eocd64(const fu_zip *z, uint64_t eocd, directory *d) {
    if (eocd < LOCATOR_SIZE || rd32(z->data + eocd - LOCATOR_SIZE) != SIG_EOCD64_LOCATOR)
        return fu_fail(FU_E_INPUT, "%s: zip needs ZIP64 but has no ZIP64 locator", z->label);
    const uint8_t *loc = z->data + eocd - LOCATOR_SIZE;
    uint64_t off = rd64(loc + 8);
    if (rd32(loc + 4) != 0 || rd32(loc + 16) > 1) return fu_fail(FU_E_INPUT, "%s: multi-disk zip archives are not supported", z->label);
    if (!in_bounds(off, EOCD64_SIZE, eocd - LOCATOR_SIZE) || rd32(z->data + off) != SIG_EOCD64)
        return fu_fail(FU_E_INPUT, "%s: corrupt ZIP64 end-of-central-directory record", z->label);
    const uint8_t *r = z->data + off;
    if (rd32(r + 16) != 0 || rd32(r + 20) != 0 || rd64(r + 24) != rd64(r + 32))
        return fu_fail(FU_E_INPUT, "%s: multi-disk zip archives are not supported", z->label);
    d->count = rd64(r + 32);
    d->cd_size = rd64(r + 40);
    d->cd_offset = rd64(r + 48);
    d->cd_end_limit = off;
    return FU_OK;
}

static int read_directory_location(const fu_zip *z, directory *d) {
    uint64_t eocd = 0;
    int rc = find_eocd(z, &eocd);
    if (rc) return rc;
    const uint8_t *e = z->data + eocd;
    if (rd16(e + 4) != 0 || rd16(e + 6) != 0 || rd16(e + 8) != rd16(e + 10))
        return fu_fail(FU_E_INPUT, "%s: multi-disk zip archives are not supported", z->label);
    d->count = rd16(e + 10);
    d->cd_size = rd32(e + 12);
    d->cd_offset = rd32(e + 16);
    d->cd_end_limit = eocd;
    int has_locator = eocd >= LOCATOR_SIZE && rd32(z->data + eocd - LOCATOR_SIZE) == SIG_EOCD64_LOCATOR;
    if (has_locator || d->count == 0xffff || d->cd_size == 0xffffffffu || d->cd_offset == 0xffffffffu) {
        rc = read_eocd64(z, eocd, d);
        if (rc) return rc;
    }
    if (!in_bounds(d->cd_offset, d->cd_size, d->cd_end_limit))
        return fu_fail(FU_E_INPUT, "%s: corrupt zip: central directory [%llu, +%llu) outside the file", z->label,
                       (unsigned long long)d->cd_offset, (unsigned long long)d->cd_size);
    if (d->count > MAX_ENTRIES || d->count > d->cd_size / CENTRAL_SIZE)
        return fu_fail(FU_E_INPUT, "%s: corrupt zip: %llu entries cannot fit a %llu-byte central directory", z->label,
                       (unsigned long long)d->count, (unsigned long long)d->cd_size);
    return FU_OK;
}

/* Replaces 0xffffffff sizes/offset of a central record by the values of its ZIP64 extra field. */
static int apply_zip64_extra(const fu_zip *z, const uint8_t *extra, size_t len, fu_zip_entry *e, uint64_t *local) {
    int need_u = e->uncompressed_size == 0xffffffffu, need_c = e->size == 0xffffffffu, need_o = *local == 0xffffffffu;
    if (!need_u && !need_c && !need_o) return FU_OK;
    for (size_t p = 0; p + 4 <= len;) {
        uint16_t id = rd16(extra + p), n = rd16(extra + p + 2);
        if (n > len - p - 4) break;
        if (id == 0x0001) {
            const uint8_t *f = extra + p + 4;
            size_t at = 0;
            if (need_u) { if (at + 8 > n) break; e->uncompressed_size = rd64(f + at); at += 8; }
            if (need_c) { if (at + 8 > n) break; e->size = rd64(f + at); at += 8; }
            if (need_o) { if (at + 8 > n) break; *local = rd64(f + at); }
            return FU_OK;
        }
        p += 4 + (size_t)n;
    }
    return fu_fail(FU_E_INPUT, "%s: corrupt zip: entry '%s' lacks its ZIP64 sizes", z->label, e->name);
}

/* Finds where the entry's bytes start: after the local header, its name and its extra field
 * (torch pads that extra field so storages are 64-byte aligned). */
static int locate_data(const fu_zip *z, fu_zip_entry *e, uint64_t local, uint64_t data_limit) {
    if (!in_bounds(local, LOCAL_SIZE, data_limit) || rd32(z->data + local) != SIG_LOCAL)
        return fu_fail(FU_E_INPUT, "%s: corrupt zip: bad local header for '%s'", z->label, e->name);
    const uint8_t *h = z->data + local;
    uint64_t name_len = rd16(h + 26), extra_len = rd16(h + 28);
    size_t central_len = strlen(e->name);
    if (name_len != central_len || !in_bounds(local + LOCAL_SIZE, name_len, data_limit) ||
        memcmp(h + LOCAL_SIZE, e->name, central_len) != 0)
        return fu_fail(FU_E_INPUT, "%s: corrupt zip: local header name differs from the directory for '%s'", z->label, e->name);
    e->data_offset = local + LOCAL_SIZE + name_len + extra_len;
    if (!in_bounds(e->data_offset, e->size, data_limit))
        return fu_fail(FU_E_INPUT, "%s: corrupt zip: data of '%s' (%llu bytes) runs past the end of the file", z->label,
                       e->name, (unsigned long long)e->size);
    return FU_OK;
}

static int read_central_record(const fu_zip *z, uint64_t *pos, uint64_t cd_end, uint64_t data_limit, fu_zip_entry *e) {
    const uint8_t *c = z->data + *pos;
    if (!in_bounds(*pos, CENTRAL_SIZE, cd_end) || rd32(c) != SIG_CENTRAL)
        return fu_fail(FU_E_INPUT, "%s: corrupt zip central directory at offset %llu", z->label, (unsigned long long)*pos);
    size_t name_len = rd16(c + 28), extra_len = rd16(c + 30), comment_len = rd16(c + 32);
    uint64_t record = (uint64_t)CENTRAL_SIZE + name_len + extra_len + comment_len;
    if (!in_bounds(*pos, record, cd_end))
        return fu_fail(FU_E_INPUT, "%s: corrupt zip central directory at offset %llu", z->label, (unsigned long long)*pos);
    if (memchr(c + CENTRAL_SIZE, 0, name_len))
        return fu_fail(FU_E_INPUT, "%s: corrupt zip: entry name contains a NUL byte", z->label);
    e->name = fu_malloc(name_len + 1);
    if (!e->name) return FU_E_INTERNAL;
    memcpy(e->name, c + CENTRAL_SIZE, name_len);
    e->name[name_len] = 0;
    e->flags = rd16(c + 8);
    e->method = rd16(c + 10);
    e->crc32 = rd32(c + 16);
    e->size = rd32(c + 20);
    e->uncompressed_size = rd32(c + 24);
    uint64_t local = rd32(c + 42);
    if (rd16(c + 34) != 0 && rd16(c + 34) != 0xffff)
        return fu_fail(FU_E_INPUT, "%s: multi-disk zip archives are not supported", z->label);
    int rc = apply_zip64_extra(z, c + CENTRAL_SIZE + name_len, extra_len, e, &local);
    if (rc) return rc;
    if (e->flags & 1) return fu_fail(FU_E_INPUT, "%s: zip entry '%s' is encrypted", z->label, e->name);
    *pos += record;
    return locate_data(z, e, local, data_limit);
}

static int by_name(const void *a, const void *b) {
    return strcmp(((const fu_zip_entry *)a)->name, ((const fu_zip_entry *)b)->name);
}

int fu_zip_open(fu_zip *z, const void *data, size_t size, const char *label) {
    memset(z, 0, sizeof *z);
    z->data = data;
    z->size = size;
    snprintf(z->label, sizeof z->label, "%s", label ? label : "zip");
    directory d = {0};
    int rc = read_directory_location(z, &d);
    if (rc) return rc;
    z->entries = fu_calloc(d.count ? d.count : 1, sizeof *z->entries);
    if (!z->entries) return FU_E_INTERNAL;
    uint64_t pos = d.cd_offset;
    for (uint64_t i = 0; i < d.count; i++) {
        z->count++;
        rc = read_central_record(z, &pos, d.cd_offset + d.cd_size, d.cd_offset, &z->entries[i]);
        if (rc) { fu_zip_close(z); return rc; }
    }
    qsort(z->entries, z->count, sizeof *z->entries, by_name);
    for (size_t i = 1; i < z->count; i++) {
        if (strcmp(z->entries[i - 1].name, z->entries[i].name) == 0) {
            rc = fu_fail(FU_E_INPUT, "%s: corrupt zip: entry '%s' appears twice", z->label, z->entries[i].name);
            fu_zip_close(z);
            return rc;
        }
    }
    return FU_OK;
}

void fu_zip_close(fu_zip *z) {
    if (!z) return;
    for (size_t i = 0; i < z->count; i++) free(z->entries[i].name);
    free(z->entries);
    z->entries = NULL;
    z->count = 0;
}

long fu_zip_find(const fu_zip *z, const char *name) {
    size_t lo = 0, hi = z->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(z->entries[mid].name, name);
        if (c == 0) return (long)mid;
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return -1;
}

const uint8_t *fu_zip_read(const fu_zip *z, size_t i, uint64_t *size) {
    if (i >= z->count) return fu_fail_null(FU_E_INPUT, "%s: zip entry index %zu out of range", z->label, i);
    const fu_zip_entry *e = &z->entries[i];
    if (e->method != 0)
        return fu_fail_null(FU_E_INPUT, "%s: zip entry '%s' is compressed (method %u%s); only stored entries (method 0, as torch.save writes) are supported",
                            z->label, e->name, e->method, e->method == 8 ? ", deflate" : "");
    if (e->size != e->uncompressed_size)
        return fu_fail_null(FU_E_INPUT, "%s: corrupt zip: stored entry '%s' has different compressed and uncompressed sizes", z->label, e->name);
    const uint8_t *p = z->data + e->data_offset;
    /* A CRC of 0 on a non-empty entry means "not computed" (torch can be told to skip it). */
    if (e->crc32 != 0 && fu_crc32(p, e->size) != e->crc32)
        return fu_fail_null(FU_E_INPUT, "%s: zip entry '%s' fails its CRC check (corrupt file)", z->label, e->name);
    *size = e->size;
    return p;
}
