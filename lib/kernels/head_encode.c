/* head_encode.c — bn-quant's encoders of head and embedding rows
 * (head_encode.h): i8 (absmax scale per row) and q4/q5/q6 (a scale per
 * block of 32, the candidate of least squared error), in the layouts of
 * head_layout.h. */
#include "head_encode.h"
#include "head_layout.h"

#include <math.h>
#include <string.h>

float bn_i8_encode_row(const float *x, size_t d, int8_t *q)
{
    float amax = 0;
    for (size_t i = 0; i < d; i++)
        amax = fabsf(x[i]) > amax ? fabsf(x[i]) : amax;
    float sc = amax / 127.0f;
    for (size_t i = 0; i < d; i++) {
        /* by the stored scale itself, as bn-model.md states it (the
         * reciprocal 127/amax rounds some quotients to the other code) */
        float v = sc > 0 ? nearbyintf(x[i] / sc) : 0;
        /* a NaN (an inf weight makes sc inf) becomes 0, not an undefined
         * conversion; bn-quant refuses such tensors anyway */
        q[i] = isnan(v) ? 0 : (int8_t)(v > 127 ? 127 : v < -127 ? -127 : v);
    }
    return sc;
}

/* Squared error of block x (32 values) coded with step dd in [lo, hi],
 * its codes into q when q is not NULL. */
static double quant_block_err(const float *x, float dd, float lo, float hi, float *q)
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
/* The squared errors of block x with every candidate step dd[0..nc), in
 * err: each is quant_block_err's bit for bit, but all candidates advance
 * together (each sums its own errors in the same order, so the loop over
 * candidates is free to vectorize). Rounding is nearbyintf's, ties to even
 * and the sign of a zero kept, by adding and taking away 1.5·2^23: exact
 * for |x/dd| < 2^22, which the caller checks. */
enum { QUANT_MAX_CAND = 2 * 17 };
static void quant_block_errs(const float *x, const float *dd, size_t nc, float lo, float hi, double *err)
{
    for (size_t c = 0; c < nc; c++)
        err[c] = 0;
    for (size_t i = 0; i < 32; i++) {
        float xi = x[i];
        for (size_t c = 0; c < nc; c++) {
            float v = xi / dd[c];
            float r = copysignf((v + 0x1.8p23f) - 0x1.8p23f, v);
            r = r > hi ? hi : r < lo ? lo : r;
            double e = (double)xi - (double)dd[c] * r;
            err[c] += e * e;
        }
    }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define BN_HEAD_ENCODE_AVX2 1

/* quant_block_errs four candidates to a vector: the same division,
 * rounding (roundps to nearest even is nearbyintf, zeros' signs and NaN
 * included), clamp (min/max in the order that keeps a NaN), and double
 * error of each lane, added in the same order: the same bits, and no
 * bound on |x/dd|. */
__attribute__((target("avx2"))) static void quant_block_errs_avx2(const float *x, const float *dd, size_t nc,
                                                                   float lo, float hi, double *err)
{
    const __m128 vlo = _mm_set1_ps(lo), vhi = _mm_set1_ps(hi);
    for (size_t c = 0; c < nc; c += 8) {
        float d8[8] = {1, 1, 1, 1, 1, 1, 1, 1}; /* lanes past nc are scored and ignored */
        for (size_t j = 0; j < 8 && c + j < nc; j++)
            d8[j] = dd[c + j];
        __m128 da = _mm_loadu_ps(d8), db = _mm_loadu_ps(d8 + 4);
        __m256d dda = _mm256_cvtps_pd(da), ddb = _mm256_cvtps_pd(db);
        __m256d ea = _mm256_setzero_pd(), eb = _mm256_setzero_pd();
        for (size_t i = 0; i < 32; i++) {
            __m128 xi = _mm_set1_ps(x[i]);
            __m256d xd = _mm256_set1_pd((double)x[i]);
            __m128 ra = _mm_round_ps(_mm_div_ps(xi, da), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            __m128 rb = _mm_round_ps(_mm_div_ps(xi, db), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            ra = _mm_max_ps(vlo, _mm_min_ps(vhi, ra));
            rb = _mm_max_ps(vlo, _mm_min_ps(vhi, rb));
            __m256d qa = _mm256_sub_pd(xd, _mm256_mul_pd(dda, _mm256_cvtps_pd(ra)));
            __m256d qb = _mm256_sub_pd(xd, _mm256_mul_pd(ddb, _mm256_cvtps_pd(rb)));
            ea = _mm256_add_pd(ea, _mm256_mul_pd(qa, qa));
            eb = _mm256_add_pd(eb, _mm256_mul_pd(qb, qb));
        }
        double e8[8];
        _mm256_storeu_pd(e8, ea);
        _mm256_storeu_pd(e8 + 4, eb);
        for (size_t j = 0; j < 8 && c + j < nc; j++)
            err[c + j] = e8[j];
    }
}

/* quant_block_errs_avx2 with eight candidates a vector and, instead of a
 * division per value and candidate, a product with the candidate's
 * reciprocal: x·(1/dd) is within 2 ulp of x/dd, so both round to the same
 * integer unless x/dd lies within a few ulp of a half-integer (|frac −
 * 0.5| ≤ |a|·2^-19, far more than 2 ulp) or is too large for the floor
 * trick (|a| ≥ 2^21); any lane of the vector so near takes the division
 * for all eight. The rounded codes are then the division's exactly, and
 * the double errors are added in the same order: the same bits. Division
 * bound the search (a q6 head of 328 M weights: 18 divisions a weight). */
/* nz vectors of 16 candidates, nh halves of 8 of them scored (constants
 * after inlining, so every vector stays in a register and the nh
 * accumulators' chains interleave). */
__attribute__((target("avx512f,avx512dq"), always_inline)) static inline void
quant_errs_avx512_n(const float *x, const float *dd, size_t nc, float lo, float hi, double *err, int nz, int nh)
{
    const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi), half = _mm512_set1_ps(0.5f);
    const __m512 tol = _mm512_set1_ps(0x1p-19f);
    float d16[48];
    __m512 d[3], inv[3];
    __m512d dpd[6], acc[6];
    for (size_t j = 0; j < 48; j++)
        d16[j] = j < nc ? dd[j] : 1.0f; /* lanes past nc are scored and ignored */
    for (int z = 0; z < nz; z++) {
        d[z] = _mm512_loadu_ps(d16 + 16 * z);
        inv[z] = _mm512_div_ps(_mm512_set1_ps(1.0f), d[z]);
    }
    for (int h = 0; h < nh; h++) {
        dpd[h] = _mm512_cvtps_pd(_mm256_loadu_ps(d16 + 8 * h));
        acc[h] = _mm512_setzero_pd();
    }
    for (size_t i = 0; i < 32; i++) {
        __m512 xi = _mm512_set1_ps(x[i]), r[3];
        __m512d xd = _mm512_set1_pd((double)x[i]);
        for (int z = 0; z < nz; z++) {
            __m512 a = _mm512_mul_ps(xi, inv[z]);
            __m512 n = _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            /* |a − n| is exact; near when within |a|·2^-19 of 1/2 (every
             * |a| ≥ 2^18 is: the bound goes negative) */
            __m512 lim = _mm512_sub_ps(half, _mm512_mul_ps(_mm512_abs_ps(a), tol));
            if (_mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_sub_ps(a, n)), lim, _CMP_GE_OQ))
                n = _mm512_roundscale_ps(_mm512_div_ps(xi, d[z]), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            r[z] = _mm512_max_ps(vlo, _mm512_min_ps(vhi, n));
        }
        for (int h = 0; h < nh; h++) {
            __m256 rh = h % 2 ? _mm512_extractf32x8_ps(r[h / 2], 1) : _mm512_castps512_ps256(r[h / 2]);
            __m512d q = _mm512_sub_pd(xd, _mm512_mul_pd(dpd[h], _mm512_cvtps_pd(rh)));
            acc[h] = _mm512_add_pd(acc[h], _mm512_mul_pd(q, q));
        }
    }
    double e[48];
    for (int h = 0; h < nh; h++)
        _mm512_storeu_pd(e + 8 * h, acc[h]);
    memcpy(err, e, nc * sizeof *err);
}

/* quant_block_errs_avx2 sixteen candidates a vector and, instead of a
 * division per value and candidate, a product with the candidate's
 * reciprocal: x·(1/dd) is within 2 ulp of x/dd, so both round to the same
 * integer unless x/dd lies within a few ulp of a half-integer (within
 * |a|·2^-19, far more than 2 ulp); a vector with any lane so near takes
 * the division for all sixteen (a NaN lane is never near: NaN either way). The rounded codes are then the division's exactly, and
 * the double errors are added in the same order: the same bits. Division
 * bound the search (a q6 head of 328 M weights: 18 divisions a weight). */
__attribute__((target("avx512f,avx512dq"))) static void quant_block_errs_avx512(const float *x, const float *dd,
                                                                               size_t nc, float lo, float hi,
                                                                               double *err)
{
    if (nc <= 16)
        quant_errs_avx512_n(x, dd, nc, lo, hi, err, 1, 2);
    else if (nc <= 24) /* q6: 18 */
        quant_errs_avx512_n(x, dd, nc, lo, hi, err, 2, 3);
    else if (nc <= 32)
        quant_errs_avx512_n(x, dd, nc, lo, hi, err, 2, 4);
    else /* q5, q4: 34 */
        quant_errs_avx512_n(x, dd, nc, lo, hi, err, 3, 5);
}

/* The block's amax (NaN ignored, as the plain loop's comparison does) and
 * its candidate steps as quant_encode_row lists them: ±(amax·den)/m for m
 * in [m0, m1] (at most 17), negative signs first, each rounded to f16
 * (vcvtps2ph rounds to nearest even, as bn_f32_to_f16) and back; those
 * that are 0 or not finite are left out. Returns their count. */
__attribute__((target("avx512f,f16c"))) static size_t quant_candidates_avx512(const float *x, int den, int m0, int m1,
                                                                              float *amax_out, uint16_t *dh,
                                                                              float *dd, float *dmin_out)
{
    __m512 mx = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x)), _mm512_setzero_ps());
    mx = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x + 16)), mx); /* a NaN lane takes mx's */
    float amax = _mm512_reduce_max_ps(mx);
    *amax_out = amax;
    if (!(amax > 0))
        return 0;
    float ms[32];
    for (int m = m0; m <= m1; m++)
        ms[m - m0] = (float)m;
    int nm = m1 - m0 + 1;
    uint16_t h[32];
    float f[32];
    __m512 num = _mm512_set1_ps(amax * (float)den);
    for (int i = 0; i < nm; i += 16) {
        __m256i hv = _mm512_cvtps_ph(_mm512_div_ps(num, _mm512_loadu_ps(ms + i)), _MM_FROUND_TO_NEAREST_INT);
        _mm256_storeu_si256((__m256i *)(h + i), hv);
        _mm512_storeu_ps(f + i, _mm512_cvtph_ps(hv));
    }
    size_t nc = 0;
    float dmin = INFINITY;
    for (int sgn = 0; sgn < 2; sgn++)
        for (int i = 0; i < nm; i++) {
            if (!(f[i] != 0) || !isfinite(f[i]))
                continue;
            dh[nc] = (uint16_t)(h[i] | (sgn ? 0 : 0x8000));
            dd[nc] = sgn ? f[i] : -f[i];
            dmin = f[i] < dmin ? f[i] : dmin;
            nc++;
        }
    *dmin_out = dmin;
    return nc;
}

/* quant_block_err's codes for the chosen step, sixteen at a time: the same
 * division, rounding and clamp (NaN kept), so the same codes. */
__attribute__((target("avx512f"))) static void quant_block_codes_avx512(const float *x, float dd, float lo, float hi,
                                                                       float *q)
{
    const __m512 d = _mm512_set1_ps(dd), vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    for (size_t i = 0; i < 32; i += 16) {
        __m512 r = _mm512_roundscale_ps(_mm512_div_ps(_mm512_loadu_ps(x + i), d),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm512_storeu_ps(q + i, _mm512_max_ps(vlo, _mm512_min_ps(vhi, r)));
    }
}
#endif

void bn_head_block_errs_how(int how, const float *x, const float *dd, size_t nc, float lo, float hi, double *err)
{
#ifdef BN_HEAD_ENCODE_AVX2
    if (how == BN_HEAD_ENC_AVX512 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq"))
        quant_block_errs_avx512(x, dd, nc, lo, hi, err);
    else if (how == BN_HEAD_ENC_AVX2 && __builtin_cpu_supports("avx2"))
        quant_block_errs_avx2(x, dd, nc, lo, hi, err);
    else
#endif
        if (how == BN_HEAD_ENC_PORTABLE)
        quant_block_errs(x, dd, nc, lo, hi, err);
    else
        for (size_t c = 0; c < nc; c++)
            err[c] = quant_block_err(x, dd[c], lo, hi, NULL);
}

static void quant_encode_row(int hb, int den, int m0, int m1, const float *x, size_t d, uint8_t *out, int how)
{
    int one_by_one = how == BN_HEAD_ENC_REF;
#ifdef BN_HEAD_ENCODE_AVX2
    int avx512 = (how == BN_HEAD_ENC_BEST || how == BN_HEAD_ENC_AVX512) && __builtin_cpu_supports("avx512f") &&
                 __builtin_cpu_supports("avx512dq"); /* F16C: every AVX-512 CPU has it (and clang 14 cannot ask) */
    int avx2 = !avx512 && (how == BN_HEAD_ENC_BEST || how == BN_HEAD_ENC_AVX2) && __builtin_cpu_supports("avx2");
#endif
    size_t gb = QUANT_GB(hb);
    int off = QUANT_ZERO(hb);
    float lo = (float)-off, hi = (float)(off - 1);
    memset(out, 0, d / QUANT_G * gb);
    for (size_t c0 = 0; c0 < d; c0 += 32) {
        uint8_t *g = out + c0 / QUANT_G * gb;
        size_t b = c0 % QUANT_G / 32;
        const float *xb = x + c0;
        float amax = 0;
        uint16_t best_h = 0;
        /* the candidates that exist as f16, in the order of the search */
        float dd[QUANT_MAX_CAND], dmin = INFINITY;
        uint16_t dh[QUANT_MAX_CAND];
        size_t nc = 0;
#ifdef BN_HEAD_ENCODE_AVX2
        if (avx512)
            nc = quant_candidates_avx512(xb, den, m0, m1, &amax, dh, dd, &dmin);
        else
#endif
        {
            for (size_t i = 0; i < 32; i++)
                amax = fabsf(xb[i]) > amax ? fabsf(xb[i]) : amax;
            for (int sgn = -1; sgn <= 1 && amax > 0; sgn += 2)
                for (int m = m0; m <= m1 && nc < QUANT_MAX_CAND; m++) {
                    dh[nc] = bn_f32_to_f16((float)sgn * amax * (float)den / (float)m);
                    dd[nc] = bn_f16_to_f32(dh[nc]);
                    if (!(dd[nc] != 0) || !isfinite(dd[nc]))
                        continue;
                    dmin = fabsf(dd[nc]) < dmin ? fabsf(dd[nc]) : dmin;
                    nc++;
                }
        }
        if (amax > 0) {
            double err[QUANT_MAX_CAND];
            /* |x/dd| <= amax/dmin, a few tens for every finite block; the
             * one-at-a-time search stays for anything else (NaN included) */
#ifdef BN_HEAD_ENCODE_AVX2
            if (avx512)
                quant_block_errs_avx512(xb, dd, nc, lo, hi, err);
            else if (avx2)
                quant_block_errs_avx2(xb, dd, nc, lo, hi, err);
            else
#endif
                if (!one_by_one && amax / dmin < 0x1p21f)
                quant_block_errs(xb, dd, nc, lo, hi, err);
            else
                for (size_t c = 0; c < nc; c++)
                    err[c] = quant_block_err(xb, dd[c], lo, hi, NULL);
            double best = INFINITY;
            for (size_t c = 0; c < nc; c++)
                if (err[c] < best) {
                    best = err[c];
                    best_h = dh[c];
                }
        }
        float step = bn_f16_to_f32(best_h), q[32];
#ifdef BN_HEAD_ENCODE_AVX2
        if (step != 0 && avx512)
            quant_block_codes_avx512(xb, step, lo, hi, q);
        else
#endif
            if (step != 0)
            quant_block_err(xb, step, lo, hi, q);
        for (size_t i = 0; i < 32; i++)
            quant_set_code(hb, g, 32 * b + i, step != 0 && !isnan(q[i]) ? (unsigned)((int)q[i] + off) : (unsigned)off);
        memcpy(g + gb - 8 + 2 * b, &best_h, 2);
    }
}

void bn_q6_encode_row(const float *x, size_t d, uint8_t *out)
{
    quant_encode_row(2, 4, 120, 128, x, d, out, BN_HEAD_ENC_BEST);
}

void bn_q5_encode_row(const float *x, size_t d, uint8_t *out)
{
    quant_encode_row(1, 8, 112, 128, x, d, out, BN_HEAD_ENC_BEST);
}

void bn_q4_encode_row(const float *x, size_t d, uint8_t *out)
{
    quant_encode_row(0, 8, 48, 64, x, d, out, BN_HEAD_ENC_BEST);
}

void bn_head_encode_row_how(uint32_t type, int how, const float *x, size_t d, uint8_t *out)
{
    if (type == BN_Q6)
        quant_encode_row(2, 4, 120, 128, x, d, out, how);
    else if (type == BN_Q5)
        quant_encode_row(1, 8, 112, 128, x, d, out, how);
    else
        quant_encode_row(0, 8, 48, 64, x, d, out, how);
}
