/* main.c — the `recur` command: dispatches to the subcommands (train, eval, info) and prints help. */
#include <string.h>

#include "cli.h"
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
            "\n"
            "'recur COMMAND --help' describes each command's options.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    int rc;
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    } else if (!strcmp(cmd, "--version")) {
        printf("recur 0.1\n");
        return 0;
    } else if (!strcmp(cmd, "train")) {
        rc = rc_cmd_train(argc - 1, argv + 1);
    } else if (!strcmp(cmd, "eval")) {
        rc = rc_cmd_eval(argc - 1, argv + 1);
    } else if (!strcmp(cmd, "info")) {
        rc = rc_cmd_info(argc - 1, argv + 1);
    } else if (!strcmp(cmd, "bench")) {
        rc = rc_cmd_bench(argc - 1, argv + 1);
    } else {
        fprintf(stderr, "recur: unknown command '%s'\n", cmd);
        usage(stderr);
        return 2;
    }
    rc_conv2d_release();
    return rc;
}
