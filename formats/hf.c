/* hf.c — Hugging Face checkpoint directories: config.json, one or more
 * .safetensors shards, tokenizer files. Presents the model canonically:
 * GGUF-style tensor names, packed ternary weights as `t2`, hyper-parameters
 * under the model.* keys (formats/bn-model.md). */
#include "formats.h"
#include "jsonfile.h"

#include "tok_section.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* PLUS_ONE: a Gemma norm weight w stored as 1 + w in f32 (Gemma3RMSNorm
 * multiplies by 1 + w, computed in f32), so bn's RMSNorm runs it as is. */
enum recipe_kind { COPY, UNPACK_PACKED, ONES, PLUS_ONE };

typedef struct recipe {
    int kind;
    uint32_t shard, src;       /* the weight */
    uint32_t scale_shard, scale_src; /* UNPACK_PACKED: its weight_scale */
} recipe;

typedef struct hf_impl {
    bn_source *shards;
    size_t n_shards;
    recipe *recipes;
    int divide_scale; /* bitlinear: value = code / weight_scale */
    int gemma;        /* Gemma 3 names and norms */
    int bare;         /* a base model saved on its own: names without "model." */
    int tie_unsaid;    /* config.json has no tie_word_embeddings */
    cJSON *keep_float; /* quantization_config.modules_to_not_convert, when a list */
    uint8_t *scratch;
    size_t scratch_cap;
} hf_impl;

/* ------------------------------------------------------------- names */

static const struct {
    const char *hf, *bn;
} layer_names[] = {
    {"input_layernorm.weight", "attn_norm.weight"},
    {"self_attn.q_proj.weight", "attn_q.weight"},
    {"self_attn.k_proj.weight", "attn_k.weight"},
    {"self_attn.v_proj.weight", "attn_v.weight"},
    {"self_attn.o_proj.weight", "attn_output.weight"},
    {"self_attn.attn_sub_norm.weight", "attn_sub_norm.weight"},
    {"self_attn.inner_attn_ln.weight", "attn_sub_norm.weight"}, /* 1bitLLM */
    {"post_attention_layernorm.weight", "ffn_norm.weight"},
    {"mlp.gate_proj.weight", "ffn_gate.weight"},
    {"mlp.up_proj.weight", "ffn_up.weight"},
    {"mlp.down_proj.weight", "ffn_down.weight"},
    {"mlp.ffn_sub_norm.weight", "ffn_sub_norm.weight"},
    {"mlp.ffn_layernorm.weight", "ffn_sub_norm.weight"}, /* 1bitLLM */
    /* quantization_config.use_rms_norm: each BitLinear's own input norm */
    {"self_attn.q_proj.rms_norm.weight", "attn_q_in_norm.weight"},
    {"self_attn.k_proj.rms_norm.weight", "attn_k_in_norm.weight"},
    {"self_attn.v_proj.rms_norm.weight", "attn_v_in_norm.weight"},
    {"self_attn.o_proj.rms_norm.weight", "attn_output_in_norm.weight"},
    {"mlp.gate_proj.rms_norm.weight", "ffn_gate_in_norm.weight"},
    {"mlp.up_proj.rms_norm.weight", "ffn_up_in_norm.weight"},
    {"mlp.down_proj.rms_norm.weight", "ffn_down_in_norm.weight"},
    /* BitNet embedding models (bitnet.cpp's convert-bitnet-embedding-to-gguf.py):
     * the same per-projection input norm, named <proj>.norm.weight */
    {"self_attn.q_proj.norm.weight", "attn_q_in_norm.weight"},
    {"self_attn.k_proj.norm.weight", "attn_k_in_norm.weight"},
    {"self_attn.v_proj.norm.weight", "attn_v_in_norm.weight"},
    {"self_attn.o_proj.norm.weight", "attn_output_in_norm.weight"},
    {"mlp.gate_proj.norm.weight", "ffn_gate_in_norm.weight"},
    {"mlp.up_proj.norm.weight", "ffn_up_in_norm.weight"},
    {"mlp.down_proj.norm.weight", "ffn_down_in_norm.weight"},
    /* Qwen3: RMSNorm of each query and key head (model.qk_norm) */
    {"self_attn.q_norm.weight", "attn_q_norm.weight"},
    {"self_attn.k_norm.weight", "attn_k_norm.weight"},
};

/* Gemma 3: the attention output and the FFN are normed on their way out
 * (post_*), the FFN input by pre_feedforward_layernorm. */
static const char *const gemma_names[][2] = {
    {"post_attention_layernorm.weight", "post_attention_norm.weight"},
    {"pre_feedforward_layernorm.weight", "ffn_norm.weight"},
    {"post_feedforward_layernorm.weight", "post_ffw_norm.weight"},
};

/* Maps an HF tensor name to the canonical one. Returns 1 mapped, 0 to be
 * ignored (buffers HF recomputes), -1 unknown. */
static int map_name(const char *hf, char *out, size_t n, int gemma)
{
    /* A base model saved on its own (transformers' AutoModel, e.g.
     * Qwen3Model: sentence-transformers checkpoints) has no "model." prefix. */
    char full[BN_NAME_MAX + 8];
    if (strncmp(hf, "model.", 6) && strcmp(hf, "lm_head.weight")) {
        snprintf(full, sizeof full, "model.%s", hf);
        hf = full;
    }
    if (!strcmp(hf, "model.embed_tokens.weight"))
        return snprintf(out, n, "token_embd.weight"), 1;
    if (!strcmp(hf, "model.norm.weight"))
        return snprintf(out, n, "output_norm.weight"), 1;
    if (!strcmp(hf, "lm_head.weight"))
        return snprintf(out, n, "output.weight"), 1;
    unsigned layer;
    int used = 0;
    if (sscanf(hf, "model.layers.%u.%n", &layer, &used) == 1 && used > 0) {
        const char *rest = hf + used;
        if (strstr(rest, "rotary_emb.inv_freq"))
            return 0;
        for (size_t i = 0; gemma && i < sizeof gemma_names / sizeof *gemma_names; i++)
            if (!strcmp(rest, gemma_names[i][0]))
                return snprintf(out, n, "blk.%u.%s", layer, gemma_names[i][1]), 1;
        for (size_t i = 0; i < sizeof layer_names / sizeof *layer_names; i++)
            if (!strcmp(rest, layer_names[i].hf))
                return snprintf(out, n, "blk.%u.%s", layer, layer_names[i].bn), 1;
    }
    return -1;
}

/* The HF name of canonical tensor `name` for messages: the shard's own
 * spelling when the checkpoint holds it, else the first spelling map_name
 * reads. */
static void hf_name_of(const bn_source *s, const char *name, char *buf, size_t n)
{
    const hf_impl *hi = s->impl;
    int i = bn_source_find_index(s, name);
    if (i >= 0 && hi->recipes[i].kind != ONES) {
        snprintf(buf, n, "%s", hi->shards[hi->recipes[i].shard].tensors[hi->recipes[i].src].name);
        return;
    }
    static const char *const whole[][2] = {
        {"model.embed_tokens.weight", "token_embd.weight"},
        {"model.norm.weight", "output_norm.weight"},
        {"lm_head.weight", "output.weight"},
    };
    for (size_t k = 0; k < sizeof whole / sizeof *whole; k++)
        if (!strcmp(name, whole[k][1])) {
            snprintf(buf, n, "%s", whole[k][0]);
            return;
        }
    unsigned layer;
    int used = 0;
    if (sscanf(name, "blk.%u.%n", &layer, &used) == 1 && used > 0) {
        const char *rest = name + used;
        for (size_t k = 0; hi->gemma && k < sizeof gemma_names / sizeof *gemma_names; k++)
            if (!strcmp(rest, gemma_names[k][1])) {
                snprintf(buf, n, "model.layers.%u.%s", layer, gemma_names[k][0]);
                return;
            }
        for (size_t k = 0; k < sizeof layer_names / sizeof *layer_names; k++)
            if (!strcmp(rest, layer_names[k].bn)) {
                snprintf(buf, n, "model.layers.%u.%s", layer, layer_names[k].hf);
                return;
            }
    }
    snprintf(buf, n, "%s", name);
}

/* bn_source's own_name: hf_name_of, without "model." for a bare base model. */
static void hf_own_name(const bn_source *s, const char *name, char *buf, size_t n)
{
    const hf_impl *hi = s->impl;
    hf_name_of(s, name, buf, n);
    if (hi->bare && !strncmp(buf, "model.", 6))
        memmove(buf, buf + 6, strlen(buf + 6) + 1);
}

/* ------------------------------------------------------------- config */

static int cfg_u32(const cJSON *cfg, const char *key, uint32_t *out, const char *name, bn_err *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (!v)
        return bn_fail(e, "%s: config.json lacks '%s'", name, key);
    if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > 4e9 || v->valuedouble != floor(v->valuedouble))
        return bn_fail(e, "%s: config.json '%s' must be a positive integer", name, key);
    *out = (uint32_t)v->valuedouble;
    return 0;
}

/* A token id from a config file: a number that fits int32, else -1 (none).
 * Casting an arbitrary JSON double (1e300, -5e9) to int32 is undefined. */
static int32_t json_id32(const cJSON *v)
{
    return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= INT32_MAX ? (int32_t)v->valuedouble : -1;
}

static double cfg_num(const cJSON *cfg, const char *key, double dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

static const char *cfg_str(const cJSON *cfg, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Gemma 3's own settings: the embedding scale (sqrt(hidden) in f32, as
 * llama.cpp's gemma3 graph, which bitnet.cpp runs, applies it; transformers
 * in bf16 multiplies by the bf16 rounding of it, 0.2% less for 640),
 * sliding-window layers (layer_types, else every sliding_window_pattern-th
 * layer full) with their own RoPE base (rope_local_base_freq, or
 * rope_parameters' sliding_attention in newer configs), and what bn does
 * not run, refused by name: a query scale other than 1/sqrt(head_dim),
 * logit soft-capping, bidirectional attention. */
static int read_gemma3(const cJSON *cfg, bn_hparams *hp, const char *path, bn_err *e)
{
    hp->embd_scale = sqrtf((float)hp->n_embd);
    double qs = cfg_num(cfg, "query_pre_attn_scalar", hp->head_dim);
    if (qs != hp->head_dim)
        return bn_fail_code(e, BN_E_UNSUPPORTED, "%s: query_pre_attn_scalar %g differs from head_dim %u", path, qs,
                            hp->head_dim);
    static const char *const off[] = {"attn_logit_softcapping", "final_logit_softcapping",
                                      "use_bidirectional_attention"};
    for (size_t i = 0; i < sizeof off / sizeof *off; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, off[i]);
        if (v && !cJSON_IsNull(v) && !cJSON_IsFalse(v))
            return bn_fail_code(e, BN_E_UNSUPPORTED, "%s: %s is not supported", path, off[i]);
    }
    const cJSON *rp = cJSON_GetObjectItemCaseSensitive(cfg, "rope_parameters");
    const cJSON *full = rp ? cJSON_GetObjectItemCaseSensitive(rp, "full_attention") : NULL;
    const cJSON *slide = rp ? cJSON_GetObjectItemCaseSensitive(rp, "sliding_attention") : NULL;
    /* a scaled RoPE there (Gemma 3 4B's linear factor 8) is not run: refused, as in rope_scaling */
    const cJSON *kinds[] = {full, slide};
    for (size_t i = 0; i < 2; i++) {
        const char *kind = cfg_str(kinds[i], "rope_type");
        if (kind && strcmp(kind, "default"))
            return bn_fail_code(e, BN_E_UNSUPPORTED, "%s: rope_parameters' %s rope_type '%s' is not supported",
                                path, i ? "sliding_attention" : "full_attention", kind);
    }
    hp->rope_theta = (float)cfg_num(full, "rope_theta", cfg_num(cfg, "rope_theta", 1e6));
    hp->swa_theta = (float)cfg_num(slide, "rope_theta", cfg_num(cfg, "rope_local_base_freq", 1e4));
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(cfg, "sliding_window");
    if (!w || cJSON_IsNull(w))
        return 0;
    if (cfg_u32(cfg, "sliding_window", &hp->swa, path, e))
        return -1;
    const cJSON *types = cJSON_GetObjectItemCaseSensitive(cfg, "layer_types");
    double pattern = cfg_num(cfg, "sliding_window_pattern", cfg_num(cfg, "_sliding_window_pattern", 6));
    if (types && cJSON_GetArraySize(types) != (int)hp->n_layer)
        return bn_fail(e, "%s: layer_types has %d entries for %u layers", path, cJSON_GetArraySize(types),
                       hp->n_layer);
    if (!types && !(pattern >= 1 && pattern <= BN_MAX_LAYERS))
        return bn_fail(e, "%s: sliding_window_pattern %g is out of range", path, pattern);
    for (uint32_t l = 0; l < hp->n_layer; l++) {
        const char *t = types ? cJSON_GetStringValue(cJSON_GetArrayItem(types, (int)l)) : NULL;
        if (types && (!t || (strcmp(t, "sliding_attention") && strcmp(t, "full_attention"))))
            return bn_fail(e, "%s: layer_types[%u] must be sliding_attention or full_attention", path, l);
        int slides = types ? !strcmp(t, "sliding_attention") : (l + 1) % (uint32_t)pattern != 0;
        if (slides)
            hp->swa_layers[l / 64] |= 1ull << (l % 64);
    }
    return 0;
}

/* Reads config.json into hyper-parameters; also decides the scale convention. */
static int read_config(const char *dir, bn_hparams *hp, hf_impl *hi, int *packed_expected, bn_meta *meta, bn_err *e)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    cJSON *cfg = NULL;
    /* a directory without one is no checkpoint (damaged or not a model),
     * not a file that could not be read */
    if (access(path, F_OK) && errno == ENOENT)
        return bn_fail_code(e, BN_E_FORMAT, "%s: not a model: a directory without config.json", dir);
    if (bn_json_load_opts(path, 1, &cfg, e))
        return -1;
    int rc = -1;
    memset(hp, 0, sizeof *hp);
    const cJSON *archs = cJSON_GetObjectItemCaseSensitive(cfg, "architectures");
    const char *arch = cJSON_IsArray(archs) && cJSON_IsString(cJSON_GetArrayItem(archs, 0))
                           ? cJSON_GetArrayItem(archs, 0)->valuestring
                           : NULL;
    const char *model_type = cfg_str(cfg, "model_type");
    const char *act = cfg_str(cfg, "hidden_act");
    if (!act)
        act = cfg_str(cfg, "hidden_activation"); /* Gemma's name */
    if (!arch) {
        bn_fail(e, "%s: config.json lacks 'architectures'", path);
        goto out;
    }
    if (!strcmp(arch, "BitNetForCausalLM")) {
        snprintf(hp->arch, sizeof hp->arch, "bitnet-b1.58");
        hp->sub_norms = 1;
    } else if (!strcmp(arch, "BitnetForCausalLM")) {
        /* 1bitLLM's modeling_bitnet.py (formats/1bitllm.md) */
        snprintf(hp->arch, sizeof hp->arch, "bitnet");
        hp->sub_norms = 1;
    } else if (!strcmp(arch, "LlamaForCausalLM")) {
        snprintf(hp->arch, sizeof hp->arch, "llama");
        hp->sub_norms = 0;
    } else if (!strcmp(arch, "Gemma3TextModel") || !strcmp(arch, "Gemma3ForCausalLM")) {
        /* Gemma 3's text model (BitNet-embedding-270M's backbone):
         * q/k head norms, post-attention and post-FFN norms, embedding
         * scaled by sqrt(hidden), sliding-window layers (read below) */
        snprintf(hp->arch, sizeof hp->arch, "gemma3");
        hp->sub_norms = 0;
        hp->qk_norm = 1;
        hp->post_norms = 1;
    } else if (!strcmp(arch, "Qwen3Model") || !strcmp(arch, "Qwen3ForCausalLM")) {
        /* Qwen3 (BitNet-embedding-0.6B's backbone): Llama's layer with an
         * RMSNorm of each query and key head before RoPE */
        snprintf(hp->arch, sizeof hp->arch, "qwen3");
        hp->sub_norms = 0;
        hp->qk_norm = 1;
    } else {
        bn_fail(e, "%s: unsupported architecture '%s' (BitNetForCausalLM, BitnetForCausalLM and ternary "
                   "LlamaForCausalLM, Qwen3Model, Qwen3ForCausalLM, Gemma3TextModel, Gemma3ForCausalLM are "
                   "supported)", path, arch);
        goto out;
    }
    if (!act) /* the config classes' defaults (Gemma3TextConfig: hidden_activation) */
        act = !strcmp(hp->arch, "bitnet-b1.58") ? "relu2" : !strcmp(hp->arch, "gemma3") ? "gelu_pytorch_tanh" : "silu";
    if (!strcmp(act, "relu2"))
        hp->act_silu = 0;
    else if (!strcmp(act, "silu") || !strcmp(act, "swish"))
        hp->act_silu = 1;
    else if (!strcmp(act, "gelu_pytorch_tanh"))
        hp->act_gelu = 1;
    else {
        bn_fail(e, "%s: unsupported hidden_act '%s' (relu2, silu and gelu_pytorch_tanh are supported)", path, act);
        goto out;
    }
    if (cfg_u32(cfg, "vocab_size", &hp->n_vocab, path, e) || cfg_u32(cfg, "hidden_size", &hp->n_embd, path, e) ||
        cfg_u32(cfg, "intermediate_size", &hp->n_ff, path, e) ||
        cfg_u32(cfg, "num_hidden_layers", &hp->n_layer, path, e) ||
        cfg_u32(cfg, "num_attention_heads", &hp->n_head, path, e))
        goto out;
    hp->n_head_kv = hp->n_head;
    if (cJSON_GetObjectItemCaseSensitive(cfg, "num_key_value_heads") &&
        cfg_u32(cfg, "num_key_value_heads", &hp->n_head_kv, path, e))
        goto out;
    const cJSON *hd = cJSON_GetObjectItemCaseSensitive(cfg, "head_dim");
    if (hd && !cJSON_IsNull(hd)) { /* null: hidden / heads, as LlamaConfig */
        if (cfg_u32(cfg, "head_dim", &hp->head_dim, path, e))
            goto out;
    } else {
        if (hp->n_embd % hp->n_head) {
            bn_fail(e, "%s: hidden_size %u is not a multiple of num_attention_heads %u", path, hp->n_embd,
                    hp->n_head);
            goto out;
        }
        hp->head_dim = hp->n_embd / hp->n_head;
    }
    hp->n_ctx = 2048;
    if (cJSON_GetObjectItemCaseSensitive(cfg, "max_position_embeddings") &&
        cfg_u32(cfg, "max_position_embeddings", &hp->n_ctx, path, e))
        goto out;
    /* A key the config leaves out takes its transformers config class's
     * default: BitNetConfig's eps 1e-5 and theta 500000; LlamaConfig's
     * (also 1bitLLM's and Qwen3Config's) 1e-6 and 10000. transformers 5
     * writes theta and the scaling inside rope_parameters instead of
     * rope_theta / rope_scaling (Gemma 3's per attention kind: read_gemma3). */
    int bitnet = !strcmp(hp->arch, "bitnet-b1.58");
    /* a float setting given as anything but a number ("10000") is refused:
     * read as absent it would be the default, and the logits wrong */
    static const char *const floats[] = {"rope_theta", "rms_norm_eps", "rope_local_base_freq",
                                         "query_pre_attn_scalar", "_sliding_window_pattern"};
    for (size_t i = 0; i < sizeof floats / sizeof *floats; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, floats[i]);
        if (v && !cJSON_IsNull(v) && !cJSON_IsNumber(v)) {
            bn_fail(e, "%s: %s must be a number", path, floats[i]);
            goto out;
        }
    }
    const cJSON *rp = cJSON_GetObjectItemCaseSensitive(cfg, "rope_parameters");
    if (!cJSON_IsObject(rp) || cJSON_GetObjectItemCaseSensitive(rp, "full_attention"))
        rp = NULL;
    hp->rope_theta = (float)cfg_num(cfg, "rope_theta", cfg_num(rp, "rope_theta", bitnet ? 500000.0 : 10000.0));
    hp->norm_eps = (float)cfg_num(cfg, "rms_norm_eps", bitnet ? 1e-5 : 1e-6);
    const cJSON *scaling = cJSON_GetObjectItemCaseSensitive(cfg, "rope_scaling");
    if ((!scaling || cJSON_IsNull(scaling)) && cfg_str(rp, "rope_type"))
        scaling = rp;
    /* transformers names the kind rope_type (older configs: type);
     * "default" is plain RoPE said outright */
    const char *kind = !scaling ? NULL : cfg_str(scaling, "rope_type") ? cfg_str(scaling, "rope_type")
                                                                          : cfg_str(scaling, "type");
    /* linear scaling by 1 is plain RoPE (transformers divides positions by 1) */
    int linear_1 = kind && !strcmp(kind, "linear") && cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(scaling, "factor")) &&
                   cfg_num(scaling, "factor", 0) == 1.0;
    if (scaling && !cJSON_IsNull(scaling) && !(kind && !strcmp(kind, "default")) && !linear_1) {
        if (!kind || strcmp(kind, "llama3")) {
            bn_fail(e, "%s: rope_scaling of type '%s' is not supported (llama3 is)", path, kind ? kind : "?");
            goto out;
        }
        hp->rope_llama3 = 1;
        hp->rope_factor = (float)cfg_num(scaling, "factor", 0);
        hp->rope_low_freq = (float)cfg_num(scaling, "low_freq_factor", 0);
        hp->rope_high_freq = (float)cfg_num(scaling, "high_freq_factor", 0);
        double orig = cfg_num(scaling, "original_max_position_embeddings", 0);
        hp->rope_orig_ctx = orig >= 1 && orig <= 4e9 ? (uint32_t)orig : 0;
        if (!(hp->rope_factor > 0) || !(hp->rope_low_freq > 0) || !(hp->rope_high_freq > hp->rope_low_freq) ||
            !hp->rope_orig_ctx) {
            bn_fail(e, "%s: rope_scaling needs factor > 0, 0 < low_freq_factor < high_freq_factor and "
                       "original_max_position_embeddings", path);
            goto out;
        }
    }
    if (!strcmp(hp->arch, "gemma3") && read_gemma3(cfg, hp, path, e))
        goto out;
    /* Tied: the head is the embedding, a stored lm_head.weight ignored
     * (transformers ties them after loading). Left out, the config class's
     * default: Gemma3TextConfig ties, BitNetConfig, LlamaConfig and
     * Qwen3Config do not (bn_hf_open: unless no head is stored). */
    const cJSON *tie = cJSON_GetObjectItemCaseSensitive(cfg, "tie_word_embeddings");
    hi->tie_unsaid = !tie || cJSON_IsNull(tie);
    hp->tied = hi->tie_unsaid ? !strcmp(hp->arch, "gemma3") : cJSON_IsTrue(tie);
    /* HF checkpoints keep Q/K in HF order, so RoPE pairs (i, i+d/2). */
    hp->rope_neox = 1;
    const cJSON *bos = cJSON_GetObjectItemCaseSensitive(cfg, "bos_token_id");
    const cJSON *eos = cJSON_GetObjectItemCaseSensitive(cfg, "eos_token_id");
    hp->bos_id = json_id32(bos);
    if (cJSON_IsArray(eos))
        eos = cJSON_GetArrayItem(eos, 0);
    hp->eos_id = json_id32(eos);
    const cJSON *pad = cJSON_GetObjectItemCaseSensitive(cfg, "pad_token_id");
    hp->pad_id = json_id32(pad);
    hp->add_bos = hp->bos_id >= 0;

    /* The packed weight_scale convention (formats.md §0 note): do what
     * transformers does with this config. */
    const cJSON *qc = cJSON_GetObjectItemCaseSensitive(cfg, "quantization_config");
    const char *lc = qc ? cfg_str(qc, "linear_class") : NULL;
    const char *mode = qc ? cfg_str(qc, "quantization_mode") : NULL;
    /* use_rms_norm: transformers' BitLinear and AutoBitLinear (either class)
     * then apply an RMSNorm over in_features with a weight (stored as
     * <proj>.rms_norm.weight, else its initial ones) and eps
     * quantization_config.rms_norm_eps (default 1e-6), to the input of
     * every converted projection before the int8 quantization. */
    const cJSON *use_norm = qc ? cJSON_GetObjectItemCaseSensitive(qc, "use_rms_norm") : NULL;
    if (cJSON_IsTrue(use_norm)) {
        hp->proj_norm = 1;
        hp->proj_norm_eps = (float)cfg_num(qc, "rms_norm_eps", 1e-6);
        if (!(hp->proj_norm_eps >= 0 && hp->proj_norm_eps <= 1)) {
            bn_fail(e, "%s: quantization_config.rms_norm_eps %g is out of range (0..1)", path, hp->proj_norm_eps);
            goto out;
        }
    }
    int autobit = lc && !strcmp(lc, "autobitlinear");
    *packed_expected = !autobit || (mode && !strcmp(mode, "offline"));
    hi->divide_scale = !(autobit && mode && !strcmp(mode, "offline"));
    const cJSON *keep = qc ? cJSON_GetObjectItemCaseSensitive(qc, "modules_to_not_convert") : NULL;
    if (keep && !cJSON_IsNull(keep)) {
        const cJSON *k;
        int strings = cJSON_IsArray(keep);
        cJSON_ArrayForEach(k, keep) strings &= cJSON_IsString(k);
        if (!strings) {
            bn_fail(e, "%s: quantization_config.modules_to_not_convert must be a list of names", path);
            goto out;
        }
        if (!(hi->keep_float = cJSON_Duplicate(keep, 1))) {
            bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", path);
            goto out;
        }
    }
    if (model_type)
        bn_meta_set_str(meta, "general.source_model_type", model_type);
    rc = 0;
out:
    cJSON_Delete(cfg);
    return rc;
}

/* A sentence-transformers embedding model (1_Pooling/config.json): the
 * pooling, and the token every input ends with. Last-token pooling is the
 * one the BitNet embedding models use (with L2 normalization after it,
 * their model card); other modes are refused by name. The end token is
 * what the HF tokenizer appends (its post-processor), else the eos id:
 * last-token pooling reads the state at that token. */
static int read_pooling(const char *dir, const cJSON *tokenizer, bn_hparams *hp, bn_err *e)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/1_Pooling/config.json", dir);
    if (!bn_file_exists(path))
        return 0;
    cJSON *j = NULL;
    if (bn_json_load(path, &j, e))
        return -1;
    static const char *const other[] = {"pooling_mode_cls_token", "pooling_mode_mean_tokens",
                                        "pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens",
                                        "pooling_mode_weightedmean_tokens"};
    int rc = 0;
    for (size_t i = 0; i < sizeof other / sizeof *other && !rc; i++)
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, other[i])))
            rc = bn_fail_code(e, BN_E_UNSUPPORTED, "%s: %s is not supported (last-token pooling is)", path, other[i]);
    if (!rc && !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "pooling_mode_lasttoken")))
        rc = bn_fail_code(e, BN_E_UNSUPPORTED, "%s: no pooling mode bn knows (pooling_mode_lasttoken)", path);
    cJSON_Delete(j);
    if (rc)
        return rc;
    hp->pooling = BN_POOL_LAST;
    hp->embed_end_id = hp->eos_id;
    int32_t id = bn_hf_template_special(cJSON_GetObjectItemCaseSensitive(tokenizer, "post_processor"), 1);
    if (id >= 0)
        hp->embed_end_id = id;
    return 0;
}

/* Optional files: generation_config.json (stop ids), tokenizer_config.json
 * and chat_template.jinja (bn_hf_tokcfg_read), tokenizer.json (parsed by the caller; NULL when there is
 * none). Missing files are fine; malformed ones are errors. */
static int read_extras(const char *dir, const cJSON *tokenizer, bn_hparams *hp, bn_meta *meta, bn_err *e)
{
    char path[4096];
    cJSON *j = NULL;
    snprintf(path, sizeof path, "%s/generation_config.json", dir);
    if (bn_file_exists(path)) {
        if (bn_json_load(path, &j, e))
            return -1;
        const cJSON *eos = cJSON_GetObjectItemCaseSensitive(j, "eos_token_id");
        if (json_id32(eos) >= 0)
            hp->stop_ids[hp->n_stop++] = json_id32(eos);
        else if (cJSON_IsArray(eos)) {
            const cJSON *v;
            cJSON_ArrayForEach(v, eos) if (json_id32(v) >= 0 && hp->n_stop < BN_MAX_STOP)
                hp->stop_ids[hp->n_stop++] = json_id32(v);
        }
        cJSON_Delete(j);
        j = NULL;
    }
    if (hp->n_stop == 0 && hp->eos_id >= 0)
        hp->stop_ids[hp->n_stop++] = hp->eos_id;
    /* Whether a BOS starts every text, and which, is the HF tokenizer's
     * doing: its post-processor's template (config.json's bos_token_id
     * names an id, Qwen3's too, that its tokenizer never adds, and may name
     * another than the template's); tokenizer_config's add_bos_token,
     * below, overrides whether, as transformers' Llama tokenizers do. */
    if (tokenizer) {
        int32_t bos = bn_hf_template_special(cJSON_GetObjectItemCaseSensitive(tokenizer, "post_processor"), 0);
        if (bos >= 0)
            hp->bos_id = bos;
        hp->add_bos = bos >= 0;
    }
    bn_hf_tokcfg tc;
    if (bn_hf_tokcfg_read(dir, &tc, e))
        return -1;
    int oom = (tc.chat_template && bn_meta_set_str(meta, "chat.template", tc.chat_template)) ||
              bn_meta_set_str(meta, "chat.format", bn_chat_format_of_template(tc.chat_template));
    if (tc.add_bos >= 0)
        hp->add_bos = tc.add_bos && hp->bos_id >= 0;
    bn_hf_tokcfg_free(&tc);
    if (oom)
        return bn_fail_code(e, BN_E_NOMEM, "out of memory");
    return read_pooling(dir, tokenizer, hp, e);
}

/* ------------------------------------------------------------- shards */

static int open_shards(const char *dir, hf_impl *hi, bn_source *s, bn_err *e)
{
    char path[4096], single[4096];
    /* model.safetensors first, the index only without it, as transformers
     * looks for them: a directory holding both loads the same weights */
    snprintf(single, sizeof single, "%s/model.safetensors", dir);
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    if (!bn_file_exists(single) && bn_file_exists(path)) {
        cJSON *idx = NULL;
        if (bn_json_load(path, &idx, e))
            return -1;
        const cJSON *wm = cJSON_GetObjectItemCaseSensitive(idx, "weight_map");
        if (!cJSON_IsObject(wm)) {
            cJSON_Delete(idx);
            return bn_fail(e, "%s: no weight_map", path);
        }
        /* Distinct shard files, in first-seen order. */
        char **files = NULL;
        size_t nf = 0;
        const cJSON *v;
        int rc = 0;
        cJSON_ArrayForEach(v, wm)
        {
            if (!cJSON_IsString(v) || !*v->valuestring || strchr(v->valuestring, '/')) {
                rc = bn_fail(e, "%s: bad shard name for '%s'", path, v->string);
                break;
            }
            size_t k;
            for (k = 0; k < nf; k++)
                if (!strcmp(files[k], v->valuestring))
                    break;
            if (k == nf) {
                char **n2 = realloc(files, (nf + 1) * sizeof *n2);
                if (!n2) {
                    rc = bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", path);
                    break;
                }
                files = n2;
                files[nf++] = v->valuestring;
            }
        }
        if (!rc) {
            hi->shards = calloc(nf ? nf : 1, sizeof *hi->shards);
            if (!hi->shards)
                rc = bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", path);
            for (size_t k = 0; !rc && k < nf; k++) {
                char sp[4096];
                snprintf(sp, sizeof sp, "%s/%s", dir, files[k]);
                rc = bn_safetensors_open(&hi->shards[k], sp, e);
                if (!rc)
                    hi->n_shards++, rc = bn_source_add_file(s, sp, e);
            }
        }
        free(files);
        cJSON_Delete(idx);
        if (!rc && hi->n_shards == 0)
            rc = bn_fail(e, "%s: lists no shards", path);
        return rc ? rc : bn_source_add_file(s, path, e);
    }
    struct stat st;
    if (!stat(single, &st) && !S_ISREG(st.st_mode)) /* a directory, a device: named, not "missing" */
        return bn_fail(e, "%s: not a regular file", single);
    if (!bn_file_exists(single))
        return bn_fail(e, "%s: no model.safetensors or model.safetensors.index.json", dir);
    hi->shards = calloc(1, sizeof *hi->shards);
    if (!hi->shards)
        return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", dir);
    if (bn_safetensors_open(&hi->shards[0], single, e))
        return -1;
    hi->n_shards = 1;
    return bn_source_add_file(s, single, e);
}

/* ------------------------------------------------------------- reading */

static int scratch(hf_impl *hi, size_t n)
{
    if (n <= hi->scratch_cap)
        return 0;
    uint8_t *p = realloc(hi->scratch, n);
    if (!p)
        return -1;
    hi->scratch = p;
    hi->scratch_cap = n;
    return 0;
}

static int read_scale(hf_impl *hi, const recipe *r, float *out, const char *name, bn_err *e)
{
    bn_source *sh = &hi->shards[r->scale_shard];
    const bn_tensor *t = &sh->tensors[r->scale_src];
    uint8_t raw[8];
    if (t->size > sizeof raw || sh->read(sh, r->scale_src, raw, e))
        return bn_fail(e, "%s: cannot read '%s'", sh->name, t->name);
    float v;
    if (bn_to_f32(t->type, raw, &v, 1))
        return bn_fail(e, "%s: '%s' must be a float scalar", sh->name, t->name);
    if (!isfinite(v) || v == 0.0f)
        return bn_fail(e, "%s: '%s' is %g (a ternary scale must be finite and non-zero)", sh->name, t->name, v);
    *out = hi->divide_scale ? 1.0f / v : v;
    if (!isfinite(*out) || *out == 0.0f)
        return bn_fail(e, "%s: '%s' = %g gives an unusable scale", sh->name, t->name, v);
    (void)name;
    return 0;
}

/* HF packs [M/4, K] bytes: byte (p, c) holds rows p, p+M/4, p+M/2, p+3M/4 in
 * bit pairs 1:0, 3:2, 5:4, 7:6 as code w+1 (formats.md §2.1). Output row
 * r = p + q*M/4 is bit pair q of source row p: gathered four columns at a
 * time into one t2 byte, a loop the compiler vectorizes. */
static int unpack_packed(const uint8_t *src, uint64_t m4, uint64_t k, float beta, uint8_t *dst,
                         const char *file, const char *tname, bn_err *e)
{
    uint64_t row_bytes = (k + 3) / 4, m = m4 * 4, full = k / 4;
    for (uint64_t p = 0; p < m4; p++) {
        const uint8_t *s = src + p * k;
        /* Code 3 is invalid: it shows as both bits of a pair set. */
        uint8_t bad = 0;
        for (uint64_t c = 0; c < k; c++)
            bad |= s[c] & (s[c] >> 1) & 0x55;
        if (bad)
            for (uint64_t c = 0; c < k; c++)
                for (unsigned q = 0; q < 4; q++)
                    if (((s[c] >> (2 * q)) & 3) == 3)
                        return bn_fail(e, "%s: '%s' holds the invalid ternary code 3 at [%llu, %llu]", file, tname,
                                       (unsigned long long)(p + q * m4), (unsigned long long)c);
        for (unsigned q = 0; q < 4; q++) {
            uint8_t *d = dst + (p + q * m4) * row_bytes;
            unsigned sh = 2 * q;
            for (uint64_t j = 0; j < full; j++)
                d[j] = (uint8_t)(((s[4 * j] >> sh) & 3) | (((s[4 * j + 1] >> sh) & 3) << 2) |
                                 (((s[4 * j + 2] >> sh) & 3) << 4) | (((s[4 * j + 3] >> sh) & 3) << 6));
            if (full < row_bytes) { /* ragged K: pad with code 1 (zero) */
                uint8_t last = 0x55;
                for (uint64_t c = 4 * full; c < k; c++) {
                    unsigned at = 2 * (unsigned)(c - 4 * full);
                    last = (uint8_t)((last & ~(3u << at)) | (((s[c] >> sh) & 3u) << at));
                }
                d[full] = last;
            }
        }
    }
    memcpy(dst + m * row_bytes, &beta, 4);
    return 0;
}

static int hf_read(bn_source *s, size_t i, void *buf, bn_err *e)
{
    hf_impl *hi = s->impl;
    const recipe *r = &hi->recipes[i];
    bn_source *sh = &hi->shards[r->shard];
    if (r->kind == COPY)
        return sh->read(sh, r->src, buf, e);
    if (r->kind == PLUS_ONE) {
        const bn_tensor *st = &sh->tensors[r->src];
        float *out = buf;
        if (scratch(hi, st->size))
            return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", s->name);
        if (sh->read(sh, r->src, hi->scratch, e) || bn_to_f32(st->type, hi->scratch, out, st->shape[0]))
            return bn_fail(e, "%s: cannot read '%s'", s->name, st->name);
        for (uint64_t j = 0; j < st->shape[0]; j++)
            out[j] += 1.0f;
        return 0;
    }
    if (r->kind == ONES) {
        float one = 1.0f;
        for (uint64_t j = 0; j < s->tensors[i].shape[0]; j++)
            memcpy((float *)buf + j, &one, 4);
        return 0;
    }
    const bn_tensor *st = &sh->tensors[r->src];
    float beta = 0;
    if (read_scale(hi, r, &beta, s->name, e))
        return -1;
    if (scratch(hi, st->size))
        return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", s->name);
    if (sh->read(sh, r->src, hi->scratch, e))
        return -1;
    return unpack_packed(hi->scratch, st->shape[0], st->shape[1], beta, buf, sh->name, st->name, e);
}

static int hf_span(bn_source *s, size_t i, int *fd, uint64_t *off)
{
    hf_impl *hi = s->impl;
    const recipe *r = &hi->recipes[i];
    bn_source *sh = &hi->shards[r->shard];
    return r->kind == COPY && sh->span && sh->span(sh, r->src, fd, off);
}

static void hf_close(bn_source *s)
{
    hf_impl *hi = s->impl;
    if (!hi)
        return;
    for (size_t k = 0; k < hi->n_shards; k++)
        bn_source_close(&hi->shards[k]);
    free(hi->shards);
    free(hi->recipes);
    free(hi->scratch);
    cJSON_Delete(hi->keep_float);
    free(hi);
}

/* Adds a sentence to the source's provenance.note ("; " between them). */
static int add_note(bn_source *s, const char *text, bn_err *e)
{
    const char *had = bn_meta_str(&s->meta, "provenance.note");
    size_t n = (had ? strlen(had) + 2 : 0) + strlen(text) + 1;
    char *all = malloc(n);
    if (all)
        snprintf(all, n, "%s%s%s", had ? had : "", had ? "; " : "", text);
    int rc = !all || bn_meta_set_str(&s->meta, "provenance.note", all);
    free(all);
    return rc ? bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", s->name) : 0;
}

/* What transformers leaves as nn.Linear (quantization_config's
 * modules_to_not_convert: a name anywhere in a module's dotted path keeps
 * it float): a projection that stays float is one bn cannot run. */
static int check_keep_float(const bn_source *s, const hf_impl *hi, bn_err *e)
{
    const cJSON *k;
    cJSON_ArrayForEach(k, hi->keep_float)
    {
        for (size_t i = 0; i < s->n_tensors; i++) {
            if (!bn_tensor_is_projection(s->tensors[i].name))
                continue;
            const recipe *r = &hi->recipes[i]; /* a projection is always read from a shard */
            char own[BN_NAME_MAX];
            snprintf(own, sizeof own, "%s", hi->shards[r->shard].tensors[r->src].name);
            size_t l = strlen(own);
            if (l > 7 && !strcmp(own + l - 7, ".weight"))
                own[l - 7] = 0; /* the module */
            if (strstr(own, k->valuestring))
                return bn_fail(e, "%s: quantization_config.modules_to_not_convert keeps '%s' in floating point "
                                  "('%s'): bn runs ternary projections only",
                               s->name, own, k->valuestring);
        }
    }
    return 0;
}

/* Builds the canonical directory from the shards' tensors. */
static int build_directory(bn_source *s, hf_impl *hi, const bn_hparams *hp, int packed_expected, bn_err *e)
{
    size_t total = 0;
    for (size_t k = 0; k < hi->n_shards; k++)
        total += hi->shards[k].n_tensors;
    s->tensors = calloc(total ? total : 1, sizeof *s->tensors);
    hi->recipes = calloc(total ? total : 1, sizeof *hi->recipes);
    if (!s->tensors || !hi->recipes)
        return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", s->name);
    int saw_packed = 0, saw_float_proj = 0, unread_head = 0;
    size_t unread_norms = 0;
    for (size_t k = 0; k < hi->n_shards; k++) {
        bn_source *sh = &hi->shards[k];
        for (size_t j = 0; j < sh->n_tensors; j++) {
            const bn_tensor *st = &sh->tensors[j];
            size_t len = strlen(st->name);
            if (len > 13 && !strcmp(st->name + len - 13, ".weight_scale"))
                continue; /* consumed with its weight */
            char cname[BN_NAME_MAX];
            int m = map_name(st->name, cname, sizeof cname, hi->gemma);
            if (m > 0 && strncmp(st->name, "model.", 6) && strcmp(st->name, "lm_head.weight"))
                hi->bare = 1;
            if (m == 0)
                continue;
            /* What transformers does not load: a tied model's head (the
             * embedding is), and BitLinear norms without use_rms_norm
             * (the layers have none: unexpected keys) */
            if (m > 0 && hp->tied && !strcmp(cname, "output.weight")) {
                unread_head = 1;
                continue;
            }
            if (m > 0 && !hp->proj_norm && len > 16 && !strcmp(st->name + len - 16, ".rms_norm.weight")) {
                unread_norms++;
                continue;
            }
            if (m < 0)
                return bn_fail(e, "%s: unsupported tensor '%s'", sh->name, st->name);
            if (bn_source_find(s, cname))
                return bn_fail(e, "%s: tensor '%s' appears twice", s->name, st->name);
            bn_tensor *t = &s->tensors[s->n_tensors];
            recipe *r = &hi->recipes[s->n_tensors];
            *t = *st;
            snprintf(t->name, sizeof t->name, "%s", cname);
            t->data = NULL;
            t->has_hash = 0;
            r->kind = COPY;
            r->shard = (uint32_t)k;
            r->src = (uint32_t)j;
            if (bn_tensor_is_projection(cname) && st->type == BN_U8) {
                /* Packed ternary: find its weight_scale in any shard. */
                char scale_name[BN_NAME_MAX + 16];
                snprintf(scale_name, sizeof scale_name, "%s_scale", st->name);
                int found = 0;
                for (size_t k2 = 0; k2 < hi->n_shards && !found; k2++) {
                    int idx = bn_source_find_index(&hi->shards[k2], scale_name);
                    if (idx >= 0) {
                        r->scale_shard = (uint32_t)k2;
                        r->scale_src = (uint32_t)idx;
                        found = 1;
                    }
                }
                if (!found)
                    return bn_fail(e, "%s: packed weight '%s' has no '%s'", s->name, st->name, scale_name);
                const bn_tensor *sc = &hi->shards[r->scale_shard].tensors[r->scale_src];
                if (sc->shape[0] * (sc->ndim > 1 ? sc->shape[1] : 1) != 1 || sc->ndim > 2)
                    return bn_fail(e, "%s: '%s' must hold one value (per-tensor scale)", s->name, scale_name);
                if (st->ndim != 2)
                    return bn_fail(e, "%s: packed weight '%s' must be 2-D", s->name, st->name);
                r->kind = UNPACK_PACKED;
                t->type = BN_T2;
                t->shape[0] = st->shape[0] * 4;
                t->size = bn_type_size(BN_T2, 2, t->shape);
                saw_packed = 1;
            } else if (bn_tensor_is_projection(cname)) {
                if (st->type != BN_F32 && st->type != BN_F16 && st->type != BN_BF16)
                    return bn_fail(e, "%s: projection '%s' has an unsupported type %s", s->name, st->name,
                                   bn_type_name(st->type));
                saw_float_proj = 1;
            } else if (st->type != BN_F32 && st->type != BN_F16 && st->type != BN_BF16)
                return bn_fail(e, "%s: tensor '%s' must be a float tensor, not %s", s->name, st->name,
                               bn_type_name(st->type));
            else if (hi->gemma && st->ndim == 1 && strstr(cname, "norm.weight") && !strstr(cname, "_in_norm.")) {
                /* Gemma's own norms (not the BitLinear input norms, which
                 * are plain RMSNorm weights: bitnet.cpp's converter adds 1
                 * to all the others too) */
                r->kind = PLUS_ONE;
                t->type = BN_F32;
                t->size = 4 * st->shape[0];
            }
            t->src_index = (uint32_t)s->n_tensors;
            s->n_tensors++;
        }
    }
    if (saw_packed && saw_float_proj)
        return bn_fail(e, "%s: mixes packed and float projection weights", s->name);
    char note[96];
    snprintf(note, sizeof note, "%zu <proj>.rms_norm.weight not read (no use_rms_norm)", unread_norms);
    if ((saw_packed && !packed_expected && add_note(s, "packed weights under an online quantization_config", e)) ||
        (unread_head && add_note(s, "lm_head.weight not read (tie_word_embeddings)", e)) ||
        (unread_norms && add_note(s, note, e)))
        return -1;
    if (saw_packed)
        bn_meta_set_str(&s->meta, "provenance.scale_convention", hi->divide_scale ? "divide" : "multiply");
    return 0;
}

/* use_rms_norm checkpoints that do not store a projection's rms_norm.weight
 * get it as transformers leaves it, ones: added as f32 tensors after the
 * shards' own. A checkpoint holding some but not all is refused. */
static int add_missing_in_norms(bn_source *s, hf_impl *hi, const bn_hparams *hp, bn_err *e)
{
    size_t have = 0, need = (size_t)hp->n_layer * BN_N_PROJ;
    char n[BN_NAME_MAX];
    for (uint32_t l = 0; l < hp->n_layer; l++)
        for (int p = 0; p < BN_N_PROJ; p++) {
            snprintf(n, sizeof n, "blk.%u.%s_in_norm.weight", l, bn_proj_names[p]);
            have += bn_source_find(s, n) != NULL;
        }
    if (have == need)
        return 0;
    if (have)
        return bn_fail(e, "%s: holds %zu of the %zu projection rms_norm weights use_rms_norm needs", s->name,
                       have, need);
    bn_tensor *t = realloc(s->tensors, (s->n_tensors + need) * sizeof *t);
    if (t)
        s->tensors = t;
    recipe *r = realloc(hi->recipes, (s->n_tensors + need) * sizeof *r);
    if (r)
        hi->recipes = r;
    if (!t || !r)
        return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", s->name);
    uint64_t in[BN_N_PROJ] = {hp->n_embd, hp->n_embd, hp->n_embd, (uint64_t)hp->n_head * hp->head_dim,
                              hp->n_embd, hp->n_embd, hp->n_ff};
    for (uint32_t l = 0; l < hp->n_layer; l++)
        for (int p = 0; p < BN_N_PROJ; p++) {
            bn_tensor *nt = &s->tensors[s->n_tensors];
            memset(nt, 0, sizeof *nt);
            snprintf(nt->name, sizeof nt->name, "blk.%u.%s_in_norm.weight", l, bn_proj_names[p]);
            nt->type = BN_F32;
            nt->ndim = 1;
            nt->shape[0] = in[p];
            nt->size = 4 * in[p];
            nt->src_index = (uint32_t)s->n_tensors;
            hi->recipes[s->n_tensors] = (recipe){.kind = ONES};
            s->n_tensors++;
        }
    return add_note(s, "use_rms_norm without stored rms_norm weights: ones, as transformers initializes them", e);
}

int bn_hf_open(bn_source *s, const char *dir, bn_err *e)
{
    memset(s, 0, sizeof *s);
    s->name = strdup(dir);
    s->format = strdup("hf");
    hf_impl *hi = calloc(1, sizeof *hi);
    if (!s->name || !s->format || !hi) {
        free(hi);
        bn_source_close(s);
        return bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", dir);
    }
    s->impl = hi;
    s->read = hf_read;
    s->span = hf_span;
    s->close = hf_close;
    s->own_name = hf_own_name;
    bn_hparams hp;
    int packed_expected = 0;
    char path[4096];
    cJSON *tokj = NULL; /* tokenizer.json, parsed once for all its readers */
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    if (read_config(dir, &hp, hi, &packed_expected, &s->meta, e) ||
        (bn_file_exists(path) && bn_json_load(path, &tokj, e)) || read_extras(dir, tokj, &hp, &s->meta, e))
        goto fail;
    hi->gemma = !strcmp(hp.arch, "gemma3");
    if (open_shards(dir, hi, s, e) || build_directory(s, hi, &hp, packed_expected, e) || check_keep_float(s, hi, e))
        goto fail;
    /* provenance: every file whose bytes decide the model (the optional
     * ones give stop ids, BOS and the chat template); tokenizer.json below */
    static const char *const decide[] = {"config.json", "generation_config.json", "tokenizer_config.json",
                                         "chat_template.jinja"};
    for (size_t i = 0; i < sizeof decide / sizeof *decide; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, decide[i]);
        if ((i == 0 || bn_file_exists(path)) && bn_source_add_file(s, path, e))
            goto fail;
    }
    if (!hp.tied && hi->tie_unsaid && !bn_source_find(s, "output.weight"))
        hp.tied = 1; /* no head stored and none asked for: the embedding serves (transformers' would be random) */
    /* The BitNet embedding models' per-projection input norms
     * (<proj>.norm.weight) are applied though their configs name no
     * use_rms_norm (bitnet.cpp's converter maps them; their eps is not
     * written anywhere: the model's rms_norm_eps, formats/embedding.md).
     * transformers' <proj>.rms_norm.weight without use_rms_norm was left
     * out above. */
    if (!hp.proj_norm && bn_source_find(s, "blk.0.attn_q_in_norm.weight")) {
        hp.proj_norm = 1;
        hp.proj_norm_eps = hp.norm_eps;
    }
    if (hp.proj_norm && add_missing_in_norms(s, hi, &hp, e))
        goto fail;
    /* latent float weights become ternary as their trainers' weight_quant
     * does it (transformers' WeightQuant, 1bitLLM's utils_quant, bitnet.cpp's
     * converters): W * (1/beta), rounded (formats/bn-model.md §3.1) */
    hp.ternary_recip = bn_source_has_float_projection(s);
    if (bn_hparams_to_meta(&hp, &s->meta)) {
        bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", dir);
        goto fail;
    }
    bn_meta_set_str(&s->meta, "provenance.source_format", "hf");
    {
        bn_hparams check;
        if (bn_hparams_from_meta(&s->meta, &check, dir, e) || bn_hparams_check_tensors(&check, s, e))
            goto fail;
    }
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    if (tokj) {
        bn_meta *sect = calloc(1, sizeof *sect);
        int failed = !sect ? bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", dir)
                           : bn_tokenizer_section_from_hf(tokj, path, sect, e);
        cJSON_Delete(tokj);
        tokj = NULL;
        if (failed) {
            if (sect)
                bn_meta_free(sect);
            free(sect);
            /* A Gemma or 1bitLLM tokenizer of a shape bn does not encode
             * exactly (hf_spm.c refuses it by name; Gemma's and Llama 2's
             * own shapes it reads): the model converts without one, for
             * token ids. */
            if (!sect || !(hi->gemma || !strcmp(hp.arch, "bitnet")))
                goto fail;
            char note[sizeof e->msg + 96];
            snprintf(note, sizeof note, "no tokenizer: %s (give token ids)", e->msg);
            if (add_note(s, note, e))
                goto fail;
            return 0;
        }
        if (bn_meta_set_section(&s->meta, "tokenizer", sect)) {
            bn_fail_code(e, BN_E_NOMEM, "%s: out of memory", dir);
            goto fail;
        }
        if (bn_source_add_file(s, path, e))
            goto fail;
    }
    return 0;
fail:
    cJSON_Delete(tokj);
    bn_source_close(s);
    return -1;
}
