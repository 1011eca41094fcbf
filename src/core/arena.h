/* Arena: bump allocation from a chain of large blocks. fu_arena_reset() rewinds without
 * freeing, so a loop that rebuilds the same graph every step allocates nothing after the
 * first step. Every allocation is 64-byte aligned (AVX-512 lines). */
#ifndef FU_ARENA_H
#define FU_ARENA_H
#include <stddef.h>

typedef struct fu_arena_block fu_arena_block;
typedef struct fu_arena {
    fu_arena_block *first;
    fu_arena_block *cur;
    size_t used_total;   /* bytes handed out since the last reset */
    size_t reserved;     /* bytes held in blocks */
} fu_arena;

void fu_arena_init(fu_arena *a);
void *fu_arena_alloc(fu_arena *a, size_t bytes);          /* NULL + fu_fail on failure */
void *fu_arena_calloc(fu_arena *a, size_t count, size_t size);
void fu_arena_reset(fu_arena *a);
void fu_arena_free(fu_arena *a);

#endif
