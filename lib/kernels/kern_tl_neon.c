/* kern_tl_neon.c — AArch64 Advanced SIMD kernels for the lookup-table
 * layouts tl1 and tl2 (kern_tl.h): tbl (vqtbl1q_u8) looks up 16 rows of
 * one column group per 16-byte load, on the low and the high plane of each
 * table; zipping the planes gives int16 for rows 0-7 and 8-15, widened to
 * int32 once per BK-column tile. A unit is 16 rows; two units share each
 * table load.
 *
 * tl2 signs: a unit's u16 word (row i at bit 15 − i) is duplicated, spread
 * to the byte of each row (tbl) and tested (cmtst), giving the 0/−1 byte
 * mask that complements both planes and counts the negations. */
#include "kern_tl.h"

#if defined(__aarch64__)
#include <arm_neon.h>

#define INLINE inline __attribute__((always_inline))

static INLINE uint8x16_t sign_mask(const uint8_t *p)
{
    static const uint8_t spread_b[16] = {1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0};
    static const uint8_t bits_b[16] = {128, 64, 32, 16, 8, 4, 2, 1, 128, 64, 32, 16, 8, 4, 2, 1};
    uint16_t wv;
    memcpy(&wv, p, 2);
    uint8x16_t s = vqtbl1q_u8(vreinterpretq_u8_u16(vdupq_n_u16(wv)), vld1q_u8(spread_b));
    return vtstq_u8(s, vld1q_u8(bits_b));
}

static INLINE int16x8_t zip_lo(uint8x16_t lo, uint8x16_t hi)
{
    return vreinterpretq_s16_u8(vzip1q_u8(lo, hi));
}

static INLINE int16x8_t zip_hi(uint8x16_t lo, uint8x16_t hi)
{
    return vreinterpretq_s16_u8(vzip2q_u8(lo, hi));
}

static INLINE void tile(const bn_tl_geom *g, const uint8_t *blk, uint64_t h, uint64_t i0, const uint8_t *lut,
                        uint64_t ga, uint64_t g0, uint64_t g1, const int TRI, const int NU, int16x8_t s16[2][2], uint8x16_t cnt[2])
{
    const uint8x16_t m0f = vdupq_n_u8(0x0f);
    const uint64_t sw = (h + 15) / 16;
    const uint8_t *sg = blk + h * g->ng + i0 / 8;
    for (uint64_t gi = g0; gi < g1; gi++) {
        const uint8_t *L = lut + 64 * (gi - ga);
        uint8x16_t ta_lo = vld1q_u8(L), ta_hi = vld1q_u8(L + 16), tb_lo = vld1q_u8(L + 32), tb_hi = vld1q_u8(L + 48);
        const uint8_t *x0 = blk + gi * h + i0;
        _Pragma("GCC unroll 2") for (int u = 0; u < NU; u++) {
            uint8x16_t x = vld1q_u8(x0 + 16 * u);
            uint8x16_t ih = vshrq_n_u8(x, 4), il = vandq_u8(x, m0f);
            uint8x16_t alo = vqtbl1q_u8(ta_lo, ih), ahi = vqtbl1q_u8(ta_hi, ih);
            uint8x16_t blo = vqtbl1q_u8(tb_lo, il), bhi = vqtbl1q_u8(tb_hi, il);
            if (TRI) {
                uint8x16_t ma = sign_mask(sg + 2 * gi * sw * 2 + 2 * u);
                uint8x16_t mb = sign_mask(sg + (2 * gi + 1) * sw * 2 + 2 * u);
                alo = veorq_u8(alo, ma);
                ahi = veorq_u8(ahi, ma);
                blo = veorq_u8(blo, mb);
                bhi = veorq_u8(bhi, mb);
                cnt[u] = vsubq_u8(vsubq_u8(cnt[u], ma), mb);
            }
            s16[u][0] = vaddq_s16(s16[u][0], vaddq_s16(zip_lo(alo, ahi), zip_lo(blo, bhi)));
            s16[u][1] = vaddq_s16(s16[u][1], vaddq_s16(zip_hi(alo, ahi), zip_hi(blo, bhi)));
        }
    }
}

static INLINE void units_n(const bn_tl_geom *g, const uint8_t *blk, uint64_t h, uint64_t i0, const uint8_t *lut, uint64_t ga, uint64_t gb,
                           int32_t *acc, const int NU)
{
    int32x4_t a32[2][4];
    for (int u = 0; u < NU; u++)
        for (int j = 0; j < 4; j++)
            a32[u][j] = vdupq_n_s32(0);
    const uint64_t G = g->bk / (g->type == BN_TL2 ? 6 : 4);
    const uint8x16_t z = vdupq_n_u8(0);
    for (uint64_t g0 = ga; g0 < gb;) {
        int tri = g0 < g->gt;
        uint64_t end = tri && g->gt < gb ? g->gt : gb, g1 = end - g0 > G ? g0 + G : end;
        int16x8_t s16[2][2];
        uint8x16_t cnt[2] = {z, z};
        for (int u = 0; u < 2; u++)
            s16[u][0] = s16[u][1] = vdupq_n_s16(0);
        if (tri)
            tile(g, blk, h, i0, lut, ga, g0, g1, 1, NU, s16, cnt);
        else
            tile(g, blk, h, i0, lut, ga, g0, g1, 0, NU, s16, cnt);
        for (int u = 0; u < NU; u++) {
            int16x8_t lo = vaddq_s16(s16[u][0], zip_lo(cnt[u], z)), hi = vaddq_s16(s16[u][1], zip_hi(cnt[u], z));
            a32[u][0] = vaddw_s16(a32[u][0], vget_low_s16(lo));
            a32[u][1] = vaddw_high_s16(a32[u][1], lo);
            a32[u][2] = vaddw_s16(a32[u][2], vget_low_s16(hi));
            a32[u][3] = vaddw_high_s16(a32[u][3], hi);
        }
        g0 = g1;
    }
    for (int u = 0; u < NU; u++)
        for (int j = 0; j < 4; j++)
            vst1q_s32(acc + 16 * u + 4 * j, a32[u][j]);
}

static void neon_units(const bn_tl_geom *g, const uint8_t *blk, uint64_t h, uint64_t i0, unsigned n,
                       const uint8_t *lut, uint64_t ga, uint64_t gb, int32_t *acc)
{
    if (n >= 2)
        units_n(g, blk, h, i0, lut, ga, gb, acc, 2);
    else
        units_n(g, blk, h, i0, lut, ga, gb, acc, 1);
}

static float neon_quantize(const float *x, size_t k, int8_t *q)
{
    return bn_kernels_ref_t2()->quantize(x, k, q);
}

#define SET(L, name)                                                                                             \
    static void name##_gemm(const uint8_t *w, size_t k, size_t r0, size_t r1, float beta, const int8_t *q,      \
                            const float *s, size_t n, size_t ldq, float *y, size_t ldy)                         \
    {                                                                                                            \
        tl_gemm_with(L, w, k, r0, r1, beta, q, s, n, ldq, y, ldy, 16, 2, neon_units, NULL);                           \
    }                                                                                                            \
    static void name##_gemv(const uint8_t *w, size_t k, size_t r0, size_t r1, float beta, const int8_t *q,      \
                            float s, float *y)                                                                   \
    {                                                                                                            \
        tl_gemm_with(L, w, k, r0, r1, beta, q, &s, 1, k, y, 0, 16, 2, neon_units, NULL);                              \
    }                                                                                                            \
    static void name##_gemm_f32(const uint8_t *w, size_t k, size_t r0, size_t r1, float beta, const float *x,   \
                                size_t n, size_t ldx, float *y, size_t ldy)                                     \
    {                                                                                                            \
        tl_gemm_f32(L, w, k, r0, r1, beta, x, n, ldx, y, ldy);                                                  \
    }

SET(BN_TL1, neon_tl1)
SET(BN_TL2, neon_tl2)

const bn_kernels *bn_kernels_tl_neon(uint32_t layout)
{
    static const bn_kernels tl1 = {"neon", BN_TL1, neon_quantize, neon_tl1_gemm, neon_tl1_gemv, neon_tl1_gemm_f32};
    static const bn_kernels tl2 = {"neon", BN_TL2, neon_quantize, neon_tl2_gemm, neon_tl2_gemv, neon_tl2_gemm_f32};
    return layout == BN_TL1 ? &tl1 : layout == BN_TL2 ? &tl2 : NULL;
}

#else

const bn_kernels *bn_kernels_tl_neon(uint32_t layout)
{
    (void)layout;
    return NULL;
}

#endif
