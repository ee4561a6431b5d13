/* op_table.c — one entry per op (rc_op_defs): its FLOPs, its forward and backward on an exec node (the calls
 * into the kernels of src/ops with each tensor's layout, the planned overwrite/accumulate flags and the
 * saved batch-norm statistics), which tensors its backward reads, its layouts, its chunking and its fused
 * forms. Adding an op: its kernel file in src/ops (declared in ops.h); its RC_OP_ value (graph_build.h)
 * and an entry here (the compiler and tests/test_op_table.c flag a missing one); an emitter (graph.c);
 * its ONNX form or refusal (src/export/onnx.c, a switch without default: the compiler flags it too). */
#include "op_table.h"

#include <math.h>

#include "graph_exec.h"
#include "graph_fuse.h"
#include "ops/ops.h"

/* ---------------------------------------------------------------- operands of an exec node */

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
/* Floats of n's output over c's images (elementwise ops run over the padding too). */
static size_t out_numel(const rc_graph *g, const rc_xnode *n, const rc_exec_ctx *c) {
    return (size_t)c->N * rc_tensor_floats(&g->tensors[n->out]);
}
static int in_hw(const rc_graph *g, const rc_xnode *n) { return g->tensors[n->in[0]].h * g->tensors[n->in[0]].w; }
/* Per image: the output's units, for FLOPs. */
static double out_units(const rc_graph *g, const rc_node *n) {
    const rc_tensor *y = &g->tensors[n->out];
    return (double)y->c * y->h * y->w;
}
static double flops_none(const rc_graph *g, const rc_node *n) {
    (void)g, (void)n;
    return 0;
}

/* ---------------------------------------------------------------- batch-norm statistics */

/* The partial sums of images [b0, b1) in g->work: loaded from what the node that wrote x summed in its
 * epilogue this pass (make_stats_fusion, bn_pre_made), else summed from x. */
static void bn_stats_part(rc_graph *g, const rc_xnode *n, const rc_tensor *x, int b0, int b1) {
    if (n->pre_ready)
        rc_bn_stats_part_load(g->batch, x->c, x->layout, g->bnpre + n->pre_off, b0, b1, g->work);
    else
        rc_bn_stats_part(g->batch, x->c, x->h * x->w, x->layout, x->x, b0, b1, g->work);
}

static void bn_stats_finish(rc_graph *g, rc_xnode *n, const rc_tensor *x) {
    float *mean = g->save + n->save_off;
    rc_bn_stats_finish(g->batch, x->c, x->h * x->w, x->layout, mean, mean + x->c, pw(g, n->param[2]),
                       pw(g, n->param[3]), n->momentum, n->eps, g->work);
    n->pre_ready = 0;
}

/* The statistics of the batch norm inside node n (BNACT, or LSTM with bn) on input x, per bnmode, in one
 * call over the whole batch (in training from its producer's sums when the producer made them). */
static void bn_stats_whole(rc_graph *g, rc_xnode *n, const rc_tensor *x, int bnmode) {
    if (bnmode == RC_BN_TRAIN && n->pre_ready) {
        bn_stats_part(g, n, x, 0, g->batch);
        bn_stats_finish(g, n, x);
        return;
    }
    float *mean = g->save + n->save_off;
    rc_bn_stats(g->batch, x->c, x->h * x->w, x->layout, x->x, mean, mean + x->c, pw(g, n->param[2]),
                pw(g, n->param[3]), n->momentum, n->eps, bnmode, g->work);
}

/* Producer n (make_stats_fusion) wrote images [c->b0, c->b1) of its batch norm's input, with their per-image
 * sums in g->isum: they become the batch norm's chunk sums for this pass. */
static void bn_pre_made(rc_graph *g, const rc_xnode *n, const rc_exec_ctx *c) {
    rc_xnode *bn = &g->xnodes[n->bnpre];
    const rc_tensor *y = &g->tensors[n->out];
    rc_bn_stats_part_images(g->batch, y->c, y->layout, g->isum, c->b0, c->b1, g->bnpre + bn->pre_off);
    bn->pre_ready = 1;
}

/* The same in phases: STATS (partial sums of images [b0, b1)) and FINISH. Returns 1 when c is one of
 * these phases (done), 0 otherwise. */
static int fwd_stats(rc_graph *g, rc_xnode *n, const rc_exec_ctx *c) {
    if (c->phase != RC_PH_STATS && c->phase != RC_PH_FINISH) return 0;
    const rc_tensor *x = &g->tensors[n->in[0]];
    if (c->phase == RC_PH_STATS) {
        if (c->bnmode == RC_BN_TRAIN) bn_stats_part(g, n, x, c->b0, c->b1);
    } else if (c->bnmode == RC_BN_TRAIN) {
        bn_stats_finish(g, n, x);
    } else {
        bn_stats_whole(g, n, x, c->bnmode);
    }
    return 1;
}

/* ---------------------------------------------------------------- conv2d */

rc_conv_dims rc_xnode_conv_dims(const rc_graph *g, const rc_xnode *n, int nb) {
    const rc_tensor *x = &g->tensors[n->in[0]], *y = &g->tensors[n->out];
    rc_conv_dims d;
    rc_conv_dims_init(&d, nb, x->c, x->h, x->w, y->c, n->k, n->stride, n->pad);
    d.groups = n->groups > 1 ? n->groups : 1;
    d.x_layout = x->layout;
    d.y_layout = y->layout;
    return d;
}

static double conv_flops(const rc_graph *g, const rc_node *n) {
    const rc_tensor *x = &g->tensors[n->in[0]], *y = &g->tensors[n->out];
    rc_conv_dims d;
    rc_conv_dims_init(&d, 1, x->c, x->h, x->w, y->c, n->k, n->stride, n->pad);
    d.groups = n->groups > 1 ? n->groups : 1;
    return rc_conv2d_flops(&d);
}

/* Eval pipeline: does the sum that batch norm b reads run with b folded in now (graph_plan.c
 * make_eval_fusion)? The plan marks the nodes; a convolution at the root must have a forward with an
 * epilogue now (recur's kernels, a shape they take). Every node of the sum asks about the same b. */
static int eval_folded(const rc_graph *g, const rc_xnode *b, int mode) {
    if (mode != RC_RUN_EVAL || b->eabs < 0 || !g->eval_on) return 0;
    const rc_xnode *root = &g->xnodes[b->eabs];
    if (root->op != RC_OP_CONV) return 1;
    rc_conv_dims d = rc_xnode_conv_dims(g, root, g->batch);
    return rc_conv2d_select(&d, RC_CONV_FWD_EP) != RC_CONV_IMPL_NONE;
}

/* Node n's folded batch norm, when n is a member of the sum it reads and the fold runs now; else NULL. */
static const rc_xnode *eval_bn(const rc_graph *g, const rc_xnode *n, int mode) {
    if (n->efuse < 0) return NULL;
    const rc_xnode *b = &g->xnodes[n->efuse];
    return eval_folded(g, b, mode) ? b : NULL;
}

/* Conv node c's weights and bias with its batch norm b folded in (eval, once per pass: the FINISH phase of
 * b): w' = w sc, b' = b sc with sc = gamma rstd from the running statistics (as rc_bn_stats computes them in
 * eval), plus the shift beta - mean sc in the one convolution of the sum that carries it. */
static void fold_bn(rc_graph *g, const rc_xnode *c) {
    const rc_xnode *b = &g->xnodes[c->efuse];
    const int K = g->tensors[c->out].c;
    const size_t per_k = g->params[c->param[0]].numel / (size_t)K;
    const float *w = pw(g, c->param[0]), *bias = pw(g, c->param[1]), *gamma = pw(g, b->param[0]);
    const float *beta = pw(g, b->param[1]), *rm = pw(g, b->param[2]), *rv = pw(g, b->param[3]);
    float *wf = g->fold + c->fold_off, *bf = wf + per_k * K;
    for (int k = 0; k < K; k++) {
        const float sc = (gamma ? gamma[k] : 1.0f) * (float)(1.0 / sqrt((double)rv[k] + (double)b->eps));
        for (size_t j = 0; j < per_k; j++) wf[k * per_k + j] = w[k * per_k + j] * sc;
        const float bk = bias ? bias[k] : 0.0f;
        bf[k] = c->eshift ? (bk - rm[k]) * sc + (beta ? beta[k] : 0.0f) : bk * sc;
    }
}

/* The folded batch norm b's pooled readout (out2) of its output, which the sum's root has written. */
static void eval_bn_readout(rc_graph *g, const rc_xnode *b, int b0, int N) {
    const rc_tensor *y = &g->tensors[b->out];
    if (b->out2 >= 0) rc_gap_forward_l(N, y->c, y->h * y->w, y->layout, X(g, b->out, b0), X(g, b->out2, b0));
}

/* A convolution, with the add fused after it (in[1]) or not. In the eval pipeline, a member of a folded sum
 * (eval_bn) runs with the folded weights; the root writes the batch norm's output, with the relu and a
 * residual (the fused add's operand, or the batch norm's) in the epilogue. */
static void conv_fwd(rc_graph *g, rc_xnode *n, const rc_exec_ctx *c) {
    const int b0 = c->b0, xi = n->in[0], x1 = n->nin > 1 ? n->in[1] : -1, o = n->out;
    rc_conv_dims d = rc_xnode_conv_dims(g, n, c->N);
    const float *w = pw(g, n->param[0]), *bias = pw(g, n->param[1]);
    const rc_xnode *b = eval_bn(g, n, c->mode);
    if (b) {
        w = g->fold + n->fold_off;
        bias = w + g->params[n->param[0]].numel;
        if (&g->xnodes[b->eabs] == n) {
            const float *r = x1 >= 0 ? X(g, x1, b0) : b->nin > 1 ? X(g, b->in[1], b0) : NULL;
            rc_conv2d_forward_ep(&d, X(g, xi, b0), w, w, bias, r, b->relu, X(g, b->out, b0));
            eval_bn_readout(g, b, b0, c->N);
            return;
        }
    }
    if (n->bnpre >= 0 && c->bnmode == RC_BN_TRAIN && !rc_bn_allreduce) { /* the batch norm's sums too */
        g->xnodes[n->bnpre].pre_ready = 0; /* not made, unless recur's kernels run this convolution */
        if (rc_conv2d_forward_stats(&d, X(g, xi, b0), w, bias, x1 >= 0 ? X(g, x1, b0) : NULL, X(g, o, b0),
                                    g->isum)) {
            bn_pre_made(g, n, c);
            return;
        }
    }
    if (x1 >= 0) /* fused with the add after it */
        rc_conv2d_forward_add(&d, X(g, xi, b0), w, bias, X(g, x1, b0), X(g, o, b0));
    else
        rc_conv2d_forward(&d, X(g, xi, b0), w, bias, X(g, o, b0));
}

static void conv_bwd(rc_graph *g, rc_xnode *n, const rc_exec_ctx *c) {
    const int b0 = c->b0, xi = n->in[0], x1 = n->nin > 1 ? n->in[1] : -1;
    float *dy = DX(g, n->out, b0);
    rc_conv_dims d = rc_xnode_conv_dims(g, n, c->N);
    rc_conv2d_backward(&d, X(g, xi, b0), pw(g, n->param[0]), dy, gin(g, xi, b0), n->acc[0], pgr(g, n->param[0]),
                       pgr(g, n->param[1]));
    if (x1 >= 0) rc_add_backward(out_numel(g, n, c), dy, NULL, 0, gin(g, x1, b0), n->acc[1]); /* the fused add's */
}

/* any combination; a fused add's input as the output */
static int conv_layout(const rc_graph *g, const rc_xnode *n, int *ts) {
    (void)g;
    if (n->nin < 2) return 0;
    ts[0] = n->in[1];
    ts[1] = n->out;
    return 2;
}

/* ---------------------------------------------------------------- batch norm (reference path) */

static double batchnorm_flops(const rc_graph *g, const rc_node *n) {
    const rc_tensor *x = &g->tensors[n->in[0]];
    return rc_batchnorm_flops(1, x->c, x->h * x->w);
}

/* a replay recomputes the same statistics, running stats untouched */
static void batchnorm_fwd(rc_graph *g, rc_xnode *n, const rc_exec_ctx *c) {
    RC_ASSERT(c->whole);
    const rc_tensor *x = &g->tensors[n->in[0]], *y = &g->tensors[n->out];
    float *mean = g->save + n->save_off;
    const int replay = c->mode == RC_RUN_REPLAY;
    rc_batchnorm_forward(c->N, x->c, x->h * x->w, x->x, pw(g, n->param[0]), pw(g, n->param[1]), y->x, mean,
                         mean + x->c, replay ? NULL : pw(g, n->param[2]), replay ? NULL : pw(g, n->param[3]),
                         n->momentum, n->eps, c->mode != RC_RUN_EVAL);
}

static void batchnorm_bwd(rc_graph *g, rc_xnode *n, const rc_exec_ctx *c) {
    RC_ASSERT(c->whole);
    const rc_tensor *x = &g->tensors[n->in[0]], *y = &g->tensors[n->out];
    const float *mean = g->save + n->save_off;
    rc_batchnorm_backward(c->N, x->c, x->h * x->w, x->x, pw(g, n->param[0]), mean, mean + x->c, y->dx,
                          gin(g, n->in[0], c->b0), n->acc[0], pgr(g, n->param[0]), pgr(g, n->param[1]), 1);
}

/* ---------------------------------------------------------------- elementwise */

static double units_flops(const rc_graph *g, const rc_node *n) { return out_units(g, n); }
static double units4_flops(const rc_graph *g, const rc_node *n) { return 4.0 * out_units(g, n); }
static double units3_flops(const rc_graph *g, const rc_node *n) { return 3.0 * out_units(g, n); }

static void relu_fwd(rc_graph *g, rc_xnode *n, const rc_exec_ctx *c) {
    rc_relu_forward(out_numel(g, n, c), X(g, n->in[0], c->b0), X(g, n->out, c->b0));
}
static void relu_bwd(rc_graph *g, rc_xnode *n, const rc_exec_ctx *c) {
    rc_relu_backward(out_numel(g, n, c), X(g, n->in[0], c->b0), DX(g, n->out, c->b0), gin(g, n->in[0], c->b0),
                     n->acc[0]);
}

static void sigmoid_fwd(rc_graph *g, rc_xnode *n, const rc_exec_ctx *c) {
    rc_sigmoid_forward(out_numel(g, n, c), X(g, n->in[0], c->b0), X(g, n->out, c->b0));
}
static void sigmoid_bwd(rc_graph *g, rc_xnode *n, const rc_exec_ctx *c) {
    rc_sigmoid_backward(out_numel(g, n, c), X(g, n->out, c->b0), DX(g, n->out, c->b0), gin(g, n->in[0], c->b0),
                        n->acc[0]);
}

static void tanh_fwd(rc_graph *g, rc_xnode *n, const rc_exec_ctx *c) {
    rc_tanh_forward(out_numel(g, n, c), X(g, n->in[0], c->b0), X(g, n->out, c->b0));
}
static void tanh_bwd(rc_graph *g, rc_xnode *n, const rc_exec_ctx *c) {
    rc_tanh_backward(out_numel(g, n, c), X(g, n->out, c->b0), DX(g, n->out, c->b0), gin(g, n->in[0], c->b0),
                     n->acc[0]);
}

static void add_fwd(rc_graph *g, rc_xnode *n, const rc_exec_ctx *c) {
    rc_add_forward(out_numel(g, n, c), X(g, n->in[0], c->b0), X(g, n->in[1], c->b0), X(g, n->out, c->b0));
}
static void add_bwd(rc_graph *g, rc_xnode *n, const rc_exec_ctx *c) {
    rc_add_backward(out_numel(g, n, c), DX(g, n->out, c->b0), gin(g, n->in[0], c->b0), n->acc[0],
                    gin(g, n->in[1], c->b0), n->acc[1]);
}

static void mul_fwd(rc_graph *g, rc_xnode *n, const rc_exec_ctx *c) {
    rc_mul_forward(out_numel(g, n, c), X(g, n->in[0], c->b0), X(g, n->in[1], c->b0), X(g, n->out, c->b0));
}
static void mul_bwd(rc_graph *g, rc_xnode *n, const rc_exec_ctx *c) {
    const int b0 = c->b0;
    rc_mul_backward(out_numel(g, n, c), X(g, n->in[0], b0), X(g, n->in[1], b0), DX(g, n->out, b0),
                    gin(g, n->in[0], b0), n->acc[0], gin(g, n->in[1], b0), n->acc[1]);
}

/* in {w, a, [b]}: y = (1 - w) a + w b, b absent = zero (a GRU's first step) */
static void lerp_fwd(rc_graph *g, rc_xnode *n, const rc_exec_ctx *c) {
    const int b0 = c->b0;
    rc_lerp_forward(out_numel(g, n, c), X(g, n->in[0], b0), X(g, n->in[1], b0), n->nin > 2 ? X(g, n->in[2], b0) : NULL,
                    X(g, n->out, b0));
}
static void lerp_bwd(rc_graph *g, rc_xnode *n, const rc_exec_ctx *c) {
    const int b0 = c->b0, x2 = n->nin > 2 ? n->in[2] : -1;
    rc_lerp_backward(out_numel(g, n, c), X(g, n->in[0], b0), X(g, n->in[1], b0), x2 >= 0 ? X(g, x2, b0) : NULL,
                     DX(g, n->out, b0), gin(g, n->in[0], b0), n->acc[0], gin(g, n->in[1], b0), n->acc[1],
                     x2 >= 0 ? gin(g, x2, b0) : NULL, x2 >= 0 ? n->acc[2] : 0);
}

/* ---------------------------------------------------------------- channels: concat, slice */

static void concat_fwd(rc_graph *g, rc_xnode *n, const rc_exec_ctx *c) {
    const rc_tensor *y = &g->tensors[n->out];
    int cs[RC_MAX_IN];
    const float *xs[RC_MAX_IN];
    for (int j = 0; j < n->nin; j++) {
        cs[j] = g->tensors[n->in[j]].c;
        xs[j] = X(g, n->in[j], c->b0);
    }
    rc_concat_forward(c->N, n->nin, cs, y->h * y->w, xs, X(g, n->out, c->b0));
}
static void concat_bwd(rc_graph *g, rc_xnode *n, const rc_exec_ctx *c) {
    const rc_tensor *y = &g->tensors[n->out];
    int cs[RC_MAX_IN];
    float *dxs[RC_MAX_IN];
    for (int j = 0; j < n->nin; j++) {
        cs[j] = g->tensors[n->in[j]].c;
        dxs[j] = gin(g, n->in[j], c->b0);
    }
    rc_concat_backward(c->N, n->nin, cs, y->h * y->w, DX(g, n->out, c->b0), dxs, n->acc);
}

/* slice: channels [k, k + stride) */
static void slice_fwd(rc_graph *g, rc_xnode *n, const rc_exec_ctx *c) {
    const rc_tensor *x = &g->tensors[n->in[0]];
    rc_slice_forward_l(c->N, x->c, in_hw(g, n), x->layout, n->k, n->stride, X(g, n->in[0], c->b0), X(g, n->out, c->b0));
}
static void slice_bwd(rc_graph *g, rc_xnode *n, const rc_exec_ctx *c) {
    const rc_tensor *x = &g->tensors[n->in[0]];
    rc_slice_backward_l(c->N, x->c, in_hw(g, n), x->layout, n->k, n->stride, DX(g, n->out, c->b0),
                        gin(g, n->in[0], c->b0), n->acc[0]);
}
/* blocked only when the slice is whole blocks of 16 channels */
static int slice_layout(const rc_graph *g, const rc_xnode *n, int *ts) {
    int k = 0;
    ts[k++] = n->in[0];
    ts[k++] = n->out;
    if (n->k % 16 || n->stride % 16 || g->tensors[n->in[0]].c % 16) ts[k++] = g->input; /* plain: forces both */
    return k;
}

/* ---------------------------------------------------------------- pools, upsample, linear */

static double pool_flops(const rc_graph *g, const rc_node *n) { return out_units(g, n) * n->k * n->k; }

static rc_pool_dims node_pool_dims(const rc_graph *g, const rc_xnode *n, int nb) {
    const rc_tensor *x = &g->tensors[n->in[0]];
    rc_pool_dims d;
    rc_pool_dims_init(&d, nb, x->c, x->h, x->w, n->k, n->stride, n->pad);
    return d;
}

static void maxpool_fwd(rc_graph *g, rc_xnode *n, const rc_exec_ctx *c) {
    rc_pool_dims d = node_pool_dims(g, n, c->N);
    rc_maxpool_forward(&d, X(g, n->in[0], c->b0), X(g, n->out, c->b0));
}
static void maxpool_bwd(rc_graph *g, rc_xnode *n, const rc_exec_ctx *c) {
    rc_pool_dims d = node_pool_dims(g, n, c->N);
    rc_maxpool_backward(&d, X(g, n->in[0], c->b0), DX(g, n->out, c->b0), gin(g, n->in[0], c->b0), n->acc[0]);
}

static void avgpool_fwd(rc_graph *g, rc_xnode *n, const rc_exec_ctx *c) {
    rc_pool_dims d = node_pool_dims(g, n, c->N);
    rc_avgpool_forward(&d, X(g, n->in[0], c->b0), X(g, n->out, c->b0));
}
static void avgpool_bwd(rc_graph *g, rc_xnode *n, const rc_exec_ctx *c) {
    rc_pool_dims d = node_pool_dims(g, n, c->N);
    rc_avgpool_backward(&d, DX(g, n->out, c->b0), gin(g, n->in[0], c->b0), n->acc[0]);
}

static double gap_flops(const rc_graph *g, const rc_node *n) {
    const rc_tensor *x = &g->tensors[n->in[0]];
    return (double)x->c * x->h * x->w;
}
static void gap_fwd(rc_graph *g, rc_xnode *n, const rc_exec_ctx *c) {
    const rc_tensor *x = &g->tensors[n->in[0]];
    rc_gap_forward_l(c->N, x->c, in_hw(g, n), x->layout, X(g, n->in[0], c->b0), X(g, n->out, c->b0));
}
static void gap_bwd(rc_graph *g, rc_xnode *n, const rc_exec_ctx *c) {
    const rc_tensor *x = &g->tensors[n->in[0]];
    rc_gap_backward_l(c->N, x->c, in_hw(g, n), x->layout, DX(g, n->out, c->b0), gin(g, n->in[0], c->b0), n->acc[0]);
}

static void upsample_fwd(rc_graph *g, rc_xnode *n, const rc_exec_ctx *c) {
    const rc_tensor *x = &g->tensors[n->in[0]], *y = &g->tensors[n->out];
    rc_upsample_forward_l(c->N, x->c, x->h, x->w, y->h, y->w, x->layout, X(g, n->in[0], c->b0), X(g, n->out, c->b0));
}
static void upsample_bwd(rc_graph *g, rc_xnode *n, const rc_exec_ctx *c) {
    const rc_tensor *x = &g->tensors[n->in[0]], *y = &g->tensors[n->out];
    rc_upsample_backward_l(c->N, x->c, x->h, x->w, y->h, y->w, x->layout, DX(g, n->out, c->b0),
                           gin(g, n->in[0], c->b0), n->acc[0]);
}
/* in {z, r}: y = r + upsample(z); at the root of a folded sum (conv_fwd) the batch norm's output, relu'd */
static void upadd_fwd(rc_graph *g, rc_xnode *n, const rc_exec_ctx *c) {
    const rc_tensor *z = &g->tensors[n->in[0]], *y = &g->tensors[n->out];
    if (n->bnpre >= 0 && c->bnmode == RC_BN_TRAIN && !rc_bn_allreduce) { /* the batch norm's sums too */
        rc_upsample_add_forward_stats(c->N, z->c, z->h, z->w, y->h, y->w, z->layout, X(g, n->in[0], c->b0),
                                      X(g, n->in[1], c->b0), X(g, n->out, c->b0), g->isum);
        bn_pre_made(g, n, c);
        return;
    }
    const rc_xnode *b = eval_bn(g, n, c->mode);
    const int root = b && &g->xnodes[b->eabs] == n;
    rc_upsample_add_forward_l(c->N, z->c, z->h, z->w, y->h, y->w, z->layout, X(g, n->in[0], c->b0),
                              X(g, n->in[1], c->b0), root && b->relu, X(g, root ? b->out : n->out, c->b0));
    if (root) eval_bn_readout(g, b, c->b0, c->N);
}
static void upadd_bwd(rc_graph *g, rc_xnode *n, const rc_exec_ctx *c) {
    const rc_tensor *z = &g->tensors[n->in[0]], *y = &g->tensors[n->out];
    rc_upsample_add_backward_l(c->N, z->c, z->h, z->w, y->h, y->w, z->layout, DX(g, n->out, c->b0),
                               gin(g, n->in[1], c->b0), n->acc[1], gin(g, n->in[0], c->b0), n->acc[0]);
}

static double linear_flops(const rc_graph *g, const rc_node *n) {
    const rc_tensor *x = &g->tensors[n->in[0]];
    const double ysz = out_units(g, n);
    return 2.0 * ysz * x->c * x->h * x->w + ysz;
}
static void linear_fwd(rc_graph *g, rc_xnode *n, const rc_exec_ctx *c) {
    const rc_tensor *x = &g->tensors[n->in[0]], *y = &g->tensors[n->out];
    rc_linear_forward(c->N, x->c * in_hw(g, n), y->c, X(g, n->in[0], c->b0), pw(g, n->param[0]), pw(g, n->param[1]),
                      X(g, n->out, c->b0));
}
static void linear_bwd(rc_graph *g, rc_xnode *n, const rc_exec_ctx *c) {
    const rc_tensor *x = &g->tensors[n->in[0]], *y = &g->tensors[n->out];
    rc_linear_backward(c->N, x->c * in_hw(g, n), y->c, X(g, n->in[0], c->b0), pw(g, n->param[0]),
                       DX(g, n->out, c->b0), gin(g, n->in[0], c->b0), n->acc[0], pgr(g, n->param[0]),
                       pgr(g, n->param[1]));
}

/* ---------------------------------------------------------------- bn+act (fused by the plan) */

/* batch norm (+ residual add) (+ relu) (+ the readout's pool into out2). whole: statistics, then the rest;
 * APPLY (or REPLAY): the rest, with the statistics already made. In the eval pipeline, when the
 * convolution before it runs it (eabs), only its folding (FINISH). */
static void bnact_fwd(rc_graph *g, rc_xnode *n, const rc_exec_ctx *c) {
    if (eval_folded(g, n, c->mode)) {
        const int self = (int)(n - g->xnodes);
        if (c->phase == RC_PH_FINISH) /* its statistics go into the convolutions of its input sum */
            for (int j = 0; j < self; j++)
                if (g->xnodes[j].efuse == self && g->xnodes[j].op == RC_OP_CONV) fold_bn(g, &g->xnodes[j]);
        return; /* the sum's root runs the rest */
    }
    if (fwd_stats(g, n, c)) return;
    const rc_tensor *x = &g->tensors[n->in[0]];
    const int b0 = c->b0, x1 = n->nin > 1 ? n->in[1] : -1;
    float *mean = g->save + n->save_off;
    if (c->phase == RC_PH_ALL) {
        RC_ASSERT(c->whole || c->bnmode == RC_BN_REPLAY);
        bn_stats_whole(g, n, x, c->bnmode);
    }
    rc_bnact_forward_range(c->N, x->c, x->h * x->w, x->layout, X(g, n->in[0], b0), x1 >= 0 ? X(g, x1, b0) : NULL,
                           pw(g, n->param[0]), pw(g, n->param[1]), X(g, n->out, b0),
                           n->out2 >= 0 ? X(g, n->out2, b0) : NULL, mean, mean + x->c, n->relu, 0, c->N);
}

static rc_bnact_grad bnact_grad(rc_graph *g, const rc_xnode *n) {
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

/* in phases: the gradient sums of images [b0, b1) (STATS), their reduction (FINISH), the rest (APPLY) */
static void bnact_bwd(rc_graph *g, rc_xnode *n, const rc_exec_ctx *c) {
    rc_bnact_grad a = bnact_grad(g, n);
    if (c->phase == RC_PH_ALL || c->phase == RC_PH_STATS) rc_bnact_backward_reduce(&a, c->b0, c->b1);
    if (c->phase == RC_PH_ALL || c->phase == RC_PH_FINISH) rc_bnact_backward_finish(&a);
    if (c->phase == RC_PH_ALL || c->phase == RC_PH_APPLY) rc_bnact_backward_apply(&a, c->b0, c->b1);
}

/* x; the relu's mask from y when there is a residual (x alone does not give it) */
static unsigned bnact_reads(const rc_xnode *n) {
    return RC_READS_IN(0) | (n->relu && n->nin > 1 ? RC_READS_OUT : 0);
}

/* all operands alike but out2, the pooled readout input (1x1, plain) */
static int bnact_layout(const rc_graph *g, const rc_xnode *n, int *ts) {
    (void)g;
    int k = 0;
    for (int j = 0; j < n->nin; j++) ts[k++] = n->in[j];
    ts[k++] = n->out;
    return k;
}

/* ---------------------------------------------------------------- ConvLSTM gates (fused by the plan) */

/* (batch norm +) gates over z = in[0] (4C channels) with c_prev = in[1] (optional): h (out), c (out2) */
static void lstm_fwd(rc_graph *g, rc_xnode *n, const rc_exec_ctx *c) {
    if (fwd_stats(g, n, c)) return;
    const rc_tensor *x = &g->tensors[n->in[0]], *y = &g->tensors[n->out];
    const int b0 = c->b0, x1 = n->nin > 1 ? n->in[1] : -1;
    float *mean = g->save + n->save_off;
    if (n->bn && c->phase == RC_PH_ALL) {
        RC_ASSERT(c->whole || c->bnmode == RC_BN_REPLAY);
        bn_stats_whole(g, n, x, c->bnmode);
    }
    rc_lstm_forward(c->N, y->c, x->h * x->w, x->layout, X(g, n->in[0], b0), x1 >= 0 ? X(g, x1, b0) : NULL,
                    pw(g, n->param[0]), pw(g, n->param[1]), n->bn ? mean : NULL, n->bn ? mean + x->c : NULL,
                    X(g, n->out2, b0), X(g, n->out, b0));
}

static void lstm_bwd(rc_graph *g, rc_xnode *n, const rc_exec_ctx *c) {
    float *dx0 = gin(g, n->in[0], c->b0);
    RC_ASSERT(c->whole && dx0 != NULL && n->acc[0] == 0);
    const rc_tensor *x = &g->tensors[n->in[0]], *y = &g->tensors[n->out], *cs = &g->tensors[n->out2];
    const int x1 = n->nin > 1 ? n->in[1] : -1;
    const float *mean = g->save + n->save_off;
    rc_lstm_backward(c->N, y->c, x->h * x->w, x->layout, x->x, x1 >= 0 ? g->tensors[x1].x : NULL, cs->x,
                     pw(g, n->param[0]), pw(g, n->param[1]), n->bn ? mean : NULL, n->bn ? mean + x->c : NULL,
                     n->dout_ok ? y->dx : NULL, n->dout2_ok ? cs->dx : NULL, dx0, x1 >= 0 ? gin(g, x1, 0) : NULL,
                     x1 >= 0 ? n->acc[1] : 0, pgr(g, n->param[0]), pgr(g, n->param[1]), 1, g->work);
}

/* z, c (out2), and c_prev when there is one */
static unsigned lstm_reads(const rc_xnode *n) {
    return RC_READS_IN(0) | RC_READS_OUT2 | (n->nin > 1 ? RC_READS_IN(1) : 0);
}

/* ---------------------------------------------------------------- GRU gates (fused by the plan) */

/* The operands of a GRU exec node: x, u, h_prev (-1 when absent) by the bits of k, and their input slots. */
static void gru_operands(const rc_xnode *n, int t[3], int j[3]) {
    int k = 0;
    for (int q = 0; q < 3; q++) {
        const int has = q == 0 ? n->k & 1 : n->k & 2;
        j[q] = has ? k++ : -1;
        t[q] = has ? n->in[j[q]] : -1;
    }
}

static const float *xin(rc_graph *g, int t, int b0) { return t >= 0 ? X(g, t, b0) : NULL; }

static void gru_fwd(rc_graph *g, rc_xnode *n, const rc_exec_ctx *c) {
    int t[3], j[3];
    gru_operands(n, t, j);
    rc_gru_forward(c->N, rc_tensor_floats(&g->tensors[n->out]), xin(g, t[0], c->b0), xin(g, t[1], c->b0),
                   xin(g, t[2], c->b0), X(g, n->out, c->b0));
}

static void gru_bwd(rc_graph *g, rc_xnode *n, const rc_exec_ctx *c) {
    int t[3], j[3];
    gru_operands(n, t, j);
    float *d[3];
    for (int q = 0; q < 3; q++) d[q] = t[q] >= 0 ? gin(g, t[q], c->b0) : NULL;
    rc_gru_backward(c->N, rc_tensor_floats(&g->tensors[n->out]), xin(g, t[0], c->b0), xin(g, t[1], c->b0),
                    xin(g, t[2], c->b0), DX(g, n->out, c->b0), d[0], d[0] ? n->acc[j[0]] : 0, d[1],
                    d[1] ? n->acc[j[1]] : 0, d[2], d[2] ? n->acc[j[2]] : 0);
}

/* ---------------------------------------------------------------- the table */

#define ELEMENTWISE .layout = RC_LAY_SAME, .fwd_chunk = 1, .bwd_chunk = 1
#define PLAIN_ONLY .layout = RC_LAY_PLAIN, .fwd_chunk = 1, .bwd_chunk = 1

const rc_op_def rc_op_defs[] = {
    [RC_OP_CONV] = {.name = "conv2d", .flops = conv_flops, .forward = conv_fwd, .backward = conv_bwd,
                    .bwd_reads = RC_READS_IN(0), .layout = RC_LAY_ANY, .layout_fn = conv_layout, .fwd_chunk = 1,
                    .bwd_chunk = 1, .feeds = 1, .hot = 1, .fuse = {rc_fuse_conv_add}},
    [RC_OP_BATCHNORM] = {.name = "batchnorm", .flops = batchnorm_flops, .forward = batchnorm_fwd,
                         .backward = batchnorm_bwd, .bwd_reads = RC_READS_IN(0), .layout = RC_LAY_PLAIN,
                         .bn_stats = RC_PHASED_YES, .fuse = {rc_fuse_lstm_bn, rc_fuse_bnact}},
    [RC_OP_RELU] = {.name = "relu", .flops = units_flops, .forward = relu_fwd, .backward = relu_bwd,
                    .bwd_reads = RC_READS_IN(0), ELEMENTWISE},
    [RC_OP_SIGMOID] = {.name = "sigmoid", .flops = units4_flops, .forward = sigmoid_fwd, .backward = sigmoid_bwd,
                       .bwd_reads = RC_READS_OUT, ELEMENTWISE, .pad_zero = 1},
    [RC_OP_TANH] = {.name = "tanh", .flops = units4_flops, .forward = tanh_fwd, .backward = tanh_bwd,
                    .bwd_reads = RC_READS_OUT, ELEMENTWISE},
    [RC_OP_ADD] = {.name = "add", .flops = units_flops, .forward = add_fwd, .backward = add_bwd,
                   .bwd_reads = RC_READS_NONE, ELEMENTWISE},
    [RC_OP_MUL] = {.name = "mul", .flops = units_flops, .forward = mul_fwd, .backward = mul_bwd,
                   .bwd_reads = RC_READS_IN(0) | RC_READS_IN(1), ELEMENTWISE},
    [RC_OP_CONCAT] = {.name = "concat", .flops = flops_none, .forward = concat_fwd, .backward = concat_bwd,
                      .bwd_reads = RC_READS_NONE, PLAIN_ONLY},
    [RC_OP_SLICE] = {.name = "slice", .flops = flops_none, .forward = slice_fwd, .backward = slice_bwd,
                     .bwd_reads = RC_READS_NONE, ELEMENTWISE, .layout_fn = slice_layout,
                     .fuse = {rc_fuse_lstm_slice, rc_fuse_gru}},
    [RC_OP_MAXPOOL] = {.name = "maxpool", .flops = pool_flops, .forward = maxpool_fwd, .backward = maxpool_bwd,
                       .bwd_reads = RC_READS_IN(0), PLAIN_ONLY},
    [RC_OP_AVGPOOL] = {.name = "avgpool", .flops = pool_flops, .forward = avgpool_fwd, .backward = avgpool_bwd,
                       .bwd_reads = RC_READS_NONE, PLAIN_ONLY},
    [RC_OP_GAP] = {.name = "gap", .flops = gap_flops, .forward = gap_fwd, .backward = gap_bwd,
                   .bwd_reads = RC_READS_NONE, .layout = RC_LAY_ANY, .fwd_chunk = 1, .bwd_chunk = 1},
    [RC_OP_UPSAMPLE] = {.name = "upsample", .flops = flops_none, .forward = upsample_fwd, .backward = upsample_bwd,
                        .bwd_reads = RC_READS_NONE, ELEMENTWISE, .fuse = {rc_fuse_upsample_add}},
    [RC_OP_LINEAR] = {.name = "linear", .flops = linear_flops, .forward = linear_fwd, .backward = linear_bwd,
                      .bwd_reads = RC_READS_IN(0), PLAIN_ONLY},
    /* zero a and b in a blocked tensor's padding lanes give zero y, whatever w holds there */
    [RC_OP_LERP] = {.name = "lerp", .flops = units3_flops, .forward = lerp_fwd, .backward = lerp_bwd,
                    .bwd_reads = RC_READS_IN(0) | RC_READS_IN(1) | RC_READS_IN(2), ELEMENTWISE},
    [RC_OP_BNACT] = {.name = "bn+act", .flops = flops_none, .forward = bnact_fwd, .backward = bnact_bwd,
                     .bwd_reads = RC_READS_IN(0) | RC_READS_OUT, .bwd_reads_fn = bnact_reads, .layout = RC_LAY_SAME,
                     .layout_fn = bnact_layout, .fwd_chunk = 1, .bwd_chunk = 1, .fwd_phased = RC_PHASED_YES,
                     .bwd_phased = 1, .bn_stats = RC_PHASED_YES, .feeds = 1},
    [RC_OP_LSTM] = {.name = "lstm", .flops = flops_none, .forward = lstm_fwd, .backward = lstm_bwd,
                    .bwd_reads = RC_READS_IN(0) | RC_READS_IN(1) | RC_READS_OUT2, .bwd_reads_fn = lstm_reads,
                    .layout = RC_LAY_SAME, .pad_zero = 1, .fwd_chunk = 1, .fwd_phased = RC_PHASED_IF_BN,
                    .bn_stats = RC_PHASED_IF_BN, .feeds = 1},
    [RC_OP_UPADD] = {.name = "upsample+add", .flops = flops_none, .forward = upadd_fwd, .backward = upadd_bwd,
                     .bwd_reads = RC_READS_NONE, ELEMENTWISE},
    /* its inputs, which backward recomputes the gates from; C % 16 != 0 plain (the gates are thirds) */
    [RC_OP_GRU] = {.name = "gru", .flops = flops_none, .forward = gru_fwd, .backward = gru_bwd,
                   .bwd_reads = RC_READS_IN(0) | RC_READS_IN(1) | RC_READS_IN(2), ELEMENTWISE, .pad_zero = 1,
                   .feeds = 1},
};
_Static_assert(sizeof rc_op_defs / sizeof rc_op_defs[0] == RC_OP_COUNT, "one op table entry per rc_op_type");
/* (an entry missing in the middle leaves zeros: rc_op_table_check and tests/test_op_table.c find it) */

unsigned rc_op_bwd_reads(const rc_xnode *n) {
    const rc_op_def *d = &rc_op_defs[n->op];
    return d->bwd_reads_fn ? d->bwd_reads_fn(n) & d->bwd_reads : d->bwd_reads;
}

static int phased(int rule, const rc_xnode *n) { return rule == RC_PHASED_YES || (rule == RC_PHASED_IF_BN && n->bn); }
int rc_op_fwd_phased(const rc_xnode *n) { return phased(rc_op_defs[n->op].fwd_phased, n); }
int rc_op_saves_bn(const rc_xnode *n) { return phased(rc_op_defs[n->op].bn_stats, n); }

int rc_op_table_check(const char **why) {
    const char *w = NULL;
    int op;
    for (op = 0; op < RC_OP_COUNT && !w; op++) {
        const rc_op_def *d = &rc_op_defs[op];
        w = !d->name                                               ? "no name"
            : !d->flops                                            ? "no flops"
            : !d->forward                                          ? "no forward"
            : !d->backward                                         ? "no backward"
            : !d->bwd_reads                                        ? "bwd_reads unset (RC_READS_NONE if none)"
            : (d->bwd_reads & RC_READS_NONE) && d->bwd_reads != RC_READS_NONE ? "bwd_reads: NONE with other bits"
            : d->layout == RC_LAY_UNSET                            ? "no layout rule"
                                                                   : NULL;
    }
    if (why) *why = w;
    return w ? op : 0; /* op is already one past the incomplete entry */
}
