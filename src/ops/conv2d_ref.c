/* conv2d_ref.c — the plain-C reference convolution (grouped too): forward and backward over plain NCHW
 * activations, straightforward loops in a fixed order. The ground truth for tests and the implementation
 * the selector (conv2d.c) picks where no fast path applies. */
#include <string.h>

#include "base/common.h"
#include "ops/ops.h"

/* The group count is set after rc_conv_dims_init: check it where a conv runs. */
static void check_dims(const rc_conv_dims *d) {
    RC_ASSERT(d->x_layout == RC_LAYOUT_NCHW && d->y_layout == RC_LAYOUT_NCHW);
    RC_ASSERT(d->groups >= 1 && d->c % d->groups == 0 && d->k % d->groups == 0);
}

/* Output indices o in [0, out) whose input index o*s - p + kidx lies in [0, in): [*lo, *hi). */
static void valid_range(int in, int out, int s, int p, int kidx, int *lo, int *hi) {
    int a = p - kidx; /* need o*s >= a */
    int l = a <= 0 ? 0 : (a + s - 1) / s;
    int bmax = in - 1 + p - kidx; /* need o*s <= bmax */
    int h = bmax < 0 ? 0 : bmax / s + 1;
    if (h > out) h = out;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

/* x: (N,C,H,W), w: (K,C/G,R,R), b: (K) or NULL -> y: (N,K,Ho,Wo). Float accumulation in a fixed order
 * (bias, then c, kh, kw), one output plane per OpenMP iteration, so the result is deterministic. */
void rc_conv2d_forward_ref(const rc_conv_dims *d, const float *x, const float *w, const float *b, float *y) {
    check_dims(d);
    const int N = d->n, C = d->c, H = d->h, W = d->w, K = d->k, R = d->r, S = d->stride, P = d->pad;
    const int Ho = d->ho, Wo = d->wo, Cg = C / d->groups, Kg = K / d->groups;
#pragma omp parallel for schedule(static)
    for (int nk = 0; nk < N * K; nk++) {
        const int n = nk / K, k = nk % K, c0 = k / Kg * Cg;
        float *yp = y + (size_t)nk * Ho * Wo;
        const float bias = b ? b[k] : 0.0f;
        for (int i = 0; i < Ho * Wo; i++) yp[i] = bias;
        for (int cl = 0; cl < Cg; cl++) {
            const float *xp = x + ((size_t)n * C + c0 + cl) * H * W;
            const float *wp = w + ((size_t)k * Cg + cl) * R * R;
            for (int kh = 0; kh < R; kh++) {
                int oy0, oy1;
                valid_range(H, Ho, S, P, kh, &oy0, &oy1);
                for (int kw = 0; kw < R; kw++) {
                    int ox0, ox1;
                    valid_range(W, Wo, S, P, kw, &ox0, &ox1);
                    const float wv = wp[kh * R + kw];
                    for (int oy = oy0; oy < oy1; oy++) {
                        const int iy = oy * S - P + kh;
                        const float *xr = xp + (size_t)iy * W + (ox0 * S - P + kw);
                        float *yr = yp + (size_t)oy * Wo + ox0;
                        const int len = ox1 - ox0;
                        if (S == 1) {
                            for (int i = 0; i < len; i++) yr[i] += wv * xr[i];
                        } else {
                            for (int i = 0; i < len; i++) yr[i] += wv * xr[(size_t)i * S];
                        }
                    }
                }
            }
        }
    }
}

/* dy: (N,K,Ho,Wo) -> dx (N,C,H,W) (overwrite or += per dx_acc), dw (K,C/G,R,R) +=, db (K) +=.
 * dx: one input plane per OpenMP iteration (scatter of dy through w); dw/db: double accumulators. */
void rc_conv2d_backward_ref(const rc_conv_dims *d, const float *x, const float *w, const float *dy, float *dx,
                            int dx_acc, float *dw, float *db) {
    check_dims(d);
    const int N = d->n, C = d->c, H = d->h, W = d->w, K = d->k, R = d->r, S = d->stride, P = d->pad;
    const int Ho = d->ho, Wo = d->wo, Cg = C / d->groups, Kg = K / d->groups;
    if (dx) {
#pragma omp parallel for schedule(static)
        for (int nc = 0; nc < N * C; nc++) {
            const int n = nc / C, c = nc % C, k0 = c / Cg * Kg, cl = c % Cg;
            float *dxp = dx + (size_t)nc * H * W;
            if (!dx_acc) memset(dxp, 0, sizeof(float) * (size_t)H * W);
            for (int k = k0; k < k0 + Kg; k++) {
                const float *dyp = dy + ((size_t)n * K + k) * Ho * Wo;
                const float *wp = w + ((size_t)k * Cg + cl) * R * R;
                for (int kh = 0; kh < R; kh++) {
                    int oy0, oy1;
                    valid_range(H, Ho, S, P, kh, &oy0, &oy1);
                    for (int kw = 0; kw < R; kw++) {
                        int ox0, ox1;
                        valid_range(W, Wo, S, P, kw, &ox0, &ox1);
                        const float wv = wp[kh * R + kw];
                        for (int oy = oy0; oy < oy1; oy++) {
                            const int iy = oy * S - P + kh;
                            float *xr = dxp + (size_t)iy * W + (ox0 * S - P + kw);
                            const float *gr = dyp + (size_t)oy * Wo + ox0;
                            const int len = ox1 - ox0;
                            if (S == 1) {
                                for (int i = 0; i < len; i++) xr[i] += wv * gr[i];
                            } else {
                                for (int i = 0; i < len; i++) xr[(size_t)i * S] += wv * gr[i];
                            }
                        }
                    }
                }
            }
        }
    }
    if (dw) {
#pragma omp parallel for schedule(static)
        for (int kc = 0; kc < K * Cg; kc++) {
            const int k = kc / Cg, c = k / Kg * Cg + kc % Cg;
            for (int kh = 0; kh < R; kh++) {
                int oy0, oy1;
                valid_range(H, Ho, S, P, kh, &oy0, &oy1);
                for (int kw = 0; kw < R; kw++) {
                    int ox0, ox1;
                    valid_range(W, Wo, S, P, kw, &ox0, &ox1);
                    const int len = ox1 - ox0;
                    double acc = 0.0;
                    for (int n = 0; n < N; n++) {
                        const float *xp = x + ((size_t)n * C + c) * H * W;
                        const float *dyp = dy + ((size_t)n * K + k) * Ho * Wo;
                        for (int oy = oy0; oy < oy1; oy++) {
                            const int iy = oy * S - P + kh;
                            const float *xr = xp + (size_t)iy * W + (ox0 * S - P + kw);
                            const float *gr = dyp + (size_t)oy * Wo + ox0;
                            for (int i = 0; i < len; i++) acc += (double)gr[i] * (double)xr[(size_t)i * S];
                        }
                    }
                    dw[(size_t)kc * R * R + kh * R + kw] += (float)acc;
                }
            }
        }
    }
    if (db) {
#pragma omp parallel for schedule(static)
        for (int k = 0; k < K; k++) {
            double acc = 0.0;
            for (int n = 0; n < N; n++) {
                const float *dyp = dy + ((size_t)n * K + k) * Ho * Wo;
                for (int i = 0; i < Ho * Wo; i++) acc += dyp[i];
            }
            db[k] += (float)acc;
        }
    }
}
