/* run.h — opening what recur's users hand it: a config file with "section.key=value" overrides, config
 * text, and a run directory or checkpoint with the config stored in it. Shared by the CLI (src/cli) and
 * the public C API (recur_api.c, include/recur.h). */
#ifndef RC_RUN_H
#define RC_RUN_H

#include "io/ini.h"
#include "models/model.h"

/* Model name from a config path: base name without ".cfg" ("model" if that leaves nothing). */
void rc_config_name(const char *path, char *out, size_t n);

/* Load the config file at path, apply sets[0..nsets) in order, read it into the structs (printing the
 * defaults it applied on stderr unless quiet). On success *ini_out owns the parsed config (may be NULL
 * when the caller does not want it) and *text_out the effective canonical text (malloc'd). */
rc_status rc_config_load(const char *path, const char *const *sets, int nsets, int quiet, rc_ini **ini_out,
                         char **text_out, rc_model_cfg *mc, rc_train_cfg *tc);

/* The same for config text (display_name in messages; default_name names a model without [model] name). */
rc_status rc_config_parse_text(const char *text, const char *display_name, const char *default_name, char **text_out,
                               rc_model_cfg *mc, rc_train_cfg *tc);

/* Resolve RUN_DIR (its model.ckpt) or CKPT to a checkpoint path and read its stored config (effective
 * text, malloc'd into *text_out) into the structs. */
rc_status rc_run_open(const char *arg, char *ckpt_path, size_t ckpt_len, char **text_out, rc_model_cfg *mc,
                      rc_train_cfg *tc);

#endif
