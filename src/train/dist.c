/* Data-parallel helpers (see dist.h). */
#include "train/dist.h"
#include "core/error.h"
#include "faceup.h"
#ifdef FU_MPI
#include <mpi.h>
#endif

#ifdef FU_MPI
int fu_dist_built_with_mpi(void) { return 1; }

int fu_dist_init(int *argc, char ***argv, fu_dist *d) {
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited && MPI_Init(argc, argv) != MPI_SUCCESS) return fu_fail(FU_E_INTERNAL, "MPI_Init failed");
    MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d->size);
    return FU_OK;
}

void fu_dist_finalize(void) {
    int inited = 0, done = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&done);
    if (inited && !done) MPI_Finalize();
}

/* MPI counts are int: large buffers go in chunks. */
#define CHUNK ((int64_t)1 << 30)

int fu_dist_allreduce_sum(const fu_dist *d, float *buf, int64_t n) {
    if (d->size == 1) return FU_OK;
    for (int64_t at = 0; at < n; at += CHUNK) {
        int count = (int)(n - at < CHUNK ? n - at : CHUNK);
        if (MPI_Allreduce(MPI_IN_PLACE, buf + at, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD) != MPI_SUCCESS)
            return fu_fail(FU_E_INTERNAL, "MPI_Allreduce failed");
    }
    return FU_OK;
}

int fu_dist_allreduce_sum_f64(const fu_dist *d, double *buf, int n) {
    if (d->size == 1) return FU_OK;
    if (MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD) != MPI_SUCCESS)
        return fu_fail(FU_E_INTERNAL, "MPI_Allreduce failed");
    return FU_OK;
}

int fu_dist_agree(const fu_dist *d, int status) {
    if (d->size == 1) return status;
    int worst = status;
    if (MPI_Allreduce(&status, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD) != MPI_SUCCESS)
        return fu_fail(FU_E_INTERNAL, "MPI_Allreduce failed");
    if (worst != FU_OK && status == FU_OK) return fu_fail(worst, "stopped because another rank failed (see its message)");
    return worst;
}
#else
int fu_dist_built_with_mpi(void) { return 0; }

int fu_dist_init(int *argc, char ***argv, fu_dist *d) {
    (void)argc;
    (void)argv;
    d->rank = 0;
    d->size = 1;
    return FU_OK;
}

void fu_dist_finalize(void) {}

int fu_dist_allreduce_sum(const fu_dist *d, float *buf, int64_t n) {
    (void)d; (void)buf; (void)n;
    return FU_OK;
}

int fu_dist_allreduce_sum_f64(const fu_dist *d, double *buf, int n) {
    (void)d; (void)buf; (void)n;
    return FU_OK;
}

int fu_dist_agree(const fu_dist *d, int status) {
    (void)d;
    return status;
}
#endif
