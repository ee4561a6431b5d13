/* files.h — small file and text helpers shared by the trainer, the experiments and the CLI:
 * a growable text buffer, atomic whole-file writes, mkdir -p, and reading a small text file. */
#ifndef RC_IO_FILES_H
#define RC_IO_FILES_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/common.h"

/* A growable NUL-terminated text buffer; zero-initialise, append with rc_sb_printf, free(buf). */
typedef struct {
    char *buf;
    size_t len, cap;
} rc_strbuf;

void rc_sb_printf(rc_strbuf *s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Write text to path atomically (tmp file in the same directory, fsync, rename, fsync directory):
 * on any failure the previous file at path is untouched. */
rc_status rc_write_file_atomic(const char *path, const char *text, size_t len);

/* mkdir -p: create path and its missing parents; fails if path exists and is not a directory. */
rc_status rc_mkdirs(const char *path);

/* The whole file as a NUL-terminated string, or NULL if it cannot be opened or is larger than
 * max_bytes. *len_out (if not NULL) gets its length. */
char *rc_read_text_file(const char *path, size_t max_bytes, size_t *len_out);

/* A file written as a stream into PATH.tmp and renamed onto PATH only when complete (the .npy writer, the
 * exports, eval's predictions): a kill or a full disk leaves PATH as it was. */
typedef struct {
    FILE *f;
    char *path, *tmp;
    uint64_t written; /* bytes so far */
} rc_atomic_file;

/* Create PATH.tmp (nothing is left behind on failure). */
rc_status rc_atomic_open(rc_atomic_file *o, const char *path);
/* Append bytes; a short write (full disk, I/O error) fails naming PATH and the cause. */
rc_status rc_atomic_write(rc_atomic_file *o, const void *data, size_t bytes);
/* Flush, fsync, close and rename onto PATH, then fsync the directory. On failure the tmp file is removed
 * and PATH is untouched. The file is released either way. */
rc_status rc_atomic_commit(rc_atomic_file *o);
/* Give up: close and remove the tmp file (safe on a zeroed or released file). */
void rc_atomic_abort(rc_atomic_file *o);

#endif
