/* graph_fuse.c — the fused forms of the plan: batch norm (+ residual add) (+ relu) as one node, the
 * ConvLSTM gate arithmetic as one node, a convolution or an upsample with the add after it; and the
 * consumer lists they match on. Which form starts at which op is in the op table (op_table.c). */
#include <string.h>

#include "graph_fuse.h"


/* The inputs of node i (builder's or exec) and their count. */
typedef const int *(*inputs_fn)(const rc_graph *g, int i, int *nin);
static const int *node_inputs(const rc_graph *g, int i, int *nin) {
    *nin = g->nodes[i].nin;
    return g->nodes[i].in;
}
static const int *xnode_inputs(const rc_graph *g, int i, int *nin) {
    *nin = g->xnodes[i].nin;
    return g->xnodes[i].in;
}

static void cons_make(const rc_graph *g, int nnodes, inputs_fn inputs, rc_cons *c) {
    const int ntensors = g->ntensors;
    int nin;
    c->start = rc_xcalloc((size_t)ntensors + 1, sizeof(int));
    for (int i = 0; i < nnodes; i++) {
        const int *in = inputs(g, i, &nin);
        for (int j = 0; j < nin; j++) c->start[in[j] + 1]++;
    }
    for (int t = 0; t < ntensors; t++) c->start[t + 1] += c->start[t];
    c->list = rc_xmalloc(((size_t)c->start[ntensors] + 1) * sizeof(int));
    int *fill = rc_xcalloc((size_t)ntensors, sizeof(int));
    for (int i = 0; i < nnodes; i++) {
        const int *in = inputs(g, i, &nin);
        for (int j = 0; j < nin; j++) {
            int t = in[j];
            c->list[c->start[t] + fill[t]++] = i;
        }
    }
    free(fill);
}

void rc_cons_of_nodes(const rc_graph *g, rc_cons *c) { cons_make(g, g->nnodes, node_inputs, c); }
void rc_cons_of_xnodes(const rc_graph *g, rc_cons *c) { cons_make(g, g->nxnodes, xnode_inputs, c); }

void rc_xnode_from(const rc_node *n, rc_xnode *x) {
    memset(x, 0, sizeof *x);
    x->op = n->op;
    for (int j = 0; j < RC_MAX_IN; j++) x->in[j] = n->in[j];
    x->nin = n->nin;
    x->out = n->out;
    x->out2 = -1;
    for (int k = 0; k < 4; k++) x->param[k] = n->param[k];
    x->k = n->k;
    x->stride = n->stride;
    x->pad = n->pad;
    x->groups = n->groups;
    x->eps = n->eps;
    x->momentum = n->momentum;
    x->step = n->step;
}

void rc_cons_free(rc_cons *c) {
    free(c->start);
    free(c->list);
}


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
static int match_lstm(rc_graph *g, const rc_cons *cs, int i0, int bn, int z, rc_xnode *x) {
    const rc_node *nd = g->nodes;
    int C4 = g->tensors[z].c;
    if (C4 % 4) return -1;
    if (bn >= 0 && rc_cons_count(cs, nd[bn].in[0]) != 1) return -1; /* its gradient is overwritten in place */
    int C = C4 / 4, nc = rc_cons_count(cs, z);
    if (nc < 3 || nc > 4) return -1;
    int gate[4] = {-1, -1, -1, -1}; /* gate activation node per quarter */
    int count = bn >= 0 ? 1 : 0, lo = i0, hi = i0;
    for (int k = 0; k < nc; k++) {
        int s = cs->list[cs->start[z] + k];
        const rc_node *sn = &nd[s];
        if (sn->op != RC_OP_SLICE || sn->stride != C || sn->k % C || sn->in[0] != z) return -1;
        int j = sn->k / C;
        if (gate[j] >= 0) return -1;
        int a = rc_cons_one(cs, sn->out);
        if (a < 0 || nd[a].op != (j == 3 ? RC_OP_TANH : RC_OP_SIGMOID)) return -1;
        gate[j] = a;
        count += 2;
        lo = RC_MIN(lo, s);
        hi = RC_MAX(hi, a);
    }
    if (gate[0] < 0 || gate[2] < 0 || gate[3] < 0) return -1;
    int gi = nd[gate[0]].out, gg = nd[gate[3]].out, go = nd[gate[2]].out;
    int mig = rc_cons_one(cs, gi);
    if (mig < 0 || nd[mig].op != RC_OP_MUL || other_input(&nd[mig], gi) != gg || rc_cons_one(cs, gg) != mig) return -1;
    count++;
    int c = nd[mig].out, cprev = -1, last = mig;
    if (gate[1] >= 0) {
        int gf = nd[gate[1]].out, mfc = rc_cons_one(cs, gf);
        if (mfc < 0 || nd[mfc].op != RC_OP_MUL) return -1;
        cprev = other_input(&nd[mfc], gf);
        if (cprev < 0 || cprev == gf) return -1;
        int add = rc_cons_one(cs, nd[mfc].out);
        if (add < 0 || nd[add].op != RC_OP_ADD || other_input(&nd[add], nd[mfc].out) != c || rc_cons_one(cs, c) != add)
            return -1;
        count += 2;
        c = nd[add].out;
        last = RC_MAX(mfc, add);
    }
    int mh = rc_cons_one(cs, go);
    if (mh < 0 || nd[mh].op != RC_OP_MUL) return -1;
    int tc = other_input(&nd[mh], go);
    if (tc < 0 || tc == go) return -1;
    int tcn = rc_cons_one(cs, tc);
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
        inner[ni++] = nd[rc_cons_one(cs, nd[gate[1]].out)].out;
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
        g->tensors[nd[rc_cons_one(cs, nd[gate[1]].out)].out].dead = 1;
    }
    g->tensors[tc].dead = 1;
    return hi;
}

/* The GRU matcher's cursor over the builder's nodes from the first slice on: each step checks that node p
 * is the op expected on the tensors expected, and records the tensor it makes as one that dies inside. */
typedef struct {
    const rc_graph *g;
    const rc_cons *cs;
    int p, C, ok, ninner, inner[16];
} gru_cur;

static int gru_take(gru_cur *m, rc_op_type op, int nin, int a, int b, int c) {
    const rc_node *n = &m->g->nodes[m->p];
    if (!m->ok || m->p >= m->g->nnodes || n->op != op || n->nin != nin || n->in[0] != a || (nin > 1 && n->in[1] != b) ||
        (nin > 2 && n->in[2] != c))
        return m->ok = 0, -1;
    m->p++;
    return n->out;
}
/* slice j (of C channels) of t */
static int gru_slice(gru_cur *m, int t, int j) {
    const rc_node *n = &m->g->nodes[m->p];
    if (!m->ok || m->p >= m->g->nnodes || n->op != RC_OP_SLICE || n->k != j * m->C || n->stride != m->C) return m->ok = 0, -1;
    return gru_take(m, RC_OP_SLICE, 1, t, -1, -1);
}
/* a tensor made inside, read once, by the node that comes next in the cell */
static int gru_inner(gru_cur *m, int t) {
    if (!m->ok || t < 0 || rc_cons_count(m->cs, t) != 1 || m->g->tensors[t].keep || m->g->tensors[t].is_output)
        return m->ok = 0, -1;
    m->inner[m->ninner++] = t;
    return t;
}

/* GRU gates (model.c cell_gru) from the first slice at node i, over the drive x and the hidden term u (3C
 * channels each: z, r, n), either absent (u present exactly when h_prev is), emitted contiguously:
 *   z = sigmoid([slice(x, 0)] [+] [slice(u, 0)]);  with u: r = sigmoid([slice(x, 1) +] slice(u, 1));
 *   n = tanh([slice(x, 2)] [+] [r * slice(u, 2)]);  h = lerp(z, n, [h_prev]),
 * every tensor in between read only by the next op of the cell. Fills x (RC_OP_GRU) and returns the lerp. */
static int match_gru(rc_graph *g, const rc_cons *cs, int i, rc_xnode *xn) {
    const rc_node *nd = g->nodes;
    gru_cur m = {g, cs, i, nd[i].stride, 1, 0, {0}};
    const int s = nd[i].in[0];
    if (g->tensors[s].c != 3 * m.C || nd[i].k != 0) return -1;
    int x = -1, u = -1, zp, z, r = -1, np, n;
    int a = gru_inner(&m, gru_slice(&m, s, 0));
    const rc_node *q = &nd[m.p];
    if (m.p < g->nnodes && q->op == RC_OP_SLICE && q->in[0] != s && q->k == 0) { /* x and u */
        x = s;
        u = q->in[0];
        if (g->tensors[u].c != 3 * m.C) return -1;
        int b = gru_inner(&m, gru_slice(&m, u, 0));
        zp = gru_inner(&m, gru_take(&m, RC_OP_ADD, 2, a, b, -1));
        z = gru_inner(&m, gru_take(&m, RC_OP_SIGMOID, 1, zp, -1, -1));
        int xr = gru_inner(&m, gru_slice(&m, x, 1)), ur = gru_inner(&m, gru_slice(&m, u, 1));
        int rp = gru_inner(&m, gru_take(&m, RC_OP_ADD, 2, xr, ur, -1));
        r = gru_inner(&m, gru_take(&m, RC_OP_SIGMOID, 1, rp, -1, -1));
        int xnn = gru_inner(&m, gru_slice(&m, x, 2)), un = gru_inner(&m, gru_slice(&m, u, 2));
        int rh = gru_inner(&m, gru_take(&m, RC_OP_MUL, 2, r, un, -1));
        np = gru_inner(&m, gru_take(&m, RC_OP_ADD, 2, xnn, rh, -1));
    } else {
        z = gru_inner(&m, gru_take(&m, RC_OP_SIGMOID, 1, a, -1, -1));
        q = &nd[m.p];
        if (!m.ok || m.p >= g->nnodes || q->op != RC_OP_SLICE || q->in[0] != s) return -1;
        if (q->k == m.C) { /* u alone */
            u = s;
            int ur = gru_inner(&m, gru_slice(&m, u, 1));
            r = gru_inner(&m, gru_take(&m, RC_OP_SIGMOID, 1, ur, -1, -1));
            int un = gru_inner(&m, gru_slice(&m, u, 2));
            np = gru_inner(&m, gru_take(&m, RC_OP_MUL, 2, r, un, -1));
        } else { /* x alone */
            x = s;
            np = gru_inner(&m, gru_slice(&m, x, 2));
        }
    }
    n = gru_inner(&m, gru_take(&m, RC_OP_TANH, 1, np, -1, -1));
    q = &nd[m.p];
    const int hp = m.ok && m.p < g->nnodes && q->op == RC_OP_LERP && q->nin == 3 ? q->in[2] : -1;
    const int h = gru_take(&m, RC_OP_LERP, u >= 0 ? 3 : 2, z, n, hp);
    if (!m.ok || (u >= 0) != (hp >= 0) || (hp >= 0 && (hp == x || hp == u))) return -1;
    const rc_tensor *th = &g->tensors[h];
    for (int k = 0; k < 3; k++) {
        const int t = k == 0 ? x : k == 1 ? u : hp;
        if (t >= 0 && (g->tensors[t].h != th->h || g->tensors[t].w != th->w || g->tensors[t].c != (k < 2 ? 3 : 1) * m.C))
            return -1;
    }
    for (int k = i; k < m.p; k++) /* h_prev must exist before the fused node runs */
        if (nd[k].out == hp) return -1;
    memset(xn, 0, sizeof *xn);
    xn->op = RC_OP_GRU;
    xn->k = (x >= 0 ? 1 : 0) | (u >= 0 ? 2 : 0);
    if (x >= 0) xn->in[xn->nin++] = x;
    if (u >= 0) xn->in[xn->nin++] = u;
    if (hp >= 0) xn->in[xn->nin++] = hp;
    xn->out = h;
    xn->out2 = -1;
    for (int k = 0; k < 4; k++) xn->param[k] = -1;
    for (int k = 0; k < m.ninner; k++) g->tensors[m.inner[k]].dead = 1;
    return m.p - 1;
}

/* Batch norm at node i, fused with a following add (residual) and relu when they come right after it
 * and consume only its output. Fills x (RC_OP_BNACT) and returns the last absorbed node. */
static int match_bnact(rc_graph *g, const rc_cons *cs, int i, int fuse, rc_xnode *x) {
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
    int j = rc_cons_one(cs, y);
    if (j == i + 1 && nd[j].op == RC_OP_ADD) {
        int r = other_input(&nd[j], y);
        if (r >= 0 && r != y && r != bn->in[0] && !g->tensors[y].keep) {
            x->in[1] = r;
            x->nin = 2;
            g->tensors[y].dead = 1;
            y = nd[j].out;
            x->out = y;
            last = j;
            j = rc_cons_one(cs, y);
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

/* Node i (a convolution, or an upsample) whose output only feeds the add right after it: one exec node of op
 * y = f(x) + r, in[1] = r, node i's own output dead. For a convolution (CONV: the summed input of a ConvLSTM's
 * gates, or of a cell with several inputs) the Winograd forward adds r in its output transform; for an
 * upsample (UPADD: a top-down term added to an area's summed input) the upsampled tensor is never written.
 * Saves the add's pass over y (and in backward one copy of the gradient). Returns the add, or -1. */
static int match_then_add(rc_graph *g, const rc_cons *cs, int i, rc_op_type op, rc_xnode *x) {
    const rc_node *nd = g->nodes, *f = &nd[i];
    const int y = f->out, j = rc_cons_one(cs, y);
    if (j != i + 1 || nd[j].op != RC_OP_ADD || g->tensors[y].is_output || g->tensors[y].keep) return -1;
    const int r = other_input(&nd[j], y);
    if (r < 0 || r == y || r == f->in[0]) return -1;
    rc_xnode_from(f, x);
    x->op = op;
    x->in[1] = r;
    x->nin = 2;
    x->out = nd[j].out;
    g->tensors[y].dead = 1;
    return j;
}

int rc_fuse_lstm_bn(rc_graph *g, const rc_cons *cs, int i, int fuse, rc_xnode *x) {
    return fuse ? match_lstm(g, cs, i, i, g->nodes[i].out, x) : -1;
}

int rc_fuse_lstm_slice(rc_graph *g, const rc_cons *cs, int i, int fuse, rc_xnode *x) {
    return fuse && g->nodes[i].k == 0 ? match_lstm(g, cs, i, -1, g->nodes[i].in[0], x) : -1;
}

int rc_fuse_gru(rc_graph *g, const rc_cons *cs, int i, int fuse, rc_xnode *x) {
    return fuse ? match_gru(g, cs, i, x) : -1;
}

int rc_fuse_bnact(rc_graph *g, const rc_cons *cs, int i, int fuse, rc_xnode *x) { return match_bnact(g, cs, i, fuse, x); }

int rc_fuse_conv_add(rc_graph *g, const rc_cons *cs, int i, int fuse, rc_xnode *x) {
    return fuse ? match_then_add(g, cs, i, RC_OP_CONV, x) : -1;
}

int rc_fuse_upsample_add(rc_graph *g, const rc_cons *cs, int i, int fuse, rc_xnode *x) {
    return fuse ? match_then_add(g, cs, i, RC_OP_UPADD, x) : -1;
}
