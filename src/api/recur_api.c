/* recur_api.c — the public C API (include/recur.h): rc_net, a handle over a model's config, its unrolled
 * graph and params, and the input normalisation. Each entry point wraps the library functions that the
 * CLI's commands call (run.h, trainer, eval, export), so `recur eval` and rc_net_evaluate agree. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "recur.h"
#include "api/run.h"
#include "export/export.h"
#include "io/checkpoint.h"
#include "io/dataset.h"
#include "io/files.h"
#include "train/eval.h"
#include "train/trainer.h"

#define RC_NET_BATCH 64 /* the graph's batch until rc_net_set_batch */

struct rc_net {
    char *text; /* effective config text */
    rc_model_cfg mc;
    rc_train_cfg tc;
    char data[512];       /* dataset spec for evaluation and statistics */
    rc_model *m;          /* built graph (heap: the graph is never moved once planned) */
    int batch, iterations; /* what m was built with */
    int has_params;       /* initialised, loaded or trained */
    int has_stats, stats_given;
    float mean[RC_DATA_MAX_CHANNELS], std[RC_DATA_MAX_CHANNELS];
};

const char *rc_version(void) { return RC_VERSION; }

#define NEED(cond, ...)                          \
    do {                                         \
        if (!(cond)) return rc_fail(__VA_ARGS__); \
    } while (0)

/* (Re)build the graph for batch and iterations; params move over from the previous graph (the param list
 * depends on the config only, not on batch or test-time iterations). */
static rc_status net_build(rc_net *net, int batch, int iterations) {
    rc_model *nm = rc_xcalloc(1, sizeof *nm);
    if (rc_model_build(&net->mc, batch, iterations, nm)) {
        free(nm);
        return RC_ERR;
    }
    if (net->m) {
        const rc_graph *a = &net->m->g;
        rc_graph *b = &nm->g;
        RC_ASSERT(a->nparams == b->nparams);
        for (int i = 0; i < a->nparams; i++) {
            RC_ASSERT(a->params[i].numel == b->params[i].numel && !strcmp(a->params[i].name, b->params[i].name));
            memcpy(b->params[i].w, a->params[i].w, a->params[i].numel * sizeof(float));
        }
        rc_model_free(net->m);
        free(net->m);
    }
    net->m = nm;
    net->batch = batch;
    net->iterations = iterations;
    return RC_OK;
}

/* A handle for an already read config (takes text). */
static rc_status net_new(char *text, const rc_model_cfg *mc, const rc_train_cfg *tc, rc_net **out) {
    rc_net *net = rc_xcalloc(1, sizeof *net);
    net->text = text;
    net->mc = *mc;
    net->tc = *tc;
    snprintf(net->data, sizeof net->data, "%s", tc->data);
    if (net_build(net, RC_NET_BATCH, 0)) {
        rc_net_free(net);
        return RC_ERR;
    }
    *out = net;
    return RC_OK;
}

rc_status rc_net_from_config(const char *path, const char *const *sets, int nsets, rc_net **out) {
    NEED(out, "rc_net_from_config: out is NULL");
    *out = NULL;
    NEED(path, "rc_net_from_config: path is NULL");
    NEED(nsets >= 0 && (nsets == 0 || sets), "rc_net_from_config: %d overrides but sets is NULL", nsets);
    char *text = NULL;
    rc_model_cfg mc;
    rc_train_cfg tc;
    if (rc_config_load(path, sets, nsets, 1, NULL, &text, &mc, &tc)) return RC_ERR;
    return net_new(text, &mc, &tc, out);
}

rc_status rc_net_from_text(const char *config_text, const char *name, rc_net **out) {
    NEED(out, "rc_net_from_text: out is NULL");
    *out = NULL;
    NEED(config_text, "rc_net_from_text: config_text is NULL");
    char *text = NULL;
    rc_model_cfg mc;
    rc_train_cfg tc;
    if (rc_config_parse_text(config_text, name ? name : "(config text)", name ? name : "model", &text, &mc, &tc))
        return RC_ERR;
    return net_new(text, &mc, &tc, out);
}

rc_status rc_net_open(const char *run_or_ckpt, rc_net **out) {
    NEED(out, "rc_net_open: out is NULL");
    *out = NULL;
    NEED(run_or_ckpt, "rc_net_open: path is NULL");
    char ckpt[4200];
    char *text = NULL;
    rc_model_cfg mc;
    rc_train_cfg tc;
    rc_net *net = NULL;
    /* net_new owns text, also when it fails */
    if (rc_run_open(run_or_ckpt, ckpt, sizeof ckpt, &text, &mc, &tc) || net_new(text, &mc, &tc, &net)) return RC_ERR;
    if (rc_net_load(net, ckpt)) {
        rc_net_free(net);
        return RC_ERR;
    }
    *out = net;
    return RC_OK;
}

void rc_net_free(rc_net *net) {
    if (!net) return;
    if (net->m) {
        rc_model_free(net->m);
        free(net->m);
    }
    free(net->text);
    free(net);
}

void rc_net_init(rc_net *net, unsigned long long seed) {
    if (!net) return;
    rc_graph_init_params(&net->m->g, (uint64_t)seed);
    net->has_params = 1;
}

rc_status rc_net_load(rc_net *net, const char *ckpt_path) {
    NEED(net && ckpt_path, "rc_net_load: net or path is NULL");
    if (rc_checkpoint_load(ckpt_path, &net->m->g, NULL)) return RC_ERR;
    net->has_params = 1;
    return RC_OK;
}

rc_status rc_net_train(rc_net *net, const char *run_dir, long max_steps, int quiet) {
    NEED(net && run_dir, "rc_net_train: net or run_dir is NULL");
    NEED(max_steps >= 0, "rc_net_train: max_steps %ld is negative", max_steps);
    char ckpt[4200], cfg[4200], csv[4200];
    NEED(strlen(run_dir) < 4096, "rc_net_train: run directory name too long");
    snprintf(ckpt, sizeof ckpt, "%s/model.ckpt", run_dir);
    snprintf(cfg, sizeof cfg, "%s/config.cfg", run_dir);
    snprintf(csv, sizeof csv, "%s/train.csv", run_dir);
    rc_train_opts o = {0};
    o.run_dir = run_dir;
    o.max_steps = max_steps;
    o.quiet = quiet;
    if (access(ckpt, F_OK) == 0) { /* a run already: continue it if it is this config's */
        char *stored = NULL;
        if (rc_checkpoint_read_config(ckpt, &stored)) return RC_ERR;
        int same = !strcmp(stored, net->text);
        free(stored);
        NEED(same, "%s holds a run of another config; train into another directory", ckpt);
        o.resume = 1;
    } else {
        if (rc_mkdirs(run_dir)) return RC_ERR;
        if (unlink(csv) != 0 && errno != ENOENT) return rc_fail("%s: %s", csv, strerror(errno));
        if (rc_write_file_atomic(cfg, net->text, strlen(net->text))) return RC_ERR;
    }
    if (rc_train(net->text, o.resume ? ckpt : cfg, &o, NULL)) return RC_ERR;
    return rc_net_load(net, ckpt);
}

const char *rc_net_name(const rc_net *net) { return net ? net->mc.name : ""; }
const char *rc_net_config(const rc_net *net) { return net ? net->text : ""; }
const char *rc_net_data(const rc_net *net) { return net ? net->data : ""; }
int rc_net_classes(const rc_net *net) { return net ? net->mc.classes : 0; }
int rc_net_readouts(const rc_net *net) { return net ? net->m->nreadouts : 0; }
long long rc_net_params(const rc_net *net) { return net ? (long long)rc_graph_trainable_params(&net->m->g) : 0; }

void rc_net_input_shape(const rc_net *net, int *channels, int *height, int *width) {
    if (channels) *channels = net ? net->mc.in_c : 0;
    if (height) *height = net ? net->mc.in_h : 0;
    if (width) *width = net ? net->mc.in_w : 0;
}

rc_status rc_net_set_batch(rc_net *net, int batch) {
    NEED(net, "rc_net_set_batch: net is NULL");
    NEED(batch >= 1 && batch <= 65536, "rc_net_set_batch: batch %d is out of range 1..65536", batch);
    return batch == net->batch ? RC_OK : net_build(net, batch, net->iterations);
}

rc_status rc_net_set_iterations(rc_net *net, int iterations) {
    NEED(net, "rc_net_set_iterations: net is NULL");
    NEED(iterations >= 0 && iterations <= RC_MAX_ITERS, "rc_net_set_iterations: %d is out of range 0..%d", iterations,
         RC_MAX_ITERS);
    return iterations == net->iterations ? RC_OK : net_build(net, net->batch, iterations);
}

rc_status rc_net_set_data(rc_net *net, const char *spec) {
    NEED(net, "rc_net_set_data: net is NULL");
    if (!spec || !spec[0]) spec = net->tc.data;
    NEED(strlen(spec) < sizeof net->data, "rc_net_set_data: dataset spec too long (%zu bytes)", strlen(spec));
    snprintf(net->data, sizeof net->data, "%s", spec);
    if (!net->stats_given) net->has_stats = 0;
    return RC_OK;
}

rc_status rc_net_set_input_stats(rc_net *net, const float *mean, const float *std) {
    NEED(net && mean && std, "rc_net_set_input_stats: net, mean or std is NULL");
    for (int c = 0; c < net->mc.in_c; c++)
        NEED(isfinite(mean[c]) && isfinite(std[c]) && std[c] > 0,
             "rc_net_set_input_stats: channel %d: mean %g, std %g (need finite values, std > 0)", c, mean[c],
             std[c]);
    for (int c = 0; c < net->mc.in_c; c++) {
        net->mean[c] = mean[c];
        net->std[c] = std[c];
    }
    net->has_stats = net->stats_given = 1;
    return RC_OK;
}

/* The normalisation: the training split's statistics of the net's dataset, as `recur eval` uses. */
static rc_status need_stats(rc_net *net) {
    if (net->has_stats) return RC_OK;
    rc_dataset train = {0};
    if (rc_dataset_load(net->data, 1, &train)) return RC_ERR;
    if (train.c != net->mc.in_c) {
        rc_fail("dataset %s has %d channels, the model expects %d", net->data, train.c, net->mc.in_c);
        rc_dataset_free(&train);
        return RC_ERR;
    }
    for (int c = 0; c < train.c; c++) {
        net->mean[c] = train.mean[c];
        net->std[c] = train.std[c];
    }
    rc_dataset_free(&train);
    net->has_stats = 1;
    return RC_OK;
}

static rc_status need_params(const rc_net *net, const char *fn) {
    if (net->has_params) return RC_OK;
    return rc_fail("%s: model %s has no params yet (call rc_net_init, rc_net_load or rc_net_train)", fn,
                   net->mc.name);
}

rc_status rc_net_predict(rc_net *net, const float *images, int n, float *logits) {
    NEED(net && images && logits, "rc_net_predict: net, images or logits is NULL");
    NEED(n >= 1, "rc_net_predict: n = %d images (need >= 1)", n);
    if (need_params(net, "rc_net_predict") || need_stats(net)) return RC_ERR;
    NEED(net->mc.readout != RC_READOUT_DENSE,
         "rc_net_predict: model %s has dense readouts (a prediction per position); rc_net_predict returns one "
         "vector of class scores per image (use recur eval on the run)", net->mc.name);
    rc_model *m = net->m;
    rc_graph *g = &m->g;
    const int B = g->batch, C = net->mc.in_c, R = m->nreadouts, K = net->mc.classes;
    const size_t hw = (size_t)net->mc.in_h * net->mc.in_w, chw = (size_t)C * hw;
    float *x = g->tensors[m->input].x; /* (B, C, H, W), NCHW */
    for (long start = 0; start < n; start += B) {
        int nb = (int)RC_MIN((long)B, (long)n - start);
        /* (x - mean) * (1 / std), the expression rc_dataset_batch uses; rows past nb repeat the first image */
        for (int i = 0; i < B; i++) {
            const float *src = images + (size_t)(start + (i < nb ? i : 0)) * chw;
            float *dst = x + (size_t)i * chw;
            for (int c = 0; c < C; c++) {
                const float mu = net->mean[c], inv = 1.0f / net->std[c];
                for (size_t j = 0; j < hw; j++) dst[c * hw + j] = (src[c * hw + j] - mu) * inv;
            }
        }
        rc_graph_forward(g, 0);
        for (int i = 0; i < nb; i++)
            for (int t = 0; t < R; t++)
                memcpy(logits + ((size_t)(start + i) * R + t) * K, g->tensors[m->readout[t]].x + (size_t)i * K,
                       (size_t)K * sizeof(float));
    }
    return RC_OK;
}

rc_status rc_net_evaluate(rc_net *net, long limit, double *accuracy, double *coarse_accuracy, double *loss,
                          long *images) {
    NEED(net, "rc_net_evaluate: net is NULL");
    NEED(limit >= 0 && limit <= RC_DATA_MAX_ITEMS, "rc_net_evaluate: limit %ld is out of range 0..%d", limit,
         RC_DATA_MAX_ITEMS);
    if (need_params(net, "rc_net_evaluate") || need_stats(net)) return RC_ERR;
    rc_dataset test = {0};
    rc_eval_result *r = rc_xmalloc(sizeof *r);
    rc_status st = RC_ERR;
    if (rc_dataset_load(net->data, 0, &test)) goto done;
    if (limit > 0) {
        if (rc_dataset_truncate(&test, (int)limit)) goto done;
    }
    if (rc_dataset_check_shape(&test, net->mc.in_c, net->mc.in_h, net->mc.in_w, -1)) goto done;
    for (int c = 0; c < test.c; c++) {
        test.mean[c] = net->mean[c];
        test.std[c] = net->std[c];
    }
    if (rc_evaluate(net->m, &test, 0, r)) goto done;
    for (int t = 0; t < r->nreadouts; t++) {
        if (accuracy) accuracy[t] = rc_eval_accuracy(r, t);
        if (coarse_accuracy) coarse_accuracy[t] = r->has_coarse ? rc_eval_coarse_accuracy(r, t) : -1;
        if (loss) loss[t] = r->loss[t];
    }
    if (images) *images = r->n;
    st = RC_OK;
done:
    free(r);
    rc_dataset_free(&test);
    return st;
}

rc_status rc_net_export(rc_net *net, const char *format, const char *path) {
    NEED(net && path, "rc_net_export: net or path is NULL");
    if (!format) {
        const char *dot = strrchr(path, '.');
        format = !dot ? "" : !strcmp(dot, ".safetensors") ? "safetensors" : !strcmp(dot, ".npz") ? "npz"
                         : !strcmp(dot, ".onnx")      ? "onnx"
                                                      : "";
        NEED(format[0], "rc_net_export: %s: cannot tell the format from the extension (.safetensors, .npz, .onnx)",
             path);
    }
    int fmt = !strcmp(format, "safetensors") ? 0 : !strcmp(format, "npz") ? 1 : !strcmp(format, "onnx") ? 2 : -1;
    NEED(fmt >= 0, "rc_net_export: format '%s' is not safetensors, npz or onnx", format);
    if (need_params(net, "rc_net_export") || need_stats(net)) return RC_ERR;
    rc_export_info info = {.config_text = net->text, .data_spec = net->data, .channels = net->mc.in_c};
    for (int c = 0; c < net->mc.in_c && c < 3; c++) {
        info.mean[c] = net->mean[c];
        info.std[c] = net->std[c];
    }
    return fmt == 0 ? rc_export_safetensors(&net->m->g, &info, path)
           : fmt == 1 ? rc_export_npz(&net->m->g, &info, path)
                      : rc_export_onnx(net->m, &info, path);
}
