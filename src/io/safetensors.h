/* safetensors files: read (with full validation) and atomic write.
 *
 * Layout: u64 little-endian header length N, N bytes of JSON
 *   {name: {"dtype": "F32", "shape": [d0, ...], "data_offsets": [begin, end]}, ...,
 *    "__metadata__": {key: string value}}
 * then the data area; offsets are byte offsets relative to the start of the data area, elements are
 * little-endian and C-ordered. Any dtype of dtype.h can be read (converted to float32 on access)
 * and written (converted from float32, integers rounded to nearest with a range check). */
#ifndef FU_SAFETENSORS_H
#define FU_SAFETENSORS_H
#include <stdint.h>
#include "core/tensor.h"
#include "io/dtype.h"

/* Largest accepted JSON header (bytes): refuses absurd lengths before allocating. */
#define FU_ST_MAX_HEADER ((uint64_t)100 * 1000 * 1000)

typedef struct fu_st_entry {
    char *name;
    fu_dtype dtype;
    int ndim;
    int64_t shape[FU_MAX_DIMS];
    int64_t numel;
    uint64_t begin, end;          /* byte range inside the data area */
} fu_st_entry;

typedef struct fu_st_meta { const char *key, *value; } fu_st_meta;

typedef struct fu_safetensors {
    char *label;                  /* file name used in messages */
    unsigned char *file;          /* the whole file */
    const unsigned char *data;    /* data area inside file */
    uint64_t data_size;
    int n_entries;
    fu_st_entry *entries;         /* sorted by name */
    int n_meta;
    fu_st_meta *meta;             /* strings owned by the struct */
} fu_safetensors;

/* Reads and validates a file. NULL with a one-line message (FU_E_INPUT) naming the file. */
fu_safetensors *fu_st_open(const char *path);
/* Same from bytes in memory (copied); label names the source in messages. */
fu_safetensors *fu_st_parse(const void *bytes, size_t size, const char *label);
void fu_st_free(fu_safetensors *st);

const fu_st_entry *fu_st_find(const fu_safetensors *st, const char *name);   /* NULL if absent */
const char *fu_st_meta_get(const fu_safetensors *st, const char *key);       /* NULL if absent */
/* New float32 leaf tensor holding the named entry (named after it, truncated to fit).
 * NULL with a message when absent. */
fu_tensor *fu_st_tensor(const fu_safetensors *st, const char *name);
/* The named entry as fu_st_tensor, for model loaders that know every shape: FU_E_INPUT naming
 * the file and tensor when it is missing ("not a faceup KIND file?"), has another shape, or
 * holds a non-finite value. */
int fu_st_tensor_exact(const fu_safetensors *st, const char *name, int nd, const int64_t *shape, const char *kind,
                       fu_tensor **out);

/* One tensor to save; dtype FU_F32 (= 0, so zero-initialised items save float32) or any other. */
typedef struct fu_st_item { const char *name; const fu_tensor *tensor; fu_dtype dtype; } fu_st_item;
/* Writes the tensors (stored in name order, contiguous) and optional string metadata atomically.
 * Names must be unique, non-empty and not "__metadata__". Integer dtypes refuse non-finite or
 * out-of-range values. FU_OK or an error with a message. */
int fu_st_save(const char *path, const fu_st_item *items, int n, const fu_st_meta *meta, int n_meta);

#endif
