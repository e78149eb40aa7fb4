/* types.c — the bn tensor types: names, sizes, and float conversions. */
#include "bn.h"
#include "pack.h"

#include <math.h>
#include <string.h>

static const char *const type_names[] = {
    [BN_F32] = "f32", [BN_F16] = "f16", [BN_BF16] = "bf16", [BN_I8] = "i8",
    [BN_T2] = "t2",   [BN_I32] = "i32", [BN_U8] = "u8", [BN_Q6] = "q6", [BN_Q4] = "q4",
    [BN_Q5] = "q5",
};

const char *bn_type_name(uint32_t type)
{
    if (type < sizeof type_names / sizeof *type_names)
        return type_names[type];
    return bn_packed_name(type); /* kernel-packed layouts (pack_layout.c) */
}

int bn_type_from_name(const char *name, uint32_t *type)
{
    for (uint32_t t = 0; t < sizeof type_names / sizeof *type_names; t++)
        if (type_names[t] && !strcmp(type_names[t], name)) {
            *type = t;
            return 0;
        }
    return bn_packed_from_name(name, type);
}

/* a*b, or 0 on overflow (0 is never a valid product here: shapes are > 0). */
static uint64_t mul_ok(uint64_t a, uint64_t b)
{
    if (a && b > UINT64_MAX / a)
        return 0;
    return a * b;
}

static uint64_t add_ok(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? 0 : a + b;
}

uint64_t bn_type_size(uint32_t type, uint32_t ndim, const uint64_t *shape)
{
    if (ndim < 1 || ndim > BN_MAX_DIMS)
        return 0;
    uint64_t rows = 1;
    for (uint32_t i = 0; i + 1 < ndim; i++) {
        if (!shape[i])
            return 0;
        rows = mul_ok(rows, shape[i]);
        if (!rows)
            return 0;
    }
    uint64_t k = shape[ndim - 1];
    if (!k)
        return 0;
    uint64_t n = mul_ok(rows, k);
    if (!n || n > (UINT64_MAX >> 4))
        return 0;
    switch (type) {
    case BN_F32:
    case BN_I32:
        return n * 4;
    case BN_F16:
    case BN_BF16:
        return n * 2;
    case BN_U8:
        return n;
    case BN_I8:
        return add_ok(n, mul_ok(rows, 4));
    case BN_T2:
        return add_ok(mul_ok(rows, (k + 3) / 4), 4);
    case BN_Q6: /* groups of 128 columns, 104 bytes each (kern_head.h) */
        return k % 128 ? 0 : mul_ok(rows, k / 128 * 104);
    case BN_Q4: /* groups of 128 columns, 72 bytes each */
        return k % 128 ? 0 : mul_ok(rows, k / 128 * 72);
    case BN_Q5: /* groups of 128 columns, 88 bytes each */
        return k % 128 ? 0 : mul_ok(rows, k / 128 * 88);
    default:
        /* kernel-packed ternary layouts are matrices (pack_layout.c) */
        return ndim == 2 ? bn_packed_size(type, shape[0], shape[1]) : 0;
    }
}

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
