#!/usr/bin/env bats
# bn-tokenize: exact ids against an independent reference (js-tiktoken from
# npm, tests/ref/tok-ref.js) over a broad corpus, byte-exact round trips,
# streaming, the token stream formats, errors, and the manual's examples.

load common

LLAMA3=$ROOT/../shared/data/llama3-tokenizer.model
CORPUS=$ROOT/tests/data/tok
REF=$ROOT/tests/ref

setup_file() {
    # Documents over 100 KB, made fresh each run: the corpus repeated, and
    # seeded pseudo-random text (valid UTF-8, and with invalid bytes).
    local d=$BATS_FILE_TMPDIR
    : >"$d/big-corpus.txt"
    for _ in $(seq 150); do cat "$CORPUS"/*.txt >>"$d/big-corpus.txt"; done
    if command -v node >/dev/null; then
        node "$REF/gen-corpus.js" 11 160000 >"$d/big-random.txt"
        node "$REF/gen-corpus.js" 12 160000 --invalid >"$d/big-invalid.bin"
    fi
}

setup() {
    T=$BATS_TEST_TMPDIR
    D=$BATS_FILE_TMPDIR
}

need_llama3() {
    [ -f "$LLAMA3" ] || skip "no Llama 3 rank file at $LLAMA3 (shared/data)"
}

need_ref() {
    command -v node >/dev/null || skip "node is not installed: the js-tiktoken reference cannot run (apt-get install nodejs npm)"
    [ -d "$REF/node_modules/js-tiktoken" ] ||
        skip "js-tiktoken is not installed: run 'npm ci' in tests/ref (tools/install-deps.sh does)"
}

corpus_files() {
    local f
    for f in "$CORPUS"/* "$D"/big-*; do [ -f "$f" ] && printf '%s\n' "$f"; done
}

# The round trips' files: under the sanitizers (six programs started per
# file, each slow there) the big ones, which hold every .txt of the corpus,
# and the binary ones; every file in the normal pass.
round_trip_files() {
    if [ -n "${BN_SANITIZED:-}" ]; then
        corpus_files | grep -v "^$CORPUS/.*\.txt\$"
    else
        corpus_files
    fi
}

# compare_ids BN_ARGS -- REF_ARGS: both encode every corpus file; the
# outputs (one record per file) must be identical.
compare_ids() {
    local bn_args=() ref_args=()
    while [ "$1" != "--" ]; do bn_args+=("$1"); shift; done
    shift
    ref_args=("$@")
    mapfile -t files < <(corpus_files)
    [ "${#files[@]}" -ge 18 ]
    node "$REF/tok-ref.js" "${ref_args[@]}" "${files[@]}" >"$T/ref.txt"
    bn-tokenize "${bn_args[@]}" "${files[@]}" >"$T/bn.txt"
    [ "$(wc -l <"$T/ref.txt")" -eq "${#files[@]}" ]
    if ! cmp -s "$T/ref.txt" "$T/bn.txt"; then
        paste -d '\n' <(printf '%s\n' "${files[@]}") "$T/ref.txt" "$T/bn.txt" |
            awk 'NR % 3 == 1 { f = $0 } NR % 3 == 2 { r = $0 } NR % 3 == 0 && $0 != r { print "differs: " f }'
        return 1
    fi
}

@test "help, version and usage errors" {
    run bn-tokenize --help
    [ "$status" -eq 0 ]
    [[ $output == *"usage: bn-tokenize"* ]]
    [[ $output == *"--special"* ]]
    run bn-tokenize --version
    [ "$status" -eq 0 ]
    [[ $output == "bn-tokenize (bn) "* ]]
    run bn-tokenize
    [ "$status" -eq 2 ]
    [[ $output == *"no tokenizer given"* ]]
    run bn-tokenize --vocab x --tokenizer-json y
    [ "$status" -eq 2 ]
    run bn-tokenize --vocab x --bogus
    [ "$status" -eq 2 ]
    [[ $output == *"unknown option '--bogus'"* ]]
    run bn-tokenize --vocab x -d -c
    [ "$status" -eq 2 ]
    run bn-tokenize --vocab x --chat -l
    [ "$status" -eq 2 ]
    # the chat format decides BOS, and message text is never special: these were ignored
    for o in --no-bos --bos -s; do
        run bn-tokenize --vocab x --chat $o
        [ "$status" -eq 2 ]
        [[ $output == *"--chat renders the model's chat format"* ]]
    done
    run bn-tokenize --vocab x -b -j
    [ "$status" -eq 2 ]
    run bn-tokenize --vocab x --skip-special
    [ "$status" -eq 2 ]
    run bn-tokenize --vocab
    [ "$status" -eq 2 ]
    # -f lets the binary stream go to a terminal; without -b (with -d, say) it would do nothing
    for o in -d -c ""; do
        run bn-tokenize --vocab x -f $o
        [ "$status" -eq 2 ]
        [[ $output == *"-f writes the binary stream to a terminal: it goes with -b"* ]]
    done
}

@test "Llama 3: ids equal js-tiktoken's on the whole corpus, special text as text" {
    need_llama3
    need_ref
    compare_ids --vocab "$LLAMA3" -- --ranks "$LLAMA3"
}

@test "Llama 3: ids equal js-tiktoken's on the whole corpus with --special" {
    need_llama3
    need_ref
    compare_ids --vocab "$LLAMA3" --special -- --ranks "$LLAMA3" --special
    # the specials corpus file really produced special ids
    run bn-tokenize --vocab "$LLAMA3" -s "$CORPUS/specials.txt"
    [[ " $output " == *" 128009 "* && " $output " == *" 128255 "* ]]
}

@test "tiny model: tokenizer.json path equals js-tiktoken with its tokenizer.model ranks" {
    need_ref
    compare_ids --tokenizer-json "$TINY/tokenizer.json" --no-bos -- --ranks "$TINY/tokenizer.model" --specials 32
    compare_ids -m "$TINY" --no-bos -s -- --ranks "$TINY/tokenizer.model" --specials 32 --special
    # and the model adds BOS by itself, as its post-processor says
    compare_ids -m "$TINY" -- --ranks "$TINY/tokenizer.model" --specials 32 --bos 4064
}

@test "-d -l --escape: one line a record, whatever its text holds; printf '%b' gives the text back" {
    printf 'first line\r\nsecond \\ line\n\nafter a blank\n' >"$T/a.txt"
    printf 'plain\n' >"$T/b.txt"
    bn-tokenize -m "$TINY" --no-bos "$T/a.txt" "$T/b.txt" | bn-tokenize -m "$TINY" -d -l --escape >"$T/out"
    [ "$(wc -l <"$T/out")" -eq 2 ]
    [ "$(sed -n 1p "$T/out")" = 'first line\r\nsecond \\ line\n\nafter a blank\n' ]
    printf '%b' "$(sed -n 1p "$T/out")" >"$T/back"
    cmp "$T/a.txt" "$T/back"
    run bn-tokenize -m "$TINY" --escape "$T/a.txt"
    [ "$status" -eq 2 ]
    [[ $output == *"--escape goes with -d"* ]]
}

@test "decode(encode(x)) == x byte for byte, text and binary streams" {
    need_llama3
    local f src
    for src in "--vocab $LLAMA3" "-m $TINY"; do
        while read -r f; do
            # shellcheck disable=SC2086
            bn-tokenize $src -s "$f" | bn-tokenize $src -d --skip-special >"$T/rt" 2>"$T/err" || { cat "$T/err"; false; }
            # shellcheck disable=SC2086
            bn-tokenize $src --no-bos "$f" | bn-tokenize $src -d >"$T/rt" || false
            cmp "$f" "$T/rt" || { echo "text round trip failed: $src $f"; false; }
            # shellcheck disable=SC2086
            bn-tokenize $src --no-bos -b "$f" | bn-tokenize $src -d >"$T/rt"
            cmp "$f" "$T/rt" || { echo "binary round trip failed: $src $f"; false; }
        done < <(round_trip_files)
    done
}

@test "empty input, a single space, NUL bytes" {
    need_llama3
    run bn-tokenize --vocab "$LLAMA3" </dev/null
    [ "$status" -eq 0 ]
    [ "$output" = "" ]
    [ "$(bn-tokenize --vocab "$LLAMA3" </dev/null | od -An -c | tr -d ' ')" = '\n' ] # one empty record
    [ "$(bn-tokenize --vocab "$LLAMA3" -l </dev/null | wc -c)" -eq 0 ]               # no lines, no records
    [ "$(bn-tokenize --vocab "$LLAMA3" -c </dev/null)" = 0 ]
    [ "$(printf ' ' | bn-tokenize --vocab "$LLAMA3")" = 220 ]
    [ "$(printf 'a\0b' | bn-tokenize --vocab "$LLAMA3")" = "64 188 65" ] # NUL is rank 188
    printf 'a\0b\0\0' | bn-tokenize --vocab "$LLAMA3" | bn-tokenize --vocab "$LLAMA3" -d | od -An -c >"$T/o"
    grep -q 'a  \\0   b  \\0  \\0' "$T/o"
}

@test "-l: one record per line, streamed; -c counts; BOS and EOS flags" {
    need_llama3
    printf 'Hello\n\nworld\nlast' | bn-tokenize --vocab "$LLAMA3" -l >"$T/out"
    printf '9906\n\n14957\n4354\n' | cmp - "$T/out"
    [ "$(printf 'Hello\nworld\n' | bn-tokenize --vocab "$LLAMA3" -l -c --bos --eos | tr '\n' ' ')" = "3 3 " ]
    [ "$(printf 'Hello' | bn-tokenize --vocab "$LLAMA3" --bos --eos)" = "128000 9906 128001" ]
    [ "$(printf 'Hello' | bn-tokenize -m "$TINY" --no-bos)" = "$(printf 'Hello' | bn-tokenize -m "$TINY" | cut -d' ' -f2-)" ]
    # decode -l puts a LF after each record
    [ "$(printf '9906\n14957\n' | bn-tokenize --vocab "$LLAMA3" -d -l | od -An -c | tr -d ' \n')" = 'Hello\nworld\n' ]
    # a record appears before the input ends
    mkfifo "$T/in"
    bn-tokenize --vocab "$LLAMA3" -l <"$T/in" >"$T/out" &
    exec 7>"$T/in"
    printf 'Hello\n' >&7
    for _ in $(seq 50); do [ -s "$T/out" ] && break; sleep 0.1; done
    [ "$(cat "$T/out")" = 9906 ]
    exec 7>&-
    wait
}

@test "decoding streams: text appears as ids arrive, a character is never split" {
    need_llama3
    # U+1F600 is two tokens in Llama 3; the first alone is half a character
    read -r -a emo < <(printf '\360\237\230\200' | bn-tokenize --vocab "$LLAMA3")
    [ "${#emo[@]}" -eq 2 ]
    mkfifo "$T/in"
    bn-tokenize --vocab "$LLAMA3" -d <"$T/in" >"$T/out" &
    exec 7>"$T/in"
    printf '9906 11 ' >&7 # "Hello," (each id ended by a space, as a streaming writer does)
    for _ in $(seq 50); do [ -s "$T/out" ] && break; sleep 0.1; done
    [ "$(cat "$T/out")" = "Hello," ]
    printf '%s ' "${emo[0]}" >&7
    sleep 0.3
    [ "$(cat "$T/out")" = "Hello," ] # held back: not a whole character yet
    printf '%s\n' "${emo[1]}" >&7
    for _ in $(seq 50); do [ "$(wc -c <"$T/out")" -eq 10 ] && break; sleep 0.1; done
    [ "$(cat "$T/out")" = "Hello,$(printf '\360\237\230\200')" ]
    exec 7>&-
    wait
}

@test "decode errors: an id out of range names it and its place; malformed streams" {
    need_llama3
    printf '1 2\n9906 128256 5\n' >"$T/range.txt"
    run_split "$T/o" bn-tokenize --vocab "$LLAMA3" -d "$T/range.txt"
    expect_one_line_error "$status" "$err" bn-tokenize
    [[ $err == "bn-tokenize: $T/range.txt: record 2, token 2: token id 128256 is out of range (the vocabulary has ids 0..128255)" ]]
    printf '1 2\n3 x\n' >"$T/bad.txt"
    run_split "$T/o" bn-tokenize --vocab "$LLAMA3" -d "$T/bad.txt"
    expect_one_line_error "$status" "$err" bn-tokenize
    [[ $err == *"line 2, column 3: 'x' where a token id was expected" ]]
    printf 'BNTOKEN\0\1\0\0\0 \0\0\0' >"$T/trunc.bin"
    run_split "$T/o" bn-tokenize --vocab "$LLAMA3" -d "$T/trunc.bin"
    expect_one_line_error "$status" "$err" bn-tokenize
    [[ $err == *"trunc.bin: binary token stream cut short in its header (16 of 32 bytes)" ]]
    printf 'BNTOKEX\0\1\0\0\0 \0\0\0' >"$T/magic.bin"
    run_split "$T/o" bn-tokenize --vocab "$LLAMA3" -d "$T/magic.bin"
    expect_one_line_error "$status" "$err" bn-tokenize
    [[ $err == *"magic.bin: not a token stream (bad binary magic)" ]]
    printf 'Hi' | bn-tokenize --vocab "$LLAMA3" -b | head -c 38 >"$T/cut.bin"
    run_split "$T/o" bn-tokenize --vocab "$LLAMA3" -d "$T/cut.bin"
    expect_one_line_error "$status" "$err" bn-tokenize
    [[ $err == *"record 1 is truncated"* ]]
    run_split "$T/o" bn-tokenize --vocab "$T/missing.model" -d
    expect_one_line_error "$status" "$err" bn-tokenize
    [[ $err == *"missing.model: No such file or directory" ]]
}

@test "binary streams name their tokenizer; another model refuses them" {
    need_llama3
    printf 'Emma' | bn-tokenize -m "$TINY" -b -o "$T/ids.bin"
    [ "$(head -c 7 "$T/ids.bin")" = BNTOKEN ]
    hash=$(bn-tokenize -m "$TINY" --info | sed -n 's/^hash: //p')
    [ "$(od -An -tx1 -j16 -N8 "$T/ids.bin" | tr -d ' \n')" = "$(echo "$hash" | sed 's/../& /g' | awk '{for (i = 8; i >= 1; i--) printf "%s", $i}')" ]
    [ "$(bn-tokenize -m "$TINY" -d --skip-special "$T/ids.bin")" = Emma ]
    run_split "$T/o" bn-tokenize --vocab "$LLAMA3" -d "$T/ids.bin"
    expect_one_line_error "$status" "$err" bn-tokenize
    [[ $err == *"made by tokenizer $hash, not this model's"* ]]
}

@test "-m model.bn gives the same tokenizer as the checkpoint it came from" {
    bn-convert "$TINY" -o "$T/tiny.bn"
    [ "$(bn-tokenize -m "$T/tiny.bn" --info)" = "$(bn-tokenize -m "$TINY" --info)" ]
    bn-tokenize -m "$T/tiny.bn" -l "$CORPUS/prose.txt" >"$T/a"
    bn-tokenize -m "$TINY" -l "$CORPUS/prose.txt" >"$T/b"
    cmp "$T/a" "$T/b"
    printf 'x' | bn-tokenize -m "$TINY" -b | bn-tokenize -m "$T/tiny.bn" -d --skip-special >"$T/x"
    [ "$(cat "$T/x")" = x ]
    # the tokenizer from standard input (a model streamed in a pipe, a tokenizer.json) with the text from a file
    [ "$(bn-tokenize -m - -l "$CORPUS/prose.txt" <"$T/tiny.bn")" = "$(cat "$T/a")" ]
    [ "$(bn-tokenize --tokenizer-json - -l "$CORPUS/prose.txt" <"$TINY/tokenizer.json")" = "$(cat "$T/a")" ]
    [ "$(bn-tokenize -m - --info <"$T/tiny.bn")" = "$(bn-tokenize -m "$TINY" --info)" ]
    # a tokenizer.json from standard input has no neighbours: not the current directory's config
    # (EOS) and tokenizer_config (chat format), as a named one in that directory has
    (cd "$TINY" && bn-tokenize --tokenizer-json tokenizer.json --info) | grep -q '^chat_format: bitnet$'
    (cd "$TINY" && bn-tokenize --tokenizer-json - --info <tokenizer.json) >"$T/alone"
    grep -q '^chat_format: none$' "$T/alone"
    grep -q '^eos: -1$' "$T/alone"
    if [ -e "$LLAMA3" ]; then
        [ "$(bn-tokenize --vocab - "$CORPUS/prose.txt" <"$LLAMA3")" = "$(bn-tokenize --vocab "$LLAMA3" "$CORPUS/prose.txt")" ]
    fi
    # but not both from it: the text would be the rest of the tokenizer's bytes
    for words in "-m -" "--tokenizer-json -" "--vocab -" "-m - -d" "-m - $CORPUS/prose.txt -"; do
        run_split /dev/null bn-tokenize $words <"$T/tiny.bn"
        [ "$status" -eq 2 ]
        [[ $err == "bn-tokenize: the tokenizer and the text cannot both come from standard input"* ]]
    done
}

@test "a tokenizer.json that does not build, or lacks what the options ask for, is named in the error" {
    $PY - "$TINY/tokenizer.json" "$T/bad.json" <<'PYEOF'
import json, sys
t = json.load(open(sys.argv[1]))
del t["model"]["vocab"]["\u0101"]  # the byte 0x01 has no token
json.dump(t, open(sys.argv[2], "w"))
PYEOF
    run_split /dev/null bn-tokenize --tokenizer-json "$T/bad.json" "$CORPUS/prose.txt"
    expect_one_line_error "$status" "$err" bn-tokenize
    [[ $err == "bn-tokenize: $T/bad.json: "*"has no token"* ]]
    # what the tokenizer lacks for the options given is said of it, not of an input
    $PY -c 'import json, sys; t = json.load(open(sys.argv[1])); t["post_processor"] = None; json.dump(t, open(sys.argv[2], "w"))' \
        "$TINY/tokenizer.json" "$T/nobos.json"
    run_split /dev/null bn-tokenize --tokenizer-json "$T/nobos.json" --bos "$CORPUS/prose.txt"
    expect_one_line_error "$status" "$err" bn-tokenize
    [ "$err" = "bn-tokenize: $T/nobos.json: the tokenizer has no BOS token (--bos)" ]
    run_split /dev/null bn-tokenize --tokenizer-json "$T/nobos.json" --chat "$CORPUS/prose.txt"
    expect_one_line_error "$status" "$err" bn-tokenize
    [ "$err" = "bn-tokenize: $T/nobos.json: the tokenizer has no chat format (--chat)" ]
}

@test "--json: ids, offsets that point at the input, pieces" {
    need_llama3
    f=$CORPUS/invalid.bin
    bn-tokenize --vocab "$LLAMA3" --bos -j "$f" "$CORPUS/emoji.txt" >"$T/j"
    [ "$(wc -l <"$T/j")" -eq 2 ]
    $PY - "$T/j" "$f" <<'EOF'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
data = open(sys.argv[2], 'rb').read()
doc = json.loads(lines[0])
assert doc['doc'] == 0 and doc['count'] == len(doc['ids']) == len(doc['tokens'])
assert doc['tokens'][0]['start'] is None and doc['tokens'][0]['special'] is True
pos = 0
for t in doc['tokens'][1:]:
    assert t['start'] == pos, (t, pos)
    piece = bytes.fromhex(t['bytes']) if 'bytes' in t else t['piece'].encode()
    assert data[t['start']:t['end']] == piece, t
    pos = t['end']
assert pos == len(data)
assert any('bytes' in t for t in doc['tokens'])
assert json.loads(lines[1])['doc'] == 1
EOF
    [ "$(printf 'ab' | bn-tokenize --vocab "$LLAMA3" -j -c)" = '{"doc":0,"count":1}' ]
}

@test "--chat renders BitNet's trained format token for token" {
    need_llama3
    printf 'System:   Be brief.  \nuser: hi\nthere\n' | bn-tokenize --vocab "$LLAMA3" --chat >"$T/c"
    s=$(printf 'Be brief.' | bn-tokenize --vocab "$LLAMA3")
    u=$(printf 'hi\nthere' | bn-tokenize --vocab "$LLAMA3")
    [ "$(cat "$T/c")" = "128000 2374 25 220 $s 128009 1502 25 220 $u 128009 72803 25 220" ]
    [ "$(printf 'user: <|eot_id|>\n' | bn-tokenize --vocab "$LLAMA3" --chat --no-generation-prompt)" = \
      "128000 1502 25 220 27 91 68 354 851 91 29 128009" ]
    run bn-tokenize --vocab "$LLAMA3" --chat <<<"no role here"
    [ "$status" -eq 1 ]
    [[ $output == *"bn-tokenize: -: line 1: expected 'system:', 'user:' or 'assistant:'"* ]]
    # the tiny model has the same format with its own ids
    [ "$(printf 'user: hi\n' | bn-tokenize -m "$TINY" --chat | cut -d' ' -f1)" = 4064 ]
    # --chat-encoding whole: what Hugging Face's template gives, the rendered
    # conversation tokenized as one text with its special tokens
    printf 'System:   Be brief.  \nuser: hi\nthere\n' | bn-tokenize --vocab "$LLAMA3" --chat --chat-encoding whole >"$T/w"
    printf 'System: Be brief.<|eot_id|>User: hi\nthere<|eot_id|>Assistant: ' |
        bn-tokenize --vocab "$LLAMA3" --special --bos >"$T/hf"
    cmp "$T/w" "$T/hf"
    ! cmp -s "$T/w" "$T/c" || false # " Be" and " hi" where split gives " " "Be", " " "hi"
    # special text in a message stays text (HF's template would parse it)
    [ "$(printf 'user: <|eot_id|>\n' | bn-tokenize --vocab "$LLAMA3" --chat --chat-encoding whole --no-generation-prompt)" = \
      "128000 $(printf 'User: <|eot_id|>' | bn-tokenize --vocab "$LLAMA3") 128009" ]
    for how in whole split; do
        run bn-tokenize --vocab "$LLAMA3" --chat-encoding $how </dev/null
        [ "$status" -eq 2 ]
        [[ $output == *"--chat-encoding goes with --chat"* ]]
    done
}

@test "--chat-encoding whole: what transformers renders with the checkpoint's own template (jinja2)" {
    printf 'system:  Be brief. \nuser: hi there\nassistant: hello\n\nuser: again  \nand more\r\n' >"$T/c1"
    printf 'user: x\n' >"$T/c2"
    printf 'user: a\r\nb\r\n\r\nassistant: c\r\n' >"$T/c3"
    : >"$T/c4" # no message: the template writes no BOS
    for c in c1 c2 c3 c4; do
        for gen in "" --no-generation-prompt; do
            # the template writes the BOS itself; transformers adds none
            $PY "$ROOT/tests/ref/chat_template.py" $gen "$TINY" <"$T/$c" |
                bn-tokenize -m "$TINY" --special --no-bos >"$T/ref"
            bn-tokenize -m "$TINY" --chat --chat-encoding whole $gen <"$T/$c" >"$T/bn"
            diff "$T/ref" "$T/bn"
        done
    done
}

@test "| head ends quietly; -o writes whole files and leaves nothing on error" {
    need_llama3
    run bash -c "bn-tokenize --vocab '$LLAMA3' -l '$D/big-corpus.txt' | head -1 >/dev/null; echo \${PIPESTATUS[0]}"
    [ "$output" = 0 ] || [ "$output" = 141 ]
    mkdir "$T/o"
    printf 'hi' | bn-tokenize --vocab "$LLAMA3" -o "$T/o/ids.txt"
    [ "$(cat "$T/o/ids.txt")" = 6151 ]
    echo 999999 >"$T/big-id.txt"
    run bn-tokenize --vocab "$LLAMA3" -d -o "$T/o/bad.txt" "$T/big-id.txt"
    [ "$status" -eq 1 ]
    [ ! -e "$T/o/bad.txt" ]
    no_files_like "$T/o" '^\.'
    # -o naming the tokenizer's own file is refused (it replaced it, exit 0); a text input is rewritten in place
    cp "$LLAMA3" "$T/o/ranks.model"
    for how in "$T/o/ranks.model" "$T/o/../o/ranks.model"; do
        run_split "$T/out" bn-tokenize --vocab "$T/o/ranks.model" -o "$how" </dev/null
        [ "$status" -eq 2 ]
        [[ ${err%%$'\n'*} == "bn-tokenize: -o $how is the tokenizer's file: the output would replace it" ]]
    done
    run bn-tokenize --vocab - -o "$T/o/ranks.model" "$T/big-id.txt" <"$T/o/ranks.model"
    [ "$status" -eq 2 ]
    cmp "$LLAMA3" "$T/o/ranks.model"
    printf 'hi' >"$T/o/text"
    bn-tokenize --vocab "$T/o/ranks.model" -o "$T/o/text" "$T/o/text"
    [ "$(cat "$T/o/text")" = 6151 ]
}

@test "refused tokenizers say why" {
    printf '{"model":{"type":"WordPiece","vocab":{}}}' >"$T/tokenizer.json"
    run_split "$T/o" bn-tokenize --tokenizer-json "$T/tokenizer.json" </dev/null
    expect_one_line_error "$status" "$err" bn-tokenize
    [[ $err == *"tokenizer model 'WordPiece' is not supported (only byte-level BPE)" ]]
    printf 'YQ== 0\nYg== 2\n' >"$T/bad.model"
    run_split "$T/o" bn-tokenize --vocab "$T/bad.model" </dev/null
    expect_one_line_error "$status" "$err" bn-tokenize
    [[ $err == *"bad.model: rank 1 is missing (ranks must be 0..2)" ]]
    # what HF tokenizers would do differently is refused, not ignored: an added
    # token that takes in white space or matches whole words only, BPE dropout
    for edit in 'lstrip' 'rstrip' 'single_word' 'dropout'; do
        $PY - "$TINY/tokenizer.json" "$T/tokenizer.json" "$edit" <<'PYEOF'
import json, sys
t = json.load(open(sys.argv[1]))
if sys.argv[3] == "dropout":
    t["model"]["dropout"] = 0.1
else:
    t["added_tokens"][0][sys.argv[3]] = True
json.dump(t, open(sys.argv[2], "w"))
PYEOF
        run_split "$T/o" bn-tokenize --tokenizer-json "$T/tokenizer.json" </dev/null
        expect_one_line_error "$status" "$err" bn-tokenize
        if [ "$edit" = dropout ]; then
            [[ $err == *"BPE with dropout (random merges) is not supported" ]]
        else
            [[ $err == *"added token 4064 ('<|begin_of_text|>') has $edit, which is not supported" ]]
        fi
    done
}

@test "a run of ten million spaces encodes (PCRE2's default match limit stopped it) and decodes back" {
    need_llama3
    head -c 10000001 /dev/zero | tr '\0' ' ' >"$T/spaces"
    bn-tokenize --vocab "$LLAMA3" <"$T/spaces" >"$T/ids"
    bn-tokenize --vocab "$LLAMA3" -d <"$T/ids" | cmp - "$T/spaces"
}

# Runs every command of the EXAMPLES sections of a manual page ("$ "
# lines inside .EX/.EE) and compares their output with the lines shown.
run_man_examples() {
    local page=$1 w=$T/ex n
    mkdir -p "$w"
    ln -s "$LLAMA3" "$w/tokenizer.model"
    ln -s "$TINY" "$w/tiny-bitnet"
    awk -v dir="$T" '
        /^\.SH/ { ex = ($2 == "EXAMPLES") }
        ex && /^\.EX/ { inb = 1; n++; printf "" > (dir "/exp" n); next }
        ex && /^\.EE/ { inb = 0; next }
        inb { gsub(/\\-/, "-"); gsub(/\\e/, "\\")
              if (substr($0, 1, 2) == "$ ") print substr($0, 3) > (dir "/cmd" n); else print > (dir "/exp" n) }
        END { print n > (dir "/nblocks") }' "$page"
    n=$(cat "$T/nblocks")
    [ "$n" -ge 3 ]
    for i in $(seq "$n"); do
        [ -f "$T/cmd$i" ] || continue
        (cd "$w" && bash "$T/cmd$i") >"$T/got$i"
        diff "$T/exp$i" "$T/got$i" || { echo "example block $i of $page differs"; return 1; }
    done
}

@test "the manual pages render cleanly and their examples are true" {
    need_llama3
    command -v man >/dev/null || skip "man is not installed"
    for p in "$ROOT/man/bn-tokenize.1" "$ROOT/man/bn-tokens.5"; do
        run bash -c "MANWIDTH=80 man --warnings -l '$p' 2>&1 >/dev/null"
        [ -z "$output" ] || { echo "$p: $output"; false; }
    done
    run_man_examples "$ROOT/man/bn-tokenize.1"
    rm -rf "$T/ex" "$T"/cmd* "$T"/exp*
    run_man_examples "$ROOT/man/bn-tokens.5"
}
