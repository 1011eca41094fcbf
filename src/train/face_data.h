/* Labelled face images for training a feature extractor, from either
 *   - a folder per identity: ROOT/<identity>/<image>.{jpg,jpeg,png} (identities numbered in the
 *     byte order of their folder names, images in name order; hidden entries skipped), or
 *   - an MXNet RecordIO pack ROOT.rec + ROOT.idx (io/recordio.h) as InsightFace ships MS1M: with
 *     the header record 0 the images are keys 1 .. a-1 and there are b - a identities; without
 *     it every record is an image and the identity count is the largest label + 1 (read once at
 *     open). Image labels are the IRHeader label (the first extra label when flag > 0). */
#ifndef FU_TRAIN_FACE_DATA_H
#define FU_TRAIN_FACE_DATA_H
#include <stdint.h>
#include "io/recordio.h"

/* Refuse data sets beyond these counts (MS1M-RetinaFace: 5.2M images, 93K identities). */
#define FU_FACE_DATA_MAX_IMAGES ((int64_t)1 << 31)
#define FU_FACE_DATA_MAX_IDS (1 << 24)

typedef struct fu_face_data {
    char *label;           /* the path, for messages */
    int64_t n;             /* images */
    int n_ids;
    char **paths;          /* folder layout: image files and their labels */
    int *labels;
    fu_recordio *rec;      /* RecordIO: the index entry of each image */
    int64_t *entries;
} fu_face_data;

/* A directory opens as the folder layout, anything else as ROOT.rec (+ ROOT.idx). NULL with a
 * message (FU_E_INPUT) on a missing, empty or malformed data set. */
fu_face_data *fu_face_data_open(const char *path);
void fu_face_data_free(fu_face_data *d);

/* Image i as 3 x size x size floats (CHW, RGB, (v - 0.5) / 0.5) into dst, resized bilinearly
 * when its size differs, mirrored left-right when flip; its identity into *label. */
int fu_face_data_load(const fu_face_data *d, int64_t i, int size, int flip, float *dst, int *label);

#endif
