/* bench_batch.c — batched tests (bn-bench --parallel N,...), as
 * llama-batched-bench runs them: N sequences, each with its own prompt of
 * pp tokens, prefilled together in one call of bn_ctx_eval_batch (passes
 * of up to BN_KERN_MAX_N tokens, each weight read once per pass), then
 * tg decode steps, each one pass over one token of every sequence.
 *
 * Two rows per (N, pp, tg): "ppP xN", the prefill rate over all N prompts,
 * and "tgT xN", the aggregate decode rate (N x tg tokens over the decode
 * time; each sequence advances at 1/N of it, reported as per_seq). The
 * time to first token is the prefill's: every sequence has its first
 * token's logits when it ends. KV bytes are what the N sequences hold at
 * the end (paged: whole 64-position blocks). Every repetition starts from
 * empty sequences, after a warm-up pass of one token per sequence. */
#include "bench.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint64_t bn_bench_batched_positions(const bn_bench_opts *o)
{
    uint64_t most = 0;
    for (size_t a = 0; a < o->n_par; a++)
        for (size_t i = 0; i < o->n_pp; i++)
            for (size_t j = 0; j < o->n_tg; j++) {
                uint64_t n = (uint64_t)o->par[a] * (o->pp[i] + o->tg[j]);
                most = n > most ? n : most;
            }
    return most;
}

uint32_t bn_bench_max_par(const bn_bench_opts *o)
{
    uint32_t most = 0;
    for (size_t a = 0; a < o->n_par; a++)
        most = o->par[a] > most ? o->par[a] : most;
    return most;
}

/* One repetition's timings. */
typedef struct batch_run {
    double t_pp, t_tg, kv_bytes;
} batch_run;

/* Prefills N prompts of pp tokens (sequence s's prompt is ids from
 * s x (pp + tg)), then decodes tg tokens in each: the decode inputs are
 * the next ids of the same run, so no sampling cost is timed. */
static int run_once(bn_ctx *ctx, uint32_t N, uint32_t pp, uint32_t tg, const uint32_t *ids, bn_eval_tok *toks,
                    float *logits, batch_run *out, bn_err *e)
{
    uint32_t per = pp + tg;
    for (uint32_t s = 0; s < N; s++)
        bn_ctx_seq_truncate(ctx, (int)s, 0);
    size_t n = 0;
    for (uint32_t s = 0; s < N; s++)
        for (uint32_t i = 0; i < pp; i++)
            toks[n++] = (bn_eval_tok){.id = ids[(size_t)s * per + i], .seq = s, .pos = i, .logits = i + 1 == pp};
    double t0 = bn_bench_now();
    if (n && bn_ctx_eval_batch(ctx, toks, n, logits, e))
        return -1;
    double t1 = bn_bench_now();
    for (uint32_t i = 0; i < tg; i++) {
        for (uint32_t s = 0; s < N; s++)
            toks[s] = (bn_eval_tok){.id = ids[(size_t)s * per + pp + i], .seq = s, .pos = pp + i, .logits = 1};
        if (bn_ctx_eval_batch(ctx, toks, N, logits, e))
            return -1;
    }
    double t2 = bn_bench_now();
    out->t_pp = t1 - t0;
    out->t_tg = t2 - t1;
    out->kv_bytes = (double)bn_ctx_kv_used_bytes(ctx);
    return 0;
}

static double median_of(double *v, int n)
{
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

typedef struct row_base {
    const char *label;
    double size, params, load_s;
    const bn_model *m;
    int threads;
} row_base;

static bn_bench_row *new_row(bn_bench_rows *rows, const row_base *b, uint32_t N, const char *test, bn_err *e)
{
    bn_bench_row *r = bn_bench_row_add(rows);
    if (!r) {
        bn_fail_code(e, BN_E_NOMEM, "out of memory");
        return NULL;
    }
    r->kind = BN_ROW_E2E;
    snprintf(r->model, sizeof r->model, "%s", b->label);
    r->size = b->size;
    r->params = b->params;
    bn_bench_layout_name(b->m->kern->layout, r->layout, sizeof r->layout);
    snprintf(r->kernel, sizeof r->kernel, "%s", b->m->kern->name);
    r->threads = b->threads;
    r->n_seq = (int)N;
    snprintf(r->test, sizeof r->test, "%s", test);
    snprintf(r->unit, sizeof r->unit, "t/s");
    r->load_s = b->load_s;
    return r;
}

/* The two rows of one (N, pp, tg) test from its repetitions. */
static int add_rows(const bn_bench_opts *o, const bn_bench_machine *mc, const row_base *b, uint32_t N, uint32_t pp,
                    uint32_t tg, const batch_run *runs, bn_bench_rows *rows, bn_err *e)
{
    bn_bench_cost c;
    bn_bench_model_cost(b->m, o->kv_f16, &c);
    double ttft[BN_BENCH_MAX_REPS];
    for (int k = 0; k < o->reps; k++)
        ttft[k] = runs[k].t_pp;
    double ttft_s = pp ? median_of(ttft, o->reps) : NAN;
    char test[48];
    for (int part = 0; part < 2; part++) {
        uint32_t len = part ? tg : pp;
        if (!len)
            continue;
        snprintf(test, sizeof test, "%s%u x%u", part ? "tg" : "pp", len, N);
        bn_bench_row *r = new_row(rows, b, N, test, e);
        if (!r)
            return -1;
        for (int k = 0; k < o->reps; k++)
            r->samples[r->n++] = (double)N * len / (part ? runs[k].t_tg : runs[k].t_pp);
        r->ttft_s = ttft_s;
        r->kv_bytes = runs[o->reps - 1].kv_bytes;
        if (part) {
            /* A decode pass reads every weight once for N tokens; each
             * token reads its own sequence's K/V (on average the middle
             * of its decode range). */
            double kv_avg = c.kv_per_pos * (pp + (tg + 1) / 2.0);
            r->bytes_per = (c.ternary_bytes + c.head_bytes + c.norm_bytes) / N + c.embd_row + kv_avg;
        } else {
            double batch = (double)N * pp < BN_KERN_MAX_N ? (double)N * pp : BN_KERN_MAX_N;
            r->bytes_per = c.ternary_bytes / batch + c.embd_row + c.kv_per_pos * (pp + 1) / 2.0;
        }
        r->ops_per = 2 * c.ternary_macs;
        r->bw_gbps = bn_bench_bw_at(mc, b->threads);
        r->peak_gops = bn_bench_peak_at(mc, b->threads);
        r->peak_rss = bn_bench_rss_peak();
        bn_bench_stats(r);
        bn_bench_roofline(r);
        r->per_seq = r->median / N;
        if (o->verbose)
            fprintf(stderr, "%s: %s %s/%s t=%d %s: %.2f t/s (%.2f per sequence)\n", o->prog, b->label, r->layout,
                    r->kernel, b->threads, r->test, r->median, r->per_seq);
    }
    return 0;
}

static int one_test(const bn_bench_opts *o, const bn_bench_machine *mc, const row_base *b, uint32_t N, uint32_t pp,
                    uint32_t tg, const uint32_t *ids, bn_bench_rows *rows, bn_err *e)
{
    bn_ctx_opts co = {.n_ctx = pp + tg, .kv_f16 = o->kv_f16, .n_threads = b->threads, .n_seq = N};
    bn_ctx *ctx = bn_ctx_new_opts(b->m, &co, e);
    if (!ctx)
        return -1;
    int rc = -1;
    size_t n_tok = (size_t)N * (pp > 1 ? pp : 1);
    bn_eval_tok *toks = malloc(n_tok * sizeof *toks);
    float *logits = malloc((size_t)N * b->m->hp.n_vocab * sizeof *logits);
    batch_run *runs = calloc((size_t)o->reps, sizeof *runs);
    if (!toks || !logits || !runs) {
        bn_fail_code(e, BN_E_NOMEM, "out of memory");
        goto done;
    }
    for (uint32_t s = 1; s < N; s++)
        if (bn_ctx_seq_new(ctx, e) < 0)
            goto done;
    /* Warm-up: one token in every sequence (pages of the KV blocks, the
     * scratch and the weights are touched before timing). */
    batch_run warm;
    if (run_once(ctx, N, 1, 0, ids, toks, logits, &warm, e))
        goto done;
    for (int k = 0; k < o->reps; k++)
        if (run_once(ctx, N, pp, tg, ids, toks, logits, &runs[k], e))
            goto done;
    if (!isfinite(logits[0])) {
        bn_fail(e, "%s: the forward pass produced a non-finite logit", bn_bench_shown_name(b->m, b->label));
        goto done;
    }
    rc = add_rows(o, mc, b, N, pp, tg, runs, rows, e);
done:
    free(toks);
    free(logits);
    free(runs);
    bn_ctx_free(ctx);
    return rc;
}

int bn_bench_batched(const bn_bench_opts *o, const bn_bench_machine *mc, const bn_model *m, const char *label,
                     double size, double params, double load_s, int threads, const uint32_t *ids, bn_bench_rows *rows,
                     bn_err *e)
{
    row_base b = {.label = label, .size = size, .params = params, .load_s = load_s, .m = m, .threads = threads};
    for (size_t i = 0; i < o->n_pp; i++)
        for (size_t j = 0; j < o->n_tg; j++)
            for (size_t a = 0; a < o->n_par; a++) {
                if (!o->pp[i] && !o->tg[j])
                    continue;
                if (one_test(o, mc, &b, o->par[a], o->pp[i], o->tg[j], ids, rows, e))
                    return -1;
            }
    return 0;
}
