/* gru.c — the convolutional GRU cell's gate arithmetic (model.c cell_gru, PyTorch's gate convention) fused
 * into one pass, as the plan runs it (graph_fuse.c match_gru): from the drive x and the hidden term u
 * (3C channels each, gates z, r, n in that order) and h(t-1),
 *   z = sigmoid(x_z + u_z), r = sigmoid(x_r + u_r), n = tanh(x_n + r u_n), h = n + z (h(t-1) - n),
 * with x absent (gates from u alone) or u absent (then h(t-1) too: z = sigmoid(x_z), n = tanh(x_n),
 * h = n - z n; x_r is not read). Backward recomputes the gates from x, u and h(t-1), so that none of the
 * eleven intermediate tensors of the unfused cell is stored. Per image, gate j of x and u is the j-th third
 * of the image's 3 C H W floats, laid out as h is: plain NCHW, or nChw16c with C % 16 == 0 (the plan keeps
 * C % 16 != 0 plain), so the kernels are layout-free. exp/tanh are vmath.h's polynomials. */
#include "ops.h"

#include "base/common.h"
#include "base/omp.h"
#include "vmath.h"

#define GRU_PAR_MIN 16384 /* elements of h */
#define GRU_BLOCK 4096    /* elements per parallel block */

/* One element: the gates and h. hx: x present; hu: u (and h(t-1)) present. */
RC_INLINE void fwd_elem(int hx, int hu, float xz, float xr, float xn, float uz, float ur, float un, float hp,
                        float *z, float *r, float *n, float *h) {
    *z = vsigmoid(hx && hu ? xz + uz : hx ? xz : uz);
    float np = hx ? xn : 0.0f;
    *r = 0.0f;
    if (hu) {
        *r = vsigmoid(hx ? xr + ur : ur);
        np = hx ? xn + *r * un : *r * un;
    }
    *n = vtanh(np);
    *h = hu ? *n + *z * (hp - *n) : *n - *z * *n;
}

/* Elements [i0, i1) of one image: x, u at its gate z (gate j at + j * gs), hp and h at the same offset. */
RC_INLINE void fwd_range(int hx, int hu, size_t i0, size_t i1, size_t gs, const float *x, const float *u,
                         const float *hp, float *h) {
#pragma omp simd
    for (size_t i = i0; i < i1; i++) {
        float z, r, n;
        fwd_elem(hx, hu, hx ? x[i] : 0.0f, hx && hu ? x[i + gs] : 0.0f, hx ? x[i + 2 * gs] : 0.0f, hu ? u[i] : 0.0f,
                 hu ? u[i + gs] : 0.0f, hu ? u[i + 2 * gs] : 0.0f, hu ? hp[i] : 0.0f, &z, &r, &n, &h[i]);
    }
}

/* The gradients of one element from dh: of x's three gates (dx*), u's (du*) and h(t-1). */
RC_INLINE void bwd_elem(int hx, int hu, float xz, float xr, float xn, float uz, float ur, float un, float hp,
                        float dh, float *dgz, float *dgr, float *dgn, float *dun, float *dhp) {
    float z, r, n, h;
    fwd_elem(hx, hu, xz, xr, xn, uz, ur, un, hp, &z, &r, &n, &h);
    const float dn = dh * (1.0f - z);
    const float dz = dh * ((hu ? hp : 0.0f) - n);
    const float dnp = dn * (1.0f - n * n); /* tanh' */
    *dgz = dz * z * (1.0f - z);            /* sigmoid': the gradient of x_z and of u_z */
    *dgn = dnp;                            /* of x_n */
    *dgr = 0.0f;
    *dun = 0.0f;
    *dhp = 0.0f;
    if (hu) {
        const float dr = dnp * un;
        *dun = dnp * r;
        *dgr = dr * r * (1.0f - r); /* of x_r and of u_r */
        *dhp = dh * z;
    }
}

#define GRU_TILE 256 /* elements whose gradients are made in one vector loop, then stored */

/* d[k] = or += v[k], k < L */
static inline void put(float *restrict d, const float *restrict v, int L, int acc) {
    if (acc) {
#pragma omp simd
        for (int k = 0; k < L; k++) d[k] += v[k];
    } else {
#pragma omp simd
        for (int k = 0; k < L; k++) d[k] = v[k];
    }
}

/* Tiles of GRU_TILE elements: the gradients into local arrays in one vector loop (the stores to dx, du,
 * dh_prev, each optional and overwritten or accumulated, would keep it scalar), then stored. */
RC_INLINE void bwd_range(int hx, int hu, size_t i0, size_t i1, size_t gs, const float *x, const float *u,
                         const float *hp, const float *dh, float *dx, int dx_acc, float *du, int du_acc, float *dhp,
                         int dhp_acc) {
    float gz[GRU_TILE], gr[GRU_TILE], gn[GRU_TILE], gun[GRU_TILE], ghp[GRU_TILE];
    for (size_t t0 = i0; t0 < i1; t0 += GRU_TILE) {
        const int L = (int)RC_MIN((size_t)GRU_TILE, i1 - t0);
#pragma omp simd
        for (int k = 0; k < L; k++) {
            const size_t i = t0 + (size_t)k;
            bwd_elem(hx, hu, hx ? x[i] : 0.0f, hx && hu ? x[i + gs] : 0.0f, hx ? x[i + 2 * gs] : 0.0f,
                     hu ? u[i] : 0.0f, hu ? u[i + gs] : 0.0f, hu ? u[i + 2 * gs] : 0.0f, hu ? hp[i] : 0.0f, dh[i],
                     &gz[k], &gr[k], &gn[k], &gun[k], &ghp[k]);
        }
        if (dx) {
            put(dx + t0, gz, L, dx_acc);
            put(dx + t0 + gs, gr, L, dx_acc); /* 0 without u: x_r is not read */
            put(dx + t0 + 2 * gs, gn, L, dx_acc);
        }
        if (du) {
            put(du + t0, gz, L, du_acc);
            put(du + t0 + gs, gr, L, du_acc);
            put(du + t0 + 2 * gs, gun, L, du_acc);
        }
        if (dhp) put(dhp + t0, ghp, L, dhp_acc);
    }
}

/* The blocks of all images (GRU_BLOCK elements of one image each), in parallel when large: the statements
 * after i1 run with b (the image), i0, i1 (its elements). */
#define GRU_BLOCKS(n, chw, b, i0, i1, ...)                                                                \
    do {                                                                                                  \
        const long long nbi_ = (long long)(((chw) + GRU_BLOCK - 1) / GRU_BLOCK), nb_ = (long long)(n)*nbi_; \
        const int par_ = rc_ops_fast && (size_t)(n) * (chw) >= GRU_PAR_MIN;                               \
        (void)par_;                                                                                       \
        RC_OMP(omp parallel for schedule(static) if(par_))                                                \
        for (long long p_ = 0; p_ < nb_; p_++) {                                                          \
            const int b = (int)(p_ / nbi_);                                                               \
            const size_t i0 = (size_t)(p_ % nbi_) * GRU_BLOCK, i1 = RC_MIN(i0 + GRU_BLOCK, (size_t)(chw)); \
            __VA_ARGS__                                                                                   \
        }                                                                                                 \
    } while (0)

// x, u: (N, 3, C H W) or NULL (not both; hp with u only), hp: (N, C H W) -> h: (N, C H W)
void rc_gru_forward(int n, size_t chw, const float *x, const float *u, const float *hp, float *h) {
    RC_ASSERT(n >= 0 && (x || u) && !u == !hp && h);
    const size_t s3 = 3 * chw;
    GRU_BLOCKS(n, chw, b, i0, i1, {
        const float *xb = x ? x + (size_t)b * s3 : NULL, *ub = u ? u + (size_t)b * s3 : NULL;
        const float *hpb = hp ? hp + (size_t)b * chw : NULL;
        float *hb = h + (size_t)b * chw;
        if (x && u)
            fwd_range(1, 1, i0, i1, chw, xb, ub, hpb, hb);
        else if (x)
            fwd_range(1, 0, i0, i1, chw, xb, ub, hpb, hb);
        else
            fwd_range(0, 1, i0, i1, chw, xb, ub, hpb, hb);
    });
}

// dh: (N, C H W) -> dx, du: (N, 3, C H W), dhp: (N, C H W), each overwritten or accumulated (_acc), NULL: skipped
void rc_gru_backward(int n, size_t chw, const float *x, const float *u, const float *hp, const float *dh, float *dx,
                     int dx_acc, float *du, int du_acc, float *dhp, int dhp_acc) {
    RC_ASSERT(n >= 0 && (x || u) && !u == !hp && dh && (!dx || x) && (!du || u) && (!dhp || hp));
    const size_t s3 = 3 * chw;
    GRU_BLOCKS(n, chw, b, i0, i1, {
        const float *xb = x ? x + (size_t)b * s3 : NULL, *ub = u ? u + (size_t)b * s3 : NULL;
        const float *hpb = hp ? hp + (size_t)b * chw : NULL, *dhb = dh + (size_t)b * chw;
        float *dxb = dx ? dx + (size_t)b * s3 : NULL, *dub = du ? du + (size_t)b * s3 : NULL;
        float *dhpb = dhp ? dhp + (size_t)b * chw : NULL;
        if (x && u)
            bwd_range(1, 1, i0, i1, chw, xb, ub, hpb, dhb, dxb, dx_acc, dub, du_acc, dhpb, dhp_acc);
        else if (x)
            bwd_range(1, 0, i0, i1, chw, xb, ub, hpb, dhb, dxb, dx_acc, dub, du_acc, dhpb, dhp_acc);
        else
            bwd_range(0, 1, i0, i1, chw, xb, ub, hpb, dhb, dxb, dx_acc, dub, du_acc, dhpb, dhp_acc);
    });
}
