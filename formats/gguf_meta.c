/* gguf_meta.c — the canonical metadata (formats/bn-model.md §3) of a GGUF
 * file, from its entries (gguf.h): the architecture mapped to bn's, the
 * hyper-parameters read into a bn_hparams and written by
 * bn_hparams_to_meta (as for every source), special tokens, the chat
 * format, and the vocabulary as a `tokenizer` section. */
#include "gguf.h"
#include "jsonfile.h"

#include "tok_section.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a GGUF architecture name means in bn. */
typedef struct archinfo {
    const char *canon; /* bn's architecture */
    int act_silu;      /* 1: silu(g)*u; 0: relu(g)^2*u */
    int sub_norms;
    int rope_neox;     /* 1: pairs (i, i+d/2); 0: adjacent pairs */
    int bitnet;        /* a BitNet chat format is possible */
    int gemma;         /* Gemma 3: gelu_tanh, post norms, scaled embedding, sliding windows */
} archinfo;

static int map_arch(const char *a, archinfo *ai)
{
    if (!strcmp(a, "bitnet-b1.58") || !strcmp(a, "bitnet-25")) {
        *ai = (archinfo){"bitnet-b1.58", 0, 1, 1, 1, 0};
        return 0;
    }
    if (!strcmp(a, "bitnet")) {
        *ai = (archinfo){"bitnet", 1, 1, 1, 1, 0};
        return 0;
    }
    if (!strcmp(a, "llama")) {
        *ai = (archinfo){"llama", 1, 0, 0, 0, 0};
        return 0;
    }
    if (!strcmp(a, "qwen3")) { /* BitNet-embedding-0.6B: llama.cpp's qwen3 graph rotates as NEOX */
        *ai = (archinfo){"qwen3", 1, 0, 1, 0, 0};
        return 0;
    }
    if (!strcmp(a, "gemma3")) { /* BitNet-embedding-270M: llama.cpp's gemma3 graph rotates as NEOX */
        *ai = (archinfo){"gemma3", 0, 0, 1, 0, 1};
        return 0;
    }
    return -1;
}

int bn_gguf_bitnet_arch(const char *a)
{
    archinfo ai;
    return a && !map_arch(a, &ai) && (!strcmp(ai.canon, "bitnet") || !strcmp(ai.canon, "bitnet-b1.58"));
}

/* Which BitNet layer a file of a BitNet architecture holds: the name
 * alone does not say. bitnet.cpp's converter has written 1bitLLM's SiLU
 * models as bitnet-b1.58 since its 3b04140 (formats/1bitllm.md), and
 * llama.cpp's writes 2B4T (relu²) as bitnet; each peer then computes its
 * name's graph. bn runs the model as it was trained: an explicit
 * <arch>.hidden_activation (llama.cpp's optional key) decides, else the
 * vocabulary: 1bitLLM's is Llama 2's SentencePiece (tokenizer.ggml.model
 * "llama"), 2B4T's Llama 3's BPE ("gpt2"); else the name. */
static int bitnet_layer(const bn_meta *raw, const char *arch, archinfo *ai, const char *name, bn_err *e)
{
    if (strcmp(ai->canon, "bitnet") && strcmp(ai->canon, "bitnet-b1.58"))
        return 0;
    char key[80];
    snprintf(key, sizeof key, "%s.hidden_activation", arch);
    const char *act = bn_meta_str(raw, key), *tok = bn_meta_str(raw, "tokenizer.ggml.model");
    if (act && strcmp(act, "relu2") && strcmp(act, "silu"))
        return bn_fail(e, "%s: %s '%s' is not supported (relu2 or silu expected)", name, key, act);
    if (act)
        map_arch(strcmp(act, "silu") ? "bitnet-b1.58" : "bitnet", ai);
    else if (tok && (!strcmp(tok, "llama") || !strcmp(tok, "gpt2")))
        map_arch(strcmp(tok, "llama") ? "bitnet-b1.58" : "bitnet", ai);
    return 0;
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

/* The entry "<arch>.<suffix>" (its name into key): 0 when present, 1 when
 * absent and optional, -1 (failed) when absent and required. */
static int arch_entry(const bn_meta *raw, const char *arch, const char *suffix, char *key, size_t key_size,
                      int required, const char *name, bn_err *e)
{
    snprintf(key, key_size, "%s.%s", arch, suffix);
    if (bn_meta_get(raw, key))
        return 0;
    return required ? bn_fail(e, "%s: missing metadata '%s'", name, key) : 1;
}

static int get_u32(const bn_meta *raw, const char *arch, const char *suffix, uint32_t *v, int required,
                   const char *name, bn_err *e)
{
    char key[256];
    int rc = arch_entry(raw, arch, suffix, key, sizeof key, required, name, e);
    if (rc)
        return rc;
    if (bn_meta_u32(raw, key, v))
        return bn_fail(e, "%s: metadata '%s' is not an unsigned 32-bit integer", name, key);
    return 0;
}

static int get_f32(const bn_meta *raw, const char *arch, const char *suffix, float *v, int required,
                   const char *name, bn_err *e)
{
    char key[256];
    int rc = arch_entry(raw, arch, suffix, key, sizeof key, required, name, e);
    if (rc)
        return rc;
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


/* <arch>.rope.scaling.type: bitnet.cpp's converters write "linear" (with
 * rope.scaling.factor) whenever config.json has a linear rope_scaling, and
 * its 2025 BitnetModel "linear" with factor 1. Absent, "none", or linear by
 * 1 change nothing; any other scaling is refused by name, not ignored. */
static int rope_scaling(const bn_meta *raw, const char *arch, const char *name, bn_err *e)
{
    char key[128];
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    const char *type = bn_meta_str(raw, key);
    float factor = 1.0f;
    if (get_f32(raw, arch, "rope.scaling.factor", &factor, 0, name, e) < 0)
        return -1;
    if (!type || !strcmp(type, "none") || (!strcmp(type, "linear") && factor == 1.0f))
        return 0;
    return bn_fail_code(e, BN_E_UNSUPPORTED, "%s: %s '%s' with factor %g is not supported (none, or linear by 1)", name,
                        key, type, (double)factor);
}

/* The model's sizes and RoPE/norm constants from "<arch>.*" into hp;
 * embd_rows (token_embd's rows, 0: none) is the vocabulary size when
 * known, else <arch>.vocab_size, else the vocabulary's length. */
static int read_shape(const bn_meta *raw, const char *arch, uint64_t embd_rows, bn_hparams *hp, const char *name,
                      bn_err *e)
{
    if (get_u32(raw, arch, "context_length", &hp->n_ctx, 1, name, e) ||
        get_u32(raw, arch, "embedding_length", &hp->n_embd, 1, name, e) ||
        get_u32(raw, arch, "feed_forward_length", &hp->n_ff, 1, name, e) ||
        get_u32(raw, arch, "block_count", &hp->n_layer, 1, name, e) ||
        get_u32(raw, arch, "attention.head_count", &hp->n_head, 1, name, e))
        return -1;
    int rc = get_u32(raw, arch, "attention.head_count_kv", &hp->n_head_kv, 0, name, e);
    if (rc < 0)
        return -1;
    if (rc)
        hp->n_head_kv = hp->n_head;
    if (!hp->n_head)
        return bn_fail(e, "%s: metadata '%s.attention.head_count' is 0", name, arch);
    rc = get_u32(raw, arch, "rope.dimension_count", &hp->head_dim, 0, name, e);
    if (rc < 0)
        return -1;
    if (rc) /* llama.cpp's head size: the key length, else n_embd / n_head */
        rc = get_u32(raw, arch, "attention.key_length", &hp->head_dim, 0, name, e);
    if (rc < 0)
        return -1;
    if (rc) {
        if (hp->n_embd % hp->n_head)
            return bn_fail(e, "%s: embedding length %u is not a multiple of the head count %u", name, hp->n_embd,
                           hp->n_head);
        hp->head_dim = hp->n_embd / hp->n_head;
    }
    const bn_kv *tokens = bn_meta_get(raw, "tokenizer.ggml.tokens");
    hp->n_vocab = 0;
    if (embd_rows && embd_rows <= UINT32_MAX)
        hp->n_vocab = (uint32_t)embd_rows;
    else {
        rc = get_u32(raw, arch, "vocab_size", &hp->n_vocab, 0, name, e);
        if (rc < 0)
            return -1;
        if (rc && tokens && tokens->type == BN_V_STRARR && tokens->count <= UINT32_MAX)
            hp->n_vocab = (uint32_t)tokens->count;
    }
    hp->rope_theta = 10000.0f;
    if (get_f32(raw, arch, "rope.freq_base", &hp->rope_theta, 0, name, e) < 0 ||
        get_f32(raw, arch, "attention.layer_norm_rms_epsilon", &hp->norm_eps, 1, name, e))
        return -1;
    return rope_scaling(raw, arch, name, e);
}

/* Whether a BOS starts every text when the file does not say
 * (tokenizer.ggml.add_bos_token absent), as llama.cpp decides it: yes for
 * a SentencePiece vocabulary and for Llama 3's pre-tokenizer group (its
 * names, and none: the official 2B4T file's), no for other byte-level ones
 * (gpt2, qwen2: bitnet.cpp's embedding converter copies the key only when
 * tokenizer_config.json has it). */
static int bos_by_default(const bn_meta *raw)
{
    const char *model = bn_meta_str(raw, "tokenizer.ggml.model");
    return !model || strcmp(model, "gpt2") || bn_gguf_pre_is_llama3(bn_meta_str(raw, "tokenizer.ggml.pre"));
}

/* Special tokens into hp: bos, eos, pad, whether to add bos, and the stop
 * ids (eos, and <|eot_id|> when the vocabulary has it). */
static int read_tokens(const bn_meta *raw, bn_hparams *hp, const char *name, bn_err *e)
{
    int err = 0;
    hp->bos_id = tok_id(raw, "tokenizer.ggml.bos_token_id", name, e, &err);
    hp->eos_id = tok_id(raw, "tokenizer.ggml.eos_token_id", name, e, &err);
    hp->pad_id = tok_id(raw, "tokenizer.ggml.padding_token_id", name, e, &err);
    if (err)
        return -1;
    if (bn_meta_bool(raw, "tokenizer.ggml.add_bos_token", &hp->add_bos))
        hp->add_bos = hp->bos_id >= 0 && bos_by_default(raw);
    hp->n_stop = 0;
    if (hp->eos_id >= 0)
        hp->stop_ids[hp->n_stop++] = hp->eos_id;
    int eot = strarr_find(bn_meta_get(raw, "tokenizer.ggml.tokens"), "<|eot_id|>");
    if (eot >= 0 && eot != hp->eos_id)
        hp->stop_ids[hp->n_stop++] = eot;
    return 0;
}

/* bitnet (2B4T's "Role: content<|eot_id|>"; its GGUF template is a
 * placeholder), falcon3 and llama3.1/3.2 (by the template), llama3
 * (header ids), or none. */
static const char *chat_format(const bn_meta *raw, const archinfo *ai)
{
    const bn_kv *tmpl = bn_meta_get(raw, "tokenizer.chat_template");
    if (tmpl && tmpl->type == BN_V_STR) {
        char *s = strndup(tmpl->data, (size_t)tmpl->count);
        const char *f = s ? bn_chat_format_of_template(s) : "none";
        free(s);
        if (!strcmp(f, "falcon3") || !strcmp(f, "llama3.1") || !strcmp(f, "llama3.2"))
            return f; /* a static string */
    }
    const bn_kv *tokens = bn_meta_get(raw, "tokenizer.ggml.tokens");
    int header_ids = strarr_find(tokens, "<|start_header_id|>") >= 0;
    if (ai->bitnet && header_ids && strarr_find(tokens, "<|eot_id|>") >= 0)
        return "bitnet";
    return header_ids ? "llama3" : "none";
}

/* The `tokenizer` section from the GGUF vocabulary (byte-level BPE only). */
static int tokenizer_section(bn_meta *m, const bn_meta *raw, const char *name, bn_err *e)
{
    const bn_kv *tokens = bn_meta_get(raw, "tokenizer.ggml.tokens");
    if (!tokens || tokens->type != BN_V_STRARR)
        return bn_fail(e, "%s: no vocabulary (metadata 'tokenizer.ggml.tokens' is missing or not a string array)",
                       name);
    const char *tmodel = bn_meta_str(raw, "tokenizer.ggml.model");
    int spm = tmodel && !strcmp(tmodel, "llama");
    if (tmodel && strcmp(tmodel, "gpt2") && !spm)
        return bn_fail(e, "%s: tokenizer model '%s' is not supported (byte-level BPE 'gpt2' and SentencePiece "
                          "'llama' are)",
                       name, tmodel);
    const bn_kv *merges = bn_meta_get(raw, "tokenizer.ggml.merges");
    const bn_kv *ttype = bn_meta_get(raw, "tokenizer.ggml.token_type");
    const char *pre = bn_meta_str(raw, "tokenizer.ggml.pre");
    /* llama.cpp's SentencePiece default: a space before the text */
    int space_prefix = 1;
    if (spm && bn_meta_get(raw, "tokenizer.ggml.add_space_prefix") &&
        bn_meta_bool(raw, "tokenizer.ggml.add_space_prefix", &space_prefix))
        return bn_fail(e, "%s: metadata 'tokenizer.ggml.add_space_prefix' is not a boolean", name);
    bn_meta *sec = calloc(1, sizeof *sec);
    if (!sec)
        return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", name);
    if (spm ? bn_tokenizer_section_from_gguf_spm(tokens, bn_meta_get(raw, "tokenizer.ggml.scores"), ttype,
                                                 space_prefix, sec, e)
            : bn_tokenizer_section_from_gguf(tokens, merges, ttype, pre, sec, e)) {
        bn_meta_free(sec);
        free(sec);
        size_t nl = strlen(name);
        if (strncmp(e->msg, name, nl) || e->msg[nl] != ':') { /* name the file */
            char msg[sizeof e->msg];
            snprintf(msg, sizeof msg, "%s", e->msg);
            bn_fail(e, "%s: %s", name, msg);
        }
        return -1;
    }
    if (bn_meta_set_section(m, "tokenizer", sec))
        return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", name);
    return 0;
}

/* What bitnet.cpp's embedding converter writes: q/k head norms and
 * BitLinear input norms (found by their tensors; the input norms' eps is
 * the model's), <arch>.pooling_type (3, last: the one bn runs; none 0),
 * and add_eos_token, the end token every input then gets. */
static int read_embedding(const bn_source *s, const bn_meta *raw, const char *arch, bn_hparams *hp,
                          const char *name, bn_err *e)
{
    hp->qk_norm = bn_source_find(s, "blk.0.attn_q_norm.weight") != NULL;
    if (bn_source_find(s, "blk.0.attn_q_in_norm.weight")) {
        hp->proj_norm = 1;
        hp->proj_norm_eps = hp->norm_eps;
    }
    uint32_t pool = 0;
    if (get_u32(raw, arch, "pooling_type", &pool, 0, name, e) < 0)
        return -1;
    if (pool && pool != 3)
        return bn_fail_code(e, BN_E_UNSUPPORTED, "%s: %s.pooling_type %u is not supported (3, last token, is)",
                            name, arch, pool);
    if (pool == 3) {
        int add_eos = 0;
        hp->pooling = BN_POOL_LAST;
        hp->embed_end_id = !bn_meta_bool(raw, "tokenizer.ggml.add_eos_token", &add_eos) && add_eos ? hp->eos_id : -1;
    }
    return 0;
}

/* Gemma 3 (BitNet-embedding-270M's GGUF, arch "gemma3"): what llama.cpp's
 * gemma3 loader does, which bitnet.cpp runs. bitnet.cpp's embedding
 * converter writes no sliding-window metadata; the loader's facts then
 * stand: every 6th layer full, the others sliding with RoPE base 10000
 * (<arch>.rope.freq_base_swa when present), the window
 * <arch>.attention.sliding_window, else 512 (Gemma 3 270M's config); the
 * embedding scaled by sqrt(n_embd) in f32, the query by 1/sqrt(head_dim)
 * (the key length, read_shape), gelu_tanh, and the post norms. The Gemma
 * norm weights come with 1 added, the value bn stores (formats/embedding.md);
 * the projections' input norms are plain. */
static int read_gemma3(const bn_source *s, const bn_meta *raw, const char *arch, bn_hparams *hp, const char *name,
                       bn_err *e)
{
    hp->act_gelu = 1;
    hp->act_silu = 0;
    hp->embd_scale = sqrtf((float)hp->n_embd);
    /* llama.cpp's gemma3 graph needs both post norms in every layer */
    if (!bn_source_find(s, "blk.0.post_attention_norm.weight") || !bn_source_find(s, "blk.0.post_ffw_norm.weight"))
        return bn_fail(e, "%s: a gemma3 model needs blk.N.post_attention_norm.weight and blk.N.post_ffw_norm.weight",
                       name);
    hp->post_norms = 1;
    const uint32_t pattern = 6;
    hp->swa = 512;
    hp->swa_theta = 10000.0f;
    if (get_u32(raw, arch, "attention.sliding_window", &hp->swa, 0, name, e) < 0 ||
        get_f32(raw, arch, "rope.freq_base_swa", &hp->swa_theta, 0, name, e) < 0)
        return -1;
    if (!hp->swa)
        return bn_fail(e, "%s: %s.attention.sliding_window is 0", name, arch);
    for (uint32_t l = 0; l < hp->n_layer && l < BN_MAX_LAYERS; l++)
        if ((l + 1) % pattern)
            hp->swa_layers[l / 64] |= 1ull << (l % 64);
    return 0;
}

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
                       "%s: architecture '%s' is not supported (bitnet-b1.58, bitnet-25, bitnet, ternary "
                       "llama, qwen3 or gemma3 expected)",
                       name, arch);
    if (bitnet_layer(raw, arch, &ai, name, e))
        return -1;
    bn_hparams hp;
    memset(&hp, 0, sizeof hp);
    snprintf(hp.arch, sizeof hp.arch, "%s", ai.canon);
    hp.rope_neox = ai.rope_neox;
    hp.act_silu = ai.act_silu;
    hp.sub_norms = ai.sub_norms;
    hp.tied = !has_output;
    hp.ternary_recip = bn_source_has_float_projection(s); /* as for every source (hf.c) */
    if (read_shape(raw, arch, embd_rows, &hp, name, e) || read_tokens(raw, &hp, name, e) ||
        read_embedding(s, raw, arch, &hp, name, e) || (ai.gemma && read_gemma3(s, raw, arch, &hp, name, e)))
        return -1;
    const char *gname = bn_meta_str(raw, "general.name");
    const bn_kv *tmpl = bn_meta_get(raw, "tokenizer.chat_template");
    if (bn_hparams_to_meta(&hp, m) || (gname && bn_meta_set_str(m, "general.name", gname)) ||
        (tmpl && tmpl->type == BN_V_STR && bn_meta_set_strn(m, "chat.template", tmpl->data, (size_t)tmpl->count)) ||
        bn_meta_set_str(m, "chat.format", chat_format(raw, &ai)) ||
        bn_meta_set_str(m, "provenance.source_format", "gguf"))
        return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", name);
    return tokenizer_section(m, raw, name, e);
}
