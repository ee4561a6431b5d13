/* export_util.h — what the safetensors and npz writers share (internal to src/export): an atomic output
 * file (PATH.tmp, fsync, rename, fsync of the directory), little-endian float32 encoding, the checks on
 * the graph's params, and the metadata every export carries (docs/EXPORT.md lists the keys). */
#ifndef RC_EXPORT_UTIL_H
#define RC_EXPORT_UTIL_H

#include <stdint.h>
#include <stdio.h>

#include "export.h"

/* ---- atomic output file ---- */
typedef struct {
    FILE *f;
    char *path, *tmp;
    uint64_t written; /* bytes so far */
} rc_export_file;

/* Create PATH.tmp (nothing is left behind on failure). */
rc_status rc_export_file_open(rc_export_file *o, const char *path);
/* Append bytes; a short write (full disk, I/O error) fails naming PATH and the cause. */
rc_status rc_export_file_write(rc_export_file *o, const void *data, size_t bytes);
/* Append n floats as little-endian IEEE-754 binary32, whatever the host's byte order. */
rc_status rc_export_file_write_f32le(rc_export_file *o, const float *x, size_t n);
/* Flush, fsync, close and rename onto PATH, then fsync the directory. On failure the tmp file is removed
 * and PATH is untouched. The file is released either way. */
rc_status rc_export_file_commit(rc_export_file *o);
/* Give up: close and remove the tmp file (safe on a zeroed or released file). */
void rc_export_file_abort(rc_export_file *o);

/* Encode n floats as little-endian bytes into out (4 * n bytes). */
void rc_export_f32le(unsigned char *out, const float *x, size_t n);

/* ---- tensors ---- */
/* Check every param of g (any kind): planned (values present), 1..4 dims with positive sizes whose
 * product is its numel, names non-empty and free of '/', '\\', '"' and control characters (the graph
 * makes them unique), total size within 2^62 bytes. The message names the param. */
rc_status rc_export_check_params(const rc_graph *g);

/* ---- metadata ---- */
#define RC_EXPORT_MAX_META 16
typedef struct {
    const char *key;
    char *value; /* owned, NUL-terminated UTF-8 (as given: bytes are passed through) */
} rc_export_kv;
typedef struct {
    rc_export_kv kv[RC_EXPORT_MAX_META];
    int n;
} rc_export_meta;

/* The metadata of an export: format, recur_version, config, data, input, input_shape, mean, std, names. */
void rc_export_meta_build(const rc_graph *g, const rc_export_info *info, rc_export_meta *meta);
void rc_export_meta_free(rc_export_meta *meta);

/* Decode UTF-8 text into code points (invalid bytes and overlong or surrogate forms become U+FFFD).
 * out (may be NULL to count) gets at most cap code points; returns the number of code points. */
size_t rc_export_utf8_decode(const char *s, uint32_t *out, size_t cap);

#endif
