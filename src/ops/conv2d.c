/* conv2d.c — 2-D convolution (cross-correlation, zero padding, square kernel, grouped): the shape rule,
 * FLOPs, and the selector, the one place that picks which implementation runs each pass of a convolution
 * (rule table in ops.h): the reference (conv2d_ref.c), recur's Winograd kernels (conv2d_wino.h) or oneDNN
 * (conv2d_dnnl.h, in builds with it). The public entry points dispatch through it. */
#include "ops/ops.h"

#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "ops/conv2d_dnnl.h"
#include "ops/conv2d_wino.h"

void rc_conv_dims_init(rc_conv_dims *d, int n, int c, int h, int w, int k, int r, int stride, int pad) {
    RC_ASSERT(d != NULL);
    RC_ASSERT(n > 0 && c > 0 && h > 0 && w > 0 && k > 0 && r > 0 && stride > 0 && pad >= 0);
    RC_ASSERT(h + 2 * pad >= r && w + 2 * pad >= r);
    d->n = n;
    d->c = c;
    d->h = h;
    d->w = w;
    d->k = k;
    d->r = r;
    d->stride = stride;
    d->pad = pad;
    d->ho = (h + 2 * pad - r) / stride + 1;
    d->wo = (w + 2 * pad - r) / stride + 1;
    d->x_layout = d->y_layout = RC_LAYOUT_NCHW;
    d->groups = 1;
}

double rc_conv2d_flops(const rc_conv_dims *d) {
    return 2.0 * d->n * d->k * d->ho * d->wo * (double)(d->c / d->groups) * d->r * d->r;
}

/* ---------------------------------------------------------------- settings */

#ifndef RC_CONV_DEFAULT_ALGO
#define RC_CONV_DEFAULT_ALGO RC_CONV_ALGO_AUTO
#endif
static int g_algo = -1; /* -1: not read yet (RECUR_CONV_ALGO), else RC_CONV_ALGO_* */

int rc_conv2d_set_algo(int algo) {
    RC_ASSERT(algo >= -1 && algo <= RC_CONV_ALGO_AUTO);
    int old = g_algo;
    g_algo = algo;
    return old;
}

int rc_conv2d_algo(void) {
    if (g_algo < 0) {
        const char *e = getenv("RECUR_CONV_ALGO");
        g_algo = !e ? RC_CONV_DEFAULT_ALGO
                    : !strcmp(e, "direct") ? RC_CONV_ALGO_DIRECT
                    : !strcmp(e, "winograd") ? RC_CONV_ALGO_WINOGRAD : RC_CONV_ALGO_AUTO;
    }
    return g_algo;
}

/* Passes run by recur's kernels, a mask of RC_CONV_OWN_*: -1 not read yet (RECUR_WINO=onednn turns them all
 * off, =own all on). Without AVX-512 the kernels run on a portable 16-lane struct that compilers do not map
 * well to narrower vectors (about 10x slower than oneDNN on an AVX2 build): there they stay off unless
 * RECUR_WINO=own. */
static int g_own = -1;
#ifdef __AVX512F__
#define OWN_DEFAULT RC_CONV_OWN_ALL
#else
#define OWN_DEFAULT 0
#endif

int rc_conv2d_set_own(int passes) {
    RC_ASSERT(passes >= -1 && passes <= RC_CONV_OWN_ALL);
    int old = g_own;
    g_own = passes;
    return old;
}

/* ---------------------------------------------------------------- the selector */

static int blocked(const rc_conv_dims *d) { return d->x_layout != RC_LAYOUT_NCHW || d->y_layout != RC_LAYOUT_NCHW; }

/* Whether recur's kernels run pass bit of d: switched on for it, the algorithm AUTO, a shape they take. */
static int own(const rc_conv_dims *d, int bit) {
    if (g_own < 0) {
        const char *e = getenv("RECUR_WINO");
        g_own = e && !strcmp(e, "onednn") ? 0 : e && !strcmp(e, "own") ? RC_CONV_OWN_ALL : OWN_DEFAULT;
    }
    return (g_own & bit) && rc_conv2d_algo() == RC_CONV_ALGO_AUTO && rc_conv2d_wino_ok(d);
}

int rc_conv2d_select(const rc_conv_dims *d, int pass) {
    /* the fast paths run where asked (rc_ops_fast) and wherever the activations are blocked */
    const int fast = rc_ops_fast || blocked(d);
    const int other = fast && RC_CONV_DNNL ? RC_CONV_IMPL_DNNL : RC_CONV_IMPL_REF; /* when recur's do not */
    switch (pass) {
    case RC_CONV_FWD:
    case RC_CONV_FWD_ADD: return fast && own(d, RC_CONV_OWN_FWD) ? RC_CONV_IMPL_OWN : other;
    case RC_CONV_FWD_EP: return fast && own(d, RC_CONV_OWN_FWD) ? RC_CONV_IMPL_OWN : RC_CONV_IMPL_NONE;
    case RC_CONV_BWD_DATA: return fast && own(d, RC_CONV_OWN_BWD_DATA) ? RC_CONV_IMPL_OWN : other;
    case RC_CONV_BWD_WEIGHTS: return fast && own(d, RC_CONV_OWN_BWD_WEIGHTS) ? RC_CONV_IMPL_OWN : other;
    case RC_CONV_BWD_WEIGHTS_BIAS: /* oneDNN has dw and db in one primitive; recur's kernel plus a sum */
        return fast && !RC_CONV_DNNL && own(d, RC_CONV_OWN_BWD_WEIGHTS) ? RC_CONV_IMPL_OWN : other;
    }
    RC_ASSERT(0 && "unknown convolution pass");
    return RC_CONV_IMPL_NONE;
}

int rc_conv2d_blocked_fast(const rc_conv_dims *d) {
    rc_conv_dims b = *d;
    b.x_layout = b.y_layout = RC_LAYOUT_BLK16;
    return rc_conv2d_select(&b, RC_CONV_FWD) != RC_CONV_IMPL_REF ||
           rc_conv2d_select(&b, RC_CONV_BWD_DATA) != RC_CONV_IMPL_REF ||
           rc_conv2d_select(&b, RC_CONV_BWD_WEIGHTS) != RC_CONV_IMPL_REF;
}

/* ---------------------------------------------------------------- the reference on any layouts */

/* Plain copies of blocked operands for the reference (only without oneDNN), grown, freed by release. */
static float *g_tmp;
static size_t g_tmp_cap;

static float *tmp_floats(size_t n) {
    if (n > g_tmp_cap) {
        rc_afree(g_tmp);
        g_tmp = rc_aalloc_floats(n);
        RC_ASSERT(g_tmp != NULL);
        g_tmp_cap = n;
    }
    return g_tmp;
}

/* Floats of an (n, c, hw) activation in layout l (nChw16c pads the channels to 16). */
static size_t act_floats(int layout, int n, int c, int hw) {
    return (size_t)n * (layout == RC_LAYOUT_BLK16 ? (c + 15) / 16 * 16 : c) * hw;
}

static void ref_forward(const rc_conv_dims *d, const float *x, const float *w, const float *b, const float *r,
                        float *y) {
    const int hw = d->h * d->w, ohw = d->ho * d->wo;
    if (blocked(d)) {
        rc_conv_dims p = *d;
        p.x_layout = p.y_layout = RC_LAYOUT_NCHW;
        const size_t nx = act_floats(RC_LAYOUT_NCHW, d->n, d->c, hw);
        float *xp = tmp_floats(nx + act_floats(RC_LAYOUT_NCHW, d->n, d->k, ohw)), *yp = xp + nx;
        if (d->x_layout == RC_LAYOUT_BLK16) rc_layout_from_blk16(d->n, d->c, hw, x, xp);
        rc_conv2d_forward_ref(&p, d->x_layout == RC_LAYOUT_BLK16 ? xp : x, w, b,
                              d->y_layout == RC_LAYOUT_BLK16 ? yp : y);
        if (d->y_layout == RC_LAYOUT_BLK16) rc_layout_to_blk16(d->n, d->k, ohw, yp, y);
    } else {
        rc_conv2d_forward_ref(d, x, w, b, y);
    }
    if (r) rc_add_forward(act_floats(d->y_layout, d->n, d->k, ohw), y, r, y); /* padding lanes: 0 + 0 */
}

static void ref_backward(const rc_conv_dims *d, const float *x, const float *w, const float *dy, float *dx,
                         int dx_acc, float *dw, float *db) {
    if (!blocked(d)) {
        rc_conv2d_backward_ref(d, x, w, dy, dx, dx_acc, dw, db);
        return;
    }
    rc_conv_dims p = *d;
    p.x_layout = p.y_layout = RC_LAYOUT_NCHW;
    const int hw = d->h * d->w, ohw = d->ho * d->wo, xb = d->x_layout == RC_LAYOUT_BLK16;
    const size_t nx = act_floats(RC_LAYOUT_NCHW, d->n, d->c, hw), ny = act_floats(RC_LAYOUT_NCHW, d->n, d->k, ohw);
    float *xp = tmp_floats(2 * nx + ny), *dxp = xp + nx, *dyp = dxp + nx;
    if (xb && dw) rc_layout_from_blk16(d->n, d->c, hw, x, xp);
    if (xb && dx && dx_acc) rc_layout_from_blk16(d->n, d->c, hw, dx, dxp);
    if (d->y_layout == RC_LAYOUT_BLK16) rc_layout_from_blk16(d->n, d->k, ohw, dy, dyp);
    rc_conv2d_backward_ref(&p, xb ? xp : x, w, d->y_layout == RC_LAYOUT_BLK16 ? dyp : dy, xb && dx ? dxp : dx, dx_acc,
                           dw, db);
    if (xb && dx) rc_layout_to_blk16(d->n, d->c, hw, dxp, dx);
}

/* db[k] += the sum of dy over images and positions, in either layout (the reference's order and precision). */
static void bias_grad(const rc_conv_dims *d, const float *dy, float *db) {
    const int K = d->k, kb = (K + 15) / 16, blk = d->y_layout == RC_LAYOUT_BLK16;
    const size_t hw = (size_t)d->ho * d->wo;
#pragma omp parallel for schedule(static)
    for (int k = 0; k < K; k++) {
        double s = 0.0;
        for (int n = 0; n < d->n; n++) {
            if (blk) {
                const float *p = dy + ((size_t)n * kb + k / 16) * hw * 16 + k % 16;
                for (size_t i = 0; i < hw; i++) s += p[i * 16];
            } else {
                const float *p = dy + ((size_t)n * K + k) * hw;
                for (size_t i = 0; i < hw; i++) s += p[i];
            }
        }
        db[k] += (float)s;
    }
}

/* ---------------------------------------------------------------- entry points */

void rc_conv2d_forward(const rc_conv_dims *d, const float *x, const float *w, const float *b, float *y) {
    rc_conv2d_forward_add(d, x, w, b, NULL, y);
}

void rc_conv2d_forward_add(const rc_conv_dims *d, const float *x, const float *w, const float *b, const float *r,
                           float *y) {
    switch (rc_conv2d_select(d, r ? RC_CONV_FWD_ADD : RC_CONV_FWD)) {
    case RC_CONV_IMPL_OWN: rc_conv2d_wino_forward(d, x, w, b, r, y); return;
    case RC_CONV_IMPL_DNNL: rc_conv2d_dnnl_forward_add(d, x, w, b, r, y); return;
    case RC_CONV_IMPL_REF: ref_forward(d, x, w, b, r, y); return;
    case RC_CONV_IMPL_NONE: break;
    }
    RC_ASSERT(0 && "no convolution forward");
}

void rc_conv2d_forward_ep(const rc_conv_dims *d, const float *x, const float *w, const void *wkey, const float *b,
                          const float *r, int relu, float *y) {
    RC_ASSERT(rc_conv2d_select(d, RC_CONV_FWD_EP) == RC_CONV_IMPL_OWN);
    rc_conv2d_wino_forward_ep(d, x, w, wkey, b, r, relu, y);
}

int rc_conv2d_forward_stats(const rc_conv_dims *d, const float *x, const float *w, const float *b, const float *r,
                            float *y, double *isum) {
    if (rc_conv2d_select(d, RC_CONV_FWD) != RC_CONV_IMPL_OWN) return 0;
    rc_conv2d_wino_forward_stats(d, x, w, b, r, y, isum);
    return 1;
}

/* Each gradient by its pass's implementation, in the order the fast paths always ran them: recur's
 * backward-data, oneDNN's passes (sharing dy's blocked copy), recur's backward-weights, the reference. */
void rc_conv2d_backward(const rc_conv_dims *d, const float *x, const float *w, const float *dy, float *dx,
                        int dx_acc, float *dw, float *db) {
    const int sd = dx ? rc_conv2d_select(d, RC_CONV_BWD_DATA) : RC_CONV_IMPL_NONE;
    const int sw = dw ? rc_conv2d_select(d, db ? RC_CONV_BWD_WEIGHTS_BIAS : RC_CONV_BWD_WEIGHTS) : RC_CONV_IMPL_NONE;
    if (sd == RC_CONV_IMPL_OWN) rc_conv2d_wino_backward_data(d, w, dy, dx, dx_acc);
    if (sd == RC_CONV_IMPL_DNNL || sw == RC_CONV_IMPL_DNNL)
        rc_conv2d_dnnl_backward(d, x, w, dy, sd == RC_CONV_IMPL_DNNL ? dx : NULL, dx_acc,
                                sw == RC_CONV_IMPL_DNNL ? dw : NULL, sw == RC_CONV_IMPL_DNNL ? db : NULL);
    if (sw == RC_CONV_IMPL_OWN) {
        rc_conv2d_wgrad_wino(d, x, dy, dw);
        if (db) bias_grad(d, dy, db);
    }
    if (sd == RC_CONV_IMPL_REF || sw == RC_CONV_IMPL_REF)
        ref_backward(d, x, w, dy, sd == RC_CONV_IMPL_REF ? dx : NULL, dx_acc, sw == RC_CONV_IMPL_REF ? dw : NULL,
                     sw == RC_CONV_IMPL_REF ? db : NULL);
    if (!dw && db) bias_grad(d, dy, db);
}

void rc_conv2d_release(void) {
    rc_conv2d_dnnl_release();
    rc_conv2d_wgrad_release();
    rc_conv2d_wino_release();
    rc_afree(g_tmp);
    g_tmp = NULL;
    g_tmp_cap = 0;
}
