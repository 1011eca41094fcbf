/* The race judge on faceres descriptors (see race_judge.h). */
#include "face/race_judge.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/ops.h"
#include "core/rng.h"
#include "faceup.h"
#include "io/safetensors.h"

const float fu_gear_utkface_box[4] = {0.17f, 0.26f, 0.84f, 0.93f};

void fu_judge_box_theta(const int64_t *img_shape, const float box[4], int size, double theta[6]) {
    double W = (double)img_shape[3], H = (double)img_shape[2];
    double sx = (box[2] - box[0]) * W / size, sy = (box[3] - box[1]) * H / size;
    theta[0] = sx, theta[1] = 0, theta[2] = box[0] * W + 0.5 * sx - 0.5;
    theta[3] = 0, theta[4] = sy, theta[5] = box[1] * H + 0.5 * sy - 0.5;
}

static const fu_mlp_shape judge_shape = {"judge", FU_RACE_JUDGE_IN, FU_RACE_JUDGE_HIDDEN, FU_RACE_CLASSES};

void fu_race_judge_free(fu_race_judge *j) {
    if (!j) return;
    fu_mlp_release(&j->mlp);
    free(j);
}

fu_race_judge *fu_race_judge_new(uint64_t seed) {
    fu_race_judge *j = fu_calloc(1, sizeof *j);
    if (!j) return NULL;
    fu_rng r;
    fu_rng_seed(&r, seed);
    if (fu_mlp_init(&j->mlp, &judge_shape, &r) != FU_OK) { fu_race_judge_free(j); return NULL; }
    for (int i = 0; i < FU_RACE_JUDGE_IN; i++) j->scale[i] = 1;
    return j;
}

static int read_tensor(const fu_safetensors *st, const char *name, int nd, const int64_t *shape, fu_tensor **out) {
    return fu_st_tensor_exact(st, name, nd, shape, "race judge", out);
}

static int read_vector(const fu_safetensors *st, const char *name, float *dst) {
    fu_tensor *t = NULL;
    int rc = read_tensor(st, name, 1, (int64_t[]){FU_RACE_JUDGE_IN}, &t);
    if (rc == FU_OK) memcpy(dst, t->data, FU_RACE_JUDGE_IN * sizeof(float));
    fu_tensor_free(t);
    return rc;
}

fu_race_judge *fu_race_judge_load(const char *path) {
    fu_safetensors *st = fu_st_open(path);
    if (!st) return NULL;
    fu_race_judge *j = fu_calloc(1, sizeof *j);
    int rc = j ? FU_OK : FU_E_INTERNAL;
    if (rc == FU_OK) rc = fu_mlp_read(&j->mlp, &judge_shape, st, "race judge");
    if (rc == FU_OK) rc = read_vector(st, "judge.input_mean", j->mean);
    if (rc == FU_OK) rc = read_vector(st, "judge.input_scale", j->scale);
    for (int i = 0; rc == FU_OK && i < FU_RACE_JUDGE_IN; i++)
        if (!(j->scale[i] > 0)) rc = fu_fail(FU_E_INPUT, "%s: judge.input_scale[%d] is not positive", path, i);
    fu_st_free(st);
    if (rc != FU_OK) { fu_race_judge_free(j); return NULL; }
    return j;
}

int fu_race_judge_save(const fu_race_judge *j, const char *path, const char *const *meta_kv, int n_meta) {
    fu_st_item items[6];
    char names[4][64];
    fu_tensor *mean = fu_tensor_newv(1, (int64_t)FU_RACE_JUDGE_IN), *scale = fu_tensor_newv(1, (int64_t)FU_RACE_JUDGE_IN);
    int rc = mean && scale ? FU_OK : fu_last_code();
    if (rc == FU_OK) {
        memcpy(mean->data, j->mean, sizeof j->mean);
        memcpy(scale->data, j->scale, sizeof j->scale);
        fu_mlp_items(&j->mlp, &judge_shape, names, items);
        items[4] = (fu_st_item){"judge.input_mean", mean, FU_F32};
        items[5] = (fu_st_item){"judge.input_scale", scale, FU_F32};
        fu_st_meta meta[8];
        int n = n_meta < 8 ? n_meta : 8;
        for (int k = 0; k < n; k++) meta[k] = (fu_st_meta){meta_kv[2 * k], meta_kv[2 * k + 1]};
        rc = fu_st_save(path, items, 6, meta, n);
    }
    fu_tensor_free(mean);
    fu_tensor_free(scale);
    return rc;
}

void fu_race_judge_input(const fu_race_judge *j, const float *desc, float *x) {
    for (int i = 0; i < FU_RACE_JUDGE_IN; i++) x[i] = (desc[i] - j->mean[i]) * j->scale[i];
}

int fu_race_judge_classify(const fu_race_judge *j, const float *desc, float probs[FU_RACE_CLASSES]) {
    fu_graph *g = fu_graph_new();
    fu_tensor *x = g ? fu_graph_tensor(g, 2, (int64_t[]){1, FU_RACE_JUDGE_IN}) : NULL;
    if (x) fu_race_judge_input(j, desc, x->data);
    fu_tensor *p = x ? fu_softmax(g, fu_mlp_forward(g, &j->mlp, x), 1) : NULL;
    int best = p ? 0 : -1;
    for (int k = 0; p && k < FU_RACE_CLASSES; k++) {
        probs[k] = p->data[k];
        if (p->data[k] > p->data[best]) best = k;
    }
    fu_graph_free(g);
    return best;
}
