/* A cache of per-image vectors (embeddings, class scores) keyed by the image file's content, so
 * that re-running an evaluation skips the networks for images it has seen.
 *
 * Key: 128 bits, two FNV-1a 64-bit hashes of the file's bytes (different offset bases) mixed
 * with its size; a tag (model name + alignment, e.g. "dlib-resnet/dlib150") separates entries
 * of different pipelines. Accidental collisions are negligible at data-set sizes (2^-64 per
 * pair); the cache is a convenience, not a security boundary: delete it to recompute.
 *
 * File (little-endian, as the machines faceup builds for): "FUEC" magic, u32 version 1, u32 dim, u32 tag length, tag bytes, then
 * records of {u64 key[2], float vec[dim]} until the end. Written atomically by fu_ecache_save. */
#ifndef FU_DATA_EMBED_CACHE_H
#define FU_DATA_EMBED_CACHE_H
#include <stddef.h>
#include <stdint.h>

typedef struct fu_ecache fu_ecache;
typedef struct { uint64_t h[2]; } fu_ecache_key;

/* Opens the cache file at path for vectors of `dim` floats under `tag`; a missing file gives an
 * empty cache, a file of another tag/dim or a damaged one is ignored with a warning on stderr
 * (it will be overwritten on save). NULL only when out of memory. */
fu_ecache *fu_ecache_open(const char *path, const char *tag, int dim);
void fu_ecache_free(fu_ecache *c);
/* Key of a file's content. FU_OK or FU_E_INPUT (unreadable file) with a message. */
int fu_ecache_key_file(const char *path, fu_ecache_key *key);
fu_ecache_key fu_ecache_key_bytes(const void *data, size_t size);
/* Copies the vector for key into vec and returns 1, or returns 0 when absent. */
int fu_ecache_get(const fu_ecache *c, fu_ecache_key key, float *vec);
/* Adds or replaces. FU_OK or FU_E_INTERNAL. */
int fu_ecache_put(fu_ecache *c, fu_ecache_key key, const float *vec);
int fu_ecache_count(const fu_ecache *c);
/* Writes the cache atomically (creating the folder is the caller's job). */
int fu_ecache_save(const fu_ecache *c);

/* Default location: $FACEUP_CACHE or ~/.cache/faceup, plus "/embeddings/<name>.bin" (folders
 * created). FU_OK or FU_E_INPUT. */
int fu_ecache_default_path(const char *name, char *buf, size_t cap);

#endif
