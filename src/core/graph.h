/* graph.h — the static unrolled graph: params, tensors, nodes, the memory plan, forward and backward.
 * A model is built once per batch size by appending nodes; recurrence is reuse: a tied weight is one
 * param read by several nodes, and backward accumulates (+=) into its gradient. */
#ifndef RC_GRAPH_H
#define RC_GRAPH_H

#include "common.h"
#include "../ops/ops.h"

#define RC_NAME_MAX 64
#define RC_MAX_IN 8

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
    float *x;     /* value, batch * c * h * w floats */
    float *dx;    /* gradient (same size), NULL when no gradient flows */
    int is_input;  /* the image batch */
    int is_output; /* a readout: its dx is written by the loss */
} rc_tensor;

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
    int acc[RC_MAX_IN];     /* backward: 1 = accumulate into in[i]'s gradient, 0 = overwrite (planned) */
    int is_conv_layer;      /* counts toward effective depth */
} rc_node;

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
    size_t param_floats, act_floats, save_floats, scratch_floats;
    float *pw, *pg, *pm, *pv; /* params, grads, optimizer moments */
    float *act, *grad;        /* activations and their gradients */
    float *save;              /* per-node saved statistics (batch norm mean/rstd) */
    float *scratch;           /* op scratch (fast-path accumulation) */
    int planned;
} rc_graph;

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
/* Backward from the gradients the caller wrote into the output tensors' dx. */
void rc_graph_backward(rc_graph *g);

/* Per-op profile: when enabled, forward/backward accumulate wall time per op type (seconds) and
 * call counts. For `recur bench --profile`. */
typedef struct {
    int enabled;
    double fwd_s[RC_OP_COUNT], bwd_s[RC_OP_COUNT];
    long fwd_calls[RC_OP_COUNT], bwd_calls[RC_OP_COUNT];
    double fwd_flops[RC_OP_COUNT];
} rc_profile;
extern rc_profile rc_prof;
const char *rc_op_name(rc_op_type op);

/* Forward FLOPs per image; number of trainable params; units (activation floats per image). */
double rc_graph_flops_per_image(const rc_graph *g);
/* Forward FLOPs per image of node i alone. */
double rc_graph_node_flops(const rc_graph *g, int i);
size_t rc_graph_trainable_params(const rc_graph *g);
/* Conv layers on the longest path from the input to tensor t. */
int rc_graph_depth_to(const rc_graph *g, int t);

#endif
