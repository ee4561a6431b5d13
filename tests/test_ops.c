/* test_ops.c — kernel-level tests of the ops beside the harness (tests/test_opcases.c, which checks every op
 * of the graph for gradients, accumulation, fast vs reference and layouts): forward values by hand (max-pool
 * ties, nearest resize as PyTorch), batch-norm numerics (running statistics, eval-mode backward, the fast
 * plain kernels), the cross-entropy loss, and fast vs reference at sizes above the parallel thresholds
 * (agreement, determinism across runs and thread counts). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/rng.h"
#include "ops/ops.h"
#include "ops/vmath.h"
#include "test.h"

/* ------------------------------------------------------------------ helpers */

static rc_rng g_rng;

static float *fbuf(size_t n) { return rc_xcalloc(n ? n : 1, sizeof(float)); }

static void fill_normal(float *p, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) p[i] = scale * rc_rng_normal(&g_rng);
}

static void fill_const(float *p, size_t n, float v) {
    for (size_t i = 0; i < n; i++) p[i] = v;
}

static double dotd(const float *a, const float *b, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

static double maxabs(const float *p, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) m = fabs(p[i]) > m ? fabs(p[i]) : m;
    return m;
}

typedef double (*loss_fn)(void *ctx);

/* Compare grad[i] with the central difference of f in p[i]. The perturbation is done on the float
 * input and the actual step (after float rounding) is used as the denominator. */
static void fd_check(const char *what, float *p, size_t n, const float *grad, loss_fn f, void *ctx, float eps,
                     double rtol, double atol) {
    int bad = 0;
    size_t worst_i = 0;
    double worst = -1.0, worst_fd = 0.0;
    for (size_t i = 0; i < n; i++) {
        float save = p[i];
        float hi = save + eps, lo = save - eps;
        p[i] = hi;
        double lp = f(ctx);
        p[i] = lo;
        double lm = f(ctx);
        p[i] = save;
        double fd = (lp - lm) / ((double)hi - (double)lo);
        double err = fabs((double)grad[i] - fd);
        double tol = atol + rtol * fabs(fd);
        if (!(err <= tol)) bad++;
        if (!(err - tol <= worst)) {
            worst = err - tol;
            worst_i = i;
            worst_fd = fd;
        }
    }
    CHECK(bad == 0, "%s: %d of %zu gradients off; worst at %zu: analytic %.7g vs numeric %.7g", what, bad, n,
          worst_i, n ? (double)grad[worst_i] : 0.0, worst_fd);
}

/* Check after[i] == before[i] + delta[i] (up to float rounding of the sum). */
static void check_accumulated(const char *what, const float *after, const float *before, const float *delta,
                              size_t n) {
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        double want = (double)before[i] + delta[i];
        if (!(fabs(after[i] - want) <= 1e-6 + 1e-5 * fabs(want))) bad++;
    }
    CHECK(bad == 0, "%s: %d of %zu entries are not previous + gradient", what, bad, n);
}

/* a ~ b within rtol relative to each entry plus rtol * max|b| absolute. */
static void check_arrays_close(const char *what, const float *a, const float *b, size_t n, double rtol) {
    double atol = rtol * maxabs(b, n) + 1e-30;
    int bad = 0;
    size_t first = 0;
    for (size_t i = 0; i < n; i++)
        if (!(fabs((double)a[i] - b[i]) <= atol + rtol * fabs(b[i]))) {
            if (!bad) first = i;
            bad++;
        }
    CHECK(bad == 0, "%s: %d of %zu differ; first at %zu: %.9g vs %.9g", what, bad, n, first,
          n ? (double)a[first] : 0.0, n ? (double)b[first] : 0.0);
}

static void check_identical(const char *what, const float *a, const float *b, size_t n) {
    CHECK(memcmp(a, b, n * sizeof(float)) == 0, "%s: results are not bit-identical", what);
}

static int all_finite(const float *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(p[i])) return 0;
    return 1;
}

/* ------------------------------------------------------------------ forward values */

/* What an op computes (tests/test_opcases.c checks every op's gradients against its forward, its fast path
 * against its reference and its layouts; these pin the forward itself, by hand). */
static void test_forward_values(void) {
    float x[5] = {-2.0f, -0.0f, 0.0f, 0.5f, 100.0f}, y[5];
    rc_relu_forward(5, x, y);
    CHECK(y[0] == 0.0f && y[2] == 0.0f && y[3] == 0.5f && y[4] == 100.0f, "relu values");
    float xs[3] = {-200.0f, 0.0f, 200.0f};
    rc_sigmoid_forward(3, xs, y);
    CHECK(y[0] >= 0.0f && y[0] < 1e-30f && y[1] == 0.5f && y[2] == 1.0f, "sigmoid saturates without NaN");
    rc_tanh_forward(3, xs, y);
    CHECK(y[0] == -1.0f && y[1] == 0.0f && y[2] == 1.0f, "tanh values");
    /* lerp: (1 - w) a + w b, b absent: zero */
    float lw_[3] = {0.0f, 0.25f, 1.0f}, la[3] = {2.0f, 4.0f, -1.0f}, lb_[3] = {6.0f, 8.0f, 3.0f};
    rc_lerp_forward(3, lw_, la, lb_, y);
    CHECK(y[0] == 2.0f && y[1] == 5.0f && y[2] == 3.0f, "lerp values");
    rc_lerp_forward(3, lw_, la, NULL, y);
    CHECK(y[0] == 2.0f && y[1] == 3.0f && y[2] == 0.0f, "lerp values with b zero");
    /* concat of (2, 1, 3) channels, 2 images of 3 pixels: channel 3 of image 1 is input 2's channel 0 */
    int cs[3] = {2, 1, 3};
    float a0[12], a1[6], a2[18], cat[36];
    fill_normal(a0, 12, 1.0f);
    fill_normal(a1, 6, 1.0f);
    fill_normal(a2, 18, 1.0f);
    const float *xs3[3] = {a0, a1, a2};
    rc_concat_forward(2, 3, cs, 3, xs3, cat);
    CHECK(cat[(1 * 6 + 3) * 3 + 2] == a2[(1 * 3 + 0) * 3 + 2], "concat layout");
    CHECK(cat[(1 * 6 + 2) * 3 + 1] == a1[(1 * 1 + 0) * 3 + 1], "concat layout (middle input)");
    /* slice [1, 4) of 5 channels: channel 2 of the slice is channel 3 */
    float sx[30], sy[18];
    fill_normal(sx, 30, 1.0f);
    rc_slice_forward(2, 5, 3, 1, 3, sx, sy);
    CHECK(sy[(1 * 3 + 2) * 3 + 1] == sx[(1 * 5 + 3) * 3 + 1], "slice picks channel c0 + 2");
    /* global average pool */
    float gx[30], gy[6];
    fill_normal(gx, 30, 1.0f);
    rc_gap_forward(2, 3, 5, gx, gy);
    double s = 0;
    for (int i = 0; i < 5; i++) s += gx[(1 * 3 + 2) * 5 + i];
    CHECK_CLOSE(gy[1 * 3 + 2], s / 5, 1e-6, 1e-7, "gap value");
    /* linear 5 -> 4, with and without bias, reference and fast */
    float lx[15], lw[20], lb[4], ly[12];
    fill_normal(lx, 15, 1.0f);
    fill_normal(lw, 20, 1.0f);
    fill_normal(lb, 4, 1.0f);
    double want = lb[2];
    for (int i = 0; i < 5; i++) want += (double)lx[1 * 5 + i] * lw[2 * 5 + i];
    for (int fast = 0; fast < 2; fast++) {
        rc_ops_fast = fast;
        rc_linear_forward(3, 5, 4, lx, lw, lb, ly);
        CHECK_CLOSE(ly[1 * 4 + 2], want, 1e-6, 1e-6, "linear value");
        rc_linear_forward(3, 5, 4, lx, lw, NULL, ly);
        CHECK_CLOSE(ly[1 * 4 + 2], want - lb[2], 1e-5, 1e-6, "linear without bias");
    }
    rc_ops_fast = 1;
}

/* ------------------------------------------------------------------ pooling */

static size_t pool_in(const rc_pool_dims *d) { return (size_t)d->n * d->c * d->h * d->w; }
static size_t pool_out(const rc_pool_dims *d) { return (size_t)d->n * d->c * d->ho * d->wo; }

static void test_pool_hand(void) {
    rc_pool_dims d;
    /* ties, non-overlapping 2x2 windows: the first maximum in row-major order takes the gradient */
    float x[16] = {1, 1, 0, 0, /**/ 1, 1, 0, 2, /**/ 0, 0, 3, 3, /**/ 0, 0, 3, 3};
    float y[4], dy[4] = {1, 2, 3, 4}, dx[16];
    rc_pool_dims_init(&d, 1, 1, 4, 4, 2, 2, 0);
    CHECK(d.ho == 2 && d.wo == 2, "pool dims 4x4 k2 s2");
    rc_maxpool_forward(&d, x, y);
    CHECK(y[0] == 1 && y[1] == 2 && y[2] == 0 && y[3] == 3, "maxpool tie values");
    fill_const(dx, 16, NAN);
    rc_maxpool_backward(&d, x, dy, dx, 0);
    float want[16] = {1, 0, 0, 0, /**/ 0, 0, 0, 2, /**/ 3, 0, 4, 0, /**/ 0, 0, 0, 0};
    check_identical("maxpool tie gradient (2x2 windows)", dx, want, 16);

    /* ties, overlapping 3x3 windows with padding on a constant 3x3 plane, dy = 1 everywhere:
     * outputs (0,0),(0,1),(1,0),(1,1) pick cell (0,0); (0,2),(1,2) pick (0,1); (2,0),(2,1) pick (1,0);
     * (2,2) picks (1,1). */
    float xc[9], yc[9], dyc[9], dxc[9];
    fill_const(xc, 9, 5.0f);
    fill_const(dyc, 9, 1.0f);
    rc_pool_dims_init(&d, 1, 1, 3, 3, 3, 1, 1);
    rc_maxpool_forward(&d, xc, yc);
    fill_const(dxc, 9, NAN);
    rc_maxpool_backward(&d, xc, dyc, dxc, 0);
    float wantc[9] = {4, 2, 0, /**/ 2, 1, 0, /**/ 0, 0, 0};
    check_identical("maxpool tie gradient (overlapping, padded)", dxc, wantc, 9);

    /* max pooling ignores padding (all-negative input), average pooling counts it (divisor k*k) */
    float xn[4] = {-1, -2, -3, -4}, yn[4];
    rc_pool_dims_init(&d, 1, 1, 2, 2, 3, 1, 1);
    rc_maxpool_forward(&d, xn, yn);
    CHECK(yn[0] == -1 && yn[1] == -1 && yn[2] == -1 && yn[3] == -1, "maxpool ignores zero padding");
    float ones[4] = {1, 1, 1, 1};
    rc_avgpool_forward(&d, ones, yn);
    for (int i = 0; i < 4; i++) CHECK_CLOSE(yn[i], 4.0 / 9.0, 1e-6, 0, "avgpool count_include_pad");
    float x5[25];
    for (int i = 0; i < 25; i++) x5[i] = (float)i;
    float y5[9];
    rc_pool_dims_init(&d, 1, 1, 5, 5, 3, 2, 1);
    CHECK(d.ho == 3 && d.wo == 3, "pool dims 5x5 k3 s2 p1");
    rc_avgpool_forward(&d, x5, y5);
    /* output (0,0): cells (0,0),(0,1),(1,0),(1,1) = 0+1+5+6 = 12, over 9; (1,1): rows 1-3 cols 1-3 */
    CHECK_CLOSE(y5[0], 12.0 / 9.0, 1e-6, 0, "avgpool corner");
    CHECK_CLOSE(y5[4], (6 + 7 + 8 + 11 + 12 + 13 + 16 + 17 + 18) / 9.0, 1e-6, 0, "avgpool centre");
    rc_maxpool_forward(&d, x5, y5);
    CHECK(y5[0] == 6 && y5[4] == 18 && y5[8] == 24, "maxpool 5x5 values");
}

/* The upsample + add with the batch-norm statistics of its output (rc_upsample_add_forward_stats): the same
 * output bits as rc_upsample_add_forward_l; per image and channel, the sum and the sum of squares of that
 * output (summed here in double); plain and nChw16c with padding lanes (20 channels); the same bits with 1
 * and 2 threads on a size above the parallel threshold. */
static void test_upsample_add_stats(void) {
    const int n = 4, c = 20, h = 8, w = 7, ho = 16, wo = 14, cs = 32; /* cs: channel slots when blocked */
    const size_t nz = (size_t)n * cs * h * w, ny = (size_t)n * cs * ho * wo, hw = (size_t)ho * wo;
    float *z = fbuf(nz), *r = fbuf(ny), *zb = fbuf(nz), *rb = fbuf(ny), *y0 = fbuf(ny), *y1 = fbuf(ny), *yp = fbuf(ny);
    double *st[2] = {rc_xcalloc((size_t)n * 2 * c, sizeof(double)), rc_xcalloc((size_t)n * 2 * c, sizeof(double))};
    fill_normal(z, (size_t)n * c * h * w, 1.0f);
    fill_normal(r, (size_t)n * c * hw, 1.0f);
    for (size_t i = 0; i < (size_t)n * c * hw; i++) r[i] += 0.25f;
    rc_layout_to_blk16(n, c, h * w, z, zb);
    rc_layout_to_blk16(n, c, (int)hw, r, rb);
    const int old = rc_get_threads();
    for (int blk = 0; blk <= 1; blk++) {
        const int layout = blk ? RC_LAYOUT_BLK16 : RC_LAYOUT_NCHW;
        const float *zz = blk ? zb : z, *rr = blk ? rb : r;
        rc_upsample_add_forward_l(n, c, h, w, ho, wo, layout, zz, rr, 0, y0);
        for (int t = 1; t <= 2; t++) {
            rc_set_threads(t);
            fill_const(y1, ny, -1.0f);
            rc_upsample_add_forward_stats(n, c, h, w, ho, wo, layout, zz, rr, y1, st[t - 1]);
            CHECK(memcmp(y1, y0, (blk ? ny : (size_t)n * c * hw) * sizeof(float)) == 0,
                  "upsample+add stats (blocked %d, %d threads): output differs", blk, t);
        }
        CHECK(memcmp(st[0], st[1], (size_t)n * 2 * c * sizeof(double)) == 0,
              "upsample+add stats (blocked %d): sums differ between 1 and 2 threads", blk);
        if (blk)
            rc_layout_from_blk16(n, c, (int)hw, y1, yp);
        else
            memcpy(yp, y1, (size_t)n * c * hw * sizeof(float));
        double e = 0.0;
        for (int b = 0; b < n; b++)
            for (int k = 0; k < c; k++) {
                double sum = 0.0, sq = 0.0;
                for (size_t q = 0; q < hw; q++) {
                    const double v = yp[((size_t)b * c + k) * hw + q];
                    sum += v;
                    sq += v * v;
                }
                const double *g = st[0] + (size_t)b * 2 * c;
                e = fmax(e, fabs(g[k] - sum) / (fabs(sum) + 1.0));
                e = fmax(e, fabs(g[c + k] - sq) / (sq + 1.0));
            }
        CHECK(e < 1e-12, "upsample+add stats (blocked %d): sums off by %.3g", blk, e);
    }
    rc_set_threads(old);
    free(z), free(r), free(zb), free(rb), free(y0), free(y1), free(yp), free(st[0]), free(st[1]);
}

static void test_upsample_hand(void) {
    /* 4x4 -> 7x7: source index per axis (PyTorch nearest) is 0,0,1,1,2,2,3 */
    static const int idx47[7] = {0, 0, 1, 1, 2, 2, 3};
    static const float cnt4[4] = {2, 2, 2, 1}; /* how many outputs read each source row */
    float x[16], y[49], dy[49], dx[16];
    for (int i = 0; i < 16; i++) x[i] = (float)(10 * (i / 4) + i % 4);
    rc_upsample_forward(1, 1, 4, 4, 7, 7, x, y);
    int bad = 0;
    for (int oy = 0; oy < 7; oy++)
        for (int ox = 0; ox < 7; ox++)
            if (y[oy * 7 + ox] != (float)(10 * idx47[oy] + idx47[ox])) bad++;
    CHECK(bad == 0, "upsample 4x4 -> 7x7 values (%d wrong)", bad);
    fill_const(dy, 49, 1.0f);
    fill_const(dx, 16, NAN);
    rc_upsample_backward(1, 1, 4, 4, 7, 7, dy, dx, 0);
    bad = 0;
    for (int i = 0; i < 16; i++)
        if (dx[i] != cnt4[i / 4] * cnt4[i % 4]) bad++;
    CHECK(bad == 0, "upsample 4x4 -> 7x7 gradient counts (%d wrong)", bad);

    /* 7x7 -> 14x14: every source cell is read by a 2x2 block */
    float x7[49], y14[196], dy14[196], dx7[49];
    for (int i = 0; i < 49; i++) x7[i] = (float)i;
    rc_upsample_forward(1, 1, 7, 7, 14, 14, x7, y14);
    bad = 0;
    for (int oy = 0; oy < 14; oy++)
        for (int ox = 0; ox < 14; ox++)
            if (y14[oy * 14 + ox] != x7[(oy / 2) * 7 + ox / 2]) bad++;
    CHECK(bad == 0, "upsample 7x7 -> 14x14 values (%d wrong)", bad);
    for (int i = 0; i < 196; i++) dy14[i] = (float)(i % 5);
    rc_upsample_backward(1, 1, 7, 7, 14, 14, dy14, dx7, 0);
    /* source (2, 3) collects outputs rows 4-5, cols 6-7 */
    float want = dy14[4 * 14 + 6] + dy14[4 * 14 + 7] + dy14[5 * 14 + 6] + dy14[5 * 14 + 7];
    CHECK(dx7[2 * 7 + 3] == want, "upsample 7x7 -> 14x14 gradient sum: got %g want %g", dx7[2 * 7 + 3], want);

    /* downsampling 7 -> 4 picks rows 0, 1, 3, 5 (PyTorch) */
    float y4[16];
    static const int idx74[4] = {0, 1, 3, 5};
    rc_upsample_forward(1, 1, 7, 7, 4, 4, x7, y4);
    bad = 0;
    for (int oy = 0; oy < 4; oy++)
        for (int ox = 0; ox < 4; ox++)
            if (y4[oy * 4 + ox] != x7[idx74[oy] * 7 + idx74[ox]]) bad++;
    CHECK(bad == 0, "nearest 7x7 -> 4x4 values (%d wrong)", bad);

    /* PyTorch computes the ratio in float, so for a few sizes it differs from the exact floor: with
     * 14 -> 46 rows, output row 23 reads row 6 (exact: 7); with 9 -> 111, rows 37 and 74 read 2 and 5. */
    float col14[14], out46[46], col9[9], out111[111];
    for (int i = 0; i < 14; i++) col14[i] = (float)i;
    for (int i = 0; i < 9; i++) col9[i] = (float)i;
    rc_upsample_forward(1, 1, 14, 1, 46, 1, col14, out46);
    rc_upsample_forward(1, 1, 9, 1, 111, 1, col9, out111);
    CHECK(out46[22] == 6 && out46[23] == 6 && out46[24] == 7, "nearest 14 -> 46 matches PyTorch");
    CHECK(out111[37] == 2 && out111[74] == 5 && out111[110] == 8, "nearest 9 -> 111 matches PyTorch");
}

/* ------------------------------------------------------------------ batch norm */

typedef struct {
    int n, c, hw, train;
    float *x, *gamma, *beta, *y, *mean, *rstd, *run_mean, *run_var, *r;
} bn_ctx;

static double bn_loss(void *p) {
    bn_ctx *b = p;
    /* training-mode evaluations must not touch the running statistics: pass NULL */
    rc_batchnorm_forward(b->n, b->c, b->hw, b->x, b->gamma, b->beta, b->y, b->mean, b->rstd,
                         b->train ? NULL : b->run_mean, b->train ? NULL : b->run_var, 0.1f, 1e-5f, b->train);
    return dotd(b->r, b->y, (size_t)b->n * b->c * b->hw);
}

static void test_batchnorm_grad(void) {
    for (int fast = 0; fast < 2; fast++)
        for (int train = 0; train < 2; train++) {
            rc_ops_fast = fast;
            bn_ctx b = {3, 2, 5, train, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
            size_t nx = 30;
            b.x = fbuf(nx), b.y = fbuf(nx), b.r = fbuf(nx);
            b.gamma = fbuf(2), b.beta = fbuf(2), b.mean = fbuf(2), b.rstd = fbuf(2);
            b.run_mean = fbuf(2), b.run_var = fbuf(2);
            fill_normal(b.x, nx, 1.5f);
            for (size_t i = 0; i < nx; i++) b.x[i] += 0.7f;
            fill_normal(b.r, nx, 1.0f);
            b.gamma[0] = 1.3f, b.gamma[1] = -0.6f, b.beta[0] = 0.2f, b.beta[1] = -0.4f;
            b.run_mean[0] = 0.5f, b.run_mean[1] = -0.3f, b.run_var[0] = 2.0f, b.run_var[1] = 0.7f;
            bn_loss(&b);
            float *dx = fbuf(nx), *dx0 = fbuf(nx), *before = fbuf(nx);
            float dg[2] = {0.25f, -1.0f}, dbt[2] = {3.0f, 0.5f}, gg[2], gbt[2];
            fill_const(dx, nx, NAN);
            rc_batchnorm_backward(b.n, b.c, b.hw, b.x, b.gamma, b.mean, b.rstd, b.r, dx, 0, dg, dbt, train);
            memcpy(dx0, dx, nx * sizeof(float));
            gg[0] = dg[0] - 0.25f, gg[1] = dg[1] + 1.0f, gbt[0] = dbt[0] - 3.0f, gbt[1] = dbt[1] - 0.5f;
            char name[80];
            const char *tag = train ? "train" : "eval";
            const char *path = fast ? "fast" : "ref";
            snprintf(name, sizeof name, "batchnorm %s (%s) dx", tag, path);
            fd_check(name, b.x, nx, dx0, bn_loss, &b, 1e-2f, 2e-2, 2e-3);
            snprintf(name, sizeof name, "batchnorm %s (%s) dgamma accumulated", tag, path);
            fd_check(name, b.gamma, 2, gg, bn_loss, &b, 1e-2f, 2e-2, 2e-3);
            snprintf(name, sizeof name, "batchnorm %s (%s) dbeta accumulated", tag, path);
            fd_check(name, b.beta, 2, gbt, bn_loss, &b, 1e-2f, 2e-2, 2e-3);
            bn_loss(&b); /* restore mean/rstd of the unperturbed input */
            fill_normal(dx, nx, 1.0f);
            memcpy(before, dx, nx * sizeof(float));
            rc_batchnorm_backward(b.n, b.c, b.hw, b.x, b.gamma, b.mean, b.rstd, b.r, dx, 1, NULL, NULL, train);
            snprintf(name, sizeof name, "batchnorm %s (%s) acc=1", tag, path);
            check_accumulated(name, dx, before, dx0, nx);
            free(b.x), free(b.y), free(b.r), free(b.gamma), free(b.beta), free(b.mean), free(b.rstd);
            free(b.run_mean), free(b.run_var), free(dx), free(dx0), free(before);
        }
    rc_ops_fast = 1;
}

static void test_batchnorm_stats(void) {
    for (int fast = 0; fast < 2; fast++) {
        rc_ops_fast = fast;
        int n = 4, c = 3, hw = 6;
        size_t nx = (size_t)n * c * hw;
        float *x = fbuf(nx), *y = fbuf(nx), gamma[3] = {1.5f, 0.5f, -2.0f}, beta[3] = {0.1f, 0.0f, 1.0f};
        float mean[3], rstd[3], rm[3] = {0.2f, -1.0f, 3.0f}, rv[3] = {1.0f, 0.5f, 4.0f};
        float rm0[3], rv0[3];
        memcpy(rm0, rm, sizeof rm);
        memcpy(rv0, rv, sizeof rv);
        fill_normal(x, nx, 2.0f);
        for (size_t i = 0; i < nx; i++) x[i] += 5.0f; /* an offset mean exercises the two-pass variance */
        const float mom = 0.1f, eps = 1e-5f;
        rc_batchnorm_forward(n, c, hw, x, gamma, beta, y, mean, rstd, rm, rv, mom, eps, 1);
        for (int ch = 0; ch < c; ch++) {
            double s = 0, q = 0, cnt = (double)n * hw;
            for (int b = 0; b < n; b++)
                for (int i = 0; i < hw; i++) s += x[((size_t)b * c + ch) * hw + i];
            double m = s / cnt;
            for (int b = 0; b < n; b++)
                for (int i = 0; i < hw; i++) {
                    double d = x[((size_t)b * c + ch) * hw + i] - m;
                    q += d * d;
                }
            double var = q / cnt, var_unb = q / (cnt - 1);
            CHECK_CLOSE(mean[ch], m, 1e-6, 1e-6, "batchnorm batch mean");
            CHECK_CLOSE(rstd[ch], 1.0 / sqrt(var + eps), 1e-6, 0, "batchnorm rstd (biased var)");
            CHECK_CLOSE(rm[ch], 0.9 * rm0[ch] + 0.1 * m, 1e-6, 1e-7, "batchnorm running mean");
            CHECK_CLOSE(rv[ch], 0.9 * rv0[ch] + 0.1 * var_unb, 1e-6, 1e-7, "batchnorm running var (unbiased)");
            size_t j = ((size_t)2 * c + ch) * hw + 3;
            CHECK_CLOSE(y[j], gamma[ch] * (x[j] - m) / sqrt(var + eps) + beta[ch], 1e-5, 1e-5, "batchnorm train y");
        }
        /* NULL running stats: no update, same output */
        float *y2 = fbuf(nx), mean2[3], rstd2[3];
        rc_batchnorm_forward(n, c, hw, x, gamma, beta, y2, mean2, rstd2, NULL, NULL, mom, eps, 1);
        check_identical("batchnorm train without running stats", y2, y, nx);
        /* eval: normalise with the running stats, which stay unchanged */
        float rm1[3], rv1[3];
        memcpy(rm1, rm, sizeof rm);
        memcpy(rv1, rv, sizeof rv);
        rc_batchnorm_forward(n, c, hw, x, gamma, beta, y, mean, rstd, rm, rv, mom, eps, 0);
        CHECK(memcmp(rm, rm1, sizeof rm) == 0 && memcmp(rv, rv1, sizeof rv) == 0, "eval leaves running stats");
        int bad = 0;
        for (size_t j = 0; j < nx; j++) {
            int ch = (int)((j / (size_t)hw) % (size_t)c);
            double want = gamma[ch] * (x[j] - rm[ch]) / sqrt((double)rv[ch] + eps) + beta[ch];
            if (!(fabs(y[j] - want) <= 1e-5 + 1e-5 * fabs(want))) bad++;
        }
        CHECK(bad == 0, "batchnorm eval output (%d wrong)", bad);
        for (int ch = 0; ch < c; ch++) {
            CHECK(mean[ch] == rm[ch], "batchnorm eval writes mean = running mean");
            CHECK_CLOSE(rstd[ch], 1.0 / sqrt((double)rv[ch] + eps), 1e-6, 0, "batchnorm eval rstd");
        }
        /* gamma/beta NULL = identity affine */
        rc_batchnorm_forward(n, c, hw, x, NULL, NULL, y2, mean2, rstd2, NULL, NULL, mom, eps, 1);
        CHECK_CLOSE(y2[5], (x[5] - mean2[0]) * rstd2[0], 1e-5, 1e-5, "batchnorm without affine");
        free(x), free(y), free(y2);
    }
    rc_ops_fast = 1;
    CHECK(rc_batchnorm_flops(2, 3, 4) > 0, "batchnorm flops positive");
}

/* ------------------------------------------------------------------ cross-entropy */

typedef struct {
    int n, k;
    float *z;
    const int *labels, *coarse;
    float wf, wc;
} xent_ctx;

static double xent_loss(void *p) {
    xent_ctx *c = p;
    return rc_xent_forward_backward(c->n, c->k, c->z, c->labels, c->wf, c->coarse, c->wc, NULL, 0);
}

/* Direct definition in double: probabilities, then -log p_y and -log of the group's summed probability. */
static double xent_direct(int n, int k, const float *z, const int *labels, double wf, const int *coarse,
                          double wc) {
    double tot = 0;
    for (int r = 0; r < n; r++) {
        const float *zr = z + (size_t)r * k;
        double m = zr[0], s = 0;
        for (int j = 1; j < k; j++) m = zr[j] > m ? zr[j] : m;
        for (int j = 0; j < k; j++) s += exp(zr[j] - m);
        double pg = 0;
        for (int j = 0; j < k; j++)
            if (coarse && coarse[j] == coarse[labels[r]]) pg += exp(zr[j] - m) / s;
        tot += -wf * log(exp(zr[labels[r]] - m) / s);
        if (coarse) tot += -wc * log(pg);
    }
    return tot / n;
}

static void test_xent(void) {
    enum { N = 4, K = 6 };
    int labels[N] = {0, 3, 5, 2};
    int coarse[K] = {0, 0, 1, 1, 1, 2};
    float z[N * K], dz[N * K], dz0[N * K], before[N * K];
    fill_normal(z, N * K, 2.0f);
    for (int with_coarse = 0; with_coarse < 2; with_coarse++) {
        xent_ctx c = {N, K, z, labels, with_coarse ? coarse : NULL, 0.8f, 0.7f};
        double want = xent_direct(N, K, z, labels, c.wf, c.coarse, c.wc);
        fill_const(dz, N * K, NAN);
        double got = rc_xent_forward_backward(N, K, z, labels, c.wf, c.coarse, c.wc, dz, 0);
        CHECK_CLOSE(got, want, 1e-9, 1e-12, with_coarse ? "xent loss with coarse term" : "xent loss fine only");
        memcpy(dz0, dz, sizeof dz);
        fd_check(with_coarse ? "xent dlogits (coarse)" : "xent dlogits", z, N * K, dz0, xent_loss, &c, 1e-3f, 1e-2,
                 1e-4);
        fill_normal(dz, N * K, 1.0f);
        memcpy(before, dz, sizeof dz);
        double got2 = rc_xent_forward_backward(N, K, z, labels, c.wf, c.coarse, c.wc, dz, 1);
        CHECK(got2 == got, "xent loss independent of acc");
        check_accumulated("xent acc=1", dz, before, dz0, N * K);
    }
    /* coarse_of NULL: w_coarse ignored */
    double a = rc_xent_forward_backward(N, K, z, labels, 1.0f, NULL, 5.0f, NULL, 0);
    double b = rc_xent_forward_backward(N, K, z, labels, 1.0f, NULL, 0.0f, NULL, 0);
    CHECK(a == b, "xent ignores w_coarse without coarse_of");
    /* only the coarse term */
    double onlyc = rc_xent_forward_backward(N, K, z, labels, 0.0f, coarse, 1.0f, NULL, 0);
    CHECK_CLOSE(onlyc, xent_direct(N, K, z, labels, 0.0, coarse, 1.0), 1e-9, 1e-12, "xent coarse-only loss");
    /* stability: huge logits; the label's group sits 2000 below the maximum */
    float zb[2 * K] = {1000, 0, -1000, -1000, -1000, 500, /**/ -1000, -1000, 1000, 999, 0, -1000};
    int lb[2] = {0, 2};
    float dzb[2 * K];
    double lossb = rc_xent_forward_backward(2, K, zb, lb, 1.0f, NULL, 0.0f, dzb, 0);
    CHECK(isfinite(lossb) && all_finite(dzb, 2 * K), "xent finite on huge logits");
    CHECK_CLOSE(lossb, 0.5 * log1p(exp(-1.0)), 1e-9, 1e-12, "xent huge-logit value");
    int lc[2] = {3, 4};
    double lossc = rc_xent_forward_backward(2, K, zb, lc, 0.0f, coarse, 1.0f, dzb, 0);
    /* row 0: group {2,3,4} all at -1000 vs lse ~ 1000: 2000 - log 3; row 1: group {2,3,4} holds the max */
    double want_c = 0.5 * ((1000.0 + log1p(exp(-500.0)) - (-1000.0 + log(3.0))) +
                           (log(exp(0.0) + exp(-1.0) + exp(-1000.0)) - log(exp(0.0) + exp(-1.0) + exp(-1000.0))));
    CHECK(isfinite(lossc) && all_finite(dzb, 2 * K), "xent coarse finite on huge logits");
    CHECK_CLOSE(lossc, want_c, 1e-9, 1e-9, "xent coarse huge-logit value");
}

/* ------------------------------------------------------------------ fast vs reference */

/* Run `body` with the reference, then twice with the fast path on 4 threads and once on 1 thread; the
 * fast results must match the reference within rtol and be bit-identical across runs and thread counts. */
#define FAST_VS_REF(what, out, count, rtol, body)                                  \
    do {                                                                            \
        size_t cnt_ = (count);                                                      \
        float *ref_ = fbuf(cnt_), *f1_ = fbuf(cnt_), *f2_ = fbuf(cnt_), *f3_ = fbuf(cnt_); \
        rc_ops_fast = 0;                                                            \
        fill_const((out), cnt_, NAN); /* stale results must not hide unwritten output */ \
        body;                                                                       \
        memcpy(ref_, (out), cnt_ * sizeof(float));                                  \
        rc_ops_fast = 1;                                                            \
        rc_set_threads(4);                                                          \
        fill_const((out), cnt_, NAN);                                               \
        body;                                                                       \
        memcpy(f1_, (out), cnt_ * sizeof(float));                                   \
        fill_const((out), cnt_, NAN);                                               \
        body;                                                                       \
        memcpy(f2_, (out), cnt_ * sizeof(float));                                   \
        rc_set_threads(1);                                                          \
        fill_const((out), cnt_, NAN);                                               \
        body;                                                                       \
        memcpy(f3_, (out), cnt_ * sizeof(float));                                   \
        rc_set_threads(4);                                                          \
        check_arrays_close(what " fast vs ref", f1_, ref_, cnt_, (rtol));           \
        check_identical(what " fast twice", f1_, f2_, cnt_);                        \
        check_identical(what " fast 4 vs 1 threads", f1_, f3_, cnt_);               \
        free(ref_), free(f1_), free(f2_), free(f3_);                                \
    } while (0)

static void test_fast_vs_ref_batchnorm(void) {
    int n = 16, c = 32, hw = 28 * 28;
    size_t nx = (size_t)n * c * hw;
    float *x = fbuf(nx), *y = fbuf(nx), *dy = fbuf(nx), *dx = fbuf(nx);
    float *gamma = fbuf(c), *beta = fbuf(c), *mean = fbuf(c), *rstd = fbuf(c), *rm = fbuf(c), *rv = fbuf(c);
    float *dg = fbuf(c), *db = fbuf(c), *rm_ref = fbuf(c), *rv_ref = fbuf(c);
    fill_normal(x, nx, 3.0f);
    for (size_t i = 0; i < nx; i++) x[i] += 1.0f + (float)((i / (size_t)hw) % (size_t)c) * 0.1f;
    fill_normal(dy, nx, 1.0f);
    fill_normal(gamma, c, 1.0f);
    fill_normal(beta, c, 1.0f);
    for (int i = 0; i < c; i++) rv[i] = 1.0f + 0.05f * (float)i;
    FAST_VS_REF("batchnorm train forward", y, nx, 1e-5,
                rc_batchnorm_forward(n, c, hw, x, gamma, beta, y, mean, rstd, NULL, NULL, 0.1f, 1e-5f, 1));
    FAST_VS_REF("batchnorm train mean", mean, (size_t)c, 1e-6,
                rc_batchnorm_forward(n, c, hw, x, gamma, beta, y, mean, rstd, NULL, NULL, 0.1f, 1e-5f, 1));
    FAST_VS_REF("batchnorm train rstd", rstd, (size_t)c, 1e-6,
                rc_batchnorm_forward(n, c, hw, x, gamma, beta, y, mean, rstd, NULL, NULL, 0.1f, 1e-5f, 1));
    FAST_VS_REF("batchnorm eval forward", y, nx, 1e-5,
                rc_batchnorm_forward(n, c, hw, x, gamma, beta, y, mean, rstd, rm, rv, 0.1f, 1e-5f, 0));
    /* running-stat update agrees */
    for (int i = 0; i < c; i++) rm_ref[i] = rm[i], rv_ref[i] = rv[i];
    rc_ops_fast = 0;
    rc_batchnorm_forward(n, c, hw, x, gamma, beta, y, mean, rstd, rm_ref, rv_ref, 0.1f, 1e-5f, 1);
    rc_ops_fast = 1;
    rc_batchnorm_forward(n, c, hw, x, gamma, beta, y, mean, rstd, rm, rv, 0.1f, 1e-5f, 1);
    check_arrays_close("batchnorm running mean fast vs ref", rm, rm_ref, c, 1e-6);
    check_arrays_close("batchnorm running var fast vs ref", rv, rv_ref, c, 1e-6);
    /* backward, from the statistics of one fast training forward */
    rc_ops_fast = 1;
    rc_batchnorm_forward(n, c, hw, x, gamma, beta, y, mean, rstd, NULL, NULL, 0.1f, 1e-5f, 1);
    for (int train = 0; train < 2; train++) {
        FAST_VS_REF("batchnorm backward dx", dx, nx, 1e-5,
                    rc_batchnorm_backward(n, c, hw, x, gamma, mean, rstd, dy, dx, 0, NULL, NULL, train));
        FAST_VS_REF("batchnorm backward dgamma", dg, (size_t)c, 1e-5, {
            memset(dg, 0, (size_t)c * sizeof(float));
            rc_batchnorm_backward(n, c, hw, x, gamma, mean, rstd, dy, NULL, 0, dg, NULL, train);
        });
        FAST_VS_REF("batchnorm backward dbeta", db, (size_t)c, 1e-5, {
            memset(db, 0, (size_t)c * sizeof(float));
            rc_batchnorm_backward(n, c, hw, x, gamma, mean, rstd, dy, NULL, 0, NULL, db, train);
        });
    }
    free(x), free(y), free(dy), free(dx), free(gamma), free(beta), free(mean), free(rstd), free(rm), free(rv);
    free(dg), free(db), free(rm_ref), free(rv_ref);
}

/* Distance in units in the last place between two finite floats of any sign. */
static long ulps(float a, float b) {
    int32_t x, y;
    memcpy(&x, &a, 4);
    memcpy(&y, &b, 4);
    long long u = x < 0 ? (long long)INT32_MIN - x : x, v = y < 0 ? (long long)INT32_MIN - y : y;
    return (long)llabs(u - v);
}

/* vmath.h against libm and double precision over a dense grid: exp within 2 ulps of expf on its range,
 * sigmoid and tanh within 4e-7 relative (about 3 ulps) where the result is a normal float, and the ends. */
static void test_vmath(void) {
    long worst_exp = 0;
    double worst_sig = 0, worst_tanh = 0;
    for (int i = -1900000; i <= 1900000; i++) {
        float x = (float)i * 4.6e-5f; /* [-87.4, 87.4] */
        if (x > -87.0f) worst_exp = RC_MAX(worst_exp, ulps(vexp(x), expf(x)));
        double s = 1.0 / (1.0 + exp(-(double)x)), t = tanh((double)x);
        if (x > -80.0f) worst_sig = fmax(worst_sig, fabs(vsigmoid(x) - s) / s);
        if (x != 0.0f) worst_tanh = fmax(worst_tanh, fabs(vtanh(x) - t) / fabs(t));
    }
    CHECK(worst_exp <= 2, "vexp: %ld ulps from expf", worst_exp);
    CHECK(worst_sig <= 4e-7, "vsigmoid: relative error %.3g", worst_sig);
    CHECK(worst_tanh <= 4e-7, "vtanh: relative error %.3g", worst_tanh);
    const float big[] = {-1e30f, -200.0f, -88.5f, 88.5f, 200.0f, 1e30f};
    for (int i = 0; i < 6; i++) {
        float x = big[i], sg = vsigmoid(x), th = vtanh(x);
        CHECK(x < 0 ? sg >= 0.0f && sg < 1e-37f : sg == 1.0f, "vsigmoid(%g) = %g", x, sg);
        CHECK(th == (x < 0 ? -1.0f : 1.0f), "vtanh(%g) = %g", x, th);
        CHECK(isfinite(vexp(x)), "vexp(%g) is not finite", x);
    }
    CHECK(vtanh(0.0f) == 0.0f && vsigmoid(0.0f) == 0.5f && vexp(0.0f) == 1.0f, "values at 0");
}

static void test_fast_vs_ref_others(void) {
    size_t n = 200003; /* above every parallel threshold, not a multiple of any block */
    float *a = fbuf(n), *b = fbuf(n), *y = fbuf(n), *d = fbuf(n);
    fill_normal(a, n, 2.0f);
    fill_normal(b, n, 1.0f);
    FAST_VS_REF("relu forward", y, n, 1e-6, rc_relu_forward(n, a, y));
    FAST_VS_REF("relu backward", d, n, 1e-6, rc_relu_backward(n, a, b, d, 0));
    FAST_VS_REF("sigmoid forward", y, n, 1e-6, rc_sigmoid_forward(n, a, y));
    FAST_VS_REF("sigmoid backward", d, n, 1e-6, rc_sigmoid_backward(n, y, b, d, 0));
    FAST_VS_REF("tanh forward", y, n, 1e-6, rc_tanh_forward(n, a, y));
    FAST_VS_REF("tanh backward", d, n, 1e-6, rc_tanh_backward(n, y, b, d, 0));
    FAST_VS_REF("add forward", y, n, 1e-6, rc_add_forward(n, a, b, y));
    FAST_VS_REF("add backward", d, n, 1e-6, rc_add_backward(n, b, d, 0, NULL, 0));
    FAST_VS_REF("mul forward", y, n, 1e-6, rc_mul_forward(n, a, b, y));
    FAST_VS_REF("mul backward", d, n, 1e-6, rc_mul_backward(n, a, b, y, d, 0, NULL, 0));
    FAST_VS_REF("lerp forward", y, n, 1e-6, rc_lerp_forward(n, b, a, d, y));
    FAST_VS_REF("lerp forward (b zero)", y, n, 1e-6, rc_lerp_forward(n, b, a, NULL, y));
    for (int j = 0; j < 3; j++)
        FAST_VS_REF("lerp backward", d, n, 1e-6,
                    rc_lerp_backward(n, b, a, y, a, j == 0 ? d : NULL, 0, j == 1 ? d : NULL, 0, j == 2 ? d : NULL, 0));

    rc_pool_dims pd;
    rc_pool_dims_init(&pd, 8, 16, 28, 28, 3, 2, 1);
    size_t nx = pool_in(&pd), ny = pool_out(&pd);
    FAST_VS_REF("maxpool forward", y, ny, 1e-6, rc_maxpool_forward(&pd, a, y));
    FAST_VS_REF("maxpool backward", d, nx, 1e-6, rc_maxpool_backward(&pd, a, b, d, 0));
    FAST_VS_REF("avgpool forward", y, ny, 1e-6, rc_avgpool_forward(&pd, a, y));
    FAST_VS_REF("avgpool backward", d, nx, 1e-6, rc_avgpool_backward(&pd, b, d, 0));
    FAST_VS_REF("gap forward", y, (size_t)8 * 16, 1e-6, rc_gap_forward(8, 16, 28 * 28, a, y));
    FAST_VS_REF("gap backward", d, nx, 1e-6, rc_gap_backward(8, 16, 28 * 28, b, d, 0));
    /* 8*16 planes of 14x14 -> 28x28 (fits in the 200003-float buffers) */
    FAST_VS_REF("upsample forward", y, (size_t)8 * 16 * 28 * 28, 1e-6,
                rc_upsample_forward(8, 16, 14, 14, 28, 28, a, y));
    FAST_VS_REF("upsample backward", d, (size_t)8 * 16 * 14 * 14, 1e-6,
                rc_upsample_backward(8, 16, 14, 14, 27, 25, b, d, 0));
    /* linear: 64 x 300 -> 20 (feature count crosses the accumulator block) */
    int ln = 64, li = 300, lo = 20;
    float *dw = fbuf((size_t)lo * li), *db = fbuf((size_t)lo);
    FAST_VS_REF("linear forward", y, (size_t)ln * lo, 1e-6, rc_linear_forward(ln, li, lo, a, b, b + 7000, y));
    FAST_VS_REF("linear backward dx", d, (size_t)ln * li, 1e-6,
                rc_linear_backward(ln, li, lo, a, b, b + 9000, d, 0, NULL, NULL));
    FAST_VS_REF("linear backward dw", dw, (size_t)lo * li, 1e-6, {
        memset(dw, 0, (size_t)lo * li * sizeof(float));
        rc_linear_backward(ln, li, lo, a, b, b + 9000, NULL, 0, dw, db);
    });
    free(dw), free(db);
    free(a), free(b), free(y), free(d);
}

int main(void) {
    rc_rng_seed(&g_rng, 1234);
    RUN_TEST(test_forward_values);
    RUN_TEST(test_pool_hand);
    RUN_TEST(test_upsample_hand);
    RUN_TEST(test_upsample_add_stats);
    RUN_TEST(test_batchnorm_grad);
    RUN_TEST(test_batchnorm_stats);
    RUN_TEST(test_xent);
    RUN_TEST(test_fast_vs_ref_batchnorm);
    RUN_TEST(test_fast_vs_ref_others);
    RUN_TEST(test_vmath);
    TEST_MAIN_END();
}
