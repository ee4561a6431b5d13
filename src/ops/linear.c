/* linear.c — fully connected layer y = x w^T + b over a batch, all dot products summed in double.
 * Reference: one plain loop nest per output. Fast path: rows (or weight rows) in parallel with
 * cache-friendly blocked loops that sum in exactly the same order, so both give the same bits. */
#include "ops.h"

#include "base/common.h"
#include "base/omp.h"


#define LIN_PAR_MIN 32768 /* n * in * out multiply-adds below which we stay serial */
#define LIN_BLK 256       /* block of input features kept as double accumulators */

// x: (N, I), w: (O, I), b: (O) or NULL -> y: (N, O); one row of the batch
static void linear_fwd_row(int in, int out, const float *xr, const float *w, const float *b, float *yr) {
    for (int o = 0; o < out; o++) {
        const float *wr = w + (size_t)o * in;
        double s = 0.0;
        for (int i = 0; i < in; i++) s += (double)xr[i] * wr[i];
        if (b) s += b[o];
        yr[o] = (float)s;
    }
}

static void linear_backward_ref(int n, int in, int out, const float *x, const float *w, const float *dy, float *dx,
                                int dx_acc, float *dw, float *db) {
    if (dx) {
        // dx[n, i] = sum_o dy[n, o] w[o, i]
        for (int r = 0; r < n; r++)
            for (int i = 0; i < in; i++) {
                double s = 0.0;
                for (int o = 0; o < out; o++) s += (double)dy[(size_t)r * out + o] * w[(size_t)o * in + i];
                float *p = dx + (size_t)r * in + i;
                *p = dx_acc ? *p + (float)s : (float)s;
            }
    }
    if (dw) {
        // dw[o, i] += sum_n dy[n, o] x[n, i]
        for (int o = 0; o < out; o++)
            for (int i = 0; i < in; i++) {
                double s = 0.0;
                for (int r = 0; r < n; r++) s += (double)dy[(size_t)r * out + o] * x[(size_t)r * in + i];
                dw[(size_t)o * in + i] += (float)s;
            }
    }
    if (db) {
        for (int o = 0; o < out; o++) {
            double s = 0.0;
            for (int r = 0; r < n; r++) s += dy[(size_t)r * out + o];
            db[o] += (float)s;
        }
    }
}

// x: (N, I), w: (O, I), b: (O) or NULL -> y: (N, O)
void rc_linear_forward(int n, int in, int out, const float *x, const float *w, const float *b, float *y) {
    RC_ASSERT(n >= 0 && in >= 0 && out >= 0);
    int par = rc_ops_fast && (long long)n * in * out >= LIN_PAR_MIN;
    (void)par; /* unused without OpenMP */
    RC_OMP(omp parallel for schedule(static) if(par))
    for (int r = 0; r < n; r++) linear_fwd_row(in, out, x + (size_t)r * in, w, b, y + (size_t)r * out);
}

// dy: (N, O) -> dx: (N, I) (overwrite/accumulate), dw: (O, I) +=, db: (O) +=
void rc_linear_backward(int n, int in, int out, const float *x, const float *w, const float *dy, float *dx,
                        int dx_acc, float *dw, float *db) {
    RC_ASSERT(n >= 0 && in >= 0 && out >= 0);
    if (!rc_ops_fast) {
        linear_backward_ref(n, in, out, x, w, dy, dx, dx_acc, dw, db);
        return;
    }
    int par = (long long)n * in * out >= LIN_PAR_MIN;
    (void)par; /* unused without OpenMP */
    if (dx) {
        /* per batch row; for each block of features, walk o in order: rows of w are read contiguously */
        RC_OMP(omp parallel for schedule(static) if(par))
        for (int r = 0; r < n; r++) {
            double acc[LIN_BLK];
            for (int i0 = 0; i0 < in; i0 += LIN_BLK) {
                int len = RC_MIN(LIN_BLK, in - i0);
                for (int j = 0; j < len; j++) acc[j] = 0.0;
                for (int o = 0; o < out; o++) {
                    double g = dy[(size_t)r * out + o];
                    const float *wr = w + (size_t)o * in + i0;
                    for (int j = 0; j < len; j++) acc[j] += g * wr[j];
                }
                float *p = dx + (size_t)r * in + i0;
                if (dx_acc) {
                    for (int j = 0; j < len; j++) p[j] += (float)acc[j];
                } else {
                    for (int j = 0; j < len; j++) p[j] = (float)acc[j];
                }
            }
        }
    }
    if (dw || db) {
        /* per weight row; sum over the batch in order: rows of x are read contiguously */
        RC_OMP(omp parallel for schedule(static) if(par))
        for (int o = 0; o < out; o++) {
            double acc[LIN_BLK];
            if (dw) {
                for (int i0 = 0; i0 < in; i0 += LIN_BLK) {
                    int len = RC_MIN(LIN_BLK, in - i0);
                    for (int j = 0; j < len; j++) acc[j] = 0.0;
                    for (int r = 0; r < n; r++) {
                        double g = dy[(size_t)r * out + o];
                        const float *xr = x + (size_t)r * in + i0;
                        for (int j = 0; j < len; j++) acc[j] += g * xr[j];
                    }
                    float *p = dw + (size_t)o * in + i0;
                    for (int j = 0; j < len; j++) p[j] += (float)acc[j];
                }
            }
            if (db) {
                double s = 0.0;
                for (int r = 0; r < n; r++) s += dy[(size_t)r * out + o];
                db[o] += (float)s;
            }
        }
    }
}
