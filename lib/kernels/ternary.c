/* ternary.c — absmean ternarization and the plain `t2` layout. */
#include "quant.h"

#include <math.h>
#include <string.h>

int bn_t2_get(const uint8_t *t2, uint64_t k, uint64_t r, uint64_t c)
{
    uint64_t row_bytes = (k + 3) / 4;
    unsigned code = (t2[r * row_bytes + c / 4] >> (2 * (c % 4))) & 3;
    return (int)code - 1;
}

float bn_t2_scale(const uint8_t *t2, uint64_t rows, uint64_t k)
{
    float beta;
    memcpy(&beta, t2 + rows * ((k + 3) / 4), 4);
    return beta;
}

void bn_ternarize_absmean(const float *w, uint64_t rows, uint64_t k, uint8_t *t2, bn_quant_stats *st)
{
    uint64_t n = rows * k, row_bytes = (k + 3) / 4;
    /* The mean in double, rounded once to f32: the exact mean as closely as
     * f32 can hold it (torch's f32 reduction differs by at most an ulp). */
    double sum = 0;
    for (uint64_t i = 0; i < n; i++)
        sum += fabs((double)w[i]);
    float beta = (float)(sum / (double)n);
    if (!(beta >= 1e-5f))
        beta = 1e-5f;
    uint64_t zeros = 0;
    double err2 = 0, norm2 = 0;
    memset(t2, 0x55, rows * row_bytes); /* code 1 = 0, padding included */
    for (uint64_t r = 0; r < rows; r++)
        for (uint64_t c = 0; c < k; c++) {
            float x = w[r * k + c];
            float q = nearbyintf(x / beta); /* half to even, like torch.round */
            if (q > 1)
                q = 1;
            if (q < -1)
                q = -1;
            if (q != q) /* NaN input: treat as 0 */
                q = 0;
            int v = (int)q;
            zeros += v == 0;
            double d = (double)x - (double)beta * v;
            err2 += d * d;
            norm2 += (double)x * x;
            uint8_t *b = &t2[r * row_bytes + c / 4];
            unsigned sh = 2 * (c % 4);
            *b = (uint8_t)((*b & ~(3u << sh)) | ((unsigned)(v + 1) << sh));
        }
    memcpy(t2 + rows * row_bytes, &beta, 4);
    if (st) {
        st->scale = beta;
        st->zero_share = n ? (double)zeros / (double)n : 0;
        st->rel_error = norm2 > 0 ? sqrt(err2 / norm2) : 0;
    }
}
