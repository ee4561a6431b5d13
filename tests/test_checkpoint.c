/* test_checkpoint.c — checkpoint round trip (bit-identical params, optimizer state, meta, config),
 * corruption and truncation at every byte, shape/kind/name mismatches, failed saves (tmp path blocked,
 * disk full via /dev/full, read-only directory) leaving the previous file intact, a fuzz loop, and
 * version 1 (its epoch sums in reserved fields; tests/fixtures/ckpt_v1 was written by that code).
 * Graphs are built by hand (no graph.c): each param's w, g, m, v are calloc'd arrays. */
#define _POSIX_C_SOURCE 200809L
#include "test.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "io/checkpoint.h"

static char tmpdir[256];

/* ---- hand-built graphs ---- */

static void add_param(rc_graph *g, const char *name, rc_param_kind kind, int ndim, int d0, int d1, int d2, int d3) {
    g->params = realloc(g->params, (size_t)(g->nparams + 1) * sizeof(rc_param));
    rc_param *p = &g->params[g->nparams++];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->kind = kind;
    p->ndim = ndim;
    int d[4] = {d0, d1, d2, d3};
    p->numel = 1;
    for (int i = 0; i < ndim; i++) p->shape[i] = d[i], p->numel *= (size_t)d[i];
    p->w = calloc(p->numel, sizeof(float));
    p->g = calloc(p->numel, sizeof(float));
    p->m = calloc(p->numel, sizeof(float));
    p->v = calloc(p->numel, sizeof(float));
}

static void free_graph(rc_graph *g) {
    for (int i = 0; i < g->nparams; i++) {
        free(g->params[i].w);
        free(g->params[i].g);
        free(g->params[i].m);
        free(g->params[i].v);
    }
    free(g->params);
    memset(g, 0, sizeof *g);
}

/* The reference model; variant changes one thing: 1 = V1.bu.weight wider, 2 = head.weight missing,
 * 3 = extra head.bias, 4 = V1.bn.t1.gamma is a decayed weight, 5 = V1.bu.weight has rank 2. */
static void make_graph(rc_graph *g, int variant) {
    memset(g, 0, sizeof *g);
    if (variant == 1)
        add_param(g, "V1.bu.weight", RC_PARAM_WEIGHT, 4, 16, 1, 3, 3);
    else if (variant == 5)
        add_param(g, "V1.bu.weight", RC_PARAM_WEIGHT, 2, 8, 9, 0, 0);
    else
        add_param(g, "V1.bu.weight", RC_PARAM_WEIGHT, 4, 8, 1, 3, 3);
    add_param(g, "V1.bn.t1.gamma", variant == 4 ? RC_PARAM_WEIGHT : RC_PARAM_NODECAY, 1, 8, 0, 0, 0);
    add_param(g, "V1.bn.t1.running_mean", RC_PARAM_BUFFER, 1, 8, 0, 0, 0);
    if (variant != 2) add_param(g, "head.weight", RC_PARAM_WEIGHT, 2, 10, 8, 0, 0);
    if (variant == 3) add_param(g, "head.bias", RC_PARAM_NODECAY, 1, 10, 0, 0, 0);
}

static uint64_t lcg_state = 88172645463325252ull;
static uint32_t rnd(void) {
    lcg_state = lcg_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(lcg_state >> 33);
}

/* Arbitrary bit patterns (including NaNs, -0, denormals) to prove the copy is bit-exact. */
static void fill_graph(rc_graph *g, uint32_t salt) {
    for (int i = 0; i < g->nparams; i++) {
        rc_param *p = &g->params[i];
        for (size_t j = 0; j < p->numel; j++) {
            uint32_t a = rnd() ^ salt, b = rnd() ^ salt, c = rnd() ^ salt;
            memcpy(&p->w[j], &a, 4);
            memcpy(&p->m[j], &b, 4);
            memcpy(&p->v[j], &c, 4);
        }
    }
}

static int same_param_data(const rc_param *a, const rc_param *b, int with_state) {
    size_t n = a->numel * sizeof(float);
    if (memcmp(a->w, b->w, n)) return 0;
    if (with_state && (memcmp(a->m, b->m, n) || memcmp(a->v, b->v, n))) return 0;
    return 1;
}

static int same_graph(const rc_graph *a, const rc_graph *b) {
    for (int i = 0; i < a->nparams; i++)
        if (!same_param_data(&a->params[i], &b->params[i], 1)) return 0;
    return 1;
}

/* What a checkpoint stores: w of every param, m and v of trainable ones. */
static int same_stored(const rc_graph *a, const rc_graph *b) {
    for (int i = 0; i < a->nparams; i++)
        if (!same_param_data(&a->params[i], &b->params[i], a->params[i].kind != RC_PARAM_BUFFER)) return 0;
    return 1;
}

static void copy_graph_data(rc_graph *dst, const rc_graph *src) {
    for (int i = 0; i < src->nparams; i++) {
        size_t n = src->params[i].numel * sizeof(float);
        memcpy(dst->params[i].w, src->params[i].w, n);
        memcpy(dst->params[i].m, src->params[i].m, n);
        memcpy(dst->params[i].v, src->params[i].v, n);
    }
}

static rc_ckpt_meta make_meta(void) {
    rc_ckpt_meta m;
    memset(&m, 0, sizeof m);
    m.epoch = 3;
    m.step_in_epoch = 117;
    m.global_step = 3 * 469 + 117;
    rc_rng_seed(&m.rng, 42);
    rc_rng_seed(&m.shuffle_rng, 43);
    m.seed = 0xDEADBEEFCAFEF00Dull;
    m.threads = 7;
    m.best_acc = 0.8765432101234567;
    m.epoch_loss_sum = 271.828125;
    m.epoch_correct = 3001;
    m.epoch_seen = 117 * 64;
    m.reserved[0] = -5;
    m.reserved[RC_CKPT_RESERVED - 1] = INT64_MAX;
    return m;
}

static int same_meta(const rc_ckpt_meta *a, const rc_ckpt_meta *b) {
    return a->epoch == b->epoch && a->step_in_epoch == b->step_in_epoch && a->global_step == b->global_step &&
           memcmp(a->rng.s, b->rng.s, sizeof a->rng.s) == 0 &&
           memcmp(a->shuffle_rng.s, b->shuffle_rng.s, sizeof a->shuffle_rng.s) == 0 && a->seed == b->seed &&
           a->threads == b->threads && memcmp(&a->best_acc, &b->best_acc, sizeof(double)) == 0 &&
           memcmp(&a->epoch_loss_sum, &b->epoch_loss_sum, sizeof(double)) == 0 &&
           a->epoch_correct == b->epoch_correct && a->epoch_seen == b->epoch_seen &&
           memcmp(a->reserved, b->reserved, sizeof a->reserved) == 0;
}

static const char *config_text = "[model]\nname = test\nunroll = lockstep\n\n[train]\nepochs = 10\nlr = 0.002\n"
                                 "\n[area V1]\nchannels = 8\niterations = 4\ntied = yes\n";

static void path_in_tmp(char *out, size_t cap, const char *name) { snprintf(out, cap, "%s/%s", tmpdir, name); }

static unsigned char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    size_t got = fread(b, 1, (size_t)n, f);
    fclose(f);
    *len = got;
    return b;
}

static int write_all(const char *path, const void *b, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    int ok = fwrite(b, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

static int file_exists(const char *path) {
    struct stat sb;
    return lstat(path, &sb) == 0;
}

/* A valid checkpoint of the reference graph, in memory. */
static unsigned char *valid_buffer(rc_graph *g, size_t *len) {
    char path[512];
    path_in_tmp(path, sizeof path, "valid.ckpt");
    make_graph(g, 0);
    fill_graph(g, 0);
    rc_ckpt_meta meta = make_meta();
    if (rc_checkpoint_save(path, g, config_text, &meta) != RC_OK) {
        CHECK(0, "save failed: %s", rc_error());
        return NULL;
    }
    unsigned char *b = read_all(path, len);
    CHECK(b != NULL, "cannot read back %s", path);
    return b;
}

static void test_round_trip(void) {
    char path[512], tmp[600];
    path_in_tmp(path, sizeof path, "model.ckpt");
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    rc_graph a, b;
    make_graph(&a, 0);
    make_graph(&b, 0);
    fill_graph(&a, 0);
    rc_ckpt_meta meta = make_meta(), got;
    memset(&got, 0, sizeof got);
    CHECK(rc_checkpoint_save(path, &a, config_text, &meta) == RC_OK, "save: %s", rc_error());
    CHECK(!file_exists(tmp), "temporary file left behind");
    CHECK(rc_checkpoint_load(path, &b, &got) == RC_OK, "load: %s", rc_error());
    for (int i = 0; i < a.nparams; i++) {
        const rc_param *pa = &a.params[i], *pb = &b.params[i];
        int trainable = pa->kind != RC_PARAM_BUFFER;
        CHECK(same_param_data(pa, pb, trainable), "param %s differs after the round trip", pa->name);
        if (!trainable) { /* a buffer's m, v are not stored: left as they were (zero) */
            for (size_t j = 0; j < pb->numel; j++)
                CHECK(pb->m[j] == 0.0f && pb->v[j] == 0.0f, "buffer %s got optimizer state", pb->name);
        }
    }
    CHECK(same_meta(&meta, &got), "meta differs after the round trip");

    char *text = NULL;
    CHECK(rc_checkpoint_read_config(path, &text) == RC_OK, "read_config: %s", rc_error());
    CHECK(text && strcmp(text, config_text) == 0, "config text differs: [%s]", text ? text : "(null)");
    free(text);

    /* meta only (no graph) */
    rc_ckpt_meta got2;
    memset(&got2, 0, sizeof got2);
    CHECK(rc_checkpoint_load(path, NULL, &got2) == RC_OK, "meta-only load: %s", rc_error());
    CHECK(same_meta(&meta, &got2), "meta-only load differs");

    /* overwrite in place with new values, then an empty config */
    fill_graph(&a, 0x5a5a5a5au);
    meta.epoch = 4;
    CHECK(rc_checkpoint_save(path, &a, NULL, &meta) == RC_OK, "second save: %s", rc_error());
    CHECK(rc_checkpoint_load(path, &b, &got) == RC_OK, "second load: %s", rc_error());
    CHECK(same_param_data(&a.params[0], &b.params[0], 1) && got.epoch == 4, "second round trip differs");
    CHECK(rc_checkpoint_read_config(path, &text) == RC_OK && text && text[0] == '\0', "empty config expected");
    free(text);

    /* a large config round-trips; one over 1 MiB is refused at save time */
    size_t big = 300000;
    char *cfg = malloc(RC_CKPT_MAX_CONFIG + 2);
    for (size_t i = 0; i < RC_CKPT_MAX_CONFIG + 1; i++) cfg[i] = (char)('a' + i % 26);
    cfg[big] = '\0';
    CHECK(rc_checkpoint_save(path, &a, cfg, &meta) == RC_OK, "big config save: %s", rc_error());
    CHECK(rc_checkpoint_read_config(path, &text) == RC_OK && text && strcmp(text, cfg) == 0, "big config differs");
    free(text);
    cfg[big] = 'x';
    cfg[RC_CKPT_MAX_CONFIG + 1] = '\0';
    CHECK(rc_checkpoint_save(path, &a, cfg, &meta) == RC_ERR, "a config over 1 MiB must be refused");
    CHECK(strstr(rc_error(), "config text") != NULL, "message: %s", rc_error());
    CHECK(!file_exists(tmp), "temporary file left behind after a refused save");
    free(cfg);

    /* parsing from memory gives the same */
    size_t len;
    unsigned char *buf = read_all(path, &len);
    rc_graph c;
    make_graph(&c, 0);
    char *t2 = NULL;
    CHECK(buf && rc_checkpoint_parse(buf, len, "mem", &c, NULL, &t2) == RC_OK, "parse: %s", rc_error());
    CHECK(same_stored(&b, &c), "parse from memory differs from load");
    CHECK(t2 && strlen(t2) == big, "parsed config length");
    free(t2);
    free(buf);
    free_graph(&a);
    free_graph(&b);
    free_graph(&c);
    remove(path);
}

static void test_corruption(void) {
    rc_graph ref, g;
    size_t len = 0;
    unsigned char *buf = valid_buffer(&ref, &len);
    if (!buf) return;
    make_graph(&g, 0);
    fill_graph(&g, 0x1234u); /* sentinel contents that must survive every failed load */
    rc_graph snap;
    make_graph(&snap, 0);
    copy_graph_data(&snap, &g);
    rc_ckpt_meta meta;
    memset(&meta, 0x77, sizeof meta);
    unsigned char meta_snap[sizeof meta];
    memcpy(meta_snap, &meta, sizeof meta);

    int bad_flip = 0, bad_msg = 0, bad_trunc = 0, bad_trunc_msg = 0, changed = 0;
    unsigned char *m = malloc(len);
    for (size_t off = 0; off < len; off++) {
        memcpy(m, buf, len);
        m[off] ^= (unsigned char)(1u << (off % 8));
        char *text = (char *)1;
        if (rc_checkpoint_parse(m, len, "model.ckpt", &g, &meta, &text) != RC_ERR) bad_flip++;
        const char *want = off < 8 ? "magic" : off < 12 ? "version" : "checksum";
        if (!strstr(rc_error(), want) || !strstr(rc_error(), "model.ckpt")) {
            if (bad_msg++ == 0) fprintf(stderr, "  flip at %zu: unexpected message: %s\n", off, rc_error());
        }
        if (text != NULL) changed++;
    }
    for (size_t n = 0; n < len; n++) {
        char *text = NULL;
        if (rc_checkpoint_parse(buf, n, "model.ckpt", &g, &meta, &text) != RC_ERR) bad_trunc++;
        /* past the header the message names the byte offset where the structure breaks */
        if (n >= 16 && !strstr(rc_error(), "byte offset")) {
            if (bad_trunc_msg++ == 0) fprintf(stderr, "  truncated to %zu: message without offset: %s\n", n, rc_error());
        }
    }
    if (!same_graph(&g, &snap)) changed++;
    if (memcmp(meta_snap, &meta, sizeof meta)) changed++;
    CHECK(bad_flip == 0, "%d single-bit flips were accepted", bad_flip);
    CHECK(bad_msg == 0, "%d flips gave an unexpected message", bad_msg);
    CHECK(bad_trunc == 0, "%d truncations were accepted", bad_trunc);
    CHECK(bad_trunc_msg == 0, "%d truncations gave no byte offset", bad_trunc_msg);
    CHECK(changed == 0, "a failed load changed the graph, meta or config output");

    /* trailing garbage */
    unsigned char *longer = malloc(len + 3);
    memcpy(longer, buf, len);
    memset(longer + len, 0xAB, 3);
    CHECK(rc_checkpoint_parse(longer, len + 3, "model.ckpt", &g, NULL, NULL) == RC_ERR, "trailing bytes accepted");
    free(longer);

    /* the same through a file on disk: a truncated file names the offset */
    char path[512];
    path_in_tmp(path, sizeof path, "trunc.ckpt");
    CHECK(write_all(path, buf, len / 2), "cannot write %s", path);
    CHECK(rc_checkpoint_load(path, &g, NULL) == RC_ERR, "truncated file accepted");
    CHECK(strstr(rc_error(), path) && strstr(rc_error(), "byte offset"), "message: %s", rc_error());
    remove(path);
    CHECK(rc_checkpoint_load(path, &g, NULL) == RC_ERR && strstr(rc_error(), path), "missing file: %s", rc_error());
    CHECK(rc_checkpoint_load(tmpdir, &g, NULL) == RC_ERR, "a directory must not load");
    CHECK(same_graph(&g, &snap), "graph changed by a failed load from disk");

    /* a structurally wrong file with a valid checksum: absurd name length */
    memcpy(m, buf, len);
    size_t rec0 = 12 + 4 + strlen(config_text) + (3 * 8 + 64 + 8 + 8 + 8 + 3 * 8 + RC_CKPT_RESERVED * 8) + 4;
    m[rec0] = 0xFF;
    m[rec0 + 1] = 0xFF;
    uint32_t crc = (uint32_t)crc32(0L, m, (uInt)(len - 4));
    for (int i = 0; i < 4; i++) m[len - 4 + i] = (unsigned char)(crc >> (8 * i));
    CHECK(rc_checkpoint_parse(m, len, "model.ckpt", &g, NULL, NULL) == RC_ERR, "absurd name length accepted");
    char want[128];
    snprintf(want, sizeof want, "byte offset %zu", rec0);
    CHECK(strstr(rc_error(), want) && strstr(rc_error(), "name"), "message: %s", rc_error());

    free(m);
    free(buf);
    free_graph(&ref);
    free_graph(&g);
    free_graph(&snap);
}

static void expect_mismatch(const unsigned char *buf, size_t len, int variant, const char *want) {
    rc_graph g, snap;
    make_graph(&g, variant);
    make_graph(&snap, variant);
    fill_graph(&g, 0x99u);
    copy_graph_data(&snap, &g);
    CHECK(rc_checkpoint_parse(buf, len, "model.ckpt", &g, NULL, NULL) == RC_ERR, "variant %d accepted", variant);
    CHECK(strstr(rc_error(), want) != NULL, "variant %d: message\n    %s\n  does not contain\n    %s", variant,
          rc_error(), want);
    CHECK(same_graph(&g, &snap), "variant %d: graph changed by a failed load", variant);
    free_graph(&g);
    free_graph(&snap);
}

static void test_mismatch(void) {
    rc_graph ref;
    size_t len = 0;
    unsigned char *buf = valid_buffer(&ref, &len);
    if (!buf) return;
    expect_mismatch(buf, len, 1,
                    "model.ckpt: param V1.bu.weight has shape 8x1x3x3 in the checkpoint, 16x1x3x3 in the model");
    expect_mismatch(buf, len, 5, "param V1.bu.weight has shape 8x1x3x3 in the checkpoint, 8x9 in the model");
    expect_mismatch(buf, len, 2, "model.ckpt: param head.weight is in the checkpoint but not in the model");
    expect_mismatch(buf, len, 3, "model.ckpt: param head.bias of the model is missing from the checkpoint");
    expect_mismatch(buf, len, 4, "param V1.bn.t1.gamma is a weight without decay in the checkpoint, a weight "
                                 "(decayed) in the model");

    /* a file that holds the same name twice */
    rc_graph dup;
    memset(&dup, 0, sizeof dup);
    add_param(&dup, "x.weight", RC_PARAM_WEIGHT, 1, 4, 0, 0, 0);
    add_param(&dup, "x.weight", RC_PARAM_WEIGHT, 1, 4, 0, 0, 0);
    char path[512];
    path_in_tmp(path, sizeof path, "dup.ckpt");
    rc_ckpt_meta meta = make_meta();
    CHECK(rc_checkpoint_save(path, &dup, "", &meta) == RC_OK, "save: %s", rc_error());
    rc_graph one;
    memset(&one, 0, sizeof one);
    add_param(&one, "x.weight", RC_PARAM_WEIGHT, 1, 4, 0, 0, 0);
    CHECK(rc_checkpoint_load(path, &one, NULL) == RC_ERR && strstr(rc_error(), "appears twice"), "duplicate: %s",
          rc_error());
    remove(path);
    free_graph(&dup);
    free_graph(&one);
    free_graph(&ref);
    free(buf);
}

/* A failed save leaves the previous checkpoint intact and loadable, and no temporary file. */
static void check_previous_intact(const char *path, const rc_graph *prev) {
    rc_graph g;
    make_graph(&g, 0);
    CHECK(rc_checkpoint_load(path, &g, NULL) == RC_OK, "previous checkpoint no longer loads: %s", rc_error());
    CHECK(same_stored(&g, prev), "previous checkpoint changed");
    free_graph(&g);
}

static void test_failed_saves(void) {
    char sub[300], path[512], tmp[600];
    snprintf(sub, sizeof sub, "%s/run", tmpdir);
    CHECK(mkdir(sub, 0700) == 0, "mkdir %s: %s", sub, strerror(errno));
    snprintf(path, sizeof path, "%s/model.ckpt", sub);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    rc_graph a, b;
    make_graph(&a, 0);
    make_graph(&b, 0);
    fill_graph(&a, 1);
    fill_graph(&b, 2);
    rc_ckpt_meta meta = make_meta();
    CHECK(rc_checkpoint_save(path, &a, config_text, &meta) == RC_OK, "save: %s", rc_error());

    /* 1. the temporary path is blocked by a directory (works even as root) */
    CHECK(mkdir(tmp, 0700) == 0, "mkdir %s", tmp);
    CHECK(rc_checkpoint_save(path, &b, config_text, &meta) == RC_ERR, "save over a blocked tmp path succeeded");
    CHECK(strstr(rc_error(), path) && strstr(rc_error(), strerror(EISDIR)), "message: %s", rc_error());
    check_previous_intact(path, &a);
    CHECK(rmdir(tmp) == 0, "the blocking directory was removed or replaced");

    /* 2. disk full: the temporary file is a link to /dev/full */
    if (file_exists("/dev/full") && symlink("/dev/full", tmp) == 0) {
        CHECK(rc_checkpoint_save(path, &b, config_text, &meta) == RC_ERR, "save to a full disk succeeded");
        CHECK(strstr(rc_error(), path) && strstr(rc_error(), strerror(ENOSPC)), "message: %s", rc_error());
        CHECK(!file_exists(tmp), "temporary file left behind after ENOSPC");
        check_previous_intact(path, &a);
    } else {
        printf("  (skipped the /dev/full check)\n");
    }

    /* 3. a read-only directory (only meaningful when not root: root ignores the mode) */
    if (geteuid() != 0) {
        CHECK(chmod(sub, 0500) == 0, "chmod");
        CHECK(rc_checkpoint_save(path, &b, config_text, &meta) == RC_ERR, "save into a read-only directory succeeded");
        CHECK(strstr(rc_error(), path) && strstr(rc_error(), strerror(EACCES)), "message: %s", rc_error());
        chmod(sub, 0700);
        check_previous_intact(path, &a);
    }

    /* 4. a directory that does not exist */
    char nowhere[600];
    snprintf(nowhere, sizeof nowhere, "%s/no/such/dir/model.ckpt", tmpdir);
    CHECK(rc_checkpoint_save(nowhere, &b, config_text, &meta) == RC_ERR, "save under a missing directory succeeded");
    CHECK(strstr(rc_error(), nowhere) && strstr(rc_error(), strerror(ENOENT)), "message: %s", rc_error());
    CHECK(rc_checkpoint_save("/proc/recur-test.ckpt", &b, config_text, &meta) == RC_ERR, "save into /proc succeeded");

    /* and the next good save replaces the file */
    CHECK(rc_checkpoint_save(path, &b, config_text, &meta) == RC_OK, "save after failures: %s", rc_error());
    check_previous_intact(path, &b);
    remove(path);
    rmdir(sub);
    free_graph(&a);
    free_graph(&b);
}

static void test_fuzz(void) {
    rc_graph ref, g, snap;
    size_t len = 0;
    unsigned char *buf = valid_buffer(&ref, &len);
    if (!buf) return;
    make_graph(&g, 0);
    make_graph(&snap, 0);
    fill_graph(&g, 0x4242u);
    copy_graph_data(&snap, &g);
    size_t cap = len + 64;
    unsigned char *m = malloc(cap);
    int ok = 0, failed_changed = 0, no_msg = 0;
    for (int it = 0; it < 500; it++) {
        memcpy(m, buf, len);
        size_t n = len;
        int kind = (int)(rnd() % 4);
        int edits = 1 + (int)(rnd() % 6);
        for (int e = 0; e < edits; e++) {
            /* bias edits toward the structured head of the file (lengths, meta, first records) */
            size_t off = (rnd() % 2) ? rnd() % n : rnd() % (n < 700 ? n : 700);
            switch (kind) {
            case 0: m[off] = (unsigned char)rnd(); break;
            case 1: m[off] = (rnd() % 2) ? 0xFF : 0x00; break;
            case 2: /* overwrite a 32-bit word with a large or tiny value */
                if (off + 4 <= n) {
                    uint32_t vals[5] = {0xFFFFFFFFu, 0x7FFFFFFFu, 0x40000000u, 64u, 0u};
                    uint32_t v = vals[rnd() % 5];
                    for (int i = 0; i < 4; i++) m[off + i] = (unsigned char)(v >> (8 * i));
                }
                break;
            default: /* cut or extend */
                n = (rnd() % 2) ? rnd() % n + 1 : RC_MIN(cap, n + rnd() % 16);
                break;
            }
        }
        if (n >= 4 && rnd() % 10 < 7) { /* most of the time, make the checksum valid again */
            uint32_t crc = (uint32_t)crc32(0L, m, (uInt)(n - 4));
            for (int i = 0; i < 4; i++) m[n - 4 + i] = (unsigned char)(crc >> (8 * i));
        }
        char *text = NULL;
        rc_ckpt_meta meta;
        if (rc_checkpoint_parse(m, n, "fuzz.ckpt", &g, &meta, &text) == RC_OK) {
            ok++;
            free(text);
            copy_graph_data(&snap, &g); /* a successful load may legitimately change values */
        } else {
            if (!same_graph(&g, &snap) || text != NULL) failed_changed++;
            if (!strstr(rc_error(), "fuzz.ckpt")) no_msg++;
        }
    }
    CHECK(failed_changed == 0, "%d failed fuzz loads changed the graph", failed_changed);
    CHECK(no_msg == 0, "%d fuzz errors without the file name", no_msg);
    printf("  fuzz: %d of 500 mutations still loaded (value-only edits)\n", ok);
    free(m);
    free(buf);
    free_graph(&ref);
    free_graph(&g);
    free_graph(&snap);
}

/* Patch a u64 at off and make the checksum match again. */
static void patch_u64(unsigned char *b, size_t len, size_t off, uint64_t x) {
    for (int i = 0; i < 8; i++) b[off + i] = (unsigned char)(x >> (8 * i));
    uint32_t crc = (uint32_t)crc32(0L, b, (uInt)(len - 4));
    for (int i = 0; i < 4; i++) b[len - 4 + i] = (unsigned char)(crc >> (8 * i));
}
static void patch_version(unsigned char *b, size_t len, uint32_t v) {
    for (int i = 0; i < 4; i++) b[8 + i] = (unsigned char)(v >> (8 * i));
    uint32_t crc = (uint32_t)crc32(0L, b, (uInt)(len - 4));
    for (int i = 0; i < 4; i++) b[len - 4 + i] = (unsigned char)(crc >> (8 * i));
}

/* Version 2 writes the epoch sums as named fields; version 1 (same bytes, the sums in reserved[0..2]) loads
 * with them; other versions and out-of-range sums are refused naming the field. */
static void test_versions(void) {
    rc_graph ref, g;
    size_t len = 0;
    unsigned char *buf = valid_buffer(&ref, &len);
    if (!buf) return;
    make_graph(&g, 0);
    rc_ckpt_meta want = make_meta(), got;
    CHECK(buf[8] == 2 && buf[9] == 0 && buf[10] == 0 && buf[11] == 0, "written format version %u", (unsigned)buf[8]);
    memset(&got, 0, sizeof got);
    CHECK(rc_checkpoint_parse(buf, len, "v2.ckpt", &g, &got, NULL) == RC_OK, "v2: %s", rc_error());
    CHECK(same_meta(&want, &got) && got.version == 2, "v2 meta differs (version %u)", got.version);

    unsigned char *m = malloc(len);
    memcpy(m, buf, len);
    patch_version(m, len, 1);
    memset(&got, 0, sizeof got);
    CHECK(rc_checkpoint_parse(m, len, "v1.ckpt", &g, &got, NULL) == RC_OK, "v1: %s", rc_error());
    CHECK(same_meta(&want, &got) && got.version == 1, "v1 meta differs (version %u)", got.version);
    CHECK(same_stored(&ref, &g), "v1 params differ");
    for (uint32_t v = 0; v < 5; v += 3) {
        memcpy(m, buf, len);
        patch_version(m, len, v);
        CHECK(rc_checkpoint_parse(m, len, "vx.ckpt", &g, &got, NULL) == RC_ERR, "version %u accepted", v);
        CHECK(strstr(rc_error(), "version") && strstr(rc_error(), "vx.ckpt"), "message: %s", rc_error());
    }

    /* the sums' ranges, named as each version names them */
    const size_t sums = 12 + 4 + strlen(config_text) + 3 * 8 + 64 + 8 + 8 + 8;
    static const struct {
        size_t at;
        uint64_t value;
        const char *v2, *v1;
    } bad[] = {{0, 0x7ff8000000000000ull, "epoch_loss_sum", "reserved[0]"},
               {0, 0xfff0000000000000ull, "epoch_loss_sum", "reserved[0]"},
               {8, 117 * 64 + 1, "epoch_correct", "reserved[1]"},
               {8, (uint64_t)-1, "epoch_correct", "reserved[1]"},
               {16, 3000, "epoch_correct", "reserved[1]"}, /* fewer seen than right */
               {16, (uint64_t)-64, "epoch_seen", "reserved[2]"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        for (int v = 1; v <= 2; v++) {
            memcpy(m, buf, len);
            if (v == 1) patch_version(m, len, 1);
            patch_u64(m, len, sums + bad[i].at, bad[i].value);
            memset(&got, 0x55, sizeof got);
            CHECK(rc_checkpoint_parse(m, len, "sums.ckpt", &g, &got, NULL) == RC_ERR, "bad sum %zu (v%d) accepted", i, v);
            CHECK(strstr(rc_error(), v == 1 ? bad[i].v1 : bad[i].v2) && strstr(rc_error(), "sums.ckpt"),
                  "bad sum %zu (v%d): message: %s", i, v, rc_error());
        }
    }
    free(m);
    free(buf);
    free_graph(&ref);
    free_graph(&g);
}

/* tests/fixtures/ckpt_v1: checkpoints written by the version-1 code (tests/test_trainer.sh resumes it):
 * model.ckpt stopped after step 4 of epoch 2 (8 steps of 32 images per epoch), final.ckpt at the end. */
static void test_v1_fixture(void) {
    rc_ckpt_meta mid, fin;
    CHECK(rc_checkpoint_load("tests/fixtures/ckpt_v1/model.ckpt", NULL, &mid) == RC_OK, "fixture: %s", rc_error());
    CHECK(rc_checkpoint_load("tests/fixtures/ckpt_v1/final.ckpt", NULL, &fin) == RC_OK, "fixture: %s", rc_error());
    CHECK(mid.version == 1 && fin.version == 1, "fixture versions %u, %u", mid.version, fin.version);
    CHECK(mid.epoch == 1 && mid.step_in_epoch == 4 && mid.global_step == 12, "fixture position %ld %ld %ld",
          mid.epoch, mid.step_in_epoch, mid.global_step);
    double mean = mid.epoch_loss_sum / (mid.epoch_seen > 0 ? (double)mid.epoch_seen : 1.0);
    CHECK(mid.epoch_seen == 128 && mid.epoch_correct >= 1 && mid.epoch_correct <= 128 && mean > 1.5 && mean < 3.5,
          "fixture sums: loss %.17g correct %ld seen %ld", mid.epoch_loss_sum, mid.epoch_correct, mid.epoch_seen);
    CHECK(fin.epoch == 2 && fin.step_in_epoch == 0 && fin.epoch_seen == 0 && fin.epoch_correct == 0 &&
              fin.epoch_loss_sum == 0.0,
          "fixture end-of-run sums not zero");
    for (int i = 0; i < RC_CKPT_RESERVED; i++) CHECK(mid.reserved[i] == 0, "fixture reserved[%d]", i);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/recur-ckpt-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        fprintf(stderr, "mkdtemp failed: %s\n", strerror(errno));
        return 1;
    }
    RUN_TEST(test_round_trip);
    RUN_TEST(test_corruption);
    RUN_TEST(test_mismatch);
    RUN_TEST(test_failed_saves);
    RUN_TEST(test_fuzz);
    RUN_TEST(test_versions);
    RUN_TEST(test_v1_fixture);
    char p[512];
    path_in_tmp(p, sizeof p, "valid.ckpt");
    remove(p);
    rmdir(tmpdir);
    TEST_MAIN_END();
}
