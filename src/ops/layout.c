/* layout.c — conversion between plain NCHW activations and oneDNN's blocked nChw16c layout
 * (ops.h: element (n, c, s) at ((n * C/16 + c/16) * HW + s) * 16 + c % 16). Used at the edges of the
 * blocked graph and by tests that compare the blocked fast path with the plain reference. */
#include "ops.h"

#include "core/common.h"

// x: (N, C, HW) -> y: (N, C/16, HW, 16)
void rc_layout_to_blk16(int n, int c, int hw, const float *x, float *y) {
    RC_ASSERT(n >= 0 && c % 16 == 0 && hw >= 1 && x != y);
    const int cb = c / 16;
#pragma omp parallel for schedule(static) if ((long long)n * c * hw > 65536)
    for (long long p = 0; p < (long long)n * cb; p++) {
        const float *src = x + (size_t)p * 16 * hw;
        float *dst = y + (size_t)p * 16 * hw;
        for (int s = 0; s < hw; s++)
            for (int v = 0; v < 16; v++) dst[(size_t)s * 16 + v] = src[(size_t)v * hw + s];
    }
}

// x: (N, C/16, HW, 16) -> y: (N, C, HW)
void rc_layout_from_blk16(int n, int c, int hw, const float *x, float *y) {
    RC_ASSERT(n >= 0 && c % 16 == 0 && hw >= 1 && x != y);
    const int cb = c / 16;
#pragma omp parallel for schedule(static) if ((long long)n * c * hw > 65536)
    for (long long p = 0; p < (long long)n * cb; p++) {
        const float *src = x + (size_t)p * 16 * hw;
        float *dst = y + (size_t)p * 16 * hw;
        for (int v = 0; v < 16; v++)
            for (int s = 0; s < hw; s++) dst[(size_t)v * hw + s] = src[(size_t)s * 16 + v];
    }
}
