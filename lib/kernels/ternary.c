/* ternary.c — absmean ternarization and the plain `t2` layout. */
#include "quant.h"

#include <math.h>
#include <string.h>

int bn_t2_get(const uint8_t *t2, uint64_t k, uint64_t r, uint64_t c)
{
    uint64_t row_bytes = (k + 3) / 4;
    unsigned code = (t2[r * row_bytes + c / 4] >> (2 * (c % 4))) & 3;
    return (int)code - 1;
}

float bn_t2_scale(const uint8_t *t2, uint64_t rows, uint64_t k)
{
    float beta;
    memcpy(&beta, t2 + rows * ((k + 3) / 4), 4);
    return beta;
}

/* The order every path sums in (bn-quant's threads, the loader, the AVX2
 * path, the numpy reference's exact verdicts): within a row, element c
 * goes to double lane c % 8, the lanes are added as a fixed tree; the row
 * sums are added in row order. Rows are the unit of work, so the result
 * does not depend on how many threads share them. For f16 weights (and any
 * tensor whose sum of |w| stays below 2^29) every partial sum is exact, so
 * this equals the plain running sum bn-quant used before. */
double bn_ternary_lanes_total(const double l[8])
{
    return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
}

double bn_ternary_row_abssum_ref(const float *x, uint64_t k)
{
    double l[8] = {0};
    for (uint64_t c = 0; c < k; c++)
        l[c % 8] += fabs((double)x[c]);
    return bn_ternary_lanes_total(l);
}

float bn_ternary_beta(const double *row_sums, uint64_t rows, uint64_t k)
{
    double sum = 0;
    for (uint64_t r = 0; r < rows; r++)
        sum += row_sums[r];
    uint64_t n = rows * k;
    float beta = n ? (float)(sum / (double)n) : 0;
    if (!(beta >= 1e-5f))
        beta = 1e-5f;
    return beta;
}

float bn_ternary_scale(float beta, int recip)
{
    return recip ? 1.0f / (1.0f / beta) : beta;
}

/* One weight: clamp(rint(x / beta), -1, 1), or with recip
 * clamp(rint(x * (1/beta)), -1, 1) (inv = 1/beta in f32), NaN as 0; its
 * 2-bit code. */
unsigned bn_ternary_code(float x, float beta, float inv, int recip)
{
    float q = nearbyintf(recip ? x * inv : x / beta); /* half to even, like torch.round */
    return q >= 1 ? 2u : q <= -1 ? 0u : 1u;
}

/* Columns c0..k-1 (c0 a multiple of 4) into their bytes; the lanes'
 * sums go on from err/norm (the error against the stored scale). */
static void encode_from(const float *x, uint64_t c0, uint64_t k, float beta, int recip, uint8_t *out, double err[8],
                        double norm[8], bn_ternary_row_stats *st)
{
    uint64_t zeros = 0;
    float inv = 1.0f / beta, scale = bn_ternary_scale(beta, recip);
    for (uint64_t b = c0 / 4; b < (k + 3) / 4; b++) {
        unsigned byte = 0;
        for (unsigned j = 0; j < 4; j++) {
            uint64_t c = 4 * b + j;
            unsigned code = 1; /* padding: 0 */
            if (c < k) {
                code = bn_ternary_code(x[c], beta, inv, recip);
                int v = (int)code - 1;
                zeros += v == 0;
                double d = (double)x[c] - (double)scale * v;
                double d2 = d * d, x2 = (double)x[c] * x[c]; /* apart: never fused into an FMA */
                err[c % 8] += d2;
                norm[c % 8] += x2;
            }
            byte |= code << (2 * j);
        }
        out[b] = (uint8_t)byte;
    }
    st->zeros = zeros;
}

void bn_ternary_row_encode_ref(const float *x, uint64_t k, float beta, int recip, uint8_t *out,
                               bn_ternary_row_stats *st)
{
    double err[8] = {0}, norm[8] = {0};
    encode_from(x, 0, k, beta, recip, out, err, norm, st);
    st->err2 = bn_ternary_lanes_total(err);
    st->norm2 = bn_ternary_lanes_total(norm);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define BN_TERNARY_AVX2 1

/* The reference's lanes 0-3 and 4-7 as two vectors: the same adds in the
 * same order, so the same bits. */
__attribute__((target("avx2"))) static double row_abssum_avx2(const float *x, uint64_t k)
{
    const __m256d abs_mask = _mm256_castsi256_pd(_mm256_set1_epi64x(0x7fffffffffffffffLL));
    __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
    uint64_t c = 0;
    for (; c + 8 <= k; c += 8) {
        __m256 v = _mm256_loadu_ps(x + c);
        lo = _mm256_add_pd(lo, _mm256_and_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), abs_mask));
        hi = _mm256_add_pd(hi, _mm256_and_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)), abs_mask));
    }
    double l[8];
    _mm256_storeu_pd(l, lo);
    _mm256_storeu_pd(l + 4, hi);
    for (; c < k; c++)
        l[c % 8] += fabs((double)x[c]);
    return bn_ternary_lanes_total(l);
}

/* (x - beta*v)^2 and x^2 of four weights, added to their lanes. */
__attribute__((target("avx2"))) static void add_err4(__m128 x, __m128i code, __m256d beta, __m256d *err,
                                                     __m256d *norm)
{
    __m256d xd = _mm256_cvtps_pd(x);
    __m256d v = _mm256_cvtepi32_pd(_mm_sub_epi32(code, _mm_set1_epi32(1)));
    __m256d d = _mm256_sub_pd(xd, _mm256_mul_pd(beta, v));
    *err = _mm256_add_pd(*err, _mm256_mul_pd(d, d));
    *norm = _mm256_add_pd(*norm, _mm256_mul_pd(xd, xd));
}

__attribute__((target("avx2"))) static void row_encode_avx2(const float *x, uint64_t k, float beta, int recip,
                                                            uint8_t *out, bn_ternary_row_stats *st)
{
    const __m256 vb = _mm256_set1_ps(beta), vinv = _mm256_set1_ps(1.0f / beta), one = _mm256_set1_ps(1),
                 mone = _mm256_set1_ps(-1);
    const __m256i ones = _mm256_set1_epi32(1), shifts = _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6);
    const __m256d bd = _mm256_set1_pd((double)bn_ternary_scale(beta, recip));
    __m256d err_lo = _mm256_setzero_pd(), err_hi = err_lo, norm_lo = err_lo, norm_hi = err_lo;
    __m256i zeros = _mm256_setzero_si256();
    uint64_t c = 0;
    for (; c + 8 <= k; c += 8) {
        __m256 v = _mm256_loadu_ps(x + c);
        __m256 r = recip ? _mm256_mul_ps(v, vinv) : _mm256_div_ps(v, vb); /* the reference's one rounding */
        __m256 q = _mm256_round_ps(r, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        /* code 1, +1 where q >= 1, -1 where q <= -1 (NaN: neither) */
        __m256i up = _mm256_castps_si256(_mm256_cmp_ps(q, one, _CMP_GE_OQ));
        __m256i down = _mm256_castps_si256(_mm256_cmp_ps(q, mone, _CMP_LE_OQ));
        __m256i code = _mm256_add_epi32(_mm256_sub_epi32(ones, up), down);
        zeros = _mm256_sub_epi32(zeros, _mm256_cmpeq_epi32(code, ones));
        add_err4(_mm256_castps256_ps128(v), _mm256_castsi256_si128(code), bd, &err_lo, &norm_lo);
        add_err4(_mm256_extractf128_ps(v, 1), _mm256_extracti128_si256(code, 1), bd, &err_hi, &norm_hi);
        uint32_t sh[8];
        _mm256_storeu_si256((__m256i *)sh, _mm256_sllv_epi32(code, shifts));
        out[c / 4] = (uint8_t)(sh[0] | sh[1] | sh[2] | sh[3]);
        out[c / 4 + 1] = (uint8_t)(sh[4] | sh[5] | sh[6] | sh[7]);
    }
    double err[8], norm[8];
    uint32_t z[8];
    _mm256_storeu_pd(err, err_lo);
    _mm256_storeu_pd(err + 4, err_hi);
    _mm256_storeu_pd(norm, norm_lo);
    _mm256_storeu_pd(norm + 4, norm_hi);
    _mm256_storeu_si256((__m256i *)z, zeros);
    uint64_t nz = (uint64_t)z[0] + z[1] + z[2] + z[3] + z[4] + z[5] + z[6] + z[7];
    if (c < k) { /* the last bytes as the reference makes them */
        bn_ternary_row_stats tail;
        encode_from(x, c, k, beta, recip, out, err, norm, &tail);
        nz += tail.zeros;
    }
    st->zeros = nz;
    st->err2 = bn_ternary_lanes_total(err);
    st->norm2 = bn_ternary_lanes_total(norm);
}

static int use_avx2(void)
{
    return __builtin_cpu_supports("avx2");
}
#endif

double bn_ternary_row_abssum(const float *x, uint64_t k)
{
#ifdef BN_TERNARY_AVX2
    if (use_avx2())
        return row_abssum_avx2(x, k);
#endif
    return bn_ternary_row_abssum_ref(x, k);
}

void bn_ternary_row_encode(const float *x, uint64_t k, float beta, int recip, uint8_t *out, bn_ternary_row_stats *st)
{
#ifdef BN_TERNARY_AVX2
    if (use_avx2()) {
        row_encode_avx2(x, k, beta, recip, out, st);
        return;
    }
#endif
    bn_ternary_row_encode_ref(x, k, beta, recip, out, st);
}

void bn_ternary_stats_sum(const bn_ternary_row_stats *rows_st, uint64_t rows, uint64_t k, float beta,
                          bn_quant_stats *st)
{
    uint64_t zeros = 0, n = rows * k;
    double err2 = 0, norm2 = 0;
    for (uint64_t r = 0; r < rows; r++) {
        zeros += rows_st[r].zeros;
        err2 += rows_st[r].err2;
        norm2 += rows_st[r].norm2;
    }
    st->scale = beta;
    st->zero_share = n ? (double)zeros / (double)n : 0;
    st->rel_error = norm2 > 0 ? sqrt(err2 / norm2) : 0;
}

int bn_ternary_sums_finite(const double *row_sums, uint64_t rows)
{
    for (uint64_t r = 0; r < rows; r++)
        if (!isfinite(row_sums[r]))
            return 0;
    return 1;
}

int bn_ternarize_absmean(const float *w, uint64_t rows, uint64_t k, int recip, uint8_t *t2, bn_quant_stats *st)
{
    /* the row sums and row statistics added as they come: row order, as
     * bn_ternary_beta and bn_ternary_stats_sum add them */
    uint64_t row_bytes = (k + 3) / 4, n = rows * k;
    double sum = 0;
    for (uint64_t r = 0; r < rows; r++)
        sum += bn_ternary_row_abssum(w + r * k, k);
    if (!bn_ternary_sums_finite(&sum, 1))
        return -1;
    float beta = bn_ternary_beta(&sum, 1, n);
    bn_ternary_row_stats all = {0};
    for (uint64_t r = 0; r < rows; r++) {
        bn_ternary_row_stats rs;
        bn_ternary_row_encode(w + r * k, k, beta, recip, t2 + r * row_bytes, &rs);
        all.zeros += rs.zeros;
        all.err2 += rs.err2;
        all.norm2 += rs.norm2;
    }
    float scale = bn_ternary_scale(beta, recip);
    memcpy(t2 + rows * row_bytes, &scale, 4);
    if (st)
        bn_ternary_stats_sum(&all, 1, n, scale, st);
    return 0;
}
