/* The race head's logit offsets (train/race_offsets.h, heads.h race.logit_bias): the fit on
 * synthetic logits recovers a known per-class shift and lifts the worst class above its anchor;
 * the heads file stores, validates and applies the offsets. */
#include "test.h"
#include "util.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/ops.h"
#include "core/rng.h"
#include "face/heads.h"
#include "face/models.h"
#include "io/safetensors.h"
#include "train/race_offsets.h"

#define N_SYN 3000

/* Logits of a classifier that is right by a margin of 3 (unit noise) but whose class c logit
 * is pushed down by shift[c]; the fitted offsets should undo the shift. */
static void synthetic(const float shift[FU_RACE_CLASSES], float *logits, int *labels) {
    fu_rng r;
    fu_rng_seed(&r, 5);
    for (int i = 0; i < N_SYN; i++) {
        labels[i] = i % FU_RACE_CLASSES;
        for (int c = 0; c < FU_RACE_CLASSES; c++) {
            float noise;
            fu_rng_fill_normal(&r, &noise, 1, 0, 1);
            logits[i * FU_RACE_CLASSES + c] = (c == labels[i] ? 3.0f : 0.0f) + noise - shift[c];
        }
    }
}

TEST(race_offsets_fit_undoes_a_known_shift) {
    static float logits[N_SYN * FU_RACE_CLASSES];
    static int labels[N_SYN];
    const float shift[FU_RACE_CLASSES] = {0, 1.5f, 0.5f, 1.0f, 2.5f};
    const double even[FU_RACE_CLASSES] = {0.8, 0.8, 0.8, 0.8, 0.8};
    synthetic(shift, logits, labels);
    float zero[FU_RACE_CLASSES] = {0}, bias[FU_RACE_CLASSES];
    fu_race_recall before, after;
    fu_race_recall_of(logits, labels, N_SYN, zero, even, &before);
    CHECK_MSG(before.recall[4] < 0.7 && before.recall[0] > 0.95, "%g %g", before.recall[4], before.recall[0]);   /* the shift hurts class 4 */
    REQUIRE(fu_race_offsets_fit(logits, labels, N_SYN, even, bias) == FU_OK);
    fu_race_recall_of(logits, labels, N_SYN, bias, even, &after);
    CHECK(bias[0] == 0.0f);
    for (int c = 1; c < FU_RACE_CLASSES; c++) CHECK_MSG(fabsf(bias[c] - shift[c]) < 0.4f, "class %d: %g vs %g", c, bias[c], shift[c]);
    CHECK(after.worst_margin > 0.05 && after.worst_margin > before.worst_margin);
    for (int c = 0; c < FU_RACE_CLASSES; c++) CHECK(after.recall[c] > 0.85);
    /* uneven anchors move the operating point towards the demanding class */
    const double demanding[FU_RACE_CLASSES] = {0.5, 0.5, 0.5, 0.5, 0.99};
    float tilted[FU_RACE_CLASSES];
    REQUIRE(fu_race_offsets_fit(logits, labels, N_SYN, demanding, tilted) == FU_OK);
    CHECK(tilted[4] > bias[4] + 0.5f);
    /* no labelled row: refused */
    int none[3] = {-1, -1, 7};
    CHECK(fu_race_offsets_fit(logits, none, 3, even, bias) == FU_E_INPUT);
}

/* Rows of a learnable 5-class problem: class y adds 3 to dimension y, unit noise everywhere. */
static void separable_rows(fu_rng *r, int64_t n, int dim, float *x, int *y, int first_class) {
    for (int64_t i = 0; i < n; i++) {
        y[i] = (int)((i + first_class) % FU_RACE_CLASSES);
        fu_rng_fill_normal(r, x + i * dim, dim, 0, 1);
        x[i * dim + y[i]] += 3.0f;
    }
}

static fu_heads_train_config small_training(void) {
    fu_heads_train_config c = fu_heads_train_defaults();
    c.batch = 32, c.max_epochs = 25, c.patience = 5;
    return c;
}

/* Out-of-fold logits: every row gets the logits of a head that can classify it (so they land on
 * the right rows), and the folds are stratified (a class of 4 rows spread over 4 folds). */
TEST(race_offsets_out_of_fold_logits) {
    enum { N = 500, DIM = 12, NSEL = 100 };
    static float x[N * DIM], xs[NSEL * DIM], oof[N * FU_RACE_CLASSES];
    static int y[N], ys[NSEL];
    fu_rng r;
    fu_rng_seed(&r, 21);
    separable_rows(&r, N, DIM, x, y, 0);
    separable_rows(&r, NSEL, DIM, xs, ys, 2);
    const fu_mlp_shape shape = {"race", DIM, 16, FU_RACE_CLASSES};
    fu_heads_train_config cfg = small_training();
    fu_race_rows rows = {N, x, y}, select = {NSEL, xs, ys};
    for (int64_t i = 0; i < N * FU_RACE_CLASSES; i++) oof[i] = NAN;
    REQUIRE(fu_race_oof_logits(&rows, &select, 5, &shape, &cfg, oof) == FU_OK);
    for (int64_t i = 0; i < N * FU_RACE_CLASSES; i++) REQUIRE(isfinite(oof[i]));
    float zero[FU_RACE_CLASSES] = {0};
    fu_race_recall rec;
    fu_race_recall_of(oof, y, N, zero, fu_race_gear_anchor, &rec);
    CHECK_MSG(rec.balanced > 0.85, "out-of-fold balanced recall %g", rec.balanced);
    /* class 4 only at rows 0, 4, 8, 12: with 4 folds by row order they would all fall in fold
     * 0, whose head would then train without class 4; stratified, each fold holds one */
    static float xr[40 * DIM], oofr[40 * FU_RACE_CLASSES];
    static int yr[40];
    for (int i = 0; i < 40; i++) {
        yr[i] = i % 4 == 0 && i < 16 ? 4 : i % 4;
        fu_rng_fill_normal(&r, xr + i * DIM, DIM, 0, 1);
        xr[i * DIM + yr[i]] += 3.0f;
    }
    fu_race_rows rare = {40, xr, yr};
    CHECK_MSG(fu_race_oof_logits(&rare, &select, 4, &shape, &cfg, oofr) == FU_OK, "%s", fu_last_error());
    /* refused: one fold, more folds than rows, a label out of range */
    CHECK(fu_race_oof_logits(&rows, &select, 1, &shape, &cfg, oof) == FU_E_INPUT);
    fu_race_rows few = {3, x, y};
    CHECK(fu_race_oof_logits(&few, &select, 5, &shape, &cfg, oof) == FU_E_INPUT);
    yr[7] = 9;
    CHECK(fu_race_oof_logits(&rare, &select, 4, &shape, &cfg, oofr) == FU_E_INPUT);
}

TEST(race_offsets_recall_counts) {
    /* 4 faces: two White (one right), one Black (right), one unlabelled */
    const float l[4 * 5] = {2, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 3, 0, 0, 0, 9, 0, 0, 0, 0};
    const int y[4] = {0, 0, 1, -1};
    float bias[5] = {0};
    fu_race_recall r;
    fu_race_recall_of(l, y, 4, bias, fu_race_gear_anchor, &r);
    CHECK(r.count[0] == 2 && r.correct[0] == 1 && r.count[1] == 1 && r.correct[1] == 1 && r.count[4] == 0);
    CHECK_NEAR(r.balanced, 0.75, 1e-9);
    CHECK_NEAR(r.worst_margin, 0.5 - 0.94, 1e-9);
    bias[1] = 2.5f;   /* the first White face now reads Black too */
    fu_race_recall_of(l, y, 4, bias, fu_race_gear_anchor, &r);
    CHECK(r.correct[0] == 0 && r.correct[1] == 1);
}

TEST(heads_race_logit_bias_stored_checked_and_applied) {
    char path[512];
    snprintf(path, sizeof path, "%s/heads_bias.safetensors", fu_test_tmpdir());
    fu_heads *h = fu_heads_new(3);
    REQUIRE(h);
    for (int c = 0; c < FU_RACE_CLASSES; c++) CHECK(h->race_logit_bias[c] == 0.0f);
    const float b[FU_RACE_CLASSES] = {0, -1.25f, 0.5f, 2, -3};
    memcpy(h->race_logit_bias, b, sizeof b);
    REQUIRE(fu_heads_save(h, path, NULL, 0) == FU_OK);
    fu_heads *back = fu_heads_load(path);
    REQUIRE(back);
    CHECK(memcmp(back->race_logit_bias, b, sizeof b) == 0);
    /* the logits are the MLP's plus the offsets */
    fu_rng r;
    fu_rng_seed(&r, 9);
    fu_tensor *x = randn_leaf(&r, 2, (int64_t[]){3, 128}, 0);
    fu_graph *g = fu_graph_new();
    fu_tensor *raw = fu_mlp_forward(g, &back->race, x), *with = fu_heads_race_logits(g, back, x);
    REQUIRE(raw && with && with->numel == 15);
    for (int i = 0; i < 15; i++) CHECK_NEAR(with->data[i], raw->data[i] + b[i % 5], 1e-5f);
    /* the plain-row versions give the same numbers */
    float rows_raw[15], rows_with[15];
    REQUIRE(fu_mlp_rows(&back->race, x->data, 3, rows_raw) == FU_OK && fu_heads_race_rows(back, x->data, 3, rows_with) == FU_OK);
    for (int i = 0; i < 15; i++) CHECK(rows_raw[i] == raw->data[i] && rows_with[i] == with->data[i]);
    fu_graph_free(g);
    fu_tensor_free(x);
    fu_heads_free(back);
    /* an absurd or non-finite offset is refused with the file and tensor named */
    h->race_logit_bias[2] = 1e4f;
    REQUIRE(fu_heads_save(h, path, NULL, 0) == FU_OK);
    CHECK(fu_heads_load(path) == NULL);
    CHECK(strstr(fu_last_error(), "race.logit_bias") && strstr(fu_last_error(), "heads_bias.safetensors"));
    h->race_logit_bias[2] = NAN;
    REQUIRE(fu_heads_save(h, path, NULL, 0) == FU_OK);
    CHECK(fu_heads_load(path) == NULL);
    CHECK(strstr(fu_last_error(), "race.logit_bias") != NULL);
    fu_heads_free(h);
}

TEST(heads_without_race_logit_bias_load_with_zero_offsets) {
    /* a heads file written before the offsets existed: every tensor but the three offsets */
    char path[512], names[16][64];
    snprintf(path, sizeof path, "%s/heads_old.safetensors", fu_test_tmpdir());
    fu_heads *h = fu_heads_new(4);
    REQUIRE(h);
    fu_st_item items[FU_HEADS_ITEMS];
    fu_tensor *owned[FU_HEADS_OWNED];
    REQUIRE(fu_heads_items(h, names, items, owned) == FU_OK);
    REQUIRE(!strcmp(items[FU_HEADS_ITEMS - 3].name, "race.logit_bias"));
    REQUIRE(fu_st_save(path, items, FU_HEADS_ITEMS - 3, NULL, 0) == FU_OK);   /* all but the offsets */
    fu_heads *old = fu_heads_load(path);
    REQUIRE(old);
    for (int c = 0; c < FU_RACE_CLASSES; c++)
        CHECK(old->race_logit_bias[c] == 0.0f && old->thumb_logit_bias[0][c] == 0.0f && old->thumb_logit_bias[1][c] == 0.0f);
    fu_heads_free(old);
    fu_heads_items_release(owned);
    fu_heads_free(h);
}

/* thumb16.logit_bias / thumb8.logit_bias: saved, loaded, checked and added to the thumbnail
 * classifier's logits (probabilities = softmax(logits + offsets)). */
TEST(heads_thumb_logit_bias_stored_checked_and_applied) {
    char path[512];
    snprintf(path, sizeof path, "%s/heads_thumb_bias.safetensors", fu_test_tmpdir());
    fu_heads *h = fu_heads_new(5);
    REQUIRE(h);
    fu_tensor *thumbs[2] = {fu_tensor_newv(4, (int64_t)1, (int64_t)3, (int64_t)16, (int64_t)16),
                            fu_tensor_newv(4, (int64_t)1, (int64_t)3, (int64_t)8, (int64_t)8)};
    REQUIRE(thumbs[0] && thumbs[1]);
    for (int t = 0; t < 2; t++)
        for (int64_t i = 0; i < thumbs[t]->numel; i++) thumbs[t]->data[i] = (float)((i * 37) % 101) / 100.0f;
    float raw[2][FU_RACE_CLASSES], with[2][FU_RACE_CLASSES];
    for (int t = 0; t < 2; t++) REQUIRE(fu_heads_thumb_race(h, thumbs[t], raw[t]) >= 0);
    const float b16[FU_RACE_CLASSES] = {0, 1, -2, 0.5f, 3}, b8[FU_RACE_CLASSES] = {-1, 0, 0, 2, 0};
    memcpy(h->thumb_logit_bias[0], b16, sizeof b16);
    memcpy(h->thumb_logit_bias[1], b8, sizeof b8);
    REQUIRE(fu_heads_save(h, path, NULL, 0) == FU_OK);
    fu_heads *back = fu_heads_load(path);
    REQUIRE(back);
    CHECK(!memcmp(back->thumb_logit_bias[0], b16, sizeof b16) && !memcmp(back->thumb_logit_bias[1], b8, sizeof b8));
    for (int t = 0; t < 2; t++) {
        int best = fu_heads_thumb_race(back, thumbs[t], with[t]);
        const float *b = t ? b8 : b16;
        /* softmax(l + b)_c / softmax(l + b)_0 = softmax(l)_c / softmax(l)_0 * exp(b_c - b_0) */
        for (int c = 1; c < FU_RACE_CLASSES; c++)
            CHECK_NEAR(with[t][c] / with[t][0], raw[t][c] / raw[t][0] * expf(b[c] - b[0]), 1e-3 * raw[t][c] / raw[t][0] * expf(b[c] - b[0]));
        for (int c = 0; c < FU_RACE_CLASSES; c++) CHECK(with[t][c] <= with[t][best]);
    }
    fu_heads_free(back);
    h->thumb_logit_bias[1][3] = 25;   /* beyond FU_RACE_BIAS_LIMIT */
    REQUIRE(fu_heads_save(h, path, NULL, 0) == FU_OK);
    CHECK(fu_heads_load(path) == NULL);
    CHECK(strstr(fu_last_error(), "thumb8.logit_bias") != NULL);
    for (int t = 0; t < 2; t++) fu_tensor_free(thumbs[t]);
    fu_heads_free(h);
}
