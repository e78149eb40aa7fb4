/* bench_bw.c — the machine's memory read bandwidth: the physical limit of
 * decoding, which streams every weight once per token.
 *
 * A buffer much larger than the caches is first written by the threads that
 * will read it (so its pages are real, not the shared zero page, and sit
 * near their readers), then read with wide vector loads into independent
 * accumulators, so neither load latency nor a dependency chain limits the
 * rate. The best of several passes is reported, as STREAM does: the aim is
 * what the hardware can deliver, not an average disturbed by neighbours. */
#include "bench.h"
#include "pool.h"

#include <stdlib.h>
#include <string.h>

/* 32-byte vectors: the compiler uses the widest loads the build allows
 * (two 16-byte loads on baseline x86-64, which already outrun DRAM). */
typedef unsigned long long bw_vec __attribute__((vector_size(32)));

typedef struct bw_job {
    unsigned char *buf;
    size_t bytes;
    int write;
    unsigned long long sink[64];
} bw_job;

static void bw_slice(const bw_job *j, int ith, int nth, size_t *off, size_t *len)
{
    size_t nvec = j->bytes / sizeof(bw_vec);
    size_t a = nvec * (size_t)ith / (size_t)nth, b = nvec * (size_t)(ith + 1) / (size_t)nth;
    *off = a * sizeof(bw_vec);
    *len = (b - a) * sizeof(bw_vec);
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
    bw_vec a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, a4 = {0}, a5 = {0}, a6 = {0}, a7 = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
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
    bw_vec s = a0 ^ a1 ^ a2 ^ a3 ^ a4 ^ a5 ^ a6 ^ a7;
    /* Kept, so the loads cannot be optimized away. */
    j->sink[ith % 64] = s[0] ^ s[1] ^ s[2] ^ s[3];
}

int bn_bench_bandwidth(size_t bytes, int threads, double *gbps, bn_err *e)
{
    bytes &= ~(size_t)4095;
    if (bytes < 4096)
        bytes = 4096;
    bn_pool *pool = bn_pool_new(threads, e);
    if (!pool)
        return -1;
    bw_job j = {.bytes = bytes};
    if (posix_memalign((void **)&j.buf, 4096, bytes)) {
        bn_pool_free(pool);
        return bn_fail(e, "bandwidth: out of memory for a %zu MiB buffer", bytes >> 20);
    }
    j.write = 1;
    bn_pool_run(pool, bw_run, &j);
    j.write = 0;
    /* At least 5 passes and 0.3 s, at most 50 passes. */
    double best = 0, t_all = bn_bench_now();
    for (int pass = 0; pass < 50 && (pass < 5 || bn_bench_now() - t_all < 0.3); pass++) {
        double t0 = bn_bench_now();
        bn_pool_run(pool, bw_run, &j);
        double dt = bn_bench_now() - t0;
        double r = (double)bytes / dt / 1e9;
        if (r > best)
            best = r;
    }
    free(j.buf);
    bn_pool_free(pool);
    *gbps = best;
    return 0;
}
