/* graph_build.h — building the static unrolled graph: params, tensors, the builder's nodes (one op applied
 * once) and their emitters, FLOPs, params and depth counting. A model is built once per batch size by
 * appending nodes; recurrence is reuse: a tied weight is one param read by several nodes. The graph also
 * holds what the plan (graph_plan.h) and the execution (graph_exec.h) make of it; they sit above. */
#ifndef RC_GRAPH_BUILD_H
#define RC_GRAPH_BUILD_H

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
    RC_OP_LERP,  /* y = (1 - w) * a + w * b: in {w, a, b}, b optional (zero); a GRU's update */
    RC_OP_BNACT, /* fused by the plan: batch norm (+ residual add) (+ relu) */
    RC_OP_LSTM,  /* fused by the plan: (batch norm +) ConvLSTM gates, outputs h (out) and c (out2) */
    RC_OP_UPADD, /* fused by the plan: y = r + upsample(z), in {z, r} (a top-down term added in) */
    RC_OP_GRU,   /* fused by the plan: GRU gates, in {[x], [u, h_prev]} as k's bits 1 (x) and 2 (u) say */
    RC_OP_COUNT
} rc_op_type;

/* A builder's node: one op applied once (made by rc_emit_*). */
typedef struct {
    rc_op_type op;
    int in[RC_MAX_IN], nin; /* tensor indices */
    int out;                /* tensor index */
    int param[4];           /* param indices, -1 = absent: conv/linear {w, b}; bn {gamma, beta, run_mean, run_var} */
    int k, stride, pad;     /* conv kernel / pool window, stride, padding; slice: k = c0, stride = len */
    int groups;             /* conv: channel groups (weights (K, C/groups, r, r)); 1 = dense */
    float eps, momentum;    /* batch norm */
    int is_conv_layer;      /* counts toward effective depth */
    int step;               /* unroll step tag (rc_graph_set_step) for recomputation segments */
} rc_node;

/* The chunked schedule (made by the plan, graph_sched.c; stored in the graph): entries (an exec node and a
 * phase of it) grouped into waves; a wave runs all its entries over one micro-batch, then the next
 * micro-batch; a whole wave runs once over the batch. Phases: ALL the node's forward or backward; STATS the batch-norm partial sums (forward:
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

/* The graph: what the builder appends (params, tensors, nodes), then what the plan and the execution
 * make of it (graph_plan.h, graph_exec.h), which only they write. */
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
    struct rc_xnode *xnodes;  /* (graph_plan.h) */
    int nxnodes;
    int fast;                 /* rc_ops_fast when planned */
    int cur_step;             /* builder: step tag stamped on new nodes */
    int recompute;            /* train.recompute K: keep every K-th step's state, recompute the rest (0 off) */
    int nseg, *seg_start;     /* recomputation segments of xnodes: [seg_start[s], seg_start[s+1]) */
    double *work;             /* batch-norm workspace (doubles) */
    double *sums;             /* per fused batch norm: gradient sums from its backward's reduction to its
                               * application, which other nodes' phases run between in the chunked schedule */
    size_t work_doubles;
    double *bnpre;            /* per batch norm whose statistics a convolution sums (pre_off): its chunks'
                               * partial sums, from that convolution to the batch norm */
    double *isum;             /* that convolution's per-image sums (transient: batch x 2C, the largest C) */
    size_t bnpre_doubles, isum_doubles;
    size_t act_floats_unshared; /* what the arena would be without liveness sharing (for reports) */
    int nchunk;               /* micro-batches of the chunked schedule; <= 1: off (whole batch, node by node) */
    int *chunk_b;             /* micro-batch j is images [chunk_b[j], chunk_b[j + 1]) */
    rc_sched fsched, bsched;  /* forward, backward (nchunk > 1) */
    float *fold;              /* eval pipeline: the convolutions' weights and biases with their batch norms
                               * folded in (fold_off), made once per pass */
    size_t fold_floats;
    float *eval_arena;        /* the eval pipeline's activations (one micro-batch each; NULL: no pipeline),
                               * in a gap of act when one holds them (eval_shared), else its own */
    int eval_shared;
    size_t eval_floats;
    int eval_on;              /* the eval pipeline is running: tensors with a slot (ev) live there */
    int eval_base;            /* micro-batches chosen before the per-wave choice (graph_sched.c), for the eval pipeline */
    int eval_nchunk;          /* the eval pipeline's micro-batches (graph_plan.c eval_chunks) */
} rc_graph;

void rc_graph_init(rc_graph *g, int batch);
/* Builder: tag the nodes emitted next with an unroll step (recomputation segments follow tags). */
void rc_graph_set_step(rc_graph *g, int step);
/* Before rc_graph_plan: keep the states of every K-th step and recompute the steps between in backward
 * (K <= 0: keep everything). Gradients equal the stored run's (the recomputation is bit-identical). */
void rc_graph_set_recompute(rc_graph *g, int k);

/* Builder. Returns the index. Param names must be unique; looking a name up again returns the same
 * param (that is how tied weights are shared). */
int rc_graph_param(rc_graph *g, const char *name, int ndim, const int *shape, rc_param_kind kind);
int rc_graph_find_param(const rc_graph *g, const char *name);
int rc_graph_tensor(rc_graph *g, const char *name, int c, int h, int w);
int rc_graph_node(rc_graph *g, const rc_node *proto); /* copies proto, creates nothing else */

/* Convenience emitters; each creates its output tensor and returns its index. */
int rc_emit_conv(rc_graph *g, const char *name, int x, int w_param, int b_param, int k_out, int r, int stride,
                 int pad);
/* The same in groups: w_param (k_out, C/groups, r, r), groups dividing C and k_out (PyTorch's Conv2d groups). */
int rc_emit_conv_grouped(rc_graph *g, const char *name, int x, int w_param, int b_param, int k_out, int r,
                         int stride, int pad, int groups);
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

/* Mark a tensor as a graph output (a readout's logits): before rc_graph_backward the caller writes
 * the loss gradient into its dx (overwriting). Call before rc_graph_plan. */
void rc_graph_mark_output(rc_graph *g, int t);
/* Keep tensor t readable after a forward pass (rc_graph_read; recur features reads area states this way).
 * Call before rc_graph_plan. It changes no value, only where and how long the plan stores t. */
void rc_graph_keep(rc_graph *g, int t);

const char *rc_op_name(rc_op_type op);
/* Forward FLOPs per image; number of trainable params; units (activation floats per image). */
double rc_graph_flops_per_image(const rc_graph *g);
/* Forward FLOPs per image of node i alone. */
double rc_graph_node_flops(const rc_graph *g, int i);
size_t rc_graph_trainable_params(const rc_graph *g);
/* Conv layers on the longest path from the input to tensor t. */
int rc_graph_depth_to(const rc_graph *g, int t);

#endif
