/* gguf_meta.c — the canonical metadata (formats/bn-model.md §3) of a GGUF
 * file, from its entries (gguf.h): the architecture mapped to bn's, the
 * hyper-parameters, special tokens, the chat format, and the vocabulary as
 * a `tokenizer` section. */
#include "gguf.h"

#include "tok_section.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct archinfo {
    const char *canon;
    const char *act;
    int sub_norms;
    const char *pairing;
    int bitnet;
} archinfo;

static int map_arch(const char *a, archinfo *ai)
{
    if (!strcmp(a, "bitnet-b1.58") || !strcmp(a, "bitnet-25")) {
        *ai = (archinfo){"bitnet-b1.58", "relu2", 1, "neox", 1};
        return 0;
    }
    if (!strcmp(a, "bitnet")) {
        *ai = (archinfo){"bitnet", "silu", 1, "neox", 1};
        return 0;
    }
    if (!strcmp(a, "llama")) {
        *ai = (archinfo){"llama", "silu", 0, "adjacent", 0};
        return 0;
    }
    return -1;
}

static int strarr_find(const bn_kv *kv, const char *s)
{
    if (!kv || kv->type != BN_V_STRARR)
        return -1;
    size_t n = strlen(s);
    for (uint64_t i = 0; i < kv->count; i++)
        if (kv->offsets[i + 1] - kv->offsets[i] == n && !memcmp((char *)kv->data + kv->offsets[i], s, n))
            return (int)i;
    return -1;
}

static int get_u32(const bn_meta *raw, const char *arch, const char *suffix, uint32_t *v, int required,
                   const char *name, bn_err *e)
{
    char key[256];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    const bn_kv *kv = bn_meta_get(raw, key);
    if (!kv) {
        if (required)
            return bn_fail(e, "%s: missing metadata '%s'", name, key);
        return 1;
    }
    if (bn_meta_u32(raw, key, v))
        return bn_fail(e, "%s: metadata '%s' is not an unsigned 32-bit integer", name, key);
    return 0;
}

static int get_f32(const bn_meta *raw, const char *arch, const char *suffix, float *v, int required,
                   const char *name, bn_err *e)
{
    char key[256];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    const bn_kv *kv = bn_meta_get(raw, key);
    if (!kv) {
        if (required)
            return bn_fail(e, "%s: missing metadata '%s'", name, key);
        return 1;
    }
    double d;
    if (bn_meta_f64(raw, key, &d) || !isfinite(d))
        return bn_fail(e, "%s: metadata '%s' is not a finite number", name, key);
    *v = (float)d;
    return 0;
}

static int32_t tok_id(const bn_meta *raw, const char *key, const char *name, bn_err *e, int *err)
{
    if (!bn_meta_get(raw, key))
        return -1;
    int64_t v;
    if (bn_meta_i64(raw, key, &v) || v < 0 || v > INT32_MAX) {
        *err = bn_fail(e, "%s: metadata '%s' is not a valid token id", name, key);
        return -1;
    }
    return (int32_t)v;
}

#define SETCHK(x)                                                                                            \
    do {                                                                                                     \
        if (x)                                                                                               \
            return bn_fail(e, "%s: out of memory", name);                                                    \
    } while (0)

int bn_gguf_canonical_meta(bn_source *s, const bn_meta *raw, int has_output, uint64_t embd_rows, bn_err *e)
{
    const char *name = s->name;
    bn_meta *m = &s->meta;
    const char *arch = bn_meta_str(raw, "general.architecture");
    if (!arch)
        return bn_fail(e, "%s: missing metadata 'general.architecture'", name);
    archinfo ai;
    if (map_arch(arch, &ai))
        return bn_fail(e,
                       "%s: architecture '%s' is not supported (bitnet-b1.58, bitnet-25, bitnet or ternary "
                       "llama expected)",
                       name, arch);
    SETCHK(bn_meta_set_str(m, "general.architecture", ai.canon));
    const char *gname = bn_meta_str(raw, "general.name");
    if (gname)
        SETCHK(bn_meta_set_str(m, "general.name", gname));

    uint32_t ctx, embd, ff, blocks, heads, heads_kv, head_dim, vocab = 0;
    if (get_u32(raw, arch, "context_length", &ctx, 1, name, e) ||
        get_u32(raw, arch, "embedding_length", &embd, 1, name, e) ||
        get_u32(raw, arch, "feed_forward_length", &ff, 1, name, e) ||
        get_u32(raw, arch, "block_count", &blocks, 1, name, e) ||
        get_u32(raw, arch, "attention.head_count", &heads, 1, name, e))
        return -1;
    int rc = get_u32(raw, arch, "attention.head_count_kv", &heads_kv, 0, name, e);
    if (rc < 0)
        return -1;
    if (rc)
        heads_kv = heads;
    if (!heads)
        return bn_fail(e, "%s: metadata '%s.attention.head_count' is 0", name, arch);
    rc = get_u32(raw, arch, "rope.dimension_count", &head_dim, 0, name, e);
    if (rc < 0)
        return -1;
    if (rc) {
        if (embd % heads)
            return bn_fail(e, "%s: embedding length %u is not a multiple of the head count %u", name, embd,
                           heads);
        head_dim = embd / heads;
    }
    const bn_kv *tokens = bn_meta_get(raw, "tokenizer.ggml.tokens");
    if (embd_rows && embd_rows <= UINT32_MAX)
        vocab = (uint32_t)embd_rows;
    else {
        rc = get_u32(raw, arch, "vocab_size", &vocab, 0, name, e);
        if (rc < 0)
            return -1;
        if (rc && tokens && tokens->type == BN_V_STRARR && tokens->count <= UINT32_MAX)
            vocab = (uint32_t)tokens->count;
    }
    float theta = 10000.0f, eps;
    if (get_f32(raw, arch, "rope.freq_base", &theta, 0, name, e) < 0 ||
        get_f32(raw, arch, "attention.layer_norm_rms_epsilon", &eps, 1, name, e))
        return -1;
    SETCHK(bn_meta_set_u32(m, "model.vocab_size", vocab));
    SETCHK(bn_meta_set_u32(m, "model.context_length", ctx));
    SETCHK(bn_meta_set_u32(m, "model.embedding_length", embd));
    SETCHK(bn_meta_set_u32(m, "model.feed_forward_length", ff));
    SETCHK(bn_meta_set_u32(m, "model.block_count", blocks));
    SETCHK(bn_meta_set_u32(m, "model.head_count", heads));
    SETCHK(bn_meta_set_u32(m, "model.head_count_kv", heads_kv));
    SETCHK(bn_meta_set_u32(m, "model.head_dim", head_dim));
    SETCHK(bn_meta_set_f32(m, "model.rope_theta", theta));
    SETCHK(bn_meta_set_str(m, "model.rope_pairing", ai.pairing));
    SETCHK(bn_meta_set_str(m, "model.ffn_activation", ai.act));
    SETCHK(bn_meta_set_bool(m, "model.sub_norms", ai.sub_norms));
    SETCHK(bn_meta_set_f32(m, "model.norm_eps", eps));
    SETCHK(bn_meta_set_bool(m, "model.tied_embeddings", !has_output));

    /* Tokens and chat. */
    int err = 0;
    int32_t bos = tok_id(raw, "tokenizer.ggml.bos_token_id", name, e, &err);
    int32_t eos = tok_id(raw, "tokenizer.ggml.eos_token_id", name, e, &err);
    int32_t pad = tok_id(raw, "tokenizer.ggml.padding_token_id", name, e, &err);
    if (err)
        return -1;
    int add_bos;
    if (bn_meta_bool(raw, "tokenizer.ggml.add_bos_token", &add_bos))
        add_bos = bos >= 0;
    int32_t stops[2];
    int nstop = 0;
    if (eos >= 0)
        stops[nstop++] = eos;
    int eot = strarr_find(tokens, "<|eot_id|>");
    if (eot >= 0 && eot != eos)
        stops[nstop++] = eot;
    SETCHK(bn_meta_set_i32(m, "tokens.bos_id", bos));
    SETCHK(bn_meta_set_i32(m, "tokens.eos_id", eos));
    SETCHK(bn_meta_set_i32(m, "tokens.pad_id", pad));
    SETCHK(bn_meta_set_arr(m, "tokens.stop_ids", BN_V_I32, stops, (uint64_t)nstop));
    SETCHK(bn_meta_set_bool(m, "tokens.add_bos", add_bos));
    int header_ids = strarr_find(tokens, "<|start_header_id|>") >= 0;
    const char *fmt = "none";
    if (ai.bitnet && header_ids && eot >= 0)
        fmt = "bitnet";
    else if (header_ids)
        fmt = "llama3";
    const char *tmpl = bn_meta_str(raw, "tokenizer.chat_template");
    if (tmpl) {
        const bn_kv *tk = bn_meta_get(raw, "tokenizer.chat_template");
        SETCHK(bn_meta_set_strn(m, "chat.template", tmpl, (size_t)tk->count));
    }
    SETCHK(bn_meta_set_str(m, "chat.format", fmt));
    SETCHK(bn_meta_set_str(m, "provenance.source_format", "gguf"));

    /* Tokenizer section. */
    if (!tokens || tokens->type != BN_V_STRARR)
        return bn_fail(e, "%s: no vocabulary (metadata 'tokenizer.ggml.tokens' is missing or not a string array)",
                       name);
    const char *tmodel = bn_meta_str(raw, "tokenizer.ggml.model");
    if (tmodel && strcmp(tmodel, "gpt2"))
        return bn_fail(e, "%s: tokenizer model '%s' is not supported (only byte-level BPE, 'gpt2')", name,
                       tmodel);
    const bn_kv *merges = bn_meta_get(raw, "tokenizer.ggml.merges");
    const bn_kv *ttype = bn_meta_get(raw, "tokenizer.ggml.token_type");
    const char *pre = bn_meta_str(raw, "tokenizer.ggml.pre");
    bn_meta *sec = calloc(1, sizeof *sec);
    if (!sec)
        return bn_fail(e, "%s: out of memory", name);
    if (bn_tokenizer_section_from_gguf(tokens, merges, ttype, pre, sec, e)) {
        bn_meta_free(sec);
        free(sec);
        size_t nl = strlen(name);
        if (strncmp(e->msg, name, nl) || e->msg[nl] != ':') {
            char msg[sizeof e->msg];
            snprintf(msg, sizeof msg, "%s", e->msg);
            bn_fail(e, "%s: %s", name, msg);
        }
        return -1;
    }
    SETCHK(bn_meta_set_section(m, "tokenizer", sec));
    return 0;
}
