/* gguf_blocks.c — decoders of the GGML block types that have no bn
 * counterpart of their own (gguf.h): the k-quants llama.cpp and its forks
 * write for embeddings and output heads (Q4_K, Q5_K, Q6_K; Q4_0, Q4_1,
 * Q5_0, Q5_1 and IQ4_NL in blocks of 32), expanded to
 * f32 with ggml's own arithmetic, so every value is the one ggml computes;
 * and the codes of ik_llama.cpp's ternary IQ1_BN and IQ2_BN blocks.
 * Written from the block layouts in formats/gguf-import.md. */
#include "gguf.h"

#include <string.h>

static float f16_at(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return bn_f16_to_f32(h);
}

/* Sub-block j's 6-bit scale and minimum (j < 8) from a Q4_K/Q5_K block's
 * 12 packed bytes: j < 4 in the low 6 bits of bytes j and j+4; j ≥ 4 in
 * a nibble of byte j+4 plus the top 2 bits of bytes j−4 (scale) and j
 * (minimum). */
static void kq_scale_min(const uint8_t *s, unsigned j, unsigned *sc, unsigned *mn)
{
    if (j < 4) {
        *sc = s[j] & 63u;
        *mn = s[j + 4] & 63u;
    } else {
        *sc = (s[j + 4] & 15u) | ((unsigned)(s[j - 4] >> 6) << 4);
        *mn = (unsigned)(s[j + 4] >> 4) | ((unsigned)(s[j] >> 6) << 4);
    }
}

/* Q4_K and Q5_K (qh: NULL for Q4_K): eight sub-blocks of 32, sub-block
 * 2p + h (pair p, half h) from the low (h = 0) or high (h = 1) nibbles of
 * qs[32p .. 32p+31], plus 16 when bit 2p + h of qh[l] is set (Q5_K);
 * value = (d·sc)·q − dmin·m, rounded as ggml does. */
static void kq45_block(const uint8_t *dm, const uint8_t *scales, const uint8_t *qh, const uint8_t *qs, float *y)
{
    float d = f16_at(dm), dmin = f16_at(dm + 2);
    for (unsigned sb = 0; sb < 8; sb++) {
        unsigned sc, mn, p = sb >> 1, h = sb & 1;
        kq_scale_min(scales, sb, &sc, &mn);
        float d1 = d * (float)sc, m1 = dmin * (float)mn;
        for (unsigned l = 0; l < 32; l++) {
            unsigned q = h ? qs[32 * p + l] >> 4 : qs[32 * p + l] & 15u;
            if (qh && (qh[l] >> sb & 1u))
                q += 16;
            y[32 * sb + l] = d1 * (float)q - m1;
        }
    }
}

void bn_gguf_dequant_q4k(const uint8_t *src, uint64_t nblk, float *out)
{
    for (uint64_t b = 0; b < nblk; b++) {
        const uint8_t *blk = src + b * BN_GGUF_Q4K_BYTES;
        kq45_block(blk, blk + 4, NULL, blk + 16, out + b * 256);
    }
}

void bn_gguf_dequant_q5k(const uint8_t *src, uint64_t nblk, float *out)
{
    for (uint64_t b = 0; b < nblk; b++) {
        const uint8_t *blk = src + b * BN_GGUF_Q5K_BYTES;
        kq45_block(blk, blk + 4, blk + 16, blk + 48, out + b * 256);
    }
}

/* Q6_K: ql[128], qh[64], int8 scales[16], f16 d. Half n (values
 * 128n .. 128n+127) uses ql[64n ..], qh[32n ..] and scales[8n ..]; value
 * 128n + 32i + l (i < 4, l < 32) is d·scales[l/16 + 2i]·(q − 32), q being
 * 4 low bits from ql and 2 high bits from qh[l] (below). */
void bn_gguf_dequant_q6k(const uint8_t *src, uint64_t nblk, float *out)
{
    for (uint64_t b = 0; b < nblk; b++) {
        const uint8_t *blk = src + b * BN_GGUF_Q6K_BYTES;
        float d = f16_at(blk + 208);
        float *y = out + b * 256;
        for (unsigned n = 0; n < 2; n++) {
            const uint8_t *ql = blk + 64 * n, *qh = blk + 128 + 32 * n;
            const int8_t *sc = (const int8_t *)(blk + 192 + 8 * n);
            for (unsigned l = 0; l < 32; l++)
                for (unsigned i = 0; i < 4; i++) {
                    /* i = 0: low nibble of ql[l]; 1: low of ql[l+32];
                     * 2: high of ql[l]; 3: high of ql[l+32]; high 2 bits
                     * from qh[l] bits 2i+1:2i. */
                    unsigned lo = ql[l + 32 * (i & 1)];
                    lo = i >= 2 ? lo >> 4 : lo & 15u;
                    int q = (int)(lo | ((qh[l] >> (2 * i) & 3u) << 4)) - 32;
                    y[128 * n + 32 * i + l] = d * (float)sc[l / 16 + 2 * i] * (float)q;
                }
        }
    }
}

/* The blocks of 32 values (gguf-import.md §3a): f16 d first, then for
 * Q4_1/Q5_1 an f16 minimum m, for Q5_0/Q5_1 the fifth bits qh (a 32-bit
 * word: bit j for value j), then qs[16] whose low nibbles are values
 * 0..15 and high nibbles 16..31. IQ4_NL maps each nibble through its
 * table; the others take it (plus 16 for a fifth bit) less the offset (8,
 * 16; none with a minimum). Computed as ggml does: d·q, then + m. */
static const int8_t iq4nl_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                        1,    13,   25,  38,  53,  69,  89,  113};

void bn_gguf_dequant_q32(unsigned type, const uint8_t *src, uint64_t nblk, float *out)
{
    unsigned bytes = bn_gguf_q32_bytes(type);
    int has_min = type == GT_Q4_1 || type == GT_Q5_1, has_qh = type == GT_Q5_0 || type == GT_Q5_1;
    int offset = has_min ? 0 : has_qh ? 16 : 8;
    for (uint64_t b = 0; b < nblk; b++) {
        const uint8_t *blk = src + b * bytes, *qs = blk + 2 + 2 * has_min + 4 * has_qh;
        float d = f16_at(blk), m = has_min ? f16_at(blk + 2) : 0;
        uint32_t qh = 0;
        if (has_qh)
            memcpy(&qh, blk + 2 + 2 * has_min, 4);
        float *y = out + b * 32;
        for (unsigned j = 0; j < 32; j++) {
            unsigned q = j < 16 ? qs[j] & 15u : qs[j - 16] >> 4;
            if (type == GT_IQ4_NL) {
                y[j] = d * (float)iq4nl_values[q];
                continue;
            }
            int v = (int)(q | (qh >> j & 1u) << 4) - offset;
            y[j] = has_min ? (float)v * d + m : (float)v * d;
        }
    }
}

unsigned bn_gguf_q32_bytes(unsigned type)
{
    switch (type) {
    case GT_Q4_0:
    case GT_IQ4_NL:
        return 18;
    case GT_Q4_1:
        return 20;
    case GT_Q5_0:
        return 22;
    case GT_Q5_1:
        return 24;
    default:
        return 0;
    }
}

/* IQ2_BN block of 64: byte j holds elements j, j+16, j+32, j+48 in bits
 * 1:0, 3:2, 5:4, 7:6 (code = w + 1; 3 decodes to +2 in ik_llama.cpp). */
void bn_gguf_iq2bn_codes(const uint8_t *blk, uint8_t *codes)
{
    for (unsigned j = 0; j < 16; j++)
        for (unsigned i = 0; i < 4; i++)
            codes[j + 16 * i] = (uint8_t)(blk[j] >> (2 * i) & 3u);
}

/* Digit at weight 3^j (j < 5) of a byte holding ⌈256·v/243⌉:
 * t = byte·3^(4−j) mod 256, digit = ⌊3t/256⌋ (always 0..2). */
static unsigned iq1_digit(uint8_t byte, unsigned j)
{
    static const uint8_t mult[5] = {81, 27, 9, 3, 1};
    uint8_t t = (uint8_t)(byte * mult[j]);
    return (3u * t) >> 8;
}

/* IQ1_BN block of 64 (ql[12], extra): group g (16 elements) has bytes
 * ql[3g+k] holding elements 16g+5k+j at weight 3^j, and element 16g+15
 * as digit g of extra. */
void bn_gguf_iq1bn_codes(const uint8_t *blk, uint8_t *codes)
{
    for (unsigned g = 0; g < 4; g++) {
        for (unsigned k = 0; k < 3; k++)
            for (unsigned j = 0; j < 5; j++)
                codes[16 * g + 5 * k + j] = (uint8_t)iq1_digit(blk[3 * g + k], j);
        codes[16 * g + 15] = (uint8_t)iq1_digit(blk[12], g);
    }
}
