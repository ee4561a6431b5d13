/* cmd_features.c — `recur features RUN_DIR|CKPT --area NAME|all --out DIR`: an area's state h_k(t) at every
 * iteration for every image, as NumPy arrays (pooled over height and width, and with --full whole), plus
 * the labels and image indices; streamed batch by batch, each file written atomically. */
#include <string.h>

#include "cli.h"
#include "io/checkpoint.h"
#include "io/dataset.h"
#include "io/files.h"
#include "io/npy.h"
#include "train/eval.h"

static const char *help =
    "usage: recur features RUN_DIR|CKPT --area NAME|all --out DIR [options]\n"
    "\n"
    "The state h_k(t) of area k after every iteration t, for every image of the test split (in order),\n"
    "with the batch-norm running statistics, written as NumPy arrays into DIR:\n"
    "  NAME_pooled.npy   float32 (images, iterations, channels): the state averaged over height and width\n"
    "  NAME_full.npy     float32 (images, iterations, channels, height, width), with --full\n"
    "  labels.npy        int64 (images,): each image's label\n"
    "  index.npy         int64 (images,): each image's index in the split\n"
    "Memory stays bounded by one batch; each file appears only when complete.\n"
    "\n"
    "options:\n"
    "  --area NAME|all      the area (as named in the config), or every area\n"
    "  --out DIR            output directory (created if missing)\n"
    "  --full               also write the whole states (large: channels x height x width per step)\n"
    "  --split test|train   which split (default test; normalised with the training statistics either way)\n"
    "  --data SPEC          dataset (default: the one the run was trained on)\n"
    "  --iterations T       unroll tied areas T steps (more than trained: test-time depth)\n"
    "  --limit N            the first N images only\n"
    "  --batch N            images per forward pass (default 100)   --threads N\n";

typedef struct {
    int nsel, sel[RC_MAX_AREAS];                 /* chosen areas */
    rc_npy_writer pooled[RC_MAX_AREAS], full[RC_MAX_AREAS], labels, index;
    int want_full;
    float *state; /* one step of one area for the batch: B x C x H x W (the largest) */
    float *rows;  /* one area for the batch, image-major: B x T x C (pooled) or B x T x C x H x W (full) */
} feat_sink;

/* Each chosen area: read its kept states step by step, reorder image-major, append to the files. */
static rc_status save_features(void *ctx, const rc_model *m, long first, int n, const int *labels) {
    feat_sink *fs = ctx;
    for (int i = 0; i < n; i++) {
        int64_t v[2] = {labels[i], first + i};
        if (rc_npy_write(&fs->labels, &v[0], 8) || rc_npy_write(&fs->index, &v[1], 8)) return RC_ERR;
    }
    for (int s = 0; s < fs->nsel; s++) {
        const int k = fs->sel[s], T = m->area_steps[k];
        const rc_tensor *x = &m->g.tensors[m->area_state[k][0]];
        const size_t C = (size_t)x->c, hw = (size_t)x->h * x->w, chw = C * hw;
        for (int pass = 0; pass < 1 + fs->want_full; pass++) {
            const size_t per = pass ? chw : C; /* floats per image and step */
            for (int t = 0; t < T; t++) {
                rc_graph_read(&m->g, m->area_state[k][t], 0, fs->state);
                for (int i = 0; i < n; i++) {
                    const float *src = fs->state + (size_t)i * chw;
                    float *dst = fs->rows + ((size_t)i * T + t) * per;
                    if (pass) {
                        memcpy(dst, src, chw * sizeof(float));
                        continue;
                    }
                    for (size_t c = 0; c < C; c++) {
                        double sum = 0;
                        for (size_t p = 0; p < hw; p++) sum += src[c * hw + p];
                        dst[c] = (float)(sum / (double)hw);
                    }
                }
            }
            if (rc_npy_write(pass ? &fs->full[k] : &fs->pooled[k], fs->rows, (size_t)n * T * per * sizeof(float)))
                return RC_ERR;
        }
    }
    return RC_OK;
}

static rc_status open_npy(rc_npy_writer *w, const char *dir, const char *name, const char *suffix, const char *descr,
                          int ndim, const int64_t *shape) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s%s", dir, name, suffix);
    return rc_npy_open(w, path, descr, ndim, shape);
}

int rc_cmd_features(int argc, char **argv) {
    const char *run = NULL, *data = NULL, *area = NULL, *out = NULL, *split = "test";
    long iters = 0, limit = 0, batch = 100, threads = 0;
    int full = 0;
    const rc_cli_opt opts[] = {RC_OPT_STR("--area", &area, NULL),
                               RC_OPT_STR("--out", &out, NULL),
                               RC_OPT_FLAG("--full", &full),
                               RC_OPT_STR("--split", &split, NULL),
                               RC_OPT_STR("--data", &data, NULL),
                               RC_OPT_INT("--iterations", &iters, 1, RC_MAX_ITERS),
                               RC_OPT_INT("--limit", &limit, 1, 100000000),
                               RC_OPT_INT("--batch", &batch, 1, 65536),
                               RC_OPT_INT("--threads", &threads, 1, 256),
                               RC_OPT_END};
    int rc = rc_cli_parse("features", help, argc, argv, opts, &run, NULL);
    if (rc >= 0) return rc;
    if (!run) return rc_cli_usage_error("features", "missing RUN_DIR or CKPT");
    if (!area) return rc_cli_usage_error("features", "missing --area NAME (or --area all)");
    if (!out) return rc_cli_usage_error("features", "missing --out DIR");
    int on_train = !strcmp(split, "train");
    if (!on_train && strcmp(split, "test")) return rc_cli_usage_error("features", "--split: '%s' is not test or train", split);
    char ckpt[4200];
    rc_model_cfg mc;
    rc_train_cfg tc;
    if (rc_cli_open_eval(run, threads, ckpt, sizeof ckpt, &mc, &tc)) return rc_cli_error(rc_error());
    const char *spec = data ? data : tc.data;
    feat_sink fs;
    memset(&fs, 0, sizeof fs);
    fs.want_full = full;
    int keep[RC_MAX_AREAS] = {0};
    for (int k = 0; k < mc.nareas; k++)
        if (!strcmp(area, "all") || !strcmp(area, mc.areas[k].name)) {
            if (strchr(mc.areas[k].name, '/')) {
                rc_fail("area name '%s' contains '/' and cannot name a file", mc.areas[k].name);
                return rc_cli_error(rc_error());
            }
            keep[k] = 1;
            fs.sel[fs.nsel++] = k;
        }
    if (!fs.nsel) {
        char names[RC_MAX_AREAS * 34] = "";
        for (int k = 0; k < mc.nareas; k++) {
            strcat(names, k ? ", " : "");
            strcat(names, mc.areas[k].name);
        }
        rc_fail("model %s has no area '%s' (its areas: %s; or all)", mc.name, area, names);
        return rc_cli_error(rc_error());
    }
    rc_dataset data_split = {0};
    rc_dataset *d = &data_split;
    rc_model m;
    int built = 0, code = 1;
    rc_eval_result r;
    if (rc_dataset_load_eval(spec, on_train, (int)limit, d)) goto fail;
    if (rc_dataset_check_shape(d, mc.in_c, mc.in_h, mc.in_w, -1)) goto fail;
    if (rc_model_build_keep(&mc, (int)batch, (int)iters, keep, &m)) goto fail;
    built = 1;
    if (rc_checkpoint_load(ckpt, &m.g, NULL)) goto fail;
    if (rc_mkdirs(out)) goto fail;
    size_t state_floats = 0, row_floats = 0;
    for (int s = 0; s < fs.nsel; s++) {
        const int k = fs.sel[s], T = m.area_steps[k];
        const rc_tensor *x = &m.g.tensors[m.area_state[k][0]];
        int64_t shape[5] = {d->n, T, x->c, x->h, x->w};
        if (open_npy(&fs.pooled[k], out, mc.areas[k].name, "_pooled.npy", "<f4", 3, shape)) goto fail;
        if (full && open_npy(&fs.full[k], out, mc.areas[k].name, "_full.npy", "<f4", 5, shape)) goto fail;
        size_t chw = (size_t)x->c * x->h * x->w;
        state_floats = RC_MAX(state_floats, (size_t)batch * chw);
        row_floats = RC_MAX(row_floats, (size_t)batch * T * (full ? chw : (size_t)x->c));
    }
    int64_t n1[1] = {d->n};
    if (open_npy(&fs.labels, out, "labels", ".npy", "<i8", 1, n1) || open_npy(&fs.index, out, "index", ".npy", "<i8", 1, n1))
        goto fail;
    fs.state = rc_xmalloc(state_floats * sizeof(float));
    fs.rows = rc_xmalloc(row_floats * sizeof(float));
    rc_eval_sink sink = {save_features, &fs};
    if (rc_evaluate_sink(&m, d, 0, d->n, 0, &sink, &r)) goto fail;
    for (int s = 0; s < fs.nsel; s++) {
        const int k = fs.sel[s];
        if (rc_npy_close(&fs.pooled[k]) || (full && rc_npy_close(&fs.full[k]))) goto fail;
    }
    if (rc_npy_close(&fs.labels) || rc_npy_close(&fs.index)) goto fail;
    printf("%s: %d %s images of %s, final accuracy %.2f%%\n", ckpt, d->n, on_train ? "training" : "test", spec,
           100.0 * rc_eval_accuracy(&r, r.nreadouts - 1));
    for (int s = 0; s < fs.nsel; s++) {
        const int k = fs.sel[s];
        const rc_tensor *x = &m.g.tensors[m.area_state[k][0]];
        printf("  %s/%s_pooled.npy  float32 (%d, %d, %d)\n", out, mc.areas[k].name, d->n, m.area_steps[k], x->c);
        if (full)
            printf("  %s/%s_full.npy    float32 (%d, %d, %d, %d, %d)\n", out, mc.areas[k].name, d->n, m.area_steps[k],
                   x->c, x->h, x->w);
    }
    printf("  %s/labels.npy, %s/index.npy  int64 (%d,)\n", out, out, d->n);
    code = 0;
    goto done;
fail:
    rc_cli_error(rc_error());
done:
    for (int k = 0; k < RC_MAX_AREAS; k++) {
        rc_npy_abort(&fs.pooled[k]);
        rc_npy_abort(&fs.full[k]);
    }
    rc_npy_abort(&fs.labels);
    rc_npy_abort(&fs.index);
    free(fs.state);
    free(fs.rows);
    if (built) rc_model_free(&m);
    rc_dataset_free(&data_split);
    return code;
}
