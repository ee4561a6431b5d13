/* conv2d_wgrad.c — the weight gradient of a 3x3, stride-1, pad-1 convolution on blocked (nChw16c)
 * activations by Winograd's minimal filtering: the backward-weights pass of the fast path.
 *
 * dw[k][c][p][q] = sum over n, h, w of dy[n][k][h][w] * x[n][c][h+p-1][w+q-1] is, per image, a
 * correlation of x with dy whose "output" is the 3x3 kernel. Cut dy into 2x2 tiles; a tile at (2a, 2b)
 * sees the 4x4 patch of x starting at (2a-1, 2b-1), and its share of dw is F(3x3, 2x2), the transposed
 * twin of the forward F(2x2, 3x3) (same input transform, filter and output transforms swapped):
 *     dw_tile = G^T [ (A dy_tile A^T) (.) (B^T x_patch B) ] G
 *     A  = [1 0; 1 1; 1 -1; 0 -1]                      (4x2, dy's transform)
 *     B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]    (4x4, x's transform)
 *     G^T = [1 .5 .5 0; 0 .5 -.5 0; 0 .5 .5 1]          (3x4, the output transform)
 * The output transform is linear, so the 16 element-wise products are summed over all tiles first:
 * per transform point xi (16 of them) a matrix product M[xi] (K x C) += U[xi] (K x tiles) V[xi]^T, with
 * U, V the transformed dy and x. That is 16 multiply-adds per tile and (k, c) where the direct
 * convolution does 36 (2.25x fewer); the transforms use only adds and halves, so the result is as
 * accurate as the direct sum. With 4x4 tiles of dy and 6x6 patches of x, F(3x3, 4x4) (the twin of
 * F(4x4, 3x3), points 0, +-1, +-2, infinity) needs 36 multiply-adds per 16 outputs where the direct sum
 * does 144 (4x fewer), with transforms whose coefficients reach 1/24 (errors about 1e-6 of the largest
 * gradient). make_tiling picks the tile; tests/test_conv.c compares both with the reference.
 *
 * Work: items of (image, band of tile rows) split statically over the threads; each thread transforms
 * one item's tiles into buffers that stay in its L2 cache and accumulates its own M (16 or 36 K C floats);
 * then the threads sum their M's in a fixed order and apply the output transform, so the result depends
 * on the thread count but not on timing. Vector code: AVX-512 intrinsics, or a portable 16-lane struct
 * on other machines (same algorithm; there the selector, conv2d.c, leaves them off unless asked).
 * Measured against oneDNN 2.6's direct kernel with `build/conv_bench --own` (docs/PERFORMANCE.md). */
#include <string.h>

#include "base/common.h"
#include "ops/conv2d_wino.h"

#include "ops/wino.h"



/* Per-thread buffers (grown, never shrunk; one call at a time, like the oneDNN path's pool). */
static float *g_buf;
static size_t g_cap;
static int g_tile = -1; /* -1: not read yet; 0 automatic; 2 or 4 forced (RECUR_WGRAD_TILE, rc_conv2d_wgrad_set_tile) */

void rc_conv2d_wgrad_release(void) {
    rc_afree(g_buf);
    g_buf = NULL;
    g_cap = 0;
}

int rc_conv2d_wgrad_set_tile(int m) {
    RC_ASSERT(m == 0 || m == 2 || m == 4);
    int old = g_tile;
    g_tile = m;
    return old < 0 ? 0 : old;
}

/* m = 4 (F(3x3, 4x4): 36 points per 16 outputs, 2.25 multiplies per output and (k, c)) does 44% fewer
 * multiplies than m = 2 (16 per 4 outputs), and is the automatic choice when the image is a multiple of
 * 4 both ways: 28x28, 32->32 channels, 1020 vs 790 GFLOP/s (in direct-convolution FLOPs, 2 threads,
 * N=16). Elsewhere m = 2: on 14x14 (64 channels) 4x4 tiles waste 31% on the border and the 36 K C
 * accumulators per thread outgrow L2, 540 vs 773 GFLOP/s. */
static wino_tiling make_tiling(const rc_conv_dims *d) {
    const int m = wino_pick_tile(&g_tile, "RECUR_WGRAD_TILE", d->h, d->w);
    return wino_make_tiling(m, d->h, d->w, m == 2 ? 32 : 16); /* tiles per item: its U and V stay in L2 */
}

/* 1-D transforms of dy: A of F(2x2, 3x3) on 2 inputs, A of F(4x4, 3x3) on 4. */
static inline void a2(const vf *p, vf *o) {
    o[0] = p[0];
    o[1] = vadd(p[0], p[1]);
    o[2] = vsub(p[0], p[1]);
    o[3] = vsub(vzero(), p[1]);
}
static inline void a4(const vf *p, vf *o) {
    const vf s0 = vadd(p[0], p[2]), s1 = vadd(p[1], p[3]);
    const vf r0 = vfmac(p[2], 4.0f, p[0]), r1 = vfmac(p[3], 8.0f, vfmac(p[1], 2.0f, vzero()));
    o[0] = p[0];
    o[1] = vadd(s0, s1);
    o[2] = vsub(s0, s1);
    o[3] = vadd(r0, r1);
    o[4] = vsub(r0, r1);
    o[5] = p[3];
}

/* U[xi][t][k] = (A dy_tile A^T)[xi] for the tiles of rows [a0, a1) of image dyn (nKhw16k), zero
 * outside the image. */
static inline __attribute__((always_inline)) void transform_dy_m(const rc_conv_dims *d, const wino_tiling *tl,
                                                                  const float *dyn, int a0, int a1, float *U,
                                                                  const int m) {
    const int K = d->k, H = d->h, W = d->w, al = m + 2;
    const size_t hw = (size_t)H * W, sxi = (size_t)tl->tcap * K;
    for (int kb = 0; kb < K / 16; kb++) {
        const float *yk = dyn + (size_t)kb * hw * 16;
        float *uk = U + (size_t)kb * 16;
        int t = 0;
        for (int a = a0; a < a1; a++) {
            for (int b = 0; b < tl->tw; b++, t++) {
                vf p[4][4], e[6][4], col[4], r[6];
                for (int i = 0; i < m; i++) {
                    const int h = m * a + i;
                    for (int j = 0; j < m; j++) {
                        const int w = m * b + j;
                        p[i][j] = (h < H && w < W) ? vload(yk + ((size_t)h * W + w) * 16) : vzero();
                    }
                }
                for (int j = 0; j < m; j++) { /* A on the rows */
                    for (int i = 0; i < m; i++) col[i] = p[i][j];
                    if (m == 2) a2(col, r); else a4(col, r);
                    for (int i = 0; i < al; i++) e[i][j] = r[i];
                }
                float *o = uk + (size_t)t * K;
                for (int i = 0; i < al; i++) { /* A^T on the columns */
                    if (m == 2) a2(e[i], r); else a4(e[i], r);
                    for (int j = 0; j < al; j++) vstore(o + (size_t)(al * i + j) * sxi, r[j]);
                }
            }
        }
    }
}

/* The transforms compiled once per tile size, so that their small arrays live in registers. V[xi][t][c]
 * = (B^T x_patch B)[xi], the patch of tile (a, b) at (m a - 1, m b - 1). */
static void transform_x(const rc_conv_dims *d, const wino_tiling *tl, const float *xn, int a0, int a1, float *V) {
    const size_t sxi = (size_t)tl->tcap * d->c;
    if (tl->m == 2)
        wino_transform_in(d->c, d->h, d->w, tl->tw, xn, a0, a1, V, sxi, 2);
    else
        wino_transform_in(d->c, d->h, d->w, tl->tw, xn, a0, a1, V, sxi, 4);
}
static void transform_dy(const rc_conv_dims *d, const wino_tiling *tl, const float *dyn, int a0, int a1, float *U) {
    if (tl->m == 2)
        transform_dy_m(d, tl, dyn, a0, a1, U, 2);
    else
        transform_dy_m(d, tl, dyn, a0, a1, U, 4);
}

WINO_DEFINE_KERNEL(8, 1)
WINO_DEFINE_KERNEL(8, 2)

/* M[xi] (K x C) += U[xi] V[xi]^T over T tiles, for every transform point xi. */
static void accumulate(int nxi, int K, int C, int T, size_t tcap, const float *U, const float *V, float *M) {
    for (int xi = 0; xi < nxi; xi++) {
        const float *u = U + (size_t)xi * tcap * K, *v = V + (size_t)xi * tcap * C;
        float *mx = M + (size_t)xi * K * C;
        for (int k0 = 0; k0 < K; k0 += 8) { /* rows k0..k0+7 of M[xi]; reduction over the tiles */
            int c0 = 0;
            for (; c0 + 32 <= C; c0 += 32)
                wino_kernel_8_2(T, u + k0, (size_t)K, 1, v + c0, (size_t)C, mx + (size_t)k0 * C + c0, (size_t)C, 1);
            for (; c0 < C; c0 += 16)
                wino_kernel_8_1(T, u + k0, (size_t)K, 1, v + c0, (size_t)C, mx + (size_t)k0 * C + c0, (size_t)C, 1);
        }
    }
}

/* G^T of F(2x2, 3x3) on 4 values and of F(4x4, 3x3) on 6: 3 kernel taps. */
static inline void gt4(const float *m, float *o) {
    const float s = 0.5f * (m[1] + m[2]);
    o[0] = m[0] + s;
    o[1] = 0.5f * (m[1] - m[2]);
    o[2] = s + m[3];
}
static inline void gt6(const float *m, float *o) {
    const float a = m[1] + m[2], b = m[1] - m[2], c = m[3] + m[4], e = m[3] - m[4];
    const float r6 = 1.0f / 6.0f;
    o[0] = 0.25f * m[0] + (0.25f * c - a) * r6;
    o[1] = (0.5f * e - b) * r6;
    o[2] = (c - a) * r6 + m[5];
}

/* dw[k] (C, 3, 3) += G^T M[k] G for each c, M summed over the nt threads' buffers (per floats apart) in
 * thread order. M[xi = alpha i + j]: i the vertical transform point, j the horizontal. */
static void output_transform(const wino_tiling *tl, int k, int K, int C, int nt, const float *buf, size_t per,
                             float *dw) {
    const int al = tl->alpha, nxi = tl->nxi;
    for (int c0 = 0; c0 < C; c0 += 16) {
        float m[WINO_MAX_NXI][16];
        memset(m, 0, sizeof m);
        for (int th = 0; th < nt; th++)
            for (int xi = 0; xi < nxi; xi++) {
                const float *mt = buf + (size_t)th * per + ((size_t)xi * K + k) * C + c0;
                for (int l = 0; l < 16; l++) m[xi][l] += mt[l];
            }
        for (int l = 0; l < 16; l++) {
            float col[6], r[3], t[3][6];
            for (int j = 0; j < al; j++) { /* G^T on the rows */
                for (int i = 0; i < al; i++) col[i] = m[al * i + j][l];
                if (al == 4) gt4(col, r); else gt6(col, r);
                for (int p = 0; p < 3; p++) t[p][j] = r[p];
            }
            float *w = dw + ((size_t)k * C + c0 + l) * 9;
            for (int p = 0; p < 3; p++) { /* G on the columns */
                if (al == 4) gt4(t[p], r); else gt6(t[p], r);
                for (int q = 0; q < 3; q++) w[3 * p + q] += r[q];
            }
        }
    }
}

/* One call: dw += the weight gradient of d over x and dy (both nChw16c). */
void rc_conv2d_wgrad_wino(const rc_conv_dims *d, const float *x, const float *dy, float *dw) {
    RC_ASSERT(rc_conv2d_wino_ok(d));
    const int K = d->k, C = d->c;
    const wino_tiling tl = make_tiling(d);
    const int nthr = rc_omp_threads();
    const size_t mfl = (size_t)tl.nxi * K * C;
    const size_t per = (mfl + (size_t)tl.nxi * tl.tcap * (K + C) + 15) / 16 * 16;
    float *const buf = wino_grow(&g_buf, &g_cap, (size_t)nthr * per);
    const long nitems = (long)d->n * tl.nband;
    const size_t x_img = (size_t)C * d->h * d->w, y_img = (size_t)K * d->h * d->w;
    int nt_used = 1;
#pragma omp parallel num_threads(nthr)
    {
        int tid, nt;
        rc_omp_team(&tid, &nt);
#pragma omp single
        nt_used = nt;
        float *M = buf + (size_t)tid * per, *U = M + mfl, *V = U + (size_t)tl.nxi * tl.tcap * K;
        memset(M, 0, mfl * sizeof *M);
        const long i0 = nitems * tid / nt, i1 = nitems * (tid + 1) / nt;
        for (long it = i0; it < i1; it++) {
            int n, a0, a1;
            wino_item(&tl, it, &n, &a0, &a1);
            transform_x(d, &tl, x + (size_t)n * x_img, a0, a1, V);
            transform_dy(d, &tl, dy + (size_t)n * y_img, a0, a1, U);
            accumulate(tl.nxi, K, C, (a1 - a0) * tl.tw, (size_t)tl.tcap, U, V, M);
        }
#pragma omp barrier
#pragma omp for schedule(static)
        for (int k = 0; k < K; k++) output_transform(&tl, k, K, C, nt_used, buf, per, dw);
    }
}
