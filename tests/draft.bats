#!/usr/bin/env bats
# bn-infer --draft MODEL (speculative decoding with a draft model, issue
# 16): the bundled tiny model checks the guesses of a draft made from its
# own first two layers (tests/ref/cut_layers.py: the same embedding, final
# norm, head and tokenizer; a real smaller model that agrees with it on
# some tokens, not all). Greedy output is byte-identical to plain decoding
# on the prompts of tests/data/lookup/ in every kernel set this CPU runs;
# the tiny model as its own draft keeps every guess; sampled runs repeat
# for a seed; drafts of another vocabulary are refused. The distribution
# of sampled output (rejection sampling) is tested in tests/unit/test_spec.c.

load common

setup_file() {
    local D=$BATS_FILE_TMPDIR
    bn-convert "$TINY" | bn-quant >"$D/tiny.bn"
    $PY "$ROOT/tests/ref/cut_layers.py" "$TINY" 2 "$D/cut2"
    bn-convert "$D/cut2" | bn-quant >"$D/draft2.bn"
    # a passage twice, then its start
    local p="It was a truth very generally felt in the parish of Highcombe, that a lady who had once declined an offer of marriage must be in want of a very good reason."
    printf '%s %s It was a truth very generally felt' "$p" "$p" >"$D/repeat.txt"
    bn-tokenize -m "$D/tiny.bn" "$D/repeat.txt" "$ROOT/tests/data/lookup/fresh.txt" "$ROOT/tests/data/lookup/chat.txt" \
        >"$D/three.ids"
}

setup() {
    D=$BATS_FILE_TMPDIR
    T=$BATS_TEST_TMPDIR
}

@test "--draft: the cut model is a smaller model with the tiny model's vocabulary" {
    bn-convert --info --json "$D/draft2.bn" >"$T/d"
    bn-convert --info --json "$D/tiny.bn" >"$T/m"
    grep -q '"model.block_count":2,' "$T/d"
    grep -q '"model.block_count":6,' "$T/m"
    [ "$(stat -c %s "$D/draft2.bn")" -lt "$(stat -c %s "$D/tiny.bn")" ]
}

@test "--draft: each answer starts its guess count afresh, as in --parallel: the same counts one record at a time" {
    bn-tokenize -l -m "$D/tiny.bn" "$D/repeat.txt" "$ROOT/tests/data/lookup/rewrite.txt" "$ROOT/tests/data/lookup/chat.txt" \
        >"$T/three.ids"
    bn-infer -m "$D/tiny.bn" --draft "$D/draft2.bn" --no-pacing --temp 0 -n 40 -v <"$T/three.ids" 2>"$T/one.err" >"$T/one"
    bn-infer -m "$D/tiny.bn" --draft "$D/draft2.bn" --no-pacing --temp 0 -n 40 -v --parallel 1 <"$T/three.ids" \
        2>"$T/par.err" >"$T/par"
    cmp "$T/one" "$T/par"
    grep 'draft model:' "$T/one.err" >"$T/one.n"
    grep 'draft model:' "$T/par.err" >"$T/par.n"
    [ -s "$T/one.n" ]
    diff "$T/one.n" "$T/par.n"
}

@test "--draft: greedy output is byte-identical to plain decoding, every kernel set, the lookup prompts" {
    ran=0
    # auto is one of the sets named here; the scalar reference (slow) takes
    # the passage that the draft gets partly right, the others every prompt
    for k in $(checked_sets ref avx2 avx512 amx neon dotprod); do
        bn-infer -m "$D/tiny.bn" --kernel $k -p x -n 1 >/dev/null 2>&1 || continue
        ran=$((ran + 1))
        prompts=("$D/repeat.txt" "$ROOT"/tests/data/lookup/*.txt)
        [ $k = ref ] && prompts=("$D/repeat.txt")
        for f in "${prompts[@]}"; do
            bn-infer -m "$D/tiny.bn" --kernel $k -f "$f" --temp 0 -n 64 >"$T/plain" 2>/dev/null
            for x in "--draft-max 2 --no-pacing" ""; do # unpaced and paced (the default)
                # shellcheck disable=SC2086
                bn-infer -m "$D/tiny.bn" --kernel $k -f "$f" --temp 0 -n 64 --draft "$D/draft2.bn" $x >"$T/spec"
                cmp "$T/plain" "$T/spec" || { echo "$k $f --draft $x differs"; return 1; }
            done
        done
    done
    enough_sets "$ran"
}

@test "--draft: guesses kept and rejected (-v), and the tiny model as its own draft keeps every guess" {
    # unpaced: on the tiny model guessing does not pay, so paced it would rarely guess
    bn-infer -m "$D/tiny.bn" -f "$D/repeat.txt" --temp 0 -n 64 --draft "$D/draft2.bn" --no-pacing -v >/dev/null 2>"$T/err"
    line=$(grep "draft model:" "$T/err")
    [[ $line =~ ([0-9]+)\ tokens\ drafted,\ ([0-9]+)\ accepted.*,\ ([0-9.]+)\ tokens\ a\ pass ]]
    [ "${BASH_REMATCH[2]}" -gt 0 ]
    [ "${BASH_REMATCH[2]}" -lt "${BASH_REMATCH[1]}" ]
    for f in "$ROOT"/tests/data/lookup/*.txt; do
        bn-infer -m "$D/tiny.bn" -f "$f" --temp 0 -n 64 >"$T/plain"
        bn-infer -m "$D/tiny.bn" -f "$f" --temp 0 -n 64 --draft "$D/tiny.bn" --no-pacing -v >"$T/self" 2>"$T/err"
        cmp "$T/plain" "$T/self"
        line=$(grep "draft model:" "$T/err")
        [[ $line =~ ([0-9]+)\ tokens\ drafted,\ ([0-9]+)\ accepted.*,\ ([0-9.]+)\ tokens\ a\ pass ]]
        [ "${BASH_REMATCH[1]}" -gt 0 ]
        [ "${BASH_REMATCH[2]}" -eq "${BASH_REMATCH[1]}" ]
        awk -v t="${BASH_REMATCH[3]}" 'BEGIN { exit !(t > 4) }'
    done
}

@test "--draft: the same with a repeat penalty, stop strings, until the context is full, and a stream of records" {
    bn-infer -m "$D/tiny.bn" -f "$D/repeat.txt" --temp 0 --repeat-penalty 1.2 -n 48 >"$T/a"
    bn-infer -m "$D/tiny.bn" -f "$D/repeat.txt" --temp 0 --repeat-penalty 1.2 -n 48 --draft "$D/draft2.bn" --no-pacing >"$T/b"
    cmp "$T/a" "$T/b"
    bn-infer -m "$D/tiny.bn" -f "$D/repeat.txt" --temp 0 -n 64 --stop "reason" >"$T/a"
    bn-infer -m "$D/tiny.bn" -f "$D/repeat.txt" --temp 0 -n 64 --stop "reason" --draft "$D/draft2.bn" --no-pacing >"$T/b"
    cmp "$T/a" "$T/b"
    bn-infer -m "$D/tiny.bn" -f "$D/repeat.txt" --temp 0 -n -1 -c 96 >"$T/a"
    bn-infer -m "$D/tiny.bn" -f "$D/repeat.txt" --temp 0 -n -1 -c 96 --draft "$D/draft2.bn" --no-pacing --draft-max 32 >"$T/b"
    cmp "$T/a" "$T/b"
    bn-infer -m "$D/tiny.bn" --temp 0 -n 40 <"$D/three.ids" >"$T/a"
    bn-infer -m "$D/tiny.bn" --temp 0 -n 40 --draft "$D/draft2.bn" --no-pacing <"$D/three.ids" >"$T/b"
    [ "$(grep -c . "$T/a")" -eq 3 ]
    cmp "$T/a" "$T/b"
}

@test "--draft: a K beyond the f16 cache in a guess, or in the draft's own cache, is no error: the answers are the model's" {
    hot_tiny "$T/hot.bn"          # " ladyship" (3000): its K beyond f16 (common.bash)
    hot_tiny "$T/ladyship.bn" 44  # a draft that guesses " ladyship" where the tiny model says ","
    printf 'It was a fine morning\nShe\n' | bn-tokenize -m "$D/tiny.bn" -l >"$T/two.ids"
    bn-infer -m "$T/ladyship.bn" --temp 0 -n 16 <"$T/two.ids" | grep -qw 3000 # it does guess it
    bn-infer -m "$T/hot.bn" --temp 0 -n 16 <"$T/two.ids" >"$T/plain"
    ! grep -qw 3000 "$T/plain"
    for np in 0 2; do # (0: not --parallel)
        run_split "$T/out" bn-infer -m "$T/hot.bn" --draft "$T/ladyship.bn" --no-pacing --temp 0 -n 16 \
            $([ $np = 0 ] || echo "-np $np") <"$T/two.ids"
        [ "$status" -eq 0 ]
        [ -z "$err" ]
        cmp "$T/out" "$T/plain"
    done
    # the draft model's K beyond f16: in the text (record 2, where the draft
    # guesses no more), or in a guess of its own (hot_guess_tiny: it guesses
    # " ladyship", which it cannot hold, where the tiny model says ","): the
    # draft is only a guesser, the answers are the model's as without it
    hot_guess_tiny "$T/guess.bn"
    run_split /dev/null bn-infer -m "$T/guess.bn" --temp 0 -n 8 -p "It was a fine morning"
    [[ $err == "bn-infer: -p: position 6: layer 0: a K value ("*") is beyond the range of the f16 KV cache"* ]]
    printf 'It was a fine morning\nHer ladyship said\nShe\n' | bn-tokenize -m "$D/tiny.bn" -l >"$T/three.ids"
    bn-infer -m "$D/tiny.bn" --temp 0 -n 8 <"$T/three.ids" >"$T/plain"
    for draft in hot guess; do
        for np in 0 3; do
            run_split "$T/out" bn-infer -m "$D/tiny.bn" --draft "$T/$draft.bn" --no-pacing --temp 0 -n 8 \
                $([ $np = 0 ] || echo "-np $np") <"$T/three.ids"
            [ "$status" -eq 0 ]
            [ -z "$err" ]
            cmp "$T/out" "$T/plain"
        done
    done
    # sampled: whole answers, and --parallel's the single stream's (the
    # same guesses kept; each record's seed, as spec-parallel.bats)
    for draft in hot guess; do
        : >"$T/alone"
        for k in 1 2 3; do
            sed -n "${k}p" "$T/three.ids" >"$T/one.ids"
            bn-infer -m "$D/tiny.bn" --draft "$T/$draft.bn" --no-pacing --seed $((40 + k)) --temp 0.9 -n 8 \
                <"$T/one.ids" >>"$T/alone"
        done
        [ "$(wc -l <"$T/alone")" -eq 3 ]
        run_split "$T/out" bn-infer -m "$D/tiny.bn" --draft "$T/$draft.bn" --no-pacing --seed 41 --temp 0.9 -n 8 \
            -np 3 <"$T/three.ids"
        [ "$status" -eq 0 ]
        [ -z "$err" ]
        cmp "$T/out" "$T/alone"
    done
    # --kv f32: the draft's cache too
    run bn-infer -m "$D/tiny.bn" --draft "$T/hot.bn" --no-pacing --kv f32 --temp 0 -n 8 <"$T/three.ids"
    [ "$status" -eq 0 ]
    [ "$output" = "$(bn-infer -m "$D/tiny.bn" --kv f32 --temp 0 -n 8 <"$T/three.ids")" ]
}

@test "--draft: sampled output repeats for a seed, and differs between seeds" {
    bn-infer -m "$D/tiny.bn" -f "$D/repeat.txt" --seed 7 -n 48 --draft "$D/draft2.bn" >"$T/a"
    bn-infer -m "$D/tiny.bn" -f "$D/repeat.txt" --seed 7 -n 48 --draft "$D/draft2.bn" >"$T/b"
    cmp "$T/a" "$T/b"
    bn-infer -m "$D/tiny.bn" -f "$D/repeat.txt" --seed 8 -n 48 --draft "$D/draft2.bn" >"$T/c"
    ! cmp -s "$T/a" "$T/c" || false
    # a stream of records, sampled
    bn-infer -m "$D/tiny.bn" --seed 3 -n 24 --draft "$D/draft2.bn" <"$D/three.ids" >"$T/a"
    bn-infer -m "$D/tiny.bn" --seed 3 -n 24 --draft "$D/draft2.bn" <"$D/three.ids" >"$T/b"
    cmp "$T/a" "$T/b"
}

@test "--draft: a draft of another vocabulary is refused (one line, exit 1); with --lookup (exit 2)" {
    $GEN --format hf-bf16 --shape tiny "$T/other" >/dev/null
    bn-convert "$T/other" | bn-quant >"$T/other.bn"
    run_split "$T/out" bn-infer -m "$D/tiny.bn" -p x -n 4 --draft "$T/other.bn"
    expect_one_line_error "$status" "$err" bn-infer
    [[ $err == *"vocabulary of 512 tokens"*"4096"* ]]
    run_split "$T/out" bn-infer -m "$D/tiny.bn" -p x -n 4 --draft "$T/missing.bn"
    expect_one_line_error "$status" "$err" bn-infer
    run bn-infer -m "$D/tiny.bn" -p x --draft "$D/draft2.bn" --lookup 2
    [ "$status" -eq 2 ]
    [[ $output == *"--draft and --lookup"* ]]
    run bn-infer -m "$D/tiny.bn" -p x -n 2 --draft "$D/draft2.bn" --draft-max 3
    [ "$status" -eq 0 ]
}

@test "--draft -: the draft from standard input, which then holds nothing else (a second use: exit 2)" {
    bn-infer -m "$D/tiny.bn" -p "It was" -n 8 --temp 0 --draft "$D/draft2.bn" >"$T/file"
    bn-infer -m "$D/tiny.bn" -p "It was" -n 8 --temp 0 --draft - <"$D/draft2.bn" >"$T/stdin"
    cmp "$T/file" "$T/stdin"
    # the token stream, the model or the prompt file would be read as the draft
    for args in "-m $D/tiny.bn -n 2" "-m $D/tiny.bn --parallel 2 -n 2" "-m - -p x -n 2" "-m $D/tiny.bn -f - -n 2"; do
        # shellcheck disable=SC2086
        run_split "$T/out" bn-infer $args --draft - <"$D/three.ids"
        [ "$status" -eq 2 ] || { echo "$args: $status: $err"; return 1; }
        [[ $err == "bn-infer: standard input can be read once"*"--draft -"* ]]
    done
}

@test "bn-bench --prompt-file --draft: plain and draft rows, the answers checked the same; refused without --prompt-file or with --lookup" {
    bn-bench -m "$D/tiny.bn" -p 0 -n 32 -t 1 -r 1 --bw-mib 4 --prompt-file "$D/repeat.txt" \
        --draft "$D/draft2.bn" --draft-max 4 --no-pacing >"$T/out"
    grep -q "| tg32 plain | repeat.txt |" "$T/out"
    line=$(grep "| tg32 draft 4 unpaced | repeat.txt: " "$T/out")
    [[ $line =~ repeat.txt:\ ([0-9]+)%\ kept,\ ([0-9.]+)\ tok/pass ]]
    [ "${BASH_REMATCH[1]}" -gt 0 ]
    bn-bench -m "$D/tiny.bn" -p 0 -n 16 -t 1 -r 1 --bw-mib 4 --prompt-file "$D/repeat.txt" --draft "$D/tiny.bn" \
        --json >"$T/j"
    grep -q '"tg16 draft 8"' "$T/j"
    run bn-bench -m "$D/tiny.bn" --draft "$D/draft2.bn"
    [ "$status" -eq 2 ]
    run bn-bench -m "$D/tiny.bn" --prompt-file "$D/repeat.txt" --draft "$D/draft2.bn" --lookup 2
    [ "$status" -eq 2 ]
}
