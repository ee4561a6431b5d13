/* eval.c — evaluation over a dataset: per-readout fine and coarse top-1 accuracy, mean loss, and
 * confidence-based early exit. Coarse prediction = the group with the largest summed probability. */
#include "eval.h"

#include <math.h>
#include <string.h>

#include "base/rng.h"
#include "models/ponder.h"
#include "ops/ops.h"

void rc_model_readout_flops(const rc_model *m, double *out) {
    /* cumulative cost of the nodes each readout depends on: mark ancestors of each readout */
    const rc_graph *g = &m->g;
    char *need = rc_xcalloc((size_t)g->ntensors, 1);
    double *node_flops = rc_xcalloc((size_t)g->nnodes, sizeof(double));
    for (int i = 0; i < g->nnodes; i++) node_flops[i] = rc_graph_node_flops(g, i);
    for (int r = 0; r < m->nreadouts; r++) {
        memset(need, 0, (size_t)g->ntensors);
        need[m->readout[r]] = 1;
        for (int j = 0; j <= r; j++)
            if (m->halt[j] >= 0) need[m->halt[j]] = 1;
        double f = 0;
        for (int i = g->nnodes - 1; i >= 0; i--) {
            const rc_node *n = &g->nodes[i];
            if (!need[n->out]) continue;
            f += node_flops[i];
            for (int j = 0; j < n->nin; j++) need[n->in[j]] = 1;
        }
        out[r] = f;
    }
    free(need);
    free(node_flops);
}

double rc_eval_accuracy(const rc_eval_result *r, int t) { return r->n ? (double)r->correct[t] / (double)r->n : 0; }
double rc_eval_position_accuracy(const rc_eval_result *r, int t) {
    return r->positions ? (double)r->pos_correct[t] / (double)r->positions : 0;
}

void rc_eval_dense_score(int n, int k, int hw, const float *logits, const uint8_t *tgt, const uint8_t *mask,
                         long *solved, long *right, long *kept) {
    for (int b = 0; b < n; b++) {
        const float *z = logits + (size_t)b * k * hw;
        long ok = 0, cnt = 0;
        for (int p = 0; p < hw; p++) {
            size_t i = (size_t)b * hw + p;
            if (mask && !mask[i]) continue;
            int arg = 0;
            for (int j = 1; j < k; j++)
                if (z[(size_t)j * hw + p] > z[(size_t)arg * hw + p]) arg = j;
            ok += arg == tgt[i];
            cnt++;
        }
        *solved += ok == cnt;
        *right += ok;
        *kept += cnt;
    }
}

/* Dense readouts: images solved and positions right at every readout, mean loss over kept positions. */
static rc_status evaluate_dense(rc_model *m, const rc_dataset *d, long lo, long hi, const rc_eval_sink *sink,
                                rc_eval_result *r) {
    rc_graph *g = &m->g;
    int B = g->batch, R = m->nreadouts;
    if (!d->dense) return rc_fail("model.readout = dense needs a dataset with a target per position, not %s", d->spec);
    size_t hw = (size_t)d->h * d->w;
    int *idx = rc_xmalloc((size_t)B * sizeof(int));
    int *y = rc_xmalloc((size_t)B * sizeof(int));
    uint8_t *tgt = rc_xmalloc((size_t)B * hw), *mask = rc_xmalloc((size_t)B * hw);
    rc_status st = RC_OK;
    for (long start = lo; start < hi; start += B) {
        int nb = (int)RC_MIN((long)B, hi - start);
        for (int i = 0; i < B; i++) idx[i] = (int)(start + (i < nb ? i : 0));
        rc_dataset_batch(d, idx, B, NULL, NULL, g->tensors[m->input].x, y);
        rc_dataset_batch_targets(d, idx, B, tgt, mask);
        rc_graph_forward(g, 0);
        if (sink && sink->fn(sink->ctx, m, start, nb, y)) {
            st = RC_ERR;
            break;
        }
        long kept = 0;
        for (int t = 0; t < R; t++) {
            const rc_tensor *lt = &g->tensors[m->readout[t]];
            long k0 = 0;
            rc_eval_dense_score(nb, lt->c, (int)hw, lt->x, tgt, mask, &r->correct[t], &r->pos_correct[t], &k0);
            kept = k0;
            r->loss[t] += rc_xent_dense_forward_backward(nb, lt->c, (int)hw, lt->x, tgt, mask, 1.0f, NULL, 0) * k0;
        }
        r->positions += kept;
        r->n += nb;
    }
    for (int t = 0; t < R; t++) r->loss[t] /= (double)(r->positions ? r->positions : 1);
    free(idx);
    free(y);
    free(tgt);
    free(mask);
    return st;
}

double rc_eval_coarse_accuracy(const rc_eval_result *r, int t) {
    return r->n ? (double)r->coarse_correct[t] / (double)r->n : 0;
}

rc_status rc_evaluate(rc_model *m, const rc_dataset *d, double exit_threshold, rc_eval_result *r) {
    return rc_evaluate_range(m, d, 0, d->n, exit_threshold, r);
}

rc_status rc_evaluate_range(rc_model *m, const rc_dataset *d, long lo, long hi, double exit_threshold,
                            rc_eval_result *r) {
    return rc_evaluate_sink(m, d, lo, hi, exit_threshold, NULL, r);
}

rc_status rc_evaluate_sink(rc_model *m, const rc_dataset *d, long lo, long hi, double exit_threshold,
                           const rc_eval_sink *sink, rc_eval_result *r) {
    return rc_evaluate_halt(m, d, lo, hi, exit_threshold, 0, sink, r);
}

static double rng_u01(void *ctx) { return (double)rc_rng_uniform(ctx); }

rc_status rc_evaluate_halt(rc_model *m, const rc_dataset *d, long lo, long hi, double exit_threshold,
                           int halt_ponder, const rc_eval_sink *sink, rc_eval_result *r) {
    RC_ASSERT(0 <= lo && lo <= hi && hi <= d->n);
    rc_graph *g = &m->g;
    int B = g->batch, K = m->cfg.classes, R = m->nreadouts;
    memset(r, 0, sizeof *r);
    r->nreadouts = R;
    r->exit_threshold = exit_threshold;
    r->halt_ponder = halt_ponder;
    if (halt_ponder && m->cfg.halting != RC_HALT_PONDER)
        return rc_fail("halting by ponder needs a model trained with model.halting = ponder (this one has none)");
    if (rc_dataset_check_shape(d, m->cfg.in_c, m->cfg.in_h, m->cfg.in_w, -1)) return RC_ERR;
    if (m->cfg.readout == RC_READOUT_DENSE) {
        if (exit_threshold > 0) return rc_fail("early exit is for pooled readouts, not model.readout = dense");
        r->dense = 1;
        return evaluate_dense(m, d, lo, hi, sink, r);
    }
    if (d->dense) return rc_fail("dataset %s has a target per position: it needs model.readout = dense", d->spec);
    if (d->classes > K)
        return rc_fail("dataset %s has %d classes, the model has %d", d->spec, d->classes, K);
    int ncoarse = d->coarse_of ? d->ncoarse : 0;
    r->has_coarse = ncoarse > 0;
    int *idx = rc_xmalloc((size_t)B * sizeof(int));
    int *y = rc_xmalloc((size_t)B * sizeof(int));
    double *prob = rc_xmalloc((size_t)K * sizeof(double));
    double *gp = rc_xmalloc((size_t)(ncoarse > 0 ? ncoarse : 1) * sizeof(double));
    int *exited = rc_xmalloc((size_t)B * sizeof(int));
    double *rflops = rc_xmalloc((size_t)R * sizeof(double));
    rc_model_readout_flops(m, rflops);
    double exit_sum = 0, exit_flops = 0, halt_sum = 0, halt_flops = 0;
    float *hs = rc_xmalloc((size_t)R * sizeof(float));
    rc_status st = RC_OK;
    float *x = g->tensors[m->input].x;
    for (long start = lo; start < hi; start += B) {
        int nb = (int)RC_MIN((long)B, hi - start);
        for (int i = 0; i < B; i++) idx[i] = (int)(start + (i < nb ? i : 0)); /* pad with a valid image */
        rc_dataset_batch(d, idx, B, NULL, NULL, x, y);
        rc_graph_forward(g, 0);
        if (sink && sink->fn(sink->ctx, m, start, nb, y)) {
            st = RC_ERR;
            break;
        }
        for (int i = 0; i < nb; i++) exited[i] = -1;
        for (int i = 0; i < nb && halt_ponder; i++) {
            for (int t = 0; t < R; t++) hs[t] = g->tensors[m->halt[t]].x[i];
            int n;
            if (halt_ponder == 2) {
                rc_rng rng;
                rc_rng_seed(&rng, 0x5eedU + (uint64_t)(start + i) * 0x9E3779B97F4A7C15ULL);
                n = rc_ponder_halt_sample(R, hs, 1, rng_u01, &rng);
            } else {
                n = rc_ponder_halt_step(R, hs, 1);
            }
            const float *l = g->tensors[m->readout[n - 1]].x + (size_t)i * K;
            int arg = 0;
            for (int j = 1; j < K; j++)
                if (l[j] > l[arg]) arg = j;
            r->halt_correct += arg == y[i];
            r->halt_hist[n - 1]++;
            halt_sum += n;
            halt_flops += rflops[n - 1];
        }
        for (int t = 0; t < R; t++) {
            const float *lg = g->tensors[m->readout[t]].x;
            for (int i = 0; i < nb; i++) {
                const float *l = lg + (size_t)i * K;
                double mx = l[0];
                int arg = 0;
                for (int j = 1; j < K; j++)
                    if (l[j] > mx) mx = l[j], arg = j;
                double s = 0;
                for (int j = 0; j < K; j++) s += (prob[j] = exp((double)l[j] - mx));
                for (int j = 0; j < K; j++) prob[j] /= s;
                int lab = y[i];
                if (arg == lab) r->correct[t]++;
                r->loss[t] += -log(prob[lab] > 1e-300 ? prob[lab] : 1e-300);
                if (ncoarse > 0) {
                    for (int c = 0; c < ncoarse; c++) gp[c] = 0;
                    for (int j = 0; j < K && j < d->classes; j++)
                        if (d->coarse_of[j] >= 0) gp[d->coarse_of[j]] += prob[j];
                    int ca = 0;
                    for (int c = 1; c < ncoarse; c++)
                        if (gp[c] > gp[ca]) ca = c;
                    if (ca == d->coarse_of[lab]) r->coarse_correct[t]++;
                }
                if (exit_threshold > 0 && exited[i] < 0 && (prob[arg] >= exit_threshold || t == R - 1)) {
                    exited[i] = t;
                    if (arg == lab) r->exit_correct++;
                    exit_sum += t + 1;
                    exit_flops += rflops[t];
                }
            }
        }
        r->n += nb;
    }
    for (int t = 0; t < R; t++) r->loss[t] /= (double)(r->n ? r->n : 1);
    if (exit_threshold > 0 && r->n) {
        r->exit_mean_readouts = exit_sum / (double)r->n;
        r->exit_mean_flops = exit_flops / (double)r->n;
    }
    if (halt_ponder && r->n) {
        r->halt_mean_readouts = halt_sum / (double)r->n;
        r->halt_mean_flops = halt_flops / (double)r->n;
    }
    free(hs);
    free(idx);
    free(y);
    free(prob);
    free(gp);
    free(exited);
    free(rflops);
    return st;
}
