/* test_kernels.c — every optimized kernel set against the scalar reference,
 * bit for bit, on random shapes with ragged edges; the packed layouts
 * against their specification; and the rule that selection never offers a
 * set the CPU cannot run.
 *
 * Links only the kernel files (no I/O libraries), so the same test runs on
 * AArch64 under qemu (make check-arm). */
#include "check.h"
#include "cpu.h"
#include "head_encode.h"
#include "kern_2bit.h"
#include "kern_attn.h"
#include "kern_embd.h"
#include "kern_f16row.h"
#include "kern_head.h"
#include "kernels.h"
#include "pack.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 0x9e3779b97f4a7c15ull;
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

/* A random t2 tensor; mode 0 random, 1 all +1, 2 all -1, 3 sparse. */
static uint8_t *make_t2(size_t rows, size_t k, int mode, float beta)
{
    size_t rb = (k + 3) / 4;
    uint8_t *t = malloc(rows * rb + 4);
    memset(t, 0x55, rows * rb);
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < k; c++) {
            int v = mode == 1 ? 1 : mode == 2 ? -1 : mode == 3 ? (rnd() % 8 == 0 ? (int)(rnd() % 2) * 2 - 1 : 0)
                                                                : (int)(rnd() % 3) - 1;
            uint8_t *b = &t[r * rb + c / 4];
            *b = (uint8_t)((*b & ~(3u << (2 * (c % 4)))) | ((unsigned)(v + 1) << (2 * (c % 4))));
        }
    memcpy(t + rows * rb, &beta, 4);
    return t;
}

static int t2_at(const uint8_t *t, size_t k, size_t r, size_t c)
{
    return ((t[r * ((k + 3) / 4) + c / 4] >> (2 * (c % 4))) & 3) - 1;
}

/* The I2_S byte position straight from formats.md §4.2 (K a multiple of
 * 128): byte r·K/4 + ⌊k/128⌋·32 + (k mod 32), shift 6 − 2·⌊(k mod 128)/32⌋. */
static int i2s_spec(const uint8_t *p, size_t K, size_t r, size_t k)
{
    size_t byte = r * K / 4 + k / 128 * 32 + k % 32;
    unsigned sh = 6 - 2 * (unsigned)(k % 128 / 32);
    return ((p[byte] >> sh) & 3) - 1;
}

/* b3 from formats/bn-model.md 4.1 by plain base-3 arithmetic (not the
 * kernels' fraction trick): v = ⌊q·243/256⌋, digit j = ⌊v / 3^(4-j)⌋ mod 3. */
static int b3_spec(const uint8_t *p, size_t K, size_t r, size_t c)
{
    size_t rb = (K + 319) / 320 * 64;
    unsigned q = p[r * rb + c / 320 * 64 + c % 64], v = q * 243 / 256, j = (unsigned)(c % 320 / 64);
    for (unsigned i = j; i < 4; i++)
        v /= 3;
    return (int)(v % 3) - 1;
}

static void test_b3_layout(check_ctx *cx)
{
    static const size_t ks[] = {1, 5, 64, 319, 320, 321, 640, 1000};
    int same = 1, spec = 1, back_ok = 1, size_ok = 1;
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
        size_t k = ks[i], rows = 1 + rnd() % 5;
        uint8_t *t2 = make_t2(rows, k, (int)(i % 4), 0.25f);
        uint64_t sz = bn_packed_size(BN_B3, rows, k);
        size_ok &= sz == rows * ((k + 319) / 320 * 64) + 4;
        uint8_t *p = malloc(sz), *back = malloc(rows * ((k + 3) / 4) + 4);
        bn_pack_t2(BN_B3, t2, rows, k, p);
        for (size_t r = 0; r < rows; r++)
            for (size_t c = 0; c < (k + 319) / 320 * 320; c++) {
                if (c < k) {
                    same &= bn_packed_get(BN_B3, p, k, r, c) == t2_at(t2, k, r, c);
                    spec &= b3_spec(p, k, r, c) == t2_at(t2, k, r, c);
                } else
                    spec &= b3_spec(p, k, r, c) == 0; /* padding is w = 0 */
            }
        bn_unpack_t2(BN_B3, p, rows, k, back);
        back_ok &= !memcmp(back, t2, rows * ((k + 3) / 4) + 4);
        free(t2);
        free(p);
        free(back);
    }
    CHECK(cx, same);
    CHECK(cx, spec);
    CHECK(cx, back_ok);
    CHECK(cx, size_ok);
}

static void test_layouts(check_ctx *cx)
{
    static const size_t ks[] = {1, 3, 4, 5, 127, 128, 129, 256, 300, 640};
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
        size_t k = ks[i], rows = 1 + rnd() % 7;
        uint8_t *t2 = make_t2(rows, k, 0, 0.37f);
        uint64_t sz = bn_packed_size(BN_I2S, rows, k);
        uint8_t *p = malloc(sz), *back = malloc(rows * ((k + 3) / 4) + 4);
        CHECK(cx, bn_pack_t2(BN_I2S, t2, rows, k, p) == 0);
        int same = 1, spec = 1;
        for (size_t r = 0; r < rows; r++)
            for (size_t c = 0; c < k; c++) {
                same &= bn_packed_get(BN_I2S, p, k, r, c) == t2_at(t2, k, r, c);
                if (k % 128 == 0)
                    spec &= i2s_spec(p, k, r, c) == t2_at(t2, k, r, c);
            }
        CHECK(cx, same);
        CHECK(cx, spec);
        float b0, b1;
        memcpy(&b0, p + rows * bn_packed_row_bytes(BN_I2S, k), 4);
        memcpy(&b1, p + sz - 4, 4);
        CHECK(cx, b0 == 0.37f && b1 == 0.37f);
        CHECK(cx, bn_unpack_t2(BN_I2S, p, rows, k, back) == 0);
        CHECK(cx, !memcmp(back, t2, rows * ((k + 3) / 4) + 4));
        free(t2);
        free(p);
        free(back);
    }
    CHECK(cx, bn_packed_size(BN_I2S, 6912, 2560) == 4423712); /* formats.md §4.8 */
    CHECK(cx, bn_packed_size(99, 4, 4) == 0);
}

static int same_floats(const float *a, const float *b, size_t n)
{
    return !memcmp(a, b, n * sizeof *a);
}

/* One shape: ref vs set for gemm (n tokens) and gemv, rows [r0, r1)
 * (r1 == 0: a range picked at random, the whole matrix two times in
 * three). */
static int one_range(const bn_kernels *ref, const bn_kernels *set, uint32_t layout, size_t rows, size_t k, size_t n,
                     int wmode, int xmode, size_t r0, size_t r1)
{
    size_t ldq = k + rnd() % 5, ldy = rows + rnd() % 3;
    uint8_t *t2 = make_t2(rows, k, wmode, 0.0123f + (float)(rnd() % 100) / 64.0f);
    uint64_t sz = layout == BN_T2 ? rows * ((k + 3) / 4) + 4 : bn_packed_size(layout, rows, k);
    /* exact-size buffer at an odd address: overreads and alignment
     * assumptions both show (the first under the sanitizers) */
    uint8_t *wbuf = malloc(sz + 1), *w = wbuf + 1;
    bn_pack_t2(layout, t2, rows, k, w);
    float *x = malloc(n * ldq * sizeof *x);
    for (size_t i = 0; i < n * ldq; i++)
        x[i] = xmode == 1 ? ((i & 1) ? 1.0f : -1.0f) : xmode == 2 ? 1.0f : frnd() * (float)(1 + rnd() % 50);
    int8_t *qr = malloc(n * ldq), *qs = malloc(n * ldq);
    float sr[BN_KERN_MAX_N], ss[BN_KERN_MAX_N];
    int ok = 1;
    for (size_t t = 0; t < n; t++) {
        sr[t] = ref->quantize(x + t * ldq, k, qr + t * ldq);
        ss[t] = set->quantize(x + t * ldq, k, qs + t * ldq);
        ok &= !memcmp(&sr[t], &ss[t], sizeof(float));
    }
    if (!r1) {
        r0 = rnd() % 3 == 0 ? rnd() % rows : 0;
        r1 = rnd() % 3 == 0 ? r0 + 1 + rnd() % (rows - r0) : rows;
    }
    float *yr = malloc(n * ldy * sizeof *yr), *ys = malloc(n * ldy * sizeof *ys);
    for (size_t i = 0; i < n * ldy; i++)
        yr[i] = ys[i] = -777.0f; /* rows outside [r0, r1) must stay */
    ref->gemm(w, k, r0, r1, 1.0f, qr, sr, n, ldq, yr, ldy);
    set->gemm(w, k, r0, r1, 1.0f, qs, ss, n, ldq, ys, ldy);
    ok &= same_floats(yr, ys, n * ldy);
    for (size_t i = 0; i < n * ldy; i++)
        yr[i] = ys[i] = -777.0f;
    ref->gemv(w, k, r0, r1, 0.5f, qr, sr[0], yr);
    set->gemv(w, k, r0, r1, 0.5f, qs, ss[0], ys);
    ok &= same_floats(yr, ys, ldy);
    /* the float path only has to agree to rounding */
    set->gemm_f32(w, k, r0, r1, 1.0f, x, n, ldq, ys, ldy);
    ref->gemm_f32(w, k, r0, r1, 1.0f, x, n, ldq, yr, ldy);
    for (size_t t = 0; t < n; t++)
        for (size_t r = r0; r < r1; r++)
            ok &= fabsf(yr[t * ldy + r] - ys[t * ldy + r]) <= 1e-3f * (1 + fabsf(yr[t * ldy + r]));
    if (!ok)
        fprintf(stderr, "  mismatch: set %s layout %u rows %zu k %zu n %zu r0 %zu r1 %zu wmode %d xmode %d\n",
                set->name, layout, rows, k, n, r0, r1, wmode, xmode);
    free(t2);
    free(wbuf);
    free(x);
    free(qr);
    free(qs);
    free(yr);
    free(ys);
    return ok;
}

static int one_case(const bn_kernels *ref, const bn_kernels *set, uint32_t layout, size_t rows, size_t k, size_t n,
                    int wmode, int xmode)
{
    return one_range(ref, set, layout, rows, k, n, wmode, xmode, 0, 0);
}

/* Ranges of 64 KiB and more, which the avx512 and avx2 GEMVs and the avx512 GEMM of up to
 * 16 tokens read 4 rows at a time from their quarters (else 4 adjacent
 * rows): at the threshold and just under it, ranges not starting at row
 * 0, quarters ≡ 0 and 2 mod 4 (rows sharing their tail's decoding slots),
 * widths with tail units and natural-order columns, a quarter of one row
 * (adjacent rows) and of none (every row alone), and 17 tokens (adjacent
 * rows again); then the overflow worst case on the quarters. */
static int streamed_ranges(const bn_kernels *ref, const bn_kernels *set, uint32_t L, int *cases)
{
    static const struct {
        size_t rows, k, r0, r1;
    } rs[] = {{130, 2560, 0, 130}, {103, 2560, 0, 103}, {102, 2560, 0, 102}, {140, 2560, 5, 134},
              {131, 2757, 0, 131}, {131, 2757, 2, 97},  {101, 2600, 0, 101}, {100, 2688, 0, 100},
              {7, 65541, 0, 5},    {7, 65541, 0, 7},    {9, 32768, 0, 9},    {3, 131072, 0, 3}};
    static const size_t ns[] = {1, 2, 3, 4, 5, 8, 13, 16, 17};
    int ok = 1;
    for (size_t i = 0; i < sizeof rs / sizeof rs[0]; i++)
        for (size_t j = 0; j < sizeof ns / sizeof ns[0]; j++, (*cases)++)
            ok &= one_range(ref, set, L, rs[i].rows, rs[i].k, ns[j], j % 3 == 2 ? 3 : 0, j % 4 == 3, rs[i].r0,
                            rs[i].r1);
    for (int wm = 1; wm <= 2; wm++)
        for (int xm = 1; xm <= 2; xm++, *cases += 2) {
            ok &= one_range(ref, set, L, 33, 8448, 3, wm, xm, 0, 33);
            ok &= one_range(ref, set, L, 33, 8448, 8, wm, xm, 0, 33);
        }
    return ok;
}

static void test_sets(check_ctx *cx, const bn_cpu *cpu)
{
    static const uint32_t layouts[] = {BN_T2, BN_I2S, BN_B3};
    static const size_t ks[] = {1, 2, 5, 31, 64, 100, 127, 128, 129, 192, 255, 256, 257, 319, 320, 321, 384, 511, 512,
                                513, 640, 704, 961, 1000, 1024, 1100, 2560};
    static const size_t rowss[] = {1, 2, 3, 4, 5, 7, 8, 9, 16, 33};
    static const size_t ns[] = {1, 2, 3, 4, 5, 7, 8, 9, 17, 64, 100, 128};
    const char *const *names = bn_kernels_names();
    for (size_t li = 0; li < sizeof layouts / sizeof layouts[0]; li++) {
        uint32_t L = layouts[li];
        const bn_kernels *ref = bn_kernels_pick("ref", L, cpu);
        CHECK(cx, ref != NULL);
        for (size_t ni = 0; names[ni]; ni++) {
            const bn_kernels *set = bn_kernels_pick(names[ni], L, cpu);
            if (!set || !strcmp(names[ni], "ref"))
                continue;
            int ok = 1, cases = 0;
            for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++)
                for (int rep = 0; rep < 4; rep++) {
                    size_t rows = rowss[rnd() % (sizeof rowss / sizeof rowss[0])];
                    size_t n = ns[rnd() % (sizeof ns / sizeof ns[0])];
                    ok &= one_case(ref, set, L, rows, ks[ki], n, rep == 3 ? (int)(rnd() % 4) : 0, rep == 2);
                    cases++;
                }
            /* worst cases for intermediate overflow: every weight ±1 and
             * every activation at full scale, long rows */
            for (int wm = 1; wm <= 2; wm++)
                for (int xm = 1; xm <= 2; xm++) {
                    ok &= one_case(ref, set, L, 5, 8192 + 128 * (size_t)wm, 6, wm, xm);
                    cases++;
                }
            /* batched decode's passes: 8 and 32 tokens (whole 4 x 4 tiles
             * of the avx512 GEMM), widths with and without a tail */
            static const size_t kt[] = {704, 2560}, nt[] = {8, 32};
            for (size_t i = 0; i < 4; i++, cases++)
                ok &= one_case(ref, set, L, 9, kt[i % 2], nt[i / 2], 0, 0);
            /* b3 rows as long as the avx512 GEMV's 1024-block chunk and
             * longer, the padded block in the first call or the second;
             * the last one's sums overflow int32 if taken in one chunk
             * (three tries: one_case may pick rows short of a group of 4) */
            static const size_t klong[] = {1024 * 320 + 1, 1025 * 320 + 5, 1700 * 320 + 3};
            for (size_t i = 0; L == BN_B3 && i < 3 * sizeof klong / sizeof klong[0]; i++, cases++)
                ok &= one_case(ref, set, L, 5, klong[i / 3], 1, i / 3 == 1 ? 2 : 1, 2);
            ok &= streamed_ranges(ref, set, L, &cases);
            printf("  %-8s %-4s %d cases %s\n", strcmp(names[ni], "auto") ? names[ni] : "auto", bn_type_name(L),
                   cases, ok ? "bit-exact" : "MISMATCH");
            CHECK(cx, ok);
        }
    }
}

static void test_dispatch(check_ctx *cx, const bn_cpu *cpu)
{
    char buf[256];
    printf("  cpu: %s\n", bn_cpu_describe(cpu, buf, sizeof buf));
    /* never an ISA the CPU lacks, whatever is asked for */
    bn_cpu none;
    memset(&none, 0, sizeof none);
    CHECK(cx, bn_kernels_pick("avx512", BN_T2, &none) == NULL);
    CHECK(cx, bn_kernels_pick("avx2", BN_T2, &none) == NULL);
    CHECK(cx, bn_kernels_pick("neon", BN_T2, &none) == NULL);
    CHECK(cx, !strcmp(bn_kernels_pick("auto", BN_T2, &none)->name, "ref"));
    CHECK(cx, !strcmp(bn_kernels_pick("auto", BN_I2S, &none)->name, "ref"));
    CHECK(cx, bn_kernels_pick("auto", 99, &none) == NULL);
    CHECK(cx, (bn_kernels_pick("avx512", BN_T2, cpu) != NULL) == (cpu->avx512vnni && cpu->avx512bw));
    CHECK(cx, (bn_kernels_pick("avx2", BN_T2, cpu) != NULL) == cpu->avx2);
    CHECK(cx, (bn_kernels_pick("dotprod", BN_T2, cpu) != NULL) == cpu->dotprod);
    CHECK(cx, bn_kernels_find("auto", BN_T2) != NULL);
    const bn_kernels *a = bn_kernels_find("auto", BN_T2);
    printf("  auto: %s\n", a->name);
#if defined(__x86_64__)
    /* AVX-512 without the OS saving zmm state must not count */
    CHECK(cx, !cpu->avx512f || cpu->avx2);
#endif
}

/* ------------------------------------------------------------ --bench
 * Not a test: times the sets on BitNet b1.58 2B4T's projection shapes.
 * Decode (GEMV) streams all 30 layers' weights (521 MB at 2 bits, far
 * beyond the caches) once per "token", as the forward pass does, and
 * reports weight GB/s; prefill (GEMM, 64 tokens) reports integer GOPS
 * (2 ops per weight per token). Threads split rows, like forward.c. */
#include <pthread.h>
#include <time.h>

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
static double now(void)
{
    return clock_s(CLOCK_MONOTONIC);
}
/* CPU time of the calling thread: on a machine shared with other work,
 * wall time includes time the thread was not running at all. */
static double cpu_now(void)
{
    return clock_s(CLOCK_THREAD_CPUTIME_ID);
}

typedef struct bench_mat {
    uint8_t *w;
    size_t rows, k;
} bench_mat;

typedef struct bench_job {
    const bn_kernels *set;
    bench_mat *mats;
    size_t n_mats, n;
    const int8_t *q;
    const float *s;
    float *y;
    int ith, nth, reps;
    pthread_barrier_t *bar;
} bench_job;

static void *bench_thread(void *v)
{
    bench_job *j = v;
    for (int rep = 0; rep < j->reps; rep++) {
        for (size_t m = 0; m < j->n_mats; m++) {
            bench_mat *M = &j->mats[m];
            size_t r0 = M->rows * (size_t)j->ith / (size_t)j->nth, r1 = M->rows * (size_t)(j->ith + 1) / (size_t)j->nth;
            if (j->n == 1)
                j->set->gemv(M->w, M->k, r0, r1, 1.0f, j->q, j->s[0], j->y);
            else
                j->set->gemm(M->w, M->k, r0, r1, 1.0f, j->q, j->s, j->n, 6912, j->y, 6912);
            pthread_barrier_wait(j->bar); /* the forward pass syncs after each projection */
        }
    }
    return NULL;
}

static double bench_run(const bn_kernels *set, bench_mat *mats, size_t n_mats, size_t n, int nth, int reps,
                        double *cpu)
{
    int8_t *q = malloc(64 * 6912);
    float s[64], *y = malloc(64 * 6912 * sizeof *y * 2);
    float *x = malloc(6912 * sizeof *x);
    for (size_t i = 0; i < 6912; i++)
        x[i] = frnd();
    for (size_t t = 0; t < 64; t++)
        s[t] = set->quantize(x, 6912, q + t * 6912); /* the order differs per width; timing does not care */
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, (unsigned)nth);
    bench_job jobs[8];
    pthread_t th[8];
    double t0 = now(), c0 = cpu_now();
    for (int i = 0; i < nth; i++) {
        jobs[i] = (bench_job){set, mats, n_mats, n, q, s, y, i, nth, reps, &bar};
        if (i)
            pthread_create(&th[i], NULL, bench_thread, &jobs[i]);
    }
    bench_thread(&jobs[0]);
    for (int i = 1; i < nth; i++)
        pthread_join(th[i], NULL);
    double dt = now() - t0;
    if (cpu)
        *cpu = (cpu_now() - c0) / reps;
    pthread_barrier_destroy(&bar);
    free(q);
    free(y);
    free(x);
    return dt / reps;
}

static int bench(const char *only)
{
    /* per layer: q, k, v, o, gate, up, down as [rows, k] */
    static const size_t shapes[7][2] = {{2560, 2560}, {640, 2560}, {640, 2560}, {2560, 2560},
                                        {6912, 2560}, {6912, 2560}, {2560, 6912}};
    enum { LAYERS = 30 };
    bn_cpu cpu;
    bn_cpu_detect(&cpu);
    const char *names[] = {"ref", "avx2", "avx512", "neon", "dotprod"};
    uint32_t layouts[] = {BN_T2, BN_I2S, BN_B3};
    for (size_t li = 0; li < sizeof layouts / sizeof layouts[0]; li++) {
        bench_mat *mats = calloc(LAYERS * 7, sizeof *mats);
        double bytes = 0, ops1 = 0;
        for (size_t i = 0; i < LAYERS * 7; i++) {
            size_t rows = shapes[i % 7][0], k = shapes[i % 7][1];
            uint8_t *t2 = make_t2(rows, k, 0, 1.0f);
            size_t sz = bn_packed_size(layouts[li], rows, k);
            mats[i] = (bench_mat){malloc(sz), rows, k};
            bn_pack_t2(layouts[li], t2, rows, k, mats[i].w);
            free(t2);
            bytes += (double)sz;
            ops1 += 2.0 * (double)rows * (double)k;
        }
        for (size_t ni = 0; ni < sizeof names / sizeof names[0]; ni++) {
            if (only && strcmp(only, names[ni]))
                continue;
            const bn_kernels *set = bn_kernels_pick(names[ni], layouts[li], &cpu);
            if (!set)
                continue;
            for (int nth = 1; nth <= 2; nth++) {
                int reps = strcmp(names[ni], "ref") ? 5 : 1;
                double cv, cm;
                bench_run(set, mats, LAYERS * 7, 1, nth, 1, NULL); /* warm up */
                double tv = bench_run(set, mats, LAYERS * 7, 1, nth, reps, &cv);
                /* prefill: one layer's 7 matrices (weights partly cached, as
                 * in a real 64-token batch), 64 tokens */
                double tm = bench_run(set, mats, 7, 64, nth, strcmp(names[ni], "ref") ? 10 : 1, &cm);
                printf("%-4s %-8s %dt  decode %7.2f ms/token  %6.2f GB/s  %6.1f GOPS (thread-0 cpu %6.2f GB/s) | "
                       "prefill n=64 %7.1f GOPS = %6.1f tok/s (thread-0 cpu %6.1f GOPS)\n",
                       bn_type_name(layouts[li]), names[ni], nth, 1e3 * tv, bytes / tv / 1e9, ops1 / tv / 1e9,
                       bytes / cv / 1e9 / nth, ops1 / LAYERS * 64 / tm / 1e9, 64 / (tm * LAYERS),
                       ops1 / LAYERS * 64 / cm / 1e9 / nth);
                fflush(stdout);
            }
        }
        for (size_t i = 0; i < LAYERS * 7; i++)
            free(mats[i].w);
        free(mats);
    }
    /* the 2B4T head (tied embeddings, 128256 × 2560) in every head type */
    size_t V = 128256, d = 2560;
    static const uint32_t htypes[] = {BN_BF16, BN_I8, BN_Q6};
    float h[2560], *y = malloc(V * sizeof *y), *row = malloc(d * sizeof *row);
    for (size_t i = 0; i < d; i++)
        h[i] = frnd();
    for (size_t hi = 0; hi < 3; hi++) {
        uint32_t ht = htypes[hi];
        uint64_t shape[2] = {V, d}, bytes = bn_type_size(ht, 2, shape);
        uint8_t *hw = malloc(bytes);
        for (size_t r = 0; r < V; r++) {
            for (size_t c = 0; c < d; c++)
                row[c] = frnd();
            if (ht == BN_BF16)
                for (size_t c = 0; c < d; c++) {
                    uint16_t b = bn_f32_to_bf16(row[c]);
                    memcpy(hw + 2 * (r * d + c), &b, 2);
                }
            else if (ht == BN_I8) {
                float sc = bn_i8_encode_row(row, d, (int8_t *)hw + r * d);
                memcpy(hw + V * d + 4 * r, &sc, 4);
            } else
                bn_q6_encode_row(row, d, hw + r * (d / 128 * 104));
        }
        bn_head_fn f = bn_head_find(ht, &cpu);
        f(hw, V, d, 0, V, h, 1, y, V);
        double t0 = now(), c0 = cpu_now();
        for (int rep = 0; rep < 3; rep++)
            f(hw, V, d, 0, V, h, 1, y, V);
        double dt = (now() - t0) / 3, dc = (cpu_now() - c0) / 3;
        printf("head %-4s %zux%zu 1t  %7.2f ms/token  %6.2f GB/s (thread cpu %6.2f GB/s)\n", bn_type_name(ht), V, d,
               1e3 * dt, (double)bytes / dt / 1e9, (double)bytes / dc / 1e9);
        free(hw);
    }
    free(row);
    free(y);
    return 0;
}

/* The float head: the chosen implementation against a double-precision
 * sum, to rounding (it is a float computation, not an integer one). */
static void test_head(check_ctx *cx, const bn_cpu *cpu)
{
    static const uint32_t types[] = {BN_F32, BN_F16, BN_BF16};
    static const size_t ds[] = {1, 7, 16, 17, 100, 256, 1000};
    for (size_t ti = 0; ti < 3; ti++) {
        bn_head_fn f = bn_head_find(types[ti], cpu);
        CHECK(cx, f != NULL);
        int ok = 1;
        for (size_t di = 0; di < sizeof ds / sizeof ds[0]; di++) {
            size_t d = ds[di], rows = 1 + rnd() % 11, n = 1 + rnd() % 3, es = types[ti] == BN_F32 ? 4 : 2;
            uint8_t *w = malloc(rows * d * es);
            float *wf = malloc(rows * d * sizeof *wf), *h = malloc(n * d * sizeof *h), *y = malloc(n * rows * sizeof *y);
            for (size_t i = 0; i < rows * d; i++) {
                float v = frnd();
                if (types[ti] == BN_F32)
                    memcpy(w + 4 * i, &v, 4);
                else {
                    uint16_t b = types[ti] == BN_F16 ? bn_f32_to_f16(v) : bn_f32_to_bf16(v);
                    memcpy(w + 2 * i, &b, 2);
                }
                bn_to_f32(types[ti], w + es * i, &wf[i], 1);
            }
            for (size_t i = 0; i < n * d; i++)
                h[i] = frnd();
            size_t r0 = rows > 1 ? rnd() % 2 : 0;
            f(w, rows, d, r0, rows, h, n, y, rows);
            for (size_t t = 0; t < n; t++)
                for (size_t r = r0; r < rows; r++) {
                    double ex = 0, mag = 0;
                    for (size_t c = 0; c < d; c++) {
                        ex += (double)wf[r * d + c] * h[t * d + c];
                        mag += fabs((double)wf[r * d + c] * h[t * d + c]);
                    }
                    ok &= fabs(y[t * rows + r] - ex) <= 1e-5 * mag + 1e-6;
                }
            free(w);
            free(wf);
            free(h);
            free(y);
        }
        CHECK(cx, ok);
    }
}

/* q6 from the specification (formats/bn-model.md 4.1), independently of
 * head_layout.h: u of element i of the 104-byte group g. */
static int q6_spec_u(const uint8_t *g, size_t i)
{
    size_t b = i / 32, e = i % 32, j = e % 16;
    int lo = e < 16 ? g[16 * b + j] & 15 : g[16 * b + j] >> 4;
    int sh = (b >= 2 ? 4 : 0) + (e >= 16 ? 2 : 0);
    int hi = (g[64 + 16 * (b % 2) + j] >> sh) & 3;
    return lo | hi << 4;
}

/* The quantized heads: encoders (round trip within half a step), the
 * embedding row decoder, and every head function against a double sum of
 * the specified formula. */
static void test_qhead(check_ctx *cx, const bn_cpu *cpu)
{
    static const size_t ds[] = {128, 256, 640, 2560};
    int ok_enc = 1, ok_row = 1, ok_i8 = 1, ok_q6 = 1;
    for (size_t di = 0; di < sizeof ds / sizeof ds[0]; di++) {
        size_t d = ds[di], rows = 1 + rnd() % 9, n = 1 + rnd() % 3, G = d / 128;
        float *x = malloc(rows * d * sizeof *x), *h = malloc(n * d * sizeof *h), *y = malloc(n * rows * sizeof *y);
        float *row = malloc(d * sizeof *row);
        uint8_t *q6 = malloc(rows * G * 104), *i8 = malloc(rows * d + 4 * rows);
        for (size_t i = 0; i < rows * d; i++)
            x[i] = frnd() * (i % 97 == 0 ? 8.0f : 1.0f); /* some outliers */
        for (size_t i = 0; i < n * d; i++)
            h[i] = frnd() * (i % 50 == 0 ? 10.0f : 1.0f);
        if (di == 0)
            memset(x, 0, 32 * sizeof *x); /* an all-zero block */
        for (size_t r = 0; r < rows; r++) {
            bn_q6_encode_row(x + r * d, d, q6 + r * G * 104);
            float sc = bn_i8_encode_row(x + r * d, d, (int8_t *)i8 + r * d);
            memcpy(i8 + rows * d + 4 * r, &sc, 4);
        }
        for (size_t r = 0; r < rows; r++) {
            bn_head_row(BN_Q6, q6, rows, d, r, row);
            for (size_t c = 0; c < d; c++) {
                const uint8_t *g = q6 + r * G * 104 + c / 128 * 104;
                uint16_t dh;
                memcpy(&dh, g + 96 + 2 * (c % 128 / 32), 2);
                float dd = bn_f16_to_f32(dh), want = dd * (float)(q6_spec_u(g, c % 128) - 32);
                ok_row &= row[c] == want;
                /* clamping costs at most a step of the exact scale amax/32;
                 * the stored f16 scale is within 2^-11 of it, so x/dd is
                 * within 32·(1 + 2^-11) and the error within 1 + 32·2^-11
                 * steps of dd (a clamped extreme measured 1.0045) */
                ok_enc &= fabsf(want - x[r * d + c]) <= fabsf(dd) * (1.0f + 32.0f / 2048.0f) + 1e-7f;
            }
            bn_head_row(BN_I8, i8, rows, d, r, row);
            float sc;
            memcpy(&sc, i8 + rows * d + 4 * r, 4);
            for (size_t c = 0; c < d; c++)
                ok_enc &= fabsf(row[c] - x[r * d + c]) <= 0.5f * sc * 1.001f;
        }
        for (int which = 0; which < 2; which++) {
            bn_head_fn f = bn_head_find(which ? BN_Q6 : BN_I8, cpu);
            size_t r0 = rows > 1 ? rnd() % 2 : 0;
            f(which ? (const void *)q6 : i8, rows, d, r0, rows, h, n, y, rows);
            for (size_t t = 0; t < n; t++) {
                /* q6: h in blocks of 32, dh = absmax/127, qh = rint(h/dh) */
                double *hq = malloc(d * sizeof *hq);
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
                    bn_head_row(which ? BN_Q6 : BN_I8, which ? (const void *)q6 : i8, rows, d, r, row);
                    for (size_t c = 0; c < d; c++) {
                        double hv = which ? hq[c] : h[t * d + c];
                        ex += (double)row[c] * hv;
                        mag += fabs((double)row[c] * hv);
                    }
                    int good = fabs(y[t * rows + r] - ex) <= 1e-5 * mag + 1e-6;
                    if (which)
                        ok_q6 &= good;
                    else
                        ok_i8 &= good;
                }
                free(hq);
            }
        }
        free(x);
        free(h);
        free(y);
        free(row);
        free(q6);
        free(i8);
    }
    CHECK(cx, ok_enc);
    CHECK(cx, ok_row);
    CHECK(cx, ok_i8);
    CHECK(cx, ok_q6);
    const char *why;
    CHECK(cx, bn_head_type_ok(BN_Q6, 2560, &why) && !bn_head_type_ok(BN_Q6, 100, &why) &&
                  !bn_head_type_ok(BN_T2, 256, &why));
}

/* Positions [0, n) of a transposed K (element i of position p at
 * kt[i·ldk + p]) and V rows (position p's at v[p·ld]) copied into blocks of
 * bs positions, K then V in each (kern_attn.h): blk[i] gets the block of
 * positions [i·bs, (i+1)·bs); *voff says where its V begins. */
static uint8_t *att_blocks(const void *kt, size_t ldk, const void *v, size_t ld, size_t hd, size_t n, size_t es,
                           size_t bs, const uint8_t **blk, size_t *voff)
{
    size_t nblk = (n + bs - 1) / bs, bb = (hd * bs + bs * ld) * es;
    uint8_t *mem = calloc(nblk, bb);
    *voff = hd * bs * es;
    for (size_t b = 0; b < nblk; b++) {
        blk[b] = mem + b * bb;
        for (size_t p = b * bs; p < n && p < (b + 1) * bs; p++) {
            for (size_t i = 0; i < hd; i++)
                memcpy(mem + b * bb + (i * bs + p % bs) * es, (const uint8_t *)kt + (i * ldk + p) * es, es);
            memcpy(mem + b * bb + *voff + p % bs * ld * es, (const uint8_t *)v + p * ld * es, ld * es);
        }
    }
    return mem;
}

/* q6/q5/q4 (hb 2/1/0): bytes per group of 128 and the spec's code u of
 * element i of group g (formats/bn-model.md 4.1, as q6_spec_u). */
static size_t qspec_gb(int hb)
{
    return 72 + 16 * (size_t)hb;
}

static int qspec_u(int hb, const uint8_t *g, size_t i)
{
    size_t b = i / 32, e = i % 32, j = e % 16;
    int lo = e < 16 ? g[16 * b + j] & 15 : g[16 * b + j] >> 4;
    if (hb == 2)
        return q6_spec_u(g, i);
    if (hb == 1)
        return lo | ((g[64 + j] >> (2 * b + (e >= 16))) & 1) << 4;
    return lo;
}

static float qspec_scale(int hb, const uint8_t *g, size_t b)
{
    uint16_t v;
    memcpy(&v, g + qspec_gb(hb) - 8 + 2 * b, 2);
    return bn_f16_to_f32(v);
}

static int type_hb(uint32_t type)
{
    return type == BN_Q6 ? 2 : type == BN_Q5 ? 1 : type == BN_Q4 ? 0 : -1;
}

/* A [rows, d] head of type (f32, f16, bf16 or i8, then i8's row scales;
 * q6, q5 or q4: random codes, scales of either sign, a zero one among
 * them) of random values, malloc'ed. */
static uint8_t *random_head(uint32_t type, size_t rows, size_t d)
{
    int hb = type_hb(type);
    if (hb >= 0) {
        size_t gb = qspec_gb(hb), groups = rows * d / 128;
        uint8_t *w = malloc(groups * gb);
        for (size_t g = 0; g < groups; g++) {
            for (size_t i = 0; i < gb - 8; i++)
                w[g * gb + i] = (uint8_t)rnd();
            for (size_t b = 0; b < 4; b++) {
                uint16_t v = bn_f32_to_f16(g % 7 == 3 && b == 1 ? 0.0f : frnd() * 0.02f);
                memcpy(w + g * gb + gb - 8 + 2 * b, &v, 2);
            }
        }
        return w;
    }
    size_t es = bn_head_row_bytes(type, 1);
    uint8_t *w = malloc(rows * d * es + 4 * rows);
    for (size_t i = 0; i < rows * d; i++) {
        float v = frnd();
        if (type == BN_F32)
            memcpy(w + 4 * i, &v, 4);
        else if (type == BN_I8)
            w[i] = (uint8_t)(rnd() % 255 + 1);
        else {
            uint16_t b = type == BN_F16 ? bn_f32_to_f16(v) : bn_f32_to_bf16(v);
            memcpy(w + 2 * i, &b, 2);
        }
    }
    for (size_t r = 0; r < rows; r++) {
        float sc = 0.001f + frnd() * frnd();
        memcpy(w + rows * d * es + 4 * r, &sc, 4);
    }
    return w;
}

/* n random activations, a negative zero among them (its sign must not
 * change a sum's bits differently from one head to another). */
static float *random_tokens(size_t n)
{
    float *h = malloc(n * sizeof *h);
    for (size_t i = 0; i < n; i++)
        h[i] = i % 13 == 5 ? -0.0f : frnd();
    return h;
}

/* The float and i8 heads' result in the order every SIMD head adds (the
 * AVX-512 one's): lane j of 16 adds columns j, j+16, ... by fused
 * multiply-add (fmaf: exact on any machine), the last partial group's
 * missing lanes as +0·+0, then halves, quarters and pairs. */
static float head16_ref(uint32_t type, const void *w, size_t rows, size_t d, size_t r, const float *h)
{
    float lane[16] = {0}, wf;
    size_t es = bn_head_row_bytes(type, 1);
    for (size_t c0 = 0; c0 < d; c0 += 16)
        for (size_t j = 0; j < 16; j++) {
            size_t c = c0 + j;
            if (c >= d) {
                lane[j] = fmaf(0.0f, 0.0f, lane[j]);
                continue;
            }
            if (type == BN_I8)
                wf = (float)((const int8_t *)w)[r * d + c];
            else
                bn_to_f32(type, (const uint8_t *)w + (r * d + c) * es, &wf, 1);
            lane[j] = fmaf(wf, h[c], lane[j]);
        }
    float t[8], u[4];
    for (int j = 0; j < 8; j++)
        t[j] = lane[j + 8] + lane[j];
    for (int j = 0; j < 4; j++)
        u[j] = t[j + 4] + t[j];
    float s = (u[0] + u[2]) + (u[1] + u[3]);
    if (type == BN_I8) {
        float sc;
        memcpy(&sc, (const uint8_t *)w + rows * d + 4 * r, 4);
        s *= sc;
    }
    return s;
}

/* The q6/q5/q4 heads' result in the order every SIMD one adds (the
 * AVX-512 one's, kern_head.c): h in blocks of 32 as int8 (dh = absmax/127,
 * qh = rint(h·127/absmax)); per group of 128 columns 16 lanes, lane l
 * (block b = l/4) the exact sum over its 4 bytes p = 4l..4l+3 of the low
 * and high halves, u(b, p%16)·qh + u(b, 16+p%16)·qh, minus 2^(3+hb)·Σ qh
 * of block b in its first lane, times d_b·dh_b (rounded), fused into the
 * lane's float; then halves, quarters, pairs. */
static float quant16_ref(int hb, const uint8_t *w, size_t d, size_t r, const float *h)
{
    size_t gb = qspec_gb(hb), z = (size_t)8 << hb;
    float lane[16] = {0};
    for (size_t c0 = 0; c0 < d; c0 += 128) {
        const uint8_t *g = w + (r * d + c0) / 128 * gb;
        int qh[128];
        float dh[4];
        for (size_t b = 0; b < 4; b++) {
            float amax = 0;
            for (size_t i = 0; i < 32; i++)
                amax = fmaxf(amax, fabsf(h[c0 + 32 * b + i]));
            dh[b] = amax / 127.0f;
            for (size_t i = 0; i < 32; i++)
                qh[32 * b + i] = amax > 0 ? (int)nearbyintf(h[c0 + 32 * b + i] * (127.0f / amax)) : 0;
        }
        for (size_t l = 0; l < 16; l++) {
            size_t b = l / 4;
            int64_t s = 0;
            for (size_t p = 4 * l; p < 4 * l + 4; p++) {
                size_t j = p % 16;
                s += qspec_u(hb, g, 32 * b + j) * qh[32 * b + j] + qspec_u(hb, g, 32 * b + 16 + j) * qh[32 * b + 16 + j];
            }
            if (l % 4 == 0)
                for (size_t i = 0; i < 32; i++)
                    s -= (int64_t)z * qh[32 * b + i];
            float m = qspec_scale(hb, g, b) * dh[b];
            lane[l] = fmaf((float)s, m, lane[l]);
        }
    }
    float t[8], u[4];
    for (int j = 0; j < 8; j++)
        t[j] = lane[j + 8] + lane[j];
    for (int j = 0; j < 4; j++)
        u[j] = t[j + 4] + t[j];
    return (u[0] + u[2]) + (u[1] + u[3]);
}

/* Row widths for a head type's tests: any for the float and i8 ones
 * (around the 16- and 8-column steps), multiples of 128 for q6/q5/q4. */
static size_t head_test_d(uint32_t type, size_t i)
{
    static const size_t any[] = {1, 5, 8, 9, 15, 16, 17, 24, 31, 100, 256, 704, 1000, 2560};
    static const size_t q[] = {128, 256, 384, 640, 1024, 2560};
    return type_hb(type) >= 0 ? (i < sizeof q / sizeof q[0] ? q[i] : 0) : (i < sizeof any / sizeof any[0] ? any[i] : 0);
}

/* The SIMD float, i8 and q6/q5/q4 heads this CPU has (AVX-512, AVX2,
 * NEON) give head16_ref's (quant16_ref's) bits, so logits agree across
 * machines. */
static void test_head_order(check_ctx *cx, const bn_cpu *cpu)
{
    static const uint32_t types[] = {BN_F32, BN_F16, BN_BF16, BN_I8, BN_Q6, BN_Q5, BN_Q4};
    bn_cpu avx2 = {0};
    avx2.avx2 = cpu->avx2, avx2.f16c = cpu->f16c, avx2.fma = cpu->fma;
    for (int which = 0; which < 2; which++) {
        int compared = 0, same = 1;
        const char *name = which ? "avx2" : cpu->avx512bw ? "avx512" : cpu->neon ? "neon" : "scalar";
        for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
            bn_head_fn f = which ? bn_head_find_avx2(types[ti], &avx2) : bn_head_find(types[ti], cpu);
            int hb = type_hb(types[ti]);
            /* AVX-512 without VNNI leaves the q types to AVX2 (the second pass) */
            if (!f || !strcmp(name, "scalar") || (hb >= 0 && !which && cpu->avx512bw && !cpu->avx512vnni))
                continue;
            for (size_t di = 0, d; (d = head_test_d(types[ti], di)); di++) {
                /* rows past a block of 64 (several tokens), a range inside the tensor (a thread's) */
                size_t rows = 1 + rnd() % 150, n = 1 + rnd() % 6;
                uint8_t *w = random_head(types[ti], rows, d);
                float *h = random_tokens(n * d), *y = malloc(n * rows * sizeof *y);
                size_t r0 = rows > 2 ? rnd() % 3 : 0, r1 = r0 + 1 + rnd() % (rows - r0);
                f(w, rows, d, r0, r1, h, n, y, rows);
                for (size_t t = 0; t < n; t++)
                    for (size_t r = r0; r < r1; r++) {
                        float want = hb >= 0 ? quant16_ref(hb, w, d, r, h + t * d)
                                             : head16_ref(types[ti], w, rows, d, r, h + t * d);
                        if (memcmp(&want, &y[t * rows + r], sizeof want)) {
                            if (same)
                                fprintf(stderr, "head %s %s d=%zu row %zu token %zu: %.9g, in order %.9g\n", name,
                                        bn_type_name(types[ti]), d, r, t, y[t * rows + r], want);
                            same = 0;
                        }
                    }
                compared++;
                free(w), free(h), free(y);
            }
        }
        if (compared)
            printf("  head: %s against the 16-lane order, %d cases %s\n", name, compared,
                   same ? "bit-exact" : "MISMATCH");
        CHECK(cx, same);
    }
}

/* The AVX2 heads give the AVX-512 ones' bits (where the CPU has both;
 * kern_head_avx2.c): widths around the 16- and 8-column steps,
 * ranges with and without whole quarters, not starting at row 0, 1 to 9
 * tokens (one stream; blocks of rows); then the scalar ones on a CPU
 * with neither still agree with them to rounding (test_head). The q types
 * share their row and token loop (head_act.c) here, so a fault in it
 * would show on both: test_head_order's quant16_ref catches that. */
static void test_head_avx2(check_ctx *cx, const bn_cpu *cpu)
{
    bn_cpu avx2 = {0};
    avx2.avx2 = cpu->avx2, avx2.f16c = cpu->f16c, avx2.fma = cpu->fma;
    static const uint32_t types[] = {BN_F32, BN_F16, BN_BF16, BN_I8, BN_Q6, BN_Q5, BN_Q4};
    int compared = 0, same = 1;
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        bn_head_fn wide = bn_head_find(types[ti], cpu), narrow = bn_head_find_avx2(types[ti], &avx2);
        CHECK(cx, !avx2.avx2 || !avx2.f16c || !avx2.fma || narrow != NULL);
        if (!narrow || !cpu->avx512bw || wide == narrow)
            continue;
        for (size_t di = 0, d; (d = head_test_d(types[ti], di)); di++) {
            size_t rows = 1 + rnd() % 150, n = 1 + rnd() % 9;
            uint8_t *w = random_head(types[ti], rows, d);
            float *h = random_tokens(n * d), *y1 = malloc(n * rows * sizeof *y1), *y2 = malloc(n * rows * sizeof *y2);
            size_t r0 = rows > 2 ? rnd() % 3 : 0, r1 = r0 + 1 + rnd() % (rows - r0);
            memset(y1, 0, n * rows * sizeof *y1);
            memset(y2, 0, n * rows * sizeof *y2);
            wide(w, rows, d, r0, r1, h, n, y1, rows);
            narrow(w, rows, d, r0, r1, h, n, y2, rows);
            if (memcmp(y1, y2, n * rows * sizeof *y1)) {
                fprintf(stderr, "head %s d=%zu rows=%zu r0=%zu n=%zu: avx2 differs from avx512\n",
                        bn_type_name(types[ti]), d, rows, r0, n);
                same = 0;
            }
            compared++;
            free(w), free(h), free(y1), free(y2);
        }
    }
    if (compared)
        printf("  head: avx2 against avx512, %d cases %s\n", compared, same ? "bit-exact" : "MISMATCH");
    CHECK(cx, same);
}

/* Attention (one token, one KV head, g query heads) of the chosen
 * implementation against a double-precision softmax, f32 and f16 caches,
 * head sizes with ragged SIMD tails; and the same cache cut into blocks
 * of 16, 32 or 64 positions gives bit-identical results (paged KV). */
static void test_att(check_ctx *cx, const bn_cpu *cpu)
{
    static const size_t hds[] = {1, 12, 16, 24, 64, 128, 130};
    bn_att_fn f = bn_att_find(cpu);
    bn_f16_row_fn h16 = bn_f16_row_find(cpu);
    int ok = 1, ok16 = 1, ok_blk = 1;
    for (size_t hi = 0; hi < sizeof hds / sizeof hds[0]; hi++)
        for (int f16 = 0; f16 < 2; f16++) {
            size_t hd = hds[hi], g = 1 + rnd() % 5, n = 1 + rnd() % 150, ld = hd * (1 + rnd() % 3);
            size_t ldk = n + rnd() % 3; /* K transposed: element i of position p at i·ldk + p */
            float *q = malloc(g * hd * sizeof *q), *kf = malloc(n * ld * sizeof *kf), *vf = malloc(n * ld * sizeof *vf);
            uint16_t *kh = malloc(n * ld * 2), *vh = malloc(n * ld * 2);
            float *sc = malloc(g * n * sizeof *sc), *out = malloc(g * hd * sizeof *out);
            float *out_b = malloc(g * hd * sizeof *out_b);
            double *w = malloc(n * sizeof *w);
            for (size_t i = 0; i < g * hd; i++)
                q[i] = 3 * frnd();
            for (size_t i = 0; i < n * ld; i++) {
                kf[i] = 2 * frnd();
                vf[i] = frnd();
            }
            h16(kf, kh, n * ld);
            h16(vf, vh, n * ld);
            for (size_t i = 0; i < n * ld; i++) {
                ok16 &= kh[i] == bn_f32_to_f16(kf[i]) && vh[i] == bn_f32_to_f16(vf[i]);
                if (f16) { /* the reference sees what the cache holds */
                    kf[i] = bn_f16_to_f32(kh[i]);
                    vf[i] = bn_f16_to_f32(vh[i]);
                }
            }
            float scale = 1.0f / sqrtf((float)hd);
            float *ktf = malloc(hd * ldk * sizeof *ktf);
            uint16_t *kth = malloc(hd * ldk * 2);
            for (size_t p = 0; p < n; p++)
                for (size_t i = 0; i < hd; i++) {
                    ktf[i * ldk + p] = kf[p * ld + i];
                    kth[i * ldk + p] = kh[p * ld + i];
                }
            const void *kt = f16 ? (const void *)kth : ktf, *vv = f16 ? (const void *)vh : vf;
            size_t es = f16 ? 2 : 4, voff;
            /* one block that holds every position (bs = ldk >= n), then pages */
            const uint8_t *blk[150];
            uint8_t *one = att_blocks(kt, ldk, vv, ld, hd, n, es, ldk, blk, &voff);
            bn_att_task a = {q, blk, ldk, 0, voff, ld, hd, g, n, f16, scale, sc, out};
            f(&a);
            size_t bs = (size_t)16 << rnd() % 3;
            uint8_t *paged = att_blocks(kt, ldk, vv, ld, hd, n, es, bs, blk, &voff);
            bn_att_task ab = {q, blk, bs, 0, voff, ld, hd, g, n, f16, scale, sc, out_b};
            f(&ab);
            ok_blk &= !memcmp(out, out_b, g * hd * sizeof *out);
            for (size_t j = 0; j < g; j++) {
                double mx = -1e300, sum = 0;
                for (size_t p = 0; p < n; p++) {
                    double d = 0;
                    for (size_t i = 0; i < hd; i++)
                        d += (double)q[j * hd + i] * kf[p * ld + i];
                    w[p] = d * scale;
                    mx = w[p] > mx ? w[p] : mx;
                }
                for (size_t p = 0; p < n; p++)
                    sum += w[p] = exp(w[p] - mx);
                for (size_t i = 0; i < hd; i++) {
                    double ex = 0;
                    for (size_t p = 0; p < n; p++)
                        ex += w[p] / sum * vf[p * ld + i];
                    ok &= fabs(out[j * hd + i] - ex) <= 1e-5;
                }
            }
            free(one);
            free(paged);
            free(q);
            free(kf);
            free(vf);
            free(kh);
            free(vh);
            free(ktf);
            free(kth);
            free(sc);
            free(out);
            free(out_b);
            free(w);
        }
    CHECK(cx, ok);
    CHECK(cx, ok16);
    CHECK(cx, ok_blk);
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "--bench"))
        return bench(argc > 2 ? argv[2] : NULL);
    check_ctx cx = {0};
    bn_cpu cpu;
    bn_cpu_detect(&cpu);
    test_layouts(&cx);
    test_b3_layout(&cx);
    test_dispatch(&cx, &cpu);
    test_sets(&cx, &cpu);
    test_head(&cx, &cpu);
    test_head_avx2(&cx, &cpu);
    test_head_order(&cx, &cpu);
    {
        bn_cpu avx2 = {0}; /* a CPU without AVX-512: the AVX2 heads against the double sums */
        avx2.avx2 = cpu.avx2, avx2.f16c = cpu.f16c, avx2.fma = cpu.fma;
        test_head(&cx, &avx2);
    }
    test_att(&cx, &cpu);
    test_qhead(&cx, &cpu);
    {
        bn_cpu none;
        memset(&none, 0, sizeof none);
        test_att(&cx, &none); /* the scalar ones */
        test_qhead(&cx, &none);
    }
    return check_done(&cx, "test_kernels");
}
