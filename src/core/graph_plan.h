/* graph_plan.h — the plan of a built graph (graph_build.h): exec nodes (the builder's nodes after fusion,
 * in run order, with what running them needs), activation layouts, gradient overwrite/accumulate flags,
 * recomputation segments, the chunked schedule and one arena sized by liveness (graph_plan.c,
 * graph_fuse.c, graph_sched.c). Execution (graph_exec.h) sits above. */
#ifndef RC_GRAPH_PLAN_H
#define RC_GRAPH_PLAN_H

#include "graph_build.h"

/* An exec node: one op of the op table run as one unit (a builder's node, or several fused), over the
 * builder's nodes [first, last]. */
typedef struct rc_xnode {
    rc_op_type op;
    int in[RC_MAX_IN], nin; /* tensor indices */
    int out;                /* tensor index */
    int out2;               /* second output (LSTM cell state, BNACT's pooled readout), -1 = none */
    int param[4];           /* param indices, -1 = absent (as the builder's node) */
    int k, stride, pad;     /* as the builder's node */
    int groups;             /* conv: channel groups, as the builder's node */
    float eps, momentum;    /* batch norm */
    int step;               /* unroll step tag of its first builder node */
    int relu, bn;           /* BNACT: relu after; LSTM: batch norm before the gates */
    int first, last;        /* the builder's nodes [first, last] this exec node runs */
    size_t save_off;        /* batch norm: offset of mean[C], rstd[C] in the save area */
    size_t sums_off;        /* fused batch norm: offset of its backward's gradient sums (2C + 1) in sums */
    int acc[RC_MAX_IN];     /* backward: 1 = accumulate into in[i]'s gradient, 0 = overwrite (planned) */
    int active;             /* backward runs: some gradient reaches an output */
    int dout_ok, dout2_ok;  /* the output's / out2's gradient is written before this node's backward */
    int replay;             /* recomputed before its segment's backward (train.recompute) */
    int remat;              /* output rematerialised just before its first backward use (RC_PLAN_REMAT) */
    int remat_head, remat_link; /* nodes to rematerialise before this node's backward: a list */
    int efuse;              /* CONV, UPADD: the BNACT whose input sum it makes, folded into it in eval mode
                             * (graph_plan.c make_eval_fusion), -1 none */
    size_t fold_off;        /* CONV with efuse: its weights and bias with that batch norm folded in, in fold */
    int eshift;             /* CONV with efuse: its folded bias adds the batch norm's shift (one per sum) */
    int eabs;               /* BNACT: the node that makes its input sum and runs it in eval mode, -1 none */
    int bnpre;              /* CONV, UPADD: the BNACT or LSTM whose training statistics its epilogue sums
                             * (graph_plan.c make_stats_fusion), -1 none */
    size_t pre_off;         /* BNACT (or LSTM with bn) fed by such a producer: its chunks' partial sums in bnpre */
    int pre_ready;          /* the producer made them in this pass (set by it, cleared when used) */
} rc_xnode;

/* Plan options (bits), read by rc_graph_plan; default all. FUSE and BLOCKED apply only with rc_ops_fast
 * (BLOCKED only with oneDNN); REMAT (with SHARE): the output of a batch norm + relu without residual is
 * not kept for backward but recomputed from its input right before backward needs it (one cheap pass,
 * a quarter of a residual cell's stored activations). Tests clear bits to compare paths; the environment
 * variable RECUR_PLAN=nofuse,noblocked,noshare,noremat,nochunk,noeval clears them too (for benchmarks).
 * CHUNK (fast only, not with train.recompute): run forward and backward in micro-batches (graph_sched.c).
 * EVAL (with CHUNK's micro-batches): inference runs each micro-batch through every node in an arena of
 * its own, batch norms folded into the convolutions before them (graph_plan.c make_eval_memory).
 * STATS (with FUSE; RECUR_PLAN=nostats): in training, a batch norm's statistics are summed in the epilogue
 * of the node that writes its input (a convolution where recur's kernels run it, an upsample + add;
 * graph_plan.c make_stats_fusion) instead of in a pass of their own over that input. */
enum {
    RC_PLAN_FUSE = 1,
    RC_PLAN_BLOCKED = 2,
    RC_PLAN_SHARE = 4,
    RC_PLAN_REMAT = 8,
    RC_PLAN_CHUNK = 16,
    RC_PLAN_EVAL = 32,
    RC_PLAN_STATS = 64
};
extern int rc_plan_opts;
/* Micro-batches of the chunked schedule: 0 chooses (graph_sched.c); 1, 2, 4 or 8 forces (tests). Which
 * waves run in micro-batches: AUTO those where it pays (graph_sched.c), ALL every one that can, ALTERNATE
 * every other one (tests: mixed schedules on small models). */
extern int rc_sched_chunks;
enum { RC_SCHED_AUTO = 0, RC_SCHED_ALL = 1, RC_SCHED_ALTERNATE = 2 };
extern int rc_sched_waves;
/* The last-level cache size the schedule assumes: 0 detects it (graph_sched.c llc_bytes); tests set it. */
extern size_t rc_sched_llc_bytes;
/* Micro-batches of the eval pipeline: 0 chooses (graph_plan.c eval_chunks: the schedule's over the threads);
 * m > 0 forces m (tests). */
extern int rc_eval_chunks;

/* Memory plan: allocates every category once and decides, for each node input, whether its backward
 * overwrites or accumulates the gradient. Returns RC_ERR (with message) if memory cannot be had. */
rc_status rc_graph_plan(rc_graph *g);
/* Initialise params from their init spec with the given seed (deterministic). */
void rc_graph_init_params(rc_graph *g, uint64_t seed);
/* Everything the graph holds: the builder's arrays, the plan's and the execution's memory. */
void rc_graph_free(rc_graph *g);
/* Copy tensor t's value (or its gradient when grad) into out as plain NCHW, whatever its layout. */
void rc_graph_read(const rc_graph *g, int t, int grad, float *out);
/* Fails (with the sizes and the limit in the message) when params + activations + other bytes exceed the
 * memory limit: RECUR_MAX_MEMORY_MB if set, else 3/4 of physical memory. Called before allocating. */
rc_status rc_graph_check_memory(const rc_graph *g, double param_bytes, double act_bytes, double other_bytes);

/* Internal (graph_plan.c): build xnodes, layouts and arena offsets. */
rc_status rc_graph_make_plan(rc_graph *g);
/* Internal (graph_sched.c): build the chunked schedule after rematerialisation is planned (allow = 0:
 * off); the time map of the memory plan (lo[t], hi[t]: the span of the waves that run at time t). */
void rc_sched_make(rc_graph *g, int allow);
void rc_sched_free(rc_graph *g);
/* Waves of s that run in micro-batches. */
int rc_sched_chunked(const rc_sched *s);
void rc_sched_widen(const rc_graph *g, const int *B, const int *RM, int ntimes, int *lo, int *hi);

#endif
