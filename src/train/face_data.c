/* Training face data: folder-per-identity and RecordIO readers (see face_data.h). */
#include "train/face_data.h"
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include "core/error.h"
#include "core/ops.h"
#include "faceup.h"
#include "io/image.h"

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int has_image_ext(const char *name) {
    const char *dot = strrchr(name, '.');
    return dot && (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg") || !strcasecmp(dot, ".png"));
}

/* Sorted names in dir that are not hidden and pass keep(full path, name); NULL on error. */
static char **list_dir(const char *dir, int (*keep)(const char *path, const char *name), int *count) {
    DIR *d = opendir(dir);
    if (!d) return fu_fail_null(FU_E_INPUT, "%s: cannot read the folder", dir);
    char **names = NULL;
    int n = 0, cap = 0, ok = 1;
    for (struct dirent *e; ok && (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char path[4096];
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= sizeof path || !keep(path, e->d_name)) continue;
        if (n == cap) {
            char **grown = realloc(names, (size_t)(cap = cap ? 2 * cap : 64) * sizeof *names);
            if (!grown) { ok = 0; break; }
            names = grown;
        }
        ok = (names[n] = strdup(e->d_name)) != NULL && ++n < FU_FACE_DATA_MAX_IDS;
    }
    closedir(d);
    if (!ok) {
        for (int i = 0; i < n; i++) free(names[i]);
        free(names);
        return fu_fail_null(FU_E_INPUT, "%s: too many entries or out of memory", dir);
    }
    if (n) qsort(names, (size_t)n, sizeof *names, cmp_str);
    *count = n;
    return names ? names : calloc(1, sizeof *names);
}

static int keep_dir(const char *path, const char *name) { (void)name; return is_dir(path); }
static int keep_image(const char *path, const char *name) { return has_image_ext(name) && !is_dir(path); }

static void free_names(char **names, int n) {
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

/* Appends the images of identity folder `id` with label `label`. */
static int add_identity(fu_face_data *d, const char *id, int label, int64_t *cap) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", d->label, id);
    int n = 0;
    char **files = list_dir(dir, keep_image, &n);
    if (!files) return fu_last_code();
    int rc = FU_OK;
    for (int i = 0; i < n && rc == FU_OK; i++) {
        if (d->n == *cap) {
            *cap = *cap ? 2 * *cap : 1024;
            char **p = realloc(d->paths, (size_t)*cap * sizeof *p);
            if (p) d->paths = p;
            int *l = realloc(d->labels, (size_t)*cap * sizeof *l);
            if (l) d->labels = l;
            if (!p || !l) { rc = fu_fail(FU_E_INTERNAL, "%s: out of memory", d->label); break; }
        }
        size_t len = strlen(dir) + strlen(files[i]) + 2;
        if (!(d->paths[d->n] = malloc(len))) { rc = fu_fail(FU_E_INTERNAL, "%s: out of memory", d->label); break; }
        snprintf(d->paths[d->n], len, "%s/%s", dir, files[i]);
        d->labels[d->n++] = label;
    }
    free_names(files, n);
    return rc;
}

static int open_folder(fu_face_data *d) {
    int n_ids = 0;
    char **ids = list_dir(d->label, keep_dir, &n_ids);
    if (!ids) return fu_last_code();
    int64_t cap = 0;
    int rc = FU_OK;
    for (int i = 0; i < n_ids && rc == FU_OK; i++) rc = add_identity(d, ids[i], i, &cap);
    free_names(ids, n_ids);
    d->n_ids = n_ids;
    if (rc == FU_OK && d->n == 0) rc = fu_fail(FU_E_INPUT, "%s: no images in ROOT/<identity>/*.{jpg,jpeg,png}", d->label);
    return rc;
}

/* Payload header of index entry i. *payload must be freed by the caller. */
static int read_header(const fu_face_data *d, int64_t i, unsigned char **payload, fu_irheader *h) {
    size_t size;
    int rc = fu_recordio_read(d->rec, i, payload, &size);
    if (rc != FU_OK) return rc;
    char what[600];
    snprintf(what, sizeof what, "%s: record %llu", d->label, (unsigned long long)d->rec->keys[i]);
    return fu_irheader_unpack(*payload, size, h, what);
}

/* Header record 0 of InsightFace packs: images are keys 1 .. a-1, identities b - a. */
static int use_header_record(fu_face_data *d, const fu_irheader *h) {
    float a = fu_irheader_label(h, 0), b = fu_irheader_label(h, 1);
    if (!(a >= 2 && a <= (float)FU_FACE_DATA_MAX_IMAGES && b > a && b - a <= (float)FU_FACE_DATA_MAX_IDS) || a != floorf(a) || b != floorf(b))
        return fu_fail(FU_E_INPUT, "%s: header record labels (%g, %g) are not an image range and identity range",
                       d->label, (double)a, (double)b);
    d->n = (int64_t)a - 1;
    d->n_ids = (int)(b - a);
    if (!(d->entries = malloc((size_t)d->n * sizeof *d->entries))) return fu_fail(FU_E_INTERNAL, "%s: out of memory", d->label);
    for (int64_t k = 0; k < d->n; k++)
        if ((d->entries[k] = fu_recordio_find(d->rec, (uint64_t)k + 1)) < 0)
            return fu_fail(FU_E_INPUT, "%s: image key %lld is not in the index", d->label, (long long)k + 1);
    return FU_OK;
}

static int label_of(const fu_face_data *d, const fu_irheader *h, int64_t entry, int *label) {
    float v = h->label;
    int limit = d->n_ids > 0 ? d->n_ids : FU_FACE_DATA_MAX_IDS;
    if (!(v >= 0 && v < (float)limit) || v != floorf(v))
        return fu_fail(FU_E_INPUT, "%s: record %llu has label %g, not an identity in [0, %d)", d->label,
                       (unsigned long long)d->rec->keys[entry], (double)v, limit);
    *label = (int)v;
    return FU_OK;
}

/* Without a header record: every record is an image; one pass finds the identity count. */
static int scan_records(fu_face_data *d) {
    d->n = d->rec->n;
    if (!(d->entries = malloc(((size_t)d->n + 1) * sizeof *d->entries))) return fu_fail(FU_E_INTERNAL, "%s: out of memory", d->label);
    int max_label = -1;
    for (int64_t i = 0; i < d->n; i++) {
        unsigned char *p = NULL;
        fu_irheader h;
        int label = 0, rc = read_header(d, i, &p, &h);
        if (rc == FU_OK) rc = label_of(d, &h, i, &label);
        free(p);
        if (rc != FU_OK) return rc;
        d->entries[i] = i;
        if (label > max_label) max_label = label;
    }
    d->n_ids = max_label + 1;
    return FU_OK;
}

static int open_recordio(fu_face_data *d) {
    if (!(d->rec = fu_recordio_open(d->label, NULL))) return fu_last_code();
    if (d->rec->n == 0) return fu_fail(FU_E_INPUT, "%s: the index lists no records", d->label);
    int64_t head = fu_recordio_find(d->rec, 0);
    if (head >= 0) {
        unsigned char *p = NULL;
        fu_irheader h;
        int rc = read_header(d, head, &p, &h);
        if (rc == FU_OK && h.flag >= 2) rc = use_header_record(d, &h);
        int has_header = h.flag >= 2;
        free(p);
        if (rc != FU_OK || has_header) return rc;
    }
    return scan_records(d);
}

fu_face_data *fu_face_data_open(const char *path) {
    fu_face_data *d = calloc(1, sizeof *d);
    if (!d || !(d->label = strdup(path))) {
        free(d);
        return fu_fail_null(FU_E_INTERNAL, "face data: out of memory");
    }
    int rc = is_dir(path) ? open_folder(d) : open_recordio(d);
    if (rc == FU_OK && d->n_ids < 2) rc = fu_fail(FU_E_INPUT, "%s: %d identities; training needs at least 2", path, d->n_ids);
    if (rc != FU_OK) { fu_face_data_free(d); return NULL; }
    return d;
}

void fu_face_data_free(fu_face_data *d) {
    if (!d) return;
    if (d->paths) for (int64_t i = 0; i < d->n; i++) free(d->paths[i]);
    free(d->paths);
    free(d->labels);
    free(d->entries);
    fu_recordio_close(d->rec);
    free(d->label);
    free(d);
}

/* img [1,3,H,W] in [0,1] -> dst (size x size, normalised, optionally mirrored). */
static int place_image(const fu_tensor *img, int size, int flip, float *dst) {
    fu_graph *g = NULL;
    const fu_tensor *src = img;
    if (img->shape[2] != size || img->shape[3] != size) {
        fu_tensor *x = (fu_tensor *)img;
        if (!(g = fu_graph_new()) || !(src = fu_resize_bilinear(g, x, size, size, 0))) {
            fu_graph_free(g);
            return fu_last_code() ? fu_last_code() : FU_E_INTERNAL;
        }
    }
    for (int64_t c = 0; c < 3; c++)
        for (int64_t y = 0; y < size; y++)
            for (int64_t x = 0; x < size; x++) {
                int64_t sx = flip ? size - 1 - x : x;
                dst[(c * size + y) * size + x] = (src->data[(c * size + y) * size + sx] - 0.5f) / 0.5f;
            }
    fu_graph_free(g);
    return FU_OK;
}

int fu_face_data_load(const fu_face_data *d, int64_t i, int size, int flip, float *dst, int *label) {
    if (i < 0 || i >= d->n) return fu_fail(FU_E_INPUT, "%s: no image %lld", d->label, (long long)i);
    fu_tensor *img = NULL;
    int rc = FU_OK;
    if (d->paths) {
        *label = d->labels[i];
        img = fu_image_load(d->paths[i]);
    } else {
        unsigned char *p = NULL;
        fu_irheader h;
        if ((rc = read_header(d, d->entries[i], &p, &h)) == FU_OK && (rc = label_of(d, &h, d->entries[i], label)) == FU_OK) {
            char what[600];
            snprintf(what, sizeof what, "%s: record %llu", d->label, (unsigned long long)d->rec->keys[d->entries[i]]);
            img = fu_image_decode(h.data, h.data_size, what);
        }
        free(p);
    }
    if (rc == FU_OK && !img) rc = fu_last_code() ? fu_last_code() : FU_E_INPUT;
    if (rc == FU_OK) rc = place_image(img, size, flip, dst);
    fu_tensor_free(img);
    return rc;
}
