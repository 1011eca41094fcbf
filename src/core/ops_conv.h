/* Convolutions and pooling on NCHW tensors (ops_conv.c, ops_pool.c), through oneDNN. */
#ifndef FU_OPS_CONV_H
#define FU_OPS_CONV_H
#include "graph.h"

typedef struct fu_conv_params {
    int stride_h, stride_w;          /* 0 means 1 */
    int dilation_h, dilation_w;      /* 0 means 1 (no dilation) */
    int pad_top, pad_bottom, pad_left, pad_right;
    int groups;                      /* 0 means 1; = C_in for depthwise */
    int output_pad_h, output_pad_w;  /* conv_transpose2d only */
} fu_conv_params;

/* TF-style SAME padding for an input of size in: fills pad_before/pad_after (extra on after). */
void fu_same_padding(int64_t in, int k, int stride, int dilation, int *pad_before, int *pad_after);

/* x [N,Cin,H,W], w [Cout, Cin/groups, kh, kw], b [Cout] or NULL. */
fu_tensor *fu_conv2d(fu_graph *g, fu_tensor *x, fu_tensor *w, fu_tensor *b, const fu_conv_params *p);
/* PyTorch ConvTranspose2d: w [Cin, Cout/groups, kh, kw]; out = (H-1)*s - pt - pb + d*(k-1) + op + 1. */
fu_tensor *fu_conv_transpose2d(fu_graph *g, fu_tensor *x, fu_tensor *w, fu_tensor *b, const fu_conv_params *p);

typedef struct fu_pool_params {
    int kernel_h, kernel_w, stride_h, stride_w;
    int pad_top, pad_bottom, pad_left, pad_right;
    int count_include_pad;           /* avg pool: divide by the full window (1) or valid cells (0) */
} fu_pool_params;
fu_tensor *fu_max_pool2d(fu_graph *g, fu_tensor *x, const fu_pool_params *p);
fu_tensor *fu_avg_pool2d(fu_graph *g, fu_tensor *x, const fu_pool_params *p);

#endif
