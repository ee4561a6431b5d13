/* test_ponder.c — PonderNet halting (src/models/ponder.c): the loss value against a direct product-form
 * computation, its gradient w.r.t. the halting logits and the CE terms against central differences in
 * double and against PyTorch autograd (golden values), the truncated geometric prior, the halting step, and the model's halting heads and loss. */
#include <string.h>

#include "io/ini.h"
#include "models/model.h"
#include "models/ponder.h"
#include "test.h"

/* The loss written the plain way: lambda_n = sigmoid(s_n) (lambda_T = 1), p_n = lambda_n prod_{j<n} (1 -
 * lambda_j), q_n = lp (1 - lp)^(n-1) / sum_{m<=T} lp (1 - lp)^(m-1), L = sum p_n ce_n + beta sum p_n log(p_n/q_n). */
static double direct_loss(int T, const double *ce, const double *s, double beta, double lp) {
    double rem = 1, z = 0, L = 0;
    for (int n = 1; n <= T; n++) z += lp * pow(1 - lp, n - 1);
    for (int n = 1; n <= T; n++) {
        double lam = n == T ? 1.0 : 1.0 / (1.0 + exp(-s[n - 1]));
        double p = lam * rem, q = lp * pow(1 - lp, n - 1) / z;
        rem *= 1 - lam;
        L += p * ce[n - 1] + beta * p * log(p / q);
    }
    return L;
}

static void test_loss_value_and_grad(void) {
    static const int Ts[] = {1, 2, 5, 9};
    for (int c = 0; c < 4; c++) {
        int T = Ts[c];
        double ce[9], s[9], logq[9], p[9], ds[9], p2[9];
        for (int n = 0; n < T; n++) {
            ce[n] = 0.3 + 0.7 * sin(1.3 * n + c) * sin(1.3 * n + c);
            s[n] = 1.7 * cos(0.9 * n + 2 * c) - 0.4;
        }
        double beta = 0.05 + 0.1 * c, lp = 0.1 + 0.15 * c;
        rc_ponder_log_prior(T, lp, logq);
        double qs = 0;
        for (int n = 0; n < T; n++) qs += exp(logq[n]);
        CHECK_CLOSE(qs, 1.0, 0, 1e-12, "prior sums to 1");
        double L = rc_ponder_loss(T, ce, s, beta, logq, p, ds);
        char msg[96];
        snprintf(msg, sizeof msg, "T=%d loss", T);
        CHECK_CLOSE(L, direct_loss(T, ce, s, beta, lp), 1e-12, 1e-13, msg);
        double ps = 0;
        for (int n = 0; n < T; n++) ps += p[n];
        CHECK_CLOSE(ps, 1.0, 0, 1e-12, "p sums to 1");
        CHECK(ds[T - 1] == 0.0, "T=%d: the last logit is unused (lambda_T = 1), ds = %g", T, ds[T - 1]);
        for (int n = 0; n < T; n++) {
            double h = 1e-6, keep = s[n];
            s[n] = keep + h;
            double lu = rc_ponder_loss(T, ce, s, beta, logq, p2, NULL);
            s[n] = keep - h;
            double ld = rc_ponder_loss(T, ce, s, beta, logq, p2, NULL);
            s[n] = keep;
            snprintf(msg, sizeof msg, "T=%d dL/ds[%d]", T, n);
            CHECK_CLOSE(ds[n], (lu - ld) / (2 * h), 1e-6, 1e-9, msg);
            keep = ce[n];
            ce[n] = keep + h;
            lu = rc_ponder_loss(T, ce, s, beta, logq, p2, NULL);
            ce[n] = keep - h;
            ld = rc_ponder_loss(T, ce, s, beta, logq, p2, NULL);
            ce[n] = keep;
            snprintf(msg, sizeof msg, "T=%d dL/dce[%d] = p", T, n);
            CHECK_CLOSE(p[n], (lu - ld) / (2 * h), 1e-6, 1e-9, msg);
        }
    }
}

/* KL(p || q) is zero when the halting distribution is the prior: lambda_n = lambda_p for n < T. */
static void test_kl_zero_at_prior(void) {
    int T = 6;
    double lp = 0.3, ce[6] = {0}, s[6], logq[6], p[6], ds[6];
    for (int n = 0; n < T; n++) s[n] = log(lp / (1 - lp));
    rc_ponder_log_prior(T, lp, logq);
    double L = rc_ponder_loss(T, ce, s, 1.0, logq, p, ds);
    /* truncation: p_T holds the tail (1 - lp)^(T-1), q_T only its renormalised share, so KL > 0 but small */
    CHECK(L > 0 && L < 0.2, "KL near the prior: %g", L);
    s[0] = 5; /* halting at once is far from the prior */
    CHECK(rc_ponder_loss(T, ce, s, 1.0, logq, p, ds) > L + 0.5, "KL grows away from the prior");
    /* extreme logits stay finite */
    for (int n = 0; n < T; n++) s[n] = n % 2 ? 800.0 : -800.0;
    double Lx = rc_ponder_loss(T, ce, s, 1.0, logq, p, ds);
    int fin = isfinite(Lx);
    for (int n = 0; n < T; n++) fin &= isfinite(ds[n]) && isfinite(p[n]);
    CHECK(fin, "finite at |s| = 800: L = %g", Lx);
}

/* Golden values from PyTorch autograd in float64 (an independent implementation: lambda by sigmoid and a
 * cumulative product, q normalised, KL by torch.nn.functional.kl_div(log q, p, reduction='sum'), which is
 * sum p (log p - log q) = KL(p || q)):
 *   ce = [2.1, 1.3, 0.7, 0.4, 0.35], s = [-1.5, 0.2, -0.3, 1.1, 0.0], beta = 0.25, lambda_p = 0.3 */
static void test_torch_golden(void) {
    double ce[5] = {2.1, 1.3, 0.7, 0.4, 0.35}, s[5] = {-1.5, 0.2, -0.3, 1.1, 0.0}, logq[5], p[5], ds[5];
    static const double L_ref = 1.1914379408827291;
    static const double ds_ref[5] = {0.13466655754310852, 0.18770087769900504, 0.023982936864554508,
                                     0.009342169672568283, 0.0};
    static const double p_ref[5] = {0.18242552380635635, 0.4495302423462064, 0.15662397785809662,
                                    0.1586201835835095, 0.0528000724058311};
    rc_ponder_log_prior(5, 0.3, logq);
    CHECK_CLOSE(rc_ponder_loss(5, ce, s, 0.25, logq, p, ds), L_ref, 1e-12, 1e-14, "loss vs torch");
    for (int n = 0; n < 5; n++) {
        CHECK_CLOSE(ds[n], ds_ref[n], 1e-10, 1e-14, "dL/ds vs torch");
        CHECK_CLOSE(p[n], p_ref[n], 1e-12, 1e-14, "p (= dL/dce) vs torch");
    }
}

static void test_halt_step(void) {
    /* lambda = sigmoid(s): 0.1, 0.2, 0.5, ... -> remaining 0.9, 0.72, 0.36 (<= 0.5 at step 3) */
    float s[4] = {(float)log(0.1 / 0.9), (float)log(0.2 / 0.8), 0.0f, -3.0f};
    CHECK(rc_ponder_halt_step(4, s, 1) == 3, "halt step %d, expected 3", rc_ponder_halt_step(4, s, 1));
    float s2[3] = {0.01f, -9.0f, -9.0f}; /* lambda_1 > 0.5: step 1 */
    CHECK(rc_ponder_halt_step(3, s2, 1) == 1, "halt step %d, expected 1", rc_ponder_halt_step(3, s2, 1));
    float s3[3] = {-9.0f, -9.0f, -9.0f}; /* never: the last */
    CHECK(rc_ponder_halt_step(3, s3, 1) == 3, "halt step %d, expected 3", rc_ponder_halt_step(3, s3, 1));
    float s4[6] = {-9.0f, 0, 5.0f, 0, 0, 0}; /* stride 2: logits -9, 5, 0 */
    CHECK(rc_ponder_halt_step(3, s4, 2) == 2, "strided halt step %d, expected 2", rc_ponder_halt_step(3, s4, 2));
}

static double lcg_u01(void *ctx) {
    unsigned long long *x = ctx;
    *x = *x * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(*x >> 11) / 9007199254740992.0;
}

/* Sampled halting is distributed as p: frequencies over many draws against p_n. */
static void test_halt_sample(void) {
    float s[4] = {-1.0f, 0.5f, -0.2f, 0.0f};
    double sd[4] = {-1.0, 0.5, -0.2, 0.0}, logp[4];
    rc_ponder_log_probs(4, sd, logp);
    long cnt[4] = {0};
    unsigned long long st = 7;
    int n = 200000;
    for (int i = 0; i < n; i++) cnt[rc_ponder_halt_sample(4, s, 1, lcg_u01, &st) - 1]++;
    for (int k = 0; k < 4; k++) {
        char msg[64];
        snprintf(msg, sizeof msg, "sampled frequency of step %d", k + 1);
        CHECK_CLOSE((double)cnt[k] / n, exp(logp[k]), 0, 0.005, msg);
    }
}

static int read_cfg(const char *text, rc_model_cfg *mc) {
    rc_ini *ini = NULL;
    rc_train_cfg tc;
    int rc = rc_ini_parse(text, strlen(text), "inline", &ini) || rc_config_read(ini, "inline", mc, &tc);
    rc_ini_free(ini);
    return rc;
}

static void test_config_errors(void) {
    rc_model_cfg mc;
    const char *area = "[area V1]\nchannels = 4\niterations = 3\ntied = yes\n";
    char buf[512];
    snprintf(buf, sizeof buf, "[model]\nhalting = ponder\n%s", area);
    CHECK(read_cfg(buf, &mc) == 0 && mc.halting == RC_HALT_PONDER && fabs(mc.ponder_beta - 0.01) < 1e-7 &&
              fabs(mc.ponder_lambda - 0.2) < 1e-7,
          "defaults: %s", rc_error());
    static const struct {
        const char *model, *area, *msg;
    } bad[] = {{"halting = ponder\nloss = final\n", NULL, "leave model.loss at every"},
               {"halting = ponder\nponder_lambda = 1\n", NULL, "ponder_lambda"},
               {"halting = ponder\nponder_beta = -1\n", NULL, "ponder_beta"},
               {"ponder_beta = 0.1\n", NULL, "need model.halting = ponder"},
               {"halting = always\n", NULL, "halting"},
               {"halting = ponder\n", "[area V1]\nchannels = 4\niterations = 1\ntied = yes\n", "at least 2"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(buf, sizeof buf, "[model]\n%s%s", bad[i].model, bad[i].area ? bad[i].area : area);
        int rc = read_cfg(buf, &mc);
        CHECK(rc != 0 && strstr(rc_error(), bad[i].msg), "config %zu: expected an error with '%s', got '%s'", i,
              bad[i].msg, rc ? rc_error() : "(accepted)");
    }
}

/* The model's loss with halting = ponder equals the per-image rc_ponder_loss over the readouts' CE, and
 * the halting heads are shared or per iteration as the readout head is. */
static void test_model_loss(void) {
    for (int per = 0; per < 2; per++) {
        rc_model_cfg mc;
        char buf[512];
        snprintf(buf, sizeof buf,
                 "[model]\ninput = 1x6x6\nhalting = ponder\nponder_beta = 0.3\nhead = %s\n"
                 "[area V1]\nchannels = 3\niterations = 4\ntied = yes\n",
                 per ? "per_iter" : "shared");
        if (read_cfg(buf, &mc)) {
            CHECK(0, "config: %s", rc_error());
            return;
        }
        rc_model m;
        if (rc_model_build(&mc, 3, 0, &m)) {
            CHECK(0, "build: %s", rc_error());
            return;
        }
        rc_graph_init_params(&m.g, 3);
        int nhalt = 0;
        for (int i = 0; i < m.g.nparams; i++) nhalt += strncmp(m.g.params[i].name, "halt.", 5) == 0;
        /* shared: halt.weight, halt.bias; per_iter: steps 1..T-1 = 3 heads of 2 */
        CHECK(nhalt == (per ? 6 : 2), "head %d: %d halting params", per, nhalt);
        size_t nx = (size_t)3 * 36;
        for (size_t i = 0; i < nx; i++) m.g.tensors[m.input].x[i] = (float)sin(0.37 * (double)i);
        rc_graph_forward(&m.g, 0);
        int y[3] = {2, 7, 0};
        double ce_out[4];
        double L = rc_model_loss(&m, y, NULL, ce_out, 1);
        double logq[4], want = 0, cemean[4] = {0};
        rc_ponder_log_prior(4, 0.2, logq);
        for (int i = 0; i < 3; i++) {
            double ce[4], s[4], p[4];
            for (int t = 0; t < 4; t++) {
                const float *l = m.g.tensors[m.readout[t]].x + i * 10;
                double z = 0;
                for (int j = 0; j < 10; j++) z += exp((double)l[j]);
                ce[t] = log(z) - l[y[i]];
                cemean[t] += ce[t] / 3;
                s[t] = m.g.tensors[m.halt[t]].x[i];
            }
            want += rc_ponder_loss(4, ce, s, 0.3, logq, p, NULL) / 3;
        }
        CHECK_CLOSE(L, want, 1e-9, 1e-9, "model ponder loss");
        for (int t = 0; t < 4; t++) CHECK_CLOSE(ce_out[t], cemean[t], 1e-9, 1e-9, "ce_out");
        rc_model_free(&m);
    }
}

int main(void) {
    RUN_TEST(test_loss_value_and_grad);
    RUN_TEST(test_kl_zero_at_prior);
    RUN_TEST(test_torch_golden);
    RUN_TEST(test_halt_step);
    RUN_TEST(test_halt_sample);
    RUN_TEST(test_config_errors);
    RUN_TEST(test_model_loss);
    TEST_MAIN_END();
}
