#!/usr/bin/env bats
# bn-quant -t and bn-pack --threads: rows shared among threads give the same
# bytes as one thread, for every head type and packed layout, on the bundled
# model and on synthetic checkpoints with odd shapes (rows not divisible by
# the thread count, K % 4 != 0); and the conversion pipeline's stages each
# hold about one tensor plus its output, not the whole model or the f32 copy
# of a tensor bn-quant once made (peak RSS by /usr/bin/time, skipped under
# sanitizers whose shadow memory would count).

load common

setup_file() {
    local D=$BATS_FILE_TMPDIR
    bn-convert "$TINY" -o "$D/tiny.bn"
    # heads: rows of 256 (q4-q6 want multiples of 128), 301 rows; f16 latent weights
    $GEN --format gguf-f16 --master --shape tiny256 --vocab 301 --no-truth "$D/t256.gguf" >/dev/null
    bn-convert "$D/t256.gguf" -o "$D/t256.bn"
    # ternary: K = 36 and 90 (t2 row padding), f32 latent input
    $GEN --format gguf-f32 --master --shape odd --no-truth "$D/odd.gguf" >/dev/null
    bn-convert "$D/odd.gguf" -o "$D/odd.bn"
}

setup() {
    D=$BATS_FILE_TMPDIR
    T=$BATS_TEST_TMPDIR
}

same_for_threads() { # model [bn-quant options]: -t 1, -t 2, -t 3 and a pipe agree
    local m=$1
    shift
    bn-quant -q -t 1 "$@" "$m" -o "$T/t1.bn"
    bn-quant -q -t 2 "$@" "$m" -o "$T/t2.bn"
    bn-quant -q -t 3 "$@" <"$m" >"$T/t3.bn"
    cmp "$T/t1.bn" "$T/t2.bn"
    cmp "$T/t1.bn" "$T/t3.bn"
}

@test "bn-quant: -t 1 and -t 2 write the same bytes, ternary and every head type (bundled model)" {
    same_for_threads "$D/tiny.bn"
    for h in f16 i8 q6 q5 q4; do
        same_for_threads "$D/tiny.bn" --head $h
    done
    # and the threads did split the work: the report is the same too
    bn-quant -q -t 1 --report "$T/r1" --json "$D/tiny.bn" -o /dev/null
    bn-quant -q -t 2 --report "$T/r2" --json "$D/tiny.bn" -o /dev/null
    cmp "$T/r1" "$T/r2"
}

@test "bn-quant: -t 1 and -t 2 write the same bytes on synthetic checkpoints (odd K, odd row counts)" {
    same_for_threads "$D/odd.bn"
    same_for_threads "$D/t256.bn"
    for h in f32 bf16 i8 q6 q5 q4; do
        same_for_threads "$D/t256.bn" --head $h --embd $h
    done
}

@test "bn-quant -t: out of range is a usage error" {
    run bn-quant -t 0 "$D/tiny.bn" -o "$T/x.bn"
    [ "$status" -eq 2 ]
    run bn-quant -t x "$D/tiny.bn" -o "$T/x.bn"
    [ "$status" -eq 2 ]
}

@test "bn-pack --threads: 1 and 2 threads write the same bytes for every layout" {
    for m in tiny odd t256; do
        bn-quant -q "$D/$m.bn" -o "$T/q.bn"
        for l in t2 b3 i2s tl1 tl2; do
            bn-pack -q -l $l --threads 1 "$T/q.bn" -o "$T/p1.bn"
            bn-pack -q -l $l --threads 2 <"$T/q.bn" >"$T/p2.bn"
            cmp "$T/p1.bn" "$T/p2.bn"
            # and repacking from the packed file (through t2) too
            bn-pack -q -l b3 --threads 1 "$T/p1.bn" -o "$T/r1.bn"
            bn-pack -q -l b3 --threads 3 "$T/p1.bn" -o "$T/r3.bn"
            cmp "$T/r1.bn" "$T/r3.bn"
        done
    done
}

# The largest tensor of a bn file, in KB.
largest_kb() {
    bn-convert --info --json "$1" | $PY -c '
import json, sys
print(max(t["size"] for t in json.load(sys.stdin)["tensors"]) // 1024)'
}

@test "bn-convert | bn-quant | bn-pack: each stage holds about one tensor plus its output" {
    [ -z "${BN_SANITIZED:-}" ] || skip "sanitizer shadow memory counts in RSS"
    # 2B4T's layer (FFN 6912 x 2560 f16: 34 MiB, the largest tensor), one layer
    $GEN --format gguf-f16 --master --shape 2b4t --layers 1 --vocab 2048 --no-truth "$T/m.gguf" >/dev/null
    /usr/bin/time -f %M -o "$T/c.rss" bn-convert -q "$T/m.gguf" |
        /usr/bin/time -f %M -o "$T/q.rss" bn-quant -q -t 2 --head q6 |
        /usr/bin/time -f %M -o "$T/p.rss" bn-pack -q -l b3 --threads 2 >"$T/out.bn"
    bn-convert -q "$T/m.gguf" -o "$T/in.bn"
    bn-quant -q --head q6 "$T/in.bn" -o "$T/q.bn"
    local L Lq c q p margin=16384
    L=$(largest_kb "$T/in.bn")
    Lq=$(largest_kb "$T/q.bn")
    c=$(tail -1 "$T/c.rss")
    q=$(tail -1 "$T/q.rss")
    p=$(tail -1 "$T/p.rss")
    echo "largest tensor $L KB (quantized $Lq KB); peak RSS convert $c, quant $q, pack $p KB"
    [ "$L" -gt 30000 ]
    # convert: a tensor at a time; quant: the f16 tensor and its t2 (1/8
    # of it; bn-quant once held an f32 copy besides, 3x); pack: its input's
    # largest tensor and the b3 output (1/5 of a t2 tensor)
    [ "$c" -le $((L + margin)) ]
    [ "$q" -le $((L + L / 8 + margin)) ]
    [ "$p" -le $((Lq + Lq / 4 + margin)) ]
    # what the pipeline wrote is what the stages write one by one
    bn-pack -q -l b3 "$T/q.bn" -o "$T/p.bn"
    cmp "$T/out.bn" "$T/p.bn"
    # from a (mapped) file too: the pages of a tensor read are let go, not
    # held until the whole file is resident
    /usr/bin/time -f %M -o "$T/qf.rss" bn-quant -q -t 2 --head q6 "$T/in.bn" -o "$T/qf.bn"
    q=$(tail -1 "$T/qf.rss")
    echo "quant from the file: $q KB"
    [ "$q" -le $((L + L / 8 + margin)) ]
    cmp "$T/qf.bn" "$T/q.bn"
}
