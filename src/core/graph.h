/* graph.h — the static unrolled graph: params, tensors, nodes, the memory plan, forward and backward.
 * A model is built once per batch size by appending nodes; recurrence is reuse: a tied weight is one
 * param read by several nodes, and backward accumulates (+=) into its gradient. */
#ifndef RC_GRAPH_H
#define RC_GRAPH_H

#include "base/common.h"
#include "../ops/ops.h"

#define RC_NAME_MAX 64
#define RC_MAX_IN 8
#define RC_NO_GRAD ((size_t)-1)

typedef enum {
    RC_PARAM_WEIGHT = 0, /* trained, weight decay applies (conv and linear weights) */
    RC_PARAM_NODECAY,    /* trained, no weight decay (biases, batch-norm gamma/beta) */
    RC_PARAM_BUFFER      /* not trained, saved in checkpoints (batch-norm running statistics) */
} rc_param_kind;

/* A named tensor of weights with its gradient and optimizer state (slices of the graph's blocks). */
typedef struct {
    char name[RC_NAME_MAX];
    int ndim, shape[4];
    size_t numel, off; /* offset into the param blocks */
    rc_param_kind kind;
    float init_std;     /* init: normal(0, std) if > 0 */
    float init_uniform; /* init: uniform(-a, a) if > 0 */
    float init_const;   /* otherwise: constant */
    float *w, *g, *m, *v;
} rc_param;

/* An activation: per-image shape (C, H, W); the batch size is the graph's. */
typedef struct {
    char name[RC_NAME_MAX];
    int c, h, w;
    size_t off;   /* offset into the activation arena (floats) */
    size_t goff;  /* offset of the gradient in the arena; RC_NO_GRAD when no gradient is stored */
    float *x;     /* value, batch * c * h * w floats */
    float *dx;    /* gradient (same size), NULL when no gradient flows */
    int is_input;  /* the image batch */
    int is_output; /* a readout: its dx is written by the loss */
    int layout;    /* RC_LAYOUT_NCHW or RC_LAYOUT_BLK16 (ops.h), decided by the plan */
    int dead;      /* fused away by the plan: never materialised (x = dx = NULL) */
    float *ev;     /* its slot of one micro-batch in the eval pipeline's arena; NULL: x (graph_plan.c) */
    int keep;      /* read by the caller after forward (rc_graph_keep): never fused away, rematerialised,
                    * recomputed or put in the eval pipeline's arena; its memory is its own for the pass */
} rc_tensor;

/* Channel slots a tensor occupies in memory: C, or C rounded up to 16 in the blocked layout, whose last
 * block's lanes >= C are padding that every op keeps zero. */
static inline int rc_tensor_cslots(const rc_tensor *x) {
    return x->layout == RC_LAYOUT_BLK16 ? (x->c + 15) / 16 * 16 : x->c;
}
/* Floats per image in memory, padding included (elementwise ops run over it: zeros stay zeros). */
static inline size_t rc_tensor_floats(const rc_tensor *x) { return (size_t)rc_tensor_cslots(x) * x->h * x->w; }

typedef enum {
    RC_OP_CONV = 0,
    RC_OP_BATCHNORM,
    RC_OP_RELU,
    RC_OP_SIGMOID,
    RC_OP_TANH,
    RC_OP_ADD,
    RC_OP_MUL,
    RC_OP_CONCAT,
    RC_OP_SLICE,
    RC_OP_MAXPOOL,
    RC_OP_AVGPOOL,
    RC_OP_GAP,
    RC_OP_UPSAMPLE,
    RC_OP_LINEAR,
    RC_OP_LERP,  /* y = (1 - w) * a + w * b: in {w, a, b}, b optional (zero) */
    RC_OP_BNACT, /* fused by the plan: batch norm (+ residual add) (+ relu) */
    RC_OP_LSTM,  /* fused by the plan: (batch norm +) ConvLSTM gates, outputs h (out) and c (out2) */
    RC_OP_COUNT
} rc_op_type;

typedef struct {
    rc_op_type op;
    int in[RC_MAX_IN], nin; /* tensor indices */
    int out;                /* tensor index */
    int param[4];           /* param indices, -1 = absent: conv/linear {w, b}; bn {gamma, beta, run_mean, run_var} */
    int k, stride, pad;     /* conv kernel / pool window, stride, padding; slice: k = c0, stride = len */
    float eps, momentum;    /* batch norm */
    size_t save_off;        /* batch norm: offset of mean[C], rstd[C] in the save area */
    size_t sums_off;        /* fused batch norm: offset of its backward's gradient sums (2C + 1) in sums */
    int acc[RC_MAX_IN];     /* backward: 1 = accumulate into in[i]'s gradient, 0 = overwrite (planned) */
    int is_conv_layer;      /* counts toward effective depth */
    int step;               /* unroll step tag (rc_graph_set_step) for recomputation segments */
    /* exec nodes only (rc_graph.xnodes, made by the plan) */
    int out2;               /* second output (LSTM cell state), -1 = none */
    int relu, bn;           /* BNACT: relu after; LSTM: batch norm before the gates */
    int first, last;        /* the logical nodes [first, last] this exec node runs */
    int active;             /* backward runs: some gradient reaches an output */
    int dout_ok, dout2_ok;  /* the output's / out2's gradient is written before this node's backward */
    int replay;             /* recomputed before its segment's backward (train.recompute) */
    int remat;              /* output rematerialised just before its first backward use (RC_PLAN_REMAT) */
    int remat_head, remat_link; /* nodes to rematerialise before this node's backward: a list */
    int efuse;              /* CONV: the BNACT right after it that it runs itself in eval mode, -1 none */
    size_t fold_off;        /* CONV with efuse: its weights and bias with that batch norm folded in, in fold */
    int eabs;               /* BNACT: the CONV that runs it in eval mode (efuse), -1 none */
} rc_node;

/* A node whose batch-norm statistics come in phases (STATS, FINISH, APPLY): the fused batch norm, or a
 * ConvLSTM cell with its batch norm. */
static inline int rc_node_bn_phased(const rc_node *n) {
    return n->op == RC_OP_BNACT || (n->op == RC_OP_LSTM && n->bn);
}

/* The chunked schedule (graph_sched.c): entries (an exec node and a phase of it) grouped into waves; a
 * wave runs all its entries over one micro-batch, then the next micro-batch; a whole wave runs once over
 * the batch. Phases: ALL the node's forward or backward; STATS the batch-norm partial sums (forward:
 * statistics; backward: gradient sums); FINISH their reduction; APPLY the rest; REPLAY a
 * rematerialisation (forward with saved statistics) inside backward. */
enum { RC_PH_ALL = 0, RC_PH_STATS, RC_PH_FINISH, RC_PH_APPLY, RC_PH_REPLAY };
typedef struct {
    int node, phase;
} rc_entry;
typedef struct {
    int first, count, whole; /* entries [first, first + count) */
} rc_wave;
typedef struct {
    rc_entry *e;
    rc_wave *w;
    int ne, nw;
} rc_sched;

typedef struct {
    int batch;
    rc_param *params;
    int nparams, cap_params;
    rc_tensor *tensors;
    int ntensors, cap_tensors;
    rc_node *nodes;
    int nnodes, cap_nodes;
    int input; /* tensor index of the image batch */
    /* memory plan: one allocation per category */
    size_t param_floats, act_floats, save_floats;
    float *pw, *pg, *pm, *pv; /* params, grads, optimizer moments */
    float *act, *grad;        /* activations and their gradients */
    float *save;              /* per-node saved statistics (batch norm mean/rstd) */
    int planned;
    /* execution plan (rc_graph_plan): nodes after fusion, in run order; with fast ops and oneDNN,
     * activations stay blocked (nChw16c, the last block zero-padded when C % 16 != 0) between ops where
     * every op touching them allows it. Activations and gradients share one arena (act; grad is unused)
     * with offsets assigned by liveness. */
    rc_node *xnodes;
    int nxnodes;
    int fast;                 /* rc_ops_fast when planned */
    int cur_step;             /* builder: step tag stamped on new nodes */
    int recompute;            /* train.recompute K: keep every K-th step's state, recompute the rest (0 off) */
    int nseg, *seg_start;     /* recomputation segments of xnodes: [seg_start[s], seg_start[s+1]) */
    double *work;             /* batch-norm workspace (doubles) */
    double *sums;             /* per fused batch norm: gradient sums from its backward's reduction to its
                               * application, which other nodes' phases run between in the chunked schedule */
    size_t work_doubles;
    size_t act_floats_unshared; /* what the arena would be without liveness sharing (for reports) */
    int nchunk;               /* micro-batches of the chunked schedule; <= 1: off (whole batch, node by node) */
    int *chunk_b;             /* micro-batch j is images [chunk_b[j], chunk_b[j + 1]) */
    rc_sched fsched, bsched;  /* forward, backward (nchunk > 1) */
    float *fold;              /* eval pipeline: the convolutions' weights and biases with their batch norms
                               * folded in (fold_off), made once per pass */
    size_t fold_floats;
    float *eval_arena;        /* the eval pipeline's activations (one micro-batch each; NULL: no pipeline) */
    size_t eval_floats;
    int eval_on;              /* the eval pipeline is running: tensors with a slot (ev) live there */
} rc_graph;

/* Plan options (bits), read by rc_graph_plan; default all. FUSE and BLOCKED apply only with rc_ops_fast
 * (BLOCKED only with oneDNN); REMAT (with SHARE): the output of a batch norm + relu without residual is
 * not kept for backward but recomputed from its input right before backward needs it (one cheap pass,
 * a quarter of a residual cell's stored activations). Tests clear bits to compare paths; the environment
 * variable RECUR_PLAN=nofuse,noblocked,noshare,noremat,nochunk,noeval clears them too (for benchmarks).
 * CHUNK (fast only, not with train.recompute): run forward and backward in micro-batches (graph_sched.c).
 * EVAL (with CHUNK's micro-batches): inference runs each micro-batch through every node in an arena of
 * its own, batch norms folded into the convolutions before them (graph_plan.c make_eval_memory). */
enum { RC_PLAN_FUSE = 1, RC_PLAN_BLOCKED = 2, RC_PLAN_SHARE = 4, RC_PLAN_REMAT = 8, RC_PLAN_CHUNK = 16, RC_PLAN_EVAL = 32 };
extern int rc_plan_opts;
/* Micro-batches of the chunked schedule: 0 chooses (graph_sched.c); 1, 2, 4 or 8 forces (tests). Which
 * waves run in micro-batches: AUTO those where it pays (graph_sched.c), ALL every one that can, ALTERNATE
 * every other one (tests: mixed schedules on small models). */
extern int rc_sched_chunks;
enum { RC_SCHED_AUTO = 0, RC_SCHED_ALL = 1, RC_SCHED_ALTERNATE = 2 };
extern int rc_sched_waves;

/* Builder: tag the nodes emitted next with an unroll step (recomputation segments follow tags). */
void rc_graph_set_step(rc_graph *g, int step);
/* Before rc_graph_plan: keep the states of every K-th step and recompute the steps between in backward
 * (K <= 0: keep everything). Gradients equal the stored run's (the recomputation is bit-identical). */
void rc_graph_set_recompute(rc_graph *g, int k);
/* Copy tensor t's value (or its gradient when grad) into out as plain NCHW, whatever its layout. */
void rc_graph_read(const rc_graph *g, int t, int grad, float *out);
/* Internal (graph_plan.c, graph_exec.c): build xnodes, layouts and arena offsets; run one exec node. */
rc_status rc_graph_make_plan(rc_graph *g);
enum { RC_RUN_EVAL = 0, RC_RUN_TRAIN = 1, RC_RUN_REPLAY = 2 };
void rc_graph_exec_forward(rc_graph *g, int i, int mode);
void rc_graph_exec_backward(rc_graph *g, int i);
/* One phase of exec node i over images [b0, b1) (RC_PH_FINISH: the whole batch, b0 b1 ignored). */
void rc_graph_exec_forward_phase(rc_graph *g, int i, int mode, int phase, int b0, int b1);
void rc_graph_exec_backward_phase(rc_graph *g, int i, int phase, int b0, int b1);
/* Internal (graph_sched.c): build the chunked schedule after rematerialisation is planned (allow = 0:
 * off); the time map of the memory plan (lo[t], hi[t]: the span of the waves that run at time t). */
void rc_sched_make(rc_graph *g, int allow);
void rc_sched_free(rc_graph *g);
/* Waves of s that run in micro-batches. */
int rc_sched_chunked(const rc_sched *s);
void rc_sched_widen(const rc_graph *g, const int *B, const int *RM, int ntimes, int *lo, int *hi);
/* Fails (with the sizes and the limit in the message) when params + activations + other bytes exceed the
 * memory limit: RECUR_MAX_MEMORY_MB if set, else 3/4 of physical memory. Called before allocating. */
rc_status rc_graph_check_memory(const rc_graph *g, double param_bytes, double act_bytes, double other_bytes);

void rc_graph_init(rc_graph *g, int batch);
void rc_graph_free(rc_graph *g);

/* Builder. Returns the index. Param names must be unique; looking a name up again returns the same
 * param (that is how tied weights are shared). */
int rc_graph_param(rc_graph *g, const char *name, int ndim, const int *shape, rc_param_kind kind);
int rc_graph_find_param(const rc_graph *g, const char *name);
int rc_graph_tensor(rc_graph *g, const char *name, int c, int h, int w);
int rc_graph_node(rc_graph *g, const rc_node *proto); /* copies proto, creates nothing else */

/* Convenience emitters; each creates its output tensor and returns its index. */
int rc_emit_conv(rc_graph *g, const char *name, int x, int w_param, int b_param, int k_out, int r, int stride,
                 int pad);
int rc_emit_batchnorm(rc_graph *g, const char *name, int x, int gamma, int beta, int run_mean, int run_var);
int rc_emit_unary(rc_graph *g, rc_op_type op, const char *name, int x);
int rc_emit_binary(rc_graph *g, rc_op_type op, const char *name, int a, int b);
int rc_emit_concat(rc_graph *g, const char *name, int nin, const int *xs);
int rc_emit_slice(rc_graph *g, const char *name, int x, int c0, int len);
int rc_emit_pool(rc_graph *g, rc_op_type op, const char *name, int x, int k, int stride, int pad);
int rc_emit_gap(rc_graph *g, const char *name, int x);
int rc_emit_upsample(rc_graph *g, const char *name, int x, int ho, int wo);
int rc_emit_linear(rc_graph *g, const char *name, int x, int w_param, int b_param, int out);
/* y = (1 - w) * a + w * b elementwise; b = -1: zero, y = (1 - w) * a. */
int rc_emit_lerp(rc_graph *g, const char *name, int w, int a, int b);

/* Memory plan: allocates every category once and decides, for each node input, whether its backward
 * overwrites or accumulates the gradient. Returns RC_ERR (with message) if memory cannot be had. */
rc_status rc_graph_plan(rc_graph *g);
/* Initialise params from their init spec with the given seed (deterministic). */
void rc_graph_init_params(rc_graph *g, uint64_t seed);

/* Run every node. train=1: batch norm uses batch statistics and updates running stats. */
void rc_graph_forward(rc_graph *g, int train);
/* Zero param gradients (once per step, before backward). */
void rc_graph_zero_grads(rc_graph *g);
/* Mark a tensor as a graph output (a readout's logits): before rc_graph_backward the caller writes
 * the loss gradient into its dx (overwriting). Call before rc_graph_plan. */
void rc_graph_mark_output(rc_graph *g, int t);
/* Keep tensor t readable after a forward pass (rc_graph_read; recur features reads area states this way).
 * Call before rc_graph_plan. It changes no value, only where and how long the plan stores t. */
void rc_graph_keep(rc_graph *g, int t);
/* Backward from the gradients the caller wrote into the output tensors' dx. */
void rc_graph_backward(rc_graph *g);

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
const char *rc_op_name(rc_op_type op);

/* Forward FLOPs per image; number of trainable params; units (activation floats per image). */
double rc_graph_flops_per_image(const rc_graph *g);
/* Forward FLOPs per image of node i alone. */
double rc_graph_node_flops(const rc_graph *g, int i);
size_t rc_graph_trainable_params(const rc_graph *g);
/* Conv layers on the longest path from the input to tensor t. */
int rc_graph_depth_to(const rc_graph *g, int t);

#endif
