/* tok_bpe.c — byte-pair merging of one pre-token piece.
 *
 * The rule (tiktoken's, and HF's for merge lists): start from one token
 * per byte; repeatedly merge the adjacent pair with the best (lowest)
 * priority, the leftmost on a tie, until no adjacent pair can merge.
 * In "ranks" mode a pair can merge when the concatenation of its bytes is a
 * token and its priority is that token's id; in "merges" mode the pair
 * table gives priority and result.
 *
 * Short pieces (nearly all of them) use flat arrays and a linear scan for
 * the minimum, which beats any heap at that size; long ones (a run of
 * 10,000 letters) use a linked list and a binary heap so the cost stays
 * O(n log n). */
#include "tok_impl.h"

#include <stdlib.h>
#include <string.h>

#define NONE UINT32_MAX
#define SHORT_PIECE 64

/* Priority and result of merging the part [a, m) with [m, b) whose ids are
 * ida and idb; rank NONE when they do not merge. */
static inline uint32_t pair_rank(bn_tokenizer *t, const uint8_t *p, uint32_t a, uint32_t b, uint32_t ida,
                                 uint32_t idb, uint32_t *merged)
{
    uint64_t key = (uint64_t)ida << 32 | idb;
    size_t h = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 20);
    if (t->ranks) {
        /* the pair's ids fix its bytes, so (ida, idb) is a sound memo key */
        tok_pslot *m = &t->memo[h & (((size_t)1 << TOK_MEMO_BITS) - 1)];
        if (m->key != key) {
            int32_t id = bn_tok_vocab_find(t, p + a, b - a);
            m->key = key;
            m->merged = (uint32_t)id;
            m->rank = id < 0 ? NONE : (uint32_t)id;
        }
        *merged = m->merged;
        return m->rank;
    }
    for (size_t i = h & t->pmask;; i = (i + 1) & t->pmask) {
        const tok_pslot *s = &t->ptab[i];
        if (s->key == key) {
            *merged = s->merged;
            return s->rank;
        }
        if (s->key == UINT64_MAX)
            return NONE;
    }
}

static int scratch(bn_tokenizer *t, size_t n, bn_err *e)
{
    if (n <= t->sc_cap)
        return 0;
    size_t cap = n < 256 ? 256 : n;
    uint32_t *s = realloc(t->sc_u32, cap * 5 * sizeof *s);
    if (!s)
        return bn_fail_code(e, BN_E_NOMEM, "out of memory");
    t->sc_u32 = s;
    t->sc_cap = cap;
    return 0;
}

/* Flat arrays: part i covers [st[i], st[i+1]) and is token id[i]; rk[i] and
 * mg[i] describe the pair (i, i+1). */
static int bpe_short(bn_tokenizer *t, const uint8_t *p, uint32_t n, uint64_t off, bn_tokens *out, bn_err *e)
{
    uint32_t st[SHORT_PIECE + 1], id[SHORT_PIECE], rk[SHORT_PIECE], mg[SHORT_PIECE];
    uint32_t m = n;
    for (uint32_t i = 0; i < n; i++) {
        st[i] = i;
        id[i] = t->byte_id[p[i]];
    }
    st[n] = n;
    for (uint32_t i = 0; i + 1 < m; i++)
        rk[i] = pair_rank(t, p, st[i], st[i + 2], id[i], id[i + 1], &mg[i]);
    while (m > 1) {
        uint32_t best = NONE, bi = 0;
        for (uint32_t i = 0; i + 1 < m; i++)
            if (rk[i] < best) {
                best = rk[i];
                bi = i;
            }
        if (best == NONE)
            break;
        id[bi] = mg[bi];
        /* drop part bi+1 */
        memmove(&st[bi + 1], &st[bi + 2], (m - bi - 1) * sizeof *st);
        memmove(&id[bi + 1], &id[bi + 2], (m - bi - 2) * sizeof *id);
        memmove(&rk[bi + 1], &rk[bi + 2], (m > bi + 3 ? m - bi - 3 : 0) * sizeof *rk);
        memmove(&mg[bi + 1], &mg[bi + 2], (m > bi + 3 ? m - bi - 3 : 0) * sizeof *mg);
        m--;
        if (bi + 1 < m)
            rk[bi] = pair_rank(t, p, st[bi], st[bi + 2], id[bi], id[bi + 1], &mg[bi]);
        if (bi > 0)
            rk[bi - 1] = pair_rank(t, p, st[bi - 1], st[bi + 1], id[bi - 1], id[bi], &mg[bi - 1]);
    }
    for (uint32_t i = 0; i < m; i++)
        if (bn_tokens_push(out, id[i], off + st[i]))
            return bn_fail_code(e, BN_E_NOMEM, "out of memory");
    return 0;
}

static inline int hless(const tok_hent *a, const tok_hent *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static int heap_push(bn_tokenizer *t, size_t *hn, tok_hent v, bn_err *e)
{
    if (*hn == t->heap_cap) {
        size_t cap = t->heap_cap ? t->heap_cap * 2 : 1024;
        tok_hent *h = realloc(t->heap, cap * sizeof *h);
        if (!h)
            return bn_fail_code(e, BN_E_NOMEM, "out of memory");
        t->heap = h;
        t->heap_cap = cap;
    }
    tok_hent *h = t->heap;
    size_t i = (*hn)++;
    while (i && hless(&v, &h[(i - 1) / 2])) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = v;
    return 0;
}

static tok_hent heap_pop(bn_tokenizer *t, size_t *hn)
{
    tok_hent *h = t->heap, top = h[0], last = h[--*hn];
    size_t i = 0, n = *hn;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && hless(&h[c + 1], &h[c]))
            c++;
        if (!hless(&h[c], &last))
            break;
        h[i] = h[c];
        i = c;
    }
    if (n)
        h[i] = last;
    return top;
}

/* Pushes the pair starting at part a, if it has a right neighbour and merges. */
static int push_pair(bn_tokenizer *t, const uint8_t *p, const uint32_t *nxt, const uint32_t *id, uint32_t n,
                     uint32_t a, size_t *hn, bn_err *e)
{
    uint32_t b = nxt[a];
    if (b >= n)
        return 0;
    uint32_t merged, r = pair_rank(t, p, a, nxt[b], id[a], id[b], &merged);
    if (r == NONE)
        return 0;
    return heap_push(t, hn, (tok_hent){.rank = r, .pos = a, .right = b, .rend = nxt[b], .merged = merged}, e);
}

/* Merges the linked parts of [0, n) (in t's scratch: nxt/prv link live
 * parts indexed by their first byte, id is the part's token, alive marks
 * part starts) and appends their ids. */
static int bpe_merge_parts(bn_tokenizer *t, const uint8_t *p, uint32_t n, uint64_t off, bn_tokens *out, bn_err *e)
{
    uint32_t *nxt = t->sc_u32, *prv = nxt + t->sc_cap, *id = prv + t->sc_cap, *alive = id + t->sc_cap;
    nxt[n] = n; /* sentinel: the end */
    size_t hn = 0;
    for (uint32_t i = 0; i < n; i = nxt[i])
        if (push_pair(t, p, nxt, id, n, i, &hn, e))
            return -1;
    while (hn) {
        tok_hent h = heap_pop(t, &hn);
        if (!alive[h.pos] || nxt[h.pos] != h.right || nxt[h.right] != h.rend)
            continue; /* stale: a neighbour changed since it was pushed */
        id[h.pos] = h.merged;
        alive[h.right] = 0;
        nxt[h.pos] = h.rend;
        if (h.rend < n)
            prv[h.rend] = h.pos;
        if (push_pair(t, p, nxt, id, n, h.pos, &hn, e))
            return -1;
        if (prv[h.pos] != NONE && push_pair(t, p, nxt, id, n, prv[h.pos], &hn, e))
            return -1;
    }
    for (uint32_t i = 0; i < n; i = nxt[i])
        if (bn_tokens_push(out, id[i], off + i))
            return bn_fail_code(e, BN_E_NOMEM, "out of memory");
    return 0;
}

/* One part a byte. */
static int bpe_long(bn_tokenizer *t, const uint8_t *p, uint32_t n, uint64_t off, bn_tokens *out, bn_err *e)
{
    if (scratch(t, (size_t)n + 1, e))
        return -1;
    uint32_t *nxt = t->sc_u32, *prv = nxt + t->sc_cap, *id = prv + t->sc_cap, *alive = id + t->sc_cap;
    for (uint32_t i = 0; i < n; i++) {
        nxt[i] = i + 1;
        prv[i] = i ? i - 1 : NONE;
        id[i] = t->byte_id[p[i]];
        alive[i] = 1;
    }
    return bpe_merge_parts(t, p, n, off, out, e);
}

/* SentencePiece-style BPE (HF's BPE model with byte_fallback, after the
 * normalizer that turns spaces into U+2581, whose tokens bn stores with
 * the space back): one part a character, its token the character's (U+2581
 * and the space both the space's); a character that is no token becomes
 * one part a byte, the byte tokens <0xNN>, or, without those, the unknown
 * token (consecutive ones fused, as HF's fuse_unk). Then the merges, by
 * priority, as for byte-level pieces. */
int bn_tok_spm_encode(bn_tokenizer *t, const uint8_t *p, size_t n, uint64_t off, bn_tokens *out, bn_err *e)
{
    if (!n)
        return 0;
    if (n >= UINT32_MAX)
        return bn_fail(e, "a piece of %zu bytes is too long to encode", n);
    if (scratch(t, n + 1, e))
        return -1;
    uint32_t *nxt = t->sc_u32, *prv = nxt + t->sc_cap, *id = prv + t->sc_cap, *alive = id + t->sc_cap;
    static const uint8_t space = ' ';
    int32_t space_id = bn_tok_vocab_find(t, &space, 1);
    uint32_t last = NONE; /* the previous part's start */
    for (uint32_t i = 0; i < n;) {
        size_t len = bn_utf8_char(p + i, n - i);
        int is_space = p[i] == ' ' || (len == 3 && p[i] == 0xE2 && p[i + 1] == 0x96 && p[i + 2] == 0x81);
        if (is_space && space_id < 0) /* (every SentencePiece vocabulary has one) */
            return bn_fail(e, "byte %zu: a space, and the vocabulary has no token for U+2581", (size_t)off + i);
        int32_t tid = is_space ? space_id : len ? bn_tok_vocab_find(t, p + i, len) : -1;
        size_t k = len ? len : 1, bytes = 0;
        if (tid < 0)
            while (bytes < k && t->byte_id[p[i + bytes]] != NONE)
                bytes++;
        if (tid < 0 && bytes < k && t->unk < 0)
            return bn_fail(e, "byte %zu: a character that is neither a token nor has byte tokens, and no unknown "
                              "token", (size_t)off + i);
        /* the parts: the character whole, each of its bytes, or one unk */
        size_t parts = tid >= 0 || bytes < k ? 1 : k;
        for (size_t q = 0; q < parts; q++) {
            uint32_t at = i + (uint32_t)q, v = tid >= 0 ? (uint32_t)tid : bytes < k ? (uint32_t)t->unk
                                                                                     : t->byte_id[p[at]];
            if (v == (uint32_t)t->unk && tid < 0 && bytes < k && last != NONE && id[last] == v) {
                nxt[last] = i + (uint32_t)k; /* fused into the unk before */
                continue;
            }
            id[at] = v;
            alive[at] = 1;
            prv[at] = last;
            if (last != NONE)
                nxt[last] = at;
            nxt[at] = parts == 1 ? i + (uint32_t)k : at + 1;
            last = at;
        }
        i += (uint32_t)k;
    }
    nxt[last] = (uint32_t)n;
    return bpe_merge_parts(t, p, (uint32_t)n, off, out, e);
}

int bn_tok_bpe_piece(bn_tokenizer *t, const uint8_t *p, size_t n, uint64_t off, bn_tokens *out, bn_err *e)
{
    if (n == 1)
        return bn_tokens_push(out, t->byte_id[p[0]], off) ? bn_fail_code(e, BN_E_NOMEM, "out of memory") : 0;
    if (t->ignore_merges) {
        int32_t id = bn_tok_vocab_find(t, p, n);
        if (id >= 0)
            return bn_tokens_push(out, (uint32_t)id, off) ? bn_fail_code(e, BN_E_NOMEM, "out of memory") : 0;
    }
    if (n >= UINT32_MAX)
        return bn_fail(e, "a piece of %zu bytes is too long to encode", n);
    if (n <= SHORT_PIECE)
        return bpe_short(t, p, (uint32_t)n, off, out, e);
    return bpe_long(t, p, (uint32_t)n, off, out, e);
}
