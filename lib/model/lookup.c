/* lookup.c — n-gram drafts for prompt lookup decoding (lookup.h). */
#include "lookup.h"

#include <string.h>

/* guessing while it does not pay: first after 32 steps, then at doubling
 * intervals, a short pass (enough to see whether guesses are kept) */
enum { EXPLORE_FIRST = 32, EXPLORE_MAX = 512, EXPLORE_GUESSES = 4 };

void bn_lookup_init(bn_lookup *l, uint32_t ngram_max, uint32_t draft_max)
{
    memset(l, 0, sizeof *l);
    l->ngram_max = ngram_max ? ngram_max : 1;
    l->draft_max = draft_max ? draft_max : 1;
    if (l->draft_max > BN_LOOKUP_MAX_PASS - 1)
        l->draft_max = BN_LOOKUP_MAX_PASS - 1;
    l->k = l->draft_max < 4 ? l->draft_max : 4;
    l->explore = EXPLORE_FIRST;
}

void bn_lookup_pace(bn_lookup *l)
{
    l->paced = 1;
}

/* A pass of n tokens: its measured time, else a straight line through the
 * nearest measured ones (beyond the longest, its slope from one token, never
 * falling); -1 when only n = 1 is known. */
static double pass_cost(const bn_lookup *l, uint32_t n)
{
    if (l->cost[n] > 0)
        return l->cost[n];
    uint32_t lo = n - 1, hi = n + 1;
    while (lo > 1 && l->cost[lo] <= 0)
        lo--;
    while (hi <= BN_LOOKUP_MAX_PASS && l->cost[hi] <= 0)
        hi++;
    if (hi <= BN_LOOKUP_MAX_PASS)
        return l->cost[lo] + (l->cost[hi] - l->cost[lo]) * (n - lo) / (hi - lo);
    if (lo == 1)
        return -1;
    double slope = (l->cost[lo] - l->cost[1]) / (lo - 1);
    return l->cost[lo] + (slope > 0 ? slope : 0) * (n - lo);
}

uint32_t bn_lookup_budget(bn_lookup *l)
{
    if (!l->paced)
        return l->k;
    double step = l->cost[1];
    if (step <= 0)
        return 0; /* a plain step first, to know what a pass is weighed against */
    /* each guess right with probability p given the ones before it (a
     * prior of one kept and one not, so a few passes move it) */
    double p = (l->kept + 1) / (l->checked + 2), best = 1 / step, tokens = 1, pk = 1;
    uint32_t pick = 0;
    for (uint32_t k = 1; k <= l->k; k++) {
        double c = pass_cost(l, k + 1);
        if (c < 0)
            return l->k; /* no pass measured yet: try one */
        c += l->guess * k;
        pk *= p;
        tokens += pk;
        if (tokens / c > best) {
            best = tokens / c;
            pick = k;
        }
    }
    if (pick) {
        l->idle = 0;
        l->explore = EXPLORE_FIRST;
        return pick;
    }
    if (++l->idle < l->explore)
        return 0;
    l->idle = 0;
    l->explore = l->explore * 2 < EXPLORE_MAX ? l->explore * 2 : EXPLORE_MAX;
    return l->k < EXPLORE_GUESSES ? l->k : EXPLORE_GUESSES;
}

size_t bn_lookup_draft(const bn_lookup *l, const uint32_t *text, size_t n, size_t limit, uint32_t *out)
{
    size_t k = l->k < limit ? l->k : limit;
    if (!k || n < 2)
        return 0;
    size_t m = l->ngram_max < n - 1 ? l->ngram_max : n - 1;
    const uint32_t *suf;
    for (; m >= 1; m--) {
        suf = text + n - m;
        /* the latest start i < n - m: what followed it begins at i + m < n */
        for (size_t i = n - m; i-- > 0;) {
            size_t j = 0;
            while (j < m && text[i + j] == suf[j])
                j++;
            if (j < m)
                continue;
            size_t from = i + m, got = n - from < k ? n - from : k;
            for (size_t t = 0; t < got; t++)
                out[t] = text[from + t];
            return got;
        }
    }
    return 0;
}

void bn_lookup_update(bn_lookup *l, size_t drafted, size_t accepted)
{
    if (!drafted)
        return;
    /* the share kept follows the text: older passes count less */
    l->kept = 0.9 * l->kept + (double)accepted;
    l->checked = 0.9 * l->checked + (double)accepted + (accepted < drafted);
    if (accepted == drafted) /* all right: try more next time */
        l->k = l->k * 2 < l->draft_max ? l->k * 2 : l->draft_max;
    else if (accepted + 1 < l->k) /* a wrong guess costs its share of the pass: draft what was right */
        l->k = (uint32_t)accepted + 1;
}

/* Smoothed; one time slowed by something else moves it at most 2x a quarter. */
static void smooth(double *c, double seconds)
{
    if (*c <= 0)
        *c = seconds;
    else
        *c = 0.75 * *c + 0.25 * (seconds < 2 * *c ? seconds : 2 * *c);
}

void bn_lookup_time(bn_lookup *l, size_t n, double seconds)
{
    if (n < 1 || n > BN_LOOKUP_MAX_PASS || !(seconds > 0))
        return;
    /* a first pass of a size, with nothing to smooth it against, may have
     * paid for first touches: taken as at most 1.5 steps a token */
    if (n > 1 && l->cost[n] <= 0 && l->cost[1] > 0 && seconds > 1.5 * (double)n * l->cost[1])
        seconds = 1.5 * (double)n * l->cost[1];
    smooth(&l->cost[n], seconds);
}

void bn_lookup_keep_times(bn_lookup *to, const bn_lookup *from)
{
    memcpy(to->cost, from->cost, sizeof to->cost);
    to->guess = from->guess;
}

void bn_lookup_restart(bn_lookup *l)
{
    bn_lookup was = *l;
    bn_lookup_init(l, was.ngram_max, was.draft_max);
    bn_lookup_keep_times(l, &was);
    l->paced = was.paced;
}

void bn_lookup_guess_time(bn_lookup *l, size_t n, double seconds)
{
    if (n >= 1 && seconds > 0)
        smooth(&l->guess, seconds / (double)n);
}
