/* perplexity.h — what scoring one text alone (perplexity.c) and many
 * texts in shared passes (perplexity_batch.c) have in common, so that both
 * cut the same windows and add the same numbers in the same order: their
 * results are equal bit for bit. */
#ifndef BN_PERPLEXITY_H
#define BN_PERPLEXITY_H

#include "generate.h"

/* How a text is cut into windows: window k covers text tokens [a, b) with
 * a = k * stride and b = min(a + span, n), after `lead` positions before
 * the text (BOS); it scores text tokens from the previous window's b on
 * (the first window: from 0, or from 1 without a BOS). The last window is
 * the first with b = n. */
typedef struct bn_ppl_plan {
    size_t n;      /* text tokens */
    size_t lead;   /* 1 with a BOS, else 0 */
    size_t span;   /* text tokens per window: window - lead */
    size_t stride; /* text tokens between window starts */
    int32_t bos;
    uint32_t window;
} bn_ppl_plan;

/* Checks the window against the context and the text (long enough, ids
 * in the vocabulary) and fills p. */
int bn_ppl_plan_init(bn_ppl_plan *p, const bn_ctx *c, const bn_model *m, const uint32_t *ids, size_t n,
                     const bn_ppl_opts *o, bn_err *e);

/* One window's bounds and the first text token it scores. */
typedef struct bn_ppl_window {
    size_t a, b, from;
} bn_ppl_window;

/* The first window of a plan; returns 0 when w was the last. */
void bn_ppl_first(const bn_ppl_plan *p, bn_ppl_window *w);
int bn_ppl_next(const bn_ppl_plan *p, bn_ppl_window *w);

/* The window's token ids (BOS, then text [a, b)) into win[0..window);
 * returns how many. */
size_t bn_ppl_fill(const bn_ppl_plan *p, const bn_ppl_window *w, const uint32_t *ids, uint32_t *win);

/* -log softmax(l)[target] over V logits, in double. */
double bn_ppl_nll(const float *l, uint32_t V, uint32_t target);

/* Running sums of NLL values, added in text order. */
typedef struct bn_ppl_sum {
    double sum, sum2;
    uint64_t n;
} bn_ppl_sum;

static inline void bn_ppl_add(bn_ppl_sum *s, double v)
{
    s->sum += v;
    s->sum2 += v * v;
    s->n++;
}

/* Mean, deviation, perplexity and its error from the sums into r
 * (n_scored too; the other counts are the caller's). */
void bn_ppl_result(const bn_ppl_sum *s, bn_ppl *r);

#endif
