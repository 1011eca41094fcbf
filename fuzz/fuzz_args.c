/* libFuzzer target for the command-line flag parser (src/cli/args.c).
 *
 * The input is split at NUL bytes into argv words (at most 32) and parsed against a spec table
 * with every flag type and tight numeric ranges, as the subcommands declare them. The parser
 * must accept or refuse without reading past argv, and accepted numbers must lie in range.
 * The parser reports to stderr: `make run` passes -close_fd_mask=2 (libFuzzer keeps its own). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/args.h"

#define MAX_WORDS 32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *buf = malloc(size + 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    buf[size] = 0;
    char *words[MAX_WORDS];
    int n = 0;
    for (char *p = buf; p <= buf + size && n < MAX_WORDS; p += strlen(p) + 1) words[n++] = p;

    int flag = 0, steps = 100;
    float lr = 0.4f;
    const char *out = NULL;
    const arg_spec specs[] = {
        {"--json", ARG_FLAG, &flag, 0, 0, "JSON"},
        {"--steps", ARG_INT, &steps, 1, 100000, "steps"},
        {"--lr", ARG_FLOAT, &lr, 0, 10, "learning rate"},
        {"-o", ARG_STRING, &out, 0, 0, "output"},
        {0},
    };
    char *pos[4];
    int r = args_parse("fuzz", "ARGS", specs, n, words, pos, 4);
    if (r >= 0) {
        if (steps < 1 || steps > 100000 || !(lr >= 0 && lr <= 10) || r > 4) abort();
        for (int i = 0; i < r; i++) if (pos[i] < buf || pos[i] > buf + size) abort();
    }
    free(buf);
    return 0;
}
