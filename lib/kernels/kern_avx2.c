/* kern_avx2.c — AVX2 kernels for the 2-bit layouts (t2, i2s), for x86-64
 * CPUs without AVX-512 VNNI.
 *
 * vpmaddubsw multiplies 32 unsigned codes (w+1 ∈ {0,1,2}) by 32 signed
 * activations and adds pairs into int16: |pair| ≤ 2·2·128 = 512, so it
 * never saturates, and the 32 planes of eight 32-byte loads sum to at
 * most 16384 before vpmaddwd widens them to int32 (even a code of 3, which
 * no packer writes, stays below 2^15 so). Exact. Activations arrive in
 * this set's order (kern_2bit.h, W = 32). GEMM tiles are 2 rows × 2
 * tokens (GEMM_TT; b3: 2 × 4); GEMV takes 4 rows at a time, from a range's quarters
 * when it streams from memory (k2_row_step, kern_2bit.h): on Zen 5 (one
 * thread, 2B4T matrices from memory, bn-bench --kernels, the machine
 * shared) four adjacent rows read 5-12 GB/s, the quarters 12-21. */
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

/* Float row → int8 in this set's order, bit-identical to k2_quantize
 * (which decode called for every projection, on one thread between
 * steps): x·s is one float multiply either way, vcvtps2dq rounds half to
 * even like nearbyintf (default MXCSR), and the two saturating packs clamp
 * to [-128, 127] as the reference does. 32 columns at a time in natural
 * order, then put where the layout wants them (k2_pos). */
static TAVX2 INLINE float quantize_impl(uint32_t layout, const float *x, size_t k, int8_t *q)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 mx = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= k; i += 8)
        mx = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)), mx); /* NaN skipped, as in the reference */
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 1));
    float amax = _mm_cvtss_f32(m4);
    for (; i < k; i++)
        if (fabsf(x[i]) > amax)
            amax = fabsf(x[i]);
    float s = 127.0f / (amax > 1e-5f ? amax : 1e-5f);
    __m256 vs = _mm256_set1_ps(s);
    size_t V = k2_nvec(layout, W, k), permuted = 4 * W * V; /* a multiple of 32 */
    size_t units = permuted + 64 * k2_units(layout, k, permuted);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (size_t c0 = 0; c0 < k; c0 += 32) {
        size_t n = k - c0 < 32 ? k - c0 : 32;
        __m256i v[4];
        for (int j = 0; j < 4; j++) {
            int left = (int)n - 8 * j;
            __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(left < 0 ? 0 : left), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
            v[j] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_maskload_ps(x + c0 + 8 * (size_t)j, m), vs));
        }
        /* packs work within 128-bit lanes: dwords come out in the order 0,2,1,3 per 4-group; the
         * permute puts the 32 bytes back in column order */
        __m256i b = _mm256_packs_epi16(_mm256_packs_epi32(v[0], v[1]), _mm256_packs_epi32(v[2], v[3]));
        b = _mm256_permutevar8x32_epi32(b, order);
        _Alignas(32) int8_t nat[32];
        _mm256_store_si256((__m256i *)nat, b);
        if (c0 < permuted)
            for (size_t j = 0; j < 32; j++)
                q[k2_pos(layout, W, V, c0 + j)] = nat[j];
        else if (c0 < units)
            for (size_t j = 0; j < 32; j++) {
                size_t o = c0 + j - permuted;
                q[permuted + o / 64 * 64 + 16 * (o % 4) + o % 64 / 4] = nat[j];
            }
        else
            memcpy(q + c0, nat, n);
    }
    return s;
}

/* RT rows (rs bytes apart) × TT tokens (ldq apart); pf: how far ahead
 * each row's bytes are prefetched (0: not at all; the GEMV's streams). */
static TAVX2 INLINE void tile(const uint8_t *w, size_t rs, size_t pf, size_t V, size_t U, const int8_t *q, size_t ldq,
                              int RT, int TT, int32_t out[4][4])
{
    const size_t rb = rs;
    __m256i acc[4][4];
    const __m256i m3 = _mm256_set1_epi8(3), ones = _mm256_set1_epi16(1);
    _Pragma("GCC unroll 4") for (int r = 0; r < RT; r++)
        _Pragma("GCC unroll 4") for (int t = 0; t < TT; t++)
            acc[r][t] = _mm256_setzero_si256();
    /* The int16 sums take S16_VECS vectors (32 planes of at most 512, or
     * 768 with codes of 3) before they are widened into acc: the 32-bit
     * steps leave the inner loop, and with them registers GCC spilled. */
    enum { S16_VECS = 8 };
    for (size_t v0 = 0; v0 < V; v0 += S16_VECS) {
        size_t v1 = V - v0 > S16_VECS ? v0 + S16_VECS : V;
        __m256i s16[4][4];
        _Pragma("GCC unroll 4") for (int r = 0; r < RT; r++)
            _Pragma("GCC unroll 4") for (int t = 0; t < TT; t++)
                s16[r][t] = _mm256_setzero_si256();
        for (size_t v = v0; v < v1; v++) {
            __m256i raw[4];
            _Pragma("GCC unroll 4") for (int r = 0; r < RT; r++)
                raw[r] = _mm256_loadu_si256((const __m256i *)(w + r * rb + W * v));
            if (pf && v % 2 == 0) /* once a 64-byte line */
                _Pragma("GCC unroll 4") for (int r = 0; r < RT; r++)
                    _mm_prefetch((const char *)(w + r * rb + W * v + pf), _MM_HINT_T0);
            const int8_t *qv = q + 4 * W * v;
#define PLANE(p)                                                                                         \
    do {                                                                                                 \
        __m256i c[4];                                                                                    \
        _Pragma("GCC unroll 4") for (int r = 0; r < RT; r++)                                                                     \
            c[r] = _mm256_and_si256(_mm256_srli_epi16(raw[r], 2 * (p)), m3);                             \
        _Pragma("GCC unroll 4") for (int t = 0; t < TT; t++) {                                                                   \
            __m256i a = _mm256_loadu_si256((const __m256i *)(qv + t * ldq + W * (p)));                   \
            _Pragma("GCC unroll 4") for (int r = 0; r < RT; r++)                                                                 \
                s16[r][t] = _mm256_add_epi16(s16[r][t], _mm256_maddubs_epi16(c[r], a));                  \
        }                                                                                                \
    } while (0)
            PLANE(0);
            PLANE(1);
            PLANE(2);
            PLANE(3);
#undef PLANE
        }
        _Pragma("GCC unroll 4") for (int r = 0; r < RT; r++)
            _Pragma("GCC unroll 4") for (int t = 0; t < TT; t++)
                acc[r][t] = _mm256_add_epi32(acc[r][t], _mm256_madd_epi16(s16[r][t], ones));
    }
    /* tail units (k2_units): planes 0|1 and 2|3 of a unit in two vectors */
    const __m256i sh01 = _mm256_setr_epi32(0, 0, 0, 0, 2, 2, 2, 2), sh23 = _mm256_setr_epi32(4, 4, 4, 4, 6, 6, 6, 6);
    for (size_t u = 0; u < U; u++)
        _Pragma("GCC unroll 4") for (int r = 0; r < RT; r++) {
            __m256i b = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(w + r * rb + W * V + 16 * u)));
            __m256i c01 = _mm256_and_si256(_mm256_srlv_epi32(b, sh01), m3);
            __m256i c23 = _mm256_and_si256(_mm256_srlv_epi32(b, sh23), m3);
            _Pragma("GCC unroll 4") for (int t = 0; t < TT; t++) {
                const int8_t *qu = q + t * ldq + 4 * W * V + 64 * u;
                __m256i m = _mm256_add_epi16(_mm256_maddubs_epi16(c01, _mm256_loadu_si256((const __m256i *)qu)),
                                             _mm256_maddubs_epi16(c23, _mm256_loadu_si256((const __m256i *)(qu + 32))));
                acc[r][t] = _mm256_add_epi32(acc[r][t], _mm256_madd_epi16(m, ones));
            }
        }
    _Pragma("GCC unroll 4") for (int r = 0; r < RT; r++)
        _Pragma("GCC unroll 4") for (int t = 0; t < TT; t++)
            out[r][t] = hsum(acc[r][t]);
}

static TAVX2 INLINE void gemv_impl(uint32_t layout, const uint8_t *w, size_t k, size_t r0, size_t r1, float beta,
                                   const int8_t *q, float s, float *y)
{
    size_t rb = bn_packed_row_bytes(layout, k), V = k2_nvec(layout, W, k), U = k2_units(layout, k, 4 * W * V);
    size_t c0 = 4 * W * V + 64 * U; /* where natural order starts */
    int32_t qs = qsum(q, c0), out[4][4];
    k2_tails tails;
    k2_tails_init(&tails);
    /* 4 rows at a time: from the range's quarters when it streams from
     * memory, else adjacent (k2_row_step) */
    size_t quarter = (r1 - r0) / 4, d = k2_row_step(rb, r0, r1), pf = d == 1 ? 0 : K2_AHEAD;
    for (size_t g = 0; g < quarter; g++) {
        size_t r = d == 1 ? r0 + 4 * g : r0 + g;
        tile(w + r * rb, d * rb, pf, V, U, q, 0, 4, 1, out);
        for (size_t i = 0; i < 4; i++)
            y[r + i * d] = bn_kern_out(out[i][0] - qs + k2_tail_dot(&tails, layout, w, k, r + i * d, c0, q), s, beta);
    }
    for (size_t r = r0 + 4 * quarter; r < r1; r++) {
        tile(w + r * rb, rb, 0, V, U, q, 0, 1, 1, out);
        y[r] = bn_kern_out(out[0][0] - qs + k2_tail_dot(&tails, layout, w, k, r, c0, q), s, beta);
    }
}

/* Tokens per t2/i2s GEMM tile: 2 rows × 2 tokens keep their sums in
 * registers; with 4 tokens GCC 12 spilled some of its 16 ymm registers in
 * the inner loop (one Zen 5 thread, the avx2 set, 2B4T prefill of 128
 * tokens, in turn three times: 42 t/s against 34-40). b3_gemm keeps 4:
 * its digits cost more to extract, so sharing them over more tokens wins
 * (28.7 t/s against 22.5 with 2). */
enum { GEMM_TT = 2 }; /* the tiles below take 1 or 2 */

static TAVX2 INLINE void gemm_impl(uint32_t layout, const uint8_t *w, size_t k, size_t r0, size_t r1, float beta,
                                   const int8_t *q, const float *s, size_t n, size_t ldq, float *y, size_t ldy)
{
    size_t rb = bn_packed_row_bytes(layout, k), V = k2_nvec(layout, W, k), U = k2_units(layout, k, 4 * W * V);
    size_t c0 = 4 * W * V + 64 * U; /* where natural order starts */
    int32_t qs[BN_KERN_MAX_N];
    for (size_t t = 0; t < n; t++)
        qs[t] = qsum(q + t * ldq, c0);
    k2_tails tails;
    k2_tails_init(&tails);
    for (size_t r = r0; r < r1; r += 2) {
        int rt = r1 - r >= 2 ? 2 : 1;
        for (size_t t = 0; t < n; t += GEMM_TT) {
            int tt = n - t >= GEMM_TT ? GEMM_TT : (int)(n - t);
            int32_t out[4][4];
            const uint8_t *wr = w + r * rb;
            const int8_t *qt = q + t * ldq;
            if (rt == 2) {
                if (tt == 2)
                    tile(wr, rb, 0, V, U, qt, ldq, 2, 2, out);
                else
                    tile(wr, rb, 0, V, U, qt, ldq, 2, 1, out);
            } else {
                if (tt == 2)
                    tile(wr, rb, 0, V, U, qt, ldq, 1, 2, out);
                else
                    tile(wr, rb, 0, V, U, qt, ldq, 1, 1, out);
            }
            for (int i = 0; i < rt; i++)
                for (int j = 0; j < tt; j++) {
                    size_t tk = t + (size_t)j;
                    int32_t a = out[i][j] - qs[tk] + k2_tail_dot(&tails, layout, w, k, r + (size_t)i, c0, q + tk * ldq);
                    y[tk * ldy + r + (size_t)i] = bn_kern_out(a, s[tk], beta);
                }
        }
    }
}

#define SET_FUNCS(L, name)                                                                                        \
    static TAVX2 float name##_quantize(const float *x, size_t k, int8_t *q) { return quantize_impl(L, x, k, q); } \
    K2_F32_FUNC(L, name)                                                                                          \
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

/* ------------------------------------------------------------------ b3
 * Five weights per byte (kern_avx512.c explains the digit arithmetic). A
 * 32-byte load is half a 320-column block: plane j of half h holds columns
 * 64j + 32h .. +31, natural order. Without unsigned byte compares, m > 85
 * is max(m, 86) == m; the digits (0..2) go through vpmaddubsw as the
 * 2-bit codes do (five planes: int16 sums stay below 2·2·128·5). */
enum { B3_BLK = 320 };

static TAVX2 INLINE __m256i b3_digits(__m256i m)
{
    __m256i c1 = _mm256_cmpeq_epi8(_mm256_max_epu8(m, _mm256_set1_epi8(86)), m);
    __m256i c2 = _mm256_cmpeq_epi8(_mm256_max_epu8(m, _mm256_set1_epi8((char)171)), m);
    return _mm256_sub_epi8(_mm256_sub_epi8(_mm256_setzero_si256(), c1), c2);
}

static TAVX2 INLINE void b3_tile(const uint8_t *w, size_t rb, size_t V, const int8_t *q, size_t ldq, int RT, int TT,
                                 int32_t out[4][4])
{
    __m256i acc[4][4];
    const __m256i ones = _mm256_set1_epi16(1);
    _Pragma("GCC unroll 4") for (int r = 0; r < RT; r++)
        _Pragma("GCC unroll 4") for (int t = 0; t < TT; t++) acc[r][t] = _mm256_setzero_si256();
    for (size_t v = 0; v < 2 * V; v++) { /* half blocks */
        size_t col = B3_BLK * (v / 2) + 32 * (v % 2);
        __m256i m[4], s16[4][4];
        _Pragma("GCC unroll 4") for (int r = 0; r < RT; r++)
            m[r] = _mm256_loadu_si256((const __m256i *)(w + (size_t)r * rb + 32 * v));
        _Pragma("GCC unroll 5") for (int j = 0; j < 5; j++) {
            __m256i d[4];
            _Pragma("GCC unroll 4") for (int r = 0; r < RT; r++) {
                d[r] = b3_digits(m[r]);
                m[r] = _mm256_add_epi8(m[r], _mm256_add_epi8(m[r], m[r]));
            }
            _Pragma("GCC unroll 4") for (int t = 0; t < TT; t++) {
                __m256i a = _mm256_loadu_si256((const __m256i *)(q + (size_t)t * ldq + col + 64 * j));
                _Pragma("GCC unroll 4") for (int r = 0; r < RT; r++) {
                    __m256i p = _mm256_maddubs_epi16(d[r], a);
                    s16[r][t] = j ? _mm256_add_epi16(s16[r][t], p) : p;
                }
            }
        }
        _Pragma("GCC unroll 4") for (int r = 0; r < RT; r++)
            _Pragma("GCC unroll 4") for (int t = 0; t < TT; t++)
                acc[r][t] = _mm256_add_epi32(acc[r][t], _mm256_madd_epi16(s16[r][t], ones));
    }
    _Pragma("GCC unroll 4") for (int r = 0; r < RT; r++)
        _Pragma("GCC unroll 4") for (int t = 0; t < TT; t++) out[r][t] = hsum(acc[r][t]);
}

/* The last, partial block of a row (k not a multiple of 320) runs through
 * the same tile on a zero-padded copy of its activations: padding weights
 * are 0 and so are their activations, and no scalar tail is needed. */
static inline size_t b3_pad(const int8_t *q, size_t k, size_t c0, int8_t pad[B3_BLK], int32_t *sum)
{
    size_t rem = k - c0;
    memset(pad, 0, B3_BLK);
    if (rem)
        memcpy(pad, q + c0, rem);
    for (size_t i = 0; i < rem; i++)
        *sum += pad[i];
    return rem;
}

static TAVX2 void b3_gemv(const uint8_t *w, size_t k, size_t r0, size_t r1, float beta, const int8_t *q, float s,
                          float *y)
{
    size_t rb = bn_packed_row_bytes(BN_B3, k), V = k / B3_BLK, c0 = B3_BLK * V;
    int8_t pad[B3_BLK];
    int32_t qs = qsum(q, c0), out[4][4], o2[4][4] = {{0}};
    size_t rem = b3_pad(q, k, c0, pad, &qs);
    size_t r = r0;
    for (; r + 4 <= r1; r += 4) {
        b3_tile(w + r * rb, rb, V, q, 0, 4, 1, out);
        if (rem)
            b3_tile(w + r * rb + 64 * V, rb, 1, pad, 0, 4, 1, o2);
        for (int i = 0; i < 4; i++)
            y[r + i] = bn_kern_out(out[i][0] + o2[i][0] - qs, s, beta);
    }
    for (; r < r1; r++) {
        b3_tile(w + r * rb, rb, V, q, 0, 1, 1, out);
        if (rem)
            b3_tile(w + r * rb + 64 * V, rb, 1, pad, 0, 1, 1, o2);
        y[r] = bn_kern_out(out[0][0] + o2[0][0] - qs, s, beta);
    }
}

static TAVX2 void b3_gemm(const uint8_t *w, size_t k, size_t r0, size_t r1, float beta, const int8_t *q,
                          const float *s, size_t n, size_t ldq, float *y, size_t ldy)
{
    size_t rb = bn_packed_row_bytes(BN_B3, k), V = k / B3_BLK, c0 = B3_BLK * V;
    int32_t qs[BN_KERN_MAX_N];
    _Alignas(64) int8_t pad[BN_KERN_MAX_N][B3_BLK];
    size_t rem = 0;
    for (size_t t = 0; t < n; t++) {
        qs[t] = qsum(q + t * ldq, c0);
        rem = b3_pad(q + t * ldq, k, c0, pad[t], &qs[t]);
    }
    for (size_t r = r0, rt; r < r1; r += rt) {
        rt = r1 - r >= 2 ? 2 : 1;
        for (size_t t = 0; t < n; t += 4) { /* 4 tokens: its digits cost more than the t2 codes */
            int tt = n - t >= 4 ? 4 : (int)(n - t);
            int32_t out[4][4];
            const uint8_t *wr = w + r * rb;
            const int8_t *qt = q + t * ldq;
            if (rt == 2) {
                switch (tt) {
                case 4: b3_tile(wr, rb, V, qt, ldq, 2, 4, out); break;
                case 3: b3_tile(wr, rb, V, qt, ldq, 2, 3, out); break;
                case 2: b3_tile(wr, rb, V, qt, ldq, 2, 2, out); break;
                default: b3_tile(wr, rb, V, qt, ldq, 2, 1, out); break;
                }
            } else {
                switch (tt) {
                case 4: b3_tile(wr, rb, V, qt, ldq, 1, 4, out); break;
                case 3: b3_tile(wr, rb, V, qt, ldq, 1, 3, out); break;
                case 2: b3_tile(wr, rb, V, qt, ldq, 1, 2, out); break;
                default: b3_tile(wr, rb, V, qt, ldq, 1, 1, out); break;
                }
            }
            int32_t o2[4][4] = {{0}};
            if (rem) {
                if (rt == 2) {
                    switch (tt) {
                    case 4: b3_tile(wr + 64 * V, rb, 1, pad[t], B3_BLK, 2, 4, o2); break;
                    case 3: b3_tile(wr + 64 * V, rb, 1, pad[t], B3_BLK, 2, 3, o2); break;
                    case 2: b3_tile(wr + 64 * V, rb, 1, pad[t], B3_BLK, 2, 2, o2); break;
                    default: b3_tile(wr + 64 * V, rb, 1, pad[t], B3_BLK, 2, 1, o2); break;
                    }
                } else {
                    switch (tt) {
                    case 4: b3_tile(wr + 64 * V, rb, 1, pad[t], B3_BLK, 1, 4, o2); break;
                    case 3: b3_tile(wr + 64 * V, rb, 1, pad[t], B3_BLK, 1, 3, o2); break;
                    case 2: b3_tile(wr + 64 * V, rb, 1, pad[t], B3_BLK, 1, 2, o2); break;
                    default: b3_tile(wr + 64 * V, rb, 1, pad[t], B3_BLK, 1, 1, o2); break;
                    }
                }
            }
            for (size_t i = 0; i < rt; i++)
                for (int j = 0; j < tt; j++) {
                    size_t tk = t + (size_t)j;
                    int32_t a = out[i][j] + o2[i][j] - qs[tk];
                    y[tk * ldy + r + i] = bn_kern_out(a, s[tk], beta);
                }
        }
    }
}

static TAVX2 float b3_quantize(const float *x, size_t k, int8_t *q)
{
    return quantize_impl(BN_B3, x, k, q);
}
K2_F32_FUNC(BN_B3, b3)
static const bn_kernels set_b3 = {"avx2", BN_B3, b3_quantize, b3_gemm, b3_gemv, b3_gemm_f32};

static const bn_kernels set_t2 = {"avx2", BN_T2, t2_quantize, t2_gemm, t2_gemv, t2_gemm_f32};
static const bn_kernels set_i2s = {"avx2", BN_I2S, i2s_quantize, i2s_gemm, i2s_gemv, i2s_gemm_f32};

const bn_kernels *bn_kernels_avx2(uint32_t layout)
{
    return k2_by_layout(layout, &set_t2, &set_i2s, &set_b3);
}

#else
const bn_kernels *bn_kernels_avx2(uint32_t layout)
{
    (void)layout;
    return NULL;
}
#endif
