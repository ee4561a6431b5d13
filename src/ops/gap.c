/* gap.c — global average pooling, x (N, C, HW) -> y (N, C), each mean summed in double; backward spreads
 * dy / HW over the plane. Fast path: (n, c) planes in parallel (same bits as serial); the _l variants
 * also take blocked nChw16c input (16 channel lanes summed side by side, the same double sums). */
#include "ops.h"

#include "base/common.h"
#include "base/omp.h"


#define GAP_PAR_MIN 65536

// x: (N, C, HW) -> y: (N, C)
void rc_gap_forward(int n, int c, int hw, const float *x, float *y) {
    RC_ASSERT(n >= 0 && c >= 0 && hw >= 1);
    long long planes = (long long)n * c;
    int par = rc_ops_fast && planes * hw >= GAP_PAR_MIN;
    (void)par; /* unused without OpenMP */
    RC_OMP(omp parallel for schedule(static) if(par))
    for (long long p = 0; p < planes; p++) {
        const float *xp = x + (size_t)p * (size_t)hw;
        double s = 0.0;
        for (int i = 0; i < hw; i++) s += xp[i];
        y[p] = (float)(s / hw);
    }
}

// dy: (N, C) -> dx: (N, C, HW)
void rc_gap_backward(int n, int c, int hw, const float *dy, float *dx, int dx_acc) {
    RC_ASSERT(n >= 0 && c >= 0 && hw >= 1);
    if (!dx) return;
    long long planes = (long long)n * c;
    int par = rc_ops_fast && planes * hw >= GAP_PAR_MIN;
    (void)par; /* unused without OpenMP */
    RC_OMP(omp parallel for schedule(static) if(par))
    for (long long p = 0; p < planes; p++) {
        float *dp = dx + (size_t)p * (size_t)hw;
        float g = (float)((double)dy[p] / hw);
        if (dx_acc) {
            for (int i = 0; i < hw; i++) dp[i] += g;
        } else {
            for (int i = 0; i < hw; i++) dp[i] = g;
        }
    }
}

// x: (N, CB, HW, 16) -> y: (N, C), CB = ceil(C/16); the same double sums as the plain path, lanes in parallel
void rc_gap_forward_l(int n, int c, int hw, int layout, const float *x, float *y) {
    if (layout == RC_LAYOUT_NCHW) {
        rc_gap_forward(n, c, hw, x, y);
        return;
    }
    RC_ASSERT(n >= 0 && c >= 1 && hw >= 1);
    const int cb = (c + 15) / 16; /* the last block's lanes >= c are padding */
    long long blocks = (long long)n * cb;
    int par = blocks * 16 * hw >= GAP_PAR_MIN;
    (void)par;
    RC_OMP(omp parallel for schedule(static) if(par))
    for (long long p = 0; p < blocks; p++) {
        const float *xp = x + (size_t)p * 16 * hw;
        const long long b = p / cb;
        const int c0 = (int)(p % cb) * 16, lanes = c - c0 < 16 ? c - c0 : 16;
        double s[16] = {0};
        for (int i = 0; i < hw; i++)
            for (int v = 0; v < 16; v++) s[v] += xp[(size_t)i * 16 + v];
        for (int v = 0; v < lanes; v++) y[b * c + c0 + v] = (float)(s[v] / hw);
    }
}

// dy: (N, C) -> dx: (N, CB, HW, 16)
void rc_gap_backward_l(int n, int c, int hw, int layout, const float *dy, float *dx, int dx_acc) {
    if (layout == RC_LAYOUT_NCHW) {
        rc_gap_backward(n, c, hw, dy, dx, dx_acc);
        return;
    }
    RC_ASSERT(n >= 0 && c >= 1 && hw >= 1);
    if (!dx) return;
    const int cb = (c + 15) / 16; /* padding lanes get a zero gradient */
    long long blocks = (long long)n * cb;
    int par = blocks * 16 * hw >= GAP_PAR_MIN;
    (void)par;
    RC_OMP(omp parallel for schedule(static) if(par))
    for (long long p = 0; p < blocks; p++) {
        float *dp = dx + (size_t)p * 16 * hw;
        const long long b = p / cb;
        const int c0 = (int)(p % cb) * 16, lanes = c - c0 < 16 ? c - c0 : 16;
        float g[16];
        for (int v = 0; v < 16; v++) g[v] = v < lanes ? (float)((double)dy[b * c + c0 + v] / hw) : 0.0f;
        for (int i = 0; i < hw; i++)
            for (int v = 0; v < 16; v++) dp[(size_t)i * 16 + v] = dx_acc ? dp[(size_t)i * 16 + v] + g[v] : g[v];
    }
}
