/* relu.c — rectified linear unit over a flat array: y = max(x, 0); backward passes dy where x > 0.
 * Reference loops plus an OpenMP path (parallel over blocks) for large arrays; both give the same bits. */
#include "ops.h"

#include "base/common.h"
#include "base/omp.h"


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
    if (!rc_ops_fast || n < RELU_PAR_MIN) {
        relu_fwd_range(0, n, x, y);
        return;
    }
    long long nb = (long long)((n + RELU_BLOCK - 1) / RELU_BLOCK);
    RC_OMP(omp parallel for schedule(static))
    for (long long b = 0; b < nb; b++) {
        size_t i0 = (size_t)b * RELU_BLOCK;
        relu_fwd_range(i0, RC_MIN(i0 + RELU_BLOCK, n), x, y);
    }
}

void rc_relu_backward(size_t n, const float *x, const float *dy, float *dx, int dx_acc) {
    if (!dx) return;
    if (!rc_ops_fast || n < RELU_PAR_MIN) {
        relu_bwd_range(0, n, x, dy, dx, dx_acc);
        return;
    }
    long long nb = (long long)((n + RELU_BLOCK - 1) / RELU_BLOCK);
    RC_OMP(omp parallel for schedule(static))
    for (long long b = 0; b < nb; b++) {
        size_t i0 = (size_t)b * RELU_BLOCK;
        relu_bwd_range(i0, RC_MIN(i0 + RELU_BLOCK, n), x, dy, dx, dx_acc);
    }
}
