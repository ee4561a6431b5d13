/* graph_fuse.h — the plan's view of who reads each tensor (rc_cons) and the fused forms it makes from the
 * builder's nodes (graph_fuse.c): each op's entry in the op table (op_table.h) lists the ones that start
 * at it. */
#ifndef RC_GRAPH_FUSE_H
#define RC_GRAPH_FUSE_H

#include "graph_plan.h"

/* CSR: the consumers of tensor t are list[start[t] .. start[t+1]) (node indices). */
typedef struct rc_cons {
    int *start, *list;
} rc_cons;
/* Of the builder's nodes; of the plan's exec nodes. */
void rc_cons_of_nodes(const rc_graph *g, rc_cons *c);
void rc_cons_of_xnodes(const rc_graph *g, rc_cons *c);
void rc_cons_free(rc_cons *c);
static inline int rc_cons_count(const rc_cons *c, int t) { return c->start[t + 1] - c->start[t]; }
/* The one consumer of t, or -1. */
static inline int rc_cons_one(const rc_cons *c, int t) { return rc_cons_count(c, t) == 1 ? c->list[c->start[t]] : -1; }

/* Fused forms (rc_fuse_fn, op_table.h): from builder node i on, fill exec node x and return the last node
 * absorbed, or -1. LSTM_BN: batch norm + ConvLSTM gates (fuse only); LSTM_SLICE: the gates from z's first
 * slice (fuse only); BNACT: batch norm (+ add) (+ relu) (+ a readout's pool), only the batch norm when
 * !fuse; CONV_ADD: a convolution with the add after it (fuse only); UPSAMPLE_ADD: an upsample with the add
 * after it (fuse only); GRU: a GRU cell's gates from its first slice (fuse only). */
int rc_fuse_lstm_bn(rc_graph *g, const rc_cons *cs, int i, int fuse, rc_xnode *x);
int rc_fuse_lstm_slice(rc_graph *g, const rc_cons *cs, int i, int fuse, rc_xnode *x);
int rc_fuse_gru(rc_graph *g, const rc_cons *cs, int i, int fuse, rc_xnode *x);
int rc_fuse_bnact(rc_graph *g, const rc_cons *cs, int i, int fuse, rc_xnode *x);
int rc_fuse_conv_add(rc_graph *g, const rc_cons *cs, int i, int fuse, rc_xnode *x);
int rc_fuse_upsample_add(rc_graph *g, const rc_cons *cs, int i, int fuse, rc_xnode *x);

/* Exec node x running builder node n alone. */
void rc_xnode_from(const rc_node *n, rc_xnode *x);

#endif
