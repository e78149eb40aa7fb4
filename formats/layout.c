/* layout.c — names, sizes and tl geometry of the packed ternary layouts
 * (layout.h, formats/bn-model.md §4.1). */
#include "layout.h"
#include "core.h"

#include <stdlib.h>
#include <string.h>

const char *bn_packed_name(uint32_t type)
{
    return type == BN_I2S ? "i2s" : type == BN_B3 ? "b3" : type == BN_TL1 ? "tl1" : type == BN_TL2 ? "tl2" : NULL;
}

int bn_packed_from_name(const char *name, uint32_t *type)
{
    if (!strcmp(name, "i2s")) {
        *type = BN_I2S;
        return 0;
    }
    if (!strcmp(name, "b3")) {
        *type = BN_B3;
        return 0;
    }
    if (!strcmp(name, "tl1") || !strcmp(name, "tl2")) {
        *type = name[2] == '1' ? BN_TL1 : BN_TL2;
        return 0;
    }
    return -1;
}

uint64_t bn_packed_row_bytes(uint32_t type, uint64_t k)
{
    switch (type) {
    case BN_T2:
        return (k + 3) / 4;
    case BN_I2S:
        return (k + 127) / 128 * 32;
    case BN_B3:
        return (k + 319) / 320 * 64;
    default:
        return 0;
    }
}

uint64_t bn_packed_size(uint32_t type, uint64_t rows, uint64_t k)
{
    if (type == BN_TL1 || type == BN_TL2)
        return bn_tl_size(type, rows, k); /* tiled, not row-major (tl_layout.c) */
    uint64_t rb = bn_packed_row_bytes(type, k);
    if (!rb || !rows || rb > (UINT64_MAX - 64) / rows)
        return 0;
    switch (type) {
    case BN_T2:
    case BN_B3:
        return rows * rb + 4;
    case BN_I2S:
        return rows * rb + 32;
    default:
        return 0;
    }
}

int bn_packed_check(uint32_t type, const uint8_t *data, uint64_t rows, uint64_t k)
{
    bn_tl_geom g;
    if (type == BN_TL1 || type == BN_TL2)
        return bn_tl_geom_read(type, data, rows, k, &g);
    return 0;
}

void bn_tl_default_tile(uint32_t type, uint32_t *bm, uint32_t *bk)
{
    /* BM 64 divides every 2B4T row count (2560, 640, 6912) and is one
     * AVX-512 vector of rows; BK 128 (tl1) divides K = 2560 and 6912, and
     * 192 (tl2: 64 triples) divides 6912. */
    *bm = 64;
    *bk = type == BN_TL2 ? 192 : 128;
}

int bn_tl_parse_tile(const char *s, uint32_t *bm, uint32_t *bk)
{
    char *end;
    unsigned long a = strtoul(s, &end, 10);
    if (end == s || (*end != 'x' && *end != 'X') || a > 1u << 20)
        return -1;
    const char *p = end + 1;
    unsigned long b = strtoul(p, &end, 10);
    if (end == p || *end || b > 1u << 20)
        return -1;
    *bm = (uint32_t)a;
    *bk = (uint32_t)b;
    return 0;
}

int bn_tl_geom_make(uint32_t type, uint32_t bm, uint32_t bk, uint64_t rows, uint64_t k, bn_tl_geom *g,
                    const char **why)
{
    const char *w = NULL;
    unsigned step = type == BN_TL2 ? 6 : 4;
    if (type != BN_TL1 && type != BN_TL2)
        w = "not a lookup-table layout";
    else if (!bm || bm % BN_TL_BM_STEP)
        w = "tile rows BM must be a positive multiple of 32 (the SIMD row group)";
    else if (!bk || bk % step || bk > BN_TL_BK_MAX)
        w = type == BN_TL2 ? "tile columns BK must be a multiple of 6 (two triples a byte), at most 252"
                           : "tile columns BK must be a multiple of 4 (two pairs a byte), at most 252";
    else if (!rows || !k || rows > (1ull << 40) || k > (1ull << 32))
        w = "bad shape";
    if (w) {
        if (why)
            *why = w;
        return -1;
    }
    memset(g, 0, sizeof *g);
    g->type = type;
    g->bm = bm;
    g->bk = bk;
    g->rows = rows;
    g->k = k;
    if (type == BN_TL2) {
        g->kt = k / 6 * 6;
        g->nt = g->kt / 3;
        g->gt = g->kt / 6;
        g->ng = g->gt + (k - g->kt + 3) / 4;
        g->block = (uint64_t)bm * g->ng + g->nt * (bm / 16) * 2;
    } else {
        g->ng = (k + 3) / 4;
        g->block = (uint64_t)bm * g->ng;
    }
    return 0;
}

uint64_t bn_tl_size(uint32_t type, uint64_t rows, uint64_t k)
{
    bn_tl_geom g;
    if (bn_tl_geom_make(type, 32, type == BN_TL2 ? 6 : 4, rows, k, &g, NULL))
        return 0;
    /* with BM a multiple of 16 the sign words of all blocks add up to
     * ⌈rows/16⌉ per triple, whatever BM is */
    return BN_TL_HDR + rows * g.ng + g.nt * ((rows + 15) / 16) * 2 + 4;
}

static uint32_t rd32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static uint64_t rd64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

int bn_tl_geom_read(uint32_t type, const uint8_t *data, uint64_t rows, uint64_t k, bn_tl_geom *g)
{
    uint64_t hr = rd64(data + 8), hk = rd64(data + 16);
    if (rd32(data + 24) != type || hk != k || (rows && hr != rows) || rd32(data + 28))
        return -1;
    return bn_tl_geom_make(type, rd32(data), rd32(data + 4), hr, hk, g, NULL);
}

