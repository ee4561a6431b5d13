/* concat.c — concatenation of several (N, C_i, HW) tensors along channels, and its backward, which
 * hands each input its channel range of dy. Pure memory copies; no separate fast path. */
#include "ops.h"

#include <string.h>

#include "base/common.h"

// xs[i]: (N, cs[i], HW) -> y: (N, sum cs, HW)
void rc_concat_forward(int n, int nin, const int *cs, int hw, const float *const *xs, float *y) {
    RC_ASSERT(n >= 0 && nin >= 0 && hw >= 0 && (nin == 0 || (cs && xs)));
    size_t ctot = 0;
    for (int i = 0; i < nin; i++) {
        RC_ASSERT(cs[i] >= 0);
        ctot += (size_t)cs[i];
    }
    for (int b = 0; b < n; b++) {
        size_t off = 0;
        for (int i = 0; i < nin; i++) {
            size_t len = (size_t)cs[i] * (size_t)hw;
            if (len) memcpy(y + ((size_t)b * ctot + off) * (size_t)hw, xs[i] + (size_t)b * len, len * sizeof(float));
            off += (size_t)cs[i];
        }
    }
}

// dy: (N, sum cs, HW) -> dxs[i]: (N, cs[i], HW); dxs[i] NULL = skip; acc NULL = all overwrite
void rc_concat_backward(int n, int nin, const int *cs, int hw, const float *dy, float *const *dxs, const int *acc) {
    RC_ASSERT(n >= 0 && nin >= 0 && hw >= 0 && (nin == 0 || (cs && dxs)));
    size_t ctot = 0;
    for (int i = 0; i < nin; i++) ctot += (size_t)cs[i];
    for (int b = 0; b < n; b++) {
        size_t off = 0;
        for (int i = 0; i < nin; i++) {
            size_t len = (size_t)cs[i] * (size_t)hw;
            float *dx = dxs[i];
            if (dx && len) {
                const float *src = dy + ((size_t)b * ctot + off) * (size_t)hw;
                float *dst = dx + (size_t)b * len;
                if (acc && acc[i]) {
                    for (size_t j = 0; j < len; j++) dst[j] += src[j];
                } else {
                    memcpy(dst, src, len * sizeof(float));
                }
            }
            off += (size_t)cs[i];
        }
    }
}
