/* upsample.c — nearest-neighbour resize of (N, C, H, W) to an explicit (Ho, Wo), source index
 * floor(dst * H / Ho) evaluated exactly as PyTorch's F.interpolate(mode='nearest') does on CPU.
 * Backward sums each output's gradient into its source cell. Fast path: planes in parallel; the _l
 * variants also resize blocked nChw16c planes (16 channels moved together). The fused upsample + add
 * (y = r + upsample(z), the plan's form of a top-down term added to an area's summed input) reads z and
 * r and writes y in one pass, without the upsampled tensor; its backward copies dy into dr and sums it
 * into dz in the same pass, in the order of the unfused ops (same bits). One pair of block loops serves
 * all of them. */
#include "ops.h"

#include <math.h>
#include <string.h>

#include "base/common.h"
#include "base/omp.h"
#include "ops/vec8.h"


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

/* One block of V lanes per position (V = 1: a plain plane; 16: an nChw16c channel block):
 * y = upsample(z), or r + upsample(z) when r is given (y may be r), then max(y, 0) when relu; with st
 * (only with r, no relu), st[v] = the sum of lane v's outputs and st[V + v] the sum of their squares, in
 * double, position by position. */
static inline void ups_fwd_block(int h, int w, int ho, int wo, int V, const float *zp, const float *rp, int relu,
                                 float *yp, double *st) {
    if (st && V == 16) { /* two 8-lane halves in double vectors, as the batch norm's own pass sums */
        v8d s0 = {0}, s1 = {0}, q0 = {0}, q1 = {0};
        for (int oy = 0; oy < ho; oy++) {
            const float *row = zp + (size_t)src_index(oy, h, ho) * w * 16;
            const size_t o = (size_t)oy * wo * 16;
            for (int ox = 0; ox < wo; ox++) {
                const float *src = row + (size_t)src_index(ox, w, wo) * 16, *rr = rp + o + (size_t)ox * 16;
                float *d = yp + o + (size_t)ox * 16;
                const v8f t0 = ldf(rr) + ldf(src), t1 = ldf(rr + 8) + ldf(src + 8);
                stf(d, t0);
                stf(d + 8, t1);
                const v8d a = cvt(t0), b = cvt(t1);
                s0 += a;
                s1 += b;
                q0 += a * a;
                q1 += b * b;
            }
        }
        for (int v = 0; v < 8; v++) {
            st[v] = s0[v];
            st[v + 8] = s1[v];
            st[16 + v] = q0[v];
            st[24 + v] = q1[v];
        }
        return;
    }
    if (st) {
        double s[16] = {0}, q[16] = {0};
        for (int oy = 0; oy < ho; oy++) {
            const float *row = zp + (size_t)src_index(oy, h, ho) * w * V;
            const size_t o = (size_t)oy * wo * V;
            for (int ox = 0; ox < wo; ox++) {
                const float *src = row + (size_t)src_index(ox, w, wo) * V, *rr = rp + o + (size_t)ox * V;
                float *d = yp + o + (size_t)ox * V;
                for (int v = 0; v < V; v++) {
                    const float t = rr[v] + src[v];
                    d[v] = t;
                    s[v] += t;
                    q[v] += (double)t * t;
                }
            }
        }
        for (int v = 0; v < V; v++) {
            st[v] = s[v];
            st[V + v] = q[v];
        }
        return;
    }
    for (int oy = 0; oy < ho; oy++) {
        const float *row = zp + (size_t)src_index(oy, h, ho) * w * V;
        const size_t o = (size_t)oy * wo * V;
        for (int ox = 0; ox < wo; ox++) {
            const float *src = row + (size_t)src_index(ox, w, wo) * V;
            float *d = yp + o + (size_t)ox * V;
            if (rp) {
                const float *rr = rp + o + (size_t)ox * V;
                if (relu)
                    for (int v = 0; v < V; v++) {
                        const float t = rr[v] + src[v];
                        d[v] = t > 0.0f ? t : 0.0f;
                    }
                else
                    for (int v = 0; v < V; v++) d[v] = rr[v] + src[v];
            } else {
                for (int v = 0; v < V; v++) d[v] = src[v];
            }
        }
    }
}

/* dy -> dz (the upsample's backward: each output's gradient summed into its source cell; zeroed first
 * unless dz_acc; skipped when NULL) and dr (a copy of dy, or added when dr_acc; skipped when NULL). */
static inline void ups_bwd_block(int h, int w, int ho, int wo, int V, const float *dyp, float *drp, int dr_acc,
                                 float *dzp, int dz_acc) {
    if (dzp && !dz_acc) memset(dzp, 0, (size_t)h * w * V * sizeof(float));
    for (int oy = 0; oy < ho; oy++) {
        const size_t o = (size_t)oy * wo * V;
        float *row = dzp ? dzp + (size_t)src_index(oy, h, ho) * w * V : NULL;
        for (int ox = 0; ox < wo; ox++) {
            const float *g = dyp + o + (size_t)ox * V;
            if (drp) {
                float *d = drp + o + (size_t)ox * V;
                if (dr_acc)
                    for (int v = 0; v < V; v++) d[v] += g[v];
                else
                    for (int v = 0; v < V; v++) d[v] = g[v];
            }
            if (row) {
                float *dst = row + (size_t)src_index(ox, w, wo) * V;
                for (int v = 0; v < V; v++) dst[v] += g[v];
            }
        }
    }
}

/* The blocks of n images of c channels in parallel (fast path, large tensors), V a literal per branch so
 * that the lane loops unroll. */
static void ups_forward(int n, int c, int h, int w, int ho, int wo, int V, const float *z, const float *r, int relu,
                        float *y, double *isum) {
    const int cb = (c + V - 1) / V;
    long long blocks = (long long)n * cb; /* padding lanes: zeros (+ zeros) */
    size_t in = (size_t)h * w * V, out = (size_t)ho * wo * V;
    int par = rc_ops_fast && blocks * (long long)out >= UPS_PAR_MIN;
    (void)par; /* unused without OpenMP */
    RC_OMP(omp parallel for schedule(static) if(par))
    for (long long p = 0; p < blocks; p++) {
        const float *zp = z + (size_t)p * in, *rp = r ? r + (size_t)p * out : NULL;
        double st[32];
        if (V == 16)
            ups_fwd_block(h, w, ho, wo, 16, zp, rp, relu, y + (size_t)p * out, isum ? st : NULL);
        else
            ups_fwd_block(h, w, ho, wo, 1, zp, rp, relu, y + (size_t)p * out, isum ? st : NULL);
        if (!isum) continue;
        const int c0 = (int)(p % cb) * V; /* block (b, cb) -> image b's channels c0.. (padding lanes dropped) */
        double *d = isum + (size_t)(p / cb) * 2 * c + c0;
        for (int v = 0; v < V && c0 + v < c; v++) {
            d[v] = st[v];
            d[c + v] = st[V + v];
        }
    }
}

static void ups_backward(int n, int c, int h, int w, int ho, int wo, int V, const float *dy, float *dr, int dr_acc,
                         float *dz, int dz_acc) {
    if (!dr && !dz) return;
    long long blocks = (long long)n * ((c + V - 1) / V);
    size_t in = (size_t)h * w * V, out = (size_t)ho * wo * V;
    int par = rc_ops_fast && blocks * (long long)out >= UPS_PAR_MIN;
    (void)par;
    RC_OMP(omp parallel for schedule(static) if(par))
    for (long long p = 0; p < blocks; p++) {
        const float *dyp = dy + (size_t)p * out;
        float *drp = dr ? dr + (size_t)p * out : NULL, *dzp = dz ? dz + (size_t)p * in : NULL;
        if (V == 16)
            ups_bwd_block(h, w, ho, wo, 16, dyp, drp, dr_acc, dzp, dz_acc);
        else
            ups_bwd_block(h, w, ho, wo, 1, dyp, drp, dr_acc, dzp, dz_acc);
    }
}

static int lanes_of(int layout) { return layout == RC_LAYOUT_BLK16 ? 16 : 1; }

// x: (N, C, H, W) -> y: (N, C, Ho, Wo)
void rc_upsample_forward(int n, int c, int h, int w, int ho, int wo, const float *x, float *y) {
    RC_ASSERT(n >= 0 && c >= 0 && h >= 1 && w >= 1 && ho >= 1 && wo >= 1);
    ups_forward(n, c, h, w, ho, wo, 1, x, NULL, 0, y, NULL);
}

// dy: (N, C, Ho, Wo) -> dx: (N, C, H, W)
void rc_upsample_backward(int n, int c, int h, int w, int ho, int wo, const float *dy, float *dx, int dx_acc) {
    RC_ASSERT(n >= 0 && c >= 0 && h >= 1 && w >= 1 && ho >= 1 && wo >= 1);
    ups_backward(n, c, h, w, ho, wo, 1, dy, NULL, 0, dx, dx_acc);
}

// x: (N, C/16, H, W, 16) -> y: (N, C/16, Ho, Wo, 16), or plain
void rc_upsample_forward_l(int n, int c, int h, int w, int ho, int wo, int layout, const float *x, float *y) {
    RC_ASSERT(n >= 0 && c >= (layout == RC_LAYOUT_NCHW ? 0 : 1) && h >= 1 && w >= 1 && ho >= 1 && wo >= 1);
    ups_forward(n, c, h, w, ho, wo, lanes_of(layout), x, NULL, 0, y, NULL);
}

// dy: (N, C/16, Ho, Wo, 16) -> dx: (N, C/16, H, W, 16), or plain
void rc_upsample_backward_l(int n, int c, int h, int w, int ho, int wo, int layout, const float *dy, float *dx,
                            int dx_acc) {
    RC_ASSERT(n >= 0 && c >= (layout == RC_LAYOUT_NCHW ? 0 : 1) && h >= 1 && w >= 1 && ho >= 1 && wo >= 1);
    ups_backward(n, c, h, w, ho, wo, lanes_of(layout), dy, NULL, 0, dx, dx_acc);
}

// z: (N, C, H, W), r: (N, C, Ho, Wo) -> y = relu?(r + upsample(z)): (N, C, Ho, Wo); plain or nChw16c
void rc_upsample_add_forward_l(int n, int c, int h, int w, int ho, int wo, int layout, const float *z, const float *r,
                               int relu, float *y) {
    RC_ASSERT(n >= 0 && c >= 1 && h >= 1 && w >= 1 && ho >= 1 && wo >= 1 && z && r && y);
    ups_forward(n, c, h, w, ho, wo, lanes_of(layout), z, r, relu, y, NULL);
}

void rc_upsample_add_forward_stats(int n, int c, int h, int w, int ho, int wo, int layout, const float *z,
                                   const float *r, float *y, double *isum) {
    RC_ASSERT(n >= 1 && c >= 1 && h >= 1 && w >= 1 && ho >= 1 && wo >= 1 && z && r && y && isum);
    ups_forward(n, c, h, w, ho, wo, lanes_of(layout), z, r, 0, y, isum);
}

// dy: (N, C, Ho, Wo) -> dr: (N, C, Ho, Wo), dz: (N, C, H, W); plain or nChw16c; dr or dz may be NULL
void rc_upsample_add_backward_l(int n, int c, int h, int w, int ho, int wo, int layout, const float *dy, float *dr,
                                int dr_acc, float *dz, int dz_acc) {
    RC_ASSERT(n >= 0 && c >= 1 && h >= 1 && w >= 1 && ho >= 1 && wo >= 1 && dy && dr != dy);
    ups_backward(n, c, h, w, ho, wo, lanes_of(layout), dy, dr, dr_acc, dz, dz_acc);
}
