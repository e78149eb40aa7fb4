/* test_ternary.c — absmean ternarization in rows (lib/kernels/ternary.c):
 * the dispatched row functions (AVX2 where the CPU has it) equal the scalar
 * reference bit for bit on every row length around the vector width, with
 * values that round exactly at ±0.5, ±1.5, NaN, infinities and zeros; the
 * whole-tensor function equals the row functions put together; and beta
 * does not depend on how the rows are grouped. All of it under both rules:
 * W / beta and 1bitLLM's W * (1/beta), which round a weight differently
 * where the two quotients straddle a half (found and checked here). */
#include "check.h"
#include "quant.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float frnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return ((float)((rng >> 11) % 2000001) - 1000000.0f) / 25000000.0f;
}

static void fill(float *x, uint64_t n, float beta)
{
    for (uint64_t i = 0; i < n; i++) {
        x[i] = frnd();
        switch ((rng >> 3) % 16) { /* the edges of round-half-even and clamping */
        case 0: x[i] = 0.5f * beta; break;
        case 1: x[i] = -0.5f * beta; break;
        case 2: x[i] = 1.5f * beta; break;
        case 3: x[i] = -1.5f * beta; break;
        case 4: x[i] = 0; break;
        case 5: x[i] = -0.0f; break;
        default: break;
        }
    }
}

static int same_stats(const bn_ternary_row_stats *a, const bn_ternary_row_stats *b)
{
    return a->zeros == b->zeros && !memcmp(&a->err2, &b->err2, sizeof a->err2) &&
           !memcmp(&a->norm2, &b->norm2, sizeof a->norm2);
}

static void rows_match(check_ctx *c)
{
    enum { KMAX = 300 };
    float x[KMAX];
    uint8_t a[KMAX / 4 + 1], b[KMAX / 4 + 1];
    int bad_sum = 0, bad_enc = 0;
    for (uint64_t k = 1; k <= KMAX; k += k < 40 ? 1 : 13)
        for (int rep = 0; rep < 40; rep++) {
            int recip = rep >= 20;
            float beta = 0.02f + 0.001f * (float)(rep % 20);
            fill(x, k, beta);
            if (rep % 20 == 7 && k > 3) {
                x[k - 1] = NAN;
                x[k / 2] = INFINITY;
                x[1] = -INFINITY;
            }
            double s1 = bn_ternary_row_abssum(x, k), s2 = bn_ternary_row_abssum_ref(x, k);
            bad_sum += memcmp(&s1, &s2, sizeof s1) != 0;
            bn_ternary_row_stats st1, st2;
            memset(a, 0xaa, sizeof a);
            memset(b, 0x33, sizeof b);
            bn_ternary_row_encode(x, k, beta, recip, a, &st1);
            bn_ternary_row_encode_ref(x, k, beta, recip, b, &st2);
            bad_enc += memcmp(a, b, (k + 3) / 4) != 0 || (rep % 20 != 7 && !same_stats(&st1, &st2)) ||
                       (rep % 20 == 7 && st1.zeros != st2.zeros);
        }
    CHECK(c, bad_sum == 0);
    CHECK(c, bad_enc == 0);
}

/* The reference's codes, read back: clamp(rint(x / beta), -1, 1). */
static void codes_are_definition(check_ctx *c)
{
    float x[] = {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 0.49f, -0.51f, 0, 7, -7, NAN};
    uint64_t k = sizeof x / sizeof x[0];
    int want[] = {0, 1, 1, 0, -1, -1, 0, -1, 0, 1, -1, 0};
    uint8_t out[4];
    bn_ternary_row_stats st;
    bn_ternary_row_encode(x, k, 1.0f, 0, out, &st);
    int bad = 0;
    for (uint64_t i = 0; i < k; i++)
        bad += bn_t2_get(out, k, 0, i) != want[i];
    CHECK(c, bad == 0);
    CHECK(c, st.zeros == 5);
}

/* The reciprocal rule (1bitLLM's utils_quant.weight_quant): the code of
 * rint(x * s), s = 1/beta in f32, and the scale 1/s. A weight where that
 * and rint(x / beta) differ is searched for near beta/2, so each rule is
 * seen to be the one applied, by the dispatched (AVX2) row encoder and its
 * reference alike; the whole-tensor function stores 1/s. */
static void reciprocal_rule(check_ctx *c)
{
    enum { N = 24 };
    float x[N], beta = 0, hit = 0;
    for (int t = 0; t < 20000 && !hit; t++) {
        beta = 0.0173f + 0.0000213f * (float)t;
        float s = 1.0f / beta;
        /* the 8 floats either side of beta/2 (at 3beta/2 both clamp to 1) */
        float y = 0.5f * beta;
        for (int u = 0; u < 8; u++)
            y = nextafterf(y, 0);
        for (int u = 0; u < 17 && !hit; u++, y = nextafterf(y, 1))
            if (nearbyintf(y * s) != nearbyintf(y / beta))
                hit = y;
    }
    CHECK(c, hit != 0);
    /* the weight and its negative among ordinary ones, past the SIMD width */
    for (int i = 0; i < N; i++)
        x[i] = i % 3 == 0 ? hit : i % 3 == 1 ? -hit : 0.37f * beta * (float)(i % 7);
    float s = 1.0f / beta;
    int bad_div = 0, bad_rec = 0, apart = 0;
    for (int pass = 0; pass < 2; pass++) {
        uint8_t rec[N / 4], div[N / 4];
        bn_ternary_row_stats st;
        if (pass)
            bn_ternary_row_encode_ref(x, N, beta, 1, rec, &st);
        else
            bn_ternary_row_encode(x, N, beta, 1, rec, &st);
        if (pass)
            bn_ternary_row_encode_ref(x, N, beta, 0, div, &st);
        else
            bn_ternary_row_encode(x, N, beta, 0, div, &st);
        for (int i = 0; i < N; i++) {
            float qr = nearbyintf(x[i] * s), qd = nearbyintf(x[i] / beta);
            int r = bn_t2_get(rec, N, 0, (uint64_t)i), d = bn_t2_get(div, N, 0, (uint64_t)i);
            bad_rec += r != (qr >= 1 ? 1 : qr <= -1 ? -1 : 0);
            bad_div += d != (qd >= 1 ? 1 : qd <= -1 ? -1 : 0);
            apart += r != d;
        }
    }
    CHECK(c, bad_rec == 0);
    CHECK(c, bad_div == 0);
    CHECK(c, apart >= 2 * (N / 3)); /* the planted weights came out apart */
    /* the scale: 1/(1/beta), which is not beta for every beta */
    int differs = 0;
    for (float b = 0.01f; b < 0.02f && !differs; b = nextafterf(b, 1))
        if (bn_ternary_scale(b, 1) != b) {
            CHECK(c, bn_ternary_scale(b, 1) == 1.0f / (1.0f / b) && bn_ternary_scale(b, 0) == b);
            differs = 1;
        }
    CHECK(c, differs);
    /* the whole tensor stores the scale of its own beta */
    uint8_t t2[N / 4 + 4];
    bn_ternarize_absmean(x, 1, N, 1, t2, NULL);
    double sum = bn_ternary_row_abssum(x, N);
    float b2 = bn_ternary_beta(&sum, 1, N);
    CHECK(c, bn_t2_scale(t2, 1, N) == 1.0f / (1.0f / b2));
}

/* bn_ternarize_absmean (the loader's) against the rows put together as
 * bn-quant's threads do it, for any split of the rows. */
static void tensor_matches_rows(check_ctx *c)
{
    enum { ROWS = 37, K = 91 };
    static float w[ROWS * K];
    fill(w, ROWS * K, 0.02f);
    uint64_t rb = (K + 3) / 4;
    static uint8_t whole[ROWS * ((K + 3) / 4) + 4], rows[ROWS * ((K + 3) / 4) + 4];
    double sums[ROWS];
    for (int r = ROWS - 1; r >= 0; r--) /* any order: each row on its own */
        sums[r] = bn_ternary_row_abssum(w + r * K, K);
    float beta = bn_ternary_beta(sums, ROWS, K);
    for (int recip = 0; recip < 2; recip++) {
        bn_quant_stats st_whole, st_rows;
        bn_ternarize_absmean(w, ROWS, K, recip, whole, &st_whole);
        bn_ternary_row_stats rs[ROWS];
        for (int r = 0; r < ROWS; r++)
            bn_ternary_row_encode(w + r * K, K, beta, recip, rows + r * rb, &rs[r]);
        float scale = bn_ternary_scale(beta, recip);
        memcpy(rows + ROWS * rb, &scale, 4);
        bn_ternary_stats_sum(rs, ROWS, K, scale, &st_rows);
        CHECK(c, !memcmp(whole, rows, sizeof whole));
        CHECK(c, st_whole.scale == st_rows.scale && st_whole.zero_share == st_rows.zero_share &&
                     st_whole.rel_error == st_rows.rel_error);
    }
    /* beta is the mean of |w| (these sums are exact in double) */
    double exact = 0;
    for (int i = 0; i < ROWS * K; i++)
        exact += fabs((double)w[i]);
    CHECK(c, beta == (float)(exact / (ROWS * K)));
    CHECK(c, bn_ternary_beta((double[]){0}, 1, 4) == 1e-5f); /* the clamp */
}

/* f16 rows read straight from their bits (ternary_f16.c): the dispatched
 * sums and codes equal their one-at-a-time forms, and those equal the f32
 * path's on the converted row; values from random bits (subnormals,
 * infinities, quiet and signalling NaN) and from exact ties at ±beta/2,
 * ±3·beta/2. Row lengths around the 16-wide step and its 4-code bytes. */
static uint16_t f16_bits(float beta)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    switch ((rng >> 5) % 16) {
    case 0: return (uint16_t)(rng >> 20); /* any bits */
    case 1: return 0x7c01;                /* signalling NaN */
    case 2: return 0xfc00;                /* -inf */
    case 3: return (uint16_t)((rng >> 24) & 0x83ff); /* subnormal */
    case 4: return bn_f32_to_f16(0.5f * beta);
    case 5: return bn_f32_to_f16(-1.5f * beta);
    default: return bn_f32_to_f16(frnd());
    }
}

static int same_sum(double a, double b)
{
    return (isnan(a) && isnan(b)) || !memcmp(&a, &b, sizeof a);
}

static void f16_rows_match(check_ctx *c)
{
    enum { KMAX = 300 };
    uint16_t h[KMAX];
    float x[KMAX];
    uint8_t a[KMAX / 4 + 1], b[KMAX / 4 + 1], f[KMAX / 4 + 1];
    int bad_sum = 0, bad_codes = 0, tried = 0;
    for (uint64_t k = 1; k <= KMAX; k += k < 70 ? 1 : 11)
        for (int rep = 0; rep < 24; rep++) {
            int recip = rep % 2;
            float beta = bn_f16_to_f32(bn_f32_to_f16(0.02f + 0.001f * (float)(rep % 12)));
            int finite = rep % 3 != 0; /* a third of the rows with NaN and infinities */
            for (uint64_t i = 0; i < k; i++)
                do
                    h[i] = f16_bits(beta);
                while (finite && (h[i] & 0x7c00) == 0x7c00);
            for (uint64_t i = 0; i < k; i++)
                x[i] = bn_f16_to_f32(h[i]);
            double s1 = bn_ternary_row_abssum_f16(h, k), s2 = bn_ternary_row_abssum_f16_ref(h, k);
            bad_sum += !same_sum(s1, s2) || !same_sum(s2, bn_ternary_row_abssum_ref(x, k));
            memset(a, 0xaa, sizeof a);
            memset(b, 0x33, sizeof b);
            bn_ternary_row_codes_f16(h, k, beta, recip, a);
            bn_ternary_row_codes_f16_ref(h, k, beta, recip, b);
            bn_ternary_row_stats st;
            bn_ternary_row_encode_ref(x, k, beta, recip, f, &st);
            bad_codes += memcmp(a, b, (k + 3) / 4) != 0 || memcmp(b, f, (k + 3) / 4) != 0;
            tried++;
        }
    CHECK(c, tried > 1000);
    CHECK(c, bad_sum == 0);
    CHECK(c, bad_codes == 0);
}

int main(void)
{
    check_ctx c = {0};
    rows_match(&c);
    codes_are_definition(&c);
    reciprocal_rule(&c);
    tensor_matches_rows(&c);
    f16_rows_match(&c);
    return check_done(&c, "test_ternary");
}
