/* graph_plan.c — the execution plan behind rc_graph_plan: fusion of the builder's nodes into exec nodes
 * (batch norm + add + relu, the ConvLSTM gate arithmetic), activation layouts (blocked nChw16c where
 * every op touching a tensor supports it), gradient overwrite/accumulate flags, recomputation segments
 * (train.recompute), and one arena for activations and gradients with offsets assigned by liveness. */
#include <string.h>

#include "graph.h"
#include "ops/ops.h"

int rc_plan_opts = RC_PLAN_FUSE | RC_PLAN_BLOCKED | RC_PLAN_SHARE | RC_PLAN_REMAT | RC_PLAN_CHUNK | RC_PLAN_EVAL;

/* ---------------------------------------------------------------- consumers of each tensor */

typedef struct {
    int *start, *list; /* CSR: consumers of tensor t are list[start[t] .. start[t+1]) (node indices) */
} consumers;

static void consumers_make(const rc_node *nodes, int nnodes, int ntensors, consumers *c) {
    c->start = rc_xcalloc((size_t)ntensors + 1, sizeof(int));
    for (int i = 0; i < nnodes; i++)
        for (int j = 0; j < nodes[i].nin; j++) c->start[nodes[i].in[j] + 1]++;
    for (int t = 0; t < ntensors; t++) c->start[t + 1] += c->start[t];
    c->list = rc_xmalloc(((size_t)c->start[ntensors] + 1) * sizeof(int));
    int *fill = rc_xcalloc((size_t)ntensors, sizeof(int));
    for (int i = 0; i < nnodes; i++)
        for (int j = 0; j < nodes[i].nin; j++) {
            int t = nodes[i].in[j];
            c->list[c->start[t] + fill[t]++] = i;
        }
    free(fill);
}

static void consumers_free(consumers *c) {
    free(c->start);
    free(c->list);
}

static int ncons(const consumers *c, int t) { return c->start[t + 1] - c->start[t]; }
static int cons1(const consumers *c, int t) { return ncons(c, t) == 1 ? c->list[c->start[t]] : -1; }

/* ---------------------------------------------------------------- fusion */

/* The other input of a binary node, or -1 if t is not one of its inputs. */
static int other_input(const rc_node *n, int t) {
    if (n->nin != 2) return -1;
    if (n->in[0] == t) return n->in[1];
    if (n->in[1] == t) return n->in[0];
    return -1;
}

/* ConvLSTM gates over z (4C channels) starting at node i0 (the batch norm producing z, or z's first
 * slice): slices i, [f], o, g -> sigmoid/tanh -> ig = i*g, [fc = f*c_prev, c = fc + ig], tanh(c),
 * h = o*tanh(c), emitted contiguously. On a match fills x (an RC_OP_LSTM exec node) and returns the
 * last absorbed node; -1 otherwise. */
static int match_lstm(rc_graph *g, const consumers *cs, int i0, int bn, int z, rc_node *x) {
    const rc_node *nd = g->nodes;
    int C4 = g->tensors[z].c;
    if (C4 % 4) return -1;
    if (bn >= 0 && ncons(cs, nd[bn].in[0]) != 1) return -1; /* its gradient is overwritten in place */
    int C = C4 / 4, nc = ncons(cs, z);
    if (nc < 3 || nc > 4) return -1;
    int gate[4] = {-1, -1, -1, -1}; /* gate activation node per quarter */
    int count = bn >= 0 ? 1 : 0, lo = i0, hi = i0;
    for (int k = 0; k < nc; k++) {
        int s = cs->list[cs->start[z] + k];
        const rc_node *sn = &nd[s];
        if (sn->op != RC_OP_SLICE || sn->stride != C || sn->k % C || sn->in[0] != z) return -1;
        int j = sn->k / C;
        if (gate[j] >= 0) return -1;
        int a = cons1(cs, sn->out);
        if (a < 0 || nd[a].op != (j == 3 ? RC_OP_TANH : RC_OP_SIGMOID)) return -1;
        gate[j] = a;
        count += 2;
        lo = RC_MIN(lo, s);
        hi = RC_MAX(hi, a);
    }
    if (gate[0] < 0 || gate[2] < 0 || gate[3] < 0) return -1;
    int gi = nd[gate[0]].out, gg = nd[gate[3]].out, go = nd[gate[2]].out;
    int mig = cons1(cs, gi);
    if (mig < 0 || nd[mig].op != RC_OP_MUL || other_input(&nd[mig], gi) != gg || cons1(cs, gg) != mig) return -1;
    count++;
    int c = nd[mig].out, cprev = -1, last = mig;
    if (gate[1] >= 0) {
        int gf = nd[gate[1]].out, mfc = cons1(cs, gf);
        if (mfc < 0 || nd[mfc].op != RC_OP_MUL) return -1;
        cprev = other_input(&nd[mfc], gf);
        if (cprev < 0 || cprev == gf) return -1;
        int add = cons1(cs, nd[mfc].out);
        if (add < 0 || nd[add].op != RC_OP_ADD || other_input(&nd[add], nd[mfc].out) != c || cons1(cs, c) != add)
            return -1;
        count += 2;
        c = nd[add].out;
        last = RC_MAX(mfc, add);
    }
    int mh = cons1(cs, go);
    if (mh < 0 || nd[mh].op != RC_OP_MUL) return -1;
    int tc = other_input(&nd[mh], go);
    if (tc < 0 || tc == go) return -1;
    int tcn = cons1(cs, tc);
    if (tcn != mh) return -1;
    /* the tanh(c) node: the producer of tc, a TANH of c */
    int tnode = -1;
    for (int k = cs->start[c]; k < cs->start[c + 1]; k++)
        if (nd[cs->list[k]].op == RC_OP_TANH && nd[cs->list[k]].out == tc) tnode = cs->list[k];
    if (tnode < 0) return -1;
    count += 2;
    hi = RC_MAX(hi, RC_MAX(last, RC_MAX(mig, RC_MAX(tnode, mh))));
    if (lo != i0 || hi - lo + 1 != count) return -1; /* not contiguous: something else runs in between */
    /* c_prev must exist before the fused node runs */
    if (cprev >= 0 && !g->tensors[cprev].is_input) {
        int produced = 0;
        for (int i = 0; i < i0; i++)
            if (nd[i].out == cprev) produced = 1;
        if (!produced) return -1;
    }
    /* a tensor the caller keeps (rc_graph_keep) must not die inside */
    int inner[12], ni = 0;
    if (bn >= 0) inner[ni++] = z;
    for (int j = 0; j < 4; j++)
        if (gate[j] >= 0) {
            inner[ni++] = nd[gate[j]].in[0];
            inner[ni++] = nd[gate[j]].out;
        }
    if (gate[1] >= 0) {
        inner[ni++] = nd[mig].out;
        inner[ni++] = nd[cons1(cs, nd[gate[1]].out)].out;
    }
    inner[ni++] = tc;
    for (int k = 0; k < ni; k++)
        if (g->tensors[inner[k]].keep) return -1;
    memset(x, 0, sizeof *x);
    x->op = RC_OP_LSTM;
    x->in[0] = bn >= 0 ? nd[bn].in[0] : z;
    x->nin = 1;
    if (cprev >= 0) x->in[x->nin++] = cprev;
    x->out = nd[mh].out;
    x->out2 = c;
    for (int k = 0; k < 4; k++) x->param[k] = bn >= 0 ? nd[bn].param[k] : -1;
    x->bn = bn >= 0;
    if (bn >= 0) {
        x->eps = nd[bn].eps;
        x->momentum = nd[bn].momentum;
    }
    /* everything strictly inside dies */
    if (bn >= 0) g->tensors[z].dead = 1;
    for (int j = 0; j < 4; j++) {
        if (gate[j] < 0) continue;
        g->tensors[nd[gate[j]].in[0]].dead = 1;
        g->tensors[nd[gate[j]].out].dead = 1;
    }
    if (gate[1] >= 0) {
        g->tensors[nd[mig].out].dead = 1;
        g->tensors[nd[cons1(cs, nd[gate[1]].out)].out].dead = 1;
    }
    g->tensors[tc].dead = 1;
    return hi;
}

/* Batch norm at node i, fused with a following add (residual) and relu when they come right after it
 * and consume only its output. Fills x (RC_OP_BNACT) and returns the last absorbed node. */
static int match_bnact(rc_graph *g, const consumers *cs, int i, int fuse, rc_node *x) {
    const rc_node *nd = g->nodes, *bn = &nd[i];
    memset(x, 0, sizeof *x);
    x->op = RC_OP_BNACT;
    x->out2 = -1;
    x->in[0] = bn->in[0];
    x->nin = 1;
    x->out = bn->out;
    for (int k = 0; k < 4; k++) x->param[k] = bn->param[k];
    x->eps = bn->eps;
    x->momentum = bn->momentum;
    int last = i, y = bn->out;
    if (!fuse) return last;
    int j = cons1(cs, y);
    if (j == i + 1 && nd[j].op == RC_OP_ADD) {
        int r = other_input(&nd[j], y);
        if (r >= 0 && r != y && r != bn->in[0] && !g->tensors[y].keep) {
            x->in[1] = r;
            x->nin = 2;
            g->tensors[y].dead = 1;
            y = nd[j].out;
            x->out = y;
            last = j;
            j = cons1(cs, y);
        } else {
            j = -1;
        }
    }
    if (j == last + 1 && nd[j].op == RC_OP_RELU && !g->tensors[y].keep) {
        g->tensors[y].dead = 1;
        x->relu = 1;
        x->out = nd[j].out;
        last = j;
    }
    /* a readout's global average pool right after it: pooled while y is written (out2) */
    if (last + 1 < g->nnodes && nd[last + 1].op == RC_OP_GAP && nd[last + 1].in[0] == x->out) {
        last++;
        x->out2 = nd[last].out;
    }
    return last;
}

/* A convolution whose output only feeds the add right after it (the summed input of a ConvLSTM's gates, or
 * of a cell with several inputs): one node y = conv(x) + r, in[1] = r, the convolution's own output dead.
 * Saves the add's pass over y (and in backward one copy of the gradient). Returns the add, or -1. */
static int match_conv_add(rc_graph *g, const consumers *cs, int i, rc_node *x) {
    const rc_node *nd = g->nodes, *cv = &nd[i];
    const int y = cv->out, j = cons1(cs, y);
    if (j != i + 1 || nd[j].op != RC_OP_ADD || g->tensors[y].is_output || g->tensors[y].keep) return -1;
    const int r = other_input(&nd[j], y);
    if (r < 0 || r == y || r == cv->in[0]) return -1;
    *x = *cv;
    x->in[1] = r;
    x->nin = 2;
    x->out = nd[j].out;
    g->tensors[y].dead = 1;
    return j;
}

static void make_xnodes(rc_graph *g, int fast, int fuse) {
    consumers cs;
    consumers_make(g->nodes, g->nnodes, g->ntensors, &cs);
    g->xnodes = rc_xcalloc((size_t)g->nnodes + 1, sizeof(rc_node));
    g->nxnodes = 0;
    for (int i = 0; i < g->nnodes; i++) {
        const rc_node *n = &g->nodes[i];
        rc_node x;
        int last = -1;
        if (fast && fuse && n->op == RC_OP_BATCHNORM) last = match_lstm(g, &cs, i, i, n->out, &x);
        if (last < 0 && fast && fuse && n->op == RC_OP_SLICE && n->k == 0)
            last = match_lstm(g, &cs, i, -1, n->in[0], &x);
        if (last < 0 && fast && n->op == RC_OP_BATCHNORM) last = match_bnact(g, &cs, i, fuse, &x);
        if (last < 0 && fast && fuse && n->op == RC_OP_CONV) last = match_conv_add(g, &cs, i, &x);
        if (last < 0) {
            x = *n;
            last = i;
        }
        if (x.op != RC_OP_LSTM && x.op != RC_OP_BNACT) x.out2 = -1;
        x.efuse = x.eabs = -1;
        x.first = i;
        x.last = last;
        x.step = n->step;
        g->xnodes[g->nxnodes++] = x;
        i = last;
    }
    consumers_free(&cs);
}

/* The eval pipeline (make_eval_memory): a convolution whose output only the fused batch norm right after it
 * reads runs that batch norm itself, folded into its weights and bias, with the residual add and the relu
 * in its epilogue (when the convolution runs through recur's Winograd forward; graph_exec.c checks at run
 * time). The batch norm's own pass over the activation then disappears from inference. In training
 * nothing changes: the batch statistics are not known before the convolution has run. */
static void make_eval_fusion(rc_graph *g) {
    consumers cs;
    consumers_make(g->xnodes, g->nxnodes, g->ntensors, &cs);
    g->fold_floats = 0;
    for (int i = 0; i + 1 < g->nxnodes; i++) {
        rc_node *c = &g->xnodes[i], *b = &g->xnodes[i + 1];
        if (c->op != RC_OP_CONV || c->nin != 1 || b->op != RC_OP_BNACT || b->in[0] != c->out) continue;
        if (ncons(&cs, c->out) != 1 || g->tensors[c->out].is_output || g->tensors[c->out].keep || b->param[2] < 0 ||
            b->param[3] < 0)
            continue;
        c->efuse = i + 1;
        b->eabs = i;
        const rc_param *w = &g->params[c->param[0]];
        c->fold_off = g->fold_floats;
        g->fold_floats += w->numel + (size_t)g->tensors[c->out].c; /* weights, bias */
    }
    consumers_free(&cs);
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
            const rc_node *n = &g->xnodes[i];
            int ts[RC_MAX_IN + 2], k = 0;
            switch (n->op) {
            case RC_OP_CONV: /* any combination; a fused add's input as the output */
                if (n->nin > 1) {
                    ts[k++] = n->in[1];
                    ts[k++] = n->out;
                    changed |= same_layout_all(g, ts, k);
                }
                break;
            case RC_OP_GAP: break; /* any combination (GAP's output is 1x1, plain) */
            case RC_OP_SLICE:
                ts[k++] = n->in[0];
                ts[k++] = n->out;
                if (n->k % 16 || n->stride % 16 || g->tensors[n->in[0]].c % 16)
                    ts[k++] = g->input; /* plain: forces both plain */
                changed |= same_layout_all(g, ts, k);
                break;
            case RC_OP_BNACT: /* out2 (the pooled readout input) is 1x1, plain */
                for (int j = 0; j < n->nin; j++) ts[k++] = n->in[j];
                ts[k++] = n->out;
                changed |= same_layout_all(g, ts, k);
                break;
            case RC_OP_LSTM:
            case RC_OP_RELU:
            case RC_OP_SIGMOID:
            case RC_OP_TANH:
            case RC_OP_ADD:
            case RC_OP_MUL:
            case RC_OP_LERP: /* zero a and b in the padding lanes give zero y, whatever w holds there */
            case RC_OP_UPSAMPLE:
                for (int j = 0; j < n->nin; j++) ts[k++] = n->in[j];
                ts[k++] = n->out;
                if (n->out2 >= 0) ts[k++] = n->out2;
                /* channel counts that are not multiples of 16 are blocked with zero padding lanes only
                 * where every op keeps the padding zero: not through the LSTM's channel slices, nor
                 * through sigmoid (0 -> 0.5) */
                if (n->op == RC_OP_LSTM || n->op == RC_OP_SIGMOID)
                    for (int j = 0, m = k; j < m; j++)
                        if (g->tensors[ts[j]].c % 16) ts[k++] = g->input;
                changed |= same_layout_all(g, ts, k);
                break;
            default: /* plain-only ops: batch norm (reference), concat, pools, linear */
                for (int j = 0; j < n->nin; j++) ts[k++] = n->in[j];
                ts[k++] = n->out;
                ts[k++] = g->input;
                changed |= same_layout_all(g, ts, k);
                break;
            }
        }
    }
}

/* ---------------------------------------------------------------- gradient flags */

static void make_grad_flags(rc_graph *g) {
    char *written = rc_xcalloc((size_t)g->ntensors, 1);
    for (int t = 0; t < g->ntensors; t++) written[t] = (char)g->tensors[t].is_output;
    for (int i = g->nxnodes - 1; i >= 0; i--) {
        rc_node *n = &g->xnodes[i];
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

/* Does exec node n's backward read the value of tensor t? */
static int bwd_reads(const rc_node *n, int t) {
    if (!n->active) return 0;
    switch (n->op) {
    case RC_OP_CONV:
    case RC_OP_BATCHNORM:
    case RC_OP_RELU:
    case RC_OP_MAXPOOL:
    case RC_OP_LINEAR: return t == n->in[0];
    case RC_OP_BNACT: return t == n->in[0] || (n->relu && n->nin > 1 && t == n->out); /* mask: from y, or x */
    case RC_OP_LSTM: return t == n->in[0] || (n->nin > 1 && t == n->in[1]) || t == n->out2;
    case RC_OP_SIGMOID:
    case RC_OP_TANH: return t == n->out;
    case RC_OP_MUL: return t == n->in[0] || t == n->in[1];
    case RC_OP_LERP: return t == n->in[0] || t == n->in[1] || (n->nin > 2 && t == n->in[2]);
    default: return 0;
    }
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
    consumers cs;
    consumers_make(g->xnodes, n, nt, &cs);
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
        rc_node *x = &g->xnodes[i];
        x->replay = trans[x->out] || (x->out2 >= 0 && trans[x->out2]);
        x->remat = 0;
        x->remat_head = x->remat_link = -1;
    }
    /* rematerialisation: a batch norm (+ relu) without residual, not otherwise replayed, whose output
     * some backward reads, all its consumers in its segment and none replayed: recompute it right before
     * the first backward that reads it (the consumer latest in forward order) */
    for (int p = 0; remat && p < n; p++) {
        rc_node *x = &g->xnodes[p];
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
        gi->iv[0][1] = p >= 0 && g->xnodes[p].active ? RC_MAX(start, B[p]) : start;
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
    consumers_free(&cs);
    free(trans);
    free(prod);
    free(seg);
    return total;
}

/* ---------------------------------------------------------------- eval pipeline */

/* Inference (eval mode) in micro-batches through the whole graph: batch norm uses running statistics, so no
 * node couples the images of a batch, and each micro-batch can run every node before the next starts
 * (graph.c run_eval), its activations staying in cache. Every activation but the input and the readouts
 * gets a slot of one micro-batch in a small arena of its own, shared by liveness over the node order; a
 * batch norm absorbed by its convolution (make_eval_fusion) is born at the convolution. Only with the
 * chunked schedule's micro-batches (g->nchunk > 1). */
static void make_eval_memory(rc_graph *g, int on) {
    const int n = g->nxnodes, nt = g->ntensors;
    for (int t = 0; t < nt; t++) g->tensors[t].ev = NULL;
    rc_afree(g->eval_arena);
    g->eval_arena = NULL;
    g->eval_floats = 0;
    if (!on || g->nchunk <= 1) return;
    int mb = 0;
    for (int j = 0; j < g->nchunk; j++) mb = RC_MAX(mb, g->chunk_b[j + 1] - g->chunk_b[j]);
    consumers cs;
    consumers_make(g->xnodes, n, nt, &cs);
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
    g->eval_arena = rc_aalloc_floats(g->eval_floats + 16);
    free(g->fold);
    g->fold = g->fold_floats ? malloc(g->fold_floats * sizeof(float)) : NULL;
    if (g->fold_floats && !g->fold) { /* no pipeline: inference runs in the training schedule, as it can */
        rc_afree(g->eval_arena);
        g->eval_arena = NULL;
    }
    if (g->eval_arena)
        for (int k = 0; k < ni; k++) g->tensors[items[k].tensor].ev = g->eval_arena + items[k].off;
    free(items);
    free(prod);
    consumers_free(&cs);
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
    }
    return o;
}

rc_status rc_graph_make_plan(rc_graph *g) {
    int fast = rc_ops_fast != 0, opts = plan_opts();
#ifdef RC_HAVE_DNNL
    int blocked = fast && (opts & RC_PLAN_BLOCKED);
#else
    int blocked = 0;
#endif
    g->fast = fast;
    make_xnodes(g, fast, (opts & RC_PLAN_FUSE) != 0);
    make_layouts(g, blocked);
    make_grad_flags(g);
    if (fast && (opts & RC_PLAN_FUSE)) make_eval_fusion(g);
    size_t af = make_memory(g, (opts & RC_PLAN_SHARE) != 0, (opts & RC_PLAN_SHARE) && (opts & RC_PLAN_REMAT),
                            (opts & RC_PLAN_CHUNK) != 0 && rc_bn_allreduce == NULL);
    make_eval_memory(g, (opts & RC_PLAN_EVAL) != 0);
    /* saved statistics, batch-norm workspace (the oneDNN convolutions keep their own transient buffers,
     * shared by all of them: conv2d_dnnl.c) */
    size_t sf = 0, wk = 0, sd = 0;
    for (int i = 0; i < g->nxnodes; i++) {
        rc_node *n = &g->xnodes[i];
        if (n->op == RC_OP_BATCHNORM || rc_node_bn_phased(n)) {
            int c = g->tensors[n->in[0]].c;
            n->save_off = sf;
            sf += (2 * (size_t)c + 15) / 16 * 16;
            wk = RC_MAX(wk, rc_bn_work_doubles(c));
        }
        if (n->op == RC_OP_BNACT) {
            n->sums_off = sd;
            sd += 2 * (size_t)g->tensors[n->in[0]].c + 1;
        }
    }
    if (rc_graph_check_memory(g, 16.0 * (double)g->param_floats, 4.0 * (double)af,
                              4.0 * (double)sf + 8.0 * (double)(wk + sd)))
        return RC_ERR;
    g->act_floats = af;
    g->save_floats = sf;
    g->work_doubles = wk;
    g->act = rc_aalloc_floats(af);
    g->save = rc_aalloc_floats(sf);
    g->work = (double *)(void *)rc_aalloc_floats(2 * wk + 2);
    g->sums = (double *)(void *)rc_aalloc_floats(2 * sd + 2);
    if (!g->act || !g->save || !g->work || !g->sums)
        return rc_fail("cannot allocate %.1f MB of activations and gradients for the model at batch %d",
                       4.0 * (double)af / 1e6, g->batch);
    for (int t = 0; t < g->ntensors; t++) {
        rc_tensor *x = &g->tensors[t];
        x->x = x->dead ? NULL : g->act + x->off;
        x->dx = x->dead || x->goff == RC_NO_GRAD ? NULL : g->act + x->goff;
    }
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
