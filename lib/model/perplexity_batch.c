/* perplexity_batch.c — many texts scored in shared forward passes
 * (generate.h, bn_perplexity_batch): every window of every text is a job
 * on a sequence of its own, up to n_par of them evaluated together by
 * bn_ctx_eval_batch, so the weights are read once per pass for all of
 * them. A window's logits do not depend on what runs beside it (the
 * batch contract), and its NLL values are added to the sums only when
 * every window before it has been, in text order: each text's result is
 * bit-identical to bn_perplexity's. */
#include "perplexity.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* One window of one text, from its start to its commit. */
typedef struct job {
    size_t text;
    uint32_t no;      /* window number within its text, from 1 */
    int last;         /* the text's last window */
    bn_ppl_window w;
    uint32_t *win;    /* BOS + text tokens */
    size_t nw, fed;   /* tokens, and how many are evaluated */
    double *nll;      /* values of the positions it scores, in order */
    size_t n_nll;
    int seq;          /* its sequence; -1 once evaluated */
    uint32_t blocks;  /* KV blocks the whole window takes */
} job;

typedef struct scorer {
    bn_ctx *c;
    const bn_model *m;
    const bn_ppl_text *texts;
    size_t n_texts;
    const bn_ppl_opts *o;
    bn_ppl_plan *plans;
    bn_ppl_sum *sums, all;
    bn_ppl *r;
    job *ring;               /* jobs head..tail-1 at [i % cap] */
    size_t cap, head, tail;
    int *free_seq;           /* sequences no job holds */
    size_t n_free;
    uint32_t kv_blocks, kv_reserved;
    /* the window to start next */
    size_t t_next;
    bn_ppl_window w_next;
    uint32_t no_next;
    int more;
    size_t *failed;
} scorer;

/* Moves the next-window cursor on, to the next text when one ends. */
static void advance(scorer *S)
{
    if (bn_ppl_next(&S->plans[S->t_next], &S->w_next)) {
        S->no_next++;
        return;
    }
    if (++S->t_next == S->n_texts) {
        S->more = 0;
        return;
    }
    bn_ppl_first(&S->plans[S->t_next], &S->w_next);
    S->no_next = 1;
}

/* Starts the next window on a free sequence; 1 when started, 0 when it
 * must wait (no sequence, no room in the ring or the KV budget). */
static int start(scorer *S, bn_err *e)
{
    if (!S->more || !S->n_free || S->tail - S->head == S->cap)
        return 0;
    const bn_ppl_plan *p = &S->plans[S->t_next];
    size_t nw = p->lead + (S->w_next.b - S->w_next.a);
    uint32_t need = (uint32_t)bn_kv_blocks_for(nw);
    if (need > S->kv_blocks) {
        *S->failed = S->t_next;
        return bn_fail_code(e, BN_E_KV_FULL,
                            "the KV cache budget holds %u positions, fewer than a window of %zu tokens",
                            S->kv_blocks * BN_KV_BLOCK, nw);
    }
    if (S->kv_reserved + need > S->kv_blocks)
        return 0;
    job *j = &S->ring[S->tail % S->cap];
    memset(j, 0, sizeof *j);
    j->text = S->t_next;
    j->no = S->no_next;
    j->w = S->w_next;
    j->win = malloc(nw * sizeof *j->win);
    j->nll = malloc(nw * sizeof *j->nll);
    if (!j->win || !j->nll) {
        free(j->win);
        free(j->nll);
        return bn_fail_code(e, BN_E_NOMEM, "out of memory");
    }
    j->nw = bn_ppl_fill(p, &j->w, S->texts[j->text].ids, j->win);
    j->seq = S->free_seq[--S->n_free];
    j->blocks = need;
    S->kv_reserved += need;
    S->tail++;
    advance(S);
    j->last = !S->more || S->t_next != j->text;
    return 1;
}

/* Adds finished windows to the sums, oldest first, up to the first one
 * still running. */
static int commit(scorer *S, bn_err *e)
{
    while (S->head < S->tail && S->ring[S->head % S->cap].seq < 0) {
        job *j = &S->ring[S->head % S->cap];
        bn_ppl_sum *s = &S->sums[j->text];
        for (size_t i = 0; i < j->n_nll; i++) {
            bn_ppl_add(s, j->nll[i]);
            bn_ppl_add(&S->all, j->nll[i]);
        }
        bn_ppl *r = &S->r[j->text];
        r->n_windows++;
        if (S->o->progress && s->n) {
            if (S->n_texts == 1)
                fprintf(S->o->progress, "[%u] %.4f\n", j->no, exp(s->sum / (double)s->n));
            else
                fprintf(S->o->progress, "[%zu:%u] %.4f\n", j->text + 1, j->no, exp(s->sum / (double)s->n));
            fflush(S->o->progress);
        }
        if (j->last) {
            if (!s->n) {
                *S->failed = j->text;
                return bn_fail_code(e, BN_E_INVALID, "the text is too short to score");
            }
            bn_ppl_result(s, r);
        }
        free(j->win);
        free(j->nll);
        j->win = NULL;
        j->nll = NULL;
        S->head++;
    }
    return 0;
}

/* Whether window position k of j asks for logits: it predicts text token
 * a + k + 1 - lead, scored when not scored by an earlier window. */
static int scores(const scorer *S, const job *j, size_t k)
{
    return k + 1 < j->nw && j->w.a + k + 1 - S->plans[j->text].lead >= j->w.from;
}

/* One pass: up to BN_KERN_MAX_N tokens shared among the running windows
 * (an equal share each, then what the short ones leave to the others). */
static int pass(scorer *S, bn_eval_tok *t, size_t *take, float *lg, bn_err *e)
{
    size_t running = 0, n = 0;
    for (size_t i = S->head; i < S->tail; i++)
        running += S->ring[i % S->cap].seq >= 0;
    if (!running)
        return 0;
    size_t share = BN_KERN_MAX_N / running;
    for (int round = 0; round < 2; round++)
        for (size_t i = S->head; i < S->tail; i++) {
            job *j = &S->ring[i % S->cap];
            size_t *k = &take[i - S->head];
            if (!round)
                *k = 0;
            if (j->seq < 0)
                continue;
            size_t left = j->nw - j->fed - *k, room = round ? BN_KERN_MAX_N - n : share;
            size_t more = left < room ? left : room;
            *k += more;
            n += more;
        }
    n = 0;
    for (size_t i = S->head; i < S->tail; i++) {
        job *j = &S->ring[i % S->cap];
        for (size_t k = j->fed; k < j->fed + take[i - S->head]; k++)
            t[n++] = (bn_eval_tok){.id = j->win[k], .seq = (uint32_t)j->seq, .pos = (uint32_t)k,
                                   .logits = (uint32_t)scores(S, j, k)};
    }
    int rc = bn_ctx_eval_batch(S->c, t, n, lg, e);
    if (rc == BN_E_KV_RANGE) { /* named by its text, window and position, not by the sequence it ran on */
        const char *why;
        const bn_eval_tok *bad = &t[bn_ctx_range_token(S->c, &why)];
        for (size_t i = S->head; i < S->tail; i++) {
            job *j = &S->ring[i % S->cap];
            if (j->seq == (int)bad->seq) {
                *S->failed = j->text;
                bn_fail_code(e, rc, "window %u, position %u: %s", j->no, bad->pos, why);
                break;
            }
        }
    }
    if (rc)
        return -1;
    uint32_t V = S->m->hp.n_vocab;
    const float *row = lg;
    for (size_t i = S->head; i < S->tail; i++) {
        job *j = &S->ring[i % S->cap];
        for (size_t k = j->fed; k < j->fed + take[i - S->head]; k++)
            if (scores(S, j, k)) {
                j->nll[j->n_nll++] = bn_ppl_nll(row, V, j->win[k + 1]);
                row += V;
            }
        j->fed += take[i - S->head];
        if (j->seq >= 0 && j->fed == j->nw) { /* evaluated: its sequence and blocks go to the next window */
            bn_ctx_seq_truncate(S->c, j->seq, 0);
            S->free_seq[S->n_free++] = j->seq;
            S->kv_reserved -= j->blocks;
            j->seq = -1;
        }
    }
    return 1;
}

int bn_perplexity_batch(bn_ctx *c, const bn_model *m, const bn_ppl_text *texts, size_t n_texts, const bn_ppl_opts *o,
                        uint32_t n_par, bn_ppl *r, bn_ppl *total, size_t *failed, bn_err *e)
{
    size_t failed_here = n_texts;
    if (!failed)
        failed = &failed_here;
    *failed = n_texts;
    memset(r, 0, n_texts * sizeof *r);
    if (total)
        memset(total, 0, sizeof *total);
    if (!n_texts)
        return bn_fail_code(e, BN_E_INVALID, "no text to score");
    if (n_par < 1 || n_par > bn_ctx_n_seq(c) || n_par > BN_KERN_MAX_N)
        return bn_fail_code(e, BN_E_INVALID, "%u windows at once: the context holds %u sequences (at most %d)",
                            n_par, bn_ctx_n_seq(c), BN_KERN_MAX_N);
    scorer S = {.c = c, .m = m, .texts = texts, .n_texts = n_texts, .o = o, .r = r, .cap = 2 * (size_t)n_par + 2,
                .more = 1, .no_next = 1, .failed = failed};
    for (size_t i = 0; i < n_texts; i++)
        r[i].n_tokens = texts[i].n;
    S.plans = calloc(n_texts, sizeof *S.plans);
    S.sums = calloc(n_texts, sizeof *S.sums);
    S.ring = calloc(S.cap, sizeof *S.ring);
    S.free_seq = malloc(n_par * sizeof *S.free_seq);
    size_t *take = malloc(S.cap * sizeof *take);
    bn_eval_tok *t = malloc(BN_KERN_MAX_N * sizeof *t);
    float *lg = malloc((size_t)BN_KERN_MAX_N * m->hp.n_vocab * sizeof *lg);
    int rc = -1;
    if (!S.plans || !S.sums || !S.ring || !S.free_seq || !take || !t || !lg) {
        bn_fail_code(e, BN_E_NOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n_texts; i++)
        if (bn_ppl_plan_init(&S.plans[i], c, m, texts[i].ids, texts[i].n, o, e)) {
            *failed = i;
            goto done;
        }
    /* sequence 0 always exists; the others are made for this call */
    bn_ctx_truncate(c, 0);
    S.free_seq[S.n_free++] = 0;
    while (S.n_free < n_par) {
        int s = bn_ctx_seq_new(c, e);
        if (s < 0)
            goto done;
        S.free_seq[S.n_free++] = s;
    }
    S.kv_blocks = bn_ctx_kv_blocks_left(c);
    bn_ppl_first(&S.plans[0], &S.w_next);
    for (;;) {
        int r1;
        while ((r1 = start(&S, e)) == 1)
            ;
        if (r1 < 0)
            goto done;
        int r2 = pass(&S, t, take, lg, e);
        if (r2 < 0 || commit(&S, e))
            goto done;
        if (!r2 && !S.more && S.head == S.tail)
            break;
    }
    if (total) {
        for (size_t i = 0; i < n_texts; i++) {
            total->n_tokens += r[i].n_tokens;
            total->n_windows += r[i].n_windows;
        }
        bn_ppl_result(&S.all, total);
    }
    rc = 0;
done:
    for (size_t i = S.head; i < S.tail; i++) {
        job *j = &S.ring[i % S.cap];
        if (j->seq >= 0)
            S.free_seq[S.n_free++] = j->seq;
        free(j->win);
        free(j->nll);
    }
    for (size_t i = 0; S.free_seq && i < S.n_free; i++)
        if (S.free_seq[i])
            bn_ctx_seq_free(c, S.free_seq[i]);
    bn_ctx_truncate(c, 0);
    free(S.plans);
    free(S.sums);
    free(S.ring);
    free(S.free_seq);
    free(take);
    free(t);
    free(lg);
    return rc;
}
