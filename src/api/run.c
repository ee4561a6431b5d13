/* run.c — config files with overrides, config text, and run directories / checkpoints opened with their
 * stored config: the steps the CLI's commands and the C API share. */
#define _POSIX_C_SOURCE 200809L
#include "run.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "io/checkpoint.h"

void rc_config_name(const char *path, char *out, size_t n) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    snprintf(out, n, "%s", b);
    char *dot = strrchr(out, '.');
    if (dot && strcmp(dot, ".cfg") == 0) *dot = 0;
    if (!out[0]) snprintf(out, n, "model");
}

/* Read ini into the structs and write its canonical text; frees ini unless ini_out takes it. */
static rc_status finish(rc_ini *ini, const char *name, int quiet, rc_ini **ini_out, char **text_out, rc_model_cfg *mc,
                        rc_train_cfg *tc) {
    size_t len;
    if (rc_config_read(ini, name, mc, tc)) {
        rc_ini_free(ini);
        return RC_ERR;
    }
    if (!quiet) rc_ini_print_defaults(ini, stderr);
    if (rc_ini_to_text(ini, text_out, &len)) {
        rc_ini_free(ini);
        return RC_ERR;
    }
    if (ini_out)
        *ini_out = ini;
    else
        rc_ini_free(ini);
    return RC_OK;
}

rc_status rc_config_load(const char *path, const char *const *sets, int nsets, int quiet, rc_ini **ini_out,
                         char **text_out, rc_model_cfg *mc, rc_train_cfg *tc) {
    rc_ini *ini = NULL;
    if (ini_out) *ini_out = NULL;
    *text_out = NULL;
    if (rc_ini_load(path, &ini)) return RC_ERR;
    for (int i = 0; i < nsets; i++)
        if (rc_ini_set(ini, sets[i])) {
            rc_ini_free(ini);
            return RC_ERR;
        }
    char name[64];
    rc_config_name(path, name, sizeof name);
    return finish(ini, name, quiet, ini_out, text_out, mc, tc);
}

rc_status rc_config_parse_text(const char *text, const char *display_name, const char *default_name, char **text_out,
                               rc_model_cfg *mc, rc_train_cfg *tc) {
    rc_ini *ini = NULL;
    *text_out = NULL;
    if (rc_ini_parse(text, strlen(text), display_name, &ini)) return RC_ERR;
    return finish(ini, default_name, 1, NULL, text_out, mc, tc);
}

rc_status rc_run_open(const char *arg, char *ckpt_path, size_t ckpt_len, char **text_out, rc_model_cfg *mc,
                      rc_train_cfg *tc) {
    struct stat sb;
    *text_out = NULL;
    if (stat(arg, &sb) != 0) return rc_fail("%s: %s", arg, strerror(errno));
    if (S_ISDIR(sb.st_mode))
        snprintf(ckpt_path, ckpt_len, "%s/model.ckpt", arg);
    else
        snprintf(ckpt_path, ckpt_len, "%s", arg);
    if (stat(ckpt_path, &sb) != 0)
        return rc_fail("%s: no checkpoint (%s); has the run finished its first epoch?", ckpt_path, strerror(errno));
    char *text = NULL;
    if (rc_checkpoint_read_config(ckpt_path, &text)) return RC_ERR;
    rc_ini *ini = NULL;
    char disp[4200];
    snprintf(disp, sizeof disp, "%s (stored config)", ckpt_path);
    if (rc_ini_parse(text, strlen(text), disp, &ini) || rc_config_read(ini, "model", mc, tc)) {
        rc_ini_free(ini);
        free(text);
        return RC_ERR;
    }
    rc_ini_free(ini);
    *text_out = text;
    return RC_OK;
}
