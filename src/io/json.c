/* json.c — see json.h. */
#include "json.h"

#include <stdlib.h>

/* The code point at *s (U+FFFD for an invalid byte); *s moves past what was read (one byte when invalid:
 * the bytes after a bad lead byte are read again). */
static uint32_t next_cp(const unsigned char **sp) {
    const unsigned char *s = *sp;
    unsigned char b = s[0];
    *sp = s + 1;
    if (b < 0x80) return b;
    int need = (b & 0xe0) == 0xc0 ? 2 : (b & 0xf0) == 0xe0 ? 3 : (b & 0xf8) == 0xf0 ? 4 : 0;
    if (!need) return 0xfffd;
    uint32_t v = b & (0x7fu >> need);
    int k = 1;
    while (k < need && (s[k] & 0xc0) == 0x80) v = (v << 6) | (s[k++] & 0x3fu);
    static const uint32_t min_of[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (k < need) return 0xfffd;
    *sp = s + need;
    if (v < min_of[need] || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return 0xfffd;
    return v;
}

size_t rc_utf8_decode(const char *str, uint32_t *out, size_t cap) {
    const unsigned char *s = (const unsigned char *)str;
    size_t n = 0;
    while (*s) {
        uint32_t cp = next_cp(&s);
        if (out && n < cap) out[n] = cp;
        n++;
    }
    return n;
}

void rc_json_string(rc_strbuf *sb, const char *str) {
    const unsigned char *s = (const unsigned char *)str;
    rc_sb_printf(sb, "\"");
    while (*s) {
        uint32_t c = next_cp(&s);
        if (c == '"')
            rc_sb_printf(sb, "\\\"");
        else if (c == '\\')
            rc_sb_printf(sb, "\\\\");
        else if (c == '\n')
            rc_sb_printf(sb, "\\n");
        else if (c == '\r')
            rc_sb_printf(sb, "\\r");
        else if (c == '\t')
            rc_sb_printf(sb, "\\t");
        else if (c < 0x20 || c == 0x7f)
            rc_sb_printf(sb, "\\u%04x", (unsigned)c);
        else if (c < 0x80)
            rc_sb_printf(sb, "%c", (char)c);
        else if (c < 0x800)
            rc_sb_printf(sb, "%c%c", (char)(0xc0 | (c >> 6)), (char)(0x80 | (c & 0x3f)));
        else if (c < 0x10000)
            rc_sb_printf(sb, "%c%c%c", (char)(0xe0 | (c >> 12)), (char)(0x80 | ((c >> 6) & 0x3f)),
                         (char)(0x80 | (c & 0x3f)));
        else
            rc_sb_printf(sb, "%c%c%c%c", (char)(0xf0 | (c >> 18)), (char)(0x80 | ((c >> 12) & 0x3f)),
                         (char)(0x80 | ((c >> 6) & 0x3f)), (char)(0x80 | (c & 0x3f)));
    }
    rc_sb_printf(sb, "\"");
}

void rc_json_print(FILE *f, const char *s) {
    rc_strbuf sb = {0};
    rc_json_string(&sb, s);
    fwrite(sb.buf, 1, sb.len, f);
    free(sb.buf);
}
