/* kern_attn.c — causal attention of one query token over one KV head
 * (kern_attn.h): scores against the transposed K cache, softmax, and the
 * weighted sum of V rows. The scalar one is the reference (and the
 * --kernel ref path); the AVX-512 one agrees with it to rounding. */
#include "cpu.h"
#include "kern_attn.h"

#include <math.h>
#include <string.h>

/* Element i of a K or V area that begins off bytes into the block of position p. */
static float kv_elem(const bn_att_task *a, size_t p, size_t off, size_t i)
{
    const uint8_t *base = a->blk[p / a->bs] + off;
    return a->f16 ? bn_f16_to_f32(((const uint16_t *)base)[i]) : ((const float *)base)[i];
}

/* The portable one, also the --kernel ref path: per head, the forward
 * pass's original order (8 interleaved partial sums per dot product, expf,
 * each weight divided by the sum). */
void bn_att_scalar_window(const bn_att_task *a, size_t p0)
{
    size_t hd = a->hd, n = a->n_pos, bs = a->bs;
    for (size_t j = 0; j < a->g; j++) {
        const float *q = a->q + j * hd;
        float *sc = a->sc + j * n, mx = -INFINITY;
        for (size_t p = p0; p < n; p++) {
            float part[8] = {0};
            size_t i = 0, bp = p % bs;
            for (; i + 8 <= hd; i += 8)
                for (size_t l = 0; l < 8; l++)
                    part[l] += q[i + l] * kv_elem(a, p, a->koff, (i + l) * bs + bp);
            for (; i < hd; i++)
                part[0] += q[i] * kv_elem(a, p, a->koff, i * bs + bp);
            sc[p] = (((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]))) *
                    a->scale;
            if (sc[p] > mx)
                mx = sc[p];
        }
        float sum = 0;
        for (size_t p = p0; p < n; p++) {
            sc[p] = expf(sc[p] - mx);
            sum += sc[p];
        }
        float *out = a->out + j * hd;
        memset(out, 0, hd * sizeof *out);
        for (size_t p = p0; p < n; p++) {
            float w = sc[p] / sum;
            for (size_t i = 0; i < hd; i++)
                out[i] += w * kv_elem(a, p, a->voff, p % bs * a->ld + i);
        }
    }
}

static void att_scalar(const bn_att_task *a)
{
    bn_att_scalar_window(a, 0);
}

#if defined(__x86_64__)
#include <immintrin.h>

#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,f16c,fma")))
#define INLINE inline __attribute__((always_inline))

/* 16 cache elements from element off (f16 widened by vcvtph2ps). */
static T512 INLINE __m512 kv16(int f16, const void *base, size_t off, __mmask16 m)
{
    if (f16)
        return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)base + off));
    return _mm512_maskz_loadu_ps(m, (const float *)base + off);
}

/* e^x for x <= 0 (softmax after the max is subtracted): x = n·ln2 + r
 * with |r| <= ln2/2, e^r by the Cephes expf polynomial (about 1 ulp),
 * 2^n by vscalefps. Below -87.33 (e^x under FLT_MIN) the result is 0,
 * not a subnormal: every vector op that makes or reads a subnormal takes
 * a microcode assist (on random-weight models most weights of a long
 * softmax are that small, and attention ran 1.4x slower). The weights
 * lost are below 1.2e-38 of the largest. */
static T512 INLINE __m512 exp512(__m512 x)
{
    __mmask16 normal = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.33f), _CMP_GE_OQ);
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.33f));
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
    return _mm512_maskz_scalef_ps(normal, p, n);
}

/* Scores of G (1..4) heads from j0 against the nb positions of one block
 * whose K begins at k (positions p0.. of the sequence), PV·16 positions at
 * a time: K is transposed (kern_attn.h), so dimension d of 16 consecutive
 * positions is one load, multiplied by q_j[d] broadcast, and every lane
 * ends as one position's score: no sum across a vector. G·PV chains of hd
 * FMAs (8 or more, enough to fill both FMA ports). */
static T512 INLINE void att_scores(const bn_att_task *a, const void *k, size_t nb, size_t p0, size_t j0, int G,
                                   int PV)
{
    size_t hd = a->hd, n = a->n_pos, ldk = a->bs;
    const float *q = a->q + j0 * hd;
    __m512 vs = _mm512_set1_ps(a->scale);
    for (size_t b0 = 0; b0 < nb; b0 += 16 * (size_t)PV) {
        __mmask16 m[4];
        __m512 s[4][4];
        _Pragma("GCC unroll 4") for (int b = 0; b < PV; b++) {
            size_t p = b0 + 16 * (size_t)b;
            m[b] = p >= nb ? 0 : nb - p >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (nb - p)) - 1);
            _Pragma("GCC unroll 4") for (int j = 0; j < G; j++) s[j][b] = _mm512_setzero_ps();
        }
        for (size_t d = 0; d < hd; d++) {
            __m512 kv[4];
            _Pragma("GCC unroll 4") for (int b = 0; b < PV; b++)
                kv[b] = kv16(a->f16, k, d * ldk + b0 + 16 * (size_t)b, m[b]);
            _Pragma("GCC unroll 4") for (int j = 0; j < G; j++) {
                __m512 qd = _mm512_set1_ps(q[(size_t)j * hd + d]);
                _Pragma("GCC unroll 4") for (int b = 0; b < PV; b++) s[j][b] = _mm512_fmadd_ps(qd, kv[b], s[j][b]);
            }
        }
        _Pragma("GCC unroll 4") for (int j = 0; j < G; j++)
            _Pragma("GCC unroll 4") for (int b = 0; b < PV; b++) {
                float *o = a->sc + (j0 + (size_t)j) * n + p0 + b0 + 16 * (size_t)b;
                if (m[b] == 0xffff) /* plain stores where whole: see softmax512 */
                    _mm512_storeu_ps(o, _mm512_mul_ps(s[j][b], vs));
                else
                    _mm512_mask_storeu_ps(o, m[b], _mm512_mul_ps(s[j][b], vs));
            }
    }
}

/* Σ_p w_jp·v_p for G heads from j0, 32 columns at a time held in
 * registers across all positions, block after block (2·G chains). */
static T512 INLINE void att_values(const bn_att_task *a, size_t j0, int G)
{
    size_t hd = a->hd, n = a->n_pos, bs = a->bs, vrow = a->ld * (a->f16 ? 2 : 4);
    for (size_t c = 0; c < hd; c += 32) {
        __mmask16 m0 = hd - c >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (hd - c)) - 1);
        __mmask16 m1 = hd - c >= 32 ? (__mmask16)0xffff : hd - c > 16 ? (__mmask16)((1u << (hd - c - 16)) - 1) : 0;
        __m512 o0[4], o1[4];
        _Pragma("GCC unroll 4") for (int j = 0; j < G; j++) o0[j] = o1[j] = _mm512_setzero_ps();
        for (size_t p0 = 0; p0 < n; p0 += bs) {
            const uint8_t *v = a->blk[p0 / bs] + a->voff;
            size_t nb = n - p0 < bs ? n - p0 : bs;
            const float *w = a->sc + j0 * n + p0;
            for (size_t p = 0; p < nb; p++, v += vrow) {
                __m512 v0 = kv16(a->f16, v, c, m0), v1 = kv16(a->f16, v, c + 16, m1);
                _Pragma("GCC unroll 4") for (int j = 0; j < G; j++) {
                    __m512 wj = _mm512_set1_ps(w[(size_t)j * n + p]);
                    o0[j] = _mm512_fmadd_ps(wj, v0, o0[j]);
                    o1[j] = _mm512_fmadd_ps(wj, v1, o1[j]);
                }
            }
        }
        _Pragma("GCC unroll 4") for (int j = 0; j < G; j++) {
            _mm512_mask_storeu_ps(a->out + (j0 + (size_t)j) * hd + c, m0, o0[j]);
            _mm512_mask_storeu_ps(a->out + (j0 + (size_t)j) * hd + c + 16, m1, o1[j]);
        }
    }
}

/* Softmax of one head's n scores in place, normalized (weights sum to 1).
 * Whole vectors with plain loads and stores, the tail masked: a load
 * cannot take its data from a masked store still in flight and waits
 * (2B4T pp512, 1 thread: 179 -> 187 t/s, one run each; the larger cost
 * profiled here was subnormals, see exp512). */
static T512 INLINE void softmax512(float *sc, size_t n)
{
    size_t full = n / 16 * 16;
    __mmask16 tm = (__mmask16)((1u << (n - full)) - 1);
    __m512 mx = _mm512_set1_ps(-INFINITY);
    for (size_t p = 0; p < full; p += 16)
        mx = _mm512_max_ps(mx, _mm512_loadu_ps(sc + p));
    if (tm)
        mx = _mm512_max_ps(mx, _mm512_mask_loadu_ps(mx, tm, sc + full));
    __m512 vmx = _mm512_set1_ps(_mm512_reduce_max_ps(mx)), sum = _mm512_setzero_ps();
    for (size_t p = 0; p < full; p += 16) {
        __m512 e = exp512(_mm512_sub_ps(_mm512_loadu_ps(sc + p), vmx));
        sum = _mm512_add_ps(sum, e);
        _mm512_storeu_ps(sc + p, e);
    }
    if (tm) {
        __m512 e = _mm512_maskz_mov_ps(tm, exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(tm, sc + full), vmx)));
        sum = _mm512_add_ps(sum, e);
        _mm512_mask_storeu_ps(sc + full, tm, e);
    }
    __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
    for (size_t p = 0; p < full; p += 16)
        _mm512_storeu_ps(sc + p, _mm512_mul_ps(_mm512_loadu_ps(sc + p), inv));
    if (tm)
        _mm512_mask_storeu_ps(sc + full, tm, _mm512_mul_ps(_mm512_maskz_loadu_ps(tm, sc + full), inv));
}

#define BY_G(fn, a, j0, G)                                                                                        \
    switch (G) {                                                                                                  \
    case 4: fn(a, j0, 4); break;                                                                                  \
    case 3: fn(a, j0, 3); break;                                                                                  \
    case 2: fn(a, j0, 2); break;                                                                                  \
    default: fn(a, j0, 1); break;                                                                                 \
    }

/* att_scores with G heads and PV position vectors, both constants: 2
 * vectors for 3-4 heads, 4 for 1-2 (so 8 or more chains). */
static T512 INLINE void att_scores_any(const bn_att_task *a, const void *k, size_t nb, size_t p0, size_t j0, int G)
{
    switch (G) {
    case 4: att_scores(a, k, nb, p0, j0, 4, 2); break;
    case 3: att_scores(a, k, nb, p0, j0, 3, 2); break;
    case 2: att_scores(a, k, nb, p0, j0, 2, 4); break;
    default: att_scores(a, k, nb, p0, j0, 1, 4); break;
    }
}

/* Every cache line of K and V the task will read, asked for before any
 * is needed. A batched decode pass reads each token's own sequence's
 * cache (2B4T at 136 positions: 10 MB a token, all layers), beyond the
 * caches at N = 8 and more, and the loops below walk it in short strides
 * (K rows 128 bytes apart, V rows a whole kv_dim apart) that the hardware
 * prefetchers did not follow: 3/4 of the attention's time was waiting on
 * those loads. K first, in the order the scores read it, then V. */
static T512 INLINE void att_prefetch(const bn_att_task *a)
{
    size_t es = a->f16 ? 2 : 4, krow = a->bs * es, vrow = a->ld * es, vlen = a->hd * es;
    for (size_t p0 = 0; p0 < a->n_pos; p0 += a->bs) {
        size_t nb = a->n_pos - p0 < a->bs ? a->n_pos - p0 : a->bs, klen = nb * es;
        const uint8_t *k = a->blk[p0 / a->bs] + a->koff;
        for (size_t d = 0; d < a->hd; d++, k += krow) {
            for (size_t o = 0; o < klen; o += 64)
                _mm_prefetch((const char *)(k + o), _MM_HINT_T0);
            _mm_prefetch((const char *)(k + klen - 1), _MM_HINT_T0);
        }
    }
    for (size_t p0 = 0; p0 < a->n_pos; p0 += a->bs) {
        size_t nb = a->n_pos - p0 < a->bs ? a->n_pos - p0 : a->bs;
        const uint8_t *v = a->blk[p0 / a->bs] + a->voff;
        for (size_t p = 0; p < nb; p++, v += vrow) {
            for (size_t o = 0; o < vlen; o += 64)
                _mm_prefetch((const char *)(v + o), _MM_HINT_T0);
            _mm_prefetch((const char *)(v + vlen - 1), _MM_HINT_T0);
        }
    }
}

static T512 void att512(const bn_att_task *a)
{
    att_prefetch(a);
    for (size_t j0 = 0; j0 < a->g; j0 += 4) {
        int G = a->g - j0 >= 4 ? 4 : (int)(a->g - j0);
        for (size_t p0 = 0; p0 < a->n_pos; p0 += a->bs) {
            size_t nb = a->n_pos - p0 < a->bs ? a->n_pos - p0 : a->bs;
            att_scores_any(a, a->blk[p0 / a->bs] + a->koff, nb, p0, j0, G);
        }
    }
    for (size_t j = 0; j < a->g; j++)
        softmax512(a->sc + j * a->n_pos, a->n_pos);
    for (size_t j0 = 0; j0 < a->g; j0 += 4) {
        int G = a->g - j0 >= 4 ? 4 : (int)(a->g - j0);
        BY_G(att_values, a, j0, G)
    }
}
#endif

bn_att_fn bn_att_find(const bn_cpu *cpu)
{
#if defined(__x86_64__)
    if (cpu->avx512f && cpu->avx512bw && cpu->avx512vl && cpu->f16c && cpu->fma)
        return att512;
#endif
    (void)cpu;
    return att_scalar;
}
