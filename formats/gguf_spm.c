/* gguf_spm.c — a GGUF vocabulary of SentencePiece's kind
 * (tokenizer.ggml.model "llama": pieces, scores, token types, no merges;
 * BitNet-embedding-270M's, formats/embedding.md) as a `tokenizer` section
 * of model "spm-bpe", the same section hf_spm.c makes from the Hugging Face
 * tokenizer.json of that vocabulary.
 *
 * Pieces are stored as the bytes they decode to (U+2581 a space, <0xNN>
 * the byte NN). The merges are made from the scores the way Hugging Face's
 * SentencePiece extractor makes them (tests/ref/spm_ref.py extract_merges):
 * every split of a normal piece into two normal pieces is a merge, ranked
 * by the merged piece's score (best first), then by the ids of the merged
 * piece and its two sides. User-defined pieces holding U+2581 (Gemma's runs
 * of spaces) stay normal tokens, as hf_spm.c keeps them. */
#include "tok_section.h"

#include <stdlib.h>
#include <string.h>

static const char SP_SPACE[] = "\xe2\x96\x81"; /* U+2581 */

static uint32_t type_at(const bn_kv *tt, uint64_t i)
{
    if (tt->type == BN_V_BYTES)
        return ((const uint8_t *)tt->data)[i];
    if (tt->elem_type == BN_V_U64 || tt->elem_type == BN_V_I64)
        return (uint32_t)((const uint64_t *)tt->data)[i];
    return ((const uint32_t *)tt->data)[i];
}

typedef struct merge {
    float score;
    uint32_t id, left, right;
} merge;

static int merge_cmp(const void *pa, const void *pb)
{
    const merge *a = pa, *b = pb;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    if (a->id != b->id)
        return a->id < b->id ? -1 : 1;
    if (a->left != b->left)
        return a->left < b->left ? -1 : 1;
    return a->right < b->right ? -1 : a->right > b->right;
}

static int add_pieces(tok_builder *b, const bn_kv *tokens, const bn_kv *tt, uint8_t *normal, uint8_t *buf,
                      int64_t *unk, bn_err *e)
{
    for (uint64_t i = 0; i < tokens->count; i++) {
        const char *s = (const char *)tokens->data + tokens->offsets[i];
        size_t n = tokens->offsets[i + 1] - tokens->offsets[i];
        uint32_t ty = type_at(tt, i);
        int hb = ty == BN_TOKT_BYTE ? bn_spm_byte_piece(s, n) : -1;
        int rc;
        if (ty < BN_TOKT_NORMAL || ty > BN_TOKT_BYTE || (ty == BN_TOKT_BYTE && hb < 0))
            return bn_fail(e, "tokenizer.ggml.token_type: token %llu '%.*s' has type %u", (unsigned long long)i,
                           (int)(n > 40 ? 40 : n), s, ty);
        if (ty == BN_TOKT_UNKNOWN)
            *unk = (int64_t)i;
        if (ty == BN_TOKT_BYTE) {
            uint8_t c = (uint8_t)hb;
            rc = bn_tok_builder_add(b, (uint32_t)i, &c, 1, BN_TOKT_BYTE, e);
        } else if (ty == BN_TOKT_NORMAL || (ty == BN_TOKT_USER && memmem(s, n, SP_SPACE, 3))) {
            normal[i] = ty == BN_TOKT_NORMAL; /* extract_merges leaves user pieces out */
            rc = bn_tok_builder_add(b, (uint32_t)i, buf, bn_spm_unspace(s, n, buf), BN_TOKT_NORMAL, e);
        } else /* control, unknown, user-defined, unused: their text as is */
            rc = bn_tok_builder_add(b, (uint32_t)i, s, n,
                                 (uint8_t)(ty == BN_TOKT_UNKNOWN ? BN_TOKT_CONTROL : ty), e);
        if (rc)
            return -1;
    }
    return 0;
}

/* The id of the normal piece with these (U+2581-form) bytes, or -1. */
static int64_t find_normal(tok_builder *b, const uint8_t *normal, const char *s, size_t n, uint8_t *buf)
{
    int64_t id = bn_tok_builder_find(b, buf, bn_spm_unspace(s, n, buf));
    return id >= 0 && normal[id] ? id : -1;
}

static int make_merges(tok_builder *b, const bn_kv *tokens, const float *scores, const uint8_t *normal,
                       uint8_t *buf, bn_err *e)
{
    size_t cap = 0, nm = 0;
    merge *m = NULL;
    int rc = -1;
    for (uint64_t i = 0; i < tokens->count; i++) {
        if (!normal[i])
            continue;
        const char *s = (const char *)tokens->data + tokens->offsets[i];
        size_t n = tokens->offsets[i + 1] - tokens->offsets[i];
        for (size_t k = 1; k < n; k++) {
            if (((uint8_t)s[k] & 0xC0) == 0x80)
                continue; /* split between characters only, as Python slices */
            int64_t l = find_normal(b, normal, s, k, buf), r = l >= 0 ? find_normal(b, normal, s + k, n - k, buf) : -1;
            if (r < 0)
                continue;
            if (nm == cap) {
                cap = cap ? 2 * cap : 1024;
                merge *nmv = realloc(m, cap * sizeof *m);
                if (!nmv) {
                    bn_fail_code(e, BN_E_NOMEM, "out of memory");
                    goto out;
                }
                m = nmv;
            }
            m[nm++] = (merge){scores[i], (uint32_t)i, (uint32_t)l, (uint32_t)r};
        }
    }
    qsort(m, nm, sizeof *m, merge_cmp);
    for (size_t i = 0; i < nm; i++)
        if (bn_tok_builder_merge(b, m[i].left, m[i].right, e))
            goto out;
    rc = 0;
out:
    free(m);
    return rc;
}

int bn_tokenizer_section_from_gguf_spm(const bn_kv *tokens, const bn_kv *scores, const bn_kv *token_type,
                                       int space_prefix, bn_meta *section, bn_err *e)
{
    if (!tokens || tokens->type != BN_V_STRARR || !tokens->count)
        return bn_fail(e, "tokenizer.ggml.tokens: missing or not a string array");
    if (!scores || scores->type != BN_V_ARR || scores->elem_type != BN_V_F32 || scores->count != tokens->count)
        return bn_fail(e, "tokenizer.ggml.scores: missing or not one f32 per token (a SentencePiece vocabulary "
                          "needs its scores)");
    if (!token_type || token_type->count != tokens->count ||
        !(token_type->type == BN_V_BYTES ||
          (token_type->type == BN_V_ARR &&
           (token_type->elem_type == BN_V_I32 || token_type->elem_type == BN_V_U32 ||
            token_type->elem_type == BN_V_I64 || token_type->elem_type == BN_V_U64))))
        return bn_fail(e, "tokenizer.ggml.token_type: missing or not one integer per token");
    size_t longest = 16;
    for (uint64_t i = 0; i < tokens->count; i++)
        if (tokens->offsets[i + 1] - tokens->offsets[i] > longest)
            longest = tokens->offsets[i + 1] - tokens->offsets[i];
    tok_builder b = {0};
    uint8_t *normal = calloc(tokens->count, 1), *buf = malloc(longest + 1);
    int64_t unk = -1;
    int rc = -1;
    if (!normal || !buf) {
        bn_fail_code(e, BN_E_NOMEM, "out of memory");
        goto out;
    }
    if (add_pieces(&b, tokens, token_type, normal, buf, &unk, e) ||
        make_merges(&b, tokens, (const float *)scores->data, normal, buf, e) ||
        bn_tok_builder_finish(&b, "", "merges", 0, section, "GGUF vocabulary", e))
        goto out;
    if (bn_spm_section_keys(section, space_prefix, unk)) {
        bn_fail_code(e, BN_E_NOMEM, "out of memory");
        goto out;
    }
    rc = 0;
out:
    free(normal);
    free(buf);
    bn_tok_builder_free(&b);
    return rc;
}
