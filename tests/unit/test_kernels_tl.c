/* test_kernels_tl.c — the lookup-table layouts tl1 and tl2: bytes against
 * the specification (formats/bn-model.md §4.1, decoded here independently
 * of tl_layout.c), lossless round trips in every kind of tile, sizes that
 * depend on the shape alone, and every SIMD set against the scalar
 * reference bit for bit on ragged shapes, thread-split row ranges and the
 * worst cases for the int16 sums.
 *
 * Links only the kernel files, so it also runs on AArch64 under qemu
 * (make check-arm). */
#include "check.h"
#include "cpu.h"
#include "kern_2bit.h"
#include "kern_tl.h"
#include "kernels.h"
#include "pack.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

/* t2 tensor; mode 0 random, 1 all +1, 2 all −1, 3 sparse. */
static uint8_t *make_t2(size_t rows, size_t k, int mode)
{
    size_t rb = (k + 3) / 4;
    uint8_t *t = malloc(rows * rb + 4);
    memset(t, 0x55, rows * rb);
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < k; c++) {
            int v = mode == 1 ? 1 : mode == 2 ? -1 : mode == 3 ? (rnd() % 8 ? 0 : (int)(rnd() % 2) * 2 - 1)
                                                                : (int)(rnd() % 3) - 1;
            uint8_t *b = &t[r * rb + c / 4];
            *b = (uint8_t)((*b & ~(3u << (2 * (c % 4)))) | ((unsigned)(v + 1) << (2 * (c % 4))));
        }
    float beta = 0.75f + (float)(rnd() % 100) / 128.0f;
    memcpy(t + rows * rb, &beta, 4);
    return t;
}

static int t2_at(const uint8_t *t, size_t k, size_t r, size_t c)
{
    return ((t[r * ((k + 3) / 4) + c / 4] >> (2 * (c % 4))) & 3) - 1;
}

/* Element (r, c) read straight from the specification text. */
static int spec_at(uint32_t type, const uint8_t *p, size_t R, size_t K, size_t r, size_t c)
{
    uint32_t BM;
    memcpy(&BM, p, 4);
    size_t Kt = type == BN_TL2 ? K / 6 * 6 : 0;
    size_t G = type == BN_TL2 ? Kt / 6 + (K - Kt + 3) / 4 : (K + 3) / 4;
    size_t rowbytes_full = BM * G + (type == BN_TL2 ? (Kt / 3) * (BM / 16) * 2 : 0);
    size_t b = r / BM, i = r % BM, h = R - b * BM < BM ? R - b * BM : BM;
    const uint8_t *blk = p + 32 + b * rowbytes_full;
    if (c < Kt) { /* triple t = c/3 in group t/2, high nibble for even t */
        size_t t = c / 3;
        unsigned byte = blk[(t / 2) * h + i], m = t % 2 ? byte & 15 : byte >> 4;
        const uint8_t *wd = blk + h * G + 2 * (t * ((h + 15) / 16) + i / 16);
        int neg = ((wd[0] | wd[1] << 8) >> (15 - i % 16)) & 1;
        int v = neg ? -(int)m : (int)m, digits[3];
        for (int j = 2; j >= 0; j--) { /* balanced ternary: v = 9 w0 + 3 w1 + w2 */
            int d = ((v % 3) + 3) % 3;
            d = d == 2 ? -1 : d;
            digits[j] = d;
            v = (v - d) / 3;
        }
        return digits[c % 3];
    }
    size_t cc = c - Kt, gi = Kt / 6 + cc / 4; /* pairs: first in the high nibble */
    unsigned byte = blk[gi * h + i], idx = cc % 4 < 2 ? byte >> 4 : byte & 15;
    int w0 = (int)idx / 3 - 1, w1 = (int)idx % 3 - 1; /* idx = 3 w0 + w1 + 4 */
    return cc % 2 ? w1 : w0;
}

static void test_layout(check_ctx *cx)
{
    static const size_t ks[] = {1, 2, 3, 4, 5, 6, 7, 11, 12, 13, 100, 255, 256, 257, 700, 1000};
    static const size_t rowss[] = {1, 15, 16, 17, 31, 32, 33, 64, 100, 130};
    int spec = 1, back = 1, size = 1, beta_ok = 1;
    for (int type = BN_TL1; type <= BN_TL2; type++)
        for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
            size_t k = ks[ki], rows = rowss[rnd() % (sizeof rowss / sizeof rowss[0])];
            uint32_t bm = 32 * (1 + rnd() % 4), step = type == BN_TL2 ? 6 : 4;
            uint32_t bk = step * (1 + rnd() % (252 / step));
            uint8_t *t2 = make_t2(rows, k, (int)(rnd() % 4));
            uint64_t sz = bn_packed_size((uint32_t)type, rows, k);
            uint8_t *p = malloc(sz), *p2 = malloc(sz), *t2b = malloc(rows * ((k + 3) / 4) + 4);
            CHECK(cx, bn_tl_pack((uint32_t)type, bm, bk, t2, rows, k, p) == 0);
            /* the default tile through the generic entry point: same size */
            CHECK(cx, bn_pack_t2((uint32_t)type, t2, rows, k, p2) == 0);
            for (size_t r = 0; r < rows; r++)
                for (size_t c = 0; c < k; c++) {
                    spec &= spec_at((uint32_t)type, p, rows, k, r, c) == t2_at(t2, k, r, c);
                    back &= bn_packed_get((uint32_t)type, p, k, r, c) == t2_at(t2, k, r, c);
                }
            CHECK(cx, bn_unpack_t2((uint32_t)type, p, rows, k, t2b) == 0);
            back &= !memcmp(t2, t2b, rows * ((k + 3) / 4) + 4);
            beta_ok &= !memcmp(p + sz - 4, t2 + rows * ((k + 3) / 4), 4);
            /* size: header, G groups a row, tl2 sign words ⌈rows/16⌉ a triple, β */
            size_t Kt = type == BN_TL2 ? k / 6 * 6 : 0;
            size_t G = type == BN_TL2 ? Kt / 6 + (k - Kt + 3) / 4 : (k + 3) / 4;
            size &= sz == 32 + rows * G + (Kt / 3) * ((rows + 15) / 16) * 2 + 4;
            free(t2);
            free(p);
            free(p2);
            free(t2b);
        }
    CHECK(cx, spec);
    CHECK(cx, back);
    CHECK(cx, size);
    CHECK(cx, beta_ok);
    /* 2B4T's largest matrix: 2 bits (plus header) and 1.67 bits per weight */
    CHECK(cx, bn_packed_size(BN_TL1, 6912, 2560) == 32 + 6912 * 640 + 4);
    CHECK(cx, bn_packed_size(BN_TL2, 6912, 2560) == 3687588);
    /* tiles the layouts refuse */
    bn_tl_geom g;
    const char *why;
    CHECK(cx, bn_tl_geom_make(BN_TL1, 48, 128, 64, 64, &g, &why) != 0);
    CHECK(cx, bn_tl_geom_make(BN_TL1, 64, 130, 64, 64, &g, &why) != 0);
    CHECK(cx, bn_tl_geom_make(BN_TL1, 64, 256, 64, 64, &g, &why) != 0);
    CHECK(cx, bn_tl_geom_make(BN_TL2, 64, 128, 64, 64, &g, &why) != 0);
    CHECK(cx, bn_tl_geom_make(BN_TL2, 64, 252, 64, 64, &g, &why) == 0);
    uint32_t bm, bk;
    CHECK(cx, bn_tl_parse_tile("64x192", &bm, &bk) == 0 && bm == 64 && bk == 192);
    CHECK(cx, bn_tl_parse_tile("64", &bm, &bk) != 0 && bn_tl_parse_tile("64x", &bm, &bk) != 0);
    CHECK(cx, bn_tl_parse_tile("x64", &bm, &bk) != 0 && bn_tl_parse_tile("64x64y", &bm, &bk) != 0);
}

/* One case: ref vs set on raw activations q (natural order, as every tl
 * set quantizes), gemm over n tokens and gemv, rows [r0, r1). */
static int one_case(const bn_kernels *ref, const bn_kernels *set, uint32_t type, size_t rows, size_t k, size_t n,
                    uint32_t bm, uint32_t bk, int wmode, int qmode)
{
    size_t ldq = k + rnd() % 5, ldy = rows + rnd() % 3;
    uint8_t *t2 = make_t2(rows, k, wmode);
    uint64_t sz = bn_packed_size(type, rows, k);
    uint8_t *wbuf = malloc(sz + 1), *w = wbuf + 1; /* exact size, odd address */
    int ok = bn_tl_pack(type, bm, bk, t2, rows, k, w) == 0;
    int8_t *q = malloc(n * ldq);
    float s[BN_KERN_MAX_N];
    for (size_t i = 0; i < n * ldq; i++)
        q[i] = (int8_t)(qmode == 1 ? -128 : qmode == 2 ? 127 : qmode == 3 ? ((i & 1) ? 127 : -128) : (int)(rnd() % 256) - 128);
    for (size_t t = 0; t < n; t++)
        s[t] = 1.0f + (float)t;
    size_t r0 = 0, r1 = rows;
    if (rnd() % 2) { /* a thread's share, as forward.c splits */
        size_t nth = 1 + rnd() % 7, ith = rnd() % nth;
        r0 = rows * ith / nth;
        r1 = rows * (ith + 1) / nth;
    }
    float *yr = malloc(n * ldy * sizeof *yr), *ys = malloc(n * ldy * sizeof *ys);
    for (size_t i = 0; i < n * ldy; i++)
        yr[i] = ys[i] = -777.0f;
    ref->gemm(w, k, r0, r1, 0.5f, q, s, n, ldq, yr, ldy);
    set->gemm(w, k, r0, r1, 0.5f, q, s, n, ldq, ys, ldy);
    ok &= !memcmp(yr, ys, n * ldy * sizeof *yr);
    for (size_t i = 0; i < n * ldy; i++)
        yr[i] = ys[i] = -777.0f;
    ref->gemv(w, k, r0, r1, 1.5f, q, s[0], yr);
    set->gemv(w, k, r0, r1, 1.5f, q, s[0], ys);
    ok &= !memcmp(yr, ys, ldy * sizeof *yr);
    /* against a plain t2 sum, so the reference is checked too */
    for (size_t r = r0; r < r1; r++) {
        int32_t a = 0;
        for (size_t c = 0; c < k; c++)
            a += t2_at(t2, k, r, c) * q[c];
        ok &= yr[r] == bn_kern_out(a, s[0], 1.5f);
    }
    if (!ok)
        fprintf(stderr, "  mismatch: set %s type %u rows %zu k %zu n %zu tile %ux%u r %zu..%zu w%d q%d\n", set->name,
                type, rows, k, n, bm, bk, r0, r1, wmode, qmode);
    free(t2);
    free(wbuf);
    free(q);
    free(yr);
    free(ys);
    return ok;
}

static void test_sets(check_ctx *cx, const bn_cpu *cpu)
{
    static const size_t ks[] = {1, 2, 3, 5, 6, 7, 13, 64, 100, 127, 128, 129, 191, 192, 193, 255, 256, 257, 320,
                                511, 640, 704, 1000, 2560};
    static const size_t rowss[] = {1, 2, 31, 32, 33, 63, 64, 65, 96, 100, 128, 130, 200};
    static const size_t ns[] = {1, 2, 3, 5, 8, 17};
    const char *const *names = bn_kernels_names();
    for (uint32_t type = BN_TL1; type <= BN_TL2; type++) {
        const bn_kernels *ref = bn_kernels_pick("ref", type, cpu);
        CHECK(cx, ref != NULL);
        int ref_ok = 1;
        for (size_t ni = 0; names[ni]; ni++) {
            const bn_kernels *set = bn_kernels_pick(names[ni], type, cpu);
            if (!set)
                continue;
            int ok = 1, cases = 0;
            uint32_t step = type == BN_TL2 ? 6 : 4;
            for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++)
                for (int rep = 0; rep < 4; rep++) {
                    size_t rows = rowss[rnd() % (sizeof rowss / sizeof rowss[0])], n = ns[rnd() % (sizeof ns / sizeof ns[0])];
                    uint32_t bm = rep == 0 ? 64 : 32 * (1 + rnd() % 4);
                    uint32_t bk = rep == 0 ? (type == BN_TL2 ? 192 : 128) : step * (1 + rnd() % (252 / step));
                    ok &= one_case(ref, set, type, rows, ks[ki], n, bm, bk, rep == 3 ? (int)(rnd() % 4) : 0, 0);
                    cases++;
                }
            /* int16 worst cases: every weight ±1, every activation at
             * −128 or 127, the widest tile, long rows */
            for (int wm = 1; wm <= 2; wm++)
                for (int qm = 1; qm <= 3; qm++) {
                    ok &= one_case(ref, set, type, 70, 8192 + 7 * (size_t)wm, 3, 32, step * (252 / step), wm, qm);
                    cases++;
                }
            printf("  %-8s %-4s %d cases %s\n", names[ni], bn_packed_name(type), cases,
                   ok ? "bit-exact" : "MISMATCH");
            CHECK(cx, ok);
            if (!strcmp(names[ni], "ref"))
                ref_ok = ok;
        }
        CHECK(cx, ref_ok);
    }
}

/* A header that does not match gives NaN, never a read out of bounds. */
static void test_bad_header(check_ctx *cx, const bn_cpu *cpu)
{
    uint8_t *t2 = make_t2(40, 30, 0);
    uint64_t sz = bn_packed_size(BN_TL2, 40, 30);
    uint8_t *w = malloc(sz);
    bn_tl_pack(BN_TL2, 32, 24, t2, 40, 30, w);
    int8_t q[32] = {1};
    float y[40];
    const bn_kernels *k = bn_kernels_pick("auto", BN_TL2, cpu);
    k->gemv(w, 31, 0, 40, 1.0f, q, 1.0f, y); /* k disagrees */
    CHECK(cx, isnan(y[0]) && isnan(y[39]));
    uint64_t rows = 20;
    memcpy(w + 8, &rows, 8); /* fewer rows than asked for */
    k->gemv(w, 30, 0, 40, 1.0f, q, 1.0f, y);
    CHECK(cx, isnan(y[0]));
    CHECK(cx, bn_packed_check(BN_TL2, w, 40, 30) != 0 && bn_packed_check(BN_TL2, w, 20, 30) == 0);
    CHECK(cx, bn_packed_check(BN_B3, w, 40, 30) == 0);
    uint8_t t2b[8 * 40 + 4];
    CHECK(cx, bn_unpack_t2(BN_TL2, w, 40, 30, t2b) != 0);
    free(t2);
    free(w);
}

int main(void)
{
    check_ctx cx = {0};
    bn_cpu cpu;
    bn_cpu_detect(&cpu);
    test_layout(&cx);
    test_sets(&cx, &cpu);
    test_bad_header(&cx, &cpu);
    return check_done(&cx, "test_kernels_tl");
}
