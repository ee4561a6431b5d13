/* conv2d_dnnl.h — internal interface of the oneDNN conv2d fast path (conv2d_dnnl.c), used by the
 * dispatch in conv2d.c and by tests/benchmarks. Only meaningful when compiled with RC_HAVE_DNNL.
 * Same contract as rc_conv2d_forward/backward in ops.h (NCHW / OIHW user memory). */
#ifndef RC_CONV2D_DNNL_H
#define RC_CONV2D_DNNL_H

#include "ops/ops.h"

#ifdef RC_HAVE_DNNL
/* x (N,C,H,W), w (K,C,R,R), b (K) or NULL -> y (N,K,Ho,Wo), overwritten. */
void rc_conv2d_dnnl_forward(const rc_conv_dims *d, const float *x, const float *w, const float *b, float *y);
/* Whether the forward of d runs through recur's Winograd kernel (rc_conv2d_wino_forward) now. */
int rc_conv2d_dnnl_own_forward(const rc_conv_dims *d);
/* The same, plus r (NULL or shaped and laid out as y): y = conv(x) (+ b) + r. */
void rc_conv2d_dnnl_forward_add(const rc_conv_dims *d, const float *x, const float *w, const float *b,
                                const float *r, float *y);
/* dy (N,K,Ho,Wo) -> dx (N,C,H,W) overwritten/accumulated per dx_acc (NULL: skipped),
 * dw (K,C,R,R) += (NULL: skipped), db (K) += (NULL: skipped). */
void rc_conv2d_dnnl_backward(const rc_conv_dims *d, const float *x, const float *w, const float *dy, float *dx,
                             int dx_acc, float *dw, float *db);
/* Number of oneDNN primitives (convolutions and reorders) created since start or last release. */
int rc_conv2d_dnnl_primitive_count(void);
/* Destroy every cached primitive, memory object, buffer, the stream and the engine. */
void rc_conv2d_dnnl_release(void);
/* Layout policy for later calls: 0 = plain NCHW/OIHW given directly to the primitive; 1 =
 * format_tag_any (the primitive picks blocked layouts) with reorders at every call; 2 = auto, the
 * default: blocked for kernels larger than 1x1, plain for 1x1 (measured, see conv2d_dnnl.c).
 * The policy is part of the cache key. Exposed for tests and the benchmark; returns the previous one. */
int rc_conv2d_dnnl_set_blocked(int policy);
/* Convolution algorithm for later calls (part of the cache key): DIRECT; WINOGRAD (F(4x4,3x3) for every
 * pass where oneDNN implements it: 3x3, stride 1, channels multiples of 16); AUTO: Winograd for forward
 * and backward-data, and for backward-weights only when K >= 4C (else direct). The default is RC_CONV_DNNL_DEFAULT_ALGO unless the
 * environment sets RECUR_CONV_ALGO=direct|winograd|auto. Returns the previous one (-1: not yet read). */
enum { RC_CONV_ALGO_DIRECT = 0, RC_CONV_ALGO_WINOGRAD = 1, RC_CONV_ALGO_AUTO = 2 };
int rc_conv2d_dnnl_set_algo(int algo);
/* Passes (a mask) that recur's own Winograd kernels run instead of oneDNN where the shape qualifies
 * (rc_conv2d_wino_ok; backward-weights also needs no bias gradient) and the algorithm is AUTO. Default all
 * on AVX-512 builds, none elsewhere; RECUR_WINO=onednn gives none, =own all. Returns the previous mask
 * (-1: not yet read). */
enum { RC_CONV_OWN_FWD = 1, RC_CONV_OWN_BWD_DATA = 2, RC_CONV_OWN_BWD_WEIGHTS = 4, RC_CONV_OWN_ALL = 7 };
int rc_conv2d_dnnl_set_own(int passes);
/* Implementation name oneDNN chose for a pass (0 fwd, 1 bwd data, 2 bwd weights) of a cached
 * shape with the current policy/threads, or "" if not created yet. For benchmark output. */
const char *rc_conv2d_dnnl_impl_name(const rc_conv_dims *d, int pass, int has_bias);
#endif

#endif
