/* generate.c — the generation loop: prompt evaluation with prefix reuse,
 * sampling, stop tokens, stop strings held back until they cannot match,
 * streaming output as ids or text, record-by-record answering of a token
 * stream, and the chat session. */
#include "generate.h"
#include "draft.h"
#include "lookup.h"
#include "stopstr.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct bn_gen {
    const bn_model *m;
    bn_ctx *c;
    bn_tokenizer *tok;
    bn_gen_opts o;
    bn_sampler s;
    FILE *out;
    bn_tokw w;
    bn_detok dt;
    uint32_t *hist; /* the tokens in the KV cache, in order */
    size_t n_hist, cap_hist;
    float *logits;  /* BN_KERN_MAX_N rows */
    /* text not yet written because it may be the start of a stop string */
    uint8_t *pend;
    size_t n_pend, cap_pend;
    uint32_t *pend_ids; /* ids mode: ids not yet written, and where each ends in pend */
    size_t *pend_end;
    size_t n_pids, cap_pids;
    /* chat: a copy of everything written in the current answer */
    uint8_t *cap;
    size_t n_cap, cap_cap;
    int capture;
    int echoing;       /* chat: the echoed prompt is written, not kept in the answer */
    size_t echo_from;  /* chat: the next echo starts here (the earlier turns were shown) */
    int escape_breaks; /* chat to a non-terminal: one line per answer */
    int binary;        /* ids in the binary token stream */
    bn_draft *draft;   /* with o.draft: the guesses of a draft model */
    bn_lookup times;   /* prompt lookup's measured pass times, from answer to answer */
    bn_gen_stats st;
};

void bn_gen_get_stats(const bn_gen *g, bn_gen_stats *st)
{
    *st = g->st;
}

/* One line to the caller's log callback, if it gave one. */
static void __attribute__((format(printf, 3, 4))) note(const bn_gen *g, int level, const char *fmt, ...)
{
    if (!g->o.log)
        return;
    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    g->o.log(g->o.log_user, level, msg);
}

/* --------------------------------------------------------------- buffers */

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q)
        return -1;
    *p = q;
    *cap = c;
    return 0;
}

static int hist_push(bn_gen *g, uint32_t id)
{
    if (grow((void **)&g->hist, &g->cap_hist, g->n_hist + 1, sizeof *g->hist))
        return -1;
    g->hist[g->n_hist++] = id;
    return 0;
}

/* ---------------------------------------------------------------- output */

/* A chat answer read by a program keeps to one line: its line breaks and
 * backslashes are written as C escapes (\\n, \\r, \\\\), so the text can be
 * restored exactly (printf '%b'). */
static int write_escaped(bn_gen *g, const uint8_t *b, size_t n, bn_err *e)
{
    if (bn_fput_escaped(b, n, BN_ESC_BACKSLASH, g->out) || fflush(g->out))
        return bn_fail_write(e, "-");
    return 0;
}

static int write_bytes(bn_gen *g, const uint8_t *b, size_t n, bn_err *e)
{
    if (!n)
        return 0;
    if (g->capture && !g->echoing) {
        if (grow((void **)&g->cap, &g->cap_cap, g->n_cap + n, 1))
            return bn_fail_code(e, BN_E_NOMEM, "out of memory");
        memcpy(g->cap + g->n_cap, b, n);
        g->n_cap += n;
    }
    if (g->capture && g->escape_breaks)
        return write_escaped(g, b, n, e);
    if (fwrite(b, 1, n, g->out) != n || fflush(g->out))
        return bn_fail_write(e, "-");
    return 0;
}

/* Writes the first n pending bytes (and, in ids mode, the ids that end
 * within them) and drops them from the pending buffer. */
static int release(bn_gen *g, size_t n, bn_err *e)
{
    if (g->o.text) {
        if (write_bytes(g, g->pend, n, e))
            return -1;
    } else {
        size_t k = 0;
        while (k < g->n_pids && g->pend_end[k] <= n)
            k++;
        if (k && (bn_tokw_put(&g->w, g->pend_ids, k, e) || bn_tokw_flush(&g->w, e)))
            return -1;
        if (g->n_pids > k)
            memmove(g->pend_ids, g->pend_ids + k, (g->n_pids - k) * sizeof *g->pend_ids);
        for (size_t i = k; i < g->n_pids; i++)
            g->pend_end[i - k] = g->pend_end[i] - n;
        g->n_pids -= k;
    }
    if (g->n_pend > n)
        memmove(g->pend, g->pend + n, g->n_pend - n);
    g->n_pend -= n;
    return 0;
}

/* Adds one token to the output. *stopped is set when a stop string is now
 * complete (the text before it has been written, the rest dropped). */
static int emit(bn_gen *g, uint32_t id, int *stopped, bn_err *e)
{
    const uint8_t *b = NULL;
    size_t n = 0;
    if (g->o.text) {
        if (bn_detok_feed(&g->dt, id, &b, &n, e))
            return -1;
    } else if (g->tok && g->o.n_stop && bn_tokenizer_type(g->tok, id) != BN_TOKT_CONTROL) {
        b = bn_tokenizer_piece(g->tok, id, &n);
    }
    if (grow((void **)&g->pend, &g->cap_pend, g->n_pend + n + 1, 1))
        return bn_fail_code(e, BN_E_NOMEM, "out of memory");
    if (n)
        memcpy(g->pend + g->n_pend, b, n);
    g->n_pend += n;
    if (!g->o.text) {
        size_t need = g->n_pids + 1, c1 = g->cap_pids;
        if (grow((void **)&g->pend_ids, &g->cap_pids, need, sizeof *g->pend_ids) ||
            grow((void **)&g->pend_end, &c1, need, sizeof *g->pend_end))
            return bn_fail_code(e, BN_E_NOMEM, "out of memory");
        g->pend_ids[g->n_pids] = id;
        g->pend_end[g->n_pids++] = g->n_pend;
    }
    size_t at = bn_stop_find(g->pend, g->n_pend, g->o.stop, (size_t)g->o.n_stop);
    if (at != SIZE_MAX) {
        *stopped = 1;
        if (release(g, at, e))
            return -1;
        g->n_pend = 0;
        g->n_pids = 0;
        return 0;
    }
    return release(g, g->n_pend - bn_stop_hold(g->pend, g->n_pend, g->o.stop, (size_t)g->o.n_stop), e);
}

/* Ends an answer: whatever was held back is final now. */
static int finish(bn_gen *g, int stopped, bn_err *e)
{
    if (g->o.text) {
        const uint8_t *b;
        size_t n;
        bn_detok_flush(&g->dt, &b, &n);
        if (!stopped && n) {
            if (grow((void **)&g->pend, &g->cap_pend, g->n_pend + n, 1))
                return bn_fail_code(e, BN_E_NOMEM, "out of memory");
            memcpy(g->pend + g->n_pend, b, n);
            g->n_pend += n;
            /* the bytes held back for a character that never came may
             * complete a stop string (one that ends in such bytes) */
            size_t at = bn_stop_find(g->pend, g->n_pend, g->o.stop, (size_t)g->o.n_stop);
            if (at != SIZE_MAX)
                g->n_pend = at;
        }
    }
    if (release(g, g->n_pend, e))
        return -1;
    g->n_pids = 0;
    if (g->o.text)
        return write_bytes(g, (const uint8_t *)"\n", g->capture ? 0 : 1, e);
    return bn_tokw_end(&g->w, e) || bn_tokw_flush(&g->w, e) ? -1 : 0;
}

/* ------------------------------------------------------------ the loop */

static int is_stop_id(const bn_model *m, uint32_t id)
{
    for (int i = 0; i < m->hp.n_stop; i++)
        if ((uint32_t)m->hp.stop_ids[i] == id)
            return 1;
    return 0;
}

/* A logits write error, naming the file so the message says which output
 * the disk filled on (BN_E_IO: the program prints it as is); with the
 * reason only when errno is that failure's (flush_failed: the fflush just
 * made), not when only stdio's error flag tells of an earlier one. */
static int logits_error(const bn_gen *g, int flush_failed, bn_err *e)
{
    const char *name = g->o.logits_name ? g->o.logits_name : "logits";
    return flush_failed ? bn_fail_write(e, name) : bn_fail_code(e, BN_E_IO, "%s: write error", name);
}

static int dump_logits(bn_gen *g, const float *rows, size_t n, bn_err *e)
{
    uint32_t V = g->m->hp.n_vocab, K = g->o.logits_topk;
    FILE *fp = g->o.logits;
    if (!K) {
        if (fwrite(rows, sizeof *rows, n * V, fp) != n * V)
            return logits_error(g, 1, e); /* errno is fwrite's */
        return 0;
    }
    if (K > V)
        K = V;
    uint32_t top[64];
    uint32_t *idx = K <= 64 ? top : malloc(K * sizeof *idx);
    if (!idx)
        return bn_fail_code(e, BN_E_NOMEM, "out of memory");
    for (size_t t = 0; t < n; t++) {
        const float *l = rows + t * V;
        size_t k = 0; /* insertion into the K best, ties to the lower id */
        for (uint32_t i = 0; i < V; i++) {
            if (k == K && l[i] <= l[idx[k - 1]])
                continue;
            size_t j = k < K ? k++ : k - 1;
            while (j > 0 && l[idx[j - 1]] < l[i]) {
                idx[j] = idx[j - 1];
                j--;
            }
            idx[j] = i;
        }
        for (size_t j = 0; j < k; j++)
            fprintf(fp, "%s%u:%.9g", j ? " " : "", idx[j], l[idx[j]]);
        fputc('\n', fp);
    }
    if (idx != top)
        free(idx);
    return ferror(fp) ? logits_error(g, 0, e) : 0;
}

/* Evaluates prompt[0..n) after reusing the cached prefix; leaves the last
 * position's logits in g->logits. */
static int eval_prompt(bn_gen *g, const uint32_t *prompt, size_t n, bn_err *e)
{
    size_t common = 0;
    if (!g->o.logits)
        while (common < g->n_hist && common < n && g->hist[common] == prompt[common])
            common++;
    if (common == n)
        common--; /* the last token is evaluated again for its logits */
    bn_ctx_truncate(g->c, (uint32_t)common);
    g->n_hist = common;
    g->st.n_prompt += n - common;
    uint32_t V = g->m->hp.n_vocab;
    for (size_t off = common; off < n; off += BN_KERN_MAX_N) {
        size_t nb = n - off < BN_KERN_MAX_N ? n - off : BN_KERN_MAX_N;
        int all = g->o.logits != NULL;
        if (bn_ctx_eval(g->c, prompt + off, nb, g->logits, all, e))
            return -1;
        for (size_t i = 0; i < nb; i++)
            if (hist_push(g, prompt[off + i]))
                return bn_fail_code(e, BN_E_NOMEM, "out of memory");
        if (all) {
            if (dump_logits(g, g->logits, nb, e))
                return -1;
            if (off + nb == n) /* the sampler reads row 0 */
                memmove(g->logits, g->logits + (nb - 1) * V, V * sizeof *g->logits);
        }
    }
    if (g->o.logits) {
        if (g->o.logits_topk)
            fputc('\n', g->o.logits); /* an empty line ends each prompt */
        /* checked: a failed flush empties the buffer, and fclose would
         * then report nothing, the logits silently lost */
        if (fflush(g->o.logits))
            return logits_error(g, 1, e);
        if (ferror(g->o.logits))
            return logits_error(g, 0, e);
    }
    return 0;
}

static int echo_prompt(bn_gen *g, const uint32_t *prompt, size_t n, bn_err *e)
{
    if (!g->o.text)
        return bn_tokw_put(&g->w, prompt, n, e) || bn_tokw_flush(&g->w, e) ? -1 : 0;
    g->echoing = 1;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *b;
        size_t len;
        if (bn_detok_feed(&g->dt, prompt[i], &b, &len, e) || write_bytes(g, b, len, e))
            return g->echoing = 0, -1;
    }
    g->echoing = 0;
    return 0;
}

/* The answer loop with prompt lookup decoding, or a draft model's guesses
 * (g->draft). Each pass evaluates the last token plus the drafts after
 * it, one logits row per position (bit for bit what one-token passes
 * give: the kernels compute each token's row alone); row j decides the
 * token after the j-th draft, exactly as bn_gen_answer's loop would from
 * the same logits (a sampled draft model's guess by rejection sampling,
 * bn_sampler_verify_dist), and a draft the sampler keeps is already in
 * the KV cache. At the first token that is
 * not the draft, the cache is cut back to the tokens kept and a new pass
 * starts from that token. The stops are the plain loop's, token by token,
 * and the cache ends as the plain loop leaves it. */
static int answer_lookup(bn_gen *g, uint32_t n_ctx, int *stopped, bn_err *e)
{
    uint32_t V = g->m->hp.n_vocab, draft[BN_KERN_MAX_N], batch[BN_KERN_MAX_N];
    bn_lookup lk;
    bn_lookup_init(&lk, g->o.lookup, g->o.draft_max ? g->o.draft_max : 8);
    bn_lookup_keep_times(&lk, &g->times);
    if (g->draft) { /* each answer starts the draft's guess count afresh, as lk's; its pass times stay */
        bn_lookup_restart(&g->draft->k);
        g->draft->off = 0; /* and guesses again after an answer whose text it could not hold */
    }
    bn_lookup *pace = g->draft ? &g->draft->k : &lk; /* how many to guess */
    if (g->o.samp.temp <= 0 && !g->o.no_pacing) /* greedy: how many guesses cannot change the tokens */
        bn_lookup_pace(pace);
    size_t nd = 0; /* drafts checked by the rows in g->logits */
    int32_t done = 0;
    int rc = 0;
    for (;;) {
        uint32_t id = 0;
        size_t j = 0;
        for (;; j++) {
            float *row = g->logits + j * V;
            id = j < nd ? bn_sampler_verify_dist(&g->s, row, g->hist, g->n_hist, draft[j],
                                                 g->draft ? bn_draft_q(g->draft, j) : NULL)
                        : bn_sampler_sample(&g->s, row, g->hist, g->n_hist);
            if (is_stop_id(g->m, id) || (rc = emit(g, id, stopped, e)))
                goto out;
            done++;
            if (*stopped || done == g->o.n_predict || g->n_hist >= n_ctx)
                goto out;
            if (j == nd || id != draft[j])
                break;
            if (hist_push(g, id)) /* a kept draft: evaluated already */
                goto oom;
            g->st.n_gen++;
            g->st.n_accept++;
        }
        bn_lookup_update(pace, nd, j);
        /* the next pass: id, then drafts that fit the context and the answer */
        uint32_t pos = (uint32_t)g->n_hist;
        bn_ctx_truncate(g->c, pos);
        if (hist_push(g, id))
            goto oom;
        size_t limit = n_ctx - 1 - pos;
        if (g->o.n_predict >= 0 && (size_t)(g->o.n_predict - done - 1) < limit)
            limit = (size_t)(g->o.n_predict - done - 1);
        if (limit > BN_KERN_MAX_N - 1)
            limit = BN_KERN_MAX_N - 1;
        if ((rc = bn_spec_guess(&lk, g->draft, g->hist, g->n_hist, limit, draft, &nd, e)))
            goto out;
        batch[0] = id;
        memcpy(batch + 1, draft, nd * sizeof *draft);
        double t0 = bn_seconds();
        if ((rc = bn_spec_eval(g->c, batch, &nd, g->logits, e)))
            goto out;
        bn_lookup_time(pace, nd + 1, bn_seconds() - t0);
        g->st.n_gen++;
        g->st.n_pass++;
        g->st.n_draft += nd;
    }
oom:
    rc = bn_fail_code(e, BN_E_NOMEM, "out of memory");
out:
    bn_ctx_truncate(g->c, (uint32_t)g->n_hist); /* drafts past the answer's end */
    bn_lookup_keep_times(&g->times, &lk);
    return rc;
}

int bn_gen_answer(bn_gen *g, const uint32_t *prompt, size_t n, bn_err *e)
{
    uint32_t n_ctx = bn_ctx_n_ctx(g->c), V = g->m->hp.n_vocab;
    if (n == 0)
        return bn_fail(e, "empty prompt");
    for (size_t i = 0; i < n; i++)
        if (prompt[i] >= V)
            return bn_fail(e, "token %zu: id %u is outside the vocabulary (0..%u)", i + 1, prompt[i], V - 1);
    if (n > n_ctx || (n == n_ctx && g->o.n_predict != 0))
        return bn_fail(e, "prompt of %zu tokens does not fit the context of %u tokens%s", n, n_ctx,
                       n == n_ctx ? " (one more position is needed to answer)" : "");
    size_t shown = g->echo_from < n ? g->echo_from : 0;
    g->echo_from = 0;
    double t0 = bn_seconds();
    if (eval_prompt(g, prompt, n, e))
        return -1;
    double t1 = bn_seconds();
    g->st.t_prompt += t1 - t0;
    if (g->o.echo && echo_prompt(g, prompt + shown, n - shown, e))
        return -1;
    int stopped = 0;
    if ((g->o.lookup || g->draft) && g->o.n_predict != 0) {
        if (answer_lookup(g, n_ctx, &stopped, e))
            return -1;
        g->st.t_gen += bn_seconds() - t1;
        return finish(g, stopped, e);
    }
    for (int32_t k = 0; g->o.n_predict < 0 || k < g->o.n_predict; k++) {
        uint32_t id = bn_sampler_sample(&g->s, g->logits, g->hist, g->n_hist);
        if (is_stop_id(g->m, id))
            break;
        if (emit(g, id, &stopped, e))
            return -1;
        if (stopped || k + 1 == g->o.n_predict || bn_ctx_pos(g->c) >= n_ctx)
            break;
        if (bn_ctx_eval(g->c, &id, 1, g->logits, 0, e) || hist_push(g, id))
            return -1;
        g->st.n_gen++;
    }
    g->st.t_gen += bn_seconds() - t1;
    return finish(g, stopped, e);
}

int bn_gen_stream(bn_gen *g, bn_tokr *in, uint64_t *bad_records, bn_err *e)
{
    uint32_t *ids = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    for (uint64_t rec = 1;; rec++) {
        n = 0;
        uint64_t total;
        /* A record longer than the context is refused without holding it:
         * only n_ctx ids are kept, the rest are counted. */
        uint32_t n_ctx = bn_ctx_n_ctx(g->c);
        int r = bn_tokr_record_max(in, &ids, &n, &cap, n_ctx, &total, e);
        if (r <= 0) {
            rc = r;
            break;
        }
        bn_err re;
        int bad = total > n ? bn_fail(&re, "prompt of %llu tokens does not fit the context of %u tokens",
                                      (unsigned long long)total, n_ctx)
                            : bn_gen_answer(g, ids, n, &re);
        if (bad && re.code == BN_E_IO) { /* the output failed: nothing more can be answered */
            if (e)
                *e = re;
            rc = -1;
            break;
        }
        if (bad) {
            /* One bad record does not end the batch: say which, answer it
             * with an empty record so answers stay aligned with prompts. */
            note(g, BN_LOG_ERROR, "%s: record %llu: %s", in->name, (unsigned long long)rec, re.msg);
            (*bad_records)++;
            g->n_pend = g->n_pids = 0;
            g->n_hist = 0;
            bn_ctx_truncate(g->c, 0);
            if ((g->o.text ? write_bytes(g, (const uint8_t *)"\n", 1, e)
                           : bn_tokw_end(&g->w, e) || bn_tokw_flush(&g->w, e))) {
                rc = -1;
                break;
            }
        }
    }
    free(ids);
    return rc;
}

/* ------------------------------------------------ answers written apart */

bn_gen *bn_gen_writer(const bn_gen *g, FILE *fp, bn_err *e)
{
    return bn_gen_new(g->m, NULL, g->tok, &g->o, fp, g->binary, e);
}

int bn_gen_write_prompt(bn_gen *w, const uint32_t *prompt, size_t n, bn_err *e)
{
    return w->o.echo ? echo_prompt(w, prompt, n, e) : 0;
}

int bn_gen_write_token(bn_gen *w, uint32_t id, int *stopped, bn_err *e)
{
    return emit(w, id, stopped, e);
}

int bn_gen_write_end(bn_gen *w, int stopped, bn_err *e)
{
    return finish(w, stopped, e);
}

int bn_gen_write_empty(bn_gen *w, bn_err *e)
{
    w->n_pend = w->n_pids = 0;
    if (w->o.text)
        return write_bytes(w, (const uint8_t *)"\n", 1, e);
    return bn_tokw_end(&w->w, e) || bn_tokw_flush(&w->w, e) ? -1 : 0;
}

int bn_gen_write_raw(bn_gen *g, const void *b, size_t n, bn_err *e)
{
    if ((n && fwrite(b, 1, n, g->out) != n) || fflush(g->out))
        return bn_fail_write(e, "-");
    return 0;
}

bn_ctx *bn_gen_context(const bn_gen *g)
{
    return g->c;
}

const bn_gen_opts *bn_gen_options(const bn_gen *g)
{
    return &g->o;
}

void bn_gen_add_stats(bn_gen *g, const bn_gen_stats *st)
{
    g->st.n_prompt += st->n_prompt;
    g->st.n_gen += st->n_gen;
    g->st.t_prompt += st->t_prompt;
    g->st.t_gen += st->t_gen;
    g->st.n_pass += st->n_pass;
    g->st.n_draft += st->n_draft;
    g->st.n_accept += st->n_accept;
}

/* ------------------------------------------------------------------ chat */

typedef struct turn {
    bn_role role;
    uint8_t *text;
    size_t len;
} turn;

static int render_as(bn_gen *g, const turn *t, size_t n, int gen_prompt, bn_tokens *out, bn_err *e)
{
    bn_chat_msg *msgs = calloc(n ? n : 1, sizeof *msgs);
    if (!msgs)
        return bn_fail_code(e, BN_E_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        msgs[i] = (bn_chat_msg){t[i].role, t[i].text, t[i].len, 0};
    bn_tokens_clear(out);
    int rc = bn_tokenizer_chat(g->tok, msgs, n, gen_prompt, out, e);
    free(msgs);
    return rc;
}

/* The conversation as the model is to answer it. */
static int render(bn_gen *g, const turn *t, size_t n, bn_tokens *out, bn_err *e)
{
    return render_as(g, t, n, 1, out, e);
}

/* --echo in a chat shows each turn once: the prompt's tokens past the
 * conversation before the new message (its answers as they were shown),
 * where that is a prefix of the prompt, as the chat formats make it. */
static int echo_start(bn_gen *g, const turn *t, size_t n, const bn_tokens *prompt, size_t *from, bn_err *e)
{
    bn_tokens before = {0};
    if (render_as(g, t, n, 0, &before, e))
        return bn_tokens_free(&before), -1;
    size_t c = 0;
    while (c < before.n && c < prompt->n && before.ids[c] == prompt->ids[c])
        c++;
    *from = c == before.n ? c : 0;
    bn_tokens_free(&before);
    return 0;
}

static void drop_turn(turn *t, size_t *n, size_t at)
{
    free(t[at].text);
    memmove(t + at, t + at + 1, (*n - at - 1) * sizeof *t);
    (*n)--;
}

int bn_chat(bn_gen *g, const char *system, FILE *in, bn_err *e)
{
    uint32_t n_ctx = bn_ctx_n_ctx(g->c);
    /* Room kept free for the answer when deciding what history fits. */
    uint32_t reserve = g->o.n_predict > 0 ? (uint32_t)g->o.n_predict : n_ctx / 4;
    if (reserve >= n_ctx)
        reserve = n_ctx / 2;
    turn *t = NULL;
    size_t n = 0, cap = 0;
    bn_tokens toks = {0};
    char *line = NULL;
    size_t line_cap = 0;
    int rc = 0, tty = isatty(fileno(in)) && isatty(fileno(g->out));
    g->escape_breaks = !isatty(fileno(g->out));
    size_t first = 0; /* turns before this are the system prompt, never dropped */
    if (system) {
        if (grow((void **)&t, &cap, 1, sizeof *t) || !(t[0].text = (uint8_t *)strdup(system))) {
            rc = bn_fail_code(e, BN_E_NOMEM, "out of memory");
            goto done;
        }
        t[0].role = BN_ROLE_SYSTEM;
        t[0].len = strlen(system);
        n = first = 1;
        /* A system prompt that fills the context leaves no message room:
         * said once, not as every message being ignored. */
        if (render(g, t, n, &toks, e)) {
            rc = -1;
            goto done;
        }
        if (toks.n >= n_ctx) {
            rc = bn_fail_code(e, BN_E_CONTEXT_FULL,
                              "the system prompt (%zu tokens with the chat format) leaves no room in the context "
                              "of %u tokens",
                              toks.n, n_ctx);
            goto done;
        }
    }
    for (;;) {
        if (tty) {
            fputs("> ", g->out);
            fflush(g->out);
        }
        ssize_t len = getline(&line, &line_cap, in);
        if (len < 0 && ferror(in)) {
            rc = bn_fail_code(e, BN_E_IO, "-: read error: %s", strerror(errno));
            break;
        }
        if (len < 0)
            break;
        /* the line's end, LF or CR LF, is not part of the message (as
         * bn-tokenize --chat reads one); a line of nothing but blanks is
         * no message at all, skipped as an empty one */
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = 0;
        if (len > 0 && line[len - 1] == '\r')
            line[--len] = 0;
        if (strspn(line, " \t\r\f\v") == (size_t)len)
            continue;
        if (grow((void **)&t, &cap, n + 2, sizeof *t) || !(t[n].text = malloc((size_t)len))) {
            rc = bn_fail_code(e, BN_E_NOMEM, "out of memory");
            goto done;
        }
        memcpy(t[n].text, line, (size_t)len);
        t[n].len = (size_t)len;
        t[n++].role = BN_ROLE_USER;
        if (render(g, t, n, &toks, e)) {
            rc = -1;
            goto done;
        }
        /* Drop the oldest exchange (after the system prompt) until the
         * conversation and room for an answer fit. */
        int dropped = 0;
        while (toks.n + reserve > n_ctx && n - first > 1) {
            drop_turn(t, &n, first);
            if (n - first > 1 && t[first].role == BN_ROLE_ASSISTANT)
                drop_turn(t, &n, first);
            dropped++;
            if (render(g, t, n, &toks, e)) {
                rc = -1;
                goto done;
            }
        }
        if (dropped)
            note(g, BN_LOG_WARN, "the conversation no longer fits the context of %u tokens; dropped the oldest "
                                 "%d turn%s", n_ctx, dropped, dropped > 1 ? "s" : "");
        if (toks.n >= n_ctx) {
            note(g, BN_LOG_WARN, "message of %zu tokens does not fit the context of %u tokens; ignored", toks.n,
                 n_ctx);
            drop_turn(t, &n, n - 1);
            continue;
        }
        if (g->o.echo && n - 1 > first && echo_start(g, t, n - 1, &toks, &g->echo_from, e)) {
            rc = -1;
            goto done;
        }
        g->capture = 1;
        g->n_cap = 0;
        int r = bn_gen_answer(g, toks.ids, toks.n, e);
        g->capture = 0;
        if (r || write_bytes(g, (const uint8_t *)"\n", 1, e)) {
            rc = -1;
            goto done;
        }
        if (bn_ctx_pos(g->c) >= n_ctx)
            note(g, BN_LOG_WARN, "the answer filled the context of %u tokens", n_ctx);
        t[n].role = BN_ROLE_ASSISTANT;
        t[n].len = g->n_cap;
        if (!(t[n].text = malloc(g->n_cap ? g->n_cap : 1))) {
            rc = bn_fail_code(e, BN_E_NOMEM, "out of memory");
            goto done;
        }
        if (g->n_cap)
            memcpy(t[n].text, g->cap, g->n_cap);
        n++;
    }
done:
    for (size_t i = 0; i < n; i++)
        free(t[i].text);
    free(t);
    free(line);
    bn_tokens_free(&toks);
    return rc;
}

/* ------------------------------------------------------------ lifecycle */

bn_gen *bn_gen_new(const bn_model *m, bn_ctx *c, bn_tokenizer *tok, const bn_gen_opts *o, FILE *out, int binary_ids,
                   bn_err *e)
{
    bn_gen *g = calloc(1, sizeof *g);
    if (!g) {
        bn_fail_code(e, BN_E_NOMEM, "out of memory");
        return NULL;
    }
    g->m = m;
    g->c = c;
    g->tok = tok;
    g->o = *o;
    g->out = out;
    if (!tok && (o->text || o->n_stop)) {
        bn_fail(e, "%s: the model has no tokenizer (needed for text output and stop strings)", m->src.name);
        free(g);
        return NULL;
    }
    /* a writer (bn_gen_writer) has no context and no logits */
    g->logits = c ? malloc((size_t)BN_KERN_MAX_N * m->hp.n_vocab * sizeof *g->logits) : NULL;
    if ((c && !g->logits) || bn_sampler_init(&g->s, &o->samp, m->hp.n_vocab, e)) {
        if (c && !g->logits)
            bn_fail_code(e, BN_E_NOMEM, "out of memory");
        free(g->logits);
        free(g);
        return NULL;
    }
    g->binary = binary_ids;
    if (c && o->draft) {
        uint32_t k = o->draft_max ? o->draft_max : 8;
        if (bn_ctx_model(o->draft)->hp.n_vocab != m->hp.n_vocab) {
            bn_fail(e, "%s: the draft model's vocabulary is not the model's", m->src.name);
            goto fail;
        }
        if (!(g->draft = malloc(sizeof *g->draft))) {
            bn_fail_code(e, BN_E_NOMEM, "out of memory");
            goto fail;
        }
        if (bn_draft_init(g->draft, o->draft, &o->samp, k, e)) {
            free(g->draft);
            g->draft = NULL;
            goto fail;
        }
    }
    if (o->text) { /* an echoed prompt starts the text (its dummy prefix is dropped); an answer continues it */
        if (bn_detok_init(&g->dt, tok, BN_DEC_SKIP_SPECIAL | (o->echo ? BN_DEC_TEXT_START : 0), e))
            goto fail;
    } else if (bn_tokw_open(&g->w, out, c ? binary_ids : 0, tok ? bn_tokenizer_hash(tok) : 0, m->hp.n_vocab, e)) {
        goto fail;
    } else {
        g->w.binary = binary_ids; /* a writer's stream header is its parent's */
    }
    return g;
fail:
    if (g->draft)
        bn_draft_release(g->draft);
    free(g->draft);
    bn_sampler_release(&g->s);
    free(g->logits);
    free(g);
    return NULL;
}

void bn_gen_free(bn_gen *g)
{
    if (!g)
        return;
    if (g->o.text)
        bn_detok_release(&g->dt);
    else
        bn_tokw_close(&g->w);
    if (g->draft)
        bn_draft_release(g->draft);
    free(g->draft);
    bn_sampler_release(&g->s);
    free(g->logits);
    free(g->hist);
    free(g->pend);
    free(g->pend_ids);
    free(g->pend_end);
    free(g->cap);
    free(g);
}
