/* npy.c — see npy.h. */
#define _POSIX_C_SOURCE 200809L
#include "npy.h"

#include <errno.h>
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

static void release(rc_npy_writer *w) {
    free(w->path);
    free(w->tmp);
    memset(w, 0, sizeof *w);
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
    size_t pl = strlen(path);
    w->path = rc_xmalloc(pl + 1);
    memcpy(w->path, path, pl + 1);
    w->tmp = rc_xmalloc(pl + 5);
    snprintf(w->tmp, pl + 5, "%s.tmp", path);
    w->expect = n;
    w->f = fopen(w->tmp, "wb");
    if (!w->f) {
        rc_status st = rc_fail("cannot write %s: %s", w->tmp, strerror(errno));
        release(w);
        return st;
    }
    if (fwrite(hdr, 1, hl, w->f) != hl) {
        rc_status st = rc_fail("cannot write %s: %s", path, strerror(errno));
        rc_npy_abort(w);
        return st;
    }
    return RC_OK;
}

rc_status rc_npy_write(rc_npy_writer *w, const void *data, size_t bytes) {
    RC_ASSERT(w->f);
    if (w->written + bytes > w->expect) return rc_fail("%s: more data than the array's shape holds", w->path);
    if (bytes && fwrite(data, 1, bytes, w->f) != bytes)
        return rc_fail("cannot write %s: %s", w->path, strerror(errno ? errno : ENOSPC));
    w->written += bytes;
    return RC_OK;
}

rc_status rc_npy_close(rc_npy_writer *w) {
    RC_ASSERT(w->f);
    rc_status st = RC_OK;
    if (w->written != w->expect)
        st = rc_fail("%s: %llu of %llu data bytes written", w->path, (unsigned long long)w->written,
                     (unsigned long long)w->expect);
    else if (fflush(w->f) != 0 || fsync(fileno(w->f)) != 0)
        st = rc_fail("cannot write %s: %s", w->path, strerror(errno));
    if (fclose(w->f) != 0 && st == RC_OK) st = rc_fail("cannot write %s: %s", w->path, strerror(errno));
    w->f = NULL;
    if (st == RC_OK && rename(w->tmp, w->path) != 0) st = rc_fail("cannot rename %s to %s: %s", w->tmp, w->path, strerror(errno));
    if (st != RC_OK) unlink(w->tmp);
    release(w);
    return st;
}

void rc_npy_abort(rc_npy_writer *w) {
    if (w->f) {
        fclose(w->f);
        unlink(w->tmp);
    }
    release(w);
}
