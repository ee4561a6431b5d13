/* test_conv.c — conv2d tests: the reference backward against central finite differences (grouped and
 * depthwise too, whose forward is also checked against per-group convolutions), the oneDNN fast path
 * against the reference on many shapes (forward, dx overwrite/accumulate, dw/db accumulate; grouped on
 * plain and blocked activations), determinism of the fast path, and that repeated calls of one shape
 * create no new primitives. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/rng.h"
#include "ops/conv2d_dnnl.h"
#include "ops/conv2d_wino.h"
#include "ops/ops.h"
#include "test.h"

/* Smaller shapes under AddressSanitizer so the binary stays fast there. */
#if defined(__SANITIZE_ADDRESS__)
#define RC_TEST_SMALL 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RC_TEST_SMALL 1
#endif
#endif
#ifndef RC_TEST_SMALL
#define RC_TEST_SMALL 0
#endif

static float *rand_buf(rc_rng *r, size_t n) {
    float *p = rc_xmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = rc_rng_uniform(r) * 2.0f - 1.0f;
    return p;
}

static float *zero_buf(size_t n) { return rc_xcalloc(n, sizeof(float)); }

static size_t x_size(const rc_conv_dims *d) { return (size_t)d->n * d->c * d->h * d->w; }
static size_t y_size(const rc_conv_dims *d) { return (size_t)d->n * d->k * d->ho * d->wo; }
static size_t w_size(const rc_conv_dims *d) { return (size_t)d->k * (d->c / d->groups) * d->r * d->r; }

/* L = sum_i g_i * y_i in double, y = conv(x, w, b) by the reference. */
static double loss_ref(const rc_conv_dims *d, const float *x, const float *w, const float *b, const float *g,
                       float *ybuf) {
    rc_conv2d_forward_ref(d, x, w, b, ybuf);
    double s = 0.0;
    for (size_t i = 0; i < y_size(d); i++) s += (double)g[i] * ybuf[i];
    return s;
}

/* Central difference of L with respect to p[i]; L is linear in every input, so a large step is exact
 * up to float rounding of y. */
static double fd(const rc_conv_dims *d, float *x, float *w, float *b, const float *g, float *ybuf, float *p,
                 size_t i) {
    const float eps = 0.25f;
    float save = p[i];
    p[i] = save + eps;
    double lp = loss_ref(d, x, w, b, g, ybuf);
    p[i] = save - eps;
    double lm = loss_ref(d, x, w, b, g, ybuf);
    p[i] = save;
    return (lp - lm) / (2.0 * (double)eps);
}

static void test_ref_backward_vs_fd(void) {
    const int ks[] = {1, 3, 5}, ss[] = {1, 2}, ps[] = {0, 1, 2};
    rc_rng rng;
    rc_rng_seed(&rng, 1);
    int cases = 0;
    for (int ki = 0; ki < 3; ki++)
        for (int si = 0; si < 2; si++)
            for (int pi = 0; pi < 3; pi++)
                for (int bias = 0; bias < 2; bias++) {
                    /* alternate a square and a non-square input */
                    const int h = 5, w = (cases % 2) ? 6 : 5;
                    if (h + 2 * ps[pi] < ks[ki]) continue;
                    rc_conv_dims d;
                    rc_conv_dims_init(&d, 2, 3, h, w, 4, ks[ki], ss[si], ps[pi]);
                    float *x = rand_buf(&rng, x_size(&d)), *wt = rand_buf(&rng, w_size(&d));
                    float *b = bias ? rand_buf(&rng, (size_t)d.k) : NULL;
                    float *g = rand_buf(&rng, y_size(&d)), *ybuf = zero_buf(y_size(&d));
                    float *dx = rand_buf(&rng, x_size(&d)); /* garbage: acc=0 must overwrite */
                    float *dw = zero_buf(w_size(&d)), *db = zero_buf((size_t)d.k);
                    rc_conv2d_backward_ref(&d, x, wt, g, dx, 0, dw, bias ? db : NULL);
                    char what[128];
                    for (size_t i = 0; i < x_size(&d); i++) {
                        snprintf(what, sizeof what, "dx[%zu] R=%d s=%d p=%d", i, d.r, d.stride, d.pad);
                        CHECK_CLOSE(dx[i], fd(&d, x, wt, b, g, ybuf, x, i), 1e-4, 1e-4, what);
                    }
                    for (size_t i = 0; i < w_size(&d); i++) {
                        snprintf(what, sizeof what, "dw[%zu] R=%d s=%d p=%d", i, d.r, d.stride, d.pad);
                        CHECK_CLOSE(dw[i], fd(&d, x, wt, b, g, ybuf, wt, i), 1e-4, 1e-4, what);
                    }
                    if (bias)
                        for (int i = 0; i < d.k; i++) {
                            snprintf(what, sizeof what, "db[%d] R=%d s=%d p=%d", i, d.r, d.stride, d.pad);
                            CHECK_CLOSE(db[i], fd(&d, x, wt, b, g, ybuf, b, (size_t)i), 1e-4, 1e-4, what);
                        }
                    /* accumulation: dx_acc=1 adds onto dx; dw and db add again */
                    float *dx2 = rc_xmalloc(x_size(&d) * sizeof(float));
                    float *base = rand_buf(&rng, x_size(&d));
                    memcpy(dx2, base, x_size(&d) * sizeof(float));
                    float *dw_once = rc_xmalloc(w_size(&d) * sizeof(float));
                    memcpy(dw_once, dw, w_size(&d) * sizeof(float));
                    rc_conv2d_backward_ref(&d, x, wt, g, dx2, 1, dw, bias ? db : NULL);
                    for (size_t i = 0; i < x_size(&d); i++)
                        CHECK_CLOSE(dx2[i], base[i] + dx[i], 1e-5, 1e-5, "ref dx_acc=1");
                    for (size_t i = 0; i < w_size(&d); i++)
                        CHECK_CLOSE(dw[i], 2.0 * dw_once[i], 1e-6, 1e-6, "ref dw accumulates");
                    free(x), free(wt), free(b), free(g), free(ybuf), free(dx), free(dw), free(db);
                    free(dx2), free(base), free(dw_once);
                    cases++;
                }
    CHECK(cases == 36, "expected 36 finite-difference cases, ran %d", cases);
}

/* Grouped convolutions by the reference: the forward equals G separate convolutions over the channel slices
 * of each group, and the backward matches central finite differences, for groups 2 (C 4 -> K 6, and odd
 * per-group counts C 6 -> K 10 in 2 groups of 3 -> 5) and depthwise (groups = C = 3, K = C and K = 2C). */
static void test_ref_grouped(void) {
    static const int cfg[][3] = {{4, 6, 2}, {6, 10, 2}, {3, 3, 3}, {3, 6, 3}}; /* C, K, groups */
    const int ks[] = {1, 3}, ss[] = {1, 2};
    rc_rng rng;
    rc_rng_seed(&rng, 21);
    int cases = 0;
    for (int ci = 0; ci < 4; ci++)
        for (int ki = 0; ki < 2; ki++)
            for (int si = 0; si < 2; si++) {
                const int bias = (ci + ki + si) % 2, pad = ks[ki] / 2, G = cfg[ci][2];
                rc_conv_dims d;
                rc_conv_dims_init(&d, 2, cfg[ci][0], 5, 6, cfg[ci][1], ks[ki], ss[si], pad);
                d.groups = G;
                char what[160];
                snprintf(what, sizeof what, "C=%d K=%d groups=%d R=%d s=%d", d.c, d.k, G, d.r, d.stride);
                float *x = rand_buf(&rng, x_size(&d)), *wt = rand_buf(&rng, w_size(&d));
                float *b = bias ? rand_buf(&rng, (size_t)d.k) : NULL;
                float *g = rand_buf(&rng, y_size(&d)), *ybuf = zero_buf(y_size(&d));
                /* forward: group j alone is an ungrouped conv of x's channels [j Cg, (j+1) Cg) with the
                 * weights and bias of outputs [j Kg, (j+1) Kg) */
                rc_conv2d_forward_ref(&d, x, wt, b, ybuf);
                const int Cg = d.c / G, Kg = d.k / G;
                const size_t hw = (size_t)d.h * d.w, ohw = (size_t)d.ho * d.wo;
                rc_conv_dims dg;
                rc_conv_dims_init(&dg, 1, Cg, d.h, d.w, Kg, d.r, d.stride, d.pad);
                float *yg = zero_buf((size_t)Kg * ohw);
                for (int n = 0; n < d.n; n++)
                    for (int j = 0; j < G; j++) {
                        rc_conv2d_forward_ref(&dg, x + ((size_t)n * d.c + (size_t)j * Cg) * hw,
                                              wt + (size_t)j * Kg * Cg * d.r * d.r, b ? b + j * Kg : NULL, yg);
                        const float *yr = ybuf + ((size_t)n * d.k + (size_t)j * Kg) * ohw;
                        for (size_t i = 0; i < (size_t)Kg * ohw; i++)
                            CHECK(yg[i] == yr[i], "grouped forward vs per-group conv %s: [%zu] %g vs %g", what, i,
                                  (double)yr[i], (double)yg[i]);
                    }
                free(yg);
                float *dx = rand_buf(&rng, x_size(&d)); /* garbage: acc=0 must overwrite */
                float *dw = zero_buf(w_size(&d)), *db = zero_buf((size_t)d.k);
                rc_conv2d_backward_ref(&d, x, wt, g, dx, 0, dw, bias ? db : NULL);
                char m[200];
                for (size_t i = 0; i < x_size(&d); i++) {
                    snprintf(m, sizeof m, "dx[%zu] %s", i, what);
                    CHECK_CLOSE(dx[i], fd(&d, x, wt, b, g, ybuf, x, i), 1e-4, 1e-4, m);
                }
                for (size_t i = 0; i < w_size(&d); i++) {
                    snprintf(m, sizeof m, "dw[%zu] %s", i, what);
                    CHECK_CLOSE(dw[i], fd(&d, x, wt, b, g, ybuf, wt, i), 1e-4, 1e-4, m);
                }
                if (bias)
                    for (int i = 0; i < d.k; i++) {
                        snprintf(m, sizeof m, "db[%d] %s", i, what);
                        CHECK_CLOSE(db[i], fd(&d, x, wt, b, g, ybuf, b, (size_t)i), 1e-4, 1e-4, m);
                    }
                /* accumulation: dx_acc=1 adds onto dx */
                float *dx2 = rand_buf(&rng, x_size(&d)), *base = rc_xmalloc(x_size(&d) * sizeof(float));
                memcpy(base, dx2, x_size(&d) * sizeof(float));
                rc_conv2d_backward_ref(&d, x, wt, g, dx2, 1, NULL, NULL);
                for (size_t i = 0; i < x_size(&d); i++)
                    CHECK_CLOSE(dx2[i], base[i] + dx[i], 1e-5, 1e-5, "grouped ref dx_acc=1");
                free(x), free(wt), free(b), free(g), free(ybuf), free(dx), free(dw), free(db), free(dx2), free(base);
                cases++;
            }
    CHECK(cases == 16, "expected 16 grouped finite-difference cases, ran %d", cases);
    CHECK(rc_conv2d_flops(&(rc_conv_dims){.n = 1, .c = 8, .k = 8, .ho = 1, .wo = 1, .r = 1, .groups = 8}) == 16.0,
          "depthwise flops");
}

/* max |a - b| <= rel * max |ref| (+ a tiny floor for all-zero references) */
static void check_rel(const float *got, const float *ref, size_t n, double rel, const char *what) {
    double mref = 0.0, merr = 0.0;
    size_t worst = 0;
    for (size_t i = 0; i < n; i++) {
        double r = fabs((double)ref[i]), e = fabs((double)got[i] - (double)ref[i]);
        if (r > mref) mref = r;
        if (e > merr || isnan(got[i])) merr = isnan(got[i]) ? INFINITY : e, worst = i;
    }
    CHECK(merr <= rel * mref + 1e-30, "%s: max error %.3g at [%zu] (got %.9g want %.9g), max |ref| %.3g", what, merr,
          worst, (double)got[worst], (double)ref[worst], mref);
}

typedef struct {
    int n, c, h, w, k, r, s, p;
} shape;

/* Floats of an (n, c, hw) activation in nChw16c (channels padded to 16). */
static size_t blk_size(int n, int c, int hw) { return (size_t)n * ((c + 15) / 16 * 16) * hw; }

/* blk: which activations run blocked, a mask: 1 x (and dx), 2 y (and dy); 0 plain. */
enum { BLK_X = 1, BLK_Y = 2, BLK_XY = 3 };

/* p (plain, (n, c, hw)) as the conv sees it: p itself, or a blocked copy (freed by the caller). */
static float *as_layout(int blocked, int n, int c, int hw, const float *p) {
    if (!blocked) return (float *)(uintptr_t)p;
    float *q = zero_buf(blk_size(n, c, hw));
    rc_layout_to_blk16(n, c, hw, p, q);
    return q;
}

static void drop_layout(int blocked, float *q) {
    if (blocked) free(q);
}

/* rc_conv2d_forward on plain x, y, run on the layouts blk asks (d's layouts plain). */
static void fwd_l(const rc_conv_dims *d, int blk, const float *x, const float *w, const float *b, float *y) {
    rc_conv_dims dl = *d;
    dl.x_layout = blk & BLK_X ? RC_LAYOUT_BLK16 : RC_LAYOUT_NCHW;
    dl.y_layout = blk & BLK_Y ? RC_LAYOUT_BLK16 : RC_LAYOUT_NCHW;
    const int hw = d->h * d->w, ohw = d->ho * d->wo;
    float *xl = as_layout(blk & BLK_X, d->n, d->c, hw, x), *yl = as_layout(blk & BLK_Y, d->n, d->k, ohw, y);
    rc_conv2d_forward(&dl, xl, w, b, yl);
    if (blk & BLK_Y) rc_layout_from_blk16(d->n, d->k, ohw, yl, y);
    drop_layout(blk & BLK_X, xl), drop_layout(blk & BLK_Y, yl);
}

/* rc_conv2d_backward likewise (dx, when given, converted in and out so that accumulation is seen). */
static void bwd_l(const rc_conv_dims *d, int blk, const float *x, const float *w, const float *dy, float *dx,
                  int dx_acc, float *dw, float *db) {
    rc_conv_dims dl = *d;
    dl.x_layout = blk & BLK_X ? RC_LAYOUT_BLK16 : RC_LAYOUT_NCHW;
    dl.y_layout = blk & BLK_Y ? RC_LAYOUT_BLK16 : RC_LAYOUT_NCHW;
    const int hw = d->h * d->w, ohw = d->ho * d->wo;
    float *xl = as_layout(blk & BLK_X, d->n, d->c, hw, x), *dyl = as_layout(blk & BLK_Y, d->n, d->k, ohw, dy);
    float *dxl = dx ? as_layout(blk & BLK_X, d->n, d->c, hw, dx) : NULL;
    rc_conv2d_backward(&dl, xl, w, dyl, dxl, dx_acc, dw, db);
    if (dx && (blk & BLK_X)) rc_layout_from_blk16(d->n, d->c, hw, dxl, dx);
    drop_layout(blk & BLK_X, xl), drop_layout(blk & BLK_Y, dyl);
    if (dx) drop_layout(blk & BLK_X, dxl);
}

/* The fast path (rc_conv2d_forward/backward with rc_ops_fast=1) against the reference, with the given
 * groups, on the activation layouts blk asks (BLK_*). */
static void fast_vs_ref_g(const shape *sh, int groups, int blk, int bias, rc_rng *rng) {
    rc_conv_dims d;
    rc_conv_dims_init(&d, sh->n, sh->c, sh->h, sh->w, sh->k, sh->r, sh->s, sh->p);
    d.groups = groups;
    char what[200];
    snprintf(what, sizeof what, "N=%d C=%d %dx%d K=%d R=%d s=%d p=%d groups=%d blocked=%d bias=%d", d.n, d.c, d.h,
             d.w, d.k, d.r, d.stride, d.pad, groups, blk, bias);
    const size_t nx = x_size(&d), ny = y_size(&d), nw = w_size(&d), nk = (size_t)d.k;
    float *x = rand_buf(rng, nx), *w = rand_buf(rng, nw), *b = bias ? rand_buf(rng, nk) : NULL;
    float *dy = rand_buf(rng, ny), *base = rand_buf(rng, nx);
    float *y0 = zero_buf(ny), *y1 = zero_buf(ny);
    float *dx0 = zero_buf(nx), *dx1 = rand_buf(rng, nx);
    float *dw0 = zero_buf(nw), *dw1 = zero_buf(nw), *db0 = zero_buf(nk), *db1 = zero_buf(nk);
    char m[260];

    rc_conv2d_forward_ref(&d, x, w, b, y0);
    fwd_l(&d, blk, x, w, b, y1);
    snprintf(m, sizeof m, "forward %s", what);
    check_rel(y1, y0, ny, 1e-4, m);

    /* dx overwrite (dx1 holds garbage), dw/db accumulate from zero */
    rc_conv2d_backward_ref(&d, x, w, dy, dx0, 0, dw0, bias ? db0 : NULL);
    bwd_l(&d, blk, x, w, dy, dx1, 0, dw1, bias ? db1 : NULL);
    snprintf(m, sizeof m, "dx acc=0 %s", what);
    check_rel(dx1, dx0, nx, 1e-4, m);
    snprintf(m, sizeof m, "dw %s", what);
    check_rel(dw1, dw0, nw, 1e-4, m);
    if (bias) {
        snprintf(m, sizeof m, "db %s", what);
        check_rel(db1, db0, nk, 1e-4, m);
    }

    /* second call: dx accumulates onto base, dw/db double */
    memcpy(dx0, base, nx * sizeof(float));
    memcpy(dx1, base, nx * sizeof(float));
    rc_conv2d_backward_ref(&d, x, w, dy, dx0, 1, NULL, NULL);
    bwd_l(&d, blk, x, w, dy, dx1, 1, dw1, bias ? db1 : NULL);
    snprintf(m, sizeof m, "dx acc=1 %s", what);
    check_rel(dx1, dx0, nx, 1e-4, m);
    for (size_t i = 0; i < nw; i++) dw0[i] *= 2.0f;
    for (size_t i = 0; i < nk; i++) db0[i] *= 2.0f;
    snprintf(m, sizeof m, "dw twice %s", what);
    check_rel(dw1, dw0, nw, 1e-4, m);
    if (bias) {
        snprintf(m, sizeof m, "db twice %s", what);
        check_rel(db1, db0, nk, 1e-4, m);
    }

    /* NULL dx: only weight gradients; NULL dw/db: only dx */
    float *dw2 = zero_buf(nw);
    bwd_l(&d, blk, x, w, dy, NULL, 0, dw2, NULL);
    for (size_t i = 0; i < nw; i++) dw0[i] *= 0.5f;
    snprintf(m, sizeof m, "dw (dx NULL) %s", what);
    check_rel(dw2, dw0, nw, 1e-4, m);
    memcpy(dx1, base, nx * sizeof(float));
    bwd_l(&d, blk, x, w, dy, dx1, 1, NULL, NULL);
    snprintf(m, sizeof m, "dx (dw NULL) %s", what);
    check_rel(dx1, dx0, nx, 1e-4, m);
    if (bias) { /* the bias gradient alone */
        float *db2 = zero_buf(nk);
        bwd_l(&d, blk, x, w, dy, NULL, 0, NULL, db2);
        for (size_t i = 0; i < nk; i++) db0[i] *= 0.5f;
        snprintf(m, sizeof m, "db alone %s", what);
        check_rel(db2, db0, nk, 1e-5, m);
        free(db2);
    }

    free(x), free(w), free(b), free(dy), free(base), free(y0), free(y1), free(dx0), free(dx1);
    free(dw0), free(dw1), free(db0), free(db1), free(dw2);
}

static void fast_vs_ref(const shape *sh, int bias, rc_rng *rng) { fast_vs_ref_g(sh, 1, 0, bias, rng); }

static const shape g_shapes[] = {
    {8, 16, 28, 28, 32, 3, 1, 1},  /* the common trunk conv */
    {4, 32, 14, 14, 64, 1, 2, 0},  /* stride-2 1x1 projection */
    {4, 16, 15, 15, 32, 3, 2, 1},  /* stride-2 3x3, odd input */
    {4, 64, 7, 7, 16, 1, 1, 0},    /* 1x1 */
    {4, 48, 12, 12, 128, 3, 1, 1}, /* ConvLSTM-like: (input 16 + hidden 32) -> 4 gates x 32 */
    {3, 5, 9, 13, 7, 3, 2, 1},     /* non-square, odd channel counts */
    {2, 6, 6, 11, 10, 5, 1, 2},    /* non-square 5x5 */
    {2, 3, 32, 32, 16, 3, 1, 1},   /* first layer, 3 channels */
    {2, 3, 20, 18, 8, 7, 2, 3},    /* 7x7 stride-2 stem */
    {1, 17, 8, 8, 9, 3, 1, 0},     /* no padding, N=1 */
    {2, 8, 5, 5, 8, 5, 1, 0},      /* kernel as large as the input */
};

static void test_fast_vs_ref(void) {
    rc_rng rng;
    rc_rng_seed(&rng, 2);
    rc_ops_fast = 1;
    const int nshapes = (int)(sizeof g_shapes / sizeof g_shapes[0]);
#ifdef RC_HAVE_DNNL
    const int npolicies = 3; /* plain, blocked and auto layout policies all stay correct */
#else
    const int npolicies = 1;
#endif
    for (int pol = 0; pol < npolicies; pol++) {
#ifdef RC_HAVE_DNNL
        int old = rc_conv2d_dnnl_set_blocked(pol);
#endif
        for (int i = 0; i < nshapes; i++) {
            shape sh = g_shapes[i];
            if (RC_TEST_SMALL && sh.n > 2) sh.n = 2;
            fast_vs_ref(&sh, i % 2, &rng);
            fast_vs_ref(&sh, 1 - i % 2, &rng);
        }
#ifdef RC_HAVE_DNNL
        rc_conv2d_dnnl_set_blocked(old);
#endif
    }
}

/* Grouped and depthwise convolutions: the fast path against the reference on plain activations (each
 * layout policy of oneDNN) and on blocked ones, odd channel counts and channels not multiples of 16. */
static const struct {
    shape s;
    int groups;
} g_grouped[] = {
    {{2, 4, 7, 6, 6, 3, 1, 1}, 2},      /* 2 groups of 2 -> 3 */
    {{2, 10, 6, 6, 6, 3, 1, 1}, 2},     /* odd per-group counts: 5 -> 3 */
    {{2, 6, 9, 9, 9, 3, 2, 1}, 3},      /* 3 groups, stride 2 */
    {{2, 5, 8, 7, 5, 3, 1, 1}, 5},      /* depthwise, 5 channels */
    {{2, 7, 6, 6, 14, 1, 1, 0}, 7},     /* depthwise 1x1, channel multiplier 2 */
    {{2, 32, 10, 10, 32, 3, 1, 1}, 32}, /* depthwise, 32 channels (blocked without padding) */
    {{2, 16, 8, 8, 16, 5, 1, 2}, 16},   /* depthwise 5x5 */
    {{2, 32, 9, 9, 64, 3, 2, 1}, 2},    /* 2 groups of 16 -> 32, stride 2 */
    {{2, 48, 7, 7, 48, 3, 1, 1}, 2},    /* 2 groups of 24 */
};

static void test_grouped_fast_vs_ref(void) {
    rc_rng rng;
    rc_rng_seed(&rng, 22);
    rc_ops_fast = 1;
    const int n = (int)(sizeof g_grouped / sizeof g_grouped[0]);
#ifdef RC_HAVE_DNNL
    for (int pol = 0; pol < 3; pol++) {
        int old = rc_conv2d_dnnl_set_blocked(pol);
        for (int i = 0; i < n; i++) fast_vs_ref_g(&g_grouped[i].s, g_grouped[i].groups, 0, (i + pol) % 2, &rng);
        rc_conv2d_dnnl_set_blocked(old);
    }
#else
    for (int i = 0; i < n; i++) fast_vs_ref_g(&g_grouped[i].s, g_grouped[i].groups, 0, i % 2, &rng);
#endif
    for (int i = 0; i < n; i++)
        for (int bias = 0; bias <= 1; bias++) fast_vs_ref_g(&g_grouped[i].s, g_grouped[i].groups, BLK_XY, bias, &rng);
}

/* Two runs of the fast path on the same inputs give bit-identical outputs and gradients. */
static void test_determinism(void) {
    rc_rng rng;
    rc_rng_seed(&rng, 3);
    rc_ops_fast = 1;
    rc_conv_dims d;
    rc_conv_dims_init(&d, RC_TEST_SMALL ? 2 : 8, 16, 28, 28, 32, 3, 1, 1);
    const size_t nx = x_size(&d), ny = y_size(&d), nw = w_size(&d), nk = (size_t)d.k;
    float *x = rand_buf(&rng, nx), *w = rand_buf(&rng, nw), *b = rand_buf(&rng, nk), *dy = rand_buf(&rng, ny);
    float *out[2][4];
    for (int run = 0; run < 2; run++) {
        out[run][0] = zero_buf(ny), out[run][1] = zero_buf(nx), out[run][2] = zero_buf(nw);
        out[run][3] = zero_buf(nk);
        rc_conv2d_forward(&d, x, w, b, out[run][0]);
        rc_conv2d_backward(&d, x, w, dy, out[run][1], 0, out[run][2], out[run][3]);
    }
    CHECK(memcmp(out[0][0], out[1][0], ny * sizeof(float)) == 0, "forward differs between runs");
    CHECK(memcmp(out[0][1], out[1][1], nx * sizeof(float)) == 0, "dx differs between runs");
    CHECK(memcmp(out[0][2], out[1][2], nw * sizeof(float)) == 0, "dw differs between runs");
    CHECK(memcmp(out[0][3], out[1][3], nk * sizeof(float)) == 0, "db differs between runs");
    for (int run = 0; run < 2; run++)
        for (int j = 0; j < 4; j++) free(out[run][j]);
    free(x), free(w), free(b), free(dy);
}

/* The same shape called many times creates its primitives once. */
static void test_primitive_reuse(void) {
#ifdef RC_HAVE_DNNL
    rc_rng rng;
    rc_rng_seed(&rng, 4);
    rc_ops_fast = 1;
    rc_conv2d_release();
    CHECK(rc_conv2d_dnnl_primitive_count() == 0, "count after release is %d", rc_conv2d_dnnl_primitive_count());
    rc_conv_dims d;
    rc_conv_dims_init(&d, 2, 8, 10, 10, 16, 3, 1, 1);
    const size_t nx = x_size(&d), ny = y_size(&d), nw = w_size(&d), nk = (size_t)d.k;
    float *x = rand_buf(&rng, nx), *w = rand_buf(&rng, nw), *b = rand_buf(&rng, nk), *dy = rand_buf(&rng, ny);
    float *y = zero_buf(ny), *dx = zero_buf(nx), *dw = zero_buf(nw), *db = zero_buf(nk);
    /* warm-up: both dx_acc values so lazily made accumulate reorders exist */
    rc_conv2d_forward(&d, x, w, b, y);
    rc_conv2d_backward(&d, x, w, dy, dx, 0, dw, db);
    rc_conv2d_backward(&d, x, w, dy, dx, 1, dw, db);
    const int after_first = rc_conv2d_dnnl_primitive_count();
    CHECK(after_first >= 3, "expected at least 3 primitives (fwd, bwd data, bwd weights), got %d", after_first);
    for (int t = 0; t < 20; t++) { /* a recurrent cell unrolled 20 times */
        rc_conv2d_forward(&d, x, w, b, y);
        rc_conv2d_backward(&d, x, w, dy, dx, t % 2, dw, db);
    }
    CHECK(rc_conv2d_dnnl_primitive_count() == after_first, "primitives grew from %d to %d on repeated calls",
          after_first, rc_conv2d_dnnl_primitive_count());
    /* a new shape adds primitives; the old shape still adds none */
    rc_conv_dims d2;
    rc_conv_dims_init(&d2, 2, 8, 10, 10, 16, 1, 1, 0);
    rc_conv2d_forward(&d2, x, w, b, y);
    const int after_second = rc_conv2d_dnnl_primitive_count();
    CHECK(after_second > after_first, "a new shape created no primitive");
    rc_conv2d_forward(&d, x, w, b, y);
    rc_conv2d_forward(&d2, x, w, b, y);
    CHECK(rc_conv2d_dnnl_primitive_count() == after_second, "old shapes recreated primitives");
    rc_conv2d_release();
    CHECK(rc_conv2d_dnnl_primitive_count() == 0, "count after release is %d", rc_conv2d_dnnl_primitive_count());
    /* usable again after release */
    float *y2 = zero_buf(ny);
    rc_conv2d_forward(&d, x, w, b, y2);
    rc_conv2d_forward_ref(&d, x, w, b, y);
    check_rel(y2, y, ny, 1e-4, "forward after release");
    free(x), free(w), free(b), free(dy), free(y), free(dx), free(dw), free(db), free(y2);
#endif
}

/* Shapes for recur's Winograd kernels (3x3, stride 1, pad 1, channels multiples of 16): 28x28 and 14x14
 * (4x4 and 2x2 tiles), odd and non-square sizes (partial tiles), 1x1 and 3x2 images, N = 1, 48 and 128
 * channels (a 16-channel block after the 32s). */
static const shape g_wino_shapes[] = {
    {2, 16, 28, 28, 32, 3, 1, 1}, {3, 32, 14, 14, 64, 3, 1, 1}, {1, 16, 7, 9, 16, 3, 1, 1},
    {2, 48, 5, 6, 16, 3, 1, 1},   {1, 16, 1, 1, 16, 3, 1, 1},   {2, 32, 13, 30, 128, 3, 1, 1},
    {2, 64, 3, 2, 32, 3, 1, 1},   {1, 16, 17, 19, 48, 3, 1, 1},
};

/* g_wino_shapes[i] as plain dims d (which the kernels must refuse) and blocked dims db (which they take). */
static void wino_dims(size_t i, rc_conv_dims *d, rc_conv_dims *db) {
    const shape *sh = &g_wino_shapes[i];
    rc_conv_dims_init(d, sh->n, sh->c, sh->h, sh->w, sh->k, sh->r, sh->s, sh->p);
    CHECK(!rc_conv2d_wino_ok(d), "plain layouts must not qualify");
    *db = *d;
    db->x_layout = db->y_layout = RC_LAYOUT_BLK16;
    CHECK(rc_conv2d_wino_ok(db), "shape %zu must qualify", i);
}

/* The Winograd weight gradient (conv2d_wgrad.c) on blocked tensors against the reference, with 2x2 and
 * 4x4 tiles, on shapes with odd sizes (partial tiles), N = 1, 1x1 images, and 1 and 2 threads; it
 * accumulates onto dw. */
static void test_wgrad_wino(void) {
    rc_rng rng;
    rc_rng_seed(&rng, 11);
    const int old = rc_get_threads();
    for (size_t i = 0; i < sizeof g_wino_shapes / sizeof g_wino_shapes[0]; i++) {
        rc_conv_dims d, db;
        wino_dims(i, &d, &db);
        const size_t nx = x_size(&d), ny = y_size(&d), nw = w_size(&d);
        float *x = rand_buf(&rng, nx), *dy = rand_buf(&rng, ny), *base = rand_buf(&rng, nw);
        float *xb = zero_buf(nx), *dyb = zero_buf(ny), *dw0 = zero_buf(nw), *dw1 = zero_buf(nw);
        rc_layout_to_blk16(d.n, d.c, d.h * d.w, x, xb);
        rc_layout_to_blk16(d.n, d.k, d.h * d.w, dy, dyb);
        memcpy(dw0, base, nw * sizeof(float));
        rc_conv2d_backward_ref(&d, x, NULL, dy, NULL, 0, dw0, NULL);
        for (int tile = 2; tile <= 4; tile += 2)
            for (int t = 1; t <= 2; t++) {
                rc_set_threads(t);
                const int old_tile = rc_conv2d_wgrad_set_tile(tile);
                memcpy(dw1, base, nw * sizeof(float));
                rc_conv2d_wgrad_wino(&db, xb, dyb, dw1);
                rc_conv2d_wgrad_set_tile(old_tile);
                char m[160];
                snprintf(m, sizeof m, "wgrad %dx%d tiles, N=%d C=%d %dx%d K=%d, %d threads", tile, tile, d.n, d.c,
                         d.h, d.w, d.k, t);
                check_rel(dw1, dw0, nw, tile == 2 ? 2e-6 : 1e-5, m);
            }
        free(x), free(dy), free(base), free(xb), free(dyb), free(dw0), free(dw1);
    }
    rc_set_threads(old);
}

/* The Winograd forward and backward-data (conv2d_wino.c) on blocked tensors against the reference, with
 * 2x2 and 4x4 tiles, with and without bias, dx overwritten and accumulated, 1 and 2 threads; and its
 * transformed-weight cache: weights changed in place between calls are seen. */
static void test_wino_conv(void) {
    rc_rng rng;
    rc_rng_seed(&rng, 12);
    const int old = rc_get_threads();
    for (size_t i = 0; i < sizeof g_wino_shapes / sizeof g_wino_shapes[0]; i++) {
        rc_conv_dims d, db;
        wino_dims(i, &d, &db);
        const size_t nx = x_size(&d), ny = y_size(&d), nw = w_size(&d), hw = (size_t)d.h * d.w;
        float *x = rand_buf(&rng, nx), *dy = rand_buf(&rng, ny), *w = rand_buf(&rng, nw), *b = rand_buf(&rng, d.k);
        float *base = rand_buf(&rng, nx), *xb = zero_buf(nx), *dyb = zero_buf(ny), *yb = zero_buf(ny);
        float *y0 = zero_buf(ny), *y1 = zero_buf(ny), *dx0 = zero_buf(nx), *dx1 = zero_buf(nx), *dxb = zero_buf(nx);
        rc_layout_to_blk16(d.n, d.c, (int)hw, x, xb);
        rc_layout_to_blk16(d.n, d.k, (int)hw, dy, dyb);
        for (int tile = 2; tile <= 4; tile += 2)
            for (int t = 1; t <= 2; t++) {
                rc_set_threads(t);
                const int old_tile = rc_conv2d_wino_set_tile(tile);
                const int bias = (int)((i + (size_t)t) % 2), acc = t == 2;
                char m[200];
                snprintf(m, sizeof m, "%dx%d tiles, N=%d C=%d %dx%d K=%d, %d threads, bias %d, acc %d", tile, tile,
                         d.n, d.c, d.h, d.w, d.k, t, bias, acc);
                rc_conv2d_forward_ref(&d, x, w, bias ? b : NULL, y0);
                rc_conv2d_wino_forward(&db, xb, w, bias ? b : NULL, NULL, yb);
                rc_layout_from_blk16(d.n, d.k, (int)hw, yb, y1);
                char what[240];
                snprintf(what, sizeof what, "wino forward %s", m);
                check_rel(y1, y0, ny, tile == 2 ? 2e-6 : 1e-5, what);
                memcpy(dx0, base, nx * sizeof(float));
                rc_conv2d_backward_ref(&d, x, w, dy, dx0, acc, NULL, NULL);
                rc_layout_to_blk16(d.n, d.c, (int)hw, base, dxb);
                rc_conv2d_wino_backward_data(&db, w, dyb, dxb, acc);
                rc_layout_from_blk16(d.n, d.c, (int)hw, dxb, dx1);
                snprintf(what, sizeof what, "wino backward-data %s", m);
                check_rel(dx1, dx0, nx, tile == 2 ? 2e-6 : 1e-5, what);
                /* the same weight tensor, changed in place: the cache must not serve the old transform */
                for (size_t j = 0; j < nw; j += 7) w[j] = -w[j];
                rc_conv2d_forward_ref(&d, x, w, NULL, y0);
                rc_conv2d_wino_forward(&db, xb, w, NULL, NULL, yb);
                rc_layout_from_blk16(d.n, d.k, (int)hw, yb, y1);
                snprintf(what, sizeof what, "wino forward after a weight change %s", m);
                check_rel(y1, y0, ny, tile == 2 ? 2e-6 : 1e-5, what);
                rc_conv2d_wino_set_tile(old_tile);
            }
        free(x), free(dy), free(w), free(b), free(base), free(xb), free(dyb), free(yb);
        free(y0), free(y1), free(dx0), free(dx1), free(dxb);
    }
    /* more weight tensors than the cache has slots (64), then the first again: evicted and recomputed */
    {
        rc_conv_dims d;
        rc_conv_dims_init(&d, 1, 16, 4, 4, 16, 3, 1, 1);
        rc_conv_dims db = d;
        db.x_layout = db.y_layout = RC_LAYOUT_BLK16;
        const size_t nx = x_size(&d), ny = y_size(&d), nw = w_size(&d);
        enum { NWT = 70 };
        float *ws[NWT], *x = rand_buf(&rng, nx), *xb = zero_buf(nx), *yb = zero_buf(ny);
        float *y0 = zero_buf(ny), *y1 = zero_buf(ny);
        rc_layout_to_blk16(1, 16, 16, x, xb);
        for (int k = 0; k < NWT; k++) ws[k] = rand_buf(&rng, nw);
        for (int k = 0; k <= NWT; k++) {
            const float *w = ws[k % NWT];
            rc_conv2d_forward_ref(&d, x, w, NULL, y0);
            rc_conv2d_wino_forward(&db, xb, w, NULL, NULL, yb);
            rc_layout_from_blk16(1, 16, 16, yb, y1);
            char m[80];
            snprintf(m, sizeof m, "wino forward, weight tensor %d of %d", k % NWT, NWT);
            check_rel(y1, y0, ny, 1e-5, m);
        }
        for (int k = 0; k < NWT; k++) free(ws[k]);
        free(x), free(xb), free(yb), free(y0), free(y1);
    }
    rc_set_threads(old);
    rc_conv2d_wino_release();
}

/* The forward with batch-norm statistics in its epilogue (rc_conv2d_forward_stats): the same output, bit for
 * bit, as the forward without them; per image and channel, the sum and the sum of squares of that output
 * (summed here in double from what was written); the same bits with 1 and 2 threads, 2x2 and 4x4 tiles,
 * images cut into several bands of tiles (13x30 at 2x2 tiles: 2 work items an image), with bias and a
 * fused add. Where recur's kernels do not run the forward (plain layouts) it returns 0 and writes nothing. */
static void test_forward_stats(void) {
    rc_rng rng;
    rc_rng_seed(&rng, 17);
    const int old = rc_get_threads();
    for (size_t i = 0; i < sizeof g_wino_shapes / sizeof g_wino_shapes[0]; i++) {
        rc_conv_dims d, db;
        wino_dims(i, &d, &db);
        const size_t nx = x_size(&d), ny = y_size(&d), nw = w_size(&d), hw = (size_t)d.h * d.w;
        const size_t ns = (size_t)d.n * 2 * d.k;
        float *x = rand_buf(&rng, nx), *w = rand_buf(&rng, nw), *b = rand_buf(&rng, d.k), *r = rand_buf(&rng, ny);
        float *xb = zero_buf(nx), *rb = zero_buf(ny), *y0 = zero_buf(ny), *y1 = zero_buf(ny), *yp = zero_buf(ny);
        double *s1 = rc_xcalloc(ns, sizeof(double)), *st[2] = {rc_xcalloc(ns, sizeof(double)), rc_xcalloc(ns, sizeof(double))};
        for (size_t j = 0; j < ny; j++) r[j] += 0.5f; /* means away from 0 */
        rc_layout_to_blk16(d.n, d.c, (int)hw, x, xb);
        rc_layout_to_blk16(d.n, d.k, (int)hw, r, rb);
        for (int tile = 2; tile <= 4; tile += 2)
            for (int add = 0; add <= 1; add++) {
                const int old_tile = rc_conv2d_wino_set_tile(tile);
                char m[200];
                snprintf(m, sizeof m, "forward_stats %dx%d tiles, N=%d C=%d %dx%d K=%d, add %d", tile, tile, d.n, d.c,
                         d.h, d.w, d.k, add);
                rc_conv2d_forward_add(&db, xb, w, add ? NULL : b, add ? rb : NULL, y0);
                for (int t = 1; t <= 2; t++) {
                    rc_set_threads(t);
                    for (size_t j = 0; j < ny; j++) y1[j] = -1.0f;
                    CHECK(rc_conv2d_forward_stats(&db, xb, w, add ? NULL : b, add ? rb : NULL, y1, st[t - 1]) == 1,
                          "%s: not run by recur's kernels", m);
                    CHECK(memcmp(y1, y0, ny * sizeof(float)) == 0, "%s, %d threads: output differs from the forward", m, t);
                }
                CHECK(memcmp(st[0], st[1], ns * sizeof(double)) == 0, "%s: sums differ between 1 and 2 threads", m);
                rc_layout_from_blk16(d.n, d.k, (int)hw, y1, yp);
                for (int n = 0; n < d.n; n++)
                    for (int k = 0; k < d.k; k++) {
                        double sum = 0.0, sq = 0.0;
                        for (size_t q = 0; q < hw; q++) {
                            const double v = yp[((size_t)n * d.k + k) * hw + q];
                            sum += v;
                            sq += v * v;
                        }
                        s1[(size_t)n * 2 * d.k + k] = sum;
                        s1[(size_t)n * 2 * d.k + d.k + k] = sq;
                    }
                double e = 0.0;
                for (size_t j = 0; j < ns; j++) {
                    const double a = fabs(st[0][j] - s1[j]) / (fabs(s1[j]) + 1.0);
                    if (a > e) e = a;
                }
                CHECK(e < 1e-12, "%s: sums off by %.3g (relative)", m, e);
                rc_conv2d_wino_set_tile(old_tile);
            }
        for (size_t j = 0; j < ny; j++) y1[j] = -1.0f;
        CHECK(rc_conv2d_forward_stats(&d, x, w, b, NULL, y1, st[0]) == 0 && y1[0] == -1.0f && y1[ny - 1] == -1.0f,
              "shape %zu: plain layouts must be refused untouched", i);
        free(x), free(w), free(b), free(r), free(xb), free(rb), free(y0), free(y1), free(yp);
        free(s1), free(st[0]), free(st[1]);
    }
    rc_set_threads(old);
    rc_conv2d_wino_release();
}

/* rc_conv2d_forward_add (a convolution fused with the add after it) against the reference plus the add:
 * through recur's Winograd kernel (blocked, qualifying), oneDNN plus an add (blocked 1x1; plain) and the
 * reference path. */
static void test_forward_add(void) {
    static const shape shapes[] = {{2, 16, 12, 12, 32, 3, 1, 1}, {2, 16, 12, 12, 32, 1, 1, 0}, {2, 3, 9, 7, 5, 3, 1, 1}};
    rc_rng rng;
    rc_rng_seed(&rng, 13);
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int fast = 0; fast <= 1; fast++) {
            const shape *sh = &shapes[i];
            rc_conv_dims d;
            rc_conv_dims_init(&d, sh->n, sh->c, sh->h, sh->w, sh->k, sh->r, sh->s, sh->p);
            const int blk = d.c % 16 == 0 && d.k % 16 == 0 && fast;
            const size_t nx = x_size(&d), ny = y_size(&d), nw = w_size(&d), hw = (size_t)d.h * d.w;
            float *x = rand_buf(&rng, nx), *w = rand_buf(&rng, nw), *b = rand_buf(&rng, d.k), *r = rand_buf(&rng, ny);
            float *y0 = zero_buf(ny), *y1 = zero_buf(ny), *xb = zero_buf(nx), *rb = zero_buf(ny), *yb = zero_buf(ny);
            rc_conv2d_forward_ref(&d, x, w, b, y0);
            for (size_t j = 0; j < ny; j++) y0[j] += r[j];
            rc_ops_fast = fast;
            if (blk) {
                rc_conv_dims db = d;
                db.x_layout = db.y_layout = RC_LAYOUT_BLK16;
                rc_layout_to_blk16(d.n, d.c, (int)hw, x, xb);
                rc_layout_to_blk16(d.n, d.k, (int)hw, r, rb);
                rc_conv2d_forward_add(&db, xb, w, b, rb, yb);
                rc_layout_from_blk16(d.n, d.k, (int)hw, yb, y1);
            } else {
                rc_conv2d_forward_add(&d, x, w, b, r, y1);
            }
            char m[160];
            snprintf(m, sizeof m, "forward_add shape %zu, fast %d, blocked %d", i, fast, blk);
            check_rel(y1, y0, ny, 1e-5, m);
            free(x), free(w), free(b), free(r), free(y0), free(y1), free(xb), free(rb), free(yb);
        }
    rc_ops_fast = 1;
}

/* The selector's rule table (ops.h) on a conv recur's kernels take (16 -> 32, 3x3, stride 1, pad 1) and on
 * ones they do not (grouped, 1x1), per layout, rc_ops_fast, recur's kernels' passes and the algorithm. */
static void test_selector(void) {
    enum { REF = RC_CONV_IMPL_REF, OWN = RC_CONV_IMPL_OWN, NONE = RC_CONV_IMPL_NONE };
    const int D = RC_CONV_DNNL ? RC_CONV_IMPL_DNNL : REF; /* fast, not recur's kernels */
    const int DB = RC_CONV_DNNL ? RC_CONV_IMPL_DNNL : OWN; /* weights and bias, recur's kernels on */
    const int old_fast = rc_ops_fast, old_own = rc_conv2d_set_own(RC_CONV_OWN_ALL);
    const int old_algo = rc_conv2d_set_algo(RC_CONV_ALGO_AUTO);
    rc_conv_dims p, q, g2, one;
    rc_conv_dims_init(&p, 2, 16, 8, 8, 32, 3, 1, 1);
    q = p;
    q.x_layout = q.y_layout = RC_LAYOUT_BLK16;
    g2 = q;
    g2.groups = 2;
    rc_conv_dims_init(&one, 2, 16, 8, 8, 32, 1, 1, 0);
    one.x_layout = one.y_layout = RC_LAYOUT_BLK16;
    static const char *pass_names[6] = {"fwd", "fwd_add", "fwd_ep", "bwd_data", "bwd_weights", "bwd_weights_bias"};
    struct {
        const char *what;
        const rc_conv_dims *d;
        int fast, own, algo, want[6]; /* per pass RC_CONV_FWD .. RC_CONV_BWD_WEIGHTS_BIAS */
    } rows[] = {
        {"plain, reference", &p, 0, RC_CONV_OWN_ALL, RC_CONV_ALGO_AUTO, {REF, REF, NONE, REF, REF, REF}},
        {"plain, fast", &p, 1, RC_CONV_OWN_ALL, RC_CONV_ALGO_AUTO, {D, D, NONE, D, D, D}},
        {"blocked", &q, 0, RC_CONV_OWN_ALL, RC_CONV_ALGO_AUTO, {OWN, OWN, OWN, OWN, OWN, DB}},
        {"blocked, fast", &q, 1, RC_CONV_OWN_ALL, RC_CONV_ALGO_AUTO, {OWN, OWN, OWN, OWN, OWN, DB}},
        {"blocked, own off", &q, 1, 0, RC_CONV_ALGO_AUTO, {D, D, NONE, D, D, D}},
        {"blocked, own forward", &q, 1, RC_CONV_OWN_FWD, RC_CONV_ALGO_AUTO, {OWN, OWN, OWN, D, D, D}},
        {"blocked, own weights", &q, 1, RC_CONV_OWN_BWD_WEIGHTS, RC_CONV_ALGO_AUTO, {D, D, NONE, D, OWN, DB}},
        {"blocked, direct", &q, 1, RC_CONV_OWN_ALL, RC_CONV_ALGO_DIRECT, {D, D, NONE, D, D, D}},
        {"blocked, winograd", &q, 1, RC_CONV_OWN_ALL, RC_CONV_ALGO_WINOGRAD, {D, D, NONE, D, D, D}},
        {"blocked, groups 2", &g2, 1, RC_CONV_OWN_ALL, RC_CONV_ALGO_AUTO, {D, D, NONE, D, D, D}},
        {"blocked, 1x1", &one, 1, RC_CONV_OWN_ALL, RC_CONV_ALGO_AUTO, {D, D, NONE, D, D, D}},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        rc_ops_fast = rows[i].fast;
        rc_conv2d_set_own(rows[i].own);
        rc_conv2d_set_algo(rows[i].algo);
        for (int pass = RC_CONV_FWD; pass <= RC_CONV_BWD_WEIGHTS_BIAS; pass++) {
            const int got = rc_conv2d_select(rows[i].d, pass);
            CHECK(got == rows[i].want[pass], "select %s, %s: %d, want %d", rows[i].what, pass_names[pass], got,
                  rows[i].want[pass]);
        }
    }
    /* what the plan asks: a fast path on blocked activations (always with oneDNN) */
    rc_ops_fast = 1;
    rc_conv2d_set_algo(RC_CONV_ALGO_AUTO);
    rc_conv2d_set_own(RC_CONV_OWN_ALL);
    CHECK(rc_conv2d_blocked_fast(&p) == 1, "blocked_fast 3x3 16 -> 32");
    CHECK(rc_conv2d_blocked_fast(&one) == RC_CONV_DNNL, "blocked_fast 1x1");
    CHECK(rc_conv2d_blocked_fast(&g2) == RC_CONV_DNNL, "blocked_fast groups 2");
    rc_conv2d_set_own(0);
    CHECK(rc_conv2d_blocked_fast(&p) == RC_CONV_DNNL, "blocked_fast 3x3 with recur's kernels off");
    rc_ops_fast = old_fast;
    rc_conv2d_set_own(old_own);
    rc_conv2d_set_algo(old_algo);
}

/* Every pass on blocked activations (both, or only x or only y blocked: the first conv of a blocked graph)
 * against the reference on plain ones, with and without bias: recur's kernels where they take the shape
 * (with the bias gradient as a sum, without oneDNN), oneDNN or (without it) the reference on plain copies
 * elsewhere; channel counts that are not multiples of 16 (padding lanes). */
static void test_blocked_vs_ref(void) {
    static const shape shapes[] = {
        {2, 16, 9, 9, 32, 3, 1, 1},  {1, 32, 6, 7, 16, 3, 1, 1}, {2, 16, 9, 9, 32, 1, 1, 0},
        {2, 16, 9, 9, 16, 3, 2, 1},  {2, 5, 8, 8, 16, 3, 1, 1},  {2, 24, 7, 7, 40, 3, 1, 1},
    };
    rc_rng rng;
    rc_rng_seed(&rng, 23);
    rc_ops_fast = 1;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int blk = BLK_X; blk <= BLK_XY; blk++)
            for (int bias = 0; bias <= 1; bias++)
                if (blk == BLK_XY || bias == (int)(i % 2)) fast_vs_ref_g(&shapes[i], 1, blk, bias, &rng);
}

/* Changing the thread count still gives correct results (a separate primitive per thread count). */
static void test_threads(void) {
    rc_rng rng;
    rc_rng_seed(&rng, 5);
    rc_ops_fast = 1;
    rc_conv_dims d;
    rc_conv_dims_init(&d, 4, 8, 12, 12, 16, 3, 1, 1);
    const size_t nx = x_size(&d), ny = y_size(&d), nw = w_size(&d);
    float *x = rand_buf(&rng, nx), *w = rand_buf(&rng, nw), *y0 = zero_buf(ny), *y1 = zero_buf(ny);
    rc_conv2d_forward_ref(&d, x, w, NULL, y0);
    const int old = rc_get_threads();
    for (int t = 1; t <= 2; t++) {
        rc_set_threads(t);
        rc_conv2d_forward(&d, x, w, NULL, y1);
        char m[64];
        snprintf(m, sizeof m, "forward with %d threads", t);
        check_rel(y1, y0, ny, 1e-4, m);
    }
    rc_set_threads(old);
    free(x), free(w), free(y0), free(y1);
}

int main(void) {
    RUN_TEST(test_ref_backward_vs_fd);
    RUN_TEST(test_ref_grouped);
    RUN_TEST(test_fast_vs_ref);
    RUN_TEST(test_grouped_fast_vs_ref);
    RUN_TEST(test_determinism);
    RUN_TEST(test_primitive_reuse);
    RUN_TEST(test_threads);
    RUN_TEST(test_wgrad_wino);
    RUN_TEST(test_wino_conv);
    RUN_TEST(test_forward_add);
    RUN_TEST(test_forward_stats);
    RUN_TEST(test_selector);
    RUN_TEST(test_blocked_vs_ref);
    rc_conv2d_release();
    rc_conv2d_wgrad_release();
    TEST_MAIN_END();
}
