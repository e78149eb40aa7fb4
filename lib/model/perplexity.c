/* perplexity.c — scoring text: windows of BOS + (window-1) tokens, each
 * evaluated from an empty KV cache, every token predicted once; PPL =
 * exp(mean NLL) with the standard error llama-perplexity reports,
 * PPL · sqrt(var(NLL) / (N-1)). */
#include "generate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* -log softmax(l)[target], in double. */
static double nll_of(const float *l, uint32_t V, uint32_t target)
{
    float mx = l[0];
    for (uint32_t i = 1; i < V; i++)
        if (l[i] > mx)
            mx = l[i];
    double sum = 0;
    for (uint32_t i = 0; i < V; i++)
        sum += exp((double)l[i] - mx);
    return log(sum) - ((double)l[target] - mx);
}

int bn_perplexity(bn_ctx *c, const bn_model *m, const uint32_t *ids, size_t n, const bn_ppl_opts *o, bn_ppl *r,
                  bn_err *e)
{
    memset(r, 0, sizeof *r);
    r->n_tokens = n;
    int32_t bos = m->hp.bos_id;
    uint32_t V = m->hp.n_vocab, W = o->window;
    size_t lead = bos >= 0 ? 1 : 0; /* window positions before the text */
    if (W < 2 || W > bn_ctx_n_ctx(c))
        return bn_fail_code(e, BN_E_INVALID, "perplexity window of %u tokens must be 2..%u (the context)", W,
                            bn_ctx_n_ctx(c));
    size_t span = W - lead; /* text tokens per window */
    size_t stride = o->stride ? o->stride : (bos >= 0 ? span : span - 1);
    if (stride > span)
        stride = span;
    if (n + lead < 2)
        return bn_fail_code(e, BN_E_INVALID, "the text is too short to score (%zu tokens)", n);
    for (size_t i = 0; i < n; i++)
        if (ids[i] >= V)
            return bn_fail_code(e, BN_E_INVALID, "token id %u is outside the vocabulary", ids[i]);
    uint32_t *win = malloc(W * sizeof *win);
    float *lg = malloc((size_t)BN_KERN_MAX_N * V * sizeof *lg);
    if (!win || !lg) {
        free(win);
        free(lg);
        return bn_fail_code(e, BN_E_NOMEM, "out of memory");
    }
    double sum = 0, sum2 = 0;
    size_t scored_upto = lead ? 0 : 1; /* text tokens before this are predicted already */
    int rc = 0;
    for (size_t a = 0;; a += stride) {
        size_t b = a + span < n ? a + span : n; /* text [a, b) */
        size_t nw = 0;
        if (lead)
            win[nw++] = (uint32_t)bos;
        for (size_t i = a; i < b; i++)
            win[nw++] = ids[i];
        bn_ctx_truncate(c, 0);
        for (size_t off = 0; off < nw; off += BN_KERN_MAX_N) {
            size_t nb = nw - off < BN_KERN_MAX_N ? nw - off : BN_KERN_MAX_N;
            if (bn_ctx_eval(c, win + off, nb, lg, 1, e)) {
                rc = -1;
                goto done;
            }
            /* window position j predicts position j+1 = text index a+j+1-lead */
            for (size_t j = off; j < off + nb && j + 1 < nw; j++) {
                size_t ti = a + j + 1 - lead;
                if (ti < scored_upto)
                    continue;
                double v = nll_of(lg + (j - off) * V, V, win[j + 1]);
                sum += v;
                sum2 += v * v;
                r->n_scored++;
            }
        }
        scored_upto = b;
        r->n_windows++;
        if (o->progress && r->n_scored) {
            fprintf(o->progress, "[%u] %.4f\n", r->n_windows, exp(sum / (double)r->n_scored));
            fflush(o->progress);
        }
        if (b == n)
            break;
    }
    if (!r->n_scored) {
        rc = bn_fail_code(e, BN_E_INVALID, "the text is too short to score");
        goto done;
    }
    double N = (double)r->n_scored, mean = sum / N, var = sum2 / N - mean * mean;
    if (var < 0)
        var = 0;
    r->nll = mean;
    r->nll_sd = sqrt(var);
    r->ppl = exp(mean);
    r->ppl_err = N > 1 ? r->ppl * sqrt(var / (N - 1)) : 0;
done:
    free(win);
    free(lg);
    bn_ctx_truncate(c, 0);
    return rc;
}
