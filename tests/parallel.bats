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
    grep -q '^bn-infer: -: record 18: empty prompt$' "$T/p16.err"
    grep -q '^bn-infer: -: record 43: token 2: id 99999 is outside the vocabulary' "$T/p16.err"
    grep -q '^bn-infer: -: record 100: prompt of 120 tokens does not fit the context of 96 tokens$' "$T/p16.err"
    [ "$(wc -l <"$T/p16.err")" -eq 3 ]
}

@test "seeded sampling: the same tokens at any N (record k samples with seed + k - 1)" {
    infer p16 --temp 1.2 --top-k 0 --seed 7 -n 8 --parallel 16
    infer p1 --temp 1.2 --top-k 0 --seed 7 -n 8 --parallel 1
    same p16 p1
    # another seed, another answer
    infer other --temp 1.2 --top-k 0 --seed 8 -n 8 --parallel 16
    ! cmp -s "$T/p16.out" "$T/other.out" || false
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

@test "records that cannot be answered: an empty answer each and the same messages, in input order, at any N" {
    # refused as read (longer than the context), or when the batch reaches
    # it (the context's length exactly, an id outside the vocabulary): the
    # messages came in another order with --parallel
    $PY -c 'print("5 6 7"); print(" ".join(["5"] * 256)); print(" ".join(["5"] * 257)); print("5 99999 7")
print(" ".join(["5"] * 300)); print("8 9")' >"$T/bad.ids"
    for np in 0 1 4 16; do
        run_split "$T/out$np" bn-infer -m "$D/tiny.bn" -t 1 --temp 0 -n 2 $([ $np = 0 ] || echo --parallel $np) <"$T/bad.ids"
        [ "$status" -eq 1 ]
        echo "$err" >"$T/err$np"
    done
    [ "$(wc -l <"$T/err0")" -eq 4 ] && [ "$(wc -l <"$T/out0")" -eq 6 ]
    for np in 1 4 16; do
        cmp "$T/out0" "$T/out$np"
        diff "$T/err0" "$T/err$np"
    done
}

@test "a co-process gets each answer before it sends the next prompt" {
    coproc CP { bn-infer -m "$D/tiny.bn" -t 1 --temp 0 -n 6 --parallel 4; }
    # bash unsets CP_PID once it reaps the co-process, which may be before the wait below
    local pid=$CP_PID
    sed -n 2p "$D/p200.ids" >&"${CP[1]}"
    IFS= read -r -t 30 -u "${CP[0]}" a
    sed -n 3p "$D/p200.ids" >&"${CP[1]}"
    IFS= read -r -t 30 -u "${CP[0]}" b
    exec {CP[1]}>&-
    wait "$pid"   # bash keeps a reaped child's status for wait
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

# --- batch scoring: --perplexity over several files, N windows at a time

# five texts of different lengths cut from the held-out text (one shorter
# than a window of -c 64), in $T
make_texts() {
    local held=$ROOT/tests/data/infer/heldout.txt
    head -c 3000 "$held" >"$T/a.txt"
    tail -c +3001 "$held" | head -c 1700 >"$T/b.txt"
    tail -c +4701 "$held" | head -c 90 >"$T/c.txt"
    tail -c +4791 "$held" >"$T/d.txt"
    head -c 2222 "$held" | tail -c 1500 >"$T/e.txt"
}

# the JSON lines without their seconds (the only field that may differ)
numbers() { sed 's/, "seconds": [0-9.]*}$/}/' "$@"; }

@test "--perplexity FILE...: each file's numbers at --parallel 4 are those of the file scored alone" {
    make_texts
    cd "$T"
    for f in a b c d e; do
        bn-infer -m "$D/tiny.bn" -c 64 -t 1 --perplexity $f.txt --json >>alone.json
        bn-infer -m "$D/tiny.bn" -c 64 -t 1 --perplexity $f.txt --json --parallel 1 >>alone-p1.json
        bn-infer -m "$D/tiny.bn" -c 64 -t 1 --perplexity $f.txt >>alone.txt
    done
    bn-infer -m "$D/tiny.bn" -c 64 -t 2 --perplexity a.txt b.txt c.txt d.txt e.txt --json --parallel 4 >p4.json
    bn-infer -m "$D/tiny.bn" -c 64 -t 1 --perplexity a.txt --perplexity b.txt c.txt d.txt e.txt --json >p1.json
    bn-infer -m "$D/tiny.bn" -c 64 -t 1 --perplexity a.txt b.txt c.txt d.txt e.txt --parallel 3 >p3.txt
    # one object per file in order, then the total
    [ "$(wc -l <p4.json)" -eq 6 ]
    diff <(numbers alone.json) <(numbers p4.json | head -5)
    diff <(numbers alone.json) <(numbers alone-p1.json)
    diff <(numbers p4.json) <(numbers p1.json)
    tail -1 p4.json | grep -q '^{"files": 5, "ppl": '
    # the total is over every scored token of every file
    $PY - p4.json <<'PY'
import json, sys
r = [json.loads(l) for l in open(sys.argv[1])]
files, total = r[:5], r[5]
assert [f["file"] for f in files] == ["a.txt", "b.txt", "c.txt", "d.txt", "e.txt"]
assert total["scored"] == sum(f["scored"] for f in files)
assert total["windows"] == sum(f["windows"] for f in files)
assert total["tokens"] == sum(f["tokens"] for f in files)
mean = sum(f["nll"] * f["scored"] for f in files) / total["scored"]
assert abs(total["nll"] - mean) < 1e-6, (total["nll"], mean)
assert all(f["windows"] > 1 for f in files if f["file"] != "c.txt")
PY
    # text: each file's line named, the same digits as alone, then the total
    diff <(sed 's/^/x: /' alone.txt | cut -d' ' -f2-) <(head -5 p3.txt | cut -d' ' -f2-)
    [ "$(head -1 p3.txt | cut -d' ' -f1)" = "a.txt:" ]
    tail -1 p3.txt | grep -q '^total (5 files): PPL = '
    # a name with a line break keeps its result on one line (escaped, as messages show it)
    cp a.txt "$(printf 'x\ny.txt')"
    bn-infer -m "$D/tiny.bn" -c 64 -t 1 --perplexity "$(printf 'x\ny.txt')" b.txt >nl.txt
    [ "$(wc -l <nl.txt)" -eq 3 ]
    [ "$(head -1 nl.txt | cut -d' ' -f1)" = 'x\ny.txt:' ]
}

@test "--perplexity with sliding windows and a small KV budget: the same numbers at any N" {
    make_texts
    cd "$T"
    bn-infer -m "$D/tiny.bn" -c 128 --ppl-stride 48 -t 1 --perplexity a.txt d.txt e.txt --json >s1.json
    # 384 KiB is 4 blocks of 64 positions: 2 windows of 128 at once, not 8
    bn-infer -m "$D/tiny.bn" -c 128 --ppl-stride 48 -t 1 --perplexity a.txt d.txt e.txt --json \
        --parallel 8 --kv-budget 384K >s8.json
    diff <(numbers s1.json) <(numbers s8.json)
    # a budget that cannot hold one window: one line, exit 1
    run_split "$T/out" bn-infer -m "$D/tiny.bn" -c 128 -t 1 --perplexity a.txt --kv-budget 100K
    expect_one_line_error "$status" "$err" bn-infer
    [[ $err == *"fewer than a perplexity window of 128"* ]]
    # a file that cannot be scored is named
    : >empty.txt
    run_split "$T/out" bn-infer -m "$D/tiny.bn" -c 64 -t 1 --perplexity a.txt empty.txt --parallel 2
    expect_one_line_error "$status" "$err" bn-infer
    [[ $err == "bn-infer: empty.txt: "* ]]
    run_split "$T/out" bn-infer -m "$D/tiny.bn" -c 64 -t 1 --perplexity a.txt missing.txt
    expect_one_line_error "$status" "$err" bn-infer
    [[ $err == *"missing.txt"* ]]
}

@test "--kv-budget: sizes, the context cut to what it holds, the budget and peak with -v" {
    head -40 "$D/p200.ids" >"$T/p40.ids"
    # 192K holds 2 blocks of 96 KiB (the tiny model: 1536 bytes a position, f16): 128 positions
    bn-infer -m "$D/tiny.bn" -t 1 --temp 0 -n 8 --parallel 8 --kv-budget 192K -v <"$T/p40.ids" >"$T/small.out" \
        2>"$T/small.err" || true
    bn-infer -m "$D/tiny.bn" -t 1 --temp 0 -n 8 -c 128 <"$T/p40.ids" >"$T/c128.out" 2>/dev/null || true
    cmp "$T/small.out" "$T/c128.out"
    grep -q '^bn-infer: note: --kv-budget 192.0 KiB holds 128 positions: the context is cut to 128$' "$T/small.err"
    grep -q 'KV budget 192.0 KiB (f16, 1536 bytes a position, 128 positions)' "$T/small.err"
    grep -q '^bn-infer: KV cache: budget 192.0 KiB, 192.0 KiB allocated (its peak), ' "$T/small.err"
    # the default: a full context for every sequence here (the tiny model's is small)
    bn-infer -m "$D/tiny.bn" -t 1 --temp 0 -n 8 --parallel 4 -v <"$T/p40.ids" 2>"$T/def.err" >/dev/null || true
    grep -q 'KV budget 1.5 MiB (f16, 1536 bytes a position, 1024 positions)' "$T/def.err"
    # --kv-budget alone (no --parallel) is valid: the same answers
    bn-infer -m "$D/tiny.bn" -t 1 --temp 0 -n 8 --kv-budget 1G <"$T/p40.ids" >"$T/big.out" 2>/dev/null || true
    bn-infer -m "$D/tiny.bn" -t 1 --temp 0 -n 8 <"$T/p40.ids" >"$T/plain.out" 2>/dev/null || true
    cmp "$T/big.out" "$T/plain.out"
    # less than one block: one line, exit 1
    run_split "$T/out" bn-infer -m "$D/tiny.bn" -t 1 --kv-budget 64K <"$T/p40.ids"
    expect_one_line_error "$status" "$err" bn-infer
    [[ $err == *"--kv-budget 65536: less than one KV block of 98304 bytes"* ]]
    # not a size
    for v in 12Q 1.5M 0 -1K ""; do
        run bn-infer -m "$D/tiny.bn" --kv-budget "$v"
        [ "$status" -eq 2 ]
        [[ $output == *"not a size"* ]]
    done
}

@test "-v with --parallel: the prompt's passes timed apart, decode steps counted as without --parallel" {
    head -2 "$D/p200.ids" >"$T/p2.ids"
    for np in "" "--parallel 1" "--parallel 2"; do
        bn-infer -m "$D/tiny.bn" -t 1 --temp 0 -n 8 $np -v <"$T/p2.ids" >/dev/null 2>"$T/v.err"
        line=$(grep '^bn-infer: prompt: ' "$T/v.err")
        # two records: 2 x 7 decode steps (the first token of each comes out of its prompt's pass)
        [[ $line == *"; generation: 14 decode steps in "* ]] || { echo "$np: $line"; false; }
        # the prompt took time (it read 0.000 s, all of it counted as generation)
        secs=$(sed -n 's/.* tokens in \([0-9.]*\) s .*/\1/p' <<<"$line")
        awk -v s="$secs" 'BEGIN { exit !(s > 0) }' || { echo "$np: $line"; false; }
    done
}

# The memory bound: peak RSS stays under the KV budget plus what the same
# command takes answering one record of a full pass (128 prompt tokens):
# the program and its libraries, the model (its file mapping and the copy
# on huge pages), the activations of a 128-token pass. On the tiny model
# that part (about 12 MB) is larger than the weights (3 MB), so "KV budget
# plus the model file" alone is not a bound a process can meet.
@test "1,000 prompt records through --parallel 16: all answered, in order, as at --parallel 1; peak RSS under the KV budget plus the model" {
    # 1,000 records of 1..40 tokens (every fifth after a shared 20-token
    # header), 8 tokens each; and one record of 128 tokens. Under the
    # sanitizers (make sanitize), 200 records and no memory bound: the
    # shadow memory counts in the RSS, and the full run takes minutes there.
    local n=1000
    [ -z "${BN_SANITIZED:-}" ] || n=200
    $PY - "$D/lines.ids" "$T/p1000.ids" "$T/p128.ids" "$n" <<'PY'
import random, sys
random.seed(11)
lines = [l.split() for l in open(sys.argv[1]) if l.strip()]
toks = [t for l in lines for t in l[1:]]
head = lines[0][:20]
out = []
for i in range(int(sys.argv[4])):
    n = random.randint(1, 40)
    s = random.randint(0, len(toks) - n)
    rec = ['4064'] + toks[s:s + n - 1]
    if i % 5 == 0:
        rec = head + toks[s:s + random.randint(0, 10)]
    out.append(' '.join(rec))
open(sys.argv[2], 'w').write('\n'.join(out) + '\n')
open(sys.argv[3], 'w').write(' '.join(['4064'] + toks[:127]) + '\n')
PY
    /usr/bin/time -f '%M' -o "$T/rss-one" bn-infer -m "$D/tiny.bn" -t 1 --temp 0 -n 1 --parallel 16 \
        <"$T/p128.ids" >/dev/null
    /usr/bin/time -f '%M' -o "$T/rss16" bn-infer -m "$D/tiny.bn" -t 1 --temp 0 -n 8 --parallel 16 -v \
        <"$T/p1000.ids" >"$T/p16.out" 2>"$T/p16.err"
    bn-infer -m "$D/tiny.bn" -t 1 --temp 0 -n 8 --parallel 1 <"$T/p1000.ids" >"$T/p1.out"
    [ "$(wc -l <"$T/p16.out")" -eq "$n" ]
    cmp "$T/p16.out" "$T/p1.out"
    # every answer present: 8 tokens each (or fewer at a stop token), none empty
    ! grep -qx '' "$T/p16.out" || false
    [ -z "${BN_SANITIZED:-}" ] || return 0
    # the bound (above): peak RSS (/usr/bin/time's maximum resident set, KiB)
    # < the KV budget -v reports + the one-record run's peak RSS
    budget=$(sed -n 's/.*KV budget \([0-9.]*\) MiB.*/\1/p' "$T/p16.err")
    one=$(tail -1 "$T/rss-one")
    rss=$(tail -1 "$T/rss16")
    bound=$($PY -c "print(int($budget * 1024 + $one))")
    echo "peak RSS $rss KiB, bound $bound KiB (KV budget $budget MiB + one record's run $one KiB)"
    [ "$rss" -lt "$bound" ]
    # and what the KV cache took never passed its budget
    grep -q 'KV cache: budget 6.0 MiB, [0-5]\.[0-9] MiB allocated' "$T/p16.err"
}
