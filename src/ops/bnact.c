/* bnact.c — batch norm fused with an optional residual add and ReLU, on plain NCHW or blocked nChw16c
 * activations: y = relu(BN(x) + r) in one pass after the statistics, and its backward from the saved
 * input x and output y (relu mask y > 0). Statistics: two passes (sum, then squared deviations) in
 * double over fixed batch chunks reduced in a fixed order, so the bits do not depend on the thread count;
 * synchronised over ranks through rc_bn_allreduce exactly as rc_batchnorm_forward/backward do. */
#include "ops.h"

#include <math.h>
#include <string.h>

#include "core/common.h"

#ifdef _OPENMP
#define RC_OMP(x) _Pragma(#x)
#else
#define RC_OMP(x)
#endif

#define BN_CHUNKS 8        /* batch chunks of the partial sums (fixed: thread-count independent bits) */
#define BN_PAR_MIN 32768   /* elements below which we stay on one thread */
#define RC_INLINE static inline __attribute__((always_inline))

size_t rc_bn_work_doubles(int c) { return (size_t)(2 * BN_CHUNKS + 3) * (size_t)c + 1; }

/* Geometry shared by both layouts: V lanes per channel block (16 blocked, 1 plain), CB = C / V blocks;
 * block (b, cb) holds HW * V floats, element (s, v) at s * V + v, channel cb * V + v. */
typedef struct {
    int n, c, hw, V, cb, nch;
} geo;

static geo make_geo(int n, int c, int hw, int layout) {
    geo g;
    g.n = n;
    g.c = c;
    g.hw = hw;
    g.V = layout == RC_LAYOUT_BLK16 ? 16 : 1;
    RC_ASSERT(c % g.V == 0);
    g.cb = c / g.V;
    g.nch = n < BN_CHUNKS ? n : BN_CHUNKS;
    return g;
}

static size_t blk_off(const geo *g, int b, int cb) { return ((size_t)b * g->cb + cb) * (size_t)g->hw * g->V; }

/* ---- per-block reductions, specialised for V = 16 (vector lanes are channels) and V = 1 ---- */

/* acc[v] += sum_s (p - m[v])^2 when sq, else sum_s p */
RC_INLINE void red_x(const float *p, int hw, int V, int sq, const double *m, double *acc) {
    enum { U = 4 };
    double a[U][16];
    for (int u = 0; u < U; u++)
        for (int v = 0; v < V; v++) a[u][v] = 0.0;
    int s = 0;
    for (; s + U <= hw; s += U)
        for (int u = 0; u < U; u++)
            for (int v = 0; v < V; v++) {
                double x = p[(size_t)(s + u) * V + v];
                if (sq) {
                    double d = x - m[v];
                    a[u][v] += d * d;
                } else {
                    a[u][v] += x;
                }
            }
    for (; s < hw; s++)
        for (int v = 0; v < V; v++) {
            double x = p[(size_t)s * V + v];
            if (sq) {
                double d = x - m[v];
                a[0][v] += d * d;
            } else {
                a[0][v] += x;
            }
        }
    for (int v = 0; v < V; v++) acc[v] += (a[0][v] + a[1][v]) + (a[2][v] + a[3][v]);
}

/* g = relu ? (y > 0 ? dy : 0) : dy; sg[v] += sum g, sgx[v] += sum g * (x - m[v]) */
RC_INLINE void red_d(const float *x, const float *y, const float *dy, int hw, int V, int relu, const double *m,
                     double *sg, double *sgx) {
    enum { U = 2 };
    double a[U][16], b[U][16];
    for (int u = 0; u < U; u++)
        for (int v = 0; v < V; v++) a[u][v] = b[u][v] = 0.0;
    int s = 0;
    for (; s + U <= hw; s += U)
        for (int u = 0; u < U; u++)
            for (int v = 0; v < V; v++) {
                size_t j = (size_t)(s + u) * V + v;
                float gf = relu ? (y[j] > 0.0f ? dy[j] : 0.0f) : dy[j];
                a[u][v] += gf;
                b[u][v] += (double)gf * ((double)x[j] - m[v]);
            }
    for (; s < hw; s++)
        for (int v = 0; v < V; v++) {
            size_t j = (size_t)s * V + v;
            float gf = relu ? (y[j] > 0.0f ? dy[j] : 0.0f) : dy[j];
            a[0][v] += gf;
            b[0][v] += (double)gf * ((double)x[j] - m[v]);
        }
    for (int v = 0; v < V; v++) {
        sg[v] += a[0][v] + a[1][v];
        sgx[v] += b[0][v] + b[1][v];
    }
}

/* ---- V = 16 reductions with GCC/Clang vector types: lanes 0-7 and 8-15 as two 8-double vectors ---- */
typedef float v8f __attribute__((vector_size(32)));
typedef int v8i __attribute__((vector_size(32)));
typedef double v8d __attribute__((vector_size(64)));

static inline v8d ld8(const float *p) {
    v8f f;
    memcpy(&f, p, sizeof f);
    return __builtin_convertvector(f, v8d);
}

/* g = relu ? (y > 0 ? dy : 0) : dy on 8 lanes, as a float vector (bitwise select keeps dy exact) */
static inline v8f grad8(const float *y, const float *dy, int relu) {
    v8f g;
    memcpy(&g, dy, sizeof g);
    if (relu) {
        v8f yy, zero = {0};
        memcpy(&yy, y, sizeof yy);
        v8i mask = yy > zero;
        v8i gi;
        memcpy(&gi, &g, sizeof gi);
        gi &= mask;
        memcpy(&g, &gi, sizeof g);
    }
    return g;
}

/* acc[0..16) += sum_s x (sq = 0) or sum_s (x - m)^2 (sq = 1) over one block of HW x 16 */
static void red_x16(const float *p, int hw, int sq, const double *m, double *acc) {
    v8d m0, m1, a0 = {0}, a1 = {0}, b0 = {0}, b1 = {0};
    memcpy(&m0, m, sizeof m0);
    memcpy(&m1, m + 8, sizeof m1);
    int s = 0;
    for (; s + 2 <= hw; s += 2) {
        v8d x0 = ld8(p + (size_t)s * 16), x1 = ld8(p + (size_t)s * 16 + 8);
        v8d x2 = ld8(p + (size_t)s * 16 + 16), x3 = ld8(p + (size_t)s * 16 + 24);
        if (sq) {
            x0 -= m0;
            x1 -= m1;
            x2 -= m0;
            x3 -= m1;
            a0 += x0 * x0;
            a1 += x1 * x1;
            b0 += x2 * x2;
            b1 += x3 * x3;
        } else {
            a0 += x0;
            a1 += x1;
            b0 += x2;
            b1 += x3;
        }
    }
    for (; s < hw; s++) {
        v8d x0 = ld8(p + (size_t)s * 16), x1 = ld8(p + (size_t)s * 16 + 8);
        if (sq) {
            x0 -= m0;
            x1 -= m1;
            a0 += x0 * x0;
            a1 += x1 * x1;
        } else {
            a0 += x0;
            a1 += x1;
        }
    }
    a0 += b0;
    a1 += b1;
    for (int v = 0; v < 8; v++) {
        acc[v] += a0[v];
        acc[v + 8] += a1[v];
    }
}

/* sg += sum g, sgx += sum g * (x - m) over one block of HW x 16 */
static void red_d16(const float *x, const float *y, const float *dy, int hw, int relu, const double *m, double *sg,
                    double *sgx) {
    v8d m0, m1, a0 = {0}, a1 = {0}, b0 = {0}, b1 = {0};
    memcpy(&m0, m, sizeof m0);
    memcpy(&m1, m + 8, sizeof m1);
    for (int s = 0; s < hw; s++) {
        size_t o = (size_t)s * 16;
        v8d g0 = __builtin_convertvector(grad8(relu ? y + o : NULL, dy + o, relu), v8d);
        v8d g1 = __builtin_convertvector(grad8(relu ? y + o + 8 : NULL, dy + o + 8, relu), v8d);
        a0 += g0;
        a1 += g1;
        b0 += g0 * (ld8(x + o) - m0);
        b1 += g1 * (ld8(x + o + 8) - m1);
    }
    for (int v = 0; v < 8; v++) {
        sg[v] += a0[v];
        sg[v + 8] += a1[v];
        sgx[v] += b0[v];
        sgx[v + 8] += b1[v];
    }
}

/* Partial sums over chunk k of the batch for channel block cb (into part[k * c + channel]). */
static void chunk_x(const geo *g, const float *x, int k, int cb, int sq, const double *m, double *part) {
    double acc[16] = {0};
    int b0 = k * g->n / g->nch, b1 = (k + 1) * g->n / g->nch;
    const double *mm = m ? m + (size_t)cb * g->V : acc; /* unused when !sq */
    for (int b = b0; b < b1; b++) {
        const float *p = x + blk_off(g, b, cb);
        if (g->V == 16)
            red_x16(p, g->hw, sq, mm, acc);
        else
            red_x(p, g->hw, 1, sq, mm, acc);
    }
    memcpy(part + (size_t)k * g->c + (size_t)cb * g->V, acc, sizeof(double) * g->V);
}

/* out[ch] = sum over chunks (fixed order) of part[k * c + ch] */
static void reduce_chunks(const geo *g, const double *part, double *out) {
    for (int ch = 0; ch < g->c; ch++) {
        double s = 0.0;
        for (int k = 0; k < g->nch; k++) s += part[(size_t)k * g->c + ch];
        out[ch] = s;
    }
}

static void bn_running(double m, double var, double count, float *run_mean, float *run_var, int ch, float momentum) {
    if (run_mean) run_mean[ch] = (float)((1.0 - momentum) * run_mean[ch] + (double)momentum * m);
    if (run_var) {
        double unbiased = count > 1.0 ? var * count / (count - 1.0) : var;
        run_var[ch] = (float)((1.0 - momentum) * run_var[ch] + (double)momentum * unbiased);
    }
}

void rc_bn_stats(int n, int c, int hw, int layout, const float *x, float *mean, float *rstd, float *run_mean,
                 float *run_var, float momentum, float eps, int mode, double *work) {
    RC_ASSERT(n >= 1 && c >= 1 && hw >= 1 && mean && rstd);
    if (mode == RC_BN_REPLAY) return;
    if (mode == RC_BN_EVAL) {
        RC_ASSERT(run_mean && run_var);
        for (int ch = 0; ch < c; ch++) {
            mean[ch] = run_mean[ch];
            rstd[ch] = (float)(1.0 / sqrt((double)run_var[ch] + (double)eps));
        }
        return;
    }
    RC_ASSERT(mode == RC_BN_TRAIN && work);
    geo g = make_geo(n, c, hw, layout);
    double *part = work, *s = work + (size_t)2 * BN_CHUNKS * c, *m = s + c + 1;
    int tasks = g.nch * g.cb, par = (long long)n * c * hw >= BN_PAR_MIN;
    (void)par;
    RC_OMP(omp parallel for schedule(static) if(par))
    for (int t = 0; t < tasks; t++) chunk_x(&g, x, t / g.cb, t % g.cb, 0, NULL, part);
    reduce_chunks(&g, part, s);
    s[c] = (double)n * hw;
    if (rc_bn_allreduce) rc_bn_allreduce(s, c + 1);
    double count = s[c];
    for (int ch = 0; ch < c; ch++) m[ch] = s[ch] / count;
    RC_OMP(omp parallel for schedule(static) if(par))
    for (int t = 0; t < tasks; t++) chunk_x(&g, x, t / g.cb, t % g.cb, 1, m, part);
    reduce_chunks(&g, part, s);
    if (rc_bn_allreduce) rc_bn_allreduce(s, c);
    for (int ch = 0; ch < c; ch++) {
        double var = s[ch] / count;
        mean[ch] = (float)m[ch];
        rstd[ch] = (float)(1.0 / sqrt(var + (double)eps));
        bn_running(m[ch], var, count, run_mean, run_var, ch, momentum);
    }
}

/* ---- forward ---- */

RC_INLINE void norm_block(const float *x, const float *r, float *y, int hw, int V, int relu, const float *mf,
                          const float *sc, const float *sh) {
    for (int s = 0; s < hw; s++)
        for (int v = 0; v < V; v++) {
            size_t j = (size_t)s * V + v;
            float t = (x[j] - mf[v]) * sc[v] + sh[v];
            if (r) t += r[j];
            if (relu) t = t > 0.0f ? t : 0.0f;
            y[j] = t;
        }
}

// x, r: (N, C, HW) in layout -> y: same; mean, rstd: (C)
void rc_bnact_forward(int n, int c, int hw, int layout, const float *x, const float *r, const float *gamma,
                      const float *beta, float *y, float *mean, float *rstd, float *run_mean, float *run_var,
                      float momentum, float eps, int mode, int relu, double *work) {
    rc_bn_stats(n, c, hw, layout, x, mean, rstd, run_mean, run_var, momentum, eps, mode, work);
    geo g = make_geo(n, c, hw, layout);
    long long blocks = (long long)n * g.cb;
    int par = (long long)n * c * hw >= BN_PAR_MIN;
    (void)par;
    RC_OMP(omp parallel for schedule(static) if(par))
    for (long long p = 0; p < blocks; p++) {
        int cb = (int)(p % g.cb);
        float mf[16] = {0}, sc[16] = {0}, sh[16] = {0};
        for (int v = 0; v < g.V; v++) {
            int ch = cb * g.V + v;
            mf[v] = mean[ch];
            sc[v] = (gamma ? gamma[ch] : 1.0f) * rstd[ch];
            sh[v] = beta ? beta[ch] : 0.0f;
        }
        size_t off = (size_t)p * hw * g.V;
        const float *rr = r ? r + off : NULL;
        if (g.V == 16) {
            if (relu)
                norm_block(x + off, rr, y + off, hw, 16, 1, mf, sc, sh);
            else
                norm_block(x + off, rr, y + off, hw, 16, 0, mf, sc, sh);
        } else {
            if (relu)
                norm_block(x + off, rr, y + off, hw, 1, 1, mf, sc, sh);
            else
                norm_block(x + off, rr, y + off, hw, 1, 0, mf, sc, sh);
        }
    }
}

/* ---- backward ---- */

static void chunk_d(const geo *g, const float *x, const float *y, const float *dy, int relu, const double *m, int k,
                    int cb, double *part) {
    double sg[16] = {0}, sgx[16] = {0};
    int b0 = k * g->n / g->nch, b1 = (k + 1) * g->n / g->nch;
    const double *mm = m + (size_t)cb * g->V;
    for (int b = b0; b < b1; b++) {
        size_t o = blk_off(g, b, cb);
        const float *yy = y ? y + o : NULL;
        if (g->V == 16) {
            red_d16(x + o, yy, dy + o, g->hw, relu, mm, sg, sgx);
        } else {
            if (relu)
                red_d(x + o, yy, dy + o, g->hw, 1, 1, mm, sg, sgx);
            else
                red_d(x + o, yy, dy + o, g->hw, 1, 0, mm, sg, sgx);
        }
    }
    size_t base = (size_t)k * 2 * g->c + (size_t)cb * g->V;
    memcpy(part + base, sg, sizeof(double) * g->V);
    memcpy(part + base + g->c, sgx, sizeof(double) * g->V);
}

RC_INLINE void dx_block(const float *x, const float *y, const float *dy, float *dx, int dx_acc, float *dr, int dr_acc,
                        int hw, int V, int relu, const float *mf, const float *ka, const float *kb, const float *kc) {
    for (int s = 0; s < hw; s++)
        for (int v = 0; v < V; v++) {
            size_t j = (size_t)s * V + v;
            float gf = relu ? (y[j] > 0.0f ? dy[j] : 0.0f) : dy[j];
            if (dr) dr[j] = dr_acc ? dr[j] + gf : gf;
            if (dx) {
                float t = ka[v] * gf - kb[v] * (x[j] - mf[v]) - kc[v];
                dx[j] = dx_acc ? dx[j] + t : t;
            }
        }
}

// x, y, dy: (N, C, HW) -> dx, dr: (N, C, HW); dgamma, dbeta: (C) +=
void rc_bnact_backward(int n, int c, int hw, int layout, const float *x, const float *y, const float *gamma,
                       const float *mean, const float *rstd, const float *dy, float *dx, int dx_acc, float *dr,
                       int dr_acc, float *dgamma, float *dbeta, int train, int relu, double *work) {
    RC_ASSERT(n >= 1 && c >= 1 && hw >= 1 && mean && rstd && work && (!relu || y));
    geo g = make_geo(n, c, hw, layout);
    /* work: partial sums, then s (2c + 1 sums), then the channel means in double (the saved float
     * values, as the reference backward uses) */
    double *part = work, *s = work + (size_t)2 * BN_CHUNKS * c, *mdbl = s + 2 * (size_t)c + 1;
    for (int ch = 0; ch < c; ch++) mdbl[ch] = mean[ch];
    int tasks = g.nch * g.cb, par = (long long)n * c * hw >= BN_PAR_MIN;
    (void)par;
    RC_OMP(omp parallel for schedule(static) if(par))
    for (int t = 0; t < tasks; t++) chunk_d(&g, x, y, dy, relu, mdbl, t / g.cb, t % g.cb, part);
    /* sums: s[0..c) sum g, s[c..2c) sum g * (x - mean), s[2c] count */
    for (int ch = 0; ch < c; ch++) {
        double a = 0.0, b = 0.0;
        for (int k = 0; k < g.nch; k++) {
            a += part[(size_t)k * 2 * c + ch];
            b += part[(size_t)k * 2 * c + c + ch];
        }
        if (dgamma) dgamma[ch] += (float)(b * rstd[ch]);
        if (dbeta) dbeta[ch] += (float)a;
        s[ch] = a;
        s[c + ch] = b;
    }
    s[2 * c] = (double)n * hw;
    if (train && rc_bn_allreduce) rc_bn_allreduce(s, 2 * c + 1);
    double count = s[2 * c];
    if (!dx && !dr) return;
    long long blocks = (long long)n * g.cb;
    RC_OMP(omp parallel for schedule(static) if(par))
    for (long long p = 0; p < blocks; p++) {
        int cb = (int)(p % g.cb);
        float mf[16] = {0}, ka[16] = {0}, kb[16] = {0}, kc[16] = {0};
        for (int v = 0; v < g.V; v++) {
            int ch = cb * g.V + v;
            double rs = rstd[ch], gm = gamma ? gamma[ch] : 1.0;
            mf[v] = mean[ch];
            ka[v] = (float)(gm * rs);
            kb[v] = train ? (float)(gm * rs * rs * (s[c + ch] * rs) / count) : 0.0f;
            kc[v] = train ? (float)(gm * rs * s[ch] / count) : 0.0f;
        }
        size_t off = (size_t)p * hw * g.V;
        const float *yy = y ? y + off : NULL;
        float *dxx = dx ? dx + off : NULL, *drr = dr ? dr + off : NULL;
        if (g.V == 16) {
            if (relu)
                dx_block(x + off, yy, dy + off, dxx, dx_acc, drr, dr_acc, hw, 16, 1, mf, ka, kb, kc);
            else
                dx_block(x + off, yy, dy + off, dxx, dx_acc, drr, dr_acc, hw, 16, 0, mf, ka, kb, kc);
        } else {
            if (relu)
                dx_block(x + off, yy, dy + off, dxx, dx_acc, drr, dr_acc, hw, 1, 1, mf, ka, kb, kc);
            else
                dx_block(x + off, yy, dy + off, dxx, dx_acc, drr, dr_acc, hw, 1, 0, mf, ka, kb, kc);
        }
    }
}
