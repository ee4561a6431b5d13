/* onnx.c — rc_export_onnx (export.h): the unrolled inference graph as an ONNX model (opset 17) written
 * with the protobuf writer of pbuf.h. One ONNX node per logical graph node (plus a Flatten before each
 * linear and a second Gather per upsampling); a tied param is one initializer read by several nodes.
 * docs/EXPORT.md ("ONNX") says what each recur op becomes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export.h"
#include "export/pbuf.h"
#include "io/files.h"

#define ONNX_OPSET 17
#define ONNX_IR_VERSION 8 /* the IR version that came with opset 17 */
#define VNAME (RC_NAME_MAX + 32)

/* Field numbers and enum values of onnx.proto. */
enum {
    MODEL_IR_VERSION = 1, MODEL_PRODUCER_NAME = 2, MODEL_PRODUCER_VERSION = 3, MODEL_DOC = 6, MODEL_GRAPH = 7,
    MODEL_OPSET_IMPORT = 8, MODEL_METADATA = 14,
    OPSET_DOMAIN = 1, OPSET_VERSION = 2,
    ENTRY_KEY = 1, ENTRY_VALUE = 2,
    GRAPH_NODE = 1, GRAPH_NAME = 2, GRAPH_INITIALIZER = 5, GRAPH_DOC = 10, GRAPH_INPUT = 11, GRAPH_OUTPUT = 12,
    GRAPH_VALUE_INFO = 13,
    NODE_INPUT = 1, NODE_OUTPUT = 2, NODE_NAME = 3, NODE_OP_TYPE = 4, NODE_ATTRIBUTE = 5,
    ATTR_NAME = 1, ATTR_F = 2, ATTR_I = 3, ATTR_INTS = 8, ATTR_TYPE = 20,
    ATTRTYPE_FLOAT = 1, ATTRTYPE_INT = 2, ATTRTYPE_INTS = 7,
    TENSOR_DIMS = 1, TENSOR_DATA_TYPE = 2, TENSOR_NAME = 8, TENSOR_RAW_DATA = 9,
    DTYPE_FLOAT = 1, DTYPE_INT64 = 7,
    VALUEINFO_NAME = 1, VALUEINFO_TYPE = 2,
    TYPE_TENSOR = 1, TENSORTYPE_ELEM_TYPE = 1, TENSORTYPE_SHAPE = 2, SHAPE_DIM = 1, DIM_VALUE = 1, DIM_PARAM = 2
};

typedef struct {
    rc_pb pb;
    const rc_graph *g;
    char (*tname)[VNAME]; /* ONNX value name of each graph tensor */
    char **defined;       /* every value name defined (graph input, initializers, node outputs) */
    int ndefined, cap_defined;
} writer;

static void define(writer *w, const char *name) {
    if (w->ndefined == w->cap_defined) {
        w->cap_defined = w->cap_defined ? 2 * w->cap_defined : 256;
        w->defined = rc_xrealloc(w->defined, (size_t)w->cap_defined * sizeof *w->defined);
    }
    size_t n = strlen(name) + 1;
    w->defined[w->ndefined] = rc_xmalloc(n);
    memcpy(w->defined[w->ndefined++], name, n);
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* ONNX graphs are in SSA form: no value may be defined twice. */
static rc_status check_unique(writer *w, const char *path) {
    qsort(w->defined, (size_t)w->ndefined, sizeof *w->defined, cmp_names);
    for (int i = 1; i < w->ndefined; i++)
        if (!strcmp(w->defined[i - 1], w->defined[i]))
            return rc_fail("%s: two ONNX values would be named '%s' (graph tensor names must be unique)", path,
                           w->defined[i]);
    return RC_OK;
}

/* ---- messages ---- */

static void node_begin(writer *w, const char *op, const char *name, const char *const *in, int nin,
                       const char *out) {
    rc_pb *pb = &w->pb;
    rc_pb_begin(pb, GRAPH_NODE);
    for (int i = 0; i < nin; i++) rc_pb_string(pb, NODE_INPUT, in[i]);
    rc_pb_string(pb, NODE_OUTPUT, out);
    rc_pb_string(pb, NODE_NAME, name);
    rc_pb_string(pb, NODE_OP_TYPE, op);
    define(w, out);
}

/* A node with no attributes, named after its output. */
static void node(writer *w, const char *op, const char *const *in, int nin, const char *out) {
    node_begin(w, op, out, in, nin, out);
    rc_pb_end(&w->pb);
}

static void attr_int(writer *w, const char *name, int64_t v) {
    rc_pb *pb = &w->pb;
    rc_pb_begin(pb, NODE_ATTRIBUTE);
    rc_pb_string(pb, ATTR_NAME, name);
    rc_pb_int(pb, ATTR_TYPE, ATTRTYPE_INT);
    rc_pb_int(pb, ATTR_I, v);
    rc_pb_end(pb);
}

static void attr_float(writer *w, const char *name, float v) {
    rc_pb *pb = &w->pb;
    rc_pb_begin(pb, NODE_ATTRIBUTE);
    rc_pb_string(pb, ATTR_NAME, name);
    rc_pb_int(pb, ATTR_TYPE, ATTRTYPE_FLOAT);
    rc_pb_float(pb, ATTR_F, v);
    rc_pb_end(pb);
}

static void attr_ints(writer *w, const char *name, const int64_t *v, int n) {
    rc_pb *pb = &w->pb;
    rc_pb_begin(pb, NODE_ATTRIBUTE);
    rc_pb_string(pb, ATTR_NAME, name);
    rc_pb_int(pb, ATTR_TYPE, ATTRTYPE_INTS);
    for (int i = 0; i < n; i++) rc_pb_int(pb, ATTR_INTS, v[i]);
    rc_pb_end(pb);
}

/* kernel_shape, strides and pads of a 2-D conv or pool window */
static void attr_window(writer *w, int kh, int kw, int stride, int pad) {
    int64_t k[2] = {kh, kw}, s[2] = {stride, stride}, p[4] = {pad, pad, pad, pad};
    attr_ints(w, "kernel_shape", k, 2);
    attr_ints(w, "strides", s, 2);
    attr_ints(w, "pads", p, 4);
}

/* An initializer: floats (f) or int64s (i), one of them non-NULL, with numel = product of dims. */
static void initializer(writer *w, const char *name, const int64_t *dims, int ndim, const float *f, const int64_t *i) {
    rc_pb *pb = &w->pb;
    size_t numel = 1;
    for (int d = 0; d < ndim; d++) numel *= (size_t)dims[d];
    rc_pb_begin(pb, GRAPH_INITIALIZER);
    for (int d = 0; d < ndim; d++) rc_pb_int(pb, TENSOR_DIMS, dims[d]);
    rc_pb_int(pb, TENSOR_DATA_TYPE, f ? DTYPE_FLOAT : DTYPE_INT64);
    rc_pb_string(pb, TENSOR_NAME, name);
    if (f)
        rc_pb_raw_floats(pb, TENSOR_RAW_DATA, f, numel);
    else
        rc_pb_raw_int64s(pb, TENSOR_RAW_DATA, i, numel);
    rc_pb_end(pb);
    define(w, name);
}

static void init_int64(writer *w, const char *name, const int64_t *v, int n) {
    int64_t dims[1] = {n};
    initializer(w, name, dims, 1, NULL, v);
}

/* A float tensor's name and shape; dims[i] < 0 is the dynamic batch dimension "N". */
static void value_info(writer *w, int field, const char *name, const int64_t *dims, int ndim) {
    rc_pb *pb = &w->pb;
    rc_pb_begin(pb, field);
    rc_pb_string(pb, VALUEINFO_NAME, name);
    rc_pb_begin(pb, VALUEINFO_TYPE);
    rc_pb_begin(pb, TYPE_TENSOR);
    rc_pb_int(pb, TENSORTYPE_ELEM_TYPE, DTYPE_FLOAT);
    rc_pb_begin(pb, TENSORTYPE_SHAPE);
    for (int d = 0; d < ndim; d++) {
        rc_pb_begin(pb, SHAPE_DIM);
        if (dims[d] < 0)
            rc_pb_string(pb, DIM_PARAM, "N");
        else
            rc_pb_int(pb, DIM_VALUE, dims[d]);
        rc_pb_end(pb);
    }
    rc_pb_end(pb);
    rc_pb_end(pb);
    rc_pb_end(pb);
    rc_pb_end(pb);
}

static void metadata(rc_pb *pb, const char *key, const char *value) {
    rc_pb_begin(pb, MODEL_METADATA);
    rc_pb_string(pb, ENTRY_KEY, key);
    rc_pb_string(pb, ENTRY_VALUE, value);
    rc_pb_end(pb);
}

/* ---- graph nodes ---- */

static const char *pname(const writer *w, int p) { return w->g->params[p].name; }

/* One logical graph node as ONNX node(s). */
static rc_status emit_node(writer *w, const rc_node *n, const char *path) {
    const rc_graph *g = w->g;
    const char *out = w->tname[n->out];
    const char *in[RC_MAX_IN + 4];
    char aux[4][VNAME];
    for (int i = 0; i < n->nin; i++) in[i] = w->tname[n->in[i]];
    const rc_tensor *x = &g->tensors[n->in[0]];
    switch (n->op) {
    case RC_OP_CONV: { // x: (N, C, H, W), W: (K, C/G, r, r), B: (K) -> (N, K, H', W'), G groups
        const rc_param *wt = &g->params[n->param[0]];
        int nin = 0;
        in[nin++] = w->tname[n->in[0]];
        in[nin++] = pname(w, n->param[0]);
        if (n->param[1] >= 0) in[nin++] = pname(w, n->param[1]);
        node_begin(w, "Conv", out, in, nin, out);
        attr_window(w, wt->shape[2], wt->shape[3], n->stride, n->pad);
        if (n->groups > 1) attr_int(w, "group", n->groups);
        rc_pb_end(&w->pb);
        return RC_OK;
    }
    case RC_OP_BATCHNORM: { // inference: gamma * (x - running_mean) / sqrt(running_var + eps) + beta
        if (n->param[2] < 0 || n->param[3] < 0)
            return rc_fail("%s: batch norm %s has no running statistics to export", path, out);
        float *fill = rc_xmalloc((size_t)x->c * sizeof(float));
        int64_t dims[1] = {x->c};
        for (int j = 0; j < 2; j++) {
            if (n->param[j] >= 0) {
                in[1 + j] = pname(w, n->param[j]);
                continue;
            }
            for (int c = 0; c < x->c; c++) fill[c] = j == 0 ? 1.0f : 0.0f; /* absent: scale 1, shift 0 */
            snprintf(aux[j], VNAME, "%s.%s", out, j == 0 ? "scale" : "shift");
            initializer(w, aux[j], dims, 1, fill, NULL);
            in[1 + j] = aux[j];
        }
        free(fill);
        in[3] = pname(w, n->param[2]);
        in[4] = pname(w, n->param[3]);
        node_begin(w, "BatchNormalization", out, in, 5, out);
        attr_float(w, "epsilon", n->eps);
        rc_pb_end(&w->pb);
        return RC_OK;
    }
    case RC_OP_RELU: node(w, "Relu", in, 1, out); return RC_OK;
    case RC_OP_SIGMOID: node(w, "Sigmoid", in, 1, out); return RC_OK;
    case RC_OP_TANH: node(w, "Tanh", in, 1, out); return RC_OK;
    case RC_OP_ADD: node(w, "Add", in, 2, out); return RC_OK;
    case RC_OP_MUL: node(w, "Mul", in, 2, out); return RC_OK;
    case RC_OP_LERP: { // in {w, a, [b]}: y = a + w * (b - a) as lerp.c computes it; no b: y = a - w * a
        const char *t[2];
        snprintf(aux[0], VNAME, "%s.diff", out);
        snprintf(aux[1], VNAME, "%s.step", out);
        if (n->nin > 2) {
            t[0] = in[2], t[1] = in[1];
            node(w, "Sub", t, 2, aux[0]); // b - a
            t[0] = in[0], t[1] = aux[0];
            node(w, "Mul", t, 2, aux[1]);
            t[0] = in[1], t[1] = aux[1];
            node(w, "Add", t, 2, out);
        } else {
            t[0] = in[0], t[1] = in[1];
            node(w, "Mul", t, 2, aux[1]); // w * a
            t[0] = in[1], t[1] = aux[1];
            node(w, "Sub", t, 2, out);
        }
        return RC_OK;
    }
    case RC_OP_CONCAT: // along channels
        node_begin(w, "Concat", out, in, n->nin, out);
        attr_int(w, "axis", 1);
        rc_pb_end(&w->pb);
        return RC_OK;
    case RC_OP_SLICE: { // channels [k, k + stride)
        int64_t v[3] = {n->k, (int64_t)n->k + n->stride, 1};
        static const char *part[3] = {"starts", "ends", "axes"};
        for (int j = 0; j < 3; j++) {
            snprintf(aux[j], VNAME, "%s.%s", out, part[j]);
            init_int64(w, aux[j], &v[j], 1);
            in[1 + j] = aux[j];
        }
        node(w, "Slice", in, 4, out);
        return RC_OK;
    }
    case RC_OP_MAXPOOL: // padding never wins (pool.c ignores padded cells), floor output size
        node_begin(w, "MaxPool", out, in, 1, out);
        attr_window(w, n->k, n->k, n->stride, n->pad);
        rc_pb_end(&w->pb);
        return RC_OK;
    case RC_OP_AVGPOOL: // divisor k*k, padding counted
        node_begin(w, "AveragePool", out, in, 1, out);
        attr_window(w, n->k, n->k, n->stride, n->pad);
        attr_int(w, "count_include_pad", 1);
        rc_pb_end(&w->pb);
        return RC_OK;
    case RC_OP_GAP: node(w, "GlobalAveragePool", in, 1, out); return RC_OK;
    case RC_OP_UPSAMPLE: { // nearest: gather source rows, then source columns (upsample.c's index rule)
        const rc_tensor *y = &g->tensors[n->out];
        int len[2] = {y->h, y->w}, from[2] = {x->h, x->w};
        static const char *part[2] = {"rows", "cols"};
        char mid[VNAME];
        snprintf(mid, sizeof mid, "%s.row_gather", out);
        for (int j = 0; j < 2; j++) {
            int64_t *idx = rc_xmalloc((size_t)len[j] * sizeof(int64_t));
            for (int o = 0; o < len[j]; o++) idx[o] = rc_upsample_src_index(o, from[j], len[j]);
            snprintf(aux[j], VNAME, "%s.%s", out, part[j]);
            init_int64(w, aux[j], idx, len[j]);
            free(idx);
            const char *gin[2] = {j == 0 ? w->tname[n->in[0]] : mid, aux[j]};
            node_begin(w, "Gather", j == 0 ? mid : out, gin, 2, j == 0 ? mid : out);
            attr_int(w, "axis", 2 + j);
            rc_pb_end(&w->pb);
        }
        return RC_OK;
    }
    case RC_OP_LINEAR: { // x flattened to (N, C*H*W) in NCHW order; y = x W^T + b
        snprintf(aux[0], VNAME, "%s.flat", out);
        node_begin(w, "Flatten", aux[0], in, 1, aux[0]);
        attr_int(w, "axis", 1);
        rc_pb_end(&w->pb);
        const char *gin[3] = {aux[0], pname(w, n->param[0]), n->param[1] >= 0 ? pname(w, n->param[1]) : NULL};
        node_begin(w, "Gemm", out, gin, n->param[1] >= 0 ? 3 : 2, out);
        attr_int(w, "transB", 1);
        rc_pb_end(&w->pb);
        return RC_OK;
    }
    case RC_OP_BNACT:
    case RC_OP_LSTM:
    case RC_OP_UPADD:
    case RC_OP_GRU:
    case RC_OP_COUNT: break;
    }
    return rc_fail("%s: op %s (node %s) cannot be exported to ONNX", path, rc_op_name(n->op), out);
}

/* Readouts are the graph outputs, (N, classes): each must be a linear's output that no node reads. */
static rc_status check_readouts(const rc_model *m, const int *readout_of, const char *path) {
    const rc_graph *g = &m->g;
    for (int i = 0; i < g->nnodes; i++) {
        const rc_node *n = &g->nodes[i];
        int is_out = readout_of[n->out] > 0;
        if (is_out != (n->op == RC_OP_LINEAR))
            return rc_fail("%s: node %s: only the readouts' linear layers can be exported as 2-D outputs", path,
                           g->tensors[n->out].name);
        for (int j = 0; j < n->nin; j++)
            if (readout_of[n->in[j]] > 0)
                return rc_fail("%s: node %s reads readout %s, which the ONNX export does not support", path,
                               g->tensors[n->out].name, g->tensors[n->in[j]].name);
    }
    return RC_OK;
}

static void write_graph(writer *w, const rc_model *m, const rc_export_info *info, const int *readout_of,
                        rc_status *st, const char *path) {
    const rc_graph *g = &m->g;
    const rc_model_cfg *cfg = &m->cfg;
    rc_pb *pb = &w->pb;
    rc_pb_string(pb, GRAPH_NAME, cfg->name);
    rc_pb_string(pb, GRAPH_DOC,
                 "recur's unrolled inference graph: input image = pixel / 255 as float32 (N, C, H, W), normalised "
                 "inside; outputs logits_1 .. logits_R (N, classes), one per readout (iteration of the top area)");
    int64_t in_dims[4] = {-1, cfg->in_c, cfg->in_h, cfg->in_w};
    value_info(w, GRAPH_INPUT, "image", in_dims, 4);
    define(w, "image");

    /* (image - mean) * (1 / std), as the dataset loader computes it */
    float mean[3], inv_std[3];
    for (int c = 0; c < cfg->in_c; c++) {
        mean[c] = info->mean[c];
        inv_std[c] = 1.0f / info->std[c];
    }
    int64_t cdims[4] = {1, cfg->in_c, 1, 1};
    initializer(w, "image.mean", cdims, 4, mean, NULL);
    initializer(w, "image.inv_std", cdims, 4, inv_std, NULL);
    const char *sub_in[2] = {"image", "image.mean"};
    node(w, "Sub", sub_in, 2, "image.centred");
    const char *mul_in[2] = {"image.centred", "image.inv_std"};
    node(w, "Mul", mul_in, 2, w->tname[m->input]);

    for (int i = 0; i < g->nnodes && !*st; i++) *st = emit_node(w, &g->nodes[i], path);
    if (*st) return;

    /* params: each once, however many nodes read it */
    char *used = rc_xcalloc((size_t)g->nparams + 1, 1);
    for (int i = 0; i < g->nnodes; i++)
        for (int j = 0; j < 4; j++)
            if (g->nodes[i].param[j] >= 0) used[g->nodes[i].param[j]] = 1;
    for (int p = 0; p < g->nparams; p++) {
        if (!used[p]) continue;
        const rc_param *q = &g->params[p];
        int64_t dims[4];
        for (int d = 0; d < q->ndim; d++) dims[d] = q->shape[d];
        initializer(w, q->name, dims, q->ndim, q->w, NULL);
    }
    free(used);

    for (int t = 0; t < g->ntensors; t++) {
        const rc_tensor *x = &g->tensors[t];
        if (readout_of[t]) continue;
        int64_t dims[4] = {-1, x->c, x->h, x->w};
        value_info(w, GRAPH_VALUE_INFO, w->tname[t], dims, 4);
    }
    for (int r = 0; r < m->nreadouts; r++) {
        int64_t dims[2] = {-1, cfg->classes};
        value_info(w, GRAPH_OUTPUT, w->tname[m->readout[r]], dims, 2);
    }
}

rc_status rc_export_onnx(const rc_model *m, const rc_export_info *info, const char *path) {
    const rc_graph *g = &m->g;
    const rc_model_cfg *cfg = &m->cfg;
    if (info->channels != cfg->in_c || cfg->in_c > 3)
        return rc_fail("%s: the input normalisation has %d channels, the model %d (at most 3 are supported)", path,
                       info->channels, cfg->in_c);
    double bytes = 0;
    for (int p = 0; p < g->nparams; p++) bytes += 4.0 * (double)g->params[p].numel;
    if (bytes > (double)RC_PB_MAX_BYTES)
        return rc_fail("%s: the model's params take %.2f GB; an ONNX file without external data holds at most "
                       "2 GB (protobuf's limit)",
                       path, bytes / 1e9);

    int *readout_of = rc_xcalloc((size_t)g->ntensors, sizeof(int));
    for (int r = 0; r < m->nreadouts; r++) readout_of[m->readout[r]] = r + 1;
    rc_status st = check_readouts(m, readout_of, path);
    if (st) {
        free(readout_of);
        return st;
    }
    writer w = {.g = g};
    w.tname = rc_xmalloc((size_t)g->ntensors * sizeof *w.tname);
    for (int t = 0; t < g->ntensors; t++) {
        if (readout_of[t])
            snprintf(w.tname[t], VNAME, "logits_%d", readout_of[t]);
        else
            snprintf(w.tname[t], VNAME, "%s", g->tensors[t].name);
    }

    rc_pb *pb = &w.pb;
    rc_pb_int(pb, MODEL_IR_VERSION, ONNX_IR_VERSION);
    rc_pb_string(pb, MODEL_PRODUCER_NAME, "recur");
    rc_pb_string(pb, MODEL_PRODUCER_VERSION, RC_VERSION);
    rc_pb_begin(pb, MODEL_OPSET_IMPORT);
    rc_pb_string(pb, OPSET_DOMAIN, "");
    rc_pb_int(pb, OPSET_VERSION, ONNX_OPSET);
    rc_pb_end(pb);
    rc_pb_string(pb, MODEL_DOC, "exported by recur export --format onnx");
    char text[512];
    metadata(pb, "recur.version", RC_VERSION);
    if (info->config_text) metadata(pb, "recur.config", info->config_text);
    if (info->data_spec) metadata(pb, "recur.data", info->data_spec);
    int len = 0;
    for (int c = 0; c < cfg->in_c; c++)
        len += snprintf(text + len, sizeof text - (size_t)len, "%s%.9g", c ? " " : "", (double)info->mean[c]);
    metadata(pb, "recur.input_mean", text);
    len = 0;
    for (int c = 0; c < cfg->in_c; c++)
        len += snprintf(text + len, sizeof text - (size_t)len, "%s%.9g", c ? " " : "", (double)info->std[c]);
    metadata(pb, "recur.input_std", text);
    snprintf(text, sizeof text, "%d", m->nreadouts);
    metadata(pb, "recur.readouts", text);

    rc_pb_begin(pb, MODEL_GRAPH);
    write_graph(&w, m, info, readout_of, &st, path);
    rc_pb_end(pb);
    RC_ASSERT(st || pb->depth == 0);

    if (!st) st = check_unique(&w, path);
    if (!st && (pb->too_big || pb->n > RC_PB_MAX_BYTES))
        st = rc_fail("%s: the ONNX model would take over 2 GB, protobuf's limit for one message", path);
    if (!st) st = rc_write_file_atomic(path, (const char *)pb->b, pb->n);

    for (int i = 0; i < w.ndefined; i++) free(w.defined[i]);
    free(w.defined);
    free(w.tname);
    free(readout_of);
    rc_pb_free(pb);
    return st;
}
