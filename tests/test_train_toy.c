/* End to end: the toy conv net (src/train/toy.c) must learn with a fixed seed, reproducibly. */
#include "test.h"
#include "train/toy.h"

TEST(toy_conv_net_learns) {
    fu_toy_config cfg = fu_toy_defaults();
    fu_toy_result a, b;
    REQUIRE(fu_toy_train(&cfg, &a, NULL, NULL) == FU_OK);
    CHECK_MSG(a.first_loss > 0.5f, "first loss %.4f should be near ln 2", a.first_loss);
    CHECK_MSG(a.final_loss < 0.1f, "final loss %.4f after %d steps (must be < 0.1)", a.final_loss, cfg.steps);
    CHECK_MSG(a.accuracy >= 0.97f, "accuracy %.3f on fresh images", a.accuracy);
    REQUIRE(fu_toy_train(&cfg, &b, NULL, NULL) == FU_OK);
    CHECK(a.final_loss == b.final_loss);  /* same seed and threads: bitwise the same */
}

TEST(toy_rejects_bad_config) {
    fu_toy_config cfg = fu_toy_defaults();
    fu_toy_result r;
    cfg.steps = 0;
    CHECK(fu_toy_train(&cfg, &r, NULL, NULL) == FU_E_INPUT);
    cfg = fu_toy_defaults();
    cfg.lr = -1;
    CHECK(fu_toy_train(&cfg, &r, NULL, NULL) == FU_E_INPUT);
}
