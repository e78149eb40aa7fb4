/* head_encode.c — bn-quant's encoders of head and embedding rows
 * (head_encode.h): i8 (absmax scale per row) and q4/q5/q6 (a scale per
 * block of 32, chosen for the least squared error), in the layouts of
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
    float sc = amax / 127.0f, inv = amax > 0 ? 127.0f / amax : 0;
    for (size_t i = 0; i < d; i++) {
        float v = nearbyintf(x[i] * inv);
        q[i] = (int8_t)(v > 127 ? 127 : v < -127 ? -127 : v);
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
#endif

static void quant_encode_row(int hb, int den, int m0, int m1, const float *x, size_t d, uint8_t *out, int how)
{
    int one_by_one = how == BN_HEAD_ENC_REF;
#ifdef BN_HEAD_ENCODE_AVX2
    int avx2 = how == BN_HEAD_ENC_BEST && __builtin_cpu_supports("avx2");
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
        for (size_t i = 0; i < 32; i++)
            amax = fabsf(xb[i]) > amax ? fabsf(xb[i]) : amax;
        uint16_t best_h = 0;
        if (amax > 0) {
            /* the candidates that exist as f16, in the order of the search */
            float dd[QUANT_MAX_CAND], dmin = INFINITY;
            uint16_t dh[QUANT_MAX_CAND];
            double err[QUANT_MAX_CAND];
            size_t nc = 0;
            for (int sgn = -1; sgn <= 1; sgn += 2)
                for (int m = m0; m <= m1 && nc < QUANT_MAX_CAND; m++) {
                    dh[nc] = bn_f32_to_f16((float)sgn * amax * (float)den / (float)m);
                    dd[nc] = bn_f16_to_f32(dh[nc]);
                    if (!(dd[nc] != 0) || !isfinite(dd[nc]))
                        continue;
                    dmin = fabsf(dd[nc]) < dmin ? fabsf(dd[nc]) : dmin;
                    nc++;
                }
            /* |x/dd| <= amax/dmin, a few tens for every finite block; the
             * one-at-a-time search stays for anything else (NaN included) */
#ifdef BN_HEAD_ENCODE_AVX2
            if (avx2)
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
        float dd = bn_f16_to_f32(best_h), q[32];
        if (dd != 0)
            quant_block_err(xb, dd, lo, hi, q);
        for (size_t i = 0; i < 32; i++)
            quant_set_code(hb, g, 32 * b + i, dd != 0 ? (unsigned)((int)q[i] + off) : (unsigned)off);
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
