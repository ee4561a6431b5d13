/* dist_eval.c — evaluation split over ranks: each rank evaluates a contiguous slice of the dataset with
 * its own model replica (identical params), then the per-readout counts and loss sums are all-reduced so
 * every rank holds the numbers for the whole dataset. Single-process it is rc_evaluate. */
#include <stdlib.h>

#include "dist.h"

rc_status rc_dist_evaluate(rc_model *m, const rc_dataset *d, double exit_threshold, rc_eval_result *r) {
    int N = rc_dist_size(), k = rc_dist_rank();
    if (N == 1) return rc_evaluate(m, d, exit_threshold, r);
    long lo = (long)((int64_t)d->n * k / N), hi = (long)((int64_t)d->n * (k + 1) / N);
    if (rc_evaluate_range(m, d, lo, hi, exit_threshold, r)) return RC_ERR;
    int R = r->nreadouts;
    /* pack: n, correct[R], coarse_correct[R], loss sums[R], exit_correct, exit readout and FLOP sums */
    size_t len = 4 + 3 * (size_t)R;
    double *b = malloc(len * sizeof(double));
    if (!b) return rc_fail("cannot allocate evaluation buffers");
    double n = (double)r->n;
    size_t q = 0;
    b[q++] = n;
    for (int t = 0; t < R; t++) b[q++] = (double)r->correct[t];
    for (int t = 0; t < R; t++) b[q++] = (double)r->coarse_correct[t];
    for (int t = 0; t < R; t++) b[q++] = r->loss[t] * n;
    b[q++] = (double)r->exit_correct;
    b[q++] = r->exit_mean_readouts * n;
    b[q++] = r->exit_mean_flops * n;
    rc_status st = rc_dist_sum_f64(b, len);
    if (st == RC_OK) {
        q = 0;
        double tot = b[q++];
        double div = tot > 0 ? tot : 1;
        r->n = (long)tot;
        for (int t = 0; t < R; t++) r->correct[t] = (long)b[q++];
        for (int t = 0; t < R; t++) r->coarse_correct[t] = (long)b[q++];
        for (int t = 0; t < R; t++) r->loss[t] = b[q++] / div;
        r->exit_correct = (long)b[q++];
        r->exit_mean_readouts = b[q++] / div;
        r->exit_mean_flops = b[q++] / div;
    }
    free(b);
    return st;
}
