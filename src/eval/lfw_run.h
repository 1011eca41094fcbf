/* `faceup eval lfw`: LFW verification through the whole face pipeline (face/pipeline.h).
 *
 * Every image named by the (possibly subsetted) pairs is embedded once: detection, landmarks,
 * the network's crop, the network, in batches, with the vectors cached by file content
 * (data/embed_cache.h, tag "<model>/<crop>"), so a second run skips the networks.
 *
 * Scores (higher = more alike), as metrics:
 *   neg-euclidean    -|a - b| of the raw descriptors (dlib's own criterion: same when < 0.6)
 *   cosine           cosine of the raw descriptors
 *   cosine-centered  cosine after subtracting the mean descriptor; for the pairs of fold k the
 *                    mean is over the images of the other folds (LFW's folds are disjoint in
 *                    people), so nothing of the test fold leaks into its scores
 * An image where no face is found makes its pairs score below every other pair (they are
 * called "different"); the count is reported. */
#ifndef FU_EVAL_LFW_RUN_H
#define FU_EVAL_LFW_RUN_H
#include "faceup.h"
#include "data/lfw.h"
#include "face/pipeline.h"

typedef enum { FU_LFW_NEG_EUCLIDEAN, FU_LFW_COSINE, FU_LFW_COSINE_CENTERED, FU_LFW_N_METRICS } fu_lfw_metric;

const char *fu_lfw_metric_name(fu_lfw_metric m);
/* Name -> metric; -1 if unknown. */
int fu_lfw_metric_parse(const char *name);

/* The first m same and m different pairs of every fold, m = max(1, max_pairs / (2 folds)), so
 * the 10-fold protocol still applies; max_pairs <= 0 or >= all keeps everything. Works in
 * place. */
void fu_lfw_subset(fu_lfw_pairs *pairs, int max_pairs);

typedef struct {
    int n_images, dim;
    char **paths;           /* unique image files */
    float *vectors;         /* n_images x dim */
    int *found;             /* 1 when the image's face was found */
    int *pair_image;        /* 2 per pair: indices into paths */
    int *image_fold;        /* fold of the first pair naming the image */
    int n_missing;          /* images without a face */
    int n_cached;           /* vectors that came from the cache */
} fu_lfw_embeddings;

typedef struct {
    const char *cache_path;              /* NULL: no cache */
    int batch;                           /* faces per network call */
    fu_progress_fn progress;        /* may be NULL */
    void *progress_ctx;
    int quiet;                           /* no per-image warnings on stderr */
} fu_lfw_embed_opts;

/* Embeds the images of pairs (under dir) with net. FU_OK or an error with a message (a
 * missing image file is an error: the data set is incomplete). */
int fu_lfw_embed(const char *dir, const fu_lfw_pairs *pairs, fu_face_finder *finder, fu_face_net *net,
                 const fu_lfw_embed_opts *opts, fu_lfw_embeddings *out);
void fu_lfw_embeddings_free(fu_lfw_embeddings *e);

/* Scores of every pair under metric (see above). FU_OK or FU_E_INTERNAL. */
int fu_lfw_scores(const fu_lfw_embeddings *e, const fu_lfw_pairs *pairs, fu_lfw_metric metric, float *scores);

#endif
