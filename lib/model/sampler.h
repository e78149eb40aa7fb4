/* sampler.h — picking the next token from logits: penalties, temperature,
 * top-k, top-p, min-p, with its own PRNG (xoshiro256**) so runs with the
 * same seed repeat exactly and nothing global is touched. */
#ifndef BN_SAMPLER_H
#define BN_SAMPLER_H

#include "core.h"

/* The options are the public bn_sampler_params (bn.h). */
typedef bn_sampler_params bn_sampler_opts;

/* Defaults: temp 0.8, top-k 40, top-p 0.95, min-p 0.05, no penalties,
 * last 64 tokens, seed 0 (the caller picks one). */
void bn_sampler_defaults(bn_sampler_opts *o);
/* What is wrong with these options for a vocabulary of n_vocab ("temp
 * must be 0..10000"), or NULL: the checks bn_sampler_new makes. */
const char *bn_sampler_opts_bad(const bn_sampler_opts *o, uint32_t n_vocab);

/* The public bn_sampler handle (bn.h) is this struct; inside the library
 * it may also live by value (bn_sampler_init / bn_sampler_release). */
struct bn_sampler {
    bn_sampler_opts o;
    uint64_t rng[4];
    uint32_t n_vocab;
    uint8_t *seen;  /* penalty marks, n_vocab */
    /* n_vocab candidates and weights when a draw may take more than 64
     * (top_k 0 or over 64, temp > 0), else NULL */
    struct bn_sampler_cand *cand;
    double *weight;
    bn_logit_bias *bias; /* the sampler's copy of o.logit_bias */
};

int bn_sampler_init(bn_sampler *s, const bn_sampler_opts *o, uint32_t n_vocab, bn_err *e);

/* A seed made from s's state, which it leaves as it is (no draw taken):
 * a second stream of draws that repeats when s is reseeded (a draft
 * model's, draft.h). */
uint64_t bn_sampler_fork_seed(const bn_sampler *s);
/* Frees what init allocated; the struct itself is the caller's (a handle
 * from bn_sampler_new is freed with bn_sampler_free instead). */
void bn_sampler_release(bn_sampler *s);
/* bn_sampler_sample, bn_sampler_new / free / reseed are public (bn.h). */
/* Speculative decoding's check of a drafted token (a point mass: the
 * draft proposes draft with certainty). Greedy (temp <= 0): the argmax,
 * as bn_sampler_sample. Otherwise draft is kept with probability p(draft)
 * under the very distribution bn_sampler_sample draws from (penalties,
 * top-k, temperature, top-p, min-p), else a token is drawn from p without
 * draft, renormalized: the token returned follows p exactly, and it is
 * draft exactly when the draft was accepted. logits are changed in place
 * (penalties), as by bn_sampler_sample. */
uint32_t bn_sampler_verify(bn_sampler *s, float *logits, const uint32_t *hist, size_t n_hist, uint32_t draft);

/* A draft model's distribution at one position: q[id] for every token
 * (0 outside the n tokens listed in id), summing to 1. */
typedef struct bn_sampler_dist {
    size_t n;
    uint32_t *id; /* n_vocab slots */
    double *q;    /* n_vocab */
} bn_sampler_dist;
int bn_sampler_dist_init(bn_sampler_dist *q, uint32_t n_vocab); /* -1: out of memory */
void bn_sampler_dist_release(bn_sampler_dist *q);
/* bn_sampler_sample (the same draw, the same use of the PRNG) that also
 * leaves in q the distribution the token was drawn from: penalties,
 * top-k, temperature, top-p, min-p applied as for the draw; greedy, a
 * point mass on the argmax. */
uint32_t bn_sampler_sample_dist(bn_sampler *s, float *logits, const uint32_t *hist, size_t n_hist, bn_sampler_dist *q);
/* bn_sampler_verify of a draft drawn from q (bn_sampler_sample_dist of a
 * draft model): draft is kept with probability min(1, p(draft)/q(draft)),
 * else a token is drawn from max(0, p - q) renormalized, p being what
 * bn_sampler_sample draws from; the token returned follows p exactly.
 * q NULL is a point mass on draft: bn_sampler_verify. Greedy: the argmax. */
uint32_t bn_sampler_verify_dist(bn_sampler *s, float *logits, const uint32_t *hist, size_t n_hist, uint32_t draft,
                                const bn_sampler_dist *q);
/* A uniform double in [0, 1) from the sampler's PRNG. */
double bn_sampler_uniform(bn_sampler *s);

#endif
