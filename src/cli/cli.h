/* cli.h — shared pieces of the `recur` subcommands: option matching, loading a config with overrides,
 * opening a run directory or checkpoint, and the subcommand entry points. */
#ifndef RC_CLI_H
#define RC_CLI_H

#include "io/ini.h"
#include "io/json.h"
#include "models/model.h"

#define RC_MAX_SETS 64

/* Entry points; each returns the process exit status. */
int rc_cmd_train(int argc, char **argv);
int rc_cmd_eval(int argc, char **argv);
int rc_cmd_info(int argc, char **argv);
int rc_cmd_bench(int argc, char **argv);
int rc_cmd_experiment(int argc, char **argv);
int rc_cmd_export(int argc, char **argv);
int rc_cmd_features(int argc, char **argv);

/* Print "recur: MESSAGE" on stderr and return 1 (or 2 for usage errors). */
int rc_cli_error(const char *msg);
int rc_cli_usage_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Parse an integer / double option value or fail with a message naming the option. */
rc_status rc_cli_int(const char *opt, const char *val, long min, long max, long *out);
rc_status rc_cli_double(const char *opt, const char *val, double min, double max, double *out);

/* Table-driven option parsing: every subcommand declares its options in a table ended by RC_OPT_END and
 * parses its arguments with rc_cli_parse. Kinds (the RC_OPT_ macros below check dst's type):
 *   RC_ARG_FLAG    int *dst set to 1                  RC_ARG_INT     long *dst, checked against min..max
 *   RC_ARG_DOUBLE  double *dst, min..max              RC_ARG_STR     const char **dst = the value
 *   RC_ARG_SET     --set SECTION.KEY=VALUE, appended to the command's rc_cli_sets
 *   RC_ARG_KEY     a shorthand for --set KEY=VALUE (--epochs N is train.epochs=N), appended in order with the
 *                  --set options; with min < max the value must also be an integer in range, stored in *dst */
typedef enum { RC_ARG_FLAG, RC_ARG_INT, RC_ARG_DOUBLE, RC_ARG_STR, RC_ARG_SET, RC_ARG_KEY } rc_cli_arg_kind;
typedef struct {
    const char *name; /* "--epochs" */
    rc_cli_arg_kind kind;
    void *dst;
    double min, max;
    const char *key;   /* RC_ARG_KEY: the config key, "train.epochs" */
    const char *value; /* what the value is, for "OPT needs VALUE" ("a directory"); NULL: "a value" */
} rc_cli_opt;

#define RC_OPT_FLAG(n, p) {.name = (n), .kind = RC_ARG_FLAG, .dst = _Generic((p), int *: (p))}
#define RC_OPT_INT(n, p, lo, hi) {.name = (n), .kind = RC_ARG_INT, .dst = _Generic((p), long *: (p)), .min = (lo), .max = (hi)}
#define RC_OPT_DOUBLE(n, p, lo, hi) \
    {.name = (n), .kind = RC_ARG_DOUBLE, .dst = _Generic((p), double *: (p)), .min = (lo), .max = (hi)}
#define RC_OPT_STR(n, p, what) {.name = (n), .kind = RC_ARG_STR, .dst = _Generic((p), const char **: (p)), .value = (what)}
#define RC_OPT_SET {.name = "--set", .kind = RC_ARG_SET, .value = "SECTION.KEY=VALUE"}
#define RC_OPT_KEY(n, k) {.name = (n), .kind = RC_ARG_KEY, .key = (k)}
#define RC_OPT_KEY_INT(n, k, p, lo, hi) \
    {.name = (n), .kind = RC_ARG_KEY, .key = (k), .dst = _Generic((p), long *: (p)), .min = (lo), .max = (hi)}
#define RC_OPT_END {.name = NULL}

/* The --set assignments and shorthands of one command line, in order ("SECTION.KEY=VALUE"), each with the
 * option that gave it. */
#define RC_CLI_MAX_KEYS 16
typedef struct {
    const char *v[RC_MAX_SETS + RC_CLI_MAX_KEYS];
    const rc_cli_opt *from[RC_MAX_SETS + RC_CLI_MAX_KEYS];
    int n, nkeys;
    char text[RC_CLI_MAX_KEYS][600]; /* the shorthands' assignments */
} rc_cli_sets;

/* Parse argv[1..argc-1] for subcommand cmd: --help/-h prints help; "--opt=value" is "--opt value"; the
 * alias --batch-size is --batch; options per the table; the first non-option argument goes to *positional
 * (one is allowed; positional may be NULL when none is). Errors name the option. Returns -1 when the
 * command should go on, otherwise the exit status to return (0 after --help, 1 for a bad value, 2 for a
 * usage error). sets (emptied first) may be NULL when the table has no RC_ARG_SET or RC_ARG_KEY entry. */
int rc_cli_parse(const char *cmd, const char *help, int argc, char **argv, const rc_cli_opt *opts,
                 const char **positional, rc_cli_sets *sets);

/* Load CONFIG, apply the --set assignments in order, read it (printing applied defaults unless quiet).
 * On success *ini_out owns the parsed config and *text_out the effective canonical text (malloc'd); either
 * may be NULL when not wanted. */
rc_status rc_cli_load_config(const char *path, const char **sets, int nsets, int quiet, rc_ini **ini_out, char **text_out,
                             rc_model_cfg *mc, rc_train_cfg *tc);

/* Resolve RUN_DIR or CKPT to a checkpoint path and read its config (effective text) into the structs. */
rc_status rc_cli_open_run(const char *arg, char *ckpt_path, size_t ckpt_len, char **text_out, rc_model_cfg *mc,
                          rc_train_cfg *tc);

/* rc_cli_open_run for the commands that evaluate a trained run (eval, features), without the config text;
 * then the threads: threads > 0 (--threads), else the run's train.threads when set. */
rc_status rc_cli_open_eval(const char *arg, long threads, char *ckpt_path, size_t ckpt_len, rc_model_cfg *mc,
                           rc_train_cfg *tc);

/* Model name from a config path: base name without ".cfg". */
void rc_cli_basename(const char *path, char *out, size_t n);

#endif
