/* fixture.h — header-only reader for the test fixtures that ref/make_fixtures.py writes (PyTorch twin).
 *
 * File format (little-endian): "RCFX", u32 version (1), u32 record count, then per record:
 *   u32 name length, name bytes (no NUL), u32 dtype (0 float32, 1 int32, 2 raw bytes), u32 ndim,
 *   u32 dims[ndim], then prod(dims) elements (4 bytes each for float32/int32, 1 for raw bytes).
 *
 * Usage:
 *   rc_fixture *fx = rc_fx_load("tests/fixtures/topdown.bin");      NULL (message on stderr) on error
 *   int ndim, dims[RC_FX_MAX_DIMS];
 *   const float *x = rc_fx_f32(fx, "input", &ndim, dims);            NULL (message) if absent/wrong type
 *   const int32_t *y = rc_fx_i32(fx, "labels", NULL, NULL);
 *   const char *cfg = rc_fx_text(fx, "config", &len);                NUL-terminated
 *   long n = rc_fx_numel(fx, "grad/V1.bu.weight");                   -1 (quietly) if absent
 *   rc_fx_free(fx);
 * Every record's data is a separately allocated, suitably aligned, host-endian copy that lives until
 * rc_fx_free. fx->recs[0 .. fx->count-1] lists the records in file order. */
#ifndef RC_FIXTURE_H
#define RC_FIXTURE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RC_FX_MAX_DIMS 8
#define RC_FX_MAX_BYTES (256u << 20) /* larger files are refused */

enum { RC_FX_F32 = 0, RC_FX_I32 = 1, RC_FX_BYTES = 2 };

typedef struct {
    char *name;                 /* NUL-terminated */
    int dtype;                  /* RC_FX_F32, RC_FX_I32 or RC_FX_BYTES */
    int ndim;
    int dims[RC_FX_MAX_DIMS];
    size_t numel;               /* product of dims (1 when ndim = 0) */
    void *data;                 /* numel floats / int32s / bytes (+ a NUL after raw bytes) */
} rc_fx_record;

typedef struct {
    int count;
    rc_fx_record *recs;
    char path[256];
} rc_fixture;

static inline void rc_fx_free(rc_fixture *fx) {
    if (!fx) return;
    if (fx->recs) {
        for (int i = 0; i < fx->count; i++) {
            free(fx->recs[i].name);
            free(fx->recs[i].data);
        }
    }
    free(fx->recs);
    free(fx);
}

/* Reads a little-endian u32 at *off, advancing it; 0 on success, -1 past the end. */
static inline int rc_fx_u32_(const unsigned char *buf, size_t len, size_t *off, uint32_t *out) {
    if (len < 4 || *off > len - 4) return -1;
    const unsigned char *p = buf + *off;
    *out = (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
    *off += 4;
    return 0;
}

static inline int rc_fx_host_is_le_(void) {
    const uint32_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* Reads the whole file; NULL (message) on error. */
static inline unsigned char *rc_fx_slurp_(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "fixture: %s: cannot open\n", path);
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = (unsigned char *)malloc(cap);
    while (buf) {
        if (n == cap) {
            if (cap >= RC_FX_MAX_BYTES) {
                fprintf(stderr, "fixture: %s: larger than %u bytes\n", path, RC_FX_MAX_BYTES);
                free(buf);
                fclose(f);
                return NULL;
            }
            unsigned char *nb = (unsigned char *)realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    if (!buf) {
        fprintf(stderr, "fixture: %s: out of memory\n", path);
        fclose(f);
        return NULL;
    }
    if (ferror(f)) {
        fprintf(stderr, "fixture: %s: read error\n", path);
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    *len = n;
    return buf;
}

/* Loads and validates a fixture file. Returns NULL with a message on stderr on any error
 * (missing file, bad magic or version, truncated or trailing data, bad dtype, duplicate names). */
static inline rc_fixture *rc_fx_load(const char *path) {
    size_t len = 0, off = 0;
    unsigned char *buf = rc_fx_slurp_(path, &len);
    if (!buf) return NULL;
    rc_fixture *fx = (rc_fixture *)calloc(1, sizeof *fx);
    uint32_t version = 0, count = 0;
    const char *why = NULL;
    int named = 0; /* 1 while the current record's name is known (for the message) */
    if (!fx) {
        why = "out of memory";
        goto fail;
    }
    snprintf(fx->path, sizeof fx->path, "%s", path);
    if (len < 12 || memcmp(buf, "RCFX", 4) != 0) {
        why = "not a fixture (bad magic)";
        goto fail;
    }
    off = 4;
    rc_fx_u32_(buf, len, &off, &version);
    rc_fx_u32_(buf, len, &off, &count);
    if (version != 1) {
        why = "unsupported version (want 1)";
        goto fail;
    }
    if (count > (len - off) / 12) { /* every record needs at least 12 bytes */
        why = "record count larger than the file allows";
        goto fail;
    }
    fx->recs = (rc_fx_record *)calloc(count ? count : 1, sizeof *fx->recs);
    if (!fx->recs) {
        why = "out of memory";
        goto fail;
    }
    for (uint32_t i = 0; i < count; i++) {
        rc_fx_record *r = &fx->recs[i];
        uint32_t nlen, dtype, ndim;
        named = 0;
        if (rc_fx_u32_(buf, len, &off, &nlen) || nlen == 0 || nlen > 4096 || nlen > len - off) {
            why = "truncated or bad record name";
            goto fail;
        }
        r->name = (char *)malloc((size_t)nlen + 1);
        if (!r->name) {
            why = "out of memory";
            goto fail;
        }
        fx->count = (int)i + 1; /* from here on rc_fx_free releases this record */
        memcpy(r->name, buf + off, nlen);
        r->name[nlen] = '\0';
        off += nlen;
        named = 1;
        if (strlen(r->name) != nlen) {
            why = "record name holds a NUL byte";
            goto fail;
        }
        if (rc_fx_u32_(buf, len, &off, &dtype) || rc_fx_u32_(buf, len, &off, &ndim)) {
            why = "truncated record header";
            goto fail;
        }
        if (dtype > 2) {
            why = "unknown dtype";
            goto fail;
        }
        if (ndim > RC_FX_MAX_DIMS) {
            why = "too many dims";
            goto fail;
        }
        r->dtype = (int)dtype;
        r->ndim = (int)ndim;
        size_t numel = 1;
        for (uint32_t d = 0; d < ndim; d++) {
            uint32_t v;
            if (rc_fx_u32_(buf, len, &off, &v)) {
                why = "truncated dims";
                goto fail;
            }
            if (v > 0x7fffffffu || (v != 0 && numel > (size_t)RC_FX_MAX_BYTES / v)) {
                why = "dims too large";
                goto fail;
            }
            r->dims[d] = (int)v;
            numel *= v;
        }
        r->numel = numel;
        size_t esize = dtype == RC_FX_BYTES ? 1 : 4;
        size_t bytes = numel * esize;
        if (bytes > len - off) {
            why = "truncated data";
            goto fail;
        }
        r->data = malloc(bytes + 1);
        if (!r->data) {
            why = "out of memory";
            goto fail;
        }
        memcpy(r->data, buf + off, bytes);
        ((unsigned char *)r->data)[bytes] = 0; /* raw bytes read as a C string */
        if (esize == 4 && !rc_fx_host_is_le_()) {
            unsigned char *p = (unsigned char *)r->data;
            for (size_t k = 0; k < bytes; k += 4) {
                unsigned char t0 = p[k], t1 = p[k + 1];
                p[k] = p[k + 3];
                p[k + 1] = p[k + 2];
                p[k + 2] = t1;
                p[k + 3] = t0;
            }
        }
        off += bytes;
        for (uint32_t j = 0; j < i; j++) {
            if (strcmp(fx->recs[j].name, r->name) == 0) {
                why = "duplicate record name";
                goto fail;
            }
        }
    }
    named = 0;
    if (off != len) {
        why = "trailing bytes after the last record";
        goto fail;
    }
    free(buf);
    return fx;
fail:
    if (named)
        fprintf(stderr, "fixture: %s: %s (record %d '%s')\n", path, why, fx->count,
                fx->recs[fx->count - 1].name);
    else if (fx && fx->count > 0 && off != len)
        fprintf(stderr, "fixture: %s: %s (after record %d '%s')\n", path, why, fx->count,
                fx->recs[fx->count - 1].name);
    else
        fprintf(stderr, "fixture: %s: %s\n", path, why);
    free(buf);
    rc_fx_free(fx);
    return NULL;
}

/* The record of that name, or NULL (quietly) when there is none. */
static inline const rc_fx_record *rc_fx_find(const rc_fixture *fx, const char *name) {
    if (!fx || !name) return NULL;
    for (int i = 0; i < fx->count; i++)
        if (strcmp(fx->recs[i].name, name) == 0) return &fx->recs[i];
    return NULL;
}

/* Number of elements of a record, or -1 (quietly) when absent. */
static inline long rc_fx_numel(const rc_fixture *fx, const char *name) {
    const rc_fx_record *r = rc_fx_find(fx, name);
    return r ? (long)r->numel : -1;
}

/* Number of records whose name starts with prefix (e.g. "logits/" gives R). */
static inline int rc_fx_count_prefix(const rc_fixture *fx, const char *prefix) {
    int n = 0;
    size_t pl = prefix ? strlen(prefix) : 0;
    if (!fx) return 0;
    for (int i = 0; i < fx->count; i++)
        if (strncmp(fx->recs[i].name, prefix ? prefix : "", pl) == 0) n++;
    return n;
}

/* Looks a record up and checks its dtype; NULL with a message on stderr otherwise. */
static inline const rc_fx_record *rc_fx_get_(const rc_fixture *fx, const char *name, int dtype) {
    static const char *const names[] = {"float32", "int32", "bytes"};
    if (!fx || !name) {
        fprintf(stderr, "fixture: lookup of '%s' in no fixture\n", name ? name : "(null)");
        return NULL;
    }
    const rc_fx_record *r = rc_fx_find(fx, name);
    if (!r) {
        fprintf(stderr, "fixture: %s: no record '%s'\n", fx->path, name);
        return NULL;
    }
    if (r->dtype != dtype) {
        fprintf(stderr, "fixture: %s: record '%s' is %s, not %s\n", fx->path, name, names[r->dtype],
                names[dtype]);
        return NULL;
    }
    return r;
}

static inline void rc_fx_shape_(const rc_fx_record *r, int *ndim, int *dims) {
    if (ndim) *ndim = r->ndim;
    if (dims)
        for (int d = 0; d < r->ndim; d++) dims[d] = r->dims[d];
}

/* float32 data of a record; ndim and dims (room for RC_FX_MAX_DIMS) may be NULL. NULL (message) if the
 * record is absent or not float32. */
static inline const float *rc_fx_f32(const rc_fixture *fx, const char *name, int *ndim, int *dims) {
    const rc_fx_record *r = rc_fx_get_(fx, name, RC_FX_F32);
    if (!r) return NULL;
    rc_fx_shape_(r, ndim, dims);
    return (const float *)r->data;
}

/* int32 data of a record, as rc_fx_f32. */
static inline const int32_t *rc_fx_i32(const rc_fixture *fx, const char *name, int *ndim, int *dims) {
    const rc_fx_record *r = rc_fx_get_(fx, name, RC_FX_I32);
    if (!r) return NULL;
    rc_fx_shape_(r, ndim, dims);
    return (const int32_t *)r->data;
}

/* Raw-bytes record as a NUL-terminated string; len (may be NULL) gets the byte count. */
static inline const char *rc_fx_text(const rc_fixture *fx, const char *name, size_t *len) {
    const rc_fx_record *r = rc_fx_get_(fx, name, RC_FX_BYTES);
    if (!r) return NULL;
    if (len) *len = r->numel;
    return (const char *)r->data;
}

/* Copies a float32 record of exactly n elements into out; 0 on success, -1 (message) otherwise. */
static inline int rc_fx_copy_f32(const rc_fixture *fx, const char *name, float *out, size_t n) {
    const rc_fx_record *r = rc_fx_get_(fx, name, RC_FX_F32);
    if (!r) return -1;
    if (r->numel != n) {
        fprintf(stderr, "fixture: %s: record '%s' has %zu elements, expected %zu\n", fx->path, name, r->numel,
                n);
        return -1;
    }
    memcpy(out, r->data, n * sizeof(float));
    return 0;
}

#endif
