#!/usr/bin/env bats
# Beyond one machine: two bn-serve instances behind haproxy with
# examples/haproxy.cfg, all on loopback (haproxy in the foreground as a
# child of the test, never a system service). Requests spread over both
# instances with the answers one instance gives; an instance killed in the
# middle of a load loses no request (haproxy sends again what never reached
# it, the clients retry the streams it cut) and the other goes on
# answering; examples/two-backends.sh starts and stops the three. Every
# process started here is stopped in teardown, whatever happened.
load common
load serve-common

setup_file() {
    bn-convert "$TINY" | bn-quant >"$BATS_FILE_TMPDIR/tiny.bn"
}

setup() {
    command -v haproxy >/dev/null || skip "haproxy is not installed (Debian package haproxy)"
    command -v node >/dev/null || skip "node is not installed"
    D=$BATS_FILE_TMPDIR
    T=$BATS_TEST_TMPDIR
    LOAD="node $ROOT/tests/ref/serve-load.mjs"
}

teardown() {
    stop_servers "$T" # the instances, haproxy, two-backends.sh
}

free_port() {
    $PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# until_200 URL: waits (at most 20 s) until URL answers 200.
until_200() {
    local i
    for i in $(seq 200); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1")" = 200 ] && return 0
        sleep 0.1
    done
    return 1
}

# start_pair: bn-serve instances a and b (ports of their choosing) and
# haproxy in front of them on $HPORT, pids in $T.
start_pair() {
    start_server "$T" a -np 4 --queue 16
    start_server "$T" b -np 4 --queue 16
    HPORT=$(free_port)
    BN_LISTEN=127.0.0.1:$HPORT BN_SERVE_A=127.0.0.1:$(cat "$T/a.port") BN_SERVE_B=127.0.0.1:$(cat "$T/b.port") \
        haproxy -db -f "$ROOT/examples/haproxy.cfg" </dev/null >"$T/haproxy.log" 2>&1 3>&- &
    echo $! >"$T/haproxy.pid"
    until_200 "http://127.0.0.1:$HPORT/health" || { cat "$T/haproxy.log"; return 1; }
}

answered() { # LOG: generation requests an instance answered 200
    grep -cE '^bn-serve: POST /v1/(chat/)?completions 200 ' "$1" || true
}

@test "examples/haproxy.cfg is valid" {
    run haproxy -c -f "$ROOT/examples/haproxy.cfg"
    [ "$status" -eq 0 ]
}

@test "through haproxy, requests spread over both instances, each answer its one-at-a-time answer" {
    start_pair
    status=0
    timeout 170 $LOAD --url "http://127.0.0.1:$HPORT" -c 8 -r 4 -n 16 --distinct 8 --check --deadline 150 \
        >"$T/report.json" 2>"$T/client.err" || status=$?
    cat "$T/client.err"
    [ "$status" -eq 0 ]
    [ "$(field "$T/report.json" 'j["status"]')" = '{"200": 32}' ]
    a=$(answered "$T/a.log")
    b=$(answered "$T/b.log")
    echo "# a answered $a, b answered $b of $((8 + 32))" >&3
    [ "$a" -gt 0 ]
    [ "$b" -gt 0 ]
    [ $((a + b)) -eq $((8 + 32)) ]
    # both stop cleanly (under make sanitize: no finding, no leak)
    stop_servers "$T"
    if grep -E 'Sanitizer|runtime error' "$T/a.log" "$T/b.log"; then return 1; fi
}

@test "an instance killed in the middle of a load: every request answered correctly, the other goes on" {
    local r=6 n=48
    [ -z "${BN_SANITIZED:-}" ] || { r=3; n=24; }
    start_pair
    # 8 clients x r streamed requests; a stream cut by the kill is asked again
    $LOAD --url "http://127.0.0.1:$HPORT" -c 8 -r $r -n $n --distinct 8 --check --retries 5 --deadline 150 \
        >"$T/report.json" 2>"$T/client.err" 3>&- &
    client=$!
    # once the one-at-a-time answers are in and the load is under way
    for i in $(seq 600); do
        [ $(($(answered "$T/a.log") + $(answered "$T/b.log"))) -ge 12 ] && break
        sleep 0.05
    done
    apid=$(cat "$T/a.pid")
    kill -KILL "$apid"
    wait "$apid" || true
    rm -f "$T/a.pid"
    b_at_kill=$(answered "$T/b.log")
    # right away, before the health checks see it gone: 8 requests that the
    # clients do not retry are answered too (haproxy sends those that met
    # the dead instance to the other)
    status=0
    $LOAD --url "http://127.0.0.1:$HPORT" -c 8 -r 1 -n 8 --distinct 8 --retries 0 --deadline 60 \
        >"$T/burst.json" 2>"$T/burst.err" || status=$?
    cat "$T/burst.err"
    [ "$status" -eq 0 ]
    [ "$(field "$T/burst.json" 'j["status"]')" = '{"200": 8}' ]
    status=0
    timeout 170 tail --pid=$client -f /dev/null || true
    wait $client || status=$?
    cat "$T/client.err"
    [ "$status" -eq 0 ]
    [ "$(field "$T/report.json" 'j["answered"], j["mismatches"]')" = "[$((8 * r)), 0]" ]
    echo "# $(field "$T/report.json" '"%d answered, %d identical; %d streams cut by the kill and asked again" % (
        j["answered"], j["answered"] - j["mismatches"], j["status"].get("cut", 0))'); b answered $(($(answered "$T/b.log") - b_at_kill)) after the kill, $(grep -c '/+[0-9]* [0-9]*/[0-9]* "POST' "$T/haproxy.log" || true) sent there by haproxy after meeting the dead one" >&3
    # the other instance went on answering, and still does
    [ $(($(answered "$T/b.log") - b_at_kill)) -gt 0 ]
    code=$(curl -s -o "$T/last" -w '%{http_code}' --max-time 30 "http://127.0.0.1:$HPORT/v1/completions" \
        -d '{"prompt": "It was", "max_tokens": 4}')
    [ "$code" = 200 ]
    # haproxy's health checks saw it go (2 failed checks, 1 s apart)
    for i in $(seq 100); do
        grep -q 'bn_serve/a is DOWN' "$T/haproxy.log" && break
        sleep 0.1
    done
    grep -q 'bn_serve/a is DOWN' "$T/haproxy.log"
}

@test "examples/two-backends.sh starts two instances and haproxy, goes on when one stops, and stops all three" {
    p=$(free_port) pa=$(free_port) pb=$(free_port)
    [ "$pa" != "$p" ] && [ "$pb" != "$p" ] && [ "$pa" != "$pb" ] || skip "the same free port came twice"
    "$ROOT/examples/two-backends.sh" "$D/tiny.bn" "$p" "$pa" "$pb" -- -t 1 -np 2 </dev/null >/dev/null \
        2>"$T/two.log" 3>&- &
    echo $! >"$T/two.pid"
    until_200 "http://127.0.0.1:$p/health" || { cat "$T/two.log"; return 1; }
    until_200 "http://127.0.0.1:$pa/health"
    until_200 "http://127.0.0.1:$pb/health"
    for i in 1 2 3 4; do
        code=$(curl -s -o "$T/out" -w '%{http_code}' --max-time 30 "http://127.0.0.1:$p/v1/completions" \
            -d '{"prompt": "It was", "max_tokens": 4, "temperature": 0}')
        [ "$code" = 200 ]
    done
    # one instance stopped: the other goes on answering through haproxy (the
    # script stopped everything when the first of the three ended)
    pkill -TERM -f "bn-serve -m $D/tiny.bn --host 127.0.0.1 --port $pa "
    timeout 20 sh -c "while curl -s -o /dev/null --max-time 2 http://127.0.0.1:$pa/health; do sleep 0.1; done"
    for i in 1 2 3 4; do
        code=$(curl -s -o "$T/out" -w '%{http_code}' --max-time 30 "http://127.0.0.1:$p/v1/completions" \
            -d '{"prompt": "It was", "max_tokens": 4, "temperature": 0}')
        [ "$code" = 200 ] || { echo "request $i after one instance stopped: $code"; cat "$T/two.log"; return 1; }
    done
    kill -0 "$(cat "$T/two.pid")"
    kill -TERM "$(cat "$T/two.pid")"
    rc=0
    timeout 20 tail --pid="$(cat "$T/two.pid")" -f /dev/null || rc=$?
    [ $rc -eq 0 ]
    rm -f "$T/two.pid"
    for port in $p $pa $pb; do
        run curl -s --max-time 2 "http://127.0.0.1:$port/health"
        [ "$status" -ne 0 ]
    done
}

@test "examples/two-backends.sh: haproxy failing (its port taken) fails the script and stops the instances" {
    p=$(free_port) pa=$(free_port) pb=$(free_port)
    [ "$pa" != "$p" ] && [ "$pb" != "$p" ] && [ "$pa" != "$pb" ] || skip "the same free port came twice"
    $PY -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); time.sleep(30)' "$p" &
    holder=$!
    sleep 0.3
    rc=0
    timeout 60 "$ROOT/examples/two-backends.sh" "$D/tiny.bn" "$p" "$pa" "$pb" -- -t 1 -np 2 </dev/null >/dev/null \
        2>"$T/two.log" 3>&- || rc=$?
    kill "$holder" 2>/dev/null || true
    [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || { echo "exit $rc"; cat "$T/two.log"; return 1; }
    for port in $pa $pb; do
        run curl -s --max-time 2 "http://127.0.0.1:$port/health"
        [ "$status" -ne 0 ]
    done
}
