/* Restricted pickle interpreter (see pickle.h). The machine is the usual one: a value stack, a
 * stack of marks (positions in the value stack), and a memo indexed by BINPUT/BINGET keys.
 * As in CPython, a mark acts as a fence: ordinary pops may not reach below the newest mark. */
#include "io/pickle.h"
#include "core/error.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_BYTES (64u << 10)
#define MAX_GLOBAL_NAME 256

typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} chunk;

struct fu_pickle {
    const uint8_t *data;
    size_t size, pos, op_pos;   /* op_pos: offset of the opcode being run (for messages) */
    char label[128];
    const fu_pk_hooks *hooks;
    chunk *chunks;
    size_t pool_bytes;
    fu_pk_value **stack;
    size_t sp, stack_cap;
    size_t *marks;
    size_t n_marks;
    fu_pk_value **memo;
    size_t memo_cap, memo_count; /* memo_count: keys in use (MEMOIZE's next key) */
};

/* ---- pool ---------------------------------------------------------------------------- */

void *fu_pk_alloc(fu_pickle *pk, size_t bytes) {
    if (bytes > FU_PK_MAX_BYTES) return fu_fail_null(FU_E_INPUT, "%s: pickle needs too much memory", pk->label);
    bytes = (bytes + 15) & ~(size_t)15;
    chunk *c = pk->chunks;
    if (!c || c->cap - c->used < bytes) {
        size_t cap = bytes > CHUNK_BYTES / 4 ? bytes : CHUNK_BYTES;
        if (pk->pool_bytes + cap > FU_PK_MAX_BYTES)
            return fu_fail_null(FU_E_INPUT, "%s: pickle needs more than %zu MiB of memory", pk->label, FU_PK_MAX_BYTES >> 20);
        chunk *n = malloc(sizeof *n + cap);
        if (!n) return fu_fail_null(FU_E_INTERNAL, "%s: out of memory", pk->label);
        n->used = 0;
        n->cap = cap;
        pk->pool_bytes += cap;
        if (c && cap != CHUNK_BYTES) { /* keep filling the current chunk after a big one */
            n->next = c->next;
            c->next = n;
            c = n;
        } else {
            n->next = c;
            pk->chunks = c = n;
        }
    }
    void *p = c->data + c->used;
    c->used += bytes;
    memset(p, 0, bytes);
    return p;
}

fu_pk_value *fu_pk_new(fu_pickle *pk, fu_pk_kind kind) {
    fu_pk_value *v = fu_pk_alloc(pk, sizeof *v);
    if (v) v->kind = kind;
    return v;
}

const char *fu_pk_label(const fu_pickle *pk) { return pk->label; }

void fu_pickle_free(fu_pickle *pk) {
    if (!pk) return;
    for (chunk *c = pk->chunks, *next; c; c = next) { next = c->next; free(c); }
    free(pk->stack);
    free(pk->marks);
    free(pk->memo);
    free(pk);
}

const char *fu_pk_describe(const fu_pk_value *v, char *buf, size_t n) {
    static const char *kinds[] = {"None", "bool", "int", "float", "str", "bytes", "tuple", "list", "dict", "global", "object"};
    if (!v) snprintf(buf, n, "nothing");
    else if (v->kind == FU_PK_STR) snprintf(buf, n, "str '%.40s'", v->s);
    else if (v->kind == FU_PK_INT) snprintf(buf, n, "int %lld", (long long)v->i);
    else if (v->kind == FU_PK_TUPLE || v->kind == FU_PK_LIST || v->kind == FU_PK_DICT) snprintf(buf, n, "%s of %zu", kinds[v->kind], v->n);
    else snprintf(buf, n, "%s", kinds[v->kind]);
    return buf;
}

/* ---- machine helpers ------------------------------------------------------------------- */

static int fail_at(fu_pickle *pk, const char *what) {
    return fu_fail(FU_E_INPUT, "%s: pickle: %s (opcode 0x%02x at offset %zu)", pk->label, what,
                   pk->op_pos < pk->size ? pk->data[pk->op_pos] : 0, pk->op_pos);
}

static const uint8_t *take(fu_pickle *pk, size_t n) {
    if (n > pk->size - pk->pos) { fail_at(pk, "truncated pickle"); return NULL; }
    const uint8_t *p = pk->data + pk->pos;
    pk->pos += n;
    return p;
}

static size_t fence(const fu_pickle *pk) { return pk->n_marks ? pk->marks[pk->n_marks - 1] : 0; }

static int push(fu_pickle *pk, fu_pk_value *v) {
    if (!v) return fu_last_code() ? fu_last_code() : FU_E_INTERNAL;
    if (pk->sp == pk->stack_cap) {
        if (pk->stack_cap >= FU_PK_MAX_STACK) return fail_at(pk, "stack too deep");
        size_t cap = pk->stack_cap ? pk->stack_cap * 2 : 64;
        if (cap > FU_PK_MAX_STACK) cap = FU_PK_MAX_STACK;
        fu_pk_value **s = realloc(pk->stack, cap * sizeof *s);
        if (!s) return fu_fail(FU_E_INTERNAL, "%s: out of memory", pk->label);
        pk->stack = s;
        pk->stack_cap = cap;
    }
    pk->stack[pk->sp++] = v;
    return FU_OK;
}

static fu_pk_value *pop(fu_pickle *pk) {
    if (pk->sp <= fence(pk)) { fail_at(pk, "stack underflow"); return NULL; }
    return pk->stack[--pk->sp];
}

static fu_pk_value *top(fu_pickle *pk) {
    if (pk->sp <= fence(pk)) { fail_at(pk, "stack underflow"); return NULL; }
    return pk->stack[pk->sp - 1];
}

/* Removes the newest mark; *first is the stack position of the first item above it. */
static int pop_mark(fu_pickle *pk, size_t *first) {
    if (!pk->n_marks) return fail_at(pk, "no MARK on the stack");
    *first = pk->marks[--pk->n_marks];
    return FU_OK;
}

static int seq_reserve(fu_pickle *pk, fu_pk_value *v, size_t slots_needed) {
    if (slots_needed <= v->cap) return FU_OK;
    size_t cap = v->cap ? v->cap : 4;
    while (cap < slots_needed) {
        if (cap > FU_PK_MAX_BYTES / sizeof(fu_pk_value *) / 2) return fail_at(pk, "container too large");
        cap *= 2;
    }
    fu_pk_value **items = fu_pk_alloc(pk, cap * sizeof *items);
    if (!items) return fu_last_code();
    if (v->items) memcpy(items, v->items, v->cap * sizeof *items);
    v->items = items;
    v->cap = cap;
    return FU_OK;
}

/* A new tuple/list holding stack[first..sp) (those items leave the stack). */
static fu_pk_value *collect(fu_pickle *pk, fu_pk_kind kind, size_t first) {
    fu_pk_value *v = fu_pk_new(pk, kind);
    if (!v) return NULL;
    size_t n = pk->sp - first;
    if (n && seq_reserve(pk, v, n)) return NULL;
    if (n) memcpy(v->items, pk->stack + first, n * sizeof *v->items);
    v->n = n;
    pk->sp = first;
    return v;
}

/* Appends stack[first..sp) to `into` (a list: one item each; a dict: key/value pairs). */
static int extend(fu_pickle *pk, fu_pk_value *into, size_t first) {
    size_t n = pk->sp - first;
    if (into->kind == FU_PK_DICT && n % 2) return fail_at(pk, "odd number of items for a dict");
    size_t used = into->kind == FU_PK_DICT ? 2 * into->n : into->n;
    if (n > SIZE_MAX / 2 - used) return fail_at(pk, "container too large");
    int rc = seq_reserve(pk, into, used + n);
    if (rc) return rc;
    if (n) memcpy(into->items + used, pk->stack + first, n * sizeof *into->items);
    into->n += into->kind == FU_PK_DICT ? n / 2 : n;
    pk->sp = first;
    return FU_OK;
}

static fu_pk_value *new_int(fu_pickle *pk, int64_t i) {
    fu_pk_value *v = fu_pk_new(pk, FU_PK_INT);
    if (v) v->i = i;
    return v;
}

static fu_pk_value *new_string(fu_pickle *pk, fu_pk_kind kind, uint64_t len) {
    if (len > FU_PK_MAX_STRING) { fail_at(pk, "string too long"); return NULL; }
    const uint8_t *p = take(pk, (size_t)len);
    fu_pk_value *v = p ? fu_pk_new(pk, kind) : NULL;
    char *s = v ? fu_pk_alloc(pk, (size_t)len + 1) : NULL;
    if (!s) return NULL;
    memcpy(s, p, (size_t)len);
    v->s = s;
    v->n = (size_t)len;
    return v;
}

static uint64_t read_le(const uint8_t *p, int n) {
    uint64_t x = 0;
    for (int i = n - 1; i >= 0; i--) x = x << 8 | p[i];
    return x;
}

/* ---- opcodes with more than a line of work ---------------------------------------------- */

static int op_long1(fu_pickle *pk) {
    const uint8_t *n = take(pk, 1);
    if (!n) return fu_last_code();
    if (*n > 8) return fail_at(pk, "integer wider than 64 bits");
    const uint8_t *p = take(pk, *n);
    if (!p) return fu_last_code();
    uint64_t u = read_le(p, *n);
    if (*n && *n < 8 && (p[*n - 1] & 0x80)) u |= ~(uint64_t)0 << (8 * *n); /* sign-extend */
    int64_t i;
    memcpy(&i, &u, sizeof i);
    return push(pk, new_int(pk, i));
}

static int op_binfloat(fu_pickle *pk) {
    const uint8_t *p = take(pk, 8);
    if (!p) return fu_last_code();
    uint64_t u = 0;
    for (int i = 0; i < 8; i++) u = u << 8 | p[i]; /* big-endian */
    fu_pk_value *v = fu_pk_new(pk, FU_PK_FLOAT);
    if (v) memcpy(&v->f, &u, 8);
    return push(pk, v);
}

static int read_line(fu_pickle *pk, char *out) {
    for (size_t n = 0; n < MAX_GLOBAL_NAME; n++) {
        const uint8_t *c = take(pk, 1);
        if (!c) return fu_last_code();
        if (*c == '\n') { out[n] = 0; return FU_OK; }
        if (*c == 0) return fail_at(pk, "NUL byte in a global name");
        out[n] = (char)*c;
    }
    return fail_at(pk, "global name too long");
}

static int do_global(fu_pickle *pk, const char *module, const char *name) {
    if (!pk->hooks->find_global)
        return fu_fail(FU_E_INPUT, "%s: refusing pickle global '%s.%s' (loading never runs code)", pk->label, module, name);
    return push(pk, pk->hooks->find_global(pk, pk->hooks->ctx, module, name));
}

static int op_global(fu_pickle *pk) {
    char module[MAX_GLOBAL_NAME], name[MAX_GLOBAL_NAME];
    int rc = read_line(pk, module);
    if (!rc) rc = read_line(pk, name);
    return rc ? rc : do_global(pk, module, name);
}

static int op_stack_global(fu_pickle *pk) {
    fu_pk_value *name = pop(pk), *module = name ? pop(pk) : NULL;
    if (!module) return fu_last_code();
    if (name->kind != FU_PK_STR || module->kind != FU_PK_STR || strlen(name->s) != name->n || strlen(module->s) != module->n)
        return fail_at(pk, "STACK_GLOBAL needs two strings");
    return do_global(pk, module->s, name->s);
}

static int op_reduce(fu_pickle *pk) {
    fu_pk_value *args = pop(pk), *callable = args ? pop(pk) : NULL;
    if (!callable) return fu_last_code();
    if (callable->kind != FU_PK_GLOBAL) return fail_at(pk, "REDUCE of something that is not an allowed global");
    if (args->kind != FU_PK_TUPLE) return fail_at(pk, "REDUCE arguments are not a tuple");
    if (!pk->hooks->reduce) return fail_at(pk, "REDUCE not allowed");
    return push(pk, pk->hooks->reduce(pk, pk->hooks->ctx, callable, args));
}

static int op_build(fu_pickle *pk) {
    fu_pk_value *state = pop(pk), *obj = state ? pop(pk) : NULL;
    if (!obj) return fu_last_code();
    if (!pk->hooks->build) return fail_at(pk, "BUILD not allowed");
    return push(pk, pk->hooks->build(pk, pk->hooks->ctx, obj, state));
}

static int op_persid(fu_pickle *pk) {
    fu_pk_value *pid = pop(pk);
    if (!pid) return fu_last_code();
    if (!pk->hooks->persistent_load) return fail_at(pk, "persistent ids not allowed");
    return push(pk, pk->hooks->persistent_load(pk, pk->hooks->ctx, pid));
}

static int memo_put(fu_pickle *pk, uint64_t key) {
    fu_pk_value *v = top(pk);
    if (!v) return fu_last_code();
    if (key >= FU_PK_MAX_MEMO) return fail_at(pk, "memo key too large");
    /* Picklers number memo entries 0, 1, 2, ...; refusing far-off keys keeps the memo's memory
     * proportional to the puts actually made. */
    if (key > pk->memo_count + 4096) return fail_at(pk, "memo key far beyond the keys in use");
    if (key >= pk->memo_cap) {
        size_t cap = pk->memo_cap ? pk->memo_cap : 256;
        while (cap <= key) cap *= 2;
        fu_pk_value **m = realloc(pk->memo, cap * sizeof *m);
        if (!m) return fu_fail(FU_E_INTERNAL, "%s: out of memory", pk->label);
        memset(m + pk->memo_cap, 0, (cap - pk->memo_cap) * sizeof *m);
        pk->memo = m;
        pk->memo_cap = cap;
    }
    if (!pk->memo[key]) pk->memo_count++;
    pk->memo[key] = v;
    return FU_OK;
}

static int memo_get(fu_pickle *pk, uint64_t key) {
    if (key >= pk->memo_cap || !pk->memo[key]) return fail_at(pk, "memo key not found");
    return push(pk, pk->memo[key]);
}

/* Reads an n-byte little-endian argument (n <= 8) into *x. */
static int arg(fu_pickle *pk, int n, uint64_t *x) {
    const uint8_t *p = take(pk, (size_t)n);
    if (!p) return fu_last_code();
    *x = read_le(p, n);
    return FU_OK;
}

static int op_mark(fu_pickle *pk) {
    if (pk->n_marks >= FU_PK_MAX_MARKS) return fail_at(pk, "too many nested MARKs");
    if (!pk->marks) {
        pk->marks = malloc(FU_PK_MAX_MARKS * sizeof *pk->marks);
        if (!pk->marks) return fu_fail(FU_E_INTERNAL, "%s: out of memory", pk->label);
    }
    pk->marks[pk->n_marks++] = pk->sp;
    return FU_OK;
}

/* SETITEMS / APPENDS: the container sits just below the mark. */
static int op_extend_from_mark(fu_pickle *pk, fu_pk_kind want) {
    size_t first = 0;
    int rc = pop_mark(pk, &first);
    if (rc) return rc;
    if (first == 0 || first - 1 < fence(pk)) return fail_at(pk, "stack underflow");
    fu_pk_value *into = pk->stack[first - 1];
    if (into->kind != want) return fail_at(pk, want == FU_PK_DICT ? "SETITEMS on something that is not a dict" : "APPENDS on something that is not a list");
    return extend(pk, into, first);
}

/* SETITEM / APPEND: n (2 or 1) items on top of the container. */
static int op_extend_one(fu_pickle *pk, fu_pk_kind want, size_t n) {
    if (pk->sp < fence(pk) + n + 1) return fail_at(pk, "stack underflow");
    fu_pk_value *into = pk->stack[pk->sp - n - 1];
    if (into->kind != want) return fail_at(pk, want == FU_PK_DICT ? "SETITEM on something that is not a dict" : "APPEND on something that is not a list");
    return extend(pk, into, pk->sp - n);
}

static int op_collect_from_mark(fu_pickle *pk, fu_pk_kind kind) {
    size_t first = 0;
    int rc = pop_mark(pk, &first);
    if (rc) return rc;
    if (kind != FU_PK_DICT) return push(pk, collect(pk, kind, first));
    fu_pk_value *d = fu_pk_new(pk, FU_PK_DICT);
    if (!d) return fu_last_code();
    rc = extend(pk, d, first);
    return rc ? rc : push(pk, d);
}

static int op_tuple_n(fu_pickle *pk, size_t n) {
    if (pk->sp < fence(pk) + n) return fail_at(pk, "stack underflow");
    return push(pk, collect(pk, FU_PK_TUPLE, pk->sp - n));
}

static int op_string(fu_pickle *pk, fu_pk_kind kind, int len_bytes) {
    uint64_t len = 0;
    int rc = arg(pk, len_bytes, &len);
    return rc ? rc : push(pk, new_string(pk, kind, len));
}

static int op_simple(fu_pickle *pk, fu_pk_kind kind, int64_t i) {
    fu_pk_value *v = fu_pk_new(pk, kind);
    if (v) v->i = i;
    return push(pk, v);
}

static int op_int(fu_pickle *pk, int bytes, int is_signed) {
    uint64_t x = 0;
    int rc = arg(pk, bytes, &x);
    if (rc) return rc;
    return push(pk, new_int(pk, is_signed ? (int64_t)(int32_t)(uint32_t)x : (int64_t)x));
}

static int op_memo(fu_pickle *pk, int key_bytes, int put) {
    uint64_t key = 0;
    int rc = arg(pk, key_bytes, &key);
    if (rc) return rc;
    return put ? memo_put(pk, key) : memo_get(pk, key);
}

/* Runs one opcode; *done becomes 1 at STOP. */
static int step(fu_pickle *pk, fu_pk_value **result, int *done) {
    pk->op_pos = pk->pos;
    const uint8_t *opp = take(pk, 1);
    if (!opp) return fu_last_code();
    uint64_t x = 0;
    switch (*opp) {
    case 0x80: { int rc = arg(pk, 1, &x); return rc ? rc : x > 5 ? fail_at(pk, "unsupported pickle protocol") : FU_OK; }
    case 0x95: return arg(pk, 8, &x); /* FRAME: framing is only a hint for buffered readers */
    case '.': *result = pop(pk); *done = 1; return *result ? FU_OK : fu_last_code();
    case '(': return op_mark(pk);
    case '0': return pop(pk) ? FU_OK : fu_last_code();
    case '1': { size_t first = 0; int rc = pop_mark(pk, &first); if (!rc) pk->sp = first; return rc; }
    case '2': { fu_pk_value *v = top(pk); return v ? push(pk, v) : fu_last_code(); }
    case 'N': return op_simple(pk, FU_PK_NONE, 0);
    case 0x88: return op_simple(pk, FU_PK_BOOL, 1);
    case 0x89: return op_simple(pk, FU_PK_BOOL, 0);
    case 'J': return op_int(pk, 4, 1);
    case 'K': return op_int(pk, 1, 0);
    case 'M': return op_int(pk, 2, 0);
    case 0x8a: return op_long1(pk);
    case 'G': return op_binfloat(pk);
    case 'X': return op_string(pk, FU_PK_STR, 4);
    case 0x8c: return op_string(pk, FU_PK_STR, 1);
    case 0x8d: return op_string(pk, FU_PK_STR, 8);
    case 'T': return op_string(pk, FU_PK_STR, 4);
    case 'U': return op_string(pk, FU_PK_STR, 1);
    case 'B': return op_string(pk, FU_PK_BYTES, 4);
    case 'C': return op_string(pk, FU_PK_BYTES, 1);
    case ')': return op_tuple_n(pk, 0);
    case 't': return op_collect_from_mark(pk, FU_PK_TUPLE);
    case 0x85: return op_tuple_n(pk, 1);
    case 0x86: return op_tuple_n(pk, 2);
    case 0x87: return op_tuple_n(pk, 3);
    case ']': return op_simple(pk, FU_PK_LIST, 0);
    case 'l': return op_collect_from_mark(pk, FU_PK_LIST);
    case 'a': return op_extend_one(pk, FU_PK_LIST, 1);
    case 'e': return op_extend_from_mark(pk, FU_PK_LIST);
    case '}': return op_simple(pk, FU_PK_DICT, 0);
    case 'd': return op_collect_from_mark(pk, FU_PK_DICT);
    case 's': return op_extend_one(pk, FU_PK_DICT, 2);
    case 'u': return op_extend_from_mark(pk, FU_PK_DICT);
    case 'q': return op_memo(pk, 1, 1);
    case 'r': return op_memo(pk, 4, 1);
    case 'h': return op_memo(pk, 1, 0);
    case 'j': return op_memo(pk, 4, 0);
    case 0x94: return memo_put(pk, pk->memo_count); /* MEMOIZE: key = len(memo) */
    case 'c': return op_global(pk);
    case 0x93: return op_stack_global(pk);
    case 'R': return op_reduce(pk);
    case 'b': return op_build(pk);
    case 'Q': return op_persid(pk);
    default: return fail_at(pk, "unsupported opcode");
    }
}

int fu_pickle_load(const void *data, size_t size, const char *label, const fu_pk_hooks *hooks,
                   fu_pickle **out, fu_pk_value **result) {
    *result = NULL;
    fu_pickle *pk = *out = fu_calloc(1, sizeof *pk);
    if (!pk) return FU_E_INTERNAL;
    pk->data = data;
    pk->size = size;
    pk->hooks = hooks;
    snprintf(pk->label, sizeof pk->label, "%s", label ? label : "pickle");
    int done = 0;
    while (!done) {
        if (pk->pos >= pk->size) return fu_fail(FU_E_INPUT, "%s: pickle: truncated (no STOP opcode)", pk->label);
        int rc = step(pk, result, &done);
        if (rc) { *result = NULL; return rc; }
    }
    return FU_OK;
}
