/* graph.c — building the unrolled graph: params, tensors, the builder's nodes and their emitters; FLOP
 * counting (from the op table), trainable params and effective depth. Planning (graph_mem.c, graph_plan.c)
 * and running (graph_exec.c, graph_run.c) sit above. */
#include "graph_build.h"

#include <string.h>

#include "op_table.h"

void rc_graph_init(rc_graph *g, int batch) {
    memset(g, 0, sizeof *g);
    g->batch = batch;
    g->input = -1;
}

void rc_graph_set_step(rc_graph *g, int step) { g->cur_step = step; }

void rc_graph_set_recompute(rc_graph *g, int k) {
    RC_ASSERT(!g->planned);
    g->recompute = k > 0 ? k : 0;
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
    g->nodes[g->nnodes].step = g->cur_step;
    return g->nnodes++;
}

static rc_node node_proto(rc_op_type op) {
    rc_node n;
    memset(&n, 0, sizeof n);
    n.op = op;
    for (int i = 0; i < 4; i++) n.param[i] = -1;
    return n;
}

int rc_emit_conv(rc_graph *g, const char *name, int x, int w_param, int b_param, int k_out, int r, int stride,
                 int pad) {
    return rc_emit_conv_grouped(g, name, x, w_param, b_param, k_out, r, stride, pad, 1);
}

int rc_emit_conv_grouped(rc_graph *g, const char *name, int x, int w_param, int b_param, int k_out, int r,
                         int stride, int pad, int groups) {
    const rc_tensor *in = &g->tensors[x];
    RC_ASSERT(groups >= 1 && in->c % groups == 0 && k_out % groups == 0);
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
    n.groups = groups;
    n.is_conv_layer = 1;
    const rc_param *w = &g->params[w_param];
    RC_ASSERT(w->ndim == 4 && w->shape[0] == k_out && w->shape[1] == in->c / groups && w->shape[2] == r &&
              w->shape[3] == r);
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

/* An elementwise op over nin same-shaped inputs; its output has their shape. */
static int emit_eltwise(rc_graph *g, rc_op_type op, const char *name, int nin, const int *xs) {
    const rc_tensor *t0 = &g->tensors[xs[0]];
    rc_node n = node_proto(op);
    for (int j = 0; j < nin; j++) {
        const rc_tensor *tj = &g->tensors[xs[j]];
        RC_ASSERT(tj->c == t0->c && tj->h == t0->h && tj->w == t0->w);
        n.in[j] = xs[j];
    }
    n.nin = nin;
    n.out = rc_graph_tensor(g, name, t0->c, t0->h, t0->w);
    rc_graph_node(g, &n);
    return n.out;
}

int rc_emit_unary(rc_graph *g, rc_op_type op, const char *name, int x) {
    RC_ASSERT(op == RC_OP_RELU || op == RC_OP_SIGMOID || op == RC_OP_TANH);
    return emit_eltwise(g, op, name, 1, &x);
}

int rc_emit_binary(rc_graph *g, rc_op_type op, const char *name, int a, int b) {
    RC_ASSERT(op == RC_OP_ADD || op == RC_OP_MUL);
    const int xs[2] = {a, b};
    return emit_eltwise(g, op, name, 2, xs);
}

int rc_emit_lerp(rc_graph *g, const char *name, int w, int a, int b) {
    const int xs[3] = {w, a, b};
    return emit_eltwise(g, RC_OP_LERP, name, b >= 0 ? 3 : 2, xs);
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

void rc_graph_keep(rc_graph *g, int t) {
    RC_ASSERT(!g->planned && t >= 0 && t < g->ntensors);
    g->tensors[t].keep = 1;
}


const char *rc_op_name(rc_op_type op) { return op >= 0 && op < RC_OP_COUNT ? rc_op_defs[op].name : "?"; }


double rc_graph_node_flops(const rc_graph *g, int i) { return rc_op_defs[g->nodes[i].op].flops(g, &g->nodes[i]); }

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
