/* test_parity.c — whole models against the PyTorch twin (ref/twin.py): per-readout logits and losses,
 * every param gradient, running statistics, eval-mode logits and the losses of 10 optimizer steps,
 * for every fixture in tests/fixtures, on the reference and the fast path. Also the lr schedule. */
#include <string.h>

#include "fixture.h"
#include "io/dataset.h"
#include "io/ini.h"
#include "models/model.h"
#include "ops/ops.h"
#include "test.h"
#include "train/optim.h"

#ifndef FIXTURE_DIR
#define FIXTURE_DIR "tests/fixtures"
#endif

static const char *models[] = {"ff_untied",  "tied_bnpi_every", "tied_bnpi_final", "tied_bn_shared",
                               "residual",   "convlstm",        "topdown",         "nonorm_c2f",
                               "single_c2f", "mixed_odd",       "untied_lockstep_perhead",
                               /* 16-channel areas: the fast path's blocked layout and fused ops */
                               "blocked_mix", "blocked_lstm",
                               /* recall, a dense head, a masked per-position loss */
                               "dense_recall",
                               /* model.halting = ponder: halting heads and the PonderNet loss */
                               "ponder",
                               /* area groups: grouped, depthwise and depthwise-separable state convs */
                               "grouped", "grouped_untied",
                               /* cell = gru: tied (bottomup first / every), untied without norm, recall, blocked */
                               "gru", "gru_untied", "gru_recall", "blocked_gru", "gru_grouped", NULL};

static int read_cfg(const rc_fixture *fx, const char *name, rc_model_cfg *mc, rc_train_cfg *tc) {
    size_t len = 0;
    const char *text = rc_fx_text(fx, "config", &len);
    if (!text) return -1;
    rc_ini *ini = NULL;
    if (rc_ini_parse(text, len, name, &ini) || rc_config_read(ini, name, mc, tc)) {
        fprintf(stderr, "  %s: %s\n", name, rc_error());
        rc_ini_free(ini);
        return -1;
    }
    rc_ini_free(ini);
    return 0;
}

/* Load every param/NAME record into the graph; every graph param must be in the fixture and the
 * fixture must hold no other param. Resets optimizer state. */
static int load_params(const rc_fixture *fx, rc_graph *g, const char *prefix) {
    int bad = 0;
    char key[256];
    for (int i = 0; i < g->nparams; i++) {
        rc_param *p = &g->params[i];
        snprintf(key, sizeof key, "%s%s", prefix, p->name);
        long n = rc_fx_numel(fx, key);
        CHECK(n == (long)p->numel, "param %s: fixture has %ld values, model %zu", p->name, n, p->numel);
        if (n != (long)p->numel) {
            bad = 1;
            continue;
        }
        rc_fx_copy_f32(fx, key, p->w, p->numel);
    }
    CHECK(rc_fx_count_prefix(fx, prefix) == g->nparams, "fixture has %d %s records, model %d params",
          rc_fx_count_prefix(fx, prefix), prefix, g->nparams);
    memset(g->pm, 0, g->param_floats * sizeof(float));
    memset(g->pv, 0, g->param_floats * sizeof(float));
    return bad ? -1 : 0;
}

static void check_model(const char *name, int fast) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s.bin", FIXTURE_DIR, name);
    rc_fixture *fx = rc_fx_load(path);
    CHECK(fx != NULL, "cannot load fixture %s", path);
    if (!fx) return;
    rc_ops_fast = fast;
    rc_model_cfg mc;
    rc_train_cfg tc;
    rc_model m;
    int nd, dims[8];
    const float *input = rc_fx_f32(fx, "input", &nd, dims);
    const int32_t *labels32 = rc_fx_i32(fx, "labels", NULL, NULL);
    if (!input || !labels32 || read_cfg(fx, name, &mc, &tc)) {
        CHECK(0, "%s: fixture incomplete or config unreadable", name);
        rc_fx_free(fx);
        return;
    }
    int N = dims[0];
    if (rc_model_build(&mc, N, 0, &m)) {
        CHECK(0, "%s: build failed: %s", name, rc_error());
        rc_fx_free(fx);
        return;
    }
    rc_graph *g = &m.g;
    if (fast && !strncmp(name, "blocked_", 8)) {
        /* these fixtures exist to exercise the fused, blocked plan: make sure it is the one running */
        int fused = 0, blocked = 0;
        for (int i = 0; i < g->nxnodes; i++) fused += g->xnodes[i].op == RC_OP_BNACT || g->xnodes[i].op == RC_OP_LSTM;
        for (int t = 0; t < g->ntensors; t++) blocked += g->tensors[t].layout == RC_LAYOUT_BLK16;
        CHECK(fused > 0, "%s: the fast plan fused nothing", name);
        rc_conv_dims probe; /* a conv the selector runs blocked by a fast path (oneDNN, or recur's kernels) */
        rc_conv_dims_init(&probe, 1, 16, 8, 8, 16, 3, 1, 1);
        CHECK(blocked > 0 || !rc_conv2d_blocked_fast(&probe), "%s: the fast plan blocked no activation", name);
    }
    int labels[64];
    for (int i = 0; i < N; i++) labels[i] = labels32[i];
    /* dense readouts: targets and mask per position, logits (N, classes, H, W) */
    const int dense = mc.readout == RC_READOUT_DENSE;
    const size_t npos = (size_t)N * mc.in_h * mc.in_w, nlogit = dense ? npos * mc.classes : (size_t)N * mc.classes;
    uint8_t *tgt = NULL, *mask = NULL;
    if (dense) {
        const int32_t *t32 = rc_fx_i32(fx, "targets", NULL, NULL), *m32 = rc_fx_i32(fx, "mask", NULL, NULL);
        CHECK(t32 && m32 && rc_fx_numel(fx, "targets") == (long)npos, "%s: targets / mask missing", name);
        tgt = rc_xcalloc(npos, 1);
        mask = rc_xcalloc(npos, 1);
        for (size_t i = 0; t32 && m32 && i < npos; i++) tgt[i] = (uint8_t)t32[i], mask[i] = m32[i] != 0;
    }
    const int *coarse = mc.loss == RC_LOSS_COARSE_TO_FINE ? rc_fashion_mnist_coarse_of : NULL;
    const double tol = 1e-4;
    char key[256], what[300];
    if (load_params(fx, g, "param/") == 0) {
        CHECK(m.nreadouts == rc_fx_i32(fx, "info/readouts", NULL, NULL)[0], "%s: readouts %d vs %d", name,
              m.nreadouts, rc_fx_i32(fx, "info/readouts", NULL, NULL)[0]);
        CHECK(rc_model_effective_depth(&m) == rc_fx_i32(fx, "info/effective_depth", NULL, NULL)[0],
              "%s: effective depth %d vs twin %d", name, rc_model_effective_depth(&m),
              rc_fx_i32(fx, "info/effective_depth", NULL, NULL)[0]);
        CHECK((long)rc_graph_trainable_params(g) == rc_fx_i32(fx, "info/trainable_params", NULL, NULL)[0],
              "%s: trainable params %zu vs twin %d", name, rc_graph_trainable_params(g),
              rc_fx_i32(fx, "info/trainable_params", NULL, NULL)[0]);
        /* one train-mode forward + backward */
        memcpy(g->tensors[m.input].x, input, sizeof(float) * (size_t)rc_fx_numel(fx, "input"));
        rc_graph_forward(g, 1);
        double ce[RC_MAX_READOUTS];
        double loss = dense ? rc_model_loss_dense(&m, tgt, mask, NULL, ce, 1) : rc_model_loss(&m, labels, coarse, ce, 1);
        for (int t = 1; t <= m.nreadouts; t++) {
            snprintf(key, sizeof key, "logits/%d", t);
            const float *ref = rc_fx_f32(fx, key, NULL, NULL);
            double e = ref ? rel_err(g->tensors[m.readout[t - 1]].x, ref, nlogit) : 1;
            CHECK(e < tol, "%s fast=%d: %s rel err %.3g", name, fast, key, e);
            snprintf(key, sizeof key, "loss/%d", t);
            snprintf(what, sizeof what, "%s fast=%d %s", name, fast, key);
            CHECK_CLOSE(ce[t - 1], rc_fx_f32(fx, key, NULL, NULL)[0], tol, 1e-6, what);
        }
        snprintf(what, sizeof what, "%s fast=%d loss_total", name, fast);
        CHECK_CLOSE(loss, rc_fx_f32(fx, "loss_total", NULL, NULL)[0], tol, 1e-6, what);
        rc_graph_zero_grads(g);
        rc_graph_backward(g);
        for (int i = 0; i < g->nparams; i++) {
            rc_param *p = &g->params[i];
            if (p->kind == RC_PARAM_BUFFER) {
                snprintf(key, sizeof key, "running/%s", p->name);
                const float *ref = rc_fx_f32(fx, key, NULL, NULL);
                double e = ref ? rel_err(p->w, ref, p->numel) : 1;
                CHECK(e < tol, "%s fast=%d: %s rel err %.3g", name, fast, key, e);
                continue;
            }
            snprintf(key, sizeof key, "grad/%s", p->name);
            const float *ref = rc_fx_f32(fx, key, NULL, NULL);
            double e = ref ? rel_err(p->g, ref, p->numel) : 1;
            CHECK(e < tol, "%s fast=%d: %s rel err %.3g", name, fast, key, e);
        }
        /* eval mode with the updated running statistics */
        rc_graph_forward(g, 0);
        for (int t = 1; t <= m.nreadouts; t++) {
            snprintf(key, sizeof key, "eval_logits/%d", t);
            const float *ref = rc_fx_f32(fx, key, NULL, NULL);
            double e = ref ? rel_err(g->tensors[m.readout[t - 1]].x, ref, nlogit) : 1;
            CHECK(e < tol, "%s fast=%d: %s rel err %.3g", name, fast, key, e);
        }
    }
    /* 10 optimizer steps from the initial state at constant lr */
    if (load_params(fx, g, "param/") == 0) {
        const float *ref = rc_fx_f32(fx, "train_losses", NULL, NULL);
        for (int s = 0; s < 10 && ref; s++) {
            memcpy(g->tensors[m.input].x, input, sizeof(float) * (size_t)rc_fx_numel(fx, "input"));
            rc_graph_forward(g, 1);
            double loss = dense ? rc_model_loss_dense(&m, tgt, mask, NULL, NULL, 1)
                                : rc_model_loss(&m, labels, coarse, NULL, 1);
            snprintf(what, sizeof what, "%s fast=%d train loss step %d", name, fast, s + 1);
            CHECK_CLOSE(loss, ref[s], tol, 1e-6, what);
            rc_graph_zero_grads(g);
            rc_graph_backward(g);
            rc_optim_step(g, &tc, rc_lr_at(&tc, s, 1), s + 1);
        }
        for (int i = 0; i < g->nparams; i++) {
            rc_param *p = &g->params[i];
            snprintf(key, sizeof key, "trained/%s", p->name);
            const float *tr = rc_fx_f32(fx, key, NULL, NULL);
            double e = tr ? rel_err(p->w, tr, p->numel) : 1;
            CHECK(e < 2e-3, "%s fast=%d: %s rel err %.3g after 10 steps", name, fast, key, e);
        }
    }
    rc_model_free(&m);
    rc_fx_free(fx);
    free(tgt);
    free(mask);
}

static void test_models_reference(void) {
    for (int i = 0; models[i]; i++) check_model(models[i], 0);
}

static void test_models_fast(void) {
    for (int i = 0; models[i]; i++) check_model(models[i], 1);
    rc_ops_fast = 1;
}

static void test_lr_schedule(void) {
    rc_fixture *fx = rc_fx_load(FIXTURE_DIR "/lr_schedule.bin");
    CHECK(fx != NULL, "cannot load lr_schedule.bin");
    if (!fx) return;
    int count = rc_fx_i32(fx, "count", NULL, NULL)[0];
    for (int c = 1; c <= count; c++) {
        char key[64];
        snprintf(key, sizeof key, "case/%d/config", c);
        size_t len = 0;
        const char *text = rc_fx_text(fx, key, &len);
        rc_ini *ini = NULL;
        rc_model_cfg mc;
        rc_train_cfg tc;
        if (rc_ini_parse(text, len, key, &ini) || rc_config_read(ini, key, &mc, &tc)) {
            CHECK(0, "%s: %s", key, rc_error());
            rc_ini_free(ini);
            continue;
        }
        rc_ini_free(ini);
        snprintf(key, sizeof key, "case/%d/steps_per_epoch", c);
        int spe = rc_fx_i32(fx, key, NULL, NULL)[0];
        snprintf(key, sizeof key, "case/%d/lr", c);
        int nd, dims[4];
        const float *lr = rc_fx_f32(fx, key, &nd, dims);
        for (int s = 0; s < dims[0]; s++) {
            char what[96];
            snprintf(what, sizeof what, "lr case %d step %d", c, s);
            CHECK_CLOSE(rc_lr_at(&tc, s, spe), lr[s], 1e-6, 1e-12, what);
        }
    }
    rc_fx_free(fx);
}

int main(void) {
    RUN_TEST(test_lr_schedule);
    RUN_TEST(test_models_reference);
    RUN_TEST(test_models_fast);
    TEST_MAIN_END();
}
