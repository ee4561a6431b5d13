/* fuzz_idx.c — libFuzzer target for the IDX reader (rc_dataset_load_idx, gzip or plain). Input layout:
 * byte 0 = mode (bit 0: kind "idx" else "mnist"; bit 1: test split; bit 2: files named *.gz), bytes 1..4 =
 * little-endian length L of the labels file, then L bytes of labels file, then the images file. The files
 * go to a scratch directory; a failed load must name the file, a successful one must hold sane data. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>

#include "fuzz_util.h"
#include "io/dataset.h"

static void check_loaded(const rc_dataset *d) {
    if (d->n < 1 || d->c != 1 || d->h < 1 || d->w < 1 || d->classes < 1 || !d->pixels || !d->labels)
        fz_die("loaded dataset is not sane", d->spec);
    for (int i = 0; i < d->n; i++)
        if (d->labels[i] < 0 || d->labels[i] >= d->classes) fz_die("label out of range", d->spec);
    /* one augmented batch of up to 4 images */
    int n = d->n < 4 ? d->n : 4, idx[4], y[4];
    for (int i = 0; i < n; i++) idx[i] = d->n - 1 - i;
    size_t img = (size_t)d->h * d->w;
    if (img > 65536) return;
    float *x = malloc((size_t)n * img * sizeof(float));
    if (!x) fz_die("out of memory", "");
    rc_augment aug = {2, 1};
    rc_rng rng;
    rc_rng_seed(&rng, 5);
    rc_dataset_batch(d, idx, n, &aug, &rng, x, y);
    free(x);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 5) return 0;
    int mode = data[0];
    size_t lab_len = (size_t)data[1] | (size_t)data[2] << 8 | (size_t)data[3] << 16 | (size_t)data[4] << 24;
    const uint8_t *rest = data + 5;
    size_t left = size - 5;
    if (lab_len > left) lab_len = left;
    const char *kind = (mode & 1) ? "idx" : "mnist";
    int train = !(mode & 2);
    const char *sfx = (mode & 4) ? ".gz" : "";
    const char *bases[4] = {"train-labels-idx1-ubyte", "train-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
                            "t10k-images-idx3-ubyte"};
    char name[64];
    for (int i = 0; i < 4; i++) { /* clear both namings from the previous input */
        fz_remove(bases[i]);
        snprintf(name, sizeof name, "%s.gz", bases[i]);
        fz_remove(name);
    }
    for (int i = 0; i < 4; i++) {
        if (!train && i < 2 && i != 0) continue; /* test split: train labels too (idx reads them) */
        if (train && i >= 2) continue;
        snprintf(name, sizeof name, "%s%s", bases[i], sfx);
        if (i % 2 == 0)
            fz_write(name, rest, lab_len);
        else
            fz_write(name, rest + lab_len, left - lab_len);
    }
    rc_dataset d;
    if (rc_dataset_load_idx(fz_dir(), kind, train, &d) != RC_OK) {
        fz_check_error(fz_dir());
        if (d.pixels || d.labels || d.n) fz_die("failed load left data", "");
    } else {
        check_loaded(&d);
    }
    rc_dataset_free(&d);
    return 0;
}
