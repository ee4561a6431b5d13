/* graph_mem.c — the graph's memory: the memory limit checked before anything is allocated, the params'
 * blocks and then the plan (graph_plan.c) behind rc_graph_plan, params' initialisation, and freeing it all. */
#define _POSIX_C_SOURCE 200809L /* sysconf (memory limit) */
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "base/rng.h"
#include "graph_plan.h"

void rc_graph_free(rc_graph *g) {
    free(g->params);
    free(g->tensors);
    free(g->nodes);
    rc_afree(g->pw);
    rc_afree(g->pg);
    rc_afree(g->pm);
    rc_afree(g->pv);
    rc_afree(g->act);
    rc_afree(g->grad);
    rc_afree(g->save);
    rc_afree(g->work);
    rc_afree(g->sums);
    rc_afree(g->bnpre);
    rc_afree(g->isum);
    free(g->fold);
    if (!g->eval_shared) rc_afree(g->eval_arena);
    free(g->xnodes);
    free(g->seg_start);
    rc_sched_free(g);
    memset(g, 0, sizeof *g);
}

/* ---- memory limit: absurd configs are refused before anything is allocated ---------------------- */

/* The limit in bytes (0: none known): RECUR_MAX_MEMORY_MB (MB = 2^20 bytes) if set, else 3/4 of physical
 * memory. *why says which. Fails on a malformed RECUR_MAX_MEMORY_MB. */
static rc_status plan_limit(double *limit, char *why, size_t n) {
    const char *e = getenv("RECUR_MAX_MEMORY_MB");
    *limit = 0;
    if (e && *e) {
        char *end;
        double mb = strtod(e, &end);
        if (*end || !(mb > 0) || !isfinite(mb))
            return rc_fail("RECUR_MAX_MEMORY_MB='%.40s' is not a positive number of megabytes", e);
        *limit = mb * 1048576.0;
        snprintf(why, n, "RECUR_MAX_MEMORY_MB=%.40s", e);
        return RC_OK;
    }
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    if (pages > 0 && psz > 0) {
        *limit = 0.75 * (double)pages * (double)psz;
        snprintf(why, n, "3/4 of the %.0f MB of physical memory; set RECUR_MAX_MEMORY_MB to change it",
                 (double)pages * (double)psz / 1048576.0);
    }
    return RC_OK;
}

rc_status rc_graph_check_memory(const rc_graph *g, double param_bytes, double act_bytes, double other_bytes) {
    double limit;
    char why[160] = "";
    if (plan_limit(&limit, why, sizeof why)) return RC_ERR;
    double need = param_bytes + act_bytes + other_bytes;
    if (limit > 0 && need > limit && act_bytes <= 0)
        return rc_fail("the model's params, gradients and optimizer state need about %.6g MB, over the memory limit "
                       "of %.6g MB (%s); lower the channels, the areas or the untied steps",
                       need / 1048576.0, limit / 1048576.0, why);
    if (limit > 0 && need > limit)
        return rc_fail("the model needs about %.6g MB at batch %d (params, gradients and optimizer state %.6g MB; "
                       "activations and their gradients %.6g MB), over the memory limit of %.6g MB (%s); lower the "
                       "batch, channels, iterations or input size%s",
                       need / 1048576.0, g->batch, param_bytes / 1048576.0, act_bytes / 1048576.0, limit / 1048576.0,
                       why, act_bytes > 0 && g->recompute <= 0 ? ", or set train.recompute for a long unroll" : "");
    return RC_OK;
}

rc_status rc_graph_plan(rc_graph *g) {
    RC_ASSERT(!g->planned);
    rc_flush_denormals();
    /* params: one block per category; their size is checked against the memory limit first (in double:
     * no config can overflow it), the activations' once the plan has sized the arena (graph_plan.c) */
    size_t pf = 0;
    double pbytes = 0;
    for (int i = 0; i < g->nparams; i++) {
        g->params[i].off = pf;
        pf += (g->params[i].numel + 15) / 16 * 16;
        pbytes += 16.0 * (double)((g->params[i].numel + 15) / 16 * 16);
    }
    if (rc_graph_check_memory(g, pbytes, 0, 0)) return RC_ERR;
    /* unshared activations + gradients, an upper bound: beyond 2^60 bytes the plan's size_t offsets could
     * overflow, so such a config stops here whatever the limit says */
    double abytes = 0;
    for (int i = 0; i < g->ntensors; i++)
        abytes += 8.0 * ((double)g->batch * g->tensors[i].c * g->tensors[i].h * g->tensors[i].w + 15);
    if (abytes > 0x1p60) {
        if (rc_graph_check_memory(g, pbytes, abytes, 0)) return RC_ERR;
        return rc_fail("the model needs up to %.6g MB of activations at batch %d, more than this build can plan; lower "
                       "the batch, channels, iterations or input size", abytes / 1048576.0, g->batch);
    }
    g->param_floats = pf;
    g->pw = rc_aalloc_floats(pf);
    g->pg = rc_aalloc_floats(pf);
    g->pm = rc_aalloc_floats(pf);
    g->pv = rc_aalloc_floats(pf);
    if (!g->pw || !g->pg || !g->pm || !g->pv)
        return rc_fail("cannot allocate %.1f MB of params for the model", 16.0 * pf / 1e6);
    for (int i = 0; i < g->nparams; i++) {
        rc_param *p = &g->params[i];
        p->w = g->pw + p->off;
        p->g = g->pg + p->off;
        p->m = g->pm + p->off;
        p->v = g->pv + p->off;
    }
    /* fusion, layouts, gradient write flags, recomputation segments, and one arena for activations and
     * gradients with offsets by liveness (graph_plan.c) */
    if (rc_graph_make_plan(g)) return RC_ERR;
    g->planned = 1;
    return RC_OK;
}

void rc_graph_init_params(rc_graph *g, uint64_t seed) {
    RC_ASSERT(g->planned);
    rc_rng rng;
    rc_rng_seed(&rng, seed);
    for (int i = 0; i < g->nparams; i++) {
        rc_param *p = &g->params[i];
        for (size_t j = 0; j < p->numel; j++) {
            if (p->init_std > 0)
                p->w[j] = p->init_std * rc_rng_normal(&rng);
            else if (p->init_uniform > 0)
                p->w[j] = p->init_uniform * (2.0f * rc_rng_uniform(&rng) - 1.0f);
            else
                p->w[j] = p->init_const;
        }
    }
    memset(g->pm, 0, g->param_floats * sizeof(float));
    memset(g->pv, 0, g->param_floats * sizeof(float));
}
