/* conv2d_dnnl.h — the oneDNN fast path of conv2d (conv2d_dnnl.c), one of the two fast paths below the
 * selector (conv2d.c), which alone calls it; the settings below are for tests and the benchmark. Same
 * contract as rc_conv2d_forward_add/backward in ops.h. Without oneDNN (RC_CONV_DNNL 0) the selector never
 * picks it and the three calls are stubs that fail an assertion. */
#ifndef RC_CONV2D_DNNL_H
#define RC_CONV2D_DNNL_H

#include "ops/ops.h"

#ifdef RC_HAVE_DNNL
#define RC_CONV_DNNL 1
#else
#define RC_CONV_DNNL 0
#endif

/* y = conv(x) (+ b) (+ r, NULL or shaped and laid out as y), overwritten. */
void rc_conv2d_dnnl_forward_add(const rc_conv_dims *d, const float *x, const float *w, const float *b,
                                const float *r, float *y);
/* dy (N,K,Ho,Wo) -> dx (N,C,H,W) overwritten/accumulated per dx_acc (NULL: skipped),
 * dw (K,C/G,R,R) += (NULL: skipped), db (K) += (only with dw; NULL: skipped). */
void rc_conv2d_dnnl_backward(const rc_conv_dims *d, const float *x, const float *w, const float *dy, float *dx,
                             int dx_acc, float *dw, float *db);
/* Destroy every cached primitive, memory object, buffer, the stream and the engine (nothing without oneDNN). */
void rc_conv2d_dnnl_release(void);

#ifdef RC_HAVE_DNNL
/* Number of oneDNN primitives (convolutions and reorders) created since start or last release. */
int rc_conv2d_dnnl_primitive_count(void);
/* Layout policy for later calls: 0 = plain NCHW/OIHW given directly to the primitive; 1 =
 * format_tag_any (the primitive picks blocked layouts) with reorders at every call; 2 = auto, the
 * default: blocked for kernels larger than 1x1, plain for 1x1 (measured, see conv2d_dnnl.c).
 * The policy is part of the cache key. Exposed for tests and the benchmark; returns the previous one. */
int rc_conv2d_dnnl_set_blocked(int policy);
/* Implementation name oneDNN chose for a pass (0 fwd, 1 bwd data, 2 bwd weights) of a cached
 * shape with the current policy/threads, or "" if not created yet. For benchmark output. */
const char *rc_conv2d_dnnl_impl_name(const rc_conv_dims *d, int pass, int has_bias);
#endif

#endif
