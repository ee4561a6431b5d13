/* graph_run.c — the forward and backward loops over a planned graph: node by node, by recomputation
 * segment (train.recompute), over the chunked schedule's waves, or through the eval pipeline; with the
 * per-op profile and the numerics check. One exec node runs through graph_exec.c. */
#include <math.h>
#include <string.h>

#include "graph_exec.h"
#include "op_table.h"

rc_profile rc_prof;

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
    const rc_xnode *n = &g->xnodes[i]; /* exec nodes: the plan's fused ops */
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
    const rc_xnode *nd = &g->xnodes[rc_numcheck.node];
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
        const rc_xnode *n = &g->xnodes[i];
        if (rc_op_fwd_phased(n)) rc_graph_exec_forward_phase(g, i, RC_RUN_EVAL, RC_PH_FINISH, 0, g->batch);
    }
    const int m = g->eval_nchunk;
    for (int j = 0; j < m; j++)
        for (int i = 0; i < g->nxnodes; i++) {
            const rc_xnode *n = &g->xnodes[i];
            const int ph = rc_op_fwd_phased(n) ? RC_PH_APPLY : RC_PH_ALL;
            double t0 = rc_prof.enabled ? rc_now() : 0;
            rc_graph_exec_forward_phase(g, i, RC_RUN_EVAL, ph, g->batch * j / m, g->batch * (j + 1) / m);
            if (rc_prof.enabled) prof_add(g, i, PROF_FWD, rc_now() - t0, j == 0);
        }
    g->eval_on = 0;
}

void rc_graph_forward(rc_graph *g, int train) {
    RC_ASSERT(g->planned);
    if (!train && g->eval_arena && rc_bn_allreduce == NULL && !rc_numcheck.enabled) {
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
