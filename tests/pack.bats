#!/usr/bin/env bats
# bn-pack: lossless repacking between layouts, metadata, the CPU listing,
# errors, and identical inference results on every layout and kernel set.

load common

setup() {
    T=$(mktemp -d)
    bn-convert "$TINY" | bn-quant > "$T/q.bn"
}

teardown() {
    rm -rf "$T"
}

tensor_hashes() { # file: "name type size xxh3" for every tensor
    bn-convert --info --json "$1" | $PY -c '
import json, sys
for t in json.load(sys.stdin)["tensors"]:
    print(t["name"], t["type"], t["size"], t["xxh3"])'
}

@test "bn-pack --help and --version" {
    run bn-pack --help
    [ "$status" -eq 0 ]
    [[ $output == *"--layout"* && $output == *"--target"* ]]
    run bn-pack --version
    [ "$status" -eq 0 ]
}

@test "usage errors exit 2" {
    run bn-pack --layout nope "$T/q.bn" -o "$T/x.bn"
    [ "$status" -eq 2 ]
    run bn-pack --target sparc "$T/q.bn" -o "$T/x.bn"
    [ "$status" -eq 2 ]
    run bn-pack --target amx --layout tl2 "$T/q.bn" -o "$T/x.bn"
    [ "$status" -eq 2 ]
    [[ $output == *"amx"* && $output == *"tl2"* ]]
    # b3 has no NEON kernels (ref, avx2, avx512): not recorded as if it had
    run bn-pack --target neon --layout b3 "$T/q.bn" -o "$T/x.bn"
    [ "$status" -eq 2 ]
    [[ $output == *"neon"* && $output == *"b3"* ]]
    [ ! -e "$T/x.bn" ]
    run bn-pack --bogus
    [ "$status" -eq 2 ]
    run bn-pack -o
    [ "$status" -eq 2 ]
    # an empty file name is refused at once, not after the whole pack
    run bn-pack "$T/q.bn" -o ''
    [ "$status" -eq 2 ]
    [[ $output == "bn-pack: option '-o': an empty file name"* ]]
    [ ! -e "$T/x.bn" ]
}

@test "t2 -> i2s -> t2 is byte-identical, sizes follow the size rule" {
    bn-pack -l i2s "$T/q.bn" -o "$T/i.bn"
    bn-pack -l t2 "$T/i.bn" -o "$T/b.bn"
    run bn-convert --info --verify "$T/i.bn"
    [ "$status" -eq 0 ]
    tensor_hashes "$T/i.bn" | grep -q 'blk.0.attn_q.weight i2s 16416 '   # 256 rows x 64 bytes + 32
    tensor_hashes "$T/i.bn" | grep -q 'blk.0.ffn_down.weight i2s '
    diff <(tensor_hashes "$T/q.bn") <(tensor_hashes "$T/b.bn")
}

@test "t2 -> b3 -> t2 is byte-identical; b3 bytes match the specification (formats.md 4.1)" {
    bn-pack -l b3 "$T/q.bn" -o "$T/b3.bn"
    bn-pack -l t2 "$T/b3.bn" -o "$T/back.bn"
    diff <(tensor_hashes "$T/q.bn") <(tensor_hashes "$T/back.bn")
    # attn_q 256 x 256: one 320-column block of 64 bytes per row, then beta
    tensor_hashes "$T/b3.bn" | grep -q 'blk.0.attn_q.weight b3 16388 '
    $PY - "$ROOT/tests/ref" "$T/q.bn" "$T/b3.bn" <<'PYEOF'
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import bnread
q, b = bnread.read(sys.argv[2]), bnread.read(sys.argv[3])
n = 0
for t in q.tensors:
    if t.type != 4:
        continue
    w, beta = bnread.t2_decode(q.tensor_bytes(t), t.shape)
    raw = np.frombuffer(b.tensor_bytes(t.name), dtype=np.uint8)
    R, K = t.shape
    nb = -(-K // 320)
    rows = raw[:R * nb * 64].reshape(R, nb, 64).astype(np.int64)
    v = rows * 243 // 256                      # the base-3 number each byte stores
    digits = np.stack([v // 3 ** (4 - j) % 3 for j in range(5)], axis=2)   # R, nb, 5, 64
    cols = digits.reshape(R, nb * 320)         # column 320*blk + 64*j + b
    assert (cols[:, :K] - 1 == w).all(), t.name
    assert (cols[:, K:] == 1).all(), t.name    # padding is w = 0
    assert np.frombuffer(raw[R * nb * 64:].tobytes(), dtype="<f4")[0] == beta
    n += 1
assert n == 42, n
PYEOF
}

@test "t2 -> tl1/tl2 -> t2 is byte-identical in any tile; the bytes match the specification (bnread, formats.md 4.1)" {
    bn-pack -l tl1 "$T/q.bn" -o "$T/tl1.bn"
    bn-pack -l tl2 "$T/q.bn" -o "$T/tl2.bn"
    bn-pack -l tl1 --tile 32x36 "$T/q.bn" -o "$T/tl1b.bn"
    bn-pack -l tl2 --tile 96x60 < "$T/q.bn" > "$T/tl2b.bn"   # ragged blocks (256 = 2·96 + 64) and tiles
    bn-pack -l tl2 --tile 32x252 "$T/tl1b.bn" -o "$T/tl2c.bn"  # from one tl layout to the other
    for f in tl1 tl2 tl1b tl2b tl2c; do
        run bn-convert --info --verify "$T/$f.bn"
        [ "$status" -eq 0 ]
        bn-pack -l t2 "$T/$f.bn" | bn-pack -l t2 -o "$T/back.bn"
        diff <(tensor_hashes "$T/q.bn") <(tensor_hashes "$T/back.bn")
    done
    # attn_q 256 x 256: tl1 is header + 256 rows of 64 bytes + β; tl2 holds
    # 252 columns as 84 triples (42 bytes a row, 84 sign words per 16 rows)
    # and 4 as pairs (1 byte a row): 32 + 256·43 + 84·16·2 + 4
    tensor_hashes "$T/tl1.bn" | grep -q 'blk.0.attn_q.weight tl1 16420 '
    tensor_hashes "$T/tl2.bn" | grep -q 'blk.0.attn_q.weight tl2 13732 '
    run bn-convert --info --json "$T/tl2b.bn"
    [[ $output == *'"pack.layout"'*'"tl2"'* && $output == *'"pack.tile"'*'"96x60"'* ]]
    run bn-convert --info --json "$T/back.bn"
    [[ $output != *'"pack.tile"'* ]]
    $PY - "$ROOT/tests/ref" "$T/q.bn" "$T"/tl1.bn "$T"/tl2.bn "$T"/tl1b.bn "$T"/tl2b.bn "$T"/tl2c.bn <<'PYEOF'
import sys
sys.path.insert(0, sys.argv[1])
import bnread
q = bnread.read(sys.argv[2])
for path in sys.argv[3:]:
    p, n = bnread.read(path), 0
    for t in q.tensors:
        if t.type != 4:
            continue
        w, beta = bnread.t2_decode(q.tensor_bytes(t), t.shape)
        pt = p.by_name[t.name]
        assert bnread.TYPES[pt.type] == p.value("pack.layout"), path
        v, b = bnread.tl_decode(pt.type, p.tensor_bytes(pt), pt.shape)
        assert (v == w).all() and b == beta, (path, t.name)
        n += 1
    assert n == 42, n
PYEOF
}

@test "--tile: BM a multiple of 32, BK of 4 (tl1) or 6 (tl2) up to 252; only for tl1/tl2" {
    for bad in "48x128" "64x130" "64x256" "0x128" "64" "64x" "x64" "64x64z"; do
        run bn-pack -l tl1 --tile "$bad" "$T/q.bn" -o "$T/x.bn"
        [ "$status" -eq 2 ] || { echo "$bad: $status"; return 1; }
        [[ $output == "bn-pack: "*"tile"* ]]
    done
    run bn-pack -l tl2 --tile 64x128 "$T/q.bn" -o "$T/x.bn"
    [ "$status" -eq 2 ]
    [[ $output == *"multiple of 6"* ]]
    run bn-pack -l i2s --tile 64x128 "$T/q.bn" -o "$T/x.bn"
    [ "$status" -eq 2 ]
    [[ $output == *"tl1 and tl2"* ]]
    [ ! -e "$T/x.bn" ]
}

@test "non-projection tensors pass through untouched" {
    bn-pack -l i2s "$T/q.bn" -o "$T/i.bn"
    diff <(tensor_hashes "$T/q.bn" | grep -v -E 'attn_(q|k|v|output)|ffn_(gate|up|down)') \
         <(tensor_hashes "$T/i.bn" | grep -v -E 'attn_(q|k|v|output)|ffn_(gate|up|down)')
}

@test "the layout, target and provenance are recorded; pipes work" {
    bn-pack -l i2s -t avx2 < "$T/q.bn" > "$T/i.bn"
    run bn-convert --info --json "$T/i.bn"
    [ "$status" -eq 0 ]
    [[ $output == *'"pack.layout"'*'"i2s"'* ]]
    [[ $output == *'"pack.target"'*'"avx2"'* ]]
    [[ $output == *"bn-pack"* ]]
    # --report's last line names the layout, whichever was asked for
    for l in t2 i2s b3 tl1 tl2; do
        bn-pack -l $l -t avx2 --report "$T/r.txt" <"$T/q.bn" >/dev/null
        [ "$(tail -n 1 "$T/r.txt")" = "layout $l (as asked), target avx2" ] || { tail -n 1 "$T/r.txt"; false; }
    done
}

@test "I2_S bytes match the specification (independent decoder, formats.md 4.2)" {
    bn-pack -l i2s "$T/q.bn" -o "$T/i.bn"
    $PY - "$ROOT/tests/ref" "$T/q.bn" "$T/i.bn" <<'PYEOF'
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import bnread
q, i = bnread.read(sys.argv[2]), bnread.read(sys.argv[3])
n = 0
for t in q.tensors:
    if t.type != 4:
        continue
    w, beta = bnread.t2_decode(q.tensor_bytes(t), t.shape)
    raw = np.frombuffer(i.tensor_bytes(t.name), dtype=np.uint8)
    R, K = t.shape
    if K % 128:  # ffn_down (K = 704): rows padded to whole blocks, checked by the round trip
        continue
    # weight (r, k) in byte r*K/4 + (k//128)*32 + k%32 at shift 6 - 2*((k%128)//32)
    r_idx, k_idx = np.meshgrid(np.arange(R), np.arange(K), indexing="ij")
    byte = r_idx * (K // 4) + (k_idx // 128) * 32 + k_idx % 32
    shift = 6 - 2 * ((k_idx % 128) // 32)
    codes = (raw[byte] >> shift) & 3
    assert (codes.astype(np.int8) - 1 == w).all(), t.name
    tail = np.frombuffer(raw[R * K // 4:].tobytes(), dtype="<f4")
    assert len(tail) == 8 and (tail == beta).all(), t.name
    n += 1
assert n == 36, n
PYEOF
}

@test "float projections are refused: run bn-quant first" {
    bn-convert "$TINY" -o "$T/f.bn"
    run bn-pack "$T/f.bn" -o "$T/x.bn"
    expect_one_line_error "$status" "$output" bn-pack
    [[ $output == *"bn-quant"* ]]
    [ ! -e "$T/x.bn" ]
}

@test "a t2 code 3 (no weight) in the input is refused by place, not repacked into some weight" {
    cp "$T/q.bn" "$T/bad.bn"
    $PY - "$T/bad.bn" "$ROOT" <<'PY'
import struct, sys
sys.path.insert(0, sys.argv[2] + '/tests/ref')
import bnread
m = bnread.read(sys.argv[1])
t = m.by_name['blk.1.ffn_up.weight']
rb = (t.shape[1] + 3) // 4
data = bytearray(m.tensor_bytes(t))
data[2 * rb + 5] |= 0x0c  # row 2, column 21: code 3
m.close()
f = bytearray(open(sys.argv[1], 'rb').read())
f[m.data_offset + t.offset:m.data_offset + t.offset + t.size] = data
old, new = struct.pack('<Q', t.hash), struct.pack('<Q', bnread.xxh3(data))  # its checksum, so that it reads
assert f.count(old) == 1
f = f.replace(old, new)
tsize = struct.unpack('<Q', f[-16:-8])[0]  # and the trailer's own checksum (bn-model.md 5)
f[-24:-16] = struct.pack('<Q', bnread.xxh3(f[len(f) - tsize:-24]))
open(sys.argv[1], 'wb').write(f)
PY
    for l in t2 i2s b3 tl1 tl2; do
        run_split "$T/err" bn-pack -l $l "$T/bad.bn" -o "$T/x.bn"
        expect_one_line_error "$status" "$err" bn-pack
        [[ $err == *"tensor 'blk.1.ffn_up.weight' holds an invalid t2 code at row 2, column 21"* ]]
        [ ! -e "$T/x.bn" ]
    done
}

@test "a ternary scale that is inf, NaN or negative is refused, naming the tensor (every output would be inf or NaN)" {
    for beta in nan inf -1; do
        $PY - "$T/q.bn" "$T/bad.bn" "$ROOT" "$beta" <<'PY'
import struct, sys
sys.path.insert(0, sys.argv[3] + '/tests/ref')
import bnread
m = bnread.read(sys.argv[1])
raw = bytearray(m.tensor_bytes('blk.1.ffn_up.weight'))
raw[-4:] = struct.pack('<f', float(sys.argv[4]))  # the t2 tensor's last 4 bytes: β (bn-model.md 4.1)
bnread.write(m, sys.argv[2], raw={'blk.1.ffn_up.weight': bytes(raw)})
PY
        for l in t2 i2s b3; do
            run_split "$T/err" bn-pack -l $l "$T/bad.bn" -o "$T/x.bn"
            expect_one_line_error "$status" "$err" bn-pack
            [[ $err == *"bad.bn: tensor 'blk.1.ffn_up.weight' has the scale "*"; a finite scale of 0 or more is required" ]]
            [ ! -e "$T/x.bn" ]
        done
    done
}

@test "truncated input fails and leaves no output" {
    head -c 100000 "$T/q.bn" > "$T/cut.bn"
    run bn-pack -l i2s "$T/cut.bn" -o "$T/x.bn"
    [ "$status" -eq 1 ]
    [ ! -e "$T/x.bn" ]
    no_files_like "$T" '^\.'
}

@test "--list names this CPU's features and a kernel set for each layout" {
    run bn-pack --list
    [ "$status" -eq 0 ]
    [[ $output == *"cpu features:"* ]]
    [[ $output == *"layout t2 "*"ref"* ]]
    [[ $output == *"layout i2s"*"ref"* ]]
    [[ $output == *"layout b3"*"ref"* ]]
    [[ $output == *"layout tl1"*"ref"* ]]
    [[ $output == *"layout tl2"*"ref"* ]]
    # it lists, and does nothing else: a model or an output with it is a usage error
    run bn-pack --list "$T/q.bn" -l b3 -o "$T/x.bn"
    [ "$status" -eq 2 ]
    [ ! -e "$T/x.bn" ]
    [[ $output == *"--list prints what this CPU runs"* ]]
}

@test "--list --json: the same list as data" {
    bn-pack --list >"$T/text"
    bn-pack --list --json >"$T/json"
    # the JSON says what the text says, line for line
    python3 - "$T/text" "$T/json" <<'PYEOF'
import json, sys
text = open(sys.argv[1]).read().splitlines()
j = json.load(open(sys.argv[2]))
assert text[0] == "cpu features: " + " ".join(j["cpu_features"]), (text[0], j)
lines = ["layout %-4s kernels: %s (auto: %s)" % (l["name"], " ".join(l["kernels"]), l["auto"]) for l in j["layouts"]]
assert text[1:] == lines, (text, lines)
assert [l["name"] for l in j["layouts"]] == ["t2", "i2s", "b3", "tl1", "tl2"], j
assert all("ref" in l["kernels"] and l["auto"] in l["kernels"] for l in j["layouts"]), j
PYEOF
    run bn-pack --json
    [ "$status" -eq 2 ]
    [[ $output == *"--json is for --list"* ]]
}

@test "every layout and kernel set gives the same perplexity (repacking is exact)" {
    bn-pack -l i2s "$T/q.bn" -o "$T/i.bn"
    bn-pack -l b3 "$T/q.bn" -o "$T/b.bn"
    bn-pack -l tl1 "$T/q.bn" -o "$T/tl1.bn"
    bn-pack -l tl2 --tile 96x60 "$T/q.bn" -o "$T/tl2.bn"
    # a quarter of the held-out text (~500 tokens, 4 windows): the scalar
    # reference sets decode the tl layouts token by token
    held=$T/held.txt
    head -c 2600 "$ROOT/tests/data/infer/heldout.txt" >"$held"
    # about 150 tokens under the sanitizers: what they look for, every path finds in them
    [ -z "${BN_SANITIZED:-}" ] || head -c 650 "$ROOT/tests/data/infer/heldout.txt" >"$held"
    # The ternary kernels are exact, so every layout gives the same bytes
    # under one kernel set. The SIMD float parts (attention, head) that
    # come with an optimized set round differently from the scalar ones
    # --kernel ref keeps, and an int8 activation may then round the other
    # way: across that line the perplexities agree to 0.05%.
    ref=$(bn-infer -m "$T/q.bn" --kernel ref --kv f32 -t 1 -c 128 --perplexity "$held")
    auto=$(bn-infer -m "$T/q.bn" --kernel auto --kv f32 -t 1 -c 128 --perplexity "$held")
    for m in "$T/q.bn" "$T/i.bn" "$T/b.bn" "$T/tl1.bn" "$T/tl2.bn"; do
        for k in ref auto; do
            out=$(bn-infer -m "$m" --kernel $k --kv f32 -t 2 -c 128 --perplexity "$held")
            want=$ref
            [ $k = ref ] || want=$auto
            [ "$out" = "$want" ] || { echo "$m $k: $out vs $want"; return 1; }
        done
    done
    # across the line: a numerics verdict, over the four windows of the normal pass
    [ -z "${BN_SANITIZED:-}" ] || return 0
    a=$(echo "$ref" | cut -d' ' -f3)
    b=$(echo "$auto" | cut -d' ' -f3)
    awk -v a="$a" -v b="$b" 'BEGIN { d = (a - b) / a; if (d < 0) d = -d; exit !(d < 5e-4) }' ||
        { echo "ref $ref vs auto $auto"; return 1; }
}

@test "generated text is identical on t2, tl1 and tl2 (3 threads split rows inside tl blocks)" {
    bn-pack -l tl1 "$T/q.bn" -o "$T/tl1.bn"
    bn-pack -l tl2 --tile 96x60 "$T/q.bn" -o "$T/tl2.bn"
    for k in ref auto; do
        want=$(bn-infer -m "$T/q.bn" --kernel $k -t 3 -p "Mr. Darcy" -n 24 --temp 0)
        [ -n "$want" ]
        for m in tl1 tl2; do
            out=$(bn-infer -m "$T/$m.bn" --kernel $k -t 3 -p "Mr. Darcy" -n 24 --temp 0)
            [ "$out" = "$want" ] || { echo "$m $k: $out vs $want"; return 1; }
        done
    done
}
