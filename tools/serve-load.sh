#!/bin/bash
# serve-load.sh — bn-serve under load. For each number of concurrent
# streaming clients (default 8, then 32) it starts a fresh bn-serve on the
# model with that many sequences, runs tests/ref/serve-load.mjs against it
# (each client sends its requests one after another) and prints the figures
# as a row of a markdown table: requests answered, aggregate tokens/s (all
# completion tokens over the wall time), time to first token (p50, p99) and
# time per request (p50).
#
#   tools/serve-load.sh [OPTIONS] MODEL [-- BN-SERVE OPTIONS]
#   tools/serve-load.sh --make-model FILE [--shape NAME]
#
#   -c, --clients LIST   concurrent clients, comma-separated (default 8,32)
#   -r, --requests N     requests each client sends (default 4)
#   -n, --max-tokens N   max_tokens of each request (default 64)
#   -t, --threads N      bn-serve's threads (default 2)
#   --ctx N              context positions of each sequence (default: the
#                        model's; KV blocks are taken as the answers grow)
#   --check              every answer must also be byte-identical to its
#                        one-at-a-time answer (asked first, not timed)
#   --url URL            measure the server already running at URL instead of
#                        starting bn-serve (MODEL is only the table's label):
#                        the same client against another server
#   --no-header          rows only
#   --make-model FILE    write a synthetic model of the given shape to FILE
#                        instead: tests/ref/gen_checkpoint.py's seeded weights
#                        (seed 1) as GGUF f16, then bn-convert | bn-quant
#                        --head q6 | bn-pack -l t2, as the README's batched
#                        comparison made its 2B4T weights (needs numpy, about
#                        5 GB of temporary space next to FILE and minutes)
#   --shape NAME         gen_checkpoint.py's shape (default 2b4t; tiny256 makes a
#                        small one in seconds, to try the script)
#   -h, --help           this text
# The bn programs come from $BN_BIN, else build/bin, else the PATH.
# Exit status: 0; 1 when a run failed (a request unanswered, a 5xx, the
# server not starting); 2 for a usage error.
# A benchmark: run it on a quiet machine. Example (2B4T shape):
#   tools/serve-load.sh --make-model /tmp/2b4t.bn
#   tools/serve-load.sh -t 2 /tmp/2b4t.bn
set -eu
me=serve-load.sh
root=$(cd "$(dirname "$0")/.." && pwd)

usage() { sed -n '2,/^set -eu$/{/^#/s/^# \{0,1\}//p}' "$0"; }
die() {
    echo "$me: $*" >&2
    exit 1
}
usage_error() {
    echo "$me: $*" >&2
    echo "usage: tools/serve-load.sh [OPTIONS] MODEL [-- BN-SERVE OPTIONS] (see --help)" >&2
    exit 2
}

clients=8,32 requests=4 max_tokens=64 threads=2 ctx="" check="" url="" header=1 make="" shape=2b4t model=""
need() { [ $# -ge 2 ] || usage_error "$1 needs a value"; }
while [ $# -gt 0 ]; do
    case $1 in
    -c | --clients) need "$@"; clients=$2; shift ;;
    -r | --requests) need "$@"; requests=$2; shift ;;
    -n | --max-tokens) need "$@"; max_tokens=$2; shift ;;
    -t | --threads) need "$@"; threads=$2; shift ;;
    --ctx) need "$@"; ctx=$2; shift ;;
    --check) check=--check ;;
    --url) need "$@"; url=$2; shift ;;
    --no-header) header="" ;;
    --make-model) need "$@"; make=$2; shift ;;
    --shape) need "$@"; shape=$2; shift ;;
    -h | --help) usage; exit 0 ;;
    --) shift; break ;;
    -*) usage_error "unknown option '$1'" ;;
    *) [ -z "$model" ] || usage_error "one model only ('$1')"; model=$1 ;;
    esac
    shift
done
for v in "$requests" "$max_tokens" "$threads" ${ctx:+"$ctx"}; do
    [[ $v =~ ^[1-9][0-9]*$ ]] || usage_error "'$v' is not a positive number"
done
[[ $clients =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || usage_error "--clients: '$clients' is not a list of numbers"

if [ -n "${BN_BIN:-}" ]; then
    bin=$BN_BIN/
elif [ -x "$root/build/bin/bn-serve" ]; then
    bin=$root/build/bin/
else
    bin=""
fi

if [ -n "$make" ]; then
    [ -z "$model" ] || usage_error "--make-model takes no MODEL"
    tmp="$make.f16.gguf"
    trap 'rm -f "$tmp" "$tmp.truth.json"' EXIT
    /usr/bin/python3 "$root/tests/ref/gen_checkpoint.py" --format gguf-f16 --shape "$shape" --seed 1 "$tmp" ||
        die "$make: gen_checkpoint.py failed"
    "${bin}bn-convert" "$tmp" | "${bin}bn-quant" --head q6 | "${bin}bn-pack" -q -l t2 -o "$make" ||
        die "$make: converting failed"
    echo "$me: wrote $make" >&2
    exit 0
fi
[ -n "$model" ] || usage_error "no model given"
[ -n "$url" ] || [ -r "$model" ] || die "$model: cannot read it"
command -v node >/dev/null || die "node (>= 18) is needed for the load client"

work=$(mktemp -d)
pid=""
stop() {
    if [ -n "$pid" ]; then
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        pid=""
    fi
}
trap 'stop; rm -rf "$work"' EXIT
trap 'exit 1' INT TERM

# start N: a fresh bn-serve with N sequences on a free loopback port; its
# address in $base once /health says 200.
start() {
    local n=$1 port="" i
    "${bin}bn-serve" -m "$model" -t "$threads" ${ctx:+-c "$ctx"} -np "$n" --queue "$n" --port 0 "${serve_opts[@]}" \
        </dev/null >/dev/null 2>"$work/serve.log" &
    pid=$!
    for i in $(seq 600); do
        port=$(sed -n 's|^bn-serve: listening on http://127.0.0.1:\([0-9]*\)/$|\1|p' "$work/serve.log")
        [ -n "$port" ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$port" ] || { cat "$work/serve.log" >&2; die "bn-serve did not start"; }
    base=http://127.0.0.1:$port
    for i in $(seq 6000); do # a large model may take a while to load
        [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$base/health")" = 200 ] && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    cat "$work/serve.log" >&2
    die "bn-serve did not become ready"
}

serve_opts=("$@")
label=$(basename "$model")
server=bn-serve
[ -z "$url" ] || server=$url
if [ -n "$header" ]; then
    echo "| server | model | threads | clients | requests | answered | tokens | tokens/s | TTFT p50 ms | TTFT p99 ms | request p50 ms |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
fi
rc=0
IFS=, read -ra counts <<<"$clients"
for n in "${counts[@]}"; do
    if [ -n "$url" ]; then
        base=$url
    else
        start "$n"
    fi
    status=0
    node "$root/tests/ref/serve-load.mjs" --url "$base" -c "$n" -r "$requests" -n "$max_tokens" $check \
        --deadline 3600 >"$work/report.json" || status=$?
    stop
    [ -s "$work/report.json" ] || die "the load client wrote no report"
    node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const [server, label, threads] = process.argv.slice(2);
console.log(`| ${server} | ${label} | ${threads} | ${r.clients} | ${r.requests} | ${r.answered} | ${r.completion_tokens} | ` +
  `${r.tokens_per_s} | ${r.ttft_ms.p50} | ${r.ttft_ms.p99} | ${r.total_ms.p50} |`);' \
        "$work/report.json" "$server" "$label" "$([ -n "$url" ] && echo - || echo "$threads")"
    [ "$status" -eq 0 ] || { echo "$me: $n clients: not every request was answered (exit $status)" >&2; rc=1; }
done
exit $rc
