#!/usr/bin/python3
"""check_quant.py HF_DIR QUANT.bn REPORT.json — checks bn-quant's
ternarization of an HF bf16/f16/f32 master-weight checkpoint against the
BitNet b1.58 absmean definition, computed here with numpy from the
safetensors file (parsed from its published spec), independently of bn:

    beta = mean(|W|) clamped at 1e-5;  s = 1/beta rounded to f32;
    T = clamp(round_half_even(W * s), -1, 1), scale 1/s

as transformers' WeightQuant (integrations/bitnet.py) and 1bitLLM's
utils_quant.weight_quant compute it. Every ternary value and every scale
must be identical; the report's scales and zero shares must agree."""
import json
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bnread  # noqa: E402

PROJ = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
        "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
        "mlp.down_proj": "ffn_down"}


def safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        base = 8 + n
        for name, info in header.items():
            if name == "__metadata__":
                continue
            s, e = info["data_offsets"]
            f.seek(base + s)
            raw = f.read(e - s)
            dt = info["dtype"]
            if dt == "BF16":
                a = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
            elif dt == "F16":
                a = np.frombuffer(raw, "<f2").astype(np.float32)
            elif dt == "F32":
                a = np.frombuffer(raw, "<f4")
            else:
                continue
            yield name, a.reshape(info["shape"])


def main():
    hf, bnpath, report = sys.argv[1:4]
    m = bnread.read(bnpath)
    rep = {r["tensor"]: r for r in json.load(open(report))}
    checked = 0
    for name, w in safetensors(os.path.join(hf, "model.safetensors")):
        parts = name.split(".")
        if len(parts) < 5 or parts[0] != "model" or parts[1] != "layers":
            continue
        key = ".".join(parts[3:5])
        if key not in PROJ:
            continue
        bn_name = "blk.%s.%s.weight" % (parts[2], PROJ[key])
        # transformers' WeightQuant (and every published weight_quant):
        # s = 1/beta in f32, codes round(W*s), scale 1/s
        beta = np.float32(max(np.abs(w.astype(np.float64)).mean(), 1e-5))
        s = np.float32(1) / beta
        t = np.clip(np.rint(w * s), -1, 1).astype(np.int8)
        beta = np.float32(1) / s
        tensor = m.by_name[bn_name]
        assert tensor.type == 4, "%s is not t2" % bn_name
        got, got_beta = bnread.t2_decode(m.tensor_bytes(tensor), tensor.shape)
        assert got_beta == beta, "%s: beta %r != %r" % (bn_name, got_beta, beta)
        diff = int((got != t).sum())
        assert diff == 0, "%s: %d ternary values differ" % (bn_name, diff)
        r = rep[bn_name]
        assert abs(r["scale"] - float(beta)) <= 1e-6 * float(beta), (bn_name, r["scale"], beta)
        assert abs(r["zero_share"] - float((t == 0).mean())) < 1e-5, (bn_name, r["zero_share"])
        checked += 1
    assert checked > 0, "no projection weights found"
    assert checked == len(rep), "report lists %d tensors, checked %d" % (len(rep), checked)
    print("check_quant: %d tensors identical" % checked)


main()
