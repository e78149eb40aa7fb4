/* lookup.c — n-gram drafts for prompt lookup decoding (lookup.h). */
#include "lookup.h"

void bn_lookup_init(bn_lookup *l, uint32_t ngram_max, uint32_t draft_max)
{
    l->ngram_max = ngram_max ? ngram_max : 1;
    l->draft_max = draft_max ? draft_max : 1;
    l->k = l->draft_max < 4 ? l->draft_max : 4;
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
    if (accepted == drafted) /* all right: try more next time */
        l->k = l->k * 2 < l->draft_max ? l->k * 2 : l->draft_max;
    else if (accepted + 1 < l->k) /* a wrong guess costs its share of the pass: draft what was right */
        l->k = (uint32_t)accepted + 1;
}
