/* engine.c — the one thread that owns the context: it takes submitted
 * jobs into the continuous batch (lib/model/batch.h), runs its passes,
 * and turns each pass's tokens into text (a bn_gen writer per job:
 * detokenization and stop strings, as bn-infer writes them) that the
 * asking HTTP threads read under the mutex as it grows. */
#include "serve.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void srv_job_free(srv_job *j)
{
    if (!j)
        return;
    bn_gen_free(j->w);
    if (j->fp)
        fclose(j->fp);
    free(j->text);
    free(j->steps);
    free(j->lp);
    free(j->bias);
    bn_detok_free(j->dt);
    free(j->prompt);
    for (int i = 0; i < j->n_stop; i++)
        free(j->stop[i]);
    free(j);
}

static void unref(srv_job *j)
{
    if (--j->refs == 0)
        srv_job_free(j);
}

/* Marks where this step's text ends (mutex held). Without memory for the
 * mark the step's text joins the next chunk: nothing is lost. */
static void note_step(srv_job *j)
{
    if (j->n_steps && j->steps[j->n_steps - 1] >= j->n_text)
        return;
    if (j->n_steps == j->cap_steps) {
        size_t cap = j->cap_steps ? 2 * j->cap_steps : 64;
        size_t *more = realloc(j->steps, cap * sizeof *more);
        if (!more)
            return;
        j->steps = more;
        j->cap_steps = cap;
    }
    j->steps[j->n_steps++] = j->n_text;
}

/* Ends j (mutex held): its text is final, the engine's reference goes. */
static void job_done(srv_engine *g, srv_job *j, int finish, const char *why)
{
    j->finish = finish;
    if (why)
        snprintf(j->error, sizeof j->error, "%s", why);
    bn_gen_free(j->w);
    j->w = NULL;
    if (j->fp) {
        fclose(j->fp); /* text and size are final now */
        j->fp = NULL;
    }
    j->n_text = j->size;
    /* the writer ends an answer with a line break, which is not the model's */
    if (finish != SRV_FIN_ERROR && j->n_text && j->text[j->n_text - 1] == '\n')
        j->n_text--;
    j->state = SRV_DONE;
    for (size_t i = 0; i < g->n_live; i++)
        if (g->live[i] == j) {
            g->live[i] = g->live[--g->n_live];
            break;
        }
    g->st.active--;
    unref(j);
}

/* ev's log probabilities at the end of j's (mutex held), with where its
 * text goes: the detokenizer fed as the writer's is gives its bytes now,
 * where the writer may hold some back (a stop string's start, part of a
 * character), so every token's offset is its own. */
static int keep_logprobs(srv_job *j, const bn_batch_event *ev, bn_err *e)
{
    size_t len = 0;
    if (bn_detok_feed(j->dt, ev->token, NULL, &len, e))
        return -1;
    if (j->n_lp == j->cap_lp) {
        size_t cap = j->cap_lp ? 2 * j->cap_lp : 64 + j->n_prompt;
        srv_lp *more = realloc(j->lp, cap * sizeof *more);
        if (!more)
            return bn_fail_code(e, BN_E_NOMEM, "out of memory");
        j->lp = more;
        j->cap_lp = cap;
    }
    srv_lp *l = &j->lp[j->n_lp++];
    l->id = ev->token;
    l->logprob = ev->logprob;
    l->text_start = j->text_pos;
    l->text_len = len;
    l->ready = 1;
    j->text_pos += len;
    l->n_top = ev->n_top;
    if (ev->n_top)
        memcpy(l->top, ev->top, ev->n_top * sizeof *ev->top);
    return 0;
}

/* An echo: the prompt's text written first; with logprobs each prompt
 * token has its record (the first with no log probability: nothing comes
 * before it; the others filled as the batch scores them). */
static int echo_prompt(srv_job *j, bn_err *e)
{
    if (bn_gen_write_prompt(j->w, j->prompt, j->n_prompt, e))
        return -1;
    if (fflush(j->fp))
        return bn_fail_code(e, BN_E_NOMEM, "out of memory");
    for (size_t i = 0; j->logprobs && i < j->n_prompt; i++) {
        bn_batch_event ev = {.token = j->prompt[i], .logprob = NAN};
        if (keep_logprobs(j, &ev, e))
            return -1;
        j->lp[i].ready = i == 0;
    }
    j->n_text = j->size;
    return 0;
}

/* A submitted job into the batch (mutex held). */
static void admit(srv_engine *g, srv_job *j)
{
    bn_err e = {0};
    if (j->cancel) {
        job_done(g, j, SRV_FIN_ERROR, "cancelled");
        return;
    }
    bn_gen_opts go = {.text = 1, .n_stop = j->n_stop, .echo = j->echo};
    for (int i = 0; i < j->n_stop; i++)
        go.stop[i] = j->stop[i];
    bn_sampler_defaults(&go.samp);
    j->tag = g->next_tag++;
    if (!(j->fp = open_memstream(&j->text, &j->size)) || !(j->w = bn_gen_new(g->m, NULL, g->tok, &go, j->fp, 0, &e)) ||
        (j->logprobs && !(j->dt = bn_detok_new(g->tok, BN_DETOK_SKIP_SPECIAL | (j->echo ? BN_DETOK_TEXT_START : 0),
                                               &e)))) {
        job_done(g, j, SRV_FIN_ERROR, j->fp ? e.msg : "out of memory");
        return;
    }
    if (j->echo && echo_prompt(j, &e)) {
        job_done(g, j, SRV_FIN_ERROR, e.msg);
        return;
    }
    bn_request q = {.prompt = j->prompt, .n_prompt = j->n_prompt, .samp = j->samp, .n_predict = j->n_predict,
                    .tag = j->tag, .lookup = j->lookup, .draft_max = j->draft_max, .draft = j->draft,
                    .logprobs = j->logprobs, .top_logprobs = j->top_logprobs,
                    .score_prompt = j->echo && j->logprobs};
    if (g->n_live == g->cap_live) {
        size_t cap = g->cap_live ? 2 * g->cap_live : 16;
        srv_job **p = realloc(g->live, cap * sizeof *p);
        if (!p) {
            job_done(g, j, SRV_FIN_ERROR, "out of memory");
            return;
        }
        g->live = p;
        g->cap_live = cap;
    }
    g->live[g->n_live++] = j;
    if (bn_batch_submit(g->b, &q, &e)) {
        job_done(g, j, SRV_FIN_ERROR, e.msg);
        return;
    }
    j->state = SRV_RUNNING;
    g->st.tokens_prompt += j->n_prompt;
}

static srv_job *find(srv_engine *g, uint64_t tag)
{
    for (size_t i = 0; i < g->n_live; i++)
        if (g->live[i]->tag == tag)
            return g->live[i];
    return NULL;
}

/* One event of a pass into its job's text (mutex held). */
static void take_event(srv_engine *g, const bn_batch_event *ev)
{
    srv_job *j = find(g, ev->tag);
    if (!j || j->cancel) /* nobody is waiting for it: a pass that ended after the cancel counts nothing */
        return;
    bn_err e = {0};
    if (ev->finish == BN_FIN_ERROR) {
        job_done(g, j, SRV_FIN_ERROR, ev->error);
        return;
    }
    if (ev->prompt) { /* an echoed prompt token's log probability: its record is ready */
        if (j->n_scored + 1 < j->n_lp) {
            srv_lp *l = &j->lp[++j->n_scored];
            l->logprob = ev->logprob;
            l->n_top = ev->n_top;
            if (ev->n_top)
                memcpy(l->top, ev->top, ev->n_top * sizeof *ev->top);
            l->ready = 1;
        }
        return;
    }
    int stopped = 0;
    if (ev->token != BN_BATCH_NO_TOKEN && j->logprobs && keep_logprobs(j, ev, &e)) {
        bn_batch_cancel(g->b, j->tag);
        job_done(g, j, SRV_FIN_ERROR, e.msg);
        return;
    }
    if (ev->token != BN_BATCH_NO_TOKEN) {
        j->n_gen++;
        g->st.tokens_generated++;
        if (bn_gen_write_token(j->w, ev->token, &stopped, &e)) {
            bn_batch_cancel(g->b, j->tag);
            job_done(g, j, SRV_FIN_ERROR, e.msg);
            return;
        }
        if (stopped) /* a stop string: the answer is over */
            bn_batch_cancel(g->b, j->tag);
    }
    if (stopped || ev->finish) {
        if (bn_gen_write_end(j->w, stopped, &e)) {
            job_done(g, j, SRV_FIN_ERROR, e.msg);
            return;
        }
        job_done(g, j, stopped || ev->finish == BN_FIN_STOP ? SRV_FIN_STOP : SRV_FIN_LENGTH, NULL);
        return;
    }
    if (fflush(j->fp)) {
        bn_batch_cancel(g->b, j->tag);
        job_done(g, j, SRV_FIN_ERROR, "out of memory");
        return;
    }
    j->n_text = j->size;
}

static void *engine_main(void *arg)
{
    srv_engine *g = arg;
    pthread_mutex_lock(&g->mu);
    for (;;) {
        while (g->in_head) {
            srv_job *j = g->in_head;
            g->in_head = j->next;
            if (!g->in_head)
                g->in_tail = NULL;
            admit(g, j);
        }
        for (size_t i = 0; i < g->n_live;) { /* askers gone: their sequences are freed at once */
            srv_job *j = g->live[i];
            if (j->cancel) {
                bn_batch_cancel(g->b, j->tag);
                job_done(g, j, SRV_FIN_ERROR, "cancelled");
            } else {
                i++;
            }
        }
        pthread_cond_broadcast(&g->progress);
        if (!g->n_live) {
            if (g->stopping)
                break;
            pthread_cond_wait(&g->work, &g->mu);
            continue;
        }
        pthread_mutex_unlock(&g->mu);
        const bn_batch_event *ev;
        size_t n_ev = 0;
        bn_err e = {0};
        double t0 = now();
        int rc = bn_batch_step(g->b, &ev, &n_ev, &e);
        double t1 = now();
        pthread_mutex_lock(&g->mu);
        g->st.busy_seconds += t1 - t0;
        g->st.passes++;
        if (rc) { /* the context itself failed (out of memory): nothing in flight can go on */
            while (g->n_live) {
                bn_batch_cancel(g->b, g->live[0]->tag);
                job_done(g, g->live[0], SRV_FIN_ERROR, e.msg);
            }
            continue;
        }
        for (size_t i = 0; i < n_ev; i++)
            take_event(g, &ev[i]);
        /* a chunk per pass, not per event: the tokens a guess kept (lookup,
         * a draft model) are one decoding step's text, as bn-serve(1) says */
        for (size_t i = 0; i < g->n_live; i++)
            if (g->live[i]->n_text)
                note_step(g->live[i]);
        g->st.kv_used_bytes = bn_ctx_kv_used_bytes(g->c);
        g->st.kv_blocks_used = g->st.kv_blocks - bn_ctx_kv_blocks_left(g->c);
        bn_batch_stats bs;
        bn_batch_get_stats(g->b, &bs);
        g->st.lookup_drafted = bs.drafted;
        g->st.lookup_accepted = bs.accepted;
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

/* ---------------------------------------------------- embedding models */

void srv_embed_job_free(srv_embed_job *j)
{
    if (!j)
        return;
    for (size_t i = 0; j->inputs && i < j->n; i++)
        bn_tokens_free(&j->inputs[i]);
    free(j->inputs);
    free(j->vec);
    free(j);
}

static void unref_embed(srv_embed_job *j)
{
    if (--j->refs == 0)
        srv_embed_job_free(j);
}

/* The inputs of j, n_seq at a time (mutex held; released while a pass
 * runs): as bn-infer --embed runs its records, one at a time when the KV
 * budget holds fewer, so every vector has the same bytes. */
static int embed_job(srv_engine *g, srv_embed_job *j, bn_err *e)
{
    size_t d = g->m->hp.n_embd, par = bn_ctx_n_seq(g->c);
    if (!(j->vec = malloc((j->n ? j->n : 1) * d * sizeof *j->vec)))
        return bn_fail_code(e, BN_E_NOMEM, "out of memory");
    int rc = 0;
    for (size_t i = 0; !rc && !j->cancel && i < j->n; i += par) {
        size_t k = j->n - i < par ? j->n - i : par;
        pthread_mutex_unlock(&g->mu);
        double t0 = now();
        rc = bn_embed_run(g->c, j->inputs + i, k, j->vec + i * d, e);
        if (rc && e->code == BN_E_KV_FULL)
            for (size_t r = rc = 0; r < k && !rc; r++)
                rc = bn_embed_run(g->c, j->inputs + i + r, 1, j->vec + (i + r) * d, e);
        int ran = !rc;
        /* inf or NaN has no JSON spelling: an error names the input (as
         * bn-infer --embed refuses the record) */
        for (size_t r = 0; !rc && r < k; r++)
            if (!bn_embed_finite(j->vec + (i + r) * d, d))
                rc = bn_fail(e, "'input'[%zu]: the embedding is not finite (a value overflowed, or the model's "
                                "weights hold inf or NaN)", i + r);
        double t1 = now();
        pthread_mutex_lock(&g->mu);
        g->st.busy_seconds += t1 - t0;
        g->st.passes++;
        for (size_t r = 0; ran && r < k; r++) /* the tokens embedded (not those of a failed pass or a cancelled rest) */
            g->st.tokens_prompt += j->inputs[i + r].n;
    }
    return rc;
}

/* The engine of an embedding model: requests in the order they came. */
static void *embed_main(void *arg)
{
    srv_engine *g = arg;
    pthread_mutex_lock(&g->mu);
    for (;;) {
        srv_embed_job *j = g->emb_head;
        if (!j) {
            if (g->stopping)
                break;
            pthread_cond_wait(&g->work, &g->mu);
            continue;
        }
        if (!(g->emb_head = j->next))
            g->emb_tail = NULL;
        j->state = SRV_RUNNING;
        g->emb_running = j;
        bn_err e = {0};
        if (!j->cancel && embed_job(g, j, &e))
            snprintf(j->error, sizeof j->error, "%.250s", e.msg);
        else if (j->cancel)
            snprintf(j->error, sizeof j->error, "cancelled");
        j->failed = j->error[0] != 0;
        j->state = SRV_DONE;
        g->emb_running = NULL;
        g->st.active--;
        unref_embed(j);
        pthread_cond_broadcast(&g->progress);
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

int srv_engine_submit_embed(srv_engine *g, srv_embed_job *j)
{
    pthread_mutex_lock(&g->mu);
    if (!g->embed || g->stopping || g->st.active >= g->max_active) {
        pthread_mutex_unlock(&g->mu);
        return -1;
    }
    j->refs++;
    j->state = SRV_QUEUED;
    j->next = NULL;
    if (g->emb_tail)
        g->emb_tail->next = j;
    else
        g->emb_head = j;
    g->emb_tail = j;
    g->st.active++;
    pthread_cond_signal(&g->work);
    pthread_mutex_unlock(&g->mu);
    return 0;
}

void srv_engine_release_embed(srv_engine *g, srv_embed_job *j)
{
    if (!j)
        return;
    pthread_mutex_lock(&g->mu);
    if (j->state != SRV_DONE && j->refs > 1)
        j->cancel = 1; /* a queued one is skipped, a running one stops between passes */
    unref_embed(j);
    pthread_mutex_unlock(&g->mu);
}

void srv_engine_wait_embed(srv_engine *g, srv_embed_job *j, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    ts.tv_sec += ms / 1000 + ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    int rc = 0;
    while (rc != ETIMEDOUT && j->state != SRV_DONE)
        rc = pthread_cond_timedwait(&g->progress, &g->mu, &ts);
}

/* ---------------------------------------------------------- the engine */

int srv_engine_start(srv_engine *g, const bn_model *m, bn_ctx *c, bn_ctx *draft, bn_tokenizer *tok, size_t queue,
                     bn_err *e)
{
    bn_batch_opts bo = {.draft = draft};
    memset(g, 0, sizeof *g);
    g->m = m;
    g->c = c;
    g->tok = tok;
    g->next_tag = 1;
    g->st.slots = bn_ctx_n_seq(c);
    g->max_active = g->st.slots + queue;
    g->st.kv_budget_bytes = bn_ctx_kv_bytes(c);
    g->st.kv_blocks = bn_ctx_kv_blocks_left(c);
    /* an embedding model's context gives vectors, not logits: its
     * requests run as bn_embed_run passes over sequences 0..n_seq-1 */
    g->embed = m->hp.pooling != BN_POOL_NONE;
    if (g->embed ? bn_embed_seqs_live(c, e) != 0 : !(g->b = bn_batch_new(c, &bo, e)))
        return -1;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->work, NULL);
    pthread_cond_init(&g->progress, &ca);
    pthread_condattr_destroy(&ca);
    int rc = pthread_create(&g->th, NULL, g->embed ? embed_main : engine_main, g);
    if (rc) {
        bn_batch_free(g->b);
        return bn_fail(e, "cannot start the engine thread: %s", strerror(rc));
    }
    return 0;
}

void srv_engine_stop(srv_engine *g, int abandon)
{
    pthread_mutex_lock(&g->mu);
    g->stopping = 1;
    if (abandon) {
        for (srv_job *j = g->in_head; j; j = j->next)
            j->cancel = 1;
        for (size_t i = 0; i < g->n_live; i++)
            g->live[i]->cancel = 1;
        for (srv_embed_job *j = g->emb_head; j; j = j->next)
            j->cancel = 1;
        if (g->emb_running)
            g->emb_running->cancel = 1;
    }
    pthread_cond_signal(&g->work);
    pthread_mutex_unlock(&g->mu);
    pthread_join(g->th, NULL);
    bn_batch_free(g->b);
    g->b = NULL;
}

void srv_engine_free(srv_engine *g)
{
    free(g->live);
    pthread_cond_destroy(&g->work);
    pthread_cond_destroy(&g->progress);
    pthread_mutex_destroy(&g->mu);
}

int srv_engine_submit(srv_engine *g, srv_job *j)
{
    pthread_mutex_lock(&g->mu);
    if (g->stopping || g->st.active >= g->max_active) {
        pthread_mutex_unlock(&g->mu);
        return -1;
    }
    j->refs++;
    j->state = SRV_QUEUED;
    j->next = NULL;
    if (g->in_tail)
        g->in_tail->next = j;
    else
        g->in_head = j;
    g->in_tail = j;
    g->st.active++;
    pthread_cond_signal(&g->work);
    pthread_mutex_unlock(&g->mu);
    return 0;
}

unsigned srv_engine_release(srv_engine *g, srv_job *j)
{
    if (!j)
        return 0;
    pthread_mutex_lock(&g->mu);
    if (j->state != SRV_DONE && j->refs > 1) {
        j->cancel = 1;
        pthread_cond_signal(&g->work);
    }
    unsigned n_gen = j->n_gen; /* final: a cancelled job's later tokens are not counted (take_event) */
    unref(j);
    pthread_mutex_unlock(&g->mu);
    return n_gen;
}

void srv_engine_get_stats(srv_engine *g, srv_engine_stats *st)
{
    pthread_mutex_lock(&g->mu);
    *st = g->st;
    pthread_mutex_unlock(&g->mu);
}

void srv_engine_wait(srv_engine *g, srv_job *j, size_t have, int ms)
{
    if (j->state == SRV_DONE || j->n_text > have)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    ts.tv_sec += ms / 1000 + ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    int rc = 0;
    while (rc != ETIMEDOUT && j->state != SRV_DONE && j->n_text <= have)
        rc = pthread_cond_timedwait(&g->progress, &g->mu, &ts);
}
