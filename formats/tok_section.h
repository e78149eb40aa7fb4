/* tok_section.h — the `tokenizer` metadata section (bn-model.md §3.2):
 * its token types and pre-tokenizer regexes, the loaders that make it from
 * foreign tokenizer files (tiktoken.c, hf_tokenizer.c, gguf_vocab.c), and
 * the builder they share, which takes tokens in any id order. */
#ifndef BN_TOK_SECTION_H
#define BN_TOK_SECTION_H

#include "formats.h"

/* Token types (tokenizer.token_type; the numbers are GGUF's). */
enum {
    BN_TOKT_NORMAL = 1,
    BN_TOKT_UNKNOWN = 2,
    BN_TOKT_CONTROL = 3, /* special: BOS, EOS, <|eot_id|>, reserved */
    BN_TOKT_USER = 4,    /* user-defined: always recognised in input text */
    BN_TOKT_UNUSED = 5,  /* a hole in the id space; never produced */
    BN_TOKT_BYTE = 6
};

/* The Llama 3 pre-tokenizer regex (formats.md §7.2) and GPT-2's. */
extern const char bn_tok_llama3_regex[];
extern const char bn_tok_gpt2_regex[];
extern const char bn_tok_qwen2_regex[];


typedef struct tok_entry {
    uint32_t id, len;
    uint64_t at; /* in blob */
    uint8_t type;
} tok_entry;

typedef struct tok_builder {
    tok_entry *v;
    size_t n, cap;
    uint8_t *blob;
    size_t bytes, bcap;
    uint32_t *merges; /* pairs, flattened */
    size_t n_merges, mcap;
    uint32_t *index;  /* lazily built: normal tokens by bytes (entry + 1) */
    size_t imask;
} tok_builder;

/* Ids may leave holes (they become UNUSED tokens), but a vocabulary of n
 * tokens keeps its ids below this bound, so memory stays proportional to
 * the file that declared them: a hostile id of two billion is an error,
 * not a 20 GB table. Real vocabularies are dense (max id < n). */
static inline uint64_t tok_id_limit(uint64_t n_tokens)
{
    return 2 * n_tokens + 1024;
}

int bn_tok_builder_add(tok_builder *b, uint32_t id, const void *bytes, size_t len, uint8_t type, bn_err *e);
/* The id of the first-added NORMAL token with these bytes, or -1. Tokens
 * added after the first call are not seen. */
int64_t bn_tok_builder_find(tok_builder *b, const void *bytes, size_t len);
int bn_tok_builder_merge(tok_builder *b, uint32_t left, uint32_t right, bn_err *e);
/* Writes the section: ids 0..max in order (holes become empty UNUSED
 * tokens), model "bpe", the regex, the merge mode (merges only with
 * "merges"), ignore_merges. An id given twice is an error naming it. */
int bn_tok_builder_finish(tok_builder *b, const char *pre, const char *merge_mode, int ignore_merges,
                       bn_meta *section, const char *name, bn_err *e);
void bn_tok_builder_free(tok_builder *b);
/* ------------------------------------------------------------- loaders */

/* A Hugging Face tokenizer.json, parsed (root; path names it in errors):
 * byte-level BPE, or the SentencePiece kind (BPE with byte_fallback,
 * hf_spm.c: model "spm-bpe"). */
struct cJSON;
int bn_tokenizer_section_from_hf(const struct cJSON *root, const char *path, bn_meta *section, bn_err *e);
int bn_tokenizer_section_from_hf_spm(const struct cJSON *root, bn_meta *section, const char *path, bn_err *e);
/* A tiktoken rank file; the 256 Llama 3 special tokens follow the ranks. */
int bn_tokenizer_section_from_tiktoken(const char *rank_file, bn_meta *section, bn_err *e);
/* GGUF tokenizer.ggml.tokens / merges / token_type arrays (GPT-2
 * byte-to-unicode form); pre is tokenizer.ggml.pre or NULL (Llama 3). */
/* Whether a GGUF's tokenizer.ggml.pre (NULL: none) names Llama 3's
 * pre-tokenizer group: its pattern, whole-piece tokens first, and by
 * llama.cpp's default a BOS. */
int bn_gguf_pre_is_llama3(const char *pre);
int bn_tokenizer_section_from_gguf(const bn_kv *tokens, const bn_kv *merges, const bn_kv *token_type,
                                   const char *pre, bn_meta *section, bn_err *e);
/* A GGUF SentencePiece vocabulary (tokenizer.ggml.model "llama": pieces,
 * scores, token types; gguf_spm.c) as model "spm-bpe", its merges made
 * from the scores; space_prefix: tokenizer.ggml.add_space_prefix. */
int bn_tokenizer_section_from_gguf_spm(const bn_kv *tokens, const bn_kv *scores, const bn_kv *token_type,
                                       int space_prefix, bn_meta *section, bn_err *e);
/* An HF checkpoint: path is its directory or its tokenizer.json. Puts the
 * section into model_meta as `tokenizer`, with tokens.bos_id / eos_id /
 * add_bos and chat.format from the sibling config.json, tokenizer.json's
 * post-processor and tokenizer_config.json's chat template (missing
 * files leave defaults: no BOS, chat.format none). */
int bn_tokenizer_meta_from_hf(const char *path, bn_meta *model_meta, bn_err *e);
/* Model-level keys for a bare tiktoken rank file with the Llama 3
 * specials: bos 128000-style <|begin_of_text|>, eos <|end_of_text|>, stop
 * ids {eos, <|eot_id|>}, add_bos false (tiktoken adds none), chat.format
 * bitnet. The `tokenizer` section must already be in model_meta. */
int bn_tokenizer_meta_llama3_defaults(bn_meta *model_meta, int add_bos, bn_err *e);

/* GPT-2's byte-to-unicode bijection: the code point that stands for byte b,
 * and the byte for a code point (-1 if it stands for none). */
uint32_t bn_gpt2_byte_to_cp(uint8_t b);
int bn_gpt2_cp_to_byte(uint32_t cp);
/* Decodes a UTF-8 string in that form to raw bytes (out has room for len
 * bytes); -1 if a character is not in the map or the UTF-8 is invalid. */
long bn_gpt2_decode(const char *s, size_t len, uint8_t *out);

/* SentencePiece's pieces as bytes: s with every U+2581 a space, into out
 * (room for n bytes); the length written (hf_spm.c, shared by gguf_spm.c). */
size_t bn_spm_unspace(const char *s, size_t n, uint8_t *out);
/* A SentencePiece byte piece "<0xNN>" (n bytes, upper-case hex): the byte,
 * else -1. */
int bn_spm_byte_piece(const char *s, size_t n);
/* The keys that make a built section a SentencePiece-style vocabulary:
 * tokenizer.model "spm-bpe", tokenizer.space_prefix when space_prefix, and
 * tokenizer.unk_id when unk >= 0. 0, or -1 out of memory. */
int bn_spm_section_keys(bn_meta *section, int space_prefix, int64_t unk);

#endif
