/* fuzz_config.c — libFuzzer target for configs: rc_ini_parse on arbitrary bytes; when it parses, the
 * canonical text must parse back to an equal config; then rc_config_read, and rc_model_build at batch 1
 * under a 64 MB plan limit (RECUR_MAX_MEMORY_MB), with one reference forward/backward when the model is
 * small. Errors must name the file. Also linked into a plain replay driver (fuzz/replay.c). */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>

#include "fuzz_util.h"
#include "io/ini.h"
#include "models/model.h"
#include "ops/ops.h"

#define NAME "fuzz.cfg"

/* to_text -> parse -> equal, or abort. */
static void roundtrip(const rc_ini *ini) {
    char *text = NULL;
    size_t len = 0;
    if (rc_ini_to_text(ini, &text, &len) != RC_OK) fz_die("rc_ini_to_text failed", rc_error());
    rc_ini *back = NULL;
    if (rc_ini_parse(text, len, "canonical", &back) != RC_OK) {
        fprintf(stderr, "canonical text:\n%s\n", text);
        fz_die("canonical text does not parse", rc_error());
    }
    if (!rc_ini_equal(ini, back)) {
        fprintf(stderr, "canonical text:\n%s\n", text);
        fz_die("canonical text parses to a different config", "");
    }
    rc_ini_free(back);
    free(text);
}

/* One training step at batch 1 with the reference ops (every label 0, one coarse group). */
static void step(rc_model *m) {
    static int labels[1] = {0};
    static int coarse_of[1000];
    rc_graph_init_params(&m->g, 1);
    float *x = m->g.tensors[m->input].x;
    size_t n = (size_t)m->cfg.in_c * m->cfg.in_h * m->cfg.in_w;
    for (size_t i = 0; i < n; i++) x[i] = (float)(i % 7) - 3.0f;
    rc_graph_forward(&m->g, 1);
    rc_model_loss(m, labels, m->cfg.loss == RC_LOSS_COARSE_TO_FINE ? coarse_of : NULL, NULL, 1);
    rc_graph_zero_grads(&m->g);
    rc_graph_backward(&m->g);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int init = 0;
    if (!init) {
        setenv("RECUR_MAX_MEMORY_MB", "64", 0);
        rc_ops_fast = 0; /* reference ops: no JIT per new shape */
        rc_set_threads(1);
        init = 1;
    }
    rc_ini *ini = NULL;
    if (rc_ini_parse((const char *)data, size, NAME, &ini) != RC_OK) {
        fz_check_error(NAME);
        if (ini) fz_die("failed parse left a config", "");
        return 0;
    }
    roundtrip(ini);
    rc_model_cfg mc;
    rc_train_cfg tc;
    if (rc_config_read(ini, "fuzz", &mc, &tc) != RC_OK) {
        fz_check_error(NAME);
        rc_ini_free(ini);
        return 0;
    }
    roundtrip(ini); /* the effective config, defaults included */
    rc_ini_free(ini);
    rc_model m;
    if (rc_model_build(&mc, 1, 0, &m) != RC_OK) {
        fz_check_error(NULL);
        return 0;
    }
    if (rc_graph_flops_per_image(&m.g) < 2e6) step(&m);
    rc_model_free(&m);
    return 0;
}
