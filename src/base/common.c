/* common.c — error messages, checked allocation, thread control and timing. */
#define _POSIX_C_SOURCE 200809L
#include "common.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>
#include "omp.h"
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

static _Thread_local char rc_errbuf[1024];

rc_status rc_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rc_errbuf, sizeof rc_errbuf, fmt, ap);
    va_end(ap);
    return RC_ERR;
}

const char *rc_error(void) { return rc_errbuf; }

void *rc_xmalloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "recur: out of memory allocating %zu bytes\n", bytes);
        abort();
    }
    return p;
}

void *rc_xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) {
        fprintf(stderr, "recur: out of memory allocating %zu x %zu bytes\n", n, size);
        abort();
    }
    return p;
}

void *rc_xrealloc(void *p, size_t bytes) {
    void *q = realloc(p, bytes ? bytes : 1);
    if (!q) {
        fprintf(stderr, "recur: out of memory reallocating %zu bytes\n", bytes);
        abort();
    }
    return q;
}

float *rc_aalloc_floats(size_t n) {
    void *p = NULL;
    size_t bytes = (n ? n : 1) * sizeof(float);
    bytes = (bytes + 63) / 64 * 64;
    if (posix_memalign(&p, 64, bytes) != 0) return NULL;
    memset(p, 0, bytes);
    return p;
}

void rc_afree(void *p) { free(p); }

static int rc_threads = 0;

/* Denormal floats make gradient arithmetic up to ~100x slower (tiny gradients of deep unrolls hit
 * them); flush them to zero on this thread (FTZ) and read them as zero (DAZ). */
static void ftz_this_thread(void) {
#if defined(__SSE__) || defined(__x86_64__)
    _mm_setcsr(_mm_getcsr() | 0x8040u);
#endif
}

void rc_flush_denormals(void) {
    ftz_this_thread();
#ifdef _OPENMP
#pragma omp parallel
    ftz_this_thread();
#endif
}

void rc_set_threads(int n) {
    if (n < 1) n = 1;
    rc_threads = n;
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
    rc_flush_denormals();
}

int rc_get_threads(void) {
#ifdef _OPENMP
    return rc_threads ? rc_threads : omp_get_max_threads();
#else
    return 1;
#endif
}

double rc_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
