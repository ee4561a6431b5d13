/* graph_plan.c — the execution plan behind rc_graph_plan: fusion of the builder's nodes into exec nodes
 * (the fused forms each op's table entry lists, graph_fuse.c), activation layouts (blocked nChw16c where
 * every op touching a tensor supports it), gradient overwrite/accumulate flags, recomputation segments
 * (train.recompute), and one arena for activations and gradients with offsets assigned by liveness. */
#include <string.h>

#include "graph_plan.h"
#include "graph_fuse.h"
#include "op_table.h"
#include "ops/ops.h"

int rc_plan_opts =
    RC_PLAN_FUSE | RC_PLAN_BLOCKED | RC_PLAN_SHARE | RC_PLAN_REMAT | RC_PLAN_CHUNK | RC_PLAN_EVAL | RC_PLAN_STATS;

static int *producers(const rc_graph *g);

static void make_xnodes(rc_graph *g, int fast, int fuse) {
    rc_cons cs;
    rc_cons_of_nodes(g, &cs);
    g->xnodes = rc_xcalloc((size_t)g->nnodes + 1, sizeof(rc_xnode));
    g->nxnodes = 0;
    for (int i = 0; i < g->nnodes; i++) {
        const rc_node *n = &g->nodes[i];
        rc_xnode x;
        int last = -1;
        if (fast) /* the fused forms that start at this op, in the table's order */
            for (const rc_fuse_fn *f = rc_op_defs[n->op].fuse; *f && last < 0; f++) last = (*f)(g, &cs, i, fuse, &x);
        if (last < 0) {
            rc_xnode_from(n, &x);
            last = i;
        }
        x.efuse = x.eabs = x.bnpre = -1;
        x.pre_off = 0;
        x.pre_ready = 0;
        x.eshift = 0;
        x.first = i;
        x.last = last;
        x.step = n->step;
        g->xnodes[g->nxnodes++] = x;
        i = last;
    }
    rc_cons_free(&cs);
}

/* The eval pipeline (make_eval_memory) folds a batch norm into the convolutions that make its input, so
 * that its own pass over the activation disappears from inference: BN(s) = sc s + (beta - mean sc) is
 * linear in s, so where s is a sum of convolutions (conv, conv + add, upsample + add of a convolution's
 * output: an area's bottom-up, lateral and top-down terms) each of them runs with its weights and bias
 * scaled by sc, one of them adds the shift, and the node that makes s (the root) writes the batch norm's
 * output instead, with the relu (and for a lone convolution, the batch norm's residual add) in its
 * epilogue. Every tensor of the sum must be read only by the next node of the sum. In training nothing
 * changes: the batch statistics are not known before the convolutions have run. */
#define EVAL_SUM_MAX 16 /* nodes of one folded sum */

typedef struct {
    int n, node[EVAL_SUM_MAX];
} eval_sum;

/* Adds the nodes that make tensor t (and the sum's terms below it) to f; 0 when t is not such a sum. */
static int eval_sum_collect(const rc_graph *g, const rc_cons *cs, const int *prod, int t, eval_sum *f) {
    const rc_tensor *x = &g->tensors[t];
    if (prod[t] < 0 || rc_cons_count(cs, t) != 1 || x->is_input || x->is_output || x->keep || f->n == EVAL_SUM_MAX)
        return 0;
    const rc_xnode *p = &g->xnodes[prod[t]];
    if (p->out != t) return 0;
    f->node[f->n++] = prod[t];
    if (p->op == RC_OP_CONV) return p->nin == 1 || eval_sum_collect(g, cs, prod, p->in[1], f);
    if (p->op == RC_OP_UPADD)
        return eval_sum_collect(g, cs, prod, p->in[1], f) && eval_sum_collect(g, cs, prod, p->in[0], f);
    return 0;
}

static void make_eval_fusion(rc_graph *g) {
    rc_cons cs;
    rc_cons_of_xnodes(g, &cs);
    int *prod = producers(g);
    g->fold_floats = 0;
    for (int i = 0; i < g->nxnodes; i++) {
        rc_xnode *b = &g->xnodes[i];
        if (b->op != RC_OP_BNACT || b->param[2] < 0 || b->param[3] < 0) continue;
        eval_sum f = {0, {0}};
        if (!eval_sum_collect(g, &cs, prod, b->in[0], &f)) continue;
        const rc_xnode *root = &g->xnodes[f.node[0]];
        if (b->nin > 1 && (root->op != RC_OP_CONV || root->nin > 1)) continue; /* one residual: the conv's epilogue's */
        b->eabs = f.node[0];
        int shift = 1;
        for (int j = 0; j < f.n; j++) {
            rc_xnode *c = &g->xnodes[f.node[j]];
            c->efuse = i;
            if (c->op != RC_OP_CONV) continue;
            c->eshift = shift; /* the first convolution adds the batch norm's shift */
            shift = 0;
            c->fold_off = g->fold_floats;
            g->fold_floats += g->params[c->param[0]].numel + (size_t)g->tensors[c->out].c; /* weights, bias */
        }
    }
    free(prod);
    rc_cons_free(&cs);
}

/* Training statistics in the producer's epilogue: each batch norm (BNACT, or the one inside an LSTM node)
 * whose input a convolution writes (with the add fused after it or not) on blocked activations by recur's
 * kernels, or an upsample + add (a top-down term added last, either layout), gets its statistics summed
 * there (rc_conv2d_forward_stats, rc_upsample_add_forward_stats); the batch norm then loads them in place
 * of its statistics pass. The producer's output is the batch norm's input, whole: no other node writes it.
 * Returns the doubles of the per-image sums the largest such producer needs (g->isum); sets
 * g->bnpre_doubles. */
static size_t make_stats_fusion(rc_graph *g) {
    int *prod = producers(g);
    size_t pre = 0, isum = 0;
    for (int i = 0; i < g->nxnodes; i++) {
        rc_xnode *b = &g->xnodes[i];
        const int p = b->op == RC_OP_BNACT || (b->op == RC_OP_LSTM && b->bn) ? prod[b->in[0]] : -1;
        if (p < 0 || (g->xnodes[p].op != RC_OP_CONV && g->xnodes[p].op != RC_OP_UPADD) || g->xnodes[p].bnpre >= 0)
            continue;
        rc_xnode *c = &g->xnodes[p];
        if (c->op == RC_OP_CONV) {
            rc_conv_dims d = rc_xnode_conv_dims(g, c, g->batch);
            if (rc_conv2d_select(&d, c->nin > 1 ? RC_CONV_FWD_ADD : RC_CONV_FWD) != RC_CONV_IMPL_OWN) continue;
        }
        const int C = g->tensors[b->in[0]].c;
        c->bnpre = i;
        b->pre_off = pre;
        pre += rc_bn_pre_doubles(C);
        isum = RC_MAX(isum, (size_t)g->batch * 2 * (size_t)C);
    }
    free(prod);
    g->bnpre_doubles = pre;
    return isum;
}

/* ---------------------------------------------------------------- layouts */

static int same_layout_all(rc_graph *g, const int *ts, int n) {
    int blk = 1;
    for (int k = 0; k < n; k++)
        if (g->tensors[ts[k]].layout != RC_LAYOUT_BLK16) blk = 0;
    if (blk) return 0;
    int changed = 0;
    for (int k = 0; k < n; k++)
        if (g->tensors[ts[k]].layout != RC_LAYOUT_NCHW) {
            g->tensors[ts[k]].layout = RC_LAYOUT_NCHW;
            changed = 1;
        }
    return changed;
}

/* The operands of exec node n that must share a layout, by its table entry, in ts; g->input among them
 * makes them plain. Returns how many. */
static int layout_group(const rc_graph *g, const rc_xnode *n, int *ts) {
    const rc_op_def *d = &rc_op_defs[n->op];
    int k = 0;
    if (d->layout_fn) {
        k = d->layout_fn(g, n, ts);
    } else if (d->layout != RC_LAY_ANY) {
        for (int j = 0; j < n->nin; j++) ts[k++] = n->in[j];
        ts[k++] = n->out;
        if (d->layout == RC_LAY_PLAIN) ts[k++] = g->input;
        else if (n->out2 >= 0) ts[k++] = n->out2;
    }
    /* channel counts that are not multiples of 16 are blocked with zero padding lanes only where every op
     * keeps the padding zero */
    if (d->pad_zero)
        for (int j = 0, m = k; j < m; j++)
            if (g->tensors[ts[j]].c % 16) ts[k++] = g->input;
    return k;
}

static void make_layouts(rc_graph *g, int blocked) {
    for (int t = 0; t < g->ntensors; t++) {
        rc_tensor *x = &g->tensors[t];
        x->layout = blocked && !x->is_input && !x->is_output && !x->dead && x->h * x->w > 1 ? RC_LAYOUT_BLK16
                                                                                          : RC_LAYOUT_NCHW;
    }
    if (!blocked) return;
    /* constraints to a fixpoint: a group of operands that must agree goes plain if any member is */
    for (int changed = 1; changed;) {
        changed = 0;
        for (int i = 0; i < g->nxnodes; i++) {
            const rc_xnode *n = &g->xnodes[i];
            int ts[2 * RC_MAX_IN + 4];
            changed |= same_layout_all(g, ts, layout_group(g, n, ts));
        }
    }
}

/* ---------------------------------------------------------------- gradient flags */

static void make_grad_flags(rc_graph *g) {
    char *written = rc_xcalloc((size_t)g->ntensors, 1);
    for (int t = 0; t < g->ntensors; t++) written[t] = (char)g->tensors[t].is_output;
    for (int i = g->nxnodes - 1; i >= 0; i--) {
        rc_xnode *n = &g->xnodes[i];
        n->dout_ok = written[n->out];
        n->dout2_ok = n->out2 >= 0 && written[n->out2];
        n->active = n->dout_ok || n->dout2_ok;
        for (int j = 0; j < n->nin; j++) {
            int t = n->in[j];
            n->acc[j] = written[t] ? 1 : 0;
            if (n->active && !g->tensors[t].is_input) written[t] = 1;
        }
    }
    free(written);
}

/* ---------------------------------------------------------------- memory plan */

/* Does exec node n's backward read the value of tensor t? (Its table entry's bits.) */
static int bwd_reads(const rc_xnode *n, int t) {
    if (!n->active) return 0;
    const unsigned r = rc_op_bwd_reads(n);
    for (int j = 0; j < n->nin; j++)
        if ((r & RC_READS_IN(j)) && n->in[j] == t) return 1;
    return ((r & RC_READS_OUT) && n->out == t) || ((r & RC_READS_OUT2) && n->out2 >= 0 && n->out2 == t);
}

#define T_INF 0x3fffffff

typedef struct {
    size_t size, off;
    int niv, iv[2][2]; /* live during [iv[k][0], iv[k][1]] */
    int tensor, grad;
} item;

static int overlap(const item *a, const item *b) {
    for (int i = 0; i < a->niv; i++)
        for (int j = 0; j < b->niv; j++)
            if (a->iv[i][0] <= b->iv[j][1] && b->iv[j][0] <= a->iv[i][1]) return 1;
    return 0;
}

static int cmp_item(const void *pa, const void *pb) {
    const item *a = *(const item *const *)pa, *b = *(const item *const *)pb;
    if (a->size != b->size) return a->size > b->size ? -1 : 1;
    if (a->iv[0][0] != b->iv[0][0]) return a->iv[0][0] < b->iv[0][0] ? -1 : 1;
    return a->tensor * 2 + a->grad < b->tensor * 2 + b->grad ? -1 : 1;
}

static int cmp_off(const void *pa, const void *pb) {
    const item *a = *(const item *const *)pa, *b = *(const item *const *)pb;
    return a->off < b->off ? -1 : a->off > b->off ? 1 : 0;
}

/* Greedy placement, largest first: the lowest offset that no item live at the same time occupies. */
static size_t place(item *items, int n, int share) {
    size_t total = 0;
    item **order = rc_xmalloc((size_t)(n + 1) * sizeof *order), **busy = rc_xmalloc((size_t)(n + 1) * sizeof *busy);
    for (int i = 0; i < n; i++) order[i] = &items[i];
    qsort(order, (size_t)n, sizeof *order, cmp_item);
    for (int i = 0; i < n; i++) {
        item *it = order[i];
        size_t off = 0;
        if (share) {
            int nb = 0;
            for (int j = 0; j < i; j++)
                if (overlap(it, order[j])) busy[nb++] = order[j];
            qsort(busy, (size_t)nb, sizeof *busy, cmp_off);
            for (int j = 0; j < nb; j++) {
                if (busy[j]->off >= off + it->size) break;
                if (busy[j]->off + busy[j]->size > off) off = busy[j]->off + busy[j]->size;
            }
        } else {
            off = total;
        }
        it->off = off;
        if (off + it->size > total) total = off + it->size;
    }
    free(order);
    free(busy);
    return total;
}

/* prod[t]: the exec node that writes tensor t (out or out2), -1 for none; caller frees. */
static int *producers(const rc_graph *g) {
    int *prod = rc_xmalloc((size_t)g->ntensors * sizeof(int));
    for (int t = 0; t < g->ntensors; t++) prod[t] = -1;
    for (int i = 0; i < g->nxnodes; i++) {
        prod[g->xnodes[i].out] = i;
        if (g->xnodes[i].out2 >= 0) prod[g->xnodes[i].out2] = i;
    }
    return prod;
}

/* Segments (train.recompute), run times of every exec node, and each tensor's and gradient's live
 * intervals; then offsets. Returns the arena size in floats. */
static size_t make_memory(rc_graph *g, int share, int remat, int chunk) {
    const int n = g->nxnodes, nt = g->ntensors;
    /* segments: steps [sK, (s+1)K) */
    int *seg = rc_xmalloc((size_t)(n + 1) * sizeof(int));
    g->seg_start = rc_xmalloc((size_t)(n + 2) * sizeof(int));
    g->nseg = 0;
    int prev = -1;
    for (int i = 0; i < n; i++) {
        int s = g->recompute > 0 ? g->xnodes[i].step / g->recompute : 0;
        if (i == 0 || s != prev) g->seg_start[g->nseg++] = i;
        prev = s;
        seg[i] = g->nseg - 1;
    }
    g->seg_start[g->nseg] = n;
    int *prod = producers(g);
    /* transient: produced in a recomputed segment (not the last) and used only inside it */
    char *trans = rc_xcalloc((size_t)nt, 1);
    rc_cons cs;
    rc_cons_of_xnodes(g, &cs);
    if (g->nseg > 1)
        for (int t = 0; t < nt; t++) {
            const rc_tensor *x = &g->tensors[t];
            int p = prod[t];
            if (p < 0 || x->dead || x->is_output || x->keep || x->is_input || seg[p] == g->nseg - 1) continue;
            int inside = 1;
            for (int k = cs.start[t]; k < cs.start[t + 1]; k++)
                if (seg[cs.list[k]] != seg[p]) inside = 0;
            trans[t] = (char)inside;
        }
    for (int i = 0; i < n; i++) {
        rc_xnode *x = &g->xnodes[i];
        x->replay = trans[x->out] || (x->out2 >= 0 && trans[x->out2]);
        x->remat = 0;
        x->remat_head = x->remat_link = -1;
    }
    /* rematerialisation: a batch norm (+ relu) without residual, not otherwise replayed, whose output
     * some backward reads, all its consumers in its segment and none replayed: recompute it right before
     * the first backward that reads it (the consumer latest in forward order) */
    for (int p = 0; remat && p < n; p++) {
        rc_xnode *x = &g->xnodes[p];
        const rc_tensor *y = &g->tensors[x->out];
        if (x->op != RC_OP_BNACT || x->nin != 1 || x->replay || y->is_output || y->keep || !x->active) continue;
        int target = -1, ok = 1;
        for (int k = cs.start[x->out]; k < cs.start[x->out + 1]; k++) {
            int j = cs.list[k];
            if (seg[j] != seg[p] || g->xnodes[j].replay) ok = 0;
            if (bwd_reads(&g->xnodes[j], x->out)) target = RC_MAX(target, j);
        }
        if (!ok || target < 0) continue;
        x->remat = 1;
        x->remat_link = g->xnodes[target].remat_head;
        g->xnodes[target].remat_head = p;
    }
    /* times: forward i; loss n; then per segment, last first: replays, then backward in reverse, each
     * node's rematerialisations just before it (RM) */
    int *R = rc_xmalloc((size_t)(n + 1) * sizeof(int)), *B = rc_xmalloc((size_t)(n + 1) * sizeof(int));
    int *RM = rc_xmalloc((size_t)(n + 1) * sizeof(int));
    int now = n + 1;
    for (int s = g->nseg - 1; s >= 0; s--) {
        for (int i = g->seg_start[s]; i < g->seg_start[s + 1]; i++) R[i] = g->xnodes[i].replay ? now++ : -1;
        for (int i = g->seg_start[s + 1] - 1; i >= g->seg_start[s]; i--) {
            for (int p = g->xnodes[i].remat_head; p >= 0; p = g->xnodes[p].remat_link) RM[p] = now++;
            B[i] = now++;
        }
    }
    /* the chunked schedule, and every time mapped to the span of the waves running then */
    rc_sched_make(g, chunk);
    int *LO = rc_xmalloc((size_t)(now + 1) * sizeof(int)), *HI = rc_xmalloc((size_t)(now + 1) * sizeof(int));
    rc_sched_widen(g, B, RM, now, LO, HI);
    /* items: values, then gradients */
    item *items = rc_xcalloc((size_t)2 * nt + 1, sizeof(item));
    int ni = 0;
    size_t unshared = 0;
    for (int t = 0; t < nt; t++) {
        rc_tensor *x = &g->tensors[t];
        x->goff = RC_NO_GRAD;
        if (x->dead) continue;
        size_t sz = ((size_t)g->batch * rc_tensor_floats(x) + 15) / 16 * 16;
        int p = prod[t];
        item *it = &items[ni];
        it->size = sz;
        it->tensor = t;
        it->grad = 0;
        int P = p >= 0 ? p : -1;
        int fwd_end = P, after = -1; /* forward uses; uses after the forward (replays, backward) */
        for (int k = cs.start[t]; k < cs.start[t + 1]; k++) {
            int j = cs.list[k];
            fwd_end = RC_MAX(fwd_end, j);
            if (g->xnodes[j].replay && R[j] >= 0) after = RC_MAX(after, R[j]);
            if (bwd_reads(&g->xnodes[j], t)) after = RC_MAX(after, B[j]);
        }
        if (p >= 0 && bwd_reads(&g->xnodes[p], t)) after = RC_MAX(after, B[p]);
        if (p >= 0 && g->xnodes[p].replay) after = RC_MAX(after, R[p]); /* the replay rewrites it */
        if (x->is_input || x->is_output || x->keep || p < 0) {
            it->niv = 1;
            it->iv[0][0] = -1;
            it->iv[0][1] = T_INF;
        } else if (g->xnodes[p].remat) {
            int bwd_end = RM[p]; /* its rematerialisation, then the backward reads */
            for (int k = cs.start[t]; k < cs.start[t + 1]; k++)
                if (bwd_reads(&g->xnodes[cs.list[k]], t)) bwd_end = RC_MAX(bwd_end, B[cs.list[k]]);
            if (t == g->xnodes[p].out2) { /* the pooled output rides along: kept, rewritten */
                it->niv = 1;
                it->iv[0][0] = P;
                it->iv[0][1] = RC_MAX(RC_MAX(fwd_end, after), RM[p]);
            } else {
                it->niv = 2;
                it->iv[0][0] = P;
                it->iv[0][1] = fwd_end;
                it->iv[1][0] = RM[p];
                it->iv[1][1] = bwd_end;
            }
        } else if (trans[t]) {
            it->niv = 2;
            it->iv[0][0] = P;
            it->iv[0][1] = fwd_end;
            it->iv[1][0] = R[p];
            it->iv[1][1] = RC_MAX(R[p], after);
        } else {
            it->niv = 1;
            it->iv[0][0] = P;
            it->iv[0][1] = RC_MAX(fwd_end, after);
        }
        ni++;
        unshared += sz;
        /* gradient: first written by the earliest backward among its consumers (or the loss) */
        if (x->is_input) continue;
        int start = x->is_output ? n : T_INF;
        for (int k = cs.start[t]; k < cs.start[t + 1]; k++) {
            int j = cs.list[k];
            if (g->xnodes[j].active) start = RC_MIN(start, B[j]);
        }
        if (start == T_INF) continue;
        item *gi = &items[ni++];
        gi->size = sz;
        gi->tensor = t;
        gi->grad = 1;
        gi->niv = 1;
        gi->iv[0][0] = start;
        /* until its producer's backward has read it; without a producer (a tensor the caller fills, not the
         * image) until the end: every consumer's backward may add to it, and the caller reads it */
        gi->iv[0][1] = p < 0 ? T_INF : g->xnodes[p].active ? RC_MAX(start, B[p]) : start;
        unshared += sz;
    }
    for (int k = 0; k < ni; k++)
        for (int v = 0; v < items[k].niv; v++) {
            int *iv = items[k].iv[v];
            if (iv[0] >= 0 && iv[0] < now) iv[0] = LO[iv[0]];
            if (iv[1] >= 0 && iv[1] < now) iv[1] = HI[iv[1]];
        }
    free(LO);
    free(HI);
    size_t total = place(items, ni, share);
    for (int k = 0; k < ni; k++) {
        rc_tensor *x = &g->tensors[items[k].tensor];
        if (items[k].grad)
            x->goff = items[k].off;
        else
            x->off = items[k].off;
    }
    g->act_floats_unshared = unshared;
    free(items);
    free(R);
    free(B);
    free(RM);
    rc_cons_free(&cs);
    free(trans);
    free(prod);
    free(seg);
    return total;
}

/* ---------------------------------------------------------------- eval pipeline */

/* Inference (eval mode) in micro-batches through the whole graph: batch norm uses running statistics, so no
 * node couples the images of a batch, and each micro-batch can run every node before the next starts
 * (graph_run.c run_eval), its activations staying in cache. Every activation but the input and the readouts
 * gets a slot of one micro-batch in a small arena of its own, shared by liveness over the node order; a
 * batch norm absorbed by its convolution (make_eval_fusion) is born at the convolution. Only where the
 * batch is large enough for micro-batches (g->eval_base > 1), whether or not training runs in them. */
/* The eval pipeline's micro-batches: the count by size (each micro-batch's activations about CHUNK_BYTES,
 * graph_sched.c size_chunks, whether or not a training wave runs in micro-batches) divided by the threads, so that each thread's share of a micro-batch is what
 * one thread would get alone. With 16 images split over 2 threads, each op's parallel region had too little
 * work to pay for its fork and join: configs/topdown.cfg inferred no faster with 2 threads than with 1 at
 * 8 micro-batches, and 1.3x faster at 4 (docs/PERFORMANCE.md). rc_eval_chunks (tests) or RECUR_EVAL_CHUNKS (benchmarks) = m forces m. */
int rc_eval_chunks = 0;

static int eval_chunks(const rc_graph *g) {
    const char *e = getenv("RECUR_EVAL_CHUNKS");
    int m = rc_eval_chunks ? rc_eval_chunks : e && *e ? atoi(e) : g->eval_base / RC_MAX(1, rc_get_threads());
    return RC_MAX(1, RC_MIN(m, g->batch));
}

/* Where in the training arena (act, af floats) `need` floats of the eval pipeline's slots fit without
 * touching a tensor that inference writes or reads there (one without a slot: slot[t] == 0), or
 * (size_t)-1. Inference leaves the rest of act alone, and no training step reads there what an earlier
 * call left (each forward writes its activations before they are read, each backward its gradients), so
 * the pipeline needs no memory of its own. */
static int cmp_iv(const void *a, const void *b) {
    const size_t *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0];
}
static size_t eval_gap(const rc_graph *g, const char *slot, size_t need, size_t af) {
    size_t *iv = rc_xmalloc(((size_t)g->ntensors + 1) * 2 * sizeof(size_t)), n = 0;
    for (int t = 0; t < g->ntensors; t++) {
        const rc_tensor *x = &g->tensors[t];
        if (x->dead || slot[t]) continue;
        iv[2 * n] = x->off;
        iv[2 * n + 1] = x->off + (size_t)g->batch * rc_tensor_floats(x);
        n++;
    }
    qsort(iv, n, 2 * sizeof(size_t), cmp_iv);
    size_t at = 0, found = (size_t)-1;
    for (size_t k = 0; k <= n && found == (size_t)-1; k++) {
        const size_t end = k < n ? iv[2 * k] : af;
        if (end >= at && end - at >= need) found = at;
        if (k < n) at = RC_MAX(at, (iv[2 * k + 1] + 15) / 16 * 16);
    }
    free(iv);
    return found;
}

static void make_eval_memory(rc_graph *g, int on, size_t af) {
    const int nt = g->ntensors;
    for (int t = 0; t < nt; t++) g->tensors[t].ev = NULL;
    if (!g->eval_shared) rc_afree(g->eval_arena);
    g->eval_arena = NULL;
    g->eval_shared = 0;
    g->eval_floats = 0;
    if (!on || g->eval_base <= 1) return;
    g->eval_nchunk = eval_chunks(g);
    const int mb = (g->batch + g->eval_nchunk - 1) / g->eval_nchunk;
    rc_cons cs;
    rc_cons_of_xnodes(g, &cs);
    int *prod = producers(g); /* then a batch norm folded into its conv writes at the conv */
    for (int t = 0; t < nt; t++)
        if (prod[t] >= 0 && g->xnodes[prod[t]].op == RC_OP_BNACT && g->xnodes[prod[t]].eabs >= 0)
            prod[t] = g->xnodes[prod[t]].eabs;
    item *items = rc_xcalloc((size_t)nt + 1, sizeof(item));
    int ni = 0;
    for (int t = 0; t < nt; t++) {
        const rc_tensor *x = &g->tensors[t];
        if (x->dead || x->is_input || x->is_output || x->keep || prod[t] < 0) continue;
        item *it = &items[ni++];
        it->size = ((size_t)mb * rc_tensor_floats(x) + 15) / 16 * 16;
        it->tensor = t;
        it->niv = 1;
        it->iv[0][0] = prod[t];
        it->iv[0][1] = prod[t];
        for (int k = cs.start[t]; k < cs.start[t + 1]; k++) it->iv[0][1] = RC_MAX(it->iv[0][1], cs.list[k]);
    }
    g->eval_floats = place(items, ni, 1);
    char *slot = rc_xcalloc((size_t)nt + 1, 1);
    for (int k = 0; k < ni; k++) slot[items[k].tensor] = 1;
    const size_t gap = eval_gap(g, slot, g->eval_floats, af);
    free(slot);
    g->eval_shared = gap != (size_t)-1;
    g->eval_arena = g->eval_shared ? g->act + gap : rc_aalloc_floats(g->eval_floats + 16);
    free(g->fold);
    g->fold = g->fold_floats ? malloc(g->fold_floats * sizeof(float)) : NULL;
    if (g->fold_floats && !g->fold) { /* no pipeline: inference runs in the training schedule, as it can */
        if (!g->eval_shared) rc_afree(g->eval_arena);
        g->eval_arena = NULL;
        g->eval_shared = 0;
    }
    if (g->eval_arena)
        for (int k = 0; k < ni; k++) g->tensors[items[k].tensor].ev = g->eval_arena + items[k].off;
    free(items);
    free(prod);
    rc_cons_free(&cs);
}

/* ---------------------------------------------------------------- the plan */

/* rc_plan_opts less what RECUR_PLAN turns off ("nofuse,noblocked,noshare,noremat,nochunk,noeval"; for measuring what
 * each part of the plan buys, docs/PERFORMANCE.md) */
static int plan_opts(void) {
    int o = rc_plan_opts;
    const char *e = getenv("RECUR_PLAN");
    if (e) {
        if (strstr(e, "nofuse")) o &= ~RC_PLAN_FUSE;
        if (strstr(e, "noblocked")) o &= ~RC_PLAN_BLOCKED;
        if (strstr(e, "noshare")) o &= ~RC_PLAN_SHARE;
        if (strstr(e, "noremat")) o &= ~RC_PLAN_REMAT;
        if (strstr(e, "nochunk")) o &= ~RC_PLAN_CHUNK;
        if (strstr(e, "noeval")) o &= ~RC_PLAN_EVAL;
        if (strstr(e, "nostats")) o &= ~RC_PLAN_STATS;
    }
    return o;
}

/* Whether the conv selector runs some convolution of g on blocked activations by a fast path (always with
 * oneDNN; without it where recur's kernels take the shape): else blocked layouts would only add copies. */
static int blocked_convs(const rc_graph *g) {
    for (int i = 0; i < g->nxnodes; i++) {
        if (g->xnodes[i].op != RC_OP_CONV) continue;
        rc_conv_dims d = rc_xnode_conv_dims(g, &g->xnodes[i], g->batch);
        if (rc_conv2d_blocked_fast(&d)) return 1;
    }
    return 0;
}

rc_status rc_graph_make_plan(rc_graph *g) {
    int fast = rc_ops_fast != 0, opts = plan_opts();
    g->fast = fast;
    RC_ASSERT(rc_op_table_check(NULL) == 0); /* every op has its name, functions and backward reads */
    make_xnodes(g, fast, (opts & RC_PLAN_FUSE) != 0);
    int blocked = fast && (opts & RC_PLAN_BLOCKED) && blocked_convs(g);
    make_layouts(g, blocked);
    make_grad_flags(g);
    if (fast && (opts & RC_PLAN_FUSE)) make_eval_fusion(g);
    g->bnpre_doubles = 0;
    g->isum_doubles = fast && (opts & RC_PLAN_FUSE) && (opts & RC_PLAN_STATS) ? make_stats_fusion(g) : 0;
    size_t af = make_memory(g, (opts & RC_PLAN_SHARE) != 0, (opts & RC_PLAN_SHARE) && (opts & RC_PLAN_REMAT),
                            (opts & RC_PLAN_CHUNK) != 0 && rc_bn_allreduce == NULL);
    /* saved statistics, batch-norm workspace (the convolutions' fast paths keep their own transient
     * buffers: conv2d_dnnl.c, conv2d_wino.c) */
    size_t sf = 0, wk = 0, sd = 0;
    for (int i = 0; i < g->nxnodes; i++) {
        rc_xnode *n = &g->xnodes[i];
        if (rc_op_saves_bn(n)) {
            int c = g->tensors[n->in[0]].c;
            n->save_off = sf;
            sf += (2 * (size_t)c + 15) / 16 * 16;
            wk = RC_MAX(wk, rc_bn_work_doubles(c));
        }
        if (rc_op_defs[n->op].bwd_phased) { /* its backward's gradient sums between phases */
            n->sums_off = sd;
            sd += 2 * (size_t)g->tensors[n->in[0]].c + 1;
        }
    }
    if (rc_graph_check_memory(g, 16.0 * (double)g->param_floats, 4.0 * (double)af,
                              4.0 * (double)sf + 8.0 * (double)(wk + sd + g->bnpre_doubles + g->isum_doubles)))
        return RC_ERR;
    g->act_floats = af;
    g->save_floats = sf;
    g->work_doubles = wk;
    g->act = rc_aalloc_floats(af);
    g->save = rc_aalloc_floats(sf);
    g->work = (double *)(void *)rc_aalloc_floats(2 * wk + 2);
    g->sums = (double *)(void *)rc_aalloc_floats(2 * sd + 2);
    g->bnpre = (double *)(void *)rc_aalloc_floats(2 * g->bnpre_doubles + 2);
    g->isum = (double *)(void *)rc_aalloc_floats(2 * g->isum_doubles + 2);
    if (!g->act || !g->save || !g->work || !g->sums || !g->bnpre || !g->isum)
        return rc_fail("cannot allocate %.1f MB of activations and gradients for the model at batch %d",
                       4.0 * (double)af / 1e6, g->batch);
    for (int t = 0; t < g->ntensors; t++) {
        rc_tensor *x = &g->tensors[t];
        x->x = x->dead ? NULL : g->act + x->off;
        x->dx = x->dead || x->goff == RC_NO_GRAD ? NULL : g->act + x->goff;
    }
    make_eval_memory(g, (opts & RC_PLAN_EVAL) != 0, af);
    return RC_OK;
}

void rc_graph_read(const rc_graph *g, int t, int grad, float *out) {
    const rc_tensor *x = &g->tensors[t];
    const float *src = grad ? x->dx : x->x;
    RC_ASSERT(src != NULL);
    size_t n = (size_t)g->batch * x->c * x->h * x->w;
    if (x->layout == RC_LAYOUT_BLK16)
        rc_layout_from_blk16(g->batch, x->c, x->h * x->w, src, out);
    else
        memcpy(out, src, n * sizeof(float));
}
