/* Loss-string parser: accepted forms, canonical round trips, and one-line errors that name the
 * position of the problem. */
#include "test.h"
#include "search/loss_string.h"
#include <string.h>

TEST(loss_string_parses_pulse_and_face_terms) {
    fu_loss_spec s;
    REQUIRE(fu_loss_parse("100*L2+0.05*GEOCROSS", &s) == FU_OK);
    CHECK(s.n_terms == 2);
    CHECK(s.terms[0].kind == FU_TERM_L2 && s.terms[0].weight == 100.0f);
    CHECK(s.terms[1].kind == FU_TERM_GEOCROSS && s.terms[1].weight == 0.05f);
    REQUIRE(fu_loss_parse("1e2*L1+.5*IDENTITY_SCORE+2.*L2_IDENTITY+3*RACE_IS_2+1*ATTR_31_IS_1+1.5E-1*ATTR_Male_IS_0", &s) == FU_OK);
    CHECK(s.n_terms == 6);
    CHECK(s.terms[0].kind == FU_TERM_L1 && s.terms[0].weight == 100.0f);
    CHECK(s.terms[1].kind == FU_TERM_IDENTITY_SCORE && s.terms[1].weight == 0.5f);
    CHECK(s.terms[2].kind == FU_TERM_L2_IDENTITY && s.terms[2].weight == 2.0f);
    CHECK(s.terms[3].kind == FU_TERM_RACE && s.terms[3].index == 2);
    CHECK(s.terms[4].kind == FU_TERM_ATTR && s.terms[4].index == 31 && s.terms[4].value == 1);
    CHECK(s.terms[5].kind == FU_TERM_ATTR && s.terms[5].index == 20 && s.terms[5].value == 0);
    CHECK_NEAR(s.terms[5].weight, 0.15, 1e-7);
    /* Attribute names with a leading digit and inner underscores. */
    REQUIRE(fu_loss_parse("1*ATTR_5_o_Clock_Shadow_IS_1+1*ATTR_Wearing_Necktie_IS_0", &s) == FU_OK);
    CHECK(s.terms[0].index == 0 && s.terms[1].index == 38);
    char buf[256];
    CHECK(!strcmp(fu_loss_spec_string(&s, buf, sizeof buf), "1*ATTR_0_IS_1+1*ATTR_38_IS_0"));
    CHECK(fu_loss_find(&s, FU_TERM_ATTR) == 0 && fu_loss_find(&s, FU_TERM_L2) == -1);
}

TEST(loss_string_canonical_round_trip) {
    fu_loss_spec a, b;
    char t1[512], t2[512];
    REQUIRE(fu_loss_parse("100*L2+0.05*GEOCROSS+5*IDENTITY_SCORE+1*ATTR_Smiling_IS_1", &a) == FU_OK);
    fu_loss_spec_string(&a, t1, sizeof t1);
    CHECK(!strcmp(t1, "100*L2+0.05*GEOCROSS+5*IDENTITY_SCORE+1*ATTR_31_IS_1"));
    REQUIRE(fu_loss_parse(t1, &b) == FU_OK);
    CHECK(!strcmp(fu_loss_spec_string(&b, t2, sizeof t2), t1));
    CHECK(!strcmp(fu_celeba_attr_name(39), "Young") && fu_celeba_attr_name(40) == NULL);
}

/* Each bad string must fail with a message containing `want` (position and problem). */
TEST(loss_string_errors_name_position) {
    static const struct { const char *s, *want; } bad[] = {
        {"", "empty"},
        {"100*L3", "character 5: unknown term 'L3'"},
        {"L2", "character 1: expected a weight"},
        {"100L2", "character 4: expected '*'"},
        {"100*L2+", "character 7: '+' at the end"},
        {"100*L2++1*L1", "character 8: expected a weight"},
        {"-1*L2", "character 1: expected a weight"},
        {"1e*L2", "character 1: expected a weight"},
        {"1.2.3*L2", "character 4: expected '*'"},
        {"100 * L2", "character 4: unexpected character ' '"},
        {"1*", "character 3: expected a term name"},
        {"1e7*L2", "weight larger than 1e6"},
        {"1e999*L2", "weight larger than 1e6"},
        {"1*L2+2*L2", "character 8: term given twice"},
        {"1*RACE_IS_7", "character 11: race class must be an integer 0..6"},
        {"1*RACE_IS_", "character 3: unknown term"},
        {"1*ATTR_40_IS_1", "character 8: unknown CelebA attribute"},
        {"1*ATTR_Smilin_IS_1", "unknown CelebA attribute (0..39 or a name like Smiling) 'Smilin'"},
        {"1*ATTR_31_IS_2", "character 14: attribute value must be 0 or 1"},
        {"1*ATTR_31", "must read ATTR_k_IS_v"},
        {"1*l2", "unknown term 'l2'"},
        {"1*L2\x01", "character 5: unexpected byte 0x01"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fu_loss_spec s;
        s.n_terms = 99;
        int rc = fu_loss_parse(bad[i].s, &s);
        CHECK_MSG(rc == FU_E_INPUT && s.n_terms == 0, "'%s' was accepted", bad[i].s);
        CHECK_MSG(strstr(fu_last_error(), bad[i].want) != NULL, "'%s': message '%s' lacks '%s'", bad[i].s, fu_last_error(), bad[i].want);
        CHECK(strchr(fu_last_error(), '\n') == NULL);
    }
}

TEST(loss_string_limits) {
    char s[2 * FU_LOSS_MAX_LEN];
    fu_loss_spec spec;
    /* 17 distinct terms: too many. */
    size_t used = 0;
    for (int k = 0; k < 17; k++) used += (size_t)snprintf(s + used, sizeof s - used, "%s1*ATTR_%d_IS_1", k ? "+" : "", k);
    CHECK(fu_loss_parse(s, &spec) == FU_E_INPUT && strstr(fu_last_error(), "too many terms"));
    /* 16 are fine. */
    s[strlen(s) - strlen("+1*ATTR_16_IS_1")] = 0;
    CHECK(fu_loss_parse(s, &spec) == FU_OK && spec.n_terms == 16);
    CHECK(fu_loss_add(&spec, (fu_loss_term){.kind = FU_TERM_L2, .weight = 1}) == FU_E_INPUT);
    memset(s, '1', FU_LOSS_MAX_LEN + 1);
    s[FU_LOSS_MAX_LEN + 1] = 0;
    CHECK(fu_loss_parse(s, &spec) == FU_E_INPUT && strstr(fu_last_error(), "longer than 512"));
    REQUIRE(fu_loss_parse("1*L2", &spec) == FU_OK);
    CHECK(fu_loss_add(&spec, (fu_loss_term){.kind = FU_TERM_L2, .weight = 2}) == FU_E_INPUT && strstr(fu_last_error(), "twice"));
    CHECK(fu_loss_add(&spec, (fu_loss_term){.kind = FU_TERM_RACE, .index = 1, .weight = 2}) == FU_OK && spec.n_terms == 2);
}
