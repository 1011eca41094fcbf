/* MXNet RecordIO image packs (.rec + .idx), the format MS1M-RetinaFace and the other InsightFace
 * training sets ship in.
 *
 * .rec: a sequence of records, each
 *     uint32 LE magic 0xced7230a
 *     uint32 LE lrecord: upper 3 bits cflag, lower 29 bits the part's length
 *     the part's bytes, zero-padded to a multiple of 4
 * cflag 0 is a whole record. The writer (dmlc-core) splits a payload wherever the magic number
 * occurs at a 4-byte aligned position: the parts come with cflag 1 (first), 2 (middle) ... 3
 * (last), and the reader joins them with the magic number re-inserted between parts.
 * .idx: text lines "key\toffset" (decimal), offset = byte position of the record in .rec.
 *
 * A payload (mx.recordio.pack) is an IRHeader, 24 bytes LE
 *     uint32 flag, float32 label, uint64 id, uint64 id2
 * followed by `flag` float32 labels when flag > 0 (then they replace `label`), then the image
 * bytes (JPEG in MS1M). In InsightFace packs record 0 is a header record with flag > 0 whose
 * first two labels are (a, b): images are keys 1 .. a-1 and keys a .. b-1 hold one record per
 * identity, so there are b - a identities.
 *
 * Everything is validated before use: every .idx offset and every record length must lie inside
 * the file, parts must chain correctly, sizes are capped (FU_RECORDIO_MAX_RECORD). Errors are
 * FU_E_INPUT with a one-line message naming the file and the record. */
#ifndef FU_IO_RECORDIO_H
#define FU_IO_RECORDIO_H
#include <stddef.h>
#include <stdint.h>

#define FU_RECORDIO_MAGIC 0xced7230au
/* Largest joined payload accepted (a face image record is a few KiB). */
#define FU_RECORDIO_MAX_RECORD ((size_t)64 << 20)
/* Largest .idx file read (MS1M's is about 100 MB). */
#define FU_RECORDIO_MAX_IDX ((size_t)1 << 30)
#define FU_IRHEADER_SIZE 24

typedef struct fu_recordio {
    char *label;              /* the .rec path, for messages */
    int fd;                   /* -1 when reading from memory */
    const unsigned char *mem; /* in-memory .rec (not owned) */
    uint64_t size;            /* .rec size in bytes */
    int64_t n;                /* .idx entries, sorted by key */
    uint64_t *keys, *offsets;
} fu_recordio;

/* Opens rec_path and its index (idx_path, or NULL for rec_path with ".rec" replaced by ".idx"). */
fu_recordio *fu_recordio_open(const char *rec_path, const char *idx_path);
/* Same over memory: rec bytes (kept, not copied: must outlive the reader) and idx text. */
fu_recordio *fu_recordio_open_mem(const void *rec, size_t rec_size, const char *idx, size_t idx_size, const char *label);
void fu_recordio_close(fu_recordio *r);

/* Position of key in r->keys, or -1. */
int64_t fu_recordio_find(const fu_recordio *r, uint64_t key);
/* The joined payload of entry i (0 <= i < n) into a malloc'ed buffer. FU_OK or FU_E_INPUT. */
int fu_recordio_read(const fu_recordio *r, int64_t i, unsigned char **payload, size_t *size);

typedef struct fu_irheader {
    uint32_t flag;
    float label;              /* labels[0] when flag > 0 */
    uint64_t id, id2;
    const unsigned char *labels;  /* flag float32 LE values inside the payload (flag > 0) */
    const unsigned char *data;    /* the rest: the image bytes */
    size_t data_size;
} fu_irheader;

/* Splits a payload into its IRHeader, extra labels and data. FU_OK or FU_E_INPUT (what names
 * the record in the message). */
int fu_irheader_unpack(const unsigned char *payload, size_t size, fu_irheader *h, const char *what);
/* Extra label k (< h->flag). */
float fu_irheader_label(const fu_irheader *h, uint32_t k);

#endif
