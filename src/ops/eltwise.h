/* eltwise.h — the loop every elementwise op (add, mul, lerp, relu, sigmoid, tanh) runs its range function
 * in: the whole range on this thread for small arrays or without fast paths, else blocks in parallel
 * (static schedule). Each element is computed the same way either way, so both give the same bits. */
#ifndef RC_ELTWISE_H
#define RC_ELTWISE_H

#include "base/common.h"
#include "base/omp.h"
#include "ops.h"

/* Runs CALL, an expression using the names i0 and i1, over [0, n): once with i0 = 0, i1 = n when fast
 * paths are off or n < par_min, else once per block [i0, i1) of `block` elements, in parallel. */
#define RC_ELTWISE(n, par_min, block, i0, i1, CALL)                                                 \
    do {                                                                                            \
        if (!rc_ops_fast || (n) < (par_min)) {                                                      \
            const size_t i0 = 0, i1 = (n);                                                          \
            CALL;                                                                                   \
        } else {                                                                                    \
            const long long nb_ = (long long)(((n) + (block)-1) / (block));                         \
            RC_OMP(omp parallel for schedule(static))                                               \
            for (long long b_ = 0; b_ < nb_; b_++) {                                                \
                const size_t i0 = (size_t)b_ * (block), i1 = RC_MIN(i0 + (block), (size_t)(n));    \
                CALL;                                                                               \
            }                                                                                       \
        }                                                                                           \
    } while (0)

#endif
