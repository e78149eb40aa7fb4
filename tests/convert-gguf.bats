#!/usr/bin/env bats
# bn-convert on GGUF sources: every tensor encoding we read (F32, F16, BF16,
# Q8_0, Q4_K, Q5_K, Q6_K, I2_S, TQ1_0, TQ2_0, IQ1_BN, IQ2_BN, TL1, TL2), the
# architecture variants, and malformed files.
# Sources are synthetic (tests/ref/gen_checkpoint.py); every conversion is
# checked by the independent reference tests/ref/check_convert.py.

load common

CHECK="$PY $ROOT/tests/ref/check_convert.py"

setup() {
    T=$BATS_TEST_TMPDIR
    mkdir -p "$T/out"
}

# convert_ok SRC: converts SRC to $T/out.bn and checks it against the source.
convert_ok() {
    bn-convert -q "$1" -o "$T/out.bn"
    $CHECK "$1" "$T/out.bn"
}

# convert_fails SRC: exit 1, one line "bn-convert: SRC: ...", no output left.
convert_fails() {
    run_split /dev/null bn-convert -q "$1" -o "$T/out/out.bn"
    echo "stderr: $err"
    expect_one_line_error "$status" "$err" bn-convert
    [[ $err == "bn-convert: $1"* ]] || [[ $err == "bn-convert: "*"$1"* ]]
    [ -z "$(ls -A "$T/out")" ]
}

@test "GGUF f32, f16, bf16 of the converters (ternary·β projections) become t2 with the stored β" {
    for fmt in gguf-f32 gguf-f16 gguf-bf16; do
        $GEN --format $fmt --shape tiny "$T/$fmt.gguf"
        convert_ok "$T/$fmt.gguf"
        run bn-convert --info "$T/out.bn"
        [[ $output == *"blk.0.attn_q.weight                  t2     [64, 64]"* ]]
        [[ $output == *"token_embd.weight                    ${fmt#gguf-}"* ]]
        # K = 90, 81, 83: rows that end 2, 1, 3 codes into a byte
        for sh in odd odd1 odd3; do
            $GEN --format $fmt --shape $sh "$T/$sh-$fmt.gguf"
            convert_ok "$T/$sh-$fmt.gguf"
        done
    done
    for a in bitnet-25 bitnet; do
        $GEN --format gguf-f16 --shape tiny --arch $a "$T/$a.gguf"
        convert_ok "$T/$a.gguf"
    done
}

@test "GGUF float projections that are not ternary·β (latent weights, one other value, NaN, infinite β) stay float, byte-identical; -0 is a zero" {
    for fmt in gguf-f32 gguf-f16 gguf-bf16; do
        $GEN --format $fmt --master --shape tiny "$T/$fmt.gguf"
        convert_ok "$T/$fmt.gguf"
        run bn-convert --info "$T/out.bn"
        [[ $output == *"blk.0.attn_q.weight                  ${fmt#gguf-} "* ]]
    done
    for sh in tiny odd1; do
        $GEN --format gguf-f16 --shape $sh --inject float-near-ternary "$T/n.gguf"
        convert_ok "$T/n.gguf"
        run bn-convert --info "$T/out.bn"
        [[ $output == *"blk.0.ffn_down.weight                f16 "* ]]
        [[ $output == *"blk.0.ffn_up.weight                  t2 "* ]]
        [[ $output == *"provenance.source_format     gguf"* ]]
    done
    # -0 is a zero; a NaN or an infinite β is not ternary·β
    for fmt in gguf-f32 gguf-f16 gguf-bf16; do
        $GEN --format $fmt --shape tiny --inject float-special "$T/s.gguf"
        convert_ok "$T/s.gguf"
        run bn-convert --info "$T/out.bn"
        [[ $output == *"blk.0.attn_q.weight                  t2 "* ]]
        [[ $output == *"blk.0.attn_k.weight                  ${fmt#gguf-} "* ]]
        [[ $output == *"blk.0.attn_v.weight                  ${fmt#gguf-} "* ]]
        [[ $output == *"blk.0.attn_output.weight             t2 "* ]]
    done
}

@test "GGUF Q8_0 is dequantized exactly to f32" {
    $GEN --format gguf-q8_0 --shape tiny "$T/q8.gguf"
    convert_ok "$T/q8.gguf"
    run bn-convert --info "$T/out.bn"
    [[ $output == *"token_embd.weight                    f32    [512, 64]"* ]]
    [[ $output == *"blk.1.ffn_down.weight                f32    [64, 160]"* ]]
}

@test "GGUF I2_S becomes t2 with identical codes and β" {
    $GEN --format gguf-i2_s --shape tiny "$T/i2s.gguf"
    convert_ok "$T/i2s.gguf"
    run bn-convert --info "$T/out.bn"
    [ "$status" -eq 0 ]
    [[ $output == *"general.architecture         bitnet-b1.58"* ]]
    [[ $output == *"model.rope_pairing           neox"* ]]
    [[ $output == *"model.ffn_activation         relu2"* ]]
    [[ $output == *"model.head_dim               16"* ]]
    [[ $output == *"chat.format                  bitnet"* ]]
    [[ $output == *"tokenizer                    512 tokens"* ]]
    [[ $output == *"blk.0.ffn_gate.weight                t2     [160, 64]"* ]]
    [[ $output == *"token_embd.weight                    f16    [512, 64]"* ]]
}

@test "GGUF I2_S blocks that cross rows (K not a multiple of 128) decode exactly" {
    $GEN --format gguf-i2_s --shape small-odd "$T/odd.gguf"
    convert_ok "$T/odd.gguf"
    run bn-convert --info "$T/out.bn"
    [[ $output == *"blk.2.ffn_down.weight                t2     [96, 200]"* ]]
}

@test "GGUF TQ1_0 and TQ2_0: one scale -> t2, per-block scales -> exact f32" {
    for fmt in gguf-tq1_0 gguf-tq2_0; do
        $GEN --format $fmt --shape tiny256 "$T/$fmt.gguf"
        convert_ok "$T/$fmt.gguf"
        run bn-convert --info "$T/out.bn"
        # the generator gives blk.0.attn_output per-block scales, and every other
        # projection one all-zero block with an unrelated d (still one β)
        [[ $output == *"blk.0.attn_output.weight             f32    [256, 256]"* ]]
        [[ $output == *"blk.0.attn_q.weight                  t2     [256, 256]"* ]]
        [[ $output == *"blk.1.attn_output.weight             t2     [256, 256]"* ]]
    done
}

@test "GGUF v2, general.alignment and nested array metadata are read" {
    $GEN --format gguf-i2_s --gguf-version 2 "$T/v2.gguf"
    convert_ok "$T/v2.gguf"
    $GEN --format gguf-tq2_0 --shape tiny256 --alignment 64 "$T/a64.gguf"
    convert_ok "$T/a64.gguf"
    $GEN --format gguf-q8_0 --alignment 128 "$T/a128.gguf"
    convert_ok "$T/a128.gguf"
    # any power of two, as ggml's reader takes; nothing else
    $GEN --format gguf-f32 --alignment 4 "$T/a4.gguf"
    convert_ok "$T/a4.gguf"
    $GEN --format gguf-f32 --alignment 24 "$T/a24.gguf"
    convert_fails "$T/a24.gguf"
    [[ $err == *"bad general.alignment (a power of two up to 2^24 is required)"* ]]
    $GEN --format gguf-i2_s --inject nested-array "$T/nested.gguf"
    convert_ok "$T/nested.gguf"
}

@test "GGUF with one input norm under both its names is refused, not written twice" {
    $GEN --format gguf-i2_s --inject norm-in-twice "$T/twice.gguf"
    convert_fails "$T/twice.gguf"
    [[ $err == *"tensor 'blk.0.attn_q_in_norm.weight' appears twice"* ]]
}

@test "GGUF architectures map to canonical ones" {
    $GEN --format gguf-i2_s --arch bitnet-25 "$T/b25.gguf"
    convert_ok "$T/b25.gguf"
    run bn-convert --info "$T/out.bn"
    [[ $output == *"general.architecture         bitnet-b1.58"* ]]

    # bitnet with Llama 3's BPE vocabulary: 2B4T as llama.cpp's converter names it (relu²)
    $GEN --format gguf-i2_s --arch bitnet "$T/b.gguf"
    convert_ok "$T/b.gguf"
    run bn-convert --info "$T/out.bn"
    [[ $output == *"general.architecture         bitnet-b1.58"* ]]
    [[ $output == *"model.ffn_activation         relu2"* ]]
    [[ $output == *"model.sub_norms              true"* ]]
    # llama.cpp's hidden_activation key decides over the vocabulary
    $GEN --format gguf-i2_s --arch bitnet --hidden-act silu "$T/bs.gguf"
    convert_ok "$T/bs.gguf"
    run bn-convert --info "$T/out.bn"
    [[ $output == *"general.architecture         bitnet"$'\n'* ]]
    [[ $output == *"model.ffn_activation         silu"* ]]
    $GEN --format gguf-i2_s --hidden-act relu2 "$T/br.gguf"
    convert_ok "$T/br.gguf"
    run bn-convert --info "$T/out.bn"
    [[ $output == *"model.ffn_activation         relu2"* ]]
    $GEN --format gguf-i2_s --hidden-act gelu "$T/bg.gguf"
    convert_fails "$T/bg.gguf"
    [[ $err == *"bitnet-b1.58.hidden_activation 'gelu' is not supported"* ]]

    $GEN --format gguf-i2_s --arch llama "$T/l.gguf"
    convert_ok "$T/l.gguf"
    run bn-convert --info "$T/out.bn"
    [[ $output == *"general.architecture         llama"* ]]
    [[ $output == *"model.rope_pairing           adjacent"* ]]
    [[ $output == *"model.sub_norms              false"* ]]
    [[ $output == *"model.tied_embeddings        false"* ]]
    [[ $output == *"chat.format                  llama3"* ]]
}

@test "GGUF to standard output is a valid bn stream" {
    $GEN --format gguf-tq1_0 --shape tiny256 --layers 1 "$T/s.gguf"
    bn-convert -q "$T/s.gguf" > "$T/s.bn"
    $CHECK "$T/s.gguf" "$T/s.bn"
    # provenance names the file and its XXH3-64 hash (xxhsum -H3 prints "XXH3 (FILE) = HEX")
    run bn-convert --info --json "$T/s.bn"
    [ "$status" -eq 0 ]
    want=$(xxhsum -H3 "$T/s.gguf" | sed 's/.* = //')
    echo "$output" | $PY -c '
import json, sys
m = json.load(sys.stdin)["metadata"]
assert m["provenance.source_format"] == "gguf"
assert m["provenance.sources"] == ["s.gguf"], m["provenance.sources"]
assert m["provenance.source_hashes"] == [sys.argv[1]], (m["provenance.source_hashes"], sys.argv[1])
' "$want"
}

@test "a 2B4T-shaped I2_S GGUF (1 layer, real vocabulary size) converts exactly" {
    normal_pass_only "the small I2_S files take the same paths"
    $GEN --format gguf-i2_s --shape 2b4t --layers 1 "$T/big.gguf"
    convert_ok "$T/big.gguf"
    run bn-convert --info "$T/out.bn"
    [[ $output == *"model.vocab_size             128256"* ]]
    [[ $output == *"model.head_count_kv          5"* ]]
    [[ $output == *"model.head_dim               128"* ]]
    [[ $output == *"blk.0.ffn_down.weight                t2     [2560, 6912]"* ]]
    [[ $output == *"tokens.stop_ids              128001 128009"* ]]
}

@test "gen_checkpoint --fast-ternary: I2_S written in chunks converts exactly, other values than the default" {
    normal_pass_only "a generator option, not a bn-convert path"
    # small-odd: blocks cross rows; 2b4t's FFN matrices (17.7 M weights) span
    # three of the generator's 8 M-weight chunks
    for shape in small-odd 2b4t; do
        $GEN --format gguf-i2_s --fast-ternary --shape $shape --layers 1 "$T/$shape.gguf"
        convert_ok "$T/$shape.gguf"
        grep -q ternary_sha256 "$T/$shape.gguf.truth.json"
    done
    $GEN --format gguf-i2_s --shape small-odd --layers 1 "$T/d.gguf"
    ! cmp -s "$T/small-odd.gguf" "$T/d.gguf" || false
    $GEN --format gguf-i2_s --fast-ternary --no-truth --shape small-odd --layers 1 "$T/n.gguf"
    [ ! -e "$T/n.gguf.truth.json" ]
    run $GEN --format gguf-tq2_0 --fast-ternary --shape tiny256 "$T/x.gguf"
    [ "$status" -ne 0 ]
    [[ $output == *"--fast-ternary writes gguf-i2_s only"* ]]
}

# ------------------------------------------------------------ refusals

@test "an unsupported architecture is named" {
    $GEN --format gguf-i2_s "$T/x.gguf"
    $PY -c 'import sys; p=sys.argv[1]; b=open(p,"rb").read(); open(p,"wb").write(b.replace(b"bitnet-b1.58", b"mamba2-b1.58"))' "$T/x.gguf"
    convert_fails "$T/x.gguf"
    [[ $err == *"architecture 'mamba2-b1.58'"* ]]
}

@test "tokenizer.ggml.pre falcon3 and falcon_e (bitnet.cpp's Falcon3, Falcon-E files) tokenize as Llama 3's; unknown ones are named" {
    # the tokenizer's hash covers its pattern and merge rule (bn-tokens(5)):
    # the same for each of these as for Llama 3's file without a pre, and
    # another for GPT-2's pattern
    $GEN --format gguf-i2_s --arch llama "$T/none.gguf" >/dev/null
    hash_of() { bn-tokenize -m "$1" --info | grep '^hash: '; }
    local want
    want=$(hash_of "$T/none.gguf")
    for pre in llama-bpe falcon3 falcon_e; do
        $GEN --format gguf-i2_s --arch llama --gguf-pre $pre "$T/$pre.gguf" >/dev/null
        convert_ok "$T/$pre.gguf"
        [ "$(hash_of "$T/out.bn")" = "$want" ]
    done
    $GEN --format gguf-i2_s --arch llama --gguf-pre gpt2 "$T/gpt2.gguf" >/dev/null
    [ "$(hash_of "$T/gpt2.gguf")" != "$want" ]
    $GEN --format gguf-i2_s --arch llama --gguf-pre refact "$T/x.gguf" >/dev/null
    convert_fails "$T/x.gguf"
    [[ $err == *"tokenizer.ggml.pre 'refact' is not supported (known: llama-bpe, falcon3, falcon_e, gpt2, qwen2)"* ]]
}

@test "GGUF without tokenizer.ggml.add_bos_token: a BOS by llama.cpp's default (Llama 3's pre-tokenizers yes, gpt2 and qwen2 no)" {
    local pre want
    for pre in none:true llama-bpe:true falcon3:true falcon_e:true qwen2:false gpt2:false; do
        want=${pre#*:}
        pre=${pre%%:*}
        if [ "$pre" = none ]; then
            $GEN --format gguf-i2_s --arch llama --gguf-add-bos absent "$T/b.gguf" >/dev/null
        else
            $GEN --format gguf-i2_s --arch llama --gguf-add-bos absent --gguf-pre $pre "$T/b.gguf" >/dev/null
        fi
        bn-convert --info --json "$T/b.gguf" >"$T/info"
        [ "$($PY -c 'import json,sys; print(str(json.load(open(sys.argv[1]))["metadata"]["tokens.add_bos"]).lower())' "$T/info")" = "$want" ]
    done
    # the key, when there, decides
    $GEN --format gguf-i2_s --arch llama --gguf-add-bos true --gguf-pre qwen2 "$T/b.gguf" >/dev/null
    bn-convert --info "$T/b.gguf" | grep -q 'tokens.add_bos *true'
}

@test "GGUF rope scaling: linear by 1 (bitnet.cpp's BitnetModel) is none; any other is refused by name" {
    $GEN --format gguf-i2_s --arch llama --rope-scaling linear:1.0 "$T/r.gguf" >/dev/null
    convert_ok "$T/r.gguf"
    for rs in linear:8 yarn:4; do
        $GEN --format gguf-i2_s --arch llama --rope-scaling $rs "$T/r.gguf" >/dev/null
        convert_fails "$T/r.gguf"
        [[ $err == *"llama.rope.scaling.type '${rs%%:*}' with factor ${rs#*:} is not supported (none, or linear by 1)"* ]]
    done
}

@test "a llama-architecture GGUF of float ternary·β (bitnet.cpp's f32/f16 Falcon3, Falcon-E, Llama3-8B files) becomes t2" {
    for f in f32 f16 bf16; do
        $GEN --format gguf-$f --arch llama "$T/l.gguf" >/dev/null
        convert_ok "$T/l.gguf" # check_convert: every projection t2 with its β as stored
        [ "$(bn-convert --info "$T/out.bn" | grep -c ' t2 ')" -eq 14 ]
    done
}

@test "a llama-architecture GGUF without ternary weights is refused" {
    # latent float weights: not ternary·β, so not a BitNet model's
    $GEN --format gguf-f16 --master --arch llama "$T/x.gguf"
    convert_fails "$T/x.gguf"
    [[ $err == *"architecture 'llama' without ternary projection weights"*"is not a BitNet model" ]]
}

@test "truncated GGUF files are refused" {
    $GEN --format gguf-i2_s "$T/full.gguf"
    head -c 20 "$T/full.gguf" > "$T/t20.gguf"
    convert_fails "$T/t20.gguf"
    head -c 3000 "$T/full.gguf" > "$T/t3k.gguf"
    convert_fails "$T/t3k.gguf"
    [[ $err == *"truncated"* ]]
    size=$(stat -c %s "$T/full.gguf")
    head -c $((size - 100)) "$T/full.gguf" > "$T/tail.gguf"
    convert_fails "$T/tail.gguf"
    [[ $err == *"past the end of the file"* ]]
}

@test "wrong magic and unsupported versions are refused" {
    $GEN --format gguf-i2_s "$T/full.gguf"
    { printf 'GGUX'; tail -c +5 "$T/full.gguf"; } > "$T/magic.gguf"
    convert_fails "$T/magic.gguf"
    for v in '\001' '\004'; do
        { printf 'GGUF'; printf "$v\000\000\000"; tail -c +9 "$T/full.gguf"; } > "$T/ver.gguf"
        convert_fails "$T/ver.gguf"
        [[ $err == *"version"* ]]
    done
}

@test "absurd counts and lengths fail before any allocation" {
    for bad in absurd-tensor-count absurd-kv-count absurd-string-len; do
        $GEN --format gguf-i2_s --no-truth --inject $bad "$T/$bad.gguf"
        convert_fails "$T/$bad.gguf"
        [[ $err == *"claims"* ]]
    done
}

@test "a tensor offset past the end of the file is refused" {
    $GEN --format gguf-i2_s --no-truth --inject offset-past-end "$T/off.gguf"
    convert_fails "$T/off.gguf"
    [[ $err == *"output_norm.weight"*"past the end"* ]]
}

@test "two tensors at the same bytes are refused, as ggml refuses them" {
    $GEN --format gguf-i2_s --no-truth --inject offset-shared "$T/shared.gguf"
    convert_fails "$T/shared.gguf"
    [[ $err == *"output_norm.weight"*" overlap ("* ]]
}

@test "a metadata string holding a NUL byte is refused by name (it compared as its part before the NUL)" {
    $GEN --format gguf-i2_s --no-truth --arch llama "$T/l.gguf"
    # general.architecture "llama" -> "lla\0a": as long, so nothing else moves
    $PY - "$T/l.gguf" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
key = b'general.architecture'
at = b.index(key) + len(key) + 4 + 8  # key, value type (u32), string length (u64)
assert b[at:at + 5] == b'llama', b[at:at + 5]
b[at + 3] = 0
open(p, 'wb').write(bytes(b))
PY
    convert_fails "$T/l.gguf"
    [[ $err == *"metadata 'general.architecture' holds a NUL byte" ]]
}

@test "an unknown tensor type is named with its number" {
    $GEN --format gguf-i2_s --no-truth --inject unknown-type "$T/type.gguf"
    convert_fails "$T/type.gguf"
    [[ $err == *"'blk.0.attn_norm.weight'"*"type 99"* ]]
}

@test "I2_S with a NaN or zero scale, or an invalid code, is refused" {
    for bad in i2s-nan-scale i2s-zero-scale i2s-bad-code; do
        $GEN --format gguf-i2_s --no-truth --inject $bad "$T/$bad.gguf"
        convert_fails "$T/$bad.gguf"
        [[ $err == *"'blk.0.attn_q.weight'"* ]]
    done
}

# ------------------------------------------- k-quants, IQ1_BN, IQ2_BN, TL1/TL2
# Files rewritten by tests/ref/gguf_blocks.py from generated I2_S GGUFs: the
# ternary projections as ik_llama.cpp's IQ2_BN/IQ1_BN (same values, β as every
# row's scale), the embedding and head as random valid k-quant blocks;
# check_convert.py decodes both with gguf_blocks.py's independent decoders.

BLOCKS="$PY $ROOT/tests/ref/gguf_blocks.py"

@test "GGUF Q4_K, Q5_K, Q6_K, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL embeddings and heads are expanded exactly to f32" {
    $GEN --format gguf-i2_s --shape tiny256 --layers 1 --arch llama "$T/src.gguf"
    for q in q4_k q5_k q6_k q4_0 q4_1 q5_0 q5_1 iq4_nl; do
        $BLOCKS retype --embed $q "$T/src.gguf" "$T/$q.gguf"
        convert_ok "$T/$q.gguf"
        run bn-convert --info "$T/out.bn"
        [[ $output == *"token_embd.weight                    f32    [512, 256]"* ]]
        [[ $output == *"output.weight                        f32    [512, 256]"* ]]
        [[ $output == *"blk.0.attn_q.weight                  t2     [256, 256]"* ]]
    done
}

@test "GGUF IQ2_BN and IQ1_BN (ik_llama.cpp) become t2 with identical values and β" {
    $GEN --format gguf-i2_s --shape tiny256 "$T/src.gguf"
    $BLOCKS retype --proj iq2_bn --embed q6_k "$T/src.gguf" "$T/iq2.gguf"
    convert_ok "$T/iq2.gguf"
    run bn-convert --info "$T/out.bn"
    [[ $output == *"blk.1.ffn_down.weight                t2     [256, 512]"* ]]
    # IQ2_BN's f32 row scale is β itself: the generator's values and β, bit for bit
    $BLOCKS retype --proj iq2_bn "$T/src.gguf" "$T/iq2-f16embd.gguf"
    bn-convert -q "$T/iq2-f16embd.gguf" -o "$T/out.bn"
    $CHECK --truth "$T/src.gguf.truth.json" "$T/iq2-f16embd.gguf" "$T/out.bn"
    $BLOCKS retype --proj iq1_bn --embed q4_k "$T/src.gguf" "$T/iq1.gguf"
    convert_ok "$T/iq1.gguf"
    run bn-convert --info "$T/out.bn"
    [[ $output == *"blk.0.ffn_gate.weight                t2     [512, 256]"* ]]
    # a llama-architecture file with IQ2_BN projections is a BitNet model
    $GEN --format gguf-i2_s --shape tiny256 --layers 1 --arch llama "$T/l.gguf"
    $BLOCKS retype --proj iq2_bn --embed q5_k "$T/l.gguf" "$T/l-iq2.gguf"
    convert_ok "$T/l-iq2.gguf"
}

@test "GGUF IQ*_BN: several row scales or IQ2_BN code 3 give exact f32, ik's zero rows stay t2" {
    $GEN --format gguf-i2_s --shape tiny256 --layers 1 "$T/src.gguf"
    for p in iq2_bn iq1_bn; do
        $BLOCKS retype --proj $p --vary-scales --zero-row "$T/src.gguf" "$T/$p.gguf"
        convert_ok "$T/$p.gguf"
        run bn-convert --info "$T/out.bn"
        [[ $output == *"blk.0.attn_output.weight             f32    [256, 256]"* ]]
        [[ $output == *"blk.0.attn_q.weight                  t2     [256, 256]"* ]]
    done
    $BLOCKS retype --proj iq2_bn --inject iq2bn-code3 "$T/src.gguf" "$T/c3.gguf"
    convert_ok "$T/c3.gguf"
    run bn-convert --info "$T/out.bn"
    [[ $output == *"blk.0.attn_q.weight                  f32    [256, 256]"* ]]
}

@test "k-quant and IQ*_BN rows that are not whole blocks, truncated blocks, TL1/TL2 without a tile are refused" {
    $GEN --format gguf-i2_s --shape tiny256 --layers 1 "$T/src.gguf"
    $BLOCKS retype --embed q6_k --inject kq-bad-k "$T/src.gguf" "$T/x.gguf"
    convert_fails "$T/x.gguf"
    [[ $err == *"'token_embd.weight' (Q6_K): row length 128 is not a multiple of 256"* ]]
    $BLOCKS retype --embed iq4_nl --inject kq-bad-k "$T/src.gguf" "$T/x.gguf"
    convert_fails "$T/x.gguf"
    [[ $err == *"'token_embd.weight' (IQ4_NL): row length 16 is not a multiple of 32"* ]]
    $BLOCKS retype --proj iq1_bn --inject bn-bad-k "$T/src.gguf" "$T/x.gguf"
    convert_fails "$T/x.gguf"
    [[ $err == *"'blk.0.attn_q.weight' (IQ1_BN): row length 32 is not a multiple of 64"* ]]
    $BLOCKS retype --proj iq2_bn --embed q4_k "$T/src.gguf" "$T/full.gguf"
    size=$(stat -c %s "$T/full.gguf")
    head -c $((size - 1000)) "$T/full.gguf" > "$T/x.gguf"
    convert_fails "$T/x.gguf"
    [[ $err == *"past the end of the file"* ]]
    # I2_S bytes relabelled: bitnet.cpp has no tile for these shapes
    $BLOCKS retype --inject tl1 "$T/src.gguf" "$T/x.gguf"
    convert_fails "$T/x.gguf"
    [[ $err == *"'blk.0.attn_q.weight' (TL1, M x K = 256 x 256): no preset tile for this shape; give the kernel_config.ini"*"--tl-config FILE"* ]]
    $BLOCKS retype --inject tl2 "$T/src.gguf" "$T/x.gguf"
    convert_fails "$T/x.gguf"
    [[ $err == *"(TL2, M x K = 256 x 256): no preset tile"* ]]
}

# ------------------------------------------------------------ TL1, TL2
# bitnet.cpp's TL1/TL2 files, written by gguf_blocks.py (its encoder gives
# bitnet.cpp's converter's bytes) from the same ternary values and β as a
# generated I2_S file: converting them must give the I2_S file's t2, which
# check_convert.py compares value for value with that file (and its truth).

# tl_ini FILE TYPE: a kernel_config.ini for tiny256's four shapes (TL2: the
# K mod BK tail is 64 or 32 columns).
tl_ini() {
    local file=$1 bk bmm m k bm i=0
    if [ "$2" = tl1 ]; then bk=(64 32 256 128) bmm=(64 32 32 64); else bk=(96 192 96 96) bmm=(32 32 32 32); fi
    : > "$file"
    for s in "256 256 128" "128 256 32" "512 256 256" "256 512 64"; do
        read -r m k bm <<< "$s"
        printf '[Kernels_%d]\nm = %d\nk = %d\nbm = %d\nbk = %d\nbmm = %d\n\n' $i $m $k $bm ${bk[$i]} ${bmm[$i]} >> "$file"
        i=$((i + 1))
    done
}

# tl_fails SRC OPTION...: bn-convert OPTION... SRC fails with one line, no output.
tl_fails() {
    local src=$1; shift
    run_split /dev/null bn-convert -q "$@" "$src" -o "$T/out/out.bn"
    echo "stderr: $err"
    expect_one_line_error "$status" "$err" bn-convert
    [ -z "$(ls -A "$T/out")" ]
}

@test "GGUF TL1 and TL2 with bitnet.cpp's presets (bitnet_b1_58-large's M x K) become the I2_S file's t2" {
    normal_pass_only "the --tl-config test decodes the same way"
    $GEN --format gguf-i2_s --shape large --layers 1 --vocab 272 "$T/src.gguf"
    for p in tl1 tl2; do
        $BLOCKS retype --proj $p "$T/src.gguf" "$T/$p.gguf"
        bn-convert -q "$T/$p.gguf" -o "$T/out.bn"
        $CHECK "$T/src.gguf" "$T/out.bn"
        $CHECK --quiet "$T/$p.gguf" "$T/out.bn"  # and gguf_blocks.py's decoding of the TL file
        run bn-convert --info "$T/out.bn"
        [[ $output == *"blk.0.ffn_down.weight                t2     [1536, 4096]"* ]]
        [[ $output == *"blk.0.attn_q.weight                  t2     [1536, 1536]"* ]]
    done
}

@test "GGUF TL1 and TL2 with the tiles of a kernel_config.ini (--tl-config) become the I2_S file's t2" {
    $GEN --format gguf-i2_s --shape tiny256 "$T/src.gguf"
    for p in tl1 tl2; do
        tl_ini "$T/$p.ini" $p
        $BLOCKS retype --proj $p --tl-config "$T/$p.ini" "$T/src.gguf" "$T/$p.gguf"
        bn-convert -q --tl-config "$T/$p.ini" "$T/$p.gguf" -o "$T/out.bn"
        $CHECK "$T/src.gguf" "$T/out.bn"
        $CHECK --quiet --tl-config "$T/$p.ini" "$T/$p.gguf" "$T/out.bn"
        run bn-convert --info --tl-config "$T/$p.ini" "$T/$p.gguf"
        [ "$status" -eq 0 ]
        [[ $output == *"blk.1.ffn_down.weight                t2     [256, 512]"* ]]
        # the configuration decides the weights, so provenance names it too
        run bn-convert --info "$T/out.bn"
        [[ $output == *"provenance.sources           $p.gguf $p.ini"* ]]
        # a configuration in a pipe is read once: not named, not hashed (re-reading it would hang)
        timeout 60 bn-convert -q --tl-config <(cat "$T/$p.ini") "$T/$p.gguf" -o "$T/out2.bn"
        diff <(bn-convert --info "$T/out.bn" | grep -v -e provenance -e "^file") <(bn-convert --info "$T/out2.bn" | grep -v -e provenance -e "^file")
        run bn-convert --info "$T/out2.bn"
        [[ $output == *"provenance.sources           $p.gguf"$'\n'* ]]
    done
}

@test "GGUF TL1/TL2: a missing or bad kernel_config.ini, a tile that does not fit, bad codes, β or padding are refused" {
    $GEN --format gguf-i2_s --shape tiny256 --layers 1 "$T/src.gguf"
    tl_ini "$T/tl2.ini" tl2
    $BLOCKS retype --proj tl2 --tl-config "$T/tl2.ini" "$T/src.gguf" "$T/tl2.gguf"
    tl_fails "$T/tl2.gguf"
    [[ $err == *"no preset tile for this shape"* ]]
    tl_fails "$T/tl2.gguf" --tl-config "$T/none.ini"
    [[ $err == "bn-convert: $T/none.ini: No such file or directory" ]]
    tl_fails "$T/tl2.gguf" --tl-config "$T" # fopen takes a directory: the read says why
    [[ $err == "bn-convert: $T: read error: Is a directory" ]]
    head -n 6 "$T/tl2.ini" > "$T/one.ini"
    tl_fails "$T/tl2.gguf" --tl-config "$T/one.ini"
    [[ $err == *"(TL2, M x K = 128 x 256): $T/one.ini has no section with m = 128, k = 256"* ]]
    head -n 4 "$T/tl2.ini" > "$T/short.ini"
    tl_fails "$T/tl2.gguf" --tl-config "$T/short.ini"
    [[ $err == *"short.ini: line 5: the section before this line lacks one of m, k, bm, bk, bmm"* ]]
    sed 's/^bm = 128$/bm = -1/' "$T/tl2.ini" > "$T/neg.ini"
    tl_fails "$T/tl2.gguf" --tl-config "$T/neg.ini"
    [[ $err == *"neg.ini: line 4: bm = '-1' is not a positive size"* ]]
    sed 's/^bmm = 32$/bmm = 64/' "$T/tl2.ini" > "$T/bm64.ini"
    tl_fails "$T/tl2.gguf" --tl-config "$T/bm64.ini"
    [[ $err == *"tile BM 128, BK 96, bm 64 does not fit: TL2's bm is 32"* ]]
    # a wrong BK moves the signs away from their triples
    sed 's/^bk = 96$/bk = 192/' "$T/tl2.ini" > "$T/bk.ini"
    tl_fails "$T/tl2.gguf" --tl-config "$T/bk.ini"
    [[ $err == *"a tile that does not match the file's"* ]]
    # TL1's codes end where β starts; TL2's leave zeros before it
    tl_ini "$T/tl1.ini" tl1
    for bad in tl1:tl-bad-code tl1:tl-zero-scale tl2:tl-bad-code tl2:tl-zero-scale tl2:tl-pad; do
        p=${bad%%:*}
        $BLOCKS retype --proj $p --tl-config "$T/$p.ini" --inject ${bad#*:} "$T/src.gguf" "$T/x.gguf"
        tl_fails "$T/x.gguf" --tl-config "$T/$p.ini"
        [[ $err == "bn-convert: $T/x.gguf: tensor 'blk.0.attn_q.weight"* ]]
    done
    $BLOCKS retype --proj tl2 --tl-config "$T/tl2.ini" --inject tl2-sign-on-zero "$T/src.gguf" "$T/x.gguf"
    tl_fails "$T/x.gguf" --tl-config "$T/tl2.ini"
    [[ $err == *"'blk.0.attn_q.weight': a sign bit marks the zero triple at row 0, columns 0-2"* ]]
}
