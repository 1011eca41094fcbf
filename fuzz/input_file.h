/* For fuzz targets whose reader takes a path: the input bytes written to this process's own
 * file (under $TMPDIR or /tmp), rewritten on every call and removed at exit. */
#ifndef FUZZ_INPUT_FILE_H
#define FUZZ_INPUT_FILE_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char fuzz_path[512];

static void fuzz_remove_file(void) { unlink(fuzz_path); }

/* Writes data to the file and returns its path; aborts when it cannot be written, as the
 * fuzzer would learn nothing. */
static const char *fuzz_write_file(const uint8_t *data, size_t size) {
    if (!fuzz_path[0]) {
        const char *dir = getenv("TMPDIR");
        snprintf(fuzz_path, sizeof fuzz_path, "%s/faceup-fuzz-%ld", dir && *dir ? dir : "/tmp", (long)getpid());
        atexit(fuzz_remove_file);
    }
    FILE *f = fopen(fuzz_path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) abort();
    return fuzz_path;
}

#endif
