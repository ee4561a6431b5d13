/* graph.c — building the unrolled graph, planning it (params here; fusion, layouts, liveness and
 * recomputation in graph_plan.c), the forward/backward loops over the plan's exec nodes (graph_exec.c
 * runs one) with profiling and the numerics check, FLOP counting and effective depth. */
#define _POSIX_C_SOURCE 200809L /* sysconf (memory limit) */
#include "graph.h"

#include <math.h>
#include <string.h>
#include <unistd.h>

#include "base/rng.h"

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
    rc_afree(g->work);
    rc_afree(g->sums);
    free(g->fold);
    rc_afree(g->eval_arena);
    free(g->xnodes);
    free(g->seg_start);
    rc_sched_free(g);
    memset(g, 0, sizeof *g);
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

int rc_emit_lerp(rc_graph *g, const char *name, int w, int a, int b) {
    const rc_tensor *tw = &g->tensors[w], *ta = &g->tensors[a];
    RC_ASSERT(tw->c == ta->c && tw->h == ta->h && tw->w == ta->w);
    rc_node n = node_proto(RC_OP_LERP);
    n.in[0] = w;
    n.in[1] = a;
    n.nin = 2;
    if (b >= 0) {
        const rc_tensor *tb = &g->tensors[b];
        RC_ASSERT(tb->c == ta->c && tb->h == ta->h && tb->w == ta->w);
        n.in[n.nin++] = b;
    }
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

void rc_graph_keep(rc_graph *g, int t) {
    RC_ASSERT(!g->planned && t >= 0 && t < g->ntensors);
    g->tensors[t].keep = 1;
}


/* ---- memory limit: absurd configs are refused before anything is allocated ---------------------- */

/* The limit in bytes (0: none known): RECUR_MAX_MEMORY_MB (MB = 2^20 bytes) if set, else 3/4 of physical
 * memory. *why says which. Fails on a malformed RECUR_MAX_MEMORY_MB. */
static rc_status plan_limit(double *limit, char *why, size_t n) {
    const char *e = getenv("RECUR_MAX_MEMORY_MB");
    *limit = 0;
    if (e && *e) {
        char *end;
        double mb = strtod(e, &end);
        if (*end || !(mb > 0) || !isfinite(mb))
            return rc_fail("RECUR_MAX_MEMORY_MB='%.40s' is not a positive number of megabytes", e);
        *limit = mb * 1048576.0;
        snprintf(why, n, "RECUR_MAX_MEMORY_MB=%.40s", e);
        return RC_OK;
    }
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    if (pages > 0 && psz > 0) {
        *limit = 0.75 * (double)pages * (double)psz;
        snprintf(why, n, "3/4 of the %.0f MB of physical memory; set RECUR_MAX_MEMORY_MB to change it",
                 (double)pages * (double)psz / 1048576.0);
    }
    return RC_OK;
}

rc_status rc_graph_check_memory(const rc_graph *g, double param_bytes, double act_bytes, double other_bytes) {
    double limit;
    char why[160] = "";
    if (plan_limit(&limit, why, sizeof why)) return RC_ERR;
    double need = param_bytes + act_bytes + other_bytes;
    if (limit > 0 && need > limit && act_bytes <= 0)
        return rc_fail("the model's params, gradients and optimizer state need about %.6g MB, over the memory limit "
                       "of %.6g MB (%s); lower the channels, the areas or the untied steps",
                       need / 1048576.0, limit / 1048576.0, why);
    if (limit > 0 && need > limit)
        return rc_fail("the model needs about %.6g MB at batch %d (params, gradients and optimizer state %.6g MB; "
                       "activations and their gradients %.6g MB), over the memory limit of %.6g MB (%s); lower the "
                       "batch, channels, iterations or input size%s",
                       need / 1048576.0, g->batch, param_bytes / 1048576.0, act_bytes / 1048576.0, limit / 1048576.0,
                       why, act_bytes > 0 && g->recompute <= 0 ? ", or set train.recompute for a long unroll" : "");
    return RC_OK;
}

rc_status rc_graph_plan(rc_graph *g) {
    RC_ASSERT(!g->planned);
    rc_flush_denormals();
    /* params: one block per category; their size is checked against the memory limit first (in double:
     * no config can overflow it), the activations' once the plan has sized the arena (graph_plan.c) */
    size_t pf = 0;
    double pbytes = 0;
    for (int i = 0; i < g->nparams; i++) {
        g->params[i].off = pf;
        pf += (g->params[i].numel + 15) / 16 * 16;
        pbytes += 16.0 * (double)((g->params[i].numel + 15) / 16 * 16);
    }
    if (rc_graph_check_memory(g, pbytes, 0, 0)) return RC_ERR;
    /* unshared activations + gradients, an upper bound: beyond 2^60 bytes the plan's size_t offsets could
     * overflow, so such a config stops here whatever the limit says */
    double abytes = 0;
    for (int i = 0; i < g->ntensors; i++)
        abytes += 8.0 * ((double)g->batch * g->tensors[i].c * g->tensors[i].h * g->tensors[i].w + 15);
    if (abytes > 0x1p60) {
        if (rc_graph_check_memory(g, pbytes, abytes, 0)) return RC_ERR;
        return rc_fail("the model needs up to %.6g MB of activations at batch %d, more than this build can plan; lower "
                       "the batch, channels, iterations or input size", abytes / 1048576.0, g->batch);
    }
    g->param_floats = pf;
    g->pw = rc_aalloc_floats(pf);
    g->pg = rc_aalloc_floats(pf);
    g->pm = rc_aalloc_floats(pf);
    g->pv = rc_aalloc_floats(pf);
    if (!g->pw || !g->pg || !g->pm || !g->pv)
        return rc_fail("cannot allocate %.1f MB of params for the model", 16.0 * pf / 1e6);
    for (int i = 0; i < g->nparams; i++) {
        rc_param *p = &g->params[i];
        p->w = g->pw + p->off;
        p->g = g->pg + p->off;
        p->m = g->pm + p->off;
        p->v = g->pv + p->off;
    }
    /* fusion, layouts, gradient write flags, recomputation segments, and one arena for activations and
     * gradients with offsets by liveness (graph_plan.c) */
    if (rc_graph_make_plan(g)) return RC_ERR;
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
                                             "avgpool", "gap",      "upsample", "linear",  "lerp",     "bn+act",
                                             "lstm"};
    return op >= 0 && op < RC_OP_COUNT ? names[op] : "?";
}


/* ---- numerics check (recur train --check-numerics) ---------------------------------------------- */

rc_numerics rc_numcheck;

/* Record node i as the first producer of a non-finite value in v[0..n), if there is one. */
static int numcheck_scan(const rc_graph *g, int i, int backward, const char *what, const float *v, size_t n) {
    (void)g;
    if (!v) return 0;
    for (size_t j = 0; j < n; j++)
        if (!isfinite(v[j])) {
            rc_numcheck.tripped = 1;
            rc_numcheck.node = i;
            rc_numcheck.backward = backward;
            rc_numcheck.is_nan = isnan(v[j]) != 0;
            snprintf(rc_numcheck.grad_of, sizeof rc_numcheck.grad_of, "%s", what);
            return 1;
        }
    return 0;
}

/* Forward: node i's output. Backward: the gradients node i wrote (its inputs' and its params'). */
static void numcheck_node(const rc_graph *g, int i, int backward) {
    const rc_node *n = &g->xnodes[i]; /* exec nodes: the plan's fused ops */
    size_t N = (size_t)g->batch;
    if (backward && !n->active) return;
    if (!backward) {
        numcheck_scan(g, i, 0, "", g->tensors[n->out].x, N * rc_tensor_floats(&g->tensors[n->out]));
        return;
    }
    for (int j = 0; j < n->nin; j++) {
        const rc_tensor *t = &g->tensors[n->in[j]];
        if (!t->is_input && numcheck_scan(g, i, 1, t->name, t->dx, N * rc_tensor_floats(t))) return;
    }
    for (int j = 0; j < 4; j++) {
        int p = n->param[j];
        if (p >= 0 && g->params[p].kind != RC_PARAM_BUFFER &&
            numcheck_scan(g, i, 1, g->params[p].name, g->params[p].g, g->params[p].numel))
            return;
    }
}

void rc_numerics_describe(const rc_graph *g, char *out, size_t n) {
    RC_ASSERT(rc_numcheck.tripped && rc_numcheck.node >= 0 && rc_numcheck.node < g->nxnodes);
    const rc_node *nd = &g->xnodes[rc_numcheck.node];
    const char *v = rc_numcheck.is_nan ? "NaN" : "Inf";
    if (rc_numcheck.backward)
        snprintf(out, n, "%s (%s) produced %s in backward (in the gradient of %s)", g->tensors[nd->out].name,
                 rc_op_name(nd->op), v, rc_numcheck.grad_of);
    else
        snprintf(out, n, "%s (%s) produced %s in forward", g->tensors[nd->out].name, rc_op_name(nd->op), v);
}

/* Forward FLOPs of exec node i for the whole batch (the logical nodes it runs). */
static double xnode_flops(const rc_graph *g, int i) {
    double f = 0;
    for (int j = g->xnodes[i].first; j <= g->xnodes[i].last; j++) f += rc_graph_node_flops(g, j);
    return f * g->batch;
}

enum { PROF_FWD, PROF_BWD, PROF_REPLAY };
/* Seconds dt of exec node i into the profile; count = 1: one more call of the node (forward: its FLOPs). */
static void prof_add(const rc_graph *g, int i, int kind, double dt, int count) {
    const rc_op_type op = g->xnodes[i].op;
    if (kind == PROF_REPLAY) {
        rc_prof.replay_s[op] += dt;
    } else if (kind == PROF_BWD) {
        rc_prof.bwd_s[op] += dt;
        rc_prof.bwd_calls[op] += count;
    } else {
        rc_prof.fwd_s[op] += dt;
        rc_prof.fwd_calls[op] += count;
        if (count) rc_prof.fwd_flops[op] += xnode_flops(g, i);
    }
}

/* One entry of the chunked schedule over images [b0, b1), timed into the profile. */
static void run_entry(rc_graph *g, const rc_entry *e, int backward, int mode, int b0, int b1) {
    double t0 = rc_prof.enabled ? rc_now() : 0;
    if (e->phase == RC_PH_REPLAY)
        rc_graph_exec_forward_phase(g, e->node, RC_RUN_REPLAY, RC_PH_ALL, b0, b1);
    else if (backward)
        rc_graph_exec_backward_phase(g, e->node, e->phase, b0, b1);
    else
        rc_graph_exec_forward_phase(g, e->node, mode, e->phase, b0, b1);
    if (!rc_prof.enabled) return;
    const int once = b0 == 0 && (e->phase == RC_PH_ALL || e->phase == RC_PH_APPLY); /* count a node once */
    prof_add(g, e->node, e->phase == RC_PH_REPLAY ? PROF_REPLAY : backward ? PROF_BWD : PROF_FWD, rc_now() - t0,
             once);
}

/* The chunked schedule: each wave over every micro-batch (or once over the batch), then the numerics
 * check of the nodes the wave completed, in order. */
static void run_sched(rc_graph *g, const rc_sched *s, int backward, int mode) {
    for (int w = 0; w < s->nw; w++) {
        const rc_wave *wv = &s->w[w];
        const int nch = wv->whole ? 1 : g->nchunk;
        for (int j = 0; j < nch; j++) {
            int b0 = wv->whole ? 0 : g->chunk_b[j], b1 = wv->whole ? g->batch : g->chunk_b[j + 1];
            for (int k = wv->first; k < wv->first + wv->count; k++) run_entry(g, &s->e[k], backward, mode, b0, b1);
        }
        if (rc_numcheck.enabled)
            for (int k = wv->first; k < wv->first + wv->count && !rc_numcheck.tripped; k++)
                if (s->e[k].phase == RC_PH_ALL || s->e[k].phase == RC_PH_APPLY) numcheck_node(g, s->e[k].node, backward);
    }
}

/* chunked unless off, or batch-norm statistics are summed over ranks (they need the whole batch) */
static int chunked(const rc_graph *g) { return g->nchunk > 1 && rc_bn_allreduce == NULL; }

/* The eval pipeline (graph_plan.c make_eval_memory): the batch-norm statistics from the running ones (or
 * folded into the convolution before them), once; then each micro-batch through every node. */
static void run_eval(rc_graph *g) {
    g->eval_on = 1;
    for (int i = 0; i < g->nxnodes; i++) { /* (a batch norm folded into its conv: the folding) */
        const rc_node *n = &g->xnodes[i];
        if (rc_node_bn_phased(n)) rc_graph_exec_forward_phase(g, i, RC_RUN_EVAL, RC_PH_FINISH, 0, g->batch);
    }
    for (int j = 0; j < g->nchunk; j++)
        for (int i = 0; i < g->nxnodes; i++) {
            const rc_node *n = &g->xnodes[i];
            const int ph = rc_node_bn_phased(n) ? RC_PH_APPLY : RC_PH_ALL;
            double t0 = rc_prof.enabled ? rc_now() : 0;
            rc_graph_exec_forward_phase(g, i, RC_RUN_EVAL, ph, g->chunk_b[j], g->chunk_b[j + 1]);
            if (rc_prof.enabled) prof_add(g, i, PROF_FWD, rc_now() - t0, j == 0);
        }
    g->eval_on = 0;
}

void rc_graph_forward(rc_graph *g, int train) {
    RC_ASSERT(g->planned);
    if (!train && g->eval_arena && chunked(g) && !rc_numcheck.enabled) {
        run_eval(g);
        return;
    }
    if (chunked(g)) {
        run_sched(g, &g->fsched, 0, train ? RC_RUN_TRAIN : RC_RUN_EVAL);
        return;
    }
    for (int i = 0; i < g->nxnodes; i++) {
        double t0 = rc_prof.enabled ? rc_now() : 0;
        rc_graph_exec_forward(g, i, train ? RC_RUN_TRAIN : RC_RUN_EVAL);
        if (rc_numcheck.enabled && !rc_numcheck.tripped) numcheck_node(g, i, 0);
        if (rc_prof.enabled) prof_add(g, i, PROF_FWD, rc_now() - t0, 1);
    }
}

void rc_graph_zero_grads(rc_graph *g) { memset(g->pg, 0, g->param_floats * sizeof(float)); }

/* Backward segment by segment, last first (one segment unless train.recompute): a recomputed segment
 * first replays the forward of its nodes whose outputs were not kept, then runs backward in reverse. */
void rc_graph_backward(rc_graph *g) {
    RC_ASSERT(g->planned);
    if (chunked(g)) {
        RC_ASSERT(g->nseg == 1);
        run_sched(g, &g->bsched, 1, RC_RUN_TRAIN);
        return;
    }
    for (int s = g->nseg - 1; s >= 0; s--) {
        for (int i = g->seg_start[s]; i < g->seg_start[s + 1]; i++) {
            if (!g->xnodes[i].replay) continue;
            double t0 = rc_prof.enabled ? rc_now() : 0;
            rc_graph_exec_forward(g, i, RC_RUN_REPLAY);
            if (rc_prof.enabled) prof_add(g, i, PROF_REPLAY, rc_now() - t0, 0);
        }
        for (int i = g->seg_start[s + 1] - 1; i >= g->seg_start[s]; i--) {
            for (int p = g->xnodes[i].remat_head; p >= 0; p = g->xnodes[p].remat_link) {
                double t0 = rc_prof.enabled ? rc_now() : 0;
                rc_graph_exec_forward(g, p, RC_RUN_REPLAY); /* an output not kept: recomputed now */
                if (rc_prof.enabled) prof_add(g, p, PROF_REPLAY, rc_now() - t0, 0);
            }
            double t0 = rc_prof.enabled ? rc_now() : 0;
            rc_graph_exec_backward(g, i);
            if (rc_numcheck.enabled && !rc_numcheck.tripped) numcheck_node(g, i, 1);
            if (rc_prof.enabled) prof_add(g, i, PROF_BWD, rc_now() - t0, 1);
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
    case RC_OP_LERP: return 3.0 * ysz;
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
