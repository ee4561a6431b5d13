/* layout.c — conversion between plain NCHW activations and oneDNN's blocked nChw16c layout
 * (ops.h: element (n, c, s) at ((n * CB + c/16) * HW + s) * 16 + c % 16, CB = ceil(C/16); when C is not
 * a multiple of 16 the last block's lanes >= C are padding, zero). Used at the edges of the blocked graph
 * and by tests that compare the blocked fast path with the plain reference. */
#include "ops.h"

#include "base/common.h"

// x: (N, C, HW) -> y: (N, CB, HW, 16), padding lanes zero
void rc_layout_to_blk16(int n, int c, int hw, const float *x, float *y) {
    RC_ASSERT(n >= 0 && c >= 1 && hw >= 1 && x != y);
    const int cb = (c + 15) / 16;
#pragma omp parallel for schedule(static) if ((long long)n * c * hw > 65536)
    for (long long p = 0; p < (long long)n * cb; p++) {
        const long long b = p / cb;
        const int c0 = (int)(p % cb) * 16, lanes = c - c0 < 16 ? c - c0 : 16;
        const float *src = x + ((size_t)b * c + c0) * hw;
        float *dst = y + (size_t)p * 16 * hw;
        for (int s = 0; s < hw; s++)
            for (int v = 0; v < 16; v++) dst[(size_t)s * 16 + v] = v < lanes ? src[(size_t)v * hw + s] : 0.0f;
    }
}

// x: (N, CB, HW, 16) -> y: (N, C, HW), padding lanes dropped
void rc_layout_from_blk16(int n, int c, int hw, const float *x, float *y) {
    RC_ASSERT(n >= 0 && c >= 1 && hw >= 1 && x != y);
    const int cb = (c + 15) / 16;
#pragma omp parallel for schedule(static) if ((long long)n * c * hw > 65536)
    for (long long p = 0; p < (long long)n * cb; p++) {
        const long long b = p / cb;
        const int c0 = (int)(p % cb) * 16, lanes = c - c0 < 16 ? c - c0 : 16;
        const float *src = x + (size_t)p * 16 * hw;
        float *dst = y + ((size_t)b * c + c0) * hw;
        for (int v = 0; v < lanes; v++)
            for (int s = 0; s < hw; s++) dst[(size_t)v * hw + s] = src[(size_t)s * 16 + v];
    }
}
