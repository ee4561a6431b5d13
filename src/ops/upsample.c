/* upsample.c — nearest-neighbour resize of (N, C, H, W) to an explicit (Ho, Wo), source index
 * floor(dst * H / Ho) evaluated exactly as PyTorch's F.interpolate(mode='nearest') does on CPU.
 * Backward sums each output's gradient into its source cell. Fast path: planes in parallel; the _l
 * variants also resize blocked nChw16c planes (16 channels moved together). */
#include "ops.h"

#include <math.h>

#include "base/common.h"
#include "base/omp.h"


#define UPS_PAR_MIN 32768 /* output elements */

/* Source index of output row/column dst. PyTorch computes the ratio in float (scale = in / out,
 * floorf(dst * scale)), with exact shortcuts for same size and 2x; for a few sizes (e.g. 2 -> 82) this
 * differs from the exact integer floor, and we follow PyTorch so that parity fixtures agree. */
static int src_index(int dst, int in, int out) {
    if (out == in) return dst;
    if (out == 2 * in) return dst >> 1;
    float scale = (float)in / (float)out;
    int s = (int)floorf((float)dst * scale);
    return s < in - 1 ? s : in - 1;
}

int rc_upsample_src_index(int dst, int in, int out) { return src_index(dst, in, out); }

// one plane: x: (H, W) -> y: (Ho, Wo)
static void upsample_fwd_plane(int h, int w, int ho, int wo, const float *xp, float *yp) {
    for (int oy = 0; oy < ho; oy++) {
        const float *row = xp + (size_t)src_index(oy, h, ho) * w;
        float *dst = yp + (size_t)oy * wo;
        for (int ox = 0; ox < wo; ox++) dst[ox] = row[src_index(ox, w, wo)];
    }
}

// one plane: dy: (Ho, Wo) -> dx: (H, W)
static void upsample_bwd_plane(int h, int w, int ho, int wo, const float *dyp, float *dxp, int acc) {
    if (!acc)
        for (int i = 0; i < h * w; i++) dxp[i] = 0.0f;
    for (int oy = 0; oy < ho; oy++) {
        float *row = dxp + (size_t)src_index(oy, h, ho) * w;
        const float *src = dyp + (size_t)oy * wo;
        for (int ox = 0; ox < wo; ox++) row[src_index(ox, w, wo)] += src[ox];
    }
}

// x: (N, C, H, W) -> y: (N, C, Ho, Wo)
void rc_upsample_forward(int n, int c, int h, int w, int ho, int wo, const float *x, float *y) {
    RC_ASSERT(n >= 0 && c >= 0 && h >= 1 && w >= 1 && ho >= 1 && wo >= 1);
    long long planes = (long long)n * c;
    size_t in = (size_t)h * w, out = (size_t)ho * wo;
    int par = rc_ops_fast && planes * (long long)out >= UPS_PAR_MIN;
    (void)par; /* unused without OpenMP */
    RC_OMP(omp parallel for schedule(static) if(par))
    for (long long p = 0; p < planes; p++) upsample_fwd_plane(h, w, ho, wo, x + (size_t)p * in, y + (size_t)p * out);
}

// dy: (N, C, Ho, Wo) -> dx: (N, C, H, W)
void rc_upsample_backward(int n, int c, int h, int w, int ho, int wo, const float *dy, float *dx, int dx_acc) {
    RC_ASSERT(n >= 0 && c >= 0 && h >= 1 && w >= 1 && ho >= 1 && wo >= 1);
    if (!dx) return;
    long long planes = (long long)n * c;
    size_t in = (size_t)h * w, out = (size_t)ho * wo;
    int par = rc_ops_fast && planes * (long long)out >= UPS_PAR_MIN;
    (void)par; /* unused without OpenMP */
    RC_OMP(omp parallel for schedule(static) if(par))
    for (long long p = 0; p < planes; p++)
        upsample_bwd_plane(h, w, ho, wo, dy + (size_t)p * out, dx + (size_t)p * in, dx_acc);
}

// x: (N, C/16, H, W, 16) -> y: (N, C/16, Ho, Wo, 16); plain layout goes to rc_upsample_forward
void rc_upsample_forward_l(int n, int c, int h, int w, int ho, int wo, int layout, const float *x, float *y) {
    if (layout == RC_LAYOUT_NCHW) {
        rc_upsample_forward(n, c, h, w, ho, wo, x, y);
        return;
    }
    RC_ASSERT(n >= 0 && c >= 1 && h >= 1 && w >= 1 && ho >= 1 && wo >= 1);
    long long blocks = (long long)n * ((c + 15) / 16); /* padding lanes carry zeros through */
    size_t in = (size_t)h * w * 16, out = (size_t)ho * wo * 16;
    int par = blocks * (long long)out >= UPS_PAR_MIN;
    (void)par;
    RC_OMP(omp parallel for schedule(static) if(par))
    for (long long p = 0; p < blocks; p++) {
        const float *xp = x + (size_t)p * in;
        float *yp = y + (size_t)p * out;
        for (int oy = 0; oy < ho; oy++) {
            const float *row = xp + (size_t)src_index(oy, h, ho) * w * 16;
            for (int ox = 0; ox < wo; ox++) {
                const float *src = row + (size_t)src_index(ox, w, wo) * 16;
                float *dst = yp + ((size_t)oy * wo + ox) * 16;
                for (int v = 0; v < 16; v++) dst[v] = src[v];
            }
        }
    }
}

// dy: (N, C/16, Ho, Wo, 16) -> dx: (N, C/16, H, W, 16)
void rc_upsample_backward_l(int n, int c, int h, int w, int ho, int wo, int layout, const float *dy, float *dx,
                            int dx_acc) {
    if (layout == RC_LAYOUT_NCHW) {
        rc_upsample_backward(n, c, h, w, ho, wo, dy, dx, dx_acc);
        return;
    }
    RC_ASSERT(n >= 0 && c >= 1 && h >= 1 && w >= 1 && ho >= 1 && wo >= 1);
    if (!dx) return;
    long long blocks = (long long)n * ((c + 15) / 16);
    size_t in = (size_t)h * w * 16, out = (size_t)ho * wo * 16;
    int par = blocks * (long long)out >= UPS_PAR_MIN;
    (void)par;
    RC_OMP(omp parallel for schedule(static) if(par))
    for (long long p = 0; p < blocks; p++) {
        float *dxp = dx + (size_t)p * in;
        const float *dyp = dy + (size_t)p * out;
        if (!dx_acc)
            for (size_t i = 0; i < in; i++) dxp[i] = 0.0f;
        for (int oy = 0; oy < ho; oy++) {
            float *row = dxp + (size_t)src_index(oy, h, ho) * w * 16;
            for (int ox = 0; ox < wo; ox++) {
                float *dst = row + (size_t)src_index(ox, w, wo) * 16;
                const float *src = dyp + ((size_t)oy * wo + ox) * 16;
                for (int v = 0; v < 16; v++) dst[v] += src[v];
            }
        }
    }
}
