/* fuzz_checkpoint.c — libFuzzer target for checkpoints: rc_checkpoint_parse on arbitrary bytes, with no
 * graph and against a small fixed model (fuzz/corpus/checkpoint/ holds its checkpoints), once as given
 * and once with the CRC-32 patched to match so the fuzzer gets past the checksum. A failed parse must
 * name the file and change nothing in the model; a stored config must read as the CLI reads it. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <zlib.h>

#include "fuzz_util.h"
#include "io/checkpoint.h"
#include "io/ini.h"
#include "models/model.h"

#define NAME "fuzz.ckpt"

/* The fixed model: keep in step with fuzz/make_seeds.sh. */
static const char fixed_cfg[] = "[model]\nname = fz\ninput = 1x8x8\nclasses = 10\n"
                                "[area V1]\nchannels = 4\niterations = 2\ntied = yes\n";

static rc_model model;
static float *snapshot;

static void build_fixed(void) {
    rc_ini *ini = NULL;
    rc_model_cfg mc;
    rc_train_cfg tc;
    if (rc_ini_parse(fixed_cfg, sizeof fixed_cfg - 1, "fixed", &ini) || rc_config_read(ini, "fz", &mc, &tc) ||
        rc_model_build(&mc, 1, 0, &model))
        fz_die("cannot build the fixed model", rc_error());
    rc_ini_free(ini);
    rc_graph_init_params(&model.g, 7);
    snapshot = malloc(4 * model.g.param_floats * sizeof(float));
    if (!snapshot) fz_die("out of memory", "");
}

static void take_snapshot(void) {
    size_t n = model.g.param_floats * sizeof(float);
    memcpy(snapshot, model.g.pw, n);
    memcpy((char *)snapshot + n, model.g.pm, n);
    memcpy((char *)snapshot + 2 * n, model.g.pv, n);
}

static int unchanged(void) {
    size_t n = model.g.param_floats * sizeof(float);
    return !memcmp(snapshot, model.g.pw, n) && !memcmp((char *)snapshot + n, model.g.pm, n) &&
           !memcmp((char *)snapshot + 2 * n, model.g.pv, n);
}

static void parse_all(const uint8_t *data, size_t size) {
    /* no graph: metadata and the stored config, which must then read as `recur eval` reads it */
    rc_ckpt_meta meta;
    char *text = (char *)"sentinel";
    if (rc_checkpoint_parse(data, size, NAME, NULL, &meta, &text) != RC_OK) {
        fz_check_error(NAME);
        if (text) fz_die("failed parse left a config text", "");
    } else {
        if (!text) fz_die("parse gave no config text", "");
        rc_ini *ini = NULL;
        rc_model_cfg mc;
        rc_train_cfg tc;
        if (rc_ini_parse(text, strlen(text), "stored", &ini) == RC_OK && rc_config_read(ini, "m", &mc, &tc) != RC_OK)
            fz_check_error("stored");
        rc_ini_free(ini);
        free(text);
    }
    /* against the fixed model */
    take_snapshot();
    if (rc_checkpoint_parse(data, size, NAME, &model.g, &meta, NULL) != RC_OK) {
        fz_check_error(NAME);
        if (!unchanged()) fz_die("a failed parse changed the model", rc_error());
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!snapshot) build_fixed();
    parse_all(data, size);
    if (size >= 16) { /* the same bytes with a matching checksum */
        uint8_t *b = malloc(size);
        if (!b) fz_die("out of memory", "");
        memcpy(b, data, size);
        uLong crc = crc32(0L, Z_NULL, 0);
        for (size_t done = 0; done < size - 4;) {
            uInt k = (uInt)((size - 4 - done) > (1u << 30) ? (1u << 30) : (size - 4 - done));
            crc = crc32(crc, b + done, k);
            done += k;
        }
        for (int i = 0; i < 4; i++) b[size - 4 + i] = (uint8_t)(crc >> (8 * i));
        parse_all(b, size);
        free(b);
    }
    return 0;
}
