/* tokstream.c — reader and writer of bn token streams (formats/bn-tokens.md).
 *
 * The reader does its own buffering over a file descriptor rather than
 * stdio, so that it can tell its caller when the next read may block: a
 * decoder flushes its output then, and text appears as ids arrive. */
#include "tokstream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BUF_SIZE 65536

/* ---------------------------------------------------------------- reader */

static int fill(bn_tokr *r, bn_err *e)
{
    if (r->eof)
        return 0;
    if (r->pos < r->len) {
        memmove(r->buf, r->buf + r->pos, r->len - r->pos);
        r->len -= r->pos;
    } else {
        r->len = 0;
    }
    r->pos = 0;
    if (r->before_read && r->before_read(r->ctx, e))
        return -1;
    for (;;) {
        ssize_t n = read(r->fd, r->buf + r->len, BUF_SIZE - r->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return bn_fail_code(e, BN_E_IO, "%s: %s", r->name, strerror(errno));
        if (n == 0)
            r->eof = 1;
        r->len += (size_t)n;
        return 0;
    }
}

/* Makes at least want bytes available; fewer only at EOF. */
static int need(bn_tokr *r, size_t want, bn_err *e)
{
    while (r->len - r->pos < want && !r->eof)
        if (fill(r, e))
            return -1;
    return 0;
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

int bn_tokr_ready(const bn_tokr *r)
{
    return r->pos < r->len || r->eof || bn_fd_ready(r->fd);
}

void bn_tokr_before_read(bn_tokr *r, int (*fn)(void *ctx, bn_err *e), void *ctx)
{
    r->before_read = fn;
    r->ctx = ctx;
}

static int tokr_start(bn_tokr *r, int fd, const char *name, bn_err *e)
{
    memset(r, 0, sizeof *r);
    r->fd = fd;
    r->name = name;
    r->line = 1;
    r->buf = malloc(BUF_SIZE);
    if (!r->buf)
        return bn_fail_code(e, BN_E_NOMEM, "out of memory");
    if (need(r, 1, e))
        return -1;
    if (r->len == 0 || r->buf[0] != 'B')
        return 0; /* text (or empty) */
    r->binary = 1;
    if (need(r, BN_TOKS_HEADER, e))
        return -1;
    const uint8_t *h = r->buf;
    if (r->len < 8 || memcmp(h, BN_TOKS_MAGIC, 8))
        return bn_fail(e, "%s: not a token stream (bad binary magic)", name);
    if (r->len < BN_TOKS_HEADER)
        return bn_fail(e, "%s: binary token stream cut short in its header (%zu of %d bytes)", name, (size_t)r->len,
                       BN_TOKS_HEADER);
    if (rd32(h + 8) != BN_TOKS_VERSION)
        return bn_fail(e, "%s: binary token stream version %u is not supported (only %d)", name, rd32(h + 8),
                       BN_TOKS_VERSION);
    if (rd32(h + 12) != BN_TOKS_HEADER || rd32(h + 28))
        return bn_fail(e, "%s: binary token stream header has size %u and flags 0x%x (expected %d and 0)", name,
                       rd32(h + 12), rd32(h + 28), BN_TOKS_HEADER);
    r->hash = rd64(h + 16);
    r->n_vocab = rd32(h + 24);
    r->pos = BN_TOKS_HEADER;
    return 0;
}

int bn_tokr_open(bn_tokr *r, int fd, const char *name, bn_err *e)
{
    if (!tokr_start(r, fd, name, e))
        return 0;
    bn_tokr_close(r); /* a failed open leaves nothing to close */
    return -1;
}

int bn_tokr_check(const bn_tokr *r, uint64_t hash, uint32_t n_vocab, bn_err *e)
{
    if (r->hash && hash && r->hash != hash)
        return bn_fail(e, "%s: the token stream was made by tokenizer %016llx, not this model's (%016llx)", r->name,
                       (unsigned long long)r->hash, (unsigned long long)hash);
    if (r->n_vocab && n_vocab && r->n_vocab != n_vocab)
        return bn_fail(e, "%s: the token stream's vocabulary has %u ids, this model's %u", r->name, r->n_vocab,
                       n_vocab);
    return 0;
}

static int next_binary(bn_tokr *r, uint32_t *id, bn_err *e)
{
    for (;;) {
        if (r->chunk_left) {
            if (need(r, 4, e))
                return -1;
            if (r->len - r->pos < 4)
                return bn_fail(e, "%s: record %llu is truncated after %llu id%s", r->name,
                               (unsigned long long)r->record + 1, (unsigned long long)r->index, r->index == 1 ? "" : "s");
            *id = rd32(r->buf + r->pos);
            r->pos += 4;
            r->chunk_left--;
            r->index++;
            return BN_TOKR_ID;
        }
        if (r->in_record && !r->chunk_more) {
            r->in_record = 0;
            r->record++;
            r->index = 0;
            return BN_TOKR_END;
        }
        if (need(r, 4, e))
            return -1;
        size_t avail = r->len - r->pos;
        if (avail == 0 && !r->in_record)
            return BN_TOKR_EOF;
        if (avail < 4)
            return bn_fail(e, "%s: record %llu is truncated (a chunk header is cut short)", r->name,
                           (unsigned long long)r->record + 1);
        uint32_t w = rd32(r->buf + r->pos);
        r->pos += 4;
        r->in_record = 1;
        r->chunk_more = (w & BN_TOKS_MORE) != 0;
        r->chunk_left = w & ~BN_TOKS_MORE;
    }
}

static int text_error(bn_tokr *r, uint8_t c, bn_err *e)
{
    if (c >= 0x21 && c < 0x7F)
        return bn_fail(e, "%s: line %llu, column %llu: '%c' where a token id was expected", r->name,
                       (unsigned long long)r->line, (unsigned long long)r->col, c);
    return bn_fail(e, "%s: line %llu, column %llu: byte 0x%02x where a token id was expected", r->name,
                   (unsigned long long)r->line, (unsigned long long)r->col, c);
}

static int next_text(bn_tokr *r, uint32_t *id, bn_err *e)
{
    uint64_t v = 0;
    int digits = 0;
    for (;;) {
        if (r->pos == r->len) {
            if (fill(r, e))
                return -1;
            if (r->pos == r->len) { /* EOF: complete what is open */
                if (digits) {
                    *id = (uint32_t)v;
                    r->index++;
                    return BN_TOKR_ID;
                }
                if (r->in_record) {
                    r->in_record = 0;
                    r->record++;
                    r->index = 0;
                    return BN_TOKR_END;
                }
                return BN_TOKR_EOF;
            }
        }
        uint8_t c = r->buf[r->pos];
        if (c >= '0' && c <= '9') {
            v = v * 10 + (uint64_t)(c - '0');
            if (v > UINT32_MAX)
                return bn_fail(e, "%s: line %llu, token %llu: an id larger than 4294967295 (ids are 32-bit)", r->name,
                               (unsigned long long)r->line, (unsigned long long)r->index + 1);
            digits = 1;
            r->in_record = 1;
            r->pos++;
            r->col++;
            continue;
        }
        if (digits) { /* any other byte ends the id; it is looked at next call */
            *id = (uint32_t)v;
            r->index++;
            return BN_TOKR_ID;
        }
        r->pos++;
        r->col++;
        if (c == ' ' || c == '\t') {
            r->in_record = 1;
            continue;
        }
        if (c == '\r') {
            if (need(r, 1, e))
                return -1;
            if (r->pos < r->len && r->buf[r->pos] == '\n')
                continue;
            return text_error(r, c, e);
        }
        if (c == '\n') {
            r->line++;
            r->col = 0;
            r->in_record = 0;
            r->record++;
            r->index = 0;
            return BN_TOKR_END;
        }
        return text_error(r, c, e);
    }
}

int bn_tokr_next(bn_tokr *r, uint32_t *id, bn_err *e)
{
    return r->binary ? next_binary(r, id, e) : next_text(r, id, e);
}

int bn_tokr_record(bn_tokr *r, uint32_t **ids, size_t *n, size_t *cap, bn_err *e)
{
    uint64_t total;
    return bn_tokr_record_max(r, ids, n, cap, SIZE_MAX, &total, e);
}

int bn_tokr_record_max(bn_tokr *r, uint32_t **ids, size_t *n, size_t *cap, size_t max, uint64_t *total, bn_err *e)
{
    *total = *n;
    for (int started = 0;; started = 1) {
        uint32_t id;
        int rc = bn_tokr_next(r, &id, e);
        if (rc < 0)
            return -1;
        if (rc == BN_TOKR_EOF)
            return started ? 1 : 0;
        if (rc == BN_TOKR_END)
            return 1;
        (*total)++;
        /* Past max the ids are only counted: a consumer that cannot use a
         * longer record still learns its length, in bounded memory. */
        if (*n >= max)
            continue;
        if (*n == *cap) {
            size_t nc = *cap ? *cap * 2 : 256;
            uint32_t *ni = realloc(*ids, nc * sizeof *ni);
            if (!ni)
                return bn_fail_code(e, BN_E_NOMEM, "out of memory");
            *ids = ni;
            *cap = nc;
        }
        (*ids)[(*n)++] = id;
    }
}

void bn_tokr_close(bn_tokr *r)
{
    free(r->buf);
    r->buf = NULL;
}

/* ---------------------------------------------------------------- writer */

static int wfail(bn_tokw *w, bn_err *e)
{
    return bn_fail_write(e, w->name ? w->name : "-");
}

static void le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

int bn_tokw_open(bn_tokw *w, FILE *fp, int binary, uint64_t hash, uint32_t n_vocab, bn_err *e)
{
    memset(w, 0, sizeof *w);
    w->fp = fp;
    w->binary = binary;
    if (!binary)
        return 0;
    uint8_t h[BN_TOKS_HEADER] = {0};
    memcpy(h, BN_TOKS_MAGIC, 8);
    le32(h + 8, BN_TOKS_VERSION);
    le32(h + 12, BN_TOKS_HEADER);
    le32(h + 16, (uint32_t)hash);
    le32(h + 20, (uint32_t)(hash >> 32));
    le32(h + 24, n_vocab);
    if (fwrite(h, 1, sizeof h, fp) != sizeof h)
        return wfail(w, e);
    return 0;
}

/* Writes the pending ids as one chunk (with the more-follows bit unless it
 * ends the record). */
static int write_chunk(bn_tokw *w, int last, bn_err *e)
{
    size_t done = 0;
    do {
        size_t n = w->n_pend - done;
        if (n > 0x7FFFFFFF)
            n = 0x7FFFFFFF;
        int fin = last && done + n == w->n_pend;
        uint8_t hdr[4];
        le32(hdr, (uint32_t)n | (fin ? 0 : BN_TOKS_MORE));
        if (fwrite(hdr, 1, 4, w->fp) != 4)
            return wfail(w, e);
        for (size_t i = 0; i < n; i++) {
            uint8_t b[4];
            le32(b, w->pend[done + i]);
            if (fwrite(b, 1, 4, w->fp) != 4)
                return wfail(w, e);
        }
        done += n;
    } while (done < w->n_pend);
    w->n_pend = 0;
    return 0;
}

int bn_tokw_put(bn_tokw *w, const uint32_t *ids, size_t n, bn_err *e)
{
    if (w->binary) {
        if (w->n_pend + n > w->cap) {
            size_t cap = w->cap ? w->cap : 1024;
            while (cap < w->n_pend + n)
                cap *= 2;
            uint32_t *p = realloc(w->pend, cap * sizeof *p);
            if (!p)
                return bn_fail_code(e, BN_E_NOMEM, "out of memory");
            w->pend = p;
            w->cap = cap;
        }
        memcpy(w->pend + w->n_pend, ids, n * sizeof *ids);
        w->n_pend += n;
        w->in_record = 1;
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char buf[16], *p = buf + sizeof buf;
        uint32_t v = ids[i];
        do
            *--p = (char)('0' + v % 10);
        while (v /= 10);
        if (w->sep_pending)
            *--p = ' ';
        size_t len = (size_t)(buf + sizeof buf - p);
        if (fwrite(p, 1, len, w->fp) != len)
            return wfail(w, e);
        w->sep_pending = 1;
        w->in_record = 1;
    }
    return 0;
}

int bn_tokw_end(bn_tokw *w, bn_err *e)
{
    if (w->binary) {
        if (write_chunk(w, 1, e))
            return -1;
    } else if (putc('\n', w->fp) == EOF) {
        return wfail(w, e);
    }
    w->in_record = 0;
    w->sep_pending = 0;
    return 0;
}

int bn_tokw_flush(bn_tokw *w, bn_err *e)
{
    if (w->binary && w->n_pend && write_chunk(w, 0, e))
        return -1;
    if (!w->binary && w->sep_pending) {
        /* The reader cannot know an id is complete until a separator comes. */
        if (putc(' ', w->fp) == EOF)
            return wfail(w, e);
        w->sep_pending = 0;
    }
    if (fflush(w->fp))
        return wfail(w, e);
    return 0;
}

void bn_tokw_close(bn_tokw *w)
{
    free(w->pend);
    w->pend = NULL;
}
