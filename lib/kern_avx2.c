/* kern_avx2.c — AVX2 kernels for the 2-bit layouts (t2, i2s), for x86-64
 * CPUs without AVX-512 VNNI.
 *
 * vpmaddubsw multiplies 32 unsigned codes (w+1 ∈ {0,1,2}) by 32 signed
 * activations and adds pairs into int16: |pair| ≤ 2·2·128 = 512, so it
 * never saturates, and the four planes of one 32-byte load sum to at most
 * 2048 before vpmaddwd widens them to int32. Exact. Activations arrive in
 * this set's order (kern_2bit.h, W = 32). GEMM tiles are 2 rows × 4
 * tokens (8 int32 + 8 int16 accumulators fit the 16 ymm registers with
 * little spilling); GEMV takes 4 rows at a time. */
#include "kern_2bit.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define TAVX2 __attribute__((target("avx2,fma")))
#define INLINE inline __attribute__((always_inline))

enum { W = 32 };

static TAVX2 INLINE int32_t hsum(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* Σ of the first nb bytes (a multiple of 32) of q, as signed: flipping the
 * sign bit makes them q+128, which vpsadbw sums exactly. */
static TAVX2 INLINE int32_t qsum(const int8_t *q, size_t nb)
{
    __m256i acc = _mm256_setzero_si256(), flip = _mm256_set1_epi8((char)0x80), z = _mm256_setzero_si256();
    for (size_t i = 0; i < nb; i += 32)
        acc = _mm256_add_epi64(
            acc, _mm256_sad_epu8(_mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(q + i)), flip), z));
    __m128i s = _mm_add_epi64(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    int64_t t = _mm_cvtsi128_si64(s) + _mm_extract_epi64(s, 1);
    return (int32_t)(t - 128 * (int64_t)nb);
}

static TAVX2 INLINE void tile(const uint8_t *w, size_t rb, size_t V, const int8_t *q, size_t ldq, int RT, int TT,
                              int32_t out[4][4])
{
    __m256i acc[4][4];
    const __m256i m3 = _mm256_set1_epi8(3), ones = _mm256_set1_epi16(1);
    _Pragma("GCC unroll 4") for (int r = 0; r < RT; r++)
        _Pragma("GCC unroll 4") for (int t = 0; t < TT; t++)
            acc[r][t] = _mm256_setzero_si256();
    for (size_t v = 0; v < V; v++) {
        __m256i raw[4], s16[4][4];
        _Pragma("GCC unroll 4") for (int r = 0; r < RT; r++)
            raw[r] = _mm256_loadu_si256((const __m256i *)(w + r * rb + W * v));
        const int8_t *qv = q + 4 * W * v;
#define PLANE(p)                                                                                         \
    do {                                                                                                 \
        __m256i c[4];                                                                                    \
        _Pragma("GCC unroll 4") for (int r = 0; r < RT; r++)                                                                     \
            c[r] = _mm256_and_si256(_mm256_srli_epi16(raw[r], 2 * (p)), m3);                             \
        _Pragma("GCC unroll 4") for (int t = 0; t < TT; t++) {                                                                   \
            __m256i a = _mm256_loadu_si256((const __m256i *)(qv + t * ldq + W * (p)));                   \
            _Pragma("GCC unroll 4") for (int r = 0; r < RT; r++) {                                                               \
                __m256i m = _mm256_maddubs_epi16(c[r], a);                                               \
                s16[r][t] = (p) ? _mm256_add_epi16(s16[r][t], m) : m;                                    \
            }                                                                                            \
        }                                                                                                \
    } while (0)
        PLANE(0);
        PLANE(1);
        PLANE(2);
        PLANE(3);
#undef PLANE
        _Pragma("GCC unroll 4") for (int r = 0; r < RT; r++)
            _Pragma("GCC unroll 4") for (int t = 0; t < TT; t++)
                acc[r][t] = _mm256_add_epi32(acc[r][t], _mm256_madd_epi16(s16[r][t], ones));
    }
    _Pragma("GCC unroll 4") for (int r = 0; r < RT; r++)
        _Pragma("GCC unroll 4") for (int t = 0; t < TT; t++)
            out[r][t] = hsum(acc[r][t]);
}

static TAVX2 INLINE void gemv_impl(uint32_t layout, const uint8_t *w, size_t k, size_t r0, size_t r1, float beta,
                                   const int8_t *q, float s, float *y)
{
    size_t rb = bn_packed_row_bytes(layout, k), V = k2_nvec(layout, W, k), c0 = 4 * W * V;
    int32_t qs = qsum(q, c0), out[4][4];
    size_t r = r0;
    for (; r + 4 <= r1; r += 4) {
        tile(w + r * rb, rb, V, q, 0, 4, 1, out);
        for (int i = 0; i < 4; i++)
            y[r + i] = bn_kern_out(out[i][0] - qs + k2_tail(layout, w, k, r + i, c0, q), s, beta);
    }
    for (; r < r1; r++) {
        tile(w + r * rb, rb, V, q, 0, 1, 1, out);
        y[r] = bn_kern_out(out[0][0] - qs + k2_tail(layout, w, k, r, c0, q), s, beta);
    }
}

static TAVX2 INLINE void gemm_impl(uint32_t layout, const uint8_t *w, size_t k, size_t r0, size_t r1, float beta,
                                   const int8_t *q, const float *s, size_t n, size_t ldq, float *y, size_t ldy)
{
    size_t rb = bn_packed_row_bytes(layout, k), V = k2_nvec(layout, W, k), c0 = 4 * W * V;
    int32_t qs[BN_KERN_MAX_N];
    for (size_t t = 0; t < n; t++)
        qs[t] = qsum(q + t * ldq, c0);
    for (size_t r = r0; r < r1; r += 2) {
        int rt = r1 - r >= 2 ? 2 : 1;
        for (size_t t = 0; t < n; t += 4) {
            int tt = n - t >= 4 ? 4 : (int)(n - t);
            int32_t out[4][4];
            const uint8_t *wr = w + r * rb;
            const int8_t *qt = q + t * ldq;
            if (rt == 2) {
                switch (tt) {
                case 4: tile(wr, rb, V, qt, ldq, 2, 4, out); break;
                case 3: tile(wr, rb, V, qt, ldq, 2, 3, out); break;
                case 2: tile(wr, rb, V, qt, ldq, 2, 2, out); break;
                default: tile(wr, rb, V, qt, ldq, 2, 1, out); break;
                }
            } else {
                switch (tt) {
                case 4: tile(wr, rb, V, qt, ldq, 1, 4, out); break;
                case 3: tile(wr, rb, V, qt, ldq, 1, 3, out); break;
                case 2: tile(wr, rb, V, qt, ldq, 1, 2, out); break;
                default: tile(wr, rb, V, qt, ldq, 1, 1, out); break;
                }
            }
            for (int i = 0; i < rt; i++)
                for (int j = 0; j < tt; j++) {
                    size_t tk = t + (size_t)j;
                    int32_t a = out[i][j] - qs[tk] + k2_tail(layout, w, k, r + (size_t)i, c0, q + tk * ldq);
                    y[tk * ldy + r + (size_t)i] = bn_kern_out(a, s[tk], beta);
                }
        }
    }
}

#define SET_FUNCS(L, name)                                                                                        \
    K2_COMMON_FUNCS(L, W, name)                                                                                   \
    static TAVX2 void name##_gemv(const uint8_t *w, size_t k, size_t r0, size_t r1, float beta, const int8_t *q, \
                                  float s, float *y)                                                             \
    {                                                                                                            \
        gemv_impl(L, w, k, r0, r1, beta, q, s, y);                                                               \
    }                                                                                                            \
    static TAVX2 void name##_gemm(const uint8_t *w, size_t k, size_t r0, size_t r1, float beta, const int8_t *q, \
                                  const float *s, size_t n, size_t ldq, float *y, size_t ldy)                    \
    {                                                                                                            \
        gemm_impl(L, w, k, r0, r1, beta, q, s, n, ldq, y, ldy);                                                  \
    }

SET_FUNCS(BN_T2, t2)
SET_FUNCS(BN_I2S, i2s)

static const bn_kernels set_t2 = {"avx2", BN_T2, t2_quantize, t2_gemm, t2_gemv, t2_gemm_f32};
static const bn_kernels set_i2s = {"avx2", BN_I2S, i2s_quantize, i2s_gemm, i2s_gemv, i2s_gemm_f32};

const bn_kernels *bn_kernels_avx2(uint32_t layout)
{
    return layout == BN_T2 ? &set_t2 : layout == BN_I2S ? &set_i2s : NULL;
}

#else
const bn_kernels *bn_kernels_avx2(uint32_t layout)
{
    (void)layout;
    return NULL;
}
#endif
