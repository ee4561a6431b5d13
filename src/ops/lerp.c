/* lerp.c — elementwise interpolation of two flat arrays by a third, y = (1 - w) * a + w * b, computed as
 * a + w * (b - a); b absent (NULL) counts as zero, y = (1 - w) * a (a GRU's first step, no h(0)). Backward
 * dw = dy * (b - a), da = dy * (1 - w), db = dy * w, each written in a pass of its own. */
#include "ops.h"

#include "base/common.h"
#include "eltwise.h"

#define LERP_PAR_MIN 65536
#define LERP_BLOCK 8192

// w, a, b: (n) -> y: (n) on [i0, i1); b may be NULL (zero)
static void lerp_fwd_range(size_t i0, size_t i1, const float *w, const float *a, const float *b, float *y) {
    if (b) {
        for (size_t i = i0; i < i1; i++) y[i] = a[i] + w[i] * (b[i] - a[i]);
    } else {
        for (size_t i = i0; i < i1; i++) y[i] = a[i] - w[i] * a[i];
    }
}

enum { D_W, D_A, D_B };

// dy: (n) -> d: (n), the gradient of input `which`, overwrite or accumulate, on [i0, i1)
static void lerp_bwd_range(size_t i0, size_t i1, int which, const float *w, const float *a, const float *b,
                           const float *dy, float *d, int acc) {
    for (size_t i = i0; i < i1; i++) {
        float v;
        if (which == D_W)
            v = dy[i] * ((b ? b[i] : 0.0f) - a[i]);
        else if (which == D_A)
            v = dy[i] * (1.0f - w[i]);
        else
            v = dy[i] * w[i];
        d[i] = acc ? d[i] + v : v;
    }
}

void rc_lerp_forward(size_t n, const float *w, const float *a, const float *b, float *y) {
    RC_ELTWISE(n, LERP_PAR_MIN, LERP_BLOCK, i0, i1, lerp_fwd_range(i0, i1, w, a, b, y));
}

/* One gradient at a time, so that two of dw, da, db may be one buffer when the acc flags say so. */
static void lerp_bwd_one(size_t n, int which, const float *w, const float *a, const float *b, const float *dy,
                         float *d, int acc) {
    if (!d) return;
    RC_ELTWISE(n, LERP_PAR_MIN, LERP_BLOCK, i0, i1, lerp_bwd_range(i0, i1, which, w, a, b, dy, d, acc));
}

void rc_lerp_backward(size_t n, const float *w, const float *a, const float *b, const float *dy, float *dw,
                      int dw_acc, float *da, int da_acc, float *db, int db_acc) {
    lerp_bwd_one(n, D_W, w, a, b, dy, dw, dw_acc);
    lerp_bwd_one(n, D_A, w, a, b, dy, da, da_acc);
    if (b) lerp_bwd_one(n, D_B, w, a, b, dy, db, db_acc);
}
