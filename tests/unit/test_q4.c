/* test_q4.c — the q4 head type (formats/bn-model.md 4.1): the encoder
 * (every value within one step of its input, within half a step unless
 * clamped), the row decoder against the specification read independently
 * here, and every head function (scalar, SIMD, interleaved) against a
 * double sum of the specified formula. */
#include "check.h"
#include "cpu.h"
#include "kern_head.h"
#include "kern_ilv.h"

#include <math.h>
#include <stdint.h>
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

/* Element i (< 128) of a 72-byte group, from the specification: block
 * b = i/32, e = i%32; its code is the low nibble of byte 16b + e%16 for
 * e < 16, the high nibble for e >= 16; the scale is the f16 at 64 + 2b. */
static float spec_value(const uint8_t *g, size_t i)
{
    size_t b = i / 32, e = i % 32;
    int u = e < 16 ? g[16 * b + e % 16] & 15 : g[16 * b + e % 16] >> 4;
    uint16_t dh;
    memcpy(&dh, g + 64 + 2 * b, 2);
    return bn_f16_to_f32(dh) * (float)(u - 8);
}

static void test_q4(check_ctx *cx, const bn_cpu *cpu, const char *what)
{
    static const size_t ds[] = {128, 256, 640, 2560};
    int ok_enc = 1, ok_row = 1, ok_head = 1, ok_ilv = 1;
    for (size_t di = 0; di < sizeof ds / sizeof ds[0]; di++) {
        size_t d = ds[di], rows = 1 + (size_t)(frnd() * 4 + 5), n = 1 + di % 3, G = d / 128, rb = G * 72;
        float *x = malloc(rows * d * sizeof *x), *h = malloc(n * d * sizeof *h), *y = malloc(n * rows * sizeof *y);
        float *row = malloc(d * sizeof *row);
        double *hq = malloc(d * sizeof *hq);
        uint8_t *w = malloc(rows * rb), *wi = malloc(rows * rb);
        for (size_t i = 0; i < rows * d; i++)
            x[i] = frnd() * (i % 97 == 0 ? 8.0f : 1.0f); /* some outliers */
        for (size_t i = 0; i < n * d; i++)
            h[i] = frnd() * (i % 50 == 0 ? 10.0f : 1.0f);
        if (di == 0)
            memset(x, 0, 32 * sizeof *x); /* an all-zero block */
        CHECK(cx, bn_head_row_bytes(BN_Q4, d) == rb);
        for (size_t r = 0; r < rows; r++)
            bn_q4_encode_row(x + r * d, d, w + r * rb);
        for (size_t r = 0; r < rows; r++) {
            bn_head_row(BN_Q4, w, rows, d, r, row);
            for (size_t c = 0; c < d; c++) {
                const uint8_t *g = w + r * rb + c / 128 * 72;
                uint16_t dh;
                memcpy(&dh, g + 64 + 2 * (c % 128 / 32), 2);
                float step = fabsf(bn_f16_to_f32(dh)), want = spec_value(g, c % 128);
                ok_row &= row[c] == want;
                ok_enc &= fabsf(want - x[r * d + c]) <= step * 1.01f + 1e-7f; /* clamping: a step, and f16 rounding of the scale */
            }
        }
        bn_head_fn f = bn_head_find(BN_Q4, cpu);
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
                    double v = (double)spec_value(w + r * rb + c / 128 * 72, c % 128) * hq[c];
                    ex += v;
                    mag += fabs(v);
                }
                ok_head &= fabs(y[t * rows + r] - ex) <= 1e-5 * mag + 1e-6;
            }
        }
        /* the interleaved copy: bit for bit the row-major function's */
        size_t unit = 0;
        bn_head_fn fi = bn_head_find_ilv(BN_Q4, d, cpu, &unit);
        if (fi) {
            float *y2 = malloc(n * rows * sizeof *y2);
            bn_ilv_pack(w, rows, rb, unit, wi);
            f(w, rows, d, 0, rows, h, n, y, rows);
            fi(wi, rows, d, 0, rows, h, n, y2, rows);
            ok_ilv &= unit == 72 && !memcmp(y, y2, n * rows * sizeof *y);
            free(y2);
        }
        free(x);
        free(h);
        free(y);
        free(row);
        free(hq);
        free(w);
        free(wi);
    }
    printf("  q4 (%s): encoder %s, decoder %s, head %s, interleaved %s\n", what, ok_enc ? "ok" : "BAD",
           ok_row ? "ok" : "BAD", ok_head ? "ok" : "BAD", ok_ilv ? "ok" : "BAD");
    CHECK(cx, ok_enc);
    CHECK(cx, ok_row);
    CHECK(cx, ok_head);
    CHECK(cx, ok_ilv);
    const char *why;
    CHECK(cx, bn_head_type_ok(BN_Q4, 2560, &why) && !bn_head_type_ok(BN_Q4, 100, &why));
    CHECK(cx, !strcmp(bn_type_name(BN_Q4), "q4"));
}

int main(void)
{
    check_ctx cx = {0};
    bn_cpu cpu, none;
    bn_cpu_detect(&cpu);
    memset(&none, 0, sizeof none);
    test_q4(&cx, &cpu, "this CPU");
    test_q4(&cx, &none, "scalar");
    return check_done(&cx, "test_q4");
}
