/* draft.c — a draft model's guesses (draft.h). */
#include "draft.h"

#include <stdlib.h>
#include <string.h>

int bn_draft_init(bn_draft *d, bn_ctx *c, const bn_sampler_opts *o, uint32_t draft_max, bn_err *e)
{
    memset(d, 0, sizeof *d);
    uint32_t V = bn_ctx_model(c)->hp.n_vocab;
    bn_sampler_opts so = *o;
    so.seed = o->seed ^ 0xD1B54A32D192ED03ull; /* draws apart from the main sampler's */
    if (bn_sampler_init(&d->s, &so, V, e))
        return -1;
    d->c = c;
    bn_lookup_init(&d->k, 1, draft_max);
    if (!(d->logits = malloc((size_t)V * sizeof *d->logits)))
        goto oom;
    if (o->temp > 0) {
        if (!(d->q = calloc(d->k.draft_max, sizeof *d->q)))
            goto oom;
        for (uint32_t j = 0; j < d->k.draft_max; j++)
            if (bn_sampler_dist_init(&d->q[j], V))
                goto oom;
    }
    return 0;
oom:
    bn_draft_release(d);
    return bn_fail_code(e, BN_E_NOMEM, "draft model: out of memory");
}

int bn_spec_eval(bn_ctx *c, const uint32_t *ids, size_t *nd, float *logits, bn_err *e)
{
    int rc = bn_ctx_eval(c, ids, *nd + 1, logits, *nd ? BN_EVAL_ALL_LOGITS : 0, e);
    const char *why;
    /* (a refused pass changes nothing in the cache) a K or V value of a
     * guess beyond the f16 cache: the token itself decides, alone */
    if ((rc == BN_E_KV_FULL || (rc == BN_E_KV_RANGE && bn_ctx_range_token(c, &why) > 0)) && *nd) {
        *nd = 0;
        rc = bn_ctx_eval(c, ids, 1, logits, 0, e);
    }
    return rc;
}

void bn_draft_restart(bn_draft *d, uint64_t seed)
{
    bn_lookup_restart(&d->k);
    bn_sampler_reseed(&d->s, seed);
    d->off = 0;
}

void bn_draft_release(bn_draft *d)
{
    if (d->q)
        for (uint32_t j = 0; j < d->k.draft_max; j++)
            bn_sampler_dist_release(&d->q[j]);
    free(d->q);
    free(d->logits);
    bn_sampler_release(&d->s);
    memset(d, 0, sizeof *d);
}

int bn_spec_guess(bn_lookup *lk, bn_draft *d, const uint32_t *text, size_t n, size_t limit, uint32_t *out,
                  size_t *n_out, bn_err *e)
{
    size_t want = bn_lookup_budget(d ? &d->k : lk);
    if (want < limit)
        limit = want;
    *n_out = 0;
    if (!limit)
        return 0;
    if (d)
        return bn_draft_propose(d, text, n, limit, out, n_out, e);
    *n_out = bn_lookup_draft(lk, text, n, limit, out);
    return 0;
}

int bn_draft_propose(bn_draft *d, const uint32_t *text, size_t n, size_t limit, uint32_t *out, size_t *n_out,
                     bn_err *e)
{
    *n_out = 0;
    size_t k = d->k.k < limit ? d->k.k : limit, n_ctx = bn_ctx_n_ctx(d->c);
    if (k > d->k.draft_max)
        k = d->k.draft_max;
    if (n + k > n_ctx) /* the draft model's context may be the shorter */
        k = n_ctx > n ? n_ctx - n : 0;
    if (!k || !n || d->off)
        return 0;
    double t0 = bn_seconds();
    /* Cut the draft's cache back to what it shares with the text (drafts
     * the main model did not keep go) and evaluate the rest: the main
     * model's own token, and a last kept draft never evaluated here. The
     * last token is evaluated again if it is all there is, for logits. */
    const uint32_t *held = bn_ctx_tokens(d->c);
    size_t common = 0, pos = bn_ctx_pos(d->c);
    while (common < pos && common < n && held[common] == text[common])
        common++;
    if (common == n)
        common--;
    bn_ctx_truncate(d->c, (uint32_t)common);
    for (size_t off = common; off < n; off += BN_KERN_MAX_N) {
        size_t nb = n - off < BN_KERN_MAX_N ? n - off : BN_KERN_MAX_N;
        int rc = bn_ctx_eval(d->c, text + off, nb, d->logits, 0, e);
        if (rc == BN_E_KV_RANGE) { /* text it cannot hold: no guesses for the rest of the answer (draft.h) */
            d->off = 1;
            return 0;
        }
        if (rc)
            return rc;
    }
    size_t behind = n - common;
    const bn_model *m = bn_ctx_model(d->c);
    for (size_t t = 0; t < k; t++) {
        /* penalties see the text and the guesses so far, as the main
         * sampler will when it checks this one */
        const uint32_t *hist = bn_ctx_tokens(d->c);
        size_t n_hist = bn_ctx_pos(d->c);
        uint32_t x = d->q ? bn_sampler_sample_dist(&d->s, d->logits, hist, n_hist, &d->q[t])
                          : bn_sampler_sample(&d->s, d->logits, hist, n_hist);
        out[(*n_out)++] = x;
        if (t + 1 == k || bn_model_is_stop(m, x))
            break;
        int rc = bn_ctx_eval(d->c, &x, 1, d->logits, 0, e);
        if (rc == BN_E_KV_RANGE) /* x, drawn from the last row, is a guess still; none after it (draft.h) */
            break;
        if (rc)
            return rc;
    }
    /* what the guesses cost, for pacing: a call that caught up with one or
     * two tokens (the last pass's) is the steady state; a longer catch-up
     * (the prompt, or text written while guessing did not pay) is not */
    if (behind <= 2)
        bn_lookup_guess_time(&d->k, *n_out, bn_seconds() - t0);
    return 0;
}
