# serve-common.bash — shared by the bn-serve suites (after `load common`):
# starting a server on a free loopback port, stopping it whatever happened,
# reading fields of its JSON answers.
#   SERVE_MODEL  the model start_server serves (default: the suite's
#                $BATS_FILE_TMPDIR/tiny.bn)

# start_server DIR NAME [options]: bn-serve on a port of its choosing, its
# pid and port in DIR/NAME.pid and .port, its log in DIR/NAME.log; returns
# once /health says 200 (at most 20 s). Later options override -t 1.
start_server() {
    local dir=$1 name=$2 port="" i
    shift 2
    bn-serve -m "${SERVE_MODEL:-$BATS_FILE_TMPDIR/tiny.bn}" -t 1 --port 0 "$@" </dev/null >/dev/null \
        2>"$dir/$name.log" 3>&- &
    echo $! >"$dir/$name.pid"
    for i in $(seq 200); do
        port=$(sed -n 's|^bn-serve: listening on http://127.0.0.1:\([0-9]*\)/$|\1|p' "$dir/$name.log")
        [ -n "$port" ] && break
        sleep 0.1
    done
    [ -n "$port" ] || { cat "$dir/$name.log"; return 1; }
    echo "$port" >"$dir/$name.port"
    for i in $(seq 200); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port/health")" = 200 ] && return 0
        sleep 0.1
    done
    cat "$dir/$name.log"
    return 1
}

# stop_server DIR NAME: SIGTERM, then SIGKILL after 15 s.
stop_server() {
    local pid i
    pid=$(cat "$1/$2.pid" 2>/dev/null) || return 0
    rm -f "$1/$2.pid"
    kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 150); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}

# exits_zero PID: the server (a child of this shell) ends within 30 s, with
# status 0.
exits_zero() {
    local rc=0
    timeout 30 tail --pid="$1" -f /dev/null || rc=$?
    [ $rc -eq 0 ] || { echo "pid $1 still running after 30 s"; return 1; }
    wait "$1" || rc=$?
    [ $rc -eq 0 ] || { echo "pid $1 exited $rc"; return 1; }
}

# stop_servers DIR: every server started in DIR (for teardown).
stop_servers() {
    local f
    for f in "$1"/*.pid; do
        [ -e "$f" ] && stop_server "$1" "$(basename "$f" .pid)"
    done
    return 0
}

# field FILE EXPR: a Python expression over the JSON document j.
field() {
    $PY -c 'import json, sys
j = json.load(open(sys.argv[1]))
v = eval(sys.argv[2])
sys.stdout.write(v if isinstance(v, str) else json.dumps(v))' "$1" "$2"
}

# api PATH JSON [curl options]: the body in $T/body, the status in $code.
api() {
    local path=$1 json=$2
    shift 2
    code=$(curl -s --max-time 60 -o "$T/body" -w '%{http_code}' -H 'Content-Type: application/json' \
        --data-binary "$json" "$@" "http://127.0.0.1:${SRV_PORT:-$PORT}$path")
}

# The frame of a suite around one server, "main", that its tests share:
# serve_suite OPTIONS in setup_file starts it on the bundled model with
# the suite's options; every test has $D, $T and its $PORT, and the
# servers a test starts itself are stopped after it (a suite that needs
# other set-up defines these itself, after loading this file).
serve_suite() {
    local D=$BATS_FILE_TMPDIR
    bn-convert "$TINY" | bn-quant >"$D/tiny.bn"
    start_server "$D" main "$@"
}

teardown_file() {
    stop_server "$BATS_FILE_TMPDIR" main
}

setup() {
    D=$BATS_FILE_TMPDIR
    T=$BATS_TEST_TMPDIR
    PORT=$(cat "$D/main.port")
}

teardown() {
    stop_servers "$T"
}

# refused_while_busy JSON [curl options]: on a server of one sequence and
# no queue ($SRV_PORT), JSON sent to /v1/completions while a long answer
# runs gets 503 (its body and $code as api's). The long answer takes ~50
# ms on one Zen 5 thread: the second request must arrive within it, which
# a few tries make sure of.
refused_while_busy() {
    local long='{"prompt": "It", "max_tokens": 250, "temperature": 0, "stop": "@@@@"}' try bg
    for try in $(seq 20); do
        curl -s --max-time 60 -o /dev/null --data-binary "$long" "http://127.0.0.1:$SRV_PORT/v1/completions" &
        bg=$!
        sleep 0.01
        api /v1/completions "$@"
        wait $bg # (not every child: the server is one)
        [ "$code" = 503 ] && return 0
    done
    echo "no 503 in 20 tries"
    return 1
}
