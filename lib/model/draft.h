/* draft.h — a draft model's guesses for speculative decoding (draft.c): a
 * smaller model with the same vocabulary proposes the next k tokens, each
 * drawn by a sampler with the main sampler's options (greedy: its argmax),
 * and keeps the distribution each was drawn from for the main model's
 * check (bn_sampler_verify_dist). The draft model has a context of its
 * own; before each guess it is cut back to what it shares with the text
 * (the accepted tokens) and fed the rest, the main model's own token
 * included. k adapts as prompt lookup's does (lookup.h). */
#ifndef BN_DRAFT_H
#define BN_DRAFT_H

#include "lookup.h"
#include "model.h"
#include "sampler.h"

typedef struct bn_draft {
    bn_ctx *c;        /* the draft model's context (the caller's) */
    bn_sampler s;     /* the main sampler's options, draws of its own */
    bn_lookup k;      /* adaptive k and pacing: bn_lookup_update, bn_lookup_budget */
    float *logits;    /* n_vocab: the draft model's next token */
    bn_sampler_dist *q; /* draft_max of them when sampling; NULL when greedy */
    int off;          /* the text holds a K or V value beyond the draft's f16
                         cache: no guesses until bn_draft_restart */
} bn_draft;

/* seed is the main sampler's; the draft's draws use a seed made from it. */
int bn_draft_init(bn_draft *d, bn_ctx *c, const bn_sampler_opts *o, uint32_t draft_max, bn_err *e);
void bn_draft_release(bn_draft *d);

/* A new answer: the guess count starts afresh (bn_lookup_restart), the
 * draws from seed (the main sampler's bn_sampler_fork_seed, so that a
 * reseeded sampler repeats), and guessing is on again (off). */
void bn_draft_restart(bn_draft *d, uint64_t seed);

/* Guesses up to min(d->k.k, limit) tokens after text[0..n) into out (a
 * stop token ends the guess); *n_out is how many. A K or V value beyond
 * the draft's f16 cache (BN_E_KV_RANGE) is no error: the draft is only a
 * guesser, the main model checks every token, so the answer is the one
 * it gives without a draft. A guess the cache cannot hold is the last of
 * this call (the guesses after it would need its K and V); text it
 * cannot hold turns guessing off (d->off) until bn_draft_restart, as
 * every later call would meet it again. */
int bn_draft_propose(bn_draft *d, const uint32_t *text, size_t n, size_t limit, uint32_t *out, size_t *n_out,
                     bn_err *e);

/* A single stream's guesses before its next pass: prompt lookup's (lk)
 * or, with d, the draft model's, at most limit and as many as the pacing
 * state (d->k, else lk) allows (bn_lookup_budget). bn_gen and
 * bn_generator both guess through this. */
int bn_spec_guess(bn_lookup *lk, bn_draft *d, const uint32_t *text, size_t n, size_t limit, uint32_t *out,
                  size_t *n_out, bn_err *e);

/* A single stream's verify pass: the token ids[0] and its *nd guesses
 * after it, a logits row each (one row without guesses). When the KV
 * budget cannot hold the guesses the pass runs without them (*nd = 0),
 * as plain decoding's step, so an answer ends where plain decoding's
 * would. bn_gen and bn_generator both check through this. */
int bn_spec_eval(bn_ctx *c, const uint32_t *ids, size_t *nd, float *logits, bn_err *e);

/* The distribution guess j was drawn from; NULL when greedy (a point mass). */
static inline const bn_sampler_dist *bn_draft_q(const bn_draft *d, size_t j)
{
    return d->q ? &d->q[j] : NULL;
}

#endif
