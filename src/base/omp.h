/* omp.h — the OpenMP helpers every parallel file uses: a pragma macro that vanishes without OpenMP, the
 * threads the next parallel region gets, and a thread's place in its team. Builds without -fopenmp run
 * everything on one thread with the same code. */
#ifndef RC_OMP_H
#define RC_OMP_H

#ifdef _OPENMP
#include <omp.h>
#define RC_OMP(x) _Pragma(#x)
#else
#define RC_OMP(x)
#endif

/* Threads the next parallel region gets (1 without OpenMP). */
static inline int rc_omp_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/* Inside a parallel region: this thread's number and the team's size (0 and 1 outside or without OpenMP). */
static inline void rc_omp_team(int *tid, int *nt) {
#ifdef _OPENMP
    *tid = omp_get_thread_num();
    *nt = omp_get_num_threads();
#else
    *tid = 0;
    *nt = 1;
#endif
}

#endif
