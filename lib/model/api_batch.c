/* api_batch.c — continuous batching in the public API (bn.h): the
 * bn_batcher handle over the internal scheduler (batch.h). This file
 * reads the size-prefixed parameter structs, checks a request when it is
 * submitted (so a bad one fails there, with a status, instead of as an
 * event later), hands the context's sequences to the scheduler and back,
 * and turns its events into the public ones (BN_STOP_* reasons). */
#include "batch.h"

#include <stdlib.h>
#include <string.h>

struct bn_batcher {
    bn_batch *b;
    bn_ctx *c;
    bn_ctx *draft; /* the draft model's context, or NULL */
    uint32_t n_vocab, n_ctx;
    bn_batcher_event *ev; /* the last step's events */
    size_t cap_ev;
    const bn_batch_event *in; /* the scheduler's events behind them (its memory) */
    size_t n_in;
};

/* ---------------------------------------------------------- parameters */

static void batcher_defaults(bn_batcher_params *p)
{
    memset(p, 0, sizeof *p);
    p->size = sizeof *p;
}

void bn_batcher_params_defaults(bn_batcher_params *p, size_t size)
{
    bn_batcher_params d;
    batcher_defaults(&d);
    bn_params_fill(p, size, &d, sizeof d);
}

static void request_defaults(bn_batcher_request *r)
{
    memset(r, 0, sizeof *r);
    r->size = sizeof *r;
    r->n_predict = 128; /* bn_generate_params' default */
}

void bn_batcher_request_defaults(bn_batcher_request *r, size_t size)
{
    bn_batcher_request d;
    request_defaults(&d);
    bn_params_fill(r, size, &d, sizeof d);
}

/* ------------------------------------------------------------- handle */

/* Every sequence freed; sequence 0, which always exists, emptied. */
static void empty_context(bn_ctx *c)
{
    for (uint32_t i = 0; i < bn_ctx_n_seq(c); i++)
        bn_ctx_seq_free(c, (int)i);
}

bn_batcher *bn_batcher_new(bn_ctx *c, const bn_batcher_params *p, bn_err *e)
{
    bn_batcher_params o;
    batcher_defaults(&o);
    if (p && bn_params_read(&o, sizeof o, p, "bn_batcher_params", e))
        return NULL;
    if (!c || o.pass_tokens > BN_MAX_PASS_TOKENS || bn_ctx_gives_states(c)) {
        bn_fail_code(e, BN_E_INVALID, !c ? "bn_batcher_new: the context is NULL"
                                      : bn_ctx_gives_states(c) ? "bn_batcher_new: the context's model is an embedding model (bn_embed)"
                                                               : "bn_batcher_new: pass_tokens must be 0 to 65536");
        return NULL;
    }
    bn_batcher *b = calloc(1, sizeof *b);
    if (!b) {
        bn_fail_code(e, BN_E_NOMEM, "bn_batcher_new: out of memory");
        return NULL;
    }
    b->c = c;
    b->n_vocab = bn_model_n_vocab(bn_ctx_model(c));
    b->n_ctx = bn_ctx_n_ctx(c);
    const char *bad_draft =
        !o.draft                          ? NULL
        : o.draft == c                    ? "is the batcher's context"
        : bn_ctx_gives_states(o.draft)    ? "is an embedding model's"
        : !bn_ctx_kv_holds_all(o.draft)   ? "needs a KV budget that holds all its sequences (kv_budget 0: its default)"
        : bn_model_n_vocab(bn_ctx_model(o.draft)) != b->n_vocab || bn_ctx_n_seq(o.draft) < bn_ctx_n_seq(c)
            ? "needs the model's vocabulary and as many sequences as its context"
            : NULL;
    if (bad_draft) {
        bn_fail_code(e, BN_E_INVALID, "bn_batcher_new: the draft context %s", bad_draft);
        free(b);
        return NULL;
    }
    /* a batcher empties its context: not under a generator using it */
    const char *in_use = bn_ctx_generators(c)                      ? "context"
                         : o.draft && bn_ctx_generators(o.draft) ? "draft context"
                                                                   : NULL;
    if (in_use) {
        bn_fail_code(e, BN_E_INVALID, "bn_batcher_new: the %s has a generator (free it first)", in_use);
        free(b);
        return NULL;
    }
    /* a second batcher over a context would empty the first's sequences */
    int taken = bn_ctx_take(c) ? 1 : o.draft && bn_ctx_take(o.draft) ? 2 : 0;
    if (taken) {
        if (taken == 2)
            bn_ctx_give_back(c);
        bn_fail_code(e, BN_E_INVALID, "bn_batcher_new: the %scontext has a batcher already",
                     taken == 2 ? "draft " : "");
        free(b);
        return NULL;
    }
    b->draft = o.draft;
    empty_context(c);
    if (b->draft)
        empty_context(b->draft);
    bn_batch_opts bo = {.pass_tokens = o.pass_tokens, .draft = o.draft};
    if (!(b->b = bn_batch_new(c, &bo, e))) {
        empty_context(c);
        bn_ctx_give_back(c);
        if (b->draft) {
            empty_context(b->draft);
            bn_ctx_give_back(b->draft);
        }
        free(b);
        return NULL;
    }
    return b;
}

void bn_batcher_free(bn_batcher *b)
{
    if (!b)
        return;
    bn_batch_free(b->b);
    empty_context(b->c);
    bn_ctx_give_back(b->c);
    if (b->draft) {
        empty_context(b->draft);
        bn_ctx_give_back(b->draft);
    }
    free(b->ev);
    free(b);
}

size_t bn_batcher_pending(const bn_batcher *b)
{
    return b ? bn_batch_pending(b->b) : 0;
}

int bn_batcher_cancel(bn_batcher *b, uint64_t tag)
{
    if (!b)
        return 0;
    size_t before = bn_batch_pending(b->b);
    bn_batch_cancel(b->b, tag);
    return bn_batch_pending(b->b) < before;
}

/* ------------------------------------------------------------ requests */

/* The checks the scheduler would make when admitting r (it would then
 * refuse it with an event), made now with a status code. */
static int check_request(const bn_batcher *b, const bn_batcher_request *r, bn_err *e)
{
    if (!r->n_prompt)
        return bn_fail_code(e, BN_E_INVALID, "bn_batcher_submit: the prompt is empty");
    if (!r->prompt || (r->n_stop_ids && !r->stop_ids))
        return bn_fail_code(e, BN_E_INVALID, "bn_batcher_submit: %s is NULL", r->prompt ? "stop_ids" : "prompt");
    if (r->n_predict < -1)
        return bn_fail_code(e, BN_E_INVALID, "bn_batcher_submit: n_predict is %d (-1 or more)", (int)r->n_predict);
    if (r->n_stop_ids > BN_MAX_STOP_IDS)
        return bn_fail_code(e, BN_E_INVALID, "bn_batcher_submit: n_stop_ids is %zu (at most %d)", r->n_stop_ids,
                            BN_MAX_STOP_IDS);
    /* the length first: a count longer than any context is refused unread */
    for (size_t i = 0; r->n_prompt <= b->n_ctx && i < r->n_prompt; i++)
        if (r->prompt[i] >= b->n_vocab)
            return bn_fail_code(e, BN_E_INVALID, "bn_batcher_submit: token %zu: id %u is outside the vocabulary (0..%u)",
                                i, r->prompt[i], b->n_vocab - 1);
    if (r->n_prompt > b->n_ctx || (r->n_prompt == b->n_ctx && r->n_predict != 0))
        return bn_fail_code(e, BN_E_CONTEXT_FULL, "bn_batcher_submit: a prompt of %zu tokens does not fit the context of "
                            "%u tokens%s", r->n_prompt, b->n_ctx,
                            r->n_prompt == b->n_ctx ? " (one more position is needed to answer)" : "");
    if (r->lookup > 64)
        return bn_fail_code(e, BN_E_INVALID, "bn_batcher_submit: lookup is %u (0 to 64)", r->lookup);
    if (r->draft_max > 127)
        return bn_fail_code(e, BN_E_INVALID, "bn_batcher_submit: draft_max is %u (0 to 127)", r->draft_max);
    if (r->draft && r->lookup)
        return bn_fail_code(e, BN_E_INVALID, "bn_batcher_submit: draft and lookup exclude each other");
    if (r->draft && !b->draft)
        return bn_fail_code(e, BN_E_INVALID, "bn_batcher_submit: draft: the batcher has no draft model "
                            "(bn_batcher_params.draft)");
    if (r->top_logprobs > BN_MAX_TOP_LOGPROBS)
        return bn_fail_code(e, BN_E_INVALID, "bn_batcher_submit: top_logprobs is %u (0 to %d)", r->top_logprobs,
                            BN_MAX_TOP_LOGPROBS);
    if ((r->top_logprobs || r->score_prompt) && !r->logprobs)
        return bn_fail_code(e, BN_E_INVALID, "bn_batcher_submit: %s needs logprobs",
                            r->score_prompt ? "score_prompt" : "top_logprobs");
    return 0;
}

int bn_batcher_submit(bn_batcher *b, const bn_batcher_request *r, bn_err *e)
{
    bn_err own;
    e = e ? e : &own; /* the status is e->code, whether the caller wants the message or not */
    if (!b || !r)
        return bn_fail_code(e, BN_E_INVALID, "bn_batcher_submit: %s is NULL", b ? "the request" : "the batcher");
    bn_batcher_request o;
    request_defaults(&o);
    if (bn_params_read(&o, sizeof o, r, "bn_batcher_request", e))
        return BN_E_INVALID;
    int rc = check_request(b, &o, e);
    if (rc)
        return rc;
    bn_sampler_params sp;
    bn_sampler_defaults(&sp);
    if (o.sampler && bn_params_read(&sp, sizeof sp, o.sampler, "bn_batcher_request.sampler", e))
        return BN_E_INVALID;
    const char *bad = bn_sampler_opts_bad(&sp, b->n_vocab); /* bn_sampler_new's checks */
    if (bad)
        return bn_fail_code(e, BN_E_INVALID, "bn_batcher_submit: sampler: %s", bad);
    bn_request q = {
        .prompt = o.prompt,
        .n_prompt = o.n_prompt,
        .samp = sp,
        .n_predict = o.n_predict,
        .stop_ids = o.stop_ids,
        .n_stop_ids = o.n_stop_ids,
        .tag = o.tag,
        .lookup = o.lookup,
        .draft_max = o.draft_max,
        .draft = o.draft != 0,
        .logprobs = o.logprobs != 0,
        .top_logprobs = o.top_logprobs,
        .score_prompt = o.score_prompt != 0,
    };
    return bn_batch_submit(b->b, &q, e) ? BN_E_NOMEM : BN_OK;
}

/* --------------------------------------------------------------- steps */

static int stop_reason(int finish)
{
    switch (finish) {
    case BN_FIN_NONE:
        return 0;
    case BN_FIN_STOP:
        return BN_STOP_TOKEN;
    case BN_FIN_LENGTH:
        return BN_STOP_LENGTH;
    case BN_FIN_CONTEXT:
        return BN_STOP_CONTEXT;
    default:
        return BN_STOP_ERROR;
    }
}

int bn_batcher_step(bn_batcher *b, const bn_batcher_event **ev, size_t *n_ev, bn_err *e)
{
    if (!b || !ev || !n_ev)
        return bn_fail_code(e, BN_E_INVALID, "bn_batcher_step: %s is NULL", !b ? "the batcher" : "ev or n_ev");
    *ev = b->ev;
    *n_ev = 0;
    b->n_in = 0;
    /* room for this step's events before it runs: once it has, they must
     * reach the caller */
    size_t most = bn_batch_max_events(b->b);
    if (most > b->cap_ev) {
        bn_batcher_event *grown = realloc(b->ev, most * sizeof *grown);
        if (!grown)
            return bn_fail_code(e, BN_E_NOMEM, "bn_batcher_step: out of memory");
        b->ev = grown;
        b->cap_ev = most;
    }
    const bn_batch_event *in;
    size_t n;
    bn_err ie = {0};
    int rc = bn_batch_step(b->b, &in, &n, &ie);
    if (rc) {
        /* out of memory, the context's or the scheduler's own */
        return bn_fail_code(e, ie.code && ie.code != BN_ERROR ? ie.code : BN_E_NOMEM, "bn_batcher_step: %s", ie.msg);
    }
    for (size_t i = 0; i < n; i++) {
        int stop = stop_reason(in[i].finish);
        /* submit checked everything else the scheduler refuses, so a
         * refusal here is a request that outgrew the whole KV budget
         * (BN_E_KV_FULL) or whose K or V overflowed f16 (BN_E_KV_RANGE) */
        b->ev[i] = (bn_batcher_event){
            .tag = in[i].tag,
            .token = in[i].token == BN_BATCH_NO_TOKEN ? BN_NO_TOKEN : in[i].token,
            .stop = stop,
            .status = stop == BN_STOP_ERROR ? in[i].status : BN_OK,
            .error = stop == BN_STOP_ERROR ? in[i].error : NULL,
        };
    }
    *ev = b->ev;
    *n_ev = n;
    b->in = in;
    b->n_in = n;
    return BN_OK;
}

/* ------------------------------------------------------ log probabilities */

void bn_batcher_logprobs_defaults(bn_batcher_logprobs *l, size_t size)
{
    bn_batcher_logprobs d;
    memset(&d, 0, sizeof d);
    d.size = sizeof d;
    bn_params_fill(l, size, &d, sizeof d);
}

int bn_batcher_event_logprobs(const bn_batcher *b, size_t i, bn_batcher_logprobs *l, bn_err *e)
{
    if (!b || !l)
        return bn_fail_code(e, BN_E_INVALID, "bn_batcher_event_logprobs: %s is NULL", b ? "the result" : "the batcher");
    if (l->size < sizeof l->size)
        return bn_fail_code(e, BN_E_INVALID,
                            "bn_batcher_event_logprobs: the result's size is not set (bn_batcher_logprobs_init)");
    if (i >= b->n_in)
        return bn_fail_code(e, BN_E_INVALID, "bn_batcher_event_logprobs: event %zu of %zu", i, b->n_in);
    const bn_batch_event *v = &b->in[i];
    bn_batcher_logprobs full = {.size = sizeof full};
    if (v->has_logprob) {
        full.has = 1;
        full.is_prompt = v->prompt;
        full.logprob = v->logprob;
        full.n_top = v->n_top;
        full.top = v->n_top ? v->top : NULL;
    }
    size_t size = l->size;
    bn_params_fill(l, size, &full, sizeof full);
    return BN_OK;
}

/* --------------------------------------------------------------- stats */

void bn_batcher_stats_defaults(bn_batcher_stats *s, size_t size)
{
    bn_batcher_stats d;
    memset(&d, 0, sizeof d);
    d.size = sizeof d;
    bn_params_fill(s, size, &d, sizeof d);
}

int bn_batcher_get_stats(const bn_batcher *b, bn_batcher_stats *s, bn_err *e)
{
    if (!b || !s)
        return bn_fail_code(e, BN_E_INVALID, "bn_batcher_get_stats: %s is NULL", b ? "the stats" : "the batcher");
    if (s->size < sizeof s->size)
        return bn_fail_code(e, BN_E_INVALID, "bn_batcher_get_stats: the stats' size is not set (bn_batcher_stats_init)");
    bn_batch_stats st;
    bn_batch_get_stats(b->b, &st);
    bn_batcher_stats full = {
        .size = sizeof full,
        .passes = st.passes,
        .tokens = st.tokens,
        .spec_passes = st.spec_passes,
        .drafted = st.drafted,
        .accepted = st.accepted,
        .spec_tokens = st.spec_tokens,
    };
    size_t size = s->size;
    bn_params_fill(s, size, &full, sizeof full); /* the caller's fields only, its size kept */
    return BN_OK;
}
