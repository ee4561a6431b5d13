/* eval_steps.c — evaluation of a continuable model (one tied area, docs/CONFIG.md) for any number of
 * iterations in the memory of two steps: a two-step graph runs steps 1 and 2 (together they read every
 * param, whatever reaches only the first step or only later ones), a one-step continuation graph (same
 * params) then runs every later step from the state the previous one left, copied back into its input. */
#include <math.h>
#include <string.h>

#include "eval.h"
#include "io/checkpoint.h"
#include "ops/ops.h"

/* Readout j of model m for images [0, nb) into r's counters at iteration t. */
static void score(const rc_model *m, int j, int t, int nb, const int *y, const uint8_t *tgt, const uint8_t *mask,
                  rc_eval_result *r, long *kept) {
    const rc_tensor *lt = &m->g.tensors[m->readout[j]];
    if (m->cfg.readout == RC_READOUT_DENSE) {
        long k0 = 0;
        rc_eval_dense_score(nb, lt->c, lt->h * lt->w, lt->x, tgt, mask, &r->correct[t], &r->pos_correct[t], &k0);
        r->loss[t] += rc_xent_dense_forward_backward(nb, lt->c, lt->h * lt->w, lt->x, tgt, mask, 1.0f, NULL, 0) * k0;
        *kept = k0;
        return;
    }
    int K = lt->c;
    for (int i = 0; i < nb; i++) {
        const float *l = lt->x + (size_t)i * K;
        int arg = 0;
        double mx = l[0], s = 0;
        for (int j = 1; j < K; j++)
            if (l[j] > mx) mx = l[j], arg = j;
        for (int j = 0; j < K; j++) s += exp((double)l[j] - mx);
        r->correct[t] += arg == y[i];
        r->loss[t] += mx + log(s) - l[y[i]];
    }
}

rc_status rc_evaluate_stepwise(const rc_model_cfg *mc, const char *ckpt, const rc_dataset *d, int batch,
                               int iterations, rc_eval_result *r) {
    memset(r, 0, sizeof *r);
    if (iterations < 1 || iterations > RC_MAX_READOUTS)
        return rc_fail("iterations %d out of range 1..%d", iterations, RC_MAX_READOUTS);
    if (rc_model_can_continue(mc)) {
        char why[256];
        snprintf(why, sizeof why, "%s", rc_error());
        return rc_fail("step-by-step evaluation needs a model that continues from its state: %s", why);
    }
    int dense = mc->readout == RC_READOUT_DENSE;
    if (dense != d->dense)
        return rc_fail("dataset %s and model.readout = %s do not match", d->spec, dense ? "dense" : "pool");
    if (rc_dataset_check_shape(d, mc->in_c, mc->in_h, mc->in_w, -1)) return RC_ERR;
    rc_model first, next;
    if (rc_model_build_ex(mc, batch, 2, RC_BUILD_STATE_OUT, &first)) return RC_ERR;
    if (rc_model_build_ex(mc, batch, 1, RC_BUILD_CONTINUE | RC_BUILD_STATE_OUT, &next)) {
        rc_model_free(&first);
        return RC_ERR;
    }
    rc_status st = RC_ERR;
    size_t hw = (size_t)d->h * d->w, nx = (size_t)batch * d->c * hw;
    int *idx = rc_xmalloc((size_t)batch * sizeof(int)), *y = rc_xmalloc((size_t)batch * sizeof(int));
    uint8_t *tgt = dense ? rc_xmalloc((size_t)batch * hw) : NULL, *mask = dense ? rc_xmalloc((size_t)batch * hw) : NULL;
    if (rc_checkpoint_load(ckpt, &first.g, NULL) || rc_model_share_params(&next, &first)) goto done;
    r->nreadouts = iterations;
    r->dense = dense;
    float *S = next.g.tensors[next.state_in].x;
    for (long start = 0; start < d->n; start += batch) {
        int nb = (int)RC_MIN((long)batch, d->n - start);
        for (int i = 0; i < batch; i++) idx[i] = (int)(start + (i < nb ? i : 0));
        rc_dataset_batch(d, idx, batch, NULL, NULL, first.g.tensors[first.input].x, y);
        if (dense) rc_dataset_batch_targets(d, idx, batch, tgt, mask);
        memcpy(next.g.tensors[next.input].x, first.g.tensors[first.input].x, nx * sizeof(float));
        long kept = 0;
        rc_graph_forward(&first.g, 0);
        for (int t = 0; t < 2 && t < iterations; t++) score(&first, t, t, nb, y, tgt, mask, r, &kept);
        rc_graph_read(&first.g, first.state_out, 0, S);
        for (int t = 2; t < iterations; t++) {
            rc_graph_forward(&next.g, 0);
            score(&next, 0, t, nb, y, tgt, mask, r, &kept);
            rc_graph_read(&next.g, next.state_out, 0, S);
        }
        r->positions += kept;
        r->n += nb;
    }
    double div = dense ? (double)(r->positions ? r->positions : 1) : (double)(r->n ? r->n : 1);
    for (int t = 0; t < iterations; t++) r->loss[t] /= div;
    st = RC_OK;
done:
    free(idx);
    free(y);
    free(tgt);
    free(mask);
    rc_model_free(&next);
    rc_model_free(&first);
    return st;
}
