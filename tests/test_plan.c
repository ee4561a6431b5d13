/* test_plan.c — the execution plan (graph_plan.c) on whole models: the fast plan (fusion, nChw16c with
 * zero-padded channel blocks where C is not a multiple of 16, shared arena, rematerialisation; every conv
 * algorithm) against the reference plan in logits, loss, gradients, running stats and eval logits, with
 * the fast plan's arena filled with NaN first (a value read before it is written — a padding lane, a
 * buffer assumed zero — poisons the comparison); sharing, remat and train.recompute bit-identical to the
 * stored run; the chunked schedule (micro-batches of 2, 4 and 8 images) against the whole-batch one; and
 * the arena actually shrinking; area states kept readable (rc_graph_keep, recur features) equal the
 * reference plan's and change no readout. */
#include <math.h>
#include <string.h>

#include "base/rng.h"
#include "io/ini.h"
#include "models/model.h"
#include "ops/ops.h"
#include "test.h"
#include "train/optim.h"

#define BMAX 16
static int B = 4; /* the batch of build and run_step */
static const int *keep_areas = NULL; /* build: areas whose states are kept (rc_model_build_keep) */
#define ALL (RC_PLAN_FUSE | RC_PLAN_BLOCKED | RC_PLAN_SHARE | RC_PLAN_REMAT | RC_PLAN_CHUNK | RC_PLAN_EVAL | RC_PLAN_STATS)

static const char *models[][2] = {
    {"residual2", "[model]\ninput = 1x12x12\nnorm = batch_per_iter\nloss = every\n"
                  "[area V1]\nchannels = 16\niterations = 3\ntied = yes\ncell = residual\nbottomup = first\n"
                  "[area V2]\nchannels = 32\niterations = 3\ntied = yes\ncell = residual\nstride = 2\n"
                  "bottomup = first\n[train]\nbatch = 4\n"},
    {"lstm_topdown", "[model]\ninput = 1x10x10\nunroll = lockstep\nnorm = batch_per_iter\nloss = increasing\n"
                     "[area V1]\nchannels = 16\niterations = 3\ntied = yes\ncell = convlstm\ntopdown = yes\n"
                     "[area V2]\nchannels = 16\niterations = 3\ntied = yes\ncell = convlstm\nstride = 2\n"
                     "[train]\nbatch = 4\n"},
    {"conv_untied", "[model]\ninput = 2x9x9\nnorm = batch\nloss = final\nhead = per_iter\n"
                    "[area V1]\nchannels = 32\niterations = 4\ntied = no\ncell = conv\nbottomup = every\n"
                    "[train]\nbatch = 4\n"},
    {"lstm_nonorm", "[model]\ninput = 1x8x8\nnorm = none\nloss = every\n"
                    "[area V1]\nchannels = 16\niterations = 3\ntied = yes\ncell = convlstm\n[train]\nbatch = 4\n"},
    {"mixed_plain", "[model]\ninput = 1x11x11\nnorm = batch_per_iter\nloss = every\n"
                    "[area V1]\nchannels = 24\niterations = 2\ntied = yes\ncell = residual\n"
                    "[area V2]\nchannels = 8\niterations = 3\ntied = yes\ncell = convlstm\nstride = 2\n"
                    "[area V3]\nchannels = 16\niterations = 2\ntied = no\ncell = conv\n[train]\nbatch = 4\n"},
    /* 24 and 40 channels: blocked with padding lanes, through conv, bn+act, add, upsample and pooling */
    {"blt_padded", "[model]\ninput = 1x12x12\nunroll = lockstep\nnorm = batch_per_iter\nloss = every\n"
                   "[area V1]\nchannels = 24\niterations = 3\ntied = yes\nlateral = yes\ntopdown = yes\n"
                   "[area V2]\nchannels = 40\niterations = 3\ntied = yes\nstride = 2\nlateral = yes\n"
                   "[train]\nbatch = 4\n"},
    /* area groups: depthwise-separable (16 channels, blocked) and 4 groups of 6 (24, padded lanes) */
    {"grouped", "[model]\ninput = 1x12x12\nnorm = batch_per_iter\nloss = every\n"
                "[area V1]\nchannels = 16\niterations = 3\ntied = yes\ncell = residual\ngroups = depthwise\n"
                "[area V2]\nchannels = 24\niterations = 2\ntied = no\nstride = 2\ngroups = 4\npointwise = no\n"
                "[train]\nbatch = 4\n"},
    {NULL, NULL}};

static int build(const char *text, int fast, int opts, int recompute, rc_model *m) {
    rc_ini *ini = NULL;
    rc_model_cfg mc;
    rc_train_cfg tc;
    if (rc_ini_parse(text, strlen(text), "inline", &ini) || rc_config_read(ini, "inline", &mc, &tc)) {
        fprintf(stderr, "  config: %s\n", rc_error());
        rc_ini_free(ini);
        return -1;
    }
    rc_ini_free(ini);
    mc.recompute = recompute;
    rc_ops_fast = fast;
    rc_plan_opts = opts;
    rc_status st = rc_model_build_keep(&mc, B, 0, keep_areas, m);
    rc_ops_fast = 1;
    rc_plan_opts = ALL;
    if (st) {
        fprintf(stderr, "  build: %s\n", rc_error());
        return -1;
    }
    return 0;
}

/* One training step's forward + backward; the input and labels are fixed by the seed. */
static double run_step(rc_model *m) {
    rc_rng rng;
    rc_rng_seed(&rng, 3);
    rc_graph *g = &m->g;
    size_t nx = (size_t)B * m->cfg.in_c * m->cfg.in_h * m->cfg.in_w;
    for (size_t i = 0; i < nx; i++) g->tensors[m->input].x[i] = rc_rng_normal(&rng);
    int labels[BMAX];
    for (int i = 0; i < B; i++) labels[i] = (i * 7 + 1) % m->cfg.classes;
    rc_graph_forward(g, 1);
    double loss = rc_model_loss(m, labels, NULL, NULL, 1);
    rc_graph_zero_grads(g);
    rc_graph_backward(g);
    return loss;
}

/* Compare two models of the same config: params' values (running stats) and gradients, readouts. */
static void compare(const char *what, rc_model *a, rc_model *b, double tol) {
    rc_graph *ga = &a->g, *gb = &b->g;
    CHECK(ga->nparams == gb->nparams, "%s: params %d vs %d", what, ga->nparams, gb->nparams);
    for (int i = 0; i < ga->nparams && i < gb->nparams; i++) {
        rc_param *p = &ga->params[i], *q = &gb->params[i];
        double e = rel_err(p->w, q->w, p->numel);
        CHECK(e <= tol, "%s: %s value rel err %.3g", what, p->name, e);
        if (p->kind == RC_PARAM_BUFFER) continue;
        e = rel_err(p->g, q->g, p->numel);
        CHECK(e <= tol, "%s: %s grad rel err %.3g", what, p->name, e);
    }
    for (int r = 0; r < a->nreadouts; r++) {
        size_t n = (size_t)B * a->cfg.classes;
        double e = rel_err(ga->tensors[a->readout[r]].x, gb->tensors[b->readout[r]].x, n);
        CHECK(e <= tol, "%s: readout %d rel err %.3g", what, r + 1, e);
    }
}

static void copy_params(rc_model *dst, const rc_model *src) {
    memcpy(dst->g.pw, src->g.pw, src->g.param_floats * sizeof(float));
}

static void check_model(const char *name, const char *text) {
    rc_model ref, fast;
    if (build(text, 0, 0, 0, &ref) || build(text, 1, ALL, 0, &fast)) {
        CHECK(0, "%s: cannot build", name);
        return;
    }
    rc_graph_init_params(&ref.g, 9);
    copy_params(&fast, &ref);
    for (size_t i = 0; i < fast.g.act_floats; i++) fast.g.act[i] = NAN;
    /* the fast plan must actually fuse and block (where the channels allow) */
    int fused = 0, blocked = 0;
    for (int i = 0; i < fast.g.nxnodes; i++) fused += fast.g.xnodes[i].op == RC_OP_BNACT || fast.g.xnodes[i].op == RC_OP_LSTM;
    for (int t = 0; t < fast.g.ntensors; t++) blocked += fast.g.tensors[t].layout == RC_LAYOUT_BLK16;
    CHECK(fused > 0 && fast.g.nxnodes < ref.g.nxnodes, "%s: nothing fused (%d of %d exec nodes)", name,
          fast.g.nxnodes, ref.g.nxnodes);
#ifdef RC_HAVE_DNNL
    const int want_blocked = 1;
#else /* recur's kernels alone, where switched on: dense 3x3 convs on channels multiples of 16 (not blt_padded's,
       * nor grouped's: its dense convs read the 1-channel image or 16 channels into 24) */
    rc_conv_dims probe;
    rc_conv_dims_init(&probe, 1, 16, 8, 8, 16, 3, 1, 1);
    const int want_blocked =
        rc_conv2d_blocked_fast(&probe) && strcmp(name, "blt_padded") != 0 && strcmp(name, "grouped") != 0;
#endif
    CHECK((blocked > 0) == want_blocked, "%s: %d blocked activations", name, blocked);
    CHECK(fast.g.act_floats < ref.g.act_floats, "%s: shared arena %zu floats not below the reference's %zu", name,
          fast.g.act_floats, ref.g.act_floats);
    double la = run_step(&ref), lb = run_step(&fast);
    char what[128];
    snprintf(what, sizeof what, "%s loss", name);
    CHECK_CLOSE(lb, la, 1e-5, 1e-6, what);
    snprintf(what, sizeof what, "%s fast vs reference", name);
    compare(what, &fast, &ref, 1e-4);
    /* eval mode (running statistics) */
    rc_graph_forward(&ref.g, 0);
    rc_graph_forward(&fast.g, 0);
    snprintf(what, sizeof what, "%s eval", name);
    compare(what, &fast, &ref, 1e-4);
    /* a few optimizer steps stay together */
    rc_train_cfg tc;
    memset(&tc, 0, sizeof tc);
    tc.optimizer = RC_OPT_ADAMW;
    tc.beta1 = 0.9;
    tc.beta2 = 0.999;
    tc.adam_eps = 1e-8;
    tc.weight_decay = 5e-4;
    for (int s = 1; s <= 3; s++) {
        rc_optim_step(&ref.g, &tc, 1e-3, s);
        rc_optim_step(&fast.g, &tc, 1e-3, s);
        la = run_step(&ref);
        lb = run_step(&fast);
    }
    snprintf(what, sizeof what, "%s loss after 3 steps", name);
    CHECK_CLOSE(lb, la, 1e-4, 1e-6, what);
    rc_model_free(&ref);
    rc_model_free(&fast);
}

static void test_fast_plan_vs_reference(void) {
    for (int i = 0; models[i][0]; i++) check_model(models[i][0], models[i][1]);
}

/* Every conv algorithm of the fast path (direct, Winograd everywhere, auto) on two models. */
static void test_conv_algorithms(void) {
    const int algos[] = {RC_CONV_ALGO_DIRECT, RC_CONV_ALGO_WINOGRAD, RC_CONV_ALGO_AUTO};
    int old = rc_conv2d_set_algo(RC_CONV_ALGO_AUTO);
    for (int a = 0; a < 3; a++) {
        rc_conv2d_set_algo(algos[a]);
        check_model(models[0][0], models[0][1]);
        check_model(models[1][0], models[1][1]);
    }
    rc_conv2d_set_algo(old < 0 ? RC_CONV_ALGO_AUTO : old);
}

/* The same plan without sharing, with sharing with and without rematerialisation, and with recomputation
 * every 1 and 2 steps: identical bits. */
static void check_variants(const char *name, const char *text, int fast) {
    rc_model base;
    if (build(text, fast, RC_PLAN_FUSE | RC_PLAN_BLOCKED, 0, &base)) {
        CHECK(0, "%s: cannot build", name);
        return;
    }
    rc_graph_init_params(&base.g, 4);
    float *w0 = rc_xmalloc(base.g.param_floats * sizeof(float));
    memcpy(w0, base.g.pw, base.g.param_floats * sizeof(float));
    run_step(&base);
    const int ks[] = {0, 1, 2, 0, 1};
    for (int k = 0; k < 5; k++) {
        rc_model m;
        if (build(text, fast, k < 3 ? ALL : ALL & ~RC_PLAN_REMAT, ks[k], &m)) {
            CHECK(0, "%s: cannot build (recompute %d)", name, ks[k]);
            continue;
        }
        memcpy(m.g.pw, w0, base.g.param_floats * sizeof(float));
        run_step(&m);
        char what[128];
        snprintf(what, sizeof what, "%s fast=%d shared, remat=%d, recompute=%d", name, fast, k < 3, ks[k]);
        compare(what, &m, &base, 0.0);
        if (ks[k] > 0) {
            int replays = 0;
            for (int i = 0; i < m.g.nxnodes; i++) replays += m.g.xnodes[i].replay;
            CHECK(m.g.nseg > 1 && replays > 0, "%s: recompute=%d made %d segments, %d replays", what, ks[k], m.g.nseg,
                  replays);
        }
        rc_model_free(&m);
    }
    free(w0);
    rc_model_free(&base);
}

static void test_share_and_recompute_identical(void) {
    for (int i = 0; models[i][0]; i++) {
        check_variants(models[i][0], models[i][1], 1);
        check_variants(models[i][0], models[i][1], 0);
    }
}

/* The chunked schedule (graph_sched.c) against whole-batch runs of the same fast plan, at batch 16 and 13
 * (micro-batches of unequal size) in 2, 4 and 8 micro-batches, every wave chunked and every other one,
 * its arena and the eval pipeline's filled with NaN first (a tensor whose memory another overwrote
 * within a wave, or a slot read before it is written, shows up): training step, running statistics,
 * gradients, eval readouts (the eval pipeline against whole-batch eval). */
static void test_chunked_vs_whole(void) {
    for (int bi = 0; bi < 2; bi++) {
    B = bi ? 13 : 16;
    for (int i = 0; models[i][0]; i++) {
        rc_model whole;
        if (build(models[i][1], 1, ALL & ~RC_PLAN_CHUNK, 0, &whole)) {
            CHECK(0, "%s: cannot build", models[i][0]);
            continue;
        }
        CHECK(whole.g.nchunk <= 1, "%s: chunked with RC_PLAN_CHUNK off", models[i][0]);
        rc_graph_init_params(&whole.g, 5);
        float *w0 = rc_xmalloc(whole.g.param_floats * sizeof(float));
        memcpy(w0, whole.g.pw, whole.g.param_floats * sizeof(float));
        double lw = run_step(&whole);
        for (int v = 0; v < 6; v++) {
            const int m = 2 << (v % 3); /* 2, 4, 8 micro-batches; every wave chunked, then every other */
            rc_model ch;
            rc_sched_chunks = m;
            rc_eval_chunks = v < 3 ? m : m - 1; /* the eval pipeline's own count: as the schedule's, or not */
            rc_sched_waves = v < 3 ? RC_SCHED_ALL : RC_SCHED_ALTERNATE;
            int bad = build(models[i][1], 1, ALL, 0, &ch);
            rc_sched_chunks = rc_eval_chunks = 0;
            rc_sched_waves = RC_SCHED_AUTO;
            if (bad) {
                CHECK(0, "%s: cannot build chunked", models[i][0]);
                continue;
            }
            char what[128];
            snprintf(what, sizeof what, "%s in %d micro-batches (%s)", models[i][0], m, v < 3 ? "all waves" : "every other wave");
            int cw[2] = {rc_sched_chunked(&ch.g.fsched), rc_sched_chunked(&ch.g.bsched)};
            CHECK(ch.g.nchunk == m && cw[0] > 0 && cw[1] > 0, "%s: %d chunks, %d/%d chunked waves", what, ch.g.nchunk,
                  cw[0], cw[1]);
            memcpy(ch.g.pw, w0, whole.g.param_floats * sizeof(float));
            for (size_t k = 0; k < ch.g.act_floats; k++) ch.g.act[k] = NAN;
            double lc = run_step(&ch);
            CHECK_CLOSE(lc, lw, 1e-6, 1e-7, what);
            compare(what, &ch, &whole, 1e-5);
            CHECK(ch.g.eval_arena != NULL, "%s: no eval pipeline", what);
            for (size_t k = 0; ch.g.eval_arena && k < ch.g.eval_floats; k++) ch.g.eval_arena[k] = NAN;
            rc_graph_forward(&ch.g, 0);
            rc_graph_forward(&whole.g, 0);
            snprintf(what, sizeof what, "%s, batch %d in %d micro-batches (%s), eval in %d", models[i][0], B, m,
                     v < 3 ? "all waves" : "every other wave", ch.g.eval_nchunk);
            compare(what, &ch, &whole, 1e-5);
            memcpy(whole.g.pw, w0, whole.g.param_floats * sizeof(float)); /* running stats back */
            run_step(&whole);
            rc_model_free(&ch);
        }
        free(w0);
        rc_model_free(&whole);
    }
    }
    B = 4;
}

/* Batch-norm statistics summed in the epilogue of the convolution that writes the batch norm's input
 * or the upsample + add that adds a top-down term last (make_stats_fusion): the plan links them where
 * recur's kernels run that convolution (residual2: 16 and 32 channels; lstm_topdown: the 64-channel gate
 * sums of its ConvLSTM cells) and not where they cannot (blt_padded: 24 and 40 channels, whose
 * upsample + adds still link); a training step with them matches the same plan without them (the sums
 * are added in another order) and the reference plan, running statistics included; the statistics a
 * training forward saves are the same bits with 1 and 2 threads, whole and in 4 micro-batches. */

/* Nodes of op (CONV or UPADD) that sum a batch norm's statistics. */
static int stats_links(const rc_model *m, rc_op_type op) {
    int n = 0;
    for (int i = 0; i < m->g.nxnodes; i++) n += m->g.xnodes[i].op == op && m->g.xnodes[i].bnpre >= 0;
    return n;
}
static int all_links(const rc_model *m) { return stats_links(m, RC_OP_CONV) + stats_links(m, RC_OP_UPADD); }

/* min_conv convolutions at least (where recur's kernels run; -1: none at all), min_up upsample + adds */
static void check_stats_fusion(const char *name, const char *text, int min_conv, int min_up) {
    const int old_threads = rc_get_threads();
    B = 13;
    rc_model with, without, ref;
    if (build(text, 1, ALL, 0, &with) || build(text, 1, ALL & ~RC_PLAN_STATS, 0, &without) ||
        build(text, 0, 0, 0, &ref)) {
        CHECK(0, "%s: cannot build", name);
        B = 4;
        return;
    }
    rc_conv_dims d16; /* whether recur's kernels run here (not by default without AVX-512) */
    rc_conv_dims_init(&d16, B, 16, 12, 12, 16, 3, 1, 1);
    d16.x_layout = d16.y_layout = RC_LAYOUT_BLK16;
    const int own = rc_conv2d_select(&d16, RC_CONV_FWD) == RC_CONV_IMPL_OWN;
    const int links = all_links(&with), cl = stats_links(&with, RC_OP_CONV), ul = stats_links(&with, RC_OP_UPADD);
    CHECK((own && min_conv >= 0 ? cl >= min_conv : cl == 0) && ul >= min_up && all_links(&without) == 0,
          "%s: %d convolutions and %d upsample + adds sum statistics (%d without)", name, cl, ul, all_links(&without));
    rc_graph_init_params(&with.g, 9);
    copy_params(&without, &with);
    copy_params(&ref, &with);
    float *w0 = rc_xmalloc(with.g.param_floats * sizeof(float));
    memcpy(w0, with.g.pw, with.g.param_floats * sizeof(float));
    double la = run_step(&with), lb = run_step(&without), lr = run_step(&ref);
    char what[160];
    snprintf(what, sizeof what, "%s with statistics in the epilogue vs without", name);
    CHECK_CLOSE(la, lb, 1e-6, 1e-7, what);
    compare(what, &with, &without, 1e-5);
    snprintf(what, sizeof what, "%s with statistics in the epilogue vs the reference plan", name);
    CHECK_CLOSE(la, lr, 1e-5, 1e-6, what);
    compare(what, &with, &ref, 1e-4);
    rc_model_free(&without);
    rc_model_free(&ref);
    /* the saved batch-norm statistics of a training forward, bit for bit: 1 thread over the whole batch, 2
     * threads, 2 threads in 4 micro-batches of every wave */
    float *bits[3];
    size_t nsave = 0;
    for (int v = 0; v < 3; v++) {
        rc_model m;
        rc_set_threads(v == 0 ? 1 : 2);
        if (v == 2) {
            rc_sched_chunks = 4;
            rc_sched_waves = RC_SCHED_ALL;
        }
        int bad = build(text, 1, ALL, 0, &m);
        rc_sched_chunks = 0;
        rc_sched_waves = RC_SCHED_AUTO;
        bits[v] = NULL;
        if (bad) {
            CHECK(0, "%s: cannot build (variant %d)", name, v);
            continue;
        }
        CHECK(all_links(&m) == links && (v < 2 || m.g.nchunk == 4), "%s variant %d: %d links, %d chunks", name, v,
              all_links(&m), m.g.nchunk);
        memcpy(m.g.pw, w0, with.g.param_floats * sizeof(float));
        run_step(&m);
        nsave = m.g.save_floats;
        bits[v] = rc_xmalloc(nsave * sizeof(float));
        memcpy(bits[v], m.g.save, nsave * sizeof(float));
        rc_model_free(&m);
    }
    CHECK(bits[0] && bits[1] && memcmp(bits[0], bits[1], nsave * sizeof(float)) == 0,
          "%s: batch-norm statistics differ between 1 and 2 threads", name);
    CHECK(bits[1] && bits[2] && memcmp(bits[1], bits[2], nsave * sizeof(float)) == 0,
          "%s: batch-norm statistics differ between the whole batch and 4 micro-batches", name);
    for (int v = 0; v < 3; v++) free(bits[v]);
    free(w0);
    rc_model_free(&with);
    rc_set_threads(old_threads);
    B = 4;
}

static void test_stats_fusion(void) {
    check_stats_fusion(models[0][0], models[0][1], 4, 0);  /* residual cells: bn+act after convolutions */
    check_stats_fusion(models[1][0], models[1][1], 2, 1);  /* ConvLSTM with batch norm and top-down terms */
    check_stats_fusion(models[5][0], models[5][1], -1, 1); /* 24 and 40 channels: upsample + adds only */
}

/* Where micro-batches pay (graph_sched.c): with a 32 MB last-level cache a 32-channel 28x28 residual area
 * at batch 128 runs its waves in 8 micro-batches, all but the one whose convolution reads the image; a
 * lockstep BLT area, whose convolutions read the previous step's states, none of its forward waves;
 * train.recompute none. With 512 MB the residual area's 12.8 MB activations stay in the cache whole: no
 * wave runs in micro-batches, and inference is still pipelined. */
static void test_auto_waves(void) {
#ifdef RC_HAVE_DNNL
    rc_sched_llc_bytes = (size_t)32 << 20;
    const char *res = "[model]\ninput = 1x28x28\nnorm = batch_per_iter\n[area V1]\nchannels = 32\n"
                      "iterations = 3\ntied = yes\ncell = residual\nbottomup = first\n";
    const char *blt = "[model]\ninput = 1x28x28\nunroll = lockstep\nnorm = batch_per_iter\n[area V1]\n"
                      "channels = 32\niterations = 3\ntied = yes\nlateral = yes\ntopdown = yes\n[area V2]\n"
                      "channels = 32\niterations = 3\ntied = yes\nstride = 2\nlateral = yes\n";
    rc_model a, b, c;
    B = 128;
    int bad = build(res, 1, ALL, 0, &a) || build(blt, 1, ALL, 0, &b) || build(res, 1, ALL, 2, &c);
    B = 4;
    if (bad) {
        CHECK(0, "cannot build");
        return;
    }
    /* [model][fwd, bwd]: chunked waves */
    int n[2][2] = {{rc_sched_chunked(&a.g.fsched), rc_sched_chunked(&a.g.bsched)},
                   {rc_sched_chunked(&b.g.fsched), rc_sched_chunked(&b.g.bsched)}};
    int conv_fwd = 0; /* waves holding a convolution: each forward wave starts one */
    for (int k = 0; k < a.g.fsched.ne; k++) conv_fwd += a.g.xnodes[a.g.fsched.e[k].node].op == RC_OP_CONV;
    CHECK(a.g.nchunk == 8 && n[0][0] == conv_fwd - 1 && n[0][1] >= conv_fwd - 1,
          "residual: %d micro-batches, %d/%d chunked waves for %d convolutions", a.g.nchunk, n[0][0], n[0][1], conv_fwd);
    CHECK(n[1][0] <= 1, "lockstep BLT: %d forward waves chunked", n[1][0]);
    CHECK(c.g.nchunk <= 1, "recompute: %d micro-batches", c.g.nchunk);
    rc_model_free(&a);
    rc_model_free(&b);
    rc_model_free(&c);
    rc_sched_llc_bytes = (size_t)512 << 20;
    B = 128;
    bad = build(res, 1, ALL, 0, &a);
    B = 4;
    rc_sched_llc_bytes = 0;
    if (bad) {
        CHECK(0, "cannot build");
        return;
    }
    CHECK(a.g.nchunk <= 1 && a.g.eval_arena && a.g.eval_nchunk == RC_MAX(1, 8 / rc_get_threads()),
          "512 MB cache: %d micro-batches in training, eval pipeline %s in %d", a.g.nchunk, a.g.eval_arena ? "on" : "off",
          a.g.eval_nchunk);
    rc_model_free(&a);
#endif
}

/* A long tied unroll: recomputation keeps the arena bounded (far below storing every step). */
static void test_recompute_bounds_memory(void) {
    const char *text = "[model]\ninput = 1x12x12\nloss = every\n[area V1]\nchannels = 16\niterations = 16\n"
                       "tied = yes\ncell = residual\nbottomup = first\n[train]\nbatch = 4\n";
    rc_model full, k4, nore;
    if (build(text, 1, ALL, 0, &full) || build(text, 1, ALL, 4, &k4) ||
        build(text, 1, ALL & ~RC_PLAN_REMAT, 0, &nore)) {
        CHECK(0, "cannot build");
        return;
    }
    /* 16 steps of ~4 saved tensors vs 4 kept states + one 4-step segment */
    CHECK(k4.g.act_floats * 2 < full.g.act_floats, "recompute=4 arena %zu floats, full %zu", k4.g.act_floats,
          full.g.act_floats);
    CHECK(k4.g.nseg == 4, "recompute=4 over 16 steps: %d segments", k4.g.nseg);
    /* rematerialising u = relu(BN(lat)) saves one of the residual cell's four stored tensors */
    CHECK(full.g.act_floats * 5 < nore.g.act_floats * 4, "remat arena %zu floats, without %zu", full.g.act_floats,
          nore.g.act_floats);
    rc_model_free(&nore);
    rc_model_free(&full);
    rc_model_free(&k4);
}

/* Area states kept for reading after an eval forward (recur features): the fast plan (fusion, blocked layouts,
 * shared arena, remat, micro-batches and the eval pipeline, arenas filled with NaN first) against the
 * reference plan, state by state; and keeping changes no readout. Without keep the fast plan would put
 * states in the eval pipeline's micro-batch slots (checked, so the test covers the case it guards). */
static void test_keep_states(void) {
    static const int all[RC_MAX_AREAS] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    B = 16;
    for (int i = 0; models[i][0]; i++)
    for (int chunks = 1; chunks <= 4; chunks += 3) { /* whole batch, then 4 micro-batches + eval pipeline */
        rc_model ref, fast, plain;
        keep_areas = all;
        int bad = build(models[i][1], 0, 0, 0, &ref);
        rc_sched_chunks = chunks;
        rc_sched_waves = RC_SCHED_ALL;
        bad = bad || build(models[i][1], 1, ALL, 0, &fast);
        keep_areas = NULL;
        bad = bad || build(models[i][1], 1, ALL, 0, &plain);
        rc_sched_chunks = 0;
        rc_sched_waves = RC_SCHED_AUTO;
        if (bad) {
            CHECK(0, "%s: cannot build", models[i][0]);
            continue;
        }
        rc_graph_init_params(&ref.g, 7);
        run_step(&ref); /* running statistics that are not the initial ones */
        copy_params(&fast, &ref);
        copy_params(&plain, &ref);
        for (size_t k = 0; k < fast.g.act_floats; k++) fast.g.act[k] = NAN;
        for (size_t k = 0; fast.g.eval_arena && k < fast.g.eval_floats; k++) fast.g.eval_arena[k] = NAN;
        int in_slots = 0;
        for (int k = 0; k < plain.cfg.nareas; k++)
            for (int t = 0; t < plain.area_steps[k]; t++) in_slots += plain.g.tensors[plain.area_state[k][t]].ev != NULL;
        CHECK(chunks == 1 || (plain.g.eval_arena && in_slots > 0), "%s: no state in the eval pipeline's slots without keep",
              models[i][0]);
        rc_model *ms[3] = {&ref, &fast, &plain};
        for (int j = 0; j < 3; j++) { /* one input for all three */
            size_t nx = (size_t)B * ref.cfg.in_c * ref.cfg.in_h * ref.cfg.in_w;
            rc_rng rng;
            rc_rng_seed(&rng, 11);
            for (size_t q = 0; q < nx; q++) ms[j]->g.tensors[ms[j]->input].x[q] = rc_rng_normal(&rng);
            rc_graph_forward(&ms[j]->g, 0);
        }
        for (int k = 0; k < ref.cfg.nareas; k++) {
            CHECK(ref.area_steps[k] == fast.area_steps[k] && ref.area_steps[k] == ref.cfg.areas[k].iterations,
                  "%s: area %d steps %d / %d", models[i][0], k, ref.area_steps[k], fast.area_steps[k]);
            for (int t = 0; t < ref.area_steps[k]; t++) {
                const rc_tensor *x = &ref.g.tensors[ref.area_state[k][t]];
                size_t n = (size_t)B * x->c * x->h * x->w;
                float *a = rc_xmalloc(n * sizeof(float)), *b = rc_xmalloc(n * sizeof(float));
                rc_graph_read(&ref.g, ref.area_state[k][t], 0, a);
                rc_graph_read(&fast.g, fast.area_state[k][t], 0, b);
                double e = rel_err(b, a, n);
                CHECK(e <= 1e-4, "%s: area %s state at step %d: rel err %.3g against the reference plan", models[i][0],
                      ref.cfg.areas[k].name, t + 1, e);
                free(a);
                free(b);
            }
        }
        for (int r = 0; r < fast.nreadouts; r++) {
            size_t n = (size_t)B * fast.cfg.classes;
            double e = rel_err(fast.g.tensors[fast.readout[r]].x, plain.g.tensors[plain.readout[r]].x, n);
            CHECK(e <= 1e-6, "%s: readout %d with kept states differs from without: rel err %.3g", models[i][0], r + 1, e);
        }
        rc_model_free(&ref);
        rc_model_free(&fast);
        rc_model_free(&plain);
    }
    B = 4;
}

/* The eval pipeline's slots in a gap of the training arena (eval_shared, graph_plan.c eval_gap): an
 * inference between two training steps, its slots filled with NaN first, changes nothing the next step
 * computes (bit for bit), and its own readouts are the whole-batch plan's (test_chunked_vs_whole covers
 * those for every micro-batch count). */
static void test_eval_in_training_arena(void) {
    B = 16;
    int shared = 0;
    for (int i = 0; models[i][0]; i++) {
        rc_model a, b;
        rc_sched_chunks = rc_eval_chunks = 4;
        rc_sched_waves = RC_SCHED_ALL;
        int bad = build(models[i][1], 1, ALL, 0, &a);
        bad = bad || build(models[i][1], 1, ALL, 0, &b);
        rc_sched_chunks = rc_eval_chunks = 0;
        rc_sched_waves = RC_SCHED_AUTO;
        if (bad) {
            CHECK(0, "%s: cannot build", models[i][0]);
            continue;
        }
        shared += b.g.eval_shared;
        rc_graph_init_params(&a.g, 5);
        copy_params(&b, &a);
        run_step(&a);
        run_step(&b);
        for (size_t k = 0; b.g.eval_arena && k < b.g.eval_floats; k++) b.g.eval_arena[k] = NAN;
        rc_graph_forward(&b.g, 0);
        run_step(&a);
        run_step(&b);
        char what[128];
        snprintf(what, sizeof what, "%s: a training step after an inference", models[i][0]);
        compare(what, &b, &a, 0.0);
        rc_model_free(&a);
        rc_model_free(&b);
    }
    CHECK(shared > 0, "no model has its eval pipeline in the training arena");
    B = 4;
}

int main(void) {
    RUN_TEST(test_keep_states);
    RUN_TEST(test_fast_plan_vs_reference);
    RUN_TEST(test_conv_algorithms);
    RUN_TEST(test_share_and_recompute_identical);
    RUN_TEST(test_recompute_bounds_memory);
    RUN_TEST(test_chunked_vs_whole);
    RUN_TEST(test_eval_in_training_arena);
    RUN_TEST(test_auto_waves);
    RUN_TEST(test_stats_fusion);
    TEST_MAIN_END();
}
