/* trainer.c — the training loop. One static graph, one batch buffer; per step: assemble an augmented
 * batch, forward, scheduled loss, backward, optimizer. Per epoch: evaluate every readout on the test
 * (and validation) split, append to train.csv, checkpoint atomically. Resume restores params, optimizer
 * state, rng streams and position, so the trajectory is the uninterrupted one. */
#define _POSIX_C_SOURCE 200809L
#include "trainer.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dist/dist.h"
#include "eval.h"
#include "io/checkpoint.h"
#include "io/dataset.h"
#include "io/files.h"
#include "io/ini.h"
#include "models/model.h"
#include "optim.h"

static volatile sig_atomic_t stop_flag = 0;
static void on_signal(int sig) {
    if (stop_flag) { /* a second signal: quit now; the last checkpoint on disk is intact (atomic writes) */
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    stop_flag = 1;
    static const char msg[] = "\nrecur: stopping at the next step boundary with a checkpoint (signal again to quit now)\n";
    ssize_t w = write(2, msg, sizeof msg - 1); /* async-signal-safe */
    (void)w;
}

void rc_train_install_signal_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int rc_train_stop_requested(void) { return stop_flag != 0; }

/* ---- train.csv: kept in memory, rewritten atomically after each epoch ---- */
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

static void fmt_eta(char *out, size_t n, double s) {
    if (s < 0 || !isfinite(s)) s = 0;
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(out, n, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else
        snprintf(out, n, "%ldm%02lds", t / 60, t % 60);
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

#define FAIL_GOTO(...)                                                                                       \
    do {                                                                                                     \
        rc_fail(__VA_ARGS__);                                                                                \
        goto done;                                                                                           \
    } while (0)

/* --check-numerics tripped: name the op, the step and the last good checkpoint. */
#define NUMERICS_FAIL()                                                                                      \
    do {                                                                                                     \
        char what_[256];                                                                                     \
        rc_numerics_describe(g, what_, sizeof what_);                                                        \
        FAIL_GOTO("%s at step %ld (epoch %ld, step %ld of %ld); stopped; the last good checkpoint is %s", what_, \
                  meta.global_step + 1, epoch + 1, s + 1, spe, access(ckpt_path, R_OK) == 0 ? ckpt_path : "(none yet)"); \
    } while (0)

rc_status rc_train(const char *config_text, const char *display_name, const rc_train_opts *o,
                   rc_train_result *result) {
    rc_status st = RC_ERR;
    rc_ini *ini = NULL;
    rc_model_cfg mc;
    rc_train_cfg tc;
    rc_model m, mcont, mtest;
    int model_built = 0, cont_built = 0, test_built = 0;
    uint8_t *tgt = NULL, *tmask = NULL;
    rc_dataset full = {0}, train = {0}, val = {0}, test = {0};
    int *perm = NULL, *labels = NULL;
    float *xglob = NULL; /* data-parallel: the whole global batch, of which this rank takes its slice */
    FILE *losslog = NULL;
    rc_strbuf csv = {0}, head = {0};
    char ckpt_path[4096], csv_path[4096];
    rc_train_result res_local;
    rc_train_result *res = result ? result : &res_local;
    memset(res, 0, sizeof *res);
    memset(&m, 0, sizeof m);

    if (rc_ini_parse(config_text, strlen(config_text), display_name, &ini)) return RC_ERR;
    if (rc_config_read(ini, "model", &mc, &tc)) goto done;
    /* data-parallel (src/dist): rank k of N takes images [k*B/N, (k+1)*B/N) of every global batch of B;
     * rank 0 alone prints and writes files */
    int rank = rc_dist_rank(), nranks = rc_dist_size();
    rc_train_opts o_rank = *o;
    if (rank != 0) o_rank.quiet = 1;
    o = &o_rank;
    if (tc.threads > 0) rc_set_threads(tc.threads);
    int threads = rc_get_threads();
    snprintf(ckpt_path, sizeof ckpt_path, "%s/model.ckpt", o->run_dir);
    snprintf(csv_path, sizeof csv_path, "%s/train.csv", o->run_dir);

    /* data */
    if (rc_dataset_load(tc.data, 1, &full)) goto done;
    if (tc.limit > 0) {
        if (rc_dataset_truncate(&full, tc.limit)) goto done;
    }
    if (tc.val > 0) {
        if (tc.val >= full.n) FAIL_GOTO("train.val = %d leaves no training images (the split has %d)", tc.val, full.n);
        if (rc_dataset_split(&full, tc.val, tc.seed, &train, &val)) goto done;
        rc_dataset_free(&full);
    } else {
        train = full;
        memset(&full, 0, sizeof full);
    }
    if (rc_dataset_load(tc.data, 0, &test)) goto done;
    if (tc.test_limit > 0 && tc.test_limit < test.n) {
        if (rc_dataset_truncate(&test, tc.test_limit)) goto done;
    }
    if (rc_dataset_copy_stats(&test, &train)) goto done;
    const int dense = train.dense;
    if (dense != (mc.readout == RC_READOUT_DENSE)) {
        if (dense)
            FAIL_GOTO("dataset %s has a target per position: it needs model.readout = dense", train.spec);
        FAIL_GOTO("model.readout = dense needs a dataset with a target per position (prefix-sums:BITS, mazes:SIZE), "
                  "not %s", train.spec);
    }
    if (dense && (tc.crop_pad > 0 || tc.flip))
        FAIL_GOTO("dataset %s has a target per position: augmentation would move the input against it; set "
                  "train.crop_pad = 0 and train.flip = no",
                  train.spec);
    if (dense && nranks > 1) FAIL_GOTO("dataset %s: tasks with a target per position train in one process", train.spec);
    if (mc.loss == RC_LOSS_PROGRESSIVE && nranks > 1) FAIL_GOTO("model.loss = progressive trains in one process");
    if (rc_dataset_check_shape(&train, mc.in_c, mc.in_h, mc.in_w, -1)) goto done;
    /* a fully convolutional dense model is evaluated at the test split's own size (a copy of the model
     * built for it, sharing the params) */
    const int test_other_size = dense && test.c == mc.in_c && (test.h != mc.in_h || test.w != mc.in_w);
    if (!test_other_size && rc_dataset_check_shape(&test, mc.in_c, mc.in_h, mc.in_w, -1)) goto done;
    if (train.classes > mc.classes || (strcmp(train.name, "idx") && strcmp(train.name, "npy") && train.classes != mc.classes))
        FAIL_GOTO("dataset %s has %d classes but model.classes = %d", train.spec, train.classes, mc.classes);
    if (o->check_numerics && nranks > 1) FAIL_GOTO("--check-numerics runs in a single process only");
    if (mc.loss == RC_LOSS_COARSE_TO_FINE && !train.coarse_of)
        FAIL_GOTO("model.loss = coarse-to-fine needs a class taxonomy, and dataset %s has none "
                  "(Fashion-MNIST and CIFAR-100 have one)",
                  train.spec);
    if (train.n < tc.batch)
        FAIL_GOTO("the training split has %d images, fewer than one batch of %d (lower train.batch or raise "
                  "train.limit)",
                  train.n, tc.batch);
    if (tc.batch % nranks != 0)
        FAIL_GOTO("train.batch = %d does not split over %d ranks: the global batch must be a multiple of the number "
                  "of ranks (each rank takes batch / ranks images of every step)",
                  tc.batch, nranks);
    int lb = tc.batch / nranks; /* this rank's images per step */

    /* model */
    if (rc_model_build(&mc, lb, 0, &m)) goto done;
    model_built = 1;
    const int prog = mc.loss == RC_LOSS_PROGRESSIVE;
    if (prog && m.nreadouts > 1) { /* steps n+1..n+k from the detached state h(n), n >= 1: k <= T - 1 */
        if (rc_model_build_ex(&mc, lb, m.nreadouts - 1, RC_BUILD_CONTINUE, &mcont)) goto done;
        cont_built = 1;
        if (rc_model_share_params(&mcont, &m)) goto done;
    }
    if (test_other_size) {
        rc_model_cfg mct = mc;
        mct.in_h = test.h;
        mct.in_w = test.w;
        if (rc_model_build(&mct, lb, 0, &mtest)) goto done;
        test_built = 1;
        if (rc_model_share_params(&mtest, &m)) goto done;
    }
    if (dense) {
        tgt = rc_xmalloc((size_t)tc.batch * mc.in_h * mc.in_w);
        tmask = rc_xmalloc((size_t)tc.batch * mc.in_h * mc.in_w);
    }
    rc_dist_bn_sync(mc.bn_sync);
    rc_graph *g = &m.g;
    long spe = train.n / tc.batch;
    rc_ckpt_meta meta;
    memset(&meta, 0, sizeof meta);
    rc_rng shuffle_rng, aug_rng;
    double loss_sum = 0;
    long correct_sum = 0, seen = 0;
    if (o->resume) {
        if (rc_checkpoint_load(ckpt_path, g, &meta)) goto done;
        if (meta.threads != threads && rank == 0)
            fprintf(stderr,
                    "recur: note: the run was started with %d threads and resumes with %d; results will not be "
                    "bit-identical to an uninterrupted run\n",
                    meta.threads, threads);
        shuffle_rng = meta.shuffle_rng;
        aug_rng = meta.rng;
        loss_sum = meta.epoch_loss_sum;
        correct_sum = meta.epoch_correct;
        seen = meta.epoch_seen;
        csv_reload(&csv, csv_path, meta.epoch);
        if (meta.epoch >= tc.epochs) {
            if (!o->quiet) fprintf(stderr, "recur: %s: all %d epochs are already done\n", o->run_dir, tc.epochs);
            res->finished = 1;
            res->epochs_done = meta.epoch;
            st = RC_OK;
            goto done;
        }
    } else {
        rc_graph_init_params(g, tc.seed);
        rc_rng_seed(&shuffle_rng, tc.seed ^ 0x53485546464c45ULL);
        rc_rng_seed(&aug_rng, tc.seed ^ 0x4155474d454e54ULL);
        meta.seed = tc.seed;
        meta.threads = threads;
    }
    meta.threads = threads;
    int R = m.nreadouts;
    int has_coarse = test.coarse_of != NULL && test.ncoarse > 0;
    /* CSV header */
    head.len = 0;
    rc_sb_printf(&head, "epoch,global_step,lr,train_loss,train_acc,epoch_seconds,images_per_s");
    for (int t = 1; t <= R; t++) rc_sb_printf(&head, ",test_acc_%d", t);
    if (has_coarse)
        for (int t = 1; t <= R; t++) rc_sb_printf(&head, ",test_coarse_acc_%d", t);
    if (val.n > 0) rc_sb_printf(&head, ",val_acc_%d", R);
    rc_sb_printf(&head, "\n");

    perm = rc_xmalloc((size_t)train.n * sizeof(int));
    labels = rc_xmalloc((size_t)tc.batch * sizeof(int));
    size_t img_floats = (size_t)mc.in_c * mc.in_h * mc.in_w;
    if (nranks > 1) xglob = rc_xmalloc((size_t)tc.batch * img_floats * sizeof(float));
    const int *my_labels = labels + (size_t)rank * lb;
    if (o->loss_log && rank == 0 && !(losslog = fopen(o->loss_log, "a")))
        FAIL_GOTO("cannot open %s: %s", o->loss_log, strerror(errno));
    double step_seconds = 0;
    rc_augment aug = {tc.crop_pad, tc.flip};
    int tty = isatty(2) && !o->quiet;
    float *x = g->tensors[m.input].x;
    const float *final_logits = g->tensors[m.readout[R - 1]].x;
    double t_start = rc_now(), last_ckpt = rc_now();
    long steps_this_run = 0;
    int stopping = 0;
    int nan_grad = 0;
    long nan_step = nan_inject_step(&nan_grad);
    rc_numcheck.enabled = o->check_numerics;
    res->nreadouts = R;
    res->has_coarse = has_coarse;
    if (!o->quiet && !o->resume)
        fprintf(stderr, "recur: training %s: %zu params, %d readouts, %ld steps/epoch x %d epochs, %d threads%s\n",
                mc.name, rc_graph_trainable_params(g), R, spe, tc.epochs, threads,
                nranks > 1 ? " per rank" : "");
    if (!o->quiet && !o->resume && (long)floor(tc.warmup_epochs * (double)spe) > rc_lr_warmup_steps(&tc, spe))
        fprintf(stderr, "recur: note: warm-up capped at a quarter of the run: %ld of %ld steps (train.warmup_epochs = "
                        "%g asks for %ld)\n",
                rc_lr_warmup_steps(&tc, spe), spe * tc.epochs, tc.warmup_epochs,
                (long)floor(tc.warmup_epochs * (double)spe));
    if (!o->quiet && nranks > 1)
        fprintf(stderr, "recur: data-parallel over %d ranks, %d images per rank per step, batch norm %s\n", nranks, lb,
                mc.norm == RC_NORM_NONE ? "none" : mc.bn_sync ? "synchronised (bn_sync)" : "per rank");
    if (!o->quiet && o->resume)
        fprintf(stderr, "recur: resuming %s at epoch %ld step %ld (global step %ld)\n", o->run_dir, meta.epoch + 1,
                meta.step_in_epoch, meta.global_step);

    for (long epoch = meta.epoch; epoch < tc.epochs && !stopping; epoch++) {
        rc_rng epoch_shuffle_start = shuffle_rng;
        for (int i = 0; i < train.n; i++) perm[i] = i;
        rc_rng_shuffle(&shuffle_rng, perm, train.n);
        long first_step = (epoch == meta.epoch) ? meta.step_in_epoch : 0;
        if (first_step == 0) loss_sum = 0, correct_sum = 0, seen = 0;
        double ep_t0 = rc_now();
        long ep_imgs = 0;
        int log_every = (int)(spe / 10 > 0 ? spe / 10 : 1);
        for (long s = first_step; s < spe; s++) {
            double t_step = rc_now();
            if (nranks == 1) {
                rc_dataset_batch(&train, perm + s * tc.batch, tc.batch, &aug, &aug_rng, x, labels);
            } else { /* the global batch's augmentation, whatever the number of ranks */
                rc_dataset_batch(&train, perm + s * tc.batch, tc.batch, &aug, &aug_rng, xglob, labels);
                memcpy(x, xglob + (size_t)rank * lb * img_floats, (size_t)lb * img_floats * sizeof(float));
            }
            if (dense) rc_dataset_batch_targets(&train, perm + s * tc.batch, tc.batch, tgt, tmask);
            if (nan_step == meta.global_step + 1 && !nan_grad) x[0] = NAN; /* test hook */
            rc_numcheck.tripped = 0;
            rc_graph_forward(g, 1);
            if (rc_numcheck.tripped) NUMERICS_FAIL();
            /* progressive loss (Bansal et al. 2022): n ~ U{0..T-1} steps without gradient, then k ~ U{1..T-n}
             * with it, scored at the last; 1 - alpha on the full unroll's last readout. The k steps run in
             * the continuation graph from a copy of h(n) (no gradient flows into it) with the same params;
             * n = 0 needs no detaching: it is readout k of this graph. */
            int pn = 0, pk = 0;
            if (prog) {
                pn = (int)rc_rng_below(&aug_rng, (uint32_t)R);
                pk = 1 + (int)rc_rng_below(&aug_rng, (uint32_t)(R - pn));
                for (int t = 0; t < R; t++) m.w_fine[t] = 0.0f;
                m.w_fine[R - 1] += 1.0f - mc.alpha;
                if (pn == 0) m.w_fine[pk - 1] += mc.alpha;
            }
            double loss = dense ? rc_model_loss_dense(&m, tgt, tmask, NULL, NULL, 1)
                                : rc_model_loss(&m, my_labels, train.coarse_of, NULL, 1);
            int full_backward = 1, cont_step = prog && pn > 0 && mc.alpha > 0.0f;
            if (cont_step) {
                rc_graph_read(g, m.state[pn], 0, mcont.g.tensors[mcont.state_in].x); /* before backward reuses it */
                full_backward = mc.alpha < 1.0f;
            }
            if (nan_step == meta.global_step + 1 && nan_grad) g->tensors[m.readout[R - 1]].dx[0] = NAN;
            long step_correct = 0;
            if (dense) {
                const rc_tensor *lt = &g->tensors[m.readout[R - 1]];
                long right = 0, kept = 0;
                rc_eval_dense_score(lb, lt->c, lt->h * lt->w, lt->x, tgt, tmask, &step_correct, &right, &kept);
            }
            for (int i = 0; i < lb && !dense; i++) {
                const float *l = final_logits + (size_t)i * mc.classes;
                int arg = 0;
                for (int j = 1; j < mc.classes; j++)
                    if (l[j] > l[arg]) arg = j;
                step_correct += arg == my_labels[i];
            }
            /* ranks agree on the global loss, the accuracy count, a stop request and rank 0's checkpoint clock */
            int stop_agreed = stop_flag != 0;
            int ckpt_due = o->ckpt_every_s > 0 && rc_now() - last_ckpt >= o->ckpt_every_s;
            if (nranks > 1) {
                double red[4] = {loss * lb, (double)step_correct, (double)stop_flag, rank == 0 ? ckpt_due : 0};
                if (rc_dist_sum_f64(red, 4)) goto done;
                loss = red[0] / tc.batch;
                step_correct = (long)red[1];
                stop_agreed = red[2] > 0;
                ckpt_due = red[3] > 0;
            }
            if (!isfinite(loss))
                FAIL_GOTO("loss is %s at step %ld (epoch %ld, step %ld of %ld); stopped; the last good checkpoint "
                          "is %s",
                          isnan(loss) ? "NaN" : "Inf", meta.global_step + 1, epoch + 1, s + 1, spe,
                          access(ckpt_path, R_OK) == 0 ? ckpt_path : "(none yet)");
            rc_graph_zero_grads(g);
            if (full_backward) rc_graph_backward(g);
            if (rc_numcheck.tripped) NUMERICS_FAIL();
            if (cont_step) {
                rc_graph *gc = &mcont.g;
                memcpy(gc->tensors[mcont.input].x, x, (size_t)lb * img_floats * sizeof(float));
                rc_graph_forward(gc, 1);
                for (int t = 0; t < mcont.nreadouts; t++) mcont.w_fine[t] = t == pk - 1 ? mc.alpha : 0.0f;
                double lp = dense ? rc_model_loss_dense(&mcont, tgt, tmask, NULL, NULL, 1)
                                  : rc_model_loss(&mcont, my_labels, NULL, NULL, 1);
                if (!isfinite(lp))
                    FAIL_GOTO("progressive loss is %s at step %ld; stopped; the last good checkpoint is %s",
                              isnan(lp) ? "NaN" : "Inf", meta.global_step + 1,
                              access(ckpt_path, R_OK) == 0 ? ckpt_path : "(none yet)");
                loss += lp;
                rc_graph_backward(gc); /* into the shared params' gradients, after the full unroll's */
            }
            if (rc_dist_allreduce_grads(g)) goto done;
            size_t elem = 0;
            int bad = rc_grads_first_nonfinite(g, &elem);
            if (bad >= 0)
                FAIL_GOTO("gradient of %s is not finite (element %zu) at step %ld (epoch %ld); stopped; the last "
                          "good checkpoint is %s",
                          g->params[bad].name, elem, meta.global_step + 1, epoch + 1,
                          access(ckpt_path, R_OK) == 0 ? ckpt_path : "(none yet)");
            double lr = rc_lr_at(&tc, meta.global_step, spe);
            rc_optim_step(g, &tc, lr, meta.global_step + 1);
            meta.global_step++;
            steps_this_run++;
            step_seconds += rc_now() - t_step;
            if (rc_dist_check_params(g, meta.global_step, mc.bn_sync)) goto done;
            if (losslog) fprintf(losslog, "%ld %.9g\n", meta.global_step, loss), fflush(losslog);
            /* running stats of the epoch */
            loss_sum += loss * tc.batch;
            seen += tc.batch;
            correct_sum += step_correct;
            ep_imgs += tc.batch;
            double el = rc_now() - ep_t0, ips = ep_imgs / (el > 1e-9 ? el : 1e-9);
            if (tty) {
                char eta[32];
                fmt_eta(eta, sizeof eta, (double)(spe - s - 1) * tc.batch / ips);
                int w = 24, fill = (int)((s + 1) * w / spe);
                char bar[32];
                for (int i = 0; i < w; i++) bar[i] = i < fill ? '#' : '.';
                bar[w] = 0;
                fprintf(stderr, "\repoch %ld/%d [%s] %ld/%ld loss %.4f lr %.2e %.0f img/s ETA %s   ", epoch + 1,
                        tc.epochs, bar, s + 1, spe, loss_sum / seen, lr, ips, eta);
            } else if (!o->quiet && ((s + 1) % log_every == 0)) {
                fprintf(stderr, "epoch %ld/%d step %ld/%ld loss %.4f lr %.2e %.0f img/s\n", epoch + 1, tc.epochs,
                        s + 1, spe, loss_sum / seen, lr, ips);
            }
            int want_stop = stop_agreed || (o->max_steps > 0 && steps_this_run >= o->max_steps);
            int periodic = ckpt_due;
            if ((want_stop || periodic) && s + 1 < spe) {
                meta.epoch = epoch;
                meta.step_in_epoch = s + 1;
                meta.rng = aug_rng;
                meta.shuffle_rng = epoch_shuffle_start;
                meta.epoch_loss_sum = loss_sum;
                meta.epoch_correct = correct_sum;
                meta.epoch_seen = seen;
                if (rc_dist_average_buffers(g)) goto done;
                if (rank == 0 && rc_checkpoint_save(ckpt_path, g, config_text, &meta)) goto done;
                last_ckpt = rc_now();
                if (want_stop) {
                    stopping = 2; /* checkpointed mid-epoch */
                    break;
                }
            } else if (want_stop) {
                stopping = 1; /* the epoch ends here: checkpoint after its evaluation */
            }
        }
        if (tty) fprintf(stderr, "\n");
        if (stopping == 2) break;
        /* epoch complete: evaluate every readout, append a CSV row, checkpoint */
        double ep_sec = rc_now() - ep_t0;
        rc_eval_result ev, evv;
        if (rc_dist_average_buffers(g)) goto done;
        if (rc_dist_evaluate(test_built ? &mtest : &m, &test, 0, &ev)) goto done;
        if (val.n > 0 && rc_dist_evaluate(&m, &val, 0, &evv)) goto done;
        double lr_now = rc_lr_at(&tc, meta.global_step > 0 ? meta.global_step - 1 : 0, spe);
        rc_sb_printf(&csv, "%ld,%ld,%.6g,%.6f,%.6f,%.3f,%.1f", epoch + 1, meta.global_step, lr_now,
               seen ? loss_sum / seen : 0.0, seen ? (double)correct_sum / seen : 0.0, ep_sec,
               ep_imgs / (ep_sec > 1e-9 ? ep_sec : 1e-9));
        for (int t = 0; t < R; t++) rc_sb_printf(&csv, ",%.4f", rc_eval_accuracy(&ev, t));
        if (has_coarse)
            for (int t = 0; t < R; t++) rc_sb_printf(&csv, ",%.4f", rc_eval_coarse_accuracy(&ev, t));
        if (val.n > 0) rc_sb_printf(&csv, ",%.4f", rc_eval_accuracy(&evv, R - 1));
        rc_sb_printf(&csv, "\n");
        rc_strbuf all = {0};
        rc_sb_printf(&all, "%s%s", head.buf, csv.buf ? csv.buf : "");
        rc_status wst = rank == 0 ? rc_write_file_atomic(csv_path, all.buf, all.len) : RC_OK;
        free(all.buf);
        if (wst) goto done;
        for (int t = 0; t < R; t++) {
            res->test_acc[t] = rc_eval_accuracy(&ev, t);
            res->test_coarse_acc[t] = rc_eval_coarse_accuracy(&ev, t);
        }
        double final_acc = rc_eval_accuracy(&ev, R - 1);
        if (final_acc > meta.best_acc) meta.best_acc = final_acc;
        if (!o->quiet) {
            fprintf(stderr, "epoch %ld/%d: loss %.4f train %.2f%% test %.2f%% (", epoch + 1, tc.epochs,
                    seen ? loss_sum / seen : 0.0, seen ? 100.0 * correct_sum / seen : 0.0, 100 * final_acc);
            for (int t = 0; t < R; t++) fprintf(stderr, "%s%.1f", t ? " " : "by iteration: ", 100 * rc_eval_accuracy(&ev, t));
            fprintf(stderr, ") %.1fs %.0f img/s\n", ep_sec, ep_imgs / (ep_sec > 1e-9 ? ep_sec : 1e-9));
        }
        meta.epoch = epoch + 1;
        meta.step_in_epoch = 0;
        meta.rng = aug_rng;
        meta.shuffle_rng = shuffle_rng;
        meta.epoch_loss_sum = 0, meta.epoch_correct = 0, meta.epoch_seen = 0;
        memset(meta.reserved, 0, sizeof meta.reserved);
        if (rank == 0 && rc_checkpoint_save(ckpt_path, g, config_text, &meta)) goto done;
        last_ckpt = rc_now();
        res->epochs_done = epoch + 1;
    }
    res->epochs_done = meta.epoch;
    res->finished = meta.epoch >= tc.epochs;
    res->interrupted = !res->finished;
    res->seconds = rc_now() - t_start;
    if (res->interrupted && !o->quiet)
        fprintf(stderr, "recur: stopped at epoch %ld step %ld; checkpoint %s; resume with: recur train --resume %s\n",
                meta.epoch + 1, meta.step_in_epoch, ckpt_path, o->run_dir);
    if (!o->quiet && rc_dist_started() && steps_this_run > 0) {
        double gs, bs;
        long gc, bc;
        rc_dist_comm_stats(&gs, &gc, &bs, &bc);
        fprintf(stderr,
                "recur: %d rank(s): gradient all-reduce of %zu bytes %.3f ms/step, batch-norm sync %.3f ms/step "
                "(%ld reductions), step %.1f ms: communication %.1f%% of step time\n",
                nranks, g->param_floats * sizeof(float), 1e3 * gs / steps_this_run, 1e3 * bs / steps_this_run, bc,
                1e3 * step_seconds / steps_this_run, 100 * (gs + bs) / (step_seconds > 0 ? step_seconds : 1));
    }
    st = RC_OK;
done:
    rc_numcheck.enabled = 0;
    free(head.buf);
    rc_dist_bn_sync(0);
    if (losslog) fclose(losslog);
    free(xglob);
    if (cont_built) rc_model_free(&mcont);
    if (test_built) rc_model_free(&mtest);
    if (model_built) rc_model_free(&m);
    free(tgt);
    free(tmask);
    rc_dataset_free(&full);
    rc_dataset_free(&train);
    rc_dataset_free(&val);
    rc_dataset_free(&test);
    free(perm);
    free(labels);
    free(csv.buf);
    rc_ini_free(ini);
    return st;
}
