#include "args.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "faceup.h"

void args_usage(const char *cmd, const char *usage, const arg_spec *specs) {
    printf("usage: faceup %s %s\n", cmd, usage);
    for (const arg_spec *s = specs; s->name; s++)
        printf("  %-22s %s\n", s->name, s->help);
}

static const arg_spec *find(const arg_spec *specs, const char *name, size_t len) {
    for (const arg_spec *s = specs; s->name; s++) if (strlen(s->name) == len && !strncmp(s->name, name, len)) return s;
    return NULL;
}

/* Levenshtein distance of a and b (names are short: at most 63 characters count). */
static int edit_distance(const char *a, const char *b) {
    enum { CAP = 64 };
    int la = (int)strnlen(a, CAP - 1), lb = (int)strnlen(b, CAP - 1), row[CAP];
    for (int j = 0; j <= lb; j++) row[j] = j;
    for (int i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = i;
        for (int j = 1; j <= lb; j++) {
            int up = row[j], best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            diag = up;
            row[j] = best;
        }
    }
    return row[lb];
}

const char *args_nearest(const char *word, const char *const *names, int n) {
    const char *best = NULL;
    int best_d = 0, len = (int)strlen(word);
    for (int i = 0; i < n; i++) {
        int d = edit_distance(word, names[i]);
        if (!best || d < best_d) best = names[i], best_d = d;
    }
    return best && best_d <= (len < 6 ? 2 : len / 3) ? best : NULL;   /* a typo, not another word */
}

static void unknown_flag(const char *cmd, const char *flag, size_t len, const arg_spec *specs) {
    const char *names[256];
    int n = 0;
    for (const arg_spec *s = specs; s->name && n < 256; s++) names[n++] = s->name;
    char word[64];
    snprintf(word, sizeof word, "%.*s", (int)len, flag);
    const char *near = args_nearest(word, names, n);
    if (near) fprintf(stderr, "faceup %s: unknown flag '%s' (did you mean %s? try --help)\n", cmd, word, near);
    else fprintf(stderr, "faceup %s: unknown flag '%s' (try --help)\n", cmd, word);
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
        const char *eq = a[1] == '-' ? strchr(a, '=') : NULL;   /* --flag=value */
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        const arg_spec *s = find(specs, a, len);
        if (!s) { unknown_flag(cmd, a, len, specs); return -1; }
        if (s->type == ARG_FLAG && eq) { fprintf(stderr, "faceup %s: %s takes no value\n", cmd, s->name); return -1; }
        if (s->type == ARG_FLAG) { *(int *)s->value = 1; continue; }
        if (!eq && i + 1 >= argc) { fprintf(stderr, "faceup %s: %s needs a value\n", cmd, a); return -1; }
        const char *v = eq ? eq + 1 : argv[++i];
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

static void list_subcommands(FILE *f, const char *group, const char *intro, const subcommand *subs, int n) {
    fprintf(f, "%s\n\nusage: faceup %s%sCOMMAND [ARGS]\n\ncommands:\n", intro, group, *group ? " " : "");
    for (int i = 0; i < n; i++) fprintf(f, "  %-14s %s\n", subs[i].name, subs[i].summary);
    fprintf(f, "\n'faceup %s%sCOMMAND --help' (or 'faceup %s%shelp COMMAND') describes a command's flags. Exit status: 0 success,\n"
               "1 no solution within eps, 2 bad input or usage, 3 internal error (out of memory included).\n",
            group, *group ? " " : "", group, *group ? " " : "");
}

static const subcommand *find_subcommand(const subcommand *subs, int n, const char *name) {
    for (int i = 0; i < n; i++) if (!strcmp(subs[i].name, name)) return &subs[i];
    return NULL;
}

static int unknown_subcommand(const char *group, const subcommand *subs, int n, const char *name) {
    const char *names[64];
    for (int i = 0; i < n && i < 64; i++) names[i] = subs[i].name;
    const char *near = args_nearest(name, names, n < 64 ? n : 64);
    const char *sp = *group ? " " : "";
    if (near) {
        fprintf(stderr, "faceup%s%s: unknown command '%s' (did you mean '%s'? try 'faceup %s%shelp')\n", sp, group, name, near, group, sp);
        return FU_E_INPUT;
    }
    fprintf(stderr, "faceup%s%s: unknown command '%s' (one of:", sp, group, name);
    for (int i = 0; i < n; i++) fprintf(stderr, " %s%s", subs[i].name, i + 1 < n ? "," : ")\n");
    return FU_E_INPUT;
}

int subcommand_run(const char *group, const char *intro, const subcommand *subs, int n, int argc, char **argv) {
    if (argc < 1) {
        list_subcommands(stderr, group, intro, subs, n);
        return FU_E_INPUT;
    }
    const char *name = argv[0];
    int help = !strcmp(name, "--help") || !strcmp(name, "-h") || !strcmp(name, "help");
    if (help && argc < 2) {
        list_subcommands(stdout, group, intro, subs, n);
        return FU_OK;
    }
    const subcommand *s = find_subcommand(subs, n, help ? argv[1] : name);
    if (!s) return unknown_subcommand(group, subs, n, help ? argv[1] : name);
    if (help) {   /* help NAME [SUB]: NAME [SUB] --help */
        char *sub[3] = {argc > 2 ? argv[2] : "--help", "--help", NULL};
        return s->run(argc > 2 ? 2 : 1, sub);
    }
    return s->run(argc - 1, argv + 1);
}
