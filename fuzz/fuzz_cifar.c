/* fuzz_cifar.c — libFuzzer target for the CIFAR readers. Input layout: byte 0 = mode (bit 0: CIFAR-100
 * else CIFAR-10; bit 1: training split), then the file's bytes, written to a scratch directory (all five
 * data_batch_N.bin for the CIFAR-10 training split). A failed load must name the directory; a successful
 * one must hold labels in range and, for CIFAR-100, a consistent taxonomy. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>

#include "fuzz_util.h"
#include "io/dataset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int c100 = data[0] & 1, train = (data[0] >> 1) & 1;
    const uint8_t *body = data + 1;
    size_t n = size - 1;
    if (c100) {
        fz_write(train ? "train.bin" : "test.bin", body, n);
    } else if (train) {
        char name[32];
        for (int i = 1; i <= 5; i++) {
            snprintf(name, sizeof name, "data_batch_%d.bin", i);
            fz_write(name, body, n);
        }
    } else {
        fz_write("test_batch.bin", body, n);
    }
    rc_dataset d;
    rc_status st = c100 ? rc_dataset_load_cifar100(fz_dir(), train, &d) : rc_dataset_load_cifar10(fz_dir(), train, &d);
    if (st != RC_OK) {
        fz_check_error(fz_dir());
        if (d.pixels || d.labels || d.n) fz_die("failed load left data", "");
    } else {
        if (d.n < 1 || d.c != 3 || d.h != 32 || d.w != 32 || d.classes != (c100 ? 100 : 10)) fz_die("bad shape", "");
        for (int i = 0; i < d.n; i++) {
            if (d.labels[i] < 0 || d.labels[i] >= d.classes) fz_die("label out of range", "");
            if (c100 && (d.coarse_of[d.labels[i]] < 0 || d.coarse_of[d.labels[i]] >= 20))
                fz_die("fine class without a coarse group", "");
        }
    }
    rc_dataset_free(&d);
    return 0;
}
