/* dataset.c — dataset spec parsing and dispatch, subsets / limits / validation splits, per-channel
 * statistics, shape checks, augmented batch assembly, and the built-in class-name and taxonomy
 * tables. The file readers are in idx.c (IDX, gzip or plain) and cifar.c (CIFAR-10/100 binary). */
#include "io/dataset.h"

#include <math.h>
#include <string.h>

/* ---- built-in tables ------------------------------------------------------------------------ */

const char *const rc_fashion_mnist_classes[10] = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                                  "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                                  "Bag",         "Ankle boot"};
const char *const rc_fashion_mnist_groups[4] = {"tops", "bottoms", "footwear", "bags"};
/* class:                                     0  1  2  3  4  5  6  7  8  9 */
const int rc_fashion_mnist_coarse_of[10] = {0, 1, 0, 0, 0, 2, 0, 2, 3, 2};

const char *const rc_cifar10_classes[10] = {"airplane", "automobile", "bird",  "cat",  "deer",
                                            "dog",      "frog",       "horse", "ship", "truck"};

const char *const rc_cifar100_classes[100] = {
    "apple",       "aquarium_fish", "baby",      "bear",       "beaver",       "bed",
    "bee",         "beetle",        "bicycle",   "bottle",     "bowl",         "boy",
    "bridge",      "bus",           "butterfly", "camel",      "can",          "castle",
    "caterpillar", "cattle",        "chair",     "chimpanzee", "clock",        "cloud",
    "cockroach",   "couch",         "crab",      "crocodile",  "cup",          "dinosaur",
    "dolphin",     "elephant",      "flatfish",  "forest",     "fox",          "girl",
    "hamster",     "house",         "kangaroo",  "keyboard",   "lamp",         "lawn_mower",
    "leopard",     "lion",          "lizard",    "lobster",    "man",          "maple_tree",
    "motorcycle",  "mountain",      "mouse",     "mushroom",   "oak_tree",     "orange",
    "orchid",      "otter",         "palm_tree", "pear",       "pickup_truck", "pine_tree",
    "plain",       "plate",         "poppy",     "porcupine",  "possum",       "rabbit",
    "raccoon",     "ray",           "road",      "rocket",     "rose",         "sea",
    "seal",        "shark",         "shrew",     "skunk",      "skyscraper",   "snail",
    "snake",       "spider",        "squirrel",  "streetcar",  "sunflower",    "sweet_pepper",
    "table",       "tank",          "telephone", "television", "tiger",        "tractor",
    "train",       "trout",         "tulip",     "turtle",     "wardrobe",     "whale",
    "willow_tree", "wolf",          "woman",     "worm"};

const char *const rc_cifar100_superclasses[20] = {"aquatic_mammals",
                                                  "fish",
                                                  "flowers",
                                                  "food_containers",
                                                  "fruit_and_vegetables",
                                                  "household_electrical_devices",
                                                  "household_furniture",
                                                  "insects",
                                                  "large_carnivores",
                                                  "large_man-made_outdoor_things",
                                                  "large_natural_outdoor_scenes",
                                                  "large_omnivores_and_herbivores",
                                                  "medium_mammals",
                                                  "non-insect_invertebrates",
                                                  "people",
                                                  "reptiles",
                                                  "small_mammals",
                                                  "trees",
                                                  "vehicles_1",
                                                  "vehicles_2"};

/* ---- load / free ---------------------------------------------------------------------------- */

rc_status rc_dataset_load(const char *spec, int train_split, rc_dataset *out) {
    RC_ASSERT(out);
    memset(out, 0, sizeof *out);
    if (!spec || !spec[0])
        spec = "fashion-mnist";
    const char *colon = strchr(spec, ':');
    size_t klen = colon ? (size_t)(colon - spec) : strlen(spec);
    const char *dir = colon ? colon + 1 : NULL;
    char kind[32];
    if (klen >= sizeof kind)
        klen = sizeof kind - 1; /* an over-long kind cannot match any below */
    memcpy(kind, spec, klen);
    kind[klen] = '\0';

    static const char *const known =
        "fashion-mnist, fashion-mnist:DIR, mnist:DIR, idx:DIR, cifar10:DIR, cifar100:DIR, "
        "npy:IMAGES.npy,LABELS.npy[,TEST_IMAGES.npy,TEST_LABELS.npy], prefix-sums:BITS[:TEST_BITS], "
        "mazes:SIZE[:TEST_SIZE]";
    if (!strcmp(kind, "prefix-sums") || !strcmp(kind, "mazes"))
        return rc_dataset_load_task(spec, kind, dir ? dir : "", train_split, out);
    int is_idx = !strcmp(kind, "fashion-mnist") || !strcmp(kind, "mnist") || !strcmp(kind, "idx");
    int is_c10 = !strcmp(kind, "cifar10"), is_c100 = !strcmp(kind, "cifar100"), is_npy = !strcmp(kind, "npy");
    if (!is_idx && !is_c10 && !is_c100 && !is_npy)
        return rc_fail("dataset '%s': unknown kind '%s' (known: %s)", spec, kind, known);
    if (dir && !dir[0])
        return rc_fail("dataset '%s': empty directory after ':'", spec);
    if (!dir) {
        if (strcmp(kind, "fashion-mnist"))
            return rc_fail("dataset '%s': needs a directory, e.g. '%s:/path/to/dir'", spec, kind);
        const char *env = getenv("RECUR_FASHION_MNIST_DIR");
        dir = (env && env[0]) ? env : RC_FASHION_MNIST_DIR;
    }
    if (is_npy)
        return rc_dataset_load_npy(dir, train_split, out);
    if (is_idx)
        return rc_dataset_load_idx(dir, kind, train_split, out);
    if (is_c10)
        return rc_dataset_load_cifar10(dir, train_split, out);
    return rc_dataset_load_cifar100(dir, train_split, out);
}

void rc_dataset_free(rc_dataset *d) {
    if (!d)
        return;
    free(d->pixels);
    free(d->labels);
    free(d->coarse_of);
    free(d->targets);
    free(d->mask);
    memset(d, 0, sizeof *d);
}

/* ---- statistics ----------------------------------------------------------------------------- */

void rc_dataset_compute_stats(rc_dataset *d) {
    RC_ASSERT(d && d->c >= 1 && d->c <= RC_DATA_MAX_CHANNELS);
    for (int ch = 0; ch < RC_DATA_MAX_CHANNELS; ch++) {
        d->mean[ch] = 0.0f;
        d->std[ch] = 1.0f;
    }
    if (d->n <= 0)
        return;
    const int c = d->c, n = d->n;
    const size_t hw = (size_t)d->h * (size_t)d->w;
    /* Histogram per channel: integer counts, so the parallel reduction is exact and deterministic.
     */
    uint64_t hist[RC_DATA_MAX_CHANNELS][256];
    memset(hist, 0, sizeof hist);
#pragma omp parallel if ((size_t)n * c * hw >= ((size_t)1 << 20))
    {
        uint64_t local[RC_DATA_MAX_CHANNELS][256];
        memset(local, 0, sizeof local);
#pragma omp for schedule(static)
        for (int i = 0; i < n; i++) {
            const uint8_t *img = d->pixels + (size_t)i * c * hw;
            for (int ch = 0; ch < c; ch++) {
                const uint8_t *p = img + (size_t)ch * hw;
                uint64_t *hc = local[ch];
                for (size_t k = 0; k < hw; k++)
                    hc[p[k]]++;
            }
        }
#pragma omp critical(rc_dataset_stats)
        for (int ch = 0; ch < c; ch++)
            for (int v = 0; v < 256; v++)
                hist[ch][v] += local[ch][v];
    }
    const double count = (double)n * (double)hw;
    for (int ch = 0; ch < c; ch++) {
        uint64_t s1 = 0, s2 = 0;
        for (uint64_t v = 0; v < 256; v++) {
            s1 += v * hist[ch][v];
            s2 += v * v * hist[ch][v];
        }
        double mean = (double)s1 / count / 255.0;
        double var = (double)s2 / count / (255.0 * 255.0) - mean * mean;
        double sd = var > 0.0 ? sqrt(var) : 0.0;
        d->mean[ch] = (float)mean;
        d->std[ch] = sd > 1e-6 ? (float)sd : 1.0f;
    }
}

rc_status rc_dataset_copy_stats(rc_dataset *dst, const rc_dataset *src) {
    RC_ASSERT(dst && src);
    if (dst->c != src->c)
        return rc_fail("cannot copy normalisation statistics from dataset %s (%d channels) to %s "
                       "(%d channels)",
                       src->spec, src->c, dst->spec, dst->c);
    memcpy(dst->mean, src->mean, sizeof dst->mean);
    memcpy(dst->std, src->std, sizeof dst->std);
    return RC_OK;
}

rc_status rc_dataset_check_shape(const rc_dataset *d, int c, int h, int w, int classes) {
    RC_ASSERT(d);
    if (d->c != c || d->h != h || d->w != w)
        return rc_fail("dataset %s has %dx%dx%d images, model expects %dx%dx%d", d->spec, d->c,
                       d->h, d->w, c, h, w);
    if (classes > 0 && d->classes != classes)
        return rc_fail("dataset %s has %d classes, model expects %d", d->spec, d->classes, classes);
    return RC_OK;
}

/* ---- subsets -------------------------------------------------------------------------------- */

rc_status rc_dataset_subset(const rc_dataset *src, const int *idx, int n, rc_dataset *out) {
    RC_ASSERT(src && out && out != src);
    memset(out, 0, sizeof *out);
    if (n < 0)
        return rc_fail("dataset %s: subset of negative size %d", src->spec, n);
    if (n > 0 && !idx)
        return rc_fail("dataset %s: subset of %d images with no index list", src->spec, n);
    for (int j = 0; j < n; j++)
        if (idx[j] < 0 || idx[j] >= src->n)
            return rc_fail("dataset %s: subset index %d at position %d is out of range 0..%d",
                           src->spec, idx[j], j, src->n - 1);
    const size_t chw = (size_t)src->c * src->h * src->w;
    uint8_t *pixels = malloc(n ? (size_t)n * chw : 1);
    int *labels = malloc(n ? (size_t)n * sizeof(int) : 1);
    int *coarse = src->coarse_of ? malloc((size_t)src->classes * sizeof(int)) : NULL;
    const size_t hw = (size_t)src->h * src->w;
    uint8_t *tgt = src->targets ? malloc(n ? (size_t)n * hw : 1) : NULL;
    uint8_t *msk = src->mask ? malloc(n ? (size_t)n * hw : 1) : NULL;
    if (!pixels || !labels || (src->coarse_of && !coarse) || (src->targets && !tgt) || (src->mask && !msk)) {
        free(pixels);
        free(labels);
        free(coarse);
        free(tgt);
        free(msk);
        return rc_fail("dataset %s: out of memory for a subset of %d images", src->spec, n);
    }
    *out = *src;
    out->n = n;
    out->pixels = pixels;
    out->labels = labels;
    out->coarse_of = coarse;
    out->targets = tgt;
    out->mask = msk;
    if (coarse)
        memcpy(coarse, src->coarse_of, (size_t)src->classes * sizeof(int));
    for (int j = 0; j < n; j++) {
        if (chw)
            memcpy(pixels + (size_t)j * chw, src->pixels + (size_t)idx[j] * chw, chw);
        labels[j] = src->labels[idx[j]];
        if (tgt) memcpy(tgt + (size_t)j * hw, src->targets + (size_t)idx[j] * hw, hw);
        if (msk) memcpy(msk + (size_t)j * hw, src->mask + (size_t)idx[j] * hw, hw);
    }
    return RC_OK;
}

rc_status rc_dataset_limit(const rc_dataset *src, int nmax, rc_dataset *out) {
    RC_ASSERT(src && out);
    if (nmax < 0) {
        memset(out, 0, sizeof *out);
        return rc_fail("dataset %s: negative limit %d", src->spec, nmax);
    }
    int n = RC_MIN(nmax, src->n);
    int *idx = malloc((size_t)(n ? n : 1) * sizeof(int));
    if (!idx) {
        memset(out, 0, sizeof *out);
        return rc_fail("dataset %s: out of memory", src->spec);
    }
    for (int i = 0; i < n; i++)
        idx[i] = i;
    rc_status st = rc_dataset_subset(src, idx, n, out);
    free(idx);
    return st;
}

rc_status rc_dataset_truncate(rc_dataset *d, int nmax) {
    rc_dataset kept;
    if (rc_dataset_limit(d, nmax, &kept)) return RC_ERR;
    rc_dataset_free(d);
    *d = kept;
    return RC_OK;
}

rc_status rc_dataset_load_eval(const char *spec, int train_split, int limit, rc_dataset *out) {
    rc_dataset train = {0};
    memset(out, 0, sizeof *out);
    rc_status st = rc_dataset_load(spec, 1, &train);
    if (!st && !train_split) {
        st = rc_dataset_load(spec, 0, out);
        if (!st) st = rc_dataset_copy_stats(out, &train);
        rc_dataset_free(&train);
    } else if (!st) {
        *out = train;
    }
    if (!st && limit > 0) st = rc_dataset_truncate(out, limit);
    if (st) rc_dataset_free(out);
    return st;
}

rc_status rc_dataset_split(const rc_dataset *full, int nval, uint64_t seed, rc_dataset *train,
                           rc_dataset *val) {
    RC_ASSERT(full && train && val && train != val);
    memset(train, 0, sizeof *train);
    memset(val, 0, sizeof *val);
    if (nval < 0 || nval >= full->n)
        return rc_fail("dataset %s: validation size %d must be in 0..%d (the split has %d images)",
                       full->spec, nval, full->n - 1, full->n);
    const int n = full->n;
    int *perm = malloc((size_t)n * sizeof(int));
    unsigned char *is_val = calloc((size_t)n, 1);
    int *tidx = malloc((size_t)n * sizeof(int));
    int *vidx = malloc((size_t)(nval ? nval : 1) * sizeof(int));
    rc_status st = RC_OK;
    if (!perm || !is_val || !tidx || !vidx) {
        st = rc_fail("dataset %s: out of memory for a validation split", full->spec);
        goto done;
    }
    for (int i = 0; i < n; i++)
        perm[i] = i;
    rc_rng r;
    rc_rng_seed(&r, seed);
    rc_rng_shuffle(&r, perm, n);
    for (int i = 0; i < nval; i++)
        is_val[perm[i]] = 1;
    int nt = 0, nv = 0;
    for (int i = 0; i < n; i++) {
        if (is_val[i])
            vidx[nv++] = i;
        else
            tidx[nt++] = i;
    }
    RC_ASSERT(nv == nval && nt == n - nval);
    st = rc_dataset_subset(full, tidx, nt, train);
    if (st == RC_OK)
        st = rc_dataset_subset(full, vidx, nv, val);
    if (st != RC_OK) {
        rc_dataset_free(train);
        rc_dataset_free(val);
    }
done:
    free(perm);
    free(is_val);
    free(tidx);
    free(vidx);
    return st;
}

/* ---- batch assembly ------------------------------------------------------------------------- */

/* One image: out (c, h, w) = normalised, padded-by-pad, cropped at (dy, dx) in padded coordinates,
 * then mirrored left-right if flip. Pixels that fall in the padding are 0 (the mean colour). */
static void batch_image(const uint8_t *img, int c, int h, int w, const float (*lut)[256], int pad,
                        int dy, int dx, int flip, float *out) {
    const size_t hw = (size_t)h * w;
    /* Source column for output column ox is sx = (flip ? w-1-ox : ox) + dx - pad. */
    const int shift = dx - pad;
    /* Output columns with a source column inside [0, w): */
    int lo, hi; /* inclusive range of ox */
    if (!flip) {
        lo = RC_MAX(0, -shift);
        hi = RC_MIN(w - 1, w - 1 - shift);
    } else {
        lo = RC_MAX(0, shift);
        hi = RC_MIN(w - 1, w - 1 + shift);
    }
    for (int ch = 0; ch < c; ch++) {
        const uint8_t *src = img + (size_t)ch * hw;
        const float *l = lut[ch];
        float *dst = out + (size_t)ch * hw;
        for (int oy = 0; oy < h; oy++) {
            float *drow = dst + (size_t)oy * w;
            int sy = oy + dy - pad;
            if (sy < 0 || sy >= h || lo > hi) {
                for (int ox = 0; ox < w; ox++)
                    drow[ox] = 0.0f;
                continue;
            }
            const uint8_t *srow = src + (size_t)sy * w;
            for (int ox = 0; ox < lo; ox++)
                drow[ox] = 0.0f;
            if (!flip)
                for (int ox = lo; ox <= hi; ox++)
                    drow[ox] = l[srow[ox + shift]];
            else
                for (int ox = lo; ox <= hi; ox++)
                    drow[ox] = l[srow[w - 1 - ox + shift]];
            for (int ox = hi + 1; ox < w; ox++)
                drow[ox] = 0.0f;
        }
    }
}

/* A bijective 64-bit mixer (splitmix64's finaliser), so per-image seeds share no structure. */
static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void rc_dataset_batch(const rc_dataset *d, const int *idx, int n, const rc_augment *aug,
                      rc_rng *rng, float *x, int *y) {
    RC_ASSERT(d && n >= 0 && (n == 0 || (idx && x)));
    RC_ASSERT(d->c >= 1 && d->c <= RC_DATA_MAX_CHANNELS);
    const int c = d->c, h = d->h, w = d->w;
    const int pad = aug ? aug->crop_pad : 0;
    const int flip = aug ? (aug->flip != 0) : 0;
    RC_ASSERT(pad >= 0 && pad <= RC_DATA_MAX_SIDE);
    const int augmenting = pad > 0 || flip;
    RC_ASSERT(!augmenting || rng);
    RC_ASSERT(!augmenting || !d->dense);
    for (int j = 0; j < n; j++)
        RC_ASSERT(idx[j] >= 0 && idx[j] < d->n);

    float lut[RC_DATA_MAX_CHANNELS][256];
    for (int ch = 0; ch < c; ch++) {
        RC_ASSERT(d->std[ch] > 0.0f);
        const float m = d->mean[ch], inv = 1.0f / d->std[ch];
        for (int v = 0; v < 256; v++)
            lut[ch][v] = ((float)v / 255.0f - m) * inv;
    }
    /* One serial draw; image j then uses its own generator seeded from (base, j), so every image's
     * crop and flip are fixed before the parallel loop and independent of the thread count. */
    const uint64_t base = augmenting ? rc_rng_u64(rng) : 0;
    const size_t chw = (size_t)c * h * w;
    const uint32_t noff = (uint32_t)(2 * pad + 1);
#pragma omp parallel for schedule(static) if ((size_t)n * chw >= ((size_t)1 << 20))
    for (int j = 0; j < n; j++) {
        int dy = pad, dx = pad, fl = 0;
        if (augmenting) {
            rc_rng r;
            rc_rng_seed(&r, base ^ mix64((uint64_t)j + 1));
            if (pad > 0) {
                dy = (int)rc_rng_below(&r, noff);
                dx = (int)rc_rng_below(&r, noff);
            }
            if (flip)
                fl = (int)(rc_rng_u64(&r) >> 63);
        }
        batch_image(d->pixels + (size_t)idx[j] * chw, c, h, w, (const float(*)[256])lut, pad, dy,
                    dx, fl, x + (size_t)j * chw);
    }
    if (y)
        for (int j = 0; j < n; j++)
            y[j] = d->labels[idx[j]];
}

void rc_dataset_batch_targets(const rc_dataset *d, const int *idx, int n, uint8_t *tgt, uint8_t *mask) {
    RC_ASSERT(d && d->dense && d->targets && n >= 0 && (n == 0 || (idx && tgt)));
    const size_t hw = (size_t)d->h * d->w;
    for (int j = 0; j < n; j++) {
        RC_ASSERT(idx[j] >= 0 && idx[j] < d->n);
        memcpy(tgt + (size_t)j * hw, d->targets + (size_t)idx[j] * hw, hw);
        if (!mask) continue;
        if (d->mask)
            memcpy(mask + (size_t)j * hw, d->mask + (size_t)idx[j] * hw, hw);
        else
            memset(mask + (size_t)j * hw, 1, hw);
    }
}
