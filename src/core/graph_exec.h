/* graph_exec.h — running a planned graph (graph_plan.h): forward and backward over the exec nodes, one node
 * or one phase of it at a time (graph_exec.c through the op table), the loops over the plan and the
 * chunked schedule with the per-op profile and the numerics check (graph_run.c). */
#ifndef RC_GRAPH_EXEC_H
#define RC_GRAPH_EXEC_H

#include "graph_plan.h"

/* Run every node. train=1: batch norm uses batch statistics and updates running stats. */
void rc_graph_forward(rc_graph *g, int train);
/* Zero param gradients (once per step, before backward). */
void rc_graph_zero_grads(rc_graph *g);
/* Backward from the gradients the caller wrote into the output tensors' dx. */
void rc_graph_backward(rc_graph *g);

/* Internal (graph_exec.c): run exec node i forward (RC_RUN_*) or backward; one phase (RC_PH_*) of it over
 * images [b0, b1) (RC_PH_FINISH: the whole batch, b0 b1 ignored). */
enum { RC_RUN_EVAL = 0, RC_RUN_TRAIN = 1, RC_RUN_REPLAY = 2 };
void rc_graph_exec_forward(rc_graph *g, int i, int mode);
void rc_graph_exec_backward(rc_graph *g, int i);
void rc_graph_exec_forward_phase(rc_graph *g, int i, int mode, int phase, int b0, int b1);
void rc_graph_exec_backward_phase(rc_graph *g, int i, int phase, int b0, int b1);

/* Per-op profile: when enabled, forward/backward accumulate wall time per op type (seconds) and
 * call counts. For `recur bench --profile`. */
typedef struct {
    int enabled;
    double fwd_s[RC_OP_COUNT], bwd_s[RC_OP_COUNT];
    long fwd_calls[RC_OP_COUNT], bwd_calls[RC_OP_COUNT];
    double fwd_flops[RC_OP_COUNT];
    double replay_s[RC_OP_COUNT]; /* recomputation in backward (train.recompute) */
} rc_profile;
extern rc_profile rc_prof;

/* Numerics check (`recur train --check-numerics`): when enabled, forward checks each node's output and
 * backward each gradient a node writes (its inputs' and its params') for NaN/Inf, and records the first
 * node that produced one (later nodes are not checked until the caller clears tripped). */
typedef struct {
    int enabled, tripped;
    int node;                  /* index of the node */
    int backward;              /* 0: its forward output; 1: a gradient its backward wrote */
    int is_nan;                /* NaN, else +-Inf */
    char grad_of[RC_NAME_MAX]; /* backward: the tensor or param whose gradient went bad */
} rc_numerics;
extern rc_numerics rc_numcheck;
/* "V1.t2.lat (conv2d) produced NaN in forward" (after a trip). */
void rc_numerics_describe(const rc_graph *g, char *out, size_t n);

#endif
