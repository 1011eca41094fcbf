/* LFW protocol: pairs.txt parsing and the 10-fold threshold selection. */
#include "test.h"
#include "util.h"
#include "data/lfw.h"
#include <stdlib.h>
#include <string.h>

/* A 2-fold file with 2 same and 2 different pairs per fold. */
static const char *SMALL =
    "2\t2\n"
    "Ann_A\t1\t2\nBob_B\t1\t3\nAnn_A\t1\tBob_B\t2\nCid_C\t4\tDee_D\t1\n"
    "Eve_E\t2\t5\nFay_F\t1\t2\nEve_E\t1\tFay_F\t1\nGus_G\t1\tHal_H\t2\n";

TEST(lfw_pairs_parse_and_paths) {
    fu_lfw_pairs p;
    REQUIRE(fu_lfw_parse_pairs(SMALL, strlen(SMALL), "small", &p) == FU_OK);
    CHECK(p.n_folds == 2 && p.per_fold == 2 && p.n == 8);
    CHECK(p.pairs[0].same && !strcmp(p.pairs[0].name[1], "Ann_A") && p.pairs[0].index[1] == 2);
    CHECK(!p.pairs[2].same && !strcmp(p.pairs[2].name[1], "Bob_B") && p.pairs[2].fold == 0);
    CHECK(p.pairs[7].fold == 1 && p.pairs[7].index[1] == 2);
    char path[256];
    CHECK(fu_lfw_image_path("/d", "Ann_A", 7, path, sizeof path) == FU_OK && !strcmp(path, "/d/images/Ann_A/Ann_A_0007.jpg"));
    CHECK(fu_lfw_image_path("/d", "Ann_A", 7, path, 10) == FU_E_INPUT);
    fu_lfw_pairs_free(&p);
}

TEST(lfw_pairs_reject_malformed) {
    const char *bad[] = {
        "",                                             /* empty */
        "2 2\nAnn_A 1 2\n",                             /* too few pairs */
        "1 1\nAnn_A 1\tBob_B 1\nAnn_A 1 2\n",           /* different pair where a same one belongs */
        "1 1\nAnn_A 0 2\nAnn_A 1 Bob_B 1\n",            /* image index 0 */
        "1 1\n../etc 1 2\nAnn_A 1 Bob_B 1\n",           /* path in a name */
        "1 1\nAnn_A 1 2\nAnn_A 1 Bob_B 1\nAnn_A 1 2\n", /* more pairs than promised */
        "99 1\n",                                       /* absurd fold count */
        "1 1\nAnn_A 1 2 3 4 5\nAnn_A 1 Bob_B 1\n",      /* too many fields */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        fu_lfw_pairs p;
        CHECK_MSG(fu_lfw_parse_pairs(bad[i], strlen(bad[i]), "bad", &p) == FU_E_INPUT, "case %zu accepted", i);
        CHECK(p.pairs == NULL);
        CHECK(strstr(fu_last_error(), "bad") != NULL);
    }
}

TEST(lfw_folds_choose_threshold_on_other_folds) {
    fu_lfw_pairs p;
    REQUIRE(fu_lfw_parse_pairs(SMALL, strlen(SMALL), "small", &p) == FU_OK);
    /* Fold 0 separable at 0.5; fold 1 shifted up so fold 0's threshold (chosen on fold 1,
     * between 0.8 and 0.9) misclassifies fold 0's same pairs at 0.6 and 0.7. */
    float scores[8] = {0.6f, 0.7f, 0.2f, 0.3f, 0.9f, 0.95f, 0.7f, 0.8f};
    fu_lfw_result r;
    REQUIRE(fu_lfw_evaluate(&p, scores, &r) == FU_OK);
    CHECK_NEAR(r.fold_threshold[0], 0.85, 1e-6);
    CHECK_NEAR(r.fold_accuracy[0], 0.5, 1e-12);   /* 0.6, 0.7 called different */
    CHECK_NEAR(r.fold_threshold[1], 0.45, 1e-6);  /* chosen on fold 0: between 0.3 and 0.6 */
    CHECK_NEAR(r.fold_accuracy[1], 0.5, 1e-12);   /* 0.7, 0.8 called same */
    CHECK_NEAR(r.mean, 0.5, 1e-12);
    CHECK_NEAR(r.std, 0.0, 1e-12);
    /* AUC over all 8: same {0.6,0.7,0.9,0.95} vs different {0.2,0.3,0.7,0.8}: 16 comparisons,
     * 12 wins + tie (0.7,0.7) half; 0.6 and 0.7 lose to 0.8 -> (16 - 3.5) / 16. */
    CHECK_NEAR(r.auc, 12.5 / 16, 1e-12);
    float fpr[9], tpr[9];
    CHECK(fu_lfw_roc(&p, scores, fpr, tpr) == 9);
    CHECK(fpr[0] == 0 && tpr[0] == 0 && fpr[8] == 1 && tpr[8] == 1);
    for (int i = 1; i < 9; i++) CHECK(fpr[i] >= fpr[i - 1] && tpr[i] >= tpr[i - 1]);
    scores[3] = NAN;
    CHECK(fu_lfw_evaluate(&p, scores, &r) == FU_E_INPUT);
    fu_lfw_pairs_free(&p);
}

TEST(lfw_real_pairs_file) {
    const char *shared = fu_test_shared_dir();
    if (!shared) SKIP("../shared absent");
    char dir[512], path[1024];
    snprintf(dir, sizeof dir, "%s/data/lfw", shared);
    fu_lfw_pairs p;
    REQUIRE(fu_lfw_load_pairs(dir, &p) == FU_OK);
    CHECK(p.n_folds == 10 && p.per_fold == 300 && p.n == 6000);
    int missing = 0;
    for (int i = 0; i < p.n; i++)
        for (int j = 0; j < 2; j++) {
            REQUIRE(fu_lfw_image_path(dir, p.pairs[i].name[j], p.pairs[i].index[j], path, sizeof path) == FU_OK);
            missing += !file_exists(path);
        }
    CHECK_MSG(missing == 0, "%d images named by pairs.txt are missing", missing);
    /* A perfect score gets 100% in every fold; a constant score gets 50%. */
    float *s = malloc(sizeof(float) * (size_t)p.n);
    REQUIRE(s);
    fu_lfw_result r;
    for (int i = 0; i < p.n; i++) s[i] = p.pairs[i].same ? 1.0f : -1.0f;
    REQUIRE(fu_lfw_evaluate(&p, s, &r) == FU_OK);
    CHECK_NEAR(r.mean, 1.0, 1e-12);
    CHECK_NEAR(r.auc, 1.0, 1e-12);
    for (int i = 0; i < p.n; i++) s[i] = 0.5f;
    REQUIRE(fu_lfw_evaluate(&p, s, &r) == FU_OK);
    CHECK_NEAR(r.mean, 0.5, 1e-12);
    CHECK_NEAR(r.auc, 0.5, 1e-12);
    free(s);
    fu_lfw_pairs_free(&p);
}
