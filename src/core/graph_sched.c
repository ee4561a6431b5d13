/* graph_sched.c — the chunked schedule: forward and backward run as waves of exec nodes, each wave over
 * the batch in micro-batches (a micro-batch runs every node of the wave before the next one starts), so
 * that what one node writes is still in cache when the next reads it. A oneDNN Winograd convolution of
 * 32 channels at 28x28 runs about 1.4x faster on a batch whose input and output are in the last-level
 * cache than on one that streams from memory (bench/conv_bench.c, docs/PERFORMANCE.md).
 *
 * Only batch norm in training couples the images of a batch: its statistics (forward) and its gradient
 * sums (backward). A fused batch norm therefore splits into phases: the partial sums of each
 * micro-batch at the end of one wave (right after the node that wrote its input), the reduction between
 * waves (whole batch, per channel), the normalisation at the start of the next wave. Micro-batches are
 * unions of the fixed batch chunks of the statistics (ops.h), so the statistics are bit-identical to
 * an unchunked run's. Nodes with no micro-batch form (reference batch norm, the ConvLSTM backward) run
 * alone over the whole batch. The memory plan widens every live interval to the waves it touches
 * (rc_sched_widen), since inside a wave all micro-batches of all its nodes' tensors are in flight. */
#include "graph_plan.h"
#include "op_table.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_BYTES (5u << 19) /* a micro-batch's largest tensor stays at or under 2.5 MB */

/* The last-level cache: rc_sched_llc_bytes (tests), else RECUR_LLC_MB (benchmarks), else what Linux
 * reports for cpu0's level-3 cache, else 32 MB. A whole-batch tensor above a quarter of it is taken to
 * stream from memory (hot_bytes). The rule was set on a Zen 5 with 32 MB of L3 (8 MB: the 12.8 MB
 * activations of a 32-channel 28x28 area at batch 128 ran 1.06-1.11x faster in micro-batches); on an
 * Intel Xeon reporting 480 MB the same nets trained 1.08-1.15x faster over the whole batch with the
 * threads spinning between parallel regions and 1.24-1.46x with them sleeping (OMP_WAIT_POLICY=passive,
 * where every micro-batch of every node pays a wake-up), in less memory (docs/PERFORMANCE.md). */
size_t rc_sched_llc_bytes = 0;

static size_t llc_bytes(void) {
    if (rc_sched_llc_bytes) return rc_sched_llc_bytes;
    static size_t found; /* read once (plans are made on one thread) */
    if (found) return found;
    const char *e = getenv("RECUR_LLC_MB");
    double mb = e && *e ? atof(e) : 0;
    if (mb > 0) return found = (size_t)(mb * 1048576.0);
    FILE *f = fopen("/sys/devices/system/cpu/cpu0/cache/index3/size", "r");
    unsigned long v = 0;
    char unit = 0;
    if (f) {
        if (fscanf(f, "%lu%c", &v, &unit) < 1) v = 0;
        fclose(f);
    }
    size_t b = unit == 'K' ? (size_t)v << 10 : unit == 'M' ? (size_t)v << 20 : (size_t)v;
    return found = b >= ((size_t)1 << 20) ? b : (size_t)32 << 20;
}

static double hot_bytes(void) { return (double)llc_bytes() / 4; }

typedef struct {
    rc_sched *s;
    int cap_e, cap_w, open; /* open: the last wave takes more entries */
} builder;

static void push_entry(builder *b, int node, int phase) {
    rc_sched *s = b->s;
    if (!b->open) {
        if (s->nw == b->cap_w) {
            b->cap_w = b->cap_w ? 2 * b->cap_w : 16;
            s->w = rc_xrealloc(s->w, (size_t)b->cap_w * sizeof *s->w);
        }
        s->w[s->nw].first = s->ne;
        s->w[s->nw].count = 0;
        s->w[s->nw].whole = 0;
        s->nw++;
        b->open = 1;
    }
    if (s->ne == b->cap_e) {
        b->cap_e = b->cap_e ? 2 * b->cap_e : 64;
        s->e = rc_xrealloc(s->e, (size_t)b->cap_e * sizeof *s->e);
    }
    s->e[s->ne].node = node;
    s->e[s->ne].phase = phase;
    s->ne++;
    s->w[s->nw - 1].count++;
}

/* a wave of its own over the whole batch */
static void push_whole(builder *b, int node, int phase) {
    b->open = 0;
    push_entry(b, node, phase);
    b->s->w[b->s->nw - 1].whole = 1;
    b->open = 0;
}

/* Node i: split into STATS | FINISH (a whole wave) | APPLY, or one entry of the open wave, or a wave of its
 * own over the whole batch. */
static void push_node(builder *b, int i, int split, int chunkable) {
    if (split) {
        push_entry(b, i, RC_PH_STATS);
        push_whole(b, i, RC_PH_FINISH);
        push_entry(b, i, RC_PH_APPLY);
    } else if (chunkable) {
        push_entry(b, i, RC_PH_ALL);
    } else {
        push_whole(b, i, RC_PH_ALL);
    }
}

static void build_forward(const rc_graph *g, rc_sched *s) {
    builder b = {s, 0, 0, 0};
    for (int i = 0; i < g->nxnodes; i++) {
        const rc_xnode *n = &g->xnodes[i]; /* batch-norm statistics inside (forward): STATS | FINISH | APPLY */
        push_node(&b, i, rc_op_fwd_phased(n), rc_op_defs[n->op].fwd_chunk);
    }
}

/* a fused batch norm's backward splits at its gradient sums (STATS) */
static void build_backward(const rc_graph *g, rc_sched *s) {
    builder b = {s, 0, 0, 0};
    for (int i = g->nxnodes - 1; i >= 0; i--) {
        const rc_xnode *n = &g->xnodes[i];
        for (int p = n->remat_head; p >= 0; p = g->xnodes[p].remat_link) push_entry(&b, p, RC_PH_REPLAY);
        if (n->active) push_node(&b, i, rc_op_defs[n->op].bwd_phased, rc_op_defs[n->op].bwd_chunk);
    }
}

int rc_sched_chunks = 0;

/* Micro-batches pay where a convolution reads what an earlier node of its wave wrote (forward: its input;
 * backward: its output's gradient): then that node's micro-batch is still in cache. A convolution whose
 * input an earlier wave wrote (a lockstep unroll's previous states), or whose whole-batch input is small
 * enough to stay in cache anyway, only gets smaller calls. So a wave runs in micro-batches when the
 * convolutions it feeds this way outweigh (in FLOPs) the others; otherwise it runs once over the whole
 * batch, phases and all. Only a batch norm (fused), a ConvLSTM cell or a convolution counts as the
 * feeding node: an elementwise node between a whole-batch wave and a convolution (the ConvLSTM's gate
 * input add in backward) only moves the read from memory, and counting it chunked the backward of
 * configs/convlstm.cfg for about 3% more speed and 66 MB more arena (docs/PERFORMANCE.md). */
static int writes(const rc_graph *g, const rc_entry *e, int t, int backward) {
    const rc_xnode *n = &g->xnodes[e->node];
    if (!rc_op_defs[n->op].feeds) return 0; /* see above */
    if (!backward) return (e->phase == RC_PH_ALL || e->phase == RC_PH_APPLY) && (n->out == t || n->out2 == t);
    if (e->phase == RC_PH_REPLAY || e->phase == RC_PH_FINISH) return 0;
    for (int j = 0; j < n->nin; j++)
        if (n->in[j] == t) return 1; /* its backward writes t's gradient */
    return 0;
}

int rc_sched_waves = RC_SCHED_AUTO;

static void pick_whole(const rc_graph *g, rc_sched *s, int backward) {
    int alt = 0;
    const double llc4 = hot_bytes();
    for (int w = 0; w < s->nw; w++) {
        rc_wave *wv = &s->w[w];
        if (wv->whole || rc_sched_waves == RC_SCHED_ALL) continue;
        if (rc_sched_waves == RC_SCHED_ALTERNATE) {
            wv->whole = alt;
            alt = !alt;
            continue;
        }
        double hot = 0, cold = 0;
        for (int k = wv->first; k < wv->first + wv->count; k++) {
            const rc_xnode *n = &g->xnodes[s->e[k].node];
            if (!rc_op_defs[n->op].hot || s->e[k].phase != RC_PH_ALL) continue;
            int t = backward ? n->out : n->in[0], fed = 0;
            for (int j = wv->first; j < k && !fed; j++) fed = writes(g, &s->e[j], t, backward);
            /* a batch of the tensor it reads that fits a quarter of the cache stays there anyway */
            int big = (double)g->batch * rc_tensor_floats(&g->tensors[t]) * sizeof(float) > llc4;
            double f = rc_graph_node_flops(g, n->first);
            if (fed && big)
                hot += f;
            else
                cold += f;
        }
        wv->whole = !(hot > cold);
    }
}

/* Micro-batches: 1 (off) unless the plan is fast, not recomputed, the batch has the 8 fixed chunks of the
 * statistics, and some tensor of the batch exceeds CHUNK_BYTES; then 2, 4 or 8, the fewest that bring
 * the largest tensor's micro-batch under it. */
static int can_chunk(const rc_graph *g, int allow) { return allow && g->fast && g->recompute <= 0 && g->batch >= 8; }

static int size_chunks(const rc_graph *g, int allow) {
    if (!can_chunk(g, allow)) return 1;
    size_t big = 0;
    for (int t = 0; t < g->ntensors; t++)
        if (!g->tensors[t].dead) big = RC_MAX(big, rc_tensor_floats(&g->tensors[t]) * sizeof(float));
    int m = 1;
    while (m < 8 && (double)big * g->batch / m > (double)CHUNK_BYTES) m *= 2;
    return m;
}

/* The count: size_chunks, or rc_sched_chunks (tests) / RECUR_CHUNKS (benchmarks) = m (1, 2, 4 or 8) where
 * chunking is possible. The eval pipeline's count starts from it (graph_plan.c eval_chunks) whether or not
 * any training wave then runs in micro-batches. */
void rc_sched_make(rc_graph *g, int allow) {
    rc_sched_free(g);
    const char *e = getenv("RECUR_CHUNKS");
    int m = rc_sched_chunks ? rc_sched_chunks : e && *e ? atoi(e) : 0;
    g->nchunk = can_chunk(g, allow) && (m == 1 || m == 2 || m == 4 || m == 8) ? m : size_chunks(g, allow);
    g->eval_base = g->nchunk;
    if (g->nchunk == 1) return;
    g->chunk_b = rc_xmalloc((size_t)(g->nchunk + 1) * sizeof(int));
    for (int j = 0; j <= g->nchunk; j++) g->chunk_b[j] = rc_bn_chunk_start(g->batch, j * 8 / g->nchunk);
    build_forward(g, &g->fsched);
    build_backward(g, &g->bsched);
    pick_whole(g, &g->fsched, 0);
    pick_whole(g, &g->bsched, 1);
    if (!rc_sched_chunked(&g->fsched) && !rc_sched_chunked(&g->bsched))
        rc_sched_free(g); /* nothing gains: the plain node-by-node loops, nothing widened */
}

int rc_sched_chunked(const rc_sched *s) {
    int n = 0;
    for (int w = 0; w < s->nw; w++) n += !s->w[w].whole;
    return n;
}

void rc_sched_free(rc_graph *g) {
    free(g->fsched.e);
    free(g->fsched.w);
    free(g->bsched.e);
    free(g->bsched.w);
    free(g->chunk_b);
    memset(&g->fsched, 0, sizeof g->fsched);
    memset(&g->bsched, 0, sizeof g->bsched);
    g->chunk_b = NULL;
    g->nchunk = 1;
}

/* Times as make_memory's: forward node i at i, backward node i at B[i], the rematerialisation of node p
 * at RM[p]; entries run in time order. Every time inside a chunked wave's span [first, last time of its
 * entries] maps to the whole span. */
static void widen_sched(const rc_sched *s, int backward, const int *B, const int *RM, int ntimes, int *lo, int *hi) {
    for (int w = 0; w < s->nw; w++) {
        if (s->w[w].whole) continue;
        int t0 = 0x3fffffff, t1 = -1;
        for (int k = s->w[w].first; k < s->w[w].first + s->w[w].count; k++) {
            const rc_entry *e = &s->e[k];
            int t = !backward ? e->node : e->phase == RC_PH_REPLAY ? RM[e->node] : B[e->node];
            t0 = RC_MIN(t0, t);
            t1 = RC_MAX(t1, t);
        }
        RC_ASSERT(t0 >= 0 && t1 < ntimes);
        for (int t = t0; t <= t1; t++) {
            lo[t] = RC_MIN(lo[t], t0);
            hi[t] = RC_MAX(hi[t], t1);
        }
    }
}

void rc_sched_widen(const rc_graph *g, const int *B, const int *RM, int ntimes, int *lo, int *hi) {
    for (int t = 0; t < ntimes; t++) lo[t] = hi[t] = t;
    if (g->nchunk <= 1) return;
    widen_sched(&g->fsched, 0, B, RM, ntimes, lo, hi);
    widen_sched(&g->bsched, 1, B, RM, ntimes, lo, hi);
}
