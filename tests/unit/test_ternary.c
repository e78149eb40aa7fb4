/* test_ternary.c — absmean ternarization in rows (lib/kernels/ternary.c):
 * the dispatched row functions (AVX2 where the CPU has it) equal the scalar
 * reference bit for bit on every row length around the vector width, with
 * values that round exactly at ±0.5, ±1.5, NaN, infinities and zeros; the
 * whole-tensor function equals the row functions put together; and beta
 * does not depend on how the rows are grouped. */
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
        for (int rep = 0; rep < 20; rep++) {
            float beta = 0.02f + 0.001f * (float)rep;
            fill(x, k, beta);
            if (rep == 7 && k > 3) {
                x[k - 1] = NAN;
                x[k / 2] = INFINITY;
                x[1] = -INFINITY;
            }
            double s1 = bn_ternary_row_abssum(x, k), s2 = bn_ternary_row_abssum_ref(x, k);
            bad_sum += memcmp(&s1, &s2, sizeof s1) != 0;
            bn_ternary_row_stats st1, st2;
            memset(a, 0xaa, sizeof a);
            memset(b, 0x33, sizeof b);
            bn_ternary_row_encode(x, k, beta, a, &st1);
            bn_ternary_row_encode_ref(x, k, beta, b, &st2);
            bad_enc += memcmp(a, b, (k + 3) / 4) != 0 || (rep != 7 && !same_stats(&st1, &st2)) ||
                       (rep == 7 && st1.zeros != st2.zeros);
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
    bn_ternary_row_encode(x, k, 1.0f, out, &st);
    int bad = 0;
    for (uint64_t i = 0; i < k; i++)
        bad += bn_t2_get(out, k, 0, i) != want[i];
    CHECK(c, bad == 0);
    CHECK(c, st.zeros == 5);
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
    bn_quant_stats st_whole, st_rows;
    bn_ternarize_absmean(w, ROWS, K, whole, &st_whole);
    double sums[ROWS];
    bn_ternary_row_stats rs[ROWS];
    for (int r = ROWS - 1; r >= 0; r--) /* any order: each row on its own */
        sums[r] = bn_ternary_row_abssum(w + r * K, K);
    float beta = bn_ternary_beta(sums, ROWS, K);
    for (int r = 0; r < ROWS; r++)
        bn_ternary_row_encode(w + r * K, K, beta, rows + r * rb, &rs[r]);
    memcpy(rows + ROWS * rb, &beta, 4);
    bn_ternary_stats_sum(rs, ROWS, K, beta, &st_rows);
    CHECK(c, !memcmp(whole, rows, sizeof whole));
    CHECK(c, st_whole.scale == st_rows.scale && st_whole.zero_share == st_rows.zero_share &&
                 st_whole.rel_error == st_rows.rel_error);
    /* beta is the mean of |w| (these sums are exact in double) */
    double exact = 0;
    for (int i = 0; i < ROWS * K; i++)
        exact += fabs((double)w[i]);
    CHECK(c, beta == (float)(exact / (ROWS * K)));
    CHECK(c, bn_ternary_beta((double[]){0}, 1, 4) == 1e-5f); /* the clamp */
}

int main(void)
{
    check_ctx c = {0};
    rows_match(&c);
    codes_are_definition(&c);
    tensor_matches_rows(&c);
    return check_done(&c, "test_ternary");
}
