/* graph_exec.c — running one exec node of the plan forward (train, eval, or replay for recomputation)
 * or backward, over the whole batch or over images [b0, b1) (one phase of the chunked schedule,
 * graph_sched.c): the dispatch from exec nodes to their op table entries (op_table.c). */
#include "graph_exec.h"

#include "op_table.h"
#include "ops/ops.h"

void rc_graph_exec_forward_phase(rc_graph *g, int i, int mode, int phase, int b0, int b1) {
    rc_xnode *n = &g->xnodes[i];
    rc_exec_ctx c;
    c.mode = mode;
    c.bnmode = mode == RC_RUN_TRAIN ? RC_BN_TRAIN : mode == RC_RUN_EVAL ? RC_BN_EVAL : RC_BN_REPLAY;
    c.phase = phase;
    c.whole = phase == RC_PH_ALL && b0 == 0 && b1 == g->batch;
    if (phase == RC_PH_FINISH) b0 = 0, b1 = g->batch;
    c.b0 = b0;
    c.b1 = b1;
    c.N = b1 - b0;
    RC_ASSERT(phase == RC_PH_ALL || rc_op_fwd_phased(n)); /* only batch-norm statistics come in phases */
    rc_op_defs[n->op].forward(g, n, &c);
}

void rc_graph_exec_forward(rc_graph *g, int i, int mode) { rc_graph_exec_forward_phase(g, i, mode, RC_PH_ALL, 0, g->batch); }

void rc_graph_exec_backward_phase(rc_graph *g, int i, int phase, int b0, int b1) {
    rc_xnode *n = &g->xnodes[i];
    if (!n->active) return; /* no gradient reaches its outputs */
    RC_ASSERT(phase == RC_PH_ALL || rc_op_defs[n->op].bwd_phased);
    rc_exec_ctx c;
    c.mode = RC_RUN_TRAIN;
    c.bnmode = RC_BN_TRAIN;
    c.phase = phase;
    c.whole = phase == RC_PH_ALL && b0 == 0 && b1 == g->batch;
    c.b0 = b0;
    c.b1 = b1;
    c.N = b1 - b0;
    rc_op_defs[n->op].backward(g, n, &c);
}

void rc_graph_exec_backward(rc_graph *g, int i) { rc_graph_exec_backward_phase(g, i, RC_PH_ALL, 0, g->batch); }
