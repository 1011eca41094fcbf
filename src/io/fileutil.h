/* File helpers: whole-file reads with a size cap, and atomic writes.
 *
 * An atomic write goes to a temporary file "<path>.tmp-<pid>-<n>" in the same folder (so the final
 * rename stays on one file system), which is flushed, fsync'ed and renamed over <path>; readers
 * therefore see either the old file or the complete new one, never a partial file. On any error the
 * temporary file is unlinked and <path> is left untouched. */
#ifndef FU_FILEUTIL_H
#define FU_FILEUTIL_H
#include <stdio.h>
#include <stddef.h>

typedef struct fu_atomic_file {
    FILE *f;            /* write through this between open and commit/abort */
    char *path;         /* final name */
    char *tmp_path;     /* temporary name, unlinked on abort */
} fu_atomic_file;

/* Creates the temporary file. FU_OK or FU_E_INPUT (e.g. missing folder) with a message. */
int fu_atomic_open(fu_atomic_file *af, const char *path);
/* Flushes, fsyncs, closes and renames the temporary file onto the final name (then fsyncs the
 * folder). On failure the temporary file is removed. Either way af is released. */
int fu_atomic_commit(fu_atomic_file *af);
/* Closes and removes the temporary file; af is released. Safe on a zeroed or released af. */
void fu_atomic_abort(fu_atomic_file *af);
/* Writes n bytes to path atomically. */
int fu_write_file_atomic(const char *path, const void *data, size_t n);

/* Reads a whole regular file into a malloc'ed buffer (*data, *size; free with free()).
 * Refuses files larger than max_bytes. FU_OK or FU_E_INPUT with a message naming the file. */
int fu_read_file(const char *path, size_t max_bytes, unsigned char **data, size_t *size);

#endif
