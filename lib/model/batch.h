/* batch.h — continuous batching (batch.c): many requests answered together
 * over one context's sequences, for bn-infer --parallel and a server.
 *
 * Each step is one forward pass: it admits queued requests into free
 * sequences (a prompt that begins like a running sequence's tokens shares
 * that prefix's KV blocks instead of evaluating it again), evaluates one
 * token of every decoding sequence and chunks of the joining prompts (the
 * decoders first, so a long prompt never stalls them), samples every
 * sequence that reached its next token with its own sampler, and reports
 * what happened. A finished request frees its sequence and KV blocks at
 * once. The weights are read once per pass, for all sequences.
 *
 * Batching changes no result: a request's tokens are the ones it gets
 * answered alone, at any number of sequences, greedy or seeded (its
 * sampler sees the same logits, bit for bit, and draws from its own
 * generator). When the KV budget runs out, the newest sequence is set
 * back (its blocks freed, its tokens kept) and evaluated again once the
 * free blocks hold its tokens beside a block for each other request under
 * way,
 * which changes nothing either. */
#ifndef BN_BATCH_H
#define BN_BATCH_H

#include "model.h"
#include "sampler.h"

typedef struct bn_request {
    const uint32_t *prompt; /* copied */
    size_t n_prompt;
    bn_sampler_opts samp;   /* its own sampler: the same seed repeats it exactly */
    int32_t n_predict;      /* most tokens to generate; -1: until a stop or the context is full */
    const uint32_t *stop_ids; /* more stop tokens beside the model's (copied) */
    size_t n_stop_ids;
    uint64_t tag;           /* the caller's name for it, in its events */
    /* Prompt lookup decoding (lookup.h), as bn_gen_opts.lookup: while it
     * decodes, the request's pass also checks up to draft_max tokens
     * guessed from its own text (the longest suffix of lookup..1 tokens
     * found earlier), and a step may give it several tokens. Its tokens
     * are the ones bn_gen_answer gives with the same options: greedy,
     * plain decoding's; sampled, the same draws as alone with lookup (not
     * plain sampling's). 0: off. */
    uint32_t lookup;
    uint32_t draft_max;     /* 1..BN_KERN_MAX_N-1; 0: 8 (lookup's or the draft model's) */
    /* 1: the batch's draft model (bn_batch_opts.draft) guesses instead,
     * as bn_gen_opts.draft (draft.h): greedy, plain decoding's tokens;
     * sampled, the model's distribution by rejection sampling, the same
     * draws as bn_gen_answer with that draft model. Not with lookup. */
    int draft;
    /* 1: each of its token events carries the token's log probability
     * under the model (log-softmax of the logits row it was drawn from,
     * before the sampler's temperature, penalties or cut-offs), and the
     * top_logprobs (0..BN_BATCH_MAX_TOP) most likely tokens of that row
     * with theirs. The rows are the ones plain decoding gives, bit for
     * bit, so the values do not depend on batching or guessing. */
    int logprobs;
    uint32_t top_logprobs;
    /* 1, with logprobs: the prompt is scored too, an event (prompt 1) for
     * each prompt token after the first with its log probability given
     * the tokens before it, in order, before the answer's (OpenAI's echo
     * with logprobs). Its prompt is evaluated whole (no prefix shared with
     * another sequence), even with n_predict 0, which then ends it. */
    int score_prompt;
} bn_request;

enum { BN_BATCH_MAX_TOP = BN_MAX_TOP_LOGPROBS };

/* One of a row's most likely tokens (bn.h's). */
typedef bn_token_logprob bn_batch_top;

/* Why a request ended. */
enum {
    BN_FIN_NONE = 0,  /* it goes on */
    BN_FIN_STOP,      /* a stop token (not reported as a token) */
    BN_FIN_LENGTH,    /* n_predict tokens */
    BN_FIN_CONTEXT,   /* its context (bn_ctx_n_ctx positions) is full */
    BN_FIN_ERROR      /* it cannot be answered: error says why */
};

#define BN_BATCH_NO_TOKEN UINT32_MAX

/* What one step did to one request: a new token, an end, or both (the
 * last token and BN_FIN_LENGTH or BN_FIN_CONTEXT). A request with lookup
 * gets one event for each token a step accepted, in order. */
typedef struct bn_batch_event {
    uint64_t tag;
    uint32_t token;     /* BN_BATCH_NO_TOKEN when none */
    int finish;         /* BN_FIN_* */
    const char *error;  /* BN_FIN_ERROR's reason (valid until the next step) */
    int status;         /* BN_FIN_ERROR's bn_status (BN_E_KV_FULL: the budget
                           cannot hold it alone; BN_E_KV_RANGE: a K or V
                           value beyond the f16 cache), else 0 */
    /* a token of a request with logprobs: has_logprob 1, its log
     * probability, and the row's n_top most likely tokens, most likely
     * first (ties: the lower id), valid until the next step; else 0, 0,
     * 0, NULL */
    int has_logprob;
    float logprob;
    uint32_t n_top;
    const bn_batch_top *top;
    int prompt;         /* 1: token is a prompt token, scored (score_prompt) */
} bn_batch_event;

typedef struct bn_batch_opts {
    /* A draft model's context for requests with .draft: as many sequences
     * as the batch's context or more, all empty and left to the batch, the
     * model's vocabulary, its default KV budget. NULL: none. */
    bn_ctx *draft;
    uint32_t pass_tokens; /* most tokens a pass evaluates beside lookup's drafts; 0: BN_KERN_MAX_N
                             (at least the sequences) */
} bn_batch_opts;

typedef struct bn_batch bn_batch;

/* Runs requests over every sequence of c (bn_ctx_n_seq of them at once),
 * which must all be empty and left to the batch until bn_batch_free. */
bn_batch *bn_batch_new(bn_ctx *c, const bn_batch_opts *o, bn_err *e);
void bn_batch_free(bn_batch *b);

/* Queues a request (first come, first admitted). */
int bn_batch_submit(bn_batch *b, const bn_request *r, bn_err *e);
/* Requests queued or running. */
size_t bn_batch_pending(const bn_batch *b);
/* Drops a request, queued or running (a stop string its caller found):
 * no more events for it, its sequence and blocks are free. */
void bn_batch_cancel(bn_batch *b, uint64_t tag);

/* What the batch has done so far. */
typedef struct bn_batch_stats {
    uint64_t passes, tokens; /* forward passes, tokens evaluated in them */
    uint64_t shared;         /* prompt positions taken from another sequence's blocks */
    uint64_t set_back;       /* sequences set back for the KV budget */
    /* prompt lookup: a request's decode passes (its token and its drafts
     * checked in one pass), tokens drafted in them, drafts accepted, and
     * the tokens those passes gave */
    uint64_t spec_passes, drafted, accepted, spec_tokens;
    uint64_t prompt_tokens; /* prompt positions evaluated (a pass with any is a prefill pass) */
} bn_batch_stats;
void bn_batch_get_stats(const bn_batch *b, bn_batch_stats *st);

/* The most events the next step can give (each pending request's token
 * and the drafts kept before it, or its end): a caller copying them sizes
 * its array by this before stepping. */
size_t bn_batch_max_events(const bn_batch *b);

/* One pass. *ev gets the events (valid until the next call): requests
 * refused first, then one for each request that reached a token.
 * Nothing to do: 0 events. A request whose K or V overflows its context's
 * f16 cache (BN_E_KV_RANGE) ends with BN_FIN_ERROR, the others go on; one
 * that overflows the draft's guesses less (bn_draft_propose). Fails only
 * on an error of the context itself (out of memory), and then changes
 * nothing, or returns 0 with the events of requests it ended before
 * failing (the error comes again). */
int bn_batch_step(bn_batch *b, const bn_batch_event **ev, size_t *n_ev, bn_err *e);

#endif
