/* test_fused.c — kernel-level checks of the fast path beside the harness (tests/test_opcases.c runs every
 * fused form through the graph against the reference composition): the nChw16c layout conversion, and the
 * fused batch norm + add + relu + pooling with the data-parallel reduction hook (train, replay, eval). */
#include <string.h>

#include "base/common.h"
#include "base/rng.h"
#include "ops/ops.h"
#include "test.h"

static rc_rng g_rng;

static float *fbuf(size_t n) { return rc_xcalloc(n ? n : 1, sizeof(float)); }
static void fill(float *p, size_t n, float scale, float shift) {
    for (size_t i = 0; i < n; i++) p[i] = shift + scale * rc_rng_normal(&g_rng);
}

/* into layout (a copy; plain stays plain) and back to plain */
static float *to_l(const float *x, int n, int c, int hw, int layout) {
    float *y = fbuf((size_t)n * (layout == RC_LAYOUT_BLK16 ? (c + 15) / 16 * 16 : c) * hw);
    if (layout == RC_LAYOUT_BLK16)
        rc_layout_to_blk16(n, c, hw, x, y);
    else
        memcpy(y, x, sizeof(float) * (size_t)n * c * hw);
    return y;
}
static float *from_l(const float *x, int n, int c, int hw, int layout) {
    float *y = fbuf((size_t)n * c * hw);
    if (layout == RC_LAYOUT_BLK16)
        rc_layout_from_blk16(n, c, hw, x, y);
    else
        memcpy(y, x, sizeof(float) * (size_t)n * c * hw);
    return y;
}

static void test_layout_roundtrip(void) {
    int n = 3, c = 32, hw = 7;
    size_t sz = (size_t)n * c * hw;
    float *x = fbuf(sz), *b = fbuf(sz), *y = fbuf(sz);
    for (size_t i = 0; i < sz; i++) x[i] = (float)i;
    rc_layout_to_blk16(n, c, hw, x, b);
    /* element (n=2, c=21, s=5) at ((2 * 2 + 1) * 7 + 5) * 16 + 5 */
    CHECK(b[((2 * 2 + 1) * 7 + 5) * 16 + 5] == x[(2 * c + 21) * hw + 5], "nChw16c index of (2, 21, 5)");
    rc_layout_from_blk16(n, c, hw, b, y);
    CHECK(memcmp(x, y, sz * sizeof(float)) == 0, "plain -> blocked -> plain is not the identity");
    free(x);
    free(b);
    free(y);
}

/* ---- fused batch norm vs batchnorm (reference) + add + relu + gap ---- */

static void identity_allreduce(double *s, int n) {
    (void)s;
    (void)n;
}

/* Padding lanes (channels >= c of the last nChw16c block) of a blocked tensor are all zero. */
static int padding_zero(const float *xl, int n, int c, int hw) {
    const int cb = (c + 15) / 16;
    for (int b = 0; b < n; b++)
        for (int s = 0; s < hw; s++)
            for (int v = c % 16; v < 16 && c % 16; v++)
                if (xl[(((size_t)b * cb + cb - 1) * hw + s) * 16 + v] != 0.0f) return 0;
    return 1;
}

static void check_bnact(int layout, int relu, int residual, int pool, int acc, int sync, int hw, int c) {
    const int n = 5;
    RC_ASSERT(c <= 48);
    const size_t sz = (size_t)n * c * hw, szl = (size_t)n * (layout == RC_LAYOUT_BLK16 ? (c + 15) / 16 * 16 : c) * hw;
    char what[160];
    snprintf(what, sizeof what, "bnact layout=%d relu=%d residual=%d pool=%d acc=%d sync=%d hw=%d c=%d", layout, relu,
             residual, pool, acc, sync, hw, c);
    float *x = fbuf(sz), *r = fbuf(sz), *dy = fbuf(sz), *dpool = fbuf((size_t)n * c);
    float gamma[48], beta[48], rm[48], rv[48], rm2[48], rv2[48];
    fill(x, sz, 2.0f, 3.0f); /* an offset mean: tests the one-pass variance */
    fill(r, sz, 1.0f, 0.0f);
    fill(dy, sz, 1.0f, 0.0f);
    fill(dpool, (size_t)n * c, 1.0f, 0.0f);
    for (int i = 0; i < c; i++) {
        gamma[i] = 0.5f + 0.05f * (float)i;
        beta[i] = 0.1f * (float)(i % 5) - 0.2f;
        rm[i] = rm2[i] = 0.1f;
        rv[i] = rv2[i] = 1.5f;
    }
    /* reference: z = BN(x); s = z + r; y = relu(s); p = gap(y) */
    rc_ops_fast = 0;
    float *z = fbuf(sz), *s = fbuf(sz), *y = fbuf(sz), *p = fbuf((size_t)n * c), mean[48], rstd[48];
    rc_batchnorm_forward(n, c, hw, x, gamma, beta, z, mean, rstd, rm, rv, 0.1f, 1e-5f, 1);
    if (residual)
        rc_add_forward(sz, z, r, s);
    else
        memcpy(s, z, sz * sizeof(float));
    if (relu)
        rc_relu_forward(sz, s, y);
    else
        memcpy(y, s, sz * sizeof(float));
    rc_gap_forward(n, c, hw, y, p);
    /* reference backward: dy_total = dy + gap'(dpool); ds = relu'(dy_total); dz = ds; dr = ds */
    float *dyt = fbuf(sz), *ds = fbuf(sz), *dx = fbuf(sz), *dr = fbuf(sz), dg[48] = {0}, db[48] = {0};
    memcpy(dyt, dy, sz * sizeof(float));
    if (pool) rc_gap_backward(n, c, hw, dpool, dyt, 1);
    if (relu)
        rc_relu_backward(sz, s, dyt, ds, 0);
    else
        memcpy(ds, dyt, sz * sizeof(float));
    float *dx0 = fbuf(sz), *dr0 = fbuf(sz); /* previous contents for accumulation */
    fill(dx0, sz, 1.0f, 0.0f);
    fill(dr0, sz, 1.0f, 0.0f);
    memcpy(dx, dx0, sz * sizeof(float));
    rc_batchnorm_backward(n, c, hw, x, gamma, mean, rstd, ds, dx, acc, dg, db, 1);
    for (size_t i = 0; i < sz; i++) dr[i] = acc ? dr0[i] + ds[i] : ds[i];
    rc_ops_fast = 1;

    /* fused, in layout */
    if (sync) rc_bn_allreduce = identity_allreduce;
    double *work = rc_xmalloc(rc_bn_work_doubles(c) * sizeof(double));
    float *xl = to_l(x, n, c, hw, layout), *rl = to_l(r, n, c, hw, layout), *dyl = to_l(dy, n, c, hw, layout);
    float *yl = fbuf(szl), *pl = fbuf((size_t)n * c), fm[48], fr[48];
    rc_bnact_forward(n, c, hw, layout, xl, residual ? rl : NULL, gamma, beta, yl, pool ? pl : NULL, fm, fr, rm2, rv2,
                     0.1f, 1e-5f, RC_BN_TRAIN, relu, work);
    float *yp = from_l(yl, n, c, hw, layout);
    CHECK(rel_err(yp, y, sz) < 1e-5, "%s: y rel err %.3g", what, rel_err(yp, y, sz));
    if (layout == RC_LAYOUT_BLK16) CHECK(padding_zero(yl, n, c, hw), "%s: y padding lanes not zero", what);
    CHECK(rel_err(fm, mean, c) < 1e-5 && rel_err(fr, rstd, c) < 1e-5, "%s: mean/rstd", what);
    CHECK(rel_err(rm2, rm, c) < 1e-5 && rel_err(rv2, rv, c) < 1e-5, "%s: running stats", what);
    if (pool) CHECK(rel_err(pl, p, (size_t)n * c) < 1e-5, "%s: pooled rel err %.3g", what, rel_err(pl, p, (size_t)n * c));
    /* replay reproduces the same bits and leaves the running stats alone */
    float *y2 = fbuf(szl), rm3[48], rv3[48];
    memcpy(rm3, rm2, sizeof rm3);
    memcpy(rv3, rv2, sizeof rv3);
    rc_bnact_forward(n, c, hw, layout, xl, residual ? rl : NULL, gamma, beta, y2, NULL, fm, fr, rm2, rv2, 0.1f, 1e-5f,
                     RC_BN_REPLAY, relu, work);
    CHECK(memcmp(y2, yl, szl * sizeof(float)) == 0, "%s: replay differs", what);
    CHECK(memcmp(rm3, rm2, sizeof rm3) == 0 && memcmp(rv3, rv2, sizeof rv3) == 0, "%s: replay moved stats", what);
    /* backward */
    float *dxl = to_l(dx0, n, c, hw, layout), *drl = to_l(dr0, n, c, hw, layout), fdg[48] = {0}, fdb[48] = {0};
    rc_bnact_backward(n, c, hw, layout, xl, yl, gamma, beta, fm, fr, dyl, pool ? dpool : NULL, dxl, acc,
                      residual ? drl : NULL, acc, fdg, fdb, 1, relu, residual, work);
    float *dxp = from_l(dxl, n, c, hw, layout), *drp = from_l(drl, n, c, hw, layout);
    CHECK(rel_err(dxp, dx, sz) < 1e-4, "%s: dx rel err %.3g", what, rel_err(dxp, dx, sz));
    if (residual) CHECK(rel_err(drp, dr, sz) < 1e-5, "%s: dr rel err %.3g", what, rel_err(drp, dr, sz));
    if (layout == RC_LAYOUT_BLK16)
        CHECK(padding_zero(dxl, n, c, hw) && padding_zero(drl, n, c, hw), "%s: gradient padding lanes not zero", what);
    CHECK(rel_err(fdg, dg, c) < 1e-4 && rel_err(fdb, db, c) < 1e-4, "%s: dgamma %.3g dbeta %.3g", what,
          rel_err(fdg, dg, c), rel_err(fdb, db, c));
    /* eval mode normalises with the running statistics */
    rc_ops_fast = 0;
    rc_batchnorm_forward(n, c, hw, x, gamma, beta, z, mean, rstd, rm2, rv2, 0.1f, 1e-5f, 0);
    rc_ops_fast = 1;
    rc_bnact_forward(n, c, hw, layout, xl, NULL, gamma, beta, yl, NULL, fm, fr, rm2, rv2, 0.1f, 1e-5f, RC_BN_EVAL, 0,
                     work);
    free(yp);
    yp = from_l(yl, n, c, hw, layout);
    CHECK(rel_err(yp, z, sz) < 1e-5, "%s: eval rel err %.3g", what, rel_err(yp, z, sz));
    rc_bn_allreduce = NULL;
    free(work);
    float *all[] = {x, r, dy, dpool, z, s, y, p, dyt, ds, dx, dr, dx0, dr0, xl, rl, dyl, yl, pl, yp, y2, dxl, drl, dxp,
                    drp};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) free(all[i]);
}

/* The forms the graph runs (relu, residual, pool, accumulate, layouts, C % 16) are tests/test_opcases.c's;
 * here the synchronised statistics path (data-parallel training), with replay and eval on the way. */
static void test_bnact(void) {
    check_bnact(RC_LAYOUT_BLK16, 1, 1, 1, 0, 1, 9, 32); /* the synchronised statistics path */
    check_bnact(RC_LAYOUT_BLK16, 1, 1, 1, 0, 1, 9, 24);
    check_bnact(RC_LAYOUT_NCHW, 1, 0, 0, 1, 1, 35, 32);
}

int main(void) {
    rc_rng_seed(&g_rng, 12345);
    RUN_TEST(test_layout_roundtrip);
    RUN_TEST(test_bnact);
    TEST_MAIN_END();
}
