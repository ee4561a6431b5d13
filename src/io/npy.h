/* npy.h — NumPy .npy files: the header of a C-order little-endian array (format version 1.0), and a
 * streaming writer that writes the header and then the data in order, into "PATH.tmp", renamed onto
 * PATH only when every promised byte was written (a kill or a full disk leaves PATH as it was); and a
 * checked header parser (versions 1.0, 2.0, 3.0) with a streaming reader (io/npyset.c: datasets). */
#ifndef RC_IO_NPY_H
#define RC_IO_NPY_H

#include <stdint.h>
#include <stdio.h>

#include "base/common.h"
#include "files.h"

#define RC_NPY_MAX_NDIM 8

/* Write the .npy header (magic, version 1.0, header length, the dict padded with spaces to a multiple of
 * 64 bytes, ending in '\n') for an array of dtype descr ("<f4", "<i4", "|u1", "<i8", ...) and shape
 * (ndim 0..RC_NPY_MAX_NDIM) into buf. Returns the header's length, or 0 when cap is too small. */
size_t rc_npy_header(char *buf, size_t cap, const char *descr, int ndim, const int64_t *shape);
/* Bytes per element of descr (1, 2, 4 or 8), 0 if unknown. */
int rc_npy_itemsize(const char *descr);

typedef struct {
    rc_atomic_file af;
    uint64_t expect, written; /* data bytes promised by the shape, written so far */
} rc_npy_writer;

/* Start PATH.tmp with the header; on failure nothing is left behind. */
rc_status rc_npy_open(rc_npy_writer *w, const char *path, const char *descr, int ndim, const int64_t *shape);
/* Append bytes (the next elements in C order); fails (naming the file) on a short write or past the end. */
rc_status rc_npy_write(rc_npy_writer *w, const void *data, size_t bytes);
/* Check that all data was written, flush, fsync and rename onto PATH. On failure the tmp file is removed
 * and PATH is untouched. The writer is released either way. */
rc_status rc_npy_close(rc_npy_writer *w);
/* Give up: remove the tmp file and release the writer (safe on a zeroed or closed writer). */
void rc_npy_abort(rc_npy_writer *w);


/* ---- reading ---- */

#define RC_NPY_MAX_HEADER 65536 /* bytes of header dict accepted (numpy writes about 128) */

typedef struct {
    char descr[16];    /* as in the file, e.g. "<f4", "|u1", ">i8" */
    char kind;         /* 'f' float, 'i' signed integer, 'u' unsigned integer, 'b' bool */
    int itemsize;      /* 1, 2, 4 or 8 */
    int swap;          /* the data's byte order is not this machine's: rc_npy_read swaps each element */
    int ndim;          /* 0 .. RC_NPY_MAX_NDIM */
    int64_t shape[RC_NPY_MAX_NDIM];
    uint64_t count;    /* elements: the product of shape (1 for a 0-d array) */
    uint64_t data_off; /* byte offset of the data: the header's total length */
} rc_npy_info;

/* Parse the header at the start of a .npy file held in buf[0, n) (n may cover data too): the magic,
 * version 1.0, 2.0 or 3.0, the header length, and the dict {'descr': '<f4', 'fortran_order': False,
 * 'shape': (N, ...)} (keys in any order, each once, no others). Fails with a one-line message naming
 * `name` and the problem for anything else: a short buffer, a structured or non-numeric dtype,
 * fortran_order True (for 2 or more dimensions), a shape whose byte size passes 2^62. */
rc_status rc_npy_parse(const char *name, const uint8_t *buf, size_t n, rc_npy_info *info);

typedef struct {
    FILE *f;
    char *path;
    rc_npy_info info;
    uint64_t done; /* elements read so far */
} rc_npy_reader;

/* Open PATH (a regular file), parse its header and check that the file holds exactly the data the
 * header promises (no less, no more) before anything is read. */
rc_status rc_npy_read_open(rc_npy_reader *r, const char *path);
/* The next n elements, in this machine's byte order, into dst (n * itemsize bytes). */
rc_status rc_npy_read(rc_npy_reader *r, void *dst, uint64_t n);
/* Close (safe on a zeroed or closed reader). */
void rc_npy_read_close(rc_npy_reader *r);

#endif
