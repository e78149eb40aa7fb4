/* tokenizer.h — byte-level BPE tokenizers (Llama 3 and kin): building one from
 * a model's metadata, encoding bytes to ids, streaming ids back to bytes,
 * chat rendering, and the loaders that turn foreign tokenizer files into the
 * `tokenizer` metadata section of formats/bn-model.md §3.2.
 *
 * Encoding is exact: for any input bytes the ids equal tiktoken's (and
 * Hugging Face tokenizers' / llama.cpp's llama-bpe for the same vocabulary).
 * Bytes that are not valid UTF-8 cannot reach the regex; each maximal run of
 * them is cut out of the text and byte-pair encoded as one piece of its own,
 * so every input round-trips byte for byte.
 *
 * A bn_tokenizer is immutable after bn_tokenizer_new except for its scratch
 * space: use one per thread for encoding. Decoding objects are separate and
 * only read the tokenizer. */
#ifndef BN_TOKENIZER_H
#define BN_TOKENIZER_H

#include "tok_section.h" /* token types, the pre-tokenizer regexes */

typedef struct bn_tokenizer bn_tokenizer;

/* Builds a tokenizer from model metadata: the `tokenizer` section plus
 * tokens.bos_id, tokens.eos_id, tokens.add_bos, tokens.stop_ids and
 * chat.format when present. Errors name the key at fault. */
bn_tokenizer *bn_tokenizer_new(const bn_meta *model_meta, bn_err *e);
void bn_tokenizer_free(bn_tokenizer *t);

uint32_t bn_tokenizer_n_vocab(const bn_tokenizer *t);
int32_t bn_tokenizer_bos(const bn_tokenizer *t); /* -1 if none */
int32_t bn_tokenizer_eos(const bn_tokenizer *t); /* -1 if none */
int bn_tokenizer_add_bos(const bn_tokenizer *t);
const char *bn_tokenizer_chat_format(const bn_tokenizer *t); /* bn.h's names */
/* The bytes of a token (NULL if id is out of range), and its type. */
const uint8_t *bn_tokenizer_piece(const bn_tokenizer *t, uint32_t id, size_t *len);
int bn_tokenizer_type(const bn_tokenizer *t, uint32_t id);
/* The id of the normal or special token whose bytes are exactly these, or -1. */
int32_t bn_tokenizer_find(const bn_tokenizer *t, const void *bytes, size_t len);
/* XXH3-64 of everything that decides encoding and decoding (vocabulary,
 * types, merges, regex); names the tokenizer in binary token streams. */
uint64_t bn_tokenizer_hash(const bn_tokenizer *t);

/* ---------------------------------------------------------------- encode */

/* A growable id list; offs (when want_offsets is set before the first
 * append) holds each token's byte offset in the input, or BN_TOK_NO_OFFSET
 * for tokens that are not in it (BOS, chat headers). */
#define BN_TOK_NO_OFFSET UINT64_MAX
typedef struct bn_tokens {
    uint32_t *ids;
    uint64_t *offs;
    size_t n, cap;
    int want_offsets;
} bn_tokens;

int bn_tokens_push(bn_tokens *v, uint32_t id, uint64_t off);
void bn_tokens_clear(bn_tokens *v); /* n = 0, keeps memory */
void bn_tokens_free(bn_tokens *v);

enum {
    BN_ENC_SPECIAL = 1, /* recognise control-token text (e.g. <|eot_id|>) in the input */
    BN_ENC_BOS = 2,     /* prepend the BOS id */
    BN_ENC_EOS = 4      /* append the EOS id */
};

/* Appends the ids of text[0..n) to out. base is added to the offsets. */
int bn_tokenizer_encode(bn_tokenizer *t, const void *text, size_t n, unsigned flags, uint64_t base,
                        bn_tokens *out, bn_err *e);

/* ------------------------------------------------------------------ chat */

typedef enum { BN_ROLE_SYSTEM, BN_ROLE_USER, BN_ROLE_ASSISTANT } bn_role;

typedef struct bn_chat_msg {
    bn_role role;
    const uint8_t *text; /* not NUL-terminated */
    size_t len;
    uint64_t off;        /* where text starts in the input, for offsets */
} bn_chat_msg;

/* Parses the documented chat input: lines `system: …`, `user: …`,
 * `assistant: …` (role names in any case); a line without a role tag
 * continues the previous message. The messages point into text. */
int bn_chat_parse(const uint8_t *text, size_t n, bn_chat_msg **msgs, size_t *n_msgs, bn_err *e);
/* Nonzero when bn_tokenizer_chat renders this chat.format (bn.h's names). */
int bn_tokenizer_chat_renders(const char *format);
/* Renders a conversation with the tokenizer's chat.format, token-exact:
 * `bitnet`: [BOS] + enc("System: ") + enc(strip(S)) + [eot] + … +
 * enc("Assistant: "); `llama3`: the header-id form (`llama3.1`/`llama3.2`
 * opened by their dated system message); `falcon3`: its template's. The
 * generation prompt (the assistant header) is appended when gen_prompt is
 * set. */
int bn_tokenizer_chat(bn_tokenizer *t, const bn_chat_msg *msgs, size_t n, int gen_prompt,
                      bn_tokens *out, bn_err *e);

/* ---------------------------------------------------------------- decode */

enum {
    BN_DEC_SKIP_SPECIAL = 1, /* control tokens produce no text */
    BN_DEC_TEXT_START = 2    /* each sequence is a whole text: with a space prefix
                                (tokenizer.space_prefix), the first text token's
                                leading space is the prefix and is dropped */
};

/* A streaming decoder: ids in, bytes out, never splitting a UTF-8 character
 * (at most 3 bytes are held back, only while they can still become one);
 * bytes that can never be valid UTF-8 are passed through unchanged, so
 * decoding is the exact inverse of encoding. */
typedef struct bn_detok {
    const bn_tokenizer *t;
    unsigned flags;
    uint8_t *buf;   /* the last output, then the held-back bytes */
    size_t held;    /* bytes held back (0..3) */
    size_t tail_at; /* where they are in buf */
    size_t cap;
    int at_start;   /* BN_DEC_TEXT_START: no text token seen yet in this sequence */
} bn_detok;

int bn_detok_init(bn_detok *d, const bn_tokenizer *t, unsigned flags, bn_err *e);
/* Adds one id; out and len receive the bytes now complete (valid until the
 * next call). An id out of range is an error naming it. */
int bn_detok_feed(bn_detok *d, uint32_t id, const uint8_t **out, size_t *len, bn_err *e);
/* Ends a sequence: returns whatever is held back. */
void bn_detok_flush(bn_detok *d, const uint8_t **out, size_t *len);
/* Frees what init allocated; the struct itself is the caller's (a handle
 * from bn_detok_new is freed with bn_detok_free instead). */
void bn_detok_release(bn_detok *d);

/* ------------------------------------------------------ the program */

/* Where a tokenizer comes from: exactly one of these is set. model is a bn
 * model file, a GGUF file or an HF checkpoint directory. */
typedef struct bn_tokenizer_src {
    const char *model, *vocab, *tokenizer_json;
} bn_tokenizer_src;

bn_tokenizer *bn_tokenizer_load(const bn_tokenizer_src *src, bn_err *e);

/* bn-tokenize(1), options as its manual describes them. */
typedef struct bn_tokenize_opts {
    bn_tokenizer_src src;
    const char *const *inputs; /* files, "-" for stdin; none: stdin */
    size_t n_inputs;
    const char *output;        /* NULL or "-": stdout */
    int decode, lines, special, chat, no_gen_prompt, count, json, binary, skip_special, escape, info;
    int chat_whole;            /* --chat-encoding whole (BN_CHAT_WHOLE) */
    const char *chat_date;     /* --chat-date, or NULL */
    int bos, eos;              /* -1: as the model says; 0: no; 1: yes */
    bn_temp_hook temps;        /* told of a named temporary output (core.h) */
} bn_tokenize_opts;

int bn_tokenize_run(const bn_tokenize_opts *o, bn_err *e);

#endif
