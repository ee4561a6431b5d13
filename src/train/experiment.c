/* experiment.c — the experiments behind docs/RESULTS.md. Sub-run configs are generated from a base
 * config (file text + `--set`-style assignments, or generated areas for the trade-off), trained with
 * rc_train in OUT/runs/NAME (a finished run with the same config is reused, an unfinished one resumed),
 * and read back from train.csv; results go to OUT as CSV, Markdown and gnuplot figures. */
#define _POSIX_C_SOURCE 200809L
#include "experiment.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "eval.h"
#include "io/checkpoint.h"
#include "io/dataset.h"
#include "io/ini.h"
#include "io/plot.h"
#include "models/model.h"
#include "trainer.h"
#include "io/files.h"
#include "io/table.h"

#define QUICK_TRAIN_IMAGES 4096
#define QUICK_TEST_IMAGES 1000
#define MAX_SPLITS 32

/* ---- small helpers ---------------------------------------------------------------------------- */

/* Whole file as a NUL-terminated string (NULL if it cannot be read). */
static char *slurp(const char *path) { return rc_read_text_file(path, (size_t)1 << 30, NULL); }

static void say(const rc_exp_opts *o, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void say(const rc_exp_opts *o, const char *fmt, ...) {
    (void)o;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "experiment: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

/* ---- configs ---------------------------------------------------------------------------------- */

/* Canonical text of a config: parse text, apply the assignments (NULL-terminated, then the options'
 * own), read it (defaults applied and recorded) and write it back. Also fills *mc and *tc. */
static rc_status make_config(const char *text, const char *display, const char *const *sets, const char *name,
                             const rc_exp_opts *o, char **out, rc_model_cfg *mc, rc_train_cfg *tc) {
    rc_ini *ini = NULL;
    *out = NULL;
    if (rc_ini_parse(text, strlen(text), display, &ini)) return RC_ERR;
    char buf[16][600];
    int nb = 0;
    snprintf(buf[nb++], sizeof buf[0], "model.name=%s", name);
    if (o->data) {
        snprintf(buf[nb++], sizeof buf[0], "train.data=%s", o->data);
        if (!strncmp(o->data, "cifar10:", 8) || !strncmp(o->data, "cifar100:", 9)) {
            snprintf(buf[nb++], sizeof buf[0], "model.input=3x32x32");
            snprintf(buf[nb++], sizeof buf[0], "model.classes=%d", !strncmp(o->data, "cifar100:", 9) ? 100 : 10);
        }
    }
    if (o->epochs > 0) snprintf(buf[nb++], sizeof buf[0], "train.epochs=%d", o->epochs);
    if (o->threads > 0) snprintf(buf[nb++], sizeof buf[0], "train.threads=%d", o->threads);
    if (o->quick) {
        snprintf(buf[nb++], sizeof buf[0], "train.limit=%d", QUICK_TRAIN_IMAGES);
        snprintf(buf[nb++], sizeof buf[0], "train.test_limit=%d", QUICK_TEST_IMAGES);
        snprintf(buf[nb++], sizeof buf[0], "train.epochs=1");
        snprintf(buf[nb++], sizeof buf[0], "train.batch=64");
        snprintf(buf[nb++], sizeof buf[0], "train.warmup_epochs=0.1");
    }
    for (int i = 0; sets && sets[i]; i++)
        if (rc_ini_set(ini, sets[i])) goto fail;
    for (int i = 0; i < nb; i++)
        if (rc_ini_set(ini, buf[i])) goto fail;
    if (rc_config_read(ini, name, mc, tc)) goto fail;
    size_t len;
    if (rc_ini_to_text(ini, out, &len)) goto fail;
    rc_ini_free(ini);
    return RC_OK;
fail:
    rc_ini_free(ini);
    return RC_ERR;
}

/* The text of a config file with the options' --set overrides (canonical form; no defaults applied). */
static rc_status base_text(const char *path, const rc_exp_opts *o, char **text) {
    rc_ini *ini = NULL;
    *text = NULL;
    if (rc_ini_load(path, &ini)) return RC_ERR;
    for (int i = 0; i < o->nsets; i++)
        if (rc_ini_set(ini, o->sets[i])) {
            rc_ini_free(ini);
            return RC_ERR;
        }
    size_t len;
    rc_status st = rc_ini_to_text(ini, text, &len);
    rc_ini_free(ini);
    return st;
}

/* Names of the [area] sections of a config text, bottom to top. */
static rc_status area_names(const char *text, char names[][32], int *n) {
    rc_ini *ini = NULL;
    if (rc_ini_parse(text, strlen(text), "base config", &ini)) return RC_ERR;
    *n = 0;
    for (int i = 0; i < rc_ini_section_count(ini) && *n < RC_MAX_AREAS; i++) {
        rc_ini_section *s = rc_ini_section_at(ini, i);
        if (strcmp(rc_ini_type(s), "area")) continue;
        snprintf(names[(*n)++], 32, "%s", rc_ini_name(s));
    }
    rc_ini_free(ini);
    return *n > 0 ? RC_OK : rc_fail("the base config has no [area] section");
}

/* ---- model numbers (what `recur info` reports) ------------------------------------------------ */

typedef struct {
    size_t params;
    double flops;      /* forward FLOPs per image, all readouts */
    int depth;         /* effective depth */
    long units_step;   /* sum over areas of channels * H * W */
    long units_unrolled;
    int readouts;
} model_numbers;

static rc_status numbers_of(const rc_model_cfg *mc, model_numbers *nb) {
    rc_model m;
    if (rc_model_build(mc, 1, 0, &m)) return RC_ERR;
    nb->params = rc_graph_trainable_params(&m.g);
    nb->flops = 0;
    for (int i = 0; i < m.g.nnodes; i++) nb->flops += rc_graph_node_flops(&m.g, i);
    nb->depth = rc_model_effective_depth(&m);
    nb->units_step = nb->units_unrolled = 0;
    for (int k = 0; k < mc->nareas; k++) {
        long u = (long)mc->areas[k].channels * m.area_h[k] * m.area_w[k];
        nb->units_step += u;
        nb->units_unrolled += u * mc->areas[k].iterations;
    }
    nb->readouts = m.nreadouts;
    rc_model_free(&m);
    return RC_OK;
}

/* ---- sub-runs ---------------------------------------------------------------------------------- */

typedef struct {
    char name[64];
    model_numbers nb;
    int R;
    double acc[RC_MAX_READOUTS], coarse[RC_MAX_READOUTS]; /* over seeds: the mean */
    int has_coarse;
    int epochs;
    double train_seconds; /* sum of epoch_seconds in train.csv (over seeds: the mean) */
    int nseeds;           /* > 1: seed_acc and seed_coarse hold every seed's values, [seed * R + t] */
    double *seed_acc, *seed_coarse;
} sub_result;

static void sub_free(sub_result *r) {
    free(r->seed_acc);
    free(r->seed_coarse);
    r->seed_acc = r->seed_coarse = NULL;
}

/* Sample standard deviation (n - 1) over seeds of readout t (coarse: the coarse accuracy); 0 for 1 seed. */
static double seed_sd(const sub_result *r, int t, int coarse) {
    if (r->nseeds < 2) return 0;
    const double *v = coarse ? r->seed_coarse : r->seed_acc, m = coarse ? r->coarse[t] : r->acc[t];
    double ss = 0;
    for (int k = 0; k < r->nseeds; k++) ss += (v[k * r->R + t] - m) * (v[k * r->R + t] - m);
    return sqrt(ss / (r->nseeds - 1));
}

/* A column of the CSV only. */
static void csv_only(rc_table *t, const char *name, const char *fmt) { rc_table_col(t, name, NULL, fmt, RC_ALIGN_RIGHT); }

/* CSV columns for seeds > 1 (nothing for one seed): MEAS_std for every measure, seeds, then
 * MEAS_seedK for every measure and seed. */
static void seed_cols(rc_table *csv, int nseeds, const char *const *meas, int nm) {
    if (nseeds < 2) return;
    char name[96];
    for (int m = 0; m < nm; m++) {
        snprintf(name, sizeof name, "%s_std", meas[m]);
        csv_only(csv, name, "%.4f");
    }
    csv_only(csv, "seeds", "%.0f");
    for (int m = 0; m < nm; m++)
        for (int k = 1; k <= nseeds; k++) {
            snprintf(name, sizeof name, "%s_seed%d", meas[m], k);
            csv_only(csv, name, "%.4f");
        }
}

/* The values of those columns for readout t; measures: accuracy, then coarse accuracy when nm = 2. */
static void seed_cells(rc_table *csv, const sub_result *r, int t, int nm) {
    if (r->nseeds < 2) return;
    for (int m = 0; m < nm; m++) rc_table_num(csv, seed_sd(r, t, m));
    rc_table_num(csv, r->nseeds);
    for (int m = 0; m < nm; m++)
        for (int k = 0; k < r->nseeds; k++) rc_table_num(csv, (m ? r->seed_coarse : r->seed_acc)[k * r->R + t]);
}

/* A Markdown cell: accuracy in % ("85.12"), with " ± sd" over seeds. */
static void acc_cell(rc_table *md, const sub_result *r, int t, int coarse) {
    double v = 100 * (coarse ? r->coarse[t] : r->acc[t]);
    if (r->nseeds > 1)
        rc_table_text(md, "%.2f ± %.2f", v, 100 * seed_sd(r, t, coarse));
    else
        rc_table_text(md, "%.2f", v);
}

/* The sentence the Markdown tables get for seeds > 1. */
static void md_seeds_note(rc_strbuf *md, const rc_exp_opts *o) {
    if (o->seeds > 1)
        rc_sb_printf(md, "Every cell was trained %d times (train.seed = 1..%d): accuracies are mean ± sample standard "
                         "deviation (n - 1) over the seeds; the CSV has every seed's value.\n\n",
                     o->seeds, o->seeds);
}

/* Read the last row of RUN/train.csv: test accuracy (and coarse accuracy) of every readout. */
static rc_status read_train_csv(const char *path, int want_epochs, sub_result *r) {
    char *text = slurp(path);
    if (!text) return rc_fail("cannot read %s: %s", path, strerror(errno));
    rc_status st = RC_ERR;
    int col_sec = -1, col_acc[RC_MAX_READOUTS], col_coarse[RC_MAX_READOUTS], ncol = 0;
    for (int t = 0; t < RC_MAX_READOUTS; t++) col_acc[t] = col_coarse[t] = -1;
    char *save = NULL, *line = strtok_r(text, "\n", &save);
    if (!line) {
        rc_fail("%s is empty", path);
        goto done;
    }
    {
        char *s2 = NULL;
        for (char *tok = strtok_r(line, ",", &s2); tok; tok = strtok_r(NULL, ",", &s2), ncol++) {
            int t;
            if (!strcmp(tok, "epoch_seconds")) col_sec = ncol;
            if (sscanf(tok, "test_acc_%d", &t) == 1 && t >= 1 && t <= RC_MAX_READOUTS) col_acc[t - 1] = ncol;
            if (sscanf(tok, "test_coarse_acc_%d", &t) == 1 && t >= 1 && t <= RC_MAX_READOUTS) col_coarse[t - 1] = ncol;
        }
    }
    r->R = 0;
    while (r->R < RC_MAX_READOUTS && col_acc[r->R] >= 0) r->R++;
    r->has_coarse = r->R > 0 && col_coarse[0] >= 0;
    if (r->R == 0 || col_sec < 0) {
        rc_fail("%s: unexpected header", path);
        goto done;
    }
    r->train_seconds = 0;
    int rows = 0, last_epoch = 0;
    for (line = strtok_r(NULL, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        double v[4096];
        int n = 0;
        char *s2 = NULL;
        for (char *tok = strtok_r(line, ",", &s2); tok && n < 4096; tok = strtok_r(NULL, ",", &s2)) v[n++] = atof(tok);
        if (n < ncol) continue;
        rows++;
        last_epoch = (int)v[0];
        r->train_seconds += v[col_sec];
        for (int t = 0; t < r->R; t++) {
            r->acc[t] = v[col_acc[t]];
            r->coarse[t] = r->has_coarse ? v[col_coarse[t]] : 0;
        }
    }
    if (rows == 0 || last_epoch != want_epochs) {
        rc_fail("%s: the run has %d of %d epochs", path, last_epoch, want_epochs);
        goto done;
    }
    r->epochs = last_epoch;
    st = RC_OK;
done:
    free(text);
    return st;
}

/* Train (or resume, or reuse) OUT/runs/NAME with the canonical config text. */
static rc_status run_sub(const rc_exp_opts *o, const char *name, const char *text, const rc_model_cfg *mc,
                         const rc_train_cfg *tc, sub_result *r) {
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", name);
    if (numbers_of(mc, &r->nb)) return RC_ERR;
    char dir[4096], path[4200];
    snprintf(dir, sizeof dir, "%s/runs/%s", o->out_dir, name);
    if (rc_mkdirs(dir)) return RC_ERR;
    snprintf(path, sizeof path, "%s/model.ckpt", dir);
    int have_ckpt = access(path, F_OK) == 0;
    snprintf(path, sizeof path, "%s/config.cfg", dir);
    if (have_ckpt) {
        char *ondisk = slurp(path);
        int same = ondisk && !strcmp(ondisk, text);
        free(ondisk);
        if (!same)
            return rc_fail("%s holds a run with a different config (%s); delete that directory or use another --out",
                           dir, path);
    } else if (rc_write_file_atomic(path, text, strlen(text))) {
        return RC_ERR;
    }
    rc_train_opts to;
    memset(&to, 0, sizeof to);
    to.run_dir = dir;
    to.resume = have_ckpt;
    to.ckpt_every_s = 120;
    to.quiet = o->quiet;
    say(o, "%s run %s (%zu params, %.2f MFLOP/image, effective depth %d)",
        have_ckpt ? "resuming or reusing" : "training", dir, r->nb.params, r->nb.flops / 1e6, r->nb.depth);
    rc_train_result tr;
    if (rc_train(text, path, &to, &tr)) return RC_ERR;
    if (!tr.finished || rc_train_stop_requested())
        return rc_fail("stopped during %s; run the same command again to continue where it stopped", dir);
    snprintf(path, sizeof path, "%s/train.csv", dir);
    if (read_train_csv(path, tc->epochs, r)) return RC_ERR;
    if (r->R != r->nb.readouts) return rc_fail("%s: %d readouts in train.csv, the model has %d", path, r->R, r->nb.readouts);
    return RC_OK;
}

/* One cell of an experiment: the config text (with the NULL-terminated assignments sets, may be NULL)
 * trained once, or for o->seeds > 1 once per seed with train.seed = k in OUT/runs/NAME (k = 1) and
 * OUT/runs/NAME-seedK; r gets the mean over seeds and every seed's values (free with sub_free). *mc and
 * *tc are seed 1's. */
static rc_status run_cell(const rc_exp_opts *o, const char *text, const char *display, const char *const *sets,
                          const char *name, rc_model_cfg *mc, rc_train_cfg *tc, sub_result *r) {
    int N = o->seeds > 1 ? o->seeds : 1;
    const char *sp[64];
    int ns = 0;
    for (; sets && sets[ns] && ns < 62; ns++) sp[ns] = sets[ns];
    char seedset[32], sname[80];
    memset(r, 0, sizeof *r);
    for (int k = 1; k <= N; k++) {
        snprintf(seedset, sizeof seedset, "train.seed=%d", k);
        sp[ns] = N > 1 ? seedset : NULL;
        sp[ns + 1] = NULL;
        if (k == 1)
            snprintf(sname, sizeof sname, "%s", name);
        else
            snprintf(sname, sizeof sname, "%.50s-seed%d", name, k);
        char *canon = NULL;
        rc_model_cfg mck;
        rc_train_cfg tck;
        sub_result one;
        if (k == 1) { /* a config whose seed is already 1 is left as it is: the one-seed run, reused */
            sp[ns] = NULL;
            if (make_config(text, display, sp, sname, o, &canon, &mck, &tck)) goto fail;
            if (tck.seed != 1 && N > 1) {
                free(canon);
                canon = NULL;
                sp[ns] = seedset;
            }
        }
        if (!canon && make_config(text, display, sp, sname, o, &canon, &mck, &tck)) goto fail;
        rc_status rs = run_sub(o, sname, canon, &mck, &tck, &one);
        free(canon);
        if (rs) goto fail;
        if (k == 1) {
            *mc = mck;
            *tc = tck;
            *r = one;
            snprintf(r->name, sizeof r->name, "%s", name);
            if (N == 1) return RC_OK;
            r->nseeds = N;
            r->seed_acc = rc_xcalloc((size_t)N * r->R, sizeof(double));
            r->seed_coarse = rc_xcalloc((size_t)N * r->R, sizeof(double));
            for (int t = 0; t < r->R; t++) r->acc[t] = r->coarse[t] = 0;
            r->train_seconds = 0;
        } else if (one.R != r->R) {
            rc_fail("%s: %d readouts, seed 1 has %d", sname, one.R, r->R);
            goto fail;
        }
        for (int t = 0; t < r->R; t++) {
            r->seed_acc[(k - 1) * r->R + t] = one.acc[t];
            r->seed_coarse[(k - 1) * r->R + t] = one.coarse[t];
            r->acc[t] += one.acc[t] / N;
            r->coarse[t] += one.coarse[t] / N;
        }
        r->train_seconds += one.train_seconds / N;
    }
    return RC_OK;
fail:
    sub_free(r);
    return RC_ERR;
}

/* Error bars of a plotted accuracy series: 100 x the sample sd of every readout, or NULL for one seed. */
static double *err_bars(const sub_result *r, int coarse) {
    if (r->nseeds < 2) return NULL;
    double *e = rc_xmalloc((size_t)r->R * sizeof(double));
    for (int t = 0; t < r->R; t++) e[t] = 100 * seed_sd(r, t, coarse);
    return e;
}

/* Common output: write figure, tell where it went. */
static rc_status figure(const rc_exp_opts *o, const char *name, const rc_plot *p) {
    int rendered = 0;
    if (rc_plot_write(o->out_dir, name, p, &rendered)) return RC_ERR;
    if (rendered)
        say(o, "wrote %s/%s.png and %s.svg", o->out_dir, name, name);
    else
        say(o, "gnuplot (with pngcairo and svg terminals) was not found: wrote %s/%s.dat and %s.gp but no "
               "PNG/SVG (install gnuplot-nox and rerun to draw them)",
            o->out_dir, name, name);
    return RC_OK;
}

/* OUT/STEM.EXT */
static void out_path(char *path, size_t n, const rc_exp_opts *o, const char *stem, const char *ext) {
    snprintf(path, n, "%s/%s.%s", o->out_dir, stem, ext);
}

/* Common output: STEM.csv (the table csv) and STEM.md (the text md, then the table tab: csv itself when
 * tab is NULL), atomically, then the figure when p is given; frees the tables and the text. */
static rc_status save_outputs(const rc_exp_opts *o, const char *stem, rc_table *csv, rc_strbuf *md, rc_table *tab,
                              const rc_plot *p) {
    char path[4200];
    out_path(path, sizeof path, o, stem, "csv");
    rc_status st = rc_table_write_csv(csv, path);
    out_path(path, sizeof path, o, stem, "md");
    if (!st) st = rc_table_write_md(tab ? tab : csv, md->buf, path);
    if (!st && p) st = figure(o, stem, p);
    if (!st) say(o, "wrote %s/%s.csv and %s.md", o->out_dir, stem, stem);
    rc_table_free(csv);
    if (tab) rc_table_free(tab);
    free(md->buf);
    md->buf = NULL;
    return st;
}

static void md_header(rc_strbuf *md, const char *title, const char *base_cfg, const rc_exp_opts *o, const rc_train_cfg *tc) {
    rc_sb_printf(md, "# %s\n\nBase config `%s`; data `%s`; %d epoch%s of %s training images%s.\n\n", title,
              base_cfg ? base_cfg : "(run)", tc->data, tc->epochs, tc->epochs == 1 ? "" : "s",
              tc->limit > 0 ? "a subset of the" : "all", o->quick ? " (--quick: a smoke test, not a result)" : "");
}

/* ---- table4 ------------------------------------------------------------------------------------ */

rc_status rc_exp_table4(const char *base_cfg, const rc_exp_opts *o) {
    char *base = NULL;
    if (rc_mkdirs(o->out_dir) || base_text(base_cfg, o, &base)) return RC_ERR;
    char areas[RC_MAX_AREAS][32];
    int na = 0;
    rc_status st = RC_ERR;
    sub_result res[4];
    memset(res, 0, sizeof res);
    double *eb[4] = {NULL, NULL, NULL, NULL};
    rc_train_cfg tc = {0};
    if (area_names(base, areas, &na)) goto done;
    static const char *tied_w[2] = {"yes", "no"}, *loss_w[2] = {"final", "every"};
    for (int v = 0; v < 4; v++) {
        int ti = v / 2, li = v % 2;
        char sets[RC_MAX_AREAS + 2][96];
        const char *sp[RC_MAX_AREAS + 2];
        int ns = 0;
        for (int k = 0; k < na; k++) snprintf(sets[ns++], sizeof sets[0], "area.%.31s.tied=%s", areas[k], tied_w[ti]);
        snprintf(sets[ns++], sizeof sets[0], "model.loss=%s", loss_w[li]);
        for (int i = 0; i < ns; i++) sp[i] = sets[i];
        sp[ns] = NULL;
        char name[64];
        snprintf(name, sizeof name, "%s-%s", ti ? "untied" : "tied", loss_w[li]);
        rc_model_cfg mc;
        if (run_cell(o, base, base_cfg, sp, name, &mc, &tc, &res[v])) goto done;
    }
    for (int v = 1; v < 4; v++)
        if (res[v].R != res[0].R) {
            rc_fail("table4: the variants have different readout counts (%d vs %d)", res[v].R, res[0].R);
            goto done;
        }
    int R = res[0].R;
    rc_strbuf md = {0};
    rc_table csv = {0}, tab = {0}; /* the CSV: a row per run and iteration; the Markdown: a row per run */
    static const char *meas[1] = {"accuracy"};
    static const char *cols[] = {"run", "tied", "loss", "params", "mflops", "effective_depth", "train_seconds",
                                 "iteration", "accuracy"};
    static const char *fmts[] = {NULL, NULL, NULL, "%.0f", "%.4f", "%.0f", "%.1f", "%.0f", "%.4f"};
    for (int c = 0; c < 9; c++) csv_only(&csv, cols[c], fmts[c]);
    seed_cols(&csv, o->seeds, meas, 1);
    for (int c = 0; c < 4; c++) rc_table_col(&tab, NULL, cols[c], fmts[c], c < 3 ? RC_ALIGN_LEFT : RC_ALIGN_RIGHT);
    for (int t = 1; t <= R; t++) {
        char it[32];
        snprintf(it, sizeof it, "iter %d", t);
        rc_table_col(&tab, NULL, it, NULL, RC_ALIGN_RIGHT);
    }
    rc_table_col(&tab, NULL, "train s", "%.0f", RC_ALIGN_RIGHT);
    md_header(&md, "Table 4 at matched effective depth: tying x loss schedule", base_cfg, o, &tc);
    md_seeds_note(&md, o);
    rc_sb_printf(&md, "Test accuracy (%%) of the shared readout after every iteration of the top area. All four "
                   "have the same unrolled graph (effective depth %d, %.2f MFLOP/image); `final` trains only the "
                   "last readout, `every` averages the loss over all %d.\n\n",
              res[0].nb.depth, res[0].nb.flops / 1e6, R);
    double xs[RC_MAX_READOUTS], ys[4][RC_MAX_READOUTS];
    char titles[4][96];
    rc_plot p;
    memset(&p, 0, sizeof p);
    for (int v = 0; v < 4; v++) {
        const sub_result *r = &res[v];
        rc_table_row(&tab);
        rc_table_text(&tab, "%s", r->name);
        rc_table_text(&tab, "%s", v / 2 ? "no" : "yes");
        rc_table_text(&tab, "%s", loss_w[v % 2]);
        rc_table_num(&tab, (double)r->nb.params);
        for (int t = 0; t < R; t++) {
            rc_table_row(&csv);
            rc_table_text(&csv, "%s", r->name);
            rc_table_text(&csv, "%s", v / 2 ? "no" : "yes");
            rc_table_text(&csv, "%s", loss_w[v % 2]);
            rc_table_num(&csv, (double)r->nb.params);
            rc_table_num(&csv, r->nb.flops / 1e6);
            rc_table_num(&csv, r->nb.depth);
            rc_table_num(&csv, r->train_seconds);
            rc_table_num(&csv, t + 1);
            rc_table_num(&csv, r->acc[t]);
            seed_cells(&csv, r, t, 1);
            acc_cell(&tab, r, t, 0);
            xs[t] = t + 1;
            ys[v][t] = 100 * r->acc[t];
        }
        rc_table_num(&tab, r->train_seconds);
        snprintf(titles[v], sizeof titles[v], "%s, loss %s (%zu params)", v / 2 ? "untied" : "tied", loss_w[v % 2],
                 r->nb.params);
        eb[v] = err_bars(r, 0);
        p.series[v] = (rc_plot_series){titles[v], R, xs, ys[v], NULL, RC_PLOT_LINESPOINTS, 0, eb[v]};
    }
    p.nseries = 4;
    p.percent_y = 1;
    char title[200];
    snprintf(title, sizeof title, "Tied vs untied x loss final vs every (effective depth %d, %d epoch%s)", res[0].nb.depth,
             tc.epochs, tc.epochs == 1 ? "" : "s");
    p.title = title;
    p.xlabel = "iteration of the top area (readout)";
    p.ylabel = "test accuracy (%)";
    p.integer_x = 1;
    st = save_outputs(o, "table4", &csv, &md, &tab, &p);
done:
    for (int v = 0; v < 4; v++) {
        sub_free(&res[v]);
        free(eb[v]);
    }
    free(base);
    return st;
}

/* ---- depth vs tying trade-off ------------------------------------------------------------------ */

/* A config text with K copies of the base's single [area] (named A1..AK): T iterations, tied when T > 1,
 * the first with the template's stride and the others stride 1; channels > 0 overrides the width. */
static rc_status split_text(const char *base, int K, int T, int channels, char **out) {
    rc_ini *ini = NULL;
    *out = NULL;
    if (rc_ini_parse(base, strlen(base), "tradeoff base config", &ini)) return RC_ERR;
    rc_strbuf s = {0};
    int nareas = 0;
    for (int i = 0; i < rc_ini_section_count(ini); i++) {
        rc_ini_section *sec = rc_ini_section_at(ini, i);
        int is_area = !strcmp(rc_ini_type(sec), "area");
        nareas += is_area;
        for (int k = 0; k < (is_area ? K : 1); k++) {
            if (is_area)
                rc_sb_printf(&s, "[area A%d]\n", k + 1);
            else
                rc_sb_printf(&s, "%s\n", rc_ini_label(sec));
            for (int j = 0; j < rc_ini_key_count(sec); j++) {
                const char *key, *val;
                int line;
                rc_ini_key_at(sec, j, &key, &val, &line);
                if (is_area && (!strcmp(key, "iterations") || !strcmp(key, "tied") ||
                                (k > 0 && !strcmp(key, "stride")) || (channels > 0 && !strcmp(key, "channels"))))
                    continue;
                rc_sb_printf(&s, "%s = %s\n", key, val);
            }
            if (is_area) {
                rc_sb_printf(&s, "iterations = %d\ntied = %s\n", T, T > 1 ? "yes" : "no");
                if (k > 0) rc_sb_printf(&s, "stride = 1\n");
                if (channels > 0) rc_sb_printf(&s, "channels = %d\n", channels);
            }
            rc_sb_printf(&s, "\n");
        }
    }
    rc_ini_free(ini);
    if (nareas != 1) {
        free(s.buf);
        return rc_fail("the trade-off base config must have exactly one [area] section (the template), it has %d",
                       nareas);
    }
    *out = s.buf;
    return RC_OK;
}

typedef struct {
    int K, T, channels, matched;
    sub_result r;
} split_run;

rc_status rc_exp_tradeoff(const char *base_cfg, int depth, const rc_exp_opts *o) {
    if (depth < 1 || depth > RC_MAX_AREAS)
        return rc_fail("tradeoff: --depth %d is out of range 1..%d (the fully feedforward split needs D areas)", depth,
                       RC_MAX_AREAS);
    char *base = NULL;
    if (rc_mkdirs(o->out_dir) || base_text(base_cfg, o, &base)) return RC_ERR;
    rc_status st = RC_ERR;
    split_run runs[MAX_SPLITS];
    int nrun = 0;
    rc_train_cfg tc = {0};
    /* the fully feedforward split sets the params target of the width-matched twins */
    size_t target = 0;
    int base_channels = 0;
    {
        char *text = NULL, *canon = NULL;
        rc_model_cfg mc;
        model_numbers nb;
        if (split_text(base, depth, 1, 0, &text)) goto done;
        rc_status s2 = make_config(text, base_cfg, NULL, "probe", o, &canon, &mc, &tc);
        free(text);
        free(canon);
        if (s2 || numbers_of(&mc, &nb)) goto done;
        target = nb.params;
        base_channels = mc.areas[0].channels;
    }
    for (int K = 1; K <= depth; K++) {
        if (depth % K) continue;
        int T = depth / K;
        for (int matched = 0; matched < (K < depth ? 2 : 1); matched++) {
            int channels = 0;
            if (matched) { /* widest width whose params are closest to the target */
                size_t best_diff = (size_t)-1;
                for (int c = base_channels; c <= 1024; c++) {
                    char *text = NULL, *canon = NULL;
                    rc_model_cfg mc;
                    model_numbers nb;
                    if (split_text(base, K, T, c, &text)) goto done;
                    rc_status s2 = make_config(text, base_cfg, NULL, "probe", o, &canon, &mc, &tc);
                    free(text);
                    free(canon);
                    if (s2 || numbers_of(&mc, &nb)) goto done;
                    size_t diff = nb.params > target ? nb.params - target : target - nb.params;
                    if (diff <= best_diff) {
                        best_diff = diff;
                        channels = c;
                    }
                    if (nb.params > target) break;
                }
            }
            if (matched && channels == base_channels) continue; /* already at the target (T <= 2: no saving) */
            split_run *sr = &runs[nrun];
            sr->K = K;
            sr->T = T;
            sr->matched = matched;
            char name[64];
            if (matched)
                snprintf(name, sizeof name, "%dx%d-c%d", K, T, channels);
            else
                snprintf(name, sizeof name, "%dx%d", K, T);
            char *text = NULL;
            rc_model_cfg mc;
            if (split_text(base, K, T, channels, &text)) goto done;
            rc_status s2 = run_cell(o, text, base_cfg, NULL, name, &mc, &tc, &sr->r);
            free(text);
            if (s2) goto done;
            sr->channels = mc.areas[0].channels;
            nrun++;
        }
    }
    rc_strbuf md = {0};
    rc_table csv = {0}; /* one table: some columns in one of the CSV and the Markdown only */
    static const char *meas[1] = {"accuracy"};
    rc_table_col(&csv, "run", "run", NULL, RC_ALIGN_LEFT);
    rc_table_col(&csv, "areas_K", "K", "%.0f", RC_ALIGN_RIGHT);
    rc_table_col(&csv, "iterations_T", "T", "%.0f", RC_ALIGN_RIGHT);
    csv_only(&csv, "width_matched", NULL);
    rc_table_col(&csv, "channels", "width", "%.0f", RC_ALIGN_RIGHT);
    rc_table_col(&csv, "params", "params", "%.0f", RC_ALIGN_RIGHT);
    rc_table_col(&csv, "units_per_step", "units", "%.0f", RC_ALIGN_RIGHT);
    rc_table_col(&csv, "units_unrolled", "units unrolled", "%.0f", RC_ALIGN_RIGHT);
    csv_only(&csv, "mflops", "%.4f");
    rc_table_col(&csv, NULL, "MFLOP/image", "%.2f", RC_ALIGN_RIGHT);
    rc_table_col(&csv, "effective_depth", "depth", "%.0f", RC_ALIGN_RIGHT);
    csv_only(&csv, "train_seconds", "%.1f");
    csv_only(&csv, "accuracy", "%.4f");
    seed_cols(&csv, o->seeds, meas, 1);
    rc_table_col(&csv, NULL, "accuracy %", NULL, RC_ALIGN_RIGHT);
    rc_table_col(&csv, NULL, "train s", "%.0f", RC_ALIGN_RIGHT);
    md_header(&md, "Depth from recurrence vs depth from distinct layers", base_cfg, o, &tc);
    md_seeds_note(&md, o);
    rc_sb_printf(&md, "Effective depth %d split into K areas of T = %d/K tied iterations (`KxT`; K = 1 fully recurrent, "
                   "K = %d fully feedforward), every split at width %d, plus width-matched twins (`KxT-cN`) whose "
                   "width N is raised until their params are closest to the fully feedforward split's (%zu). "
                   "Units: channels x H x W summed over areas (distinct neurons; x T for the unrolled count). "
                   "Accuracy: test, last readout.\n\n",
              depth, depth, depth, base_channels, target);
    double px[2][MAX_SPLITS], ux[2][MAX_SPLITS], fx[2][MAX_SPLITS], ay[2][MAX_SPLITS], ey[2][MAX_SPLITS];
    char lab[2][MAX_SPLITS][24];
    const char *labp[2][MAX_SPLITS];
    int ns[2] = {0, 0};
    for (int i = 0; i < nrun; i++) {
        const split_run *s = &runs[i];
        const sub_result *r = &s->r;
        double acc = r->acc[r->R - 1];
        rc_table_row(&csv);
        rc_table_text(&csv, "%s", r->name);
        rc_table_num(&csv, s->K);
        rc_table_num(&csv, s->T);
        rc_table_text(&csv, "%s", s->matched ? "yes" : "no");
        rc_table_num(&csv, s->channels);
        rc_table_num(&csv, (double)r->nb.params);
        rc_table_num(&csv, (double)r->nb.units_step);
        rc_table_num(&csv, (double)r->nb.units_unrolled);
        rc_table_num(&csv, r->nb.flops / 1e6);
        rc_table_num(&csv, r->nb.flops / 1e6);
        rc_table_num(&csv, r->nb.depth);
        rc_table_num(&csv, r->train_seconds);
        rc_table_num(&csv, acc);
        seed_cells(&csv, r, r->R - 1, 1);
        acc_cell(&csv, r, r->R - 1, 0);
        rc_table_num(&csv, r->train_seconds);
        /* series 0: base width (all splits, including K = D); series 1: width-matched twins and K = D */
        for (int w = 0; w < 2; w++) {
            if ((w == 0 && s->matched) || (w == 1 && !s->matched && s->K != depth)) continue;
            int j = ns[w]++;
            px[w][j] = (double)r->nb.params;
            ux[w][j] = (double)r->nb.units_step;
            fx[w][j] = r->nb.flops / 1e6;
            ay[w][j] = 100 * acc;
            ey[w][j] = 100 * seed_sd(r, r->R - 1, 0);
            if (s->matched)
                snprintf(lab[w][j], sizeof lab[w][j], "%dx%d c%d", s->K, s->T, s->channels);
            else
                snprintf(lab[w][j], sizeof lab[w][j], "%dx%d", s->K, s->T);
            labp[w][j] = w == 1 && !s->matched ? "" : lab[w][j]; /* K = D is labelled in series 0 */
        }
    }
    char t0[128], t1[128], title[3][200];
    snprintf(t0, sizeof t0, "width %d: same FLOPs, params grow with K", base_channels);
    snprintf(t1, sizeof t1, "widened to %zu params (K=%d params)", target, depth);
    static const char *names[3] = {"tradeoff_params", "tradeoff_units", "tradeoff_flops"};
    static const char *xl[3] = {"params (synapses: stored weights, log scale)",
                                "units (distinct neurons: channels x H x W summed over areas, log scale)",
                                "forward MFLOP per image (log scale)"};
    static const char *what[3] = {"params", "units", "compute"};
    st = save_outputs(o, "tradeoff", &csv, &md, NULL, NULL);
    for (int f = 0; f < 3 && !st; f++) {
        rc_plot p;
        memset(&p, 0, sizeof p);
        snprintf(title[f], sizeof title[f], "Accuracy vs %s at effective depth %d (labels: K areas x T iterations)",
                 what[f], depth);
        p.title = title[f];
        p.xlabel = xl[f];
        p.ylabel = "test accuracy (%)";
        p.logx = 1;
        const double *xx[2] = {f == 0 ? px[0] : f == 1 ? ux[0] : fx[0], f == 0 ? px[1] : f == 1 ? ux[1] : fx[1]};
        p.percent_y = 1;
        p.series[0] = (rc_plot_series){t0, ns[0], xx[0], ay[0], labp[0], RC_PLOT_LINESPOINTS, 0, o->seeds > 1 ? ey[0] : NULL};
        p.series[1] = (rc_plot_series){t1, ns[1], xx[1], ay[1], labp[1], RC_PLOT_LINESPOINTS, 1, o->seeds > 1 ? ey[1] : NULL};
        p.nseries = ns[1] > 1 ? 2 : 1;
        st = figure(o, names[f], &p);
    }
done:
    for (int i = 0; i < nrun; i++) sub_free(&runs[i].r);
    free(base);
    return st;
}

/* ---- coarse to fine ---------------------------------------------------------------------------- */

rc_status rc_exp_coarse_fine(const char *base_cfg, const rc_exp_opts *o) {
    char *base = NULL;
    if (rc_mkdirs(o->out_dir) || base_text(base_cfg, o, &base)) return RC_ERR;
    char areas[RC_MAX_AREAS][32];
    int na = 0;
    rc_status st = RC_ERR;
    sub_result res[2];
    memset(res, 0, sizeof res);
    double *eb[4] = {NULL, NULL, NULL, NULL};
    rc_train_cfg tc = {0};
    static const char *loss_w[2] = {"every", "coarse-to-fine"};
    if (area_names(base, areas, &na)) goto done;
    for (int v = 0; v < 2; v++) {
        char sets[RC_MAX_AREAS + 2][96];
        const char *sp[RC_MAX_AREAS + 2];
        int ns = 0;
        for (int k = 0; k < na; k++) snprintf(sets[ns++], sizeof sets[0], "area.%.31s.tied=yes", areas[k]);
        snprintf(sets[ns++], sizeof sets[0], "model.loss=%s", loss_w[v]);
        for (int i = 0; i < ns; i++) sp[i] = sets[i];
        sp[ns] = NULL;
        char name[64];
        snprintf(name, sizeof name, "tied-%s", loss_w[v]);
        rc_model_cfg mc;
        if (run_cell(o, base, base_cfg, sp, name, &mc, &tc, &res[v])) goto done;
        if (!res[v].has_coarse) {
            rc_fail("coarse-fine: dataset %s has no coarse taxonomy", tc.data);
            goto done;
        }
    }
    int R = res[0].R;
    rc_strbuf md = {0};
    rc_table csv = {0}, tab = {0}; /* the CSV: a row per run and iteration; the Markdown: per run and measure */
    static const char *meas[2] = {"fine_accuracy", "coarse_accuracy"};
    csv_only(&csv, "run", NULL);
    csv_only(&csv, "loss", NULL);
    csv_only(&csv, "iteration", "%.0f");
    csv_only(&csv, "fine_accuracy", "%.4f");
    csv_only(&csv, "coarse_accuracy", "%.4f");
    seed_cols(&csv, o->seeds, meas, 2);
    rc_table_col(&tab, NULL, "run", NULL, RC_ALIGN_LEFT);
    rc_table_col(&tab, NULL, "measure", NULL, RC_ALIGN_LEFT);
    for (int t = 1; t <= R; t++) {
        char it[32];
        snprintf(it, sizeof it, "iter %d", t);
        rc_table_col(&tab, NULL, it, NULL, RC_ALIGN_RIGHT);
    }
    md_header(&md, "Coarse to fine: accuracy at every iteration", base_cfg, o, &tc);
    md_seeds_note(&md, o);
    rc_sb_printf(&md, "Fine (class) and coarse (taxonomy group) test accuracy (%%) of the readout after every "
                   "iteration. `coarse-to-fine` weights readout t's loss between the coarse term (early) and the "
                   "fine term (late); `every` uses the fine loss at every readout. Coarse prediction: the group "
                   "with the largest summed probability.\n\n");
    double xs[RC_MAX_READOUTS], ys[4][RC_MAX_READOUTS];
    char titles[4][96];
    rc_plot p;
    memset(&p, 0, sizeof p);
    for (int v = 0; v < 2; v++) {
        const sub_result *r = &res[v];
        for (int t = 0; t < R; t++) {
            rc_table_row(&csv);
            rc_table_text(&csv, "%s", r->name);
            rc_table_text(&csv, "%s", loss_w[v]);
            rc_table_num(&csv, t + 1);
            rc_table_num(&csv, r->acc[t]);
            rc_table_num(&csv, r->coarse[t]);
            seed_cells(&csv, r, t, 2);
            xs[t] = t + 1;
            ys[2 * v][t] = 100 * r->acc[t];
            ys[2 * v + 1][t] = 100 * r->coarse[t];
        }
        for (int c = 0; c < 2; c++) {
            rc_table_row(&tab);
            rc_table_text(&tab, "%s", r->name);
            rc_table_text(&tab, "%s", c ? "coarse" : "fine");
            for (int t = 0; t < R; t++) acc_cell(&tab, r, t, c);
            snprintf(titles[2 * v + c], sizeof titles[0], "%s accuracy, loss %s", c ? "coarse" : "fine", loss_w[v]);
            eb[2 * v + c] = err_bars(r, c);
            p.series[2 * v + c] =
                (rc_plot_series){titles[2 * v + c], R, xs, ys[2 * v + c], NULL, RC_PLOT_LINESPOINTS, 0, eb[2 * v + c]};
        }
    }
    p.nseries = 4;
    p.percent_y = 1;
    char title[200];
    snprintf(title, sizeof title, "Coarse and fine accuracy by iteration (%.60s, %d epoch%s)", tc.data, tc.epochs,
             tc.epochs == 1 ? "" : "s");
    p.title = title;
    p.xlabel = "iteration of the top area (readout)";
    p.ylabel = "test accuracy (%)";
    p.integer_x = 1;
    st = save_outputs(o, "coarse_fine", &csv, &md, &tab, &p);
done:
    for (int v = 0; v < 2; v++) sub_free(&res[v]);
    for (int v = 0; v < 4; v++) free(eb[v]);
    free(base);
    return st;
}

/* ---- evaluations of a trained run ------------------------------------------------------------- */

/* The run to evaluate: run_dir, or base_cfg (tied, loss every) trained as OUT/runs/tied-every; seed > 0:
 * with train.seed = seed, as OUT/runs/tied-every (seed 1) or OUT/runs/tied-every-seedK. */
static rc_status resolve_run_seed(const char *run_dir, const char *base_cfg, const rc_exp_opts *o, int seed,
                                  char *dir, size_t n) {
    if (run_dir) {
        snprintf(dir, n, "%s", run_dir);
        return RC_OK;
    }
    char *base = NULL;
    if (rc_mkdirs(o->out_dir) || base_text(base_cfg, o, &base)) return RC_ERR;
    char areas[RC_MAX_AREAS][32];
    int na = 0;
    rc_status st = RC_ERR;
    if (area_names(base, areas, &na)) goto done;
    char sets[RC_MAX_AREAS + 3][96];
    const char *sp[RC_MAX_AREAS + 3];
    int ns = 0;
    for (int k = 0; k < na; k++) snprintf(sets[ns++], sizeof sets[0], "area.%.31s.tied=yes", areas[k]);
    snprintf(sets[ns++], sizeof sets[0], "model.loss=every");
    for (int i = 0; i < ns; i++) sp[i] = sets[i];
    sp[ns] = sp[ns + 1] = NULL;
    char *text = NULL, name[48];
    if (seed > 1)
        snprintf(name, sizeof name, "tied-every-seed%d", seed);
    else
        snprintf(name, sizeof name, "tied-every");
    rc_model_cfg mc;
    rc_train_cfg tc;
    sub_result r;
    if (make_config(base, base_cfg, sp, name, o, &text, &mc, &tc)) goto done;
    if (seed > 0 && tc.seed != (uint64_t)seed) { /* seed 1 of a config whose seed is 1: the one-seed run */
        free(text);
        snprintf(sets[ns], sizeof sets[0], "train.seed=%d", seed);
        sp[ns] = sets[ns];
        if (make_config(base, base_cfg, sp, name, o, &text, &mc, &tc)) goto done;
    }
    st = run_sub(o, name, text, &mc, &tc, &r);
    free(text);
    snprintf(dir, n, "%s/runs/%s", o->out_dir, name);
done:
    free(base);
    return st;
}

static rc_status resolve_run(const char *run_dir, const char *base_cfg, const rc_exp_opts *o, char *dir, size_t n) {
    return resolve_run_seed(run_dir, base_cfg, o, 0, dir, n);
}

/* One seed's study of its own run (early-exit or more-iterations), writing into o->out_dir. */
typedef rc_status (*study_fn)(const char *run_dir, const char *base_cfg, int arg, const rc_exp_opts *o);

/* early-exit / more-iterations with o->seeds > 1: seed k's run (trained if needed) is studied into
 * OUT/seedK (its own CSV, Markdown and figure), then the CSVs are merged into OUT/STEM.csv: every column
 * of `vals` (comma-separated) becomes the mean over seeds, followed by V_std (sample, n - 1) columns,
 * seeds and V_seedK columns; the other columns must agree across seeds. *merged gets the merged table's
 * means and standard deviations: mean[v * rows + i], sd[v * rows + i] for data row i. */
static rc_status over_seeds(const char *stem, const char *base_cfg, int arg, const rc_exp_opts *o, study_fn one,
                            const char *vals, rc_table *t1, double **mean, double **sd) {
    int N = o->seeds;
    rc_table *tab = rc_xcalloc((size_t)N, sizeof(rc_table));
    rc_table csv = {0};
    rc_status st = RC_ERR;
    char dir[4096], sub[4096], path[4200];
    int vcol[16], nv = 0;
    *mean = *sd = NULL;
    for (int k = 1; k <= N; k++) {
        if (resolve_run_seed(NULL, base_cfg, o, k, dir, sizeof dir)) goto done;
        rc_exp_opts ok = *o;
        ok.seeds = 1;
        snprintf(sub, sizeof sub, "%s/seed%d", o->out_dir, k);
        ok.out_dir = sub;
        if (rc_mkdirs(sub) || one(dir, base_cfg, arg, &ok)) goto done;
        snprintf(path, sizeof path, "%s/%s.csv", sub, stem);
        if (rc_table_read_csv(path, &tab[k - 1])) goto done;
        if (tab[k - 1].nrows != tab[0].nrows || tab[k - 1].ncols != tab[0].ncols) {
            rc_fail("%s: %d rows, seed 1's has %d", path, tab[k - 1].nrows + 1, tab[0].nrows + 1);
            goto done;
        }
    }
    {
        char vl[256];
        snprintf(vl, sizeof vl, "%s", vals);
        char *save = NULL;
        for (char *v = strtok_r(vl, ",", &save); v && nv < 16; v = strtok_r(NULL, ",", &save)) {
            vcol[nv] = rc_table_find(&tab[0], v);
            if (vcol[nv] < 0) {
                rc_fail("%s/seed1/%s.csv has no column %s", o->out_dir, stem, v);
                goto done;
            }
            nv++;
        }
    }
    int rows = tab[0].nrows, C = tab[0].ncols;
    *mean = rc_xcalloc((size_t)nv * rows + 1, sizeof(double));
    *sd = rc_xcalloc((size_t)nv * rows + 1, sizeof(double));
    /* the columns: seed 1's (the values' means), V_std for every value, seeds, V_seedK */
    char name[160];
    for (int j = 0; j < C; j++) {
        int v = 0;
        while (v < nv && vcol[v] != j) v++;
        csv_only(&csv, tab[0].cols[j].csv, v < nv ? "%.4f" : NULL);
    }
    for (int v = 0; v < nv; v++) {
        snprintf(name, sizeof name, "%s_std", tab[0].cols[vcol[v]].csv);
        csv_only(&csv, name, "%.4f");
    }
    csv_only(&csv, "seeds", "%.0f");
    for (int v = 0; v < nv; v++)
        for (int k = 1; k <= N; k++) {
            snprintf(name, sizeof name, "%s_seed%d", tab[0].cols[vcol[v]].csv, k);
            csv_only(&csv, name, NULL);
        }
    for (int i = 0; i < rows; i++) {
        rc_table_row(&csv);
        for (int j = 0; j < C; j++) {
            const char *c0 = rc_table_get(&tab[0], i, j);
            int v = 0;
            while (v < nv && vcol[v] != j) v++;
            if (v == nv) { /* a key column: the same for every seed */
                for (int k = 1; k < N; k++)
                    if (strcmp(rc_table_get(&tab[k], i, j), c0)) {
                        rc_fail("%s: seed %d's row %d has %s = %s, seed 1's %s", stem, k + 1, i + 1,
                                tab[0].cols[j].csv, rc_table_get(&tab[k], i, j), c0);
                        goto done;
                    }
                rc_table_text(&csv, "%s", c0);
                continue;
            }
            if (!*c0) { /* an empty cell (no coarse accuracy): stays empty */
                rc_table_skip(&csv);
                continue;
            }
            double m = 0, ss = 0;
            for (int k = 0; k < N; k++) m += atof(rc_table_get(&tab[k], i, j)) / N;
            for (int k = 0; k < N; k++)
                ss += (atof(rc_table_get(&tab[k], i, j)) - m) * (atof(rc_table_get(&tab[k], i, j)) - m);
            (*mean)[v * rows + i] = m;
            (*sd)[v * rows + i] = sqrt(ss / (N - 1));
            rc_table_num(&csv, m);
        }
        for (int v = 0; v < nv; v++)
            if (*rc_table_get(&tab[0], i, vcol[v]))
                rc_table_num(&csv, (*sd)[v * rows + i]);
            else
                rc_table_skip(&csv);
        rc_table_num(&csv, N);
        for (int v = 0; v < nv; v++)
            for (int k = 0; k < N; k++) rc_table_text(&csv, "%s", rc_table_get(&tab[k], i, vcol[v]));
    }
    out_path(path, sizeof path, o, stem, "csv");
    if (rc_table_write_csv(&csv, path)) goto done;
    *t1 = tab[0];
    memset(&tab[0], 0, sizeof tab[0]);
    st = RC_OK;
done:
    for (int k = 0; k < N; k++) rc_table_free(&tab[k]);
    free(tab);
    rc_table_free(&csv);
    if (st) {
        free(*mean);
        free(*sd);
        *mean = *sd = NULL;
    }
    return st;
}

static rc_status load_run_model(const char *run_dir, int batch, int iters, rc_model *m, rc_train_cfg *tc) {
    char ckpt[4200];
    struct stat sb;
    if (stat(run_dir, &sb) != 0) return rc_fail("%s: %s", run_dir, strerror(errno));
    if (S_ISDIR(sb.st_mode))
        snprintf(ckpt, sizeof ckpt, "%s/model.ckpt", run_dir);
    else
        snprintf(ckpt, sizeof ckpt, "%s", run_dir);
    char *text = NULL;
    if (rc_checkpoint_read_config(ckpt, &text)) return RC_ERR;
    rc_ini *ini = NULL;
    rc_model_cfg mc;
    rc_status st = rc_ini_parse(text, strlen(text), ckpt, &ini);
    if (!st) st = rc_config_read(ini, "model", &mc, tc);
    rc_ini_free(ini);
    free(text);
    if (st) return RC_ERR;
    rc_model full;
    if (rc_model_build(&mc, batch, 0, &full)) return RC_ERR;
    if (rc_checkpoint_load(ckpt, &full.g, NULL)) {
        rc_model_free(&full);
        return RC_ERR;
    }
    if (iters <= 0) {
        *m = full;
        return RC_OK;
    }
    if (rc_model_build(&mc, batch, iters, m)) {
        rc_model_free(&full);
        return RC_ERR;
    }
    for (int p = 0; p < m->g.nparams; p++) {
        rc_param *dst = &m->g.params[p];
        int q = rc_graph_find_param(&full.g, dst->name);
        if (q < 0 || full.g.params[q].numel != dst->numel) {
            rc_fail("%s: param %s of the %d-iteration model is not in the checkpoint", ckpt, dst->name, iters);
            rc_model_free(&full);
            rc_model_free(m);
            return RC_ERR;
        }
        memcpy(dst->w, full.g.params[q].w, dst->numel * sizeof(float));
    }
    rc_model_free(&full);
    return RC_OK;
}

/* The run an early-exit or more-iterations study reads (run_dir, or the base config's tied-every run, trained
 * if needed) into dir, its model built for batch B unrolled iters steps (0: as trained) with its checkpoint
 * loaded, and the threads set (--threads, else the run's). */
static rc_status open_study(const char *run_dir, const char *base_cfg, int B, int iters, const rc_exp_opts *o,
                            char *dir, size_t n, rc_model *m, rc_train_cfg *tc) {
    if (rc_mkdirs(o->out_dir) || resolve_run(run_dir, base_cfg, o, dir, n)) return RC_ERR;
    if (o->threads > 0) rc_set_threads(o->threads);
    if (load_run_model(dir, B, iters, m, tc)) return RC_ERR;
    if (o->threads <= 0 && tc->threads > 0) rc_set_threads(tc->threads);
    return RC_OK;
}

/* How many test images the studies of a trained run evaluate (0: all). */
static int eval_limit(const rc_exp_opts *o) {
    if (o->eval_limit > 0) return o->eval_limit;
    return o->quick ? QUICK_TEST_IMAGES : 0;
}

/* --seeds N for early-exit and more-iterations: each seed studied into OUT/seedK, the CSVs merged (over_seeds),
 * then STEM.md (mean ± sd) and the figure with error bars. more = 1: more-iterations, 0: early-exit. */
static rc_status study_seeds(int more, const char *base_cfg, int arg, const rc_exp_opts *o) {
    const char *stem = more ? "more_iterations" : "early_exit";
    rc_table t;
    double *mean = NULL, *sd = NULL;
    if (over_seeds(stem, base_cfg, arg, o, more ? rc_exp_more_iterations : rc_exp_early_exit,
                   more ? "accuracy,coarse_accuracy,mflops" : "accuracy,mean_iterations,mean_mflops", &t, &mean, &sd))
        return RC_ERR;
    int rows = t.nrows, T = 0;
    rc_strbuf md = {0};
    rc_table tab = {0};
    rc_sb_printf(&md, "# %s\n\n", more ? "More iterations at test time" : "Early exit by confidence");
    md_seeds_note(&md, o);
    rc_sb_printf(&md, "The run of every seed was studied on its own (its table and figure: `%s/seedK/`); the base "
                      "config `%s`%s.\n\n",
                 o->out_dir, base_cfg, o->quick ? " (--quick: a smoke test, not a result)" : "");
    double *xs = rc_xcalloc((size_t)rows + 1, sizeof(double)), *ys = rc_xcalloc((size_t)rows + 1, sizeof(double));
    double *es = rc_xcalloc((size_t)rows + 1, sizeof(double));
    char(*lab)[24] = rc_xcalloc((size_t)rows + 1, sizeof *lab);
    const char **labp = rc_xcalloc((size_t)rows + 1, sizeof(char *));
    rc_plot p;
    memset(&p, 0, sizeof p);
    char title[200], vl[48];
    if (more) {
        int c_it = rc_table_find(&t, "iterations"), c_bt = rc_table_find(&t, "beyond_trained");
        rc_table_col(&tab, NULL, "T'", NULL, RC_ALIGN_RIGHT);
        rc_table_col(&tab, NULL, "accuracy %", NULL, RC_ALIGN_RIGHT);
        rc_table_col(&tab, NULL, "MFLOP/image", "%.2f", RC_ALIGN_RIGHT);
        for (int i = 0; i < rows; i++) {
            const char *it = rc_table_get(&t, i, c_it);
            T += !strcmp(rc_table_get(&t, i, c_bt), "no");
            rc_table_row(&tab);
            rc_table_text(&tab, "%s", it);
            rc_table_text(&tab, "%.2f ± %.2f", 100 * mean[i], 100 * sd[i]);
            rc_table_num(&tab, mean[2 * rows + i]);
            xs[i] = atof(it);
            ys[i] = 100 * mean[i];
            es[i] = 100 * sd[i];
        }
        snprintf(title, sizeof title, "Test-time depth: accuracy vs iterations (%d seeds, trained with T = %d)", o->seeds, T);
        snprintf(vl, sizeof vl, "trained T = %d", T);
        p.xlabel = "iterations T' unrolled at test time (every tied area)";
        p.integer_x = rows <= 30;
        p.vline_x = T;
        p.vline_label = vl;
        p.series[0] = (rc_plot_series){"last readout", rows, xs, ys, NULL, RC_PLOT_LINESPOINTS, 0, es};
        p.nseries = 1;
    } else {
        int c_kind = rc_table_find(&t, "kind"), c_th = rc_table_find(&t, "threshold");
        int c_it = rc_table_find(&t, "iteration");
        rc_table_col(&tab, NULL, "exit rule", NULL, RC_ALIGN_LEFT);
        rc_table_col(&tab, NULL, "accuracy %", NULL, RC_ALIGN_RIGHT);
        rc_table_col(&tab, NULL, "mean iterations", "%.2f", RC_ALIGN_RIGHT);
        rc_table_col(&tab, NULL, "mean MFLOP/image", NULL, RC_ALIGN_RIGHT);
        int nf = 0;
        for (int i = 0; i < rows; i++) nf += !strcmp(rc_table_get(&t, i, c_kind), "fixed");
        for (int i = 0; i < rows; i++) {
            int fixed = !strcmp(rc_table_get(&t, i, c_kind), "fixed");
            rc_table_row(&tab);
            if (fixed)
                rc_table_text(&tab, "always iteration %s", rc_table_get(&t, i, c_it));
            else
                rc_table_text(&tab, "P >= %g", atof(rc_table_get(&t, i, c_th)));
            rc_table_text(&tab, "%.2f ± %.2f", 100 * mean[i], 100 * sd[i]);
            rc_table_num(&tab, mean[rows + i]);
            rc_table_text(&tab, "%.2f ± %.2f", mean[2 * rows + i], sd[2 * rows + i]);
            xs[i] = mean[2 * rows + i];
            ys[i] = 100 * mean[i];
            es[i] = 100 * sd[i];
            if (fixed)
                snprintf(lab[i], sizeof lab[i], "t=%s", rc_table_get(&t, i, c_it));
            else
                snprintf(lab[i], sizeof lab[i], "%g", atof(rc_table_get(&t, i, c_th)));
            labp[i] = lab[i];
        }
        snprintf(title, sizeof title, "Early exit: accuracy vs mean compute (%d seeds)", o->seeds);
        p.xlabel = "mean forward MFLOP per image (mean over seeds)";
        p.series[0] = (rc_plot_series){"fixed depth: always readout t", nf, xs, ys, labp, RC_PLOT_LINESPOINTS, 0, es};
        p.series[1] = (rc_plot_series){"early exit at confidence >= P (labels: P)", rows - nf, xs + nf, ys + nf,
                                       labp + nf, RC_PLOT_LINESPOINTS, 0, es + nf};
        p.nseries = 2;
    }
    p.title = title;
    p.ylabel = "test accuracy (%)";
    p.percent_y = 1;
    char path[4200];
    out_path(path, sizeof path, o, stem, "md");
    rc_status st = rc_table_write_md(&tab, md.buf, path);
    if (!st) st = figure(o, stem, &p);
    if (!st) say(o, "wrote %s/%s.csv and %s.md (mean over %d seeds)", o->out_dir, stem, stem, o->seeds);
    free(md.buf);
    rc_table_free(&tab);
    free(xs);
    free(ys);
    free(es);
    free(lab);
    free(labp);
    free(mean);
    free(sd);
    rc_table_free(&t);
    return st;
}

rc_status rc_exp_early_exit(const char *run_dir, const char *base_cfg, int iterations, const rc_exp_opts *o) {
    if (!run_dir && o->seeds > 1) return study_seeds(0, base_cfg, iterations, o);
    char dir[4096];
    rc_model m;
    rc_train_cfg tc;
    const int B = 200;
    if (open_study(run_dir, base_cfg, B, iterations, o, dir, sizeof dir, &m, &tc)) return RC_ERR;
    rc_dataset test;
    const char *spec = o->data ? o->data : tc.data;
    if (rc_dataset_load_eval(spec, 0, eval_limit(o), &test)) {
        rc_model_free(&m);
        return RC_ERR;
    }
    rc_status st = RC_ERR;
    int R = m.nreadouts, K = m.cfg.classes, N = test.n;
    double *conf = rc_xmalloc((size_t)N * R * sizeof(double));
    char *right = rc_xmalloc((size_t)N * R);
    double *rflops = rc_xmalloc((size_t)R * sizeof(double));
    int *idx = rc_xmalloc(B * sizeof(int)), *y = rc_xmalloc(B * sizeof(int));
    rc_model_readout_flops(&m, rflops);
    if (rc_dataset_check_shape(&test, m.cfg.in_c, m.cfg.in_h, m.cfg.in_w, -1)) goto done;
    if (test.classes > K) {
        rc_fail("dataset %s has %d classes, the model has %d", spec, test.classes, K);
        goto done;
    }
    /* one pass: every readout's top class and its softmax probability, per image */
    for (int start = 0; start < N; start += B) {
        int nb = RC_MIN(B, N - start);
        for (int i = 0; i < B; i++) idx[i] = start + (i < nb ? i : 0);
        rc_dataset_batch(&test, idx, B, NULL, NULL, m.g.tensors[m.input].x, y);
        rc_graph_forward(&m.g, 0);
        for (int t = 0; t < R; t++) {
            const float *lg = m.g.tensors[m.readout[t]].x;
            for (int i = 0; i < nb; i++) {
                const float *l = lg + (size_t)i * K;
                int arg = 0;
                for (int j = 1; j < K; j++)
                    if (l[j] > l[arg]) arg = j;
                double s = 0;
                for (int j = 0; j < K; j++) s += exp((double)l[j] - (double)l[arg]);
                conf[(size_t)(start + i) * R + t] = 1.0 / s;
                right[(size_t)(start + i) * R + t] = arg == y[i];
            }
        }
    }
    static const double P[] = {0.3, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99, 0.995, 0.999, 0.9999};
    enum { NP = sizeof P / sizeof P[0] };
    double ex_acc[NP], ex_it[NP], ex_fl[NP], fx_acc[RC_MAX_READOUTS];
    for (int k = 0; k < NP; k++) {
        long corr = 0;
        double its = 0, fl = 0;
        for (int i = 0; i < N; i++) {
            int t = 0;
            while (t < R - 1 && conf[(size_t)i * R + t] < P[k]) t++;
            corr += right[(size_t)i * R + t];
            its += t + 1;
            fl += rflops[t];
        }
        ex_acc[k] = (double)corr / N;
        ex_it[k] = its / N;
        ex_fl[k] = fl / N;
    }
    for (int t = 0; t < R; t++) {
        long corr = 0;
        for (int i = 0; i < N; i++) corr += right[(size_t)i * R + t];
        fx_acc[t] = (double)corr / N;
    }
    rc_strbuf md = {0};
    rc_table csv = {0}; /* one table: some columns in one of the CSV and the Markdown only */
    csv_only(&csv, "kind", NULL);
    csv_only(&csv, "threshold", "%.4f");
    csv_only(&csv, "iteration", "%.0f");
    rc_table_col(&csv, NULL, "exit rule", NULL, RC_ALIGN_LEFT);
    csv_only(&csv, "accuracy", "%.4f");
    rc_table_col(&csv, NULL, "accuracy %", "%.2f", RC_ALIGN_RIGHT);
    csv_only(&csv, "mean_iterations", "%.4f");
    rc_table_col(&csv, NULL, "mean iterations", "%.2f", RC_ALIGN_RIGHT);
    csv_only(&csv, "mean_mflops", "%.4f");
    rc_table_col(&csv, NULL, "mean MFLOP/image", "%.2f", RC_ALIGN_RIGHT);
    for (int t = 0; t < R; t++) {
        rc_table_row(&csv);
        rc_table_text(&csv, "fixed");
        rc_table_skip(&csv);
        rc_table_num(&csv, t + 1);
        rc_table_text(&csv, "always iteration %d", t + 1);
        rc_table_num(&csv, fx_acc[t]);
        rc_table_num(&csv, 100 * fx_acc[t]);
        rc_table_text(&csv, "%d", t + 1);
        rc_table_text(&csv, "%d", t + 1);
        rc_table_num(&csv, rflops[t] / 1e6);
        rc_table_num(&csv, rflops[t] / 1e6);
    }
    for (int k = 0; k < NP; k++) {
        rc_table_row(&csv);
        rc_table_text(&csv, "exit");
        rc_table_num(&csv, P[k]);
        rc_table_skip(&csv);
        rc_table_text(&csv, "P >= %g", P[k]);
        rc_table_num(&csv, ex_acc[k]);
        rc_table_num(&csv, 100 * ex_acc[k]);
        rc_table_num(&csv, ex_it[k]);
        rc_table_num(&csv, ex_it[k]);
        rc_table_num(&csv, ex_fl[k] / 1e6);
        rc_table_num(&csv, ex_fl[k] / 1e6);
    }
    rc_sb_printf(&md, "# Early exit by confidence\n\nRun `%s` (%s, %d readouts%s), %d test images of `%s`%s. An image "
                   "leaves at the first readout whose top softmax probability is >= P (else at the last); compute "
                   "is the forward FLOPs that readout depends on, averaged over images.\n\n",
              dir, m.cfg.name, R, iterations > 0 ? ", unrolled with --iterations" : "", N, spec,
              o->quick ? " (--quick: a smoke test, not a result)" : "");
    double fxx[RC_MAX_READOUTS], fxy[RC_MAX_READOUTS], exx[NP], exy[NP];
    char fl_lab[RC_MAX_READOUTS][16], ex_lab[NP][16];
    const char *fl_p[RC_MAX_READOUTS], *ex_p[NP];
    for (int t = 0; t < R; t++) {
        fxx[t] = rflops[t] / 1e6;
        fxy[t] = 100 * fx_acc[t];
        snprintf(fl_lab[t], sizeof fl_lab[t], "t=%d", t + 1);
        fl_p[t] = fl_lab[t];
    }
    int ne = 0;
    for (int k = 0; k < NP; k++) {
        if (ne > 0 && exx[ne - 1] == ex_fl[k] / 1e6 && exy[ne - 1] == 100 * ex_acc[k]) continue; /* same point */
        exx[ne] = ex_fl[k] / 1e6;
        exy[ne] = 100 * ex_acc[k];
        snprintf(ex_lab[ne], sizeof ex_lab[ne], "%g", P[k]);
        ex_p[ne] = ex_lab[ne];
        ne++;
    }
    /* label only points that stand apart along x (the high thresholds crowd near full compute) */
    double last_x = -1e300, span = fxx[R - 1] - fxx[0] > 0 ? fxx[R - 1] - fxx[0] : 1;
    for (int k = 0; k < ne; k++) {
        if (fabs(exx[k] - last_x) < 0.09 * span)
            ex_p[k] = "";
        else
            last_x = exx[k];
    }
    rc_plot p;
    memset(&p, 0, sizeof p);
    char title[200];
    snprintf(title, sizeof title, "Early exit: accuracy vs mean compute (%s, %d test images)", m.cfg.name, N);
    p.title = title;
    p.xlabel = "mean forward MFLOP per image";
    p.ylabel = "test accuracy (%)";
    p.series[0] = (rc_plot_series){"fixed depth: always readout t", R, fxx, fxy, fl_p, RC_PLOT_LINESPOINTS, 0, NULL};
    p.series[1] =
        (rc_plot_series){"early exit at confidence >= P (labels: P)", ne, exx, exy, ex_p, RC_PLOT_LINESPOINTS, 0, NULL};
    p.percent_y = 1;
    p.nseries = 2;
    st = save_outputs(o, "early_exit", &csv, &md, NULL, &p);
done:
    free(conf);
    free(right);
    free(rflops);
    free(idx);
    free(y);
    rc_model_free(&m);
    rc_dataset_free(&test);
    return st;
}

rc_status rc_exp_more_iterations(const char *run_dir, const char *base_cfg, int max_iters, const rc_exp_opts *o) {
    if (!run_dir && o->seeds > 1) return study_seeds(1, base_cfg, max_iters, o);
    char dir[4096];
    rc_model m;
    rc_train_cfg tc;
    const int B = 200;
    if (open_study(run_dir, base_cfg, B, 0, o, dir, sizeof dir, &m, &tc)) return RC_ERR;
    rc_model_cfg mc = m.cfg;
    rc_model_free(&m);
    for (int k = 0; k < mc.nareas; k++)
        if (!mc.areas[k].tied)
            return rc_fail("%s: area %s is untied; more iterations at test time need every area tied", dir,
                           mc.areas[k].name);
    int T = mc.areas[mc.nareas - 1].iterations;
    if (max_iters <= 0) max_iters = 3 * T;
    if (max_iters > RC_MAX_ITERS) return rc_fail("--iterations %d is out of range 1..%d", max_iters, RC_MAX_ITERS);
    rc_dataset test;
    const char *spec = o->data ? o->data : tc.data;
    if (rc_dataset_load_eval(spec, 0, eval_limit(o), &test)) return RC_ERR;
    rc_status st = RC_ERR;
    double *acc = rc_xcalloc((size_t)max_iters, sizeof(double)), *cacc = rc_xcalloc((size_t)max_iters, sizeof(double));
    double *mfl = rc_xcalloc((size_t)max_iters, sizeof(double)), *xs = rc_xcalloc((size_t)max_iters, sizeof(double));
    double *ys = rc_xcalloc((size_t)max_iters, sizeof(double));
    int has_coarse = 0;
    for (int it = 1; it <= max_iters; it++) {
        if (load_run_model(dir, B, it, &m, &tc)) goto done;
        rc_eval_result r;
        rc_status es = rc_evaluate(&m, &test, 0, &r);
        double *rf = rc_xmalloc((size_t)m.nreadouts * sizeof(double));
        rc_model_readout_flops(&m, rf);
        mfl[it - 1] = rf[m.nreadouts - 1] / 1e6;
        free(rf);
        rc_model_free(&m);
        if (es) goto done;
        acc[it - 1] = rc_eval_accuracy(&r, r.nreadouts - 1);
        cacc[it - 1] = rc_eval_coarse_accuracy(&r, r.nreadouts - 1);
        has_coarse = r.has_coarse;
        xs[it - 1] = it;
        ys[it - 1] = 100 * acc[it - 1];
        say(o, "%s with %d iteration%s: %.2f%%", dir, it, it > 1 ? "s" : "", 100 * acc[it - 1]);
    }
    rc_strbuf md = {0};
    rc_table csv = {0}; /* one table: some columns in one of the CSV and the Markdown only */
    csv_only(&csv, "iterations", "%.0f");
    rc_table_col(&csv, NULL, "T'", NULL, RC_ALIGN_RIGHT);
    csv_only(&csv, "beyond_trained", NULL);
    csv_only(&csv, "accuracy", "%.4f");
    rc_table_col(&csv, NULL, "accuracy %", "%.2f", RC_ALIGN_RIGHT);
    csv_only(&csv, "coarse_accuracy", "%.4f"); /* empty without a taxonomy */
    if (has_coarse) rc_table_col(&csv, NULL, "coarse %", "%.2f", RC_ALIGN_RIGHT);
    csv_only(&csv, "mflops", "%.4f");
    rc_table_col(&csv, NULL, "MFLOP/image", "%.2f", RC_ALIGN_RIGHT);
    rc_sb_printf(&md, "# More iterations at test time\n\nRun `%s` (%s, trained with T = %d), %d test images of `%s`%s. "
                   "Every tied area is unrolled T' steps (steps past T reuse step T's per-iteration batch norm); "
                   "accuracy of the last readout.\n\n",
              dir, mc.name, T, test.n, spec, o->quick ? " (--quick: a smoke test, not a result)" : "");
    for (int i = 0; i < max_iters; i++) {
        rc_table_row(&csv);
        rc_table_num(&csv, i + 1);
        rc_table_text(&csv, "%d%s", i + 1, i + 1 == T ? " (trained)" : "");
        rc_table_text(&csv, "%s", i + 1 > T ? "yes" : "no");
        rc_table_num(&csv, acc[i]);
        rc_table_num(&csv, 100 * acc[i]);
        if (has_coarse) {
            rc_table_num(&csv, cacc[i]);
            rc_table_num(&csv, 100 * cacc[i]);
        } else {
            rc_table_skip(&csv);
        }
        rc_table_num(&csv, mfl[i]);
        rc_table_num(&csv, mfl[i]);
    }
    rc_plot p;
    memset(&p, 0, sizeof p);
    char title[200], vl[64];
    snprintf(title, sizeof title, "Test-time depth: accuracy vs iterations (%s, trained with T = %d)", mc.name, T);
    snprintf(vl, sizeof vl, "trained T = %d", T);
    p.title = title;
    p.xlabel = "iterations T' unrolled at test time (every tied area)";
    p.ylabel = "test accuracy (%)";
    p.integer_x = max_iters <= 30;
    p.vline_x = T;
    p.vline_label = vl;
    p.series[0] = (rc_plot_series){"last readout", max_iters, xs, ys, NULL, RC_PLOT_LINESPOINTS, 0, NULL};
    p.percent_y = 1;
    p.nseries = 1;
    st = save_outputs(o, "more_iterations", &csv, &md, NULL, &p);
done:
    free(acc);
    free(cacc);
    free(mfl);
    free(xs);
    free(ys);
    rc_dataset_free(&test);
    return st;
}

/* ---- extrapolation: thinking longer on larger problems ----------------------------------------------- */

#define EXP_ALPHA "0.5"
#define EXTRA_SIZES 3

/* The training size of a task spec "KIND:N[:M]" and the test sizes the experiment evaluates. */
static rc_status extrapolate_sizes(const char *spec, const char *task, int sizes[EXTRA_SIZES], char *kind, size_t nk) {
    const char *c = strchr(spec, ':');
    if (!c || strncmp(spec, task, (size_t)(c - spec)) || strlen(task) != (size_t)(c - spec))
        return rc_fail("extrapolate --task %s: the config's train.data is '%s', not a %s:SIZE spec", task, spec, task);
    int n = atoi(c + 1);
    if (n < 3) return rc_fail("extrapolate: cannot read the training size in '%s'", spec);
    snprintf(kind, nk, "%s", task);
    sizes[0] = n;
    if (!strcmp(task, "mazes")) {
        sizes[1] = n + 4;
        sizes[2] = 2 * n + 1;
    } else {
        sizes[1] = n + n / 2;
        sizes[2] = 2 * n;
    }
    return RC_OK;
}

/* Sample sd (n - 1) over n seeds of element q of arrays laid out [seed][stride]; 0 for one seed. */
static double xsd(const double *seeds, const double *mean, size_t q, int n, size_t stride) {
    if (n < 2) return 0;
    double ss = 0;
    for (int k = 0; k < n; k++) ss += (seeds[k * stride + q] - mean[q]) * (seeds[k * stride + q] - mean[q]);
    return sqrt(ss / (n - 1));
}

rc_status rc_exp_extrapolate(const char *base_cfg, const char *task, int max_iters, const rc_exp_opts *o) {
    char *base = NULL;
    if (rc_mkdirs(o->out_dir) || base_text(base_cfg, o, &base)) return RC_ERR;
    char areas[RC_MAX_AREAS][32];
    int na = 0;
    rc_status st = RC_ERR;
    enum { NV = 4 };
    static const char *names[NV] = {"recall-progressive", "no-recall", "recall-final", "feedforward"};
    static const char *what[NV] = {"tied, recall, progressive loss", "tied, no recall, progressive loss",
                                   "tied, recall, loss on the last readout", "untied (feedforward), recall, loss final"};
    sub_result res[NV];
    rc_model_cfg mcs[NV];
    rc_train_cfg tc = {0};
    double *solved = NULL, *posacc = NULL; /* [v][size][iteration]: the mean over seeds */
    double *seed_sv = NULL, *seed_pv = NULL; /* [seed][v][size][iteration] */
    const int N = o->seeds > 1 ? o->seeds : 1;
    memset(res, 0, sizeof res);
    int sizes[EXTRA_SIZES] = {0, 0, 0}, T = 0, I = 0;
    char kind[32];
    rc_dataset test = {0};
    if (area_names(base, areas, &na)) goto done;
    if (na != 1) {
        rc_fail("extrapolate: the base config has %d areas; it needs one (the recurrent block)", na);
        goto done;
    }
    /* --quick: a smoke test of seconds (the generic quick settings would train 4096 examples) */
    rc_exp_opts oq = *o;
    oq.quick = 0;
    for (int v = 0; v < NV; v++) {
        char sets[16][96];
        const char *sp[17];
        int ns = 0;
        if (o->quick) {
            snprintf(sets[ns++], sizeof sets[0], "train.limit=512");
            snprintf(sets[ns++], sizeof sets[0], "train.epochs=1");
            snprintf(sets[ns++], sizeof sets[0], "train.batch=32");
            snprintf(sets[ns++], sizeof sets[0], "train.warmup_epochs=0.1");
            snprintf(sets[ns++], sizeof sets[0], "area.%.31s.channels=8", areas[0]);
            snprintf(sets[ns++], sizeof sets[0], "area.%.31s.iterations=4", areas[0]);
            snprintf(sets[ns++], sizeof sets[0], "model.head_channels=8");
        }
        snprintf(sets[ns++], sizeof sets[0], "area.%.31s.tied=%s", areas[0], v == 3 ? "no" : "yes");
        snprintf(sets[ns++], sizeof sets[0], "model.recall=%s", v == 1 ? "no" : "yes");
        snprintf(sets[ns++], sizeof sets[0], "area.%.31s.bottomup=%s", areas[0], v == 1 ? "first" : "every");
        snprintf(sets[ns++], sizeof sets[0], "model.loss=%s", v < 2 ? "progressive" : "final");
        if (v < 2) snprintf(sets[ns++], sizeof sets[0], "model.alpha=" EXP_ALPHA);
        for (int i = 0; i < ns; i++) sp[i] = sets[i];
        sp[ns] = NULL;
        if (run_cell(&oq, base, base_cfg, sp, names[v], &mcs[v], &tc, &res[v])) goto done;
    }
    if (extrapolate_sizes(tc.data, task, sizes, kind, sizeof kind)) goto done;
    T = mcs[0].areas[0].iterations;
    I = max_iters > 0 ? max_iters : (o->quick ? 2 * T : 4 * T);
    if (I > RC_MAX_READOUTS) I = RC_MAX_READOUTS;
    solved = rc_xcalloc((size_t)NV * EXTRA_SIZES * I, sizeof(double));
    posacc = rc_xcalloc((size_t)NV * EXTRA_SIZES * I, sizeof(double));
    seed_sv = rc_xcalloc((size_t)N * NV * EXTRA_SIZES * I, sizeof(double));
    seed_pv = rc_xcalloc((size_t)N * NV * EXTRA_SIZES * I, sizeof(double));
    if (o->threads > 0) rc_set_threads(o->threads);
    int limit = o->eval_limit > 0 ? o->eval_limit : o->quick ? 100 : 0;
    for (int s = 0; s < EXTRA_SIZES; s++) {
        char spec[96];
        snprintf(spec, sizeof spec, "%s:%d:%d", kind, sizes[0], sizes[s]);
        if (rc_dataset_load_eval(spec, 0, limit, &test)) goto done;
        for (int v = 0; v < NV; v++)
        for (int k = 0; k < N; k++) {
            rc_model_cfg mc = mcs[v];
            mc.in_h = test.h;
            mc.in_w = test.w;
            char ckpt[4200];
            if (k == 0)
                snprintf(ckpt, sizeof ckpt, "%s/runs/%s/model.ckpt", o->out_dir, names[v]);
            else
                snprintf(ckpt, sizeof ckpt, "%s/runs/%s-seed%d/model.ckpt", o->out_dir, names[v], k + 1);
            rc_eval_result r;
            int n_it = I;
            if (mc.areas[0].tied) {
                if (rc_evaluate_stepwise(&mc, ckpt, &test, 100, I, &r)) goto done;
            } else { /* a feedforward net has its T readouts only */
                rc_model m;
                if (rc_model_build(&mc, 100, 0, &m)) goto done;
                rc_status es = rc_checkpoint_load(ckpt, &m.g, NULL);
                if (!es) es = rc_evaluate(&m, &test, 0, &r);
                rc_model_free(&m);
                if (es) goto done;
                n_it = RC_MIN(I, r.nreadouts);
            }
            for (int t = 0; t < I; t++) {
                size_t q = ((size_t)v * EXTRA_SIZES + s) * I + t, qk = (size_t)k * NV * EXTRA_SIZES * I + q;
                seed_sv[qk] = t < n_it ? rc_eval_accuracy(&r, t) : NAN;
                seed_pv[qk] = t < n_it ? rc_eval_position_accuracy(&r, t) : NAN;
                solved[q] += seed_sv[qk] / N;
                posacc[q] += seed_pv[qk] / N;
            }
            size_t q0 = (size_t)k * NV * EXTRA_SIZES * I + ((size_t)v * EXTRA_SIZES + s) * I;
            char who[96];
            if (N > 1)
                snprintf(who, sizeof who, "%s (seed %d)", names[v], k + 1);
            else
                snprintf(who, sizeof who, "%s", names[v]);
            say(o, "%s on %s: solved %.2f%% at the trained %d iterations, %.2f%% at %d", who, spec,
                100 * seed_sv[q0 + T - 1], T, 100 * seed_sv[q0 + n_it - 1], n_it);
        }
        rc_dataset_free(&test);
    }
    rc_strbuf md = {0};
    rc_table csv = {0}, tab = {0}; /* the CSV: a row per run, size and iteration; the Markdown: per run and size */
    /* sample sd over seeds of [v][size][iteration] q (0 for one seed) */
#define XSD(arr, mean, q) xsd(arr, mean, q, N, (size_t)NV * EXTRA_SIZES * I)
    static const char *meas[2] = {"solved", "position_accuracy"};
    csv_only(&csv, "run", NULL);
    csv_only(&csv, "test_size", "%.0f");
    csv_only(&csv, "iteration", "%.0f");
    csv_only(&csv, "solved", "%.4f");
    csv_only(&csv, "position_accuracy", "%.4f");
    seed_cols(&csv, N, meas, 2);
    {
        char at_t[64], at_i[64];
        snprintf(at_t, sizeof at_t, "solved at T = %d %%", T);
        snprintf(at_i, sizeof at_i, "solved at %d %%", I);
        rc_table_col(&tab, NULL, "run", NULL, RC_ALIGN_LEFT);
        rc_table_col(&tab, NULL, "what", NULL, RC_ALIGN_LEFT);
        rc_table_col(&tab, NULL, "params", "%.0f", RC_ALIGN_RIGHT);
        rc_table_col(&tab, NULL, "test size", "%.0f", RC_ALIGN_RIGHT);
        rc_table_col(&tab, NULL, at_t, NULL, RC_ALIGN_RIGHT);
        rc_table_col(&tab, NULL, "positions at T %", NULL, RC_ALIGN_RIGHT);
        rc_table_col(&tab, NULL, "best solved % (iteration)", NULL, RC_ALIGN_RIGHT);
        rc_table_col(&tab, NULL, at_i, NULL, RC_ALIGN_RIGHT);
    }
    md_header(&md, "Thinking longer: extrapolation to larger problems", base_cfg, o, &tc);
    md_seeds_note(&md, o);
    rc_sb_printf(&md, "Trained on `%s` with T = %d iterations; evaluated on %s of sizes %d, %d and %d with 1..%d "
                   "iterations (tied runs step by step, the feedforward twin at its %d layers). Solved = every "
                   "position right (maze walls excluded). Progressive loss: alpha = " EXP_ALPHA ".\n\n",
              tc.data, T, kind, sizes[0], sizes[1], sizes[2], I, T);
    for (int v = 0; v < NV; v++)
        for (int s = 0; s < EXTRA_SIZES; s++) {
            const double *sv = solved + ((size_t)v * EXTRA_SIZES + s) * I;
            const double *pv = posacc + ((size_t)v * EXTRA_SIZES + s) * I;
            int best = 0, last = 0;
            for (int t = 0; t < I; t++) {
                if (isnan(sv[t])) continue;
                rc_table_row(&csv);
                rc_table_text(&csv, "%s", names[v]);
                rc_table_num(&csv, sizes[s]);
                rc_table_num(&csv, t + 1);
                rc_table_num(&csv, sv[t]);
                rc_table_num(&csv, pv[t]);
                if (N > 1) {
                    size_t q = ((size_t)v * EXTRA_SIZES + s) * I + t;
                    rc_table_num(&csv, XSD(seed_sv, solved, q));
                    rc_table_num(&csv, XSD(seed_pv, posacc, q));
                    rc_table_num(&csv, N);
                    for (int m = 0; m < 2; m++)
                        for (int k = 0; k < N; k++)
                            rc_table_num(&csv, (m ? seed_pv : seed_sv)[(size_t)k * NV * EXTRA_SIZES * I + q]);
                }
                if (sv[t] > sv[best]) best = t;
                last = t;
            }
            size_t q = ((size_t)v * EXTRA_SIZES + s) * I;
            rc_table_row(&tab);
            rc_table_text(&tab, "%s", names[v]);
            rc_table_text(&tab, "%s", what[v]);
            rc_table_num(&tab, (double)res[v].nb.params);
            rc_table_num(&tab, sizes[s]);
            const int at[4] = {T - 1, T - 1, best, last}; /* solved at T, positions at T, best, at I */
            for (int c = 0; c < 4; c++) {
                double mv = 100 * (c == 1 ? pv : sv)[at[c]];
                double sdv = 100 * (c == 1 ? XSD(seed_pv, posacc, q + at[c]) : XSD(seed_sv, solved, q + at[c]));
                char cell[96];
                int n = snprintf(cell, sizeof cell, "%.2f", mv);
                if (N > 1) n += snprintf(cell + n, sizeof cell - (size_t)n, " ± %.2f", sdv);
                if (c == 2) snprintf(cell + n, sizeof cell - (size_t)n, " (%d)", best + 1);
                rc_table_text(&tab, "%s", cell);
            }
        }
    st = save_outputs(o, "extrapolate", &csv, &md, &tab, NULL);
    for (int s = 0; s < EXTRA_SIZES && !st; s++) {
        rc_plot p;
        memset(&p, 0, sizeof p);
        double *xs = rc_xmalloc((size_t)I * sizeof(double)), *ys = rc_xmalloc((size_t)NV * I * sizeof(double));
        double *es = rc_xmalloc((size_t)NV * I * sizeof(double));
        for (int t = 0; t < I; t++) xs[t] = t + 1;
        for (int v = 0; v < NV; v++) {
            int n = 0;
            for (int t = 0; t < I; t++) {
                double q = solved[((size_t)v * EXTRA_SIZES + s) * I + t];
                if (isnan(q)) continue;
                es[(size_t)v * I + n] = 100 * XSD(seed_sv, solved, ((size_t)v * EXTRA_SIZES + s) * I + t);
                ys[(size_t)v * I + n++] = 100 * q;
            }
            p.series[v] = (rc_plot_series){names[v], n, xs, ys + (size_t)v * I, NULL, RC_PLOT_LINES, 0,
                                           N > 1 ? es + (size_t)v * I : NULL};
        }
        p.nseries = NV;
        char title[160], fig[64], vl[48];
        snprintf(title, sizeof title, "%s: trained on size %d, tested on size %d", kind, sizes[0], sizes[s]);
        snprintf(vl, sizeof vl, "trained T = %d", T);
        snprintf(fig, sizeof fig, "extrapolate_%d", sizes[s]);
        p.title = title;
        p.xlabel = "test-time iterations";
        p.ylabel = "solved (%)";
        p.percent_y = 1;
        p.vline_x = T;
        p.vline_label = vl;
        st = figure(o, fig, &p);
        free(xs);
        free(ys);
        free(es);
    }
#undef XSD
done:
    for (int v = 0; v < NV; v++) sub_free(&res[v]);
    free(base);
    free(solved);
    free(posacc);
    free(seed_sv);
    free(seed_pv);
    rc_dataset_free(&test);
    return st;
}
