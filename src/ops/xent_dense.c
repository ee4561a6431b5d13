/* xent_dense.c — per-position softmax cross-entropy for dense readouts: logits (N, K, HW) against a class
 * per position, over the positions a mask keeps, averaged over all kept positions of the batch (as the
 * deep-thinking tasks' loss). Computed in double with max shifts; the gradient is of the weighted mean. */
#include <math.h>
#include <string.h>

#include "base/common.h"
#include "ops.h"

// logits: (N, K, HW), labels: (N, HW) in [0, K), mask: (N, HW) or NULL -> loss (scalar); dlogits (N, K, HW)
double rc_xent_dense_forward_backward(int n, int k, int hw, const float *logits, const unsigned char *labels,
                                      const unsigned char *mask, float w, float *dlogits, int acc) {
    RC_ASSERT(n >= 0 && k >= 1 && hw >= 1 && labels);
    long count = 0;
    for (size_t i = 0; i < (size_t)n * hw; i++) count += !mask || mask[i];
    if (dlogits && !acc) memset(dlogits, 0, (size_t)n * k * hw * sizeof(float));
    if (count == 0) return 0.0;
    const double scale = (double)w / (double)count;
    double total = 0.0;
    for (int b = 0; b < n; b++) {
        const float *z = logits + (size_t)b * k * hw;
        float *d = dlogits ? dlogits + (size_t)b * k * hw : NULL;
        for (int p = 0; p < hw; p++) {
            size_t i = (size_t)b * hw + p;
            if (mask && !mask[i]) continue;
            int y = labels[i];
            RC_ASSERT(y < k);
            double mx = -INFINITY;
            for (int j = 0; j < k; j++) mx = z[(size_t)j * hw + p] > mx ? z[(size_t)j * hw + p] : mx;
            double s = 0.0;
            for (int j = 0; j < k; j++) s += exp(z[(size_t)j * hw + p] - mx);
            double lse = mx + log(s);
            total += lse - z[(size_t)y * hw + p];
            if (!d) continue;
            for (int j = 0; j < k; j++) {
                double g = exp(z[(size_t)j * hw + p] - lse) - (j == y ? 1.0 : 0.0);
                d[(size_t)j * hw + p] += (float)(scale * g);
            }
        }
    }
    return total * scale;
}
