/* checkpoint.h — binary training checkpoints: effective config text, resume metadata (epoch, step,
 * rng states), and every param's values with its optimizer state. Written atomically (tmp file,
 * fsync, rename, fsync of the directory); loaded fully and validated before anything is applied. */

/* File format, version 2, all integers and floats little-endian:
 *   u8[8]  magic "RCKPT\0\0\1"
 *   u32    format version (RC_CKPT_VERSION = 2; version 1 is read too)
 *   u32    config text length L (<= RC_CKPT_MAX_CONFIG), then L bytes of text (no NUL)
 *   meta   i64 epoch, i64 step_in_epoch, i64 global_step, u64 rng[4], u64 shuffle_rng[4], u64 seed,
 *          i64 threads, f64 best_acc (IEEE bits),
 *          f64 epoch_loss_sum (IEEE bits, finite), i64 epoch_correct (0..epoch_seen), i64 epoch_seen (>= 0),
 *          i64 reserved[RC_CKPT_RESERVED]
 *   u32    number of params P
 *   P x    u32 name length n (1..63), n bytes of name (printable ASCII), u32 kind (rc_param_kind), u32 ndim (1..4),
 *          u32 dims[ndim] (each >= 1, product <= 1e9), then f32 w[numel], and for kind != BUFFER
 *          f32 m[numel], f32 v[numel]
 *   u32    CRC-32 (zlib crc32, the ISO-HDLC polynomial) of every preceding byte
 * Version 1 has the same bytes; its meta ends in i64 reserved[8], of which the trainer kept the three
 * epoch sums in reserved[0..2] (loss sum bits, correct, seen): version 1 files load with those as the
 * named sums and reserved[3..7] as reserved[0..4]. */
#ifndef RC_CHECKPOINT_H
#define RC_CHECKPOINT_H

#include "base/common.h"
#include "core/graph.h"
#include "base/rng.h"

#define RC_CKPT_VERSION 2u /* written; 1 and 2 are read */
#define RC_CKPT_MAX_CONFIG (1u << 20)
#define RC_CKPT_RESERVED 5

typedef struct {
    long epoch;         /* completed epochs */
    long step_in_epoch; /* steps done in the current epoch */
    long global_step;   /* optimizer steps done so far (the next step's t is global_step + 1) */
    rc_rng rng;         /* data / augmentation stream, as of now */
    rc_rng shuffle_rng; /* shuffle stream as of the current epoch's start (the permutation is redrawn) */
    uint64_t seed;
    int threads;
    double best_acc;
    /* running sums of the current epoch, so that a resumed epoch reports what the uninterrupted one would
     * (zero at an epoch's end) */
    double epoch_loss_sum; /* sum over its steps of the step's mean loss x the global batch */
    long epoch_correct;    /* training images classified right (the final readout) */
    long epoch_seen;       /* training images seen */
    int64_t reserved[RC_CKPT_RESERVED]; /* stored and restored verbatim; zero them */
    unsigned version;   /* on load: the file's format version; ignored on save */
} rc_ckpt_meta;

/* Write g's params (w; m and v for trainable ones), the config text (may be NULL = empty) and meta to
 * path, atomically via "path.tmp". On failure path is untouched and the tmp file removed. */
rc_status rc_checkpoint_save(const char *path, const rc_graph *g, const char *config_text, const rc_ckpt_meta *meta);

/* Read and validate path; on success copy params into g (if not NULL; its params must match the
 * file's exactly: names, kinds, shapes) and meta (if not NULL). On failure nothing is changed. */
rc_status rc_checkpoint_load(const char *path, rc_graph *g, rc_ckpt_meta *meta);

/* The config text stored in path, NUL-terminated, malloc'd (caller frees). */
rc_status rc_checkpoint_read_config(const char *path, char **text);

/* Parse a checkpoint held in memory (display_name is used in messages). Any of g, meta, config_text
 * may be NULL. On success fills what was asked for (*config_text malloc'd); on failure changes
 * nothing (and sets *config_text to NULL). Safe on arbitrary bytes. */
rc_status rc_checkpoint_parse(const void *buf, size_t len, const char *display_name, rc_graph *g, rc_ckpt_meta *meta,
                              char **config_text);

#endif
