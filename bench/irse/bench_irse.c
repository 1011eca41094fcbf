/* IR-SE50 training-step benchmark, faceup side (bench/irse/run.sh runs it against
 * bench/irse/irse_torch.py): batch 8 of 112x112 inputs, forward, ArcFace logits (s 64, m 0.5)
 * over N_IDS classes, cross entropy, backward, SGD step (momentum 0.9, weight decay 5e-4) over
 * every parameter and the classifier. One untimed warm-up step, then STEPS timed steps; prints
 * "params|median ms" (the parameter count lets the script check both sides built the same net).
 *
 * Usage: bench_irse [steps]   (threads from FACEUP_THREADS) */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "core/error.h"
#include "core/ops.h"
#include "core/optim.h"
#include "face/irse.h"
#include "faceup.h"

enum { BATCH = 8, N_IDS = 1000 };

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return 1e3 * (double)t.tv_sec + 1e-6 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One full step; the graph is rebuilt each time, as in training. */
static int step(fu_graph *g, const fu_irse *m, fu_tensor *head, fu_optim *opt, const fu_tensor *x, const int *labels) {
    fu_graph_reset(g);
    g->training = 1;
    fu_tensor *in = fu_graph_tensor(g, 4, x->shape);
    if (!in) return fu_last_code();
    fu_tensor_copy_data(in, x);
    fu_tensor *emb = fu_irse_forward(g, m, in);
    fu_tensor *loss = fu_cross_entropy(g, fu_arcface_logits(g, emb, head, labels, 64, 0.5f), labels);
    if (!loss) return fu_last_code();
    fu_optim_zero_grad(opt);
    int rc = fu_graph_backward(g, loss, NULL);
    return rc == FU_OK ? fu_optim_step(opt, 0.1f) : rc;
}

int main(int argc, char **argv) {
    int steps = argc > 1 ? atoi(argv[1]) : 5;
    if (steps < 1 || steps > 1000) { fprintf(stderr, "usage: bench_irse [steps 1..1000]\n"); return 2; }
    fu_set_threads(0);
    fu_irse_config cfg;
    fu_irse_arch("irse50", &cfg);
    fu_rng r;
    fu_rng_seed(&r, 1);
    fu_irse *m = fu_irse_new(&cfg, &r);
    fu_tensor *head = fu_tensor_newv(2, (int64_t)N_IDS, (int64_t)cfg.embedding);
    fu_tensor *x = fu_tensor_newv(4, (int64_t)BATCH, (int64_t)3, (int64_t)cfg.input_size, (int64_t)cfg.input_size);
    fu_tensor **params = m ? malloc(((size_t)m->n_tensors + 1) * sizeof *params) : NULL;
    fu_graph *g = fu_graph_new();
    if (!m || !head || !x || !params || !g || fu_tensor_requires_grad(head, 1) != FU_OK) {
        fprintf(stderr, "bench_irse: %s\n", fu_last_error());
        return 3;
    }
    fu_rng_fill_normal(&r, head->data, head->numel, 0, 0.01f);
    fu_rng_fill_uniform(&r, x->data, x->numel, -1, 1);
    int labels[BATCH];
    for (int i = 0; i < BATCH; i++) labels[i] = (int)fu_rng_below(&r, N_IDS);
    int n = fu_irse_params(m, params);
    int64_t count = 0;
    for (int i = 0; i < n; i++) count += params[i]->numel;
    params[n++] = head;
    fu_optim_config oc = fu_optim_sgd_defaults(0.9f);
    oc.weight_decay = 5e-4f;
    fu_optim *opt = fu_optim_new(&oc, params, n);
    double *ms = malloc((size_t)steps * sizeof *ms);
    int rc = opt && ms ? step(g, m, head, opt, x, labels) : FU_E_INTERNAL;
    for (int i = 0; i < steps && rc == FU_OK; i++) {
        double t0 = now_ms();
        rc = step(g, m, head, opt, x, labels);
        ms[i] = now_ms() - t0;
    }
    if (rc != FU_OK) {
        fprintf(stderr, "bench_irse: %s\n", fu_last_error());
        return 3;
    }
    qsort(ms, (size_t)steps, sizeof *ms, cmp_double);
    printf("%lld|%.1f\n", (long long)count, steps % 2 ? ms[steps / 2] : 0.5 * (ms[steps / 2 - 1] + ms[steps / 2]));
    free(ms);
    fu_optim_free(opt);
    fu_graph_free(g);
    free(params);
    fu_tensor_free(x);
    fu_tensor_free(head);
    fu_irse_free(m);
    return 0;
}
