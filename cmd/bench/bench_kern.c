/* bench_kern.c — GEMV and GEMM micro-benchmarks of every kernel set on a
 * shape's matrices (2B4T: 2560x2560, 640x2560, 6912x2560, 2560x6912 and the
 * 128256x2560 output head, taken as ternary), through the same kernels.h
 * interface and the same row split between threads as the forward pass.
 *
 * GOPS counts 2 ops (multiply, add) per weight and token; GB/s counts the
 * weight bytes of the layout read per call. GEMV reads its weights from
 * memory, as decoding does (see bench_one), so its roofline is against the
 * measured read bandwidth; GEMM's is against the int8 peak. */
#include "bench.h"
#include "kern_2bit.h" /* bn_kernels_names */
#include "pack.h"
#include "pool.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t bn_bench_kernel_sets(const bn_kernels **sets, size_t max, const char *const *extra, size_t n_extra)
{
    /* Every (name, layout) pair bn_kernels_find answers: the names it
     * accepts times every layout a bn file may use (t2 and the packed
     * types 16..127), so sets added later are found without a change
     * here. bn_kernels_find checks the CPU, so only runnable sets come
     * back. */
    const char *const *names = bn_kernels_names();
    size_t n_names = 0;
    while (names[n_names])
        n_names++;
    size_t n = 0;
    for (uint32_t layout = BN_T2; layout < 128; layout = layout == BN_T2 ? 16 : layout + 1) {
        if (layout != BN_T2 && !bn_packed_name(layout))
            continue;
        for (size_t i = 0; i < n_names + n_extra; i++) {
            const char *nm = i < n_names ? names[i] : extra[i - n_names];
            const bn_kernels *k = bn_kernels_find(nm, layout);
            int dup = !k;
            for (size_t j = 0; j < n && !dup; j++)
                dup = sets[j] == k;
            if (!dup && n < max)
                sets[n++] = k;
        }
    }
    return n;
}

typedef struct kjob {
    const bn_kernels *k;
    const uint8_t *w;   /* n_copies copies, stride bytes apart */
    size_t n_copies, stride;
    size_t rows, cols, n;
    float beta;
    const int8_t *q;
    const float *s;
    float *y;
    long calls;
} kjob;

static void kern_run(void *arg, int ith, int nth)
{
    kjob *j = arg;
    size_t r0 = j->rows * (size_t)ith / (size_t)nth, r1 = j->rows * (size_t)(ith + 1) / (size_t)nth;
    if (r0 == r1)
        return;
    for (long c = 0; c < j->calls; c++) {
        const uint8_t *w = j->w + (size_t)c % j->n_copies * j->stride;
        if (j->n == 1)
            j->k->gemv(w, j->cols, r0, r1, j->beta, j->q, j->s[0], j->y);
        else
            j->k->gemm(w, j->cols, r0, r1, j->beta, j->q, j->s, j->n, j->cols, j->y, j->rows);
    }
}

typedef struct kmat {
    const char *name;
    uint64_t rows, cols;
} kmat;

/* One (set, matrix, n tokens, threads) measurement into a row. */
static int bench_one(const bn_bench_opts *o, const bn_bench_machine *mc, const bn_kernels *k, const kmat *km,
                     size_t n, bn_pool *pool, int threads, bn_bench_rows *rows, bn_err *e)
{
    uint64_t wbytes = bn_bench_layout_bytes(k->layout, km->rows, km->cols);
    char ln[24];
    bn_bench_layout_name(k->layout, ln, sizeof ln);
    if (!wbytes)
        return bn_fail(e, "kernels: layout %s has no size rule for %llux%llu", ln, (unsigned long long)km->rows,
                       (unsigned long long)km->cols);
    uint64_t rng = o->seed ^ km->rows * 31 ^ km->cols;
    /* A GEMV cycles through copies of its matrix (bn_bench_gemv_copies),
     * as every matrix is read once per token; a matrix used over and over
     * would be served by the caches. A GEMM reuses one copy: prefill reads
     * each matrix once per batch and works on it from cache. */
    size_t stride = (size_t)(wbytes + 63) / 64 * 64;
    size_t copies = n == 1 ? bn_bench_gemv_copies(o, stride) : 1;
    uint8_t *w = malloc(stride * copies);
    float *x = malloc(n * km->cols * sizeof *x), *y = malloc(n * km->rows * sizeof *y);
    int8_t *q = aligned_alloc(64, (n * km->cols + 63) / 64 * 64); /* as bn_ctx's activations */
    float s[BN_KERN_MAX_N];
    if (!w || !x || !y || !q) {
        free(w), free(x), free(y), free(q);
        return bn_fail_code(e, BN_E_NOMEM, "kernels: out of memory for a %llux%llu matrix", (unsigned long long)km->rows,
                       (unsigned long long)km->cols);
    }
    if (bn_synth_weights(w, km->rows, km->cols, k->layout, &rng, e)) {
        free(w), free(x), free(y), free(q);
        return -1;
    }
    for (size_t c = 1; c < copies; c++)
        memcpy(w + c * stride, w, wbytes);
    for (size_t i = 0; i < n * km->cols; i++)
        x[i] = (float)((double)(bn_bench_rand(&rng) >> 11) / 9007199254740992.0 - 0.5);
    for (size_t t = 0; t < n; t++)
        s[t] = k->quantize(x + t * km->cols, km->cols, q + t * km->cols);
    kjob j = {k, w, copies, stride, km->rows, km->cols, n, 1.0f, q, s, y, 1};
    memcpy(&j.beta, w + wbytes - 4, 4);
    /* Warm-up and calibration: enough calls for about sample_s per sample. */
    double dt = 0;
    for (;;) {
        double t0 = bn_bench_now();
        bn_pool_run(pool, kern_run, &j);
        dt = bn_bench_now() - t0;
        if (dt > o->sample_s || j.calls > (1L << 30))
            break;
        j.calls = dt < 1e-6 ? j.calls * 16 : (long)ceil((double)j.calls * 1.2 * o->sample_s / dt);
    }
    bn_bench_row *r = bn_bench_row_add(rows);
    if (!r) {
        free(w), free(x), free(y), free(q);
        return bn_fail_code(e, BN_E_NOMEM, "out of memory");
    }
    r->kind = BN_ROW_KERNEL;
    snprintf(r->layout, sizeof r->layout, "%s", ln);
    snprintf(r->kernel, sizeof r->kernel, "%s", k->name);
    r->threads = threads;
    if (n == 1)
        snprintf(r->test, sizeof r->test, "gemv");
    else
        snprintf(r->test, sizeof r->test, "gemm%zu", n);
    snprintf(r->what, sizeof r->what, "%s %llux%llu", km->name, (unsigned long long)km->rows,
             (unsigned long long)km->cols);
    for (int rep = 0; rep < o->reps; rep++) {
        double t0 = bn_bench_now();
        bn_pool_run(pool, kern_run, &j);
        r->samples[r->n++] = (double)j.calls / (bn_bench_now() - t0);
    }
    /* Rates in calls/s first, for the roofline; then shown as GOPS. */
    double ops = 2.0 * (double)km->rows * (double)km->cols * (double)n;
    r->bytes_per = (double)wbytes;
    r->ops_per = ops;
    r->bw_gbps = bn_bench_bw_at(mc, threads);
    r->peak_gops = bn_bench_peak_at(mc, threads);
    bn_bench_stats(r);
    bn_bench_roofline(r);
    for (int i = 0; i < r->n; i++)
        r->samples[i] *= ops / 1e9;
    bn_bench_stats(r);
    snprintf(r->unit, sizeof r->unit, "GOPS");
    free(w), free(x), free(y), free(q);
    if (o->verbose)
        fprintf(stderr, "%s: %s %s t=%d %s %s: %.2f GOPS\n", o->prog, ln, k->name, threads, r->test, r->what,
                r->median);
    return 0;
}

/* parses a layout: a type name ("t2") or a number. */
static int parse_layout(const char *s, uint32_t *layout)
{
    uint64_t v;
    if (!bn_type_from_name(s, layout) || !bn_packed_from_name(s, layout))
        return 0;
    if (!bn_parse_u64(s, 0, 127, &v)) {
        *layout = (uint32_t)v;
        return 0;
    }
    if (!strncmp(s, "type", 4) && !bn_parse_u64(s + 4, 0, 127, &v)) {
        *layout = (uint32_t)v;
        return 0;
    }
    return -1;
}

/* -k's NAME[:LAYOUT] into name (NAME alone) and *only (the layout, or 0
 * and *narrow = 0 without one); -1 with *e when LAYOUT is none. */
static int split_kernel_name(const char *arg, char name[64], uint32_t *only, int *narrow, bn_err *e)
{
    snprintf(name, 64, "%s", arg);
    char *colon = strchr(name, ':');
    *only = 0;
    *narrow = colon != NULL;
    if (!colon)
        return 0;
    *colon = 0;
    if (parse_layout(colon + 1, only))
        return bn_fail(e, "--kernel: '%s' is not a layout (a type name such as t2, or a number)", colon + 1);
    return 0;
}

int bn_bench_check_kernel_names(const char *const *names, size_t n_names, bn_err *e)
{
    const char *const *known = bn_kernels_names();
    for (size_t i = 0; i < n_names; i++) {
        char name[64];
        uint32_t only;
        int narrow;
        if (split_kernel_name(names[i], name, &only, &narrow, e))
            return -1;
        int ok = 0;
        char list[256] = "";
        size_t used = 0;
        for (size_t j = 0; known[j]; j++) {
            ok |= !strcmp(known[j], name);
            if (used < sizeof list)
                used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", j ? ", " : "", known[j]);
        }
        if (!ok)
            return bn_fail(e, "--kernel: no kernel set '%s' (the sets: %s)", name, list);
    }
    return 0;
}

size_t bn_bench_select_kernels(const char *const *names, size_t n_names, const bn_kernels **sets, size_t max,
                               bn_err *e)
{
    size_t n = 0;
    for (size_t i = 0; i < n_names; i++) {
        char name[64];
        uint32_t only;
        int narrow;
        if (split_kernel_name(names[i], name, &only, &narrow, e))
            return 0;
        int found = 0;
        for (uint32_t layout = BN_T2; layout < 128; layout = layout == BN_T2 ? 16 : layout + 1) {
            if (narrow && layout != only)
                continue;
            const bn_kernels *k = bn_kernels_find(name, layout);
            int dup = !k;
            found |= k != NULL;
            for (size_t j = 0; j < n && !dup; j++)
                dup = sets[j] == k;
            if (!dup && n < max)
                sets[n++] = k;
        }
        if (!found) {
            const bn_kernels *all[BN_BENCH_MAX_SETS];
            size_t na = bn_bench_kernel_sets(all, BN_BENCH_MAX_SETS, NULL, 0);
            char avail[512] = "";
            size_t used = 0;
            for (size_t j = 0; j < na && used < sizeof avail; j++) {
                char ln[24];
                bn_bench_layout_name(all[j]->layout, ln, sizeof ln);
                used += (size_t)snprintf(avail + used, sizeof avail - used, "%s%s:%s", j ? ", " : "", all[j]->name, ln);
            }
            bn_fail(e, "--kernel: no kernel set '%s' in this build and CPU (available: %s)", names[i], avail);
            return 0;
        }
    }
    return n;
}

/* The head implementation a -k entry names: NAME of NAME:LAYOUT, amx's
 * heads being avx512's. */
static const char *head_set_name(const char *k, char *buf, size_t n)
{
    size_t len = strcspn(k, ":");
    if (len == 3 && !strncmp(k, "amx", 3))
        snprintf(buf, n, "avx512");
    else
        snprintf(buf, n, "%.*s", (int)len, k);
    return buf;
}

/* The head rows: without -k the forward pass's implementation; with it,
 * each set name's (NAME of NAME:LAYOUT; auto: the forward pass's), once. */
static int bench_head_sets(const bn_bench_opts *o, const bn_bench_machine *mc, bn_pool *pool, int threads,
                           bn_bench_rows *rows, bn_err *e)
{
    if (!o->n_kernels)
        return bn_bench_heads(o, mc, pool, threads, NULL, rows, e);
    for (size_t i = 0; i < o->n_kernels; i++) {
        char name[32], other[32];
        head_set_name(o->kernels[i], name, sizeof name);
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++)
            seen = !strcmp(head_set_name(o->kernels[j], other, sizeof other), name);
        if (!seen && bn_bench_heads(o, mc, pool, threads, strcmp(name, "auto") ? name : NULL, rows, e))
            return -1;
    }
    return 0;
}

int bn_bench_kernels(const bn_bench_opts *o, const bn_bench_machine *mc, bn_bench_rows *rows, bn_err *e)
{
    const bn_shape *s = o->n_synth ? o->synth[0] : bn_shape_find("2b4t");
    uint64_t d = s->n_embd, hd = s->n_embd / s->n_head;
    const kmat mats[] = {
        {"attn_q", s->n_head * hd, d},  {"attn_k", s->n_head_kv * hd, d}, {"ffn_up", s->n_ff, d},
        {"ffn_down", d, s->n_ff},       {"output", s->n_vocab, d},
    };
    const bn_kernels *sets[BN_BENCH_MAX_SETS];
    size_t n_sets = o->n_kernels ? bn_bench_select_kernels(o->kernels, o->n_kernels, sets, BN_BENCH_MAX_SETS, e)
                                 : bn_bench_kernel_sets(sets, BN_BENCH_MAX_SETS, NULL, 0);
    if (!n_sets)
        return -1;
    for (size_t ti = 0; ti < o->n_threads; ti++) {
        bn_pool *pool = bn_pool_new(o->threads[ti], e);
        if (!pool)
            return -1;
        for (size_t si = 0; si < n_sets; si++)
            for (size_t mi = 0; mi < sizeof mats / sizeof mats[0]; mi++)
                for (int g = 0; g < 2; g++)
                    /* No GEMM on the output head: prefill only needs the
                     * last token's logits. */
                    if ((!g || strcmp(mats[mi].name, "output")) &&
                        bench_one(o, mc, sets[si], &mats[mi], g ? BN_KERN_MAX_N : 1, pool, o->threads[ti], rows,
                                  e)) {
                        bn_pool_free(pool);
                        return -1;
                    }
        /* The float or quantized output head: as the forward pass takes
         * it, or in each instruction set -k names (once a name). */
        if (bench_head_sets(o, mc, pool, o->threads[ti], rows, e)) {
            bn_pool_free(pool);
            return -1;
        }
        bn_pool_free(pool);
    }
    return 0;
}
