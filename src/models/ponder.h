/* ponder.h — PonderNet halting (Banino et al. 2021): halting distribution from per-step halting logits,
 * the truncated geometric prior, the per-image loss sum_n p_n CE_n + beta KL(p || q) with its gradients,
 * and the deterministic halting step used at evaluation. docs/CONFIG.md gives the formulas. */
#ifndef RC_PONDER_H
#define RC_PONDER_H

/* log q_n, n = 1..T (logq[n - 1]): geometric prior q_n ∝ lambda_p (1 - lambda_p)^(n-1), truncated at T and
 * renormalised. 0 < lambda_p < 1. */
void rc_ponder_log_prior(int T, double lambda_p, double *logq);

/* log p_n, n = 1..T, from halting logits s (lambda_n = sigmoid(s_n), lambda_T = 1: s[T-1] unused):
 * log p_n = log lambda_n + sum_{j<n} log(1 - lambda_j), computed in log space (no underflow to -inf). */
void rc_ponder_log_probs(int T, const double *s, double *logp);

/* One image's loss L = sum_n p_n ce_n + beta sum_n p_n (log p_n - logq_n), T >= 1. Writes p[n] (the weight
 * of ce_n in L, = dL/dce_n) and, when ds is not NULL, ds[n] = dL/ds_n (ds[T-1] = 0). */
double rc_ponder_loss(int T, const double *ce, const double *s, double beta, const double *logq, double *p,
                      double *ds);

/* Deterministic halting: the first step n (1-based) whose cumulative halting probability sum_{j<=n} p_j
 * reaches 0.5, i.e. prod_{j<=n} (1 - lambda_j) <= 0.5; T when none before. */
int rc_ponder_halt_step(int T, const float *s, int stride);

/* Sampled halting (PonderNet's inference rule): at step n < T halt with probability lambda_n, else go on;
 * the step is then distributed as p. u01 draws uniforms in [0, 1) from ctx. */
int rc_ponder_halt_sample(int T, const float *s, int stride, double (*u01)(void *ctx), void *ctx);

#endif
