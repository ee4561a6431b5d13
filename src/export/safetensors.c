/* safetensors.c — rc_export_safetensors (export.h): the safetensors format written directly. Layout: u64
 * little-endian N, N bytes of JSON header (padded with spaces so the data starts 8-byte aligned), then
 * the tensors' bytes back to back (little-endian F32, C order) in graph param order. The header maps
 * each param name to {"dtype","shape","data_offsets":[begin,end]} (offsets relative to the data) and
 * "__metadata__" to string -> string (export_util.h). */
#include <string.h>

#include "export_util.h"
#include "io/files.h"
#include "io/json.h"

/* The JSON header, padded with spaces to a multiple of 8 bytes. */
static void build_header(const rc_graph *g, const rc_export_info *info, rc_strbuf *sb) {
    rc_export_meta meta;
    rc_export_meta_build(g, info, &meta);
    rc_sb_printf(sb, "{\"__metadata__\":{");
    for (int i = 0; i < meta.n; i++) {
        if (i) rc_sb_printf(sb, ",");
        rc_json_string(sb, meta.kv[i].key);
        rc_sb_printf(sb, ":");
        rc_json_string(sb, meta.kv[i].value);
    }
    rc_sb_printf(sb, "}");
    rc_export_meta_free(&meta);
    uint64_t off = 0;
    for (int i = 0; i < g->nparams; i++) {
        const rc_param *p = &g->params[i];
        rc_sb_printf(sb, ",");
        rc_json_string(sb, p->name);
        rc_sb_printf(sb, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int d = 0; d < p->ndim; d++) rc_sb_printf(sb, "%s%d", d ? "," : "", p->shape[d]);
        uint64_t end = off + 4 * (uint64_t)p->numel; /* bounded by rc_export_check_params */
        rc_sb_printf(sb, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off, (unsigned long long)end);
        off = end;
    }
    rc_sb_printf(sb, "}");
    while (sb->len % 8) rc_sb_printf(sb, " ");
}

rc_status rc_export_safetensors(const rc_graph *g, const rc_export_info *info, const char *path) {
    if (rc_export_check_params(g)) return rc_fail("%s: %s", path, rc_error());
    rc_strbuf hdr = {0};
    build_header(g, info, &hdr);
    unsigned char len8[8];
    uint64_t hl = hdr.len;
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((hl >> (8 * i)) & 0xffu);
    rc_atomic_file o;
    if (rc_atomic_open(&o, path)) {
        free(hdr.buf);
        return RC_ERR;
    }
    rc_status st = rc_atomic_write(&o, len8, 8);
    if (!st) st = rc_atomic_write(&o, hdr.buf, hdr.len);
    for (int i = 0; i < g->nparams && !st; i++) st = rc_export_file_write_f32le(&o, g->params[i].w, g->params[i].numel);
    free(hdr.buf);
    if (st) {
        rc_atomic_abort(&o);
        return RC_ERR;
    }
    return rc_atomic_commit(&o);
}
