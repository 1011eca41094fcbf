/* dlib's ResNet face descriptor (dlib_face_recognition_resnet_model_v1, 99.38% on LFW), with
 * the weights face-api ships (model/face_recognition_model-weights_manifest.json + .bin of
 * @vladmandic/face-api 1.7.15; tools/fetch-models.sh). The file holds weights only; the network
 * is defined here, layer by layer, with the engine's ops, so it is differentiable with respect
 * to its input and (optionally) to its weights.
 *
 * Input: a batch of aligned face chips [N, 3, 150, 150], NCHW, RGB, values in [0, 1] (the
 * engine's image convention; face-api feeds 0..255 and divides by 255 after subtracting the
 * mean, which is the same map). Output: [N, 128] descriptors, not normalised (dlib compares
 * them with the Euclidean distance, 0.6 being its same-person threshold).
 *
 * Architecture (29 convolutions; "conv" = conv + bias, then a per-channel scale layer
 * y = x * weights + biases, which is dlib's affine layer standing in for batch norm):
 *   x - mean_rgb/255 (mean RGB 122.782, 117.001, 104.298 on the 0..255 scale)
 *   conv32_down: conv 7x7/2 valid, relu            150 -> 72
 *   max pool 3x3/2 valid                           72 -> 35
 *   conv32_1..3: residual                          35, 32 channels
 *   conv64_down, conv64_1..3                       17, 64
 *   conv128_down, conv128_1..2                     8, 128
 *   conv256_down, conv256_1..2, conv256_down_out   4 -> 2, 256
 *   mean over H, W; matmul fc [256, 128]
 * residual:      relu(x + conv2(relu(conv1(x))))         (3x3 'same' convolutions)
 * residual down: relu(avgpool2x2/2(x) + conv2(relu(conv1_3x3/2_valid(x)))), where the
 *   convolution branch is zero-padded at the bottom/right when pooling gives a bigger map
 *   (8 -> 3 vs 4, 4 -> 1 vs 2) and the pooled branch is zero-padded in channels when conv1
 *   doubles them. */
#ifndef FU_DLIB_RESNET_H
#define FU_DLIB_RESNET_H
#include "core/graph.h"

#define FU_DLIB_RESNET_SIZE 150
#define FU_DLIB_RESNET_DIM 128
/* Manifest path inside the model cache ($FACEUP_MODELS, default ~/.cache/faceup/models). */
#define FU_DLIB_RESNET_MANIFEST "face-api-1.7.15/model/face_recognition_model-weights_manifest.json"

typedef struct fu_dlib_resnet fu_dlib_resnet;

/* Reads the weights manifest and its shards (uint8-quantised weights are dequantised to
 * float32). NULL with a one-line message naming the file, or the tensor that is missing or
 * has the wrong shape. */
fu_dlib_resnet *fu_dlib_resnet_load(const char *manifest_path);
void fu_dlib_resnet_free(fu_dlib_resnet *net);
/* The same network with zero weights (named as the manifest names them), for weights read from
 * elsewhere (face/face_extractor.h's file). NULL with a message when out of memory. */
fu_dlib_resnet *fu_dlib_resnet_alloc(void);

/* Weights as leaf tensors (convolution filters in OIHW, per-channel vectors as [C,1,1], fc as
 * [256,128]), named as in the manifest: for fine-tuning, mark them trainable and give them to
 * an optimiser. */
int fu_dlib_resnet_n_params(const fu_dlib_resnet *net);
fu_tensor *fu_dlib_resnet_param(fu_dlib_resnet *net, int i);
/* Marks every weight trainable (gradients accumulate in them) or frozen. FU_OK or an error. */
int fu_dlib_resnet_requires_grad(fu_dlib_resnet *net, int on);

/* Adds the network to g: x [N, 3, 150, 150] (see above) -> [N, 128]. NULL with a message on
 * a wrong input shape. */
fu_tensor *fu_dlib_resnet_forward(fu_dlib_resnet *net, fu_graph *g, fu_tensor *x);

#endif
