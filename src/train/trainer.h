/* trainer.h — the training loop: data, model, optimizer, per-epoch evaluation at every iteration,
 * train.csv, atomic checkpoints, exact resume, NaN/Inf stop, and SIGINT/SIGTERM at a step boundary. */
#ifndef RC_TRAINER_H
#define RC_TRAINER_H

#include "base/common.h"

typedef struct {
    const char *run_dir;     /* holds config.cfg, model.ckpt, train.csv */
    int resume;              /* continue from run_dir/model.ckpt */
    long max_steps;          /* stop (with a checkpoint) after this many steps in this process; 0 = none */
    double ckpt_every_s;     /* also checkpoint every N seconds at a step boundary (0 = epoch ends only) */
    int quiet;               /* no progress output */
    const char *loss_log;    /* if set: append "global_step loss" per step to this file (tests; rank 0) */
    int check_numerics;      /* check every op's output and gradients for NaN/Inf; stop naming the first */
} rc_train_opts;

/* Outcome of a run, for callers (experiments) that want numbers without reading files. */
typedef struct {
    int finished;       /* all epochs done */
    int interrupted;    /* stopped by a signal or max_steps (checkpoint written) */
    long epochs_done;
    int nreadouts;
    double test_acc[1024]; /* last evaluation, per readout */
    double test_coarse_acc[1024];
    int has_coarse;
    double seconds;
} rc_train_result;

/* Train the model described by config_text (the effective config, canonical or not). For a new run,
 * run_dir must exist and hold config.cfg already (the CLI writes it); for a resume the config stored
 * in the checkpoint is used and must equal config_text. */
rc_status rc_train(const char *config_text, const char *display_name, const rc_train_opts *opts,
                   rc_train_result *result);

/* Install SIGINT/SIGTERM handlers that ask the loop to stop at the next step boundary. */
void rc_train_install_signal_handlers(void);
/* Nonzero once a stop was requested. */
int rc_train_stop_requested(void);


#endif
