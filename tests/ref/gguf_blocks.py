#!/usr/bin/python3
"""gguf_blocks.py — an independent numpy decoder of the GGML block types
bn-convert expands or re-packs (the k-quants Q4_K, Q5_K, Q6_K; the blocks of
32 Q4_0, Q4_1, Q5_0, Q5_1 and IQ4_NL; ik_llama.cpp's
IQ1_BN and IQ2_BN; bitnet.cpp's TL1 and TL2), written from the published block
layouts (formats/gguf-import.md: ggml-common.h's block_q4_K/q5_K/q6_K,
ik_llama.cpp's block_iq1_bn/iq2_bn and row scales, bitnet.cpp's TL tiling as
its converter and kernel_config.ini define it), not from bn's C code; and a
maker of test files that uses it.

  gguf_blocks.py retype [--proj iq2_bn|iq1_bn|tl1|tl2] [--tl-config INI]
                        [--embed q4_k|q5_k|q6_k|q4_0|q4_1|q5_0|q5_1|iq4_nl]
                        [--vary-scales] [--zero-row] [--seed S] [--inject BAD] SRC OUT

retype rewrites SRC (an I2_S GGUF from gen_checkpoint.py) into OUT with the
same metadata: with --proj, every I2_S projection as IQ2_BN or IQ1_BN with the
same ternary values and β as every row's scale (--vary-scales: blk.0.attn_output
gets a different scale per row, so it is not one β; --zero-row: row 0 of
blk.0.attn_q is written as ik_llama.cpp writes an all-zero row, d = 0 and every
code 2); with --embed, token_embd (and output) as random valid blocks of that
k-quant type (f16 scales finite, every other byte random). --proj tl1|tl2
lays every I2_S projection out as bitnet.cpp's converter does, with the tile of
--tl-config (a kernel_config.ini) or of bitnet.cpp's presets by M x K, β after
the codes where its kernels read it (the `<name>_scale` tensor its writer hides
from the directory). --inject writes a deliberately bad file for the error
tests.

The decoders return what ggml computes: k-quant values in float32 with ggml's
order of operations (d·sc exact, then ·q, then − dmin·m), IQ*_BN codes (w + 1)
and each row's scale.
"""
import argparse
import functools
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_convert as cc  # noqa: E402  (GGUF parsing, I2_S decoding)

Q4_K, Q5_K, Q6_K, IQ1_BN, IQ2_BN, I2_S, TL1, TL2 = 12, 13, 14, 134, 135, 36, 38, 39
Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL = 2, 3, 6, 7, 20
KQ_BYTES = {Q4_K: 144, Q5_K: 176, Q6_K: 210}
Q32_BYTES = {Q4_0: 18, Q4_1: 20, Q5_0: 22, Q5_1: 24, IQ4_NL: 18}  # blocks of 32 values
BN_BLOCK = {IQ1_BN: 13, IQ2_BN: 16}   # bytes per 64 weights
BN_META = {IQ1_BN: 2, IQ2_BN: 4}      # row scale: f16 / f32 in front of each row


def nbytes(gt, n, k):
    """Bytes of a tensor of n values, rows of k, or None for other types."""
    if gt in KQ_BYTES:
        return n // 256 * KQ_BYTES[gt]
    if gt in Q32_BYTES:
        return n // 32 * Q32_BYTES[gt]
    if gt in BN_BLOCK:
        return n // k * (BN_META[gt] + k // 64 * BN_BLOCK[gt])
    if gt in (TL1, TL2):  # codes, then β's 32 bytes
        return tl_beta_offset(gt, n // k, k) + 32
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


# ggml-common.h's kvalues_iq4nl: IQ4_NL's 16 levels
IQ4NL_LEVELS = np.array([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113],
                        dtype=np.float32)


def dec_q32(gt, raw, n):
    """Blocks of 32 (ggml-common.h block_q4_0/q4_1/q5_0/q5_1/iq4_nl): f16 d,
    [f16 m: Q4_1, Q5_1], [u32 qh: Q5_0, Q5_1, bit j = fifth bit of value j],
    qs[16]: value j < 16 the low nibble of qs[j], value 16 + j its high one.
    Q4_0: d·(q − 8); Q4_1: d·q + m; Q5_0: d·(q − 16); Q5_1: d·q + m (q with
    its fifth bit); IQ4_NL: d·levels[q]. float32, rounded after each op."""
    size = Q32_BYTES[gt]
    b = np.frombuffer(raw, dtype=np.uint8, count=n // 32 * size).reshape(-1, size)
    d = _f16(b[:, 0:2])
    has_m, has_h = gt in (Q4_1, Q5_1), gt in (Q5_0, Q5_1)
    at = 2 + 2 * has_m
    m = _f16(b[:, 2:4]) if has_m else None
    qh = b[:, at:at + 4].copy().view("<u4").reshape(-1) if has_h else None
    qs = b[:, at + 4 * has_h:]
    q = np.concatenate([qs & 15, qs >> 4], axis=1).astype(np.int32)   # [nb, 32]
    if gt == IQ4_NL:
        return (d[:, None] * IQ4NL_LEVELS[q]).astype(np.float32).reshape(-1)
    if has_h:
        q |= (((qh[:, None] >> np.arange(32, dtype=np.uint32)) & 1) << 4).astype(np.int32)
    if not has_m:
        q -= 16 if has_h else 8
    y = (q.astype(np.float32) * d[:, None]).astype(np.float32)
    if has_m:
        y = (y + m[:, None]).astype(np.float32)
    return y.reshape(-1)


DEQUANT = {Q4_K: dec_q4k, Q5_K: dec_q5k, Q6_K: dec_q6k}
for _gt in Q32_BYTES:
    DEQUANT[_gt] = functools.partial(dec_q32, _gt)


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
    """n/256 (k-quants) or n/32 blocks of random bytes with finite f16
    scales (d, and dmin or m where the type has one, of either sign and
    varied magnitude, a few of them subnormal or zero)."""
    if gt in Q32_BYTES:
        nb = n // 32
        b = rng.integers(0, 256, size=(nb, Q32_BYTES[gt]), dtype=np.uint8)
    else:
        nb = n // 256
        b = rng.integers(0, 256, size=(nb, KQ_BYTES[gt]), dtype=np.uint8)

    def f16s(count):
        mag = np.exp(rng.uniform(np.log(1e-4), np.log(4.0), size=count))
        odd = rng.random(count)
        mag = np.where(odd < 0.03, 3e-6, np.where(odd < 0.05, 0.0, mag))  # subnormal f16, zero
        sign = np.where(rng.random(count) < 0.2, -1.0, 1.0)
        return (mag * sign).astype("<f2").view(np.uint8).reshape(count, 2)

    if gt == Q6_K:
        b[:, 208:210] = f16s(nb)
    elif gt in Q32_BYTES:
        b[:, 0:2] = f16s(nb)
        if gt in (Q4_1, Q5_1):
            b[:, 2:4] = f16s(nb)
    else:
        b[:, 0:2] = f16s(nb)
        b[:, 2:4] = f16s(nb)
    return b.tobytes()


# ------------------------------------------------------------- TL1/TL2
# bitnet.cpp's converter (utils/convert-hf-to-gguf-bitnet.py, preprocess_*)
# permutes a tensor's codes in tiles BM x BK with an inner strip of bm rows;
# the sizes are the code generator's (include/kernel_config.ini). Below,
# every byte of the layout is given the row and first column it holds; the
# encoder scatters codes there and the decoder gathers them back.

# M x K -> (BM, BK, bm): setup_env.py's code generator arguments per model
TL_PRESETS = {
    TL1: {(1536, 4096): (256, 128, 32), (1536, 1536): (128, 64, 64), (4096, 1536): (256, 128, 32),
          (3200, 8640): (160, 64, 32), (3200, 3200): (320, 128, 64), (8640, 3200): (320, 64, 32),
          (14336, 4096): (256, 128, 32), (4096, 14336): (128, 64, 64), (1024, 4096): (256, 128, 32),
          (4096, 4096): (128, 64, 64)},
    TL2: {(1536, 4096): (256, 96, 32), (1536, 1536): (128, 192, 32), (4096, 1536): (256, 96, 32),
          (3200, 8640): (160, 96, 32), (3200, 3200): (320, 96, 32), (8640, 3200): (320, 96, 32),
          (14336, 4096): (256, 96, 32), (4096, 14336): (128, 96, 32), (1024, 4096): (256, 96, 32),
          (4096, 4096): (128, 96, 32)},
}


# check_convert.py --tl-config: the tiles to decode with instead of the presets
TL_CONFIG = None


def tl_tile(gt, M, K):
    return (TL_CONFIG if TL_CONFIG is not None else TL_PRESETS[gt])[(M, K)]


def read_tl_config(path):
    """kernel_config.ini -> {(m, k): (bm, bk, bmm)}."""
    import configparser
    c = configparser.ConfigParser()
    c.read(path)
    return {(c.getint(s, "m"), c.getint(s, "k")): (c.getint(s, "bm"), c.getint(s, "bk"), c.getint(s, "bmm"))
            for s in c.sections()}


def _grid(*dims):
    return [a.reshape(-1) for a in np.indices(dims, dtype=np.int64)]


# a 32-row strip's groups of 8 rows are stored in the order 0, 2, 1, 3
_STRIP = np.array([0, 2, 1, 3])


def _strip_row(q):
    return _STRIP[q // 8] * 8 + q % 8


@functools.lru_cache(maxsize=8)
def tl1_cells(M, K, BM, BK, bm):
    """TL1 byte i holds columns c[i]..c[i]+3 of row r[i]: per BM x BK tile,
    bm-row strips, groups of by = 256/bm columns, 16-row slices, 4 columns,
    16 rows."""
    by = 256 // bm
    ib, kb, rb, jb, r16, jq, rl = _grid(M // BM, K // BK, BM // bm, BK // by, bm // 16, by // 4, 16)
    return ib * BM + rb * bm + r16 * 16 + rl, kb * BK + jb * by + jq * 4


@functools.lru_cache(maxsize=8)
def tl2_cells(M, K, BM, BK):
    """TL2 (bm 32): (K3, magnitude bytes (r, first triple), sign words
    (r [n, 16], triple [n, 16]: bit 15 - i of a word), tail bytes (r, c))."""
    k3 = K - K % BK
    ib, kb, rb, jb, q = _grid(M // BM, k3 // BK, BM // 32, BK // 6, 32)
    mag = (ib * BM + rb * 32 + _strip_row(q), kb * (BK // 3) + jb * 2)
    ib, kb, rb, jb, c = _grid(M // BM, k3 // BK, BM // 32, BK // 24, 16)
    f = np.arange(16)[None, :] * 16 + c[:, None]  # bit 15 - i of word c: element 16i + c of the 256
    sr = (ib * BM + rb * 32)[:, None] + f % 32
    st = (kb * (BK // 3) + jb * 8)[:, None] + f // 32
    ib, kb, rb, jb, q = _grid(M // BM, (K - k3) // 32, BM // 32, 8, 32)
    tail = (ib * BM + rb * 32 + _strip_row(q), k3 + kb * 32 + jb * 4)
    return k3, mag, (sr, st), tail


def tl2_formula(M, K):
    return (K - 256) * M // 3 * 5 // 8 + 256 * M // 2 * 4 // 8


def tl_beta_offset(gt, M, K):
    n = M * K // 4 if gt == TL1 else tl2_formula(M, K)
    return (n + 31) // 32 * 32


def _pairs(w, r, c):
    """Pair indices 3·w0 + w1 + 4 of columns c..c+3, two per byte."""
    hi = 3 * w[r, c] + w[r, c + 1] + 4
    lo = 3 * w[r, c + 2] + w[r, c + 3] + 4
    return (hi << 4 | lo).astype(np.uint8)


def enc_tl(gt, w, beta, tile):
    """w int [M, K] in -1..1, β f32, tile (BM, BK, bm) -> the tensor's bytes:
    codes, zeros up to β's place, β and 28 zero bytes."""
    M, K = w.shape
    BM, BK, bm = tile
    w = w.astype(np.int64)
    if gt == TL1:
        codes = _pairs(w, *tl1_cells(M, K, BM, BK, bm)).tobytes()
    else:
        k3, (mr, mt), (sr, st), (tr, tc) = tl2_cells(M, K, BM, BK)
        v = 9 * w[:, 0:k3:3] + 3 * w[:, 1:k3:3] + w[:, 2:k3:3]  # triple t = columns 3t..3t+2
        mag = (np.abs(v[mr, mt]) << 4 | np.abs(v[mr, mt + 1])).astype(np.uint8)
        neg = (v[sr, st] < 0).astype(np.uint16)
        words = (neg << (15 - np.arange(16, dtype=np.uint16))[None, :]).sum(axis=1).astype("<u2")
        codes = mag.tobytes() + words.tobytes() + _pairs(w, tr, tc).tobytes()
    off = tl_beta_offset(gt, M, K)
    assert len(codes) <= off
    return codes + bytes(off - len(codes)) + struct.pack("<f", beta) + bytes(28)


def dec_tl(gt, raw, M, K, tile):
    """-> (codes uint8 [M, K] (w + 1), β f32); the inverse of enc_tl."""
    BM, BK, bm = tile
    b = np.frombuffer(raw, dtype=np.uint8)
    w = np.zeros((M, K), dtype=np.int64)

    def put_pairs(bytes_, r, c):
        for j, idx in enumerate((bytes_ >> 4, bytes_ & 15)):
            w[r, c + 2 * j] = idx // 3 - 1
            w[r, c + 2 * j + 1] = idx % 3 - 1
    if gt == TL1:
        put_pairs(b[:M * K // 4].astype(np.int64), *tl1_cells(M, K, BM, BK, bm))
    else:
        k3, (mr, mt), (sr, st), (tr, tc) = tl2_cells(M, K, BM, BK)
        n3 = M * k3 // 6
        v = np.zeros((M, k3 // 3), dtype=np.int64)
        v[mr, mt] = b[:n3] >> 4
        v[mr, mt + 1] = b[:n3] & 15
        words = np.frombuffer(raw, dtype="<u2", count=n3 // 8, offset=n3).astype(np.int64)
        neg = (words[:, None] >> (15 - np.arange(16))[None, :]) & 1  # [word, i] as sr, st
        v[sr[neg == 1], st[neg == 1]] *= -1
        u = v + 13
        w[:, 0:k3:3], w[:, 1:k3:3], w[:, 2:k3:3] = u // 9 - 1, u // 3 % 3 - 1, u % 3 - 1
        put_pairs(b[n3 + n3 // 4:n3 + n3 // 4 + M * (K - k3) // 4].astype(np.int64), tr, tc)
    beta = np.frombuffer(raw, dtype="<f4", count=1, offset=tl_beta_offset(gt, M, K))[0]
    return (w + 1).astype(np.uint8), np.float32(beta)


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


EMBED_TYPES = {"q4_k": Q4_K, "q5_k": Q5_K, "q6_k": Q6_K, "q4_0": Q4_0, "q4_1": Q4_1, "q5_0": Q5_0,
               "q5_1": Q5_1, "iq4_nl": IQ4_NL}


def retype(args):
    g, kvbytes, version = read_source(args.src)
    rng = np.random.default_rng(args.seed)
    proj = {"iq2_bn": IQ2_BN, "iq1_bn": IQ1_BN, "tl1": TL1, "tl2": TL2}.get(args.proj)
    tiles = read_tl_config(args.tl_config) if args.tl_config else TL_PRESETS.get(proj)
    embed = EMBED_TYPES.get(args.embed)
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
                if proj in (TL1, TL2):
                    out.append(tl_tensor(args, name, ne, proj, codes, beta, tiles[(rows, k)]))
                    continue
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
                    ne = [128, n // 128] if embed in KQ_BYTES else [16, n // 16]
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


_TL_CHECKED = set()


def tl_tensor(args, name, ne, gt, codes, beta, tile):
    """One projection as TL1/TL2 (checked by decoding it back), or a bad one."""
    rows, k = codes.shape
    w = codes.astype(np.int64) - 1
    bad = args.inject if name == "blk.0.attn_q.weight" else None
    if bad == "tl2-sign-on-zero":  # a zero triple whose sign bit the writer would never set
        w = w.copy()
        w[0, 0:3] = 0
    raw = bytearray(enc_tl(gt, w, beta, tile))
    if (gt, rows, k, tile) not in _TL_CHECKED:  # the layout depends on these alone
        _TL_CHECKED.add((gt, rows, k, tile))
        back, b2 = dec_tl(gt, bytes(raw), rows, k, tile)
        assert np.array_equal(back, w + 1) and b2 == beta
    off = tl_beta_offset(gt, rows, k)
    if bad == "tl-bad-code":
        raw[5] = 0xF0 | (raw[5] & 15)  # pair index 15 (TL1) / magnitude 15 (TL2)
    elif bad == "tl-zero-scale":
        raw[off:off + 4] = struct.pack("<f", 0.0)
    elif bad == "tl-pad":
        raw[off - 1] = 1
    elif bad == "tl2-sign-on-zero":
        # triple 0 of row 0 sits in the first sign word at bit 15 (f = 0)
        n3 = rows * (k - k % tile[1]) // 6
        raw[n3 + 1] |= 0x80
    return (name, ne, gt, bytes(raw))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("retype")
    r.add_argument("--proj", choices=["iq2_bn", "iq1_bn", "tl1", "tl2"])
    r.add_argument("--tl-config")
    r.add_argument("--embed", choices=sorted(EMBED_TYPES))
    r.add_argument("--vary-scales", action="store_true")
    r.add_argument("--zero-row", action="store_true")
    r.add_argument("--seed", type=int, default=7)
    r.add_argument("--inject", choices=["kq-bad-k", "bn-bad-k", "iq2bn-code3", "tl1", "tl2", "tl-bad-code",
                                        "tl-zero-scale", "tl-pad", "tl2-sign-on-zero"])
    r.add_argument("src")
    r.add_argument("out")
    args = ap.parse_args()
    retype(args)


if __name__ == "__main__":
    main()
