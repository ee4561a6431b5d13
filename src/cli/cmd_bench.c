/* cmd_bench.c — `recur bench CONFIG`: training and inference throughput on synthetic batches of the
 * model's input shape, achieved GFLOP/s (training counted as 3x the forward FLOPs), peak resident
 * memory, the execution plan (fused ops, blocked activations, arena size), and with --profile the time
 * per op type including recomputation (train.recompute). */
#define _POSIX_C_SOURCE 200809L
#include <string.h>
#include <sys/resource.h>

#include "cli.h"
#include "base/rng.h"
#include "core/op_table.h"
#include "train/optim.h"

static const char *help =
    "usage: recur bench CONFIG [--batch N] [--threads N] [--steps N] [--set S.K=V ...] [--json] [--profile]\n"
    "\n"
    "Times N training steps (forward, scheduled loss, backward, optimizer) and N inference passes on\n"
    "random batches after 3 warm-up steps. Prints images/s, GFLOP/s (training = 3 x forward FLOPs) and\n"
    "peak RSS and the plan; --profile adds time per op type (fused ops: bn+act, lstm; replay = recomputed\n"
    "forward with train.recompute). JSON keys: train_images_per_s, infer_images_per_s, gflops,\n"
    "infer_gflops, peak_rss_mb, flops_per_image, batch, threads, steps, arena_mb, recompute,\n"
    "micro_batches (of the chunked schedule; 1: off), eval_arena_mb (the inference pipeline's; 0: off).\n";

int rc_cmd_bench(int argc, char **argv) {
    const char *config = NULL;
    rc_cli_sets sets;
    int json = 0, profile = 0;
    long batch = 0, threads = 0, steps = 20;
    const rc_cli_opt opts[] = {RC_OPT_FLAG("--json", &json),
                               RC_OPT_FLAG("--profile", &profile),
                               RC_OPT_SET,
                               RC_OPT_INT("--batch", &batch, 1, 65536),
                               RC_OPT_INT("--threads", &threads, 1, 256),
                               RC_OPT_INT("--steps", &steps, 1, 1000000),
                               RC_OPT_END};
    int rc = rc_cli_parse("bench", help, argc, argv, opts, &config, &sets);
    if (rc >= 0) return rc;
    if (!config) return rc_cli_usage_error("bench", "missing CONFIG");
    rc_model_cfg mc;
    rc_train_cfg tc;
    if (rc_cli_load_config(config, sets.v, sets.n, 1, NULL, NULL, &mc, &tc)) return rc_cli_error(rc_error());
    if (batch == 0) batch = tc.batch;
    if (threads > 0) rc_set_threads((int)threads);
    else if (tc.threads > 0) rc_set_threads(tc.threads);
    if (mc.loss == RC_LOSS_COARSE_TO_FINE) mc.loss = RC_LOSS_EVERY; /* synthetic labels have no taxonomy */
    rc_model m;
    if (rc_model_build(&mc, (int)batch, 0, &m)) return rc_cli_error(rc_error());
    rc_graph *g = &m.g;
    rc_graph_init_params(g, tc.seed);
    rc_rng rng;
    rc_rng_seed(&rng, 7);
    float *x = g->tensors[m.input].x;
    size_t nx = (size_t)batch * mc.in_c * mc.in_h * mc.in_w;
    int *labels = rc_xmalloc((size_t)batch * sizeof(int));
    for (size_t i = 0; i < nx; i++) x[i] = rc_rng_normal(&rng);
    for (long i = 0; i < batch; i++) labels[i] = (int)rc_rng_below(&rng, (uint32_t)mc.classes);
    /* dense readouts: a random class per position (the progressive loss is timed as its full-unroll term) */
    size_t npos = (size_t)batch * mc.in_h * mc.in_w;
    uint8_t *tgt = rc_xmalloc(mc.readout == RC_READOUT_DENSE ? npos : 1);
    for (size_t i = 0; mc.readout == RC_READOUT_DENSE && i < npos; i++) tgt[i] = (uint8_t)rc_rng_below(&rng, 2);
    double fwd_flops = rc_graph_flops_per_image(g);
    /* training */
    double t_train = 0;
    for (long s = 0; s < steps + 3; s++) {
        if (s == 3) {
            memset(&rc_prof, 0, sizeof rc_prof);
            rc_prof.enabled = profile;
            t_train = rc_now();
        }
        rc_graph_forward(g, 1);
        if (mc.readout == RC_READOUT_DENSE)
            rc_model_loss_dense(&m, tgt, NULL, NULL, NULL, 1);
        else
            rc_model_loss(&m, labels, NULL, NULL, 1);
        rc_graph_zero_grads(g);
        rc_graph_backward(g);
        rc_optim_step(g, &tc, 1e-4, s + 1);
    }
    t_train = rc_now() - t_train;
    rc_profile train_prof = rc_prof;
    rc_prof.enabled = 0;
    /* inference */
    for (int s = 0; s < 2; s++) rc_graph_forward(g, 0);
    memset(&rc_prof, 0, sizeof rc_prof);
    rc_prof.enabled = profile;
    double t_inf = rc_now();
    for (long s = 0; s < steps; s++) rc_graph_forward(g, 0);
    t_inf = rc_now() - t_inf;
    rc_profile infer_prof = rc_prof;
    rc_prof.enabled = 0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double rss_mb = (double)ru.ru_maxrss / 1024.0;
    double train_ips = (double)(steps * batch) / t_train, inf_ips = (double)(steps * batch) / t_inf;
    int nfused = 0, nblocked = 0, nlive = 0, nbn = 0, nstats = 0;
    for (int i = 0; i < g->nxnodes; i++) {
        nfused += g->xnodes[i].last > g->xnodes[i].first; /* absorbed a node */
        nbn += rc_op_saves_bn(&g->xnodes[i]);
        nstats += g->xnodes[i].bnpre >= 0; /* a producer that sums a batch norm's statistics */
    }
    for (int t = 0; t < g->ntensors; t++) {
        nlive += !g->tensors[t].dead;
        nblocked += !g->tensors[t].dead && g->tensors[t].layout == RC_LAYOUT_BLK16;
    }
    double arena_mb = 4.0 * (double)g->act_floats / 1048576.0, unshared_mb = 4.0 * (double)g->act_floats_unshared / 1048576.0;
    double gflops = train_ips * 3 * fwd_flops / 1e9, inf_gflops = inf_ips * fwd_flops / 1e9;
    const double eval_mb = g->eval_arena ? 4.0 * (double)g->eval_floats / 1048576.0 : 0.0; /* 0: no pipeline */
    if (json) {
        printf("{\"model\": ");
        rc_json_print(stdout, mc.name);
        printf(", \"batch\": %ld, \"threads\": %d, \"steps\": %ld, \"flops_per_image\": %.0f, "
               "\"train_images_per_s\": %.2f, \"infer_images_per_s\": %.2f, \"gflops\": %.2f, \"infer_gflops\": %.2f, "
               "\"peak_rss_mb\": %.1f, \"arena_mb\": %.1f, \"recompute\": %d, \"micro_batches\": %d, "
               "\"eval_arena_mb\": %.1f, \"eval_micro_batches\": %d, \"batch_norms\": %d, "
               "\"batch_norm_stats_in_producer\": %d}\n",
               batch, rc_get_threads(), steps, fwd_flops, train_ips, inf_ips, gflops, inf_gflops, rss_mb,
               arena_mb, mc.recompute, g->nchunk > 1 ? g->nchunk : 1, eval_mb, g->eval_arena ? g->eval_nchunk : 0,
               nbn, nstats);
    } else {
        printf("%s: batch %ld, %d threads, %.1f MFLOP/image forward\n", mc.name, batch, rc_get_threads(),
               fwd_flops / 1e6);
        printf("train: %8.1f images/s  %6.1f GFLOP/s (3x forward)\n", train_ips, gflops);
        printf("infer: %8.1f images/s  %6.1f GFLOP/s\n", inf_ips, inf_gflops);
        printf("peak RSS: %.1f MB\n", rss_mb);
        printf("plan: %d ops run as %d (%d fused), %d of %d activations blocked nChw16c, arena %.1f MB for activations "
               "and gradients (%.1f MB unshared)",
               g->nnodes, g->nxnodes, nfused, nblocked, nlive, arena_mb, unshared_mb);
        if (mc.recompute > 0) printf(", recompute every %d steps (%d segments)", mc.recompute, g->nseg);
        if (g->nchunk > 1) {
            int lo = g->batch / g->nchunk, hi = (g->batch + g->nchunk - 1) / g->nchunk;
            printf(", %d + %d waves in %d micro-batches of ", rc_sched_chunked(&g->fsched),
                   rc_sched_chunked(&g->bsched), g->nchunk);
            if (lo == hi)
                printf("%d images", lo);
            else
                printf("%d-%d images", lo, hi);
        } else {
            printf(", training over the whole batch");
        }
        if (eval_mb > 0) printf("; inference pipelined in %d micro-batches, arena %.1f MB", g->eval_nchunk, eval_mb);
        if (nbn > 0) printf("; %d of %d batch norms get their training statistics from the producer's epilogue", nstats, nbn);
        printf("\n");
    }
    if (profile) {
        double tot = 0;
        for (int o = 0; o < RC_OP_COUNT; o++) tot += train_prof.fwd_s[o] + train_prof.bwd_s[o] + train_prof.replay_s[o];
        FILE *f = json ? stderr : stdout;
        fprintf(f, "\nprofile of %ld training steps (graph time %.3fs of %.3fs wall; the rest is loss+optimizer)\n",
                steps, tot, t_train);
        fprintf(f, "%-12s %10s %10s %10s %10s %7s %12s\n", "op", "calls", "fwd ms", "bwd ms", "replay ms", "share",
                "fwd GFLOP/s");
        for (int o = 0; o < RC_OP_COUNT; o++) {
            if (!train_prof.fwd_calls[o]) continue;
            double fs = train_prof.fwd_s[o], bs = train_prof.bwd_s[o], rs = train_prof.replay_s[o];
            fprintf(f, "%-12s %10ld %10.1f %10.1f %10.1f %6.1f%% %12.1f\n", rc_op_name((rc_op_type)o),
                    train_prof.fwd_calls[o] / steps, 1e3 * fs / steps, 1e3 * bs / steps, 1e3 * rs / steps,
                    100 * (fs + bs + rs) / t_train, fs > 0 ? train_prof.fwd_flops[o] / fs / 1e9 : 0);
        }
        fprintf(f, "\nprofile of %ld inference passes (%.3fs wall)\n", steps, t_inf);
        fprintf(f, "%-12s %10s %10s %7s %12s\n", "op", "calls", "fwd ms", "share", "GFLOP/s");
        for (int o = 0; o < RC_OP_COUNT; o++) {
            if (!infer_prof.fwd_calls[o]) continue;
            double fs = infer_prof.fwd_s[o];
            fprintf(f, "%-12s %10ld %10.1f %6.1f%% %12.1f\n", rc_op_name((rc_op_type)o), infer_prof.fwd_calls[o] / steps,
                    1e3 * fs / steps, 100 * fs / t_inf, fs > 0 ? infer_prof.fwd_flops[o] / fs / 1e9 : 0);
        }
    }
    free(labels);
    free(tgt);
    rc_model_free(&m);
    return 0;
}
