#include "fileutil.h"
#include "core/error.h"
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static atomic_uint tmp_counter;

static void release(fu_atomic_file *af) {
    free(af->path);
    free(af->tmp_path);
    af->f = NULL;
    af->path = af->tmp_path = NULL;
}

int fu_atomic_open(fu_atomic_file *af, const char *path) {
    memset(af, 0, sizeof *af);
    if (!path || !*path) return fu_fail(FU_E_INPUT, "write: empty file name");
    size_t n = strlen(path) + 64;
    af->path = strdup(path);
    af->tmp_path = malloc(n);
    if (!af->path || !af->tmp_path) { release(af); return fu_fail(FU_E_INTERNAL, "write %s: out of memory", path); }
    /* O_EXCL with a fresh name per attempt: never clobber another writer's temporary file. The
     * mode 0666 is filtered by the umask, giving the same permissions as a plain fopen. */
    for (int attempt = 0; attempt < 100; attempt++) {
        snprintf(af->tmp_path, n, "%s.tmp-%d-%u", path, (int)getpid(), atomic_fetch_add(&tmp_counter, 1));
        int fd = open(af->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno == EEXIST) continue;
        if (fd < 0) {
            int err = errno;
            release(af);
            return fu_fail(FU_E_INPUT, "write %s: %s", path, strerror(err));
        }
        af->f = fdopen(fd, "wb");
        if (!af->f) {
            close(fd);
            unlink(af->tmp_path);
            release(af);
            return fu_fail(FU_E_INTERNAL, "write %s: fdopen failed", path);
        }
        return FU_OK;
    }
    release(af);
    return fu_fail(FU_E_INPUT, "write %s: could not create a temporary file", path);
}

void fu_atomic_abort(fu_atomic_file *af) {
    if (af->f) fclose(af->f);
    if (af->tmp_path) unlink(af->tmp_path);
    release(af);
}

/* fsync of the folder makes the rename itself durable; failure here is not worth an error
 * (some file systems refuse fsync on directories). */
static void sync_parent_folder(const char *path) {
    char *copy = strdup(path);
    if (!copy) return;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) { fsync(fd); close(fd); }
    free(copy);
}

int fu_atomic_commit(fu_atomic_file *af) {
    if (!af->f) { fu_atomic_abort(af); return fu_fail(FU_E_INTERNAL, "write: file not open"); }
    errno = 0;
    int failed = ferror(af->f) || fflush(af->f) != 0 || fsync(fileno(af->f)) != 0;
    int err = errno ? errno : EIO;
    if (fclose(af->f) != 0 && !failed) { failed = 1; err = errno; }
    af->f = NULL;
    if (!failed && rename(af->tmp_path, af->path) != 0) { failed = 1; err = errno; }
    if (failed) {
        fu_fail(FU_E_INPUT, "write %s: %s", af->path, strerror(err));
        fu_atomic_abort(af);
        return FU_E_INPUT;
    }
    sync_parent_folder(af->path);
    release(af);
    return FU_OK;
}

int fu_write_file_atomic(const char *path, const void *data, size_t n) {
    fu_atomic_file af;
    int rc = fu_atomic_open(&af, path);
    if (rc) return rc;
    if (n && fwrite(data, 1, n, af.f) != n) {
        int err = errno;
        fu_atomic_abort(&af);
        return fu_fail(FU_E_INPUT, "write %s: %s", path, strerror(err));
    }
    return fu_atomic_commit(&af);
}

int fu_read_file(const char *path, size_t max_bytes, unsigned char **data, size_t *size) {
    *data = NULL;
    *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return fu_fail(FU_E_INPUT, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return fu_fail(FU_E_INPUT, "%s: not a regular file", path);
    }
    if ((unsigned long long)st.st_size > max_bytes) {
        fclose(f);
        return fu_fail(FU_E_INPUT, "%s: file too large (%lld bytes, limit %zu)", path, (long long)st.st_size, max_bytes);
    }
    size_t n = (size_t)st.st_size;
    unsigned char *buf = malloc(n ? n : 1);
    if (!buf) { fclose(f); return fu_fail(FU_E_INTERNAL, "%s: out of memory (%zu bytes)", path, n); }
    size_t got = fread(buf, 1, n, f);
    int read_error = ferror(f);
    fclose(f);
    if (got != n || read_error) {
        free(buf);
        return fu_fail(FU_E_INPUT, "%s: read error (file changed while reading?)", path);
    }
    *data = buf;
    *size = n;
    return FU_OK;
}
