/* test_tasks_model.c — the pieces the algorithmic tasks add to models: the per-position masked
 * cross-entropy (value and finite-difference gradient), a whole dense-readout model with recall against
 * finite differences, the continuation graph (from a state, sharing params) reproducing the full unroll's
 * later readouts, and the progressive loss's gradient against finite differences with h(n) held fixed. */
#define _POSIX_C_SOURCE 200809L
#include <string.h>
#include <unistd.h>

#include "base/rng.h"
#include "io/checkpoint.h"
#include "io/dataset.h"
#include "io/ini.h"
#include "train/eval.h"
#include "models/model.h"
#include "ops/ops.h"
#include "test.h"

static int read_cfg(const char *text, rc_model_cfg *mc) {
    rc_ini *ini = NULL;
    rc_train_cfg tc;
    int bad = rc_ini_parse(text, strlen(text), "inline", &ini) || rc_config_read(ini, "inline", mc, &tc);
    if (bad) fprintf(stderr, "  config: %s\n", rc_error());
    rc_ini_free(ini);
    return bad ? -1 : 0;
}

static double xent_direct(int n, int k, int hw, const float *z, const uint8_t *y, const uint8_t *mask, double w) {
    double s = 0;
    long cnt = 0;
    for (int b = 0; b < n; b++)
        for (int p = 0; p < hw; p++) {
            if (mask && !mask[b * hw + p]) continue;
            double e = 0;
            for (int j = 0; j < k; j++) e += exp((double)z[(b * k + j) * hw + p]);
            s += log(e) - z[(b * k + y[b * hw + p]) * hw + p];
            cnt++;
        }
    return cnt ? w * s / cnt : 0;
}

static void test_xent_dense(void) {
    enum { N = 3, K = 3, HW = 5 };
    float z[N * K * HW], dz[N * K * HW];
    uint8_t y[N * HW], mask[N * HW];
    rc_rng r;
    rc_rng_seed(&r, 3);
    for (int i = 0; i < N * K * HW; i++) z[i] = 2 * rc_rng_normal(&r);
    for (int i = 0; i < N * HW; i++) y[i] = (uint8_t)rc_rng_below(&r, K), mask[i] = rc_rng_below(&r, 3) != 0;
    for (int m = 0; m < 2; m++) {
        const uint8_t *mk = m ? mask : NULL;
        double got = rc_xent_dense_forward_backward(N, K, HW, z, y, mk, 0.7f, dz, 0);
        CHECK_CLOSE(got, xent_direct(N, K, HW, z, y, mk, (double)0.7f), 1e-9, 1e-12, "dense xent value");
        for (int i = 0; i < N * K * HW; i++) {
            float z0 = z[i];
            double eps = 1e-3;
            z[i] = (float)(z0 + eps);
            double lp = xent_direct(N, K, HW, z, y, mk, (double)0.7f);
            z[i] = (float)(z0 - eps);
            double lm = xent_direct(N, K, HW, z, y, mk, (double)0.7f);
            z[i] = z0;
            CHECK_CLOSE(dz[i], (lp - lm) / (2 * eps), 2e-3, 1e-5, m ? "dense xent gradient (mask)" : "dense xent gradient");
            if (mk && !mk[(i / (K * HW)) * HW + i % HW]) CHECK(dz[i] == 0.0f, "masked position has no gradient");
        }
    }
    uint8_t none[N * HW] = {0};
    CHECK(rc_xent_dense_forward_backward(N, K, HW, z, y, none, 1.0f, dz, 0) == 0.0 && dz[0] == 0.0f,
          "all masked: loss 0, gradient 0");
}

/* Input, targets and mask for a model's batch. */
typedef struct {
    float *x;
    uint8_t *y, *mask;
} batch_data;

static void make_batch(const rc_model *m, uint64_t seed, batch_data *b) {
    int B = m->g.batch, hw = m->cfg.in_h * m->cfg.in_w;
    size_t nx = (size_t)B * m->cfg.in_c * hw;
    rc_rng r;
    rc_rng_seed(&r, seed);
    b->x = rc_xmalloc(nx * sizeof(float));
    b->y = rc_xmalloc((size_t)B * hw);
    b->mask = rc_xmalloc((size_t)B * hw);
    for (size_t i = 0; i < nx; i++) b->x[i] = rc_rng_uniform(&r) < 0.5f ? -1.0f : 1.0f;
    for (int i = 0; i < B * hw; i++) b->y[i] = (uint8_t)rc_rng_below(&r, 2), b->mask[i] = rc_rng_below(&r, 4) != 0;
}

static void free_batch(batch_data *b) {
    free(b->x);
    free(b->y);
    free(b->mask);
}

/* Loss of m (weights w_fine) on b; with cont (may be NULL): plus the continuation's loss from state S. */
static double loss_of(rc_model *m, const batch_data *b, rc_model *cont, const float *S, int want_grad) {
    size_t nx = (size_t)m->g.batch * m->cfg.in_c * m->cfg.in_h * m->cfg.in_w;
    memcpy(m->g.tensors[m->input].x, b->x, nx * sizeof(float));
    rc_graph_forward(&m->g, 1);
    double l = rc_model_loss_dense(m, b->y, b->mask, NULL, NULL, want_grad);
    if (want_grad) {
        rc_graph_zero_grads(&m->g);
        rc_graph_backward(&m->g);
    }
    if (cont) {
        const rc_tensor *s = &cont->g.tensors[cont->state_in];
        memcpy(cont->g.tensors[cont->input].x, b->x, nx * sizeof(float));
        memcpy(s->x, S, (size_t)cont->g.batch * s->c * s->h * s->w * sizeof(float));
        rc_graph_forward(&cont->g, 1);
        l += rc_model_loss_dense(cont, b->y, b->mask, NULL, NULL, want_grad);
        if (want_grad) rc_graph_backward(&cont->g);
    }
    return l;
}

/* Central differences of loss_of against the gradients already in m's params, `probes` entries each. */
static void fd_params(const char *what, rc_model *m, const batch_data *b, rc_model *cont, const float *S,
                      int probes) {
    rc_rng r;
    rc_rng_seed(&r, 9);
    int checked = 0;
    float *g = rc_xmalloc(m->g.param_floats * sizeof(float));
    memcpy(g, m->g.pg, m->g.param_floats * sizeof(float));
    for (int i = 0; i < m->g.nparams; i++) {
        rc_param *p = &m->g.params[i];
        for (int k = 0; k < probes; k++) {
            size_t j = rc_rng_below(&r, (uint32_t)p->numel);
            float w0 = p->w[j];
            double an = g[p->off + j], best = 1e30, best_fd = 0;
            static const double steps[] = {1e-2, 3e-3, 1e-3};
            for (int e = 0; e < 3; e++) {
                double eps = steps[e] * (fabs(w0) > 0.1 ? fabs(w0) : 0.1);
                p->w[j] = (float)(w0 + eps);
                double d_up = (double)p->w[j] - w0, lp = loss_of(m, b, cont, S, 0);
                p->w[j] = (float)(w0 - eps);
                double d_dn = w0 - (double)p->w[j], lm = loss_of(m, b, cont, S, 0);
                p->w[j] = w0;
                double fd = (lp - lm) / (d_up + d_dn), err = fabs(fd - an) / (2e-4 + 3e-2 * fabs(fd));
                if (err < best) best = err, best_fd = fd;
            }
            char msg[200];
            snprintf(msg, sizeof msg, "%s: d loss / d %s[%zu]", what, p->name, j);
            CHECK_CLOSE(an, best_fd, 3e-2, 2e-4, msg);
            checked++;
        }
    }
    CHECK(checked > 10, "%s: only %d probes", what, checked);
    free(g);
}

static const char *dense_cfg = "[model]\ninput = 2x5x6\nclasses = 2\nnorm = none\nreadout = dense\n"
                               "head_channels = 4\nrecall = yes\nloss = every\n"
                               "[area V1]\nchannels = 3\niterations = 3\ntied = yes\ncell = residual\n";

static void test_dense_recall_gradcheck(void) {
    rc_ops_fast = 0;
    rc_model_cfg mc;
    rc_model m;
    if (read_cfg(dense_cfg, &mc) || rc_model_build(&mc, 3, 0, &m)) {
        CHECK(0, "build: %s", rc_error());
        rc_ops_fast = 1;
        return;
    }
    CHECK(rc_graph_find_param(&m.g, "V1.proj.weight") >= 0 && rc_graph_find_param(&m.g, "head.conv1.weight") >= 0 &&
              rc_graph_find_param(&m.g, "head.out.bias") >= 0,
          "recall projection and dense head params");
    const rc_tensor *lg = &m.g.tensors[m.readout[2]];
    CHECK(lg->c == 2 && lg->h == 5 && lg->w == 6, "dense logits %dx%dx%d", lg->c, lg->h, lg->w);
    rc_graph_init_params(&m.g, 4);
    batch_data b;
    make_batch(&m, 21, &b);
    loss_of(&m, &b, NULL, NULL, 1);
    fd_params("dense + recall, masked", &m, &b, NULL, NULL, 4);
    free_batch(&b);
    rc_model_free(&m);
    rc_ops_fast = 1;
}

/* The continuation graph from h(n) gives the full unroll's readouts n+1.., and the progressive gradient
 * (1 - alpha on the last readout, alpha on k steps from a detached h(n)) matches finite differences of the
 * same loss with h(n) held at its unperturbed value. */
static void progressive_case(int fast) {
    rc_ops_fast = fast;
    const char *text = "[model]\ninput = 1x1x7\nclasses = 2\nnorm = none\nreadout = dense\nhead_channels = 3\n"
                       "recall = yes\nloss = progressive\nalpha = 0.6\n"
                       "[area V1]\nchannels = 4\niterations = 5\ntied = yes\ncell = residual\n";
    rc_model_cfg mc;
    rc_model m, c;
    if (read_cfg(text, &mc) || rc_model_build(&mc, 2, 0, &m)) {
        CHECK(0, "build: %s", rc_error());
        return;
    }
    if (rc_model_build_ex(&mc, 2, 4, RC_BUILD_CONTINUE, &c) || rc_model_share_params(&c, &m)) {
        CHECK(0, "continuation: %s", rc_error());
        rc_model_free(&m);
        return;
    }
    CHECK(rc_graph_find_param(&c.g, "V1.proj.weight") < 0 && c.nreadouts == 4, "continuation has no projection");
    rc_graph_init_params(&m.g, 6);
    batch_data b;
    make_batch(&m, 5, &b);
    const int n = 2, k = 2;
    size_t sfl = (size_t)2 * 4 * 7;
    float *S = rc_xmalloc(sfl * sizeof(float));
    memcpy(m.g.tensors[m.input].x, b.x, 2 * 7 * sizeof(float));
    rc_graph_forward(&m.g, 1);
    rc_graph_read(&m.g, m.state[n], 0, S);
    memcpy(c.g.tensors[c.input].x, b.x, 2 * 7 * sizeof(float));
    memcpy(c.g.tensors[c.state_in].x, S, sfl * sizeof(float));
    rc_graph_forward(&c.g, 1);
    double maxd = 0;
    for (int t = 1; t + n <= 5; t++) {
        float *a = rc_xmalloc(2 * 2 * 7 * sizeof(float)), *e = rc_xmalloc(2 * 2 * 7 * sizeof(float));
        rc_graph_read(&c.g, c.readout[t - 1], 0, a);
        rc_graph_read(&m.g, m.readout[n + t - 1], 0, e);
        for (int i = 0; i < 28; i++) maxd = fmax(maxd, fabs((double)a[i] - e[i]));
        free(a);
        free(e);
    }
    CHECK(maxd < 1e-5, "continuation readouts differ from the full unroll's by %g (fast %d)", maxd, fast);
    if (!fast) {
        for (int t = 0; t < 5; t++) m.w_fine[t] = t == 4 ? 0.4f : 0.0f;
        for (int t = 0; t < 4; t++) c.w_fine[t] = t == k - 1 ? 0.6f : 0.0f;
        loss_of(&m, &b, &c, S, 1);
        fd_params("progressive n=2 k=2 alpha=0.6", &m, &b, &c, S, 3);
    }
    free(S);
    free_batch(&b);
    rc_model_free(&c);
    rc_model_free(&m);
    rc_ops_fast = 1;
}

static void test_progressive(void) {
    progressive_case(0);
    progressive_case(1);
}

/* Step-by-step evaluation (two-step graph, then a one-step continuation) equals the unrolled graph's, with
 * and without recall (bottomup = first reads the input at step 1 only, lateral from step 2). */
static void stepwise_case(const char *extra) {
    char text[1024];
    snprintf(text, sizeof text,
             "[model]\ninput = 1x1x12\nclasses = 2\nnorm = none\nreadout = dense\nhead_channels = 4\n%s"
             "[area V1]\nchannels = 5\niterations = 3\ntied = yes\ncell = residual\n%s",
             strstr(extra, "recall") ? "recall = yes\n" : "", strstr(extra, "first") ? "bottomup = first\n" : "");
    rc_model_cfg mc;
    rc_model m, u;
    rc_dataset d = {0};
    if (read_cfg(text, &mc) || rc_model_build(&mc, 7, 0, &m) || rc_dataset_load("prefix-sums:12", 0, &d)) {
        CHECK(0, "setup: %s", rc_error());
        return;
    }
    rc_graph_init_params(&m.g, 8);
    char path[] = "/tmp/recur_stepwise_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    if (fd >= 0) close(fd);
    rc_ckpt_meta meta;
    memset(&meta, 0, sizeof meta);
    CHECK(rc_checkpoint_save(path, &m.g, "", &meta) == RC_OK, "save: %s", rc_error());
    if (rc_model_build(&mc, 7, 6, &u) || rc_model_share_params(&u, &m)) {
        CHECK(0, "unrolled: %s", rc_error());
    } else {
        rc_eval_result a, b;
        CHECK(rc_evaluate(&u, &d, 0, &a) == RC_OK, "evaluate: %s", rc_error());
        CHECK(rc_evaluate_stepwise(&mc, path, &d, 7, 6, &b) == RC_OK, "stepwise: %s", rc_error());
        CHECK(a.nreadouts == 6 && b.nreadouts == 6 && a.n == b.n && a.positions == b.positions, "counts");
        for (int t = 0; t < 6; t++) {
            CHECK(a.correct[t] == b.correct[t] && a.pos_correct[t] == b.pos_correct[t],
                  "%s iteration %d: solved %ld vs %ld, positions %ld vs %ld", extra, t + 1, a.correct[t], b.correct[t],
                  a.pos_correct[t], b.pos_correct[t]);
            CHECK_CLOSE(b.loss[t], a.loss[t], 1e-5, 1e-6, "stepwise loss");
        }
        rc_model_free(&u);
    }
    unlink(path);
    rc_dataset_free(&d);
    rc_model_free(&m);
}

static void test_stepwise_eval(void) {
    stepwise_case("recall");
    stepwise_case("first");
}

static void test_config_errors(void) {
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"[model]\nreadout = dense\n[area V1]\nchannels = 4\niterations = 2\ntied = yes\nstride = 2\n", "stride"},
        {"[model]\nrecall = yes\n[area V1]\nchannels = 4\niterations = 2\ntied = yes\nbottomup = first\n", "bottomup"},
        {"[model]\nloss = progressive\nnorm = none\n[area V1]\nchannels = 4\niterations = 2\ntied = no\n", "untied"},
        {"[model]\nloss = progressive\nnorm = none\n[area V1]\nchannels = 4\niterations = 2\ntied = yes\n"
         "[area V2]\nchannels = 4\niterations = 2\ntied = yes\n", "2 areas"},
        {"[model]\nloss = progressive\n[area V1]\nchannels = 4\niterations = 2\ntied = yes\n", "batch_per_iter"},
        {"[model]\nloss = progressive\nnorm = none\nalpha = 1.5\n[area V1]\nchannels = 4\niterations = 2\n"
         "tied = yes\n", "alpha"},
        {"[model]\nhead_channels = 8\n[area V1]\nchannels = 4\niterations = 2\ntied = yes\n", "dense"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rc_ini *ini = NULL;
        rc_model_cfg mc;
        rc_train_cfg tc;
        int bad = rc_ini_parse(cases[i].text, strlen(cases[i].text), "c", &ini) || rc_config_read(ini, "c", &mc, &tc);
        CHECK(bad && strstr(rc_error(), cases[i].want), "case %zu: want '%s' in: %s", i, cases[i].want,
              bad ? rc_error() : "(accepted)");
        rc_ini_free(ini);
    }
}

int main(void) {
    rc_set_threads(2);
    RUN_TEST(test_xent_dense);
    RUN_TEST(test_dense_recall_gradcheck);
    RUN_TEST(test_progressive);
    RUN_TEST(test_stepwise_eval);
    RUN_TEST(test_config_errors);
    TEST_MAIN_END();
}
