#!/usr/bin/python3
"""gguf_blocks.py — an independent numpy decoder of the GGML block types
bn-convert expands or re-packs (the k-quants Q4_K, Q5_K, Q6_K; ik_llama.cpp's
IQ1_BN and IQ2_BN), written from the published block layouts
(formats/gguf-import.md: ggml-common.h's block_q4_K/q5_K/q6_K, ik_llama.cpp's
block_iq1_bn/iq2_bn and row scales), not from bn's C code; and a maker of test
files that uses it.

  gguf_blocks.py retype [--proj iq2_bn|iq1_bn] [--embed q4_k|q5_k|q6_k]
                        [--vary-scales] [--zero-row] [--seed S] [--inject BAD] SRC OUT

retype rewrites SRC (an I2_S GGUF from gen_checkpoint.py) into OUT with the
same metadata: with --proj, every I2_S projection as IQ2_BN or IQ1_BN with the
same ternary values and β as every row's scale (--vary-scales: blk.0.attn_output
gets a different scale per row, so it is not one β; --zero-row: row 0 of
blk.0.attn_q is written as ik_llama.cpp writes an all-zero row, d = 0 and every
code 2); with --embed, token_embd (and output) as random valid blocks of that
k-quant type (f16 scales finite, every other byte random). --inject writes a
deliberately bad file for the error tests.

The decoders return what ggml computes: k-quant values in float32 with ggml's
order of operations (d·sc exact, then ·q, then − dmin·m), IQ*_BN codes (w + 1)
and each row's scale.
"""
import argparse
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_convert as cc  # noqa: E402  (GGUF parsing, I2_S decoding)

Q4_K, Q5_K, Q6_K, IQ1_BN, IQ2_BN, I2_S, TL1, TL2 = 12, 13, 14, 134, 135, 36, 38, 39
KQ_BYTES = {Q4_K: 144, Q5_K: 176, Q6_K: 210}
BN_BLOCK = {IQ1_BN: 13, IQ2_BN: 16}   # bytes per 64 weights
BN_META = {IQ1_BN: 2, IQ2_BN: 4}      # row scale: f16 / f32 in front of each row


def nbytes(gt, n, k):
    """Bytes of a tensor of n values, rows of k, or None for other types."""
    if gt in KQ_BYTES:
        return n // 256 * KQ_BYTES[gt]
    if gt in BN_BLOCK:
        return n // k * (BN_META[gt] + k // 64 * BN_BLOCK[gt])
    return None


# ------------------------------------------------------------ k-quants

def _f16(col):
    return np.ascontiguousarray(col).view("<f2").astype(np.float32).reshape(-1)


def _k4_scales(s):
    """s: [nb, 12] -> (sc, mn) [nb, 8]: the eight 6-bit scales and minimums."""
    s = s.astype(np.uint16)
    sc = np.empty((s.shape[0], 8), dtype=np.uint16)
    mn = np.empty_like(sc)
    sc[:, :4] = s[:, 0:4] & 63
    mn[:, :4] = s[:, 4:8] & 63
    sc[:, 4:] = (s[:, 8:12] & 15) | ((s[:, 0:4] >> 6) << 4)
    mn[:, 4:] = (s[:, 8:12] >> 4) | ((s[:, 4:8] >> 6) << 4)
    return sc, mn


def _k45(d, dmin, scales, qs, qh):
    """Q4_K (qh None) / Q5_K values [nb, 256]. Sub-block sb = 2p + h:
    nibble h of qs[32p + l], bit sb of qh[l] adds 16."""
    nb = qs.shape[0]
    sc, mn = _k4_scales(scales)
    q = np.empty((nb, 8, 32), dtype=np.uint8)
    qs = qs.reshape(nb, 4, 32)
    q[:, 0::2] = qs & 15
    q[:, 1::2] = qs >> 4
    if qh is not None:
        for sb in range(8):
            q[:, sb] += ((qh >> sb) & 1) * 16
    d1 = (d[:, None] * sc.astype(np.float32)).astype(np.float32)     # exact
    m1 = (dmin[:, None] * mn.astype(np.float32)).astype(np.float32)  # exact
    y = d1[:, :, None] * q.astype(np.float32) - m1[:, :, None]
    return y.astype(np.float32).reshape(nb, 256)


def dec_q4k(raw, n):
    b = np.frombuffer(raw, dtype=np.uint8, count=n // 256 * 144).reshape(-1, 144)
    return _k45(_f16(b[:, 0:2]), _f16(b[:, 2:4]), b[:, 4:16], b[:, 16:144], None).reshape(-1)


def dec_q5k(raw, n):
    b = np.frombuffer(raw, dtype=np.uint8, count=n // 256 * 176).reshape(-1, 176)
    return _k45(_f16(b[:, 0:2]), _f16(b[:, 2:4]), b[:, 4:16], b[:, 48:176], b[:, 16:48]).reshape(-1)


def dec_q6k(raw, n):
    """ql[128] qh[64] scales[16] (int8) d (f16). Half h (values 128h..):
    value 128h + 32i + l = d·scales[8h + l//16 + 2i]·(q − 32), q's low 4 bits
    the nibble i//2 of ql[64h + l + 32(i%2)], its high 2 bits bits 2i+1:2i of
    qh[32h + l]."""
    b = np.frombuffer(raw, dtype=np.uint8, count=n // 256 * 210).reshape(-1, 210)
    nb = b.shape[0]
    d = _f16(b[:, 208:210])
    sc = b[:, 192:208].view(np.int8).astype(np.float32)
    y = np.empty((nb, 2, 4, 32), dtype=np.float32)
    for h in range(2):
        ql = b[:, 64 * h:64 * h + 64]
        qh = b[:, 128 + 32 * h:128 + 32 * h + 32]
        for i in range(4):
            lo = (ql[:, 32 * (i % 2):32 * (i % 2) + 32] >> (4 * (i // 2))) & 15
            q = (lo | (((qh >> (2 * i)) & 3) << 4)).astype(np.int16) - 32
            s = np.repeat(sc[:, 8 * h + 2 * i:8 * h + 2 * i + 2], 16, axis=1)  # l//16
            y[:, h, i] = (d[:, None] * s).astype(np.float32) * q.astype(np.float32)
    return y.reshape(-1)


DEQUANT = {Q4_K: dec_q4k, Q5_K: dec_q5k, Q6_K: dec_q6k}


# ------------------------------------------------------------- IQ*_BN

def dec_iqbn(gt, raw, n, k):
    """-> (codes uint8 [rows, k], scale bits [rows], scale f32 [rows])."""
    rows = n // k
    rb = BN_META[gt] + k // 64 * BN_BLOCK[gt]
    r = np.frombuffer(raw, dtype=np.uint8, count=rows * rb).reshape(rows, rb)
    if gt == IQ2_BN:
        bits = r[:, :4].copy().view("<u4").reshape(rows)
        d = bits.view("<f4").astype(np.float32)
        q = r[:, 4:].reshape(rows, k // 64, 16)
        codes = np.empty((rows, k // 64, 4, 16), dtype=np.uint8)  # element 16i + j
        for i in range(4):
            codes[:, :, i, :] = (q >> (2 * i)) & 3
        return codes.reshape(rows, k), bits.astype(np.uint32), d
    bits = r[:, :2].copy().view("<u2").reshape(rows)
    d = bits.view("<f2").astype(np.float32)
    q = r[:, 2:].reshape(rows, k // 64, 13).astype(np.int32)
    # a byte stores ceil(256·v/243) of a base-3 number v; v = floor(243·byte/256)
    v = q * 243 // 256
    codes = np.empty((rows, k // 64, 4, 16), dtype=np.uint8)  # group g, element 16g + e
    for g in range(4):
        for kk in range(3):
            for j in range(5):  # element 5kk + j at weight 3^j
                codes[:, :, g, 5 * kk + j] = (v[:, :, 3 * g + kk] // 3 ** j) % 3
        codes[:, :, g, 15] = (v[:, :, 12] // 3 ** g) % 3
    return codes.reshape(rows, k), bits.astype(np.uint32), d


def iqbn_expect(codes, bits, d):
    """bn-convert's rule: β (t2) when no code is 3, every scale is finite and
    the rows with a nonzero value (d ≠ 0, a code ≠ 1) share one scale, a
    positive value; None (exact f32) otherwise."""
    if (codes == 3).any() or not np.isfinite(d).all():
        return None
    live = (codes != 1).any(axis=1) & (d != 0)
    if not live.any():
        return np.float32(1.0)
    u = np.unique(bits[live])
    if len(u) != 1 or not d[live][0] > 0:
        return None
    return np.float32(d[live][0])


def iqbn_values(codes, d):
    return (d[:, None] * (codes.astype(np.float32) - 1)).astype(np.float32)


# ------------------------------------------------------------ encoders

def enc_iq2bn_row(codes, d):
    """codes [k] (0..3) and an f32 scale -> one IQ2_BN row."""
    c = codes.reshape(-1, 4, 16)
    q = c[:, 0] | (c[:, 1] << 2) | (c[:, 2] << 4) | (c[:, 3] << 6)
    return struct.pack("<f", d) + q.astype(np.uint8).tobytes()


def enc_iq1bn_row(codes, d16bits):
    """codes [k] (0..2) and f16 scale bits -> one IQ1_BN row."""
    c = codes.reshape(-1, 4, 16).astype(np.int32)
    out = np.zeros((c.shape[0], 13), dtype=np.uint8)
    for g in range(4):
        for kk in range(3):
            v = sum(c[:, g, 5 * kk + j] * 3 ** j for j in range(5))
            out[:, 3 * g + kk] = (256 * v + 242) // 243
    ve = sum(c[:, g, 15] * 3 ** g for g in range(4))
    out[:, 12] = (256 * ve + 242) // 243
    return struct.pack("<H", d16bits) + out.tobytes()


def random_kquant(rng, gt, n):
    """n/256 blocks of random bytes with finite f16 scales (d, and dmin for
    Q4_K/Q5_K, of either sign and varied magnitude)."""
    nb = n // 256
    b = rng.integers(0, 256, size=(nb, KQ_BYTES[gt]), dtype=np.uint8)

    def f16s(count):
        mag = np.exp(rng.uniform(np.log(1e-4), np.log(4.0), size=count))
        sign = np.where(rng.random(count) < 0.2, -1.0, 1.0)
        return (mag * sign).astype("<f2").view(np.uint8).reshape(count, 2)

    if gt == Q6_K:
        b[:, 208:210] = f16s(nb)
    else:
        b[:, 0:2] = f16s(nb)
        b[:, 2:4] = f16s(nb)
    return b.tobytes()


# ------------------------------------------------------------- retype

def read_source(path):
    """(parsed GGUF, raw bytes of its metadata entries, version)."""
    g = cc.parse_gguf(path)
    with open(path, "rb") as f:
        f.seek(24)
        for _ in range(len(g.kv)):
            cc._gstr(f)
            t = struct.unpack("<I", f.read(4))[0]
            cc._gval(f, t)
        end = f.tell()
        f.seek(0)
        head = f.read(end)
    return g, head[24:end], g.version


def retype(args):
    g, kvbytes, version = read_source(args.src)
    rng = np.random.default_rng(args.seed)
    proj = {"iq2_bn": IQ2_BN, "iq1_bn": IQ1_BN}.get(args.proj)
    embed = {"q4_k": Q4_K, "q5_k": Q5_K, "q6_k": Q6_K}.get(args.embed)
    out = []  # (name, ne, type, bytes)
    with open(args.src, "rb") as f:
        for t in g.tensors:
            ne, gt, name = t["ne"], t["type"], t["name"]
            n, k = int(np.prod(ne)), ne[0]
            f.seek(g.data_start + t["rel"])
            raw = f.read(cc.gguf_nbytes(gt, n, k))
            if gt == I2_S and proj is not None:
                codes, beta = cc.dec_i2s(raw, n)
                codes = codes.reshape(-1, k)
                rows = codes.shape[0]
                if proj == IQ2_BN:
                    ds = np.full(rows, beta, dtype=np.float32)
                else:
                    ds = np.full(rows, np.float16(beta), dtype=np.float16)
                if args.vary_scales and name == "blk.0.attn_output.weight":
                    ds = (ds * (1 + 0.125 * (np.arange(rows) % 7))).astype(ds.dtype)
                if args.zero_row and name == "blk.0.attn_q.weight":
                    codes = codes.copy()
                    codes[0] = 2 if proj == IQ2_BN else 1
                    ds[0] = 0
                if proj == IQ2_BN:
                    if args.inject == "iq2bn-code3" and name == "blk.0.attn_q.weight":
                        codes = codes.copy()
                        codes[1, 5] = 3
                    data = b"".join(enc_iq2bn_row(codes[r], float(ds[r])) for r in range(rows))
                else:
                    bits = ds.astype("<f2").view("<u2")
                    data = b"".join(enc_iq1bn_row(codes[r], int(bits[r])) for r in range(rows))
                gt = proj
                if args.inject == "bn-bad-k" and name == "blk.0.attn_q.weight":
                    ne = [32, n // 32]  # rows of 32: not whole blocks of 64
                raw = data
            elif name in ("token_embd.weight", "output.weight") and embed is not None:
                raw = random_kquant(rng, embed, n)
                gt = embed
                if args.inject == "kq-bad-k" and name == "token_embd.weight":
                    ne = [128, n // 128]
            if args.inject == "tl1" and name == "blk.0.attn_q.weight":
                gt = TL1
            if args.inject == "tl2" and name == "blk.0.attn_q.weight":
                gt = TL2
            out.append((name, ne, gt, raw))
    a = g.alignment
    head = [b"GGUF", struct.pack("<IQQ", version, len(out), len(g.kv)), kvbytes]
    off = 0
    for name, ne, gt, raw in out:
        nb = name.encode()
        head.append(struct.pack("<Q", len(nb)) + nb + struct.pack("<I", len(ne)) +
                    struct.pack("<%dQ" % len(ne), *ne) + struct.pack("<IQ", gt, off))
        off += (len(raw) + a - 1) // a * a
    h = b"".join(head)
    with open(args.out, "wb") as f:
        f.write(h + bytes((-len(h)) % a))
        for _, _, _, raw in out:
            f.write(raw + bytes((-len(raw)) % a))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("retype")
    r.add_argument("--proj", choices=["iq2_bn", "iq1_bn"])
    r.add_argument("--embed", choices=["q4_k", "q5_k", "q6_k"])
    r.add_argument("--vary-scales", action="store_true")
    r.add_argument("--zero-row", action="store_true")
    r.add_argument("--seed", type=int, default=7)
    r.add_argument("--inject", choices=["kq-bad-k", "bn-bad-k", "iq2bn-code3", "tl1", "tl2"])
    r.add_argument("src")
    r.add_argument("out")
    args = ap.parse_args()
    retype(args)


if __name__ == "__main__":
    main()
