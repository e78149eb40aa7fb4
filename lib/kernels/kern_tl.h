/* kern_tl.h — what the kernel sets for the lookup-table layouts tl1 and tl2
 * share (tl_layout.h). Internal to the kernel files.
 *
 * The idea: instead of multiplying, a kernel looks the partial sum of a
 * weight pair (tl1) or triple (tl2) up in a 16-entry table built from the
 * token's activations, one table per pair or triple:
 *
 *   tl1 pair (b0, b1), index 3·w0 + w1 + 4:  −b0−b1, −b0, −b0+b1, −b1, 0, b1, b0−b1, b0, b0+b1
 *   tl2 triple (b0, b1, b2), index |v|:      0, b2, b1−b2, b1, b1+b2, b0−b1−b2, b0−b1, b0−b1+b2,
 *                                            b0−b2, b0, b0+b2, b0+b1−b2, b0+b1, b0+b1+b2
 *   (unused entries 0; a set tl2 sign bit negates the entry)
 *
 * Entries need 9 bits (up to 3·128 = 384), so each table is stored as two
 * 16-byte planes, low bytes then high bytes: a byte shuffle (vpshufb, tbl)
 * looks 16 or 32 rows up in each plane and interleaving the planes gives
 * int16. Byte group g of a row uses tables 2g (high nibble) and 2g+1 (low
 * nibble) in both layouts, so the table array is 2·G tables of 32 bytes.
 *
 * Exactness: the sum over one BK-column tile stays within int16 (BK ≤ 252,
 * tl_layout.h) and is widened into int32 after each tile. tl2 negates by
 * one's complement on both planes (x ^ −1 = −x − 1) and adds the count of
 * negated entries back after the tile. */
#ifndef BN_KERN_TL_H
#define BN_KERN_TL_H

#include "kernels.h"
#include "tl_layout.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Fills the tables of byte groups [ga, gb) for one token's q (natural
 * order): group gi's two tables at lut + 64·(gi − ga). */
static inline void tl_build_lut(const bn_tl_geom *g, const int8_t *q, uint64_t ga, uint64_t gb, uint8_t *lut)
{
    for (uint64_t gi = ga; gi < gb; gi++)
        for (unsigned half = 0; half < 2; half++) {
            int e[16] = {0};
            if (gi < g->gt) {
                const int8_t *b = q + 3 * (2 * gi + half);
                int b0 = b[0], b1 = b[1], b2 = b[2];
                static const signed char dig[14][3] = {{0, 0, 0},  {0, 0, 1},  {0, 1, -1},  {0, 1, 0},  {0, 1, 1},
                                                       {1, -1, -1}, {1, -1, 0}, {1, -1, 1}, {1, 0, -1}, {1, 0, 0},
                                                       {1, 0, 1},  {1, 1, -1}, {1, 1, 0},  {1, 1, 1}};
                for (int m = 0; m < 14; m++)
                    e[m] = dig[m][0] * b0 + dig[m][1] * b1 + dig[m][2] * b2;
            } else {
                uint64_t c = g->kt + 4 * (gi - g->gt) + 2 * half;
                int b0 = c < g->k ? q[c] : 0, b1 = c + 1 < g->k ? q[c + 1] : 0;
                for (int idx = 0; idx < 9; idx++)
                    e[idx] = (idx / 3 - 1) * b0 + (idx % 3 - 1) * b1;
            }
            uint8_t *t = lut + 32 * (2 * (gi - ga) + half);
            for (int j = 0; j < 16; j++) {
                uint16_t u = (uint16_t)e[j];
                t[j] = (uint8_t)u;
                t[16 + j] = (uint8_t)(u >> 8);
            }
        }
}

/* Σ w·q over byte groups [ga, gb) of row r, by decoding (the reference;
 * the SIMD sets use it for rows outside whole row units). */
static inline int32_t tl_row_dot(const bn_tl_geom *g, const uint8_t *w, uint64_t r, const int8_t *q, uint64_t ga,
                                 uint64_t gb)
{
    uint64_t h, i, c0;
    const uint8_t *blk = bn_tl_block(g, w, r, &h, &i);
    int8_t wv[6];
    int32_t a = 0;
    for (uint64_t gi = ga; gi < gb; gi++) {
        unsigned n = bn_tl_decode_group(g, blk, h, i, gi, wv, &c0);
        for (unsigned j = 0; j < n; j++)
            a += wv[j] * q[c0 + j];
    }
    return a;
}

/* A SIMD set's work on one row group: n units of U rows starting at row i0
 * of a block of h rows, byte groups [ga, gb) (their tables at lut), sums
 * into acc[0 .. n·U). */
typedef void (*tl_units_fn)(const bn_tl_geom *g, const uint8_t *blk, uint64_t h, uint64_t i0, unsigned n,
                            const uint8_t *lut, uint64_t ga, uint64_t gb, int32_t *acc);
/* Builds the tables of groups [ga, gb) (NULL: tl_build_lut). */
typedef void (*tl_lut_fn)(const bn_tl_geom *g, const int8_t *q, uint64_t ga, uint64_t gb, uint8_t *lut);

enum {
    TL_MAX_ROWS = 64,     /* most rows one tl_units_fn call covers */
    TL_LUT_GROUPS = 1024, /* groups whose tables one pass holds: 64 KiB on the stack (K = 4096 in tl1) */
};

/* The int32 sums live in the output floats' own bytes until the last pass
 * (memcpy, so no aliasing): no allocation per call, any K, any rows. */
static inline void tl_acc_add(float *y, size_t r, int32_t v)
{
    int32_t a;
    memcpy(&a, &y[r], 4);
    a += v;
    memcpy(&y[r], &a, 4);
}

/* Rows [r0, r1) of one token over groups [ga, gb), added into y's sums:
 * whole units through fn (a unit partly outside [r0, r1) is computed and
 * not added), the rest by decoding. */
static inline void tl_rows(const bn_tl_geom *g, const uint8_t *w, const int8_t *q, const uint8_t *lut, uint64_t ga,
                           uint64_t gb, size_t r0, size_t r1, unsigned U, unsigned NU, tl_units_fn fn, float *y)
{
    int32_t acc[TL_MAX_ROWS];
    for (size_t r = r0; r < r1;) {
        uint64_t h, i;
        const uint8_t *blk = bn_tl_block(g, w, r, &h, &i);
        uint64_t c0 = i / U * U, avail = (h - c0) / U, need = (i - c0 + (r1 - r) + U - 1) / U;
        unsigned n = (unsigned)(avail < need ? avail : need);
        if (n > NU)
            n = NU;
        if (!fn || !n) {
            tl_acc_add(y, r, tl_row_dot(g, w, r, q, ga, gb));
            r++;
            continue;
        }
        fn(g, blk, h, c0, n, lut, ga, gb, acc);
        size_t first = r - (size_t)(i - c0);
        for (size_t j = 0; j < (size_t)n * U; j++)
            if (first + j >= r && first + j < r1)
                tl_acc_add(y, first + j, acc[j]);
        r = first + (size_t)n * U;
    }
}

/* gemm/gemv for a set: per token, passes of up to TL_LUT_GROUPS groups,
 * each building its tables and running all rows. A header that does not
 * describe a k-column tensor with at least r1 rows gives NaN (kernels
 * cannot report errors; the loader checks sizes and bn_packed_check the
 * rest). */
static inline void tl_gemm_with(uint32_t layout, const uint8_t *w, size_t k, size_t r0, size_t r1, float beta,
                                const int8_t *q, const float *s, size_t n, size_t ldq, float *y, size_t ldy,
                                unsigned U, unsigned NU, tl_units_fn fn, tl_lut_fn lut_fn)
{
    bn_tl_geom g;
    if (bn_tl_geom_read(layout, w, 0, k, &g) || r1 > g.rows) {
        for (size_t t = 0; t < n; t++)
            for (size_t r = r0; r < r1; r++)
                y[t * ldy + r] = NAN;
        return;
    }
    uint8_t lut[64 * TL_LUT_GROUPS];
    for (size_t t = 0; t < n; t++) {
        float *yt = y + t * ldy;
        const int8_t *qt = q + t * ldq;
        memset(yt + r0, 0, (r1 - r0) * sizeof *yt); /* int32 zeros */
        for (uint64_t ga = 0; ga < g.ng; ga += TL_LUT_GROUPS) {
            uint64_t gb = g.ng - ga > TL_LUT_GROUPS ? ga + TL_LUT_GROUPS : g.ng;
            if (fn)
                (lut_fn ? lut_fn : tl_build_lut)(&g, qt, ga, gb, lut);
            tl_rows(&g, w, qt, lut, ga, gb, r0, r1, U, NU, fn, yt);
        }
        for (size_t r = r0; r < r1; r++) {
            int32_t a;
            memcpy(&a, &yt[r], 4);
            yt[r] = bn_kern_out(a, s[t], beta);
        }
    }
}

/* Float activations (verification only): decoded groups; the sums only
 * have to agree with the reference to rounding. */
static inline void tl_gemm_f32(uint32_t layout, const uint8_t *w, size_t k, size_t r0, size_t r1, float beta,
                               const float *x, size_t n, size_t ldx, float *y, size_t ldy)
{
    bn_tl_geom g;
    int bad = bn_tl_geom_read(layout, w, 0, k, &g) || r1 > g.rows;
    for (size_t r = r0; r < r1; r++) {
        float a[BN_KERN_MAX_N] = {0};
        uint64_t h, i, c0;
        const uint8_t *blk = bad ? NULL : bn_tl_block(&g, w, r, &h, &i);
        for (uint64_t gi = 0; !bad && gi < g.ng; gi++) {
            int8_t wv[6];
            unsigned m = bn_tl_decode_group(&g, blk, h, i, gi, wv, &c0);
            for (size_t t = 0; t < n; t++)
                for (unsigned j = 0; j < m; j++)
                    a[t] += (float)wv[j] * x[t * ldx + c0 + j];
        }
        for (size_t t = 0; t < n; t++)
            y[t * ldy + r] = bad ? NAN : a[t] * beta;
    }
}

/* The per-ISA constructors (kern_tl_*.c): NULL for a layout they lack or
 * when not built for this architecture; kern_select.c checks the CPU. */
const bn_kernels *bn_kernels_tl_ref(uint32_t layout);
const bn_kernels *bn_kernels_tl_avx2(uint32_t layout);
const bn_kernels *bn_kernels_tl_avx512(uint32_t layout);
const bn_kernels *bn_kernels_tl_neon(uint32_t layout);
/* The AVX2 unit function (32-row units), which the AVX-512 set uses for a
 * lone 32-row unit. */
void bn_tl_avx2_units(const bn_tl_geom *g, const uint8_t *blk, uint64_t h, uint64_t i0, unsigned n,
                      const uint8_t *lut, uint64_t ga, uint64_t gb, int32_t *acc);
/* tl_build_lut with AVX2 (a table a few instructions), for both x86 sets. */
void bn_tl_avx2_lut(const bn_tl_geom *g, const int8_t *q, uint64_t ga, uint64_t gb, uint8_t *lut);

#endif
