/* npz.c — rc_export_npz (export.h): a ZIP archive (stored members, CRC-32 from zlib, fixed timestamps so
 * the same model gives the same bytes) of one NAME.npy per param (little-endian float32, C order), in
 * graph param order, then one 0-d unicode array per metadata key, __metadata__.KEY.npy, which
 * numpy.load reads without allow_pickle (str(z["__metadata__.config"]) is the config text). */
#include <string.h>
#include <zlib.h>

#include "export_util.h"
#include "io/json.h"
#include "io/npy.h"

#define ZIP_MAX32 0xffffffffu
#define DOS_DATE_1980_01_01 0x21u

typedef struct {
    char *name;
    uint32_t crc, size, offset;
} member;

typedef struct {
    rc_atomic_file o;
    member *m;
    int n, cap;
} zip;

static void put16(unsigned char *p, unsigned v) {
    p[0] = (unsigned char)(v & 0xffu);
    p[1] = (unsigned char)((v >> 8) & 0xffu);
}
static void put32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)((v >> (8 * i)) & 0xffu);
}

static rc_status too_big(const zip *z) {
    return rc_fail("cannot write %s: the archive would pass 4 GiB (ZIP64 is not supported; use --format safetensors)",
                   z->o.path);
}

/* Begin a stored member: record it for the central directory and write its local header. The caller
 * then writes exactly size bytes, whose CRC-32 is crc. */
static rc_status member_begin(zip *z, const char *name, uint32_t crc, uint64_t size) {
    size_t nl = strlen(name);
    if (z->n >= 65535) return rc_fail("cannot write %s: more than 65535 arrays", z->o.path);
    if (nl > 65535) return rc_fail("cannot write %s: member name too long", z->o.path);
    if (size > ZIP_MAX32 || z->o.written > ZIP_MAX32) return too_big(z);
    if (z->n == z->cap) {
        z->cap = z->cap ? 2 * z->cap : 64;
        z->m = rc_xrealloc(z->m, (size_t)z->cap * sizeof *z->m);
    }
    member *e = &z->m[z->n++];
    e->name = rc_xmalloc(nl + 1);
    memcpy(e->name, name, nl + 1);
    e->crc = crc;
    e->size = (uint32_t)size;
    e->offset = (uint32_t)z->o.written;
    unsigned char h[30];
    put32(h, 0x04034b50u);        /* local file header signature */
    put16(h + 4, 20);             /* version needed: 2.0 */
    put16(h + 6, 0);              /* flags */
    put16(h + 8, 0);              /* method: stored */
    put16(h + 10, 0);             /* time 00:00:00 */
    put16(h + 12, DOS_DATE_1980_01_01);
    put32(h + 14, crc);
    put32(h + 18, (uint32_t)size); /* compressed */
    put32(h + 22, (uint32_t)size); /* uncompressed */
    put16(h + 26, (unsigned)nl);
    put16(h + 28, 0); /* extra field length */
    if (rc_atomic_write(&z->o, h, sizeof h)) return RC_ERR;
    return rc_atomic_write(&z->o, name, nl);
}

/* CRC-32 of n floats as little-endian bytes, continuing crc. */
static uint32_t crc_f32le(uint32_t crc, const float *x, size_t n) {
    unsigned char buf[4096];
    const size_t per = sizeof buf / 4;
    for (size_t i = 0; i < n; i += per) {
        size_t k = n - i < per ? n - i : per;
        rc_export_f32le(buf, x + i, k);
        crc = (uint32_t)crc32(crc, buf, (uInt)(4 * k));
    }
    return crc;
}

static rc_status add_param(zip *z, const rc_param *p) {
    char hdr[1024], name[RC_NAME_MAX + 8];
    int64_t shape[4];
    for (int d = 0; d < p->ndim; d++) shape[d] = p->shape[d];
    size_t hl = rc_npy_header(hdr, sizeof hdr, "<f4", p->ndim, shape);
    RC_ASSERT(hl > 0);
    snprintf(name, sizeof name, "%s.npy", p->name);
    uint32_t crc = (uint32_t)crc32(0L, (const Bytef *)hdr, (uInt)hl);
    crc = crc_f32le(crc, p->w, p->numel);
    uint64_t size = (uint64_t)hl + 4 * (uint64_t)p->numel;
    if (member_begin(z, name, crc, size) || rc_atomic_write(&z->o, hdr, hl)) return RC_ERR;
    return rc_export_file_write_f32le(&z->o, p->w, p->numel);
}

/* A 0-d '<Un' array holding value (UTF-8 in, UTF-32LE code points out; n >= 1, numpy drops trailing
 * NULs, so the empty string is '<U1' holding one NUL). */
static rc_status add_text(zip *z, const char *key, const char *value) {
    size_t n = rc_utf8_decode(value, NULL, 0);
    if (n > ((size_t)1 << 28)) return rc_fail("cannot write %s: metadata %s is too long", z->o.path, key);
    size_t cells = n ? n : 1;
    uint32_t *cp = rc_xcalloc(cells, sizeof *cp);
    rc_utf8_decode(value, cp, n);
    unsigned char *data = rc_xmalloc(4 * cells);
    for (size_t i = 0; i < cells; i++) put32(data + 4 * i, cp[i]);
    free(cp);
    char descr[32], hdr[1024], name[256];
    snprintf(descr, sizeof descr, "<U%zu", cells);
    size_t hl = rc_npy_header(hdr, sizeof hdr, descr, 0, NULL);
    RC_ASSERT(hl > 0);
    snprintf(name, sizeof name, "__metadata__.%s.npy", key);
    uint32_t crc = (uint32_t)crc32(0L, (const Bytef *)hdr, (uInt)hl);
    crc = (uint32_t)crc32(crc, data, (uInt)(4 * cells));
    rc_status st = member_begin(z, name, crc, (uint64_t)hl + 4 * (uint64_t)cells);
    if (!st) st = rc_atomic_write(&z->o, hdr, hl);
    if (!st) st = rc_atomic_write(&z->o, data, 4 * cells);
    free(data);
    return st;
}

static rc_status finish(zip *z) {
    uint64_t cd_start = z->o.written;
    if (cd_start > ZIP_MAX32) return too_big(z);
    for (int i = 0; i < z->n; i++) {
        const member *e = &z->m[i];
        size_t nl = strlen(e->name);
        unsigned char h[46];
        put32(h, 0x02014b50u); /* central directory file header signature */
        put16(h + 4, 20);      /* version made by: 2.0, MS-DOS attributes */
        put16(h + 6, 20);      /* version needed */
        put16(h + 8, 0);
        put16(h + 10, 0);
        put16(h + 12, 0);
        put16(h + 14, DOS_DATE_1980_01_01);
        put32(h + 16, e->crc);
        put32(h + 20, e->size);
        put32(h + 24, e->size);
        put16(h + 28, (unsigned)nl);
        put16(h + 30, 0); /* extra */
        put16(h + 32, 0); /* comment */
        put16(h + 34, 0); /* disk */
        put16(h + 36, 0); /* internal attributes */
        put32(h + 38, 0); /* external attributes */
        put32(h + 42, e->offset);
        if (rc_atomic_write(&z->o, h, sizeof h) || rc_atomic_write(&z->o, e->name, nl)) return RC_ERR;
    }
    uint64_t cd_size = z->o.written - cd_start;
    if (cd_size > ZIP_MAX32) return too_big(z);
    unsigned char h[22];
    put32(h, 0x06054b50u); /* end of central directory signature */
    put16(h + 4, 0);
    put16(h + 6, 0);
    put16(h + 8, (unsigned)z->n);
    put16(h + 10, (unsigned)z->n);
    put32(h + 12, (uint32_t)cd_size);
    put32(h + 16, (uint32_t)cd_start);
    put16(h + 20, 0); /* comment length */
    return rc_atomic_write(&z->o, h, sizeof h);
}

rc_status rc_export_npz(const rc_graph *g, const rc_export_info *info, const char *path) {
    if (rc_export_check_params(g)) return rc_fail("%s: %s", path, rc_error());
    zip z;
    memset(&z, 0, sizeof z);
    if (rc_atomic_open(&z.o, path)) return RC_ERR;
    rc_status st = RC_OK;
    for (int i = 0; i < g->nparams && !st; i++) st = add_param(&z, &g->params[i]);
    rc_export_meta meta;
    rc_export_meta_build(g, info, &meta);
    for (int i = 0; i < meta.n && !st; i++) st = add_text(&z, meta.kv[i].key, meta.kv[i].value);
    rc_export_meta_free(&meta);
    if (!st) st = finish(&z);
    for (int i = 0; i < z.n; i++) free(z.m[i].name);
    free(z.m);
    if (st) {
        rc_atomic_abort(&z.o);
        return RC_ERR;
    }
    return rc_atomic_commit(&z.o);
}
