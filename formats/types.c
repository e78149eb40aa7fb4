/* types.c — the bn tensor types: names and sizes (formats/bn-model.md §4). */
#include "formats.h"
#include "layout.h"

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
    case BN_Q6: /* groups of 128 columns, 104 bytes each (head_layout.h) */
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

