#include "faceup.h"
#include <omp.h>
#include <stdlib.h>

static int n_threads;

void fu_set_threads(int n) {
    if (n <= 0) {
        const char *env = getenv("FACEUP_THREADS");
        n = env ? atoi(env) : 0;
    }
    if (n <= 0 || n > 1024) n = omp_get_num_procs();
    n_threads = n;
    /* oneDNN built with the OpenMP runtime follows omp_set_num_threads. */
    omp_set_num_threads(n);
}

int fu_get_threads(void) {
    if (!n_threads) fu_set_threads(0);
    return n_threads;
}
