/* libFuzzer target for the packed face set reader (src/data/faces.c): arbitrary bytes as a
 * face set file; a set that loads has every image read back (plain and mirrored) and the
 * training loader run over every split. */
#include <stdint.h>
#include <stdlib.h>
#include "faceup.h"
#include "input_file.h"
#include "data/faces.h"

static volatile float sink;  /* keeps the pixel reads */

static void read_back(const fu_faces *set) {
    int64_t img = 3 * (int64_t)set->size * set->size;
    float *x = malloc(sizeof(float) * (size_t)img * 2);
    if (!x) return;
    for (int64_t i = 0; i < set->count; i++) {
        fu_faces_get(set, i, (int)(i & 1), x);
        sink += x[img - 1];
    }
    for (int split = 0; split <= FU_SPLIT_ALL; split++) {
        fu_faces_loader l;
        if (fu_faces_loader_init(&l, set, split, (uint64_t)set->count, 1) != FU_OK) continue;
        int64_t idx[2];
        fu_faces_loader_batch(&l, l.n - 1, 2, x, idx);   /* crosses an epoch boundary */
        if (idx[0] < 0 || idx[0] >= set->count || idx[1] < 0 || idx[1] >= set->count) abort();
        fu_faces_loader_free(&l);
    }
    free(x);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fu_faces *set;
    if (fu_faces_load(fuzz_write_file(data, size), &set) != FU_OK) return 0;
    if (set->size < 8 || set->count < 0) abort();
    read_back(set);
    fu_faces_free(set);
    return 0;
}
