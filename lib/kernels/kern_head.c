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

/* i8: d int8 per row, then one f32 scale per row after all rows. */
static float i8_scale(const void *w, size_t rows, size_t d, size_t r)
{
    float sc;
    memcpy(&sc, (const uint8_t *)w + rows * d + 4 * r, 4);
    return sc;
}

static void s_i8(const void *w, size_t rows, size_t d, size_t r0, size_t r1, const float *h, size_t n, float *y,
                 size_t ldy)
{
    for (size_t r = r0; r < r1; r++) {
        const int8_t *row = (const int8_t *)w + r * d;
        float sc = i8_scale(w, rows, d, r);
        for (size_t t = 0; t < n; t++) {
            float a = 0;
            for (size_t c = 0; c < d; c++)
                a += (float)row[c] * h[t * d + c];
            y[t * ldy + r] = a * sc;
        }
    }
}

float bn_i8_encode_row(const float *x, size_t d, int8_t *q)
{
    float amax = 0;
    for (size_t i = 0; i < d; i++)
        amax = fabsf(x[i]) > amax ? fabsf(x[i]) : amax;
    float sc = amax / 127.0f, inv = amax > 0 ? 127.0f / amax : 0;
    for (size_t i = 0; i < d; i++) {
        float v = nearbyintf(x[i] * inv);
        q[i] = (int8_t)(v > 127 ? 127 : v < -127 ? -127 : v);
    }
    return sc;
}

/* q4, q5, q6 (formats/bn-model.md §4.1): one family, 4-bit low nibbles
 * plus hb ∈ {0, 1, 2} high bits per code, in groups of 128 columns of
 * 72 + 16·hb bytes:
 *   bytes 0..63   low nibbles: byte 16b+j holds bits 3:0 of u(b, j) in
 *                 bits 3:0 and of u(b, 16+j) in bits 7:4 (block b < 4,
 *                 j < 16);
 *   q6: bytes 64..95 high bit pairs: byte 64+16x+j holds bits 5:4 of
 *                 u(x, j), u(x, 16+j), u(x+2, j), u(x+2, 16+j) at bits
 *                 1:0, 3:2, 5:4, 7:6 (x < 2);
 *   q5: bytes 64..79 high bits: byte 64+j holds bit 4 of u(b, j) at bit
 *                 2b and of u(b, 16+j) at bit 2b+1;
 *   then the four blocks' f16 scales d_b (bytes 64+16·hb ..).
 * u(b, i) ∈ [0, 2^(4+hb)) is element 32b+i of the group; its value is
 * d_b·(u − 2^(3+hb)). The order is the one an AVX-512 kernel wants: a
 * 64-byte load gives all low nibbles, and the high-plane bytes broadcast
 * across a zmm (q6: 32 bytes to both halves, q5: 16 to all four lanes)
 * line up with them after one variable shift. */
enum { Q6_G = 128, Q6_GB = 104, Q5_GB = 88, Q4_GB = 72 };

#define QK_GB(hb) (Q4_GB + 16 * (size_t)(hb))
#define QK_OFF(hb) (8 << (hb)) /* the zero point: 8, 16, 32 */

static int qk_u(int hb, const uint8_t *g, size_t i)
{
    size_t b = i / 32, j = i % 16, hi = i % 32 / 16;
    unsigned lo4 = (g[16 * b + j] >> (4 * hi)) & 15u;
    if (hb == 2)
        return (int)(lo4 | ((g[64 + 16 * (b % 2) + j] >> (4 * (b / 2) + 2 * hi)) & 3u) << 4);
    if (hb == 1)
        return (int)(lo4 | ((g[64 + j] >> (2 * b + hi)) & 1u) << 4);
    return (int)lo4;
}

static float qk_d(int hb, const uint8_t *g, size_t b)
{
    uint16_t v;
    memcpy(&v, g + QK_GB(hb) - 8 + 2 * b, 2);
    return bn_f16_to_f32(v);
}

/* Code u of element i into a zeroed group. */
static void qk_set(int hb, uint8_t *g, size_t i, unsigned u)
{
    size_t b = i / 32, j = i % 16, hi = i % 32 / 16;
    g[16 * b + j] |= (uint8_t)((u & 15u) << (4 * hi));
    if (hb == 2)
        g[64 + 16 * (b % 2) + j] |= (uint8_t)((u >> 4) << (4 * (b / 2) + 2 * hi));
    else if (hb == 1)
        g[64 + j] |= (uint8_t)((u >> 4) << (2 * b + hi));
}

/* Squared error of block x (32 values) coded with step dd in [lo, hi],
 * its codes into q when q is not NULL. */
static double qk_err(const float *x, float dd, float lo, float hi, float *q)
{
    double err = 0;
    for (size_t i = 0; i < 32; i++) {
        float v = nearbyintf(x[i] / dd);
        v = v > hi ? hi : v < lo ? lo : v;
        double e = (double)x[i] - (double)dd * v;
        err += e * e;
        if (q)
            q[i] = v;
    }
    return err;
}

/* Candidates d = ±amax·den/m for m in [m0, m1] (the negative sign maps
 * the largest element to the most negative code), each rounded to f16
 * first and scored as stored; the least squared error wins. Per type:
 *   q6: m/den from 30 to 32 in quarters;
 *   q5: from 14 to 16 in eighths;
 *   q4: from 6 to 8 in eighths. A finer or wider q4 search (sixteenths
 *       from 5 or 4, least-squares refits) lowered the squared error but
 *       not the perplexity on the tiny model (+0.77%, +0.83% against
 *       +0.52% for this one). */
static void qk_encode_row(int hb, int den, int m0, int m1, const float *x, size_t d, uint8_t *out)
{
    size_t gb = QK_GB(hb);
    int off = QK_OFF(hb);
    float lo = (float)-off, hi = (float)(off - 1);
    memset(out, 0, d / Q6_G * gb);
    for (size_t c0 = 0; c0 < d; c0 += 32) {
        uint8_t *g = out + c0 / Q6_G * gb;
        size_t b = c0 % Q6_G / 32;
        const float *xb = x + c0;
        float amax = 0;
        for (size_t i = 0; i < 32; i++)
            amax = fabsf(xb[i]) > amax ? fabsf(xb[i]) : amax;
        uint16_t best_h = 0;
        if (amax > 0) {
            double best = INFINITY;
            for (int sgn = -1; sgn <= 1; sgn += 2)
                for (int m = m0; m <= m1; m++) {
                    uint16_t dh = bn_f32_to_f16((float)sgn * amax * (float)den / (float)m);
                    float dd = bn_f16_to_f32(dh);
                    if (!(dd != 0) || !isfinite(dd))
                        continue;
                    double err = qk_err(xb, dd, lo, hi, NULL);
                    if (err < best) {
                        best = err;
                        best_h = dh;
                    }
                }
        }
        float dd = bn_f16_to_f32(best_h), q[32];
        if (dd != 0)
            qk_err(xb, dd, lo, hi, q);
        for (size_t i = 0; i < 32; i++)
            qk_set(hb, g, 32 * b + i, dd != 0 ? (unsigned)((int)q[i] + off) : (unsigned)off);
        memcpy(g + gb - 8 + 2 * b, &best_h, 2);
    }
}

void bn_q6_encode_row(const float *x, size_t d, uint8_t *out)
{
    qk_encode_row(2, 4, 120, 128, x, d, out);
}

void bn_q5_encode_row(const float *x, size_t d, uint8_t *out)
{
    qk_encode_row(1, 8, 112, 128, x, d, out);
}

void bn_q4_encode_row(const float *x, size_t d, uint8_t *out)
{
    qk_encode_row(0, 8, 48, 64, x, d, out);
}

/* One token's h in q6 blocks: qh[c] and dh[c/32] (the scalar order). */
static void q8_blocks(const float *h, size_t d, int8_t *qh, float *dh)
{
    for (size_t c0 = 0; c0 < d; c0 += 32) {
        float amax = 0;
        for (size_t i = 0; i < 32; i++)
            amax = fabsf(h[c0 + i]) > amax ? fabsf(h[c0 + i]) : amax;
        float s = amax > 0 ? 127.0f / amax : 0;
        dh[c0 / 32] = amax / 127.0f;
        for (size_t i = 0; i < 32; i++)
            qh[c0 + i] = (int8_t)nearbyintf(h[c0 + i] * s);
    }
}

/* The scalar reference: per block of 32, an exact int32 sum of code
 * times qh, then d_w·dh·sum in float, blocks in column order. */
static void s_qk(int hb, const void *w, size_t d, size_t r0, size_t r1, const float *h, size_t n, float *y,
                 size_t ldy)
{
    int8_t qh[BN_HEAD_MAX_D];
    float dh[BN_HEAD_MAX_D / 32];
    size_t gb = QK_GB(hb), rb = d / Q6_G * gb;
    for (size_t t = 0; t < n; t++) {
        q8_blocks(h + t * d, d, qh, dh);
        for (size_t r = r0; r < r1; r++) {
            const uint8_t *row = (const uint8_t *)w + r * rb;
            float a = 0;
            for (size_t c0 = 0; c0 < d; c0 += 32) {
                const uint8_t *g = row + c0 / Q6_G * gb;
                int32_t s = 0;
                for (size_t i = 0; i < 32; i++)
                    s += (qk_u(hb, g, c0 % Q6_G + i) - QK_OFF(hb)) * qh[c0 + i];
                a += qk_d(hb, g, c0 % Q6_G / 32) * dh[c0 / 32] * (float)s;
            }
            y[t * ldy + r] = a;
        }
    }
}

HEAD_FN(, s_q6, s_qk, 2)
HEAD_FN(, s_q5, s_qk, 1)
HEAD_FN(, s_q4, s_qk, 0)

/* hb for a q type, −1 for any other */
static int qk_hb(uint32_t type)
{
    return type == BN_Q6 ? 2 : type == BN_Q5 ? 1 : type == BN_Q4 ? 0 : -1;
}

int bn_head_type_ok(uint32_t type, size_t d, const char **why)
{
    if (type == BN_F32 || type == BN_F16 || type == BN_BF16 || type == BN_I8)
        return 1;
    if (qk_hb(type) >= 0 && d % Q6_G == 0 && d <= BN_HEAD_MAX_D)
        return 1;
    *why = type == BN_Q6   ? "q6 needs a row length that is a multiple of 128 and at most 16384"
           : type == BN_Q5 ? "q5 needs a row length that is a multiple of 128 and at most 16384"
           : type == BN_Q4 ? "q4 needs a row length that is a multiple of 128 and at most 16384"
                           : "a head or embedding table must be f32, f16, bf16, i8, q6, q5 or q4";
    return 0;
}

void bn_head_row(uint32_t type, const void *w, size_t rows, size_t d, size_t r, float *out)
{
    if (type == BN_I8) {
        const int8_t *q = (const int8_t *)w + r * d;
        float sc = i8_scale(w, rows, d, r);
        for (size_t c = 0; c < d; c++)
            out[c] = (float)q[c] * sc;
    } else if (qk_hb(type) >= 0) {
        int hb = qk_hb(type);
        size_t gb = QK_GB(hb);
        const uint8_t *row = (const uint8_t *)w + r * (d / Q6_G * gb);
        for (size_t c = 0; c < d; c++) {
            const uint8_t *g = row + c / Q6_G * gb;
            out[c] = qk_d(hb, g, c % Q6_G / 32) * (float)(qk_u(hb, g, c % Q6_G) - QK_OFF(hb));
        }
    } else {
        size_t es = type == BN_F32 ? 4 : 2;
        if (type == BN_BF16) { /* the usual embedding: a shift the compiler vectorizes */
            const uint16_t *src = (const uint16_t *)w + r * d;
            for (size_t c = 0; c < d; c++) {
                uint32_t u = (uint32_t)src[c] << 16;
                memcpy(&out[c], &u, 4);
            }
            return;
        }
        bn_to_f32(type, (const uint8_t *)w + r * d * es, out, d);
    }
}

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
            size_t i = 0;
            for (; i + 8 <= hd; i += 8)
                for (size_t l = 0; l < 8; l++)
                    part[l] += q[i + l] * kv_elem(a, a->k, (i + l) * a->ldk + p);
            for (; i < hd; i++)
                part[0] += q[i] * kv_elem(a, a->k, i * a->ldk + p);
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
#define T512Q __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,f16c,fma")))
#define INLINE inline __attribute__((always_inline))
/* Bytes ahead that the interleaved heads prefetch their one stream: on
 * the Intel (AMX) machine 2B4T t2+q5 decode went 17.9 -> 18.7 t/s at 1
 * thread, 32.0 -> 33.3 at 2 (1 KiB: 18.5, 4 KiB: 18.3). */
enum { HEAD_AHEAD = 2048 };

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
    static T512 void name(const void *w, size_t rows, size_t d, size_t r0, size_t r1, const float *h, size_t n,   \
                          float *y, size_t ldy)                                                                   \
    {                                                                                                             \
        (void)rows;                                                                                               \
        head512(T, w, d, r0, r1, h, n, y, ldy);                                                                   \
    }
V512_FN(BN_F32, v_f32)
V512_FN(BN_F16, v_f16)
V512_FN(BN_BF16, v_bf16)

/* i8: 16 int8 widened to float per FMA, 4 rows at a time; the row scale
 * once at the end. */
static T512 INLINE void i8_rows(const int8_t *row, size_t d, const float *ht, int RT, float out[4])
{
    size_t full = d / 16 * 16;
    __mmask16 tm = (__mmask16)((1u << (d - full)) - 1);
    __m512 a[4];
    _Pragma("GCC unroll 4") for (int i = 0; i < RT; i++) a[i] = _mm512_setzero_ps();
    for (size_t c = 0; c < d; c += 16) {
        __mmask16 m = c < full ? (__mmask16)0xffff : tm;
        __m512 x = _mm512_maskz_loadu_ps(m, ht + c);
        _Pragma("GCC unroll 4") for (int i = 0; i < RT; i++) {
            __m128i b = _mm_maskz_loadu_epi8(m, row + (size_t)i * d + c);
            a[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(b)), x, a[i]);
        }
    }
    _Pragma("GCC unroll 4") for (int i = 0; i < RT; i++) out[i] = _mm512_reduce_add_ps(a[i]);
}

static T512 void v_i8(const void *w, size_t rows, size_t d, size_t r0, size_t r1, const float *h, size_t n, float *y,
                      size_t ldy)
{
    for (size_t t = 0; t < n; t++) {
        size_t r = r0;
        float o[4];
        for (; r + 4 <= r1; r += 4) {
            i8_rows((const int8_t *)w + r * d, d, h + t * d, 4, o);
            for (int i = 0; i < 4; i++)
                y[t * ldy + r + (size_t)i] = o[i] * i8_scale(w, rows, d, r + (size_t)i);
        }
        for (; r < r1; r++) {
            i8_rows((const int8_t *)w + r * d, d, h + t * d, 1, o);
            y[t * ldy + r] = o[0] * i8_scale(w, rows, d, r);
        }
    }
}

/* q6 (q5, q4): per group of 128 columns and row, two vpdpbusd (low-nibble
 * and high-nibble halves of the four blocks, 6-bit (5, 4) u against int8
 * qh) leave block b's sum in lanes 4b..4b+3; minus 32·Σqh (16·, 8·),
 * times d_w·dh per lane,
 * into a float accumulator. The token's qh is rearranged once to match:
 * bytes 0..63 of a group's 128 are qh(b, j), bytes 64..127 qh(b, 16+j). */
typedef struct q6_act {
    _Alignas(64) int8_t q[BN_HEAD_MAX_D];
    _Alignas(64) float dh[BN_HEAD_MAX_D / 8];   /* per group: 16 lanes, dh_b in lanes 4b..4b+3 */
    _Alignas(64) int32_t cr[BN_HEAD_MAX_D / 8]; /* per group: 32·Σqh_b in lane 4b, 0 elsewhere */
} q6_act;

/* off: the code's zero point (32 for q6, 16 for q5, 8 for q4), folded into cr. */
static void q6_prepare(const float *h, size_t d, int32_t off, q6_act *a)
{
    int8_t qh[32];
    float dh;
    for (size_t c0 = 0; c0 < d; c0 += 32) {
        q8_blocks(h + c0, 32, qh, &dh);
        size_t g = c0 / Q6_G, b = c0 % Q6_G / 32;
        int32_t sum = 0;
        for (size_t j = 0; j < 16; j++) {
            a->q[Q6_G * g + 16 * b + j] = qh[j];
            a->q[Q6_G * g + 64 + 16 * b + j] = qh[16 + j];
        }
        for (size_t j = 0; j < 32; j++)
            sum += qh[j];
        for (size_t l = 0; l < 4; l++) {
            a->dh[16 * g + 4 * b + l] = dh;
            a->cr[16 * g + 4 * b + l] = l ? 0 : off * sum;
        }
    }
}

/* RT rows of a q type with hb high bits (q4 0, q5 1, q6 2) from w: row
 * i's group g at w + i·rs + g·gs (row-major: rs = row bytes, gs = the
 * group's bytes; interleaved: rs = group bytes, gs = 4 of them). hb is a
 * constant where this is inlined, so each type compiles to its own loop.
 * The high bits are ORed into the nibbles before the vpdpbusd, so q5 and
 * q6 cost q4's two dot products plus a broadcast, a shift and a few
 * logic ops per group and row. */
static T512Q INLINE void qk_rows(int hb, const uint8_t *w, size_t rs, size_t gs, size_t G, const q6_act *a, int RT,
                                 float out[4])
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
    const size_t dat = QK_GB(hb) - 8; /* the scales */
    __m512 acc[4];
    _Pragma("GCC unroll 4") for (int i = 0; i < RT; i++) acc[i] = _mm512_setzero_ps();
    for (size_t g = 0; g < G; g++) {
        __m512i qlo = _mm512_load_si512((const void *)(a->q + Q6_G * g));
        __m512i qhi = _mm512_load_si512((const void *)(a->q + Q6_G * g + 64));
        __m512i cr = _mm512_load_si512((const void *)(a->cr + 16 * g));
        __m512 dh = _mm512_load_ps(a->dh + 16 * g);
        _Pragma("GCC unroll 4") for (int i = 0; i < RT; i++) {
            const uint8_t *gp = w + (size_t)i * rs + gs * g;
            if (rs * 4 == gs) /* interleaved: one stream, prefetched ahead */
                _mm_prefetch((const char *)(gp + HEAD_AHEAD), _MM_HINT_T0);
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
            __m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), ulo, qlo);
            s = _mm512_sub_epi32(_mm512_dpbusd_epi32(s, uhi, qhi), cr);
            __m512 dw = _mm512_permutexvar_ps(
                didx, _mm512_castps128_ps512(_mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)(gp + dat)))));
            acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, dh), acc[i]);
        }
    }
    _Pragma("GCC unroll 4") for (int i = 0; i < RT; i++) out[i] = _mm512_reduce_add_ps(acc[i]);
}

/* ilv: whole groups of 4 rows interleaved by group (kern_ilv.h), r0 a
 * multiple of 4; the per-row arithmetic is the same, so the results are
 * bit-identical to the row-major function's. */
static T512Q INLINE void qk_head(int hb, int ilv, const void *w, size_t d, size_t r0, size_t r1, const float *h,
                                 size_t n, float *y, size_t ldy)
{
    q6_act a;
    size_t gb = QK_GB(hb), G = d / Q6_G, rb = G * gb, rs = ilv ? gb : rb, gs = ilv ? 4 * gb : gb;
    for (size_t t = 0; t < n; t++) {
        q6_prepare(h + t * d, d, QK_OFF(hb), &a);
        size_t r = r0;
        float o[4];
        for (; r + 4 <= r1; r += 4) {
            qk_rows(hb, (const uint8_t *)w + r * rb, rs, gs, G, &a, 4, o);
            for (int i = 0; i < 4; i++)
                y[t * ldy + r + (size_t)i] = o[i];
        }
        for (; r < r1; r++) {
            qk_rows(hb, (const uint8_t *)w + r * rb, rb, gb, G, &a, 1, o);
            y[t * ldy + r] = o[0];
        }
    }
}

HEAD_FN(T512Q, v_q6, qk_head, 2, 0)
HEAD_FN(T512Q, v_q6_ilv, qk_head, 2, 1)
HEAD_FN(T512Q, v_q5, qk_head, 1, 0)
HEAD_FN(T512Q, v_q5_ilv, qk_head, 1, 1)
HEAD_FN(T512Q, v_q4, qk_head, 0, 0)
HEAD_FN(T512Q, v_q4_ilv, qk_head, 0, 1)

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

/* Scores of G (1..4) heads from j0 against every position, PV·16
 * positions at a time: K is transposed (kern_head.h), so dimension d of
 * 16 consecutive positions is one load, multiplied by q_j[d] broadcast,
 * and every lane ends as one position's score: no sum across a vector.
 * G·PV chains of hd FMAs (8 or more, enough to fill both FMA ports). */
static T512 INLINE void att_scores(const bn_att_task *a, size_t j0, int G, int PV)
{
    size_t hd = a->hd, n = a->n_pos;
    const float *q = a->q + j0 * hd;
    __m512 vs = _mm512_set1_ps(a->scale);
    for (size_t p0 = 0; p0 < n; p0 += 16 * (size_t)PV) {
        __mmask16 m[4];
        __m512 s[4][4];
        _Pragma("GCC unroll 4") for (int b = 0; b < PV; b++) {
            size_t p = p0 + 16 * (size_t)b;
            m[b] = p >= n ? 0 : n - p >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - p)) - 1);
            _Pragma("GCC unroll 4") for (int j = 0; j < G; j++) s[j][b] = _mm512_setzero_ps();
        }
        for (size_t d = 0; d < hd; d++) {
            __m512 k[4];
            _Pragma("GCC unroll 4") for (int b = 0; b < PV; b++)
                k[b] = kv16(a->f16, a->k, d * a->ldk + p0 + 16 * (size_t)b, m[b]);
            _Pragma("GCC unroll 4") for (int j = 0; j < G; j++) {
                __m512 qd = _mm512_set1_ps(q[(size_t)j * hd + d]);
                _Pragma("GCC unroll 4") for (int b = 0; b < PV; b++) s[j][b] = _mm512_fmadd_ps(qd, k[b], s[j][b]);
            }
        }
        _Pragma("GCC unroll 4") for (int j = 0; j < G; j++)
            _Pragma("GCC unroll 4") for (int b = 0; b < PV; b++) {
                float *o = a->sc + (j0 + (size_t)j) * n + p0 + 16 * (size_t)b;
                if (m[b] == 0xffff) /* plain stores where whole: see softmax512 */
                    _mm512_storeu_ps(o, _mm512_mul_ps(s[j][b], vs));
                else
                    _mm512_mask_storeu_ps(o, m[b], _mm512_mul_ps(s[j][b], vs));
            }
    }
}

/* Σ_p w_jp·v_p for G heads from j0, 32 columns at a time held in
 * registers across all positions (2·G chains). */
static T512 INLINE void att_values(const bn_att_task *a, size_t j0, int G)
{
    size_t hd = a->hd, n = a->n_pos;
    for (size_t c = 0; c < hd; c += 32) {
        __mmask16 m0 = hd - c >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (hd - c)) - 1);
        __mmask16 m1 = hd - c >= 32 ? (__mmask16)0xffff : hd - c > 16 ? (__mmask16)((1u << (hd - c - 16)) - 1) : 0;
        __m512 o0[4], o1[4];
        _Pragma("GCC unroll 4") for (int j = 0; j < G; j++) o0[j] = o1[j] = _mm512_setzero_ps();
        for (size_t p = 0; p < n; p++) {
            __m512 v0 = kv16(a->f16, a->v, p * a->ld + c, m0), v1 = kv16(a->f16, a->v, p * a->ld + c + 16, m1);
            _Pragma("GCC unroll 4") for (int j = 0; j < G; j++) {
                __m512 w = _mm512_set1_ps(a->sc[(j0 + (size_t)j) * n + p]);
                o0[j] = _mm512_fmadd_ps(w, v0, o0[j]);
                o1[j] = _mm512_fmadd_ps(w, v1, o1[j]);
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
static T512 INLINE void att_scores_any(const bn_att_task *a, size_t j0, int G)
{
    switch (G) {
    case 4: att_scores(a, j0, 4, 2); break;
    case 3: att_scores(a, j0, 3, 2); break;
    case 2: att_scores(a, j0, 2, 4); break;
    default: att_scores(a, j0, 1, 4); break;
    }
}

static T512 void att512(const bn_att_task *a)
{
    for (size_t j0 = 0; j0 < a->g; j0 += 4) {
        int G = a->g - j0 >= 4 ? 4 : (int)(a->g - j0);
        att_scores_any(a, j0, G);
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
    if (cpu->avx512bw && cpu->avx512vl && cpu->f16c && cpu->fma) {
        if (type == BN_Q6 && cpu->avx512vnni)
            return v_q6;
        if (type == BN_Q5 && cpu->avx512vnni)
            return v_q5;
        if (type == BN_Q4 && cpu->avx512vnni)
            return v_q4;
        if (qk_hb(type) < 0)
            return type == BN_F32 ? v_f32 : type == BN_F16 ? v_f16 : type == BN_BF16 ? v_bf16 : type == BN_I8 ? v_i8 : NULL;
    }
#endif
    (void)cpu;
    return type == BN_F32 ? s_f32 : type == BN_F16 ? s_f16 : type == BN_BF16 ? s_bf16 : type == BN_I8 ? s_i8 : type == BN_Q6 ? s_q6 : type == BN_Q5 ? s_q5 : type == BN_Q4 ? s_q4 : NULL;
}

bn_head_fn bn_head_find_ilv(uint32_t type, size_t d, const bn_cpu *cpu, size_t *unit)
{
#if defined(__x86_64__)
    if (type == BN_Q6 && bn_head_find(type, cpu) == v_q6) {
        *unit = Q6_GB;
        return v_q6_ilv;
    }
    if (type == BN_Q5 && bn_head_find(type, cpu) == v_q5) {
        *unit = Q5_GB;
        return v_q5_ilv;
    }
    if (type == BN_Q4 && bn_head_find(type, cpu) == v_q4) {
        *unit = Q4_GB;
        return v_q4_ilv;
    }
#endif
    (void)type, (void)d, (void)cpu, (void)unit;
    return NULL;
}

size_t bn_head_row_bytes(uint32_t type, size_t d)
{
    return qk_hb(type) >= 0 ? d / Q6_G * QK_GB(qk_hb(type)) : type == BN_I8 ? d : type == BN_F32 ? 4 * d : 2 * d;
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
