/* kern_ilv.h — ternary matrices with their rows interleaved in fours, an
 * in-memory order made at load (bn_model_to_memory), never stored in a
 * file.
 *
 * Why: a GEMV that keeps 4 rows in flight (so its multiply-add chains
 * overlap) reads 4 streams a row apart. Rows are short (512 bytes for a
 * 2560-column b3 row), so those streams never last long enough for the
 * hardware prefetchers, and software prefetches into L1 run out of miss
 * buffers: measured here (AMD EPYC, 2B4T b3 matrices from memory) 10 GB/s
 * against 17.5 GB/s for the same code reading one sequential stream.
 * (b3 has since found a better answer, four long streams from the
 * quarters of a row range, and is no longer interleaved: bn_ilv_find.)
 *
 * The order: rows 4g..4g+3 form group g, stored as 4 row-major rows are
 * (4·rb bytes, at the same offset); inside it unit u of row i sits at
 * (4u + i)·U, units being U = 64 bytes. Rows after the last whole group
 * stay row-major in place. So row r's bytes begin where they did, and a
 * kernel can take rows r0..r1 when r0 is a multiple of 4 and r1 is one
 * or the last row. */
#ifndef BN_KERN_ILV_H
#define BN_KERN_ILV_H

#include "kernels.h"

enum { BN_ILV_ROWS = 4, BN_ILV_UNIT = 64 };

/* GEMV/GEMM over interleaved weights: the contracts of bn_kernels' gemv
 * and gemm (same quantized activations, from the twin set's quantize),
 * bit-identical to them on the row-major matrix; r0 a multiple of 4, r1 a
 * multiple of 4 or the last row. */
typedef struct bn_ilv_kernels {
    uint32_t layout;
    void (*gemm)(const uint8_t *w, size_t k, size_t r0, size_t r1, float beta, const int8_t *q, const float *s,
                 size_t n, size_t ldq, float *y, size_t ldy);
    void (*gemv)(const uint8_t *w, size_t k, size_t r0, size_t r1, float beta, const int8_t *q, float s, float *y);
} bn_ilv_kernels;

/* The interleaved twin of a kernel set (same quantize), or NULL when it
 * has none or k's rows are not whole units. */
const bn_ilv_kernels *bn_ilv_find(const bn_kernels *set, size_t k);

/* Rearranges rows × rb bytes (rb a multiple of unit) from row-major src
 * into the interleaved order at dst (the same size; no overlap). The
 * same code serves other unit sizes (the q6 head's 104-byte groups). */
void bn_ilv_pack(const uint8_t *src, uint64_t rows, uint64_t rb, size_t unit, uint8_t *dst);

#endif
