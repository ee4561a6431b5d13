/* files.c — see files.h. */
#define _POSIX_C_SOURCE 200809L
#include "files.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void rc_sb_printf(rc_strbuf *s, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = s->cap - s->len;
        int n = vsnprintf(s->buf ? s->buf + s->len : NULL, room, fmt, ap);
        va_end(ap);
        RC_ASSERT(n >= 0);
        if ((size_t)n < room) {
            s->len += (size_t)n;
            return;
        }
        s->cap = 2 * s->cap + (size_t)n + 256;
        s->buf = rc_xrealloc(s->buf, s->cap);
    }
}

rc_status rc_write_file_atomic(const char *path, const char *text, size_t len) {
    size_t plen = strlen(path);
    char *tmp = rc_xmalloc(plen + 8);
    snprintf(tmp, plen + 8, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        rc_status st = rc_fail("cannot write %s: %s", tmp, strerror(errno));
        free(tmp);
        return st;
    }
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, text + done, len - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            rc_status st = rc_fail("cannot write %s: %s", path, strerror(w < 0 ? e : ENOSPC));
            free(tmp);
            return st;
        }
        done += (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        int e = errno;
        unlink(tmp);
        rc_status st = rc_fail("cannot write %s: %s", path, strerror(e));
        free(tmp);
        return st;
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        rc_status st = rc_fail("cannot rename %s to %s: %s", tmp, path, strerror(e));
        free(tmp);
        return st;
    }
    free(tmp);
    /* make the rename durable */
    char *dir = rc_xmalloc(plen + 2);
    snprintf(dir, plen + 2, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *(slash == dir ? slash + 1 : slash) = 0;
    else
        snprintf(dir, plen + 2, ".");
    int dfd = open(dir, O_RDONLY);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    free(dir);
    return RC_OK;
}

rc_status rc_mkdirs(const char *path) {
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) return rc_fail("path too long: %s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) return rc_fail("cannot create %s: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) return rc_fail("cannot create %s: %s", buf, strerror(errno));
    struct stat sb;
    if (stat(buf, &sb) != 0 || !S_ISDIR(sb.st_mode)) return rc_fail("%s is not a directory", buf);
    return RC_OK;
}

char *rc_read_text_file(const char *path, size_t max_bytes, size_t *len_out) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = 2 * cap + 8192;
            buf = rc_xrealloc(buf, cap);
        }
        size_t r = fread(buf + len, 1, 4096, f);
        len += r;
        if (len > max_bytes) {
            free(buf);
            fclose(f);
            return NULL;
        }
        if (r < 4096) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return NULL;
    }
    buf[len] = 0;
    if (len_out) *len_out = len;
    return buf;
}

/* ---- streaming atomic file ---- */

static void release(rc_atomic_file *o) {
    free(o->path);
    free(o->tmp);
    memset(o, 0, sizeof *o);
}

rc_status rc_atomic_open(rc_atomic_file *o, const char *path) {
    memset(o, 0, sizeof *o);
    size_t pl = strlen(path);
    if (pl == 0) return rc_fail("--out: empty file name");
    o->path = rc_xmalloc(pl + 1);
    memcpy(o->path, path, pl + 1);
    o->tmp = rc_xmalloc(pl + 5);
    memcpy(o->tmp, path, pl);
    memcpy(o->tmp + pl, ".tmp", 5);
    o->f = fopen(o->tmp, "wb");
    if (!o->f) {
        rc_status st = rc_fail("cannot write %s: cannot create %s: %s", path, o->tmp, strerror(errno));
        release(o);
        return st;
    }
    return RC_OK;
}

rc_status rc_atomic_write(rc_atomic_file *o, const void *data, size_t bytes) {
    RC_ASSERT(o->f);
    if (bytes == 0) return RC_OK;
    errno = 0;
    if (fwrite(data, 1, bytes, o->f) != bytes)
        return rc_fail("cannot write %s: %s", o->path, strerror(errno ? errno : EIO));
    o->written += bytes;
    return RC_OK;
}

static void sync_dir_of(const char *path) {
    size_t pl = strlen(path);
    char *dir = rc_xmalloc(pl + 2);
    memcpy(dir, path, pl + 1);
    char *slash = strrchr(dir, '/');
    if (slash)
        *(slash == dir ? slash + 1 : slash) = '\0';
    else
        memcpy(dir, ".", 2);
    int fd = open(dir, O_RDONLY);
    if (fd >= 0) {
        fsync(fd); /* best effort: some file systems refuse fsync on a directory */
        close(fd);
    }
    free(dir);
}

rc_status rc_atomic_commit(rc_atomic_file *o) {
    RC_ASSERT(o->f);
    rc_status st = RC_OK;
    errno = 0;
    if (fflush(o->f) != 0 || fsync(fileno(o->f)) != 0)
        st = rc_fail("cannot write %s: %s", o->path, strerror(errno ? errno : EIO));
    errno = 0;
    if (fclose(o->f) != 0 && st == RC_OK) st = rc_fail("cannot write %s: %s", o->path, strerror(errno ? errno : EIO));
    o->f = NULL;
    if (st == RC_OK && rename(o->tmp, o->path) != 0)
        st = rc_fail("cannot write %s: cannot rename %s onto it: %s", o->path, o->tmp, strerror(errno));
    if (st != RC_OK)
        unlink(o->tmp);
    else
        sync_dir_of(o->path);
    release(o);
    return st;
}

void rc_atomic_abort(rc_atomic_file *o) {
    if (o->f) {
        fclose(o->f);
        unlink(o->tmp);
    }
    release(o);
}

