/* kern_head.c — the output head (and anything else that is a matrix times
 * a few float vectors): y[t][r] = Σ_c W[r][c]·h[t][c] for W in f32, f16,
 * bf16, i8, q6, q5 or q4 (head_layout.h), rows [r0, r1).
 *
 * Decode reads the whole head per token (2B4T: 128256×2560, 656 MB in
 * bf16, more than all ternary weights), so this must stream at memory
 * bandwidth: bf16 widens with a shift, f16 with vcvtph2ps, both fused
 * into FMA chains, 4 rows at a time; the quantized types are int8 dot
 * products (vpdpbusd). Float sums: agrees with a scalar loop to rounding,
 * not bit for bit; CPUs with AVX2 but not AVX-512, and AArch64 ones, get
 * the same bits for every head type (kern_head_avx2.c, kern_head_neon.c). */
#include "cpu.h"
#include "head_act.h"
#include "head_layout.h"
#include "kern_head.h"

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
    size_t es = head_elem_bytes(type);
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

/* A bn_head_fn named name (with attributes ATTR, possibly none) that
 * calls fn(leading arguments..., w, d, r0, r1, h, n, y, ldy): one
 * generic body per family, each type (and layout) a wrapper. */
#define HEAD_FN(ATTR, name, fn, ...)                                                                              \
    static ATTR void name(const void *w, size_t rows, size_t d, size_t r0, size_t r1, const float *h, size_t n,   \
                          float *y, size_t ldy)                                                                   \
    {                                                                                                             \
        (void)rows;                                                                                               \
        fn(__VA_ARGS__, w, d, r0, r1, h, n, y, ldy);                                                              \
    }
HEAD_FN(, s_f32, head_scalar, BN_F32)
HEAD_FN(, s_f16, head_scalar, BN_F16)
HEAD_FN(, s_bf16, head_scalar, BN_BF16)

static void s_i8(const void *w, size_t rows, size_t d, size_t r0, size_t r1, const float *h, size_t n, float *y,
                 size_t ldy)
{
    for (size_t r = r0; r < r1; r++) {
        const int8_t *row = (const int8_t *)w + r * d;
        float sc = i8_row_scale(w, rows, d, r);
        for (size_t t = 0; t < n; t++) {
            float a = 0;
            for (size_t c = 0; c < d; c++)
                a += (float)row[c] * h[t * d + c];
            y[t * ldy + r] = a * sc;
        }
    }
}

/* The scalar reference: per block of 32, an exact int32 sum of code
 * times qh, then d_w·dh·sum in float, blocks in column order. */
static void s_quant(int hb, const void *w, size_t d, size_t r0, size_t r1, const float *h, size_t n, float *y,
                    size_t ldy)
{
    int8_t qh[BN_HEAD_MAX_D];
    float dh[BN_HEAD_MAX_D / 32];
    size_t gb = QUANT_GB(hb), rb = d / QUANT_G * gb;
    for (size_t t = 0; t < n; t++) {
        bn_q8_blocks(h + t * d, d, qh, dh);
        for (size_t r = r0; r < r1; r++) {
            const uint8_t *row = (const uint8_t *)w + r * rb;
            float a = 0;
            for (size_t c0 = 0; c0 < d; c0 += 32) {
                const uint8_t *g = row + c0 / QUANT_G * gb;
                int32_t s = 0;
                for (size_t i = 0; i < 32; i++)
                    s += (quant_code(hb, g, c0 % QUANT_G + i) - QUANT_ZERO(hb)) * qh[c0 + i];
                a += quant_scale(hb, g, c0 % QUANT_G / 32) * dh[c0 / 32] * (float)s;
            }
            y[t * ldy + r] = a;
        }
    }
}

HEAD_FN(, s_q6, s_quant, 2)
HEAD_FN(, s_q5, s_quant, 1)
HEAD_FN(, s_q4, s_quant, 0)

int bn_head_type_ok(uint32_t type, size_t d, const char **why)
{
    if (type == BN_F32 || type == BN_F16 || type == BN_BF16 || type == BN_I8)
        return 1;
    if (quant_hb(type) >= 0 && d % QUANT_G == 0 && d <= BN_HEAD_MAX_D)
        return 1;
    *why = type == BN_Q6   ? "q6 needs a row length that is a multiple of 128 and at most 16384"
           : type == BN_Q5 ? "q5 needs a row length that is a multiple of 128 and at most 16384"
           : type == BN_Q4 ? "q4 needs a row length that is a multiple of 128 and at most 16384"
                           : "a head or embedding table must be f32, f16, bf16, i8, q6, q5 or q4";
    return 0;
}

#if defined(__x86_64__)
#include <immintrin.h>

#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,f16c,fma")))
#define T512Q __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,f16c,fma")))
#define INLINE inline __attribute__((always_inline))

/* The sum of a's 16 lanes in a fixed order (GCC's _mm512_reduce_add_ps;
 * clang's builtin may add in another): halves, then quarters, then pairs.
 * kern_head_avx2.c adds in the same order, so that the float heads give
 * the same bits with AVX2 as with AVX-512. */
static T512 INLINE float sum16_ps(__m512 a)
{
    __m256 t = _mm256_add_ps(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1)),
                             _mm512_castps512_ps256(a));
    __m128 u = _mm_add_ps(_mm256_extractf128_ps(t, 1), _mm256_castps256_ps128(t));
    __m128 v = _mm_add_ps(u, _mm_shuffle_ps(u, u, _MM_SHUFFLE(1, 0, 3, 2)));
    return _mm_cvtss_f32(v) + _mm_cvtss_f32(_mm_shuffle_ps(v, v, 1));
}

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

/* Columns [c, c+16) (mask m) of the 4 rows qs bytes apart from row into
 * a0..a3 (a macro: through pointers GCC kept them in memory). */
#define HEAD512_QUAD(c, m)                                                                                         \
    do {                                                                                                           \
        __m512 x = _mm512_maskz_loadu_ps(m, ht + (c));                                                            \
        a0 = _mm512_fmadd_ps(load16(type, row, c, m), x, a0);                                                      \
        a1 = _mm512_fmadd_ps(load16(type, row + qs, c, m), x, a1);                                                 \
        a2 = _mm512_fmadd_ps(load16(type, row + 2 * qs, c, m), x, a2);                                             \
        a3 = _mm512_fmadd_ps(load16(type, row + 3 * qs, c, m), x, a3);                                             \
    } while (0)

/* Rows [r0, r1) of one token (hrow) into its logits yrow: 4 rows at a
 * time, each from its own quarter of the range, so the loads form four
 * long sequential streams, and no mask on the loads but the tail's. Each
 * row's sum is the same chain as before (bit-identical). Four adjacent
 * rows restart four streams every 4 rows, which the hardware prefetchers
 * follow badly, and masked loads keep fewer misses in flight: on Zen 5
 * (one thread, the 2B4T f16 head, thread CPU time on a shared machine)
 * adjacent rows with masked loads read 12 GB/s, quarters with masked
 * loads 16, quarters with plain loads 31-33, as a plain sequential read. */
static T512 INLINE void head512_rows(uint32_t type, const void *w, size_t d, size_t r0, size_t r1, const float *ht,
                                     float *yrow)
{
    size_t es = head_elem_bytes(type), full = d / 16 * 16, q = (r1 - r0) / 4, qs = q * d * es;
    __mmask16 tm = (__mmask16)((1u << (d - full)) - 1);
    for (size_t r = r0; r < r0 + q; r++) {
        const uint8_t *row = (const uint8_t *)w + r * d * es;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        /* whole vectors with plain loads, then the tail masked (the same
         * sums): a mask on every load halved the rate from memory on Zen 5 */
        for (size_t c = 0; c < full; c += 16) {
            if (c * es % 64 == 0)
                for (size_t i = 0; i < 4; i++)
                    _mm_prefetch((const char *)(row + i * qs + c * es + HEAD_AHEAD), _MM_HINT_T0);
            HEAD512_QUAD(c, (__mmask16)0xffff);
        }
        if (full < d)
            HEAD512_QUAD(full, tm);
        yrow[r] = sum16_ps(a0);
        yrow[r + q] = sum16_ps(a1);
        yrow[r + 2 * q] = sum16_ps(a2);
        yrow[r + 3 * q] = sum16_ps(a3);
    }
    for (size_t r = r0 + 4 * q; r < r1; r++) {
        const uint8_t *row = (const uint8_t *)w + r * d * es;
        __m512 a0 = _mm512_setzero_ps();
        for (size_t c = 0; c < d; c += 16) {
            __mmask16 m = c < full ? (__mmask16)0xffff : tm;
            a0 = _mm512_fmadd_ps(load16(type, row, c, m), _mm512_maskz_loadu_ps(m, ht + c), a0);
        }
        yrow[r] = sum16_ps(a0);
    }
}

/* Columns [c, c+16) (mask m) of R rows qs bytes apart from row, for NT
 * tokens' x[], into a[R][NT]. */
#define HEAD512_TILE(c, m)                                                                                         \
    do {                                                                                                           \
        __m512 x[4];                                                                                               \
        _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) x[t] = _mm512_maskz_loadu_ps(m, ht + t * d + (c));    \
        _Pragma("GCC unroll 4") for (int i = 0; i < R; i++)                                                        \
        {                                                                                                          \
            __m512 wv = load16(type, row + i * qs, c, m);                                                          \
            _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) a[i][t] = _mm512_fmadd_ps(wv, x[t], a[i][t]);     \
        }                                                                                                          \
    } while (0)

/* R rows (4: row r and the same row of the next three quarters, qs bytes
 * and q rows apart; 1: row r alone) of NT tokens (ht, d floats apart)
 * into their logits (y, ldy apart). Each (row, token) sum is the chain
 * head512_rows computes for that token alone: the same FMAs in the same
 * column order, the same masked tail, sum16_ps. */
static T512 INLINE void head512_tile(uint32_t type, const void *w, size_t d, size_t r, size_t q, const float *ht,
                                     float *y, size_t ldy, const int R, const int NT)
{
    size_t es = head_elem_bytes(type), full = d / 16 * 16, qs = q * d * es;
    __mmask16 tm = (__mmask16)((1u << (d - full)) - 1);
    const uint8_t *row = (const uint8_t *)w + r * d * es;
    __m512 a[4][4];
    _Pragma("GCC unroll 4") for (int i = 0; i < R; i++)
        _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) a[i][t] = _mm512_setzero_ps();
    for (size_t c = 0; c < full; c += 16)
        HEAD512_TILE(c, (__mmask16)0xffff);
    if (full < d)
        HEAD512_TILE(full, tm);
    _Pragma("GCC unroll 4") for (int i = 0; i < R; i++)
        _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) y[t * ldy + r + i * q] = sum16_ps(a[i][t]);
}

/* Rows [r0, r1) of NT tokens, a verify pass's or a batch's: every group
 * of 4 rows is widened once per column vector for all NT tokens (4·NT
 * accumulators in registers) instead of once per token, the rows from
 * the range's quarters as head512_rows takes them. */
static T512 INLINE void head512_rows_n(uint32_t type, const void *w, size_t d, size_t r0, size_t r1, const float *ht,
                                       float *y, size_t ldy, const int NT)
{
    size_t q = (r1 - r0) / 4;
    for (size_t r = r0; r < r0 + q; r++)
        head512_tile(type, w, d, r, q, ht, y, ldy, 4, NT);
    for (size_t r = r0 + 4 * q; r < r1; r++)
        head512_tile(type, w, d, r, 0, ht, y, ldy, 1, NT);
}

/* Up to 4 tokens: the whole range at once (the longest streams); more:
 * blocks of HEAD_ROWS, each read from memory once for all of them. The
 * tokens go 4 at a time through head512_rows_n (a last one alone through
 * head512_rows): every logit is the same whatever tokens share a call. */
static T512 INLINE void head512(uint32_t type, const void *w, size_t d, size_t r0, size_t r1, const float *h,
                                size_t n, float *y, size_t ldy)
{
    size_t step = n <= 4 ? r1 - r0 : HEAD_ROWS;
    for (size_t b0 = r0; b0 < r1; b0 += step) {
        size_t b1 = r1 - b0 > step ? b0 + step : r1;
        for (size_t t = 0; t < n; t += 4) {
            const float *ht = h + t * d;
            float *yt = y + t * ldy;
            switch (n - t) {
            case 1: head512_rows(type, w, d, b0, b1, ht, yt); break;
            case 2: head512_rows_n(type, w, d, b0, b1, ht, yt, ldy, 2); break;
            case 3: head512_rows_n(type, w, d, b0, b1, ht, yt, ldy, 3); break;
            default: head512_rows_n(type, w, d, b0, b1, ht, yt, ldy, 4); break;
            }
        }
    }
}

HEAD_FN(T512, v_f32, head512, BN_F32)
HEAD_FN(T512, v_f16, head512, BN_F16)
HEAD_FN(T512, v_bf16, head512, BN_BF16)

/* i8: 16 int8 widened to float per FMA, 4 rows at a time (rs bytes
 * apart: head512_rows' quarters); the row scale once at the end. */
static T512 INLINE void i8_rows(const int8_t *row, size_t rs, size_t d, const float *ht, int RT, float out[4])
{
    size_t full = d / 16 * 16;
    __mmask16 tm = (__mmask16)((1u << (d - full)) - 1);
    __m512 a[4];
    _Pragma("GCC unroll 4") for (int i = 0; i < RT; i++) a[i] = _mm512_setzero_ps();
    /* plain loads, then the tail masked, as head512_rows */
#define I8_STEP(c, m)                                                                                              \
    do {                                                                                                           \
        __m512 x = _mm512_maskz_loadu_ps(m, ht + (c));                                                            \
        _Pragma("GCC unroll 4") for (int i = 0; i < RT; i++) {                                                     \
            __m128i b = _mm_maskz_loadu_epi8(m, row + (size_t)i * rs + (c));                                       \
            a[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(b)), x, a[i]);                          \
        }                                                                                                          \
    } while (0)
    for (size_t c = 0; c < full; c += 16)
        I8_STEP(c, (__mmask16)0xffff);
    if (full < d)
        I8_STEP(full, tm);
#undef I8_STEP
    _Pragma("GCC unroll 4") for (int i = 0; i < RT; i++) out[i] = sum16_ps(a[i]);
}

static T512 void v_i8(const void *w, size_t rows, size_t d, size_t r0, size_t r1, const float *h, size_t n, float *y,
                      size_t ldy)
{
    size_t step = n == 1 ? r1 - r0 : HEAD_ROWS;
    for (size_t b0 = r0; b0 < r1; b0 += step) {
        size_t b1 = r1 - b0 > step ? b0 + step : r1, q = (b1 - b0) / 4;
        for (size_t t = 0; t < n; t++) {
            float o[4];
            for (size_t r = b0; r < b0 + q; r++) {
                i8_rows((const int8_t *)w + r * d, q * d, d, h + t * d, 4, o);
                for (size_t i = 0; i < 4; i++)
                    y[t * ldy + r + i * q] = o[i] * i8_row_scale(w, rows, d, r + i * q);
            }
            for (size_t r = b0 + 4 * q; r < b1; r++) {
                i8_rows((const int8_t *)w + r * d, d, d, h + t * d, 1, o);
                y[t * ldy + r] = o[0] * i8_row_scale(w, rows, d, r);
            }
        }
    }
}

/* q6 (q5, q4): per group of 128 columns and row, two vpdpbusd (low-nibble
 * and high-nibble halves of the four blocks, 6-bit (5, 4) u against int8
 * qh) leave block b's sum in lanes 4b..4b+3; minus 32·Σqh (16·, 8·),
 * times d_w·dh per lane,
 * into a float accumulator; the token's qh rearranged once to match
 * (bn_qact, head_act.h). */
/* RT rows of a q type with hb high bits (q4 0, q5 1, q6 2) from w: row
 * i's group g at w + i·rs + g·gs (gs = the group's bytes). hb is a
 * constant where this is inlined, so each type compiles to its own loop.
 * The high bits are ORed into the nibbles before the vpdpbusd, so q5 and
 * q6 cost q4's two dot products plus a broadcast, a shift and a few
 * logic ops per group and row. */
static T512Q INLINE void quant_rows(int hb, const uint8_t *w, size_t rs, size_t gs, size_t G, const bn_qact *a,
                                    int RT, int TT, float out[4][4])
{
    const __m512i m0f = _mm512_set1_epi8(0x0f), mh = _mm512_set1_epi8(hb == 2 ? 0x30 : 0x10);
    /* The shift that brings lane b's high bits to bits 1:0 (q5: bit 2b
     * for u(b, j), 2b+1 for u(b, 16+j)) or to bits 3:0 (q6: the 32
     * high-plane bytes serve blocks 0,1 as they are, blocks 2,3 shifted
     * by 4). */
    const __m512i sv = hb == 2 ? _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(4), 1)
                               : _mm512_set_epi64(0x0006000600060006, 0x0006000600060006, 0x0004000400040004,
                                                  0x0004000400040004, 0x0002000200020002, 0x0002000200020002, 0, 0);
    const __m512i didx = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
    const size_t dat = QUANT_GB(hb) - 8; /* the scales */
    __m512 acc[4][4];
    _Pragma("GCC unroll 4") for (int i = 0; i < RT; i++)
        _Pragma("GCC unroll 4") for (int t = 0; t < TT; t++) acc[i][t] = _mm512_setzero_ps();
    for (size_t g = 0; g < G; g++) {
        __m512i qlo[4], qhi[4], cr[4];
        __m512 dh[4];
        _Pragma("GCC unroll 4") for (int t = 0; t < TT; t++) {
            qlo[t] = _mm512_load_si512((const void *)(a[t].q + QUANT_G * g));
            qhi[t] = _mm512_load_si512((const void *)(a[t].q + QUANT_G * g + 64));
            cr[t] = _mm512_load_si512((const void *)(a[t].cr + 16 * g));
            dh[t] = _mm512_load_ps(a[t].dh + 16 * g);
        }
        _Pragma("GCC unroll 4") for (int i = 0; i < RT; i++)
            for (size_t b = 0; b < gs; b += 64)
                _mm_prefetch((const char *)(w + (size_t)i * rs + gs * g + (TT > 1 ? HEAD_AHEAD_N : HEAD_AHEAD) + b),
                             _MM_HINT_T0);
        _Pragma("GCC unroll 4") for (int i = 0; i < RT; i++) {
            const uint8_t *gp = w + (size_t)i * rs + gs * g;
            __m512i raw = _mm512_loadu_si512((const void *)gp);
            __m512i ulo = _mm512_and_si512(raw, m0f), uhi = _mm512_and_si512(_mm512_srli_epi16(raw, 4), m0f);
            if (hb) {
                __m512i hp = hb == 2 ? _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(gp + 64)))
                                     : _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(gp + 64)));
                /* the words shift by at most 6, so bits 0..1 (q5) or
                 * 0..3 (q6) of every byte come from that byte */
                __m512i hs = _mm512_srlv_epi16(hp, sv);
                ulo = _mm512_or_si512(ulo, _mm512_and_si512(_mm512_slli_epi16(hs, 4), mh));
                uhi = _mm512_or_si512(uhi, _mm512_and_si512(_mm512_slli_epi16(hs, 4 - hb), mh));
            }
            __m512 dw = _mm512_permutexvar_ps(
                didx, _mm512_castps128_ps512(_mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)(gp + dat)))));
            /* The unpacked group serves every token: each token's sum is
             * the same chain as when it is alone. */
            _Pragma("GCC unroll 4") for (int t = 0; t < TT; t++) {
                __m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), ulo, qlo[t]);
                s = _mm512_sub_epi32(_mm512_dpbusd_epi32(s, uhi, qhi[t]), cr[t]);
                acc[i][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, dh[t]), acc[i][t]);
            }
        }
    }
    _Pragma("GCC unroll 4") for (int i = 0; i < RT; i++)
        _Pragma("GCC unroll 4") for (int t = 0; t < TT; t++) out[i][t] = sum16_ps(acc[i][t]);
}

/* Rows [r0, r1) of TT (1, 2 or 4) tokens: a[t]'s logits at y + t·ldy;
 * 4 rows at a time from the range's quarters (as head512_rows). */
static T512Q INLINE void quant_block(int hb, const void *w, size_t d, size_t r0, size_t r1, const bn_qact *a, int TT,
                                     float *y, size_t ldy)
{
    size_t gb = QUANT_GB(hb), G = d / QUANT_G, rb = G * gb, q = (r1 - r0) / 4, rs = q * rb, gs = gb;
    size_t r = r0;
    float o[4][4];
    for (; r < r0 + q; r++) {
        if (TT == 4)
            quant_rows(hb, (const uint8_t *)w + r * rb, rs, gs, G, a, 4, 4, o);
        else if (TT == 2)
            quant_rows(hb, (const uint8_t *)w + r * rb, rs, gs, G, a, 4, 2, o);
        else
            quant_rows(hb, (const uint8_t *)w + r * rb, rs, gs, G, a, 4, 1, o);
        for (int t = 0; t < TT; t++)
            for (size_t i = 0; i < 4; i++)
                y[(size_t)t * ldy + r + i * q] = o[i][t];
    }
    for (r = r0 + 4 * q; r < r1; r++) {
        if (TT == 4)
            quant_rows(hb, (const uint8_t *)w + r * rb, rb, gb, G, a, 1, 4, o);
        else if (TT == 2)
            quant_rows(hb, (const uint8_t *)w + r * rb, rb, gb, G, a, 1, 2, o);
        else
            quant_rows(hb, (const uint8_t *)w + r * rb, rb, gb, G, a, 1, 1, o);
        for (int t = 0; t < TT; t++)
            y[(size_t)t * ldy + r] = o[0][t];
    }
}

/* Several tokens 4 at a time per unpacked group (the 16 accumulators
 * stay in registers; the tokens' int8 forms are read from L1). */
BN_QHEAD_FN(v_q6, T512Q, quant_block, 2, 4)
BN_QHEAD_FN(v_q5, T512Q, quant_block, 1, 4)
BN_QHEAD_FN(v_q4, T512Q, quant_block, 0, 4)

#endif

static bn_head_fn head_scalar_find(uint32_t type)
{
    static const bn_head_fns scalar = {s_f32, s_f16, s_bf16, s_i8, s_q6, s_q5, s_q4};
    return bn_head_fns_pick(&scalar, type);
}

bn_head_fn bn_head_find_avx512(uint32_t type, const bn_cpu *cpu)
{
#if defined(__x86_64__)
    /* the q types need AVX-512 VNNI too */
    static const bn_head_fns vnni = {v_f32, v_f16, v_bf16, v_i8, v_q6, v_q5, v_q4},
                             plain = {v_f32, v_f16, v_bf16, v_i8, NULL, NULL, NULL};
    if (!cpu->avx512bw || !cpu->avx512vl || !cpu->f16c || !cpu->fma)
        return NULL;
    return bn_head_fns_pick(cpu->avx512vnni ? &vnni : &plain, type);
#else
    (void)type, (void)cpu;
    return NULL;
#endif
}

bn_head_fn bn_head_find(uint32_t type, const bn_cpu *cpu)
{
    if (bn_head_find_avx512(type, cpu))
        return bn_head_find_avx512(type, cpu);
    if (bn_head_find_avx2(type, cpu))
        return bn_head_find_avx2(type, cpu);
    if (bn_head_find_neon(type, cpu))
        return bn_head_find_neon(type, cpu);
    (void)cpu;
    return head_scalar_find(type);
}

size_t bn_head_row_bytes(uint32_t type, size_t d)
{
    int hb = quant_hb(type);
    return hb >= 0 ? d / QUANT_G * QUANT_GB(hb) : type == BN_I8 ? d : type == BN_F32 ? 4 * d : 2 * d;
}
