/* tok_impl.h — the inside of a bn_tokenizer, shared by lib/tokenizer.c
 * (construction), tok_bpe.c (merging), tok_pre.c (splitting and the encode
 * driver), tok_decode.c and tok_chat.c. Not installed. */
#ifndef BN_TOK_IMPL_H
#define BN_TOK_IMPL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "tokenizer.h"

#include <string.h>
#include <xxhash.h>

/* Open-addressing table from token bytes to the id of a mergeable (normal
 * or byte) token. Lookups are most of the encoding time, so a slot carries
 * enough to settle most probes without touching the token bytes: the first
 * 8 bytes (zero-padded), the length and 16 bits of the hash. Tokens of up
 * to 8 bytes never need the blob. id1 is id + 1; 0 marks an empty slot. */
typedef struct tok_vslot {
    uint64_t head;
    uint32_t id1;
    uint32_t meta; /* length << 16 | hash tag */
} tok_vslot;

/* Merge table (merges mode): the pair (left id, right id) -> its priority
 * and the id it merges into. key is UINT64_MAX in empty slots. */
typedef struct tok_pslot {
    uint64_t key;
    uint32_t rank, merged;
} tok_pslot;

/* A byte trie over the texts of control and user-defined tokens, for
 * cutting them out of the input before the regex runs. Children of a node
 * are a sibling list; id is -1 where no token ends. */
typedef struct tok_tnode {
    uint32_t child, sibling; /* 0: none (node 0 is the root) */
    int32_t id;
    uint8_t byte, type;
} tok_tnode;

#define TOK_MEMO_BITS 14

/* Heap entry for long pieces: the pair starting at byte pos, as it was
 * when pushed (right part's start, and its end), so stale entries can be
 * recognised when they surface. */
typedef struct tok_hent {
    uint32_t rank, pos, right, rend, merged;
} tok_hent;

struct bn_tokenizer {
    uint32_t n_vocab;
    uint8_t *blob;   /* token bytes, back to back */
    uint64_t *off;   /* n_vocab + 1 offsets into blob */
    uint8_t *type;   /* n_vocab token types */
    size_t max_len;  /* longest token */

    tok_vslot *vtab; /* mergeable tokens by bytes */
    size_t vmask;
    int spm;           /* tokenizer.model "spm-bpe" (tok_bpe.c): SentencePiece-style BPE
                          over characters, byte fallback, no regex */
    int32_t unk;       /* spm: the token of a character without byte tokens, or -1 */
    int space_prefix;  /* spm: a space before every non-empty text (SentencePiece's
                          add_dummy_prefix, Llama 2's), dropped again when decoding */
    int ranks;         /* merge_mode "ranks": pair priority = id of the concatenation */
    int ignore_merges; /* a whole piece that is a token is emitted as is */
    tok_pslot *ptab;   /* merges mode only */
    size_t pmask;
    uint32_t byte_id[256];

    tok_tnode *trie;
    size_t n_trie;
    uint8_t first[256]; /* bit 1: some control token starts with this byte; bit 2: a user one */
    int has_user;

    pcre2_code *re;
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jstack;
    int jit;

    int32_t bos, eos, eot;
    int add_bos;
    char chat_format[16];
    int chat_whole; /* BN_CHAT_WHOLE: a message's header and content encoded as one text */
    char chat_date[32]; /* "llama3.1"/"llama3.2"'s Today Date; "": the format's own */
    char chat_fixed_date[32]; /* the template's fixed date_string ("26 Jul 2024" if none found) */
    int chat_keep_system;     /* llama3.1/3.2: the template does not strip the first system message */
    int chat_keep_messages;   /* nor the other messages */
    uint64_t hash;

    /* ranks mode: a direct-mapped memo of recent pair lookups (id, id) ->
     * (rank, merged); the same byte pairs recur across pieces, and a hit
     * costs one cache line instead of a hash and a probe of a large table */
    tok_pslot *memo;

    /* scratch, reused across calls (so one tokenizer per encoding thread) */
    uint32_t *sc_u32;
    size_t sc_cap;
    tok_hent *heap;
    size_t heap_cap;
};

/* tokenizer.c */
int32_t bn_tok_vocab_find(const bn_tokenizer *t, const uint8_t *p, size_t n);
/* tok_bpe.c: appends the ids of one pre-token piece. */
int bn_tok_bpe_piece(bn_tokenizer *t, const uint8_t *p, size_t n, uint64_t off, bn_tokens *out, bn_err *e);
/* tok_bpe.c, spm mode: the ids of a stretch of text between
 * user-defined and control tokens (tokenizer.h, formats/bn-model.md). */
int bn_tok_spm_encode(bn_tokenizer *t, const uint8_t *p, size_t n, uint64_t off, bn_tokens *out, bn_err *e);
/* tok_pre.c */
int bn_tok_pre_compile(bn_tokenizer *t, const char *pattern, bn_err *e);
/* Encodes text that holds no special token (regex split + BPE). */
int bn_tok_encode_plain(bn_tokenizer *t, const uint8_t *p, size_t n, uint64_t off, bn_tokens *out, bn_err *e);

/* ---------------------------------------- vocabulary map: slot hashing */

/* The first 8 bytes, zero-padded. */
static inline uint64_t head8(const uint8_t *p, size_t n)
{
    uint64_t w = 0;
    memcpy(&w, p, n < 8 ? n : 8);
    return w;
}

/* Short keys (nearly all lookups) get an inline multiply-xorshift mix of
 * their head; longer ones XXH3. */
static inline uint64_t hash_key(const uint8_t *p, size_t n, uint64_t head)
{
    if (n > 8)
        return XXH3_64bits(p, n);
    uint64_t h = (head ^ (uint64_t)n << 59) * 0x9E3779B97F4A7C15ull;
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    return h ^ (h >> 32);
}

static inline uint32_t slot_meta(size_t n, uint64_t h)
{
    return (uint32_t)(n > 0xFFFF ? 0xFFFF : n) << 16 | (uint32_t)(h >> 48);
}

#endif
