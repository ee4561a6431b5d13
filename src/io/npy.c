/* npy.c — see npy.h: the .npy header writer and streaming writer, then the header parser and reader. */
#define _POSIX_C_SOURCE 200809L
#include "npy.h"

#include <errno.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

int rc_npy_itemsize(const char *d) {
    if (!d || strlen(d) < 3 || (d[0] != '<' && d[0] != '|' && d[0] != '>' && d[0] != '=')) return 0;
    if (d[1] != 'f' && d[1] != 'i' && d[1] != 'u' && d[1] != 'b') return 0;
    int n = atoi(d + 2);
    return n == 1 || n == 2 || n == 4 || n == 8 ? n : 0;
}

size_t rc_npy_header(char *buf, size_t cap, const char *descr, int ndim, const int64_t *shape) {
    if (ndim < 0 || ndim > RC_NPY_MAX_NDIM) return 0;
    char dict[512];
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int i = 0; i < ndim; i++)
        n += snprintf(dict + n, sizeof dict - (size_t)n, "%lld%s", (long long)shape[i], ndim == 1 ? "," : (i + 1 < ndim ? ", " : ""));
    n += snprintf(dict + n, sizeof dict - (size_t)n, "), }");
    if (n <= 0 || (size_t)n >= sizeof dict - 70) return 0;
    size_t total = (10 + (size_t)n + 1 + 63) / 64 * 64; /* magic 6 + version 2 + length 2, dict, '\n' */
    if (total > cap || total - 10 > 65535) return 0;
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (char)((total - 10) & 0xff);
    buf[9] = (char)((total - 10) >> 8);
    memcpy(buf + 10, dict, (size_t)n);
    memset(buf + 10 + n, ' ', total - 10 - (size_t)n - 1);
    buf[total - 1] = '\n';
    return total;
}

rc_status rc_npy_open(rc_npy_writer *w, const char *path, const char *descr, int ndim, const int64_t *shape) {
    memset(w, 0, sizeof *w);
    int isz = rc_npy_itemsize(descr);
    char hdr[1024];
    size_t hl = rc_npy_header(hdr, sizeof hdr, descr, ndim, shape);
    if (!isz || !hl) return rc_fail("%s: cannot describe a .npy array of dtype %s and %d dimensions", path, descr, ndim);
    uint64_t n = (uint64_t)isz;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return rc_fail("%s: negative dimension in .npy shape", path);
        n *= (uint64_t)shape[i];
    }
    w->expect = n;
    if (rc_atomic_open(&w->af, path)) return RC_ERR;
    if (rc_atomic_write(&w->af, hdr, hl)) {
        rc_atomic_abort(&w->af);
        return RC_ERR;
    }
    return RC_OK;
}

rc_status rc_npy_write(rc_npy_writer *w, const void *data, size_t bytes) {
    RC_ASSERT(w->af.f);
    if (w->written + bytes > w->expect) return rc_fail("%s: more data than the array's shape holds", w->af.path);
    if (rc_atomic_write(&w->af, data, bytes)) return RC_ERR;
    w->written += bytes;
    return RC_OK;
}

rc_status rc_npy_close(rc_npy_writer *w) {
    RC_ASSERT(w->af.f);
    if (w->written != w->expect) {
        rc_status st = rc_fail("%s: %llu of %llu data bytes written", w->af.path, (unsigned long long)w->written,
                               (unsigned long long)w->expect);
        rc_atomic_abort(&w->af);
        return st;
    }
    return rc_atomic_commit(&w->af);
}

void rc_npy_abort(rc_npy_writer *w) { rc_atomic_abort(&w->af); }

/* ---------------------------------------------------------------- reading */

/* Up to 15 characters of s[0, n) with anything unprintable as '?', for quoting file bytes in messages. */
static void quote(char out[16], const char *s, size_t n) {
    size_t k = 0;
    for (; k < n && k < 15; k++) out[k] = s[k] >= 0x20 && s[k] < 0x7f ? s[k] : '?';
    out[k] = '\0';
}

static int host_big_endian(void) {
    const uint16_t one = 1;
    unsigned char b[2];
    memcpy(b, &one, 2);
    return b[0] == 0;
}

typedef struct {
    const char *name, *s; /* the dict text */
    size_t n, i, base;    /* length, cursor, the dict's byte offset in the file (for messages) */
} cursor;

static void skip_ws(cursor *c) {
    while (c->i < c->n && (c->s[c->i] == ' ' || c->s[c->i] == '\t' || c->s[c->i] == '\n' || c->s[c->i] == '\r')) c->i++;
}

static rc_status expected(const cursor *c, const char *what) {
    if (c->i >= c->n) return rc_fail("%s: .npy header dict ends early: expected %s", c->name, what);
    char q[16];
    quote(q, c->s + c->i, 1);
    return rc_fail("%s: .npy header: expected %s at byte %zu, found '%s'", c->name, what, c->base + c->i, q);
}

/* A Python string literal ('...' or "...", no escapes) into out (at most cap - 1 characters). */
static rc_status parse_string(cursor *c, char *out, size_t cap, const char *what) {
    if (c->i >= c->n || (c->s[c->i] != '\'' && c->s[c->i] != '"')) return expected(c, what);
    char qc = c->s[c->i++];
    size_t start = c->i;
    while (c->i < c->n && c->s[c->i] != qc) {
        if (c->s[c->i] == '\\' || c->s[c->i] == '\n') return expected(c, "a plain string");
        c->i++;
    }
    if (c->i >= c->n) return rc_fail("%s: .npy header: unterminated string at byte %zu", c->name, c->base + start - 1);
    size_t len = c->i - start;
    c->i++;
    if (len >= cap) {
        char q[16];
        quote(q, c->s + start, len);
        return rc_fail("%s: .npy header: %s '%s...' is too long", c->name, what, q);
    }
    memcpy(out, c->s + start, len);
    out[len] = '\0';
    return RC_OK;
}

/* A non-negative integer literal (optionally with Python 2's 'L'), at most 2^62. */
static rc_status parse_dim(cursor *c, int64_t *v) {
    if (c->i >= c->n || c->s[c->i] < '0' || c->s[c->i] > '9') return expected(c, "a non-negative dimension");
    int64_t x = 0;
    while (c->i < c->n && c->s[c->i] >= '0' && c->s[c->i] <= '9') {
        int digit = c->s[c->i++] - '0';
        if (x > (((int64_t)1 << 62) - digit) / 10)
            return rc_fail("%s: .npy header: a dimension of the shape is too large", c->name);
        x = x * 10 + digit;
    }
    if (c->i < c->n && c->s[c->i] == 'L') c->i++;
    *v = x;
    return RC_OK;
}

static rc_status parse_shape(cursor *c, rc_npy_info *info) {
    if (c->i >= c->n || c->s[c->i] != '(') return expected(c, "a shape tuple '('");
    c->i++;
    info->ndim = 0;
    for (;;) {
        skip_ws(c);
        if (c->i < c->n && c->s[c->i] == ')') break;
        if (info->ndim == RC_NPY_MAX_NDIM)
            return rc_fail("%s: .npy shape has more than %d dimensions", c->name, RC_NPY_MAX_NDIM);
        if (parse_dim(c, &info->shape[info->ndim++])) return RC_ERR;
        skip_ws(c);
        if (c->i < c->n && c->s[c->i] == ',') {
            c->i++;
            continue;
        }
        if (c->i < c->n && c->s[c->i] == ')') {
            if (info->ndim == 1) return rc_fail("%s: .npy shape (N) lacks the comma of a 1-tuple (N,)", c->name);
            break;
        }
        return expected(c, "',' or ')' in the shape");
    }
    c->i++;
    return RC_OK;
}

static rc_status parse_descr(const char *name, const char *d, rc_npy_info *info) {
    char q[16];
    quote(q, d, strlen(d));
    size_t len = strlen(d);
    if (len < 3 || !strchr("<>|=", d[0]))
        return rc_fail("%s: .npy dtype '%s' is not a plain numeric dtype like '<f4' or '|u1'", name, q);
    if (!strchr("fiub", d[1]))
        return rc_fail("%s: .npy dtype '%s' is not supported (numbers only: floats, integers, booleans)", name, q);
    int size = 0;
    for (size_t k = 2; k < len; k++) {
        if (d[k] < '0' || d[k] > '9' || size > 100)
            return rc_fail("%s: .npy dtype '%s' is not a plain numeric dtype like '<f4' or '|u1'", name, q);
        size = size * 10 + (d[k] - '0');
    }
    if (size != 1 && size != 2 && size != 4 && size != 8)
        return rc_fail("%s: .npy dtype '%s' has an element size of %d bytes (1, 2, 4 or 8 are supported)", name, q, size);
    if (d[1] == 'b' && size != 1) return rc_fail("%s: .npy dtype '%s': booleans are 1 byte", name, q);
    if (d[0] == '|' && size != 1)
        return rc_fail("%s: .npy dtype '%s' has no byte order but elements of %d bytes", name, q, size);
    memcpy(info->descr, d, len + 1);
    info->kind = d[1];
    info->itemsize = size;
    int big = d[0] == '>' || (d[0] == '=' && host_big_endian());
    info->swap = size > 1 && big != host_big_endian();
    return RC_OK;
}

rc_status rc_npy_parse(const char *name, const uint8_t *buf, size_t n, rc_npy_info *info) {
    memset(info, 0, sizeof *info);
    if (n < 10) return rc_fail("%s: truncated: %zu bytes, shorter than a .npy header", name, n);
    if (memcmp(buf, "\x93NUMPY", 6) != 0) return rc_fail("%s: not a .npy file (no \\x93NUMPY magic at byte 0)", name);
    int major = buf[6], minor = buf[7];
    if ((major != 1 && major != 2 && major != 3) || minor != 0)
        return rc_fail("%s: .npy format version %d.%d is not supported (1.0, 2.0 and 3.0 are)", name, major, minor);
    size_t pre = major == 1 ? 10 : 12;
    if (n < pre) return rc_fail("%s: truncated: %zu bytes, shorter than a .npy %d.0 header", name, n, major);
    uint64_t hlen = (uint64_t)buf[8] | (uint64_t)buf[9] << 8;
    if (major > 1) hlen |= (uint64_t)buf[10] << 16 | (uint64_t)buf[11] << 24;
    if (hlen > RC_NPY_MAX_HEADER)
        return rc_fail("%s: .npy header length %llu is over the limit of %d bytes", name, (unsigned long long)hlen,
                       RC_NPY_MAX_HEADER);
    if (pre + hlen > n)
        return rc_fail("%s: truncated: the .npy header of %llu bytes ends past the end of the data (%zu bytes)", name,
                       (unsigned long long)(pre + hlen), n);
    cursor c = {name, (const char *)buf + pre, (size_t)hlen, 0, pre};
    int seen[3] = {0, 0, 0}, fortran = 0;
    skip_ws(&c);
    if (c.i >= c.n || c.s[c.i] != '{') return expected(&c, "the header dict '{'");
    c.i++;
    for (;;) {
        skip_ws(&c);
        if (c.i < c.n && c.s[c.i] == '}') break;
        char key[32];
        if (parse_string(&c, key, sizeof key, "a key")) return RC_ERR;
        skip_ws(&c);
        if (c.i >= c.n || c.s[c.i] != ':') return expected(&c, "':' after a key");
        c.i++;
        skip_ws(&c);
        int k = !strcmp(key, "descr") ? 0 : !strcmp(key, "fortran_order") ? 1 : !strcmp(key, "shape") ? 2 : -1;
        if (k < 0) {
            char q[16];
            quote(q, key, strlen(key));
            return rc_fail("%s: .npy header has an unknown key '%s' (descr, fortran_order and shape are expected)",
                           name, q);
        }
        if (seen[k]++) return rc_fail("%s: .npy header has the key '%s' twice", name, key);
        if (k == 0) {
            char d[16];
            if (c.i < c.n && (c.s[c.i] == '[' || c.s[c.i] == '{'))
                return rc_fail("%s: .npy dtype is structured (a list of fields); recur reads plain numeric arrays", name);
            if (parse_string(&c, d, sizeof d, "the dtype string") || parse_descr(name, d, info)) return RC_ERR;
        } else if (k == 1) {
            if (c.n - c.i >= 4 && !memcmp(c.s + c.i, "True", 4)) {
                fortran = 1;
                c.i += 4;
            } else if (c.n - c.i >= 5 && !memcmp(c.s + c.i, "False", 5)) {
                c.i += 5;
            } else {
                return expected(&c, "True or False for fortran_order");
            }
        } else if (parse_shape(&c, info)) {
            return RC_ERR;
        }
        skip_ws(&c);
        if (c.i < c.n && c.s[c.i] == ',') {
            c.i++;
            continue;
        }
        if (c.i < c.n && c.s[c.i] == '}') break;
        return expected(&c, "',' or '}' in the header dict");
    }
    c.i++;
    skip_ws(&c);
    while (c.i < c.n && c.s[c.i] == '\0') c.i++; /* NUL padding seen in some writers' files */
    if (c.i < c.n) return expected(&c, "only padding after the header dict");
    static const char *const keys[3] = {"descr", "fortran_order", "shape"};
    for (int k = 0; k < 3; k++)
        if (!seen[k]) return rc_fail("%s: .npy header dict lacks the key '%s'", name, keys[k]);
    int big_dims = 0;
    for (int d = 0; d < info->ndim; d++) big_dims += info->shape[d] > 1;
    if (fortran && big_dims > 1)
        return rc_fail("%s: .npy array is in Fortran order; recur reads C order (save np.ascontiguousarray(a))", name);
    uint64_t count = 1, limit = ((uint64_t)1 << 62) / (uint64_t)info->itemsize;
    for (int d = 0; d < info->ndim; d++) {
        uint64_t s = (uint64_t)info->shape[d];
        if (s && count > limit / s) return rc_fail("%s: .npy shape holds more than 2^62 bytes", name);
        count *= s;
    }
    info->count = count;
    info->data_off = pre + hlen;
    return RC_OK;
}

void rc_npy_read_close(rc_npy_reader *r) {
    if (r->f) fclose(r->f);
    free(r->path);
    memset(r, 0, sizeof *r);
}

rc_status rc_npy_read_open(rc_npy_reader *r, const char *path) {
    memset(r, 0, sizeof *r);
    struct stat st;
    if (stat(path, &st) != 0) return rc_fail("cannot open %s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return rc_fail("%s: not a regular file", path);
    size_t pl = strlen(path);
    r->path = rc_xmalloc(pl + 1);
    memcpy(r->path, path, pl + 1);
    r->f = fopen(path, "rb");
    if (!r->f) {
        rc_status s = rc_fail("cannot open %s: %s", path, strerror(errno));
        rc_npy_read_close(r);
        return s;
    }
    uint64_t fsize = (uint64_t)st.st_size;
    size_t want = (size_t)RC_MIN(fsize, (uint64_t)12 + RC_NPY_MAX_HEADER);
    uint8_t *hdr = rc_xmalloc(want + 1);
    size_t got = fread(hdr, 1, want, r->f);
    rc_status s = got == want ? rc_npy_parse(path, hdr, got, &r->info) : rc_fail("cannot read %s: %s", path, strerror(errno));
    free(hdr);
    if (s == RC_OK) {
        uint64_t need = r->info.count * (uint64_t)r->info.itemsize, have = fsize - r->info.data_off;
        if (have < need)
            s = rc_fail("%s: truncated: the header promises %llu data bytes after byte offset %llu, the file has %llu",
                        path, (unsigned long long)need, (unsigned long long)r->info.data_off, (unsigned long long)have);
        else if (have > need)
            s = rc_fail("%s: %llu bytes of unexpected data after the array's end at byte offset %llu", path,
                        (unsigned long long)(have - need), (unsigned long long)(r->info.data_off + need));
        else if (fseek(r->f, (long)r->info.data_off, SEEK_SET) != 0)
            s = rc_fail("cannot read %s: %s", path, strerror(errno));
    }
    if (s != RC_OK) rc_npy_read_close(r);
    return s;
}

rc_status rc_npy_read(rc_npy_reader *r, void *dst, uint64_t n) {
    RC_ASSERT(r->f && r->done + n <= r->info.count);
    size_t isz = (size_t)r->info.itemsize, bytes = (size_t)n * isz;
    if (bytes && fread(dst, 1, bytes, r->f) != bytes)
        return rc_fail("%s: read error or truncated data near byte offset %llu", r->path,
                       (unsigned long long)(r->info.data_off + r->done * isz));
    if (r->info.swap) {
        uint8_t *p = dst;
        for (size_t e = 0; e < (size_t)n; e++, p += isz)
            for (size_t a = 0, b = isz - 1; a < b; a++, b--) {
                uint8_t t = p[a];
                p[a] = p[b];
                p[b] = t;
            }
    }
    r->done += n;
    return RC_OK;
}
