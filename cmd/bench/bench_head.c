/* bench_head.c — GEMV of the output head ([n_vocab, d] in a float or
 * quantized head type: f32, f16, bf16, i8, q6, q5, q4) through kern_head.h, the
 * functions the forward pass calls for it, so the head's share of a
 * decode step is measured on its own. Like a ternary GEMV it streams its
 * weights from memory (copies up to 256 MiB, or --bw-mib's buffer: bn_bench_gemv_copies). */
#include "bench.h"
#include "cpu.h"
#include "head_encode.h"
#include "kern_head.h"
#include "pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct hjob {
    bn_head_fn fn;
    const uint8_t *w;
    size_t copies, stride, rows, d;
    const float *h;
    float *y;
    long calls;
} hjob;

static void head_run(void *arg, int ith, int nth)
{
    hjob *j = arg;
    size_t r0 = j->rows * (size_t)ith / (size_t)nth, r1 = j->rows * (size_t)(ith + 1) / (size_t)nth;
    for (long c = 0; c < j->calls && r0 < r1; c++)
        j->fn(j->w + (size_t)c % j->copies * j->stride, j->rows, j->d, r0, r1, j->h, 1, j->y, j->rows);
}

/* One random row encoded in the type, repeated: valid data of every type
 * without an encoder per row. */
static int fill(uint32_t type, uint8_t *w, size_t rows, size_t d, uint64_t total, uint64_t *rng)
{
    float *x = malloc(d * sizeof *x);
    uint8_t *row = malloc(4 * d + 64);
    if (!x || !row) {
        free(x), free(row);
        return -1;
    }
    for (size_t i = 0; i < d; i++)
        x[i] = (float)((double)(bn_bench_rand(rng) >> 11) / 9007199254740992.0 - 0.5) * 0.04f;
    size_t rb = (size_t)((total - (type == BN_I8 ? 4 * rows : 0)) / rows);
    float scale = 1;
    for (size_t i = 0; i < d; i++) {
        if (type == BN_F32)
            memcpy(row + 4 * i, &x[i], 4);
        else if (type == BN_F16 || type == BN_BF16) {
            uint16_t v = type == BN_F16 ? bn_f32_to_f16(x[i]) : bn_f32_to_bf16(x[i]);
            memcpy(row + 2 * i, &v, 2);
        }
    }
    if (type == BN_I8)
        scale = bn_i8_encode_row(x, d, (int8_t *)row);
    else if (type == BN_Q6)
        bn_q6_encode_row(x, d, row);
    else if (type == BN_Q4)
        bn_q4_encode_row(x, d, row);
    else if (type == BN_Q5)
        bn_q5_encode_row(x, d, row);
    for (size_t r = 0; r < rows; r++)
        memcpy(w + r * rb, row, rb);
    for (size_t r = 0; type == BN_I8 && r < rows; r++)
        memcpy(w + rows * rb + 4 * r, &scale, 4);
    free(x), free(row);
    return 0;
}

/* The head function of type in kernel set `set`'s instruction set (NULL:
 * the one the forward pass takes), or NULL where this CPU has none. */
static bn_head_fn head_impl(const char *set, uint32_t type, const bn_cpu *cpu)
{
    bn_cpu none, plain = *cpu;
    memset(&none, 0, sizeof none);
    plain.dotprod = 0;
    if (!set)
        return bn_head_find(type, cpu);
    if (!strcmp(set, "avx512") || !strcmp(set, "amx"))
        return bn_head_find_avx512(type, cpu);
    if (!strcmp(set, "avx2"))
        return bn_head_find_avx2(type, cpu);
    if (!strcmp(set, "neon"))
        return bn_head_find_neon(type, &plain);
    if (!strcmp(set, "dotprod"))
        return cpu->dotprod ? bn_head_find_neon(type, cpu) : NULL;
    return !strcmp(set, "ref") ? bn_head_find(type, &none) : NULL;
}

int bn_bench_heads(const bn_bench_opts *o, const bn_bench_machine *mc, bn_pool *pool, int threads, const char *set,
                   bn_bench_rows *rows, bn_err *e)
{
    const bn_shape *s = o->n_synth ? o->synth[0] : bn_shape_find("2b4t");
    static const uint32_t types[] = {BN_F16, BN_BF16, BN_F32, BN_I8, BN_Q6, BN_Q5, BN_Q4};
    bn_cpu cpu;
    bn_cpu_detect(&cpu);
    size_t V = s->n_vocab, d = s->n_embd;
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        uint32_t type = types[ti];
        const char *why;
        bn_head_fn fn = head_impl(set, type, &cpu);
        uint64_t shape[2] = {V, d}, total = bn_type_size(type, 2, shape);
        if (!fn || !total || !bn_head_type_ok(type, d, &why))
            continue;
        size_t stride = (size_t)(total + 63) / 64 * 64;
        size_t copies = bn_bench_gemv_copies(o, stride);
        uint8_t *w = malloc(stride * copies);
        float *h = malloc(d * sizeof *h), *y = malloc(V * sizeof *y);
        uint64_t rng = o->seed ^ type;
        if (!w || !h || !y || fill(type, w, V, d, total, &rng)) {
            free(w), free(h), free(y);
            return bn_fail_code(e, BN_E_NOMEM, "head: out of memory for a %zux%zu %s matrix", V, d, bn_type_name(type));
        }
        for (size_t c = 1; c < copies; c++)
            memcpy(w + c * stride, w, total);
        for (size_t i = 0; i < d; i++)
            h[i] = (float)((double)(bn_bench_rand(&rng) >> 11) / 9007199254740992.0 - 0.5);
        hjob j = {fn, w, copies, stride, V, d, h, y, 1};
        for (;;) { /* warm-up and calibration: about sample_s per sample */
            double t0 = bn_bench_now();
            bn_pool_run(pool, head_run, &j);
            double dt = bn_bench_now() - t0;
            if (dt > o->sample_s || j.calls > (1L << 30))
                break;
            j.calls = dt < 1e-6 ? j.calls * 16 : (long)(j.calls * 1.2 * o->sample_s / dt) + 1;
        }
        bn_bench_row *r = bn_bench_row_add(rows);
        if (!r) {
            free(w), free(h), free(y);
            return bn_fail_code(e, BN_E_NOMEM, "out of memory");
        }
        r->kind = BN_ROW_KERNEL;
        snprintf(r->layout, sizeof r->layout, "%s", bn_type_name(type));
        snprintf(r->kernel, sizeof r->kernel, "head%s%s", set ? "-" : "", set ? set : "");
        r->threads = threads;
        snprintf(r->test, sizeof r->test, "gemv");
        snprintf(r->what, sizeof r->what, "output %zux%zu", V, d);
        for (int rep = 0; rep < o->reps; rep++) {
            double t0 = bn_bench_now();
            bn_pool_run(pool, head_run, &j);
            r->samples[r->n++] = (double)j.calls / (bn_bench_now() - t0);
        }
        double ops = 2.0 * (double)V * (double)d;
        r->bytes_per = (double)total;
        r->ops_per = ops;
        r->bw_gbps = bn_bench_bw_at(mc, threads);
        bn_bench_stats(r);
        bn_bench_roofline(r);
        for (int i = 0; i < r->n; i++)
            r->samples[i] *= ops / 1e9;
        bn_bench_stats(r);
        snprintf(r->unit, sizeof r->unit, "GOPS");
        free(w), free(h), free(y);
        if (o->verbose)
            fprintf(stderr, "%s: head %s t=%d: %.2f GOPS\n", o->prog, r->layout, threads, r->median);
    }
    return 0;
}
