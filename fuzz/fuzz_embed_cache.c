/* libFuzzer target for the embedding cache reader (src/data/embed_cache.c): the first byte
 * picks the vector size the caller asks for, the rest is the cache file. A file that loads
 * must have its first record findable, and whatever loaded (a rejected file loads as empty)
 * must survive a save and a reopen with the same record count and values. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "data/embed_cache.h"
#include "faceup.h"
#include "input_file.h"

#define TAG "dlib-resnet/dlib150"

static const int dims[4] = {1, 3, 4, 128};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int dim = dims[data[0] & 3];
    const char *path = fuzz_write_file(data + 1, size - 1);
    fu_ecache *c = fu_ecache_open(path, TAG, dim);
    if (!c) abort();   /* NULL only when out of memory */
    float *vec = malloc(sizeof(float) * (size_t)dim * 2);
    if (!vec) abort();
    size_t first = 1 + 16 + strlen(TAG);   /* where the first record's key would be */
    if (fu_ecache_count(c) > 0) {
        fu_ecache_key k;
        memcpy(&k, data + first, sizeof k);
        if (!fu_ecache_get(c, k, vec)) abort();
    }
    for (int i = 0; i < dim; i++) vec[i] = (float)i;
    fu_ecache_key extra = fu_ecache_key_bytes(data, size);
    if (fu_ecache_put(c, extra, vec) != FU_OK) abort();
    int expect = fu_ecache_count(c);
    if (fu_ecache_save(c) != FU_OK) abort();
    fu_ecache_free(c);
    fu_ecache *back = fu_ecache_open(path, TAG, dim);
    if (!back || fu_ecache_count(back) != expect || !fu_ecache_get(back, extra, vec + dim) ||
        memcmp(vec, vec + dim, sizeof(float) * (size_t)dim))
        abort();
    fu_ecache_free(back);
    free(vec);
    return 0;
}
