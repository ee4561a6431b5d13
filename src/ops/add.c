/* add.c — elementwise sum of two flat arrays, y = a + b; backward copies (or adds) dy into da and db.
 * da and db may be the same buffer (y = a + a) when the caller sets the acc flags to match. */
#include "ops.h"

#include "base/common.h"
#include "eltwise.h"

#define ADD_PAR_MIN 65536
#define ADD_BLOCK 8192

// a, b: (n) -> y: (n) on [i0, i1)
static void add_fwd_range(size_t i0, size_t i1, const float *a, const float *b, float *y) {
    for (size_t i = i0; i < i1; i++) y[i] = a[i] + b[i];
}

// dy: (n) -> d: (n), overwrite or accumulate, on [i0, i1)
static void add_bwd_range(size_t i0, size_t i1, const float *dy, float *d, int acc) {
    if (acc) {
        for (size_t i = i0; i < i1; i++) d[i] += dy[i];
    } else {
        for (size_t i = i0; i < i1; i++) d[i] = dy[i];
    }
}

void rc_add_forward(size_t n, const float *a, const float *b, float *y) {
    RC_ELTWISE(n, ADD_PAR_MIN, ADD_BLOCK, i0, i1, add_fwd_range(i0, i1, a, b, y));
}

/* One gradient at a time (da fully, then db) so that da == db works with da_acc=0, db_acc=1. */
static void add_bwd_one(size_t n, const float *dy, float *d, int acc) {
    if (!d) return;
    RC_ELTWISE(n, ADD_PAR_MIN, ADD_BLOCK, i0, i1, add_bwd_range(i0, i1, dy, d, acc));
}

void rc_add_backward(size_t n, const float *dy, float *da, int da_acc, float *db, int db_acc) {
    add_bwd_one(n, dy, da, da_acc);
    add_bwd_one(n, dy, db, db_acc);
}
