/* head_act.h — a token's activations as the q6, q5 and q4 heads take them
 * (int8 in blocks of 32, rearranged to the groups' byte order), and the
 * loop over row blocks and tokens that every implementation of those heads
 * shares (head_act.c; kern_head.c, kern_head_avx2.c, kern_head_neon.c).
 * Internal to the kernels. */
#ifndef BN_HEAD_ACT_H
#define BN_HEAD_ACT_H

#include "core.h"
#include "head_layout.h"

/* One token's h for a quantized head of row length d (a multiple of 128):
 * q: d int8, group g's 128 bytes as its codes lie (head_layout.h): bytes
 *    0..63 qh(b, j) at 16b+j, bytes 64..127 qh(b, 16+j) at 64+16b+j
 *    (block b < 4 of 32 columns, j < 16);
 * dh: d/8 floats, per group 16 lanes, block b's dh in lanes 4b..4b+3;
 * cr: d/8 int32, per group z·Σ qh over block b in lane 4b, 0 in the other
 *    three (z: the code's zero point, 32, 16 or 8), so that a lane's
 *    Σ u·qh minus cr is Σ (u − z)·qh once its block's lanes are added.
 * Lane l of a group is the 4 bytes 4l..4l+3 of its first 64 (and of its
 * second 64), as a 32-bit lane of a dot product of 4 bytes adds them. */
typedef struct bn_qact {
    int8_t *q;
    float *dh;
    int32_t *cr;
} bn_qact;

/* The parts of one token's bn_qact in the 2·d bytes at base (64-byte
 * aligned; every part stays aligned as d is a multiple of 128). */
bn_qact bn_qact_at(uint8_t *base, size_t d);

/* h (d floats) in blocks of 32 as int8: dh[c/32] = absmax/127 and
 * qh[c] = rint(h[c]·(127/absmax)) (all 0 for an all-zero block, and for
 * a NaN, or any element of a block holding ±inf). */
void bn_q8_blocks(const float *h, size_t d, int8_t *qh, float *dh);

/* Fills a for h with zero point z. */
void bn_qact_prepare(const float *h, size_t d, int32_t z, bn_qact *a);

/* Rows [r0, r1) of tt tokens (a[0..tt-1]; a[tt..3] repeat the last) into
 * y + t·ldy: one implementation's kernel for one quantized type. */
typedef void (*bn_qhead_block_fn)(const void *w, size_t d, size_t r0, size_t r1, const bn_qact *a, int tt,
                                  float *y, size_t ldy);

/* A quantized head (zero point z) over rows [r0, r1) and n tokens: each
 * token's bn_qact once, then one token over the whole range, or several
 * in blocks of HEAD_ROWS rows (read from memory once for all of them), up
 * to max_tt (1, 2 or 4) tokens a block call, in fours, then twos, then
 * ones. Without memory for several tokens' activations, token by token
 * over the whole range: the same arithmetic. */
void bn_qhead_run(bn_qhead_block_fn block, int32_t z, int max_tt, const void *w, size_t d, size_t r0, size_t r1,
                  const float *h, size_t n, float *y, size_t ldy);

/* The two functions of one implementation of one quantized type: a
 * bn_qhead_block_fn name##_block (attributes ATTR, possibly none) calling
 * kernel(hb, w, d, r0, r1, a, tt, y, ldy), whose hb is then a constant,
 * and the bn_head_fn name running it through bn_qhead_run, up to max_tt
 * tokens a call. */
#define BN_QHEAD_FN(name, ATTR, kernel, hb, max_tt)                                                              \
    static ATTR void name##_block(const void *w, size_t d, size_t r0, size_t r1, const bn_qact *a, int tt,      \
                                  float *y, size_t ldy)                                                          \
    {                                                                                                            \
        kernel(hb, w, d, r0, r1, a, tt, y, ldy);                                                                 \
    }                                                                                                            \
    static void name(const void *w, size_t rows, size_t d, size_t r0, size_t r1, const float *h, size_t n,      \
                     float *y, size_t ldy)                                                                       \
    {                                                                                                            \
        (void)rows;                                                                                              \
        bn_qhead_run(name##_block, QUANT_ZERO(hb), max_tt, w, d, r0, r1, h, n, y, ldy);                          \
    }

#endif
