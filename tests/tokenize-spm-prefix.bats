#!/usr/bin/env bats
# The SentencePiece-style tokenizer with a dummy prefix (tokenizer.model
# "spm-bpe" with tokenizer.space_prefix: Llama 2's kind, as 1bitLLM's
# bitnet_b1_58 models ship it, formats/1bitllm.md) against SentencePiece
# itself: a small BPE model trained here with Debian's spm_train with Llama
# 2's options (dummy prefix, identity normalization, spaces kept, digits
# split, byte fallback, unk 0, bos 1, eos 2) plus two user-defined symbols,
# exported as the tokenizer.json Hugging Face's converter makes of Llama
# 2's (Prepend "▁" then Replace " " -> "▁", tests/ref/spm_ref.py --llama2),
# and bn's ids compared with SentencePiece's; decoding gives the text back.

load common

SPM="$PY $ROOT/tests/ref/spm_ref.py"

setup_file() {
    local D=$BATS_FILE_TMPDIR
    $SPM train --llama2 "$D/spm"
    {
        echo "hello world"
        echo "the quick  brown   fox"
        echo " leading space"
        echo "   three leading spaces and two trailing  "
        echo " "
        echo "  "
        printf 'tabs\tand\tmore\t\ttabs\n'
        echo "ünïcödé ✓ 日本語 — ça va? Ελληνικά"
        echo "emoji 🫩 and 🙂 are not in the vocabulary: byte fallback"
        echo "digits 1234567 and 3.14159"
        echo "<start_of_turn>user hello<end_of_turn>"
        echo " <end_of_turn> after a space"
        echo "x<end_of_turn>y"
        echo "<s> is text, not BOS"
        echo "▁literal▁marks▁ and  spaces"
        echo "a"
        echo ""
    } >"$D/texts.txt"
    $SPM random-text "$D/fuzz.txt" --count 1000 --seed 13 --llama2
}

setup() {
    D=$BATS_FILE_TMPDIR
    T=$BATS_TEST_TMPDIR
    TJ=$D/spm/tokenizer.json
}

@test "the same ids as SentencePiece with a dummy prefix: Unicode, runs of spaces, leading spaces, empty text, user-defined symbols" {
    $SPM encode "$D/spm/spm.model" <"$D/texts.txt" >"$T/want"
    bn-tokenize --tokenizer-json "$TJ" -l --no-bos <"$D/texts.txt" >"$T/got"
    diff "$T/want" "$T/got"
    # the prefix did happen: "a" is "▁a", a text that starts with a user-defined symbol
    # starts with "▁" alone, and an empty text is no tokens (BOS alone with it)
    run bn-tokenize --tokenizer-json "$TJ" --no-bos --json <<<"a"
    [[ $output == *'"ids":[385,15]'*'"piece":" a"'* ]]
    run bn-tokenize --tokenizer-json "$TJ" --no-bos --json < <(printf '<end_of_turn>x')
    [[ $output == *'"count":3'*'"piece":" "'*'"piece":"<end_of_turn>"'* ]]
    [ "$(printf '' | bn-tokenize --tokenizer-json "$TJ" --no-bos)" = "" ]
    [ "$(printf '' | bn-tokenize --tokenizer-json "$TJ")" = 1 ]
}

@test "-s: a control token in the text ends a text as BOS does: the next stretch takes the prefix, as Hugging Face and llama.cpp give it" {
    a=$(printf 'a' | bn-tokenize --tokenizer-json "$TJ" --no-bos)
    [ "$(printf '<s>a' | bn-tokenize --tokenizer-json "$TJ" -s --no-bos)" = "1 $a" ]
    [ "$(printf 'a</s>a' | bn-tokenize --tokenizer-json "$TJ" -s --no-bos)" = "$a 2 $a" ]
    [ "$(printf '<s>' | bn-tokenize --tokenizer-json "$TJ" -s --no-bos)" = "1" ]
    [ "$(printf 'a<s>' | bn-tokenize --tokenizer-json "$TJ" -s --no-bos)" = "$a 1" ]
    # without -s the same bytes are text, and a user-defined symbol keeps SentencePiece's one prefix
    [ "$(printf '<s>a' | bn-tokenize --tokenizer-json "$TJ" --no-bos)" = "$($SPM encode "$D/spm/spm.model" < <(printf '<s>a'))" ]
    [ "$(printf 'a<end_of_turn>a' | bn-tokenize --tokenizer-json "$TJ" --no-bos)" = "$($SPM encode "$D/spm/spm.model" < <(printf 'a<end_of_turn>a'))" ]
}

@test "1000 random strings: the same ids as SentencePiece, line by line and as one text with its newlines" {
    $SPM encode "$D/spm/spm.model" <"$D/fuzz.txt" >"$T/want"
    bn-tokenize --tokenizer-json "$TJ" -l --no-bos <"$D/fuzz.txt" >"$T/got"
    diff "$T/want" "$T/got"
    $SPM encode --whole "$D/spm/spm.model" <"$D/fuzz.txt" >"$T/want1"
    bn-tokenize --tokenizer-json "$TJ" --no-bos <"$D/fuzz.txt" >"$T/got1"
    cmp "$T/want1" "$T/got1"
}

@test "decode(encode(x)) is x: the prefix's space is dropped at the start of each text, with or without BOS" {
    for f in texts fuzz; do
        bn-tokenize --tokenizer-json "$TJ" -l <"$D/$f.txt" | bn-tokenize --tokenizer-json "$TJ" -l -d --skip-special >"$T/back"
        cmp "$T/back" <(sed 's/▁/ /g' "$D/$f.txt")
        bn-tokenize --tokenizer-json "$TJ" --no-bos <"$D/$f.txt" | bn-tokenize --tokenizer-json "$TJ" -d >"$T/back1"
        cmp "$T/back1" <(sed 's/▁/ /g' "$D/$f.txt")
    done
    # BOS shown: its text, then the text without the prefix (as Hugging Face's decoder gives it)
    [ "$(bn-tokenize --tokenizer-json "$TJ" <<<' hi' | bn-tokenize --tokenizer-json "$TJ" -d)" = "<s> hi" ]
    printf 'ab\xff\xfecd \xe2\x96 x' >"$T/bad"
    bn-tokenize --tokenizer-json "$TJ" --no-bos "$T/bad" | bn-tokenize --tokenizer-json "$TJ" -d >"$T/bad.back"
    cmp "$T/bad" "$T/bad.back"
}

@test "BOS from the post-processor; --info names the dummy prefix; without Prepend there is none" {
    [ "$(bn-tokenize --tokenizer-json "$TJ" <<<'hello' | cut -d' ' -f1)" = 1 ]
    run bn-tokenize --tokenizer-json "$TJ" --info
    [[ $output == *"model: spm-bpe (SentencePiece-style, byte fallback, dummy prefix)"* && $output == *"bos: 1"* ]]
    run bn-tokenize --tokenizer-json "$TJ" --info --json
    [[ $output == *'"model":"spm-bpe","space_prefix":true'* ]]
    # the same file without Prepend: no prefix, a different tokenizer (hash)
    $PY - "$TJ" "$T/noprefix.json" <<'EOF'
import json, sys
tj = json.load(open(sys.argv[1], encoding="utf-8"))
tj["normalizer"] = tj["normalizer"]["normalizers"][1]
json.dump(tj, open(sys.argv[2], "w", encoding="utf-8"), ensure_ascii=False)
EOF
    run bn-tokenize --tokenizer-json "$T/noprefix.json" --info --json
    [[ $output == *'"space_prefix":false'* ]]
    [ "$(bn-tokenize --tokenizer-json "$TJ" --info --json | sed 's/.*"hash":"\([0-9a-f]*\)".*/\1/')" != \
        "$(bn-tokenize --tokenizer-json "$T/noprefix.json" --info --json | sed 's/.*"hash":"\([0-9a-f]*\)".*/\1/')" ]
    # an id stream of one is refused by the other
    bn-tokenize --tokenizer-json "$TJ" -b <<<'hello' >"$T/ids.bin"
    run bn-tokenize --tokenizer-json "$T/noprefix.json" -d "$T/ids.bin"
    [ "$status" -ne 0 ]
}

@test "Prepend of anything but U+2581, or twice, is refused by name" {
    for change in 'tj["normalizer"]["normalizers"][0]["prepend"] = "_"' \
        'tj["normalizer"]["normalizers"].insert(0, tj["normalizer"]["normalizers"][0])'; do
        $PY - "$TJ" "$T/t.json" "$change" <<'EOF'
import json, sys
tj = json.load(open(sys.argv[1], encoding="utf-8"))
exec(sys.argv[3])
json.dump(tj, open(sys.argv[2], "w", encoding="utf-8"), ensure_ascii=False)
EOF
        run_split "$T/out" bn-tokenize --tokenizer-json "$T/t.json" <<<"hello"
        echo "$change: $err"
        expect_one_line_error "$status" "$err" bn-tokenize
        [[ $err == *"normalizer 'Prepend' is not supported"* ]]
    done
}
