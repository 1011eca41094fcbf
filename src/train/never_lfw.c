/* The "never LFW" rule (see never_lfw.h). */
#include "never_lfw.h"
#include <ctype.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "core/error.h"
#include "data/lfw.h"
#include "faceup.h"

const char *fu_lfw_default_dir(char *buf, size_t n) {
    const char *shared = getenv("FACEUP_SHARED");
    if (shared && *shared) snprintf(buf, n, "%s/data/lfw", shared);
    else snprintf(buf, n, "../shared/data/lfw");
    return buf;
}

/* Lower case, spaces as '_': "Aaron Eckhart" and "aaron_eckhart" are the same person. */
static void normalise(const char *name, char *out, size_t n) {
    size_t k = 0;
    for (; name[k] && k + 1 < n; k++) out[k] = name[k] == ' ' ? '_' : (char)tolower((unsigned char)name[k]);
    out[k] = 0;
}

typedef struct name_set {
    char (*names)[FU_LFW_MAX_NAME];
    int64_t n, cap;
} name_set;

static int add_name(name_set *s, const char *name) {
    if (s->n == s->cap) {
        int64_t cap = s->cap ? 2 * s->cap : 1024;
        void *p = realloc(s->names, (size_t)cap * sizeof *s->names);
        if (!p) return fu_fail(FU_E_INTERNAL, "out of memory");
        s->names = p, s->cap = cap;
    }
    normalise(name, s->names[s->n++], FU_LFW_MAX_NAME);
    return FU_OK;
}

static int by_name(const void *a, const void *b) { return strcmp(a, b); }

/* LFW's people: the folder names of images/ and the names of pairs.txt (either may be absent). */
static int lfw_names(const char *lfw, name_set *s) {
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/images", lfw);
    DIR *dir = opendir(path);
    int rc = FU_OK;
    for (struct dirent *e; dir && rc == FU_OK && (e = readdir(dir));)
        if (e->d_name[0] != '.') rc = add_name(s, e->d_name);
    if (dir) closedir(dir);
    fu_lfw_pairs pairs;
    if (rc == FU_OK && fu_lfw_load_pairs(lfw, &pairs) == FU_OK) {
        for (int i = 0; rc == FU_OK && i < pairs.n; i++)
            for (int k = 0; k < 2 && rc == FU_OK; k++) rc = add_name(s, pairs.pairs[i].name[k]);
        fu_lfw_pairs_free(&pairs);
    }
    fu_clear_error();
    if (rc == FU_OK) qsort(s->names, (size_t)s->n, sizeof *s->names, by_name);
    return rc;
}

/* 1 when path resolves to lfw_real or below it. */
static int inside(const char *path, const char *lfw_real) {
    char real[PATH_MAX];
    if (!realpath(path, real)) return 0;
    size_t n = strlen(lfw_real);
    return !strncmp(real, lfw_real, n) && (real[n] == 0 || real[n] == '/');
}

static int check_folders(const char *root, const name_set *s) {
    DIR *dir = opendir(root);
    if (!dir) return FU_OK;   /* not a folder: the data loader reports it */
    int rc = FU_OK;
    char key[FU_LFW_MAX_NAME];
    for (struct dirent *e; rc == FU_OK && (e = readdir(dir));) {
        if (e->d_name[0] == '.') continue;
        normalise(e->d_name, key, sizeof key);
        if (bsearch(key, s->names, (size_t)s->n, sizeof *s->names, by_name))
            rc = fu_fail(FU_E_INPUT, "%s: identity folder '%s' is an LFW person (LFW is the evaluation set: never train on it)", root, e->d_name);
    }
    closedir(dir);
    return rc;
}

int fu_never_lfw_check(const char *root, char *const *images, int64_t n, const char *lfw_dir) {
    char def[PATH_MAX], lfw_real[PATH_MAX];
    if (!lfw_dir) lfw_dir = fu_lfw_default_dir(def, sizeof def);
    struct stat st;
    if (stat(lfw_dir, &st) != 0 || !S_ISDIR(st.st_mode) || !realpath(lfw_dir, lfw_real)) return FU_OK;
    if (inside(root, lfw_real)) return fu_fail(FU_E_INPUT, "%s: lies inside the LFW folder %s (LFW is the evaluation set: never train on it)", root, lfw_dir);
    for (int64_t i = 0; i < n; i++)
        if (inside(images[i], lfw_real))
            return fu_fail(FU_E_INPUT, "%s: %s is an LFW image (LFW is the evaluation set: never train on it)", root, images[i]);
    name_set s = {0};
    int rc = lfw_names(lfw_dir, &s);
    if (rc == FU_OK) rc = check_folders(root, &s);
    free(s.names);
    return rc;
}
