/* test_data.c — tests for src/io/dataset.{h,c}, idx.c and cifar.c: synthetic IDX (plain and gzip)
 * and CIFAR-10/100 files written to a mkdtemp directory, header / truncation / label errors, a
 * small mutation fuzz, subsets and splits, statistics, batch assembly with augmentation, and (when
 * it is installed) the real Fashion-MNIST under /usr/share/datasets/fashion-mnist. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "base/common.h"
#include "base/rng.h"
#include "io/dataset.h"
#include "test.h"

static char g_root[256];
static int g_dirs = 0;

/* ---- file helpers --------------------------------------------------------------------------- */

static void new_dir(char *out, size_t cap) {
    snprintf(out, cap, "%s/d%03d", g_root, g_dirs++);
    if (mkdir(out, 0700) != 0) {
        perror(out);
        abort();
    }
}

static void write_bytes(const char *dir, const char *name, const uint8_t *b, size_t n, int gz) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (gz) {
        gzFile f = gzopen(path, "wb6");
        RC_ASSERT(f);
        if (n)
            RC_ASSERT(gzwrite(f, b, (unsigned)n) == (int)n);
        RC_ASSERT(gzclose(f) == Z_OK);
    } else {
        FILE *f = fopen(path, "wb");
        RC_ASSERT(f);
        if (n)
            RC_ASSERT(fwrite(b, 1, n, f) == n);
        RC_ASSERT(fclose(f) == 0);
    }
}

static uint8_t *read_whole(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    RC_ASSERT(f);
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)sz + 1);
    RC_ASSERT(fread(b, 1, (size_t)sz, f) == (size_t)sz);
    fclose(f);
    *n = (size_t)sz;
    return b;
}

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint8_t pix_value(int i, int y, int x) { return (uint8_t)(i * 31 + y * 7 + x * 3 + 1); }

/* IDX images file bytes (16-byte header + n*h*w), pixel (i, y, x) = pix_value + salt. */
static uint8_t *idx_images(int n, int h, int w, int salt, size_t *len) {
    *len = 16 + (size_t)n * h * w;
    uint8_t *b = malloc(*len);
    put_be32(b, 0x803);
    put_be32(b + 4, (uint32_t)n);
    put_be32(b + 8, (uint32_t)h);
    put_be32(b + 12, (uint32_t)w);
    for (int i = 0; i < n; i++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                b[16 + ((size_t)i * h + y) * w + x] = (uint8_t)(pix_value(i, y, x) + salt);
    return b;
}

static uint8_t *idx_labels(int n, int mod, size_t *len) {
    *len = 8 + (size_t)n;
    uint8_t *b = malloc(*len);
    put_be32(b, 0x801);
    put_be32(b + 4, (uint32_t)n);
    for (int i = 0; i < n; i++)
        b[8 + i] = (uint8_t)((i * 7 + 3) % mod);
    return b;
}

#define NTR 37
#define NTE 11
#define IH 5
#define IW 7

/* A complete IDX directory: train (gz) and test (plain) with NTR / NTE images of IH x IW. */
static void write_idx_set(const char *dir, int mod, int gz_train, int gz_test) {
    size_t n;
    uint8_t *b = idx_images(NTR, IH, IW, 0, &n);
    write_bytes(dir, gz_train ? "train-images-idx3-ubyte.gz" : "train-images-idx3-ubyte", b, n,
                gz_train);
    free(b);
    b = idx_labels(NTR, mod, &n);
    write_bytes(dir, gz_train ? "train-labels-idx1-ubyte.gz" : "train-labels-idx1-ubyte", b, n,
                gz_train);
    free(b);
    b = idx_images(NTE, IH, IW, 100, &n);
    write_bytes(dir, gz_test ? "t10k-images-idx3-ubyte.gz" : "t10k-images-idx3-ubyte", b, n,
                gz_test);
    free(b);
    b = idx_labels(NTE, mod, &n);
    write_bytes(dir, gz_test ? "t10k-labels-idx1-ubyte.gz" : "t10k-labels-idx1-ubyte", b, n,
                gz_test);
    free(b);
}

static void rm_tree(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (d) {
            struct dirent *e;
            while ((e = readdir(d))) {
                if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                    continue;
                char sub[1024];
                snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
                rm_tree(sub);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

static int has(const char *msg, const char *needle) { return strstr(msg, needle) != NULL; }

/* Expect the load of spec to fail with a message containing every non-NULL needle. */
static void expect_fail(const char *spec, int train, const char *n1, const char *n2,
                        const char *n3) {
    rc_dataset d;
    memset(&d, 0x5a, sizeof d);
    rc_status st = rc_dataset_load(spec, train, &d);
    CHECK(st == RC_ERR, "load of %s (train %d) should fail", spec, train);
    const char *m = rc_error();
    const char *needles[3] = {n1, n2, n3};
    for (int k = 0; k < 3; k++)
        if (needles[k])
            CHECK(has(m, needles[k]), "error for %s lacks '%s': %s", spec, needles[k], m);
    CHECK(d.pixels == NULL && d.labels == NULL && d.n == 0,
          "failed load leaves a non-empty dataset");
    rc_dataset_free(&d);
}

/* ---- IDX ------------------------------------------------------------------------------------ */

static void check_idx_split(const rc_dataset *d, int n, int salt, int mod) {
    CHECK(d->n == n && d->c == 1 && d->h == IH && d->w == IW, "shape %d %dx%dx%d", d->n, d->c, d->h,
          d->w);
    if (d->n != n || d->h != IH || d->w != IW)
        return;
    int bad = 0;
    double s = 0, s2 = 0;
    for (int i = 0; i < n; i++) {
        if (d->labels[i] != (i * 7 + 3) % mod)
            bad++;
        for (int y = 0; y < IH; y++)
            for (int x = 0; x < IW; x++) {
                uint8_t v = d->pixels[((size_t)i * IH + y) * IW + x];
                if (v != (uint8_t)(pix_value(i, y, x) + salt))
                    bad++;
                s += v / 255.0;
                s2 += (v / 255.0) * (v / 255.0);
            }
    }
    CHECK(bad == 0, "%d wrong pixels/labels", bad);
    double cnt = (double)n * IH * IW, mean = s / cnt, sd = sqrt(s2 / cnt - mean * mean);
    CHECK_CLOSE(d->mean[0], mean, 1e-5, 1e-6, "mean");
    CHECK_CLOSE(d->std[0], sd, 1e-4, 1e-6, "std");
    CHECK(d->mean[1] == 0.0f && d->std[1] == 1.0f, "unused channel stats");
}

static void test_idx_load(void) {
    char dir[512], spec[600];
    new_dir(dir, sizeof dir);
    write_idx_set(dir, 10, 1, 0);
    rc_dataset tr, te;
    snprintf(spec, sizeof spec, "mnist:%s", dir);
    CHECK(rc_dataset_load(spec, 1, &tr) == RC_OK, "mnist train: %s", rc_error());
    CHECK(rc_dataset_load(spec, 0, &te) == RC_OK, "mnist test: %s", rc_error());
    check_idx_split(&tr, NTR, 0, 10);
    check_idx_split(&te, NTE, 100, 10);
    CHECK(!strcmp(tr.name, "mnist") && tr.classes == 10 && tr.ncoarse == 0 && !tr.coarse_of &&
              !tr.class_names && tr.train == 1 && te.train == 0,
          "mnist metadata");
    CHECK(has(tr.spec, dir), "spec '%s' names the directory", tr.spec);
    rc_dataset_free(&tr);
    rc_dataset_free(&te);
    CHECK(tr.pixels == NULL && tr.n == 0, "free zeroes");
    rc_dataset_free(&tr); /* double free is safe */

    /* generic idx: classes from the training labels (max 5 -> 6) */
    char dir2[512];
    new_dir(dir2, sizeof dir2);
    write_idx_set(dir2, 6, 0, 1);
    snprintf(spec, sizeof spec, "idx:%s", dir2);
    CHECK(rc_dataset_load(spec, 1, &tr) == RC_OK, "idx train: %s", rc_error());
    CHECK(rc_dataset_load(spec, 0, &te) == RC_OK, "idx test: %s", rc_error());
    check_idx_split(&tr, NTR, 0, 6);
    check_idx_split(&te, NTE, 100, 6);
    CHECK(tr.classes == 6 && te.classes == 6, "idx classes %d %d", tr.classes, te.classes);
    rc_dataset_free(&tr);
    rc_dataset_free(&te);
}

static void test_idx_prefers_gz(void) {
    char dir[512], spec[600];
    new_dir(dir, sizeof dir);
    write_idx_set(dir, 10, 1, 1);
    size_t n; /* a plain file with other pixels next to the .gz one: the .gz must win */
    uint8_t *b = idx_images(NTR, IH, IW, 50, &n);
    write_bytes(dir, "train-images-idx3-ubyte", b, n, 0);
    free(b);
    snprintf(spec, sizeof spec, "mnist:%s", dir);
    rc_dataset d;
    CHECK(rc_dataset_load(spec, 1, &d) == RC_OK, "%s", rc_error());
    check_idx_split(&d, NTR, 0, 10);
    rc_dataset_free(&d);
    /* and a .gz name holding plain bytes is read too */
    b = idx_images(NTR, IH, IW, 0, &n);
    write_bytes(dir, "train-images-idx3-ubyte.gz", b, n, 0);
    free(b);
    CHECK(rc_dataset_load(spec, 1, &d) == RC_OK, "%s", rc_error());
    check_idx_split(&d, NTR, 0, 10);
    rc_dataset_free(&d);
}

/* A fresh set with the training images (or labels) replaced by `b`. */
static void idx_case(const char *which, const uint8_t *b, size_t n, int gz, char *spec,
                     size_t cap) {
    char dir[512];
    new_dir(dir, sizeof dir);
    write_idx_set(dir, 10, 0, 0);
    char name[128];
    snprintf(name, sizeof name, "%s%s", which, gz ? ".gz" : "");
    if (gz) { /* remove the plain one so the .gz is what is read */
        char p[700];
        snprintf(p, sizeof p, "%s/%s", dir, which);
        unlink(p);
    }
    write_bytes(dir, name, b, n, gz);
    snprintf(spec, cap, "mnist:%s", dir);
}

static void test_idx_errors(void) {
    const char *IMG = "train-images-idx3-ubyte", *LAB = "train-labels-idx1-ubyte";
    char spec[600];
    size_t n;
    uint8_t *b;

    b = idx_images(NTR, IH, IW, 0, &n);
    put_be32(b, 0x802);
    idx_case(IMG, b, n, 0, spec, sizeof spec);
    expect_fail(spec, 1, "bad IDX magic 0x00000802", "expected 0x00000803", IMG);
    free(b);

    b = idx_labels(NTR, 10, &n); /* a labels file where the images belong */
    idx_case(IMG, b, n, 1, spec, sizeof spec);
    expect_fail(spec, 1, "looks like an IDX labels file", NULL, NULL);
    free(b);

    b = idx_images(NTR, IH, IW, 0, &n);
    put_be32(b + 8, 0);
    idx_case(IMG, b, n, 0, spec, sizeof spec);
    expect_fail(spec, 1, "dimension 1", "is 0", NULL);
    free(b);

    b = idx_images(NTR, IH, IW, 0, &n); /* 20M images claimed by a tiny file */
    put_be32(b + 4, 20000000);
    idx_case(IMG, b, n, 1, spec, sizeof spec);
    expect_fail(spec, 1, "20000000 images", "limit of 10000000", NULL);
    free(b);

    b = idx_labels(NTR, 10, &n);
    put_be32(b + 4, 0xffffffffu);
    idx_case(LAB, b, n, 0, spec, sizeof spec);
    expect_fail(spec, 1, "4294967295 labels", "limit of 10000000", LAB);
    free(b);

    b = idx_images(NTR, IH, IW, 0, &n);
    put_be32(b + 12, 5000);
    idx_case(IMG, b, n, 0, spec, sizeof spec);
    expect_fail(spec, 1, "side limit of 4096", NULL, NULL);
    free(b);

    b = idx_images(NTR - 1, IH, IW, 0, &n);
    idx_case(IMG, b, n, 0, spec, sizeof spec);
    expect_fail(spec, 1, "36 images", "37 labels", "must match");
    free(b);

    /* truncated pixels: payload is bytes 16..1311, 5 missing */
    b = idx_images(NTR, IH, IW, 0, &n);
    idx_case(IMG, b, n - 5, 0, spec, sizeof spec);
    expect_fail(spec, 1, "truncated", "bytes 16..1311", "ends at byte offset 1306");
    idx_case(IMG, b, n - 5, 1, spec, sizeof spec);
    expect_fail(spec, 1, "truncated", "ends at byte offset 1306 (uncompressed)", ".gz");
    idx_case(IMG, b, 10, 0, spec, sizeof spec); /* inside the header */
    expect_fail(spec, 1, "truncated", "IDX header", "byte offset 10");
    idx_case(IMG, b, 0, 0, spec, sizeof spec); /* empty */
    expect_fail(spec, 1, "truncated", "magic", NULL);
    free(b);

    /* trailing data */
    b = idx_images(NTR, IH, IW, 0, &n);
    uint8_t *b2 = malloc(n + 3);
    memcpy(b2, b, n);
    memset(b2 + n, 7, 3);
    idx_case(IMG, b2, n + 3, 1, spec, sizeof spec);
    expect_fail(spec, 1, "unexpected data after byte offset 1311", NULL, NULL);
    free(b2);
    free(b);

    /* label out of range */
    b = idx_labels(NTR, 10, &n);
    b[8 + 4] = 10;
    idx_case(LAB, b, n, 1, spec, sizeof spec);
    expect_fail(spec, 1, "label 10 at index 4", "byte offset 12", "0..9");
    free(b);

    /* test split of generic idx: test label beyond the training labels' max */
    {
        char dir[512];
        new_dir(dir, sizeof dir);
        write_idx_set(dir, 6, 0, 0);
        b = idx_labels(NTE, 6, &n);
        b[8 + 2] = 6;
        write_bytes(dir, "t10k-labels-idx1-ubyte", b, n, 0);
        free(b);
        snprintf(spec, sizeof spec, "idx:%s", dir);
        expect_fail(spec, 0, "label 6 at index 2", "0..5", "training labels");
    }

    /* missing file */
    {
        char dir[512];
        new_dir(dir, sizeof dir);
        write_idx_set(dir, 10, 0, 0);
        char p[700];
        snprintf(p, sizeof p, "%s/t10k-images-idx3-ubyte", dir);
        unlink(p);
        snprintf(spec, sizeof spec, "mnist:%s", dir);
        expect_fail(spec, 0, "cannot find", "t10k-images-idx3-ubyte.gz", NULL);
        rc_dataset d;
        CHECK(rc_dataset_load(spec, 1, &d) == RC_OK, "train still loads: %s", rc_error());
        rc_dataset_free(&d);
    }

    /* corrupt and truncated gzip streams */
    {
        char dir[512], p[700];
        new_dir(dir, sizeof dir);
        write_idx_set(dir, 10, 1, 1);
        snprintf(p, sizeof p, "%s/train-images-idx3-ubyte.gz", dir);
        size_t gzn;
        uint8_t *gz = read_whole(p, &gzn);
        write_bytes(dir, "train-images-idx3-ubyte.gz", gz, gzn / 2, 0);
        snprintf(spec, sizeof spec, "mnist:%s", dir);
        expect_fail(spec, 1, "train-images-idx3-ubyte.gz", "truncated", NULL);
        uint8_t *bad = malloc(gzn);
        memcpy(bad, gz, gzn);
        for (size_t k = 12; k < gzn - 8; k += 5)
            bad[k] ^= 0x5a;
        write_bytes(dir, "train-images-idx3-ubyte.gz", bad, gzn, 0);
        expect_fail(spec, 1, "train-images-idx3-ubyte.gz", NULL, NULL);
        memcpy(bad, gz, gzn); /* broken CRC in the gzip trailer */
        bad[gzn - 6] ^= 1;
        write_bytes(dir, "train-images-idx3-ubyte.gz", bad, gzn, 0);
        expect_fail(spec, 1, "train-images-idx3-ubyte.gz", NULL, NULL);
        free(bad);
        free(gz);
    }
}

/* Random byte mutations and truncations of a valid set: every load must either succeed with a
 * consistent dataset or fail with a message — never crash (run this under ASan). */
static void test_idx_fuzz(void) {
    char dir[512], spec[600];
    new_dir(dir, sizeof dir);
    write_idx_set(dir, 10, 0, 0);
    snprintf(spec, sizeof spec, "idx:%s", dir);
    size_t ni, nl;
    uint8_t *img = idx_images(NTR, IH, IW, 0, &ni), *lab = idx_labels(NTR, 10, &nl);
    uint8_t *buf = malloc(ni + 64);
    rc_rng r;
    rc_rng_seed(&r, 1234);
    int ok = 0, fail = 0;
    for (int it = 0; it < 300; it++) {
        int target_img = rc_rng_below(&r, 2);
        const uint8_t *src = target_img ? img : lab;
        size_t n = target_img ? ni : nl;
        memcpy(buf, src, n);
        int mode = (int)rc_rng_below(&r, 3);
        if (mode == 0) { /* flip bytes, mostly in the header */
            int k = 1 + (int)rc_rng_below(&r, 4);
            for (int j = 0; j < k; j++) {
                size_t pos =
                    rc_rng_below(&r, 2) ? rc_rng_below(&r, 16) : rc_rng_below(&r, (uint32_t)n);
                buf[pos] = (uint8_t)rc_rng_u64(&r);
            }
        } else if (mode == 1) {
            n = rc_rng_below(&r, (uint32_t)n + 1);
        } else {
            size_t extra = rc_rng_below(&r, 40);
            for (size_t j = 0; j < extra; j++)
                buf[n + j] = (uint8_t)rc_rng_u64(&r);
            n += extra;
        }
        const char *name = target_img ? "train-images-idx3-ubyte" : "train-labels-idx1-ubyte";
        char p[700];
        snprintf(p, sizeof p, "%s/%s.gz", dir, name);
        unlink(p);
        snprintf(p, sizeof p, "%s/%s", dir, name);
        unlink(p);
        int gz = (int)rc_rng_below(&r, 2);
        char fname[128];
        snprintf(fname, sizeof fname, "%s%s", name, gz ? ".gz" : "");
        write_bytes(dir, fname, buf, n, gz);
        rc_dataset d;
        if (rc_dataset_load(spec, 1, &d) == RC_OK) {
            ok++;
            int bad = d.n <= 0 || d.h <= 0 || d.w <= 0 || d.classes < 1 || d.classes > 256;
            for (int i = 0; i < d.n && !bad; i++)
                bad = d.labels[i] < 0 || d.labels[i] >= d.classes;
            CHECK(!bad, "fuzz iteration %d: inconsistent dataset loaded", it);
        } else {
            fail++;
            CHECK(rc_error()[0] != '\0' && has(rc_error(), dir),
                  "fuzz %d: message '%s' names no file", it, rc_error());
        }
        rc_dataset_free(&d);
        /* restore the original file */
        unlink(p);
        snprintf(p, sizeof p, "%s/%s.gz", dir, name);
        unlink(p);
        write_bytes(dir, name, src, target_img ? ni : nl, 0);
    }
    CHECK(fail > 100 && ok > 10, "fuzz mix: %d loaded, %d refused", ok, fail);
    free(buf);
    free(img);
    free(lab);
}

static void test_fashion_taxonomy(void) {
    char dir[512], spec[600];
    new_dir(dir, sizeof dir);
    write_idx_set(dir, 10, 1, 1);
    snprintf(spec, sizeof spec, "fashion-mnist:%s", dir);
    rc_dataset d;
    CHECK(rc_dataset_load(spec, 0, &d) == RC_OK, "%s", rc_error());
    CHECK(d.classes == 10 && d.ncoarse == 4 && d.coarse_of && d.class_names && d.coarse_names,
          "fashion taxonomy present");
    if (d.coarse_of) {
        static const int want[10] = {0, 1, 0, 0, 0, 2, 0, 2, 3, 2};
        for (int k = 0; k < 10; k++)
            CHECK(d.coarse_of[k] == want[k], "coarse_of[%d]", k);
        CHECK(!strcmp(d.class_names[3], "Dress") && !strcmp(d.coarse_names[d.coarse_of[3]], "tops"),
              "Dress is a top");
        CHECK(!strcmp(d.class_names[9], "Ankle boot") &&
                  !strcmp(d.coarse_names[d.coarse_of[9]], "footwear"),
              "Ankle boot is footwear");
        CHECK(!strcmp(d.coarse_names[d.coarse_of[8]], "bags") &&
                  !strcmp(d.coarse_names[d.coarse_of[1]], "bottoms"),
              "bags / bottoms");
    }
    rc_dataset_free(&d);

    /* the bare spec with the environment override */
    const char *old = getenv("RECUR_FASHION_MNIST_DIR");
    char *saved = old ? strdup(old) : NULL;
    setenv("RECUR_FASHION_MNIST_DIR", dir, 1);
    CHECK(rc_dataset_load("fashion-mnist", 1, &d) == RC_OK, "%s", rc_error());
    CHECK(d.n == NTR && has(d.spec, dir) && !strcmp(d.name, "fashion-mnist"), "env override: %s",
          d.spec);
    rc_dataset_free(&d);
    CHECK(rc_dataset_load(NULL, 1, &d) == RC_OK && d.n == NTR, "NULL spec is fashion-mnist");
    rc_dataset_free(&d);
    if (saved) {
        setenv("RECUR_FASHION_MNIST_DIR", saved, 1);
        free(saved);
    } else {
        unsetenv("RECUR_FASHION_MNIST_DIR");
    }
}

static void test_spec_errors(void) {
    expect_fail("imagenet:/x", 1, "unknown kind 'imagenet'", "cifar10:DIR", NULL);
    expect_fail("mnist", 1, "needs a directory", NULL, NULL);
    expect_fail("cifar10:", 1, "empty directory", NULL, NULL);
    expect_fail("cifar100:/nonexistent/dir", 1, "/nonexistent/dir/train.bin", NULL, NULL);
    expect_fail("averyveryveryverylongkindnamethatgoesonandon:/x", 1, "unknown kind", NULL, NULL);
}

/* ---- CIFAR ---------------------------------------------------------------------------------- */

static uint8_t cpix(int g, int k) { return (uint8_t)(g * 13 + k * 5 + (k >> 10) * 17); }

/* count records starting at global index g0; nlab 1 (CIFAR-10) or 2 (CIFAR-100). */
static uint8_t *cifar_records(int g0, int count, int nlab, size_t *len) {
    size_t rec = (size_t)nlab + 3072;
    *len = rec * count;
    uint8_t *b = malloc(*len ? *len : 1);
    for (int r = 0; r < count; r++) {
        int g = g0 + r;
        uint8_t *p = b + rec * r;
        if (nlab == 1) {
            p[0] = (uint8_t)(g % 10);
        } else {
            p[1] = (uint8_t)((g * 3) % 100); /* fine */
            p[0] = (uint8_t)(p[1] % 20);     /* coarse: a consistent made-up map */
        }
        for (int k = 0; k < 3072; k++)
            p[nlab + k] = cpix(g, k);
    }
    return b;
}

static const int c10_counts[5] = {3, 2, 4, 1, 5};

static void write_cifar10(const char *dir) {
    int g = 0;
    for (int f = 0; f < 5; f++) {
        size_t n;
        uint8_t *b = cifar_records(g, c10_counts[f], 1, &n);
        char name[64];
        snprintf(name, sizeof name, "data_batch_%d.bin", f + 1);
        write_bytes(dir, name, b, n, 0);
        free(b);
        g += c10_counts[f];
    }
    size_t n;
    uint8_t *b = cifar_records(1000, 6, 1, &n);
    write_bytes(dir, "test_batch.bin", b, n, 0);
    free(b);
}

static void test_cifar10(void) {
    char dir[512], spec[600];
    new_dir(dir, sizeof dir);
    write_cifar10(dir);
    snprintf(spec, sizeof spec, "cifar10:%s", dir);
    rc_dataset tr, te;
    CHECK(rc_dataset_load(spec, 1, &tr) == RC_OK, "%s", rc_error());
    CHECK(rc_dataset_load(spec, 0, &te) == RC_OK, "%s", rc_error());
    CHECK(tr.n == 15 && te.n == 6 && tr.c == 3 && tr.h == 32 && tr.w == 32 && tr.classes == 10,
          "cifar10 shape n=%d", tr.n);
    CHECK(tr.class_names && !strcmp(tr.class_names[9], "truck") && tr.ncoarse == 0 && !tr.coarse_of,
          "cifar10 metadata");
    int bad = 0;
    for (int i = 0; i < tr.n && tr.n == 15; i++) {
        if (tr.labels[i] != i % 10)
            bad++;
        for (int k = 0; k < 3072; k++)
            bad += tr.pixels[(size_t)i * 3072 + k] != cpix(i, k);
    }
    for (int i = 0; i < te.n && te.n == 6; i++) {
        if (te.labels[i] != (1000 + i) % 10)
            bad++;
        for (int k = 0; k < 3072; k++)
            bad += te.pixels[(size_t)i * 3072 + k] != cpix(1000 + i, k);
    }
    CHECK(bad == 0, "cifar10: %d wrong values", bad);
    CHECK(tr.std[2] > 0.0f && tr.mean[2] > 0.0f, "per-channel stats");
    rc_dataset_free(&tr);
    rc_dataset_free(&te);

    /* errors */
    size_t n;
    uint8_t *b = cifar_records(0, 4, 1, &n);
    uint8_t *b2 = malloc(n + 1);
    memcpy(b2, b, n);
    b2[n] = 0;
    new_dir(dir, sizeof dir);
    write_cifar10(dir);
    write_bytes(dir, "data_batch_3.bin", b2, n + 1, 0);
    snprintf(spec, sizeof spec, "cifar10:%s", dir);
    expect_fail(spec, 1, "data_batch_3.bin", "not a multiple of the 3073-byte record",
                "1 bytes left");
    b[2 * 3073] = 10; /* record 2 label */
    write_bytes(dir, "data_batch_3.bin", b, n, 0);
    expect_fail(spec, 1, "data_batch_3.bin: record 2 (byte offset 6146)", "label 10", "0..9");
    write_bytes(dir, "test_batch.bin", b, 0, 0);
    expect_fail(spec, 0, "test_batch.bin", "empty", NULL);
    char p[700];
    snprintf(p, sizeof p, "%s/data_batch_4.bin", dir);
    unlink(p);
    expect_fail(spec, 1, "data_batch_4.bin", NULL, NULL);
    mkdir(p, 0700);
    expect_fail(spec, 1, "data_batch_4.bin", "not a regular file", NULL);
    free(b);
    free(b2);
}

static void test_cifar100(void) {
    char dir[512], spec[600];
    new_dir(dir, sizeof dir);
    size_t n, nt;
    uint8_t *b = cifar_records(0, 120, 2, &n), *t = cifar_records(0, 6, 2, &nt);
    write_bytes(dir, "train.bin", b, n, 0);
    write_bytes(dir, "test.bin", t, nt, 0);
    free(t);
    snprintf(spec, sizeof spec, "cifar100:%s", dir);
    rc_dataset d, te;
    CHECK(rc_dataset_load(spec, 1, &d) == RC_OK, "%s", rc_error());
    CHECK(d.n == 120 && d.classes == 100 && d.ncoarse == 20 && d.coarse_of && d.class_names &&
              d.coarse_names,
          "cifar100 metadata");
    if (d.coarse_of && d.n == 120) {
        int bad = 0;
        for (int i = 0; i < 120; i++) {
            bad += d.labels[i] != (i * 3) % 100;
            bad += d.pixels[(size_t)i * 3072 + 77] != cpix(i, 77);
        }
        for (int k = 0; k < 100; k++)
            bad += d.coarse_of[k] != k % 20;
        CHECK(bad == 0, "cifar100: %d wrong values", bad);
        CHECK(!strcmp(d.class_names[99], "worm") && !strcmp(d.coarse_names[19], "vehicles_2") &&
                  !strcmp(d.class_names[3], "bear"),
              "cifar100 names");
    }
    /* test split: fine classes never seen there map to -1 */
    CHECK(rc_dataset_load(spec, 0, &te) == RC_OK, "%s", rc_error());
    if (te.coarse_of && te.n == 6) {
        int seen[100] = {0}, bad = 0;
        for (int i = 0; i < 6; i++)
            seen[(i * 3) % 100] = 1;
        for (int k = 0; k < 100; k++)
            bad += te.coarse_of[k] != (seen[k] ? k % 20 : -1);
        CHECK(bad == 0, "cifar100 test coarse_of: %d wrong", bad);
    }
    rc_dataset_free(&te);
    /* a subset copies coarse_of deeply */
    rc_dataset s;
    CHECK(rc_dataset_limit(&d, 3, &s) == RC_OK && s.coarse_of && s.coarse_of != d.coarse_of &&
              s.coarse_of[3] == d.coarse_of[3],
          "subset coarse_of copy");
    rc_dataset_free(&s);
    rc_dataset_free(&d);

    b[105 * 3074 + 0] = 7; /* record 105: fine 15 with coarse 7, record 5 said 15 */
    write_bytes(dir, "train.bin", b, n, 0);
    expect_fail(spec, 1, "record 105", "fine class 15 (camel) has coarse label 7", "record 5 of");
    b[105 * 3074 + 0] = 20;
    write_bytes(dir, "train.bin", b, n, 0);
    expect_fail(spec, 1, "record 105", "coarse label 20", "0..19");
    b[105 * 3074 + 0] = 15;
    b[6 * 3074 + 1] = 100;
    write_bytes(dir, "train.bin", b, n, 0);
    expect_fail(spec, 1, "record 6 (byte offset 18445)", "fine label 100", "0..99");
    char p[700];
    snprintf(p, sizeof p, "%s/test.bin", dir);
    unlink(p);
    expect_fail(spec, 0, "test.bin", NULL, NULL);
    free(b);
}

/* ---- subsets, splits, stats, shapes ---------------------------------------------------------- */

/* An in-memory dataset: n images c x h x w with pixel values from rng (1..255), labels i % 10. */
static void make_mem(rc_dataset *d, int n, int c, int h, int w, uint64_t seed) {
    memset(d, 0, sizeof *d);
    snprintf(d->name, sizeof d->name, "mem");
    snprintf(d->spec, sizeof d->spec, "mem:%d", n);
    d->n = n;
    d->c = c;
    d->h = h;
    d->w = w;
    d->classes = 10;
    d->pixels = malloc((size_t)n * c * h * w);
    d->labels = malloc((size_t)n * sizeof(int));
    rc_rng r;
    rc_rng_seed(&r, seed);
    for (size_t k = 0; k < (size_t)n * c * h * w; k++)
        d->pixels[k] = (uint8_t)(1 + rc_rng_below(&r, 255));
    for (int i = 0; i < n; i++)
        d->labels[i] = i % 10;
    rc_dataset_compute_stats(d);
}

static void test_subset_split(void) {
    rc_dataset d, a, b;
    make_mem(&d, 50, 3, 4, 3, 7);
    d.mean[0] = 0.25f; /* custom stats must be inherited */
    const size_t chw = 36;

    int idx[4] = {5, 5, 49, 0};
    CHECK(rc_dataset_subset(&d, idx, 4, &a) == RC_OK, "%s", rc_error());
    CHECK(a.n == 4 && a.labels[2] == 9 && !memcmp(a.pixels + chw, d.pixels + 5 * chw, chw) &&
              !memcmp(a.pixels + 2 * chw, d.pixels + 49 * chw, chw) && a.mean[0] == 0.25f,
          "subset content");
    rc_dataset_free(&a);
    idx[2] = 50;
    CHECK(rc_dataset_subset(&d, idx, 4, &a) == RC_ERR &&
              has(rc_error(), "index 50 at position 2") && a.pixels == NULL,
          "subset range: %s", rc_error());
    CHECK(rc_dataset_subset(&d, idx, 0, &a) == RC_OK && a.n == 0, "empty subset");
    rc_dataset_free(&a);

    CHECK(rc_dataset_limit(&d, 7, &a) == RC_OK && a.n == 7 && !memcmp(a.pixels, d.pixels, 7 * chw),
          "limit 7");
    rc_dataset_free(&a);
    CHECK(rc_dataset_limit(&d, 1000, &a) == RC_OK && a.n == 50, "limit above n");
    rc_dataset_free(&a);

    CHECK(rc_dataset_split(&d, 12, 99, &a, &b) == RC_OK, "%s", rc_error());
    CHECK(a.n == 38 && b.n == 12 && a.mean[0] == 0.25f && b.mean[0] == 0.25f, "split sizes");
    /* disjoint, covering, original order: match images back to their source index by label+pixels
     */
    int used[50] = {0}, last = -1, order_ok = 1, found_all = 1;
    for (int part = 0; part < 2; part++) {
        rc_dataset *p = part ? &b : &a;
        last = -1;
        for (int i = 0; i < p->n; i++) {
            int src = -1;
            for (int k = 0; k < 50; k++)
                if (!memcmp(p->pixels + i * chw, d.pixels + k * chw, chw))
                    src = k;
            if (src < 0) {
                found_all = 0;
                continue;
            }
            used[src]++;
            if (src <= last)
                order_ok = 0;
            last = src;
        }
    }
    int cover = 1;
    for (int k = 0; k < 50; k++)
        cover &= used[k] == 1;
    CHECK(found_all && cover && order_ok, "split is a partition in original order");
    rc_dataset a2, b2;
    CHECK(rc_dataset_split(&d, 12, 99, &a2, &b2) == RC_OK && !memcmp(b.pixels, b2.pixels, 12 * chw),
          "split deterministic");
    rc_dataset_free(&a2);
    rc_dataset_free(&b2);
    CHECK(rc_dataset_split(&d, 12, 100, &a2, &b2) == RC_OK && memcmp(b.pixels, b2.pixels, 12 * chw),
          "another seed, another split");
    rc_dataset_free(&a2);
    rc_dataset_free(&b2);
    rc_dataset_free(&a);
    rc_dataset_free(&b);
    CHECK(rc_dataset_split(&d, 50, 1, &a, &b) == RC_ERR && has(rc_error(), "0..49"),
          "nval too big");
    CHECK(rc_dataset_split(&d, 0, 1, &a, &b) == RC_OK && a.n == 50 && b.n == 0, "nval 0");
    rc_dataset_free(&a);
    rc_dataset_free(&b);

    /* stats copy / shape checks */
    rc_dataset g;
    make_mem(&g, 3, 1, 28, 28, 1);
    CHECK(rc_dataset_copy_stats(&g, &d) == RC_ERR && has(rc_error(), "3 channels"), "copy stats c");
    rc_dataset g2;
    make_mem(&g2, 3, 1, 28, 28, 2);
    g2.mean[0] = 0.3f;
    g2.std[0] = 0.2f;
    CHECK(rc_dataset_copy_stats(&g, &g2) == RC_OK && g.mean[0] == 0.3f && g.std[0] == 0.2f, "copy");
    CHECK(rc_dataset_check_shape(&g, 1, 28, 28, 10) == RC_OK, "shape ok");
    snprintf(d.spec, sizeof d.spec, "cifar10:/x");
    CHECK(rc_dataset_check_shape(&d, 1, 28, 28, 10) == RC_ERR &&
              has(rc_error(), "dataset cifar10:/x has 3x4x3 images, model expects 1x28x28"),
          "shape message: %s", rc_error());
    CHECK(rc_dataset_check_shape(&d, 3, 4, 3, 100) == RC_ERR && has(rc_error(), "100"), "classes");
    CHECK(rc_dataset_check_shape(&d, 3, 4, 3, 0) == RC_OK, "classes unchecked");
    rc_dataset_free(&g);
    rc_dataset_free(&g2);

    /* constant images: std falls back to 1 */
    make_mem(&g, 4, 1, 2, 2, 3);
    memset(g.pixels, 51, 16);
    rc_dataset_compute_stats(&g);
    CHECK_CLOSE(g.mean[0], 0.2, 1e-6, 1e-7, "constant mean");
    CHECK(g.std[0] == 1.0f, "constant std -> 1");
    rc_dataset_free(&g);
    rc_dataset_free(&d);
}

/* ---- batches -------------------------------------------------------------------------------- */

static float norm(const rc_dataset *d, int ch, uint8_t v) {
    return ((float)v / 255.0f - d->mean[ch]) / d->std[ch];
}

/* Reference: out(ch, oy, ox) for crop offset (dy, dx) and flip, built the slow obvious way. */
static float ref_px(const rc_dataset *d, int i, int ch, int oy, int ox, int pad, int dy, int dx,
                    int flip) {
    int cx = flip ? d->w - 1 - ox : ox;
    int sy = oy + dy - pad, sx = cx + dx - pad;
    if (sy < 0 || sy >= d->h || sx < 0 || sx >= d->w)
        return 0.0f;
    return norm(d, ch, d->pixels[(((size_t)i * d->c + ch) * d->h + sy) * d->w + sx]);
}

static void test_batch_plain(void) {
    rc_dataset d;
    make_mem(&d, 20, 3, 5, 4, 11);
    int idx[6] = {3, 0, 19, 3, 7, 12};
    float x[6 * 60];
    int y[6];
    rc_dataset_batch(&d, idx, 6, NULL, NULL, x, y);
    int bad = 0;
    for (int j = 0; j < 6; j++) {
        bad += y[j] != d.labels[idx[j]];
        for (int k = 0; k < 60; k++)
            bad += fabsf(x[j * 60 + k] - norm(&d, k / 20, d.pixels[idx[j] * 60 + k])) > 1e-5f;
    }
    CHECK(bad == 0, "plain batch: %d wrong", bad);
    /* zero augmentation with an rng: the rng is not touched */
    rc_rng r, r0;
    rc_rng_seed(&r, 5);
    r0 = r;
    rc_augment none = {0, 0};
    rc_dataset_batch(&d, idx, 6, &none, &r, x, NULL);
    CHECK(!memcmp(&r, &r0, sizeof r), "rng untouched without augmentation");
    /* normalised statistics of the whole set are ~N(0,1) per channel */
    int all[20];
    for (int i = 0; i < 20; i++)
        all[i] = i;
    float *xa = malloc(sizeof(float) * 20 * 60);
    rc_dataset_batch(&d, all, 20, NULL, NULL, xa, NULL);
    for (int ch = 0; ch < 3; ch++) {
        double s = 0, s2 = 0;
        for (int i = 0; i < 20; i++)
            for (int k = 0; k < 20; k++) {
                double v = xa[i * 60 + ch * 20 + k];
                s += v;
                s2 += v * v;
            }
        CHECK_CLOSE(s / 400, 0.0, 0, 1e-5, "normalised mean");
        CHECK_CLOSE(s2 / 400, 1.0, 1e-4, 0, "normalised var");
    }
    free(xa);
    rc_dataset_free(&d);
}

static void test_batch_augment(void) {
    rc_dataset d;
    const int C = 3, H = 12, W = 10, N = 400, PAD = 2;
    const int chw = C * H * W;
    make_mem(&d, 60, C, H, W, 21);
    d.mean[0] = 0.5004f; /* no pixel normalises to exactly 0, so padding is recognisable */
    int *idx = malloc(sizeof(int) * N);
    rc_rng r;
    rc_rng_seed(&r, 77);
    for (int j = 0; j < N; j++)
        idx[j] = (int)rc_rng_below(&r, 60);
    float *x1 = malloc(sizeof(float) * N * chw), *x2 = malloc(sizeof(float) * N * chw);
    int *y = malloc(sizeof(int) * N);
    rc_augment aug = {PAD, 1};
    rc_rng ra, rb;
    rc_rng_seed(&ra, 3);
    rb = ra;
    rc_set_threads(1);
    rc_dataset_batch(&d, idx, N, &aug, &ra, x1, y);
    rc_set_threads(4);
    rc_dataset_batch(&d, idx, N, &aug, &rb, x2, NULL);
    CHECK(!memcmp(x1, x2, sizeof(float) * N * chw),
          "same rng state -> identical batch, 1 vs 4 threads");
    CHECK(!memcmp(&ra, &rb, sizeof ra), "same rng advance");
    rc_rng r0;
    rc_rng_seed(&r0, 3);
    CHECK(memcmp(&ra, &r0, sizeof ra), "augmentation advances the rng");
    rc_dataset_batch(&d, idx, N, &aug, &rb, x2, NULL);
    CHECK(memcmp(x1, x2, sizeof(float) * N * chw), "next batch gets new crops");

    /* every image is some crop+flip of its source; the choices are spread out */
    int noff = 2 * PAD + 1, flips = 0, unmatched = 0, ybad = 0;
    int hits[5][5] = {{0}};
    for (int j = 0; j < N; j++) {
        ybad += y[j] != d.labels[idx[j]];
        int found = 0;
        for (int f = 0; f < 2 && !found; f++)
            for (int dy = 0; dy < noff && !found; dy++)
                for (int dx = 0; dx < noff && !found; dx++) {
                    int same = 1;
                    for (int ch = 0; ch < C && same; ch++)
                        for (int oy = 0; oy < H && same; oy++)
                            for (int ox = 0; ox < W && same; ox++)
                                same =
                                    fabsf(x1[(size_t)j * chw + (ch * H + oy) * W + ox] -
                                          ref_px(&d, idx[j], ch, oy, ox, PAD, dy, dx, f)) <= 1e-6f;
                    if (same) {
                        found = 1;
                        flips += f;
                        hits[dy][dx]++;
                    }
                }
        unmatched += !found;
    }
    CHECK(unmatched == 0 && ybad == 0, "%d augmented images match no crop/flip, %d labels",
          unmatched, ybad);
    CHECK(flips > N * 4 / 10 && flips < N * 6 / 10, "flip fraction %d/%d", flips, N);
    int empty = 0;
    for (int a = 0; a < noff; a++)
        for (int b = 0; b < noff; b++)
            empty += hits[a][b] == 0;
    CHECK(empty == 0, "%d crop offsets never drawn", empty);

    /* crop only: no image is flipped; offsets still vary */
    rc_augment crop = {1, 0};
    rc_dataset_batch(&d, idx, 50, &crop, &ra, x1, NULL);
    int mism = 0;
    for (int j = 0; j < 50; j++) {
        int found = 0;
        for (int dy = 0; dy < 3 && !found; dy++)
            for (int dx = 0; dx < 3 && !found; dx++) {
                int same = 1;
                for (int k = 0; k < chw && same; k++) {
                    int ch = k / (H * W), oy = (k / W) % H, ox = k % W;
                    same = fabsf(x1[(size_t)j * chw + k] -
                                 ref_px(&d, idx[j], ch, oy, ox, 1, dy, dx, 0)) <= 1e-6f;
                }
                found = same;
            }
        mism += !found;
    }
    CHECK(mism == 0, "crop-only: %d images are not unflipped crops", mism);
    /* a batch big enough for the OpenMP path: thread count must not change a single value */
    {
        rc_dataset big;
        const int BN = 400, bchw = 3 * 32 * 32;
        make_mem(&big, 64, 3, 32, 32, 5);
        float *b1 = malloc(sizeof(float) * BN * bchw), *b2 = malloc(sizeof(float) * BN * bchw);
        int *bidx = malloc(sizeof(int) * BN);
        for (int j = 0; j < BN; j++)
            bidx[j] = (j * 37) % 64;
        rc_augment a4 = {4, 1};
        rc_rng s1, s2;
        rc_rng_seed(&s1, 9);
        s2 = s1;
        rc_set_threads(1);
        rc_dataset_batch(&big, bidx, BN, &a4, &s1, b1, NULL);
        rc_set_threads(3);
        rc_dataset_batch(&big, bidx, BN, &a4, &s2, b2, NULL);
        CHECK(!memcmp(b1, b2, sizeof(float) * BN * bchw),
              "big batch differs between 1 and 3 threads");
        free(b1);
        free(b2);
        free(bidx);
        rc_dataset_free(&big);
    }
    rc_set_threads(2);
    free(idx);
    free(x1);
    free(x2);
    free(y);
    rc_dataset_free(&d);
}

/* ---- the real Fashion-MNIST ----------------------------------------------------------------- */

static void test_real_fashion_mnist(void) {
    struct stat st;
    const char *env = getenv("RECUR_FASHION_MNIST_DIR");
    const char *dir = (env && env[0]) ? env : RC_FASHION_MNIST_DIR;
    char p[1024];
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte.gz", dir);
    if (stat(p, &st) != 0) {
        printf("  (skipped: %s not found)\n", p);
        return;
    }
    rc_dataset tr, te;
    double t0 = rc_now();
    CHECK(rc_dataset_load("fashion-mnist", 1, &tr) == RC_OK, "%s", rc_error());
    double t1 = rc_now();
    CHECK(rc_dataset_load("fashion-mnist", 0, &te) == RC_OK, "%s", rc_error());
    double t2 = rc_now();
    printf("  fashion-mnist: train loaded in %.3f s, test in %.3f s\n", t1 - t0, t2 - t1);
    CHECK(tr.n == 60000 && te.n == 10000 && tr.c == 1 && tr.h == 28 && tr.w == 28 && te.h == 28 &&
              tr.classes == 10 && tr.ncoarse == 4,
          "fashion-mnist shape %d/%d", tr.n, te.n);
    int cnt_tr[10] = {0}, cnt_te[10] = {0}, bad = 0;
    for (int i = 0; i < tr.n; i++) {
        if (tr.labels[i] < 0 || tr.labels[i] > 9)
            bad++;
        else
            cnt_tr[tr.labels[i]]++;
    }
    for (int i = 0; i < te.n; i++) {
        if (te.labels[i] < 0 || te.labels[i] > 9)
            bad++;
        else
            cnt_te[te.labels[i]]++;
    }
    CHECK(bad == 0, "%d labels out of range", bad);
    for (int k = 0; k < 10; k++)
        CHECK(cnt_tr[k] == 6000 && cnt_te[k] == 1000, "class %d: %d train, %d test", k, cnt_tr[k],
              cnt_te[k]);
    /* the widely quoted Fashion-MNIST training statistics */
    CHECK_CLOSE(tr.mean[0], 0.2860, 0, 2e-3, "train mean");
    CHECK_CLOSE(tr.std[0], 0.3530, 0, 2e-3, "train std");
    CHECK(rc_dataset_copy_stats(&te, &tr) == RC_OK && te.mean[0] == tr.mean[0], "copy stats");

    rc_dataset a, v;
    CHECK(rc_dataset_split(&tr, 5000, 1, &a, &v) == RC_OK && a.n == 55000 && v.n == 5000, "split");
    int idx[128];
    float *x = malloc(sizeof(float) * 128 * 784);
    int y[128];
    rc_rng r;
    rc_rng_seed(&r, 1);
    rc_augment aug = {2, 1};
    double tb = rc_now();
    for (int it = 0; it < 100; it++) {
        for (int j = 0; j < 128; j++)
            idx[j] = (int)rc_rng_below(&r, (uint32_t)a.n);
        rc_dataset_batch(&a, idx, 128, &aug, &r, x, y);
    }
    printf("  batch of 128 (crop 2 + flip): %.1f us\n", (rc_now() - tb) / 100 * 1e6);
    free(x);
    rc_dataset_free(&a);
    rc_dataset_free(&v);
    rc_dataset_free(&tr);
    rc_dataset_free(&te);
}

/* ---- generated tasks (tasks.c) ---------------------------------------------------------------- */

static void test_task_prefix_sums(void) {
    rc_dataset tr = {0}, te = {0}, te2 = {0}, again = {0};
    CHECK(rc_dataset_load("prefix-sums:16", 1, &tr) == RC_OK, "load: %s", rc_error());
    CHECK(rc_dataset_load("prefix-sums:16", 0, &te) == RC_OK, "load: %s", rc_error());
    CHECK(rc_dataset_load("prefix-sums:16:40", 0, &te2) == RC_OK, "load: %s", rc_error());
    CHECK(rc_dataset_load("prefix-sums:16:40", 1, &again) == RC_OK, "load: %s", rc_error());
    CHECK(tr.n == 8000 && te.n == 2000 && tr.dense && tr.c == 1 && tr.h == 1 && tr.w == 16 && tr.classes == 2,
          "shape n %d/%d %dx%dx%d", tr.n, te.n, tr.c, tr.h, tr.w);
    CHECK(te2.w == 40 && te2.n == 2000 && again.w == 16, "test width %d, train width %d", te2.w, again.w);
    CHECK(!memcmp(tr.pixels, again.pixels, (size_t)tr.n * 16), "the same spec gives the same strings");
    /* targets are the running parity; strings are distinct across both splits of one length */
    int bad = 0, dup = 0;
    static unsigned char seen[1 << 16];
    memset(seen, 0, sizeof seen);
    const rc_dataset *sets[2] = {&tr, &te};
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < sets[s]->n; i++) {
            const uint8_t *p = sets[s]->pixels + (size_t)i * 16, *t = sets[s]->targets + (size_t)i * 16;
            int sum = 0, v = 0;
            for (int j = 0; j < 16; j++) {
                sum ^= p[j] == 255;
                bad += (p[j] != 0 && p[j] != 255) || t[j] != sum;
                v |= (p[j] == 255) << j;
            }
            dup += seen[v]++ > 0;
        }
    CHECK(bad == 0 && dup == 0, "%d wrong targets, %d repeated strings", bad, dup);
    CHECK(tr.mean[0] == 0.5f && tr.std[0] == 0.5f, "centred encoding: mean %g std %g", tr.mean[0], tr.std[0]);
    /* batch: bits as -1/+1, targets and an all-ones mask */
    int idx[2] = {3, 7};
    float x[32];
    uint8_t tg[32], mk[32];
    rc_dataset_batch(&tr, idx, 2, NULL, NULL, x, NULL);
    rc_dataset_batch_targets(&tr, idx, 2, tg, mk);
    int ok = 1;
    for (int j = 0; j < 32; j++) {
        const uint8_t p = tr.pixels[(size_t)idx[j / 16] * 16 + j % 16];
        ok &= x[j] == (p ? 1.0f : -1.0f) && mk[j] == 1 && tg[j] == tr.targets[(size_t)idx[j / 16] * 16 + j % 16];
    }
    CHECK(ok, "batch of a dense dataset");
    /* a subset keeps the targets */
    rc_dataset sub = {0};
    CHECK(rc_dataset_subset(&tr, idx, 2, &sub) == RC_OK && sub.dense && sub.targets &&
              !memcmp(sub.targets + 16, tr.targets + 7 * 16, 16),
          "subset targets");
    rc_dataset_free(&sub);
    rc_dataset bogus = {0};
    CHECK(rc_dataset_load("prefix-sums:x", 1, &bogus) == RC_ERR && strstr(rc_error(), "bits"), "%s", rc_error());
    CHECK(rc_dataset_load("prefix-sums:32:2", 1, &bogus) == RC_ERR && strstr(rc_error(), "test bits"), "%s",
          rc_error());
    CHECK(rc_dataset_load("mazes:10", 1, &bogus) == RC_ERR && strstr(rc_error(), "odd"), "%s", rc_error());
    rc_dataset_free(&tr);
    rc_dataset_free(&te);
    rc_dataset_free(&te2);
    rc_dataset_free(&again);
}

/* Walk the target from the green start to the red goal through 2x2 blocks: it must be one simple path. */
static void test_task_mazes(void) {
    static const int sizes[4][2] = {{9, 24}, {13, 32}, {33, 72}, {59, 124}};
    for (int s = 0; s < 4; s++) {
        char spec[32];
        snprintf(spec, sizeof spec, "mazes:9:%d", sizes[s][0]);
        rc_dataset d = {0};
        CHECK(rc_dataset_load(spec, 0, &d) == RC_OK, "load %s: %s", spec, rc_error());
        int S = sizes[s][1];
        CHECK(d.n == 2000 && d.c == 3 && d.h == S && d.w == S && d.mask, "%s: %d x %dx%dx%d", spec, d.n, d.c, d.h, d.w);
        if (d.h != S) {
            rc_dataset_free(&d);
            continue;
        }
        size_t plane = (size_t)S * S;
        int bad = 0;
        for (int i = 0; i < (s < 2 ? 200 : 20); i++) {
            const uint8_t *px = d.pixels + (size_t)i * 3 * plane, *t = d.targets + (size_t)i * plane;
            const uint8_t *mk = d.mask + (size_t)i * plane;
            int ngreen = 0, nred = 0, border = 0, outside = 0, ends = 0;
            for (size_t k = 0; k < plane; k++) {
                int r = px[k], g = px[plane + k], b = px[2 * plane + k];
                ngreen += r == 0 && g == 255 && b == 0;
                nred += r == 255 && g == 0 && b == 0;
                int y = (int)(k / S), x = (int)(k % S);
                if (y == 0 || x == 0 || y == S - 1 || x == S - 1) border += r | g | b;
                outside += t[k] && !mk[k];
                if (t[k] && ((r == 0 && g == 255) || (r == 255 && g == 0))) ends++;
                bad += mk[k] != ((r | g | b) != 0);
            }
            /* path degree on the grid of 2x2 blocks: ends have 1 neighbour on the path, the rest 2 */
            int deg_bad = 0, m = (S - 2) / 2;
            for (int gy = 0; gy < m; gy++)
                for (int gx = 0; gx < m; gx++) {
                    if (!t[(size_t)(1 + 2 * gy) * S + 1 + 2 * gx]) continue;
                    int deg = 0;
                    static const int dy[4] = {-1, 1, 0, 0}, dx[4] = {0, 0, -1, 1};
                    for (int q = 0; q < 4; q++) {
                        int yy = gy + dy[q], xx = gx + dx[q];
                        if (yy >= 0 && xx >= 0 && yy < m && xx < m) deg += t[(size_t)(1 + 2 * yy) * S + 1 + 2 * xx] != 0;
                    }
                    const uint8_t *c = px + (size_t)(1 + 2 * gy) * S + 1 + 2 * gx;
                    int is_end = (c[0] == 0 && c[plane] == 255) || (c[0] == 255 && c[plane] == 0);
                    deg_bad += is_end ? deg != 1 : deg != 2;
                }
            bad += ngreen != 4 || nred != 4 || border || outside || ends != 8 || deg_bad;
        }
        CHECK(bad == 0, "%s: %d bad mazes (start/goal colours, border, mask, path shape)", spec, bad);
        rc_dataset_free(&d);
    }
    rc_dataset a = {0}, b = {0};
    CHECK(rc_dataset_load("mazes:9", 1, &a) == RC_OK && rc_dataset_load("mazes:9:9", 0, &b) == RC_OK, "%s",
          rc_error());
    CHECK(a.n == 8000 && b.n == 2000, "split sizes %d %d", a.n, b.n);
    rc_dataset_free(&a);
    rc_dataset_free(&b);
}

int main(void) {
    snprintf(g_root, sizeof g_root, "/tmp/recur_test_data_XXXXXX");
    if (!mkdtemp(g_root)) {
        perror("mkdtemp");
        return 1;
    }
    rc_set_threads(2);
    RUN_TEST(test_idx_load);
    RUN_TEST(test_idx_prefers_gz);
    RUN_TEST(test_idx_errors);
    RUN_TEST(test_idx_fuzz);
    RUN_TEST(test_fashion_taxonomy);
    RUN_TEST(test_spec_errors);
    RUN_TEST(test_cifar10);
    RUN_TEST(test_cifar100);
    RUN_TEST(test_subset_split);
    RUN_TEST(test_batch_plain);
    RUN_TEST(test_batch_augment);
    RUN_TEST(test_real_fashion_mnist);
    RUN_TEST(test_task_prefix_sums);
    RUN_TEST(test_task_mazes);
    rm_tree(g_root);
    TEST_MAIN_END();
}
