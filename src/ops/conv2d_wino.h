/* conv2d_wino.h — recur's own convolution kernels, one of the two fast paths below the selector (conv2d.c):
 * Winograd forward, backward-data (conv2d_wino.c) and backward-weights (conv2d_wgrad.c) of 3x3, stride-1,
 * pad-1 convolutions on nChw16c activations. They need no oneDNN. */
#ifndef RC_CONV2D_WINO_H
#define RC_CONV2D_WINO_H

#include "ops/ops.h"

/* Weight gradient of a 3x3, stride-1, pad-1 convolution on nChw16c x and dy by Winograd's F(3x3, 2x2) or
 * F(3x3, 4x4) (conv2d_wgrad.c): dw (K, C, 3, 3) += the gradient, for shapes rc_conv2d_wino_ok accepts;
 * _release frees its buffers. */
void rc_conv2d_wgrad_wino(const rc_conv_dims *d, const float *x, const float *dy, float *dw);
void rc_conv2d_wgrad_release(void);
/* Tile of the Winograd weight gradient for later calls: 2 (F(3x3, 2x2)), 4 (F(3x3, 4x4)) or 0 (automatic,
 * the default unless RECUR_WGRAD_TILE=2|4). Returns the previous setting (0: automatic). */
int rc_conv2d_wgrad_set_tile(int m);
/* Forward and backward-data of the same convolutions (3x3, stride 1, pad 1, nChw16c, C and K multiples of
 * 16) by Winograd F(4x4, 3x3) or F(2x2, 3x3) (conv2d_wino.c): y = conv(x) (+ b) (+ r, NULL or a tensor
 * shaped as y), overwritten; dx = or += (dx_acc) the data gradient. _set_tile: 2, 4 or 0 (automatic, the
 * default unless RECUR_WINO_TILE=2|4), returns the previous setting. _release frees its buffers and transformed-weight cache. */
int rc_conv2d_wino_ok(const rc_conv_dims *d); /* the shapes and layouts these kernels take (groups 1) */
void rc_conv2d_wino_forward(const rc_conv_dims *d, const float *x, const float *w, const float *b, const float *r,
                            float *y);
void rc_conv2d_wino_backward_data(const rc_conv_dims *d, const float *w, const float *dy, float *dx, int dx_acc);
/* The forward with an epilogue (rc_conv2d_forward_ep): y = relu?(conv(x; w) (+ b) (+ r)); wkey as there. */
void rc_conv2d_wino_forward_ep(const rc_conv_dims *d, const float *x, const float *w, const void *wkey,
                               const float *b, const float *r, int relu, float *y);
/* The forward with the batch-norm statistics of its output (rc_conv2d_forward_stats): y = conv(x) (+ b) (+ r),
 * isum (n x 2k doubles) = per image, the sum of each output channel and the sum of its squares. */
void rc_conv2d_wino_forward_stats(const rc_conv_dims *d, const float *x, const float *w, const float *b,
                                  const float *r, float *y, double *isum);
int rc_conv2d_wino_set_tile(int m);
void rc_conv2d_wino_release(void);

#endif
