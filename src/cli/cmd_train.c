/* cmd_train.c — `recur train CONFIG [options]` and `recur train --resume RUN_DIR`: builds the effective
 * config (file + flags + --set), prepares the run directory, and runs the training loop. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "dist/dist.h"
#include "io/checkpoint.h"
#include "io/files.h"
#include "train/trainer.h"

static const char *help =
    "usage: recur train CONFIG [options]\n"
    "       recur train --resume RUN_DIR [--threads N] [--steps N]\n"
    "\n"
    "Trains the model in CONFIG and writes RUN_DIR/config.cfg (the effective config), model.ckpt\n"
    "(checkpoint, after every epoch and on SIGINT/SIGTERM) and train.csv (per-epoch loss, lr, time and\n"
    "test accuracy at every iteration).\n"
    "\n"
    "options (each is a shorthand for --set train.KEY=VALUE):\n"
    "  --data SPEC       fashion-mnist (default), mnist:DIR, idx:DIR, cifar10:DIR, cifar100:DIR,\n"
    "                    npy:IMAGES.npy,LABELS.npy,TEST_IMAGES.npy,TEST_LABELS.npy (README.md)\n"
    "  --epochs N        --batch N (or --batch-size N)   --lr X   --seed N   --threads N\n"
    "  --limit N         train on the first N training images\n"
    "  --test-limit N    evaluate each epoch on the first N test images (default: all)\n"
    "other options:\n"
    "  --set S.K=V       override any config key (repeatable), e.g. --set model.loss=final\n"
    "  --out RUN_DIR     run directory (default runs/NAME-YYYYmmdd-HHMMSS)\n"
    "  --force           overwrite a run directory that already holds a run\n"
    "  --resume RUN_DIR  continue the run in RUN_DIR with its stored config\n"
    "  --steps N         stop after N steps of this process (with a checkpoint)\n"
    "  --ckpt-every S    also checkpoint every S seconds (default 300; 0 = only at epoch ends)\n"
    "  --quiet           no progress output\n"
    "  --check-numerics  check every op's output and gradients for NaN/Inf and name the first op that\n"
    "                    made one (slower; for debugging a run that stops on a non-finite loss)\n"
    "\n"
    "Data-parallel: 'mpirun -np N recur train ...' splits every global batch over N processes (or hosts);\n"
    "train.batch must be a multiple of N; see [model] bn_sync and docs/PERFORMANCE.md.\n";

int rc_cmd_train(int argc, char **argv) {
    const char *config = NULL, *out = NULL, *resume = NULL, *loss_log = NULL;
    int force = 0, quiet = 0, check_numerics = 0;
    long steps = 0, resume_threads = 0;
    double ckpt_every = 300;
    rc_cli_sets sets;
    const rc_cli_opt opts[] = {RC_OPT_KEY("--data", "train.data"),
                               RC_OPT_KEY("--epochs", "train.epochs"),
                               RC_OPT_KEY("--batch", "train.batch"),
                               RC_OPT_KEY("--lr", "train.lr"),
                               RC_OPT_KEY("--seed", "train.seed"),
                               RC_OPT_KEY("--limit", "train.limit"),
                               RC_OPT_KEY_INT("--threads", "train.threads", &resume_threads, 0, 256),
                               RC_OPT_KEY("--test-limit", "train.test_limit"),
                               RC_OPT_SET,
                               RC_OPT_STR("--out", &out, "a directory"),
                               RC_OPT_STR("--resume", &resume, "a run directory"),
                               RC_OPT_INT("--steps", &steps, 1, 1L << 40),
                               RC_OPT_DOUBLE("--ckpt-every", &ckpt_every, 0, 1e9),
                               /* undocumented, for tests: "global_step loss" per step */
                               RC_OPT_STR("--log-losses", &loss_log, "a file"),
                               RC_OPT_FLAG("--check-numerics", &check_numerics),
                               RC_OPT_FLAG("--force", &force),
                               RC_OPT_FLAG("--quiet", &quiet),
                               RC_OPT_END};
    int rc = rc_cli_parse("train", help, argc, argv, opts, &config, &sets);
    if (rc >= 0) return rc;
    int other_on_resume = 0; /* an assignment other than --threads: the stored config may not change */
    for (int i = 0; i < sets.n; i++) other_on_resume |= strcmp(sets.from[i]->name, "--threads") != 0;
    rc_train_opts o = {0};
    o.max_steps = steps;
    o.ckpt_every_s = ckpt_every;
    o.quiet = quiet;
    o.check_numerics = check_numerics;
    o.loss_log = loss_log;
    rc_train_install_signal_handlers();

    if (resume) {
        if (config) return rc_cli_usage_error("train", "--resume takes no CONFIG (the run's stored config is used)");
        if (other_on_resume || out || force)
            return rc_cli_usage_error("train", "--resume continues the stored config; only --threads, --steps, "
                                               "--ckpt-every, --check-numerics and --quiet may be given");
        char ckpt[4200];
        char *text = NULL;
        rc_model_cfg mc;
        rc_train_cfg tc;
        if (rc_cli_open_run(resume, ckpt, sizeof ckpt, &text, &mc, &tc)) return rc_cli_error(rc_error());
        char cfgpath[4200];
        snprintf(cfgpath, sizeof cfgpath, "%s/config.cfg", resume);
        char *ondisk = rc_read_text_file(cfgpath, (size_t)4 << 20, NULL);
        if (ondisk && strcmp(ondisk, text) != 0) {
            free(ondisk);
            free(text);
            fprintf(stderr,
                    "recur: %s differs from the config stored in %s; resuming with a different config is refused "
                    "(restore config.cfg, or start a new run)\n",
                    cfgpath, ckpt);
            return 1;
        }
        free(ondisk);
        if (resume_threads > 0) rc_set_threads((int)resume_threads);
        o.run_dir = resume;
        o.resume = 1;
        rc_status st = rc_train(text, ckpt, &o, NULL);
        free(text);
        if (st) return rc_cli_error(rc_error());
        return 0;
    }

    if (!config) return rc_cli_usage_error("train", "missing CONFIG");
    char *text = NULL;
    rc_model_cfg mc;
    rc_train_cfg tc;
    if (rc_cli_load_config(config, sets.v, sets.n, quiet || rc_dist_rank() != 0, NULL, &text, &mc, &tc))
        return rc_cli_error(rc_error());
    char outbuf[4096], dist_dir[4096];
    if (rc_dist_rank() != 0) { /* data-parallel: rank 0 prepares the run directory and sends its path */
        rc_status st = rc_dist_bcast(dist_dir, sizeof dist_dir);
        char cfgpath[4200];
        snprintf(cfgpath, sizeof cfgpath, "%s/config.cfg", dist_dir);
        o.run_dir = dist_dir;
        if (st == RC_OK) st = rc_train(text, cfgpath, &o, NULL);
        free(text);
        return st ? rc_cli_error(rc_error()) : 0;
    }
    if (!out) {
        time_t now = time(NULL);
        struct tm tmv;
        localtime_r(&now, &tmv);
        char stamp[32];
        strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tmv);
        snprintf(outbuf, sizeof outbuf, "runs/%s-%s", mc.name, stamp);
        out = outbuf;
    }
    if (rc_mkdirs(out)) {
        free(text);
        return rc_cli_error(rc_error());
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/model.ckpt", out);
    if (access(path, F_OK) == 0) {
        if (!force) {
            free(text);
            fprintf(stderr,
                    "recur: %s already holds a run (model.ckpt); resume it with 'recur train --resume %s', or "
                    "choose another --out, or add --force to overwrite it\n",
                    out, out);
            return 1;
        }
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/train.csv", out);
    unlink(path);
    snprintf(path, sizeof path, "%s/config.cfg", out);
    if (rc_write_file_atomic(path, text, strlen(text))) {
        free(text);
        return rc_cli_error(rc_error());
    }
    if (!quiet) fprintf(stderr, "recur: run directory %s\n", out);
    snprintf(dist_dir, sizeof dist_dir, "%s", out);
    if (rc_dist_bcast(dist_dir, sizeof dist_dir)) {
        free(text);
        return rc_cli_error(rc_error());
    }
    o.run_dir = out;
    rc_status st = rc_train(text, path, &o, NULL);
    free(text);
    if (st) return rc_cli_error(rc_error());
    return 0;
}
