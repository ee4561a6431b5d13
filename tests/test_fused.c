/* test_fused.c — the fast path's own ops against compositions of the reference ops: the nChw16c layout
 * conversion, fused batch norm + add + relu + pooling (train, eval, replay; overwrite and accumulate;
 * with and without the data-parallel reduction hook), the fused ConvLSTM gates, and the blocked
 * slice, global average pool and upsampling, each on plain and blocked activations. */
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

static void test_bnact(void) {
    /* hw = 9: plain channels are all tail; 35: two 16-float vectors and a tail of 3 */
    /* c = 24: the blocked layout's last block is half padding */
    for (int c = 24; c <= 32; c += 8)
        for (int layout = 0; layout < 2; layout++)
            for (int k = 0; k < 32; k++)
                check_bnact(layout, k & 1, (k >> 1) & 1, (k >> 2) & 1, (k >> 3) & 1, 0, k & 16 ? 35 : 9, c);
    check_bnact(RC_LAYOUT_BLK16, 1, 1, 1, 0, 1, 9, 32); /* the synchronised statistics path */
    check_bnact(RC_LAYOUT_BLK16, 1, 1, 1, 0, 1, 9, 24);
    check_bnact(RC_LAYOUT_NCHW, 1, 0, 0, 1, 1, 35, 32);
}

/* ---- fused ConvLSTM gates vs batchnorm + slice + sigmoid/tanh + mul/add ---- */

static void check_lstm(int layout, int bn, int has_cp, int has_dc) {
    const int n = 3, C = 16, c4 = 64, hw = 6;
    const size_t s1 = (size_t)n * C * hw, s4 = (size_t)n * c4 * hw;
    char what[128];
    snprintf(what, sizeof what, "lstm layout=%d bn=%d c_prev=%d dc=%d", layout, bn, has_cp, has_dc);
    float *a = fbuf(s4), *cp = fbuf(s1), *dh = fbuf(s1), *dc = fbuf(s1), gamma[64], beta[64], rm[64], rv[64];
    fill(a, s4, 1.5f, 0.5f);
    fill(cp, s1, 1.0f, 0.0f);
    fill(dh, s1, 1.0f, 0.0f);
    fill(dc, s1, 1.0f, 0.0f);
    for (int i = 0; i < c4; i++) {
        gamma[i] = 0.8f + 0.01f * (float)i;
        beta[i] = 0.05f * (float)(i % 7) - 0.1f;
        rm[i] = 0.0f;
        rv[i] = 1.0f;
    }
    /* reference composition (plain) */
    rc_ops_fast = 0;
    float *z = fbuf(s4), mean[64], rstd[64];
    if (bn)
        rc_batchnorm_forward(n, c4, hw, a, gamma, beta, z, mean, rstd, rm, rv, 0.1f, 1e-5f, 1);
    else
        memcpy(z, a, s4 * sizeof(float));
    float *zs[4], *gt[4];
    for (int j = 0; j < 4; j++) {
        zs[j] = fbuf(s1);
        gt[j] = fbuf(s1);
        rc_slice_forward(n, c4, hw, j * C, C, z, zs[j]);
        if (j == 3)
            rc_tanh_forward(s1, zs[j], gt[j]);
        else
            rc_sigmoid_forward(s1, zs[j], gt[j]);
    }
    float *ig = fbuf(s1), *fc = fbuf(s1), *cell = fbuf(s1), *tc = fbuf(s1), *h = fbuf(s1);
    rc_mul_forward(s1, gt[0], gt[3], ig);
    if (has_cp) {
        rc_mul_forward(s1, gt[1], cp, fc);
        rc_add_forward(s1, fc, ig, cell);
    } else {
        memcpy(cell, ig, s1 * sizeof(float));
    }
    rc_tanh_forward(s1, cell, tc);
    rc_mul_forward(s1, gt[2], tc, h);
    /* reference backward */
    float *dtc = fbuf(s1), *dgo = fbuf(s1), *dcell = fbuf(s1), *dgt[4], *dz = fbuf(s4), *da = fbuf(s4),
          *dcp = fbuf(s1), *dig = fbuf(s1), *dfc = fbuf(s1), dgm[64] = {0}, dbt[64] = {0};
    for (int j = 0; j < 4; j++) dgt[j] = fbuf(s1);
    rc_mul_backward(s1, gt[2], tc, dh, dgt[2], 0, dtc, 0);
    if (has_dc) memcpy(dcell, dc, s1 * sizeof(float));
    rc_tanh_backward(s1, tc, dtc, dcell, has_dc);
    if (has_cp) {
        rc_add_backward(s1, dcell, dfc, 0, dig, 0);
        rc_mul_backward(s1, gt[1], cp, dfc, dgt[1], 0, dcp, 0);
    } else {
        memcpy(dig, dcell, s1 * sizeof(float));
    }
    rc_mul_backward(s1, gt[0], gt[3], dig, dgt[0], 0, dgt[3], 0);
    for (int j = 0; j < 4; j++) {
        float *dzs = fbuf(s1);
        if (j == 3)
            rc_tanh_backward(s1, gt[j], dgt[j], dzs, 0);
        else
            rc_sigmoid_backward(s1, gt[j], dgt[j], dzs, 0);
        if (j == 1 && !has_cp) memset(dzs, 0, s1 * sizeof(float));
        rc_slice_backward(n, c4, hw, j * C, C, dzs, dz, j > 0);
        free(dzs);
    }
    if (bn)
        rc_batchnorm_backward(n, c4, hw, a, gamma, mean, rstd, dz, da, 0, dgm, dbt, 1);
    else
        memcpy(da, dz, s4 * sizeof(float));
    rc_ops_fast = 1;

    /* fused, in layout */
    double *work = rc_xmalloc(rc_bn_work_doubles(c4) * sizeof(double));
    float *al = to_l(a, n, c4, hw, layout), *cpl = to_l(cp, n, C, hw, layout), *dhl = to_l(dh, n, C, hw, layout),
          *dcl = to_l(dc, n, C, hw, layout), *celll = fbuf(s1), *hl = fbuf(s1), fm[64], fr[64], rm2[64], rv2[64];
    for (int i = 0; i < c4; i++) {
        rm2[i] = 0.0f;
        rv2[i] = 1.0f;
    }
    if (bn) rc_bn_stats(n, c4, hw, layout, al, fm, fr, rm2, rv2, 0.1f, 1e-5f, RC_BN_TRAIN, work);
    rc_lstm_forward(n, C, hw, layout, al, has_cp ? cpl : NULL, gamma, beta, bn ? fm : NULL, bn ? fr : NULL, celll, hl);
    float *cellp = from_l(celll, n, C, hw, layout), *hp = from_l(hl, n, C, hw, layout);
    CHECK(rel_err(cellp, cell, s1) < 2e-6, "%s: c rel err %.3g", what, rel_err(cellp, cell, s1));
    CHECK(rel_err(hp, h, s1) < 2e-6, "%s: h rel err %.3g", what, rel_err(hp, h, s1));
    float *dal = fbuf(s4), *dcpl = fbuf(s1), fdg[64] = {0}, fdb[64] = {0};
    rc_lstm_backward(n, C, hw, layout, al, has_cp ? cpl : NULL, celll, gamma, beta, bn ? fm : NULL, bn ? fr : NULL, dhl,
                     has_dc ? dcl : NULL, dal, has_cp ? dcpl : NULL, 0, fdg, fdb, 1, work);
    float *dap = from_l(dal, n, c4, hw, layout), *dcpp = from_l(dcpl, n, C, hw, layout);
    CHECK(rel_err(dap, da, s4) < 1e-4, "%s: da rel err %.3g", what, rel_err(dap, da, s4));
    if (has_cp) CHECK(rel_err(dcpp, dcp, s1) < 1e-5, "%s: dc_prev rel err %.3g", what, rel_err(dcpp, dcp, s1));
    if (bn)
        CHECK(rel_err(fdg, dgm, c4) < 1e-4 && rel_err(fdb, dbt, c4) < 1e-4, "%s: dgamma %.3g dbeta %.3g", what,
              rel_err(fdg, dgm, c4), rel_err(fdb, dbt, c4));
    free(work);
    float *all[] = {a,  cp,   dh,  dc,  z,   ig,  fc,  cell, tc,    h,     dtc,  dgo, dcell, dz, da,
                    dcp, dig, dfc, al, cpl, dhl, dcl, celll, hl, cellp, hp, dal, dcpl, dap, dcpp};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) free(all[i]);
    for (int j = 0; j < 4; j++) {
        free(zs[j]);
        free(gt[j]);
        free(dgt[j]);
    }
}

static void test_lstm(void) {
    for (int layout = 0; layout < 2; layout++)
        for (int k = 0; k < 8; k++) check_lstm(layout, k & 1, (k >> 1) & 1, (k >> 2) & 1);
}

/* ---- slice, gap, upsample on blocked data (padded or not) equal the plain ops ---- */

/* gap, upsample and the layout conversions on blocked data equal the plain ops, for C a multiple of 16
 * and for C = 24 (the last block half padding, which must stay zero) */
static void check_channel_ops(int c) {
    const int n = 2, h = 5, w = 7, hw = 35, ho = 11, wo = 13, cp = (c + 15) / 16 * 16;
    const size_t sz = (size_t)n * c * hw, so = (size_t)n * c * ho * wo;
    char what[64];
    snprintf(what, sizeof what, "blocked ops, %d channels", c);
    float *x = fbuf(sz), *dy = fbuf(so), *ref = fbuf(so), *g0 = fbuf(sz), *pr = fbuf((size_t)n * c),
          *pb = fbuf((size_t)n * c), *dpool = fbuf((size_t)n * c);
    float *out = fbuf((size_t)n * cp * ho * wo);
    fill(x, sz, 1.0f, 0.0f);
    fill(dy, so, 1.0f, 0.0f);
    float *xb = to_l(x, n, c, hw, RC_LAYOUT_BLK16);
    float *p = from_l(xb, n, c, hw, RC_LAYOUT_BLK16);
    CHECK(memcmp(p, x, sz * sizeof(float)) == 0 && padding_zero(xb, n, c, hw), "%s: plain -> blocked -> plain", what);
    free(p);
    /* global average pool; backward overwriting and accumulating */
    rc_gap_forward(n, c, hw, x, pr);
    rc_gap_forward_l(n, c, hw, RC_LAYOUT_BLK16, xb, pb);
    CHECK(memcmp(pr, pb, (size_t)n * c * sizeof(float)) == 0, "%s: gap forward", what);
    fill(dpool, (size_t)n * c, 1.0f, 0.0f);
    for (int acc = 0; acc < 2; acc++) {
        fill(g0, sz, 1.0f, 0.0f);
        float *g1 = to_l(g0, n, c, hw, RC_LAYOUT_BLK16);
        rc_gap_backward(n, c, hw, dpool, g0, acc);
        rc_gap_backward_l(n, c, hw, RC_LAYOUT_BLK16, dpool, g1, acc);
        p = from_l(g1, n, c, hw, RC_LAYOUT_BLK16);
        CHECK(memcmp(p, g0, sz * sizeof(float)) == 0 && padding_zero(g1, n, c, hw), "%s: gap backward acc=%d", what,
              acc);
        free(p);
        free(g1);
    }
    /* nearest upsampling 5x7 -> 11x13 */
    rc_upsample_forward(n, c, h, w, ho, wo, x, ref);
    rc_upsample_forward_l(n, c, h, w, ho, wo, RC_LAYOUT_BLK16, xb, out);
    p = from_l(out, n, c, ho * wo, RC_LAYOUT_BLK16);
    CHECK(memcmp(p, ref, so * sizeof(float)) == 0 && padding_zero(out, n, c, ho * wo), "%s: upsample forward", what);
    free(p);
    float *dyb = to_l(dy, n, c, ho * wo, RC_LAYOUT_BLK16), *g1 = fbuf((size_t)n * cp * hw);
    rc_upsample_backward(n, c, h, w, ho, wo, dy, g0, 0);
    rc_upsample_backward_l(n, c, h, w, ho, wo, RC_LAYOUT_BLK16, dyb, g1, 0);
    p = from_l(g1, n, c, hw, RC_LAYOUT_BLK16);
    CHECK(rel_err(p, g0, sz) < 1e-6 && padding_zero(g1, n, c, hw), "%s: upsample backward rel err %.3g", what,
          rel_err(p, g0, sz));
    free(p);
    float *all[] = {x, dy, ref, g0, pr, pb, dpool, out, xb, dyb, g1};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) free(all[i]);
}

static void test_channel_ops(void) {
    check_channel_ops(48);
    check_channel_ops(24);
}

static void test_blocked_slice(void) {
    const int n = 2, c = 48, hw = 35, ho = 11, wo = 13;
    const size_t sz = (size_t)n * c * hw, so = (size_t)n * c * ho * wo;
    float *x = fbuf(sz), *dy = fbuf(so), *ref = fbuf(so), *out = fbuf(so), *g0 = fbuf(sz), *g1 = fbuf(sz);
    fill(x, sz, 1.0f, 0.0f);
    fill(dy, so, 1.0f, 0.0f);
    float *xb = to_l(x, n, c, hw, RC_LAYOUT_BLK16);
    /* slice channels [16, 48) */
    rc_slice_forward(n, c, hw, 16, 32, x, ref);
    rc_slice_forward_l(n, c, hw, RC_LAYOUT_BLK16, 16, 32, xb, out);
    float *p = from_l(out, n, 32, hw, RC_LAYOUT_BLK16);
    CHECK(memcmp(p, ref, (size_t)n * 32 * hw * sizeof(float)) == 0, "blocked slice forward");
    free(p);
    float *dyb = to_l(dy, n, 32, hw, RC_LAYOUT_BLK16);
    rc_slice_backward(n, c, hw, 16, 32, dy, g0, 0);
    rc_slice_backward_l(n, c, hw, RC_LAYOUT_BLK16, 16, 32, dyb, g1, 0);
    p = from_l(g1, n, c, hw, RC_LAYOUT_BLK16);
    CHECK(memcmp(p, g0, sz * sizeof(float)) == 0, "blocked slice backward");
    free(p);
    free(dyb);
    free(x);
    free(dy);
    free(ref);
    free(out);
    free(g0);
    free(g1);
    free(xb);
}

int main(void) {
    rc_rng_seed(&g_rng, 12345);
    RUN_TEST(test_layout_roundtrip);
    RUN_TEST(test_bnact);
    RUN_TEST(test_lstm);
    RUN_TEST(test_blocked_slice);
    RUN_TEST(test_channel_ops);
    TEST_MAIN_END();
}
