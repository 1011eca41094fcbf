/* The per-image vector cache: lookups, growth, persistence, and refusing foreign files. */
#include "test.h"
#include "util.h"
#include "data/embed_cache.h"
#include "io/fileutil.h"
#include <stdio.h>
#include <string.h>

static fu_ecache_key key_of(int i) { return fu_ecache_key_bytes(&i, sizeof i); }

TEST(embed_cache_put_get_save_reopen) {
    char path[512];
    snprintf(path, sizeof path, "%s/ec.bin", fu_test_tmpdir());
    remove(path);
    fu_ecache *c = fu_ecache_open(path, "net/align", 3);
    REQUIRE(c);
    float v[3], w[3];
    for (int i = 0; i < 5000; i++) {                    /* grows through several rehashes */
        v[0] = (float)i; v[1] = -(float)i; v[2] = 0.5f * i;
        REQUIRE(fu_ecache_put(c, key_of(i), v) == FU_OK);
    }
    v[0] = 42; v[1] = 43; v[2] = 44;
    REQUIRE(fu_ecache_put(c, key_of(7), v) == FU_OK);   /* replace */
    CHECK(fu_ecache_count(c) == 5000);
    CHECK(fu_ecache_get(c, key_of(7), w) && w[0] == 42 && w[2] == 44);
    CHECK(!fu_ecache_get(c, key_of(5000), w));
    REQUIRE(fu_ecache_save(c) == FU_OK);
    fu_ecache_free(c);

    c = fu_ecache_open(path, "net/align", 3);
    REQUIRE(c);
    CHECK(fu_ecache_count(c) == 5000);
    int bad = 0;
    for (int i = 0; i < 5000; i++) {
        if (i == 7) continue;
        bad += !fu_ecache_get(c, key_of(i), w) || w[0] != (float)i || w[1] != -(float)i || w[2] != 0.5f * i;
    }
    CHECK(bad == 0);
    fu_ecache_free(c);

    c = fu_ecache_open(path, "other/align", 3);         /* another pipeline's cache: ignored */
    REQUIRE(c);
    CHECK(fu_ecache_count(c) == 0);
    fu_ecache_free(c);
    c = fu_ecache_open(path, "net/align", 4);
    REQUIRE(c);
    CHECK(fu_ecache_count(c) == 0);
    fu_ecache_free(c);
}

TEST(embed_cache_ignores_damaged_files_and_keys_content) {
    char path[512], img[512];
    snprintf(path, sizeof path, "%s/ec_bad.bin", fu_test_tmpdir());
    REQUIRE(fu_write_file_atomic(path, "FUEC\1\0\0\0\3\0\0\0\1\0\0\0xabc", 19) == FU_OK);  /* torn record */
    fu_ecache *c = fu_ecache_open(path, "x", 3);
    REQUIRE(c);
    CHECK(fu_ecache_count(c) == 0);
    fu_ecache_free(c);
    CHECK(fu_ecache_open(path, "x", 0) == NULL);
    /* Equal content gives equal keys wherever the file lives; one changed byte changes it. */
    snprintf(img, sizeof img, "%s/ec_a.bin", fu_test_tmpdir());
    REQUIRE(fu_write_file_atomic(img, "hello", 5) == FU_OK);
    fu_ecache_key a, b = fu_ecache_key_bytes("hello", 5), d = fu_ecache_key_bytes("hellp", 5);
    REQUIRE(fu_ecache_key_file(img, &a) == FU_OK);
    CHECK(a.h[0] == b.h[0] && a.h[1] == b.h[1]);
    CHECK(a.h[0] != d.h[0] && a.h[1] != d.h[1]);
    CHECK(fu_ecache_key_file("/nonexistent/x.jpg", &a) == FU_E_INPUT);
}
