/* conv2d_dnnl.c — the oneDNN fast path of conv2d (called by the selector, conv2d.c, for the passes it
 * gives oneDNN): a lazily created CPU engine and stream, and a cache
 * of primitives keyed by (shape, pass, bias, threads, layout policy), each created once and reused on
 * every later call. Gradients are accumulated (dw/db always, dx when asked) either through a transient
 * buffer plus an add, or through a reorder with a sum post-op when the primitive uses another layout.
 * Scratchpads and transient buffers are shared by all primitives (one in-order stream). */
#ifdef RC_HAVE_DNNL

#include "ops/conv2d_dnnl.h"

#include <dnnl.h>
#include <dnnl_debug.h>
#include <string.h>

#include "base/common.h"
#include "base/omp.h"

/* Layout policy (rc_conv2d_dnnl_set_blocked). Measured with bench/conv_bench.c on this machine's 2
 * cores (AVX-512, N=128, 2 threads, quiet machine, GFLOP/s fwd / bwd_data / bwd_weights):
 *   3x3 convs: format_tag_any (nChw16c, jit:avx512_core) plus reorders on every call beats plain NCHW
 *     (x64:gemm:jit): C=K=32 28x28 376/332/355 vs 201/156/108; ConvLSTM 32->128 399/366/378 vs
 *     183/320/236; C=K=64 14x14 430/408/418 vs 166/137/240.
 *   1x1 convs: plain NCHW is faster (gemm needs no im2col; the reorders are pure memory traffic):
 *     128->32 s1 321/195/114 vs 133/114/115; 32->64 s2 180/93/118 vs 119/59/92.
 * So the default, RC_CONV_POLICY_AUTO, gives blocked layouts to kernels > 1x1 and plain to 1x1. */
enum { RC_CONV_POLICY_PLAIN = 0, RC_CONV_POLICY_BLOCKED = 1, RC_CONV_POLICY_AUTO = 2 };
#ifndef RC_CONV_DNNL_DEFAULT_POLICY
#define RC_CONV_DNNL_DEFAULT_POLICY RC_CONV_POLICY_AUTO
#endif

enum { PASS_FWD = 0, PASS_BWD_DATA = 1, PASS_BWD_WEIGHTS = 2 };
#define MAX_ARGS 4

static void dnnl_fail(const char *what, dnnl_status_t st, const rc_conv_dims *d, const char *file, int line) {
    fprintf(stderr,
            "recur: internal error at %s:%d: oneDNN call %s failed with status '%s' "
            "(conv N=%d C=%d H=%d W=%d -> K=%d kernel %dx%d stride %d pad %d groups %d)\n",
            file, line, what, dnnl_status2str(st), d ? d->n : -1, d ? d->c : -1, d ? d->h : -1, d ? d->w : -1,
            d ? d->k : -1, d ? d->r : -1, d ? d->r : -1, d ? d->stride : -1, d ? d->pad : -1, d ? d->groups : -1);
    abort();
}

#define DNNL_TRY(call, d)                                                          \
    do {                                                                           \
        dnnl_status_t st_ = (call);                                                \
        if (st_ != dnnl_success) dnnl_fail(#call, st_, (d), __FILE__, __LINE__);   \
    } while (0)

/* A primitive with a user-mode scratchpad. Every primitive runs alone (one in-order CPU stream), so all
 * share one scratchpad buffer, g_pad, sized for the largest: pad's handle is set to it at every run. */
typedef struct {
    dnnl_primitive_t prim;
    dnnl_memory_t pad;
    void *pad_ptr; /* where pad points now (re-pointed only when g_pad moved) */
} prim_t;

/* Memory objects over the user's tensors, one per pointer seen, so that a tensor's object is created once
 * rather than re-pointed at every call: re-pointing a memory object whose layout has padding (nChw16c
 * with C not a multiple of 16) makes oneDNN rewrite the whole padding area each time. The chunked schedule
 * (graph_sched.c) gives each tensor one pointer per micro-batch. */
#define USER_VIEWS 256

/* One execution argument of a convolution primitive. */
typedef struct {
    int arg;                 /* DNNL_ARG_* */
    int is_out;              /* written by the primitive */
    size_t nelem;            /* elements of the plain tensor */
    dnnl_memory_t user;      /* the user's layout; re-pointed at every call once the views are full */
    void *view_ptr[USER_VIEWS];
    dnnl_memory_t view[USER_VIEWS]; /* user-layout memory objects created over view_ptr[k] */
    int nviews;
    void *inner_ptr;         /* where inner points now */
    dnnl_memory_t inner;     /* the primitive's layout; NULL if plain. Its buffer is transient: a slice of
                              * the shared pool g_pool at inner_off, set at every run */
    size_t inner_off;        /* floats into the pool: the inner buffer, or for a plain output that may be
                              * accumulated, where it is written before being added to the user's */
    prim_t to_inner;         /* input: user -> inner */
    prim_t from_inner[2];    /* output: inner -> user; [0] overwrite, [1] with sum post-op (lazy) */
} conv_arg;

typedef struct conv_entry {
    rc_conv_dims d;
    int pass, has_bias, nthr, blocked;
    int wino_req, wino; /* Winograd asked (part of the key) / used */
    dnnl_primitive_desc_t hint; /* forward pd kept alive for backward pds (NULL for forward) */
    dnnl_primitive_desc_t pd;
    prim_t conv;
    int nargs;
    conv_arg args[MAX_ARGS];
    size_t pool_floats;  /* floats of g_pool this entry's inner buffers span */
    struct conv_entry *next;
} conv_entry;

static dnnl_engine_t g_engine;
static dnnl_stream_t g_stream;
static conv_entry *g_cache;
static int g_count;
static int g_policy = RC_CONV_DNNL_DEFAULT_POLICY;
/* Transient buffers shared by every cached primitive (grown, never shrunk, freed by release): before,
 * each primitive owned its scratchpad and its blocked copies of plain tensors, which for models whose
 * channels are not multiples of 16 (plain activations, reordered at every conv) added up to more than
 * the activation arena itself. */
static float *g_pad, *g_pool;
static size_t g_pad_cap, g_pool_cap;

static void grow(float **buf, size_t *cap, size_t floats) {
    if (floats <= *cap) return;
    rc_afree(*buf);
    *buf = rc_aalloc_floats(floats);
    RC_ASSERT(*buf != NULL);
    *cap = floats;
}
/* Winograd (F(4x4, 3x3), oneDNN's jit_wino_4x3) for a pass: 3x3 stride-1 convs with channel counts that
 * are multiples of 16; under AUTO forward and backward-data always, backward-weights only when the conv
 * widens 4x (the ConvLSTM gate conv), the one shape where bench/conv_bench.c measured it faster than
 * direct (docs/PERFORMANCE.md). oneDNN may still refuse a shape: then direct. */
static int want_wino(const rc_conv_dims *d, int pass) {
    const int algo = rc_conv2d_algo();
    if (algo == RC_CONV_ALGO_DIRECT || d->groups != 1 || d->r != 3 || d->stride != 1 || d->c % 16 || d->k % 16)
        return 0;
    return algo == RC_CONV_ALGO_WINOGRAD || pass != PASS_BWD_WEIGHTS || d->k >= 4 * d->c;
}

int rc_conv2d_dnnl_primitive_count(void) { return g_count; }

int rc_conv2d_dnnl_set_blocked(int policy) {
    RC_ASSERT(policy >= RC_CONV_POLICY_PLAIN && policy <= RC_CONV_POLICY_AUTO);
    int old = g_policy;
    g_policy = policy;
    return old;
}

/* Whether a shape gets blocked layouts under the current policy. */
static int use_blocked(const rc_conv_dims *d) {
    if (d->x_layout != RC_LAYOUT_NCHW || d->y_layout != RC_LAYOUT_NCHW) return 1; /* activations already blocked */
    return g_policy == RC_CONV_POLICY_AUTO ? d->r > 1 : g_policy == RC_CONV_POLICY_BLOCKED;
}

static void ensure_engine(void) {
    if (g_engine) return;
    DNNL_TRY(dnnl_engine_create(&g_engine, dnnl_cpu, 0), NULL);
    DNNL_TRY(dnnl_stream_create(&g_stream, g_engine, dnnl_stream_default_flags), NULL);
}

static dnnl_primitive_attr_t make_attr(int sum, const rc_conv_dims *d) {
    dnnl_primitive_attr_t attr;
    DNNL_TRY(dnnl_primitive_attr_create(&attr), d);
    DNNL_TRY(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), d);
    if (sum) {
        dnnl_post_ops_t po;
        DNNL_TRY(dnnl_post_ops_create(&po), d);
        DNNL_TRY(dnnl_post_ops_append_sum(po, 1.0f), d);
        DNNL_TRY(dnnl_primitive_attr_set_post_ops(attr, po), d);
        DNNL_TRY(dnnl_post_ops_destroy(po), d);
    }
    return attr;
}

static void prim_create(prim_t *p, const_dnnl_primitive_desc_t pd, const rc_conv_dims *d) {
    DNNL_TRY(dnnl_primitive_create(&p->prim, pd), d);
    g_count++;
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t bytes = md ? dnnl_memory_desc_get_size(md) : 0;
    if (bytes > 0) {
        grow(&g_pad, &g_pad_cap, bytes / sizeof(float) + 1);
        DNNL_TRY(dnnl_memory_create(&p->pad, md, g_engine, DNNL_MEMORY_NONE), d);
    }
}

static void prim_destroy(prim_t *p) {
    if (p->prim) dnnl_primitive_destroy(p->prim);
    if (p->pad) dnnl_memory_destroy(p->pad);
    memset(p, 0, sizeof *p);
}

/* args must have room for one more entry (the scratchpad). */
static void prim_exec(prim_t *p, int nargs, dnnl_exec_arg_t *args, const rc_conv_dims *d) {
    if (p->pad) {
        if (p->pad_ptr != g_pad) {
            DNNL_TRY(dnnl_memory_set_data_handle(p->pad, g_pad), d);
            p->pad_ptr = g_pad;
        }
        args[nargs].arg = DNNL_ARG_SCRATCHPAD;
        args[nargs].memory = p->pad;
        nargs++;
    }
    DNNL_TRY(dnnl_primitive_execute(p->prim, g_stream, nargs, args), d);
}

static void reorder_create(prim_t *p, const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *dst, int sum,
                           const rc_conv_dims *d) {
    dnnl_primitive_attr_t attr = make_attr(sum, d);
    dnnl_primitive_desc_t pd;
    DNNL_TRY(dnnl_reorder_primitive_desc_create(&pd, src, g_engine, dst, g_engine, attr), d);
    prim_create(p, pd, d);
    dnnl_primitive_desc_destroy(pd);
    dnnl_primitive_attr_destroy(attr);
}

static void reorder_exec(prim_t *p, dnnl_memory_t from, dnnl_memory_t to, const rc_conv_dims *d) {
    dnnl_exec_arg_t a[3] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}, {0, NULL}};
    prim_exec(p, 2, a, d);
}

static const dnnl_memory_desc_t *memory_md(dnnl_memory_t m, const rc_conv_dims *d) {
    const dnnl_memory_desc_t *md = NULL;
    DNNL_TRY(dnnl_memory_get_memory_desc(m, &md), d);
    return md;
}

static void add_arg(conv_entry *e, int arg, int is_out, const dnnl_memory_desc_t *plain_md) {
    RC_ASSERT(e->nargs < MAX_ARGS);
    conv_arg *a = &e->args[e->nargs++];
    memset(a, 0, sizeof *a);
    a->arg = arg;
    a->is_out = is_out;
    a->nelem = dnnl_memory_desc_get_size(plain_md) / sizeof(float);
    DNNL_TRY(dnnl_memory_create(&a->user, plain_md, g_engine, DNNL_MEMORY_NONE), &e->d);
    const dnnl_memory_desc_t *want = dnnl_primitive_desc_query_md(e->pd, dnnl_query_exec_arg_md, arg);
    RC_ASSERT(want != NULL);
    if (!dnnl_memory_desc_equal(plain_md, want)) {
        DNNL_TRY(dnnl_memory_create(&a->inner, want, g_engine, DNNL_MEMORY_NONE), &e->d);
        if (e->pass == PASS_BWD_WEIGHTS && arg == DNNL_ARG_DIFF_DST) {
            a->inner_off = 0; /* the region reserved at the pool's start (create_entry) */
        } else {
            a->inner_off = e->pool_floats;
            e->pool_floats += (dnnl_memory_desc_get_size(want) / sizeof(float) + 15) / 16 * 16;
        }
        if (!is_out) reorder_create(&a->to_inner, plain_md, want, 0, &e->d);
    } else if (is_out && e->pass != PASS_FWD) { /* backward outputs accumulate */
        a->inner_off = e->pool_floats;
        e->pool_floats += (a->nelem + 15) / 16 * 16;
    }
}

static int same_key(const conv_entry *e, const rc_conv_dims *d, int pass, int has_bias, int nthr) {
    return e->d.n == d->n && e->d.c == d->c && e->d.h == d->h && e->d.w == d->w && e->d.k == d->k &&
           e->d.r == d->r && e->d.stride == d->stride && e->d.pad == d->pad && e->d.x_layout == d->x_layout &&
           e->d.y_layout == d->y_layout && e->d.groups == d->groups && e->pass == pass &&
           e->has_bias == has_bias && e->nthr == nthr && e->blocked == use_blocked(d) &&
           e->wino_req == want_wino(d, pass);
}

static conv_entry *find_entry(const rc_conv_dims *d, int pass, int has_bias) {
    const int nthr = rc_omp_threads();
    for (conv_entry *e = g_cache; e; e = e->next)
        if (same_key(e, d, pass, has_bias, nthr)) return e;
    return NULL;
}

/* The primitive descriptor of e's pass with algorithm alg (and, for backward, the forward one it is
 * hinted by, kept in e->hint). Returns oneDNN's status instead of failing: Winograd may be refused. */
static dnnl_status_t make_pds(conv_entry *e, dnnl_alg_kind_t alg, const dnnl_memory_desc_t *src,
                              const dnnl_memory_desc_t *wei, const dnnl_memory_desc_t *bia,
                              const dnnl_memory_desc_t *dst, const dnnl_dims_t strides, const dnnl_dims_t padding,
                              const_dnnl_primitive_attr_t attr) {
    dnnl_convolution_desc_t fwd_desc, bwd_desc;
    dnnl_primitive_desc_t fwd_pd = NULL;
    dnnl_status_t st = dnnl_convolution_forward_desc_init(&fwd_desc, dnnl_forward_training, alg, src, wei, bia, dst,
                                                         strides, padding, padding);
    if (st == dnnl_success) st = dnnl_primitive_desc_create(&fwd_pd, &fwd_desc, attr, g_engine, NULL);
    if (st != dnnl_success) return st;
    if (e->pass == PASS_FWD) {
        e->pd = fwd_pd;
        return dnnl_success;
    }
    if (e->pass == PASS_BWD_DATA)
        st = dnnl_convolution_backward_data_desc_init(&bwd_desc, alg, src, wei, dst, strides, padding, padding);
    else
        st = dnnl_convolution_backward_weights_desc_init(&bwd_desc, alg, src, wei, bia, dst, strides, padding,
                                                         padding);
    if (st == dnnl_success) st = dnnl_primitive_desc_create(&e->pd, &bwd_desc, attr, g_engine, fwd_pd);
    if (st != dnnl_success) {
        dnnl_primitive_desc_destroy(fwd_pd);
        return st;
    }
    e->hint = fwd_pd;
    return dnnl_success;
}

/* Create (once) the primitive for a shape/pass. Called only on a cache miss. */
static conv_entry *create_entry(const rc_conv_dims *d, int pass, int has_bias) {
    ensure_engine();
    conv_entry *e = rc_xcalloc(1, sizeof *e);
    e->d = *d;
    e->pass = pass;
    e->has_bias = has_bias;
    e->nthr = rc_omp_threads();
    e->blocked = use_blocked(d);
    e->wino_req = want_wino(d, pass);

    dnnl_dims_t src_dims = {d->n, d->c, d->h, d->w};
    /* grouped weights: (G, K/G, C/G, R, R), the same memory as (K, C/G, R, R) */
    const int G = d->groups, wnd = G > 1 ? 5 : 4;
    dnnl_dims_t wei_dims = {d->k, d->c, d->r, d->r};
    if (G > 1) wei_dims[0] = G, wei_dims[1] = d->k / G, wei_dims[2] = d->c / G, wei_dims[3] = wei_dims[4] = d->r;
    dnnl_dims_t bia_dims = {d->k};
    dnnl_dims_t dst_dims = {d->n, d->k, d->ho, d->wo};
    dnnl_dims_t strides = {d->stride, d->stride};
    dnnl_dims_t padding = {d->pad, d->pad};
    /* plain user layouts */
    dnnl_memory_desc_t src_p, wei_p, bia_p, dst_p;
    /* user activations: plain NCHW, or nChw16c when the graph keeps them blocked (then no reorder
     * is needed whenever the primitive picks nChw16c too, the usual choice of jit:avx512 kernels) */
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&src_p, 4, src_dims, dnnl_f32,
                                          d->x_layout == RC_LAYOUT_BLK16 ? dnnl_nChw16c : dnnl_nchw),
             d);
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&wei_p, wnd, wei_dims, dnnl_f32, G > 1 ? dnnl_goihw : dnnl_oihw), d);
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&bia_p, 1, bia_dims, dnnl_f32, dnnl_x), d);
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&dst_p, 4, dst_dims, dnnl_f32,
                                          d->y_layout == RC_LAYOUT_BLK16 ? dnnl_nChw16c : dnnl_nchw),
             d);
    /* layouts offered to the primitive */
    dnnl_memory_desc_t src_a = src_p, wei_a = wei_p, dst_a = dst_p;
    if (e->blocked) {
        DNNL_TRY(dnnl_memory_desc_init_by_tag(&src_a, 4, src_dims, dnnl_f32, dnnl_format_tag_any), d);
        DNNL_TRY(dnnl_memory_desc_init_by_tag(&wei_a, wnd, wei_dims, dnnl_f32, dnnl_format_tag_any), d);
        DNNL_TRY(dnnl_memory_desc_init_by_tag(&dst_a, 4, dst_dims, dnnl_f32, dnnl_format_tag_any), d);
    }
    const dnnl_memory_desc_t *bia = has_bias ? &bia_p : NULL;

    dnnl_primitive_attr_t attr = make_attr(0, d);
    /* Winograd when asked and oneDNN implements it for this shape and ISA, else direct */
    e->wino = e->wino_req;
    for (;;) {
        dnnl_alg_kind_t alg = e->wino ? dnnl_convolution_winograd : dnnl_convolution_direct;
        dnnl_status_t st = make_pds(e, alg, &src_a, &wei_a, bia, &dst_a, strides, padding, attr);
        if (st == dnnl_success) break;
        if (!e->wino) dnnl_fail("convolution primitive descriptor", st, d, __FILE__, __LINE__);
        e->wino = 0;
    }
    dnnl_primitive_attr_destroy(attr);
    prim_create(&e->conv, e->pd, d);
    /* backward-data puts dy's blocked copy first in the pool (its first argument); backward-weights may
     * read that copy (rc_conv2d_dnnl_backward), so its other buffers start after a region of that size,
     * where its own copy of dy goes when it does not share backward-data's */
    if (pass == PASS_BWD_WEIGHTS) {
        const dnnl_memory_desc_t *want = dnnl_primitive_desc_query_md(e->pd, dnnl_query_exec_arg_md, DNNL_ARG_DIFF_DST);
        if (want && !dnnl_memory_desc_equal(&dst_p, want))
            e->pool_floats = (dnnl_memory_desc_get_size(want) / sizeof(float) + 15) / 16 * 16;
    }

    switch (pass) {
    case PASS_FWD:
        add_arg(e, DNNL_ARG_SRC, 0, &src_p);
        add_arg(e, DNNL_ARG_WEIGHTS, 0, &wei_p);
        if (has_bias) add_arg(e, DNNL_ARG_BIAS, 0, &bia_p);
        add_arg(e, DNNL_ARG_DST, 1, &dst_p);
        break;
    case PASS_BWD_DATA:
        add_arg(e, DNNL_ARG_DIFF_DST, 0, &dst_p);
        add_arg(e, DNNL_ARG_WEIGHTS, 0, &wei_p);
        add_arg(e, DNNL_ARG_DIFF_SRC, 1, &src_p);
        break;
    default:
        add_arg(e, DNNL_ARG_SRC, 0, &src_p);
        add_arg(e, DNNL_ARG_DIFF_DST, 0, &dst_p);
        add_arg(e, DNNL_ARG_DIFF_WEIGHTS, 1, &wei_p);
        if (has_bias) add_arg(e, DNNL_ARG_DIFF_BIAS, 1, &bia_p);
        break;
    }
    grow(&g_pool, &g_pool_cap, e->pool_floats);
    e->next = g_cache;
    g_cache = e;
    return e;
}

static conv_entry *get_entry(const rc_conv_dims *d, int pass, int has_bias) {
    conv_entry *e = find_entry(d, pass, has_bias);
    return e ? e : create_entry(d, pass, has_bias);
}

/* dst[i] += src[i], i < n. Elementwise, so the result does not depend on the thread count. */
static void add_into(float *dst, const float *src, size_t n) {
    const long nn = (long)n;
#pragma omp parallel for schedule(static) if (nn > 32768)
    for (long i = 0; i < nn; i++) dst[i] += src[i];
}

/* The memory object of argument a over user pointer p (see USER_VIEWS). */
static dnnl_memory_t user_view(conv_arg *a, void *p, const rc_conv_dims *d) {
    for (int k = 0; k < a->nviews; k++)
        if (a->view_ptr[k] == p) return a->view[k];
    if (a->nviews < USER_VIEWS) {
        DNNL_TRY(dnnl_memory_create(&a->view[a->nviews], memory_md(a->user, d), g_engine, p), d);
        a->view_ptr[a->nviews] = p;
        return a->view[a->nviews++];
    }
    DNNL_TRY(dnnl_memory_set_data_handle(a->user, p), d);
    return a->user;
}

/* Run one cached primitive. ptr[i] is the user pointer of args[i]; acc[i] = 1 asks an output to be
 * accumulated into ptr[i]. Outputs in another layout accumulate through a reorder with a sum post-op;
 * outputs in the user's layout are written into the pool and then added. ready (may be NULL): ready[i]
 * non-NULL is an input already in the primitive's layout (shared with another primitive), used as is. */
static void entry_run(conv_entry *e, const void *const *ptr, const int *acc, const dnnl_memory_t *ready) {
    const rc_conv_dims *d = &e->d;
    dnnl_exec_arg_t args[MAX_ARGS + 1];
    dnnl_memory_t user[MAX_ARGS] = {NULL};
    for (int i = 0; i < e->nargs; i++) {
        conv_arg *a = &e->args[i];
        args[i].arg = a->arg;
        if (ready && ready[i]) {
            args[i].memory = ready[i];
            continue;
        }
        if (a->inner && a->inner_ptr != g_pool + a->inner_off) {
            DNNL_TRY(dnnl_memory_set_data_handle(a->inner, g_pool + a->inner_off), d);
            a->inner_ptr = g_pool + a->inner_off;
        }
        void *p = (void *)(uintptr_t)ptr[i]; /* oneDNN takes a non-const handle; inputs are only read */
        if (a->is_out && acc[i] && !a->inner) p = g_pool + a->inner_off;
        user[i] = user_view(a, p, d);
        if (!a->is_out && a->inner) reorder_exec(&a->to_inner, user[i], a->inner, d);
        args[i].memory = a->inner ? a->inner : user[i];
    }
    prim_exec(&e->conv, e->nargs, args, d);
    for (int i = 0; i < e->nargs; i++) {
        conv_arg *a = &e->args[i];
        if (!a->is_out) continue;
        if (a->inner) {
            int s = acc[i] ? 1 : 0;
            if (!a->from_inner[s].prim)
                reorder_create(&a->from_inner[s], memory_md(a->inner, d), memory_md(a->user, d), s, d);
            reorder_exec(&a->from_inner[s], a->inner, user[i], d);
        } else if (acc[i]) {
            add_into((float *)(uintptr_t)ptr[i], g_pool + a->inner_off, a->nelem);
        }
    }
    DNNL_TRY(dnnl_stream_wait(g_stream), d);
}

void rc_conv2d_dnnl_forward_add(const rc_conv_dims *d, const float *x, const float *w, const float *b,
                                const float *r, float *y) {
    conv_entry *e = get_entry(d, PASS_FWD, b != NULL);
    const void *ptr[MAX_ARGS];
    int acc[MAX_ARGS] = {0};
    int i = 0;
    ptr[i++] = x;
    ptr[i++] = w;
    if (b) ptr[i++] = b;
    ptr[i++] = y;
    RC_ASSERT(i == e->nargs);
    entry_run(e, ptr, acc, NULL);
    if (r) { /* a blocked y with K not a multiple of 16 has zero padding lanes, in r too */
        const size_t k = d->y_layout == RC_LAYOUT_BLK16 ? (size_t)(d->k + 15) / 16 * 16 : (size_t)d->k;
        add_into(y, r, (size_t)d->n * k * d->ho * d->wo);
    }
}

void rc_conv2d_dnnl_backward(const rc_conv_dims *d, const float *x, const float *w, const float *dy, float *dx,
                             int dx_acc, float *dw, float *db) {
    /* dy in the backward-data primitive's layout, reused by backward-weights when it wants the same */
    dnnl_memory_t dy_inner = NULL;
    RC_ASSERT(dw || !db);
    /* both entries first: creating one may grow a pool, which must not happen between the two runs */
    conv_entry *ed = dx ? get_entry(d, PASS_BWD_DATA, 0) : NULL;
    conv_entry *ew = dw ? get_entry(d, PASS_BWD_WEIGHTS, db != NULL) : NULL;
    if (dx) {
        conv_entry *e = ed;
        const void *ptr[MAX_ARGS] = {dy, w, dx, NULL};
        int acc[MAX_ARGS] = {0, 0, dx_acc ? 1 : 0, 0};
        entry_run(e, ptr, acc, NULL);
        RC_ASSERT(e->args[0].arg == DNNL_ARG_DIFF_DST && (!e->args[0].inner || e->args[0].inner_off == 0));
        dy_inner = e->args[0].inner;
    }
    if (dw) {
        conv_entry *e = ew;
        const void *ptr[MAX_ARGS] = {x, dy, dw, db};
        int acc[MAX_ARGS] = {0, 0, 1, 1};
        dnnl_memory_t ready[MAX_ARGS] = {NULL, NULL, NULL, NULL};
        RC_ASSERT(e->args[1].arg == DNNL_ARG_DIFF_DST);
        if (dy_inner && e->args[1].inner &&
            dnnl_memory_desc_equal(memory_md(dy_inner, d), memory_md(e->args[1].inner, d)))
            ready[1] = dy_inner;
        entry_run(e, ptr, acc, ready);
    }
}

const char *rc_conv2d_dnnl_impl_name(const rc_conv_dims *d, int pass, int has_bias) {
    conv_entry *e = find_entry(d, pass, has_bias);
    const char *s = NULL;
    if (!e || dnnl_primitive_desc_query(e->pd, dnnl_query_impl_info_str, 0, (void *)&s) != dnnl_success || !s)
        return "";
    return s;
}

void rc_conv2d_dnnl_release(void) {
    conv_entry *e = g_cache;
    while (e) {
        conv_entry *next = e->next;
        for (int i = 0; i < e->nargs; i++) {
            conv_arg *a = &e->args[i];
            prim_destroy(&a->to_inner);
            prim_destroy(&a->from_inner[0]);
            prim_destroy(&a->from_inner[1]);
            if (a->inner) dnnl_memory_destroy(a->inner);
            if (a->user) dnnl_memory_destroy(a->user);
            for (int k = 0; k < a->nviews; k++) dnnl_memory_destroy(a->view[k]);
        }
        prim_destroy(&e->conv);
        dnnl_primitive_desc_destroy(e->pd);
        if (e->hint) dnnl_primitive_desc_destroy(e->hint);
        free(e);
        e = next;
    }
    g_cache = NULL;
    g_count = 0;
    rc_afree(g_pad);
    rc_afree(g_pool);
    g_pad = g_pool = NULL;
    g_pad_cap = g_pool_cap = 0;
    if (g_stream) dnnl_stream_destroy(g_stream);
    if (g_engine) dnnl_engine_destroy(g_engine);
    g_stream = NULL;
    g_engine = NULL;
}

#else
/* Built without oneDNN: the selector never picks this path. */
#include "ops/conv2d_dnnl.h"

#include "base/common.h"

void rc_conv2d_dnnl_forward_add(const rc_conv_dims *d, const float *x, const float *w, const float *b,
                                const float *r, float *y) {
    (void)d, (void)x, (void)w, (void)b, (void)r, (void)y;
    RC_ASSERT(0 && "oneDNN convolution in a build without oneDNN");
}

void rc_conv2d_dnnl_backward(const rc_conv_dims *d, const float *x, const float *w, const float *dy, float *dx,
                             int dx_acc, float *dw, float *db) {
    (void)d, (void)x, (void)w, (void)dy, (void)dx, (void)dx_acc, (void)dw, (void)db;
    RC_ASSERT(0 && "oneDNN convolution in a build without oneDNN");
}

void rc_conv2d_dnnl_release(void) {}
#endif
