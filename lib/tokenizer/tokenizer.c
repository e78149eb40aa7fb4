/* tokenizer.c — building a bn_tokenizer from a model's metadata (the
 * `tokenizer` section of formats/bn-model.md §3.2 and the tokens.* /
 * chat.format keys), its lookup tables, its identity hash, and the
 * accessors. Encoding lives in tok_pre.c and tok_bpe.c, lookups in
 * tok_vocab.c, id lists in tok_ids.c. */
#include "tok_impl.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

/* ------------------------------------------------------- vocabulary map */

/* Byte-level BPE: normal and byte tokens are looked up by their bytes.
 * SentencePiece-style: normal ones only (a byte token <0x41> holds the
 * byte 'A', which the normal token "A" must keep); byte tokens are the
 * byte fallback of byte_id. */
static int mergeable(const bn_tokenizer *t, uint8_t type)
{
    return type == BN_TOKT_NORMAL || (type == BN_TOKT_BYTE && !t->spm);
}

static int build_vocab(bn_tokenizer *t, bn_err *e)
{
    size_t slots = 16;
    while (slots < (size_t)t->n_vocab * 2)
        slots *= 2;
    t->vtab = calloc(slots, sizeof *t->vtab);
    if (!t->vtab)
        return bn_fail_code(e, BN_E_NOMEM, "out of memory");
    t->vmask = slots - 1;
    for (uint32_t id = 0; id < t->n_vocab; id++) {
        if (!mergeable(t, t->type[id]))
            continue;
        const uint8_t *p = t->blob + t->off[id];
        size_t n = t->off[id + 1] - t->off[id];
        if (!n)
            return bn_fail(e, "tokenizer.tokens: token %u is empty", id);
        /* The first id with given bytes wins: in ranks mode the lowest rank. */
        if (bn_tok_vocab_find(t, p, n) >= 0)
            continue;
        uint64_t head = head8(p, n), h = hash_key(p, n, head);
        size_t i = (size_t)h & t->vmask;
        while (t->vtab[i].id1)
            i = (i + 1) & t->vmask;
        t->vtab[i] = (tok_vslot){.head = head, .id1 = id + 1, .meta = slot_meta(n, h)};
    }
    if (t->spm) { /* byte tokens hold their byte; a byte without one falls back to unk */
        for (int b = 0; b < 256; b++)
            t->byte_id[b] = UINT32_MAX;
        for (uint32_t id = t->n_vocab; id-- > 0;)
            if (t->type[id] == BN_TOKT_BYTE && t->off[id + 1] - t->off[id] == 1)
                t->byte_id[t->blob[t->off[id]]] = id;
        return 0;
    }
    for (int b = 0; b < 256; b++) {
        uint8_t c = (uint8_t)b;
        int32_t id = bn_tok_vocab_find(t, &c, 1);
        if (id < 0)
            return bn_fail(e, "tokenizer.tokens: byte 0x%02x has no token (not a byte-level BPE)", b);
        t->byte_id[b] = (uint32_t)id;
    }
    return 0;
}

/* ------------------------------------------------------------ merge map */

static inline size_t pair_hash(uint64_t key)
{
    return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 20);
}

static int build_merges(bn_tokenizer *t, const bn_kv *kv, bn_err *e)
{
    if (!kv || kv->type != BN_V_ARR || kv->elem_type != BN_V_U32 || kv->count % 2)
        return bn_fail(e, "tokenizer.merges: missing, or not an even-length u32 array");
    size_t n = kv->count / 2;
    if (n > UINT32_MAX)
        return bn_fail(e, "tokenizer.merges: too many merges");
    size_t slots = 16;
    while (slots < n * 2)
        slots *= 2;
    t->ptab = malloc(slots * sizeof *t->ptab);
    if (!t->ptab)
        return bn_fail_code(e, BN_E_NOMEM, "out of memory");
    for (size_t i = 0; i < slots; i++)
        t->ptab[i].key = UINT64_MAX;
    t->pmask = slots - 1;
    const uint32_t *m = kv->data;
    uint8_t *cat = malloc(2 * t->max_len + 1);
    if (!cat)
        return bn_fail_code(e, BN_E_NOMEM, "out of memory");
    for (size_t r = 0; r < n; r++) {
        uint32_t a = m[2 * r], b = m[2 * r + 1];
        if (a >= t->n_vocab || b >= t->n_vocab) {
            free(cat);
            return bn_fail(e, "tokenizer.merges: merge %zu names id %u, past the vocabulary of %u", r,
                           a >= t->n_vocab ? a : b, t->n_vocab);
        }
        size_t la = t->off[a + 1] - t->off[a], lb = t->off[b + 1] - t->off[b];
        memcpy(cat, t->blob + t->off[a], la);
        memcpy(cat + la, t->blob + t->off[b], lb);
        int32_t merged = bn_tok_vocab_find(t, cat, la + lb);
        /* SentencePiece-style: a merge into (or out of) a user-defined or
         * control token never fires, as those are cut out of the text
         * before merging wherever their bytes occur */
        if (t->spm && (merged < 0 || t->type[a] != BN_TOKT_NORMAL || t->type[b] != BN_TOKT_NORMAL))
            continue;
        if (merged < 0) {
            free(cat);
            return bn_fail(e, "tokenizer.merges: merge %zu (%u %u) gives bytes that are no token", r, a, b);
        }
        uint64_t key = (uint64_t)a << 32 | b;
        size_t i = pair_hash(key) & t->pmask;
        while (t->ptab[i].key != UINT64_MAX && t->ptab[i].key != key)
            i = (i + 1) & t->pmask;
        if (t->ptab[i].key == key)
            continue; /* a repeated merge keeps its first (highest) priority */
        t->ptab[i].key = key;
        t->ptab[i].rank = (uint32_t)r;
        t->ptab[i].merged = (uint32_t)merged;
    }
    free(cat);
    return 0;
}

/* ------------------------------------------------------- special tokens */

static int trie_add(bn_tokenizer *t, size_t *cap, const uint8_t *p, size_t n, uint32_t id, uint8_t type)
{
    uint32_t node = 0;
    for (size_t k = 0; k < n; k++) {
        uint32_t c = t->trie[node].child;
        while (c && t->trie[c].byte != p[k])
            c = t->trie[c].sibling;
        if (!c) {
            if (t->n_trie == *cap) {
                size_t nc = *cap * 2;
                tok_tnode *nt = realloc(t->trie, nc * sizeof *nt);
                if (!nt)
                    return -1;
                t->trie = nt;
                *cap = nc;
            }
            c = (uint32_t)t->n_trie++;
            t->trie[c] = (tok_tnode){.child = 0, .sibling = t->trie[node].child, .id = -1, .byte = p[k]};
            t->trie[node].child = c;
        }
        node = c;
    }
    if (t->trie[node].id < 0) { /* the first id with this text wins */
        t->trie[node].id = (int32_t)id;
        t->trie[node].type = type;
    }
    return 0;
}

static int build_trie(bn_tokenizer *t, bn_err *e)
{
    size_t cap = 64;
    t->trie = malloc(cap * sizeof *t->trie);
    if (!t->trie)
        return bn_fail_code(e, BN_E_NOMEM, "out of memory");
    t->trie[0] = (tok_tnode){.id = -1};
    t->n_trie = 1;
    for (uint32_t id = 0; id < t->n_vocab; id++) {
        uint8_t ty = t->type[id];
        size_t n = t->off[id + 1] - t->off[id];
        if ((ty != BN_TOKT_CONTROL && ty != BN_TOKT_USER) || !n)
            continue;
        if (trie_add(t, &cap, t->blob + t->off[id], n, id, ty))
            return bn_fail_code(e, BN_E_NOMEM, "out of memory");
        t->first[t->blob[t->off[id]]] |= ty == BN_TOKT_CONTROL ? 1 : 2;
        if (ty == BN_TOKT_USER)
            t->has_user = 1;
    }
    return 0;
}

/* ---------------------------------------------------------------- hash */

static uint64_t compute_hash(const bn_tokenizer *t, const char *pre, const bn_kv *merges)
{
    XXH3_state_t *st = XXH3_createState();
    if (!st)
        return 0;
    XXH3_64bits_reset(st);
    static const char tag[] = "bn-tokenizer 1";
    XXH3_64bits_update(st, tag, sizeof tag);
    XXH3_64bits_update(st, pre, strlen(pre) + 1);
    if (t->spm) { /* (absent from byte-level hashes, which stay as they were) */
        static const char spm[] = "spm-bpe";
        XXH3_64bits_update(st, spm, sizeof spm);
        XXH3_64bits_update(st, &t->unk, sizeof t->unk);
        if (t->space_prefix) { /* (absent without: earlier spm hashes stay) */
            static const char prefix[] = "space prefix";
            XXH3_64bits_update(st, prefix, sizeof prefix);
        }
    }
    uint32_t flags[3] = {t->n_vocab, (uint32_t)t->ranks, (uint32_t)t->ignore_merges};
    XXH3_64bits_update(st, flags, sizeof flags);
    XXH3_64bits_update(st, t->off, (t->n_vocab + 1) * sizeof *t->off);
    XXH3_64bits_update(st, t->blob, t->off[t->n_vocab]);
    XXH3_64bits_update(st, t->type, t->n_vocab);
    if (!t->ranks && merges)
        XXH3_64bits_update(st, merges->data, merges->count * sizeof(uint32_t));
    uint64_t h = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    return h;
}

/* --------------------------------------------------------- construction */

static int32_t meta_id(const bn_meta *m, const char *key, int32_t dflt)
{
    int64_t v;
    if (!m || bn_meta_i64(m, key, &v) || v < 0 || v > INT32_MAX)
        return dflt;
    return (int32_t)v;
}

static int load_tokens(bn_tokenizer *t, const bn_meta *sec, bn_err *e)
{
    const bn_kv *kv = bn_meta_get(sec, "tokenizer.tokens");
    if (!kv || kv->type != BN_V_STRARR)
        return bn_fail(e, "tokenizer.tokens: missing or not a string array");
    if (!kv->count || kv->count > INT32_MAX)
        return bn_fail(e, "tokenizer.tokens: %llu tokens (must be 1..2147483647)",
                       (unsigned long long)kv->count);
    t->n_vocab = (uint32_t)kv->count;
    size_t bytes = kv->offsets[kv->count] - kv->offsets[0];
    t->blob = malloc(bytes + 1);
    t->off = malloc((kv->count + 1) * sizeof *t->off);
    t->type = malloc(kv->count);
    if (!t->blob || !t->off || !t->type)
        return bn_fail_code(e, BN_E_NOMEM, "out of memory");
    memcpy(t->blob, (const uint8_t *)kv->data + kv->offsets[0], bytes);
    for (uint64_t i = 0; i <= kv->count; i++) {
        t->off[i] = kv->offsets[i] - kv->offsets[0];
        if (i && t->off[i] - t->off[i - 1] > t->max_len)
            t->max_len = t->off[i] - t->off[i - 1];
    }
    const bn_kv *ty = bn_meta_get(sec, "tokenizer.token_type");
    if (!ty) {
        memset(t->type, BN_TOKT_NORMAL, kv->count);
        return 0;
    }
    /* "Array of u8": the format has no u8 array element, so it is stored as
     * bytes (one per id); u32/i32 arrays (GGUF's form) are accepted too. */
    int wide = ty->type == BN_V_ARR && (ty->elem_type == BN_V_U32 || ty->elem_type == BN_V_I32);
    if ((ty->type != BN_V_BYTES && !wide) || ty->count != kv->count)
        return bn_fail(e, "tokenizer.token_type: not %llu bytes (one type per token)", (unsigned long long)kv->count);
    for (uint64_t i = 0; i < kv->count; i++) {
        uint32_t v = wide ? ((const uint32_t *)ty->data)[i] : ((const uint8_t *)ty->data)[i];
        if (v < BN_TOKT_NORMAL || v > BN_TOKT_BYTE)
            return bn_fail(e, "tokenizer.token_type: token %llu has type %u (allowed 1..6)",
                           (unsigned long long)i, v);
        t->type[i] = (uint8_t)v;
    }
    return 0;
}

/* What a Llama 3.1-style template (chat.format llama3.1/llama3.2) says
 * beyond its format, read from its text (NULL: Meta's): the date_string it
 * fixes, as not all copies fix the same one (Meta's "26 Jul 2024",
 * unsloth's llama-3.1 template "26 July 2024"), and whether it strips the
 * first system message and the other messages (Meta's `|trim` both;
 * unsloth's neither; 3.2-Vision's only the system message). */
static void dated_template_rules(bn_tokenizer *t, const char *tmpl)
{
    snprintf(t->chat_fixed_date, sizeof t->chat_fixed_date, "26 Jul 2024");
    const char *lit = tmpl ? strstr(tmpl, "set date_string = \"") : NULL;
    if (lit) {
        lit += strlen("set date_string = \"");
        size_t k = strcspn(lit, "\"\r\n\\");
        if (lit[k] == '"' && k > 0 && k < sizeof t->chat_fixed_date)
            snprintf(t->chat_fixed_date, sizeof t->chat_fixed_date, "%.*s", (int)k, lit);
    }
    t->chat_keep_system = tmpl && !strstr(tmpl, "messages[0]['content']|trim") &&
                          !strstr(tmpl, "messages[0]['content'] | trim");
    t->chat_keep_messages = tmpl && !strstr(tmpl, "message['content'] | trim") &&
                            !strstr(tmpl, "message['content']|trim");
}

bn_tokenizer *bn_tokenizer_new(const bn_meta *model_meta, bn_err *e)
{
    const bn_meta *sec = bn_meta_section(model_meta, "tokenizer");
    if (!sec) {
        bn_fail(e, "the model has no tokenizer section");
        return NULL;
    }
    bn_tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        bn_fail_code(e, BN_E_NOMEM, "out of memory");
        return NULL;
    }
    const char *model = bn_meta_str(sec, "tokenizer.model");
    const char *mode = bn_meta_str(sec, "tokenizer.merge_mode");
    const char *pre = bn_meta_str(sec, "tokenizer.pre");
    int im = 0;
    if (model && strcmp(model, "bpe") && strcmp(model, "spm-bpe")) {
        bn_fail(e, "tokenizer.model: '%s' is not supported (only 'bpe' and 'spm-bpe')", model);
        goto fail;
    }
    t->spm = model && !strcmp(model, "spm-bpe");
    t->unk = t->spm ? meta_id(sec, "tokenizer.unk_id", -1) : -1;
    if (t->spm && !pre)
        pre = ""; /* no regex: the text between special tokens is one piece */
    if (t->spm && (!mode || strcmp(mode, "merges"))) {
        bn_fail(e, "tokenizer.merge_mode: 'spm-bpe' needs 'merges'");
        goto fail;
    }
    if (!pre) {
        bn_fail(e, "tokenizer.pre: missing");
        goto fail;
    }
    if (!mode || (strcmp(mode, "ranks") && strcmp(mode, "merges"))) {
        bn_fail(e, "tokenizer.merge_mode: '%s' (must be 'ranks' or 'merges')", mode ? mode : "(missing)");
        goto fail;
    }
    t->ranks = !strcmp(mode, "ranks");
    if (t->ranks) {
        t->memo = malloc(sizeof *t->memo << TOK_MEMO_BITS);
        if (!t->memo) {
            bn_fail_code(e, BN_E_NOMEM, "out of memory");
            goto fail;
        }
        for (size_t i = 0; i < (size_t)1 << TOK_MEMO_BITS; i++)
            t->memo[i].key = UINT64_MAX;
    }
    t->ignore_merges = t->ranks || (!bn_meta_bool(sec, "tokenizer.ignore_merges", &im) && im);
    int sp = 0;
    t->space_prefix = !bn_meta_bool(sec, "tokenizer.space_prefix", &sp) && sp;
    if (t->space_prefix && !t->spm) {
        bn_fail(e, "tokenizer.space_prefix: only with 'spm-bpe'");
        goto fail;
    }
    if (t->spm && t->ignore_merges) {
        bn_fail(e, "tokenizer.ignore_merges: not with 'spm-bpe'");
        goto fail;
    }
    if (load_tokens(t, sec, e) || build_vocab(t, e))
        goto fail;
    const bn_kv *merges = bn_meta_get(sec, "tokenizer.merges");
    if (!t->ranks && build_merges(t, merges, e))
        goto fail;
    if (build_trie(t, e) || (!t->spm && bn_tok_pre_compile(t, pre, e)))
        goto fail;
    if (t->unk >= (int32_t)t->n_vocab) {
        bn_fail(e, "tokenizer.unk_id: %d is past the vocabulary of %u", t->unk, t->n_vocab);
        goto fail;
    }

    t->bos = meta_id(model_meta, "tokens.bos_id", -1);
    t->eos = meta_id(model_meta, "tokens.eos_id", -1);
    int ab = 0;
    t->add_bos = !bn_meta_bool(model_meta, "tokens.add_bos", &ab) && ab && t->bos >= 0;
    if (t->bos >= (int32_t)t->n_vocab || t->eos >= (int32_t)t->n_vocab) {
        bn_fail(e, "tokens.%s_id: %d is past the vocabulary of %u", t->bos >= (int32_t)t->n_vocab ? "bos" : "eos",
                t->bos >= (int32_t)t->n_vocab ? t->bos : t->eos, t->n_vocab);
        goto fail;
    }
    t->eot = bn_tokenizer_find(t, "<|eot_id|>", 10);
    const char *cf = bn_meta_str(model_meta, "chat.format");
    snprintf(t->chat_format, sizeof t->chat_format, "%s", cf ? cf : "none");
    dated_template_rules(t, bn_meta_str(model_meta, "chat.template"));
    t->hash = compute_hash(t, pre, merges);
    return t;
fail:
    bn_tokenizer_free(t);
    return NULL;
}

void bn_tokenizer_free(bn_tokenizer *t)
{
    if (!t)
        return;
    free(t->blob);
    free(t->off);
    free(t->type);
    free(t->vtab);
    free(t->ptab);
    free(t->memo);
    free(t->trie);
    if (t->md)
        pcre2_match_data_free(t->md);
    if (t->re)
        pcre2_code_free(t->re);
    if (t->mctx)
        pcre2_match_context_free(t->mctx);
    if (t->jstack)
        pcre2_jit_stack_free(t->jstack);
    free(t->sc_u32);
    free(t->heap);
    free(t);
}

/* ------------------------------------------------------------ accessors */

/* A NULL tokenizer (bn.h: the getters answer 0, NULL or -1 for one). */
uint32_t bn_tokenizer_n_vocab(const bn_tokenizer *t) { return t ? t->n_vocab : 0; }
int32_t bn_tokenizer_bos(const bn_tokenizer *t) { return t ? t->bos : -1; }
int32_t bn_tokenizer_eos(const bn_tokenizer *t) { return t ? t->eos : -1; }
int bn_tokenizer_add_bos(const bn_tokenizer *t) { return t ? t->add_bos : 0; }
const char *bn_tokenizer_chat_format(const bn_tokenizer *t) { return t ? t->chat_format : NULL; }
uint64_t bn_tokenizer_hash(const bn_tokenizer *t) { return t ? t->hash : 0; }

int bn_tokenizer_set_chat_encoding(bn_tokenizer *t, int how, bn_err *e)
{
    if (!t || (how != BN_CHAT_SPLIT && how != BN_CHAT_WHOLE))
        return bn_fail_code(e, BN_E_INVALID, "bn_tokenizer_set_chat_encoding: %s",
                            !t ? "the tokenizer is NULL" : "how must be BN_CHAT_SPLIT or BN_CHAT_WHOLE");
    t->chat_whole = how == BN_CHAT_WHOLE;
    return BN_OK;
}

int bn_tokenizer_set_chat_date(bn_tokenizer *t, const char *date, bn_err *e)
{
    if (!t)
        return bn_fail_code(e, BN_E_INVALID, "bn_tokenizer_set_chat_date: the tokenizer is NULL");
    if (date && strlen(date) >= sizeof t->chat_date)
        return bn_fail_code(e, BN_E_INVALID, "bn_tokenizer_set_chat_date: the date is longer than %zu bytes",
                            sizeof t->chat_date - 1);
    if (date && strpbrk(date, "\r\n"))
        return bn_fail_code(e, BN_E_INVALID, "bn_tokenizer_set_chat_date: the date is more than one line");
    snprintf(t->chat_date, sizeof t->chat_date, "%s", date ? date : "");
    return BN_OK;
}

const uint8_t *bn_tokenizer_piece(const bn_tokenizer *t, uint32_t id, size_t *len)
{
    if (len)
        *len = 0;
    if (!t || id >= t->n_vocab)
        return NULL;
    if (len)
        *len = t->off[id + 1] - t->off[id];
    return t->blob + t->off[id];
}

int bn_tokenizer_type(const bn_tokenizer *t, uint32_t id)
{
    return t && id < t->n_vocab ? t->type[id] : 0;
}

int32_t bn_tokenizer_find(const bn_tokenizer *t, const void *bytes, size_t len)
{
    if (!t || !bytes || !len)
        return -1;
    int32_t id = bn_tok_vocab_find(t, bytes, len);
    if (id >= 0)
        return id;
    /* control and user-defined tokens: walk the trie to the exact end */
    const uint8_t *p = bytes;
    uint32_t node = 0;
    for (size_t k = 0; k < len; k++) {
        uint32_t c = t->trie[node].child;
        while (c && t->trie[c].byte != p[k])
            c = t->trie[c].sibling;
        if (!c)
            return -1;
        node = c;
    }
    return t->trie[node].id;
}
