/* ops.h — every op of the engine as plain functions over raw float arrays with explicit shapes.
 * Conventions (all ops):
 *   - Layout is NCHW, contiguous. Spatial size "hw" = H*W.
 *   - forward OVERWRITES its output.
 *   - backward ACCUMULATES into param gradients (dw += ...), and into input gradients when the
 *     matching `acc` flag is 1; when `acc` is 0 it OVERWRITES the input gradient. A NULL input
 *     gradient pointer means "not needed" and is skipped.
 *   - Each op has a plain-C reference implementation (`_ref` suffix, straightforward loops, the
 *     ground truth for tests). The unsuffixed function dispatches to the fast path when
 *     rc_ops_fast is set (and one exists) and to the reference otherwise.
 *   - *_flops return the forward FLOPs (multiply and add counted as 2) for the whole batch. */
#ifndef RC_OPS_H
#define RC_OPS_H

#include <stddef.h>

/* 1 = use fast paths (oneDNN, vectorised code) where they exist; 0 = reference only. Default 1. */
extern int rc_ops_fast;

/* ---- conv2d: x (N,C,H,W), w (K,C/G,R,R), b (K) or NULL -> y (N,K,Ho,Wo) ----
 * Ho = (H + 2*pad - R) / stride + 1, zero padding, cross-correlation (as PyTorch's Conv2d). Grouped
 * (G = groups, C and K multiples of G; as PyTorch's Conv2d(groups=G)): output channel k sees only the
 * input channels of its group, [g C/G, (g+1) C/G) with g = k / (K/G); G = C = K is a depthwise conv. */
typedef struct {
    int n, c, h, w;       /* input */
    int k, r, stride, pad; /* output channels, kernel size (square), stride, zero padding */
    int ho, wo;           /* output spatial size (filled by rc_conv_dims_init) */
    int x_layout, y_layout; /* RC_LAYOUT_* of x/dx and y/dy (init: plain) */
    int groups;           /* G (init: 1; set it after rc_conv_dims_init) */
} rc_conv_dims;
void rc_conv_dims_init(rc_conv_dims *d, int n, int c, int h, int w, int k, int r, int stride, int pad);
void rc_conv2d_forward(const rc_conv_dims *d, const float *x, const float *w, const float *b, float *y);
/* y = conv(x) (+ b) + r, r shaped and laid out as y (a convolution fused with the add that follows it). */
void rc_conv2d_forward_add(const rc_conv_dims *d, const float *x, const float *w, const float *b, const float *r,
                           float *y);
/* dx (N,C,H,W) overwritten or accumulated per dx_acc; dw (K,C/G,R,R) and db (K) accumulated. */
void rc_conv2d_backward(const rc_conv_dims *d, const float *x, const float *w, const float *dy, float *dx,
                        int dx_acc, float *dw, float *db);
void rc_conv2d_forward_ref(const rc_conv_dims *d, const float *x, const float *w, const float *b, float *y);
void rc_conv2d_backward_ref(const rc_conv_dims *d, const float *x, const float *w, const float *dy, float *dx,
                            int dx_acc, float *dw, float *db);
double rc_conv2d_flops(const rc_conv_dims *d);
/* The forward with an epilogue: y = relu?(conv(x; w) (+ b) (+ r)), r NULL or shaped and laid out as y; only
 * where rc_conv2d_select(d, RC_CONV_FWD_EP) is not RC_CONV_IMPL_NONE. wkey names w's slot in the cache of
 * transformed weights: w itself, or a stable key when w is a scratch buffer recomputed at each call (the
 * eval-mode fold of a batch norm into the weights; its contents are still compared at every call). */
void rc_conv2d_forward_ep(const rc_conv_dims *d, const float *x, const float *w, const void *wkey, const float *b,
                          const float *r, int relu, float *y);
/* The forward with the batch-norm statistics of y in its epilogue, where recur's kernels run the forward of d
 * (rc_conv2d_select(d, RC_CONV_FWD) is RC_CONV_IMPL_OWN): y = conv(x) (+ b) (+ r, NULL or shaped as y), and
 * isum (d->n x 2 d->k doubles) = per image, the sum of each output channel over its positions, then the sums
 * of their squares, independent of the thread count; returns 1. Elsewhere returns 0 and does nothing. */
int rc_conv2d_forward_stats(const rc_conv_dims *d, const float *x, const float *w, const float *b, const float *r,
                            float *y, double *isum);
/* Release cached fast-path state (oneDNN primitives, recur's kernels' buffers). Safe to call when none exist. */
void rc_conv2d_release(void);

/* ---- the convolution selector (conv2d.c): which implementation runs a pass of a convolution ----
 * Every conv entry point above dispatches through rc_conv2d_select; the plan (graph_plan.c) and executor
 * ask it too. Rules, for the layouts in d and the settings now ("fast" = rc_ops_fast or blocked layouts;
 * "own" = recur's kernels switched on for the pass (rc_conv2d_set_own), algorithm AUTO and a shape they
 * take, rc_conv2d_wino_ok: 3x3, stride 1, pad 1, nChw16c, channels multiples of 16, groups 1):
 *   pass                 not fast   fast, own   fast, not own
 *   FWD, FWD_ADD         REF        OWN         DNNL (without oneDNN: REF)
 *   FWD_EP               NONE       OWN         NONE
 *   BWD_DATA             REF        OWN         DNNL (REF)
 *   BWD_WEIGHTS          REF        OWN         DNNL (REF)
 *   BWD_WEIGHTS_BIAS     REF        DNNL (OWN)  DNNL (REF)       (oneDNN computes dw and db in one primitive)
 * REF on blocked layouts runs on plain copies (only without oneDNN, where nothing else takes them). A bias
 * gradient alone is a sum over dy in any case. */
enum { RC_CONV_FWD, RC_CONV_FWD_ADD, RC_CONV_FWD_EP, RC_CONV_BWD_DATA, RC_CONV_BWD_WEIGHTS, RC_CONV_BWD_WEIGHTS_BIAS };
enum { RC_CONV_IMPL_NONE, RC_CONV_IMPL_REF, RC_CONV_IMPL_OWN, RC_CONV_IMPL_DNNL };
int rc_conv2d_select(const rc_conv_dims *d, int pass);
/* Whether a fast path (not the reference on plain copies) runs some pass of d with blocked activations: what
 * the plan asks before it gives a graph blocked layouts. Always with oneDNN; without it where recur's kernels
 * take the shape. */
int rc_conv2d_blocked_fast(const rc_conv_dims *d);
/* Convolution algorithm for later calls: DIRECT (oneDNN's direct kernels, recur's off); WINOGRAD (oneDNN's
 * F(4x4,3x3) for every pass where it implements it: 3x3, stride 1, channels multiples of 16; recur's off);
 * AUTO: recur's kernels where switched on and the shape qualifies, else oneDNN's Winograd for forward and
 * backward-data, and for backward-weights only when K >= 4C (else direct). The default is
 * RC_CONV_DEFAULT_ALGO unless the environment sets RECUR_CONV_ALGO=direct|winograd|auto. Returns the
 * previous one (-1: not yet read; setting -1 goes back to the default). */
enum { RC_CONV_ALGO_DIRECT = 0, RC_CONV_ALGO_WINOGRAD = 1, RC_CONV_ALGO_AUTO = 2 };
int rc_conv2d_set_algo(int algo);
int rc_conv2d_algo(void); /* the setting now (reads RECUR_CONV_ALGO once) */
/* Passes (a mask) that recur's own Winograd kernels run where the shape qualifies and the algorithm is AUTO.
 * Default all on AVX-512 builds, none elsewhere; RECUR_WINO=onednn gives none, =own all. Returns the
 * previous mask (-1: not yet read; setting -1 goes back to the default). */
enum { RC_CONV_OWN_FWD = 1, RC_CONV_OWN_BWD_DATA = 2, RC_CONV_OWN_BWD_WEIGHTS = 4, RC_CONV_OWN_ALL = 7 };
int rc_conv2d_set_own(int passes);

/* ---- batch norm over (N, C, HW), statistics per channel ----
 * train=1: uses batch mean and biased variance; writes mean[C] and rstd[C] = 1/sqrt(var+eps) for
 *          backward; updates running stats: run_mean = (1-m)*run_mean + m*mean,
 *          run_var = (1-m)*run_var + m*var_unbiased (as PyTorch, m = momentum).
 *          run_mean/run_var may be NULL (no update).
 * train=0: normalises with run_mean/run_var; still writes mean[] and rstd[] (from running stats). */
void rc_batchnorm_forward(int n, int c, int hw, const float *x, const float *gamma, const float *beta, float *y,
                          float *mean, float *rstd, float *run_mean, float *run_var, float momentum, float eps,
                          int train);
/* Backward given the mean/rstd written by forward; train selects batch-statistics backward vs the
 * affine (eval) backward. dgamma, dbeta accumulated. */
void rc_batchnorm_backward(int n, int c, int hw, const float *x, const float *gamma, const float *mean,
                           const float *rstd, const float *dy, float *dx, int dx_acc, float *dgamma, float *dbeta,
                           int train);
double rc_batchnorm_flops(int n, int c, int hw);
/* Synchronised batch norm (data-parallel training, src/dist). NULL (the default): statistics are over
 * this process's batch. Otherwise training-mode forward and backward call it to sum per-channel partial
 * sums over every rank, in place (n doubles): forward the sum of x with the element count, then the squared
 * deviations from that global mean; backward the sums of dy and dy * (x - mean) with the count. dgamma and
 * dbeta stay local (the gradient all-reduce sums them). */
extern void (*rc_bn_allreduce)(double *sums, int n);

/* ---- elementwise activations over n floats ---- */
void rc_relu_forward(size_t n, const float *x, float *y);
void rc_relu_backward(size_t n, const float *x, const float *dy, float *dx, int dx_acc);
void rc_sigmoid_forward(size_t n, const float *x, float *y);
void rc_sigmoid_backward(size_t n, const float *y, const float *dy, float *dx, int dx_acc); /* uses y */
void rc_tanh_forward(size_t n, const float *x, float *y);
void rc_tanh_backward(size_t n, const float *y, const float *dy, float *dx, int dx_acc); /* uses y */

/* ---- add / multiply, elementwise over n floats: y = a + b, y = a * b ---- */
void rc_add_forward(size_t n, const float *a, const float *b, float *y);
void rc_add_backward(size_t n, const float *dy, float *da, int da_acc, float *db, int db_acc);
void rc_mul_forward(size_t n, const float *a, const float *b, float *y);
void rc_mul_backward(size_t n, const float *a, const float *b, const float *dy, float *da, int da_acc, float *db,
                     int db_acc);
/* ---- interpolate, elementwise over n floats: y = (1 - w) * a + w * b; b NULL counts as zero ----
 * Backward: dw = dy (b - a), da = dy (1 - w), db = dy w (each NULL: skipped; db also when b is NULL). */
void rc_lerp_forward(size_t n, const float *w, const float *a, const float *b, float *y);
void rc_lerp_backward(size_t n, const float *w, const float *a, const float *b, const float *dy, float *dw,
                      int dw_acc, float *da, int da_acc, float *db, int db_acc);

/* ---- concat along channels: inputs xs[i] (N, cs[i], HW) -> y (N, sum cs, HW) ---- */
void rc_concat_forward(int n, int nin, const int *cs, int hw, const float *const *xs, float *y);
void rc_concat_backward(int n, int nin, const int *cs, int hw, const float *dy, float *const *dxs, const int *acc);

/* ---- channel slice: x (N, C, HW) -> y (N, len, HW) = x[:, c0:c0+len] ---- */
void rc_slice_forward(int n, int c, int hw, int c0, int len, const float *x, float *y);
void rc_slice_backward(int n, int c, int hw, int c0, int len, const float *dy, float *dx, int dx_acc);

/* ---- pooling: x (N,C,H,W) -> y (N,C,Ho,Wo), square window k, stride s, padding p ----
 * Max pooling ignores padded cells; average pooling counts them (PyTorch count_include_pad=True).
 * Ties in max pooling: the first maximum in row-major window order gets the gradient. */
typedef struct {
    int n, c, h, w, k, stride, pad, ho, wo;
} rc_pool_dims;
void rc_pool_dims_init(rc_pool_dims *d, int n, int c, int h, int w, int k, int stride, int pad);
void rc_maxpool_forward(const rc_pool_dims *d, const float *x, float *y);
void rc_maxpool_backward(const rc_pool_dims *d, const float *x, const float *dy, float *dx, int dx_acc);
void rc_avgpool_forward(const rc_pool_dims *d, const float *x, float *y);
void rc_avgpool_backward(const rc_pool_dims *d, const float *dy, float *dx, int dx_acc);

/* ---- global average pooling: x (N, C, HW) -> y (N, C) ---- */
void rc_gap_forward(int n, int c, int hw, const float *x, float *y);
void rc_gap_backward(int n, int c, int hw, const float *dy, float *dx, int dx_acc);

/* ---- nearest upsampling to an explicit size: x (N,C,H,W) -> y (N,C,Ho,Wo),
 * source index = floor(dst * H / Ho) (PyTorch F.interpolate mode='nearest'). ---- */
void rc_upsample_forward(int n, int c, int h, int w, int ho, int wo, const float *x, float *y);
void rc_upsample_backward(int n, int c, int h, int w, int ho, int wo, const float *dy, float *dx, int dx_acc);
/* Source row (column) of output row (column) dst when resizing in -> out (what the ONNX export gathers). */
int rc_upsample_src_index(int dst, int in, int out);

/* ---- linear: x (N, I), w (O, I), b (O) or NULL -> y (N, O) = x w^T + b ---- */
void rc_linear_forward(int n, int in, int out, const float *x, const float *w, const float *b, float *y);
void rc_linear_backward(int n, int in, int out, const float *x, const float *w, const float *dy, float *dx,
                        int dx_acc, float *dw, float *db);

/* ---- softmax cross-entropy over logits (N, K) with integer labels (N) ----
 * loss = w_fine * mean_n(-log p[n, y_n])
 *      + w_coarse * mean_n(-log sum_{j : coarse_of[j] == coarse_of[y_n]} p[n, j])
 * coarse_of (K entries, group index per class) may be NULL (then w_coarse is ignored).
 * Returns the loss. If dlogits is non-NULL, writes (acc=0) or adds (acc=1) dloss/dlogits.
 * Labels outside [0, K) are a programmer error (asserted). Numerically stable (max-shifted). */
double rc_xent_forward_backward(int n, int k, const float *logits, const int *labels, float w_fine,
                                const int *coarse_of, float w_coarse, float *dlogits, int acc);

/* ---- per-position softmax cross-entropy: logits (N, K, HW), labels (N, HW) in [0, K), mask (N, HW) or
 * NULL (all positions) ----
 * loss = w * sum over kept positions of -log p[n, labels, p] / (number of kept positions in the batch);
 * 0 when none is kept. dlogits (may be NULL) written (acc = 0; zero at dropped positions) or added. */
double rc_xent_dense_forward_backward(int n, int k, int hw, const float *logits, const unsigned char *labels,
                                      const unsigned char *mask, float w, float *dlogits, int acc);

/* ======== fast-path layouts and fused ops (used by the graph's layout-aware plan) ========
 * An activation (N, C, H, W) is stored either plain (RC_LAYOUT_NCHW) or in oneDNN's blocked nChw16c
 * (RC_LAYOUT_BLK16, C % 16 == 0): element (n, c, s) at ((n * C/16 + c/16) * HW + s) * 16 + c % 16.
 * Both hold N*C*H*W floats, so elementwise ops (relu, sigmoid, tanh, add, mul) work on either as long
 * as all operands share it; channel-aware ops below take the layout explicitly. */
enum { RC_LAYOUT_NCHW = 0, RC_LAYOUT_BLK16 = 1 };
/* plain (N, C, HW) <-> blocked (N, C/16, HW, 16) */
void rc_layout_to_blk16(int n, int c, int hw, const float *x, float *y);
void rc_layout_from_blk16(int n, int c, int hw, const float *x, float *y);

/* Batch-norm statistics modes: TRAIN computes batch mean/rstd (summed over ranks through
 * rc_bn_allreduce when set) and updates the running stats; EVAL takes them from the running stats;
 * REPLAY uses the mean/rstd already in the arrays (recomputation in backward: identical bits). */
enum { RC_BN_TRAIN = 0, RC_BN_EVAL = 1, RC_BN_REPLAY = 2 };
/* Doubles of workspace the fused batch-norm ops need for c channels. */
size_t rc_bn_work_doubles(int c);
/* Per-channel mean[c] and rstd[c] of x (either layout) per mode; work: rc_bn_work_doubles(c). */
void rc_bn_stats(int n, int c, int hw, int layout, const float *x, float *mean, float *rstd, float *run_mean,
                 float *run_var, float momentum, float eps, int mode, double *work);

/* ---- fused batch norm + residual add + relu (+ global average pool of the result) ----
 * y = act(gamma * (x - mean) * rstd + beta + r); r (same shape) may be NULL; act is relu when relu = 1,
 * else identity; pool (N, C) (NULL: none) gets the mean of y over HW, as rc_gap_forward. Statistics as
 * rc_batchnorm_forward (one pass of sums unless rc_bn_allreduce is set). Backward: the gradient reaching
 * y is dy (NULL: none) plus dpool / HW (NULL: none); residual = 1 when the forward had r: the relu mask
 * is then y > 0, else recomputed from x (y may be NULL); writes the residual's gradient dr (per dr_acc;
 * NULL skipped) and dx (may alias dy). */
void rc_bnact_forward(int n, int c, int hw, int layout, const float *x, const float *r, const float *gamma,
                      const float *beta, float *y, float *pool, float *mean, float *rstd, float *run_mean,
                      float *run_var, float momentum, float eps, int mode, int relu, double *work);
void rc_bnact_backward(int n, int c, int hw, int layout, const float *x, const float *y, const float *gamma,
                       const float *beta, const float *mean, const float *rstd, const float *dy, const float *dpool,
                       float *dx, int dx_acc, float *dr, int dr_acc, float *dgamma, float *dbeta, int train, int relu,
                       int residual, double *work);

/* Micro-batch phases of the fused batch norm (the graph's chunked schedule, graph_exec.c). Images
 * [b0, b1) must start and end on the fixed batch chunks of the statistics (rc_bn_chunk_start(n, k),
 * k = 0..min(n, 8)): the partial sums of each chunk are kept in work and reduced by _finish in the same
 * order as the one-call functions, so the results are bit-identical to them. Pointers are the whole
 * batch's; not with rc_bn_allreduce. Forward: rc_bn_stats_part over every range, rc_bn_stats_finish,
 * then rc_bnact_forward_range (also usable alone, with saved mean/rstd). Backward: _reduce over every
 * range, _finish (the parameter gradients), then _apply over every range; between _finish and the last
 * _apply, other nodes' phases may use the same work only when sums is set (then nothing else may). */
int rc_bn_chunk_start(int n, int k);
void rc_bn_stats_part(int n, int c, int hw, int layout, const float *x, int b0, int b1, double *work);
/* The same partial sums from sums the producer of x already made (rc_conv2d_forward_stats), in two steps:
 * _images turns per-image sums (isum: images [b0, b1), 2c doubles each: the channel sums, then the sums of
 * squares) into the chunks' partial sums in pre (rc_bn_pre_doubles(c), kept by the caller between the
 * producer and the batch norm); _load copies chunks [b0, b1) of pre into work, in place of
 * rc_bn_stats_part over the same images. Each chunk adds its images in order: thread-count independent,
 * and the same whether or not the producer ran in micro-batches (other last bits than rc_bn_stats_part). */
size_t rc_bn_pre_doubles(int c);
void rc_bn_stats_part_images(int n, int c, int layout, const double *isum, int b0, int b1, double *pre);
void rc_bn_stats_part_load(int n, int c, int layout, const double *pre, int b0, int b1, double *work);
void rc_bn_stats_finish(int n, int c, int hw, int layout, float *mean, float *rstd, float *run_mean, float *run_var,
                        float momentum, float eps, double *work);
void rc_bnact_forward_range(int n, int c, int hw, int layout, const float *x, const float *r, const float *gamma,
                            const float *beta, float *y, float *pool, const float *mean, const float *rstd, int relu,
                            int b0, int b1);
typedef struct { /* the arguments of rc_bnact_backward */
    int n, c, hw, layout;
    const float *x, *y, *gamma, *beta, *mean, *rstd, *dy, *dpool;
    float *dx;
    int dx_acc;
    float *dr;
    int dr_acc;
    float *dgamma, *dbeta;
    int train, relu, residual;
    double *work;
    double *sums; /* 2c + 1 doubles from _finish to _apply, NULL: in work (other phases may not run between) */
} rc_bnact_grad;
void rc_bnact_backward_reduce(const rc_bnact_grad *a, int b0, int b1);
void rc_bnact_backward_finish(const rc_bnact_grad *a);
void rc_bnact_backward_apply(const rc_bnact_grad *a, int b0, int b1);

/* ---- fused ConvLSTM gates: a (N, 4C, HW) summed gate input, normalised per channel when mean is
 * non-NULL (batch norm with mean/rstd from rc_bn_stats; gamma/beta NULL = 1/0), gates i, f, o, g = channel quarters;
 * c = sigmoid(f) * c_prev + sigmoid(i) * tanh(g) (c_prev NULL: zero), h = sigmoid(o) * tanh(c).
 * Backward reads a, c_prev, c; dh and dc (gradient from c's later uses, NULL = zero) in; writes da
 * (overwritten; may not alias a) and dc_prev (per acc), accumulates dgamma, dbeta. With BN, layout
 * BLK16 needs C % 16 == 0. sigmoid/tanh are vectorised (max error a few float ulps). */
void rc_lstm_forward(int n, int c, int hw, int layout, const float *a, const float *c_prev, const float *gamma,
                     const float *beta, const float *mean, const float *rstd, float *cell, float *h);
void rc_lstm_backward(int n, int c, int hw, int layout, const float *a, const float *c_prev, const float *cell,
                      const float *gamma, const float *beta, const float *mean, const float *rstd, const float *dh,
                      const float *dc, float *da, float *dc_prev, int dc_prev_acc, float *dgamma, float *dbeta,
                      int train, double *work);

/* ---- channel-aware ops on either layout (layout BLK16 needs c0, len, C multiples of 16) ---- */
void rc_slice_forward_l(int n, int c, int hw, int layout, int c0, int len, const float *x, float *y);
void rc_slice_backward_l(int n, int c, int hw, int layout, int c0, int len, const float *dy, float *dx, int dx_acc);
void rc_gap_forward_l(int n, int c, int hw, int layout, const float *x, float *y);
void rc_gap_backward_l(int n, int c, int hw, int layout, const float *dy, float *dx, int dx_acc);
void rc_upsample_forward_l(int n, int c, int h, int w, int ho, int wo, int layout, const float *x, float *y);
void rc_upsample_backward_l(int n, int c, int h, int w, int ho, int wo, int layout, const float *dy, float *dx,
                            int dx_acc);
/* Fused y = r + upsample(z) (z at the source size, r and y at the output size; y may be r), then
 * max(y, 0) when relu (the eval pipeline's folded batch norm + relu after the sum), and its backward
 * (of the sum, relu 0): dr = dy (or += when dr_acc), dz = the upsample's backward of dy (or += when
 * dz_acc); dr or dz may be NULL. Bit-identical to upsample then add (then relu). */
void rc_upsample_add_forward_l(int n, int c, int h, int w, int ho, int wo, int layout, const float *z, const float *r,
                               int relu, float *y);
/* The same (no relu) with the batch-norm statistics of y, as rc_conv2d_forward_stats gives them: isum (n x 2c
 * doubles) = per image, each channel's sum over its positions, then the sums of squares (each channel
 * block by one thread, in position order: independent of the thread count). */
void rc_upsample_add_forward_stats(int n, int c, int h, int w, int ho, int wo, int layout, const float *z,
                                   const float *r, float *y, double *isum);
/* A convolutional GRU cell's gates fused (gru.c): x (drive) and u (hidden term), (N, 3, C H W) each with
 * gates z, r, n; x or u absent (NULL), h_prev (N, C H W) present exactly with u;
 * h = n + z (h_prev - n), or n - z n without u. Backward: dx, du, dh_prev from dh, each overwritten or
 * accumulated (_acc), NULL: skipped. Any layout whose per-image gate thirds match h's (plain, or nChw16c
 * with C % 16 == 0). */
void rc_gru_forward(int n, size_t chw, const float *x, const float *u, const float *h_prev, float *h);
void rc_gru_backward(int n, size_t chw, const float *x, const float *u, const float *h_prev, const float *dh,
                     float *dx, int dx_acc, float *du, int du_acc, float *dh_prev, int dh_prev_acc);
void rc_upsample_add_backward_l(int n, int c, int h, int w, int ho, int wo, int layout, const float *dy, float *dr,
                                int dr_acc, float *dz, int dz_acc);

#endif
