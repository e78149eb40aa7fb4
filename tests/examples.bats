#!/usr/bin/env bats
# The scripts in examples/ and the EXAMPLES of bn-infer(1) run as written.

load common

setup_file() {
    bn-convert "$TINY" | bn-quant >"$BATS_FILE_TMPDIR/tiny.bn"
}

setup() {
    T=$BATS_TEST_TMPDIR
    M=$BATS_FILE_TMPDIR/tiny.bn
    EX=$ROOT/examples
}

@test "examples/generate.sh continues a text" {
    run "$EX/generate.sh" "$M" "It was a fine morning, and Elizabeth" 16
    [ "$status" -eq 0 ]
    [[ $output == *[a-z]* ]]
}

@test "examples/generate.sh and batch-prompts.sh fail when any program of their pipe fails (sh has no pipefail)" {
    long=$($PY -c 'print("word " * 400)') # more than the context
    run sh "$EX/generate.sh" "$M" x -5    # bn-infer: a usage error
    [ "$status" -ne 0 ]
    run sh "$EX/generate.sh" "$M" "$long" 5
    [ "$status" -ne 0 ]
    printf '%s\n' "$long" >"$T/long.txt"
    run sh "$EX/batch-prompts.sh" "$M" "$T/long.txt" 4
    [ "$status" -ne 0 ]
    run sh "$EX/batch-prompts.sh" "$M" "$T/none.txt" 4 # bn-tokenize: no such file
    [ "$status" -ne 0 ]
}

@test "examples/chat.sh answers each piped line with one line" {
    # sampled answers often hold line breaks; to a pipe they are escaped
    escaped=0
    for seed in 1 2 3 4 5 6 7 8; do
        printf 'Good morning.\nHow is your sister?\n' | BN_SEED=$seed BN_PREDICT=12 "$EX/chat.sh" "$M" >"$T/out"
        [ "$(wc -l <"$T/out")" -eq 2 ]
        grep -q '\\n' "$T/out" && escaped=1
    done
    [ "$escaped" -eq 1 ]
}

@test "examples/batch-prompts.sh answers a file of prompts in one run, in order" {
    printf 'It was a fine morning\nMr. Darcy said\nThe letter\n' >"$T/prompts.txt"
    run "$EX/batch-prompts.sh" "$M" "$T/prompts.txt" 8
    [ "$status" -eq 0 ]
    [ "${#lines[@]}" -eq 3 ]
    # the second answer is what the second prompt alone gets
    alone=$(printf 'Mr. Darcy said' | bn-tokenize -m "$M" | bn-infer -m "$M" -n 8 --temp 0 | bn-tokenize -m "$M" -d)
    [ "${lines[1]}" = "$alone" ]
    # answers with line breaks in them stay one line each, and printf '%b'
    # gives the text back; at any PARALLEL
    printf 'It was\nChapter 3\nShe said\nVolume II\n' >"$T/p4.txt"
    "$EX/batch-prompts.sh" "$M" "$T/p4.txt" 64 1 >"$T/a1"
    "$EX/batch-prompts.sh" "$M" "$T/p4.txt" 64 3 >"$T/a3"
    [ "$(wc -l <"$T/a1")" -eq 4 ]
    cmp "$T/a1" "$T/a3"
    sed -n 2p "$T/a1" | grep -qF '\n' # this answer holds line breaks
    alone=$(printf 'Chapter 3' | bn-tokenize -m "$M" | bn-infer -m "$M" -n 64 --temp 0 | bn-tokenize -m "$M" -d)
    [ "$(printf '%b' "$(sed -n 2p "$T/a1")")" = "$alone" ]
}

@test "examples/score-text.sh prints the perplexity as JSON" {
    run "$EX/score-text.sh" "$M" "$ROOT/tests/data/infer/heldout.txt" 128
    [ "$status" -eq 0 ]
    echo "$output" | $PY -c 'import json,sys; d=json.load(sys.stdin); assert 20 < d["ppl"] < 200 and d["window"] == 128'
}

@test "examples/convert-and-pack.sh makes a runnable model from the HF checkpoint" {
    run "$EX/convert-and-pack.sh" "$TINY" "$T/m.bn"
    [ "$status" -eq 0 ]
    run bn-infer -m "$T/m.bn" -p "She" -n 4 --seed 1
    [ "$status" -eq 0 ]
    # a failure leaves an OUTPUT that was there as it was (a redirection emptied it)
    cp "$T/m.bn" "$T/keep.bn"
    run "$EX/convert-and-pack.sh" "$T/no-such-checkpoint" "$T/m.bn"
    [ "$status" -ne 0 ]
    cmp "$T/m.bn" "$T/keep.bn"
}

@test "every EXAMPLES command of bn-infer(1) runs" {
    cd "$T"
    cp "$M" tiny.bn
    cp "$ROOT/tests/data/infer/heldout.txt" text.txt
    # the embedding example's model: a synthetic checkpoint with the real config
    $GEN --format hf-bf16 --family bitnet-embedding-0.6b emb >/dev/null
    bn-convert emb | bn-quant >bitnet-embedding-0.6b.bn
    printf 'hello world\nWhat is a ternary weight?\n' >texts.txt
    # each .EX/.EE block after .SH EXAMPLES is one shell command (roff escapes undone)
    $PY - "$ROOT/man/bn-infer.1" >cmds.txt <<'EOF'
import sys
text = open(sys.argv[1]).read().split(".SH EXAMPLES", 1)[1].split(".SH ", 1)[0]
for block in text.split(".EX\n")[1:]:
    cmd = block.split(".EE", 1)[0].replace("\\e", "\\").replace("\\-", "-")
    print(cmd.replace("\n", " ").strip() + "\0", end="")
EOF
    n=0
    while IFS= read -r -d '' cmd; do
        n=$((n + 1))
        echo "example $n: $cmd"
        run bash -c "set -o pipefail; $cmd"
        echo "$output"
        [ "$status" -eq 0 ]
        [ -n "$output" ] || [ -s logits.f32 ]
    done <cmds.txt
    [ "$n" -ge 6 ]
    [ "$(stat -c %s logits.f32)" -eq $((2 * 4096 * 4)) ] || [ "$(stat -c %s logits.f32)" -eq $((3 * 4096 * 4)) ]
}
