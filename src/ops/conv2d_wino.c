/* conv2d_wino.c — forward and backward-data of a 3x3, stride-1, pad-1 convolution on blocked (nChw16c)
 * activations by Winograd's minimal filtering, recur's own kernel for the fast path (the weight
 * gradient is conv2d_wgrad.c).
 *
 * F(m x m, 3x3) computes an m x m tile of outputs from the (m+2)x(m+2) input patch at (m a - 1, m b - 1):
 *     y_tile = A^T [ sum over c of (G g_kc G^T) (.) (B^T d_c B) ] A
 * per output channel k. With the transformed weights Wt[xi][c][k] and inputs V[xi][t][c] (xi the
 * (m+2)^2 transform points, t the tile) the sum is a matrix product per point, M[xi] (tiles x K) =
 * V[xi] Wt[xi], followed by the output transform per tile. m = 4 (F(4x4, 3x3), points 0, +-1, +-2,
 * infinity) does 36 multiply-adds per 16 outputs and (k, c), where the direct sum does 144; m = 2
 * (F(2x2, 3x3)) does 16 per 4. Backward-data is the same convolution of dy with the weights flipped and
 * transposed (dx[c] = sum over k of dy[k] correlated with w[k][c] rotated 180 degrees).
 *
 * The weight transform runs once per weight tensor and content: a small cache keeps the transformed
 * weights with a copy of the weights they came from, compared at every call (a tied weight is used by
 * every iteration and every micro-batch of a pass, and changes only at the optimizer step). Work: items
 * of (image, band of tile rows) split statically over the threads, each item's V and M in the thread's
 * L2; the result does not depend on the thread count (each output is computed by one thread, in one
 * order). */
#include <string.h>

#include "base/common.h"
#include "ops/conv2d_wino.h"
#include "ops/wino.h"

int rc_conv2d_wino_ok(const rc_conv_dims *d) {
    return d->groups == 1 && d->r == 3 && d->stride == 1 && d->pad == 1 && d->x_layout == RC_LAYOUT_BLK16 &&
           d->y_layout == RC_LAYOUT_BLK16 && d->c % 16 == 0 && d->k % 16 == 0;
}

static int g_tile = -1; /* -1: not read yet; 0 automatic; 2 or 4 forced (RECUR_WINO_TILE) */

int rc_conv2d_wino_set_tile(int m) {
    RC_ASSERT(m == 0 || m == 2 || m == 4);
    int old = g_tile;
    g_tile = m;
    return old < 0 ? 0 : old;
}

/* Tile size (wino_pick_tile): 4x4 on 28x28, 2x2 on 14x14, where timing the forward alone (64 -> 64
 * channels, N=16, 2 threads) gave 830-851 GFLOP/s with 2x2 tiles and 739-773 with 4x4 (docs/PERFORMANCE.md);
 * `build/conv_bench --own` compares every pass with oneDNN's. */
static int pick_tile(int h, int w) { return wino_pick_tile(&g_tile, "RECUR_WINO_TILE", h, w); }

/* ---- transformed-weight cache ---- */
#define WT_SLOTS 64
typedef struct {
    const void *src;  /* the weight tensor's key (its address, or the caller's), with the shape fields */
    int kout, cin, flip, m;
    float *copy;      /* its contents when transformed */
    float *wt;        /* Wt[xi][ci][co] */
    unsigned long used;
} wt_slot;
static wt_slot g_wt[WT_SLOTS];
static unsigned long g_clock;
/* Bytes the slots hold, kept under WT_CAP_BYTES (a net of many wide convolutions would otherwise keep 64
 * transformed copies; 256 -> 256 channels take 11.8 MB each). */
#define WT_CAP_BYTES ((size_t)96 << 20)
static size_t g_wt_bytes;

/* Floats a slot holds: the weights' copy (kout cin 9) and their transform ((m+2)^2 cin kout). */
static size_t slot_floats(int kout, int cin, int m) {
    return (size_t)kout * cin * 9 + (size_t)(m + 2) * (m + 2) * cin * kout;
}

static void slot_free(wt_slot *e) {
    if (e->wt) g_wt_bytes -= slot_floats(e->kout, e->cin, e->m) * sizeof(float);
    rc_afree(e->copy);
    rc_afree(e->wt);
    memset(e, 0, sizeof *e);
}

/* Per-thread buffers; the statistics epilogue's per-item sums, doubles in floats' memory (grown, never
 * shrunk). */
static float *g_buf, *g_st;
static size_t g_cap, g_st_cap;

void rc_conv2d_wino_release(void) {
    for (int i = 0; i < WT_SLOTS; i++) slot_free(&g_wt[i]);
    rc_afree(g_buf);
    g_buf = NULL;
    g_cap = 0;
    rc_afree(g_st);
    g_st = NULL;
    g_st_cap = 0;
}

/* G g for one 3-tap column, 16 lanes: F(2x2, 3x3) gives 4 values, F(4x4, 3x3) 6. */
static void g_apply(int m, const float (*g)[16], float (*o)[16]) {
    for (int l = 0; l < 16; l++) {
        const float g0 = g[0][l], g1 = g[1][l], g2 = g[2][l];
        if (m == 2) {
            o[0][l] = g0;
            o[1][l] = 0.5f * (g0 + g1 + g2);
            o[2][l] = 0.5f * (g0 - g1 + g2);
            o[3][l] = g2;
        } else {
            const float r6 = 1.0f / 6.0f, s = g0 + g2, q = 0.25f * g0 + g2;
            o[0][l] = 0.25f * g0;
            o[1][l] = -(s + g1) * r6;
            o[2][l] = -(s - g1) * r6;
            o[3][l] = (q + 0.5f * g1) * r6; /* g0/24 + g1/12 + g2/6 */
            o[4][l] = (q - 0.5f * g1) * r6;
            o[5][l] = g2;
        }
    }
}

/* Wt[xi][ci][co] = (G g G^T)[xi] for output channel co and input channel ci, g the 3x3 kernel
 * w[co][ci] (flip = 0, w is (kout, cin, 3, 3)) or w[ci][co] rotated 180 degrees (flip = 1, w is
 * (cin, kout, 3, 3): backward-data). Vectorised over 16 output channels. */
static void transform_weights(int kout, int cin, int flip, int m, const float *w, float *wt) {
    const int al = m + 2, nco = kout / 16;
#pragma omp parallel for schedule(static)
    for (int job = 0; job < cin * nco; job++) {
        const int ci = job / nco, co0 = (job % nco) * 16;
        float g[3][3][16], col[3][16], gc[6][16], t[6][3][16], row[3][16], out[6][16];
        for (int p = 0; p < 3; p++)
            for (int q = 0; q < 3; q++)
                for (int l = 0; l < 16; l++) {
                    const int co = co0 + l;
                    g[p][q][l] = flip ? w[((size_t)ci * kout + co) * 9 + (2 - p) * 3 + (2 - q)]
                                      : w[((size_t)co * cin + ci) * 9 + p * 3 + q];
                }
        for (int q = 0; q < 3; q++) { /* G on the columns of g: t[i][q] */
            for (int p = 0; p < 3; p++) memcpy(col[p], g[p][q], sizeof col[p]);
            g_apply(m, (const float(*)[16])col, gc);
            for (int i = 0; i < al; i++) memcpy(t[i][q], gc[i], sizeof gc[i]);
        }
        for (int i = 0; i < al; i++) { /* G^T on the rows: Wt[i][j] */
            for (int q = 0; q < 3; q++) memcpy(row[q], t[i][q], sizeof row[q]);
            g_apply(m, (const float(*)[16])row, out);
            for (int j = 0; j < al; j++)
                memcpy(wt + ((size_t)(al * i + j) * cin + ci) * kout + co0, out[j], sizeof out[j]);
        }
    }
}

/* The transformed weights of w for this use, from the cache when w's contents have not changed. key names
 * the slot: w itself, or the caller's key for weights computed into a scratch buffer (folded batch norm);
 * flip 2 marks such derived weights apart from the tensor's own. */
static const float *get_wt(const void *key, int kout, int cin, int flip, int m, const float *w) {
    const size_t nw = (size_t)kout * cin * 9, nwt = (size_t)(m + 2) * (m + 2) * cin * kout;
    wt_slot *s = NULL, *lru = &g_wt[0];
    for (int i = 0; i < WT_SLOTS; i++) {
        wt_slot *e = &g_wt[i];
        if (e->src == key && e->kout == kout && e->cin == cin && e->flip == flip && e->m == m) {
            s = e;
            break;
        }
        if (e->used < lru->used) lru = e;
    }
    g_clock++;
    if (s && memcmp(s->copy, w, nw * sizeof *w) == 0) {
        s->used = g_clock;
        return s->wt;
    }
    if (!s) { /* take the least recently used slot; then free others, oldest first, to stay under the cap */
        s = lru;
        slot_free(s);
        for (;;) {
            wt_slot *old = NULL;
            for (int i = 0; i < WT_SLOTS; i++)
                if (g_wt[i].wt && (!old || g_wt[i].used < old->used)) old = &g_wt[i];
            if (!old || g_wt_bytes + slot_floats(kout, cin, m) * sizeof(float) <= WT_CAP_BYTES) break;
            slot_free(old);
        }
        g_wt_bytes += slot_floats(kout, cin, m) * sizeof(float);
        s->copy = rc_aalloc_floats(nw);
        s->wt = rc_aalloc_floats(nwt);
        RC_ASSERT(s->copy != NULL && s->wt != NULL);
        s->src = key, s->kout = kout, s->cin = cin, s->flip = flip, s->m = m;
    }
    memcpy(s->copy, w, nw * sizeof *w);
    transform_weights(kout, cin, flip == 1, m, w, s->wt);
    s->used = g_clock;
    return s->wt;
}

/* A^T of F(2x2, 3x3) on 4 values, of F(4x4, 3x3) on 6. */
static inline void at4(const vf *s, vf *o) {
    o[0] = vadd(vadd(s[0], s[1]), s[2]);
    o[1] = vsub(vsub(s[1], s[2]), s[3]);
}
static inline void at6(const vf *s, vf *o) {
    const vf a = vadd(s[1], s[2]), b = vsub(s[1], s[2]), c = vadd(s[3], s[4]), e = vsub(s[3], s[4]);
    o[0] = vadd(vadd(s[0], a), c);
    o[1] = vfmac(e, 2.0f, b);
    o[2] = vfmac(c, 4.0f, a);
    o[3] = vadd(vfmac(e, 8.0f, b), s[5]);
}

/* out (nChw16c, kout channels, H x W) = or += A^T M A (+ bias) (+ r, same layout as out) (then relu) for the
 * tiles of rows [a0, a1), M[xi][t][k] (xi stride sxi). st (non-NULL, not with acc): st[k] += the sum of the
 * values written to channel k, st[kout + k] += the sum of their squares (in double, tile by tile). */
static inline __attribute__((always_inline)) void transform_out_m(int kout, int H, int W, int tw, const float *M,
                                                                  size_t sxi, const float *bias, const float *r,
                                                                  int relu, int acc, int a0, int a1, float *out,
                                                                  double *st, const int m) {
    const int al = m + 2;
    const size_t hw = (size_t)H * W;
    for (int kb = 0; kb < kout / 16; kb++) {
        float *ok = out + (size_t)kb * hw * 16;
        const float *rk = r ? r + (size_t)kb * hw * 16 : NULL;
        const vf bv = bias ? vload(bias + 16 * kb) : vzero();
        vstat sa;
        vstat_zero(&sa);
        int t = 0;
        for (int a = a0; a < a1; a++) {
            for (int b = 0; b < tw; b++, t++) {
                const float *mt = M + (size_t)t * kout + 16 * kb;
                vf e[4][6], col[6], o[4];
                for (int j = 0; j < al; j++) { /* A^T on the rows */
                    for (int i = 0; i < al; i++) col[i] = vload(mt + (size_t)(al * i + j) * sxi);
                    if (m == 2) at4(col, o); else at6(col, o);
                    for (int i = 0; i < m; i++) e[i][j] = o[i];
                }
                for (int i = 0; i < m; i++) { /* A on the columns */
                    const int h = m * a + i;
                    if (m == 2) at4(e[i], o); else at6(e[i], o);
                    if (h >= H) continue;
                    for (int j = 0; j < m; j++) {
                        const int w = m * b + j;
                        if (w >= W) continue;
                        const size_t off = ((size_t)h * W + w) * 16;
                        vf v = vadd(o[j], bv);
                        if (rk) v = vadd(v, vload(rk + off));
                        if (relu) v = vmax0(v);
                        if (st) vstat_add(&sa, v);
                        vstore(ok + off, acc ? vadd(vload(ok + off), v) : v);
                    }
                }
            }
        }
        if (st) vstat_store(&sa, st + 16 * kb, st + kout + 16 * kb);
    }
}

WINO_DEFINE_KERNEL(1, 2)
WINO_DEFINE_KERNEL(2, 2)
WINO_DEFINE_KERNEL(3, 2)
WINO_DEFINE_KERNEL(4, 2)
WINO_DEFINE_KERNEL(5, 2)
WINO_DEFINE_KERNEL(6, 2)
WINO_DEFINE_KERNEL(7, 2)
WINO_DEFINE_KERNEL(8, 2)
WINO_DEFINE_KERNEL(1, 1)
WINO_DEFINE_KERNEL(2, 1)
WINO_DEFINE_KERNEL(3, 1)
WINO_DEFINE_KERNEL(4, 1)
WINO_DEFINE_KERNEL(5, 1)
WINO_DEFINE_KERNEL(6, 1)
WINO_DEFINE_KERNEL(7, 1)
WINO_DEFINE_KERNEL(8, 1)

typedef void (*kernel_fn)(int, const float *, size_t, size_t, const float *, size_t, float *, size_t, int);
static const kernel_fn g_kern[9][3] = {
    {NULL, NULL, NULL},
    {NULL, wino_kernel_1_1, wino_kernel_1_2}, {NULL, wino_kernel_2_1, wino_kernel_2_2},
    {NULL, wino_kernel_3_1, wino_kernel_3_2}, {NULL, wino_kernel_4_1, wino_kernel_4_2},
    {NULL, wino_kernel_5_1, wino_kernel_5_2}, {NULL, wino_kernel_6_1, wino_kernel_6_2},
    {NULL, wino_kernel_7_1, wino_kernel_7_2}, {NULL, wino_kernel_8_1, wino_kernel_8_2},
};

/* M[xi] (T x kout) = V[xi] (T x cin) Wt[xi] (cin x kout) for every point: rows in blocks of at most 8
 * tiles, spread evenly (49 tiles: 7 blocks of 7), columns in 32s and a 16. */
static void multiply(int nxi, int cin, int kout, int T, size_t tcap, const float *V, const float *Wt, float *M) {
    const int nblk = (T + 7) / 8;
    for (int xi = 0; xi < nxi; xi++) {
        const float *v = V + (size_t)xi * tcap * cin, *w = Wt + (size_t)xi * cin * kout;
        float *mx = M + (size_t)xi * tcap * kout;
        for (int bi = 0; bi < nblk; bi++) {
            const int t0 = T * bi / nblk, R = T * (bi + 1) / nblk - t0;
            int k0 = 0;
            for (; k0 + 32 <= kout; k0 += 32)
                g_kern[R][2](cin, v + (size_t)t0 * cin, 1, (size_t)cin, w + k0, (size_t)kout,
                             mx + (size_t)t0 * kout + k0, (size_t)kout, 0);
            for (; k0 < kout; k0 += 16)
                g_kern[R][1](cin, v + (size_t)t0 * cin, 1, (size_t)cin, w + k0, (size_t)kout,
                             mx + (size_t)t0 * kout + k0, (size_t)kout, 0);
        }
    }
}

/* out (n, kout, H, W) = or += conv3x3(in (n, cin, H, W)) with transformed weights wt (+ bias) (+ r) (relu).
 * isum (non-NULL, not with acc): isum[i * 2 kout + k] = the sum over image i's positions of out's channel k,
 * isum[i * 2 kout + kout + k] = the sum of squares; each item sums its tiles in order, each image its items
 * (bands) in order, so the sums do not depend on the thread count. */
static void conv(int n, int cin, int kout, int H, int W, int m, const float *in, const float *wt, const float *bias,
                 const float *r, int relu, int acc, float *out, double *isum) {
    const wino_tiling tl = wino_make_tiling(m, H, W, 48); /* about 48 tiles per item */
    const int nxi = tl.nxi, tw = tl.tw, tcap = tl.tcap;
    const int nthr = rc_omp_threads();
    const size_t per = ((size_t)nxi * tcap * (cin + kout) + 15) / 16 * 16;
    float *const buf = wino_grow(&g_buf, &g_cap, (size_t)nthr * per);
    const long nitems = (long)n * tl.nband;
    const size_t in_img = (size_t)cin * H * W, out_img = (size_t)kout * H * W;
    RC_ASSERT(!isum || !acc);
    double *const st = isum ? (double *)(void *)wino_grow(&g_st, &g_st_cap, 2 * (size_t)nitems * 2 * kout) : NULL;
#pragma omp parallel num_threads(nthr)
    {
        int tid, nt;
        rc_omp_team(&tid, &nt);
        float *V = buf + (size_t)tid * per, *M = V + (size_t)nxi * tcap * cin;
        const long i0 = nitems * tid / nt, i1 = nitems * (tid + 1) / nt;
        for (long it = i0; it < i1; it++) {
            int img, a0, a1;
            wino_item(&tl, it, &img, &a0, &a1);
            const int T = (a1 - a0) * tw;
            const float *xin = in + (size_t)img * in_img;
            float *yo = out + (size_t)img * out_img;
            const float *ro = r ? r + (size_t)img * out_img : NULL;
            double *so = st ? st + (size_t)it * 2 * kout : NULL;
            if (so) memset(so, 0, 2 * (size_t)kout * sizeof *so);
            if (m == 2) {
                wino_transform_in(cin, H, W, tw, xin, a0, a1, V, (size_t)tcap * cin, 2);
                multiply(nxi, cin, kout, T, (size_t)tcap, V, wt, M);
                transform_out_m(kout, H, W, tw, M, (size_t)tcap * kout, bias, ro, relu, acc, a0, a1, yo, so, 2);
            } else {
                wino_transform_in(cin, H, W, tw, xin, a0, a1, V, (size_t)tcap * cin, 4);
                multiply(nxi, cin, kout, T, (size_t)tcap, V, wt, M);
                transform_out_m(kout, H, W, tw, M, (size_t)tcap * kout, bias, ro, relu, acc, a0, a1, yo, so, 4);
            }
        }
    }
    if (!isum) return;
    for (int i = 0; i < n; i++) { /* each image's items in order */
        double *d = isum + (size_t)i * 2 * kout;
        const double *s = st + (size_t)i * tl.nband * 2 * kout;
        memcpy(d, s, 2 * (size_t)kout * sizeof *d);
        for (int b = 1; b < tl.nband; b++)
            for (int k = 0; k < 2 * kout; k++) d[k] += s[(size_t)b * 2 * kout + k];
    }
}

void rc_conv2d_wino_forward(const rc_conv_dims *d, const float *x, const float *w, const float *b, const float *r,
                            float *y) {
    rc_conv2d_wino_forward_ep(d, x, w, w, b, r, 0, y);
}

void rc_conv2d_wino_forward_ep(const rc_conv_dims *d, const float *x, const float *w, const void *wkey,
                               const float *b, const float *r, int relu, float *y) {
    RC_ASSERT(rc_conv2d_wino_ok(d));
    const int m = pick_tile(d->h, d->w);
    conv(d->n, d->c, d->k, d->h, d->w, m, x, get_wt(wkey, d->k, d->c, wkey == w ? 0 : 2, m, w), b, r, relu, 0, y,
         NULL);
}

void rc_conv2d_wino_forward_stats(const rc_conv_dims *d, const float *x, const float *w, const float *b,
                                  const float *r, float *y, double *isum) {
    RC_ASSERT(rc_conv2d_wino_ok(d) && isum != NULL);
    const int m = pick_tile(d->h, d->w);
    conv(d->n, d->c, d->k, d->h, d->w, m, x, get_wt(w, d->k, d->c, 0, m, w), b, r, 0, 0, y, isum);
}

void rc_conv2d_wino_backward_data(const rc_conv_dims *d, const float *w, const float *dy, float *dx, int dx_acc) {
    RC_ASSERT(rc_conv2d_wino_ok(d));
    const int m = pick_tile(d->h, d->w);
    conv(d->n, d->k, d->c, d->h, d->w, m, dy, get_wt(w, d->c, d->k, 1, m, w), NULL, NULL, 0, dx_acc, dx, NULL);
}
