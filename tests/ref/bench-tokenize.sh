#!/bin/sh
# bench-tokenize.sh — encode throughput of bn-tokenize next to js-tiktoken
# (the reference), single thread, same text, same Llama 3 ranks. Not a unit
# test: it prints MB/s for both and the ratio.
#
#   tests/ref/bench-tokenize.sh [TEXT_FILE]
#
# Without TEXT_FILE it builds two >5 MB texts: "prose+code" (the project's
# own docs, sources and test corpus, repeated) and "mixed" (gen-corpus.js:
# many scripts, emoji, digits, whitespace runs). bn's time is the best of
# three runs of `bn-tokenize -c` less the start-up (loading the 128k-token
# rank file), measured on empty input; js-tiktoken's is measured inside node
# around encode() alone.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${BN_BIN:-$root/build/bin}
ranks=${BN_RANKS:-$root/../shared/data/llama3-tokenizer.model}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

[ -x "$bin/bn-tokenize" ] || { echo "bench: build first (make)" >&2; exit 1; }
[ -f "$ranks" ] || { echo "bench: no rank file at $ranks (set BN_RANKS)" >&2; exit 1; }
[ -d "$here/node_modules/js-tiktoken" ] || { echo "bench: run 'npm ci' in $here first" >&2; exit 1; }

now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }

# best-of-3 wall time of a command, in seconds
best3() {
    best=""
    for _ in 1 2 3; do
        t0=$(now); "$@" >/dev/null; t1=$(now)
        t=$(calc "$t1 - $t0")
        if [ -z "$best" ] || [ "$(calc "$t < $best")" = 1.000000 ]; then best=$t; fi
    done
    echo "$best"
}

bench() { # name file
    size=$(wc -c <"$2")
    start=$(best3 "$bin/bn-tokenize" --vocab "$ranks" -c /dev/null)
    total=$(best3 "$bin/bn-tokenize" --vocab "$ranks" -c "$2")
    secs=$(calc "$total - $start")
    bn=$(calc "$size / 1000000 / $secs")
    js_line=$(node "$here/tok-ref.js" --bench --ranks "$ranks" "$2")
    js=$(echo "$js_line" | sed -n 's/.* \([0-9.]*\) MB\/s$/\1/p')
    printf '%-11s %9d bytes  bn-tokenize %7.2f MB/s  js-tiktoken %6.2f MB/s  ratio %5.1fx\n' \
        "$1" "$size" "$bn" "$js" "$(calc "$bn / $js")"
}

if [ $# -ge 1 ]; then
    bench "$(basename "$1")" "$1"
    exit 0
fi

: >"$tmp/prose.txt"
while [ "$(wc -c <"$tmp/prose.txt")" -lt 5500000 ]; do
    cat "$root"/tests/data/tok/prose.txt "$root"/tests/data/tok/code.txt "$root"/formats/*.md \
        "$root"/lib/*.c "$root"/lib/*.h >>"$tmp/prose.txt"
    [ -d "$root/../shared/docs" ] && cat "$root"/../shared/docs/*.md >>"$tmp/prose.txt"
done
node "$here/gen-corpus.js" 7 5500000 >"$tmp/mixed.txt"
bench prose+code "$tmp/prose.txt"
bench mixed "$tmp/mixed.txt"
