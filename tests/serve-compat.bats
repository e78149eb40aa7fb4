#!/usr/bin/env bats
# bn-serve's fit to what OpenAI's API and llama-server's clients send and
# expect (the review of bn 0.3.0): CORS preflights that OpenAI's JS SDK
# passes, log lines that stay one valid line whatever a request holds,
# /metrics counting only answered prompts, the answer's length as
# max_tokens, max_completion_tokens or llama-server's n_predict, llama-
# server's seed -1 and repeat_last_n, OpenAI's frequency_penalty range, param in
# every error, stream_options.include_usage, refusals of what bn would
# otherwise ignore, ids unique across processes, token-id prompts in an
# array, --alias. Every server started here listens on loopback and is
# stopped in teardown whatever happened.
load common
load serve-common

P1='It was a fine morning, and Elizabeth'

setup_file() { serve_suite -np 2 --queue 16; }

# refused PATH JSON PARAM [CODE]: a 400 whose error names PARAM (as
# OpenAI's "param" and in its message) and has CODE (default
# unsupported_parameter)
refused() {
    api "$1" "$2"
    [ "$code" = 400 ] || { echo "$2: status $code: $(cat "$T/body")"; return 1; }
    [ "$(field "$T/body" '[j["error"]["param"], j["error"]["code"]]')" = "[\"$3\", \"${4:-unsupported_parameter}\"]" ] ||
        { echo "$2: $(cat "$T/body")"; return 1; }
    [[ $(field "$T/body" 'j["error"]["message"]') == *"'$3'"* ]] || { cat "$T/body"; return 1; }
}

# text PATH JSON: the answer's text (a 200 is required)
text() {
    api "$1" "$2"
    [ "$code" = 200 ] || { echo "$2: status $code: $(cat "$T/body")" >&2; return 1; }
    field "$T/body" 'j["choices"][0].get("text") or j["choices"][0].get("message", {}).get("content", "")'
}

complete() { # prompt max_tokens [more JSON fields]: a completion request body
    $PY -c 'import json, sys
d = {"prompt": sys.argv[1], "max_tokens": int(sys.argv[2])}
d.update(json.loads(sys.argv[3] if len(sys.argv) > 3 else "{}"))
print(json.dumps(d))' "$@"
}

# The Fetch standard's CORS-preflight check (fetch.spec.whatwg.org, "CORS-
# preflight fetch", steps 7-8) of a request without credentials that sends
# the header names in $2 (comma-separated), against the preflight's
# Access-Control-Allow-Headers in $1: a wildcard * allows every name but
# Authorization, which must be named. Prints ok or the names refused.
preflight_passes() {
    $PY -c 'import sys
allowed = [h.strip().lower() for h in sys.argv[1].split(",") if h.strip()]
asked = [h.strip().lower() for h in sys.argv[2].split(",") if h.strip()]
bad = [h for h in asked if h not in allowed and (h == "authorization" or "*" not in allowed)]
print("ok" if not bad else "refused: " + " ".join(bad))' "$1" "$2"
}

@test "B1: a preflight allows the headers the page asks for, as OpenAI's JS SDK sends them (X-Stainless-*)" {
    start_server "$T" cors --api-key k --allow-origin http://a.example
    SRV_PORT=$(cat "$T/cors.port")
    # what the SDK's fetch in a browser puts in its preflight (lower case, sorted)
    asked='authorization,content-type,x-stainless-arch,x-stainless-lang,x-stainless-os,x-stainless-package-version,x-stainless-retry-count,x-stainless-runtime,x-stainless-runtime-version,x-stainless-timeout'
    curl -s --max-time 10 -X OPTIONS -D "$T/h" -o /dev/null -H 'Origin: http://a.example' \
        -H 'Access-Control-Request-Method: POST' -H "Access-Control-Request-Headers: $asked" \
        "http://127.0.0.1:$SRV_PORT/v1/chat/completions"
    grep -q '^HTTP/1.1 204 ' "$T/h"
    allow=$(tr -d '\r' <"$T/h" | sed -n 's/^[Aa]ccess-[Cc]ontrol-[Aa]llow-[Hh]eaders: //p')
    [ "$(preflight_passes "$allow" "$asked")" = ok ] || { cat "$T/h"; return 1; }
    # the answer depends on what was asked: caches must know
    tr -d '\r' <"$T/h" | grep -i '^vary:' | grep -qi 'access-control-request-headers'
    # names that are not header names are not echoed: the fixed list then
    curl -s --max-time 10 -X OPTIONS -D "$T/h" -o /dev/null -H 'Origin: http://a.example' \
        -H 'Access-Control-Request-Method: POST' -H 'Access-Control-Request-Headers: x-a;b, "c"' \
        "http://127.0.0.1:$SRV_PORT/v1/chat/completions"
    allow=$(tr -d '\r' <"$T/h" | sed -n 's/^[Aa]ccess-[Cc]ontrol-[Aa]llow-[Hh]eaders: //p')
    [ "$allow" = 'Authorization, Content-Type' ]
    # no Access-Control-Request-Headers: the headers a page needs for the API
    curl -s --max-time 10 -X OPTIONS -D "$T/h" -o /dev/null -H 'Origin: http://a.example' \
        -H 'Access-Control-Request-Method: POST' "http://127.0.0.1:$SRV_PORT/v1/chat/completions"
    [ "$(preflight_passes "$(tr -d '\r' <"$T/h" | sed -n 's/^[Aa]ccess-[Cc]ontrol-[Aa]llow-[Hh]eaders: //p')" \
        authorization,content-type)" = ok ]
}

# raw PORT METHOD PATH: one request on a socket, its status line printed
raw() {
    $PY -c 'import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(sys.argv[2].encode("latin-1") + b" " + sys.argv[3].encode("latin-1") + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
data = b""
while True:
    got = s.recv(4096)
    if not got:
        break
    data += got
print(data.split(b"\r\n")[0].decode("latin-1"))' "$@"
}

@test "B2: the log is one line a request, valid JSON with --log-json, whatever the method and path" {
    start_server "$T" lj --log-json
    start_server "$T" lt
    for name in lj lt; do
        port=$(cat "$T/$name.port")
        raw "$port" 'GE"T\\' /v1/x
        raw "$port" 'P\OST' '/v1/a"b\c'
        raw "$port" GET '/v1/%ff%0a%22%5c%01x'
        raw "$port" GET '/v1/caf%c3%a9'
        curl -s --max-time 5 -o /dev/null "http://127.0.0.1:$port/v1/models"
    done
    stop_server "$T" lj
    stop_server "$T" lt
    $PY -c 'import json, sys
lines = [l for l in open(sys.argv[1], "rb").read().split(b"\n") if l.startswith(b"{")]
objs = [json.loads(l.decode("utf-8")) for l in lines]
assert len(objs) == 5, objs
assert all(set(o) == {"method", "path", "status", "prompt_tokens", "completion_tokens", "ms"} for o in objs), objs
assert objs[-1]["path"] == "/v1/models" and objs[-1]["status"] == 200, objs
assert objs[3]["path"] == "/v1/caf\u00e9", objs[3]' "$T/lj.log"
    # the text log: a line of five fields each, no quote, backslash or control character
    $PY -c 'import re, sys
lines = [l for l in open(sys.argv[1], "rb").read().split(b"\n") if l.startswith(b"bn-serve: ") and b" ms" in l]
assert len(lines) == 5, lines
for l in lines:
    l.decode("utf-8")
    assert re.fullmatch(rb"bn-serve: [^ \"\\\x00-\x1f\x7f]+ [^ \"\\\x00-\x1f\x7f]+ \d+ prompt=\d+ completion=\d+ [0-9.]+ ms", l), l' "$T/lt.log"
}

@test "B4: framing a proxy could read otherwise is refused: two Content-Lengths, Content-Length with Transfer-Encoding, an unknown coding; HTTP/1.1 needs Host" {
    # each case: the raw request, then what must come back; nothing after
    # the refused request's headers is served (the log shows no smuggled GET)
    $PY - "$PORT" <<'PY'
import socket, sys
port = int(sys.argv[1])
def send(raw):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(raw)
    out = b""
    while True:
        got = s.recv(65536)
        if not got:
            break
        out += got
    s.close()
    return out
smuggle = b"GET /v1/smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
cases = [
    (b'POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Length: 16\r\nContent-Length: 57\r\n\r\n{"content":"hi"}' + smuggle,
     b"HTTP/1.1 400 ", b"Content-Length headers of different values"),
    (b'POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n' + smuggle,
     b"HTTP/1.1 400 ", b"both Content-Length and Transfer-Encoding"),
    (b"POST /tokenize HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nabcdef", b"HTTP/1.1 501 ", b"chunked"),
    (b"POST /tokenize HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", b"HTTP/1.1 501 ", b"chunked"),
    (b"GET /health HTTP/1.1\r\nConnection: close\r\n\r\n", b"HTTP/1.1 400 ", b"needs a Host header"),
    # what stays accepted: one length given twice alike, chunked, HTTP/1.0 without Host
    (b'POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Length: 16\r\nContent-Length: 16\r\nConnection: close\r\n\r\n{"content":"hi"}',
     b"HTTP/1.1 200 ", b'"tokens":'),
    (b'POST /tokenize HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n10\r\n{"content":"hi"}\r\n0\r\n\r\n',
     b"HTTP/1.1 200 ", b'"tokens":'),
    (b"GET /health HTTP/1.0\r\n\r\n", b"HTTP/1.1 200 ", b'"ok"'),
]
for raw, status, body in cases:
    got = send(raw)
    assert got.startswith(status) and body in got, (raw, got)
    assert b"\r\nHTTP/1." not in got, got  # one reply: the smuggled request not answered
PY
    ! grep -q smuggled "$D/main.log" || false
}

@test "B3: requests refused with 503 add no prompt tokens to /metrics, and log prompt 0" {
    start_server "$T" one -np 1 --queue 0 --log-json
    SRV_PORT=$(cat "$T/one.port")
    refused_while_busy '{"prompt": "Hi there", "max_tokens": 2}'
    curl -s --max-time 5 "http://127.0.0.1:$SRV_PORT/metrics" >"$T/metrics"
    $PY -c 'import json, re, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
refused = [l for l in lines if l["status"] == 503]
assert refused and all(l["prompt_tokens"] == 0 for l in refused), refused
answered = sum(l["prompt_tokens"] for l in lines if l["status"] != 503)
m = int(re.search(r"^bn_serve_prompt_tokens_total (\d+)$", open(sys.argv[2]).read(), re.M).group(1))
assert m == answered, (m, answered, lines)' "$T/one.log" "$T/metrics"
}

@test "C1: n_predict is max_tokens under llama-server's name; grammar, json_schema, a message's tool_calls and the like are refused" {
    api /v1/completions "$(complete "$P1" 3 '{"temperature": 0}')"
    want=$(field "$T/body" '[j["choices"][0]["text"], j["usage"]["completion_tokens"]]')
    api /v1/completions "{\"prompt\": \"$P1\", \"n_predict\": 3, \"temperature\": 0}"
    [ "$code" = 200 ]
    [ "$(field "$T/body" '[j["choices"][0]["text"], j["usage"]["completion_tokens"]]')" = "$want" ]
    api /v1/chat/completions '{"messages": [{"role": "user", "content": "Hi"}], "n_predict": 2}'
    [ "$code" = 200 ]
    [ "$(field "$T/body" 'j["usage"]["completion_tokens"]')" -le 2 ]
    # both, the same: taken; different: refused, naming both
    api /v1/completions "{\"prompt\": \"$P1\", \"n_predict\": 3, \"max_tokens\": 3, \"temperature\": 0}"
    [ "$code" = 200 ]
    refused /v1/completions "{\"prompt\": \"$P1\", \"n_predict\": 3, \"max_tokens\": 4}" n_predict invalid_value
    [[ $(field "$T/body" 'j["error"]["message"]') == *"'max_tokens'"* ]]
    refused /v1/chat/completions '{"messages": [{"role": "user", "content": "Hi"}], "n_predict": 3, "max_completion_tokens": 5}' \
        n_predict invalid_value
    # -1, llama-server's default: no limit but the context
    api /v1/completions '{"prompt": "Hi", "n_predict": -1, "temperature": 0, "stop": "@@@@"}'
    [ "$code" = 200 ]
    [ "$(field "$T/body" 'j["usage"]["total_tokens"]')" -eq 256 ] || [ "$(field "$T/body" 'j["choices"][0]["finish_reason"]')" = stop ]
    refused /v1/completions '{"prompt": "Hi", "n_predict": 0}' n_predict invalid_value
    refused /v1/completions '{"prompt": "Hi", "max_tokens": 2, "grammar": "root ::= \"yes\" | \"no\""}' grammar
    refused /v1/chat/completions '{"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2, "grammar": "root ::= \"a\""}' grammar
    refused /v1/completions '{"prompt": "Hi", "max_tokens": 2, "json_schema": {"type": "object"}}' json_schema
    refused /v1/chat/completions '{"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2, "json_schema": {}}' json_schema
    refused /v1/completions '{"prompt": "Hi", "max_tokens": 2, "ignore_eos": true}' ignore_eos
    refused /v1/completions '{"prompt": "Hi", "max_tokens": 2, "n_probs": 3}' n_probs
    # llama-server's other samplers, away from the value that leaves the draw alone
    refused /v1/completions '{"prompt": "Hi", "max_tokens": 2, "mirostat": 2}' mirostat
    refused /v1/completions '{"prompt": "Hi", "max_tokens": 2, "typical_p": 0.5}' typical_p
    refused /v1/chat/completions '{"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2, "dry_multiplier": 0.8}' dry_multiplier
    refused /v1/completions '{"prompt": "Hi", "max_tokens": 2, "xtc_probability": 0.5}' xtc_probability
    # an assistant's earlier tool calls: refused, not left out of the conversation; none (an empty list) taken
    refused /v1/chat/completions '{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": null,
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "user", "content": "Go on"}], "max_tokens": 2}' 'messages[1].tool_calls'
    refused /v1/chat/completions '{"messages": [{"role": "assistant", "content": "", "function_call": {"name": "f",
        "arguments": "{}"}}, {"role": "user", "content": "Hi"}], "max_tokens": 2}' 'messages[0].function_call'
    api /v1/chat/completions '{"messages": [{"role": "assistant", "content": "Yes.", "tool_calls": []},
        {"role": "user", "content": "Hi"}], "max_tokens": 2}'
    [ "$code" = 200 ]
    # what asks for nothing is taken
    api /v1/completions '{"prompt": "Hi", "max_tokens": 2, "grammar": "", "json_schema": null, "ignore_eos": false, "n_probs": 0,
        "mirostat": 0, "typical_p": 1, "tfs_z": 1, "dry_multiplier": 0, "xtc_probability": 0, "dynatemp_range": 0, "top_n_sigma": -1}'
    [ "$code" = 200 ]
}

@test "C2: seed -1 is a random one, another negative one fixed; the whole int64 and uint64 range is taken" {
    for s in -1 -9223372036854775808 0 9007199254740993 18446744073709551615; do
        api /v1/completions "{\"prompt\": \"$P1\", \"max_tokens\": 4, \"seed\": $s}"
        [ "$code" = 200 ] || { echo "seed $s: $(cat "$T/body")"; return 1; }
    done
    # a large seed repeats its answer; -1 gives different ones
    big="{\"prompt\": \"$P1\", \"max_tokens\": 16, \"temperature\": 1, \"seed\": 18446744073709551615}"
    [ "$(text /v1/completions "$big")" = "$(text /v1/completions "$big")" ]
    for i in 1 2 3 4; do
        text /v1/completions "{\"prompt\": \"$P1\", \"max_tokens\": 16, \"temperature\": 1, \"seed\": -1}"
        echo
    done | sort -u >"$T/texts"
    [ "$(wc -l <"$T/texts")" -gt 1 ]
    # -42 is a seed as OpenAI takes it: the same answer every time
    neg="{\"prompt\": \"$P1\", \"max_tokens\": 16, \"temperature\": 1, \"seed\": -42}"
    [ "$(text /v1/completions "$neg")" = "$(text /v1/completions "$neg")" ]
    refused /v1/completions '{"prompt": "x", "seed": 1.5}' seed invalid_type
    refused /v1/completions '{"prompt": "x", "seed": 36893488147419103232}' seed invalid_value
    refused /v1/completions '{"prompt": "x", "seed": -9223372036854777856}' seed invalid_value
}

@test "C4: stream_options.include_usage: a last chunk with no choices and the usage, usage null before it" {
    for ep in completions chat/completions; do
        if [ $ep = completions ]; then req="{\"prompt\": \"$P1\""; else req='{"messages": [{"role": "user", "content": "Hi"}]'; fi
        req="$req, \"max_tokens\": 6, \"temperature\": 0, \"stream\": true"
        api /v1/$ep "$req, \"stream_options\": {\"include_usage\": true}}" -N
        [ "$code" = 200 ]
        $PY -c 'import json, sys
ev = [e for e in open(sys.argv[1], encoding="utf-8").read().split("\n\n") if e]
assert ev[-1] == "data: [DONE]", ev
ch = [json.loads(e[6:]) for e in ev[:-1]]
last = ch[-1]
assert last["choices"] == [] and last["usage"]["completion_tokens"] >= 1, last
assert last["usage"]["total_tokens"] == last["usage"]["prompt_tokens"] + last["usage"]["completion_tokens"], last
assert all("usage" in c and c["usage"] is None for c in ch[:-1]), ch
assert ch[-2]["choices"][0]["finish_reason"] in ("stop", "length"), ch[-2]
assert len({c["id"] for c in ch}) == 1, ch' "$T/body"
        # include_usage false: no usage anywhere, as OpenAI
        api /v1/$ep "$req, \"stream_options\": {\"include_usage\": false}}" -N
        [ "$code" = 200 ]
        ! grep -q '"usage"' "$T/body" || false
        # without stream_options, as before: the usage on the chunk with the finish reason (llama-server's)
        api /v1/$ep "$req}" -N
        $PY -c 'import json, sys
ev = [e for e in open(sys.argv[1], encoding="utf-8").read().split("\n\n") if e]
ch = [json.loads(e[6:]) for e in ev[:-1]]
assert ch[-1]["choices"][0]["finish_reason"] and ch[-1]["usage"]["completion_tokens"] >= 1, ch[-1]
assert all("usage" not in c for c in ch[:-1]), ch' "$T/body"
    done
    refused /v1/completions '{"prompt": "x", "stream": true, "stream_options": {"include_usage": 1}}' \
        stream_options.include_usage invalid_type
    refused /v1/completions '{"prompt": "x", "stream": true, "stream_options": 3}' stream_options invalid_type
    # as OpenAI: only for a stream
    refused /v1/chat/completions '{"messages": [{"role": "user", "content": "Hi"}], "stream_options": {"include_usage": true}}' \
        stream_options invalid_value
    api /v1/completions '{"prompt": "x", "max_tokens": 2, "stream_options": null}'
    [ "$code" = 200 ]
}

@test "C5: repeat_last_n as llama-server's: 0 turns the penalties off, -1 is the whole context" {
    plain=$(text /v1/completions "$(complete "$P1" 40 '{"temperature": 0}')")
    pen=$(text /v1/completions "$(complete "$P1" 40 '{"temperature": 0, "repeat_penalty": 1.5}')")
    [ "$plain" != "$pen" ] # else the test shows nothing
    [ "$(text /v1/completions "$(complete "$P1" 40 '{"temperature": 0, "repeat_penalty": 1.5, "repeat_last_n": 0}')")" = "$plain" ]
    [ "$(text /v1/completions "$(complete "$P1" 40 '{"temperature": 0, "presence_penalty": 1.5, "repeat_last_n": 0}')")" = "$plain" ]
    # -1: every token so far, bn-infer's --repeat-last-n 0
    text /v1/completions "$(complete "$P1" 40 '{"temperature": 0, "repeat_penalty": 1.5, "repeat_last_n": -1}')" >"$T/all"
    printf '\n' >>"$T/all"
    bn-infer -m "$D/tiny.bn" -p "$P1" --temp 0 -n 40 --repeat-penalty 1.5 --repeat-last-n 0 >"$T/infer"
    cmp "$T/all" "$T/infer"
    refused /v1/completions '{"prompt": "x", "repeat_last_n": -2}' repeat_last_n invalid_value
}

@test "C6: frequency_penalty takes OpenAI's -2..2, added to presence_penalty; beside repeat_penalty both apply" {
    for f in -2 -1.5 2; do
        api /v1/completions "$(complete "$P1" 4 "{\"frequency_penalty\": $f}")"
        [ "$code" = 200 ] || { echo "$f: $(cat "$T/body")"; return 1; }
    done
    refused /v1/completions '{"prompt": "x", "frequency_penalty": 2.5}' frequency_penalty invalid_value
    refused /v1/completions '{"prompt": "x", "frequency_penalty": -2.01}' frequency_penalty invalid_value
    freq=$(text /v1/completions "$(complete "$P1" 40 '{"temperature": 0, "frequency_penalty": 1.5}')")
    [ "$freq" != "$(text /v1/completions "$(complete "$P1" 40 '{"temperature": 0}')")" ]
    [ "$freq" = "$(text /v1/completions "$(complete "$P1" 40 '{"temperature": 0, "presence_penalty": 1.5}')")" ]
    [ "$(text /v1/completions "$(complete "$P1" 40 '{"temperature": 0, "frequency_penalty": 0.5, "presence_penalty": 1}')")" = "$freq" ]
    # with repeat_penalty: both, as bn-infer --repeat-penalty with --presence-penalty
    text /v1/completions "$(complete "$P1" 40 '{"temperature": 0, "frequency_penalty": 1, "repeat_penalty": 1.3}')" >"$T/both"
    printf '\n' >>"$T/both"
    bn-infer -m "$D/tiny.bn" -p "$P1" --temp 0 -n 40 --repeat-penalty 1.3 --presence-penalty 1 >"$T/infer"
    cmp "$T/both" "$T/infer"
}

@test "C7: every error object has param: the field when there is one, else null" {
    api /v1/completions '{"prompt": "x", "temperature": "hot"}'
    [ "$(field "$T/body" 'list(j["error"])')" = '["message", "type", "param", "code"]' ]
    [ "$(field "$T/body" 'j["error"]["param"]')" = temperature ]
    api /v1/chat/completions '{"messages": [{"role": "user", "content": 5}]}'
    [ "$(field "$T/body" 'j["error"]["param"]')" = 'messages[0].content' ]
    long=$($PY -c 'print(", ".join(["7"] * 300))')
    api /v1/completions "{\"prompt\": [$long]}"
    [ "$(field "$T/body" '[j["error"]["code"], j["error"]["param"]]')" = '["context_length_exceeded", "prompt"]' ]
    api /v1/chat/completions "{\"messages\": [{\"role\": \"user\", \"content\": \"$($PY -c 'print("word " * 400)')\"}]}"
    [ "$(field "$T/body" '[j["error"]["code"], j["error"]["param"]]')" = '["context_length_exceeded", "messages"]' ]
    for req in '{"prompt": "x", ' '{"prompt": "x", "model": "gpt-4"}'; do
        api /v1/completions "$req"
        [ "$(field "$T/body" 'j["error"]["param"]')" = null ] || { cat "$T/body"; return 1; }
    done
    api /v1/nothing '{}'
    [ "$code" = 404 ]
    [ "$(field "$T/body" 'j["error"]["param"]')" = null ]
    api /v1/completions '' -G
    [ "$code" = 405 ]
    [ "$(field "$T/body" 'j["error"]["param"]')" = null ]
}

@test "C8: what bn cannot do is refused, not ignored: tool_choice, best_of, modalities; top_logprobs alone" {
    chat='{"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2'
    refused /v1/chat/completions "$chat, \"tool_choice\": \"required\"}" tool_choice
    refused /v1/chat/completions "$chat, \"tool_choice\": {\"type\": \"function\", \"function\": {\"name\": \"f\"}}}" tool_choice
    refused /v1/chat/completions "$chat, \"tools\": [], \"tool_choice\": \"required\"}" tool_choice
    refused /v1/chat/completions "$chat, \"function_call\": {\"name\": \"f\"}}" function_call
    refused /v1/chat/completions "$chat, \"top_logprobs\": 3}" top_logprobs invalid_value
    refused /v1/completions '{"prompt": "a", "max_tokens": 2, "best_of": 3}' best_of
    refused /v1/chat/completions "$chat, \"modalities\": [\"text\", \"audio\"]}" modalities
    refused /v1/chat/completions "$chat, \"modalities\": \"text\"}" modalities invalid_type
    # what asks for nothing bn lacks is taken
    for extra in '"tool_choice": "none"' '"tool_choice": "auto"' '"function_call": "none"' '"logprobs": false' \
        '"logprobs": null' '"top_logprobs": 0' '"modalities": ["text"]'; do
        api /v1/chat/completions "$chat, $extra}"
        [ "$code" = 200 ] || { echo "$extra: $(cat "$T/body")"; return 1; }
    done
    api /v1/completions '{"prompt": "a", "max_tokens": 2, "best_of": 1, "logprobs": null}'
    [ "$code" = 200 ]
}

@test "C9: ids are unique across server processes; /v1/models' created stays the model file's time" {
    # two fresh servers: each one's first answers
    start_server "$T" first
    start_server "$T" second
    for port in "$(cat "$T/first.port")" "$(cat "$T/first.port")" "$(cat "$T/second.port")"; do
        SRV_PORT=$port api /v1/completions '{"prompt": "Hi", "max_tokens": 1}'
        field "$T/body" 'j["id"]'
        echo
        SRV_PORT=$port api /v1/chat/completions '{"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1}'
        field "$T/body" 'j["id"]'
        echo
    done >"$T/ids"
    [ "$(sort -u "$T/ids" | wc -l)" -eq 6 ] || { cat "$T/ids"; return 1; }
    grep -c '^cmpl-' "$T/ids" | grep -qx 3
    grep -c '^chatcmpl-' "$T/ids" | grep -qx 3
    curl -s --max-time 5 "http://127.0.0.1:$PORT/v1/models" >"$T/a"
    sleep 1.1
    curl -s --max-time 5 "http://127.0.0.1:$PORT/v1/models/tiny.bn" >"$T/b"
    [ "$(field "$T/a" 'j["data"][0]["created"]')" -eq "$(stat -c %Y "$D/tiny.bn")" ]
    [ "$(field "$T/b" 'j["created"]')" -eq "$(stat -c %Y "$D/tiny.bn")" ]
}

@test "C3: a prompt may be an array holding one array of token ids" {
    ids=$(printf '%s' "$P1" | bn-tokenize -m "$D/tiny.bn" | xargs | tr ' ' ',')
    want=$(text /v1/completions "{\"prompt\": [$ids], \"max_tokens\": 12, \"temperature\": 0}")
    [ "$(text /v1/completions "{\"prompt\": [[$ids]], \"max_tokens\": 12, \"temperature\": 0}")" = "$want" ]
    [ "$(text /v1/completions "{\"prompt\": \"$P1\", \"max_tokens\": 12, \"temperature\": 0}")" = "$want" ]
    refused /v1/completions "{\"prompt\": [[$ids], [$ids]]}" prompt
    api /v1/completions '{"prompt": [[1, "a"]]}'
    [ "$code" = 400 ]
    [ "$(field "$T/body" 'j["error"]["param"]')" = prompt ]
}

@test "--chat-encoding whole: chat messages tokenized as Hugging Face's template does, split the default" {
    start_server "$T" whole --chat-encoding whole
    for enc in split whole; do
        [ $enc = whole ] && SRV_PORT=$(cat "$T/whole.port") || SRV_PORT=$PORT
        api /v1/chat/completions '{"messages": [{"role": "system", "content": "You are Emma."}, {"role": "user", "content": "Good morning, how is your sister?"}], "max_tokens": 8, "temperature": 0}'
        [ "$code" = 200 ]
        printf 'system: You are Emma.\nuser: Good morning, how is your sister?\n' |
            bn-tokenize -m "$D/tiny.bn" --chat --chat-encoding $enc -c >"$T/n.$enc"
        [ "$(field "$T/body" 'j["usage"]["prompt_tokens"]')" = "$(cat "$T/n.$enc")" ]
    done
    ! cmp -s "$T/n.split" "$T/n.whole" || false
}

@test "--alias NAME: the model's name in the API" {
    start_server "$T" alias --alias gpt-4o-mini
    SRV_PORT=$(cat "$T/alias.port")
    curl -s --max-time 5 "http://127.0.0.1:$SRV_PORT/v1/models" >"$T/models"
    [ "$(field "$T/models" '[m["id"] for m in j["data"]]')" = '["gpt-4o-mini"]' ]
    api /v1/chat/completions '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}'
    [ "$code" = 200 ]
    [ "$(field "$T/body" 'j["model"]')" = gpt-4o-mini ]
    api /v1/completions '{"model": "tiny.bn", "prompt": "Hi", "max_tokens": 2}'
    [ "$code" = 404 ]
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$SRV_PORT/v1/models/gpt-4o-mini")" = 200 ]
    grep -q ' gpt-4o-mini ready: ' "$T/alias.log"
    for bad in '' 'a b' 'what?' 'x#y' '50%' "$(printf 'n%.0s' $(seq 97))"; do
        run bn-serve -m "$D/tiny.bn" --alias "$bad"
        [ "$status" -eq 2 ]
        [[ $output == *"--alias"*"not a name"* ]]
    done
}

@test "without --alias the name is the file's or directory's own, also given as dir/ or ./; a longer one than the API takes is refused" {
    mkdir -p "$T/d"
    cp "$D/tiny.bn" "$T/d/tiny.bn"
    (cd "$T/d" && SERVE_MODEL=tiny.bn start_server "$T" file) # (the relative path as given)
    for how in "$TINY/" "$TINY//" "$TINY"; do
        SERVE_MODEL=$how start_server "$T" dir
        SRV_PORT=$(cat "$T/dir.port")
        curl -s --max-time 5 "http://127.0.0.1:$SRV_PORT/v1/models" >"$T/models"
        [ "$(field "$T/models" '[m["id"] for m in j["data"]]')" = '["tiny-bitnet"]' ] || { cat "$T/models"; return 1; }
        [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$SRV_PORT/v1/models/tiny-bitnet")" = 200 ]
        stop_server "$T" dir
    done
    # a link keeps its own name (a "current" link to the model in use)
    ln -s "$TINY" "$T/current"
    SERVE_MODEL=$T/current/ start_server "$T" link
    SRV_PORT=$(cat "$T/link.port")
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$SRV_PORT/v1/models/current")" = 200 ]
    stop_server "$T" link
    (cd "$TINY" && SERVE_MODEL=./ start_server "$T" dot)
    SRV_PORT=$(cat "$T/dot.port")
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$SRV_PORT/v1/models/tiny-bitnet")" = 200 ]
    SRV_PORT=$(cat "$T/file.port")
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$SRV_PORT/v1/models/tiny.bn")" = 200 ]
    long=$T/$(printf 'n%.0s' $(seq 97)).bn
    ln -s "$D/tiny.bn" "$long"
    run bn-serve -m "$long"
    [ "$status" -eq 2 ]
    [[ ${lines[0]} == "bn-serve: the model's file name is 100 bytes, more than a name in the API may have (96): name it with --alias NAME" ]]
}

@test "--alias refuses Unicode blanks, C1 controls and what is not UTF-8, in one line; other UTF-8 is a name" {
    # U+00A0, U+3000, U+2028, U+FEFF, U+200B, U+202E, U+061C, U+FE0F; U+0085 (C1); a lone byte, a surrogate, a newline
    for bad in "$(printf 'gpt\xd8\x9cx')" "$(printf 'gpt\xef\xb8\x8fx')" "$(printf 'gpt\xe2\x80\x8bx')" "$(printf 'gpt\xe2\x80\xaex')" "$(printf 'gpt\xc2\xa0x')" "$(printf 'gpt\xe3\x80\x80x')" "$(printf 'a\xe2\x80\xa8b')" \
        "$(printf '\xef\xbb\xbfgpt')" "$(printf 'a\xc2\x85b')" "$(printf 'a\xffb')" "$(printf 'a\xed\xa0\x80b')" \
        "$(printf 'a\nb')"; do
        # (were it taken, the server would start: on loopback, stopped by timeout)
        run timeout 10 bn-serve -m "$D/tiny.bn" --port 0 --alias "$bad"
        [ "$status" -eq 2 ]
        [[ ${lines[0]} == "bn-serve: --alias: not a name: byte "* ]] || { echo "$output"; return 1; }
        # the error names the byte, never echoes the name: one line, then the hint
        [ "${#lines[@]}" -eq 2 ]
        [[ ${lines[1]} == "Try 'bn-serve --help'"* ]]
    done
    start_server "$T" utf8 --alias 'modèle-ß'
    SRV_PORT=$(cat "$T/utf8.port")
    curl -s --max-time 5 "http://127.0.0.1:$SRV_PORT/v1/models" >"$T/models"
    [ "$(field "$T/models" '[m["id"] == "mod\u00e8le-\u00df" for m in j["data"]]')" = '[true]' ]
    api /v1/chat/completions '{"model": "modèle-ß", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}'
    [ "$code" = 200 ]
    [ "$(field "$T/body" 'j["model"] == "mod\u00e8le-\u00df"')" = true ]
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$SRV_PORT/v1/models/mod%C3%A8le-%C3%9F")" = 200 ]
}

@test "C10: max_tokens, max_completion_tokens and n_predict: two that differ are refused; -1 is no limit; 0 is refused" {
    chat='"messages": [{"role": "user", "content": "Hi"}], "temperature": 0'
    # the same value under two or three names: taken
    api /v1/chat/completions "{$chat, \"max_tokens\": 3, \"max_completion_tokens\": 3, \"n_predict\": 3}"
    [ "$code" = 200 ]
    [ "$(field "$T/body" 'j["usage"]["completion_tokens"]')" -le 3 ]
    # different: refused, naming max_tokens (as OpenAI) and the other
    refused /v1/chat/completions "{$chat, \"max_tokens\": 3, \"max_completion_tokens\": 4}" max_tokens invalid_value
    [[ $(field "$T/body" 'j["error"]["message"]') == *"'max_completion_tokens'"* ]]
    refused /v1/completions '{"prompt": "Hi", "max_tokens": 3, "max_completion_tokens": 5}' max_tokens invalid_value
    refused /v1/chat/completions "{$chat, \"max_tokens\": 3, \"max_completion_tokens\": 3, \"n_predict\": 4}" \
        n_predict invalid_value
    # max_completion_tokens on /v1/completions too (llama-server's alias): a limit, not ignored
    api /v1/completions "$(complete "$P1" 3 '{"temperature": 0}')"
    want=$(field "$T/body" '[j["choices"][0]["text"], j["usage"]["completion_tokens"]]')
    api /v1/completions "{\"prompt\": \"$P1\", \"max_completion_tokens\": 3, \"temperature\": 0}"
    [ "$code" = 200 ]
    [ "$(field "$T/body" '[j["choices"][0]["text"], j["usage"]["completion_tokens"]]')" = "$want" ]
    # -1 (llama-server's no limit) under every name: the context or a stop ends the answer
    api /v1/completions '{"prompt": "Hi", "max_tokens": -1, "n_predict": -2, "temperature": 0, "stop": "@@@@"}'
    [ "$code" = 200 ] || { cat "$T/body"; return 1; }
    [ "$(field "$T/body" 'j["usage"]["total_tokens"]')" -eq 256 ] || [ "$(field "$T/body" 'j["choices"][0]["finish_reason"]')" = stop ]
    api /v1/chat/completions "{$chat, \"max_completion_tokens\": -1, \"stop\": \"@@@@\"}"
    [ "$code" = 200 ] || { cat "$T/body"; return 1; }
    [ "$(field "$T/body" 'j["usage"]["total_tokens"]')" -eq 256 ] || [ "$(field "$T/body" 'j["choices"][0]["finish_reason"]')" = stop ]
    # 0 (OpenAI refuses it), another negative number, too many: refused, naming the field
    for name in max_tokens max_completion_tokens n_predict; do
        for v in 0 -3 1000000001; do
            refused /v1/chat/completions "{$chat, \"$name\": $v}" $name invalid_value
            [[ $(field "$T/body" 'j["error"]["message"]') == *"must be -1 (no limit) or between 1 and 1000000000" ]]
        done
    done
    refused /v1/completions '{"prompt": "Hi", "max_tokens": -2}' max_tokens invalid_value
    refused /v1/completions '{"prompt": "Hi", "max_tokens": 2.5}' max_tokens invalid_type
}

@test "C11: OpenAI's required fields: a chat choice's logprobs, its message's refusal, null; on every chunk too" {
    chat='{"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3, "temperature": 0'
    api /v1/chat/completions "$chat}"
    [ "$code" = 200 ]
    [ "$(field "$T/body" '[list(j["choices"][0]), j["choices"][0]["logprobs"], j["choices"][0]["message"]["refusal"]]')" = \
        '[["index", "message", "logprobs", "finish_reason"], null, null]' ]
    curl -sN --max-time 60 --data-binary "$chat, \"stream\": true}" "http://127.0.0.1:$PORT/v1/chat/completions" >"$T/sse"
    $PY -c 'import json, sys
ch = [json.loads(l[6:]) for l in open(sys.argv[1]) if l.startswith("data: {")]
assert len(ch) >= 2, ch
for c in ch:
    assert "logprobs" in c["choices"][0] and c["choices"][0]["logprobs"] is None, c' "$T/sse"
    api /v1/completions '{"prompt": "Hi", "max_tokens": 2}'
    [ "$(field "$T/body" 'list(j["choices"][0])')" = '["index", "text", "logprobs", "finish_reason"]' ]
}

@test "C12: a name given twice in an object is refused, not read as the first (Python and JS take the last)" {
    refused /v1/completions '{"prompt": "Hi", "max_tokens": 1, "max_tokens": 100}' max_tokens invalid_value
    refused /v1/chat/completions '{"messages": [{"role": "user", "role": "system", "content": "x"}]}' role invalid_value
    refused /tokenize '{"content": "a", "content": "b"}' content invalid_value
    # many names (sorted, not compared pairwise): one twice among them is found, none twice is taken
    $PY -c 'print("{" + "".join("\"k%d\": 1, " % i for i in range(50000)) + "\"prompt\": \"Hi\", \"max_tokens\": 1}")' >"$T/many"
    api /v1/completions "@$T/many"
    [ "$code" = 200 ] || { head -c 300 "$T/body"; return 1; }
    sed 's/"prompt"/"k7": 2, "prompt"/' "$T/many" >"$T/twice"
    api /v1/completions "@$T/twice"
    [ "$code" = 400 ]
    [ "$(field "$T/body" 'j["error"]["param"]')" = k7 ]
}

@test "C13: an unpaired surrogate escape is named as such; /detokenize's error names 'tokens'; 405's Allow has HEAD" {
    for s in '\ud800' '\udc00' 'a\ud83db'; do
        api /v1/completions "{\"prompt\": \"$s\", \"max_tokens\": 1}"
        [ "$code" = 400 ] || { cat "$T/body"; return 1; }
        [ "$(field "$T/body" 'j["error"]["code"]')" = invalid_encoding ] || { cat "$T/body"; return 1; }
        [[ $(field "$T/body" 'j["error"]["message"]') == *surrogate* ]] || { cat "$T/body"; return 1; }
    done
    # a pair, and an escaped backslash before "ud800", are text
    api /v1/completions '{"prompt": "a\ud83d\ude00 \\ud800", "max_tokens": 1}'
    [ "$code" = 200 ] || { cat "$T/body"; return 1; }
    refused /detokenize '{"tokens": [1, 99999]}' tokens invalid_value
    for p in /health /v1/models /metrics /v1/models/x; do
        curl -s -o /dev/null -D "$T/h" -X POST "http://127.0.0.1:$PORT$p"
        grep -qi '^Allow: GET, HEAD' "$T/h" || { echo "$p"; cat "$T/h"; return 1; }
    done
}

@test "C14: /tokenize with_pieces: each id with its piece, text or (part of a character) its bytes, as llama-server" {
    api /tokenize '{"content": "It was a fine morning \u00e9\u20ac", "with_pieces": true}'
    [ "$code" = 200 ] || { cat "$T/body"; return 1; }
    cp "$T/body" "$T/pieces"
    api /tokenize '{"content": "It was a fine morning \u00e9\u20ac"}'
    $PY - "$T/pieces" "$T/body" <<'PYEOF'
import json, sys
pieces = json.load(open(sys.argv[1]))["tokens"]
plain = json.load(open(sys.argv[2]))["tokens"]
assert [p["id"] for p in pieces] == plain, (pieces, plain)
raw = b"".join(p["piece"].encode() if isinstance(p["piece"], str) else bytes(p["piece"]) for p in pieces)
assert raw == "It was a fine morning \u00e9\u20ac".encode(), raw
assert any(isinstance(p["piece"], list) for p in pieces), pieces  # the tiny vocabulary splits these characters
assert all(isinstance(p["piece"], str) for p in pieces[:5]), pieces
PYEOF
    refused /tokenize '{"content": "a", "with_pieces": 1}' with_pieces invalid_type
}

@test "C15: an absolute-form request target (as through a proxy) is answered as its path" {
    curl -s --max-time 30 -o "$T/body" --request-target "http://127.0.0.1:$PORT/v1/models" "http://127.0.0.1:$PORT/"
    [ "$(field "$T/body" 'j["data"][0]["object"]')" = model ]
    code=$(curl -s --max-time 60 -o "$T/body" -w '%{http_code}' --request-target "HTTP://localhost/v1/completions" \
        --data-binary '{"prompt": "Hi", "max_tokens": 1}' "http://127.0.0.1:$PORT/")
    [ "$code" = 200 ] || { cat "$T/body"; return 1; }
}

# logprobs_ref IDS_FILE N_PROMPT TOP: each generated token's log
# probability and the TOP likeliest (id, log probability) of its row, from
# bn-infer --logits over the prompt and the answer (every position's raw
# logits, f32) and numpy's log-softmax in float64: one JSON list.
logprobs_ref() {
    bn-infer -m "$BATS_FILE_TMPDIR/tiny.bn" --logits "$T/ref.f32" -n 0 <"$1" >/dev/null
    $PY - "$T/ref.f32" "$1" "$2" "$3" <<'PYEOF'
import json, sys
import numpy as np
ids = [int(x) for x in open(sys.argv[2]).read().split()]
n_prompt, top = int(sys.argv[3]), int(sys.argv[4])
lg = np.fromfile(sys.argv[1], dtype="<f4").reshape(len(ids), -1).astype(np.float64)
out = []
for p in range(n_prompt - 1, len(ids) - 1):
    row = lg[p]
    lsm = row - (row.max() + np.log(np.exp(row - row.max()).sum()))
    order = np.argsort(-lg[p], kind="stable")[:top]
    out.append([ids[p + 1], lsm[ids[p + 1]], [[int(i), lsm[i]] for i in order]])
print(json.dumps(out))
PYEOF
}

@test "C16: logprobs: each token's log probability and top_logprobs as numpy computes them from the model's logits; the same with lookup, streamed, in chat" {
    # a completion: the tokens of the answer after the prompt's
    api /v1/completions "$(complete "$P1" 12 '{"temperature": 0, "logprobs": 3}')"
    [ "$code" = 200 ] || { cat "$T/body"; return 1; }
    cp "$T/body" "$T/plain.json"
    # the prompt's ids as the server reads it, the answer's as bn-infer gives them (greedy: the same)
    api /tokenize "{\"content\": \"$P1\", \"add_special\": true}"
    field "$T/body" '" ".join(str(i) for i in j["tokens"])' >"$T/prompt.ids"
    bn-infer -m "$BATS_FILE_TMPDIR/tiny.bn" -n 12 --temp 0 <"$T/prompt.ids" >"$T/answer.ids"
    [ "$(bn-tokenize -d -m "$BATS_FILE_TMPDIR/tiny.bn" <"$T/answer.ids")" = "$(field "$T/plain.json" 'j["choices"][0]["text"]')" ]
    np=$(wc -w <"$T/prompt.ids")
    echo "$(cat "$T/prompt.ids") $(cat "$T/answer.ids")" >"$T/all.ids"
    logprobs_ref "$T/all.ids" "$np" 3 >"$T/ref.json"
    $PY - "$T/plain.json" "$T/ref.json" <<'PYEOF'
import json, sys
j = json.load(open(sys.argv[1]))["choices"][0]
ref = json.load(open(sys.argv[2]))
lp = j["logprobs"]
assert len(lp["tokens"]) == len(ref) == 12, (len(lp["tokens"]), len(ref))
assert "".join(lp["tokens"]) == j["text"], (lp["tokens"], j["text"])
offs = [0]
for t in lp["tokens"][:-1]:
    offs.append(offs[-1] + len(t.encode()))
assert lp["text_offset"] == offs, (lp["text_offset"], offs)
for k, (tok, want, top) in enumerate(ref):
    assert abs(lp["token_logprobs"][k] - want) < 1e-5, (k, lp["token_logprobs"][k], want)
    # greedy: the token is the likeliest, and the alternatives are the row's next two
    assert top[0][0] == tok
    got = list(lp["top_logprobs"][k].values())
    assert len(got) == 3 and all(abs(g - w[1]) < 1e-5 for g, w in zip(got, top)), (k, got, top)
PYEOF
    # with prompt lookup: the same rows, so the same values, bit for bit
    api /v1/completions "$(complete "$P1" 12 '{"temperature": 0, "logprobs": 3, "lookup": 2}')"
    [ "$(field "$T/body" 'j["choices"][0]["logprobs"]')" = "$(field "$T/plain.json" 'j["choices"][0]["logprobs"]')" ]
    # a stop string that never matches holds back every comma until the next token: the same offsets
    api /v1/completions "$(complete "$P1" 12 '{"temperature": 0, "logprobs": 3, "stop": [", qqq", "\u00e9qq"]}')"
    [ "$(field "$T/body" 'j["choices"][0]["logprobs"]')" = "$(field "$T/plain.json" 'j["choices"][0]["logprobs"]')" ]
    # top_logprobs is chat's: refused on a completion, with logprobs false too
    refused /v1/completions '{"prompt": "a", "max_tokens": 2, "logprobs": 2, "top_logprobs": 2}' top_logprobs
    refused /v1/completions '{"prompt": "a", "max_tokens": 2, "logprobs": false, "top_logprobs": 2}' top_logprobs
    # streamed: the chunks' logprobs joined are the whole answer's
    curl -sN --max-time 60 -H 'Content-Type: application/json' \
        --data-binary "$(complete "$P1" 12 '{"temperature": 0, "logprobs": 3, "stream": true}')" \
        "http://127.0.0.1:$PORT/v1/completions" >"$T/sse"
    $PY - "$T/sse" "$T/plain.json" <<'PYEOF'
import json, sys
want = json.load(open(sys.argv[2]))["choices"][0]["logprobs"]
got = {k: [] for k in want}
for line in open(sys.argv[1]):
    if line.startswith("data: {"):
        c = json.loads(line[6:])["choices"][0]
        if c["logprobs"]:
            assert c["text"], c  # log probabilities ride with their text
            for k in got:
                got[k] += c["logprobs"][k]
assert got == want, (got, want)
PYEOF
    # chat: logprobs true, top_logprobs 2: content entries with bytes, against
    # numpy over the rendered conversation (bn-tokenize --chat) and the answer
    api /v1/chat/completions '{"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 5, "temperature": 0, "logprobs": true, "top_logprobs": 2}'
    [ "$code" = 200 ]
    cp "$T/body" "$T/chat.json"
    echo 'user: Hello' | bn-tokenize -m "$BATS_FILE_TMPDIR/tiny.bn" --chat >"$T/chat.ids"
    [ "$(wc -w <"$T/chat.ids")" = "$(field "$T/chat.json" 'j["usage"]["prompt_tokens"]')" ]
    bn-infer -m "$BATS_FILE_TMPDIR/tiny.bn" --temp 0 -n 5 <"$T/chat.ids" >"$T/chat-answer.ids"
    echo "$(cat "$T/chat.ids") $(cat "$T/chat-answer.ids")" >"$T/chat-all.ids"
    logprobs_ref "$T/chat-all.ids" "$(wc -w <"$T/chat.ids")" 2 >"$T/chat-ref.json"
    $PY - "$T/chat.json" "$T/chat-ref.json" <<'PYEOF'
import json, sys
c = json.load(open(sys.argv[1]))["choices"][0]
ref = json.load(open(sys.argv[2]))
content = c["logprobs"]["content"]
assert len(content) == len(ref) == 5 and c["logprobs"]["refusal"] is None
assert b"".join(bytes(e["bytes"]) for e in content).decode() == c["message"]["content"]
for e, (tok, want, top) in zip(content, ref):
    assert abs(e["logprob"] - want) < 1e-5, (e["logprob"], want)
    assert len(e["top_logprobs"]) == 2 and e["top_logprobs"][0]["token"] == e["token"]
    assert all(abs(t["logprob"] - w[1]) < 1e-5 for t, w in zip(e["top_logprobs"], top)), (e, top)
PYEOF
    # a control token the content leaves out adds no bytes (forced here by logit_bias; 4070 is
    # <|start_header_id|>): the entries' bytes still put together the content
    id=$(printf '<|start_header_id|>' | bn-tokenize -m "$BATS_FILE_TMPDIR/tiny.bn" -s --no-bos)
    api /v1/chat/completions '{"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 3, "temperature": 0, "logprobs": true, "top_logprobs": 1, "logit_bias": {"'"$id"'": 100}}'
    [ "$code" = 200 ]
    $PY - "$T/body" <<'PYEOF'
import json, sys
c = json.load(open(sys.argv[1]))["choices"][0]
content = c["logprobs"]["content"]
assert c["message"]["content"] == "" and len(content) == 3, c
assert all(e["token"] == "<|start_header_id|>" and e["bytes"] == [] for e in content), content
PYEOF
    # chat without top_logprobs: no alternatives; a completion's logprobs true or 21: refused
    api /v1/chat/completions '{"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 2, "logprobs": true}'
    [ "$(field "$T/body" '[len(e["top_logprobs"]) for e in j["choices"][0]["logprobs"]["content"]]')" = "[0, 0]" ]
    refused /v1/completions '{"prompt": "a", "max_tokens": 2, "logprobs": true}' logprobs invalid_type
    refused /v1/completions '{"prompt": "a", "max_tokens": 2, "logprobs": 21}' logprobs invalid_value
    refused /v1/chat/completions '{"messages": [{"role": "user", "content": "Hi"}], "logprobs": true, "top_logprobs": 21}' top_logprobs invalid_value
}

@test "C17: logit_bias (OpenAI's object, llama-server's pairs) is bn-infer --logit-bias's; bad keys and values are 400s naming it" {
    api /tokenize "{\"content\": \"$P1\", \"add_special\": true}"
    field "$T/body" '" ".join(str(i) for i in j["tokens"])' >"$T/prompt.ids"
    first=$(bn-infer -m "$BATS_FILE_TMPDIR/tiny.bn" --temp 0 -n 1 <"$T/prompt.ids" | tr -d ' ')
    want=$(bn-infer -m "$BATS_FILE_TMPDIR/tiny.bn" --temp 0 -n 10 --logit-bias "$first=-100" --logit-bias 17=2.5 <"$T/prompt.ids" |
        bn-tokenize -d -m "$BATS_FILE_TMPDIR/tiny.bn")
    [ -n "$want" ]
    [ "$(text /v1/completions "$(complete "$P1" 10 "{\"temperature\": 0, \"logit_bias\": {\"$first\": -100, \"17\": 2.5}}")")" = "$want" ]
    [ "$(text /v1/completions "$(complete "$P1" 10 "{\"temperature\": 0, \"logit_bias\": [[$first, -100], [17, 2.5]]}")")" = "$want" ]
    [ "$(text /v1/completions "$(complete "$P1" 10 "{\"temperature\": 0, \"lookup\": 2, \"logit_bias\": {\"$first\": -100, \"17\": 2.5}}")")" = "$want" ]
    plain=$(text /v1/completions "$(complete "$P1" 10 '{"temperature": 0}')")
    [ -n "$plain" ]
    [ "$plain" != "$want" ]
    # an empty one asks for nothing
    empty=$(text /v1/completions "$(complete "$P1" 10 '{"temperature": 0, "logit_bias": {}}')")
    [ "$empty" = "$plain" ]
    for lb in '{"4096": 1}' '{"-1": 1}' '{"x": 1}' '{"1.5": 1}' '{"": 1}' '{"1e3": 1}' '{"0x10": 1}' '{" 5": 1}' '{"5": 101}' '{"5": "1"}' '[[5]]' '[5]' '"5"'; do
        api /v1/completions "$(complete a 2 "{\"logit_bias\": $lb}")"
        [ "$code" = 400 ] || { echo "$lb: $code $(cat "$T/body")"; return 1; }
        [ "$(field "$T/body" 'j["error"]["param"]')" = logit_bias ] || { echo "$lb: $(cat "$T/body")"; return 1; }
    done
}

@test "C18: echo with logprobs scores the prompt as lm-eval asks (numpy over bn-infer --logits); max_tokens 0; streamed; two at once" {
    api /tokenize "{\"content\": \"$P1\", \"add_special\": true}"
    field "$T/body" '" ".join(str(i) for i in j["tokens"])' >"$T/prompt.ids"
    ids=$(field "$T/body" 'j["tokens"]')
    np=$(wc -w <"$T/prompt.ids")
    # lm-eval's loglikelihood request: token ids, max_tokens 1, echo, logprobs 1
    body="{\"prompt\": [$ids], \"max_tokens\": 1, \"temperature\": 0, \"echo\": true, \"logprobs\": 1}"
    api /v1/completions "$body"
    [ "$code" = 200 ] || { cat "$T/body"; return 1; }
    cp "$T/body" "$T/echo.json"
    next=$(bn-infer -m "$BATS_FILE_TMPDIR/tiny.bn" --temp 0 -n 1 <"$T/prompt.ids")
    echo "$(cat "$T/prompt.ids") $next" >"$T/all.ids"
    logprobs_ref "$T/all.ids" 1 1 >"$T/ref.json"
    $PY - "$T/echo.json" "$T/ref.json" "$np" "$(bn-tokenize -d -m "$BATS_FILE_TMPDIR/tiny.bn" --skip-special <"$T/all.ids")" <<'PYEOF'
import json, sys
c = json.load(open(sys.argv[1]))["choices"][0]
ref = json.load(open(sys.argv[2]))
n = int(sys.argv[3])
assert c["text"] == sys.argv[4], (c["text"], sys.argv[4])
lp = c["logprobs"]
assert len(lp["tokens"]) == len(lp["token_logprobs"]) == n + 1 == len(ref) + 1
assert lp["token_logprobs"][0] is None and lp["top_logprobs"][0] is None and lp["text_offset"][0] == 0
for k, (tok, want, top) in enumerate(ref, 1):
    assert abs(lp["token_logprobs"][k] - want) < 1e-5, (k, lp["token_logprobs"][k], want)
    (t1, v1), = lp["top_logprobs"][k].items()
    assert abs(v1 - top[0][1]) < 1e-5, (k, v1, top)
# lm-eval's reading: token_logprobs[ctxlen:-1], every one a number
cont = lp["token_logprobs"][1:-1]
assert len(cont) == n - 1 and all(isinstance(x, float) and x <= 0 for x in cont)
assert lp["text_offset"] == sorted(lp["text_offset"]) and lp["text_offset"][-1] < len(c["text"].encode())
PYEOF
    # max_tokens 0: the prompt alone, scored; nothing generated
    api /v1/completions "{\"prompt\": [$ids], \"max_tokens\": 0, \"echo\": true, \"logprobs\": 0}"
    [ "$code" = 200 ] || { cat "$T/body"; return 1; }
    [ "$(field "$T/body" '[j["choices"][0]["finish_reason"], j["usage"]["completion_tokens"], len(j["choices"][0]["logprobs"]["tokens"])]')" = "[\"length\", 0, $np]" ]
    [ "$(field "$T/body" 'j["choices"][0]["logprobs"]["token_logprobs"][1:]')" = "$(field "$T/echo.json" 'j["choices"][0]["logprobs"]["token_logprobs"][1:-1]')" ]
    # a prompt that fills the context (256 positions) can be scored alone, not answered
    long=$($PY -c 'print(", ".join(str(7 + i % 50) for i in range(256)))')
    api /v1/completions "{\"prompt\": [$long], \"max_tokens\": 0, \"echo\": true, \"logprobs\": 0}"
    [ "$code" = 200 ] || { cat "$T/body"; return 1; }
    [ "$(field "$T/body" 'len([x for x in j["choices"][0]["logprobs"]["token_logprobs"] if x is not None])')" = 255 ]
    api /v1/completions "{\"prompt\": [$long], \"max_tokens\": 1, \"echo\": true, \"logprobs\": 0}"
    [ "$code" = 400 ]
    # without echo, max_tokens 0 is still refused; echo without logprobs: the text, no scores
    refused /v1/completions "{\"prompt\": [$ids], \"max_tokens\": 0}" max_tokens invalid_value
    api /v1/completions "{\"prompt\": [$ids], \"max_tokens\": 1, \"temperature\": 0, \"echo\": true}"
    [ "$(field "$T/body" '[j["choices"][0]["text"], j["choices"][0]["logprobs"]]')" = "$(field "$T/echo.json" '[j["choices"][0]["text"], None]')" ]
    # streamed: the chunks' text and logprobs joined are the whole answer's
    curl -sN --max-time 60 -H 'Content-Type: application/json' \
        --data-binary "{\"prompt\": [$ids], \"max_tokens\": 1, \"temperature\": 0, \"echo\": true, \"logprobs\": 1, \"stream\": true}" \
        "http://127.0.0.1:$PORT/v1/completions" >"$T/sse"
    $PY - "$T/sse" "$T/echo.json" <<'PYEOF'
import json, sys
want = json.load(open(sys.argv[2]))["choices"][0]
got = {k: [] for k in want["logprobs"]}
text = ""
for line in open(sys.argv[1]):
    if line.startswith("data: {"):
        c = json.loads(line[6:])["choices"][0]
        text += c["text"]
        for k in got:
            got[k] += (c["logprobs"] or {}).get(k, [])
assert text == want["text"] and got == want["logprobs"], (text, got)
PYEOF
    # two at once (one prompt: no KV prefix shared with a scored one): the same scores
    for i in 1 2; do
        curl -s --max-time 60 -H 'Content-Type: application/json' --data-binary "$body" \
            "http://127.0.0.1:$PORT/v1/completions" >"$T/c$i.json" &
    done
    wait
    for i in 1 2; do
        [ "$(field "$T/c$i.json" 'j["choices"][0]["logprobs"]')" = "$(field "$T/echo.json" 'j["choices"][0]["logprobs"]')" ]
    done
}
