/* sampler.h — picking the next token from logits: penalties, temperature,
 * top-k, top-p, min-p, with its own PRNG (xoshiro256**) so runs with the
 * same seed repeat exactly and nothing global is touched. */
#ifndef BN_SAMPLER_H
#define BN_SAMPLER_H

#include "core.h"

typedef struct bn_sampler_opts {
    float temp;        /* 0: greedy (argmax, lowest id on ties) */
    uint32_t top_k;    /* 0: off */
    float top_p;       /* 1: off */
    float min_p;       /* 0: off */
    float repeat_penalty;   /* 1: off; logits of recent tokens: >0 divided, <0 multiplied */
    float presence_penalty; /* 0: off; subtracted once from every recent token's logit */
    uint32_t penalty_last_n;/* how many recent tokens the penalties look at (0: all) */
    uint64_t seed;
} bn_sampler_opts;

/* Defaults: temp 0.8, top-k 40, top-p 0.95, min-p 0.05, no penalties,
 * last 64 tokens, seed 0 (the caller picks one). */
void bn_sampler_defaults(bn_sampler_opts *o);

typedef struct bn_sampler {
    bn_sampler_opts o;
    uint64_t rng[4];
    uint32_t n_vocab;
    uint8_t *seen;  /* penalty marks, n_vocab */
} bn_sampler;

int bn_sampler_init(bn_sampler *s, const bn_sampler_opts *o, uint32_t n_vocab, bn_err *e);
/* Frees what init allocated; the struct itself is the caller's (a handle
 * from bn_sampler_new is freed with bn_sampler_free instead). */
void bn_sampler_release(bn_sampler *s);
/* Chooses a token; logits (n_vocab) are modified. hist holds the tokens so
 * far (prompt and output) for the penalties. */
uint32_t bn_sampler_sample(bn_sampler *s, float *logits, const uint32_t *hist, size_t n_hist);
/* A uniform double in [0, 1) from the sampler's PRNG. */
double bn_sampler_uniform(bn_sampler *s);

#endif
