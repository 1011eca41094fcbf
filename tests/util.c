#include "util.h"
#include "data/faces.h"
#include <cjson/cJSON.h>
#include "face/models.h"
#include "io/fileutil.h"
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include "test.h"
#include <string.h>
#include <sys/stat.h>

fu_tensor *randn_leaf(fu_rng *r, int ndim, const int64_t *shape, int grad) {
    fu_tensor *t = fu_tensor_new(ndim, shape);
    if (!t) return NULL;
    fu_rng_fill_normal(r, t->data, t->numel, 0, 1);
    if (grad) fu_tensor_requires_grad(t, 1);
    return t;
}

fu_tensor *arange_leaf(int ndim, const int64_t *shape) {
    fu_tensor *t = fu_tensor_new(ndim, shape);
    if (t) for (int64_t i = 0; i < t->numel; i++) t->data[i] = (float)i;
    return t;
}

int tensor_equals(const fu_tensor *t, const float *expect, int64_t n) {
    if (!t || t->numel != n) return 0;
    for (int64_t i = 0; i < n; i++) if (t->data[i] != expect[i]) return 0;
    return 1;
}

int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

int count_prefixed(const char *dir, const char *prefix) {
    DIR *d = opendir(dir);
    int n = 0;
    if (!d) return -1;
    for (struct dirent *e; (e = readdir(d));) n += !strncmp(e->d_name, prefix, strlen(prefix));
    closedir(d);
    return n;
}

int run_faceup(const char *args, char *out, size_t n_out, char *err, size_t n_err) {
    const char *bin = getenv("FACEUP_BIN") ? getenv("FACEUP_BIN") : "build/faceup";
    char cmd[8192], fo[512], fe[512];
    snprintf(fo, sizeof fo, "%s/run.out", fu_test_tmpdir());
    snprintf(fe, sizeof fe, "%s/run.err", fu_test_tmpdir());
    snprintf(cmd, sizeof cmd, "%s %s >%s 2>%s </dev/null", bin, args, fo, fe);
    int st = system(cmd);
    const char *paths[2] = {fo, fe};
    char *bufs[2] = {out, err};
    size_t sizes[2] = {n_out, n_err};
    for (int i = 0; i < 2; i++) {
        if (!bufs[i]) continue;
        FILE *f = fopen(paths[i], "r");
        size_t k = f ? fread(bufs[i], 1, sizes[i] - 1, f) : 0;
        bufs[i][k] = 0;
        if (f) fclose(f);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int count_newlines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

cJSON *load_dlib_reference(void) {
    char path[1024];
    unsigned char *data;
    size_t size;
    fu_model_path("reference/dlib_landmarks.json", path, sizeof path);
    if (!file_exists(path) || fu_read_file(path, (size_t)64 << 20, &data, &size) != FU_OK) return NULL;
    cJSON *j = cJSON_ParseWithLength((const char *)data, size);
    free(data);
    return j;
}

/* A synthetic face set: n images of S x S, image i a smooth colour blob whose position and
 * colour depend on i (learnable, unlike noise); every 5th image val, the rest train. */
fu_faces *synthetic_face_set(int S, int64_t n) {
    fu_faces *set = calloc(1, sizeof *set);
    set->size = S;
    set->count = n;
    set->labels = calloc((size_t)n, sizeof *set->labels);
    set->pixels = malloc((size_t)(n * 3 * S * S));
    for (int64_t i = 0; i < n; i++) {
        fu_face_label *lab = &set->labels[i];
        snprintf(lab->path, sizeof lab->path, "synthetic/%03lld.png", (long long)i);
        lab->source = (uint8_t)(i % 2);
        lab->split = i % 5 == 4 ? FU_SPLIT_VAL : FU_SPLIT_TRAIN;
        lab->gender = lab->race = -1;
        lab->age = -1;
        lab->identity = (int32_t)i;
        float cx = (float)(i % 4) * S / 4.0f + 1, cy = (float)(i % 3) * S / 3.0f + 1;
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < S; y++)
                for (int x = 0; x < S; x++) {
                    float d2 = (x - cx) * (x - cx) + (y - cy) * (y - cy);
                    float v = 40 + 180 * expf(-d2 / (S * 0.8f)) * (c == (int)(i % 3) ? 1.0f : 0.4f);
                    set->pixels[((i * 3 + c) * S + y) * S + x] = (uint8_t)v;
                }
    }
    return set;
}
