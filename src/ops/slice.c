/* slice.c — channel slice y = x[:, c0:c0+len] of an (N, C, HW) tensor, and its backward, which writes
 * dy into that channel range of dx and zeros (acc=0) or leaves (acc=1) the other channels. The _l
 * variants accept blocked nChw16c tensors for 16-aligned ranges (the same memory offsets). */
#include "ops.h"

#include <string.h>

#include "base/common.h"

// x: (N, C, HW) -> y: (N, len, HW)
void rc_slice_forward(int n, int c, int hw, int c0, int len, const float *x, float *y) {
    RC_ASSERT(n >= 0 && hw >= 0 && c0 >= 0 && len >= 0 && c0 + len <= c);
    size_t blk = (size_t)len * (size_t)hw;
    for (int b = 0; b < n; b++) {
        if (blk) memcpy(y + (size_t)b * blk, x + ((size_t)b * (size_t)c + (size_t)c0) * (size_t)hw, blk * sizeof(float));
    }
}

// dy: (N, len, HW) -> dx: (N, C, HW)
void rc_slice_backward(int n, int c, int hw, int c0, int len, const float *dy, float *dx, int dx_acc) {
    RC_ASSERT(n >= 0 && hw >= 0 && c0 >= 0 && len >= 0 && c0 + len <= c);
    if (!dx) return;
    size_t blk = (size_t)len * (size_t)hw, plane = (size_t)c * (size_t)hw;
    for (int b = 0; b < n; b++) {
        float *row = dx + (size_t)b * plane;
        float *dst = row + (size_t)c0 * (size_t)hw;
        const float *src = dy + (size_t)b * blk;
        if (dx_acc) {
            for (size_t j = 0; j < blk; j++) dst[j] += src[j];
        } else {
            /* channels outside the slice get zero gradient */
            memset(row, 0, plane * sizeof(float));
            if (blk) memcpy(dst, src, blk * sizeof(float));
        }
    }
}

/* Either layout: in nChw16c a 16-aligned channel range of one image is contiguous, at the same offset
 * as in NCHW ((b * C + c0) * HW), so both layouts share the plain code. */
void rc_slice_forward_l(int n, int c, int hw, int layout, int c0, int len, const float *x, float *y) {
    RC_ASSERT(layout == RC_LAYOUT_NCHW || (c % 16 == 0 && c0 % 16 == 0 && len % 16 == 0));
    rc_slice_forward(n, c, hw, c0, len, x, y);
}

void rc_slice_backward_l(int n, int c, int hw, int layout, int c0, int len, const float *dy, float *dx, int dx_acc) {
    RC_ASSERT(layout == RC_LAYOUT_NCHW || (c % 16 == 0 && c0 % 16 == 0 && len % 16 == 0));
    rc_slice_backward(n, c, hw, c0, len, dy, dx, dx_acc);
}
