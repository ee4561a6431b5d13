/* cli.c — helpers shared by the subcommands: errors, numeric options, config loading with --set, and
 * opening a run directory or checkpoint file. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>

#include "api/run.h"

int rc_cli_error(const char *msg) {
    fprintf(stderr, "recur: %s\n", msg);
    return 1;
}

int rc_cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "recur %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see 'recur %s --help')\n", cmd);
    va_end(ap);
    return 2;
}

rc_status rc_cli_int(const char *opt, const char *val, long min, long max, long *out) {
    if (!val) return rc_fail("%s needs a value", opt);
    char *end;
    errno = 0;
    long v = strtol(val, &end, 10);
    if (errno || end == val || *end) return rc_fail("%s: '%s' is not an integer", opt, val);
    if (v < min || v > max) return rc_fail("%s: %ld is out of range %ld..%ld", opt, v, min, max);
    *out = v;
    return RC_OK;
}

rc_status rc_cli_double(const char *opt, const char *val, double min, double max, double *out) {
    if (!val) return rc_fail("%s needs a value", opt);
    char *end;
    errno = 0;
    double v = strtod(val, &end);
    if (errno || end == val || *end || v != v) return rc_fail("%s: '%s' is not a number", opt, val);
    if (v < min || v > max) return rc_fail("%s: %g is out of range %g..%g", opt, v, min, max);
    *out = v;
    return RC_OK;
}

int rc_cli_parse(const char *cmd, const char *help, int argc, char **argv, const rc_cli_opt *opts,
                 const char **positional, const char **sets, int *nsets) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(help, stdout);
            return 0;
        }
        const rc_cli_opt *o = NULL;
        for (const rc_cli_opt *p = opts; p->name; p++)
            if (!strcmp(a, p->name)) o = p;
        if (!o) {
            if (a[0] == '-') return rc_cli_usage_error(cmd, "unknown option '%s'", a);
            if (*positional) return rc_cli_usage_error(cmd, "unexpected argument '%s'", a);
            *positional = a;
            continue;
        }
        switch (o->kind) {
        case RC_ARG_FLAG:
            *(int *)o->dst = 1;
            continue;
        case RC_ARG_INT:
            if (rc_cli_int(a, v, (long)o->min, (long)o->max, (long *)o->dst)) return rc_cli_error(rc_error());
            break;
        case RC_ARG_DOUBLE:
            if (rc_cli_double(a, v, o->min, o->max, (double *)o->dst)) return rc_cli_error(rc_error());
            break;
        case RC_ARG_STR:
            if (!v) return rc_cli_usage_error(cmd, "%s needs a value", a);
            *(const char **)o->dst = v;
            break;
        case RC_ARG_SET:
            if (!v) return rc_cli_usage_error(cmd, "--set needs SECTION.KEY=VALUE");
            if (*nsets >= RC_MAX_SETS) return rc_cli_usage_error(cmd, "too many --set options");
            sets[(*nsets)++] = v;
            break;
        }
        i++;
    }
    return -1;
}

static char **norm_argv;   /* what rc_cli_normalize_args allocated, for rc_cli_free_args */
static char **norm_names;
static int norm_nnames;

void rc_cli_free_args(void) {
    for (int i = 0; i < norm_nnames; i++) free(norm_names[i]);
    free(norm_names);
    free(norm_argv);
    norm_argv = norm_names = NULL;
    norm_nnames = 0;
}

char **rc_cli_normalize_args(int *argc, char **argv) {
    int n = *argc, extra = 0;
    for (int i = 2; i < n; i++)
        if (!strncmp(argv[i], "--", 2) && strchr(argv[i], '=')) extra++;
    char **out = rc_xmalloc((size_t)(n + extra + 1) * sizeof(char *));
    norm_argv = out;
    norm_names = rc_xmalloc((size_t)(extra + 1) * sizeof(char *));
    int m = 0;
    for (int i = 0; i < n; i++) {
        char *a = argv[i];
        char *eq = i >= 2 && !strncmp(a, "--", 2) ? strchr(a, '=') : NULL;
        if (eq) {
            size_t len = (size_t)(eq - a);
            char *name = rc_xmalloc(len + 1);
            norm_names[norm_nnames++] = name;
            memcpy(name, a, len);
            name[len] = 0;
            out[m++] = name;
            out[m++] = eq + 1;
        } else {
            out[m++] = a;
        }
    }
    for (int i = 2; i < m; i++)
        if (!strcmp(out[i], "--batch-size")) out[i] = "--batch";
    out[m] = NULL;
    *argc = m;
    return out;
}

/* The next three moved into the library (src/api/run.c, shared with the C API); these names stay for
 * the subcommands. */
void rc_cli_basename(const char *path, char *out, size_t n) { rc_config_name(path, out, n); }

rc_status rc_cli_load_config(const char *path, const char **sets, int nsets, int quiet, rc_ini **ini_out, char **text_out,
                             rc_model_cfg *mc, rc_train_cfg *tc) {
    return rc_config_load(path, sets, nsets, quiet, ini_out, text_out, mc, tc);
}

rc_status rc_cli_open_run(const char *arg, char *ckpt_path, size_t ckpt_len, char **text_out, rc_model_cfg *mc,
                          rc_train_cfg *tc) {
    return rc_run_open(arg, ckpt_path, ckpt_len, text_out, mc, tc);
}
