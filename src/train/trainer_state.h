/* trainer_state.h — rc_trainer, the state of one training run that passes between the trainer's pieces:
 * setup and teardown (trainer_setup.c), then step, end of epoch and save (trainer.c), which rc_train runs
 * in turn. Internal to src/train. */
#ifndef RC_TRAINER_STATE_H
#define RC_TRAINER_STATE_H

#include <stdio.h>

#include "io/checkpoint.h"
#include "io/dataset.h"
#include "io/files.h"
#include "models/model.h"
#include "trainer.h"

typedef struct {
    /* what was asked */
    const char *config_text;       /* the effective config (stored in every checkpoint) */
    rc_train_opts opts;            /* the caller's, with quiet set on ranks other than 0 */
    rc_train_result *res;          /* the caller's or own_res */
    rc_train_result own_res;
    rc_model_cfg mc;
    rc_train_cfg tc;
    int rank, nranks, threads;
    int lb;                        /* this rank's images per step: tc.batch / nranks */
    char ckpt_path[4096], csv_path[4096];

    /* data */
    rc_dataset full, train, val, test;
    int dense;                     /* a target per position (model.readout = dense) */
    int has_coarse;                /* the test split has a taxonomy: coarse accuracy columns */
    rc_augment aug;
    int *perm;                     /* the epoch's order of the training images */
    int *labels;                   /* the global batch's labels */
    const int *my_labels;          /* this rank's slice of them */
    uint8_t *tgt, *tmask;          /* dense: the global batch's targets and loss mask */
    float *xglob;                  /* data-parallel: the whole global batch, of which this rank takes its slice */
    size_t img_floats;

    /* models (mcont and mtest share m's params) */
    rc_model m;                    /* the training graph */
    rc_model mcont;                /* loss = progressive: k steps continued from a detached state */
    rc_model mtest;                /* dense, test split of another size: the model built at its size */
    int model_built, cont_built, test_built;
    int R;                         /* readouts */
    int prog;                      /* model.loss = progressive */

    /* position: what a checkpoint stores, and the two random streams */
    rc_ckpt_meta meta;             /* epoch, step_in_epoch, global_step (steps done), best_acc, ... */
    rc_rng shuffle_rng, aug_rng;
    rc_rng epoch_shuffle_start;    /* shuffle_rng at the current epoch's start (mid-epoch checkpoints store it) */
    long spe;                      /* steps per epoch */
    int all_done;                  /* resumed a run whose epochs are all done: nothing to train */

    /* the current epoch: running sums over all its steps (restored on resume), this process's share */
    double loss_sum;               /* sum of step loss x global batch */
    long correct_sum, seen;
    long ep_imgs;                  /* images this process trained in the epoch (for images/s) */
    double ep_t0;

    /* timing and stopping */
    double t_start, last_ckpt, step_seconds;
    long steps_this_run;
    int stopping;                  /* 1: stop after this epoch's end; 2: stopped mid-epoch with a checkpoint */

    /* outputs */
    rc_strbuf head, csv;           /* train.csv header and rows, rewritten whole after every epoch */
    FILE *losslog;                 /* opts.loss_log, rank 0 */
    int tty, log_every;

    /* test hook RECUR_INJECT_NAN_STEP (trainer_setup.c) */
    long nan_step;
    int nan_grad;
} rc_trainer;

/* Parse the config, load and check the data, build the models, restore a checkpoint (opts->resume) or
 * initialise params and streams, and open the outputs. On failure t holds what was made so far (free it
 * with rc_trainer_free). Sets t->all_done when a resumed run has nothing left to train. */
rc_status rc_trainer_setup(rc_trainer *t, const char *config_text, const char *display_name, const rc_train_opts *opts,
                           rc_train_result *result);

/* Free everything rc_trainer_setup made (any part of it) and reset the process-wide switches it set. */
void rc_trainer_free(rc_trainer *t);

#endif
