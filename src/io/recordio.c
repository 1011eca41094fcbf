/* MXNet RecordIO reader (see recordio.h). */
#include "io/recordio.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/error.h"
#include "faceup.h"
#include "io/fileutil.h"

#define LEN_BITS 29u
#define LEN_MASK ((1u << LEN_BITS) - 1u)
enum { CFLAG_WHOLE = 0, CFLAG_FIRST = 1, CFLAG_MIDDLE = 2, CFLAG_LAST = 3 };

static uint32_t le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const unsigned char *p) { return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32; }

/* ---- .idx ---------------------------------------------------------------------------------- */

/* One decimal field (no sign, at most 20 digits, no overflow) ending at a stop char. */
static int parse_u64(const char **p, const char *end, uint64_t *v) {
    const char *s = *p;
    uint64_t x = 0;
    if (s >= end || *s < '0' || *s > '9') return 0;
    for (; s < end && *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (x > (UINT64_MAX - d) / 10) return 0;
        x = x * 10 + d;
    }
    *p = s;
    *v = x;
    return 1;
}

typedef struct { uint64_t key, offset; } idx_entry;

static int by_key(const void *a, const void *b) {
    uint64_t x = ((const idx_entry *)a)->key, y = ((const idx_entry *)b)->key;
    return (x > y) - (x < y);
}

static int64_t count_lines(const char *s, size_t n) {
    int64_t lines = 0;
    for (size_t i = 0; i < n; i++) lines += s[i] == '\n';
    return lines + (n > 0 && s[n - 1] != '\n');
}

/* Parses "key\toffset" lines (a trailing '\r' tolerated, empty last line allowed) into entries. */
static int parse_idx(fu_recordio *r, const char *s, size_t n, idx_entry **out) {
    idx_entry *e = malloc(((size_t)count_lines(s, n) + 1) * sizeof *e);
    if (!e) return fu_fail(FU_E_INTERNAL, "%s: out of memory for the index", r->label);
    const char *p = s, *end = s + n;
    int64_t k = 0;
    for (int64_t line = 1; p < end; line++) {
        idx_entry x;
        int ok = parse_u64(&p, end, &x.key) && p < end && *p++ == '\t' && parse_u64(&p, end, &x.offset);
        if (ok && p < end && *p == '\r') p++;
        if (ok && p < end) ok = *p++ == '\n';
        if (!ok) {
            free(e);
            return fu_fail(FU_E_INPUT, "%s index: line %lld is not 'key<TAB>offset'", r->label, (long long)line);
        }
        if (x.offset > r->size || r->size - x.offset < 8) {
            free(e);
            return fu_fail(FU_E_INPUT, "%s index: line %lld: offset %llu outside the %llu-byte file", r->label,
                           (long long)line, (unsigned long long)x.offset, (unsigned long long)r->size);
        }
        e[k++] = x;
    }
    qsort(e, (size_t)k, sizeof *e, by_key);
    for (int64_t i = 1; i < k; i++)
        if (e[i].key == e[i - 1].key) {
            uint64_t dup = e[i].key;
            free(e);
            return fu_fail(FU_E_INPUT, "%s index: key %llu appears twice", r->label, (unsigned long long)dup);
        }
    r->n = k;
    *out = e;
    return FU_OK;
}

static int load_index(fu_recordio *r, const char *idx, size_t n) {
    idx_entry *e = NULL;
    int rc = parse_idx(r, idx, n, &e);
    if (rc != FU_OK) return rc;
    r->keys = malloc(((size_t)r->n + 1) * sizeof *r->keys);
    r->offsets = malloc(((size_t)r->n + 1) * sizeof *r->offsets);
    if (r->keys && r->offsets)
        for (int64_t i = 0; i < r->n; i++) { r->keys[i] = e[i].key; r->offsets[i] = e[i].offset; }
    free(e);
    return r->keys && r->offsets ? FU_OK : fu_fail(FU_E_INTERNAL, "%s: out of memory for the index", r->label);
}

/* ---- open / close -------------------------------------------------------------------------- */

static fu_recordio *new_reader(const char *label) {
    fu_recordio *r = calloc(1, sizeof *r);
    if (r && !(r->label = strdup(label))) { free(r); r = NULL; }
    if (!r) return fu_fail_null(FU_E_INTERNAL, "recordio: out of memory");
    r->fd = -1;
    return r;
}

fu_recordio *fu_recordio_open_mem(const void *rec, size_t rec_size, const char *idx, size_t idx_size, const char *label) {
    fu_recordio *r = new_reader(label);
    if (!r) return NULL;
    r->mem = rec;
    r->size = rec_size;
    if (load_index(r, idx, idx_size) != FU_OK) { fu_recordio_close(r); return NULL; }
    return r;
}

/* rec_path with a trailing ".rec" replaced by ".idx" (or ".idx" appended). */
static char *default_idx_path(const char *rec_path) {
    size_t n = strlen(rec_path);
    char *s = malloc(n + 5);
    if (!s) return NULL;
    memcpy(s, rec_path, n + 1);
    if (n >= 4 && !strcmp(rec_path + n - 4, ".rec")) s[n - 4] = '\0';
    strcat(s, ".idx");
    return s;
}

/* Opens the .rec as a regular file and records its size. */
static int open_rec(fu_recordio *r, const char *path) {
    struct stat st;
    if ((r->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return fu_fail(FU_E_INPUT, "%s: cannot open (%s)", path, strerror(errno));
    if (fstat(r->fd, &st) != 0 || !S_ISREG(st.st_mode)) return fu_fail(FU_E_INPUT, "%s: not a regular file", path);
    r->size = (uint64_t)st.st_size;
    return FU_OK;
}

fu_recordio *fu_recordio_open(const char *rec_path, const char *idx_path) {
    fu_recordio *r = new_reader(rec_path);
    if (!r) return NULL;
    char *own_idx = idx_path ? NULL : default_idx_path(rec_path);
    unsigned char *idx = NULL;
    size_t idx_size = 0;
    int rc = idx_path || own_idx ? open_rec(r, rec_path) : fu_fail(FU_E_INTERNAL, "recordio: out of memory");
    if (rc == FU_OK) rc = fu_read_file(idx_path ? idx_path : own_idx, FU_RECORDIO_MAX_IDX, &idx, &idx_size);
    if (rc == FU_OK) rc = load_index(r, (const char *)idx, idx_size);
    free(idx);
    free(own_idx);
    if (rc != FU_OK) { fu_recordio_close(r); return NULL; }
    return r;
}

void fu_recordio_close(fu_recordio *r) {
    if (!r) return;
    if (r->fd >= 0) close(r->fd);
    free(r->keys);
    free(r->offsets);
    free(r->label);
    free(r);
}

int64_t fu_recordio_find(const fu_recordio *r, uint64_t key) {
    int64_t lo = 0, hi = r->n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (r->keys[mid] < key) lo = mid + 1;
        else hi = mid;
    }
    return lo < r->n && r->keys[lo] == key ? lo : -1;
}

/* ---- records ------------------------------------------------------------------------------- */

/* n bytes at offset (the caller checked offset + n <= size). */
static int read_at(const fu_recordio *r, uint64_t offset, void *dst, size_t n) {
    if (r->mem) { memcpy(dst, r->mem + offset, n); return FU_OK; }
    for (size_t done = 0; done < n;) {
        ssize_t got = pread(r->fd, (char *)dst + done, n - done, (off_t)(offset + done));
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return fu_fail(FU_E_INPUT, "%s: read failed at byte %llu (%s)", r->label,
                                     (unsigned long long)(offset + done), got < 0 ? strerror(errno) : "file shrank");
        done += (size_t)got;
    }
    return FU_OK;
}

/* Appends one part (plus the magic number between parts) to *buf. */
static int append_part(const fu_recordio *r, uint64_t pos, uint32_t len, int first, unsigned char **buf, size_t *size) {
    size_t extra = (first ? 0 : 4) + (size_t)len;
    if (*size + extra > FU_RECORDIO_MAX_RECORD)
        return fu_fail(FU_E_INPUT, "%s: record grows past %zu bytes at byte %llu", r->label, FU_RECORDIO_MAX_RECORD, (unsigned long long)pos);
    unsigned char *b = realloc(*buf, *size + extra + 1);
    if (!b) return fu_fail(FU_E_INTERNAL, "%s: out of memory", r->label);
    *buf = b;
    if (!first) {
        const unsigned char magic[4] = {0x0a, 0x23, 0xd7, 0xce};
        memcpy(b + *size, magic, 4);
        *size += 4;
    }
    int rc = read_at(r, pos + 8, b + *size, len);
    *size += len;
    return rc;
}

int fu_recordio_read(const fu_recordio *r, int64_t i, unsigned char **payload, size_t *size) {
    *payload = NULL;
    *size = 0;
    if (i < 0 || i >= r->n) return fu_fail(FU_E_INPUT, "%s: no index entry %lld", r->label, (long long)i);
    uint64_t pos = r->offsets[i], key = r->keys[i];
    unsigned char *buf = NULL;
    size_t n = 0;
    int rc = FU_OK;
    for (int part = 0;; part++) {
        unsigned char head[8];
        if (pos > r->size || r->size - pos < 8) {
            rc = fu_fail(FU_E_INPUT, "%s: record %llu is cut off at byte %llu (part %d missing)", r->label,
                         (unsigned long long)key, (unsigned long long)pos, part + 1);
            break;
        }
        if ((rc = read_at(r, pos, head, 8)) != FU_OK) break;
        uint32_t magic = le32(head), lrec = le32(head + 4), cflag = lrec >> LEN_BITS, len = lrec & LEN_MASK;
        uint64_t padded = ((uint64_t)len + 3) & ~(uint64_t)3;
        int ok_flag = part == 0 ? (cflag == CFLAG_WHOLE || cflag == CFLAG_FIRST) : (cflag == CFLAG_MIDDLE || cflag == CFLAG_LAST);
        if (magic != FU_RECORDIO_MAGIC) {
            rc = fu_fail(FU_E_INPUT, "%s: record %llu: no RecordIO magic at byte %llu", r->label, (unsigned long long)key, (unsigned long long)pos);
        } else if (!ok_flag) {
            rc = fu_fail(FU_E_INPUT, "%s: record %llu: continuation flag %u out of sequence in part %d at byte %llu",
                         r->label, (unsigned long long)key, cflag, part + 1, (unsigned long long)pos);
        } else if (r->size - pos - 8 < len) {
            rc = fu_fail(FU_E_INPUT, "%s: record %llu: length %u at byte %llu runs past the end of the file",
                         r->label, (unsigned long long)key, len, (unsigned long long)pos);
        } else {
            rc = append_part(r, pos, len, part == 0, &buf, &n);
        }
        if (rc != FU_OK || cflag == CFLAG_WHOLE || cflag == CFLAG_LAST) break;
        pos += 8 + padded;
    }
    if (rc != FU_OK) { free(buf); return rc; }
    if (!buf && !(buf = malloc(1))) return fu_fail(FU_E_INTERNAL, "%s: out of memory", r->label);
    *payload = buf;
    *size = n;
    return FU_OK;
}

int fu_irheader_unpack(const unsigned char *p, size_t size, fu_irheader *h, const char *what) {
    if (size < FU_IRHEADER_SIZE) return fu_fail(FU_E_INPUT, "%s: payload of %zu bytes is shorter than its 24-byte header", what, size);
    h->flag = le32(p);
    uint32_t bits = le32(p + 4);
    memcpy(&h->label, &bits, sizeof h->label);
    h->id = le64(p + 8);
    h->id2 = le64(p + 16);
    size_t rest = size - FU_IRHEADER_SIZE;
    if (h->flag > rest / 4)
        return fu_fail(FU_E_INPUT, "%s: header announces %u labels but the payload has %zu bytes after the header", what, h->flag, rest);
    h->labels = p + FU_IRHEADER_SIZE;
    h->data = h->labels + (size_t)h->flag * 4;
    h->data_size = rest - (size_t)h->flag * 4;
    if (h->flag > 0) h->label = fu_irheader_label(h, 0);
    return FU_OK;
}

float fu_irheader_label(const fu_irheader *h, uint32_t k) {
    uint32_t bits = le32(h->labels + (size_t)k * 4);
    float v;
    memcpy(&v, &bits, sizeof v);
    return v;
}
