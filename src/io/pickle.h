/* A restricted pickle interpreter (protocols 2-4 binary opcodes) that builds inert values and
 * never executes anything: GLOBAL, REDUCE, BUILD and BINPERSID are handed to callbacks of the
 * client (pt.c), which accepts an allow-list and refuses everything else. Every value lives in
 * one pool owned by the fu_pickle and is freed with it; stack depth, memo size, string length,
 * container sizes and total memory are all bounded, so hostile input costs bounded resources.
 *
 * Supported opcodes: PROTO FRAME STOP MARK POP POP_MARK DUP NONE NEWTRUE NEWFALSE BININT BININT1
 * BININT2 LONG1 BINFLOAT BINUNICODE SHORT_BINUNICODE BINUNICODE8 BINSTRING SHORT_BINSTRING
 * BINBYTES SHORT_BINBYTES EMPTY_TUPLE TUPLE TUPLE1 TUPLE2 TUPLE3 EMPTY_LIST LIST APPEND APPENDS
 * EMPTY_DICT DICT SETITEM SETITEMS BINPUT LONG_BINPUT BINGET LONG_BINGET MEMOIZE GLOBAL
 * STACK_GLOBAL REDUCE BUILD BINPERSID. Others (text protocol 0, NEWOBJ, EXT*, sets, ...) are
 * refused with the opcode and its offset. */
#ifndef FU_PICKLE_H
#define FU_PICKLE_H
#include <stddef.h>
#include <stdint.h>

#define FU_PK_MAX_STACK 200000
#define FU_PK_MAX_MARKS 4096
#define FU_PK_MAX_MEMO (1 << 22)
#define FU_PK_MAX_STRING (1 << 20)
#define FU_PK_MAX_BYTES ((size_t)1 << 30) /* pool memory */

typedef enum {
    FU_PK_NONE, FU_PK_BOOL, FU_PK_INT, FU_PK_FLOAT, FU_PK_STR, FU_PK_BYTES,
    FU_PK_TUPLE, FU_PK_LIST, FU_PK_DICT,
    FU_PK_GLOBAL,  /* an allow-listed global; `id` is the client's code for it */
    FU_PK_OPAQUE,  /* a client object (a storage, a tensor); `id` says which kind */
} fu_pk_kind;

typedef struct fu_pk_value {
    fu_pk_kind kind;
    int id;                       /* GLOBAL / OPAQUE: client code */
    int64_t i;                    /* BOOL, INT */
    double f;                     /* FLOAT */
    const char *s;                /* STR, BYTES: NUL-terminated copy (may contain NULs) */
    size_t n;                     /* STR, BYTES: length; TUPLE, LIST: items; DICT: pairs */
    size_t cap;
    struct fu_pk_value **items;   /* TUPLE, LIST: n items; DICT: 2n (key, value, key, value, ...) */
    void *ptr;                    /* OPAQUE: client data (allocate it with fu_pk_alloc) */
} fu_pk_value;

typedef struct fu_pickle fu_pickle;

/* Client hooks. Each returns a value (allocated with fu_pk_alloc / fu_pk_new) or NULL after
 * fu_fail with a message; NULL aborts loading. */
typedef struct fu_pk_hooks {
    void *ctx;
    /* GLOBAL module.name: return a FU_PK_GLOBAL value, or refuse. */
    fu_pk_value *(*find_global)(fu_pickle *pk, void *ctx, const char *module, const char *name);
    /* REDUCE: callable(*args) where callable is a FU_PK_GLOBAL and args a FU_PK_TUPLE. */
    fu_pk_value *(*reduce)(fu_pickle *pk, void *ctx, fu_pk_value *callable, fu_pk_value *args);
    /* BUILD: obj.__setstate__(state); returns obj (or a replacement). */
    fu_pk_value *(*build)(fu_pickle *pk, void *ctx, fu_pk_value *obj, fu_pk_value *state);
    /* BINPERSID: the object a persistent id stands for. */
    fu_pk_value *(*persistent_load)(fu_pickle *pk, void *ctx, fu_pk_value *pid);
} fu_pk_hooks;

/* Runs the pickle in data[0..size) up to STOP. On success *result is the unpickled value
 * (valid until fu_pickle_free) and FU_OK is returned; on failure an error code with a message
 * prefixed by label. *out is set either way (free it). */
int fu_pickle_load(const void *data, size_t size, const char *label, const fu_pk_hooks *hooks,
                   fu_pickle **out, fu_pk_value **result);
void fu_pickle_free(fu_pickle *pk);
/* Label passed to fu_pickle_load (for messages of hooks). */
const char *fu_pk_label(const fu_pickle *pk);

/* Pool allocation (zeroed, 16-byte aligned), freed with the fu_pickle; NULL with fu_fail when
 * the memory limit is reached. */
void *fu_pk_alloc(fu_pickle *pk, size_t bytes);
fu_pk_value *fu_pk_new(fu_pickle *pk, fu_pk_kind kind);

/* "str 'abc'", "int 3", "tuple of 2", ... for messages. */
const char *fu_pk_describe(const fu_pk_value *v, char *buf, size_t n);

#endif
