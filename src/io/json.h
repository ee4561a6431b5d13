/* json.h — text encodings shared by the JSON writers (the CLI's --json output, the safetensors header) and
 * the exports: strict UTF-8 decoding and JSON string literals that always parse. */
#ifndef RC_IO_JSON_H
#define RC_IO_JSON_H

#include <stdint.h>
#include <stdio.h>

#include "files.h"

/* Decode UTF-8 text into code points: a byte that does not start a valid sequence (a stray continuation,
 * a truncated sequence's lead byte, an overlong or surrogate form, a value past U+10FFFF) becomes U+FFFD
 * and decoding goes on at the next byte. out (may be NULL to count) gets at most cap code points; returns
 * the number of code points. */
size_t rc_utf8_decode(const char *s, uint32_t *out, size_t cap);

/* s as a JSON string literal: quotes and backslashes escaped, \n \r \t and the other control characters
 * (and DEL) escaped, the text re-encoded as valid UTF-8 (invalid bytes as U+FFFD, as rc_utf8_decode):
 * appended to sb, or written to f. */
void rc_json_string(rc_strbuf *sb, const char *s);
void rc_json_print(FILE *f, const char *s);

#endif
