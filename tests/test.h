/* Minimal test harness: TEST(name) { ... } registers itself; CHECK* record failures and
 * continue; SKIP("why") marks a test skipped (e.g. ../shared/data absent). The runner
 * (tests/main.c) prints one line per test and the closing "N passed, N failed, N skipped". */
#ifndef FU_TEST_H
#define FU_TEST_H
#include <math.h>
#include <stdio.h>
#include "core/error.h"

typedef struct fu_test_case { const char *name, *file; void (*fn)(void); } fu_test_case;
void fu_test_register(const char *name, const char *file, void (*fn)(void));
void fu_test_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void fu_test_skip(const char *why);
int fu_test_failed(void);
/* Path of ../shared (env FACEUP_SHARED overrides); NULL when absent. */
const char *fu_test_shared_dir(void);
/* Scratch directory for this run (created on first use). */
const char *fu_test_tmpdir(void);

#define TEST(name)                                                                  \
    static void test_##name(void);                                                  \
    __attribute__((constructor)) static void register_##name(void) {                \
        fu_test_register(#name, __FILE__, test_##name);                             \
    }                                                                               \
    static void test_##name(void)

#define CHECK(cond)                                                                 \
    do { if (!(cond)) fu_test_fail(__FILE__, __LINE__, "CHECK(%s) failed (last error: %s)", #cond, fu_last_error()); } while (0)
#define CHECK_MSG(cond, ...)                                                        \
    do { if (!(cond)) fu_test_fail(__FILE__, __LINE__, __VA_ARGS__); } while (0)
#define CHECK_NEAR(a, b, tol)                                                       \
    do { double a_ = (a), b_ = (b);                                                 \
         if (!(fabs(a_ - b_) <= (tol))) fu_test_fail(__FILE__, __LINE__, "%s = %.8g, expected %s = %.8g (tol %g)", #a, a_, #b, b_, (double)(tol)); } while (0)
/* Stops the test when cond fails (use where continuing would crash). */
#define REQUIRE(cond)                                                               \
    do { if (!(cond)) { fu_test_fail(__FILE__, __LINE__, "REQUIRE(%s) failed (last error: %s)", #cond, fu_last_error()); return; } } while (0)
#define SKIP(why) do { fu_test_skip(why); return; } while (0)

#endif
