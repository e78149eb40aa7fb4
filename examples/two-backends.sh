#!/bin/bash
# two-backends.sh — two bn-serve instances behind haproxy, all on loopback,
# with examples/haproxy.cfg: clients use one address, requests spread over
# both instances, and either may be stopped or restarted while the other
# goes on answering. On one machine the two share its cores (give each -t);
# it shows the set-up that serves more than one machine holds, where each
# bn-serve runs on a machine of its own.
#
#   examples/two-backends.sh MODEL [PORT [PORT_A PORT_B]] [-- BN-SERVE OPTIONS]
#
# haproxy listens on 127.0.0.1:PORT (default 8080), the instances on
# 127.0.0.1:PORT_A and PORT_B (default PORT+1, PORT+2). The script runs until
# it gets SIGINT or SIGTERM or haproxy ends. An instance that ends meanwhile
# (stopped, or gone) leaves the other answering, and one started again by
# hand on its port is taken back in. Stopping stops the instances first,
# which answer what they have in flight (bn-serve's drain) while haproxy
# still carries the answers, then haproxy, gently (SIGUSR1).
# bn-serve and haproxy come from the PATH.
# Example:
#   examples/two-backends.sh tiny.bn 8080 -- -t 1 -np 8 &
#   curl -s localhost:8080/v1/completions -d '{"prompt": "It was", "max_tokens": 16}'
set -eu
me=two-backends.sh
if [ $# -lt 1 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
    sed -n '2,/^set -eu$/{/^#/s/^# \{0,1\}//p}' "$0"
    [ $# -ge 1 ] && exit 0 || exit 2
fi
model=$1
shift
ports=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do
    [[ $1 =~ ^[0-9]+$ ]] || { echo "$me: '$1' is not a port" >&2; exit 2; }
    ports+=("$1")
    shift
done
[ $# -eq 0 ] || shift # the --
port=${ports[0]:-8080}
port_a=${ports[1]:-$((port + 1))}
port_b=${ports[2]:-$((port + 2))}
command -v haproxy >/dev/null || { echo "$me: haproxy is not installed (Debian: apt-get install haproxy)" >&2; exit 1; }
[ -r "$model" ] || { echo "$me: $model: cannot read it" >&2; exit 1; }

backends=()
haproxy_pid=
stop_all() {
    trap - EXIT
    trap '' INT TERM # a second signal would leave haproxy running
    [ ${#backends[@]} -eq 0 ] || kill -TERM "${backends[@]}" 2>/dev/null || true
    for pid in "${backends[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [ -n "$haproxy_pid" ]; then
        kill -USR1 "$haproxy_pid" 2>/dev/null || true
        wait "$haproxy_pid" 2>/dev/null || true
    fi
}
trap stop_all EXIT
trap 'exit 0' INT TERM

bn-serve -m "$model" --host 127.0.0.1 --port "$port_a" "$@" </dev/null &
backends+=($!)
bn-serve -m "$model" --host 127.0.0.1 --port "$port_b" "$@" </dev/null &
backends+=($!)
BN_LISTEN=127.0.0.1:$port BN_SERVE_A=127.0.0.1:$port_a BN_SERVE_B=127.0.0.1:$port_b \
    haproxy -db -f "$(dirname "$0")/haproxy.cfg" </dev/null &
haproxy_pid=$!
echo "$me: http://127.0.0.1:$port/ -> bn-serve on 127.0.0.1:$port_a and 127.0.0.1:$port_b" >&2
# the set-up lives as long as haproxy does, whichever instance comes and goes;
# its exit status is the script's (one that cannot bind its port fails it)
rc=0
wait "$haproxy_pid" || rc=$?
haproxy_pid=
exit "$rc"
