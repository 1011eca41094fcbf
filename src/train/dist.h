/* Data-parallel training over MPI (built with `make MPI=1`, which compiles with mpicc and
 * -DFU_MPI); without MPI the same calls describe a single process, so the trainer has one path.
 *
 * Scheme (the trainer, train/extractor.c): every rank draws the same global batch (same seed,
 * same data order, same flips) and computes the gradient of its own shards of it; the gradients
 * are summed with MPI_Allreduce. Each shard's loss is pre-scaled by 1 / (number of shards), so
 * the sum is the mean over the global batch. Every rank then applies the same update to the same
 * weights, so the replicas stay identical without broadcasting weights.
 *
 * Batch norm is per shard (local BN, as most data-parallel training and PyTorch DDP without
 * SyncBatchNorm): statistics come from the shard a rank holds. Running statistics therefore
 * follow each rank's own shards, and rank 0's are the ones checkpointed. */
#ifndef FU_TRAIN_DIST_H
#define FU_TRAIN_DIST_H
#include <stdint.h>

typedef struct fu_dist { int rank, size; } fu_dist;

/* 1 when built with MPI. */
int fu_dist_built_with_mpi(void);
/* Initialises MPI when built with it (rank/size from MPI_COMM_WORLD), else rank 0 of 1.
 * FU_OK or FU_E_INTERNAL. */
int fu_dist_init(int *argc, char ***argv, fu_dist *d);
void fu_dist_finalize(void);
/* In-place sum over all ranks of n floats (a no-op for one process). */
int fu_dist_allreduce_sum(const fu_dist *d, float *buf, int64_t n);
/* Same for doubles (loss bookkeeping). */
int fu_dist_allreduce_sum_f64(const fu_dist *d, double *buf, int n);
/* Gathers one NUL-terminated text per rank on rank 0: there *all (malloc'ed; free it) receives
 * the texts one after another in rank order, each with its NUL; other ranks get NULL. One
 * process: a copy of text. FU_OK or FU_E_INTERNAL. */
int fu_dist_gather_text(const fu_dist *d, const char *text, char **all);
/* Collective error agreement: the largest status over ranks, so every rank stops together. */
int fu_dist_agree(const fu_dist *d, int status);

#endif
