/* install_demo.c — a C program built against an installed recur (only recur.h and pkg-config recur), run
 * by tests/test_install.sh: opens a trained run, predicts on test images and checks the logits against
 * `recur eval --save-logits`, the accuracies against rc_net_evaluate, and a few API errors.
 * Usage: install_demo RUN_DIR IMAGES.u8 LABELS.u8 N LOGITS.npy OUT_DIR */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <recur.h>

static int fails = 0;
#define EXPECT(cond, ...)                                   \
    do {                                                    \
        if (!(cond)) {                                      \
            fprintf(stderr, "install_demo: FAIL: ");        \
            fprintf(stderr, __VA_ARGS__);                   \
            fprintf(stderr, "\n");                          \
            fails++;                                        \
        }                                                   \
    } while (0)

static unsigned char *read_all(const char *path, long *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*len > 0 ? (size_t)*len : 1);
    if (b && fread(b, 1, (size_t)*len, f) != (size_t)*len) {
        free(b);
        b = NULL;
    }
    fclose(f);
    return b;
}

/* The float32 data of a .npy file (version 1-3, '<f4', C order) whose shape must be (n, r, k). */
static const float *npy_f32(const unsigned char *b, long len, int n, int r, int k) {
    if (len < 12 || memcmp(b, "\x93NUMPY", 6) != 0) return NULL;
    long hlen = b[6] == 1 ? (long)(b[8] | b[9] << 8) : (long)(b[8] | b[9] << 8 | b[10] << 16 | (long)b[11] << 24);
    long start = (b[6] == 1 ? 10 : 12) + hlen;
    char header[512], want[64];
    if (hlen >= (long)sizeof header || start + (long)sizeof(float) * n * r * k != len) return NULL;
    memcpy(header, b + (b[6] == 1 ? 10 : 12), (size_t)hlen);
    header[hlen] = 0;
    snprintf(want, sizeof want, "(%d, %d, %d)", n, r, k);
    if (!strstr(header, "'<f4'") || !strstr(header, "'fortran_order': False") || !strstr(header, want)) return NULL;
    return (const float *)(b + start);
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: install_demo RUN_DIR IMAGES.u8 LABELS.u8 N LOGITS.npy OUT_DIR\n");
        return 2;
    }
    const char *run = argv[1], *out_dir = argv[6];
    int n = atoi(argv[4]);
    EXPECT(!strcmp(rc_version(), RC_VERSION), "library version %s, header %s", rc_version(), RC_VERSION);

    rc_net *net = NULL;
    if (rc_net_open(run, &net)) {
        fprintf(stderr, "install_demo: %s\n", rc_error());
        return 1;
    }
    int c, h, w, R = rc_net_readouts(net), K = rc_net_classes(net);
    rc_net_input_shape(net, &c, &h, &w);
    printf("model %s: %dx%dx%d -> %d readouts x %d classes, %lld params, data %s\n", rc_net_name(net), c, h, w, R, K,
           rc_net_params(net), rc_net_data(net));

    /* images: pixel / 255 as float, the convention of exported models and rc_net_predict */
    long ilen = 0, llen = 0, nlen = 0;
    unsigned char *pix = read_all(argv[2], &ilen), *lab = read_all(argv[3], &llen), *npy = read_all(argv[5], &nlen);
    size_t chw = (size_t)c * h * w;
    if (!pix || !lab || !npy || ilen != (long)(n * chw) || llen != n) {
        fprintf(stderr, "install_demo: cannot read the inputs (%ld image bytes, %ld labels)\n", ilen, llen);
        return 1;
    }
    float *x = malloc(sizeof(float) * n * chw), *logits = malloc(sizeof(float) * n * R * K);
    float *logits7 = malloc(sizeof(float) * n * R * K);
    for (size_t i = 0; i < n * chw; i++) x[i] = (float)pix[i] / 255.0f;
    if (rc_net_predict(net, x, n, logits)) {
        fprintf(stderr, "install_demo: %s\n", rc_error());
        return 1;
    }

    /* 1. the same logits as recur eval --save-logits */
    const float *ref = npy_f32(npy, nlen, n, R, K);
    EXPECT(ref, "%s is not a float32 .npy of shape (%d, %d, %d)", argv[5], n, R, K);
    double maxdiff = 0;
    for (long i = 0; ref && i < (long)n * R * K; i++) maxdiff = fmax(maxdiff, fabs((double)logits[i] - ref[i]));
    printf("predict vs recur eval --save-logits: %d images x %d readouts x %d classes, max |diff| %.3g\n", n, R, K,
           maxdiff);
    EXPECT(ref && maxdiff <= 1e-5, "logits differ from recur eval --save-logits by %.3g", maxdiff);

    /* 2. another batch size gives the same logits */
    if (rc_net_set_batch(net, 7) || rc_net_predict(net, x, n, logits7)) {
        fprintf(stderr, "install_demo: %s\n", rc_error());
        return 1;
    }
    double bdiff = 0;
    for (long i = 0; i < (long)n * R * K; i++) bdiff = fmax(bdiff, fabs((double)logits[i] - logits7[i]));
    EXPECT(bdiff <= 1e-5, "batch 7 vs batch 64: logits differ by %.3g", bdiff);

    /* 3. rc_net_evaluate's accuracy per readout = argmax of the predicted logits vs the labels */
    double acc[64], coarse[64], loss[64];
    long images = 0;
    EXPECT(R <= 64, "too many readouts for this demo");
    if (rc_net_evaluate(net, n, acc, coarse, loss, &images)) {
        fprintf(stderr, "install_demo: %s\n", rc_error());
        return 1;
    }
    EXPECT(images == n, "evaluated %ld images, asked for %d", images, n);
    for (int t = 0; t < R; t++) {
        int correct = 0;
        for (int i = 0; i < n; i++) {
            const float *l = logits + ((size_t)i * R + t) * K;
            int arg = 0;
            for (int k = 1; k < K; k++)
                if (l[k] > l[arg]) arg = k;
            correct += arg == lab[i];
        }
        printf("readout %d: accuracy %.4f (from the logits %.4f), coarse %.4f, loss %.4f\n", t + 1, acc[t],
               (double)correct / n, coarse[t], loss[t]);
        EXPECT(fabs(acc[t] - (double)correct / n) < 1e-12, "readout %d: rc_net_evaluate %.4f, logits %.4f", t + 1,
               acc[t], (double)correct / n);
        EXPECT(isfinite(loss[t]) && loss[t] > 0, "readout %d: loss %g", t + 1, loss[t]);
    }

    /* 4. export, and errors that name what is wrong */
    char path[4096];
    snprintf(path, sizeof path, "%s/model.npz", out_dir);
    EXPECT(rc_net_export(net, NULL, path) == RC_OK, "export %s: %s", path, rc_error());
    FILE *f = fopen(path, "rb");
    EXPECT(f != NULL, "export wrote no %s", path);
    if (f) fclose(f);
    EXPECT(rc_net_export(net, "tiff", path) == RC_ERR && strstr(rc_error(), "tiff"), "bad format: '%s'", rc_error());
    rc_net *bad = NULL;
    EXPECT(rc_net_open("/nonexistent/run", &bad) == RC_ERR && bad == NULL && strstr(rc_error(), "/nonexistent/run"),
           "open of a missing run: '%s'", rc_error());
    EXPECT(rc_net_from_text("[model]\nclasses = 10\n[area V1]\nchannels = 8\n", "broken", &bad) == RC_ERR &&
               strstr(rc_error(), "broken"),
           "config without iterations: '%s'", rc_error());

    rc_net_free(net);
    free(pix), free(lab), free(npy), free(x), free(logits), free(logits7);
    printf("install_demo: %s\n", fails ? "FAILED" : "all checks passed");
    return fails ? 1 : 0;
}
