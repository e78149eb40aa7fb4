#!/usr/bin/env bats
# bn-serve with prompt lookup per request ("lookup": N, "draft_max": K;
# issue 16): a greedy answer with lookup is the answer without, on
# tests/data/lookup's prompts, one at a time and side by side, plain and
# streamed, completions and chat; a seed repeats a sampled answer with
# lookup; bad values get a 400 that names the field. The same for a draft
# model (bn-serve --draft MODEL, "draft": true per request; the tiny
# model's first two layers, as in tests/draft.bats). The servers listen on
# loopback and are stopped in teardown whatever happened.
load common
load serve-common

setup_file() { serve_suite -np 4 --queue 16; }

# body FILE MAX [JSON]: a completion request for FILE's text
body() {
    $PY -c 'import json, sys
d = {"prompt": open(sys.argv[1], encoding="utf-8").read(), "max_tokens": int(sys.argv[2]), "temperature": 0}
d.update(json.loads(sys.argv[3] if len(sys.argv) > 3 else "{}"))
print(json.dumps(d))' "$@"
}

# post PATH JSON OUT: the reply in OUT, its status printed
post() {
    curl -s --max-time 60 -o "$3" -w '%{http_code}' -H 'Content-Type: application/json' --data-binary "$2" \
        "http://127.0.0.1:$PORT$1"
}

@test "completions: greedy with lookup is the answer without, alone and four side by side" {
    i=0
    for f in "$ROOT"/tests/data/lookup/*.txt; do
        i=$((i + 1))
        [ "$(post /v1/completions "$(body "$f" 64)" "$T/plain$i")" = 200 ]
        [ "$(post /v1/completions "$(body "$f" 64 '{"lookup": 3}')" "$T/one$i")" = 200 ]
        [ "$(field "$T/plain$i" 'j["choices"][0]["text"]')" = "$(field "$T/one$i" 'j["choices"][0]["text"]')" ]
        [ "$(field "$T/plain$i" 'j["choices"][0]["finish_reason"]')" = \
            "$(field "$T/one$i" 'j["choices"][0]["finish_reason"]')" ]
    done
    [ "$i" -eq 4 ]
    # lookup ran: drafts were made and some kept
    curl -s --max-time 5 "http://127.0.0.1:$PORT/metrics" >"$T/metrics"
    grep -Eq '^bn_serve_lookup_drafted_total [1-9]' "$T/metrics"
    grep -Eq '^bn_serve_lookup_accepted_total [1-9]' "$T/metrics"
    # side by side (the server's four sequences), other draft lengths
    i=0
    for f in "$ROOT"/tests/data/lookup/*.txt; do
        i=$((i + 1))
        post /v1/completions "$(body "$f" 64 "{\"lookup\": $((i % 3 + 1)), \"draft_max\": $((4 * i))}")" \
            "$T/par$i" >"$T/code$i" &
    done
    wait
    for i in 1 2 3 4; do
        [ "$(cat "$T/code$i")" = 200 ]
        [ "$(field "$T/plain$i" 'j["choices"][0]["text"]')" = "$(field "$T/par$i" 'j["choices"][0]["text"]')" ]
    done
}

@test "streamed and chat answers with lookup are the answers without; a seed repeats a sampled one" {
    f=$ROOT/tests/data/lookup/repeat.txt
    [ "$(post /v1/completions "$(body "$f" 48)" "$T/plain")" = 200 ]
    post /v1/completions "$(body "$f" 48 '{"lookup": 2, "stream": true}')" "$T/sse" >/dev/null
    text=$($PY -c 'import json, sys
ev = [l for l in open(sys.argv[1], encoding="utf-8").read().split("\n\n") if l]
assert ev[-1] == "data: [DONE]", ev[-1]
sys.stdout.write("".join(json.loads(e[6:])["choices"][0]["text"] for e in ev[:-1]))' "$T/sse")
    [ "$text" = "$(field "$T/plain" 'j["choices"][0]["text"]')" ]
    chat='{"messages": [{"role": "user", "content": "Say it again: the cat sat on the mat, the cat sat on the mat."}], "max_tokens": 40, "temperature": 0'
    [ "$(post /v1/chat/completions "$chat}" "$T/c1")" = 200 ]
    [ "$(post /v1/chat/completions "$chat, \"lookup\": 4}" "$T/c2")" = 200 ]
    [ "$(field "$T/c1" 'j["choices"][0]["message"]["content"]')" = \
        "$(field "$T/c2" 'j["choices"][0]["message"]["content"]')" ]
    [ "$(post /v1/completions "$(body "$f" 48 '{"lookup": 3, "temperature": 0.9, "seed": 7}')" "$T/s1")" = 200 ]
    [ "$(post /v1/completions "$(body "$f" 48 '{"lookup": 3, "temperature": 0.9, "seed": 7}')" "$T/s2")" = 200 ]
    [ "$(field "$T/s1" 'j["choices"][0]["text"]')" = "$(field "$T/s2" 'j["choices"][0]["text"]')" ]
}

@test "bad lookup values get a 400 naming the field; the server goes on" {
    f=$ROOT/tests/data/lookup/fresh.txt
    for v in '{"lookup": -1}' '{"lookup": 65}' '{"lookup": 2.5}' '{"lookup": "3"}' '{"lookup": true}' \
        '{"draft_max": 4}' '{"lookup": 3, "draft_max": 0}' '{"lookup": 3, "draft_max": 128}'; do
        [ "$(post /v1/completions "$(body "$f" 8 "$v")" "$T/bad")" = 400 ] || { echo "$v"; return 1; }
        msg=$(field "$T/bad" 'j["error"]["message"]')
        [[ $msg == *"'lookup'"* || $msg == *"'draft_max'"* ]] || { echo "$v: $msg"; return 1; }
    done
    [ "$(post /v1/completions "$(body "$f" 8 '{"lookup": 0}')" "$T/ok")" = 200 ]
}

@test "--draft MODEL: greedy with \"draft\": true is the answer without, side by side; refused where it cannot be" {
    $PY "$ROOT/tests/ref/cut_layers.py" "$TINY" 2 "$T/cut2"
    bn-convert "$T/cut2" | bn-quant >"$T/draft2.bn"
    [ "$(post /v1/completions "$(body "$ROOT/tests/data/lookup/fresh.txt" 8 '{"draft": true}')" "$T/no")" = 400 ]
    [[ $(field "$T/no" 'j["error"]["message"]') == *"'draft'"*"no draft model"* ]]
    start_server "$T" draft -np 3 --draft "$T/draft2.bn"
    PORT=$(cat "$T/draft.port")
    i=0
    pids=()
    for f in "$ROOT"/tests/data/lookup/{repeat,rewrite,chat}.txt; do
        i=$((i + 1))
        [ "$(post /v1/completions "$(body "$f" 48)" "$T/plain$i")" = 200 ]
        post /v1/completions "$(body "$f" 48 "{\"draft\": true, \"draft_max\": $((2 * i))}")" "$T/d$i" >"$T/code$i" &
        pids+=($!)
    done
    wait "${pids[@]}" # (not the server's)
    for i in 1 2 3; do
        [ "$(cat "$T/code$i")" = 200 ]
        [ "$(field "$T/plain$i" 'j["choices"][0]["text"]')" = "$(field "$T/d$i" 'j["choices"][0]["text"]')" ]
    done
    curl -s --max-time 5 "http://127.0.0.1:$PORT/metrics" | grep -Eq '^bn_serve_lookup_drafted_total [1-9]'
    f=$ROOT/tests/data/lookup/fresh.txt
    [ "$(post /v1/completions "$(body "$f" 8 '{"draft": true, "lookup": 2}')" "$T/bad")" = 400 ]
    [ "$(post /v1/completions "$(body "$f" 8 '{"draft": 1}')" "$T/bad")" = 400 ]
    # a draft of another vocabulary: exit 1, said in one line after the listening one
    $GEN --format hf-bf16 --shape tiny "$T/other" >/dev/null
    bn-convert "$T/other" | bn-quant >"$T/other.bn"
    run_split "$T/out" timeout 20 bn-serve -m "$D/tiny.bn" --port 0 --draft "$T/other.bn"
    [ "$status" -eq 1 ]
    [ "$(printf '%s\n' "$err" | grep -c .)" -eq 2 ]
    [[ $(printf '%s\n' "$err" | tail -1) == "bn-serve: "*"vocabulary of 512 tokens"* ]]
}

@test "streamed with guesses: a chunk per decoding step, the tokens a guess kept in one" {
    # the model as its own draft keeps every guess: a pass gives several tokens
    start_server "$T" self -np 2 --draft "$D/tiny.bn"
    PORT=$(cat "$T/self.port")
    f=$ROOT/tests/data/lookup/repeat.txt
    [ "$(post /v1/completions "$(body "$f" 48)" "$T/plain")" = 200 ]
    post /v1/completions "$(body "$f" 48 '{"draft": true, "stream": true}')" "$T/sse" >/dev/null
    # the text of each chunk; the last line: completion_tokens
    $PY -c 'import json, sys
ev = [json.loads(l[6:]) for l in open(sys.argv[1], encoding="utf-8").read().split("\n\n") if l.startswith("data: {")]
for e in ev:
    if e["choices"][0]["text"]:
        print(json.dumps(e["choices"][0]["text"]))
print(ev[-1]["usage"]["completion_tokens"])' "$T/sse" >"$T/pieces"
    n=$(tail -n 1 "$T/pieces")
    [ "$n" -eq 48 ]
    [ "$($PY -c 'import json, sys
print("".join(json.loads(l) for l in open(sys.argv[1]).read().split("\n")[:-2]), end="")' "$T/pieces")" = \
        "$(field "$T/plain" 'j["choices"][0]["text"]')" ]
    # 48 tokens in passes of up to 9: far fewer chunks than tokens (one a token before)
    chunks=$(($(wc -l <"$T/pieces") - 1))
    [ "$chunks" -le 16 ] || { echo "$chunks chunks for $n tokens"; return 1; }
}
