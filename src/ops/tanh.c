/* tanh.c — hyperbolic tangent over a flat array, y = tanh(x); backward uses the output:
 * dx = dy * (1 - y^2). Reference loops plus an OpenMP block-parallel path (same bits). */
#include "ops.h"

#include <math.h>

#include "base/common.h"
#include "base/omp.h"


#define TANH_PAR_MIN 16384
#define TANH_BLOCK 4096

// x: (n) -> y: (n) on [i0, i1)
static void tanh_fwd_range(size_t i0, size_t i1, const float *x, float *y) {
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
    if (!rc_ops_fast || n < TANH_PAR_MIN) {
        tanh_fwd_range(0, n, x, y);
        return;
    }
    long long nb = (long long)((n + TANH_BLOCK - 1) / TANH_BLOCK);
    RC_OMP(omp parallel for schedule(static))
    for (long long b = 0; b < nb; b++) {
        size_t i0 = (size_t)b * TANH_BLOCK;
        tanh_fwd_range(i0, RC_MIN(i0 + TANH_BLOCK, n), x, y);
    }
}

void rc_tanh_backward(size_t n, const float *y, const float *dy, float *dx, int dx_acc) {
    if (!dx) return;
    if (!rc_ops_fast || n < TANH_PAR_MIN) {
        tanh_bwd_range(0, n, y, dy, dx, dx_acc);
        return;
    }
    long long nb = (long long)((n + TANH_BLOCK - 1) / TANH_BLOCK);
    RC_OMP(omp parallel for schedule(static))
    for (long long b = 0; b < nb; b++) {
        size_t i0 = (size_t)b * TANH_BLOCK;
        tanh_bwd_range(i0, RC_MIN(i0 + TANH_BLOCK, n), y, dy, dx, dx_acc);
    }
}
