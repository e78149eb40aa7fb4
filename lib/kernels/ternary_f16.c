/* ternary_f16.c — absmean ternarization read straight from f16 rows.
 *
 * bn-quant's inputs are f16 masters as a rule; converting every row to an
 * f32 copy before each of its two passes (the row sums, then the codes)
 * cost as much as the passes themselves. Here each pass converts sixteen
 * values in registers and uses them at once. The sums keep ternary.c's
 * order (element c in double lane c % 8, the lanes as one tree), and the
 * codes come from the same float division (or product) and rounding, so
 * both are the f32 path's bits; vcvtph2ps differs from bn_f16_to_f32 only
 * in a signalling NaN's quiet bit, which neither a sum of |x| (NaN either
 * way) nor a code (a NaN is code 1 either way) can show. */
#include "quant.h"

#include <math.h>
#include <string.h>

double bn_ternary_row_abssum_f16_ref(const uint16_t *x, uint64_t k)
{
    double l[8] = {0};
    for (uint64_t c = 0; c < k; c++)
        l[c % 8] += fabs((double)bn_f16_to_f32(x[c]));
    return bn_ternary_lanes_total(l);
}

/* Columns c0..k-1 (c0 a multiple of 4) into their bytes. */
static void codes_from(const uint16_t *x, uint64_t c0, uint64_t k, float beta, int recip, uint8_t *out)
{
    float inv = 1.0f / beta;
    for (uint64_t b = c0 / 4; b < (k + 3) / 4; b++) {
        unsigned byte = 0;
        for (unsigned j = 0; j < 4; j++) {
            uint64_t c = 4 * b + j;
            unsigned code = c < k ? bn_ternary_code(bn_f16_to_f32(x[c]), beta, inv, recip) : 1;
            byte |= code << (2 * j);
        }
        out[b] = (uint8_t)byte;
    }
}

void bn_ternary_row_codes_f16_ref(const uint16_t *x, uint64_t k, float beta, int recip, uint8_t *out)
{
    codes_from(x, 0, k, beta, recip, out);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define BN_TERNARY_F16_AVX512 1

__attribute__((target("avx512f"))) static double abssum_avx512(const uint16_t *x, uint64_t k)
{
    __m512d acc = _mm512_setzero_pd(); /* lane j: the elements c with c % 8 == j, in order */
    uint64_t c = 0;
    for (; c + 16 <= k; c += 16) {
        __m512 v = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + c)));
        __m256 lo = _mm512_castps512_ps256(v);
        __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
        acc = _mm512_add_pd(acc, _mm512_abs_pd(_mm512_cvtps_pd(lo)));
        acc = _mm512_add_pd(acc, _mm512_abs_pd(_mm512_cvtps_pd(hi)));
    }
    double l[8];
    _mm512_storeu_pd(l, acc);
    for (; c < k; c++)
        l[c % 8] += fabs((double)bn_f16_to_f32(x[c]));
    return bn_ternary_lanes_total(l);
}

/* Sixteen weights a step: code 1, 2 where the rounded quotient is >= 1, 0
 * where it is <= -1 (NaN neither); shifted to their places in the bytes
 * and each group of four OR-ed into one byte. */
__attribute__((target("avx512f,avx512vl"))) static void codes_avx512(const uint16_t *x, uint64_t k, float beta,
                                                                      int recip, uint8_t *out)
{
    const __m512 vb = _mm512_set1_ps(beta), vinv = _mm512_set1_ps(1.0f / beta), one = _mm512_set1_ps(1),
                 mone = _mm512_set1_ps(-1);
    const __m512i ones = _mm512_set1_epi32(1), shifts = _mm512_set4_epi32(6, 4, 2, 0);
    uint64_t c = 0;
    for (; c + 16 <= k; c += 16) {
        __m512 v = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + c)));
        __m512 q = _mm512_roundscale_ps(recip ? _mm512_mul_ps(v, vinv) : _mm512_div_ps(v, vb),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        __mmask16 up = _mm512_cmp_ps_mask(q, one, _CMP_GE_OQ), down = _mm512_cmp_ps_mask(q, mone, _CMP_LE_OQ);
        __m512i code = _mm512_mask_mov_epi32(ones, up, _mm512_set1_epi32(2));
        code = _mm512_mask_mov_epi32(code, down, _mm512_setzero_si512());
        __m128i b = _mm512_cvtepi32_epi8(_mm512_sllv_epi32(code, shifts)); /* a code a byte, shifted */
        b = _mm_or_si128(b, _mm_srli_epi32(b, 8));
        b = _mm_or_si128(b, _mm_srli_epi32(b, 16)); /* each dword's low byte: its four codes */
        uint32_t packed = (uint32_t)_mm_cvtsi128_si32(_mm_cvtepi32_epi8(b));
        memcpy(out + c / 4, &packed, 4);
    }
    if (c < k)
        codes_from(x, c, k, beta, recip, out);
}

static int use_avx512(void)
{
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl");
}
#endif

double bn_ternary_row_abssum_f16(const uint16_t *x, uint64_t k)
{
#ifdef BN_TERNARY_F16_AVX512
    if (use_avx512())
        return abssum_avx512(x, k);
#endif
    return bn_ternary_row_abssum_f16_ref(x, k);
}

void bn_ternary_row_codes_f16(const uint16_t *x, uint64_t k, float beta, int recip, uint8_t *out)
{
#ifdef BN_TERNARY_F16_AVX512
    if (use_avx512()) {
        codes_avx512(x, k, beta, recip, out);
        return;
    }
#endif
    bn_ternary_row_codes_f16_ref(x, k, beta, recip, out);
}
