#!/usr/bin/env bats
# bn-infer --parallel N: prompt records answered N at a time (continuous
# batching over a paged KV cache) give the same output, byte for byte, as
# one at a time: greedy and seeded, ids and text, echo and stop strings,
# binary streams, records that cannot be answered, answers that fill the
# context; and a co-process gets each answer without sending more input.

load common

setup_file() {
    local D=$BATS_FILE_TMPDIR
    bn-convert "$TINY" | bn-quant >"$D/tiny.bn"
    bn-tokenize -m "$D/tiny.bn" -l "$ROOT/tests/data/infer/heldout.txt" >"$D/lines.ids"
    # 200 records of 1..60 tokens, a third after the same 30-token header
    # (prefix sharing); an empty one, one with an id outside the
    # vocabulary, one longer than the context (-c 96)
    $PY - "$D/lines.ids" "$D/p200.ids" <<'EOF'
import random, sys
random.seed(5)
lines = [l.split() for l in open(sys.argv[1]) if l.strip()]
toks = [t for l in lines for t in l[1:]]
head = lines[0][:30]
out = []
for i in range(200):
    n = random.randint(1, 60)
    s = random.randint(0, len(toks) - n)
    rec = ['4064'] + toks[s:s + n - 1]
    if i % 3 == 0:
        rec = head + toks[s:s + random.randint(0, 20)]
    out.append(' '.join(rec))
out[17] = ''
out[42] = '5 99999 7'
out[99] = ' '.join(toks[:120])
open(sys.argv[2], 'w').write('\n'.join(out) + '\n')
EOF
}

setup() {
    D=$BATS_FILE_TMPDIR
    T=$BATS_TEST_TMPDIR
}

# infer NAME [options]: bn-infer over the 200 records, stdout in $T/NAME.out,
# stderr in $T/NAME.err, the exit status in $T/NAME.rc
infer() {
    local name=$1
    shift
    local rc=0
    bn-infer -m "$D/tiny.bn" -c 96 -t 1 "$@" <"$D/p200.ids" >"$T/$name.out" 2>"$T/$name.err" || rc=$?
    echo $rc >"$T/$name.rc"
}

same() { # the runs wrote the same bytes and said the same
    cmp "$T/$1.out" "$T/$2.out" && cmp "$T/$1.err" "$T/$2.err" && cmp "$T/$1.rc" "$T/$2.rc"
}

@test "greedy: --parallel 16, --parallel 1 and no --parallel write the same bytes" {
    infer p16 --temp 0 -n 8 --parallel 16
    infer p1 --temp 0 -n 8 -np 1
    infer serial --temp 0 -n 8
    same p16 p1
    same p16 serial
    # every record answered, in order; the three bad ones refused as before
    [ "$(wc -l <"$T/p16.out")" -eq 200 ]
    [ "$(cat "$T/p16.rc")" -eq 1 ]
    grep -q '^bn-infer: <stdin>: record 18: empty prompt$' "$T/p16.err"
    grep -q '^bn-infer: <stdin>: record 43: token 2: id 99999 is outside the vocabulary' "$T/p16.err"
    grep -q '^bn-infer: <stdin>: record 100: prompt of 120 tokens does not fit the context of 96 tokens$' "$T/p16.err"
    [ "$(wc -l <"$T/p16.err")" -eq 3 ]
}

@test "seeded sampling: the same tokens at any N (record k samples with seed + k - 1)" {
    infer p16 --temp 1.2 --top-k 0 --seed 7 -n 8 --parallel 16
    infer p1 --temp 1.2 --top-k 0 --seed 7 -n 8 --parallel 1
    same p16 p1
    # another seed, another answer
    infer other --temp 1.2 --top-k 0 --seed 8 -n 8 --parallel 16
    ! cmp -s "$T/p16.out" "$T/other.out"
}

@test "answers that fill the context, text with echo and stop strings, binary streams" {
    # -n -1: until a stop token or the context (96) is full
    head -24 "$D/p200.ids" >"$T/p24.ids"
    for np in 1 8; do
        bn-infer -m "$D/tiny.bn" -c 96 -t 1 --temp 0 -n -1 --parallel $np <"$T/p24.ids" >"$T/full$np.out" 2>/dev/null || true
        bn-infer -m "$D/tiny.bn" -c 96 -t 1 --temp 0.8 --seed 3 -n 20 --text --echo --stop ", and" --stop "." \
            --parallel $np <"$T/p24.ids" >"$T/text$np.out" 2>/dev/null || true
    done
    cmp "$T/full1.out" "$T/full8.out"
    cmp "$T/text1.out" "$T/text8.out"
    [ "$(wc -l <"$T/text8.out")" -ge 24 ]
    # binary in, binary out
    grep . "$ROOT/tests/data/infer/heldout.txt" | head -30 | bn-tokenize -m "$D/tiny.bn" -l --binary >"$T/in.bin"
    bn-infer -m "$D/tiny.bn" -t 1 --temp 0 -n 10 --parallel 6 <"$T/in.bin" >"$T/b6.bin"
    bn-infer -m "$D/tiny.bn" -t 1 --temp 0 -n 10 <"$T/in.bin" >"$T/b1.bin"
    cmp "$T/b6.bin" "$T/b1.bin"
    [ "$(bn-tokenize -d -l -m "$D/tiny.bn" <"$T/b6.bin" | wc -l)" -eq 30 ]
}

@test "a co-process gets each answer before it sends the next prompt" {
    coproc CP { bn-infer -m "$D/tiny.bn" -t 1 --temp 0 -n 6 --parallel 4; }
    sed -n 2p "$D/p200.ids" >&"${CP[1]}"
    IFS= read -r -t 30 -u "${CP[0]}" a
    sed -n 3p "$D/p200.ids" >&"${CP[1]}"
    IFS= read -r -t 30 -u "${CP[0]}" b
    exec {CP[1]}>&-
    wait "$CP_PID"
    [ "$a" = "$(sed -n 2p "$D/p200.ids" | bn-infer -m "$D/tiny.bn" -t 1 --temp 0 -n 6)" ]
    [ "$b" = "$(sed -n 3p "$D/p200.ids" | bn-infer -m "$D/tiny.bn" -t 1 --temp 0 -n 6)" ]
}

@test "--parallel: usage errors" {
    run bn-infer -m "$D/tiny.bn" --parallel 0
    [ "$status" -eq 2 ]
    run bn-infer -m "$D/tiny.bn" --parallel 4 -p "It was"
    [ "$status" -eq 2 ]
    [[ $output == *"--parallel answers a token stream"* ]]
    run bn-infer -m "$D/tiny.bn" --parallel 4 --logits /dev/null
    [ "$status" -eq 2 ]
}
