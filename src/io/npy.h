/* npy.h — NumPy .npy files: the header of a C-order little-endian array (format version 1.0), and a
 * streaming writer that writes the header and then the data in order, into "PATH.tmp", renamed onto
 * PATH only when every promised byte was written (a kill or a full disk leaves PATH as it was). */
#ifndef RC_IO_NPY_H
#define RC_IO_NPY_H

#include <stdint.h>
#include <stdio.h>

#include "core/common.h"

#define RC_NPY_MAX_NDIM 8

/* Write the .npy header (magic, version 1.0, header length, the dict padded with spaces to a multiple of
 * 64 bytes, ending in '\n') for an array of dtype descr ("<f4", "<i4", "|u1", "<i8", ...) and shape
 * (ndim 0..RC_NPY_MAX_NDIM) into buf. Returns the header's length, or 0 when cap is too small. */
size_t rc_npy_header(char *buf, size_t cap, const char *descr, int ndim, const int64_t *shape);
/* Bytes per element of descr (1, 2, 4 or 8), 0 if unknown. */
int rc_npy_itemsize(const char *descr);

typedef struct {
    FILE *f;
    char *path, *tmp;
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

#endif
