/* model.h — model and training configuration structs, and the builder that turns a model config into
 * an unrolled graph (docs/CONFIG.md defines the semantics exactly), plus the scheduled loss. */
#ifndef RC_MODEL_H
#define RC_MODEL_H

#include "core/graph.h"

#define RC_MAX_AREAS 16
#define RC_MAX_ITERS 256
#define RC_MAX_READOUTS 1024

typedef enum { RC_CELL_CONV = 0, RC_CELL_RESIDUAL, RC_CELL_CONVLSTM, RC_CELL_GRU, RC_CELL_COUNT } rc_cell_kind;
typedef enum { RC_NORM_NONE = 0, RC_NORM_BATCH, RC_NORM_BATCH_PER_ITER } rc_norm_kind;
typedef enum {
    RC_LOSS_FINAL = 0,
    RC_LOSS_EVERY,
    RC_LOSS_INCREASING,
    RC_LOSS_COARSE_TO_FINE,
    RC_LOSS_PROGRESSIVE, /* Bansal et al. 2022: alpha on k steps from a detached state after n, 1 - alpha on the last */
    RC_LOSS_CURRICULUM   /* every at the first step, moving linearly to final over the run (step-dependent) */
} rc_loss_kind;
typedef enum { RC_READOUT_POOL = 0, RC_READOUT_DENSE } rc_readout_kind;
#define RC_MAX_HEAD_LAYERS 3
typedef enum { RC_UNROLL_SEQUENTIAL = 0, RC_UNROLL_LOCKSTEP } rc_unroll_kind;
typedef enum { RC_HALT_NONE = 0, RC_HALT_PONDER } rc_halt_kind; /* PonderNet (Banino et al. 2021): ponder.h */

typedef struct {
    char name[32];
    int channels, iterations, tied;
    rc_cell_kind cell;
    int kernel, stride;
    int bottomup_every, lateral, topdown;
    int groups;    /* the state-to-state convs (lateral, residual conv2) in this many groups; <= 1: dense */
    int pointwise; /* groups > 1: a 1x1 conv after each grouped conv (depthwise-separable) */
} rc_area_cfg;

typedef struct {
    char name[64];
    int in_c, in_h, in_w, classes;
    rc_unroll_kind unroll;
    rc_norm_kind norm;
    float bn_momentum, bn_eps;
    int bn_sync; /* data-parallel training: batch statistics over all ranks (src/dist) */
    int recompute; /* copied from train.recompute: keep every K-th step's state, recompute the rest (0 off) */
    int head_per_iter;
    rc_loss_kind loss;
    float alpha;                 /* loss = progressive: weight of the progressive term */
    rc_readout_kind readout;     /* pool: gap + linear (classes); dense: a conv head, logits per position */
    int head_nch, head_ch[RC_MAX_HEAD_LAYERS]; /* dense head: hidden conv widths */
    int recall;                  /* h(0) = relu(proj(x)) and the input enters every step (sequential) */
    rc_halt_kind halting;        /* ponder: a halting head per readout and the PonderNet loss */
    float ponder_beta, ponder_lambda; /* halting = ponder: KL weight and the geometric prior's lambda_p */
    int nareas;
    rc_area_cfg areas[RC_MAX_AREAS];
} rc_model_cfg;

typedef enum { RC_OPT_SGD = 0, RC_OPT_ADAMW } rc_opt_kind;
typedef enum { RC_SCHED_CONSTANT = 0, RC_SCHED_STEP, RC_SCHED_COSINE } rc_sched_kind;

typedef struct {
    char data[512];
    int epochs, batch, limit, val;
    int test_limit; /* evaluate on the first test_limit test images only (0: all) */
    rc_opt_kind optimizer;
    double lr, momentum, weight_decay, beta1, beta2, adam_eps;
    int nesterov;
    rc_sched_kind schedule;
    double warmup_epochs;
    int step_every;
    double step_gamma;
    int crop_pad, flip;
    uint64_t seed;
    int threads;
    int recompute; /* train.recompute (also copied into rc_model_cfg.recompute) */
} rc_train_cfg;

typedef struct {
    rc_model_cfg cfg;
    rc_graph g;
    int input;                       /* tensor index of the image batch */
    int nreadouts;                   /* R */
    int readout[RC_MAX_READOUTS];    /* logits tensor per readout t = 1..R (index t-1) */
    float w_fine[RC_MAX_READOUTS];   /* loss-schedule weights for the next step (rc_model_set_loss_weights) */
    float w_coarse[RC_MAX_READOUTS];
    int halt[RC_MAX_READOUTS];       /* halting = ponder: halting logit tensor (N x 1) per readout, else -1 */
    int *node_area;                  /* area index of each node (-1: readout head) */
    int area_out[RC_MAX_AREAS];      /* tensor of each area's final state */
    int area_h[RC_MAX_AREAS], area_w[RC_MAX_AREAS];
    int state[RC_MAX_ITERS + 1];     /* top area's state tensor after step t (t = 0: h(0), -1 if none) */
    int state_in;                    /* RC_BUILD_CONTINUE: the input state tensor, else -1 */
    int state_out;                   /* RC_BUILD_STATE_OUT: the final state, kept and plain; else -1 */
    int area_steps[RC_MAX_AREAS];    /* steps unrolled per area (T_k) */
    int *area_state[RC_MAX_AREAS];   /* tensor of area k's state h_k(t) after step t: area_state[k][t - 1] */
} rc_model;

/* rc_model_build_ex flags. CONTINUE: the graph continues an unroll from a given state: its steps are steps
 * 2.. of the model (no projection, no first-step-only input), h(0) is the input tensor state_in (no gradient
 * flows into it: the progressive loss's detached state). Single tied area, no per-iteration params, not
 * ConvLSTM. STATE_OUT: mark the top area's final state as a graph output (kept whole, plain layout). */
enum { RC_BUILD_CONTINUE = 1, RC_BUILD_STATE_OUT = 2 };

/* Validate a model config (ranges, combinations); the message names the area and key. */
rc_status rc_model_cfg_validate(const rc_model_cfg *cfg);

/* Build the unrolled graph for a batch size and plan its memory. iterations_override > 0 unrolls every
 * tied area that many steps (test-time depth; per-iteration params past the trained T reuse step T's);
 * it is an error for an untied area. Params are not initialised (call rc_graph_init_params). */
rc_status rc_model_build(const rc_model_cfg *cfg, int batch, int iterations_override, rc_model *m);
rc_status rc_model_build_ex(const rc_model_cfg *cfg, int batch, int iterations_override, int flags, rc_model *m);
/* rc_model_build, keeping the states h_k(t) of every area k with keep_area[k] != 0 readable after a forward
 * pass (rc_graph_read(&m->g, m->area_state[k][t - 1], 0, out); rc_graph_keep). keep_area may be NULL. */
rc_status rc_model_build_keep(const rc_model_cfg *cfg, int batch, int iterations_override, const int *keep_area,
                              rc_model *m);
void rc_model_free(rc_model *m);
/* Why cfg cannot be continued from a state (RC_BUILD_CONTINUE), as an error; RC_OK when it can. */
rc_status rc_model_can_continue(const rc_model_cfg *cfg);
/* Make dst read and write src's params (values, gradients, optimizer state) by name: every param of dst
 * must exist in src with the same shape. dst's own param memory is then unused. src must outlive dst. */
rc_status rc_model_share_params(rc_model *dst, const rc_model *src);

/* Scheduled loss over all readouts for the current forward pass; writes every readout's logits
 * gradient when want_grad. With model.halting = ponder the loss is PonderNet's (ponder.h) and the halting
 * logits' gradients are written too. coarse_of: class -> group map (needed by coarse-to-fine, else may be NULL).
 * ce_out (may be NULL): the unweighted fine cross-entropy of each readout. */
double rc_model_loss(rc_model *m, const int *labels, const int *coarse_of, double *ce_out, int want_grad);

/* The loss schedule (model.loss, docs/CONFIG.md) at training step `step` (the optimizer steps done before
 * it, 0-based) of a run of total_steps (>= 1): the weight of each of m's R readouts in w_fine[R] and, for
 * coarse-to-fine, of its coarse cross-entropy in w_coarse[R]. Only curriculum depends on the step. The
 * progressive loss's weights are drawn per step by the trainer; these are its fixed part (the last readout). */
void rc_model_loss_weights(const rc_model *m, long step, long total_steps, float *w_fine, float *w_coarse);
/* Set m->w_fine, m->w_coarse (what rc_model_loss uses) to the schedule at step of total_steps; the trainer
 * calls it before every step; rc_model_build sets step 0 of 1. */
void rc_model_set_loss_weights(rc_model *m, long step, long total_steps);

/* Dense readouts: per-position softmax cross-entropy of every readout, mean over the unmasked positions of
 * the batch, weighted by w[r] (NULL: the schedule's w_fine); writes every readout's logits gradient when
 * want_grad (zero for weight 0). targets, mask: batch x H x W (mask NULL: all positions). */
double rc_model_loss_dense(rc_model *m, const uint8_t *targets, const uint8_t *mask, const float *w, double *ce_out,
                           int want_grad);

/* Effective depth: conv layers on the longest path from the image to the last readout. */
int rc_model_effective_depth(const rc_model *m);
const char *rc_cell_name(rc_cell_kind c);

/* Read a parsed config (io/ini.h) into the structs, applying and recording defaults; rejects unknown
 * sections and keys and invalid combinations with FILE:LINE messages. default_name names the model when
 * [model] has no name (the config file's base name). */
struct rc_ini;
rc_status rc_config_read(struct rc_ini *ini, const char *default_name, rc_model_cfg *m, rc_train_cfg *t);

#endif
