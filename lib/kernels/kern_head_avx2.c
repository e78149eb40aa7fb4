/* kern_head_avx2.c — the heads for x86-64 CPUs with AVX2, F16C and FMA
 * but no AVX-512 (or, for q6/q5/q4, no AVX-512 VNNI) (bn_head_find):
 * without them those CPUs ran the scalar loop, one float chain a row at
 * about 0.6 GB/s (q6: 0.3), so the 2B4T head took a second a token.
 *
 * Bit for bit the AVX-512 heads' results (kern_head.c), so a model's
 * logits do not depend on which of the two a machine has. There a row's
 * sum is 16 lanes, lane j adding columns j, j+16, j+32, ... by FMA, the
 * last partial group through zeroed lanes, then sum16_ps's fixed order;
 * here two 8-lane accumulators hold lanes 0-7 and 8-15, the same FMAs on
 * the same values in the same order (the partial group from zeroed
 * copies, as the masked loads give), then the same additions. Rows 4 at
 * a time from the range's quarters, prefetched, as there; several tokens
 * take a block of rows each (read from memory once, then from L2).
 *
 * q6/q5/q4 likewise: a group's 16 int32 lanes (each the exact sum of 4
 * bytes' code·qh, as vpdpbusd adds them) come from vpmaddubsw and
 * vpmaddwd here (no saturation: a code is at most 63 and |qh| at most
 * 127, so two bytes' low and high halves add up to at most 32004), then
 * the same float steps in the same lanes. */
#include "cpu.h"
#include "head_act.h"
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

/* RT rows of a q type with hb high bits (q4 0, q5 1, q6 2) for one
 * token a: row i's group g at w + i·rs + g·gs; out[i] its logit. A
 * group's 64 low-nibble bytes are two halves here, lanes 0-7 (blocks 0
 * and 1) and 8-15 (blocks 2 and 3) of kern_head.c's quant_rows, and the
 * high bits reach the same bytes: q6's 32 high-plane bytes serve blocks
 * 0 and 1 as they are and 2 and 3 shifted by 4; q5's 16 serve block b
 * shifted by 2b. */
static T256 INLINE void qrows_dot(int hb, const uint8_t *w, size_t rs, size_t gs, size_t G, const bn_qact *a,
                                  const int RT, float out[4])
{
    const __m256i m0f = _mm256_set1_epi8(0x0f), mh = _mm256_set1_epi8(hb == 2 ? 0x30 : 0x10);
    const __m256i ones = _mm256_set1_epi16(1);
    const __m256i i01 = _mm256_set_epi32(1, 1, 1, 1, 0, 0, 0, 0), i23 = _mm256_set_epi32(3, 3, 3, 3, 2, 2, 2, 2);
    const size_t dat = QUANT_GB(hb) - 8; /* the scales */
    __m256 lo[4], hi[4];
    _Pragma("GCC unroll 4") for (int i = 0; i < RT; i++) lo[i] = hi[i] = _mm256_setzero_ps();
    for (size_t g = 0; g < G; g++) {
        const int8_t *qg = a->q + QUANT_G * g;
        const __m256i ql0 = _mm256_load_si256((const __m256i *)(const void *)qg);
        const __m256i ql1 = _mm256_load_si256((const __m256i *)(const void *)(qg + 32));
        const __m256i qh0 = _mm256_load_si256((const __m256i *)(const void *)(qg + 64));
        const __m256i qh1 = _mm256_load_si256((const __m256i *)(const void *)(qg + 96));
        const __m256i cr0 = _mm256_load_si256((const __m256i *)(const void *)(a->cr + 16 * g));
        const __m256i cr1 = _mm256_load_si256((const __m256i *)(const void *)(a->cr + 16 * g + 8));
        const __m256 dh0 = _mm256_load_ps(a->dh + 16 * g), dh1 = _mm256_load_ps(a->dh + 16 * g + 8);
        _Pragma("GCC unroll 4") for (int i = 0; i < RT; i++) {
            const uint8_t *gp = w + (size_t)i * rs + gs * g;
            for (size_t b = 0; b < gs; b += 64)
                _mm_prefetch((const char *)(gp + HEAD_AHEAD + b), _MM_HINT_T0);
            __m256i raw0 = _mm256_loadu_si256((const __m256i *)(const void *)gp);
            __m256i raw1 = _mm256_loadu_si256((const __m256i *)(const void *)(gp + 32));
            __m256i ulo0 = _mm256_and_si256(raw0, m0f), uhi0 = _mm256_and_si256(_mm256_srli_epi16(raw0, 4), m0f);
            __m256i ulo1 = _mm256_and_si256(raw1, m0f), uhi1 = _mm256_and_si256(_mm256_srli_epi16(raw1, 4), m0f);
            if (hb) {
                __m256i hs0, hs1;
                if (hb == 2) {
                    hs0 = _mm256_loadu_si256((const __m256i *)(const void *)(gp + 64));
                    hs1 = _mm256_srli_epi16(hs0, 4);
                } else {
                    __m256i hp = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)(gp + 64)));
                    hs0 = _mm256_srlv_epi32(hp, _mm256_set_epi32(2, 2, 2, 2, 0, 0, 0, 0));
                    hs1 = _mm256_srlv_epi32(hp, _mm256_set_epi32(6, 6, 6, 6, 4, 4, 4, 4));
                }
                /* shifts of at most 6: the bits kept come from their own byte */
                ulo0 = _mm256_or_si256(ulo0, _mm256_and_si256(_mm256_slli_epi16(hs0, 4), mh));
                uhi0 = _mm256_or_si256(uhi0, _mm256_and_si256(_mm256_slli_epi16(hs0, 4 - hb), mh));
                ulo1 = _mm256_or_si256(ulo1, _mm256_and_si256(_mm256_slli_epi16(hs1, 4), mh));
                uhi1 = _mm256_or_si256(uhi1, _mm256_and_si256(_mm256_slli_epi16(hs1, 4 - hb), mh));
            }
            __m256 d4 = _mm256_castps128_ps256(_mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)(const void *)(gp + dat))));
            __m256i p0 = _mm256_add_epi16(_mm256_maddubs_epi16(ulo0, ql0), _mm256_maddubs_epi16(uhi0, qh0));
            __m256i p1 = _mm256_add_epi16(_mm256_maddubs_epi16(ulo1, ql1), _mm256_maddubs_epi16(uhi1, qh1));
            __m256i s0 = _mm256_sub_epi32(_mm256_madd_epi16(p0, ones), cr0);
            __m256i s1 = _mm256_sub_epi32(_mm256_madd_epi16(p1, ones), cr1);
            lo[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s0), _mm256_mul_ps(_mm256_permutevar8x32_ps(d4, i01), dh0), lo[i]);
            hi[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s1), _mm256_mul_ps(_mm256_permutevar8x32_ps(d4, i23), dh1), hi[i]);
        }
    }
    _Pragma("GCC unroll 4") for (int i = 0; i < RT; i++) out[i] = sum16(lo[i], hi[i]);
}

/* bn_qhead_run's block: rows [r0, r1) token by token, 4 rows at a time
 * from the range's quarters. */
static T256 INLINE void qhead_block(int hb, const void *w, size_t d, size_t r0, size_t r1, const bn_qact *a, int tt,
                                    float *y, size_t ldy)
{
    size_t gb = QUANT_GB(hb), G = d / QUANT_G, rb = G * gb, q = (r1 - r0) / 4;
    float o[4];
    for (int t = 0; t < tt; t++) {
        float *yt = y + (size_t)t * ldy;
        for (size_t r = r0; r < r0 + q; r++) {
            qrows_dot(hb, (const uint8_t *)w + r * rb, q * rb, gb, G, &a[t], 4, o);
            for (size_t i = 0; i < 4; i++)
                yt[r + i * q] = o[i];
        }
        for (size_t r = r0 + 4 * q; r < r1; r++) {
            qrows_dot(hb, (const uint8_t *)w + r * rb, rb, gb, G, &a[t], 1, o);
            yt[r] = o[0];
        }
    }
}

BN_QHEAD_FN(v256_q6, T256, qhead_block, 2, 1)
BN_QHEAD_FN(v256_q5, T256, qhead_block, 1, 1)
BN_QHEAD_FN(v256_q4, T256, qhead_block, 0, 1)

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
    static const bn_head_fns avx2 = {v256_f32, v256_f16, v256_bf16, v256_i8, v256_q6, v256_q5, v256_q4};
    return cpu->avx2 && cpu->f16c && cpu->fma ? bn_head_fns_pick(&avx2, type) : NULL;
}

#else

bn_head_fn bn_head_find_avx2(uint32_t type, const bn_cpu *cpu)
{
    (void)type, (void)cpu;
    return NULL;
}

#endif
