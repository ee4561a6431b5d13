/* cifar.c — the CIFAR binary readers behind "cifar10:DIR" (data_batch_1..5.bin / test_batch.bin,
 * records of label + 3072 pixel bytes) and "cifar100:DIR" (train.bin / test.bin, records of coarse
 * label + fine label + 3072 bytes). Pixels are stored R plane, G plane, B plane, 32x32 each, which
 * is already our CHW layout. File sizes are checked (multiple of the record size, within limits)
 * before anything is allocated; labels are range-checked record by record. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "io/dataset.h"

#define CIFAR_PATH_MAX 4096
#define CIFAR_SIDE 32
#define CIFAR_PIXELS (3 * CIFAR_SIDE * CIFAR_SIDE)
#define CIFAR_CHUNK 256 /* records per fread */

typedef struct {
    char path[CIFAR_PATH_MAX];
    uint64_t records;
} cifar_file;

/* Name, stat and size-check one file. nlab: label bytes per record (1 or 2). */
static rc_status cifar_probe(cifar_file *cf, const char *dir, const char *base, int nlab) {
    const uint64_t rec = (uint64_t)nlab + CIFAR_PIXELS;
    int k = snprintf(cf->path, sizeof cf->path, "%s/%s", dir, base);
    if (k < 0 || (size_t)k >= sizeof cf->path)
        return rc_fail("dataset directory path is too long (over %d bytes): %.200s...",
                       CIFAR_PATH_MAX, dir);
    struct stat st;
    if (stat(cf->path, &st) != 0)
        return rc_fail("cannot open %s: %s", cf->path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return rc_fail("%s: not a regular file", cf->path);
    uint64_t size = (uint64_t)st.st_size;
    if (size == 0)
        return rc_fail("%s: empty file, expected records of %llu bytes", cf->path,
                       (unsigned long long)rec);
    if (size % rec != 0)
        return rc_fail("%s: size %llu bytes is not a multiple of the %llu-byte record (%d label "
                       "byte%s + %d pixels); %llu whole records and %llu bytes left over",
                       cf->path, (unsigned long long)size, (unsigned long long)rec, nlab,
                       nlab == 1 ? "" : "s", CIFAR_PIXELS, (unsigned long long)(size / rec),
                       (unsigned long long)(size % rec));
    cf->records = size / rec;
    if (cf->records > RC_DATA_MAX_ITEMS)
        return rc_fail("%s: %llu records, over the limit of %d (RC_DATA_MAX_ITEMS)", cf->path,
                       (unsigned long long)cf->records, RC_DATA_MAX_ITEMS);
    return RC_OK;
}

/* CIFAR-100 consistency state: the coarse group of each fine class and where it was first seen. */
typedef struct {
    int coarse_of[100];
    uint64_t first_rec[100];
    const char *first_path[100];
} cifar100_map;

/* Read cf's records into pixels/labels (starting at image `first`), checking labels. */
static rc_status cifar_read(const cifar_file *cf, int nlab, int classes, int first, uint8_t *pixels,
                            int *labels, cifar100_map *map) {
    const size_t rec = (size_t)nlab + CIFAR_PIXELS;
    FILE *f = fopen(cf->path, "rb");
    if (!f)
        return rc_fail("cannot open %s: %s", cf->path, strerror(errno));
    uint8_t *buf = malloc(rec * CIFAR_CHUNK);
    if (!buf) {
        fclose(f);
        return rc_fail("%s: out of memory", cf->path);
    }
    rc_status st = RC_OK;
    uint64_t done = 0;
    while (done < cf->records && st == RC_OK) {
        size_t want = (size_t)RC_MIN(cf->records - done, (uint64_t)CIFAR_CHUNK);
        size_t got = fread(buf, 1, want * rec, f);
        if (got != want * rec) {
            st =
                rc_fail("%s: truncated while reading: expected %llu bytes (%llu records), the data "
                        "ends at byte offset %llu%s",
                        cf->path, (unsigned long long)(cf->records * rec),
                        (unsigned long long)cf->records, (unsigned long long)(done * rec + got),
                        ferror(f) ? " (read error)" : " (file changed since it was sized?)");
            break;
        }
        for (size_t k = 0; k < want; k++) {
            const uint8_t *r = buf + k * rec;
            const uint64_t ri = done + k;
            const unsigned long long off = (unsigned long long)(ri * rec);
            const int fine = r[nlab - 1];
            if (fine >= classes) {
                st = rc_fail("%s: record %llu (byte offset %llu): %slabel %d is out of range 0..%d",
                             cf->path, (unsigned long long)ri, off + (unsigned)(nlab - 1),
                             nlab == 2 ? "fine " : "", fine, classes - 1);
                break;
            }
            if (map) {
                const int coarse = r[0];
                if (coarse >= 20) {
                    st = rc_fail("%s: record %llu (byte offset %llu): coarse label %d is out of "
                                 "range 0..19",
                                 cf->path, (unsigned long long)ri, off, coarse);
                    break;
                }
                if (map->coarse_of[fine] < 0) {
                    map->coarse_of[fine] = coarse;
                    map->first_rec[fine] = ri;
                    map->first_path[fine] = cf->path;
                } else if (map->coarse_of[fine] != coarse) {
                    st = rc_fail(
                        "%s: record %llu (byte offset %llu): fine class %d (%s) has coarse "
                        "label %d, but record %llu of %s gave it coarse label %d",
                        cf->path, (unsigned long long)ri, off, fine, rc_cifar100_classes[fine],
                        coarse, (unsigned long long)map->first_rec[fine], map->first_path[fine],
                        map->coarse_of[fine]);
                    break;
                }
            }
            const size_t img = (size_t)first + (size_t)ri;
            labels[img] = fine;
            memcpy(pixels + img * CIFAR_PIXELS, r + nlab, CIFAR_PIXELS);
        }
        done += want;
    }
    if (st == RC_OK && fgetc(f) != EOF)
        st = rc_fail(
            "%s: unexpected data after byte offset %llu (the file grew since it was sized?)",
            cf->path, (unsigned long long)(cf->records * rec));
    free(buf);
    fclose(f);
    return st;
}

static rc_status cifar_load(const char *dir, const char *kind, const char *const *bases, int nfiles,
                            int nlab, int classes, int train_split, rc_dataset *out) {
    memset(out, 0, sizeof *out);
    cifar_file files[5];
    RC_ASSERT(nfiles <= 5);
    uint64_t total = 0;
    for (int i = 0; i < nfiles; i++) {
        if (cifar_probe(&files[i], dir, bases[i], nlab) != RC_OK)
            return RC_ERR;
        total += files[i].records;
    }
    if (total > RC_DATA_MAX_ITEMS)
        return rc_fail(
            "dataset %s:%s: %llu records in all, over the limit of %d (RC_DATA_MAX_ITEMS)", kind,
            dir, (unsigned long long)total, RC_DATA_MAX_ITEMS);
    if (total * CIFAR_PIXELS > RC_DATA_MAX_BYTES)
        return rc_fail("dataset %s:%s: %llu images = %llu pixel bytes, over the limit of %llu "
                       "(RC_DATA_MAX_BYTES)",
                       kind, dir, (unsigned long long)total,
                       (unsigned long long)(total * CIFAR_PIXELS),
                       (unsigned long long)RC_DATA_MAX_BYTES);
    uint8_t *pixels = malloc((size_t)total * CIFAR_PIXELS);
    int *labels = malloc((size_t)total * sizeof(int));
    int *coarse = nlab == 2 ? malloc(100 * sizeof(int)) : NULL;
    cifar100_map *map = nlab == 2 ? malloc(sizeof *map) : NULL;
    rc_status st = RC_OK;
    if (!pixels || !labels || (nlab == 2 && (!coarse || !map))) {
        st = rc_fail("dataset %s:%s: out of memory for %llu images", kind, dir,
                     (unsigned long long)total);
        goto done;
    }
    if (map)
        for (int k = 0; k < 100; k++)
            map->coarse_of[k] = -1;
    int first = 0;
    for (int i = 0; i < nfiles && st == RC_OK; i++) {
        st = cifar_read(&files[i], nlab, classes, first, pixels, labels, map);
        first += (int)files[i].records;
    }
    if (st != RC_OK)
        goto done;

    snprintf(out->name, sizeof out->name, "%s", kind);
    snprintf(out->spec, sizeof out->spec, "%s:%s", kind, dir);
    out->train = train_split ? 1 : 0;
    out->n = (int)total;
    out->c = 3;
    out->h = out->w = CIFAR_SIDE;
    out->classes = classes;
    out->pixels = pixels;
    out->labels = labels;
    if (nlab == 2) {
        memcpy(coarse, map->coarse_of, 100 * sizeof(int)); /* -1 for fine classes never seen */
        out->coarse_of = coarse;
        out->ncoarse = 20;
        out->class_names = rc_cifar100_classes;
        out->coarse_names = rc_cifar100_superclasses;
        coarse = NULL;
    } else {
        out->class_names = rc_cifar10_classes;
    }
    pixels = NULL;
    labels = NULL;
    rc_dataset_compute_stats(out);
done:
    free(pixels);
    free(labels);
    free(coarse);
    free(map);
    return st;
}

rc_status rc_dataset_load_cifar10(const char *dir, int train_split, rc_dataset *out) {
    RC_ASSERT(dir && out);
    static const char *const train[5] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                         "data_batch_4.bin", "data_batch_5.bin"};
    static const char *const test[1] = {"test_batch.bin"};
    return cifar_load(dir, "cifar10", train_split ? train : test, train_split ? 5 : 1, 1, 10,
                      train_split, out);
}

rc_status rc_dataset_load_cifar100(const char *dir, int train_split, rc_dataset *out) {
    RC_ASSERT(dir && out);
    static const char *const train[1] = {"train.bin"};
    static const char *const test[1] = {"test.bin"};
    return cifar_load(dir, "cifar100", train_split ? train : test, 1, 2, 100, train_split, out);
}
