/* test_json.c — tests for the one JSON string writer and UTF-8 decoder (src/io/json.c) behind the CLI's
 * --json output and the exports: escapes, valid multi-byte text kept, and every kind of invalid UTF-8
 * (stray continuation, truncated, overlong, surrogate, past U+10FFFF) written as U+FFFD. */
#include <stdlib.h>
#include <string.h>

#include "io/json.h"
#include "test.h"

static void expect(const char *in, const char *want) {
    rc_strbuf sb = {0};
    rc_json_string(&sb, in);
    CHECK(sb.buf && !strcmp(sb.buf, want), "json of [%s]: got [%s] want [%s]", in, sb.buf, want);
    free(sb.buf);
}

#define FFFD "\xef\xbf\xbd"

static void test_escapes(void) {
    expect("", "\"\"");
    expect("a\"b\\c", "\"a\\\"b\\\\c\"");
    expect("l1\nl2\r\t", "\"l1\\nl2\\r\\t\"");
    expect("\x01\x1f\x7f", "\"\\u0001\\u001f\\u007f\"");
    expect("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
}

static void test_invalid(void) {
    expect("a\xe9z", "\"a" FFFD "z\"");                 /* a Latin-1 byte */
    expect("\x80", "\"" FFFD "\"");                      /* stray continuation */
    expect("\xe2\x82", "\"" FFFD FFFD "\"");             /* truncated: lead byte, then the continuation */
    expect("\xc0\xaf", "\"" FFFD "\"");                  /* overlong '/' */
    expect("\xed\xa0\x80", "\"" FFFD "\"");              /* surrogate U+D800 */
    expect("\xf4\x90\x80\x80", "\"" FFFD "\"");          /* past U+10FFFF */
    expect("\xff", "\"" FFFD "\"");
    uint32_t cp[8];
    CHECK(rc_utf8_decode("a\xc3\xa9\x80", cp, 8) == 3 && cp[0] == 'a' && cp[1] == 0xe9 && cp[2] == 0xfffd,
          "decode");
    CHECK(rc_utf8_decode("abc", NULL, 0) == 3, "count");
}

int main(void) {
    RUN_TEST(test_escapes);
    RUN_TEST(test_invalid);
    TEST_MAIN_END();
}
