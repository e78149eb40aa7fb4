#!/usr/bin/python3
"""gen_checkpoint.py — synthetic BitNet checkpoints with seeded random weights.

Written from the public format descriptions only (safetensors README, ggml
docs/gguf.md, the byte layouts in /work/shared/docs/formats.md §2, §3, §4),
independently of bn's C code. Tensors are generated and written one at a
time, so even the 2b4t shape needs about one tensor of memory.

  gen_checkpoint.py --format FMT --shape NAME [--layers N] [--vocab N]
                    [--seed S] [--shards N] [--arch A] [--inject BAD] OUT

FMT: hf-bf16 hf-packed hf-packed-bitlinear gguf-f32 gguf-f16 gguf-bf16
     gguf-q8_0 gguf-tq1_0 gguf-tq2_0 gguf-i2_s
OUT: a directory for hf-*, a file for gguf-*.

gguf-f32/f16/bf16 projections hold ternary values times beta, as the
BitNet converters write them (weight_quant first); --master writes random
latent weights instead, a master checkpoint's float conversion.

--fast-ternary (gguf-i2_s): ternary tensors drawn as random packed bytes and
written in chunks of a few MB, so the 100b shape (23 GB) takes minutes on one
core with memory of about one embedding chunk; other values than the default.

Next to OUT a truth sidecar OUT.truth.json records, per tensor, the
canonical (GGUF) name, the bn type a faithful converter must produce, and
for ternary tensors the sha256 of the int8 values (row-major [rows, cols])
and β as an f32 bit pattern.
"""
import argparse
import hashlib
import json
import os
import shutil
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TINY_DIR = os.path.join(ROOT, "models", "tiny-bitnet")

# name: (hidden, ffn, layers, heads, kv_heads, vocab, context)
SHAPES = {
    "tiny": (64, 160, 2, 4, 2, 512, 256),
    "tiny256": (256, 512, 2, 4, 2, 512, 256),   # rows multiple of 256: TQ1_0/TQ2_0
    "small-odd": (96, 200, 3, 3, 1, 300, 128),  # K=200 rows not a multiple of 128
    "odd": (36, 90, 2, 3, 1, 300, 64),          # K%4 != 0 (t2 row padding); float formats only
    "2b4t": (2560, 6912, 30, 20, 5, 128256, 4096),
    # in the style of bitnet.cpp's dummy-model generator (Llama-like sizes)
    "7b": (4096, 11008, 32, 32, 32, 32000, 2048),
    "13b": (5120, 13824, 40, 40, 40, 32000, 2048),
    "30b": (6656, 17920, 60, 52, 52, 32000, 2048),
    "70b": (8192, 28672, 80, 64, 8, 32000, 2048),
    "100b": (8192, 45568, 72, 64, 8, 32000, 2048),
}
# Shapes for tests only (bn-bench's --synthetic table mirrors SHAPES alone):
# 1bitLLM/bitnet_b1_58-large, whose M x K bitnet.cpp's TL1/TL2 presets tile.
TEST_SHAPES = {
    "large": (1536, 4096, 24, 16, 16, 32002, 2048),
    # rows of K = 38 and 81 or 83 (2, 1, 3 past a multiple of 4): every
    # tail inside a byte of t2 codes; float formats only
    "odd1": (38, 81, 1, 1, 1, 300, 64),
    "odd3": (38, 83, 1, 1, 1, 300, 64),
}

# The model families bitnet.cpp runs beside 2B4T, with the values of their
# published config.json files (Hugging Face repositories tiiuae/Falcon3-*-1.58bit,
# HF1BitLLM/Llama3-8B-1.58-100B-tokens). --family writes an HF checkpoint with
# exactly that config except what `test` scales so a test stays small: fewer
# heads (the hidden size stays heads x head_dim, the KV group and the
# FFN/hidden ratio stay the real ones), 1-2 layers, and the vocabulary where
# the family's is not the point. Every other value (head_dim, RoPE theta and
# scaling, norm eps, tied or not, special ids, quantization_config and so the
# packing and scale convention) is the real one.
_F3_QC = {"modules_to_not_convert": ["lm_head"], "quant_method": "bitnet"}
FAMILIES = {
    "falcon3-1b": {"real": {"hidden_size": 2048, "intermediate_size": 8192, "num_attention_heads": 8,
                            "num_key_value_heads": 4, "head_dim": 256, "num_hidden_layers": 18,
                            "vocab_size": 131072, "max_position_embeddings": 8192},
                   "rope_theta": 1000042, "rms_norm_eps": 1e-6, "tie": False, "bos": None, "eos": 11,
                   "gen_bos": 11, "qc": _F3_QC, "test": {"heads": 2, "layers": 2, "vocab": 512}},
    "falcon3-3b": {"real": {"hidden_size": 3072, "intermediate_size": 9216, "num_attention_heads": 12,
                            "num_key_value_heads": 4, "head_dim": 256, "num_hidden_layers": 22,
                            "vocab_size": 131072, "max_position_embeddings": 4096},
                   "rope_theta": 1000042, "rms_norm_eps": 1e-6, "tie": False, "bos": 11, "eos": 11,
                   "gen_bos": 11, "qc": _F3_QC, "test": {"heads": 3, "layers": 1, "vocab": 512}},
    "falcon3-7b": {"real": {"hidden_size": 3072, "intermediate_size": 23040, "num_attention_heads": 12,
                            "num_key_value_heads": 4, "head_dim": 256, "num_hidden_layers": 28,
                            "vocab_size": 131072, "max_position_embeddings": 8192},
                   "rope_theta": 1000042, "rms_norm_eps": 1e-6, "tie": False, "bos": 11, "eos": 11,
                   "gen_bos": 11, "qc": _F3_QC, "test": {"heads": 3, "layers": 1, "vocab": 512}},
    "falcon3-10b": {"real": {"hidden_size": 3072, "intermediate_size": 23040, "num_attention_heads": 12,
                             "num_key_value_heads": 4, "head_dim": 256, "num_hidden_layers": 40,
                             "vocab_size": 131072, "max_position_embeddings": 32768},
                    "rope_theta": 1000042, "rms_norm_eps": 1e-6, "tie": False, "bos": 1, "eos": 11,
                    "gen_bos": 11, "qc": _F3_QC, "test": {"heads": 3, "layers": 1, "vocab": 512}},
    # config.json names quantization_config twice (the text is written as
    # published): {"modules_to_not_convert": null, ...} then {"quant_method"}.
    "llama3-8b-1.58": {"real": {"hidden_size": 4096, "intermediate_size": 14336, "num_attention_heads": 32,
                                "num_key_value_heads": 8, "head_dim": 128, "num_hidden_layers": 32,
                                "vocab_size": 128256, "max_position_embeddings": 8192},
                       "rope_theta": 500000.0, "rms_norm_eps": 1e-5, "tie": False, "bos": 128000, "eos": 128009,
                       "gen_bos": 128000, "qc": {"modules_to_not_convert": None, "quant_method": "bitnet"},
                       "dup_qc": {"quant_method": "bitnet"}, "extra": {"rope_interleaved": False},
                       "test": {"heads": 4, "layers": 1, "vocab": 128256}},
    # Not one of bitnet.cpp's, but a published ternary Llama 3.2 3B
    # (herry90/llama-3b-bitnet, quant_method bitnet) with what the others
    # lack: rope_scaling of rope_type llama3, tied embeddings, three eos ids.
    "llama3.2-3b-bitnet": {"real": {"hidden_size": 3072, "intermediate_size": 8192, "num_attention_heads": 24,
                                    "num_key_value_heads": 8, "head_dim": 128, "num_hidden_layers": 28,
                                    "vocab_size": 128256, "max_position_embeddings": 131072},
                           "rope_theta": 500000.0, "rms_norm_eps": 1e-5, "tie": True, "bos": 128000,
                           "eos": [128001, 128008, 128009], "gen_bos": 128000,
                           "qc": {"modules_to_not_convert": ["model.embed_tokens", "lm_head", "model.norm"],
                                  "quant_method": "bitnet"},
                           "extra": {"rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                                                      "original_max_position_embeddings": 8192,
                                                      "rope_type": "llama3"}},
                           "test": {"heads": 3, "layers": 1, "vocab": 128256}},
    # quantization_config.use_rms_norm, as Falcon-E's config has it (the
    # Falcon-E dimensions were not in the sources at hand: Falcon3-1B's are
    # used). AutoBitLinear offline: packed weights, weight_scale multiplies.
    # falcon-e stores each projection's rms_norm.weight and leaves
    # rms_norm_eps to its default; use-rms-norm-ones stores none (ones) and
    # sets rms_norm_eps.
    "falcon-e": {"real": {"hidden_size": 2048, "intermediate_size": 8192, "num_attention_heads": 8,
                          "num_key_value_heads": 4, "head_dim": 256, "num_hidden_layers": 18,
                          "vocab_size": 131072, "max_position_embeddings": 8192},
                 "rope_theta": 1000042, "rms_norm_eps": 1e-6, "tie": False, "bos": 11, "eos": 11, "gen_bos": 11,
                 "qc": {"quant_method": "bitnet", "linear_class": "autobitlinear", "quantization_mode": "offline",
                        "use_rms_norm": True},
                 "in_norms": True, "test": {"heads": 2, "layers": 2, "vocab": 512}},
    "use-rms-norm-ones": {"real": {"hidden_size": 2048, "intermediate_size": 8192, "num_attention_heads": 8,
                                   "num_key_value_heads": 4, "head_dim": 256, "num_hidden_layers": 18,
                                   "vocab_size": 131072, "max_position_embeddings": 8192},
                          "rope_theta": 1000042, "rms_norm_eps": 1e-6, "tie": False, "bos": 11, "eos": 11,
                          "gen_bos": 11,
                          "qc": {"quant_method": "bitnet", "linear_class": "autobitlinear",
                                 "quantization_mode": "offline", "use_rms_norm": True, "rms_norm_eps": 1e-5},
                          "test": {"heads": 2, "layers": 1, "vocab": 512}},
    # 1bitLLM's reproductions of BitNet b1.58 (1bitLLM/bitnet_b1_58-large and -3B, formats/1bitllm.md):
    # BitnetForCausalLM (config model_type "llama") from their own modeling_bitnet.py, Llama's layer
    # with the sub-norms inner_attn_ln (before o_proj) and ffn_layernorm (before down_proj), SiLU
    # gating, no GQA, head_dim = hidden / heads (no head_dim key), tied head (no lm_head), every
    # tensor f32 (latent weights that utils_quant.weight_quant ternarizes online as W * (1/beta)), each
    # layer's rotary_emb.inv_freq buffer saved beside them, the Llama-2 SentencePiece vocabulary
    # (32000 pieces, "</line>" at 32000 = pad_token_id, 32002 embedding rows). The values are the
    # ones bitnet.cpp's GGUF of each reports. The vocabulary stays real (32002: a head whose row count
    # is not a multiple of 4 or 8).
    "bitnet-b1.58-large": {"real": {"hidden_size": 1536, "intermediate_size": 4096, "num_attention_heads": 16,
                                    "num_key_value_heads": 16, "head_dim": 96, "num_hidden_layers": 24,
                                    "vocab_size": 32002, "max_position_embeddings": 2048},
                           "rope_theta": 10000.0, "rms_norm_eps": 1e-5, "tie": True, "bos": 1, "eos": 2,
                           "gen_bos": 1, "qc": None, "onebit": True,
                           "test": {"heads": 2, "layers": 2, "vocab": 32002}},
    "bitnet-b1.58-3b": {"real": {"hidden_size": 3200, "intermediate_size": 8640, "num_attention_heads": 32,
                                 "num_key_value_heads": 32, "head_dim": 100, "num_hidden_layers": 26,
                                 "vocab_size": 32002, "max_position_embeddings": 2048},
                        "rope_theta": 10000.0, "rms_norm_eps": 1e-5, "tie": True, "bos": 1, "eos": 2,
                        "gen_bos": 1, "qc": None, "onebit": True,
                        "test": {"heads": 2, "layers": 1, "vocab": 32002}},
    # microsoft/BitNet-embedding-0.6B (bitnet.cpp docs/bitnet-embeddings-i2s-guide.md §2-3, its
    # utils/convert-bitnet-embedding-to-gguf.py): a Qwen3 backbone (model_type qwen3, q_norm/k_norm
    # per head) saved as a sentence-transformers Qwen3Model (no "model." prefix, no lm_head), bf16
    # master weights ternarized by absmean, an RMSNorm before each projection stored as
    # <proj>.norm.weight, last-token pooling (1_Pooling) then L2 normalization; the tokenizer
    # appends <|endoftext|> (here the synthetic vocabulary's <|end_of_text|>), which is not the
    # config's eos (<|im_end|>, here <|eot_id|>). Vocabulary scaled (151936 in the real one).
    "bitnet-embedding-0.6b": {"real": {"hidden_size": 1024, "intermediate_size": 3072, "num_attention_heads": 16,
                                       "num_key_value_heads": 8, "head_dim": 128, "num_hidden_layers": 28,
                                       "vocab_size": 151936, "max_position_embeddings": 32768},
                              "rope_theta": 1000000.0, "rms_norm_eps": 1e-6, "tie": True, "bos": None,
                              "eos": None, "gen_bos": None, "qc": None, "embedding": "qwen3",
                              "test": {"heads": 2, "layers": 2, "vocab": 512, "hidden_ratio": True}},
    # microsoft/BitNet-embedding-270M (the same sources): a Gemma 3 270M backbone (gemma3_text:
    # Gemma3RMSNorm's (1 + w) weights, q/k head norms, post-attention and post-FFN norms, embedding
    # x sqrt(hidden), GELU (tanh) gating, 5 of every 6 layers sliding over 512 positions with RoPE base
    # 10000, the full ones 1e6), saved as a sentence-transformers Gemma3TextModel, the same BitLinear
    # input norms; the tokenizer adds <bos> and appends <eos>. Layers cut to 2, one sliding and one
    # full (layer_types; the real model has 5 sliding, then 1 full, three times), vocabulary scaled
    # (262144 in the real one), the window cut to 32 (so that a test input of a hundred tokens
    # crosses it, a partial KV block deep); the width is the real one.
    "bitnet-embedding-270m": {"real": {"hidden_size": 640, "intermediate_size": 2048, "num_attention_heads": 4,
                                       "num_key_value_heads": 1, "head_dim": 256, "num_hidden_layers": 18,
                                       "vocab_size": 262144, "max_position_embeddings": 32768},
                              "rope_theta": 1000000.0, "rms_norm_eps": 1e-6, "tie": True, "bos": None,
                              "eos": None, "gen_bos": None, "qc": None, "embedding": "gemma3",
                              "test": {"heads": 4, "layers": 2, "vocab": 512, "hidden_ratio": True, "window": 32,
                                       "pattern": 2}},
}


def family_shape(fam):
    """(hidden, ffn, layers, heads, kv_heads, vocab, context) and head_dim of a family's test shape."""
    r, t = fam["real"], fam["test"]
    h, hd = t["heads"], r["head_dim"]
    kv = h * r["num_key_value_heads"] // r["num_attention_heads"]
    d = h * hd
    if t.get("hidden_ratio"):  # hidden != heads x head_dim: keep the real ratio
        d = h * r["hidden_size"] // r["num_attention_heads"]
    ff = d * r["intermediate_size"] // r["hidden_size"]
    assert kv >= 1 and d * r["intermediate_size"] % r["hidden_size"] == 0
    return (d, ff, t["layers"], h, kv, t["vocab"], min(r["max_position_embeddings"], 1024)), hd


FORMATS = ["hf-bf16", "hf-packed", "hf-packed-bitlinear", "gguf-f32", "gguf-f16", "gguf-bf16",
           "gguf-q8_0", "gguf-tq1_0", "gguf-tq2_0", "gguf-i2_s"]

LLAMA3_REGEX = ("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}|"
                " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")
GGUF_CHAT_TEMPLATE = ("{% for message in messages %}{% if loop.first %}{{ bos_token }}{% endif %}"
                      "{% if message['role'] == 'user' %}{{ 'Human: ' + message['content'] + "
                      "'\\n\\nBITNETAssistant: ' + eos_token }}{% elif message['role'] == 'assistant' %}"
                      "{{ message['content'] + eos_token }}{% endif %}{% endfor %}")
HF_CHAT_TEMPLATE = ("{% for message in messages %}{% set content = message['role'] | capitalize + ': '"
                    " + message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
                    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
                    "{% if add_generation_prompt %}{{ 'Assistant: ' }}{% endif %}")

# ggml type ids
GT = {"F32": 0, "F16": 1, "Q8_0": 8, "BF16": 30, "TQ1_0": 34, "TQ2_0": 35, "I2_S": 36}


# ------------------------------------------------------------------ numbers

def f32_to_bf16_bits(x):
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype(np.uint16)


def bf16_bits_to_f32(b):
    return (b.astype(np.uint32) << 16).view(np.float32)


def round_beta(beta, dtype):
    """β as the storage dtype represents it, returned as float32."""
    b = np.float32(beta)
    if dtype == "f16":
        return np.float32(np.float16(b))
    if dtype == "bf16":
        return bf16_bits_to_f32(f32_to_bf16_bits(np.array([b])))[0]
    return b


# ------------------------------------------------------------ model layout

def model_tensors(shape, layers, vocab, arch, hd=None, in_norms=False):
    """[(canonical name, hf name, [rows, cols] or [n], kind)] in file order.
    in_norms: each projection's use_rms_norm weight after it. arch qwen3: the
    BitNet embedding layout (qwen3_embedding_tensors). arch 1bitllm: the
    sub-norms under 1bitLLM's names, each layer's rotary inv_freq buffer
    (canonical name None: a converter skips it)."""
    if arch in ("qwen3", "gemma3"):
        return embedding_tensors(shape, layers, vocab, hd, arch == "gemma3")
    d, ff, nl, h, kv, _, _ = shape
    hd = hd or d // h
    sub = arch != "llama"
    onebit = arch == "1bitllm"
    asub, fsub = ("inner_attn_ln", "ffn_layernorm") if onebit else ("attn_sub_norm", "ffn_sub_norm")
    out = [("token_embd.weight", "model.embed_tokens.weight", [vocab, d], "embed")]
    for i in range(layers):
        p, q = "blk.%d." % i, "model.layers.%d." % i
        out += [
            (p + "attn_norm.weight", q + "input_layernorm.weight", [d], "norm"),
            (p + "attn_q.weight", q + "self_attn.q_proj.weight", [h * hd, d], "ternary"),
            (p + "attn_k.weight", q + "self_attn.k_proj.weight", [kv * hd, d], "ternary"),
            (p + "attn_v.weight", q + "self_attn.v_proj.weight", [kv * hd, d], "ternary"),
        ]
        if onebit:
            out.append((None, q + "self_attn.rotary_emb.inv_freq", [hd // 2], "inv_freq"))
        if sub:
            out.append((p + "attn_sub_norm.weight", q + "self_attn.%s.weight" % asub, [h * hd], "norm"))
        out += [
            (p + "attn_output.weight", q + "self_attn.o_proj.weight", [d, h * hd], "ternary"),
            (p + "ffn_norm.weight", q + "post_attention_layernorm.weight", [d], "norm"),
            (p + "ffn_gate.weight", q + "mlp.gate_proj.weight", [ff, d], "ternary"),
            (p + "ffn_up.weight", q + "mlp.up_proj.weight", [ff, d], "ternary"),
        ]
        if sub:
            out.append((p + "ffn_sub_norm.weight", q + "mlp.%s.weight" % fsub, [ff], "norm"))
        out.append((p + "ffn_down.weight", q + "mlp.down_proj.weight", [d, ff], "ternary"))
    if in_norms:
        with_norms = []
        for e in out:
            with_norms.append(e)
            if e[3] == "ternary":
                with_norms.append((e[0].replace(".weight", "_in_norm.weight"),
                                   e[1].replace(".weight", ".rms_norm.weight"), [e[2][1]], "norm"))
        out = with_norms
    out.append(("output_norm.weight", "model.norm.weight", [d], "norm"))
    if arch == "llama":
        out.append(("output.weight", "lm_head.weight", [vocab, d], "embed"))
    return out


def embedding_tensors(shape, layers, vocab, hd, gemma):
    """A BitNet embedding model on Qwen3 (or Gemma 3): names as Qwen3Model
    (Gemma3TextModel) saves them (no "model." prefix), each projection's input
    norm <proj>.norm.weight before it, q_norm/k_norm [head_dim], no lm_head
    (tied). Gemma's own norms ("gnorm": stored w, applied as 1 + w) add
    post_attention_layernorm after the attention, pre_ and
    post_feedforward_layernorm around the FFN."""
    nk = "gnorm" if gemma else "norm"
    d, ff, _, h, kv, _, _ = shape
    out = [("token_embd.weight", "embed_tokens.weight", [vocab, d], "embed")]
    for i in range(layers):
        p, q = "blk.%d." % i, "layers.%d." % i

        def proj(c, n, rows, cols):
            return [(p + c + "_in_norm.weight", q + n + ".norm.weight", [cols], "norm"),
                    (p + c + ".weight", q + n + ".weight", [rows, cols], "ternary")]
        out.append((p + "attn_norm.weight", q + "input_layernorm.weight", [d], nk))
        out += proj("attn_q", "self_attn.q_proj", h * hd, d) + proj("attn_k", "self_attn.k_proj", kv * hd, d)
        out += proj("attn_v", "self_attn.v_proj", kv * hd, d)
        out += [(p + "attn_q_norm.weight", q + "self_attn.q_norm.weight", [hd], nk),
                (p + "attn_k_norm.weight", q + "self_attn.k_norm.weight", [hd], nk)]
        out += proj("attn_output", "self_attn.o_proj", d, h * hd)
        if gemma:
            out += [(p + "post_attention_norm.weight", q + "post_attention_layernorm.weight", [d], nk),
                    (p + "ffn_norm.weight", q + "pre_feedforward_layernorm.weight", [d], nk)]
        else:
            out.append((p + "ffn_norm.weight", q + "post_attention_layernorm.weight", [d], "norm"))
        out += proj("ffn_gate", "mlp.gate_proj", ff, d) + proj("ffn_up", "mlp.up_proj", ff, d)
        out += proj("ffn_down", "mlp.down_proj", d, ff)
        if gemma:
            out.append((p + "post_ffw_norm.weight", q + "post_feedforward_layernorm.weight", [d], nk))
    out.append(("output_norm.weight", "norm.weight", [d], nk))
    return out


def rng_for(seed, idx):
    return np.random.default_rng([seed, idx])


def gen_ternary(rng, rows, cols):
    w = rng.choice(np.array([-1, 0, 1], dtype=np.int8), size=(rows, cols), p=[0.3, 0.4, 0.3])
    beta = float(rng.uniform(0.5, 2.0))
    return w, beta


def gen_norm(rng, n):
    return (1.0 + 0.1 * rng.standard_normal(n)).astype(np.float32)


def embed_chunks(seed, idx, rows, cols, chunk_rows=4096):
    """Yields float32 row chunks of a random embedding (deterministic)."""
    for r0 in range(0, rows, chunk_rows):
        rng = np.random.default_rng([seed, idx, r0])
        n = min(chunk_rows, rows - r0)
        yield (0.02 * rng.standard_normal((n, cols))).astype(np.float32)


def i2s_fast_lut():
    """A random byte -> a valid I2_S byte: each 2-bit code 3 (not a ternary
    code) becomes 1 (zero), so w is -1, 0, +1 with p 1/4, 1/2, 1/4."""
    b = np.arange(256, dtype=np.uint8)
    out = np.zeros(256, dtype=np.uint8)
    for s in (0, 2, 4, 6):
        c = (b >> s) & 3
        out |= np.where(c == 3, 1, c).astype(np.uint8) << s
    return out


def write_i2s_fast(f, seed, idx, rows, cols, hashed, chunk_blocks=1 << 16):
    """--fast-ternary: writes an I2_S tensor (codes, f32 β, 28 zero bytes) in
    chunks of 128-weight blocks, drawn as random bytes made valid by a lookup,
    so memory stays a few MB whatever the tensor's size (one Zen 5 core: a
    45568 x 8192 tensor in 1.0 s, 3.1 s with the hash; 70 MB peak RSS).
    hashed: also the sha256 of the int8 values row-major (element 32g + m of
    a block sits in byte m at bits 7-2g, so unpacking g = 0..3 in turn gives
    the block in row order). Returns (beta, sha256 hex or None)."""
    n = rows * cols
    need(n % 128 == 0, "I2_S needs a multiple of 128 weights")
    rng = np.random.default_rng([seed, idx, 3])
    beta = np.float32(rng.uniform(0.5, 2.0))
    lut = i2s_fast_lut()
    hs = hashlib.sha256() if hashed else None
    nblk = n // 128
    for b0 in range(0, nblk, chunk_blocks):
        nb = min(chunk_blocks, nblk - b0)
        packed = lut[np.frombuffer(rng.bytes(nb * 32), dtype=np.uint8)]
        f.write(packed.tobytes())
        if hs is not None:
            pb = packed.reshape(nb, 1, 32)
            codes = (pb >> np.array([6, 4, 2, 0], dtype=np.uint8).reshape(1, 4, 1)) & 3
            hs.update((codes.astype(np.int8) - 1).tobytes())
    f.write(struct.pack("<f", beta) + bytes(28))
    return beta, (hs.hexdigest() if hs is not None else None)


def sha(arr):
    return hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()


def f32hex(x):
    return struct.pack("<f", float(x)).hex()


# --------------------------------------------------------------- vocabulary

def bytes_to_unicode():
    """GPT-2's reversible byte -> printable unicode map."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def special_names(count):
    names = ["<|begin_of_text|>", "<|end_of_text|>"]
    names += ["<|reserved_special_token_%d|>" % i for i in range(4)]
    names += ["<|start_header_id|>", "<|end_header_id|>", "<|reserved_special_token_4|>", "<|eot_id|>"]
    i = 5
    while len(names) < count:
        names.append("<|reserved_special_token_%d|>" % i)
        i += 1
    return names[:count]


def synth_vocab(vocab_size, seed):
    """(tokens in byte->unicode form, merges 'A B', specials) with exactly
    vocab_size tokens: 256 bytes, merged tokens, then the specials."""
    n_special = 256 if vocab_size >= 100000 else 16
    if vocab_size < 256 + n_special:
        sys.exit("gen_checkpoint: vocab %d is too small (at least %d)" % (vocab_size, 256 + n_special))
    b2u = bytes_to_unicode()
    tokens = [b2u[b] for b in range(256)]
    seen = set(tokens)
    merges = []
    rng = np.random.default_rng([seed, 999])
    letters = [b2u[b] for b in b"etaoinshrdlucmfwypvbgkjqxz ETAOINS.,"]
    want = vocab_size - n_special
    short = list(letters)
    while len(tokens) < want:
        a = short[int(rng.integers(len(short)))] if rng.random() < 0.7 else tokens[int(rng.integers(len(tokens)))]
        b = letters[int(rng.integers(len(letters)))] if rng.random() < 0.6 else tokens[int(rng.integers(len(tokens)))]
        t = a + b
        if t in seen or len(t) > 16:
            continue
        seen.add(t)
        tokens.append(t)
        merges.append(a + " " + b)
        if len(t) <= 4:
            short.append(t)
    specials = special_names(n_special)
    return tokens, merges, specials


# --------------------------------------------------------------- encoders

def pack_hf(w):
    """HF uint8 packing along dim 0 in quarters: byte (p, c) holds rows p,
    p+M/4, p+M/2, p+3M/4 in bits 1:0, 3:2, 5:4, 7:6; code = w + 1."""
    m = w.shape[0]
    if m % 4:
        sys.exit("gen_checkpoint: HF packing needs rows %% 4 == 0 (got %d)" % m)
    q = m // 4
    c = (w.astype(np.int16) + 1).astype(np.uint8)
    return (c[:q] | (c[q:2 * q] << 2) | (c[2 * q:3 * q] << 4) | (c[3 * q:] << 6)).astype(np.uint8)


def enc_i2s(w, beta):
    """I2_S: flattened row-major, 128-weight blocks in 32 bytes; element j of
    a block in byte j%32 at bits 7-2*(j//32) : 6-2*(j//32); then f32 β and
    28 zero bytes."""
    flat = (w.reshape(-1).astype(np.int16) + 1).astype(np.uint8)
    if flat.size % 128:
        sys.exit("gen_checkpoint: I2_S needs a multiple of 128 weights")
    blk = flat.reshape(-1, 4, 32)  # [block, group g = j//32, m = j%32]
    b = (blk[:, 0] << 6) | (blk[:, 1] << 4) | (blk[:, 2] << 2) | blk[:, 3]
    return b.astype(np.uint8).tobytes() + struct.pack("<f", beta) + bytes(28)


def enc_tq2(codes, d16):
    """TQ2_0 blocks of 256: qs[64] then fp16 d; element 128c+32l+m in byte
    32c+m at bits 2l. codes: [nblk, 256] uint8; d16: [nblk] float16."""
    nb = codes.shape[0]
    c = codes.reshape(nb, 2, 4, 32)  # [blk, c, l, m]
    qs = c[:, :, 0] | (c[:, :, 1] << 2) | (c[:, :, 2] << 4) | (c[:, :, 3] << 6)  # [blk, c, m]
    out = np.zeros((nb, 66), dtype=np.uint8)
    out[:, :64] = qs.reshape(nb, 64)
    out[:, 64:66] = d16.astype("<f2").view(np.uint8).reshape(nb, 2)
    return out.tobytes()


def _tq1_pack(digits):
    """digits [..., 5], most significant first -> ceil(256*v/243)."""
    v = np.zeros(digits.shape[:-1], dtype=np.int32)
    for n in range(5):
        v = v * 3 + digits[..., n].astype(np.int32)
    return ((v * 256 + 242) // 243).astype(np.uint8)


def enc_tq1(codes, d16):
    """TQ1_0 blocks of 256: qs[48], qh[4], fp16 d. qs[m] (m<32): elements
    m+32n; qs[32+m] (m<16): 160+m+16n; qh[j]: 240+j+4n (n<4, 5th digit 0)."""
    nb = codes.shape[0]
    out = np.zeros((nb, 54), dtype=np.uint8)
    a = codes[:, :160].reshape(nb, 5, 32).transpose(0, 2, 1)      # [blk, m, n]
    out[:, :32] = _tq1_pack(a)
    b = codes[:, 160:240].reshape(nb, 5, 16).transpose(0, 2, 1)   # [blk, m, n]
    out[:, 32:48] = _tq1_pack(b)
    c = codes[:, 240:256].reshape(nb, 4, 4).transpose(0, 2, 1)    # [blk, j, n]
    c = np.concatenate([c, np.zeros((nb, 4, 1), dtype=c.dtype)], axis=2)
    out[:, 48:52] = _tq1_pack(c)
    out[:, 52:54] = d16.astype("<f2").view(np.uint8).reshape(nb, 2)
    return out.tobytes()


def enc_q8_0(x):
    """Q8_0 blocks of 32: fp16 d then 32 int8; d = absmax/127."""
    x = x.reshape(-1, 32).astype(np.float32)
    amax = np.abs(x).max(axis=1)
    d = (amax / 127.0).astype(np.float32)
    inv = np.where(d > 0, 1.0 / np.where(d > 0, d, 1), 0).astype(np.float32)
    q = np.clip(np.trunc(x * inv[:, None] + np.copysign(0.5, x)), -127, 127).astype(np.int8)
    out = np.zeros((x.shape[0], 34), dtype=np.uint8)
    out[:, :2] = d.astype("<f2").view(np.uint8).reshape(-1, 2)
    out[:, 2:] = q.view(np.uint8)
    return out.tobytes()


# ------------------------------------------------------------------ GGUF

class GGUFWriter:
    def __init__(self, version=3, alignment=32):
        self.version = version
        self.alignment = alignment
        self.kv = []  # (key, type, value-bytes)
        self.tensors = []  # (name, ne list innermost-first, ggml type, nbytes)

    @staticmethod
    def _str(s):
        b = s.encode("utf-8") if isinstance(s, str) else s
        return struct.pack("<Q", len(b)) + b

    def add(self, key, vtype, value):
        fmt = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
        if vtype == 8:
            body = self._str(value)
        elif vtype == 9:
            et, items = value
            body = struct.pack("<IQ", et, len(items))
            if et == 8:
                body += b"".join(self._str(s) for s in items)
            else:
                body += np.asarray(items, dtype=np.dtype(fmt[et][1:]).newbyteorder("<")).tobytes()
        else:
            body = struct.pack(fmt[vtype], value)
        self.kv.append((key, vtype, body))

    def add_tensor(self, name, shape_outer_first, gtype, nbytes):
        self.tensors.append([name, list(reversed(shape_outer_first)), gtype, nbytes])

    def head_bytes(self, inject=None):
        a = self.alignment
        offs, off = [], 0
        for t in self.tensors:
            offs.append(off)
            off += (t[3] + a - 1) // a * a
        nt, nkv = len(self.tensors), len(self.kv)
        if inject == "absurd-tensor-count":
            nt = 1 << 60
        if inject == "absurd-kv-count":
            nkv = 1 << 60
        out = [b"GGUF", struct.pack("<IQQ", self.version, nt, nkv)]
        for key, vt, body in self.kv:
            out.append(self._str(key) + struct.pack("<I", vt) + body)
        for i, (name, ne, gt, nbytes) in enumerate(self.tensors):
            o = offs[i]
            if inject == "offset-past-end" and i == len(self.tensors) - 1:
                o = (1 << 40)
            if inject == "offset-shared" and i == len(self.tensors) - 1:
                o = offs[i - 1]  # the bytes of the tensor before it
            if inject == "unknown-type" and i == 1:
                gt = 99
            out.append(self._str(name) + struct.pack("<I", len(ne)) + struct.pack("<%dQ" % len(ne), *ne)
                       + struct.pack("<IQ", gt, o))
        head = b"".join(out)
        pad = (-len(head)) % a
        return head + bytes(pad)


def need(cond, msg):
    if not cond:
        sys.exit("gen_checkpoint: " + msg)


def gguf_size(gtype, shape):
    n = int(np.prod(shape))
    k = shape[-1]
    if gtype == "F32":
        return 4 * n
    if gtype in ("F16", "BF16"):
        return 2 * n
    if gtype == "Q8_0":
        need(k % 32 == 0, "Q8_0 needs rows of a multiple of 32")
        return n // 32 * 34
    if gtype == "TQ2_0":
        need(k % 256 == 0, "TQ2_0 needs rows of a multiple of 256 (try --shape tiny256)")
        return n // 256 * 66
    if gtype == "TQ1_0":
        need(k % 256 == 0, "TQ1_0 needs rows of a multiple of 256 (try --shape tiny256)")
        return n // 256 * 54
    if gtype == "I2_S":
        need(n % 128 == 0, "I2_S needs a multiple of 128 weights")
        return n // 4 + 32
    raise ValueError(gtype)


def write_gguf(args, shape, layers, vocab, out):
    fmt = args.format[5:]
    arch = args.arch
    d, ff, _, h, kv, _, ctx = shape
    tens = model_tensors(shape, layers, vocab, arch)
    if args.inject == "norm-in-twice":
        # one BitLinear input norm under bitnet.cpp's embedding converter's
        # name and under bn's: the same tensor twice once renamed
        tens = tens + [("blk.0.attn_q_norm_in.weight", None, [d], "norm"),
                       ("blk.0.attn_q_in_norm.weight", None, [d], "norm")]
    proj_t = {"f32": "F32", "f16": "F16", "bf16": "BF16", "q8_0": "Q8_0", "tq1_0": "TQ1_0",
              "tq2_0": "TQ2_0", "i2_s": "I2_S"}[fmt]
    embed_t = {"f32": "F32", "f16": "F16", "bf16": "BF16", "q8_0": "Q8_0"}.get(fmt, "F16")
    tokens, merges, specials = synth_vocab(vocab, args.seed)
    all_tokens = tokens + specials
    bos, eos = len(tokens), len(tokens) + 1

    w = GGUFWriter(version=args.gguf_version, alignment=args.alignment or 32)
    A = arch
    w.add("general.architecture", 8, A)
    w.add("general.name", 8, "synthetic-%s-%s" % (args.shape, fmt))
    if args.alignment:
        w.add("general.alignment", 4, args.alignment)
    w.add(A + ".vocab_size", 4, vocab)
    w.add(A + ".context_length", 4, ctx)
    w.add(A + ".embedding_length", 4, d)
    w.add(A + ".block_count", 4, layers)
    w.add(A + ".feed_forward_length", 4, ff)
    w.add(A + ".rope.dimension_count", 4, d // h)
    w.add(A + ".attention.head_count", 4, h)
    w.add(A + ".attention.head_count_kv", 4, kv)
    if args.gguf_add_bos != "absent":
        w.add("tokenizer.ggml.add_bos_token", 7, args.gguf_add_bos == "true")
    w.add(A + ".attention.layer_norm_rms_epsilon", 6, 1e-5)
    w.add(A + ".rope.freq_base", 6, 500000.0)
    if args.rope_scaling:  # as bitnet.cpp's converters write a linear rope_scaling
        kind, factor = args.rope_scaling.split(":")
        w.add(A + ".rope.scaling.type", 8, kind)
        w.add(A + ".rope.scaling.factor", 6, float(factor))
    if args.hidden_act:
        w.add(A + ".hidden_activation", 8, args.hidden_act)
    w.add("general.file_type", 4, {"f32": 0, "f16": 1, "bf16": 32, "q8_0": 7, "tq1_0": 36, "tq2_0": 37,
                                   "i2_s": 40}[fmt])
    w.add("tokenizer.ggml.model", 8, "gpt2")
    if args.gguf_pre:
        w.add("tokenizer.ggml.pre", 8, args.gguf_pre)
    if args.inject == "absurd-string-len":
        # a string array whose count claims far more than the file holds
        w.kv.append(("tokenizer.ggml.tokens", 9, struct.pack("<IQ", 8, 1 << 62)))
    else:
        w.add("tokenizer.ggml.tokens", 9, (8, all_tokens))
    w.add("tokenizer.ggml.scores", 9, (6, [0.0] * len(tokens) + [-1000.0] * len(specials)))
    w.add("tokenizer.ggml.token_type", 9, (5, [1] * len(tokens) + [3] * len(specials)))
    w.add("tokenizer.ggml.merges", 9, (8, merges))
    w.add("tokenizer.ggml.bos_token_id", 4, bos)
    w.add("tokenizer.ggml.eos_token_id", 4, eos)
    w.add("tokenizer.ggml.padding_token_id", 4, eos)
    w.add("tokenizer.chat_template", 8,
          open(args.chat_template, encoding="utf-8").read() if args.chat_template else GGUF_CHAT_TEMPLATE)
    w.add("general.quantization_version", 4, 2)
    if args.inject == "nested-array":
        # a valid nested array (ignored by readers that do not know the key)
        body = struct.pack("<IQ", 9, 2)
        for k in range(2):
            body += struct.pack("<IQ", 4, 3) + struct.pack("<3I", k, k + 1, k + 2)
        w.kv.append(("synthetic.nested", 9, body))

    truth = {"format": args.format, "shape": args.shape, "arch": arch, "layers": layers, "vocab": vocab,
             "seed": args.seed, "tensors": []}
    plan = []
    for idx, (name, _, shp, kind) in enumerate(tens):
        if kind == "norm":
            gt = "F32"
        elif kind == "embed":
            gt = embed_t
        else:
            gt = proj_t
        w.add_tensor(name, shp, GT[gt], gguf_size(gt, shp))
        plan.append((idx, name, shp, kind, gt))

    with open(out, "wb") as f:
        f.write(w.head_bytes(args.inject))
        a = w.alignment
        for idx, name, shp, kind, gt in plan:
            rng = rng_for(args.seed, idx)
            entry = {"name": name, "shape": shp, "ggml_type": gt}
            if kind == "norm":
                x = gen_norm(rng, shp[0])
                data = x.astype("<f4").tobytes()
                entry.update(bn_type="f32", kind="float")
            elif kind == "embed":
                data = b""
                hs = hashlib.sha256()
                parts = []
                for chunk in embed_chunks(args.seed, idx, shp[0], shp[1]):
                    if gt == "F32":
                        part = chunk.astype("<f4").tobytes()
                    elif gt == "F16":
                        part = chunk.astype("<f2").tobytes()
                    elif gt == "BF16":
                        part = f32_to_bf16_bits(chunk).astype("<u2").tobytes()
                    else:
                        part = enc_q8_0(chunk)
                    f.write(part)
                    parts.append(len(part))
                entry.update(bn_type={"F32": "f32", "F16": "f16", "BF16": "bf16", "Q8_0": "f32"}[gt], kind="float")
                nbytes = sum(parts)
                f.write(bytes((-nbytes) % a))
                truth["tensors"].append(entry)
                continue
            elif args.fast_ternary:
                beta, digest = write_i2s_fast(f, args.seed, idx, shp[0], shp[1], not args.no_truth)
                entry.update(kind="ternary", bn_type="t2", beta_f32=f32hex(beta))
                if digest:
                    entry["ternary_sha256"] = digest
                f.write(bytes((-gguf_size(gt, shp)) % a))
                truth["tensors"].append(entry)
                continue
            else:
                wt, beta = gen_ternary(rng, shp[0], shp[1])
                data, entry = ternary_bytes(args, name, wt, beta, gt, rng, entry)
            f.write(data)
            f.write(bytes((-len(data)) % a))
            truth["tensors"].append(entry)
    return truth


def ternary_bytes(args, name, wt, beta, gt, rng, entry):
    rows, cols = wt.shape
    if gt in ("F32", "F16", "BF16"):
        enc = {"F32": lambda v: v.astype("<f4").tobytes(), "F16": lambda v: v.astype("<f2").tobytes(),
               "BF16": lambda v: f32_to_bf16_bits(v).astype("<u2").tobytes()}[gt]
        if args.master:
            # latent weights, as a float conversion of a master checkpoint
            # without weight_quant: bn-quant's input
            entry.update(kind="master", bn_type=gt.lower())
            return enc(rng.standard_normal((rows, cols)).astype(np.float32)), entry
        b = round_beta(beta, {"F32": "f32", "F16": "f16", "BF16": "bf16"}[gt])
        vals = wt.astype(np.float32) * b
        if args.inject == "float-near-ternary" and name == "blk.0.ffn_down.weight":
            # the last nonzero value of another magnitude: not ternary·β, stays float
            # (past the first 4096 values; with shape odd1, in the last 2 halves)
            i = int(np.flatnonzero(wt.reshape(-1))[-1])
            vals.reshape(-1)[i] *= np.float32(1.5)
            entry.update(kind="float", bn_type=gt.lower())
            return enc(vals), entry
        if args.inject == "float-special":
            # the sign of zero does not count: every zero of attn_q written as -0 (still t2);
            # one NaN in attn_k, an infinite β in attn_v: not ternary·β, stay float
            if name == "blk.0.attn_q.weight":
                vals[wt == 0] = np.float32(-0.0)
            elif name == "blk.0.attn_k.weight":
                vals.reshape(-1)[int(np.flatnonzero(wt.reshape(-1))[0])] = np.float32("nan")
                entry.update(kind="float", bn_type=gt.lower())
                return enc(vals), entry
            elif name == "blk.0.attn_v.weight":
                vals = wt.astype(np.float32) * np.float32("inf")
                vals[wt == 0] = 0
                entry.update(kind="float", bn_type=gt.lower())
                return enc(vals), entry
        # What the converters write (weight_quant before the float cast;
        # bitnet.cpp's LlamaModel for llama): read as t2 with the stored β
        # (formats/gguf-import.md §2).
        entry.update(kind="ternary", bn_type="t2", ternary_sha256=sha(wt), beta_f32=f32hex(b))
        return enc(vals), entry
    if gt == "Q8_0":
        vals = wt.astype(np.float32) * np.float32(beta)
        entry.update(kind="ternary-as-q8_0", bn_type="f32", ternary_sha256=sha(wt), beta_f32=f32hex(beta))
        return enc_q8_0(vals), entry
    if gt == "I2_S":
        b = np.float32(beta)
        if args.inject == "i2s-nan-scale" and name == "blk.0.attn_q.weight":
            b = np.float32("nan")
        if args.inject == "i2s-zero-scale" and name == "blk.0.attn_q.weight":
            b = np.float32(0)
        if args.inject == "i2s-bad-code" and name == "blk.0.attn_q.weight":
            data = bytearray(enc_i2s(wt, b))
            data[0] |= 0xC0  # code 3 for element 0
            entry.update(kind="ternary", bn_type="t2", ternary_sha256=sha(wt), beta_f32=f32hex(b))
            return bytes(data), entry
        entry.update(kind="ternary", bn_type="t2", ternary_sha256=sha(wt), beta_f32=f32hex(b))
        return enc_i2s(wt, b), entry
    # TQ1_0 / TQ2_0: one fp16 d per 256-block
    codes = (wt.reshape(-1, 256).astype(np.int16) + 1).astype(np.uint8)
    nb = codes.shape[0]
    d = np.full(nb, np.float16(beta), dtype=np.float16)
    uniform = True
    if name.endswith("attn_output.weight") and name.startswith("blk.0."):
        # per-block absmax-like scales: not one β, so the reader must dequantize to f32
        d = (np.float16(beta) * (1.0 + 0.25 * rng.random(nb))).astype(np.float16)
        if nb > 1 and d[0] == d[1]:
            d[1] = np.float16(float(d[1]) * 1.5)
        uniform = nb == 1
    elif nb > 1:
        # one all-zero block carrying an unrelated d: still one β
        codes[1] = 1
        wt = wt.copy().reshape(-1)
        wt[256:512] = 0
        wt = wt.reshape(rows, cols)
        d[1] = np.float16(3.75)
    data = enc_tq1(codes, d) if gt == "TQ1_0" else enc_tq2(codes, d)
    if uniform:
        entry.update(kind="ternary", bn_type="t2", ternary_sha256=sha(wt),
                     beta_f32=f32hex(np.float32(np.float16(beta))))
    else:
        entry.update(kind="ternary-nonuniform", bn_type="f32")
    return data, entry


# -------------------------------------------------------------------- HF

def st_dtype_size(dt):
    return {"BF16": 2, "F16": 2, "F32": 4, "U8": 1}[dt]


def write_hf(args, shape, layers, vocab, out):
    d, ff, _, h, kv, _, ctx = shape
    os.makedirs(out, exist_ok=True)
    fam = FAMILIES[args.family] if args.family else None
    onebit = bool(fam and fam.get("onebit"))
    arch = (fam.get("embedding") or ("1bitllm" if onebit else "llama")) if fam else "bitnet-b1.58"
    hd = family_shape(fam)[1] if fam else None
    tens = model_tensors(shape, layers, vocab, arch, hd, bool(fam and fam.get("in_norms")))
    fdt = "F32" if onebit else "BF16"  # the float tensors' dtype
    if fam and fam["tie"]:
        tens = [t for t in tens if t[0] != "output.weight"]
    packed = args.format in ("hf-packed", "hf-packed-bitlinear")
    divide = args.format == "hf-packed-bitlinear"
    if fam and fam["qc"] is None:  # no quantization_config: bf16 master weights
        packed = divide = False
    elif fam:  # the family's quantization_config decides the packing
        packed = fam["qc"].get("quantization_mode", "offline") == "offline"
        divide = fam["qc"].get("linear_class", "bitlinear") == "bitlinear"

    # (hf name, dtype, shape, producer) in file order
    plan = []
    for idx, (cname, hname, shp, kind) in enumerate(tens):
        if kind == "ternary" and packed:
            plan.append((hname, "U8", [shp[0] // 4, shp[1]], idx, cname, "packed"))
            plan.append((hname.replace(".weight", ".weight_scale"), "BF16", [1], idx, cname, "scale"))
        else:
            plan.append((hname, "F32" if kind == "inv_freq" else fdt, shp, idx, cname, kind))
    nshard = max(1, args.shards)
    per = (len(plan) + nshard - 1) // nshard
    shards = [plan[i * per:(i + 1) * per] for i in range(nshard)]
    shards = [s for s in shards if s]
    nshard = len(shards)
    names = (["model.safetensors"] if nshard == 1 else
             ["model-%05d-of-%05d.safetensors" % (i + 1, nshard) for i in range(nshard)])

    truth = {"format": args.format, "shape": args.shape, "arch": arch, "layers": layers, "vocab": vocab,
             "seed": args.seed, "scale_convention": "divide" if divide else "multiply", "tensors": []}
    if fam:
        truth["family"] = args.family
    tmap = {}
    weight_map = {}
    total = 0
    cache = {}
    for fname, items in zip(names, shards):
        header, off = {}, 0
        for hname, dt, shp, idx, cname, kind in items:
            n = int(np.prod(shp)) * st_dtype_size(dt)
            header[hname] = {"dtype": dt, "shape": shp, "data_offsets": [off, off + n]}
            off += n
            weight_map[hname] = fname
        total += off
        header["__metadata__"] = {"format": "pt"}
        hj = json.dumps(header, separators=(",", ":")).encode()
        hj += b" " * ((-len(hj)) % 8)
        with open(os.path.join(out, fname), "wb") as f:
            f.write(struct.pack("<Q", len(hj)) + hj)
            for hname, dt, shp, idx, cname, kind in items:
                rng = rng_for(args.seed, idx)
                if kind == "scale":
                    beta = cache.pop(cname)
                    ws = np.float32(1.0) / np.float32(beta) if divide else np.float32(beta)
                    bits = f32_to_bf16_bits(np.array([ws], dtype=np.float32))
                    f.write(bits.astype("<u2").tobytes())
                    wsf = bf16_bits_to_f32(bits)[0]
                    eff = (np.float32(1.0) / wsf) if divide else wsf
                    tmap[cname]["beta_f32"] = f32hex(eff)
                    tmap[cname]["weight_scale_bf16"] = int(bits[0])
                    continue
                entry = {"name": cname, "hf_name": hname, "shape": tens[idx][2]}
                if kind == "packed":
                    wt, beta = gen_ternary(rng, *tens[idx][2])
                    f.write(pack_hf(wt).tobytes())
                    cache[cname] = beta
                    entry.update(kind="ternary", bn_type="t2", ternary_sha256=sha(wt))
                    tmap[cname] = entry
                elif kind == "embed":
                    for chunk in embed_chunks(args.seed, idx, shp[0], shp[1]):
                        f.write(float_bytes(chunk, dt))
                    entry.update(kind="float", bn_type=dt.lower())
                elif kind == "norm":
                    f.write(float_bytes(gen_norm(rng, shp[0]), dt))
                    entry.update(kind="float", bn_type=dt.lower())
                elif kind == "inv_freq":  # HF's RoPE buffer, as torch computes it
                    e = np.arange(0, 2 * shp[0], 2, dtype=np.float32) / np.float32(2 * shp[0])
                    f.write((np.float32(1) / np.power(np.float32(fam["rope_theta"]), e)).astype("<f4").tobytes())
                    entry.update(kind="buffer", bn_type=None)
                elif kind == "gnorm":  # Gemma: the stored w of a (1 + w) norm
                    f.write(f32_to_bf16_bits(gen_norm(rng, shp[0]) - 1).astype("<u2").tobytes())
                    entry.update(kind="float", bn_type="f32")
                else:  # master weights (bf16; 1bitLLM's f32)
                    x = rng.standard_normal(tuple(shp)).astype(np.float32)
                    if onebit and cname == "blk.0.ffn_down.weight":
                        entry["planted"] = plant_rule_boundary(x)
                    f.write(float_bytes(x, dt))
                    entry.update(kind="master", bn_type=dt.lower() + "-or-t2")
                truth["tensors"].append(entry)
    if nshard > 1:
        with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)

    qc = {"quant_method": "bitnet", "linear_class": "bitlinear" if divide else "autobitlinear",
          "quantization_mode": "offline" if packed else "online"}
    if onebit:
        bos, eos = 1, 2
        eot = eos
        write_llama2_tokenizer(out, vocab)
    elif vocab == 4096 and os.path.isdir(TINY_DIR):
        for fn in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
            src = os.path.join(TINY_DIR, fn)
            if os.path.exists(src):
                shutil.copyfile(src, os.path.join(out, fn))
        tc = json.load(open(os.path.join(TINY_DIR, "config.json")))
        bos, eos = tc.get("bos_token_id", 4064), tc.get("eos_token_id", 4065)
        eot = 4073
    else:
        bos, eos, eot = write_hf_tokenizer(out, vocab, args.seed)
    cfg = {
        "architectures": ["BitNetForCausalLM"], "model_type": "bitnet", "hidden_act": "relu2",
        "hidden_size": d, "intermediate_size": ff, "num_hidden_layers": layers,
        "num_attention_heads": h, "num_key_value_heads": kv, "vocab_size": vocab,
        "max_position_embeddings": ctx, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
        "tie_word_embeddings": True, "torch_dtype": "bfloat16", "use_cache": True,
        "bos_token_id": bos, "eos_token_id": eos, "initializer_range": 0.02,
        "attention_bias": False, "quantization_config": qc,
    }
    if fam and fam.get("embedding"):
        return write_embedding_extras(out, fam, truth, d, ff, layers, h, kv, vocab, ctx)
    if onebit:
        # the keys of 1bitLLM's config.json (formats/1bitllm.md); torch_dtype and
        # transformers_version are left out (not in the sources at hand)
        cfg = {"architectures": ["BitnetForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
               "bos_token_id": fam["bos"], "eos_token_id": fam["eos"], "hidden_act": "silu", "hidden_size": d,
               "initializer_range": 0.02, "input_bits": 8, "intermediate_size": ff, "max_position_embeddings": ctx,
               "model_type": "llama", "num_attention_heads": h, "num_hidden_layers": layers,
               "num_key_value_heads": kv, "pad_token_id": 32000, "pretraining_tp": 1,
               "rms_norm_eps": fam["rms_norm_eps"], "rope_scaling": None, "rope_theta": fam["rope_theta"],
               "tie_word_embeddings": fam["tie"], "use_cache": True, "vocab_size": vocab, "weight_bits": 1}
    elif fam:
        r = fam["real"]
        cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
               "hidden_size": d, "intermediate_size": ff, "num_hidden_layers": layers,
               "num_attention_heads": h, "num_key_value_heads": kv, "head_dim": r["head_dim"],
               "vocab_size": vocab, "max_position_embeddings": ctx, "rms_norm_eps": fam["rms_norm_eps"],
               "rope_theta": fam["rope_theta"], "rope_scaling": None, "tie_word_embeddings": fam["tie"],
               "torch_dtype": "bfloat16", "use_cache": True, "eos_token_id": fam["eos"], "is_bitnet_config": True,
               "attention_bias": False, "mlp_bias": False, "pretraining_tp": 1, "quantization_config": fam["qc"]}
        if fam["bos"] is not None:
            cfg["bos_token_id"] = fam["bos"]
        cfg.update(fam.get("extra", {}))
        bos, eos = fam["gen_bos"], fam["eos"] if isinstance(fam["eos"], int) else fam["eos"][0]
        eot = eos
    text = json.dumps(cfg, indent=2)
    if fam and "dup_qc" in fam:  # a second quantization_config key, as published
        text = text[:text.rindex("}")] + ',\n  "quantization_config": %s\n}' % json.dumps(fam["dup_qc"])
    with open(os.path.join(out, "config.json"), "w") as f:
        f.write(text)
    with open(os.path.join(out, "generation_config.json"), "w") as f:
        json.dump({"_from_model_config": True, "bos_token_id": bos,
                   "eos_token_id": fam["eos"] if fam else [eos, eot],
                   "do_sample": True, "temperature": 0.8, "top_p": 0.95, "max_length": ctx}, f, indent=2)
    return truth


def float_bytes(x, dt):
    """A float32 array as the safetensors dtype dt (F32, F16 or BF16)."""
    if dt == "F32":
        return np.ascontiguousarray(x, dtype="<f4").tobytes()
    if dt == "F16":
        return np.ascontiguousarray(x, dtype="<f2").tobytes()
    return f32_to_bf16_bits(x).astype("<u2").tobytes()


def ref_beta(w):
    """Absmean as the references compute it: mean |w| in f64, to f32, >= 1e-5."""
    return np.float32(max(np.abs(w.astype(np.float64)).mean(), 1e-5))


def plant_rule_boundary(x, n=64):
    """Sets x[0, :n] (f32 latent weights, in place) to one value that
    1bitLLM's weight_quant, rint(w * s) with s = 1/beta in f32, and
    rint(w / beta) ternarize differently, beta the tensor's absmean with
    those values in it: a converter that divides gets these n weights wrong
    (in ffn_down they move the logits well past the tests' tolerance).
    Returns {index, count, value, code (the reciprocal rule's), divide_code}."""
    for attempt in range(200):
        beta = ref_beta(x)
        s = np.float32(1) / beta
        best = None
        for sign in (1, -1):  # at 1.5 beta both rules clamp to 1: only beta/2 can split them
            y = np.float32(sign * 0.5) * beta
            for direction in (np.float32(0), np.float32(sign * 4)):
                v = y
                for _ in range(256):
                    if np.rint(v * s) != np.rint(v / beta):
                        best = v
                        break
                    v = np.nextafter(v, direction, dtype=np.float32)
                if best is not None:
                    break
            if best is not None:
                break
        if best is not None:
            x[0, :n] = best
            b2 = ref_beta(x)
            s2 = np.float32(1) / b2
            rc, dc = (int(np.clip(np.rint(best * s2), -1, 1)), int(np.clip(np.rint(best / b2), -1, 1)))
            if rc != dc:
                return {"index": [0, 0], "count": n, "value": f32hex(best), "code": rc, "divide_code": dc}
        x[1, 0] = np.float32(x[1, 0] * np.float32(1.001) + np.float32(0.01 * (attempt + 1)))  # move beta, retry
    sys.exit("gen_checkpoint: found no weight the two ternarization rules round apart")


def write_llama2_tokenizer(out, vocab):
    """A tokenizer.json of the shape Hugging Face's converter gives Llama 2's
    SentencePiece model (1bitLLM ships Llama 2's): BPE with byte_fallback and
    fuse_unk, <unk> <s> </s> at 0-2, <0x00>..<0xFF> at 3-258, normalizer
    Prepend "▁" then Replace " " -> "▁" (SentencePiece's dummy prefix), no
    pre-tokenizer, a BOS post-processor; "</line>" added at 32000 (the pad
    id: the vocabulary has 32001 entries, the embedding 32002 rows). The
    pieces past the bytes are synthetic (merged from earlier ones)."""
    n_pieces = min(vocab, 32001) - 1
    toks = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)]
    base = list("\u2581etaoinshrdlucmfwypvbgkjqxzETAOINS.,0123456789")
    toks += base
    merges, last = [], base
    while len(toks) < n_pieces:  # every piece one longer, merged from its prefix and a character
        longer = []
        for a in last:
            for b in base:
                if len(toks) < n_pieces:
                    toks.append(a + b)
                    merges.append(a + " " + b)
                    longer.append(a + b)
        last = longer
    added = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
              "special": True} for i, t in enumerate(toks[:3])]
    added.append({"id": n_pieces, "content": "</line>", "single_word": False, "lstrip": False, "rstrip": False,
                  "normalized": False, "special": False})
    tj = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
          "normalizer": {"type": "Sequence", "normalizers": [
              {"type": "Prepend", "prepend": "\u2581"},
              {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
          "pre_tokenizer": None,
          "post_processor": {"type": "TemplateProcessing",
                             "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                        {"Sequence": {"id": "A", "type_id": 0}}],
                             "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                      {"Sequence": {"id": "A", "type_id": 0}},
                                      {"SpecialToken": {"id": "<s>", "type_id": 1}},
                                      {"Sequence": {"id": "B", "type_id": 1}}],
                             "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
          "decoder": {"type": "Sequence", "decoders": [
              {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
              {"type": "ByteFallback"}, {"type": "Fuse"},
              {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
          "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                    "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True,
                    "vocab": {t: i for i, t in enumerate(toks)}, "merges": merges}}
    with open(os.path.join(out, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tj, f, ensure_ascii=False)
    tc = {"add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>",
          "unk_token": "<unk>", "pad_token": "</line>", "legacy": True, "model_max_length": 2048,
          "tokenizer_class": "LlamaTokenizer", "clean_up_tokenization_spaces": False}
    with open(os.path.join(out, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(tc, f, ensure_ascii=False, indent=2)


def write_embedding_extras(out, fam, truth, d, ff, layers, h, kv, vocab, ctx):
    """config.json as a sentence-transformers Qwen3Model has it, 1_Pooling and
    modules.json (last token, Normalize), a tokenizer whose post-processor
    appends the end-of-text token (and no BOS), eos the <|im_end|> stand-in."""
    r = fam["real"]
    gemma = fam["embedding"] == "gemma3"
    tj = json.load(open(os.path.join(out, "tokenizer.json"), encoding="utf-8"))
    ids = {a["content"]: a["id"] for a in tj["added_tokens"]}
    bos, end, im_end = "<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"
    if gemma:  # <bos> text <eos>, eos the config's
        im_end = end
    st = lambda name, tid=0: {"SpecialToken": {"id": name, "type_id": tid}}
    seq = lambda name, tid=0: {"Sequence": {"id": name, "type_id": tid}}
    lead = [st(bos)] if gemma else []
    tj["post_processor"] = {"type": "TemplateProcessing",
                            "single": lead + [seq("A"), st(end)],
                            "pair": lead + [seq("A"), seq("B", 1), st(end, 1)],
                            "special_tokens": {n: {"id": n, "ids": [ids[n]], "tokens": [n]}
                                               for n in ([bos] if gemma else []) + [end]}}
    with open(os.path.join(out, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tj, f, ensure_ascii=False)
    tcp = os.path.join(out, "tokenizer_config.json")
    tc = json.load(open(tcp, encoding="utf-8"))
    tc.update(add_bos_token=gemma, bos_token=bos if gemma else None, eos_token=im_end, pad_token=end)
    tc.pop("chat_template", None)
    with open(tcp, "w", encoding="utf-8") as f:
        json.dump(tc, f, ensure_ascii=False, indent=2)
    cfg = {"architectures": ["Qwen3Model"], "model_type": "qwen3", "hidden_act": "silu", "hidden_size": d,
           "intermediate_size": ff, "num_hidden_layers": layers, "num_attention_heads": h,
           "num_key_value_heads": kv, "head_dim": r["head_dim"], "vocab_size": vocab,
           "max_position_embeddings": ctx, "rms_norm_eps": fam["rms_norm_eps"], "rope_theta": fam["rope_theta"],
           "rope_scaling": None, "tie_word_embeddings": True, "torch_dtype": "bfloat16", "use_cache": True,
           "attention_bias": False, "attention_dropout": 0.0, "bos_token_id": ids[end],
           "eos_token_id": ids[im_end], "sliding_window": None, "use_sliding_window": False,
           "max_window_layers": layers, "layer_types": ["full_attention"] * layers}
    if gemma:
        cfg.update({"architectures": ["Gemma3TextModel"], "model_type": "gemma3_text",
                    "hidden_activation": "gelu_pytorch_tanh", "query_pre_attn_scalar": r["head_dim"],
                    "rope_local_base_freq": 10000.0, "sliding_window": fam["test"].get("window", 512),
                    "_sliding_window_pattern": fam["test"].get("pattern", 6),
                    "layer_types": ["full_attention" if (i + 1) % fam["test"].get("pattern", 6) == 0
                                    else "sliding_attention" for i in range(layers)],
                    "attn_logit_softcapping": None, "final_logit_softcapping": None,
                    "use_bidirectional_attention": False, "bos_token_id": ids[bos], "eos_token_id": ids[end],
                    "pad_token_id": ids[end]})
        for k in ("hidden_act", "use_sliding_window", "max_window_layers"):
            cfg.pop(k)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    os.makedirs(os.path.join(out, "1_Pooling"), exist_ok=True)
    with open(os.path.join(out, "1_Pooling", "config.json"), "w") as f:
        json.dump({"word_embedding_dimension": d, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": False,
                   "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False,
                   "pooling_mode_weightedmean_tokens": False, "pooling_mode_lasttoken": True,
                   "include_prompt": True}, f, indent=2)
    with open(os.path.join(out, "modules.json"), "w") as f:
        json.dump([{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                   {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                   {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}],
                  f, indent=2)
    truth["embed_end_id"] = ids[end]
    truth["eos_id"] = ids[im_end]
    return truth


def spm_vocab(w, model, add_space_prefix, added=(), n_vocab=0):
    """A SentencePiece vocabulary as llama.cpp's _set_vocab_sentencepiece
    writes it (what bitnet.cpp's converters do for the 270M and for
    1bitLLM's models): model "llama", every piece with its score and type,
    no merges; then the added tokens (user-defined, score -1000) and
    "[PADi]" pieces (unused, score -1000) up to n_vocab.
    add_space_prefix None: no such entry (bitnet.cpp's BitnetModel writes none)."""
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=model)
    n = sp.get_piece_size()

    def kind(i):
        return (3 if sp.is_control(i) else 2 if sp.is_unknown(i) else 6 if sp.is_byte(i) else
                5 if sp.is_unused(i) else 1)
    types = [kind(i) for i in range(n)]
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from spm_ref import USER  # the trained model's user-defined symbols (no protobuf here to read their type)
    for u in USER:
        types[sp.piece_to_id(u)] = 4
    pieces, scores = [sp.id_to_piece(i) for i in range(n)], [sp.get_score(i) for i in range(n)]
    for a in added:
        if a not in pieces:
            pieces.append(a), scores.append(-1000.0), types.append(4)
    for i in range(1, n_vocab - len(pieces) + 1):
        pieces.append("[PAD%d]" % i), scores.append(-1000.0), types.append(5)
    w.add("tokenizer.ggml.model", 8, "llama")
    w.add("tokenizer.ggml.tokens", 9, (8, pieces))
    w.add("tokenizer.ggml.scores", 9, (6, scores))
    w.add("tokenizer.ggml.token_type", 9, (5, types))
    if add_space_prefix is not None:
        w.add("tokenizer.ggml.add_space_prefix", 7, add_space_prefix)
    return sp


def gguf_shape_keys(w, A, cfg):
    """The size, RoPE base and RMS epsilon entries every llama.cpp converter
    writes from a Hugging Face config (Model.set_gguf_parameters)."""
    for k, v in (("block_count", cfg["num_hidden_layers"]), ("context_length", cfg["max_position_embeddings"]),
                 ("embedding_length", cfg["hidden_size"]), ("feed_forward_length", cfg["intermediate_size"]),
                 ("attention.head_count", cfg["num_attention_heads"]),
                 ("attention.head_count_kv", cfg["num_key_value_heads"])):
        w.add("%s.%s" % (A, k), 4, v)
    w.add(A + ".rope.freq_base", 6, cfg["rope_theta"])
    w.add(A + ".attention.layer_norm_rms_epsilon", 6, cfg["rms_norm_eps"])


def st_tensors(hf):
    """(name, f32 array) of a one-file safetensors checkpoint (F32, F16 or BF16), in file order."""
    raw = open(os.path.join(hf, "model.safetensors"), "rb").read()
    (hl,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + hl])
    for hn, info in header.items():
        if hn == "__metadata__":
            continue
        a, b = info["data_offsets"]
        body = raw[8 + hl + a: 8 + hl + b]
        if info["dtype"] == "BF16":
            x = bf16_bits_to_f32(np.frombuffer(body, dtype="<u2"))
        else:
            x = np.frombuffer(body, dtype={"F32": "<f4", "F16": "<f2"}[info["dtype"]]).astype(np.float32)
        yield hn, x.reshape(info["shape"])


def gguf_tensor_name(hn, names, per):
    """llama.cpp's GGUF name of a Hugging Face tensor: names for the whole-model
    ones, else layers.N.<per key>.weight -> blk.N.<per value>.weight and a
    projection's own norm (<proj>.norm.weight) -> blk.N.<per value>_norm_in.weight."""
    if hn in names:
        return names[hn]
    parts = hn.split(".")
    i, rest = int(parts[1]), ".".join(parts[2:])
    if rest.endswith(".norm.weight"):
        return "blk.%d.%s_norm_in.weight" % (i, per[rest[:-len(".norm.weight")]])
    return "blk.%d.%s.weight" % (i, per[rest[:-len(".weight")]])


def write_gguf_file(out, w, data):
    with open(out, "wb") as f:
        f.write(w.head_bytes())
        for body in data:
            f.write(body + bytes((-len(body)) % w.alignment))


def bitnet_gguf(hf, out, model, outtype="f32", converter="2025"):
    """The GGUF bitnet.cpp's utils/convert-hf-to-gguf-bitnet.py (BitnetModel,
    gguf MODEL_ARCH.BITNET) makes of a 1bitLLM checkpoint (formats/1bitllm.md):
    architecture "bitnet" (the 2025 converter; see converter below); the base sizes, rope.freq_base, the RMS epsilon,
    file_type, vocab_size and linear RoPE scaling with factor 1; the
    SentencePiece vocabulary of MODEL (as the repository's tokenizer.model)
    with added_tokens.json's pieces and "[PADi]" up to vocab_size, the ids
    SpecialVocab finds (tokenizer.json's added tokens for tokenizer_config's
    bos/eos/unk/pad strings) and add_bos/add_eos; no add_space_prefix. Every
    projection goes through its weight_quant first (W·s rounded, clamped,
    divided by s, s = 1/mean|W| in f32), so the file holds ternary·(1/s),
    one magnitude per tensor;
    no q/k permutation (BitnetModel is not LlamaModel); the inv_freq buffers
    dropped. outtype f32 (the default) keeps every tensor f32; f16 stores
    the 2-D weights but token_embd f16. converter "current": the version
    since bitnet.cpp 3b04140 (2026-07), architecture "bitnet-b1.58" and
    rope.dimension_count (hidden / heads) instead of the RoPE scaling keys;
    the rest as above (formats/1bitllm.md)."""
    cfg = json.load(open(os.path.join(hf, "config.json")))
    need(cfg["architectures"][0] in ("BitnetForCausalLM", "BitNetForCausalLM"),
         "bitnet_gguf: a BitnetForCausalLM checkpoint is expected")
    A = "bitnet" if converter == "2025" else "bitnet-b1.58"
    w = GGUFWriter()
    w.add("general.architecture", 8, A)
    w.add("general.name", 8, os.path.basename(hf.rstrip("/")))
    gguf_shape_keys(w, A, cfg)
    w.add("general.file_type", 4, {"f32": 0, "f16": 1, "i2_s": 40}[outtype])
    w.add(A + ".vocab_size", 4, cfg["vocab_size"])
    if converter == "2025":
        w.add(A + ".rope.scaling.type", 8, "linear")
        w.add(A + ".rope.scaling.factor", 6, 1.0)
    else:
        w.add(A + ".rope.dimension_count", 4, cfg["hidden_size"] // cfg["num_attention_heads"])
    ap = os.path.join(hf, "added_tokens.json")
    added = list(json.load(open(ap, encoding="utf-8"))) if os.path.exists(ap) else []
    spm_vocab(w, model, None, added, cfg["vocab_size"])
    tj = json.load(open(os.path.join(hf, "tokenizer.json"), encoding="utf-8"))
    tc = json.load(open(os.path.join(hf, "tokenizer_config.json"), encoding="utf-8"))
    ids = {a["content"]: a["id"] for a in tj["added_tokens"]}
    for key, name in (("bos", "bos_token"), ("eos", "eos_token"), ("unknown", "unk_token"),
                      ("padding", "pad_token")):
        if tc.get(name) in ids:
            w.add("tokenizer.ggml.%s_token_id" % key, 4, ids[tc[name]])
    for k in ("add_bos_token", "add_eos_token"):
        if k in tc:
            w.add("tokenizer.ggml." + k, 7, tc[k])
    d, h = cfg["hidden_size"], cfg["num_attention_heads"]
    shape = (d, cfg["intermediate_size"], cfg["num_hidden_layers"], h, cfg["num_key_value_heads"], 0, 0)
    names = {hn: gn for gn, hn, _, _ in model_tensors(shape, cfg["num_hidden_layers"], cfg["vocab_size"],
                                                      "1bitllm")}
    data = []
    for hn, x in st_tensors(hf):
        gn = names[hn]
        if gn is None:  # rotary_emb.inv_freq
            continue
        if x.ndim == 2 and gn != "token_embd.weight":
            # torch sums |W| in f32; the mean here is bn's and the reference's (summed in
            # double, rounded once), which may differ from torch's in the last bit
            s = np.float32(1) / np.float32(max(np.abs(x.astype(np.float64)).mean(), 1e-5))
            x = (np.clip(np.rint(x * s), -1, 1) / s).astype(np.float32)
            if outtype == "i2_s":
                # what llama-quantize's I2_S makes of the f32 file: the codes, and the
                # one magnitude (1/s in f32) as the tensor's scale
                nz = np.abs(x[x != 0])
                beta = np.float32(nz.max()) if nz.size else np.float32(1)
                body = enc_i2s(np.rint(x / beta).astype(np.int8), beta)
                w.add_tensor(gn, list(x.shape), GT["I2_S"], len(body))
                data.append(body)
                continue
        f16 = outtype == "f16" and x.ndim == 2 and gn != "token_embd.weight"
        body = x.astype("<f2" if f16 else "<f4").tobytes()
        w.add_tensor(gn, list(x.shape), GT["F16" if f16 else "F32"], len(body))
        data.append(body)
    write_gguf_file(out, w, data)


def embedding_gguf_gemma3(hf, out, model, add_space_prefix=False, drop_post_norms=False):
    """The GGUF of a Gemma 3 (BitNet-embedding-270M) checkpoint as
    bitnet.cpp's embedding converter writes it: architecture gemma3, no
    sliding-window pattern (the window only when the config's is not the
    default, so a small test window travels), pooling 3 with add_eos, the
    SentencePiece vocabulary of MODEL, 1 added to every Gemma norm (not to
    the projections' input norms), norms f32, the embedding f16, projections I2_S.
    drop_post_norms: without Gemma's post norms (a wrong file, for the refusal test)."""
    cfg = json.load(open(os.path.join(hf, "config.json")))
    need(cfg["model_type"] == "gemma3_text", "embedding_gguf: a gemma3_text checkpoint is expected")
    A = "gemma3"
    w = GGUFWriter()
    hd = cfg["head_dim"]
    w.add("general.architecture", 8, A)
    w.add("general.name", 8, os.path.basename(hf.rstrip("/")))
    gguf_shape_keys(w, A, cfg)
    for k, v in (("attention.key_length", hd), ("attention.value_length", hd), ("pooling_type", 3)):
        w.add("%s.%s" % (A, k), 4, v)
    if cfg.get("sliding_window") not in (None, 512):
        w.add(A + ".attention.sliding_window", 4, cfg["sliding_window"])
    w.add("general.file_type", 4, 40)
    sp = spm_vocab(w, model, add_space_prefix)
    w.add("tokenizer.ggml.bos_token_id", 4, sp.bos_id())
    w.add("tokenizer.ggml.eos_token_id", 4, sp.eos_id())
    w.add("tokenizer.ggml.padding_token_id", 4, sp.pad_id())
    w.add("tokenizer.ggml.add_bos_token", 7, True)
    w.add("tokenizer.ggml.add_eos_token", 7, True)
    names = {"embed_tokens.weight": "token_embd.weight", "norm.weight": "output_norm.weight"}
    per = {"input_layernorm": "attn_norm", "post_attention_layernorm": "post_attention_norm",
           "pre_feedforward_layernorm": "ffn_norm", "post_feedforward_layernorm": "post_ffw_norm",
           "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
           "self_attn.o_proj": "attn_output", "self_attn.q_norm": "attn_q_norm", "self_attn.k_norm": "attn_k_norm",
           "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
    data = []
    for hn, x in st_tensors(hf):
        gn = gguf_tensor_name(hn[len("model."):] if hn.startswith("model.") else hn, names, per)
        if drop_post_norms and ("post_attention_norm" in gn or "post_ffw_norm" in gn):
            continue
        if x.ndim == 1 and "_norm_in." not in gn:
            x = x + np.float32(1)
        if x.ndim == 2 and gn != "token_embd.weight":
            scale = np.float32(max(np.abs(x.astype(np.float64)).mean(), 1e-5))
            q = np.clip(np.rint(x / scale), -1, 1).astype(np.int8)
            body = enc_i2s(q, scale)
            w.add_tensor(gn, list(x.shape), GT["I2_S"], len(body))
        elif x.ndim == 1:  # llama.cpp's writer keeps 1-D tensors f32: 1 + w exact, as bn's HF path stores it
            body = x.astype("<f4").tobytes()
            w.add_tensor(gn, list(x.shape), GT["F32"], len(body))
        else:
            body = x.astype("<f2").tobytes()
            w.add_tensor(gn, list(x.shape), GT["F16"], len(body))
        data.append(body)
    write_gguf_file(out, w, data)


def embedding_gguf(hf, out):
    """The GGUF bitnet.cpp's utils/convert-bitnet-embedding-to-gguf.py makes of
    a Qwen3 embedding checkpoint (--outtype i2_s), written here from its
    published behaviour: architecture qwen3, head_dim as key/value length and
    rope dimension, pooling_type from 1_Pooling (3: last), the gpt2 vocabulary
    with pre "qwen2", eos the token the tokenizer appends, add_eos_token;
    projections I2_S (scale = mean|W| in f32, q = clip(round(W/scale)), the
    scale after the packed bytes in a 32-byte tail), everything else f16,
    <proj>.norm.weight as blk.N.<proj>_norm_in.weight, no output.weight."""
    cfg = json.load(open(os.path.join(hf, "config.json")))
    need(cfg["model_type"] == "qwen3", "embedding_gguf: a qwen3 checkpoint is expected")
    A = "qwen3"
    w = GGUFWriter()
    hd = cfg["head_dim"]
    w.add("general.architecture", 8, A)
    w.add("general.name", 8, os.path.basename(hf.rstrip("/")))
    for k, v in (("block_count", cfg["num_hidden_layers"]), ("context_length", cfg["max_position_embeddings"]),
                 ("embedding_length", cfg["hidden_size"]), ("feed_forward_length", cfg["intermediate_size"]),
                 ("attention.head_count", cfg["num_attention_heads"]),
                 ("attention.head_count_kv", cfg["num_key_value_heads"]), ("vocab_size", cfg["vocab_size"]),
                 ("rope.dimension_count", hd), ("attention.key_length", hd), ("attention.value_length", hd),
                 ("pooling_type", 3)):
        w.add("%s.%s" % (A, k), 4, v)
    w.add(A + ".rope.freq_base", 6, cfg["rope_theta"])
    w.add(A + ".attention.layer_norm_rms_epsilon", 6, cfg["rms_norm_eps"])
    w.add("general.file_type", 4, 40)
    tj = json.load(open(os.path.join(hf, "tokenizer.json"), encoding="utf-8"))
    vocab = dict(tj["model"]["vocab"])
    for a in tj["added_tokens"]:
        vocab[a["content"]] = a["id"]
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    special = {a["id"] for a in tj["added_tokens"]}
    end = tj["post_processor"]["special_tokens"]
    end_id = list(end.values())[-1]["ids"][0]
    w.add("tokenizer.ggml.model", 8, "gpt2")
    w.add("tokenizer.ggml.pre", 8, "qwen2")
    w.add("tokenizer.ggml.tokens", 9, (8, tokens))
    w.add("tokenizer.ggml.token_type", 9, (5, [3 if i in special else 1 for i in range(len(tokens))]))
    w.add("tokenizer.ggml.merges", 9, (8, tj["model"]["merges"]))
    w.add("tokenizer.ggml.bos_token_id", 4, cfg["bos_token_id"])
    w.add("tokenizer.ggml.eos_token_id", 4, end_id)
    w.add("tokenizer.ggml.add_eos_token", 7, True)
    w.add("tokenizer.ggml.add_bos_token", 7, False)  # SpecialVocab copies tokenizer_config's
    names = {"embed_tokens.weight": "token_embd.weight", "norm.weight": "output_norm.weight"}
    per = {"input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm", "self_attn.q_proj": "attn_q",
           "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
           "self_attn.q_norm": "attn_q_norm", "self_attn.k_norm": "attn_k_norm", "mlp.gate_proj": "ffn_gate",
           "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
    data = []
    for hn, x in st_tensors(hf):
        gn = gguf_tensor_name(hn, names, per)
        if x.ndim == 2 and gn != "token_embd.weight":
            scale = np.float32(max(np.mean(np.abs(x.reshape(-1))), np.float32(1e-5)))
            q = np.clip(np.round(x * (np.float32(1) / scale)), -1, 1).astype(np.int8)
            body = enc_i2s(q, scale)
            w.add_tensor(gn, list(x.shape), GT["I2_S"], len(body))
        else:
            body = x.astype("<f2").tobytes()
            w.add_tensor(gn, list(x.shape), GT["F16"], len(body))
        data.append(body)
    write_gguf_file(out, w, data)


def write_hf_tokenizer(out, vocab, seed):
    tokens, merges, specials = synth_vocab(vocab, seed)
    base = len(tokens)
    bos, eos = base, base + 1
    eot = base + specials.index("<|eot_id|>")
    added = [{"id": base + i, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i, s in enumerate(specials)]
    tj = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": LLAMA3_REGEX}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
        "post_processor": {"type": "Sequence", "processors": [
            {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
            {"type": "TemplateProcessing",
             "single": [{"SpecialToken": {"id": specials[0], "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
             "pair": [{"SpecialToken": {"id": specials[0], "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                      {"SpecialToken": {"id": specials[0], "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
             "special_tokens": {specials[0]: {"id": specials[0], "ids": [bos], "tokens": [specials[0]]}}}]},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": True,
                  "vocab": {t: i for i, t in enumerate(tokens)}, "merges": merges},
    }
    with open(os.path.join(out, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tj, f, ensure_ascii=False)
    tc = {"added_tokens_decoder": {str(a["id"]): {k: a[k] for k in ("content", "lstrip", "normalized", "rstrip",
                                                                   "single_word", "special")} for a in added},
          "bos_token": specials[0], "eos_token": specials[1], "chat_template": HF_CHAT_TEMPLATE,
          "clean_up_tokenization_spaces": True, "model_input_names": ["input_ids", "attention_mask"],
          "model_max_length": 1000000, "tokenizer_class": "PreTrainedTokenizerFast"}
    with open(os.path.join(out, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(tc, f, ensure_ascii=False, indent=2)
    return bos, eos, eot


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--format", choices=FORMATS, help="required unless --embedding-gguf")
    ap.add_argument("--shape", default="tiny", choices=sorted(SHAPES) + sorted(TEST_SHAPES))
    ap.add_argument("--layers", type=int)
    ap.add_argument("--vocab", type=int)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--arch", default="bitnet-b1.58", choices=["bitnet-b1.58", "bitnet-25", "bitnet", "llama"],
                    help="GGUF general.architecture (llama adds an untied output.weight, no sub-norms)")
    ap.add_argument("--family", choices=sorted(FAMILIES),
                    help="hf-* only: that family's config and scaled shape (FAMILIES); --shape is ignored")
    ap.add_argument("--gguf-version", type=int, default=3, choices=[2, 3])
    ap.add_argument("--alignment", type=int, default=0, help="write general.alignment (default: absent = 32)")
    ap.add_argument("--inject", choices=["absurd-tensor-count", "absurd-kv-count", "absurd-string-len",
                                         "offset-past-end", "offset-shared", "unknown-type", "i2s-nan-scale", "i2s-zero-scale",
                                         "i2s-bad-code", "nested-array", "float-near-ternary",
                                         "float-special", "norm-in-twice"],
                    help="write a deliberately malformed file (for error tests)")
    ap.add_argument("--hidden-act", metavar="ACT",
                    help="gguf-*: write <arch>.hidden_activation = ACT (llama.cpp's optional key: relu2, silu)")
    ap.add_argument("--master", action="store_true",
                    help="gguf-f32/f16/bf16: projections as random latent weights (a master checkpoint's float "
                         "conversion, for bn-quant) instead of the converters' ternary values times beta")
    ap.add_argument("--no-truth", action="store_true", help="no sidecar (and --fast-ternary hashes nothing)")
    ap.add_argument("--fast-ternary", action="store_true",
                    help="gguf-i2_s only: ternary values from random bytes, written in chunks (other values "
                         "than the default for the same seed; p = 1/4, 1/2, 1/4); for the 100b shape")
    ap.add_argument("--embedding-gguf", metavar="HF_DIR",
                    help="write OUT as the I2_S GGUF bitnet.cpp's embedding converter makes of HF_DIR (qwen3)")
    ap.add_argument("--bitnet-gguf", metavar="HF_DIR",
                    help="write OUT as the GGUF (architecture bitnet; see --converter) bitnet.cpp's convert-hf-to-gguf-bitnet.py "
                         "makes of the 1bitLLM checkpoint HF_DIR; needs --spm-model")
    ap.add_argument("--outtype", default="f32", choices=["f32", "f16", "i2_s"],
                    help="--bitnet-gguf: its --outtype (i2_s: the f32 file through llama-quantize I2_S: projections "
                         "I2_S, the rest f32)")
    ap.add_argument("--converter", default="2025", choices=["2025", "current"],
                    help="--bitnet-gguf: the converter's version (current: architecture bitnet-b1.58)")
    ap.add_argument("--spm-model", metavar="MODEL",
                    help="--embedding-gguf of a gemma3 checkpoint, --bitnet-gguf: the SentencePiece model of its "
                         "vocabulary")
    ap.add_argument("--space-prefix", action="store_true",
                    help="--embedding-gguf gemma3: write add_space_prefix true (Llama 2's kind: a space before the text)")
    ap.add_argument("--drop-post-norms", action="store_true",
                    help="--embedding-gguf gemma3: leave Gemma's post norms out (a wrong file)")
    ap.add_argument("--gguf-add-bos", choices=["true", "false", "absent"], default="true",
                    help="GGUF formats: tokenizer.ggml.add_bos_token, or none (the reader's default decides)")
    ap.add_argument("--rope-scaling", metavar="TYPE:FACTOR",
                    help="GGUF formats: write <arch>.rope.scaling.type and .factor")
    ap.add_argument("--gguf-pre", metavar="NAME",
                    help="GGUF formats: write tokenizer.ggml.pre NAME (bitnet.cpp's official file has none)")
    ap.add_argument("--chat-template", metavar="FILE",
                    help="GGUF formats: this tokenizer.chat_template instead of bitnet.cpp's placeholder")
    ap.add_argument("out")
    args = ap.parse_args()
    if args.bitnet_gguf:
        need(args.spm_model, "--bitnet-gguf needs --spm-model")
        return bitnet_gguf(args.bitnet_gguf, args.out, args.spm_model, args.outtype, args.converter)
    if args.embedding_gguf and args.spm_model:
        return embedding_gguf_gemma3(args.embedding_gguf, args.out, args.spm_model, args.space_prefix,
                                     args.drop_post_norms)
    if args.embedding_gguf:
        return embedding_gguf(args.embedding_gguf, args.out)
    need(args.format, "--format is required")
    shape = SHAPES[args.shape] if args.shape in SHAPES else TEST_SHAPES[args.shape]
    if args.family:
        if not args.format.startswith("hf-"):
            sys.exit("gen_checkpoint: --family writes HF checkpoints only")
        shape = family_shape(FAMILIES[args.family])[0]
    need(not args.fast_ternary or (args.format == "gguf-i2_s" and not args.inject),
         "--fast-ternary writes gguf-i2_s only, without --inject")
    layers = args.layers if args.layers is not None else shape[2]
    vocab = args.vocab if args.vocab is not None else shape[5]
    if args.format.startswith("hf-"):
        truth = write_hf(args, shape, layers, vocab, args.out)
    else:
        truth = write_gguf(args, shape, layers, vocab, args.out)
    if not args.no_truth:
        with open(args.out.rstrip("/") + ".truth.json", "w") as f:
            json.dump(truth, f, indent=1)


if __name__ == "__main__":
    main()
