/* test_opcases.c — one harness for every op of the engine (in the spirit of ggml's test-backend-ops): a list
 * of cases {op, builder, shapes, flags}, each a tiny graph built through the public graph API (leaf inputs,
 * the op or the pattern the plan fuses into it, a readout per output), run in every plan configuration:
 *   (a) finite differences of every input and param;  (b) overwrite vs accumulate of input gradients;
 *   (c) fast path vs the plain-C reference;  (d) plain and blocked nChw16c layouts (C % 16 == 0 and not);
 *   (e) whole batch vs micro-batches;  (f) the backward's declared reads: every tensor the backward of no
 *   exec node declares it reads (the op table's bwd_reads) is filled with NaN between forward and backward,
 *   and the gradients must not change (the planner reuses that memory). Plans (CFGS): reference, fast
 *   plain, fast blocked, in 4 micro-batches, the default (shared arena, remat), synchronised batch norm.
 * HOW TO ADD AN OP: give it its table entry, then one line in CASES below: {name, op, builder, {args}, flags}
 * (a line per shape or option worth covering: C % 16 == 0 and not, each fused form). An elementwise op of n
 * same-shaped inputs needs no builder (b_eltwise); otherwise a builder (b_*, a few lines) emits the op on
 * hb_leaf() inputs and hb_param() params and names its outputs with hb_out(). A new option of an op (conv's
 * groups) is one more builder argument. The coverage check fails while an op of the table has no case. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/rng.h"
#include "core/graph.h"
#include "core/op_table.h"
#include "ops/ops.h"
#include "test.h"

/* ------------------------------------------------------------------ cases */

#define MAXL 6 /* leaf inputs of a case */
#define MAXO 3 /* outputs of a case */
#define MAXP 16

/* flags */
enum {
    F_AWAY0 = 1,    /* leaf values at least 0.1 from 0 (relu's kink) */
    F_DISTINCT = 2, /* leaf values distinct, 0.05 apart (max-pool ties) */
    F_NOACC0 = 4,   /* leaf 0 must keep one consumer (the pattern needs it): no accumulate variant for it */
    F_BLK = 8,      /* the fast blocked plan keeps the op's operands blocked (with oneDNN) */
    F_KINK = 16,    /* a relu after a batch norm: its kink may fall within a finite-difference step; a point
                     * where the central differences at two steps disagree is skipped (at most 1 in 8) */
    F_FOLD = 32     /* the eval pipeline folds the case's batch norm into the sum before it (eabs) */
};

typedef struct hb hb;
typedef void (*build_fn)(hb *b, const int *a);
typedef struct {
    const char *name;
    rc_op_type op; /* the exec op the case covers (what the plan runs) */
    build_fn build;
    int a[10];
    unsigned flags;
} hcase;

/* The builder's view: the graph, the case's leaves, params and outputs. */
struct hb {
    rc_graph *g;
    int nleaf, leaf[MAXL];
    int nout, out[MAXO];
    int nparam;               /* params made by the case (the readouts' come after) */
    float pinit[MAXP][2];     /* per param: mean, std (std < 0: uniform half-width) */
};

static int hb_leaf(hb *b, int c, int h, int w) {
    RC_ASSERT(b->nleaf < MAXL);
    char nm[16];
    snprintf(nm, sizeof nm, "leaf%d", b->nleaf);
    return b->leaf[b->nleaf++] = rc_graph_tensor(b->g, nm, c, h, w);
}
static int hb_param(hb *b, const char *name, int ndim, const int *shape, rc_param_kind kind, float mean, float std) {
    int p = rc_graph_param(b->g, name, ndim, shape, kind);
    RC_ASSERT(p < MAXP);
    b->pinit[p][0] = mean;
    b->pinit[p][1] = std;
    if (p + 1 > b->nparam) b->nparam = p + 1;
    return p;
}
static void hb_out(hb *b, int t) {
    RC_ASSERT(b->nout < MAXO);
    b->out[b->nout++] = t;
}
/* batch-norm params p[4] = gamma, beta, running mean, running var */
static void hb_bn_params(hb *b, const char *pre, int c, int *p) {
    char nm[32];
    snprintf(nm, sizeof nm, "%s.gamma", pre);
    p[0] = hb_param(b, nm, 1, &c, RC_PARAM_NODECAY, 1.0f, 0.3f);
    snprintf(nm, sizeof nm, "%s.beta", pre);
    p[1] = hb_param(b, nm, 1, &c, RC_PARAM_NODECAY, 0.0f, 0.3f);
    snprintf(nm, sizeof nm, "%s.run_mean", pre);
    p[2] = hb_param(b, nm, 1, &c, RC_PARAM_BUFFER, 0.0f, 0.2f);
    snprintf(nm, sizeof nm, "%s.run_var", pre);
    p[3] = hb_param(b, nm, 1, &c, RC_PARAM_BUFFER, 1.0f, -0.5f);
}

/* ---- builders: a[] as in each comment ---- */

/* {op, c, h, w} */
static void b_unary(hb *b, const int *a) {
    hb_out(b, rc_emit_unary(b->g, (rc_op_type)a[0], "y", hb_leaf(b, a[1], a[2], a[3])));
}
/* {op, nin, c, h, w}: any elementwise op of nin same-shaped inputs, no params (a node of its own) */
static void b_eltwise(hb *b, const int *a) {
    rc_node n;
    memset(&n, 0, sizeof n);
    n.op = (rc_op_type)a[0];
    n.nin = a[1];
    for (int j = 0; j < 4; j++) n.param[j] = -1;
    for (int j = 0; j < n.nin; j++) n.in[j] = hb_leaf(b, a[2], a[3], a[4]);
    n.out = rc_graph_tensor(b->g, "y", a[2], a[3], a[4]);
    rc_graph_node(b->g, &n);
    hb_out(b, n.out);
}
/* {op, c, h, w, same: one leaf as both inputs} */
static void b_binary(hb *b, const int *a) {
    int x = hb_leaf(b, a[1], a[2], a[3]);
    hb_out(b, rc_emit_binary(b->g, (rc_op_type)a[0], "y", x, a[4] ? x : hb_leaf(b, a[1], a[2], a[3])));
}
/* {h, w, nin, c0, c1, c2} */
static void b_concat(hb *b, const int *a) {
    int xs[3];
    for (int j = 0; j < a[2]; j++) xs[j] = hb_leaf(b, a[3 + j], a[0], a[1]);
    hb_out(b, rc_emit_concat(b->g, "y", a[2], xs));
}
/* {c, h, w, c0, len} */
static void b_slice(hb *b, const int *a) {
    hb_out(b, rc_emit_slice(b->g, "y", hb_leaf(b, a[0], a[1], a[2]), a[3], a[4]));
}
/* {op, c, h, w, k, stride, pad} */
static void b_pool(hb *b, const int *a) {
    hb_out(b, rc_emit_pool(b->g, (rc_op_type)a[0], "y", hb_leaf(b, a[1], a[2], a[3]), a[4], a[5], a[6]));
}
/* {c, h, w} */
static void b_gap(hb *b, const int *a) { hb_out(b, rc_emit_gap(b->g, "y", hb_leaf(b, a[0], a[1], a[2]))); }
/* {c, h, w, ho, wo} */
/* {c, h, w, ho, wo, add}: add 1: r + upsample(z), 2: upsample(z) + r (the plan fuses either into one node) */
static void b_upsample(hb *b, const int *a) {
    int y = rc_emit_upsample(b->g, "up", hb_leaf(b, a[0], a[1], a[2]), a[3], a[4]);
    if (a[5]) {
        int r = hb_leaf(b, a[0], a[3], a[4]);
        y = a[5] == 1 ? rc_emit_binary(b->g, RC_OP_ADD, "y", r, y) : rc_emit_binary(b->g, RC_OP_ADD, "y", y, r);
    }
    hb_out(b, y);
}
/* {c, h, w, out, bias} */
static void b_linear(hb *b, const int *a) {
    int x = hb_leaf(b, a[0], a[1], a[2]), fan = a[0] * a[1] * a[2], sw[2] = {a[3], fan};
    int w = hb_param(b, "fc.w", 2, sw, RC_PARAM_WEIGHT, 0.0f, 1.0f / sqrtf((float)fan));
    int bias = a[4] ? hb_param(b, "fc.b", 1, &a[3], RC_PARAM_NODECAY, 0.0f, 0.5f) : -1;
    hb_out(b, rc_emit_linear(b->g, "y", x, w, bias, a[3]));
}
/* {c, h, w, k, r, stride, pad, bias | 2: an add after it (the plan fuses it into the convolution), groups
 * (0: 1)} */
static void b_conv(hb *b, const int *a) {
    const int groups = a[8] > 1 ? a[8] : 1, cg = a[0] / groups;
    int x = hb_leaf(b, a[0], a[1], a[2]), sw[4] = {a[3], cg, a[4], a[4]};
    int w = hb_param(b, "conv.w", 4, sw, RC_PARAM_WEIGHT, 0.0f, 1.0f / sqrtf((float)(cg * a[4] * a[4])));
    int bias = a[7] & 1 ? hb_param(b, "conv.b", 1, &a[3], RC_PARAM_NODECAY, 0.0f, 0.5f) : -1;
    int y = rc_emit_conv_grouped(b->g, "y", x, w, bias, a[3], a[4], a[5], a[6], groups);
    if (a[7] & 2) {
        const rc_tensor *t = &b->g->tensors[y];
        y = rc_emit_binary(b->g, RC_OP_ADD, "y+r", y, hb_leaf(b, t->c, t->h, t->w));
    }
    hb_out(b, y);
}
/* {c, h, w}: the reference plan runs it as is, the fast plan as a fused batch norm */
static void b_batchnorm(hb *b, const int *a) {
    int p[4];
    hb_bn_params(b, "bn", a[0], p);
    hb_out(b, rc_emit_batchnorm(b->g, "y", hb_leaf(b, a[0], a[1], a[2]), p[0], p[1], p[2], p[3]));
}
/* {c, h, w, residual, relu, pool}: batch norm (+ add) (+ relu) (+ global average pool right after) */
static void b_bnact(hb *b, const int *a) {
    int p[4], x = hb_leaf(b, a[0], a[1], a[2]);
    hb_bn_params(b, "bn", a[0], p);
    int y = rc_emit_batchnorm(b->g, "bn", x, p[0], p[1], p[2], p[3]);
    if (a[3]) y = rc_emit_binary(b->g, RC_OP_ADD, "add", y, hb_leaf(b, a[0], a[1], a[2]));
    if (a[4]) y = rc_emit_unary(b->g, RC_OP_RELU, "relu", y);
    if (a[5]) hb_out(b, rc_emit_gap(b->g, "pool", y));
    hb_out(b, y);
}
/* {c, h, w, k}: conv -> batch norm -> relu (in the eval pipeline the batch norm folds into the conv) */
static void b_conv_bn(hb *b, const int *a) {
    int x = hb_leaf(b, a[0], a[1], a[2]), sw[4] = {a[3], a[0], 3, 3}, p[4];
    int w = hb_param(b, "conv.w", 4, sw, RC_PARAM_WEIGHT, 0.0f, 1.0f / sqrtf((float)(a[0] * 9)));
    int y = rc_emit_conv(b->g, "conv", x, w, -1, a[3], 3, 1, 1); /* (a bias would cancel in the batch norm) */
    hb_bn_params(b, "bn", a[3], p);
    y = rc_emit_batchnorm(b->g, "bn", y, p[0], p[1], p[2], p[3]);
    hb_out(b, rc_emit_unary(b->g, RC_OP_RELU, "relu", y));
}
/* {c, h, w, k, top-down, residual, pool}: an area's summed input as the model emits it, bottom-up conv +
 * lateral conv (+ upsample(top-down conv of a half-size input)), then batch norm (+ residual) + relu
 * (+ the readout's pool): in the eval pipeline the batch norm folds into the sum's convolutions and the
 * sum's last node (conv + add or upsample + add) writes its output, unless it has a residual of its own */
static void b_sum_bn(hb *b, const int *a) {
    rc_graph *g = b->g;
    int sw[4] = {a[3], a[0], 3, 3}, p[4];
    const float sd = 1.0f / sqrtf((float)(a[0] * 9));
    int bu = rc_emit_conv(g, "bu", hb_leaf(b, a[0], a[1], a[2]), hb_param(b, "bu.w", 4, sw, RC_PARAM_WEIGHT, 0, sd),
                          -1, a[3], 3, 1, 1);
    int lat = rc_emit_conv(g, "lat", hb_leaf(b, a[0], a[1], a[2]),
                           hb_param(b, "lat.w", 4, sw, RC_PARAM_WEIGHT, 0, sd), -1, a[3], 3, 1, 1);
    int s = rc_emit_binary(g, RC_OP_ADD, "sum", bu, lat);
    if (a[4]) {
        int td = rc_emit_conv(g, "td", hb_leaf(b, a[0], (a[1] + 1) / 2, (a[2] + 1) / 2),
                              hb_param(b, "td.w", 4, sw, RC_PARAM_WEIGHT, 0, sd), -1, a[3], 3, 1, 1);
        s = rc_emit_binary(g, RC_OP_ADD, "sum_td", s, rc_emit_upsample(g, "up", td, a[1], a[2]));
    }
    hb_bn_params(b, "bn", a[3], p);
    int y = rc_emit_batchnorm(g, "bn", s, p[0], p[1], p[2], p[3]);
    if (a[5]) y = rc_emit_binary(g, RC_OP_ADD, "res", y, hb_leaf(b, a[3], a[1], a[2]));
    y = rc_emit_unary(g, RC_OP_RELU, "relu", y);
    if (a[6]) hb_out(b, rc_emit_gap(g, "pool", y));
    hb_out(b, y);
}
/* {C, h, w, inputs}: GRU gates as model.c's cell_gru emits them, over x (3C: z, r, n; inputs bit 1) and
 * u (3C; bit 2, with h_prev) */
static void b_gru(hb *b, const int *a) {
    rc_graph *g = b->g;
    const int C = a[0];
    int x = a[3] & 1 ? hb_leaf(b, 3 * C, a[1], a[2]) : -1, u = a[3] & 2 ? hb_leaf(b, 3 * C, a[1], a[2]) : -1;
    int hp = u >= 0 ? hb_leaf(b, C, a[1], a[2]) : -1, pre[3], r = -1;
    for (int j = 0; j < 3; j++) {
        if (j == 1 && u < 0) continue;
        int xj = x >= 0 ? rc_emit_slice(g, "x_j", x, j * C, C) : -1, uj = u >= 0 ? rc_emit_slice(g, "u_j", u, j * C, C) : -1;
        if (uj >= 0 && j == 2) uj = rc_emit_binary(g, RC_OP_MUL, "rh_n", r, uj);
        pre[j] = xj >= 0 && uj >= 0 ? rc_emit_binary(g, RC_OP_ADD, "pre", xj, uj) : xj >= 0 ? xj : uj;
        if (j < 2) pre[j] = rc_emit_unary(g, RC_OP_SIGMOID, "gate", pre[j]);
        if (j == 1) r = pre[1];
    }
    hb_out(b, rc_emit_lerp(g, "h", pre[0], rc_emit_unary(g, RC_OP_TANH, "n", pre[2]), hp));
}
/* {C, h, w, bn, c_prev, c out}: ConvLSTM gates on z (4C channels), as the model emits them; c_prev comes
 * through a slice (the fused cell needs it produced before it); c out: the cell state is an output too */
static void b_lstm(hb *b, const int *a) {
    rc_graph *g = b->g;
    const int C = a[0];
    int z = hb_leaf(b, 4 * C, a[1], a[2]), cp = -1, gt[4] = {-1, -1, -1, -1};
    if (a[4]) cp = rc_emit_slice(g, "c_prev", hb_leaf(b, C, a[1], a[2]), 0, C);
    if (a[3]) {
        int p[4];
        hb_bn_params(b, "bn", 4 * C, p);
        z = rc_emit_batchnorm(g, "z", z, p[0], p[1], p[2], p[3]);
    }
    for (int j = 0; j < 4; j++) {
        if (j == 1 && cp < 0) continue;
        gt[j] = rc_emit_unary(g, j == 3 ? RC_OP_TANH : RC_OP_SIGMOID, "gate", rc_emit_slice(g, "pre", z, j * C, C));
    }
    int c = rc_emit_binary(g, RC_OP_MUL, "ig", gt[0], gt[3]);
    if (cp >= 0) c = rc_emit_binary(g, RC_OP_ADD, "c", rc_emit_binary(g, RC_OP_MUL, "fc", gt[1], cp), c);
    hb_out(b, rc_emit_binary(g, RC_OP_MUL, "h", gt[2], rc_emit_unary(g, RC_OP_TANH, "tanh_c", c)));
    if (a[5]) hb_out(b, c);
}

static const hcase CASES[] = {
    /* name                          op               builder      args                             flags */
    {"conv 3x3 s1 p1 16->16",        RC_OP_CONV,      b_conv,      {16, 5, 5, 16, 3, 1, 1, 1},      F_BLK},
    {"conv 3x3 s2 p1 5->7",          RC_OP_CONV,      b_conv,      {5, 6, 5, 7, 3, 2, 1, 1},        F_BLK},
    {"conv 1x1 20->16 no bias",      RC_OP_CONV,      b_conv,      {20, 4, 4, 16, 1, 1, 0, 0},      F_BLK},
    {"conv 5x5 p2 3->4",             RC_OP_CONV,      b_conv,      {3, 5, 6, 4, 5, 1, 2, 1},        F_BLK},
    {"conv 3x3 p0 s1 4->3 no bias",  RC_OP_CONV,      b_conv,      {4, 5, 5, 3, 3, 1, 0, 0},        F_BLK},
    {"conv 3x3 16->32 + add",        RC_OP_CONV,      b_conv,      {16, 6, 5, 32, 3, 1, 1, 3},      F_BLK},
    {"conv 1x1 16->32 + add",        RC_OP_CONV,      b_conv,      {16, 6, 6, 32, 1, 1, 0, 3},      F_BLK},
    {"conv 3x3 3->5 + add",          RC_OP_CONV,      b_conv,      {3, 9, 7, 5, 3, 1, 1, 2},        F_BLK},
    {"conv 3x3 depthwise c=16",      RC_OP_CONV,      b_conv,      {16, 5, 5, 16, 3, 1, 1, 1, 16},  F_BLK},
    {"conv 3x3 s2 2 groups 6->10",   RC_OP_CONV,      b_conv,      {6, 5, 6, 10, 3, 2, 1, 0, 2},    F_BLK},
    {"conv 1x1 4 groups 16->24 + add", RC_OP_CONV,    b_conv,      {16, 4, 3, 24, 1, 1, 0, 3, 4},   F_BLK},
    {"conv 3x3 + bn + relu 16->16",  RC_OP_CONV,      b_conv_bn,   {16, 5, 5, 16},                  F_BLK | F_KINK | F_FOLD},
    {"conv + conv+add, bn, relu 16->16", RC_OP_CONV,  b_sum_bn,    {16, 6, 6, 16, 0, 0, 0},         F_BLK | F_KINK | F_FOLD},
    {"conv + conv+add + upsample(conv), bn, relu, pool 16->32", RC_OP_UPADD, b_sum_bn, {16, 6, 5, 32, 1, 0, 1},
                                                                                                     F_BLK | F_KINK | F_FOLD},
    {"the same, bn + residual 16->16 (no fold)", RC_OP_UPADD, b_sum_bn, {16, 6, 6, 16, 1, 1, 0},    F_BLK | F_KINK},
    {"conv + conv+add + upsample(conv), bn, relu 5->20", RC_OP_UPADD, b_sum_bn, {5, 5, 6, 20, 1, 0, 0}, F_BLK | F_KINK | F_FOLD},
    {"batchnorm c=5",                RC_OP_BATCHNORM, b_batchnorm, {5, 3, 4},                       F_BLK},
    {"batchnorm c=16",               RC_OP_BATCHNORM, b_batchnorm, {16, 2, 3},                      F_BLK},
    {"bn+relu c=16",                 RC_OP_BNACT,     b_bnact,     {16, 3, 3, 0, 1, 0},             F_BLK | F_KINK},
    {"bn+add+relu c=20",             RC_OP_BNACT,     b_bnact,     {20, 3, 4, 1, 1, 0},             F_BLK | F_KINK},
    {"bn+add c=16",                  RC_OP_BNACT,     b_bnact,     {16, 3, 3, 1, 0, 0},             F_BLK},
    {"bn+add+relu+pool c=16",        RC_OP_BNACT,     b_bnact,     {16, 4, 4, 1, 1, 1},             F_BLK | F_KINK},
    {"bn+pool c=5",                  RC_OP_BNACT,     b_bnact,     {5, 3, 3, 0, 0, 1},              F_BLK},
    {"lstm bn c_prev C=16",          RC_OP_LSTM,      b_lstm,      {16, 3, 3, 1, 1, 1},             F_BLK | F_NOACC0},
    {"lstm h only C=16",             RC_OP_LSTM,      b_lstm,      {16, 3, 3, 0, 0, 0},             F_BLK | F_NOACC0},
    {"lstm bn c_prev C=5",           RC_OP_LSTM,      b_lstm,      {5, 3, 3, 1, 1, 1},              F_NOACC0},
    {"lstm c_prev h only C=5",       RC_OP_LSTM,      b_lstm,      {5, 2, 3, 0, 1, 0},              F_NOACC0},
    {"gru x, u, h_prev C=16",        RC_OP_GRU,       b_gru,       {16, 3, 3, 3},                   F_BLK},
    {"gru x only C=16",              RC_OP_GRU,       b_gru,       {16, 2, 3, 1},                   F_BLK},
    {"gru u, h_prev only C=16",      RC_OP_GRU,       b_gru,       {16, 3, 2, 2},                   F_BLK},
    {"gru x, u, h_prev C=5",         RC_OP_GRU,       b_gru,       {5, 3, 3, 3},                    0},
    {"relu c=20",                    RC_OP_RELU,      b_unary,     {RC_OP_RELU, 20, 3, 4},          F_BLK | F_AWAY0},
    {"relu c=3",                     RC_OP_RELU,      b_unary,     {RC_OP_RELU, 3, 2, 5},           F_BLK | F_AWAY0},
    {"sigmoid c=16",                 RC_OP_SIGMOID,   b_unary,     {RC_OP_SIGMOID, 16, 3, 3},       F_BLK},
    {"sigmoid c=5",                  RC_OP_SIGMOID,   b_unary,     {RC_OP_SIGMOID, 5, 3, 3},        0},
    {"tanh c=20",                    RC_OP_TANH,      b_unary,     {RC_OP_TANH, 20, 3, 3},          F_BLK},
    {"tanh c=16",                    RC_OP_TANH,      b_unary,     {RC_OP_TANH, 16, 2, 2},          F_BLK},
    {"add c=16",                     RC_OP_ADD,       b_binary,    {RC_OP_ADD, 16, 3, 3, 0},        F_BLK},
    {"add a+a c=5",                  RC_OP_ADD,       b_binary,    {RC_OP_ADD, 5, 3, 4, 1},         F_BLK},
    {"mul c=20",                     RC_OP_MUL,       b_binary,    {RC_OP_MUL, 20, 3, 3, 0},        F_BLK},
    {"mul c=5 (a node of its own)",  RC_OP_MUL,       b_eltwise,   {RC_OP_MUL, 2, 5, 2, 2},         F_BLK},
    {"mul a*a c=16",                 RC_OP_MUL,       b_binary,    {RC_OP_MUL, 16, 2, 3, 1},        F_BLK},
    {"lerp c=16",                    RC_OP_LERP,      b_eltwise,   {RC_OP_LERP, 3, 16, 3, 3},       F_BLK},
    {"lerp b zero c=5",              RC_OP_LERP,      b_eltwise,   {RC_OP_LERP, 2, 5, 2, 3},        F_BLK},
    {"concat 2+16+5",                RC_OP_CONCAT,    b_concat,    {3, 3, 3, 2, 16, 5},             0},
    {"concat 16+16",                 RC_OP_CONCAT,    b_concat,    {2, 4, 2, 16, 16},               0},
    {"slice 48 [16, 48)",            RC_OP_SLICE,     b_slice,     {48, 3, 3, 16, 32},              F_BLK},
    {"slice 10 [3, 7)",              RC_OP_SLICE,     b_slice,     {10, 3, 4, 3, 4},                0},
    {"maxpool 3 s2 p1",              RC_OP_MAXPOOL,   b_pool,      {RC_OP_MAXPOOL, 3, 5, 5, 3, 2, 1}, F_DISTINCT},
    {"maxpool 2 s2",                 RC_OP_MAXPOOL,   b_pool,      {RC_OP_MAXPOOL, 16, 4, 6, 2, 2, 0}, F_DISTINCT},
    {"maxpool 3 s1 p1 5x6",          RC_OP_MAXPOOL,   b_pool,      {RC_OP_MAXPOOL, 2, 5, 6, 3, 1, 1}, F_DISTINCT},
    {"avgpool 3 s2 p1",              RC_OP_AVGPOOL,   b_pool,      {RC_OP_AVGPOOL, 3, 5, 5, 3, 2, 1}, 0},
    {"avgpool 3 s3",                 RC_OP_AVGPOOL,   b_pool,      {RC_OP_AVGPOOL, 16, 6, 5, 3, 3, 0}, 0},
    {"gap c=16",                     RC_OP_GAP,       b_gap,       {16, 3, 4},                      F_BLK},
    {"gap c=5",                      RC_OP_GAP,       b_gap,       {5, 3, 3},                       F_BLK},
    {"upsample 3x3->5x7 c=16",       RC_OP_UPSAMPLE,  b_upsample,  {16, 3, 3, 5, 7},                F_BLK},
    {"upsample 4x4->8x8 c=5",        RC_OP_UPSAMPLE,  b_upsample,  {5, 4, 4, 8, 8},                 F_BLK},
    {"resize 7x5->4x9 c=2",          RC_OP_UPSAMPLE,  b_upsample,  {2, 7, 5, 4, 9},                 F_BLK},
    {"downsample 7x7->4x4 c=3",      RC_OP_UPSAMPLE,  b_upsample,  {3, 7, 7, 4, 4},                 F_BLK},
    {"r + upsample 3x3->6x6 c=16",   RC_OP_UPADD,     b_upsample,  {16, 3, 3, 6, 6, 1},             F_BLK},
    {"upsample 4x3->7x5 + r c=20",   RC_OP_UPADD,     b_upsample,  {20, 4, 3, 7, 5, 2},             F_BLK},
    {"r + upsample 2x2->4x4 c=3",    RC_OP_UPADD,     b_upsample,  {3, 2, 2, 4, 4, 1},              F_BLK},
    {"linear 3x2x2->4",              RC_OP_LINEAR,    b_linear,    {3, 2, 2, 4, 1},                 0},
    {"linear 16->5 no bias",         RC_OP_LINEAR,    b_linear,    {16, 1, 1, 5, 0},                0},
};
#define NCASES ((int)(sizeof CASES / sizeof CASES[0]))

/* ------------------------------------------------------------------ plan configurations */

typedef struct {
    const char *name;
    int fast, opts, chunks, sync;
} hcfg;
enum { C_REF, C_FAST, C_BLK, C_CHUNK, C_SHARED, C_SYNC, NCFG };
#define ALL_OPTS (RC_PLAN_FUSE | RC_PLAN_BLOCKED | RC_PLAN_SHARE | RC_PLAN_REMAT | RC_PLAN_CHUNK | RC_PLAN_EVAL | RC_PLAN_STATS)
/* Without SHARE every tensor has memory of its own: what the poison check writes lands nowhere else. */
static const hcfg CFGS[NCFG] = {
    {"reference", 0, RC_PLAN_EVAL, 0, 0},
    {"fast plain", 1, RC_PLAN_FUSE | RC_PLAN_EVAL, 0, 0},
    {"fast blocked", 1, RC_PLAN_FUSE | RC_PLAN_BLOCKED | RC_PLAN_EVAL | RC_PLAN_STATS, 0, 0},
    {"fast blocked in 4 micro-batches", 1, RC_PLAN_FUSE | RC_PLAN_BLOCKED | RC_PLAN_CHUNK | RC_PLAN_EVAL | RC_PLAN_STATS, 4, 0},
    {"fast, default plan (shared arena)", 1, ALL_OPTS, 0, 0},
    {"fast blocked, synchronised batch norm", 1, RC_PLAN_FUSE | RC_PLAN_BLOCKED | RC_PLAN_CHUNK | RC_PLAN_EVAL, 4, 1},
};

/* data-parallel batch norm over one rank: the synchronised code path, this batch's statistics */
static void sum_over_one_rank(double *s, int n) {
    (void)s;
    (void)n;
}

#define BATCH 10   /* 4 micro-batches of unequal size */
#define FD_BATCH 2
#define FD_MAX 48  /* finite differences at most at this many elements per tensor (spread evenly) */

/* ------------------------------------------------------------------ one graph of a case */

enum { V_GAP = 1, V_ACC = 2, V_POISON = 4 };

typedef struct {
    rc_graph g;
    hb b;
    const hcase *c;
    int nb;                  /* builder nodes of the case */
    int nro, ro[MAXO + MAXL]; /* graph outputs: the readouts, then (V_ACC) a pool of each leaf */
    int acc_leaf[MAXO + MAXL]; /* V_ACC: output k pools leaf acc_leaf[k], -1 none */
    float *leafv[MAXL];      /* leaf values, plain */
    float *dl[MAXO + MAXL];  /* the loss gradient of each output, plain */
    uint64_t seed;
} hg;

static uint64_t name_seed(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static size_t tfloats(const rc_graph *g, int t) {
    const rc_tensor *x = &g->tensors[t];
    return (size_t)g->batch * x->c * x->h * x->w;
}

static float *randv(uint64_t seed, size_t n, unsigned flags) {
    rc_rng r;
    rc_rng_seed(&r, seed);
    float *v = rc_xmalloc(n * sizeof(float));
    if (flags & F_DISTINCT) {
        int *perm = rc_xmalloc(n * sizeof(int));
        for (size_t i = 0; i < n; i++) perm[i] = (int)i;
        rc_rng_shuffle(&r, perm, (int)n);
        for (size_t i = 0; i < n; i++) v[i] = 0.05f * (float)(perm[i] - (int)n / 2);
        free(perm);
        return v;
    }
    for (size_t i = 0; i < n; i++) {
        v[i] = rc_rng_normal(&r);
        if (flags & F_AWAY0) v[i] += v[i] >= 0 ? 0.1f : -0.1f;
    }
    return v;
}

/* plain values into tensor t (its layout; blocked padding lanes zero) */
static void put(rc_graph *g, int t, const float *v) {
    rc_tensor *x = &g->tensors[t];
    if (x->layout == RC_LAYOUT_BLK16)
        rc_layout_to_blk16(g->batch, x->c, x->h * x->w, v, x->x);
    else
        memcpy(x->x, v, tfloats(g, t) * sizeof(float));
}

static void set_globals(const hcfg *cfg) {
    rc_ops_fast = cfg->fast;
    rc_bn_allreduce = cfg->sync ? sum_over_one_rank : NULL;
    rc_plan_opts = cfg->opts;
    rc_sched_chunks = rc_eval_chunks = cfg->chunks;
    rc_sched_waves = cfg->chunks ? RC_SCHED_ALL : RC_SCHED_AUTO;
}
static void reset_globals(void) {
    rc_ops_fast = 1;
    rc_plan_opts = ALL_OPTS;
    rc_sched_chunks = rc_eval_chunks = 0;
    rc_sched_waves = RC_SCHED_AUTO;
}

/* Build and plan case c under cfg; values from the case's seed; the arena filled with NaN. */
static int hg_build(hg *h, const hcase *c, const hcfg *cfg, int batch, int variant) {
    memset(h, 0, sizeof *h);
    h->c = c;
    h->seed = name_seed(c->name) + (uint64_t)batch;
    rc_graph *g = &h->g;
    rc_graph_init(g, batch);
    h->b.g = g;
    g->input = rc_graph_tensor(g, "image", 1, 1, 1); /* the graph's image input: unused here */
    g->tensors[g->input].is_input = 1;
    c->build(&h->b, c->a);
    h->nb = g->nnodes;
    for (int k = 0; k < h->b.nout; k++) { /* readouts: a random 1x1 conv to 3 channels, or a global pool */
        int y = h->b.out[k], C = g->tensors[y].c, sw[4] = {3, C, 1, 1};
        char nm[32];
        snprintf(nm, sizeof nm, "readout%d.w", k);
        if (variant & V_GAP) {
            h->ro[h->nro++] = rc_emit_gap(g, nm, y);
        } else {
            int w = hb_param(&h->b, nm, 4, sw, RC_PARAM_WEIGHT, 0.0f, 1.0f / sqrtf((float)C));
            h->ro[h->nro++] = rc_emit_conv(g, nm, y, w, -1, 3, 1, 1, 0);
        }
    }
    for (int k = 0; k < MAXO + MAXL; k++) h->acc_leaf[k] = -1;
    /* V_ACC: a second consumer of each leaf after the op and the readouts: its backward writes the leaf's
     * gradient first, the op's adds to it */
    if (variant & V_ACC)
        for (int j = 0; j < h->b.nleaf; j++) {
            if (j == 0 && (c->flags & F_NOACC0)) continue;
            h->acc_leaf[h->nro] = j;
            h->ro[h->nro++] = rc_emit_gap(g, "acc_pool", h->b.leaf[j]);
        }
    for (int k = 0; k < h->nro; k++) rc_graph_mark_output(g, h->ro[k]);
    set_globals(cfg);
    rc_status st = rc_graph_plan(g);
    int fast = rc_ops_fast;
    reset_globals();
    rc_ops_fast = fast; /* the kernels read these when they run */
    rc_bn_allreduce = cfg->sync ? sum_over_one_rank : NULL;
    if (st) {
        CHECK(0, "%s (%s): plan: %s", c->name, cfg->name, rc_error());
        return -1;
    }
    for (size_t i = 0; i < g->act_floats; i++) g->act[i] = NAN;
    for (size_t i = 0; g->eval_arena && i < g->eval_floats; i++) g->eval_arena[i] = NAN;
    for (int p = 0; p < g->nparams; p++) {
        rc_param *q = &g->params[p];
        rc_rng r;
        rc_rng_seed(&r, h->seed * 31 + (uint64_t)p);
        for (size_t i = 0; i < q->numel; i++)
            q->w[i] = h->b.pinit[p][1] >= 0 ? h->b.pinit[p][0] + h->b.pinit[p][1] * rc_rng_normal(&r)
                                            : h->b.pinit[p][0] - h->b.pinit[p][1] * (2.0f * rc_rng_uniform(&r) - 1.0f);
    }
    for (int j = 0; j < h->b.nleaf; j++)
        h->leafv[j] = randv(h->seed * 7 + (uint64_t)j, tfloats(g, h->b.leaf[j]), c->flags);
    for (int k = 0; k < h->nro; k++) h->dl[k] = randv(h->seed * 13 + (uint64_t)k, tfloats(g, h->ro[k]), 0);
    return 0;
}

static void hg_free(hg *h) {
    for (int j = 0; j < MAXL; j++) free(h->leafv[j]);
    for (int k = 0; k < MAXO + MAXL; k++) free(h->dl[k]);
    rc_graph_free(&h->g);
    rc_ops_fast = 1;
    rc_bn_allreduce = NULL;
}

/* Forward from the leaf values; the loss sum(dl * output) in double. */
static double hg_forward(hg *h, int train) {
    rc_graph *g = &h->g;
    for (int j = 0; j < h->b.nleaf; j++) put(g, h->b.leaf[j], h->leafv[j]);
    rc_graph_forward(g, train);
    double s = 0;
    for (int k = 0; k < h->nro; k++) {
        const rc_tensor *y = &g->tensors[h->ro[k]];
        RC_ASSERT(y->layout == RC_LAYOUT_NCHW);
        for (size_t i = 0; i < tfloats(g, h->ro[k]); i++) s += (double)h->dl[k][i] * y->x[i];
    }
    return s;
}

static void hg_backward(hg *h) {
    rc_graph *g = &h->g;
    for (int k = 0; k < h->nro; k++) memcpy(g->tensors[h->ro[k]].dx, h->dl[k], tfloats(g, h->ro[k]) * sizeof(float));
    rc_graph_zero_grads(g);
    rc_graph_backward(g);
}

/* The exec node of the case's op among the case's own nodes, -1 none. */
static int case_xnode(const hg *h) {
    for (int i = 0; i < h->g.nxnodes; i++)
        if (h->g.xnodes[i].first < h->nb && h->g.xnodes[i].op == h->c->op) return i;
    return -1;
}

/* Fill with NaN the value of every tensor that the backward of no active exec node declares it reads.
 * Returns how many tensors it poisoned. */
static int poison(hg *h) {
    rc_graph *g = &h->g;
    int n = 0;
    char *read = rc_xcalloc((size_t)g->ntensors, 1);
    for (int i = 0; i < g->nxnodes; i++) {
        const rc_xnode *x = &g->xnodes[i];
        if (!x->active) continue;
        unsigned r = rc_op_bwd_reads(x); /* the op table's declaration, as the planner reads it */
        for (int j = 0; j < x->nin; j++)
            if (r & RC_READS_IN(j)) read[x->in[j]] = 1;
        if (r & RC_READS_OUT) read[x->out] = 1;
        if ((r & RC_READS_OUT2) && x->out2 >= 0) read[x->out2] = 1;
    }
    for (int t = 0; t < g->ntensors; t++) {
        rc_tensor *x = &g->tensors[t];
        if (x->dead || !x->x || read[t]) continue;
        size_t m = (size_t)g->batch * rc_tensor_floats(x);
        for (size_t i = 0; i < m; i++) x->x[i] = NAN;
        n++;
    }
    free(read);
    return n;
}

/* Padding lanes of every blocked tensor whose C % 16 != 0 are zero, values and gradients. */
static int padding_ok(const hg *h, char *bad, size_t nbad) {
    const rc_graph *g = &h->g;
    for (int t = 0; t < g->ntensors; t++) {
        const rc_tensor *x = &g->tensors[t];
        if (x->dead || x->layout != RC_LAYOUT_BLK16 || x->c % 16 == 0) continue;
        const int cb = (x->c + 15) / 16, hw = x->h * x->w;
        for (int v = 0; v < 2; v++) {
            const float *p = v ? x->dx : x->x;
            for (int n = 0; p && n < g->batch; n++)
                for (int s = 0; s < hw; s++)
                    for (int l = x->c % 16; l < 16; l++)
                        if (p[(((size_t)n * cb + cb - 1) * hw + s) * 16 + l] != 0.0f) {
                            snprintf(bad, nbad, "%s of %s", v ? "gradient" : "value", x->name);
                            return 0;
                        }
        }
    }
    return 1;
}

/* ------------------------------------------------------------------ results of one run */

enum { R_OUT, R_EVAL, R_DLEAF, R_DPARAM, R_PARAM };
static const char *R_NAME[] = {"output", "eval output", "gradient of input", "gradient of param", "param after"};
#define MAXR 48
typedef struct {
    int n, kind[MAXR], idx[MAXR];
    float *v[MAXR];
    size_t len[MAXR];
    int found, blocked, graph_blocked, acc_set, acc_clear, poisoned, nleaf;
    float *contrib[MAXL]; /* V_ACC: the pool's share of each leaf's gradient */
} hres;

static void res_add(hres *r, int kind, int idx, const float *v, size_t n) {
    RC_ASSERT(r->n < MAXR);
    r->kind[r->n] = kind;
    r->idx[r->n] = idx;
    r->len[r->n] = n;
    r->v[r->n] = rc_xmalloc((n ? n : 1) * sizeof(float));
    memcpy(r->v[r->n], v, n * sizeof(float));
    r->n++;
}
static void res_free(hres *r) {
    for (int k = 0; k < r->n; k++) free(r->v[k]);
    for (int j = 0; j < MAXL; j++) free(r->contrib[j]);
    memset(r, 0, sizeof *r);
}

/* One training step (forward, backward; V_POISON: poisoned between them) and an eval forward. */
static int run(const hcase *c, int cfgi, int variant, hres *r) {
    const hcfg *cfg = &CFGS[cfgi];
    memset(r, 0, sizeof *r);
    hg h;
    if (hg_build(&h, c, cfg, BATCH, variant)) {
        hg_free(&h);
        return -1;
    }
    rc_graph *g = &h.g;
    int xi = case_xnode(&h);
    r->found = xi >= 0;
    for (int i = 0; i < g->nxnodes; i++) /* the plan's condition for blocked layouts */
        if (g->xnodes[i].op == RC_OP_CONV) {
            rc_conv_dims d = rc_xnode_conv_dims(g, &g->xnodes[i], g->batch);
            r->graph_blocked |= rc_conv2d_blocked_fast(&d) != 0;
        }
    if (xi >= 0) {
        const rc_xnode *x = &g->xnodes[xi];
        for (int j = 0; j < x->nin; j++) r->blocked |= g->tensors[x->in[j]].layout == RC_LAYOUT_BLK16;
        r->blocked |= g->tensors[x->out].layout == RC_LAYOUT_BLK16;
    }
    r->nleaf = h.b.nleaf;
    /* (e) the schedule really runs in micro-batches, and inference in the eval pipeline */
    if (cfg->chunks && !cfg->sync)
        CHECK(g->nchunk == cfg->chunks && rc_sched_chunked(&g->fsched) > 0 && rc_sched_chunked(&g->bsched) > 0 &&
                  g->eval_arena != NULL,
              "%s (%s): %d micro-batches, %d/%d chunked waves, eval pipeline %s", c->name, cfg->name, g->nchunk,
              rc_sched_chunked(&g->fsched), rc_sched_chunked(&g->bsched), g->eval_arena ? "on" : "off");
    if (cfg->fast && (cfg->opts & RC_PLAN_FUSE)) { /* the eval fold where the case expects it, and only there */
        int folded = 0;
        for (int i = 0; i < g->nxnodes; i++) folded |= g->xnodes[i].op == RC_OP_BNACT && g->xnodes[i].eabs >= 0;
        CHECK(folded == !!(c->flags & F_FOLD), "%s (%s): batch norm %sfolded into the sum before it", c->name,
              cfg->name, folded ? "" : "not ");
    }
    /* the planned gradient flags of the case's nodes on its leaves */
    for (int i = 0; i < g->nxnodes; i++) {
        const rc_xnode *x = &g->xnodes[i];
        if (x->first >= h.nb) continue;
        for (int j = 0; j < x->nin; j++)
            for (int l = 0; l < h.b.nleaf; l++)
                if (x->in[j] == h.b.leaf[l]) {
                    if (x->acc[j]) r->acc_set |= 1 << l;
                    else r->acc_clear |= 1 << l;
                }
    }
    hg_forward(&h, 1);
    if (variant & V_POISON) r->poisoned = poison(&h);
    hg_backward(&h);
    char bad[96];
    if (!(variant & V_POISON) && !(cfg->opts & RC_PLAN_SHARE)) /* (shared: a dead tensor's memory is reused) */
        CHECK(padding_ok(&h, bad, sizeof bad), "%s (%s): padding lanes of the %s are not zero", c->name, cfg->name,
              bad);
    for (int k = 0; k < h.nro; k++) res_add(r, R_OUT, k, g->tensors[h.ro[k]].x, tfloats(g, h.ro[k]));
    for (int j = 0; j < h.b.nleaf; j++) {
        size_t n = tfloats(g, h.b.leaf[j]);
        float *d = rc_xmalloc(n * sizeof(float));
        rc_graph_read(g, h.b.leaf[j], 1, d);
        res_add(r, R_DLEAF, j, d, n);
        free(d);
    }
    for (int p = 0; p < g->nparams; p++) {
        const rc_param *q = &g->params[p];
        if (q->kind != RC_PARAM_BUFFER) res_add(r, R_DPARAM, p, q->g, q->numel);
        res_add(r, R_PARAM, p, q->w, q->numel);
    }
    for (int k = 0; k < h.nro; k++) /* the pool's share of leaf j's gradient: dl / hw, broadcast */
        if (h.acc_leaf[k] >= 0) {
            int j = h.acc_leaf[k];
            const rc_tensor *x = &g->tensors[h.b.leaf[j]];
            size_t hw = (size_t)x->h * x->w, n = tfloats(g, h.b.leaf[j]);
            r->contrib[j] = rc_xmalloc(n * sizeof(float));
            for (size_t i = 0; i < n; i++) r->contrib[j][i] = h.dl[k][i / hw] / (float)hw;
        }
    if (!(variant & (V_POISON | V_GAP))) {
        hg_forward(&h, 0);
        for (int k = 0; k < h.nro; k++) res_add(r, R_EVAL, k, g->tensors[h.ro[k]].x, tfloats(g, h.ro[k]));
    }
    hg_free(&h);
    return 0;
}

/* a against b (same case and variant), the kinds in mask, rel_err <= tol (0: bit for bit) */
static void compare(const char *what, const hres *a, const hres *b, unsigned mask, double tol) {
    CHECK(a->n == b->n, "%s: %d vs %d results", what, a->n, b->n);
    for (int k = 0; k < a->n && k < b->n; k++) {
        if (!(mask & (1u << a->kind[k]))) continue;
        RC_ASSERT(a->kind[k] == b->kind[k] && a->len[k] == b->len[k]);
        double e = rel_err(a->v[k], b->v[k], a->len[k]);
        if (tol == 0)
            CHECK(memcmp(a->v[k], b->v[k], a->len[k] * sizeof(float)) == 0, "%s: %s %d differs (rel err %.3g)", what,
                  R_NAME[a->kind[k]], a->idx[k], e);
        else
            CHECK(e <= tol, "%s: %s %d rel err %.3g (tolerance %g)", what, R_NAME[a->kind[k]], a->idx[k], e, tol);
    }
}
#define M(k) (1u << (k))
#define M_ALL (M(R_OUT) | M(R_EVAL) | M(R_DLEAF) | M(R_DPARAM) | M(R_PARAM))

/* ------------------------------------------------------------------ finite differences */

static int nfd; /* gradients checked */

/* the loss with v[i] moved by d */
static double loss_at(hg *h, float *v, size_t i, float d, double *step) {
    float save = v[i];
    v[i] = save + d;
    if (step) *step = (double)v[i] - (double)save; /* the step after rounding */
    double l = hg_forward(h, 1);
    v[i] = save;
    return l;
}

static void fd_tensor(const char *what, hg *h, float *v, size_t n, const float *grad, unsigned flags) {
    const float eps = flags & F_KINK ? 2e-3f : 1e-2f;
    double scale = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs((double)grad[i]));
    const double atol = 3e-3 * scale + 1e-5, rtol = 2e-2;
    size_t m = n < FD_MAX ? n : FD_MAX, bad = 0, kinks = 0, worst = 0;
    double worst_err = -1, worst_fd = 0;
    for (size_t k = 0; k < m; k++) {
        size_t i = k * n / m;
        double sp, sm, lp = loss_at(h, v, i, eps, &sp), lm = loss_at(h, v, i, -eps, &sm);
        double fd = (lp - lm) / (sp - sm), err = fabs(fd - grad[i]);
        if (!(err <= rtol * fabs(fd) + atol) && (flags & F_KINK)) {
            /* one-sided differences that disagree: a kink within the step, not a wrong gradient */
            double l0 = loss_at(h, v, i, 0, NULL), fwd = (lp - l0) / sp, bwd = (l0 - lm) / -sm;
            if (!(fabs(fwd - bwd) <= rtol * fabs(fd) + atol)) {
                kinks++;
                continue;
            }
        }
        if (!(err <= rtol * fabs(fd) + atol)) bad++;
        if (!(err <= worst_err)) worst_err = err, worst = i, worst_fd = fd;
        nfd++;
    }
    CHECK(bad == 0, "%s: %zu of %zu gradients off the finite differences; worst at %zu: %.7g vs %.7g (max |grad| %.3g)",
          what, bad, m, worst, (double)grad[worst], worst_fd, scale);
    CHECK(kinks * 8 <= m, "%s: %zu of %zu points not smooth within the step", what, kinks, m);
}

/* (a) finite differences of every leaf input and every param of the case, in the first plan that runs
 * the case's op (the reference, or the fast plain one for fused ops), at a small batch */
static void check_fd(const hcase *c) {
    for (int cfgi = C_REF; cfgi <= C_FAST; cfgi++) {
        hg h;
        if (hg_build(&h, c, &CFGS[cfgi], FD_BATCH, 0)) {
            hg_free(&h);
            return;
        }
        if (case_xnode(&h) < 0) {
            hg_free(&h);
            continue;
        }
        rc_graph *g = &h.g;
        hg_forward(&h, 1);
        hg_backward(&h);
        char what[160];
        for (int j = 0; j < h.b.nleaf; j++) {
            size_t n = tfloats(g, h.b.leaf[j]);
            float *d = rc_xmalloc(n * sizeof(float));
            rc_graph_read(g, h.b.leaf[j], 1, d);
            snprintf(what, sizeof what, "%s (%s): input %d", c->name, CFGS[cfgi].name, j);
            fd_tensor(what, &h, h.leafv[j], n, d, c->flags);
            free(d);
        }
        for (int p = 0; p < h.b.nparam; p++) {
            rc_param *q = &g->params[p];
            if (q->kind == RC_PARAM_BUFFER) continue;
            float *d = rc_xmalloc(q->numel * sizeof(float));
            memcpy(d, q->g, q->numel * sizeof(float));
            snprintf(what, sizeof what, "%s (%s): param %s", c->name, CFGS[cfgi].name, q->name);
            fd_tensor(what, &h, q->w, q->numel, d, c->flags);
            free(d);
        }
        hg_free(&h);
        return;
    }
    CHECK(0, "%s: no plan runs %s", c->name, rc_op_defs[c->op].name);
}

/* ------------------------------------------------------------------ every check of one case */

static int ncmp;

static double t_fd;
static void check_case(const hcase *c, int *found) {
    hres plain[NCFG], acc, p0, p1;
    char what[200];
    int have_dnnl =
#ifdef RC_HAVE_DNNL
        1;
#else
        0;
#endif
    double t0 = rc_now();
    check_fd(c);
    t_fd += rc_now() - t0;
    for (int k = 0; k < NCFG; k++) memset(&plain[k], 0, sizeof plain[k]);
    for (int k = 0; k < NCFG; k++) {
        const char *cn = CFGS[k].name;
        if (run(c, k, 0, &plain[k])) continue;
        *found |= plain[k].found;
        /* (d) the layouts the plan chose: blocked where a conv runs blocked by a fast path (with oneDNN in
         * every graph here, the readout's; without it where recur's kernels take a conv), the op's operands
         * then exactly when the case expects it */
        if (plain[k].found && CFGS[k].fast && (CFGS[k].opts & RC_PLAN_BLOCKED)) {
            const int want = (c->flags & F_BLK) && plain[k].graph_blocked;
            CHECK(plain[k].graph_blocked || !have_dnnl, "%s (%s): no conv runs blocked", c->name, cn);
            CHECK(plain[k].blocked == want, "%s (%s): operands of %s %s, expected %s", c->name, cn,
                  rc_op_defs[c->op].name, plain[k].blocked ? "blocked" : "plain", want ? "blocked" : "plain");
        }
        /* (b) overwrite: the first backward to reach each leaf overwrites (the arena was NaN) ... */
        for (int j = 0; j < plain[k].nleaf; j++)
            CHECK(plain[k].acc_clear & (1 << j), "%s (%s): input %d: no overwriting backward", c->name, cn, j);
        /* ... accumulate: a second consumer after the op writes first, the op's backward adds */
        if (!run(c, k, V_ACC, &acc)) {
            int any = 0;
            for (int j = 0; j < MAXL; j++) {
                if (!acc.contrib[j]) continue;
                any = 1;
                CHECK(!(acc.acc_clear & (1 << j)), "%s (%s): input %d is overwritten although a pool wrote it first",
                      c->name, cn, j);
            }
            /* each leaf's gradient: plain's plus the pool's share */
            for (int q = 0, pq = 0; q < acc.n; q++) {
                if (acc.kind[q] != R_DLEAF) continue;
                int j = acc.idx[q];
                while (pq < plain[k].n && !(plain[k].kind[pq] == R_DLEAF && plain[k].idx[pq] == j)) pq++;
                if (pq >= plain[k].n) break;
                float *want = rc_xmalloc(acc.len[q] * sizeof(float));
                for (size_t i = 0; i < acc.len[q]; i++)
                    want[i] = plain[k].v[pq][i] + (acc.contrib[j] ? acc.contrib[j][i] : 0.0f);
                double e = rel_err(acc.v[q], want, acc.len[q]);
                CHECK(e <= 1e-5, "%s (%s): input %d: accumulated gradient rel err %.3g against overwritten + pool's",
                      c->name, cn, j, e);
                free(want);
                ncmp++;
            }
            CHECK(any || c->flags & F_NOACC0, "%s (%s): no accumulating input", c->name, cn);
            res_free(&acc);
        }
        /* (f) declared reads: poison the rest between forward and backward; the gradients do not move
         * (in a plan without sharing, where a tensor's memory is its own) */
        if (CFGS[k].opts & RC_PLAN_SHARE) continue;
        memset(&p0, 0, sizeof p0);
        memset(&p1, 0, sizeof p1);
        if (!run(c, k, V_GAP, &p0) && !run(c, k, V_GAP | V_POISON, &p1)) {
            snprintf(what, sizeof what, "%s (%s): poisoned what no backward declares it reads", c->name, cn);
            compare(what, &p1, &p0, M(R_DLEAF) | M(R_DPARAM), 0);
            CHECK(p1.poisoned > 0, "%s: nothing poisoned", what);
            ncmp++;
        }
        res_free(&p0);
        res_free(&p1);
    }
    /* (c) fast vs reference, (e) micro-batches vs whole batch */
    snprintf(what, sizeof what, "%s: fast plain vs reference", c->name);
    compare(what, &plain[C_FAST], &plain[C_REF], M_ALL, 1e-4);
    snprintf(what, sizeof what, "%s: fast blocked vs reference", c->name);
    compare(what, &plain[C_BLK], &plain[C_REF], M_ALL, 1e-4);
    snprintf(what, sizeof what, "%s: 4 micro-batches vs whole batch", c->name);
    compare(what, &plain[C_CHUNK], &plain[C_BLK], M_ALL, 1e-5);
    /* the default plan: shared arena, rematerialisation */
    snprintf(what, sizeof what, "%s: default plan vs reference", c->name);
    compare(what, &plain[C_SHARED], &plain[C_REF], M_ALL, 1e-4);
    /* batch-norm statistics summed over ranks (one here): the whole batch at once, not in micro-batches */
    snprintf(what, sizeof what, "%s: synchronised batch norm vs reference", c->name);
    compare(what, &plain[C_SYNC], &plain[C_REF], M_ALL, 1e-4);
    ncmp += 5;
    for (int k = 0; k < NCFG; k++) res_free(&plain[k]);
}

static void test_cases(void) {
    int found[RC_OP_COUNT] = {0}, ncase[RC_OP_COUNT] = {0};
    double t0 = rc_now();
    for (int i = 0; i < NCASES; i++) {
        int f = 0;
        ncase[CASES[i].op]++;
        double tc = rc_now();
        check_case(&CASES[i], &f);
        if (getenv("RC_OPCASES_TIMES")) printf("  %-32s %.3f s\n", CASES[i].name, rc_now() - tc);
        CHECK(f, "%s: no plan ran its op %s", CASES[i].name, rc_op_defs[CASES[i].op].name);
        found[CASES[i].op] |= f;
    }
    /* coverage: every op of the table has a case that runs it */
    for (int op = 0; op < RC_OP_COUNT; op++)
        CHECK(ncase[op] > 0 && found[op], "op %s has no case (%d cases, run: %d): add a line to CASES",
              rc_op_defs[op].name, ncase[op], found[op]);
    printf("  %d cases over %d ops: %d gradients against finite differences, %d comparisons (%.2f s)\n", NCASES,
           RC_OP_COUNT, nfd, ncmp, rc_now() - t0);
    if (getenv("RC_OPCASES_TIMES")) printf("  finite differences %.3f s\n", t_fd);
}

int main(void) {
    /* tiny shapes: threads would only add barriers (OMP_NUM_THREADS set: as it says) */
    if (!getenv("OMP_NUM_THREADS")) rc_set_threads(1);
    RUN_TEST(test_cases);
    rc_conv2d_release();
    TEST_MAIN_END();
}
