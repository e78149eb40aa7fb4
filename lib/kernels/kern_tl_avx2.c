/* kern_tl_avx2.c — AVX2 kernels for the lookup-table layouts tl1 and tl2
 * (kern_tl.h): vpshufb looks up 32 rows of one column group per 32-byte
 * load, on the low and the high plane of each table.
 *
 * A unit is 32 rows; two units share each table load. Interleaving the
 * planes (vpunpck{l,h}bw) puts rows 0-7 and 16-23 in one int16 vector and
 * rows 8-15 and 24-31 in the other; the sums are widened to int32 once per
 * BK-column tile and put back in row order at the end. tl2 signs: the two
 * u16 words of a unit (32 rows, row i at bit 15 − i mod 16) are broadcast,
 * spread to the byte of each row (vpshufb) and tested, giving a 0/−1 byte
 * mask that complements both planes and counts the negations. */
#include "kern_tl.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define TAVX2 __attribute__((target("avx2,fma")))
#define INLINE inline __attribute__((always_inline))

static TAVX2 INLINE __m256i bcast(const uint8_t *p)
{
    return _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)p));
}

/* 0/−1 per row of a 32-row unit from its two sign words at p. */
static TAVX2 INLINE __m256i sign_mask(const uint8_t *p)
{
    const __m256i spread = _mm256_setr_epi8(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 3, 3, 3, 3, 3, 3, 3, 3,
                                            2, 2, 2, 2, 2, 2, 2, 2);
    const __m256i bits = _mm256_setr_epi8(-128, 64, 32, 16, 8, 4, 2, 1, -128, 64, 32, 16, 8, 4, 2, 1, -128, 64, 32,
                                          16, 8, 4, 2, 1, -128, 64, 32, 16, 8, 4, 2, 1);
    uint32_t wv;
    memcpy(&wv, p, 4);
    __m256i s = _mm256_shuffle_epi8(_mm256_set1_epi32((int)wv), spread);
    return _mm256_cmpeq_epi8(_mm256_and_si256(s, bits), bits);
}

/* Groups [g0, g1) of NU units into the int16 sums s16 (and the negation
 * counts cnt when TRI). */
static TAVX2 INLINE void tile(const bn_tl_geom *g, const uint8_t *blk, uint64_t h, uint64_t i0, const uint8_t *lut,
                              uint64_t ga, uint64_t g0, uint64_t g1, const int TRI, const int NU, __m256i s16[2][2],
                              __m256i cnt[2])
{
    const __m256i m0f = _mm256_set1_epi8(0x0f);
    const uint64_t sw = (h + 15) / 16;
    const uint8_t *sg = blk + h * g->ng + i0 / 8; /* word i0/16 */
    for (uint64_t gi = g0; gi < g1; gi++) {
        const uint8_t *L = lut + 64 * (gi - ga);
        __m256i ta_lo = bcast(L), ta_hi = bcast(L + 16), tb_lo = bcast(L + 32), tb_hi = bcast(L + 48);
        const uint8_t *x0 = blk + gi * h + i0;
        _Pragma("GCC unroll 2") for (int u = 0; u < NU; u++) {
            __m256i x = _mm256_loadu_si256((const __m256i *)(x0 + 32 * u));
            __m256i ih = _mm256_and_si256(_mm256_srli_epi16(x, 4), m0f), il = _mm256_and_si256(x, m0f);
            __m256i alo = _mm256_shuffle_epi8(ta_lo, ih), ahi = _mm256_shuffle_epi8(ta_hi, ih);
            __m256i blo = _mm256_shuffle_epi8(tb_lo, il), bhi = _mm256_shuffle_epi8(tb_hi, il);
            if (TRI) {
                __m256i ma = sign_mask(sg + (2 * gi * sw) * 2 + 4 * u);
                __m256i mb = sign_mask(sg + ((2 * gi + 1) * sw) * 2 + 4 * u);
                alo = _mm256_xor_si256(alo, ma);
                ahi = _mm256_xor_si256(ahi, ma);
                blo = _mm256_xor_si256(blo, mb);
                bhi = _mm256_xor_si256(bhi, mb);
                cnt[u] = _mm256_sub_epi8(_mm256_sub_epi8(cnt[u], ma), mb);
            }
            s16[u][0] = _mm256_add_epi16(
                s16[u][0], _mm256_add_epi16(_mm256_unpacklo_epi8(alo, ahi), _mm256_unpacklo_epi8(blo, bhi)));
            s16[u][1] = _mm256_add_epi16(
                s16[u][1], _mm256_add_epi16(_mm256_unpackhi_epi8(alo, ahi), _mm256_unpackhi_epi8(blo, bhi)));
        }
    }
}

static TAVX2 INLINE void units_n(const bn_tl_geom *g, const uint8_t *blk, uint64_t h, uint64_t i0,
                                 const uint8_t *lut, uint64_t ga, uint64_t gb, int32_t *acc, const int NU)
{
    __m256i a32[2][4];
    const __m256i z = _mm256_setzero_si256();
    for (int u = 0; u < NU; u++)
        for (int j = 0; j < 4; j++)
            a32[u][j] = z;
    const uint64_t G = g->bk / (g->type == BN_TL2 ? 6 : 4);
    for (uint64_t g0 = ga; g0 < gb;) {
        int tri = g0 < g->gt;
        uint64_t end = tri && g->gt < gb ? g->gt : gb, g1 = end - g0 > G ? g0 + G : end;
        __m256i s16[2][2] = {{z, z}, {z, z}}, cnt[2] = {z, z};
        if (tri)
            tile(g, blk, h, i0, lut, ga, g0, g1, 1, NU, s16, cnt);
        else
            tile(g, blk, h, i0, lut, ga, g0, g1, 0, NU, s16, cnt);
        for (int u = 0; u < NU; u++) {
            __m256i lo = _mm256_add_epi16(s16[u][0], _mm256_unpacklo_epi8(cnt[u], z));
            __m256i hi = _mm256_add_epi16(s16[u][1], _mm256_unpackhi_epi8(cnt[u], z));
            a32[u][0] = _mm256_add_epi32(a32[u][0], _mm256_cvtepi16_epi32(_mm256_castsi256_si128(lo)));
            a32[u][1] = _mm256_add_epi32(a32[u][1], _mm256_cvtepi16_epi32(_mm256_castsi256_si128(hi)));
            a32[u][2] = _mm256_add_epi32(a32[u][2], _mm256_cvtepi16_epi32(_mm256_extracti128_si256(lo, 1)));
            a32[u][3] = _mm256_add_epi32(a32[u][3], _mm256_cvtepi16_epi32(_mm256_extracti128_si256(hi, 1)));
        }
        g0 = g1;
    }
    for (int u = 0; u < NU; u++) /* rows 0-7, 8-15, 16-23, 24-31 */
        for (int j = 0; j < 4; j++)
            _mm256_storeu_si256((__m256i *)(acc + 32 * u + 8 * j), a32[u][j]);
}

TAVX2 void bn_tl_avx2_units(const bn_tl_geom *g, const uint8_t *blk, uint64_t h, uint64_t i0, unsigned n,
                            const uint8_t *lut, uint64_t ga, uint64_t gb, int32_t *acc)
{
    if (n >= 2)
        units_n(g, blk, h, i0, lut, ga, gb, acc, 2);
    else
        units_n(g, blk, h, i0, lut, ga, gb, acc, 1);
}

/* One table: 16 int16 entries (lanes 0-7 low half, 8-15 high) → 16 low
 * bytes, then 16 high bytes. */
static TAVX2 INLINE void put_table(uint8_t *t, __m256i e)
{
    const __m256i split = _mm256_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15, 0, 2, 4, 6, 8, 10,
                                           12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    __m256i x = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(e, split), 0xd8); /* qwords 0, 2, 1, 3 */
    _mm256_storeu_si256((__m256i *)t, x);
}

/* Entry m of a table is Σ d_j·b_j for the weight digits d of index m
 * (kern_tl.h): vpsignw applies a digit to a broadcast activation. */
TAVX2 void bn_tl_avx2_lut(const bn_tl_geom *g, const int8_t *q, uint64_t ga, uint64_t gb, uint8_t *lut)
{
    const __m256i d0 = _mm256_setr_epi16(0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0);
    const __m256i d1 = _mm256_setr_epi16(0, 0, 1, 1, 1, -1, -1, -1, 0, 0, 0, 1, 1, 1, 0, 0);
    const __m256i d2 = _mm256_setr_epi16(0, 1, -1, 0, 1, -1, 0, 1, -1, 0, 1, -1, 0, 1, 0, 0);
    const __m256i p0 = _mm256_setr_epi16(-1, -1, -1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0);
    const __m256i p1 = _mm256_setr_epi16(-1, 0, 1, -1, 0, 1, -1, 0, 1, 0, 0, 0, 0, 0, 0, 0);
    /* table j (of the whole row) sits at lut + 32·(j − 2·ga); triples are
     * tables 0..nt−1, pairs nt..2·ng−1 */
    uint64_t j0 = 2 * ga, j1 = 2 * gb, jt = g->nt < j1 ? g->nt : j1;
    for (uint64_t t = j0; t < jt; t++) {
        const int8_t *b = q + 3 * t;
        __m256i e = _mm256_add_epi16(_mm256_sign_epi16(_mm256_set1_epi16(b[0]), d0),
                                     _mm256_add_epi16(_mm256_sign_epi16(_mm256_set1_epi16(b[1]), d1),
                                                      _mm256_sign_epi16(_mm256_set1_epi16(b[2]), d2)));
        put_table(lut + 32 * (t - j0), e);
    }
    for (uint64_t p = jt > j0 ? jt : j0; p < j1; p++) { /* pair table p: columns kt + 2(p − nt), +1 */
        uint64_t c = g->kt + 2 * (p - g->nt);
        int b0 = c < g->k ? q[c] : 0, b1 = c + 1 < g->k ? q[c + 1] : 0;
        __m256i e = _mm256_add_epi16(_mm256_sign_epi16(_mm256_set1_epi16((short)b0), p0),
                                     _mm256_sign_epi16(_mm256_set1_epi16((short)b1), p1));
        put_table(lut + 32 * (p - j0), e);
    }
}

#define SET(L, name)                                                                                             \
    static void name##_gemm(const uint8_t *w, size_t k, size_t r0, size_t r1, float beta, const int8_t *q,      \
                            const float *s, size_t n, size_t ldq, float *y, size_t ldy)                         \
    {                                                                                                            \
        tl_gemm_with(L, w, k, r0, r1, beta, q, s, n, ldq, y, ldy, 32, 2, bn_tl_avx2_units, bn_tl_avx2_lut);                     \
    }                                                                                                            \
    static void name##_gemv(const uint8_t *w, size_t k, size_t r0, size_t r1, float beta, const int8_t *q,      \
                            float s, float *y)                                                                   \
    {                                                                                                            \
        tl_gemm_with(L, w, k, r0, r1, beta, q, &s, 1, k, y, 0, 32, 2, bn_tl_avx2_units, bn_tl_avx2_lut);                        \
    }                                                                                                            \
    static void name##_gemm_f32(const uint8_t *w, size_t k, size_t r0, size_t r1, float beta, const float *x,   \
                                size_t n, size_t ldx, float *y, size_t ldy)                                     \
    {                                                                                                            \
        tl_gemm_f32(L, w, k, r0, r1, beta, x, n, ldx, y, ldy);                                                  \
    }

SET(BN_TL1, avx2_tl1)
SET(BN_TL2, avx2_tl2)

static float avx2_quantize(const float *x, size_t k, int8_t *q)
{
    return bn_kernels_ref_t2()->quantize(x, k, q);
}

const bn_kernels *bn_kernels_tl_avx2(uint32_t layout)
{
    static const bn_kernels tl1 = {"avx2", BN_TL1, avx2_quantize, avx2_tl1_gemm, avx2_tl1_gemv, avx2_tl1_gemm_f32};
    static const bn_kernels tl2 = {"avx2", BN_TL2, avx2_quantize, avx2_tl2_gemm, avx2_tl2_gemv, avx2_tl2_gemm_f32};
    return layout == BN_TL1 ? &tl1 : layout == BN_TL2 ? &tl2 : NULL;
}

#else

const bn_kernels *bn_kernels_tl_avx2(uint32_t layout)
{
    (void)layout;
    return NULL;
}

void bn_tl_avx2_units(const bn_tl_geom *g, const uint8_t *blk, uint64_t h, uint64_t i0, unsigned n,
                      const uint8_t *lut, uint64_t ga, uint64_t gb, int32_t *acc)
{
    (void)g, (void)blk, (void)h, (void)i0, (void)n, (void)lut, (void)ga, (void)gb, (void)acc;
}

void bn_tl_avx2_lut(const bn_tl_geom *g, const int8_t *q, uint64_t ga, uint64_t gb, uint8_t *lut)
{
    tl_build_lut(g, q, ga, gb, lut);
}

#endif
