/* cmd_export.c — `recur export RUN_DIR|CKPT --format safetensors|npz|onnx --out FILE`: the trained
 * model's tensors (safetensors, npz) or its unrolled inference graph (ONNX) for other tools. */
#include <string.h>

#include "cli.h"
#include "export/export.h"
#include "io/checkpoint.h"
#include "io/dataset.h"

static const char *help =
    "usage: recur export RUN_DIR|CKPT --format FORMAT --out FILE [options]\n"
    "\n"
    "Write a trained model for other tools (docs/EXPORT.md names every tensor):\n"
    "  safetensors   every param and batch-norm running statistic, the effective config, recur's version\n"
    "                and the input normalisation in the header's __metadata__\n"
    "  npz           the same tensors for numpy.load (metadata as 0-d string arrays under __metadata__.*)\n"
    "  onnx          the unrolled inference graph: input 'image' (N, C, H, W) = pixel / 255, one output\n"
    "                'logits_t' (N, classes) per readout t = 1..R, batch dimension dynamic\n"
    "\n"
    "options:\n"
    "  --format F           safetensors, npz or onnx (default: from the --out file's extension)\n"
    "  --out FILE           where to write (atomically: a failure leaves FILE as it was)\n"
    "  --data SPEC          dataset whose training split gives the input normalisation (default: the run's)\n"
    "  --iterations T       onnx: unroll tied areas T steps (default: as trained)\n";

static const char *format_of(const char *out) {
    const char *dot = strrchr(out, '.');
    if (!dot) return NULL;
    if (!strcmp(dot, ".safetensors")) return "safetensors";
    if (!strcmp(dot, ".npz")) return "npz";
    if (!strcmp(dot, ".onnx")) return "onnx";
    return NULL;
}

int rc_cmd_export(int argc, char **argv) {
    const char *run = NULL, *format = NULL, *out = NULL, *data = NULL;
    long iters = 0;
    const rc_cli_opt opts[] = {RC_OPT_STR("--format", &format, NULL),
                               RC_OPT_STR("--out", &out, NULL),
                               RC_OPT_STR("--data", &data, NULL),
                               RC_OPT_INT("--iterations", &iters, 1, RC_MAX_ITERS),
                               RC_OPT_END};
    int rc = rc_cli_parse("export", help, argc, argv, opts, &run, NULL);
    if (rc >= 0) return rc;
    if (!run) return rc_cli_usage_error("export", "missing RUN_DIR or CKPT");
    if (!out) return rc_cli_usage_error("export", "missing --out FILE");
    if (!format) format = format_of(out);
    if (!format) return rc_cli_usage_error("export", "missing --format (safetensors, npz or onnx)");
    int fmt = !strcmp(format, "safetensors") ? 0 : !strcmp(format, "npz") ? 1 : !strcmp(format, "onnx") ? 2 : -1;
    if (fmt < 0) return rc_cli_usage_error("export", "--format: '%s' is not safetensors, npz or onnx", format);
    if (iters && fmt != 2) return rc_cli_usage_error("export", "--iterations applies to --format onnx only");
    char ckpt[4200];
    char *text = NULL;
    rc_model_cfg mc;
    rc_train_cfg tc;
    if (rc_cli_open_run(run, ckpt, sizeof ckpt, &text, &mc, &tc)) return rc_cli_error(rc_error());
    const char *spec = data ? data : tc.data;
    rc_dataset train = {0};
    rc_model m;
    int built = 0, code = 1;
    if (rc_dataset_load(spec, 1, &train)) goto fail;
    if (train.c != mc.in_c) {
        rc_fail("dataset %s has %d channels, the model expects %d", spec, train.c, mc.in_c);
        goto fail;
    }
    if (rc_model_build(&mc, 1, (int)iters, &m)) goto fail;
    built = 1;
    if (rc_checkpoint_load(ckpt, &m.g, NULL)) goto fail;
    rc_export_info info = {.config_text = text, .data_spec = spec, .channels = train.c};
    for (int c = 0; c < train.c && c < 3; c++) {
        info.mean[c] = train.mean[c];
        info.std[c] = train.std[c];
    }
    rc_status st = fmt == 0   ? rc_export_safetensors(&m.g, &info, out)
                   : fmt == 1 ? rc_export_npz(&m.g, &info, out)
                              : rc_export_onnx(&m, &info, out);
    if (st) goto fail;
    fprintf(stderr, "recur: wrote %s (%s, model %s)\n", out, format, mc.name);
    code = 0;
    goto done;
fail:
    rc_cli_error(rc_error());
done:
    if (built) rc_model_free(&m);
    rc_dataset_free(&train);
    free(text);
    return code;
}
