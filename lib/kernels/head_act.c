/* head_act.c — the quantized heads' token activations and their row/token
 * loop (head_act.h), one copy for the AVX-512, AVX2, NEON and scalar
 * implementations, so that every one quantizes a token the same way. */
#include "head_act.h"
#include "head_layout.h"
#include "kern_head.h"

#include <math.h>
#include <stdlib.h>

bn_qact bn_qact_at(uint8_t *base, size_t d)
{
    return (bn_qact){(int8_t *)base, (float *)(void *)(base + d), (int32_t *)(void *)(base + d + d / 2)};
}

void bn_q8_blocks(const float *h, size_t d, int8_t *qh, float *dh)
{
    for (size_t c0 = 0; c0 < d; c0 += 32) {
        float amax = 0;
        for (size_t i = 0; i < 32; i++)
            amax = fabsf(h[c0 + i]) > amax ? fabsf(h[c0 + i]) : amax;
        float s = amax > 0 ? 127.0f / amax : 0;
        dh[c0 / 32] = amax / 127.0f;
        for (size_t i = 0; i < 32; i++) {
            float v = nearbyintf(h[c0 + i] * s); /* NaN (also inf·0) to int8 is undefined: 0 */
            qh[c0 + i] = isnan(v) ? 0 : (int8_t)v;
        }
    }
}

void bn_qact_prepare(const float *h, size_t d, int32_t z, bn_qact *a)
{
    int8_t qh[32];
    float dh;
    for (size_t c0 = 0; c0 < d; c0 += 32) {
        bn_q8_blocks(h + c0, 32, qh, &dh);
        size_t g = c0 / QUANT_G, b = c0 % QUANT_G / 32;
        int32_t sum = 0;
        for (size_t j = 0; j < 16; j++) {
            a->q[QUANT_G * g + 16 * b + j] = qh[j];
            a->q[QUANT_G * g + 64 + 16 * b + j] = qh[16 + j];
        }
        for (size_t j = 0; j < 32; j++)
            sum += qh[j];
        for (size_t l = 0; l < 4; l++) {
            a->dh[16 * g + 4 * b + l] = dh;
            a->cr[16 * g + 4 * b + l] = l ? 0 : z * sum;
        }
    }
}

void bn_qhead_run(bn_qhead_block_fn block, int32_t z, int max_tt, const void *w, size_t d, size_t r0, size_t r1,
                  const float *h, size_t n, float *y, size_t ldy)
{
    uint8_t *all = n > 1 ? aligned_alloc(64, n * 2 * d) : NULL;
    if (!all) {
        /* one token's int8, floats and int32s: a union, as they are read as such */
        union {
            _Alignas(64) uint8_t bytes[2 * BN_HEAD_MAX_D];
            float f[BN_HEAD_MAX_D / 2];
            int32_t i[BN_HEAD_MAX_D / 2];
        } one;
        bn_qact a[4];
        a[0] = bn_qact_at(one.bytes, d);
        a[1] = a[2] = a[3] = a[0];
        for (size_t t = 0; t < n; t++) {
            bn_qact_prepare(h + t * d, d, z, &a[0]);
            block(w, d, r0, r1, a, 1, y + t * ldy, ldy);
        }
        return;
    }
    for (size_t t = 0; t < n; t++) {
        bn_qact a = bn_qact_at(all + t * 2 * d, d);
        bn_qact_prepare(h + t * d, d, z, &a);
    }
    for (size_t b0 = r0; b0 < r1; b0 += HEAD_ROWS) {
        size_t b1 = r1 - b0 > HEAD_ROWS ? b0 + HEAD_ROWS : r1;
        for (size_t t = 0; t < n;) {
            int tt = n - t >= 4 && max_tt >= 4 ? 4 : n - t >= 2 && max_tt >= 2 ? 2 : 1;
            bn_qact a[4];
            for (int k = 0; k < 4; k++)
                a[k] = bn_qact_at(all + (t + (size_t)(k < tt ? k : tt - 1)) * 2 * d, d);
            block(w, d, b0, b1, a, tt, y + t * ldy, ldy);
            t += (size_t)tt;
        }
    }
    free(all);
}
