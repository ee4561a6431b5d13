/* dist.h — data-parallel training across processes and hosts (MPI). Every rank holds the whole model,
 * reads its shard of each global batch, and all ranks sum their gradients in one all-reduce per step.
 * Built without MPI (or started without a launcher such as mpirun) everything here is a single-process
 * stub: rank 0 of 1, every reduction a no-op. */
#ifndef RC_DIST_H
#define RC_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "core/graph.h"
#include "train/eval.h"

/* Start MPI when the process was launched by mpirun/srun (Open MPI, PMI or PMIx environment); otherwise
 * stay single-process. Call once, first thing in main. */
rc_status rc_dist_init(int *argc, char ***argv);
/* Finalize MPI (no-op when not started). */
void rc_dist_finalize(void);
/* End every rank of the job with this exit code (MPI_Abort); returns only when not distributed. For the
 * CLI, when one rank fails while the others may be waiting in a collective. */
void rc_dist_abort(int code);

int rc_dist_rank(void);   /* 0 when single-process */
int rc_dist_size(void);   /* 1 when single-process */
int rc_dist_compiled(void); /* 1 if this build has MPI support */
int rc_dist_started(void);  /* 1 if MPI was started (launched by mpirun, even with one rank) */

/* Sum buf[0..n) over ranks, in place (doubles: exact for counts below 2^53). */
rc_status rc_dist_sum_f64(double *buf, size_t n);
/* Rank 0's bytes to every rank. */
rc_status rc_dist_bcast(void *buf, size_t bytes);

/* Average the parameter gradient block g->pg over ranks: one in-place all-reduce of the contiguous block,
 * then divide by the number of ranks (each rank's loss is a mean over its local batch). Also reports a
 * failure of a batch-norm statistics reduction made during this step's forward/backward. */
rc_status rc_dist_allreduce_grads(rc_graph *g);

/* Average the batch-norm running statistics (RC_PARAM_BUFFER params) over ranks, so every rank (and the
 * checkpoint) holds the same ones. Needed before evaluation and checkpoints when batch statistics are
 * per-rank; running averages are linear, so averaging now equals averaging every step. */
rc_status rc_dist_average_buffers(rc_graph *g);

/* Synchronised batch norm: on = 1 installs rc_bn_allreduce (ops.h) so training-mode batch norm uses
 * statistics over the global batch; on = 0 removes it. No-op when single-process. */
void rc_dist_bn_sync(int on);

/* Debug check (env RECUR_DIST_CHECK=K, K >= 1): every K steps, hash the params and optimizer state (and
 * the running statistics when with_buffers) and compare across ranks; on a mismatch, fail with the
 * first param that differs. Returns RC_OK when disabled, single-process, or consistent. */
rc_status rc_dist_check_params(rc_graph *g, long step, int with_buffers);
/* 64-bit FNV-1a hash of the params (and their optimizer state) of g; buffers only when with_buffers. */
uint64_t rc_dist_param_hash(const rc_graph *g, int with_buffers);

/* Time spent in communication so far (for the end-of-run report): gradient all-reduces (seconds, calls)
 * and synchronised batch-norm reductions (seconds, calls). Any pointer may be NULL. */
void rc_dist_comm_stats(double *grad_s, long *grad_calls, double *bn_s, long *bn_calls);

/* Evaluate d split over ranks: rank r takes images [r*n/N, (r+1)*n/N), then counts and loss sums are
 * reduced so every rank returns the result for the whole of d. */
rc_status rc_dist_evaluate(rc_model *m, const rc_dataset *d, double exit_threshold, rc_eval_result *r);

#endif
