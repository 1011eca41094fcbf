/* IR-SE ResNet: the ArcFace feature extractor ("IR-SE50" / "IR-SE100" of InsightFace), a face
 * image [N, 3, S, S] (S = 112 for the real nets, values (x - 0.5) / 0.5) -> embedding [N, E].
 *
 * Layout (the PyTorch InsightFace Backbone, mode 'ir_se'):
 *   input_layer:  conv3x3 (3 -> C0, no bias) + BN + PReLU
 *   body:         4 stages of bottleneck_IR_SE units; stage i has units[i] units and channels[i]
 *                 output channels; the first unit of every stage has stride 2, so the spatial
 *                 size ends at S / 16 (7 for 112).
 *     unit:       res = BN -> conv3x3 (stride 1) -> BN -> PReLU -> conv3x3 (stride) -> BN -> SE
 *                 SE  = x * sigmoid(fc2(relu(fc1(avgpool(x))))), fc1 reduces C to C / reduction,
 *                       both 1x1 convolutions without bias
 *                 out = res + shortcut, shortcut = x subsampled by `stride` (MaxPool2d(1, stride))
 *                       when the channel count is unchanged, else conv1x1 (stride) + BN
 *   output_layer: BN2d -> dropout -> flatten -> linear (C3 * (S/16)^2 -> E) -> BN1d
 *
 * The residual branch follows the brief's and insightface's newer iresnet order, with a BN
 * between the first convolution and the PReLU.
 *
 * Parameters are named tensors with the names of the PyTorch module's state dict
 * ("input_layer.0.weight", "body.3.res_layer.6.fc1.weight", ...; num_batches_tracked is not
 * kept), so fu_irse_save / fu_irse_load round-trip through safetensors. Batch norm follows the
 * graph's mode: g->training uses batch statistics and updates the running ones (momentum 0.1,
 * eps 1e-5 as PyTorch), eval uses the running statistics. */
#ifndef FU_FACE_IRSE_H
#define FU_FACE_IRSE_H
#include <stddef.h>
#include <stdint.h>
#include "core/graph.h"
#include "core/rng.h"

#define FU_IRSE_STAGES 4
#define FU_IRSE_MAX_UNITS 256

typedef struct fu_irse_config {
    int units[FU_IRSE_STAGES];     /* [3,4,14,3] for 50 layers, [3,13,30,3] for 100 */
    int channels[FU_IRSE_STAGES];  /* [64,128,256,512]; the stem has channels[0] */
    int input_size;                /* S, a multiple of 16 (112) */
    int embedding;                 /* E (512) */
    int se_reduction;              /* 16 */
    float dropout;                 /* output layer dropout probability in training */
} fu_irse_config;

/* "irse50" or "irse100" (112x112, 512-d, SE reduction 16, dropout 0), or "irse-tiny" (one unit
 * per stage, 8/16/16/32 channels, 32x32 input, 32-d, SE reduction 4: tests and smoke runs).
 * FU_E_INPUT otherwise. */
int fu_irse_arch(const char *name, fu_irse_config *cfg);
/* FU_OK, or FU_E_INPUT naming the bad field. */
int fu_irse_check_config(const fu_irse_config *cfg);

/* One batch norm: affine parameters and running statistics. */
typedef struct fu_irse_bn { fu_tensor *weight, *bias, *running_mean, *running_var; } fu_irse_bn;

typedef struct fu_irse_unit {
    int in_channels, depth, stride;
    fu_irse_bn bn1, bn2, bn3;
    fu_tensor *conv1, *prelu, *conv2, *se_fc1, *se_fc2;
    fu_tensor *shortcut_conv;      /* NULL when the shortcut is a subsampling */
    fu_irse_bn shortcut_bn;
} fu_irse_unit;

typedef struct fu_irse {
    fu_irse_config cfg;
    fu_tensor *stem_conv, *stem_prelu;
    fu_irse_bn stem_bn;
    int n_units;
    fu_irse_unit *units;
    fu_irse_bn out_bn2d, out_bn1d;
    fu_tensor *fc_weight, *fc_bias;
    /* Every tensor in a fixed order (named); trainable ones have requires_grad set. */
    int n_tensors;
    fu_tensor **tensors;
} fu_irse;

/* Builds a model with initialised weights: convolutions and the linear layer He-normal
 * (std sqrt(2 / fan_in)) from rng, BN weight 1 bias 0, running mean 0 var 1, PReLU 0.25,
 * linear bias 0. NULL with a message on a bad config or out of memory. */
fu_irse *fu_irse_new(const fu_irse_config *cfg, fu_rng *rng);
void fu_irse_free(fu_irse *m);

/* The trainable tensors (in the model's fixed order) into out (capacity m->n_tensors); returns
 * their count. */
int fu_irse_params(const fu_irse *m, fu_tensor **out);
/* Batch-norm running statistics (the non-trainable tensors), same contract. */
int fu_irse_buffers(const fu_irse *m, fu_tensor **out);

/* x [N, 3, S, S] -> [N, E]. Training mode (batch statistics, dropout) when g->training. */
fu_tensor *fu_irse_forward(fu_graph *g, const fu_irse *m, fu_tensor *x);

/* The config as one line, "units=3,4,14,3 channels=64,128,256,512 input=112 embedding=512
 * se=16 dropout=0" (the metadata value fu_irse_save stores under "irse_config"), and back.
 * The parser is strict: every field, in this order, and a valid config. */
void fu_irse_config_format(const fu_irse_config *cfg, char *buf, size_t n);
int fu_irse_config_parse(const char *s, fu_irse_config *cfg);

/* Every tensor plus the config as metadata, atomically. */
int fu_irse_save(const fu_irse *m, const char *path);
/* Reads a file written by fu_irse_save: config from its metadata, then every tensor with its
 * exact shape. NULL with a message naming the file and the problem. */
fu_irse *fu_irse_load(const char *path);
/* Copies every tensor of m from an opened safetensors file, by name (shapes must match). */
struct fu_safetensors;
int fu_irse_load_tensors(fu_irse *m, const struct fu_safetensors *st);

#endif
