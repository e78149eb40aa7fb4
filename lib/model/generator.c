/* generator.c — token-by-token generation for embedders (bn.h): a prompt
 * evaluated after the prefix the context already holds, then one token per
 * step until a stop token, a stop string, n_predict tokens or a full
 * context. Text that might be the start of a stop string is held back
 * until it cannot be (and a stop string itself is never shown), as
 * bn-infer does (generate.c): greedy runs of the two give the same tokens
 * and the same text. A sampled token is evaluated only when the next step
 * needs its logits, so stopping costs no forward pass.
 *
 * With prompt lookup or a draft model (speculative decoding) that pass
 * evaluates the token and guesses after it, a logits row each; the
 * following steps decide tokens from those rows, as bn-infer's answer
 * loop does (generate.c), while each is the guess its row checked, and
 * the guesses not kept leave the cache. */
#include "draft.h"
#include "lookup.h"
#include "model.h"
#include "stopstr.h"
#include "sampler.h"
#include "tokenizer.h"

#include <stdlib.h>
#include <string.h>

struct bn_generator {
    bn_ctx *c;
    bn_ctx *draft_ctx;    /* counted with c in their generators (bn_ctx_generators_add) */
    int counted;
    bn_sampler *s;
    const bn_tokenizer *t;
    bn_detok dt;          /* with a tokenizer */
    int32_t n_predict;    /* -1: no limit */
    char **stop;          /* copies of the stop strings */
    size_t n_stop;
    uint32_t *stop_ids;
    size_t n_stop_ids;
    int model_stops;
    float *logits;        /* n_vocab: the next token's */
    int primed;           /* a prompt has been evaluated */
    int has_pending;      /* pending was sampled and is not evaluated yet */
    uint32_t pending;
    int32_t n_gen;
    int stop_reason;      /* BN_STOP_*, 0 while generating */
    uint8_t *pend;        /* decoded text not yet handed out */
    size_t n_pend, cap_pend;
    uint8_t *out;         /* what the last step handed out */
    size_t cap_out;
    /* speculative decoding: lookup (lk) or a draft model (draft) */
    int spec;
    bn_lookup lk;
    bn_draft *draft;
    uint32_t *text;       /* n_ctx: the text, then the pass's token and guesses */
    size_t acc;           /* positions kept: text[acc] is the guess row `row` checks */
    size_t nd, row;       /* guesses in the pass; the logits row that decides next */
    uint64_t passes, tokens, drafted, accepted; /* bn_generator_stats */
};

static void gen_defaults(bn_generate_params *p)
{
    memset(p, 0, sizeof *p);
    p->size = sizeof *p;
    p->n_predict = 128;
    p->detok_flags = BN_DETOK_SKIP_SPECIAL;
}

void bn_generate_params_defaults(bn_generate_params *p, size_t size)
{
    bn_generate_params d;
    gen_defaults(&d);
    bn_params_fill(p, size, &d, sizeof d);
}

/* ------------------------------------------------------------ lifecycle */

void bn_generator_free(bn_generator *g)
{
    if (!g)
        return;
    if (g->counted) {
        bn_ctx_generators_add(g->c, -1);
        if (g->draft_ctx)
            bn_ctx_generators_add(g->draft_ctx, -1);
    }
    if (g->t)
        bn_detok_release(&g->dt);
    for (size_t i = 0; i < g->n_stop; i++)
        free(g->stop[i]);
    free(g->stop);
    free(g->stop_ids);
    free(g->logits);
    free(g->pend);
    free(g->out);
    if (g->draft)
        bn_draft_release(g->draft);
    free(g->draft);
    free(g->text);
    free(g);
}

static bn_generator *new_failed(bn_generator *g, bn_err *e)
{
    bn_generator_free(g);
    bn_fail_code(e, BN_E_NOMEM, "out of memory");
    return NULL;
}

/* How many to guess: prompt lookup's count, or the draft model's. */
static bn_lookup *pacing(bn_generator *g)
{
    return g->draft ? &g->draft->k : &g->lk;
}

bn_generator *bn_generator_new(bn_ctx *c, bn_sampler *s, const bn_tokenizer *t, const bn_generate_params *p,
                               bn_err *e)
{
    bn_generate_params o;
    gen_defaults(&o);
    if (p && bn_params_read(&o, sizeof o, p, "bn_generate_params", e))
        return NULL;
    /* the messages below spell these limits out */
    _Static_assert(BN_MAX_STOP_IDS == 65536 && BN_KERN_MAX_N - 1 == 127, "update the messages");
    const char *bad = !c                                       ? "the context is NULL"
                      : !s                                     ? "the sampler is NULL"
                      : o.n_predict < -1                       ? "n_predict must be -1 or more"
                      : o.n_stop && !o.stop                    ? "stop is NULL"
                      : o.n_stop && !t                         ? "stop strings need a tokenizer"
                      : o.n_stop_ids && !o.stop_ids            ? "stop_ids is NULL"
                      : o.n_stop_ids > BN_MAX_STOP_IDS         ? "n_stop_ids is more than 65536"
                      : o.detok_flags & ~(unsigned)BN_DETOK_SKIP_SPECIAL ? "unknown detok_flags"
                      : o.lookup > 64                          ? "lookup must be 0 to 64"
                      : o.draft_max > BN_KERN_MAX_N - 1        ? "draft_max must be 0 to 127"
                      : o.lookup && o.draft                    ? "draft and lookup exclude each other"
                      : bn_ctx_gives_states(c)                 ? "the context's model is an embedding model (bn_embed)"
                      : bn_ctx_gives_states(o.draft)           ? "the draft's model is an embedding model"
                      : o.draft && o.draft == c                ? "the draft context is the context itself"
                      : bn_ctx_taken(c)                        ? "the context has a batcher"
                      : o.draft && bn_ctx_taken(o.draft)       ? "the draft context has a batcher"
                                                               : NULL;
    for (size_t i = 0; !bad && i < o.n_stop; i++)
        if (!o.stop[i] || !*o.stop[i])
            bad = "a stop string is NULL or empty";
    const bn_model *m = c ? bn_ctx_model(c) : NULL;
    if (!bad && s->n_vocab != m->hp.n_vocab)
        bad = "the sampler's vocabulary is not the model's";
    if (!bad && t && bn_tokenizer_n_vocab(t) != m->hp.n_vocab)
        bad = "the tokenizer's vocabulary is not the model's";
    if (!bad && o.draft && bn_ctx_model(o.draft)->hp.n_vocab != m->hp.n_vocab)
        bad = "the draft model's vocabulary is not the model's";
    /* as bn_batcher_new: a draft that ran out of blocks mid-answer would end it */
    if (!bad && o.draft && !bn_ctx_kv_holds_all(o.draft))
        bad = "the draft context needs a KV budget that holds all its sequences (kv_budget 0: its default)";
    if (bad) {
        bn_fail_code(e, BN_E_INVALID, "bn_generator_new: %s", bad);
        return NULL;
    }
    bn_generator *g = calloc(1, sizeof *g);
    if (!g)
        return new_failed(g, e);
    g->c = c;
    g->s = s;
    g->n_predict = o.n_predict;
    g->model_stops = !o.ignore_model_stops;
    g->spec = o.lookup || o.draft;
    uint32_t k = o.draft_max ? o.draft_max : 8;
    if (k > BN_KERN_MAX_N - 1)
        k = BN_KERN_MAX_N - 1;
    /* a row of logits for the token and each guess a pass checks */
    size_t rows = g->spec ? (size_t)k + 1 : 1;
    if (!(g->logits = malloc(rows * m->hp.n_vocab * sizeof *g->logits)))
        return new_failed(g, e);
    if (g->spec && !(g->text = malloc((size_t)bn_ctx_n_ctx(c) * sizeof *g->text)))
        return new_failed(g, e);
    bn_lookup_init(&g->lk, o.lookup, k);
    if (o.draft) {
        if (!(g->draft = malloc(sizeof *g->draft)))
            return new_failed(g, e);
        if (bn_draft_init(g->draft, o.draft, &s->o, k, e)) {
            free(g->draft);
            g->draft = NULL;
            return new_failed(g, e);
        }
    }
    if (s->o.temp <= 0 && !o.spec_no_pacing) /* greedy: how many guesses cannot change the tokens */
        bn_lookup_pace(pacing(g));
    if (o.n_stop && !(g->stop = calloc(o.n_stop, sizeof *g->stop)))
        return new_failed(g, e);
    for (; g->n_stop < o.n_stop; g->n_stop++)
        if (!(g->stop[g->n_stop] = strdup(o.stop[g->n_stop])))
            return new_failed(g, e);
    if (o.n_stop_ids) {
        if (!(g->stop_ids = malloc(o.n_stop_ids * sizeof *g->stop_ids)))
            return new_failed(g, e);
        memcpy(g->stop_ids, o.stop_ids, o.n_stop_ids * sizeof *g->stop_ids);
        g->n_stop_ids = o.n_stop_ids;
    }
    if (t) {
        if (bn_detok_init(&g->dt, t, o.detok_flags, e))
            return new_failed(g, e);
        g->t = t;
    }
    g->counted = 1;
    bn_ctx_generators_add(c, 1);
    if ((g->draft_ctx = o.draft))
        bn_ctx_generators_add(o.draft, 1);
    return g;
}

/* --------------------------------------------------------------- prompt */

int bn_generator_prompt(bn_generator *g, const uint32_t *ids, size_t n, bn_err *e)
{
    if (!g || !ids || !n)
        return bn_fail_code(e, BN_E_INVALID, "bn_generator_prompt: %s",
                            !g ? "the generator is NULL" : !ids ? "ids is NULL" : "the prompt is empty");
    uint32_t n_ctx = bn_ctx_n_ctx(g->c);
    if (n > n_ctx)
        return bn_fail_code(e, BN_E_CONTEXT_FULL, "prompt of %zu tokens does not fit the context of %u tokens", n,
                            n_ctx);
    /* the ids before the cache is cut back: a bad prompt changes nothing */
    uint32_t n_vocab = bn_model_n_vocab(bn_ctx_model(g->c));
    for (size_t i = 0; i < n; i++)
        if (ids[i] >= n_vocab)
            return bn_fail_code(e, BN_E_INVALID, "token %zu: id %u is outside the vocabulary (0..%u)", i, ids[i],
                                n_vocab - 1);
    /* Reuse what the cache holds; the last token is evaluated again in any
     * case, for its logits. */
    const uint32_t *held = bn_ctx_tokens(g->c);
    size_t common = 0, pos = bn_ctx_pos(g->c);
    while (common < pos && common < n && held[common] == ids[common])
        common++;
    if (common == n)
        common--;
    bn_ctx_truncate(g->c, (uint32_t)common);
    g->primed = 0;
    int rc = bn_ctx_eval(g->c, ids + common, n - common, g->logits, 0, e);
    if (rc)
        return rc;
    g->primed = 1;
    g->has_pending = 0;
    g->acc = n;
    g->nd = g->row = 0;
    if (g->spec) {
        memcpy(g->text, ids, n * sizeof *ids);
        /* a new answer guesses afresh (the pass times stay), and the
         * draft's draws follow the sampler's state: reseeded, the sampler
         * repeats its answer with a draft too, as without */
        bn_lookup_restart(&g->lk);
        if (g->draft)
            bn_draft_restart(g->draft, bn_sampler_fork_seed(g->s));
    }
    g->n_gen = 0;
    g->stop_reason = 0;
    g->n_pend = 0;
    if (g->t) { /* a new answer: nothing held back from the last one */
        const uint8_t *b;
        size_t len;
        bn_detok_flush(&g->dt, &b, &len);
    }
    return BN_OK;
}

/* ----------------------------------------------------------------- text */

static int grow(void **p, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, c);
    if (!q)
        return -1;
    *p = q;
    *cap = c;
    return 0;
}

static int append(bn_generator *g, const uint8_t *b, size_t n, bn_err *e)
{
    if (grow((void **)&g->pend, &g->cap_pend, g->n_pend + n + 1))
        return bn_fail_code(e, BN_E_NOMEM, "out of memory");
    if (n)
        memcpy(g->pend + g->n_pend, b, n);
    g->n_pend += n;
    return 0;
}

/* Hands out the first n pending bytes (copied: valid until the next step). */
static int hand_out(bn_generator *g, size_t n, const uint8_t **text, size_t *len, bn_err *e)
{
    if (grow((void **)&g->out, &g->cap_out, n + 1))
        return bn_fail_code(e, BN_E_NOMEM, "out of memory");
    if (n)
        memcpy(g->out, g->pend, n);
    if (g->n_pend > n)
        memmove(g->pend, g->pend + n, g->n_pend - n);
    g->n_pend -= n;
    if (text)
        *text = g->out;
    if (len)
        *len = n;
    return 0;
}

/* Generation is over: with reason other than a stop string, whatever was
 * held back is final and goes out now. */
static int finish(bn_generator *g, int reason, const uint8_t **text, size_t *len, bn_err *e)
{
    if (g->spec) /* guesses past the answer's end */
        bn_ctx_truncate(g->c, (uint32_t)g->acc);
    g->stop_reason = reason;
    size_t keep = reason == BN_STOP_STRING ? 0 : SIZE_MAX;
    if (g->t) {
        const uint8_t *b;
        size_t n;
        bn_detok_flush(&g->dt, &b, &n);
        if (reason != BN_STOP_STRING && n) {
            if (append(g, b, n, e))
                return BN_E_NOMEM;
            /* the bytes held back for a character that never came may
             * complete a stop string (one that ends in such bytes) */
            keep = bn_stop_find(g->pend, g->n_pend, (const char *const *)g->stop, g->n_stop);
            if (keep != SIZE_MAX)
                reason = BN_STOP_STRING;
        }
    }
    g->stop_reason = reason;
    if (keep != SIZE_MAX)
        g->n_pend = keep;
    return hand_out(g, g->n_pend, text, len, e);
}

/* ----------------------------------------------------------------- step */

static int is_stop(const bn_generator *g, uint32_t id)
{
    if (g->model_stops && bn_model_is_stop(bn_ctx_model(g->c), id))
        return 1;
    for (size_t i = 0; i < g->n_stop_ids; i++)
        if (g->stop_ids[i] == id)
            return 1;
    return 0;
}

/* Speculative decoding's pass: the pending token at position acc and the
 * guesses after it (g->text holds the text before them), a logits row
 * each. The guesses fit the context and the tokens n_predict leaves. */
static int spec_pass(bn_generator *g, bn_err *e)
{
    size_t pos = g->acc, limit = bn_ctx_n_ctx(g->c) - 1 - pos, nd = 0;
    if (g->n_predict >= 0 && (size_t)(g->n_predict - g->n_gen - 1) < limit)
        limit = (size_t)(g->n_predict - g->n_gen - 1);
    if (limit > BN_KERN_MAX_N - 1)
        limit = BN_KERN_MAX_N - 1;
    g->text[pos] = g->pending;
    uint32_t *guess = g->text + pos + 1;
    int rc = bn_spec_guess(&g->lk, g->draft, g->text, pos + 1, limit, guess, &nd, e);
    if (rc)
        return rc;
    double t0 = bn_seconds();
    if ((rc = bn_spec_eval(g->c, g->text + pos, &nd, g->logits, e)))
        return rc;
    bn_lookup_time(pacing(g), nd + 1, bn_seconds() - t0);
    g->passes++;
    g->drafted += nd;
    g->acc = pos + 1;
    g->nd = nd;
    g->row = 0;
    return 0;
}

/* After a speculative step's token tok, generation going on: a kept guess
 * is in the cache already and the next row decides the token after it;
 * otherwise the pass is over (the guesses after tok leave the cache) and
 * tok starts the next one. */
static void spec_next(bn_generator *g, uint32_t tok)
{
    if (g->row < g->nd && tok == g->text[g->acc]) {
        g->accepted++;
        g->acc++;
        g->row++;
        g->has_pending = 0;
        return;
    }
    bn_lookup_update(pacing(g), g->nd, g->row);
    bn_ctx_truncate(g->c, (uint32_t)g->acc);
    g->nd = g->row = 0;
}

int bn_generate_next(bn_generator *g, uint32_t *id, const uint8_t **text, size_t *len, bn_err *e)
{
    /* never NULL, even with no bytes: callers pass it straight to fwrite,
     * memcpy and the like, where NULL is undefined even with length 0 */
    static const uint8_t no_text[1];
    if (id)
        *id = BN_NO_TOKEN;
    if (text)
        *text = no_text;
    if (len)
        *len = 0;
    if (!g)
        return bn_fail_code(e, BN_E_INVALID, "bn_generate_next: the generator is NULL");
    if (!g->primed)
        return bn_fail_code(e, BN_E_INVALID, "bn_generate_next: no prompt (bn_generator_prompt first)");
    if (g->stop_reason)
        return 0;
    if (g->n_predict >= 0 && g->n_gen >= g->n_predict) {
        int rc = finish(g, BN_STOP_LENGTH, text, len, e);
        return rc ? rc : 0;
    }
    if (g->has_pending) {
        int rc = g->spec ? spec_pass(g, e) : bn_ctx_eval(g->c, &g->pending, 1, g->logits, 0, e);
        if (rc)
            return rc;
        g->passes += !g->spec;
        g->has_pending = 0;
    }
    uint32_t tok;
    size_t held; /* positions of the text before tok */
    if (g->spec) {
        /* row `row` decides, checking the guess text[acc] while there is one */
        float *row = g->logits + g->row * (size_t)g->s->n_vocab;
        held = g->acc;
        tok = g->row < g->nd ? bn_sampler_verify_dist(g->s, row, g->text, held, g->text[held],
                                                      g->draft ? bn_draft_q(g->draft, g->row) : NULL)
                             : bn_sampler_sample(g->s, row, g->text, held);
    } else {
        held = bn_ctx_pos(g->c);
        tok = bn_sampler_sample(g->s, g->logits, bn_ctx_tokens(g->c), held);
    }
    if (is_stop(g, tok)) {
        int rc = finish(g, BN_STOP_TOKEN, text, len, e);
        return rc ? rc : 0;
    }
    g->n_gen++;
    g->tokens++;
    if (id)
        *id = tok;
    size_t ready = 0;
    if (g->t) {
        const uint8_t *b;
        size_t n;
        int rc = bn_detok_feed(&g->dt, tok, &b, &n, e);
        if (rc || (rc = append(g, b, n, e)))
            return rc;
        size_t at = bn_stop_find(g->pend, g->n_pend, (const char *const *)g->stop, g->n_stop);
        if (at != SIZE_MAX) {
            /* The text before the stop string goes out with this token;
             * the rest, and the stop string, never do. */
            int r = hand_out(g, at, text, len, e);
            g->n_pend = 0;
            bn_detok_flush(&g->dt, &b, &n);
            g->stop_reason = BN_STOP_STRING;
            if (g->spec) /* guesses past the answer's end */
                bn_ctx_truncate(g->c, (uint32_t)g->acc);
            return r ? r : 1;
        }
        ready = g->n_pend - bn_stop_hold(g->pend, g->n_pend, (const char *const *)g->stop, g->n_stop);
    }
    /* The last token of the answer takes everything held back with it. */
    int reason = g->n_predict >= 0 && g->n_gen >= g->n_predict ? BN_STOP_LENGTH
                 : held >= bn_ctx_n_ctx(g->c)                 ? BN_STOP_CONTEXT
                                                               : 0;
    int rc = reason ? finish(g, reason, text, len, e) : hand_out(g, ready, text, len, e);
    if (rc)
        return rc;
    g->pending = tok;
    g->has_pending = !reason;
    if (g->spec && !reason)
        spec_next(g, tok);
    return 1;
}

int bn_generator_stop_reason(const bn_generator *g)
{
    return g ? g->stop_reason : 0;
}

void bn_generator_stats_defaults(bn_generator_stats *s, size_t size)
{
    bn_generator_stats d;
    memset(&d, 0, sizeof d);
    d.size = sizeof d;
    bn_params_fill(s, size, &d, sizeof d);
}

int bn_generator_get_stats(const bn_generator *g, bn_generator_stats *s, bn_err *e)
{
    if (!g || !s)
        return bn_fail_code(e, BN_E_INVALID, "bn_generator_get_stats: %s is NULL", g ? "the stats" : "the generator");
    if (s->size < sizeof s->size)
        return bn_fail_code(e, BN_E_INVALID,
                            "bn_generator_get_stats: the stats' size is not set (bn_generator_stats_init)");
    bn_generator_stats full = {
        .size = sizeof full,
        .passes = g->passes,
        .tokens = g->tokens,
        .drafted = g->drafted,
        .accepted = g->accepted,
    };
    bn_params_fill(s, s->size, &full, sizeof full); /* the caller's fields only, its size kept */
    return BN_OK;
}

/* ------------------------------------------------------------ the loop */

int bn_generate(bn_ctx *c, bn_sampler *s, const bn_tokenizer *t, const uint32_t *prompt, size_t n,
                const bn_generate_params *p, bn_token_fn fn, void *user, bn_err *e)
{
    bn_err own;
    e = e ? e : &own; /* the status is e->code, whether the caller wants the message or not */
    bn_generator *g = bn_generator_new(c, s, t, p, e);
    if (!g)
        return e->code;
    int rc = bn_generator_prompt(g, prompt, n, e);
    while (!rc) {
        uint32_t id;
        const uint8_t *text;
        size_t len;
        int r = bn_generate_next(g, &id, &text, &len, e);
        if (r < 0) {
            rc = r;
            break;
        }
        if (fn && (r == 1 || len) && fn(user, id, text, len)) {
            rc = bn_fail_code(e, BN_E_CANCELLED, "generation cancelled by the callback");
            break;
        }
        if (r == 0) {
            rc = bn_generator_stop_reason(g);
            break;
        }
    }
    bn_generator_free(g);
    return rc;
}
