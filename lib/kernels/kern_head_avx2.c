/* kern_head_avx2.c — the f32, f16, bf16 and i8 heads for x86-64 CPUs with
 * AVX2, F16C and FMA but no AVX-512 (bn_head_find): without them those
 * CPUs ran the scalar loop, one float chain a row at about 0.6 GB/s, so
 * the 2B4T head took a second a token.
 *
 * Bit for bit the AVX-512 heads' results (kern_head.c), so a model's
 * logits do not depend on which of the two a machine has. There a row's
 * sum is 16 lanes, lane j adding columns j, j+16, j+32, ... by FMA, the
 * last partial group through zeroed lanes, then sum16_ps's fixed order;
 * here two 8-lane accumulators hold lanes 0-7 and 8-15, the same FMAs on
 * the same values in the same order (the partial group from zeroed
 * copies, as the masked loads give), then the same additions. Rows 4 at
 * a time from the range's quarters, prefetched, as there; several tokens
 * take a block of rows each (read from memory once, then from L2). */
#include "cpu.h"
#include "head_layout.h"
#include "kern_head.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#define T256 __attribute__((target("avx2,f16c,fma")))
#define INLINE inline __attribute__((always_inline))


/* Lanes 0-7 (lo) and 8-15 (hi) of a 16-lane sum, added as sum16_ps. */
static T256 INLINE float sum16(__m256 lo, __m256 hi)
{
    __m256 t = _mm256_add_ps(hi, lo);
    __m128 u = _mm_add_ps(_mm256_extractf128_ps(t, 1), _mm256_castps256_ps128(t));
    __m128 v = _mm_add_ps(u, _mm_shuffle_ps(u, u, _MM_SHUFFLE(1, 0, 3, 2)));
    return _mm_cvtss_f32(v) + _mm_cvtss_f32(_mm_shuffle_ps(v, v, 1));
}

/* 8 elements of a row (element bytes es: f32 4, f16 and bf16 2, i8 1)
 * from p as floats. */
static T256 INLINE __m256 load8(uint32_t type, const uint8_t *p)
{
    switch (type) {
    case BN_F32: return _mm256_loadu_ps((const float *)(const void *)p);
    case BN_F16: return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)p));
    case BN_BF16:
        return _mm256_castsi256_ps(
            _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)p)), 16));
    default: return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)p)));
    }
}


/* Σ row·h for RT rows (rs bytes apart) into out: 16 columns a step in
 * two halves, the last partial 16 from zero-padded copies; pf: bytes
 * ahead each row is prefetched (0: none). */
static T256 INLINE void rows_dot(uint32_t type, const uint8_t *row, size_t rs, size_t pf, size_t d, const float *h,
                                 const int RT, float out[4])
{
    size_t es = head_elem_bytes(type), full = d / 16 * 16;
    __m256 lo[4], hi[4];
    _Pragma("GCC unroll 4") for (int i = 0; i < RT; i++) lo[i] = hi[i] = _mm256_setzero_ps();
    for (size_t c = 0; c < full; c += 16) {
        if (pf && c * es % 64 == 0)
            _Pragma("GCC unroll 4") for (int i = 0; i < RT; i++)
                _mm_prefetch((const char *)(row + (size_t)i * rs + c * es + pf), _MM_HINT_T0);
        __m256 x0 = _mm256_loadu_ps(h + c), x1 = _mm256_loadu_ps(h + c + 8);
        _Pragma("GCC unroll 4") for (int i = 0; i < RT; i++) {
            const uint8_t *p = row + (size_t)i * rs + c * es;
            lo[i] = _mm256_fmadd_ps(load8(type, p), x0, lo[i]);
            hi[i] = _mm256_fmadd_ps(load8(type, p + 8 * es), x1, hi[i]);
        }
    }
    if (full < d) {
        _Alignas(32) float xt[16] = {0};
        memcpy(xt, h + full, (d - full) * sizeof *xt);
        __m256 x0 = _mm256_load_ps(xt), x1 = _mm256_load_ps(xt + 8);
        _Pragma("GCC unroll 4") for (int i = 0; i < RT; i++) {
            _Alignas(32) uint8_t wt[64] = {0};
            memcpy(wt, row + (size_t)i * rs + full * es, (d - full) * es);
            lo[i] = _mm256_fmadd_ps(load8(type, wt), x0, lo[i]);
            hi[i] = _mm256_fmadd_ps(load8(type, wt + 8 * es), x1, hi[i]);
        }
    }
    _Pragma("GCC unroll 4") for (int i = 0; i < RT; i++) out[i] = sum16(lo[i], hi[i]);
}

/* Rows [r0, r1) of one token h into its logits y: 4 at a time from the
 * range's quarters, the last 1-3 alone; i8 rows times their scales. */
static T256 INLINE void head_rows(uint32_t type, const void *w, size_t rows, size_t d, size_t r0, size_t r1,
                                  const float *h, float *y, size_t pf)
{
    size_t rb = d * head_elem_bytes(type), q = (r1 - r0) / 4;
    float o[4];
    for (size_t r = r0; r < r0 + q; r++) {
        rows_dot(type, (const uint8_t *)w + r * rb, q * rb, pf, d, h, 4, o);
        for (size_t i = 0; i < 4; i++)
            y[r + i * q] = type == BN_I8 ? o[i] * i8_row_scale(w, rows, d, r + i * q) : o[i];
    }
    for (size_t r = r0 + 4 * q; r < r1; r++) {
        rows_dot(type, (const uint8_t *)w + r * rb, rb, 0, d, h, 1, o);
        y[r] = type == BN_I8 ? o[0] * i8_row_scale(w, rows, d, r) : o[0];
    }
}

/* One token: the whole range in four long streams. Several: a block of
 * rows at a time, every token's pass over it after the first from L2. */
static T256 INLINE void head256(uint32_t type, const void *w, size_t rows, size_t d, size_t r0, size_t r1,
                                const float *h, size_t n, float *y, size_t ldy)
{
    size_t step = n == 1 ? r1 - r0 : HEAD_ROWS;
    for (size_t b0 = r0; b0 < r1; b0 += step) {
        size_t b1 = r1 - b0 > step ? b0 + step : r1;
        for (size_t t = 0; t < n; t++)
            head_rows(type, w, rows, d, b0, b1, h + t * d, y + t * ldy, n == 1 ? HEAD_AHEAD : 0);
    }
}

#define HEAD256_FN(name, type)                                                                                   \
    static T256 void name(const void *w, size_t rows, size_t d, size_t r0, size_t r1, const float *h, size_t n, \
                          float *y, size_t ldy)                                                                  \
    {                                                                                                            \
        head256(type, w, rows, d, r0, r1, h, n, y, ldy);                                                         \
    }
HEAD256_FN(v256_f32, BN_F32)
HEAD256_FN(v256_f16, BN_F16)
HEAD256_FN(v256_bf16, BN_BF16)
HEAD256_FN(v256_i8, BN_I8)
#undef HEAD256_FN

bn_head_fn bn_head_find_avx2(uint32_t type, const bn_cpu *cpu)
{
    if (!cpu->avx2 || !cpu->f16c || !cpu->fma)
        return NULL;
    switch (type) {
    case BN_F32: return v256_f32;
    case BN_F16: return v256_f16;
    case BN_BF16: return v256_bf16;
    case BN_I8: return v256_i8;
    default: return NULL;
    }
}

#else

bn_head_fn bn_head_find_avx2(uint32_t type, const bn_cpu *cpu)
{
    (void)type, (void)cpu;
    return NULL;
}

#endif
