/* relu.c — rectified linear unit over a flat array: y = max(x, 0); backward passes dy where x > 0.
 * Reference loops, run over parallel blocks for large arrays (eltwise.h); both give the same bits. */
#include "ops.h"

#include "base/common.h"
#include "eltwise.h"

#define RELU_PAR_MIN 65536 /* below this many elements stay on one thread */
#define RELU_BLOCK 8192

// x: (n) -> y: (n), on the index range [i0, i1)
static void relu_fwd_range(size_t i0, size_t i1, const float *x, float *y) {
    for (size_t i = i0; i < i1; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

// x, dy: (n) -> dx: (n), overwrite or accumulate, on [i0, i1)
static void relu_bwd_range(size_t i0, size_t i1, const float *x, const float *dy, float *dx, int acc) {
    if (acc) {
        for (size_t i = i0; i < i1; i++) dx[i] += x[i] > 0.0f ? dy[i] : 0.0f;
    } else {
        for (size_t i = i0; i < i1; i++) dx[i] = x[i] > 0.0f ? dy[i] : 0.0f;
    }
}

void rc_relu_forward(size_t n, const float *x, float *y) {
    RC_ELTWISE(n, RELU_PAR_MIN, RELU_BLOCK, i0, i1, relu_fwd_range(i0, i1, x, y));
}

void rc_relu_backward(size_t n, const float *x, const float *dy, float *dx, int dx_acc) {
    if (!dx) return;
    RC_ELTWISE(n, RELU_PAR_MIN, RELU_BLOCK, i0, i1, relu_bwd_range(i0, i1, x, dy, dx, dx_acc));
}
