/* api_embed.c — the public embedding calls (bn.h: bn_model_is_embedding,
 * bn_embed_batch, bn_embed) over embed.c's passes: the inputs checked
 * first (nothing evaluated when one is wrong), then run n_seq at a time
 * as bn-infer --embed runs its records, so the vectors are its bytes. */
#include "bn.h"
#include "embed.h"

#include <stdlib.h>

int bn_model_is_embedding(const bn_model *m)
{
    return m && m->hp.pooling != BN_POOL_NONE;
}

/* Input i as an embedding input (its end token appended), or why not. */
static int take_input(const bn_hparams *hp, size_t n_ctx, size_t i, const uint32_t *ids, size_t n, bn_tokens *rec,
                      bn_err *e)
{
    if (n && !ids)
        return bn_fail_code(e, BN_E_INVALID, "bn_embed: input %zu: ids is NULL", i);
    for (size_t p = 0; p < n; p++) {
        if (ids[p] >= hp->n_vocab)
            return bn_fail_code(e, BN_E_INVALID, "bn_embed: input %zu: token %zu: id %u is outside the vocabulary (0..%u)",
                                i, p, ids[p], hp->n_vocab - 1);
        if (bn_tokens_push(rec, ids[p], BN_TOK_NO_OFFSET))
            return bn_fail_code(e, BN_E_NOMEM, "bn_embed: out of memory");
    }
    if (bn_embed_input(hp, rec, e))
        return BN_E_NOMEM;
    if (!rec->n)
        return bn_fail_code(e, BN_E_INVALID, "bn_embed: input %zu is empty (and the model appends no end token)", i);
    if (rec->n > n_ctx)
        return bn_fail_code(e, BN_E_CONTEXT_FULL,
                            "bn_embed: input %zu: %zu tokens (the end token included), the context holds %zu", i,
                            rec->n, n_ctx);
    return 0;
}

/* The inputs in passes of up to n_seq (sequences 0..n_seq-1, all live and
 * empty); a pass the KV budget cannot hold runs one input at a time. The
 * refused pass's error stays in pe: a call that then succeeds leaves the
 * caller's bn_err as it was (bn.h: set only when a call fails), and one
 * that fails names the input that does not fit. */
static int run_passes(bn_ctx *c, const bn_tokens *recs, size_t k, size_t d, float *out, bn_err *e)
{
    size_t par = bn_ctx_n_seq(c);
    for (size_t i = 0; i < k; i += par) {
        size_t kk = k - i < par ? k - i : par;
        bn_err pe;
        size_t at = i; /* the input a budget too small for one input names */
        int rc = bn_embed_run(c, recs + i, kk, out + i * d, &pe);
        if (rc == BN_E_KV_FULL && kk > 1)
            for (size_t j = rc = 0; j < kk && !rc; j++)
                rc = bn_embed_run(c, recs + (at = i + j), 1, out + (i + j) * d, &pe);
        if (rc == BN_E_KV_FULL)
            return bn_fail_code(e, rc, "bn_embed: input %zu: %s", at, pe.msg);
        if (rc) {
            *e = pe;
            return rc;
        }
    }
    return 0;
}

int bn_embed_batch(bn_ctx *c, const uint32_t *const *ids, const size_t *n, size_t k, float *out, bn_err *e)
{
    bn_err own;
    e = e ? e : &own; /* the status is e->code, whether the caller wants the message or not */
    if (!c || (k && (!ids || !n || !out)))
        return bn_fail_code(e, BN_E_INVALID, "bn_embed: %s is NULL",
                            !c ? "the context" : !ids ? "ids" : !n ? "n" : "out");
    const bn_model *m = bn_ctx_model(c);
    if (!bn_model_is_embedding(m) || !bn_ctx_gives_states(c))
        return bn_fail_code(e, BN_E_INVALID, "bn_embed: %s: not an embedding model (no model.pooling)", m->src.name);
    uint32_t n_seq = bn_ctx_n_seq(c);
    for (uint32_t s = 0; s < n_seq; s++)
        if (bn_ctx_seq_pos(c, (int)s))
            return bn_fail_code(e, BN_E_INVALID, "bn_embed: sequence %u holds %u positions: bn_embed needs empty ones",
                                s, bn_ctx_seq_pos(c, (int)s));
    if (!k)
        return BN_OK;
    bn_tokens *recs = calloc(k, sizeof *recs);
    unsigned char *was_live = calloc(n_seq, 1);
    int rc = !recs || !was_live ? bn_fail_code(e, BN_E_NOMEM, "bn_embed: out of memory") : 0;
    for (size_t i = 0; i < k && !rc; i++)
        rc = take_input(&m->hp, bn_ctx_n_ctx(c), i, ids[i], n[i], &recs[i], e);
    if (!rc) {
        for (uint32_t s = 0; s < n_seq; s++) /* those not live are freed again after */
            was_live[s] = (unsigned char)bn_ctx_seq_live(c, (int)s);
        size_t d = m->hp.n_embd;
        rc = bn_embed_seqs_live(c, e);
        if (!rc)
            rc = run_passes(c, recs, k, d, out, e);
        for (uint32_t s = 0; s < n_seq; s++)
            if (!was_live[s])
                bn_ctx_seq_free(c, (int)s);
        for (size_t i = 0; i < k && !rc; i++)
            if (!bn_embed_finite(out + i * d, d))
                rc = bn_fail_code(e, BN_ERROR,
                                  "bn_embed: input %zu: the embedding is not finite (a value overflowed, or the model's "
                                  "weights hold inf or NaN)",
                                  i);
    }
    for (size_t i = 0; recs && i < k; i++)
        bn_tokens_free(&recs[i]);
    free(recs);
    free(was_live);
    return rc ? e->code : BN_OK;
}

int bn_embed(bn_ctx *c, const uint32_t *ids, size_t n, float *vec, bn_err *e)
{
    return bn_embed_batch(c, &ids, &n, 1, vec, e);
}
