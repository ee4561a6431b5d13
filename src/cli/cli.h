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

/* Table-driven option parsing. Each entry names an option and where its value goes:
 *   RC_ARG_FLAG   int *dst set to 1            RC_ARG_INT    long *dst, checked against min..max
 *   RC_ARG_DOUBLE double *dst, min..max        RC_ARG_STR    const char **dst = the next argument
 *   RC_ARG_SET    --set SECTION.KEY=VALUE, appended to the caller's sets array (at most RC_MAX_SETS)
 * The table ends with an entry whose name is NULL. */
typedef enum { RC_ARG_FLAG, RC_ARG_INT, RC_ARG_DOUBLE, RC_ARG_STR, RC_ARG_SET } rc_cli_arg_kind;
typedef struct {
    const char *name;
    rc_cli_arg_kind kind;
    void *dst;
    double min, max;
} rc_cli_opt;

/* Parse argv[1..argc-1] for subcommand cmd: --help/-h prints help; options per the table; the first
 * non-option argument goes to *positional (one is allowed). Returns -1 when the command should go on,
 * otherwise the exit status to return (0 after --help, 1 for a bad value, 2 for a usage error). sets may
 * be NULL when the table has no RC_ARG_SET entry. */
int rc_cli_parse(const char *cmd, const char *help, int argc, char **argv, const rc_cli_opt *opts,
                 const char **positional, const char **sets, int *nsets);

/* Load CONFIG, apply the --set assignments in order, read it (printing applied defaults unless quiet).
 * On success *ini_out owns the parsed config and *text_out the effective canonical text (malloc'd). */
rc_status rc_cli_load_config(const char *path, const char **sets, int nsets, int quiet, rc_ini **ini_out, char **text_out,
                             rc_model_cfg *mc, rc_train_cfg *tc);

/* Resolve RUN_DIR or CKPT to a checkpoint path and read its config (effective text) into the structs. */
rc_status rc_cli_open_run(const char *arg, char *ckpt_path, size_t ckpt_len, char **text_out, rc_model_cfg *mc,
                          rc_train_cfg *tc);

/* Expand "--opt=value" into "--opt" "value" and rename aliases (--batch-size -> --batch) in the arguments
 * after the command name. Returns a new argv (NULL-terminated; *argc updated) that lives until
 * rc_cli_free_args. */
char **rc_cli_normalize_args(int *argc, char **argv);
void rc_cli_free_args(void);

/* Model name from a config path: base name without ".cfg". */
void rc_cli_basename(const char *path, char *out, size_t n);

#endif
