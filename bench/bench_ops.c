/* Operator benchmark: times the engine's real ops (sgemm, and conv2d / conv_transpose2d inside a
 * graph: fu_graph_forward for forward, fu_graph_backward for input + weight gradients).
 *
 *   bench_ops --list    prints the cases, one per line, for bench/torch_ops.py to run the same ones
 *   bench_ops [I]       runs them (or only case number I, from 0) with FACEUP_THREADS threads; one
 *                       line per case: "name|shape|threads|median ms|GFLOP/s"
 * Each case: one untimed warm-up run, then repetitions until ~0.4 s or 15 runs (at least 3);
 * the median is reported. */
#include "core/ops.h"
#include "core/rng.h"
#include "faceup.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* kind: sgemm (M = N = K = c), conv / convt forward or backward.
 * conv: x [n, c, h, w], weight [o, c/groups, k, k]; convt: x [n, c, h, w], weight [c, o/groups, k, k]. */
typedef struct {
    const char *name;
    int n, c, h, w, o, k, stride, pad, groups;
} bench_case;

static const bench_case cases[] = {
    {"sgemm", 0, 1024, 0, 0, 0, 0, 0, 0, 0},
    {"sgemm", 0, 2048, 0, 0, 0, 0, 0, 0, 0},
    {"conv_fwd", 8, 64, 56, 56, 64, 3, 1, 1, 1},       /* ResNet stage 1 */
    {"conv_bwd", 8, 64, 56, 56, 64, 3, 1, 1, 1},
    {"conv_fwd", 8, 128, 28, 28, 128, 3, 1, 1, 1},     /* ResNet stage 2 */
    {"conv_bwd", 8, 128, 28, 28, 128, 3, 1, 1, 1},
    {"conv_fwd", 1, 512, 32, 32, 512, 3, 1, 1, 1},     /* StyleGAN 32x32 block */
    {"conv_bwd", 1, 512, 32, 32, 512, 3, 1, 1, 1},
    {"conv_fwd", 1, 32, 256, 256, 32, 3, 1, 1, 1},     /* StyleGAN 256x256 block */
    {"conv_bwd", 1, 32, 256, 256, 32, 3, 1, 1, 1},
    {"conv_fwd", 8, 128, 56, 56, 128, 3, 1, 1, 128},   /* depthwise */
    {"conv_bwd", 8, 128, 56, 56, 128, 3, 1, 1, 128},
    {"convt_fwd", 1, 512, 32, 32, 256, 3, 2, 0, 1},    /* StyleGAN fused upsampling conv */
    {"convt_bwd", 1, 512, 32, 32, 256, 3, 2, 0, 1},
};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int is_transposed(const bench_case *b) { return strncmp(b->name, "convt", 5) == 0; }
static int is_backward(const bench_case *b) { return strstr(b->name, "_bwd") != NULL; }

static int64_t out_size(const bench_case *b, int64_t in) {
    return is_transposed(b) ? (in - 1) * b->stride - 2 * b->pad + b->k : (in + 2 * b->pad - b->k) / b->stride + 1;
}

/* Multiply-adds x 2 of the forward; backward (input grad + weight grad) is twice that. */
static double case_flops(const bench_case *b) {
    if (!strcmp(b->name, "sgemm")) return 2.0 * b->c * b->c * b->c;
    int64_t pix = is_transposed(b) ? (int64_t)b->h * b->w : out_size(b, b->h) * out_size(b, b->w);
    int64_t chans_out = is_transposed(b) ? b->c : b->o, chans_in = is_transposed(b) ? b->o : b->c;
    double f = 2.0 * b->n * chans_out * pix * (double)(chans_in / b->groups) * b->k * b->k;
    return is_backward(b) ? 2 * f : f;
}

static void shape_str(const bench_case *b, char *buf, size_t n) {
    if (!strcmp(b->name, "sgemm")) snprintf(buf, n, "%dx%dx%d", b->c, b->c, b->c);
    else snprintf(buf, n, "n%d_%d->%d_k%d_s%d_g%d_%dx%d", b->n, b->c, b->o, b->k, b->stride, b->groups, b->h, b->w);
}

static fu_tensor *random_tensor(fu_rng *r, int ndim, int64_t a, int64_t b, int64_t c, int64_t d) {
    fu_tensor *t = fu_tensor_new(ndim, (int64_t[]){a, b, c, d});
    if (t) fu_rng_fill_normal(r, t->data, t->numel, 0, 1);
    return t;
}

/* One case under measurement: run() performs one timed unit of work. */
typedef struct {
    const bench_case *b;
    fu_graph *g;
    fu_tensor *x, *w, *y, *a, *c;
    float *seed;
} bench_state;

static int run_once(bench_state *s) {
    if (!strcmp(s->b->name, "sgemm"))
        return fu_sgemm('n', 'n', s->b->c, s->b->c, s->b->c, 1, s->a->data, s->b->c, s->x->data, s->b->c, 0, s->c->data, s->b->c);
    if (is_backward(s->b)) return fu_graph_backward(s->g, s->y, s->seed);
    return fu_graph_forward(s->g);
}

static int setup(bench_state *s, const bench_case *b, fu_rng *r) {
    memset(s, 0, sizeof *s);
    s->b = b;
    if (!strcmp(b->name, "sgemm")) {
        s->a = random_tensor(r, 2, b->c, b->c, 1, 1);
        s->x = random_tensor(r, 2, b->c, b->c, 1, 1);
        s->c = random_tensor(r, 2, b->c, b->c, 1, 1);
        return s->a && s->x && s->c ? FU_OK : FU_E_INTERNAL;
    }
    fu_conv_params p = {.stride_h = b->stride, .stride_w = b->stride, .groups = b->groups,
                        .pad_top = b->pad, .pad_bottom = b->pad, .pad_left = b->pad, .pad_right = b->pad};
    s->x = random_tensor(r, 4, b->n, b->c, b->h, b->w);
    s->w = is_transposed(b) ? random_tensor(r, 4, b->c, b->o / b->groups, b->k, b->k)
                            : random_tensor(r, 4, b->o, b->c / b->groups, b->k, b->k);
    if (!s->x || !s->w) return FU_E_INTERNAL;
    if (is_backward(b)) {
        fu_tensor_requires_grad(s->x, 1);
        fu_tensor_requires_grad(s->w, 1);
    }
    s->g = fu_graph_new();
    s->y = is_transposed(b) ? fu_conv_transpose2d(s->g, s->x, s->w, NULL, &p) : fu_conv2d(s->g, s->x, s->w, NULL, &p);
    if (!s->y) return FU_E_INTERNAL;
    s->seed = malloc((size_t)s->y->numel * sizeof(float));
    if (!s->seed) return FU_E_INTERNAL;
    fu_rng_fill_normal(r, s->seed, s->y->numel, 0, 1);
    return FU_OK;
}

static void teardown(bench_state *s) {
    fu_graph_free(s->g);
    fu_tensor_free(s->x); fu_tensor_free(s->w); fu_tensor_free(s->a); fu_tensor_free(s->c);
    free(s->seed);
}

static int measure(const bench_case *b, fu_rng *r, double *median_ms) {
    bench_state s;
    int rc = setup(&s, b, r);
    if (rc == FU_OK) rc = run_once(&s);  /* warm-up (the graph's first forward already ran in setup) */
    double t[15];
    int reps = 0;
    for (double start = now_s(); rc == FU_OK && reps < 15 && (reps < 3 || now_s() - start < 0.4); reps++) {
        double t0 = now_s();
        rc = run_once(&s);
        t[reps] = (now_s() - t0) * 1e3;
    }
    teardown(&s);
    if (rc != FU_OK) return rc;
    qsort(t, (size_t)reps, sizeof t[0], cmp_double);
    *median_ms = reps % 2 ? t[reps / 2] : 0.5 * (t[reps / 2 - 1] + t[reps / 2]);
    return FU_OK;
}

int main(int argc, char **argv) {
    int list = argc > 1 && !strcmp(argv[1], "--list");
    int only = argc > 1 && !list ? atoi(argv[1]) : -1;
    fu_set_threads(0);
    fu_rng r;
    fu_rng_seed(&r, 1);
    for (int i = 0; i < N_CASES; i++) {
        const bench_case *b = &cases[i];
        char shape[96];
        shape_str(b, shape, sizeof shape);
        if (list) {
            printf("%s %s %d %d %d %d %d %d %d %d %d %.6g\n", b->name, shape, b->n, b->c, b->h, b->w, b->o, b->k, b->stride,
                   b->pad, b->groups, case_flops(b));
            continue;
        }
        if (only >= 0 && i != only) continue;
        double ms;
        if (measure(b, &r, &ms) != FU_OK) {
            fprintf(stderr, "bench_ops: %s %s failed: %s\n", b->name, shape, fu_last_error());
            return 1;
        }
        printf("%s|%s|%d|%.3f|%.1f\n", b->name, shape, fu_get_threads(), ms, case_flops(b) / (ms * 1e6));
        fflush(stdout);
    }
    return 0;
}
