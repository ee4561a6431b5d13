/* lstm.c — the ConvLSTM cell of docs/CONFIG.md fused into one pass on plain or blocked activations:
 * batch norm of the gate input on the fly, sigmoid/tanh gates, cell and hidden state; backward recomputes
 * the gates, writes the gate gradient and runs batch-norm backward on it in place. exp/tanh are vmath.h's
 * branch-free polynomials, which vectorise. */
#include "ops.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "base/common.h"
#include "base/omp.h"
#include "vmath.h"

#define LSTM_PAR_MIN 16384

/* Per-block normalisation constants of the four gates: z = (a - m) * sc + sh, lanes v < V. */
typedef struct {
    float m[4][16], sc[4][16], sh[4][16];
} gate_norm;

static void block_norm(gate_norm *q, int c, int cb, int V, const float *gamma, const float *beta, const float *mean,
                       const float *rstd) {
    for (int j = 0; j < 4; j++)
        for (int v = 0; v < 16; v++) {
            int ch = j * c + cb * V + v;
            if (!mean || v >= V) {
                q->m[j][v] = 0.0f;
                q->sc[j][v] = 1.0f;
                q->sh[j][v] = 0.0f;
            } else {
                q->m[j][v] = mean[ch];
                q->sc[j][v] = (gamma ? gamma[ch] : 1.0f) * rstd[ch];
                q->sh[j][v] = beta ? beta[ch] : 0.0f;
            }
        }
}

/* One element: gate inputs z (normalised in place when bn), previous cell cp (has_cp), -> cell, h. */
RC_INLINE void fwd_elem(float zi, float zf, float zo, float zg, float cpj, int has_cp, float *cell, float *h) {
    float c = vsigmoid(zi) * vtanh(zg);
    if (has_cp) c = fmaf(vsigmoid(zf), cpj, c);
    *cell = c;
    *h = vsigmoid(zo) * vtanh(c);
}

#define NORM(z, k, v) (bn ? fmaf((z) - q->m[k][v], q->sc[k][v], q->sh[k][v]) : (z))

/* Blocked block: HW positions x 16 channel lanes; lanes are the vector. Both blocked loops prefetch 2 KB
 * ahead (rc_prefetch_ahead) on every stream, as batch norm does. */
RC_INLINE void fwd_block16(const float *a, size_t gs, const float *cp, float *cell, float *h, int hw, int bn,
                           const gate_norm *q) {
    for (int s = 0; s < hw; s++) {
        const float *as = a + (size_t)s * 16;
        const float *cps = cp ? cp + (size_t)s * 16 : NULL;
        float *cs = cell + (size_t)s * 16, *hs = h + (size_t)s * 16;
        for (int k = 0; k < 4; k++) rc_prefetch_ahead(as + k * gs);
        if (cps) rc_prefetch_ahead(cps);
#pragma omp simd
        for (int v = 0; v < 16; v++)
            fwd_elem(NORM(as[v], 0, v), NORM(as[v + gs], 1, v), NORM(as[v + 2 * gs], 2, v), NORM(as[v + 3 * gs], 3, v),
                     cps ? cps[v] : 0.0f, cps != NULL, &cs[v], &hs[v]);
    }
}

/* Plain block: one channel's HW positions; the constants are lane 0. */
RC_INLINE void fwd_block1(const float *a, size_t gs, const float *cp, float *cell, float *h, int hw, int bn,
                          const gate_norm *q) {
    if (cp) {
#pragma omp simd
        for (int s = 0; s < hw; s++)
            fwd_elem(NORM(a[s], 0, 0), NORM(a[s + gs], 1, 0), NORM(a[s + 2 * gs], 2, 0), NORM(a[s + 3 * gs], 3, 0), cp[s],
                     1, &cell[s], &h[s]);
    } else {
#pragma omp simd
        for (int s = 0; s < hw; s++)
            fwd_elem(NORM(a[s], 0, 0), 0.0f, NORM(a[s + 2 * gs], 2, 0), NORM(a[s + 3 * gs], 3, 0), 0.0f, 0, &cell[s],
                     &h[s]);
    }
}

// a: (N, 4C, HW), c_prev: (N, C, HW) or NULL -> cell, h: (N, C, HW); all in layout
void rc_lstm_forward(int n, int c, int hw, int layout, const float *a, const float *c_prev, const float *gamma,
                     const float *beta, const float *mean, const float *rstd, float *cell, float *h) {
    int V = layout == RC_LAYOUT_BLK16 ? 16 : 1;
    RC_ASSERT(n >= 1 && c >= 1 && hw >= 1 && c % V == 0 && (!mean || rstd));
    int CB = c / V;
    long long blocks = (long long)n * CB;
    int par = (long long)n * c * hw >= LSTM_PAR_MIN;
    (void)par;
    RC_OMP(omp parallel for schedule(static) if(par))
    for (long long p = 0; p < blocks; p++) {
        int b = (int)(p / CB), cb = (int)(p % CB);
        gate_norm q;
        block_norm(&q, c, cb, V, gamma, beta, mean, rstd);
        size_t gstride = (size_t)CB * hw * V;                        /* one gate's channel blocks */
        const float *ab = a + ((size_t)b * 4 * CB + cb) * hw * V;    /* gate i of block cb */
        size_t off = (size_t)p * hw * V;
        const float *cp = c_prev ? c_prev + off : NULL;
        if (V == 16) {
            if (mean)
                fwd_block16(ab, gstride, cp, cell + off, h + off, hw, 1, &q);
            else
                fwd_block16(ab, gstride, cp, cell + off, h + off, hw, 0, &q);
        } else {
            if (mean)
                fwd_block1(ab, gstride, cp, cell + off, h + off, hw, 1, &q);
            else
                fwd_block1(ab, gstride, cp, cell + off, h + off, hw, 0, &q);
        }
    }
}

/* One element of the backward: z gate inputs (normalised), cell c, cp (0 when absent), dh, dc in;
 * gate gradients out through dz[0..3], the previous cell's gradient through *dcp. */
RC_INLINE void bwd_elem(float zi, float zf, float zo, float zg, float c, float cpj, int has_cp, float dhj, float dcj,
                        float *dzi, float *dzf, float *dzo, float *dzg, float *dcpj) {
    float i = vsigmoid(zi), f = vsigmoid(zf), o = vsigmoid(zo), g = vtanh(zg);
    float tc = vtanh(c);
    float dct = dcj + dhj * o * (1.0f - tc * tc);
    *dzi = dct * g * i * (1.0f - i);
    *dzf = has_cp ? dct * cpj * f * (1.0f - f) : 0.0f;
    *dzo = dhj * tc * o * (1.0f - o);
    *dzg = dct * i * (1.0f - g * g);
    *dcpj = dct * f;
}

/* Blocked block (16 lanes per position) or plain block (V = 1: one channel, lanes = positions). */
RC_INLINE void bwd_block(const float *a, float *da, size_t gs, const float *cp, const float *cell, const float *dh,
                         const float *dc, float *dcp, int dcp_acc, int hw, int V, int bn, const gate_norm *q) {
    for (int s = 0; s < (V == 16 ? hw : 1); s++) {
        size_t o = (size_t)s * V;
        int L = V == 16 ? 16 : hw;
        if (V == 16) {
            for (int k = 0; k < 4; k++) rc_prefetch_ahead(a + o + k * gs);
            rc_prefetch_ahead(cell + o);
            if (cp) rc_prefetch_ahead(cp + o);
            if (dh) rc_prefetch_ahead(dh + o);
            if (dc) rc_prefetch_ahead(dc + o);
        }
#pragma omp simd
        for (int l = 0; l < L; l++) {
            size_t j = o + l;
            int v = V == 16 ? l : 0;
            float dcpj;
            bwd_elem(NORM(a[j], 0, v), NORM(a[j + gs], 1, v), NORM(a[j + 2 * gs], 2, v), NORM(a[j + 3 * gs], 3, v),
                     cell[j], cp ? cp[j] : 0.0f, cp != NULL, dh ? dh[j] : 0.0f, dc ? dc[j] : 0.0f, &da[j], &da[j + gs],
                     &da[j + 2 * gs], &da[j + 3 * gs], &dcpj);
            if (dcp) dcp[j] = dcp_acc ? dcp[j] + dcpj : dcpj;
        }
    }
}

// a: (N, 4C, HW), c_prev, cell, dh, dc: (N, C, HW) -> da: (N, 4C, HW), dc_prev: (N, C, HW)
void rc_lstm_backward(int n, int c, int hw, int layout, const float *a, const float *c_prev, const float *cell,
                      const float *gamma, const float *beta, const float *mean, const float *rstd, const float *dh,
                      const float *dc, float *da, float *dc_prev, int dc_prev_acc, float *dgamma, float *dbeta,
                      int train, double *work) {
    int V = layout == RC_LAYOUT_BLK16 ? 16 : 1;
    RC_ASSERT(n >= 1 && c >= 1 && hw >= 1 && c % V == 0 && da && da != a && (!mean || (rstd && work)));
    int CB = c / V;
    long long blocks = (long long)n * CB;
    int par = (long long)n * c * hw >= LSTM_PAR_MIN;
    (void)par;
    RC_OMP(omp parallel for schedule(static) if(par))
    for (long long p = 0; p < blocks; p++) {
        int b = (int)(p / CB), cb = (int)(p % CB);
        gate_norm q;
        block_norm(&q, c, cb, V, gamma, beta, mean, rstd);
        size_t gstride = (size_t)CB * hw * V;
        size_t aoff = ((size_t)b * 4 * CB + cb) * hw * V, off = (size_t)p * hw * V;
        const float *cp = c_prev ? c_prev + off : NULL;
        const float *dhp = dh ? dh + off : NULL, *dcp_in = dc ? dc + off : NULL;
        float *dcp = dc_prev ? dc_prev + off : NULL;
        if (V == 16) {
            if (mean)
                bwd_block(a + aoff, da + aoff, gstride, cp, cell + off, dhp, dcp_in, dcp, dc_prev_acc, hw, 16, 1, &q);
            else
                bwd_block(a + aoff, da + aoff, gstride, cp, cell + off, dhp, dcp_in, dcp, dc_prev_acc, hw, 16, 0, &q);
        } else {
            if (mean)
                bwd_block(a + aoff, da + aoff, gstride, cp, cell + off, dhp, dcp_in, dcp, dc_prev_acc, hw, 1, 1, &q);
            else
                bwd_block(a + aoff, da + aoff, gstride, cp, cell + off, dhp, dcp_in, dcp, dc_prev_acc, hw, 1, 0, &q);
        }
    }
    /* batch norm backward of the gate gradient, in place: da holds dL/dz, becomes dL/da */
    if (mean)
        rc_bnact_backward(n, 4 * c, hw, layout, a, NULL, gamma, beta, mean, rstd, da, NULL, da, 0, NULL, 0, dgamma,
                          dbeta, train, 0, 0, work);
}
