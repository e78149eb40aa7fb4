/* perplexity.c — scoring text: windows of BOS + (window-1) tokens, each
 * evaluated from an empty KV cache, every token predicted once; PPL =
 * exp(mean NLL) with the standard error llama-perplexity reports,
 * PPL · sqrt(var(NLL) / (N-1)). The windows and the sums are
 * perplexity.h's, shared with perplexity_batch.c. */
#include "perplexity.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

double bn_ppl_nll(const float *l, uint32_t V, uint32_t target)
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

int bn_ppl_plan_init(bn_ppl_plan *p, const bn_ctx *c, const bn_model *m, const uint32_t *ids, size_t n,
                     const bn_ppl_opts *o, bn_err *e)
{
    memset(p, 0, sizeof *p);
    p->n = n;
    p->bos = m->hp.bos_id;
    p->window = o->window;
    p->lead = p->bos >= 0 ? 1 : 0;
    uint32_t V = m->hp.n_vocab, W = o->window;
    if (bn_ctx_n_ctx(c) < 2)
        return bn_fail_code(e, BN_E_INVALID, "a context of %u position is too short to score (a window is 2 or more)",
                            bn_ctx_n_ctx(c));
    if (W < 2 || W > bn_ctx_n_ctx(c))
        return bn_fail_code(e, BN_E_INVALID, "perplexity window of %u tokens must be 2..%u (the context)", W,
                            bn_ctx_n_ctx(c));
    p->span = W - p->lead;
    /* without a BOS a window's first token is not predicted: it scores one fewer */
    size_t scored = p->bos >= 0 ? p->span : p->span - 1;
    p->stride = o->stride ? o->stride : scored;
    if (p->stride > scored) /* was cut to span without a word */
        return bn_fail_code(e, BN_E_INVALID,
                            "a stride of %u text tokens is longer than the %u a window scores: the tokens between "
                            "windows would go unscored",
                            (unsigned)p->stride, (unsigned)scored);
    if (n + p->lead < 2)
        return bn_fail_code(e, BN_E_INVALID, "the text is too short to score (%zu tokens)", n);
    for (size_t i = 0; i < n; i++)
        if (ids[i] >= V)
            return bn_fail_code(e, BN_E_INVALID, "token id %u is outside the vocabulary", ids[i]);
    return 0;
}

void bn_ppl_first(const bn_ppl_plan *p, bn_ppl_window *w)
{
    w->a = 0;
    w->b = p->span < p->n ? p->span : p->n;
    w->from = p->lead ? 0 : 1;
}

int bn_ppl_next(const bn_ppl_plan *p, bn_ppl_window *w)
{
    if (w->b == p->n)
        return 0;
    w->from = w->b;
    w->a += p->stride;
    w->b = w->a + p->span < p->n ? w->a + p->span : p->n;
    return 1;
}

size_t bn_ppl_fill(const bn_ppl_plan *p, const bn_ppl_window *w, const uint32_t *ids, uint32_t *win)
{
    size_t nw = 0;
    if (p->lead)
        win[nw++] = (uint32_t)p->bos;
    for (size_t i = w->a; i < w->b; i++)
        win[nw++] = ids[i];
    return nw;
}

void bn_ppl_result(const bn_ppl_sum *s, bn_ppl *r)
{
    double N = (double)s->n, mean = s->sum / N, var = s->sum2 / N - mean * mean;
    if (var < 0)
        var = 0;
    r->n_scored = s->n;
    r->nll = mean;
    r->nll_sd = sqrt(var);
    r->ppl = exp(mean);
    r->ppl_err = N > 1 ? r->ppl * sqrt(var / (N - 1)) : 0;
}

int bn_perplexity(bn_ctx *c, const bn_model *m, const uint32_t *ids, size_t n, const bn_ppl_opts *o, bn_ppl *r,
                  bn_err *e)
{
    memset(r, 0, sizeof *r);
    r->n_tokens = n;
    bn_ppl_plan p;
    if (bn_ppl_plan_init(&p, c, m, ids, n, o, e))
        return -1;
    uint32_t V = m->hp.n_vocab;
    uint32_t *win = malloc(p.window * sizeof *win);
    float *lg = malloc((size_t)BN_KERN_MAX_N * V * sizeof *lg);
    if (!win || !lg) {
        free(win);
        free(lg);
        return bn_fail_code(e, BN_E_NOMEM, "out of memory");
    }
    bn_ppl_sum s = {0};
    bn_ppl_window w;
    int rc = 0;
    bn_ppl_first(&p, &w);
    do {
        size_t nw = bn_ppl_fill(&p, &w, ids, win);
        bn_ctx_truncate(c, 0);
        for (size_t off = 0; off < nw; off += BN_KERN_MAX_N) {
            size_t nb = nw - off < BN_KERN_MAX_N ? nw - off : BN_KERN_MAX_N;
            int erc = bn_ctx_eval(c, win + off, nb, lg, 1, e);
            if (erc) {
                const char *why;
                if (erc == BN_E_KV_RANGE) { /* its position in the window: the window says which */
                    size_t at = off + bn_ctx_range_token(c, &why);
                    bn_fail_code(e, erc, "window %u, position %zu: %s", r->n_windows + 1, at, why);
                }
                rc = -1;
                goto done;
            }
            /* window position j predicts position j+1 = text index a+j+1-lead */
            for (size_t j = off; j < off + nb && j + 1 < nw; j++)
                if (w.a + j + 1 - p.lead >= w.from)
                    bn_ppl_add(&s, bn_ppl_nll(lg + (j - off) * V, V, win[j + 1]));
        }
        r->n_windows++;
        if (o->progress && s.n) {
            fprintf(o->progress, "[%u] %.4f\n", r->n_windows, exp(s.sum / (double)s.n));
            fflush(o->progress);
        }
    } while (bn_ppl_next(&p, &w));
    if (!s.n) {
        rc = bn_fail_code(e, BN_E_INVALID, "the text is too short to score");
        goto done;
    }
    bn_ppl_result(&s, r);
done:
    free(win);
    free(lg);
    bn_ctx_truncate(c, 0);
    return rc;
}
