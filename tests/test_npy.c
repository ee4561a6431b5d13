/* test_npy.c — the .npy reader (io/npy.c) and the npy: dataset kind (io/npyset.c): good files of every
 * accepted dtype, byte order, version and image layout (NCHW, NHWC, NHW) read back exactly; and each
 * malformed header, truncated or padded file, bad dtype, shape, value and label rejected with a message
 * that names the file and the problem. Files go to a mkdtemp directory. */
#define _POSIX_C_SOURCE 200809L
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/dataset.h"
#include "io/npy.h"
#include "test.h"

static char g_root[256];

static const char *path_of(const char *name) {
    static char p[64][512]; /* a ring: names stay valid for the next 63 calls */
    static int k = 0;
    k = (k + 1) % 64;
    snprintf(p[k], sizeof p[k], "%s/%s", g_root, name);
    return p[k];
}

/* A .npy file: magic, version major.0, the header dict text padded to 16 bytes with '\n', then data. */
static const char *write_raw(const char *name, int major, const char *dict, const void *data, size_t bytes) {
    const char *path = path_of(name);
    size_t pre = major == 1 ? 10 : 12, dl = strlen(dict);
    size_t hl = (pre + dl + 1 + 15) / 16 * 16 - pre;
    unsigned char h[12] = {0x93, 'N', 'U', 'M', 'P', 'Y', (unsigned char)major, 0};
    h[8] = (unsigned char)(hl & 0xff);
    h[9] = (unsigned char)(hl >> 8);
    if (major > 1) h[10] = (unsigned char)(hl >> 16), h[11] = (unsigned char)(hl >> 24);
    FILE *f = fopen(path, "wb");
    RC_ASSERT(f);
    RC_ASSERT(fwrite(h, 1, pre, f) == pre && fwrite(dict, 1, dl, f) == dl);
    for (size_t i = dl; i + 1 < hl; i++) fputc(' ', f);
    fputc('\n', f);
    if (bytes) RC_ASSERT(fwrite(data, 1, bytes, f) == bytes);
    RC_ASSERT(fclose(f) == 0);
    return path;
}

/* A well-formed file through the writer's own header. */
static const char *write_npy(const char *name, const char *descr, int ndim, const int64_t *shape, const void *data,
                             size_t bytes) {
    char hdr[1024];
    size_t hl = rc_npy_header(hdr, sizeof hdr, descr, ndim, shape);
    RC_ASSERT(hl > 0);
    const char *path = path_of(name);
    FILE *f = fopen(path, "wb");
    RC_ASSERT(f && fwrite(hdr, 1, hl, f) == hl);
    if (bytes) RC_ASSERT(fwrite(data, 1, bytes, f) == bytes);
    RC_ASSERT(fclose(f) == 0);
    return path;
}

/* The error of the last failure names the file (its base name) and contains what. */
static void check_error(const char *file, const char *what, const char *ctx) {
    const char *e = rc_error(), *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
    CHECK(strstr(e, base) != NULL, "%s: error does not name %s: %s", ctx, base, e);
    CHECK(strstr(e, what) != NULL, "%s: error lacks '%s': %s", ctx, what, e);
    CHECK(strchr(e, '\n') == NULL, "%s: error spans lines: %s", ctx, e);
}

static void expect_open_fail(const char *path, const char *what) {
    rc_npy_reader r;
    rc_status st = rc_npy_read_open(&r, path);
    CHECK(st == RC_ERR, "%s: opened, expected an error about '%s'", path, what);
    if (st == RC_ERR) check_error(path, what, what);
    CHECK(r.f == NULL, "%s: reader left open", path);
    rc_npy_read_close(&r);
}

static void test_parse_headers(void) {
    rc_npy_info in;
    const char *ok[] = {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
                        "{\"shape\": (2,3,), \"descr\": \"<f4\", \"fortran_order\": False}",
                        "{'descr':'<f4','fortran_order':False,'shape':(2L, 3L)}"};
    for (int i = 0; i < 3; i++) {
        const char *p = write_raw("h.npy", 1 + i, ok[i], NULL, 0);
        unsigned char buf[256];
        FILE *f = fopen(p, "rb");
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        CHECK(rc_npy_parse("h.npy", buf, n, &in) == RC_OK, "header %d: %s", i, rc_error());
        CHECK(in.ndim == 2 && in.shape[0] == 2 && in.shape[1] == 3 && in.count == 6 && in.kind == 'f' &&
                  in.itemsize == 4 && !in.swap && in.data_off == n,
              "header %d parsed wrong: ndim %d count %llu off %llu", i, in.ndim, (unsigned long long)in.count,
              (unsigned long long)in.data_off);
    }
    const char *p = write_raw("s.npy", 1, "{'descr': '>i8', 'fortran_order': True, 'shape': (5,)}", NULL, 0);
    unsigned char buf[256];
    FILE *f = fopen(p, "rb");
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    CHECK(rc_npy_parse("s.npy", buf, n, &in) == RC_OK && in.swap && in.ndim == 1 && in.count == 5,
          "1-D fortran big-endian: %s", rc_error());
    p = write_raw("z.npy", 1, "{'descr': '|u1', 'fortran_order': False, 'shape': ()}", NULL, 0);
    f = fopen(p, "rb");
    n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    CHECK(rc_npy_parse("z.npy", buf, n, &in) == RC_OK && in.ndim == 0 && in.count == 1, "0-d: %s", rc_error());
    CHECK(rc_npy_parse("short.npy", buf, 7, &in) == RC_ERR, "7 bytes parsed");
    check_error("short.npy", "truncated", "7 bytes");
    CHECK(rc_npy_parse("cut.npy", buf, 40, &in) == RC_ERR, "cut header parsed");
    check_error("cut.npy", "truncated", "cut header");
}

static void test_malformed(void) {
    float d6[8] = {0}; /* 6 elements in the headers, room for 5 bytes too many */
    static const struct {
        const char *dict, *what;
    } bad[] = {
        {"{'descr': '<f4', 'fortran_order': False}", "lacks the key 'shape'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (6,), 'x': 1}", "unknown key 'x'"},
        {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (6,)}", "twice"},
        {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (6,)}", "structured"},
        {"{'descr': '<c8', 'fortran_order': False, 'shape': (6,)}", "not supported"},
        {"{'descr': '<U3', 'fortran_order': False, 'shape': (6,)}", "not supported"},
        {"{'descr': '<f3', 'fortran_order': False, 'shape': (6,)}", "element size"},
        {"{'descr': '|f4', 'fortran_order': False, 'shape': (6,)}", "no byte order"},
        {"{'descr': 'f4', 'fortran_order': False, 'shape': (6,)}", "plain numeric dtype"},
        {"{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3)}", "Fortran order"},
        {"{'descr': '<f4', 'fortran_order': maybe, 'shape': (6,)}", "True or False"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (6)}", "1-tuple"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (-6,)}", "non-negative dimension"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}", "too large"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2097152, 1048576, 1048576)}", "2^62"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1)}", "more than 8 dimensions"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (6,)} junk", "only padding"},
        {"{'descr': '<f4, 'fortran_order': False, 'shape': (6,)}", "plain numeric dtype"},
        {"{'descr': '<f4' 'fortran_order': False, 'shape': (6,)}", "',' or '}'"},
        {"['descr', '<f4']", "header dict '{'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (6,)", "ends early"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "bad%02zu.npy", i);
        expect_open_fail(write_raw(name, 1, bad[i].dict, d6, 24), bad[i].what);
    }
    const char *good = "{'descr': '<f4', 'fortran_order': False, 'shape': (6,)}";
    const char *p = write_raw("v4.npy", 1, good, d6, 24);
    FILE *f = fopen(p, "r+b");
    fseek(f, 6, SEEK_SET);
    fputc(4, f); /* version 4.0 */
    fclose(f);
    expect_open_fail(p, "version 4.0");
    p = write_raw("magic.npy", 1, good, d6, 24);
    f = fopen(p, "r+b");
    fputc('X', f);
    fclose(f);
    expect_open_fail(p, "not a .npy file");
    expect_open_fail(write_raw("short.npy", 1, good, d6, 24 - 1), "truncated");
    expect_open_fail(write_raw("long.npy", 1, good, d6, 24 + 5), "unexpected data");
    p = write_raw("hlen.npy", 2, good, d6, 24);
    f = fopen(p, "r+b");
    fseek(f, 10, SEEK_SET);
    fputc(0x10, f); /* header length 1 MiB + ... */
    fclose(f);
    expect_open_fail(p, "over the limit");
    p = write_raw("past.npy", 1, good, NULL, 0);
    f = fopen(p, "r+b");
    fseek(f, 9, SEEK_SET);
    fputc(0x20, f); /* header length 8192 + ..., past the file's end */
    fclose(f);
    expect_open_fail(p, "truncated");
    expect_open_fail(path_of("absent.npy"), "cannot open");
    expect_open_fail(g_root, "not a regular file");
}

static void test_read_swap(void) {
    const unsigned char be[12] = {0, 0, 0, 1, 0, 0, 1, 0, 0x80, 0, 0, 0};
    const char *p = write_raw("be.npy", 1, "{'descr': '>i4', 'fortran_order': False, 'shape': (3,)}", be, 12);
    rc_npy_reader r;
    int32_t v[3];
    CHECK(rc_npy_read_open(&r, p) == RC_OK && rc_npy_read(&r, v, 3) == RC_OK, "big-endian: %s", rc_error());
    CHECK(v[0] == 1 && v[1] == 256 && v[2] == INT32_MIN, "big-endian values %d %d %d", v[0], v[1], v[2]);
    rc_npy_read_close(&r);
}

/* ---- datasets ---- */

static char spec[2048];
static const char *spec4(const char *a, const char *b, const char *c, const char *d) {
    if (c)
        snprintf(spec, sizeof spec, "npy:%s,%s,%s,%s", a, b, c, d);
    else
        snprintf(spec, sizeof spec, "npy:%s,%s", a, b);
    return spec;
}

static void test_dataset_layouts(void) {
    enum { N = 3, H = 4, W = 5 };
    /* NHWC uint8 with 3 channels: pixel (i, y, x, c) = i*60 + (y*W + x)*3 + c, mod 256 */
    uint8_t nhwc[N * H * W * 3];
    for (int i = 0; i < N * H * W * 3; i++) nhwc[i] = (uint8_t)(i % 256);
    int64_t s4[4] = {N, H, W, 3}, s1[1] = {N};
    int64_t lab64[N] = {2, 0, 1};
    const char *xi = write_npy("x_nhwc.npy", "|u1", 4, s4, nhwc, sizeof nhwc);
    const char *yi = write_npy("y64.npy", "<i8", 1, s1, lab64, sizeof lab64);
    rc_dataset d;
    CHECK(rc_dataset_load(spec4(xi, yi, NULL, NULL), 1, &d) == RC_OK, "NHWC uint8: %s", rc_error());
    CHECK(d.n == N && d.c == 3 && d.h == H && d.w == W && d.classes == 3 && !strcmp(d.name, "npy"),
          "NHWC shape %dx%dx%dx%d classes %d", d.n, d.c, d.h, d.w, d.classes);
    int bad = 0;
    for (int i = 0; i < N && d.pixels; i++)
        for (int c = 0; c < 3; c++)
            for (int p = 0; p < H * W; p++)
                bad += d.pixels[((size_t)i * 3 + c) * H * W + p] != nhwc[((size_t)i * H * W + p) * 3 + c];
    CHECK(bad == 0, "NHWC -> NCHW: %d pixels wrong", bad);
    CHECK(d.labels && d.labels[0] == 2 && d.labels[1] == 0 && d.labels[2] == 1, "int64 labels");
    rc_dataset_free(&d);

    /* NCHW float32 (values (k + 0.6)/255 -> k + 1: rounded) with int32 labels, and a (N, H, W) uint8 test split with
     * uint8 labels; version 2.0 for the test images */
    float f[N * 1 * H * W];
    for (int i = 0; i < N * H * W; i++) f[i] = ((float)((i * 7) % 255) + 0.6f) / 255.0f; /* rounds up */
    int64_t sf[4] = {N, 1, H, W}, s2[1] = {2};
    int32_t lab32[N] = {4, 1, 0};
    uint8_t t8[2 * H * W], tl[2] = {4, 3};
    for (int i = 0; i < 2 * H * W; i++) t8[i] = (uint8_t)(255 - i);
    const char *xf = write_npy("x_f32.npy", "<f4", 4, sf, f, sizeof f);
    const char *y32 = write_npy("y32.npy", "<i4", 1, s1, lab32, sizeof lab32);
    const char *xt = write_raw("xt.npy", 2, "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 4, 5)}", t8, sizeof t8);
    const char *yt = write_npy("yt.npy", "|u1", 1, s2, tl, sizeof tl);
    CHECK(rc_dataset_load(spec4(xf, y32, xt, yt), 1, &d) == RC_OK, "NCHW float32: %s", rc_error());
    bad = 0;
    for (int i = 0; i < N * H * W && d.pixels; i++) bad += d.pixels[i] != (uint8_t)((i * 7) % 255 + 1);
    CHECK(d.c == 1 && bad == 0 && d.classes == 5, "float32 -> uint8: %d wrong, classes %d", bad, d.classes);
    rc_dataset_free(&d);
    CHECK(rc_dataset_load(spec4(xf, y32, xt, yt), 0, &d) == RC_OK, "NHW test split: %s", rc_error());
    CHECK(d.n == 2 && d.c == 1 && d.h == H && d.w == W && d.classes == 5 && d.pixels && d.pixels[1] == 254 &&
              d.labels[0] == 4 && d.labels[1] == 3,
          "test split %d images of %dx%dx%d, classes %d", d.n, d.c, d.h, d.w, d.classes);
    rc_dataset_free(&d);
}

static void expect_load_fail(const char *sp, int train, const char *file, const char *what) {
    rc_dataset d;
    rc_status st = rc_dataset_load(sp, train, &d);
    CHECK(st == RC_ERR, "%s: loaded, expected an error about '%s'", sp, what);
    if (st == RC_ERR) check_error(file, what, what);
    CHECK(d.pixels == NULL && d.labels == NULL && d.n == 0, "%s: failed load left data", what);
    rc_dataset_free(&d);
}

static void test_dataset_errors(void) {
    uint8_t px[200] = {0};
    int64_t s[4] = {2, 3, 3, 3}, s1[1] = {2}, s5[4] = {2, 5, 4, 4}, s2d[2] = {2, 9}, sl[1] = {3};
    int64_t lab[3] = {0, 1, 1};
    const char *x = write_npy("ex.npy", "|u1", 4, s, px, 2 * 27);
    const char *y = write_npy("ey.npy", "<i8", 1, s1, lab, 16);
    expect_load_fail(spec4(x, write_npy("ey3.npy", "<i8", 1, sl, lab, 24), NULL, NULL), 1, "ey3.npy", "counts must match");
    expect_load_fail(spec4(write_npy("e5.npy", "|u1", 4, s5, px, 160), y, NULL, NULL), 1, "e5.npy", "channels");
    expect_load_fail(spec4(write_npy("e2d.npy", "|u1", 2, s2d, px, 18), y, NULL, NULL), 1, "e2d.npy", "3-D");
    expect_load_fail(spec4(x, write_npy("eyf.npy", "<f4", 1, s1, lab, 8), NULL, NULL), 1, "eyf.npy", "integers");
    expect_load_fail(spec4(x, write_npy("ey2d.npy", "|u1", 2, s2d, px, 18), NULL, NULL), 1, "ey2d.npy", "1-D");
    int64_t neg[2] = {0, -1}, big[2] = {1000, 0};
    expect_load_fail(spec4(x, write_npy("eyn.npy", "<i8", 1, s1, neg, 16), NULL, NULL), 1, "eyn.npy", "label -1 at index 1");
    expect_load_fail(spec4(x, write_npy("eyb.npy", "<i8", 1, s1, big, 16), NULL, NULL), 1, "eyb.npy", "label 1000");
    double f8[54] = {0};
    expect_load_fail(spec4(write_npy("ef8.npy", "<f8", 4, s, f8, sizeof f8), y, NULL, NULL), 1, "ef8.npy", "uint8");
    float f[54] = {0};
    f[31] = 1.5f;
    expect_load_fail(spec4(write_npy("ehi.npy", "<f4", 4, s, f, sizeof f), y, NULL, NULL), 1, "ehi.npy", "outside [0, 1]");
    f[31] = NAN;
    expect_load_fail(spec4(write_npy("enan.npy", "<f4", 4, s, f, sizeof f), y, NULL, NULL), 1, "enan.npy", "image 1");
    expect_load_fail(spec4(x, y, NULL, NULL), 0, "ey.npy", "no test arrays");
    /* test labels past the training classes; test images of another shape */
    int64_t tl[2] = {0, 2}, s6[4] = {2, 3, 2, 3};
    expect_load_fail(spec4(x, y, x, write_npy("etl.npy", "<i8", 1, s1, tl, 16)), 0, "etl.npy", "training labels");
    expect_load_fail(spec4(x, y, write_npy("ets.npy", "|u1", 4, s6, px, 36), y), 0, "ets.npy", "training images");
    rc_dataset d;
    snprintf(spec, sizeof spec, "npy:%s,%s,%s", x, y, x);
    CHECK(rc_dataset_load(spec, 1, &d) == RC_ERR && strstr(rc_error(), "3 files"), "3 files: %s", rc_error());
    snprintf(spec, sizeof spec, "npy:%s,", x);
    CHECK(rc_dataset_load(spec, 1, &d) == RC_ERR && strstr(rc_error(), "empty file name"), "empty: %s", rc_error());
    expect_load_fail(spec4(path_of("nothere.npy"), y, NULL, NULL), 1, "nothere.npy", "cannot open");
}

int main(void) {
    snprintf(g_root, sizeof g_root, "%s/recur-npy-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(g_root)) {
        perror("mkdtemp");
        return 1;
    }
    RUN_TEST(test_parse_headers);
    RUN_TEST(test_malformed);
    RUN_TEST(test_read_swap);
    RUN_TEST(test_dataset_layouts);
    RUN_TEST(test_dataset_errors);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_root);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_root);
    TEST_MAIN_END();
}
