/* cmd_eval.c — `recur eval RUN_DIR|CKPT`: accuracy (and coarse accuracy where the dataset has a
 * taxonomy) at every iteration on the test split, optionally unrolled for more iterations than in
 * training, and with confidence-based early exit. Text table or one JSON object. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "io/checkpoint.h"
#include "io/dataset.h"
#include "io/npy.h"
#include "train/eval.h"

static const char *help =
    "usage: recur eval RUN_DIR|CKPT [options]\n"
    "\n"
    "Accuracy of every readout (iteration) on the test split, with the batch-norm running statistics.\n"
    "\n"
    "options:\n"
    "  --data SPEC          dataset (default: the one the run was trained on)\n"
    "  --iterations T       unroll tied areas T steps (T > trained T: more depth at test time; steps past\n"
    "                       the trained T reuse the last step's per-iteration params)\n"
    "  --exit-threshold P   early exit: stop at the first readout whose max probability >= P; report\n"
    "                       accuracy and mean iterations used\n"
    "  --halt ponder        learned halting (models trained with model.halting = ponder): each image stops at\n"
    "                       the first iteration whose cumulative halting probability reaches 0.5; report\n"
    "                       accuracy, mean iterations and mean FLOPs per image (--halt none: off);\n"
    "                       --halt sample: halt at iteration n with probability lambda_n (seeded per image)\n"
    "  --limit N            evaluate the first N test images only\n"
    "  --batch N            evaluation batch (default 256)   --threads N\n"
    "  --json               print one JSON object (keys accuracy, coarse_accuracy, loss, ...)\n"
    "  --save-logits FILE   write every image's logits at every readout as a float32 .npy array of shape\n"
    "                       (images, iterations, classes), in test-set order, streamed to disk\n"
    "  --stepwise           run one step at a time (memory of two steps for any T; one tied area, no\n"
    "                       per-iteration params); the default for dense readouts and T > 256\n"
    "  --every N            print every N-th iteration (and the first and last)\n"
    "  --save-predictions FILE  write a CSV row per image: index,label, then per iteration t pred_t (the\n"
    "                       predicted class) and prob_t (its softmax probability); streamed to disk\n"
    "  (both files are written to FILE.tmp and renamed onto FILE only when complete)\n"
    "\n"
    "Dense readouts (tasks with a target per position) report the fraction of test examples solved (every\n"
    "position right) and the position accuracy; the model is built for the test split's size, e.g.\n"
    "--data prefix-sums:32:64 evaluates a model trained on 32 bits on 64-bit strings.\n";

/* --save-logits: each batch's logits, image by image, readout by readout, into the .npy writer. */
typedef struct {
    rc_npy_writer w;
    float *row; /* R x K */
} logits_sink;

static rc_status save_logits(void *ctx, const rc_model *m, long first, int n, const int *labels) {
    (void)first, (void)labels;
    logits_sink *ls = ctx;
    int R = m->nreadouts, K = m->cfg.classes;
    for (int i = 0; i < n; i++) {
        for (int t = 0; t < R; t++)
            memcpy(ls->row + (size_t)t * K, m->g.tensors[m->readout[t]].x + (size_t)i * K, (size_t)K * sizeof(float));
        if (rc_npy_write(&ls->w, ls->row, (size_t)R * K * sizeof(float))) return RC_ERR;
    }
    return RC_OK;
}

/* --save-predictions: one CSV row per image into PATH.tmp, renamed onto PATH when complete. */
typedef struct {
    rc_atomic_file af; /* rows are printed into af.f; rc_atomic_commit checks and renames */
} preds_sink;

static rc_status save_predictions(void *ctx, const rc_model *m, long first, int n, const int *labels) {
    preds_sink *ps = ctx;
    int R = m->nreadouts, K = m->cfg.classes;
    for (int i = 0; i < n; i++) {
        fprintf(ps->af.f, "%ld,%d", first + i, labels[i]);
        for (int t = 0; t < R; t++) {
            const float *lg = m->g.tensors[m->readout[t]].x + (size_t)i * K;
            int best = 0;
            for (int j = 1; j < K; j++)
                if (lg[j] > lg[best]) best = j;
            double z = 0; /* softmax of the best class: 1 / sum_j exp(l_j - l_best) */
            for (int j = 0; j < K; j++) z += exp((double)lg[j] - (double)lg[best]);
            fprintf(ps->af.f, ",%d,%.6f", best, 1.0 / z);
        }
        if (fputc('\n', ps->af.f) == EOF) return rc_fail("cannot write %s: %s", ps->af.path, strerror(errno));
    }
    return RC_OK;
}

static rc_status preds_open(preds_sink *ps, const char *path, int R) {
    if (rc_atomic_open(&ps->af, path)) return RC_ERR;
    fprintf(ps->af.f, "index,label");
    for (int t = 1; t <= R; t++) fprintf(ps->af.f, ",pred_%d,prob_%d", t, t);
    fputc('\n', ps->af.f);
    return RC_OK;
}

static rc_status preds_close(preds_sink *ps) {
    if (ferror(ps->af.f)) {
        rc_status st = rc_fail("cannot write %s: %s", ps->af.path, strerror(errno ? errno : EIO));
        rc_atomic_abort(&ps->af);
        return st;
    }
    return rc_atomic_commit(&ps->af);
}

/* Both sinks after each batch. */
typedef struct {
    logits_sink *ls;
    preds_sink *ps;
} both_sink;

static rc_status save_both(void *ctx, const rc_model *m, long first, int n, const int *labels) {
    both_sink *b = ctx;
    if (b->ls->row && save_logits(b->ls, m, first, n, labels)) return RC_ERR;
    if (b->ps->af.f && save_predictions(b->ps, m, first, n, labels)) return RC_ERR;
    return RC_OK;
}

static void json_array(FILE *f, const double *v, int n) {
    fputc('[', f);
    for (int i = 0; i < n; i++) {
        if (isfinite(v[i]))
            fprintf(f, "%s%.6f", i ? ", " : "", v[i]);
        else
            fprintf(f, "%snull", i ? ", " : ""); /* JSON has no NaN or Infinity */
    }
    fputc(']', f);
}


int rc_cmd_eval(int argc, char **argv) {
    const char *run = NULL, *data = NULL, *logits_path = NULL, *preds_path = NULL, *halt = NULL;
    long iters = 0, limit = 0, batch = 256, threads = 0, every = 1;
    int stepwise = 0;
    double exit_p = 0;
    int json = 0;
    const rc_cli_opt opts[] = {RC_OPT_STR("--data", &data, NULL),
                               RC_OPT_INT("--iterations", &iters, 1, RC_MAX_READOUTS),
                               RC_OPT_DOUBLE("--exit-threshold", &exit_p, 1e-9, 1.0),
                               RC_OPT_STR("--halt", &halt, NULL),
                               RC_OPT_INT("--limit", &limit, 1, 100000000),
                               RC_OPT_INT("--batch", &batch, 1, 65536),
                               RC_OPT_INT("--threads", &threads, 1, 256),
                               RC_OPT_FLAG("--json", &json),
                               RC_OPT_STR("--save-logits", &logits_path, NULL),
                               RC_OPT_FLAG("--stepwise", &stepwise),
                               RC_OPT_INT("--every", &every, 1, 1000000),
                               RC_OPT_STR("--save-predictions", &preds_path, NULL),
                               RC_OPT_END};
    int rc = rc_cli_parse("eval", help, argc, argv, opts, &run, NULL);
    if (rc >= 0) return rc;
    if (!run) return rc_cli_usage_error("eval", "missing RUN_DIR or CKPT");
    int halt_ponder = 0;
    if (halt && strcmp(halt, "ponder") == 0) halt_ponder = 1;
    else if (halt && strcmp(halt, "sample") == 0) halt_ponder = 2;
    else if (halt && strcmp(halt, "none") != 0)
        return rc_cli_usage_error("eval", "--halt: unknown mode (known: ponder, sample, none)");
    char ckpt[4200];
    rc_model_cfg mc;
    rc_train_cfg tc;
    if (rc_cli_open_eval(run, threads, ckpt, sizeof ckpt, &mc, &tc)) return rc_cli_error(rc_error());
    const char *spec = data ? data : tc.data;
    rc_dataset test = {0};
    rc_model m;
    int built = 0, code = 1;
    rc_eval_result r;
    logits_sink ls = {0};
    preds_sink ps = {0};
    both_sink both = {&ls, &ps};
    if (rc_dataset_load_eval(spec, 0, (int)limit, &test)) goto fail;
    if (mc.readout == RC_READOUT_DENSE && test.dense && test.c == mc.in_c) { /* fully convolutional */
        mc.in_h = test.h;
        mc.in_w = test.w;
    }
    if (rc_dataset_check_shape(&test, mc.in_c, mc.in_h, mc.in_w, -1)) goto fail;
    if (test.classes > mc.classes) {
        rc_fail("dataset %s has %d classes, the model was trained for %d", spec, test.classes, mc.classes);
        goto fail;
    }
    if (mc.readout == RC_READOUT_DENSE && (logits_path || preds_path || exit_p > 0)) {
        rc_fail("--save-logits, --save-predictions and --exit-threshold are for pooled readouts (one prediction "
                "per image), not model.readout = dense");
        goto fail;
    }
    int can_step = rc_model_can_continue(&mc) == RC_OK;
    if (stepwise && !can_step) {
        char why[256];
        snprintf(why, sizeof why, "%s", rc_error());
        rc_fail("--stepwise: %s", why);
        goto fail;
    }
    if (halt_ponder && mc.halting != RC_HALT_PONDER) {
        rc_fail("--halt %s: model %s was trained without learned halting (set model.halting = ponder)", halt, mc.name);
        goto fail;
    }
    if (stepwise && (exit_p > 0 || logits_path || halt_ponder)) {
        rc_fail("--stepwise does not combine with --exit-threshold, --halt or --save-logits");
        goto fail;
    }
    if (!stepwise && can_step && exit_p <= 0 && !logits_path &&
        (mc.readout == RC_READOUT_DENSE || iters > RC_MAX_ITERS))
        stepwise = 1;
    if (stepwise) {
        int T = iters > 0 ? (int)iters : mc.areas[0].iterations;
        if (rc_evaluate_stepwise(&mc, ckpt, &test, (int)batch, T, &r)) goto fail;
    } else {
        if (rc_model_build(&mc, (int)batch, (int)iters, &m)) goto fail;
        built = 1;
        if (rc_checkpoint_load(ckpt, &m.g, NULL)) goto fail;
    }
    if (logits_path) {
        int64_t shape[3] = {test.n, m.nreadouts, mc.classes};
        if (rc_npy_open(&ls.w, logits_path, "<f4", 3, shape)) goto fail;
        ls.row = rc_xmalloc((size_t)m.nreadouts * mc.classes * sizeof(float));
    }
    if (preds_path && preds_open(&ps, preds_path, m.nreadouts)) goto fail;
    rc_eval_sink sink = {save_both, &both};
    if (!stepwise &&
        rc_evaluate_halt(&m, &test, 0, test.n, exit_p, halt_ponder, logits_path || preds_path ? &sink : NULL, &r))
        goto fail;
    if (logits_path && rc_npy_close(&ls.w)) goto fail;
    if (preds_path && preds_close(&ps)) goto fail;
    int R = r.nreadouts;
    double acc[RC_MAX_READOUTS], cacc[RC_MAX_READOUTS], pacc[RC_MAX_READOUTS];
    for (int t = 0; t < R; t++) {
        acc[t] = rc_eval_accuracy(&r, t);
        cacc[t] = rc_eval_coarse_accuracy(&r, t);
        pacc[t] = rc_eval_position_accuracy(&r, t);
    }
    int trained_R = mc.areas[mc.nareas - 1].iterations;
    if (json) {
        printf("{\"model\": ");
        rc_json_print(stdout, mc.name);
        printf(", \"checkpoint\": ");
        rc_json_print(stdout, ckpt);
        printf(", \"data\": ");
        rc_json_print(stdout, spec);
        printf(", \"images\": %ld, \"iterations\": %d, \"trained_iterations\": %d, \"accuracy\": ", r.n, R, trained_R);
        json_array(stdout, acc, R);
        printf(", \"coarse_accuracy\": ");
        if (r.has_coarse)
            json_array(stdout, cacc, R);
        else
            printf("null");
        printf(", \"loss\": ");
        json_array(stdout, r.loss, R);
        if (r.dense) {
            printf(", \"solved\": ");
            json_array(stdout, acc, R);
            printf(", \"position_accuracy\": ");
            json_array(stdout, pacc, R);
        }
        if (exit_p > 0)
            printf(", \"exit_threshold\": %.6f, \"exit_accuracy\": %.6f, \"exit_mean_iterations\": %.4f, "
                   "\"exit_mean_flops\": %.0f",
                   exit_p, (double)r.exit_correct / (double)r.n, r.exit_mean_readouts, r.exit_mean_flops);
        if (halt_ponder) {
            double hist[RC_MAX_READOUTS];
            for (int t = 0; t < R; t++) hist[t] = r.n ? (double)r.halt_hist[t] / (double)r.n : 0;
            printf(", \"halt\": \"%s\", \"halt_accuracy\": %.6f, \"halt_mean_iterations\": %.4f, "
                   "\"halt_mean_flops\": %.0f, \"halt_fraction\": ",
                   halt_ponder == 2 ? "sample" : "ponder", (double)r.halt_correct / (double)r.n, r.halt_mean_readouts,
                   r.halt_mean_flops);
            json_array(stdout, hist, R);
        }
        printf("}\n");
    } else {
        printf("%s: model %s, %ld test %s of %s%s\n", ckpt, mc.name, r.n, r.dense ? "examples" : "images", spec,
               stepwise ? " (step by step)" : "");
        if (r.dense) printf("iteration    solved  positions     loss\n");
        else printf("iteration  accuracy%s     loss\n", r.has_coarse ? "  coarse acc" : "");
        for (int t = 0; t < R; t++) {
            if (t > 0 && t < R - 1 && (t + 1) % every != 0) continue;
            if (r.dense) {
                printf("%9d  %7.2f%%   %7.2f%%   %.4f%s\n", t + 1, 100 * acc[t], 100 * pacc[t], r.loss[t],
                       t + 1 > trained_R ? "   (beyond trained depth)" : "");
                continue;
            }
            printf("%9d  %7.2f%%", t + 1, 100 * acc[t]);
            if (r.has_coarse) printf("     %6.2f%%", 100 * cacc[t]);
            printf("   %.4f%s\n", r.loss[t], t + 1 > trained_R ? "   (beyond trained depth)" : "");
        }
        if (exit_p > 0)
            printf("early exit at p >= %.3f: accuracy %.2f%%, mean iterations %.2f of %d, mean %.1f MFLOP/image\n",
                   exit_p, 100.0 * r.exit_correct / r.n, r.exit_mean_readouts, R, r.exit_mean_flops / 1e6);
        if (halt_ponder) {
            printf("ponder halting (%s): accuracy %.2f%%, mean iterations %.2f of %d, mean %.1f "
                   "MFLOP/image\nhalted at iteration:",
                   halt_ponder == 2 ? "sampled" : "cumulative p >= 0.5", 100.0 * r.halt_correct / r.n,
                   r.halt_mean_readouts, R, r.halt_mean_flops / 1e6);
            for (int t = 0; t < R; t++) printf(" %d: %.1f%%", t + 1, 100.0 * r.halt_hist[t] / r.n);
            printf("\n");
        }
    }
    code = 0;
    goto done;
fail:
    rc_cli_error(rc_error());
done:
    rc_npy_abort(&ls.w);
    rc_atomic_abort(&ps.af);
    free(ls.row);
    if (built) rc_model_free(&m);
    rc_dataset_free(&test);
    return code;
}
