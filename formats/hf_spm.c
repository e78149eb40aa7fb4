/* hf_spm.c — a Hugging Face tokenizer.json of the SentencePiece kind
 * (model BPE with byte_fallback, the normalizer that turns every space into
 * U+2581: Gemma's without a dummy prefix, Llama 2's with one, Prepend "▁")
 * as a `tokenizer` section of model "spm-bpe" (formats/bn-model.md §3.2,
 * formats/embedding.md, formats/1bitllm.md).
 *
 * Tokens are stored as the bytes they decode to: U+2581 back to a space
 * (HF's decoder Replace "▁" → " "), <0xNN> as the byte NN (type byte,
 * ByteFallback). Added tokens: special ones are control tokens; the others
 * are user-defined (cut out of the text before merging, as SentencePiece
 * cuts them), except those holding U+2581 (Gemma's runs of spaces), which
 * HF never finds in raw text (normalized false) and its merges reach:
 * those stay normal tokens. Any other normalizer or pre-tokenizer is
 * refused by name. */
#include "jsonfile.h"
#include "tok_section.h"

#include <stdlib.h>
#include <string.h>

static const cJSON *item(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

static const char *type_of(const cJSON *o)
{
    const cJSON *t = item(o, "type");
    return cJSON_IsString(t) ? t->valuestring : "";
}

static const char LOWER_ONE_EIGHTH[] = "\xe2\x96\x81"; /* U+2581, SentencePiece's space */

int bn_spm_section_keys(bn_meta *section, int space_prefix, int64_t unk)
{
    return bn_meta_set_str(section, "tokenizer.model", "spm-bpe") ||
                   (space_prefix && bn_meta_set_bool(section, "tokenizer.space_prefix", 1)) ||
                   (unk >= 0 && bn_meta_set_i32(section, "tokenizer.unk_id", (int32_t)unk))
               ? -1
               : 0;
}

size_t bn_spm_unspace(const char *s, size_t n, uint8_t *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        if (n - i >= 3 && !memcmp(s + i, LOWER_ONE_EIGHTH, 3)) {
            out[o++] = ' ';
            i += 3;
        } else
            out[o++] = (uint8_t)s[i++];
    }
    return o;
}

int bn_spm_byte_piece(const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    if (n != 6 || memcmp(s, "<0x", 3) || s[5] != '>')
        return -1;
    const char *h = memchr(hex, s[3], 16), *l = memchr(hex, s[4], 16);
    return h && l ? (int)((h - hex) * 16 + (l - hex)) : -1;
}

static int is_space_replace(const cJSON *n)
{
    const cJSON *pat = item(n, "pattern"), *str = pat ? item(pat, "String") : NULL, *c = item(n, "content");
    return !strcmp(type_of(n), "Replace") && cJSON_IsString(str) && !strcmp(str->valuestring, " ") &&
           cJSON_IsString(c) && !strcmp(c->valuestring, LOWER_ONE_EIGHTH);
}

static int is_prefix_prepend(const cJSON *n)
{
    const cJSON *p = item(n, "prepend");
    return !strcmp(type_of(n), "Prepend") && cJSON_IsString(p) && !strcmp(p->valuestring, LOWER_ONE_EIGHTH);
}

/* The shapes bn encodes exactly: normalizer Replace(" " → "▁") (alone or
 * the one step of a Sequence), or a Sequence of that and Prepend("▁")
 * (Llama 2's: SentencePiece's dummy prefix; *prefix is set); pre-tokenizer
 * none or Split on the string " " (a no-op once the normalizer has left no
 * space: Gemma's). */
static int check_shape(const cJSON *root, const cJSON *model, int *prefix, const char *path, bn_err *e)
{
    const cJSON *p = item(model, "continuing_subword_prefix"), *s = item(model, "end_of_word_suffix");
    if ((cJSON_IsString(p) && *p->valuestring) || (cJSON_IsString(s) && *s->valuestring))
        return bn_fail(e, "%s: BPE with subword prefixes/suffixes is not supported", path);
    const cJSON *d = item(model, "dropout");
    if (cJSON_IsNumber(d) && d->valuedouble != 0)
        return bn_fail(e, "%s: BPE dropout is not supported", path);
    if (cJSON_IsTrue(item(model, "ignore_merges")))
        return bn_fail(e, "%s: byte-fallback BPE with ignore_merges is not supported", path);
    const cJSON *n = item(root, "normalizer");
    *prefix = 0;
    if (cJSON_IsObject(n) && !strcmp(type_of(n), "Sequence")) {
        /* Prepend("▁") and Replace(" " → "▁") in either order give the same
         * text: "▁" before the (non-empty) text, every space a "▁". */
        const cJSON *steps = item(n, "normalizers"), *replace = NULL;
        for (const cJSON *k = steps ? steps->child : NULL; k; k = k->next) {
            if (is_space_replace(k) && !replace)
                replace = k;
            else if (is_prefix_prepend(k) && !*prefix)
                *prefix = 1;
            else
                return bn_fail(e, "%s: normalizer '%s' is not supported (only Replace ' ' with U+2581, and "
                                  "one Prepend U+2581)",
                               path, type_of(k));
        }
        n = replace;
    }
    if (!cJSON_IsObject(n) || !is_space_replace(n))
        return bn_fail(e, "%s: BPE with byte_fallback needs the normalizer Replace ' ' with U+2581 (found '%s')", path,
                       cJSON_IsObject(n) ? type_of(n) : "none");
    const cJSON *pt = item(root, "pre_tokenizer");
    if (pt && !cJSON_IsNull(pt)) {
        const cJSON *pat = item(pt, "pattern"), *str = pat ? item(pat, "String") : NULL;
        if (strcmp(type_of(pt), "Split") || !cJSON_IsString(str) || strcmp(str->valuestring, " "))
            return bn_fail(e, "%s: pre_tokenizer '%s' with byte-fallback BPE is not supported (only none, or "
                              "Split on ' ')",
                           path, type_of(pt));
    }
    return 0;
}

/* Whether text is the content of an added token (a merge naming one
 * never fires: see tokenizer.c). Linear, for the rare miss only. */
static int is_added(const cJSON *root, const char *text)
{
    const cJSON *a;
    cJSON_ArrayForEach(a, item(root, "added_tokens"))
    {
        const cJSON *c = item(a, "content");
        if (cJSON_IsString(c) && !strcmp(c->valuestring, text))
            return 1;
    }
    return 0;
}

static int add_tokens(const cJSON *root, const cJSON *model, tok_builder *b, uint8_t *seen, uint64_t limit,
                      uint8_t *buf, const char *path, bn_err *e)
{
    const cJSON *a;
    cJSON_ArrayForEach(a, item(root, "added_tokens"))
    {
        const cJSON *id = item(a, "id"), *content = item(a, "content");
        if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble >= (double)limit ||
            !cJSON_IsString(content) || !*content->valuestring)
            return bn_fail(e, "%s: an added token without a valid id and content", path);
        uint32_t i = (uint32_t)id->valuedouble;
        const char *s = content->valuestring;
        int special = cJSON_IsTrue(item(a, "special")), runs = strstr(s, LOWER_ONE_EIGHTH) != NULL;
        uint8_t ty = special ? BN_TOKT_CONTROL : runs ? BN_TOKT_NORMAL : BN_TOKT_USER;
        size_t n = ty == BN_TOKT_NORMAL ? bn_spm_unspace(s, strlen(s), buf) : strlen(s);
        if (bn_tok_builder_add(b, i, ty == BN_TOKT_NORMAL ? (const char *)buf : s, n, ty, e))
            return -1;
        seen[i] = 1;
    }
    const cJSON *v;
    cJSON_ArrayForEach(v, item(model, "vocab"))
    {
        if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble >= (double)limit)
            return bn_fail(e, "%s: vocab entry '%.40s' has no valid id below %llu", path, v->string,
                           (unsigned long long)limit);
        uint32_t i = (uint32_t)v->valuedouble;
        if (seen[i])
            continue; /* the added token's own entry wins */
        int byte = bn_spm_byte_piece(v->string, strlen(v->string));
        uint8_t c = (uint8_t)byte;
        int rc = byte >= 0 ? bn_tok_builder_add(b, i, &c, 1, BN_TOKT_BYTE, e)
                           : bn_tok_builder_add(b, i, buf, bn_spm_unspace(v->string, strlen(v->string), buf), BN_TOKT_NORMAL, e);
        if (rc)
            return -1;
    }
    return 0;
}

static int add_merges(const cJSON *root, const cJSON *model, tok_builder *b, uint8_t *buf, const char *path,
                      bn_err *e)
{
    size_t k = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, item(model, "merges"))
    {
        char *side[2] = {NULL, NULL};
        char *own = NULL;
        if (cJSON_IsString(m)) { /* "a b": pieces hold no space (it is U+2581) */
            const char *sp = strchr(m->valuestring, ' ');
            if (sp && !strchr(sp + 1, ' ') && (own = strdup(m->valuestring))) {
                own[sp - m->valuestring] = 0;
                side[0] = own;
                side[1] = own + (sp - m->valuestring) + 1;
            }
        } else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 && cJSON_IsString(m->child) &&
                   cJSON_IsString(m->child->next)) {
            side[0] = m->child->valuestring;
            side[1] = m->child->next->valuestring;
        }
        int64_t id[2] = {-1, -1};
        int skip = 0;
        for (int s = 0; s < 2 && side[s]; s++) {
            id[s] = bn_tok_builder_find(b, buf, bn_spm_unspace(side[s], strlen(side[s]), buf));
            skip |= id[s] < 0 && is_added(root, side[s]);
        }
        free(own);
        if (skip)
            continue;
        if (id[0] < 0 || id[1] < 0) {
            char *txt = cJSON_PrintUnformatted(m);
            bn_fail(e, "%s: merge %zu %s does not name two tokens of the vocabulary", path, k, txt ? txt : "");
            free(txt);
            return -1;
        }
        if (bn_tok_builder_merge(b, (uint32_t)id[0], (uint32_t)id[1], e))
            return -1;
        k++;
    }
    return 0;
}

int bn_tokenizer_section_from_hf_spm(const cJSON *root, bn_meta *section, const char *path, bn_err *e)
{
    const cJSON *model = item(root, "model");
    int prefix = 0;
    if (check_shape(root, model, &prefix, path, e))
        return -1;
    uint64_t limit = tok_id_limit((uint64_t)cJSON_GetArraySize(item(model, "vocab")) +
                                  (uint64_t)cJSON_GetArraySize(item(root, "added_tokens")));
    size_t longest = 16;
    const cJSON *v;
    cJSON_ArrayForEach(v, item(model, "vocab")) if (strlen(v->string) > longest) longest = strlen(v->string);
    cJSON_ArrayForEach(v, item(root, "added_tokens"))
    {
        const cJSON *c = item(v, "content");
        if (cJSON_IsString(c) && strlen(c->valuestring) > longest)
            longest = strlen(c->valuestring);
    }
    for (const cJSON *m = item(model, "merges")->child; m; m = m->next) {
        const char *s = cJSON_IsString(m) ? m->valuestring : NULL;
        size_t n = s ? strlen(s) : 0;
        for (const cJSON *c = cJSON_IsArray(m) ? m->child : NULL; c; c = c->next)
            n += cJSON_IsString(c) ? strlen(c->valuestring) : 0;
        if (n > longest)
            longest = n;
    }
    /* bn fuses consecutive unknown characters into one <unk>, as HF's
     * fuse_unk; without fusing they differ only where a character has no
     * byte tokens, so fuse_unk false is refused only then */
    if (cJSON_IsFalse(item(model, "fuse_unk"))) {
        uint8_t have[256] = {0};
        size_t bytes = 0;
        cJSON_ArrayForEach(v, item(model, "vocab"))
        {
            int byte = bn_spm_byte_piece(v->string, strlen(v->string));
            if (byte >= 0 && !have[byte]++)
                bytes++;
        }
        if (bytes < 256)
            return bn_fail(e, "%s: fuse_unk false with %zu of the 256 byte tokens is not supported (each unknown "
                              "character would be an <unk> of its own)",
                           path, bytes);
    }
    tok_builder b = {0};
    uint8_t *seen = calloc(limit, 1), *buf = malloc(longest + 1);
    int rc = -1;
    if (!seen || !buf) {
        bn_fail_code(e, BN_E_NOMEM, "out of memory");
        goto out;
    }
    if (add_tokens(root, model, &b, seen, limit, buf, path, e) || add_merges(root, model, &b, buf, path, e) ||
        bn_tok_builder_finish(&b, "", "merges", 0, section, path, e))
        goto out;
    /* the unknown token: a character without byte tokens */
    const cJSON *unk = item(model, "unk_token");
    const cJSON *uid = cJSON_IsString(unk) ? item(item(model, "vocab"), unk->valuestring) : NULL;
    if (bn_spm_section_keys(section, prefix, cJSON_IsNumber(uid) ? (int64_t)uid->valuedouble : -1)) {
        bn_fail_code(e, BN_E_NOMEM, "out of memory");
        goto out;
    }
    rc = 0;
out:
    free(seen);
    free(buf);
    bn_tok_builder_free(&b);
    return rc;
}
