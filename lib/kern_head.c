/* kern_head.c — the float output head (and anything else that is a float
 * matrix times a few float vectors): y[t][r] = Σ_c W[r][c]·h[t][c] for
 * W in f32, f16 or bf16, rows [r0, r1).
 *
 * Decode reads the whole head per token (2B4T: 128256×2560, 656 MB in
 * bf16, more than all ternary weights), so this must stream at memory
 * bandwidth: bf16 widens with a shift, f16 with vcvtph2ps, both fused
 * into FMA chains, 4 rows at a time. Float sums: agrees with a scalar
 * loop to rounding, not bit for bit. */
#include "cpu.h"
#include "kern_head.h"

#include <string.h>

static float to_f32(uint32_t type, const void *w, size_t i)
{
    if (type == BN_F32)
        return ((const float *)w)[i];
    uint16_t v = ((const uint16_t *)w)[i];
    return type == BN_F16 ? bn_f16_to_f32(v) : bn_bf16_to_f32(v);
}

static void head_scalar(uint32_t type, const void *w, size_t d, size_t r0, size_t r1, const float *h, size_t n,
                        float *y, size_t ldy)
{
    size_t es = type == BN_F32 ? 4 : 2;
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *row = (const uint8_t *)w + r * d * es;
        for (size_t t = 0; t < n; t++) {
            float a = 0;
            for (size_t c = 0; c < d; c++)
                a += to_f32(type, row, c) * h[t * d + c];
            y[t * ldy + r] = a;
        }
    }
}

#define SCALAR_FN(T, name)                                                                                        \
    static void name(const void *w, size_t d, size_t r0, size_t r1, const float *h, size_t n, float *y, size_t ldy) \
    {                                                                                                             \
        head_scalar(T, w, d, r0, r1, h, n, y, ldy);                                                               \
    }
SCALAR_FN(BN_F32, s_f32)
SCALAR_FN(BN_F16, s_f16)
SCALAR_FN(BN_BF16, s_bf16)

#if defined(__x86_64__)
#include <immintrin.h>

#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,f16c,fma")))
#define INLINE inline __attribute__((always_inline))

/* 16 elements of row at column c (mask m for the tail) as floats. */
static T512 INLINE __m512 load16(uint32_t type, const uint8_t *row, size_t c, __mmask16 m)
{
    if (type == BN_F32)
        return _mm512_maskz_loadu_ps(m, (const float *)row + c);
    __m256i v = _mm256_maskz_loadu_epi16(m, (const uint16_t *)row + c);
    if (type == BN_F16)
        return _mm512_cvtph_ps(v);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(v), 16));
}

static T512 INLINE void head512(uint32_t type, const void *w, size_t d, size_t r0, size_t r1, const float *h,
                                size_t n, float *y, size_t ldy)
{
    size_t es = type == BN_F32 ? 4 : 2, full = d / 16 * 16;
    __mmask16 tm = (__mmask16)((1u << (d - full)) - 1);
    for (size_t t = 0; t < n; t++) {
        const float *ht = h + t * d;
        size_t r = r0;
        for (; r + 4 <= r1; r += 4) {
            const uint8_t *row = (const uint8_t *)w + r * d * es;
            __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            for (size_t c = 0; c < d; c += 16) {
                __mmask16 m = c < full ? (__mmask16)0xffff : tm;
                __m512 x = _mm512_maskz_loadu_ps(m, ht + c);
                a0 = _mm512_fmadd_ps(load16(type, row, c, m), x, a0);
                a1 = _mm512_fmadd_ps(load16(type, row + d * es, c, m), x, a1);
                a2 = _mm512_fmadd_ps(load16(type, row + 2 * d * es, c, m), x, a2);
                a3 = _mm512_fmadd_ps(load16(type, row + 3 * d * es, c, m), x, a3);
            }
            y[t * ldy + r] = _mm512_reduce_add_ps(a0);
            y[t * ldy + r + 1] = _mm512_reduce_add_ps(a1);
            y[t * ldy + r + 2] = _mm512_reduce_add_ps(a2);
            y[t * ldy + r + 3] = _mm512_reduce_add_ps(a3);
        }
        for (; r < r1; r++) {
            const uint8_t *row = (const uint8_t *)w + r * d * es;
            __m512 a0 = _mm512_setzero_ps();
            for (size_t c = 0; c < d; c += 16) {
                __mmask16 m = c < full ? (__mmask16)0xffff : tm;
                a0 = _mm512_fmadd_ps(load16(type, row, c, m), _mm512_maskz_loadu_ps(m, ht + c), a0);
            }
            y[t * ldy + r] = _mm512_reduce_add_ps(a0);
        }
    }
}

#define V512_FN(T, name)                                                                                          \
    static T512 void name(const void *w, size_t d, size_t r0, size_t r1, const float *h, size_t n, float *y,      \
                          size_t ldy)                                                                             \
    {                                                                                                             \
        head512(T, w, d, r0, r1, h, n, y, ldy);                                                                   \
    }
V512_FN(BN_F32, v_f32)
V512_FN(BN_F16, v_f16)
V512_FN(BN_BF16, v_bf16)
#endif

bn_head_fn bn_head_find(uint32_t type, const bn_cpu *cpu)
{
#if defined(__x86_64__)
    if (cpu->avx512bw && cpu->avx512vl && cpu->f16c && cpu->fma)
        return type == BN_F32 ? v_f32 : type == BN_F16 ? v_f16 : type == BN_BF16 ? v_bf16 : NULL;
#endif
    (void)cpu;
    return type == BN_F32 ? s_f32 : type == BN_F16 ? s_f16 : type == BN_BF16 ? s_bf16 : NULL;
}
