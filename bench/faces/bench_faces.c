/* Face-network benchmark, faceup side: times inference (fu_graph_forward of a built graph) of
 * dlib's face ResNet and of the human-models graph models, and forward + backward to the input.
 *
 *   bench_faces MODELS_DIR MODEL BATCH MODE      MODE: fwd | fwdbwd
 * prints "model|batch|threads|mode|median ms". MODEL: dlib-resnet or a human-models name.
 * Input (shared with tfjs_faces.mjs): NHWC element i = 0.5 + 0.4 sin(0.37 i), fed as NCHW.
 * One untimed warm-up run, then repetitions until 1 s and 3 runs, or 15 runs, or 5 s; the median
 * (the rule of tfjs_faces.mjs).
 * Built and run by bench/faces/run.sh. */
#include "core/ops.h"
#include "face/dlib_resnet.h"
#include "face/tfjs_graph.h"
#include "faceup.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static fu_tensor *bench_input(int64_t n, int64_t c, int64_t h, int64_t w) {
    fu_tensor *x = fu_tensor_newv(4, n, c, h, w);
    for (int64_t b = 0; x && b < n; b++)
        for (int64_t y = 0; y < h; y++)
            for (int64_t i = 0; i < w; i++)
                for (int64_t k = 0; k < c; k++) {
                    int64_t nhwc = ((b * h + y) * w + i) * c + k;
                    x->data[((b * c + k) * h + y) * w + i] = 0.5f + 0.4f * sinf(0.37f * (float)nhwc);
                }
    return x;
}

/* Sums every output so that one backward covers them all. */
static fu_tensor *build(fu_graph *g, const char *dir, const char *model, int64_t batch, int grad, fu_tensor **x,
                        fu_dlib_resnet **dlib, fu_tfjs_net **net) {
    char path[2048];
    if (!strcmp(model, "dlib-resnet")) {
        snprintf(path, sizeof path, "%s/%s", dir, FU_DLIB_RESNET_MANIFEST);
        if (!(*dlib = fu_dlib_resnet_load(path))) return NULL;
        *x = bench_input(batch, 3, FU_DLIB_RESNET_SIZE, FU_DLIB_RESNET_SIZE);
        if (!*x || fu_tensor_requires_grad(*x, grad)) return NULL;
        return fu_sum_all(g, fu_dlib_resnet_forward(*dlib, g, *x));
    }
    snprintf(path, sizeof path, "%s/human-models-3.0.4/models/%s.json", dir, model);
    if (!(*net = fu_tfjs_net_load(path))) return NULL;
    int64_t s[FU_MAX_DIMS];
    if (fu_tfjs_net_input_shape(*net, s) != 4) return NULL;
    *x = bench_input(batch, s[3], s[1], s[2]);
    if (!*x || fu_tensor_requires_grad(*x, grad)) return NULL;
    static const char *gear_out[] = {"Identity", "Identity_1", "Identity_2"};
    static const char *faceres_out[] = {"gender_pred/Sigmoid", "global_pooling/Mean", "age_pred/Softmax"};
    const char *const *names = !strcmp(model, "gear") ? gear_out : faceres_out;
    fu_tensor *out[3];
    if (fu_tfjs_net_forward(*net, g, *x, 3, names, out)) return NULL;
    return fu_add(g, fu_add(g, fu_sum_all(g, out[0]), fu_sum_all(g, out[1])), fu_sum_all(g, out[2]));
}

static int more_runs(int n, double elapsed_ms) {
    return n < 15 && elapsed_ms < 5000 && (n < 3 || elapsed_ms < 1000);
}

int main(int argc, char **argv) {
    if (argc != 5 || (strcmp(argv[4], "fwd") && strcmp(argv[4], "fwdbwd"))) {
        fprintf(stderr, "usage: bench_faces MODELS_DIR MODEL BATCH fwd|fwdbwd\n");
        return 2;
    }
    int backward = !strcmp(argv[4], "fwdbwd");
    int64_t batch = atoll(argv[3]);
    fu_set_threads(0);
    fu_graph *g = fu_graph_new();
    fu_tensor *x = NULL;
    fu_dlib_resnet *dlib = NULL;
    fu_tfjs_net *net = NULL;
    fu_tensor *s = build(g, argv[1], argv[2], batch, backward, &x, &dlib, &net);
    if (!s) {
        fprintf(stderr, "bench_faces: %s\n", fu_last_error());
        return 3;
    }
    double times[15];
    int n = 0;
    double start = 0;
    for (int rep = -1; rep < 0 || more_runs(n, now_ms() - start); rep++) {
        double t0 = now_ms();
        if (fu_graph_forward(g) || (backward && fu_graph_backward(g, s, NULL))) {
            fprintf(stderr, "bench_faces: %s\n", fu_last_error());
            return 3;
        }
        if (rep >= 0) times[n++] = now_ms() - t0;
        else start = now_ms();
    }
    qsort(times, (size_t)n, sizeof *times, cmp_double);
    const char *env = getenv("FACEUP_THREADS");
    printf("%s|%lld|%s|%s|%.2f\n", argv[2], (long long)batch, env ? env : "all", argv[4], times[n / 2]);
    fu_graph_free(g);
    fu_tensor_free(x);
    fu_dlib_resnet_free(dlib);
    fu_tfjs_net_free(net);
    return 0;
}
