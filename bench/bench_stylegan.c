/* StyleGAN benchmark, faceup side: forward + backward (gradients of sum(image * R) with respect to
 * the per-layer latents and every noise map) of a generator loaded from a weight file that
 * bench/torch_stylegan.py wrote, on the inputs it wrote, timed and checked against its output.
 *
 *   bench_stylegan v1|v2 WEIGHTS INPUTS [TORCH_OUT]
 *
 * WEIGHTS: PULSE G_synthesis (v1) or rosinality checkpoint (v2) state_dict (.pt or .safetensors).
 * INPUTS: "latents" [1,L,D], "noise_0".., "R" [1,3,S,S]. TORCH_OUT (optional): the PyTorch peer's
 * "image", "grad_latents", "grad_noise_i" for the same inputs.
 * The graph is built once (the first forward, then a backward: the warm-up) and re-run
 * BENCH_REPS times (default 3) with fu_graph_forward + fu_graph_backward, as a latent search
 * runs it (median reported; the last run's gradients are compared); threads from FACEUP_THREADS. Prints one line
 *   v|size|threads|median ms|peak RSS MiB|image diff|gradient diff|gradient L2 diff
 * where a diff is max|faceup - torch| / max|torch| and the L2 diff |faceup - torch| / |torch|
 * (the worst array for gradients), "nan" without TORCH_OUT. Peak RSS (getrusage ru_maxrss) is
 * taken before TORCH_OUT is read. */
#include "core/error.h"
#include "core/ops.h"
#include "faceup.h"
#include "gen/stylegan1.h"
#include "gen/stylegan2.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define MAX_NOISE 24

typedef struct {
    int v2;
    fu_stylegan1 *m1;
    fu_stylegan2 *m2;
    int n_noise;
    fu_tensor *latents, *noise[MAX_NOISE], *seed;
} bench_net;

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int load_model(bench_net *b, const char *path) {
    fu_weights *w = NULL;
    int rc = fu_weights_open(path, &w);
    if (rc == FU_OK) rc = b->v2 ? fu_sg2_load(w, &b->m2) : fu_sg1_load(w, &b->m1);
    fu_weights_free(w);
    if (rc == FU_OK) b->n_noise = b->v2 ? b->m2->n_noise : b->m1->n_layers;
    return rc;
}

static int load_inputs(bench_net *b, const char *path) {
    fu_weights *w = NULL;
    int rc = fu_weights_open(path, &w);
    if (rc != FU_OK) return rc;
    b->latents = fu_weights_get(w, "latents");
    b->seed = fu_weights_get(w, "R");
    rc = b->latents && b->seed && b->n_noise <= MAX_NOISE ? FU_OK : FU_E_INPUT;
    for (int i = 0; i < b->n_noise && rc == FU_OK; i++) {
        char name[32];
        snprintf(name, sizeof name, "noise_%d", i);
        if (!(b->noise[i] = fu_weights_get(w, name))) rc = FU_E_INPUT;
        else rc = fu_tensor_requires_grad(b->noise[i], 1);
    }
    if (rc == FU_OK) rc = fu_tensor_requires_grad(b->latents, 1);
    fu_weights_free(w);
    return rc;
}

static void zero_input_grads(bench_net *b) {
    fu_tensor_zero_grad(b->latents);
    for (int i = 0; i < b->n_noise; i++) fu_tensor_zero_grad(b->noise[i]);
}

static fu_tensor *build(fu_graph *g, bench_net *b) {
    return b->v2 ? fu_sg2_forward(g, b->m2, b->latents, b->noise, NULL) : fu_sg1_forward(g, b->m1, b->latents, b->noise, NULL);
}

/* max|a - ref| / max|ref| over n values; NAN when ref is missing or its size differs.
 * *l2 = |a - ref| / |ref| (Euclidean norms), which tells isolated outliers (a leaky ReLU input
 * within rounding of 0 taking the other branch) from an error spread over the whole array. */
static double rel_diff(const float *a, const fu_tensor *ref, int64_t n, double *l2) {
    if (!ref || ref->numel != n) return NAN;
    double diff = 0, mag = 0, d2 = 0, r2 = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)a[i] - ref->data[i];
        diff = fmax(diff, fabs(d));
        mag = fmax(mag, fabs((double)ref->data[i]));
        d2 += d * d;
        r2 += (double)ref->data[i] * ref->data[i];
    }
    *l2 = r2 > 0 ? sqrt(d2 / r2) : sqrt(d2);
    return mag > 0 ? diff / mag : diff;
}

/* Differences against the peer's output file: image (max), and over the gradient arrays the
 * worst max-relative and worst L2-relative difference. */
typedef struct { double image, grad_max, grad_l2; } peer_diff;

static int compare(const bench_net *b, const fu_tensor *img, const char *path, peer_diff *d) {
    fu_weights *w = NULL;
    int rc = fu_weights_open(path, &w);
    if (rc != FU_OK) return rc;
    double l2;
    fu_tensor *ref = fu_weights_get(w, "image");
    d->image = rel_diff(img->data, ref, img->numel, &l2);
    fu_tensor_free(ref);
    ref = fu_weights_get(w, "grad_latents");
    d->grad_max = rel_diff(b->latents->grad, ref, b->latents->numel, &d->grad_l2);
    fu_tensor_free(ref);
    for (int i = 0; i < b->n_noise; i++) {
        char name[32];
        snprintf(name, sizeof name, "grad_noise_%d", i);
        ref = fu_weights_get(w, name);
        double dm = rel_diff(b->noise[i]->grad, ref, b->noise[i]->numel, &l2);
        d->grad_max = isnan(dm) || dm > d->grad_max ? dm : d->grad_max;
        d->grad_l2 = isnan(l2) || l2 > d->grad_l2 ? l2 : d->grad_l2;
        fu_tensor_free(ref);
    }
    fu_weights_free(w);
    return isnan(d->image) || isnan(d->grad_max) ? fu_fail(FU_E_INPUT, "%s: missing or mis-sized arrays", path) : FU_OK;
}

/* Warm-up (build + backward), then reps timed re-runs; the last one's gradients are kept. */
static int run(bench_net *b, fu_graph *g, int reps, double *median_ms, fu_tensor **img) {
    *img = build(g, b);
    if (!*img) return FU_E_INPUT;
    int rc = fu_graph_backward(g, *img, b->seed->data);
    double t[64];
    for (int r = 0; r < reps && rc == FU_OK; r++) {
        zero_input_grads(b);
        double t0 = now_s();
        rc = fu_graph_forward(g);
        if (rc == FU_OK) rc = fu_graph_backward(g, *img, b->seed->data);
        t[r] = (now_s() - t0) * 1e3;
    }
    if (rc != FU_OK) return rc;
    qsort(t, (size_t)reps, sizeof t[0], cmp_double);
    *median_ms = reps % 2 ? t[reps / 2] : 0.5 * (t[reps / 2 - 1] + t[reps / 2]);
    return rc;
}

static void free_net(bench_net *b) {
    fu_sg1_free(b->m1);
    fu_sg2_free(b->m2);
    fu_tensor_free(b->latents);
    fu_tensor_free(b->seed);
    for (int i = 0; i < MAX_NOISE; i++) fu_tensor_free(b->noise[i]);
}

int main(int argc, char **argv) {
    if (argc < 4 || argc > 5 || (strcmp(argv[1], "v1") && strcmp(argv[1], "v2"))) {
        fprintf(stderr, "usage: bench_stylegan v1|v2 WEIGHTS INPUTS [TORCH_OUT]\n");
        return 2;
    }
    fu_set_threads(0);
    const char *env = getenv("BENCH_REPS");
    int reps = env ? atoi(env) : 3;
    if (reps < 1 || reps > 64) reps = 3;
    bench_net b = {.v2 = argv[1][1] == '2'};
    fu_graph *g = fu_graph_new();
    fu_tensor *img = NULL;
    double ms = 0;
    peer_diff d = {NAN, NAN, NAN};
    int rc = g ? load_model(&b, argv[2]) : FU_E_INTERNAL;
    if (rc == FU_OK) rc = load_inputs(&b, argv[3]);
    if (rc == FU_OK) rc = run(&b, g, reps, &ms, &img);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    if (rc == FU_OK && argc == 5) rc = compare(&b, img, argv[4], &d);
    if (rc == FU_OK) {
        int size = b.v2 ? b.m2->size : b.m1->resolution;
        printf("%s|%d|%d|%.1f|%.0f|%.3g|%.3g|%.3g\n", argv[1], size, fu_get_threads(), ms, ru.ru_maxrss / 1024.0, d.image,
               d.grad_max, d.grad_l2);
        fprintf(stderr, "bench_stylegan %s %d: graph arena %.0f MiB\n", argv[1], size, g->arena.reserved / 1048576.0);
    } else {
        fprintf(stderr, "bench_stylegan: %s\n", fu_last_error());
    }
    fu_graph_free(g);
    free_net(&b);
    return rc == FU_OK ? 0 : rc == FU_E_INPUT ? 2 : 3;
}
