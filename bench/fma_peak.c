/* fma_peak.c — the fp32 FMA peak behind "% of peak" in docs/PERFORMANCE.md: per OpenMP thread, 12
 * independent chains of 16-float FMAs in registers; best of 5 for 1 and 2 threads. Not a test. `make`
 * builds it as build/fma_peak with -ffp-contract=fast (without it C11 mode keeps a*b+c as two
 * instructions). */
#include <omp.h>
#include <stdio.h>
#include <string.h>

typedef float v16 __attribute__((vector_size(64)));

static double run(int threads, long iters) {
    double t0 = omp_get_wtime();
    float sink = 0;
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    {
        v16 a[12], b, c;
        for (int k = 0; k < 12; k++)
            for (int v = 0; v < 16; v++) a[k][v] = (float)(k + v) * 1e-3f;
        for (int v = 0; v < 16; v++) {
            b[v] = 0.999999f;
            c[v] = 1e-7f;
        }
        for (long i = 0; i < iters; i++)
            for (int k = 0; k < 12; k++) a[k] = a[k] * b + c;
        for (int k = 0; k < 12; k++)
            for (int v = 0; v < 16; v++) sink += a[k][v];
    }
    double t = omp_get_wtime() - t0;
    if (sink == 12345.0f) printf(" ");
    return 2.0 * 16 * 12 * (double)iters * threads / t / 1e9;
}

int main(void) {
    const long iters = 50000000;
    for (int th = 1; th <= 2; th++) {
        double best = 0;
        for (int r = 0; r < 5; r++) {
            double g = run(th, iters);
            if (g > best) best = g;
        }
        printf("%d thread%s: %.1f GFLOP/s fp32 FMA peak (best of 5)\n", th, th > 1 ? "s" : "", best);
    }
    return 0;
}
