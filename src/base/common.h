/* common.h — status codes, error messages, assertions and small helpers shared by every module.
 * Library code never exits: fallible functions return rc_status and leave a message in rc_error(). */
#ifndef RC_COMMON_H
#define RC_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* RC_VERSION, rc_status (RC_OK, RC_ERR) and rc_error() are part of the public API: include/recur.h. */
#include "recur.h"

/* Set the thread-local error message (printf-style) and return RC_ERR. */
rc_status rc_fail(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* Programmer errors (broken invariants) abort with file and line. */
#define RC_ASSERT(cond)                                                                      \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "recur: internal error at %s:%d: assertion '%s' failed\n",        \
                    __FILE__, __LINE__, #cond);                                              \
            abort();                                                                         \
        }                                                                                    \
    } while (0)

/* Allocation that aborts on out-of-memory (used at build time only, never in the step loop). */
void *rc_xmalloc(size_t bytes);
void *rc_xcalloc(size_t n, size_t size);
void *rc_xrealloc(void *p, size_t bytes);
/* 64-byte aligned, zeroed; free with rc_afree. Returns NULL on failure. */
float *rc_aalloc_floats(size_t n);
void rc_afree(void *p);

/* Flush denormals to zero on the calling thread and every OpenMP worker (also done by rc_set_threads
 * and rc_graph_plan). Changes results only where values fall below 1.2e-38. */
void rc_flush_denormals(void);

/* Threads used by elementwise code and oneDNN alike (OpenMP). */
void rc_set_threads(int n);
int rc_get_threads(void);

/* Wall clock in seconds (monotonic). */
double rc_now(void);

#define RC_MIN(a, b) ((a) < (b) ? (a) : (b))
#define RC_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Software prefetch of the memory RC_PREFETCH_BYTES past p, for streaming loops over data not in cache
 * (batch norm, the ConvLSTM cell: 2 KB ahead, measured in src/ops/bnact.c). The address is formed in
 * integers: it may lie past the array, which a prefetch never faults on. */
#define RC_PREFETCH_BYTES 2048
static inline void rc_prefetch_ahead(const void *p) {
    __builtin_prefetch((const void *)((uintptr_t)p + RC_PREFETCH_BYTES));
}

#endif
