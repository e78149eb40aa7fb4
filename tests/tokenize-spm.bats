#!/usr/bin/env bats
# The SentencePiece-style tokenizer (tokenizer.model "spm-bpe": Gemma's
# kind, formats/embedding.md) against SentencePiece itself: a small BPE
# model trained here with Debian's spm_train as Gemma's is set up (no dummy
# prefix, spaces kept, digits split, byte fallback, user-defined symbols),
# exported as the tokenizer.json Hugging Face's converter makes of Gemma's
# (tests/ref/spm_ref.py), and bn's ids compared with SentencePiece's on
# varied and random text; then a Gemma 3 (BitNet-embedding-270M layout)
# checkpoint with that tokenizer through bn-convert, bn-tokenize and
# bn-infer --embed.

load common

SPM="$PY $ROOT/tests/ref/spm_ref.py"

setup_file() {
    local D=$BATS_FILE_TMPDIR
    $SPM train "$D/spm"
    {
        echo "hello world"
        echo "the quick  brown   fox"
        echo " leading space and trailing space "
        printf 'tabs\tand\tmore\t\ttabs\n'
        echo "ünïcödé ✓ 日本語 — ça va? Ελληνικά"
        echo "emoji 🫩 and 🙂 are not in the vocabulary: byte fallback"
        echo "digits 1234567 and 3.14159"
        echo "<start_of_turn>user hello<end_of_turn>"
        echo "▁literal▁marks▁ and  spaces"
        echo "a"
        echo ""
    } >"$D/texts.txt"
    $SPM random-text "$D/fuzz.txt" --count 2000 --seed 11
}

setup() {
    D=$BATS_FILE_TMPDIR
    T=$BATS_TEST_TMPDIR
    TJ=$D/spm/tokenizer.json
}

@test "the same ids as SentencePiece: Unicode, runs of spaces, tabs, characters absent from the vocabulary, user-defined symbols, U+2581" {
    $SPM encode "$D/spm/spm.model" <"$D/texts.txt" >"$T/want"
    bn-tokenize --tokenizer-json "$TJ" -l --no-bos <"$D/texts.txt" >"$T/got"
    diff "$T/want" "$T/got"
    # byte fallback and the user-defined symbols did happen: <0xNN> is id 6 + NN
    [ "$(bn-tokenize --tokenizer-json "$TJ" -l --no-bos <<<"🫩")" = "246 165 177 175" ]
    [ "$(bn-tokenize --tokenizer-json "$TJ" --no-bos <<<'<end_of_turn>' | cut -d' ' -f1)" = 5 ]
}

@test "2000 random strings: the same ids as SentencePiece, line by line and as one text with its newlines" {
    $SPM encode "$D/spm/spm.model" <"$D/fuzz.txt" >"$T/want"
    bn-tokenize --tokenizer-json "$TJ" -l --no-bos <"$D/fuzz.txt" >"$T/got"
    diff "$T/want" "$T/got"
    $SPM encode --whole "$D/spm/spm.model" <"$D/fuzz.txt" >"$T/want1"
    bn-tokenize --tokenizer-json "$TJ" --no-bos <"$D/fuzz.txt" >"$T/got1"
    cmp "$T/want1" "$T/got1"
}

@test "decoding gives the text back (U+2581 as the space it stands for); bytes that are not UTF-8 round-trip" {
    bn-tokenize --tokenizer-json "$TJ" --no-bos <"$D/fuzz.txt" | bn-tokenize --tokenizer-json "$TJ" -d >"$T/back"
    cmp "$T/back" <(sed 's/▁/ /g' "$D/fuzz.txt")
    printf 'ab\xff\xfecd \xe2\x96 x' >"$T/bad"
    bn-tokenize --tokenizer-json "$TJ" --no-bos "$T/bad" | bn-tokenize --tokenizer-json "$TJ" -d >"$T/bad.back"
    cmp "$T/bad" "$T/bad.back"
}

@test "BOS from the post-processor; --info names the kind" {
    [ "$(bn-tokenize --tokenizer-json "$TJ" <<<'hello' | cut -d' ' -f1)" = 2 ]
    run bn-tokenize --tokenizer-json "$TJ" --info
    [[ $output == *"model: spm-bpe"* && $output == *"vocab: 500"* && $output == *"bos: 2"* ]]
}

@test "shapes bn would not encode exactly are refused by name" {
    for change in 'tj["normalizer"] = {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "_"}, tj["normalizer"]]}' \
        'tj["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True}' \
        'tj["model"]["ignore_merges"] = True' 'tj["normalizer"] = None'; do
        $PY - "$TJ" "$T/t.json" "$change" <<'EOF'
import json, sys
tj = json.load(open(sys.argv[1], encoding="utf-8"))
exec(sys.argv[3])
json.dump(tj, open(sys.argv[2], "w", encoding="utf-8"), ensure_ascii=False)
EOF
        run_split "$T/out" bn-tokenize --tokenizer-json "$T/t.json" <<<"hello"
        echo "$change: $err"
        expect_one_line_error "$status" "$err" bn-tokenize
        [[ $err == *"Prepend"* || $err == *"Metaspace"* || $err == *"ignore_merges"* || $err == *"found 'none'"* ]]
    done
    # fuse_unk false: the same ids while every byte has its token (no character is unknown) ...
    $PY - "$TJ" "$T/t.json" <<'EOF'
import json, sys
tj = json.load(open(sys.argv[1], encoding="utf-8"))
tj["model"]["fuse_unk"] = False
json.dump(tj, open(sys.argv[2], "w", encoding="utf-8"), ensure_ascii=False)
EOF
    [ "$(bn-tokenize --tokenizer-json "$T/t.json" <<<"hello 🫩")" = "$(bn-tokenize --tokenizer-json "$TJ" <<<"hello 🫩")" ]
    # ... and refused by name without some byte tokens, where bn would fuse unknown characters
    $PY - "$T/t.json" <<'EOF'
import json, sys
tj = json.load(open(sys.argv[1], encoding="utf-8"))
tj["model"]["vocab"].pop("<0xF0>")
json.dump(tj, open(sys.argv[1], "w", encoding="utf-8"), ensure_ascii=False)
EOF
    run_split "$T/out" bn-tokenize --tokenizer-json "$T/t.json" <<<"hello"
    expect_one_line_error "$status" "$err" bn-tokenize
    [[ $err == *"fuse_unk false with 255 of the 256 byte tokens is not supported"* ]]
}

@test "Gemma 3 (270M layout) with this tokenizer: converted with it, bn-infer --embed from text is from SentencePiece's ids" {
    $GEN --format hf-bf16 --family bitnet-embedding-270m "$T/g" >/dev/null
    cp "$TJ" "$T/g/tokenizer.json"
    rm -f "$T/g/tokenizer_config.json"
    $PY - "$T/g/config.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
c.update(bos_token_id=2, eos_token_id=1, pad_token_id=0)  # Gemma's ids
json.dump(c, open(sys.argv[1], "w"), indent=1)
EOF
    bn-convert "$T/g" | bn-quant >"$T/g.bn"
    run bn-convert --info "$T/g.bn"
    [[ $output == *"tokenizer"*"500 tokens"* && $output != *"no tokenizer"* ]]
    head -9 "$D/texts.txt" >"$T/t.txt"
    $SPM encode "$D/spm/spm.model" <"$T/t.txt" | sed 's/^/2 /' >"$T/want.ids"
    bn-tokenize -m "$T/g.bn" -l <"$T/t.txt" >"$T/got.ids"
    diff "$T/want.ids" "$T/got.ids"
    bn-infer -m "$T/g.bn" -t 1 --embed --embed-format f32 -f "$T/t.txt" >"$T/text.f32"
    bn-infer -m "$T/g.bn" -t 1 --embed --embed-format f32 <"$T/want.ids" >"$T/ids.f32"
    [ "$(stat -c %s "$T/text.f32")" -eq $((9 * 640 * 4)) ]
    cmp "$T/text.f32" "$T/ids.f32"
}
