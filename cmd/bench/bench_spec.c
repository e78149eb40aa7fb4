/* bench_spec.c — speculative decoding's rows (issue 16), in the table of
 * "source | threads | test | what | value | unit" rows:
 *
 * --verify K,...: the time of one verify pass of K tokens of one sequence
 * (bn_ctx_eval with a logits row per token, as generate.c's prompt lookup
 * runs it) after a context of the first -p tokens, beside one plain
 * decode step ("pass 1"); "what" gives the ratio to the decode step. On a
 * model that streams its weights from memory the ratio is what a draft
 * of K-1 tokens must save: a pass of K tokens that yields T tokens pays
 * off when T exceeds the ratio. The passes of every K alternate inside
 * each repetition, so drift of the machine hits them alike.
 *
 * --prompt-file FILE... with --lookup N (or --draft MODEL): greedy
 * generation of the first -n tokens after each text, plain and with
 * prompt lookup (or the draft model's guesses), alternating per
 * repetition; t/s of each (generated tokens over generation time, as
 * bn-infer -v, the draft model's steps included), the drafts' acceptance,
 * tokens per weight pass of the model and the speed-up. The two outputs
 * must be the same bytes (else an error).
 *
 * --prompt-file with --parallel N,...: the same in the batch: N greedy
 * requests at once through the batch engine (bn_batch, as bn-infer
 * --parallel runs them), request i answering text i mod the number of
 * texts, plain and with lookup (or the draft model) alternating per
 * repetition. The aggregate decode t/s counts the tokens of all N from
 * the step that gave the last request its first token (every prompt
 * prefilled) to the end; acceptance and tokens per weight pass are over
 * the requests' speculative decode passes. Every request's tokens must
 * be the same both ways (else an error). */
#include "batch.h"
#include "bench.h"
#include "generate.h"
#include "tokenizer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { PASSES = 4 }; /* passes of each K per repetition; their mean is a sample */

/* A row of m's (its layout and kernel set, as the e2e rows name them, so
 * that --compare pairs each set's rows with its own). */
static bn_bench_row *spec_row(bn_bench_rows *rows, const bn_model *m, const char *label, int threads,
                              const char *unit, bn_err *e)
{
    bn_bench_row *r = bn_bench_row_add(rows);
    if (!r) {
        bn_fail_code(e, BN_E_NOMEM, "out of memory");
        return NULL;
    }
    r->kind = BN_ROW_TEXT;
    snprintf(r->model, sizeof r->model, "%s", label);
    bn_bench_layout_name(m->kern->layout, r->layout, sizeof r->layout);
    snprintf(r->kernel, sizeof r->kernel, "%s", m->kern->name);
    r->threads = threads;
    snprintf(r->unit, sizeof r->unit, "%s", unit);
    return r;
}

/* A speculative row's note: its input, the share of guesses kept, tokens
 * a pass and the speed-up over the plain row (when both were timed). */
static void spec_what(bn_bench_row *r, const char *input, double kept_pct, double per_pass, const bn_bench_row *plain)
{
    int n = snprintf(r->what, sizeof r->what, "%.*s: %.0f%% kept, %.2f tok/pass", (int)bn_bench_utf8_fit(input, 40), input,
                     kept_pct, per_pass);
    double x = r->median / plain->median;
    if (isfinite(x) && n > 0 && (size_t)n < sizeof r->what)
        snprintf(r->what + n, sizeof r->what - (size_t)n, ", %.2fx", x);
}

static int verify_rows(const bn_bench_opts *o, const bn_model *m, const char *label, int threads, const uint32_t *ids,
                       bn_bench_rows *rows, bn_err *e)
{
    uint32_t depth = o->pp[0], kmax = 1, ks[BN_BENCH_MAX_LIST + 1] = {1};
    size_t nk = 1;
    for (size_t i = 0; i < o->n_verify; i++) {
        ks[nk++] = o->verify[i];
        kmax = o->verify[i] > kmax ? o->verify[i] : kmax;
    }
    bn_ctx_opts co = {.n_ctx = depth + kmax, .kv_f16 = o->kv_f16, .n_threads = threads};
    bn_ctx *ctx = bn_ctx_new_opts(m, &co, e);
    float *logits = malloc((size_t)kmax * m->hp.n_vocab * sizeof *logits);
    double *t = calloc(nk * (size_t)o->reps, sizeof *t);
    int rc = -1;
    if (!ctx || !logits || !t) {
        if (ctx)
            bn_fail_code(e, BN_E_NOMEM, "out of memory");
        goto done;
    }
    if (depth && bn_ctx_eval(ctx, ids, depth, NULL, 0, e))
        goto done;
    for (int rep = -1; rep < o->reps; rep++) /* rep -1: the warm-up */
        for (int p = 0; p < PASSES; p++)
            for (size_t i = 0; i < nk; i++) {
                double t0 = bn_bench_now();
                if (bn_ctx_eval(ctx, ids + depth, ks[i], logits, BN_EVAL_ALL_LOGITS, e))
                    goto done;
                double dt = bn_bench_now() - t0;
                bn_ctx_truncate(ctx, depth);
                if (rep >= 0)
                    t[i * (size_t)o->reps + (size_t)rep] += dt * 1e3 / PASSES;
            }
    double step = NAN;
    for (size_t i = 0; i < nk; i++) {
        bn_bench_row *r = spec_row(rows, m, label, threads, "ms", e);
        if (!r)
            goto done;
        snprintf(r->test, sizeof r->test, "pass %u @%u", ks[i], depth);
        for (int k = 0; k < o->reps; k++)
            r->samples[r->n++] = t[i * (size_t)o->reps + (size_t)k];
        bn_bench_stats(r);
        if (i == 0)
            step = r->median;
        if (i)
            snprintf(r->what, sizeof r->what, "verify pass: %.2fx a decode step", r->median / step);
        else
            snprintf(r->what, sizeof r->what, "decode step");
        if (o->verbose)
            fprintf(stderr, "%s: %s t=%d %s: %.3f ms (%s)\n", o->prog, label, threads, r->test, r->median, r->what);
    }
    rc = 0;
done:
    free(t);
    free(logits);
    bn_ctx_free(ctx);
    return rc;
}

/* One greedy answer to prompt; its output bytes in *out (malloc'ed). */
static int generate(bn_ctx *ctx, const bn_model *m, const bn_gen_opts *go, const bn_tokens *prompt, char **out,
                    size_t *len, bn_gen_stats *st, bn_err *e)
{
    *out = NULL;
    *len = 0;
    FILE *fp = open_memstream(out, len);
    if (!fp)
        return bn_fail_code(e, BN_E_NOMEM, "out of memory");
    bn_ctx_truncate(ctx, 0);
    if (go->draft)
        bn_ctx_truncate(go->draft, 0);
    bn_gen *g = bn_gen_new(m, ctx, NULL, go, fp, 0, e);
    int rc = !g || bn_gen_answer(g, prompt->ids, prompt->n, e) ? -1 : 0;
    if (g)
        bn_gen_get_stats(g, st);
    bn_gen_free(g);
    fclose(fp);
    return rc;
}

/* --draft MODEL, loaded with m's kernels: its vocabulary and tokenizer
 * must be m's. */
static int load_draft(const bn_bench_opts *o, const bn_model *m, const bn_tokenizer *tok, bn_model *dm, bn_err *e)
{
    if (bn_model_load(dm, o->draft, m->kern->name, e))
        return -1;
    if (!o->mmap_only && bn_model_to_memory(dm, e) < 0) {
        bn_model_free(dm);
        return -1;
    }
    bn_tokenizer *dt = dm->hp.n_vocab == m->hp.n_vocab ? bn_tokenizer_from_model(dm, e) : NULL;
    int same = dt && bn_tokenizer_hash(dt) == bn_tokenizer_hash(tok);
    bn_tokenizer_free(dt);
    if (!same) {
        bn_fail(e, "%s: not the model's vocabulary and tokenizer: a draft needs them", o->draft);
        bn_model_free(dm);
        return -1;
    }
    return 0;
}

/* One batched run for batch_rows: N requests, request i answering
 * prompts[i % n_prompts] greedily for tg tokens, plain or with spec;
 * their tokens in out (tg per request, n_out[i] of them), the decode
 * time and tokens (from the step that gave every request its first
 * token, or ended it, to the end) and the batch's statistics. */
typedef struct batch_run {
    double t_dec;
    uint64_t n_dec;
    bn_batch_stats st;
} batch_run;

static int batch_once(const bn_bench_opts *o, bn_ctx *ctx, bn_ctx *dctx, const bn_tokens *prompts, uint32_t N,
                      uint32_t tg, int spec, uint32_t *out, size_t *n_out, batch_run *run, bn_err *e)
{
    /* the batch makes sequences 1.. itself: every one freed (0 emptied) */
    for (uint32_t i = 0; i < bn_ctx_n_seq(ctx); i++)
        bn_ctx_seq_free(ctx, (int)i);
    for (uint32_t i = 0; dctx && i < bn_ctx_n_seq(dctx); i++)
        bn_ctx_seq_free(dctx, (int)i);
    bn_batch_opts bo = {.draft = spec ? dctx : NULL};
    bn_batch *b = bn_batch_new(ctx, &bo, e);
    if (!b)
        return -1;
    int rc = -1;
    for (uint32_t i = 0; i < N; i++) {
        const bn_tokens *p = &prompts[i % o->n_prompts];
        bn_request r = {.prompt = p->ids, .n_prompt = p->n, .n_predict = (int32_t)tg, .tag = i};
        bn_sampler_defaults(&r.samp);
        r.samp.temp = 0;
        if (spec) {
            r.lookup = o->draft ? 0 : o->lookup;
            r.draft = o->draft != NULL;
            r.draft_max = o->draft_max;
        }
        if (bn_batch_submit(b, &r, e))
            goto done;
        n_out[i] = 0;
    }
    uint32_t started = 0;
    double t_first = NAN;
    run->n_dec = 0;
    while (bn_batch_pending(b)) {
        const bn_batch_event *ev;
        size_t n_ev;
        if (bn_batch_step(b, &ev, &n_ev, e))
            goto done;
        for (size_t k = 0; k < n_ev; k++) {
            uint64_t t = ev[k].tag;
            if (ev[k].finish == BN_FIN_ERROR) {
                bn_fail(e, "request %llu: %s", (unsigned long long)t, ev[k].error);
                goto done;
            }
            if (ev[k].token != BN_BATCH_NO_TOKEN && n_out[t] < tg) {
                out[t * tg + n_out[t]++] = ev[k].token;
                run->n_dec += !isnan(t_first);
            }
            started += n_out[t] == 1 || (!n_out[t] && ev[k].finish);
        }
        if (started >= N && isnan(t_first))
            t_first = bn_bench_now();
    }
    run->t_dec = bn_bench_now() - t_first;
    bn_batch_get_stats(b, &run->st);
    rc = 0;
done:
    bn_batch_free(b);
    return rc;
}

static int batch_rows(const bn_bench_opts *o, const bn_model *m, bn_model *dm, const char *label, int threads,
                      const bn_tokens *prompts, bn_bench_rows *rows, bn_err *e)
{
    uint32_t tg = o->tg[0], most = 0, N_max = bn_bench_max_par(o);
    for (size_t f = 0; f < o->n_prompts; f++)
        most = prompts[f].n > most ? (uint32_t)prompts[f].n : most;
    uint64_t want = (uint64_t)most + tg + (o->draft_max ? o->draft_max : 8);
    uint32_t n_ctx = want < m->hp.n_ctx ? (uint32_t)want : m->hp.n_ctx;
    uint32_t *out[2] = {malloc((size_t)N_max * tg * sizeof **out), malloc((size_t)N_max * tg * sizeof **out)};
    size_t *n_out[2] = {calloc(N_max, sizeof **n_out), calloc(N_max, sizeof **n_out)};
    bn_ctx *ctx = NULL, *dctx = NULL;
    int rc = -1;
    if (!out[0] || !out[1] || !n_out[0] || !n_out[1]) {
        bn_fail_code(e, BN_E_NOMEM, "out of memory");
        goto done;
    }
    const char *mode = o->draft ? "draft" : "lookup";
    for (size_t a = 0; a < o->n_par; a++) {
        uint32_t N = o->par[a];
        char texts[256] = ""; /* the texts the N requests answer */
        for (size_t f = 0; f < o->n_prompts && f < N; f++) {
            const char *base = strrchr(o->prompts[f], '/');
            size_t at = strlen(texts);
            snprintf(texts + at, sizeof texts - at, "%s%s", f ? "," : "", base ? base + 1 : o->prompts[f]);
        }
        bn_ctx_free(ctx);
        bn_ctx_free(dctx);
        dctx = NULL;
        bn_ctx_opts co = {.n_ctx = n_ctx, .kv_f16 = o->kv_f16, .n_threads = threads, .n_seq = N};
        if (!(ctx = bn_ctx_new_opts(m, &co, e)))
            goto done;
        if (dm) {
            co.n_ctx = n_ctx < dm->hp.n_ctx ? n_ctx : dm->hp.n_ctx;
            if (!(dctx = bn_ctx_new_opts(dm, &co, e)))
                goto done;
        }
        bn_bench_row *r[2];
        for (int sp = 0; sp < 2; sp++) {
            if (!(r[sp] = spec_row(rows, m, label, threads, "t/s", e)))
                goto done;
            r[sp]->n_seq = (int)N;
            if (!sp)
                snprintf(r[sp]->test, sizeof r[sp]->test, "tg%u x%u plain", tg, N);
            else if (!o->draft)
                snprintf(r[sp]->test, sizeof r[sp]->test, "tg%u x%u lookup %u/%u", tg, N, o->lookup,
                         o->draft_max ? o->draft_max : 8);
            else
                snprintf(r[sp]->test, sizeof r[sp]->test, "tg%u x%u draft %u", tg, N, o->draft_max ? o->draft_max : 8);
        }
        batch_run run[2];
        for (int rep = -1; rep < o->reps; rep++) /* rep -1: the warm-up */
            for (int sp = 0; sp < 2; sp++) {
                if (batch_once(o, ctx, dctx, prompts, N, tg, sp, out[sp], n_out[sp], &run[sp], e))
                    goto done;
                if (rep >= 0 && run[sp].t_dec > 0 && run[sp].n_dec)
                    r[sp]->samples[r[sp]->n++] = (double)run[sp].n_dec / run[sp].t_dec;
                for (uint32_t i = 0; sp && i < N; i++)
                    if (n_out[0][i] != n_out[1][i] || memcmp(out[0] + (size_t)i * tg, out[1] + (size_t)i * tg,
                                                             n_out[0][i] * sizeof **out)) {
                        bn_fail(e, "%s: %s changed request %u's greedy answer in the batch (a bug)",
                                o->prompts[i % o->n_prompts], o->draft ? "the draft model" : "prompt lookup", i);
                        goto done;
                    }
            }
        for (int sp = 0; sp < 2; sp++) {
            bn_bench_stats(r[sp]);
            r[sp]->per_seq = r[sp]->median / N;
        }
        const bn_batch_stats *st = &run[1].st;
        snprintf(r[0]->what, sizeof r[0]->what, "%.*s", (int)bn_bench_utf8_fit(texts, 40), texts);
        spec_what(r[1], texts, st->drafted ? 100.0 * st->accepted / st->drafted : 0.0,
                  st->spec_passes ? (double)st->spec_tokens / st->spec_passes : 0.0, r[0]);
        if (o->verbose)
            fprintf(stderr,
                    "%s: %s t=%d x%u: plain %.2f t/s, %s %.2f t/s; %llu drafted, %llu kept, %llu tokens in %llu "
                    "passes, %llu batch passes (plain %llu)\n",
                    o->prog, label, threads, N, r[0]->median, mode, r[1]->median, (unsigned long long)st->drafted,
                    (unsigned long long)st->accepted, (unsigned long long)st->spec_tokens,
                    (unsigned long long)st->spec_passes, (unsigned long long)st->passes,
                    (unsigned long long)run[0].st.passes);
    }
    rc = 0;
done:
    free(out[0]);
    free(out[1]);
    free(n_out[0]);
    free(n_out[1]);
    bn_ctx_free(ctx);
    bn_ctx_free(dctx);
    return rc;
}

/* --prompt-file text f's tokens; it and -n tokens must fit the context. */
static int read_prompt(const bn_bench_opts *o, const bn_model *m, bn_tokenizer *tok, size_t f, bn_tokens *prompt,
                       bn_err *e)
{
    const char *path = o->prompts[f];
    bn_tokens_clear(prompt);
    if (bn_tokenizer_encode(tok, o->prompt_text[f].data, o->prompt_text[f].size,
                            m->hp.add_bos && m->hp.bos_id >= 0 ? BN_ENC_BOS : 0, 0, prompt, e))
        return -1;
    if (!prompt->n || prompt->n + o->tg[0] > m->hp.n_ctx)
        return bn_fail(e, "%s: %zu tokens and %u to generate do not fit the context of %u", path, prompt->n, o->tg[0],
                       m->hp.n_ctx);
    return 0;
}

/* --parallel with --prompt-file: every text's tokens, then batch_rows. */
static int batch_texts(const bn_bench_opts *o, const bn_model *m, bn_model *dm, const char *label, int threads,
                       bn_tokenizer *tok, bn_bench_rows *rows, bn_err *e)
{
    bn_tokens prompts[BN_BENCH_MAX_LIST];
    memset(prompts, 0, sizeof prompts);
    int rc = 0;
    for (size_t f = 0; !rc && f < o->n_prompts; f++)
        rc = read_prompt(o, m, tok, f, &prompts[f], e);
    if (!rc)
        rc = batch_rows(o, m, dm, label, threads, prompts, rows, e);
    for (size_t f = 0; f < o->n_prompts; f++)
        bn_tokens_free(&prompts[f]);
    return rc;
}

static int lookup_rows(const bn_bench_opts *o, const bn_model *m, const char *label, int threads, bn_bench_rows *rows,
                       bn_err *e)
{
    bn_tokenizer *tok = bn_tokenizer_from_model(m, e);
    if (!tok) {
        char why[sizeof e->msg];
        snprintf(why, sizeof why, "%s", e->msg);
        return bn_fail(e, "%s: --prompt-file needs a model with a tokenizer (%s)", bn_bench_shown_name(m, label), why);
    }
    bn_model dm;
    if (o->draft && load_draft(o, m, tok, &dm, e)) {
        bn_tokenizer_free(tok);
        return -1;
    }
    uint32_t tg = o->tg[0];
    int rc = -1;
    bn_tokens prompt = {0};
    bn_ctx *ctx = NULL, *dctx = NULL;
    char *out[2] = {NULL, NULL};
    const char *mode = o->draft ? "draft" : "lookup";
    if (o->n_par) {
        rc = batch_texts(o, m, o->draft ? &dm : NULL, label, threads, tok, rows, e);
        goto done;
    }
    for (size_t f = 0; f < o->n_prompts; f++) {
        if (read_prompt(o, m, tok, f, &prompt, e))
            goto done;
        /* room for the answer and a pass of drafts past its end (drafts
         * never go past the context: fewer there, the same output) */
        uint64_t want = prompt.n + tg + (o->draft_max ? o->draft_max : 8);
        bn_ctx_free(ctx);
        bn_ctx_opts co = {.n_ctx = want < m->hp.n_ctx ? (uint32_t)want : m->hp.n_ctx, .kv_f16 = o->kv_f16,
                          .n_threads = threads};
        if (!(ctx = bn_ctx_new_opts(m, &co, e)))
            goto done;
        bn_ctx_free(dctx);
        dctx = NULL;
        if (o->draft) {
            co.n_ctx = co.n_ctx < dm.hp.n_ctx ? co.n_ctx : dm.hp.n_ctx;
            if (!(dctx = bn_ctx_new_opts(&dm, &co, e)))
                goto done;
        }
        bn_gen_opts go[2];
        memset(go, 0, sizeof go);
        for (int lk = 0; lk < 2; lk++) {
            go[lk].n_predict = (int32_t)tg;
            bn_sampler_defaults(&go[lk].samp);
            go[lk].samp.temp = 0;
            go[lk].lookup = lk ? o->lookup : 0;
            go[lk].draft_max = lk ? o->draft_max : 0;
            go[lk].no_pacing = o->no_pacing;
            go[lk].draft = lk ? dctx : NULL;
        }
        const char *base = strrchr(o->prompts[f], '/');
        base = base ? base + 1 : o->prompts[f];
        bn_bench_row *r[2];
        for (int lk = 0; lk < 2; lk++) {
            if (!(r[lk] = spec_row(rows, m, label, threads, "t/s", e)))
                goto done;
            snprintf(r[lk]->test, sizeof r[lk]->test, "tg%u %s", tg, lk ? mode : "plain");
            if (lk && !o->draft)
                snprintf(r[lk]->test, sizeof r[lk]->test, "tg%u lookup %u/%u%s", tg, o->lookup,
                         o->draft_max ? o->draft_max : 8, o->no_pacing ? " unpaced" : "");
            else if (lk)
                snprintf(r[lk]->test, sizeof r[lk]->test, "tg%u draft %u%s", tg, o->draft_max ? o->draft_max : 8,
                         o->no_pacing ? " unpaced" : "");
        }
        bn_gen_stats st[2];
        size_t len[2] = {0, 0};
        for (int rep = -1; rep < o->reps; rep++) /* rep -1: the warm-up */
            for (int lk = 0; lk < 2; lk++) {
                free(out[lk]);
                if (generate(ctx, m, &go[lk], &prompt, &out[lk], &len[lk], &st[lk], e))
                    goto done;
                if (rep >= 0 && st[lk].t_gen > 0 && st[lk].n_gen > 0) /* (an answer ended at once times nothing) */
                    r[lk]->samples[r[lk]->n++] = (double)st[lk].n_gen / st[lk].t_gen;
                if (lk && (len[0] != len[1] || memcmp(out[0], out[1], len[0]))) {
                    bn_fail(e, "%s: %s changed the greedy answer (a bug)", o->prompts[f],
                            o->draft ? "the draft model" : "prompt lookup");
                    goto done;
                }
            }
        for (int lk = 0; lk < 2; lk++)
            bn_bench_stats(r[lk]);
        snprintf(r[0]->what, sizeof r[0]->what, "%.*s", (int)bn_bench_utf8_fit(base, 40), base);
        spec_what(r[1], base, st[1].n_draft ? 100.0 * st[1].n_accept / st[1].n_draft : 0.0,
                  st[1].n_pass ? (double)st[1].n_gen / st[1].n_pass : 0.0, r[0]);
        if (o->verbose)
            fprintf(stderr, "%s: %s t=%d %s: plain %.2f t/s, %s %.2f t/s; %llu drafted, %llu kept, %llu passes\n",
                    o->prog, label, threads, o->prompts[f], r[0]->median, mode, r[1]->median,
                    (unsigned long long)st[1].n_draft, (unsigned long long)st[1].n_accept,
                    (unsigned long long)st[1].n_pass);
    }
    rc = 0;
done:
    free(out[0]);
    free(out[1]);
    bn_tokens_free(&prompt);
    bn_ctx_free(ctx);
    bn_ctx_free(dctx);
    if (o->draft)
        bn_model_free(&dm);
    bn_tokenizer_free(tok);
    return rc;
}

int bn_bench_spec(const bn_bench_opts *o, const bn_model *m, const char *label, int threads, const uint32_t *ids,
                  bn_bench_rows *rows, bn_err *e)
{
    if (o->n_verify && verify_rows(o, m, label, threads, ids, rows, e))
        return -1;
    if (o->n_prompts && lookup_rows(o, m, label, threads, rows, e))
        return -1;
    return 0;
}
