/* ponder.c — PonderNet halting: halting probabilities p_n from halting logits, the truncated geometric
 * prior, the loss sum_n p_n CE_n + beta KL(p || q) of one image with its gradients w.r.t. the CE terms and
 * the halting logits, and the halting step: deterministic (cumulative p >= 0.5) or sampled. */
#include "ponder.h"

#include <math.h>

/* log sigmoid(x) without overflow or log(0) for finite x */
static double log_sigmoid(double x) { return x >= 0 ? -log1p(exp(-x)) : x - log1p(exp(x)); }

void rc_ponder_log_prior(int T, double lambda_p, double *logq) {
    /* sum_{n<=T} lambda_p (1 - lambda_p)^(n-1) = 1 - (1 - lambda_p)^T */
    double lz = log1p(-pow(1.0 - lambda_p, T));
    for (int n = 1; n <= T; n++) logq[n - 1] = log(lambda_p) + (n - 1) * log1p(-lambda_p) - lz;
}

void rc_ponder_log_probs(int T, const double *s, double *logp) {
    double run = 0; /* sum_{j<n} log(1 - lambda_j) */
    for (int n = 1; n <= T; n++) {
        if (n == T) {
            logp[n - 1] = run; /* lambda_T = 1 */
            break;
        }
        logp[n - 1] = log_sigmoid(s[n - 1]) + run;
        run += log_sigmoid(-s[n - 1]);
    }
}

double rc_ponder_loss(int T, const double *ce, const double *s, double beta, const double *logq, double *p,
                      double *ds) {
    double logp[1024 + 1];
    double gp[1024 + 1]; /* dL/dp_n */
    if (T > 1024) T = 1024; /* RC_MAX_READOUTS; the model never has more readouts */
    rc_ponder_log_probs(T, s, logp);
    double L = 0;
    for (int n = 0; n < T; n++) {
        p[n] = exp(logp[n]);
        double kl = p[n] > 0 ? p[n] * (logp[n] - logq[n]) : 0.0;
        L += p[n] * ce[n] + beta * kl;
        gp[n] = ce[n] + beta * (logp[n] - logq[n] + 1.0);
    }
    if (!ds) return L;
    /* dp_n/ds_k = p_n (1 - lambda_k) for n = k, -p_n lambda_k for n > k, 0 for n < k (k < T):
     * dL/ds_k = (1 - lambda_k) p_k g_k - lambda_k sum_{n>k} p_n g_n */
    double tail = 0; /* sum_{n>k} p_n g_n */
    for (int k = T - 1; k >= 0; k--) {
        if (k == T - 1) {
            ds[k] = 0;
        } else {
            double lam = 1.0 / (1.0 + exp(-s[k]));
            ds[k] = (1.0 - lam) * p[k] * gp[k] - lam * tail;
        }
        tail += p[k] * gp[k];
    }
    return L;
}

int rc_ponder_halt_step(int T, const float *s, int stride) {
    double logrem = 0; /* log prod_{j<=n} (1 - lambda_j) = log(1 - sum_{j<=n} p_j) */
    for (int n = 1; n < T; n++) {
        logrem += log_sigmoid(-(double)s[(long)(n - 1) * stride]);
        if (logrem <= log(0.5)) return n;
    }
    return T;
}

int rc_ponder_halt_sample(int T, const float *s, int stride, double (*u01)(void *ctx), void *ctx) {
    for (int n = 1; n < T; n++) {
        double lam = 1.0 / (1.0 + exp(-(double)s[(long)(n - 1) * stride]));
        if (u01(ctx) < lam) return n;
    }
    return T;
}
