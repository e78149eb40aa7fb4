/* kern_head.h — the output head: a matrix (f32, f16, bf16, i8, q6, q5,
 * q4) times a few float vectors (kern_head.c). The embedding lookup is in
 * kern_embd.h, bn-quant's row encoders in head_encode.h. */
#ifndef BN_KERN_HEAD_H
#define BN_KERN_HEAD_H

#include "core.h"

struct bn_cpu;

/* y[t*ldy + r] = Σ_c W[r][c]·h[t*d + c] for r in [r0, r1), t < n; W is
 * the whole [rows, d] tensor in the function's type.
 *
 * f32/f16/bf16 and i8 (int8 rows, an f32 scale per row) are widened to
 * float and multiplied with float h. q6, q5 and q4 are int8 dot products:
 * each token's h is first quantized in blocks of 32 (h ≈ dh·qh,
 * dh = absmax/127, qh = rint(h·(127/absmax))), and y = Σ_blocks
 * dw·dh·Σ (u−z)·qh (z the zero point: 32, 16, 8), exact in int32 per
 * block. The SIMD implementations (AVX-512, AVX2, NEON) give the same
 * bits for every type; the scalar one agrees with them to rounding. */
typedef void (*bn_head_fn)(const void *w, size_t rows, size_t d, size_t r0, size_t r1, const float *h, size_t n,
                           float *y, size_t ldy);

/* One implementation's functions by type, in this order (NULL: none), and
 * the one for type (NULL for a type that is no head type): every
 * bn_head_find_* picks through it. */
typedef struct bn_head_fns {
    bn_head_fn f32, f16, bf16, i8, q6, q5, q4;
} bn_head_fns;

static inline bn_head_fn bn_head_fns_pick(const bn_head_fns *f, uint32_t type)
{
    switch (type) {
    case BN_F32: return f->f32;
    case BN_F16: return f->f16;
    case BN_BF16: return f->bf16;
    case BN_I8: return f->i8;
    case BN_Q6: return f->q6;
    case BN_Q5: return f->q5;
    case BN_Q4: return f->q4;
    default: return NULL;
    }
}

/* Widest row a q6, q5 or q4 head may have (its kernels keep one token's quantized
 * row on the stack). */
#define BN_HEAD_MAX_D 16384

/* The fastest implementation cpu can run for a head type (f32, f16, bf16,
 * i8, q6, q5, q4; the portable scalar one for a zeroed bn_cpu); NULL for other
 * types. Choose once (at load), call per token. */
bn_head_fn bn_head_find(uint32_t type, const struct bn_cpu *cpu);

/* The AVX-512 implementations (AVX-512 BW and VL, F16C, FMA; q6, q5 and q4
 * also AVX-512 VNNI) bn_head_find prefers, NULL where the CPU lacks them
 * (kern_head.c). */
bn_head_fn bn_head_find_avx512(uint32_t type, const struct bn_cpu *cpu);
/* The AVX2 (+ F16C, FMA) implementations bn_head_find takes where AVX-512
 * (for q6, q5 and q4: AVX-512 VNNI) is missing (kern_head_avx2.c): every
 * type above, bit for bit the AVX-512 ones' results; NULL for other types
 * or a CPU without them. */
bn_head_fn bn_head_find_avx2(uint32_t type, const struct bn_cpu *cpu);
/* The same for AArch64's Advanced SIMD (kern_head_neon.c). */
bn_head_fn bn_head_find_neon(uint32_t type, const struct bn_cpu *cpu);

/* Bytes of one row of a [rows, d] head tensor (i8: without its scale,
 * which follows all rows). */
size_t bn_head_row_bytes(uint32_t type, size_t d);

/* Whether a [rows, d] tensor of type can be a head or embedding table
 * here; fills why (static text) when not. */
int bn_head_type_ok(uint32_t type, size_t d, const char **why);

#endif
