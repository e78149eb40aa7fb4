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

int bn_to_f32(uint32_t type, const void *src, float *dst, size_t n)
{
    switch (type) {
    case BN_F32:
        memcpy(dst, src, n * 4);
        return 0;
    case BN_F16: {
        const uint16_t *s = src;
        for (size_t i = 0; i < n; i++)
            dst[i] = bn_f16_to_f32(s[i]);
        return 0;
    }
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
