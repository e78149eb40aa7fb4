#!/usr/bin/env bats
# Embedding models (formats/embedding.md): synthetic checkpoints with
# BitNet-embedding-0.6B's published layout (tests/ref/gen_checkpoint.py
# --family bitnet-embedding-0.6b: Qwen3 backbone with q/k head norms, an
# RMSNorm before each projection, sentence-transformers last-token pooling,
# the tokenizer appending its end token; heads, layers and vocabulary
# scaled down, head_dim, hidden/heads, GQA and FFN ratios, RoPE theta and
# eps real) and BitNet-embedding-270M's (--family bitnet-embedding-270m:
# Gemma 3 with (1 + w) norms, post-norms, sqrt(d) embedding scale, GELU,
# sliding-window layers with their own RoPE base; the real width, 6 layers,
# the window cut to 32) go through bn-convert | bn-quant | bn-pack, and
# bn-infer --embed's vectors meet the independent numpy reference
# (tests/ref/ref_forward.py embed) with cosine >= 0.9999 each, on short,
# long and Unicode inputs, from text and from token records, one at a time
# and batched.

load common

REF="$PY -W ignore $ROOT/tests/ref/ref_forward.py"

setup_file() {
    local D=$BATS_FILE_TMPDIR
    $GEN --format hf-bf16 --family bitnet-embedding-0.6b "$D/e" >/dev/null
    bn-convert "$D/e" >"$D/e.bn"
    bn-quant <"$D/e.bn" | bn-pack >"$D/ep.bn"
    bn-convert "$TINY" | bn-quant >"$D/tiny.bn"
    {
        echo "hello world"
        echo "a"
        echo "ünïcödé ✓ 日本語 — ça va? Ελληνικά"
        echo "Instruct: Given a web search query, retrieve relevant passages that answer the query"$'\t'"Query: what is a ternary weight?"
        # long: ~780 tokens of the 1024-position context
        $PY -c 'import random; r = random.Random(5); print(" ".join(r.choice(["the","quick","brown","fox","jumps","over","lazy","dog","ternary","weights","1.58","bits"]) for _ in range(150)))'
    } >"$D/texts.txt"
    bn-tokenize -l -m "$D/ep.bn" <"$D/texts.txt" >"$D/texts.ids"
    # Gemma 3: short, Unicode, and ~200 tokens (past the window of 32, a partial KV block deep)
    $GEN --format hf-bf16 --family bitnet-embedding-270m "$D/g" >/dev/null
    bn-convert "$D/g" | bn-quant | bn-pack >"$D/gp.bn"
    { head -1 "$D/texts.txt"; sed -n 3p "$D/texts.txt"; tail -1 "$D/texts.txt" | cut -d' ' -f1-40; } >"$D/gtexts.txt"
    bn-tokenize -l -m "$D/gp.bn" <"$D/gtexts.txt" >"$D/gtexts.ids"
}

setup() {
    D=$BATS_FILE_TMPDIR
    T=$BATS_TEST_TMPDIR
}

@test "the config is read as published: qwen3, q/k head norms, projection norms, last-token pooling, end token" {
    run bn-convert --info --json "$D/ep.bn"
    [ "$status" -eq 0 ]
    echo "$output" >"$T/info.json"
    run $PY - "$T/info.json" "$D/e.truth.json" "$D/ep.bn" <<'EOF'
import json, struct, sys
m = json.load(open(sys.argv[1]))["metadata"]
truth = json.load(open(sys.argv[2]))
want = {"general.architecture": "qwen3", "model.qk_norm": True, "model.proj_norm": True,
        "model.pooling": "last", "model.head_dim": 128, "model.head_count": 2, "model.head_count_kv": 1,
        "model.embedding_length": 128, "model.feed_forward_length": 384, "model.ffn_activation": "silu",
        "model.sub_norms": False, "model.tied_embeddings": True, "model.rope_theta": 1e6,
        "tokens.embed_end_id": truth["embed_end_id"], "tokens.eos_id": truth["eos_id"], "tokens.add_bos": False}
bad = [(k, m.get(k), v) for k, v in want.items() if m.get(k) != v]
for k in ("model.norm_eps", "model.proj_norm_eps"):
    if abs(m[k] - 1e-6) > 1e-12:
        bad.append((k, m[k], 1e-6))
flags = struct.unpack("<I", open(sys.argv[3], "rb").read(56)[52:56])[0]
if flags != 1 | 4:  # bit 0 projection norms, bit 2 q/k head norms
    bad.append(("header flags", flags, 5))
print(bad)
sys.exit(1 if bad else 0)
EOF
    echo "$output"
    [ "$status" -eq 0 ]
}

@test "a header flag bit this build does not know (bit 6) is refused, as bit 2 is by older builds" {
    cp "$D/ep.bn" "$T/f.bn"
    printf '\105' | dd of="$T/f.bn" bs=1 seek=52 conv=notrunc status=none
    run_split "$T/out" bn-infer -m "$T/f.bn" --embed <"$D/texts.ids"
    expect_one_line_error "$status" "$err" bn-infer
    [[ $err == *"unknown header flags 0x45"* ]]
}

@test "every vector matches the reference (cosine >= 0.9999): text lines, token records, HF, converted and packed" {
    for m in "$D/e" "$D/e.bn" "$D/ep.bn"; do
        bn-infer -m "$m" --embed --embed-format f32 -f "$D/texts.txt" >"$T/v.f32" 2>/dev/null
        run $REF embed --model "$D/e" --ids "$D/texts.ids" --bn "$T/v.f32"
        echo "$m: $output"
        [ "$status" -eq 0 ]
    done
    bn-infer -m "$D/ep.bn" --embed --embed-format f32 <"$D/texts.ids" >"$T/ids.f32"
    cmp "$T/v.f32" "$T/ids.f32"
    # the end token is appended once: a record that already ends with it is the same input
    end=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["embed_end_id"])' "$D/e.truth.json")
    sed "s/\$/ $end/" "$D/texts.ids" | bn-infer -m "$D/ep.bn" --embed --embed-format f32 >"$T/end.f32"
    cmp "$T/ids.f32" "$T/end.f32"
}

@test "float activations: the same vectors as the reference's noquant mode" {
    bn-infer -m "$D/ep.bn" --embed --embed-format f32 --no-act-quant <"$D/texts.ids" >"$T/v.f32"
    run $REF embed --model "$D/e" --ids "$D/texts.ids" --bn "$T/v.f32" --mode noquant --min-cos 0.999999
    echo "$output"
    [ "$status" -eq 0 ]
}

@test "--parallel N: the same bytes as one record at a time; a binary token stream too" {
    bn-infer -m "$D/ep.bn" --embed --embed-format f32 <"$D/texts.ids" >"$T/p1.f32"
    for n in 2 5 8; do
        bn-infer -m "$D/ep.bn" --embed --embed-format f32 -np $n <"$D/texts.ids" >"$T/p$n.f32"
        cmp "$T/p1.f32" "$T/p$n.f32"
    done
    bn-tokenize -l -b -m "$D/ep.bn" <"$D/texts.txt" | bn-infer -m "$D/ep.bn" --embed --embed-format f32 -np 3 >"$T/b.f32"
    cmp "$T/p1.f32" "$T/b.f32"
    # a KV budget too small for the whole pass (18 blocks of 64 positions) but holding the
    # longest record (13): the records go one at a time, the same vectors
    bn-infer -m "$D/ep.bn" --embed --embed-format f32 -np 5 --kv-budget 1792K <"$D/texts.ids" >"$T/small.f32"
    cmp "$T/p1.f32" "$T/small.f32"
}

@test "text and JSON output hold the f32 values exactly, one line per record; -p embeds one text" {
    bn-infer -m "$D/ep.bn" --embed --embed-format f32 <"$D/texts.ids" >"$T/v.f32"
    bn-infer -m "$D/ep.bn" --embed <"$D/texts.ids" >"$T/v.txt"
    bn-infer -m "$D/ep.bn" --embed --json -np 2 <"$D/texts.ids" >"$T/v.json"
    run $PY - "$T/v.f32" "$T/v.txt" "$T/v.json" <<'EOF'
import json, sys
import numpy as np
b = np.fromfile(sys.argv[1], dtype="<f4").reshape(5, 128)
t = np.array([[float(x) for x in l.split()] for l in open(sys.argv[2])], dtype=np.float32)
js = [json.loads(l) for l in open(sys.argv[3])]
j = np.array([o["embedding"] for o in js], dtype=np.float32)
ok = t.shape == b.shape and (t == b).all() and (j == b).all() and [o["record"] for o in js] == [1, 2, 3, 4, 5]
print(t.shape, ok)
sys.exit(0 if ok else 1)
EOF
    echo "$output"
    [ "$status" -eq 0 ]
    bn-infer -m "$D/ep.bn" --embed -p "hello world" >"$T/p.txt"
    [ "$(cat "$T/p.txt")" = "$(head -1 "$T/v.txt")" ]
}

@test "a record longer than the context: named, its place kept (empty line, error object, NaNs), exit 1" {
    run_split "$T/out.txt" bn-infer -m "$D/ep.bn" --embed -c 128 <"$D/texts.ids"
    expect_one_line_error "$status" "$err" bn-infer
    [[ $err == *"record 5: "*"does not fit the context of 128"* ]]
    [ "$(wc -l <"$T/out.txt")" -eq 5 ]
    [ -z "$(sed -n 5p "$T/out.txt")" ]
    [ -n "$(sed -n 4p "$T/out.txt")" ]
    run_split "$T/out.json" bn-infer -m "$D/ep.bn" --embed --json -c 128 <"$D/texts.ids"
    [ "$status" -eq 1 ]
    [[ $(sed -n 5p "$T/out.json") == '{"record": 5, "error": '*'"}' ]]
    run_split "$T/out.f32" bn-infer -m "$D/ep.bn" --embed --embed-format f32 -c 128 -np 3 <"$D/texts.ids"
    [ "$status" -eq 1 ]
    run $PY -c 'import numpy as np, sys; v = np.fromfile(sys.argv[1], dtype="<f4").reshape(5, 128); sys.exit(0 if np.isnan(v[4]).all() and np.isfinite(v[:4]).all() else 1)' "$T/out.f32"
    [ "$status" -eq 0 ]
}

@test "a token record with an id outside the vocabulary: named with its input, its place kept, the records around it embedded" {
    { sed -n 1p "$D/texts.ids"; echo "999999"; sed -n 2p "$D/texts.ids"; } >"$T/bad.ids"
    for np in 1 2 3; do
        run_split "$T/out.json" bn-infer -m "$D/ep.bn" --embed --json -np $np <"$T/bad.ids"
        expect_one_line_error "$status" "$err" bn-infer
        [[ $err == "bn-infer: -: record 2: token 1: id 999999 is outside the vocabulary"* ]]
        $PY -c '
import json, sys
r = [json.loads(l) for l in open(sys.argv[1])]
assert [x["record"] for x in r] == [1, 2, 3], r
assert "embedding" in r[0] and "embedding" in r[2] and "outside the vocabulary" in r[1]["error"], r' "$T/out.json"
    done
    # a file of texts names itself in both kinds of error
    printf 'hello\n%s\n' "$($PY -c 'print("word " * 2000)')" >"$T/long.txt"
    run_split /dev/null bn-infer -m "$D/ep.bn" --embed -f "$T/long.txt"
    [ "$status" -eq 1 ]
    [[ $err == "bn-infer: $T/long.txt: record 2: the record does not fit the context"* ]]
    run_split /dev/null bn-infer -m "$D/ep.bn" --embed -f "$T"
    expect_one_line_error "$status" "$err" bn-infer
    [ "$err" = "bn-infer: $T: Is a directory" ]
}

@test "a base model saved without the \"model.\" prefix has a missing tensor named as it would name it" {
    cp -r "$D/e" "$T/e"
    # (a name conversion skips)
    edit_st_header "$T/e/model.safetensors" 'h["layers.0.self_attn.rotary_emb.inv_freq"] = h.pop("layers.0.mlp.up_proj.weight")'
    run_split /dev/null bn-convert "$T/e" -o "$T/e.bn"
    expect_one_line_error "$status" "$err" bn-convert
    [ "$err" = "bn-convert: $T/e: tensor 'layers.0.mlp.up_proj.weight' is missing" ]
}

@test "a language model with --embed is refused by name; usage errors exit 2" {
    run_split "$T/out" bn-infer -m "$D/tiny.bn" --embed <"$D/texts.ids"
    expect_one_line_error "$status" "$err" bn-infer
    [[ $err == *"not an embedding model (no model.pooling)"* ]]
    [ ! -s "$T/out" ]
    for bad in "--embed -cnv" "--embed --perplexity x" "--embed --logits x" "--embed-format f32" \
        "--embed --embed-format f32 --json" "--embed --embed-format f16"; do
        run bn-infer -m "$D/ep.bn" $bad
        echo "$bad: $output"
        [ "$status" -eq 2 ]
    done
}

@test "an embedding model is for --embed only; -f - reads stdin; sampling options are refused; a stream's error is named once" {
    for args in "-p hello -n 5" "-n 3" "--perplexity $D/texts.txt" "--logits $T/lg.bin -n 0"; do
        run_split "$T/out" bn-infer -m "$D/ep.bn" $args <"$D/texts.ids"
        expect_one_line_error "$status" "$err" bn-infer
        [ "$err" = "bn-infer: $D/ep.bn: an embedding model (model.pooling last): it gives vectors (--embed), not tokens" ]
        [ ! -s "$T/out" ]
    done
    [ ! -e "$T/lg.bin" ]
    bn-infer -m "$D/ep.bn" --embed -f "$D/texts.txt" >"$T/file.txt"
    bn-infer -m "$D/ep.bn" --embed -f - <"$D/texts.txt" >"$T/stdin.txt"
    cmp "$T/file.txt" "$T/stdin.txt"
    for args in "-n 3" "--stop x" "--temp 0" "--seed 1" "--top-k 5" "--repeat-penalty 1.1"; do
        run_split "$T/out" bn-infer -m "$D/ep.bn" --embed -p hi $args
        [ "$status" -eq 2 ]
        [[ $err == "bn-infer: -"*" is for generating: not with --perplexity or --embed"* ]]
        [ "$args" != "-n 3" ] || [[ $err == "bn-infer: -n/--predict is for generating"* ]]
        run_split "$T/out" bn-infer -m "$D/tiny.bn" --perplexity "$D/texts.txt" $args
        [ "$status" -eq 2 ]
    done
    run_split "$T/out" bash -c "echo hi | bn-infer -m '$D/ep.bn' --embed"
    expect_one_line_error "$status" "$err" bn-infer
    [ "$err" = "bn-infer: -: line 1, column 1: 'h' where a token id was expected" ]
    # the records before a broken one are written, at any -np
    for np in 1 3; do
        run_split "$T/out" bash -c "{ head -2 '$D/texts.ids'; echo x; } | bn-infer -m '$D/ep.bn' --embed -np $np"
        expect_one_line_error "$status" "$err" bn-infer
        [ "$err" = "bn-infer: -: line 3, column 1: 'x' where a token id was expected" ]
        [ "$(wc -l <"$T/out")" -eq 2 ]
    done
}

@test "an embedding model is no draft: bn-infer and bn-serve refuse it by name, before any output" {
    # the same checkpoint without its pooling module is a language model with the same tokenizer
    cp -r "$D/e" "$T/lm"
    rm -r "$T/lm/1_Pooling" "$T/lm/modules.json"
    bn-convert "$T/lm" | bn-quant | bn-pack >"$T/lm.bn"
    bn-infer -m "$T/lm.bn" --draft "$T/lm.bn" -p hello -n 3 >"$T/self.txt"
    [ -s "$T/self.txt" ]
    run_split "$T/out" bn-infer -m "$T/lm.bn" --draft "$D/ep.bn" -p hello -n 3
    expect_one_line_error "$status" "$err" bn-infer
    [ "$err" = "bn-infer: $D/ep.bn: an embedding model (model.pooling last): a draft must be a language model" ]
    [ ! -s "$T/out" ]
    run_split "$T/out" timeout 60 bn-serve -m "$T/lm.bn" --draft "$D/ep.bn" --host 127.0.0.1 --port 0
    [ "$status" -eq 1 ]
    [[ $err == *"bn-serve: $D/ep.bn: an embedding model (model.pooling last): a draft must be a language model"* ]]
}

@test "--embed -np N answers a co-process record by record: a pass takes the records that are ready" {
    mkfifo "$T/in"
    bn-infer -m "$D/ep.bn" --embed -np 4 <"$T/in" >"$T/out" 3>&- &
    local pid=$!
    exec 7>"$T/in"
    head -1 "$D/texts.ids" >&7
    local i
    for i in $(seq 300); do [ -s "$T/out" ] && break; sleep 0.1; done
    [ "$(wc -l <"$T/out")" -eq 1 ] # answered while the writer waits, not at the end of the input
    sed -n 2p "$D/texts.ids" >&7
    exec 7>&-
    wait "$pid"
    head -2 "$D/texts.ids" | bn-infer -m "$D/ep.bn" --embed -np 4 | cmp - "$T/out"
}

@test "a vector that overflows is an error named by its record" {
    cp -r "$D/e" "$T/big"
    $PY "$ROOT/tests/ref/set_tensor.py" "$T/big/model.safetensors" norm.weight 7f7f
    bn-convert "$T/big" | bn-quant >"$T/big.bn"
    run_split "$T/out" bn-infer -m "$T/big.bn" --embed --json -f "$D/texts.txt"
    [ "$status" -eq 1 ]
    grep -q '"error": "the embedding is not finite (a value overflowed' "$T/out"
}

@test "--help and bn-infer(1) describe --embed" {
    run bn-infer --help
    [ "$status" -eq 0 ]
    [[ $output == *"--embed"* && $output == *"--embed-format"* ]]
    grep -q -- '--embed-format' "$ROOT/man/bn-infer.1"
    grep -q 'not an embedding model' "$ROOT/man/bn-infer.1"
}

@test "Gemma 3: a scaled RoPE in transformers 5's rope_parameters is refused by name, as in rope_scaling" {
    cp -r "$D/g" "$T/g"
    $PY -c 'import json, sys; p = sys.argv[1]; c = json.load(open(p))
c["rope_parameters"] = {"full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1e6},
                        "sliding_attention": {"rope_type": "default", "rope_theta": 1e4}}
json.dump(c, open(p, "w"))' "$T/g/config.json"
    run_split "$T/o" bn-convert -q "$T/g" -o "$T/g.bn"
    [ "$status" -eq 1 ]
    [[ $err == *"rope_parameters' full_attention rope_type 'linear' is not supported"* ]]
    [ ! -e "$T/g.bn" ]
}

@test "Gemma 3 (270M layout): its config as published; header flags 0 and 2-5" {
    run bn-convert --info --json "$D/gp.bn"
    [ "$status" -eq 0 ]
    echo "$output" >"$T/info.json"
    run $PY - "$T/info.json" "$D/g.truth.json" "$D/gp.bn" <<'EOF'
import json, math, struct, sys
m = json.load(open(sys.argv[1]))["metadata"]
truth = json.load(open(sys.argv[2]))
want = {"general.architecture": "gemma3", "model.qk_norm": True, "model.proj_norm": True, "model.post_norms": True,
        "model.ffn_activation": "gelu_tanh", "model.sliding_window": 32, "model.sliding_layers": [1, 0],
        "model.rope_theta": 1e6, "model.swa_theta": 1e4, "model.head_dim": 256, "model.head_count": 4,
        "model.head_count_kv": 1, "model.embedding_length": 640, "model.feed_forward_length": 2048,
        "model.pooling": "last", "tokens.add_bos": True, "tokens.embed_end_id": truth["eos_id"]}
bad = [(k, m.get(k), v) for k, v in want.items() if m.get(k) != v]
if abs(m["model.embedding_scale"] - math.sqrt(640)) > 1e-5:
    bad.append(("model.embedding_scale", m["model.embedding_scale"], math.sqrt(640)))
flags = struct.unpack("<I", open(sys.argv[3], "rb").read(56)[52:56])[0]
if flags != 1 | 4 | 8 | 16 | 32:
    bad.append(("header flags", flags, 61))
print(bad)
sys.exit(1 if bad else 0)
EOF
    echo "$output"
    [ "$status" -eq 0 ]
}

@test "Gemma 3: a config without hidden_activation takes Gemma3TextConfig's default, gelu_pytorch_tanh" {
    cp -r "$D/g" "$T/g"
    edit_json "$T/g/config.json" 'del c["hidden_activation"]'
    bn-convert -q "$T/g" -o "$T/g.bn"
    bn-convert --info "$T/g.bn" | grep -Eq '^model.ffn_activation +gelu_tanh$'
}

@test "Gemma 3: float activations match the reference past the sliding window (cosine >= 0.999999)" {
    bn-infer -m "$D/gp.bn" --embed --embed-format f32 --no-act-quant -f "$D/gtexts.txt" >"$T/v.f32"
    run $REF embed --model "$D/g" --ids "$D/gtexts.ids" --bn "$T/v.f32" --mode noquant --min-cos 0.999999
    echo "$output"
    [ "$status" -eq 0 ]
}

@test "Gemma 3: the int8 path matches the reference (cosine >= 0.9999); batching changes no byte" {
    # measured 1, 0.99998, 0.99995. Should a change of rounding order move one below 0.9999
    # (int8 boundaries of random weights), --spread still passes it where a 1e-7 nudge of the
    # input moves the reference's own vector as much
    bn-infer -m "$D/gp.bn" --embed --embed-format f32 <"$D/gtexts.ids" >"$T/v.f32"
    run $REF embed --model "$D/g" --ids "$D/gtexts.ids" --bn "$T/v.f32" --spread
    echo "$output"
    [ "$status" -eq 0 ]
    bn-infer -m "$D/gp.bn" --embed --embed-format f32 <"$D/gtexts.ids" >"$T/p1.f32"
    bn-infer -m "$D/gp.bn" --embed --embed-format f32 -np 3 <"$D/gtexts.ids" >"$T/p3.f32"
    cmp "$T/p1.f32" "$T/p3.f32"
}

@test "Gemma 3: a SentencePiece-style tokenizer.json converts without a tokenizer (token ids in), noted" {
    cp -r "$D/g" "$T/sp"
    $PY - "$T/sp/tokenizer.json" <<'EOF'
import json, sys
tj = json.load(open(sys.argv[1], encoding="utf-8"))
v = tj["model"]["vocab"]
v["\u2581the"] = v.pop(next(k for k in v if len(k) > 1))  # a Gemma-style piece
json.dump(tj, open(sys.argv[1], "w", encoding="utf-8"), ensure_ascii=False)
EOF
    bn-convert "$T/sp" | bn-quant >"$T/sp.bn"
    run bn-convert --info "$T/sp.bn"
    [[ $output == *"no tokenizer: "*"(give token ids)"* ]]
    bn-infer -m "$T/sp.bn" --embed --embed-format f32 <"$D/gtexts.ids" >"$T/sp.f32"
    bn-infer -m "$D/g" --embed --embed-format f32 <"$D/gtexts.ids" >"$T/g.f32" 2>/dev/null
    cmp "$T/sp.f32" "$T/g.f32"
    run_split "$T/out" bn-infer -m "$T/sp.bn" --embed -p "hello"
    expect_one_line_error "$status" "$err" bn-infer
    [[ $err == *"no tokenizer section"* ]]
}

@test "the I2_S GGUF bitnet.cpp's embedding converter writes (qwen3) converts: the same vectors, the same tokens" {
    $GEN --embedding-gguf "$D/e" "$T/e.gguf"
    bn-convert "$T/e.gguf" >"$T/eg.bn"
    run bn-convert --info --json "$T/eg.bn"
    [[ $output == *'"model.pooling":"last"'* && $output == *'"model.qk_norm":true'* ]]
    bn-tokenize -l -m "$T/eg.bn" <"$D/texts.txt" >"$T/eg.ids"
    cmp "$D/texts.ids" "$T/eg.ids"
    bn-infer -m "$T/eg.bn" --embed --embed-format f32 <"$D/texts.ids" >"$T/v.f32"
    run $REF embed --model "$D/e" --ids "$D/texts.ids" --bn "$T/v.f32"
    echo "$output"
    [ "$status" -eq 0 ]
}

@test "an error about an input norm of bitnet.cpp's embedding GGUF names it as the file does (<proj>_norm_in)" {
    cp -r "$D/e" "$T/bad"
    edit_st_header "$T/bad/model.safetensors" 'a, c = "layers.0.self_attn.q_proj.norm.weight", "layers.0.self_attn.o_proj.norm.weight"
h[a], h[c] = h[c], h[a]'
    $GEN --embedding-gguf "$T/bad" "$T/bad.gguf"
    run_split "$T/out" bn-convert "$T/bad.gguf"
    expect_one_line_error "$status" "$err" bn-convert
    [[ $err == *"'blk.0.attn_q_norm_in.weight' should be a vector of "* ]]
}

# BitNet-embedding-270M's GGUF (arch gemma3, SentencePiece vocabulary): the
# 270M checkpoint with the SentencePiece tokenizer of tests/tokenize-spm.bats
# (Gemma's ids) and llama.cpp's sliding pattern (every 6th layer full, which
# the GGUF does not carry), written as bitnet.cpp's converter writes it.
gemma_spm_checkpoint() {
    $PY "$ROOT/tests/ref/spm_ref.py" train "$T/spm" >/dev/null
    cp -r "$D/g" "$T/s"
    cp "$T/spm/tokenizer.json" "$T/s/tokenizer.json"
    rm -f "$T/s/tokenizer_config.json"
    $PY - "$T/s/config.json" <<'PYEOF'
import json, sys
c = json.load(open(sys.argv[1]))
c.update(bos_token_id=2, eos_token_id=1, pad_token_id=0)
c["layer_types"] = ["sliding_attention" if (i + 1) % 6 else "full_attention" for i in range(c["num_hidden_layers"])]
json.dump(c, open(sys.argv[1], "w"), indent=1)
PYEOF
}

@test "the I2_S GGUF bitnet.cpp's embedding converter writes (gemma3, 270M): the same tokens and metadata as from Hugging Face, vectors meet the reference" {
    gemma_spm_checkpoint
    $GEN --embedding-gguf "$T/s" --spm-model "$T/spm/spm.model" "$T/s.gguf"
    bn-convert "$T/s.gguf" >"$T/sg.bn"
    bn-convert "$T/s" >"$T/sh.bn"
    bn-tokenize -l -m "$T/sh.bn" <"$D/gtexts.txt" >"$T/want.ids"
    bn-tokenize -l -m "$T/sg.bn" <"$D/gtexts.txt" >"$T/got.ids"
    cmp "$T/want.ids" "$T/got.ids"
    [ "$(head -1 "$T/got.ids" | cut -d' ' -f1)" = 2 ]               # <bos>
    [ "$(awk '{print NF}' "$T/got.ids" | sort -n | tail -1)" -gt 32 ] # past the window
    for f in sh sg; do
        bn-convert --info --json "$T/$f.bn" | $PY -c 'import json, sys
m = json.load(sys.stdin)["metadata"]
# model.ternary_rule: how float projections become ternary (the GGUF ones arrive ternary)
print(json.dumps({k: v for k, v in sorted(m.items()) if k.startswith(("model.", "tokens."))
                  and k != "model.ternary_rule"}))' >"$T/$f.meta"
    done
    diff "$T/sh.meta" "$T/sg.meta"
    bn-quant <"$T/sg.bn" | bn-pack >"$T/sgp.bn"
    bn-infer -m "$T/sgp.bn" --embed --embed-format f32 <"$T/got.ids" >"$T/v.f32"
    # the int8 path's verdict as for the Hugging Face conversion above: cosine >= 0.9999, or
    # (--spread) within what a 1e-7 nudge of the input moves the reference's own vector
    run $REF embed --model "$T/s" --ids "$T/got.ids" --bn "$T/v.f32" --spread
    echo "$output"
    [ "$status" -eq 0 ]
}

@test "gemma3 GGUF: add_space_prefix true puts a space before the text; one without the post norms is refused in one line" {
    gemma_spm_checkpoint
    $GEN --embedding-gguf "$T/s" --spm-model "$T/spm/spm.model" --space-prefix "$T/p.gguf"
    $GEN --embedding-gguf "$T/s" --spm-model "$T/spm/spm.model" "$T/s.gguf"
    bn-convert "$T/p.gguf" >"$T/p.bn"
    bn-convert "$T/s.gguf" >"$T/s.bn"
    [ "$(bn-tokenize -l -m "$T/p.bn" <<<"hello world")" = "$(bn-tokenize -l -m "$T/s.bn" <<<" hello world")" ]
    [ "$(bn-tokenize -l -m "$T/p.bn" <<<"hello world")" != "$(bn-tokenize -l -m "$T/s.bn" <<<"hello world")" ]
    $GEN --embedding-gguf "$T/s" --spm-model "$T/spm/spm.model" --drop-post-norms "$T/bad.gguf"
    run_split "$T/out" bn-convert "$T/bad.gguf"
    expect_one_line_error "$status" "$err" bn-convert
    [[ $err == *"post_attention_norm"* ]]
}
