/* trainer.c — the training loop, rc_train, in pieces over an rc_trainer (trainer_state.h): setup
 * (trainer_setup.c), then per step: assemble an augmented batch, forward, the loss schedule at this step,
 * backward, optimizer; per epoch end: evaluate every readout on the test (and validation) split, append to
 * train.csv; and save: an atomic checkpoint at an epoch's end or mid-epoch. Resume restores params,
 * optimizer state, rng streams, position and the epoch's sums, so the trajectory is the uninterrupted one. */
#define _POSIX_C_SOURCE 200809L
#include "trainer.h"

#include <math.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "dist/dist.h"
#include "eval.h"
#include "optim.h"
#include "trainer_state.h"

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

static void fmt_eta(char *out, size_t n, double s) {
    if (s < 0 || !isfinite(s)) s = 0;
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(out, n, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else
        snprintf(out, n, "%ldm%02lds", t / 60, t % 60);
}

/* What a failure message names as the last good checkpoint. */
static const char *last_good(const rc_trainer *t) {
    return access(t->ckpt_path, R_OK) == 0 ? t->ckpt_path : "(none yet)";
}

/* --check-numerics tripped during step s of epoch: name the op, the step and the last good checkpoint. */
static rc_status numerics_fail(const rc_trainer *t, long epoch, long s) {
    char what[256];
    rc_numerics_describe(&t->m.g, what, sizeof what);
    return rc_fail("%s at step %ld (epoch %ld, step %ld of %ld); stopped; the last good checkpoint is %s", what,
                   t->meta.global_step + 1, epoch + 1, s + 1, t->spe, last_good(t));
}

/* The progress line (a bar on a terminal, every tenth of an epoch otherwise) after step s. */
static void show_progress(const rc_trainer *t, long epoch, long s, double lr) {
    double el = rc_now() - t->ep_t0, ips = t->ep_imgs / (el > 1e-9 ? el : 1e-9);
    if (t->tty) {
        char eta[32];
        fmt_eta(eta, sizeof eta, (double)(t->spe - s - 1) * t->tc.batch / ips);
        int w = 24, fill = (int)((s + 1) * w / t->spe);
        char bar[32];
        for (int i = 0; i < w; i++) bar[i] = i < fill ? '#' : '.';
        bar[w] = 0;
        fprintf(stderr, "\repoch %ld/%d [%s] %ld/%ld loss %.4f lr %.2e %.0f img/s ETA %s   ", epoch + 1, t->tc.epochs,
                bar, s + 1, t->spe, t->loss_sum / t->seen, lr, ips, eta);
    } else if (!t->opts.quiet && ((s + 1) % t->log_every == 0)) {
        fprintf(stderr, "epoch %ld/%d step %ld/%ld loss %.4f lr %.2e %.0f img/s\n", epoch + 1, t->tc.epochs, s + 1,
                t->spe, t->loss_sum / t->seen, lr, ips);
    }
}

/* Start epoch (0-based): draw its order of the training images; returns the first step to run (past the
 * steps a mid-epoch checkpoint already did; the epoch's sums restart at its step 0). */
static long trainer_begin_epoch(rc_trainer *t, long epoch) {
    t->epoch_shuffle_start = t->shuffle_rng;
    for (int i = 0; i < t->train.n; i++) t->perm[i] = i;
    rc_rng_shuffle(&t->shuffle_rng, t->perm, t->train.n);
    long first_step = epoch == t->meta.epoch ? t->meta.step_in_epoch : 0;
    if (first_step == 0) t->loss_sum = 0, t->correct_sum = 0, t->seen = 0;
    t->ep_t0 = rc_now();
    t->ep_imgs = 0;
    return first_step;
}

/* Classification: this rank's images whose final readout is right. Dense: its examples solved. */
static long step_correct(const rc_trainer *t) {
    const rc_graph *g = &t->m.g;
    const rc_tensor *lt = &g->tensors[t->m.readout[t->R - 1]];
    long right_count = 0;
    if (t->dense) {
        long right = 0, kept = 0;
        rc_eval_dense_score(t->lb, lt->c, lt->h * lt->w, lt->x, t->tgt, t->tmask, &right_count, &right, &kept);
        return right_count;
    }
    const int K = t->mc.classes;
    for (int i = 0; i < t->lb; i++) {
        const float *l = lt->x + (size_t)i * K;
        int arg = 0;
        for (int j = 1; j < K; j++)
            if (l[j] > l[arg]) arg = j;
        right_count += arg == t->my_labels[i];
    }
    return right_count;
}

/* One optimizer step: step s of epoch (0-based). Assemble the augmented batch, forward, the loss schedule's
 * weights at this global step (the progressive loss draws its own), loss and backward (and the progressive
 * continuation's), gradients all-reduced over ranks and checked, the optimizer, the epoch's sums and the
 * progress line. Ranks agree on *stop (a stop was requested) and *ckpt_due (rank 0's checkpoint clock). */
static rc_status trainer_step(rc_trainer *t, long epoch, long s, int *stop, int *ckpt_due) {
    const rc_train_cfg *tc = &t->tc;
    const rc_model_cfg *mc = &t->mc;
    rc_model *m = &t->m;
    rc_graph *g = &m->g;
    const int R = t->R, lb = t->lb;
    const long step = t->meta.global_step; /* steps done before this one */
    double t_step = rc_now();
    float *x = g->tensors[m->input].x;
    const int *idx = t->perm + s * tc->batch;
    if (t->nranks == 1) {
        rc_dataset_batch(&t->train, idx, tc->batch, &t->aug, &t->aug_rng, x, t->labels);
    } else { /* the global batch's augmentation, whatever the number of ranks */
        rc_dataset_batch(&t->train, idx, tc->batch, &t->aug, &t->aug_rng, t->xglob, t->labels);
        memcpy(x, t->xglob + (size_t)t->rank * lb * t->img_floats, (size_t)lb * t->img_floats * sizeof(float));
    }
    if (t->dense) rc_dataset_batch_targets(&t->train, idx, tc->batch, t->tgt, t->tmask);
    if (t->nan_step == step + 1 && !t->nan_grad) x[0] = NAN; /* test hook */
    rc_numcheck.tripped = 0;
    rc_graph_forward(g, 1);
    if (rc_numcheck.tripped) return numerics_fail(t, epoch, s);
    rc_model_set_loss_weights(m, step, t->spe * tc->epochs);
    /* progressive loss (Bansal et al. 2022): n ~ U{0..T-1} steps without gradient, then k ~ U{1..T-n}
     * with it, scored at the last; 1 - alpha on the full unroll's last readout. The k steps run in
     * the continuation graph from a copy of h(n) (no gradient flows into it) with the same params;
     * n = 0 needs no detaching: it is readout k of this graph. */
    int pn = 0, pk = 0;
    if (t->prog) {
        pn = (int)rc_rng_below(&t->aug_rng, (uint32_t)R);
        pk = 1 + (int)rc_rng_below(&t->aug_rng, (uint32_t)(R - pn));
        for (int r = 0; r < R; r++) m->w_fine[r] = 0.0f;
        m->w_fine[R - 1] += 1.0f - mc->alpha;
        if (pn == 0) m->w_fine[pk - 1] += mc->alpha;
    }
    double loss = t->dense ? rc_model_loss_dense(m, t->tgt, t->tmask, NULL, NULL, 1)
                           : rc_model_loss(m, t->my_labels, t->train.coarse_of, NULL, 1);
    int full_backward = 1, cont_step = t->prog && pn > 0 && mc->alpha > 0.0f;
    if (cont_step) {
        rc_graph_read(g, m->state[pn], 0, t->mcont.g.tensors[t->mcont.state_in].x); /* before backward reuses it */
        full_backward = mc->alpha < 1.0f;
    }
    if (t->nan_step == step + 1 && t->nan_grad) g->tensors[m->readout[R - 1]].dx[0] = NAN;
    long right = step_correct(t);
    /* ranks agree on the global loss, the accuracy count, a stop request and rank 0's checkpoint clock */
    *stop = rc_train_stop_requested();
    *ckpt_due = t->opts.ckpt_every_s > 0 && rc_now() - t->last_ckpt >= t->opts.ckpt_every_s;
    if (t->nranks > 1) {
        double red[4] = {loss * lb, (double)right, (double)*stop, t->rank == 0 ? *ckpt_due : 0};
        if (rc_dist_sum_f64(red, 4)) return RC_ERR;
        loss = red[0] / tc->batch;
        right = (long)red[1];
        *stop = red[2] > 0;
        *ckpt_due = red[3] > 0;
    }
    if (!isfinite(loss))
        return rc_fail("loss is %s at step %ld (epoch %ld, step %ld of %ld); stopped; the last good checkpoint is %s",
                       isnan(loss) ? "NaN" : "Inf", step + 1, epoch + 1, s + 1, t->spe, last_good(t));
    rc_graph_zero_grads(g);
    if (full_backward) rc_graph_backward(g);
    if (rc_numcheck.tripped) return numerics_fail(t, epoch, s);
    if (cont_step) {
        rc_model *mc2 = &t->mcont;
        rc_graph *gc = &mc2->g;
        memcpy(gc->tensors[mc2->input].x, x, (size_t)lb * t->img_floats * sizeof(float));
        rc_graph_forward(gc, 1);
        for (int r = 0; r < mc2->nreadouts; r++) mc2->w_fine[r] = r == pk - 1 ? mc->alpha : 0.0f;
        double lp = t->dense ? rc_model_loss_dense(mc2, t->tgt, t->tmask, NULL, NULL, 1)
                             : rc_model_loss(mc2, t->my_labels, NULL, NULL, 1);
        if (!isfinite(lp))
            return rc_fail("progressive loss is %s at step %ld; stopped; the last good checkpoint is %s",
                           isnan(lp) ? "NaN" : "Inf", step + 1, last_good(t));
        loss += lp;
        rc_graph_backward(gc); /* into the shared params' gradients, after the full unroll's */
    }
    if (rc_dist_allreduce_grads(g)) return RC_ERR;
    size_t elem = 0;
    int bad = rc_grads_first_nonfinite(g, &elem);
    if (bad >= 0)
        return rc_fail("gradient of %s is not finite (element %zu) at step %ld (epoch %ld); stopped; the last good "
                       "checkpoint is %s",
                       g->params[bad].name, elem, step + 1, epoch + 1, last_good(t));
    double lr = rc_lr_at(tc, step, t->spe);
    rc_optim_step(g, tc, lr, step + 1);
    t->meta.global_step++;
    t->steps_this_run++;
    t->step_seconds += rc_now() - t_step;
    if (rc_dist_check_params(g, t->meta.global_step, mc->bn_sync)) return RC_ERR;
    if (t->losslog) fprintf(t->losslog, "%ld %.9g\n", t->meta.global_step, loss), fflush(t->losslog);
    t->loss_sum += loss * tc->batch;
    t->seen += tc->batch;
    t->correct_sum += right;
    t->ep_imgs += tc->batch;
    show_progress(t, epoch, s, lr);
    return RC_OK;
}

/* Checkpoint the position after step s of epoch: mid-epoch (s < spe; a resume redraws the epoch's order
 * from the shuffle stream at its start and carries on its sums), or at its end (s = spe, after the
 * evaluation, which averaged the ranks' batch-norm buffers). Rank 0 writes. */
static rc_status trainer_save(rc_trainer *t, long epoch, long s) {
    rc_ckpt_meta *meta = &t->meta;
    const int end = s == t->spe;
    meta->epoch = end ? epoch + 1 : epoch;
    meta->step_in_epoch = end ? 0 : s;
    meta->rng = t->aug_rng;
    meta->shuffle_rng = end ? t->shuffle_rng : t->epoch_shuffle_start;
    meta->epoch_loss_sum = end ? 0.0 : t->loss_sum;
    meta->epoch_correct = end ? 0 : t->correct_sum;
    meta->epoch_seen = end ? 0 : t->seen;
    memset(meta->reserved, 0, sizeof meta->reserved);
    if (!end && rc_dist_average_buffers(&t->m.g)) return RC_ERR;
    if (t->rank == 0 && rc_checkpoint_save(t->ckpt_path, &t->m.g, t->config_text, meta)) return RC_ERR;
    t->last_ckpt = rc_now();
    return RC_OK;
}

/* The end of epoch: evaluate every readout on the test (and validation) split, append a train.csv row and
 * rewrite the file, report, and checkpoint. */
static rc_status trainer_end_epoch(rc_trainer *t, long epoch) {
    const int R = t->R;
    const double ep_sec = rc_now() - t->ep_t0, ips = t->ep_imgs / (ep_sec > 1e-9 ? ep_sec : 1e-9);
    const double train_loss = t->seen ? t->loss_sum / t->seen : 0.0;
    const double train_acc = t->seen ? (double)t->correct_sum / t->seen : 0.0;
    rc_eval_result ev, evv;
    if (rc_dist_average_buffers(&t->m.g)) return RC_ERR;
    if (rc_dist_evaluate(t->test_built ? &t->mtest : &t->m, &t->test, 0, &ev)) return RC_ERR;
    if (t->val.n > 0 && rc_dist_evaluate(&t->m, &t->val, 0, &evv)) return RC_ERR;
    const long gs = t->meta.global_step;
    double lr_now = rc_lr_at(&t->tc, gs > 0 ? gs - 1 : 0, t->spe);
    rc_strbuf *csv = &t->csv;
    rc_sb_printf(csv, "%ld,%ld,%.6g,%.6f,%.6f,%.3f,%.1f", epoch + 1, gs, lr_now, train_loss, train_acc, ep_sec, ips);
    for (int r = 0; r < R; r++) rc_sb_printf(csv, ",%.4f", rc_eval_accuracy(&ev, r));
    if (t->has_coarse)
        for (int r = 0; r < R; r++) rc_sb_printf(csv, ",%.4f", rc_eval_coarse_accuracy(&ev, r));
    if (t->val.n > 0) rc_sb_printf(csv, ",%.4f", rc_eval_accuracy(&evv, R - 1));
    rc_sb_printf(csv, "\n");
    rc_strbuf all = {0};
    rc_sb_printf(&all, "%s%s", t->head.buf, csv->buf ? csv->buf : "");
    rc_status wst = t->rank == 0 ? rc_write_file_atomic(t->csv_path, all.buf, all.len) : RC_OK;
    free(all.buf);
    if (wst) return RC_ERR;
    for (int r = 0; r < R; r++) {
        t->res->test_acc[r] = rc_eval_accuracy(&ev, r);
        t->res->test_coarse_acc[r] = rc_eval_coarse_accuracy(&ev, r);
    }
    double final_acc = rc_eval_accuracy(&ev, R - 1);
    if (final_acc > t->meta.best_acc) t->meta.best_acc = final_acc;
    if (!t->opts.quiet) {
        fprintf(stderr, "epoch %ld/%d: loss %.4f train %.2f%% test %.2f%% (", epoch + 1, t->tc.epochs, train_loss,
                100 * train_acc, 100 * final_acc);
        for (int r = 0; r < R; r++) fprintf(stderr, "%s%.1f", r ? " " : "by iteration: ", 100 * rc_eval_accuracy(&ev, r));
        fprintf(stderr, ") %.1fs %.0f img/s\n", ep_sec, ips);
    }
    if (trainer_save(t, epoch, t->spe)) return RC_ERR;
    t->res->epochs_done = epoch + 1;
    return RC_OK;
}

/* After the last epoch or a stop: the outcome, how to resume, and the ranks' communication share. */
static void trainer_finish(rc_trainer *t) {
    const rc_train_opts *o = &t->opts;
    rc_train_result *res = t->res;
    res->epochs_done = t->meta.epoch;
    res->finished = t->meta.epoch >= t->tc.epochs;
    res->interrupted = !res->finished;
    res->seconds = rc_now() - t->t_start;
    if (res->interrupted && !o->quiet)
        fprintf(stderr, "recur: stopped at epoch %ld step %ld; checkpoint %s; resume with: recur train --resume %s\n",
                t->meta.epoch + 1, t->meta.step_in_epoch, t->ckpt_path, o->run_dir);
    if (!o->quiet && rc_dist_started() && t->steps_this_run > 0) {
        double gs, bs;
        long gc, bc;
        rc_dist_comm_stats(&gs, &gc, &bs, &bc);
        const double n = (double)t->steps_this_run, step_s = t->step_seconds;
        fprintf(stderr,
                "recur: %d rank(s): gradient all-reduce of %zu bytes %.3f ms/step, batch-norm sync %.3f ms/step "
                "(%ld reductions), step %.1f ms: communication %.1f%% of step time\n",
                t->nranks, t->m.g.param_floats * sizeof(float), 1e3 * gs / n, 1e3 * bs / n, bc, 1e3 * step_s / n,
                100 * (gs + bs) / (step_s > 0 ? step_s : 1));
    }
}

/* The pieces in order: setup; per epoch its order, its steps (a mid-epoch checkpoint when a stop is asked
 * for or the periodic one is due) and its end (evaluation, train.csv, checkpoint); the outcome. */
rc_status rc_train(const char *config_text, const char *display_name, const rc_train_opts *o,
                   rc_train_result *result) {
    rc_trainer *t = rc_xcalloc(1, sizeof *t);
    rc_status st = rc_trainer_setup(t, config_text, display_name, o, result);
    for (long epoch = t->meta.epoch; st == RC_OK && !t->all_done && epoch < t->tc.epochs && !t->stopping; epoch++) {
        long s = trainer_begin_epoch(t, epoch);
        for (; s < t->spe; s++) {
            int stop = 0, ckpt_due = 0;
            if ((st = trainer_step(t, epoch, s, &stop, &ckpt_due))) break;
            int want_stop = stop || (t->opts.max_steps > 0 && t->steps_this_run >= t->opts.max_steps);
            if ((want_stop || ckpt_due) && s + 1 < t->spe) {
                if ((st = trainer_save(t, epoch, s + 1))) break;
                if (want_stop) {
                    t->stopping = 2; /* checkpointed mid-epoch */
                    break;
                }
            } else if (want_stop) {
                t->stopping = 1; /* the epoch ends here: checkpoint after its evaluation */
            }
        }
        if (st) break;
        if (t->tty) fprintf(stderr, "\n");
        if (t->stopping != 2) st = trainer_end_epoch(t, epoch);
    }
    if (st == RC_OK && !t->all_done) trainer_finish(t);
    rc_trainer_free(t);
    free(t);
    return st;
}
