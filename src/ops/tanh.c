/* tanh.c — hyperbolic tangent over a flat array, y = tanh(x); backward uses the output:
 * dx = dy * (1 - y^2). Reference loops on libm's tanhf; the fast path (rc_ops_fast) evaluates vmath.h's
 * vectorised polynomial in OpenMP blocks. */
#include "ops.h"

#include <math.h>

#include "base/common.h"
#include "eltwise.h"
#include "vmath.h"

#define TANH_PAR_MIN 16384
#define TANH_BLOCK 4096

// x: (n) -> y: (n) on [i0, i1)
static void tanh_fwd_range(size_t i0, size_t i1, const float *x, float *y) {
    if (rc_ops_fast) {
#pragma omp simd
        for (size_t i = i0; i < i1; i++) y[i] = vtanh(x[i]);
        return;
    }
    for (size_t i = i0; i < i1; i++) y[i] = tanhf(x[i]);
}

// y, dy: (n) -> dx: (n) on [i0, i1)
static void tanh_bwd_range(size_t i0, size_t i1, const float *y, const float *dy, float *dx, int acc) {
    if (acc) {
        for (size_t i = i0; i < i1; i++) dx[i] += dy[i] * (1.0f - y[i] * y[i]);
    } else {
        for (size_t i = i0; i < i1; i++) dx[i] = dy[i] * (1.0f - y[i] * y[i]);
    }
}

void rc_tanh_forward(size_t n, const float *x, float *y) {
    RC_ELTWISE(n, TANH_PAR_MIN, TANH_BLOCK, i0, i1, tanh_fwd_range(i0, i1, x, y));
}

void rc_tanh_backward(size_t n, const float *y, const float *dy, float *dx, int dx_acc) {
    if (!dx) return;
    RC_ELTWISE(n, TANH_PAR_MIN, TANH_BLOCK, i0, i1, tanh_bwd_range(i0, i1, y, dy, dx, dx_acc));
}
