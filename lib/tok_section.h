/* tok_section.h — assembling a `tokenizer` metadata section (bn-model.md
 * §3.2) from tokens given in any id order; shared by the loaders in
 * formats/ (tiktoken.c, hf_tokenizer.c, gguf_vocab.c). Not installed. */
#ifndef BN_TOK_SECTION_H
#define BN_TOK_SECTION_H

#include "tokenizer.h"

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

int tok_builder_add(tok_builder *b, uint32_t id, const void *bytes, size_t len, uint8_t type, bn_err *e);
/* The id of the first-added NORMAL token with these bytes, or -1. Tokens
 * added after the first call are not seen. */
int64_t tok_builder_find(tok_builder *b, const void *bytes, size_t len);
int tok_builder_merge(tok_builder *b, uint32_t left, uint32_t right, bn_err *e);
/* Writes the section: ids 0..max in order (holes become empty UNUSED
 * tokens), model "bpe", the regex, the merge mode (merges only with
 * "merges"), ignore_merges. An id given twice is an error naming it. */
int tok_builder_finish(tok_builder *b, const char *pre, const char *merge_mode, int ignore_merges,
                       bn_meta *section, const char *name, bn_err *e);
void tok_builder_free(tok_builder *b);

#endif
