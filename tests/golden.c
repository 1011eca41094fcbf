#include "golden.h"
#include "test.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parses "(a, b, c)" after "'shape':" in an npy header. */
static int parse_shape(const char *hdr, int64_t *shape) {
    const char *p = strstr(hdr, "'shape':");
    if (!p || !(p = strchr(p, '('))) return -1;
    int nd = 0;
    for (p++; *p && *p != ')';) {
        if (*p == ',' || *p == ' ') { p++; continue; }
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p || nd == FU_MAX_DIMS) return -1;
        shape[nd++] = v;
        p = end;
    }
    return nd;
}

fu_tensor *golden_load(const char *set, const char *name) {
    const char *shared = fu_test_shared_dir();
    if (!shared) return NULL;
    char path[1024];
    snprintf(path, sizeof path, "%s/golden/%s/npy/%s.npy", shared, set, name);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char pre[10];
    fu_tensor *t = NULL;
    char hdr[1024];
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) || pre[6] != 1) goto out;
    size_t hlen = pre[8] | (size_t)pre[9] << 8;
    if (hlen >= sizeof hdr || fread(hdr, 1, hlen, f) != hlen) goto out;
    hdr[hlen] = 0;
    if (!strstr(hdr, "'<f4'") || strstr(hdr, "'fortran_order': True")) goto out;
    int64_t shape[FU_MAX_DIMS];
    int nd = parse_shape(hdr, shape);
    if (nd < 0 || !(t = fu_tensor_new(nd, shape))) goto out;
    if (fread(t->data, sizeof(float), (size_t)t->numel, f) != (size_t)t->numel) { fu_tensor_free(t); t = NULL; }
out:
    fclose(f);
    return t;
}

float golden_max_diff(const fu_tensor *a, const fu_tensor *b) {
    if (!a || !b || a->numel != b->numel) return INFINITY;
    float m = 0;
    for (int64_t i = 0; i < a->numel; i++) m = fmaxf(m, fabsf(a->data[i] - b->data[i]));
    return m;
}

float golden_max_abs(const fu_tensor *t) {
    float m = 0;
    for (int64_t i = 0; i < t->numel; i++) m = fmaxf(m, fabsf(t->data[i]));
    return m;
}
