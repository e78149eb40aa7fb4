/* lookup.h — prompt lookup decoding's drafts (lookup.c): the next tokens
 * guessed by finding the text's last n tokens earlier in the text (the
 * prompt or the answer so far) and copying what followed them there. No
 * second model: a guess costs a scan of the text. The main model checks
 * the guesses in one batched pass (generate.c), so the output is what
 * plain decoding gives; the guesses only decide how many tokens a pass
 * yields. */
#ifndef BN_LOOKUP_H
#define BN_LOOKUP_H

#include <stddef.h>
#include <stdint.h>

typedef struct bn_lookup {
    uint32_t ngram_max; /* longest suffix looked up (>= 1); shorter ones down to 1 after it */
    uint32_t draft_max; /* most tokens drafted for one pass (>= 1) */
    uint32_t k;         /* tokens to draft next: grows while drafts are accepted whole,
                           shrinks to about what was accepted on a rejection */
} bn_lookup;

void bn_lookup_init(bn_lookup *l, uint32_t ngram_max, uint32_t draft_max);

/* Drafts up to min(l->k, limit) tokens into out: the tokens that followed
 * the latest earlier occurrence of text's last m tokens, for the largest m
 * <= ngram_max that occurs. Returns how many (0: no match). */
size_t bn_lookup_draft(const bn_lookup *l, const uint32_t *text, size_t n, size_t limit, uint32_t *out);

/* After a pass that checked drafted tokens of which accepted were kept. */
void bn_lookup_update(bn_lookup *l, size_t drafted, size_t accepted);

#endif
