/* head_layout.h — the byte layouts of the quantized head and embedding
 * types (formats/bn-model.md §4.1), shared by the head GEMVs
 * (kern_head.c), the embedding lookup (kern_embd.c) and bn-quant's
 * encoders (head_encode.c). Internal to the kernels. */
#ifndef BN_HEAD_LAYOUT_H
#define BN_HEAD_LAYOUT_H

#include "core.h"

#include <string.h>

/* i8: d int8 per row, then one f32 scale per row after all rows. */
static inline float i8_row_scale(const void *w, size_t rows, size_t d, size_t r)
{
    float sc;
    memcpy(&sc, (const uint8_t *)w + rows * d + 4 * r, 4);
    return sc;
}

/* q4, q5, q6: one family, 4-bit low nibbles
 * plus hb ∈ {0, 1, 2} high bits per code, in groups of 128 columns of
 * 72 + 16·hb bytes:
 *   bytes 0..63   low nibbles: byte 16b+j holds bits 3:0 of u(b, j) in
 *                 bits 3:0 and of u(b, 16+j) in bits 7:4 (block b < 4,
 *                 j < 16);
 *   q6: bytes 64..95 high bit pairs: byte 64+16x+j holds bits 5:4 of
 *                 u(x, j), u(x, 16+j), u(x+2, j), u(x+2, 16+j) at bits
 *                 1:0, 3:2, 5:4, 7:6 (x < 2);
 *   q5: bytes 64..79 high bits: byte 64+j holds bit 4 of u(b, j) at bit
 *                 2b and of u(b, 16+j) at bit 2b+1;
 *   then the four blocks' f16 scales d_b (bytes 64+16·hb ..).
 * u(b, i) ∈ [0, 2^(4+hb)) is element 32b+i of the group; its value is
 * d_b·(u − 2^(3+hb)). The order is the one an AVX-512 kernel wants: a
 * 64-byte load gives all low nibbles, and the high-plane bytes broadcast
 * across a zmm (q6: 32 bytes to both halves, q5: 16 to all four lanes)
 * line up with them after one variable shift. */
enum { QUANT_G = 128, Q6_GB = 104, Q5_GB = 88, Q4_GB = 72 };

#define QUANT_GB(hb) (Q4_GB + 16 * (size_t)(hb)) /* a group's bytes */
#define QUANT_ZERO(hb) (8 << (hb))               /* the zero point: 8, 16, 32 */

/* hb for a q type, −1 for any other */
static inline int quant_hb(uint32_t type)
{
    return type == BN_Q6 ? 2 : type == BN_Q5 ? 1 : type == BN_Q4 ? 0 : -1;
}

/* Code u of element i of group g. */
static inline int quant_code(int hb, const uint8_t *g, size_t i)
{
    size_t b = i / 32, j = i % 16, hi = i % 32 / 16;
    unsigned lo4 = (g[16 * b + j] >> (4 * hi)) & 15u;
    if (hb == 2)
        return (int)(lo4 | ((g[64 + 16 * (b % 2) + j] >> (4 * (b / 2) + 2 * hi)) & 3u) << 4);
    if (hb == 1)
        return (int)(lo4 | ((g[64 + j] >> (2 * b + hi)) & 1u) << 4);
    return (int)lo4;
}

/* Scale d_b of block b of group g. */
static inline float quant_scale(int hb, const uint8_t *g, size_t b)
{
    uint16_t v;
    memcpy(&v, g + QUANT_GB(hb) - 8 + 2 * b, 2);
    return bn_f16_to_f32(v);
}

/* Code u of element i into a zeroed group. */
static inline void quant_set_code(int hb, uint8_t *g, size_t i, unsigned u)
{
    size_t b = i / 32, j = i % 16, hi = i % 32 / 16;
    g[16 * b + j] |= (uint8_t)((u & 15u) << (4 * hi));
    if (hb == 2)
        g[64 + 16 * (b % 2) + j] |= (uint8_t)((u >> 4) << (4 * (b / 2) + 2 * hi));
    else if (hb == 1)
        g[64 + j] |= (uint8_t)((u >> 4) << (2 * b + hi));
}

/* What the heads' implementations (kern_head.c for AVX-512 and the scalar
 * one, kern_head_avx2.c, kern_head_neon.c) share. */

/* Bytes of one element of an f32, f16, bf16 or i8 row (inline, so that
 * a kernel's offsets fold to constants; bn_head_row_bytes for any type). */
static inline size_t head_elem_bytes(uint32_t type)
{
    return type == BN_F32 ? 4 : type == BN_I8 ? 1 : 2;
}

/* Bytes ahead that the heads of one token (and the quantized heads of
 * several, HEAD_AHEAD_N: they spend longer per byte) prefetch each of
 * their four streams (the quarters of a row range), every line; the float
 * heads' several-token tiles and i8 leave it to the hardware. One Zen 5
 * thread, the 2B4T q6 head from memory, each way in turn in one process:
 * 21-27 GB/s with the rows interleaved in fours as one prefetched stream
 * (bn's layout until 2026-12), 30-31 from the quarters without
 * prefetching, 36-39 with it; the f16 head 31-34 without, 32-37 with.
 * (On the Intel (AMX) machine the interleaved stream had gained from 1 KiB
 * to 2 KiB ahead, 4 KiB a little less; several tokens: 4 KiB.) */
enum { HEAD_AHEAD = 2048, HEAD_AHEAD_N = 4096 };
/* Rows per block when a call has several tokens (batched decode): each
 * token's pass over a block reads it from L2, so the head streams from
 * memory once per call, not once per token (2B4T q6: 64 rows are 133 KB,
 * f16 328 KB). Each row's sum is one chain whatever rows share its
 * pass, so every row is computed exactly as without blocks. */
enum { HEAD_ROWS = 64 };

#endif
