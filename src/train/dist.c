/* Data-parallel helpers (see dist.h). */
#include "train/dist.h"
#include "core/error.h"
#include "faceup.h"
#include <stdlib.h>
#include <string.h>
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

int fu_dist_gather_text(const fu_dist *d, const char *text, char **all) {
    *all = NULL;
    const char *send = strlen(text) < (size_t)1 << 30 ? text : "";   /* an empty text tells rank 0 it was too long */
    int len = (int)strlen(send) + 1, *lens = NULL, *at = NULL, total = 0, rc = send == text ? FU_OK : FU_E_INTERNAL;
    if (d->rank == 0 && (!(lens = calloc((size_t)d->size, sizeof *lens)) || !(at = calloc((size_t)d->size, sizeof *at))))
        rc = FU_E_INTERNAL;   /* still joins the gathers below, so the other ranks do not hang */
    if (MPI_Gather(&len, 1, MPI_INT, lens, 1, MPI_INT, 0, MPI_COMM_WORLD) != MPI_SUCCESS) rc = FU_E_INTERNAL;
    for (int r = 0; lens && at && r < d->size; r++) at[r] = total, total += lens[r];
    if (d->rank == 0 && rc == FU_OK && !(*all = malloc((size_t)total))) rc = FU_E_INTERNAL;
    if (MPI_Gatherv(send, len, MPI_CHAR, *all, lens, at, MPI_CHAR, 0, MPI_COMM_WORLD) != MPI_SUCCESS) rc = FU_E_INTERNAL;
    free(lens);
    free(at);
    if (rc == FU_OK) return FU_OK;
    free(*all);
    *all = NULL;
    return fu_fail(FU_E_INTERNAL, "gathering the ranks' results failed (a text over 1 GB, out of memory or MPI_Gatherv)");
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

int fu_dist_gather_text(const fu_dist *d, const char *text, char **all) {
    (void)d;
    *all = strdup(text);
    return *all ? FU_OK : fu_fail(FU_E_INTERNAL, "out of memory");
}

int fu_dist_agree(const fu_dist *d, int status) {
    (void)d;
    return status;
}
#endif
