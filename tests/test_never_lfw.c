/* The "never LFW" rule for identity training folders (train/never_lfw.h), on a made-up LFW
 * folder: LFW people by folder name or pairs.txt name, folders inside LFW and images linked
 * into it are refused; other folders pass, and so does everything when there is no LFW. */
#include "test.h"
#include "util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "io/fileutil.h"
#include "train/finetune.h"
#include "train/never_lfw.h"

static void touch(const char *dir, const char *sub, const char *file, char *path, size_t n) {
    char d[1500];
    snprintf(d, sizeof d, "%s/%s", dir, sub);
    mkdir(dir, 0700);
    mkdir(d, 0700);
    snprintf(path, n, "%s/%s", d, file);
    fu_write_file_atomic(path, "x", 1);
}

/* tmp/fake_lfw: images/Ann_Example/Ann_Example_0001.jpg, and pairs.txt naming Bob_Sample. */
static void fake_lfw(char *lfw, size_t n) {
    char img[2048], pairs[1100];
    snprintf(lfw, n, "%s/fake_lfw", fu_test_tmpdir());
    mkdir(lfw, 0700);
    char images[1100];
    snprintf(images, sizeof images, "%s/images", lfw);
    touch(images, "Ann_Example", "Ann_Example_0001.jpg", img, sizeof img);
    snprintf(pairs, sizeof pairs, "%s/pairs.txt", lfw);
    const char *text = "1\t1\nBob_Sample\t1\t2\nBob_Sample\t1\tAnn_Example\t1\n";
    fu_write_file_atomic(pairs, text, strlen(text));
}

TEST(never_lfw_refuses_lfw_people_folders_and_images) {
    char lfw[600], root[600], img[2048], path[2048], lfw_images[700];
    fake_lfw(lfw, sizeof lfw);
    /* a clean identity folder passes */
    snprintf(root, sizeof root, "%s/ids_clean", fu_test_tmpdir());
    touch(root, "person_a", "1.jpg", img, sizeof img);
    char *paths[1] = {img};
    CHECK(fu_never_lfw_check(root, paths, 1, lfw) == FU_OK);
    /* an LFW person by folder name (any case, spaces for underscores) */
    snprintf(root, sizeof root, "%s/ids_ann", fu_test_tmpdir());
    touch(root, "ann example", "1.jpg", img, sizeof img);
    CHECK(fu_never_lfw_check(root, NULL, 0, lfw) == FU_E_INPUT);
    CHECK(strstr(fu_last_error(), "ann example") && strstr(fu_last_error(), "ids_ann"));
    /* an LFW person known only from pairs.txt */
    snprintf(root, sizeof root, "%s/ids_bob", fu_test_tmpdir());
    touch(root, "BOB_SAMPLE", "1.jpg", img, sizeof img);
    CHECK(fu_never_lfw_check(root, NULL, 0, lfw) == FU_E_INPUT);
    CHECK(strstr(fu_last_error(), "BOB_SAMPLE") != NULL);
    /* the LFW folder itself, or a folder inside it */
    snprintf(lfw_images, sizeof lfw_images, "%s/images", lfw);
    CHECK(fu_never_lfw_check(lfw_images, NULL, 0, lfw) == FU_E_INPUT);
    CHECK(strstr(fu_last_error(), "inside the LFW folder") != NULL);
    CHECK(fu_never_lfw_check(lfw, NULL, 0, lfw) == FU_E_INPUT);
    /* an innocently named folder whose image is a link to an LFW image */
    snprintf(root, sizeof root, "%s/ids_link", fu_test_tmpdir());
    mkdir(root, 0700);
    snprintf(path, sizeof path, "%s/person_c", root);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/person_c/1.jpg", root);
    snprintf(img, sizeof img, "%s/images/Ann_Example/Ann_Example_0001.jpg", lfw);
    unlink(path);
    REQUIRE(symlink(img, path) == 0);
    paths[0] = path;
    CHECK(fu_never_lfw_check(root, paths, 1, lfw) == FU_E_INPUT);
    CHECK(strstr(fu_last_error(), "LFW image") != NULL);
    /* no LFW folder: no list to check against */
    char none[700];
    snprintf(none, sizeof none, "%s/no_such_lfw", fu_test_tmpdir());
    snprintf(root, sizeof root, "%s/ids_ann", fu_test_tmpdir());
    CHECK(fu_never_lfw_check(root, NULL, 0, none) == FU_OK);
}

TEST(finetune_refuses_ids_with_lfw_people) {
    /* refused before any data or model is touched */
    char lfw[600], root[600], img[2048], out[600];
    fake_lfw(lfw, sizeof lfw);
    snprintf(root, sizeof root, "%s/ids_ft", fu_test_tmpdir());
    touch(root, "Ann_Example", "1.jpg", img, sizeof img);
    touch(root, "person_b", "1.jpg", img, sizeof img);
    snprintf(out, sizeof out, "%s/ft_lfw.safetensors", fu_test_tmpdir());
    fu_finetune_config c = fu_finetune_defaults();
    c.out = out, c.heads = "unused.safetensors", c.ids = root, c.lfw = lfw;
    fu_xdata d = {0};
    fu_finetune_report rep;
    CHECK(fu_finetune_run(&d, &c, &rep, NULL, NULL) == FU_E_INPUT);
    CHECK(strstr(fu_last_error(), "Ann_Example") && strstr(fu_last_error(), "LFW"));
    CHECK(!file_exists(out));
}
