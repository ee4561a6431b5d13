/* test_loss_schedule.c — the loss schedule as a function of the training step (models/loss_schedule.c):
 * every fixed schedule gives, at every step, bit for bit the weights the model builder fixed before the
 * schedule took a step (written out here as they were); curriculum moves from every to final linearly;
 * rc_model_build sets step 0; and a config accepts model.loss = curriculum. */
#include <string.h>

#include "io/ini.h"
#include "models/model.h"
#include "test.h"

/* The weights rc_model_build fixed for good before they depended on the step (model.c, until then). */
static void fixed_weights(rc_loss_kind loss, int R, float *wf_out, float *wc_out) {
    for (int t = 1; t <= R; t++) {
        float wf = 0, wc = 0;
        if (loss == RC_LOSS_FINAL || loss == RC_LOSS_PROGRESSIVE) wf = t == R ? 1.0f : 0.0f;
        if (loss == RC_LOSS_EVERY) wf = 1.0f / (float)R;
        if (loss == RC_LOSS_INCREASING) wf = (float)t / ((float)R * (float)(R + 1) / 2.0f);
        if (loss == RC_LOSS_COARSE_TO_FINE) {
            float f = R == 1 ? 1.0f : (float)(t - 1) / (float)(R - 1);
            wf = f / (float)R;
            wc = (1.0f - f) / (float)R;
        }
        wf_out[t - 1] = wf;
        wc_out[t - 1] = wc;
    }
}

static rc_model m; /* only cfg.loss and nreadouts are read */

static void test_fixed_schedules(void) {
    static const rc_loss_kind kinds[] = {RC_LOSS_FINAL, RC_LOSS_EVERY, RC_LOSS_INCREASING, RC_LOSS_COARSE_TO_FINE,
                                         RC_LOSS_PROGRESSIVE};
    static const int Rs[] = {1, 2, 3, 7, 40};
    static const long steps[][2] = {{0, 1}, {0, 1000}, {1, 1000}, {499, 1000}, {999, 1000}, {1000, 1000}, {7, 3}};
    float wf[64], wc[64], ef[64], ec[64];
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        for (size_t r = 0; r < sizeof Rs / sizeof Rs[0]; r++) {
            memset(&m, 0, sizeof m);
            m.cfg.loss = kinds[k];
            m.nreadouts = Rs[r];
            fixed_weights(kinds[k], Rs[r], ef, ec);
            for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
                rc_model_loss_weights(&m, steps[s][0], steps[s][1], wf, wc);
                CHECK(!memcmp(wf, ef, (size_t)Rs[r] * sizeof(float)) && !memcmp(wc, ec, (size_t)Rs[r] * sizeof(float)),
                      "loss %d, R = %d: weights at step %ld of %ld differ from the fixed schedule", (int)kinds[k], Rs[r],
                      steps[s][0], steps[s][1]);
            }
            rc_model_set_loss_weights(&m, 3, 10);
            CHECK(!memcmp(m.w_fine, ef, (size_t)Rs[r] * sizeof(float)), "set_loss_weights differs");
        }
    }
}

static void test_curriculum(void) {
    const int R = 4;
    const long S = 100;
    float wf[4], wc[4], ef[4], ec[4], prev[4];
    memset(&m, 0, sizeof m);
    m.cfg.loss = RC_LOSS_CURRICULUM;
    m.nreadouts = R;
    fixed_weights(RC_LOSS_EVERY, R, ef, ec);
    rc_model_loss_weights(&m, 0, S, wf, wc);
    CHECK(!memcmp(wf, ef, sizeof wf), "curriculum at step 0 is not every");
    for (long s = 0; s <= S + 5; s++) {
        rc_model_loss_weights(&m, s, S, wf, wc);
        double sum = 0;
        for (int t = 0; t < R; t++) {
            sum += wf[t];
            CHECK(wc[t] == 0.0f && wf[t] >= 0.0f, "step %ld: weight %d", s, t);
            if (s > 0 && t < R - 1) CHECK(wf[t] <= prev[t], "step %ld: readout %d gained weight", s, t + 1);
            if (s > 0 && t == R - 1) CHECK(wf[t] >= prev[t], "step %ld: the last readout lost weight", s);
        }
        CHECK_CLOSE(sum, 1.0, 0, 1e-6, "curriculum weights sum");
        memcpy(prev, wf, sizeof prev);
    }
    rc_model_loss_weights(&m, S / 2, S, wf, wc);
    CHECK_CLOSE(wf[0], 0.125, 0, 1e-7, "half way: an early readout");
    CHECK_CLOSE(wf[R - 1], 0.625, 0, 1e-7, "half way: the last readout");
    rc_model_loss_weights(&m, S - 1, S, wf, wc);
    CHECK_CLOSE(wf[R - 1], 0.9925, 0, 1e-6, "the last step");
    fixed_weights(RC_LOSS_FINAL, R, ef, ec);
    rc_model_loss_weights(&m, S, S, wf, wc);
    CHECK(!memcmp(wf, ef, sizeof wf), "curriculum at the run's end is not final");
    m.nreadouts = 1;
    rc_model_loss_weights(&m, 17, S, wf, wc);
    CHECK(wf[0] == 1.0f, "one readout: weight %g", wf[0]);
}

/* A config with loss = curriculum builds, and the built model holds the schedule's step 0. */
static void test_build(void) {
    static const char text[] = "[model]\ninput = 1x8x8\nclasses = 3\nloss = curriculum\nnorm = none\n"
                               "[area V1]\nchannels = 2\niterations = 3\ntied = yes\n";
    rc_ini *ini = NULL;
    rc_model_cfg mc;
    rc_train_cfg tc;
    static rc_model b;
    if (rc_ini_parse(text, strlen(text), "curriculum.cfg", &ini) || rc_config_read(ini, "c", &mc, &tc) ||
        rc_model_build(&mc, 2, 0, &b)) {
        CHECK(0, "curriculum config: %s", rc_error());
        rc_ini_free(ini);
        return;
    }
    rc_ini_free(ini);
    CHECK(mc.loss == RC_LOSS_CURRICULUM && b.nreadouts == 3, "loss %d, %d readouts", (int)mc.loss, b.nreadouts);
    for (int t = 0; t < 3; t++) CHECK(b.w_fine[t] == 1.0f / 3.0f && b.w_coarse[t] == 0.0f, "built weight %d", t);
    rc_model_free(&b);
}

int main(void) {
    RUN_TEST(test_fixed_schedules);
    RUN_TEST(test_curriculum);
    RUN_TEST(test_build);
    TEST_MAIN_END();
}
