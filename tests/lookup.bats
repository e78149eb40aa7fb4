#!/usr/bin/env bats
# bn-infer --lookup (prompt lookup decoding, issue 16): greedy output is
# byte-identical to plain decoding on the bundled tiny model for prompts
# that copy (a repeated passage, a paragraph to rewrite, the model's own
# loops) and prompts that do not, in every kernel set this CPU runs;
# sampled runs repeat for a seed; the option errors; bn-bench's --verify
# and --prompt-file rows (issue 16's measurements). The distribution of
# sampled output is tested in tests/unit/test_spec.c, bit-identical
# logits of verify passes in tests/unit/test_batch.c. tests/data/lookup/
# holds the prompts of the bn-bench --prompt-file measurements (a passage
# to repeat, a paragraph to rewrite, a question over a given text, and a
# prompt with nothing to copy), sized for the tiny model's 256 positions
# with 128 tokens to generate.

load common

DATA=$ROOT/tests/data/infer

setup_file() {
    local D=$BATS_FILE_TMPDIR
    bn-convert "$TINY" | bn-quant >"$D/tiny.bn"
    # a passage twice, then its start: the answer can copy it
    local p="It was a truth very generally felt in the parish of Highcombe, that a lady who had once declined an offer of marriage must be in want of a very good reason."
    printf '%s %s It was a truth very generally felt' "$p" "$p" >"$D/repeat.txt"
    # a paragraph to say again
    { head -c 700 "$DATA/heldout.txt"; printf '\n\nThe same paragraph again:\n\nIt was a truth'; } >"$D/rewrite.txt"
    # nothing to copy
    printf 'Mrs. Pemberton' >"$D/plain.txt"
    # a token stream of three records (prefix reuse between them)
    bn-tokenize -m "$D/tiny.bn" "$D/repeat.txt" "$D/rewrite.txt" "$D/plain.txt" >"$D/three.ids"
}

setup() {
    D=$BATS_FILE_TMPDIR
    T=$BATS_TEST_TMPDIR
}

@test "--lookup: greedy output is byte-identical to plain decoding, every kernel set, several prompts" {
    ran=0
    for k in $(checked_sets auto ref avx2 avx512 amx neon dotprod); do
        bn-infer -m "$D/tiny.bn" --kernel $k -p x -n 1 >/dev/null 2>&1 || continue
        ran=$((ran + 1))
        # every prompt on the default set; the three kinds on the others
        more=()
        [ $k != auto ] || more=("$ROOT"/tests/data/lookup/*.txt)
        for f in "$D/repeat.txt" "$D/rewrite.txt" "$D/plain.txt" "${more[@]}"; do
            bn-infer -m "$D/tiny.bn" --kernel $k -f "$f" --temp 0 -n 64 >"$T/plain" 2>/dev/null
            # paced (the default: it may guess little here) and not
            for l in "1 --draft-max 2 --no-pacing" "3" "4 --draft-max 16 --no-pacing"; do
                # shellcheck disable=SC2086
                bn-infer -m "$D/tiny.bn" --kernel $k -f "$f" --temp 0 -n 64 --lookup $l >"$T/spec"
                cmp "$T/plain" "$T/spec" || { echo "$k $f --lookup $l differs"; return 1; }
            done
        done
    done
    enough_sets "$ran"
}

@test "--lookup: the same with a repeat penalty, stop strings, until the context is full, and a stream of records" {
    bn-infer -m "$D/tiny.bn" -f "$D/repeat.txt" --temp 0 --repeat-penalty 1.2 -n 48 >"$T/a"
    bn-infer -m "$D/tiny.bn" -f "$D/repeat.txt" --temp 0 --repeat-penalty 1.2 -n 48 --lookup 2 --no-pacing >"$T/b"
    cmp "$T/a" "$T/b"
    bn-infer -m "$D/tiny.bn" -f "$D/repeat.txt" --temp 0 -n 64 --stop "reason" >"$T/a"
    bn-infer -m "$D/tiny.bn" -f "$D/repeat.txt" --temp 0 -n 64 --stop "reason" --lookup 3 --no-pacing >"$T/b"
    cmp "$T/a" "$T/b"
    bn-infer -m "$D/tiny.bn" -f "$D/repeat.txt" --temp 0 -n -1 -c 96 >"$T/a"
    bn-infer -m "$D/tiny.bn" -f "$D/repeat.txt" --temp 0 -n -1 -c 96 --lookup 3 --no-pacing --draft-max 32 >"$T/b"
    cmp "$T/a" "$T/b"
    bn-infer -m "$D/tiny.bn" --temp 0 -n 40 <"$D/three.ids" >"$T/a"
    bn-infer -m "$D/tiny.bn" --temp 0 -n 40 --lookup 3 --no-pacing <"$D/three.ids" >"$T/b"
    [ "$(grep -c . "$T/a")" -eq 3 ]
    cmp "$T/a" "$T/b"
}

@test "--lookup -v: drafts kept on a prompt that copies, more than one token a pass" {
    bn-infer -m "$D/tiny.bn" -f "$D/repeat.txt" --temp 0 -n 64 --lookup 3 --no-pacing -v >/dev/null 2>"$T/err"
    line=$(grep "prompt lookup:" "$T/err")
    [[ $line =~ ([0-9]+)\ tokens\ drafted,\ ([0-9]+)\ accepted.*,\ ([0-9.]+)\ tokens\ a\ pass ]]
    [ "${BASH_REMATCH[2]}" -gt 0 ]
    awk -v t="${BASH_REMATCH[3]}" 'BEGIN { exit !(t > 1.2) }'
}

@test "--lookup: sampled output repeats for a seed, and differs between seeds" {
    bn-infer -m "$D/tiny.bn" -f "$D/repeat.txt" --seed 7 -n 48 --lookup 3 >"$T/a"
    bn-infer -m "$D/tiny.bn" -f "$D/repeat.txt" --seed 7 -n 48 --lookup 3 >"$T/b"
    cmp "$T/a" "$T/b"
    bn-infer -m "$D/tiny.bn" -f "$D/repeat.txt" --seed 8 -n 48 --lookup 3 >"$T/c"
    ! cmp -s "$T/a" "$T/c" || false
}

@test "--lookup: --draft-max alone, values out of range (usage, exit 2); with --parallel in spec-parallel.bats" {
    run bn-infer -m "$D/tiny.bn" -p x --draft-max 4
    [ "$status" -eq 2 ]
    [[ $output == *"--draft-max needs --lookup"* ]]
    run bn-infer -m "$D/tiny.bn" -p x --lookup 0
    [ "$status" -eq 2 ]
    run bn-infer -m "$D/tiny.bn" -p x --lookup 2 --draft-max 128
    [ "$status" -eq 2 ]
    run bn-infer -m "$D/tiny.bn" -p x --no-pacing
    [ "$status" -eq 2 ]
    [[ $output == *"--no-pacing needs --lookup"* ]]
}

@test "bn-bench --verify: a row per pass size beside the decode step, with the ratio" {
    run bn-bench -m "$D/tiny.bn" -p 32 -n 0 -t 1 -r 1 --bw-mib 4 --verify 2,4
    [ "$status" -eq 0 ]
    [[ $output == *"| pass 1 @32 | decode step |"* ]]
    [[ $output =~ \|\ pass\ 4\ @32\ \|\ verify\ pass:\ [0-9.]+x\ a\ decode\ step\ \|\ [0-9.]+ ]]
    [[ $output == *"| pass 2 @32 |"* ]]
    # a synthetic shape, as the lead runs 2b4t
    run bn-bench --synthetic tiny -p 16 -n 0 -t 1 -r 1 --bw-mib 4 --verify 8
    [ "$status" -eq 0 ]
    [[ $output == *"| synthetic tiny (t2/"*") | 1 | pass 8 @16 | verify pass: "* ]]
    # --compare: these rows are times, so a run twice as slow compares at 0.5 (above 1 is faster, as for t/s)
    bn-bench -m "$D/tiny.bn" -p 32 -n 0 -t 1 -r 1 --bw-mib 4 --verify 2 --json >"$T/v.json"
    $PY - "$T/v.json" "$T/slow.json" <<'EOF_'
import json, sys
j = json.load(open(sys.argv[1]))
for r in j["rows"]:
    if r.get("unit") == "ms":
        r["samples"] = [2 * s for s in r["samples"]]
        for k in ("median", "mean", "min", "max", "stddev"):
            if isinstance(r.get(k), (int, float)):
                r[k] *= 2
json.dump(j, open(sys.argv[2], "w"))
EOF_
    bn-bench --compare "$T/v.json" "$T/slow.json" --json >"$T/cmp.json"
    $PY -c '
import json, sys
c = [r for r in json.load(open(sys.argv[1])) if r["unit"] == "ms"]
assert len(c) == 2 and all(abs(r["ratio"] - 0.5) < 1e-9 for r in c), c' "$T/cmp.json"
}

@test "bn-bench --prompt-file: plain and lookup rows, drafts kept on a text that copies; JSON has them" {
    bn-bench -m "$D/tiny.bn" -p 0 -n 32 -t 1 -r 1 --bw-mib 4 --prompt-file "$D/repeat.txt" \
        --prompt-file "$D/plain.txt" --lookup 2 --draft-max 4 --no-pacing >"$T/out"
    grep -q "| tg32 plain | repeat.txt |" "$T/out"
    line=$(grep "| tg32 lookup 2/4 unpaced | repeat.txt: " "$T/out")
    [[ $line =~ repeat.txt:\ ([0-9]+)%\ kept,\ ([0-9.]+)\ tok/pass ]]
    [ "${BASH_REMATCH[1]}" -gt 0 ]
    grep -q "| tg32 lookup 2/4 unpaced | plain.txt: " "$T/out"
    # paced (the default), as bn-infer runs it
    bn-bench -m "$D/tiny.bn" -p 0 -n 32 -t 1 -r 1 --bw-mib 4 --prompt-file "$D/repeat.txt" >"$T/out"
    grep -q "| tg32 lookup 3/8 | repeat.txt: " "$T/out"
    run bn-bench -m "$D/tiny.bn" -p 0 -n 8 -t 1 -r 1 --no-pacing
    [ "$status" -eq 2 ]
    bn-bench -m "$D/tiny.bn" -p 0 -n 16 -t 1 -r 1 --bw-mib 4 --prompt-file "$D/plain.txt" --json >"$T/j"
    grep -q '"tg16 lookup 3/8"' "$T/j"
    # '-' is read once, before any test, for every thread count alike (the second read found it empty)
    bn-bench -m "$D/tiny.bn" -p 0 -n 16 -t 1,2 -r 1 --bw-mib 4 --no-pacing --prompt-file - <"$D/repeat.txt" --json \
        >"$T/stdin.json"
    $PY -c '
import json, sys
rows = [r for r in json.load(open(sys.argv[1]))["rows"] if "kept" in r["what"]]
assert len(rows) == 2 and rows[0]["what"].split(",")[0:2] == rows[1]["what"].split(",")[0:2], rows' "$T/stdin.json"
    # an empty text is no text; a missing one is named before anything runs
    : >"$T/empty.txt"
    run_split "$T/out" bn-bench -m "$D/tiny.bn" -p 0 -n 16 -t 1 -r 1 --prompt-file "$T/empty.txt"
    expect_one_line_error "$status" "$err" bn-bench
    [ "$err" = "bn-bench: $T/empty.txt: no text" ]
    run_split "$T/out" bn-bench -m "$D/tiny.bn" -p 0 -n 16 -t 1 -r 1 --prompt-file "$T/none.txt"
    expect_one_line_error "$status" "$err" bn-bench
    [ ! -s "$T/out" ]
}

@test "bn-bench: --verify/--prompt-file refused with modes, --parallel, --synthetic, and --lookup alone" {
    run bn-bench --kernels --verify 2
    [ "$status" -eq 2 ]
    run bn-bench -m "$D/tiny.bn" --parallel 2 --verify 2
    [ "$status" -eq 2 ]
    run bn-bench --synthetic tiny --prompt-file "$D/plain.txt"
    [ "$status" -eq 2 ]
    run bn-bench -m "$D/tiny.bn" --lookup 2
    [ "$status" -eq 2 ]
    [[ $output == *"--prompt-file"* ]]
    run bn-bench -m "$D/tiny.bn" --verify 0
    [ "$status" -eq 2 ]
}
