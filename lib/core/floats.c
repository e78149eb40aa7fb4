/* floats.c — f32, f16 and bf16: scalar conversions and rows of them. */
#include "core.h"

#include <math.h>
#include <string.h>

float bn_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    uint32_t bits;
    if (exp == 0) {
        if (man == 0)
            bits = sign;
        else { /* subnormal: value = man * 2^-24 */
            float f = ldexpf((float)man, -24);
            memcpy(&bits, &f, 4);
            bits |= sign;
        }
    } else if (exp == 31)
        bits = sign | 0x7f800000u | (man << 13);
    else
        bits = sign | ((exp + 112) << 23) | (man << 13);
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t bn_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) /* inf or nan */
        return sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 : 0);
    if (ax >= 0x477ff000u) /* rounds to >= 65520: overflow */
        return sign | 0x7c00;
    if (ax < 0x38800000u) { /* below the smallest normal: subnormal or zero */
        float a;
        memcpy(&a, &ax, 4);
        /* scale so that one f16 subnormal ulp (2^-24) is 1, round to even */
        return sign | (uint16_t)nearbyintf(a * 16777216.0f);
    }
    uint32_t mant = ax & 0x7fffff;
    uint32_t exp = (ax >> 23) - 112;
    uint32_t r = (exp << 10) | (mant >> 13);
    uint32_t rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (r & 1)))
        r++;
    return sign | (uint16_t)r;
}

float bn_bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t bn_f32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((x >> 16) | 0x40);
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define BN_FLOATS_F16C 1

/* f16 rows eight at a time with vcvtph2ps, which gives bn_f16_to_f32's
 * bits for every value but a signalling NaN (it sets the quiet bit): a
 * group of eight with an exponent of all ones (infinities, NaN) goes
 * through bn_f16_to_f32, so the bits are always the same. bn-quant reads
 * every float weight through here. */
__attribute__((target("avx,f16c"))) static size_t f16_rows_f16c(const uint16_t *s, float *dst, size_t n)
{
    const __m128i exp = _mm_set1_epi16(0x7c00);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm_loadu_si128((const __m128i *)(s + i));
        if (_mm_movemask_epi8(_mm_cmpeq_epi16(_mm_and_si128(h, exp), exp))) {
            for (size_t j = i; j < i + 8; j++)
                dst[j] = bn_f16_to_f32(s[j]);
            continue;
        }
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
    }
    return i;
}
#endif

/* f16 to f32 for n values; scalar unless the CPU converts them (F16C).
 * AVX2 stands for F16C: every x86 CPU with AVX2 has it (Intel since Ivy
 * Bridge, AMD since Piledriver, before their AVX2), and clang 14 cannot
 * ask for "f16c" by name. */
void bn_f16_row_to_f32(const uint16_t *s, float *dst, size_t n)
{
    size_t i = 0;
#ifdef BN_FLOATS_F16C
    if (__builtin_cpu_supports("avx2"))
        i = f16_rows_f16c(s, dst, n);
#endif
    for (; i < n; i++)
        dst[i] = bn_f16_to_f32(s[i]);
}

int bn_to_f32(uint32_t type, const void *src, float *dst, size_t n)
{
    switch (type) {
    case BN_F32:
        memcpy(dst, src, n * 4);
        return 0;
    case BN_F16:
        bn_f16_row_to_f32(src, dst, n);
        return 0;
    case BN_BF16: {
        const uint16_t *s = src;
        for (size_t i = 0; i < n; i++)
            dst[i] = bn_bf16_to_f32(s[i]);
        return 0;
    }
    default:
        return -1;
    }
}
