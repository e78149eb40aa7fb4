#!/usr/bin/env bats
# make install: PREFIX and DESTDIR, every program, man page, the library,
# its header and pkg-config file; a program built against the installed
# library links and runs; examples/generate.c, built with pkg-config alone,
# generates what bn-infer does, examples/batch.c answers prompts
# together as generate.c does one at a time, and examples/score.c scores
# lines together as bn-infer --perplexity scores each alone (two paths of
# the library: the batcher's log probabilities and the perplexity loop),
# and examples/embed.c's vectors are bn-infer --embed's bytes.
# (BN_BUILD: the build folder
# to install from, default build.)

load common

# Installs into $BATS_TEST_TMPDIR/root (PREFIX /usr, sets d and T) and
# builds the examples' own Makefile's targets (none: all) in a copy of the
# folder, with pkg-config alone, as a user of the installed libbn would.
build_examples() {
    d=$BATS_TEST_TMPDIR/root
    T=$BATS_TEST_TMPDIR
    make -s -C "$ROOT" install DESTDIR="$d" PREFIX=/usr ${BN_BUILD:+BUILD=$BN_BUILD} >/dev/null
    mkdir "$T/ex"
    cp "$ROOT/examples/Makefile" "$ROOT"/examples/*.c "$T/ex/"
    export PKG_CONFIG_PATH="$d/usr/lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$d"
    make -s -C "$T/ex" "$@" CC="${BN_USER_CC:-cc}" CFLAGS="-std=c11 -Wall -Wextra -Werror" \
        LDFLAGS="${BN_USER_LDFLAGS:-}" >/dev/null
}

@test "make install honours PREFIX and DESTDIR" {
    d=$BATS_TEST_TMPDIR/root
    make -s -C "$ROOT" install DESTDIR="$d" PREFIX=/opt/bn ${BN_BUILD:+BUILD=$BN_BUILD} >/dev/null
    for p in bn-convert bn-quant bn-pack bn-tokenize bn-infer bn-bench bn-serve; do
        [ -x "$d/opt/bn/bin/$p" ]
        [ -f "$d/opt/bn/share/man/man1/$p.1" ]
    done
    [ -f "$d/opt/bn/share/man/man5/bn-model.5" ]
    [ -f "$d/opt/bn/lib/libbn.a" ]
    [ -f "$d/opt/bn/lib/libbn.so" ]
    # every name the static library defines for other objects is bn_'s, so
    # none clashes with an embedder's own (a sanitizer's __ names aside)
    nm -g --defined-only "$d/opt/bn/lib/libbn.a" | awk 'NF == 3 && $2 ~ /^[A-Z]$/ { print $3 }' >"$BATS_TEST_TMPDIR/syms"
    [ "$(grep -c '^bn_' "$BATS_TEST_TMPDIR/syms")" -gt 50 ]
    run grep -v -e '^bn_' -e '^__' "$BATS_TEST_TMPDIR/syms"
    [ -z "$output" ]
    [ -f "$d/opt/bn/include/bn.h" ]
    grep -q '^prefix=/opt/bn$' "$d/opt/bn/lib/pkgconfig/bn.pc"
    # a user program against the installed header and library
    cat > "$BATS_TEST_TMPDIR/u.c" <<'C'
#include <bn.h>
#include <stdio.h>
int main(void) { bn_err e = {0}; printf("%s %zu\n", BN_VERSION, sizeof e.msg); return 0; }
C
    # (a sanitized build's library needs its compiler and runtime: `make
    # sanitize` names them in BN_USER_CC and BN_USER_LDFLAGS)
    ${BN_USER_CC:-cc} -I"$d/opt/bn/include" "$BATS_TEST_TMPDIR/u.c" -o "$BATS_TEST_TMPDIR/u" "$d/opt/bn/lib/libbn.a" \
        -lxxhash -lz -lpcre2-8 -lcjson -lpthread -lm ${BN_USER_LDFLAGS:-}
    run "$BATS_TEST_TMPDIR/u"
    [ "$status" -eq 0 ]
    [[ $output == *" 1024" ]]
    "$d/opt/bn/bin/bn-convert" --version
    # C++: the header compiles as C++ and declares C linkage (unmangled names)
    printf '#include <bn.h>\nint main() { bn_err e = {}; return bn_version_number() < 0 || !sizeof e.msg; }\n' \
        > "$BATS_TEST_TMPDIR/u.cpp"
    ${BN_USER_CXX:-c++} -std=c++11 -Wall -Wextra -Werror -pedantic -I"$d/opt/bn/include" -c "$BATS_TEST_TMPDIR/u.cpp" \
        -o "$BATS_TEST_TMPDIR/u.o"
    nm -u "$BATS_TEST_TMPDIR/u.o" | grep -Eq ' U bn_version_number$'
    # another LIBDIR and INCDIR (lib64, multiarch): the pkg-config file names them
    d2=$BATS_TEST_TMPDIR/root2
    make -s -C "$ROOT" install DESTDIR="$d2" PREFIX=/opt/bn LIBDIR=/opt/bn/lib64 INCDIR=/opt/bn/include/bn \
        ${BN_BUILD:+BUILD=$BN_BUILD} >/dev/null
    [ -f "$d2/opt/bn/lib64/libbn.so" ]
    [ -f "$d2/opt/bn/include/bn/bn.h" ]
    PKG_CONFIG_PATH="$d2/opt/bn/lib64/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$d2" pkg-config --libs --cflags bn \
        > "$BATS_TEST_TMPDIR/pc"
    [ "$(echo $(cat "$BATS_TEST_TMPDIR/pc"))" = "-I$d2/opt/bn/include/bn -L$d2/opt/bn/lib64 -lbn" ]
    # make uninstall, with the same variables, removes every file install put there
    make -s -C "$ROOT" uninstall DESTDIR="$d2" PREFIX=/opt/bn LIBDIR=/opt/bn/lib64 INCDIR=/opt/bn/include/bn \
        ${BN_BUILD:+BUILD=$BN_BUILD} >/dev/null
    [ -z "$(find "$d2" ! -type d)" ]
}

@test "examples/generate.c, built against the installed libbn with pkg-config, generates what bn-infer does" {
    d=$BATS_TEST_TMPDIR/root
    T=$BATS_TEST_TMPDIR
    make -s -C "$ROOT" install DESTDIR="$d" PREFIX=/usr ${BN_BUILD:+BUILD=$BN_BUILD} >/dev/null
    # the shared library: real file (named for bn.h's version), soname link, link-editor link
    v=$(sed -n 's/^#define BN_VERSION "\(.*\)"/\1/p' "$ROOT/lib/bn.h")
    [[ $v == 0.* ]]
    [ -f "$d/usr/lib/libbn.so.$v" ]
    [ -L "$d/usr/lib/libbn.so.0" ]
    [ -L "$d/usr/lib/libbn.so" ]
    [ "$(readlink "$d/usr/lib/libbn.so.0")" = "libbn.so.$v" ]
    readelf -d "$d/usr/lib/libbn.so.$v" | grep -q 'SONAME.*\[libbn\.so\.0\]'
    [ -f "$d/usr/share/man/man3/libbn.3" ]
    # nothing but the header and pkg-config: no -I or -L of the source tree
    export PKG_CONFIG_PATH="$d/usr/lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$d"
    cflags=$(echo $(pkg-config --cflags bn))
    libs=$(echo $(pkg-config --libs bn))
    [[ $cflags == "-I$d/usr/include" ]]
    [[ $libs == "-L$d/usr/lib -lbn" ]]
    ${BN_USER_CC:-cc} -std=c11 -Wall -Wextra -Werror $cflags "$ROOT/examples/generate.c" -o "$T/generate" \
        $libs ${BN_USER_LDFLAGS:-}
    readelf -d "$T/generate" | grep -q 'NEEDED.*\[libbn\.so\.0\]'
    bn-convert "$TINY" | bn-quant >"$T/tiny.bn"
    export LD_LIBRARY_PATH="$d/usr/lib"
    prompt="It was a fine morning, and Elizabeth"
    "$T/generate" "$T/tiny.bn" "$prompt" 32 >"$T/api.txt"
    grep -q '[a-z]' "$T/api.txt"
    # greedy: the same tokens as bn-infer's own loop, and so the same text
    "$T/generate" -i "$T/tiny.bn" "$prompt" 32 >"$T/api.ids"
    bn-infer -m "$T/tiny.bn" -p "$prompt" -n 32 --temp 0 --ids >"$T/infer.ids"
    [ "$(wc -w <"$T/api.ids")" -ge 8 ]
    [ "$(echo $(cat "$T/api.ids"))" = "$(echo $(cat "$T/infer.ids"))" ]
    bn-infer -m "$T/tiny.bn" -p "$prompt" -n 32 --temp 0 >"$T/infer.txt"
    cmp "$T/api.txt" "$T/infer.txt"
    # prompt lookup (bn_generate_params.lookup): the same text, guesses counted
    "$T/generate" -l 3 "$T/tiny.bn" "$prompt" 32 >"$T/lookup.txt" 2>"$T/lookup.err"
    cmp "$T/lookup.txt" "$T/infer.txt"
    grep -Eq '^generate: [0-9]+ guesses, [0-9]+ kept; [0-9]+ tokens in [0-9]+ passes$' "$T/lookup.err"
    # errors come as a message and a status
    run "$T/generate" "$T/missing.bn" "$prompt"
    [ "$status" -eq 1 ]
    [[ $output == "generate: $T/missing.bn: No such file or directory (BN_E_IO: "* ]]
}

@test "examples/batch.c, built by examples/Makefile against the installed libbn, answers prompts together as generate.c does one at a time" {
    build_examples # all of them
    [ -x "$T/ex/batch" ]
    [ -x "$T/ex/generate" ]
    readelf -d "$T/ex/batch" | grep -q 'NEEDED.*\[libbn\.so\.0\]'
    bn-convert "$TINY" | bn-quant >"$T/tiny.bn"
    export LD_LIBRARY_PATH="$d/usr/lib"
    # ten prompts (more than batch.c runs at once: some wait for a free
    # sequence), two sharing an opening, one repeated
    prompts=("It was a fine morning, and Elizabeth" "Mr. Darcy said" "The letter"
        "It was a fine morning, and Jane" "She" "Her mother had" "It was a fine morning, and Elizabeth"
        "Nothing could be" "A long walk" "When the ball was over")
    "$T/ex/batch" "$T/tiny.bn" 24 "${prompts[@]}" >"$T/batch.txt"
    "$T/ex/batch" -i "$T/tiny.bn" 24 "${prompts[@]}" >"$T/batch.ids"
    : >"$T/alone.txt"
    : >"$T/alone.ids"
    for p in "${prompts[@]}"; do
        "$T/ex/generate" "$T/tiny.bn" "$p" 24 >>"$T/alone.txt"
        "$T/ex/generate" -i "$T/tiny.bn" "$p" 24 >>"$T/alone.ids"
    done
    [ "$(wc -l <"$T/batch.ids")" -eq 10 ]
    [ "$(wc -w <"$T/batch.ids")" -ge 80 ]
    grep -q '[a-z]' "$T/batch.txt"
    # greedy: the same tokens, so the same text, byte for byte
    cmp "$T/batch.ids" "$T/alone.ids"
    cmp "$T/batch.txt" "$T/alone.txt"
    # errors come as a message and a status
    run "$T/ex/batch" "$T/missing.bn" 4 "She"
    [ "$status" -eq 1 ]
    [[ $output == "batch: $T/missing.bn: No such file or directory (BN_E_IO: "* ]]
    run "$T/ex/batch" "$T/tiny.bn" 4
    [ "$status" -eq 2 ]
}

@test "examples/score.c, built by examples/Makefile against the installed libbn, scores lines together as bn-infer --perplexity scores each alone" {
    build_examples score
    bn-convert "$TINY" | bn-quant >"$T/tiny.bn"
    export LD_LIBRARY_PATH="$d/usr/lib"
    # twelve lines (more than score.c runs at once), one empty, two the same
    printf '%s\n' "It was a fine morning, and Elizabeth walked to town." "Mr. Darcy said nothing." "" \
        "The letter was short." "She laughed." "Her mother had five daughters." "Mr. Darcy said nothing." \
        "Nothing could be more delightful than a ball." "A long walk" "When the ball was over, they went home." \
        "Jane smiled." "x" >"$T/lines.txt"
    "$T/ex/score" "$T/tiny.bn" "$T/lines.txt" >"$T/scores"
    [ "$(wc -l <"$T/scores")" -eq 12 ]
    [ "$(sed -n 3p "$T/scores")" = "$(printf '0\t0\t-')" ]
    [ "$(sed -n 2p "$T/scores")" = "$(sed -n 7p "$T/scores")" ]
    # each line's perplexity and token count are bn-infer's for that line alone
    n=0
    while IFS= read -r line; do
        n=$((n + 1))
        [ -n "$line" ] || continue
        printf '%s' "$line" >"$T/one.txt"
        bn-infer -m "$T/tiny.bn" --perplexity "$T/one.txt" --json >"$T/one.json"
        got=$(sed -n "${n}p" "$T/scores")
        awk -v got="$got" '{
            split(got, g, "\t")
            match($0, /"ppl": [0-9.e+-]+/); ppl = substr($0, RSTART + 7, RLENGTH - 7) + 0
            match($0, /"scored": [0-9]+/); scored = substr($0, RSTART + 10, RLENGTH - 10) + 0
            d = g[3] / ppl - 1
            if (d < 0) d = -d
            if (g[2] != scored || d > 1e-4 || scored < 1) { print "line " NR ": " got " against " $0; exit 1 }
        }' "$T/one.json"
    done <"$T/lines.txt"
    # -w: one line per token scored, their log probabilities adding up to the sum; standard input
    "$T/ex/score" -w "$T/tiny.bn" - <"$T/lines.txt" >"$T/words"
    [ "$(grep -vc $'^\t' "$T/words")" -eq 12 ]
    awk -F'\t' '/^\t/ { s += $3; k++; next } { if (NR > 1 && (k != n || (s - sum)^2 > 1e-6)) exit 1; sum = $1; n = $2; s = 0; k = 0 }
        END { exit !(k == n && (s - sum)^2 < 1e-6) }' "$T/words"
    # a line longer than the model's context: a message naming it and a status
    awk 'BEGIN { for (i = 0; i < 400; i++) printf "word%d ", i; print "" }' >"$T/long.txt"
    run "$T/ex/score" "$T/tiny.bn" "$T/long.txt"
    [ "$status" -eq 1 ]
    [[ $output == "score: line 1: bn_batcher_submit: a prompt of "*" tokens does not fit the context of 256 tokens (BN_E_CONTEXT_FULL: "* ]]
    run "$T/ex/score" "$T/tiny.bn" "$T/missing.txt"
    [ "$status" -eq 1 ]
    [[ $output == "score: $T/missing.txt: "* ]]
}

@test "examples/embed.c, built by examples/Makefile against the installed libbn, gives bn-infer --embed's vectors byte for byte; -q ranks lines by cosine" {
    build_examples embed
    $GEN --format hf-bf16 --family bitnet-embedding-0.6b "$T/e" >/dev/null
    bn-convert "$T/e" | bn-quant | bn-pack >"$T/e.bn"
    export LD_LIBRARY_PATH="$d/usr/lib"
    # eleven lines (more than embed.c runs in one pass), one empty, two the same, Unicode
    printf '%s\n' "hello world" "a" "" "ünïcödé ✓ 日本語" "the quick brown fox" "hello world" \
        "ternary weights, 1.58 bits" "x" "Instruct: find it"$'\t'"Query: what is a ternary weight?" "dog" "lazy" >"$T/lines.txt"
    "$T/ex/embed" "$T/e.bn" "$T/lines.txt" >"$T/v.txt"
    bn-infer -m "$T/e.bn" --embed -f "$T/lines.txt" >"$T/infer.txt"
    [ "$(wc -l <"$T/v.txt")" -eq 11 ]
    cmp "$T/v.txt" "$T/infer.txt"
    "$T/ex/embed" "$T/e.bn" - <"$T/lines.txt" | cmp - "$T/v.txt"
    # -q: each line's dot product with the query's vector (from bn-infer's, in numpy)
    "$T/ex/embed" -q "the quick brown fox" "$T/e.bn" "$T/lines.txt" >"$T/q.txt"
    bn-infer -m "$T/e.bn" --embed -p "the quick brown fox" >"$T/query.txt"
    run $PY - "$T/q.txt" "$T/infer.txt" "$T/query.txt" "$T/lines.txt" <<'EOF'
import sys
import numpy as np
got = [l.rstrip("\n").split("\t", 1) for l in open(sys.argv[1], encoding="utf-8")]
v = np.array([[float(x) for x in l.split()] for l in open(sys.argv[2])], dtype=np.float64)
q = np.array([float(x) for x in open(sys.argv[3]).read().split()], dtype=np.float64)
lines = [l.rstrip("\n") for l in open(sys.argv[4], encoding="utf-8")]
ok = len(got) == len(lines) and [g[1] if len(g) > 1 else "" for g in got] == lines
ok = ok and all(abs(float(g[0]) - float(v[i] @ q)) < 2e-6 for i, g in enumerate(got))
ok = ok and float(got[4][0]) > 0.999999 and max(range(len(got)), key=lambda i: float(got[i][0])) == 4
print(ok, got[4][0])
sys.exit(0 if ok else 1)
EOF
    echo "$output"
    [ "$status" -eq 0 ]
    # a language model, a line longer than the context, a missing file: a message and a status
    bn-convert "$TINY" | bn-quant >"$T/tiny.bn"
    run "$T/ex/embed" "$T/tiny.bn" "$T/lines.txt"
    [ "$status" -eq 1 ]
    [ "$output" = "embed: $T/tiny.bn: not an embedding model" ]
    awk 'BEGIN { for (i = 0; i < 1200; i++) printf "w%d ", i; print "" }' >"$T/long.txt"
    run "$T/ex/embed" "$T/e.bn" "$T/long.txt"
    [ "$status" -eq 1 ]
    [[ $output == "embed: bn_embed: input 0: "*" tokens (the end token included), the context holds "*" (BN_E_CONTEXT_FULL: "* ]]
    run "$T/ex/embed" "$T/e.bn" "$T/missing.txt"
    [ "$status" -eq 1 ]
    [[ $output == "embed: $T/missing.txt: "* ]]
}
