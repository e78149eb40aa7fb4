/* kern_ref.c — the portable scalar reference kernels for the `t2` layout
 * (formats/bn-model.md §4.1), and the lookup that picks a kernel set.
 *
 * Written for clarity first: the optimized sets are checked bit for bit
 * against these. Columns are taken in blocks so a weight row is unpacked
 * once per block and reused for every token of a prefill batch. */
#include "kernels.h"
#include "core.h"

#include <math.h>
#include <string.h>

enum { BLOCK = 256 }; /* columns unpacked at a time (a multiple of 4) */

static float ref_quantize(const float *x, size_t k, int8_t *q)
{
    float amax = 0;
    for (size_t i = 0; i < k; i++) {
        float a = fabsf(x[i]);
        if (a > amax)
            amax = a;
    }
    float s = 127.0f / (amax > 1e-5f ? amax : 1e-5f);
    for (size_t i = 0; i < k; i++) {
        float v = nearbyintf(x[i] * s); /* half to even, never roundf */
        if (v > 127)
            v = 127;
        if (v < -128)
            v = -128;
        q[i] = (int8_t)v;
    }
    return s;
}

/* Unpacks columns [c0, c0+n) of one row into w (values -1, 0, 1), a byte
 * (four columns) at a time; c0 is a multiple of 4, and up to 3 entries past
 * n may be written (w has room: BLOCK is a multiple of 4). */
static void unpack(const uint8_t *row, size_t c0, size_t n, int8_t *w)
{
    const uint8_t *b = row + c0 / 4;
    for (size_t j = 0; j < n; j += 4, b++) {
        w[j] = (int8_t)((*b & 3) - 1);
        w[j + 1] = (int8_t)((*b >> 2 & 3) - 1);
        w[j + 2] = (int8_t)((*b >> 4 & 3) - 1);
        w[j + 3] = (int8_t)((*b >> 6) - 1);
    }
}

/* Dot products over one block. The fixed trip count of the full-block case
 * lets compilers vectorize it at -O2; the sum is exact either way. */
static int32_t dot_i8(const int8_t *w, const int8_t *q, size_t n)
{
    int32_t a = 0;
    if (n == BLOCK) {
        for (size_t j = 0; j < BLOCK; j++)
            a += w[j] * q[j];
        return a;
    }
    for (size_t j = 0; j < n; j++)
        a += w[j] * q[j];
    return a;
}

/* Float dot product in 8 interleaved partial sums (a fixed, documented
 * order, so results repeat exactly; vectorizable without -ffast-math). */
static float dot_w_f32(const int8_t *w, const float *x, size_t n)
{
    float p[8] = {0};
    size_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (size_t l = 0; l < 8; l++)
            p[l] += (float)w[j + l] * x[j + l];
    for (; j < n; j++)
        p[0] += (float)w[j] * x[j];
    return ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));
}

static void ref_gemm(const uint8_t *w, size_t k, size_t r0, size_t r1, float beta, const int8_t *q, const float *s,
                     size_t n, size_t ldq, float *y, size_t ldy)
{
    size_t row_bytes = (k + 3) / 4;
    int8_t wv[BLOCK];
    int32_t acc[BN_KERN_MAX_N];
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *row = w + r * row_bytes;
        memset(acc, 0, n * sizeof acc[0]);
        for (size_t c0 = 0; c0 < k; c0 += BLOCK) {
            size_t nb = k - c0 < BLOCK ? k - c0 : BLOCK;
            unpack(row, c0, nb, wv);
            for (size_t t = 0; t < n; t++) {
                acc[t] += dot_i8(wv, q + t * ldq + c0, nb);
            }
        }
        for (size_t t = 0; t < n; t++)
            y[t * ldy + r] = bn_kern_out(acc[t], s[t], beta);
    }
}

static void ref_gemv(const uint8_t *w, size_t k, size_t r0, size_t r1, float beta, const int8_t *q, float s, float *y)
{
    ref_gemm(w, k, r0, r1, beta, q, &s, 1, k, y, 0);
}

static void ref_gemm_f32(const uint8_t *w, size_t k, size_t r0, size_t r1, float beta, const float *x, size_t n,
                         size_t ldx, float *y, size_t ldy)
{
    size_t row_bytes = (k + 3) / 4;
    int8_t wv[BLOCK];
    float acc[BN_KERN_MAX_N];
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *row = w + r * row_bytes;
        memset(acc, 0, n * sizeof acc[0]);
        for (size_t c0 = 0; c0 < k; c0 += BLOCK) {
            size_t nb = k - c0 < BLOCK ? k - c0 : BLOCK;
            unpack(row, c0, nb, wv);
            for (size_t t = 0; t < n; t++) {
                acc[t] += dot_w_f32(wv, x + t * ldx + c0, nb);
            }
        }
        for (size_t t = 0; t < n; t++)
            y[t * ldy + r] = acc[t] * beta;
    }
}

static const bn_kernels ref_t2 = {
    .name = "ref",
    .layout = BN_T2,
    .quantize = ref_quantize,
    .gemm = ref_gemm,
    .gemv = ref_gemv,
    .gemm_f32 = ref_gemm_f32,
};

const bn_kernels *bn_kernels_ref_t2(void)
{
    return &ref_t2;
}

/* bn_kernels_find lives in kern_select.c with the optimized sets. */
