/* fuzz_util.h — helpers shared by the fuzz targets (fuzz/fuzz_*.c): a per-process scratch directory
 * (in /dev/shm when it exists) for readers that take a path, whole-file writes, and the invariant check
 * every target applies to an error: the message is non-empty, one line, and names the input. */
#ifndef RC_FUZZ_UTIL_H
#define RC_FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/common.h"

/* (each target defines _POSIX_C_SOURCE before its first include: mkdtemp, setenv) */

/* Abort (a crash the fuzzer reports) with a message; for broken invariants. */
static inline void fz_die(const char *what, const char *detail) {
    fprintf(stderr, "fuzz invariant broken: %s: %s\n", what, detail ? detail : "");
    abort();
}

/* The last error must name `name` and be one line. */
static inline void fz_check_error(const char *name) {
    const char *e = rc_error();
    if (!e[0]) fz_die("error without a message", "");
    if (name && !strstr(e, name)) fz_die("error message does not name the input", e);
    if (strchr(e, '\n')) fz_die("error message spans several lines", e);
}

static char fz_dir_path[256];
static char fz_files[8][320];
static int fz_nfiles;

static inline void fz_cleanup(void) {
    for (int i = 0; i < fz_nfiles; i++) unlink(fz_files[i]);
    if (fz_dir_path[0]) rmdir(fz_dir_path);
}

/* A scratch directory for this process, removed at exit. */
static inline const char *fz_dir(void) {
    if (fz_dir_path[0]) return fz_dir_path;
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : (getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    snprintf(fz_dir_path, sizeof fz_dir_path, "%s/recur-fuzz-XXXXXX", base);
    if (!mkdtemp(fz_dir_path)) fz_die("mkdtemp", fz_dir_path);
    atexit(fz_cleanup);
    return fz_dir_path;
}

/* Write n bytes to DIR/name (replacing it); an empty name list entry is remembered for cleanup. */
static inline void fz_write(const char *name, const uint8_t *p, size_t n) {
    char path[320];
    snprintf(path, sizeof path, "%s/%s", fz_dir(), name);
    int known = 0;
    for (int i = 0; i < fz_nfiles; i++) known |= !strcmp(fz_files[i], path);
    if (!known && fz_nfiles < 8) snprintf(fz_files[fz_nfiles++], sizeof fz_files[0], "%s", path);
    FILE *f = fopen(path, "wb");
    if (!f) fz_die("cannot create", path);
    if (n && fwrite(p, 1, n, f) != n) fz_die("cannot write", path);
    if (fclose(f)) fz_die("cannot close", path);
}

/* Remove DIR/name if it exists. */
static inline void fz_remove(const char *name) {
    char path[320];
    snprintf(path, sizeof path, "%s/%s", fz_dir(), name);
    unlink(path);
}

#endif
