/* wino.h — what the two Winograd convolution files share (conv2d_wino.c: forward and backward-data;
 * conv2d_wgrad.c: backward-weights): 16-lane float vectors (AVX-512, or a portable struct elsewhere),
 * the input transform B^T d B of 3x3 Winograd for 2x2 and 4x4 output tiles over nChw16c activations,
 * and the register-blocked matrix-product micro-kernels. Internal to src/ops. */
#ifndef RC_WINO_H
#define RC_WINO_H

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#ifdef __AVX512F__
#include <immintrin.h>
#endif
#include "base/common.h"
#include "base/omp.h"

/* ---- 16-lane float vectors ---- */
#ifdef __AVX512F__
typedef __m512 vf;
static inline vf vload(const float *p) { return _mm512_loadu_ps(p); }
static inline void vstore(float *p, vf a) { _mm512_storeu_ps(p, a); }
static inline vf vzero(void) { return _mm512_setzero_ps(); }
static inline vf vadd(vf a, vf b) { return _mm512_add_ps(a, b); }
static inline vf vsub(vf a, vf b) { return _mm512_sub_ps(a, b); }
static inline vf vbcast(const float *p) { return _mm512_set1_ps(*p); }
static inline vf vfma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
static inline vf vfmac(vf a, float s, vf c) { return _mm512_fmadd_ps(a, _mm512_set1_ps(s), c); }
static inline vf vmax0(vf a) { return _mm512_max_ps(a, _mm512_setzero_ps()); }
#else
typedef struct {
    float f[16];
} vf;
static inline vf vload(const float *p) {
    vf r;
    memcpy(r.f, p, sizeof r.f);
    return r;
}
static inline void vstore(float *p, vf a) { memcpy(p, a.f, sizeof a.f); }
static inline vf vzero(void) {
    vf r;
    memset(&r, 0, sizeof r);
    return r;
}
static inline vf vadd(vf a, vf b) {
    for (int i = 0; i < 16; i++) a.f[i] += b.f[i];
    return a;
}
static inline vf vsub(vf a, vf b) {
    for (int i = 0; i < 16; i++) a.f[i] -= b.f[i];
    return a;
}
static inline vf vbcast(const float *p) {
    vf r;
    for (int i = 0; i < 16; i++) r.f[i] = *p;
    return r;
}
static inline vf vfma(vf a, vf b, vf c) {
    for (int i = 0; i < 16; i++) c.f[i] += a.f[i] * b.f[i];
    return c;
}
static inline vf vfmac(vf a, float s, vf c) {
    for (int i = 0; i < 16; i++) c.f[i] += a.f[i] * s;
    return c;
}
static inline vf vmax0(vf a) {
    for (int i = 0; i < 16; i++) a.f[i] = a.f[i] > 0.0f ? a.f[i] : 0.0f;
    return a;
}
#endif

/* Per-lane double sums of 16-lane float vectors and of their squares (the batch-norm statistics a
 * convolution's epilogue collects, conv2d_wino.c): vstat_add folds one vector in, vstat_store adds the
 * sums to sum[0..16) and sq[0..16). */
#ifdef __AVX512F__
typedef struct {
    __m512d s0, s1, q0, q1;
} vstat;
static inline void vstat_zero(vstat *a) { a->s0 = a->s1 = a->q0 = a->q1 = _mm512_setzero_pd(); }
static inline void vstat_add(vstat *a, vf v) {
    const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
    const __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    a->s0 = _mm512_add_pd(a->s0, lo);
    a->s1 = _mm512_add_pd(a->s1, hi);
    a->q0 = _mm512_fmadd_pd(lo, lo, a->q0);
    a->q1 = _mm512_fmadd_pd(hi, hi, a->q1);
}
static inline void vstat_store(const vstat *a, double *sum, double *sq) {
    double t[4][8];
    _mm512_storeu_pd(t[0], a->s0);
    _mm512_storeu_pd(t[1], a->s1);
    _mm512_storeu_pd(t[2], a->q0);
    _mm512_storeu_pd(t[3], a->q1);
    for (int l = 0; l < 8; l++) {
        sum[l] += t[0][l];
        sum[l + 8] += t[1][l];
        sq[l] += t[2][l];
        sq[l + 8] += t[3][l];
    }
}
#else
typedef struct {
    double s[16], q[16];
} vstat;
static inline void vstat_zero(vstat *a) { memset(a, 0, sizeof *a); }
static inline void vstat_add(vstat *a, vf v) {
    for (int l = 0; l < 16; l++) {
        const double x = v.f[l];
        a->s[l] += x;
        a->q[l] += x * x;
    }
}
static inline void vstat_store(const vstat *a, double *sum, double *sq) {
    for (int l = 0; l < 16; l++) {
        sum[l] += a->s[l];
        sq[l] += a->q[l];
    }
}
#endif

/* *buf grown to hold at least floats (64-byte aligned; grown buffers are not copied, never shrunk). */
static inline float *wino_grow(float **buf, size_t *cap, size_t floats) {
    if (floats > *cap) {
        rc_afree(*buf);
        *buf = rc_aalloc_floats(floats);
        RC_ASSERT(*buf != NULL);
        *cap = floats;
    }
    return *buf;
}

#define WINO_MAX_NXI 36 /* transform points: (m + 2)^2 for tiles of m x m outputs, m = 2 or 4 */

/* The tile size m (outputs per side) for an H x W image: *forced < 0 means not yet read from the
 * environment variable env ("2" or "4"; anything else: automatic, 0). Automatic is 4 when the image is a
 * multiple of 4 both ways (fewer multiplies), else 2 (4x4 tiles would waste the border: 31% on 14x14). */
static inline int wino_pick_tile(int *forced, const char *env, int h, int w) {
    if (*forced < 0) {
        const char *e = getenv(env);
        *forced = e && !strcmp(e, "2") ? 2 : e && !strcmp(e, "4") ? 4 : 0;
    }
    return *forced ? *forced : h % 4 == 0 && w % 4 == 0 ? 4 : 2;
}

/* The tiling of one H x W image: th x tw tiles of m x m outputs (alpha = m + 2 inputs per side, nxi =
 * alpha^2 transform points), cut into nband work items of br tile rows (at most tcap = br tw tiles, about
 * target tiles per item). */
typedef struct {
    int m, alpha, nxi, th, tw, br, nband, tcap;
} wino_tiling;

static inline wino_tiling wino_make_tiling(int m, int h, int w, int target) {
    wino_tiling t;
    t.m = m;
    t.alpha = m + 2;
    t.nxi = t.alpha * t.alpha;
    t.th = (h + m - 1) / m;
    t.tw = (w + m - 1) / m;
    t.br = (target + t.tw - 1) / t.tw;
    if (t.br > t.th) t.br = t.th;
    t.nband = (t.th + t.br - 1) / t.br;
    t.tcap = t.br * t.tw;
    return t;
}

/* Work item it of a batch: image *img, tile rows [*a0, *a1). */
static inline void wino_item(const wino_tiling *t, long it, int *img, int *a0, int *a1) {
    *img = (int)(it / t->nband);
    *a0 = (int)(it % t->nband) * t->br;
    *a1 = *a0 + t->br < t->th ? *a0 + t->br : t->th;
}

/* B^T of F(2x2, 3x3) on 4 inputs; of F(4x4, 3x3) (points 0, 1, -1, 2, -2, infinity) on 6. */
static inline void wino_bt4(const vf *p, vf *o) {
    o[0] = vsub(p[0], p[2]);
    o[1] = vadd(p[1], p[2]);
    o[2] = vsub(p[2], p[1]);
    o[3] = vsub(p[1], p[3]);
}
static inline void wino_bt6(const vf *p, vf *o) {
    const vf t1 = vfmac(p[2], -4.0f, p[4]), t2 = vfmac(p[1], -4.0f, p[3]);
    const vf t3 = vsub(p[4], p[2]), t4 = vfmac(vsub(p[3], p[1]), 2.0f, vzero());
    o[0] = vfmac(p[0], 4.0f, vfmac(p[2], -5.0f, p[4]));
    o[1] = vadd(t1, t2);
    o[2] = vsub(t1, t2);
    o[3] = vadd(t3, t4);
    o[4] = vsub(t3, t4);
    o[5] = vfmac(p[1], 4.0f, vfmac(p[3], -5.0f, p[5]));
}

/* V[xi][t][c] (xi stride sxi floats, tile stride C) = (B^T d B)[xi], d the (m+2)x(m+2) patch of image xn
 * (C channels, nChw16c, H x W) at (m a - 1, m b - 1), zero outside the image, for the tiles of rows
 * [a0, a1) (tw per row). Inline with a constant m so that its arrays live in registers. */
static inline __attribute__((always_inline)) void wino_transform_in(int C, int H, int W, int tw, const float *xn,
                                                                    int a0, int a1, float *V, size_t sxi,
                                                                    const int m) {
    const int al = m + 2;
    const size_t hw = (size_t)H * W;
    for (int cb = 0; cb < C / 16; cb++) {
        const float *xc = xn + (size_t)cb * hw * 16;
        float *vc = V + (size_t)cb * 16;
        int t = 0;
        for (int a = a0; a < a1; a++) {
            for (int b = 0; b < tw; b++, t++) {
                vf p[6][6], e[6][6], col[6], r[6];
                const int h0 = m * a - 1, w0 = m * b - 1;
                if (h0 >= 0 && h0 + al <= H && w0 >= 0 && w0 + al <= W) { /* inside: no checks */
                    const float *q = xc + ((size_t)h0 * W + w0) * 16;
                    for (int i = 0; i < al; i++)
                        for (int j = 0; j < al; j++) p[i][j] = vload(q + ((size_t)i * W + j) * 16);
                } else {
                    for (int i = 0; i < al; i++) {
                        const int h = h0 + i;
                        for (int j = 0; j < al; j++) {
                            const int w = w0 + j;
                            p[i][j] = (h >= 0 && h < H && w >= 0 && w < W) ? vload(xc + ((size_t)h * W + w) * 16)
                                                                           : vzero();
                        }
                    }
                }
                for (int j = 0; j < al; j++) { /* B^T on the rows */
                    for (int i = 0; i < al; i++) col[i] = p[i][j];
                    if (m == 2) wino_bt4(col, r); else wino_bt6(col, r);
                    for (int i = 0; i < al; i++) e[i][j] = r[i];
                }
                float *o = vc + (size_t)t * C;
                for (int i = 0; i < al; i++) { /* B on the columns */
                    if (m == 2) wino_bt4(e[i], r); else wino_bt6(e[i], r);
                    for (int j = 0; j < al; j++) vstore(o + (size_t)(al * i + j) * sxi, r[j]);
                }
            }
        }
    }
}

/* The micro-kernels: Out[r][16 j] (+)= sum over red < nred of A[red sa + r sr] B[red ldb + 16 j], for
 * r < R rows and j < NV vectors, R NV accumulators held in registers (load = 0: start from zero). */
#define WINO_DEFINE_KERNEL(R, NV)                                                                           \
    static void wino_kernel_##R##_##NV(int nred, const float *A, size_t sa, size_t sr, const float *B,     \
                                       size_t ldb, float *Out, size_t ldo, int load) {                     \
        vf acc[R][NV];                                                                                      \
        const float *ar[R];                                                                                 \
        for (int r = 0; r < R; r++) {                                                                       \
            ar[r] = A + r * sr;                                                                             \
            for (int j = 0; j < NV; j++) acc[r][j] = load ? vload(Out + r * ldo + 16 * j) : vzero();       \
        }                                                                                                   \
        for (int red = 0; red < nred; red++) {                                                              \
            vf v[NV];                                                                                       \
            for (int j = 0; j < NV; j++) v[j] = vload(B + red * ldb + 16 * j);                              \
            for (int r = 0; r < R; r++) {                                                                   \
                const vf s = vbcast(ar[r] + red * sa);                                                      \
                for (int j = 0; j < NV; j++) acc[r][j] = vfma(s, v[j], acc[r][j]);                          \
            }                                                                                               \
        }                                                                                                   \
        for (int r = 0; r < R; r++)                                                                         \
            for (int j = 0; j < NV; j++) vstore(Out + r * ldo + 16 * j, acc[r][j]);                         \
    }

#endif
