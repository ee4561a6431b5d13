/* cmd_info.c — `recur info CONFIG`: per area and in total, params (synapses), tied or not, units
 * (neurons) per step and unrolled, forward FLOPs per image, and effective depth. */
#include <string.h>

#include "cli.h"

static const char *help =
    "usage: recur info CONFIG [--set S.K=V ...] [--iterations T] [--json]\n"
    "\n"
    "Params (synapses: stored weights), units (neurons: state activations per image, per step and summed\n"
    "over the unroll), forward FLOPs per image and effective depth (conv layers on the longest path from\n"
    "the image to the last readout), per area and in total.\n";

typedef struct {
    size_t params;
    long units_step, units_unrolled;
    double flops;
} area_info;

int rc_cmd_info(int argc, char **argv) {
    const char *config = NULL;
    rc_cli_sets sets;
    int json = 0;
    long iters = 0;
    const rc_cli_opt opts[] = {RC_OPT_FLAG("--json", &json),
                               RC_OPT_SET,
                               RC_OPT_INT("--iterations", &iters, 1, RC_MAX_ITERS),
                               RC_OPT_END};
    int rc = rc_cli_parse("info", help, argc, argv, opts, &config, &sets);
    if (rc >= 0) return rc;
    if (!config) return rc_cli_usage_error("info", "missing CONFIG");
    rc_model_cfg mc;
    rc_train_cfg tc;
    if (rc_cli_load_config(config, sets.v, sets.n, 1, NULL, NULL, &mc, &tc)) return rc_cli_error(rc_error());
    rc_model m;
    if (rc_model_build(&mc, 1, (int)iters, &m)) return rc_cli_error(rc_error());
    const rc_graph *g = &m.g;
    int K = mc.nareas;
    area_info ai[RC_MAX_AREAS + 1];
    memset(ai, 0, sizeof ai);
    for (int p = 0; p < g->nparams; p++) {
        const rc_param *pp = &g->params[p];
        if (pp->kind == RC_PARAM_BUFFER) continue;
        int which = K; /* head */
        for (int k = 0; k < K; k++) {
            size_t n = strlen(mc.areas[k].name);
            if (!strncmp(pp->name, mc.areas[k].name, n) && pp->name[n] == '.') which = k;
        }
        ai[which].params += pp->numel;
    }
    for (int i = 0; i < g->nnodes; i++) {
        int k = m.node_area[i];
        ai[k < 0 ? K : k].flops += rc_graph_node_flops(g, i);
    }
    long units_total = 0, units_unrolled = 0;
    for (int k = 0; k < K; k++) {
        long T = iters > 0 ? iters : mc.areas[k].iterations;
        ai[k].units_step = (long)mc.areas[k].channels * m.area_h[k] * m.area_w[k];
        ai[k].units_unrolled = ai[k].units_step * T;
        units_total += ai[k].units_step;
        units_unrolled += ai[k].units_unrolled;
    }
    size_t params = rc_graph_trainable_params(g);
    double flops = rc_graph_flops_per_image(g);
    int depth = rc_model_effective_depth(&m);
    if (json) {
        printf("{\"model\": ");
        rc_json_print(stdout, mc.name);
        printf(", \"params\": %zu, \"flops\": %.0f, \"effective_depth\": %d, \"readouts\": %d, "
               "\"units_per_step\": %ld, \"units_unrolled\": %ld, \"head_params\": %zu, \"areas\": [",
               params, flops, depth, m.nreadouts, units_total, units_unrolled, ai[K].params);
        for (int k = 0; k < K; k++) {
            const rc_area_cfg *a = &mc.areas[k];
            printf("%s{\"name\": ", k ? ", " : "");
            rc_json_print(stdout, a->name);
            printf(", \"cell\": \"%s\", \"tied\": %s, \"iterations\": %d, \"channels\": %d, "
                   "\"size\": [%d, %d], \"params\": %zu, \"units_per_step\": %ld, \"units_unrolled\": %ld, "
                   "\"flops\": %.0f}",
                   rc_cell_name(a->cell), a->tied ? "true" : "false",
                   iters > 0 ? (int)iters : a->iterations, a->channels, m.area_h[k], m.area_w[k], ai[k].params,
                   ai[k].units_step, ai[k].units_unrolled, ai[k].flops);
        }
        printf("]}\n");
    } else {
        printf("model %s: %d area%s, unroll %s, %d readouts%s\n", mc.name, K, K > 1 ? "s" : "",
               mc.unroll == RC_UNROLL_LOCKSTEP ? "lockstep" : "sequential", m.nreadouts,
               mc.halting == RC_HALT_PONDER ? " with ponder halting heads (in the readout row)" : "");
        printf("%-10s %-9s %5s %6s %9s %10s %12s %14s %12s\n", "area", "cell", "tied", "iters", "channels", "size",
               "params", "units/step", "MFLOP/image");
        for (int k = 0; k < K; k++) {
            const rc_area_cfg *a = &mc.areas[k];
            char size[32];
            snprintf(size, sizeof size, "%dx%d", m.area_h[k], m.area_w[k]);
            printf("%-10s %-9s %5s %6d %9d %10s %12zu %14ld %12.2f\n", a->name, rc_cell_name(a->cell),
                   a->tied ? "yes" : "no", iters > 0 ? (int)iters : a->iterations, a->channels, size, ai[k].params,
                   ai[k].units_step, ai[k].flops / 1e6);
        }
        printf("%-10s %-9s %5s %6s %9s %10s %12zu %14s %12.2f\n", "readout", mc.readout == RC_READOUT_DENSE ? "conv" : "linear", mc.head_per_iter ? "no" : "yes",
               "", "", "", ai[K].params, "", ai[K].flops / 1e6);
        printf("total: %zu params, %ld units per step (%ld unrolled), %.2f MFLOP per image forward, "
               "effective depth %d\n",
               params, units_total, units_unrolled, flops / 1e6, depth);
    }
    rc_model_free(&m);
    return 0;
}
