/* loss_schedule.c — the loss schedule over readouts (model.loss): the weight of every readout's cross-entropy
 * at a training step. final, every, increasing, coarse-to-fine and progressive's fixed part do not depend
 * on the step; curriculum moves the weight from every readout equally to the last one over the run. */
#include "models/model.h"

void rc_model_loss_weights(const rc_model *m, long step, long total_steps, float *w_fine, float *w_coarse) {
    const int R = m->nreadouts;
    /* curriculum's progress through the run: p = step / total_steps in [0, 1) */
    double p = total_steps > 0 && step > 0 ? (double)step / (double)total_steps : 0.0;
    if (p > 1.0) p = 1.0;
    for (int t = 1; t <= R; t++) {
        float wf = 0, wc = 0;
        switch (m->cfg.loss) {
        case RC_LOSS_FINAL:
        case RC_LOSS_PROGRESSIVE: /* the trainer draws its weights per step; evaluation reports the last */
            wf = t == R ? 1.0f : 0.0f;
            break;
        case RC_LOSS_EVERY: wf = 1.0f / (float)R; break;
        case RC_LOSS_INCREASING: wf = (float)t / ((float)R * (float)(R + 1) / 2.0f); break;
        case RC_LOSS_COARSE_TO_FINE: {
            float f = R == 1 ? 1.0f : (float)(t - 1) / (float)(R - 1);
            wf = f / (float)R;
            wc = (1.0f - f) / (float)R;
            break;
        }
        case RC_LOSS_CURRICULUM: wf = (float)((1.0 - p) / R + (t == R ? p : 0.0)); break;
        }
        w_fine[t - 1] = wf;
        w_coarse[t - 1] = wc;
    }
}

void rc_model_set_loss_weights(rc_model *m, long step, long total_steps) {
    rc_model_loss_weights(m, step, total_steps, m->w_fine, m->w_coarse);
}
