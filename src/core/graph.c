/* graph.c — building the unrolled graph, the memory plan (one block per category), forward/backward
 * dispatch over the ops, FLOP counting and effective depth. Backward walks nodes in reverse; the plan
 * decides per node input whether its gradient is overwritten (first writer) or accumulated. */
#include "graph.h"

#include <math.h>
#include <string.h>

#include "rng.h"

void rc_graph_init(rc_graph *g, int batch) {
    memset(g, 0, sizeof *g);
    g->batch = batch;
    g->input = -1;
}

void rc_graph_free(rc_graph *g) {
    free(g->params);
    free(g->tensors);
    free(g->nodes);
    rc_afree(g->pw);
    rc_afree(g->pg);
    rc_afree(g->pm);
    rc_afree(g->pv);
    rc_afree(g->act);
    rc_afree(g->grad);
    rc_afree(g->save);
    rc_afree(g->scratch);
    memset(g, 0, sizeof *g);
}

int rc_graph_find_param(const rc_graph *g, const char *name) {
    for (int i = 0; i < g->nparams; i++)
        if (strcmp(g->params[i].name, name) == 0) return i;
    return -1;
}

int rc_graph_param(rc_graph *g, const char *name, int ndim, const int *shape, rc_param_kind kind) {
    RC_ASSERT(!g->planned);
    RC_ASSERT(ndim >= 1 && ndim <= 4);
    RC_ASSERT(strlen(name) < RC_NAME_MAX);
    int found = rc_graph_find_param(g, name);
    if (found >= 0) {
        rc_param *p = &g->params[found];
        RC_ASSERT(p->ndim == ndim && p->kind == kind);
        for (int i = 0; i < ndim; i++) RC_ASSERT(p->shape[i] == shape[i]);
        return found;
    }
    if (g->nparams == g->cap_params) {
        g->cap_params = g->cap_params ? 2 * g->cap_params : 32;
        g->params = rc_xrealloc(g->params, (size_t)g->cap_params * sizeof *g->params);
    }
    rc_param *p = &g->params[g->nparams];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->ndim = ndim;
    p->numel = 1;
    for (int i = 0; i < ndim; i++) {
        RC_ASSERT(shape[i] > 0);
        p->shape[i] = shape[i];
        p->numel *= (size_t)shape[i];
    }
    p->kind = kind;
    return g->nparams++;
}

int rc_graph_tensor(rc_graph *g, const char *name, int c, int h, int w) {
    RC_ASSERT(!g->planned);
    RC_ASSERT(c > 0 && h > 0 && w > 0);
    if (g->ntensors == g->cap_tensors) {
        g->cap_tensors = g->cap_tensors ? 2 * g->cap_tensors : 64;
        g->tensors = rc_xrealloc(g->tensors, (size_t)g->cap_tensors * sizeof *g->tensors);
    }
    rc_tensor *t = &g->tensors[g->ntensors];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->c = c;
    t->h = h;
    t->w = w;
    return g->ntensors++;
}

int rc_graph_node(rc_graph *g, const rc_node *proto) {
    RC_ASSERT(!g->planned);
    if (g->nnodes == g->cap_nodes) {
        g->cap_nodes = g->cap_nodes ? 2 * g->cap_nodes : 64;
        g->nodes = rc_xrealloc(g->nodes, (size_t)g->cap_nodes * sizeof *g->nodes);
    }
    g->nodes[g->nnodes] = *proto;
    return g->nnodes++;
}

static rc_node node_proto(rc_op_type op) {
    rc_node n;
    memset(&n, 0, sizeof n);
    n.op = op;
    for (int i = 0; i < 4; i++) n.param[i] = -1;
    return n;
}

static size_t tsize(const rc_graph *g, int t) {
    const rc_tensor *x = &g->tensors[t];
    return (size_t)x->c * x->h * x->w;
}

int rc_emit_conv(rc_graph *g, const char *name, int x, int w_param, int b_param, int k_out, int r, int stride,
                 int pad) {
    const rc_tensor *in = &g->tensors[x];
    int ho = (in->h + 2 * pad - r) / stride + 1, wo = (in->w + 2 * pad - r) / stride + 1;
    RC_ASSERT(ho > 0 && wo > 0);
    rc_node n = node_proto(RC_OP_CONV);
    n.in[0] = x;
    n.nin = 1;
    n.param[0] = w_param;
    n.param[1] = b_param;
    n.k = r;
    n.stride = stride;
    n.pad = pad;
    n.is_conv_layer = 1;
    const rc_param *w = &g->params[w_param];
    RC_ASSERT(w->ndim == 4 && w->shape[0] == k_out && w->shape[1] == in->c && w->shape[2] == r && w->shape[3] == r);
    n.out = rc_graph_tensor(g, name, k_out, ho, wo);
    rc_graph_node(g, &n);
    return n.out;
}

int rc_emit_batchnorm(rc_graph *g, const char *name, int x, int gamma, int beta, int run_mean, int run_var) {
    rc_node n = node_proto(RC_OP_BATCHNORM);
    n.in[0] = x;
    n.nin = 1;
    n.param[0] = gamma;
    n.param[1] = beta;
    n.param[2] = run_mean;
    n.param[3] = run_var;
    n.eps = 1e-5f;
    n.momentum = 0.1f;
    const rc_tensor *in = &g->tensors[x];
    n.out = rc_graph_tensor(g, name, in->c, in->h, in->w);
    rc_graph_node(g, &n);
    return n.out;
}

int rc_emit_unary(rc_graph *g, rc_op_type op, const char *name, int x) {
    RC_ASSERT(op == RC_OP_RELU || op == RC_OP_SIGMOID || op == RC_OP_TANH);
    rc_node n = node_proto(op);
    n.in[0] = x;
    n.nin = 1;
    const rc_tensor *in = &g->tensors[x];
    n.out = rc_graph_tensor(g, name, in->c, in->h, in->w);
    rc_graph_node(g, &n);
    return n.out;
}

int rc_emit_binary(rc_graph *g, rc_op_type op, const char *name, int a, int b) {
    RC_ASSERT(op == RC_OP_ADD || op == RC_OP_MUL);
    const rc_tensor *ta = &g->tensors[a], *tb = &g->tensors[b];
    RC_ASSERT(ta->c == tb->c && ta->h == tb->h && ta->w == tb->w);
    rc_node n = node_proto(op);
    n.in[0] = a;
    n.in[1] = b;
    n.nin = 2;
    n.out = rc_graph_tensor(g, name, ta->c, ta->h, ta->w);
    rc_graph_node(g, &n);
    return n.out;
}

int rc_emit_concat(rc_graph *g, const char *name, int nin, const int *xs) {
    RC_ASSERT(nin >= 1 && nin <= RC_MAX_IN);
    rc_node n = node_proto(RC_OP_CONCAT);
    int c = 0;
    for (int i = 0; i < nin; i++) {
        const rc_tensor *t = &g->tensors[xs[i]];
        RC_ASSERT(t->h == g->tensors[xs[0]].h && t->w == g->tensors[xs[0]].w);
        n.in[i] = xs[i];
        c += t->c;
    }
    n.nin = nin;
    n.out = rc_graph_tensor(g, name, c, g->tensors[xs[0]].h, g->tensors[xs[0]].w);
    rc_graph_node(g, &n);
    return n.out;
}

int rc_emit_slice(rc_graph *g, const char *name, int x, int c0, int len) {
    const rc_tensor *in = &g->tensors[x];
    RC_ASSERT(c0 >= 0 && len > 0 && c0 + len <= in->c);
    rc_node n = node_proto(RC_OP_SLICE);
    n.in[0] = x;
    n.nin = 1;
    n.k = c0;
    n.stride = len;
    n.out = rc_graph_tensor(g, name, len, in->h, in->w);
    rc_graph_node(g, &n);
    return n.out;
}

int rc_emit_pool(rc_graph *g, rc_op_type op, const char *name, int x, int k, int stride, int pad) {
    RC_ASSERT(op == RC_OP_MAXPOOL || op == RC_OP_AVGPOOL);
    const rc_tensor *in = &g->tensors[x];
    rc_node n = node_proto(op);
    n.in[0] = x;
    n.nin = 1;
    n.k = k;
    n.stride = stride;
    n.pad = pad;
    int ho = (in->h + 2 * pad - k) / stride + 1, wo = (in->w + 2 * pad - k) / stride + 1;
    RC_ASSERT(ho > 0 && wo > 0);
    n.out = rc_graph_tensor(g, name, in->c, ho, wo);
    rc_graph_node(g, &n);
    return n.out;
}

int rc_emit_gap(rc_graph *g, const char *name, int x) {
    rc_node n = node_proto(RC_OP_GAP);
    n.in[0] = x;
    n.nin = 1;
    n.out = rc_graph_tensor(g, name, g->tensors[x].c, 1, 1);
    rc_graph_node(g, &n);
    return n.out;
}

int rc_emit_upsample(rc_graph *g, const char *name, int x, int ho, int wo) {
    rc_node n = node_proto(RC_OP_UPSAMPLE);
    n.in[0] = x;
    n.nin = 1;
    n.out = rc_graph_tensor(g, name, g->tensors[x].c, ho, wo);
    rc_graph_node(g, &n);
    return n.out;
}

int rc_emit_linear(rc_graph *g, const char *name, int x, int w_param, int b_param, int out) {
    const rc_tensor *in = &g->tensors[x];
    int fan_in = in->c * in->h * in->w;
    const rc_param *w = &g->params[w_param];
    RC_ASSERT(w->ndim == 2 && w->shape[0] == out && w->shape[1] == fan_in);
    rc_node n = node_proto(RC_OP_LINEAR);
    n.in[0] = x;
    n.nin = 1;
    n.param[0] = w_param;
    n.param[1] = b_param;
    n.out = rc_graph_tensor(g, name, out, 1, 1);
    rc_graph_node(g, &n);
    return n.out;
}

void rc_graph_mark_output(rc_graph *g, int t) {
    RC_ASSERT(!g->planned && t >= 0 && t < g->ntensors);
    g->tensors[t].is_output = 1;
}

static rc_conv_dims conv_dims(const rc_graph *g, const rc_node *n) {
    const rc_tensor *x = &g->tensors[n->in[0]], *y = &g->tensors[n->out];
    rc_conv_dims d;
    rc_conv_dims_init(&d, g->batch, x->c, x->h, x->w, y->c, n->k, n->stride, n->pad);
    return d;
}

rc_status rc_graph_plan(rc_graph *g) {
    RC_ASSERT(!g->planned);
    size_t N = (size_t)g->batch;
    /* params: one block per category */
    size_t pf = 0;
    for (int i = 0; i < g->nparams; i++) {
        g->params[i].off = pf;
        pf += (g->params[i].numel + 15) / 16 * 16;
    }
    g->param_floats = pf;
    /* activations and their gradients: one arena each */
    size_t af = 0;
    for (int i = 0; i < g->ntensors; i++) {
        g->tensors[i].off = af;
        af += (N * tsize(g, i) + 15) / 16 * 16;
    }
    g->act_floats = af;
    /* saved statistics (batch norm mean/rstd) and op scratch */
    size_t sf = 0, scr = 0;
    for (int i = 0; i < g->nnodes; i++) {
        rc_node *n = &g->nodes[i];
        if (n->op == RC_OP_BATCHNORM) {
            n->save_off = sf;
            sf += (2 * (size_t)g->tensors[n->out].c + 15) / 16 * 16;
        } else if (n->op == RC_OP_CONV) {
            rc_conv_dims d = conv_dims(g, n);
            size_t s = rc_conv2d_scratch_floats(&d);
            if (s > scr) scr = s;
        }
    }
    g->save_floats = sf;
    g->scratch_floats = scr;
    g->pw = rc_aalloc_floats(pf);
    g->pg = rc_aalloc_floats(pf);
    g->pm = rc_aalloc_floats(pf);
    g->pv = rc_aalloc_floats(pf);
    g->act = rc_aalloc_floats(af);
    g->grad = rc_aalloc_floats(af);
    g->save = rc_aalloc_floats(sf);
    g->scratch = rc_aalloc_floats(scr);
    if (!g->pw || !g->pg || !g->pm || !g->pv || !g->act || !g->grad || !g->save || !g->scratch)
        return rc_fail("cannot allocate %.1f MB for the model at batch %d (params %.1f MB, activations %.1f MB)",
                       (4.0 * pf + 2.0 * af + sf + scr) * 4 / 1e6, g->batch, 16.0 * pf / 1e6, 8.0 * af / 1e6);
    for (int i = 0; i < g->nparams; i++) {
        rc_param *p = &g->params[i];
        p->w = g->pw + p->off;
        p->g = g->pg + p->off;
        p->m = g->pm + p->off;
        p->v = g->pv + p->off;
    }
    for (int i = 0; i < g->ntensors; i++) {
        rc_tensor *t = &g->tensors[i];
        t->x = g->act + t->off;
        t->dx = g->grad + t->off;
    }
    /* Gradient write plan: walking nodes in reverse (the backward order), the first node to write a
     * tensor's gradient overwrites it; later writers accumulate. Outputs are pre-written by the loss. */
    char *written = rc_xcalloc((size_t)g->ntensors, 1);
    for (int i = 0; i < g->ntensors; i++) written[i] = (char)g->tensors[i].is_output;
    for (int i = g->nnodes - 1; i >= 0; i--) {
        rc_node *n = &g->nodes[i];
        for (int j = 0; j < n->nin; j++) {
            int t = n->in[j];
            n->acc[j] = written[t] ? 1 : 0;
            written[t] = 1;
        }
    }
    free(written);
    g->planned = 1;
    return RC_OK;
}

void rc_graph_init_params(rc_graph *g, uint64_t seed) {
    RC_ASSERT(g->planned);
    rc_rng rng;
    rc_rng_seed(&rng, seed);
    for (int i = 0; i < g->nparams; i++) {
        rc_param *p = &g->params[i];
        for (size_t j = 0; j < p->numel; j++) {
            if (p->init_std > 0)
                p->w[j] = p->init_std * rc_rng_normal(&rng);
            else if (p->init_uniform > 0)
                p->w[j] = p->init_uniform * (2.0f * rc_rng_uniform(&rng) - 1.0f);
            else
                p->w[j] = p->init_const;
        }
    }
    memset(g->pm, 0, g->param_floats * sizeof(float));
    memset(g->pv, 0, g->param_floats * sizeof(float));
}

rc_profile rc_prof;

const char *rc_op_name(rc_op_type op) {
    static const char *names[RC_OP_COUNT] = {"conv2d", "batchnorm", "relu",    "sigmoid",  "tanh",
                                             "add",    "mul",       "concat",  "slice",    "maxpool",
                                             "avgpool", "gap",      "upsample", "linear"};
    return op >= 0 && op < RC_OP_COUNT ? names[op] : "?";
}

static float *pw(rc_graph *g, int p) { return p >= 0 ? g->params[p].w : NULL; }
static float *pgr(rc_graph *g, int p) { return p >= 0 ? g->params[p].g : NULL; }

void rc_graph_forward(rc_graph *g, int train) {
    RC_ASSERT(g->planned);
    int N = g->batch;
    for (int i = 0; i < g->nnodes; i++) {
        rc_node *n = &g->nodes[i];
        rc_tensor *y = &g->tensors[n->out];
        const rc_tensor *x = &g->tensors[n->in[0]];
        size_t numel = (size_t)N * tsize(g, n->out);
        double t0 = rc_prof.enabled ? rc_now() : 0;
        switch (n->op) {
        case RC_OP_CONV: {
            rc_conv_dims d = conv_dims(g, n);
            rc_conv2d_forward(&d, x->x, pw(g, n->param[0]), pw(g, n->param[1]), y->x);
            break;
        }
        case RC_OP_BATCHNORM: {
            float *mean = g->save + n->save_off, *rstd = mean + y->c;
            rc_batchnorm_forward(N, x->c, x->h * x->w, x->x, pw(g, n->param[0]), pw(g, n->param[1]), y->x, mean,
                                 rstd, pw(g, n->param[2]), pw(g, n->param[3]), n->momentum, n->eps, train);
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
        case RC_OP_SLICE: rc_slice_forward(N, x->c, x->h * x->w, n->k, n->stride, x->x, y->x); break;
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
        case RC_OP_GAP: rc_gap_forward(N, x->c, x->h * x->w, x->x, y->x); break;
        case RC_OP_UPSAMPLE: rc_upsample_forward(N, x->c, x->h, x->w, y->h, y->w, x->x, y->x); break;
        case RC_OP_LINEAR:
            rc_linear_forward(N, x->c * x->h * x->w, y->c, x->x, pw(g, n->param[0]), pw(g, n->param[1]), y->x);
            break;
        default: RC_ASSERT(0 && "unknown op");
        }
        if (rc_prof.enabled) {
            rc_prof.fwd_s[n->op] += rc_now() - t0;
            rc_prof.fwd_calls[n->op]++;
            rc_prof.fwd_flops[n->op] += rc_graph_node_flops(g, i) * N;
        }
    }
}

void rc_graph_zero_grads(rc_graph *g) { memset(g->pg, 0, g->param_floats * sizeof(float)); }

/* The input image needs no gradient: skip writing it. */
static float *gin(rc_graph *g, int t) { return g->tensors[t].is_input ? NULL : g->tensors[t].dx; }

void rc_graph_backward(rc_graph *g) {
    RC_ASSERT(g->planned);
    int N = g->batch;
    for (int i = g->nnodes - 1; i >= 0; i--) {
        rc_node *n = &g->nodes[i];
        rc_tensor *y = &g->tensors[n->out];
        const rc_tensor *x = &g->tensors[n->in[0]];
        size_t numel = (size_t)N * tsize(g, n->out);
        float *dx0 = gin(g, n->in[0]);
        double t0 = rc_prof.enabled ? rc_now() : 0;
        switch (n->op) {
        case RC_OP_CONV: {
            rc_conv_dims d = conv_dims(g, n);
            rc_conv2d_backward(&d, x->x, pw(g, n->param[0]), y->dx, dx0, n->acc[0], pgr(g, n->param[0]),
                               pgr(g, n->param[1]), g->scratch);
            break;
        }
        case RC_OP_BATCHNORM: {
            float *mean = g->save + n->save_off, *rstd = mean + y->c;
            rc_batchnorm_backward(N, x->c, x->h * x->w, x->x, pw(g, n->param[0]), mean, rstd, y->dx, dx0, n->acc[0],
                                  pgr(g, n->param[0]), pgr(g, n->param[1]), 1);
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
        case RC_OP_SLICE: rc_slice_backward(N, x->c, x->h * x->w, n->k, n->stride, y->dx, dx0, n->acc[0]); break;
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
        case RC_OP_GAP: rc_gap_backward(N, x->c, x->h * x->w, y->dx, dx0, n->acc[0]); break;
        case RC_OP_UPSAMPLE: rc_upsample_backward(N, x->c, x->h, x->w, y->h, y->w, y->dx, dx0, n->acc[0]); break;
        case RC_OP_LINEAR:
            rc_linear_backward(N, x->c * x->h * x->w, y->c, x->x, pw(g, n->param[0]), y->dx, dx0, n->acc[0],
                               pgr(g, n->param[0]), pgr(g, n->param[1]));
            break;
        default: RC_ASSERT(0 && "unknown op");
        }
        if (rc_prof.enabled) {
            rc_prof.bwd_s[n->op] += rc_now() - t0;
            rc_prof.bwd_calls[n->op]++;
        }
    }
}

double rc_graph_node_flops(const rc_graph *g, int i) {
    const rc_node *n = &g->nodes[i];
    const rc_tensor *x = &g->tensors[n->in[0]], *y = &g->tensors[n->out];
    double ysz = (double)y->c * y->h * y->w;
    switch (n->op) {
    case RC_OP_CONV: {
        rc_conv_dims d;
        rc_conv_dims_init(&d, 1, x->c, x->h, x->w, y->c, n->k, n->stride, n->pad);
        return rc_conv2d_flops(&d);
    }
    case RC_OP_BATCHNORM: return rc_batchnorm_flops(1, x->c, x->h * x->w);
    case RC_OP_LINEAR: return 2.0 * ysz * x->c * x->h * x->w + ysz;
    case RC_OP_GAP: return (double)x->c * x->h * x->w;
    case RC_OP_MAXPOOL:
    case RC_OP_AVGPOOL: return ysz * n->k * n->k;
    case RC_OP_SIGMOID:
    case RC_OP_TANH: return 4.0 * ysz;
    case RC_OP_RELU:
    case RC_OP_ADD:
    case RC_OP_MUL: return ysz;
    default: return 0;
    }
}

double rc_graph_flops_per_image(const rc_graph *g) {
    double total = 0;
    for (int i = 0; i < g->nnodes; i++) total += rc_graph_node_flops(g, i);
    return total;
}

size_t rc_graph_trainable_params(const rc_graph *g) {
    size_t n = 0;
    for (int i = 0; i < g->nparams; i++)
        if (g->params[i].kind != RC_PARAM_BUFFER) n += g->params[i].numel;
    return n;
}

int rc_graph_depth_to(const rc_graph *g, int t) {
    /* nodes are in topological order; longest path in conv layers to each tensor */
    int *depth = rc_xcalloc((size_t)g->ntensors, sizeof(int));
    for (int i = 0; i < g->nnodes; i++) {
        const rc_node *n = &g->nodes[i];
        int d = 0;
        for (int j = 0; j < n->nin; j++) d = RC_MAX(d, depth[n->in[j]]);
        depth[n->out] = d + (n->is_conv_layer ? 1 : 0);
    }
    int r = depth[t];
    free(depth);
    return r;
}
