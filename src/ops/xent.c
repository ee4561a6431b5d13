/* xent.c — softmax cross-entropy over logits (N, K) with an optional coarse (class-group) term:
 * -log of the summed probability of the label's group, via log-sum-exp over the group minus over all.
 * Everything per row is computed in double with max shifts; the gradient is of the total loss. */
#include "ops.h"

#include <math.h>

#include "base/common.h"

/* log sum_j exp(z_j) over the classes j with (grp < 0 or coarse_of[j] == grp), shifted by their max. */
static double row_lse(int k, const float *z, const int *coarse_of, int grp) {
    double m = -INFINITY;
    for (int j = 0; j < k; j++)
        if (grp < 0 || coarse_of[j] == grp) m = z[j] > m ? z[j] : m;
    if (m == INFINITY || m != m) return m; /* inf or NaN logits: let the loss show it */
    double s = 0.0;
    for (int j = 0; j < k; j++)
        if (grp < 0 || coarse_of[j] == grp) s += exp(z[j] - m);
    return m + log(s);
}

// logits: (N, K), labels: (N) -> loss (scalar); dlogits: (N, K) written or accumulated
double rc_xent_forward_backward(int n, int k, const float *logits, const int *labels, float w_fine,
                                const int *coarse_of, float w_coarse, float *dlogits, int acc) {
    RC_ASSERT(n >= 0 && k >= 1 && labels);
    if (n == 0) return 0.0;
    int use_coarse = coarse_of != NULL && w_coarse != 0.0f;
    double wf = w_fine, wc = use_coarse ? (double)w_coarse : 0.0;
    double total = 0.0;
    for (int r = 0; r < n; r++) {
        const float *z = logits + (size_t)r * k;
        int y = labels[r];
        RC_ASSERT(y >= 0 && y < k);
        double lse = row_lse(k, z, NULL, -1);
        double loss = wf * (lse - z[y]);
        int grp = 0;
        double lse_g = 0.0;
        if (use_coarse) {
            grp = coarse_of[y];
            RC_ASSERT(grp >= 0);
            lse_g = row_lse(k, z, coarse_of, grp);
            loss += wc * (lse - lse_g);
        }
        total += loss;
        if (!dlogits) continue;
        /* d/dz_j: wf * (p_j - [j == y]) + wc * (p_j - [j in group] q_j), all over n */
        float *d = dlogits + (size_t)r * k;
        for (int j = 0; j < k; j++) {
            double p = exp(z[j] - lse);
            double g = (wf + wc) * p;
            if (j == y) g -= wf;
            if (use_coarse && coarse_of[j] == grp) g -= wc * exp(z[j] - lse_g);
            g /= n;
            d[j] = acc ? d[j] + (float)g : (float)g;
        }
    }
    return total / n;
}
