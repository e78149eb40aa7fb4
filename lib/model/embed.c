/* embed.c — an embedding model's vectors (embed.h, formats/embedding.md):
 * records run as sequences of one batch, the last token's final-normed
 * state (the context made with embeddings gives it instead of logits)
 * divided by its L2 norm. */
#include "embed.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int bn_embed_input(const bn_hparams *hp, bn_tokens *rec, bn_err *e)
{
    if (hp->embed_end_id < 0 || (rec->n && rec->ids[rec->n - 1] == (uint32_t)hp->embed_end_id))
        return 0;
    if (bn_tokens_push(rec, (uint32_t)hp->embed_end_id, BN_TOK_NO_OFFSET))
        return bn_fail_code(e, BN_E_NOMEM, "out of memory");
    return 0;
}

/* v / max(|v|, 1e-12), the norm summed in double (sentence-transformers'
 * Normalize: torch.nn.functional.normalize, p = 2, eps = 1e-12). */
static void l2_normalize(float *v, size_t d)
{
    double ss = 0;
    for (size_t i = 0; i < d; i++)
        ss += (double)v[i] * v[i];
    double norm = sqrt(ss);
    float inv = (float)(1.0 / (norm > 1e-12 ? norm : 1e-12));
    for (size_t i = 0; i < d; i++)
        v[i] *= inv;
}

int bn_embed_seqs_live(bn_ctx *c, bn_err *e)
{
    for (uint32_t s = 0; s < bn_ctx_n_seq(c); s++) {
        /* the lowest free id is s when those below it are live */
        int r = bn_ctx_seq_live(c, (int)s) ? 0 : bn_ctx_seq_new(c, e);
        if (r < 0)
            return r;
    }
    return 0;
}

int bn_embed_run(bn_ctx *c, const bn_tokens *recs, size_t k, float *out, bn_err *e)
{
    const bn_model *m = bn_ctx_model(c);
    size_t d = m->hp.n_embd, total = 0;
    for (size_t i = 0; i < k; i++) {
        if (!recs[i].n)
            return bn_fail_code(e, BN_E_INVALID, "record %zu is empty", i);
        total += recs[i].n;
    }
    bn_eval_tok *t = malloc(total * sizeof *t);
    if (!t)
        return bn_fail_code(e, BN_E_NOMEM, "out of memory");
    size_t j = 0;
    for (size_t i = 0; i < k; i++)
        for (size_t p = 0; p < recs[i].n; p++)
            t[j++] = (bn_eval_tok){.id = recs[i].ids[p], .seq = (uint32_t)i, .pos = (uint32_t)p,
                                   .logits = p + 1 == recs[i].n};
    /* the rows come in batch order: record 0's last token first */
    int rc = bn_ctx_eval_batch(c, t, total, out, e);
    free(t);
    for (size_t i = 0; i < k; i++)
        bn_ctx_seq_truncate(c, (int)i, 0);
    if (rc)
        return rc;
    for (size_t i = 0; i < k; i++)
        l2_normalize(out + i * d, d);
    return 0;
}

/* ------------------------------------------------------------- output */

static int write_vec(FILE *f, int format, uint64_t rec, const float *v, size_t d, const char *err, bn_err *e)
{
    int bad = 0;
    if (format == BN_EMBED_F32) {
        if (err) {
            float nan = NAN;
            for (size_t i = 0; i < d && !bad; i++)
                bad = fwrite(&nan, sizeof nan, 1, f) != 1;
        } else
            bad = fwrite(v, sizeof *v, d, f) != d;
    } else {
        if (format == BN_EMBED_JSON) {
            fprintf(f, "{\"record\": %llu, ", (unsigned long long)rec);
            if (err) {
                fputs("\"error\": \"", f);
                for (const unsigned char *p = (const unsigned char *)err; *p; p++)
                    fprintf(f, *p == '"' || *p == '\\' ? "\\%c" : *p < 0x20 ? "\\u%04x" : "%c", *p);
                fputs("\"}", f);
            } else
                fputs("\"embedding\": [", f);
        }
        /* %.9g: every f32 read back exactly */
        for (size_t i = 0; !err && i < d; i++)
            fprintf(f, i ? (format == BN_EMBED_JSON ? ", %.9g" : " %.9g") : "%.9g", (double)v[i]);
        if (format == BN_EMBED_JSON && !err)
            fputs("]}", f);
        bad = fputc('\n', f) == EOF;
    }
    /* ferror: a fprintf that failed mid-vector leaves nothing to flush */
    if (bad || fflush(f) || ferror(f))
        return bn_fail_write(e, "-");
    return 0;
}

/* ------------------------------------------------------------- stream */

/* 1 (why filled) when a record holds an id outside the vocabulary. */
static int outside_vocab(const bn_tokens *r, uint32_t n_vocab, char *why, size_t n)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->ids[i] >= n_vocab)
            return snprintf(why, n, "token %zu: id %u is outside the vocabulary (0..%u)", i + 1, r->ids[i],
                            n_vocab - 1), 1;
    return 0;
}

int bn_embed_finite(const float *v, size_t d)
{
    for (size_t i = 0; i < d; i++)
        if (!isfinite(v[i]))
            return 0;
    return 1;
}

int bn_embed_stream(bn_ctx *c, bn_embed_src src, void *src_ctx, const bn_embed_opts *o, FILE *out, uint64_t *bad,
                    bn_err *e)
{
    const bn_model *m = bn_ctx_model(c);
    const bn_hparams *hp = &m->hp;
    size_t d = hp->n_embd, par = o->parallel ? o->parallel : 1, n_ctx = bn_ctx_n_ctx(c);
    if (par > bn_ctx_n_seq(c))
        return bn_fail_code(e, BN_E_INVALID, "%zu records at once, but the context holds %u sequences", par,
                            bn_ctx_n_seq(c));
    if (bn_embed_seqs_live(c, e))
        return -1;
    bn_tokens *recs = calloc(par, sizeof *recs), *run = calloc(par, sizeof *run);
    char(*why)[160] = calloc(par, sizeof *why);
    char *ran = calloc(par, 1); /* record k went into run (and has a row of vec) */
    float *vec = malloc(par * d * sizeof *vec);
    int rc = 0, done = 0, src_failed = 0;
    bn_err src_err = {0}; /* a broken input: reported after the records read before it */
    if (!recs || !run || !why || !ran || !vec)
        rc = bn_fail_code(e, BN_E_NOMEM, "out of memory");
    size_t k = 0;
    for (uint64_t base = 1; !rc && !done; base += k) {
        size_t nrun = 0;
        k = 0;
        for (; k < par; k++) { /* a pass: up to par records, those ready */
            if (k && o->ready && !o->ready(src_ctx))
                break; /* a co-process waits for these answers before it writes more */
            bn_tokens_clear(&recs[k]);
            int r = src(src_ctx, &recs[k], &src_err);
            src_failed = r < 0;
            if (r <= 0) {
                done = 1;
                break;
            }
            why[k][0] = 0;
            ran[k] = 0;
            if (bn_embed_input(hp, &recs[k], e))
                rc = -1;
            else if (!recs[k].n)
                snprintf(why[k], sizeof why[k], "the record is empty (and the model appends no end token)");
            else if (recs[k].n > n_ctx)
                snprintf(why[k], sizeof why[k], "the record does not fit the context of %zu tokens (the end token included)",
                         n_ctx);
            else if (outside_vocab(&recs[k], hp->n_vocab, why[k], sizeof why[k]))
                ; /* this record is answered with its error, the others go on */
            else {
                run[nrun++] = recs[k];
                ran[k] = 1;
            }
        }
        if (rc)
            break;
        bn_err re;
        int r = nrun ? bn_embed_run(c, run, nrun, vec, &re) : 0;
        /* one at a time: the budget holds fewer at once, or a record's K
         * or V is beyond an f16 cache (--kv f16): that record is answered
         * with its error, the others go on */
        if (r && (re.code == BN_E_KV_FULL || re.code == BN_E_KV_RANGE))
            for (size_t i = r = 0, j = 0; i < k && !r; i++) {
                if (!ran[i])
                    continue;
                r = bn_embed_run(c, &run[j], 1, vec + j * d, &re);
                j++;
                if (r == BN_E_KV_RANGE) {
                    const char *at;
                    size_t pos = bn_ctx_range_token(c, &at);
                    snprintf(why[i], sizeof why[i], "position %zu: %s", pos, at);
                    r = 0;
                }
            }
        if (r) {
            rc = bn_fail_code(e, re.code, "%s", re.msg);
            break;
        }
        for (size_t i = 0, v = 0; i < k && !rc; i++) {
            const float *vi = ran[i] ? vec + d * v++ : NULL;
            const char *err = why[i][0] ? why[i] : NULL;
            if (!err && !bn_embed_finite(vi, d))
                err = "the embedding is not finite (a value overflowed, or the model's weights hold inf or NaN)";
            if (err) {
                (*bad)++;
                if (o->log) {
                    char msg[1024];
                    snprintf(msg, sizeof msg, "%s%srecord %llu: %s", o->input ? o->input : "", o->input ? ": " : "",
                             (unsigned long long)(base + i), err);
                    o->log(o->log_user, BN_LOG_ERROR, msg);
                }
            }
            rc = write_vec(out, o->format, base + i, err ? NULL : vi, d, err, e);
        }
        if (!rc && src_failed) {
            *e = src_err;
            rc = -1;
        }
    }
    for (size_t i = 0; recs && i < par; i++)
        bn_tokens_free(&recs[i]);
    free(recs);
    free(run);
    free(why);
    free(ran);
    free(vec);
    return rc;
}

/* ------------------------------------------------------------- sources */

int bn_embed_src_tokr(void *ctx, bn_tokens *out, bn_err *e)
{
    bn_embed_tokr *s = ctx;
    return bn_tokr_record_max(s->in, &out->ids, &out->n, &out->cap, s->max, &s->total, e);
}

int bn_embed_src_tokr_ready(void *ctx)
{
    return bn_tokr_ready(((bn_embed_tokr *)ctx)->in);
}

int bn_embed_src_text_ready(void *ctx)
{
    bn_embed_text *s = ctx;
    return !s->lines || bn_fd_ready(fileno(s->lines));
}

int bn_embed_src_text(void *ctx, bn_tokens *out, bn_err *e)
{
    bn_embed_text *s = ctx;
    const char *text = s->text;
    size_t len = s->len;
    if (s->lines) {
        ssize_t n = getline(&s->buf, &s->cap, s->lines);
        if (n < 0) {
            int err = errno;
            free(s->buf);
            s->buf = NULL;
            return ferror(s->lines) ? bn_fail(e, "%s", strerror(err)) : 0; /* the caller names the file */
        }
        if (n && s->buf[n - 1] == '\n')
            n--;
        if (n && s->buf[n - 1] == '\r')
            n--;
        text = s->buf;
        len = (size_t)n;
    } else if (!text)
        return 0;
    else
        s->text = NULL; /* one text, once */
    unsigned flags = s->hp->add_bos && s->hp->bos_id >= 0 ? BN_ENC_BOS : 0;
    return bn_tokenizer_encode(s->tok, text, len, flags, 0, out, e) ? -1 : 1;
}
