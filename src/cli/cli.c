/* cli.c — helpers shared by the subcommands: errors, numeric options, the option-table parser, config
 * loading with --set, and opening a run directory or checkpoint file. */
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

/* The option of the table named name (aliases resolved), or NULL. */
static const rc_cli_opt *find_opt(const rc_cli_opt *opts, const char *name, size_t len) {
    static const char *const alias[][2] = {{"--batch-size", "--batch"}};
    for (size_t k = 0; k < sizeof alias / sizeof alias[0]; k++)
        if (strlen(alias[k][0]) == len && !strncmp(name, alias[k][0], len)) {
            name = alias[k][1];
            len = strlen(name);
        }
    for (const rc_cli_opt *p = opts; p->name; p++)
        if (strlen(p->name) == len && !strncmp(name, p->name, len)) return p;
    return NULL;
}

int rc_cli_parse(const char *cmd, const char *help, int argc, char **argv, const rc_cli_opt *opts,
                 const char **positional, rc_cli_sets *sets) {
    if (sets) sets->n = sets->nkeys = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(help, stdout);
            return 0;
        }
        /* "--opt=value" or "--opt value" */
        const char *eq = !strncmp(a, "--", 2) ? strchr(a, '=') : NULL;
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)RC_MIN(len, sizeof name - 1), a);
        const rc_cli_opt *o = a[0] == '-' ? find_opt(opts, a, len) : NULL;
        if (!o) {
            if (a[0] == '-') return rc_cli_usage_error(cmd, "unknown option '%s'", name);
            if (!positional || *positional) return rc_cli_usage_error(cmd, "unexpected argument '%s'", a);
            *positional = a;
            continue;
        }
        if (o->kind == RC_ARG_FLAG) {
            if (eq) return rc_cli_usage_error(cmd, "%s takes no value", name);
            *(int *)o->dst = 1;
            continue;
        }
        const char *v = eq ? eq + 1 : i + 1 < argc ? argv[++i] : NULL;
        switch (o->kind) {
        case RC_ARG_FLAG: break;
        case RC_ARG_INT:
            if (rc_cli_int(name, v, (long)o->min, (long)o->max, (long *)o->dst)) return rc_cli_error(rc_error());
            break;
        case RC_ARG_DOUBLE:
            if (rc_cli_double(name, v, o->min, o->max, (double *)o->dst)) return rc_cli_error(rc_error());
            break;
        case RC_ARG_STR:
            if (!v) return rc_cli_usage_error(cmd, "%s needs %s", name, o->value ? o->value : "a value");
            *(const char **)o->dst = v;
            break;
        case RC_ARG_SET:
        case RC_ARG_KEY:
            if (!v) return rc_cli_usage_error(cmd, "%s needs %s", name, o->value ? o->value : "a value");
            RC_ASSERT(sets);
            if (o->kind == RC_ARG_SET) {
                if (sets->n - sets->nkeys >= RC_MAX_SETS) return rc_cli_usage_error(cmd, "too many --set options");
                sets->v[sets->n] = v;
            } else {
                if (sets->nkeys >= RC_CLI_MAX_KEYS) return rc_cli_usage_error(cmd, "too many options");
                if (o->min < o->max && rc_cli_int(name, v, (long)o->min, (long)o->max, (long *)o->dst))
                    return rc_cli_error(rc_error());
                char *t = sets->text[sets->nkeys++];
                snprintf(t, sizeof sets->text[0], "%s=%s", o->key, v);
                sets->v[sets->n] = t;
            }
            sets->from[sets->n++] = o;
            break;
        }
    }
    return -1;
}

/* The next three moved into the library (src/api/run.c, shared with the C API); these names stay for
 * the subcommands. */
void rc_cli_basename(const char *path, char *out, size_t n) { rc_config_name(path, out, n); }

rc_status rc_cli_load_config(const char *path, const char **sets, int nsets, int quiet, rc_ini **ini_out, char **text_out,
                             rc_model_cfg *mc, rc_train_cfg *tc) {
    char *text = NULL;
    rc_status st = rc_config_load(path, sets, nsets, quiet, ini_out, &text, mc, tc);
    if (text_out)
        *text_out = text;
    else
        free(text);
    return st;
}

rc_status rc_cli_open_run(const char *arg, char *ckpt_path, size_t ckpt_len, char **text_out, rc_model_cfg *mc,
                          rc_train_cfg *tc) {
    return rc_run_open(arg, ckpt_path, ckpt_len, text_out, mc, tc);
}

rc_status rc_cli_open_eval(const char *arg, long threads, char *ckpt_path, size_t ckpt_len, rc_model_cfg *mc,
                           rc_train_cfg *tc) {
    char *text = NULL;
    if (rc_run_open(arg, ckpt_path, ckpt_len, &text, mc, tc)) return RC_ERR;
    free(text);
    if (threads > 0)
        rc_set_threads((int)threads);
    else if (tc->threads > 0)
        rc_set_threads(tc->threads);
    return RC_OK;
}
