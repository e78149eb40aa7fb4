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
 * must be the same bytes (else an error). */
#include "bench.h"
#include "generate.h"
#include "tokenizer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { PASSES = 4 }; /* passes of each K per repetition; their mean is a sample */

static bn_bench_row *spec_row(bn_bench_rows *rows, const char *label, int threads, const char *unit, bn_err *e)
{
    bn_bench_row *r = bn_bench_row_add(rows);
    if (!r) {
        bn_fail(e, "out of memory");
        return NULL;
    }
    r->kind = BN_ROW_TEXT;
    snprintf(r->model, sizeof r->model, "%s", label);
    r->threads = threads;
    snprintf(r->unit, sizeof r->unit, "%s", unit);
    return r;
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
            bn_fail(e, "out of memory");
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
        bn_bench_row *r = spec_row(rows, label, threads, "ms", e);
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
        return bn_fail(e, "out of memory");
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

static int lookup_rows(const bn_bench_opts *o, const bn_model *m, const char *label, int threads, bn_bench_rows *rows,
                       bn_err *e)
{
    bn_tokenizer *tok = bn_tokenizer_from_model(m, e);
    if (!tok) {
        char why[sizeof e->msg];
        snprintf(why, sizeof why, "%s", e->msg);
        return bn_fail(e, "%s: --prompt-file needs a model with a tokenizer (%s)", label, why);
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
    for (size_t f = 0; f < o->n_prompts; f++) {
        bn_map map;
        if (bn_map_file(o->prompts[f], &map, e))
            goto done;
        bn_tokens_clear(&prompt);
        int t = bn_tokenizer_encode(tok, map.data, map.size, m->hp.add_bos && m->hp.bos_id >= 0 ? BN_ENC_BOS : 0, 0,
                                    &prompt, e);
        bn_unmap(&map);
        if (t)
            goto done;
        if (!prompt.n || prompt.n + tg > m->hp.n_ctx) {
            bn_fail(e, "%s: %zu tokens and %u to generate do not fit the context of %u", o->prompts[f], prompt.n, tg,
                    m->hp.n_ctx);
            goto done;
        }
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
            go[lk].draft = lk ? dctx : NULL;
        }
        const char *base = strrchr(o->prompts[f], '/');
        base = base ? base + 1 : o->prompts[f];
        bn_bench_row *r[2];
        for (int lk = 0; lk < 2; lk++) {
            if (!(r[lk] = spec_row(rows, label, threads, "t/s", e)))
                goto done;
            snprintf(r[lk]->test, sizeof r[lk]->test, "tg%u %s", tg, lk ? mode : "plain");
            if (lk && !o->draft)
                snprintf(r[lk]->test, sizeof r[lk]->test, "tg%u lookup %u/%u", tg, o->lookup,
                         o->draft_max ? o->draft_max : 8);
            else if (lk)
                snprintf(r[lk]->test, sizeof r[lk]->test, "tg%u draft %u", tg, o->draft_max ? o->draft_max : 8);
        }
        bn_gen_stats st[2];
        size_t len[2] = {0, 0};
        for (int rep = -1; rep < o->reps; rep++) /* rep -1: the warm-up */
            for (int lk = 0; lk < 2; lk++) {
                free(out[lk]);
                if (generate(ctx, m, &go[lk], &prompt, &out[lk], &len[lk], &st[lk], e))
                    goto done;
                if (rep >= 0 && st[lk].t_gen > 0)
                    r[lk]->samples[r[lk]->n++] = (double)st[lk].n_gen / st[lk].t_gen;
                if (lk && (len[0] != len[1] || memcmp(out[0], out[1], len[0]))) {
                    bn_fail(e, "%s: %s changed the greedy answer (a bug)", o->prompts[f],
                            o->draft ? "the draft model" : "prompt lookup");
                    goto done;
                }
            }
        for (int lk = 0; lk < 2; lk++)
            bn_bench_stats(r[lk]);
        snprintf(r[0]->what, sizeof r[0]->what, "%.40s", base);
        snprintf(r[1]->what, sizeof r[1]->what, "%.12s: %.0f%% kept, %.2f tok/pass, %.2fx",
                 base, st[1].n_draft ? 100.0 * st[1].n_accept / st[1].n_draft : 0.0,
                 st[1].n_pass ? (double)st[1].n_gen / st[1].n_pass : 0.0, r[1]->median / r[0]->median);
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
