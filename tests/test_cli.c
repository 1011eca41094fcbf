/* The faceup command: exit codes and one-line errors (runs $FACEUP_BIN, default build/faceup). */
#include "test.h"
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Runs the command line through the shell; captures stdout/stderr (truncated) and the status. */
static int run(const char *args, char *out, size_t n_out, char *err, size_t n_err) {
    const char *bin = getenv("FACEUP_BIN") ? getenv("FACEUP_BIN") : "build/faceup";
    char cmd[2048], fo[512], fe[512];
    snprintf(fo, sizeof fo, "%s/cli.out", fu_test_tmpdir());
    snprintf(fe, sizeof fe, "%s/cli.err", fu_test_tmpdir());
    snprintf(cmd, sizeof cmd, "%s %s >%s 2>%s </dev/null", bin, args, fo, fe);
    int st = system(cmd);
    const char *paths[2] = {fo, fe};
    char *bufs[2] = {out, err};
    size_t sizes[2] = {n_out, n_err};
    for (int i = 0; i < 2; i++) {
        FILE *f = fopen(paths[i], "r");
        size_t k = f ? fread(bufs[i], 1, sizes[i] - 1, f) : 0;
        bufs[i][k] = 0;
        if (f) fclose(f);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

TEST(cli_exit_codes_and_messages) {
    const char *bin = getenv("FACEUP_BIN") ? getenv("FACEUP_BIN") : "build/faceup";
    if (access(bin, X_OK) != 0) SKIP("faceup binary not built");
    static char out[65536], err[4096];
    CHECK(run("", out, sizeof out, err, sizeof err) == FU_E_INPUT);
    CHECK(run("frobnicate", out, sizeof out, err, sizeof err) == FU_E_INPUT);
    CHECK(strstr(err, "unknown command 'frobnicate'") && count_lines(err) == 1);
    CHECK(run("selfcheck --steps abc", out, sizeof out, err, sizeof err) == FU_E_INPUT);
    CHECK(strstr(err, "--steps") && count_lines(err) == 1);
    CHECK(run("selfcheck --steps 0", out, sizeof out, err, sizeof err) == FU_E_INPUT);
    CHECK(run("selfcheck --steps", out, sizeof out, err, sizeof err) == FU_E_INPUT);
    CHECK(run("selfcheck --bogus", out, sizeof out, err, sizeof err) == FU_E_INPUT);
    CHECK(run("model info /nonexistent/w.safetensors", out, sizeof out, err, sizeof err) == FU_E_INPUT);
    CHECK(strstr(err, "/nonexistent/w.safetensors") && count_lines(err) == 1);
    CHECK(run("model info tests/fixtures/pt/dtypes.pt tests/fixtures/pt/hostile_os_system.pt", out, sizeof out, err, sizeof err) == FU_E_INPUT);
    CHECK(strstr(err, "os.system") != NULL);
    CHECK(run("selfcheck --json --quiet --steps 150", out, sizeof out, err, sizeof err) == FU_OK);
    CHECK(strstr(out, "\"passed\": true") != NULL);
    CHECK(run("selfcheck --steps 1 --quiet", out, sizeof out, err, sizeof err) == FU_E_INTERNAL);  /* one step cannot learn */
    CHECK(run("--version", out, sizeof out, err, sizeof err) == FU_OK && strstr(out, FACEUP_VERSION));
}
