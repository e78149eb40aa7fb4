/* batch.c — continuous batching over a context's sequences (batch.h). */
#include "batch.h"
#include "lookup.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* A request, queued or running. */
typedef struct req {
    uint64_t tag;
    uint32_t *hist;     /* prompt, then the generated tokens (cap: n_ctx + 1) */
    size_t n_hist, n_prompt;
    uint32_t *stops;
    size_t n_stops;
    int32_t n_predict;
    uint32_t n_gen;
    bn_sampler_opts so;
    bn_sampler s;       /* while running */
    int seq;            /* its context sequence while running, else -1 */
    uint64_t order;     /* admission order */
    int paused;         /* set back this step (KV budget) */
    int set_back;       /* set back and not started over yet */
    int planned;        /* has tokens in the pass being planned */
    int lookup;         /* prompt lookup on: lk drafts */
    int use_draft;      /* the draft model guesses (lk: its adaptive k only) */
    bn_lookup lk;
    int no_draft;       /* this step's pass without drafts (alone, the budget is short) */
    size_t nd;          /* drafts in this step's pass, checked by the rows after its token's */
    uint32_t draft[BN_KERN_MAX_N - 1];
    /* the draft model's guesses, made once for each last token (n_hist ==
     * guessed_at): a pass set back and planned again checks the same */
    bn_sampler ds;      /* the draft's draws (draft.c's seed) */
    bn_sampler_dist *q; /* [lk.draft_max] when sampling: what each guess was drawn from */
    size_t guessed_at, n_guess, k_guess;
    int draft_off;      /* its text holds a K or V value beyond the draft's f16
                           cache: no more guesses (bn_draft_propose's off) */
    bn_logit_bias *bias; /* so.logit_bias: the request's own copy */
    int logprobs;       /* its events carry log probabilities (bn_request's) */
    uint32_t n_top;
    int score_prompt;   /* bn_request's: its prompt tokens are scored too */
    size_t scored;      /* prompt positions whose rows were scored (the first token has none) */
} req;

struct bn_batch {
    bn_ctx *c;
    const bn_model *m;
    uint32_t n_slots, n_ctx, pass_tokens;
    size_t planned_prompt; /* prompt tokens of the pass plan() made last */
    int *seq_busy;      /* [n_slots]: a request runs in context sequence i */
    req **run;          /* [n_slots] running, in admission order */
    size_t n_run;
    req **queue;        /* FIFO */
    size_t q_head, q_len, q_cap;
    uint64_t next_order;
    bn_eval_tok *toks;  /* a pass */
    size_t cap_toks;
    req **want;         /* [cap_rows]: whose logits rows are next (its token's, then its drafts'; or
                           a prompt position's, score_prompt) */
    size_t *want_pos;   /* [cap_rows]: that prompt position, or SIZE_MAX: the token's row */
    float *logits;      /* [cap_rows x n_vocab] */
    size_t cap_rows;
    bn_batch_event *ev;
    size_t n_ev, cap_ev;
    bn_batch_top (*tops)[BN_BATCH_MAX_TOP]; /* [cap_ev]: each event's most likely tokens */
    float *raw;         /* [n_vocab]: a row before the sampler changes it (logprobs) */
    char (*msg)[256];   /* error texts of this step's events */
    size_t n_msg, cap_msg;
    bn_batch_stats st;
    bn_ctx *dc;         /* the draft model's context, or NULL */
    const bn_model *dm;
    bn_eval_tok *dtoks; /* a draft pass */
    size_t cap_dtoks;
    req **dwant;        /* [n_slots]: whose draft logits row is which */
    float *dlogits;     /* [n_slots x n_vocab] */
};

static void req_free(req *r)
{
    if (!r)
        return;
    bn_sampler_release(&r->s);
    bn_sampler_release(&r->ds);
    if (r->q)
        for (uint32_t j = 0; j < r->lk.draft_max; j++)
            bn_sampler_dist_release(&r->q[j]);
    free(r->q);
    free(r->hist);
    free(r->stops);
    free(r->bias);
    free(r);
}

bn_batch *bn_batch_new(bn_ctx *c, const bn_batch_opts *o, bn_err *e)
{
    bn_batch *b = calloc(1, sizeof *b);
    if (!b) {
        bn_fail_code(e, BN_E_NOMEM, "out of memory");
        return NULL;
    }
    b->c = c;
    b->m = bn_ctx_model(c);
    b->n_slots = bn_ctx_n_seq(c);
    b->n_ctx = bn_ctx_n_ctx(c);
    b->pass_tokens = o && o->pass_tokens ? o->pass_tokens : BN_KERN_MAX_N;
    if (b->pass_tokens < b->n_slots)
        b->pass_tokens = b->n_slots;
    /* beside the pass, each sequence's drafts (lookup) */
    b->cap_toks = b->pass_tokens + (size_t)b->n_slots * (BN_KERN_MAX_N - 1);
    b->cap_rows = b->n_slots;
    b->seq_busy = calloc(b->n_slots, sizeof *b->seq_busy);
    b->run = calloc(b->n_slots, sizeof *b->run);
    b->toks = malloc(b->cap_toks * sizeof *b->toks);
    b->want = malloc(b->cap_toks * sizeof *b->want); /* a row per token at most */
    b->want_pos = malloc(b->cap_toks * sizeof *b->want_pos);
    b->logits = malloc((size_t)b->n_slots * b->m->hp.n_vocab * sizeof *b->logits);
    if (!b->seq_busy || !b->run || !b->toks || !b->want || !b->want_pos || !b->logits) {
        bn_fail_code(e, BN_E_NOMEM, "out of memory");
        bn_batch_free(b);
        return NULL;
    }
    if (o && o->draft) {
        b->dc = o->draft;
        b->dm = bn_ctx_model(o->draft);
        if (b->dm->hp.n_vocab != b->m->hp.n_vocab || bn_ctx_n_seq(o->draft) < b->n_slots) {
            bn_fail_code(e, BN_E_INVALID, "the draft model's context needs the model's vocabulary and %u sequences",
                         b->n_slots);
            bn_batch_free(b);
            return NULL;
        }
        b->dwant = malloc(b->n_slots * sizeof *b->dwant);
        b->dlogits = malloc((size_t)b->n_slots * b->m->hp.n_vocab * sizeof *b->dlogits);
        if (!b->dwant || !b->dlogits) {
            bn_fail_code(e, BN_E_NOMEM, "out of memory");
            bn_batch_free(b);
            return NULL;
        }
        for (uint32_t i = 1; i < b->n_slots; i++)
            if (bn_ctx_seq_new(b->dc, e) < 0) {
                bn_batch_free(b);
                return NULL;
            }
    }
    /* every sequence of the context exists from here on: 0 already does */
    for (uint32_t i = 1; i < b->n_slots; i++) {
        int id = bn_ctx_seq_new(c, e);
        if (id < 0) {
            bn_batch_free(b);
            return NULL;
        }
    }
    return b;
}

void bn_batch_free(bn_batch *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n_run; i++) {
        bn_ctx_seq_truncate(b->c, b->run[i]->seq, 0);
        if (b->dc)
            bn_ctx_seq_truncate(b->dc, b->run[i]->seq, 0);
        req_free(b->run[i]);
    }
    for (size_t i = 0; i < b->q_len; i++)
        req_free(b->queue[(b->q_head + i) % b->q_cap]);
    free(b->seq_busy);
    free(b->run);
    free(b->queue);
    free(b->toks);
    free(b->want);
    free(b->want_pos);
    free(b->logits);
    free(b->ev);
    free(b->msg);
    free(b->dtoks);
    free(b->dwant);
    free(b->dlogits);
    free(b->tops);
    free(b->raw);
    free(b);
}

size_t bn_batch_pending(const bn_batch *b)
{
    return b->q_len + b->n_run;
}

void bn_batch_get_stats(const bn_batch *b, bn_batch_stats *st)
{
    *st = b->st;
}

/* ---------------------------------------------------------------- queue */

int bn_batch_submit(bn_batch *b, const bn_request *r, bn_err *e)
{
    if (r->draft && (!b->dc || r->lookup))
        return bn_fail_code(e, BN_E_INVALID, "%s", r->lookup ? "a draft model and lookup exclude each other"
                                                              : "no draft model (bn_batch_opts.draft)");
    if (b->q_len == b->q_cap) {
        size_t cap = b->q_cap ? 2 * b->q_cap : 16;
        req **q = malloc(cap * sizeof *q);
        if (!q)
            return bn_fail_code(e, BN_E_NOMEM, "out of memory");
        for (size_t i = 0; i < b->q_len; i++)
            q[i] = b->queue[(b->q_head + i) % b->q_cap];
        free(b->queue);
        b->queue = q;
        b->q_head = 0;
        b->q_cap = cap;
    }
    req *q = calloc(1, sizeof *q);
    /* room for the prompt and every token the context can still take */
    size_t cap = (r->n_prompt > b->n_ctx ? r->n_prompt : b->n_ctx) + 1;
    if (!q || !(q->hist = malloc(cap * sizeof *q->hist)) ||
        (r->n_stop_ids && !(q->stops = malloc(r->n_stop_ids * sizeof *q->stops))) ||
        (r->samp.n_logit_bias && !(q->bias = malloc(r->samp.n_logit_bias * sizeof *q->bias)))) {
        req_free(q);
        return bn_fail_code(e, BN_E_NOMEM, "out of memory");
    }
    if (r->n_prompt)
        memcpy(q->hist, r->prompt, r->n_prompt * sizeof *q->hist);
    if (r->n_stop_ids)
        memcpy(q->stops, r->stop_ids, r->n_stop_ids * sizeof *q->stops);
    q->n_hist = q->n_prompt = r->n_prompt;
    q->n_stops = r->n_stop_ids;
    q->n_predict = r->n_predict;
    q->so = r->samp;
    if (q->bias) { /* the sampler is made at admission: the caller's array may be gone by then */
        memcpy(q->bias, r->samp.logit_bias, r->samp.n_logit_bias * sizeof *q->bias);
        q->so.logit_bias = q->bias;
    }
    q->tag = r->tag;
    q->seq = -1;
    q->logprobs = r->logprobs != 0;
    q->n_top = !r->logprobs ? 0 : r->top_logprobs < BN_BATCH_MAX_TOP ? r->top_logprobs : BN_BATCH_MAX_TOP;
    q->score_prompt = q->logprobs && r->score_prompt;
    if (q->logprobs && !b->raw && !(b->raw = malloc(b->m->hp.n_vocab * sizeof *b->raw))) {
        req_free(q);
        return bn_fail_code(e, BN_E_NOMEM, "out of memory");
    }
    if (r->lookup || r->draft) {
        q->lookup = 1;
        q->use_draft = r->draft != 0;
        uint32_t k = r->draft_max ? r->draft_max : 8;
        bn_lookup_init(&q->lk, r->draft ? 1 : r->lookup, k < BN_KERN_MAX_N - 1 ? k : BN_KERN_MAX_N - 1);
    }
    if (q->use_draft) { /* bn_draft_init's sampler, and the distributions of sampled guesses */
        bn_sampler_opts so = r->samp;
        so.seed = r->samp.seed ^ 0xD1B54A32D192ED03ull;
        uint32_t V = b->m->hp.n_vocab;
        int bad = bn_sampler_init(&q->ds, &so, V, e);
        if (!bad && r->samp.temp > 0) {
            if (!(q->q = calloc(q->lk.draft_max, sizeof *q->q)))
                bad = 1;
            for (uint32_t j = 0; !bad && j < q->lk.draft_max; j++)
                bad = bn_sampler_dist_init(&q->q[j], V);
        }
        if (bad) {
            req_free(q);
            return bn_fail_code(e, BN_E_NOMEM, "out of memory");
        }
    }
    b->queue[(b->q_head + b->q_len++) % b->q_cap] = q;
    return 0;
}

/* --------------------------------------------------------------- events */

/* The most events r can give in one step: its token and the drafts kept
 * before it, or one end; a scored prompt, a position of the pass each. */
static size_t req_max_events(const bn_batch *b, const req *r)
{
    return 1 + (r->lookup ? r->lk.draft_max : 0) + (r->score_prompt ? b->pass_tokens : 0);
}

size_t bn_batch_max_events(const bn_batch *b)
{
    size_t n = 0;
    for (size_t i = 0; i < b->n_run; i++)
        n += req_max_events(b, b->run[i]);
    for (size_t i = 0; i < b->q_len; i++)
        n += req_max_events(b, b->queue[(b->q_head + i) % b->q_cap]);
    return n;
}

/* Room for every event and message a step can make, taken before it
 * changes anything: a step that has begun cannot fail for want of it. */
static int events_room(bn_batch *b, bn_err *e)
{
    size_t n_ev = bn_batch_max_events(b), n_msg = b->n_run + b->q_len;
    if (n_ev > b->cap_ev) {
        bn_batch_event *ev = realloc(b->ev, n_ev * sizeof *ev);
        if (ev)
            b->ev = ev;
        bn_batch_top(*tops)[BN_BATCH_MAX_TOP] = ev ? realloc(b->tops, n_ev * sizeof *tops) : NULL;
        if (!tops)
            return bn_fail_code(e, BN_E_NOMEM, "out of memory");
        b->tops = tops;
        b->cap_ev = n_ev;
    }
    if (n_msg > b->cap_msg) {
        char(*m)[256] = realloc(b->msg, n_msg * sizeof *m);
        if (!m)
            return bn_fail_code(e, BN_E_NOMEM, "out of memory");
        b->msg = m;
        b->cap_msg = n_msg;
    }
    return 0;
}

static bn_batch_event *event(bn_batch *b, const req *r, uint32_t token, int finish)
{
    b->ev[b->n_ev] = (bn_batch_event){.tag = r->tag, .token = token, .finish = finish};
    return &b->ev[b->n_ev++];
}

/* ev's log probability of its token in the row raw (as the model gave
 * it), and the row's n_top most likely tokens: log-softmax in double,
 * the largest logit first so no exp overflows. */
static void add_logprobs(bn_batch *b, bn_batch_event *ev, const float *raw, size_t V, uint32_t n_top)
{
    float mx = raw[0];
    for (size_t i = 1; i < V; i++)
        mx = raw[i] > mx ? raw[i] : mx;
    double sum = 0;
    for (size_t i = 0; i < V; i++)
        sum += exp((double)raw[i] - mx);
    double lse = mx + log(sum);
    bn_batch_top *top = b->tops[ev - b->ev];
    uint32_t n = 0;
    for (size_t i = 0; i < V && n_top; i++) { /* insertion into the n_top best so far: strictly larger goes first */
        if (n == n_top && !(raw[i] > top[n - 1].logprob))
            continue;
        uint32_t k = n < n_top ? n++ : n - 1;
        for (; k > 0 && raw[i] > top[k - 1].logprob; k--)
            top[k] = top[k - 1];
        top[k] = (bn_batch_top){(uint32_t)i, raw[i]};
    }
    for (uint32_t k = 0; k < n; k++)
        top[k].logprob = (float)((double)top[k].logprob - lse);
    if (ev->token != BN_BATCH_NO_TOKEN) {
        ev->logprob = (float)((double)raw[ev->token] - lse);
        ev->has_logprob = 1;
    }
    ev->n_top = n;
    ev->top = n ? top : NULL;
}

/* A BN_FIN_ERROR event with its status and reason. */
static void __attribute__((format(printf, 4, 5))) refuse(bn_batch *b, const req *r, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->msg[b->n_msg++], sizeof b->msg[0], fmt, ap);
    va_end(ap);
    event(b, r, BN_BATCH_NO_TOKEN, BN_FIN_ERROR)->status = status;
}

/* ------------------------------------------------------------ admission */

static void finish_run(bn_batch *b, size_t i)
{
    req *r = b->run[i];
    bn_ctx_seq_truncate(b->c, r->seq, 0);
    if (b->dc)
        bn_ctx_seq_truncate(b->dc, r->seq, 0);
    b->seq_busy[r->seq] = 0;
    req_free(r);
    memmove(b->run + i, b->run + i + 1, (b->n_run - i - 1) * sizeof *b->run);
    b->n_run--;
}

void bn_batch_cancel(bn_batch *b, uint64_t tag)
{
    for (size_t i = 0; i < b->n_run; i++)
        if (b->run[i]->tag == tag) {
            finish_run(b, i);
            return;
        }
    for (size_t i = 0; i < b->q_len; i++) {
        size_t at = (b->q_head + i) % b->q_cap;
        if (b->queue[at]->tag == tag) {
            req_free(b->queue[at]);
            for (size_t j = i; j + 1 < b->q_len; j++)
                b->queue[(b->q_head + j) % b->q_cap] = b->queue[(b->q_head + j + 1) % b->q_cap];
            b->q_len--;
            return;
        }
    }
}

/* 1 after refusing a prompt that cannot be answered (bn_gen_answer's
 * words), 0 when it can. */
static int check_prompt(bn_batch *b, const req *r)
{
    uint32_t V = b->m->hp.n_vocab;
    if (!r->n_prompt) {
        refuse(b, r, BN_E_INVALID, "empty prompt");
        return 1;
    }
    for (size_t i = 0; i < r->n_prompt; i++)
        if (r->hist[i] >= V) {
            refuse(b, r, BN_E_INVALID, "token %zu: id %u is outside the vocabulary (0..%u)", i + 1, r->hist[i], V - 1);
            return 1;
        }
    if (r->n_prompt > b->n_ctx || (r->n_prompt == b->n_ctx && r->n_predict != 0)) {
        refuse(b, r, BN_E_CONTEXT_FULL, "prompt of %zu tokens does not fit the context of %u tokens%s", r->n_prompt,
               b->n_ctx, r->n_prompt == b->n_ctx ? " (one more position is needed to answer)" : "");
        return 1;
    }
    /* a prompt the whole KV budget cannot hold, even alone: refused now,
     * not after waiting at the head of the queue for everything else */
    uint64_t need = bn_kv_blocks_for(r->n_prompt), have = bn_ctx_kv_blocks_max(b->c);
    if (need > have) {
        refuse(b, r, BN_E_KV_FULL,
               "the KV cache budget cannot hold the prompt of %zu tokens (%llu blocks of %d positions, the budget "
               "%llu)", r->n_prompt, (unsigned long long)need, BN_KV_BLOCK, (unsigned long long)have);
        return 1;
    }
    return 0;
}

/* The running request whose evaluated tokens share the longest prefix
 * with r's prompt, and that length (at most the prompt less one: the
 * last prompt token is evaluated for its logits). */
static const req *best_prefix(const bn_batch *b, const req *r, uint32_t *len)
{
    const req *best = NULL;
    *len = 0;
    for (size_t i = 0; i < b->n_run; i++) {
        const req *o = b->run[i];
        uint32_t held = bn_ctx_seq_pos(b->c, o->seq), k = 0;
        while (k < held && k + 1 < r->n_prompt && o->hist[k] == r->hist[k])
            k++;
        if (k > *len) {
            *len = k;
            best = o;
        }
    }
    return best;
}

/* Moves queued requests into free sequences while the KV budget has room
 * for their prompts (beside a block for each running decoder). */
static int admit(bn_batch *b, bn_err *e)
{
    while (b->q_len && b->n_run < b->n_slots) {
        req *r = b->queue[b->q_head];
        int bad = check_prompt(b, r);
        int nothing = r->n_predict == 0 && !r->score_prompt; /* scored, the prompt is still evaluated */
        if (!bad && nothing)
            event(b, r, BN_BATCH_NO_TOKEN, BN_FIN_LENGTH);
        if (bad || nothing) {
            b->q_head = (b->q_head + 1) % b->q_cap;
            b->q_len--;
            req_free(r);
            continue;
        }
        uint32_t shared = 0;
        const req *from = r->score_prompt ? NULL : best_prefix(b, r, &shared); /* scored: every row is needed */
        uint32_t blocks = (uint32_t)bn_kv_blocks_for(r->n_prompt - shared) + 1;
        if (b->n_run && blocks + b->n_run > bn_ctx_kv_blocks_left(b->c))
            break; /* wait for running requests to finish */
        uint32_t seq = 0;
        while (b->seq_busy[seq])
            seq++;
        if (bn_sampler_init(&r->s, &r->so, b->m->hp.n_vocab, e))
            return -1;
        if (from && bn_ctx_seq_copy(b->c, (int)seq, from->seq, shared, e)) {
            bn_sampler_release(&r->s); /* initialized again when admitted */
            return -1;
        }
        b->st.shared += from ? shared : 0;
        b->seq_busy[seq] = 1;
        r->seq = (int)seq;
        r->order = b->next_order++;
        b->q_head = (b->q_head + 1) % b->q_cap;
        b->q_len--;
        b->run[b->n_run++] = r;
    }
    return 0;
}

/* ----------------------------------------------------------------- step */

/* Prompt lookup's drafts after r's last token, as bn_gen_answer's loop
 * drafts them at that point: the same text, the same k, the same limit
 * (the context, the answer's length, one pass), so that the same tokens
 * are checked (sampled, the same draws) whatever runs beside it. None
 * before the first answer token (the prompt's pass checks nothing). */
static size_t draft_limit(const bn_batch *b, const req *r)
{
    size_t limit = b->n_ctx - r->n_hist; /* positions after the last token's */
    if (r->n_predict >= 0 && (size_t)(r->n_predict - r->n_gen - 1) < limit)
        limit = (size_t)(r->n_predict - r->n_gen - 1);
    return limit < BN_KERN_MAX_N - 1 ? limit : BN_KERN_MAX_N - 1;
}

static size_t draft(const bn_batch *b, req *r)
{
    if (!r->lookup || r->no_draft || r->n_hist == r->n_prompt)
        return 0;
    if (r->use_draft) /* guessed already (guess) */
        return r->draft_off ? 0 : r->n_guess;
    return bn_lookup_draft(&r->lk, r->hist, r->n_hist, draft_limit(b, r), r->draft);
}

/* The draft model's guesses for every request that reached a new last
 * token, bn_draft_propose's for each (the same k, draws and guesses), in
 * lockstep: one draft pass brings each request's draft sequence up to its
 * text (cut back to what they share), then one pass per guess for those
 * still guessing. */
static int guess(bn_batch *b, bn_err *e)
{
    size_t m = 0, n = 0, V = b->m->hp.n_vocab, n_dctx = bn_ctx_n_ctx(b->dc);
    for (size_t i = 0; i < b->n_run; i++) {
        req *r = b->run[i];
        if (!r->use_draft || r->draft_off || r->n_hist == r->n_prompt || r->guessed_at == r->n_hist)
            continue;
        r->guessed_at = r->n_hist;
        r->n_guess = 0;
        size_t k = r->lk.k < draft_limit(b, r) ? r->lk.k : draft_limit(b, r), nh = r->n_hist;
        if (nh + k > n_dctx) /* the draft model's context may be the shorter */
            k = n_dctx > nh ? n_dctx - nh : 0;
        if (!k)
            continue;
        const uint32_t *held = bn_ctx_seq_tokens(b->dc, r->seq);
        size_t common = 0, pos = bn_ctx_seq_pos(b->dc, r->seq);
        while (common < pos && common < nh && held[common] == r->hist[common])
            common++;
        if (common == nh)
            common--;
        bn_ctx_seq_truncate(b->dc, r->seq, (uint32_t)common);
        if (n + nh - common > b->cap_dtoks) {
            size_t cap = 2 * (n + nh - common);
            bn_eval_tok *t = realloc(b->dtoks, cap * sizeof *t);
            if (!t)
                return bn_fail_code(e, BN_E_NOMEM, "out of memory");
            b->dtoks = t;
            b->cap_dtoks = cap;
        }
        for (size_t p = common; p < nh; p++)
            b->dtoks[n++] = (bn_eval_tok){r->hist[p], (uint32_t)r->seq, (uint32_t)p, p + 1 == nh};
        r->k_guess = k;
        b->dwant[m++] = r;
    }
    while (m) {
        int rc = bn_ctx_eval_batch(b->dc, b->dtoks, n, b->dlogits, e);
        if (rc == BN_E_KV_RANGE) {
            /* a K or V value beyond the draft model's f16 cache, as
             * bn_draft_propose: a guess it cannot hold is that request's
             * last, text it cannot hold turns its guessing off (either
             * way the answer is the main model's, as without a draft);
             * the pass goes again without it (it changed nothing) */
            const char *why;
            const bn_eval_tok bad = b->dtoks[bn_ctx_range_token(b->dc, &why)];
            size_t w = 0, m2 = 0;
            for (size_t i = 0; i < n; i++)
                if (b->dtoks[i].seq != bad.seq)
                    b->dtoks[w++] = b->dtoks[i];
            n = w;
            for (size_t i = 0; i < m; i++) {
                req *r = b->dwant[i];
                if (r->seq != (int)bad.seq)
                    b->dwant[m2++] = r;
                else if (bad.pos < r->n_hist)
                    r->draft_off = 1;
            }
            m = m2;
            continue;
        }
        if (rc)
            return -1;
        size_t m2 = 0;
        n = 0;
        for (size_t i = 0; i < m; i++) {
            req *r = b->dwant[i];
            /* penalties see the text and the guesses so far, as the main
             * sampler will when it checks this one */
            const uint32_t *hist = bn_ctx_seq_tokens(b->dc, r->seq);
            uint32_t pos = bn_ctx_seq_pos(b->dc, r->seq);
            float *row = b->dlogits + i * V;
            uint32_t x = r->q ? bn_sampler_sample_dist(&r->ds, row, hist, pos, &r->q[r->n_guess])
                              : bn_sampler_sample(&r->ds, row, hist, pos);
            r->draft[r->n_guess++] = x;
            if (r->n_guess == r->k_guess || bn_model_is_stop(b->dm, x))
                continue;
            b->dtoks[n++] = (bn_eval_tok){x, (uint32_t)r->seq, pos, 1};
            b->dwant[m2++] = r;
        }
        m = m2;
    }
    return 0;
}

/* 1 while a request that was set back should not start over: the free
 * KV blocks, less those this pass already claims (claimed), cannot hold
 * its tokens so far and the next beside a block for each other request
 * under way (running, starting over, or in this pass), so a chunk
 * evaluated now would be thrown away at the next set-back while the
 * others grow. It starts over once they have finished or hold less, or
 * at once when none is under way (alone, it either fits or is refused as
 * too long for the budget); the oldest first, as the pass is planned in
 * admission order. Once started over it goes on like any other. */
static int waits(bn_batch *b, req *r, uint64_t claimed)
{
    if (!r->set_back)
        return 0;
    if (bn_ctx_seq_pos(b->c, r->seq) > 0) {
        r->set_back = 0; /* started over */
        return 0;
    }
    uint32_t others = 0;
    for (size_t i = 0; i < b->n_run; i++) {
        const req *o = b->run[i];
        others += o != r && (!o->set_back || o->planned);
    }
    uint64_t need = bn_kv_blocks_for(r->n_hist + 1), left = bn_ctx_kv_blocks_left(b->c);
    return others && need + others + claimed > left;
}

/* The pass: one token of each decoder (and its drafts), then prompt
 * chunks in admission order up to pass_tokens (drafts not counted: they
 * never starve a prompt); logits for each request's last token and its
 * drafts, and for the prompt positions a scored prompt has not scored
 * yet. *n_rows: the logits rows. */
static size_t plan(bn_batch *b, size_t *n_want, size_t *n_rows)
{
    size_t n = 0, used = 0, budget = b->pass_tokens;
    uint64_t claimed = 0; /* KV blocks the pass takes so far */
    *n_want = *n_rows = 0;
    b->planned_prompt = 0;
    for (size_t i = 0; i < b->n_run; i++)
        b->run[i]->planned = 0;
    for (int prefill = 0; prefill < 2; prefill++)
        for (size_t i = 0; i < b->n_run && used < budget; i++) {
            req *r = b->run[i];
            uint32_t pos = bn_ctx_seq_pos(b->c, r->seq);
            size_t left = r->n_hist - pos;
            if (r->paused || (left > 1) != prefill || waits(b, r, claimed))
                continue;
            r->planned = 1;
            size_t k = left < budget - used ? left : budget - used;
            for (size_t j = 0; j < k; j++) {
                size_t p = pos + j;
                int last = p + 1 == r->n_hist, score = r->score_prompt && p + 1 < r->n_prompt && p >= r->scored;
                b->toks[n++] = (bn_eval_tok){r->hist[p], (uint32_t)r->seq, (uint32_t)p, (uint32_t)(last || score)};
                if (last || score) {
                    b->want[*n_want] = r;
                    b->want_pos[(*n_want)++] = last ? SIZE_MAX : p;
                    *n_rows += score;
                }
            }
            used += k;
            b->planned_prompt += prefill ? k : 0;
            r->nd = 0;
            if (pos + k == r->n_hist) {
                r->nd = draft(b, r);
                for (size_t j = 0; j < r->nd; j++)
                    b->toks[n++] = (bn_eval_tok){r->draft[j], (uint32_t)r->seq, (uint32_t)(r->n_hist + j), 1};
                *n_rows += 1 + r->nd;
            }
            claimed += bn_kv_blocks_for(pos + k + r->nd) - bn_kv_blocks_for(pos);
        }
    return n;
}

/* Room for n_rows logits rows. */
static int logits_room(bn_batch *b, size_t n_rows, bn_err *e)
{
    if (n_rows <= b->cap_rows)
        return 0;
    float *l = realloc(b->logits, n_rows * b->m->hp.n_vocab * sizeof *l);
    if (!l)
        return bn_fail_code(e, BN_E_NOMEM, "out of memory");
    b->logits = l;
    b->cap_rows = n_rows;
    return 0;
}

static int is_stop(const bn_batch *b, const req *r, uint32_t id)
{
    for (int i = 0; i < b->m->hp.n_stop; i++)
        if ((uint32_t)b->m->hp.stop_ids[i] == id)
            return 1;
    for (size_t i = 0; i < r->n_stops; i++)
        if (r->stops[i] == id)
            return 1;
    return 0;
}

/* The newest running request that is not set back yet, or NULL. */
static req *newest(bn_batch *b)
{
    req *best = NULL;
    for (size_t i = 0; i < b->n_run; i++)
        if (!b->run[i]->paused && (!best || b->run[i]->order > best->order))
            best = b->run[i];
    return best;
}

/* The events made so far, each with its reason. */
static void deliver(bn_batch *b, const bn_batch_event **ev, size_t *n_ev)
{
    for (size_t i = 0, m = 0; i < b->n_ev; i++)
        if (b->ev[i].finish == BN_FIN_ERROR)
            b->ev[i].error = b->msg[m++];
    *ev = b->ev;
    *n_ev = b->n_ev;
}

/* A step that failed after it ended requests (refused, or answered with
 * nothing): their events still go out, since nothing else would say they
 * ended; the failure comes again on the next step. */
static int step_failed(bn_batch *b, const bn_batch_event **ev, size_t *n_ev)
{
    if (!b->n_ev)
        return -1;
    deliver(b, ev, n_ev);
    return 0;
}

int bn_batch_step(bn_batch *b, const bn_batch_event **ev, size_t *n_ev, bn_err *e)
{
    b->n_ev = b->n_msg = 0;
    *ev = b->ev;
    *n_ev = 0;
    if (events_room(b, e))
        return -1;
    if (admit(b, e) || (b->dc && guess(b, e)))
        return step_failed(b, ev, n_ev);
    size_t n, n_want, n_rows;
    int rc = 0;
    bn_err ee;
    for (;;) {
        n = plan(b, &n_want, &n_rows);
        if (!n)
            break;
        if (logits_room(b, n_rows, &ee)) {
            rc = ee.code;
            break;
        }
        rc = bn_ctx_eval_batch(b->c, b->toks, n, b->logits, &ee);
        if (rc == BN_E_KV_RANGE) {
            /* a K or V value beyond the f16 cache (the pass changed
             * nothing): in a guess, the pass goes again without that
             * request's guesses (its own next token decides); else the
             * request ends, as it would alone, and the others go on */
            const char *why;
            const bn_eval_tok *bad = &b->toks[bn_ctx_range_token(b->c, &why)];
            size_t i = 0;
            while (b->run[i]->seq != (int)bad->seq)
                i++;
            req *r = b->run[i];
            if (bad->pos >= r->n_hist) {
                r->no_draft = 1;
                continue;
            }
            refuse(b, r, BN_E_KV_RANGE, "position %u: %s", bad->pos, why);
            finish_run(b, i);
            continue;
        }
        if (rc != BN_E_KV_FULL)
            break;
        /* the budget is short: set the newest request back (its blocks
         * freed, its tokens kept, evaluated again once there is room) */
        req *r = newest(b);
        size_t active = 0;
        for (size_t i = 0; i < b->n_run; i++)
            active += !b->run[i]->paused;
        if (active == 1 && r->nd) {
            /* alone, its drafts may be what does not fit: this pass
             * without them (greedy, the same tokens; sampled, other
             * draws than alone, where the whole context is held) */
            r->no_draft = 1;
            continue;
        }
        if (active == 1) { /* alone, and still too long for the budget */
            size_t i = 0;
            while (b->run[i] != r)
                i++;
            refuse(b, r, BN_E_KV_FULL, "%s", ee.msg);
            finish_run(b, i);
            continue;
        }
        bn_ctx_seq_truncate(b->c, r->seq, 0);
        r->paused = r->set_back = 1;
        b->st.set_back++;
    }
    for (size_t i = 0; i < b->n_run; i++)
        b->run[i]->paused = b->run[i]->no_draft = 0;
    if (n && rc) {
        if (e)
            *e = ee;
        return step_failed(b, ev, n_ev);
    }
    if (n) {
        b->st.passes++;
        b->st.tokens += n;
        b->st.prompt_tokens += b->planned_prompt;
    }
    size_t V = b->m->hp.n_vocab;
    float *rows = b->logits; /* the sampler applies penalties in place */
    for (size_t w = 0; w < n_want; w++) {
        req *r = b->want[w];
        if (b->want_pos[w] != SIZE_MAX) { /* a scored prompt's row: the next prompt token's log probability */
            size_t p = b->want_pos[w];
            bn_batch_event *te = event(b, r, r->hist[p + 1], BN_FIN_NONE);
            te->prompt = 1;
            add_logprobs(b, te, rows, V, r->n_top);
            r->scored = p + 1;
            rows += V;
            continue;
        }
        if (r->n_predict == 0) { /* scored, nothing to answer: the prompt's rows were all it wanted */
            event(b, r, BN_BATCH_NO_TOKEN, BN_FIN_LENGTH);
            rows += (1 + r->nd) * V;
            size_t i = 0;
            while (b->run[i] != r)
                i++;
            finish_run(b, i);
            continue;
        }
        float *row = rows;
        /* the token after the last, then while it is the j-th draft, the
         * token after that draft (already in the cache) from its row:
         * bn_gen_answer's lookup loop, so the same tokens and draws */
        size_t nd = r->nd, j = 0;
        int fin = BN_FIN_NONE;
        int decoding = r->n_hist > r->n_prompt;
        for (;; j++, row += V) {
            if (r->logprobs) /* the sampler applies penalties in place */
                memcpy(b->raw, row, V * sizeof *row);
            uint32_t id = j < nd ? bn_sampler_verify_dist(&r->s, row, r->hist, r->n_hist, r->draft[j],
                                                          r->q ? &r->q[j] : NULL)
                                 : bn_sampler_sample(&r->s, row, r->hist, r->n_hist);
            uint32_t held = (uint32_t)r->n_hist;
            if (is_stop(b, r, id)) {
                fin = BN_FIN_STOP;
                id = BN_BATCH_NO_TOKEN;
            } else {
                r->hist[r->n_hist++] = id;
                r->n_gen++;
                if (r->n_predict >= 0 && r->n_gen >= (uint32_t)r->n_predict)
                    fin = BN_FIN_LENGTH;
                else if (held >= b->n_ctx)
                    fin = BN_FIN_CONTEXT;
            }
            bn_batch_event *te = event(b, r, id, fin);
            if (r->logprobs && id != BN_BATCH_NO_TOKEN)
                add_logprobs(b, te, b->raw, V, r->n_top);
            b->st.spec_tokens += r->lookup && decoding && id != BN_BATCH_NO_TOKEN;
            if (fin || j == nd || id != r->draft[j])
                break;
            b->st.accepted++;
        }
        rows += (1 + nd) * V;
        if (r->lookup && decoding) {
            b->st.spec_passes++;
            b->st.drafted += nd;
        }
        if (!fin && r->lookup) {
            bn_lookup_update(&r->lk, nd, j);
            /* the drafts not kept leave the cache: it holds every token
             * but the newest, as after a plain pass */
            if (j < nd)
                bn_ctx_seq_truncate(b->c, r->seq, (uint32_t)r->n_hist - 1);
        }
        if (fin) {
            size_t i = 0;
            while (b->run[i] != r)
                i++;
            finish_run(b, i);
        }
    }
    deliver(b, ev, n_ev);
    return 0;
}
