/* trainer_setup.c — the trainer's first and last pieces: from a config to an rc_trainer ready for its first
 * step (data, models, position restored from a checkpoint or freshly seeded, train.csv header, loss log),
 * and the teardown of whatever part of that was made. */
#define _POSIX_C_SOURCE 200809L
#include "trainer_state.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "dist/dist.h"
#include "io/ini.h"
#include "optim.h"

/* Keep the header and the rows of epochs <= last_epoch from an existing train.csv. */
static void csv_reload(rc_strbuf *csv, const char *path, long last_epoch) {
    FILE *f = fopen(path, "r");
    if (!f) return;
    char line[16384];
    int first = 1;
    while (fgets(line, sizeof line, f)) {
        if (first) {
            first = 0;
            continue; /* header is regenerated */
        }
        long e = strtol(line, NULL, 10);
        if (e >= 1 && e <= last_epoch && strchr(line, '\n')) rc_sb_printf(csv, "%s", line);
    }
    fclose(f);
}

/* Test hook (tests/test_reliability.sh, docs/RELIABILITY.md): RECUR_INJECT_NAN_STEP=N poisons global step
 * N: "N" puts a NaN into the first pixel of the batch (forward), "N:grad" into the final readout's loss
 * gradient (backward). Unset or malformed: no injection. */
static long nan_inject_step(int *grad) {
    const char *e = getenv("RECUR_INJECT_NAN_STEP");
    char *end;
    long v = e ? strtol(e, &end, 10) : 0;
    *grad = v > 0 && !strcmp(end, ":grad");
    return v > 0 && (!*end || *grad) ? v : 0;
}

/* The training, validation and test splits, checked against the model config and the number of ranks. */
static rc_status setup_data(rc_trainer *t) {
    const rc_train_cfg *tc = &t->tc;
    const rc_model_cfg *mc = &t->mc;
    if (rc_dataset_load(tc->data, 1, &t->full)) return RC_ERR;
    if (tc->limit > 0) {
        if (rc_dataset_truncate(&t->full, tc->limit)) return RC_ERR;
    }
    if (tc->val > 0) {
        if (tc->val >= t->full.n)
            return rc_fail("train.val = %d leaves no training images (the split has %d)", tc->val, t->full.n);
        if (rc_dataset_split(&t->full, tc->val, tc->seed, &t->train, &t->val)) return RC_ERR;
        rc_dataset_free(&t->full);
    } else {
        t->train = t->full;
        memset(&t->full, 0, sizeof t->full);
    }
    rc_dataset *train = &t->train, *test = &t->test;
    if (rc_dataset_load(tc->data, 0, test)) return RC_ERR;
    if (tc->test_limit > 0 && tc->test_limit < test->n) {
        if (rc_dataset_truncate(test, tc->test_limit)) return RC_ERR;
    }
    if (rc_dataset_copy_stats(test, train)) return RC_ERR;
    t->dense = train->dense;
    if (t->dense != (mc->readout == RC_READOUT_DENSE)) {
        if (t->dense) return rc_fail("dataset %s has a target per position: it needs model.readout = dense", train->spec);
        return rc_fail("model.readout = dense needs a dataset with a target per position (prefix-sums:BITS, "
                       "mazes:SIZE), not %s",
                       train->spec);
    }
    if (t->dense && (tc->crop_pad > 0 || tc->flip))
        return rc_fail("dataset %s has a target per position: augmentation would move the input against it; set "
                       "train.crop_pad = 0 and train.flip = no",
                       train->spec);
    if (t->dense && t->nranks > 1)
        return rc_fail("dataset %s: tasks with a target per position train in one process", train->spec);
    if (mc->loss == RC_LOSS_PROGRESSIVE && t->nranks > 1) return rc_fail("model.loss = progressive trains in one process");
    if (rc_dataset_check_shape(train, mc->in_c, mc->in_h, mc->in_w, -1)) return RC_ERR;
    if (!(t->dense && test->c == mc->in_c && (test->h != mc->in_h || test->w != mc->in_w)) &&
        rc_dataset_check_shape(test, mc->in_c, mc->in_h, mc->in_w, -1))
        return RC_ERR;
    if (train->classes > mc->classes ||
        (strcmp(train->name, "idx") && strcmp(train->name, "npy") && train->classes != mc->classes))
        return rc_fail("dataset %s has %d classes but model.classes = %d", train->spec, train->classes, mc->classes);
    if (t->opts.check_numerics && t->nranks > 1) return rc_fail("--check-numerics runs in a single process only");
    if (mc->loss == RC_LOSS_COARSE_TO_FINE && !train->coarse_of)
        return rc_fail("model.loss = coarse-to-fine needs a class taxonomy, and dataset %s has none "
                       "(Fashion-MNIST and CIFAR-100 have one)",
                       train->spec);
    if (train->n < tc->batch)
        return rc_fail("the training split has %d images, fewer than one batch of %d (lower train.batch or raise "
                       "train.limit)",
                       train->n, tc->batch);
    if (tc->batch % t->nranks != 0)
        return rc_fail("train.batch = %d does not split over %d ranks: the global batch must be a multiple of the "
                       "number of ranks (each rank takes batch / ranks images of every step)",
                       tc->batch, t->nranks);
    t->lb = tc->batch / t->nranks;
    t->has_coarse = test->coarse_of != NULL && test->ncoarse > 0;
    t->aug = (rc_augment){tc->crop_pad, tc->flip};
    return RC_OK;
}

/* The training graph for this rank's batch, and the graphs that share its params: the progressive loss's
 * continuation and, for a fully convolutional dense model, the test split's size. */
static rc_status setup_models(rc_trainer *t) {
    const rc_model_cfg *mc = &t->mc;
    if (rc_model_build(mc, t->lb, 0, &t->m)) return RC_ERR;
    t->model_built = 1;
    t->R = t->m.nreadouts;
    t->prog = mc->loss == RC_LOSS_PROGRESSIVE;
    if (t->prog && t->R > 1) { /* steps n+1..n+k from the detached state h(n), n >= 1: k <= T - 1 */
        if (rc_model_build_ex(mc, t->lb, t->R - 1, RC_BUILD_CONTINUE, &t->mcont)) return RC_ERR;
        t->cont_built = 1;
        if (rc_model_share_params(&t->mcont, &t->m)) return RC_ERR;
    }
    const rc_dataset *test = &t->test;
    if (t->dense && test->c == mc->in_c && (test->h != mc->in_h || test->w != mc->in_w)) {
        rc_model_cfg mct = *mc;
        mct.in_h = test->h;
        mct.in_w = test->w;
        if (rc_model_build(&mct, t->lb, 0, &t->mtest)) return RC_ERR;
        t->test_built = 1;
        if (rc_model_share_params(&t->mtest, &t->m)) return RC_ERR;
    }
    rc_dist_bn_sync(mc->bn_sync);
    return RC_OK;
}

/* Where training starts: the checkpoint's position, params, optimizer state, streams and epoch sums on
 * resume (and train.csv's finished rows), or fresh params and streams from train.seed. */
static rc_status setup_position(rc_trainer *t) {
    const rc_train_cfg *tc = &t->tc;
    rc_ckpt_meta *meta = &t->meta;
    rc_graph *g = &t->m.g;
    memset(meta, 0, sizeof *meta);
    t->spe = t->train.n / tc->batch;
    if (t->opts.resume) {
        if (rc_checkpoint_load(t->ckpt_path, g, meta)) return RC_ERR;
        if (meta->threads != t->threads && t->rank == 0)
            fprintf(stderr,
                    "recur: note: the run was started with %d threads and resumes with %d; results will not be "
                    "bit-identical to an uninterrupted run\n",
                    meta->threads, t->threads);
        t->shuffle_rng = meta->shuffle_rng;
        t->aug_rng = meta->rng;
        t->loss_sum = meta->epoch_loss_sum;
        t->correct_sum = meta->epoch_correct;
        t->seen = meta->epoch_seen;
        csv_reload(&t->csv, t->csv_path, meta->epoch);
        if (meta->epoch >= tc->epochs) {
            if (!t->opts.quiet) fprintf(stderr, "recur: %s: all %d epochs are already done\n", t->opts.run_dir, tc->epochs);
            t->res->finished = 1;
            t->res->epochs_done = meta->epoch;
            t->all_done = 1;
        }
    } else {
        rc_graph_init_params(g, tc->seed);
        rc_rng_seed(&t->shuffle_rng, tc->seed ^ 0x53485546464c45ULL);
        rc_rng_seed(&t->aug_rng, tc->seed ^ 0x4155474d454e54ULL);
        meta->seed = tc->seed;
    }
    meta->threads = t->threads;
    return RC_OK;
}

/* train.csv's header, the batch buffers, the loss log, the clocks and the opening messages. */
static rc_status setup_outputs(rc_trainer *t) {
    const rc_train_cfg *tc = &t->tc;
    const rc_model_cfg *mc = &t->mc;
    const rc_train_opts *o = &t->opts;
    const int R = t->R;
    rc_sb_printf(&t->head, "epoch,global_step,lr,train_loss,train_acc,epoch_seconds,images_per_s");
    for (int r = 1; r <= R; r++) rc_sb_printf(&t->head, ",test_acc_%d", r);
    if (t->has_coarse)
        for (int r = 1; r <= R; r++) rc_sb_printf(&t->head, ",test_coarse_acc_%d", r);
    if (t->val.n > 0) rc_sb_printf(&t->head, ",val_acc_%d", R);
    rc_sb_printf(&t->head, "\n");

    t->perm = rc_xmalloc((size_t)t->train.n * sizeof(int));
    t->labels = rc_xmalloc((size_t)tc->batch * sizeof(int));
    t->my_labels = t->labels + (size_t)t->rank * t->lb;
    t->img_floats = (size_t)mc->in_c * mc->in_h * mc->in_w;
    if (t->nranks > 1) t->xglob = rc_xmalloc((size_t)tc->batch * t->img_floats * sizeof(float));
    if (t->dense) {
        t->tgt = rc_xmalloc((size_t)tc->batch * mc->in_h * mc->in_w);
        t->tmask = rc_xmalloc((size_t)tc->batch * mc->in_h * mc->in_w);
    }
    if (o->loss_log && t->rank == 0 && !(t->losslog = fopen(o->loss_log, "a")))
        return rc_fail("cannot open %s: %s", o->loss_log, strerror(errno));
    t->tty = isatty(2) && !o->quiet;
    t->log_every = (int)(t->spe / 10 > 0 ? t->spe / 10 : 1);
    t->t_start = rc_now();
    t->last_ckpt = rc_now();
    t->nan_step = nan_inject_step(&t->nan_grad);
    rc_numcheck.enabled = o->check_numerics;
    t->res->nreadouts = R;
    t->res->has_coarse = t->has_coarse;

    rc_graph *g = &t->m.g;
    if (!o->quiet && !o->resume)
        fprintf(stderr, "recur: training %s: %zu params, %d readouts, %ld steps/epoch x %d epochs, %d threads%s\n",
                mc->name, rc_graph_trainable_params(g), R, t->spe, tc->epochs, t->threads,
                t->nranks > 1 ? " per rank" : "");
    if (!o->quiet && !o->resume && (long)floor(tc->warmup_epochs * (double)t->spe) > rc_lr_warmup_steps(tc, t->spe))
        fprintf(stderr, "recur: note: warm-up capped at a quarter of the run: %ld of %ld steps (train.warmup_epochs = "
                        "%g asks for %ld)\n",
                rc_lr_warmup_steps(tc, t->spe), t->spe * tc->epochs, tc->warmup_epochs,
                (long)floor(tc->warmup_epochs * (double)t->spe));
    if (!o->quiet && t->nranks > 1)
        fprintf(stderr, "recur: data-parallel over %d ranks, %d images per rank per step, batch norm %s\n", t->nranks,
                t->lb, mc->norm == RC_NORM_NONE ? "none" : mc->bn_sync ? "synchronised (bn_sync)" : "per rank");
    if (!o->quiet && o->resume)
        fprintf(stderr, "recur: resuming %s at epoch %ld step %ld (global step %ld)\n", o->run_dir, t->meta.epoch + 1,
                t->meta.step_in_epoch, t->meta.global_step);
    return RC_OK;
}

rc_status rc_trainer_setup(rc_trainer *t, const char *config_text, const char *display_name, const rc_train_opts *o,
                           rc_train_result *result) {
    memset(t, 0, sizeof *t);
    t->config_text = config_text;
    t->res = result ? result : &t->own_res;
    memset(t->res, 0, sizeof *t->res);
    /* data-parallel (src/dist): rank k of N takes images [k*B/N, (k+1)*B/N) of every global batch of B;
     * rank 0 alone prints and writes files */
    t->opts = *o;
    t->rank = rc_dist_rank();
    t->nranks = rc_dist_size();
    if (t->rank != 0) t->opts.quiet = 1;

    rc_ini *ini = NULL;
    if (rc_ini_parse(config_text, strlen(config_text), display_name, &ini)) return RC_ERR;
    rc_status st = rc_config_read(ini, "model", &t->mc, &t->tc);
    rc_ini_free(ini);
    if (st) return RC_ERR;
    if (t->tc.threads > 0) rc_set_threads(t->tc.threads);
    t->threads = rc_get_threads();
    snprintf(t->ckpt_path, sizeof t->ckpt_path, "%s/model.ckpt", o->run_dir);
    snprintf(t->csv_path, sizeof t->csv_path, "%s/train.csv", o->run_dir);

    if (setup_data(t) || setup_models(t) || setup_position(t)) return RC_ERR;
    if (t->all_done) return RC_OK;
    return setup_outputs(t);
}

void rc_trainer_free(rc_trainer *t) {
    rc_numcheck.enabled = 0;
    rc_dist_bn_sync(0);
    free(t->head.buf);
    free(t->csv.buf);
    if (t->losslog) fclose(t->losslog);
    free(t->xglob);
    if (t->cont_built) rc_model_free(&t->mcont);
    if (t->test_built) rc_model_free(&t->mtest);
    if (t->model_built) rc_model_free(&t->m);
    free(t->tgt);
    free(t->tmask);
    rc_dataset_free(&t->full);
    rc_dataset_free(&t->train);
    rc_dataset_free(&t->val);
    rc_dataset_free(&t->test);
    free(t->perm);
    free(t->labels);
    memset(t, 0, sizeof *t);
}
