/* Reader for dlib's serialised shape_predictor (e.g. shape_predictor_68_face_landmarks.dat).
 *
 * dlib's binary serialisation, as this reader understands it:
 *   integer   one control byte, then that many bytes of magnitude, little-endian. Control low
 *             nibble = byte count (1..8, never 0); bit 0x80 = negative (signed types only).
 *   float     two integers: mantissa (int64) and exponent (int16); value = mantissa * 2^exponent.
 *             Exponents 32000/32001/32002 mean +inf/-inf/NaN (refused here: a model never has
 *             them). dlib's older ASCII float format (first byte has a bit of 0x70 set) is refused.
 *   vector    size (unsigned integer), then the elements.
 *   matrix    rows, cols (signed; the current format writes them negated), then the elements
 *             row by row. A column vector has cols = 1.
 *   point     x, y (floats).
 * A shape_predictor is: version (int, must be 1), initial_shape (column matrix of 2*parts
 * floats, x0 y0 x1 y1 ... normalised to the face box), forests (vector over cascades of
 * vector of trees; a tree is a vector of splits {idx1, idx2 (unsigned), thresh (float)} and a
 * vector of leaves, each a column matrix of 2*parts floats), anchor_idx (vector over cascades
 * of vector of unsigned part indices) and deltas (vector over cascades of vector of points).
 *
 * Validation: every count is checked against the bytes left (each element needs at least
 * two bytes) before anything is allocated, trees must be complete (leaves = splits + 1, a
 * power of two), every index in range, every value finite. A truncated or malformed file
 * gives FU_E_INPUT with a message naming the file and the field. */
#ifndef FU_DLIB_DAT_H
#define FU_DLIB_DAT_H
#include <stddef.h>
#include <stdint.h>

typedef struct { uint32_t idx1, idx2; float thresh; } fu_dlib_split;

typedef struct {
    int64_t split_begin, n_splits;    /* into splits[] */
    int64_t leaf_begin;               /* into leaves[], in leaf vectors (n_splits + 1 of them) */
} fu_dlib_tree;

typedef struct {
    int64_t tree_begin, n_trees;      /* into trees[] */
    int64_t pixel_begin, n_pixels;    /* into anchor_idx[] and deltas[] */
} fu_dlib_cascade;

typedef struct {
    int n_parts;
    float *initial_shape;             /* 2 * n_parts: x, y per part, box-normalised */
    int n_cascades;
    fu_dlib_cascade *cascades;
    fu_dlib_tree *trees;
    fu_dlib_split *splits;
    float *leaves;                    /* 2 * n_parts floats per leaf */
    uint32_t *anchor_idx;             /* feature pixel i sits at part anchor_idx[i] ... */
    float *deltas;                    /* ... plus (deltas[2i], deltas[2i+1]) in mean-shape units */
    int64_t total_trees, total_splits, total_leaves, total_pixels;
} fu_shape_predictor;

/* Parses a serialised shape_predictor from memory; label names the source in messages.
 * NULL with FU_E_INPUT (malformed) or FU_E_INTERNAL (out of memory). */
fu_shape_predictor *fu_dlib_parse_shape_predictor(const void *data, size_t size, const char *label);
/* Reads and parses a file (at most 1 GiB). */
fu_shape_predictor *fu_dlib_load_shape_predictor(const char *path);
void fu_shape_predictor_free(fu_shape_predictor *sp);

/* Serialises sp in the same format (used for tests and fuzz seeds): a malloc'ed buffer in
 * *data (free with free()), its length in *size. FU_OK or FU_E_INTERNAL (out of memory). */
int fu_dlib_serialize_shape_predictor(const fu_shape_predictor *sp, unsigned char **data, size_t *size);

#endif
