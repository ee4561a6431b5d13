/* test_op_table.c — the op table (src/core/op_table.h) is complete: every rc_op_type has an entry with its
 * name, FLOPs, forward, backward, a backward-reads mask that was set (RC_READS_NONE when it reads nothing)
 * and a layout rule; the per-node hooks narrow the masks as the planner needs (BNACT's relu mask, LSTM's
 * optional c_prev). */
#include <string.h>

#include "core/graph_plan.h"
#include "core/op_table.h"
#include "test.h"

static void test_complete(void) {
    const char *why = NULL;
    int bad = rc_op_table_check(&why);
    CHECK(bad == 0, "op %d (%s): %s", bad - 1, bad > 0 ? rc_op_name((rc_op_type)(bad - 1)) : "", why ? why : "");
    for (int op = 0; op < RC_OP_COUNT; op++) {
        const rc_op_def *d = &rc_op_defs[op];
        /* each field read directly too: a zero entry must not pass */
        CHECK(d->name && *d->name && d->flops && d->forward && d->backward, "op %d: a missing field", op);
        CHECK(d->bwd_reads != 0, "op %d (%s): bwd_reads unset", op, d->name ? d->name : "?");
        CHECK(d->layout == RC_LAY_ANY || d->layout == RC_LAY_SAME || d->layout == RC_LAY_PLAIN,
              "op %d (%s): layout rule %d", op, d->name ? d->name : "?", d->layout);
        CHECK(d->fwd_phased >= RC_PHASED_NO && d->fwd_phased <= RC_PHASED_IF_BN, "op %d: fwd_phased", op);
        CHECK(d->bn_stats >= RC_PHASED_NO && d->bn_stats <= RC_PHASED_IF_BN, "op %d: bn_stats", op);
        CHECK(!d->bwd_phased || d->fwd_phased, "op %d: backward phases without forward ones", op);
        CHECK(strcmp(rc_op_name((rc_op_type)op), d->name ? d->name : "") == 0, "op %d: rc_op_name", op);
        for (int j = 0; j < op; j++)
            CHECK(!d->name || !rc_op_defs[j].name || strcmp(d->name, rc_op_defs[j].name) != 0,
                  "ops %d and %d share the name %s", j, op, d->name);
        int nf = 0;
        while (nf <= RC_MAX_FUSE && d->fuse[nf]) nf++;
        CHECK(nf <= RC_MAX_FUSE, "op %d: fused forms not NULL-terminated", op);
    }
    CHECK(strcmp(rc_op_name(RC_OP_COUNT), "?") == 0, "rc_op_name past the table");
}

/* The hooks: a node's mask is within its op's bits and follows its options. */
static void test_bwd_reads_hooks(void) {
    rc_xnode n;
    memset(&n, 0, sizeof n);
    n.op = RC_OP_BNACT;
    n.nin = 1;
    n.out2 = -1;
    CHECK(rc_op_bwd_reads(&n) == RC_READS_IN(0), "bn+act without residual reads x only");
    n.relu = 1;
    n.nin = 2;
    CHECK(rc_op_bwd_reads(&n) == (RC_READS_IN(0) | RC_READS_OUT), "bn+act+add+relu reads x and y (the mask)");
    n.relu = 0;
    CHECK(rc_op_bwd_reads(&n) == RC_READS_IN(0), "bn+act+add without relu reads x only");
    n.op = RC_OP_LSTM;
    n.nin = 1;
    CHECK(rc_op_bwd_reads(&n) == (RC_READS_IN(0) | RC_READS_OUT2), "lstm without c_prev: z and c");
    n.nin = 2;
    CHECK(rc_op_bwd_reads(&n) == (RC_READS_IN(0) | RC_READS_IN(1) | RC_READS_OUT2), "lstm: z, c_prev and c");
    for (int op = 0; op < RC_OP_COUNT; op++) {
        n.op = (rc_op_type)op;
        for (n.nin = 1; n.nin <= 2; n.nin++) {
            unsigned r = rc_op_bwd_reads(&n);
            CHECK(r != 0 && (r & ~rc_op_defs[op].bwd_reads) == 0, "op %s: node mask %#x outside the table's %#x",
                  rc_op_name(n.op), r, rc_op_defs[op].bwd_reads);
        }
    }
}

int main(void) {
    RUN_TEST(test_complete);
    RUN_TEST(test_bwd_reads_hooks);
    TEST_MAIN_END();
}
