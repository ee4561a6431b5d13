/* test_onnx_ops.c — the ONNX export below the CLI: the protobuf writer's bytes against hand-encoded
 * ones, the export's refusals (a failed export leaves the file as it was), and a hand-built graph with
 * the ops no config emits (max and average pooling with padding, concat, a batch norm without gamma and
 * beta, an odd-ratio upsampling, a linear over a whole feature map, no bias).
 * With arguments DIR SPEC (tests/test_onnx.sh) it also writes DIR/ops.onnx and DIR/ops.npy, recur's
 * logits for the first 200 test images of SPEC, which tests/check_onnx.py compares with onnxruntime. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "export/export.h"
#include "export/pbuf.h"
#include "io/dataset.h"
#include "io/files.h"
#include "io/npy.h"
#include "test.h"

static char tmpdir[64];

/* s occurs in the n bytes at buf */
static int contains(const char *buf, size_t n, const char *s) {
    size_t k = strlen(s);
    for (size_t i = 0; i + k <= n; i++)
        if (!memcmp(buf + i, s, k)) return 1;
    return 0;
}

static int bytes_are(const rc_pb *pb, const uint8_t *want, size_t n) {
    return pb->n == n && memcmp(pb->b, want, n) == 0;
}

static void test_pbuf_wire(void) {
    rc_pb pb = {0};
    rc_pb_int(&pb, 1, 150); /* the protobuf documentation's example */
    CHECK(bytes_are(&pb, (const uint8_t[]){0x08, 0x96, 0x01}, 3), "varint 150");
    rc_pb_free(&pb);

    rc_pb_begin(&pb, 3);
    rc_pb_int(&pb, 1, 150);
    rc_pb_end(&pb);
    CHECK(bytes_are(&pb, (const uint8_t[]){0x1a, 0x03, 0x08, 0x96, 0x01}, 5), "nested message");
    rc_pb_free(&pb);

    rc_pb_int(&pb, 2, -1); /* negative int64: ten bytes */
    CHECK(pb.n == 11 && pb.b[0] == 0x10 && pb.b[1] == 0xff && pb.b[10] == 0x01, "int64 -1 (%zu bytes)", pb.n);
    rc_pb_free(&pb);

    rc_pb_string(&pb, 2, "testing");
    CHECK(bytes_are(&pb, (const uint8_t[]){0x12, 0x07, 't', 'e', 's', 't', 'i', 'n', 'g'}, 9), "string");
    rc_pb_free(&pb);

    rc_pb_float(&pb, 2, 1.0f);
    CHECK(bytes_are(&pb, (const uint8_t[]){0x15, 0x00, 0x00, 0x80, 0x3f}, 5), "float 1.0 (fixed32)");
    rc_pb_free(&pb);

    float f[2] = {1.0f, -2.0f};
    rc_pb_raw_floats(&pb, 9, f, 2);
    CHECK(bytes_are(&pb, (const uint8_t[]){0x4a, 0x08, 0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0}, 10), "raw floats");
    rc_pb_free(&pb);

    int64_t v[1] = {258};
    rc_pb_raw_int64s(&pb, 9, v, 1);
    CHECK(bytes_are(&pb, (const uint8_t[]){0x4a, 0x08, 2, 1, 0, 0, 0, 0, 0, 0}, 10), "raw int64");
    rc_pb_free(&pb);

    /* a payload of 200 bytes needs a two-byte length, written in front of it; two levels deep */
    uint8_t blob[200];
    for (int i = 0; i < 200; i++) blob[i] = (uint8_t)i;
    rc_pb_begin(&pb, 7);
    rc_pb_begin(&pb, 1);
    rc_pb_bytes(&pb, 4, blob, 200);
    rc_pb_end(&pb);
    rc_pb_end(&pb);
    /* inner: tag 0x22, len 200 (0xc8 0x01), 200 bytes = 203; middle: 0x0a, 203 (0xcb 0x01); outer: 0x3a, 206 */
    CHECK(pb.n == 209 && pb.b[0] == 0x3a && pb.b[1] == 0xce && pb.b[2] == 0x01 && pb.b[3] == 0x0a &&
              pb.b[4] == 0xcb && pb.b[5] == 0x01 && pb.b[6] == 0x22 && pb.b[7] == 0xc8 && pb.b[8] == 0x01 &&
              pb.b[9] == 0 && pb.b[208] == 199 && !pb.too_big && pb.depth == 0,
          "nested lengths over 127 bytes (%zu bytes)", pb.n);
    rc_pb_free(&pb);
}

/* The graph: conv (bias) -> max pool and average pool (both 3x3, stride 2, pad 1) -> concat -> channel
 * slice -> batch norm without gamma/beta -> relu -> upsample 14x14 -> 17x19 -> sigmoid * tanh + itself ->
 * gap -> linear without bias (readout 1); relu -> max pool 2x2 -> linear over (7, 7, 7) (readout 2). */
static void build_ops_model(rc_model *m, int batch) {
    memset(m, 0, sizeof *m);
    rc_model_cfg *cfg = &m->cfg;
    snprintf(cfg->name, sizeof cfg->name, "onnx_ops");
    cfg->in_c = 1, cfg->in_h = 28, cfg->in_w = 28, cfg->classes = 10;
    rc_graph *g = &m->g;
    rc_graph_init(g, batch);
    int x = m->input = rc_graph_tensor(g, "input", 1, 28, 28);
    g->tensors[x].is_input = 1;
    g->input = x;
    int s4[4] = {6, 1, 3, 3}, s1[1] = {6}, c7[1] = {7}, l1[2] = {10, 7}, l2[2] = {10, 343}, b2[1] = {10};
    int w1 = rc_graph_param(g, "conv.weight", 4, s4, RC_PARAM_WEIGHT);
    int b1 = rc_graph_param(g, "conv.bias", 1, s1, RC_PARAM_NODECAY);
    int rm = rc_graph_param(g, "bn.running_mean", 1, c7, RC_PARAM_BUFFER);
    int rv = rc_graph_param(g, "bn.running_var", 1, c7, RC_PARAM_BUFFER);
    int wl1 = rc_graph_param(g, "head1.weight", 2, l1, RC_PARAM_WEIGHT);
    int wl2 = rc_graph_param(g, "head2.weight", 2, l2, RC_PARAM_WEIGHT);
    int bl2 = rc_graph_param(g, "head2.bias", 1, b2, RC_PARAM_NODECAY);
    g->params[w1].init_std = 0.5f;
    g->params[b1].init_uniform = 0.3f;
    g->params[wl1].init_uniform = 0.5f;
    g->params[wl2].init_uniform = 0.1f;
    g->params[bl2].init_uniform = 0.1f;
    int c = rc_emit_conv(g, "conv", x, w1, b1, 6, 3, 1, 1);
    int mp = rc_emit_pool(g, RC_OP_MAXPOOL, "maxpool", c, 3, 2, 1);
    int ap = rc_emit_pool(g, RC_OP_AVGPOOL, "avgpool", c, 3, 2, 1);
    int both[2] = {mp, ap};
    int cat = rc_emit_concat(g, "concat", 2, both);
    int sl = rc_emit_slice(g, "slice", cat, 3, 7);
    int bn = rc_emit_batchnorm(g, "bn", sl, -1, -1, rm, rv);
    g->nodes[g->nnodes - 1].eps = 1e-3f;
    int r = rc_emit_unary(g, RC_OP_RELU, "relu", bn);
    int up = rc_emit_upsample(g, "up", r, 17, 19);
    int sg = rc_emit_unary(g, RC_OP_SIGMOID, "sigmoid", up);
    int th = rc_emit_unary(g, RC_OP_TANH, "tanh", up);
    int mu = rc_emit_binary(g, RC_OP_MUL, "mul", sg, th);
    int ad = rc_emit_binary(g, RC_OP_ADD, "add", mu, up);
    int gp = rc_emit_gap(g, "gap", ad);
    m->readout[0] = rc_emit_linear(g, "logits1", gp, wl1, -1, 10);
    int mp2 = rc_emit_pool(g, RC_OP_MAXPOOL, "maxpool2", r, 2, 2, 0);
    m->readout[1] = rc_emit_linear(g, "logits2", mp2, wl2, bl2, 10);
    m->nreadouts = 2;
    rc_graph_mark_output(g, m->readout[0]);
    rc_graph_mark_output(g, m->readout[1]);
    RC_ASSERT(rc_graph_plan(g) == RC_OK);
    rc_graph_init_params(g, 11);
    for (int i = 0; i < 7; i++) {
        g->params[rm].w[i] = 0.2f * (float)i - 0.3f;
        g->params[rv].w[i] = 0.5f + 0.25f * (float)i;
    }
}

static rc_export_info info_for(float mean, float std) {
    rc_export_info info = {.config_text = "# hand-built test graph (tests/test_onnx_ops.c)\n[model]\nname = onnx_ops\n",
                           .data_spec = "test",
                           .channels = 1};
    info.mean[0] = mean;
    info.std[0] = std;
    return info;
}

static void test_export_ops_graph(void) {
    rc_model m;
    build_ops_model(&m, 2);
    rc_export_info info = info_for(0.25f, 0.5f);
    char path[128];
    snprintf(path, sizeof path, "%s/ops.onnx", tmpdir);
    CHECK(rc_export_onnx(&m, &info, path) == RC_OK, "export: %s", rc_error());
    size_t len = 0;
    char *buf = rc_read_text_file(path, 1 << 20, &len);
    /* ModelProto starts with ir_version = 8 (field 1, varint) */
    CHECK(buf && len > 4 * (m.g.param_floats) && buf[0] == 0x08 && buf[1] == 0x08, "file: %zu bytes", len);
    CHECK(buf && contains(buf, len, "AveragePool") && contains(buf, len, "count_include_pad") &&
              contains(buf, len, "Concat") && contains(buf, len, "MaxPool"),
          "pool and concat nodes missing");
    free(buf);
    rc_model_free(&m);
}

/* Refusals name the problem, and the file already at the path stays as it was. */
static void expect_refusal(const rc_model *m, const rc_export_info *info, const char *what, const char *pattern) {
    char path[128], tmp[140];
    snprintf(path, sizeof path, "%s/keep.onnx", tmpdir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CHECK(rc_write_file_atomic(path, "keep", 4) == RC_OK, "setup: %s", rc_error());
    CHECK(rc_export_onnx(m, info, path) != RC_OK, "%s: export succeeded", what);
    CHECK(strstr(rc_error(), pattern) != NULL, "%s: message '%s' lacks '%s'", what, rc_error(), pattern);
    size_t len = 0;
    char *buf = rc_read_text_file(path, 100, &len);
    CHECK(buf && len == 4 && !memcmp(buf, "keep", 4), "%s: the existing file changed", what);
    CHECK(access(tmp, F_OK) != 0, "%s: left %s behind", what, tmp);
    free(buf);
}

static void test_export_refusals(void) {
    rc_model m;
    build_ops_model(&m, 1);
    rc_export_info info = info_for(0.25f, 0.5f);
    info.channels = 3;
    expect_refusal(&m, &info, "channel mismatch", "channels");
    info.channels = 1;
    /* two tensors with one name: ONNX values must be unique */
    char keep[RC_NAME_MAX];
    memcpy(keep, m.g.tensors[m.readout[0] - 1].name, RC_NAME_MAX);
    snprintf(m.g.tensors[m.readout[0] - 1].name, RC_NAME_MAX, "relu");
    expect_refusal(&m, &info, "duplicate names", "two ONNX values would be named 'relu'");
    memcpy(m.g.tensors[m.readout[0] - 1].name, keep, RC_NAME_MAX);
    /* a readout that is not a linear's output cannot be a 2-D graph output */
    int r0 = m.readout[0];
    m.readout[0] = m.readout[0] - 1; /* the gap before it */
    expect_refusal(&m, &info, "readout not a linear", "only the readouts' linear layers");
    m.readout[0] = r0;
    /* a fused node (only plans make them) is no ONNX op */
    rc_op_type op = m.g.nodes[0].op;
    m.g.nodes[0].op = RC_OP_BNACT;
    expect_refusal(&m, &info, "fused op", "cannot be exported to ONNX");
    m.g.nodes[0].op = op;
    rc_model_free(&m);
}

/* DIR/ops.onnx and DIR/ops.npy (images, readouts, classes) for the first n test images of spec. */
static int write_fixture(const char *dir, const char *spec, int n) {
    rc_dataset train = {0}, test = {0};
    if (rc_dataset_load(spec, 1, &train) || rc_dataset_load(spec, 0, &test) || rc_dataset_copy_stats(&test, &train)) {
        fprintf(stderr, "test_onnx_ops: %s\n", rc_error());
        return 1;
    }
    RC_ASSERT(test.n >= n && test.c == 1);
    rc_model m;
    build_ops_model(&m, n);
    int *idx = rc_xmalloc((size_t)n * sizeof(int));
    for (int i = 0; i < n; i++) idx[i] = i;
    rc_dataset_batch(&test, idx, n, NULL, NULL, m.g.tensors[m.input].x, NULL);
    rc_graph_forward(&m.g, 0);
    float *out = rc_xmalloc((size_t)n * 2 * 10 * sizeof(float));
    for (int t = 0; t < 2; t++)
        for (int i = 0; i < n; i++)
            memcpy(out + ((size_t)i * 2 + t) * 10, m.g.tensors[m.readout[t]].x + (size_t)i * 10, 10 * sizeof(float));
    char path[4200];
    snprintf(path, sizeof path, "%s/ops.npy", dir);
    rc_npy_writer w;
    int64_t shape[3] = {n, 2, 10};
    rc_status st = rc_npy_open(&w, path, "<f4", 3, shape);
    if (!st) st = rc_npy_write(&w, out, (size_t)n * 2 * 10 * sizeof(float));
    if (!st) st = rc_npy_close(&w);
    rc_export_info info = info_for(train.mean[0], train.std[0]);
    snprintf(path, sizeof path, "%s/ops.onnx", dir);
    if (!st) st = rc_export_onnx(&m, &info, path);
    if (st) fprintf(stderr, "test_onnx_ops: %s\n", rc_error());
    free(out);
    free(idx);
    rc_model_free(&m);
    rc_dataset_free(&train);
    rc_dataset_free(&test);
    return st ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc == 3) return write_fixture(argv[1], argv[2], 200);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_onnx_ops.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN_TEST(test_pbuf_wire);
    RUN_TEST(test_export_ops_graph);
    RUN_TEST(test_export_refusals);
    char path[128];
    snprintf(path, sizeof path, "%s/ops.onnx", tmpdir);
    unlink(path);
    snprintf(path, sizeof path, "%s/keep.onnx", tmpdir);
    unlink(path);
    rmdir(tmpdir);
    TEST_MAIN_END();
}
