/* graph_exec.c — running one exec node of the plan forward (train, eval, or replay for recomputation)
 * or backward, over the whole batch or over images [b0, b1) (one phase of the chunked schedule,
 * graph_sched.c): the dispatch from nodes to ops, with each tensor's layout, the fused ops, the planned
 * overwrite/accumulate flags, and the saved batch-norm statistics. */
#include "graph.h"

#include <math.h>

#include "ops/ops.h"

static float *pw(rc_graph *g, int p) { return p >= 0 ? g->params[p].w : NULL; }
static float *pgr(rc_graph *g, int p) { return p >= 0 ? g->params[p].g : NULL; }
/* Tensor t's value / gradient from image b0 on (NULL stays NULL). */
static float *at(const rc_graph *g, float *p, int t, int b0) {
    return p ? p + (size_t)b0 * rc_tensor_floats(&g->tensors[t]) : NULL;
}
static float *X(rc_graph *g, int t, int b0) {
    const rc_tensor *x = &g->tensors[t];
    return g->eval_on && x->ev ? x->ev : at(g, x->x, t, b0); /* the eval pipeline's slot, or images from b0 */
}
static float *DX(rc_graph *g, int t, int b0) { return at(g, g->tensors[t].dx, t, b0); }
/* The input image needs no gradient: NULL skips writing it. */
static float *gin(rc_graph *g, int t, int b0) { return g->tensors[t].is_input ? NULL : DX(g, t, b0); }

static rc_conv_dims node_conv_dims(const rc_graph *g, const rc_node *n, int nb) {
    const rc_tensor *x = &g->tensors[n->in[0]], *y = &g->tensors[n->out];
    rc_conv_dims d;
    rc_conv_dims_init(&d, nb, x->c, x->h, x->w, y->c, n->k, n->stride, n->pad);
    d.x_layout = x->layout;
    d.y_layout = y->layout;
    return d;
}

/* The statistics of the batch norm inside node n (BNACT, or LSTM with bn) on input x, per bnmode, in one
 * call over the whole batch. */
static void bn_stats_whole(rc_graph *g, const rc_node *n, const rc_tensor *x, int bnmode) {
    float *mean = g->save + n->save_off;
    rc_bn_stats(g->batch, x->c, x->h * x->w, x->layout, x->x, mean, mean + x->c, pw(g, n->param[2]),
                pw(g, n->param[3]), n->momentum, n->eps, bnmode, g->work);
}

/* The same in phases: STATS (partial sums of images [b0, b1)) and FINISH. */
static void fwd_stats(rc_graph *g, const rc_node *n, const rc_tensor *x, int bnmode, int phase, int b0, int b1) {
    const int N = g->batch, hw = x->h * x->w;
    float *mean = g->save + n->save_off;
    if (phase == RC_PH_STATS) {
        if (bnmode == RC_BN_TRAIN) rc_bn_stats_part(N, x->c, hw, x->layout, x->x, b0, b1, g->work);
    } else if (bnmode == RC_BN_TRAIN) {
        rc_bn_stats_finish(N, x->c, hw, x->layout, mean, mean + x->c, pw(g, n->param[2]), pw(g, n->param[3]),
                           n->momentum, n->eps, g->work);
    } else {
        bn_stats_whole(g, n, x, bnmode);
    }
}

/* Eval pipeline: does conv node c run its batch norm (c->efuse) itself now? (The plan marks the pair; the
 * Winograd forward must be the one running: a shape that qualifies, recur's kernels switched on.) */
static int eval_fused(const rc_graph *g, const rc_node *c, int mode) {
    if (mode != RC_RUN_EVAL || c->efuse < 0 || !g->eval_on) return 0;
    rc_conv_dims d = node_conv_dims(g, c, g->batch);
    return rc_conv2d_forward_is_wino(&d);
}

/* Conv node c's weights and bias with its batch norm b folded in (eval, once per pass: the FINISH phase of
 * b): w' = w sc, b' = (b - mean) sc + beta with sc = gamma rstd from the running statistics (as rc_bn_stats
 * computes them in eval). */
static void fold_bn(rc_graph *g, const rc_node *c) {
    const rc_node *b = &g->xnodes[c->efuse];
    const int K = g->tensors[c->out].c;
    const size_t per_k = g->params[c->param[0]].numel / (size_t)K;
    const float *w = pw(g, c->param[0]), *bias = pw(g, c->param[1]), *gamma = pw(g, b->param[0]);
    const float *beta = pw(g, b->param[1]), *rm = pw(g, b->param[2]), *rv = pw(g, b->param[3]);
    float *wf = g->fold + c->fold_off, *bf = wf + per_k * K;
    for (int k = 0; k < K; k++) {
        const float sc = (gamma ? gamma[k] : 1.0f) * (float)(1.0 / sqrt((double)rv[k] + (double)b->eps));
        for (size_t j = 0; j < per_k; j++) wf[k * per_k + j] = w[k * per_k + j] * sc;
        bf[k] = ((bias ? bias[k] : 0.0f) - rm[k]) * sc + (beta ? beta[k] : 0.0f);
    }
}

/* Conv node c with its batch norm b folded in (fold_bn), then the residual and relu in the epilogue,
 * written straight into b's output; b's pooled readout (out2) after. */
static void conv_bn_eval(rc_graph *g, const rc_node *c, int b0, int b1) {
    const rc_node *b = &g->xnodes[c->efuse];
    const int N = b1 - b0;
    rc_conv_dims d = node_conv_dims(g, c, N);
    const float *wf = g->fold + c->fold_off, *bf = wf + g->params[c->param[0]].numel;
    const rc_tensor *y = &g->tensors[b->out];
    rc_conv2d_wino_forward_ep(&d, X(g, c->in[0], b0), wf, pw(g, c->param[0]), bf,
                              b->nin > 1 ? X(g, b->in[1], b0) : NULL, b->relu, X(g, b->out, b0));
    if (b->out2 >= 0) rc_gap_forward_l(N, y->c, y->h * y->w, y->layout, X(g, b->out, b0), X(g, b->out2, b0));
}

void rc_graph_exec_forward_phase(rc_graph *g, int i, int mode, int phase, int b0, int b1) {
    rc_node *n = &g->xnodes[i];
    const int train = mode != RC_RUN_EVAL;
    const int bnmode = mode == RC_RUN_TRAIN ? RC_BN_TRAIN : mode == RC_RUN_EVAL ? RC_BN_EVAL : RC_BN_REPLAY;
    const int whole = phase == RC_PH_ALL && b0 == 0 && b1 == g->batch;
    if (phase == RC_PH_FINISH) b0 = 0, b1 = g->batch;
    const int N = b1 - b0, o = n->out;
    rc_tensor *y = &g->tensors[o];
    const rc_tensor *x = &g->tensors[n->in[0]];
    const int xi = n->in[0], x1 = n->nin > 1 ? n->in[1] : -1;
    const size_t numel = (size_t)N * rc_tensor_floats(y);
    const int hw = x->h * x->w;
    float *mean = g->save + n->save_off;
    if (n->op == RC_OP_BNACT && n->eabs >= 0 && eval_fused(g, &g->xnodes[n->eabs], mode)) {
        if (phase == RC_PH_FINISH) fold_bn(g, &g->xnodes[n->eabs]); /* its statistics go into the conv */
        return; /* the conv runs the rest */
    }
    if (phase == RC_PH_STATS || phase == RC_PH_FINISH) {
        RC_ASSERT(rc_node_bn_phased(n));
        fwd_stats(g, n, x, bnmode, phase, b0, b1);
        return;
    }
    switch (n->op) {
    case RC_OP_CONV: {
        if (eval_fused(g, n, mode)) {
            conv_bn_eval(g, n, b0, b1);
            break;
        }
        rc_conv_dims d = node_conv_dims(g, n, N);
        if (x1 >= 0) /* fused with the add after it */
            rc_conv2d_forward_add(&d, X(g, xi, b0), pw(g, n->param[0]), pw(g, n->param[1]), X(g, x1, b0), X(g, o, b0));
        else
            rc_conv2d_forward(&d, X(g, xi, b0), pw(g, n->param[0]), pw(g, n->param[1]), X(g, o, b0));
        break;
    }
    case RC_OP_BATCHNORM: /* reference path; a replay recomputes the same statistics, running stats untouched */
        RC_ASSERT(whole);
        rc_batchnorm_forward(N, x->c, hw, x->x, pw(g, n->param[0]), pw(g, n->param[1]), y->x, mean, mean + x->c,
                             mode == RC_RUN_REPLAY ? NULL : pw(g, n->param[2]),
                             mode == RC_RUN_REPLAY ? NULL : pw(g, n->param[3]), n->momentum, n->eps, train);
        break;
    case RC_OP_BNACT: {
        /* whole: statistics, then the rest; APPLY (or REPLAY): the rest, with the statistics already made */
        if (phase == RC_PH_ALL) {
            RC_ASSERT(whole || bnmode == RC_BN_REPLAY);
            bn_stats_whole(g, n, x, bnmode);
        }
        rc_bnact_forward_range(N, x->c, hw, x->layout, X(g, xi, b0), x1 >= 0 ? X(g, x1, b0) : NULL,
                               pw(g, n->param[0]), pw(g, n->param[1]), X(g, o, b0),
                               n->out2 >= 0 ? X(g, n->out2, b0) : NULL, mean, mean + x->c, n->relu, 0, N);
        break;
    }
    case RC_OP_LSTM: {
        if (n->bn && phase == RC_PH_ALL) {
            RC_ASSERT(whole || bnmode == RC_BN_REPLAY);
            bn_stats_whole(g, n, x, bnmode);
        }
        rc_lstm_forward(N, y->c, hw, x->layout, X(g, xi, b0), x1 >= 0 ? X(g, x1, b0) : NULL, pw(g, n->param[0]),
                        pw(g, n->param[1]), n->bn ? mean : NULL, n->bn ? mean + x->c : NULL, X(g, n->out2, b0),
                        X(g, o, b0));
        break;
    }
    case RC_OP_RELU: rc_relu_forward(numel, X(g, xi, b0), X(g, o, b0)); break;
    case RC_OP_SIGMOID: rc_sigmoid_forward(numel, X(g, xi, b0), X(g, o, b0)); break;
    case RC_OP_TANH: rc_tanh_forward(numel, X(g, xi, b0), X(g, o, b0)); break;
    case RC_OP_ADD: rc_add_forward(numel, X(g, xi, b0), X(g, x1, b0), X(g, o, b0)); break;
    case RC_OP_MUL: rc_mul_forward(numel, X(g, xi, b0), X(g, x1, b0), X(g, o, b0)); break;
    case RC_OP_LERP:
        rc_lerp_forward(numel, X(g, xi, b0), X(g, x1, b0), n->nin > 2 ? X(g, n->in[2], b0) : NULL, X(g, o, b0));
        break;
    case RC_OP_CONCAT: {
        int cs[RC_MAX_IN];
        const float *xs[RC_MAX_IN];
        for (int j = 0; j < n->nin; j++) {
            cs[j] = g->tensors[n->in[j]].c;
            xs[j] = X(g, n->in[j], b0);
        }
        rc_concat_forward(N, n->nin, cs, y->h * y->w, xs, X(g, o, b0));
        break;
    }
    case RC_OP_SLICE:
        rc_slice_forward_l(N, x->c, hw, x->layout, n->k, n->stride, X(g, xi, b0), X(g, o, b0));
        break;
    case RC_OP_MAXPOOL:
    case RC_OP_AVGPOOL: {
        rc_pool_dims d;
        rc_pool_dims_init(&d, N, x->c, x->h, x->w, n->k, n->stride, n->pad);
        if (n->op == RC_OP_MAXPOOL)
            rc_maxpool_forward(&d, X(g, xi, b0), X(g, o, b0));
        else
            rc_avgpool_forward(&d, X(g, xi, b0), X(g, o, b0));
        break;
    }
    case RC_OP_GAP: rc_gap_forward_l(N, x->c, hw, x->layout, X(g, xi, b0), X(g, o, b0)); break;
    case RC_OP_UPSAMPLE:
        rc_upsample_forward_l(N, x->c, x->h, x->w, y->h, y->w, x->layout, X(g, xi, b0), X(g, o, b0));
        break;
    case RC_OP_LINEAR:
        rc_linear_forward(N, x->c * hw, y->c, X(g, xi, b0), pw(g, n->param[0]), pw(g, n->param[1]), X(g, o, b0));
        break;
    default: RC_ASSERT(0 && "unknown op");
    }
}

void rc_graph_exec_forward(rc_graph *g, int i, int mode) { rc_graph_exec_forward_phase(g, i, mode, RC_PH_ALL, 0, g->batch); }

static rc_bnact_grad bnact_grad(rc_graph *g, const rc_node *n) {
    const rc_tensor *x = &g->tensors[n->in[0]], *y = &g->tensors[n->out];
    const float *mean = g->save + n->save_off;
    rc_bnact_grad a = {g->batch,
                       x->c,
                       x->h * x->w,
                       x->layout,
                       x->x,
                       y->x,
                       pw(g, n->param[0]),
                       pw(g, n->param[1]),
                       mean,
                       mean + x->c,
                       n->dout_ok ? y->dx : NULL,
                       n->dout2_ok ? g->tensors[n->out2].dx : NULL,
                       gin(g, n->in[0], 0),
                       n->acc[0],
                       n->nin > 1 ? gin(g, n->in[1], 0) : NULL,
                       n->nin > 1 ? n->acc[1] : 0,
                       pgr(g, n->param[0]),
                       pgr(g, n->param[1]),
                       1,
                       n->relu,
                       n->nin > 1,
                       g->work,
                       g->sums + n->sums_off};
    return a;
}

void rc_graph_exec_backward_phase(rc_graph *g, int i, int phase, int b0, int b1) {
    rc_node *n = &g->xnodes[i];
    if (!n->active) return; /* no gradient reaches its outputs */
    const int whole = b0 == 0 && b1 == g->batch;
    const int N = b1 - b0, o = n->out, xi = n->in[0], x1 = n->nin > 1 ? n->in[1] : -1;
    rc_tensor *y = &g->tensors[o];
    const rc_tensor *x = &g->tensors[xi];
    const size_t numel = (size_t)N * rc_tensor_floats(y);
    const int hw = x->h * x->w;
    float *dx0 = gin(g, xi, b0), *dy = DX(g, o, b0);
    const float *mean = g->save + n->save_off;
    if (n->op == RC_OP_BNACT) {
        rc_bnact_grad a = bnact_grad(g, n);
        if (phase == RC_PH_ALL || phase == RC_PH_STATS) rc_bnact_backward_reduce(&a, b0, b1);
        if (phase == RC_PH_ALL || phase == RC_PH_FINISH) rc_bnact_backward_finish(&a);
        if (phase == RC_PH_ALL || phase == RC_PH_APPLY) rc_bnact_backward_apply(&a, b0, b1);
        return;
    }
    RC_ASSERT(phase == RC_PH_ALL);
    switch (n->op) {
    case RC_OP_CONV: {
        rc_conv_dims d = node_conv_dims(g, n, N);
        rc_conv2d_backward(&d, X(g, xi, b0), pw(g, n->param[0]), dy, dx0, n->acc[0], pgr(g, n->param[0]),
                           pgr(g, n->param[1]));
        if (x1 >= 0) rc_add_backward(numel, dy, NULL, 0, gin(g, x1, b0), n->acc[1]); /* the fused add's */
        break;
    }
    case RC_OP_BATCHNORM:
        RC_ASSERT(whole);
        rc_batchnorm_backward(N, x->c, hw, x->x, pw(g, n->param[0]), mean, mean + x->c, y->dx, dx0, n->acc[0],
                              pgr(g, n->param[0]), pgr(g, n->param[1]), 1);
        break;
    case RC_OP_LSTM: {
        RC_ASSERT(whole && dx0 != NULL && n->acc[0] == 0);
        const rc_tensor *c = &g->tensors[n->out2];
        rc_lstm_backward(N, y->c, hw, x->layout, x->x, x1 >= 0 ? g->tensors[x1].x : NULL, c->x,
                         pw(g, n->param[0]), pw(g, n->param[1]), n->bn ? mean : NULL, n->bn ? mean + x->c : NULL,
                         n->dout_ok ? y->dx : NULL, n->dout2_ok ? c->dx : NULL, dx0, x1 >= 0 ? gin(g, x1, 0) : NULL,
                         x1 >= 0 ? n->acc[1] : 0, pgr(g, n->param[0]), pgr(g, n->param[1]), 1, g->work);
        break;
    }
    case RC_OP_RELU: rc_relu_backward(numel, X(g, xi, b0), dy, dx0, n->acc[0]); break;
    case RC_OP_SIGMOID: rc_sigmoid_backward(numel, X(g, o, b0), dy, dx0, n->acc[0]); break;
    case RC_OP_TANH: rc_tanh_backward(numel, X(g, o, b0), dy, dx0, n->acc[0]); break;
    case RC_OP_ADD: rc_add_backward(numel, dy, dx0, n->acc[0], gin(g, x1, b0), n->acc[1]); break;
    case RC_OP_MUL:
        rc_mul_backward(numel, X(g, xi, b0), X(g, x1, b0), dy, dx0, n->acc[0], gin(g, x1, b0), n->acc[1]);
        break;
    case RC_OP_LERP: {
        const int x2 = n->nin > 2 ? n->in[2] : -1;
        rc_lerp_backward(numel, X(g, xi, b0), X(g, x1, b0), x2 >= 0 ? X(g, x2, b0) : NULL, dy, dx0, n->acc[0],
                         gin(g, x1, b0), n->acc[1], x2 >= 0 ? gin(g, x2, b0) : NULL, x2 >= 0 ? n->acc[2] : 0);
        break;
    }
    case RC_OP_CONCAT: {
        int cs[RC_MAX_IN];
        float *dxs[RC_MAX_IN];
        for (int j = 0; j < n->nin; j++) {
            cs[j] = g->tensors[n->in[j]].c;
            dxs[j] = gin(g, n->in[j], b0);
        }
        rc_concat_backward(N, n->nin, cs, y->h * y->w, dy, dxs, n->acc);
        break;
    }
    case RC_OP_SLICE: rc_slice_backward_l(N, x->c, hw, x->layout, n->k, n->stride, dy, dx0, n->acc[0]); break;
    case RC_OP_MAXPOOL:
    case RC_OP_AVGPOOL: {
        rc_pool_dims d;
        rc_pool_dims_init(&d, N, x->c, x->h, x->w, n->k, n->stride, n->pad);
        if (n->op == RC_OP_MAXPOOL)
            rc_maxpool_backward(&d, X(g, xi, b0), dy, dx0, n->acc[0]);
        else
            rc_avgpool_backward(&d, dy, dx0, n->acc[0]);
        break;
    }
    case RC_OP_GAP: rc_gap_backward_l(N, x->c, hw, x->layout, dy, dx0, n->acc[0]); break;
    case RC_OP_UPSAMPLE:
        rc_upsample_backward_l(N, x->c, x->h, x->w, y->h, y->w, x->layout, dy, dx0, n->acc[0]);
        break;
    case RC_OP_LINEAR:
        rc_linear_backward(N, x->c * hw, y->c, X(g, xi, b0), pw(g, n->param[0]), dy, dx0, n->acc[0],
                           pgr(g, n->param[0]), pgr(g, n->param[1]));
        break;
    default: RC_ASSERT(0 && "unknown op");
    }
}

void rc_graph_exec_backward(rc_graph *g, int i) { rc_graph_exec_backward_phase(g, i, RC_PH_ALL, 0, g->batch); }
