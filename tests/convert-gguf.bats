#!/usr/bin/env bats
# bn-convert on GGUF sources: every tensor encoding we read (F32, F16, BF16,
# Q8_0, Q4_K, Q5_K, Q6_K, I2_S, TQ1_0, TQ2_0, IQ1_BN, IQ2_BN), the
# architecture variants, TL1/TL2 refused, and malformed files.
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

@test "GGUF f32, f16, bf16: float tensors byte-identical, ternary values times β kept" {
    for fmt in gguf-f32 gguf-f16 gguf-bf16; do
        $GEN --format $fmt --shape tiny "$T/$fmt.gguf"
        convert_ok "$T/$fmt.gguf"
    done
    run bn-convert --info "$T/out.bn"
    [[ $output == *"blk.0.attn_q.weight                  bf16   [64, 64]"* ]]
    [[ $output == *"provenance.source_format     gguf"* ]]
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
    $GEN --format gguf-i2_s --inject nested-array "$T/nested.gguf"
    convert_ok "$T/nested.gguf"
}

@test "GGUF architectures map to canonical ones" {
    $GEN --format gguf-i2_s --arch bitnet-25 "$T/b25.gguf"
    convert_ok "$T/b25.gguf"
    run bn-convert --info "$T/out.bn"
    [[ $output == *"general.architecture         bitnet-b1.58"* ]]

    $GEN --format gguf-i2_s --arch bitnet "$T/b.gguf"
    convert_ok "$T/b.gguf"
    run bn-convert --info "$T/out.bn"
    [[ $output == *"general.architecture         bitnet"* ]]
    [[ $output == *"model.ffn_activation         silu"* ]]
    [[ $output == *"model.sub_norms              true"* ]]

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

# ------------------------------------------------------------ refusals

@test "an unsupported architecture is named" {
    $GEN --format gguf-i2_s "$T/x.gguf"
    $PY -c 'import sys; p=sys.argv[1]; b=open(p,"rb").read(); open(p,"wb").write(b.replace(b"bitnet-b1.58", b"mamba2-b1.58"))' "$T/x.gguf"
    convert_fails "$T/x.gguf"
    [[ $err == *"architecture 'mamba2-b1.58'"* ]]
}

@test "a llama-architecture GGUF without ternary weights is refused" {
    $GEN --format gguf-f16 --arch llama "$T/x.gguf"
    convert_fails "$T/x.gguf"
    [[ $err == *"llama"*"ternary"* ]]
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

@test "GGUF Q4_K, Q5_K, Q6_K embeddings and heads are expanded exactly to f32" {
    $GEN --format gguf-i2_s --shape tiny256 --layers 1 --arch llama "$T/src.gguf"
    for q in q4_k q5_k q6_k; do
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

@test "k-quant and IQ*_BN rows that are not whole blocks, truncated blocks, TL1 and TL2 are refused" {
    $GEN --format gguf-i2_s --shape tiny256 --layers 1 "$T/src.gguf"
    $BLOCKS retype --embed q6_k --inject kq-bad-k "$T/src.gguf" "$T/x.gguf"
    convert_fails "$T/x.gguf"
    [[ $err == *"'token_embd.weight' (Q6_K): row length 128 is not a multiple of 256"* ]]
    $BLOCKS retype --proj iq1_bn --inject bn-bad-k "$T/src.gguf" "$T/x.gguf"
    convert_fails "$T/x.gguf"
    [[ $err == *"'blk.0.attn_q.weight' (IQ1_BN): row length 32 is not a multiple of 64"* ]]
    $BLOCKS retype --proj iq2_bn --embed q4_k "$T/src.gguf" "$T/full.gguf"
    size=$(stat -c %s "$T/full.gguf")
    head -c $((size - 1000)) "$T/full.gguf" > "$T/x.gguf"
    convert_fails "$T/x.gguf"
    [[ $err == *"past the end of the file"* ]]
    $BLOCKS retype --inject tl1 "$T/src.gguf" "$T/x.gguf"
    convert_fails "$T/x.gguf"
    [[ $err == *"'blk.0.attn_q.weight' has GGML type 38 (TL1), whose byte order depends on the tile sizes"* ]]
    $BLOCKS retype --inject tl2 "$T/src.gguf" "$T/x.gguf"
    convert_fails "$T/x.gguf"
    [[ $err == *"type 39 (TL2 in bitnet.cpp, MXFP4 in llama.cpp)"*"does not record"* ]]
}
