/* eval.h — accuracy of every readout (anytime prediction) over a dataset, coarse accuracy where the
 * dataset has a taxonomy, mean loss per readout, and confidence-based early exit. */
#ifndef RC_EVAL_H
#define RC_EVAL_H

#include "io/dataset.h"
#include "models/model.h"

typedef struct {
    int nreadouts;
    long n;                                  /* images evaluated */
    long correct[RC_MAX_READOUTS];           /* fine top-1 correct per readout */
    long coarse_correct[RC_MAX_READOUTS];    /* coarse correct per readout (if has_coarse) */
    double loss[RC_MAX_READOUTS];            /* mean fine cross-entropy per readout */
    int has_coarse;
    /* early exit (exit_threshold > 0): first readout whose max softmax probability >= threshold,
     * else the last one */
    double exit_threshold;
    long exit_correct;
    double exit_mean_readouts; /* mean number of readouts (iterations) used */
    double exit_mean_flops;    /* mean forward FLOPs per image up to the exit readout */
    /* learned halting (halt_ponder, model.halting = ponder): each image stops at the first step whose
     * cumulative halting probability reaches 0.5 (halt_ponder 1) or at a sampled step (2); counts as the
     * early exit's */
    int halt_ponder;
    long halt_correct;
    double halt_mean_readouts, halt_mean_flops;
    long halt_hist[RC_MAX_READOUTS]; /* images halted at each step */
    /* dense readouts (a target per position): correct[] counts images solved (every kept position
     * right), pos_correct[] kept positions right, positions the kept positions evaluated, and loss[] is
     * the mean cross-entropy over kept positions */
    int dense;
    long positions;
    long pos_correct[RC_MAX_READOUTS];
} rc_eval_result;

/* Evaluate the model (eval-mode batch norm) on every image of d, in batches of the model's batch size
 * (the last partial batch is padded; padding is not counted). exit_threshold <= 0 disables early exit.
 * Allocates small per-call buffers only. */
rc_status rc_evaluate(rc_model *m, const rc_dataset *d, double exit_threshold, rc_eval_result *r);
/* The same over images [start, end) of d only (0 <= start <= end <= d->n); r->n = end - start. Data-parallel
 * evaluation gives each rank one range and sums the counts (src/dist). */
rc_status rc_evaluate_range(rc_model *m, const rc_dataset *d, long start, long end, double exit_threshold,
                            rc_eval_result *r);

/* Per-batch hook for callers that want per-image results (recur eval --save-logits, recur features):
 * called after each batch's forward pass with images [first, first + n) of the dataset (n <= the graph's
 * batch; rows past n are padding) and their labels; it reads what it needs from m's tensors (each
 * readout's logits: m->g.tensors[m->readout[t]].x, n x classes floats). A failure stops the evaluation
 * with the sink's message. */
typedef struct {
    rc_status (*fn)(void *ctx, const rc_model *m, long first, int n, const int *labels);
    void *ctx;
} rc_eval_sink;
/* rc_evaluate_range with a sink (NULL: none). */
rc_status rc_evaluate_sink(rc_model *m, const rc_dataset *d, long start, long end, double exit_threshold,
                           const rc_eval_sink *sink, rc_eval_result *r);

/* rc_evaluate_sink with learned halting (halt_ponder != 0 needs model.halting = ponder): 1 = the first step
 * whose cumulative halting probability reaches 0.5; 2 = sampled (halt at step n with probability lambda_n),
 * each image's draws seeded by its index in d, so the result does not depend on batch or range. */
rc_status rc_evaluate_halt(rc_model *m, const rc_dataset *d, long start, long end, double exit_threshold,
                           int halt_ponder, const rc_eval_sink *sink, rc_eval_result *r);

/* Forward FLOPs per image needed to produce readout r (0-based): every node that readout depends on (and,
 * with halting heads, every node the halting logits of readouts 0..r depend on). */
void rc_model_readout_flops(const rc_model *m, double *flops_per_readout);

/* Step by step (eval_steps.c): a model that continues from its state (rc_model_can_continue) loaded from
 * ckpt and run for `iterations` (<= RC_MAX_READOUTS) steps over every image of d, holding two steps'
 * activations whatever the number of steps; r as rc_evaluate's with one readout per iteration. */
rc_status rc_evaluate_stepwise(const rc_model_cfg *mc, const char *ckpt, const rc_dataset *d, int batch,
                               int iterations, rc_eval_result *r);

double rc_eval_accuracy(const rc_eval_result *r, int readout); /* dense: the fraction solved */
double rc_eval_position_accuracy(const rc_eval_result *r, int readout);
/* Dense readout logits (N, K, HW) of the first n images against targets / mask (N x HW, mask NULL: all):
 * adds the images solved, the kept positions right and the kept positions. */
void rc_eval_dense_score(int n, int k, int hw, const float *logits, const uint8_t *tgt, const uint8_t *mask,
                         long *solved, long *right, long *kept);
double rc_eval_coarse_accuracy(const rc_eval_result *r, int readout);

#endif
