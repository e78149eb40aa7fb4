/* test_ilv.c — the in-memory interleaved order (kern_ilv.h): the packing
 * against its definition, and every interleaved kernel bit-identical to
 * the scalar reference (ternary GEMV/GEMM) or to the row-major SIMD
 * function (heads) on random shapes with ragged edges: rows not a
 * multiple of 4, K not a multiple of the block, thread splits at
 * multiples of 4. */
#include "check.h"
#include "cpu.h"
#include "head_encode.h"
#include "kern_2bit.h" /* bn_kernels_pick */
#include "kern_head.h"
#include "kern_ilv.h"
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

static float frnd(void)
{
    return ((float)(rnd() % 2000001) - 1000000.0f) / 1000000.0f;
}

static void test_pack(check_ctx *cx)
{
    static const size_t units[] = {64, 104};
    int ok = 1;
    for (size_t ui = 0; ui < 2; ui++)
        for (size_t rows = 1; rows <= 13; rows++) {
            size_t unit = units[ui], nu = 1 + rnd() % 5, rb = nu * unit;
            uint8_t *src = malloc(rows * rb), *dst = malloc(rows * rb);
            for (size_t i = 0; i < rows * rb; i++)
                src[i] = (uint8_t)rnd();
            bn_ilv_pack(src, rows, rb, unit, dst);
            for (size_t r = 0; r < rows; r++)
                for (size_t c = 0; c < rb; c++) {
                    size_t g = r / 4, i = r % 4, u = c / unit, off;
                    if (g < rows / 4)
                        off = g * 4 * rb + (4 * u + i) * unit + c % unit; /* the definition in kern_ilv.h */
                    else
                        off = r * rb + c;
                    ok &= dst[off] == src[r * rb + c];
                }
            free(src);
            free(dst);
        }
    CHECK(cx, ok);
}

/* Random ternary rows × k in a layout (through t2 and bn_pack_t2). */
static uint8_t *make_packed(uint32_t layout, size_t rows, size_t k, int mode, uint64_t *size)
{
    size_t rb2 = (k + 3) / 4;
    uint8_t *t2 = calloc(rows * rb2 + 4, 1);
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < k; c++) {
            int v = mode == 1 ? 1 : mode == 2 ? -1 : (int)(rnd() % 3) - 1;
            t2[r * rb2 + c / 4] |= (uint8_t)((unsigned)(v + 1) << (2 * (c % 4)));
        }
    float beta = 0.25f + (float)(rnd() % 64) / 32.0f;
    memcpy(t2 + rows * rb2, &beta, 4);
    *size = bn_packed_size(layout, rows, k);
    uint8_t *p = malloc(*size);
    bn_pack_t2(layout, t2, rows, k, p);
    free(t2);
    return p;
}

/* One shape: ref on the row-major matrix against the interleaved twin on
 * the packed copy, every thread split of nth threads at multiples of 4. */
static int one_case(const bn_kernels *ref, const bn_kernels *set, const bn_ilv_kernels *ik, size_t rows, size_t k,
                    size_t n, int mode)
{
    uint64_t size;
    uint8_t *w = make_packed(set->layout, rows, k, mode, &size);
    uint64_t rb = bn_packed_row_bytes(set->layout, k);
    uint8_t *wi = malloc(size);
    bn_ilv_pack(w, rows, rb, BN_ILV_UNIT, wi);
    size_t ldq = k + rnd() % 4, ldy = rows + rnd() % 3;
    float *x = malloc(n * ldq * sizeof *x), sr[BN_KERN_MAX_N], ss[BN_KERN_MAX_N];
    int8_t *qr = malloc(n * ldq), *qs = malloc(n * ldq);
    for (size_t i = 0; i < n * ldq; i++)
        x[i] = mode ? 1.0f : frnd() * (float)(1 + rnd() % 50);
    for (size_t t = 0; t < n; t++) {
        sr[t] = ref->quantize(x + t * ldq, k, qr + t * ldq);
        ss[t] = set->quantize(x + t * ldq, k, qs + t * ldq);
    }
    float *yr = malloc(n * ldy * sizeof *yr), *ys = malloc(n * ldy * sizeof *ys);
    int ok = 1;
    for (int nth = 1; nth <= 3; nth++) {
        for (size_t i = 0; i < n * ldy; i++)
            yr[i] = ys[i] = -777.0f;
        ref->gemm(w, k, 0, rows, 0.5f, qr, sr, n, ldq, yr, ldy);
        ref->gemv(w, k, 0, rows, 0.5f, qr, sr[0], yr + (n - 1) * ldy); /* the last row of y: gemv */
        size_t groups = (rows + 3) / 4;
        for (int ith = 0; ith < nth; ith++) {
            size_t r0 = groups * (size_t)ith / (size_t)nth * 4, r1 = groups * (size_t)(ith + 1) / (size_t)nth * 4;
            r0 = r0 > rows ? rows : r0;
            r1 = r1 > rows ? rows : r1;
            if (r0 == r1)
                continue;
            ik->gemm(wi, k, r0, r1, 0.5f, qs, ss, n, ldq, ys, ldy);
            ik->gemv(wi, k, r0, r1, 0.5f, qs, ss[0], ys + (n - 1) * ldy);
        }
        ok &= !memcmp(yr, ys, n * ldy * sizeof *yr);
    }
    if (!ok)
        fprintf(stderr, "  mismatch: %s layout %u rows %zu k %zu n %zu mode %d\n", set->name, set->layout, rows, k,
                n, mode);
    free(w);
    free(wi);
    free(x);
    free(qr);
    free(qs);
    free(yr);
    free(ys);
    return ok;
}

static void test_ternary(check_ctx *cx, const bn_cpu *cpu)
{
    static const uint32_t layouts[] = {BN_T2, BN_I2S}; /* b3 is never interleaved: test_no_b3 */
    static const size_t ks[] = {1, 63, 64, 256, 319, 320, 321, 512, 640, 700, 1000, 1280, 2560, 6912};
    static const size_t rowss[] = {1, 3, 4, 5, 8, 11, 16, 33, 67, 130}; /* 67, 130: GEMM row blocks (64) */
    static const size_t ns[] = {1, 2, 4, 5, 9, 17, 33, 64, 128};
    const char *const *names = bn_kernels_names();
    for (size_t li = 0; li < sizeof layouts / sizeof layouts[0]; li++)
        for (size_t ni = 0; names[ni]; ni++) {
            /* every set this CPU runs (auto is one of them) */
            if (!strcmp(names[ni], "ref") || !strcmp(names[ni], "auto"))
                continue;
            const bn_kernels *ref = bn_kernels_pick("ref", layouts[li], cpu),
                             *set = bn_kernels_pick(names[ni], layouts[li], cpu);
            if (!set)
                continue;
            int ok = 1, cases = 0;
            for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
                const bn_ilv_kernels *ik = bn_ilv_find(set, ks[ki]);
                if (!ik)
                    continue;
                for (int rep = 0; rep < 4; rep++, cases++)
                    ok &= one_case(ref, set, ik, rowss[rnd() % 10], ks[ki], ns[rnd() % 9], 0);
            }
            /* worst case for the sums: every weight ±1, activations at full scale */
            size_t kw = 8448; /* 33·256 */
            for (int mode = 1; mode <= 2 && cases; mode++, cases += 2) {
                ok &= one_case(ref, set, bn_ilv_find(set, kw), 9, kw, 3, mode);
                ok &= one_case(ref, set, bn_ilv_find(set, kw), 9, kw, 8, mode); /* whole 4 x 4 tiles */
            }
            printf("  ilv %-6s %-4s %d cases %s\n", set->name,
                   bn_type_name(layouts[li]), cases,
                   cases ? ok ? "bit-exact" : "MISMATCH" : "(no interleaved twin)");
            CHECK(cx, ok);
        }
}

/* b3 rows stay row-major in every set (bn_ilv_find says why), whatever k. */
static void test_no_b3(check_ctx *cx, const bn_cpu *cpu)
{
    const char *const *names = bn_kernels_names();
    for (size_t ni = 0; names[ni]; ni++) {
        const bn_kernels *set = bn_kernels_pick(names[ni], BN_B3, cpu);
        if (set)
            for (size_t k = 320; k <= 8320; k += 320)
                CHECK(cx, bn_ilv_find(set, k) == NULL);
    }
}

/* Heads: the interleaved function against the row-major one for the same
 * CPU, bit for bit (the same per-row arithmetic). */
static void test_heads(check_ctx *cx, const bn_cpu *cpu)
{
    static const uint32_t types[] = {BN_Q6, BN_Q5, BN_Q4};
    static const size_t ds[] = {128, 256, 2560};
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        int ok = 1, cases = 0;
        for (size_t di = 0; di < sizeof ds / sizeof ds[0]; di++) {
            size_t d = ds[di], unit = 0;
            bn_head_fn fi = bn_head_find_ilv(types[ti], d, cpu, &unit), fr = bn_head_find(types[ti], cpu);
            if (!fi)
                continue;
            size_t rows = 1 + rnd() % 23, n = 1 + rnd() % 3, rb = bn_head_row_bytes(types[ti], d);
            CHECK(cx, rb % unit == 0);
            uint8_t *w = malloc(rows * rb), *wi = malloc(rows * rb);
            float *x = malloc(d * sizeof *x), *h = malloc(n * d * sizeof *h);
            float *yr = malloc(n * rows * sizeof *yr), *ys = malloc(n * rows * sizeof *ys);
            for (size_t r = 0; r < rows; r++) {
                for (size_t c = 0; c < d; c++)
                    x[c] = frnd() * (c % 7 == 0 ? 3.0f : 0.2f);
                (types[ti] == BN_Q6   ? bn_q6_encode_row
                 : types[ti] == BN_Q5 ? bn_q5_encode_row
                                      : bn_q4_encode_row)(x, d, w + r * rb);
            }
            for (size_t i = 0; i < n * d; i++)
                h[i] = frnd();
            bn_ilv_pack(w, rows, rb, unit, wi);
            fr(w, rows, d, 0, rows, h, n, yr, rows);
            size_t mid = (rows + 3) / 8 * 4; /* two threads' split */
            fi(wi, rows, d, 0, mid, h, n, ys, rows);
            fi(wi, rows, d, mid, rows, h, n, ys, rows);
            ok &= !memcmp(yr, ys, n * rows * sizeof *yr);
            cases++;
            free(w);
            free(wi);
            free(x);
            free(h);
            free(yr);
            free(ys);
        }
        printf("  ilv head %s: %d cases %s\n", bn_type_name(types[ti]), cases,
               cases ? ok ? "bit-exact" : "MISMATCH" : "(no interleaved function)");
        CHECK(cx, ok);
    }
}

int main(void)
{
    check_ctx cx = {0};
    bn_cpu cpu;
    bn_cpu_detect(&cpu);
    test_pack(&cx);
    test_ternary(&cx, &cpu);
    test_no_b3(&cx, &cpu);
    test_heads(&cx, &cpu);
    return check_done(&cx, "test_ilv");
}
