/* batchnorm.c — batch normalisation over (N, C, HW) with per-channel statistics, PyTorch semantics:
 * the biased batch variance normalises, the unbiased one feeds run_var, momentum weights the new batch.
 * gamma/beta may be NULL (scale 1, shift 0); dgamma/dbeta/dx NULL are skipped. Reference: plain double
 * loops. Fast path: channels in parallel, two passes per channel with four double accumulators. Sync path
 * (data-parallel, rc_bn_allreduce set): the same two passes with per-channel sums reduced over ranks. */
#include "ops.h"

#include <math.h>

#include "base/common.h"
#include "base/omp.h"


#define BN_PAR_MIN 32768 /* n * c * hw below which we stay serial */

double rc_batchnorm_flops(int n, int c, int hw) {
    /* train forward per element: mean (1 add), variance (sub, mul, add), normalise (sub, mul, add) */
    return 7.0 * n * c * hw;
}

static void bn_update_running(int ch, double m, double var, double count, float *run_mean, float *run_var,
                              float momentum) {
    if (run_mean) run_mean[ch] = (float)((1.0 - momentum) * run_mean[ch] + (double)momentum * m);
    if (run_var) {
        double unbiased = count > 1.0 ? var * count / (count - 1.0) : var;
        run_var[ch] = (float)((1.0 - momentum) * run_var[ch] + (double)momentum * unbiased);
    }
}

/* ---------------- reference ---------------- */

// x: (N, C, HW) -> y: (N, C, HW); mean, rstd: (C)
static void bn_forward_ref(int n, int c, int hw, const float *x, const float *gamma, const float *beta, float *y,
                           float *mean, float *rstd, float *run_mean, float *run_var, float momentum, float eps,
                           int train) {
    size_t chw = (size_t)c * hw;
    double count = (double)n * hw;
    for (int ch = 0; ch < c; ch++) {
        double m, var;
        if (train) {
            double s = 0.0;
            for (int b = 0; b < n; b++)
                for (int i = 0; i < hw; i++) s += x[b * chw + (size_t)ch * hw + i];
            m = s / count;
            double q = 0.0;
            for (int b = 0; b < n; b++)
                for (int i = 0; i < hw; i++) {
                    double d = x[b * chw + (size_t)ch * hw + i] - m;
                    q += d * d;
                }
            var = q / count;
        } else {
            m = run_mean[ch];
            var = run_var[ch];
        }
        double rs = 1.0 / sqrt(var + (double)eps);
        double g = gamma ? gamma[ch] : 1.0, bt = beta ? beta[ch] : 0.0;
        for (int b = 0; b < n; b++)
            for (int i = 0; i < hw; i++) {
                size_t j = b * chw + (size_t)ch * hw + i;
                y[j] = (float)(g * (x[j] - m) * rs + bt);
            }
        mean[ch] = (float)m;
        rstd[ch] = (float)rs;
        if (train) bn_update_running(ch, m, var, count, run_mean, run_var, momentum);
    }
}

// x, dy: (N, C, HW) -> dx: (N, C, HW); dgamma, dbeta: (C) +=
static void bn_backward_ref(int n, int c, int hw, const float *x, const float *gamma, const float *mean,
                            const float *rstd, const float *dy, float *dx, int dx_acc, float *dgamma, float *dbeta,
                            int train) {
    size_t chw = (size_t)c * hw;
    double count = (double)n * hw;
    for (int ch = 0; ch < c; ch++) {
        double m = mean[ch], rs = rstd[ch], g = gamma ? gamma[ch] : 1.0;
        double sdy = 0.0, sdyxh = 0.0; /* sum dy, sum dy * xhat */
        for (int b = 0; b < n; b++)
            for (int i = 0; i < hw; i++) {
                size_t j = b * chw + (size_t)ch * hw + i;
                sdy += dy[j];
                sdyxh += (double)dy[j] * (x[j] - m) * rs;
            }
        if (dgamma) dgamma[ch] += (float)sdyxh;
        if (dbeta) dbeta[ch] += (float)sdy;
        if (!dx) continue;
        for (int b = 0; b < n; b++)
            for (int i = 0; i < hw; i++) {
                size_t j = b * chw + (size_t)ch * hw + i;
                double v;
                if (train) {
                    double xh = (x[j] - m) * rs;
                    v = g * rs * (dy[j] - sdy / count - xh * sdyxh / count);
                } else {
                    v = g * rs * dy[j];
                }
                dx[j] = dx_acc ? dx[j] + (float)v : (float)v;
            }
    }
}

/* ---------------- fast path ---------------- */

/* Sums over one row of floats with four independent double accumulators (latency-bound otherwise). */
static double row_sum(const float *p, int len) {
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    int i = 0;
    for (; i + 4 <= len; i += 4) {
        s0 += p[i];
        s1 += p[i + 1];
        s2 += p[i + 2];
        s3 += p[i + 3];
    }
    for (; i < len; i++) s0 += p[i];
    return (s0 + s1) + (s2 + s3);
}

static double row_sqdev(const float *p, int len, double m) {
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    int i = 0;
    for (; i + 4 <= len; i += 4) {
        double d0 = p[i] - m, d1 = p[i + 1] - m, d2 = p[i + 2] - m, d3 = p[i + 3] - m;
        s0 += d0 * d0;
        s1 += d1 * d1;
        s2 += d2 * d2;
        s3 += d3 * d3;
    }
    for (; i < len; i++) {
        double d = p[i] - m;
        s0 += d * d;
    }
    return (s0 + s1) + (s2 + s3);
}

/* sum dy and sum dy * (x - m) over one row */
static void row_dsums(const float *x, const float *dy, int len, double m, double *sdy, double *sdyx) {
    double a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0, b0 = 0.0, b1 = 0.0, b2 = 0.0, b3 = 0.0;
    int i = 0;
    for (; i + 4 <= len; i += 4) {
        a0 += dy[i];
        a1 += dy[i + 1];
        a2 += dy[i + 2];
        a3 += dy[i + 3];
        b0 += (double)dy[i] * (x[i] - m);
        b1 += (double)dy[i + 1] * (x[i + 1] - m);
        b2 += (double)dy[i + 2] * (x[i + 2] - m);
        b3 += (double)dy[i + 3] * (x[i + 3] - m);
    }
    for (; i < len; i++) {
        a0 += dy[i];
        b0 += (double)dy[i] * (x[i] - m);
    }
    *sdy += (a0 + a1) + (a2 + a3);
    *sdyx += (b0 + b1) + (b2 + b3);
}

// x: (N, C, HW) -> y: (N, C, HW); mean, rstd: (C)
static void bn_forward_fast(int n, int c, int hw, const float *x, const float *gamma, const float *beta, float *y,
                            float *mean, float *rstd, float *run_mean, float *run_var, float momentum, float eps,
                            int train) {
    size_t chw = (size_t)c * hw;
    double count = (double)n * hw;
    int par = (long long)n * c * hw >= BN_PAR_MIN;
    (void)par; /* unused without OpenMP */
    /* one thread owns a channel: its statistics are summed in a fixed order whatever the thread count */
    RC_OMP(omp parallel for schedule(static) if(par))
    for (int ch = 0; ch < c; ch++) {
        const float *xc = x + (size_t)ch * hw;
        double m, var;
        if (train) {
            double s = 0.0;
            for (int b = 0; b < n; b++) s += row_sum(xc + b * chw, hw);
            m = s / count;
            double q = 0.0;
            for (int b = 0; b < n; b++) q += row_sqdev(xc + b * chw, hw, m);
            var = q / count;
        } else {
            m = run_mean[ch];
            var = run_var[ch];
        }
        double rs = 1.0 / sqrt(var + (double)eps);
        float mf = (float)m;
        float scale = (float)((gamma ? gamma[ch] : 1.0) * rs);
        float shift = beta ? beta[ch] : 0.0f;
        for (int b = 0; b < n; b++) {
            const float *xr = xc + b * chw;
            float *yr = y + b * chw + (size_t)ch * hw;
            for (int i = 0; i < hw; i++) yr[i] = (xr[i] - mf) * scale + shift;
        }
        mean[ch] = mf;
        rstd[ch] = (float)rs;
        if (train) bn_update_running(ch, m, var, count, run_mean, run_var, momentum);
    }
}

// x, dy: (N, C, HW) -> dx: (N, C, HW); dgamma, dbeta: (C) +=
static void bn_backward_fast(int n, int c, int hw, const float *x, const float *gamma, const float *mean,
                             const float *rstd, const float *dy, float *dx, int dx_acc, float *dgamma, float *dbeta,
                             int train) {
    size_t chw = (size_t)c * hw;
    double count = (double)n * hw;
    int par = (long long)n * c * hw >= BN_PAR_MIN;
    (void)par; /* unused without OpenMP */
    RC_OMP(omp parallel for schedule(static) if(par))
    for (int ch = 0; ch < c; ch++) {
        size_t off = (size_t)ch * hw;
        double m = mean[ch], rs = rstd[ch], g = gamma ? gamma[ch] : 1.0;
        double sdy = 0.0, sdyx = 0.0;
        for (int b = 0; b < n; b++) row_dsums(x + b * chw + off, dy + b * chw + off, hw, m, &sdy, &sdyx);
        double sdyxh = sdyx * rs;
        if (dgamma) dgamma[ch] += (float)sdyxh;
        if (dbeta) dbeta[ch] += (float)sdy;
        if (!dx) continue;
        /* dx = ka * dy - kb * (x - mean) - kc */
        float ka = (float)(g * rs);
        float kb = train ? (float)(g * rs * rs * sdyxh / count) : 0.0f;
        float kc = train ? (float)(g * rs * sdy / count) : 0.0f;
        float mf = mean[ch];
        for (int b = 0; b < n; b++) {
            const float *xr = x + b * chw + off, *dyr = dy + b * chw + off;
            float *dxr = dx + b * chw + off;
            if (dx_acc) {
                for (int i = 0; i < hw; i++) dxr[i] += ka * dyr[i] - kb * (xr[i] - mf) - kc;
            } else {
                for (int i = 0; i < hw; i++) dxr[i] = ka * dyr[i] - kb * (xr[i] - mf) - kc;
            }
        }
    }
}

/* ---------------- synchronised (data-parallel) path: statistics over every rank's batch ---------------- */

void (*rc_bn_allreduce)(double *sums, int n) = NULL;

#define BN_SYNC_STACK 1025 /* doubles on the stack: up to 512 channels without a heap allocation */

// x: (N, C, HW) -> y: (N, C, HW); mean, rstd: (C); the two reductions of the two-pass variance are summed
// over ranks through rc_bn_allreduce
static void bn_forward_sync(int n, int c, int hw, const float *x, const float *gamma, const float *beta, float *y,
                            float *mean, float *rstd, float *run_mean, float *run_var, float momentum, float eps) {
    double stack[BN_SYNC_STACK];
    size_t need = 2 * (size_t)c + 1;
    double *s = need <= BN_SYNC_STACK ? stack : rc_xmalloc(need * sizeof(double)), *m = s + c + 1;
    size_t chw = (size_t)c * hw;
    int par = (long long)n * c * hw >= BN_PAR_MIN;
    (void)par;
    RC_OMP(omp parallel for schedule(static) if(par))
    for (int ch = 0; ch < c; ch++) {
        double a = 0.0;
        for (int b = 0; b < n; b++)
            for (int i = 0; i < hw; i++) a += x[b * chw + (size_t)ch * hw + i];
        s[ch] = a;
    }
    s[c] = (double)n * hw;
    rc_bn_allreduce(s, c + 1);
    double count = s[c];
    for (int ch = 0; ch < c; ch++) m[ch] = s[ch] / count;
    RC_OMP(omp parallel for schedule(static) if(par))
    for (int ch = 0; ch < c; ch++) {
        double q = 0.0;
        for (int b = 0; b < n; b++)
            for (int i = 0; i < hw; i++) {
                double d = x[b * chw + (size_t)ch * hw + i] - m[ch];
                q += d * d;
            }
        s[ch] = q;
    }
    rc_bn_allreduce(s, c);
    RC_OMP(omp parallel for schedule(static) if(par))
    for (int ch = 0; ch < c; ch++) {
        double var = s[ch] / count, rs = 1.0 / sqrt(var + (double)eps);
        float mf = (float)m[ch], scale = (float)((gamma ? gamma[ch] : 1.0) * rs), shift = beta ? beta[ch] : 0.0f;
        for (int b = 0; b < n; b++) {
            const float *xr = x + b * chw + (size_t)ch * hw;
            float *yr = y + b * chw + (size_t)ch * hw;
            for (int i = 0; i < hw; i++) yr[i] = (xr[i] - mf) * scale + shift;
        }
        mean[ch] = mf;
        rstd[ch] = (float)rs;
        bn_update_running(ch, m[ch], var, count, run_mean, run_var, momentum);
    }
    if (s != stack) free(s);
}

// x, dy: (N, C, HW) -> dx: (N, C, HW) with the global sums of dy and dy * xhat; dgamma, dbeta: (C) += local
static void bn_backward_sync(int n, int c, int hw, const float *x, const float *gamma, const float *mean,
                             const float *rstd, const float *dy, float *dx, int dx_acc, float *dgamma, float *dbeta) {
    double stack[BN_SYNC_STACK];
    size_t need = 2 * (size_t)c + 1;
    double *s = need <= BN_SYNC_STACK ? stack : rc_xmalloc(need * sizeof(double));
    size_t chw = (size_t)c * hw;
    int par = (long long)n * c * hw >= BN_PAR_MIN;
    (void)par;
    RC_OMP(omp parallel for schedule(static) if(par))
    for (int ch = 0; ch < c; ch++) {
        double m = mean[ch], a = 0.0, bsum = 0.0;
        for (int b = 0; b < n; b++)
            for (int i = 0; i < hw; i++) {
                size_t j = b * chw + (size_t)ch * hw + i;
                a += dy[j];
                bsum += (double)dy[j] * (x[j] - m);
            }
        s[ch] = a;
        s[c + ch] = bsum;
        if (dgamma) dgamma[ch] += (float)(bsum * rstd[ch]);
        if (dbeta) dbeta[ch] += (float)a;
    }
    s[2 * c] = (double)n * hw;
    rc_bn_allreduce(s, 2 * c + 1);
    double count = s[2 * c];
    if (dx) {
        RC_OMP(omp parallel for schedule(static) if(par))
        for (int ch = 0; ch < c; ch++) {
            double rs = rstd[ch], g = gamma ? gamma[ch] : 1.0;
            float ka = (float)(g * rs), kb = (float)(g * rs * rs * (s[c + ch] * rs) / count),
                  kc = (float)(g * rs * s[ch] / count), mf = mean[ch];
            for (int b = 0; b < n; b++) {
                size_t off = b * chw + (size_t)ch * hw;
                for (int i = 0; i < hw; i++) {
                    float v = ka * dy[off + i] - kb * (x[off + i] - mf) - kc;
                    dx[off + i] = dx_acc ? dx[off + i] + v : v;
                }
            }
        }
    }
    if (s != stack) free(s);
}

/* ---------------- public ---------------- */

void rc_batchnorm_forward(int n, int c, int hw, const float *x, const float *gamma, const float *beta, float *y,
                          float *mean, float *rstd, float *run_mean, float *run_var, float momentum, float eps,
                          int train) {
    RC_ASSERT(n >= 1 && c >= 0 && hw >= 1 && mean && rstd);
    RC_ASSERT(train || (run_mean && run_var));
    if (train && rc_bn_allreduce)
        bn_forward_sync(n, c, hw, x, gamma, beta, y, mean, rstd, run_mean, run_var, momentum, eps);
    else if (rc_ops_fast)
        bn_forward_fast(n, c, hw, x, gamma, beta, y, mean, rstd, run_mean, run_var, momentum, eps, train);
    else
        bn_forward_ref(n, c, hw, x, gamma, beta, y, mean, rstd, run_mean, run_var, momentum, eps, train);
}

void rc_batchnorm_backward(int n, int c, int hw, const float *x, const float *gamma, const float *mean,
                           const float *rstd, const float *dy, float *dx, int dx_acc, float *dgamma, float *dbeta,
                           int train) {
    RC_ASSERT(n >= 1 && c >= 0 && hw >= 1 && mean && rstd);
    if (train && rc_bn_allreduce)
        bn_backward_sync(n, c, hw, x, gamma, mean, rstd, dy, dx, dx_acc, dgamma, dbeta);
    else if (rc_ops_fast)
        bn_backward_fast(n, c, hw, x, gamma, mean, rstd, dy, dx, dx_acc, dgamma, dbeta, train);
    else
        bn_backward_ref(n, c, hw, x, gamma, mean, rstd, dy, dx, dx_acc, dgamma, dbeta, train);
}
