/* lookup.h — prompt lookup decoding's drafts (lookup.c): the next tokens
 * guessed by finding the text's last n tokens earlier in the text (the
 * prompt or the answer so far) and copying what followed them there. No
 * second model: a guess costs a scan of the text. The main model checks
 * the guesses in one batched pass (generate.c), so the output is what
 * plain decoding gives; the guesses only decide how many tokens a pass
 * yields.
 *
 * How many to guess: k grows while guesses are kept whole and shrinks to
 * about what was kept after a wrong one. With pacing on (greedy decoding,
 * where the number of guesses cannot change the output) the measured cost
 * of passes decides too: a pass of n tokens costs little more than one
 * step on a model read from memory but about n steps on one that stays in
 * the caches, where guesses that are mostly right still lose time. A draft
 * model (draft.h) paces its guesses the same way, their own cost added. */
#ifndef BN_LOOKUP_H
#define BN_LOOKUP_H

#include <stddef.h>
#include <stdint.h>

enum { BN_LOOKUP_MAX_PASS = 128 }; /* tokens in one pass, at most (BN_KERN_MAX_N) */

typedef struct bn_lookup {
    uint32_t ngram_max; /* longest suffix looked up (>= 1); shorter ones down to 1 after it */
    uint32_t draft_max; /* most tokens drafted for one pass (>= 1) */
    uint32_t k;         /* tokens to draft next: grows while drafts are accepted whole,
                           shrinks to about what was accepted on a rejection */
    /* pacing (bn_lookup_pace) */
    int paced;
    double cost[BN_LOOKUP_MAX_PASS + 1]; /* seconds of a pass of n tokens, smoothed; 0: not seen */
    double guess;                        /* seconds a guessed token costs (a draft model's steps), smoothed */
    double kept, checked;                /* guesses kept / checked (up to the first wrong one), decaying */
    uint32_t idle, explore;              /* steps without guesses; steps before guessing again anyway */
} bn_lookup;

void bn_lookup_init(bn_lookup *l, uint32_t ngram_max, uint32_t draft_max);

/* Turns pacing on: bn_lookup_budget then weighs guesses against the pass
 * times bn_lookup_time reports. Only where the number of guesses cannot
 * change the output (greedy decoding): the times differ run to run. */
void bn_lookup_pace(bn_lookup *l);

/* How many tokens to guess before the next pass, at most: l->k, or with
 * pacing the count whose expected tokens per second is highest (0: a plain
 * step), from the passes' times and the share of guesses kept (each guess
 * taken as right with that probability, given the ones before it). While
 * guessing does not pay it still guesses now and then, at intervals that
 * double up to 512 steps, so that a text that starts repeating itself is
 * noticed. */
uint32_t bn_lookup_budget(bn_lookup *l);

/* Drafts up to min(l->k, limit) tokens into out: the tokens that followed
 * the latest earlier occurrence of text's last m tokens, for the largest m
 * <= ngram_max that occurs. Returns how many (0: no match). */
size_t bn_lookup_draft(const bn_lookup *l, const uint32_t *text, size_t n, size_t limit, uint32_t *out);

/* After a pass that checked drafted tokens of which accepted were kept. */
void bn_lookup_update(bn_lookup *l, size_t drafted, size_t accepted);

/* The wall time of a pass of n tokens (1: a plain step), for pacing. */
void bn_lookup_time(bn_lookup *l, size_t n, double seconds);

/* Carries the measured times (not k or the share kept, which follow the
 * text) from one answer's bn_lookup to the next's. */
void bn_lookup_keep_times(bn_lookup *to, const bn_lookup *from);

/* A new answer with the same l: k and the share kept start afresh; the
 * limits, the pacing and the measured times stay. */
void bn_lookup_restart(bn_lookup *l);

/* The wall time of guessing n tokens (a draft model's steps, draft.c: k
 * guesses then cost a pass of k + 1 tokens and k of these shares), for
 * pacing. */
void bn_lookup_guess_time(bn_lookup *l, size_t n, double seconds);

#endif
