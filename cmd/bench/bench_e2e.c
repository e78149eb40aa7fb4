/* bench_e2e.c — end-to-end prefill (pp) and decode (tg) through the real
 * forward pass: bn_model_load, bn_ctx_new, bn_ctx_eval, as bn-infer runs
 * them, never a copy of the forward pass.
 *
 * Each test follows llama-bench: a warm-up (the whole prompt for pp, one
 * token for tg), then every repetition starts from an empty KV cache. pp
 * evaluates the prompt in one call, which the forward pass splits into
 * batches of BN_KERN_MAX_N (real batched prefill, not bitnet.cpp
 * e2e_benchmark's -b 1); logits are computed for the last token only. tg
 * evaluates n tokens one at a time from position 0, with logits each time.
 * Token ids are pseudo-random (fixed seed): speed does not depend on them. */
#include "bench.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct model_info {
    char name[64];
    double size, params, load_s, ttft_s;
    const char *layout_hint;
} model_info;

static int test_one(const bn_bench_opts *o, const bn_bench_machine *mc, const bn_rapl *rapl, bn_ctx *ctx,
                    const bn_model *m, const model_info *mi, int pp, uint32_t ntok, int threads, const uint32_t *ids,
                    float *logits, bn_bench_rows *rows, bn_err *e)
{
    bn_bench_row *r = bn_bench_row_add(rows);
    if (!r)
        return bn_fail_code(e, BN_E_NOMEM, "out of memory");
    r->kind = BN_ROW_E2E;
    snprintf(r->model, sizeof r->model, "%s", mi->name);
    r->size = mi->size;
    r->params = mi->params;
    bn_bench_layout_name(m->kern->layout, r->layout, sizeof r->layout);
    snprintf(r->kernel, sizeof r->kernel, "%s", m->kern->name);
    r->threads = threads;
    snprintf(r->test, sizeof r->test, "%s%u", pp ? "pp" : "tg", ntok);
    snprintf(r->unit, sizeof r->unit, "t/s");
    r->load_s = mi->load_s;
    r->ttft_s = mi->ttft_s;
    for (int rep = -1; rep < o->reps; rep++) {
        /* rep -1 is the warm-up, as llama-bench does it. */
        uint32_t n = rep < 0 && !pp ? 1 : ntok;
        double before[BN_RAPL_MAX], after[BN_RAPL_MAX];
        int have_e = rep >= 0 && !bn_rapl_sample(rapl, before);
        bn_ctx_truncate(ctx, 0);
        double t0 = bn_bench_now();
        if (pp) {
            if (bn_ctx_eval(ctx, ids, n, logits, 0, e))
                return -1;
        } else {
            for (uint32_t i = 0; i < n; i++)
                if (bn_ctx_eval(ctx, ids + i, 1, logits, 0, e))
                    return -1;
        }
        double dt = bn_bench_now() - t0;
        if (rep < 0)
            continue;
        r->samples[r->n++] = n / dt;
        if (have_e && !bn_rapl_sample(rapl, after)) {
            double j = bn_rapl_delta(rapl, before, after) / n;
            r->joules_per = isnan(r->joules_per) ? j / o->reps : r->joules_per + j / o->reps;
        }
    }
    if (!isfinite(logits[0]))
        return bn_fail(e, "%s: the forward pass produced a non-finite logit", bn_bench_shown_name(m, mi->name));
    bn_bench_cost c;
    bn_bench_model_cost(m, o->kv_f16, &c);
    double kv_avg = c.kv_per_pos * (ntok + 1) / 2.0;
    if (pp) {
        /* Weights are read once per batch; the int8 work is per token. */
        double batch = ntok < BN_KERN_MAX_N ? ntok : BN_KERN_MAX_N;
        r->bytes_per = c.ternary_bytes / batch + c.embd_row + kv_avg;
        r->ops_per = 2 * c.ternary_macs;
    } else {
        r->bytes_per = c.ternary_bytes + c.head_bytes + c.embd_row + c.norm_bytes + kv_avg;
        r->ops_per = 2 * c.ternary_macs;
    }
    r->bw_gbps = bn_bench_bw_at(mc, threads);
    r->peak_gops = bn_bench_peak_at(mc, threads);
    r->peak_rss = bn_bench_rss_peak();
    bn_bench_stats(r);
    bn_bench_roofline(r);
    if (o->verbose)
        fprintf(stderr, "%s: %s %s/%s t=%d %s: %.2f t/s\n", o->prog, mi->name, r->layout, r->kernel, threads,
                r->test, r->median);
    return 0;
}

static double model_params(const bn_model *m)
{
    double p = 0;
    for (size_t i = 0; i < m->src.n_tensors; i++) {
        const bn_tensor *t = &m->src.tensors[i];
        double n = 1;
        for (uint32_t d = 0; d < t->ndim; d++)
            n *= (double)t->shape[d];
        p += n;
    }
    return p;
}

/* Positions one sequence needs: the longest test (batched: the longest
 * prompt and generation, which follow each other). */
static uint32_t ctx_needed(const bn_bench_opts *o)
{
    uint32_t p = 1, g = 1;
    for (size_t i = 0; i < o->n_pp; i++)
        p = o->pp[i] > p ? o->pp[i] : p;
    for (size_t i = 0; i < o->n_tg; i++)
        g = o->tg[i] > g ? o->tg[i] : g;
    uint32_t v = 0; /* --verify passes follow a context of the first -p tokens */
    for (size_t i = 0; i < o->n_verify; i++)
        v = o->pp[0] + o->verify[i] > v ? o->pp[0] + o->verify[i] : v;
    /* (--parallel with --prompt-file: the texts, checked where they are read) */
    uint32_t n = o->n_par ? (o->n_prompts ? 1 : p + g) : p > g ? p : g;
    return v > n ? v : n;
}

/* Token ids the tests read: one sequence's, or all N of the largest
 * batched test's. */
static size_t ids_needed(const bn_bench_opts *o)
{
    uint64_t b = bn_bench_batched_positions(o), n = ctx_needed(o);
    return (size_t)(b > n ? b : n);
}

/* Every test at every thread count on one loaded model, unless its
 * kernel set (-k's name resolved, "auto" too) is among the ran[n_ran]
 * sets this file already ran with: -k auto,avx512 measures avx512 once. */
static int run_model(const bn_bench_opts *o, const bn_bench_machine *mc, const bn_rapl *rapl, const char *path,
                     const char *kernel, const char *label, char (*ran)[32], size_t *n_ran, bn_bench_rows *rows,
                     bn_err *e)
{
    bn_model m;
    model_info mi = {0};
    bn_bench_rss_reset();
    double t0 = bn_bench_now();
    if (bn_model_load(&m, path, kernel, e))
        return -1;
    for (size_t i = 0; i < *n_ran; i++)
        if (!strcmp(ran[i], m.kern->name)) {
            bn_model_free(&m);
            return 0;
        }
    snprintf(ran[(*n_ran)++], sizeof ran[0], "%s", m.kern->name);
    if (!o->mmap_only && bn_model_to_memory(&m, e) < 0) {
        bn_model_free(&m);
        return -1;
    }
    mi.load_s = bn_bench_now() - t0;
    snprintf(mi.name, sizeof mi.name, "%s", label);
    mi.size = (double)bn_model_weight_bytes(&m);
    mi.params = model_params(&m);
    uint32_t n_ctx = ctx_needed(o);
    size_t n_ids = ids_needed(o);
    int rc = -1;
    uint32_t *ids = malloc(n_ids * sizeof *ids);
    float *logits = malloc((size_t)m.hp.n_vocab * sizeof *logits);
    if (!ids || !logits) {
        bn_fail_code(e, BN_E_NOMEM, "out of memory");
        goto done;
    }
    if (n_ctx > m.hp.n_ctx) {
        bn_fail(e, "%s: a test needs %u positions, the model's context is %u", bn_bench_shown_name(&m, label), n_ctx,
                m.hp.n_ctx);
        goto done;
    }
    uint64_t rng = o->seed;
    for (size_t i = 0; i < n_ids; i++)
        ids[i] = (uint32_t)(bn_bench_rand(&rng) % m.hp.n_vocab);
    /* (--parallel with --prompt-file: the texts' batched rows instead) */
    for (size_t ti = 0; ti < o->n_threads && o->n_par && !o->n_prompts; ti++)
        if (bn_bench_batched(o, mc, &m, label, mi.size, mi.params, mi.load_s, o->threads[ti], ids, rows, e))
            goto done;
    for (size_t ti = 0; ti < o->n_threads && !o->n_par; ti++) {
        bn_ctx_opts co = {.n_ctx = n_ctx, .kv_f16 = o->kv_f16, .n_threads = o->threads[ti]};
        double tc = bn_bench_now();
        bn_ctx *ctx = bn_ctx_new_opts(&m, &co, e);
        if (!ctx)
            goto done;
        if (ti == 0) {
            /* Time to first token: load, context, one token's logits. */
            if (bn_ctx_eval(ctx, ids, 1, logits, 0, e)) {
                bn_ctx_free(ctx);
                goto done;
            }
            mi.ttft_s = mi.load_s + bn_bench_now() - tc;
        }
        for (size_t i = 0; i < o->n_pp; i++)
            if (o->pp[i] && test_one(o, mc, rapl, ctx, &m, &mi, 1, o->pp[i], o->threads[ti], ids, logits, rows, e)) {
                bn_ctx_free(ctx);
                goto done;
            }
        for (size_t i = 0; i < o->n_tg; i++)
            if (o->tg[i] && test_one(o, mc, rapl, ctx, &m, &mi, 0, o->tg[i], o->threads[ti], ids, logits, rows, e)) {
                bn_ctx_free(ctx);
                goto done;
            }
        bn_ctx_free(ctx);
    }
    for (size_t ti = 0; ti < o->n_threads && (o->n_verify || o->n_prompts); ti++)
        if (bn_bench_spec(o, &m, label, o->threads[ti], ids, rows, e))
            goto done;
    /* Load time and TTFT are known only once the first context ran (the
     * batched rows' TTFT is their own: NaN, none, without a prompt) */
    for (size_t i = 0; i < rows->n && !o->n_par; i++)
        if (rows->v[i].kind == BN_ROW_E2E && !strcmp(rows->v[i].model, label) && isnan(rows->v[i].ttft_s))
            rows->v[i].ttft_s = mi.ttft_s;
    rc = 0;
done:
    free(ids);
    free(logits);
    bn_model_free(&m);
    return rc;
}

const char *bn_bench_given_name(const bn_bench_opts *o, const char *path)
{
    for (size_t i = 0; i < o->n_copies; i++)
        if (!strcmp(path, o->copy_path[i]))
            return o->copy_given[i];
    return path;
}

const char *bn_bench_model_label(const bn_bench_opts *o, const char *path, char *buf, size_t n)
{
    path = bn_bench_given_name(o, path);
    const char *b = strrchr(path, '/');
    b = b && b[1] ? b + 1 : path;
    snprintf(buf, n, "%.*s", (int)bn_bench_utf8_fit(b, n - 1), b);
    char *dot = strrchr(buf, '.');
    if (dot && dot != buf && (!strcmp(dot, ".bn") || !strcmp(dot, ".gguf")))
        *dot = 0;
    return buf;
}

int bn_bench_e2e(const bn_bench_opts *o, const bn_bench_machine *mc, const bn_rapl *rapl, bn_bench_rows *rows,
                 bn_err *e)
{
    static const char *const dflt[] = {"auto"};
    const char *const *knames = o->n_kernels ? o->kernels : dflt;
    size_t n_k = o->n_kernels ? o->n_kernels : 1;
    /* a file's layout is its own, so -k is checked by name here (the
     * synthetic shapes' sets are chosen, and checked, below) */
    if (o->n_models && bn_bench_check_kernel_names(knames, n_k, e))
        return -1;
    for (size_t mi = 0; mi < o->n_models; mi++) {
        char label[64], ran[BN_BENCH_MAX_LIST][32];
        size_t n_ran = 0;
        bn_bench_model_label(o, o->models[mi], label, sizeof label);
        for (size_t k = 0; k < n_k; k++) {
            /* A file's layout is its own: NAME:LAYOUT only narrows. */
            char name[64];
            snprintf(name, sizeof name, "%s", knames[k]);
            name[strcspn(name, ":")] = 0;
            if (run_model(o, mc, rapl, o->models[mi], name, label, ran, &n_ran, rows, e))
                return -1;
        }
    }
    const bn_kernels *sets[BN_BENCH_MAX_SETS];
    size_t n_sets = 0;
    if (o->n_synth && !(n_sets = bn_bench_select_kernels(knames, n_k, sets, BN_BENCH_MAX_SETS, e)))
        return -1;
    for (size_t si = 0; si < o->n_synth; si++) {
        const bn_shape *s = o->synth[si];
        bn_hparams hp;
        bn_shape_hparams(s, &hp);
        uint32_t n_ctx = ctx_needed(o);
        if (n_ctx > s->n_ctx)
            return bn_fail(e, "%s: a test needs %u positions, the shape's context is %u", s->name, n_ctx, s->n_ctx);
        /* The context's own memory: KV cache and scratch, per thread count. */
        double positions = o->n_par ? (double)bn_bench_batched_positions(o) : n_ctx;
        double kv = 2.0 * s->n_layer * positions * (double)s->n_head_kv * hp.head_dim * (o->kv_f16 ? 2 : 4);
        double scratch = (double)BN_KERN_MAX_N * 12 * (s->n_ff > s->n_embd ? s->n_ff : s->n_embd) * 4 +
                         (double)s->n_vocab * 4 * 2 + (double)bn_bench_max_par(o) * s->n_vocab * 4;
        for (size_t k = 0; k < n_sets; k++) {
            int seen = 0; /* one synthetic file per layout */
            for (size_t j = 0; j < k; j++)
                seen |= sets[j]->layout == sets[k]->layout;
            if (seen)
                continue;
            bn_synth sy;
            if (bn_synth_new(&sy, s, sets[k]->layout, (uint64_t)(kv + scratch), o->mem_limit, o->seed, e))
                return -1;
            if (o->verbose)
                fprintf(stderr, "%s: %s: generated %.2f GiB in %.1f s\n", o->prog, s->name,
                        (double)sy.file_bytes / (1 << 30), sy.gen_s);
            char label[64], ran[BN_BENCH_MAX_SETS][32]; /* (the sets are distinct already) */
            size_t n_ran = 0;
            snprintf(label, sizeof label, "synthetic %s", s->name);
            for (size_t j = k; j < n_sets; j++)
                if (sets[j]->layout == sets[k]->layout &&
                    run_model(o, mc, rapl, sy.path, sets[j]->name, label, ran, &n_ran, rows, e)) {
                    bn_synth_free(&sy);
                    return -1;
                }
            bn_synth_free(&sy);
        }
    }
    return 0;
}
