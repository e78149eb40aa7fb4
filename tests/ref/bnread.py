#!/usr/bin/python3
"""bnread.py — an independent reader of the bn model file format, version 1,
written only from formats/bn-model.md (not from bn's C code).

As a module:
    m = bnread.read("model.bn")          # checks everything the spec lets a reader check
    m.meta["model.head_count"]           # -> (type_id, value)
    m.value("model.head_count")          # -> value
    for t in m.tensors: t.name, t.type, t.shape, t.offset, t.size, t.hash
    m.tensor_bytes(t)                    # raw bytes of a tensor
    bnread.t2_decode(raw, shape)         # -> (int8 array [R, K], float32 β)
    bnread.to_f32(type, raw, shape)      # f32/f16/bf16/i8 -> float32 array

    bnread.write(m, "copy.bn", meta, {name: raw})  # other metadata or bytes (tests)

As a program:  bnread.py [--json] [--no-verify] FILE
    prints the metadata and directory; exit 1 with "FILE: reason" on damage.

Checksums are XXH3-64 (seed 0) from Debian's python3-xxhash; if that module is
missing the `xxhsum -H3` program (Debian package xxhash) is used instead.
"""
import json
import os
import struct
import subprocess
import sys
import zlib

import numpy as np

try:
    import xxhash

    def xxh3(data):
        return xxhash.xxh3_64_intdigest(bytes(data))
except ImportError:  # pragma: no cover - fallback
    def xxh3(data):
        p = subprocess.run(["xxhsum", "-H3", "-"], input=bytes(data), stdout=subprocess.PIPE, check=True)
        # "XXH3 (stdin) = 78af5f94892f3950" (xxhsum 0.8) or "78af...  -"
        out = p.stdout.decode().strip()
        tok = out.split("=")[-1].strip() if "=" in out else out.split()[0]
        return int(tok, 16)

MAGIC = b"BNMODEL\0"
TAIL_MAGIC = b"BNTAIL\0\0"
END_MAGIC = b"BNEND\0\0\0"

V_U32, V_I32, V_U64, V_I64, V_F32, V_F64, V_BOOL, V_STR, V_BYTES, V_ARR, V_STRARR, V_SECTION = range(1, 13)
SCALAR = {V_U32: "<I", V_I32: "<i", V_U64: "<Q", V_I64: "<q", V_F32: "<f", V_F64: "<d", V_BOOL: "<B"}
ARR_DTYPE = {V_U32: "<u4", V_I32: "<i4", V_U64: "<u8", V_I64: "<i8", V_F32: "<f4", V_F64: "<f8", V_BOOL: "u1"}

TYPES = {0: "f32", 1: "f16", 2: "bf16", 3: "i8", 4: "t2", 5: "i32", 6: "u8", 18: "tl1", 19: "tl2"}


class BnError(Exception):
    pass


def type_size(t, shape):
    """Bytes per §4.1; None for a type this reader does not know."""
    k = shape[-1]
    r = 1
    for s in shape[:-1]:
        r *= s
    n = r * k
    if t in (18, 19) and len(shape) == 2:
        kt = k // 6 * 6 if t == 19 else 0
        return 32 + r * (kt // 6 + (k - kt + 3) // 4) + (kt // 3) * ((r + 15) // 16) * 2 + 4
    return {0: 4 * n, 1: 2 * n, 2: 2 * n, 3: n + 4 * r, 4: r * ((k + 3) // 4) + 4, 5: 4 * n, 6: n}.get(t)


class Cursor:
    def __init__(self, buf, what, name):
        self.b, self.p, self.what, self.name = buf, 0, what, name

    def take(self, n):
        if n < 0 or self.p + n > len(self.b):
            raise BnError("%s: %s is truncated (%d bytes needed at %d, %d left)"
                          % (self.name, self.what, n, self.p, len(self.b) - self.p))
        v = self.b[self.p:self.p + n]
        self.p += n
        return v

    def u32(self):
        return struct.unpack("<I", self.take(4))[0]

    def u64(self):
        return struct.unpack("<Q", self.take(8))[0]


def decode_meta(cur, count, name, depth=0):
    """count entries (§3) -> dict key -> (type, value)."""
    out = {}
    for _ in range(count):
        kl = cur.u32()
        if not 1 <= kl <= 65535:
            raise BnError("%s: metadata key length %d out of range" % (name, kl))
        key = cur.take(kl).decode("ascii")
        if key in out:
            raise BnError("%s: duplicate metadata key '%s'" % (name, key))
        t = cur.u32()
        if t in SCALAR:
            fmt = SCALAR[t]
            v = struct.unpack(fmt, cur.take(struct.calcsize(fmt)))[0]
            if t == V_BOOL:
                if v not in (0, 1):
                    raise BnError("%s: metadata '%s': bool value %d" % (name, key, v))
                v = bool(v)
        elif t == V_STR:
            n = cur.u64()
            v = cur.take(n).decode("utf-8")
        elif t == V_BYTES:
            n = cur.u64()
            v = bytes(cur.take(n))
        elif t == V_ARR:
            et = cur.u32()
            if et not in ARR_DTYPE:
                raise BnError("%s: metadata '%s': array element type %d" % (name, key, et))
            n = cur.u64()
            w = np.dtype(ARR_DTYPE[et]).itemsize
            if n > (len(cur.b) - cur.p) // w:
                raise BnError("%s: metadata '%s' claims %d elements, more than the head holds" % (name, key, n))
            v = np.frombuffer(bytes(cur.take(n * w)), dtype=ARR_DTYPE[et]).copy()
            v = (et, v)
        elif t == V_STRARR:
            n = cur.u64()
            if n > (len(cur.b) - cur.p) // 4:
                raise BnError("%s: metadata '%s' claims %d strings, more than the head holds" % (name, key, n))
            v = []
            for _ in range(n):
                ln = cur.u32()
                v.append(bytes(cur.take(ln)))
        elif t == V_SECTION:
            raw_size, csize, cnt = cur.u64(), cur.u64(), cur.u64()
            z = bytes(cur.take(csize))
            try:
                raw = zlib.decompress(z)
            except zlib.error as ex:
                raise BnError("%s: section '%s' is corrupt (zlib: %s)" % (name, key, ex))
            if len(raw) != raw_size:
                raise BnError("%s: section '%s' inflates to %d bytes, header says %d" % (name, key, len(raw), raw_size))
            sc = Cursor(raw, "section '%s'" % key, name)
            v = decode_meta(sc, cnt, name, depth + 1)
            if sc.p != len(raw):
                raise BnError("%s: section '%s' has %d stray bytes" % (name, key, len(raw) - sc.p))
        else:
            raise BnError("%s: metadata '%s' has unknown value type %d" % (name, key, t))
        out[key] = (t, v)
    return out


class Tensor:
    def __init__(self, name, type_, shape, offset, size):
        self.name, self.type, self.shape, self.offset, self.size = name, type_, shape, offset, size
        self.hash = None

    def __repr__(self):
        return "Tensor(%s, %s, %s, %d bytes)" % (self.name, TYPES.get(self.type, self.type), self.shape, self.size)


class BnModel:
    def __init__(self, path):
        self.path = path
        self.meta = {}
        self.late = {}
        self.tensors = []
        self.by_name = {}
        self._f = None

    def value(self, key, default=None):
        v = self.meta.get(key)
        return default if v is None else v[1]

    def section(self, key):
        v = self.meta.get(key)
        return v[1] if v and v[0] == V_SECTION else None

    def tensor_bytes(self, t):
        if isinstance(t, str):
            t = self.by_name[t]
        self._f.seek(self.data_offset + t.offset)
        b = self._f.read(t.size)
        if len(b) != t.size:
            raise BnError("%s: tensor '%s' is truncated" % (self.path, t.name))
        return b

    def close(self):
        if self._f:
            self._f.close()
            self._f = None


def read(path, verify=True):
    """Opens and checks a bn file; verify=True also recomputes every tensor hash
    and checks zero padding."""
    name = path
    m = BnModel(path)
    f = open(path, "rb")
    m._f = f
    size = os.fstat(f.fileno()).st_size
    h = f.read(64)
    if len(h) < 64:
        raise BnError("%s: truncated: %d bytes, not even a header" % (name, len(h)))
    if h[:8] != MAGIC:
        raise BnError("%s: not a bn model file (wrong magic)" % name)
    version, header_size, head_size, meta_count, tensor_count, data_offset, alignment, flags, data_size = \
        struct.unpack("<IIQQQQIIQ", h[8:64])
    if version != 1:
        raise BnError("%s: unsupported version %d" % (name, version))
    if header_size != 64:
        raise BnError("%s: header_size %d (64 expected)" % (name, header_size))
    if flags & ~0x3f:  # bits 0-5 are defined (§2): norms, RoPE scaling, qk norms, embedding scale, post-norms, windows
        raise BnError("%s: unknown flags 0x%x" % (name, flags & ~0x3f))
    if alignment < 64 or alignment & (alignment - 1):
        raise BnError("%s: alignment %d is not a power of two >= 64" % (name, alignment))
    if head_size < 64 or head_size + 8 > size:
        raise BnError("%s: head_size %d impossible for a %d-byte file" % (name, head_size, size))
    if data_offset % alignment or data_offset < head_size + 8:
        raise BnError("%s: data_offset %d misaligned or inside the head" % (name, data_offset))
    f.seek(0)
    head = f.read(head_size + 8)
    if xxh3(head[:head_size]) != struct.unpack("<Q", head[head_size:])[0]:
        raise BnError("%s: head checksum mismatch" % name)
    cur = Cursor(head[:head_size], "the head", name)
    cur.p = 64
    m.meta = decode_meta(cur, meta_count, name)
    prev_end = 0
    for i in range(tensor_count):
        nl = cur.u32()
        if not 1 <= nl <= 127:
            raise BnError("%s: tensor %d name length %d" % (name, i, nl))
        tname = cur.take(nl).decode("ascii")
        ttype, ndim = cur.u32(), cur.u32()
        if not 1 <= ndim <= 4:
            raise BnError("%s: tensor '%s' has %d dimensions" % (name, tname, ndim))
        shape = [cur.u64() for _ in range(ndim)]
        off, sz = cur.u64(), cur.u64()
        if off % alignment:
            raise BnError("%s: tensor '%s' offset %d not aligned" % (name, tname, off))
        if i and off < prev_end or (i and off <= m.tensors[-1].offset):
            raise BnError("%s: tensor '%s' offset %d not increasing / overlapping" % (name, tname, off))
        exp = type_size(ttype, shape)
        if exp is not None and exp != sz:
            raise BnError("%s: tensor '%s' size %d, type and shape need %d" % (name, tname, sz, exp))
        if off + sz > data_size:
            raise BnError("%s: tensor '%s' runs past the data region" % (name, tname))
        if tname in m.by_name:
            raise BnError("%s: duplicate tensor '%s'" % (name, tname))
        t = Tensor(tname, ttype, shape, off, sz)
        m.tensors.append(t)
        m.by_name[tname] = t
        prev_end = off + sz
    if cur.p != head_size:
        raise BnError("%s: %d stray bytes after the directory" % (name, head_size - cur.p))
    if data_size % alignment:
        raise BnError("%s: data_size %d not a multiple of the alignment" % (name, data_size))
    want_ds = (prev_end + alignment - 1) // alignment * alignment
    if data_size != want_ds:
        raise BnError("%s: data_size %d, the directory implies %d" % (name, data_size, want_ds))
    m.data_offset, m.data_size, m.alignment, m.flags = data_offset, data_size, alignment, flags
    m.head_size = head_size
    # padding between the head checksum and the data
    f.seek(head_size + 8)
    pad = f.read(data_offset - head_size - 8)
    if pad.strip(b"\0"):
        raise BnError("%s: nonzero padding before the data" % name)
    # trailer
    tail_at = data_offset + data_size
    if tail_at + 48 > size:
        raise BnError("%s: truncated: the trailer is missing" % name)
    f.seek(size - 24)
    end = f.read(24)
    tsum, tsize = struct.unpack("<QQ", end[:16])
    if end[16:] != END_MAGIC:
        raise BnError("%s: end magic missing" % name)
    if tsize != size - tail_at:
        raise BnError("%s: trailer_size %d, but the trailer spans %d bytes" % (name, tsize, size - tail_at))
    f.seek(tail_at)
    tr = f.read(tsize)
    if tr[:8] != TAIL_MAGIC:
        raise BnError("%s: trailer magic missing" % name)
    if xxh3(tr[:tsize - 24]) != tsum:
        raise BnError("%s: trailer checksum mismatch" % name)
    tc = Cursor(tr[:tsize - 24], "the trailer", name)
    tc.take(8)
    if tc.u64() != tensor_count:
        raise BnError("%s: trailer tensor count differs from the header" % name)
    for t in m.tensors:
        t.hash = tc.u64()
    late_count = tc.u64()
    m.late = decode_meta(tc, late_count, name)
    if tc.p != len(tc.b):
        raise BnError("%s: %d stray bytes in the trailer" % (name, len(tc.b) - tc.p))
    for k, v in m.late.items():
        m.meta[k] = v
    if verify:
        pos = 0
        for t in m.tensors:
            f.seek(data_offset + pos)
            gap = f.read(t.offset - pos)
            if gap.strip(b"\0"):
                raise BnError("%s: nonzero padding before tensor '%s'" % (name, t.name))
            b = f.read(t.size)
            if xxh3(b) != t.hash:
                raise BnError("%s: tensor '%s' checksum mismatch" % (name, t.name))
            pos = t.offset + t.size
        gap = f.read(data_size - pos)
        if gap.strip(b"\0"):
            raise BnError("%s: nonzero padding after the last tensor" % name)
    return m


# -------------------------------------------------------------- writing

def encode_meta(meta):
    """dict key -> (type, value), as decode_meta gives it, -> the §3 bytes."""
    out = bytearray()
    for key, (t, v) in meta.items():
        kb = key.encode("ascii")
        out += struct.pack("<I", len(kb)) + kb + struct.pack("<I", t)
        if t in SCALAR:
            out += struct.pack(SCALAR[t], int(v) if t == V_BOOL else v)
        elif t in (V_STR, V_BYTES):
            b = v.encode("utf-8") if isinstance(v, str) else bytes(v)
            out += struct.pack("<Q", len(b)) + b
        elif t == V_ARR:
            et, arr = v
            a = np.asarray(arr, dtype=ARR_DTYPE[et])
            out += struct.pack("<IQ", et, len(a)) + a.tobytes()
        elif t == V_STRARR:
            out += struct.pack("<Q", len(v))
            for b in v:
                out += struct.pack("<I", len(b)) + bytes(b)
        elif t == V_SECTION:
            raw = bytes(encode_meta(v))
            z = zlib.compress(raw)
            out += struct.pack("<QQQ", len(raw), len(z), len(v)) + z
        else:
            raise BnError("cannot encode metadata '%s' of type %d" % (key, t))
    return out


def write(m, path, meta=None, raw=None):
    """Writes model m (as read) to path per the spec, with meta (the head's
    metadata; default m's, the trailer's keys left out) in its head and the
    bytes raw (a dict: tensor name -> bytes) for those tensors: fresh
    offsets, checksums and sizes, so that a test can change what a file
    says and still hand bn a file that reads."""
    if meta is None:
        meta = {k: v for k, v in m.meta.items() if k not in m.late}
    al = m.alignment
    directory, data, off = bytearray(), bytearray(), 0
    hashes = []
    for t in m.tensors:
        b = raw[t.name] if raw and t.name in raw else m.tensor_bytes(t)
        nb = t.name.encode("ascii")
        directory += struct.pack("<I", len(nb)) + nb + struct.pack("<II", t.type, len(t.shape))
        directory += b"".join(struct.pack("<Q", d) for d in t.shape) + struct.pack("<QQ", off, len(b))
        data += b + bytes(-len(b) % al)
        off = len(data)
        hashes.append(xxh3(b))
    mb = encode_meta(meta)
    head_size = 64 + len(mb) + len(directory)
    data_offset = (head_size + 8 + al - 1) // al * al
    head = MAGIC + struct.pack("<IIQQQQIIQ", 1, 64, head_size, len(meta), len(m.tensors), data_offset, al, m.flags,
                               len(data)) + mb + directory
    out = bytearray(head + struct.pack("<Q", xxh3(head)))
    out += bytes(data_offset - len(out)) + data
    tr = TAIL_MAGIC + struct.pack("<Q", len(hashes)) + b"".join(struct.pack("<Q", h) for h in hashes)
    tr += struct.pack("<Q", len(m.late)) + encode_meta(m.late)
    tr += struct.pack("<QQ", xxh3(tr), len(tr) + 24) + END_MAGIC
    with open(path, "wb") as f:
        f.write(out + tr)


# ------------------------------------------------------------- decoding

def rows_k(shape):
    r = 1
    for s in shape[:-1]:
        r *= s
    return r, shape[-1]


def t2_decode(raw, shape):
    """t2 bytes -> (int8 [R, K] in {-1,0,1}, float32 β). Raises on code 3 or
    padding codes other than 1."""
    r, k = rows_k(shape)
    rb = (k + 3) // 4
    b = np.frombuffer(raw, dtype=np.uint8, count=r * rb).reshape(r, rb)
    codes = np.stack([(b >> (2 * j)) & 3 for j in range(4)], axis=2).reshape(r, rb * 4)
    if (codes == 3).any():
        raise BnError("t2 tensor has the invalid code 3")
    if (codes[:, k:] != 1).any():
        raise BnError("t2 row padding codes are not 1")
    beta = np.frombuffer(raw, dtype="<f4", count=1, offset=r * rb)[0]
    return (codes[:, :k].astype(np.int8) - 1), np.float32(beta)


def tl_decode(t, raw, shape):
    """tl1 (18) / tl2 (19) bytes -> (int8 [R, K] in {-1,0,1}, float32 β), from
    §4.1: a 32-byte header (BM, BK, rows, K, type, 0), blocks of BM rows
    whose byte g*h + i is group g of row i (h the block's rows), tl2 sign
    words after the groups, β last. Raises on what the writer never
    produces."""
    r, k = rows_k(shape)
    if len(raw) != type_size(t, shape):
        raise BnError("tl tensor has %d bytes, not %d" % (len(raw), type_size(t, shape)))
    bm, bk, hr, hk, ht, zero = struct.unpack_from("<IIQQII", raw, 0)
    step = 6 if t == 19 else 4
    if (hr, hk, ht, zero) != (r, k, t, 0) or bm == 0 or bm % 32 or bk == 0 or bk % step or bk > 252:
        raise BnError("tl header (%d, %d, %d, %d, %d, %d) does not describe this tensor" % (bm, bk, hr, hk, ht, zero))
    buf = np.frombuffer(raw, dtype=np.uint8)
    kt = k // 6 * 6 if t == 19 else 0
    gt, nt = kt // 6, kt // 3
    ng = gt + (k - kt + 3) // 4
    block = bm * ng + nt * (bm // 16) * 2
    w = np.zeros((r, k), dtype=np.int8)
    for b0 in range(0, r, bm):
        h = min(bm, r - b0)
        base = 32 + (b0 // bm) * block
        g = buf[base:base + h * ng].reshape(ng, h).T.astype(np.int64)   # [row, group]
        hi, lo = g >> 4, g & 15                 # first of the two in the high nibble
        if gt:
            mag = np.stack([hi[:, :gt], lo[:, :gt]], axis=2).reshape(h, nt)   # triple 2g, 2g+1
            if (mag > 13).any():
                raise BnError("tl2 magnitude above 13")
            sw = (h + 15) // 16
            words = np.frombuffer(raw, dtype="<u2", count=nt * sw, offset=base + h * ng).reshape(nt, sw)
            i = np.arange(h)
            neg = ((words[:, i // 16].astype(np.int64) >> (15 - i % 16)) & 1).T   # [row, triple], bit 15 - i
            u = np.where(neg == 1, -mag, mag) + 13                          # v = 9 w0 + 3 w1 + w2
            w[b0:b0 + h, :kt] = (np.stack([u // 9, u // 3 % 3, u % 3], axis=2) - 1).reshape(h, kt)
        idx = np.stack([hi[:, gt:], lo[:, gt:]], axis=2).reshape(h, -1)   # pair index 3 w0 + w1 + 4
        if (idx > 8).any():
            raise BnError("tl pair index above 8")
        pw = (np.stack([idx // 3, idx % 3], axis=2) - 1).reshape(h, -1)
        if (pw[:, k - kt:] != 0).any():
            raise BnError("tl padding columns are not w = 0")
        w[b0:b0 + h, kt:] = pw[:, :k - kt]
    beta = np.frombuffer(raw, dtype="<f4", count=1, offset=len(raw) - 4)[0]
    return w, np.float32(beta)


def to_f32(t, raw, shape):
    r, k = rows_k(shape)
    if t == 0:
        return np.frombuffer(raw, dtype="<f4").reshape(r, k).copy()
    if t == 1:
        return np.frombuffer(raw, dtype="<f2").astype(np.float32).reshape(r, k)
    if t == 2:
        return (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32).reshape(r, k)
    if t == 3:
        q = np.frombuffer(raw, dtype=np.int8, count=r * k).reshape(r, k).astype(np.float32)
        s = np.frombuffer(raw, dtype="<f4", count=r, offset=r * k)
        return q * s[:, None]
    if t in (4, 18, 19):
        w, beta = t2_decode(raw, shape) if t == 4 else tl_decode(t, raw, shape)
        return w.astype(np.float32) * beta
    raise BnError("type %d has no float form" % t)


def _jsonable(v):
    t, x = v
    if t == V_SECTION:
        return {k: _jsonable(y) for k, y in x.items()}
    if t == V_ARR:
        arr = x[1]
        return arr.tolist() if arr.size <= 32 else "[%d elements]" % arr.size
    if t == V_STRARR:
        return "[%d strings]" % len(x) if len(x) > 8 else [s.decode("utf-8", "replace") for s in x]
    if t == V_BYTES:
        return "<%d bytes>" % len(x)
    if t in (V_F32, V_F64):
        return float(x)
    return x


def main(argv):
    args = [a for a in argv if not a.startswith("--")]
    if len(args) != 1:
        sys.stderr.write("usage: bnread.py [--json] [--no-verify] FILE\n")
        return 2
    try:
        m = read(args[0], verify="--no-verify" not in argv)
    except (BnError, OSError, UnicodeDecodeError) as ex:
        sys.stderr.write("bnread: %s\n" % ex)
        return 1
    meta = {k: _jsonable(v) for k, v in m.meta.items()}
    tens = [{"name": t.name, "type": TYPES.get(t.type, t.type), "shape": t.shape, "size": t.size}
            for t in m.tensors]
    if "--json" in argv:
        json.dump({"metadata": meta, "tensors": tens}, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        for k, v in meta.items():
            print("%-32s %s" % (k, v))
        for t in tens:
            print("%-36s %-5s %-20s %d" % (t["name"], t["type"], t["shape"], t["size"]))
    m.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
