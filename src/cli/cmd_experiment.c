/* cmd_experiment.c — `recur experiment NAME [options]`: runs one of the experiments of docs/RESULTS.md
 * (src/train/experiment.h): trains its sub-runs (resumable) and writes CSV, Markdown and plots. */
#include <string.h>

#include "cli.h"
#include "train/experiment.h"
#include "train/trainer.h"

static const char *help =
    "usage: recur experiment NAME [options]\n"
    "\n"
    "Trains the sub-runs an experiment needs under OUT/runs/ (each a normal run directory with its\n"
    "config.cfg: resumable, `recur eval`-able; finished ones are reused, so an interrupted experiment\n"
    "continues when the same command is run again) and writes NAME.csv, NAME.md and plots (PNG and SVG,\n"
    "drawn by gnuplot) into OUT.\n"
    "\n"
    "experiments:\n"
    "  table4            {tied, untied} x {loss final, loss every} at the same effective depth; accuracy\n"
    "                    at every iteration for all four\n"
    "  tradeoff --depth D  effective depth D split into K areas x T = D/K tied iterations for every\n"
    "                    divisor K, plus twins widened to the fully feedforward split's params; accuracy\n"
    "                    against params, units and FLOPs\n"
    "  coarse-fine       coarse and fine accuracy at every iteration, loss every vs coarse-to-fine\n"
    "  early-exit        confidence threshold swept over a trained run: accuracy vs mean FLOPs per image\n"
    "  more-iterations   a tied run unrolled T' = 1 .. 3T iterations at test time: accuracy vs T'\n"
    "  extrapolate --task prefix-sums|mazes  thinking longer: recall + progressive loss vs without each vs\n"
    "                    a feedforward twin, trained on one size, solved vs test-time iterations on larger\n"
    "                    ones (configs/experiments/extrapolate_TASK.cfg)\n"
    "\n"
    "options:\n"
    "  --out DIR         output directory (default runs/experiments/NAME)\n"
    "  --config FILE     base config (default configs/experiments/table4.cfg; tradeoff:\n"
    "                    configs/experiments/tradeoff.cfg)\n"
    "  --data SPEC       dataset of every sub-run and evaluation (cifar10:DIR and cifar100:DIR also set\n"
    "                    model.input = 3x32x32 and model.classes)\n"
    "  --epochs N        epochs of every sub-run      --threads N\n"
    "  --set S.K=V       override a key of the base config (repeatable; for tradeoff the [area]\n"
    "                    template's, e.g. --set area.A.channels=32)\n"
    "  --depth D         tradeoff: the effective depth (1..16)\n"
    "  --run RUN_DIR     early-exit, more-iterations: the trained run to study (default: train the base\n"
    "                    config, tied, loss every, as OUT/runs/tied-every)\n"
    "  --iterations T    early-exit: unroll the tied areas T steps; more-iterations: the largest T';\n"
    "                    extrapolate: the most test-time iterations (default 4T)\n"
    "  --task NAME       extrapolate: prefix-sums or mazes\n"
    "  --limit N         early-exit, more-iterations: evaluate the first N test images\n"
    "  --seeds N         train every cell N times with train.seed = 1..N (seed 1 in runs/NAME, the run\n"
    "                    one seed makes; seed k in runs/NAME-seedK); tables give mean +- sample std\n"
    "                    (n - 1), the CSV every seed's value, plots error bars (default 1: one run)\n"
    "  --quick           a smoke test of under a minute: 4096 training images, 1 epoch, 1000 test images\n"
    "  --quiet           no training progress\n";

int rc_cmd_experiment(int argc, char **argv) {
    const char *name = NULL, *out = NULL, *config = NULL, *run = NULL, *task = NULL;
    long depth = 0, iters = 0, limit = 0, epochs = 0, threads = 0, seeds = 1;
    rc_exp_opts o;
    memset(&o, 0, sizeof o);
    rc_cli_sets sets;
    const rc_cli_opt opts[] = {RC_OPT_STR("--out", &out, NULL),
                               RC_OPT_STR("--config", &config, NULL),
                               RC_OPT_STR("--data", &o.data, NULL),
                               RC_OPT_STR("--run", &run, NULL),
                               RC_OPT_SET,
                               RC_OPT_INT("--depth", &depth, 1, 16),
                               RC_OPT_INT("--iterations", &iters, 1, 1024),
                               RC_OPT_STR("--task", &task, NULL),
                               RC_OPT_INT("--limit", &limit, 1, 100000000),
                               RC_OPT_INT("--epochs", &epochs, 1, 10000),
                               RC_OPT_INT("--threads", &threads, 1, 256),
                               RC_OPT_INT("--seeds", &seeds, 1, 100),
                               RC_OPT_FLAG("--quick", &o.quick),
                               RC_OPT_FLAG("--quiet", &o.quiet),
                               RC_OPT_END};
    int rc = rc_cli_parse("experiment", help, argc, argv, opts, &name, &sets);
    if (rc >= 0) return rc;
    if (!name) return rc_cli_usage_error("experiment", "missing the experiment's NAME");
    static const char *known[] = {"table4",          "tradeoff",    "coarse-fine", "early-exit",
                                  "more-iterations", "extrapolate", NULL};
    int which = -1;
    for (int k = 0; known[k]; k++)
        if (!strcmp(name, known[k])) which = k;
    if (which < 0) return rc_cli_usage_error("experiment", "unknown experiment '%s'", name);
    if (which == 1 && depth == 0) return rc_cli_usage_error("experiment", "tradeoff needs --depth D");
    if (which != 1 && depth) return rc_cli_usage_error("experiment", "--depth is for tradeoff only");
    if (run && (which < 3 || which == 5))
        return rc_cli_usage_error("experiment", "--run is for early-exit and more-iterations");
    if (which == 5 && (!task || (strcmp(task, "prefix-sums") && strcmp(task, "mazes"))))
        return rc_cli_usage_error("experiment", "extrapolate needs --task prefix-sums or --task mazes");
    if (which != 5 && task) return rc_cli_usage_error("experiment", "--task is for extrapolate only");
    if (which == 4 && iters > 256) return rc_cli_usage_error("experiment", "more-iterations: --iterations 1..256");
    if ((iters || limit) && which < 3)
        return rc_cli_usage_error("experiment", "--iterations and --limit are for early-exit and more-iterations");
    if (run && seeds > 1)
        return rc_cli_usage_error("experiment", "--seeds trains runs; with --run there is one run to study");
    if (run && (config || epochs || sets.n))
        return rc_cli_usage_error("experiment", "--run studies a trained run: --config, --epochs and --set do not apply");
    char outbuf[4096];
    if (!out) {
        snprintf(outbuf, sizeof outbuf, "runs/experiments/%s", name);
        out = outbuf;
    }
    char cfgbuf[256];
    if (!config && which == 5) {
        snprintf(cfgbuf, sizeof cfgbuf, "configs/experiments/extrapolate_%s.cfg",
                 !strcmp(task, "mazes") ? "mazes" : "prefix_sums");
        config = cfgbuf;
    }
    if (!config) config = which == 1 ? "configs/experiments/tradeoff.cfg" : "configs/experiments/table4.cfg";
    o.out_dir = out;
    o.epochs = (int)epochs;
    o.threads = (int)threads;
    o.eval_limit = (int)limit;
    o.seeds = (int)seeds;
    o.sets = sets.v;
    o.nsets = sets.n;
    rc_train_install_signal_handlers();
    double t0 = rc_now();
    rc_status st = RC_OK;
    switch (which) {
    case 0: st = rc_exp_table4(config, &o); break;
    case 1: st = rc_exp_tradeoff(config, (int)depth, &o); break;
    case 2: st = rc_exp_coarse_fine(config, &o); break;
    case 3: st = rc_exp_early_exit(run, config, (int)iters, &o); break;
    case 4: st = rc_exp_more_iterations(run, config, (int)iters, &o); break;
    default: st = rc_exp_extrapolate(config, task, (int)iters, &o); break;
    }
    if (st) return rc_cli_error(rc_error());
    fprintf(stderr, "experiment %s: done in %.1f s; results in %s\n", name, rc_now() - t0, out);
    return 0;
}
