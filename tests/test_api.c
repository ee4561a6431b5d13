/* test_api.c — the public C API (include/recur.h, src/api/recur_api.c) through recur.h alone: a model from
 * config text, init, predict (batch size and test-time iterations do not change the logits), export,
 * train into a run directory and continue it, open the run, evaluate, and errors that name the cause. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "recur.h"
#include "test.h"

static const char *tiny_cfg = "[model]\nname = tiny\nnorm = batch_per_iter\nloss = every\n"
                              "[area V1]\nchannels = 8\niterations = 3\ntied = yes\nstride = 2\n"
                              "[train]\nepochs = 1\nbatch = 32\nlimit = 256\nlr = 0.01\nwarmup_epochs = 0\n";
static const float mean1 = 0.25f, std1 = 0.35f;

#define NIMG 5
static float images[NIMG * 784];

static double max_diff(const float *a, const float *b, size_t n) {
    double d = 0;
    for (size_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

static void test_predict(void) {
    rc_net *net = NULL;
    CHECK(rc_net_from_text(tiny_cfg, "tiny text", &net) == RC_OK, "from_text: %s", rc_error());
    if (!net) return;
    int c, h, w;
    rc_net_input_shape(net, &c, &h, &w);
    CHECK(c == 1 && h == 28 && w == 28, "input shape %dx%dx%d", c, h, w);
    CHECK(rc_net_readouts(net) == 3 && rc_net_classes(net) == 10, "readouts %d, classes %d", rc_net_readouts(net),
          rc_net_classes(net));
    CHECK(!strcmp(rc_net_name(net), "tiny") && rc_net_params(net) > 500, "name %s, params %lld", rc_net_name(net),
          rc_net_params(net));
    CHECK(strstr(rc_net_config(net), "iterations = 3") != NULL, "effective config:\n%s", rc_net_config(net));
    CHECK(!strcmp(rc_net_data(net), "fashion-mnist"), "data %s", rc_net_data(net));
    CHECK(!strcmp(rc_version(), RC_VERSION), "version %s", rc_version());

    float a[NIMG * 3 * 10], b[NIMG * 3 * 10], c5[NIMG * 5 * 10];
    CHECK(rc_net_predict(net, images, NIMG, a) == RC_ERR && strstr(rc_error(), "rc_net_init"),
          "predict before init: %s", rc_error());
    CHECK(rc_net_set_input_stats(net, &mean1, &mean1) == RC_OK, "stats: %s", rc_error());
    rc_net_init(net, 7);
    CHECK(rc_net_predict(net, images, NIMG, a) == RC_OK, "predict: %s", rc_error());
    int finite = 1;
    for (int i = 0; i < NIMG * 30; i++) finite &= isfinite(a[i]);
    CHECK(finite, "non-finite logits");
    /* std changes the logits (the normalisation is applied) */
    CHECK(rc_net_set_input_stats(net, &mean1, &std1) == RC_OK, "stats: %s", rc_error());
    CHECK(rc_net_predict(net, images, NIMG, b) == RC_OK && max_diff(a, b, NIMG * 30) > 1e-3,
          "input stats have no effect");
    CHECK(rc_net_predict(net, images, NIMG, a) == RC_OK, "predict: %s", rc_error());
    /* batch 2: three batches, the last one padded; same logits per image */
    CHECK(rc_net_set_batch(net, 2) == RC_OK, "set_batch: %s", rc_error());
    CHECK(rc_net_predict(net, images, NIMG, b) == RC_OK, "predict: %s", rc_error());
    CHECK(max_diff(a, b, NIMG * 30) <= 1e-5, "batch 2 vs 64: %.3g", max_diff(a, b, NIMG * 30));
    /* image 3 alone gives its rows of the batch */
    CHECK(rc_net_predict(net, images + 3 * 784, 1, b) == RC_OK && max_diff(a + 3 * 30, b, 30) <= 1e-5,
          "image 3 alone differs");
    /* 5 iterations at test time: 5 readouts, the first 3 as before (params carried over the rebuild) */
    CHECK(rc_net_set_iterations(net, 5) == RC_OK && rc_net_readouts(net) == 5, "set_iterations: %s", rc_error());
    CHECK(rc_net_predict(net, images, NIMG, c5) == RC_OK, "predict T=5: %s", rc_error());
    double d = 0;
    for (int i = 0; i < NIMG; i++) d = fmax(d, max_diff(a + i * 30, c5 + i * 50, 30));
    CHECK(d <= 1e-5, "readouts 1..3 change with 5 iterations: %.3g", d);
    CHECK(rc_net_set_iterations(net, 0) == RC_OK && rc_net_readouts(net) == 3, "back to 3 iterations");
    /* the same seed, the same params */
    rc_net_init(net, 7);
    CHECK(rc_net_predict(net, images, NIMG, b) == RC_OK && max_diff(a, b, NIMG * 30) == 0, "init 7 twice differs");
    rc_net_init(net, 8);
    CHECK(rc_net_predict(net, images, NIMG, b) == RC_OK && max_diff(a, b, NIMG * 30) > 1e-4, "seed has no effect");

    /* errors name the argument */
    float bad = 0;
    CHECK(rc_net_set_input_stats(net, &mean1, &bad) == RC_ERR && strstr(rc_error(), "std"), "std 0: %s", rc_error());
    CHECK(rc_net_set_batch(net, 0) == RC_ERR && strstr(rc_error(), "batch"), "batch 0: %s", rc_error());
    CHECK(rc_net_predict(net, images, 0, b) == RC_ERR && strstr(rc_error(), "n = 0"), "n 0: %s", rc_error());
    CHECK(rc_net_predict(NULL, images, 1, b) == RC_ERR, "NULL net accepted");
    CHECK(rc_net_export(net, NULL, "/tmp/x.bin") == RC_ERR && strstr(rc_error(), "x.bin"), "ext: %s", rc_error());
    CHECK(rc_net_export(net, "tiff", "/tmp/x.bin") == RC_ERR && strstr(rc_error(), "tiff"), "fmt: %s", rc_error());
    CHECK(rc_net_load(net, "/nonexistent.ckpt") == RC_ERR && strstr(rc_error(), "/nonexistent.ckpt"), "load: %s",
          rc_error());
    rc_net_free(net);

    rc_net *n2 = NULL;
    const char *typo = "[model]\n[area V1]\nchanels = 8\niterations = 2\ntied = yes\n";
    CHECK(rc_net_from_text(typo, "typo.cfg", &n2) == RC_ERR && n2 == NULL && strstr(rc_error(), "typo.cfg") &&
              strstr(rc_error(), "chanels"),
          "typo: %s", rc_error());
    const char *sets[] = {"area.V1.channels=0"};
    CHECK(rc_net_from_config("tests/configs/tiny.cfg", sets, 1, &n2) == RC_ERR && strstr(rc_error(), "channels"),
          "bad set: %s", rc_error());
    CHECK(rc_net_from_config("tests/configs/nonexistent.cfg", NULL, 0, &n2) == RC_ERR &&
              strstr(rc_error(), "nonexistent.cfg"),
          "missing config: %s", rc_error());
    CHECK(rc_net_open("/nonexistent/run", &n2) == RC_ERR && n2 == NULL, "open missing run");
    rc_net_free(NULL);
}

static void rm_run(const char *dir) {
    const char *files[] = {"config.cfg", "model.ckpt", "train.csv", "model.npz", "model.safetensors", NULL};
    char p[512];
    for (int i = 0; files[i]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        unlink(p);
    }
    rmdir(dir);
}

static void test_train_open_eval(void) {
    char tmpl[] = "/tmp/recur_api_XXXXXX";
    char *tmp = mkdtemp(tmpl);
    CHECK(tmp != NULL, "mkdtemp");
    if (!tmp) return;
    char dir[256], path[512];
    snprintf(dir, sizeof dir, "%s/run", tmp);
    rc_net *net = NULL, *opened = NULL, *other = NULL;
    const char *sets[] = {"train.batch=32", "train.limit=256"};
    CHECK(rc_net_from_config("tests/configs/tiny.cfg", sets, 2, &net) == RC_OK, "from_config: %s", rc_error());
    if (!net) return;
    CHECK(rc_net_train(net, dir, 2, 1) == RC_OK, "train: %s", rc_error());
    snprintf(path, sizeof path, "%s/model.ckpt", dir);
    CHECK(access(path, R_OK) == 0, "no %s", path);
    /* continue the same run; another config is refused */
    CHECK(rc_net_train(net, dir, 1, 1) == RC_OK, "continue: %s", rc_error());
    CHECK(rc_net_from_text(tiny_cfg, "other", &other) == RC_OK, "from_text: %s", rc_error());
    CHECK(rc_net_train(other, dir, 1, 1) == RC_ERR && strstr(rc_error(), "another config"), "other config: %s",
          rc_error());
    rc_net_free(other);

    /* the run opened anew predicts what the trained handle predicts */
    float a[NIMG * 30], b[NIMG * 30];
    CHECK(rc_net_open(dir, &opened) == RC_OK, "open: %s", rc_error());
    if (opened) {
        CHECK(rc_net_predict(net, images, NIMG, a) == RC_OK, "predict: %s", rc_error());
        CHECK(rc_net_predict(opened, images, NIMG, b) == RC_OK, "predict: %s", rc_error());
        CHECK(max_diff(a, b, NIMG * 30) == 0, "opened run differs by %.3g", max_diff(a, b, NIMG * 30));
        double acc[3], coarse[3], loss[3];
        long n = 0;
        CHECK(rc_net_evaluate(opened, 64, acc, coarse, loss, &n) == RC_OK, "evaluate: %s", rc_error());
        CHECK(n == 64, "evaluated %ld images", n);
        for (int t = 0; t < 3; t++)
            CHECK(acc[t] >= 0 && acc[t] <= 1 && coarse[t] >= 0 && coarse[t] <= 1 && loss[t] > 0,
                  "readout %d: %g %g %g", t, acc[t], coarse[t], loss[t]);
        CHECK(rc_net_set_data(opened, "mnist:/nonexistent") == RC_OK, "set_data: %s", rc_error());
        CHECK(rc_net_evaluate(opened, 64, NULL, NULL, NULL, NULL) == RC_ERR && strstr(rc_error(), "/nonexistent"),
              "eval on missing data: %s", rc_error());
        snprintf(path, sizeof path, "%s/model.npz", dir);
        CHECK(rc_net_export(net, NULL, path) == RC_OK && access(path, R_OK) == 0, "export npz: %s", rc_error());
    }
    rc_net_free(opened);
    rc_net_free(net);
    rm_run(dir);
    rmdir(tmp);
}

int main(void) {
    for (int i = 0; i < NIMG * 784; i++) images[i] = (float)((i * 37 + i / 784 * 11) % 256) / 255.0f;
    RUN_TEST(test_predict);
    RUN_TEST(test_train_open_eval);
    TEST_MAIN_END();
}
