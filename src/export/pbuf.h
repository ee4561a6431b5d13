/* pbuf.h — a minimal protobuf wire-format writer (no library): varint, fixed32 and length-delimited
 * fields into one growable buffer, with nested messages opened and closed in place. Enough to write
 * ONNX's ModelProto (onnx.c); it knows nothing about any schema. */
#ifndef RC_EXPORT_PBUF_H
#define RC_EXPORT_PBUF_H

#include <stddef.h>
#include <stdint.h>

#define RC_PB_MAX_DEPTH 16
/* protobuf's own limit: a message (and every length-delimited field) must stay below 2 GiB */
#define RC_PB_MAX_BYTES ((size_t)0x7fffffff)

typedef struct {
    uint8_t *b;
    size_t n, cap;
    size_t open[RC_PB_MAX_DEPTH]; /* offset where each open nested message's payload starts */
    int depth;
    int too_big; /* some length went over RC_PB_MAX_BYTES: the buffer is not a valid message */
} rc_pb;

/* Fields; field numbers >= 1. int64 values are written as protobuf does (two's complement varint). */
void rc_pb_int(rc_pb *pb, int field, int64_t v);                      /* wire type 0 */
void rc_pb_float(rc_pb *pb, int field, float v);                      /* wire type 5, little-endian */
void rc_pb_bytes(rc_pb *pb, int field, const void *data, size_t len); /* wire type 2 */
void rc_pb_string(rc_pb *pb, int field, const char *s);               /* wire type 2, without the NUL */
/* Length-delimited field holding n floats / int64s as little-endian bytes (TensorProto.raw_data). */
void rc_pb_raw_floats(rc_pb *pb, int field, const float *v, size_t n);
void rc_pb_raw_int64s(rc_pb *pb, int field, const int64_t *v, size_t n);
/* Nested message: fields written between begin and end go inside it. */
void rc_pb_begin(rc_pb *pb, int field);
void rc_pb_end(rc_pb *pb);
void rc_pb_free(rc_pb *pb);

#endif
