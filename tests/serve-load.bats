#!/usr/bin/env bats
# bn-serve under load: 32 concurrent streaming clients, each sending
# several requests (completions and chat, greedy and seeded), through
# tests/ref/serve-load.mjs: every request answered, every answer
# byte-identical to its one-at-a-time answer, no 5xx; p50/p99 time to first
# token and aggregate tokens/s go to the TAP output. The load client itself
# is shown to fail on a wrong answer, a 5xx, a cut stream and its deadline
# (against a fake server), and tools/serve-load.sh prints its table on the
# bundled model. Every server started here is stopped in teardown.
load common
load serve-common

setup_file() {
    bn-convert "$TINY" | bn-quant >"$BATS_FILE_TMPDIR/tiny.bn"
}

setup() {
    command -v node >/dev/null || skip "node is not installed"
    D=$BATS_FILE_TMPDIR
    T=$BATS_TEST_TMPDIR
    LOAD="node $ROOT/tests/ref/serve-load.mjs"
}

teardown() {
    stop_servers "$T"
}

@test "32 concurrent streaming clients, several requests each: all answered, each its one-at-a-time answer, no 5xx" {
    # under the sanitizers (make sanitize) fewer and shorter requests: the
    # same checks in well under a minute on two cores
    local r=3 n=24
    [ -z "${BN_SANITIZED:-}" ] || { r=2; n=12; }
    start_server "$T" load -np 32 --queue 64
    port=$(cat "$T/load.port")
    status=0
    timeout 170 $LOAD --url "http://127.0.0.1:$port" -c 32 -r $r -n $n --distinct 16 --check \
        --timeout 120 --deadline 150 >"$T/report.json" 2>"$T/client.err" || status=$?
    cat "$T/client.err"
    [ "$status" -eq 0 ]
    [ "$(field "$T/report.json" 'j["answered"]')" -eq $((32 * r)) ]
    [ "$(field "$T/report.json" 'j["mismatches"]')" -eq 0 ]
    [ "$(field "$T/report.json" 'j["status"]')" = "{\"200\": $((32 * r))}" ]
    [ "$(field "$T/report.json" 'j["alone_status"]')" = '{"200": 16}' ]
    # the server agrees: every generation request a 200, nothing else, and
    # the tokens it counts are the tokens the client was sent
    if grep -E '^bn-serve: POST .* [^2][0-9][0-9] ' "$T/load.log"; then return 1; fi
    [ "$(grep -cE '^bn-serve: POST /v1/(chat/)?completions 200 ' "$T/load.log")" -eq $((16 + 32 * r)) ]
    curl -s --max-time 5 "http://127.0.0.1:$port/metrics" >"$T/metrics"
    sent=$(field "$T/report.json" 'j["completion_tokens"] + j["alone_tokens"]')
    [ "$(sed -n 's/^bn_serve_completion_tokens_total //p' "$T/metrics")" -eq "$sent" ]
    # it stops cleanly (under make sanitize: no finding, no leak)
    stop_server "$T" load
    if grep -E 'Sanitizer|runtime error' "$T/load.log"; then return 1; fi
    echo "# 32 clients x $r requests ($n tokens): $(field "$T/report.json" \
        '"%d answered, TTFT p50 %s ms p99 %s ms, %s tokens/s aggregate (%d tokens in %s s)" % (j["answered"],
        j["ttft_ms"]["p50"], j["ttft_ms"]["p99"], j["tokens_per_s"], j["completion_tokens"], j["wall_s"])')" >&3
}

# fake_server MODE: an SSE server on a free loopback port that answers
# every request with a one-chunk completion ("ok" mode: always the same),
# and in MODE differs, fails or hangs from its third request on; its port
# in $fport.
fake_server() {
    cat >"$T/fake.mjs" <<'JS'
import http from 'node:http';
const mode = process.argv[2];
let n = 0;
const srv = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    const k = ++n;
    const bad = mode !== 'ok' && k > 2;
    if (bad && mode === '500') { res.writeHead(500); res.end('{"error":{"message":"boom"}}'); return; }
    res.writeHead(200, { 'Content-Type': 'text/event-stream' });
    const text = bad && mode === 'differ' ? `answer ${k}` : 'the answer';
    res.write(`data: ${JSON.stringify({ choices: [{ index: 0, text, finish_reason: null }] })}\n\n`);
    if (bad && mode === 'cut') { setTimeout(() => res.socket.destroy(), 100); return; }
    if (bad && mode === 'hang') return;
    res.end(`data: ${JSON.stringify({ choices: [{ index: 0, text: '', finish_reason: 'length' }],
      usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 } })}\n\ndata: [DONE]\n\n`);
  });
});
srv.listen(0, '127.0.0.1', () => console.log(srv.address().port));
JS
    node "$T/fake.mjs" "$1" >"$T/fake.port" 2>/dev/null 3>&- &
    echo $! >"$T/fake.pid"
    for i in $(seq 50); do
        fport=$(cat "$T/fake.port")
        [ -n "$fport" ] && return 0
        sleep 0.1
    done
    return 1
}

@test "the load client fails on a changed answer, a 5xx, a cut stream, its deadline, and on no server" {
    for mode in ok differ 500 cut hang; do
        fake_server $mode
        status=0
        $LOAD --url "http://127.0.0.1:$fport" -c 2 -r 3 --distinct 2 --endpoint completions --check --deadline 3 \
            >"$T/$mode.json" 2>"$T/$mode.err" || status=$?
        stop_server "$T" fake
        if [ $mode = ok ]; then
            [ "$status" -eq 0 ] || { cat "$T/$mode.err"; return 1; }
            [ "$(field "$T/ok.json" 'j["answered"], j["completion_tokens"]')" = '[6, 12]' ]
            continue
        fi
        [ "$status" -eq 1 ] || { echo "$mode: exit $status"; cat "$T/$mode.err"; return 1; }
        grep -q FAILED "$T/$mode.err"
    done
    [ "$(field "$T/differ.json" 'j["mismatches"]')" -ge 1 ]
    [ "$(field "$T/500.json" 'j["status"]["500"]')" -ge 1 ]
    [ "$(field "$T/cut.json" 'j["status"]["cut"]')" -ge 1 ]
    [ "$(field "$T/hang.json" 'j["deadline_hit"]')" = true ]
    # no server at all; a usage error
    run $LOAD --url "http://127.0.0.1:$(cat "$T/fake.port")" -c 1 -r 1 --quiet
    [ "$status" -eq 1 ]
    run $LOAD -c 0
    [ "$status" -eq 2 ]
}

@test "tools/serve-load.sh prints a markdown row for 8 and for 32 clients" {
    local r=2 n=8
    [ -z "${BN_SANITIZED:-}" ] || r=1
    status=0
    env BN_BIN="$BN_BIN" timeout 170 "$ROOT/tools/serve-load.sh" -t 1 -r $r -n $n --check "$D/tiny.bn" \
        >"$T/table" 2>"$T/err" || status=$?
    cat "$T/table" "$T/err"
    [ "$status" -eq 0 ]
    mapfile -t lines <"$T/table"
    [ ${#lines[@]} -eq 4 ]
    [[ ${lines[0]} == '| server | model | threads | clients |'* ]]
    [[ ${lines[2]} == "| bn-serve | tiny.bn | 1 | 8 | $((8 * r)) | $((8 * r)) | "* ]]
    [[ ${lines[3]} == "| bn-serve | tiny.bn | 1 | 32 | $((32 * r)) | $((32 * r)) | "* ]]
    # its servers are gone
    if pgrep -f "bn-serve -m $D/tiny.bn"; then return 1; fi
    run "$ROOT/tools/serve-load.sh" --clients 8,x "$D/tiny.bn"
    [ "$status" -eq 2 ]
}
