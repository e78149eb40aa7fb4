#!/usr/bin/env bats
# bn-serve driven by OpenAI's own npm client (openai, pinned in
# tests/ref/package.json; tests/ref/openai-client.mjs makes one request):
# the model list, greedy completions and chat answers identical to
# bn-infer's, streams the client reassembles to the whole answer, stop
# strings, seeds, usage and finish_reason (stream_options.include_usage's
# chunk too), and refusals as the client's error classes with OpenAI's
# param. Skipped without node or the package (tools/install-deps.sh
# installs both). Every server started here is stopped in teardown.
load common
load serve-common

P1='It was a fine morning, and Elizabeth'

# Why every test is skipped, or nothing (bats 1.8 cannot skip in setup_file).
missing_client() {
    command -v node >/dev/null || { echo "node is not installed (tools/install-deps.sh)"; return; }
    [ -d "$ROOT/tests/ref/node_modules/openai" ] ||
        echo "the openai npm package is not installed (tools/install-deps.sh, or npm ci in tests/ref)"
}

setup_file() {
    [ -z "$(missing_client)" ] || return 0
    local D=$BATS_FILE_TMPDIR
    bn-convert "$TINY" | bn-quant >"$D/tiny.bn"
    start_server "$D" main -np 4
}

teardown_file() {
    stop_server "$BATS_FILE_TMPDIR" main
}

setup() {
    local why
    D=$BATS_FILE_TMPDIR
    T=$BATS_TEST_TMPDIR
    why=$(missing_client)
    [ -z "$why" ] || skip "$why"
    PORT=$(cat "$D/main.port")
}

teardown() {
    stop_servers "$T"
}

# oa KIND [JSON]: the client's answer in $T/out (one JSON object), its exit
# status in $rc (3: the server refused, the error in $T/out).
oa() {
    rc=0
    timeout 90 node "$ROOT/tests/ref/openai-client.mjs" "http://127.0.0.1:${SRV_PORT:-$PORT}/v1" "$@" >"$T/out" || rc=$?
}

# oa_ok KIND JSON: oa, which must succeed; the answer also in $T/NAME
# when a third argument names it.
oa_ok() {
    oa "$1" "$2"
    [ "$rc" -eq 0 ] || { echo "client exit $rc: $(cat "$T/out")"; return 1; }
    [ -z "${3:-}" ] || cp "$T/out" "$T/$3"
}

json_str() { # TEXT as a JSON string
    printf '%s' "$1" | $PY -c 'import json, sys; print(json.dumps(sys.stdin.read()))'
}

# usage_sane FILE [MAX_TOKENS]: usage counts present and adding up; the
# finish reason stop, or length with exactly MAX_TOKENS tokens.
usage_sane() {
    $PY -c 'import json, sys
j = json.load(open(sys.argv[1]))
u, fin = j["usage"], j["finish_reason"]
assert u["prompt_tokens"] >= 1 and u["completion_tokens"] >= 1, u
assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"], u
assert fin in ("stop", "length"), fin
if fin == "length" and len(sys.argv) > 2:
    assert u["completion_tokens"] == int(sys.argv[2]), (u, sys.argv[2])' "$@"
}

@test "the client lists the server's model" {
    oa_ok models
    [ "$(field "$T/out" 'j["ids"]')" = '["tiny.bn"]' ]
}

@test "a greedy completion through the client is bn-infer's text, with usage" {
    oa_ok completion "{\"prompt\": $(json_str "$P1"), \"max_tokens\": 24, \"temperature\": 0}"
    [ "$(field "$T/out" 'j["object"]')" = text_completion ]
    usage_sane "$T/out" 24
    field "$T/out" 'j["text"] + "\n"' >"$T/served"
    bn-infer -m "$D/tiny.bn" -p "$P1" --temp 0 -n 24 >"$T/infer"
    cmp "$T/served" "$T/infer"
    n=$(printf '%s' "$P1" | bn-tokenize -m "$D/tiny.bn" | wc -w)
    [ "$(field "$T/out" 'j["usage"]["prompt_tokens"]')" -eq "$n" ]
}

@test "a greedy chat answer through the client is bn-infer -cnv's" {
    oa_ok chat '{"messages": [{"role": "system", "content": "You are Elizabeth."},
        {"role": "user", "content": "Good morning."}], "max_tokens": 20, "temperature": 0}'
    [ "$(field "$T/out" 'j["object"]')" = chat.completion ]
    usage_sane "$T/out" 20
    # bn-infer -cnv writes an answer to a pipe on one line, breaks escaped
    field "$T/out" 'j["text"].replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r") + "\n"' >"$T/served"
    printf 'Good morning.\n' | bn-infer -m "$D/tiny.bn" -cnv --system 'You are Elizabeth.' --temp 0 -n 20 >"$T/infer"
    cmp "$T/served" "$T/infer"
}

@test "streams the client reads reassemble to the whole answer, usage and finish_reason included" {
    req="{\"prompt\": $(json_str "$P1"), \"max_tokens\": 40, \"temperature\": 0"
    oa_ok completion "$req}" whole
    oa_ok completion "$req, \"stream\": true}" streamed
    same='[j["text"], j["finish_reason"], j["usage"]]'
    [ "$(field "$T/whole" "$same")" = "$(field "$T/streamed" "$same")" ]
    [ "$(field "$T/streamed" 'j["chunks"] > 3 and len(j["ids"]) == 1')" = true ]
    [ "$(field "$T/streamed" 'j["object"]')" = text_completion ]
    chat='{"messages": [{"role": "user", "content": "Tell me of Netherfield."}], "max_tokens": 30, "temperature": 0'
    oa_ok chat "$chat}" whole
    oa_ok chat "$chat, \"stream\": true}" streamed
    [ "$(field "$T/whole" "$same")" = "$(field "$T/streamed" "$same")" ]
    [ "$(field "$T/streamed" 'j["role"]')" = assistant ]
    [ "$(field "$T/streamed" 'j["object"]')" = chat.completion.chunk ]
    [ "$(field "$T/streamed" 'j["chunks"] > 3 and len(j["ids"]) == 1')" = true ]
    usage_sane "$T/streamed" 30
}

@test "stop strings through the client end the answer before them, as in bn-infer" {
    oa_ok completion "{\"prompt\": $(json_str "$P1"), \"max_tokens\": 40, \"temperature\": 0}"
    full=$(field "$T/out" 'j["text"]')
    stop=${full:12:3}
    [ ${#stop} -eq 3 ]
    req="{\"prompt\": $(json_str "$P1"), \"max_tokens\": 40, \"temperature\": 0, \"stop\": [\"zzz\", $(json_str "$stop")]"
    oa_ok completion "$req}" whole
    [ "$(field "$T/whole" 'j["finish_reason"]')" = stop ]
    usage_sane "$T/whole"
    [ "$(field "$T/whole" 'j["text"]')" = "${full%%"$stop"*}" ]
    field "$T/whole" 'j["text"] + "\n"' >"$T/served"
    bn-infer -m "$D/tiny.bn" -p "$P1" --temp 0 -n 40 --stop zzz --stop "$stop" >"$T/infer"
    cmp "$T/served" "$T/infer"
    # streamed: the same text, nothing of the stop string leaks out
    oa_ok completion "$req, \"stream\": true}" streamed
    [ "$(field "$T/streamed" '[j["text"], j["finish_reason"]]')" = "$(field "$T/whole" '[j["text"], j["finish_reason"]]')" ]
    # chat: a stop string from the greedy answer
    chat='{"messages": [{"role": "user", "content": "Tell me of Netherfield."}], "max_tokens": 30, "temperature": 0'
    oa_ok chat "$chat}"
    full=$(field "$T/out" 'j["text"]')
    stop=${full:8:3}
    [ ${#stop} -eq 3 ]
    oa_ok chat "$chat, \"stop\": $(json_str "$stop"), \"stream\": true}"
    [ "$(field "$T/out" 'j["finish_reason"]')" = stop ]
    [ "$(field "$T/out" 'j["text"]')" = "${full%%"$stop"*}" ]
}

@test "the same seed through the client gives the same answer, bn-infer's with that seed" {
    req="{\"prompt\": $(json_str "$P1"), \"max_tokens\": 32, \"temperature\": 0.9, \"seed\": 1234"
    oa_ok completion "$req}" a
    oa_ok completion "$req}" b
    oa_ok completion "$req, \"stream\": true}" c
    usage_sane "$T/a" 32
    same='[j["text"], j["finish_reason"], j["usage"]]'
    [ "$(field "$T/a" "$same")" = "$(field "$T/b" "$same")" ]
    [ "$(field "$T/a" "$same")" = "$(field "$T/c" "$same")" ]
    field "$T/a" 'j["text"] + "\n"' >"$T/served"
    bn-infer -m "$D/tiny.bn" -p "$P1" --temp 0.9 --seed 1234 -n 32 >"$T/infer"
    cmp "$T/served" "$T/infer"
    chat='{"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 24, "seed": 7'
    oa_ok chat "$chat}" a
    oa_ok chat "$chat}" b
    oa_ok chat "$chat, \"stream\": true}" c
    usage_sane "$T/a" 24
    [ "$(field "$T/a" "$same")" = "$(field "$T/b" "$same")" ]
    [ "$(field "$T/a" "$same")" = "$(field "$T/c" "$same")" ]
    # other seeds give other answers (four seeds, not all one text)
    for s in 1 2 3 4; do
        oa_ok completion "{\"prompt\": $(json_str "$P1"), \"max_tokens\": 16, \"temperature\": 1, \"seed\": $s}"
        field "$T/out" 'j["text"]'
        echo
    done | sort -u >"$T/texts"
    [ "$(wc -l <"$T/texts")" -gt 1 ]
}

@test "refusals reach the client as its error classes; the key goes as Bearer" {
    oa chat '{"messages": []}'
    [ "$rc" -eq 3 ]
    [ "$(field "$T/out" '[j["error"]["status"], j["error"]["class"], j["error"]["code"]]')" = \
        '[400, "BadRequestError", "invalid_value"]' ]
    oa completion '{"prompt": "x", "model": "gpt-4"}'
    [ "$rc" -eq 3 ]
    [ "$(field "$T/out" '[j["error"]["status"], j["error"]["class"], j["error"]["code"]]')" = \
        '[404, "NotFoundError", "model_not_found"]' ]
    printf 'sekrit-key\n' >"$T/key"
    start_server "$T" keyed --api-key-file "$T/key"
    SRV_PORT=$(cat "$T/keyed.port")
    OPENAI_API_KEY=wrong-key oa models
    [ "$rc" -eq 3 ]
    [ "$(field "$T/out" '[j["error"]["status"], j["error"]["class"]]')" = '[401, "AuthenticationError"]' ]
    OPENAI_API_KEY=sekrit-key oa_ok completion '{"prompt": "Hi", "max_tokens": 4, "stream": true}'
    usage_sane "$T/out" 4
}

@test "stream_options.include_usage through the client: the usage from the chunk without choices" {
    req="{\"prompt\": $(json_str "$P1"), \"max_tokens\": 12, \"temperature\": 0"
    oa_ok completion "$req}" whole
    oa_ok completion "$req, \"stream\": true, \"stream_options\": {\"include_usage\": true}}" streamed
    same='[j["text"], j["finish_reason"], j["usage"]]'
    [ "$(field "$T/whole" "$same")" = "$(field "$T/streamed" "$same")" ]
    chat='{"messages": [{"role": "user", "content": "Tell me of Netherfield."}], "max_tokens": 12, "temperature": 0'
    oa_ok chat "$chat}" whole
    oa_ok chat "$chat, \"stream\": true, \"stream_options\": {\"include_usage\": true}}" streamed
    [ "$(field "$T/whole" "$same")" = "$(field "$T/streamed" "$same")" ]
    usage_sane "$T/streamed" 12
}

@test "the client's error carries OpenAI's param: the field refused, or null" {
    cat >"$T/param.mjs" <<JS
import OpenAI from '$ROOT/tests/ref/node_modules/openai/index.mjs';
const client = new OpenAI({ baseURL: process.argv[2], apiKey: 'none', maxRetries: 0, timeout: 30000 });
const out = [];
for (const params of [{ prompt: 'x', model: 'tiny.bn', temperature: 'hot' }, { prompt: 'x', model: 'gpt-4' }]) {
    try {
        await client.completions.create(params);
        out.push('answered');
    } catch (e) {
        out.push([e.status, e.param === undefined ? 'absent' : e.param]);
    }
}
process.stdout.write(JSON.stringify(out) + '\n');
JS
    run timeout 60 node "$T/param.mjs" "http://127.0.0.1:$PORT/v1"
    [ "$status" -eq 0 ] && [ "$output" = '[[400,"temperature"],[404,null]]' ] || { echo "$output"; return 1; }
}
