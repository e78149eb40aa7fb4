/* kern_tl_avx512.c — AVX-512 (BW) kernels for the lookup-table layouts tl1
 * and tl2 (kern_tl.h): the AVX2 scheme (kern_tl_avx2.c) on 64-byte loads,
 * so one vpshufb looks up 64 rows of a column group, four per 128-bit lane
 * group of 16. A lone 32-row unit (a block whose height is an odd multiple
 * of 32) goes to the AVX2 function.
 *
 * tl2 signs: a 64-row unit's four u16 words are one u64; vpshufb spreads
 * the byte holding each row's bit to that row, vptestmb makes a mask
 * register and vpmovm2b the 0/−1 byte mask. */
#include "kern_tl.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define T512 __attribute__((target("avx512f,avx512bw,avx2,fma")))
#define INLINE inline __attribute__((always_inline))

static T512 INLINE __m512i bcast4(const uint8_t *p)
{
    return _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)p));
}

/* row 16l + j (j < 16) of a 64-row unit: word l, bit 15 − j: byte 2l+1 for
 * j < 8, byte 2l after; bit 7 − j mod 8 of it */
static const uint8_t spread_b[64] = {1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 3, 3, 3, 3, 3, 3,
                                     3, 3, 2, 2, 2, 2, 2, 2, 2, 2, 5, 5, 5, 5, 5, 5, 5, 5, 4, 4, 4, 4,
                                     4, 4, 4, 4, 7, 7, 7, 7, 7, 7, 7, 7, 6, 6, 6, 6, 6, 6, 6, 6};
static const uint8_t bits_b[64] = {128, 64, 32, 16, 8, 4, 2, 1, 128, 64, 32, 16, 8, 4, 2, 1,
                                   128, 64, 32, 16, 8, 4, 2, 1, 128, 64, 32, 16, 8, 4, 2, 1,
                                   128, 64, 32, 16, 8, 4, 2, 1, 128, 64, 32, 16, 8, 4, 2, 1,
                                   128, 64, 32, 16, 8, 4, 2, 1, 128, 64, 32, 16, 8, 4, 2, 1};

static T512 INLINE __m512i sign_mask(const uint8_t *p, __m512i spread, __m512i bits)
{
    uint64_t wv;
    memcpy(&wv, p, 8);
    __m512i s = _mm512_shuffle_epi8(_mm512_set1_epi64((long long)wv), spread);
    return _mm512_movm_epi8(_mm512_test_epi8_mask(s, bits));
}

static T512 INLINE void tile(const bn_tl_geom *g, const uint8_t *blk, uint64_t h, uint64_t i0, const uint8_t *lut,
                             uint64_t ga, uint64_t g0, uint64_t g1, const int TRI, __m512i s16[2], __m512i *cnt)
{
    const __m512i m0f = _mm512_set1_epi8(0x0f);
    const __m512i spread = _mm512_loadu_si512(spread_b), bits = _mm512_loadu_si512(bits_b);
    const uint64_t sw = (h + 15) / 16;
    const uint8_t *sg = blk + h * g->ng + i0 / 8;
    for (uint64_t gi = g0; gi < g1; gi++) {
        const uint8_t *L = lut + 64 * (gi - ga);
        __m512i x = _mm512_loadu_si512(blk + gi * h + i0);
        __m512i ih = _mm512_and_si512(_mm512_srli_epi16(x, 4), m0f), il = _mm512_and_si512(x, m0f);
        __m512i alo = _mm512_shuffle_epi8(bcast4(L), ih), ahi = _mm512_shuffle_epi8(bcast4(L + 16), ih);
        __m512i blo = _mm512_shuffle_epi8(bcast4(L + 32), il), bhi = _mm512_shuffle_epi8(bcast4(L + 48), il);
        if (TRI) {
            __m512i ma = sign_mask(sg + 2 * gi * sw * 2, spread, bits);
            __m512i mb = sign_mask(sg + (2 * gi + 1) * sw * 2, spread, bits);
            alo = _mm512_xor_si512(alo, ma);
            ahi = _mm512_xor_si512(ahi, ma);
            blo = _mm512_xor_si512(blo, mb);
            bhi = _mm512_xor_si512(bhi, mb);
            *cnt = _mm512_sub_epi8(_mm512_sub_epi8(*cnt, ma), mb);
        }
        s16[0] = _mm512_add_epi16(s16[0],
                                  _mm512_add_epi16(_mm512_unpacklo_epi8(alo, ahi), _mm512_unpacklo_epi8(blo, bhi)));
        s16[1] = _mm512_add_epi16(s16[1],
                                  _mm512_add_epi16(_mm512_unpackhi_epi8(alo, ahi), _mm512_unpackhi_epi8(blo, bhi)));
    }
}

/* 64 rows from i0. */
static T512 void units64(const bn_tl_geom *g, const uint8_t *blk, uint64_t h, uint64_t i0, const uint8_t *lut, uint64_t ga, uint64_t gb,
                         int32_t *acc)
{
    const __m512i z = _mm512_setzero_si512();
    __m512i a32[4] = {z, z, z, z};
    const uint64_t G = g->bk / (g->type == BN_TL2 ? 6 : 4);
    for (uint64_t g0 = ga; g0 < gb;) {
        int tri = g0 < g->gt;
        uint64_t end = tri && g->gt < gb ? g->gt : gb, g1 = end - g0 > G ? g0 + G : end;
        __m512i s16[2] = {z, z}, cnt = z;
        if (tri)
            tile(g, blk, h, i0, lut, ga, g0, g1, 1, s16, &cnt);
        else
            tile(g, blk, h, i0, lut, ga, g0, g1, 0, s16, &cnt);
        __m512i lo = _mm512_add_epi16(s16[0], _mm512_unpacklo_epi8(cnt, z));
        __m512i hi = _mm512_add_epi16(s16[1], _mm512_unpackhi_epi8(cnt, z));
        a32[0] = _mm512_add_epi32(a32[0], _mm512_cvtepi16_epi32(_mm512_castsi512_si256(lo)));
        a32[1] = _mm512_add_epi32(a32[1], _mm512_cvtepi16_epi32(_mm512_extracti64x4_epi64(lo, 1)));
        a32[2] = _mm512_add_epi32(a32[2], _mm512_cvtepi16_epi32(_mm512_castsi512_si256(hi)));
        a32[3] = _mm512_add_epi32(a32[3], _mm512_cvtepi16_epi32(_mm512_extracti64x4_epi64(hi, 1)));
        g0 = g1;
    }
    /* lane l of unpacklo holds rows 16l..16l+7, of unpackhi 16l+8..16l+15:
     * a32[0] rows 0-7, 16-23; [1] 32-39, 48-55; [2] 8-15, 24-31; [3] 40-47, 56-63 */
    static const int base[4] = {0, 32, 8, 40};
    int32_t tmp[64];
    for (int j = 0; j < 4; j++)
        _mm512_storeu_si512(tmp + 16 * j, a32[j]);
    for (int j = 0; j < 4; j++)
        for (int e = 0; e < 16; e++)
            acc[base[j] + (e < 8 ? e : 8 + e)] = tmp[16 * j + e];
}

static T512 void avx512_units(const bn_tl_geom *g, const uint8_t *blk, uint64_t h, uint64_t i0, unsigned n,
                              const uint8_t *lut, uint64_t ga, uint64_t gb, int32_t *acc)
{
    if (n >= 2)
        units64(g, blk, h, i0, lut, ga, gb, acc);
    else
        bn_tl_avx2_units(g, blk, h, i0, 1, lut, ga, gb, acc);
}

static float avx512_quantize(const float *x, size_t k, int8_t *q)
{
    return bn_kernels_ref_t2()->quantize(x, k, q);
}

#define SET(L, name)                                                                                             \
    static void name##_gemm(const uint8_t *w, size_t k, size_t r0, size_t r1, float beta, const int8_t *q,      \
                            const float *s, size_t n, size_t ldq, float *y, size_t ldy)                         \
    {                                                                                                            \
        tl_gemm_with(L, w, k, r0, r1, beta, q, s, n, ldq, y, ldy, 32, 2, avx512_units, bn_tl_avx2_lut);                         \
    }                                                                                                            \
    static void name##_gemv(const uint8_t *w, size_t k, size_t r0, size_t r1, float beta, const int8_t *q,      \
                            float s, float *y)                                                                   \
    {                                                                                                            \
        tl_gemm_with(L, w, k, r0, r1, beta, q, &s, 1, k, y, 0, 32, 2, avx512_units, bn_tl_avx2_lut);                            \
    }                                                                                                            \
    static void name##_gemm_f32(const uint8_t *w, size_t k, size_t r0, size_t r1, float beta, const float *x,   \
                                size_t n, size_t ldx, float *y, size_t ldy)                                     \
    {                                                                                                            \
        tl_gemm_f32(L, w, k, r0, r1, beta, x, n, ldx, y, ldy);                                                  \
    }

SET(BN_TL1, avx512_tl1)
SET(BN_TL2, avx512_tl2)

const bn_kernels *bn_kernels_tl_avx512(uint32_t layout)
{
    static const bn_kernels tl1 = {"avx512", BN_TL1, avx512_quantize, avx512_tl1_gemm, avx512_tl1_gemv,
                                   avx512_tl1_gemm_f32};
    static const bn_kernels tl2 = {"avx512", BN_TL2, avx512_quantize, avx512_tl2_gemm, avx512_tl2_gemv,
                                   avx512_tl2_gemm_f32};
    return layout == BN_TL1 ? &tl1 : layout == BN_TL2 ? &tl2 : NULL;
}

#else

const bn_kernels *bn_kernels_tl_avx512(uint32_t layout)
{
    (void)layout;
    return NULL;
}

#endif
