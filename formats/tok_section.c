/* tok_section.c — building the `tokenizer` metadata section that every
 * tokenizer loader produces, and the model-level keys for a bare Llama 3
 * rank file. */
#include "tok_section.h"

#include <stdlib.h>
#include <string.h>

/* The Llama 3 pre-tokenizer regex (formats.md §7.2) and GPT-2's. */
const char bn_tok_llama3_regex[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/* Qwen2/Qwen3's (their tokenizer.json; llama.cpp's "qwen2"): Llama 3's
 * with one digit a piece */
const char bn_tok_qwen2_regex[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char bn_tok_gpt2_regex[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

int bn_tok_builder_add(tok_builder *b, uint32_t id, const void *bytes, size_t len, uint8_t type, bn_err *e)
{
    if (len > UINT32_MAX)
        return bn_fail(e, "token %u is too long", id);
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 1024;
        tok_entry *v = realloc(b->v, cap * sizeof *v);
        if (!v)
            return bn_fail_code(e, BN_E_NOMEM, "out of memory");
        b->v = v;
        b->cap = cap;
    }
    if (b->bytes + len > b->bcap) {
        size_t cap = b->bcap ? b->bcap : 8192;
        while (cap < b->bytes + len)
            cap *= 2;
        uint8_t *nb = realloc(b->blob, cap);
        if (!nb)
            return bn_fail_code(e, BN_E_NOMEM, "out of memory");
        b->blob = nb;
        b->bcap = cap;
    }
    if (len)
        memcpy(b->blob + b->bytes, bytes, len);
    b->v[b->n++] = (tok_entry){.id = id, .len = (uint32_t)len, .at = b->bytes, .type = type};
    b->bytes += len;
    return 0;
}

static size_t entry_slot(const tok_builder *b, const void *bytes, size_t len, int *found)
{
    size_t i = (size_t)bn_hash(bytes, len) & b->imask;
    for (;; i = (i + 1) & b->imask) {
        uint32_t k = b->index[i];
        if (!k) {
            *found = 0;
            return i;
        }
        const tok_entry *en = &b->v[k - 1];
        if (en->len == len && !memcmp(b->blob + en->at, bytes, len)) {
            *found = 1;
            return i;
        }
    }
}

int64_t bn_tok_builder_find(tok_builder *b, const void *bytes, size_t len)
{
    int found;
    if (!b->index) {
        size_t slots = 16;
        while (slots < b->n * 2)
            slots *= 2;
        if (!(b->index = calloc(slots, sizeof *b->index)))
            return -1;
        b->imask = slots - 1;
        for (size_t k = 0; k < b->n; k++) {
            if (b->v[k].type != BN_TOKT_NORMAL)
                continue;
            size_t i = entry_slot(b, b->blob + b->v[k].at, b->v[k].len, &found);
            if (!found)
                b->index[i] = (uint32_t)k + 1;
        }
    }
    size_t i = entry_slot(b, bytes, len, &found);
    return found ? (int64_t)b->v[b->index[i] - 1].id : -1;
}

int bn_tok_builder_merge(tok_builder *b, uint32_t left, uint32_t right, bn_err *e)
{
    if (b->n_merges * 2 + 2 > b->mcap) {
        size_t cap = b->mcap ? b->mcap * 2 : 4096;
        uint32_t *m = realloc(b->merges, cap * sizeof *m);
        if (!m)
            return bn_fail_code(e, BN_E_NOMEM, "out of memory");
        b->merges = m;
        b->mcap = cap;
    }
    b->merges[2 * b->n_merges] = left;
    b->merges[2 * b->n_merges + 1] = right;
    b->n_merges++;
    return 0;
}

static int by_id(const void *a, const void *b)
{
    const tok_entry *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

int bn_tok_builder_finish(tok_builder *b, const char *pre, const char *merge_mode, int ignore_merges,
                       bn_meta *section, const char *name, bn_err *e)
{
    if (!b->n)
        return bn_fail(e, "%s: no tokens", name);
    qsort(b->v, b->n, sizeof *b->v, by_id);
    uint64_t count = (uint64_t)b->v[b->n - 1].id + 1;
    if (count > INT32_MAX || count > tok_id_limit(b->n))
        return bn_fail(e, "%s: token id %u is too large for %zu tokens (ids must stay below %llu)", name,
                       b->v[b->n - 1].id, b->n, (unsigned long long)tok_id_limit(b->n));
    char *data = malloc(b->bytes + 1);
    uint64_t *off = malloc((count + 1) * sizeof *off);
    uint8_t *types = malloc(count);
    if (!data || !off || !types) {
        free(data);
        free(off);
        free(types);
        return bn_fail_code(e, BN_E_NOMEM, "out of memory");
    }
    uint64_t at = 0;
    size_t k = 0;
    for (uint64_t id = 0; id < count; id++) {
        off[id] = at;
        types[id] = BN_TOKT_UNUSED;
        if (k < b->n && b->v[k].id == id) {
            if (k + 1 < b->n && b->v[k + 1].id == id) {
                free(data);
                free(off);
                free(types);
                return bn_fail(e, "%s: token id %u is given twice", name, (uint32_t)id);
            }
            memcpy(data + at, b->blob + b->v[k].at, b->v[k].len);
            at += b->v[k].len;
            types[id] = b->v[k].type;
            k++;
        }
    }
    off[count] = at;
    bn_meta_free(section);
    int rc = bn_meta_set_str(section, "tokenizer.model", "bpe") | bn_meta_set_str(section, "tokenizer.pre", pre) |
             bn_meta_set_strarr_owned(section, "tokenizer.tokens", data, off, count) |
             bn_meta_set_bytes(section, "tokenizer.token_type", types, count) |
             bn_meta_set_str(section, "tokenizer.merge_mode", merge_mode) |
             bn_meta_set_bool(section, "tokenizer.ignore_merges", ignore_merges);
    if (!strcmp(merge_mode, "merges"))
        rc |= bn_meta_set_arr(section, "tokenizer.merges", BN_V_U32, b->merges, b->n_merges * 2);
    free(types);
    if (rc) {
        bn_meta_free(section);
        return bn_fail_code(e, BN_E_NOMEM, "out of memory");
    }
    return 0;
}

void bn_tok_builder_free(tok_builder *b)
{
    free(b->v);
    free(b->blob);
    free(b->merges);
    free(b->index);
    memset(b, 0, sizeof *b);
}

/* ----------------------------------------------------- model-level keys */

int bn_tokenizer_meta_llama3_defaults(bn_meta *model_meta, int add_bos, bn_err *e)
{
    const bn_meta *sec = bn_meta_section(model_meta, "tokenizer");
    const bn_kv *kv = sec ? bn_meta_get(sec, "tokenizer.tokens") : NULL;
    if (!kv || kv->type != BN_V_STRARR)
        return bn_fail(e, "no tokenizer section");
    int32_t bos = -1, eos = -1, eot = -1;
    for (uint64_t i = 0; i < kv->count; i++) {
        const char *s = (const char *)kv->data + kv->offsets[i];
        size_t n = kv->offsets[i + 1] - kv->offsets[i];
        if (n == 17 && !memcmp(s, "<|begin_of_text|>", 17))
            bos = (int32_t)i;
        else if (n == 15 && !memcmp(s, "<|end_of_text|>", 15))
            eos = (int32_t)i;
        else if (n == 10 && !memcmp(s, "<|eot_id|>", 10))
            eot = (int32_t)i;
    }
    int32_t stop[2];
    int n_stop = 0;
    if (eos >= 0)
        stop[n_stop++] = eos;
    if (eot >= 0)
        stop[n_stop++] = eot;
    if (bn_meta_set_i32(model_meta, "tokens.bos_id", bos) || bn_meta_set_i32(model_meta, "tokens.eos_id", eos) ||
        bn_meta_set_bool(model_meta, "tokens.add_bos", add_bos && bos >= 0) ||
        bn_meta_set_arr(model_meta, "tokens.stop_ids", BN_V_I32, stop, (uint64_t)n_stop) ||
        bn_meta_set_str(model_meta, "chat.format", bos >= 0 && eot >= 0 ? "bitnet" : "none"))
        return bn_fail_code(e, BN_E_NOMEM, "out of memory");
    return 0;
}
