/* gen_parallel.c — bn_gen_stream with many records answered at once
 * (generate.h): each record is a bn_batch request, each answer is written
 * by a writer of its own into memory, and answers leave in input order
 * (the oldest unfinished one as it grows, later ones when their turn
 * comes). Records are read ahead to keep every sequence busy, but a read
 * that would wait for input runs passes instead while there is work, so
 * a co-process that sends a prompt and waits for its answer is served. */
#include "batch.h"
#include "generate.h"

#include <stdlib.h>
#include <string.h>

/* A record between reading and writing its answer. */
typedef struct rec {
    bn_gen *w;         /* its answer's writer, into buf */
    FILE *fp;          /* open_memstream over buf */
    char *buf;
    size_t size, sent; /* bytes in buf, and already written out */
    uint32_t *prompt;  /* until its answer begins (echo writes it then) */
    size_t n_prompt;
    int begun; /* its first token came (out of its prompt's pass, not a decode step) */
    int done;
    char *why; /* refused: the message, logged when its (empty) answer is written, in input order */
} rec;

typedef struct run {
    bn_gen *g;
    const bn_gen_opts *o;
    bn_batch *b;
    bn_tokr *in;
    rec *ring;      /* records head..next-1 at [no % W] */
    size_t W;
    uint64_t head;  /* the oldest record not written out yet */
    uint64_t next;  /* the next record to read */
    uint64_t *bad;
    bn_gen_stats st;
} run;

static void rec_free(rec *r)
{
    if (r->fp)
        fclose(r->fp);
    free(r->buf);
    free(r->prompt);
    free(r->why);
    bn_gen_free(r->w);
    memset(r, 0, sizeof *r);
}

/* A record that cannot be answered: the words bn_gen_stream logs, and an
 * empty answer so answers stay aligned with prompts. */
static int refuse(run *R, rec *r, uint64_t no, const char *why, bn_err *e)
{
    /* said when the record's turn to be written comes: a record refused as
     * it is read (too long) would otherwise be said before an earlier one
     * refused when its batch reached it, unlike one record at a time */
    if (R->o->log) {
        char msg[1536];
        snprintf(msg, sizeof msg, "%s: record %llu: %s", R->in->name, (unsigned long long)no, why);
        if (!(r->why = strdup(msg)))
            return bn_fail_code(e, BN_E_NOMEM, "out of memory");
    }
    (*R->bad)++;
    r->done = 1;
    return bn_gen_write_empty(r->w, e);
}

/* Writes out what is ready, oldest first: every finished answer up to
 * the first unfinished one, and what that one has so far. */
static int write_ready(run *R, bn_err *e)
{
    while (R->head < R->next) {
        rec *r = &R->ring[R->head % R->W];
        if (fflush(r->fp))
            return bn_fail_code(e, BN_E_NOMEM, "out of memory");
        if (r->size > r->sent && bn_gen_write_raw(R->g, r->buf + r->sent, r->size - r->sent, e))
            return -1;
        r->sent = r->size;
        if (!r->done)
            break;
        if (r->why)
            R->o->log(R->o->log_user, BN_LOG_ERROR, r->why);
        rec_free(r);
        R->head++;
    }
    return 0;
}

/* One pass, its events into the answers, and what is ready written out. */
static int step(run *R, bn_err *e)
{
    const bn_batch_event *ev;
    size_t n_ev;
    bn_batch_stats before, after;
    bn_batch_get_stats(R->b, &before);
    double t0 = bn_seconds();
    if (bn_batch_step(R->b, &ev, &n_ev, e))
        return -1;
    /* -v: a pass that read prompt tokens is prompt time (decode tokens
     * ride along in it), the others generation time */
    double dt = bn_seconds() - t0;
    bn_batch_get_stats(R->b, &after);
    *(after.prompt_tokens > before.prompt_tokens ? &R->st.t_prompt : &R->st.t_gen) += dt;
    for (size_t i = 0; i < n_ev; i++) {
        rec *r = &R->ring[ev[i].tag % R->W];
        if (r->done) /* tokens of a step after the stop string that ended it (--lookup) */
            continue;
        if (ev[i].finish == BN_FIN_ERROR) {
            if (refuse(R, r, ev[i].tag, ev[i].error, e))
                return -1;
            continue;
        }
        if (r->prompt) { /* its first event: the answer begins (a refused one is not echoed) */
            int rc = bn_gen_write_prompt(r->w, r->prompt, r->n_prompt, e);
            free(r->prompt);
            r->prompt = NULL;
            if (rc)
                return -1;
        }
        int stopped = 0;
        if (ev[i].token != BN_BATCH_NO_TOKEN) {
            R->st.n_gen += r->begun; /* counted as bn_gen_stream counts: decode steps' tokens */
            r->begun = 1;
            if (bn_gen_write_token(r->w, ev[i].token, &stopped, e))
                return -1;
            if (stopped) /* a stop string: the answer is over */
                bn_batch_cancel(R->b, ev[i].tag);
        }
        if (stopped || ev[i].finish) {
            if (bn_gen_write_end(r->w, stopped, e))
                return -1;
            r->done = 1;
        }
    }
    return write_ready(R, e);
}

/* Record R->next (ids, n of its total ids) into the ring and the batch;
 * one longer than the context (only n_ctx ids kept) is refused here. */
static int take_record(run *R, const uint32_t *ids, size_t n, uint64_t total, bn_err *e)
{
    uint64_t no = R->next++;
    rec *r = &R->ring[no % R->W];
    memset(r, 0, sizeof *r);
    if (!(r->fp = open_memstream(&r->buf, &r->size)))
        return bn_fail_code(e, BN_E_NOMEM, "out of memory");
    if (!(r->w = bn_gen_writer(R->g, r->fp, e)))
        return -1;
    if (total > n) {
        char why[128];
        snprintf(why, sizeof why, "prompt of %llu tokens does not fit the context of %u tokens",
                 (unsigned long long)total, bn_ctx_n_ctx(bn_gen_context(R->g)));
        return refuse(R, r, no, why, e);
    }
    if (n && !(r->prompt = malloc(n * sizeof *r->prompt)))
        return bn_fail_code(e, BN_E_NOMEM, "out of memory");
    if (n)
        memcpy(r->prompt, ids, n * sizeof *ids);
    r->n_prompt = n;
    bn_request q = {.prompt = ids,
                    .n_prompt = n,
                    .samp = R->o->samp,
                    .n_predict = R->o->n_predict,
                    .tag = no,
                    .lookup = R->o->lookup,
                    .draft_max = R->o->draft_max,
                    .draft = R->o->draft != NULL};
    q.samp.seed = R->o->samp.seed + no - 1; /* the record's own draws, whatever runs beside it */
    R->st.n_prompt += n;
    return bn_batch_submit(R->b, &q, e);
}

/* Before a read of the input that may wait: passes while there is work
 * and no input is ready. */
static int before_read(void *ctx, bn_err *e)
{
    run *R = ctx;
    while (bn_batch_pending(R->b)) {
        if (bn_tokr_ready(R->in))
            break; /* input (or an error the read will report) */
        if (step(R, e))
            return -1;
    }
    return 0;
}

int bn_gen_stream_parallel(bn_gen *g, bn_tokr *in, uint32_t n_par, uint64_t *bad_records, bn_err *e)
{
    bn_ctx *c = bn_gen_context(g);
    uint32_t n_ctx = bn_ctx_n_ctx(c);
    /* records read ahead: enough to refill every sequence while the
     * oldest answer still runs */
    run R = {.g = g, .o = bn_gen_options(g), .in = in, .W = 4 * (size_t)n_par + 4, .head = 1, .next = 1,
             .bad = bad_records};
    R.ring = calloc(R.W, sizeof *R.ring);
    if (!R.ring)
        return bn_fail_code(e, BN_E_NOMEM, "out of memory");
    bn_batch_opts bo = {.draft = R.o->draft}; /* with as many sequences as c (bn-infer makes it so) */
    if (!(R.b = bn_batch_new(c, &bo, e))) {
        free(R.ring);
        return -1;
    }
    bn_tokr_before_read(in, before_read, &R);
    uint32_t *ids = NULL;
    size_t n = 0, cap = 0;
    int rc = 0, eof = 0, read_rc = 0;
    bn_err read_err = {0};
    while (!rc) {
        while (!eof && R.next - R.head < R.W) {
            uint64_t total;
            n = 0;
            int r = bn_tokr_record_max(in, &ids, &n, &cap, n_ctx, &total, &read_err);
            if (r <= 0) { /* the end, or a broken stream: the answers to what was read go out first */
                eof = 1;
                read_rc = r;
                break;
            }
            if (take_record(&R, ids, n, total, e)) {
                rc = -1;
                break;
            }
        }
        if (rc || write_ready(&R, e))
            rc = -1;
        else if (eof && R.head == R.next)
            break;
        else if (step(&R, e))
            rc = -1;
    }
    bn_tokr_before_read(in, NULL, NULL);
    for (uint64_t i = R.head; i < R.next; i++)
        rec_free(&R.ring[i % R.W]);
    bn_batch_stats bs;
    bn_batch_get_stats(R.b, &bs);
    R.st.n_pass = bs.spec_passes; /* -v's tokens a pass: per answer, as without --parallel */
    R.st.n_draft = bs.drafted;
    R.st.n_accept = bs.accepted;
    bn_batch_free(R.b);
    free(R.ring);
    free(ids);
    bn_gen_add_stats(g, &R.st);
    if (!rc && read_rc < 0) {
        if (e)
            *e = read_err;
        rc = -1;
    }
    return rc;
}
