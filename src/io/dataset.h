/* dataset.h — image classification datasets held in memory as uint8 pixels + int labels:
 * loading (Fashion-MNIST / MNIST / generic IDX, CIFAR-10, CIFAR-100, NumPy .npy), subsets and validation
 * splits, per-channel normalisation statistics, class taxonomies, and augmented batch assembly.
 * Readers live in idx.c, cifar.c and npyset.c; everything else in dataset.c. */
#ifndef RC_DATASET_H
#define RC_DATASET_H

#include <stdint.h>

#include "base/common.h"
#include "base/rng.h"

/* Limits checked against every file header BEFORE anything is allocated from it. */
#define RC_DATA_MAX_ITEMS 10000000     /* images (or labels) per file / per split */
#define RC_DATA_MAX_SIDE 4096          /* image height and width */
#define RC_DATA_MAX_CHANNELS 3         /* mean/std arrays are sized for this */
#define RC_DATA_MAX_BYTES (1ULL << 32) /* pixel bytes per split (4 GiB) */

#define RC_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

/* One split of a dataset. Pixels are stored as loaded, NCHW, 0..255; normalisation happens in
 * rc_dataset_batch. Owned memory: pixels, labels, coarse_of (freed by rc_dataset_free). The name
 * tables point to static strings and are never freed. */
typedef struct {
    char name[64];   /* kind: "fashion-mnist", "mnist", "idx", "cifar10", "cifar100", "npy" */
    char spec[512];  /* the spec it was loaded from, for messages (e.g. "cifar10:/data/c10") */
    int train;       /* 1: training split, 0: test split */
    int n, c, h, w;  /* images, channels, height, width */
    int classes;     /* labels are in [0, classes) */
    uint8_t *pixels; /* n*c*h*w, image i at pixels + i*c*h*w, planes R,G,B for colour */
    int *labels;     /* n entries */
    int ncoarse;     /* number of coarse groups, 0 if the dataset has no taxonomy */
    int *coarse_of;  /* classes entries: class -> coarse group (-1 if unknown), or NULL */
    const char *const *class_names;  /* classes entries, or NULL */
    const char *const *coarse_names; /* ncoarse entries, or NULL */
    /* Per-channel statistics of pixel/255 used by rc_dataset_batch: x = (p/255 - mean) / std.
     * rc_dataset_load computes them over the split it loads; to normalise a test split with the
     * training statistics (what you want), call rc_dataset_copy_stats(&test, &train). Subsets and
     * splits inherit the statistics of their source. Unused channels hold mean 0, std 1. */
    float mean[RC_DATA_MAX_CHANNELS], std[RC_DATA_MAX_CHANNELS];
    /* Dense tasks (src/io/tasks.c): a target class per position instead of one per image. targets holds
     * n*h*w classes (image i's map at targets + i*h*w); mask (NULL: every position counts) holds n*h*w
     * flags, 1 where the position enters the loss and the "solved" test. labels are then all 0. */
    int dense;
    uint8_t *targets;
    uint8_t *mask;
} rc_dataset;

/* Load one split. spec (NULL or "" means "fashion-mnist"):
 *   "fashion-mnist"      gzip IDX files in $RECUR_FASHION_MNIST_DIR, else RC_FASHION_MNIST_DIR
 *   "fashion-mnist:DIR"  the same from DIR (10 classes, 4 coarse groups, class names)
 *   "mnist:DIR"          train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz],
 *                        t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]; 10 classes
 *   "idx:DIR"            the same files; classes = 1 + the largest label in the training labels
 * file "cifar10:DIR"        data_batch_1..5.bin (train), test_batch.bin (test) "cifar100:DIR"
 * train.bin, test.bin; fine labels, coarse_of from the file's pairs For IDX files the .gz name is
 * preferred when both exist; either name may hold plain or gzip bytes.
 *   "npy:IMAGES.npy,LABELS.npy[,TEST_IMAGES.npy,TEST_LABELS.npy]"  NumPy arrays (npyset.c): images
 *        uint8 (0..255) or float32 (0..1, stored as round(255 v); other values are an error), 3-D
 *        (N, H, W) = one channel, or 4-D: NHWC when the last dimension is 1 or 3 and the second is
 *        not, else NCHW; labels a 1-D integer array of N values >= 0; classes = 1 + the largest
 *        training label. Without the test pair the test split is an error. Paths hold no commas.
 * On failure *out is left empty (safe to free) and rc_error() names the file and the problem. */
rc_status rc_dataset_load(const char *spec, int train_split, rc_dataset *out);
void rc_dataset_free(rc_dataset *d);
/* The split a trained model is evaluated on (eval, features, the experiments): the test split (train_split
 * 0) normalised with the training split's statistics, as in training, or the training split (1); limit > 0
 * keeps its first limit images. On failure *out is left empty. */
rc_status rc_dataset_load_eval(const char *spec, int train_split, int limit, rc_dataset *out);

/* The readers behind rc_dataset_load. kind is "fashion-mnist", "mnist" or "idx". */
rc_status rc_dataset_load_idx(const char *dir, const char *kind, int train_split, rc_dataset *out);
rc_status rc_dataset_load_cifar10(const char *dir, int train_split, rc_dataset *out);
rc_status rc_dataset_load_cifar100(const char *dir, int train_split, rc_dataset *out);
/* Generated algorithmic tasks (tasks.c): kind "prefix-sums" or "mazes", args the text after the first
 * ':' ("32" or "32:48"); spec is the whole spec, for messages. */
rc_status rc_dataset_load_task(const char *spec, const char *kind, const char *args, int train_split,
                               rc_dataset *out);
/* list: "IMAGES.npy,LABELS.npy[,TEST_IMAGES.npy,TEST_LABELS.npy]" (the spec after "npy:"). */
rc_status rc_dataset_load_npy(const char *list, int train_split, rc_dataset *out);

/* Copy of the images src[idx[0..n-1]] (indices checked, repeats allowed), with src's metadata and
 * statistics. */
rc_status rc_dataset_subset(const rc_dataset *src, const int *idx, int n, rc_dataset *out);
/* Copy of the first min(nmax, src->n) images (the CLI's --limit N). nmax >= 0. */
rc_status rc_dataset_limit(const rc_dataset *src, int nmax, rc_dataset *out);
/* The same in place: d keeps its first min(nmax, d->n) images (on failure d is unchanged). */
rc_status rc_dataset_truncate(rc_dataset *d, int nmax);
/* Held-out validation split: a permutation seeded by seed picks nval images for *val and leaves
 * the rest in *train; each part keeps the original order. 0 <= nval < full->n. Both inherit
 * full's statistics. */
rc_status rc_dataset_split(const rc_dataset *full, int nval, uint64_t seed, rc_dataset *train,
                           rc_dataset *val);

/* Recompute d's per-channel mean/std over its own images (std of a constant channel is set to 1).
 */
void rc_dataset_compute_stats(rc_dataset *d);
/* dst uses src's statistics (same channel count required). */
rc_status rc_dataset_copy_stats(rc_dataset *dst, const rc_dataset *src);

/* Error unless d has c x h x w images and exactly `classes` classes (classes <= 0: not checked),
 * e.g. "dataset cifar10:/x has 3x32x32 images, model expects 1x28x28". */
rc_status rc_dataset_check_shape(const rc_dataset *d, int c, int h, int w, int classes);

/* Augmentation for rc_dataset_batch. All zero (or a NULL pointer) means none. */
typedef struct {
    int crop_pad; /* pad each side by this many pixels, then crop h x w at a random offset */
    int flip;     /* nonzero: mirror left-right with probability 1/2 */
} rc_augment;

/* Assemble a batch: x (n, c, h, w) normalised float, y (n) labels (y may be NULL). Dense datasets take
 * no augmentation (it would move the input against its target map; asserted).
 * Padding for the random crop has value 0 in normalised space, i.e. the dataset's mean colour.
 * The crop offset and flip of every image come from one 64-bit draw of rng (made only when some
 * augmentation is on; rng may be NULL otherwise), so the result depends only on the rng state, not
 * on the thread count. Indices must be in range (asserted). Allocates nothing. */
void rc_dataset_batch(const rc_dataset *d, const int *idx, int n, const rc_augment *aug,
                      rc_rng *rng, float *x, int *y);

/* Dense datasets: image idx[j]'s target map into tgt (n*h*w) and its loss mask into mask (n*h*w, all
 * 1 where the dataset has none); mask may be NULL. Indices must be in range (asserted). */
void rc_dataset_batch_targets(const rc_dataset *d, const int *idx, int n, uint8_t *tgt, uint8_t *mask);

/* Built-in class and taxonomy tables. */
extern const char *const rc_fashion_mnist_classes[10];
/* Fashion-MNIST coarse taxonomy, 4 groups:
 *   0 tops     : T-shirt/top 0, Pullover 2, Dress 3, Coat 4, Shirt 6
 *                (Dress goes with tops: a one-piece upper-body garment)
 *   1 bottoms  : Trouser 1
 *   2 footwear : Sandal 5, Sneaker 7, Ankle boot 9
 *   3 bags     : Bag 8 */
extern const char *const rc_fashion_mnist_groups[4];
extern const int rc_fashion_mnist_coarse_of[10];
extern const char *const rc_cifar10_classes[10];
extern const char *const rc_cifar100_classes[100]; /* fine labels, in label order */
extern const char *const rc_cifar100_superclasses[20];

#endif
