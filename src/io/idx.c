/* idx.c — the IDX reader behind "fashion-mnist", "mnist:DIR" and "idx:DIR": unsigned-byte label
 * (magic 0x00000801) and image (0x00000803) files, gzip or plain, read through zlib. Every header
 * is checked against the RC_DATA_MAX_* limits before anything is allocated, and buffers only grow
 * as data actually arrives, so a lying header on a short file never causes a large allocation. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "io/dataset.h"

#define IDX_PATH_MAX 4096

typedef struct {
    gzFile f;
    char path[IDX_PATH_MAX];
    uint64_t off; /* bytes consumed so far (uncompressed offset) */
} idx_file;

static const char *idx_offset_note(const idx_file *r) {
    return gzdirect(r->f) ? "" : " (uncompressed)";
}

/* Pick DIR/base.gz if it exists, else DIR/base; open it with gzopen (which reads plain files too).
 */
static rc_status idx_open(idx_file *r, const char *dir, const char *base) {
    memset(r, 0, sizeof *r);
    char gz[IDX_PATH_MAX];
    int n1 = snprintf(gz, sizeof gz, "%s/%s.gz", dir, base);
    int n2 = snprintf(r->path, sizeof r->path, "%s/%s", dir, base);
    if (n1 < 0 || n2 < 0 || (size_t)n1 >= sizeof gz || (size_t)n2 >= sizeof r->path)
        return rc_fail("dataset directory path is too long (over %d bytes): %.200s...",
                       IDX_PATH_MAX, dir);
    struct stat st;
    if (stat(gz, &st) == 0) {
        memcpy(r->path, gz, (size_t)n1 + 1);
    } else if (stat(r->path, &st) != 0) {
        return rc_fail("cannot find %s or %s: %s", gz, r->path, strerror(errno));
    }
    if (!S_ISREG(st.st_mode))
        return rc_fail("%s: not a regular file", r->path);
    errno = 0;
    r->f = gzopen(r->path, "rb");
    if (!r->f)
        return rc_fail("cannot open %s: %s", r->path, errno ? strerror(errno) : "out of memory");
    gzbuffer(r->f, 1u << 17);
    return RC_OK;
}

static void idx_close(idx_file *r) {
    if (r->f)
        gzclose(r->f);
    r->f = NULL;
}

/* Read up to want bytes into dst; *got is how many arrived (short only at end of data). */
static rc_status idx_read(idx_file *r, uint8_t *dst, size_t want, size_t *got) {
    *got = 0;
    while (*got < want) {
        size_t chunk = RC_MIN(want - *got, (size_t)1 << 30);
        int k = gzread(r->f, dst + *got, (unsigned)chunk);
        if (k < 0) {
            int errnum = 0;
            const char *msg = gzerror(r->f, &errnum);
            if (errnum == Z_BUF_ERROR)
                break; /* truncated gzip stream: reported as a short read */
            size_t pl = strlen(r->path); /* zlib's message may repeat the path */
            if (errnum != Z_ERRNO && msg && !strncmp(msg, r->path, pl) && !strncmp(msg + pl, ": ", 2))
                msg += pl + 2;
            return rc_fail("%s: read error near byte offset %llu%s: %s", r->path,
                           (unsigned long long)(r->off + *got), idx_offset_note(r),
                           errnum == Z_ERRNO ? strerror(errno) : msg);
        }
        if (k == 0)
            break;
        *got += (size_t)k;
    }
    r->off += *got;
    return RC_OK;
}

static rc_status idx_truncated(const idx_file *r, const char *what, uint64_t start, uint64_t need,
                               uint64_t found_end) {
    return rc_fail("%s: truncated: %s should fill bytes %llu..%llu, but the data ends at byte "
                   "offset %llu%s",
                   r->path, what, (unsigned long long)start, (unsigned long long)(start + need),
                   (unsigned long long)found_end, idx_offset_note(r));
}

static uint32_t be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

/* Header: magic (0x0000 08 ndims) then ndims big-endian uint32 sizes, each checked > 0. */
static rc_status idx_header(idx_file *r, int ndims, uint32_t *dims) {
    uint8_t hdr[4 + 4 * 3];
    size_t need = 4 + 4 * (size_t)ndims, got;
    const uint32_t magic_want = 0x00000800u | (uint32_t)ndims;
    const char *kind = ndims == 1 ? "labels" : "images";
    if (idx_read(r, hdr, 4, &got) != RC_OK)
        return RC_ERR;
    if (got < 4)
        return idx_truncated(r, "the 4-byte IDX magic", 0, 4, got);
    uint32_t magic = be32(hdr);
    if (magic != magic_want) {
        const char *hint = "";
        if (magic == 0x00000801u)
            hint = " (this looks like an IDX labels file)";
        if (magic == 0x00000803u)
            hint = " (this looks like an IDX images file)";
        if ((magic >> 8) == 0x8b1fu || (magic >> 16) == 0x1f8bu)
            hint = " (gzip data inside gzip?)";
        return rc_fail("%s: bad IDX magic 0x%08x at byte offset 0, expected 0x%08x (unsigned-byte "
                       "%s, %d dimension%s)%s",
                       r->path, magic, magic_want, kind, ndims, ndims == 1 ? "" : "s", hint);
    }
    if (idx_read(r, hdr + 4, need - 4, &got) != RC_OK)
        return RC_ERR;
    if (got < need - 4)
        return idx_truncated(r, "the IDX header", 0, need, 4 + got);
    for (int k = 0; k < ndims; k++) {
        dims[k] = be32(hdr + 4 + 4 * k);
        if (dims[k] == 0)
            return rc_fail(
                "%s: IDX dimension %d (byte offset %d) is 0; every dimension must be > 0", r->path,
                k, 4 + 4 * k);
    }
    return RC_OK;
}

/* Read exactly `need` bytes of payload into a buffer that grows as data arrives, then insist on
 * end of file. On success *out is malloc'd and holds need bytes. */
static rc_status idx_body(idx_file *r, const char *what, uint64_t need, uint8_t **out) {
    *out = NULL;
    const uint64_t start = r->off;
    size_t cap = (size_t)RC_MIN(need, (uint64_t)1 << 22), have = 0;
    uint8_t *buf = malloc(cap);
    if (!buf)
        return rc_fail("%s: out of memory for %s", r->path, what);
    for (;;) {
        size_t got;
        if (idx_read(r, buf + have, cap - have, &got) != RC_OK) {
            free(buf);
            return RC_ERR;
        }
        have += got;
        if (have < cap)
            break; /* end of data */
        if ((uint64_t)cap == need)
            break;
        size_t ncap = (size_t)RC_MIN(need, (uint64_t)cap * 2);
        uint8_t *nb = realloc(buf, ncap);
        if (!nb) {
            free(buf);
            return rc_fail("%s: out of memory for %s (%llu bytes)", r->path, what,
                           (unsigned long long)need);
        }
        buf = nb;
        cap = ncap;
    }
    if ((uint64_t)have < need) {
        free(buf);
        return idx_truncated(r, what, start, need, start + have);
    }
    uint8_t extra[16];
    size_t got;
    if (idx_read(r, extra, sizeof extra, &got) != RC_OK) {
        free(buf);
        return RC_ERR;
    }
    if (got) {
        free(buf);
        return rc_fail("%s: unexpected data after byte offset %llu%s, where %s should end the file",
                       r->path, (unsigned long long)(start + need), idx_offset_note(r), what);
    }
    *out = buf;
    return RC_OK;
}

/* A whole labels file: *n labels as bytes (malloc'd in *lab); path gets the file name used. */
static rc_status idx_load_labels(const char *dir, const char *base, char *path, uint32_t *n,
                                 uint8_t **lab) {
    idx_file r;
    *lab = NULL;
    rc_status st0 = idx_open(&r, dir, base);
    memcpy(path, r.path, IDX_PATH_MAX);
    if (st0 != RC_OK)
        return RC_ERR;
    rc_status st = idx_header(&r, 1, n);
    if (st == RC_OK && *n > RC_DATA_MAX_ITEMS)
        st = rc_fail("%s: header says %u labels, over the limit of %d (RC_DATA_MAX_ITEMS)", r.path,
                     *n, RC_DATA_MAX_ITEMS);
    if (st == RC_OK)
        st = idx_body(&r, "the label bytes", *n, lab);
    idx_close(&r);
    return st;
}

static rc_status idx_check_labels(const char *path, const uint8_t *lab, uint32_t n, int classes,
                                  const char *why) {
    for (uint32_t i = 0; i < n; i++)
        if (lab[i] >= classes)
            return rc_fail("%s: label %d at index %u (byte offset %u) is out of range 0..%d%s",
                           path, lab[i], i, 8 + i, classes - 1, why);
    return RC_OK;
}

rc_status rc_dataset_load_idx(const char *dir, const char *kind, int train_split, rc_dataset *out) {
    RC_ASSERT(dir && kind && out);
    memset(out, 0, sizeof *out);
    const int fashion = !strcmp(kind, "fashion-mnist");
    const int generic = !strcmp(kind, "idx");
    if (!fashion && !generic && strcmp(kind, "mnist"))
        return rc_fail("IDX dataset kind '%s' is not one of fashion-mnist, mnist, idx", kind);
    const char *img_base = train_split ? "train-images-idx3-ubyte" : "t10k-images-idx3-ubyte";
    const char *lab_base = train_split ? "train-labels-idx1-ubyte" : "t10k-labels-idx1-ubyte";

    uint8_t *lab = NULL, *pix = NULL;
    int *labels = NULL;
    uint32_t nlab = 0, dims[3] = {0, 0, 0};
    idx_file r;
    memset(&r, 0, sizeof r);
    char lab_path[IDX_PATH_MAX];
    rc_status st = idx_load_labels(dir, lab_base, lab_path, &nlab, &lab);
    if (st != RC_OK)
        goto fail;

    /* Classes: 10 for (Fashion-)MNIST; for generic IDX, 1 + the largest training label, so the
     * train and test splits agree. */
    int classes = 10;
    if (generic) {
        uint8_t *tl = lab;
        uint32_t ntl = nlab;
        if (!train_split) {
            char train_path[IDX_PATH_MAX];
            st = idx_load_labels(dir, "train-labels-idx1-ubyte", train_path, &ntl, &tl);
            if (st != RC_OK)
                goto fail;
        }
        int mx = 0;
        for (uint32_t i = 0; i < ntl; i++)
            mx = RC_MAX(mx, (int)tl[i]);
        if (tl != lab)
            free(tl);
        classes = mx + 1;
        st = idx_check_labels(lab_path, lab, nlab, classes,
                              " (the classes are 0..max of the training labels)");
    } else {
        st = idx_check_labels(lab_path, lab, nlab, classes, " (10 classes)");
    }
    if (st != RC_OK)
        goto fail;

    st = idx_open(&r, dir, img_base);
    if (st != RC_OK)
        goto fail;
    st = idx_header(&r, 3, dims);
    if (st != RC_OK)
        goto fail;
    if (dims[0] > RC_DATA_MAX_ITEMS) {
        st = rc_fail("%s: header says %u images, over the limit of %d (RC_DATA_MAX_ITEMS)", r.path,
                     dims[0], RC_DATA_MAX_ITEMS);
        goto fail;
    }
    if (dims[1] > RC_DATA_MAX_SIDE || dims[2] > RC_DATA_MAX_SIDE) {
        st = rc_fail("%s: header says %ux%u images, over the side limit of %d (RC_DATA_MAX_SIDE)",
                     r.path, dims[1], dims[2], RC_DATA_MAX_SIDE);
        goto fail;
    }
    const uint64_t nbytes = (uint64_t)dims[0] * dims[1] * dims[2];
    if (nbytes > RC_DATA_MAX_BYTES) {
        st = rc_fail("%s: header says %u images of %ux%u = %llu bytes, over the limit of %llu "
                     "(RC_DATA_MAX_BYTES)",
                     r.path, dims[0], dims[1], dims[2], (unsigned long long)nbytes,
                     (unsigned long long)RC_DATA_MAX_BYTES);
        goto fail;
    }
    if (dims[0] != nlab) {
        st = rc_fail("%s has %u images but %s has %u labels; the counts must match", r.path,
                     dims[0], lab_path, nlab);
        goto fail;
    }
    st = idx_body(&r, "the pixel bytes", nbytes, &pix);
    if (st != RC_OK)
        goto fail;
    idx_close(&r);

    labels = malloc((size_t)nlab * sizeof(int));
    if (!labels) {
        st = rc_fail("%s: out of memory for %u labels", lab_path, nlab);
        goto fail;
    }
    for (uint32_t i = 0; i < nlab; i++)
        labels[i] = lab[i];
    free(lab);

    snprintf(out->name, sizeof out->name, "%s", kind);
    snprintf(out->spec, sizeof out->spec, "%s:%s", kind, dir);
    out->train = train_split ? 1 : 0;
    out->n = (int)dims[0];
    out->c = 1;
    out->h = (int)dims[1];
    out->w = (int)dims[2];
    out->classes = classes;
    out->pixels = pix;
    out->labels = labels;
    if (fashion) {
        out->coarse_of = malloc(10 * sizeof(int));
        if (!out->coarse_of) {
            rc_dataset_free(out);
            return rc_fail("out of memory");
        }
        memcpy(out->coarse_of, rc_fashion_mnist_coarse_of, 10 * sizeof(int));
        out->ncoarse = 4;
        out->class_names = rc_fashion_mnist_classes;
        out->coarse_names = rc_fashion_mnist_groups;
    }
    rc_dataset_compute_stats(out);
    return RC_OK;

fail:
    idx_close(&r);
    free(lab);
    free(pix);
    free(labels);
    memset(out, 0, sizeof *out);
    return st;
}
