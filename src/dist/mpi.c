/* mpi.c — the MPI side of data parallelism: start-up (only under a launcher), rank and size, the one
 * in-place gradient all-reduce per step, the batch-norm statistics hook, buffer averaging, and the
 * cross-rank param hash check. Without RC_HAVE_MPI every function is the single-process stub. */
#define _POSIX_C_SOURCE 200809L
#include "dist.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ops.h"

#ifdef RC_HAVE_MPI
#include <mpi.h>
#endif

static int d_rank = 0, d_size = 1;
static double d_grad_s = 0, d_bn_s = 0;
static long d_grad_calls = 0, d_bn_calls = 0;

int rc_dist_rank(void) { return d_rank; }
int rc_dist_size(void) { return d_size; }

void rc_dist_comm_stats(double *grad_s, long *grad_calls, double *bn_s, long *bn_calls) {
    if (grad_s) *grad_s = d_grad_s;
    if (grad_calls) *grad_calls = d_grad_calls;
    if (bn_s) *bn_s = d_bn_s;
    if (bn_calls) *bn_calls = d_bn_calls;
}

/* ---- hashing (shared by both builds) ---- */

static uint64_t fnv1a(uint64_t h, const float *p, size_t n) {
    const unsigned char *b = (const unsigned char *)p;
    size_t bytes = n * sizeof(float);
    for (size_t i = 0; i < bytes; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static uint64_t param_hash(const rc_param *p, int with_buffers) {
    uint64_t h = 0xcbf29ce484222325ULL;
    if (p->kind == RC_PARAM_BUFFER) return with_buffers ? fnv1a(h, p->w, p->numel) : h;
    h = fnv1a(h, p->w, p->numel);
    h = fnv1a(h, p->m, p->numel);
    return fnv1a(h, p->v, p->numel);
}

uint64_t rc_dist_param_hash(const rc_graph *g, int with_buffers) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (int i = 0; i < g->nparams; i++) {
        uint64_t ph = param_hash(&g->params[i], with_buffers);
        h = (h ^ ph) * 0x100000001b3ULL + (uint64_t)i;
    }
    return h;
}

#ifdef RC_HAVE_MPI

int rc_dist_compiled(void) { return 1; }

static int d_started = 0;
static int d_bn_failed = 0; /* a batch-norm reduction failed inside an op (reported at the next step) */
static char d_bn_msg[MPI_MAX_ERROR_STRING + 128] = "";

int rc_dist_started(void) { return d_started; }

static rc_status mpi_fail(int rc, const char *what) {
    char s[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, s, &len) != MPI_SUCCESS) snprintf(s, sizeof s, "error %d", rc);
    return rc_fail("rank %d of %d: %s failed: %s", d_rank, d_size, what, s);
}

/* Was this process started by an MPI launcher? (Open MPI's mpirun, MPICH/Hydra or Slurm with PMI/PMIx.)
 * RECUR_MPI=1 forces MPI start-up (a singleton), RECUR_MPI=0 forbids it. */
static int launched(void) {
    const char *force = getenv("RECUR_MPI");
    if (force && *force) return strcmp(force, "0") != 0;
    static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE", NULL};
    for (int i = 0; vars[i]; i++)
        if (getenv(vars[i])) return 1;
    return 0;
}

rc_status rc_dist_init(int *argc, char ***argv) {
    if (d_started || !launched()) return RC_OK;
    int provided = 0;
    /* only the main thread calls MPI; OpenMP workers never do */
    int rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS) return rc_fail("MPI_Init_thread failed (error %d)", rc);
    d_started = 1;
    /* errors come back as return codes (turned into messages) instead of aborting inside MPI */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    if ((rc = MPI_Comm_rank(MPI_COMM_WORLD, &d_rank)) != MPI_SUCCESS) return mpi_fail(rc, "MPI_Comm_rank");
    if ((rc = MPI_Comm_size(MPI_COMM_WORLD, &d_size)) != MPI_SUCCESS) return mpi_fail(rc, "MPI_Comm_size");
    return RC_OK;
}

void rc_dist_finalize(void) {
    if (!d_started) return;
    rc_dist_bn_sync(0);
    MPI_Finalize();
    d_started = 0;
    d_rank = 0;
    d_size = 1;
}

void rc_dist_abort(int code) {
    if (d_started && d_size > 1) MPI_Abort(MPI_COMM_WORLD, code);
}

/* MPI counts are ints: reduce large buffers in chunks. */
#define CHUNK ((size_t)1 << 28)

rc_status rc_dist_sum_f64(double *buf, size_t n) {
    if (d_size == 1) return RC_OK;
    for (size_t i = 0; i < n; i += CHUNK) {
        int cnt = (int)RC_MIN(CHUNK, n - i);
        int rc = MPI_Allreduce(MPI_IN_PLACE, buf + i, cnt, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Allreduce (sum of doubles)");
    }
    return RC_OK;
}

rc_status rc_dist_bcast(void *buf, size_t bytes) {
    if (d_size == 1) return RC_OK;
    for (size_t i = 0; i < bytes; i += CHUNK) {
        int cnt = (int)RC_MIN(CHUNK, bytes - i);
        int rc = MPI_Bcast((char *)buf + i, cnt, MPI_BYTE, 0, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Bcast");
    }
    return RC_OK;
}

static rc_status bn_status(void) {
    if (!d_bn_failed) return RC_OK;
    d_bn_failed = 0;
    return rc_fail("%s", d_bn_msg);
}

rc_status rc_dist_allreduce_grads(rc_graph *g) {
    if (d_size == 1) return RC_OK;
    if (bn_status()) return RC_ERR;
    double t0 = MPI_Wtime();
    size_t n = g->param_floats;
    for (size_t i = 0; i < n; i += CHUNK) {
        int cnt = (int)RC_MIN(CHUNK, n - i);
        int rc = MPI_Allreduce(MPI_IN_PLACE, g->pg + i, cnt, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Allreduce of the gradients");
    }
    d_grad_s += MPI_Wtime() - t0;
    d_grad_calls++;
    /* each rank's loss is the mean over its B/N images: the global mean's gradient is the sum / N */
    const float fn = (float)d_size;
    float *pg = g->pg;
    for (size_t i = 0; i < n; i++) pg[i] /= fn;
    return RC_OK;
}

rc_status rc_dist_average_buffers(rc_graph *g) {
    if (d_size == 1) return RC_OK;
    size_t nb = 0;
    for (int i = 0; i < g->nparams; i++)
        if (g->params[i].kind == RC_PARAM_BUFFER) nb += g->params[i].numel;
    if (nb == 0) return RC_OK;
    double *buf = malloc(nb * sizeof(double));
    if (!buf) return rc_fail("rank %d: cannot allocate %zu bytes to average running statistics", d_rank, nb * 8);
    size_t k = 0;
    for (int i = 0; i < g->nparams; i++) {
        const rc_param *p = &g->params[i];
        if (p->kind == RC_PARAM_BUFFER)
            for (size_t j = 0; j < p->numel; j++) buf[k++] = p->w[j];
    }
    rc_status st = rc_dist_sum_f64(buf, nb);
    if (st == RC_OK) {
        k = 0;
        for (int i = 0; i < g->nparams; i++) {
            rc_param *p = &g->params[i];
            if (p->kind == RC_PARAM_BUFFER)
                for (size_t j = 0; j < p->numel; j++) p->w[j] = (float)(buf[k++] / d_size);
        }
    }
    free(buf);
    return st;
}

/* ---- synchronised batch norm: the hook batchnorm.c calls on its per-channel partial sums ---- */
static void bn_allreduce(double *sums, int n) {
    if (d_bn_failed) return;
    double t0 = MPI_Wtime();
    int rc = MPI_Allreduce(MPI_IN_PLACE, sums, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) {
        char s[MPI_MAX_ERROR_STRING];
        int len = 0;
        if (MPI_Error_string(rc, s, &len) != MPI_SUCCESS) snprintf(s, sizeof s, "error %d", rc);
        snprintf(d_bn_msg, sizeof d_bn_msg, "rank %d of %d: MPI_Allreduce of batch-norm statistics failed: %s",
                 d_rank, d_size, s);
        d_bn_failed = 1;
    }
    d_bn_s += MPI_Wtime() - t0;
    d_bn_calls++;
}

void rc_dist_bn_sync(int on) { rc_bn_allreduce = (on && d_size > 1) ? bn_allreduce : NULL; }

rc_status rc_dist_check_params(rc_graph *g, long step, int with_buffers) {
    static long every = -1;
    static long inject = -1;
    if (every < 0) {
        const char *e = getenv("RECUR_DIST_CHECK");
        every = e ? atol(e) : 0;
        if (every < 0) every = 0;
        /* test hook: RECUR_DIST_CHECK_INJECT=S flips one bit of the last rank's params at step S */
        const char *inj = getenv("RECUR_DIST_CHECK_INJECT");
        inject = inj ? atol(inj) : 0;
    }
    if (d_size == 1 || every == 0 || step % every != 0) return RC_OK;
    if (inject > 0 && step == inject && d_rank == d_size - 1) {
        for (int i = 0; i < g->nparams; i++)
            if (g->params[i].kind != RC_PARAM_BUFFER && g->params[i].numel > 0) {
                uint32_t u;
                memcpy(&u, &g->params[i].w[0], sizeof u);
                u ^= 1u;
                memcpy(&g->params[i].w[0], &u, sizeof u);
                break;
            }
    }
    /* max of h and of ~h in one reduction: equal hashes everywhere iff max(h) == ~max(~h) */
    uint64_t h = rc_dist_param_hash(g, with_buffers);
    uint64_t mm[2] = {h, ~h};
    int rc = MPI_Allreduce(MPI_IN_PLACE, mm, 2, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Allreduce (param hash check)");
    if (mm[0] == ~mm[1]) return RC_OK;
    /* find the first param that differs (every rank runs the same loop, so all agree) */
    for (int i = 0; i < g->nparams; i++) {
        uint64_t ph = param_hash(&g->params[i], with_buffers);
        uint64_t pm[2] = {ph, ~ph};
        rc = MPI_Allreduce(MPI_IN_PLACE, pm, 2, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Allreduce (param hash check)");
        if (pm[0] != ~pm[1])
            return rc_fail("RECUR_DIST_CHECK: the ranks' params diverged at step %ld: %s differs between ranks "
                           "(this rank %d hashes it to %016llx); data-parallel training requires bit-identical "
                           "params",
                           step, g->params[i].name, d_rank, (unsigned long long)ph);
    }
    return rc_fail("RECUR_DIST_CHECK: the ranks' params diverged at step %ld (hash mismatch)", step);
}

#else /* single-process stubs */

int rc_dist_compiled(void) { return 0; }
int rc_dist_started(void) { return 0; }
rc_status rc_dist_init(int *argc, char ***argv) {
    (void)argc, (void)argv;
    /* started by a launcher with several ranks: each would train alone and write the same files */
    static const char *sizes[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", NULL};
    for (int i = 0; sizes[i]; i++) {
        const char *v = getenv(sizes[i]);
        if (v && atoi(v) > 1)
            return rc_fail("started as one of %s ranks (%s), but this recur was built without MPI: install "
                           "libopenmpi-dev and rebuild (the Makefile finds mpicc), or run it without mpirun",
                           v, sizes[i]);
    }
    return RC_OK;
}
void rc_dist_finalize(void) {}
void rc_dist_abort(int code) { (void)code; }
rc_status rc_dist_sum_f64(double *buf, size_t n) {
    (void)buf, (void)n;
    return RC_OK;
}
rc_status rc_dist_bcast(void *buf, size_t bytes) {
    (void)buf, (void)bytes;
    return RC_OK;
}
rc_status rc_dist_allreduce_grads(rc_graph *g) {
    (void)g;
    return RC_OK;
}
rc_status rc_dist_average_buffers(rc_graph *g) {
    (void)g;
    return RC_OK;
}
void rc_dist_bn_sync(int on) { (void)on; }
rc_status rc_dist_check_params(rc_graph *g, long step, int with_buffers) {
    (void)g, (void)step, (void)with_buffers;
    return RC_OK;
}

#endif
