#!/usr/bin/python3
"""check_convert.py — checks a .bn file against the checkpoint it was
converted from, parsing the source independently (GGUF from ggml's
docs/gguf.md, safetensors from its README, the ternary byte layouts from
/work/shared/docs/formats.md §2.1 and §4) and the .bn through bnread.py.

  check_convert.py [--truth FILE.truth.json] [--quiet] SOURCE OUT.bn

SOURCE: a .gguf file or a Hugging Face checkpoint directory.

Checked:
  * the tensor set and every shape (outermost first);
  * ternary tensors (I2_S, uniform TQ1_0/TQ2_0, HF packed uint8 + weight_scale):
    every value and β identical (β for the `divide` convention within 1 ulp);
  * float tensors (F32/F16/BF16) byte-identical and of the same type; Q8_0 and
    non-uniform TQ tensors: f32 values bit-identical to the exact dequantization;
  * HF bf16 master weights: kept as floats with identical values, or `t2` with
    absmean (β = mean|W|, w = clamp(round(W/β), -1, 1)) up to rounding ties;
  * hyper-parameters, token ids, chat keys, the vocabulary;
  * with --truth (default: SOURCE.truth.json when it exists): the generator's
    recorded ternary values and β.
Exit 0 when everything matches, 1 with one line per problem otherwise.
"""
import hashlib
import json
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bnread  # noqa: E402

T_F32, T_F16, T_BF16, T_I8, T_T2 = 0, 1, 2, 3, 4


class Problems:
    def __init__(self):
        self.items = []

    def add(self, msg):
        self.items.append(msg)


# ==================================================================== GGUF

GV_FMT = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<B", 10: "<Q", 11: "<q", 12: "<d"}
GV_NP = {0: "u1", 1: "i1", 2: "<u2", 3: "<i2", 4: "<u4", 5: "<i4", 6: "<f4", 7: "u1", 10: "<u8", 11: "<i8",
         12: "<f8"}


class GGUF:
    pass


def _gstr(f):
    n = struct.unpack("<Q", f.read(8))[0]
    return f.read(n)


def _gval(f, t):
    if t in GV_FMT:
        fmt = GV_FMT[t]
        v = struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]
        return bool(v) if t == 7 else v
    if t == 8:
        return _gstr(f)
    if t == 9:
        et, n = struct.unpack("<IQ", f.read(12))
        if et in GV_NP:
            w = np.dtype(GV_NP[et]).itemsize
            return ("arr", et, np.frombuffer(f.read(n * w), dtype=GV_NP[et]))
        return ("arr", et, [_gval(f, et) for _ in range(n)])
    raise ValueError("unknown GGUF value type %d" % t)


def parse_gguf(path):
    g = GGUF()
    with open(path, "rb") as f:
        if f.read(4) != b"GGUF":
            raise ValueError("not a GGUF file")
        g.version, nt, nkv = struct.unpack("<IQQ", f.read(20))
        g.kv = {}
        for _ in range(nkv):
            key = _gstr(f).decode()
            t = struct.unpack("<I", f.read(4))[0]
            g.kv[key] = _gval(f, t)
        g.tensors = []
        for _ in range(nt):
            name = _gstr(f).decode()
            nd = struct.unpack("<I", f.read(4))[0]
            ne = list(struct.unpack("<%dQ" % nd, f.read(8 * nd)))
            gt, off = struct.unpack("<IQ", f.read(12))
            g.tensors.append({"name": name, "ne": ne, "type": gt, "rel": off})
        g.alignment = g.kv.get("general.alignment", 32)
        pos = f.tell()
        g.data_start = (pos + g.alignment - 1) // g.alignment * g.alignment
    g.path = path
    return g


def gkv_str(g, key):
    v = g.kv.get(key)
    return v.decode("utf-8") if isinstance(v, bytes) else v


def gguf_nbytes(gt, n, k):
    import gguf_blocks  # k-quants and IQ*_BN (imported here: it imports this module)
    if gguf_blocks.nbytes(gt, n, k) is not None:
        return gguf_blocks.nbytes(gt, n, k)
    return {0: 4 * n, 1: 2 * n, 30: 2 * n, 8: n // 32 * 34, 34: n // 256 * 54, 35: n // 256 * 66,
            36: n // 4 + 32}[gt]


def f16(b):
    return np.frombuffer(b, dtype="<f2").astype(np.float32)


def dec_i2s(raw, n):
    """-> (codes uint8 [n], β f32). 128-weight blocks of 32 bytes; element j
    of a block lives in byte j % 32 at bit 6 - 2*(j // 32)."""
    b = np.frombuffer(raw, dtype=np.uint8, count=n // 4).reshape(-1, 32)
    codes = np.empty((b.shape[0], 128), dtype=np.uint8)
    for grp in range(4):
        codes[:, grp * 32:(grp + 1) * 32] = (b >> (6 - 2 * grp)) & 3
    beta = np.frombuffer(raw, dtype="<f4", count=1, offset=n // 4)[0]
    return codes.reshape(-1), np.float32(beta)


def dec_tq2(raw, n):
    """-> (codes [nb, 256], d16 raw uint16 [nb], d f32 [nb])."""
    nb = n // 256
    blk = np.frombuffer(raw, dtype=np.uint8).reshape(nb, 66)
    qs = blk[:, :64].reshape(nb, 2, 32)               # [blk, half c, m]
    codes = np.empty((nb, 2, 4, 32), dtype=np.uint8)  # element 128c + 32l + m
    for l in range(4):
        codes[:, :, l, :] = (qs >> (2 * l)) & 3
    dbits = blk[:, 64:66].copy().view("<u2").reshape(nb)
    return codes.reshape(nb, 256), dbits, dbits.view("<f2").astype(np.float32)


def _tq1_digits(byte, count):
    """digit n (most significant first) of bytes holding ceil(256*v/243)."""
    out = []
    for n in range(count):
        t = (byte.astype(np.uint16) * (3 ** n)) & 0xFF
        out.append(((t * 3) >> 8).astype(np.uint8))
    return out


def dec_tq1(raw, n):
    nb = n // 256
    blk = np.frombuffer(raw, dtype=np.uint8).reshape(nb, 54)
    codes = np.empty((nb, 256), dtype=np.uint8)
    for nn, dg in enumerate(_tq1_digits(blk[:, :32], 5)):       # elements m + 32n
        codes[:, 32 * nn:32 * nn + 32] = dg
    for nn, dg in enumerate(_tq1_digits(blk[:, 32:48], 5)):     # 160 + m + 16n
        codes[:, 160 + 16 * nn:160 + 16 * nn + 16] = dg
    for nn, dg in enumerate(_tq1_digits(blk[:, 48:52], 4)):     # 240 + j + 4n
        codes[:, 240 + 4 * nn:240 + 4 * nn + 4] = dg
    dbits = blk[:, 52:54].copy().view("<u2").reshape(nb)
    return codes, dbits, dbits.view("<f2").astype(np.float32)


def dec_q8_0(raw, n):
    blk = np.frombuffer(raw, dtype=np.uint8).reshape(n // 32, 34)
    d = blk[:, :2].copy().view("<f2").astype(np.float32).reshape(-1, 1)
    q = blk[:, 2:].view(np.int8).astype(np.float32)
    return (q * d).astype(np.float32).reshape(-1)


def tq_expect(codes, dbits, d):
    """The reader's rule: t2 when no code is 3 and every block with a nonzero
    weight has the same fp16 d, a positive finite value."""
    if (codes == 3).any():
        return None
    nz = (codes != 1).any(axis=1)
    if not nz.any():
        return np.float32(d[0]) if np.isfinite(d[0]) and d[0] > 0 else np.float32(1.0)
    ds = np.unique(dbits[nz])
    if len(ds) != 1:
        return None
    beta = np.float32(np.array([ds[0]], dtype="<u2").view("<f2")[0])
    if not np.isfinite(beta) or not beta > 0:
        return None
    return beta


def bits_equal(a, b):
    a = np.ascontiguousarray(a, dtype=np.float32)
    b = np.ascontiguousarray(b, dtype=np.float32)
    return a.shape == b.shape and np.array_equal(a.view(np.uint32), b.view(np.uint32))


def check_blocks(name, gt, raw, n, k, bt, got, P):
    """Q4_K/Q5_K/Q6_K: f32 bit-identical to ggml's dequantization; IQ1_BN/
    IQ2_BN: t2 with identical values and β when the rows share one scale,
    else exact f32; TL1/TL2: t2 with identical values and β, decoded with the
    tiles of --tl-config or bitnet.cpp's presets (tests/ref/gguf_blocks.py).
    None for other types."""
    import gguf_blocks as gb
    if gt in gb.DEQUANT:
        if bt.type != T_F32:
            P.add("%s: GGML type %d became %s, f32 expected" % (name, gt, bnread.TYPES.get(bt.type)))
        elif not bits_equal(bnread.to_f32(bt.type, got, bt.shape).reshape(-1), gb.DEQUANT[gt](raw, n)):
            P.add("%s: GGML type %d values differ from the exact dequantization" % (name, gt))
        return True
    if gt in (gb.TL1, gb.TL2):
        codes, beta = gb.dec_tl(gt, raw, n // k, k, gb.tl_tile(gt, n // k, k))
        if bt.type != T_T2:
            P.add("%s: TL1/TL2 became %s, t2 expected" % (name, bnread.TYPES.get(bt.type)))
            return True
        w, b = bnread.t2_decode(got, bt.shape)
        if not np.array_equal(w, codes.astype(np.int8) - 1):
            P.add("%s: ternary values differ" % name)
        if not bits_equal(np.array([b]), np.array([beta])):
            P.add("%s: β %r, source %r" % (name, float(b), float(beta)))
        return True
    if gt in (gb.IQ1_BN, gb.IQ2_BN):
        codes, bits, d = gb.dec_iqbn(gt, raw, n, k)
        beta = gb.iqbn_expect(codes, bits, d)
        if beta is None:
            if bt.type != T_F32:
                P.add("%s: IQ*_BN with several scales became %s, f32 expected" % (name, bnread.TYPES.get(bt.type)))
            elif not bits_equal(bnread.to_f32(bt.type, got, bt.shape).reshape(-1),
                                gb.iqbn_values(codes, d).reshape(-1)):
                P.add("%s: IQ*_BN values differ from the exact dequantization" % name)
            return True
        if bt.type != T_T2:
            P.add("%s: IQ*_BN with one scale became %s, t2 expected" % (name, bnread.TYPES.get(bt.type)))
            return True
        w, b = bnread.t2_decode(got, bt.shape)
        want = codes.astype(np.int8) - 1
        want[d == 0] = 0  # rows whose scale is 0 are zero
        if not np.array_equal(w, want):
            P.add("%s: ternary values differ" % name)
        if not bits_equal(np.array([b]), np.array([beta])):
            P.add("%s: β %r, source %r" % (name, float(b), float(beta)))
        return True
    return None


BITNET_ARCHS = ("bitnet", "bitnet-b1.58", "bitnet-25")
# architectures whose float projections the converters write as ternary·β:
# the BitNet ones, and llama (bitnet.cpp's LlamaModel: Falcon3, Falcon-E,
# Llama3-8B-1.58 as (code - 1) / weight_scale)
FLOAT_TERNARY_ARCHS = BITNET_ARCHS + ("llama",)


def float_values(raw, gt):
    """An F32 (0), F16 (1) or BF16 (30) tensor's values as float32."""
    if gt == 0:
        return np.frombuffer(raw, dtype="<f4")
    if gt == 1:
        return np.frombuffer(raw, dtype="<f2").astype(np.float32)
    return (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)


def float_ternary_beta(raw, gt):
    """β when every value is 0 or ±β for one positive finite β (what the
    BitNet converters write after weight_quant), else None."""
    a = np.unique(np.abs(float_values(raw, gt)))
    a = a[a != 0]
    if len(a) != 1 or not np.isfinite(a[0]):
        return None
    return np.float32(a[0])


def check_gguf(src, m, P):
    g = parse_gguf(src)
    arch = gkv_str(g, "general.architecture")
    canon = {"bitnet-b1.58": "bitnet-b1.58", "bitnet-25": "bitnet-b1.58", "bitnet": "bitnet", "llama": "llama"}
    A = arch
    # ---- tensors
    names = [t["name"] for t in g.tensors]
    if sorted(names) != sorted(t.name for t in m.tensors):
        P.add("tensor set differs: source %d, bn %d (missing %s, extra %s)" % (
            len(names), len(m.tensors), sorted(set(names) - set(m.by_name))[:5],
            sorted(set(m.by_name) - set(names))[:5]))
    checked = 0
    with open(src, "rb") as f:
        for t in g.tensors:
            name = t["name"]
            bt = m.by_name.get(name)
            if bt is None:
                continue
            ne = t["ne"]
            shape = list(reversed(ne))
            if bt.shape != shape:
                P.add("%s: shape %s, source %s" % (name, bt.shape, shape))
                continue
            n = int(np.prod(ne))
            k = ne[0]
            f.seek(g.data_start + t["rel"])
            raw = f.read(gguf_nbytes(t["type"], n, k))
            got = m.tensor_bytes(bt)
            gt = t["type"]
            beta = float_ternary_beta(raw, gt) if (gt in (0, 1, 30) and arch in FLOAT_TERNARY_ARCHS and len(ne) == 2
                                                   and name.split(".")[-2] in PROJ) else None
            if beta is not None:
                # the converters' ternary·β: t2 with β as stored
                vals = float_values(raw, gt)
                if bt.type != T_T2:
                    P.add("%s: ternary·β %s became %s, t2 expected" % (name, {0: "F32", 1: "F16", 30: "BF16"}[gt],
                                                                         bnread.TYPES.get(bt.type)))
                    continue
                w, b = bnread.t2_decode(got, bt.shape)
                if not np.array_equal(w.reshape(-1), np.sign(vals).astype(np.int8)):
                    P.add("%s: ternary values differ" % name)
                if not bits_equal(np.array([b], dtype=np.float32), np.array([beta], dtype=np.float32)):
                    P.add("%s: β %r, source %r" % (name, float(b), float(beta)))
            elif gt in (0, 1, 30):
                want_type = {0: T_F32, 1: T_F16, 30: T_BF16}[gt]
                if bt.type != want_type:
                    P.add("%s: bn type %s, source GGML type %d" % (name, bnread.TYPES.get(bt.type), gt))
                elif got != raw:
                    P.add("%s: bytes differ from the source" % name)
            elif gt == 8:
                want = dec_q8_0(raw, n)
                if bt.type != T_F32:
                    P.add("%s: Q8_0 became %s, f32 expected" % (name, bnread.TYPES.get(bt.type)))
                elif not bits_equal(bnread.to_f32(bt.type, got, bt.shape).reshape(-1), want):
                    P.add("%s: Q8_0 values differ from the exact dequantization" % name)
            elif gt == 36:
                codes, beta = dec_i2s(raw, n)
                if bt.type != T_T2:
                    P.add("%s: I2_S became %s, t2 expected" % (name, bnread.TYPES.get(bt.type)))
                    continue
                w, b = bnread.t2_decode(got, bt.shape)
                if not np.array_equal(w.reshape(-1), codes.astype(np.int8) - 1):
                    P.add("%s: ternary values differ" % name)
                if not bits_equal(np.array([b]), np.array([beta])):
                    P.add("%s: β %r, source %r" % (name, float(b), float(beta)))
            elif gt in (34, 35):
                codes, dbits, d = (dec_tq1 if gt == 34 else dec_tq2)(raw, n)
                beta = tq_expect(codes, dbits, d)
                if beta is None:
                    want = ((codes.astype(np.float32) - 1) * d[:, None]).astype(np.float32).reshape(-1)
                    if bt.type != T_F32:
                        P.add("%s: non-uniform TQ became %s, f32 expected" % (name, bnread.TYPES.get(bt.type)))
                    elif not bits_equal(bnread.to_f32(bt.type, got, bt.shape).reshape(-1), want):
                        P.add("%s: TQ values differ from the exact dequantization" % name)
                else:
                    if bt.type != T_T2:
                        P.add("%s: uniform TQ became %s, t2 expected" % (name, bnread.TYPES.get(bt.type)))
                        continue
                    w, b = bnread.t2_decode(got, bt.shape)
                    if not np.array_equal(w.reshape(-1), codes.reshape(-1).astype(np.int8) - 1):
                        P.add("%s: ternary values differ" % name)
                    if not bits_equal(np.array([b]), np.array([beta])):
                        P.add("%s: β %r, source %r" % (name, float(b), float(beta)))
            elif check_blocks(name, gt, raw, n, k, bt, got, P) is None:
                P.add("%s: source GGML type %d converted although unsupported" % (name, gt))
            checked += 1
    # ---- hyper-parameters
    def kv(key, default=None):
        v = g.kv.get(key, default)
        return v.decode() if isinstance(v, bytes) else v

    # A BitNet architecture's layer: its hidden_activation key, else its
    # vocabulary (1bitLLM: SentencePiece, SiLU; 2B4T: BPE, relu²), else the name
    layer = canon.get(arch)
    act, tok = kv(A + ".hidden_activation"), kv("tokenizer.ggml.model")
    if arch in BITNET_ARCHS and act is not None:
        layer = "bitnet-b1.58" if act == "relu2" else "bitnet"
    elif arch in BITNET_ARCHS and tok in ("llama", "gpt2"):
        layer = "bitnet" if tok == "llama" else "bitnet-b1.58"
    d = kv(A + ".embedding_length")
    h = kv(A + ".attention.head_count")
    emb = [t for t in g.tensors if t["name"] == "token_embd.weight"]
    expect = {
        "general.architecture": layer,
        "model.context_length": kv(A + ".context_length"),
        "model.embedding_length": d,
        "model.feed_forward_length": kv(A + ".feed_forward_length"),
        "model.block_count": kv(A + ".block_count"),
        "model.head_count": h,
        "model.head_count_kv": kv(A + ".attention.head_count_kv", h),
        "model.head_dim": kv(A + ".rope.dimension_count", d // h if d and h else None),
        "model.vocab_size": emb[0]["ne"][1] if emb else kv(A + ".vocab_size"),
        "model.rope_theta": np.float32(kv(A + ".rope.freq_base", 10000.0)),
        "model.norm_eps": np.float32(kv(A + ".attention.layer_norm_rms_epsilon")),
        "model.rope_pairing": "adjacent" if arch == "llama" else "neox",
        "model.ffn_activation": "relu2" if layer == "bitnet-b1.58" else "silu",
        "model.sub_norms": arch != "llama",
        "model.tied_embeddings": "output.weight" not in names,
        "tokens.bos_id": kv("tokenizer.ggml.bos_token_id", -1),
        "tokens.eos_id": kv("tokenizer.ggml.eos_token_id", -1),
        "tokens.pad_id": kv("tokenizer.ggml.padding_token_id", -1),
        "provenance.source_format": "gguf",
    }
    if "tokenizer.ggml.add_bos_token" in g.kv:
        expect["tokens.add_bos"] = bool(g.kv["tokenizer.ggml.add_bos_token"])
    if "tokenizer.chat_template" in g.kv:
        expect["chat.template"] = kv("tokenizer.chat_template")
    if "general.name" in g.kv:
        expect["general.name"] = kv("general.name")
    toks = g.kv.get("tokenizer.ggml.tokens")
    toks = toks[2] if toks else []
    tokset = {t: i for i, t in reversed(list(enumerate(toks)))}
    eos = expect["tokens.eos_id"]
    stops = [eos] if eos >= 0 else []
    eot = tokset.get(b"<|eot_id|>")
    if eot is not None and eot != eos:
        stops.append(eot)
    header = b"<|start_header_id|>" in tokset
    if arch != "llama" and header and eot is not None:
        expect["chat.format"] = "bitnet"
    elif header:
        expect["chat.format"] = "llama3"
    else:
        expect["chat.format"] = "none"
    compare_meta(m, expect, P)
    got_stops = m.value("tokens.stop_ids")
    if got_stops is None or sorted(got_stops[1].tolist()) != sorted(stops):
        P.add("tokens.stop_ids: %s, expected %s" % (None if got_stops is None else got_stops[1].tolist(), stops))
    # ---- vocabulary
    sec = m.section("tokenizer")
    if sec is None:
        P.add("no tokenizer section")
    else:
        u2b = {v: k for k, v in gpt2_b2u().items()}
        want = []
        for t in toks:
            s = t.decode("utf-8")
            try:
                want.append(bytes(u2b[c] for c in s))
            except KeyError:
                want.append(t)
        got = sec.get("tokenizer.tokens")
        if got is None or got[1] != want:
            P.add("tokenizer.tokens differ from the GGUF vocabulary (decoded from GPT-2 byte-to-unicode form)")
    return checked


def gpt2_b2u():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def compare_meta(m, expect, P):
    for key, want in expect.items():
        if want is None:
            continue
        v = m.meta.get(key)
        if v is None:
            P.add("metadata %s missing (expected %r)" % (key, want))
            continue
        got = v[1]
        if isinstance(want, np.float32):
            ok = v[0] == bnread.V_F32 and np.float32(got) == want
        elif isinstance(want, bool):
            ok = got is want or got == want
        else:
            ok = got == want
        if not ok:
            P.add("metadata %s = %r, expected %r" % (key, got, want))


# ===================================================================== HF

HF_MAP = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight",
}
HF_LAYER = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "self_attn.attn_sub_norm.weight": "attn_sub_norm.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
    "mlp.ffn_sub_norm.weight": "ffn_sub_norm.weight",
}
PROJ = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")
ST_NP = {"F32": "<f4", "F16": "<f2", "BF16": "<u2", "U8": "u1", "I8": "i1", "F64": "<f8", "I32": "<i4",
         "I64": "<i8"}


def hf_canon(name):
    if name in HF_MAP:
        return HF_MAP[name]
    p = name.split(".")
    if len(p) > 3 and p[0] == "model" and p[1] == "layers":
        rest = ".".join(p[3:])
        if rest in HF_LAYER:
            return "blk.%s.%s" % (p[2], HF_LAYER[rest])
    return None


def read_safetensors_header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        h = json.loads(f.read(n))
    h.pop("__metadata__", None)
    return h, 8 + n


def st_array(path, info, base):
    b0, b1 = info["data_offsets"]
    with open(path, "rb") as f:
        f.seek(base + b0)
        raw = f.read(b1 - b0)
    a = np.frombuffer(raw, dtype=ST_NP[info["dtype"]])
    if info["dtype"] == "BF16":
        a = (a.astype(np.uint32) << 16).view(np.float32)
    return a.reshape(info["shape"]) if info["shape"] else a.reshape(()), raw


def unpack_hf(u8):
    """[M/4, K] uint8 -> int8 [M, K]: row p + j*M/4 in bits 2j+1:2j."""
    q = u8.shape[0]
    out = np.empty((4 * q, u8.shape[1]), dtype=np.int8)
    for j in range(4):
        out[j * q:(j + 1) * q] = ((u8 >> (2 * j)) & 3).astype(np.int8) - 1
    return out


def absmean(wf):
    beta = max(float(np.mean(np.abs(wf.astype(np.float64)))), 1e-5)
    return beta


def check_hf(src, m, P):
    cfg = json.load(open(os.path.join(src, "config.json")))
    qc = cfg.get("quantization_config") or {}
    multiply = qc.get("linear_class") == "autobitlinear" and qc.get("quantization_mode") == "offline"
    idx = os.path.join(src, "model.safetensors.index.json")
    files = sorted(set(json.load(open(idx))["weight_map"].values())) if os.path.exists(idx) else ["model.safetensors"]
    tensors = {}
    for fn in files:
        p = os.path.join(src, fn)
        h, base = read_safetensors_header(p)
        for k, v in h.items():
            tensors[k] = (p, v, base)
    checked = 0
    seen = set()
    for hname, (p, info, base) in sorted(tensors.items()):
        if hname.endswith(".weight_scale"):
            continue
        cname = hf_canon(hname)
        if cname is None:
            P.add("%s: unknown HF tensor (no canonical name)" % hname)
            continue
        seen.add(cname)
        bt = m.by_name.get(cname)
        if bt is None:
            P.add("%s (%s) missing from the bn file" % (cname, hname))
            continue
        arr, raw = st_array(p, info, base)
        got = m.tensor_bytes(bt)
        is_proj = cname.split(".")[-2] in PROJ
        if info["dtype"] == "U8" and is_proj:
            w = unpack_hf(arr)
            sname = hname.replace(".weight", ".weight_scale")
            if sname not in tensors:
                P.add("%s: packed weight without weight_scale" % hname)
                continue
            sa, _ = st_array(*[tensors[sname][0], tensors[sname][1], tensors[sname][2]])
            ws = np.float32(sa.reshape(-1)[0])
            beta = ws if multiply else np.float32(1.0) / ws
            if bt.type != T_T2 or bt.shape != list(w.shape):
                P.add("%s: bn %s %s, expected t2 %s" % (cname, bnread.TYPES.get(bt.type), bt.shape, list(w.shape)))
                continue
            gw, gb = bnread.t2_decode(got, bt.shape)
            if not np.array_equal(gw, w):
                P.add("%s: ternary values differ" % cname)
            if multiply:
                if not bits_equal(np.array([gb]), np.array([beta])):
                    P.add("%s: β %r, expected %r (multiply)" % (cname, float(gb), float(beta)))
            else:
                if abs(float(gb) - float(beta)) > abs(float(beta)) * 2.0 ** -23:
                    P.add("%s: β %r, expected %r (divide)" % (cname, float(gb), float(beta)))
        else:
            want = arr.astype(np.float32).reshape(-1)
            if bt.shape != list(info["shape"]):
                P.add("%s: shape %s, source %s" % (cname, bt.shape, info["shape"]))
                continue
            if bt.type == T_T2 and is_proj:
                gw, gb = bnread.t2_decode(got, bt.shape)
                beta = absmean(want)
                if abs(float(gb) - beta) > beta * 1e-5:
                    P.add("%s: absmean β %r, expected %r" % (cname, float(gb), beta))
                x = want.astype(np.float64) / float(gb)
                ref = np.clip(np.rint(x), -1, 1)
                tie = np.abs(np.abs(x) - 0.5) < 1e-4
                bad = (gw.reshape(-1) != ref) & ~tie
                if bad.any():
                    P.add("%s: %d ternary values disagree with absmean" % (cname, int(bad.sum())))
            elif bt.type in (T_F32, T_F16, T_BF16):
                if info["dtype"] in ("BF16", "F16", "F32") and bt.type == {"BF16": T_BF16, "F16": T_F16,
                                                                            "F32": T_F32}[info["dtype"]]:
                    if got != raw:
                        P.add("%s: bytes differ from the source" % cname)
                elif not bits_equal(bnread.to_f32(bt.type, got, bt.shape).reshape(-1), want):
                    P.add("%s: values differ from the source" % cname)
            else:
                P.add("%s: unexpected bn type %s" % (cname, bnread.TYPES.get(bt.type)))
        checked += 1
    extra = set(m.by_name) - seen
    if extra:
        P.add("bn has tensors the source lacks: %s" % sorted(extra)[:5])
    d, h = cfg["hidden_size"], cfg["num_attention_heads"]
    eos = cfg.get("eos_token_id")
    expect = {
        "model.embedding_length": d,
        "model.feed_forward_length": cfg["intermediate_size"],
        "model.block_count": cfg["num_hidden_layers"],
        "model.head_count": h,
        "model.head_count_kv": cfg.get("num_key_value_heads", h),
        "model.head_dim": cfg.get("head_dim", d // h),
        "model.vocab_size": cfg["vocab_size"],
        "model.context_length": cfg.get("max_position_embeddings"),
        "model.rope_theta": np.float32(cfg.get("rope_theta", 10000.0)),
        "model.norm_eps": np.float32(cfg.get("rms_norm_eps", 1e-6)),
        "model.tied_embeddings": bool(cfg.get("tie_word_embeddings", True)),
        "tokens.bos_id": cfg.get("bos_token_id"),
        "tokens.eos_id": eos[0] if isinstance(eos, list) else eos,
        "provenance.source_format": "hf",
    }
    if qc.get("quantization_mode") == "offline" or any(i[1]["dtype"] == "U8" for i in tensors.values()):
        expect["provenance.scale_convention"] = "multiply" if multiply else "divide"
    compare_meta(m, expect, P)
    return checked


# ================================================================== truth

def check_truth(truth_path, m, P):
    truth = json.load(open(truth_path))
    n = 0
    for e in truth["tensors"]:
        bt = m.by_name.get(e["name"])
        if bt is None or "ternary_sha256" not in e:
            continue
        if e["name"] and bt.type == T_T2:
            w, b = bnread.t2_decode(m.tensor_bytes(bt), bt.shape)
            if hashlib.sha256(np.ascontiguousarray(w).tobytes()).hexdigest() != e["ternary_sha256"]:
                P.add("truth: %s ternary values differ from the generator's" % e["name"])
            want_b = struct.unpack("<f", bytes.fromhex(e["beta_f32"]))[0]
            if e.get("kind") == "ternary" and truth.get("scale_convention") == "divide":
                if abs(float(b) - want_b) > abs(want_b) * 2.0 ** -23:
                    P.add("truth: %s β %r, generator %r" % (e["name"], float(b), want_b))
            elif struct.pack("<f", float(b)) != bytes.fromhex(e["beta_f32"]):
                P.add("truth: %s β %r, generator %r" % (e["name"], float(b), want_b))
            n += 1
        elif e.get("kind") == "ternary-as-float" and bt.type in (T_F32, T_F16, T_BF16):
            beta = struct.unpack("<f", bytes.fromhex(e["beta_f32"]))[0]
            v = bnread.to_f32(bt.type, m.tensor_bytes(bt), bt.shape)
            w = np.rint(v / beta).astype(np.int8)
            if not bits_equal(w.astype(np.float32) * np.float32(beta), v) or \
                    hashlib.sha256(w.tobytes()).hexdigest() != e["ternary_sha256"]:
                P.add("truth: %s float values are not the generator's ternary values times β" % e["name"])
            n += 1
        if e.get("bn_type") in ("t2", "f32", "f16", "bf16") and bnread.TYPES.get(bt.type) != e["bn_type"]:
            P.add("truth: %s has bn type %s, the generator expects %s" % (e["name"], bnread.TYPES.get(bt.type),
                                                                           e["bn_type"]))
    return n


def main(argv):
    truth = None
    quiet = False
    args = []
    it = iter(argv)
    for a in it:
        if a == "--truth":
            truth = next(it)
        elif a == "--tl-config":  # a GGUF's TL1/TL2 tiles (else bitnet.cpp's presets)
            import gguf_blocks
            gguf_blocks.TL_CONFIG = gguf_blocks.read_tl_config(next(it))
        elif a == "--quiet":
            quiet = True
        else:
            args.append(a)
    if len(args) != 2:
        sys.stderr.write("usage: check_convert.py [--truth FILE] [--tl-config INI] [--quiet] SOURCE OUT.bn\n")
        return 2
    src, out = args
    if truth is None and os.path.exists(src.rstrip("/") + ".truth.json"):
        truth = src.rstrip("/") + ".truth.json"
    P = Problems()
    try:
        m = bnread.read(out)
    except (bnread.BnError, OSError) as ex:
        sys.stderr.write("check_convert: %s\n" % ex)
        return 1
    if os.path.isdir(src):
        n = check_hf(src, m, P)
    else:
        n = check_gguf(src, m, P)
    nt = check_truth(truth, m, P) if truth else 0
    m.close()
    if P.items:
        for p in P.items:
            sys.stderr.write("check_convert: %s: %s\n" % (out, p))
        return 1
    if not quiet:
        print("check_convert: %s: %d tensors match %s%s" % (out, n, src,
                                                           " (%d against the truth file)" % nt if truth else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
