/* pack_layout.c — the packed ternary layouts: sizes, element access, and
 * lossless conversion from and to `t2` (formats/bn-model.md §4.1). */
#include "pack.h"
#include "tl_layout.h"

#include <string.h>

/* Byte and shift of (r, c) in an I2_S row: block c/128, element j = c%128
 * sits in byte j%32 at bits 7-2(j/32) : 6-2(j/32). */
static inline void i2s_pos(uint64_t rb, uint64_t r, uint64_t c, uint64_t *byte, unsigned *shift)
{
    uint64_t j = c % 128;
    *byte = r * rb + c / 128 * 32 + j % 32;
    *shift = 6 - 2 * (unsigned)(j / 32);
}

/* Digit j (0 = most significant) of the five a b3 byte holds: each step
 * multiplies the byte, read as a base-3 fraction of 256, by 3 (mod 256)
 * and the next digit is what moved past the point. */
static inline int b3_digit(unsigned q, unsigned j)
{
    for (unsigned i = 0; i < j; i++)
        q = (3 * q) & 255;
    return (int)((3 * q) >> 8);
}

int bn_packed_get(uint32_t type, const uint8_t *data, uint64_t k, uint64_t r, uint64_t c)
{
    uint64_t rb = bn_packed_row_bytes(type, k), b;
    unsigned sh;
    if (type == BN_TL1 || type == BN_TL2)
        return bn_tl_get(type, data, k, r, c);
    if (type == BN_B3)
        return b3_digit(data[r * rb + c / 320 * 64 + c % 64], (unsigned)(c % 320 / 64)) - 1;
    if (type == BN_I2S)
        i2s_pos(rb, r, c, &b, &sh);
    else {
        b = r * rb + c / 4;
        sh = 2 * (unsigned)(c % 4);
    }
    return (int)((data[b] >> sh) & 3) - 1;
}

int bn_t2_find_bad(const uint8_t *t2, uint64_t rows, uint64_t k, uint64_t *row, uint64_t *col)
{
    uint64_t rb = (k + 3) / 4;
    for (uint64_t r = 0; r < rows; r++)
        for (uint64_t i = 0; i < rb; i++) {
            uint8_t b = t2[r * rb + i];
            /* a code 3 has both its bits set */
            if (!((b & (b >> 1)) & 0x55) && (i + 1 < rb || k % 4 == 0 || b >> (2 * (k % 4)) == 0x55 >> (2 * (k % 4))))
                continue;
            for (unsigned j = 0; j < 4; j++) {
                unsigned code = (b >> (2 * j)) & 3;
                if (code == 3 || (4 * i + j >= k && code != 1)) {
                    *row = r;
                    *col = 4 * i + j;
                    return 1;
                }
            }
        }
    return 0;
}

int bn_pack_t2_rows(uint32_t type, const uint8_t *t2, uint64_t k, uint64_t r0, uint64_t r1, uint8_t *out)
{
    uint64_t rb = bn_packed_row_bytes(type, k), t2rb = (k + 3) / 4;
    if (type == BN_B3) {
        for (uint64_t r = r0; r < r1; r++)
            for (uint64_t i = 0; i < rb; i++) {
                uint64_t c0 = i / 64 * 320 + i % 64;
                unsigned v = 0;
                for (unsigned j = 0; j < 5; j++) {
                    uint64_t c = c0 + 64 * j;
                    unsigned code = c < k ? (t2[r * t2rb + c / 4] >> (2 * (c % 4))) & 3 : 1;
                    v = 3 * v + code;
                }
                out[r * rb + i] = (uint8_t)((v * 256 + 242) / 243); /* ⌈256·v/243⌉ */
            }
        return 0;
    }
    if (type != BN_I2S)
        return -1;
    memset(out + r0 * rb, 0x55, (r1 - r0) * rb); /* code 1 (w = 0) in every padding slot */
    for (uint64_t r = r0; r < r1; r++)
        for (uint64_t c = 0; c < k; c++) {
            unsigned code = (t2[r * t2rb + c / 4] >> (2 * (c % 4))) & 3;
            uint64_t b;
            unsigned sh;
            i2s_pos(rb, r, c, &b, &sh);
            out[b] = (uint8_t)((out[b] & ~(3u << sh)) | (code << sh));
        }
    return 0;
}

void bn_pack_t2_tail(uint32_t type, const uint8_t *t2, uint64_t rows, uint64_t k, uint8_t *out)
{
    uint64_t rb = bn_packed_row_bytes(type, k);
    float beta;
    memcpy(&beta, t2 + rows * ((k + 3) / 4), 4);
    /* i2s: β, then seven copies in bitnet.cpp's 28 spare bytes so that β
     * is also the tensor's last 4 bytes, where bn's loader looks. */
    for (int i = 0; i < (type == BN_I2S ? 8 : 1); i++)
        memcpy(out + rows * rb + 4 * i, &beta, 4);
}

int bn_pack_t2(uint32_t type, const uint8_t *t2, uint64_t rows, uint64_t k, uint8_t *out)
{
    uint64_t size = bn_packed_size(type, rows, k);
    if (!size)
        return -1;
    if (type == BN_T2) {
        memcpy(out, t2, size);
        return 0;
    }
    if (type == BN_TL1 || type == BN_TL2) {
        uint32_t bm, bk;
        bn_tl_default_tile(type, &bm, &bk);
        return bn_tl_pack(type, bm, bk, t2, rows, k, out);
    }
    if (bn_pack_t2_rows(type, t2, k, 0, rows, out))
        return -1;
    bn_pack_t2_tail(type, t2, rows, k, out);
    return 0;
}

int bn_unpack_t2(uint32_t type, const uint8_t *packed, uint64_t rows, uint64_t k, uint8_t *t2)
{
    uint64_t size = bn_packed_size(type, rows, k), t2rb = (k + 3) / 4;
    if (!size)
        return -1;
    if (type == BN_T2) {
        memcpy(t2, packed, size);
        return 0;
    }
    if (type == BN_TL1 || type == BN_TL2)
        return bn_tl_unpack(type, packed, rows, k, t2);
    memset(t2, 0x55, rows * t2rb);
    for (uint64_t r = 0; r < rows; r++)
        for (uint64_t c = 0; c < k; c++) {
            unsigned code = (unsigned)(bn_packed_get(type, packed, k, r, c) + 1);
            uint8_t *b = &t2[r * t2rb + c / 4];
            unsigned sh = 2 * (unsigned)(c % 4);
            *b = (uint8_t)((*b & ~(3u << sh)) | (code << sh));
        }
    memcpy(t2 + rows * t2rb, packed + size - 4, 4);
    return 0;
}
