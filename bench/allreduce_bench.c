/* allreduce_bench.c — the pure cost of the gradient all-reduce: MPI_Allreduce (float sum, in place) of
 * BYTES bytes, timed after a barrier so that waiting for a slower rank is not counted. Built and run by
 * bench/scaling.sh: mpirun -np N allreduce_bench BYTES [REPS]. Prints the median time in ms on rank 0. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    long bytes = argc > 1 ? atol(argv[1]) : 1 << 20;
    int reps = argc > 2 ? atoi(argv[2]) : 50;
    if (bytes < 4 || reps < 1) {
        if (rank == 0) fprintf(stderr, "usage: allreduce_bench BYTES [REPS]\n");
        MPI_Finalize();
        return 2;
    }
    int n = (int)(bytes / 4);
    float *buf = malloc((size_t)n * sizeof(float));
    double *t = malloc((size_t)reps * sizeof(double));
    for (int i = 0; i < n; i++) buf[i] = 1e-3f * (float)(i % 1000);
    for (int r = 0; r < reps + 5; r++) { /* 5 warm-up rounds */
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        double dt = MPI_Wtime() - t0, worst;
        MPI_Allreduce(&dt, &worst, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        if (r >= 5) t[r - 5] = worst;
        for (int i = 0; i < n; i++) buf[i] *= 1.0f / (float)size; /* keep values bounded */
    }
    qsort(t, (size_t)reps, sizeof(double), cmp);
    if (rank == 0) printf("%.4f\n", 1e3 * t[reps / 2]);
    free(buf);
    free(t);
    MPI_Finalize();
    return 0;
}
