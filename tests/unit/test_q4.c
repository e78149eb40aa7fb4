/* test_q4.c — the q4 and q5 head types (formats/bn-model.md 4.1): the encoder
 * (every value within one step of its input, within half a step unless
 * clamped), the row decoder against the specification read independently
 * here, and every head function (scalar, SIMD) against a
 * double sum of the specified formula. */
#include "check.h"
#include "formats.h"
#include "cpu.h"
#include "head_encode.h"
#include "kern_embd.h"
#include "kern_head.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 0x853c49e6748fea9bull;
static float frnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return ((float)((rng >> 16) % 2000001) - 1000000.0f) / 1000000.0f;
}

/* Element i (< 128) of a group, from the specification: block b = i/32,
 * e = i%32; the low 4 bits of its code are the low nibble of byte
 * 16b + e%16 for e < 16, the high nibble for e >= 16. q4 (72-byte
 * groups): that is the code, value d_b·(u−8), the scale the f16 at
 * 64 + 2b. q5 (88 bytes): bit 4 of the code is bit 2b + (e >= 16) of byte
 * 64 + e%16, value d_b·(u−16), the scale at 80 + 2b. */
static float spec_value(uint32_t type, const uint8_t *g, size_t i)
{
    size_t b = i / 32, e = i % 32;
    int u = e < 16 ? g[16 * b + e % 16] & 15 : g[16 * b + e % 16] >> 4;
    size_t at = 64;
    int off = 8;
    if (type == BN_Q5) {
        u |= (g[64 + e % 16] >> (2 * b + (e >= 16)) & 1) << 4;
        at = 80;
        off = 16;
    }
    uint16_t dh;
    memcpy(&dh, g + at + 2 * b, 2);
    return bn_f16_to_f32(dh) * (float)(u - off);
}

static float spec_step(uint32_t type, const uint8_t *g, size_t i)
{
    uint16_t dh;
    memcpy(&dh, g + (type == BN_Q5 ? 80 : 64) + 2 * (i / 32), 2);
    return fabsf(bn_f16_to_f32(dh));
}

static void test_q(check_ctx *cx, uint32_t type, const bn_cpu *cpu, const char *what)
{
    static const size_t ds[] = {128, 256, 640, 2560};
    const size_t GB = type == BN_Q5 ? 88 : 72;
    void (*enc)(const float *, size_t, uint8_t *) = type == BN_Q5 ? bn_q5_encode_row : bn_q4_encode_row;
    int ok_enc = 1, ok_row = 1, ok_head = 1;
    for (size_t di = 0; di < sizeof ds / sizeof ds[0]; di++) {
        size_t d = ds[di], rows = 1 + (size_t)(frnd() * 4 + 5), n = 1 + di % 3, G = d / 128, rb = G * GB;
        float *x = malloc(rows * d * sizeof *x), *h = malloc(n * d * sizeof *h), *y = malloc(n * rows * sizeof *y);
        float *row = malloc(d * sizeof *row);
        double *hq = malloc(d * sizeof *hq);
        uint8_t *w = malloc(rows * rb);
        for (size_t i = 0; i < rows * d; i++)
            x[i] = frnd() * (i % 97 == 0 ? 8.0f : 1.0f); /* some outliers */
        for (size_t i = 0; i < n * d; i++)
            h[i] = frnd() * (i % 50 == 0 ? 10.0f : 1.0f);
        if (di == 0)
            memset(x, 0, 32 * sizeof *x); /* an all-zero block */
        CHECK(cx, bn_head_row_bytes(type, d) == rb);
        for (size_t r = 0; r < rows; r++)
            enc(x + r * d, d, w + r * rb);
        for (size_t r = 0; r < rows; r++) {
            bn_head_row(type, w, rows, d, r, row);
            for (size_t c = 0; c < d; c++) {
                const uint8_t *g = w + r * rb + c / 128 * GB;
                float step = spec_step(type, g, c % 128), want = spec_value(type, g, c % 128);
                ok_row &= row[c] == want;
                ok_enc &= fabsf(want - x[r * d + c]) <= step * 1.01f + 1e-7f; /* clamping: a step, and f16 rounding of the scale */
            }
        }
        bn_head_fn f = bn_head_find(type, cpu);
        size_t r0 = rows > 4 ? 4 : 0;
        f(w, rows, d, r0, rows, h, n, y, rows);
        for (size_t t = 0; t < n; t++) {
            /* h in blocks of 32: dh = absmax/127, qh = rint(h/dh) */
            for (size_t c0 = 0; c0 < d; c0 += 32) {
                float amax = 0;
                for (size_t i = 0; i < 32; i++)
                    amax = fmaxf(amax, fabsf(h[t * d + c0 + i]));
                for (size_t i = 0; i < 32; i++)
                    hq[c0 + i] = amax > 0 ? (double)nearbyintf(h[t * d + c0 + i] * (127.0f / amax)) *
                                                (double)(amax / 127.0f)
                                          : 0;
            }
            for (size_t r = r0; r < rows; r++) {
                double ex = 0, mag = 0;
                for (size_t c = 0; c < d; c++) {
                    double v = (double)spec_value(type, w + r * rb + c / 128 * GB, c % 128) * hq[c];
                    ex += v;
                    mag += fabs(v);
                }
                ok_head &= fabs(y[t * rows + r] - ex) <= 1e-5 * mag + 1e-6;
            }
        }
        free(x);
        free(h);
        free(y);
        free(row);
        free(hq);
        free(w);
    }
    printf("  %s (%s): encoder %s, decoder %s, head %s\n", bn_type_name(type), what, ok_enc ? "ok" : "BAD",
           ok_row ? "ok" : "BAD", ok_head ? "ok" : "BAD");
    CHECK(cx, ok_enc);
    CHECK(cx, ok_row);
    CHECK(cx, ok_head);
    const char *why;
    CHECK(cx, bn_head_type_ok(type, 2560, &why) && !bn_head_type_ok(type, 100, &why));
    uint64_t shape[2] = {3, 256};
    CHECK(cx, bn_type_size(type, 2, shape) == 3 * 2 * GB);
}

/* This CPU's head function against the scalar reference, bit for bit.
 * They sum in different orders, so the data make every float operation
 * exact: random codes under one scale ±2^-5, and h of integers times
 * 2^-7 with 127 in every block (so qh = that integer and dh = 2^-7);
 * each block sum is then s·2^-12 with |s| <= 32·16·127, and every partial
 * sum of a row (d <= 2560) stays below 2^24 units of 2^-12. Random codes
 * reach every bit of the layout, so a high bit the kernel misplaces shows
 * as a differing bit. */
static void test_exact(check_ctx *cx, uint32_t type, const bn_cpu *cpu)
{
    static const size_t ds[] = {128, 384, 2560};
    const size_t GB = type == BN_Q5 ? 88 : 72;
    int ok = 1;
    for (size_t di = 0; di < sizeof ds / sizeof ds[0]; di++) {
        size_t d = ds[di], rows = 11, n = 2, rb = d / 128 * GB;
        uint8_t *w = malloc(rows * rb);
        float *h = malloc(n * d * sizeof *h), *y = malloc(n * rows * sizeof *y), *ys = malloc(n * rows * sizeof *ys);
        for (size_t i = 0; i < rows * rb; i++)
            w[i] = (uint8_t)((rng = rng * 6364136223846793005ull + 1442695040888963407ull) >> 56);
        for (size_t g = 0; g < rows * d / 128; g++)
            for (size_t b = 0; b < 4; b++) {
                uint16_t dh = bn_f32_to_f16(frnd() < 0 ? -0.03125f : 0.03125f);
                memcpy(w + g * GB + GB - 8 + 2 * b, &dh, 2);
            }
        for (size_t i = 0; i < n * d; i++)
            h[i] = i % 32 == 7 ? 127.0f / 128.0f : nearbyintf(frnd() * 127.0f) / 128.0f;
        bn_cpu none;
        memset(&none, 0, sizeof none);
        bn_head_find(type, cpu)(w, rows, d, 0, rows, h, n, y, rows);
        bn_head_find(type, &none)(w, rows, d, 0, rows, h, n, ys, rows);
        ok &= !memcmp(y, ys, n * rows * sizeof *y);
        free(w);
        free(h);
        free(y);
        free(ys);
    }
    printf("  %s: this CPU's head against the scalar reference, exact data: %s\n", bn_type_name(type),
           ok ? "bit-identical" : "BAD");
    CHECK(cx, ok);
}

/* A call with several tokens (batched decode, a verify pass: the rows in
 * blocks, each widened or unpacked group serving up to four tokens) gives
 * each token exactly what a call with that token alone gives, for every
 * head type, this CPU's function, 1 to 9 tokens
 * (groups of 4 and every remainder), over more rows than one block and
 * from r0 = 4; the float and i8 heads also at a width with a masked tail
 * (200: 12 whole vectors and 8 columns). */
static void encode_head(uint32_t type, const float *x, size_t rows, size_t d, uint8_t *w)
{
    size_t rb = bn_head_row_bytes(type, d);
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * d;
        if (type == BN_Q6)
            bn_q6_encode_row(xr, d, w + r * rb);
        else if (type == BN_Q5)
            bn_q5_encode_row(xr, d, w + r * rb);
        else if (type == BN_Q4)
            bn_q4_encode_row(xr, d, w + r * rb);
        else if (type == BN_I8) {
            float sc = bn_i8_encode_row(xr, d, (int8_t *)w + r * d);
            memcpy(w + rows * d + 4 * r, &sc, 4);
        } else
            for (size_t c = 0; c < d; c++) {
                uint16_t v = type == BN_F16 ? bn_f32_to_f16(xr[c]) : bn_f32_to_bf16(xr[c]);
                if (type == BN_F32)
                    memcpy(w + (r * d + c) * 4, &xr[c], 4);
                else
                    memcpy(w + (r * d + c) * 2, &v, 2);
            }
    }
}

static void test_tokens_apart(check_ctx *cx, const bn_cpu *cpu)
{
    static const uint32_t types[] = {BN_F32, BN_F16, BN_BF16, BN_I8, BN_Q4, BN_Q5, BN_Q6};
    const size_t rows = 203, dmax = 256, n = 9;
    int ok = 1;
    float *x = malloc(rows * dmax * sizeof *x), *h = malloc(n * dmax * sizeof *h);
    float *y = malloc(n * rows * sizeof *y), *y1 = malloc(rows * sizeof *y1);
    uint8_t *w = malloc(rows * dmax * 4 + 4 * rows);
    for (size_t i = 0; i < rows * dmax; i++)
        x[i] = frnd();
    for (size_t i = 0; i < n * dmax; i++)
        h[i] = frnd();
    for (size_t k = 0; k < 2 * sizeof types / sizeof types[0]; k++) {
        uint32_t type = types[k / 2];
        size_t d = k % 2 ? 200 : dmax;
        const char *why;
        if (!bn_head_type_ok(type, d, &why))
            continue;
        encode_head(type, x, rows, d, w);
        bn_head_fn f = bn_head_find(type, cpu);
        for (size_t nt = 1; nt <= n; nt++) {
            memset(y, 0, n * rows * sizeof *y);
            f(w, rows, d, 4, rows, h, nt, y, rows);
            for (size_t t = 0; t < nt; t++) {
                memset(y1, 0, rows * sizeof *y1);
                f(w, rows, d, 4, rows, h + t * d, 1, y1, rows);
                ok &= !memcmp(y + t * rows + 4, y1 + 4, (rows - 4) * sizeof *y1);
            }
        }
    }
    printf("  every head type, %s: several tokens in one call = each alone: %s\n", cpu->avx512bw ? "this CPU" : "scalar",
           ok ? "bit-identical" : "BAD");
    CHECK(cx, ok);
    free(x);
    free(h);
    free(y);
    free(y1);
    free(w);
}

/* One call over a range of rows (the SIMD heads take 4 rows at a time,
 * from the range's quarters) gives every row exactly what a call for
 * that row alone gives: each row's sum is one chain whatever rows share
 * its pass. Every head type, this CPU's row-major function, one token,
 * ranges whose length is and is not a multiple of 4. */
static void test_rows_apart(check_ctx *cx, const bn_cpu *cpu)
{
    static const uint32_t types[] = {BN_F32, BN_F16, BN_BF16, BN_I8, BN_Q4, BN_Q5, BN_Q6};
    static const size_t ranges[][2] = {{0, 203}, {5, 203}, {4, 200}, {1, 4}, {7, 14}};
    const size_t rows = 203, d = 384;
    int ok = 1;
    float *x = malloc(rows * d * sizeof *x), *h = malloc(d * sizeof *h);
    float *y = malloc(rows * sizeof *y), *y1 = malloc(rows * sizeof *y1);
    uint8_t *w = malloc(rows * d * 4 + 4 * rows);
    for (size_t i = 0; i < rows * d; i++)
        x[i] = frnd();
    for (size_t i = 0; i < d; i++)
        h[i] = frnd();
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        encode_head(types[ti], x, rows, d, w);
        bn_head_fn f = bn_head_find(types[ti], cpu);
        for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++) {
            size_t r0 = ranges[i][0], r1 = ranges[i][1];
            memset(y, 0, rows * sizeof *y);
            memset(y1, 0, rows * sizeof *y1);
            f(w, rows, d, r0, r1, h, 1, y, rows);
            for (size_t r = r0; r < r1; r++)
                f(w, rows, d, r, r + 1, h, 1, y1, rows);
            ok &= !memcmp(y, y1, rows * sizeof *y);
        }
    }
    printf("  every head type, %s: a range in one call = row by row: %s\n", cpu->avx512bw ? "this CPU" : "scalar",
           ok ? "bit-identical" : "BAD");
    CHECK(cx, ok);
    free(x);
    free(h);
    free(y);
    free(y1);
    free(w);
}

/* Every encoder (q6, q5, q4), as bn-quant runs it on this CPU and in plain
 * C, against its plain search that tries the candidate scales one at a
 * time (bn_head_encode_row_how): the same bytes for
 * rows of every magnitude (f16's subnormal and largest scales included),
 * exact zeros, ties of the rounding (multiples of half a step), and blocks
 * with a NaN or an infinity. */
static void test_encode_ref(check_ctx *cx)
{
    static const uint32_t types[] = {BN_Q6, BN_Q5, BN_Q4};
    static const float mags[] = {1.0f, 1e-7f, 3e-6f, 0.02f, 37.0f, 1500.0f, 2e4f, 6e4f};
    enum { D = 512 };
    float x[D];
    uint8_t a[D / 128 * 104], b[D / 128 * 104];
    for (size_t ti = 0; ti < 3; ti++) {
        size_t rb = bn_head_row_bytes(types[ti], D);
        int same = 1;
        for (size_t mi = 0; mi < sizeof mags / sizeof mags[0]; mi++)
            for (int kind = 0; kind < 5; kind++) {
                /* kind 4: in each block of 32, x = (k + 1/2) steps of one of
                 * the candidate steps exactly (amax·den/m as f16), the
                 * rounding's ties for that candidate (q6: den 4, m 120..128;
                 * q5/q4: den 8, m 112..128 / 48..64) */
                int den = types[ti] == BN_Q6 ? 4 : 8, m0 = types[ti] == BN_Q6 ? 120 : types[ti] == BN_Q5 ? 112 : 48;
                int nm = types[ti] == BN_Q6 ? 9 : 17;
                float step = 0;
                for (size_t i = 0; i < D; i++) {
                    x[i] = frnd() * mags[mi];
                    if (kind == 1) /* ties: k/2 of a step near amax/31 */
                        x[i] = mags[mi] / 31.0f * 0.5f * (float)((int)(frnd() * 64));
                    if (kind == 2 && i % 7 == 0)
                        x[i] = 0;
                    if (kind == 4 && i % 32 == 0) { /* the block's amax, then its ties */
                        int m = m0 + (int)(i / 32 * 7 % (size_t)nm);
                        x[i] = mags[mi];
                        step = bn_f16_to_f32(bn_f32_to_f16(mags[mi] * (float)den / (float)m));
                    } else if (kind == 4) {
                        float k = (float)(int)(fabsf(frnd()) * (float)(m0 + nm) / (float)den * 0.9f);
                        x[i] = copysignf(step * (k + 0.5f), frnd());
                    }
                }
                if (kind == 3) {
                    x[5] = NAN;
                    x[40] = INFINITY;
                    x[70] = -INFINITY;
                    x[100] = NAN;
                    x[101] = INFINITY;
                }
                memset(b, 0x55, sizeof b);
                bn_head_encode_row_how(types[ti], BN_HEAD_ENC_REF, x, D, b);
                memset(a, 0xAA, sizeof a);
                (types[ti] == BN_Q6 ? bn_q6_encode_row : types[ti] == BN_Q5 ? bn_q5_encode_row : bn_q4_encode_row)(
                    x, D, a);
                same &= !memcmp(a, b, rb);
                /* each set the CPU has, and plain C (a set it lacks falls back to plain C) */
                static const int hows[] = {BN_HEAD_ENC_AVX512, BN_HEAD_ENC_AVX2, BN_HEAD_ENC_PORTABLE};
                for (size_t h = 0; h < sizeof hows / sizeof hows[0]; h++) {
                    memset(a, 0xAA, sizeof a);
                    bn_head_encode_row_how(types[ti], hows[h], x, D, a);
                    same &= !memcmp(a, b, rb);
                }
            }
        CHECK(cx, same);
        printf("  %s encoder (this CPU, AVX-512, AVX2, plain C) = its one-candidate-at-a-time search: %s\n", bn_type_name(types[ti]),
               same ? "bit-identical" : "DIFFERENT");
    }
}

/* The search's inner step alone: the squared errors of a block for 1 to
 * 34 candidate steps, each way (AVX-512 with its reciprocal shortcut, AVX2,
 * plain C) against one candidate at a time, bit for bit, on blocks full of
 * the rounding's ties: x = (k + 1/2)·dd exactly for some candidate dd, and
 * one ulp either side of it, zeros of both signs, random values. The final
 * codes are always recomputed exactly, so only this comparison sees an
 * error sum that is off in its last bit. */
static void test_block_errs(check_ctx *cx)
{
    enum { NC = 34 };
    static const int hows[] = {BN_HEAD_ENC_AVX512, BN_HEAD_ENC_AVX2, BN_HEAD_ENC_PORTABLE};
    static const float mags[] = {1.0f, 3e-6f, 0.02f, 37.0f, 6e4f};
    float x[32], dd[NC];
    double ref[NC], got[NC];
    int same = 1;
    for (int block = 0; block < 4000; block++) {
        float mag = mags[block % 5];
        for (int c = 0; c < NC; c++) {
            float d = mag * (0.02f + fabsf(frnd()) * 0.1f);
            d = bn_f16_to_f32(bn_f32_to_f16(c % 2 ? -d : d));
            dd[c] = d != 0 && isfinite(d) ? d : 1.0f;
        }
        for (int i = 0; i < 32; i++) {
            float d = dd[(int)(fabsf(frnd()) * NC) % NC], k = (float)(int)(fabsf(frnd()) * 40) + 0.5f;
            float t = copysignf(k * d, frnd());
            switch ((block + i) % 6) {
            case 0: x[i] = t; break;
            case 1: x[i] = nextafterf(t, INFINITY); break;
            case 2: x[i] = nextafterf(t, -INFINITY); break;
            case 3: x[i] = i % 2 ? 0.0f : -0.0f; break;
            default: x[i] = frnd() * mag; break;
            }
        }
        float lo = block % 3 == 0 ? -32 : block % 3 == 1 ? -16 : -8, hi = -lo - 1;
        size_t nc = block % 2 ? NC : 1 + (size_t)block / 2 % NC; /* every count the SIMD sets split */
        bn_head_block_errs_how(BN_HEAD_ENC_REF, x, dd, nc, lo, hi, ref);
        for (size_t h = 0; h < sizeof hows / sizeof hows[0]; h++) {
            bn_head_block_errs_how(hows[h], x, dd, nc, lo, hi, got);
            same &= !memcmp(got, ref, nc * sizeof *ref);
        }
    }
    CHECK(cx, same);
    printf("  block errors at the rounding's ties (AVX-512, AVX2, plain C) = one candidate at a time: %s\n",
           same ? "bit-identical" : "DIFFERENT");
}

int main(void)
{
    check_ctx cx = {0};
    bn_cpu cpu, none;
    bn_cpu_detect(&cpu);
    memset(&none, 0, sizeof none);
    test_block_errs(&cx);
    test_q(&cx, BN_Q4, &cpu, "this CPU");
    test_q(&cx, BN_Q4, &none, "scalar");
    test_q(&cx, BN_Q5, &cpu, "this CPU");
    test_q(&cx, BN_Q5, &none, "scalar");
    test_exact(&cx, BN_Q4, &cpu);
    test_exact(&cx, BN_Q5, &cpu);
    test_tokens_apart(&cx, &cpu);
    test_tokens_apart(&cx, &none);
    test_rows_apart(&cx, &cpu);
    test_encode_ref(&cx);
    CHECK(&cx, !strcmp(bn_type_name(BN_Q4), "q4") && !strcmp(bn_type_name(BN_Q5), "q5"));
    uint32_t ty;
    CHECK(&cx, !bn_type_from_name("q5", &ty) && ty == BN_Q5);
    return check_done(&cx, "test_q4");
}
