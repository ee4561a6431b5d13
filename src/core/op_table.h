/* op_table.h — what the engine knows about each op, in one table (rc_op_defs, op_table.c): its name, FLOPs,
 * forward and backward on an exec node, which tensors its backward reads, the layouts it accepts, whether
 * it runs in micro-batches and in batch-norm phases, and the fused forms the plan may make starting at it.
 * The builder, planner, scheduler and executor read this table; none of them switches over ops. */
#ifndef RC_OP_TABLE_H
#define RC_OP_TABLE_H

#include "graph_build.h"
#include "ops/ops.h"

typedef struct rc_xnode rc_xnode; /* the plan's exec node (graph_plan.h) */

/* What one call of an exec node's forward or backward runs: images [b0, b1) (N = b1 - b0) in one phase
 * (RC_PH_*, graph.h; RC_PH_FINISH: b0 = 0, b1 = batch) in one mode (forward: RC_RUN_*; backward: TRAIN). */
typedef struct {
    int mode;   /* RC_RUN_EVAL / TRAIN / REPLAY */
    int bnmode; /* the batch norm's mode for it: RC_BN_TRAIN / EVAL / REPLAY (ops.h) */
    int phase;  /* RC_PH_ALL, STATS, FINISH, APPLY */
    int b0, b1, N;
    int whole;  /* phase ALL over the whole batch */
} rc_exec_ctx;

/* Which tensors an op's backward reads (bits): inputs in[j], the output, the second output. NONE is the
 * explicit "reads nothing", so that an entry left at 0 is detectable. */
#define RC_READS_IN(j) (1u << (j))
#define RC_READS_OUT (1u << RC_MAX_IN)
#define RC_READS_OUT2 (1u << (RC_MAX_IN + 1))
#define RC_READS_NONE (1u << (RC_MAX_IN + 2))

/* Layouts an op accepts (rc_op_def.layout): ANY combination of plain and blocked; the SAME layout for all
 * its operands (inputs, output, second output); PLAIN only. */
enum { RC_LAY_UNSET = 0, RC_LAY_ANY, RC_LAY_SAME, RC_LAY_PLAIN };
/* Batch-norm phases of an op's forward (STATS, FINISH, APPLY in the chunked schedule): never, always, or
 * when the exec node has a batch norm inside (bn). */
enum { RC_PHASED_NO = 0, RC_PHASED_YES, RC_PHASED_IF_BN };

#define RC_MAX_FUSE 3
struct rc_cons; /* consumers of each tensor (graph_plan.c) */
/* A fused form starting at builder node i: fills the exec node x and returns the last builder node it
 * absorbs, or -1 when the nodes from i on do not match. fuse: the plan's FUSE option (graph.h). */
typedef int (*rc_fuse_fn)(rc_graph *g, const struct rc_cons *cs, int i, int fuse, rc_xnode *x);

typedef struct {
    const char *name;
    /* forward FLOPs per image of builder node n */
    double (*flops)(const rc_graph *g, const rc_node *n);
    /* exec node n over c's images and phase */
    void (*forward)(rc_graph *g, rc_xnode *n, const rc_exec_ctx *c);
    void (*backward)(rc_graph *g, rc_xnode *n, const rc_exec_ctx *c);
    /* RC_READS_* bits: every tensor the backward may read (an upper bound where bwd_reads_fn narrows it
     * for the exec node at hand: BNACT's mask, LSTM's optional c_prev) */
    unsigned bwd_reads;
    unsigned (*bwd_reads_fn)(const rc_xnode *n);
    /* layouts: the rule; pad_zero: the op would not keep the zero padding lanes of a blocked tensor whose
     * C % 16 != 0 (sigmoid: 0 -> 0.5; the LSTM's channel slices), so such operands go plain;
     * layout_fn (optional): the operands that must agree instead of the rule's (a group containing
     * g->input goes plain), returns how many it wrote into ts (at most RC_MAX_IN + 3) */
    int layout, pad_zero;
    int (*layout_fn)(const rc_graph *g, const rc_xnode *n, int *ts);
    /* chunked schedule: forward / backward over micro-batches; batch-norm phases of forward (RC_PHASED_*)
     * and backward (its gradient sums: STATS, FINISH, APPLY) */
    int fwd_chunk, bwd_chunk, fwd_phased, bwd_phased;
    /* batch-norm statistics saved by forward for backward (RC_PHASED_* values: no, yes, if bn) */
    int bn_stats;
    /* the scheduler's cache rule (graph_sched.c): a node whose output a convolution reading it right after
     * finds in cache (feeds), a node whose input read pays from that (hot: the convolution) */
    int feeds, hot;
    /* fused forms starting at this op, tried in order (NULL-terminated) */
    rc_fuse_fn fuse[RC_MAX_FUSE + 1];
} rc_op_def;

/* RC_OP_COUNT entries, indexed by rc_op_type. Declared without its size so that op_table.c's definition
 * takes it from its initialiser, and its _Static_assert sees an entry missing at the end. */
extern const rc_op_def rc_op_defs[];

/* RC_READS_* of exec node n's backward (the table's bits, narrowed by its hook). */
unsigned rc_op_bwd_reads(const rc_xnode *n);
/* Does exec node n's forward run in batch-norm phases (STATS, FINISH, APPLY)? */
int rc_op_fwd_phased(const rc_xnode *n);
/* Does exec node n save batch-norm statistics (mean, rstd; save_off)? */
int rc_op_saves_bn(const rc_xnode *n);
/* The convolution of conv exec node n over nb images, with its tensors' layouts (what the conv selector,
 * ops.h, is asked about). */
rc_conv_dims rc_xnode_conv_dims(const rc_graph *g, const rc_xnode *n, int nb);
/* 0 when every entry is complete (name, flops, forward, backward, non-zero bwd_reads, a layout rule);
 * otherwise the first incomplete op's index + 1, with what is missing in *why. */
int rc_op_table_check(const char **why);

#endif
