#!/usr/bin/env bats
# bn-serve with an embedding model (formats/embedding.md): POST
# /v1/embeddings in OpenAI's shape gives, for texts and token ids, one at a
# time or many in a request (batched over the server's sequences), the
# same f32 bytes as bn-infer --embed, as JSON numbers or base64; bad
# requests get their 400; an embedding model refuses the completions
# endpoints and a language model /v1/embeddings. The model is a synthetic
# checkpoint with BitNet-embedding-0.6B's layout (as tests/embed.bats makes
# it), and one with the 270M's (Gemma 3) with a SentencePiece-style
# tokenizer (tests/ref/spm_ref.py). Every server started here is stopped
# in teardown.
load common
load serve-common

setup_file() {
    local D=$BATS_FILE_TMPDIR
    $GEN --format hf-bf16 --family bitnet-embedding-0.6b "$D/e" >/dev/null
    bn-convert "$D/e" | bn-quant | bn-pack >"$D/ep.bn"
    {
        echo "hello world"
        echo "a"
        echo "ünïcödé ✓ 日本語 — ça va? Ελληνικά"
        echo "Instruct: Given a web search query, retrieve relevant passages that answer the query"
        echo "the quick brown fox jumps over the lazy dog 1.58 bits"
    } >"$D/texts.txt"
    bn-tokenize -l -m "$D/ep.bn" <"$D/texts.txt" >"$D/texts.ids"
    bn-infer -m "$D/ep.bn" -t 1 --embed --embed-format f32 -f "$D/texts.txt" >"$D/want.f32"
    # three sequences: a request of five inputs takes two passes
    SERVE_MODEL=$D/ep.bn start_server "$D" emb -np 3
}

teardown_file() {
    stop_server "$BATS_FILE_TMPDIR" emb
}

setup() {
    D=$BATS_FILE_TMPDIR
    T=$BATS_TEST_TMPDIR
    PORT=$(cat "$D/emb.port")
}

teardown() {
    stop_servers "$T"
}

# vectors BODY OUT: the answer's vectors (JSON floats or base64) as raw f32
# in OUT, after checking the answer's shape; prints the usage's tokens.
vectors() {
    $PY - "$1" "$2" <<'EOF'
import base64, json, struct, sys
j = json.load(open(sys.argv[1]))
assert j["object"] == "list" and j["model"] == "ep.bn", j.keys()
out = b""
for i, d in enumerate(j["data"]):
    assert d["object"] == "embedding" and d["index"] == i
    e = d["embedding"]
    out += base64.b64decode(e) if isinstance(e, str) else struct.pack("<%df" % len(e), *e)
open(sys.argv[2], "wb").write(out)
u = j["usage"]
assert u["prompt_tokens"] == u["total_tokens"]
print(u["prompt_tokens"])
EOF
}

# texts_json: the lines of texts.txt as a JSON array.
texts_json() {
    $PY -c 'import json, sys; print(json.dumps([l.rstrip("\n") for l in open(sys.argv[1], encoding="utf-8")]))' \
        "$D/texts.txt"
}

@test "texts: the same f32 bytes as bn-infer --embed, as floats and as base64; usage counts the end tokens" {
    api /v1/embeddings "{\"model\": \"ep.bn\", \"input\": $(texts_json)}"
    [ "$code" = 200 ]
    run vectors "$T/body" "$T/v.f32"
    [ "$status" -eq 0 ]
    # every record's ids plus its end token
    [ "$output" = $(($(wc -w <"$D/texts.ids") + 5)) ]
    cmp "$D/want.f32" "$T/v.f32"
    api /v1/embeddings "{\"input\": $(texts_json), \"encoding_format\": \"base64\"}"
    [ "$code" = 200 ]
    vectors "$T/body" "$T/b.f32"
    cmp "$D/want.f32" "$T/b.f32"
    # one text as a string; /embeddings is the same endpoint
    api /embeddings '{"input": "a", "encoding_format": "float"}'
    [ "$code" = 200 ]
    vectors "$T/body" "$T/one.f32"
    cmp <(dd if="$D/want.f32" bs=512 skip=1 count=1 status=none) "$T/one.f32"
}

@test "token ids: one array, and an array of arrays, as bn-infer --embed's token records" {
    ids=$($PY -c 'import json, sys; print(json.dumps([[int(x) for x in l.split()] for l in open(sys.argv[1])]))' \
        "$D/texts.ids")
    api /v1/embeddings "{\"input\": $ids}"
    [ "$code" = 200 ]
    vectors "$T/body" "$T/v.f32"
    bn-infer -m "$D/ep.bn" -t 1 --embed --embed-format f32 <"$D/texts.ids" >"$T/want.f32"
    cmp "$T/want.f32" "$T/v.f32"
    cmp "$D/want.f32" "$T/v.f32"
    first=$($PY -c 'import json, sys; print(json.dumps(json.loads(sys.argv[1])[0]))' "$ids")
    api /v1/embeddings "{\"input\": $first}"
    [ "$code" = 200 ]
    vectors "$T/body" "$T/one.f32"
    cmp <(head -c 512 "$D/want.f32") "$T/one.f32"
}

@test "requests side by side get the same bytes as one at a time" {
    for i in 1 2 3 4 5 6; do
        curl -s --max-time 60 -o "$T/b$i" -H 'Content-Type: application/json' \
            --data-binary "{\"input\": $(texts_json)}" "http://127.0.0.1:$PORT/v1/embeddings" &
    done
    wait
    for i in 1 2 3 4 5 6; do
        vectors "$T/b$i" "$T/v$i.f32"
        cmp "$D/want.f32" "$T/v$i.f32"
    done
}

@test "bad requests get 400 (404 for another model) and name the field; the server goes on" {
    api /v1/embeddings '{"input": "a", "dimensions": 64}'
    [ "$code" = 400 ]
    [[ $(cat "$T/body") == *"'dimensions' 64"*"not made to be cut"* ]]
    api /v1/embeddings '{"input": "a", "dimensions": 128}'
    [ "$code" = 200 ]
    api /v1/embeddings '{"input": "a", "encoding_format": "f16"}'
    [ "$code" = 400 ]
    [[ $(cat "$T/body") == *"'encoding_format'"* ]]
    for bad in '{}' '{"input": null}' '{"input": 5}' '{"input": []}' '{"input": [[1, "a"]]}' '{"input": [1.5]}' \
        '{"input": [-1]}' '{"input": [100000]}' '{"input": ["a", 3]}' '{"input": [{"text": "a"}]}'; do
        api /v1/embeddings "$bad"
        echo "$bad: $code $(cat "$T/body")"
        [ "$code" = 400 ]
        [[ $(cat "$T/body") == *'"error":'*"input"* ]]
    done
    long=$($PY -c 'print([5] * 1100)')
    api /v1/embeddings "{\"input\": [\"a\", $long]}"
    [ "$code" = 400 ]
    [[ $(cat "$T/body") == *"'input'[1] is 110"?" tokens (the end token included); the context holds 1024"* ]]
    api /v1/embeddings '{"input": "a", "model": "other"}'
    [ "$code" = 404 ]
    api /v1/embeddings '{"input": "a"'
    [ "$code" = 400 ]
    api /v1/embeddings '{"input": "a"}'
    [ "$code" = 200 ]
}

@test "an embedding model refuses the completions endpoints by name; /tokenize and /v1/models still answer" {
    api /v1/completions '{"prompt": "hello", "max_tokens": 2}'
    [ "$code" = 400 ]
    [[ $(cat "$T/body") == *"'ep.bn' is an embedding model: it answers /v1/embeddings, not /v1/completions"* ]]
    api /v1/chat/completions '{"messages": [{"role": "user", "content": "hi"}]}'
    [ "$code" = 400 ]
    [[ $(cat "$T/body") == *"embedding model"*"/v1/chat/completions"* ]]
    api /tokenize '{"content": "hello world"}'
    [ "$code" = 200 ]
    [ "$(field "$T/body" '" ".join(map(str, j["tokens"]))')" = "$(head -1 "$D/texts.ids")" ]
    code=$(curl -s -o "$T/body" -w '%{http_code}' "http://127.0.0.1:$PORT/v1/models")
    [ "$code" = 200 ]
}

@test "a language model answers /v1/embeddings with 400: not an embedding model" {
    bn-convert "$TINY" | bn-quant >"$T/tiny.bn"
    SERVE_MODEL=$T/tiny.bn start_server "$T" lm
    SRV_PORT=$(cat "$T/lm.port") api /v1/embeddings '{"input": "hello"}'
    [ "$code" = 400 ]
    [[ $(cat "$T/body") == *"'tiny.bn' is a language model, not an embedding model"* ]]
}

@test "a vector that overflows is a JSON error (500) naming the input, not a number JSON cannot spell" {
    $GEN --format hf-bf16 --family bitnet-embedding-0.6b "$T/big" >/dev/null
    $PY "$ROOT/tests/ref/set_tensor.py" "$T/big/model.safetensors" norm.weight 7f7f
    bn-convert "$T/big" | bn-quant >"$T/big.bn"
    SERVE_MODEL=$T/big.bn start_server "$T" big
    SRV_PORT=$(cat "$T/big.port") api /v1/embeddings '{"input": ["hello", "world"]}'
    [ "$code" = 500 ]
    $PY -c 'import json, sys; e = json.load(open(sys.argv[1]))["error"]; assert e["type"] == "server_error" and e["message"].startswith("\x27input\x27[0]: the embedding is not finite"), e' "$T/body"
}

@test "Gemma 3 (270M layout) with its SentencePiece-style tokenizer: a text gets bn-infer --embed's bytes" {
    $PY "$ROOT/tests/ref/spm_ref.py" train "$T/spm"
    $GEN --format hf-bf16 --family bitnet-embedding-270m "$T/g" >/dev/null
    cp "$T/spm/tokenizer.json" "$T/g/"
    rm -f "$T/g/tokenizer_config.json"
    $PY -c 'import json, sys; c = json.load(open(sys.argv[1])); c.update(bos_token_id=2, eos_token_id=1); json.dump(c, open(sys.argv[1], "w"))' \
        "$T/g/config.json"
    bn-convert "$T/g" | bn-quant >"$T/g.bn"
    bn-infer -m "$T/g.bn" -t 1 --embed --embed-format f32 -f "$D/texts.txt" >"$T/want.f32"
    SERVE_MODEL=$T/g.bn start_server "$T" g -np 2
    SRV_PORT=$(cat "$T/g.port") api /v1/embeddings "{\"input\": $(texts_json), \"encoding_format\": \"base64\"}"
    [ "$code" = 200 ]
    $PY -c 'import base64, json, sys; sys.stdout.buffer.write(b"".join(base64.b64decode(d["embedding"]) for d in json.load(open(sys.argv[1]))["data"]))' \
        "$T/body" >"$T/v.f32"
    [ "$(stat -c %s "$T/v.f32")" -eq $((5 * 640 * 4)) ]
    cmp "$T/want.f32" "$T/v.f32"
}

@test "--help and bn-serve(1) name /v1/embeddings" {
    run bn-serve --help
    [[ $output == *"/v1/embeddings"* ]]
    grep -q 'v1/embeddings' "$ROOT/man/bn-serve.1"
}
