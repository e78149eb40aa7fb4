/* tok_pre.c — the encode driver: special tokens are cut out first, the rest
 * is cut into valid UTF-8 stretches and runs of invalid bytes, the valid
 * stretches are split by the model's regex (PCRE2, JIT-compiled), and every
 * piece goes to BPE.
 *
 * Regex semantics follow tiktoken (Rust regex / fancy-regex): Unicode
 * properties, and \s as the Unicode White_Space property. PCRE2's own \s in
 * UCP mode also matches U+180E (an old Unicode space), so \s and \S are
 * rewritten to \p{White_Space} / \P{White_Space} before compiling. */
#include "tok_impl.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------- UTF-8 */

/* Bytes of valid UTF-8 at the start of p; ASCII goes eight bytes a step. */
static size_t valid_prefix(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if (!(w & 0x8080808080808080ull)) {
                i += 8;
                continue;
            }
        }
        size_t k = bn_utf8_char(p + i, n - i);
        if (!k)
            break;
        i += k;
    }
    return i;
}

/* Bytes at the start of p at which no valid character begins. */
static size_t invalid_run(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n && !bn_utf8_char(p + i, n - i))
        i++;
    return i;
}

/* ------------------------------------------------------------- regex */

int bn_tok_pre_compile(bn_tokenizer *t, const char *pattern, bn_err *e)
{
    size_t n = strlen(pattern);
    char *pat = malloc(n * 8 + 1); /* "\s" (2) grows to "\p{White_Space}" (15) */
    if (!pat)
        return bn_fail_code(e, BN_E_NOMEM, "out of memory");
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (pattern[i] == '\\' && i + 1 < n) {
            char c = pattern[++i];
            if (c == 's' || c == 'S') {
                memcpy(pat + o, c == 's' ? "\\p{White_Space}" : "\\P{White_Space}", 15);
                o += 15;
            } else {
                pat[o++] = '\\';
                pat[o++] = c;
            }
        } else {
            pat[o++] = pattern[i];
        }
    }
    pat[o] = 0;
    int err;
    PCRE2_SIZE where;
    t->re = pcre2_compile((PCRE2_SPTR)pat, o, PCRE2_UTF | PCRE2_UCP, &err, &where, NULL);
    free(pat);
    if (!t->re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return bn_fail(e, "tokenizer.pre: the regex does not compile: %s", (char *)msg);
    }
    t->jit = pcre2_jit_compile(t->re, PCRE2_JIT_COMPLETE) == 0;
    t->md = pcre2_match_data_create(1, NULL);
    t->mctx = pcre2_match_context_create(NULL);
    if (!t->md || !t->mctx)
        return bn_fail_code(e, BN_E_NOMEM, "out of memory");
    if (t->jit) {
        /* Long runs (a megabyte of spaces) need more than the default 32 KiB. */
        t->jstack = pcre2_jit_stack_create(64 * 1024, 64 * 1024 * 1024, NULL);
        if (!t->jstack)
            return bn_fail_code(e, BN_E_NOMEM, "out of memory");
        pcre2_jit_stack_assign(t->mctx, NULL, t->jstack);
    }
    return 0;
}

static int match_fail(int rc, bn_err *e)
{
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(rc, msg, sizeof msg);
    return bn_fail(e, "pre-tokenizer regex: %s", (char *)msg);
}

/* Splits a valid UTF-8 stretch. Text the regex does not cover (none, for
 * Llama 3's pattern) becomes a piece of its own, as in HF's Split
 * "Isolated", so no byte is ever dropped. */
static int split_valid(bn_tokenizer *t, const uint8_t *p, size_t n, uint64_t off, bn_tokens *out, bn_err *e)
{
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(t->md);
    size_t gap = 0, from = 0;
    while (from < n) {
        /* A run of white space is matched and then given back one
         * character (\s+(?!\S)): the steps of a match grow with the text
         * it may cover, and PCRE2's fixed default (ten million) failed a
         * run of ten million spaces. The limit grows with what is left:
         * linear patterns never reach it, a tokenizer.json regex that
         * backtracks without end still stops. */
        size_t left = n - from;
        pcre2_set_match_limit(t->mctx, left < (UINT32_MAX - 10000000u) / 64 ? 10000000u + 64 * (uint32_t)left
                                                                            : UINT32_MAX);
        int rc = t->jit ? pcre2_jit_match(t->re, p, n, from, 0, t->md, t->mctx)
                        : pcre2_match(t->re, p, n, from, PCRE2_NO_UTF_CHECK, t->md, t->mctx);
        if (rc == PCRE2_ERROR_NOMATCH)
            break;
        if (rc < 0)
            return match_fail(rc, e);
        size_t ms = ov[0], me = ov[1];
        if (me == ms) { /* an empty match: step over one character */
            from = ms + bn_utf8_char(p + ms, n - ms);
            continue;
        }
        if (ms > gap && bn_tok_bpe_piece(t, p + gap, ms - gap, off + gap, out, e))
            return -1;
        if (bn_tok_bpe_piece(t, p + ms, me - ms, off + ms, out, e))
            return -1;
        gap = from = me;
    }
    if (n > gap && bn_tok_bpe_piece(t, p + gap, n - gap, off + gap, out, e))
        return -1;
    return 0;
}

int bn_tok_encode_plain(bn_tokenizer *t, const uint8_t *p, size_t n, uint64_t off, bn_tokens *out, bn_err *e)
{
    if (t->spm)
        return bn_tok_spm_encode(t, p, n, off, out, e);
    size_t i = 0;
    while (i < n) {
        size_t v = valid_prefix(p + i, n - i);
        if (v && split_valid(t, p + i, v, off + i, out, e))
            return -1;
        i += v;
        if (i < n) {
            size_t k = invalid_run(p + i, n - i);
            if (bn_tok_bpe_piece(t, p + i, k, off + i, out, e))
                return -1;
            i += k;
        }
    }
    return 0;
}

/* -------------------------------------------------- special tokens */

/* The longest control/user token text starting at p whose type is in mask
 * (1: control, 2: user); its id, or -1. */
static int32_t special_at(const bn_tokenizer *t, const uint8_t *p, size_t n, unsigned mask, size_t *len,
                          int *control)
{
    int32_t best = -1;
    uint32_t node = 0;
    for (size_t k = 0; k < n; k++) {
        uint32_t c = t->trie[node].child;
        while (c && t->trie[c].byte != p[k])
            c = t->trie[c].sibling;
        if (!c)
            break;
        node = c;
        const tok_tnode *d = &t->trie[c];
        if (d->id >= 0 && (mask & (d->type == BN_TOKT_CONTROL ? 1u : 2u))) {
            best = d->id;
            *len = k + 1;
            *control = d->type == BN_TOKT_CONTROL;
        }
    }
    return best;
}

/* The first stretch of a text with a space prefix: SentencePiece's
 * normalizer puts U+2581 before the whole (non-empty) text, so its first
 * stretch, even an empty one before a user-defined token, is encoded with a
 * space in front. Offsets: the token holding the prefix starts the text. */
static int encode_prefixed(bn_tokenizer *t, const uint8_t *p, size_t n, uint64_t base, bn_tokens *out, bn_err *e)
{
    uint8_t *buf = malloc(n + 1);
    if (!buf)
        return bn_fail_code(e, BN_E_NOMEM, "out of memory");
    buf[0] = ' ';
    memcpy(buf + 1, p, n);
    size_t first = out->n;
    int rc = bn_tok_spm_encode(t, buf, n + 1, base - 1, out, e); /* buf[i] is the text's byte i - 1 */
    if (!rc && out->offs && out->n > first)
        out->offs[first] = base;
    free(buf);
    return rc;
}

static int encode_stretch(bn_tokenizer *t, const uint8_t *p, size_t n, uint64_t base, int prefixed, bn_tokens *out,
                          bn_err *e)
{
    return prefixed ? encode_prefixed(t, p, n, base, out, e) : bn_tok_encode_plain(t, p, n, base, out, e);
}

int bn_tokenizer_encode(bn_tokenizer *t, const void *text, size_t n, unsigned flags, uint64_t base,
                        bn_tokens *out, bn_err *e)
{
    const uint8_t *p = text;
    if (flags & BN_ENC_BOS) {
        if (t->bos < 0)
            return bn_fail(e, "the tokenizer has no BOS token");
        if (bn_tokens_push(out, (uint32_t)t->bos, BN_TOK_NO_OFFSET))
            return bn_fail_code(e, BN_E_NOMEM, "out of memory");
    }
    /* User-defined tokens are always recognised (HF's added tokens);
     * control tokens only when asked, as tiktoken's allowed_special. */
    unsigned mask = (flags & BN_ENC_SPECIAL ? 1u : 0u) | (t->has_user ? 2u : 0u);
    /* The dummy prefix (space_prefix): SentencePiece puts it before the
     * whole text, so a user-defined token within it takes none after it
     * and one alone ("▁") when the text starts with it. A control token
     * (BN_ENC_SPECIAL) ends a text as BOS or EOS does: the next non-empty
     * stretch starts one and takes the prefix, as Hugging Face's
     * per-piece Prepend and llama.cpp give it (SentencePiece does not read
     * control tokens in text). */
    int pending = t->space_prefix && n > 0;
    size_t start = 0;
    if (mask && t->n_trie > 1) {
        for (size_t i = 0; i < n;) {
            size_t len = 0;
            int control = 0;
            int32_t id = t->first[p[i]] & mask ? special_at(t, p + i, n - i, mask, &len, &control) : -1;
            if (id < 0) {
                i++;
                continue;
            }
            if (encode_stretch(t, p + start, i - start, base + start, pending && (i > start || !control), out, e))
                return -1;
            if (bn_tokens_push(out, (uint32_t)id, base + i))
                return bn_fail_code(e, BN_E_NOMEM, "out of memory");
            i += len;
            start = i;
            pending = control && t->space_prefix;
        }
    }
    if (encode_stretch(t, p + start, n - start, base + start, pending && n > start, out, e))
        return -1;
    if (flags & BN_ENC_EOS) {
        if (t->eos < 0)
            return bn_fail(e, "the tokenizer has no EOS token");
        if (bn_tokens_push(out, (uint32_t)t->eos, BN_TOK_NO_OFFSET))
            return bn_fail_code(e, BN_E_NOMEM, "out of memory");
    }
    return 0;
}
