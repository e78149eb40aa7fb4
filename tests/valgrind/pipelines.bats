#!/usr/bin/env bats
# The main pipelines under valgrind memcheck (`make valgrind`): every
# program in them runs under `valgrind --error-exitcode=99
# --leak-check=full`, so an invalid read or write, a use of uninitialised
# memory or a leak fails the test with status 99 and valgrind's report on
# stderr. Kept out of `make check` (tests/*.bats only): it takes minutes.

load ../common
# common.bash places the root one level up from the suite; this one is deeper.
ROOT=$BATS_TEST_DIRNAME/../..
TINY=$ROOT/models/tiny-bitnet

VG="valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect"

setup_file() {
    export D=$BATS_FILE_TMPDIR
    command -v valgrind >/dev/null || skip "valgrind is not installed"
}

setup() {
    set -o pipefail # a valgrind error in any stage of a pipeline fails the test
}

# vg PROG ARGS...: the program under valgrind; stderr is kept in $D/vg.err
# for the failure message.
vg() {
    $VG "$BN_BIN/$1" "${@:2}"
}

@test "valgrind: bn-convert HF | bn-quant > tiny.bn" {
    vg bn-convert "$TINY" 2>"$D/c.err" | vg bn-quant -o "$D/tiny.bn" 2>"$D/q.err" || {
        cat "$D/c.err" "$D/q.err"; false; }
    [ -s "$D/tiny.bn" ]
}

@test "valgrind: bn-convert --info --verify" {
    run vg bn-convert --info --verify "$D/tiny.bn"
    echo "$output"
    [ "$status" -eq 0 ]
    run vg bn-convert --info --json "$TINY"
    [ "$status" -eq 0 ]
}

@test "valgrind: bn-pack round trip" {
    vg bn-pack --layout i2s "$D/tiny.bn" -o "$D/tiny-i2s.bn"
    vg bn-pack --layout t2 "$D/tiny-i2s.bn" -o "$D/tiny-t2.bn"
    [ -s "$D/tiny-t2.bn" ]
}

@test "valgrind: bn-tokenize | bn-infer | bn-tokenize -d" {
    echo "It is a truth universally acknowledged" >"$D/p.txt"
    vg bn-tokenize -m "$D/tiny.bn" "$D/p.txt" >"$D/p.ids"
    vg bn-infer -m "$D/tiny.bn" -t 1 --temp 0 -n 8 <"$D/p.ids" >"$D/gen.ids"
    vg bn-tokenize -m "$D/tiny.bn" -d "$D/gen.ids" >"$D/gen.txt"
    [ -s "$D/gen.txt" ]
    # binary streams, and text out of bn-infer directly
    vg bn-tokenize -m "$D/tiny.bn" -b "$D/p.txt" | vg bn-infer -m "$D/tiny.bn" -t 1 --temp 0.8 --seed 1 -n 4 >/dev/null
    vg bn-infer -m "$D/tiny.bn" -t 1 --temp 0 -n 4 -p "Elizabeth" >/dev/null
}

@test "valgrind: bn-infer --parallel (paged KV cache, shared prefixes, stop strings)" {
    # grep -m, not | head: under pipefail a grep cut off by head (SIGPIPE) fails the test
    grep -m 12 . "$ROOT/tests/data/infer/heldout.txt" | cut -c1-150 >"$D/lines.txt"
    # the same first line twice more: its blocks are shared
    (cat "$D/lines.txt"; head -1 "$D/lines.txt"; head -1 "$D/lines.txt") |
        vg bn-tokenize -m "$D/tiny.bn" -l >"$D/many.ids"
    vg bn-infer -m "$D/tiny.bn" -t 2 -c 128 --temp 0.7 --seed 1 -n 70 --stop "." --parallel 4 \
        <"$D/many.ids" >"$D/par.ids"
    [ "$(wc -l <"$D/par.ids")" -eq 14 ]
}

@test "valgrind: bn-infer --perplexity, streamed model" {
    head -c 600 "$ROOT/tests/data/infer/heldout.txt" >"$D/h.txt"
    vg bn-infer -m "$D/tiny.bn" -t 1 --perplexity "$D/h.txt" -c 64 >/dev/null
    vg bn-infer -m - -t 1 --temp 0 -n 2 -p "Mr" <"$D/tiny.bn" >/dev/null
}

@test "valgrind: bn-tokenize Llama 3 ranks, JSON, chat, counts" {
    l3=$ROOT/../shared/data/llama3-tokenizer.model
    [ -r "$l3" ] || skip "no Llama 3 rank file"
    for f in "$ROOT"/tests/data/tok/*; do cat "$f"; done >"$D/all.txt"
    vg bn-tokenize --vocab "$l3" "$D/all.txt" >"$D/l3.ids"
    vg bn-tokenize --vocab "$l3" -d "$D/l3.ids" >"$D/l3.txt"
    cmp "$D/all.txt" "$D/l3.txt"
    vg bn-tokenize --vocab "$l3" -j -l "$ROOT/tests/data/tok/prose.txt" >/dev/null
    printf 'system: be brief\nuser: hello\n' | vg bn-tokenize -m "$D/tiny.bn" --chat >/dev/null
    vg bn-tokenize -m "$TINY" -c -l "$ROOT/tests/data/tok/prose.txt" >/dev/null
}

@test "valgrind: error paths free what they took" {
    head -c 5000 "$D/tiny.bn" >"$D/cut.bn"
    run vg bn-convert --info "$D/cut.bn"
    [ "$status" -eq 1 ]
    run vg bn-quant "$D/cut.bn" -o "$D/never.bn"
    [ "$status" -eq 1 ]
    run vg bn-infer -m "$D/cut.bn" -p x
    [ "$status" -eq 1 ]
    run vg bn-tokenize -m "$D/cut.bn" "$D/p.txt"
    [ "$status" -eq 1 ]
    run vg bn-tokenize -m "$D/tiny.bn" -d <<<"1 2 x"
    [ "$status" -eq 1 ]
    [ ! -e "$D/never.bn" ]
}

# The server under valgrind answers slowly: generous timeouts, short answers.
teardown() { # a server a test started: stopped even when the test failed
    local pid
    pid=$(cat "$D/serve.pid" 2>/dev/null) || return 0
    rm -f "$D/serve.pid"
    kill -KILL "$pid" 2>/dev/null || true
}

@test "valgrind: bn-serve answers a completion, a streamed chat and a bad request, then exits on SIGTERM" {
    command -v curl >/dev/null || skip "curl is not installed"
    $VG "$BN_BIN/bn-serve" -m "$D/tiny.bn" -t 1 -c 64 -np 2 --port 0 </dev/null >/dev/null 2>"$D/serve.err" &
    local pid=$! port="" i st
    echo "$pid" >"$D/serve.pid"
    for i in $(seq 600); do # listening comes before the model: at most 60 s
        port=$(sed -n 's|^bn-serve: listening on http://127.0.0.1:\([0-9]*\)/$|\1|p' "$D/serve.err")
        [ -n "$port" ] && break
        sleep 0.1
    done
    [ -n "$port" ] || { cat "$D/serve.err"; false; }
    for i in $(seq 120); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$port/health")" = 200 ] && break
        sleep 0.5
    done
    url=http://127.0.0.1:$port
    run curl -s --max-time 120 -H 'Content-Type: application/json' \
        -d '{"prompt": "Elizabeth", "max_tokens": 4, "temperature": 0}' "$url/v1/completions"
    [[ $output == *'"object":"text_completion"'* && $output == *'"finish_reason":"'* ]] || { echo "$output"; cat "$D/serve.err"; false; }
    run curl -s -N --max-time 120 -H 'Content-Type: application/json' \
        -d '{"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 4, "stream": true, "seed": 1}' \
        "$url/v1/chat/completions"
    [[ $output == *'data: [DONE]'* ]] || { echo "$output"; cat "$D/serve.err"; false; }
    run curl -s -o /dev/null -w '%{http_code}' --max-time 60 -H 'Content-Type: application/json' \
        -d '{"prompt": ' "$url/v1/completions"
    [ "$output" = 400 ]
    kill -TERM "$pid"
    for i in $(seq 600); do # the in-flight deadline, then valgrind's leak check
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && { echo "bn-serve still runs 60 s after SIGTERM"; cat "$D/serve.err"; false; }
    st=0
    wait "$pid" || st=$?
    rm -f "$D/serve.pid"
    [ "$st" -eq 0 ] || { echo "bn-serve exited $st"; cat "$D/serve.err"; false; }
}
