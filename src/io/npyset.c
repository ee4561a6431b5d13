/* npyset.c — the dataset kind "npy:IMAGES.npy,LABELS.npy[,TEST_IMAGES.npy,TEST_LABELS.npy]": images and
 * labels from NumPy .npy files (read by io/npy.c), converted to the uint8 NCHW pixels rc_dataset holds.
 * The layout and dtype rules are in dataset.h; every error names the file and the problem. */
#include <string.h>

#include "io/dataset.h"
#include "io/npy.h"

#define NPY_MAX_CLASSES 1000 /* model.classes' limit */
#define NPY_PATH_MAX 1024

/* The image layout a header describes: 3-D (N, H, W) is one channel; 4-D is NHWC when the last dimension
 * is 1 or 3 and the second is not, NCHW otherwise. */
static rc_status image_dims(const char *path, const rc_npy_info *in, int *n, int *c, int *h, int *w, int *nhwc) {
    if (in->ndim != 3 && in->ndim != 4)
        return rc_fail("%s: images must be a 3-D (N, H, W) or 4-D (N, C, H, W) / (N, H, W, C) array, not %d-D", path,
                       in->ndim);
    const int64_t *s = in->shape;
    int64_t N = s[0], C = 1, H = s[1], W = s[2];
    *nhwc = 0;
    if (in->ndim == 4) {
        *nhwc = (s[3] == 1 || s[3] == 3) && s[1] != 1 && s[1] != 3;
        C = *nhwc ? s[3] : s[1];
        H = *nhwc ? s[1] : s[2];
        W = *nhwc ? s[2] : s[3];
    }
    if (N < 1 || N > RC_DATA_MAX_ITEMS)
        return rc_fail("%s: %lld images, outside 1..%d (RC_DATA_MAX_ITEMS)", path, (long long)N, RC_DATA_MAX_ITEMS);
    if (C < 1 || C > RC_DATA_MAX_CHANNELS)
        return rc_fail("%s: images of %lld channels (shape read as %s); 1..%d are supported", path, (long long)C,
                       *nhwc ? "NHWC" : "NCHW", RC_DATA_MAX_CHANNELS);
    if (H < 1 || W < 1 || H > RC_DATA_MAX_SIDE || W > RC_DATA_MAX_SIDE)
        return rc_fail("%s: images of %lldx%lld pixels; each side must be in 1..%d (RC_DATA_MAX_SIDE)", path,
                       (long long)H, (long long)W, RC_DATA_MAX_SIDE);
    if ((uint64_t)N * (uint64_t)(C * H * W) > RC_DATA_MAX_BYTES)
        return rc_fail("%s: %lld images of %lldx%lldx%lld are over the limit of %llu pixel bytes (RC_DATA_MAX_BYTES)",
                       path, (long long)N, (long long)C, (long long)H, (long long)W,
                       (unsigned long long)RC_DATA_MAX_BYTES);
    if (!(in->kind == 'u' && in->itemsize == 1) && !(in->kind == 'f' && in->itemsize == 4))
        return rc_fail("%s: images of dtype '%s'; uint8 (0..255) or float32 (0..1) are supported", path, in->descr);
    *n = (int)N;
    *c = (int)C;
    *h = (int)H;
    *w = (int)W;
    return RC_OK;
}

/* Images into *pix (n * c * h * w bytes, NCHW); float32 values v in [0, 1] become round(255 v). */
static rc_status load_images(const char *path, uint8_t **pix, int *n, int *c, int *h, int *w) {
    rc_npy_reader r;
    int nhwc;
    *pix = NULL;
    if (rc_npy_read_open(&r, path)) return RC_ERR;
    rc_status st = image_dims(path, &r.info, n, c, h, w, &nhwc);
    if (st) {
        rc_npy_read_close(&r);
        return st;
    }
    const size_t hw = (size_t)*h * *w, chw = (size_t)*c * hw;
    const int isf = r.info.kind == 'f';
    uint8_t *out = malloc((size_t)*n * chw);
    void *buf = malloc(chw * (isf ? sizeof(float) : 1));
    if (!out || !buf) st = rc_fail("%s: out of memory for %d images", path, *n);
    for (int i = 0; st == RC_OK && i < *n; i++) {
        if ((st = rc_npy_read(&r, buf, chw))) break;
        uint8_t *dst = out + (size_t)i * chw;
        for (size_t e = 0; e < chw; e++) {
            size_t o = nhwc ? e % (size_t)*c * hw + e / (size_t)*c : e; /* source element e -> NCHW offset */
            if (!isf) {
                dst[o] = ((const uint8_t *)buf)[e];
                continue;
            }
            float v = ((const float *)buf)[e];
            if (!(v >= 0.0f && v <= 1.0f)) {
                st = rc_fail("%s: value %g of image %d (element %llu) is outside [0, 1]; float32 images must be "
                             "scaled to 0..1 (or saved as uint8 0..255)",
                             path, (double)v, i, (unsigned long long)((uint64_t)i * chw + e));
                break;
            }
            dst[o] = (uint8_t)(v * 255.0f + 0.5f);
        }
    }
    free(buf);
    rc_npy_read_close(&r);
    if (st) {
        free(out);
        return st;
    }
    *pix = out;
    return RC_OK;
}

/* A 1-D integer labels file: *n labels, each >= 0 and < max_classes (the message adds why). */
static rc_status load_labels(const char *path, int **lab, int *n, int max_classes, const char *why) {
    rc_npy_reader r;
    *lab = NULL;
    if (rc_npy_read_open(&r, path)) return RC_ERR;
    rc_status st = RC_OK;
    const rc_npy_info *in = &r.info;
    if (in->ndim != 1)
        st = rc_fail("%s: labels must be a 1-D array, not %d-D", path, in->ndim);
    else if (in->kind != 'i' && in->kind != 'u')
        st = rc_fail("%s: labels of dtype '%s'; integers (int64, int32, uint8, ...) are supported", path, in->descr);
    else if (in->shape[0] < 1 || in->shape[0] > RC_DATA_MAX_ITEMS)
        st = rc_fail("%s: %lld labels, outside 1..%d (RC_DATA_MAX_ITEMS)", path, (long long)in->shape[0],
                     RC_DATA_MAX_ITEMS);
    if (st) {
        rc_npy_read_close(&r);
        return st;
    }
    *n = (int)in->shape[0];
    int *out = malloc((size_t)*n * sizeof(int));
    if (!out) st = rc_fail("%s: out of memory for %d labels", path, *n);
    for (int i = 0; st == RC_OK && i < *n; i++) {
        uint64_t raw = 0;
        uint8_t b[8];
        if ((st = rc_npy_read(&r, b, 1))) break;
        int64_t v;
        switch (in->itemsize) {
        case 1: v = in->kind == 'i' ? (int64_t)(int8_t)b[0] : (int64_t)b[0]; break;
        case 2: {
            uint16_t u;
            memcpy(&u, b, 2);
            v = in->kind == 'i' ? (int64_t)(int16_t)u : (int64_t)u;
            break;
        }
        case 4: {
            uint32_t u;
            memcpy(&u, b, 4);
            v = in->kind == 'i' ? (int64_t)(int32_t)u : (int64_t)u;
            break;
        }
        default:
            memcpy(&raw, b, 8);
            v = in->kind == 'i' || raw <= (uint64_t)INT64_MAX ? (int64_t)raw : INT64_MAX;
            break;
        }
        if (v < 0 || v >= max_classes) {
            st = rc_fail("%s: label %lld at index %d is out of range 0..%d%s", path, (long long)v, i, max_classes - 1, why);
            break;
        }
        out[i] = (int)v;
    }
    rc_npy_read_close(&r);
    if (st) {
        free(out);
        return st;
    }
    *lab = out;
    return RC_OK;
}

rc_status rc_dataset_load_npy(const char *list, int train_split, rc_dataset *out) {
    RC_ASSERT(list && out);
    memset(out, 0, sizeof *out);
    char path[4][NPY_PATH_MAX];
    int np = 0;
    for (const char *p = list;; np++) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (np == 4) return rc_fail("dataset 'npy:%.400s': more than 4 files (IMAGES,LABELS[,TEST_IMAGES,TEST_LABELS])", list);
        if (len == 0) return rc_fail("dataset 'npy:%.400s': empty file name in the list", list);
        if (len >= NPY_PATH_MAX) return rc_fail("dataset 'npy:%.400s': a path is over %d bytes", list, NPY_PATH_MAX - 1);
        memcpy(path[np], p, len);
        path[np][len] = '\0';
        if (!e) break;
        p = e + 1;
    }
    np++;
    if (np != 2 && np != 4)
        return rc_fail("dataset 'npy:%.400s': %d files; give IMAGES.npy,LABELS.npy or "
                       "IMAGES.npy,LABELS.npy,TEST_IMAGES.npy,TEST_LABELS.npy",
                       list, np);
    if (!train_split && np == 2)
        return rc_fail("dataset 'npy:%.400s': no test arrays given (npy:IMAGES.npy,LABELS.npy,TEST_IMAGES.npy,"
                       "TEST_LABELS.npy); evaluation and training need the test split",
                       list);
    /* classes = 1 + the largest training label, so both splits agree */
    int *lab = NULL, nlab = 0, *tl = NULL, ntl = 0, classes = 0;
    if (load_labels(path[1], &tl, &ntl, NPY_MAX_CLASSES, " (at most 1000 classes, as model.classes)")) return RC_ERR;
    for (int i = 0; i < ntl; i++) classes = RC_MAX(classes, tl[i] + 1);
    const char *img_path = path[train_split ? 0 : 2];
    if (train_split) {
        lab = tl;
        nlab = ntl;
    } else {
        free(tl);
        char why[NPY_PATH_MAX + 64];
        snprintf(why, sizeof why, " (the classes are 0..max of the training labels in %s)", path[1]);
        if (load_labels(path[3], &lab, &nlab, classes, why)) return RC_ERR;
    }
    const char *lab_path = path[train_split ? 1 : 3];
    uint8_t *pix = NULL;
    int n, c, h, w;
    if (load_images(img_path, &pix, &n, &c, &h, &w)) {
        free(lab);
        return RC_ERR;
    }
    rc_status st = RC_OK;
    if (n != nlab) st = rc_fail("%s has %d images but %s has %d labels; the counts must match", img_path, n, lab_path, nlab);
    if (st == RC_OK && !train_split) { /* the test images must look like the training images */
        rc_npy_reader r;
        int n0, c0, h0, w0, l0;
        if (rc_npy_read_open(&r, path[0]) || image_dims(path[0], &r.info, &n0, &c0, &h0, &w0, &l0))
            st = RC_ERR;
        else if (c0 != c || h0 != h || w0 != w)
            st = rc_fail("%s has %dx%dx%d images but the training images %s are %dx%dx%d", img_path, c, h, w, path[0],
                         c0, h0, w0);
        rc_npy_read_close(&r);
    }
    if (st) {
        free(lab);
        free(pix);
        return st;
    }
    snprintf(out->name, sizeof out->name, "npy");
    snprintf(out->spec, sizeof out->spec, "npy:%s", list);
    out->train = train_split ? 1 : 0;
    out->n = n;
    out->c = c;
    out->h = h;
    out->w = w;
    out->classes = classes;
    out->pixels = pix;
    out->labels = lab;
    rc_dataset_compute_stats(out);
    return RC_OK;
}
