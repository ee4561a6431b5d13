/* optim.c — SGD (momentum, Nesterov, L2 weight decay) and AdamW (decoupled weight decay) updates with
 * torch.optim's exact formulas, the warm-up + constant/step/cosine learning-rate schedule, and
 * deterministic gradient norm / finiteness checks. Updates are elementwise, so OpenMP never changes
 * the numbers; reductions use a fixed blocking that does not depend on the thread count. */
#include "train/optim.h"

#include <math.h>

/* Below this many trainable floats in total the step runs on one thread. */
#define RC_OPTIM_PAR_MIN 32768
/* Params at least this large are reduced in RC_REDUCE_BLOCKS fixed blocks in parallel. */
#define RC_REDUCE_PAR_MIN 65536
#define RC_REDUCE_BLOCKS 64
#define RC_PI 3.14159265358979323846

static int rc_trainable(const rc_param *p) { return p->kind != RC_PARAM_BUFFER; }

/* SGD for one param: elements [0, n). */
static void rc_sgd_param(rc_param *p, double lr, double mom, double wd, int nesterov, long t) {
    const long n = (long)p->numel;
    float *w = p->w, *m = p->m;
    const float *gr = p->g;
    const int decay = p->kind == RC_PARAM_WEIGHT && wd != 0.0;
#pragma omp for schedule(static) nowait
    for (long i = 0; i < n; i++) {
        double d = (double)gr[i];
        if (decay) d += wd * (double)w[i];
        if (mom != 0.0) {
            /* torch: first step buf = d; later buf = momentum * buf + d (dampening 0) */
            float buf = (t <= 1) ? (float)d : (float)(mom * (double)m[i] + d);
            m[i] = buf;
            d = nesterov ? d + mom * (double)buf : (double)buf;
        }
        w[i] = (float)((double)w[i] - lr * d);
    }
}

/* AdamW for one param. c1 = lr / (1 - b1^t), c2 = sqrt(1 - b2^t). */
static void rc_adamw_param(rc_param *p, double lr, double wd, double b1, double b2, double eps, double c1,
                           double c2) {
    const long n = (long)p->numel;
    float *w = p->w, *m = p->m, *v = p->v;
    const float *gr = p->g;
    const double shrink = (p->kind == RC_PARAM_WEIGHT) ? 1.0 - lr * wd : 1.0;
#pragma omp for schedule(static) nowait
    for (long i = 0; i < n; i++) {
        double gi = (double)gr[i];
        double wi = (double)w[i] * shrink;
        float mi = (float)(b1 * (double)m[i] + (1.0 - b1) * gi);
        float vi = (float)(b2 * (double)v[i] + (1.0 - b2) * gi * gi);
        m[i] = mi;
        v[i] = vi;
        double denom = sqrt((double)vi) / c2 + eps;
        w[i] = (float)(wi - c1 * (double)mi / denom);
    }
}

void rc_optim_step(rc_graph *g, const rc_train_cfg *cfg, double lr, long t) {
    RC_ASSERT(g && cfg && t >= 1);
    size_t total = 0;
    for (int i = 0; i < g->nparams; i++) {
        rc_param *p = &g->params[i];
        if (!rc_trainable(p)) continue;
        RC_ASSERT(p->w && p->g && p->m && (cfg->optimizer != RC_OPT_ADAMW || p->v));
        total += p->numel;
    }
    const double wd = cfg->weight_decay;
    if (cfg->optimizer == RC_OPT_SGD) {
        const double mom = cfg->momentum;
        const int nesterov = cfg->nesterov && mom != 0.0;
#pragma omp parallel if (total >= RC_OPTIM_PAR_MIN)
        for (int i = 0; i < g->nparams; i++)
            if (rc_trainable(&g->params[i])) rc_sgd_param(&g->params[i], lr, mom, wd, nesterov, t);
    } else {
        RC_ASSERT(cfg->optimizer == RC_OPT_ADAMW);
        const double b1 = cfg->beta1, b2 = cfg->beta2, eps = cfg->adam_eps;
        const double c1 = lr / (1.0 - pow(b1, (double)t));
        const double c2 = sqrt(1.0 - pow(b2, (double)t));
#pragma omp parallel if (total >= RC_OPTIM_PAR_MIN)
        for (int i = 0; i < g->nparams; i++)
            if (rc_trainable(&g->params[i])) rc_adamw_param(&g->params[i], lr, wd, b1, b2, eps, c1, c2);
    }
}

long rc_lr_warmup_steps(const rc_train_cfg *cfg, long steps_per_epoch) {
    RC_ASSERT(cfg && steps_per_epoch >= 1);
    if (!(cfg->warmup_epochs > 0.0)) return 0;
    long w = (long)floor(cfg->warmup_epochs * (double)steps_per_epoch);
    long cap = (long)cfg->epochs * steps_per_epoch / 4; /* a short run still spends 3/4 of it at the full rate */
    return w < cap ? w : cap;
}

double rc_lr_at(const rc_train_cfg *cfg, long step, long steps_per_epoch) {
    RC_ASSERT(cfg && steps_per_epoch >= 1 && step >= 0);
    const double lr = cfg->lr;
    const long W = rc_lr_warmup_steps(cfg, steps_per_epoch);
    const long S = (long)cfg->epochs * steps_per_epoch;
    if (step < W) return lr * (double)(step + 1) / (double)W;
    switch (cfg->schedule) {
    case RC_SCHED_CONSTANT:
        return lr;
    case RC_SCHED_STEP: {
        if (cfg->step_every <= 0) return lr;
        long epoch = step / steps_per_epoch;
        return lr * pow(cfg->step_gamma, (double)(epoch / cfg->step_every));
    }
    case RC_SCHED_COSINE: {
        double progress = (S > W) ? (double)(step - W) / (double)(S - W) : 1.0;
        if (progress > 1.0) progress = 1.0;
        return lr * 0.5 * (1.0 + cos(RC_PI * progress));
    }
    }
    RC_ASSERT(!"unknown learning-rate schedule");
    return lr;
}

/* Sum of squares of x[0..n) in double; the blocking depends only on n, never on the thread count. */
static double rc_sumsq(const float *x, size_t n) {
    if (n < RC_REDUCE_PAR_MIN) {
        double s = 0.0;
        for (size_t i = 0; i < n; i++) s += (double)x[i] * (double)x[i];
        return s;
    }
    double part[RC_REDUCE_BLOCKS];
#pragma omp parallel for schedule(static)
    for (int b = 0; b < RC_REDUCE_BLOCKS; b++) {
        size_t lo = n / RC_REDUCE_BLOCKS * (size_t)b + RC_MIN((size_t)b, n % RC_REDUCE_BLOCKS);
        size_t hi = lo + n / RC_REDUCE_BLOCKS + ((size_t)b < n % RC_REDUCE_BLOCKS ? 1 : 0);
        double s = 0.0;
        for (size_t i = lo; i < hi; i++) s += (double)x[i] * (double)x[i];
        part[b] = s;
    }
    double s = 0.0;
    for (int b = 0; b < RC_REDUCE_BLOCKS; b++) s += part[b];
    return s;
}

double rc_grad_norm(const rc_graph *g) {
    RC_ASSERT(g);
    double s = 0.0;
    for (int i = 0; i < g->nparams; i++) {
        const rc_param *p = &g->params[i];
        if (!rc_trainable(p)) continue;
        RC_ASSERT(p->g || p->numel == 0);
        s += rc_sumsq(p->g, p->numel);
    }
    return sqrt(s);
}

/* The squares of floats cannot overflow a double, and NaN/Inf propagate through the sum, so the
 * norm is finite exactly when every gradient is. */
int rc_grads_finite(const rc_graph *g) { return isfinite(rc_grad_norm(g)) ? 1 : 0; }

int rc_grads_first_nonfinite(const rc_graph *g, size_t *elem) {
    RC_ASSERT(g);
    for (int i = 0; i < g->nparams; i++) {
        const rc_param *p = &g->params[i];
        if (!rc_trainable(p)) continue;
        for (size_t j = 0; j < p->numel; j++) {
            if (!isfinite(p->g[j])) {
                if (elem) *elem = j;
                return i;
            }
        }
    }
    return -1;
}
