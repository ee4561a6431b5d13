/* tasks.c — generated algorithmic tasks with a target per position ("dense" datasets), made in memory from
 * fixed seeds, no download: prefix sums of bit strings and shortest paths through perfect mazes (the
 * easy-to-hard tasks of Schwarzschild et al. 2021). Each size has 10,000 examples, the first 80% the
 * training split and the last 20% the test split, so a test split never shares an example with training. */
#include <string.h>

#include "io/dataset.h"

#define TASK_EXAMPLES 10000 /* examples per size; train = the first 80%, test = the last 20% */
#define TASK_MAX_BITS 4096
#define TASK_MAX_MAZE 255 /* maze size (interior pixels per side, odd): image 2 * (size + 2) + 2 */

/* splitmix64's finaliser: independent seeds for (task, size, example). */
static uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* The examples [lo, hi) of a size's 10,000 and the split's size. */
static void split_range(int total, int train_split, int *lo, int *hi) {
    int ntrain = total * 4 / 5;
    *lo = train_split ? 0 : ntrain;
    *hi = train_split ? ntrain : total;
}

static rc_status alloc_dense(rc_dataset *d, int n, int c, int h, int w, int with_mask) {
    size_t hw = (size_t)h * w;
    d->n = n, d->c = c, d->h = h, d->w = w;
    d->classes = 2;
    d->dense = 1;
    d->pixels = calloc((size_t)n * c * hw, 1);
    d->labels = calloc((size_t)n, sizeof(int));
    d->targets = calloc((size_t)n * hw, 1);
    d->mask = with_mask ? calloc((size_t)n * hw, 1) : NULL;
    if (!d->pixels || !d->labels || !d->targets || (with_mask && !d->mask))
        return rc_fail("dataset %s: out of memory for %d examples of %dx%dx%d", d->spec, n, c, h, w);
    /* centred encoding: x = (p/255 - 0.5) / 0.5, so a 0 pixel is -1 and a 255 pixel is +1 */
    for (int ch = 0; ch < RC_DATA_MAX_CHANNELS; ch++) d->mean[ch] = ch < c ? 0.5f : 0.0f, d->std[ch] = ch < c ? 0.5f : 1.0f;
    return RC_OK;
}

/* ---- prefix sums ------------------------------------------------------------------------------------ */

/* Bit strings of length L as 1 x 1 x L images (bit b -> pixel 255 b); target at position i = (b_0 + ... +
 * b_i) mod 2. For L <= 20 the 10,000 strings (or all 2^L when fewer) are distinct (a seeded permutation of
 * 0 .. 2^L - 1, bit i of the number at position i); above, each string's bits are fair coin flips from
 * its own seed (repeats have probability below 10^-4). */
static rc_status make_prefix_sums(rc_dataset *d, int bits, int train_split) {
    int total = TASK_EXAMPLES;
    uint32_t *perm = NULL;
    rc_rng r;
    if (bits <= 20) {
        uint32_t space = 1u << bits;
        if ((uint32_t)total > space) total = (int)space;
        perm = malloc((size_t)space * sizeof *perm);
        if (!perm) return rc_fail("dataset %s: out of memory", d->spec);
        for (uint32_t i = 0; i < space; i++) perm[i] = i;
        rc_rng_seed(&r, mix(0x707265666978ULL ^ (uint64_t)bits));
        for (int i = 0; i < total; i++) { /* partial Fisher-Yates: the first `total` of a permutation */
            uint32_t j = (uint32_t)i + rc_rng_below(&r, space - (uint32_t)i);
            uint32_t t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
    }
    int lo, hi;
    split_range(total, train_split, &lo, &hi);
    if (hi - lo < 1) {
        free(perm);
        return rc_fail("dataset %s: %d-bit strings leave no %s examples (use at least 4 bits)", d->spec, bits,
                       train_split ? "training" : "test");
    }
    if (alloc_dense(d, hi - lo, 1, 1, bits, 0)) {
        free(perm);
        return RC_ERR;
    }
    for (int e = lo; e < hi; e++) {
        uint8_t *px = d->pixels + (size_t)(e - lo) * bits, *tg = d->targets + (size_t)(e - lo) * bits;
        if (!perm) rc_rng_seed(&r, mix(mix(0x707265666978ULL ^ (uint64_t)bits) + (uint64_t)e));
        int sum = 0;
        for (int i = 0; i < bits; i++) {
            int b = perm ? (int)((perm[e] >> i) & 1u) : (int)(rc_rng_u64(&r) >> 63);
            sum ^= b;
            px[i] = b ? 255 : 0;
            tg[i] = (uint8_t)sum;
        }
    }
    free(perm);
    return RC_OK;
}

/* ---- mazes ------------------------------------------------------------------------------------------ */

/* A perfect maze of m x m cells by the depth-first recursive backtracker (iterative, with a stack), grown
 * from the start cell; then the unique path from start to goal. Drawn on a (2m+1)^2 grid: cell (cx, cy) at
 * (2cy+1, 2cx+1), an open wall between two cells at the pixel between them, walls black, open white, the
 * start green (0, 255, 0), the goal red (255, 0, 0); the target marks the path's cells and the pixels
 * between them. The image doubles every grid pixel and adds a black 1-pixel border: side 2(2m+1)+2, as
 * the anchor's datasets (size 9 -> 24, 13 -> 32, 33 -> 72, 59 -> 124; size = 2m - 1). The mask (loss and
 * "solved") is every non-black pixel: walls and border are excluded. */
typedef struct {
    int m;
    uint8_t *open_e, *open_s; /* m*m: the wall east of / south of cell i is knocked down */
    int *stack, *prev, *queue;
    uint8_t *seen;
} maze_work;

static int maze_neighbour(const maze_work *w, int cell, int dir) { /* 0 W, 1 E, 2 S, 3 N; -1 outside */
    int m = w->m, x = cell % m, y = cell / m;
    if (dir == 0) return x > 0 ? cell - 1 : -1;
    if (dir == 1) return x < m - 1 ? cell + 1 : -1;
    if (dir == 2) return y < m - 1 ? cell + m : -1;
    return y > 0 ? cell - m : -1;
}

static int maze_open(const maze_work *w, int a, int b) {
    if (b == a + 1) return w->open_e[a];
    if (b == a - 1) return w->open_e[b];
    if (b == a + w->m) return w->open_s[a];
    return w->open_s[b];
}

static void maze_knock(maze_work *w, int a, int b) {
    if (b == a + 1) w->open_e[a] = 1;
    else if (b == a - 1) w->open_e[b] = 1;
    else if (b == a + w->m) w->open_s[a] = 1;
    else w->open_s[b] = 1;
}

static void maze_generate(maze_work *w, rc_rng *r, int start) {
    int n = w->m * w->m, sp = 0, cur = start, visited = 1;
    memset(w->open_e, 0, (size_t)n);
    memset(w->open_s, 0, (size_t)n);
    memset(w->seen, 0, (size_t)n);
    w->seen[start] = 1;
    while (visited < n) {
        int cand[4], nc = 0;
        for (int dir = 0; dir < 4; dir++) {
            int nb = maze_neighbour(w, cur, dir);
            if (nb >= 0 && !w->seen[nb]) cand[nc++] = nb;
        }
        if (nc == 0) { /* dead end: backtrack */
            RC_ASSERT(sp > 0);
            cur = w->stack[--sp];
            continue;
        }
        int nxt = cand[rc_rng_below(r, (uint32_t)nc)];
        maze_knock(w, cur, nxt);
        w->stack[sp++] = cur;
        w->seen[nxt] = 1;
        cur = nxt;
        visited++;
    }
}

/* Breadth-first search from start; prev[] then leads back from goal along the unique path. */
static void maze_solve(maze_work *w, int start) {
    int n = w->m * w->m, qh = 0, qt = 0;
    memset(w->seen, 0, (size_t)n);
    w->queue[qt++] = start;
    w->seen[start] = 1;
    w->prev[start] = -1;
    while (qh < qt) {
        int c = w->queue[qh++];
        for (int dir = 0; dir < 4; dir++) {
            int nb = maze_neighbour(w, c, dir);
            if (nb < 0 || w->seen[nb] || !maze_open(w, c, nb)) continue;
            w->seen[nb] = 1;
            w->prev[nb] = c;
            w->queue[qt++] = nb;
        }
    }
}

/* Set grid pixel (gy, gx) of a (2m+1)^2 grid in the doubled, bordered image (side S) plane p to v. */
static void put2(uint8_t *p, int S, int gy, int gx, uint8_t v) {
    int y = 1 + 2 * gy, x = 1 + 2 * gx;
    p[(size_t)y * S + x] = p[(size_t)y * S + x + 1] = v;
    p[(size_t)(y + 1) * S + x] = p[(size_t)(y + 1) * S + x + 1] = v;
}

static void maze_draw(const maze_work *w, int start, int goal, uint8_t *px, uint8_t *tg, uint8_t *mk, int S) {
    int m = w->m;
    size_t plane = (size_t)S * S;
    for (int cell = 0; cell < m * m; cell++) {
        int gx = 2 * (cell % m) + 1, gy = 2 * (cell / m) + 1;
        for (int ch = 0; ch < 3; ch++) {
            put2(px + ch * plane, S, gy, gx, 255);
            if (w->open_e[cell]) put2(px + ch * plane, S, gy, gx + 1, 255);
            if (w->open_s[cell]) put2(px + ch * plane, S, gy + 1, gx, 255);
        }
    }
    static const uint8_t green[3] = {0, 255, 0}, red[3] = {255, 0, 0};
    for (int ch = 0; ch < 3; ch++) {
        put2(px + ch * plane, S, 2 * (start / m) + 1, 2 * (start % m) + 1, green[ch]);
        put2(px + ch * plane, S, 2 * (goal / m) + 1, 2 * (goal % m) + 1, red[ch]);
    }
    for (int c = goal; c >= 0; c = w->prev[c]) {
        int gx = 2 * (c % m) + 1, gy = 2 * (c / m) + 1;
        put2(tg, S, gy, gx, 1);
        int p = w->prev[c];
        if (p >= 0) put2(tg, S, (gy + 2 * (p / m) + 1) / 2, (gx + 2 * (p % m) + 1) / 2, 1);
    }
    for (size_t i = 0; i < plane; i++) mk[i] = (px[i] | px[plane + i] | px[2 * plane + i]) != 0;
}

static rc_status make_mazes(rc_dataset *d, int size, int train_split) {
    int m = (size + 1) / 2, S = 2 * (2 * m + 1) + 2;
    int lo, hi;
    split_range(TASK_EXAMPLES, train_split, &lo, &hi);
    if (alloc_dense(d, hi - lo, 3, S, S, 1)) return RC_ERR;
    maze_work w = {m, NULL, NULL, NULL, NULL, NULL, NULL};
    size_t n = (size_t)m * m;
    w.open_e = malloc(n);
    w.open_s = malloc(n);
    w.seen = malloc(n);
    w.stack = malloc(n * sizeof(int));
    w.prev = malloc(n * sizeof(int));
    w.queue = malloc(n * sizeof(int));
    rc_status st = RC_OK;
    if (!w.open_e || !w.open_s || !w.seen || !w.stack || !w.prev || !w.queue) {
        st = rc_fail("dataset %s: out of memory", d->spec);
        goto done;
    }
    size_t hw = (size_t)S * S;
    for (int e = lo; e < hi; e++) {
        rc_rng r;
        rc_rng_seed(&r, mix(mix(0x6d617a6573ULL ^ (uint64_t)size) + (uint64_t)e));
        int start = (int)rc_rng_below(&r, (uint32_t)n);
        int goal = (int)rc_rng_below(&r, (uint32_t)n - 1);
        if (goal >= start) goal++; /* distinct from start */
        maze_generate(&w, &r, start);
        maze_solve(&w, start);
        size_t j = (size_t)(e - lo);
        maze_draw(&w, start, goal, d->pixels + j * 3 * hw, d->targets + j * hw, d->mask + j * hw, S);
    }
done:
    free(w.open_e);
    free(w.open_s);
    free(w.seen);
    free(w.stack);
    free(w.prev);
    free(w.queue);
    return st;
}

/* ---- spec ------------------------------------------------------------------------------------------- */

/* "N" or "N:M" -> sizes; the split's size is N for training, M (default N) for test. */
static rc_status parse_sizes(const char *spec, const char *args, int lo, int hi, const char *what, int *train,
                             int *test) {
    char *end;
    long a = strtol(args, &end, 10);
    if (end == args || (*end && *end != ':') || a < lo || a > hi)
        return rc_fail("dataset '%s': the %s must be an integer in %d..%d (e.g. '%s')", spec, what, lo, hi,
                       !strcmp(what, "bits") ? "prefix-sums:32:48" : "mazes:9:13");
    long b = a;
    if (*end == ':') {
        const char *s2 = end + 1;
        b = strtol(s2, &end, 10);
        if (end == s2 || *end || b < lo || b > hi)
            return rc_fail("dataset '%s': the test %s must be an integer in %d..%d", spec, what, lo, hi);
    }
    *train = (int)a;
    *test = (int)b;
    return RC_OK;
}

rc_status rc_dataset_load_task(const char *spec, const char *kind, const char *args, int train_split,
                               rc_dataset *out) {
    memset(out, 0, sizeof *out);
    snprintf(out->spec, sizeof out->spec, "%s", spec);
    snprintf(out->name, sizeof out->name, "%s", kind);
    out->train = train_split != 0;
    int a, b;
    rc_status st;
    if (!strcmp(kind, "prefix-sums")) {
        if (parse_sizes(spec, args, 4, TASK_MAX_BITS, "bits", &a, &b)) return RC_ERR;
        st = make_prefix_sums(out, train_split ? a : b, train_split);
    } else {
        if (parse_sizes(spec, args, 3, TASK_MAX_MAZE, "maze size", &a, &b)) return RC_ERR;
        if (a % 2 == 0 || b % 2 == 0)
            return rc_fail("dataset '%s': maze sizes must be odd (2 x cells - 1: 9, 13, 33, 59)", spec);
        st = make_mazes(out, train_split ? a : b, train_split);
    }
    if (st) {
        rc_dataset_free(out);
        return RC_ERR;
    }
    return RC_OK;
}
