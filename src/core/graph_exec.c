/* graph_exec.c — running one exec node of the plan forward (train, eval, or replay for recomputation)
 * or backward: the dispatch from nodes to ops, with each tensor's layout, the fused ops, the planned
 * overwrite/accumulate flags, and the saved batch-norm statistics. */
#include "graph.h"
#include "ops/ops.h"

static float *pw(rc_graph *g, int p) { return p >= 0 ? g->params[p].w : NULL; }
static float *pgr(rc_graph *g, int p) { return p >= 0 ? g->params[p].g : NULL; }
/* The input image needs no gradient: NULL skips writing it. */
static float *gin(rc_graph *g, int t) { return g->tensors[t].is_input ? NULL : g->tensors[t].dx; }

static rc_conv_dims node_conv_dims(const rc_graph *g, const rc_node *n) {
    const rc_tensor *x = &g->tensors[n->in[0]], *y = &g->tensors[n->out];
    rc_conv_dims d;
    rc_conv_dims_init(&d, g->batch, x->c, x->h, x->w, y->c, n->k, n->stride, n->pad);
    d.x_layout = x->layout;
    d.y_layout = y->layout;
    return d;
}

void rc_graph_exec_forward(rc_graph *g, int i, int mode) {
    rc_node *n = &g->xnodes[i];
    const int N = g->batch, train = mode != RC_RUN_EVAL;
    const int bnmode = mode == RC_RUN_TRAIN ? RC_BN_TRAIN : mode == RC_RUN_EVAL ? RC_BN_EVAL : RC_BN_REPLAY;
    rc_tensor *y = &g->tensors[n->out];
    const rc_tensor *x = &g->tensors[n->in[0]];
    const size_t numel = (size_t)N * rc_tensor_floats(y);
    const int hw = x->h * x->w;
    float *mean = g->save + n->save_off;
    switch (n->op) {
    case RC_OP_CONV: {
        rc_conv_dims d = node_conv_dims(g, n);
        rc_conv2d_forward(&d, x->x, pw(g, n->param[0]), pw(g, n->param[1]), y->x);
        break;
    }
    case RC_OP_BATCHNORM: /* reference path; a replay recomputes the same statistics, running stats untouched */
        rc_batchnorm_forward(N, x->c, hw, x->x, pw(g, n->param[0]), pw(g, n->param[1]), y->x, mean, mean + x->c,
                             mode == RC_RUN_REPLAY ? NULL : pw(g, n->param[2]),
                             mode == RC_RUN_REPLAY ? NULL : pw(g, n->param[3]), n->momentum, n->eps, train);
        break;
    case RC_OP_BNACT:
        rc_bnact_forward(N, x->c, hw, x->layout, x->x, n->nin > 1 ? g->tensors[n->in[1]].x : NULL,
                         pw(g, n->param[0]), pw(g, n->param[1]), y->x, n->out2 >= 0 ? g->tensors[n->out2].x : NULL,
                         mean, mean + x->c, pw(g, n->param[2]), pw(g, n->param[3]), n->momentum, n->eps, bnmode,
                         n->relu, g->work);
        break;
    case RC_OP_LSTM: {
        if (n->bn)
            rc_bn_stats(N, x->c, hw, x->layout, x->x, mean, mean + x->c, pw(g, n->param[2]), pw(g, n->param[3]),
                        n->momentum, n->eps, bnmode, g->work);
        rc_lstm_forward(N, y->c, hw, x->layout, x->x, n->nin > 1 ? g->tensors[n->in[1]].x : NULL,
                        pw(g, n->param[0]), pw(g, n->param[1]), n->bn ? mean : NULL, n->bn ? mean + x->c : NULL,
                        g->tensors[n->out2].x, y->x);
        break;
    }
    case RC_OP_RELU: rc_relu_forward(numel, x->x, y->x); break;
    case RC_OP_SIGMOID: rc_sigmoid_forward(numel, x->x, y->x); break;
    case RC_OP_TANH: rc_tanh_forward(numel, x->x, y->x); break;
    case RC_OP_ADD: rc_add_forward(numel, x->x, g->tensors[n->in[1]].x, y->x); break;
    case RC_OP_MUL: rc_mul_forward(numel, x->x, g->tensors[n->in[1]].x, y->x); break;
    case RC_OP_CONCAT: {
        int cs[RC_MAX_IN];
        const float *xs[RC_MAX_IN];
        for (int j = 0; j < n->nin; j++) {
            cs[j] = g->tensors[n->in[j]].c;
            xs[j] = g->tensors[n->in[j]].x;
        }
        rc_concat_forward(N, n->nin, cs, y->h * y->w, xs, y->x);
        break;
    }
    case RC_OP_SLICE: rc_slice_forward_l(N, x->c, hw, x->layout, n->k, n->stride, x->x, y->x); break;
    case RC_OP_MAXPOOL:
    case RC_OP_AVGPOOL: {
        rc_pool_dims d;
        rc_pool_dims_init(&d, N, x->c, x->h, x->w, n->k, n->stride, n->pad);
        if (n->op == RC_OP_MAXPOOL)
            rc_maxpool_forward(&d, x->x, y->x);
        else
            rc_avgpool_forward(&d, x->x, y->x);
        break;
    }
    case RC_OP_GAP: rc_gap_forward_l(N, x->c, hw, x->layout, x->x, y->x); break;
    case RC_OP_UPSAMPLE: rc_upsample_forward_l(N, x->c, x->h, x->w, y->h, y->w, x->layout, x->x, y->x); break;
    case RC_OP_LINEAR:
        rc_linear_forward(N, x->c * hw, y->c, x->x, pw(g, n->param[0]), pw(g, n->param[1]), y->x);
        break;
    default: RC_ASSERT(0 && "unknown op");
    }
}

void rc_graph_exec_backward(rc_graph *g, int i) {
    rc_node *n = &g->xnodes[i];
    if (!n->active) return; /* no gradient reaches its outputs */
    const int N = g->batch;
    rc_tensor *y = &g->tensors[n->out];
    const rc_tensor *x = &g->tensors[n->in[0]];
    const size_t numel = (size_t)N * rc_tensor_floats(y);
    const int hw = x->h * x->w;
    float *dx0 = gin(g, n->in[0]);
    const float *mean = g->save + n->save_off;
    switch (n->op) {
    case RC_OP_CONV: {
        rc_conv_dims d = node_conv_dims(g, n);
        rc_conv2d_backward(&d, x->x, pw(g, n->param[0]), y->dx, dx0, n->acc[0], pgr(g, n->param[0]),
                           pgr(g, n->param[1]));
        break;
    }
    case RC_OP_BATCHNORM:
        rc_batchnorm_backward(N, x->c, hw, x->x, pw(g, n->param[0]), mean, mean + x->c, y->dx, dx0, n->acc[0],
                              pgr(g, n->param[0]), pgr(g, n->param[1]), 1);
        break;
    case RC_OP_BNACT:
        rc_bnact_backward(N, x->c, hw, x->layout, x->x, y->x, pw(g, n->param[0]), pw(g, n->param[1]), mean,
                          mean + x->c, n->dout_ok ? y->dx : NULL, n->dout2_ok ? g->tensors[n->out2].dx : NULL, dx0,
                          n->acc[0], n->nin > 1 ? gin(g, n->in[1]) : NULL,
                          n->nin > 1 ? n->acc[1] : 0, pgr(g, n->param[0]), pgr(g, n->param[1]), 1, n->relu,
                          n->nin > 1, g->work);
        break;
    case RC_OP_LSTM: {
        RC_ASSERT(dx0 != NULL && n->acc[0] == 0);
        const rc_tensor *c = &g->tensors[n->out2];
        rc_lstm_backward(N, y->c, hw, x->layout, x->x, n->nin > 1 ? g->tensors[n->in[1]].x : NULL, c->x,
                         pw(g, n->param[0]), pw(g, n->param[1]), n->bn ? mean : NULL, n->bn ? mean + x->c : NULL,
                         n->dout_ok ? y->dx : NULL, n->dout2_ok ? c->dx : NULL, dx0,
                         n->nin > 1 ? gin(g, n->in[1]) : NULL, n->nin > 1 ? n->acc[1] : 0, pgr(g, n->param[0]),
                         pgr(g, n->param[1]), 1, g->work);
        break;
    }
    case RC_OP_RELU: rc_relu_backward(numel, x->x, y->dx, dx0, n->acc[0]); break;
    case RC_OP_SIGMOID: rc_sigmoid_backward(numel, y->x, y->dx, dx0, n->acc[0]); break;
    case RC_OP_TANH: rc_tanh_backward(numel, y->x, y->dx, dx0, n->acc[0]); break;
    case RC_OP_ADD: rc_add_backward(numel, y->dx, dx0, n->acc[0], gin(g, n->in[1]), n->acc[1]); break;
    case RC_OP_MUL:
        rc_mul_backward(numel, x->x, g->tensors[n->in[1]].x, y->dx, dx0, n->acc[0], gin(g, n->in[1]), n->acc[1]);
        break;
    case RC_OP_CONCAT: {
        int cs[RC_MAX_IN];
        float *dxs[RC_MAX_IN];
        for (int j = 0; j < n->nin; j++) {
            cs[j] = g->tensors[n->in[j]].c;
            dxs[j] = gin(g, n->in[j]);
        }
        rc_concat_backward(N, n->nin, cs, y->h * y->w, y->dx, dxs, n->acc);
        break;
    }
    case RC_OP_SLICE: rc_slice_backward_l(N, x->c, hw, x->layout, n->k, n->stride, y->dx, dx0, n->acc[0]); break;
    case RC_OP_MAXPOOL:
    case RC_OP_AVGPOOL: {
        rc_pool_dims d;
        rc_pool_dims_init(&d, N, x->c, x->h, x->w, n->k, n->stride, n->pad);
        if (n->op == RC_OP_MAXPOOL)
            rc_maxpool_backward(&d, x->x, y->dx, dx0, n->acc[0]);
        else
            rc_avgpool_backward(&d, y->dx, dx0, n->acc[0]);
        break;
    }
    case RC_OP_GAP: rc_gap_backward_l(N, x->c, hw, x->layout, y->dx, dx0, n->acc[0]); break;
    case RC_OP_UPSAMPLE:
        rc_upsample_backward_l(N, x->c, x->h, x->w, y->h, y->w, x->layout, y->dx, dx0, n->acc[0]);
        break;
    case RC_OP_LINEAR:
        rc_linear_backward(N, x->c * hw, y->c, x->x, pw(g, n->param[0]), y->dx, dx0, n->acc[0], pgr(g, n->param[0]),
                           pgr(g, n->param[1]));
        break;
    default: RC_ASSERT(0 && "unknown op");
    }
}
