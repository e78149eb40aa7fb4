#!/usr/bin/env bats
# bn-infer --parallel N --lookup M and --parallel N --draft MODEL (issue
# 16 in the batch engine): each record's pass checks its own guesses
# (prompt lookup's, or a draft model's made in draft passes shared by the
# records) beside the other records' tokens. Greedy answers are plain decoding's, byte for byte, at
# any N and on every kernel set this CPU runs, also with stop strings,
# penalties, a full context and a KV budget so small that sequences are
# set back; seeded answers are each record's single-stream --lookup
# answer with its seed (--seed + k - 1 for record k); the same for --draft
# with the tiny model's first two layers as the draft (tests/draft.bats).
# The records are
# tests/data/lookup's prompts (copy, rewrite, chat over a text, nothing to
# copy), two of them twice (shared prompt prefixes).

load common

setup_file() {
    local D=$BATS_FILE_TMPDIR
    bn-convert "$TINY" | bn-quant >"$D/tiny.bn"
    local L=$ROOT/tests/data/lookup
    bn-tokenize -m "$D/tiny.bn" "$L/repeat.txt" "$L/rewrite.txt" "$L/chat.txt" "$L/fresh.txt" \
        "$L/repeat.txt" "$L/rewrite.txt" >"$D/all.ids"
    for f in "$L/repeat.txt" "$L/rewrite.txt" "$L/chat.txt" "$L/fresh.txt" "$L/repeat.txt" "$L/rewrite.txt"; do
        bn-tokenize -m "$D/tiny.bn" "$f"
    done >"$D/check.ids"
    cmp "$D/all.ids" "$D/check.ids" # one record each, in order
    $PY "$ROOT/tests/ref/cut_layers.py" "$TINY" 2 "$D/cut2"
    bn-convert "$D/cut2" | bn-quant >"$D/draft2.bn"
}

setup() {
    D=$BATS_FILE_TMPDIR
    T=$BATS_TEST_TMPDIR
}

@test "--parallel --lookup: greedy answers are plain decoding's at 1, 3 and 8 sequences, every kernel set" {
    ran=0
    for k in $(checked_sets auto ref avx2 avx512 amx neon dotprod); do
        bn-infer -m "$D/tiny.bn" --kernel $k -p x -n 1 >/dev/null 2>&1 || continue
        ran=$((ran + 1))
        bn-infer -m "$D/tiny.bn" --kernel $k --temp 0 -n 64 <"$D/all.ids" >"$T/plain"
        [ "$(grep -c . "$T/plain")" -eq 6 ]
        # three shapes on the default set, the widest on the others
        runs=("8 --lookup 4 --draft-max 16")
        [ $k != auto ] || runs+=("1 --lookup 3" "3 --lookup 1 --draft-max 2")
        for p in "${runs[@]}"; do
            # shellcheck disable=SC2086
            bn-infer -m "$D/tiny.bn" --kernel $k --temp 0 -n 64 --parallel $p <"$D/all.ids" >"$T/spec"
            cmp "$T/plain" "$T/spec" || { echo "$k --parallel $p differs"; return 1; }
        done
    done
    enough_sets "$ran"
}

@test "--parallel --lookup: the same with a repeat penalty, a stop string, a full context and a small KV budget" {
    bn-infer -m "$D/tiny.bn" --temp 0 --repeat-penalty 1.2 -n 48 <"$D/all.ids" >"$T/a"
    bn-infer -m "$D/tiny.bn" --temp 0 --repeat-penalty 1.2 -n 48 --parallel 3 --lookup 2 <"$D/all.ids" >"$T/b"
    cmp "$T/a" "$T/b"
    bn-infer -m "$D/tiny.bn" --temp 0 -n 64 --stop "reason" --text <"$D/all.ids" >"$T/a"
    bn-infer -m "$D/tiny.bn" --temp 0 -n 64 --stop "reason" --text --parallel 4 --lookup 3 <"$D/all.ids" >"$T/b"
    cmp "$T/a" "$T/b"
    bn-infer -m "$D/tiny.bn" --temp 0 -n -1 -c 160 <"$D/all.ids" >"$T/a"
    bn-infer -m "$D/tiny.bn" --temp 0 -n -1 -c 160 --parallel 3 --lookup 3 --draft-max 32 <"$D/all.ids" >"$T/b"
    cmp "$T/a" "$T/b"
    # 4 blocks of 64 positions for 6 answers of up to ~170 positions: set back and evaluated again
    bn-infer -m "$D/tiny.bn" --temp 0 -n 64 <"$D/all.ids" >"$T/a"
    bn-infer -m "$D/tiny.bn" --temp 0 -n 64 --parallel 6 --kv-budget 384K --lookup 3 <"$D/all.ids" >"$T/b"
    cmp "$T/a" "$T/b"
}

@test "--parallel --lookup: seeded answers are each record's single-stream --lookup answer with its seed" {
    : >"$T/alone"
    : >"$T/plain"
    for k in 1 2 3 4 5 6; do
        sed -n "${k}p" "$D/all.ids" >"$T/one.ids"
        bn-infer -m "$D/tiny.bn" --seed $((40 + k)) --temp 0.9 -n 48 --lookup 3 <"$T/one.ids" >>"$T/alone"
        bn-infer -m "$D/tiny.bn" --seed $((40 + k)) --temp 0.9 -n 48 <"$T/one.ids" >>"$T/plain"
    done
    for p in 1 3 6; do
        bn-infer -m "$D/tiny.bn" --seed 41 --temp 0.9 -n 48 --parallel $p --lookup 3 <"$D/all.ids" >"$T/par"
        cmp "$T/alone" "$T/par" || { echo "--parallel $p differs"; return 1; }
    done
    # the draws are lookup's, not plain sampling's: the check can tell them apart
    ! cmp -s "$T/alone" "$T/plain" || false
}

@test "--parallel --lookup -v: drafts kept, more than one token a pass, as without --parallel" {
    # unpaced: the batch guesses whenever it finds a guess
    bn-infer -m "$D/tiny.bn" --temp 0 -n 64 --lookup 3 --no-pacing -v <"$D/all.ids" 2>"$T/one" >/dev/null
    bn-infer -m "$D/tiny.bn" --temp 0 -n 64 --lookup 3 -v --parallel 4 <"$D/all.ids" 2>"$T/par" >/dev/null
    re='([0-9]+) tokens drafted, ([0-9]+) accepted.*, ([0-9.]+) tokens a pass'
    [[ $(grep "prompt lookup:" "$T/one") =~ $re ]]
    one="${BASH_REMATCH[1]} ${BASH_REMATCH[2]}"
    [[ $(grep "prompt lookup:" "$T/par") =~ $re ]]
    [ "${BASH_REMATCH[1]} ${BASH_REMATCH[2]}" = "$one" ]
    [ "${BASH_REMATCH[2]}" -gt 0 ]
    awk -v t="${BASH_REMATCH[3]}" 'BEGIN { exit !(t > 1.2) }'
}

@test "--parallel --draft: greedy answers are plain decoding's at 1, 3 and 8 sequences, two kernel sets, a small KV budget" {
    for k in auto avx2 neon; do # the default set and another (the draft passes are kernel-blind)
        bn-infer -m "$D/tiny.bn" --kernel $k -p x -n 1 >/dev/null 2>&1 || continue
        bn-infer -m "$D/tiny.bn" --kernel $k --temp 0 -n 48 <"$D/all.ids" >"$T/plain"
        runs=("3 --draft-max 4")
        [ $k != auto ] || runs+=("1" "8 --draft-max 16")
        for p in "${runs[@]}"; do
            # shellcheck disable=SC2086
            bn-infer -m "$D/tiny.bn" --kernel $k --temp 0 -n 48 --parallel $p --draft "$D/draft2.bn" \
                <"$D/all.ids" >"$T/spec"
            cmp "$T/plain" "$T/spec" || { echo "$k --parallel $p --draft differs"; return 1; }
        done
    done
    bn-infer -m "$D/tiny.bn" --temp 0 -n 48 <"$D/all.ids" >"$T/plain"
    bn-infer -m "$D/tiny.bn" --temp 0 -n 48 --parallel 6 --kv-budget 384K --draft "$D/draft2.bn" <"$D/all.ids" >"$T/spec"
    cmp "$T/plain" "$T/spec"
}

@test "--parallel --draft: seeded answers are each record's single-stream --draft answer with its seed; -v counts" {
    : >"$T/alone"
    for k in 1 2 3 4 5 6; do
        sed -n "${k}p" "$D/all.ids" >"$T/one.ids"
        bn-infer -m "$D/tiny.bn" --seed $((40 + k)) --temp 0.9 -n 32 --draft "$D/draft2.bn" <"$T/one.ids" >>"$T/alone"
    done
    for p in 1 4; do
        bn-infer -m "$D/tiny.bn" --seed 41 --temp 0.9 -n 32 --parallel $p --draft "$D/draft2.bn" -v \
            <"$D/all.ids" >"$T/par" 2>"$T/err"
        cmp "$T/alone" "$T/par" || { echo "--parallel $p differs"; return 1; }
    done
    [[ $(grep "draft model:" "$T/err") =~ ([0-9]+)\ tokens\ drafted,\ ([0-9]+)\ accepted ]]
    [ "${BASH_REMATCH[2]}" -gt 0 ]
}
