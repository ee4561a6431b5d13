/* model.c — the builder: turns a model config into the unrolled graph of docs/CONFIG.md (areas,
 * cells, bottom-up / lateral / top-down terms, per-iteration norms, readouts), and the scheduled loss.
 * Tied areas look their params up by a step-free name, so every step reads the same param. */
#include "model.h"

#include <math.h>
#include <string.h>

#include "ops/ops.h"
#include "ponder.h"

rc_status rc_model_cfg_validate(const rc_model_cfg *cfg) {
    if (cfg->nareas < 1) return rc_fail("model has no [area] section (at least one is required)");
    if (cfg->nareas > RC_MAX_AREAS) return rc_fail("model has %d areas; the limit is %d", cfg->nareas, RC_MAX_AREAS);
    if (cfg->in_c < 1 || cfg->in_c > 64 || cfg->in_h < 1 || cfg->in_h > 4096 || cfg->in_w < 1 || cfg->in_w > 4096)
        return rc_fail("model.input %dx%dx%d out of range (channels 1..64, sides 1..4096)", cfg->in_c, cfg->in_h,
                       cfg->in_w);
    if (cfg->classes < 2 || cfg->classes > 1000) return rc_fail("model.classes %d out of range 2..1000", cfg->classes);
    int h = cfg->in_h, w = cfg->in_w;
    for (int k = 0; k < cfg->nareas; k++) {
        const rc_area_cfg *a = &cfg->areas[k];
        if (a->channels < 1 || a->channels > 1024)
            return rc_fail("area %s: channels %d out of range 1..1024", a->name, a->channels);
        if (a->iterations < 1 || a->iterations > RC_MAX_ITERS)
            return rc_fail("area %s: iterations %d out of range 1..%d", a->name, a->iterations, RC_MAX_ITERS);
        if (a->kernel < 1 || a->kernel > 7 || a->kernel % 2 == 0)
            return rc_fail("area %s: kernel %d must be 1, 3, 5 or 7", a->name, a->kernel);
        if (a->stride < 1 || a->stride > 4) return rc_fail("area %s: stride %d out of range 1..4", a->name, a->stride);
        int p = a->kernel / 2;
        h = (h + 2 * p - a->kernel) / a->stride + 1;
        w = (w + 2 * p - a->kernel) / a->stride + 1;
        if (h < 1 || w < 1) return rc_fail("area %s: the image is reduced to nothing by the strides", a->name);
        if (a->cell == RC_CELL_GRU && !a->lateral)
            return rc_fail("area %s: cell = gru needs lateral = yes (its reset and update gates read h(t-1))",
                           a->name);
        if (!a->bottomup_every && !a->lateral && a->iterations > 1)
            return rc_fail("area %s: with bottomup = first and lateral = no, steps after the first have no input",
                           a->name);
        if (a->topdown && cfg->unroll != RC_UNROLL_LOCKSTEP)
            return rc_fail("area %s: topdown = yes needs model.unroll = lockstep (top-down reads the area above "
                           "at the previous step)",
                           a->name);
        if (a->topdown && k == cfg->nareas - 1)
            return rc_fail("area %s: topdown = yes on the top area (there is no area above it)", a->name);
        if (cfg->unroll == RC_UNROLL_LOCKSTEP && a->iterations != cfg->areas[0].iterations)
            return rc_fail("area %s: iterations %d differ from area %s's %d; lockstep needs equal iterations",
                           a->name, a->iterations, cfg->areas[0].name, cfg->areas[0].iterations);
        for (int j = 0; j < k; j++)
            if (strcmp(cfg->areas[j].name, a->name) == 0) return rc_fail("two areas are named '%s'", a->name);
        if (a->groups < 0 || a->groups > a->channels || (a->groups > 1 && a->channels % a->groups))
            return rc_fail("area %s: groups %d must divide channels %d", a->name, a->groups, a->channels);
    }
    if (cfg->areas[cfg->nareas - 1].iterations > RC_MAX_READOUTS)
        return rc_fail("too many readouts (%d)", cfg->areas[cfg->nareas - 1].iterations);
    if (cfg->readout == RC_READOUT_DENSE) {
        for (int k = 0; k < cfg->nareas; k++)
            if (cfg->areas[k].stride != 1)
                return rc_fail("area %s: stride %d, but model.readout = dense needs every area at the input's "
                               "resolution (stride 1)",
                               cfg->areas[k].name, cfg->areas[k].stride);
        if (cfg->head_nch < 1 || cfg->head_nch > RC_MAX_HEAD_LAYERS)
            return rc_fail("model.head_channels has %d widths (1..%d)", cfg->head_nch, RC_MAX_HEAD_LAYERS);
        for (int i = 0; i < cfg->head_nch; i++)
            if (cfg->head_ch[i] < 1 || cfg->head_ch[i] > 1024)
                return rc_fail("model.head_channels: width %d out of range 1..1024", cfg->head_ch[i]);
    }
    if (cfg->recall) {
        if (cfg->unroll != RC_UNROLL_SEQUENTIAL)
            return rc_fail("model.recall = yes needs model.unroll = sequential (each area recalls its fixed input)");
        for (int k = 0; k < cfg->nareas; k++) {
            const rc_area_cfg *a = &cfg->areas[k];
            if (!a->bottomup_every || !a->lateral)
                return rc_fail("area %s: model.recall = yes feeds the input and the previous state to every step: it "
                               "needs bottomup = every and lateral = yes",
                               a->name);
        }
    }
    if (cfg->loss == RC_LOSS_PROGRESSIVE) {
        if (rc_model_can_continue(cfg)) {
            char why[256];
            snprintf(why, sizeof why, "%s", rc_error());
            return rc_fail("model.loss = progressive reruns steps n+1..n+k from a detached state: %s", why);
        }
        if (cfg->recompute > 0)
            return rc_fail("model.loss = progressive reads the state after every step: it cannot be used with "
                           "train.recompute");
        if (!(cfg->alpha >= 0.0f && cfg->alpha <= 1.0f)) return rc_fail("model.alpha %g out of range 0..1", cfg->alpha);
    }
    if (cfg->halting == RC_HALT_PONDER) {
        const rc_area_cfg *top = &cfg->areas[cfg->nareas - 1];
        if (cfg->readout != RC_READOUT_POOL)
            return rc_fail("model.halting = ponder needs model.readout = pool (one prediction per image per "
                           "iteration), not dense");
        if (cfg->loss != RC_LOSS_EVERY)
            return rc_fail("model.halting = ponder replaces the loss schedule with PonderNet's loss over every "
                           "readout: leave model.loss at every");
        if (top->iterations < 2)
            return rc_fail("model.halting = ponder needs a readout per iteration of the top area and at least 2 of "
                           "them; area %s has iterations = %d",
                           top->name, top->iterations);
        if (!(cfg->ponder_beta >= 0.0f && cfg->ponder_beta <= 100.0f))
            return rc_fail("model.ponder_beta %g out of range 0..100", cfg->ponder_beta);
        if (!(cfg->ponder_lambda > 0.0f && cfg->ponder_lambda < 1.0f))
            return rc_fail("model.ponder_lambda %g out of range (0, 1) (exclusive)", cfg->ponder_lambda);
    }
    return RC_OK;
}

rc_status rc_model_can_continue(const rc_model_cfg *cfg) {
    const rc_area_cfg *a = &cfg->areas[0];
    if (cfg->nareas != 1) return rc_fail("the model has %d areas (one is needed)", cfg->nareas);
    if (!a->tied) return rc_fail("area %s is untied (a tied area is needed)", a->name);
    if (a->cell == RC_CELL_CONVLSTM) return rc_fail("area %s is a ConvLSTM (its cell state is not carried)", a->name);
    if (cfg->norm == RC_NORM_BATCH_PER_ITER) return rc_fail("model.norm = batch_per_iter has a norm per step");
    if (cfg->head_per_iter) return rc_fail("model.head = per_iter has a readout per step");
    if (cfg->halting != RC_HALT_NONE) return rc_fail("model.halting = ponder scores every step of the full unroll");
    return RC_OK;
}

/* ---- builder state ---- */
typedef struct {
    rc_model *m;
    const rc_model_cfg *cfg;
    int T[RC_MAX_AREAS];      /* steps unrolled per area */
    int C[RC_MAX_AREAS];      /* state channels */
    int H[RC_MAX_AREAS], W[RC_MAX_AREAS];
    int h[RC_MAX_AREAS][RC_MAX_ITERS + 1]; /* state tensors, [k][t], t = 0 unused */
    int c[RC_MAX_AREAS][RC_MAX_ITERS + 1]; /* ConvLSTM cell states */
    int drive_cache[RC_MAX_AREAS];         /* sequential tied bottomup=every: D computed once */
    int cur_area;
    int cont;   /* RC_BUILD_CONTINUE: local step t is the model's step t + 1 */
    int nsteps; /* steps emitted so far (all areas): the step tag of train.recompute's segments */
} builder;

static void set_node_area(builder *b, int from) {
    rc_model *m = b->m;
    for (int i = from; i < m->g.nnodes; i++) m->node_area[i] = b->cur_area;
}

static int conv_param(builder *b, const char *name, int kout, int kin, int r) {
    /* (an image of height 1 makes an r x r conv an 1 x r one: its zero-padded rows add nothing) */
    int shape[4] = {kout, kin, r, r};
    int p = rc_graph_param(&b->m->g, name, 4, shape, RC_PARAM_WEIGHT);
    if (b->cfg->recall || b->cfg->readout == RC_READOUT_DENSE) /* the deep-thinking nets: PyTorch's default */
        b->m->g.params[p].init_uniform = 1.0f / sqrtf((float)(kin * r * r));
    else
        b->m->g.params[p].init_std = sqrtf(2.0f / (float)(kin * r * r));
    return p;
}

static int vec_param(builder *b, const char *name, int n, rc_param_kind kind, float value) {
    int shape[1] = {n};
    int p = rc_graph_param(&b->m->g, name, 1, shape, kind);
    b->m->g.params[p].init_const = value;
    return p;
}

/* A state-to-state conv of area k (the lateral term, the residual cell's conv2): x (C channels) -> cout, stride
 * 1, params pre.what.*, output tensor tname. With groups G > 1 (docs/CONFIG.md, groups) a grouped conv
 * (pre.what.weight: (m, C/G, r, r)); with pointwise, m = C and a 1x1 conv (pre.what.pw.weight: (cout, C, 1, 1))
 * mixes the channels after it (depthwise-separable; counted as one conv layer of the effective depth), else
 * m = cout. The bias (bias != 0: pre.what.bias) goes on the last conv. */
static int emit_state_conv(builder *b, int k, const char *pre, const char *what, int x, int cout, int bias,
                           const char *tname) {
    const rc_area_cfg *a = &b->cfg->areas[k];
    rc_graph *g = &b->m->g;
    int C = g->tensors[x].c, r = a->kernel, G = a->groups > 1 ? a->groups : 1, pw = G > 1 && a->pointwise;
    int mid = pw ? C : cout;
    char nm[RC_NAME_MAX + 32], tn[RC_NAME_MAX + 32];
    snprintf(nm, sizeof nm, "%s.%s.weight", pre, what);
    int w = conv_param(b, nm, mid, C / G, r);
    int wp = -1, bp = -1;
    if (pw) {
        snprintf(nm, sizeof nm, "%s.%s.pw.weight", pre, what);
        wp = conv_param(b, nm, cout, C, 1);
    }
    if (bias) {
        snprintf(nm, sizeof nm, "%s.%s.bias", pre, what);
        bp = vec_param(b, nm, cout, RC_PARAM_NODECAY, 0.0f);
    }
    if (!pw) return rc_emit_conv_grouped(g, tname, x, w, bp, cout, r, 1, r / 2, G);
    snprintf(tn, sizeof tn, "%s_g", tname);
    int y = rc_emit_conv_grouped(g, tn, x, w, -1, mid, r, 1, r / 2, G);
    y = rc_emit_conv(g, tname, y, wp, bp, cout, 1, 1, 0);
    g->nodes[g->nnodes - 1].is_conv_layer = 0; /* one linear map with the grouped conv before it */
    return y;
}

/* Norm N_t over tensor x for area k at (param) step pt; tag is "bn" or "bn2". */
static int emit_norm(builder *b, int k, int pt, const char *tag, int x, const char *tname) {
    const rc_model_cfg *cfg = b->cfg;
    const rc_area_cfg *a = &cfg->areas[k];
    if (cfg->norm == RC_NORM_NONE) return x;
    int per = cfg->norm == RC_NORM_BATCH_PER_ITER || !a->tied;
    char base[RC_NAME_MAX], nm[RC_NAME_MAX + 16];
    if (per)
        snprintf(base, sizeof base, "%s.%s.t%d", a->name, tag, pt);
    else
        snprintf(base, sizeof base, "%s.%s", a->name, tag);
    int c = b->m->g.tensors[x].c;
    snprintf(nm, sizeof nm, "%s.gamma", base);
    int gamma = vec_param(b, nm, c, RC_PARAM_NODECAY, 1.0f);
    snprintf(nm, sizeof nm, "%s.beta", base);
    int beta = vec_param(b, nm, c, RC_PARAM_NODECAY, 0.0f);
    snprintf(nm, sizeof nm, "%s.running_mean", base);
    int rm = vec_param(b, nm, c, RC_PARAM_BUFFER, 0.0f);
    snprintf(nm, sizeof nm, "%s.running_var", base);
    int rv = vec_param(b, nm, c, RC_PARAM_BUFFER, 1.0f);
    int y = rc_emit_batchnorm(&b->m->g, tname, x, gamma, beta, rm, rv);
    rc_node *n = &b->m->g.nodes[b->m->g.nnodes - 1];
    n->eps = cfg->bn_eps;
    n->momentum = cfg->bn_momentum;
    return y;
}

/* The step's summed input with one more term: the term itself first, then sum + term (named sum1, sum2,
 * ...). Each add is emitted as soon as its term exists, so a convolution is followed by the add that
 * consumes it, which the fast plan fuses into one node (graph_plan.c match_conv_add). */
static int add_term(rc_graph *g, const char *area, int t, int sum, int term, int *nterms) {
    char tn[RC_NAME_MAX + 32];
    if ((*nterms)++ == 0) return term;
    snprintf(tn, sizeof tn, "%s.t%d.sum%d", area, t, *nterms - 1);
    return rc_emit_binary(g, RC_OP_ADD, tn, sum, term);
}

/* What one step t of area k reads, each -1 when this step has none: the drive's sources (the bottom-up
 * input; the area above's state h_{k+1}(t-1) for top-down) and h(t-1). The cell emits the convolutions
 * of them it needs (emit_inputs, emit_lateral), grouped and ordered as its equations want. */
typedef struct {
    int k, t, pt;              /* area, local step, param step */
    char pre[RC_NAME_MAX];     /* param name prefix: the area (tied) or area.tP (untied) */
    int x;                     /* bottom-up input (first step, or bottomup = every) */
    int above;                 /* top-down: h_{k+1}(t-1) */
    int prev;                  /* h(t-1): at t = 1 only with recall or a continued unroll */
    int bias;                  /* model.norm = none: conv_bu, conv_2 and a GRU's conv_lat carry a bias */
} step_in;

/* The lateral convolution of h(t-1) to cout channels, "lat" (grouped with the area's groups; a bias
 * "lat.bias" when bias). */
static int emit_lateral(builder *b, const step_in *s, int cout, int bias) {
    char tn[RC_NAME_MAX + 32];
    snprintf(tn, sizeof tn, "%s.t%d.lat", b->cfg->areas[s->k].name, s->t);
    return emit_state_conv(b, s->k, s->pre, "lat", s->prev, cout, bias, tn);
}

/* The summed input to cout channels: bottom-up conv (D, computed once per sequential tied area with
 * bottomup = every), then with_lat the lateral conv of h(t-1) (no bias), then the top-down conv upsampled
 * to this area's size, added in that order. -1 when the step has none of them. */
static int emit_inputs(builder *b, const step_in *s, int cout, int with_lat) {
    const rc_model_cfg *cfg = b->cfg;
    const int k = s->k, t = s->t;
    const rc_area_cfg *a = &cfg->areas[k];
    rc_graph *g = &b->m->g;
    int ker = a->kernel, pad = ker / 2;
    char nm[RC_NAME_MAX + 32], tn[RC_NAME_MAX + 32];
    int sum = -1, nterms = 0;
    if (s->x >= 0) {
        int reuse = cfg->unroll == RC_UNROLL_SEQUENTIAL && a->tied && a->bottomup_every && b->drive_cache[k] >= 0;
        if (reuse) {
            sum = add_term(g, a->name, t, sum, b->drive_cache[k], &nterms);
        } else {
            snprintf(nm, sizeof nm, "%s.bu.weight", s->pre);
            int w = conv_param(b, nm, cout, g->tensors[s->x].c, ker);
            int bp = -1;
            if (s->bias) {
                snprintf(nm, sizeof nm, "%s.bu.bias", s->pre);
                bp = vec_param(b, nm, cout, RC_PARAM_NODECAY, 0.0f);
            }
            snprintf(tn, sizeof tn, "%s.t%d.bu", a->name, t);
            int d = rc_emit_conv(g, tn, s->x, w, bp, cout, ker, a->stride, pad);
            b->drive_cache[k] = d;
            sum = add_term(g, a->name, t, sum, d, &nterms);
        }
    }
    if (with_lat && s->prev >= 0) sum = add_term(g, a->name, t, sum, emit_lateral(b, s, cout, 0), &nterms);
    if (s->above >= 0) {
        snprintf(nm, sizeof nm, "%s.td.weight", s->pre);
        int w = conv_param(b, nm, cout, b->C[k + 1], ker);
        snprintf(tn, sizeof tn, "%s.t%d.td", a->name, t);
        int z = rc_emit_conv(g, tn, s->above, w, -1, cout, ker, 1, pad);
        snprintf(tn, sizeof tn, "%s.t%d.td_up", a->name, t);
        sum = add_term(g, a->name, t, sum, rc_emit_upsample(g, tn, z, b->H[k], b->W[k]), &nterms);
    }
    return sum;
}

/* conv: h = relu(N(sum of the inputs)). */
static int cell_conv(builder *b, const step_in *s) {
    const rc_area_cfg *a = &b->cfg->areas[s->k];
    char tn[RC_NAME_MAX + 32];
    int sum = emit_inputs(b, s, b->C[s->k], a->lateral);
    RC_ASSERT(sum >= 0); /* rc_model_cfg_validate rules this out */
    snprintf(tn, sizeof tn, "%s.t%d.norm", a->name, s->t);
    int z = emit_norm(b, s->k, s->pt, "bn", sum, tn);
    snprintf(tn, sizeof tn, "%s.t%d.h", a->name, s->t);
    return rc_emit_unary(&b->m->g, RC_OP_RELU, tn, z);
}

/* residual: u = relu(N(sum)), h = relu(N2(conv2(u)) + skip). */
static int cell_residual(builder *b, const step_in *s) {
    const rc_model_cfg *cfg = b->cfg;
    const rc_area_cfg *a = &cfg->areas[s->k];
    rc_graph *g = &b->m->g;
    const int C = b->C[s->k], t = s->t;
    char tn[RC_NAME_MAX + 32];
    int sum = emit_inputs(b, s, C, a->lateral);
    RC_ASSERT(sum >= 0);
    snprintf(tn, sizeof tn, "%s.t%d.norm", a->name, t);
    int z = emit_norm(b, s->k, s->pt, "bn", sum, tn);
    snprintf(tn, sizeof tn, "%s.t%d.u", a->name, t);
    int u = rc_emit_unary(g, RC_OP_RELU, tn, z);
    snprintf(tn, sizeof tn, "%s.t%d.conv2", a->name, t);
    int v = emit_state_conv(b, s->k, s->pre, "conv2", u, C, s->bias, tn);
    snprintf(tn, sizeof tn, "%s.t%d.norm2", a->name, t);
    v = emit_norm(b, s->k, s->pt, "bn2", v, tn);
    /* the skip adds the block's input: h(t-1), or with recall the recall conv's output (normalised),
     * so the state is recomputed from concat(h(t-1), x) at every step, not accumulated */
    int skip = cfg->recall ? z : s->prev;
    if (skip >= 0) {
        snprintf(tn, sizeof tn, "%s.t%d.skip", a->name, t);
        v = rc_emit_binary(g, RC_OP_ADD, tn, v, skip);
    }
    snprintf(tn, sizeof tn, "%s.t%d.h", a->name, t);
    return rc_emit_unary(g, RC_OP_RELU, tn, v);
}

/* ConvLSTM: gates i, f, o, c~ are channel slices of the normalised summed input (4C). */
static int cell_convlstm(builder *b, const step_in *s) {
    static const char *gate[4] = {"i", "f", "o", "g"};
    const rc_area_cfg *a = &b->cfg->areas[s->k];
    rc_graph *g = &b->m->g;
    const int C = b->C[s->k], k = s->k, t = s->t;
    char tn[RC_NAME_MAX + 32];
    int sum = emit_inputs(b, s, 4 * C, a->lateral);
    RC_ASSERT(sum >= 0);
    snprintf(tn, sizeof tn, "%s.t%d.norm", a->name, t);
    int z = emit_norm(b, k, s->pt, "bn", sum, tn);
    int gt[4] = {-1, -1, -1, -1};
    for (int j = 0; j < 4; j++) {
        if (j == 1 && t == 1) continue; /* c(0) = 0: the forget gate has nothing to act on */
        snprintf(tn, sizeof tn, "%s.t%d.%s_pre", a->name, t, gate[j]);
        int sl = rc_emit_slice(g, tn, z, j * C, C);
        snprintf(tn, sizeof tn, "%s.t%d.%s", a->name, t, gate[j]);
        gt[j] = rc_emit_unary(g, j == 3 ? RC_OP_TANH : RC_OP_SIGMOID, tn, sl);
    }
    snprintf(tn, sizeof tn, "%s.t%d.ig", a->name, t);
    int cnew = rc_emit_binary(g, RC_OP_MUL, tn, gt[0], gt[3]);
    if (t > 1) {
        snprintf(tn, sizeof tn, "%s.t%d.fc", a->name, t);
        int fc = rc_emit_binary(g, RC_OP_MUL, tn, gt[1], b->c[k][t - 1]);
        snprintf(tn, sizeof tn, "%s.t%d.c", a->name, t);
        cnew = rc_emit_binary(g, RC_OP_ADD, tn, fc, cnew);
    }
    b->c[k][t] = cnew;
    snprintf(tn, sizeof tn, "%s.t%d.tanh_c", a->name, t);
    int tc = rc_emit_unary(g, RC_OP_TANH, tn, cnew);
    snprintf(tn, sizeof tn, "%s.t%d.h", a->name, t);
    return rc_emit_binary(g, RC_OP_MUL, tn, gt[2], tc);
}

/* The pre-activation of GRU gate j (channels [jC, (j+1)C)): the drive's slice plus, for z and r, the hidden
 * term's slice; for n the hidden slice goes in gated by r (hr >= 0). Either input may be absent (-1). */
static int gru_pre(builder *b, const step_in *s, int j, int xs, int hs, int r) {
    static const char *gate[3] = {"z", "r", "n"};
    const char *area = b->cfg->areas[s->k].name;
    rc_graph *g = &b->m->g;
    const int C = b->C[s->k];
    char tn[RC_NAME_MAX + 32];
    int xj = -1, hj = -1;
    if (xs >= 0) {
        snprintf(tn, sizeof tn, "%s.t%d.x_%s", area, s->t, gate[j]);
        xj = rc_emit_slice(g, tn, xs, j * C, C);
    }
    if (hs >= 0) {
        snprintf(tn, sizeof tn, "%s.t%d.h_%s", area, s->t, gate[j]);
        hj = rc_emit_slice(g, tn, hs, j * C, C);
        if (j == 2) {
            snprintf(tn, sizeof tn, "%s.t%d.rh_n", area, s->t);
            hj = rc_emit_binary(g, RC_OP_MUL, tn, r, hj);
        }
    }
    if (xj < 0 || hj < 0) return xj >= 0 ? xj : hj;
    snprintf(tn, sizeof tn, "%s.t%d.%s_pre", area, s->t, gate[j]);
    return rc_emit_binary(g, RC_OP_ADD, tn, xj, hj);
}

/* GRU (PyTorch's gate convention, convolutional): drive x = N(bottom-up + top-down) and hidden term
 * hh = Nh(lateral conv of h(t-1)), 3C channels each in the order z, r, n;
 * z = sigmoid(x_z + h_z), r = sigmoid(x_r + h_r), n = tanh(x_n + r * h_n), h = (1 - z) n + z h(t-1).
 * Without h(t-1) (t = 1, no recall): z and n from x alone, h = (1 - z) n. */
static int cell_gru(builder *b, const step_in *s) {
    const rc_area_cfg *a = &b->cfg->areas[s->k];
    rc_graph *g = &b->m->g;
    const int C = b->C[s->k], t = s->t;
    char tn[RC_NAME_MAX + 32];
    int xs = emit_inputs(b, s, 3 * C, 0), hs = -1;
    if (xs >= 0) {
        snprintf(tn, sizeof tn, "%s.t%d.norm", a->name, t);
        xs = emit_norm(b, s->k, s->pt, "bn", xs, tn);
    }
    if (s->prev >= 0) { /* rc_model_cfg_validate: a GRU area has lateral = yes */
        hs = emit_lateral(b, s, 3 * C, s->bias);
        snprintf(tn, sizeof tn, "%s.t%d.norm_h", a->name, t);
        hs = emit_norm(b, s->k, s->pt, "bnh", hs, tn);
    }
    RC_ASSERT(xs >= 0 || hs >= 0);
    int gz = gru_pre(b, s, 0, xs, hs, -1);
    snprintf(tn, sizeof tn, "%s.t%d.z", a->name, t);
    gz = rc_emit_unary(g, RC_OP_SIGMOID, tn, gz);
    int gr = -1;
    if (hs >= 0) { /* the reset gate acts on the hidden term only */
        gr = gru_pre(b, s, 1, xs, hs, -1);
        snprintf(tn, sizeof tn, "%s.t%d.r", a->name, t);
        gr = rc_emit_unary(g, RC_OP_SIGMOID, tn, gr);
    }
    int gn = gru_pre(b, s, 2, xs, hs, gr);
    snprintf(tn, sizeof tn, "%s.t%d.n", a->name, t);
    gn = rc_emit_unary(g, RC_OP_TANH, tn, gn);
    snprintf(tn, sizeof tn, "%s.t%d.h", a->name, t);
    return rc_emit_lerp(g, tn, gz, gn, s->prev);
}

/* The cells, by rc_cell_kind: name (an area's cell = NAME) and emitter, which returns h(t). */
typedef struct {
    const char *name;
    int (*emit)(builder *b, const step_in *s);
} cell_def;
static const cell_def cell_defs[] = {
    [RC_CELL_CONV] = {"conv", cell_conv},
    [RC_CELL_RESIDUAL] = {"residual", cell_residual},
    [RC_CELL_CONVLSTM] = {"convlstm", cell_convlstm},
    [RC_CELL_GRU] = {"gru", cell_gru},
};
_Static_assert(sizeof cell_defs / sizeof cell_defs[0] == RC_CELL_COUNT, "one cell_defs entry per rc_cell_kind");

/* One step t of area k with bottom-up input tensor x: what it reads, then its cell. */
static void emit_step(builder *b, int k, int t, int x) {
    const rc_model_cfg *cfg = b->cfg;
    const rc_area_cfg *a = &cfg->areas[k];
    rc_graph *g = &b->m->g;
    step_in s;
    int tt = t + b->cont; /* the model's step */
    s.k = k;
    s.t = t;
    s.pt = tt < a->iterations ? tt : a->iterations; /* param step: past the trained T, reuse step T's */
    if (a->tied)
        snprintf(s.pre, sizeof s.pre, "%s", a->name);
    else
        snprintf(s.pre, sizeof s.pre, "%s.t%d", a->name, s.pt);
    s.x = tt == 1 || a->bottomup_every ? x : -1;
    s.above = a->topdown && t > 1 && k + 1 < cfg->nareas ? b->h[k + 1][t - 1] : -1;
    s.prev = b->h[k][t - 1]; /* -1 at t = 1 unless recall or continuing */
    s.bias = cfg->norm == RC_NORM_NONE;
    int first_node = g->nnodes;
    b->cur_area = k;
    rc_graph_set_step(g, b->nsteps++); /* the readout after this step shares its tag */
    b->h[k][t] = cell_defs[a->cell].emit(b, &s);
    set_node_area(b, first_node);
}

/* The dense head on h_K(t): conv (kernel of the top area) -> relu per hidden width, then a conv to the
 * classes: logits (classes, H, W), a graph output (plain layout). */
static int emit_dense_head(builder *b, int t, const char *pre) {
    const rc_model_cfg *cfg = b->cfg;
    rc_graph *g = &b->m->g;
    int K = cfg->nareas, ker = cfg->areas[K - 1].kernel;
    int x = b->h[K - 1][t], cin = b->C[K - 1];
    char nm[RC_NAME_MAX + 32], tn[RC_NAME_MAX + 32];
    for (int i = 0; i <= cfg->head_nch; i++) {
        int last = i == cfg->head_nch, cout = last ? cfg->classes : cfg->head_ch[i];
        char lname[16];
        if (last)
            snprintf(lname, sizeof lname, "out");
        else
            snprintf(lname, sizeof lname, "conv%d", i + 1);
        snprintf(nm, sizeof nm, "%s.%s.weight", pre, lname);
        int w = conv_param(b, nm, cout, cin, ker);
        snprintf(nm, sizeof nm, "%s.%s.bias", pre, lname);
        int bp = vec_param(b, nm, cout, RC_PARAM_NODECAY, 0.0f);
        snprintf(tn, sizeof tn, "readout.t%d.%s", t, last ? "logits" : lname);
        x = rc_emit_conv(g, tn, x, w, bp, cout, ker, 1, ker / 2);
        if (!last) {
            snprintf(tn, sizeof tn, "readout.t%d.%s_relu", t, lname);
            x = rc_emit_unary(g, RC_OP_RELU, tn, x);
        }
        cin = cout;
    }
    return x;
}

static void emit_readout(builder *b, int t) {
    const rc_model_cfg *cfg = b->cfg;
    rc_model *m = b->m;
    rc_graph *g = &m->g;
    int K = cfg->nareas, first_node = g->nnodes;
    int R_trained = cfg->areas[K - 1].iterations;
    int pt = t + b->cont < R_trained ? t + b->cont : R_trained;
    char pre[RC_NAME_MAX], nm[RC_NAME_MAX + 16], tn[RC_NAME_MAX];
    if (cfg->head_per_iter)
        snprintf(pre, sizeof pre, "head.t%d", pt);
    else
        snprintf(pre, sizeof pre, "head");
    if (cfg->readout == RC_READOUT_DENSE) {
        int y = emit_dense_head(b, t, pre);
        rc_graph_mark_output(g, y);
        m->readout[m->nreadouts++] = y;
        b->cur_area = -1;
        set_node_area(b, first_node);
        return;
    }
    int CK = b->C[K - 1];
    snprintf(nm, sizeof nm, "%s.weight", pre);
    int shape[2] = {cfg->classes, CK};
    int w = rc_graph_param(g, nm, 2, shape, RC_PARAM_WEIGHT);
    g->params[w].init_uniform = 1.0f / sqrtf((float)CK);
    snprintf(nm, sizeof nm, "%s.bias", pre);
    int bp = vec_param(b, nm, cfg->classes, RC_PARAM_NODECAY, 0.0f);
    g->params[bp].init_const = 0.0f;
    g->params[bp].init_uniform = 1.0f / sqrtf((float)CK);
    snprintf(tn, sizeof tn, "readout.t%d.pool", t);
    int p = rc_emit_gap(g, tn, b->h[K - 1][t]);
    snprintf(tn, sizeof tn, "readout.t%d.logits", t);
    int y = rc_emit_linear(g, tn, p, w, bp, cfg->classes);
    rc_graph_mark_output(g, y);
    m->halt[m->nreadouts] = -1;
    if (cfg->halting == RC_HALT_PONDER) {
        /* halting logit s(t) = linear(gap(h_K(t))) -> 1; per_iter: steps >= T - 1 share step T - 1's head
         * (step T's lambda is 1 in training, so a head of its own would never be trained) */
        char hp[32];
        if (cfg->head_per_iter)
            snprintf(hp, sizeof hp, "halt.t%d", pt < R_trained ? pt : R_trained - 1);
        else
            snprintf(hp, sizeof hp, "halt");
        snprintf(nm, sizeof nm, "%s.weight", hp);
        int hshape[2] = {1, CK};
        int hw = rc_graph_param(g, nm, 2, hshape, RC_PARAM_WEIGHT);
        g->params[hw].init_uniform = 1.0f / sqrtf((float)CK);
        snprintf(nm, sizeof nm, "%s.bias", hp);
        int hb = vec_param(b, nm, 1, RC_PARAM_NODECAY, 0.0f);
        g->params[hb].init_uniform = 1.0f / sqrtf((float)CK);
        snprintf(tn, sizeof tn, "halt.t%d.logit", t);
        int s = rc_emit_linear(g, tn, p, hw, hb, 1);
        rc_graph_mark_output(g, s);
        m->halt[m->nreadouts] = s;
    }
    m->readout[m->nreadouts++] = y;
    b->cur_area = -1;
    set_node_area(b, first_node);
}

/* Recall: area k's h(0) = relu(conv_proj(x) (+ bias)), at the area's stride. */
static void emit_projection(builder *b, int k, int x) {
    const rc_area_cfg *a = &b->cfg->areas[k];
    rc_graph *g = &b->m->g;
    char nm[RC_NAME_MAX + 32], tn[RC_NAME_MAX + 32];
    int first_node = g->nnodes;
    b->cur_area = k;
    rc_graph_set_step(g, b->nsteps); /* with the step that reads it */
    snprintf(nm, sizeof nm, "%s.proj.weight", a->name);
    int w = conv_param(b, nm, b->C[k], g->tensors[x].c, a->kernel);
    int bp = -1;
    if (b->cfg->norm == RC_NORM_NONE) {
        snprintf(nm, sizeof nm, "%s.proj.bias", a->name);
        bp = vec_param(b, nm, b->C[k], RC_PARAM_NODECAY, 0.0f);
    }
    snprintf(tn, sizeof tn, "%s.proj", a->name);
    int p = rc_emit_conv(g, tn, x, w, bp, b->C[k], a->kernel, a->stride, a->kernel / 2);
    snprintf(tn, sizeof tn, "%s.t0.h", a->name);
    b->h[k][0] = rc_emit_unary(g, RC_OP_RELU, tn, p);
    set_node_area(b, first_node);
}

static rc_status build(const rc_model_cfg *cfg_in, int batch, int iterations_override, int flags, const int *keep_area,
                       rc_model *m);

rc_status rc_model_build(const rc_model_cfg *cfg, int batch, int iterations_override, rc_model *m) {
    return build(cfg, batch, iterations_override, 0, NULL, m);
}

rc_status rc_model_build_keep(const rc_model_cfg *cfg, int batch, int iterations_override, const int *keep_area,
                              rc_model *m) {
    return build(cfg, batch, iterations_override, 0, keep_area, m);
}

rc_status rc_model_build_ex(const rc_model_cfg *cfg, int batch, int iterations_override, int flags, rc_model *m) {
    return build(cfg, batch, iterations_override, flags, NULL, m);
}

static rc_status build(const rc_model_cfg *cfg_in, int batch, int iterations_override, int flags, const int *keep_area,
                       rc_model *m) {
    memset(m, 0, sizeof *m);
    m->cfg = *cfg_in;
    m->state_in = m->state_out = -1;
    for (int t = 0; t <= RC_MAX_ITERS; t++) m->state[t] = -1;
    for (int r = 0; r < RC_MAX_READOUTS; r++) m->halt[r] = -1;
    rc_model_cfg *cfg = &m->cfg;
    if (rc_model_cfg_validate(cfg)) return RC_ERR;
    if ((flags & RC_BUILD_CONTINUE) && rc_model_can_continue(cfg)) {
        char why[256];
        snprintf(why, sizeof why, "%s", rc_error());
        return rc_fail("cannot continue this model from a state: %s", why);
    }
    if (batch < 1 || batch > 65536) return rc_fail("batch %d out of range 1..65536", batch);
    builder *b = rc_xcalloc(1, sizeof *b);
    b->m = m;
    b->cfg = cfg;
    b->cont = (flags & RC_BUILD_CONTINUE) != 0;
    int K = cfg->nareas;
    for (int k = 0; k < K; k++) b->h[k][0] = -1;
    int h = cfg->in_h, w = cfg->in_w;
    for (int k = 0; k < K; k++) {
        const rc_area_cfg *a = &cfg->areas[k];
        if (iterations_override > 0 && !a->tied && iterations_override != a->iterations) {
            free(b);
            return rc_fail("area %s is untied (feedforward, %d distinct layers): it cannot be unrolled for %d "
                           "iterations; only tied areas can",
                           a->name, a->iterations, iterations_override);
        }
        if (iterations_override > RC_MAX_ITERS) {
            free(b);
            return rc_fail("iterations %d out of range 1..%d", iterations_override, RC_MAX_ITERS);
        }
        b->T[k] = iterations_override > 0 ? iterations_override : a->iterations;
        int p = a->kernel / 2;
        h = (h + 2 * p - a->kernel) / a->stride + 1;
        w = (w + 2 * p - a->kernel) / a->stride + 1;
        b->C[k] = a->channels;
        b->H[k] = m->area_h[k] = h;
        b->W[k] = m->area_w[k] = w;
        b->drive_cache[k] = -1;
    }
    rc_graph *g = &m->g;
    rc_graph_init(g, batch);
    m->input = rc_graph_tensor(g, "input", cfg->in_c, cfg->in_h, cfg->in_w);
    g->tensors[m->input].is_input = 1;
    g->input = m->input;
    if (b->cont) {
        m->state_in = rc_graph_tensor(g, "state", b->C[0], b->H[0], b->W[0]);
        g->tensors[m->state_in].is_input = 1;
        b->h[0][0] = m->state_in;
    }
    /* node -> area map, grown with the graph */
    size_t cap = 0;
    if (cfg->unroll == RC_UNROLL_SEQUENTIAL) {
        for (int k = 0; k < K; k++) {
            int x = k == 0 ? m->input : b->h[k - 1][b->T[k - 1]];
            if (cfg->recall && !b->cont) {
                if ((size_t)g->nnodes + 64 > cap) {
                    cap = 2 * cap + 256;
                    m->node_area = rc_xrealloc(m->node_area, cap * sizeof(int));
                }
                emit_projection(b, k, x);
            }
            for (int t = 1; t <= b->T[k]; t++) {
                if ((size_t)g->nnodes + 64 > cap) {
                    cap = 2 * cap + 256;
                    m->node_area = rc_xrealloc(m->node_area, cap * sizeof(int));
                }
                emit_step(b, k, t, x);
                if (k == K - 1) emit_readout(b, t);
            }
        }
    } else {
        int T = b->T[0];
        for (int t = 1; t <= T; t++) {
            for (int k = 0; k < K; k++) {
                if ((size_t)g->nnodes + 64 > cap) {
                    cap = 2 * cap + 256;
                    m->node_area = rc_xrealloc(m->node_area, cap * sizeof(int));
                }
                int x = k == 0 ? m->input : b->h[k - 1][t];
                emit_step(b, k, t, x);
                if (k == K - 1) emit_readout(b, t);
            }
        }
    }
    for (int k = 0; k < K; k++) {
        m->area_out[k] = b->h[k][b->T[k]];
        m->area_steps[k] = b->T[k];
        m->area_state[k] = rc_xmalloc((size_t)b->T[k] * sizeof(int));
        for (int t = 1; t <= b->T[k]; t++) {
            m->area_state[k][t - 1] = b->h[k][t];
            if (keep_area && keep_area[k]) rc_graph_keep(g, b->h[k][t]);
        }
    }
    for (int t = 0; t <= b->T[K - 1]; t++) m->state[t] = b->h[K - 1][t];
    if (flags & RC_BUILD_STATE_OUT) {
        m->state_out = b->h[K - 1][b->T[K - 1]];
        rc_graph_mark_output(g, m->state_out);
    }
    free(b);
    rc_model_set_loss_weights(m, 0, 1);
    rc_graph_set_recompute(g, cfg->recompute);
    if (rc_graph_plan(g)) {
        rc_model_free(m);
        return RC_ERR;
    }
    return RC_OK;
}

void rc_model_free(rc_model *m) {
    rc_graph_free(&m->g);
    free(m->node_area);
    m->node_area = NULL;
    for (int k = 0; k < RC_MAX_AREAS; k++) {
        free(m->area_state[k]);
        m->area_state[k] = NULL;
    }
}

rc_status rc_model_share_params(rc_model *dst, const rc_model *src) {
    for (int i = 0; i < dst->g.nparams; i++) {
        rc_param *p = &dst->g.params[i];
        int j = rc_graph_find_param(&src->g, p->name);
        if (j < 0 || src->g.params[j].numel != p->numel)
            return rc_fail("param %s of the model has no counterpart of its shape to share", p->name);
        const rc_param *q = &src->g.params[j];
        p->w = q->w;
        p->g = q->g;
        p->m = q->m;
        p->v = q->v;
    }
    return RC_OK;
}

double rc_model_loss_dense(rc_model *m, const uint8_t *targets, const uint8_t *mask, const float *w, double *ce_out,
                           int want_grad) {
    rc_graph *g = &m->g;
    RC_ASSERT(m->cfg.readout == RC_READOUT_DENSE);
    double total = 0;
    for (int r = 0; r < m->nreadouts; r++) {
        rc_tensor *y = &g->tensors[m->readout[r]];
        float wr = w ? w[r] : m->w_fine[r];
        RC_ASSERT(y->layout == RC_LAYOUT_NCHW);
        int hw = y->h * y->w;
        if (wr != 0.0f)
            total += rc_xent_dense_forward_backward(g->batch, y->c, hw, y->x, targets, mask, wr,
                                                    want_grad ? y->dx : NULL, 0);
        else if (want_grad)
            memset(y->dx, 0, (size_t)g->batch * y->c * hw * sizeof(float));
        if (ce_out) ce_out[r] = rc_xent_dense_forward_backward(g->batch, y->c, hw, y->x, targets, mask, 1.0f, NULL, 0);
    }
    return total;
}

/* PonderNet: per image, L_i = sum_n p_n CE_n + beta KL(p || q) (ponder.h), averaged over the batch;
 * d L / d logits_n = p_n (softmax_n - onehot) / N and d L / d s_n from rc_ponder_loss, / N. */
static double ponder_loss(rc_model *m, const int *labels, double *ce_out, int want_grad) {
    rc_graph *g = &m->g;
    int N = g->batch, K = m->cfg.classes, R = m->nreadouts;
    double logq[RC_MAX_READOUTS], ce[RC_MAX_READOUTS], s[RC_MAX_READOUTS], p[RC_MAX_READOUTS],
        ds[RC_MAX_READOUTS];
    rc_ponder_log_prior(R, m->cfg.ponder_lambda, logq);
    if (ce_out)
        for (int r = 0; r < R; r++) ce_out[r] = 0;
    double total = 0;
    for (int i = 0; i < N; i++) {
        for (int r = 0; r < R; r++) {
            const float *l = g->tensors[m->readout[r]].x + (size_t)i * K;
            double mx = l[0], z = 0;
            for (int j = 1; j < K; j++) mx = l[j] > mx ? l[j] : mx;
            for (int j = 0; j < K; j++) z += exp((double)l[j] - mx);
            ce[r] = mx + log(z) - (double)l[labels[i]];
            s[r] = g->tensors[m->halt[r]].x[i];
            if (ce_out) ce_out[r] += ce[r] / N;
        }
        total += rc_ponder_loss(R, ce, s, m->cfg.ponder_beta, logq, p, want_grad ? ds : NULL) / N;
        if (!want_grad) continue;
        for (int r = 0; r < R; r++) {
            const float *l = g->tensors[m->readout[r]].x + (size_t)i * K;
            float *dl = g->tensors[m->readout[r]].dx + (size_t)i * K;
            /* softmax_j = exp(l_j - logsumexp) = exp(l_j - l_label - ce) */
            for (int j = 0; j < K; j++) {
                double sm = exp((double)l[j] - (double)l[labels[i]] - ce[r]);
                dl[j] = (float)(p[r] * (sm - (j == labels[i])) / N);
            }
            g->tensors[m->halt[r]].dx[i] = (float)(ds[r] / N);
        }
    }
    return total;
}

double rc_model_loss(rc_model *m, const int *labels, const int *coarse_of, double *ce_out, int want_grad) {
    rc_graph *g = &m->g;
    RC_ASSERT(m->cfg.readout == RC_READOUT_POOL);
    if (m->cfg.halting == RC_HALT_PONDER) return ponder_loss(m, labels, ce_out, want_grad);
    int N = g->batch, K = m->cfg.classes;
    double total = 0;
    for (int r = 0; r < m->nreadouts; r++) {
        rc_tensor *y = &g->tensors[m->readout[r]];
        float wc = coarse_of ? m->w_coarse[r] : 0.0f;
        RC_ASSERT(coarse_of || m->w_coarse[r] == 0.0f);
        total += rc_xent_forward_backward(N, K, y->x, labels, m->w_fine[r], coarse_of, wc, want_grad ? y->dx : NULL,
                                          0);
        if (ce_out) ce_out[r] = rc_xent_forward_backward(N, K, y->x, labels, 1.0f, NULL, 0.0f, NULL, 0);
    }
    return total;
}

int rc_model_effective_depth(const rc_model *m) {
    return rc_graph_depth_to(&m->g, m->readout[m->nreadouts - 1]);
}

const char *rc_cell_name(rc_cell_kind c) { return cell_defs[c].name; }
