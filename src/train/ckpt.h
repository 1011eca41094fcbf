/* What the generator trainers (train_generator.h, train_sharp.h) share about their run files:
 * file names next to the model, the per-step loss history, checkpoint metadata, and the cells of
 * their sample sheets. */
#ifndef FU_TRAIN_CKPT_H
#define FU_TRAIN_CKPT_H
#include <stdint.h>
#include "core/tensor.h"
#include "data/faces.h"
#include "io/safetensors.h"

/* OUT without ".safetensors", plus suffix (malloc'ed; NULL when out of memory). */
char *fu_ckpt_path(const char *out, const char *suffix);

/* Rows of `cols` floats, one per step (the first column the step). */
typedef struct fu_history {
    int cols;
    float *rows;
    int64_t n, cap;
} fu_history;

int fu_history_push(fu_history *h, const float *row);
void fu_history_free(fu_history *h);
/* A [max(n,1), cols] tensor of the rows (NaN when empty), for a checkpoint; NULL on failure. */
fu_tensor *fu_history_tensor(const fu_history *h);
/* Appends the checkpoint's `name` rows ([n, cols]; NaN-step rows skipped). */
int fu_history_restore(fu_history *h, const fu_safetensors *st, const char *name);
/* Binned means (at most `points` bins) of column col into x (the bin's last step) and y;
 * returns the bin count. x and y hold at least `points` floats. */
int64_t fu_history_binned(const fu_history *h, int col, int64_t points, float *x, float *y);

/* Checkpoint metadata: integers in [lo, hi] and finite floats, FU_E_INPUT naming the key when
 * missing or invalid. */
int fu_ckpt_meta_i64(const fu_safetensors *st, const char *key, int64_t lo, int64_t hi, int64_t *out);
int fu_ckpt_meta_float(const fu_safetensors *st, const char *key, float *out);
/* Tensor `name` of exactly numel values into dst (float32). */
int fu_ckpt_read(const fu_safetensors *st, const char *name, float *dst, int64_t numel);

/* Copies image k of imgs ([N,3,S,S] in [-1,1]) into grid ([1,3,H,W] in [0,1]) at cell
 * (row, col) of S x S cells. */
void fu_grid_place(fu_tensor *grid, const fu_tensor *imgs, int64_t k, int64_t row, int64_t col);

/* n faces spread evenly over the set's val split (its train split when there is none) into x
 * ([n,3,S,S] in [-1,1]): the real faces of a sample sheet. */
int fu_sheet_faces(const fu_faces *set, int64_t n, fu_tensor *x);

#endif
