/* Test runner: `tests [substring...]` runs the tests whose name contains any substring. */
#include <ftw.h>
#include "test.h"
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "faceup.h"

#define MAX_TESTS 2048
static fu_test_case tests[MAX_TESTS];
static int n_tests, cur_failed, cur_skipped;
static char skip_reason[256];

void fu_test_register(const char *name, const char *file, void (*fn)(void)) {
    if (n_tests < MAX_TESTS) tests[n_tests++] = (fu_test_case){name, file, fn};
}

void fu_test_fail(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stdout, "    %s:%d: ", file, line);
    vfprintf(stdout, fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
    cur_failed++;
}

void fu_test_skip(const char *why) {
    cur_skipped = 1;
    snprintf(skip_reason, sizeof skip_reason, "%s", why);
}

int fu_test_failed(void) { return cur_failed; }

const char *fu_test_shared_dir(void) {
    static char path[1024];
    const char *env = getenv("FACEUP_SHARED");
    snprintf(path, sizeof path, "%s", env ? env : "../shared");
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode) ? path : NULL;
}

static char tmpdir_path[64];

/* A fresh, empty folder per run (mkdtemp): a folder named after the PID could still hold the
 * files of an earlier run that had the same PID, and tests check that nothing is left behind. */
const char *fu_test_tmpdir(void) {
    if (!tmpdir_path[0]) {
        snprintf(tmpdir_path, sizeof tmpdir_path, "/tmp/faceup-test-XXXXXX");
        if (!mkdtemp(tmpdir_path)) {
            perror("faceup_tests: mkdtemp");
            exit(2);
        }
    }
    return tmpdir_path;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static int matches(const char *name, int argc, char **argv) {
    if (argc < 2) return 1;
    for (int i = 1; i < argc; i++) if (strstr(name, argv[i])) return 1;
    return 0;
}

static int by_file_then_name(const void *a, const void *b) {
    const fu_test_case *x = a, *y = b;
    int c = strcmp(x->file, y->file);
    return c ? c : strcmp(x->name, y->name);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    fu_set_threads(0);
    qsort(tests, (size_t)n_tests, sizeof tests[0], by_file_then_name);
    int passed = 0, failed = 0, skipped = 0;
    for (int i = 0; i < n_tests; i++) {
        if (!matches(tests[i].name, argc, argv)) continue;
        cur_failed = cur_skipped = 0;
        fu_clear_error();
        tests[i].fn();
        if (cur_failed) { failed++; printf("FAIL %s\n", tests[i].name); }
        else if (cur_skipped) { skipped++; printf("skip %s (%s)\n", tests[i].name, skip_reason); }
        else { passed++; printf("ok   %s\n", tests[i].name); }
    }
    /* kept after a failure, to look at */
    if (!failed && tmpdir_path[0]) nftw(tmpdir_path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed ? 1 : 0;
}
