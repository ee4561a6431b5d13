/* export_util.h — what the safetensors and npz writers share (internal to src/export): little-endian float32 encoding, the checks on
 * the graph's params, and the metadata every export carries (docs/EXPORT.md lists the keys). */
#ifndef RC_EXPORT_UTIL_H
#define RC_EXPORT_UTIL_H

#include <stdint.h>
#include <stdio.h>

#include "export.h"
#include "io/files.h"

/* ---- little-endian floats ---- */
/* Append n floats to o as little-endian IEEE-754 binary32, whatever the host's byte order. */
rc_status rc_export_file_write_f32le(rc_atomic_file *o, const float *x, size_t n);
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

#endif
