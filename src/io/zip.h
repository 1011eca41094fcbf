/* Minimal read-only ZIP reader over a memory buffer, enough for torch.save archives.
 *
 * Supported: the end-of-central-directory record (plus its ZIP64 form, which torch always
 * writes), the central directory (with ZIP64 extra fields) and local headers; entries must be
 * stored uncompressed (method 0), which is how torch writes every record. Anything else
 * (compression, encryption, multi-disk archives) is refused with a message. Every offset and
 * size read from the file is checked against the buffer before use. */
#ifndef FU_ZIP_H
#define FU_ZIP_H
#include <stddef.h>
#include <stdint.h>

typedef struct fu_zip_entry {
    char *name;            /* NUL-terminated; names with embedded NUL bytes are refused */
    uint64_t data_offset;  /* start of the entry's bytes in the buffer (after the local header) */
    uint64_t size;         /* compressed size (= uncompressed size for method 0) */
    uint64_t uncompressed_size;
    uint32_t crc32;
    uint16_t method;       /* 0 = stored; others are refused by fu_zip_read */
    uint16_t flags;
} fu_zip_entry;

typedef struct fu_zip {
    const uint8_t *data;   /* borrowed: must outlive the fu_zip */
    size_t size;
    fu_zip_entry *entries; /* sorted by name (for fu_zip_find) */
    size_t count;
    char label[128];       /* file name used as the prefix of error messages */
} fu_zip;

/* Parses the directory of the archive in data[0..size). label names the file in messages.
 * Returns FU_OK, or an error (FU_E_INPUT for malformed archives) with z left empty. */
int fu_zip_open(fu_zip *z, const void *data, size_t size, const char *label);
void fu_zip_close(fu_zip *z);
/* Index of the entry with this exact name, or -1. */
long fu_zip_find(const fu_zip *z, const char *name);
/* Bytes of entry i (stored entries only), CRC-checked when the archive records a CRC.
 * Returns NULL with a message on a compressed entry or a CRC mismatch. */
const uint8_t *fu_zip_read(const fu_zip *z, size_t i, uint64_t *size);
uint32_t fu_crc32(const void *data, size_t n);

#endif
