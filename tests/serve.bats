#!/usr/bin/env bats
# bn-serve: the OpenAI-style endpoints driven with curl on a free loopback
# port. Greedy answers are bn-infer's text for the same prompt, streamed
# answers reassemble to the same text, a seed repeats an answer, requests
# answered side by side get their one-at-a-time answers, every bad input
# gets its 4xx while the server goes on, and SIGTERM lets in-flight
# requests finish. Every server started here is stopped in teardown.
load common
load serve-common

P1='It was a fine morning, and Elizabeth'

setup_file() { serve_suite -np 4 --queue 32; }

# sse FILE: the text of a stream of events, checking its shape: every
# line a data: event, the last [DONE], the one before it the only one
# with a finish_reason, and usage there. Prints TEXT, then a NUL, then the
# finish reason.
sse() {
    $PY -c 'import json, sys
ev = [l for l in open(sys.argv[1], encoding="utf-8").read().split("\n\n") if l]
assert all(e.startswith("data: ") for e in ev), ev
assert ev[-1] == "data: [DONE]", ev[-1]
chunks = [json.loads(e[6:]) for e in ev[:-1]]
text, fin = "", None
for i, c in enumerate(chunks):
    ch = c["choices"][0]
    if i < len(chunks) - 1:
        assert ch["finish_reason"] is None, c
    text += ch["delta"].get("content", "") if "delta" in ch else ch["text"]
last = chunks[-1]
assert last["choices"][0]["finish_reason"] in ("stop", "length"), last
assert last["usage"]["completion_tokens"] >= 1, last
sys.stdout.write(text + "\0" + last["choices"][0]["finish_reason"])' "$1"
}

complete() { # prompt max_tokens [more JSON fields]: a completion request body
    $PY -c 'import json, sys
d = {"prompt": sys.argv[1], "max_tokens": int(sys.argv[2])}
d.update(json.loads(sys.argv[3] if len(sys.argv) > 3 else "{}"))
print(json.dumps(d))' "$@"
}

@test "health, models and metrics" {
    run curl -s --max-time 5 "http://127.0.0.1:$PORT/health"
    [ "$status" -eq 0 ]
    [ "$output" = '{"status":"ok"}' ]
    run curl -s --max-time 5 "http://127.0.0.1:$PORT/v1/models"
    [[ $output == *'"object":"list"'* && $output == *'"id":"tiny.bn"'* && $output == *'"n_ctx":256'* ]]
    # one model by its id (OpenAI's retrieve), another id a 404
    run curl -s --max-time 5 "http://127.0.0.1:$PORT/v1/models/tiny.bn"
    [[ $output == '{"id":"tiny.bn","object":"model",'* && $output == *'"n_ctx":256'* ]]
    run curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$PORT/v1/models/gpt-4"
    [ "$output" = 404 ]
    # no id at all is no model's name: no such endpoint
    run curl -s --max-time 5 "http://127.0.0.1:$PORT/v1/models/"
    [[ $output == *'"code":"not_found"'* ]]
    run curl -s --max-time 5 "http://127.0.0.1:$PORT/metrics"
    [[ $output == *'bn_serve_requests_total{status="200"}'* ]]
    for m in bn_serve_queue_length bn_serve_slots_busy bn_serve_kv_blocks_used bn_serve_prompt_tokens_total \
        bn_serve_completion_tokens_total bn_serve_decode_tokens_per_second; do
        [[ $output == *"# TYPE $m "* ]] || { echo "no $m"; return 1; }
    done
    [[ $output == *$'bn_serve_slots 4\n'* ]]
}

@test "a greedy completion is bn-infer's text, with usage and finish_reason" {
    api /v1/completions "$(complete "$P1" 24 '{"temperature": 0}')"
    [ "$code" = 200 ]
    field "$T/body" 'j["choices"][0]["text"]' >"$T/served"
    bn-infer -m "$D/tiny.bn" -p "$P1" --temp 0 -n 24 >"$T/infer"
    printf '\n' >>"$T/served"
    cmp "$T/served" "$T/infer"
    n=$(printf '%s' "$P1" | bn-tokenize -m "$D/tiny.bn" | wc -w)
    [ "$(field "$T/body" 'j["usage"]["prompt_tokens"]')" -eq "$n" ]
    [ "$(field "$T/body" 'j["object"]')" = text_completion ]
    fin=$(field "$T/body" 'j["choices"][0]["finish_reason"]')
    gen=$(field "$T/body" 'j["usage"]["completion_tokens"]')
    { [ "$fin" = length ] && [ "$gen" -eq 24 ]; } || [ "$fin" = stop ]
    [ "$(field "$T/body" 'j["usage"]["total_tokens"]')" -eq $((n + gen)) ]
}

@test "a greedy chat answer is bn-infer -cnv's" {
    api /v1/chat/completions '{"messages": [{"role": "system", "content": "You are Elizabeth."},
        {"role": "user", "content": "Good morning."}], "max_tokens": 20, "temperature": 0}'
    [ "$code" = 200 ]
    [ "$(field "$T/body" 'j["object"]')" = chat.completion ]
    [ "$(field "$T/body" 'j["choices"][0]["message"]["role"]')" = assistant ]
    # bn-infer -cnv writes an answer to a pipe on one line, breaks escaped
    field "$T/body" 'j["choices"][0]["message"]["content"].replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r") + "\n"' >"$T/served"
    printf 'Good morning.\n' | bn-infer -m "$D/tiny.bn" -cnv --system 'You are Elizabeth.' --temp 0 -n 20 >"$T/infer"
    cmp "$T/served" "$T/infer"
}

@test "streamed answers reassemble to the whole answer and end with [DONE]" {
    api /v1/completions "$(complete "$P1" 40 '{"temperature": 0}')"
    field "$T/body" 'j["choices"][0]["text"] + "\0" + j["choices"][0]["finish_reason"]' >"$T/whole"
    api /v1/completions "$(complete "$P1" 40 '{"temperature": 0, "stream": true}')" -N
    [ "$code" = 200 ]
    sse "$T/body" >"$T/streamed"
    cmp "$T/whole" "$T/streamed"
    [ "$(grep -c '^data: ' "$T/body")" -gt 3 ] # more than one chunk of text
    chat='{"messages": [{"role": "user", "content": "Tell me of Netherfield."}], "max_tokens": 30, "temperature": 0'
    api /v1/chat/completions "$chat}"
    field "$T/body" 'j["choices"][0]["message"]["content"] + "\0" + j["choices"][0]["finish_reason"]' >"$T/whole"
    api /v1/chat/completions "$chat, \"stream\": true}" -N
    sse "$T/body" >"$T/streamed"
    cmp "$T/whole" "$T/streamed"
    head -c 200 "$T/body" | grep -q '"delta":{"role":"assistant","content":""}'
    grep -q '"object":"chat.completion.chunk"' "$T/body"
}

# late_stream PORT JSON: a streamed completion read by a client that lets
# its small receive buffer fill and then sleeps a second, so the server is
# held back while the answer is generated; the raw events on stdout.
late_stream() {
    $PY -c 'import socket, sys, time
body = sys.argv[2].encode()
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
s.connect(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"POST /v1/completions HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
time.sleep(1)
data = b""
while True:
    got = s.recv(65536)
    if not got:
        break
    data += got
head, _, events = data.partition(b"\r\n\r\n")
assert head.startswith(b"HTTP/1.") and b" 200 " in head.split(b"\r\n")[0], head
sys.stdout.buffer.write(events)' "$@"
}

# pieces FILE: the text of each event of a stream, one JSON string a line
pieces() {
    $PY -c 'import json, sys
for e in open(sys.argv[1], encoding="utf-8").read().split("\n\n"):
    if e.startswith("data: {"):
        print(json.dumps(json.loads(e[6:])["choices"][0]["text"]))' "$1"
}

@test "a client that reads late still gets the answer a decoding step a chunk, as one that reads at once" {
    req=$(complete "$P1" 200 '{"temperature": 0, "stream": true}')
    api /v1/completions "$req" -N
    [ "$code" = 200 ]
    pieces "$T/body" >"$T/prompt-reader"
    late_stream "$PORT" "$req" >"$T/late"
    sse "$T/late" >/dev/null # the stream's shape
    pieces "$T/late" >"$T/late-reader"
    diff "$T/prompt-reader" "$T/late-reader"
    # a chunk per token here: each of the tiny model's tokens adds text
    n=$(grep -o '"completion_tokens":[0-9]*' "$T/late" | cut -d: -f2)
    [ "$(grep -vc '^""$' "$T/late-reader")" -eq "$n" ]
    [ "$n" -gt 100 ]
}

@test "stop strings end the answer before them, as in bn-infer" {
    api /v1/completions "$(complete "$P1" 40 '{"temperature": 0}')"
    full=$(field "$T/body" 'j["choices"][0]["text"]')
    stop=${full:12:3}
    [ ${#stop} -eq 3 ]
    api /v1/completions "$(complete "$P1" 40 "{\"temperature\": 0, \"stop\": [\"zzz\", $(printf '%s' "$stop" | $PY -c 'import json,sys; print(json.dumps(sys.stdin.read()))')]}")"
    [ "$code" = 200 ]
    [ "$(field "$T/body" 'j["choices"][0]["finish_reason"]')" = stop ]
    field "$T/body" 'j["choices"][0]["text"]' >"$T/served"
    [ "$(cat "$T/served")" = "${full%%"$stop"*}" ]
    bn-infer -m "$D/tiny.bn" -p "$P1" --temp 0 -n 40 --stop zzz --stop "$stop" >"$T/infer"
    printf '\n' >>"$T/served"
    cmp "$T/served" "$T/infer"
    # streamed: the same text, nothing of the stop string leaks out
    api /v1/completions "$(complete "$P1" 40 "{\"temperature\": 0, \"stream\": true, \"stop\": $(printf '%s' "$stop" | $PY -c 'import json,sys; print(json.dumps(sys.stdin.read()))')}")" -N
    sse "$T/body" | tr '\0' '\n' >"$T/streamed"
    printf '%s\nstop' "${full%%"$stop"*}" | cmp - "$T/streamed"
}

@test "the same seed gives the same answer, bn-infer's with that seed" {
    body=$(complete "$P1" 32 '{"temperature": 0.9, "seed": 1234}')
    api /v1/completions "$body"
    field "$T/body" 'j["choices"][0]["text"]' >"$T/a"
    api /v1/completions "$body"
    field "$T/body" 'j["choices"][0]["text"]' >"$T/b"
    cmp "$T/a" "$T/b"
    bn-infer -m "$D/tiny.bn" -p "$P1" --temp 0.9 --seed 1234 -n 32 >"$T/infer"
    printf '\n' >>"$T/a"
    cmp "$T/a" "$T/infer"
    api /v1/chat/completions '{"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 24, "seed": 7}'
    field "$T/body" 'j["choices"][0]["message"]["content"]' >"$T/c"
    api /v1/chat/completions '{"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 24, "seed": 7}'
    field "$T/body" 'j["choices"][0]["message"]["content"]' >"$T/d"
    cmp "$T/c" "$T/d"
}

@test "8 requests at once get their one-at-a-time answers" {
    prompts=("$P1" 'Mr. Darcy said' 'The letter was' 'It is a truth universally' "$P1 walked" 'She' 'Longbourn' 'Jane')
    for i in "${!prompts[@]}"; do
        extra='{"temperature": 0}'
        [ $((i % 2)) -eq 1 ] && extra="{\"temperature\": 0.8, \"seed\": $i}"
        [ $i -eq 3 ] && extra='{"temperature": 0, "stream": true}'
        complete "${prompts[$i]}" $((20 + 3 * i)) "$extra" >"$T/req$i"
        SRV_PORT=$PORT api /v1/completions "$(cat "$T/req$i")" -N
        [ "$code" = 200 ]
        cp "$T/body" "$T/alone$i"
    done
    pids=()
    for i in "${!prompts[@]}"; do
        curl -sN --max-time 60 -o "$T/together$i" -H 'Content-Type: application/json' --data-binary "@$T/req$i" \
            "http://127.0.0.1:$PORT/v1/completions" &
        pids+=($!)
    done
    wait "${pids[@]}"
    for i in "${!prompts[@]}"; do
        if [ $i -eq 3 ]; then
            sse "$T/alone$i" >"$T/a"
            sse "$T/together$i" >"$T/b"
        else
            field "$T/alone$i" 'j["choices"][0]["text"] + "\0" + json.dumps(j["usage"])' >"$T/a"
            field "$T/together$i" 'j["choices"][0]["text"] + "\0" + json.dumps(j["usage"])' >"$T/b"
        fi
        cmp "$T/a" "$T/b" || { echo "request $i differs"; return 1; }
    done
}

@test "tokenize and detokenize agree with bn-tokenize" {
    api /tokenize "{\"content\": \"$P1\"}"
    [ "$code" = 200 ]
    [ "$(field "$T/body" '" ".join(map(str, j["tokens"]))')" = "$(printf '%s' "$P1" | bn-tokenize -m "$D/tiny.bn" --no-bos | xargs)" ]
    api /detokenize "{\"tokens\": $(field "$T/body" 'j["tokens"]')}"
    [ "$code" = 200 ]
    [ "$(field "$T/body" 'j["content"]')" = "$P1" ]
}


# curl_session FILE: the output of examples/serve-curl.sh, section by
# section: the model list, the greedy completion's text (printed), a
# streamed chat of data: events ending in [DONE], the tokens (printed on a
# second line).
curl_session() {
    $PY -c 'import json, re, sys
out = open(sys.argv[1], encoding="utf-8").read()
parts = re.split(r"^== (.*)\n", out, flags=re.M)
assert parts[0] == "", parts[0]
sec = dict(zip(parts[1::2], parts[2::2]))
assert list(sec) == ["GET /v1/models", "POST /v1/completions (greedy, 16 tokens)",
                     "POST /v1/chat/completions (streamed)", "POST /tokenize"], list(sec)
assert json.loads(sec["GET /v1/models"])["data"][0]["id"] == "tiny.bn"
c = json.loads(sec["POST /v1/completions (greedy, 16 tokens)"])
assert c["object"] == "text_completion" and c["usage"]["completion_tokens"] >= 1, c
ev = [e for e in sec["POST /v1/chat/completions (streamed)"].split("\n\n") if e.strip()]
assert all(e.startswith("data: ") for e in ev) and ev[-1] == "data: [DONE]", ev
chunks = [json.loads(e[6:]) for e in ev[:-1]]
assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}, chunks[0]
assert "".join(k["choices"][0]["delta"].get("content", "") for k in chunks), chunks
assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length") and chunks[-1]["usage"], chunks[-1]
print(c["choices"][0]["text"])
print(" ".join(map(str, json.loads(sec["POST /tokenize"])["tokens"])))' "$1"
}

@test "examples/serve-curl.sh runs against a live server, by argument or BN_SERVE_URL with BN_API_KEY" {
    run_split "$T/session" "$ROOT/examples/serve-curl.sh" "http://127.0.0.1:$PORT/"
    [ "$status" -eq 0 ] || { echo "$err"; return 1; }
    curl_session "$T/session" >"$T/checked"
    # its greedy completion is bn-infer's; its tokens are bn-tokenize's, BOS first
    bn-infer -m "$D/tiny.bn" -p 'It was a fine morning, and' --temp 0 -n 16 >"$T/infer"
    head -n 1 "$T/checked" | cmp - "$T/infer"
    [ "$(sed -n 2p "$T/checked")" = "$(printf 'Hello, world' | bn-tokenize -m "$D/tiny.bn" | xargs)" ]
    printf 'sekrit-key\n' >"$T/key"
    start_server "$T" keyed --api-key-file "$T/key"
    export BN_SERVE_URL=http://127.0.0.1:$(cat "$T/keyed.port")
    run_split "$T/session" "$ROOT/examples/serve-curl.sh"
    [ "$status" -ne 0 ] # no key: curl -f fails on the 401
    BN_API_KEY=sekrit-key run_split "$T/session" "$ROOT/examples/serve-curl.sh"
    [ "$status" -eq 0 ] || { echo "$err"; return 1; }
    curl_session "$T/session" | cmp - "$T/checked"
}
@test "examples/chat.html: one self-contained page that streams bn-serve's answers and keeps the conversation" {
    command -v node >/dev/null || skip "node is not installed: the page's script cannot run (tools/install-deps.sh)"
    # nothing loaded from elsewhere: no src=, href= or CSS url() or @import
    [ -z "$(grep -nE '(src|href)=|url\(|@import' "$ROOT/examples/chat.html")" ]
    run timeout 60 node "$ROOT/tests/ref/chat-page.mjs" selftest
    [ "$status" -eq 0 ] && [ "$output" = ok ] || { echo "$output"; return 1; }
    chat='{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Tell me of Netherfield."}], "max_tokens": 30, "temperature": 0}'
    api /v1/chat/completions "$chat"
    [ "$code" = 200 ]
    timeout 60 node "$ROOT/tests/ref/chat-page.mjs" chat "http://127.0.0.1:$PORT/" "$chat" >"$T/page"
    same='[j["choices"][0]["message"]["content"], j["choices"][0]["finish_reason"], j["usage"]]'
    [ "$(field "$T/page" '[j["text"], j["finish_reason"], j["usage"]]')" = "$(field "$T/body" "$same")" ]
    [ "$(field "$T/page" 'j["pieces"] > 1')" = true ]
    # the whole page over a stand-in DOM: each answer shown is the server's
    # to the conversation so far, which is sent whole; a question no server
    # answered is marked and given back
    timeout 120 node "$ROOT/tests/ref/chat-page.mjs" page "http://127.0.0.1:$PORT" >"$T/run"
    [ "$(field "$T/run" '[m["role"] for m in j["log"]]')" = \
        '["msg user", "msg assistant", "msg user", "msg assistant"]' ]
    for i in 0 1; do
        [ "$(field "$T/run" "len(j['sent'][$i]['messages'])")" -eq $((2 * i + 1)) ]
        api /v1/chat/completions "$(field "$T/run" "json.dumps({k: v for k, v in j['sent'][$i].items() if k != 'stream'})")"
        [ "$(field "$T/body" 'j["choices"][0]["message"]["content"]')" = "$(field "$T/run" "j['log'][$((2 * i + 1))]['text']")" ]
    done
    [ "$(field "$T/run" 'j["sent"][1]["messages"][1]["content"] == j["log"][1]["text"]')" = true ]
    [[ $(field "$T/run" 'j["status"][2]') == "failed: "* ]]
    [ "$(field "$T/run" '[j["input"], j["failed"]["role"]]')" = '["Anyone there?", "msg user failed"]' ]
}

# bad REQ_PATH STATUS CODE BODY [curl options]: the error answer, then a
# good request still served.
bad() {
    local path=$1 want=$2 errcode=$3 body=$4
    shift 4
    api "$path" "$body" "$@"
    [ "$code" = "$want" ] || { echo "$path $body: status $code, expected $want: $(cat "$T/body")"; return 1; }
    [ "$(field "$T/body" 'j["error"]["code"]')" = "$errcode" ] || { cat "$T/body"; return 1; }
    field "$T/body" 'j["error"]["message"] and j["error"]["type"]' >/dev/null
    api /v1/completions '{"prompt": "Hi", "max_tokens": 2}'
    [ "$code" = 200 ]
}

@test "bad requests get OpenAI-style 4xx errors and the server goes on" {
    bad /v1/completions 400 invalid_json '{"prompt": "x", '
    bad /v1/completions 400 invalid_json '[1, 2]'
    bad /v1/completions 400 invalid_json ''
    bad /v1/completions 400 invalid_type '{"prompt": "x", "max_tokens": "ten"}'
    bad /v1/completions 400 invalid_type '{"prompt": "x", "temperature": "hot"}'
    bad /v1/completions 400 invalid_value '{"prompt": "x", "temperature": -1}'
    bad /v1/completions 400 invalid_value '{"prompt": "x", "top_p": 1.5}'
    bad /v1/completions 400 invalid_type '{"prompt": "x", "seed": 1.5}'
    bad /v1/completions 400 invalid_type '{"prompt": "x", "stop": 5}'
    bad /v1/completions 400 invalid_type '{"prompt": "x", "stream": "yes"}'
    bad /v1/completions 400 invalid_type '{"prompt": {"a": 1}}'
    bad /v1/completions 400 invalid_value '{"prompt": [1, 99999]}'
    # a large id is named with all its digits (it was 1e+08)
    for req in '/v1/completions {"prompt": [1, 100000000]}' '/detokenize {"tokens": [100000000]}'; do
        api ${req%% *} "${req#* }"
        [[ $(field "$T/body" 'j["error"]["message"]') == *"token id 100000000 is outside the vocabulary (0..4095)" ]]
    done
    bad /v1/completions 400 missing_field '{"max_tokens": 3}'
    bad /v1/completions 400 unsupported_parameter '{"prompt": "x", "n": 2}'
    bad /v1/completions 400 unsupported_parameter '{"prompt": "x", "n_probs": 3}'
    bad /v1/completions 400 invalid_value '{"prompt": "x", "logprobs": 21}'
    bad /v1/chat/completions 400 invalid_type '{"messages": "hello"}'
    bad /v1/chat/completions 400 invalid_value '{"messages": []}'
    bad /v1/chat/completions 400 invalid_value '{"messages": [{"role": "wizard", "content": "x"}]}'
    bad /v1/chat/completions 400 invalid_type '{"messages": [{"role": "user", "content": 5}]}'
    # a turn without text is an assistant's only; a NUL would cut the text short unseen
    bad /v1/chat/completions 400 missing_field '{"messages": [{"role": "user"}]}'
    bad /v1/chat/completions 400 missing_field '{"messages": [{"role": "user", "content": null}]}'
    bad /v1/chat/completions 400 invalid_value '{"messages": [{"role": "user", "content": "a\u0000b"}]}'
    bad /v1/completions 400 invalid_value '{"prompt": "a\u0000bcd efg"}'
    bad /tokenize 400 invalid_value '{"content": "a\u0000bcd efg"}'
    api /v1/chat/completions '{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": null}, {"role": "user", "content": "a\\u0000b"}], "max_tokens": 2}'
    [ "$code" = 200 ]
    # a whole-number limit is printed whole
    api /v1/completions '{"prompt": "x", "max_tokens": 0}'
    [ "$code" = 400 ]
    [[ $(field "$T/body" 'j["error"]["message"]') == *"between 1 and 1000000000" ]]
    bad /v1/completions 400 invalid_encoding "$(printf '{"prompt": "caf\xff"}')"
    long=$($PY -c 'print(" ".join(["7"] * 300))')
    bad /v1/completions 400 context_length_exceeded "{\"prompt\": [${long// /, }]}"
    bad /v1/completions 400 context_length_exceeded "{\"prompt\": \"$($PY -c 'print("word " * 400)')\"}"
    bad /v1/completions 404 model_not_found '{"prompt": "x", "model": "gpt-4"}'
    bad /v1/nothing 404 not_found '{}'
    bad /v1/completions 405 post_only '' -G
    bad /tokenize 400 invalid_type '{"content": 3}'
    bad /detokenize 400 invalid_value '{"tokens": [-1]}'
    $PY -c 'print("{\"prompt\": \"" + "a" * (1 << 20) + "\"}")' >"$T/big"
    bad /v1/completions 413 body_too_large "@$T/big"
    # request headers to 32 KiB are read (a 24 KB cookie; libmicrohttpd's default pool
    # refused 16 KB with a doubled, malformed 431)
    code=$(curl -s -o "$T/body" -w '%{http_code}' --max-time 30 -H "Cookie: a=$($PY -c 'print("x" * 24000)')" \
        --data-binary '{"prompt": "It", "max_tokens": 2}' "http://127.0.0.1:$PORT/v1/completions")
    [ "$code" = 200 ]
    [ "$(field "$T/body" 'j["usage"]["completion_tokens"]')" = 2 ]
    # the log has a line for each, with method, path and status
    grep -q '^bn-serve: POST /v1/completions 400 ' "$D/main.log"
    grep -q '^bn-serve: POST /v1/completions 413 ' "$D/main.log"
    grep -q '^bn-serve: POST /v1/nothing 404 ' "$D/main.log"
    grep -qE '^bn-serve: POST /v1/completions 200 prompt=[0-9]+ completion=2 [0-9.]+ ms$' "$D/main.log"
}

@test "API key: 401 without it or with another, 200 with it; /health needs none" {
    printf 'sekrit-key\n' >"$T/key"
    start_server "$T" keyed --api-key-file "$T/key"
    SRV_PORT=$(cat "$T/keyed.port")
    api /v1/completions '{"prompt": "Hi", "max_tokens": 2}'
    [ "$code" = 401 ]
    [ "$(field "$T/body" 'j["error"]["type"]')" = authentication_error ]
    api /v1/completions '{"prompt": "Hi", "max_tokens": 2}' -H 'Authorization: Bearer sekrit-kez'
    [ "$code" = 401 ]
    api /v1/completions '{"prompt": "Hi", "max_tokens": 2}' -H 'Authorization: Bearer sekrit-key-longer'
    [ "$code" = 401 ]
    api /v1/completions '{"prompt": "Hi", "max_tokens": 2}' -H 'Authorization: Bearer sekrit-key'
    [ "$code" = 200 ]
    # the scheme's name in any case (RFC 7235)
    api /v1/completions '{"prompt": "Hi", "max_tokens": 2}' -H 'Authorization: bearer sekrit-key'
    [ "$code" = 200 ]
    run curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$SRV_PORT/v1/models"
    [ "$output" = 401 ]
    run curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$SRV_PORT/health"
    [ "$output" = 200 ]
    run curl -s -D - -o /dev/null --max-time 5 "http://127.0.0.1:$SRV_PORT/metrics"
    [[ $output == *'WWW-Authenticate: Bearer'* ]]
}

# cors METHOD PATH ORIGIN [curl options]: the reply's status in $code and
# its headers, lower-cased and without CRs, in $T/headers.
cors() {
    local method=$1 path=$2 origin=$3
    shift 3
    code=$(curl -s --max-time 30 -X "$method" -o "$T/body" -D "$T/raw" -w '%{http_code}' \
        ${origin:+-H "Origin: $origin"} "$@" "http://127.0.0.1:${SRV_PORT:-$PORT}$path")
    tr -d '\r' <"$T/raw" | tr '[:upper:]' '[:lower:]' >"$T/headers"
}
header() { sed -n "s/^$1: //p" "$T/headers"; }

@test "--allow-origin: preflights answered 204, the origin allowed on every reply to it, the key still needed" {
    # without the option no reply says anything of CORS, preflight or not
    cors GET /v1/models http://chat.example
    [ "$code" = 200 ]
    [ -z "$(grep '^access-control-\|^vary:' "$T/headers")" ]
    cors OPTIONS /v1/chat/completions http://chat.example -H 'Access-Control-Request-Method: POST'
    [ "$code" = 405 ]
    [ -z "$(grep '^access-control-' "$T/headers")" ]
    printf 'sekrit-key\n' >"$T/key"
    start_server "$T" cors --api-key-file "$T/key" --allow-origin http://chat.example --allow-origin null
    SRV_PORT=$(cat "$T/cors.port")
    for origin in http://chat.example null; do
        cors OPTIONS /v1/chat/completions "$origin" -H 'Access-Control-Request-Method: POST' \
            -H 'Access-Control-Request-Headers: authorization, content-type'
        [ "$code" = 204 ]
        [ "$(header access-control-allow-origin)" = "$origin" ]
        [[ $(header access-control-allow-methods) == *post* && $(header access-control-allow-methods) == *get* ]]
        [[ $(header access-control-allow-headers) == *authorization* ]]
        [[ $(header access-control-allow-headers) == *content-type* ]]
        [ "$(header vary)" = 'origin, access-control-request-headers' ]
        [ -z "$(header connection)" ] # kept open: a browser's next request reuses it
    done
    # one connection for a preflight and the request after it, and for a 401 without a body and the next
    conns=$(curl -s -o /dev/null -o /dev/null -w '%{num_connects}\n' --max-time 10 -H 'Origin: null' \
        -X OPTIONS -H 'Access-Control-Request-Method: GET' "http://127.0.0.1:$SRV_PORT/v1/models" \
        --next -s -o /dev/null -w '%{num_connects}\n' -H 'Authorization: Bearer sekrit-key' \
        "http://127.0.0.1:$SRV_PORT/v1/models")
    [ "$conns" = $'1\n0' ] || { echo "connections: $conns"; false; }
    conns=$(curl -s -o /dev/null -w '%{http_code} %{num_connects}\n' --max-time 10 "http://127.0.0.1:$SRV_PORT/v1/models" \
        --next -s -o /dev/null -w '%{http_code} %{num_connects}\n' -H 'Authorization: Bearer sekrit-key' \
        "http://127.0.0.1:$SRV_PORT/v1/models")
    [ "$conns" = $'401 1\n200 0' ] || { echo "connections: $conns"; false; }
    # not a preflight: without the key 401, the origin still allowed (the page reads the error)
    cors POST /v1/completions http://chat.example --data-binary '{"prompt": "Hi", "max_tokens": 2}'
    [ "$code" = 401 ]
    [ "$(header access-control-allow-origin)" = http://chat.example ]
    key=(-H 'Authorization: Bearer sekrit-key' -H 'Content-Type: application/json')
    cors POST /v1/completions http://chat.example "${key[@]}" --data-binary '{"prompt": "Hi", "max_tokens": 2}'
    [ "$code" = 200 ]
    [ "$(header access-control-allow-origin)" = http://chat.example ]
    cors POST /v1/chat/completions null "${key[@]}" -N \
        --data-binary '{"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4, "stream": true}'
    [ "$code" = 200 ]
    [ "$(header access-control-allow-origin)" = null ]
    sse "$T/body" >/dev/null
    # another origin, or none: no Access-Control-Allow-Origin; its preflight is not one
    cors GET /v1/models http://evil.example "${key[@]}"
    [ "$code" = 200 ]
    [ -z "$(header access-control-allow-origin)" ]
    [ "$(header vary)" = origin ]
    cors GET /v1/models "" "${key[@]}"
    [ "$code" = 200 ]
    [ -z "$(header access-control-allow-origin)" ]
    cors OPTIONS /v1/chat/completions http://evil.example -H 'Access-Control-Request-Method: POST'
    [ "$code" = 401 ]
    [ -z "$(header access-control-allow-origin)" ]
    grep -q '^bn-serve: OPTIONS /v1/chat/completions 204 ' "$T/cors.log"
    # '*': any origin
    start_server "$T" any --allow-origin '*'
    SRV_PORT=$(cat "$T/any.port")
    cors OPTIONS /v1/completions http://anywhere.example:8000
    [ "$code" = 204 ]
    [ "$(header access-control-allow-origin)" = '*' ]
    cors GET /health http://anywhere.example:8000
    [ "$code" = 200 ]
    [ "$(header access-control-allow-origin)" = '*' ]
    for bad in '' http://chat.example/ chat.example 'http://a b'; do
        run bn-serve -m "$D/tiny.bn" --allow-origin "$bad"
        [ "$status" -eq 2 ]
        [[ ${lines[0]} == "bn-serve: --allow-origin '$bad': not an origin"* ]]
    done
}

@test "a full queue answers 503 with Retry-After; a client that hangs up frees its sequence" {
    start_server "$T" one -np 1 --queue 0 -c 256
    SRV_PORT=$(cat "$T/one.port")
    refused_while_busy '{"prompt": "Hi", "max_tokens": 2}' -D "$T/headers"
    [ "$(field "$T/body" 'j["error"]["code"]')" = server_busy ]
    grep -qi '^Retry-After: 1' "$T/headers"
    # a streamed request cut off early: its sequence is freed and the next one is served
    curl -sN --max-time 0.2 -H 'Content-Type: application/json' --data-binary \
        '{"prompt": "It", "max_tokens": 250, "temperature": 0, "stream": true, "stop": "@@@@"}' \
        "http://127.0.0.1:$SRV_PORT/v1/completions" >/dev/null || true
    api /v1/completions '{"prompt": "Hi", "max_tokens": 2}'
    [ "$code" = 200 ]
}

@test "a client that hangs up while queued cancels its request: nothing is generated for it" {
    start_server "$T" cut -np 1 --queue 32 --log-json
    SRV_PORT=$(cat "$T/cut.port")
    long='{"prompt": "It", "max_tokens": 250, "temperature": 0, "stop": "@@@@"}'
    pids=()
    # 24 answers ahead of it on the one sequence, 6000 tokens: ~0.45 s at
    # the bundled model's 13000 t/s on one Zen 5 thread (8 were too few
    # once decoding got faster), so it is still queued when its client
    # hangs up at 0.15 s
    for i in $(seq 24); do
        curl -s --max-time 60 -o "$T/ahead$i" --data-binary "$long" "http://127.0.0.1:$SRV_PORT/v1/completions" &
        pids+=($!)
    done
    sleep 0.05
    curl -s --max-time 0.1 --data-binary "$long" "http://127.0.0.1:$SRV_PORT/v1/completions" || true
    wait "${pids[@]}"
    curl -s --max-time 5 -o /dev/null "http://127.0.0.1:$SRV_PORT/health"
    gen=$(curl -s --max-time 5 "http://127.0.0.1:$SRV_PORT/metrics" | sed -n 's/^bn_serve_tokens_generated_total //p')
    sum=0
    for i in $(seq 24); do sum=$((sum + $(field "$T/ahead$i" 'j["usage"]["completion_tokens"]'))); done
    [ "$gen" -eq "$sum" ] || { echo "generated $gen tokens, answered $sum"; return 1; }
    # --log-json: one JSON object per request; the one that hung up is 499
    $PY -c 'import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
assert sum(1 for l in lines if l["status"] == 499 and l["completion_tokens"] == 0) == 1, lines
assert sum(1 for l in lines if l["status"] == 200 and l["path"] == "/v1/completions") == 24, lines
assert any(l["path"] == "/metrics" for l in lines), lines
# answered checks are not logged (a 503 one, while the model loaded, is: a slow start, under ASan, has one)
assert not any(l["path"] == "/health" and l["status"] == 200 for l in lines), lines
assert all(set(l) == {"method", "path", "status", "prompt_tokens", "completion_tokens", "ms"} for l in lines)' "$T/cut.log"
}

@test "a stream cut off after its first chunk: the log and /metrics count the tokens generated for it" {
    start_server "$T" sc -np 1 --log-json
    SRV_PORT=$(cat "$T/sc.port")
    # read the role chunk and one piece of text, then hang up
    $PY -c 'import socket, sys
body = b"{\"messages\": [{\"role\": \"user\", \"content\": \"It\"}], \"max_tokens\": 250, \"temperature\": 0, \"stream\": true, \"stop\": \"@@@@\"}"
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
got = b""
while got.count(b"data: ") < 2:
    chunk = s.recv(4096)
    assert chunk, got
    got += chunk
s.close()' "$SRV_PORT"
    api /v1/completions '{"prompt": "Hi", "max_tokens": 3, "temperature": 0}'
    [ "$code" = 200 ]
    gen=$(curl -s --max-time 5 "http://127.0.0.1:$SRV_PORT/metrics" | sed -n 's/^bn_serve_tokens_generated_total //p')
    $PY -c 'import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
chat = [l for l in lines if l["path"] == "/v1/chat/completions"]
assert len(chat) == 1 and chat[0]["completion_tokens"] >= 1, lines
assert sum(l["completion_tokens"] for l in lines) == int(sys.argv[2]), (lines, sys.argv[2])' "$T/sc.log" "$gen"
}

@test "--timeout S closes an idle connection; a request waiting longer than S for its answer is answered" {
    start_server "$T" to -np 1 --queue 256 --timeout 1 -t 1
    SRV_PORT=$(cat "$T/to.port")
    # a connection that sends nothing is closed after about a second
    $PY -c 'import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
t = time.time()
assert s.recv(1) == b"", "the server sent something"
assert 0.5 < time.time() - t < 5, time.time() - t' "$SRV_PORT"
    # one request queued behind enough work to wait past the timeout
    long='{"prompt": "It", "max_tokens": 250, "temperature": 0, "stop": "@@@@"}'
    pids=()
    for i in $(seq 80); do
        curl -s -o /dev/null --max-time 120 --data-binary "$long" "http://127.0.0.1:$SRV_PORT/v1/completions" &
        pids+=($!)
    done
    sleep 0.2
    # and a streamed one: while it waits it is sent SSE comments, so the
    # timeout does not cut it (it did: 200, then the connection closed)
    curl -sN -o "$T/streamed" --max-time 120 --data-binary "${long%\}}, \"stream\": true}" \
        "http://127.0.0.1:$SRV_PORT/v1/completions" &
    spid=$!
    start=$(date +%s%N)
    code=$(curl -s -o "$T/last" -w '%{http_code}' --max-time 120 --data-binary "$long" \
        "http://127.0.0.1:$SRV_PORT/v1/completions")
    waited=$(( ($(date +%s%N) - start) / 1000000 ))
    wait "${pids[@]}"
    wait $spid
    echo "waited $waited ms, HTTP $code"
    [ "$code" = 200 ]
    [ "$(field "$T/last" 'j["usage"]["completion_tokens"]')" -eq 250 ]
    [ "$waited" -gt 1000 ] # else the queue was too short to test the timeout
    [ "$(grep -c '^: keep-alive$' "$T/streamed")" -ge 1 ]
    sed '/^: keep-alive$/,+1d' "$T/streamed" >"$T/events"
    sse "$T/events" >"$T/stext"
    [ "$(tr '\0' '\n' <"$T/stext" | head -c -7)" = "$(field "$T/last" 'j["choices"][0]["text"]')" ]
}

@test "--log-health logs answered /health checks, which are left out by default" {
    start_server "$T" hl --log-health
    curl -s --max-time 5 -o /dev/null "http://127.0.0.1:$(cat "$T/hl.port")/health"
    grep -q ' GET /health 200 ' "$T/hl.log"
}

@test "SIGTERM: no new connections, the request in flight is answered, exit 0" {
    bn-serve -m "$D/tiny.bn" -t 1 --port 0 -np 2 </dev/null >/dev/null 2>"$T/term.log" 3>&- &
    pid=$!
    for i in $(seq 200); do
        port=$(sed -n 's|^bn-serve: listening on http://127.0.0.1:\([0-9]*\)/$|\1|p' "$T/term.log")
        [ -n "$port" ] && grep -q ' ready: ' "$T/term.log" && break
        sleep 0.1
    done
    curl -s --max-time 60 -o "$T/flight" -H 'Content-Type: application/json' --data-binary \
        '{"prompt": "It", "max_tokens": 200, "temperature": 0, "stop": "@@@@"}' "http://127.0.0.1:$port/v1/completions" &
    cpid=$!
    sleep 0.1
    kill -TERM $pid
    exits_zero "$pid"
    wait $cpid
    [ "$(field "$T/flight" 'j["choices"][0]["finish_reason"]')" = length ]
    run curl -s --max-time 2 "http://127.0.0.1:$port/health"
    [ "$status" -ne 0 ]
}

# queue_work PORT N: N answers of 250 tokens sent at once in the background
# (their curl pids in $work), about a second of decoding for 40 on one thread
queue_work() {
    local i
    work=()
    for i in $(seq "$2"); do
        curl -s -o /dev/null --max-time 60 --data-binary \
            '{"prompt": "It", "max_tokens": 250, "temperature": 0, "stop": "@@@@"}' \
            "http://127.0.0.1:$1/v1/completions" &
        work+=($!)
    done
    sleep 0.2
}

@test "SIGTERM: a kept-alive connection's next request gets 503 server_stopping and is closed, not served" {
    start_server "$T" ka -np 1 --queue 256 --allow-origin http://a.example
    port=$(cat "$T/ka.port")
    pid=$(cat "$T/ka.pid")
    queue_work "$port" 80
    $PY - "$port" "$pid" <<'PYEOF'
import http.client, json, os, signal, sys, time
port, pid = int(sys.argv[1]), int(sys.argv[2])
c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
c.request("GET", "/v1/models")
r = c.getresponse(); r.read()
assert r.status == 200 and (r.getheader("Connection") or "").lower() != "close", r.status
os.kill(pid, signal.SIGTERM)
time.sleep(0.3)
c.request("POST", "/v1/completions", body=b'{"prompt": "It", "max_tokens": 4}',
          headers={"Content-Type": "application/json", "Origin": "http://a.example"})
r = c.getresponse(); body = json.loads(r.read())
assert r.status == 503 and body["error"]["code"] == "server_stopping", (r.status, body)
assert r.getheader("Connection").lower() == "close" and r.getheader("Retry-After") == "1"
# an allowed origin is told so whatever the status: a page sees a 503 to retry, not a CORS failure
assert r.getheader("Access-Control-Allow-Origin") == "http://a.example", r.getheaders()
PYEOF
    exits_zero "$pid"
    rm -f "$T/ka.pid"
    wait "${work[@]}" || true
}

@test "a client that hangs up behind bytes it pipelined is seen gone: its queued request is cancelled" {
    start_server "$T" pipe -np 1 --queue 256 --log-json
    port=$(cat "$T/pipe.port")
    queue_work "$port" 60
    $PY - "$port" <<'PYEOF'
import socket, sys
body = b'{"prompt": "It", "max_tokens": 250, "temperature": 0, "stop": "@@@@"}'
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
          + body + b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
s.close()
PYEOF
    wait "${work[@]}"
    curl -s -o /dev/null --max-time 5 "http://127.0.0.1:$port/health"
    $PY -c 'import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
gone = [l for l in lines if l["status"] == 499]
assert len(gone) == 1 and gone[0]["completion_tokens"] == 0, lines
assert sum(1 for l in lines if l["status"] == 200 and l["path"] == "/v1/completions") == 60, lines' "$T/pipe.log"
}

@test "SIGTERM while the model loads stops the load there, exit 0" {
    # the model comes through a FIFO: the load waits for it, so the signal
    # is surely pending when its first step begins
    mkfifo "$T/model.fifo"
    bn-serve -m "$T/model.fifo" -t 1 --port 0 </dev/null >/dev/null 2>"$T/load.log" 3>&- &
    pid=$!
    for i in $(seq 100); do
        grep -q '^bn-serve: listening on ' "$T/load.log" && break
        sleep 0.1
    done
    kill -TERM "$pid"
    sleep 0.2
    cat "$D/tiny.bn" >"$T/model.fifo" 2>/dev/null || true # cut short when the load stops
    exits_zero "$pid"
    grep -q '^bn-serve: stopped while loading the model$' "$T/load.log"
    ! grep -q ' ready: ' "$T/load.log" || false
}

@test "a second SIGTERM cuts the drain short: the requests in flight are cancelled, exit 0" {
    start_server "$T" twice -np 1 --queue 256
    port=$(cat "$T/twice.port")
    pid=$(cat "$T/twice.pid")
    queue_work "$port" 120
    streams=()
    for i in 1 2 3; do # streamed, one running and two queued behind the rest
        curl -sN --max-time 60 --data-binary \
            '{"prompt": "It", "max_tokens": 250, "temperature": 0, "stop": "@@@@", "stream": true}' \
            "http://127.0.0.1:$port/v1/completions" >"$T/stream.$i" &
        streams+=($!)
    done
    sleep 0.2
    kill -TERM "$pid"
    sleep 0.3
    kill -TERM "$pid"
    start=$(date +%s%N)
    exits_zero "$pid"
    rm -f "$T/twice.pid"
    stopped=$(( ($(date +%s%N) - start) / 1000000 ))
    wait "${work[@]}" "${streams[@]}" || true
    grep -q '^bn-serve: stopped again: cancelling the [0-9]* requests in flight$' "$T/twice.log"
    echo "stopped ${stopped} ms after the second signal"
    [ "$stopped" -lt 3000 ]
    # the cancelled streams end with their error and [DONE] (stopping the daemon at once cut them)
    for i in 1 2 3; do
        grep -q '^data: {"error":{"message":"cancelled"' "$T/stream.$i" && grep -q '^data: \[DONE\]' "$T/stream.$i" ||
            { echo "stream $i:"; tail -c 300 "$T/stream.$i"; return 1; }
    done
}

@test "the default KV budget is bn-infer's for as many sequences; --kv-budget sets it" {
    for np in 3 1; do
        positions=$(bn-infer -m "$D/tiny.bn" -v --parallel $np -c 100 </dev/null 2>&1 |
            sed -n 's/.* bytes a position, \([0-9]*\) positions).*/\1/p')
        [ -n "$positions" ]
        start_server "$T" np$np -np $np -c 100
        blocks=$(curl -s --max-time 5 "http://127.0.0.1:$(cat "$T/np$np.port")/metrics" | sed -n 's/^bn_serve_kv_blocks //p')
        [ "$blocks" -eq $((positions / 64)) ] || { echo "-np $np: $blocks blocks, bn-infer $positions positions"; return 1; }
    done
    # with memory to spare (the tiny model), every sequence its whole context
    [ "$blocks" -eq 2 ]
    start_server "$T" small -np 3 -c 100 --kv-budget 300K
    grep -q ' ready: 3 sequences of 100 positions, KV budget ' "$T/small.log"
    [ "$(curl -s --max-time 5 "http://127.0.0.1:$(cat "$T/small.port")/metrics" | sed -n 's/^bn_serve_kv_blocks //p')" -eq 3 ]
    # a budget under one context (3 blocks of 64 against 256) cuts the
    # context, as bn-infer's does: an answer to its end is answered, not a
    # 500 once the blocks ran out; a longer prompt is refused as too long
    start_server "$T" cut -np 2 --kv-budget 300K
    grep -q 'note: --kv-budget 300.0 KiB holds 192 positions: the context is cut to 192' "$T/cut.log"
    grep -q ' ready: 2 sequences of 192 positions, ' "$T/cut.log"
    SRV_PORT=$(cat "$T/cut.port")
    api /v1/completions '{"prompt": "It", "max_tokens": -1, "temperature": 0, "stop": "@@@@"}'
    [ "$code" = 200 ] || { cat "$T/body"; return 1; }
    [ "$(field "$T/body" 'j["usage"]["total_tokens"]')" -eq 192 ]
    api /v1/completions "{\"prompt\": \"$(printf 'the %.0s' $(seq 200))\", \"max_tokens\": 1}"
    [ "$code" = 400 ]
    [ "$(field "$T/body" 'j["error"]["code"]')" = context_length_exceeded ]
    run bn-serve -m "$D/tiny.bn" --port 0 --kv-budget 1K
    [ "$status" -eq 1 ]
    [[ $output == *"less than one KV block"* ]]
}

@test "a K value beyond the f16 KV cache: that request gets a 500 that says so, the others their answers; --kv f32" {
    hot_tiny "$T/hot.bn" # " ladyship": its K beyond f16 (common.bash)
    SERVE_MODEL=$T/hot.bn start_server "$T" hot -np 2
    SRV_PORT=$(cat "$T/hot.port")
    complete 'Her ladyship said' 8 '{"temperature": 0}' >"$T/bad"
    complete "$P1" 16 '{"temperature": 0}' >"$T/good"
    for try in 1 2 3; do # side by side (in one pass or not), then one after the other
        curl -s --max-time 60 -o "$T/bad.body" -w '%{http_code}' -H 'Content-Type: application/json' \
            --data-binary "@$T/bad" "http://127.0.0.1:$SRV_PORT/v1/completions" >"$T/bad.code" &
        bg=$!
        [ $try -lt 3 ] || { wait $bg; bg=; }
        api /v1/completions "$(cat "$T/good")"
        [ -z "$bg" ] || wait $bg # (not every child: the servers are)
        [ "$code" = 200 ]
        field "$T/body" 'j["choices"][0]["text"] + "\n"' >"$T/served"
        bn-infer -m "$T/hot.bn" -p "$P1" --temp 0 -n 16 | cmp - "$T/served"
        [ "$(cat "$T/bad.code")" = 500 ]
        [[ $(field "$T/bad.body" 'j["error"]["message"]') == "position 2: layer 0: a K value ("*") is beyond the range of the f16 KV cache (65504): use f32 K/V" ]]
    done
    # streamed: an error event, then [DONE]
    api /v1/completions "$(complete 'Her ladyship said' 8 '{"temperature": 0, "stream": true}')" -N
    grep -q '^data: {"error":{"message":"position 2: layer 0: a K value' "$T/body"
    run curl -s --max-time 5 "http://127.0.0.1:$SRV_PORT/health"
    [ "$output" = '{"status":"ok"}' ]
    # --kv f32 holds it, and takes twice the bytes a block
    SERVE_MODEL=$T/hot.bn start_server "$T" f32 -np 2 --kv f32 -c 100
    SRV_PORT=$(cat "$T/f32.port")
    api /v1/completions "$(cat "$T/bad")"
    [ "$code" = 200 ]
    field "$T/body" 'j["choices"][0]["text"] + "\n"' >"$T/served"
    bn-infer -m "$T/hot.bn" -p 'Her ladyship said' --kv f32 --temp 0 -n 8 | cmp - "$T/served"
    positions=$(bn-infer -m "$T/hot.bn" -v --kv f32 --parallel 2 -c 100 </dev/null 2>&1 |
        sed -n 's/.*(f32, \([0-9]*\) bytes a position, .*/\1/p')
    [ "$positions" -eq 3072 ] # 2 x 6 layers x 2 KV heads x 32 x 4 bytes
    run bn-serve -m "$T/hot.bn" --kv f8
    [ "$status" -eq 2 ]
}

@test "usage errors exit 2; a model that cannot be opened, or a port in use, 1 with one line" {
    run bn-serve
    [ "$status" -eq 2 ]
    run bn-serve -m "$D/tiny.bn" --port 70000
    [ "$status" -eq 2 ]
    run bn-serve -m "$D/tiny.bn" --api-key k --api-key-file "$T/x"
    [ "$status" -eq 2 ]
    run bn-serve -m "$T/missing.bn" --port 0
    [ "$status" -eq 1 ]
    [[ $output == *"bn-serve: "*"missing.bn"* ]]
    run bn-serve -m "$D/tiny.bn" --draft "$T/missing.bn" --port 0
    [ "$status" -eq 1 ]
    [ "$output" = "bn-serve: $T/missing.bn: No such file or directory" ]
    run bn-serve -m - --port 0 </dev/null
    [ "$status" -eq 2 ]
    [[ $output == "bn-serve: -m: a server needs its model as a file"* ]]
    run bn-serve -m "$D/tiny.bn" --port "$PORT"
    [ "$status" -eq 1 ]
    [[ $output == "bn-serve: 127.0.0.1:$PORT: cannot listen"* ]]
    run bn-serve --version
    [ "$status" -eq 0 ]
}
