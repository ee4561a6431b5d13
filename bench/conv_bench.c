/* conv_bench.c — conv2d throughput (GFLOP/s) of the oneDNN fast path for forward, backward-data and
 * backward-weights at N=128 on the trunk shapes, with 1 and 2 threads and five variants: plain NCHW
 * given to oneDNN; format_tag_any + reorders on every call (what a framework with NCHW tensors does);
 * activations kept in nChw16c (the graph's blocked plan, direct); the same with the default algorithm
 * choice (Winograd for forward and backward-data) and with Winograd for every pass; plus fast vs
 * reference on a small case.
 * Not a test. `make` builds it when oneDNN is installed:
 *   build/conv_bench            (add --quick for fewer repetitions)
 *   build/conv_bench --cache    (only: whole-batch calls on streamed data vs micro-batch calls in cache)
 *   build/conv_bench --own [THREADS]  (only: each pass, oneDNN vs recur's Winograd kernels)
 * Every pass is charged the forward FLOPs (2*N*K*Ho*Wo*C*R*R); "step" = fwd + bwd data + bwd weights. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/rng.h"
#include "ops/conv2d_dnnl.h"
#include "ops/ops.h"

#ifndef RC_HAVE_DNNL
#error "conv_bench measures the oneDNN path: build with -DRC_HAVE_DNNL -ldnnl"
#endif

typedef struct {
    const char *name;
    int n, c, h, w, k, r, s, p;
} bshape;

static const bshape g_shapes[] = {
    {"C=K=32 28x28 3x3 s1", 128, 32, 28, 28, 32, 3, 1, 1},
    {"C=K=64 14x14 3x3 s1", 128, 64, 14, 14, 64, 3, 1, 1},
    {"C=32->K=64 28x28 3x3 s2", 128, 32, 28, 28, 64, 3, 2, 1},
    {"C=32->K=64 28x28 1x1 s2", 128, 32, 28, 28, 64, 1, 2, 0},
    {"C=128->K=32 28x28 1x1 s1", 128, 128, 28, 28, 32, 1, 1, 0},
    {"ConvLSTM C=32->K=128 28x28 3x3", 128, 32, 28, 28, 128, 3, 1, 1},
};

typedef struct {
    rc_conv_dims d;
    float *x, *w, *b, *y, *dy, *dx, *dw, *db;
} bufs;

static float *rnd(rc_rng *r, size_t n) {
    float *p = rc_aalloc_floats(n);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++) p[i] = rc_rng_uniform(r) - 0.5f;
    return p;
}

static void bufs_init(bufs *B, const bshape *s, rc_rng *r) {
    rc_conv_dims_init(&B->d, s->n, s->c, s->h, s->w, s->k, s->r, s->s, s->p);
    const rc_conv_dims *d = &B->d;
    size_t nx = (size_t)d->n * d->c * d->h * d->w, ny = (size_t)d->n * d->k * d->ho * d->wo;
    size_t nw = (size_t)d->k * d->c * d->r * d->r;
    B->x = rnd(r, nx), B->dx = rnd(r, nx), B->w = rnd(r, nw), B->dw = rnd(r, nw);
    B->b = rnd(r, (size_t)d->k), B->db = rnd(r, (size_t)d->k), B->y = rnd(r, ny), B->dy = rnd(r, ny);
}

static void bufs_free(bufs *B) {
    rc_afree(B->x), rc_afree(B->dx), rc_afree(B->w), rc_afree(B->dw), rc_afree(B->b), rc_afree(B->db);
    rc_afree(B->y), rc_afree(B->dy);
}

enum { P_FWD, P_BWD_DATA, P_BWD_WEIGHTS, P_STEP };

static void run_pass(bufs *B, int pass) {
    const rc_conv_dims *d = &B->d;
    switch (pass) {
    case P_FWD: rc_conv2d_forward(d, B->x, B->w, B->b, B->y); break;
    case P_BWD_DATA: rc_conv2d_backward(d, B->x, B->w, B->dy, B->dx, 1, NULL, NULL); break;
    case P_BWD_WEIGHTS: rc_conv2d_backward(d, B->x, B->w, B->dy, NULL, 0, B->dw, B->db); break;
    default:
        rc_conv2d_forward(d, B->x, B->w, B->b, B->y);
        rc_conv2d_backward(d, B->x, B->w, B->dy, B->dx, 1, B->dw, B->db);
    }
}

/* Best-of-repeats GFLOP/s of one pass (warm-up call first, so primitive creation is excluded). */
static double gflops(bufs *B, int pass, int reps) {
    double flops = rc_conv2d_flops(&B->d) * (pass == P_STEP ? 3.0 : 1.0);
    run_pass(B, pass);
    double best = 1e30;
    for (int i = 0; i < reps; i++) {
        double t0 = rc_now();
        run_pass(B, pass);
        double t = rc_now() - t0;
        if (t < best) best = t;
    }
    return flops / best * 1e-9;
}

/* Mean seconds of one pass over 128 images: streamed = N=128 calls cycling through `sets` buffer sets (more
 * than the last-level cache holds, as in a training step that touches each activation once per pass);
 * in cache = N=128/8 calls on one set (what the chunked schedule gives a convolution whose input the
 * previous node of its wave has just written). Blocked layout, the default algorithm. */
static void cache_effect(const bshape *s0, rc_rng *rng, int reps) {
    enum { SETS = 4, MB = 8 };
    bufs S[SETS], H;
    bshape sm = *s0;
    for (int k = 0; k < SETS; k++) {
        bufs_init(&S[k], s0, rng);
        S[k].d.x_layout = S[k].d.y_layout = RC_LAYOUT_BLK16;
    }
    sm.n = s0->n / MB;
    bufs_init(&H, &sm, rng);
    H.d.x_layout = H.d.y_layout = RC_LAYOUT_BLK16;
    const char *names[3] = {"fwd", "bwd_d", "bwd_w"};
    printf("%-32s", s0->name);
    for (int p = 0; p < 3; p++) {
        double flops = rc_conv2d_flops(&S[0].d), ts = 0, th = 0;
        for (int k = 0; k < SETS; k++) run_pass(&S[k], p); /* warm-up, primitive creation */
        run_pass(&H, p);
        for (int i = 0; i < reps; i++) {
            double t0 = rc_now();
            for (int k = 0; k < SETS; k++) run_pass(&S[k], p);
            ts += (rc_now() - t0) / SETS;
            t0 = rc_now();
            for (int j = 0; j < MB; j++) run_pass(&H, p);
            th += rc_now() - t0;
        }
        ts /= reps;
        th /= reps;
        printf("  %s %5.0f / %5.0f (%.2fx)", names[p], flops / ts * 1e-9, flops / th * 1e-9, ts / th);
    }
    printf("\n");
    for (int k = 0; k < SETS; k++) bufs_free(&S[k]);
    bufs_free(&H);
    rc_conv2d_release();
}

/* Each pass, blocked layouts, no bias: oneDNN's kernel (the algorithm AUTO picks: Winograd for forward and
 * backward-data, direct for backward-weights unless K >= 4C) against recur's Winograd kernels
 * (conv2d_wino.c, conv2d_wgrad.c), alternating, over N=128 in one call and in 8 calls of N=16 (the
 * chunked schedule's micro-batches). Prints GFLOP/s (direct-convolution FLOPs) and the ratio. */
static void own_compare(const bshape *s0, rc_rng *rng, int reps) {
    const char *names[3] = {"fwd  ", "bwd_d", "bwd_w"};
    for (int mb = 1; mb <= 8; mb *= 8) {
        bshape sm = *s0;
        sm.n = s0->n / mb;
        bufs B;
        bufs_init(&B, &sm, rng);
        B.d.x_layout = B.d.y_layout = RC_LAYOUT_BLK16;
        for (int p = 0; p < 3; p++) {
            double best[2] = {1e30, 1e30};
            for (int i = 0; i < reps + 1; i++)
                for (int own = 0; own < 2; own++) {
                    rc_conv2d_set_own(own ? RC_CONV_OWN_ALL : 0);
                    double t0 = rc_now();
                    for (int j = 0; j < mb; j++) {
                        if (p == 0) rc_conv2d_forward(&B.d, B.x, B.w, NULL, B.y);
                        else if (p == 1) rc_conv2d_backward(&B.d, B.x, B.w, B.dy, B.dx, 0, NULL, NULL);
                        else rc_conv2d_backward(&B.d, B.x, B.w, B.dy, NULL, 0, B.dw, NULL);
                    }
                    double t = rc_now() - t0;
                    if (i > 0 && t < best[own]) best[own] = t; /* i = 0: warm-up, primitive creation */
                }
            const double f = rc_conv2d_flops(&B.d) * mb * 1e-9;
            printf("%-32s %s %s  oneDNN %6.1f  recur %6.1f GFLOP/s  (%.2fx)  [oneDNN: %s]\n", s0->name,
                   mb == 1 ? "N=128 x1" : "N=16 x8 ", names[p], f / best[0], f / best[1], best[0] / best[1],
                   rc_conv2d_dnnl_impl_name(&B.d, p, 0));
            fflush(stdout);
        }
        bufs_free(&B);
    }
    rc_conv2d_set_own(RC_CONV_OWN_ALL);
}

int main(int argc, char **argv) {
    int reps = (argc > 1 && strcmp(argv[1], "--quick") == 0) ? 3 : 10;
    if (argc > 1 && strcmp(argv[1], "--own") == 0) { /* only: each pass, oneDNN vs recur's Winograd kernels */
        rc_rng rng;
        rc_rng_seed(&rng, 7);
        rc_ops_fast = 1;
        rc_set_threads(argc > 2 ? atoi(argv[2]) : 2);
        printf("blocked layouts, %d threads, best of 10\n", rc_get_threads());
        own_compare(&g_shapes[0], &rng, 10);
        own_compare(&g_shapes[1], &rng, 10);
        own_compare(&g_shapes[5], &rng, 10);
        rc_conv2d_release();
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "--cache") == 0) { /* only the cache comparison */
        rc_rng rng;
        rc_rng_seed(&rng, 7);
        rc_ops_fast = 1;
        rc_set_threads(2);
        printf("conv2d GFLOP/s per pass over N=128, 2 threads: streamed (N=128 calls, 4 buffer sets in turn) /\n"
               "in cache (8 calls of N=16 on one buffer set) (speedup); mean of 10\n");
        cache_effect(&g_shapes[0], &rng, 10);
        cache_effect(&g_shapes[1], &rng, 10);
        cache_effect(&g_shapes[5], &rng, 10);
        return 0;
    }
    rc_rng rng;
    rc_rng_seed(&rng, 7);
    rc_ops_fast = 1;
    rc_conv2d_set_own(0); /* this table measures oneDNN's kernels; --own compares recur's with them */
    const int def_blocked = rc_conv2d_dnnl_set_blocked(0); /* remember the library default policy */
    rc_conv2d_dnnl_set_blocked(def_blocked);
    const int nshapes = (int)(sizeof g_shapes / sizeof g_shapes[0]);
    printf("conv2d GFLOP/s, N=128, best of %d (fwd FLOPs charged to every pass)\n", reps);
    printf("%-32s %3s %-10s %8s %8s %8s %8s\n", "shape", "thr", "variant", "fwd", "bwd_d", "bwd_w", "step");
    static const char *vnames[5] = {"plain", "reorder", "nChw16c", "16c+auto", "16c+wino"};
    for (int si = 0; si < nshapes; si++) {
        bufs B;
        bufs_init(&B, &g_shapes[si], &rng);
        for (int thr = 1; thr <= 2; thr++) {
            rc_set_threads(thr);
            for (int v = 0; v < 5; v++) {
                int blk = v >= 2 && B.d.c % 16 == 0 && B.d.k % 16 == 0;
                if (v >= 2 && !blk) continue;
                rc_conv2d_dnnl_set_blocked(v == 1 ? 1 : 0);
                rc_conv2d_set_algo(v == 3 ? RC_CONV_ALGO_AUTO : v == 4 ? RC_CONV_ALGO_WINOGRAD : RC_CONV_ALGO_DIRECT);
                B.d.x_layout = B.d.y_layout = blk ? RC_LAYOUT_BLK16 : RC_LAYOUT_NCHW;
                double g[4];
                for (int p = 0; p < 4; p++) g[p] = gflops(&B, p, reps);
                printf("%-32s %3d %-10s %8.1f %8.1f %8.1f %8.1f\n", g_shapes[si].name, thr, vnames[v], g[0], g[1],
                       g[2], g[3]);
                if (thr == 2)
                    printf("    impl: fwd %s | bwd_d %s | bwd_w %s\n", rc_conv2d_dnnl_impl_name(&B.d, 0, 1),
                           rc_conv2d_dnnl_impl_name(&B.d, 1, 0), rc_conv2d_dnnl_impl_name(&B.d, 2, 1));
                B.d.x_layout = B.d.y_layout = RC_LAYOUT_NCHW;
                fflush(stdout);
            }
        }
        bufs_free(&B);
        rc_conv2d_release(); /* keep memory flat between shapes */
    }
    rc_conv2d_dnnl_set_blocked(def_blocked);
    rc_conv2d_set_algo(RC_CONV_ALGO_AUTO);

    /* fast vs reference on a small case, 2 threads */
    rc_set_threads(2);
    bshape small = {"N=8 C=K=32 28x28 3x3 s1", 8, 32, 28, 28, 32, 3, 1, 1};
    bufs B;
    bufs_init(&B, &small, &rng);
    double fast[4], ref[4];
    for (int p = 0; p < 4; p++) fast[p] = gflops(&B, p, reps);
    rc_ops_fast = 0;
    for (int p = 0; p < 4; p++) ref[p] = gflops(&B, p, 2);
    rc_ops_fast = 1;
    printf("\n%s, 2 threads, default layout (%s): fast vs reference GFLOP/s\n", small.name, def_blocked == 2 ? "auto" : def_blocked ? "blocked" : "plain");
    const char *names[4] = {"fwd", "bwd_d", "bwd_w", "step"};
    for (int p = 0; p < 4; p++)
        printf("  %-6s fast %8.1f  ref %6.2f  (x%.0f)\n", names[p], fast[p], ref[p], fast[p] / ref[p]);
    bufs_free(&B);
    rc_conv2d_release();
    return 0;
}
