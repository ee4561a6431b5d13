/* checkpoint.c — the binary checkpoint format of checkpoint.h, little-endian on any host. Saving streams
 * through a CRC-32 (zlib) into "PATH.tmp", then fflush, fsync, fclose, rename, directory fsync. Loading
 * reads the whole file, checks magic, version (1 or 2), checksum, walks the structure with bounds checks
 * (errors name the byte offset), matches it against the graph, and only then copies anything. */
#define _POSIX_C_SOURCE 200809L
#include "io/checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static const unsigned char rc_ckpt_magic[8] = {'R', 'C', 'K', 'P', 'T', 0, 0, 1};

#define RC_CKPT_META_BYTES (3 * 8 + 4 * 8 + 4 * 8 + 8 + 8 + 8 + 3 * 8 + RC_CKPT_RESERVED * 8) /* both versions */
#define RC_CKPT_HEAD_BYTES (8 + 4)        /* magic + version */
#define RC_CKPT_MIN_RECORD (4 + 1 + 4 + 4 + 4 + 4) /* smallest possible param record */
#define RC_CKPT_MAX_NUMEL 1000000000ull
#define RC_CKPT_MAX_PARAMS (1u << 24)
#define RC_CKPT_MAX_THREADS 65536

static int rc_host_le(void) {
    const uint32_t one = 1;
    unsigned char c;
    memcpy(&c, &one, 1);
    return c == 1;
}

static uint32_t rc_crc(uint32_t crc, const unsigned char *p, size_t n) {
    uLong c = crc;
    while (n > 0) {
        uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
        c = crc32(c, p, chunk);
        p += chunk;
        n -= chunk;
    }
    return (uint32_t)c;
}

static void rc_put_u32(unsigned char *b, uint32_t x) {
    for (int i = 0; i < 4; i++) b[i] = (unsigned char)(x >> (8 * i));
}
static void rc_put_u64(unsigned char *b, uint64_t x) {
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(x >> (8 * i));
}
static uint32_t rc_get_u32(const unsigned char *b) {
    uint32_t x = 0;
    for (int i = 0; i < 4; i++) x |= (uint32_t)b[i] << (8 * i);
    return x;
}
static uint64_t rc_get_u64(const unsigned char *b) {
    uint64_t x = 0;
    for (int i = 0; i < 8; i++) x |= (uint64_t)b[i] << (8 * i);
    return x;
}

/* ------------------------------------------------------------------------------------------------ */
/* writing                                                                                          */

typedef struct {
    FILE *f;
    uint32_t crc;
    int err; /* errno of the first failed write, 0 if none */
} rc_writer;

static void rc_w_bytes(rc_writer *w, const void *p, size_t n) {
    if (w->err || n == 0) return;
    w->crc = rc_crc(w->crc, p, n);
    errno = 0;
    if (fwrite(p, 1, n, w->f) != n) w->err = errno ? errno : EIO;
}
static void rc_w_u32(rc_writer *w, uint32_t x) {
    unsigned char b[4];
    rc_put_u32(b, x);
    rc_w_bytes(w, b, 4);
}
static void rc_w_floats(rc_writer *w, const float *x, size_t n) {
    if (rc_host_le()) {
        rc_w_bytes(w, x, n * sizeof(float));
        return;
    }
    unsigned char buf[4096];
    while (n > 0) {
        size_t k = n > sizeof buf / 4 ? sizeof buf / 4 : n;
        for (size_t i = 0; i < k; i++) {
            uint32_t u;
            memcpy(&u, &x[i], 4);
            rc_put_u32(buf + 4 * i, u);
        }
        rc_w_bytes(w, buf, 4 * k);
        x += k;
        n -= k;
    }
}

static void rc_w_meta(rc_writer *w, const rc_ckpt_meta *m) {
    unsigned char b[RC_CKPT_META_BYTES];
    unsigned char *q = b;
    rc_put_u64(q, (uint64_t)(int64_t)m->epoch), q += 8;
    rc_put_u64(q, (uint64_t)(int64_t)m->step_in_epoch), q += 8;
    rc_put_u64(q, (uint64_t)(int64_t)m->global_step), q += 8;
    for (int i = 0; i < 4; i++) rc_put_u64(q, m->rng.s[i]), q += 8;
    for (int i = 0; i < 4; i++) rc_put_u64(q, m->shuffle_rng.s[i]), q += 8;
    rc_put_u64(q, m->seed), q += 8;
    rc_put_u64(q, (uint64_t)(int64_t)m->threads), q += 8;
    uint64_t bits;
    memcpy(&bits, &m->best_acc, 8);
    rc_put_u64(q, bits), q += 8;
    memcpy(&bits, &m->epoch_loss_sum, 8);
    rc_put_u64(q, bits), q += 8;
    rc_put_u64(q, (uint64_t)(int64_t)m->epoch_correct), q += 8;
    rc_put_u64(q, (uint64_t)(int64_t)m->epoch_seen), q += 8;
    for (int i = 0; i < RC_CKPT_RESERVED; i++) rc_put_u64(q, (uint64_t)m->reserved[i]), q += 8;
    RC_ASSERT(q == b + sizeof b);
    rc_w_bytes(w, b, sizeof b);
}

/* fsync the directory holding path so the rename is durable. */
static rc_status rc_sync_dir(const char *path) {
    size_t n = strlen(path);
    char *dir = rc_xmalloc(n + 2);
    memcpy(dir, path, n + 1);
    char *slash = strrchr(dir, '/');
    if (!slash)
        strcpy(dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    rc_status st = RC_OK;
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) {
        if (errno != EACCES)
            st = rc_fail("%s: written, but cannot open its directory %s to sync it: %s", path, dir, strerror(errno));
    } else {
        if (fsync(fd) != 0 && errno != EINVAL && errno != ENOTSUP)
            st = rc_fail("%s: written, but syncing its directory %s failed: %s", path, dir, strerror(errno));
        close(fd);
    }
    free(dir);
    return st;
}

rc_status rc_checkpoint_save(const char *path, const rc_graph *g, const char *config_text, const rc_ckpt_meta *meta) {
    RC_ASSERT(path && g && meta);
    size_t clen = config_text ? strlen(config_text) : 0;
    if (clen > RC_CKPT_MAX_CONFIG)
        return rc_fail("%s: config text is %zu bytes, more than a checkpoint holds (%u)", path, clen,
                       (unsigned)RC_CKPT_MAX_CONFIG);
    if ((unsigned)g->nparams > RC_CKPT_MAX_PARAMS)
        return rc_fail("%s: the model has %d params, more than a checkpoint holds (%u)", path, g->nparams,
                       (unsigned)RC_CKPT_MAX_PARAMS);
    for (int i = 0; i < g->nparams; i++) {
        const rc_param *p = &g->params[i];
        size_t nl = strnlen(p->name, RC_NAME_MAX);
        RC_ASSERT(nl >= 1 && nl < RC_NAME_MAX);
        RC_ASSERT(p->ndim >= 1 && p->ndim <= 4);
        uint64_t prod = 1;
        for (int d = 0; d < p->ndim; d++) {
            RC_ASSERT(p->shape[d] >= 1);
            prod *= (uint64_t)p->shape[d];
        }
        RC_ASSERT(prod == p->numel && prod <= RC_CKPT_MAX_NUMEL);
        RC_ASSERT(p->kind >= RC_PARAM_WEIGHT && p->kind <= RC_PARAM_BUFFER);
        RC_ASSERT(p->w && (p->kind == RC_PARAM_BUFFER || (p->m && p->v)));
    }

    size_t plen = strlen(path);
    char *tmp = rc_xmalloc(plen + 5);
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);

    rc_status st = RC_OK;
    rc_writer w = {NULL, 0, 0};
    w.f = fopen(tmp, "wb");
    if (!w.f) {
        st = rc_fail("%s: cannot create temporary file %s: %s", path, tmp, strerror(errno));
        free(tmp);
        return st;
    }

    rc_w_bytes(&w, rc_ckpt_magic, sizeof rc_ckpt_magic);
    rc_w_u32(&w, RC_CKPT_VERSION);
    rc_w_u32(&w, (uint32_t)clen);
    rc_w_bytes(&w, config_text, clen);
    rc_w_meta(&w, meta);
    rc_w_u32(&w, (uint32_t)g->nparams);
    for (int i = 0; i < g->nparams && !w.err; i++) {
        const rc_param *p = &g->params[i];
        size_t nl = strlen(p->name);
        rc_w_u32(&w, (uint32_t)nl);
        rc_w_bytes(&w, p->name, nl);
        rc_w_u32(&w, (uint32_t)p->kind);
        rc_w_u32(&w, (uint32_t)p->ndim);
        for (int d = 0; d < p->ndim; d++) rc_w_u32(&w, (uint32_t)p->shape[d]);
        rc_w_floats(&w, p->w, p->numel);
        if (p->kind != RC_PARAM_BUFFER) {
            rc_w_floats(&w, p->m, p->numel);
            rc_w_floats(&w, p->v, p->numel);
        }
    }
    if (!w.err) {
        unsigned char b[4];
        rc_put_u32(b, w.crc);
        errno = 0;
        if (fwrite(b, 1, 4, w.f) != 4) w.err = errno ? errno : EIO;
    }

    if (w.err) {
        st = rc_fail("%s: writing %s failed: %s", path, tmp, strerror(w.err));
    } else if (fflush(w.f) != 0) {
        st = rc_fail("%s: writing %s failed: %s", path, tmp, strerror(errno));
    } else if (fsync(fileno(w.f)) != 0) {
        st = rc_fail("%s: syncing %s to disk failed: %s", path, tmp, strerror(errno));
    }
    int close_rc = fclose(w.f);
    if (st == RC_OK && close_rc != 0) st = rc_fail("%s: closing %s failed: %s", path, tmp, strerror(errno));
    if (st == RC_OK && rename(tmp, path) != 0)
        st = rc_fail("%s: cannot rename %s into place: %s", path, tmp, strerror(errno));
    if (st != RC_OK) {
        remove(tmp);
        free(tmp);
        return st;
    }
    free(tmp);
    return rc_sync_dir(path);
}

/* ------------------------------------------------------------------------------------------------ */
/* reading                                                                                          */

typedef struct {
    const unsigned char *name; /* not NUL-terminated */
    uint32_t nlen, kind, ndim, dims[4];
    uint64_t numel;
    size_t rec_off;  /* byte offset of the record */
    size_t data_off; /* byte offset of w (then m, v) */
} rc_ckpt_rec;

typedef struct {
    const unsigned char *b;
    size_t end; /* parse limit (the checksum's offset) */
    size_t pos;
    const char *file;
    uint32_t version; /* the file's format version, 1 or 2 */
    /* results */
    const unsigned char *config;
    uint32_t config_len;
    rc_ckpt_meta meta;
    uint32_t nrec;
    rc_ckpt_rec *recs;
} rc_parser;

/* Fail unless n more bytes are available. */
static rc_status rc_need(const rc_parser *p, uint64_t n, const char *what) {
    uint64_t left = p->end - p->pos;
    if (n > left)
        return rc_fail("%s: truncated or corrupted at byte offset %zu: %s needs %llu bytes, only %llu remain before "
                       "the checksum",
                       p->file, p->pos, what, (unsigned long long)n, (unsigned long long)left);
    return RC_OK;
}

static rc_status rc_r_u32(rc_parser *p, uint32_t *x, const char *what) {
    if (rc_need(p, 4, what)) return RC_ERR;
    *x = rc_get_u32(p->b + p->pos);
    p->pos += 4;
    return RC_OK;
}

static void rc_fmt_name(char *out, const unsigned char *name, uint32_t n) {
    memcpy(out, name, n);
    out[n] = '\0';
}

static rc_status rc_r_i64(const rc_parser *p, const unsigned char *q, int64_t lo, int64_t hi, const char *what,
                          int64_t *out) {
    int64_t v = (int64_t)rc_get_u64(q);
    if (v < lo || v > hi)
        return rc_fail("%s: byte offset %zu: %s is %lld, outside [%lld, %lld]", p->file, (size_t)(q - p->b), what,
                       (long long)v, (long long)lo, (long long)hi);
    *out = v;
    return RC_OK;
}

static rc_status rc_parse_meta(rc_parser *p) {
    if (rc_need(p, RC_CKPT_META_BYTES, "the metadata block")) return RC_ERR;
    const unsigned char *q = p->b + p->pos;
    rc_ckpt_meta *m = &p->meta;
    memset(m, 0, sizeof *m);
    const int64_t lmax = (int64_t)(LONG_MAX < INT64_MAX ? LONG_MAX : INT64_MAX);
    int64_t v = 0;
    if (rc_r_i64(p, q, 0, lmax, "epoch", &v)) return RC_ERR;
    m->epoch = (long)v, q += 8;
    if (rc_r_i64(p, q, 0, lmax, "step_in_epoch", &v)) return RC_ERR;
    m->step_in_epoch = (long)v, q += 8;
    if (rc_r_i64(p, q, 0, lmax, "global_step", &v)) return RC_ERR;
    m->global_step = (long)v, q += 8;
    for (int i = 0; i < 4; i++) m->rng.s[i] = rc_get_u64(q), q += 8;
    for (int i = 0; i < 4; i++) m->shuffle_rng.s[i] = rc_get_u64(q), q += 8;
    m->seed = rc_get_u64(q), q += 8;
    if (rc_r_i64(p, q, 0, RC_CKPT_MAX_THREADS, "threads", &v)) return RC_ERR;
    m->threads = (int)v, q += 8;
    uint64_t bits = rc_get_u64(q);
    memcpy(&m->best_acc, &bits, 8), q += 8;
    /* the epoch sums: named fields in version 2, reserved[0..2] of version 1 (same bytes) */
    const int v1 = p->version == 1;
    bits = rc_get_u64(q);
    memcpy(&m->epoch_loss_sum, &bits, 8);
    if (!isfinite(m->epoch_loss_sum))
        return rc_fail("%s: byte offset %zu: %s is not finite", p->file, (size_t)(q - p->b),
                       v1 ? "the epoch loss sum (reserved[0] of a version-1 file)" : "epoch_loss_sum");
    q += 8;
    if (rc_r_i64(p, q + 8, 0, lmax, v1 ? "the epoch's images seen (reserved[2] of a version-1 file)" : "epoch_seen", &v))
        return RC_ERR;
    m->epoch_seen = (long)v;
    if (rc_r_i64(p, q, 0, v, v1 ? "the epoch's images right (reserved[1] of a version-1 file)" : "epoch_correct", &v))
        return RC_ERR;
    m->epoch_correct = (long)v;
    q += 16;
    for (int i = 0; i < RC_CKPT_RESERVED; i++) m->reserved[i] = (int64_t)rc_get_u64(q), q += 8;
    m->version = p->version;
    p->pos += RC_CKPT_META_BYTES;
    return RC_OK;
}

static rc_status rc_parse_record(rc_parser *p, uint32_t idx, rc_ckpt_rec *r) {
    char what[160];
    r->rec_off = p->pos;
    snprintf(what, sizeof what, "param %u's name length", (unsigned)idx);
    if (rc_r_u32(p, &r->nlen, what)) return RC_ERR;
    if (r->nlen < 1 || r->nlen >= RC_NAME_MAX)
        return rc_fail("%s: byte offset %zu: param %u has a name of %u bytes (must be 1..%d)", p->file, r->rec_off,
                       (unsigned)idx, (unsigned)r->nlen, RC_NAME_MAX - 1);
    snprintf(what, sizeof what, "param %u's name", (unsigned)idx);
    if (rc_need(p, r->nlen, what)) return RC_ERR;
    r->name = p->b + p->pos;
    for (uint32_t i = 0; i < r->nlen; i++)
        if (r->name[i] < 0x20 || r->name[i] > 0x7e)
            return rc_fail("%s: byte offset %zu: param %u's name contains the non-printable byte 0x%02x", p->file,
                           p->pos + i, (unsigned)idx, (unsigned)r->name[i]);
    p->pos += r->nlen;
    char name[RC_NAME_MAX];
    rc_fmt_name(name, r->name, r->nlen);
    snprintf(what, sizeof what, "the kind of param %s", name);
    size_t at = p->pos;
    if (rc_r_u32(p, &r->kind, what)) return RC_ERR;
    if (r->kind > RC_PARAM_BUFFER)
        return rc_fail("%s: byte offset %zu: param %s has kind %u (must be 0..2)", p->file, at, name,
                       (unsigned)r->kind);
    snprintf(what, sizeof what, "the rank of param %s", name);
    at = p->pos;
    if (rc_r_u32(p, &r->ndim, what)) return RC_ERR;
    if (r->ndim < 1 || r->ndim > 4)
        return rc_fail("%s: byte offset %zu: param %s has %u dimensions (must be 1..4)", p->file, at, name,
                       (unsigned)r->ndim);
    r->numel = 1;
    for (uint32_t d = 0; d < r->ndim; d++) {
        snprintf(what, sizeof what, "the shape of param %s", name);
        at = p->pos;
        if (rc_r_u32(p, &r->dims[d], what)) return RC_ERR;
        if (r->dims[d] < 1)
            return rc_fail("%s: byte offset %zu: param %s has a zero dimension", p->file, at, name);
        r->numel *= r->dims[d]; /* <= 1e9 * 2^32: cannot overflow 64 bits */
        if (r->numel > RC_CKPT_MAX_NUMEL)
            return rc_fail("%s: byte offset %zu: param %s has more than %llu elements", p->file, at, name,
                           (unsigned long long)RC_CKPT_MAX_NUMEL);
    }
    uint64_t bytes = r->numel * 4u * (r->kind == RC_PARAM_BUFFER ? 1u : 3u);
    snprintf(what, sizeof what, "the values of param %s (%llu elements%s)", name, (unsigned long long)r->numel,
             r->kind == RC_PARAM_BUFFER ? "" : ", with optimizer state");
    if (rc_need(p, bytes, what)) return RC_ERR;
    r->data_off = p->pos;
    p->pos += (size_t)bytes;
    return RC_OK;
}

/* Walk the whole structure of b[0..end) (magic and version already checked). Allocates p->recs. */
static rc_status rc_walk(rc_parser *p) {
    p->pos = RC_CKPT_HEAD_BYTES;
    p->recs = NULL;
    if (rc_r_u32(p, &p->config_len, "the config text length")) return RC_ERR;
    if (p->config_len > RC_CKPT_MAX_CONFIG)
        return rc_fail("%s: byte offset %zu: config text length %u exceeds the limit of %u bytes", p->file,
                       p->pos - 4, (unsigned)p->config_len, (unsigned)RC_CKPT_MAX_CONFIG);
    if (rc_need(p, p->config_len, "the config text")) return RC_ERR;
    p->config = p->b + p->pos;
    const void *nul = memchr(p->config, 0, p->config_len);
    if (nul)
        return rc_fail("%s: byte offset %zu: the config text contains a NUL byte", p->file,
                       (size_t)((const unsigned char *)nul - p->b));
    p->pos += p->config_len;
    if (rc_parse_meta(p)) return RC_ERR;
    if (rc_r_u32(p, &p->nrec, "the number of params")) return RC_ERR;
    size_t left = p->end - p->pos;
    if (p->nrec > RC_CKPT_MAX_PARAMS || (uint64_t)p->nrec * RC_CKPT_MIN_RECORD > left)
        return rc_fail("%s: byte offset %zu: %u params cannot fit in the remaining %zu bytes", p->file, p->pos - 4,
                       (unsigned)p->nrec, left);
    p->recs = calloc(p->nrec ? p->nrec : 1, sizeof *p->recs);
    if (!p->recs) return rc_fail("%s: out of memory for %u param records", p->file, (unsigned)p->nrec);
    for (uint32_t i = 0; i < p->nrec; i++)
        if (rc_parse_record(p, i, &p->recs[i])) return RC_ERR;
    if (p->pos != p->end)
        return rc_fail("%s: byte offset %zu: %zu unexpected bytes after the last param", p->file, p->pos,
                       p->end - p->pos);
    return RC_OK;
}

static const char *rc_kind_word(unsigned k) {
    return k == RC_PARAM_WEIGHT ? "a weight (decayed)" : k == RC_PARAM_NODECAY ? "a weight without decay" : "a buffer";
}

static void rc_fmt_shape(char *out, size_t cap, int ndim, const uint32_t *dims) {
    size_t o = 0;
    out[0] = '\0';
    for (int d = 0; d < ndim && o < cap; d++) {
        int k = snprintf(out + o, cap - o, d ? "x%u" : "%u", (unsigned)dims[d]);
        if (k < 0) break;
        o += (size_t)k;
    }
}

/* Sort param indices by name (a merge sort: qsort's comparator could not see the graph). */
static void rc_sort_by_name(const rc_graph *g, int *idx, int *tmp, int n) {
    if (n < 2) return;
    int h = n / 2;
    rc_sort_by_name(g, idx, tmp, h);
    rc_sort_by_name(g, idx + h, tmp, n - h);
    int i = 0, j = h, k = 0;
    while (i < h && j < n)
        tmp[k++] = strcmp(g->params[idx[i]].name, g->params[idx[j]].name) <= 0 ? idx[i++] : idx[j++];
    while (i < h) tmp[k++] = idx[i++];
    while (j < n) tmp[k++] = idx[j++];
    memcpy(idx, tmp, (size_t)n * sizeof *idx);
}

static int rc_find_sorted(const rc_graph *g, const int *idx, int n, const char *name) {
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(g->params[idx[mid]].name, name);
        if (c == 0) return idx[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

/* Match every record to a graph param by name; check kinds and shapes. match[i] = graph index. */
static rc_status rc_match(const rc_parser *p, const rc_graph *g, int *match) {
    int n = g->nparams;
    int *idx = rc_xmalloc((size_t)(n ? n : 1) * sizeof(int));
    int *tmp = rc_xmalloc((size_t)(n ? n : 1) * sizeof(int));
    int *seen = rc_xmalloc((size_t)(n ? n : 1) * sizeof(int));
    for (int i = 0; i < n; i++) idx[i] = i, seen[i] = -1;
    rc_sort_by_name(g, idx, tmp, n);
    rc_status st = RC_OK;
    char name[RC_NAME_MAX], sa[64], sb[64];
    for (uint32_t r = 0; r < p->nrec && st == RC_OK; r++) {
        const rc_ckpt_rec *rec = &p->recs[r];
        rc_fmt_name(name, rec->name, rec->nlen);
        int gi = rc_find_sorted(g, idx, n, name);
        if (gi < 0) {
            st = rc_fail("%s: param %s is in the checkpoint but not in the model (the checkpoint has %u params, the "
                         "model %d)",
                         p->file, name, (unsigned)p->nrec, n);
            break;
        }
        if (seen[gi] >= 0) {
            st = rc_fail("%s: param %s appears twice in the checkpoint (byte offsets %zu and %zu)", p->file, name,
                         p->recs[seen[gi]].rec_off, rec->rec_off);
            break;
        }
        seen[gi] = (int)r;
        match[r] = gi;
        const rc_param *gp = &g->params[gi];
        uint32_t gd[4] = {0, 0, 0, 0};
        int same = (int)rec->ndim == gp->ndim;
        for (int d = 0; d < gp->ndim && d < 4; d++) {
            gd[d] = (uint32_t)gp->shape[d];
            if (same && rec->dims[d] != gd[d]) same = 0;
        }
        if (!same) {
            rc_fmt_shape(sa, sizeof sa, (int)rec->ndim, rec->dims);
            rc_fmt_shape(sb, sizeof sb, gp->ndim, gd);
            st = rc_fail("%s: param %s has shape %s in the checkpoint, %s in the model", p->file, name, sa, sb);
            break;
        }
        RC_ASSERT(gp->numel == rec->numel);
        if ((unsigned)gp->kind != rec->kind) {
            st = rc_fail("%s: param %s is %s in the checkpoint, %s in the model", p->file, name,
                         rc_kind_word(rec->kind), rc_kind_word((unsigned)gp->kind));
            break;
        }
    }
    for (int i = 0; i < n && st == RC_OK; i++)
        if (seen[i] < 0)
            st = rc_fail("%s: param %s of the model is missing from the checkpoint (the checkpoint has %u params, the "
                         "model %d)",
                         p->file, g->params[i].name, (unsigned)p->nrec, n);
    free(idx);
    free(tmp);
    free(seen);
    return st;
}

static void rc_read_floats(float *dst, const unsigned char *src, uint64_t n) {
    if (rc_host_le()) {
        memcpy(dst, src, (size_t)n * sizeof(float));
        return;
    }
    for (uint64_t i = 0; i < n; i++) {
        uint32_t u = rc_get_u32(src + 4 * i);
        memcpy(&dst[i], &u, 4);
    }
}

rc_status rc_checkpoint_parse(const void *buf, size_t len, const char *display_name, rc_graph *g, rc_ckpt_meta *meta,
                              char **config_text) {
    const char *file = display_name ? display_name : "checkpoint";
    const unsigned char *b = buf;
    if (config_text) *config_text = NULL;
    RC_ASSERT(b || len == 0);
    if (len < sizeof rc_ckpt_magic || memcmp(b, rc_ckpt_magic, sizeof rc_ckpt_magic) != 0) {
        if (len < sizeof rc_ckpt_magic)
            return rc_fail("%s: not a recur checkpoint: the file is %zu bytes, shorter than the magic number", file,
                           len);
        return rc_fail("%s: not a recur checkpoint (wrong magic number at byte offset 0)", file);
    }
    if (len < RC_CKPT_HEAD_BYTES)
        return rc_fail("%s: truncated at byte offset %zu: the format version needs 4 bytes", file, len);
    uint32_t version = rc_get_u32(b + 8);
    if (version < 1 || version > RC_CKPT_VERSION)
        return rc_fail("%s: byte offset 8: checkpoint format version %u, this build reads versions 1 to %u", file,
                       (unsigned)version, (unsigned)RC_CKPT_VERSION);
    if (len < RC_CKPT_HEAD_BYTES + 4)
        return rc_fail("%s: truncated at byte offset %zu: no room for the checksum", file, len);

    rc_parser p;
    memset(&p, 0, sizeof p);
    p.b = b;
    p.end = len - 4;
    p.file = file;
    p.version = version;

    uint32_t stored = rc_get_u32(b + len - 4);
    uint32_t computed = rc_crc((uint32_t)crc32(0L, Z_NULL, 0), b, len - 4);
    if (stored != computed) {
        /* Say where the structure breaks, if it does (truncation names the offset). */
        char detail[700] = "";
        if (rc_walk(&p) != RC_OK) {
            const char *e = rc_error();
            size_t fl = strlen(file);
            if (strncmp(e, file, fl) == 0 && strncmp(e + fl, ": ", 2) == 0) e += fl + 2;
            snprintf(detail, sizeof detail, "; %s", e);
        }
        free(p.recs);
        char msg[900];
        snprintf(msg, sizeof msg, "%s: checksum mismatch (stored 0x%08x at byte offset %zu, computed 0x%08x): the file "
                 "is truncated or corrupted%s",
                 file, (unsigned)stored, len - 4, (unsigned)computed, detail);
        return rc_fail("%s", msg);
    }
    if (rc_walk(&p) != RC_OK) {
        free(p.recs);
        return RC_ERR;
    }
    int *match = NULL;
    if (g) {
        match = rc_xmalloc((size_t)(p.nrec ? p.nrec : 1) * sizeof(int));
        if (rc_match(&p, g, match) != RC_OK) {
            free(match);
            free(p.recs);
            return RC_ERR;
        }
    }
    /* Everything validated: apply. Nothing below can fail. */
    if (config_text) {
        char *t = rc_xmalloc((size_t)p.config_len + 1);
        memcpy(t, p.config, p.config_len);
        t[p.config_len] = '\0';
        *config_text = t;
    }
    if (meta) *meta = p.meta;
    if (g) {
        for (uint32_t r = 0; r < p.nrec; r++) {
            const rc_ckpt_rec *rec = &p.recs[r];
            rc_param *gp = &g->params[match[r]];
            const unsigned char *src = b + rec->data_off;
            RC_ASSERT(gp->w);
            rc_read_floats(gp->w, src, rec->numel);
            if (rec->kind != RC_PARAM_BUFFER) {
                RC_ASSERT(gp->m && gp->v);
                rc_read_floats(gp->m, src + 4 * rec->numel, rec->numel);
                rc_read_floats(gp->v, src + 8 * rec->numel, rec->numel);
            }
        }
    }
    free(match);
    free(p.recs);
    return RC_OK;
}

/* Read a whole file into memory. */
static rc_status rc_slurp(const char *path, unsigned char **out, size_t *len) {
    *out = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return rc_fail("%s: cannot open checkpoint: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0) {
        rc_status st = rc_fail("%s: cannot stat checkpoint: %s", path, strerror(errno));
        fclose(f);
        return st;
    }
    if (!S_ISREG(sb.st_mode)) {
        fclose(f);
        return rc_fail("%s: not a regular file", path);
    }
    size_t n = (size_t)sb.st_size;
    unsigned char *b = malloc(n ? n : 1);
    if (!b) {
        fclose(f);
        return rc_fail("%s: out of memory reading %zu bytes", path, n);
    }
    size_t got = fread(b, 1, n, f);
    if (got != n) {
        rc_status st = ferror(f) ? rc_fail("%s: read error at byte offset %zu: %s", path, got, strerror(errno))
                                 : rc_fail("%s: the file shrank while reading (%zu of %zu bytes)", path, got, n);
        fclose(f);
        free(b);
        return st;
    }
    fclose(f);
    *out = b;
    *len = n;
    return RC_OK;
}

rc_status rc_checkpoint_load(const char *path, rc_graph *g, rc_ckpt_meta *meta) {
    RC_ASSERT(path);
    unsigned char *b;
    size_t n;
    if (rc_slurp(path, &b, &n)) return RC_ERR;
    rc_status st = rc_checkpoint_parse(b, n, path, g, meta, NULL);
    free(b);
    return st;
}

rc_status rc_checkpoint_read_config(const char *path, char **text) {
    RC_ASSERT(path && text);
    *text = NULL;
    unsigned char *b;
    size_t n;
    if (rc_slurp(path, &b, &n)) return RC_ERR;
    rc_status st = rc_checkpoint_parse(b, n, path, NULL, NULL, text);
    free(b);
    return st;
}
