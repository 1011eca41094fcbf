#include "args.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "faceup.h"

void args_usage(const char *cmd, const char *usage, const arg_spec *specs) {
    fprintf(stderr, "usage: faceup %s %s\n", cmd, usage);
    for (const arg_spec *s = specs; s->name; s++)
        fprintf(stderr, "  %-22s %s\n", s->name, s->help);
}

static const arg_spec *find(const arg_spec *specs, const char *name) {
    for (const arg_spec *s = specs; s->name; s++) if (!strcmp(s->name, name)) return s;
    return NULL;
}

static int set_number(const char *cmd, const arg_spec *s, const char *text) {
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || *end || errno || !isfinite(v)) {
        fprintf(stderr, "faceup %s: %s expects a number, got '%s'\n", cmd, s->name, text);
        return -1;
    }
    if (v < s->min || v > s->max) {
        fprintf(stderr, "faceup %s: %s must be in [%g, %g], got %s\n", cmd, s->name, s->min, s->max, text);
        return -1;
    }
    if (s->type == ARG_INT) {
        if (v != floor(v)) { fprintf(stderr, "faceup %s: %s expects an integer, got '%s'\n", cmd, s->name, text); return -1; }
        *(int *)s->value = (int)v;
    } else {
        *(float *)s->value = (float)v;
    }
    return 0;
}

int args_parse(const char *cmd, const char *usage, const arg_spec *specs, int argc, char **argv,
               char **pos, int max_pos) {
    int n_pos = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { args_usage(cmd, usage, specs); return -2; }
        if (a[0] != '-' || !a[1]) {
            if (n_pos == max_pos) { fprintf(stderr, "faceup %s: unexpected argument '%s'\n", cmd, a); return -1; }
            pos[n_pos++] = argv[i];
            continue;
        }
        const arg_spec *s = find(specs, a);
        if (!s) { fprintf(stderr, "faceup %s: unknown flag '%s' (try --help)\n", cmd, a); return -1; }
        if (s->type == ARG_FLAG) { *(int *)s->value = 1; continue; }
        if (i + 1 >= argc) { fprintf(stderr, "faceup %s: %s needs a value\n", cmd, a); return -1; }
        const char *v = argv[++i];
        if (s->type == ARG_STRING) *(const char **)s->value = v;
        else if (set_number(cmd, s, v) < 0) return -1;
    }
    return n_pos;
}

int exit_status(int rc) { return rc >= FU_OK && rc <= FU_E_INTERNAL ? rc : FU_E_INTERNAL; }

int exit_worst(int a, int b) {
    a = exit_status(a), b = exit_status(b);
    return a > b ? a : b;
}
