/* fuzz_npy.c — libFuzzer target for the .npy header parser (rc_npy_parse) and the npy: dataset kind
 * (rc_dataset_load_npy). Input layout: byte 0 = mode (bit 0: load the test split, with the same two files
 * as the test pair), bytes 1..4 = little-endian length L of the images file, then L bytes of images file,
 * then the labels file. A parsed header must be self-consistent, an error must name the file in one line,
 * a loaded dataset must hold sane data. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>

#include "fuzz_util.h"
#include "io/dataset.h"
#include "io/npy.h"

static void check_header(const uint8_t *p, size_t n) {
    rc_npy_info in;
    if (rc_npy_parse("images.npy", p, n, &in) != RC_OK) {
        fz_check_error("images.npy");
        return;
    }
    if (in.ndim < 0 || in.ndim > RC_NPY_MAX_NDIM) fz_die("ndim out of range", "");
    if (in.itemsize != 1 && in.itemsize != 2 && in.itemsize != 4 && in.itemsize != 8) fz_die("bad itemsize", in.descr);
    if (in.data_off > n || in.data_off < 10) fz_die("data offset outside the header", "");
    uint64_t count = 1;
    for (int d = 0; d < in.ndim; d++) {
        if (in.shape[d] < 0) fz_die("negative dimension", "");
        count *= (uint64_t)in.shape[d];
    }
    if (count != in.count || count > ((uint64_t)1 << 62) / (uint64_t)in.itemsize) fz_die("count wrong", "");
}

static void check_loaded(const rc_dataset *d) {
    if (d->n < 1 || d->c < 1 || d->c > RC_DATA_MAX_CHANNELS || d->h < 1 || d->w < 1 || d->classes < 1 || !d->pixels ||
        !d->labels || strcmp(d->name, "npy"))
        fz_die("loaded dataset is not sane", d->spec);
    for (int i = 0; i < d->n; i++)
        if (d->labels[i] < 0 || d->labels[i] >= d->classes) fz_die("label out of range", d->spec);
    int n = d->n < 4 ? d->n : 4, idx[4], y[4];
    for (int i = 0; i < n; i++) idx[i] = d->n - 1 - i;
    size_t img = (size_t)d->c * d->h * d->w;
    if (img > 65536) return;
    float *x = malloc((size_t)n * img * sizeof(float));
    if (!x) fz_die("out of memory", "");
    rc_augment aug = {1, 1};
    rc_rng rng;
    rc_rng_seed(&rng, 5);
    rc_dataset_batch(d, idx, n, &aug, &rng, x, y);
    free(x);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 5) return 0;
    int mode = data[0];
    size_t img_len = (size_t)data[1] | (size_t)data[2] << 8 | (size_t)data[3] << 16 | (size_t)data[4] << 24;
    const uint8_t *rest = data + 5;
    size_t left = size - 5;
    if (img_len > left) img_len = left;
    check_header(rest, img_len);
    fz_write("images.npy", rest, img_len);
    fz_write("labels.npy", rest + img_len, left - img_len);
    char spec[1100];
    const char *dir = fz_dir();
    if (mode & 1)
        snprintf(spec, sizeof spec, "npy:%s/images.npy,%s/labels.npy,%s/images.npy,%s/labels.npy", dir, dir, dir, dir);
    else
        snprintf(spec, sizeof spec, "npy:%s/images.npy,%s/labels.npy", dir, dir);
    rc_dataset d;
    if (rc_dataset_load(spec, !(mode & 1), &d) != RC_OK) {
        fz_check_error(dir);
        if (d.pixels || d.labels || d.n) fz_die("failed load left data", "");
    } else {
        check_loaded(&d);
    }
    rc_dataset_free(&d);
    return 0;
}
