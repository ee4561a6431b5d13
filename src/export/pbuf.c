/* pbuf.c — the protobuf wire-format writer of pbuf.h. A nested message is written in place: its
 * payload first, then the payload is moved up by the size of its length varint, which goes in front. */
#include "pbuf.h"

#include <string.h>

#include "base/common.h"

static void reserve(rc_pb *pb, size_t more) {
    if (pb->n + more <= pb->cap) return;
    size_t cap = pb->cap ? pb->cap : 4096;
    while (cap < pb->n + more) cap *= 2;
    pb->b = rc_xrealloc(pb->b, cap);
    pb->cap = cap;
}

static size_t varint_len(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static size_t put_varint(uint8_t *p, uint64_t v) {
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

static void varint(rc_pb *pb, uint64_t v) {
    reserve(pb, 10);
    pb->n += put_varint(pb->b + pb->n, v);
}

static void tag(rc_pb *pb, int field, int wire) {
    RC_ASSERT(field >= 1);
    varint(pb, ((uint64_t)field << 3) | (uint64_t)wire);
}

static void length(rc_pb *pb, size_t len) {
    if (len > RC_PB_MAX_BYTES) pb->too_big = 1;
    varint(pb, len);
}

void rc_pb_int(rc_pb *pb, int field, int64_t v) {
    tag(pb, field, 0);
    varint(pb, (uint64_t)v);
}

static void put_le32(uint8_t *p, uint32_t u) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(u >> (8 * i));
}

void rc_pb_float(rc_pb *pb, int field, float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    tag(pb, field, 5);
    reserve(pb, 4);
    put_le32(pb->b + pb->n, u);
    pb->n += 4;
}

void rc_pb_bytes(rc_pb *pb, int field, const void *data, size_t len) {
    tag(pb, field, 2);
    length(pb, len);
    reserve(pb, len);
    if (len) memcpy(pb->b + pb->n, data, len);
    pb->n += len;
}

void rc_pb_string(rc_pb *pb, int field, const char *s) { rc_pb_bytes(pb, field, s, strlen(s)); }

void rc_pb_raw_floats(rc_pb *pb, int field, const float *v, size_t n) {
    tag(pb, field, 2);
    length(pb, 4 * n);
    reserve(pb, 4 * n);
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        put_le32(pb->b + pb->n + 4 * i, u);
    }
    pb->n += 4 * n;
}

void rc_pb_raw_int64s(rc_pb *pb, int field, const int64_t *v, size_t n) {
    tag(pb, field, 2);
    length(pb, 8 * n);
    reserve(pb, 8 * n);
    for (size_t i = 0; i < n; i++) {
        uint64_t u = (uint64_t)v[i];
        for (int j = 0; j < 8; j++) pb->b[pb->n + 8 * i + (size_t)j] = (uint8_t)(u >> (8 * j));
    }
    pb->n += 8 * n;
}

void rc_pb_begin(rc_pb *pb, int field) {
    RC_ASSERT(pb->depth < RC_PB_MAX_DEPTH);
    tag(pb, field, 2);
    pb->open[pb->depth++] = pb->n;
}

void rc_pb_end(rc_pb *pb) {
    RC_ASSERT(pb->depth > 0);
    size_t start = pb->open[--pb->depth], len = pb->n - start;
    if (len > RC_PB_MAX_BYTES) pb->too_big = 1;
    size_t k = varint_len(len);
    reserve(pb, k);
    memmove(pb->b + start + k, pb->b + start, len);
    put_varint(pb->b + start, len);
    pb->n += k;
}

void rc_pb_free(rc_pb *pb) {
    free(pb->b);
    memset(pb, 0, sizeof *pb);
}
