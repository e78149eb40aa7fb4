/* bench_peak.c — the CPU's peak int8 throughput, the physical limit of
 * prefill (a GEMM whose weights stay in cache), measured rather than read
 * from a data sheet: the best int8 dot-product instruction this CPU runs is
 * issued on many independent accumulators (enough to hide its latency), so
 * the loop runs at the instruction's throughput on every port that can
 * execute it. MACs per cycle = that rate / the clock from bn_bench_ghz.
 *
 * Instructions tried, best first: x86 AVX512-VNNI vpdpbusd zmm (64 u8 x s8
 * MACs each), AVX-VNNI vpdpbusd ymm (32), AVX2 vpmaddubsw ymm (32 MACs into
 * int16 pairs, + a vpaddw to accumulate, as int8 GEMMs without VNNI do);
 * AArch64 sdot (16); otherwise a portable int32 vector multiply-add. */
#include "bench.h"
#include "cpu.h"
#include "pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define BN_X86 1
#endif
#if defined(__aarch64__) /* sdot by its own target attribute: a plain build has it too (cpu.dotprod checks) */
#include <arm_neon.h>
#define BN_SDOT 1
#endif

double bn_bench_ghz(void)
{
    /* A chain of dependent register adds retires one per cycle on every
     * core we know; the empty asm keeps each add separate (the compiler
     * can neither fold the chain nor see the addend). */
    unsigned long long x = 0, y = 1;
    __asm__ volatile("" : "+r"(y));
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        const long iters = 20 * 1000 * 1000;
        double t0 = bn_bench_now();
        for (long i = 0; i < iters; i++) {
#define ADD1 do { x += y; __asm__ volatile("" : "+r"(x)); } while (0)
            ADD1;
            ADD1;
            ADD1;
            ADD1;
            ADD1;
            ADD1;
            ADD1;
            ADD1;
#undef ADD1
        }
        double dt = bn_bench_now() - t0;
        double ghz = 8.0 * (double)iters / dt / 1e9;
        if (ghz > best)
            best = ghz;
    }
    __asm__ volatile("" ::"r"(x));
    return best;
}

/* Each kernel runs `iters` iterations of 12 independent instructions and
 * returns the MACs it did. The accumulators are 12 separate variables, not
 * an array, so they live in registers (an array round-trips through
 * memory at -O2 and the store-load latency would be what is measured). */
#define X12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
typedef double (*mac_fn)(long iters, unsigned *sink);

#ifdef BN_X86
__attribute__((target("avx512f,avx512vnni"))) static double mac_vnni512(long iters, unsigned *sink)
{
    __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(-2);
#define D(i) __m512i c##i = _mm512_set1_epi32(i);
    X12(D)
#undef D
    for (long n = 0; n < iters; n++) {
/* asm, because GCC 12 copies every accumulator twice around the
 * intrinsic, and the copies compete with it for the vector ports. */
#define D(i) __asm__("vpdpbusd %2, %1, %0" : "+v"(c##i) : "v"(a), "v"(b));
        X12(D)
#undef D
    }
    __m512i s = _mm512_setzero_si512();
#define D(i) s = _mm512_xor_si512(s, c##i);
    X12(D)
#undef D
    *sink = (unsigned)_mm_cvtsi128_si32(_mm512_castsi512_si128(s));
    return 64.0 * 12 * (double)iters;
}

/* AMX-INT8: four TDPBSSD into four C tiles from A and B tiles loaded
 * once (16·16·64 MACs each), the tile unit's own limit. The tiles are
 * configured and released around the loop, as the amx kernels do. */
__attribute__((target("amx-tile,amx-int8"))) static double mac_amx(long iters, unsigned *sink)
{
    _Alignas(64) struct {
        uint8_t palette, start_row, reserved[14];
        uint16_t colsb[16];
        uint8_t rows[16];
    } cfg;
    _Alignas(64) int8_t ab[2][16][64];
    _Alignas(64) int32_t c[16][16];
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int i = 0; i < 8; i++) {
        cfg.rows[i] = 16;
        cfg.colsb[i] = 64;
    }
    memset(ab[0], 3, sizeof ab[0]);
    memset(ab[1], -2, sizeof ab[1]);
    _tile_loadconfig(&cfg);
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    _tile_loadd(4, ab[0], 64);
    _tile_loadd(5, ab[0], 64);
    _tile_loadd(6, ab[1], 64);
    _tile_loadd(7, ab[1], 64);
    for (long n = 0; n < iters; n++) {
        _tile_dpbssd(0, 4, 6);
        _tile_dpbssd(1, 4, 7);
        _tile_dpbssd(2, 5, 6);
        _tile_dpbssd(3, 5, 7);
    }
    _tile_stored(0, c, 64);
    _tile_release();
    *sink = (unsigned)c[0][0];
    return 16.0 * 16 * 64 * 4 * (double)iters;
}

__attribute__((target("avx2,avxvnni"))) static double mac_vnni256(long iters, unsigned *sink)
{
    __m256i a = _mm256_set1_epi8(3), b = _mm256_set1_epi8(-2);
#define D(i) __m256i c##i = _mm256_set1_epi32(i);
    X12(D)
#undef D
    for (long n = 0; n < iters; n++) {
#define D(i) __asm__("%{vex%} vpdpbusd %2, %1, %0" : "+v"(c##i) : "v"(a), "v"(b));
        X12(D)
#undef D
    }
    __m256i s = _mm256_setzero_si256();
#define D(i) s = _mm256_xor_si256(s, c##i);
    X12(D)
#undef D
    *sink = (unsigned)_mm_cvtsi128_si32(_mm256_castsi256_si128(s));
    return 32.0 * 12 * (double)iters;
}

__attribute__((target("avx2"))) static double mac_avx2(long iters, unsigned *sink)
{
    __m256i b = _mm256_set1_epi8(1);
#define D(i) __m256i c##i = _mm256_set1_epi16((short)i);
    X12(D)
#undef D
    for (long n = 0; n < iters; n++) {
        /* Each product reads its own accumulator, so the compiler cannot
         * compute one product for all twelve. */
#define D(i) c##i = _mm256_add_epi16(c##i, _mm256_maddubs_epi16(c##i, b));
        X12(D)
#undef D
    }
    __m256i s = _mm256_setzero_si256();
#define D(i) s = _mm256_xor_si256(s, c##i);
    X12(D)
#undef D
    *sink = (unsigned)_mm_cvtsi128_si32(_mm256_castsi256_si128(s));
    return 32.0 * 12 * (double)iters;
}
#endif

#ifdef BN_SDOT
__attribute__((target("arch=armv8.2-a+dotprod"))) static double mac_sdot(long iters, unsigned *sink)
{
    int8x16_t a = vdupq_n_s8(3), b = vdupq_n_s8(-2);
#define D(i) int32x4_t c##i = vdupq_n_s32(i);
    X12(D)
#undef D
    for (long n = 0; n < iters; n++) {
#define D(i) c##i = vdotq_s32(c##i, a, b);
        X12(D)
#undef D
    }
    int32x4_t s = vdupq_n_s32(0);
#define D(i) s = veorq_s32(s, c##i);
    X12(D)
#undef D
    *sink = (unsigned)vgetq_lane_s32(s, 0);
    return 16.0 * 12 * (double)iters;
}
#endif

typedef int v4si __attribute__((vector_size(16)));

static double mac_portable(long iters, unsigned *sink)
{
    v4si a = {3, 3, 3, 3}, b = {-2, -2, -2, -2};
    __asm__ volatile("" : "+r"(iters));
#define D(i) v4si c##i = {i, i, i, i};
    X12(D)
#undef D
    for (long n = 0; n < iters; n++) {
#define D(i) c##i = c##i * a + b;
        X12(D)
#undef D
    }
    v4si s = {0, 0, 0, 0};
#define D(i) s ^= c##i;
    X12(D)
#undef D
    *sink = (unsigned)s[0];
    return 4.0 * 12 * (double)iters;
}

static mac_fn pick(const char **name)
{
    /* cpu.h checks the OS enables the registers too (XCR0), which
     * __builtin_cpu_supports does not. */
    bn_cpu cpu;
    bn_cpu_detect(&cpu);
    (void)cpu;
#ifdef BN_X86
    if (cpu.amx_int8) {
        *name = "amx-int8 tdpbssd tiles";
        return mac_amx;
    }
    if (cpu.avx512vnni && cpu.avx512f) {
        *name = "avx512-vnni vpdpbusd zmm";
        return mac_vnni512;
    }
    if (cpu.avxvnni) {
        *name = "avx-vnni vpdpbusd ymm";
        return mac_vnni256;
    }
    if (cpu.avx2) {
        *name = "avx2 vpmaddubsw+vpaddw ymm";
        return mac_avx2;
    }
#endif
#ifdef BN_SDOT
    if (cpu.dotprod) {
        *name = "neon sdot";
        return mac_sdot;
    }
#endif
    *name = "portable int32 vector mul-add";
    return mac_portable;
}

typedef struct peak_job {
    mac_fn fn;
    long iters;
    double macs[BN_BENCH_MAX_LIST * 32];
    unsigned sink[BN_BENCH_MAX_LIST * 32];
} peak_job;

static void peak_run(void *arg, int ith, int nth)
{
    peak_job *j = arg;
    if (ith < (int)(sizeof j->macs / sizeof j->macs[0]))
        j->macs[ith] = j->fn(j->iters, &j->sink[ith]);
}

int bn_bench_peak_macs(int threads, double *macs_per_s, char *isa, size_t isa_n, bn_err *e)
{
    const char *name;
    bn_pool *pool = bn_pool_new(threads, e);
    if (!pool)
        return -1;
    peak_job *j = calloc(1, sizeof *j);
    if (!j) {
        bn_pool_free(pool);
        return bn_fail_code(e, BN_E_NOMEM, "out of memory");
    }
    j->fn = pick(&name);
    snprintf(isa, isa_n, "%s", name);
    /* Calibrate to ~0.1 s per pass on one thread, then take the best of 3. */
    j->iters = 1000;
    for (;;) {
        double t0 = bn_bench_now();
        unsigned s;
        j->fn(j->iters, &s);
        double dt = bn_bench_now() - t0;
        if (dt > 0.02 || j->iters > (1L << 40))
            break;
        j->iters *= 4;
    }
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = bn_bench_now();
        bn_pool_run(pool, peak_run, j);
        double dt = bn_bench_now() - t0, total = 0;
        for (int i = 0; i < threads; i++)
            total += j->macs[i];
        if (total / dt > best)
            best = total / dt;
    }
    free(j);
    bn_pool_free(pool);
    *macs_per_s = best;
    return 0;
}
