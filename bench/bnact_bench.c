/* bnact_bench.c — is the fused batch norm (+ residual add + ReLU + pooling) bandwidth-bound? Times
 * rc_bn_stats, rc_bnact_forward and rc_bnact_backward on one residual-cell tensor (N=128, C=32, 28x28,
 * nChw16c, as in bench/configs/tied_bnpi.cfg) and, in the same run, a plain copy and a triad over arrays
 * of the same size, so the fused op's bytes per second can be read against what this machine moves.
 * Best of 30 repetitions with the data hot (the tensor fits in L3); inside a training step the same
 * calls run colder (see `recur bench --profile`). Not a test. `make` builds it:
 *   build/bnact_bench [THREADS]
 * Bytes counted are the minimum each call must move: stats reads x; forward reads x twice (statistics,
 * then normalisation), reads r and writes y; backward with a residual reads x, y, dy, writes g (the
 * residual's gradient), then reads x, g and writes dx; without one it reads x, dy twice and writes dx.
 * The last row times the statistics on data that is not in cache: one call on each of COLD_SETS tensors in
 * turn (more than the L3 holds), the mean of REPS rounds — what the prefetch in bnact.c is for. */
#include <stdio.h>
#include <stdlib.h>

#include "base/common.h"
#include "ops/ops.h"

#define REPS 30
#define COLD_SETS 6

static double best_of(double *best, double t) { return *best = t < *best ? t : *best; }

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    if (threads < 1 || threads > 256) {
        fprintf(stderr, "usage: bnact_bench [THREADS]\n");
        return 2;
    }
    rc_set_threads(threads);
    const int n = 128, c = 32, hw = 28 * 28;
    const size_t N = (size_t)n * c * hw;
    float *x = rc_xmalloc(N * 4), *r = rc_xmalloc(N * 4), *y = rc_xmalloc(N * 4), *dy = rc_xmalloc(N * 4),
          *dx = rc_xmalloc(N * 4), *dr = rc_xmalloc(N * 4);
    for (size_t i = 0; i < N; i++) x[i] = (float)((i * 7919) % 1000) / 500.0f - 1.0f;
    for (size_t i = 0; i < N; i++) {
        r[i] = x[(i * 13) % N];
        dy[i] = x[(i * 31) % N];
    }
    float gamma[32], beta[32], mean[32], rstd[32], rmean[32], rvar[32], pool[128 * 32], dg[32], db[32];
    for (int i = 0; i < c; i++) {
        gamma[i] = 1.0f;
        beta[i] = 0.1f;
        rmean[i] = 0.0f;
        rvar[i] = 1.0f;
        dg[i] = db[i] = 0.0f;
    }
    double *work = rc_xmalloc(rc_bn_work_doubles(c) * sizeof(double));
    double b_copy = 1e9, b_triad = 1e9, b_stats = 1e9, b_fwd = 1e9, b_bwdr = 1e9, b_bwd = 1e9;
    for (int it = 0; it < REPS; it++) {
        double t0 = rc_now();
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < N; i++) dx[i] = x[i];
        double t1 = rc_now();
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < N; i++) dx[i] = x[i] + 1.5f * r[i];
        double t2 = rc_now();
        rc_bn_stats(n, c, hw, RC_LAYOUT_BLK16, x, mean, rstd, rmean, rvar, 0.1f, 1e-5f, RC_BN_TRAIN, work);
        double t3 = rc_now();
        rc_bnact_forward(n, c, hw, RC_LAYOUT_BLK16, x, r, gamma, beta, y, pool, mean, rstd, rmean, rvar, 0.1f, 1e-5f,
                         RC_BN_TRAIN, 1, work);
        double t4 = rc_now();
        rc_bnact_backward(n, c, hw, RC_LAYOUT_BLK16, x, y, gamma, beta, mean, rstd, dy, NULL, dx, 0, dr, 0, dg, db, 1,
                          1, 1, work);
        double t5 = rc_now();
        rc_bnact_backward(n, c, hw, RC_LAYOUT_BLK16, x, NULL, gamma, beta, mean, rstd, dy, NULL, dx, 0, NULL, 0, dg,
                          db, 1, 1, 0, work);
        double t6 = rc_now();
        best_of(&b_copy, t1 - t0);
        best_of(&b_triad, t2 - t1);
        best_of(&b_stats, t3 - t2);
        best_of(&b_fwd, t4 - t3);
        best_of(&b_bwdr, t5 - t4);
        best_of(&b_bwd, t6 - t5);
    }
    /* statistics on tensors not in cache */
    float *cold[COLD_SETS];
    for (int k = 0; k < COLD_SETS; k++) {
        cold[k] = rc_xmalloc(N * 4);
        for (size_t i = 0; i < N; i++) cold[k][i] = x[(i + (size_t)k * 977) % N];
    }
    double t_cold = 0;
    for (int it = 0; it < REPS; it++)
        for (int k = 0; k < COLD_SETS; k++) {
            double t0 = rc_now();
            rc_bn_stats(n, c, hw, RC_LAYOUT_BLK16, cold[k], mean, rstd, rmean, rvar, 0.1f, 1e-5f, RC_BN_TRAIN, work);
            t_cold += rc_now() - t0;
        }
    t_cold /= REPS * COLD_SETS;
    for (int k = 0; k < COLD_SETS; k++) free(cold[k]);
    const double mb = (double)N * 4 / 1e6;
    printf("bnact_bench: N=%d C=%d %dx%d nChw16c (%.1f MB a tensor), %d thread%s, best of %d\n", n, c, 28, 28, mb,
           threads, threads == 1 ? "" : "s", REPS);
    printf("%-34s %8s %8s %8s\n", "kernel", "ms", "MB moved", "GB/s");
#define ROW(name, t, k) printf("%-34s %8.3f %8.1f %8.1f\n", name, (t) * 1e3, (k) * mb, (k) * mb / (t) / 1e3)
    ROW("copy (x -> y)", b_copy, 2);
    ROW("triad (y = x + s r)", b_triad, 3);
    ROW("bn statistics", b_stats, 1);
    ROW("bn+add+relu+pool forward", b_fwd, 4);
    ROW("bn+relu backward, residual", b_bwdr, 7);
    ROW("bn+relu backward, no residual", b_bwd, 5);
    ROW("bn statistics, not in cache (mean)", t_cold, 1);
    free(x);
    free(r);
    free(y);
    free(dy);
    free(dx);
    free(dr);
    free(work);
    return 0;
}
