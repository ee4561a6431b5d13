/* bnact.c — batch norm fused with residual add, ReLU and global average pooling on plain or nChw16c
 * activations: statistics in one pass of double sums over fixed batch chunks (two passes and
 * rc_bn_allreduce when data-parallel), y = relu(BN(x) + r) in one more; backward in two passes, the relu
 * mask recomputed from x (no residual) or read from y, the masked gradient stored as the residual's. */
#include "ops.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "base/common.h"
#include "base/omp.h"
#include "ops/vec8.h"


#define BN_CHUNKS 8      /* batch chunks of the partial sums (fixed: thread-count independent bits) */
#define BN_PAR_MIN 32768 /* elements below which we stay on one thread */

size_t rc_bn_work_doubles(int c) { return (size_t)(2 * BN_CHUNKS + 3) * (size_t)((c + 15) / 16 * 16) + 1; }

/* Geometry shared by both layouts: V lanes per channel block (16 blocked, 1 plain), CB = C / V blocks;
 * block (b, cb) holds HW * V floats, element (s, v) at s * V + v, channel cb * V + v. */
typedef struct {
    int n, c, hw, V, cb, nch;
    int cs; /* channel slots cb * V: c, or c rounded up to 16 when blocked (lanes >= c are padding, zero) */
} geo;

static geo make_geo(int n, int c, int hw, int layout) {
    geo g;
    g.n = n;
    g.c = c;
    g.hw = hw;
    g.V = layout == RC_LAYOUT_BLK16 ? 16 : 1;
    g.cb = (c + g.V - 1) / g.V;
    g.cs = g.cb * g.V;
    g.nch = n < BN_CHUNKS ? n : BN_CHUNKS;
    return g;
}

/* First image of fixed batch chunk k (k = nch: the batch size). */
static int chunk_begin(const geo *g, int k) { return (int)((long long)k * g->n / g->nch); }

static size_t blk_off(const geo *g, int b, int cb) { return ((size_t)b * g->cb + cb) * (size_t)g->hw * g->V; }

/* ---------------- per-channel constants of one block (lanes v < V) ---------------- */

typedef struct {
    float m[16], sc[16], sh[16];          /* forward: y = (x - m) * sc + sh */
    float ka[16], kb[16], kc[16];         /* backward: dx = ka * g - kb * (x - m) - kc */
    double md[16];                        /* mean in double (reductions) */
} lanes;

static void lanes_fwd(lanes *q, const geo *g, int cb, const float *gamma, const float *beta, const float *mean,
                      const float *rstd) {
    memset(q, 0, sizeof *q);
    for (int v = 0; v < g->V && cb * g->V + v < g->c; v++) { /* padding lanes stay 0: y = 0, dx = 0 */
        int ch = cb * g->V + v;
        q->m[v] = mean[ch];
        q->md[v] = mean[ch];
        q->sc[v] = (gamma ? gamma[ch] : 1.0f) * rstd[ch];
        q->sh[v] = beta ? beta[ch] : 0.0f;
    }
}

/* The pre-activation, one expression shared by forward and backward (the recomputed relu mask must
 * equal the forward's bit for bit). */
static inline float bn_pre(float x, float m, float sc, float sh) { return (x - m) * sc + sh; }

/* ---------------- V = 16 kernels on GCC/Clang vector types (lanes 0-7 and 8-15) ---------------- */

static inline v8f pre8(v8f x, v8f m, v8f sc, v8f sh) { return (x - m) * sc + sh; }
/* f where mask (all ones) else +0 */
static inline v8f sel8(v8i mask, v8f f) {
    v8i i;
    memcpy(&i, &f, sizeof i);
    i &= mask;
    memcpy(&f, &i, sizeof f);
    return f;
}

/* Software prefetch (rc_prefetch_ahead, 2 KB ahead) in the streaming loops below: on data that is not in
 * cache the hardware prefetcher alone left the statistics pass at 22–25 GB/s (2 threads, 12.8 MB); 2 KB
 * ahead it runs 1.6–2x faster (build/bnact_bench, docs/PERFORMANCE.md). */

enum { RED_SUM = 0, RED_SQDEV = 1, RED_SUMSQ = 2 };

/* a1 += sum x | sum (x - m)^2; a2 += sum x^2 (RED_SUMSQ) over one block of HW x 16 */
static void red_x16(const float *p, int hw, int mode, const double *m, double *a1, double *a2) {
    v8d m0 = {0}, m1 = {0}, s0 = {0}, s1 = {0}, q0 = {0}, q1 = {0};
    if (mode == RED_SQDEV) {
        memcpy(&m0, m, sizeof m0);
        memcpy(&m1, m + 8, sizeof m1);
    }
    for (int s = 0; s < hw; s++) {
        rc_prefetch_ahead(p + (size_t)s * 16);
        v8d x0 = cvt(ldf(p + (size_t)s * 16)), x1 = cvt(ldf(p + (size_t)s * 16 + 8));
        if (mode == RED_SQDEV) {
            x0 -= m0;
            x1 -= m1;
            s0 += x0 * x0;
            s1 += x1 * x1;
        } else {
            s0 += x0;
            s1 += x1;
            if (mode == RED_SUMSQ) {
                q0 += x0 * x0;
                q1 += x1 * x1;
            }
        }
    }
    for (int v = 0; v < 8; v++) {
        a1[v] += s0[v];
        a1[v + 8] += s1[v];
        a2[v] += q0[v];
        a2[v + 8] += q1[v];
    }
}

/* Masked gradient of 8 lanes: mode 0 none, 1 relu mask recomputed from x, 2 relu mask from y. The
 * incoming gradient is dy (NULL: zero) plus gp (NULL: none), a fused global-average-pool's gradient. */
static inline v8f grad8(int mode, const float *x, const float *y, const float *dy, const float *gp, const lanes *q,
                        int h) {
    v8f g = {0}, zero = {0};
    if (dy) g = ldf(dy);
    if (gp) g += ldf(gp + h);
    if (mode == 1) return sel8(pre8(ldf(x), ldf(q->m + h), ldf(q->sc + h), ldf(q->sh + h)) > zero, g);
    if (mode == 2) return sel8(ldf(y) > zero, g);
    return g;
}

/* sg += sum g, sgx += sum g * (x - m) over one block; g also stored to gout when non-NULL */
static void red_d16(const float *x, const float *y, const float *dy, const float *gp, float *gout, int hw, int mode,
                    const lanes *q, double *sg, double *sgx) {
    v8d m0, m1, a0 = {0}, a1 = {0}, b0 = {0}, b1 = {0};
    memcpy(&m0, q->md, sizeof m0);
    memcpy(&m1, q->md + 8, sizeof m1);
    for (int s = 0; s < hw; s++) {
        size_t o = (size_t)s * 16;
        rc_prefetch_ahead(x + o);
        if (y) rc_prefetch_ahead(y + o);
        if (dy) rc_prefetch_ahead(dy + o);
        v8f g0 = grad8(mode, x + o, y ? y + o : NULL, dy ? dy + o : NULL, gp, q, 0);
        v8f g1 = grad8(mode, x + o + 8, y ? y + o + 8 : NULL, dy ? dy + o + 8 : NULL, gp, q, 8);
        if (gout) {
            stf(gout + o, g0);
            stf(gout + o + 8, g1);
        }
        v8d d0 = cvt(g0), d1 = cvt(g1);
        a0 += d0;
        a1 += d1;
        b0 += d0 * (cvt(ldf(x + o)) - m0);
        b1 += d1 * (cvt(ldf(x + o + 8)) - m1);
    }
    for (int v = 0; v < 8; v++) {
        sg[v] += a0[v];
        sg[v + 8] += a1[v];
        sgx[v] += b0[v];
        sgx[v + 8] += b1[v];
    }
}

/* y = act((x - m) sc + sh + r) over HW x 16 floats; psum (non-NULL) += the 16 lane sums of y (double) */
static void norm16(const float *x, const float *r, float *y, double *psum, int hw, int relu, const lanes *q) {
    v8f m0 = ldf(q->m), m1 = ldf(q->m + 8), c0 = ldf(q->sc), c1 = ldf(q->sc + 8), h0 = ldf(q->sh),
        h1 = ldf(q->sh + 8), zero = {0};
    v8d p0 = {0}, p1 = {0};
    for (int s = 0; s < hw; s++) {
        size_t o = (size_t)s * 16;
        rc_prefetch_ahead(x + o);
        if (r) rc_prefetch_ahead(r + o);
        v8f t0 = pre8(ldf(x + o), m0, c0, h0), t1 = pre8(ldf(x + o + 8), m1, c1, h1);
        if (r) {
            t0 += ldf(r + o);
            t1 += ldf(r + o + 8);
        }
        if (relu) {
            t0 = sel8(t0 > zero, t0);
            t1 = sel8(t1 > zero, t1);
        }
        stf(y + o, t0);
        stf(y + o + 8, t1);
        if (psum) {
            p0 += cvt(t0);
            p1 += cvt(t1);
        }
    }
    if (psum)
        for (int v = 0; v < 8; v++) {
            psum[v] += p0[v];
            psum[v + 8] += p1[v];
        }
}

/* dx (+)= ka g - kb (x - m) - kc, dr (+)= g, with g from gin when given, else recomputed */
static void dx16(const float *x, const float *y, const float *dy, const float *gp, const float *gin, float *dx,
                 int dx_acc, float *dr, int dr_acc, int hw, int mode, const lanes *q) {
    for (int s = 0; s < hw; s++) {
        size_t o = (size_t)s * 16;
        rc_prefetch_ahead(x + o);
        if (gin) rc_prefetch_ahead(gin + o);
        if (!gin && y) rc_prefetch_ahead(y + o);
        if (!gin && dy) rc_prefetch_ahead(dy + o);
        for (int h = 0; h < 16; h += 8) {
            v8f g = gin ? ldf(gin + o + h)
                        : grad8(mode, x + o + h, y ? y + o + h : NULL, dy ? dy + o + h : NULL, gp, q, h);
            if (dr) stf(dr + o + h, dr_acc ? ldf(dr + o + h) + g : g);
            if (dx) {
                v8f t = ldf(q->ka + h) * g - ldf(q->kb + h) * (ldf(x + o + h) - ldf(q->m + h)) - ldf(q->kc + h);
                stf(dx + o + h, dx_acc ? ldf(dx + o + h) + t : t);
            }
        }
    }
}

/* ---------------- V = 1 (plain layout): one channel per block ----------------
 * A channel's HW floats are run through the V = 16 kernels as (HW / 16) x 16 with the channel's constants
 * in every lane, then the tail (HW % 16) in scalar code; lane sums are added in a fixed order. The relu
 * mask of forward and backward is computed by the same code on the same elements, so it agrees. */

static void lanes_bcast(lanes *q) {
    for (int v = 1; v < 16; v++) {
        q->m[v] = q->m[0];
        q->sc[v] = q->sc[0];
        q->sh[v] = q->sh[0];
        q->ka[v] = q->ka[0];
        q->kb[v] = q->kb[0];
        q->kc[v] = q->kc[0];
        q->md[v] = q->md[0];
    }
}

static double lane_sum(const double *a) {
    double s = 0.0;
    for (int v = 0; v < 16; v++) s += a[v];
    return s;
}

static void red_x1(const float *p, int hw, int mode, double m, double *a1, double *a2) {
    double m16[16], s16[16] = {0}, q16[16] = {0};
    for (int v = 0; v < 16; v++) m16[v] = m;
    int h16 = hw / 16, s = h16 * 16;
    red_x16(p, h16, mode, m16, s16, q16);
    double s0 = lane_sum(s16), q0 = lane_sum(q16);
    for (; s < hw; s++) {
        double x0 = p[s];
        if (mode == RED_SQDEV) {
            x0 -= m;
            s0 += x0 * x0;
        } else {
            s0 += x0;
            q0 += x0 * x0;
        }
    }
    *a1 += s0;
    if (mode == RED_SUMSQ) *a2 += q0;
}

static inline float grad1(int mode, float x, float y, float dy, const lanes *q) { /* dy: incoming, summed */
    if (mode == 1) return bn_pre(x, q->m[0], q->sc[0], q->sh[0]) > 0.0f ? dy : 0.0f;
    if (mode == 2) return y > 0.0f ? dy : 0.0f;
    return dy;
}

/* q: lanes broadcast; gp: the channel's pooled gradient in all 16 lanes or NULL */
static void red_d1(const float *x, const float *y, const float *dy, const float *gp, float *gout, int hw, int mode,
                   const lanes *q, double *sg, double *sgx) {
    double a16[16] = {0}, b16[16] = {0};
    int h16 = hw / 16, s = h16 * 16;
    red_d16(x, y, dy, gp, gout, h16, mode, q, a16, b16);
    double a = lane_sum(a16), b = lane_sum(b16), m = q->md[0];
    for (; s < hw; s++) {
        float d = dy ? dy[s] : 0.0f;
        if (gp) d += gp[0];
        float g = grad1(mode, x[s], y ? y[s] : 0.0f, d, q);
        if (gout) gout[s] = g;
        a += g;
        b += (double)g * ((double)x[s] - m);
    }
    *sg += a;
    *sgx += b;
}

/* ---------------- statistics ---------------- */

/* Partial sums of chunk k, channel block cb: part[k * 2cs + ch] (and + cs for the second sum). */
static void part_store(const geo *g, double *part, int k, int cb, const double *a1, const double *a2) {
    size_t base = (size_t)k * 2 * g->cs + (size_t)cb * g->V;
    memcpy(part + base, a1, sizeof(double) * g->V);
    memcpy(part + base + g->cs, a2, sizeof(double) * g->V);
}

static void chunk_x(const geo *g, const float *x, int k, int cb, int mode, const double *m, double *part) {
    double a1[16] = {0}, a2[16] = {0};
    int b0 = chunk_begin(g, k), b1 = chunk_begin(g, k + 1);
    for (int b = b0; b < b1; b++) {
        const float *p = x + blk_off(g, b, cb);
        if (g->V == 16)
            red_x16(p, g->hw, mode, m + (size_t)cb * 16, a1, a2);
        else
            red_x1(p, g->hw, mode, m[cb], a1, a2);
    }
    part_store(g, part, k, cb, a1, a2);
}

/* out[ch] (+ c: second sums) = sum over chunks, fixed order */
static void reduce_chunks(const geo *g, const double *part, double *out, int two) {
    for (int ch = 0; ch < g->c; ch++) {
        double s = 0.0, q = 0.0;
        for (int k = 0; k < g->nch; k++) {
            s += part[(size_t)k * 2 * g->cs + ch];
            q += part[(size_t)k * 2 * g->cs + g->cs + ch];
        }
        out[ch] = s;
        if (two) out[g->c + ch] = q;
    }
}

static void bn_running(double m, double var, double count, float *run_mean, float *run_var, int ch, float momentum) {
    if (run_mean) run_mean[ch] = (float)((1.0 - momentum) * run_mean[ch] + (double)momentum * m);
    if (run_var) {
        double unbiased = count > 1.0 ? var * count / (count - 1.0) : var;
        run_var[ch] = (float)((1.0 - momentum) * run_var[ch] + (double)momentum * unbiased);
    }
}

/* The fixed batch chunk that starts at image b (b must be a chunk boundary, or n). */
static int chunk_at(const geo *g, int b) {
    int k = (int)(((long long)b * g->nch + g->n - 1) / g->n);
    RC_ASSERT(k >= 0 && k <= g->nch && chunk_begin(g, k) == b && "micro-batch off a chunk boundary");
    return k;
}

int rc_bn_chunk_start(int n, int k) {
    geo g = make_geo(n, 1, 1, RC_LAYOUT_NCHW);
    return chunk_begin(&g, k);
}

static void stats_part(const geo *g, const float *x, int b0, int b1, int mode, const double *m, double *part) {
    int k0 = chunk_at(g, b0), k1 = chunk_at(g, b1);
    int tasks = (k1 - k0) * g->cb, par = (long long)(b1 - b0) * g->c * g->hw >= BN_PAR_MIN;
    (void)par;
    RC_OMP(omp parallel for schedule(static) if(par))
    for (int t = 0; t < tasks; t++) chunk_x(g, x, k0 + t / g->cb, t % g->cb, mode, m, part);
}

/* work: part (2 * chunks * cs), s (2c + 1), m (cs: the padding lanes' means are 0) */
static double *work_s(const geo *g, double *work) { return work + (size_t)2 * BN_CHUNKS * g->cs; }
static double *work_m(const geo *g, double *work) { return work_s(g, work) + 2 * (size_t)g->c + 1; }

void rc_bn_stats_part(int n, int c, int hw, int layout, const float *x, int b0, int b1, double *work) {
    RC_ASSERT(n >= 1 && c >= 1 && hw >= 1 && x && work && 0 <= b0 && b0 < b1 && b1 <= n && !rc_bn_allreduce);
    geo g = make_geo(n, c, hw, layout);
    stats_part(&g, x, b0, b1, RED_SUMSQ, work_m(&g, work), work);
}

size_t rc_bn_pre_doubles(int c) { return (size_t)2 * BN_CHUNKS * (size_t)((c + 15) / 16 * 16); }

void rc_bn_stats_part_images(int n, int c, int layout, const double *isum, int b0, int b1, double *pre) {
    RC_ASSERT(n >= 1 && c >= 1 && isum && pre && 0 <= b0 && b0 < b1 && b1 <= n);
    geo g = make_geo(n, c, 1, layout);
    for (int k = chunk_at(&g, b0), k1 = chunk_at(&g, b1); k < k1; k++) {
        double *ps = pre + (size_t)k * 2 * g.cs, *pq = ps + g.cs;
        memset(ps, 0, 2 * (size_t)g.cs * sizeof *ps); /* padding lanes: 0 */
        for (int b = chunk_begin(&g, k); b < chunk_begin(&g, k + 1); b++) {
            const double *s = isum + (size_t)(b - b0) * 2 * c;
            for (int ch = 0; ch < c; ch++) {
                ps[ch] += s[ch];
                pq[ch] += s[c + ch];
            }
        }
    }
}

void rc_bn_stats_part_load(int n, int c, int layout, const double *pre, int b0, int b1, double *work) {
    RC_ASSERT(n >= 1 && c >= 1 && pre && work && 0 <= b0 && b0 < b1 && b1 <= n && !rc_bn_allreduce);
    geo g = make_geo(n, c, 1, layout);
    const int k0 = chunk_at(&g, b0), k1 = chunk_at(&g, b1);
    memcpy(work + (size_t)k0 * 2 * g.cs, pre + (size_t)k0 * 2 * g.cs, (size_t)(k1 - k0) * 2 * g.cs * sizeof *work);
}

/* mean, rstd and the running statistics from the variance s[c + ch] and the mean m[ch] */
static void stats_store(const geo *g, const double *s, const double *m, double count, float *mean, float *rstd,
                        float *run_mean, float *run_var, float momentum, float eps) {
    for (int ch = 0; ch < g->c; ch++) {
        double var = s[g->c + ch];
        mean[ch] = (float)m[ch];
        rstd[ch] = (float)(1.0 / sqrt(var + (double)eps));
        bn_running(m[ch], var, count, run_mean, run_var, ch, momentum);
    }
}

void rc_bn_stats_finish(int n, int c, int hw, int layout, float *mean, float *rstd, float *run_mean, float *run_var,
                        float momentum, float eps, double *work) {
    RC_ASSERT(n >= 1 && c >= 1 && hw >= 1 && mean && rstd && work && !rc_bn_allreduce);
    geo g = make_geo(n, c, hw, layout);
    double *s = work_s(&g, work), *m = work_m(&g, work);
    reduce_chunks(&g, work, s, 1);
    double count = (double)n * hw;
    for (int ch = 0; ch < c; ch++) {
        m[ch] = s[ch] / count;
        double var = s[c + ch] / count - m[ch] * m[ch];
        s[c + ch] = var > 0.0 ? var : 0.0;
    }
    stats_store(&g, s, m, count, mean, rstd, run_mean, run_var, momentum, eps);
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
    if (!rc_bn_allreduce) { /* one pass of sums, chunk by chunk (rc_bn_stats_part over the whole batch) */
        rc_bn_stats_part(n, c, hw, layout, x, 0, n, work);
        rc_bn_stats_finish(n, c, hw, layout, mean, rstd, run_mean, run_var, momentum, eps, work);
        return;
    }
    /* data-parallel, as rc_batchnorm_forward's synchronised path: global sums, then squared deviations */
    geo g = make_geo(n, c, hw, layout);
    double *part = work, *s = work_s(&g, work), *m = work_m(&g, work);
    for (int ch = c; ch < g.cs; ch++) m[ch] = 0.0;
    stats_part(&g, x, 0, n, RED_SUM, m, part);
    reduce_chunks(&g, part, s, 0);
    double count = (double)n * hw;
    s[c] = count;
    rc_bn_allreduce(s, c + 1);
    count = s[c];
    for (int ch = 0; ch < c; ch++) m[ch] = s[ch] / count;
    stats_part(&g, x, 0, n, RED_SQDEV, m, part);
    reduce_chunks(&g, part, s, 0);
    rc_bn_allreduce(s, c);
    for (int ch = 0; ch < c; ch++) s[c + ch] = s[ch] / count; /* variance */
    stats_store(&g, s, m, count, mean, rstd, run_mean, run_var, momentum, eps);
}

/* ---------------- forward ---------------- */

void rc_bnact_forward_range(int n, int c, int hw, int layout, const float *x, const float *r, const float *gamma,
                            const float *beta, float *y, float *pool, const float *mean, const float *rstd, int relu,
                            int b0, int b1) {
    RC_ASSERT(n >= 1 && c >= 1 && hw >= 1 && 0 <= b0 && b0 <= b1 && b1 <= n && mean && rstd);
    geo g = make_geo(n, c, hw, layout);
    long long p0 = (long long)b0 * g.cb, p1 = (long long)b1 * g.cb;
    int par = (long long)(b1 - b0) * c * hw >= BN_PAR_MIN;
    (void)par;
    RC_OMP(omp parallel for schedule(static) if(par))
    for (long long p = p0; p < p1; p++) {
        lanes q;
        lanes_fwd(&q, &g, (int)(p % g.cb), gamma, beta, mean, rstd);
        size_t off = (size_t)p * hw * g.V;
        const float *xx = x + off, *rr = r ? r + off : NULL;
        float *yy = y + off;
        const int c0 = (int)(p % g.cb) * g.V, lanes = c - c0 < g.V ? c - c0 : g.V; /* < V: padding */
        float *pp = pool ? pool + (size_t)(p / g.cb) * c + c0 : NULL; /* (b, cb) block -> pool[b * C + cb * V] */
        double ps[16] = {0};
        if (g.V == 16) {
            norm16(xx, rr, yy, pp ? ps : NULL, hw, relu, &q);
            if (pp)
                for (int v = 0; v < lanes; v++) pp[v] = (float)(ps[v] / hw);
        } else {
            lanes_bcast(&q);
            int h16 = hw / 16;
            norm16(xx, rr, yy, ps, h16, relu, &q);
            double tot = lane_sum(ps);
            for (int s = h16 * 16; s < hw; s++) {
                float t = bn_pre(xx[s], q.m[0], q.sc[0], q.sh[0]);
                if (rr) t += rr[s];
                if (relu) t = t > 0.0f ? t : 0.0f;
                yy[s] = t;
                tot += t;
            }
            if (pp) pp[0] = (float)(tot / hw);
        }
    }
}

// x, r: (N, C, HW) in layout -> y: same, pool: (N, C); mean, rstd: (C)
void rc_bnact_forward(int n, int c, int hw, int layout, const float *x, const float *r, const float *gamma,
                      const float *beta, float *y, float *pool, float *mean, float *rstd, float *run_mean,
                      float *run_var, float momentum, float eps, int mode, int relu, double *work) {
    rc_bn_stats(n, c, hw, layout, x, mean, rstd, run_mean, run_var, momentum, eps, mode, work);
    rc_bnact_forward_range(n, c, hw, layout, x, r, gamma, beta, y, pool, mean, rstd, relu, 0, n);
}

/* ---------------- backward ---------------- */

/* The pooled output's gradient spread over block p = (b, cb): dpool[b * C + cb * V + v] / HW, as
 * rc_gap_backward computes it. */
static const float *pool_grad(const geo *g, const float *dpool, long long p, float *buf) {
    if (!dpool) return NULL;
    const int c0 = (int)(p % g->cb) * g->V;
    const float *dp = dpool + (size_t)(p / g->cb) * g->c + c0;
    for (int v = 0; v < g->V; v++) buf[v] = c0 + v < g->c ? (float)((double)dp[v] / g->hw) : 0.0f;
    return buf;
}

/* relu mask: recomputed from x without a residual, read from y with one */
static int grad_mode(const rc_bnact_grad *a) { return !a->relu ? 0 : a->residual ? 2 : 1; }
/* the masked gradient g is the residual's gradient: stored there by the reduction, reused by apply */
static float *grad_store(const rc_bnact_grad *a) {
    return a->dr && !a->dr_acc && grad_mode(a) == 2 ? a->dr : NULL;
}

void rc_bnact_backward_reduce(const rc_bnact_grad *a, int b0, int b1) {
    RC_ASSERT(a->n >= 1 && a->c >= 1 && a->hw >= 1 && a->mean && a->rstd && a->work);
    RC_ASSERT((!a->relu || !a->residual || a->y) && (a->dy || a->dpool) && 0 <= b0 && b0 < b1 && b1 <= a->n);
    geo g = make_geo(a->n, a->c, a->hw, a->layout);
    const int mode = grad_mode(a), hw = a->hw;
    float *gstore = grad_store(a);
    double *part = a->work;
    int k0 = chunk_at(&g, b0), k1 = chunk_at(&g, b1);
    int tasks = (k1 - k0) * g.cb, par = (long long)(b1 - b0) * a->c * hw >= BN_PAR_MIN;
    (void)par;
    RC_OMP(omp parallel for schedule(static) if(par))
    for (int t = 0; t < tasks; t++) {
        int k = k0 + t / g.cb, cb = t % g.cb;
        lanes q;
        lanes_fwd(&q, &g, cb, a->gamma, a->beta, a->mean, a->rstd);
        double sg[16] = {0}, sgx[16] = {0};
        for (int b = chunk_begin(&g, k); b < chunk_begin(&g, k + 1); b++) {
            size_t o = blk_off(&g, b, cb);
            const float *yy = a->y ? a->y + o : NULL, *dd = a->dy ? a->dy + o : NULL;
            float *go = gstore ? gstore + o : NULL, gpb[16];
            const float *gp = pool_grad(&g, a->dpool, (long long)b * g.cb + cb, gpb);
            if (g.V == 1) {
                lanes_bcast(&q);
                for (int v = 1; v < 16 && gp; v++) gpb[v] = gpb[0];
            }
            if (g.V == 16)
                red_d16(a->x + o, yy, dd, gp, go, hw, mode, &q, sg, sgx);
            else
                red_d1(a->x + o, yy, dd, gp, go, hw, mode, &q, sg, sgx);
        }
        part_store(&g, part, k, cb, sg, sgx);
    }
}

/* where _finish leaves the sums for _apply */
static double *grad_sums(const rc_bnact_grad *a, const geo *g) {
    return a->sums ? a->sums : work_s(g, a->work);
}

void rc_bnact_backward_finish(const rc_bnact_grad *a) {
    geo g = make_geo(a->n, a->c, a->hw, a->layout);
    const int c = a->c;
    double *s = grad_sums(a, &g);
    /* s[0..c) sum g, s[c..2c) sum g * (x - mean), s[2c] count */
    reduce_chunks(&g, a->work, s, 1);
    for (int ch = 0; ch < c; ch++) {
        if (a->dgamma) a->dgamma[ch] += (float)(s[c + ch] * a->rstd[ch]);
        if (a->dbeta) a->dbeta[ch] += (float)s[ch];
    }
    s[2 * c] = (double)a->n * a->hw;
    if (a->train && rc_bn_allreduce) rc_bn_allreduce(s, 2 * c + 1);
}

void rc_bnact_backward_apply(const rc_bnact_grad *a, int b0, int b1) {
    RC_ASSERT(0 <= b0 && b0 <= b1 && b1 <= a->n);
    float *gstore = grad_store(a);
    if (!a->dx && (!a->dr || gstore)) return;
    geo g = make_geo(a->n, a->c, a->hw, a->layout);
    const int c = a->c, hw = a->hw, mode = grad_mode(a), train = a->train;
    const double *s = grad_sums(a, &g), count = s[2 * c];
    const float *x = a->x;
    int par = (long long)(b1 - b0) * c * hw >= BN_PAR_MIN;
    (void)par;
    RC_OMP(omp parallel for schedule(static) if(par))
    for (long long p = (long long)b0 * g.cb; p < (long long)b1 * g.cb; p++) {
        int cb = (int)(p % g.cb);
        lanes q;
        lanes_fwd(&q, &g, cb, a->gamma, a->beta, a->mean, a->rstd);
        for (int v = 0; v < g.V && cb * g.V + v < c; v++) { /* padding lanes: 0, so dx = 0 there */
            int ch = cb * g.V + v;
            double rs = a->rstd[ch], gm = a->gamma ? a->gamma[ch] : 1.0;
            q.ka[v] = (float)(gm * rs);
            q.kb[v] = train ? (float)(gm * rs * rs * (s[c + ch] * rs) / count) : 0.0f;
            q.kc[v] = train ? (float)(gm * rs * s[ch] / count) : 0.0f;
        }
        size_t off = (size_t)p * hw * g.V;
        const float *yy = a->y ? a->y + off : NULL, *gin = gstore ? gstore + off : NULL;
        const float *dd = a->dy ? a->dy + off : NULL;
        float *dxx = a->dx ? a->dx + off : NULL, *drr = a->dr && !gstore ? a->dr + off : NULL, gpb[16];
        const float *gp = pool_grad(&g, a->dpool, p, gpb);
        if (g.V == 16) {
            dx16(x + off, yy, dd, gp, gin, dxx, a->dx_acc, drr, a->dr_acc, hw, mode, &q);
        } else {
            lanes_bcast(&q);
            for (int v = 1; v < 16 && gp; v++) gpb[v] = gpb[0];
            int h16 = hw / 16;
            dx16(x + off, yy, dd, gp, gin, dxx, a->dx_acc, drr, a->dr_acc, h16, mode, &q);
            for (int s2 = h16 * 16; s2 < hw; s2++) {
                float d = dd ? dd[s2] : 0.0f;
                if (gp) d += gp[0];
                float gv = gin ? gin[s2] : grad1(mode, x[off + s2], yy ? yy[s2] : 0.0f, d, &q);
                if (drr) drr[s2] = a->dr_acc ? drr[s2] + gv : gv;
                if (dxx) {
                    float t = q.ka[0] * gv - q.kb[0] * (x[off + s2] - q.m[0]) - q.kc[0];
                    dxx[s2] = a->dx_acc ? dxx[s2] + t : t;
                }
            }
        }
    }
}

// x, y, dy: (N, C, HW), dpool: (N, C) -> dx, dr: (N, C, HW); dgamma, dbeta: (C) +=
void rc_bnact_backward(int n, int c, int hw, int layout, const float *x, const float *y, const float *gamma,
                       const float *beta, const float *mean, const float *rstd, const float *dy, const float *dpool,
                       float *dx, int dx_acc, float *dr, int dr_acc, float *dgamma, float *dbeta, int train, int relu,
                       int residual, double *work) {
    rc_bnact_grad a = {n,     c,      hw,     layout, x,      y,      gamma, beta,  mean,     rstd, dy,
                       dpool, dx,     dx_acc, dr,     dr_acc, dgamma, dbeta, train, relu, residual, work, NULL};
    rc_bnact_backward_reduce(&a, 0, n);
    rc_bnact_backward_finish(&a);
    rc_bnact_backward_apply(&a, 0, n);
}
