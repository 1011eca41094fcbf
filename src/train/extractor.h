/* Training an IR-SE feature extractor with ArcFace (the seed paper's identity network):
 * embedding = IR-SE(image), logits = fu_arcface_logits(embedding, W, labels, s, m) with a
 * classifier W [n_ids, E] (normalised inside the op), loss = cross entropy, SGD with momentum
 * and L2 weight decay on every parameter (InsightFace's recipe: lr 0.1, momentum 0.9, wd 5e-4,
 * s 64, m 0.5). The learning rate is constant.
 *
 * Data order: epoch e visits the images in a permutation drawn from a generator seeded with
 * (seed, e); each sample is mirrored left-right with probability 1/2, drawn from the training
 * generator (state in the checkpoint). Step t covers the global samples t*B .. t*B+B-1.
 *
 * The global batch B is split into `shards` equal shards, each a separate forward (own batch
 * statistics) whose loss is scaled by 1/shards; their gradients add up to the mean over B.
 * Data parallel (train/dist.h): rank r of W computes shards r*shards/W .. (r+1)*shards/W - 1, so
 * W ranks and one process with the same `shards` compute the same gradient up to float
 * summation order. Dropout masks derive from (seed, step, shard), identical on any rank layout.
 *
 * Checkpoint (safetensors, written atomically by rank 0): every IR-SE tensor under its model name
 * (so fu_irse_load reads a checkpoint as a model), "head.weight", "optim.state" (momentum
 * buffers), and metadata: irse_config, the training config, step, samples seen and the
 * generator state. Resuming restores all of it: K steps + resume + K steps equals 2K steps bit
 * for bit (same thread count). */
#ifndef FU_TRAIN_EXTRACTOR_H
#define FU_TRAIN_EXTRACTOR_H
#include <stdint.h>
#include "core/optim.h"
#include "face/irse.h"
#include "train/dist.h"

typedef struct fu_extractor_config {
    fu_irse_config arch;
    const char *data;            /* folder per identity or .rec (train/face_data.h) */
    const char *checkpoint;      /* written every checkpoint_every steps and at the end; may be NULL */
    const char *resume;          /* checkpoint to continue from, or NULL */
    int64_t steps;               /* total steps (a resumed run continues up to this count) */
    int batch;                   /* global batch */
    int shards;                  /* 0 = one per rank */
    int checkpoint_every;        /* 0 = only at the end */
    float lr, momentum, weight_decay, scale, margin;
    uint64_t seed;
} fu_extractor_config;

/* InsightFace defaults on the given architecture (batch 128, lr 0.1, ...). */
fu_extractor_config fu_extractor_defaults(const fu_irse_config *arch);

typedef struct fu_extractor_result {
    int64_t steps_done;          /* steps run by this call */
    double first_loss, last_loss;  /* global-batch mean loss of the first and last step run */
} fu_extractor_result;

int fu_extractor_train(const fu_extractor_config *cfg, const fu_dist *dist, fu_train_step_fn progress,
                       void *ctx, fu_extractor_result *res);

#endif
