/* experiment.h — the experiments of docs/RESULTS.md as library calls: the 2x2 tied/untied x loss
 * design (table4), the depth-vs-tying trade-off, coarse-to-fine, early exit and more iterations at test
 * time. Each trains its sub-runs with rc_train under OUT/runs/NAME (resumable; finished ones are reused)
 * and writes CSV, a Markdown table and gnuplot figures (PNG + SVG) into OUT. */
#ifndef RC_EXPERIMENT_H
#define RC_EXPERIMENT_H

#include "base/common.h"

typedef struct {
    const char *out_dir; /* OUT (created if missing) */
    const char *data;    /* dataset spec for the sub-runs and evaluations (NULL: the config's) */
    int epochs;          /* > 0: train.epochs of every sub-run */
    int threads;         /* > 0: train.threads of every sub-run and of the evaluations */
    int eval_limit;      /* > 0: evaluate on the first N test images only (early-exit, more-iterations) */
    int quick;           /* a tiny run for tests: 4096 training images, 1 epoch, 1000 test images */
    int quiet;           /* no progress output from training */
    int seeds;           /* > 1: every trained cell N times, train.seed = 1..N (seed 1 in OUT/runs/NAME, seed k
                            in OUT/runs/NAME-seedK); results are the mean, sample std (n - 1) and per-seed
                            values. <= 1: one run with the config's own seed (today's outputs) */
    const char *const *sets; /* nsets `SECTION.KEY=VALUE` overrides of the base config, applied before the */
    int nsets;               /* experiment's own settings (for tradeoff: to the [area] template) */
} rc_exp_opts;

/* {tied, untied} x {loss final, loss every} on base_cfg (every area's tied key and model.loss are
 * set); accuracy at every iteration for all four. Files: table4.csv, table4.md, table4.{png,svg}. */
rc_status rc_exp_table4(const char *base_cfg, const rc_exp_opts *o);

/* Effective depth D (1..16) split into K areas of T = D/K tied iterations for every divisor K of D,
 * built from base_cfg's single [area] template (the first area keeps its stride, the others use 1);
 * plus, for every K < D, a width-matched twin whose channels are raised until its params are closest
 * to the fully feedforward split's (K = D). Files: tradeoff.csv, tradeoff.md and the figures
 * tradeoff_params, tradeoff_units and tradeoff_flops. */
rc_status rc_exp_tradeoff(const char *base_cfg, int depth, const rc_exp_opts *o);

/* Fine and coarse accuracy at every iteration of base_cfg (tied) trained with loss every and with
 * loss coarse-to-fine. Needs a dataset with a taxonomy. Files: coarse_fine.csv, .md, .{png,svg}. */
rc_status rc_exp_coarse_fine(const char *base_cfg, const rc_exp_opts *o);

/* Early exit by confidence over a trained run: one pass over the test set records every readout's
 * prediction and confidence, then thresholds P are swept; accuracy against mean forward FLOPs per
 * image, next to the fixed-iteration readouts. run_dir NULL: base_cfg (tied, loss every) is trained
 * as OUT/runs/tied-every first. iterations > 0 unrolls the tied areas that many steps. Files:
 * early_exit.csv, .md, .{png,svg}. */
rc_status rc_exp_early_exit(const char *run_dir, const char *base_cfg, int iterations, const rc_exp_opts *o);

/* Test-time depth: a tied run evaluated with every area unrolled T' = 1..max_iters steps (params of
 * steps past the trained T are step T's); accuracy of the last readout against T'. max_iters <= 0:
 * 3 x the top area's trained T. run_dir NULL as for early exit. Files: more_iterations.csv, .md,
 * .{png,svg}. */
rc_status rc_exp_more_iterations(const char *run_dir, const char *base_cfg, int max_iters, const rc_exp_opts *o);

/* Thinking longer (Schwarzschild et al. 2021, Bansal et al. 2022) on a generated task (task: "prefix-sums"
 * or "mazes", base_cfg's train.data a spec of it): a tied area with recall and the progressive loss, the
 * same without recall, the same without the progressive loss (loss final), and an untied (feedforward)
 * twin of the trained depth; every run evaluated on the training size and two larger ones with 1..max_iters
 * test-time iterations (max_iters <= 0: 4T, --quick 2T). Files: extrapolate.csv, extrapolate.md and a
 * figure extrapolate_SIZE per test size (solved against iterations). */
rc_status rc_exp_extrapolate(const char *base_cfg, const char *task, int max_iters, const rc_exp_opts *o);

#endif
