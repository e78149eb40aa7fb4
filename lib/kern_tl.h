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

/* Fills the 2·ng tables of 32 bytes for one token's q (natural order). */
static inline void tl_build_lut(const bn_tl_geom *g, const int8_t *q, uint8_t *lut)
{
    for (uint64_t gi = 0; gi < g->ng; gi++)
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
            uint8_t *t = lut + 32 * (2 * gi + half);
            for (int j = 0; j < 16; j++) {
                uint16_t u = (uint16_t)e[j];
                t[j] = (uint8_t)u;
                t[16 + j] = (uint8_t)(u >> 8);
            }
        }
}

/* Σ w·q for row r by decoding it (the reference; the SIMD sets use it for
 * rows outside whole row groups). wrow holds k bytes. */
static inline int32_t tl_row_dot(const bn_tl_geom *g, const uint8_t *w, uint64_t r, const int8_t *q, int8_t *wrow)
{
    bn_tl_decode_row(g, w, r, wrow);
    int32_t a = 0;
    for (uint64_t c = 0; c < g->k; c++)
        a += wrow[c] * q[c];
    return a;
}

/* A SIMD set's work on one row group: n units of U rows starting at row i0
 * of a block of h rows, all K columns, sums into acc[0 .. n·U). */
typedef void (*tl_units_fn)(const bn_tl_geom *g, const uint8_t *blk, uint64_t h, uint64_t i0, unsigned n,
                            const uint8_t *lut, int32_t *acc);

enum { TL_MAX_ROWS = 64 }; /* most rows one tl_units_fn call covers */

/* Rows [r0, r1) of one token: whole units through fn (a unit partly
 * outside [r0, r1) is computed and not written), the rest by decoding. */
static inline void tl_rows(const bn_tl_geom *g, const uint8_t *w, const int8_t *q, const uint8_t *lut, size_t r0,
                           size_t r1, float s, float beta, float *y, unsigned U, unsigned NU, tl_units_fn fn,
                           int8_t *wrow)
{
    int32_t acc[TL_MAX_ROWS];
    for (size_t r = r0; r < r1;) {
        uint64_t h, i;
        const uint8_t *blk = bn_tl_block(g, w, r, &h, &i);
        uint64_t c0 = i / U * U, avail = (h - c0) / U, need = (i + (r1 - r) + U - 1 - c0) / U;
        unsigned n = (unsigned)(avail < need ? avail : need);
        if (n > NU)
            n = NU;
        if (!fn || !n) {
            y[r] = bn_kern_out(tl_row_dot(g, w, r, q, wrow), s, beta);
            r++;
            continue;
        }
        fn(g, blk, h, c0, n, lut, acc);
        size_t first = r - (size_t)(i - c0);
        for (size_t j = 0; j < (size_t)n * U; j++)
            if (first + j >= r && first + j < r1)
                y[first + j] = bn_kern_out(acc[j], s, beta);
        r = first + (size_t)n * U;
    }
}

/* Builds the tables of one token (NULL: tl_build_lut). */
typedef void (*tl_lut_fn)(const bn_tl_geom *g, const int8_t *q, uint8_t *lut);

/* gemm/gemv for a set: per token, build its tables, then its rows. A
 * header that does not describe a k-column tensor with r1 rows gives NaN
 * (kernels cannot report errors; the loader checks sizes, this the rest). */
static inline void tl_gemm_with(uint32_t layout, const uint8_t *w, size_t k, size_t r0, size_t r1, float beta,
                                const int8_t *q, const float *s, size_t n, size_t ldq, float *y, size_t ldy,
                                unsigned U, unsigned NU, tl_units_fn fn, tl_lut_fn lut_fn)
{
    bn_tl_geom g;
    uint8_t *lut = NULL;
    int8_t *wrow = NULL;
    int bad = bn_tl_geom_read(layout, w, 0, k, &g) || r1 > g.rows;
    if (!bad) {
        lut = malloc(64 * g.ng + 64);
        wrow = malloc(k + 8);
        bad = !lut || !wrow;
    }
    for (size_t t = 0; t < n; t++) {
        if (bad) {
            for (size_t r = r0; r < r1; r++)
                y[t * ldy + r] = NAN;
            continue;
        }
        (lut_fn ? lut_fn : tl_build_lut)(&g, q + t * ldq, lut);
        tl_rows(&g, w, q + t * ldq, lut, r0, r1, s[t], beta, y + t * ldy, U, NU, fn, wrow);
    }
    free(lut);
    free(wrow);
}

/* Float activations (verification only): decoded rows, the t2 reference's
 * summation order is not needed (agreement to rounding). */
static inline void tl_gemm_f32(uint32_t layout, const uint8_t *w, size_t k, size_t r0, size_t r1, float beta,
                               const float *x, size_t n, size_t ldx, float *y, size_t ldy)
{
    bn_tl_geom g;
    int8_t *wrow = malloc(k + 8);
    int bad = !wrow || bn_tl_geom_read(layout, w, 0, k, &g) || r1 > g.rows;
    for (size_t r = r0; r < r1; r++) {
        if (!bad)
            bn_tl_decode_row(&g, w, r, wrow);
        for (size_t t = 0; t < n; t++) {
            float a = 0;
            for (size_t c = 0; !bad && c < k; c++)
                a += (float)wrow[c] * x[t * ldx + c];
            y[t * ldy + r] = bad ? NAN : a * beta;
        }
    }
    free(wrow);
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
                      const uint8_t *lut, int32_t *acc);
/* tl_build_lut with AVX2 (a table a few instructions), for both x86 sets. */
void bn_tl_avx2_lut(const bn_tl_geom *g, const int8_t *q, uint8_t *lut);

#endif
