/* tl_layout.c — the tl1 and tl2 lookup-table layouts (tl_layout.h,
 * formats/bn-model.md §4.1): geometry, element access, lossless
 * conversion from and to t2. */
#include "tl_layout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ codes */

/* tl1: a pair → 3·w0 + w1 + 4 (0..8); anything else decodes to 0, 0. */
static unsigned pair_index(int w0, int w1)
{
    return (unsigned)(3 * w0 + w1 + 4);
}

static void pair_weights(unsigned idx, int8_t *w0, int8_t *w1)
{
    if (idx > 8)
        idx = 4;
    *w0 = (int8_t)((int)idx / 3 - 1);
    *w1 = (int8_t)((int)idx % 3 - 1);
}

/* tl2: v = 9·w0 + 3·w1 + w2 ∈ −13..13; v + 13 has the digits w + 1. */
static void triple_weights(int v, int8_t *w)
{
    if (v < -13 || v > 13)
        v = 0;
    unsigned u = (unsigned)(v + 13);
    w[0] = (int8_t)(u / 9 - 1);
    w[1] = (int8_t)(u / 3 % 3 - 1);
    w[2] = (int8_t)(u % 3 - 1);
}

static int t2_at(const uint8_t *t2, uint64_t k, uint64_t r, uint64_t c)
{
    return c < k ? ((t2[r * ((k + 3) / 4) + c / 4] >> (2 * (c % 4))) & 3) - 1 : 0;
}

/* ------------------------------------------------------------ access */

static int sign_at(const bn_tl_geom *g, const uint8_t *blk, uint64_t h, uint64_t i, uint64_t t)
{
    const uint8_t *s = blk + h * g->ng + (t * ((h + 15) / 16) + i / 16) * 2;
    unsigned word = (unsigned)s[0] | (unsigned)s[1] << 8;
    return (word >> (15 - i % 16)) & 1;
}

unsigned bn_tl_decode_group(const bn_tl_geom *g, const uint8_t *blk, uint64_t h, uint64_t i, uint64_t gi,
                            int8_t *w, uint64_t *c0)
{
    unsigned byte = blk[gi * h + i], hi = byte >> 4, lo = byte & 15, n;
    if (gi < g->gt) {
        int s0 = sign_at(g, blk, h, i, 2 * gi), s1 = sign_at(g, blk, h, i, 2 * gi + 1);
        triple_weights(hi > 13 ? 0 : s0 ? -(int)hi : (int)hi, w);
        triple_weights(lo > 13 ? 0 : s1 ? -(int)lo : (int)lo, w + 3);
        *c0 = 6 * gi;
        n = 6;
    } else {
        pair_weights(hi, &w[0], &w[1]);
        pair_weights(lo, &w[2], &w[3]);
        *c0 = g->kt + 4 * (gi - g->gt);
        n = 4;
    }
    return *c0 + n <= g->k ? n : (unsigned)(g->k - *c0);
}

void bn_tl_decode_row(const bn_tl_geom *g, const uint8_t *data, uint64_t r, int8_t *w)
{
    uint64_t h, i, c0;
    const uint8_t *blk = bn_tl_block(g, data, r, &h, &i);
    int8_t tmp[6];
    for (uint64_t gi = 0; gi < g->ng; gi++) {
        unsigned n = bn_tl_decode_group(g, blk, h, i, gi, tmp, &c0);
        memcpy(w + c0, tmp, n);
    }
}

int bn_tl_get(uint32_t type, const uint8_t *data, uint64_t k, uint64_t r, uint64_t c)
{
    bn_tl_geom g;
    if (bn_tl_geom_read(type, data, 0, k, &g) || r >= g.rows || c >= k)
        return 0;
    uint64_t h, i;
    const uint8_t *blk = bn_tl_block(&g, data, r, &h, &i);
    int8_t w[6];
    if (c < g.kt) {
        uint64_t gi = c / 6, t = c / 3;
        unsigned byte = blk[gi * h + i], m = t % 2 ? byte & 15 : byte >> 4;
        triple_weights(m > 13 ? 0 : sign_at(&g, blk, h, i, t) ? -(int)m : (int)m, w);
        return w[c % 3];
    }
    uint64_t cc = c - g.kt, gi = g.gt + cc / 4;
    unsigned byte = blk[gi * h + i];
    pair_weights(cc % 4 < 2 ? byte >> 4 : byte & 15, &w[0], &w[1]);
    return w[cc % 2];
}

int bn_tl_pack(uint32_t type, uint32_t bm, uint32_t bk, const uint8_t *t2, uint64_t rows, uint64_t k, uint8_t *out)
{
    bn_tl_geom g;
    if (bn_tl_geom_make(type, bm, bk, rows, k, &g, NULL))
        return -1;
    uint64_t size = bn_tl_size(type, rows, k);
    memset(out, 0, size);
    memcpy(out, &g.bm, 4);
    memcpy(out + 4, &g.bk, 4);
    memcpy(out + 8, &rows, 8);
    memcpy(out + 16, &k, 8);
    memcpy(out + 24, &type, 4);
    for (uint64_t r = 0; r < rows; r++) {
        uint64_t h, i;
        uint8_t *blk = (uint8_t *)bn_tl_block(&g, out, r, &h, &i);
        for (uint64_t gi = 0; gi < g.ng; gi++) {
            unsigned nib[2];
            for (int half = 0; half < 2; half++) {
                if (gi < g.gt) {
                    uint64_t t = 2 * gi + (uint64_t)half, c = 3 * t;
                    int v = 9 * t2_at(t2, k, r, c) + 3 * t2_at(t2, k, r, c + 1) + t2_at(t2, k, r, c + 2);
                    nib[half] = (unsigned)(v < 0 ? -v : v);
                    if (v < 0) {
                        uint8_t *s = blk + h * g.ng + (t * ((h + 15) / 16) + i / 16) * 2;
                        unsigned bit = 15 - (unsigned)(i % 16);
                        s[bit / 8] = (uint8_t)(s[bit / 8] | 1u << (bit % 8));
                    }
                } else {
                    uint64_t c = g.kt + 4 * (gi - g.gt) + 2 * (uint64_t)half;
                    nib[half] = pair_index(t2_at(t2, k, r, c), t2_at(t2, k, r, c + 1));
                }
            }
            blk[gi * h + i] = (uint8_t)(nib[0] << 4 | nib[1]);
        }
    }
    memcpy(out + size - 4, t2 + rows * ((k + 3) / 4), 4);
    return 0;
}

int bn_tl_unpack(uint32_t type, const uint8_t *packed, uint64_t rows, uint64_t k, uint8_t *t2)
{
    bn_tl_geom g;
    if (bn_tl_geom_read(type, packed, rows, k, &g))
        return -1;
    /* refuse what the packer never writes: magnitudes 14, 15 and pair
     * indices 9..15 (a lossless round trip could not keep them) */
    for (uint64_t r = 0; r < rows; r++) {
        uint64_t h, i;
        const uint8_t *blk = bn_tl_block(&g, packed, r, &h, &i);
        for (uint64_t gi = 0; gi < g.ng; gi++) {
            unsigned byte = blk[gi * h + i];
            if (gi < g.gt ? (byte >> 4) > 13 || (byte & 15) > 13 : (byte >> 4) > 8 || (byte & 15) > 8)
                return -1;
        }
    }
    int8_t *w = malloc(k + 8);
    if (!w)
        return -1;
    uint64_t rb = (k + 3) / 4;
    memset(t2, 0x55, rows * rb);
    for (uint64_t r = 0; r < rows; r++) {
        bn_tl_decode_row(&g, packed, r, w);
        for (uint64_t c = 0; c < k; c++) {
            uint8_t *b = &t2[r * rb + c / 4];
            unsigned sh = 2 * (unsigned)(c % 4);
            *b = (uint8_t)((*b & ~(3u << sh)) | (unsigned)(w[c] + 1) << sh);
        }
    }
    free(w);
    memcpy(t2 + rows * rb, packed + bn_tl_size(type, rows, k) - 4, 4);
    return 0;
}
