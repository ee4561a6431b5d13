/* mul.c — elementwise product of two flat arrays, y = a * b; backward da = dy * b, db = dy * a.
 * Gradients are written one after the other, so da == db (y = a * a) works with matching acc flags. */
#include "ops.h"

#include "base/common.h"
#include "eltwise.h"

#define MUL_PAR_MIN 65536
#define MUL_BLOCK 8192

// a, b: (n) -> y: (n) on [i0, i1)
static void mul_fwd_range(size_t i0, size_t i1, const float *a, const float *b, float *y) {
    for (size_t i = i0; i < i1; i++) y[i] = a[i] * b[i];
}

// dy, other: (n) -> d: (n) = dy * other, overwrite or accumulate, on [i0, i1)
static void mul_bwd_range(size_t i0, size_t i1, const float *dy, const float *other, float *d, int acc) {
    if (acc) {
        for (size_t i = i0; i < i1; i++) d[i] += dy[i] * other[i];
    } else {
        for (size_t i = i0; i < i1; i++) d[i] = dy[i] * other[i];
    }
}

void rc_mul_forward(size_t n, const float *a, const float *b, float *y) {
    RC_ELTWISE(n, MUL_PAR_MIN, MUL_BLOCK, i0, i1, mul_fwd_range(i0, i1, a, b, y));
}

static void mul_bwd_one(size_t n, const float *dy, const float *other, float *d, int acc) {
    if (!d) return;
    RC_ELTWISE(n, MUL_PAR_MIN, MUL_BLOCK, i0, i1, mul_bwd_range(i0, i1, dy, other, d, acc));
}

void rc_mul_backward(size_t n, const float *a, const float *b, const float *dy, float *da, int da_acc, float *db,
                     int db_acc) {
    mul_bwd_one(n, dy, b, da, da_acc);
    mul_bwd_one(n, dy, a, db, db_acc);
}
