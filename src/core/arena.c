#include "arena.h"
#include "error.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_MIN_BLOCK ((size_t)4 << 20)

struct fu_arena_block {
    fu_arena_block *next;
    size_t size, used;
    unsigned char *mem;
};

void fu_arena_init(fu_arena *a) { memset(a, 0, sizeof *a); }

static fu_arena_block *block_new(size_t size) {
    fu_arena_block *b = fu_malloc(sizeof *b);
    if (!b) return NULL;
    b->mem = fu_aligned_alloc(size);
    if (!b->mem) { free(b); return NULL; }
    b->next = NULL;
    b->size = size;
    b->used = 0;
    return b;
}

void *fu_arena_alloc(fu_arena *a, size_t bytes) {
    size_t need = (bytes + 63) & ~(size_t)63;
    if (need < bytes || need > SIZE_MAX / 2) return fu_fail_null(FU_E_INPUT, "arena: allocation of %zu bytes is too large", bytes);
    if (need == 0) need = 64;
    /* Walk forward through existing blocks (kept from before a reset) before adding one. */
    while (a->cur && a->cur->size - a->cur->used < need) {
        if (!a->cur->next) break;
        a->cur = a->cur->next;
        a->cur->used = 0;
    }
    if (!a->cur || a->cur->size - a->cur->used < need) {
        fu_arena_block *b = block_new(need > ARENA_MIN_BLOCK ? need : ARENA_MIN_BLOCK);
        if (!b) return NULL;
        /* Insert after cur so later blocks stay reusable. */
        if (a->cur) { b->next = a->cur->next; a->cur->next = b; }
        else { b->next = a->first; a->first = b; }
        a->cur = b;
        a->reserved += b->size;
    }
    void *p = a->cur->mem + a->cur->used;
    a->cur->used += need;
    a->used_total += need;
    return p;
}

void *fu_arena_calloc(fu_arena *a, size_t count, size_t size) {
    if (size && count > SIZE_MAX / size) return fu_fail_null(FU_E_INPUT, "arena: size overflow");
    void *p = fu_arena_alloc(a, count * size);
    if (p) memset(p, 0, count * size);
    return p;
}

void fu_arena_reset(fu_arena *a) {
    a->cur = a->first;
    if (a->cur) a->cur->used = 0;
    a->used_total = 0;
}

void fu_arena_free(fu_arena *a) {
    fu_arena_block *b = a->first;
    while (b) {
        fu_arena_block *next = b->next;
        free(b->mem);
        free(b);
        b = next;
    }
    fu_arena_init(a);
}
