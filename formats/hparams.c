/* hparams.c — the forward pass's hyper-parameters, read from and written to
 * the canonical metadata keys (formats/bn-model.md §3.1), with checks that
 * name the key and the bad value. */
#include "formats.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static int need_u32(const bn_meta *m, const char *key, uint32_t lo, uint32_t hi, uint32_t *out, const char *name,
                    bn_err *e)
{
    if (!bn_meta_get(m, key))
        return bn_fail(e, "%s: missing metadata key '%s'", name, key);
    if (bn_meta_u32(m, key, out))
        return bn_fail(e, "%s: metadata '%s' is not an unsigned integer", name, key);
    if (*out < lo || *out > hi)
        return bn_fail(e, "%s: metadata '%s' = %u is out of range (%u..%u)", name, key, *out, lo, hi);
    return 0;
}

static int need_f32(const bn_meta *m, const char *key, double lo, double hi, float *out, const char *name,
                    bn_err *e)
{
    double v;
    if (!bn_meta_get(m, key))
        return bn_fail(e, "%s: missing metadata key '%s'", name, key);
    if (bn_meta_f64(m, key, &v))
        return bn_fail(e, "%s: metadata '%s' is not a number", name, key);
    if (!(v >= lo && v <= hi))
        return bn_fail(e, "%s: metadata '%s' = %g is out of range (%g..%g)", name, key, v, lo, hi);
    *out = (float)v;
    return 0;
}

static int need_bool(const bn_meta *m, const char *key, int *out, const char *name, bn_err *e)
{
    if (bn_meta_bool(m, key, out))
        return bn_fail(e, "%s: missing or non-boolean metadata key '%s'", name, key);
    return 0;
}

static int32_t opt_id(const bn_meta *m, const char *key)
{
    int64_t v;
    if (bn_meta_i64(m, key, &v) || v < -1 || v > INT32_MAX)
        return -1;
    return (int32_t)v;
}

int bn_hparams_from_meta(const bn_meta *m, bn_hparams *hp, const char *name, bn_err *e)
{
    memset(hp, 0, sizeof *hp);
    const char *arch = bn_meta_str(m, "general.architecture");
    size_t len = strlen(name);
    if (!arch && len > 12 && !strcmp(name + len - 12, ".safetensors")) /* tensors only: no config */
        return bn_fail(e, "%s: a safetensors file holds no model configuration: give its checkpoint directory "
                          "(with config.json)", name);
    if (!arch)
        return bn_fail(e, "%s: missing metadata key 'general.architecture'", name);
    if (strcmp(arch, "bitnet-b1.58") && strcmp(arch, "bitnet") && strcmp(arch, "llama") && strcmp(arch, "qwen3") &&
        strcmp(arch, "gemma3"))
        return bn_fail_code(e, BN_E_UNSUPPORTED,
                            "%s: unsupported architecture '%s' (bitnet-b1.58, bitnet, llama, qwen3, gemma3 are known)",
                            name, arch);
    snprintf(hp->arch, sizeof hp->arch, "%s", arch);
    const uint32_t big = 1u << 24;
    if (need_u32(m, "model.vocab_size", 1, 1u << 22, &hp->n_vocab, name, e) ||
        need_u32(m, "model.context_length", 1, big, &hp->n_ctx, name, e) ||
        need_u32(m, "model.embedding_length", 1, 1u << 17, &hp->n_embd, name, e) ||
        need_u32(m, "model.feed_forward_length", 1, 1u << 19, &hp->n_ff, name, e) ||
        need_u32(m, "model.block_count", 1, BN_MAX_LAYERS, &hp->n_layer, name, e) ||
        need_u32(m, "model.head_count", 1, 4096, &hp->n_head, name, e) ||
        need_u32(m, "model.head_count_kv", 1, 4096, &hp->n_head_kv, name, e) ||
        need_u32(m, "model.head_dim", 2, 4096, &hp->head_dim, name, e) ||
        need_f32(m, "model.rope_theta", 1e-3, 1e12, &hp->rope_theta, name, e) ||
        need_f32(m, "model.norm_eps", 0, 1, &hp->norm_eps, name, e) ||
        need_bool(m, "model.sub_norms", &hp->sub_norms, name, e) ||
        need_bool(m, "model.tied_embeddings", &hp->tied, name, e))
        return -1;
    if (hp->n_head % hp->n_head_kv)
        return bn_fail(e, "%s: head_count %u is not a multiple of head_count_kv %u", name, hp->n_head,
                       hp->n_head_kv);
    if (hp->head_dim % 2)
        return bn_fail(e, "%s: head_dim %u must be even for RoPE", name, hp->head_dim);
    const char *pair = bn_meta_str(m, "model.rope_pairing");
    if (!pair || (strcmp(pair, "neox") && strcmp(pair, "adjacent")))
        return bn_fail(e, "%s: metadata 'model.rope_pairing' must be 'neox' or 'adjacent'", name);
    hp->rope_neox = !strcmp(pair, "neox");
    /* Optional (absent: none), so files written before it still load. */
    if (bn_meta_get(m, "model.proj_norm") && need_bool(m, "model.proj_norm", &hp->proj_norm, name, e))
        return -1;
    if (hp->proj_norm && need_f32(m, "model.proj_norm_eps", 0, 1, &hp->proj_norm_eps, name, e))
        return -1;
    if (bn_meta_get(m, "model.ternary_rule")) {
        const char *rule = bn_meta_str(m, "model.ternary_rule");
        if (!rule || (strcmp(rule, "divide") && strcmp(rule, "reciprocal")))
            return bn_fail(e, "%s: metadata 'model.ternary_rule' must be 'divide' or 'reciprocal'", name);
        hp->ternary_recip = !strcmp(rule, "reciprocal");
    }
    if (bn_meta_get(m, "model.qk_norm") && need_bool(m, "model.qk_norm", &hp->qk_norm, name, e))
        return -1;
    hp->embed_end_id = -1;
    if (bn_meta_get(m, "model.pooling")) {
        const char *pool = bn_meta_str(m, "model.pooling");
        if (!pool || strcmp(pool, "last"))
            return bn_fail_code(e, BN_E_UNSUPPORTED, "%s: metadata 'model.pooling' must be 'last'", name);
        hp->pooling = BN_POOL_LAST;
        hp->embed_end_id = opt_id(m, "tokens.embed_end_id");
    }
    hp->embd_scale = 1;
    if (bn_meta_get(m, "model.embedding_scale") &&
        need_f32(m, "model.embedding_scale", 1e-6, 1e6, &hp->embd_scale, name, e))
        return -1;
    if (bn_meta_get(m, "model.post_norms") && need_bool(m, "model.post_norms", &hp->post_norms, name, e))
        return -1;
    if (bn_meta_get(m, "model.sliding_window")) {
        const bn_kv *sl = bn_meta_get(m, "model.sliding_layers");
        if (need_u32(m, "model.sliding_window", 1, big, &hp->swa, name, e) ||
            need_f32(m, "model.swa_theta", 1e-3, 1e12, &hp->swa_theta, name, e))
            return -1;
        if (!sl || sl->type != BN_V_ARR || sl->elem_type != BN_V_BOOL || sl->count != hp->n_layer)
            return bn_fail(e, "%s: metadata 'model.sliding_layers' must be %u booleans (one a layer)", name,
                           hp->n_layer);
        for (uint32_t l = 0; l < hp->n_layer; l++)
            if (((const uint8_t *)sl->data)[l])
                hp->swa_layers[l / 64] |= 1ull << (l % 64);
    }
    const char *scaling = bn_meta_str(m, "model.rope_scaling");
    if (bn_meta_get(m, "model.rope_scaling")) {
        if (!scaling || strcmp(scaling, "llama3"))
            return bn_fail_code(e, BN_E_UNSUPPORTED, "%s: metadata 'model.rope_scaling' must be 'llama3'", name);
        hp->rope_llama3 = 1;
        if (need_f32(m, "model.rope_scaling_factor", 1e-3, 1e6, &hp->rope_factor, name, e) ||
            need_f32(m, "model.rope_scaling_low_freq_factor", 1e-6, 1e6, &hp->rope_low_freq, name, e) ||
            need_f32(m, "model.rope_scaling_high_freq_factor", 1e-6, 1e6, &hp->rope_high_freq, name, e) ||
            need_u32(m, "model.rope_scaling_original_context", 1, big, &hp->rope_orig_ctx, name, e))
            return -1;
        if (!(hp->rope_high_freq > hp->rope_low_freq))
            return bn_fail(e, "%s: metadata 'model.rope_scaling_high_freq_factor' must exceed the low one", name);
    }
    const char *act = bn_meta_str(m, "model.ffn_activation");
    if (!act || (strcmp(act, "relu2") && strcmp(act, "silu") && strcmp(act, "gelu_tanh")))
        return bn_fail(e, "%s: metadata 'model.ffn_activation' must be 'relu2', 'silu' or 'gelu_tanh'", name);
    hp->act_silu = !strcmp(act, "silu");
    hp->act_gelu = !strcmp(act, "gelu_tanh");
    hp->bos_id = opt_id(m, "tokens.bos_id");
    hp->eos_id = opt_id(m, "tokens.eos_id");
    hp->pad_id = opt_id(m, "tokens.pad_id");
    int add_bos = 0;
    hp->add_bos = bn_meta_bool(m, "tokens.add_bos", &add_bos) ? hp->bos_id >= 0 : add_bos;
    const bn_kv *stops = bn_meta_get(m, "tokens.stop_ids");
    if (stops && stops->type == BN_V_ARR && stops->elem_type == BN_V_I32) {
        const int32_t *ids = stops->data;
        for (uint64_t i = 0; i < stops->count && hp->n_stop < BN_MAX_STOP; i++)
            if (ids[i] >= 0 && (uint32_t)ids[i] < hp->n_vocab)
                hp->stop_ids[hp->n_stop++] = ids[i];
    } else if (hp->eos_id >= 0)
        hp->stop_ids[hp->n_stop++] = hp->eos_id;
    int32_t ids[4] = {hp->bos_id, hp->eos_id, hp->pad_id, hp->embed_end_id};
    for (int i = 0; i < 4; i++)
        if (ids[i] >= 0 && (uint32_t)ids[i] >= hp->n_vocab)
            return bn_fail(e, "%s: special token id %d is outside the vocabulary (%u)", name, ids[i], hp->n_vocab);
    return 0;
}

int bn_hparams_to_meta(const bn_hparams *hp, bn_meta *m)
{
    int rc = 0;
    rc |= bn_meta_set_str(m, "general.architecture", hp->arch);
    rc |= bn_meta_set_u32(m, "model.vocab_size", hp->n_vocab);
    rc |= bn_meta_set_u32(m, "model.context_length", hp->n_ctx);
    rc |= bn_meta_set_u32(m, "model.embedding_length", hp->n_embd);
    rc |= bn_meta_set_u32(m, "model.feed_forward_length", hp->n_ff);
    rc |= bn_meta_set_u32(m, "model.block_count", hp->n_layer);
    rc |= bn_meta_set_u32(m, "model.head_count", hp->n_head);
    rc |= bn_meta_set_u32(m, "model.head_count_kv", hp->n_head_kv);
    rc |= bn_meta_set_u32(m, "model.head_dim", hp->head_dim);
    rc |= bn_meta_set_f32(m, "model.rope_theta", hp->rope_theta);
    rc |= bn_meta_set_str(m, "model.rope_pairing", hp->rope_neox ? "neox" : "adjacent");
    rc |= bn_meta_set_str(m, "model.ffn_activation", hp->act_gelu ? "gelu_tanh" : hp->act_silu ? "silu" : "relu2");
    rc |= bn_meta_set_bool(m, "model.sub_norms", hp->sub_norms);
    rc |= bn_meta_set_f32(m, "model.norm_eps", hp->norm_eps);
    rc |= bn_meta_set_bool(m, "model.tied_embeddings", hp->tied);
    if (hp->proj_norm) { /* written only when set: files without it stay as they were */
        rc |= bn_meta_set_bool(m, "model.proj_norm", 1);
        rc |= bn_meta_set_f32(m, "model.proj_norm_eps", hp->proj_norm_eps);
    }
    if (hp->qk_norm) /* written only when set, as model.proj_norm */
        rc |= bn_meta_set_bool(m, "model.qk_norm", 1);
    if (hp->ternary_recip) /* absent: divide */
        rc |= bn_meta_set_str(m, "model.ternary_rule", "reciprocal");
    /* each written only when it changes the arithmetic, as model.proj_norm */
    if (hp->embd_scale != 0 && hp->embd_scale != 1)
        rc |= bn_meta_set_f32(m, "model.embedding_scale", hp->embd_scale);
    if (hp->post_norms)
        rc |= bn_meta_set_bool(m, "model.post_norms", 1);
    if (hp->swa) {
        uint8_t sl[BN_MAX_LAYERS];
        for (uint32_t l = 0; l < hp->n_layer; l++)
            sl[l] = bn_hparams_sliding(hp, l);
        rc |= bn_meta_set_u32(m, "model.sliding_window", hp->swa);
        rc |= bn_meta_set_f32(m, "model.swa_theta", hp->swa_theta);
        rc |= bn_meta_set_arr(m, "model.sliding_layers", BN_V_BOOL, sl, hp->n_layer);
    }
    if (hp->pooling == BN_POOL_LAST) {
        rc |= bn_meta_set_str(m, "model.pooling", "last");
        rc |= bn_meta_set_i32(m, "tokens.embed_end_id", hp->embed_end_id);
    }
    if (hp->rope_llama3) {
        rc |= bn_meta_set_str(m, "model.rope_scaling", "llama3");
        rc |= bn_meta_set_f32(m, "model.rope_scaling_factor", hp->rope_factor);
        rc |= bn_meta_set_f32(m, "model.rope_scaling_low_freq_factor", hp->rope_low_freq);
        rc |= bn_meta_set_f32(m, "model.rope_scaling_high_freq_factor", hp->rope_high_freq);
        rc |= bn_meta_set_u32(m, "model.rope_scaling_original_context", hp->rope_orig_ctx);
    }
    rc |= bn_meta_set_i32(m, "tokens.bos_id", hp->bos_id);
    rc |= bn_meta_set_i32(m, "tokens.eos_id", hp->eos_id);
    rc |= bn_meta_set_i32(m, "tokens.pad_id", hp->pad_id);
    rc |= bn_meta_set_bool(m, "tokens.add_bos", hp->add_bos);
    rc |= bn_meta_set_arr(m, "tokens.stop_ids", BN_V_I32, hp->stop_ids, (uint64_t)hp->n_stop);
    return rc ? -1 : 0;
}

static int check_one(const bn_source *s, const char *tname, uint64_t rows, uint64_t cols, bn_err *e)
{
    const bn_tensor *t = bn_source_find(s, tname);
    char shown[BN_SHOWN_NAME_MAX];
    if (!t)
        return bn_fail(e, "%s: tensor '%s' is missing", s->name, bn_source_shown_name(s, tname, shown));
    if (cols == 0) { /* a vector */
        if (t->ndim != 1 || t->shape[0] != rows)
            return bn_fail(e, "%s: tensor '%s' should be a vector of %llu", s->name,
                           bn_source_shown_name(s, tname, shown), (unsigned long long)rows);
        return 0;
    }
    if (t->ndim != 2 || t->shape[0] != rows || t->shape[1] != cols) {
        /* An HF checkpoint's ternary weights are packed four rows to a
         * byte: its file says [M/4, K] for bn's [M, K]. */
        int packed = !strcmp(s->format, "hf") && t->type == BN_T2;
        char have[160] = "[";
        size_t at = 1;
        for (uint32_t d = 0; d < t->ndim && at < sizeof have; d++)
            at += (size_t)snprintf(have + at, sizeof have - at, "%s%llu", d ? ", " : "",
                                   (unsigned long long)(packed && d == 0 ? t->shape[0] / 4 : t->shape[d]));
        if (at < sizeof have)
            at += (size_t)snprintf(have + at, sizeof have - at, "]");
        if (packed && at < sizeof have)
            snprintf(have + at, sizeof have - at, " (packed: [%llu, %llu] weights)", (unsigned long long)t->shape[0],
                     (unsigned long long)t->shape[1]);
        return bn_fail(e, "%s: tensor '%s' has shape %s, the hyper-parameters say [%llu, %llu]", s->name,
                       bn_source_shown_name(s, tname, shown), have, (unsigned long long)rows,
                       (unsigned long long)cols);
    }
    return 0;
}

int bn_hparams_check_tensors(const bn_hparams *hp, const bn_source *s, bn_err *e)
{
    uint64_t d = hp->n_embd, q = (uint64_t)hp->n_head * hp->head_dim, kv = (uint64_t)hp->n_head_kv * hp->head_dim;
    if (check_one(s, "token_embd.weight", hp->n_vocab, d, e) || check_one(s, "output_norm.weight", d, 0, e))
        return -1;
    if (!hp->tied && check_one(s, "output.weight", hp->n_vocab, d, e))
        return -1;
    char n[BN_NAME_MAX];
    for (uint32_t l = 0; l < hp->n_layer; l++) {
#define CHECK(suffix, r, c)                                        \
    do {                                                           \
        snprintf(n, sizeof n, "blk.%u." suffix, l);                \
        if (check_one(s, n, r, c, e))                              \
            return -1;                                             \
    } while (0)
        CHECK("attn_norm.weight", d, 0);
        CHECK("attn_q.weight", q, d);
        CHECK("attn_k.weight", kv, d);
        CHECK("attn_v.weight", kv, d);
        CHECK("attn_output.weight", d, q);
        CHECK("ffn_norm.weight", d, 0);
        CHECK("ffn_gate.weight", hp->n_ff, d);
        CHECK("ffn_up.weight", hp->n_ff, d);
        CHECK("ffn_down.weight", d, hp->n_ff);
        if (hp->sub_norms) {
            CHECK("attn_sub_norm.weight", q, 0);
            CHECK("ffn_sub_norm.weight", hp->n_ff, 0);
        }
        if (hp->proj_norm) {
            CHECK("attn_q_in_norm.weight", d, 0);
            CHECK("attn_k_in_norm.weight", d, 0);
            CHECK("attn_v_in_norm.weight", d, 0);
            CHECK("attn_output_in_norm.weight", q, 0);
            CHECK("ffn_gate_in_norm.weight", d, 0);
            CHECK("ffn_up_in_norm.weight", d, 0);
            CHECK("ffn_down_in_norm.weight", hp->n_ff, 0);
        }
        if (hp->qk_norm) {
            CHECK("attn_q_norm.weight", hp->head_dim, 0);
            CHECK("attn_k_norm.weight", hp->head_dim, 0);
        }
        if (hp->post_norms) {
            CHECK("post_attention_norm.weight", d, 0);
            CHECK("post_ffw_norm.weight", d, 0);
        }
#undef CHECK
    }
    return 0;
}
