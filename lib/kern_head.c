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

#include <math.h>
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


/* ------------------------------------------------------------ attention */

static float kv_elem(const bn_att_task *a, const void *base, size_t i)
{
    return a->f16 ? bn_f16_to_f32(((const uint16_t *)base)[i]) : ((const float *)base)[i];
}

/* The portable one, also the --kernel ref path: per head, the forward
 * pass's original order (8 interleaved partial sums per dot product, expf,
 * each weight divided by the sum). */
static void att_scalar(const bn_att_task *a)
{
    size_t hd = a->hd, n = a->n_pos;
    for (size_t j = 0; j < a->g; j++) {
        const float *q = a->q + j * hd;
        float *sc = a->sc + j * n, mx = -INFINITY;
        for (size_t p = 0; p < n; p++) {
            float part[8] = {0};
            size_t i = 0, off = p * a->ld;
            for (; i + 8 <= hd; i += 8)
                for (size_t l = 0; l < 8; l++)
                    part[l] += q[i + l] * kv_elem(a, a->k, off + i + l);
            for (; i < hd; i++)
                part[0] += q[i] * kv_elem(a, a->k, off + i);
            sc[p] = (((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]))) *
                    a->scale;
            if (sc[p] > mx)
                mx = sc[p];
        }
        float sum = 0;
        for (size_t p = 0; p < n; p++) {
            sc[p] = expf(sc[p] - mx);
            sum += sc[p];
        }
        float *out = a->out + j * hd;
        memset(out, 0, hd * sizeof *out);
        for (size_t p = 0; p < n; p++) {
            float w = sc[p] / sum;
            for (size_t i = 0; i < hd; i++)
                out[i] += w * kv_elem(a, a->v, p * a->ld + i);
        }
    }
}

static void f16_row_scalar(const float *x, uint16_t *h, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h[i] = bn_f32_to_f16(x[i]);
}

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

/* --------------------------------------------------- AVX-512 attention */

/* 16 cache elements from element off (f16 widened by vcvtph2ps). */
static T512 INLINE __m512 kv16(int f16, const void *base, size_t off, __mmask16 m)
{
    if (f16)
        return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)base + off));
    return _mm512_maskz_loadu_ps(m, (const float *)base + off);
}

/* e^x for x <= 0 (softmax after the max is subtracted): x = n·ln2 + r
 * with |r| <= ln2/2, e^r by the Cephes expf polynomial (about 1 ulp),
 * 2^n by vscalefps, which also flushes very negative x to 0. */
static T512 INLINE __m512 exp512(__m512 x)
{
    x = _mm512_max_ps(x, _mm512_set1_ps(-104.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}

/* Scores of G (1..4) heads from j0 against every position: each K row is
 * loaded (converted) once for the G heads; two accumulators per head so
 * the FMA chains are half as long. */
static T512 INLINE void att_scores(const bn_att_task *a, size_t j0, int G)
{
    size_t hd = a->hd, n = a->n_pos, full = hd / 16 * 16;
    __mmask16 tm = (__mmask16)((1u << (hd - full)) - 1);
    const float *q = a->q + j0 * hd;
    for (size_t p = 0; p < n; p++) {
        size_t off = p * a->ld;
        __m512 s0[4], s1[4];
        _Pragma("GCC unroll 4") for (int j = 0; j < G; j++) s0[j] = s1[j] = _mm512_setzero_ps();
        size_t c = 0;
        for (; c + 32 <= full; c += 32) {
            __m512 k0 = kv16(a->f16, a->k, off + c, 0xffff), k1 = kv16(a->f16, a->k, off + c + 16, 0xffff);
            _Pragma("GCC unroll 4") for (int j = 0; j < G; j++) {
                s0[j] = _mm512_fmadd_ps(_mm512_loadu_ps(q + j * hd + c), k0, s0[j]);
                s1[j] = _mm512_fmadd_ps(_mm512_loadu_ps(q + j * hd + c + 16), k1, s1[j]);
            }
        }
        for (; c < hd; c += 16) {
            __mmask16 m = c < full ? (__mmask16)0xffff : tm;
            __m512 k0 = kv16(a->f16, a->k, off + c, m);
            _Pragma("GCC unroll 4") for (int j = 0; j < G; j++)
                s0[j] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + j * hd + c), k0, s0[j]);
        }
        _Pragma("GCC unroll 4") for (int j = 0; j < G; j++)
            a->sc[(j0 + (size_t)j) * n + p] = _mm512_reduce_add_ps(_mm512_add_ps(s0[j], s1[j])) * a->scale;
    }
}

/* Σ_p w_jp·v_p for G heads from j0, 16 columns at a time held in
 * registers across all positions. */
static T512 INLINE void att_values(const bn_att_task *a, size_t j0, int G)
{
    size_t hd = a->hd, n = a->n_pos, full = hd / 16 * 16;
    __mmask16 tm = (__mmask16)((1u << (hd - full)) - 1);
    for (size_t c = 0; c < hd; c += 16) {
        __mmask16 m = c < full ? (__mmask16)0xffff : tm;
        __m512 o[4];
        _Pragma("GCC unroll 4") for (int j = 0; j < G; j++) o[j] = _mm512_setzero_ps();
        for (size_t p = 0; p < n; p++) {
            __m512 v = kv16(a->f16, a->v, p * a->ld + c, m);
            _Pragma("GCC unroll 4") for (int j = 0; j < G; j++)
                o[j] = _mm512_fmadd_ps(_mm512_set1_ps(a->sc[(j0 + (size_t)j) * n + p]), v, o[j]);
        }
        _Pragma("GCC unroll 4") for (int j = 0; j < G; j++)
            _mm512_mask_storeu_ps(a->out + (j0 + (size_t)j) * hd + c, m, o[j]);
    }
}

/* Softmax of one head's n scores in place, normalized (weights sum to 1). */
static T512 INLINE void softmax512(float *sc, size_t n)
{
    size_t full = n / 16 * 16;
    __mmask16 tm = (__mmask16)((1u << (n - full)) - 1);
    __m512 mx = _mm512_set1_ps(-INFINITY);
    for (size_t p = 0; p < n; p += 16)
        mx = _mm512_max_ps(mx, _mm512_mask_loadu_ps(mx, p < full ? (__mmask16)0xffff : tm, sc + p));
    __m512 vmx = _mm512_set1_ps(_mm512_reduce_max_ps(mx)), sum = _mm512_setzero_ps();
    for (size_t p = 0; p < n; p += 16) {
        __mmask16 m = p < full ? (__mmask16)0xffff : tm;
        __m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, sc + p), vmx));
        e = _mm512_maskz_mov_ps(m, e);
        sum = _mm512_add_ps(sum, e);
        _mm512_mask_storeu_ps(sc + p, m, e);
    }
    __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
    for (size_t p = 0; p < n; p += 16) {
        __mmask16 m = p < full ? (__mmask16)0xffff : tm;
        _mm512_mask_storeu_ps(sc + p, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, sc + p), inv));
    }
}

#define BY_G(fn, a, j0, G)                                                                                        \
    switch (G) {                                                                                                  \
    case 4: fn(a, j0, 4); break;                                                                                  \
    case 3: fn(a, j0, 3); break;                                                                                  \
    case 2: fn(a, j0, 2); break;                                                                                  \
    default: fn(a, j0, 1); break;                                                                                 \
    }

static T512 void att512(const bn_att_task *a)
{
    for (size_t j0 = 0; j0 < a->g; j0 += 4) {
        int G = a->g - j0 >= 4 ? 4 : (int)(a->g - j0);
        BY_G(att_scores, a, j0, G)
    }
    for (size_t j = 0; j < a->g; j++)
        softmax512(a->sc + j * a->n_pos, a->n_pos);
    for (size_t j0 = 0; j0 < a->g; j0 += 4) {
        int G = a->g - j0 >= 4 ? 4 : (int)(a->g - j0);
        BY_G(att_values, a, j0, G)
    }
}

static T512 void f16_row512(const float *x, uint16_t *h, size_t n)
{
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m256i v = _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm256_mask_storeu_epi16(h + i, m, v);
    }
}
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

bn_att_fn bn_att_find(const bn_cpu *cpu)
{
#if defined(__x86_64__)
    if (cpu->avx512f && cpu->avx512bw && cpu->avx512vl && cpu->f16c && cpu->fma)
        return att512;
#endif
    (void)cpu;
    return att_scalar;
}

bn_f16_row_fn bn_f16_row_find(const bn_cpu *cpu)
{
#if defined(__x86_64__)
    if (cpu->avx512f && cpu->avx512bw && cpu->avx512vl && cpu->f16c)
        return f16_row512;
#endif
    (void)cpu;
    return f16_row_scalar;
}
