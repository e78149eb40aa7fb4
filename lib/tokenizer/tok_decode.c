/* tok_decode.c — ids back to bytes, as a stream.
 *
 * Tokens often end inside a multi-byte character (Llama 3 has tokens that
 * are half an emoji). A printer that wrote them at once would show broken
 * characters on a terminal, so the decoder holds back the tail of the output
 * while it is an incomplete but still possible UTF-8 character (at most 3
 * bytes) and releases it with the token that completes it. Bytes that can
 * never become a character are released at once and unchanged: decoding
 * stays the exact inverse of encoding. */
#include "tok_impl.h"

#include <stdlib.h>
#include <string.h>

int bn_detok_init(bn_detok *d, const bn_tokenizer *t, unsigned flags, bn_err *e)
{
    memset(d, 0, sizeof *d);
    d->t = t;
    d->flags = flags;
    d->at_start = (flags & BN_DEC_TEXT_START) && t->space_prefix;
    d->cap = t->max_len + 4;
    d->buf = malloc(d->cap);
    if (!d->buf)
        return bn_fail_code(e, BN_E_NOMEM, "out of memory");
    return 0;
}

void bn_detok_release(bn_detok *d)
{
    free(d->buf);
    d->buf = NULL;
}

/* Bytes at the end of b[0..n) that begin a character not yet complete:
 * a lead byte followed by fewer continuation bytes than it needs, each of
 * them allowed in its place (so E0 80 is not held: it can never be valid). */
static size_t incomplete_tail(const uint8_t *b, size_t n)
{
    for (size_t k = 1; k <= 3 && k <= n; k++) {
        uint8_t c = b[n - k];
        if ((c & 0xC0) == 0x80)
            continue; /* a continuation byte: look further back */
        size_t need = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xC2 && c <= 0xDF ? 2 : 0;
        if (need <= k)
            return 0; /* ASCII, an invalid lead, or a character already complete */
        /* Check the continuation bytes present against the lead's ranges. */
        if (k >= 2) {
            uint8_t lo = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80;
            uint8_t hi = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;
            if (b[n - k + 1] < lo || b[n - k + 1] > hi)
                return 0;
        }
        return k;
    }
    return 0;
}

int bn_detok_feed(bn_detok *d, uint32_t id, const uint8_t **out, size_t *len, bn_err *e)
{
    if (!d)
        return bn_fail_code(e, BN_E_INVALID, "bn_detok_feed: the detokenizer is NULL");
    const uint8_t *unused_out;
    size_t unused_len;
    out = out ? out : &unused_out; /* text not wanted: it is still consumed */
    len = len ? len : &unused_len;
    const bn_tokenizer *t = d->t;
    if (id >= t->n_vocab)
        return bn_fail_code(e, BN_E_INVALID, "token id %u is out of range (the vocabulary has ids 0..%u)", id,
                            t->n_vocab - 1);
    size_t n = t->off[id + 1] - t->off[id];
    const uint8_t *src = t->blob + t->off[id];
    if ((d->flags & BN_DEC_SKIP_SPECIAL) && t->type[id] == BN_TOKT_CONTROL)
        n = 0;
    /* The space the encoder put before the text (SentencePiece drops one
     * leading space of the first piece that is text; control tokens such
     * as BOS come before it and are not text). */
    if (d->at_start && t->type[id] != BN_TOKT_CONTROL && n) {
        d->at_start = 0;
        if (*src == ' ') {
            src++;
            n--;
        }
    }
    /* The held bytes sit where the last call left them (after the bytes it
     * released, which the caller has read by now): bring them to the front
     * and append this token. */
    uint8_t *b = d->buf;
    memmove(b, b + d->tail_at, d->held);
    memcpy(b + d->held, src, n);
    size_t total = d->held + n;
    d->held = incomplete_tail(b, total);
    d->tail_at = total - d->held;
    *out = b;
    *len = d->tail_at;
    return 0;
}

void bn_detok_flush(bn_detok *d, const uint8_t **out, size_t *len)
{
    const uint8_t *unused_out;
    size_t unused_len;
    out = out ? out : &unused_out;
    len = len ? len : &unused_len;
    *out = NULL;
    *len = 0;
    if (!d)
        return;
    *out = d->buf + d->tail_at;
    *len = d->held;
    d->held = 0;
    d->tail_at = 0;
    d->at_start = (d->flags & BN_DEC_TEXT_START) && d->t->space_prefix;
}
