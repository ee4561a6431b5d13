/* test_ini.c — tests for the strict config reader (src/io/ini.c): good files, every error path and its
 * FILE:LINE message, typed getters and ranges, unknown-key detection, --set overrides, the to_text round
 * trip, and a seeded mini fuzz test (random bytes and mutations of a valid file must never crash). */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/ini.h"
#include "test.h"

static const char *GOOD =
    "# a demo config\n"
    "; another comment style\n"
    "\n"
    "[model]\n"
    "name = demo net   # trailing comment\n"
    "iterations=4\n"
    "   tied   =   yes   \r\n"
    "input = 1x28x28\n"
    "color = a#b\n"
    "empty =\n"
    "lr = 0.05\n"
    "\n"
    "[area V1]   # first area\n"
    "channels = 32\n"
    "kernel = 3\n"
    "[area V2]\n"
    "channels = 64\n"
    "kernel = 3\n"
    "[area]\n"
    "channels = 8\n"
    "[train]\n"
    "schedule = every\n"
    "loss.weight-decay = 1e-4";

static rc_ini *parse_ok(const char *text, const char *name) {
    rc_ini *ini = NULL;
    rc_status st = rc_ini_parse(text, strlen(text), name, &ini);
    CHECK(st == RC_OK && ini, "parse of %s failed: %s", name, rc_error());
    return ini;
}

/* The parse must fail and the message must contain each of the given fragments. */
static void expect_parse_err(const char *text, size_t len, const char *frag1, const char *frag2) {
    rc_ini *ini = (rc_ini *)1;
    rc_status st = rc_ini_parse(text, len, "t.cfg", &ini);
    CHECK(st == RC_ERR && ini == NULL, "parse should fail (wanted '%s')", frag1);
    if (st != RC_ERR) {
        rc_ini_free(ini);
        return;
    }
    CHECK(strstr(rc_error(), frag1) != NULL, "message '%s' lacks '%s'", rc_error(), frag1);
    if (frag2) CHECK(strstr(rc_error(), frag2) != NULL, "message '%s' lacks '%s'", rc_error(), frag2);
}

static void expect_msg(rc_status st, const char *frag1, const char *frag2) {
    CHECK(st == RC_ERR, "call should fail (wanted '%s')", frag1);
    if (st != RC_ERR) return;
    CHECK(strstr(rc_error(), frag1) != NULL, "message '%s' lacks '%s'", rc_error(), frag1);
    if (frag2) CHECK(strstr(rc_error(), frag2) != NULL, "message '%s' lacks '%s'", rc_error(), frag2);
}

static void test_parse_good(void) {
    rc_ini *ini = parse_ok(GOOD, "demo.cfg");
    if (!ini) return;
    CHECK(strcmp(rc_ini_display_name(ini), "demo.cfg") == 0, "display name");
    CHECK(rc_ini_section_count(ini) == 5, "sections %d", rc_ini_section_count(ini));
    CHECK(rc_ini_count(ini, "area") == 3, "areas %d", rc_ini_count(ini, "area"));
    CHECK(rc_ini_count(ini, "nothing") == 0, "no such type");
    rc_ini_section *m = rc_ini_section_at(ini, 0);
    CHECK(strcmp(rc_ini_type(m), "model") == 0 && strcmp(rc_ini_name(m), "") == 0, "model section");
    CHECK(rc_ini_line(m) == 4, "model line %d", rc_ini_line(m));
    CHECK(strcmp(rc_ini_label(m), "[model]") == 0, "label %s", rc_ini_label(m));
    CHECK(rc_ini_key_count(m) == 7, "model keys %d", rc_ini_key_count(m));
    const char *k, *v;
    int line;
    rc_ini_key_at(m, 0, &k, &v, &line);
    CHECK(strcmp(k, "name") == 0 && strcmp(v, "demo net") == 0 && line == 5, "trailing comment: '%s'", v);
    rc_ini_key_at(m, 2, &k, &v, &line);
    CHECK(strcmp(k, "tied") == 0 && strcmp(v, "yes") == 0 && line == 7, "whitespace + CRLF: '%s'", v);
    rc_ini_key_at(m, 4, &k, &v, &line);
    CHECK(strcmp(v, "a#b") == 0, "'#' inside a word is data: '%s'", v);
    rc_ini_key_at(m, 5, &k, &v, &line);
    CHECK(strcmp(k, "empty") == 0 && v[0] == '\0', "empty value");
    CHECK(rc_ini_has(m, "lr") && !rc_ini_has(m, "lr2"), "has");

    rc_ini_section *a1 = rc_ini_find(ini, "area", "V1");
    rc_ini_section *a2 = rc_ini_find(ini, "area", "V2");
    rc_ini_section *a3 = rc_ini_find(ini, "area", "");
    CHECK(a1 && a2 && a3 && a1 != a2 && a2 != a3, "find areas");
    CHECK(a1 == rc_ini_find_nth(ini, "area", 0) && a2 == rc_ini_find_nth(ini, "area", 1) &&
              a3 == rc_ini_find_nth(ini, "area", 2) && !rc_ini_find_nth(ini, "area", 3),
          "areas in file order");
    CHECK(rc_ini_find(ini, "area", NULL) == a1, "find any name -> first");
    CHECK(rc_ini_find(ini, "area", "V9") == NULL, "no V9");
    if (a1) CHECK(rc_ini_line(a1) == 13 && strcmp(rc_ini_label(a1), "[area V1]") == 0, "V1 header");
    rc_ini_section *t = rc_ini_find(ini, "train", NULL);
    if (t) {
        rc_ini_key_at(t, 1, &k, &v, &line);
        CHECK(strcmp(k, "loss.weight-decay") == 0 && strcmp(v, "1e-4") == 0 && line == 23,
              "dotted key on the last line without newline");
    }
    rc_ini_free(ini);

    /* empty and comment-only inputs are valid and empty */
    ini = parse_ok("", "empty");
    if (ini) CHECK(rc_ini_section_count(ini) == 0, "empty");
    rc_ini_free(ini);
    ini = NULL;
    CHECK(rc_ini_parse(NULL, 0, NULL, &ini) == RC_OK && ini, "NULL text, len 0");
    if (ini) CHECK(strcmp(rc_ini_display_name(ini), "<config>") == 0, "default display name");
    rc_ini_free(ini);
    ini = parse_ok("# only\n\n   ; comments\n", "c");
    if (ini) CHECK(rc_ini_section_count(ini) == 0, "comments only");
    rc_ini_free(ini);
    /* a value that is only a comment is empty; a '#' right after '=' starts a comment */
    ini = parse_ok("[a]\nx = # nothing\ny =#z\n", "c");
    if (ini) {
        rc_ini_key_at(rc_ini_section_at(ini, 0), 0, &k, &v, &line);
        CHECK(v[0] == '\0', "x is empty, got '%s'", v);
        rc_ini_key_at(rc_ini_section_at(ini, 0), 1, &k, &v, &line);
        CHECK(v[0] == '\0', "y is empty, got '%s'", v);
    }
    rc_ini_free(ini);
    /* non-UTF8 bytes in a value are fine */
    ini = parse_ok("[a]\nx = \xff\xfe caf\xc3\xa9\n", "c");
    rc_ini_free(ini);
}

static void test_parse_errors(void) {
    const char *t;
    t = "k = 1\n";
    expect_parse_err(t, strlen(t), "t.cfg:1:", "'k' before any [section]");
    t = "# c\n[model]\na = 1\n\na = 2\n";
    expect_parse_err(t, strlen(t), "t.cfg:5: duplicate key 'a' in [model]", "first at line 3");
    t = "[model]\njust words\n";
    expect_parse_err(t, strlen(t), "t.cfg:2:", "expected 'key = value'");
    t = "[model]\nBad = 1\n";
    expect_parse_err(t, strlen(t), "t.cfg:2:", "bad key 'Bad'");
    t = "[model]\nmy key = 1\n";
    expect_parse_err(t, strlen(t), "t.cfg:2:", "bad key 'my key'");
    t = "[model]\n = 1\n";
    expect_parse_err(t, strlen(t), "t.cfg:2:", "missing key");
    t = "\n[model\n";
    expect_parse_err(t, strlen(t), "t.cfg:2:", "no closing ']'");
    t = "[]\n";
    expect_parse_err(t, strlen(t), "t.cfg:1:", "bad section header");
    t = "[area V1 V2]\n";
    expect_parse_err(t, strlen(t), "t.cfg:1:", "bad section header");
    t = "[Model]\n";
    expect_parse_err(t, strlen(t), "t.cfg:1:", "bad section header");
    t = "[area V.1]\n";
    expect_parse_err(t, strlen(t), "t.cfg:1:", "bad section header");
    t = "[model] extra\n";
    expect_parse_err(t, strlen(t), "t.cfg:1:", "after section header");
    t = "[area V1]\nx = 1\n[area V2]\n[area V1]\n";
    expect_parse_err(t, strlen(t), "t.cfg:4: duplicate section [area V1]", "first at line 1");
    /* embedded NUL */
    const char nul[] = "[model]\na = 1\0x\n";
    expect_parse_err(nul, sizeof nul - 1, "t.cfg:2:", "NUL");
    /* line length: 4096 is fine, 4097 is refused */
    size_t n = 8 + 4097 + 1;
    char *big = malloc(n + 1);
    memcpy(big, "[model]\n", 8);
    memset(big + 8, '#', 4097);
    big[8 + 4097] = '\n';
    big[n] = '\0';
    expect_parse_err(big, n, "t.cfg:2:", "limit is 4096");
    big[8 + 4096] = '\n';
    rc_ini *ini = NULL;
    CHECK(rc_ini_parse(big, 8 + 4097, "t.cfg", &ini) == RC_OK, "4096-char line: %s", rc_error());
    rc_ini_free(ini);
    free(big);
    /* size: exactly 1 MiB is accepted, one byte more is refused */
    size_t mib = RC_INI_MAX_BYTES;
    char *huge = malloc(mib + 1);
    for (size_t i = 0; i < mib + 1; i++) huge[i] = (i % 64 == 63) ? '\n' : '#';
    ini = NULL;
    CHECK(rc_ini_parse(huge, mib, "t.cfg", &ini) == RC_OK, "1 MiB of comments: %s", rc_error());
    rc_ini_free(ini);
    expect_parse_err(huge, mib + 1, "t.cfg:", "1 MiB");
    /* loading: a file that is too big, a missing file, a good file */
    const char *path = "/tmp/recur_test_ini_big.cfg";
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL, "tmp file");
    if (f) {
        fwrite(huge, 1, mib + 1, f);
        fclose(f);
        ini = (rc_ini *)1;
        expect_msg(rc_ini_load(path, &ini), path, "1 MiB");
        CHECK(ini == NULL, "out cleared on error");
        f = fopen(path, "wb");
        fputs("[model]\nx = 1\n[model]\ny = ", f);
        fclose(f);
        ini = NULL;
        CHECK(rc_ini_load(path, &ini) == RC_OK && ini && rc_ini_count(ini, "model") == 2, "load: %s",
              rc_error());
        rc_ini_free(ini);
        remove(path);
    }
    free(huge);
    expect_msg(rc_ini_load("/nonexistent/dir/x.cfg", &ini), "/nonexistent/dir/x.cfg", "cannot open");
}

static void test_getters(void) {
    rc_ini *ini = parse_ok(GOOD, "demo.cfg");
    if (!ini) return;
    rc_ini_section *m = rc_ini_find(ini, "model", NULL);
    rc_ini_section *a1 = rc_ini_find(ini, "area", "V1");
    int iv = -7;
    CHECK(rc_ini_int(m, "iterations", 1, 100, &iv) == RC_OK && iv == 4, "int %d", iv);
    iv = -7;
    expect_msg(rc_ini_int(m, "iterations", 5, 100, &iv), "demo.cfg:6: iterations = 4 is out of range [5, 100]",
               "in [model]");
    CHECK(iv == -7, "out untouched on error");
    expect_msg(rc_ini_int(m, "name", 0, 9, &iv), "demo.cfg:5: name = 'demo net' is not an integer", "[0, 9]");
    expect_msg(rc_ini_int(m, "lr", 0, 9, &iv), "demo.cfg:11:", "not an integer");
    expect_msg(rc_ini_int(a1, "depth", 1, 9, &iv), "demo.cfg:13: missing required key 'depth' in [area V1]",
               NULL);
    CHECK(rc_ini_int_or(a1, "depth", 2, 1, 9, &iv) == RC_OK && iv == 2, "default int");
    CHECK(rc_ini_int(a1, "depth", 1, 9, &iv) == RC_OK && iv == 2, "a default reads back");
    int64_t big = 0;
    CHECK(rc_ini_i64_or(m, "seed", INT64_C(9007199254740993), 0, INT64_MAX, &big) == RC_OK &&
              big == INT64_C(9007199254740993),
          "i64 default");

    rc_ini *nums = parse_ok("[n]\na = -9223372036854775808\nb = 9223372036854775808\nc = +12\nd = 1 2\n"
                            "e = 2147483648\nf = 0x10\ng = \n",
                            "n.cfg");
    if (nums) {
        rc_ini_section *s = rc_ini_find(nums, "n", NULL);
        CHECK(rc_ini_i64(s, "a", INT64_MIN, INT64_MAX, &big) == RC_OK && big == INT64_MIN, "INT64_MIN");
        expect_msg(rc_ini_i64(s, "b", INT64_MIN, INT64_MAX, &big), "n.cfg:3:", "not an integer");
        CHECK(rc_ini_int(s, "c", 0, 20, &iv) == RC_OK && iv == 12, "plus sign");
        expect_msg(rc_ini_int(s, "d", 0, 20, &iv), "n.cfg:5:", "not an integer");
        expect_msg(rc_ini_int(s, "e", INT32_MIN, INT32_MAX, &iv), "n.cfg:6:", "out of range");
        expect_msg(rc_ini_int(s, "f", 0, 100, &iv), "n.cfg:7:", "not an integer");
        expect_msg(rc_ini_int(s, "g", 0, 100, &iv), "n.cfg:8:", "not an integer");
        rc_ini_free(nums);
    }

    double d = -1;
    CHECK(rc_ini_double(m, "lr", 0, 1, &d) == RC_OK && d == 0.05, "double %g", d);
    expect_msg(rc_ini_double(m, "lr", 0.1, 1, &d), "demo.cfg:11: lr = 0.05 is out of range [0.1, 1]", "[model]");
    expect_msg(rc_ini_double(m, "name", 0, 1, &d), "demo.cfg:5:", "not a number");
    CHECK(rc_ini_double_or(m, "momentum", 0.9, 0, 1, &d) == RC_OK && d == 0.9, "double default");
    CHECK(rc_ini_double_or(m, "eps", 1e-8, 0, 1, &d) == RC_OK && d == 1e-8, "double default small");
    rc_ini *dn = parse_ok("[n]\na = nan\nb = inf\nc = 1e999\nd = -2.5E-3\ne = 0x1p3\nf = .\n", "d.cfg");
    if (dn) {
        rc_ini_section *s = rc_ini_find(dn, "n", NULL);
        expect_msg(rc_ini_double(s, "a", -1e300, 1e300, &d), "d.cfg:2:", "not a number");
        expect_msg(rc_ini_double(s, "b", -1e300, 1e300, &d), "d.cfg:3:", "not a number");
        expect_msg(rc_ini_double(s, "c", -1e300, 1e300, &d), "d.cfg:4:", "not a number");
        CHECK(rc_ini_double(s, "d", -1, 1, &d) == RC_OK && d == -2.5e-3, "exponent");
        expect_msg(rc_ini_double(s, "e", -1e300, 1e300, &d), "d.cfg:6:", "not a number");
        expect_msg(rc_ini_double(s, "f", -1e300, 1e300, &d), "d.cfg:7:", "not a number");
        rc_ini_free(dn);
    }

    int b = -1;
    CHECK(rc_ini_bool(m, "tied", &b) == RC_OK && b == 1, "bool yes");
    expect_msg(rc_ini_bool(m, "name", &b), "demo.cfg:5:", "yes/no");
    CHECK(rc_ini_bool_or(m, "sequence", 0, &b) == RC_OK && b == 0, "bool default");
    rc_ini *bl = parse_ok("[b]\na = TRUE\nb = off\nc = 0\nd = On\ne = nope\n", "b.cfg");
    if (bl) {
        rc_ini_section *s = rc_ini_find(bl, "b", NULL);
        int x = -1;
        CHECK(rc_ini_bool(s, "a", &x) == RC_OK && x == 1, "TRUE");
        CHECK(rc_ini_bool(s, "b", &x) == RC_OK && x == 0, "off");
        CHECK(rc_ini_bool(s, "c", &x) == RC_OK && x == 0, "0");
        CHECK(rc_ini_bool(s, "d", &x) == RC_OK && x == 1, "On");
        expect_msg(rc_ini_bool(s, "e", &x), "b.cfg:6: e = 'nope' is not a boolean", NULL);
        rc_ini_free(bl);
    }

    static const char *const sched[] = {"final", "every", "increasing", "coarse-to-fine", NULL};
    rc_ini_section *t = rc_ini_find(ini, "train", NULL);
    int e = -1;
    CHECK(rc_ini_enum(t, "schedule", sched, &e) == RC_OK && e == 1, "enum %d", e);
    static const char *const few[] = {"final", "increasing", NULL};
    expect_msg(rc_ini_enum(t, "schedule", few, &e), "demo.cfg:22: schedule = 'every' is not one of: final, increasing",
               "[train]");
    CHECK(rc_ini_enum_or(t, "optimizer", 1, (const char *const[]){"sgd", "adamw", NULL}, &e) == RC_OK && e == 1,
          "enum default");

    const char *s = NULL;
    CHECK(rc_ini_str(m, "name", &s) == RC_OK && strcmp(s, "demo net") == 0, "string");
    CHECK(rc_ini_str(m, "empty", &s) == RC_OK && s[0] == '\0', "empty string");
    expect_msg(rc_ini_str(t, "data", &s), "demo.cfg:21: missing required key 'data' in [train]", NULL);
    CHECK(rc_ini_str_or(t, "data", "fashion-mnist", &s) == RC_OK && strcmp(s, "fashion-mnist") == 0, "str default");

    int dims[4], nd = 0;
    CHECK(rc_ini_dims(m, "input", 3, 3, dims, &nd) == RC_OK && nd == 3 && dims[0] == 1 && dims[1] == 28 &&
              dims[2] == 28,
          "dims");
    expect_msg(rc_ini_dims(m, "input", 2, 2, dims, &nd), "demo.cfg:8: input = '1x28x28' must be 2 sizes", NULL);
    expect_msg(rc_ini_dims(m, "input", 4, 4, dims, &nd), "demo.cfg:8:", "must be 4 sizes");
    CHECK(rc_ini_dims_or(a1, "stride", (const int[]){2, 2}, 2, 1, 2, dims, &nd) == RC_OK && nd == 2 &&
              dims[0] == 2 && dims[1] == 2,
          "dims default");
    rc_ini *dd = parse_ok("[d]\na = 0x3\nb = 3x\nc = x3\nd = 3X3\ne = 99999999x1\nf = 3\ng = 3x4x5\n", "x.cfg");
    if (dd) {
        rc_ini_section *q = rc_ini_find(dd, "d", NULL);
        for (int i = 0; i < 5; i++) {
            char key[2] = {(char)('a' + i), 0}, where[16];
            snprintf(where, sizeof where, "x.cfg:%d:", i + 2);
            expect_msg(rc_ini_dims(q, key, 1, 3, dims, &nd), where, "like 1x28x28");
        }
        CHECK(rc_ini_dims(q, "f", 1, 3, dims, &nd) == RC_OK && nd == 1 && dims[0] == 3, "one dim");
        CHECK(rc_ini_dims(q, "g", 1, 3, dims, &nd) == RC_OK && nd == 3 && dims[2] == 5, "three dims");
        expect_msg(rc_ini_dims(q, "g", 1, 2, dims, &nd), "x.cfg:8:", "1 to 2 sizes");
        rc_ini_free(dd);
    }

    /* defaults report, in the order applied */
    const char *want[][3] = {{"[area V1]", "depth", "2"},  {"[model]", "seed", "9007199254740993"},
                             {"[model]", "momentum", "0.9"}, {"[model]", "eps", "1e-08"},
                             {"[model]", "sequence", "no"},  {"[train]", "optimizer", "adamw"},
                             {"[train]", "data", "fashion-mnist"}, {"[area V1]", "stride", "2x2"}};
    int nwant = (int)(sizeof want / sizeof want[0]);
    CHECK(rc_ini_default_count(ini) == nwant, "defaults %d", rc_ini_default_count(ini));
    for (int i = 0; i < nwant && i < rc_ini_default_count(ini); i++) {
        const rc_ini_section *sec;
        const char *k, *v;
        rc_ini_default_at(ini, i, &sec, &k, &v);
        CHECK(strcmp(rc_ini_label(sec), want[i][0]) == 0 && strcmp(k, want[i][1]) == 0 && strcmp(v, want[i][2]) == 0,
              "default %d: %s %s = %s", i, rc_ini_label(sec), k, v);
    }
    FILE *f = tmpfile();
    if (f) {
        rc_ini_print_defaults(ini, f);
        rewind(f);
        char line[128] = {0};
        CHECK(fgets(line, sizeof line, f) && strcmp(line, "using default [area V1] depth = 2\n") == 0,
              "print_defaults: '%s'", line);
        fclose(f);
    }
    /* a section missing from the file can be ensured, reports defaults, and missing keys say so */
    rc_ini_section *data = rc_ini_ensure(ini, "data");
    CHECK(data && rc_ini_line(data) == 0 && rc_ini_ensure(ini, "data") == data, "ensure");
    expect_msg(rc_ini_str(data, "path", &s), "demo.cfg: missing required key 'path' in [data]", "not in the config");
    CHECK(rc_ini_ensure(ini, "model") == m, "ensure finds an existing section");
    rc_ini_free(ini);
}

static void test_unused(void) {
    const char *text = "[model]\niterations = 3\n[area V1]\nchannels = 8\nchanels = 9\n[area V2]\nchannels = 4\n"
                       "[trian]\nepochs = 1\n";
    rc_ini *ini = parse_ok(text, "u.cfg");
    if (!ini) return;
    const char *known[] = {"model", "train", "data", "area", NULL};
    expect_msg(rc_ini_check_sections(ini, known), "u.cfg:8: unknown section type [trian]", "[train]");
    int v;
    rc_ini_int(rc_ini_find(ini, "model", NULL), "iterations", 1, 9, &v);
    expect_msg(rc_ini_check_unused(ini), "u.cfg:3: section [area V1] is never read", NULL);
    for (int i = 0; i < rc_ini_count(ini, "area"); i++) rc_ini_int(rc_ini_find_nth(ini, "area", i), "channels", 1, 64, &v);
    expect_msg(rc_ini_check_unused(ini), "u.cfg:5: unknown key 'chanels' in [area V1]", NULL);
    rc_ini_int_or(rc_ini_find(ini, "area", "V1"), "chanels", 1, 1, 64, &v);
    expect_msg(rc_ini_check_unused(ini), "u.cfg:8: section [trian] is never read", NULL);
    rc_ini_int(rc_ini_find(ini, "trian", NULL), "epochs", 1, 9, &v);
    CHECK(rc_ini_check_unused(ini) == RC_OK, "all used: %s", rc_error());
    const char *known2[] = {"model", "trian", "area", NULL};
    CHECK(rc_ini_check_sections(ini, known2) == RC_OK, "known sections");
    /* a typo given with --set is caught too */
    CHECK(rc_ini_set(ini, "model.iteratons=4") == RC_OK, "set new key: %s", rc_error());
    expect_msg(rc_ini_check_unused(ini), "u.cfg (--set): unknown key 'iteratons' in [model]", NULL);
    rc_ini_free(ini);
}

static void test_set(void) {
    rc_ini *ini = parse_ok(GOOD, "demo.cfg");
    if (!ini) return;
    rc_ini_section *m = rc_ini_find(ini, "model", NULL);
    rc_ini_section *a2 = rc_ini_find(ini, "area", "V2");
    rc_ini_section *t = rc_ini_find(ini, "train", NULL);
    int v = 0;
    const char *s;
    /* defaults applied before an override leave the report when overridden */
    CHECK(rc_ini_int_or(m, "batch", 32, 1, 1024, &v) == RC_OK && v == 32, "default batch");
    CHECK(rc_ini_default_count(ini) == 1, "one default");
    CHECK(rc_ini_set(ini, "model.batch=64") == RC_OK, "set batch: %s", rc_error());
    CHECK(rc_ini_default_count(ini) == 0, "override removes the default record");
    CHECK(rc_ini_int(m, "batch", 1, 1024, &v) == RC_OK && v == 64, "batch %d", v);

    CHECK(rc_ini_set(ini, "model.iterations=8") == RC_OK, "unique: %s", rc_error());
    CHECK(rc_ini_int(m, "iterations", 1, 100, &v) == RC_OK && v == 8, "iterations %d", v);
    CHECK(rc_ini_set(ini, "  train.loss.weight-decay = 0.5  ") == RC_OK, "dotted key: %s", rc_error());
    CHECK(rc_ini_str(t, "loss.weight-decay", &s) == RC_OK && strcmp(s, "0.5") == 0, "dotted key value '%s'", s);
    CHECK(rc_ini_set(ini, "area.V2.channels=128") == RC_OK, "named: %s", rc_error());
    CHECK(rc_ini_int(a2, "channels", 1, 1024, &v) == RC_OK && v == 128, "V2 channels %d", v);
    CHECK(rc_ini_set(ini, "area.V1.padding=1") == RC_OK, "named, new key: %s", rc_error());
    CHECK(rc_ini_int(rc_ini_find(ini, "area", "V1"), "padding", 0, 3, &v) == RC_OK && v == 1, "V1 padding");
    CHECK(rc_ini_set(ini, "model.note=") == RC_OK, "empty value");
    CHECK(rc_ini_set(ini, "model.name=a b#c") == RC_OK, "'#' inside a word");

    expect_msg(rc_ini_set(ini, "area.channels=3"), "ambiguous: 3 [area] sections; use area.NAME.channels", NULL);
    expect_msg(rc_ini_set(ini, "area.V7.channels=3"), "no [area V7] section", NULL);
    expect_msg(rc_ini_set(ini, "data.path=x"), "no [data] section", "demo.cfg");
    expect_msg(rc_ini_set(ini, "model.iterations"), "expected SECTION.key=value", NULL);
    expect_msg(rc_ini_set(ini, "model=3"), "expected SECTION.key=value", NULL);
    expect_msg(rc_ini_set(ini, "model.=3"), "expected SECTION.key=value", NULL);
    expect_msg(rc_ini_set(ini, ".x=3"), "expected SECTION.key=value", NULL);
    expect_msg(rc_ini_set(ini, "Model.x=3"), "bad section type", NULL);
    expect_msg(rc_ini_set(ini, "model.Bad=3"), "bad key", NULL);
    expect_msg(rc_ini_set(ini, "model.x=a #b"), "'#'", NULL);
    expect_msg(rc_ini_set(ini, "model.x=#b"), "'#'", NULL);
    expect_msg(rc_ini_set(ini, "model.x=a\nb"), "line breaks", NULL);
    /* a bad value from --set is reported as such */
    CHECK(rc_ini_set(ini, "model.iterations=lots") == RC_OK, "set lots");
    expect_msg(rc_ini_int(m, "iterations", 1, 100, &v), "demo.cfg (--set): iterations = 'lots' is not an integer",
               NULL);

    /* a single named section can be addressed with or without its name */
    rc_ini *one = parse_ok("[area V1]\nchannels = 3\n", "one.cfg");
    if (one) {
        rc_ini_section *a = rc_ini_find(one, "area", "V1");
        CHECK(rc_ini_set(one, "area.channels=5") == RC_OK && rc_ini_int(a, "channels", 1, 9, &v) == RC_OK && v == 5,
              "unique area without name");
        CHECK(rc_ini_set(one, "area.V1.channels=6") == RC_OK && rc_ini_int(a, "channels", 1, 9, &v) == RC_OK &&
                  v == 6,
              "unique area with name");
        CHECK(rc_ini_key_count(a) == 1, "no key added");
        rc_ini_free(one);
    }
    rc_ini_free(ini);
}

static void check_round_trip(rc_ini *ini, const char *what) {
    char *text = NULL;
    size_t len = 0;
    CHECK(rc_ini_to_text(ini, &text, &len) == RC_OK && text && strlen(text) == len, "%s: to_text", what);
    if (!text) return;
    rc_ini *back = NULL;
    rc_status st = rc_ini_parse(text, len, "back", &back);
    CHECK(st == RC_OK, "%s: reparse failed: %s\n---\n%s---", what, rc_error(), text);
    if (st == RC_OK) {
        CHECK(rc_ini_equal(ini, back), "%s: round trip differs:\n%s", what, text);
        char *text2 = NULL;
        size_t len2 = 0;
        rc_ini_to_text(back, &text2, &len2);
        CHECK(len2 == len && memcmp(text, text2, len) == 0, "%s: canonical text is not stable", what);
        free(text2);
    }
    rc_ini_free(back);
    free(text);
}

static void test_round_trip(void) {
    rc_ini *ini = parse_ok(GOOD, "demo.cfg");
    if (!ini) return;
    check_round_trip(ini, "good");
    int v;
    rc_ini_int_or(rc_ini_find(ini, "area", "V2"), "depth", 3, 1, 9, &v);
    rc_ini_double_or(rc_ini_ensure(ini, "data"), "split", 0.1, 0, 1, &(double){0});
    rc_ini_set(ini, "model.iterations=12");
    rc_ini_set(ini, "model.extra=x#y z");
    check_round_trip(ini, "with defaults and overrides");
    char *text = NULL;
    size_t len;
    rc_ini_to_text(ini, &text, &len);
    const char *want = "[model]\nname = demo net\niterations = 12\ntied = yes\ninput = 1x28x28\ncolor = a#b\n"
                       "empty =\nlr = 0.05\nextra = x#y z\n\n[area V1]\nchannels = 32\nkernel = 3\n\n[area V2]\n"
                       "channels = 64\nkernel = 3\ndepth = 3\n\n[area]\nchannels = 8\n\n[train]\nschedule = every\n"
                       "loss.weight-decay = 1e-4\n\n[data]\nsplit = 0.1\n";
    CHECK(text && strcmp(text, want) == 0, "canonical text:\n%s", text ? text : "(null)");
    /* rc_ini_equal notices differences */
    rc_ini *other = NULL;
    if (text) {
        CHECK(rc_ini_parse(text, len, "o", &other) == RC_OK, "reparse");
        if (other) {
            CHECK(rc_ini_equal(ini, other), "equal");
            rc_ini_set(other, "model.lr=0.06");
            CHECK(!rc_ini_equal(ini, other), "value differs");
        }
    }
    rc_ini_free(other);
    free(text);
    rc_ini_free(ini);
    ini = parse_ok("", "e");
    if (ini) check_round_trip(ini, "empty");
    rc_ini_free(ini);
}

/* xorshift64*: a local, fixed-seed generator so the fuzz cases are the same on every run. */
static uint64_t fuzz_state = 0x9e3779b97f4a7c15ull;
static uint32_t fuzz_next(void) {
    fuzz_state ^= fuzz_state >> 12;
    fuzz_state ^= fuzz_state << 25;
    fuzz_state ^= fuzz_state >> 27;
    return (uint32_t)((fuzz_state * 0x2545f4914f6cdd1dull) >> 32);
}
static uint32_t fuzz_below(uint32_t n) { return fuzz_next() % n; }

static char fuzz_byte(void) {
    static const char structural[] = "[]=#;. \t\r\n\0xaV1_-09";
    if (fuzz_below(2)) return structural[fuzz_below(sizeof structural)];
    return (char)(unsigned char)fuzz_below(256);
}

/* Exercise everything on a parsed config; the point is to never crash. Returns 1 on success parses. */
static int fuzz_one(const char *buf, size_t len, int *ok_count) {
    rc_ini *ini = NULL;
    rc_status st = rc_ini_parse(buf, len, "fuzz", &ini);
    if (st != RC_OK) {
        CHECK(ini == NULL && strncmp(rc_error(), "fuzz", 4) == 0, "error message must name the input: %s",
              rc_error());
        return 0;
    }
    (*ok_count)++;
    static const char *const words[] = {"yes", "every", "3", NULL};
    for (int i = 0; i < rc_ini_section_count(ini); i++) {
        rc_ini_section *s = rc_ini_section_at(ini, i);
        int nk = rc_ini_key_count(s);
        for (int k = 0; k < nk; k++) {
            const char *key, *val;
            int line, iv, nd, dims[4];
            double d;
            int64_t l;
            rc_ini_key_at(s, k, &key, &val, &line);
            CHECK(line > 0, "parsed keys have lines");
            (void)rc_ini_int(s, key, -5, 5, &iv);
            (void)rc_ini_i64(s, key, INT64_MIN, INT64_MAX, &l);
            (void)rc_ini_double(s, key, -1e9, 1e9, &d);
            (void)rc_ini_bool(s, key, &iv);
            (void)rc_ini_enum(s, key, words, &iv);
            (void)rc_ini_dims(s, key, 1, 4, dims, &nd);
        }
        (void)rc_ini_int_or(s, "zz-fuzz", 1, 0, 2, &(int){0});
    }
    (void)rc_ini_check_unused(ini);
    (void)rc_ini_check_sections(ini, (const char *const[]){"a", "area", NULL});
    /* a random --set built from the input's own bytes */
    char assign[64];
    size_t an = len < sizeof assign - 1 ? len : sizeof assign - 1;
    size_t off = len > an ? fuzz_below((uint32_t)(len - an)) : 0;
    memcpy(assign, buf + off, an);
    assign[an] = '\0';
    (void)rc_ini_set(ini, assign);
    (void)rc_ini_set(ini, "a.x=1");
    (void)rc_ini_set(ini, "area.V1.x=2");
    check_round_trip(ini, "fuzz");
    rc_ini_free(ini);
    return 1;
}

static void test_fuzz(void) {
    int ok = 0;
    /* random bytes, biased toward the characters that matter */
    for (int it = 0; it < 2000; it++) {
        size_t len = fuzz_below(200);
        char *buf = malloc(len ? len : 1);
        for (size_t i = 0; i < len; i++) buf[i] = fuzz_byte();
        fuzz_one(buf, len, &ok);
        free(buf);
    }
    /* mutations of a valid file (several edits each, accumulated across rounds from the original) */
    size_t glen = strlen(GOOD);
    for (int it = 0; it < 2000; it++) {
        size_t cap = glen + 64;
        char *buf = malloc(cap);
        memcpy(buf, GOOD, glen);
        size_t len = glen;
        int edits = 1 + (int)fuzz_below(4);
        for (int e = 0; e < edits; e++) {
            uint32_t op = fuzz_below(5);
            size_t at = len ? fuzz_below((uint32_t)len) : 0;
            if (op == 0 && len) {
                buf[at] = fuzz_byte(); /* replace */
            } else if (op == 1 && len + 1 < cap) {
                memmove(buf + at + 1, buf + at, len - at); /* insert */
                buf[at] = fuzz_byte();
                len++;
            } else if (op == 2 && len) {
                memmove(buf + at, buf + at + 1, len - at - 1); /* delete */
                len--;
            } else if (op == 3 && len) {
                len = at; /* truncate */
            } else if (op == 4 && len) {
                buf[at] ^= (char)(1u << fuzz_below(8)); /* bit flip */
            }
        }
        fuzz_one(buf, len, &ok);
        free(buf);
    }
    /* both kinds must produce some successes, or the fuzz test tests nothing */
    CHECK(ok > 200, "only %d of 4000 fuzz inputs parsed", ok);
    printf("  fuzz: %d of 4000 inputs parsed\n", ok);
}

/* 1 MiB of distinct keys and of sections must parse quickly (hash indexes, not quadratic scans). */
static void test_big_inputs(void) {
    size_t cap = RC_INI_MAX_BYTES;
    char *buf = malloc(cap + 64);
    size_t n = (size_t)snprintf(buf, cap, "[s]\n");
    int keys = 0;
    while (n + 32 < cap) n += (size_t)snprintf(buf + n, 32, "k%d = %d\n", keys, keys), keys++;
    rc_ini *ini = NULL;
    CHECK(rc_ini_parse(buf, n, "big", &ini) == RC_OK, "many keys: %s", rc_error());
    if (ini) {
        rc_ini_section *s = rc_ini_find(ini, "s", NULL);
        int v = -1;
        CHECK(rc_ini_key_count(s) == keys, "key count");
        char key[32];
        snprintf(key, sizeof key, "k%d", keys - 1);
        CHECK(keys > 50000 && rc_ini_int(s, key, 0, 1 << 30, &v) == RC_OK && v == keys - 1, "lookup in a big section");
        rc_ini_free(ini);
    }
    n = 0;
    int secs = 0;
    while (n + 32 < cap) n += (size_t)snprintf(buf + n, 32, "[a n%d]\nx=1\n", secs), secs++;
    ini = NULL;
    CHECK(rc_ini_parse(buf, n, "big", &ini) == RC_OK, "many sections: %s", rc_error());
    if (ini) {
        CHECK(rc_ini_section_count(ini) == secs, "section count");
        CHECK(rc_ini_find(ini, "a", "n12345") == rc_ini_section_at(ini, 12345), "find named in many");
        CHECK(rc_ini_set(ini, "a.n999.x=2") == RC_OK, "set among many");
        rc_ini_free(ini);
    }
    free(buf);
}

int main(void) {
    RUN_TEST(test_parse_good);
    RUN_TEST(test_parse_errors);
    RUN_TEST(test_getters);
    RUN_TEST(test_unused);
    RUN_TEST(test_set);
    RUN_TEST(test_round_trip);
    RUN_TEST(test_fuzz);
    RUN_TEST(test_big_inputs);
    TEST_MAIN_END();
}
