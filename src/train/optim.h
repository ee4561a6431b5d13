/* optim.h — optimizers (SGD with momentum/Nesterov, AdamW) with PyTorch's exact update rules, the
 * learning-rate schedule of docs/CONFIG.md, and gradient health checks (global norm, NaN/Inf).
 * Every routine is deterministic: the result does not depend on the number of OpenMP threads. */
#ifndef RC_OPTIM_H
#define RC_OPTIM_H

#include "core/graph.h"
#include "models/model.h"

/* One optimizer step over every trainable (non-BUFFER) param of g, reading p->g and updating p->w
 * and the state in p->m (SGD momentum buffer / AdamW first moment) and p->v (AdamW second moment).
 * lr: this step's learning rate (from rc_lr_at). t: 1-based step count (t = global_step + 1).
 * Weight decay applies to RC_PARAM_WEIGHT params only: added to the gradient (L2) for SGD,
 * decoupled (w *= 1 - lr*wd) for AdamW, as torch.optim.SGD / torch.optim.AdamW. Gradients are not
 * modified. The state must be zero before the first step (rc_graph_plan / rc_graph_init_params). */
void rc_optim_step(rc_graph *g, const rc_train_cfg *cfg, double lr, long t);

/* Number of warm-up steps: floor(warmup_epochs * steps_per_epoch), at most a quarter of the run's
 * epochs * steps_per_epoch steps (so that a run shortened to one epoch still reaches its learning rate). */
long rc_lr_warmup_steps(const rc_train_cfg *cfg, long steps_per_epoch);

/* Learning rate at 0-based step `step`, S = epochs * steps_per_epoch total steps, W warm-up steps:
 *   step < W:  lr * (step+1) / W
 *   constant:  lr
 *   cosine:    lr * 0.5 * (1 + cos(pi * (step-W) / (S-W)))   (progress clamped to [0, 1])
 *   step:      lr * gamma^floor(epoch / step_every), epoch = step / steps_per_epoch (0-based) */
double rc_lr_at(const rc_train_cfg *cfg, long step, long steps_per_epoch);

/* Global L2 norm of the gradients of all trainable params (double accumulation, fixed chunking). */
double rc_grad_norm(const rc_graph *g);

/* 1 if every gradient of every trainable param is finite, else 0. */
int rc_grads_finite(const rc_graph *g);

/* Index of the first trainable param (in graph order) with a NaN or Inf gradient, or -1 if none;
 * if elem is not NULL it receives the element offset of the first bad value. */
int rc_grads_first_nonfinite(const rc_graph *g, size_t *elem);

#endif
