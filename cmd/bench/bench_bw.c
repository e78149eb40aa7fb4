/* bench_bw.c — the machine's memory read bandwidth: the physical limit of
 * decoding, which streams every weight once per token.
 *
 * A buffer much larger than the caches is first written by the threads that
 * will read it (so its pages are real, not the shared zero page, and sit
 * near their readers), then read with wide vector loads into independent
 * accumulators, so neither load latency nor a dependency chain limits the
 * rate. What a core can pull from memory depends on how it asks: the
 * hardware prefetchers stop at 4 KiB page boundaries, a page walk per 4 KiB
 * costs, and one stream per core may not keep enough misses in flight. The
 * decode kernels read their weights from huge pages, with software prefetch
 * and several rows at once, so a probe that only tried plain loads on small
 * pages could read less than decode does (rows above 100%). Each access
 * pattern below is therefore tried on each placement, and the best pass of
 * the best one is the limit; the others show the spread. */
#include "bench.h"
#include "pool.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* 32-byte vectors: the compiler uses the widest loads the build allows
 * (two 16-byte loads on baseline x86-64, which already outrun DRAM). */
typedef unsigned long long bw_vec __attribute__((vector_size(32)));

/* Bytes ahead of the loads that the prefetching pattern asks for. */
enum { BW_PREFETCH_AHEAD = 2048, BW_STREAMS = 4 };

typedef enum bw_access { BW_LOADS, BW_PREFETCH, BW_MULTI, BW_MULTI_PREFETCH, BW_N_ACCESS } bw_access;

static const char *const access_name[BW_N_ACCESS] = {"loads", "prefetch", "4 streams", "4 streams, prefetch"};

typedef struct bw_job {
    unsigned char *buf;
    size_t bytes;
    int write;
    bw_access access;
    unsigned long long sink[64];
} bw_job;

static void bw_slice(const bw_job *j, int ith, int nth, size_t *off, size_t *len)
{
    size_t nvec = j->bytes / sizeof(bw_vec);
    size_t a = nvec * (size_t)ith / (size_t)nth, b = nvec * (size_t)(ith + 1) / (size_t)nth;
    *off = a * sizeof(bw_vec);
    *len = (b - a) * sizeof(bw_vec);
}

/* One sequential stream of n vectors, 8 independent accumulators, folded
 * into *out (through a pointer: a vector return would change the ABI). */
static void read_stream(const bw_vec *p, size_t n, int prefetch, bw_vec *out)
{
    bw_vec a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, a4 = {0}, a5 = {0}, a6 = {0}, a7 = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        if (prefetch) /* past the end only hints: prefetch never faults */
            __builtin_prefetch((const char *)(p + i) + BW_PREFETCH_AHEAD, 0, 0);
        a0 ^= p[i];
        a1 ^= p[i + 1];
        a2 ^= p[i + 2];
        a3 ^= p[i + 3];
        a4 ^= p[i + 4];
        a5 ^= p[i + 5];
        a6 ^= p[i + 6];
        a7 ^= p[i + 7];
    }
    for (; i < n; i++)
        a0 ^= p[i];
    *out ^= a0 ^ a1 ^ a2 ^ a3 ^ a4 ^ a5 ^ a6 ^ a7;
}

/* BW_STREAMS streams in lockstep, as the decode kernels read rows:
 * the slice is cut in parts and a 256-byte step taken from each in turn;
 * with prefetch, every line of a step asked for BW_PREFETCH_AHEAD bytes
 * ahead, as the GEMVs read the four quarters of their rows (without it
 * that kernel read 100.4% of the probe's best on one Zen 5 thread). */
static void read_streams(const bw_vec *p, size_t n, int prefetch, bw_vec *out)
{
    enum { STEP = 8 };
    size_t part = n / BW_STREAMS / STEP * STEP;
    bw_vec acc[BW_STREAMS][2];
    memset(acc, 0, sizeof acc);
    for (size_t i = 0; i < part; i += STEP)
        for (int s = 0; s < BW_STREAMS; s++) {
            const bw_vec *q = p + (size_t)s * part + i;
            if (prefetch)
                for (int l = 0; l < 4; l++)
                    __builtin_prefetch((const char *)q + BW_PREFETCH_AHEAD + 64 * l, 0, 0);
            acc[s][0] ^= q[0] ^ q[2] ^ q[4] ^ q[6];
            acc[s][1] ^= q[1] ^ q[3] ^ q[5] ^ q[7];
        }
    read_stream(p + part * BW_STREAMS, n - part * BW_STREAMS, 0, out);
    for (int s = 0; s < BW_STREAMS; s++)
        *out ^= acc[s][0] ^ acc[s][1];
}

static void bw_run(void *arg, int ith, int nth)
{
    bw_job *j = arg;
    size_t off, len;
    bw_slice(j, ith, nth, &off, &len);
    if (j->write) {
        memset(j->buf + off, 0x5a ^ ith, len);
        return;
    }
    const bw_vec *p = (const bw_vec *)(j->buf + off);
    size_t n = len / sizeof(bw_vec);
    bw_vec s = {0};
    if (j->access == BW_MULTI || j->access == BW_MULTI_PREFETCH)
        read_streams(p, n, j->access == BW_MULTI_PREFETCH, &s);
    else
        read_stream(p, n, j->access == BW_PREFETCH, &s);
    /* Kept, so the loads cannot be optimized away. */
    j->sink[ith % 64] = s[0] ^ s[1] ^ s[2] ^ s[3];
}

/* The best pass of one pattern: at least 5 passes and 0.25 s, at most 50.
 * A buffer under 256 MiB (a test's, in the caches) gets its share of the
 * 0.25 s: it measures no DRAM, and twelve patterns a run add up. */
static double best_pass(bn_pool *pool, bw_job *j)
{
    double best = 0, t_all = bn_bench_now();
    double min_s = 0.25 * (j->bytes >= ((size_t)256 << 20) ? 1.0 : (double)j->bytes / (double)((size_t)256 << 20));
    for (int pass = 0; pass < 50 && (pass < 5 || bn_bench_now() - t_all < min_s); pass++) {
        double t0 = bn_bench_now();
        bn_pool_run(pool, bw_run, j);
        double r = (double)j->bytes / (bn_bench_now() - t0) / 1e9;
        best = r > best ? r : best;
    }
    return best;
}

/* bytes at an address aligned to align, from its own mapping: freed with
 * munmap(*base, *len) it leaves the process, where malloc's free would
 * keep a small buffer in the heap and in the run's peak RSS (bn-bench
 * measures it after the probe). NULL when out of memory. */
static uint8_t *map_aligned(size_t bytes, size_t align, void **base, size_t *len)
{
    *len = bytes + align;
    *base = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (*base == MAP_FAILED)
        return NULL;
    uintptr_t at = ((uintptr_t)*base + align - 1) & ~(uintptr_t)(align - 1);
    return (uint8_t *)at;
}

/* Tries every access pattern on a buffer of small pages, then on one
 * advised onto transparent huge pages (2 MiB aligned). */
int bn_bench_bandwidth(size_t bytes, int threads, bn_bench_bw *bw, bn_err *e)
{
    const size_t huge = (size_t)2 << 20;
    bytes &= ~(size_t)4095;
    if (bytes < 4096)
        bytes = 4096;
    memset(bw, 0, sizeof *bw);
    bn_pool *pool = bn_pool_new(threads, e);
    if (!pool)
        return -1;
    for (int placement = 0; placement < 2; placement++) {
        bw_job j = {.bytes = bytes};
        void *base;
        size_t len;
        if (!(j.buf = map_aligned(bytes, placement ? huge : 4096, &base, &len))) {
            bn_pool_free(pool);
            return bn_fail_code(e, BN_E_NOMEM, "bandwidth: out of memory for a %zu MiB buffer", bytes >> 20);
        }
#ifdef MADV_HUGEPAGE
        if (placement)
            madvise(j.buf, bytes, MADV_HUGEPAGE); /* advice: without THP the pages stay small */
        else
            madvise(j.buf, bytes, MADV_NOHUGEPAGE);
#endif
        j.write = 1;
        bn_pool_run(pool, bw_run, &j);
        j.write = 0;
        for (int a = 0; a < BW_N_ACCESS; a++) {
            j.access = (bw_access)a;
            double r = best_pass(pool, &j);
            if (r > bw->best) {
                bw->best = r;
                snprintf(bw->pattern, sizeof bw->pattern, "%s, %s pages", access_name[a],
                         placement ? "huge" : "4 KiB");
            }
            if (bw->worst == 0 || r < bw->worst)
                bw->worst = r;
        }
        munmap(base, len);
    }
    bn_pool_free(pool);
    return 0;
}
