/* model_cfg.c — reads [model], [area NAME] and [train] sections of a parsed config into the model and
 * training config structs, applying and recording the documented defaults (docs/CONFIG.md), then
 * rejects unknown sections and keys. */
#include <string.h>

#include "io/ini.h"
#include "model.h"

#define TRY(x)                                                                                               \
    do {                                                                                                     \
        if ((x) != RC_OK) return RC_ERR;                                                                     \
    } while (0)

static rc_status read_model(rc_ini *ini, rc_model_cfg *m, const char *default_name) {
    static const char *unrolls[] = {"sequential", "lockstep", NULL};
    static const char *norms[] = {"none", "batch", "batch_per_iter", NULL};
    static const char *heads[] = {"shared", "per_iter", NULL};
    static const char *losses[] = {"final", "every", "increasing", "coarse-to-fine", "progressive", "curriculum", NULL};
    static const char *readouts[] = {"pool", "dense", NULL};
    static const char *haltings[] = {"none", "ponder", NULL};
    if (rc_ini_count(ini, "model") > 1) {
        rc_ini_section *s2 = rc_ini_find_nth(ini, "model", 1);
        return rc_fail("%s:%d: a second [model] section (only one is allowed)", rc_ini_display_name(ini),
                       rc_ini_line(s2));
    }
    rc_ini_section *s = rc_ini_ensure(ini, "model");
    const char *name;
    TRY(rc_ini_str_or(s, "name", default_name, &name));
    snprintf(m->name, sizeof m->name, "%s", name);
    int dims[3], nd, def[3] = {1, 28, 28};
    TRY(rc_ini_dims_or(s, "input", def, 3, 3, 3, dims, &nd));
    m->in_c = dims[0];
    m->in_h = dims[1];
    m->in_w = dims[2];
    if (m->in_c > 64 || m->in_h > 4096 || m->in_w > 4096)
        return rc_fail("%s:%d: model.input %dx%dx%d exceeds the limits (channels <= 64, sides <= 4096)",
                       rc_ini_display_name(ini), rc_ini_line(s), m->in_c, m->in_h, m->in_w);
    TRY(rc_ini_int_or(s, "classes", 10, 2, 1000, &m->classes));
    int v;
    TRY(rc_ini_enum_or(s, "unroll", 0, unrolls, &v));
    m->unroll = (rc_unroll_kind)v;
    TRY(rc_ini_enum_or(s, "norm", 2, norms, &v));
    m->norm = (rc_norm_kind)v;
    double d;
    TRY(rc_ini_double_or(s, "bn_momentum", 0.1, 1e-6, 1.0, &d));
    m->bn_momentum = (float)d;
    TRY(rc_ini_double_or(s, "bn_eps", 1e-5, 1e-12, 0.5, &d));
    m->bn_eps = (float)d;
    TRY(rc_ini_bool_or(s, "bn_sync", 0, &m->bn_sync));
    if (m->bn_sync && m->norm == RC_NORM_NONE)
        return rc_fail("%s:%d: model.bn_sync = yes needs batch norm, but model.norm = none",
                       rc_ini_display_name(ini), rc_ini_line(s));
    TRY(rc_ini_enum_or(s, "head", 0, heads, &m->head_per_iter));
    TRY(rc_ini_enum_or(s, "loss", 1, losses, &v));
    m->loss = (rc_loss_kind)v;
    if (m->loss == RC_LOSS_PROGRESSIVE || rc_ini_has(s, "alpha")) { /* kept (unused) under other losses, so a
                                                                       * --set of model.loss alone switches */
        TRY(rc_ini_double_or(s, "alpha", 1.0, 0.0, 1.0, &d));
        m->alpha = (float)d;
    }
    TRY(rc_ini_enum_or(s, "readout", 0, readouts, &v));
    m->readout = (rc_readout_kind)v;
    if (m->readout == RC_READOUT_DENSE) {
        int hdef[2] = {32, 8};
        TRY(rc_ini_dims_or(s, "head_channels", hdef, 2, 1, RC_MAX_HEAD_LAYERS, m->head_ch, &m->head_nch));
    } else if (rc_ini_has(s, "head_channels")) {
        return rc_fail("%s:%d: model.head_channels sizes the dense head: it needs model.readout = dense",
                       rc_ini_display_name(ini), rc_ini_line(s));
    }
    TRY(rc_ini_bool_or(s, "recall", 0, &m->recall));
    TRY(rc_ini_enum_or(s, "halting", 0, haltings, &v));
    m->halting = (rc_halt_kind)v;
    if (m->halting == RC_HALT_PONDER) {
        TRY(rc_ini_double_or(s, "ponder_beta", 0.01, 0.0, 100.0, &d));
        m->ponder_beta = (float)d;
        TRY(rc_ini_double_or(s, "ponder_lambda", 0.2, 1e-6, 1.0 - 1e-6, &d));
        m->ponder_lambda = (float)d;
    } else if (rc_ini_has(s, "ponder_beta") || rc_ini_has(s, "ponder_lambda")) {
        return rc_fail("%s:%d: model.ponder_beta and model.ponder_lambda configure learned halting: they need "
                       "model.halting = ponder",
                       rc_ini_display_name(ini), rc_ini_line(s));
    }
    return RC_OK;
}

/* "FILE:LINE" of key in s, or "FILE (--set)" for a key that came from the command line. */
static const char *key_where(rc_ini *ini, const rc_ini_section *s, const char *key, char *buf, size_t n) {
    int line = 0;
    for (int j = 0; j < rc_ini_key_count(s); j++) {
        const char *k, *v;
        int l;
        rc_ini_key_at(s, j, &k, &v, &l);
        if (!strcmp(k, key)) line = l;
    }
    if (line > 0)
        snprintf(buf, n, "%s:%d", rc_ini_display_name(ini), line);
    else
        snprintf(buf, n, "%s (--set)", rc_ini_display_name(ini));
    return buf;
}

/* groups (a number dividing channels, or depthwise = channels) and, with groups > 1, pointwise. */
static rc_status read_groups(rc_ini *ini, rc_ini_section *s, rc_area_cfg *a) {
    char wb[600];
    a->groups = 1;
    a->pointwise = 0;
    if (rc_ini_has(s, "groups")) {
        const char *v;
        TRY(rc_ini_str(s, "groups", &v));
        if (!strcmp(v, "depthwise")) {
            a->groups = a->channels;
        } else {
            if (strspn(v, "0123456789") != strlen(v) || !v[0])
                return rc_fail("%s: groups = '%.32s' in [area %s] must be a number of groups that divides channels, "
                               "or depthwise",
                               key_where(ini, s, "groups", wb, sizeof wb), v, a->name);
            TRY(rc_ini_int(s, "groups", 1, 1024, &a->groups));
        }
        if (a->channels % a->groups)
            return rc_fail("%s: groups = %d in [area %s] does not divide channels = %d", key_where(ini, s, "groups", wb, sizeof wb),
                           a->groups, a->name, a->channels);
        if (a->groups > 1 && !a->lateral && a->cell != RC_CELL_RESIDUAL)
            return rc_fail("%s: groups = %d in [area %s] applies to the lateral and the residual cell's second conv, "
                           "and this area has neither (lateral = no, cell = %s)",
                           key_where(ini, s, "groups", wb, sizeof wb), a->groups, a->name, rc_cell_name(a->cell));
    }
    if (a->groups > 1) {
        TRY(rc_ini_bool_or(s, "pointwise", 1, &a->pointwise));
    } else if (rc_ini_has(s, "pointwise")) {
        return rc_fail("%s: pointwise in [area %s] puts a 1x1 conv after each grouped conv: it needs groups > 1",
                       key_where(ini, s, "pointwise", wb, sizeof wb), a->name);
    }
    return RC_OK;
}

static rc_status read_areas(rc_ini *ini, rc_model_cfg *m) {
    static const char *cells[] = {"conv", "residual", "convlstm", "gru", NULL};
    static const char *bottomups[] = {"first", "every", NULL};
    int n = rc_ini_count(ini, "area");
    if (n < 1) return rc_fail("%s: no [area NAME] section: a model needs at least one area", rc_ini_display_name(ini));
    if (n > RC_MAX_AREAS) {
        rc_ini_section *s = rc_ini_find_nth(ini, "area", RC_MAX_AREAS);
        return rc_fail("%s:%d: too many areas (%d); the limit is %d", rc_ini_display_name(ini), rc_ini_line(s), n,
                       RC_MAX_AREAS);
    }
    m->nareas = n;
    for (int k = 0; k < n; k++) {
        rc_ini_section *s = rc_ini_find_nth(ini, "area", k);
        rc_area_cfg *a = &m->areas[k];
        const char *nm = rc_ini_name(s);
        if (!nm[0])
            return rc_fail("%s:%d: [area] needs a name, e.g. [area V%d]", rc_ini_display_name(ini), rc_ini_line(s),
                           k + 1);
        if (strlen(nm) >= sizeof a->name || strchr(nm, '.'))
            return rc_fail("%s:%d: area name '%s' must be shorter than %zu characters and contain no '.'",
                           rc_ini_display_name(ini), rc_ini_line(s), nm, sizeof a->name);
        if (strcmp(nm, "head") == 0 || strcmp(nm, "readout") == 0 || strcmp(nm, "input") == 0)
            return rc_fail("%s:%d: area name '%s' is reserved", rc_ini_display_name(ini), rc_ini_line(s), nm);
        for (int j = 0; j < k; j++)
            if (strcmp(m->areas[j].name, nm) == 0)
                return rc_fail("%s:%d: a second area named '%s'", rc_ini_display_name(ini), rc_ini_line(s), nm);
        snprintf(a->name, sizeof a->name, "%s", nm);
        TRY(rc_ini_int(s, "channels", 1, 1024, &a->channels));
        TRY(rc_ini_int(s, "iterations", 1, RC_MAX_ITERS, &a->iterations));
        TRY(rc_ini_bool(s, "tied", &a->tied));
        int v;
        TRY(rc_ini_enum_or(s, "cell", 0, cells, &v));
        a->cell = (rc_cell_kind)v;
        TRY(rc_ini_int_or(s, "kernel", 3, 1, 7, &a->kernel));
        if (a->kernel % 2 == 0)
            return rc_fail("%s:%d: kernel = %d in [area %s] must be odd (1, 3, 5 or 7)", rc_ini_display_name(ini),
                           rc_ini_line(s), a->kernel, nm);
        TRY(rc_ini_int_or(s, "stride", 1, 1, 4, &a->stride));
        TRY(rc_ini_enum_or(s, "bottomup", 1, bottomups, &a->bottomup_every));
        TRY(rc_ini_bool_or(s, "lateral", 1, &a->lateral));
        TRY(rc_ini_bool_or(s, "topdown", 0, &a->topdown));
        TRY(read_groups(ini, s, a));
    }
    return RC_OK;
}

static rc_status read_train(rc_ini *ini, rc_train_cfg *t) {
    static const char *opts[] = {"sgd", "adamw", NULL};
    static const char *scheds[] = {"constant", "step", "cosine", NULL};
    if (rc_ini_count(ini, "train") > 1) {
        rc_ini_section *s2 = rc_ini_find_nth(ini, "train", 1);
        return rc_fail("%s:%d: a second [train] section (only one is allowed)", rc_ini_display_name(ini),
                       rc_ini_line(s2));
    }
    rc_ini_section *s = rc_ini_ensure(ini, "train");
    const char *data;
    TRY(rc_ini_str_or(s, "data", "fashion-mnist", &data));
    if (strlen(data) >= sizeof t->data)
        return rc_fail("%s: train.data is longer than %zu characters", rc_ini_display_name(ini), sizeof t->data - 1);
    snprintf(t->data, sizeof t->data, "%s", data);
    TRY(rc_ini_int_or(s, "epochs", 10, 1, 10000, &t->epochs));
    TRY(rc_ini_int_or(s, "batch", 128, 1, 65536, &t->batch));
    TRY(rc_ini_int_or(s, "limit", 0, 0, 100000000, &t->limit));
    TRY(rc_ini_int_or(s, "test_limit", 0, 0, 100000000, &t->test_limit));
    TRY(rc_ini_int_or(s, "val", 0, 0, 100000000, &t->val));
    int v;
    TRY(rc_ini_enum_or(s, "optimizer", 1, opts, &v));
    t->optimizer = (rc_opt_kind)v;
    TRY(rc_ini_double_or(s, "lr", 0.002, 1e-12, 100.0, &t->lr));
    TRY(rc_ini_double_or(s, "momentum", 0.9, 0.0, 0.999999, &t->momentum));
    TRY(rc_ini_bool_or(s, "nesterov", 0, &t->nesterov));
    TRY(rc_ini_double_or(s, "weight_decay", 0.0005, 0.0, 10.0, &t->weight_decay));
    TRY(rc_ini_double_or(s, "beta1", 0.9, 0.0, 0.999999, &t->beta1));
    TRY(rc_ini_double_or(s, "beta2", 0.999, 0.0, 0.99999999, &t->beta2));
    TRY(rc_ini_double_or(s, "adam_eps", 1e-8, 1e-30, 1.0, &t->adam_eps));
    TRY(rc_ini_enum_or(s, "schedule", 2, scheds, &v));
    t->schedule = (rc_sched_kind)v;
    /* a fifth of the run, at most one epoch: a short run still spends most of its steps at the full rate */
    TRY(rc_ini_double_or(s, "warmup_epochs", RC_MIN(1.0, 0.2 * t->epochs), 0.0, 10000.0, &t->warmup_epochs));
    TRY(rc_ini_int_or(s, "step_every", 30, 1, 10000, &t->step_every));
    TRY(rc_ini_double_or(s, "step_gamma", 0.1, 0.0, 1.0, &t->step_gamma));
    TRY(rc_ini_int_or(s, "crop_pad", 2, 0, 16, &t->crop_pad));
    /* mirror images by default only where a mirrored image is still of its class (clothes, objects); not
     * for digits (a mirrored 2 is not a 2), generated tasks or a user's own arrays */
    int flip_ok = !strcmp(t->data, "fashion-mnist") || !strncmp(t->data, "fashion-mnist:", 14) ||
                  !strncmp(t->data, "cifar10:", 8) || !strncmp(t->data, "cifar100:", 9);
    TRY(rc_ini_bool_or(s, "flip", flip_ok, &t->flip));
    int64_t seed;
    TRY(rc_ini_i64_or(s, "seed", 1, 0, INT64_MAX, &seed));
    t->seed = (uint64_t)seed;
    TRY(rc_ini_int_or(s, "threads", 0, 0, 256, &t->threads));
    TRY(rc_ini_int_or(s, "recompute", 0, 0, RC_MAX_ITERS, &t->recompute));
    return RC_OK;
}

/* The schema: every key each section type may hold. Checked before anything is read, so a misspelt
 * key is reported as unknown (with the known ones) rather than as a missing required key. */
static const char *model_keys[] = {"name", "input", "classes", "unroll", "norm", "bn_momentum", "bn_eps", "head",
                                   "loss", "bn_sync", "alpha", "readout", "head_channels", "recall",
                                   "halting", "ponder_beta", "ponder_lambda", NULL};
static const char *area_keys[] = {"channels", "iterations", "tied", "cell", "kernel", "stride", "bottomup",
                                  "lateral", "topdown", "groups", "pointwise", NULL};
static const char *train_keys[] = {"data",     "epochs",       "batch",         "limit",      "test_limit", "val",
                                   "optimizer", "lr",          "momentum",      "nesterov",   "weight_decay",
                                   "beta1",    "beta2",        "adam_eps",      "schedule",   "warmup_epochs",
                                   "step_every", "step_gamma", "crop_pad",      "flip",       "seed",
                                   "threads",  "recompute", NULL};

static rc_status check_schema(rc_ini *ini) {
    for (int i = 0; i < rc_ini_section_count(ini); i++) {
        rc_ini_section *s = rc_ini_section_at(ini, i);
        const char *type = rc_ini_type(s);
        const char **keys = !strcmp(type, "model") ? model_keys : !strcmp(type, "area") ? area_keys : train_keys;
        for (int j = 0; j < rc_ini_key_count(s); j++) {
            const char *key, *value;
            int line;
            rc_ini_key_at(s, j, &key, &value, &line);
            int known = 0;
            for (int k = 0; keys[k]; k++) known |= !strcmp(keys[k], key);
            if (known) continue;
            char list[512] = "";
            size_t len = 0;
            for (int k = 0; keys[k] && len + 32 < sizeof list; k++)
                len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", k ? ", " : "", keys[k]);
            if (line > 0)
                return rc_fail("%s:%d: unknown key '%s' in %s (known keys: %s)", rc_ini_display_name(ini), line, key,
                               rc_ini_label(s), list);
            return rc_fail("%s (--set): unknown key '%s' in %s (known keys: %s)", rc_ini_display_name(ini), key,
                           rc_ini_label(s), list);
        }
    }
    return RC_OK;
}

rc_status rc_config_read(rc_ini *ini, const char *default_name, rc_model_cfg *m, rc_train_cfg *t) {
    static const char *known[] = {"model", "train", "area", NULL};
    memset(m, 0, sizeof *m);
    memset(t, 0, sizeof *t);
    TRY(rc_ini_check_sections(ini, known));
    TRY(check_schema(ini));
    TRY(read_model(ini, m, default_name));
    TRY(read_areas(ini, m));
    TRY(read_train(ini, t));
    m->recompute = t->recompute; /* the graph plan needs it; rc_model_build sees only the model config */
    TRY(rc_ini_check_unused(ini));
    if (rc_model_cfg_validate(m)) {
        char why[768]; /* rc_error()'s buffer is the one rc_fail writes */
        snprintf(why, sizeof why, "%s", rc_error());
        return rc_fail("%s: %s", rc_ini_display_name(ini), why);
    }
    return RC_OK;
}
