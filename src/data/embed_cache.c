#include "data/embed_cache.h"
#include "core/error.h"
#include "io/fileutil.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAGIC "FUEC"
#define VERSION 1u
#define MAX_TAG 256
#define MAX_DIM 65536
#define MAX_CACHE_FILE ((size_t)4 << 30)

struct fu_ecache {
    char *path, *tag;
    int dim;
    int count, cap;            /* records; slots is a power of two > 2 * count */
    fu_ecache_key *keys;
    float *vecs;               /* count x dim, insertion order */
    int *slots, n_slots;       /* open addressing: record index + 1, 0 = empty */
};

static uint64_t fnv1a(const unsigned char *p, size_t n, uint64_t h) {
    for (size_t i = 0; i < n; i++) { h ^= p[i]; h *= 0x100000001b3ull; }
    return h;
}

fu_ecache_key fu_ecache_key_bytes(const void *data, size_t size) {
    fu_ecache_key k;
    k.h[0] = fnv1a(data, size, 0xcbf29ce484222325ull) ^ (uint64_t)size;
    k.h[1] = fnv1a(data, size, 0x84222325cbf29ce4ull) + (uint64_t)size * 0x9e3779b97f4a7c15ull;
    return k;
}

int fu_ecache_key_file(const char *path, fu_ecache_key *key) {
    unsigned char *data;
    size_t size;
    int rc = fu_read_file(path, (size_t)1 << 31, &data, &size);
    if (rc != FU_OK) return rc;
    *key = fu_ecache_key_bytes(data, size);
    free(data);
    return FU_OK;
}

static int slot_of(const fu_ecache *c, fu_ecache_key k) {
    int mask = c->n_slots - 1, i = (int)(k.h[0] & (uint64_t)mask);
    while (c->slots[i]) {
        const fu_ecache_key *e = &c->keys[c->slots[i] - 1];
        if (e->h[0] == k.h[0] && e->h[1] == k.h[1]) return i;
        i = (i + 1) & mask;
    }
    return i;
}

static int rehash(fu_ecache *c, int n_slots) {
    int *slots = fu_calloc((size_t)n_slots, sizeof *slots);
    if (!slots) return FU_E_INTERNAL;
    free(c->slots);
    c->slots = slots;
    c->n_slots = n_slots;
    for (int r = 0; r < c->count; r++) c->slots[slot_of(c, c->keys[r])] = r + 1;
    return FU_OK;
}

int fu_ecache_get(const fu_ecache *c, fu_ecache_key key, float *vec) {
    int r = c->slots[slot_of(c, key)];
    if (!r) return 0;
    memcpy(vec, c->vecs + (size_t)(r - 1) * c->dim, sizeof(float) * (size_t)c->dim);
    return 1;
}

int fu_ecache_put(fu_ecache *c, fu_ecache_key key, const float *vec) {
    int s = slot_of(c, key);
    if (c->slots[s]) {
        memcpy(c->vecs + (size_t)(c->slots[s] - 1) * c->dim, vec, sizeof(float) * (size_t)c->dim);
        return FU_OK;
    }
    if (c->count == c->cap) {
        int cap = c->cap ? 2 * c->cap : 1024;
        fu_ecache_key *keys = realloc(c->keys, (size_t)cap * sizeof *keys);
        if (keys) c->keys = keys;
        float *vecs = realloc(c->vecs, (size_t)cap * (size_t)c->dim * sizeof *vecs);
        if (vecs) c->vecs = vecs;
        if (!keys || !vecs) return fu_fail(FU_E_INTERNAL, "embedding cache: out of memory");
        c->cap = cap;
    }
    c->keys[c->count] = key;
    memcpy(c->vecs + (size_t)c->count * c->dim, vec, sizeof(float) * (size_t)c->dim);
    c->count++;
    if (2 * c->count >= c->n_slots) return rehash(c, 2 * c->n_slots);
    c->slots[slot_of(c, key)] = c->count;
    return FU_OK;
}

int fu_ecache_count(const fu_ecache *c) { return c->count; }

static uint32_t get_u32(const unsigned char *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

/* Reads records from an existing file; returns 0 (and leaves the cache empty) on any mismatch. */
static int load_records(fu_ecache *c, const unsigned char *d, size_t n) {
    size_t tag_len = strlen(c->tag);
    if (n < 16 || memcmp(d, MAGIC, 4) || get_u32(d + 4) != VERSION || get_u32(d + 8) != (uint32_t)c->dim ||
        get_u32(d + 12) != tag_len || n < 16 + tag_len || memcmp(d + 16, c->tag, tag_len))
        return 0;
    size_t rec = 16 + sizeof(float) * (size_t)c->dim, off = 16 + tag_len;
    if ((n - off) % rec) return 0;
    float *vec = fu_malloc(sizeof(float) * (size_t)c->dim);
    if (!vec) return 0;
    for (; off < n; off += rec) {
        fu_ecache_key k;
        memcpy(&k, d + off, sizeof k);
        memcpy(vec, d + off + 16, sizeof(float) * (size_t)c->dim);
        if (fu_ecache_put(c, k, vec) != FU_OK) break;
    }
    free(vec);
    return 1;
}

fu_ecache *fu_ecache_open(const char *path, const char *tag, int dim) {
    if (dim < 1 || dim > MAX_DIM || strlen(tag) > MAX_TAG)
        return fu_fail_null(FU_E_INPUT, "embedding cache: bad dim %d or tag", dim);
    fu_ecache *c = fu_calloc(1, sizeof *c);
    if (!c) return NULL;
    c->path = strdup(path);
    c->tag = strdup(tag);
    c->dim = dim;
    if (!c->path || !c->tag || rehash(c, 2048) != FU_OK) { fu_ecache_free(c); return fu_fail_null(FU_E_INTERNAL, "out of memory"); }
    struct stat st;
    if (stat(path, &st) != 0) return c;                  /* no cache yet */
    unsigned char *data;
    size_t size;
    if (fu_read_file(path, MAX_CACHE_FILE, &data, &size) == FU_OK) {
        if (!load_records(c, data, size))
            fprintf(stderr, "warning: %s is not a cache of %d-d '%s' vectors; it will be rebuilt\n", path, dim, tag);
        free(data);
    }
    fu_clear_error();
    return c;
}

void fu_ecache_free(fu_ecache *c) {
    if (!c) return;
    free(c->path); free(c->tag); free(c->keys); free(c->vecs); free(c->slots);
    free(c);
}

static void put_u32(unsigned char *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i)); }

int fu_ecache_save(const fu_ecache *c) {
    fu_atomic_file af;
    int rc = fu_atomic_open(&af, c->path);
    if (rc != FU_OK) return rc;
    unsigned char head[16];
    memcpy(head, MAGIC, 4);
    put_u32(head + 4, VERSION);
    put_u32(head + 8, (uint32_t)c->dim);
    put_u32(head + 12, (uint32_t)strlen(c->tag));
    int ok = fwrite(head, 1, 16, af.f) == 16 && fwrite(c->tag, 1, strlen(c->tag), af.f) == strlen(c->tag);
    for (int r = 0; ok && r < c->count; r++)
        ok = fwrite(&c->keys[r], sizeof c->keys[r], 1, af.f) == 1 &&
             fwrite(c->vecs + (size_t)r * c->dim, sizeof(float), (size_t)c->dim, af.f) == (size_t)c->dim;
    if (!ok) { fu_atomic_abort(&af); return fu_fail(FU_E_INPUT, "%s: write failed", c->path); }
    return fu_atomic_commit(&af);
}

static int make_dir(const char *p) { return mkdir(p, 0755) == 0 || errno == EEXIST; }

int fu_ecache_default_path(const char *name, char *buf, size_t cap) {
    const char *base = getenv("FACEUP_CACHE"), *home = getenv("HOME");
    char root[2048];
    if (base && *base) snprintf(root, sizeof root, "%s", base);
    else if (home && *home) snprintf(root, sizeof root, "%s/.cache/faceup", home);
    else return fu_fail(FU_E_INPUT, "embedding cache: neither FACEUP_CACHE nor HOME is set");
    char dir[2100];
    snprintf(dir, sizeof dir, "%s/embeddings", root);
    if (!make_dir(root) || !make_dir(dir)) return fu_fail(FU_E_INPUT, "embedding cache: cannot create %s", dir);
    int n = snprintf(buf, cap, "%s/%s.bin", dir, name);
    if (n < 0 || (size_t)n >= cap) return fu_fail(FU_E_INPUT, "embedding cache: path too long");
    return FU_OK;
}
