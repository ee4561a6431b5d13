/* export_util.c — the atomic output file, little-endian float encoding, param checks and metadata that
 * the safetensors and npz writers share (export_util.h). */
#define _POSIX_C_SOURCE 200809L
#include "export_util.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

/* ---- little-endian floats ---- */

void rc_export_f32le(unsigned char *out, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        out[4 * i] = (unsigned char)(u & 0xffu);
        out[4 * i + 1] = (unsigned char)((u >> 8) & 0xffu);
        out[4 * i + 2] = (unsigned char)((u >> 16) & 0xffu);
        out[4 * i + 3] = (unsigned char)(u >> 24);
    }
}

rc_status rc_export_file_write_f32le(rc_atomic_file *o, const float *x, size_t n) {
    unsigned char buf[4096];
    const size_t per = sizeof buf / 4;
    for (size_t i = 0; i < n; i += per) {
        size_t k = n - i < per ? n - i : per;
        rc_export_f32le(buf, x + i, k);
        if (rc_atomic_write(o, buf, 4 * k)) return RC_ERR;
    }
    return RC_OK;
}

/* ---- tensors ---- */

rc_status rc_export_check_params(const rc_graph *g) {
    if (g->nparams < 1) return rc_fail("the model has no params to export");
    uint64_t total = 0;
    for (int i = 0; i < g->nparams; i++) {
        const rc_param *p = &g->params[i];
        size_t nl = strnlen(p->name, sizeof p->name);
        if (nl == 0 || nl == sizeof p->name) return rc_fail("param %d has an empty or unterminated name", i);
        for (size_t j = 0; j < nl; j++) {
            unsigned char c = (unsigned char)p->name[j];
            if (c < 0x20 || c == 0x7f || c == '/' || c == '\\' || c == '"')
                return rc_fail("param '%s': its name holds a character that cannot be a tensor name", p->name);
        }
        if (!p->w) return rc_fail("param %s has no values (the graph is not planned)", p->name);
        if (p->ndim < 1 || p->ndim > 4) return rc_fail("param %s has %d dimensions (1..4 expected)", p->name, p->ndim);
        uint64_t n = 1;
        for (int d = 0; d < p->ndim; d++) {
            if (p->shape[d] < 1) return rc_fail("param %s: dimension %d is %d", p->name, d, p->shape[d]);
            n *= (uint64_t)p->shape[d]; /* <= (2^31)^4 would overflow; bounded below */
            if (n > ((uint64_t)1 << 40)) return rc_fail("param %s is too large to export", p->name);
        }
        if (n != (uint64_t)p->numel) return rc_fail("param %s: shape and element count disagree", p->name);
        total += 4 * n;
        if (total > ((uint64_t)1 << 62)) return rc_fail("the model is too large to export");
    }
    return RC_OK;
}

/* ---- metadata ---- */

static char *dup_str(const char *s) {
    size_t n = strlen(s);
    char *d = rc_xmalloc(n + 1);
    memcpy(d, s, n + 1);
    return d;
}

static char *fmt_floats(const float *x, int n) {
    char buf[256];
    size_t len = 0;
    buf[len++] = '[';
    for (int i = 0; i < n && i < 3; i++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%.9g", i ? ", " : "", (double)x[i]);
    snprintf(buf + len, sizeof buf - len, "]");
    return dup_str(buf);
}

static void add(rc_export_meta *m, const char *key, char *value) {
    RC_ASSERT(m->n < RC_EXPORT_MAX_META);
    m->kv[m->n].key = key;
    m->kv[m->n].value = value;
    m->n++;
}

void rc_export_meta_build(const rc_graph *g, const rc_export_info *info, rc_export_meta *m) {
    memset(m, 0, sizeof *m);
    int c = info->channels < 1 ? 1 : info->channels > 3 ? 3 : info->channels;
    char buf[128];
    add(m, "format", dup_str("recur-tensors-1"));
    add(m, "recur_version", dup_str(RC_VERSION));
    add(m, "config", dup_str(info->config_text ? info->config_text : ""));
    add(m, "data", dup_str(info->data_spec ? info->data_spec : ""));
    add(m, "input", dup_str("pixel/255, NCHW"));
    if (g->input >= 0 && g->input < g->ntensors) {
        const rc_tensor *x = &g->tensors[g->input];
        snprintf(buf, sizeof buf, "%dx%dx%d", x->c, x->h, x->w);
        add(m, "input_shape", dup_str(buf));
    }
    add(m, "mean", fmt_floats(info->mean, c));
    add(m, "std", fmt_floats(info->std, c));
    add(m, "names", dup_str("AREA[.tT].{bu,lat,td,conv2}.{weight,bias}; AREA[.tT].{lat,conv2}.pw.weight; "
                            "AREA.{bn,bn2}[.tT].{gamma,beta,running_mean,running_var}; head[.tT].{weight,bias}; "
                            "T counts from 1 (docs/EXPORT.md)"));
}

void rc_export_meta_free(rc_export_meta *m) {
    for (int i = 0; i < m->n; i++) free(m->kv[i].value);
    memset(m, 0, sizeof *m);
}
