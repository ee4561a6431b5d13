/* sigmoid.c — logistic function over a flat array, y = 1 / (1 + exp(-x)), evaluated without overflow;
 * backward uses the output: dx = dy * y * (1 - y). Reference loops on libm's expf; the fast path
 * (rc_ops_fast) evaluates vmath.h's vectorised polynomial in OpenMP blocks. */
#include "ops.h"

#include <math.h>

#include "base/common.h"
#include "eltwise.h"
#include "vmath.h"

#define SIG_PAR_MIN 16384
#define SIG_BLOCK 4096

// x: (n) -> y: (n) on [i0, i1)
static void sigmoid_fwd_range(size_t i0, size_t i1, const float *x, float *y) {
    if (rc_ops_fast) {
#pragma omp simd
        for (size_t i = i0; i < i1; i++) y[i] = vsigmoid(x[i]);
        return;
    }
    for (size_t i = i0; i < i1; i++) {
        float v = x[i];
        if (v >= 0.0f) {
            y[i] = 1.0f / (1.0f + expf(-v));
        } else {
            float e = expf(v); /* never overflows for v < 0 */
            y[i] = e / (1.0f + e);
        }
    }
}

// y, dy: (n) -> dx: (n) on [i0, i1)
static void sigmoid_bwd_range(size_t i0, size_t i1, const float *y, const float *dy, float *dx, int acc) {
    if (acc) {
        for (size_t i = i0; i < i1; i++) dx[i] += dy[i] * y[i] * (1.0f - y[i]);
    } else {
        for (size_t i = i0; i < i1; i++) dx[i] = dy[i] * y[i] * (1.0f - y[i]);
    }
}

void rc_sigmoid_forward(size_t n, const float *x, float *y) {
    RC_ELTWISE(n, SIG_PAR_MIN, SIG_BLOCK, i0, i1, sigmoid_fwd_range(i0, i1, x, y));
}

void rc_sigmoid_backward(size_t n, const float *y, const float *dy, float *dx, int dx_acc) {
    if (!dx) return;
    RC_ELTWISE(n, SIG_PAR_MIN, SIG_BLOCK, i0, i1, sigmoid_bwd_range(i0, i1, y, dy, dx, dx_acc));
}
