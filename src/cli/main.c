/* main.c — the `recur` command: starts MPI when launched by mpirun (src/dist), dispatches to the
 * subcommands (train, eval, info, bench) and prints help. A failing rank of a multi-rank job ends the job. */
#include <string.h>

#include "cli.h"
#include "dist/dist.h"
#include "ops/ops.h"

static void usage(FILE *f) {
    fprintf(f,
            "recur — train and study deep conv nets whose depth comes from recurrence\n"
            "\n"
            "usage: recur COMMAND [options]\n"
            "\n"
            "commands:\n"
            "  train CONFIG [options]     train a model described by a config file (docs/CONFIG.md)\n"
            "  train --resume RUN_DIR     continue an interrupted run exactly where it stopped\n"
            "  eval RUN_DIR|CKPT          accuracy at every iteration on the test set\n"
            "  info CONFIG                params, units, FLOPs and effective depth, per area and in total\n"
            "  bench CONFIG               training and inference speed, GFLOP/s, peak memory, per-op profile\n"
            "  export RUN_DIR|CKPT        the trained model as safetensors, npz or ONNX (docs/EXPORT.md)\n"
            "  features RUN_DIR|CKPT      an area's state at every iteration for every image, as .npy arrays\n"
            "  experiment NAME [options]  table4, tradeoff, coarse-fine, early-exit, more-iterations (docs/RESULTS.md)\n"
            "\n"
            "data-parallel training over N processes or hosts (MPI builds; see docs/PERFORMANCE.md):\n"
            "  mpirun -np N recur train CONFIG [options]\n"
            "\n"
            "'recur COMMAND --help' describes each command's options; '--opt=value' and '--opt value' are the\n"
            "same; --batch-size is --batch.\n"
            "  recur --version            print recur's version\n");
}

static int run(int argc, char **argv);

int main(int argc, char **argv) {
    if (rc_dist_init(&argc, &argv)) {
        fprintf(stderr, "recur: %s\n", rc_error());
        return 1;
    }
    int rc = run(argc, argv);
    /* other ranks may be waiting for this one in a collective: a failure ends the whole job */
    if (rc != 0 && rc_dist_size() > 1) {
        fflush(stderr);
        rc_dist_abort(rc);
    }
    rc_dist_finalize();
    return rc;
}

static int run(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    static const struct {
        const char *name;
        int (*run)(int argc, char **argv);
    } cmds[] = {{"train", rc_cmd_train},     {"eval", rc_cmd_eval},       {"info", rc_cmd_info},
                {"bench", rc_cmd_bench},     {"export", rc_cmd_export},   {"features", rc_cmd_features},
                {"experiment", rc_cmd_experiment}};
    const char *cmd = argv[1];
    /* RECUR_REFERENCE=1: plain-C reference ops only, no oneDNN JIT (valgrind runs, docs/RELIABILITY.md) */
    const char *ref = getenv("RECUR_REFERENCE");
    if (ref && !strcmp(ref, "1")) rc_ops_fast = 0;
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("recur %s%s\n", RC_VERSION, rc_dist_compiled() ? " (MPI)" : "");
        return 0;
    }
    int k = 0, n = (int)(sizeof cmds / sizeof cmds[0]);
    while (k < n && strcmp(cmd, cmds[k].name)) k++;
    if (k == n) {
        fprintf(stderr, "recur: unknown command '%s'\n", cmd);
        usage(stderr);
        return 2;
    }
    /* each command parses its own options (rc_cli_parse: --opt=value, --opt value, --batch-size) */
    int rc = cmds[k].run(argc - 1, argv + 1);
    rc_conv2d_release();
    return rc;
}
