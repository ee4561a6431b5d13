/* test_dist.c — data-parallel pieces that need no MPI: synchronised batch norm (two threads stand in for
 * two ranks, joined by a barrier-based sum as rc_bn_allreduce) equals batch norm over the whole batch, and
 * the single-process stubs and param hash of src/dist. The multi-process tests are tests/test_mpi.sh. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <string.h>

#include "core/graph.h"
#include "base/rng.h"
#include "dist/dist.h"
#include "ops/ops.h"
#include "test.h"

/* ---- a two-party all-reduce over threads ---- */
static pthread_barrier_t bar;
static double *posted[2];
static _Thread_local int my_rank;
static int calls[2];

static void thread_allreduce(double *s, int n) {
    posted[my_rank] = s;
    calls[my_rank]++;
    pthread_barrier_wait(&bar);
    double *sum = malloc((size_t)n * sizeof(double));
    for (int i = 0; i < n; i++) sum[i] = posted[0][i] + posted[1][i];
    pthread_barrier_wait(&bar); /* both have read before either writes */
    memcpy(s, sum, (size_t)n * sizeof(double));
    free(sum);
}

typedef struct {
    int rank, n, c, hw; /* n: this rank's images */
    const float *x, *dy, *gamma, *beta;
    float *y, *dx, *mean, *rstd, *rm, *rv, *dgamma, *dbeta;
} bn_job;

static void *run_bn(void *arg) {
    bn_job *j = arg;
    my_rank = j->rank;
    rc_batchnorm_forward(j->n, j->c, j->hw, j->x, j->gamma, j->beta, j->y, j->mean, j->rstd, j->rm, j->rv, 0.1f,
                         1e-5f, 1);
    rc_batchnorm_backward(j->n, j->c, j->hw, j->x, j->gamma, j->mean, j->rstd, j->dy, j->dx, 0, j->dgamma, j->dbeta,
                          1);
    return NULL;
}

static float *fill(size_t n, rc_rng *r, float scale, float shift) {
    float *p = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = shift + scale * rc_rng_normal(r);
    return p;
}

/* N images split 2 ways; the "ranks" see dy scaled by 2 (each rank's loss is a mean over N/2 images). */
static void check_bn_sync(int N, int c, int hw) {
    rc_rng r;
    rc_rng_seed(&r, 42 + (uint64_t)c);
    size_t per = (size_t)c * hw, tot = (size_t)N * per, half = tot / 2;
    float *x = fill(tot, &r, 2.0f, 0.5f), *dy = fill(tot, &r, 1.0f, 0.1f);
    float *gamma = fill((size_t)c, &r, 0.3f, 1.0f), *beta = fill((size_t)c, &r, 0.3f, 0.0f);
    float *y = calloc(tot, 4), *dx = calloc(tot, 4), *mean = calloc((size_t)c, 4), *rstd = calloc((size_t)c, 4);
    float *rm = calloc((size_t)c, 4), *rv = calloc((size_t)c, 4), *dg = calloc((size_t)c, 4), *db = calloc((size_t)c, 4);
    for (int i = 0; i < c; i++) rv[i] = 1.0f;
    /* the whole batch in one process */
    rc_batchnorm_forward(N, c, hw, x, gamma, beta, y, mean, rstd, rm, rv, 0.1f, 1e-5f, 1);
    rc_batchnorm_backward(N, c, hw, x, gamma, mean, rstd, dy, dx, 0, dg, db, 1);
    /* two halves joined by the hook */
    float *dy2 = malloc(tot * 4), *ys = calloc(tot, 4), *dxs = calloc(tot, 4);
    for (size_t i = 0; i < tot; i++) dy2[i] = 2.0f * dy[i];
    bn_job jobs[2];
    pthread_t th[2];
    calls[0] = calls[1] = 0;
    pthread_barrier_init(&bar, NULL, 2);
    rc_bn_allreduce = thread_allreduce;
    for (int k = 0; k < 2; k++) {
        bn_job *j = &jobs[k];
        j->rank = k, j->n = N / 2, j->c = c, j->hw = hw;
        j->x = x + k * half, j->dy = dy2 + k * half, j->gamma = gamma, j->beta = beta;
        j->y = ys + k * half, j->dx = dxs + k * half;
        j->mean = calloc((size_t)c, 4), j->rstd = calloc((size_t)c, 4), j->rm = calloc((size_t)c, 4);
        j->rv = malloc((size_t)c * 4), j->dgamma = calloc((size_t)c, 4), j->dbeta = calloc((size_t)c, 4);
        for (int i = 0; i < c; i++) j->rv[i] = 1.0f;
        pthread_create(&th[k], NULL, run_bn, j);
    }
    for (int k = 0; k < 2; k++) pthread_join(th[k], NULL);
    rc_bn_allreduce = NULL;
    pthread_barrier_destroy(&bar);
    CHECK(calls[0] == 3 && calls[1] == 3, "expected 3 reductions per rank (2 forward, 1 backward), got %d %d", calls[0],
          calls[1]);
    char what[96];
    for (size_t i = 0; i < tot; i++) {
        snprintf(what, sizeof what, "c=%d y[%zu]", c, i);
        CHECK_CLOSE(ys[i], y[i], 1e-5, 1e-5, what);
        snprintf(what, sizeof what, "c=%d dx[%zu] (x2)", c, i);
        CHECK_CLOSE(dxs[i], 2.0f * dx[i], 1e-4, 1e-5, what);
    }
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < c; i++) {
            snprintf(what, sizeof what, "c=%d rank %d mean[%d]", c, k, i);
            CHECK_CLOSE(jobs[k].mean[i], mean[i], 1e-5, 1e-6, what);
            CHECK_CLOSE(jobs[k].rstd[i], rstd[i], 1e-5, 1e-6, what);
            snprintf(what, sizeof what, "c=%d rank %d running stats[%d]", c, k, i);
            CHECK_CLOSE(jobs[k].rm[i], rm[i], 1e-5, 1e-6, what);
            CHECK_CLOSE(jobs[k].rv[i], rv[i], 1e-5, 1e-6, what);
        }
    for (int i = 0; i < c; i++) { /* local param gradients: their sum over ranks / 2 is the full batch's */
        snprintf(what, sizeof what, "c=%d dgamma[%d]", c, i);
        CHECK_CLOSE((jobs[0].dgamma[i] + jobs[1].dgamma[i]) / 2, dg[i], 1e-4, 1e-5, what);
        snprintf(what, sizeof what, "c=%d dbeta[%d]", c, i);
        CHECK_CLOSE((jobs[0].dbeta[i] + jobs[1].dbeta[i]) / 2, db[i], 1e-4, 1e-5, what);
    }
    for (int k = 0; k < 2; k++) {
        bn_job *j = &jobs[k];
        free(j->mean), free(j->rstd), free(j->rm), free(j->rv), free(j->dgamma), free(j->dbeta);
    }
    free(x), free(dy), free(gamma), free(beta), free(y), free(dx), free(mean), free(rstd);
    free(rm), free(rv), free(dg), free(db), free(dy2), free(ys), free(dxs);
}

static void test_bn_sync_equals_full_batch(void) {
    check_bn_sync(8, 5, 7);    /* partial sums on the stack */
    check_bn_sync(4, 600, 3);  /* more than 512 channels: heap buffer */
    check_bn_sync(6, 3, 64);   /* odd images per "rank" */
}

/* Without a launcher everything is one process and every collective is the identity. */
static void test_single_process_stubs(void) {
    CHECK(rc_dist_init(NULL, NULL) == RC_OK, "rc_dist_init: %s", rc_error());
    CHECK(rc_dist_size() == 1 && rc_dist_rank() == 0, "size %d rank %d", rc_dist_size(), rc_dist_rank());
    double v[3] = {1.5, -2, 7};
    CHECK(rc_dist_sum_f64(v, 3) == RC_OK && v[0] == 1.5 && v[1] == -2 && v[2] == 7, "sum changed values");
    rc_graph g;
    rc_graph_init(&g, 2);
    int shape[2] = {3, 5};
    rc_graph_param(&g, "w", 2, shape, RC_PARAM_WEIGHT);
    rc_graph_param(&g, "rm", 1, shape, RC_PARAM_BUFFER);
    CHECK(rc_graph_plan(&g) == RC_OK, "plan: %s", rc_error());
    rc_graph_init_params(&g, 7);
    for (size_t i = 0; i < g.param_floats; i++) g.pg[i] = (float)i * 0.25f;
    CHECK(rc_dist_allreduce_grads(&g) == RC_OK, "allreduce: %s", rc_error());
    CHECK(g.pg[5] == 1.25f, "one rank: gradients unchanged (got %g)", (double)g.pg[5]);
    rc_dist_bn_sync(1);
    CHECK(rc_bn_allreduce == NULL, "one rank: no batch-norm hook");
    CHECK(rc_dist_check_params(&g, 1, 1) == RC_OK, "check: %s", rc_error());
    /* the hash sees one bit of a weight, of the optimizer state, and of a buffer only when asked */
    uint64_t h0 = rc_dist_param_hash(&g, 0), h0b = rc_dist_param_hash(&g, 1);
    CHECK(h0 == rc_dist_param_hash(&g, 0), "hash not deterministic");
    float keep = g.params[0].w[4];
    g.params[0].w[4] = nextafterf(keep, 1e9f);
    CHECK(rc_dist_param_hash(&g, 0) != h0, "hash blind to a one-ulp weight change");
    g.params[0].w[4] = keep;
    g.params[0].v[14] = 1e-30f;
    CHECK(rc_dist_param_hash(&g, 0) != h0, "hash blind to optimizer state");
    g.params[0].v[14] = 0;
    g.params[1].w[0] += 1.0f;
    CHECK(rc_dist_param_hash(&g, 0) == h0, "buffers hashed though not asked");
    CHECK(rc_dist_param_hash(&g, 1) != h0b, "buffers not hashed though asked");
    rc_graph_free(&g);
    rc_dist_finalize();
}

int main(void) {
    RUN_TEST(test_bn_sync_equals_full_batch);
    RUN_TEST(test_single_process_stubs);
    TEST_MAIN_END();
}
