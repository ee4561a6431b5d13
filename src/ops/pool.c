/* pool.c — max and average pooling over square windows (stride, zero padding, floor output size).
 * Max ignores padded cells, propagates NaN, and routes the gradient to the first maximum in row-major
 * window order; average divides by k*k (padding counted). Per-plane kernels; fast path = planes in parallel. */
#include "ops.h"

#include "base/common.h"
#include "base/omp.h"


#define POOL_PAR_MIN 32768 /* total input elements below which we stay serial */

void rc_pool_dims_init(rc_pool_dims *d, int n, int c, int h, int w, int k, int stride, int pad) {
    RC_ASSERT(d && n >= 0 && c >= 0 && h >= 1 && w >= 1);
    RC_ASSERT(k >= 1 && stride >= 1 && pad >= 0);
    RC_ASSERT(2 * pad <= k);                      /* as PyTorch: every window holds a real cell */
    RC_ASSERT(h + 2 * pad >= k && w + 2 * pad >= k);
    d->n = n;
    d->c = c;
    d->h = h;
    d->w = w;
    d->k = k;
    d->stride = stride;
    d->pad = pad;
    d->ho = (h + 2 * pad - k) / stride + 1;
    d->wo = (w + 2 * pad - k) / stride + 1;
}

/* Index (within the plane) of the window maximum: first strict maximum in row-major order, or the
 * first NaN if there is one. Window rows [y0, y1), columns [x0, x1), all in range. */
static int window_argmax(const float *xp, int w, int y0, int y1, int x0, int x1) {
    int best = y0 * w + x0;
    float m = xp[best];
    if (m != m) return best;
    for (int yy = y0; yy < y1; yy++) {
        for (int xx = x0; xx < x1; xx++) {
            float v = xp[yy * w + xx];
            if (v != v) return yy * w + xx;
            if (v > m) {
                m = v;
                best = yy * w + xx;
            }
        }
    }
    return best;
}

/* Clip the window of output (oy, ox) to the real input cells. */
static void window_bounds(const rc_pool_dims *d, int oy, int ox, int *y0, int *y1, int *x0, int *x1) {
    int ys = oy * d->stride - d->pad, xs = ox * d->stride - d->pad;
    *y0 = RC_MAX(ys, 0);
    *y1 = RC_MIN(ys + d->k, d->h);
    *x0 = RC_MAX(xs, 0);
    *x1 = RC_MIN(xs + d->k, d->w);
}

// one plane: x: (H, W) -> y: (Ho, Wo)
static void maxpool_fwd_plane(const rc_pool_dims *d, const float *xp, float *yp) {
    for (int oy = 0; oy < d->ho; oy++) {
        for (int ox = 0; ox < d->wo; ox++) {
            int y0, y1, x0, x1;
            window_bounds(d, oy, ox, &y0, &y1, &x0, &x1);
            yp[oy * d->wo + ox] = xp[window_argmax(xp, d->w, y0, y1, x0, x1)];
        }
    }
}

// one plane: x: (H, W), dy: (Ho, Wo) -> dx: (H, W)
static void maxpool_bwd_plane(const rc_pool_dims *d, const float *xp, const float *dyp, float *dxp, int acc) {
    if (!acc)
        for (int i = 0; i < d->h * d->w; i++) dxp[i] = 0.0f;
    for (int oy = 0; oy < d->ho; oy++) {
        for (int ox = 0; ox < d->wo; ox++) {
            int y0, y1, x0, x1;
            window_bounds(d, oy, ox, &y0, &y1, &x0, &x1);
            dxp[window_argmax(xp, d->w, y0, y1, x0, x1)] += dyp[oy * d->wo + ox];
        }
    }
}

// one plane: x: (H, W) -> y: (Ho, Wo), divisor k*k
static void avgpool_fwd_plane(const rc_pool_dims *d, const float *xp, float *yp) {
    double inv = 1.0 / ((double)d->k * d->k);
    for (int oy = 0; oy < d->ho; oy++) {
        for (int ox = 0; ox < d->wo; ox++) {
            int y0, y1, x0, x1;
            window_bounds(d, oy, ox, &y0, &y1, &x0, &x1);
            double s = 0.0;
            for (int yy = y0; yy < y1; yy++)
                for (int xx = x0; xx < x1; xx++) s += xp[yy * d->w + xx];
            yp[oy * d->wo + ox] = (float)(s * inv);
        }
    }
}

// one plane: dy: (Ho, Wo) -> dx: (H, W)
static void avgpool_bwd_plane(const rc_pool_dims *d, const float *dyp, float *dxp, int acc) {
    float inv = (float)(1.0 / ((double)d->k * d->k));
    if (!acc)
        for (int i = 0; i < d->h * d->w; i++) dxp[i] = 0.0f;
    for (int oy = 0; oy < d->ho; oy++) {
        for (int ox = 0; ox < d->wo; ox++) {
            int y0, y1, x0, x1;
            window_bounds(d, oy, ox, &y0, &y1, &x0, &x1);
            float g = dyp[oy * d->wo + ox] * inv;
            for (int yy = y0; yy < y1; yy++)
                for (int xx = x0; xx < x1; xx++) dxp[yy * d->w + xx] += g;
        }
    }
}

/* Planes are independent, so the fast path only spreads them over threads: same bits as serial. */
static int pool_parallel(const rc_pool_dims *d) {
    return rc_ops_fast && (long long)d->n * d->c * d->h * d->w >= POOL_PAR_MIN;
}

// x: (N, C, H, W) -> y: (N, C, Ho, Wo)
void rc_maxpool_forward(const rc_pool_dims *d, const float *x, float *y) {
    long long planes = (long long)d->n * d->c;
    size_t in = (size_t)d->h * d->w, out = (size_t)d->ho * d->wo;
    int par = pool_parallel(d);
    (void)par; /* unused without OpenMP */
    RC_OMP(omp parallel for schedule(static) if(par))
    for (long long p = 0; p < planes; p++) maxpool_fwd_plane(d, x + (size_t)p * in, y + (size_t)p * out);
}

// x: (N, C, H, W), dy: (N, C, Ho, Wo) -> dx: (N, C, H, W)
void rc_maxpool_backward(const rc_pool_dims *d, const float *x, const float *dy, float *dx, int dx_acc) {
    if (!dx) return;
    long long planes = (long long)d->n * d->c;
    size_t in = (size_t)d->h * d->w, out = (size_t)d->ho * d->wo;
    int par = pool_parallel(d);
    (void)par; /* unused without OpenMP */
    RC_OMP(omp parallel for schedule(static) if(par))
    for (long long p = 0; p < planes; p++)
        maxpool_bwd_plane(d, x + (size_t)p * in, dy + (size_t)p * out, dx + (size_t)p * in, dx_acc);
}

// x: (N, C, H, W) -> y: (N, C, Ho, Wo)
void rc_avgpool_forward(const rc_pool_dims *d, const float *x, float *y) {
    long long planes = (long long)d->n * d->c;
    size_t in = (size_t)d->h * d->w, out = (size_t)d->ho * d->wo;
    int par = pool_parallel(d);
    (void)par; /* unused without OpenMP */
    RC_OMP(omp parallel for schedule(static) if(par))
    for (long long p = 0; p < planes; p++) avgpool_fwd_plane(d, x + (size_t)p * in, y + (size_t)p * out);
}

// dy: (N, C, Ho, Wo) -> dx: (N, C, H, W)
void rc_avgpool_backward(const rc_pool_dims *d, const float *dy, float *dx, int dx_acc) {
    if (!dx) return;
    long long planes = (long long)d->n * d->c;
    size_t in = (size_t)d->h * d->w, out = (size_t)d->ho * d->wo;
    int par = pool_parallel(d);
    (void)par; /* unused without OpenMP */
    RC_OMP(omp parallel for schedule(static) if(par))
    for (long long p = 0; p < planes; p++)
        avgpool_bwd_plane(d, dy + (size_t)p * out, dx + (size_t)p * in, dx_acc);
}
