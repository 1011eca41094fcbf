/* Output paths of every command (see outpath.h). */
#include "outpath.h"
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/error.h"
#include "io/image.h"

enum { JPEG_QUALITY = 95 };

static int is_directory(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The folder part of path ("." when it has none), into buf. */
static void parent_of(const char *path, char *buf, size_t cap) {
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(buf, cap, ".");
    else if (slash == path) snprintf(buf, cap, "/");
    else snprintf(buf, cap, "%.*s", (int)(slash - path), path);
}

static const char *image_extension(const char *path) {
    const char *slash = strrchr(path, '/'), *name = slash ? slash + 1 : path, *dot = strrchr(name, '.');
    if (dot && dot != name && (!strcasecmp(dot, ".png") || !strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg"))) return dot;
    return NULL;
}

static int has_image_extension(const char *path) { return image_extension(path) != NULL; }

const char *outpath_extension(const char *flag, const char *path) {
    const char *ext = image_extension(path);
    if (ext) return ext;
    fu_fail(FU_E_INPUT, "%s %s: the extension chooses the format: .png, .jpg or .jpeg (a folder: an existing one, or end the path with '/')",
            flag, path);
    return NULL;
}

/* Creating (and removing) a file is the only test that holds for root and read-only mounts too,
 * where access(W_OK) says yes and the write after the compute would fail. */
static int check_folder_writable(const char *flag, const char *out, const char *folder) {
    if (!is_directory(folder)) return fu_fail(FU_E_INPUT, "%s %s: folder %s does not exist", flag, out, folder);
    char probe[OUTPATH_CAP + 32];
    snprintf(probe, sizeof probe, "%s/.faceup-probe-XXXXXX", folder);
    int fd = mkstemp(probe);
    if (fd < 0) return fu_fail(FU_E_INPUT, "%s %s: cannot write in folder %s: %s", flag, out, folder, strerror(errno));
    close(fd);
    unlink(probe);
    return FU_OK;
}

int outpath_target(const char *flag, const char *out, int several, out_target *t) {
    size_t len = strlen(out);
    memset(t, 0, sizeof *t);
    if (len == 0 || len >= OUTPATH_CAP) return fu_fail(FU_E_INPUT, "%s: expected a file or folder path", flag);
    t->folder = out[len - 1] == '/' || is_directory(out) || (several && !has_image_extension(out));
    while (len > 1 && out[len - 1] == '/') len--;
    snprintf(t->path, sizeof t->path, "%.*s", (int)len, out);
    char parent[OUTPATH_CAP];
    parent_of(t->path, parent, sizeof parent);
    if (t->folder) return is_directory(t->path) ? check_folder_writable(flag, out, t->path) : check_folder_writable(flag, out, parent);
    if (several) return fu_fail(FU_E_INPUT, "%s %s: several outputs need a folder (an existing one, or end the path with '/')", flag, out);
    if (!outpath_extension(flag, t->path)) return FU_E_INPUT;
    return check_folder_writable(flag, out, parent);
}

int outpath_file(const char *flag, const char *out, out_target *t) {
    int rc = outpath_target(flag, out, 0, t);
    if (rc == FU_OK && t->folder) rc = fu_fail(FU_E_INPUT, "%s %s: names a folder; this is one image: name a .png or .jpg file", flag, out);
    return rc;
}

int outpath_in_folder(const char *folder, const char *input, char *buf, size_t cap) {
    const char *slash = strrchr(input, '/'), *name = slash ? slash + 1 : input, *dot = strrchr(name, '.');
    int stem = dot && dot != name ? (int)(dot - name) : (int)strlen(name);
    int k = snprintf(buf, cap, "%s/%.*s.png", folder, stem, name);
    return k < 0 || (size_t)k >= cap ? fu_fail(FU_E_INPUT, "%s: output path too long", input) : FU_OK;
}

int outpath_make_folder(const char *flag, const out_target *t) {
    if (!t->folder || is_directory(t->path)) return FU_OK;
    if (mkdir(t->path, 0777) != 0 && errno != EEXIST) return fu_fail(FU_E_INPUT, "%s %s: cannot create the folder: %s", flag, t->path, strerror(errno));
    return FU_OK;
}

/* The folder's real path and the file name: equal for two spellings of one file. NULL when out of memory. */
static char *canonical(const char *path) {
    char parent[OUTPATH_CAP], real[PATH_MAX], buf[OUTPATH_CAP + PATH_MAX];
    parent_of(path, parent, sizeof parent);
    const char *slash = strrchr(path, '/');
    if (realpath(parent, real)) snprintf(buf, sizeof buf, "%s/%s", real, slash ? slash + 1 : path);
    else snprintf(buf, sizeof buf, "%s", path);
    return strdup(buf);
}

typedef struct named_path { char *canon; const char *given; int is_input; } named_path;

static int by_canon(const void *a, const void *b) {
    const named_path *x = a, *y = b;
    int c = strcmp(x->canon, y->canon);
    return c ? c : y->is_input - x->is_input;   /* an input before an output of the same name */
}

static int first_clash(const named_path *v, int n) {
    for (int i = 1; i < n; i++) {
        if (strcmp(v[i - 1].canon, v[i].canon) || (v[i - 1].is_input && v[i].is_input)) continue;
        if (v[i - 1].is_input) return fu_fail(FU_E_INPUT, "%s: an output may not replace the input %s", v[i].given, v[i - 1].given);
        return fu_fail(FU_E_INPUT, "%s and %s are the same output file", v[i - 1].given, v[i].given);
    }
    return FU_OK;
}

/* Sorted by canonical name, so that a folder of many thumbnails costs n log n, not n^2. */
int outpath_check_distinct(const char *const *paths, int n, const char *const *inputs, int n_in) {
    named_path *v = calloc((size_t)(n + n_in) + 1, sizeof *v);
    int rc = v ? FU_OK : fu_fail(FU_E_INTERNAL, "out of memory");
    for (int i = 0; rc == FU_OK && i < n + n_in; i++) {
        v[i].given = i < n ? paths[i] : inputs[i - n];
        v[i].is_input = i >= n;
        if (!(v[i].canon = canonical(v[i].given))) rc = fu_fail(FU_E_INTERNAL, "out of memory");
    }
    if (rc == FU_OK) {
        qsort(v, (size_t)(n + n_in), sizeof *v, by_canon);
        rc = first_clash(v, n + n_in);
    }
    for (int i = 0; v && i < n + n_in; i++) free(v[i].canon);
    free(v);
    return rc;
}

int outpath_save(const char *path, const fu_tensor *img) {
    const char *dot = strrchr(path, '.');
    if (dot && (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg"))) return fu_image_save_jpeg(path, img, JPEG_QUALITY);
    return fu_image_save_png(path, img);
}

void outpath_announce(const char *cmd, const char *path) { fprintf(stderr, "faceup %s: wrote %s\n", cmd, path); }
